//! Wakers a plugin leaves in host-owned objects (issue 22 §5; the rule is in the guide's
//! section 10): a handler polls a host-owned object (the extension, a waker slot like tokio's
//! `AtomicWaker` or a channel's receiver), its future is dropped, its generation is replaced and
//! freed and its library closed (`retain_released_libraries(0)`), then the host wakes the
//! object. What the runtime guarantees, shown with real builds of fixture `waker_leak`:
//!
//! * a slot holding the host's waker (the handler polled it directly, or in `join!`/`select!`
//!   of a fixed set) wakes host code: safe after the library is closed;
//! * a slot holding a waker the plugin's code made (a `FuturesUnordered` in the handler) jumps
//!   into the closed library: the process dies of SIGSEGV. The runtime does not see such
//!   wakers and does not keep the library mapped for them; that is why the guide's rule exists;
//! * the same plugin built with `unloadable(false)` is never closed, so the same wake runs its
//!   code after its generation was freed.
//!
//! Each case runs in a child process (the test binary runs itself again for that one test);
//! the parent checks how the child ended and what it printed.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};
use std::time::Duration;

use hotswap_runtime::{PluginManager, args};
use hotswap_tests::{build_plugin, build_plugin_with_cargo_args};

const FIXTURE: &str = "tests/plugins/waker_leak";
/// Set in the child process to the name of the test it runs.
const CHILD: &str = "HOTSWAP_WAKERS_CHILD";
/// The fixture library the parent built, for the child.
const LIBRARY: &str = "HOTSWAP_WAKERS_LIBRARY";
/// Printed by the child just before the host wakes the slot.
const WAKING: &str = "wakers: the library of generation 1 is closed or kept as promised; waking";
/// Printed by the child when its case ran to the end.
const DONE: &str = "wakers: the child ran its case to the end";

/// The host's waker: counts its wakes.
#[derive(Default)]
struct HostWaker(AtomicUsize);

impl Wake for HostWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// In the child: serves plugin `waker` from `library` (released libraries closed at once,
/// replaced generations freed within the reload), has it `park_*` in the host's slot, reloads
/// (a fresh copy of the same file: generation 1 is freed and, unless pinned, closed), checks
/// what is still mapped, then wakes the slot and returns the host waker's count.
fn park_reload_and_wake(library: &str, call: &str, pinned: bool) -> usize {
    let plugins = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let built =
        hotswap_tests::BuiltPlugin { library: library.into(), manifest: PathBuf::from(library).with_extension("json") };
    built.install(plugins.path());
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let for_generations = Arc::clone(&slot);
    let manager = PluginManager::builder(plugins.path())
        .work_root(work.path())
        .free_delay(Duration::ZERO)
        .reuse_unchanged(false)
        .retain_released_libraries(0)
        .extension_newer(move || Arc::clone(&for_generations))
        .build()
        .unwrap();
    assert_eq!(manager.reload().unwrap().generation, 1);
    let host = Arc::new(HostWaker::default());
    let pending = manager.invoke::<bool>("waker", call, args![Waker::from(Arc::clone(&host))]).unwrap();
    assert!(pending, "the slot's future stays pending");
    assert!(slot.lock().unwrap().is_some(), "the slot keeps the waker it was polled with");
    let first_copy = |mapped: &[String]| mapped.iter().any(|m| m.contains("/g1-"));
    assert!(first_copy(&hotswap_tests::mapped_under(work.path())), "generation 1's copy is mapped while it serves");
    assert_eq!(manager.reload().unwrap().generation, 2);
    let mapped = hotswap_tests::mapped_under(work.path());
    assert_eq!(first_copy(&mapped), pinned, "generation 1 is freed; its library is closed unless pinned: {mapped:?}");
    println!("{WAKING}");
    let waker = slot.lock().unwrap().take().unwrap();
    waker.wake();
    host.0.load(Ordering::SeqCst)
}

/// In the parent: builds the fixture (`pinned`: with its feature `pinned`), runs test `test` of
/// this binary in a child process and returns how it ended and what it printed. In the child:
/// runs `case` with the library, prints [`DONE`] and returns `None`.
fn in_child(test: &str, pinned: bool, case: impl FnOnce(&str)) -> Option<(std::process::ExitStatus, String)> {
    if std::env::var(CHILD).as_deref() == Ok(test) {
        // One case dies of SIGSEGV on purpose: no core file for it.
        let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `setrlimit` reads the struct passed by reference and changes only this
        // process's limit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) }, 0);
        case(&std::env::var(LIBRARY).expect("the parent passes the library"));
        println!("{DONE}");
        return None;
    }
    let built = if pinned {
        build_plugin_with_cargo_args(FIXTURE, "pinned", cfg!(debug_assertions), &["--features", "pinned"])
    } else {
        build_plugin(FIXTURE)
    };
    let output = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .env(LIBRARY, &built.library)
        .output()
        .expect("running the test binary again");
    let printed = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some((output.status, printed))
}

fn assert_finished(ended: Option<(std::process::ExitStatus, String)>) {
    if let Some((status, printed)) = ended {
        assert!(status.success() && printed.contains(DONE), "the child did not finish normally ({status})\n{printed}");
    }
}

#[test]
fn a_hosts_waker_left_in_a_host_object_wakes_host_code_after_the_library_is_closed() {
    assert_finished(in_child(
        "a_hosts_waker_left_in_a_host_object_wakes_host_code_after_the_library_is_closed",
        false,
        |library| assert_eq!(park_reload_and_wake(library, "park_direct", false), 1),
    ));
}

#[test]
fn a_waker_made_by_plugin_code_left_in_a_host_object_jumps_into_the_closed_library() {
    let Some((status, printed)) =
        in_child("a_waker_made_by_plugin_code_left_in_a_host_object_jumps_into_the_closed_library", false, |library| {
            park_reload_and_wake(library, "park_unordered", false);
        })
    else {
        return;
    };
    use std::os::unix::process::ExitStatusExt;
    // The child got as far as the wake, with generation 1's library closed, and died in it.
    assert!(printed.contains(WAKING), "{status}\n{printed}");
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status}\n{printed}");
    assert!(!printed.contains(DONE), "{printed}");
}

#[test]
fn a_waker_made_by_a_pinned_plugins_code_still_runs_after_its_generation_is_freed() {
    assert_finished(in_child(
        "a_waker_made_by_a_pinned_plugins_code_still_runs_after_its_generation_is_freed",
        true,
        // The plugin's wake marks its task and wakes the host's waker once.
        |library| assert_eq!(park_reload_and_wake(library, "park_unordered", true), 1),
    ));
}
