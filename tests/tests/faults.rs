//! Fault injection: broken files, faulty plugins, races with writers and with other reloads,
//! and a plugin folder that empties or disappears, each while a generation serves.
//!
//! Every refused reload is checked for the same three promises by [`refused_while_serving`]:
//!
//! 1. the reload is refused with a [`LoadError`] that names the file (or folder), the stage and
//!    the reason;
//! 2. the generation that was serving keeps serving: background threads call it in a loop
//!    during the faulty reload, and not one call fails or reaches other code;
//! 3. nothing the host held is lost: its `Plugin` handle and the data it kept in the serving
//!    generation's vault still work, the generation number is unchanged, and once the fault is
//!    repaired the next reload works and gets the next number.
//!
//! Fixtures: `greeter_v1`/`greeter_v2` serve; `fault_on_load` and `fault_on_init_panic` are
//! faulty builds of plugin `greeter`; `fault_no_descriptor` and `fault_fake_abi` are not
//! hotswap plugins at all (so `cargo xtask build` refuses them) and are built with plain
//! `cargo build`; the `dep_*` fixtures of `dependencies.rs` give the dependency faults.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hotswap_runtime::inspect::sha256_hex;
use hotswap_runtime::{
    ControlRequest, ControlResponse, ControlServer, InvokeError, LoadError, PluginManager, PluginManagerBuilder,
    ReloadReport, Stage, args,
};
use hotswap_tests::{BuiltPlugin, build_plugin, copy_atomically, make_newest, workspace_root};

const V1: &str = "tests/plugins/greeter_v1";
const V2: &str = "tests/plugins/greeter_v2";
const ON_LOAD_FAULT: &str = "tests/plugins/fault_on_load";
const ON_INIT_PANIC: &str = "tests/plugins/fault_on_init_panic";
const EXPORTER: &str = "tests/plugins/dep_exporter";
const IMPORTER_OK: &str = "tests/plugins/dep_importer_ok";
const IMPORTER_BAD: &str = "tests/plugins/dep_importer_bad";

/// Threads calling the serving generation during a faulty reload.
const CALLERS: usize = 2;
/// Deadline for anything that only has to happen eventually; never reached unless stuck.
const PATIENCE: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// A host serving `greeter`, and threads calling it.
// ---------------------------------------------------------------------------------------------

/// A host whose plugin folder serves `greeter` (v1) and possibly more plugins.
struct Host {
    /// Holds the plugin folder (a subfolder, so that a test can remove the folder itself).
    tmp: tempfile::TempDir,
    dir: PathBuf,
    manager: PluginManager,
}

/// A host with `greeter_v1` and the fixture crates `extra` installed, serving generation 1.
fn serving(extra: &[&str]) -> Host {
    serving_with(extra, |builder| builder)
}

/// [`serving`], with the manager configured by `configure`.
fn serving_with(extra: &[&str], configure: impl FnOnce(PluginManagerBuilder) -> PluginManagerBuilder) -> Host {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plugins");
    std::fs::create_dir(&dir).unwrap();
    build_plugin(V1).install(&dir);
    for krate in extra {
        build_plugin(krate).install(&dir);
    }
    let manager = configure(PluginManager::builder(&dir).free_delay(Duration::from_millis(50))).build().unwrap();
    assert_eq!(manager.load_plugins().expect("the fixtures load").generation, 1);
    assert_eq!(greeter(&manager), ("v1".to_string(), 13));
    Host { tmp, dir, manager }
}

/// What `greeter` of the current generation answers, and what it makes of 6 and 7.
fn greeter(manager: &PluginManager) -> (String, i64) {
    let plugin = manager.find_plugin("greeter").expect("greeter serves");
    (plugin.invoke("answer", args![]).unwrap(), plugin.invoke("add", args![6_i64, 7_i64]).unwrap())
}

/// Threads that call `greeter` of the current generation in a loop, as a host's request
/// handlers would, and record every call that fails or answers other than `allowed`.
struct Callers {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
    failures: Arc<Mutex<(u64, Vec<String>)>>,
    threads: Vec<JoinHandle<()>>,
}

