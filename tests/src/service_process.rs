//! The service demo (`demo/service`, a workspace of its own on the shared route) as real
//! processes: its host built with a build label, its plugins built with the real `cargo xtask
//! build`, both in the toolkit's `target/service` with the shared route's flags; the host
//! started on a free port with a plugin folder and a control socket, its output collected (for
//! `tests/service.rs`, `tests/host_upgrade.rs`, `bin/upgrade-bench.rs`).

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::shared_route::{FLAGS, cargo, check, toolkit_target};
use crate::{BuiltPlugin, workspace_root};

/// Builds of the service workspace are serialised: they share its target folder, and a plugin
/// build checks that the shared library the host links stays as it was.
static SERIAL: Mutex<()> = Mutex::new(());

/// The service demo's workspace.
pub fn service_workspace() -> PathBuf {
    workspace_root().join("demo/service")
}

/// Its target folder: `service` in the toolkit's.
pub fn service_target() -> PathBuf {
    toolkit_target(&workspace_root()).join("service")
}

/// Where a service host finds libstd and the shared dylib (`service_shared`): the host is
/// linked with `-C prefer-dynamic` and carries no rpath, so it is started with this as
/// `LD_LIBRARY_PATH` (as `demo/service/run.sh` does).
pub fn service_library_path() -> String {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let libdir = check(Command::new(rustc).args(["--print", "target-libdir"]).output().unwrap(), "rustc --print");
        format!("{}:{}", service_target().join("debug/deps").display(), libdir.trim())
    })
    .clone()
}

/// Builds `service-host` (dev profile, the shared route's flags) with `SERVICE_HOST_BUILD=label`
/// (its `x-host-build` header), once per process and label, and returns a copy of the binary
/// (the next build overwrites cargo's) in `target/hotswap-test-hosts/<label>-<pid>/` (folders
/// of ended processes are removed).
pub fn build_service_host(label: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(l, _)| l == label) {
        return path.clone();
    }
    let root = workspace_root().join("target").join("hotswap-test-hosts");
    if built.is_empty() {
        crate::remove_folders_of_ended_processes(&root);
    }
    let dir = root.join(format!("{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let output = cargo()
        .args(["build", "--quiet", "--message-format=json-render-diagnostics", "--manifest-path"])
        .arg(service_workspace().join("Cargo.toml"))
        .args(["--package", "service-host", "--bin", "service-host"])
        .env("RUSTFLAGS", FLAGS)
        .env("CARGO_TARGET_DIR", service_target())
        .env("SERVICE_HOST_BUILD", label)
        .stderr(Stdio::inherit())
        .output()
        .expect("running cargo build");
    assert!(output.status.success(), "cargo build --package service-host (demo/service) failed");
    let executable = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "service-host")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the service-host executable");
    let copy = dir.join(format!("service-host-{label}"));
    std::fs::copy(&executable, &copy)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", executable.display(), copy.display()));
    built.push((label.to_string(), copy.clone()));
    copy
}

/// `cargo xtask build --debug` of the service plugin `name` (a folder of
/// `demo/service/plugin/`) with cargo arguments `cargo_args` (say `--features v2`), once per
/// process and `label`. The host is built first: a plugin links the host's build of the shared
/// library. The tool reads the shared route's flags from the workspace's `Cargo.toml`.
pub fn build_service_plugin(name: &str, label: &str, cargo_args: &[&str]) -> BuiltPlugin {
    static BUILT: Mutex<Vec<(String, BuiltPlugin)>> = Mutex::new(Vec::new());
    let key = format!("{name}#{label}");
    let found = |key: &str| BUILT.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(k, _)| k == key).cloned();
    if let Some((_, plugin)) = found(&key) {
        return plugin;
    }
    build_service_host("a");
    let xtask = crate::tools::cli();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Another thread may have built it meanwhile.
    if let Some((_, plugin)) = found(&key) {
        return plugin;
    }
    let out = workspace_root()
        .join("target")
        .join("hotswap-test-hosts")
        .join(format!("plugin-{name}-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // Without the caller's rustflags: the tool adds the workspace's own.
    let mut command = Command::new(&xtask);
    command
        .current_dir(workspace_root())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env("CARGO_TARGET_DIR", service_target())
        .args(["build", "--debug"])
        .arg(service_workspace().join("plugin").join(name))
        .arg(&out);
    if !cargo_args.is_empty() {
        command.arg("--").args(cargo_args);
    }
    let output = command.output().unwrap();
    check(output, &format!("cargo xtask build of {name} ({label})"));
    let mut library = None;
    let mut manifest = None;
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("so") => library = Some(path),
            Some("json") => manifest = Some(path),
            _ => {}
        }
    }
    let plugin = BuiltPlugin {
        library: library.expect("xtask wrote a library"),
        manifest: manifest.expect("xtask wrote a manifest"),
    };
    BUILT.lock().unwrap_or_else(|e| e.into_inner()).push((key, plugin.clone()));
    plugin
}

