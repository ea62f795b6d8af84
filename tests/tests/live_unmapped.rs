//! Nothing handed out for a live item points into a library that is gone (issue 13, section
//! 1): over 10 reloads with `retain_released_libraries(0)`, every handle kind taken from a
//! generation is used after that generation was replaced, and every address it lends out is
//! checked against `/proc/self/maps` first: mapped, and mapped from the old library's file.
//! Then the handles are dropped, and the library must really be gone, so the check above
//! could have failed.

use std::path::Path;
use std::time::Duration;

use hotswap_runtime::{LiveData, LiveFn, PluginManager, Value, args};
use hotswap_tests::{build_plugin, unloading_manager};

const V1: &str = "tests/plugins/live_v1";
const V2: &str = "tests/plugins/live_v2";

/// The file mapped at `address` in this process, if any (`""` for an anonymous mapping).
fn mapping_of(address: usize) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        let (start, end) = parts.next()?.split_once('-')?;
        let (start, end) = (usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?);
        (start..end).contains(&address).then(|| parts.nth(4).unwrap_or("").to_string())
    })
}

fn is_mapped_file(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().any(|l| l.ends_with(path))
}

/// Everything one generation hands out for its live items, kept across the next reload.
struct Taken {
    library: String,
    add: LiveFn<fn(i64, i64) -> i64>,
    add_clone: LiveFn<fn(i64, i64) -> i64>,
    expected_sum: i64,
    ran: String,
    returned: Value,
    made: Value,
    decoded: Value,
    plugin: hotswap_runtime::Plugin,
}

fn take(manager: &PluginManager) -> Taken {
    let generation = manager.current().unwrap();
    let vault = generation.vault();
    let plugin = manager.find_plugin("jobs").unwrap();
    let add = vault.live_func::<fn(i64, i64) -> i64>("live_add").unwrap();
    let returned = plugin.invoke_func("schedule", args![7_u64, "job".to_string()]).unwrap();
    let data = returned.downcast_ref::<LiveData>().unwrap().clone();
    let ran = plugin.invoke::<String>("run", args![data.clone()]).unwrap();
    Taken {
        ran,
        library: plugin.loaded_from().to_string_lossy().into_owned(),
        add_clone: add.clone(),
        expected_sum: add.call((1, 2)),
        add,
        made: vault.new_live("LiveJob").unwrap(),
        decoded: vault.decode_live(&data).unwrap(),
        returned,
        plugin,
    }
}

/// Asserts `address` lies in `library`'s mapping, then lets the caller touch it.
fn assert_in(library: &str, address: usize, what: &str) {
    let mapped = mapping_of(address);
    assert_eq!(mapped.as_deref(), Some(library), "{what} at {address:#x} is not in the old library's mapping");
}

#[test]
fn every_live_handle_kind_stays_on_mapped_pages_across_10_reloads_and_releases_its_library() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(V1).install(dir.path());
    let manager = unloading_manager(dir.path(), 0);
    manager.load_plugins().unwrap();
    let closed_at_start = manager.closed_library_count();
    for round in 0..10 {
        let taken = take(&manager);
        std::thread::sleep(Duration::from_millis(20)); // a strictly newer modification time
        build_plugin(if round % 2 == 0 { V2 } else { V1 }).install(dir.path());
        manager.reload().unwrap();
        assert_ne!(manager.find_plugin("jobs").unwrap().loaded_from().to_string_lossy(), taken.library);

        // Every address lent out is checked before it is used.
        let library = taken.library.clone();
        let lib = library.as_str();
        // SAFETY: the pointer is only compared with /proc/self/maps while `taken.add` lives.
        assert_in(lib, unsafe { taken.add.as_raw() } as usize, "live function");
        assert_in(lib, taken.add.name().as_ptr() as usize, "live function name");
        assert_eq!((taken.add.call((1, 2)), taken.add.name()), (taken.expected_sum, "live_add"), "round {round}");
        assert_eq!(taken.add_clone.call((1, 2)), taken.expected_sum);
        for (value, what) in
            [(&taken.returned, "returned value"), (&taken.made, "new_live"), (&taken.decoded, "decode_live")]
        {
            let name = value.type_name();
            // A `String` or `LiveData` name may be the host's own text; a `LiveJob` is only the plugin's.
            if name.ends_with("LiveJob") {
                assert_in(lib, name.as_ptr() as usize, what);
            }
            assert!(name.ends_with("LiveJob") || name.ends_with("LiveData"), "{what}: {name}");
        }
        // The old plugin handle still runs the old code.
        let data = taken.returned.downcast_ref::<LiveData>().unwrap().clone();
        assert_eq!(taken.plugin.invoke::<String>("run", args![data]).unwrap(), taken.ran);

        // Dropped, the library is closed (retention 0) by the reaper thread, which
        // `free_released_now` waits for: the checks above could fail.
        assert!(is_mapped_file(lib));
        drop(taken);
        assert!(manager.free_released_now(Duration::from_secs(10)));
        assert!(!is_mapped_file(lib), "round {round}: {lib} still mapped after its last handle went");
        assert!(!Path::new(lib).exists(), "its private copy is deleted");
        assert_eq!(manager.closed_library_count(), closed_at_start + round + 1);
    }
    // What the vault describes is owned: still readable with every old library gone.
    let funcs = manager.current().unwrap().vault().live_funcs();
    assert!(funcs.iter().any(|f| f.name == "live_add" && f.signature == "fn(i64, i64) -> i64"), "{funcs:?}");
}
