//! Issue 23 §2–§4 on the shared route: ordinary axum code in a plugin (`tests/shared_axum/`,
//! plugin `web`), mounted in an axum host with `hotswap_axum::PluginRouter`, driven by real
//! HTTP, SSE and WebSocket clients over loopback while the host reloads the plugin. Host,
//! shared dylib (tokio, axum, hyper, tracing, log) and plugin are built with `-C
//! prefer-dynamic --cfg tokio_unstable`, the plugin with the real `cargo xtask build`, in the
//! fixture's own workspace and target folder (`target/shared-axum`).
//!
//! Each test runs one scenario of the host (`tests/shared_axum/host/src/scenarios.rs`) in its
//! own process and compares the lines it prints. Generation `g` runs build v1 when `g` is odd,
//! v2 when even; every answer names the build and the generation whose library copy made it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use hotswap_tests::shared_route::{FLAGS, cargo, check, toolkit_target};

struct Fixture {
    host: PathBuf,
    builds: tempfile::TempDir,
    library_path: String,
}

/// Builds the host (with the shared dylib) and the plugin's two builds, once per test process.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = hotswap_tests::workspace_root();
        let fixture = root.join("tests/shared_axum");
        let target = toolkit_target(&root).join("shared-axum");
        check(
            cargo()
                .args(["build", "--quiet", "--manifest-path"])
                .arg(fixture.join("Cargo.toml"))
                .args(["-p", "axum_host"])
                .env("RUSTFLAGS", FLAGS)
                .env("CARGO_TARGET_DIR", &target)
                .output()
                .unwrap(),
            "building the axum host",
        );
        let shared = target.join("debug/deps/libshared_axum.so");
        let shared_before = std::fs::read(&shared).unwrap();
        check(cargo().current_dir(&root).args(["build", "--quiet", "-p", "xtask"]).output().unwrap(), "building xtask");
        let xtask = toolkit_target(&root).join("debug/xtask");
        let builds = tempfile::tempdir().unwrap();
        for (build, extra) in [("v1", &[][..]), ("v2", &["--", "--features", "v2"][..])] {
            check(
                Command::new(&xtask)
                    .current_dir(&root)
                    .args(["build", "--debug"])
                    .arg(fixture.join("plugin"))
                    .arg(builds.path().join(build))
                    .args(extra)
                    .env("RUSTFLAGS", FLAGS)
                    .env("CARGO_TARGET_DIR", &target)
                    .output()
                    .unwrap(),
                &format!("cargo xtask build of web {build}"),
            );
        }
        // axum's `ws` turns on tokio's `macros` (a proc macro): building the plugin must still
        // leave the shared library the host links untouched.
        assert!(std::fs::read(&shared).unwrap() == shared_before, "building the plugin rebuilt {}", shared.display());
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let libdir = check(Command::new(rustc).args(["--print", "target-libdir"]).output().unwrap(), "rustc --print");
        Fixture {
            host: target.join("debug/axum_host"),
            builds,
            library_path: format!("{}:{}", target.join("debug/deps").display(), libdir.trim()),
        }
    })
}

/// Runs `scenario` in a fresh host process; its stdout lines.
fn run(scenario: &str) -> Vec<String> {
    let fixture = fixture();
    let dirs = tempfile::tempdir().unwrap();
    let (folder, work) = (dirs.path().join("plugins"), dirs.path().join("work"));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let stdout = check(
        Command::new(&fixture.host)
            .arg(scenario)
            .args([&folder, &work, &fixture.builds.path().join("v1"), &fixture.builds.path().join("v2")])
            .env("LD_LIBRARY_PATH", &fixture.library_path)
            // A panic's backtrace maps the files of the libraries it symbolises (std keeps
            // them cached): a library a panic went through would look mapped after its unload.
            .env("RUST_BACKTRACE", "0")
            .env_remove("AXUM_HOST_NO_PIN")
            .env_remove("AXUM_HOST_NO_SCOPE")
            .output()
            .unwrap(),
        &format!("the axum host, scenario {scenario}"),
    );
    stdout.lines().map(String::from).collect()
}

fn assert_lines(lines: &[String], expected: &[&str]) {
    assert_eq!(lines, expected, "\n{}", lines.join("\n"));
}

