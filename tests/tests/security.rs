//! Strict modes on plugin files and folders, the control socket's permissions and peer check.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use hotswap_runtime::{ControlServer, PluginManager, Stage};
use hotswap_tests::build_plugin;

const V1: &str = "tests/plugins/greeter_v1";

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_folder_or_file_writable_by_others_is_refused_unless_opted_out() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    chmod(&plugins, 0o775);
    let library = build_plugin(V1).install(&plugins);
    let strict = PluginManager::builder(&plugins).build().unwrap();
    let error = strict.load_plugins().unwrap_err();
    assert_eq!((error.stage, error.file.as_path()), (Stage::Scan, plugins.as_path()));
    assert!(error.reason.contains("writable by group or others (mode 775)"), "{error}");
    assert!(error.reason.contains(&format!("chmod go-w {}", plugins.display())), "{error}");
    assert!(error.reason.contains("strict_modes(false)"), "{error}");

    chmod(&plugins, 0o755);
    chmod(&library, 0o666);
    let error = strict.load_plugins().unwrap_err();
    assert_eq!(error.file, library);
    assert!(error.reason.contains("plugin file is writable by group or others"), "{error}");

    let relaxed = PluginManager::builder(&plugins).strict_modes(false).build().unwrap();
    relaxed.load_plugins().expect("strict_modes(false) accepts it");
    chmod(&library, 0o644);
    strict.load_plugins().expect("fixed permissions are accepted");
}

#[test]
fn a_file_owned_by_another_user_is_refused() {
    if !is_root() {
        return hotswap_tests::skip_unless_ci("only root can give a file to another user");
    }
    let dir = tempfile::tempdir().unwrap();
    let library = build_plugin(V1).install(dir.path());
    std::os::unix::fs::chown(&library, Some(4242), None).unwrap();
    let error = PluginManager::builder(dir.path()).build().unwrap().load_plugins().unwrap_err();
    assert_eq!(error.file, library);
    assert!(error.reason.contains("owned by uid 4242") && error.reason.contains("chown"), "{error}");
}

#[test]
fn the_control_socket_refuses_other_users() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    build_plugin(V1).install(&plugins);
    let manager = PluginManager::builder(&plugins).free_delay(Duration::ZERO).build().unwrap();
    manager.load_plugins().unwrap();
    let run = dir.path().join("run");
    let socket = run.join("control.sock");
    let _server = ControlServer::start(manager.clone(), &socket).unwrap();
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&run).unwrap().permissions().mode() & 0o077, 0, "only the owner may enter");

    // A world-writable folder for the socket is refused.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let error = ControlServer::start(manager.clone(), open.join("c.sock")).expect_err("unsafe folder");
    assert!(error.to_string().contains("writable by group or others"), "{error}");

    // Loosen the socket on purpose, then talk to it as another user: the peer check refuses.
    let setpriv = Path::new("/usr/bin/setpriv");
    if !is_root() || !setpriv.exists() {
        return hotswap_tests::skip_unless_ci("the other-user request needs root and /usr/bin/setpriv");
    }
    chmod(&run, 0o755);
    chmod(&socket, 0o666);
    // The temp folder itself is 0700; let the other user through to the socket.
    chmod(dir.path(), 0o711);
    let output = std::process::Command::new(setpriv)
        .args(["--reuid=4242", "--regid=4242", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_control-client"))
        .arg(&socket)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "client failed: {stdout} {}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("\"status\":\"refused\"") && stdout.contains("uid 4242"), "{stdout}");
    assert_eq!(manager.current().unwrap().number(), 1, "nothing was reloaded");
}
