//! Plugin dependencies and the vault, with real plugin libraries built by `cargo xtask build`:
//! the order of every hook, import cycles, missing dependencies, exports of the wrong type, a
//! library under another plugin's name, the per-generation extension and the data bag.
//!
//! The fixtures `dep_zeta`, `dep_mid` (imports `dep_zeta`) and `dep_alpha` (imports both), one
//! crate `dep_chain` built with other features, append
//! `g<generation> <plugin>:<hook>` to `hooks.log` in the plugin folder from `on_load`, `on_init`
//! and `on_free`, so one file records the order of the hooks of all plugins, including the hooks
//! that run before the vault exists (`on_load`) or after the generation is gone (`on_free`).

use std::any::type_name;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotswap_runtime::{PluginManager, Stage, args};
use hotswap_tests::{BuiltPlugin, build_plugin, build_plugin_with_features, copy_atomically};

/// Crate `dep_chain`, whose features choose the plugin: [`ZETA`], [`MID`], [`ALPHA`], [`ZETA_V2`].
const CHAIN: &str = "tests/plugins/dep_chain";
const ZETA: &[&str] = &[];
/// A second build of plugin `dep_zeta`: the runtime may carry a byte-identical file over to
/// the next generation, so tests that need fresh instances swap in this build.
const ZETA_V2: &[&str] = &["v2"];
const MID: &[&str] = &["mid"];
const ALPHA: &[&str] = &["alpha"];
const EXPORTER: &str = "tests/plugins/dep_exporter";
const IMPORTER_OK: &str = "tests/plugins/dep_importer_ok";
const IMPORTER_BAD: &str = "tests/plugins/dep_importer_bad";
const GREETER_V1: &str = "tests/plugins/greeter_v1";

/// Builds plugin `dep_zeta`, `dep_mid` or `dep_alpha` of [`CHAIN`] with `features`.
fn chain(features: &[&str]) -> BuiltPlugin {
    build_plugin_with_features(CHAIN, features, cfg!(debug_assertions))
}

/// Dependencies first; deliberately not alphabetical.
const DEPENDENCY_ORDER: [&str; 3] = ["dep_zeta", "dep_mid", "dep_alpha"];

/// The extension the `dep_zeta`/`dep_mid`/`dep_alpha` fixtures expect: a counter that is fresh
/// in every generation, and the host's own log, shared by all generations. Only std types, so
/// the `TypeId`s agree on both sides.
type HostExtension = (AtomicU64, Arc<Mutex<Vec<String>>>);

/// A manager that frees a replaced generation as soon as nothing refers to it, so that
/// `on_free` runs inside `reload` (or when the last handle on the generation is dropped).
/// Reuse of unchanged plugins stays on (the default): tests that need fresh instances install
/// another build (`dep_zeta`'s `v2`).
fn manager(dir: &Path) -> PluginManager {
    PluginManager::builder(dir).free_delay(Duration::ZERO).build().unwrap()
}

/// A manager whose extension constructor counts its calls and shares `host_log` with every
/// generation.
fn manager_with_extension(dir: &Path, host_log: &Arc<Mutex<Vec<String>>>, calls: &Arc<AtomicUsize>) -> PluginManager {
    let (host_log, calls) = (Arc::clone(host_log), Arc::clone(calls));
    PluginManager::builder(dir)
        .free_delay(Duration::ZERO)
        .extension_newer(move || -> HostExtension {
            calls.fetch_add(1, Ordering::SeqCst);
            (AtomicU64::new(0), Arc::clone(&host_log))
        })
        .build()
        .unwrap()
}

/// The lines of `hooks.log` in `dir` (none if no hook wrote one).
fn hook_log(dir: &Path) -> Vec<String> {
    match std::fs::read_to_string(dir.join("hooks.log")) {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("reading hooks.log: {e}"),
    }
}

/// The log lines of `hook` of generation `generation` for `plugins`, in that order.
fn lines<'a>(generation: u64, plugins: impl IntoIterator<Item = &'a &'a str>, hook: &str) -> Vec<String> {
    plugins.into_iter().map(|plugin| format!("g{generation} {plugin}:{hook}")).collect()
}

/// Removes a plugin's library and manifest from `dir`.
fn uninstall(plugin: &BuiltPlugin, dir: &Path) {
    for file in [&plugin.library, &plugin.manifest] {
        std::fs::remove_file(dir.join(file.file_name().unwrap())).unwrap();
    }
}

