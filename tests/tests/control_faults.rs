//! The control socket against hostile clients, stuck reloads, odd paths and other users.
//!
//! Every test checks the same promises: the answer (or refusal) says clearly what happened;
//! the serving generation keeps answering calls; the control socket still answers a status
//! request afterwards. The CLI (`cargo xtask reload|status`, the same code as `cargo hotswap`)
//! is run as a real process for its messages, exit codes and `--json` output.
//!
//! Fixtures: `greeter_v1`/`greeter_v2` serve; `ctl_stuck` is a build of `greeter` whose
//! `on_load` loops while `ctl_stuck.marker` exists in the plugin folder.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hotswap_runtime::{
    ControlConfig, ControlError, ControlRequest, ControlResponse, ControlServer, PluginManager, Stage, args,
    send_request,
};
use hotswap_tests::build_plugin;
use hotswap_tests::tools::cli_json;
use serde_json::Value as Json;

const V1: &str = "tests/plugins/greeter_v1";
const V2: &str = "tests/plugins/greeter_v2";
const STUCK: &str = "tests/plugins/ctl_stuck";
/// Deadline for anything that only has to happen eventually; never reached unless stuck.
const PATIENCE: Duration = Duration::from_secs(60);
/// A user id nobody on the machine has.
const OTHER_UID: u32 = 4242;

/// A host serving `greeter` v1 as generation 1, with a control socket.
struct Host {
    tmp: tempfile::TempDir,
    plugins: PathBuf,
    manager: PluginManager,
    socket: PathBuf,
    server: Option<ControlServer>,
}

fn host(config: ControlConfig) -> Host {
    host_in(tempfile::tempdir().unwrap(), OsStr::new("plugins"), config)
}

fn host_in(tmp: tempfile::TempDir, folder: &OsStr, config: ControlConfig) -> Host {
    let plugins = tmp.path().join(folder);
    std::fs::create_dir(&plugins).unwrap();
    build_plugin(V1).install(&plugins);
    let manager = PluginManager::builder(&plugins).free_delay(Duration::ZERO).build().unwrap();
    assert_eq!(manager.load_plugins().unwrap().generation, 1);
    let socket = tmp.path().join("run").join("control.sock");
    let server = ControlServer::start_with(manager.clone(), &socket, config).unwrap();
    Host { tmp, plugins, manager, socket, server: Some(server) }
}

fn answer(manager: &PluginManager) -> String {
    manager.find_plugin("greeter").unwrap().invoke::<String>("answer", args![]).unwrap()
}

fn status(socket: &Path) -> (Option<u64>, ControlResponse) {
    let response = send_request(socket, &ControlRequest::Status, PATIENCE).expect("status answered");
    match &response {
        ControlResponse::Serving { generation, .. } => (*generation, response.clone()),
        other => panic!("expected a status answer, got {other:?}"),
    }
}

/// The promises every test ends with: generation `number` serves `expected` and the control
/// socket answers a status request saying so.
fn still_serving(host: &Host, number: u64, expected: &str) {
    assert_eq!(answer(&host.manager), expected);
    assert_eq!(host.manager.current().unwrap().number(), number);
    assert_eq!(status(&host.socket).0, Some(number), "the control socket answers afterwards");
}

/// Reads one line from `stream` (the server's answer to a raw client).
fn read_answer(stream: &mut UnixStream) -> ControlResponse {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A check that needs root: a failure under CI, a loud skip elsewhere
/// ([`hotswap_tests::skip_unless_ci`]).
fn require_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    hotswap_tests::skip_unless_ci(&format!("{what} needs root (CI runs it)"));
    false
}

// ---------------------------------------------------------------------------------------------
// The CLI, run as a process.
// ---------------------------------------------------------------------------------------------

/// Runs `xtask <args>` and returns its output.
fn run_cli(args: &[&OsStr]) -> Output {
    Command::new(hotswap_tests::tools::cli()).args(args).output().unwrap()
}

/// The host's resident memory, as an accepted reload or a status answer shows it.
fn assert_memory(json: &Json, reloads: u64) {
    let memory = &json["memory"];
    assert!(memory["rss_bytes"].as_u64().is_some_and(|rss| rss > 0), "{json}");
    assert!(memory["rss_change_bytes"].is_i64() && memory["rss_since_first_load_bytes"].is_i64(), "{json}");
    assert_eq!(memory["reloads_since_first_load"], reloads, "{json}");
}

