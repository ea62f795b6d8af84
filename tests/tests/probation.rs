//! Probation and rollback (issue 25, section 1), on real builds of plugin `probe`
//! (`tests/plugins/probation`, builds `p1` and, with feature `v2`, `p2`): a
//! reload on probation keeps the previous generation ready; a rollback asked for, a failed
//! health check or too many panics bring it back without running its hooks again; a probation
//! that passes is confirmed; each plugin's `on_free` runs once. Through the API, the control
//! socket and the CLI.

use std::path::Path;
use std::time::{Duration, Instant};

use hotswap_runtime::{
    ControlRequest, ControlResponse, ControlServer, LoadErrorKind, PluginManager, Probation, ProbationError,
    ProbationResult, args,
};
use hotswap_tests::tools::cli_json;
use hotswap_tests::{BuiltPlugin, build_plugin_with_features};

/// Build `p1` or (feature `v2`) `p2` of plugin `probe`.
fn build(label: &str) -> BuiltPlugin {
    let features: &[&str] = if label == "p2" { &["v2"] } else { &[] };
    build_plugin_with_features("tests/plugins/probation", features, cfg!(debug_assertions))
}

fn answer(manager: &PluginManager) -> String {
    manager.invoke::<String>("probe", "answer", args![]).unwrap()
}

/// The hooks the plugins logged so far, one `<hook> <version>` each.
fn hooks(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("hooks.log")).unwrap_or_default().lines().map(str::to_string).collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "not within 20 s: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `p1` serving as generation 1, `p2` installed as the newest file.
fn p1_serving_p2_installed(builder: impl FnOnce(&Path) -> PluginManager) -> (tempfile::TempDir, PluginManager) {
    let (p1, p2) = (build("p1"), build("p2"));
    let dir = tempfile::tempdir().unwrap();
    p1.install(dir.path());
    let manager = builder(dir.path());
    manager.load_plugins().unwrap();
    assert_eq!(answer(&manager), "p1");
    p2.install_newest(dir.path());
    (dir, manager)
}

fn plain(dir: &Path) -> PluginManager {
    PluginManager::builder(dir).free_delay(Duration::ZERO).build().unwrap()
}

#[test]
fn a_rollback_brings_the_previous_generation_back_without_its_hooks_and_frees_the_newer_once() {
    let (dir, manager) = p1_serving_p2_installed(plain);
    let report = manager.reload_on_probation(Probation::new(Duration::from_secs(600))).unwrap();
    assert_eq!((report.generation, answer(&manager).as_str()), (2, "p2"));
    let status = manager.probation().expect("on probation");
    assert_eq!((status.generation, status.previous, status.max_panics), (2, 1, 0));
    assert!(status.remaining_ms > 500_000, "{status:?}");
    assert_eq!(hooks(dir.path()), ["on_load p1", "on_init p1", "on_load p2", "on_init p2"], "p1 is kept, not freed");

    // Another reload waits for the verdict.
    let refused = manager.reload().unwrap_err();
    assert_eq!(refused.kind, LoadErrorKind::OnProbation, "{refused}");
    assert!(refused.to_string().contains("generation 2 is on probation"), "{refused}");

    let end = manager.rollback().unwrap();
    assert_eq!((end.generation, end.previous, end.result, end.automatic), (2, 1, ProbationResult::RolledBack, false));
    assert_eq!((manager.generation_number(), answer(&manager).as_str()), (1, "p1"));
    assert_eq!(manager.find_plugin("probe").unwrap().loaded_in_generation(), 1, "the same instance serves again");
    assert!(manager.probation().is_none());
    assert!(manager.free_released_now(Duration::from_secs(10)));
    assert_eq!(
        hooks(dir.path()),
        ["on_load p1", "on_init p1", "on_load p2", "on_init p2", "on_free p2"],
        "no hook of p1 ran again; p2 was freed once"
    );

    // One generation back is kept: a second rollback is refused, saying why.
    let again = manager.rollback().unwrap_err();
    assert!(matches!(again, ProbationError::NotOnProbation(_)), "{again:?}");
    assert!(again.to_string().contains("only one generation back is kept"), "{again}");
    assert_eq!(answer(&manager), "p1");

    // A reload after the rollback loads p2 afresh (a new copy, its hooks again).
    assert_eq!(manager.reload().unwrap().generation, 3);
    assert_eq!(answer(&manager), "p2");
    assert!(manager.free_released_now(Duration::from_secs(10)));
    drop(manager);
    let log = hooks(dir.path());
    for version in ["p1", "p2"] {
        let count = |hook: &str| log.iter().filter(|l| **l == format!("{hook} {version}")).count();
        assert_eq!(count("on_free"), count("on_load"), "on_free once per load of {version}: {log:?}");
    }
    assert_eq!(log.iter().filter(|l| *l == "on_load p2").count(), 2, "{log:?}");
}

