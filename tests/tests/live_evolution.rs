//! Live data schema evolution without loss (issue 13, section 3), on real plugin builds of
//! plugin `jobs`: v1 writes `LiveItem { id, name, priority, note }`, v2 drops `note` and
//! re-saves some items, v3 adds `note` back, v4 changes `id` from `u32` to `String`.

use std::path::Path;
use std::time::Duration;

use hotswap_runtime::{LiveData, LiveError, PluginManager, args};
use hotswap_tests::build_plugin;

const V1: &str = "tests/plugins/live_v1";
const V2: &str = "tests/plugins/live_v2";
const V3: &str = "tests/plugins/live_v3";
const V4: &str = "tests/plugins/live_v4";

/// Installs `crate_dir`'s build as the newest file and reloads (or loads, the first time).
fn switch_to(dir: &Path, manager: &PluginManager, crate_dir: &str) -> String {
    std::thread::sleep(Duration::from_millis(20)); // a strictly newer modification time
    build_plugin(crate_dir).install(dir);
    if manager.current().is_none() { manager.load_plugins() } else { manager.reload() }.unwrap();
    manager.find_plugin("jobs").unwrap().version().to_string()
}

fn show(manager: &PluginManager, item: &LiveData) -> Result<String, String> {
    manager.find_plugin("jobs").unwrap().invoke::<String>("item_show", args![item.clone()]).map_err(|e| e.to_string())
}

fn fields(item: &LiveData) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_slice(&item.bytes).unwrap()
}

#[test]
fn a_field_removed_by_v2_and_re_added_by_v3_keeps_v1s_value_and_v2s_update() {
    let dir = tempfile::tempdir().unwrap();
    let manager = PluginManager::builder(dir.path()).free_delay(Duration::ZERO).build().unwrap();

    // v1 writes four items.
    let v1 = switch_to(dir.path(), &manager, V1);
    let jobs = manager.find_plugin("jobs").unwrap();
    let names = ["alpha", "beta", "gamma", "delta"];
    let mut items: Vec<LiveData> = (1..=4_u32)
        .map(|id| {
            let args = args![id, names[id as usize - 1].to_string(), id as u8, format!("v1 note {id}")];
            jobs.invoke("item_new", args).unwrap()
        })
        .collect();
    drop(jobs);
    assert!(items.iter().all(|i| i.written_by == v1));

    // v2 does not know `note`; it re-saves items 1 and 2 with a new priority.
    let v2 = switch_to(dir.path(), &manager, V2);
    assert_ne!(v1, v2);
    for item in &mut items[..2] {
        *item = manager.find_plugin("jobs").unwrap().invoke("item_bump", args![item.clone()]).unwrap();
    }
    assert_eq!(show(&manager, &items[0]).unwrap(), "v2: 1 alpha 11");
    assert_eq!((items[0].written_by.as_str(), items[2].written_by.as_str()), (v2.as_str(), v1.as_str()));
    let saved = fields(&items[0]);
    assert_eq!(saved["priority"], 11, "v2's update is in the envelope");
    assert_eq!(saved["note"], "v1 note 1", "the field v2 does not know survived its re-encode: {saved:?}");

    // v4 changed `id`'s type: every item is refused, clearly (the host keeps its envelopes, which
    // v3 reads below).
    let v4 = switch_to(dir.path(), &manager, V4);
    for item in &items {
        let error = show(&manager, item).unwrap_err();
        assert!(
            error.contains(&format!("live data of type `LiveItem` written by version {}", item.written_by))
                && error.contains(&format!("cannot be read by version {v4}"))
                && error.contains("invalid type: integer"),
            "{error}"
        );
        let from_vault = manager.current().unwrap().vault().decode_live(item).unwrap_err();
        assert!(matches!(from_vault, LiveError::Decode { .. }), "{from_vault}");
    }

    // v3 adds `note` back (without a default): v1's notes are recovered, v2's updates kept.
    switch_to(dir.path(), &manager, V3);
    let shown: Vec<String> = items.iter().map(|i| show(&manager, i).unwrap()).collect();
    assert_eq!(
        shown,
        [
            r#"v3: 1 alpha 11 "v1 note 1""#,
            r#"v3: 2 beta 12 "v1 note 2""#,
            r#"v3: 3 gamma 3 "v1 note 3""#,
            r#"v3: 4 delta 4 "v1 note 4""#,
        ]
    );
}

#[test]
fn v3_reads_note_only_from_the_envelope_and_names_it_when_missing() {
    // What `LiveData::new` in v2 (instead of `update`) would have written: no `note`. v3 has
    // no default for it, so the recovery above cannot come from a default.
    let dir = tempfile::tempdir().unwrap();
    let manager = PluginManager::builder(dir.path()).free_delay(Duration::ZERO).build().unwrap();
    switch_to(dir.path(), &manager, V1);
    let item: LiveData = manager
        .find_plugin("jobs")
        .unwrap()
        .invoke("item_new", args![9_u32, "x".to_string(), 1_u8, "n".to_string()])
        .unwrap();
    let mut stripped = item.clone();
    let mut object = fields(&item);
    object.remove("note");
    stripped.bytes = serde_json::to_vec(&object).unwrap();
    switch_to(dir.path(), &manager, V3);
    assert_eq!(show(&manager, &item).unwrap(), r#"v3: 9 x 1 "n""#);
    let error = show(&manager, &stripped).unwrap_err();
    assert!(error.contains("missing field `note`"), "{error}");
}