/// A running service host (the first of a chain of upgrades) and everything its successors
/// print (they inherit its output). Dropping it kills every host it knows of.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
    /// The HTTP address.
    pub addr: SocketAddr,
    /// The control socket.
    pub socket: PathBuf,
    /// Every line printed so far, by it and by the hosts that replaced it.
    pub lines: Arc<Mutex<Vec<String>>>,
    /// Pids of hosts started since (to kill on drop).
    pub successors: Vec<u32>,
}

impl ServiceProcess {
    /// Starts `binary` serving `plugins` on a free loopback port with its control socket at
    /// `socket`, and waits (at most 60 s) until it serves.
    pub fn start(binary: &Path, plugins: &Path, socket: &Path, drain_secs: f64) -> ServiceProcess {
        Self::start_on(binary, plugins, socket, "127.0.0.1:0", drain_secs)
    }

    /// [`ServiceProcess::start`] on `listen` (a plain restart needs the same port again).
    pub fn start_on(binary: &Path, plugins: &Path, socket: &Path, listen: &str, drain_secs: f64) -> ServiceProcess {
        Self::start_with_env(binary, plugins, socket, listen, drain_secs, &[], &[])
    }

    /// [`ServiceProcess::start_on`] with environment variables added (`NOTIFY_SOCKET`, say) and
    /// more arguments (`--free-delay-ms 0`, say).
    pub fn start_with_env(
        binary: &Path,
        plugins: &Path,
        socket: &Path,
        listen: &str,
        drain_secs: f64,
        env: &[(&str, &std::ffi::OsStr)],
        extra: &[&str],
    ) -> ServiceProcess {
        let mut child = Command::new(binary)
            .envs(env.iter().copied())
            .arg("--plugins")
            .arg(plugins)
            .arg("--socket")
            .arg(socket)
            .args(["--listen", listen, "--drain-secs", &drain_secs.to_string()])
            .args(extra)
            .env("RUST_LOG", "info")
            .env("LD_LIBRARY_PATH", service_library_path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collected = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("[host] {line}");
                collected.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let mut process = ServiceProcess {
            child,
            addr: ([127, 0, 0, 1], 0).into(),
            socket: socket.to_path_buf(),
            lines,
            successors: vec![],
        };
        let pid = process.child.id();
        let line = process.wait_for_line(&format!("as pid {pid} "), Duration::from_secs(60));
        let addr = line.split("serving http://").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap();
        process.addr = addr.parse().unwrap();
        process
    }

    /// The first host's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a line containing `text` has been printed, and returns it.
    pub fn wait_for_line(&mut self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self.lines.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            if let (true, Ok(Some(status))) = (self.successors.is_empty(), self.child.try_wait()) {
                panic!("the host exited ({status}) before printing {text:?}");
            }
            assert!(Instant::now() < deadline, "no line with {text:?} within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether host `pid` has exited (the first one is reaped here; a later one is gone from
    /// `/proc` or a zombie of whoever adopted it).
    pub fn has_exited(&mut self, pid: u32) -> bool {
        if pid == self.child.id() {
            return matches!(self.child.try_wait(), Ok(Some(_)));
        }
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for &pid in &self.successors {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}