/// Replaces one build of a plugin by another in `dir`.
fn swap(old: &BuiltPlugin, new: &BuiltPlugin, dir: &Path) {
    uninstall(old, dir);
    new.install(dir);
}

fn build_of(manager: &PluginManager, plugin: &str) -> String {
    manager.find_plugin(plugin).unwrap().invoke::<String>("build", args![]).unwrap()
}

fn installed(plugin: &BuiltPlugin, dir: &Path) -> std::path::PathBuf {
    dir.join(plugin.library.file_name().unwrap())
}

fn names(report: &hotswap_runtime::ReloadReport) -> Vec<&str> {
    report.plugins.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn every_hook_runs_dependencies_first_and_on_free_runs_dependents_first() {
    let mut alphabetical = DEPENDENCY_ORDER;
    alphabetical.sort();
    assert_ne!(alphabetical, DEPENDENCY_ORDER, "the fixture names must not sort into dependency order");
    let backward: Vec<&str> = DEPENDENCY_ORDER.iter().rev().copied().collect();

    let (zeta, zeta_v2) = (chain(ZETA), chain(ZETA_V2));
    let dir = tempfile::tempdir().unwrap();
    for features in [ALPHA, MID] {
        chain(features).install(dir.path());
    }
    zeta.install(dir.path());
    let host_log = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let manager = manager_with_extension(dir.path(), &host_log, &calls);

    let report = manager.load_plugins().unwrap();
    assert_eq!(names(&report), DEPENDENCY_ORDER, "the report lists plugins in load order");
    assert_eq!(manager.current().unwrap().plugin_names(), DEPENDENCY_ORDER);
    let mut expected = lines(1, &DEPENDENCY_ORDER, "on_load");
    expected.extend(lines(1, &DEPENDENCY_ORDER, "on_init"));
    assert_eq!(hook_log(dir.path()), expected, "generation 1: every on_load, then every on_init, dependencies first");
    let on_init: Vec<String> = DEPENDENCY_ORDER.iter().map(|p| format!("{p}:on_init")).collect();
    assert_eq!(*host_log.lock().unwrap(), on_init, "on_init order as seen through the shared extension");

    // invoke_each: dependencies first; invoke_each_backward: dependents first. Each plugin
    // answers its own name, so the values show which plugin really ran.
    let answers = |results: Vec<(String, Result<hotswap_runtime::Value, hotswap_runtime::InvokeError>)>| {
        results
            .into_iter()
            .map(|(plugin, result)| (plugin, result.expect("`name` succeeds").downcast::<String>().unwrap()))
            .collect::<Vec<_>>()
    };
    let pairs = |order: &[&str]| order.iter().map(|n| (n.to_string(), n.to_string())).collect::<Vec<_>>();
    assert_eq!(answers(manager.invoke_each("name", || args![])), pairs(&DEPENDENCY_ORDER));
    assert_eq!(answers(manager.invoke_each_backward("name", || args![])), pairs(&backward));

    // A new build of dep_zeta, which both others import: the reload builds generation 2 with
    // all three (dependencies first), then frees generation 1 (dependents first: a plugin is
    // freed before the plugins it imports).
    swap(&zeta, &zeta_v2, dir.path());
    let report = manager.reload().unwrap();
    assert_eq!(report.generation, 2);
    assert_eq!(names(&report), DEPENDENCY_ORDER);
    let notes: Vec<&str> = report.plugins.iter().map(|p| p.note.as_str()).collect();
    assert_eq!(notes, ["loaded"; 3], "dep_mid and dep_alpha are reloaded because an import changed");
    assert_eq!(build_of(&manager, "dep_zeta"), "v2");
    expected.extend(lines(2, &DEPENDENCY_ORDER, "on_load"));
    expected.extend(lines(2, &DEPENDENCY_ORDER, "on_init"));
    expected.extend(lines(1, &backward, "on_free"));
    assert_eq!(hook_log(dir.path()), expected, "after the reload");
    assert_eq!(*host_log.lock().unwrap(), [on_init.clone(), on_init.clone()].concat());

    // Nothing changed: generation 3 keeps generation 2's instances, so no hook runs, and
    // replacing generation 2 frees nothing.
    let report = manager.reload().unwrap();
    assert_eq!(report.generation, 3);
    assert_eq!(names(&report), DEPENDENCY_ORDER);
    let notes: Vec<&str> = report.plugins.iter().map(|p| p.note.as_str()).collect();
    assert_eq!(notes, ["unchanged"; 3]);
    assert_eq!(hook_log(dir.path()), expected, "after a reload that changed nothing");

    // Dropping the manager frees the serving instances (loaded in generation 2), dependents
    // first too.
    drop(manager);
    expected.extend(lines(2, &backward, "on_free"));
    assert_eq!(hook_log(dir.path()), expected, "after dropping the manager");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "one extension per generation");
}