/// The documented schema: every field is there, of its type.
fn assert_schema(json: &Json) {
    for field in ["command", "result", "socket", "message"] {
        assert!(json[field].is_string(), "{field} is a string: {json}");
    }
    assert!(json["exit_code"].is_u64(), "{json}");
    for field in ["plugins", "ignored", "stage_ms"] {
        assert!(json[field].is_array(), "{field} is an array: {json}");
    }
    for field in ["generation", "total_ms", "refusal", "reload_in_progress", "memory"] {
        assert!(json.get(field).is_some(), "{field} is present (null when not applicable): {json}");
    }
    for plugin in json["plugins"].as_array().unwrap() {
        for field in ["name", "version", "sha256", "file", "origin"] {
            assert!(plugin[field].is_string(), "plugin {field} is a string: {plugin}");
        }
        assert_eq!(plugin["sha256"].as_str().unwrap().len(), 64, "{plugin}");
        assert!(plugin["stage_ms"].is_array(), "{plugin}");
    }
}

// ---------------------------------------------------------------------------------------------
// Idle, trickling and too many clients.
// ---------------------------------------------------------------------------------------------

#[test]
fn idle_clients_delay_neither_status_nor_reload() {
    // A long request deadline: were connections still served one at a time, each idle client
    // would hold the socket for 30 s.
    let host = host(ControlConfig::default().request_deadline(Duration::from_secs(30)));
    let v2 = build_plugin(V2);
    let idle: Vec<UnixStream> = (0..3).map(|_| UnixStream::connect(&host.socket).unwrap()).collect();
    let started = Instant::now();
    assert_eq!(status(&host.socket).0, Some(1));
    v2.install(&host.plugins);
    match send_request(&host.socket, &ControlRequest::Reload, PATIENCE).unwrap() {
        ControlResponse::Accepted { generation: 2, plugins, .. } => assert_eq!(plugins[0].origin, "loaded"),
        other => panic!("expected generation 2 accepted, got {other:?}"),
    }
    eprintln!("status and reload answered in {:?} with 3 idle clients connected", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(20), "answered while 3 idle clients wait: {:?}", started.elapsed());
    still_serving(&host, 2, "v2");
    drop(idle);
}