impl Callers {
    /// Starts [`CALLERS`] threads; each call must answer one of the `(answer, 6 add 7)` pairs.
    fn start(manager: &PluginManager, allowed: &[(&str, i64)]) -> Callers {
        let allowed: Arc<Vec<(String, i64)>> = Arc::new(allowed.iter().map(|(a, s)| (a.to_string(), *s)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new((0, Vec::new())));
        let threads = (0..CALLERS)
            .map(|_| {
                let (manager, allowed) = (manager.clone(), Arc::clone(&allowed));
                let (stop, calls, failures) = (Arc::clone(&stop), Arc::clone(&calls), Arc::clone(&failures));
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        let outcome = (|| -> Result<(), String> {
                            let plugin = manager.find_plugin("greeter").ok_or("no generation serves `greeter`")?;
                            let answer: String = plugin.invoke("answer", args![]).map_err(|e| e.to_string())?;
                            let sum: i64 = plugin.invoke("add", args![6_i64, 7_i64]).map_err(|e| e.to_string())?;
                            match allowed.iter().any(|(a, s)| *a == answer && *s == sum) {
                                true => Ok(()),
                                false => Err(format!("unexpected answer {answer:?}, 6 add 7 = {sum}")),
                            }
                        })();
                        if let Err(message) = outcome {
                            let mut failures = failures.lock().unwrap();
                            failures.0 += 1;
                            if failures.1.len() < 5 {
                                failures.1.push(message);
                            }
                        }
                        calls.fetch_add(1, Ordering::AcqRel);
                        // Leave the cores to the reloads on a small machine.
                        std::thread::sleep(Duration::from_micros(200));
                    }
                })
            })
            .collect();
        Callers { stop, calls, failures, threads }
    }

    /// Waits until the callers have made `n` more calls: they may be slow on a loaded
    /// machine, but must never be stuck.
    fn wait_for_calls(&self, n: u64) {
        let target = self.calls.load(Ordering::Acquire) + n;
        let deadline = Instant::now() + PATIENCE;
        while self.calls.load(Ordering::Acquire) < target {
            assert!(Instant::now() < deadline, "the callers made no progress for {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops the callers and asserts that every call succeeded; returns the number of calls.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Release);
        for thread in self.threads.drain(..) {
            thread.join().expect("a caller thread panicked");
        }
        let calls = self.calls.load(Ordering::Acquire);
        let (failed, first) = &*self.failures.lock().unwrap();
        assert_eq!(*failed, 0, "{failed} of {calls} calls failed while the reload ran; the first: {first:#?}");
        assert!(calls > 0, "the callers made no call");
        calls
    }
}

impl Drop for Callers {
    fn drop(&mut self) {
        // A failed assertion must not leave the threads spinning.
        self.stop.store(true, Ordering::Release);
    }
}

// ---------------------------------------------------------------------------------------------
// The three promises of a refused reload.
// ---------------------------------------------------------------------------------------------

/// What a refused reload must report.
struct Refusal<'a> {
    /// The error must name one of these files (or the folder); usually exactly one.
    files: &'a [PathBuf],
    stage: Stage,
    /// Text the error's message must contain.
    says: &'a [&'a str],
}

