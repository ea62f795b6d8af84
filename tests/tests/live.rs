//! Live functions, live types and live data, on real plugins built by `cargo xtask build`.

use std::time::Duration;

use hotswap_runtime::{LiveData, LiveError, PluginManager, Value, args};
use hotswap_tests::build_plugin;

const V1: &str = "tests/plugins/live_v1";
const V2: &str = "tests/plugins/live_v2";
const V3: &str = "tests/plugins/live_v3";

fn load(crate_dir: &str) -> (tempfile::TempDir, PluginManager) {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(crate_dir).install(dir.path());
    let manager = PluginManager::builder(dir.path()).free_delay(Duration::ZERO).build().unwrap();
    manager.load_plugins().unwrap();
    (dir, manager)
}

/// Installs `crate_dir`'s build as the newest file and reloads.
fn reload_to(dir: &std::path::Path, manager: &PluginManager, crate_dir: &str) {
    std::thread::sleep(Duration::from_millis(20)); // a strictly newer modification time
    build_plugin(crate_dir).install(dir);
    manager.reload().unwrap();
}

#[test]
fn live_functions_are_found_by_name_with_their_signature_and_path() {
    let (_dir, manager) = load(V1);
    let vault = manager.current().unwrap().vault().clone();
    let names: Vec<_> = vault.live_funcs().into_iter().map(|f| (f.name, f.path, f.signature)).collect();
    assert_eq!(
        names,
        [
            ("LIVE_twice".to_string(), "crate::LIVE_twice".to_string(), "fn(i64) -> i64".to_string()),
            ("live_add".into(), "crate::math::live_add".into(), "fn(i64, i64) -> i64".into()),
            ("live_checked".into(), "crate::live_checked".into(), "fn(i64) -> i64".into()),
            ("live_describe".into(), "crate::live_describe".into(), "fn(&str) -> String".into()),
            ("live_first_word".into(), "crate::live_first_word".into(), "fn(&str) -> &str".into()),
        ],
        "add_live does not start with the prefix and is not collected"
    );
    let add = vault.live_func::<fn(i64, i64) -> i64>("live_add").unwrap();
    assert_eq!(add.call((2, 3)), 5);
    assert_eq!(add.name(), "live_add");
    let twice = vault.live_func::<fn(i64) -> i64>("LIVE_twice").unwrap();
    assert_eq!(twice.call((21,)), 42);
    let describe = vault.live_func::<fn(&str) -> String>("live_describe").unwrap();
    assert_eq!(describe.call(("x",)), "v1:x");
    let first = vault.live_func::<fn(&str) -> &str>("live_first_word").unwrap();
    let text = String::from("hello there");
    assert_eq!(first.call((text.as_str(),)), "hello");
}

#[test]
fn a_panic_in_a_live_function_is_the_hosts_to_catch_and_the_function_stays_usable() {
    let (_dir, manager) = load(V1);
    let checked = manager.current().unwrap().vault().live_func::<fn(i64) -> i64>("live_checked").unwrap();
    // Without the wrapper the plugin's std would unwind into the host's, which cannot catch
    // a foreign panic, and this test process would abort.
    let payload = std::panic::catch_unwind(|| checked.call((-3,))).expect_err("the live function panicked");
    let message = payload.downcast_ref::<String>().expect("a String payload");
    assert_eq!(message, "negative input -3");
    assert_eq!(checked.call((7,)), 7, "usable after the panic");
    // And from another thread: the panic ends that thread like a panic of the host's own.
    let joined = std::thread::spawn(move || checked.call((-1,))).join();
    assert_eq!(joined.expect_err("the thread panicked").downcast_ref::<String>().unwrap(), "negative input -1");
}

#[test]
fn a_wrong_signature_or_unknown_name_is_an_error_naming_both_sides() {
    let (_dir, manager) = load(V1);
    let vault = manager.current().unwrap().vault().clone();
    let error = vault.live_func::<fn(i64) -> i64>("live_add").expect_err("signature mismatch");
    let text = error.to_string();
    assert!(matches!(error, LiveError::Signature(_)));
    assert!(text.contains("`fn(i64, i64) -> i64`") && text.contains("`fn(i64) -> i64` asked for"), "{text}");
    assert!(text.contains("crate::math::live_add") && text.contains("plugin `jobs`"), "{text}");
    let error = vault.live_func::<fn(i64, i64) -> u64>("live_add").expect_err("return type mismatch");
    assert!(error.to_string().contains("-> u64"), "{error}");

    let error = vault.live_func::<fn()>("live_nope").expect_err("unknown");
    assert_eq!(
        error.to_string(),
        "no live function `live_nope` in this generation (known: LIVE_twice, live_add, live_checked, live_describe, live_first_word)"
    );
}