/// (a) A raw `tokio::spawn` task started by a handler sleeps past three reloads (each freeing
/// the generation it came from at once) and finishes on the code that spawned it: the host's
/// task hook pinned its library. The task's event is recorded in its plugin's span. Without the pin (`AXUM_HOST_NO_PIN=1`) the host dies with
/// SIGSEGV.
#[test]
fn a_task_spawned_by_a_handler_outlives_three_reloads_on_its_code() {
    assert_lines(
        &run("spawn"),
        &[
            "SPAWN 200 spawned 1 on v1 gen=1",
            "RELOAD 1 generation=2 serving=200 v2 gen=2 gen1_mapped=true",
            "RELOAD 2 generation=3 serving=200 v1 gen=3 gen1_mapped=true",
            "RELOAD 3 generation=4 serving=200 v2 gen=4 gen1_mapped=true",
            "TASK task 1 spawned by v1 gen=1 finished on v1 gen=1",
            "AFTER gen1_mapped=true",
            "LOG INFO shared_axum_web: task finished id=1 in plugin{name=web generation=1}",
        ],
    );
}

/// (b) An SSE stream of 100 events opened on generation 1 spans 10 reloads (each freeing the
/// replaced generation at once) and arrives complete, in order, every event made by
/// generation 1's code; a request after each reload gets the newest code, and so does a new
/// stream.
#[test]
fn an_sse_stream_spanning_ten_reloads_arrives_whole_from_the_generation_that_started_it() {
    assert_lines(
        &run("sse"),
        &[
            "SSE 200",
            "SSE 100 events in order from v1 gen=1",
            "SSE then End",
            "SERVING 200 v2 gen=2, 200 v1 gen=3, 200 v2 gen=4, 200 v1 gen=5, 200 v2 gen=6, 200 v1 gen=7, \
             200 v2 gen=8, 200 v1 gen=9, 200 v2 gen=10, 200 v1 gen=11",
            r#"NEW SSE 200 Event("v1 gen=11 seq=0") Event("v1 gen=11 seq=1") End"#,
        ],
    );
}

/// (c) A WebSocket opened before each of 10 reloads (axum's `on_upgrade` spawns its task)
/// keeps echoing on the generation it was opened on; a new one gets the newest code.
#[test]
fn websockets_opened_before_each_of_ten_reloads_keep_echoing_on_their_generation() {
    let mut expected: Vec<String> = (1..=11)
        .map(|g| {
            let me = format!("{} gen={g}", if g % 2 == 1 { "v1" } else { "v2" });
            format!("WS {g} opened: {me}: hello; after 10 reloads: {me}: again")
        })
        .collect();
    expected.push("WS new: v1 gen=11: hello".into());
    expected.push("MAPPED all generations that upgraded a socket: true".into());
    assert_lines(&run("ws"), &expected.iter().map(String::as_str).collect::<Vec<_>>());
}

/// A reload makes the new generation's router before it serves: when `reload` returns, before
/// any request, its router is made; generation 1's (loaded before the `PluginRouter` existed)
/// is made by its first request.
#[test]
fn a_reload_makes_the_new_generations_router_before_the_generation_serves() {
    assert_lines(
        &run("prepared"),
        &[
            "GENERATION 1 routers made before a request: 0",
            "SERVING 200 v1 gen=1",
            "GENERATION 1 routers made after a request: 1",
            "GENERATION 2 routers made when the reload returned: 1",
            "SERVING 200 v2 gen=2",
            "GENERATION 2 routers made after a request: 1",
        ],
    );
}

/// (d) A panicking handler answers 500, a panicking stream is cut short after its first
/// events (one that panics when first polled, before anything is sent, answers 500), a panicking spawned task ends alone; each is logged with plugin and generation,
/// and the host goes on serving and reloading.
#[test]
fn panics_in_a_handler_a_stream_and_a_spawned_task_are_contained_and_logged() {
    assert_lines(
        &run("panics"),
        &[
            "PANIC handler status=500",
            "PANIC task 200 spawned a panicking task on v1 gen=1",
            r#"PANIC stream status=200 events=["v1 gen=1 seq=0", "v1 gen=1 seq=1"] then Cut"#,
            "PANIC first frame status=500 plugin `web` panicked",
            "AFTER 200 v1 gen=1",
            "RELOAD generation=2 serving=200 v2 gen=2",
            "LOG ERROR hotswap_axum::body: panic in the plugin's code while streaming the response body: stream \
             panicked at once on purpose (v1 gen=1) plugin=web generation=1",
            "LOG ERROR hotswap_axum::body: panic in the plugin's code while streaming the response body: stream \
             panicked on purpose (v1 gen=1) plugin=web generation=1",
            "LOG ERROR hotswap_axum::scope: plugin code panicked: handler panicked on purpose (v1 gen=1) plugin=web \
             generation=1 in plugin{name=web generation=1}",
            "LOG ERROR hotswap_axum::scope: plugin code panicked: spawned task panicked on purpose (v1 gen=1) \
             plugin=web generation=1 in plugin{name=web generation=1}",
            "LOG ERROR hotswap_axum::scope: plugin code panicked: stream panicked at once on purpose (v1 gen=1) \
             plugin=web generation=1 in plugin{name=web generation=1}",
            "LOG ERROR hotswap_axum::scope: plugin code panicked: stream panicked on purpose (v1 gen=1) plugin=web \
             generation=1 in plugin{name=web generation=1}",
            "LOG ERROR hotswap_axum::service: panic in the plugin's code while handling the request: handler \
             panicked on purpose (v1 gen=1) plugin=web generation=1",
        ],
    );
}