/// With the fault already in `host`'s folder: reloads while callers call the serving
/// generation, and checks the three promises (see the module documentation). `repair` then
/// removes the fault, and the next reload must succeed as the next generation. Returns the
/// error, for checks of a case's own.
fn refused_while_serving(host: &Host, refusal: Refusal<'_>, repair: impl FnOnce()) -> LoadError {
    let manager = &host.manager;
    let serving = manager.current().expect("a generation serves");
    let number = serving.number();
    let held = manager.find_plugin("greeter").expect("greeter serves");
    let answer: String = held.invoke("answer", args![]).unwrap();
    let sum: i64 = held.invoke("add", args![6_i64, 7_i64]).unwrap();
    let note = format!("kept by the host in generation {number}");
    serving.vault().set_data("host.note", note.clone());

    let callers = Callers::start(manager, &[(answer.as_str(), sum)]);
    callers.wait_for_calls(20);
    let error = manager.reload().expect_err("the faulty reload must be refused");
    callers.wait_for_calls(20);

    // 1. Refused, naming the file, the stage and the reason.
    let text = error.to_string();
    assert!(
        refusal.files.contains(&error.file),
        "the error names {}, expected one of {:?}: {text}",
        error.file.display(),
        refusal.files
    );
    assert!(text.contains(&error.file.display().to_string()), "the message does not name the file: {text}");
    assert_eq!(error.stage, refusal.stage, "{text}");
    for part in refusal.says {
        assert!(text.contains(part), "`{part}` missing from: {text}");
    }

    // 2. The serving generation kept serving, every call succeeded.
    let current = manager.current().expect("a generation still serves");
    assert!(Arc::ptr_eq(&current, &serving), "generation {} replaced generation {number}", current.number());
    callers.finish();
    assert_eq!(greeter(manager), (answer.clone(), sum));

    // 3. Nothing the host held is lost, and the next good reload works.
    assert_eq!(current.number(), number, "a refused reload changed the generation number");
    assert_eq!(held.invoke::<String>("answer", args![]).unwrap(), answer);
    assert_eq!(held.generation().number(), number);
    assert_eq!(serving.vault().data::<String>("host.note").as_deref(), Some(&note));
    drop((current, serving));
    repair();
    let report = manager.reload().unwrap_or_else(|e| panic!("the reload after the repair failed: {e}"));
    assert_eq!(report.generation, number + 1, "a refused reload used up a generation number");
    assert_eq!(manager.current().unwrap().number(), number + 1);
    let (new_answer, _) = greeter(manager);
    assert!(["v1", "v2"].contains(&new_answer.as_str()), "the repaired folder serves {new_answer:?}");
    assert_eq!(
        held.invoke::<String>("answer", args![]).unwrap(),
        answer,
        "the held handle still runs its own generation"
    );
    assert_eq!(held.generation().vault().data::<String>("host.note").as_deref(), Some(&note));
    error
}

// ---------------------------------------------------------------------------------------------
// Files.
// ---------------------------------------------------------------------------------------------

/// Builds the `cdylib` package `package` with plain `cargo build` (debug), once per process:
/// `cargo xtask build` refuses crates that are not hotswap plugins. Returns a per-process copy
/// of the library, so that a concurrent build cannot change it under a test.
fn build_cdylib(package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let cell = {
        let mut map = BUILT.get_or_init(Default::default).lock().unwrap();
        Arc::clone(map.entry(package.to_string()).or_default())
    };
    cell.get_or_init(|| {
        let root = workspace_root();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(&root)
            .args(["build", "--quiet", "--message-format=json", "--package", package])
            .output()
            .expect("running cargo build");
        assert!(
            output.status.success(),
            "cargo build --package {package} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The library's path, from cargo's own report (wherever the target folder is).
        let library = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["name"] == package)
            .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
            .filter_map(|name| name.as_str().map(PathBuf::from))
            .find(|path| path.extension().is_some_and(|e| e == std::env::consts::DLL_EXTENSION))
            .unwrap_or_else(|| panic!("cargo build --package {package} reported no shared library"));
        let out =
            root.join("target").join("hotswap-test-plugins").join(format!("cdylib_{package}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let copy = out.join(library.file_name().unwrap());
        std::fs::copy(&library, &copy).unwrap();
        copy
    })
    .clone()
}

/// Writes `bytes` to `path` (not atomically) as its plugin's newest file.
fn write_newest(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    make_newest(path);
    path.to_path_buf()
}

/// Removes a library and its manifest, if any.
fn remove_library(library: &Path) {
    std::fs::remove_file(library).unwrap();
    let _ = std::fs::remove_file(library.with_extension("json"));
}

/// Deterministic noise (xorshift), so a failure can be reproduced.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A system shared library that is certainly on the machine: the C library this test process
/// has mapped (from `/proc/self/maps`).
fn system_library() -> PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps is readable");
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(PathBuf::from)
        .find(|path| path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("libc.so")))
        .expect("this test process has the C library mapped (a dynamically linked Linux target)")
}

// ---------------------------------------------------------------------------------------------
// Broken files.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_truncated_library_is_refused_at_inspect() {
    let host = serving(&[]);
    let bytes = std::fs::read(&build_plugin(V2).library).unwrap();
    let file = write_newest(&host.dir.join("greeter@9.9.9.so"), &bytes[..bytes.len() / 2]);
    let refusal = Refusal {
        files: std::slice::from_ref(&file),
        stage: Stage::Inspect,
        says: &["greeter@9.9.9.so", "not a valid shared library"],
    };
    refused_while_serving(&host, refusal, || remove_library(&file));
}

