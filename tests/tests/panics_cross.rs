//! Panics never cross copies of std, and values stay tied to their library (issue 22,
//! sections 2 to 4).
//!
//! Host and each plugin link their own copy of std: a panic of one copy unwinding into
//! another's `catch_unwind` is a foreign exception there, which aborts the process; and a value
//! whose type information lives in a closed library is read from unmapped memory (SIGSEGV).
//! Each case used to do one of the two, so each runs in a child process (the test binary runs
//! itself again for that one test) and the parent asserts that the child exited normally after
//! running its case to the end.
//!
//! Fixtures: `panic_peer` (plugin `peer`, built twice: `v1`, and `v2` with feature `v2` so that
//! a reload loads it afresh) and `panic_caller` (plugin `caller`, plugin code calling live
//! functions through the vault; unchanged across reloads, so it is kept with its statics).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hotswap_runtime::{Args, LiveData, LiveError, PluginManager, args};
use hotswap_tests::child_case::{self, PATIENCE};
use hotswap_tests::{BuiltPlugin, build_plugin, build_plugin_with_cargo_args};

const CALLER: &str = "tests/plugins/panic_caller";
const PEER: &str = "tests/plugins/panic_peer";

struct Fixtures {
    caller: BuiltPlugin,
    peer: BuiltPlugin,
    peer_v2: BuiltPlugin,
}

/// [`child_case::in_child`] with this file's fixtures: in the parent, builds them, runs test
/// `test` in a child process and asserts it ran `case` to the end; returns the child's standard
/// error. In the child: runs `case` and returns `None`.
fn in_child(test: &str, case: impl FnOnce(&Fixtures)) -> Option<String> {
    let build = || {
        vec![
            build_plugin(CALLER),
            build_plugin(PEER),
            build_plugin_with_cargo_args(PEER, "v2", cfg!(debug_assertions), &["--features", "v2"]),
        ]
    };
    child_case::in_child(test, &[], build, |built| {
        let [caller, peer, peer_v2] = <[BuiltPlugin; 3]>::try_from(built.to_vec()).expect("three fixtures");
        case(&Fixtures { caller, peer, peer_v2 });
    })
}

/// Panics when dropped: the host's extension, dropped by whoever drops its vault last.
struct ExplodingExtension;