#[test]
fn a_failing_health_check_rolls_back_by_itself_and_says_why() {
    let (dir, manager) = p1_serving_p2_installed(|dir| {
        PluginManager::builder(dir)
            .free_delay(Duration::ZERO)
            .health_check(Duration::from_millis(10), |generation| {
                let probe = generation.find_plugin("probe").ok_or("no probe")?;
                probe.invoke::<()>("health", args![]).map_err(Into::into)
            })
            .build()
            .unwrap()
    });
    std::fs::write(dir.path().join("sick-p2"), "").unwrap();
    manager.reload_on_probation(Probation::new(Duration::from_secs(600))).unwrap();
    wait_until("the failed check rolls back", || manager.generation_number() == 1);
    assert_eq!(answer(&manager), "p1");
    let end = manager.last_probation().unwrap();
    assert_eq!((end.result, end.automatic, end.generation, end.previous), (ProbationResult::RolledBack, true, 2, 1));
    assert!(
        end.reason.contains("health check of generation 2 failed") && end.reason.contains("p2 says it is sick"),
        "{}",
        end.reason
    );
    assert!(manager.probation().is_none());
}

#[test]
fn more_panics_than_allowed_roll_back_and_fewer_do_not() {
    let (_dir, manager) = p1_serving_p2_installed(plain);
    manager.reload_on_probation(Probation::new(Duration::from_secs(600)).max_panics(1)).unwrap();
    let boom = || manager.invoke::<()>("probe", "boom", args![]).unwrap_err();
    assert!(boom().to_string().contains("boom in p2"));
    std::thread::sleep(Duration::from_millis(100)); // several polls of the probation thread
    assert_eq!(manager.probation().expect("one panic is allowed").panics, 1);
    assert_eq!(manager.generation_number(), 2);
    boom();
    wait_until("the second panic rolls back", || manager.generation_number() == 1);
    let end = manager.last_probation().unwrap();
    assert!(
        end.automatic && end.reason.contains("panicked 2 times during its probation (at most 1 allowed)"),
        "{end:?}"
    );
    assert_eq!(answer(&manager), "p1");
}

#[test]
fn a_probation_passed_to_its_end_is_confirmed_and_the_previous_generation_freed() {
    let (dir, manager) = p1_serving_p2_installed(|dir| {
        PluginManager::builder(dir)
            .free_delay(Duration::ZERO)
            .health_check(Duration::from_millis(20), |g| {
                g.find_plugin("probe").ok_or("no probe")?.invoke::<()>("health", args![]).map_err(Into::into)
            })
            .build()
            .unwrap()
    });
    manager.reload_on_probation(Probation::new(Duration::from_millis(300))).unwrap();
    wait_until("the probation ends", || manager.probation().is_none());
    let end = manager.last_probation().unwrap();
    assert_eq!((end.result, end.automatic), (ProbationResult::Confirmed, true), "{end:?}");
    assert!(end.reason.contains("health check passed for the whole probation"), "{}", end.reason);
    assert_eq!((manager.generation_number(), answer(&manager).as_str()), (2, "p2"));
    assert!(manager.free_released_now(Duration::from_secs(10)));
    assert!(hooks(dir.path()).contains(&"on_free p1".to_string()), "p1 retired once confirmed");
    let refused = manager.rollback().unwrap_err();
    assert!(refused.to_string().contains("it was made permanent"), "{refused}");
    // And confirm on request, the other way to end one.
    std::thread::sleep(Duration::from_millis(20));
    build("p1").install_newest(dir.path());
    manager.reload_on_probation(Probation::new(Duration::from_secs(600))).unwrap();
    let end = manager.confirm().unwrap();
    assert_eq!((end.result, end.automatic, end.generation), (ProbationResult::Confirmed, false, 3));
    assert!(manager.confirm().is_err(), "nothing left on probation");
}

