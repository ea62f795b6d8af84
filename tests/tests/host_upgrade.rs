//! Upgrading the host binary under load (issue 25 §3): the service demo's axum host runs as a
//! real process serving the real demo plugins to keep-alive clients, and is replaced by a new build
//! of itself five times (two builds, alternating) through its control socket; a new host that
//! fails before it is ready leaves the old one serving.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hotswap_runtime::{ControlRequest, ControlResponse, send_request};
use hotswap_tests::keep_alive::{Answer, Failure, KeepAliveClient};
use hotswap_tests::service_process::{ServiceProcess, build_service_host, build_service_plugin};

/// Keep-alive clients, one task each.
const CLIENTS: usize = 6;
/// Host upgrades in the main test.
const UPGRADES: usize = 5;

/// Two builds of the host (labels `a` and `b`), and a plugin folder for them.
struct Setup {
    _temp: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
    plugins: PathBuf,
    socket: PathBuf,
    dir: PathBuf,
}

fn setup() -> Setup {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_path_buf();
    let plugins = dir.join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    build_service_plugin("svc_shop", "v1", &[]).install(&plugins);
    build_service_plugin("svc_greeting", "v1", &[]).install(&plugins);
    // Built now, so that an upgrade through the CLI does not wait for cargo.
    hotswap_tests::tools::cargo_binary("xtask", "xtask");
    let a = build_service_host("a");
    let b = build_service_host("b");
    let run = dir.join("run");
    std::fs::create_dir(&run).unwrap();
    Setup { socket: run.join("control.sock"), _temp: temp, a, b, plugins, dir }
}

/// What one client saw.
#[derive(Debug, Default)]
struct Seen {
    answers: Vec<Answer>,
    failures: Vec<(usize, Failure)>,
    connects: u64,
}

