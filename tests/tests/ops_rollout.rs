//! The Ansible rollout of docs/ops/rollout.yml, for real: `ansible-playbook` (ansible-core,
//! which the test installs into target/ansible-venv on first use, as .ci/run does) drives three hello hosts on this machine,
//! each with its own plugin folder and control socket (`ansible_connection=local`). A good
//! build reaches all three; a broken build is refused by the canary, and the other two never
//! see it and keep serving.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hotswap_tests::tools::{ansible_playbook, cargo_binary};
use hotswap_tests::{BuiltPlugin, build_plugin, build_plugin_with_cargo_args, workspace_root};

const HOSTS: [&str; 3] = ["canary", "web2", "web3"];

/// Kills the host processes when the test ends, however it ends.
struct Hosts(Vec<Child>);

impl Drop for Hosts {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `xtask status --socket S`: the generation and `name version` lines, or the failure.
fn status(xtask: &Path, socket: &Path) -> String {
    let output = Command::new(xtask).arg("status").arg("--socket").arg(socket).output().unwrap();
    assert!(output.status.success(), "status: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn playbook(ansible: &Path, inventory: &Path, build: &Path) -> (bool, String) {
    let output = Command::new(ansible)
        .arg("-i")
        .arg(inventory)
        .arg(workspace_root().join("docs/ops/rollout.yml"))
        .arg("-e")
        .arg(format!("build_dir={}", build.display()))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// A build folder holding one build.
fn build_folder(root: &Path, name: &str, build: &BuiltPlugin) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir(&dir).unwrap();
    build.install(&dir);
    dir
}

#[test]
fn a_canary_first_rollout_reaches_every_host_and_stops_at_the_first_refusal() {
    let ansible = match ansible_playbook() {
        Ok(path) => path,
        Err(why) => return hotswap_tests::skip_unless_ci(&why),
    };
    let started = Instant::now();
    let (foo, bar) = (build_plugin("demo/hello/plugin/foo"), build_plugin("demo/hello/plugin/bar"));
    // Another build of foo (versions come from content, so another setting makes another
    // library and version).
    let foo_new = build_plugin_with_cargo_args(
        "demo/hello/plugin/foo",
        "rollout-good",
        true,
        &["--config", "profile.dev.debug=1"],
    );
    assert_ne!(foo.version(), foo_new.version());
    // A real build whose `on_load` fails: every reload that picks it is refused.
    let broken = build_plugin("tests/plugins/fault_on_load");
    let host_binary = cargo_binary("hello-host", "hello-host");
    let xtask = cargo_binary("xtask", "xtask");

    let temp = tempfile::tempdir().unwrap();
    let good_dir = build_folder(temp.path(), "build-good", &foo_new);
    let broken_dir = build_folder(temp.path(), "build-broken", &broken);
    let python = ansible.with_file_name("python3");
    // The playbook's default is `cargo hotswap reload --json`; here the same CLI as `xtask`,
    // with `--json` once the CLI has it (the playbook reads only the exit code either way).
    let help = Command::new(&xtask).args(["reload", "--help"]).output().unwrap();
    let reload_command = if String::from_utf8_lossy(&help.stdout).contains("--json") {
        format!("{} reload --json", xtask.display())
    } else {
        format!("{} reload", xtask.display())
    };
    let mut inventory = String::from("[hotswap]\n");
    let mut hosts = Hosts(Vec::new());
    let mut sockets = Vec::new();
    let mut plugin_dirs = Vec::new();
    for name in HOSTS {
        let plugins = temp.path().join(name).join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        foo.install(&plugins);
        bar.install(&plugins);
        let socket = temp.path().join(name).join("control.sock");
        let log = std::fs::File::create(temp.path().join(name).join("host.log")).unwrap();
        let child = Command::new(&host_binary)
            .arg("--plugins")
            .arg(&plugins)
            .arg("--socket")
            .arg(&socket)
            .args(["--interval-ms", "100"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        hosts.0.push(child);
        inventory.push_str(&format!(
            "{name} ansible_connection=local ansible_python_interpreter={} hotswap_plugin_dir={} hotswap_socket={} hotswap_reload_command=\"{reload_command}\"\n",
            python.display(),
            plugins.display(),
            socket.display(),
        ));
        sockets.push(socket);
        plugin_dirs.push(plugins);
    }
    let inventory_file = temp.path().join("inventory.ini");
    std::fs::write(&inventory_file, &inventory).unwrap();
    for socket in &sockets {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "host on {} did not start", socket.display());
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(status(&xtask, socket).contains("serving generation 1"));
    }

    // A good build: every host reloads, the canary first.
    let good_started = Instant::now();
    let (ok, output) = playbook(&ansible, &inventory_file, &good_dir);
    let good_took = good_started.elapsed();
    assert!(ok, "the good rollout failed:\n{output}");
    let canary_at = output.find("changed: [canary]").unwrap_or_else(|| panic!("{output}"));
    assert!(
        output[canary_at..].contains("changed: [web2]") && output[canary_at..].contains("changed: [web3]"),
        "{output}"
    );
    for socket in &sockets {
        let serving = status(&xtask, socket);
        assert!(serving.contains("serving generation 2") && serving.contains(&foo_new.version()), "{serving}");
    }

    // A broken build: the canary refuses it and the rollout stops there.
    let before: Vec<Vec<String>> = plugin_dirs.iter().map(|d| files_in(d)).collect();
    let broken_started = Instant::now();
    let (ok, output) = playbook(&ansible, &inventory_file, &broken_dir);
    let broken_took = broken_started.elapsed();
    assert!(!ok, "the broken rollout succeeded:\n{output}");
    assert!(output.contains("refused") && output.contains("fault_on_load refuses to load"), "{output}");
    assert!(!output.contains("[web2]") && !output.contains("[web3]"), "hosts after the canary were touched:\n{output}");
    for (index, socket) in sockets.iter().enumerate() {
        let serving = status(&xtask, socket);
        assert!(
            serving.contains("serving generation 2") && serving.contains(&foo_new.version()),
            "{}: {serving}",
            HOSTS[index]
        );
        // The canary's copy was taken back out; the others never got one.
        assert_eq!(files_in(&plugin_dirs[index]), before[index], "{}", HOSTS[index]);
    }
    // Every host is still running its rounds on the good build.
    std::thread::sleep(Duration::from_millis(300));
    for (index, child) in hosts.0.iter_mut().enumerate() {
        assert!(child.try_wait().unwrap().is_none(), "{} exited", HOSTS[index]);
        let log = std::fs::read_to_string(temp.path().join(HOSTS[index]).join("host.log")).unwrap();
        let last = log.lines().rev().find(|l| l.contains("foo")).unwrap_or_default();
        assert!(last.contains(&foo_new.version()), "{}: {last}", HOSTS[index]);
    }
    eprintln!(
        "rollout test took {:.1?} (good rollout to 3 hosts {good_took:.1?}, refused by the canary {broken_took:.1?})",
        started.elapsed()
    );
}