thread_local! {
    /// Set on the host's thread while it calls the plugin that drops the last vault.
    static CALLING_CALLER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
/// How many extensions were dropped while the host's thread was inside that call.
static DROPPED_UNDER_THE_CALLER: AtomicUsize = AtomicUsize::new(0);

impl Drop for ExplodingExtension {
    fn drop(&mut self) {
        if CALLING_CALLER.get() {
            DROPPED_UNDER_THE_CALLER.fetch_add(1, Ordering::SeqCst);
        }
        panic!("the host's extension exploded when dropped");
    }
}

/// A manager serving `caller` and `peer` v1 from its own folders; released libraries are
/// closed at once (`retain_released_libraries(0)`), a replaced generation is freed within the
/// reload, and unchanged plugins are kept (the default).
struct Host {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    manager: PluginManager,
}

fn serving(fixtures: &Fixtures, exploding_extension: bool) -> Host {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, work) = (tmp.path().join("plugins"), tmp.path().join("work"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::create_dir(&work).unwrap();
    fixtures.caller.install(&dir);
    fixtures.peer.install(&dir);
    let mut builder =
        PluginManager::builder(&dir).work_root(&work).free_delay(Duration::ZERO).retain_released_libraries(0);
    if exploding_extension {
        builder = builder.extension_newer(|| ExplodingExtension);
    }
    let manager = builder.build().unwrap();
    assert_eq!(manager.load_plugins().expect("the fixtures load").generation, 1);
    let host = Host { _tmp: tmp, dir, manager };
    host.assert_answers(1, "v1");
    host
}

impl Host {
    /// Calls `func` of `plugin` in the serving generation; the plugin handle is dropped at once,
    /// so it keeps no generation alive.
    fn call<T: std::any::Any>(&self, plugin: &str, func: &str, args: Args) -> T {
        let plugin_handle = self.manager.find_plugin(plugin).unwrap_or_else(|| panic!("{plugin} serves"));
        plugin_handle.invoke::<T>(func, args).unwrap_or_else(|e| panic!("{plugin}.{func}: {e}"))
    }

    /// Generation `number` serves, and `peer` answers `version` from it.
    fn assert_answers(&self, number: u64, version: &str) {
        assert_eq!(self.manager.current().expect("a generation serves").number(), number);
        assert_eq!(self.call::<String>("peer", "answer", args![]), version);
    }

    /// Replaces `peer` v1 by v2 (the caller is kept) and waits until the replaced generation
    /// is freed and its released libraries closed.
    fn reload_peer_v2(&self, fixtures: &Fixtures) {
        fixtures.peer_v2.install_newest(&self.dir);
        self.manager.reload().expect("peer v2 loads");
        assert!(self.manager.free_released_now(PATIENCE), "generation 1 freed in time");
        self.assert_answers(2, "v2");
    }

    /// Where the serving `peer`'s private copy is.
    fn peer_library(&self) -> String {
        self.manager.find_plugin("peer").unwrap().loaded_from().to_string_lossy().into_owned()
    }
}

fn is_mapped_file(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().any(|l| l.ends_with(path))
}

#[test]
fn a_live_type_whose_default_or_deserialize_panics_is_an_error_naming_plugin_and_type() {
    in_child("a_live_type_whose_default_or_deserialize_panics_is_an_error_naming_plugin_and_type", |fixtures| {
        let host = serving(fixtures, false);
        let vault = std::sync::Arc::clone(host.manager.current().unwrap().vault());

        let error = vault.new_live("LiveBadDefault").unwrap_err();
        assert!(matches!(error, LiveError::Panicked { during: "Default", .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "live type `LiveBadDefault` of plugin `peer` panicked in its `Default`: LiveBadDefault refuses to be made"
        );

        let data = host.call::<LiveData>("peer", "bad_data", args![]);
        let error = vault.decode_live(&data).unwrap_err();
        assert!(matches!(error, LiveError::Panicked { during: "Deserialize", .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "live type `LiveBadDecode` of plugin `peer` panicked in its `Deserialize`: LiveBadDecode refuses to be read"
        );

        // The serving generation keeps answering, and makes values as before.
        drop(vault);
        host.assert_answers(1, "v1");
    });
}

#[test]
fn a_live_function_panicking_under_plugin_code_is_caught_by_that_plugin() {
    in_child("a_live_function_panicking_under_plugin_code_is_caught_by_that_plugin", |fixtures| {
        let host = serving(fixtures, false);
        // Plugin code calls another plugin's live function, then its own, inside its own
        // `catch_unwind`: each panic reaches it as a panic of its own std.
        let caught = host.call::<String>("caller", "call_boom", args!["live_boom".to_string()]);
        assert_eq!(caught, "caught: peer's live_boom refuses -1");
        let caught = host.call::<String>("caller", "call_boom", args!["live_own_boom".to_string()]);
        assert_eq!(caught, "caught: caller's own live_own_boom refuses -1");

        // The host calling the same function catches the panic as its own, message intact.
        let boom = host.manager.current().unwrap().vault().live_func::<fn(i64) -> i64>("live_boom").unwrap();
        let payload = catch_unwind(AssertUnwindSafe(|| boom.call((-1,)))).unwrap_err();
        assert_eq!(payload.downcast_ref::<String>().map(String::as_str), Some("peer's live_boom refuses -1"));
        assert_eq!(boom.call((5,)), 5);
        drop(boom);
        host.assert_answers(1, "v1");
    });
}

#[test]
fn the_hosts_extension_dropped_under_plugin_frames_panics_in_the_host_and_is_logged() {
    let Some(stderr) =
        in_child("the_hosts_extension_dropped_under_plugin_frames_panics_in_the_host_and_is_logged", |fixtures| {
            let host = serving(fixtures, true);
            host.reload_peer_v2(fixtures);
            // The kept caller holds the last reference to generation 1's vault; it drops it
            // inside its own `invoke_func`, so the host's extension's `Drop` runs under the
            // plugin's frames.
            CALLING_CALLER.set(true);
            host.call::<()>("caller", "forget_vault", args![]);
            CALLING_CALLER.set(false);
            assert_eq!(DROPPED_UNDER_THE_CALLER.load(Ordering::SeqCst), 1, "dropped under the caller's frames");
            host.assert_answers(2, "v2");
        })
    else {
        return;
    };
    assert!(
        stderr.matches("the host's extension exploded when dropped").count() >= 1,
        "the extension's drop ran (and panicked) in the child:\n{stderr}"
    );
}

#[test]
fn a_value_a_plugin_keeps_from_a_live_function_keeps_that_library_mapped_across_its_reload() {
    in_child("a_value_a_plugin_keeps_from_a_live_function_keeps_that_library_mapped_across_its_reload", |fixtures| {
        let host = serving(fixtures, false);
        host.call::<()>("caller", "keep_value", args![]);
        // The caller lets its vault go: only the kept Value refers to peer v1 now.
        host.call::<()>("caller", "forget_vault", args![]);
        let peer_v1 = host.peer_library();
        host.reload_peer_v2(fixtures);
        assert_ne!(host.peer_library(), peer_v1);

        assert!(is_mapped_file(&peer_v1), "the kept Value keeps peer v1's library mapped");
        // Reads the Value's type information, which lives in peer v1's library.
        assert_eq!(host.call::<String>("caller", "read_kept", args![]), "i64 41");

        // Dropped, its library is closed: nothing is left behind.
        host.call::<()>("caller", "drop_kept", args![]);
        assert!(host.manager.free_released_now(PATIENCE));
        assert!(!is_mapped_file(&peer_v1), "{peer_v1} still mapped after the Value went");
        assert!(!std::path::Path::new(&peer_v1).exists(), "its private copy is deleted");
        host.assert_answers(2, "v2");
    });
}