#[test]
fn a_trickling_client_is_cut_off_at_the_request_deadline() {
    let host = host(ControlConfig::default().request_deadline(Duration::from_secs(2)));
    let mut trickler = UnixStream::connect(&host.socket).unwrap();
    let started = Instant::now();
    // One byte every 300 ms, never a newline: each read gets something, so only a deadline
    // over the whole request stops it.
    let trickle = {
        let mut stream = trickler.try_clone().unwrap();
        std::thread::spawn(move || {
            for byte in b"{\"command\":\"status\"        ".iter().cycle().take(40) {
                if stream.write_all(&[*byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    // Meanwhile, others are served.
    assert_eq!(status(&host.socket).0, Some(1));
    match read_answer(&mut trickler) {
        ControlResponse::Refused { reason, .. } => {
            assert!(reason.contains("no complete request line within 2 s"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let waited = started.elapsed();
    eprintln!("trickling client cut off after {waited:?} (request deadline 2 s)");
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(10), "cut off after {waited:?}");
    trickle.join().unwrap();
    still_serving(&host, 1, "v1");
}

#[test]
fn connections_beyond_the_bound_are_answered_busy_at_once() {
    let host = host(ControlConfig::default().max_connections(4).request_deadline(Duration::from_secs(3)));
    let mut idle: Vec<UnixStream> = (0..4).map(|_| UnixStream::connect(&host.socket).unwrap()).collect();
    let started = Instant::now();
    for _ in 0..3 {
        match send_request(&host.socket, &ControlRequest::Status, PATIENCE).unwrap() {
            ControlResponse::Busy { reason, reload: None } => {
                assert!(reason.contains("serving 4 control connections already (its limit)"), "{reason}")
            }
            other => panic!("expected busy, got {other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(3), "answered before any slot was freed");
    // The CLI says so with its own exit code.
    let (code, json) = cli_json(&host.socket, &["status"]);
    assert_eq!((code, json["result"].as_str()), (3, Some("busy")), "{json}");
    assert_schema(&json);
    // The idle ones are cut off at their deadline, with a reason, and free their slots.
    for stream in &mut idle {
        match read_answer(stream) {
            ControlResponse::Refused { reason, .. } => assert!(reason.contains("no complete request line"), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    let deadline = Instant::now() + PATIENCE;
    while !matches!(send_request(&host.socket, &ControlRequest::Status, PATIENCE), Ok(ControlResponse::Serving { .. }))
    {
        assert!(Instant::now() < deadline, "the slots were never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    still_serving(&host, 1, "v1");
}

// ---------------------------------------------------------------------------------------------
// A reload stuck in a plugin's hook.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_stuck_reload_blocks_neither_status_nor_the_next_answer_nor_shutdown() {
    let mut host = host(ControlConfig::default());
    let marker = host.plugins.join("ctl_stuck.marker");
    std::fs::write(&marker, b"").unwrap();
    build_plugin(STUCK).install(&host.plugins);

    // The CLI asks for the reload that gets stuck: it gives up after its timeout and says
    // why, once, with its own exit code, and what the host is doing.
    let output = run_cli(&[
        OsStr::new("reload"),
        OsStr::new("--timeout"),
        OsStr::new("2"),
        OsStr::new("--socket"),
        host.socket.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("no answer from the host on")
            && stderr.contains("within 2 s; the host may be stuck in a reload"),
        "{stderr}"
    );
    assert!(stderr.contains("(reload in progress for ") && stderr.contains("generation 1 keeps serving"), "{stderr}");
    assert_eq!(stderr.matches("no answer").count(), 1, "each cause once: {stderr}");
    assert!(!stderr.contains("os error"), "{stderr}");

    // Status answers at once, from the published generation, and says a reload runs.
    match status(&host.socket).1 {
        ControlResponse::Serving { generation: Some(1), reload: Some(running), plugins, .. } => {
            assert!(running.running_ms >= 1000, "{running:?}");
            assert_eq!(plugins[0].name, "greeter");
        }
        other => panic!("expected generation 1 with a reload running, got {other:?}"),
    }
    // A second reload is answered busy at once, in the library and in the CLI.
    let asked = Instant::now();
    let busy = send_request(&host.socket, &ControlRequest::Reload, PATIENCE).unwrap();
    eprintln!("busy answer in {:?} while a reload is stuck", asked.elapsed());
    match busy {
        ControlResponse::Busy { reason, reload: Some(_) } => {
            assert!(reason.starts_with("reload in progress for "), "{reason}")
        }
        other => panic!("expected busy, got {other:?}"),
    }
    match send_request(&host.socket, &ControlRequest::Reload, PATIENCE).unwrap() {
        ControlResponse::Busy { reason, reload: Some(_) } => {
            assert!(reason.starts_with("reload in progress for "), "{reason}")
        }
        other => panic!("expected busy, got {other:?}"),
    }
    let (code, json) = cli_json(&host.socket, &["reload"]);
    assert_eq!((code, json["result"].as_str()), (3, Some("busy")), "{json}");
    assert!(json["reload_in_progress"]["running_ms"].as_u64().unwrap() >= 1000, "{json}");
    assert_schema(&json);
    let (code, json) = cli_json(&host.socket, &["status"]);
    assert_eq!((code, json["result"].as_str(), json["generation"].as_u64()), (0, Some("serving"), Some(1)), "{json}");
    assert!(json["reload_in_progress"].is_object(), "{json}");
    still_serving(&host, 1, "v1");

    // Shutting the server down does not wait for the stuck reload.
    let started = Instant::now();
    drop(host.server.take());
    eprintln!("ControlServer dropped in {:?} while its reload is stuck", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5), "drop waited {:?}", started.elapsed());
    assert!(!host.socket.exists(), "the socket file is removed");
    assert_eq!(answer(&host.manager), "v1", "generation 1 keeps serving");

    // Let the hook go: the abandoned reload finishes on its own thread and publishes.
    std::fs::remove_file(&marker).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while host.manager.current().unwrap().number() < 2 {
        assert!(Instant::now() < deadline, "the released reload never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(answer(&host.manager), "ctl_stuck");
    // A new server on the same path answers.
    let _server = ControlServer::start(host.manager.clone(), &host.socket).unwrap();
    assert_eq!(status(&host.socket).0, Some(2));
    drop(host.tmp);
}

#[test]
fn a_host_that_never_answers_is_a_timeout_not_no_host() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("mute.sock");
    // Listens (so connecting works) but never accepts nor answers.
    let _mute = UnixListener::bind(&socket).unwrap();
    let error = send_request(&socket, &ControlRequest::Status, Duration::from_millis(500)).unwrap_err();
    assert!(matches!(error, ControlError::Timeout { .. }), "{error:?}");
    let (code, json) = cli_json(&socket, &["status", "--timeout", "1"]);
    assert_eq!((code, json["result"].as_str()), (4, Some("timeout")), "{json}");
    let message = json["message"].as_str().unwrap();
    assert!(message.contains("within 1 s; the host may be stuck in a reload"), "{message}");
    assert_schema(&json);
    // Nothing there at all is "no host", exit 2.
    let (code, json) = cli_json(&tmp.path().join("nothing.sock"), &["reload"]);
    assert_eq!((code, json["result"].as_str()), (2, Some("no-host")), "{json}");
    assert!(json["message"].as_str().unwrap().contains("no host is listening"), "{json}");
}

// ---------------------------------------------------------------------------------------------
// The --json output of accepted and refused reloads.
// ---------------------------------------------------------------------------------------------

#[test]
fn reload_and_status_json_follow_the_documented_schema() {
    let host = host(ControlConfig::default());
    let v2 = build_plugin(V2);
    v2.install(&host.plugins);
    let (code, json) = cli_json(&host.socket, &["reload"]);
    assert_schema(&json);
    assert_eq!((code, json["result"].as_str(), json["generation"].as_u64()), (0, Some("accepted"), Some(2)), "{json}");
    assert_eq!(json["command"], "reload");
    let plugin = &json["plugins"][0];
    assert_eq!((plugin["name"].as_str(), plugin["version"].as_str()), (Some("greeter"), Some(v2.version().as_str())));
    assert_eq!(plugin["origin"], "loaded");
    assert_eq!(
        plugin["sha256"].as_str().unwrap(),
        hotswap_runtime::inspect::sha256_hex(&std::fs::read(&v2.library).unwrap())
    );
    assert!(
        plugin["stage_ms"].as_array().unwrap().iter().any(|s| s["stage"] == "on_load" && s["ms"].is_f64()),
        "{plugin}"
    );
    assert!(json["stage_ms"].as_array().unwrap().iter().any(|s| s["stage"] == "scan"), "{json}");
    assert!(json["total_ms"].is_f64() && json["refusal"].is_null(), "{json}");
    assert_memory(&json, 1);

    // Reloading the same files keeps the instance: origin `unchanged`.
    let (_, json) = cli_json(&host.socket, &["reload"]);
    assert_eq!(json["plugins"][0]["origin"], "unchanged", "{json}");

    let broken = host.plugins.join("greeter@9.9.9.so");
    std::fs::write(&broken, b"\x7fELF, but cut short").unwrap();
    let (code, json) = cli_json(&host.socket, &["reload"]);
    assert_schema(&json);
    assert_eq!((code, json["result"].as_str()), (1, Some("refused")), "{json}");
    let refusal = &json["refusal"];
    assert_eq!(refusal["plugin"], "greeter", "{json}");
    assert_eq!(refusal["file"].as_str(), broken.to_str(), "{json}");
    assert_eq!(refusal["stage"], "inspect", "{json}");
    assert!(refusal["reason"].as_str().unwrap().contains("refused at stage `inspect`"), "{json}");

    let (code, json) = cli_json(&host.socket, &["status"]);
    assert_schema(&json);
    assert_eq!((code, json["result"].as_str(), json["generation"].as_u64()), (0, Some("serving"), Some(3)), "{json}");
    assert_eq!(json["plugins"][0]["loaded_in_generation"], 2, "kept since generation 2: {json}");
    assert_eq!(json["plugins"][0]["origin"], "unchanged", "{json}");
    assert_memory(&json, 2);

    // Text mode: refused exits 1 and says the previous generation keeps serving.
    let output = run_cli(&[OsStr::new("reload"), OsStr::new("--socket"), host.socket.as_os_str()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("refused: plugin `greeter` refused at stage `inspect`"), "{stdout}");
    assert!(stdout.contains("the previous generation keeps serving"), "{stdout}");
    std::fs::remove_file(&broken).unwrap();
    still_serving(&host, 3, "v2");
    // And `status` says the host's resident memory.
    let output = run_cli(&[OsStr::new("status"), OsStr::new("--socket"), host.socket.as_os_str()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("since the first load, over 2 reloads)"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// Paths: a non-UTF-8 plugin folder, whatever is at the socket path, a symlinked folder.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_plugin_folder_with_a_non_utf8_name_is_reported_lossily() {
    let host = host_in(tempfile::tempdir().unwrap(), OsStr::from_bytes(b"plug\xffins"), ControlConfig::default());
    match status(&host.socket).1 {
        ControlResponse::Serving { plugins, .. } => assert!(plugins[0].file.contains("plug\u{FFFD}ins"), "{plugins:?}"),
        other => panic!("{other:?}"),
    }
    build_plugin(V2).install(&host.plugins);
    match send_request(&host.socket, &ControlRequest::Reload, PATIENCE).unwrap() {
        ControlResponse::Accepted { generation: 2, plugins, .. } => assert!(plugins[0].file.contains('\u{FFFD}')),
        other => panic!("expected generation 2 accepted, got {other:?}"),
    }
    std::fs::write(host.plugins.join("broken.so"), b"\x7fELF, but cut short").unwrap();
    match send_request(&host.socket, &ControlRequest::Reload, PATIENCE).unwrap() {
        ControlResponse::Refused { file: Some(file), stage: Some(Stage::Inspect), .. } => {
            assert!(file.ends_with("plug\u{FFFD}ins/broken.so"), "{file}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let (code, json) = cli_json(&host.socket, &["status"]);
    assert_eq!(code, 0, "{json}");
    still_serving(&host, 2, "v2");
}

#[test]
fn only_a_socket_no_process_answers_on_is_replaced() {
    let host = host(ControlConfig::default());
    let run = host.socket.parent().unwrap();
    // A regular file given by mistake is left alone.
    let notes = run.join("notes.txt");
    std::fs::write(&notes, b"my notes").unwrap();
    let error = ControlServer::start(host.manager.clone(), &notes).expect_err("refused");
    assert!(matches!(error, ControlError::NotASocket { what: "a regular file", .. }), "{error}");
    assert!(error.to_string().contains("refusing to replace it"), "{error}");
    assert_eq!(std::fs::read(&notes).unwrap(), b"my notes");
    // So are a folder and a symbolic link (even one to a dead socket).
    std::fs::create_dir(run.join("folder")).unwrap();
    let error = ControlServer::start(host.manager.clone(), run.join("folder")).expect_err("refused");
    assert!(error.to_string().contains("is a folder, not a socket"), "{error}");
    let dead = run.join("dead.sock");
    drop(UnixListener::bind(&dead).unwrap());
    std::os::unix::fs::symlink(&dead, run.join("link.sock")).unwrap();
    let error = ControlServer::start(host.manager.clone(), run.join("link.sock")).expect_err("refused");
    assert!(error.to_string().contains("is a symbolic link, not a socket"), "{error}");
    // A live socket is in use.
    let error = ControlServer::start(host.manager.clone(), &host.socket).expect_err("in use");
    assert!(matches!(error, ControlError::InUse(_)), "{error}");
    // A dead socket (its host gone, the file left) is replaced.
    let server = ControlServer::start(host.manager.clone(), &dead).expect("a dead socket is replaced");
    assert_eq!(status(&dead).0, Some(1));
    drop(server);
    assert!(!dead.exists());
    still_serving(&host, 1, "v1");
}

#[test]
fn a_symlinked_socket_folder_is_refused() {
    let host = host(ControlConfig::default());
    // The squatting set-up: `/tmp/hotswap-<uid>` made a link (by another user, who may write
    // /tmp) to a folder of ours, which would pass every check made through the link.
    let real = host.tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = host.tmp.path().join("hotswap-link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let error = ControlServer::start(host.manager.clone(), link.join("control.sock")).expect_err("refused");
    assert!(matches!(error, ControlError::UnsafeFolder { .. }), "{error}");
    assert!(error.to_string().contains("it is a symbolic link"), "{error}");
    assert!(std::fs::read_dir(&real).unwrap().next().is_none(), "nothing was created through the link");
    still_serving(&host, 1, "v1");
}

// ---------------------------------------------------------------------------------------------
// Other users.
// ---------------------------------------------------------------------------------------------

/// A fake host listening on `socket` as user `uid` (this thread's effective user id is
/// switched for the bind and listen, which is when the kernel records the server's
/// credentials): it answers every request "accepted: generation 999" and reports whether
/// any request reached it.
fn impostor(socket: &Path, uid: u32) -> std::thread::JoinHandle<Vec<String>> {
    let socket = socket.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        use rustix::process::Uid;
        let other = Uid::from_raw(uid);
        rustix::thread::set_thread_res_uid(None::<Uid>, other, None::<Uid>).unwrap();
        let listener = UnixListener::bind(&socket);
        rustix::thread::set_thread_res_uid(None::<Uid>, Uid::ROOT, None::<Uid>).unwrap();
        let listener = listener.unwrap();
        tx.send(()).unwrap();
        let mut requests = Vec::new();
        // Serves two connections: the library's and the CLI's.
        for stream in listener.incoming().take(2) {
            let mut stream = stream.unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut request = [0u8; 256];
            let n = stream.read(&mut request).unwrap_or(0);
            requests.push(String::from_utf8_lossy(&request[..n]).into_owned());
            let forged =
                r#"{"status":"accepted","generation":999,"plugins":[],"ignored":[],"stage_ms":[],"total_ms":1.0}"#;
            let _ = stream.write_all(format!("{forged}\n").as_bytes());
        }
        requests
    });
    rx.recv().unwrap();
    thread
}

#[test]
fn a_server_running_as_another_user_is_not_trusted() {
    if !require_root("a server running as another user") {
        return;
    }
    let host = host(ControlConfig::default());
    // Let the other user reach a folder of its own inside the test's temporary folder.
    std::fs::set_permissions(host.tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    // The attacker's folder, and the name the client uses re-pointed at it.
    let theirs = host.tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    let link = host.tmp.path().join("hotswap-squatted");
    std::os::unix::fs::symlink(&theirs, &link).unwrap();
    let fake = impostor(&theirs.join("control.sock"), OTHER_UID);
    let socket = link.join("control.sock");

    let error = send_request(&socket, &ControlRequest::Reload, PATIENCE).unwrap_err();
    match &error {
        ControlError::Untrusted { peer_uid, .. } => assert_eq!(*peer_uid, OTHER_UID),
        other => panic!("expected an untrusted server, got {other:?}"),
    }
    assert!(error.to_string().contains(&format!("runs as uid {OTHER_UID}")), "{error}");
    let (code, json) = cli_json(&socket, &["reload"]);
    assert_eq!((code, json["result"].as_str()), (6, Some("untrusted")), "{json}");
    assert!(json["generation"].is_null(), "the forged generation is not reported: {json}");
    assert_schema(&json);
    assert_eq!(fake.join().unwrap(), vec![String::new(), String::new()], "no request was sent to the impostor");
    still_serving(&host, 1, "v1");
}

#[test]
fn a_user_who_may_not_use_the_socket_is_told_a_host_is_there() {
    if !require_root("running the CLI as another user") {
        return;
    }
    let host = host(ControlConfig::default());
    // The CLI binary must be reachable by the other user.
    let bin = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = bin.path().join("xtask");
    std::fs::copy(hotswap_tests::tools::cli(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let setpriv = Path::new("/usr/bin/setpriv");
    assert!(setpriv.exists(), "setpriv (util-linux) is needed to run as another user");
    let output = Command::new(setpriv)
        .args([format!("--reuid={OTHER_UID}"), format!("--regid={OTHER_UID}"), "--clear-groups".into()])
        .arg(&copy)
        .args([OsStr::new("status"), OsStr::new("--socket"), host.socket.as_os_str()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("a host's control socket is at"), "{stderr}");
    assert!(stderr.contains(&format!("this user (uid {OTHER_UID}) may not use it (Permission denied")), "{stderr}");
    assert!(!stderr.contains("no host is listening"), "{stderr}");
    assert_eq!(stderr.matches("Permission denied").count(), 1, "each cause once: {stderr}");
    still_serving(&host, 1, "v1");
}