#[test]
fn random_bytes_named_like_a_library_are_refused_at_inspect() {
    let host = serving(&[]);
    // Plain noise, then noise behind an ELF magic number.
    for (seed, magic) in [(0x9e37_79b9_7f4a_7c15, &b""[..]), (0x2545_f491_4f6c_dd1d, &b"\x7fELF\x02\x01\x01"[..])] {
        let mut bytes = magic.to_vec();
        bytes.extend(noise(256 * 1024, seed));
        let file = write_newest(&host.dir.join("greeter@9.9.9.so"), &bytes);
        let refusal = Refusal {
            files: std::slice::from_ref(&file),
            stage: Stage::Inspect,
            says: &["not a valid shared library"],
        };
        refused_while_serving(&host, refusal, || remove_library(&file));
    }
}

#[test]
fn a_shared_library_that_is_not_a_plugin_is_refused_before_dlopen() {
    let system = system_library();
    println!("using {}", system.display());
    let host = serving(&[]);
    let file = host.dir.join("libc@1.0.0.so");
    copy_atomically(&system, &file);
    let refusal = Refusal {
        files: std::slice::from_ref(&file),
        stage: Stage::Inspect,
        says: &["not a hotswap plugin", hotswap_runtime::abi::DESCRIPTOR_SYMBOL],
    };
    let error = refused_while_serving(&host, refusal, || remove_library(&file));
    assert_eq!(error.plugin.as_deref(), Some("libc"), "{error}");
}

#[test]
fn a_rust_library_without_the_descriptor_symbol_is_refused_before_dlopen() {
    let library = build_cdylib("fault_no_descriptor");
    let host = serving(&[]);
    let file = host.dir.join("fault_no_descriptor@1.0.0.so");
    copy_atomically(&library, &file);
    let refusal = Refusal {
        files: std::slice::from_ref(&file),
        stage: Stage::Inspect,
        says: &["fault_no_descriptor@1.0.0.so", "not a hotswap plugin", hotswap_runtime::abi::DESCRIPTOR_SYMBOL],
    };
    let error = refused_while_serving(&host, refusal, || remove_library(&file));
    assert_eq!(error.plugin.as_deref(), Some("fault_no_descriptor"), "{error}");
}