/// (e) In `/proc/self/maps`: a generation with a live stream stays mapped while a replaced
/// generation without one is unmapped; once the stream ends its generation is unmapped too (a
/// body holds its generation only while it exists). A library whose code spawned a task stays
/// mapped while the task runs and after (pinned for the process: tokio may free the task
/// through its code later).
#[test]
fn a_generation_is_unmapped_once_its_stream_ends_and_kept_while_it_streams_or_spawned() {
    assert_lines(
        &run("unmap"),
        &[
            r#"STREAM 200 Event("v1 gen=1 seq=0")"#,
            "SERVING 200 v2 gen=2",
            "SERVING 200 v1 gen=3",
            "LIVE STREAM gen1_mapped=true gen2_unmapped=true",
            r#"STREAM Event("v1 gen=1 seq=1") Event("v1 gen=1 seq=2") End"#,
            "STREAM ENDED gen1_unmapped=true",
            "SPAWN 200 spawned 3 on v1 gen=3",
            "SERVING 200 v2 gen=4",
            "LIVE TASK gen3_mapped=true",
            r#"TASK Some("task 3 spawned by v1 gen=3 finished on v1 gen=3")"#,
            "TASK ENDED gen3_mapped=true (pinned for the process)",
        ],
    );
}

/// A 256 KiB body in the plugin's read-only data (axum sends a `&'static [u8]` as
/// `Bytes::from_static`), most of it still queued in hyper for a slow client when its
/// generation is replaced and unmapped, arrives whole: `PluginRouter` copies the body's frames
/// as they leave the plugin (without the copy, hyper's write reads the unmapped library and the
/// connection breaks).
#[test]
fn a_static_body_queued_for_a_slow_client_survives_its_library_being_unmapped() {
    assert_lines(
        &run("static"),
        &["RELOADED serving=200 v2 gen=2 gen1_unmapped=true", "STATIC 262144 bytes whole=true"],
    );
}

/// Ordinary axum code in the plugin's router: `Path`, `Query`, `Json` in and out (a bad body
/// is axum's own 400), a middleware layer (`x-served-by`), the router's own 404, next to the
/// host's own route; after a reload the new code answers. The handler's `tracing::info!` and
/// `log::info!` reach the host's subscriber inside the span `plugin{name, generation}` that
/// `PluginRouter` enters around the plugin's code.
#[test]
fn extractors_json_and_a_middleware_layer_work_unchanged_in_the_plugin() {
    assert_lines(
        &run("axum"),
        &[
            r#"ITEM 200 [v1 gen=1] {"by":"v1 gen=1","id":7,"q":"x"}"#,
            r#"ECHO 200 [v1 gen=1] {"by":"v1 gen=1","echo":{"a":[1,2]}}"#,
            "BAD JSON 400 [v1 gen=1]",
            "MISSING 404 [v1 gen=1] ",
            "HOST 200 [] the host's own route",
            r#"ITEM 200 [v2 gen=2] {"by":"v2 gen=2","id":8,"q":null}"#,
            "LOG INFO shared_axum_web: item asked id=7 in plugin{name=web generation=1}",
            "LOG INFO shared_axum_web: item asked id=8 in plugin{name=web generation=2}",
            "LOG INFO shared_axum_web: log record for item 7 in plugin{name=web generation=1}",
            "LOG INFO shared_axum_web: log record for item 8 in plugin{name=web generation=2}",
        ],
    );
}

/// A long-lived connection moves on when its generation is replaced: the plugin's `on_free`
/// fires a notification its WebSocket loop waits for, which closes the socket with 1012
/// `reconnect` after a drain period of 100 ms; the client's new socket gets the new code.
#[test]
fn a_websocket_is_told_to_reconnect_after_a_drain_period_when_its_generation_is_replaced() {
    assert_lines(
        &run("drain"),
        &["WS v1 gen=1: hello", "CLOSED 1012 reconnect after_drain=true", "RECONNECTED v2 gen=2: hello"],
    );
}

