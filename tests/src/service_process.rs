//! The service demo's host as a real process: its binary built (in this crate's profile) with
//! a build label, started on a free port with a plugin folder and a control socket, its output
//! collected; for host upgrades (`tests/host_upgrade.rs`, `bin/upgrade-bench.rs`).

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::workspace_root;

/// Builds `service-host` with `SERVICE_HOST_BUILD=label` (its `x-host-build` header), once per
/// process and label, and returns a copy of the binary (the next build overwrites cargo's) in
/// `target/hotswap-test-hosts/<label>-<pid>/` (folders of ended processes are removed). Builds
/// are serialised: they share cargo's artifact.
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
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(workspace_root())
        .args(["build", "--quiet", "--message-format=json-render-diagnostics", "--package", "service-host"])
        .arg("--bin")
        .arg("service-host")
        .env("SERVICE_HOST_BUILD", label)
        .stderr(Stdio::inherit());
    if !cfg!(debug_assertions) {
        // The plugins are built in this crate's profile: the host must match them.
        command.arg("--release");
    }
    let output = command.output().expect("running cargo build");
    assert!(output.status.success(), "cargo build --package service-host failed");
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
        Self::start_with_env(binary, plugins, socket, listen, drain_secs, &[])
    }

    /// [`ServiceProcess::start_on`] with environment variables added (`NOTIFY_SOCKET`, say).
    pub fn start_with_env(
        binary: &Path,
        plugins: &Path,
        socket: &Path,
        listen: &str,
        drain_secs: f64,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> ServiceProcess {
        let mut child = Command::new(binary)
            .envs(env.iter().copied())
            .arg("--plugins")
            .arg(plugins)
            .arg("--socket")
            .arg(socket)
            .args(["--listen", listen, "--drain-secs", &drain_secs.to_string()])
            .env("RUST_LOG", "info")
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