#[test]
fn a_library_with_another_abi_fingerprint_is_refused_at_inspect_before_dlopen() {
    let library = build_cdylib("fault_fake_abi");
    // The fixture's static initialiser leaves this file if the library is ever opened.
    let marker = std::env::temp_dir().join(format!("hotswap-fault_fake_abi-opened-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let host = serving(&[]);
    let file = host.dir.join("fault_fake_abi@1.0.0.so");
    copy_atomically(&library, &file);
    let refusal = Refusal {
        files: std::slice::from_ref(&file),
        stage: Stage::Inspect,
        says: &[
            "ABI fingerprint mismatch",
            "rustc 0.0.0 (fake); target none; hotswap-runtime 0.0.0; layout 0; panic unwind",
            hotswap_runtime::abi::FINGERPRINT,
        ],
    };
    let error = refused_while_serving(&host, refusal, || remove_library(&file));
    assert_eq!(error.plugin.as_deref(), Some("fault_fake_abi"), "{error}");
    assert!(!marker.exists(), "the runtime opened a library whose fingerprint does not match: {error}");

    // The marker is a real witness: opening the library does leave it.
    let opened = host.tmp.path().join("opened-on-purpose.so");
    std::fs::copy(&library, &opened).unwrap();
    let c_path = std::ffi::CString::new(opened.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: the fixture's only code that runs on opening is `record_open`, which writes the
    // marker file; nothing else of the library is called, and it stays loaded (never closed).
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen of the fake plugin failed");
    assert!(marker.exists(), "opening the fixture did not leave the marker, so its absence proves nothing");
    std::fs::remove_file(&marker).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Faulty plugins.
// ---------------------------------------------------------------------------------------------

#[test]
fn on_load_returning_an_error_is_refused_at_on_load() {
    let fault = build_plugin(ON_LOAD_FAULT);
    let host = serving(&[]);
    let file = fault.install_newest(&host.dir);
    let refusal = Refusal {
        files: std::slice::from_ref(&file),
        stage: Stage::OnLoad,
        says: &["on_load returned an error", "fault_on_load refuses to load generation 2"],
    };
    let error = refused_while_serving(&host, refusal, || remove_library(&file));
    assert_eq!(error.plugin.as_deref(), Some("greeter"), "{error}");
}

#[test]
fn on_init_panicking_is_contained_and_refused_at_on_init() {
    let fault = build_plugin(ON_INIT_PANIC);
    let host = serving(&[]);
    let file = fault.install_newest(&host.dir);
    let refusal = Refusal {
        files: std::slice::from_ref(&file),
        stage: Stage::OnInit,
        says: &["panicked", "fault_on_init_panic panics in on_init of generation 2"],
    };
    let error = refused_while_serving(&host, refusal, || remove_library(&file));
    assert_eq!(error.plugin.as_deref(), Some("greeter"), "{error}");
}

#[test]
fn a_panicking_call_is_contained_and_the_plugin_stays_usable() {
    let host = serving(&[]);
    let manager = &host.manager;
    let held = manager.find_plugin("greeter").unwrap();
    let callers = Callers::start(manager, &[("v1", 13)]);
    callers.wait_for_calls(20);
    // Panicking calls from two threads at once, beside the callers.
    let panickers: Vec<_> = (0..2)
        .map(|_| {
            let held = held.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    match held.invoke::<()>("panic", args![]) {
                        Err(InvokeError::Panicked { plugin, func, message }) => {
                            assert_eq!((plugin.as_str(), func.as_str()), ("greeter", "panic"));
                            assert!(message.contains("asked to panic"), "{message}");
                        }
                        other => panic!("expected InvokeError::Panicked, got {other:?}"),
                    }
                }
            })
        })
        .collect();
    for panicker in panickers {
        panicker.join().expect("a panic escaped the plugin");
    }
    callers.wait_for_calls(20);
    callers.finish();
    assert_eq!(held.invoke::<i64>("add", args![2_i64, 3_i64]).unwrap(), 5, "the plugin is usable after the panics");
    assert_eq!(manager.current().unwrap().number(), 1);
    build_plugin(V2).install(&host.dir);
    assert_eq!(manager.reload().unwrap().generation, 2);
    assert_eq!(greeter(manager), ("v2".to_string(), 42));
}

// ---------------------------------------------------------------------------------------------
// Dependency faults (`dependencies.rs` covers the details).
// ---------------------------------------------------------------------------------------------

#[test]
fn an_import_of_the_wrong_type_is_refused_at_on_init() {
    let host = serving(&[EXPORTER, IMPORTER_OK]);
    let file = build_plugin(IMPORTER_BAD).install_newest(&host.dir);
    let refusal =
        Refusal { files: std::slice::from_ref(&file), stage: Stage::OnInit, says: &["dep_importer", "`dep_exporter`"] };
    refused_while_serving(&host, refusal, || remove_library(&file));
    let importer = host.manager.find_plugin("dep_importer").unwrap();
    assert_eq!(importer.invoke::<String>("variant", args![]).unwrap(), "ok");
}

#[test]
fn an_import_cycle_is_refused_at_dependencies() {
    let host = serving(&[]);
    let files: Vec<PathBuf> =
        hotswap_tests::build_import_cycle().iter().map(|plugin| plugin.install(&host.dir)).collect();
    let refusal = Refusal { files: &files, stage: Stage::Dependencies, says: &["import cycle: dep_cyc_"] };
    refused_while_serving(&host, refusal, || files.iter().for_each(|f| remove_library(f)));
}

#[test]
fn a_second_file_claiming_a_served_plugins_name_is_refused_at_inspect() {
    let host = serving(&[]);
    // Another copy of plugin `greeter`, under a file name that says it is plugin `impostor`.
    let file = host.dir.join("impostor@1.0.0.so");
    copy_atomically(&build_plugin(V2).library, &file);
    let refusal = Refusal {
        files: std::slice::from_ref(&file),
        stage: Stage::Inspect,
        says: &["the library is plugin `greeter`, but its file name says `impostor`"],
    };
    refused_while_serving(&host, refusal, || remove_library(&file));
}

// ---------------------------------------------------------------------------------------------
// Races with writers.
// ---------------------------------------------------------------------------------------------

/// Writes `bytes` to `file` in chunks with pauses, so that readers see it half written.
fn write_slowly(file: &Path, bytes: &[u8]) {
    let mut out = File::create(file).unwrap();
    for chunk in bytes.chunks(bytes.len().div_ceil(24)) {
        out.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The build whose library `report` loaded for `greeter`: its whole file, never part of one.
fn loaded_build<'a>(report: &ReloadReport, builds: &'a [(&BuiltPlugin, String)]) -> &'a BuiltPlugin {
    let greeter = report.plugins.iter().find(|p| p.name == "greeter").expect("greeter is in the report");
    builds.iter().find(|(_, sha)| *sha == greeter.sha256).map(|(build, _)| *build).unwrap_or_else(|| {
        panic!("generation {} loaded a library that is no whole build: {greeter:?}", report.generation)
    })
}

#[test]
fn a_library_written_in_place_during_reloads_is_refused_or_loaded_whole() {
    let (v1, v2) = (build_plugin(V1), build_plugin(V2));
    let bytes = std::fs::read(&v2.library).unwrap();
    let builds = [(&v1, sha256_hex(&std::fs::read(&v1.library).unwrap())), (&v2, sha256_hex(&bytes))];
    // Every successful reload opens what it read, instead of keeping an identical instance.
    let host = serving_with(&[], |builder| builder.reuse_unchanged(false));
    let manager = &host.manager;
    // v2's library under its own name, written in place like a careless `cp`; no manifest.
    let target = host.dir.join(v2.library.file_name().unwrap());
    let check_refusal = |error: &LoadError| {
        assert_eq!(error.file, target, "{error}");
        assert!(matches!(error.stage, Stage::Copy | Stage::Inspect), "a partial file got past inspection: {error}");
        assert!(error.to_string().contains(&target.display().to_string()), "{error}");
    };

    // Every prefix short of the whole file is refused, whatever the cut.
    let callers = Callers::start(manager, &[("v1", 13), ("v2", 42)]);
    for cut in [0, 1, 64, 4096, bytes.len() / 8, bytes.len() / 2, bytes.len() - 4096, bytes.len() - 1] {
        write_newest(&target, &bytes[..cut]);
        let error = manager.reload().expect_err(&format!("the first {cut} of {} bytes were loaded", bytes.len()));
        check_refusal(&error);
        assert!(error.reason.contains("not a valid shared library"), "{error}");
        assert_eq!(greeter(manager), ("v1".to_string(), 13));
    }
    assert_eq!(manager.current().unwrap().number(), 1);

    // A writer rewriting the file in place while reloads run: each reload is refused or loads
    // the whole library, and the callers never notice.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (target, bytes, stop, writes) = (target.clone(), bytes.clone(), Arc::clone(&stop), Arc::clone(&writes));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                write_slowly(&target, &bytes);
                writes.fetch_add(1, Ordering::AcqRel);
                // A moment with the whole file in place.
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };
    let (mut refused, mut loaded) = (0, 0);
    let mut generation = 1;
    // At least 12 reloads, spread over at least 4 complete writes.
    let deadline = Instant::now() + PATIENCE;
    while refused + loaded < 12 || writes.load(Ordering::Acquire) < 4 {
        assert!(Instant::now() < deadline, "the writer made no progress for {PATIENCE:?}");
        match manager.reload() {
            Err(error) => {
                check_refusal(&error);
                refused += 1;
            }
            Ok(report) => {
                assert_eq!(report.generation, generation + 1);
                generation = report.generation;
                let build = loaded_build(&report, &builds);
                let expected = if std::ptr::eq(build, &v1) { ("v1", 13) } else { ("v2", 42) };
                let plugin = manager.current().unwrap().find_plugin("greeter").unwrap();
                assert_eq!(plugin.invoke::<String>("answer", args![]).unwrap(), expected.0);
                assert_eq!(plugin.invoke::<i64>("add", args![6_i64, 7_i64]).unwrap(), expected.1);
                loaded += 1;
            }
        }
    }
    stop.store(true, Ordering::Release);
    writer.join().expect("the writer panicked");
    println!("while {} writes ran: {refused} reloads refused, {loaded} loaded", writes.load(Ordering::Acquire));
    callers.finish();

    // Once the writer is done the file is whole, and it loads.
    let report = manager.reload().expect("the whole library loads");
    assert!(std::ptr::eq(loaded_build(&report, &builds), &v2));
    assert_eq!(greeter(manager), ("v2".to_string(), 42));
}

