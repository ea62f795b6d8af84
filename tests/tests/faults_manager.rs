//! Fault injection against the manager itself: hooks that never return or ask for a reload
//! from inside one, refused reloads that must leave nothing behind, and a plugin folder,
//! manifests and file names chosen by a hostile or careless user.
//!
//! Every case checks the same promises as `faults.rs`: the refusal names the plugin (when
//! there is one), the file and the stage; the serving generation keeps answering; nothing is
//! left in the manager's work folder beyond the serving libraries; status reads and the
//! control socket still answer afterwards.
//!
//! Fixtures: `greeter_v1`/`greeter_v2` serve; `mgr_hostile` is a build of `greeter` whose
//! misbehaviour is chosen by a file `hostile-mode` in the plugin folder.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotswap_runtime::{
    ControlRequest, ControlResponse, ControlServer, IgnoredReason, LoadError, LoadErrorKind, ManifestError,
    PluginManager, PluginManagerBuilder, Stage, args,
};
use hotswap_tests::runtime_log::{capture, logged};
use hotswap_tests::{build_plugin, copy_atomically};

const V1: &str = "tests/plugins/greeter_v1";
const V2: &str = "tests/plugins/greeter_v2";
const HOSTILE: &str = "tests/plugins/mgr_hostile";
const ON_LOAD_FAULT: &str = "tests/plugins/fault_on_load";

/// A host serving `greeter` v1 from `dir`, with a control socket.
struct Host {
    // Fields drop in order: the control server before the folder that holds its socket.
    _control: ControlServer,
    manager: PluginManager,
    dir: PathBuf,
    socket: PathBuf,
    _tmp: tempfile::TempDir,
}

fn serving(configure: impl FnOnce(PluginManagerBuilder) -> PluginManagerBuilder) -> Host {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plugins");
    std::fs::create_dir(&dir).unwrap();
    build_plugin(V1).install(&dir);
    let manager = configure(PluginManager::builder(&dir).free_delay(Duration::ZERO).retain_released_libraries(0))
        .build()
        .unwrap();
    assert_eq!(manager.load_plugins().expect("v1 loads").generation, 1);
    let socket = tmp.path().join("control.sock");
    let control = ControlServer::start(manager.clone(), &socket).unwrap();
    let host = Host { _control: control, manager, dir, socket, _tmp: tmp };
    assert_eq!(host.answer(), "v1");
    host
}

impl Host {
    fn answer(&self) -> String {
        let plugin = self.manager.find_plugin("greeter").expect("greeter serves");
        let _sum: i64 = plugin.invoke("add", args![6_i64, 7_i64]).expect("add answers");
        plugin.invoke("answer", args![]).unwrap()
    }

    /// The generation that served keeps serving, status answers on the socket, and the work
    /// folder holds exactly the serving libraries.
    fn still_serving(&self, answer: &str, generation: u64) {
        assert_eq!(self.answer(), answer);
        assert_eq!(self.manager.generation_number(), generation);
        match status(&self.socket) {
            ControlResponse::Serving { generation: g, .. } => assert_eq!(g, Some(generation)),
            other => panic!("unexpected status answer {other:?}"),
        }
        self.assert_work_folder_holds_only_the_serving_libraries();
    }

    fn assert_work_folder_holds_only_the_serving_libraries(&self) {
        let serving: Vec<PathBuf> =
            self.manager.current().unwrap().plugins().iter().map(|p| p.loaded_from().to_path_buf()).collect();
        let mut left: Vec<PathBuf> =
            std::fs::read_dir(self.manager.work_dir()).unwrap().map(|e| e.unwrap().path()).collect();
        left.sort();
        assert_eq!(left, serving, "the work folder holds only the serving libraries");
    }

    fn install_newest(&self, krate: &str) -> PathBuf {
        bump_clock();
        build_plugin(krate).install(&self.dir)
    }

    fn set_mode(&self, mode: &str) {
        std::fs::write(self.dir.join("hostile-mode"), mode).unwrap();
    }

    fn release(&self) {
        std::fs::write(self.dir.join("release"), "").unwrap();
    }