#[test]
fn an_import_cycle_is_refused_naming_the_whole_cycle_and_the_serving_generation_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(GREETER_V1).install(dir.path());
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();
    let answer =
        |manager: &PluginManager| manager.find_plugin("greeter").unwrap().invoke::<String>("answer", args![]).unwrap();
    assert_eq!(answer(&manager), "v1");

    let cycle = hotswap_tests::build_import_cycle();
    for plugin in &cycle {
        plugin.install(dir.path());
    }
    let error = manager.reload().expect_err("an import cycle must be refused");
    assert_eq!(error.stage, Stage::Dependencies, "{error}");
    // The cycle may be reported from any of its plugins, but whole and closed.
    let names = ["dep_cyc_a", "dep_cyc_b", "dep_cyc_c"];
    let rotations: Vec<String> =
        (0..3).map(|start| (0..4).map(|i| names[(start + i) % 3]).collect::<Vec<_>>().join(" -> ")).collect();
    let text = error.to_string();
    assert!(rotations.iter().any(|cycle| text.contains(&format!("import cycle: {cycle}"))), "{text}");
    let named = error.plugin.as_deref().expect("the error names a plugin of the cycle");
    let index = names.iter().position(|n| *n == named).unwrap_or_else(|| panic!("{named} is not in the cycle: {text}"));
    assert_eq!(error.file, installed(&cycle[index], dir.path()));

    assert!(hook_log(dir.path()).is_empty(), "no on_load ran for a plugin of the cycle: {:?}", hook_log(dir.path()));
    assert_eq!(manager.current().unwrap().number(), 1);
    assert_eq!(manager.current().unwrap().plugin_names(), ["greeter"]);
    assert_eq!(answer(&manager), "v1");

    // A host starting on this folder publishes nothing.
    let fresh = self::manager(dir.path());
    assert_eq!(fresh.load_plugins().expect_err("still a cycle").stage, Stage::Dependencies);
    assert!(fresh.current().is_none());

    // Without the cycle the next reload goes through, as generation 2.
    for plugin in &cycle {
        uninstall(plugin, dir.path());
    }
    assert_eq!(manager.reload().unwrap().generation, 2);
    assert_eq!(answer(&manager), "v1");
}

#[test]
fn a_missing_dependency_is_refused_naming_the_importer_and_the_missing_plugin() {
    let (zeta, mid) = (chain(ZETA), chain(MID));
    let dir = tempfile::tempdir().unwrap();
    mid.install(dir.path());
    let manager = manager(dir.path());
    let error = manager.load_plugins().expect_err("dep_mid imports dep_zeta, which is missing");
    assert_eq!(error.stage, Stage::Dependencies, "{error}");
    assert_eq!(error.plugin.as_deref(), Some("dep_mid"), "{error}");
    assert_eq!(error.file, installed(&mid, dir.path()));
    assert!(error.reason.contains("`dep_zeta`"), "{error}");
    let text = error.to_string();
    assert!(text.contains("dep_mid") && text.contains("dep_zeta"), "{text}");
    assert!(manager.current().is_none(), "nothing is published");
    assert!(hook_log(dir.path()).is_empty(), "no on_load ran: {:?}", hook_log(dir.path()));

    // With the dependency present both load, dependency first.
    zeta.install(dir.path());
    assert_eq!(names(&manager.load_plugins().unwrap()), ["dep_zeta", "dep_mid"]);

    // The dependency disappears: the reload is refused and generation 1 keeps serving.
    uninstall(&zeta, dir.path());
    let error = manager.reload().expect_err("dep_zeta is gone again");
    assert_eq!((error.stage, error.plugin.as_deref()), (Stage::Dependencies, Some("dep_mid")), "{error}");
    assert!(error.reason.contains("`dep_zeta`"), "{error}");
    let current = manager.current().unwrap();
    assert_eq!((current.number(), current.plugin_names()), (1, vec!["dep_zeta", "dep_mid"]));
    assert_eq!(manager.find_plugin("dep_mid").unwrap().invoke::<u64>("generation", args![]).unwrap(), 1);
}