#[test]
fn libraries_written_to_a_hidden_file_and_renamed_are_never_seen_half_written() {
    let (v1, v2) = (build_plugin(V1), build_plugin(V2));
    let builds = [
        (&v1, sha256_hex(&std::fs::read(&v1.library).unwrap())),
        (&v2, sha256_hex(&std::fs::read(&v2.library).unwrap())),
    ];
    let host = serving_with(&[], |builder| builder.reuse_unchanged(false));
    let manager = &host.manager;
    v2.install(&host.dir);
    let callers = Callers::start(manager, &[("v1", 13), ("v2", 42)]);

    // A writer installing v1 and v2 in turn, the documented way: slowly into a hidden file
    // (which even ends in `.so`), then a rename over the library's name.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (dir, stop, writes) = (host.dir.clone(), Arc::clone(&stop), Arc::clone(&writes));
        let libraries = [v1.library.clone(), v2.library.clone()];
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                for library in &libraries {
                    let name = library.file_name().unwrap().to_string_lossy().into_owned();
                    let hidden = dir.join(format!(".{name}"));
                    write_slowly(&hidden, &std::fs::read(library).unwrap());
                    std::fs::rename(&hidden, dir.join(&name)).unwrap();
                    writes.fetch_add(1, Ordering::AcqRel);
                }
            }
        })
    };
    // Reload until the reloads have really raced the writer: at least 12 reloads, while at
    // least 6 renames landed after the first one started, and each version loaded at least once
    // (a reload that only ever saw one file would prove nothing).
    let mut seen = Vec::new();
    let renames_before = writes.load(Ordering::Acquire);
    let deadline = Instant::now() + PATIENCE;
    let both_seen = |seen: &[String]| seen.contains(&v1.version()) && seen.contains(&v2.version());
    while seen.len() < 12 || writes.load(Ordering::Acquire) < renames_before + 6 || !both_seen(&seen) {
        assert!(
            Instant::now() < deadline,
            "no race in {PATIENCE:?}: {} renames, the reloads loaded {seen:?}",
            writes.load(Ordering::Acquire) - renames_before
        );
        let report = manager.reload().unwrap_or_else(|e| panic!("a reload saw a file being written: {e}"));
        assert_eq!(report.generation, seen.len() as u64 + 2);
        seen.push(loaded_build(&report, &builds).version());
    }
    stop.store(true, Ordering::Release);
    writer.join().expect("the writer panicked");
    println!("while {} writes ran, the reloads loaded {seen:?}", writes.load(Ordering::Acquire) - renames_before);
    callers.finish();
}