#[test]
fn live_types_are_described_and_created_by_name() {
    let (_dir, manager) = load(V1);
    let vault = manager.current().unwrap().vault().clone();
    let job = vault.live_type("LiveJob").unwrap();
    assert_eq!(job.description, "struct LiveJob { id: u64, text: String, legacy: bool }");
    assert_eq!(job.path, "crate::LiveJob");
    assert!(job.has_default && job.serializable);
    let value: Value = vault.new_live("LiveJob").unwrap();
    assert!(value.type_name().ends_with("::LiveJob"), "{}", value.type_name());

    let handle = vault.live_type("LiveHandle").unwrap();
    assert_eq!(handle.description, "struct LiveHandle(std::time::Instant)");
    assert!(!handle.has_default && !handle.serializable);
    assert!(vault.new_live("LiveHandle").unwrap_err().to_string().contains("does not implement Default"));
    assert!(matches!(vault.live_type("LiveNope"), Err(LiveError::UnknownType { .. })));
}

#[test]
fn a_job_written_by_v1_is_handled_by_v2_with_the_added_field_defaulted() {
    let (dir, manager) = load(V1);
    let v1 = manager.find_plugin("jobs").unwrap();
    let data: LiveData = v1.invoke("schedule", args![7_u64, "feed the cat".to_string()]).unwrap();
    assert_eq!(data.type_name, "LiveJob");
    assert_eq!(data.plugin, "jobs");
    assert_eq!(data.written_by, v1.version());
    assert_eq!(v1.invoke::<String>("run", args![data.clone()]).unwrap(), "v1 ran job 7: feed the cat");
    drop(v1);

    reload_to(dir.path(), &manager, V2);
    let v2 = manager.find_plugin("jobs").unwrap();
    assert_ne!(v2.version(), data.written_by);
    // The removed field (`legacy`) is ignored, the added one (`priority`) takes its default.
    assert_eq!(v2.invoke::<String>("run", args![data.clone()]).unwrap(), "v2 ran job 7 (priority 5): FEED THE CAT");
    // The vault decodes it with the current type too.
    let decoded = manager.current().unwrap().vault().decode_live(&data).unwrap();
    assert!(decoded.type_name().ends_with("::LiveJob"));
    // And the changed live function is the new one.
    let add = manager.current().unwrap().vault().live_func::<fn(i64, i64) -> i64>("live_add").unwrap();
    assert_eq!(add.call((2, 3)), 105);
}

#[test]
fn an_incompatible_change_is_an_error_for_that_job_and_its_data_is_kept() {
    let (dir, manager) = load(V1);
    let data: LiveData =
        manager.find_plugin("jobs").unwrap().invoke("schedule", args![7_u64, "feed the cat".to_string()]).unwrap();

    reload_to(dir.path(), &manager, V3);
    let error =
        manager.find_plugin("jobs").unwrap().invoke::<String>("run", args![data.clone()]).unwrap_err().to_string();
    assert!(error.contains("live data of type `LiveJob` written by version"), "{error}");
    assert!(error.contains("cannot be read by version"), "{error}");
    assert!(error.contains("invalid type"), "serde says why: {error}");
    let vault_error = manager.current().unwrap().vault().decode_live(&data).unwrap_err();
    assert!(matches!(vault_error, LiveError::Decode { .. }), "{vault_error}");
    // The generation keeps serving, and a compatible version handles the kept job later: the
    // refusal cost the host nothing of the job.
    reload_to(dir.path(), &manager, V2);
    let text: String = manager.find_plugin("jobs").unwrap().invoke("run", args![data]).unwrap();
    assert_eq!(text, "v2 ran job 7 (priority 5): FEED THE CAT");
}