#[test]
fn an_import_of_the_wrong_type_is_refused_at_on_init_naming_both_plugins_and_both_types() {
    let (exporter, importer_ok, importer_bad) =
        (build_plugin(EXPORTER), build_plugin(IMPORTER_OK), build_plugin(IMPORTER_BAD));
    let dir = tempfile::tempdir().unwrap();
    exporter.install(dir.path());
    importer_ok.install(dir.path());
    let manager = manager(dir.path());
    assert_eq!(names(&manager.load_plugins().unwrap()), ["dep_exporter", "dep_importer"]);

    // The matching import works: the importer calls the exporter's function.
    {
        let importer = manager.find_plugin("dep_importer").unwrap();
        let exporter = manager.find_plugin("dep_exporter").unwrap();
        assert_eq!(importer.invoke::<String>("variant", args![]).unwrap(), "ok");
        for x in [0_u32, 5, 1_000_000] {
            let through_import = importer.invoke::<u32>("call", args![x]).unwrap();
            assert_eq!(through_import, exporter.invoke::<u32>("scramble", args![x]).unwrap());
            assert_ne!(through_import, x, "the imported function ran");
        }
    }

    // The importer now asks for the export as a `String`.
    uninstall(&importer_ok, dir.path());
    importer_bad.install(dir.path());
    let error = manager.reload().expect_err("an import of the wrong type must fail on_init");
    assert_eq!(error.stage, Stage::OnInit, "{error}");
    assert_eq!(error.plugin.as_deref(), Some("dep_importer"), "{error}");
    assert_eq!(error.file, installed(&importer_bad, dir.path()));
    for part in ["`dep_exporter`", type_name::<fn(u32) -> u32>(), type_name::<String>()] {
        assert!(error.reason.contains(part), "`{part}` missing from: {error}");
    }

    // Generation 1 keeps serving, with the working importer.
    assert_eq!(manager.current().unwrap().number(), 1);
    let importer = manager.find_plugin("dep_importer").unwrap();
    assert_eq!(importer.invoke::<String>("variant", args![]).unwrap(), "ok");
    assert_eq!(
        importer.invoke::<u32>("call", args![5_u32]).unwrap(),
        manager.find_plugin("dep_exporter").unwrap().invoke::<u32>("scramble", args![5_u32]).unwrap()
    );
}

#[test]
fn a_library_under_another_plugins_file_name_is_refused_at_inspect() {
    let zeta = chain(ZETA);
    let dir = tempfile::tempdir().unwrap();
    zeta.install(dir.path());
    // The same library a second time, under a file name that claims plugin `other`.
    let other = dir.path().join("other@1.0.0.so");
    copy_atomically(&zeta.library, &other);

    let manager = manager(dir.path());
    let error = manager.load_plugins().expect_err("a file name that lies about the plugin must be refused");
    assert_eq!(error.stage, Stage::Inspect, "{error}");
    assert_eq!(error.file, other);
    assert_eq!(error.plugin.as_deref(), Some("other"), "{error}");
    assert!(error.reason.contains("the library is plugin `dep_zeta`, but its file name says `other`"), "{error}");
    assert!(manager.current().is_none(), "nothing is published");
    assert!(hook_log(dir.path()).is_empty(), "no hook ran: {:?}", hook_log(dir.path()));

    // The same refusal while a generation serves: it keeps serving.
    std::fs::remove_file(&other).unwrap();
    manager.load_plugins().unwrap();
    copy_atomically(&zeta.library, &other);
    let error = manager.reload().expect_err("still refused");
    assert_eq!((error.stage, error.file.as_path()), (Stage::Inspect, other.as_path()), "{error}");
    let current = manager.current().unwrap();
    assert_eq!((current.number(), current.plugin_names()), (1, vec!["dep_zeta"]));
    assert_eq!(manager.find_plugin("dep_zeta").unwrap().invoke::<String>("name", args![]).unwrap(), "dep_zeta");
    assert_eq!(hook_log(dir.path()), ["g1 dep_zeta:on_load", "g1 dep_zeta:on_init"], "the refused reload ran no hook");
}