/// What a plugin's response hands the host stays valid once the generation that made it is
/// unmapped: a header name made by `HeaderName::from_static` in the plugin (as tower-http's
/// layers make theirs; its bytes are in the library's read-only data) and the plugin's own
/// error type ending a body stream (its `Display` is the library's code; hyper drops the body,
/// and with it the generation, before it displays and drops the error). The host calls
/// `PluginRouter` as a `tower::Service`, keeps the head and the error, lets the generation go
/// and reads them: without the copies the host reads unmapped memory (SIGSEGV).
#[test]
fn header_names_and_body_errors_outlive_the_generation_that_made_them() {
    assert_lines(
        &run("kept"),
        &[
            r#"HEAD 200 ["x-static-name: static-value"] generation=2 gen1_unmapped=true"#,
            r#"BODY ["first"] then plugin `web` (generation 2): the response body failed: plugin-made error (v2 gen=2) generation=3 gen2_unmapped=true"#,
        ],
    );
}

/// Two `PluginRouter`s of one plugin do not share a generation's router: one whose state the
/// plugin's router function refuses (another type) answers 500 naming plugin and generation,
/// every time, also after the other one built the generation's router; the other serves.
#[test]
fn a_router_with_a_state_the_plugin_refuses_answers_500_and_never_borrows_another_routers() {
    assert_lines(
        &run("wrong-state"),
        &[
            "WRONG STATE 1 500 plugin `web` (generation 1) gave no router",
            "SERVING 200 v1 gen=1",
            "WRONG STATE 2 500 plugin `web` (generation 1) gave no router",
            "SERVING 200 v1 gen=1",
            "LOG ERROR hotswap_axum::service: plugin `web` (generation 1) gave no router: plugin `web`: \
             hotswap_axum_router: argument 0: expected a value of type `shared_axum::AppState`, found `u32` \
             plugin=\"web\" generation=1",
            "LOG ERROR hotswap_axum::service: plugin `web` (generation 1) gave no router: plugin `web`: \
             hotswap_axum_router: argument 0: expected a value of type `shared_axum::AppState`, found `u32` \
             plugin=\"web\" generation=1",
        ],
    );
}

/// The plugin's router function runs off the request path (issue 23 review): with a second
/// `PluginRouter` (router timeout 500 ms) whose router function sleeps 3 s, two requests
/// waiting for it hold none of the host's two runtime workers, so a request to the first
/// router is answered before the function returns (before the fix, both workers were blocked
/// in it and the answer came after); the waiting requests answer 503 naming plugin and
/// generation, and so does a request past the timeout at once; then its router serves. A
/// panicking router function answers 500 naming plugin and generation, and the next request
/// asks again.
#[test]
fn a_slow_router_function_stalls_no_worker_and_answers_503_after_the_router_timeout() {
    assert_lines(
        &run("router-fn"),
        &[
            "FIRST 200 v1 gen=1",
            r#"ARM 200 armed ["router_ms"] on v1 gen=1"#,
            "FIRST while the router function sleeps: 200 v1 gen=1; it returned before: None",
            "WAITED 503 plugin `web` (generation 1) gave no router within 500 ms: its router function is still running",
            "WAITED 503 plugin `web` (generation 1) gave no router within 500 ms: its router function is still running",
            "PAST THE TIMEOUT 503 plugin `web` (generation 1) gave no router within 500 ms: its router function is \
             still running",
            "EVENT router function slept 3000 ms on v1 gen=1",
            "SECOND 200 v1 gen=1",
            r#"ARM 200 armed ["router_panic"] on v1 gen=1"#,
            "THIRD 500 plugin `web` (generation 1) gave no router",
            "THIRD again 200 v1 gen=1",
            "SECOND after a reload 200 v2 gen=2",
            "LOG ERROR hotswap_axum::making: the plugin's router function has not returned after 500 ms: requests to \
             this generation answer 503 until it does plugin=web generation=1",
            "LOG ERROR hotswap_axum::scope: plugin code panicked: router function panicked on purpose (v1 gen=1) \
             plugin=web generation=1 in plugin{name=web generation=1}",
            "LOG ERROR hotswap_axum::service: plugin `web` (generation 1) gave no router: plugin `web`: \
             hotswap_axum_router panicked: router function panicked on purpose (v1 gen=1) plugin=\"web\" generation=1",
            "LOG WARN hotswap_axum::service: plugin `web` (generation 1) gave no router within 500 ms: its router \
             function is still running plugin=\"web\" generation=1",
        ],
    );
}