// ---------------------------------------------------------------------------------------------
// Concurrent reload requests.
// ---------------------------------------------------------------------------------------------

#[test]
fn concurrent_reload_requests_are_all_answered_and_serialised() {
    // A reload callback sees every reload from inside the reload lock: it records the new and
    // the serving generation's numbers, and whether two reloads were ever inside at once.
    let inside = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    type Steps = Vec<(u64, Option<u64>)>;
    let seen: Arc<Mutex<Steps>> = Arc::new(Mutex::new(Vec::new()));
    let host = {
        let (inside, overlaps, seen) = (Arc::clone(&inside), Arc::clone(&overlaps), Arc::clone(&seen));
        serving_with(&[], move |builder| {
            builder.reload_callback(move |new, old| {
                if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                // Widens the window in which an unserialised reload would overlap.
                std::thread::sleep(Duration::from_millis(2));
                seen.lock().unwrap().push((new.number(), old.map(|g| g.number())));
                inside.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
        })
    };
    let manager = &host.manager;
    let socket = host.tmp.path().join("run").join("control.sock");
    let _server = ControlServer::start(manager.clone(), &socket).unwrap();
    let callers = Callers::start(manager, &[("v1", 13)]);

    /// One answer, from the manager or from the socket.
    #[derive(Debug)]
    enum Answer {
        Direct(Result<ReloadReport, LoadError>),
        Socket(ControlResponse),
    }
    // 8 threads calling `reload` and 8 asking through the control socket, all at once.
    let burst = || -> Vec<Answer> {
        let start = Arc::new(Barrier::new(16));
        let threads: Vec<JoinHandle<Answer>> = (0..16)
            .map(|i| {
                let (manager, socket, start) = (manager.clone(), socket.clone(), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    if i % 2 == 0 {
                        Answer::Direct(manager.reload())
                    } else {
                        Answer::Socket(
                            hotswap_runtime::send_request(&socket, &ControlRequest::Reload, PATIENCE).unwrap(),
                        )
                    }
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("a requester panicked")).collect()
    };

    // A good folder: every direct call is accepted; a socket request is accepted too, or
    // answered `busy` at once while another socket request's reload runs. The accepted ones
    // are generations 2 to 1 + accepted, each exactly once.
    let mut generations: Vec<u64> = burst()
        .into_iter()
        .filter_map(|answer| match answer {
            Answer::Direct(Ok(report)) => Some(report.generation),
            Answer::Socket(ControlResponse::Accepted { generation, .. }) => Some(generation),
            Answer::Socket(ControlResponse::Busy { reason, .. }) if reason.contains("reload in progress") => None,
            other => panic!("a reload of a good folder was not accepted: {other:?}"),
        })
        .collect();
    generations.sort();
    let last = 1 + generations.len() as u64;
    // A socket request is answered `busy` whenever any reload runs (it never waits), so while
    // the direct calls keep the manager busy every socket request may be busy.
    assert!(generations.len() >= 8, "every direct call is accepted: {generations:?}");
    assert_eq!(generations, (2..=last).collect::<Vec<_>>(), "generation numbers are consecutive and unique");
    assert_eq!(manager.current().unwrap().number(), last);
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "two reloads ran at once");
    let mut steps = seen.lock().unwrap().clone();
    steps.sort();
    let expected: Steps = (1..=last).map(|n| (n, Some(n - 1).filter(|&old| old > 0))).collect();
    assert_eq!(steps, expected, "each reload built on the generation published just before it");

    // A broken file: every one is refused naming it (or busy), and the last generation keeps serving.
    let broken = write_newest(&host.dir.join("greeter@9.9.9.so"), b"\x7fELF, but cut short");
    for answer in burst() {
        match answer {
            Answer::Direct(Err(error)) => {
                assert_eq!((error.file.as_path(), error.stage), (broken.as_path(), Stage::Inspect), "{error}");
            }
            Answer::Socket(ControlResponse::Refused { reason, .. }) => {
                assert!(reason.contains(&broken.display().to_string()), "{reason}");
            }
            Answer::Socket(ControlResponse::Busy { reason, .. }) => {
                assert!(reason.contains("reload in progress"), "{reason}");
            }
            other => panic!("a reload with a broken file was not refused: {other:?}"),
        }
    }
    assert_eq!(manager.current().unwrap().number(), last);
    assert_eq!(seen.lock().unwrap().len() as u64, last, "a refused reload reached the callbacks");
    callers.wait_for_calls(20);
    callers.finish();

    // Refusals use up no generation number.
    remove_library(&broken);
    assert_eq!(manager.reload().unwrap().generation, last + 1);
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------------------------
// The plugin folder itself.
// ---------------------------------------------------------------------------------------------

#[test]
fn an_emptied_plugin_folder_is_refused_at_scan() {
    let host = serving(&[]);
    for entry in std::fs::read_dir(&host.dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let refusal =
        Refusal { files: std::slice::from_ref(&host.dir), stage: Stage::Scan, says: &["no plugin libraries"] };
    refused_while_serving(&host, refusal, || {
        build_plugin(V1).install(&host.dir);
    });
}

#[test]
fn a_plugin_folder_that_disappears_is_refused_at_scan() {
    let host = serving(&[]);
    std::fs::remove_dir_all(&host.dir).unwrap();
    let refusal = Refusal {
        files: std::slice::from_ref(&host.dir),
        stage: Stage::Scan,
        says: &["cannot read the plugin folder"],
    };
    refused_while_serving(&host, refusal, || {
        std::fs::create_dir(&host.dir).unwrap();
        build_plugin(V2).install(&host.dir);
    });
    assert_eq!(greeter(&host.manager), ("v2".to_string(), 42));
}