    /// Waits until `mgr_hostile`'s `hook` has started to stall (it writes `stalled-<hook>`).
    fn wait_until_stalled(&self, hook: &str) {
        let marker = self.dir.join(format!("stalled-{hook}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !marker.exists() {
            assert!(Instant::now() < deadline, "{hook} never started to stall");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether `mgr_hostile`'s stalled `hook` has returned (it writes `left-<hook>`).
    fn has_left(&self, hook: &str) -> bool {
        self.dir.join(format!("left-{hook}")).exists()
    }
}

/// Asks the host's control socket for its status.
fn status(socket: &Path) -> ControlResponse {
    hotswap_runtime::send_request(socket, &ControlRequest::Status, Duration::from_secs(5))
        .expect("the control socket answers")
}

/// File times have a granularity; the newest file must be newer.
fn bump_clock() {
    std::thread::sleep(Duration::from_millis(20));
}

fn assert_names(error: &LoadError, plugin: Option<&str>, file: &Path, stage: Stage) {
    assert_eq!(error.plugin.as_deref(), plugin, "{error}");
    assert_eq!(error.file, file, "{error}");
    assert_eq!(error.stage, stage, "{error}");
    let text = error.to_string();
    if let Some(plugin) = plugin {
        assert!(text.contains(plugin), "{text}");
    }
    assert!(text.contains(&stage.to_string()), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Hooks that never return, and re-entrant reloads.
// ---------------------------------------------------------------------------------------------

#[test]
fn an_on_load_that_never_returns_times_out_and_later_reloads_work() {
    let host = serving(|b| b.reload_deadline(Duration::from_secs(2)));
    host.set_mode("loop_on_load");
    let file = host.install_newest(HOSTILE);
    let manager = host.manager.clone();
    let stuck = std::thread::spawn(move || manager.reload());
    // While it is stuck: status, counters, calls and a second request all answer at once.
    host.wait_until_stalled("on_load");
    let t = Instant::now();
    let progress = host.manager.reload_progress().expect("a reload is running");
    assert_eq!((progress.stage, progress.plugin.as_deref()), (Stage::OnLoad, Some("greeter")));
    assert_eq!(host.manager.reload_count(), 0);
    assert_eq!(host.answer(), "v1");
    let busy = host.manager.try_reload().unwrap_err();
    assert_eq!(busy.kind, LoadErrorKind::Busy);
    assert!(busy.to_string().contains("reload in progress for"), "{busy}");
    assert!(busy.to_string().contains("greeter") && busy.to_string().contains("on_load"), "{busy}");
    match status(&host.socket) {
        ControlResponse::Serving { generation, .. } => assert_eq!(generation, Some(1)),
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(1), "status waited for the reload: {:?}", t.elapsed());

    let error = stuck.join().unwrap().unwrap_err();
    assert_eq!(error.kind, LoadErrorKind::TimedOut);
    assert_names(&error, Some("greeter"), &host.dir, Stage::OnLoad);
    assert!(error.to_string().contains("deadline"), "{error}");
    assert_eq!(host.manager.abandoned_reload_count(), 1);
    assert_eq!(host.answer(), "v1");

    // A later reload works while the stuck thread still runs.
    std::fs::remove_file(&file).unwrap();
    host.install_newest(V2);
    assert_eq!(host.manager.reload().expect("a later reload works").generation, 2);
    assert_eq!(host.answer(), "v2");
    // Released, the abandoned reload finishes; what it built is discarded, never published.
    host.release();
    let deadline = Instant::now() + Duration::from_secs(20);
    while host.manager.work_dir().read_dir().unwrap().count() > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    host.still_serving("v2", 2);
}

#[test]
fn an_on_free_that_never_returns_holds_no_lock() {
    let host = serving(|b| b.reload_deadline(Duration::from_secs(2)));
    host.set_mode("loop_on_free");
    host.install_newest(HOSTILE);
    assert_eq!(host.manager.reload().unwrap().generation, 2);
    assert_eq!(host.answer(), "hostile-ok");
    // Replacing it runs its on_free, which loops: the reload still returns within the
    // deadline, and status, counters and later reloads do not wait for it.
    host.install_newest(V2);
    let t = Instant::now();
    assert_eq!(host.manager.reload().unwrap().generation, 3);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // The checks below run while that on_free is stuck, which is what they test.
    host.wait_until_stalled("on_free");
    assert_eq!(host.manager.reload_count(), 2);
    assert_eq!(host.answer(), "v2");
    match status(&host.socket) {
        ControlResponse::Serving { generation, .. } => assert_eq!(generation, Some(3)),
        other => panic!("{other:?}"),
    }
    host.install_newest(V1);
    assert_eq!(host.manager.reload().unwrap().generation, 4);
    assert!(!host.has_left("on_free"), "on_free was still stuck through status and the later reload");
    host.release();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !host.has_left("on_free") {
        assert!(Instant::now() < deadline, "the released on_free never returned");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Dropping the manager returns at once even with a reaper that was stuck.
    let t = Instant::now();
    drop(host);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn a_reload_asked_for_from_a_reload_callback_is_refused_as_reentrant() {
    let host = serving(|b| b);
    let manager = host.manager.clone();
    host.install_newest(V2);
    let t = Instant::now();
    let error = host
        .manager
        .reload_with(move |_, _| match manager.reload() {
            Err(e) if e.kind == LoadErrorKind::Reentrant => Err(e.to_string().into()),
            other => Err(format!("expected a re-entrant refusal, got {other:?}").into()),
        })
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(error.stage, Stage::Callback);
    assert!(error.to_string().contains("from inside stage `reload callback`"), "{error}");
    host.still_serving("v1", 1);
    assert_eq!(host.manager.reload().unwrap().generation, 2);
}

#[test]
fn a_reload_asked_for_from_a_plugin_hook_is_refused_naming_the_hook() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plugins");
    std::fs::create_dir(&dir).unwrap();
    build_plugin(V1).install(&dir);
    let slot: Arc<std::sync::OnceLock<PluginManager>> = Arc::default();
    let for_plugins = Arc::clone(&slot);
    let manager = PluginManager::builder(&dir)
        .free_delay(Duration::ZERO)
        .extension_newer(move || {
            let manager = Arc::clone(&for_plugins);
            Arc::new(move || match manager.get().unwrap().reload() {
                Ok(r) => format!("accepted generation {}", r.generation),
                Err(e) => format!("{:?}: {e}", e.kind),
            }) as Arc<dyn Fn() -> String + Send + Sync>
        })
        .build()
        .unwrap();
    slot.set(manager.clone()).unwrap();
    manager.load_plugins().unwrap();
    std::fs::write(dir.join("hostile-mode"), "reload_from_on_init").unwrap();
    bump_clock();
    let file = build_plugin(HOSTILE).install(&dir);
    let error = manager.reload().unwrap_err();
    assert_names(&error, Some("greeter"), &file, Stage::OnInit);
    let text = error.to_string();
    assert!(text.contains("Reentrant") && text.contains("the `on_init` hook of plugin `greeter`"), "{text}");
    assert_eq!(manager.generation_number(), 1);
}

// ---------------------------------------------------------------------------------------------
// Refused reloads leave nothing behind.
// ---------------------------------------------------------------------------------------------

#[test]
fn twenty_refused_reloads_leave_nothing_in_the_work_folder() {
    let host = serving(|b| b);
    let file = host.install_newest(ON_LOAD_FAULT);
    for _ in 0..20 {
        let error = host.manager.reload().unwrap_err();
        assert_names(&error, Some("greeter"), &file, Stage::OnLoad);
    }
    host.still_serving("v1", 1);
}

#[test]
fn a_library_over_the_size_limit_is_refused_before_it_is_read() {
    let limit = std::fs::metadata(&build_plugin(V1).library).unwrap().len();
    let host = serving(|b| b.max_library_size(limit));
    bump_clock();
    let file = host.dir.join("greeter@9.so");
    let mut bytes = std::fs::read(&build_plugin(V2).library).unwrap();
    bytes.resize(limit as usize + 1, 0);
    std::fs::write(&file, bytes).unwrap();
    let error = host.manager.reload().unwrap_err();
    assert_names(&error, Some("greeter"), &file, Stage::Copy);
    assert!(error.to_string().contains(&format!("over the limit of {limit} bytes")), "{error}");
    host.still_serving("v1", 1);
}

#[test]
fn a_huge_sparse_file_is_refused_at_once_with_the_default_limit() {
    let host = serving(|b| b);
    bump_clock();
    let file = host.dir.join("greeter@9.so");
    let f = std::fs::File::create(&file).unwrap();
    f.set_len(2 << 30).unwrap();
    drop(f);
    // inotify tells whether the reload opened the file (to look at its size through the open
    // handle) and whether it read any of it.
    let watch = Inotify::watch(&file);
    let error = host.manager.reload().unwrap_err();
    assert_names(&error, Some("greeter"), &file, Stage::Copy);
    assert!(error.to_string().contains("over the limit"), "{error}");
    let events = watch.events();
    assert!(events & libc::IN_OPEN != 0, "the reload looked at the file (events {events:#x})");
    assert_eq!(events & libc::IN_ACCESS, 0, "the reload read none of the 2 GiB (events {events:#x})");
    host.still_serving("v1", 1);
}

/// An inotify watch on one file, for opens and reads.
struct Inotify(std::os::fd::OwnedFd);

impl Inotify {
    fn watch(file: &Path) -> Inotify {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: inotify_init1 takes no pointers; a non-negative result is a new descriptor
        // that nothing else owns.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1: {}", std::io::Error::last_os_error());
        // SAFETY: as above; `fd` is open and owned here only.
        let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let path = std::ffi::CString::new(file.as_os_str().as_bytes()).unwrap();
        // SAFETY: `path` is a NUL-terminated string that outlives the call; `fd` is open.
        let wd = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_OPEN | libc::IN_ACCESS) };
        assert!(wd >= 0, "inotify_add_watch: {}", std::io::Error::last_os_error());
        Inotify(owned)
    }

    /// The union of the event masks queued so far.
    fn events(&self) -> u32 {
        use std::os::fd::AsRawFd;
        let mut mask = 0;
        let mut buffer = [0u8; 4096];
        loop {
            // SAFETY: `buffer` is writable for its length; the descriptor is open.
            let n = unsafe { libc::read(self.0.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
            if n <= 0 {
                return mask;
            }
            // Each event: wd (i32), mask (u32), cookie (u32), len (u32), then `len` name bytes.
            let mut at = 0;
            while at + 16 <= n as usize {
                mask |= u32::from_ne_bytes(buffer[at + 4..at + 8].try_into().unwrap());
                let len = u32::from_ne_bytes(buffer[at + 12..at + 16].try_into().unwrap()) as usize;
                at += 16 + len;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Manifests.
// ---------------------------------------------------------------------------------------------

fn manifest_of(library: &Path) -> PathBuf {
    library.with_extension("json")
}

#[test]
fn a_fifo_manifest_is_refused_without_hanging() {
    let host = serving(|b| b);
    let file = host.install_newest(V2);
    let manifest = manifest_of(&file);
    std::fs::remove_file(&manifest).unwrap();
    rustix_mkfifo(&manifest);
    let t = Instant::now();
    let error = host.manager.reload().unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_names(&error, Some("greeter"), &file, Stage::Copy);
    assert!(error.to_string().contains("not a regular file"), "{error}");
    host.still_serving("v1", 1);
}

fn rustix_mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_manifest_linked_to_dev_zero_is_refused() {
    let host = serving(|b| b);
    let file = host.install_newest(V2);
    let manifest = manifest_of(&file);
    std::fs::remove_file(&manifest).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &manifest).unwrap();
    let error = host.manager.reload().unwrap_err();
    assert_names(&error, Some("greeter"), &file, Stage::Copy);
    assert!(error.to_string().contains("symbolic link"), "{error}");
    host.still_serving("v1", 1);
}

#[test]
fn an_oversized_manifest_is_refused() {
    let host = serving(|b| b);
    let file = host.install_newest(V2);
    std::fs::write(manifest_of(&file), vec![b' '; 100 * 1024]).unwrap();
    let error = host.manager.reload().unwrap_err();
    assert_names(&error, Some("greeter"), &file, Stage::Copy);
    assert!(error.to_string().contains("over the limit"), "{error}");
    let source = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<ManifestError>());
    assert!(matches!(source, Some(ManifestError::TooLarge { size: Some(102400), .. })), "typed source {source:?}");
    host.still_serving("v1", 1);
}

#[test]
fn a_manifest_describing_another_plugin_or_library_is_refused() {
    for (field, value, expected) in [
        ("name", "other", "describes plugin `other`"),
        ("library", "other@1.so", "describes library `other@1.so`"),
        ("fingerprint", "rustc 0.0.0", "says ABI fingerprint [rustc 0.0.0]"),
    ] {
        let host = serving(|b| b);
        let file = host.install_newest(V2);
        let manifest = manifest_of(&file);
        let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
        json[field] = serde_json::Value::String(value.into());
        std::fs::write(&manifest, serde_json::to_vec(&json).unwrap()).unwrap();
        let error = host.manager.reload().unwrap_err();
        assert_names(&error, Some("greeter"), &file, Stage::Copy);
        assert!(error.to_string().contains(expected), "{field}: {error}");
        let source = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<ManifestError>());
        assert!(matches!(source, Some(ManifestError::Mismatch(_))), "{field}: typed source {source:?}");
        host.still_serving("v1", 1);
    }
}

#[test]
fn a_library_without_a_manifest_loads_with_a_warning() {
    capture();
    let host = serving(|b| b);
    let file = host.install_newest(V2);
    std::fs::remove_file(manifest_of(&file)).unwrap();
    assert_eq!(host.manager.reload().expect("no manifest is not a refusal").generation, 2);
    let warned = logged("no manifest beside the library", &file.to_string_lossy());
    assert_eq!(warned.len(), 1, "one warning naming the file: {warned:?}");
    assert!(warned[0].contains("WARN") && warned[0].contains("greeter"), "{}", warned[0]);
    host.still_serving("v2", 2);
}

// ---------------------------------------------------------------------------------------------
// The plugin folder.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_symlinked_library_is_listed_as_ignored_with_its_reason() {
    let host = serving(|b| b);
    let elsewhere = tempfile::tempdir().unwrap();
    let target = build_plugin(V2).install(elsewhere.path());
    bump_clock();
    let link = host.dir.join("greeter@99.so");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let report = host.manager.reload().unwrap();
    assert_eq!(report.plugins[0].note, "unchanged");
    let ignored = report.ignored.iter().find(|f| f.file == link).expect("the link is listed");
    assert_eq!((ignored.name.as_str(), ignored.reason), ("greeter", IgnoredReason::Symlink));
    host.still_serving("v1", 2);
}

#[test]
fn a_folder_holding_only_a_symlinked_library_says_so() {
    let host = serving(|b| b);
    let elsewhere = tempfile::tempdir().unwrap();
    let target = build_plugin(V2).install(elsewhere.path());
    let only = host._tmp.path().join("only-link");
    std::fs::create_dir(&only).unwrap();
    std::os::unix::fs::symlink(&target, only.join("greeter@2.so")).unwrap();
    host.manager.set_plugin_dir(&only);
    let error = host.manager.reload().unwrap_err();
    assert_names(&error, None, &only, Stage::Scan);
    assert!(error.to_string().contains("greeter@2.so (a symbolic link"), "{error}");
    host.manager.set_plugin_dir(&host.dir);
    host.still_serving("v1", 1);
}

#[test]
fn a_fifo_named_like_a_library_is_ignored() {
    let host = serving(|b| b);
    let fifo = host.dir.join("greeter@77.so");
    rustix_mkfifo(&fifo);
    let report = host.manager.reload().unwrap();
    let ignored = report.ignored.iter().find(|f| f.file == fifo).expect("the FIFO is listed");
    assert_eq!(ignored.reason, IgnoredReason::NotRegularFile);
    host.still_serving("v1", 2);
}

#[test]
fn a_non_utf8_file_name_is_ignored_and_a_newline_cannot_forge_a_log_line() {
    use std::os::unix::ffi::OsStrExt;
    let host = serving(|b| b);
    let odd = host.dir.join(std::ffi::OsStr::from_bytes(b"gr\xffeeter.so"));
    std::fs::write(&odd, b"junk").unwrap();
    let report = host.manager.reload().unwrap();
    let ignored = report.ignored.iter().find(|f| f.file == odd).expect("listed");
    assert_eq!(ignored.reason, IgnoredReason::NonUtf8Name);
    std::fs::remove_file(&odd).unwrap();

    capture();
    bump_clock();
    let forged = host.dir.join("evil\nINFO generation published.so");
    std::fs::write(&forged, b"junk").unwrap();
    let error = host.manager.reload().unwrap_err();
    assert_eq!(error.stage, Stage::Inspect);
    let text = error.to_string();
    assert!(!text.contains('\n') && text.contains("evil\\nINFO"), "{text}");
    // In the log: the refusal names the file on one line, escaped, and no line of the log starts
    // with the text after the newline (which would read as a line of its own).
    let folder = host.dir.to_string_lossy().into_owned();
    let refusals = logged("reload refused", &folder);
    assert!(refusals.iter().any(|l| l.contains("evil\\nINFO generation published.so")), "{refusals:?}");
    let forged_lines = logged("INFO generation published.so", "");
    assert!(forged_lines.iter().all(|l| !l.starts_with("INFO generation")), "a forged log line: {forged_lines:?}");
    std::fs::remove_file(&forged).unwrap();
    host.still_serving("v1", 2);
}

#[test]
fn a_world_writable_folder_above_the_plugin_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let open = tmp.path().join("open");
    let dir = open.join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    build_plugin(V1).install(&dir);
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let manager = PluginManager::builder(&dir).build().unwrap();
    let error = manager.load_plugins().unwrap_err();
    assert_names(&error, None, &dir, Stage::Scan);
    assert!(
        error.to_string().contains("the folder") && error.to_string().contains("writable by group or others"),
        "{error}"
    );
    // /tmp itself (root-owned, sticky) is fine, and so is the folder once fixed.
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(manager.load_plugins().unwrap().generation, 1);
}

#[test]
fn builds_with_the_same_time_are_ordered_by_version_number() {
    let host = serving(|b| b);
    let elsewhere = tempfile::tempdir().unwrap();
    let old = host.dir.join("greeter@1.9.so");
    let new = host.dir.join("greeter@1.10.so");
    copy_atomically(&build_plugin(V1).install(elsewhere.path()), &old);
    copy_atomically(&build_plugin(V2).install(elsewhere.path()), &new);
    let when = std::time::SystemTime::now() + Duration::from_secs(5);
    for file in [&old, &new] {
        std::fs::File::options().write(true).open(file).unwrap().set_modified(when).unwrap();
    }
    let report = host.manager.reload().unwrap();
    assert_eq!(report.plugins[0].file, new);
    host.still_serving("v2", 2);
}

#[test]
fn a_failed_first_load_is_not_reported_as_keeping_a_generation() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("greeter.so"), b"junk").unwrap();
    let manager = PluginManager::builder(tmp.path()).build().unwrap();
    let error = manager.load_plugins().unwrap_err();
    assert_eq!(error.stage, Stage::Inspect);
    assert_eq!((manager.generation_number(), manager.current().is_none()), (0, true));
}

#[test]
fn a_library_without_a_manifest_is_refused_when_manifests_are_required() {
    let host = serving(|b| b.require_manifest(true));
    let file = host.install_newest(V2);
    std::fs::remove_file(manifest_of(&file)).unwrap();
    let error = host.manager.reload().unwrap_err();
    assert_names(&error, Some("greeter"), &file, Stage::Copy);
    assert!(error.to_string().contains("requires one"), "{error}");
    host.still_serving("v1", 1);
}

#[test]
fn an_orphan_manifest_is_reported_and_a_dead_builds_temporary_is_removed() {
    let host = serving(|b| b);
    let orphan = host.dir.join("greeter@0.9.9.json");
    std::fs::write(&orphan, "{}").unwrap();
    // A pid that cannot be alive (above the kernel's pid_max) and one that is: this process.
    let dead = host.dir.join(".hotswap-999999999-abc.partial");
    let live = host.dir.join(format!(".hotswap-{}-abc.partial", std::process::id()));
    std::fs::write(&dead, vec![0; 4096]).unwrap();
    std::fs::write(&live, b"being written").unwrap();
    let report = host.manager.reload().unwrap();
    let listed = report.ignored.iter().find(|f| f.file == orphan).expect("the orphan manifest is listed");
    assert_eq!((listed.name.as_str(), listed.reason), ("greeter", IgnoredReason::OrphanManifest));
    assert!(!dead.exists(), "the dead build's temporary was removed");
    assert!(live.exists(), "a live build's temporary is left alone");
    host.still_serving("v1", 2);
}

/// In a child process (the limit is process-wide): files may grow to at most half the
/// library's size, so its private copy fails half-way as on a full tmpfs (EFBIG instead of
/// ENOSPC, the same error path).
#[test]
fn a_copy_that_runs_out_of_space_is_refused_and_leaves_no_partial_file() {
    const CHILD: &str = "HOTSWAP_TEST_FILE_SIZE_LIMIT_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let exe = std::env::current_exe().unwrap();
        let output = std::process::Command::new(exe)
            .args(["--exact", "a_copy_that_runs_out_of_space_is_refused_and_leaves_no_partial_file", "--nocapture"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success() && text.contains("1 passed"), "the child failed:\n{text}");
        return;
    }
    // Build and install everything first: the limit would stop cargo's own writes too.
    let host = serving(|b| b);
    let file = host.install_newest(V2);
    let half = std::fs::metadata(&file).unwrap().len() / 2;
    // SAFETY: ignoring SIGXFSZ (so an oversized write fails with EFBIG instead of killing the
    // process) and lowering a resource limit have no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit { rlim_cur: half, rlim_max: libc::RLIM_INFINITY };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let error = host.manager.reload().unwrap_err();
    assert_names(&error, Some("greeter"), &file, Stage::Copy);
    assert!(error.to_string().contains("cannot copy"), "{error}");
    host.still_serving("v1", 1);
}