/// A plugin type whose drop panics, held by generation 1's router, panics when the router goes
/// with its generation on the manager's reaper: the panic is logged with plugin and
/// generation (before the fix only the runtime's generic line, without either), the library
/// is unmapped, and later reloads and requests work.
#[test]
fn a_router_whose_drop_panics_is_contained_and_logged_with_plugin_and_generation() {
    assert_lines(
        &run("router-drop"),
        &[
            "BOMB 200 bomb held by v1 gen=1",
            r#"ARM 200 armed ["drop_panic"] on v1 gen=1"#,
            "RELOAD generation=2 gen1_unmapped=true",
            "RELOAD generation=3 serving=200 v1 gen=3 gen2_unmapped=true",
            "BOMB 200 bomb held by v1 gen=3",
            "LOG ERROR hotswap_axum::making: panic in the plugin's code while dropping its router: a \
             `axum::routing::Router` panicked when dropped: router dropped on purpose (v1 gen=1) plugin=web \
             generation=1 in plugin{name=web generation=1}",
            "LOG ERROR hotswap_axum::scope: plugin code panicked: a `axum::routing::Router` panicked when dropped: \
             router dropped on purpose (v1 gen=1) plugin=web generation=1 in plugin{name=web generation=1}",
            "LOG ERROR hotswap_axum::scope: plugin code panicked: router dropped on purpose (v1 gen=1) plugin=web \
             generation=1 in plugin{name=web generation=1}",
        ],
    );
}

/// A custom reason phrase a handler sets (`hyper::ext::ReasonPhrase`) reaches the client's
/// status line (before the fix it went with the response's extensions: `OK`).
#[test]
fn a_custom_reason_phrase_reaches_the_client() {
    assert_lines(&run("reason"), &[r#"REASON 200 Some("Fine By The Plugin") reason from v1 gen=1"#]);
}

/// A 4 MiB chunked request body read frame by frame by the plugin's handler, generation 1
/// replaced and freed when half of it is sent: the upload completes whole on generation 1's
/// code while new requests get generation 2, and generation 1 is unmapped once it answered.
#[test]
fn a_request_body_streamed_into_the_plugin_completes_on_its_generation_across_a_reload() {
    assert_lines(
        &run("upload"),
        &[
            "RELOAD mid-body generation=2 serving=200 v2 gen=2 gen1_mapped=true",
            "UPLOAD 200 received 4194304 bytes streamed=true whole=true started on v1 gen=1 finished on v1 gen=1",
            "AFTER gen1_unmapped=true",
        ],
    );
}

/// Host tower layers (axum middleware) around `PluginRouter`: the host's header beside the
/// plugin's, a host timeout dropping the plugin's response future (its generation then goes:
/// unmapped after a reload), a concurrency limit of two answering the third request 503.
#[test]
fn host_tower_layers_wrap_the_plugin_router() {
    assert_lines(
        &run("layers"),
        &[
            r#"BUILD 200 host=Some("host") plugin=Some("v1 gen=1") v1 gen=1"#,
            "TIMEOUT 504 host=None plugin=None host timeout",
            "RELOAD generation=2 gen1_unmapped=true",
            r#"LIMIT ["200 host=Some(\"host\") plugin=Some(\"v2 gen=2\") slept on v2 gen=2", "200 host=Some(\"host\") plugin=Some(\"v2 gen=2\") slept on v2 gen=2", "503 host=None plugin=None host busy"]"#,
        ],
    );
}

/// `ReloadReport::tasks` (and `PluginManager::live_tasks`) carry the host's task census: a task
/// generation 1 spawned, sleeping past a reload, is counted as generation 1's; after it ended,
/// none; the control socket's reload answer carries the same count (built from the report).
#[test]
fn the_reload_report_counts_tasks_still_running_on_plugin_code() {
    assert_lines(
        &run("tasks"),
        &[
            "SPAWN 200 spawned 5 on v1 gen=1",
            r#"REPORT generation=2 tasks=Some(["web@1=1"]) live_tasks=Some(["web@1=1"])"#,
            r#"TASK Some("task 5 spawned by v1 gen=1 finished on v1 gen=1")"#,
            "REPORT generation=3 tasks=Some([]) live_tasks=Some([])",
            "SPAWN 200 spawned 6 on v1 gen=3",
            r#"SOCKET RELOAD generation=4 tasks=Some(["web@3=1"])"#,
        ],
    );
}
