//! Live data both ways across a rollback (issue 25, section 2), on real builds of plugin
//! `accounts`: version 1 (`tests/plugins/migrate_v1`) writes `LiveAccount { id, name, balance }`;
//! version 2 (`migrate_v2`) reshapes it to `{ id, holder, balance_cents }` and declares its
//! migrations up and down (`LiveMigrate`). v1 → v2 on probation → rollback to v1 → v2 again:
//! every value is read by every version, each change survives, nothing is dropped; a value
//! a version cannot read is refused naming type, field and versions.

use std::path::Path;
use std::time::Duration;

use hotswap_runtime::{LiveData, PluginManager, Probation, args};
use hotswap_tests::build_plugin;

const V1: &str = "tests/plugins/migrate_v1";
const V2: &str = "tests/plugins/migrate_v2";

fn call<T: std::any::Any>(manager: &PluginManager, func: &str, args: hotswap_runtime::Args) -> Result<T, String> {
    manager.invoke::<T>("accounts", func, args).map_err(|e| e.to_string())
}

fn show(manager: &PluginManager, account: &LiveData) -> Result<String, String> {
    call(manager, "show", args![account.clone()])
}

fn fields(account: &LiveData) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_slice(&account.bytes).unwrap()
}

fn install_newest(dir: &Path, crate_dir: &str) {
    build_plugin(crate_dir).install_newest(dir);
}

#[test]
fn values_cross_v1_v2_a_rollback_and_v2_again_with_every_change_kept() {
    let dir = tempfile::tempdir().unwrap();
    install_newest(dir.path(), V1);
    let manager = PluginManager::builder(dir.path()).free_delay(Duration::ZERO).build().unwrap();
    manager.load_plugins().unwrap();

    // v1 opens an account.
    let mut ann: LiveData = call(&manager, "open", args![1_u32, "ann".to_string(), 10_u64]).unwrap();
    let v1 = ann.written_by.clone();
    assert_eq!(show(&manager, &ann).unwrap(), "v1: 1 ann 10");

    // v2, on probation: reads v1's value migrated up, writes its own shape and v1's beside it.
    install_newest(dir.path(), V2);
    manager.reload_on_probation(Probation::new(Duration::from_secs(600))).unwrap();
    assert_eq!(show(&manager, &ann).unwrap(), "v2: 1 ann 1000", "migrated up from {v1}");
    ann = call(&manager, "deposit_cents", args![ann, 250_u64]).unwrap();
    let v2 = ann.written_by.clone();
    assert_ne!(v1, v2);
    let written = fields(&ann);
    assert_eq!((written["holder"].as_str(), written["balance_cents"].as_u64()), (Some("ann"), Some(1250)));
    assert_eq!((written["name"].as_str(), written["balance"].as_u64()), (Some("ann"), Some(12)), "down: {written:?}");
    let bob: LiveData = call(&manager, "open", args![2_u32, "bob".to_string(), 5_099_u64]).unwrap();

    // Rolled back: v1 reads what v2 wrote (the down fields), and writes back keeping v2's.
    manager.rollback().unwrap();
    assert_eq!(show(&manager, &ann).unwrap(), "v1: 1 ann 12");
    assert_eq!(show(&manager, &bob).unwrap(), "v1: 2 bob 50");
    ann = call(&manager, "deposit", args![ann, 3_u64]).unwrap();
    assert_eq!(ann.written_by, v1);
    let written = fields(&ann);
    assert_eq!(written["balance"], 15);
    assert_eq!(written["balance_cents"], 1250, "v2's field, unknown to v1, kept: {written:?}");

    // v2 again (a new generation of the same build): v1's change migrates up; a value v1
    // only read keeps v2's cents exactly.
    manager.reload().unwrap();
    assert_eq!(manager.generation_number(), 3);
    assert_eq!(show(&manager, &ann).unwrap(), "v2: 1 ann 1500", "v1's deposit of 3 is there");
    assert_eq!(show(&manager, &bob).unwrap(), "v2: 2 bob 5099", "no cent lost in the round trip");
}

#[test]
fn a_value_the_older_version_cannot_read_is_refused_naming_type_field_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    install_newest(dir.path(), V1);
    let manager = PluginManager::builder(dir.path()).free_delay(Duration::ZERO).build().unwrap();
    manager.load_plugins().unwrap();
    let v1 = manager.find_plugin("accounts").unwrap().version().to_string();
    install_newest(dir.path(), V2);
    manager.reload_on_probation(Probation::new(Duration::from_secs(600))).unwrap();
    let mut carol: LiveData = call(&manager, "open", args![3_u32, "carol".to_string(), 700_u64]).unwrap();
    let v2 = carol.written_by.clone();
    manager.rollback().unwrap();

    // As a version 2 without a down migration would have written it: no `name`.
    let mut without_name = fields(&carol);
    without_name.remove("name");
    carol.bytes = serde_json::to_vec(&without_name).unwrap();
    let error = show(&manager, &carol).unwrap_err();
    for part in ["`LiveAccount`", &format!("written by version {v2}"), &format!("read by version {v1}"), "field `name`"]
    {
        assert!(error.contains(part), "`{part}` missing from: {error}");
    }
    // A field of the wrong type is named too, and the envelope is left as it was.
    let mut wrong = without_name.clone();
    wrong.insert("name".into(), "carol".into());
    wrong.insert("balance".into(), "seven".into());
    carol.bytes = serde_json::to_vec(&wrong).unwrap();
    let before = carol.clone();
    let error = call::<LiveData>(&manager, "deposit", args![carol.clone(), 1_u64]).unwrap_err();
    assert!(error.contains("field `balance`") && error.contains("`LiveAccount`"), "{error}");
    assert_eq!(carol, before);
}