/// Runs `CLIENTS` clients against `addr` until `stop` is set, then each sends `after` more
/// requests.
fn load(
    runtime: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    after: usize,
) -> Vec<tokio::task::JoinHandle<Seen>> {
    (0..CLIENTS)
        .map(|index| {
            let stop = Arc::clone(&stop);
            runtime.spawn(async move {
                let mut client = KeepAliveClient::new(addr);
                let mut seen = Seen::default();
                let mut left = after;
                let mut sent = 0usize;
                while left > 0 {
                    if stop.load(Ordering::SeqCst) {
                        left -= 1;
                    }
                    let path = if sent.is_multiple_of(2) {
                        format!("/hello?name=c{index}&delay_ms={}", sent % 3)
                    } else {
                        "/shop/quote?item=pear&qty=2".to_string()
                    };
                    match client.get(&path).await {
                        Ok(answer) if answer.status == 200 => seen.answers.push(answer),
                        Ok(answer) => seen.failures.push((sent, Failure::Request(format!("{path}: {answer:?}")))),
                        Err(failure) => seen.failures.push((sent, failure)),
                    }
                    sent += 1;
                    // A few milliseconds between requests: a steady load that leaves the two
                    // cores room to start the new host.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                seen.connects = client.connects;
                seen
            })
        })
        .collect()
}

fn upgrade(socket: &Path, program: &Path, ready_timeout: Duration) -> ControlResponse {
    let request = ControlRequest::UpgradeHost {
        program: Some(program.to_string_lossy().into_owned()),
        ready_timeout_ms: Some(ready_timeout.as_millis() as u64),
    };
    send_request(socket, &request, ready_timeout + Duration::from_secs(30)).expect("the host answers upgrade_host")
}

/// `cargo xtask upgrade-host --json` (the hotswap CLI): its exit code and JSON answer.
fn cli_upgrade(socket: &Path, program: &Path) -> (i32, serde_json::Value) {
    let output = std::process::Command::new(hotswap_tests::tools::cargo_binary("xtask", "xtask"))
        .args(["upgrade-host", "--json", "--socket"])
        .arg(socket)
        .arg("--program")
        .arg(program)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    (output.status.code().unwrap(), serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}")))
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn five_host_upgrades_under_keep_alive_load_fail_no_request_and_old_connections_finish_on_the_old_host() {
    let setup = setup();
    let mut host = ServiceProcess::start(&setup.a, &setup.plugins, &setup.socket, 30.0);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&runtime, host.addr, Arc::clone(&stop), 100);
    let mut serving = host.pid();
    let mut chain = vec![(serving, "a".to_string())];
    let mut slow_answers = Vec::new();
    std::thread::sleep(Duration::from_millis(300));
    for round in 0..UPGRADES {
        let (program, label) = if round.is_multiple_of(2) { (&setup.b, "b") } else { (&setup.a, "a") };
        // A slow request on a connection of the serving host: it must finish there, after
        // the new host took over.
        let addr = host.addr;
        let slow = runtime.spawn(async move {
            let mut client = KeepAliveClient::new(addr);
            client.get("/hello?name=slow&delay_ms=6000").await
        });
        std::thread::sleep(Duration::from_millis(200));
        let (pid, previous_pid, took_ms) = if round == 0 {
            // Through the CLI once: exit code 0, `upgraded`, the new pid.
            let (code, json) = cli_upgrade(&setup.socket, program);
            assert_eq!((code, json["result"].as_str()), (0, Some("upgraded")), "{json}");
            let upgrade = &json["host_upgrade"];
            let pid = |key: &str| upgrade[key].as_u64().unwrap_or_else(|| panic!("{key} in {json}")) as u32;
            (pid("pid"), pid("previous_pid"), upgrade["took_ms"].as_f64().unwrap())
        } else {
            let answer = upgrade(&setup.socket, program, Duration::from_secs(60));
            let ControlResponse::HostUpgraded { pid, previous_pid, took_ms, .. } = answer else {
                panic!("upgrade {round} to build {label} was not done: {answer:?}");
            };
            (pid, previous_pid, took_ms)
        };
        assert_eq!(previous_pid, serving, "upgrade {round}: the serving host answered");
        eprintln!("upgrade {}: pid {serving} -> {pid} (build {label}), new host ready in {took_ms:.0} ms", round + 1);
        host.successors.push(pid);
        assert!(
            !slow.is_finished(),
            "upgrade {round}: the slow request was still in flight when the new host took over"
        );
        slow_answers.push((serving, runtime.block_on(slow).unwrap()));
        let old = serving;
        wait_until(&format!("old host {old} drains and exits"), Duration::from_secs(30), || host.has_exited(old));
        host.wait_for_line(&format!("pid {old} exits: 0 connections left open"), Duration::from_secs(5));
        serving = pid;
        chain.push((pid, label.to_string()));
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::SeqCst);
    let seen: Vec<Seen> = clients.into_iter().map(|c| runtime.block_on(c).unwrap()).collect();

    for (round, (old, slow)) in slow_answers.iter().enumerate() {
        let slow = slow.as_ref().unwrap_or_else(|e| panic!("upgrade {round}: the slow request failed: {e:?}"));
        assert_eq!((slow.status, slow.served_by), (200, *old), "upgrade {round}: finished on the old host: {slow:?}");
        assert!(slow.closed, "the old host closed the slow request's connection after answering it");
    }
    let total: usize = seen.iter().map(|s| s.answers.len()).sum();
    let connects: u64 = seen.iter().map(|s| s.connects).sum();
    let mut by_host: BTreeMap<u32, usize> = BTreeMap::new();
    for (index, client) in seen.iter().enumerate() {
        assert!(
            client.failures.is_empty(),
            "client {index}: {} failed requests: {:?}",
            client.failures.len(),
            client.failures
        );
        // Every connection was answered by one host only.
        let mut hosts_of: BTreeMap<u64, BTreeSet<u32>> = BTreeMap::new();
        for answer in &client.answers {
            hosts_of.entry(answer.connection).or_default().insert(answer.served_by);
            *by_host.entry(answer.served_by).or_default() += 1;
        }
        for (connection, hosts) in &hosts_of {
            assert_eq!(hosts.len(), 1, "client {index}: its connection {connection} was answered by hosts {hosts:?}");
        }
        let last = client.answers.last().unwrap();
        assert_eq!((last.served_by, last.build.as_str()), (serving, "b"), "client {index}: the last build serves");
    }
    eprintln!("{total} requests on {connects} connections over {} hosts, 0 failed: {by_host:?}", chain.len());
    for (pid, label) in &chain {
        assert!(by_host.get(pid).is_some_and(|&n| n > 0), "host {pid} (build {label}) answered requests: {by_host:?}");
    }
    // Each client reconnected at most once per upgrade (when its host drained).
    assert!(connects <= (CLIENTS * (UPGRADES + 1)) as u64, "{connects} connections");
    // The socket file is the last host's: status is answered.
    let status = send_request(&setup.socket, &ControlRequest::Status, Duration::from_secs(10)).unwrap();
    assert!(matches!(status, ControlResponse::Serving { generation: Some(1), .. }), "{status:?}");
    let _ = std::fs::remove_dir_all(&setup.dir);
}

/// A script that runs the real host binary `b` with `--workers 0`: it panics at start (tokio
/// refuses zero workers), before it is ready, as a broken build would.
fn broken_host(setup: &Setup) -> PathBuf {
    let script = setup.dir.join("broken-host");
    std::fs::write(&script, format!("#!/bin/sh\nexec '{}' \"$@\" --workers 0\n", setup.b.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

#[test]
fn a_new_host_that_fails_before_it_is_ready_leaves_the_old_one_serving_every_connection() {
    let setup = setup();
    let mut host = ServiceProcess::start(&setup.a, &setup.plugins, &setup.socket, 30.0);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&runtime, host.addr, Arc::clone(&stop), 50);
    std::thread::sleep(Duration::from_millis(200));

    // Exits before it is ready: the CLI exits 1 with the reason.
    let broken = broken_host(&setup);
    let (code, json) = cli_upgrade(&setup.socket, &broken);
    assert_eq!((code, json["result"].as_str()), (1, Some("refused")), "{json}");
    let reason = json["refusal"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("exited before it was ready (exit status 101)") && reason.contains("this host keeps serving"),
        "{reason}"
    );
    assert!(reason.contains(&broken.display().to_string()), "the refusal names the binary: {reason}");
    // Never ready: killed after the timeout.
    let sleeper = setup.dir.join("sleeping-host");
    std::fs::write(&sleeper, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&sleeper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let socket = setup.socket.clone();
    let waiting = std::thread::spawn(move || upgrade(&socket, &sleeper, Duration::from_millis(1500)));
    std::thread::sleep(Duration::from_millis(300));
    // One upgrade at a time.
    let second = upgrade(&setup.socket, &setup.b, Duration::from_secs(60));
    assert!(
        matches!(&second, ControlResponse::Busy { reason, .. } if reason.contains("already running")),
        "{second:?}"
    );
    let answer = waiting.join().unwrap();
    let ControlResponse::Refused { reason, .. } = &answer else { panic!("not refused: {answer:?}") };
    assert!(reason.contains("was not ready within 1.5 s and was killed"), "{reason}");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let seen: Vec<Seen> = clients.into_iter().map(|c| runtime.block_on(c).unwrap()).collect();
    for (index, client) in seen.iter().enumerate() {
        assert!(client.failures.is_empty(), "client {index}: {:?}", client.failures);
        assert_eq!(client.connects, 1, "client {index} kept its one connection");
        assert!(client.answers.iter().all(|a| a.served_by == host.pid() && !a.closed), "client {index}");
    }
    assert!(!host.has_exited(host.pid()));

    // And it can still be upgraded: its sockets and state are as before.
    let answer = upgrade(&setup.socket, &setup.b, Duration::from_secs(60));
    let ControlResponse::HostUpgraded { pid, .. } = answer else { panic!("{answer:?}") };
    host.successors.push(pid);
    let old = host.pid();
    wait_until("the old host exits", Duration::from_secs(30), || host.has_exited(old));
    let answer = runtime.block_on(async { KeepAliveClient::new(host.addr).get("/hello?name=after").await }).unwrap();
    assert_eq!((answer.status, answer.served_by, answer.build.as_str()), (200, pid, "b"), "{answer:?}");

    // SIGRTMIN+2 upgrades too, to the binary the host was started from (build b here).
    let signal = hotswap_runtime::handoff::upgrade_signal_number();
    // SAFETY: kill(2) with a pid and a signal number; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
    let line = host.wait_for_line(&format!("took over from pid {pid}"), Duration::from_secs(60));
    let next: u32 = line.split("as pid ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().parse().unwrap();
    host.successors.push(next);
    wait_until("the host replaced on the signal exits", Duration::from_secs(30), || host.has_exited(pid));
    let answer = runtime.block_on(async { KeepAliveClient::new(host.addr).get("/hello?name=signal").await }).unwrap();
    assert_eq!((answer.status, answer.served_by, answer.build.as_str()), (200, next, "b"), "{answer:?}");
    let _ = std::fs::remove_dir_all(&setup.dir);
}

/// The messages of systemd's notify protocol on `socket` (a datagram socket standing where
/// systemd's would be), within `limit`, until `until` holds for one of them.
fn notify_messages(
    socket: &std::os::unix::net::UnixDatagram,
    limit: Duration,
    until: impl Fn(&str) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut messages = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))))
            .unwrap();
        let Ok(n) = socket.recv(&mut buffer) else { break };
        let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
        let done = until(&message);
        messages.push(message);
        if done {
            break;
        }
    }
    messages
}