#[test]
fn the_control_socket_reloads_on_probation_reports_it_in_status_and_rolls_back() {
    let (dir, manager) = p1_serving_p2_installed(plain);
    let socket = dir.path().join("run").join("control.sock");
    let _server = ControlServer::start(manager.clone(), &socket).unwrap();
    let ask =
        |request: ControlRequest| hotswap_runtime::send_request(&socket, &request, Duration::from_secs(30)).unwrap();
    let json = |response: &ControlResponse| serde_json::to_value(response).unwrap();

    // The request as a client writes it.
    let request: ControlRequest =
        serde_json::from_str(r#"{"command":"reload_on_probation","period_ms":600000,"max_panics":2}"#).unwrap();
    let accepted = json(&ask(request));
    assert_eq!(
        (accepted["status"].as_str(), accepted["generation"].as_u64()),
        (Some("accepted"), Some(2)),
        "{accepted}"
    );
    assert_eq!(accepted["probation"]["previous"], 1, "{accepted}");
    assert_eq!(accepted["probation"]["max_panics"], 2, "{accepted}");

    let status = json(&ask(ControlRequest::Status));
    let probation = &status["probation"];
    for field in ["generation", "previous", "period_ms", "remaining_ms", "panics", "max_panics", "health_checks_passed"]
    {
        assert!(probation[field].is_u64(), "status.probation.{field}: {status}");
    }
    assert_eq!((probation["generation"].as_u64(), probation["period_ms"].as_u64()), (Some(2), Some(600_000)));
    assert!(status["last_probation"].is_null(), "{status}");

    let refused = json(&ask(ControlRequest::Reload));
    assert_eq!(refused["status"], "refused", "{refused}");
    let rolled = json(&ask(serde_json::from_str(r#"{"command":"rollback"}"#).unwrap()));
    assert_eq!(rolled["status"], "probation_ended", "{rolled}");
    assert_eq!(
        (rolled["result"].as_str(), rolled["generation"].as_u64(), rolled["previous"].as_u64()),
        (Some("rolled_back"), Some(2), Some(1))
    );
    assert_eq!(rolled["automatic"], false);
    assert!(rolled["took_ms"].is_f64() && rolled["at_unix_ms"].is_u64(), "{rolled}");
    assert_eq!(answer(&manager), "p1");

    let status = json(&ask(ControlRequest::Status));
    assert!(status["probation"].is_null(), "{status}");
    assert_eq!(status["last_probation"]["result"], "rolled_back", "{status}");
    assert_eq!(status["last_probation"]["reason"], "rolled back on request", "{status}");
    let again = json(&ask(ControlRequest::Rollback));
    assert_eq!(again["status"], "refused", "{again}");
    assert!(again["reason"].as_str().unwrap().contains("only one generation back is kept"), "{again}");
}

#[test]
fn the_cli_reloads_with_probation_shows_it_confirms_and_refuses_a_rollback_after() {
    let (dir, manager) = p1_serving_p2_installed(plain);
    let socket = dir.path().join("run").join("control.sock");
    let _server = ControlServer::start(manager.clone(), &socket).unwrap();
    let (code, reload) = cli_json(&socket, &["reload", "--probation", "600", "--max-panics", "3"]);
    assert_eq!((code, reload["result"].as_str()), (0, Some("accepted")), "{reload}");
    assert_eq!(reload["probation"]["max_panics"], 3, "{reload}");
    let (code, status) = cli_json(&socket, &["status"]);
    assert_eq!((code, status["probation"]["previous"].as_u64()), (0, Some(1)), "{status}");
    let (code, confirmed) = cli_json(&socket, &["confirm"]);
    assert_eq!((code, confirmed["result"].as_str()), (0, Some("confirmed")), "{confirmed}");
    assert_eq!(confirmed["last_probation"]["generation"], 2, "{confirmed}");
    let (code, refused) = cli_json(&socket, &["rollback"]);
    assert_eq!((code, refused["result"].as_str()), (1, Some("refused")), "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("made permanent"), "{refused}");
    assert_eq!(answer(&manager), "p2");
}

#[test]
fn a_rollback_the_hosts_hot_fn_could_not_follow_is_refused_and_the_newer_generation_keeps_serving() {
    // `live_v2` (plugin `jobs`) lacks `LIVE_twice`, which `live_v1` has.
    let dir = tempfile::tempdir().unwrap();
    hotswap_tests::build_plugin("tests/plugins/live_v2").install_newest(dir.path());
    let manager = plain(dir.path());
    manager.load_plugins().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    hotswap_tests::build_plugin("tests/plugins/live_v1").install_newest(dir.path());
    manager.reload_on_probation(Probation::new(Duration::from_secs(600))).unwrap();
    let twice = manager.hot_fn::<fn(i64) -> i64>("LIVE_twice").unwrap();
    let refused = manager.rollback().unwrap_err();
    assert!(matches!(refused, ProbationError::Refused { from: 2, to: 1, .. }), "{refused:?}");
    assert!(refused.to_string().contains("HotFn on live function `LIVE_twice`"), "{refused}");
    assert_eq!((manager.generation_number(), twice.call((21,))), (2, 42));
    assert!(manager.probation().is_some(), "still on probation");
    drop(twice);
    assert_eq!(manager.rollback().unwrap().previous, 1, "once the HotFn is gone");
}
