//! Plugin logs (`hotswap_abi::logs`): a plugin's plain `tracing` events and `log` records,
//! from its own copies of both crates, reach the host's subscriber with the plugin's name and
//! generation, its spans and fields; levels the host filters out are never formatted; each
//! generation's events arrive once; a field whose `Display` panics costs that event only.
//!
//! The host's subscriber here is `tracing-subscriber`'s `fmt` at level INFO, writing into
//! memory, installed once for this test process (`hotswap_tests::runtime_log`).

use std::time::Duration;

use hotswap_runtime::{PluginManager, args};
use hotswap_tests::build_plugin;
use hotswap_tests::runtime_log::{capture_at, logged};
use tracing_subscriber::filter::LevelFilter;

const PLUGIN: &str = "tests/plugins/log_forward";

/// The host's log lines so far that contain `needle` (captured at INFO).
fn lines_with(needle: &str) -> Vec<String> {
    capture_at(LevelFilter::INFO);
    logged(needle, "")
}

fn manager(dir: &std::path::Path) -> PluginManager {
    PluginManager::builder(dir).free_delay(Duration::ZERO).build().unwrap()
}

#[test]
fn events_records_spans_and_fields_reach_the_host_with_plugin_and_generation() {
    lines_with("");
    let dir = tempfile::tempdir().unwrap();
    build_plugin(PLUGIN).install(dir.path());
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();
    let generation = manager.current().unwrap().number();
    // Called inside a span of the host's own: the re-emitted events are inside it.
    let host_span = tracing::info_span!("host_call", call = 1).entered();
    let formatted: u64 = manager.invoke("log_forward", "emit", args![String::from("first-run")]).unwrap();
    let _: () = manager.invoke("log_forward", "from_thread", args![String::from("first-run")]).unwrap();
    drop(host_span);
    let lines = lines_with("first-run");
    let ours = format!("plugin=\"log_forward\" generation={generation}");
    for line in &lines {
        // The plugin's own thread is not in the host's span (it is the caller's thread's).
        let host_span = !line.contains("from a thread the plugin started");
        assert_eq!(line.contains(" host_call{call=1}: hotswap::plugin: "), host_span, "{line}");
        assert!(line.contains(&ours), "{line}");
    }
    let one = |needle: &str| -> String {
        let found: Vec<_> = lines.iter().filter(|l| l.contains(needle)).collect();
        assert_eq!(found.len(), 1, "one line with {needle:?} in {lines:#?}");
        found[0].clone()
    };
    let warned = one("warned in a span");
    assert!(warned.starts_with(|c: char| c.is_ascii_digit()) && warned.contains(" WARN "), "{warned}");
    assert!(warned.contains(r#"fields="tag=first-run user=42""#), "{warned}");
    assert!(warned.contains(r#"spans="request{id=7}:step{name=inner}""#), "{warned}");
    assert!(warned.contains(r#"source="tracing" plugin_target="log_forward""#), "{warned}");
    assert!(warned.contains(r#"src/lib.rs" line="#), "{warned}");
    let error = one("an error");
    assert!(error.contains(" ERROR ") && error.contains(r#"spans="request{id=7}""#), "{error}");
    let record = one("a log record first-run");
    assert!(record.contains(" WARN ") && record.contains(r#"source="log" plugin_target="log_forward::legacy""#));
    assert!(record.contains(r#"spans="request{id=7}""#), "{record}");
    let outside = one("outside any span");
    assert!(outside.contains(" INFO ") && !outside.contains("spans="), "{outside}");
    let threaded = one("from a thread the plugin started");
    assert!(threaded.contains(" INFO ") && !threaded.contains("spans="), "{threaded}");
    assert_eq!(lines.len(), 5, "the DEBUG event and record are filtered out: {lines:#?}");
    assert_eq!(formatted, 0, "a field of a filtered event or record was formatted");
    // The first hook's events too (the sink is handed over before `reloadable`).
    let asked = lines_with("reloadable asked");
    assert!(asked.iter().any(|l| l.contains(&ours)), "{asked:#?}");
    let loaded = lines_with("on_load ran");
    assert!(loaded.iter().any(|l| l.contains(&ours) && l.contains(&format!("loaded={generation}"))), "{loaded:#?}");
}

#[test]
fn a_field_whose_display_panics_costs_that_event_only() {
    lines_with("");
    let dir = tempfile::tempdir().unwrap();
    build_plugin(PLUGIN).install(dir.path());
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();
    let answer: Result<(), _> = manager.invoke("log_forward", "panicking_field", args![String::from("panicky")]);
    answer.expect("the call returns normally: the panic was caught while formatting");
    let dropped = lines_with("formatting it panicked: the Display of a field panicked");
    assert_eq!(dropped.len(), 1, "{dropped:#?}");
    assert!(dropped[0].contains(" WARN ") && dropped[0].contains("plugin=\"log_forward\""), "{}", dropped[0]);
    assert_eq!(lines_with("never formatted").len(), 0);
    let after = lines_with("after the panic");
    assert_eq!(after.iter().filter(|l| l.contains("tag=panicky")).count(), 1, "{after:#?}");
    // The host and its plugin keep working.
    let _: u64 = manager.invoke("log_forward", "emit", args![String::from("after-panic")]).unwrap();
    assert_eq!(lines_with("after-panic").len(), 4);
}

#[test]
fn across_five_reloads_each_generation_logs_once_with_its_number() {
    lines_with("");
    let dir = tempfile::tempdir().unwrap();
    let built = build_plugin(PLUGIN);
    built.install(dir.path());
    // Every reload opens the plugin afresh (an unchanged file is otherwise kept).
    let manager = hotswap_tests::unloading_manager(dir.path(), 0);
    manager.load_plugins().unwrap();
    let mut generations = Vec::new();
    for round in 0..6 {
        if round > 0 {
            built.install_newest(dir.path());
            manager.reload().unwrap();
        }
        let generation = manager.current().unwrap().number();
        generations.push(generation);
        let tag = format!("reload-round-{round}");
        let _: u64 = manager.invoke("log_forward", "emit", args![tag.clone()]).unwrap();
        let lines = lines_with(&format!("tag={tag} "));
        let warned: Vec<_> = lines.iter().filter(|l| l.contains("warned in a span")).collect();
        assert_eq!(warned.len(), 1, "round {round}: {lines:#?}");
        assert!(warned[0].contains(&format!("generation={generation} ")), "round {round}: {}", warned[0]);
    }
    generations.dedup();
    assert_eq!(generations.len(), 6, "every round ran a new generation: {generations:?}");
    // Forwarding keeps no replaced library mapped (no thread-local destructor pins it): only
    // the serving generation's copy is left.
    let mapped = hotswap_tests::mapped_under(manager.work_dir());
    assert_eq!(mapped.len(), 1, "{mapped:#?}");
}