#[test]
fn under_systemds_notify_protocol_the_host_says_ready_and_the_old_one_names_the_new_main_pid() {
    let setup = setup();
    // Where systemd's notify socket would be (Type=notify): the host finds it in NOTIFY_SOCKET.
    let notify_path = setup.dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    let env = [("NOTIFY_SOCKET", notify_path.as_os_str())];
    let mut host =
        ServiceProcess::start_with_env(&setup.a, &setup.plugins, &setup.socket, "127.0.0.1:0", 30.0, &env, &[]);
    let first = host.pid();
    let ready = notify_messages(&notify, Duration::from_secs(10), |m| m.contains("READY=1"));
    assert_eq!(ready.last().map(String::as_str), Some("READY=1\n"), "the first host says it is ready: {ready:?}");

    let answer = upgrade(&setup.socket, &setup.b, Duration::from_secs(60));
    let ControlResponse::HostUpgraded { pid, .. } = answer else { panic!("{answer:?}") };
    host.successors.push(pid);
    // The old host names the new main process; the new one says nothing to systemd itself (it
    // told the old host), so no second READY=1 and no message from it reaches the socket.
    let messages = notify_messages(&notify, Duration::from_secs(3), |_| false);
    assert_eq!(messages, vec![format!("MAINPID={pid}\n")], "after the upgrade from {first}");
    wait_until("the old host exits", Duration::from_secs(30), || host.has_exited(first));
    let _ = std::fs::remove_dir_all(&setup.dir);
}
