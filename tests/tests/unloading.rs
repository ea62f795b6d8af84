//! What `dlclose` really does: a plugin that unloads cleanly is unmapped and counted as
//! closed; a plugin that leaves a thread running (with a pending thread-local destructor)
//! stays mapped, and the runtime reports it per plugin instead of counting it as closed.

use hotswap_runtime::{PluginManager, args};
use hotswap_tests::{build_plugin, mapped_under, unloading_manager};

fn reload_20_times(crate_dir: &str, plugin: &str) -> (PluginManager, u64, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(crate_dir).install(dir.path());
    let manager = unloading_manager(dir.path(), 0);
    manager.load_plugins().unwrap();
    let mut reported = 0;
    for _ in 0..20 {
        let report = manager.reload().unwrap();
        reported = report.plugins.iter().find(|p| p.name == plugin).unwrap().still_mapped;
        let _: String = manager.find_plugin(plugin).unwrap().invoke("answer", args![]).unwrap();
    }
    (manager, reported, dir)
}

#[test]
fn a_plugin_that_unloads_cleanly_is_really_unmapped() {
    let (manager, reported, _dir) = reload_20_times("tests/plugins/greeter_v1", "greeter");
    assert_eq!((manager.closed_library_count(), manager.still_mapped_library_count(), reported), (20, 0, 0));
    assert_eq!(mapped_under(manager.work_dir()).len(), 1, "only the serving library is mapped");
}

#[test]
fn a_plugin_that_leaves_a_thread_running_is_reported_as_still_mapped() {
    let (manager, reported, _dir) = reload_20_times("tests/plugins/unload_thread", "threaded");
    // Each reload released one library, which dlclose could not unmap; the report of the
    // 20th reload counts the 19 released before it (the 20th is released after publishing).
    assert_eq!(manager.still_mapped_library_count(), 20);
    assert_eq!(reported, 19);
    assert_eq!(manager.closed_library_count(), 0, "nothing is counted as closed that is still mapped");
    assert_eq!(mapped_under(manager.work_dir()).len(), 21, "the serving library and 20 that stayed mapped");
}