#[test]
fn every_generation_gets_a_fresh_extension_while_the_hosts_values_survive() {
    let (zeta, zeta_v2) = (chain(ZETA), chain(ZETA_V2));
    let dir = tempfile::tempdir().unwrap();
    zeta.install(dir.path());
    let host_log = Arc::new(Mutex::new(vec!["host: started".to_string()]));
    let calls = Arc::new(AtomicUsize::new(0));
    let manager = manager_with_extension(dir.path(), &host_log, &calls);
    manager.load_plugins().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one extension for generation 1");

    let old = manager.find_plugin("dep_zeta").unwrap();
    let bumps: Vec<u64> = (0..3).map(|_| old.invoke::<u64>("bump", args![]).unwrap()).collect();
    assert_eq!(bumps, [1, 2, 3]);
    let extension = |generation: &Arc<hotswap_runtime::Generation>| {
        generation.vault().extension::<HostExtension>().unwrap().0.load(Ordering::SeqCst)
    };
    assert_eq!(extension(old.generation()), 3, "the host sees what the plugin counted");
    host_log.lock().unwrap().push("host: before the reload".into());

    swap(&zeta, &zeta_v2, dir.path());
    manager.reload().unwrap();
    assert_eq!(build_of(&manager, "dep_zeta"), "v2");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one extension for generation 2");
    let new = manager.find_plugin("dep_zeta").unwrap();
    assert_eq!(new.generation().number(), 2);
    assert_eq!(extension(new.generation()), 0, "generation 2's counter starts fresh");
    assert_eq!(new.invoke::<u64>("bump", args![]).unwrap(), 1, "generation 2's counter starts fresh");
    // Generation 1 (kept alive by `old`) still has its own extension.
    assert_eq!(old.invoke::<u64>("bump", args![]).unwrap(), 4);
    assert_eq!(extension(old.generation()), 4);
    assert_eq!(extension(new.generation()), 1);

    // The host's log, shared by both extensions, kept everything.
    assert_eq!(
        *host_log.lock().unwrap(),
        ["host: started", "dep_zeta:on_init", "host: before the reload", "dep_zeta:on_init"]
    );
}

#[test]
fn the_data_bag_belongs_to_one_generation() {
    let (zeta, zeta_v2) = (chain(ZETA), chain(ZETA_V2));
    let dir = tempfile::tempdir().unwrap();
    zeta.install(dir.path());
    let manager = manager(dir.path());
    manager.load_plugins().unwrap();
    let get = |plugin: &hotswap_runtime::Plugin, key: &str| {
        plugin.invoke::<Option<String>>("get_data", args![key.to_string()]).unwrap()
    };

    // Generation 1: the plugin stores a value, the host stores one; each sees the other's.
    let old = manager.find_plugin("dep_zeta").unwrap();
    old.invoke::<()>("set_data", args!["colour".to_string(), "blue".to_string()]).unwrap();
    let old_vault = Arc::clone(old.generation().vault());
    assert_eq!(old_vault.generation(), 1);
    assert_eq!(old_vault.data::<String>("colour").as_deref().map(String::as_str), Some("blue"));
    old_vault.set_data("host.note", "from the host".to_string());
    assert_eq!(get(&old, "host.note").as_deref(), Some("from the host"));
    assert_eq!(get(&old, "colour").as_deref(), Some("blue"));

    swap(&zeta, &zeta_v2, dir.path());
    manager.reload().unwrap();
    assert_eq!(build_of(&manager, "dep_zeta"), "v2");
    let new = manager.find_plugin("dep_zeta").unwrap();
    let new_vault = Arc::clone(new.generation().vault());
    assert_eq!(new_vault.generation(), 2);
    assert!(new_vault.data::<String>("colour").is_none(), "generation 2 does not see generation 1's data");
    assert!(new_vault.data::<String>("host.note").is_none());
    assert_eq!(get(&new, "colour"), None);
    assert_eq!(get(&new, "host.note"), None);

    // Generation 2 writes its own value under the same key; generation 1 keeps its own.
    new.invoke::<()>("set_data", args!["colour".to_string(), "green".to_string()]).unwrap();
    assert_eq!(get(&new, "colour").as_deref(), Some("green"));
    assert_eq!(get(&old, "colour").as_deref(), Some("blue"), "a handle on generation 1 still sees its data");
    assert_eq!(old.generation().vault().data::<String>("colour").as_deref().map(String::as_str), Some("blue"));
    assert_eq!(get(&old, "host.note").as_deref(), Some("from the host"));
}
