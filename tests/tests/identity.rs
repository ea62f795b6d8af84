//! The crate identity check (issue 22 §1): a plugin built against other sources, versions or
//! features of a crate the host also links is refused at stage `inspect`, naming the crate on
//! both sides, while the serving generation keeps answering.
//!
//! The host is this test binary: `tests/build.rs` records the crates it links, among them the
//! fixture crate `id_shared`, whose `Clock` (the host's extension) keeps its serial in a nested
//! `Meta`. Plugin `id_user` reads that serial. The refused builds are made in a copy of this
//! workspace (another checkout, as far as cargo can tell), edited as a user would after the
//! host was built: `Meta` gains a field in front of
//! `serial` (which leaves `TypeId::of::<Clock>()` as it was), or the plugin asks for a feature of
//! `libc` the host's build does not enable. Plugin to plugin: `id_importer` calls the export of
//! `id_exporter` with a type of `id_pair_shared`, a crate only the two plugins link; an exporter
//! built against other sources of it is refused at `dependencies`, naming both plugins.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use hotswap_runtime::{LoadError, PluginManager, Stage, args};
use hotswap_tests::{BuiltPlugin, build_plugin, build_plugin_with_env, workspace_root};
use id_shared::Clock;

const USER: &str = "tests/plugins/id_user";
const SERIAL: u64 = 7;

fn manager(dir: &Path) -> PluginManager {
    PluginManager::builder(dir).free_delay(Duration::ZERO).extension_newer(|| Clock::new(SERIAL)).build().unwrap()
}

fn serial(manager: &PluginManager) -> u64 {
    manager.invoke::<u64>("id_user", "serial", args![]).unwrap()
}

/// Builds `id_user` with `cargo xtask build` in a copy of this whole workspace (every member, so
/// that cargo unifies the same features as here) at `target/hotswap-test-identity`, after
/// `edit` changed the copy.
fn build_copy(label: &str, edit: impl FnOnce(&Path)) -> BuiltPlugin {
    build_copy_of(USER, label, edit)
}

/// Builds the plugin at `crate_dir` (relative to the workspace) with `cargo xtask build` in a
/// copy of this whole workspace (every member, so that cargo unifies the same features as
/// here) at `target/hotswap-test-identity`, after `edit` changed the copy. Builds are serialised; each starts from this workspace's sources
/// (a file is copied only when it differs, so unchanged crates are not compiled again).
fn build_copy_of(crate_dir: &str, label: &str, edit: impl FnOnce(&Path)) -> BuiltPlugin {
    static COPY: Mutex<()> = Mutex::new(());
    let _turn = COPY.lock().unwrap_or_else(|e| e.into_inner());
    let root = workspace_root();
    let copy = root.join("target").join("hotswap-test-identity");
    let listed = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(listed.status.success(), "git ls-files in {}", root.display());
    for file in listed.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let relative = Path::new(std::str::from_utf8(file).unwrap());
        let (from, to) = (root.join(relative), copy.join(relative));
        if from.is_symlink() || !from.is_file() {
            continue;
        }
        let content = std::fs::read(&from).unwrap();
        if std::fs::read(&to).ok().as_ref() != Some(&content) {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::write(&to, content).unwrap();
        }
    }
    // The template links (`hotswap-build/templates` points into `templates/`).
    for file in listed.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let relative = Path::new(std::str::from_utf8(file).unwrap());
        let (from, to) = (root.join(relative), copy.join(relative));
        if from.is_symlink() && !to.exists() {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(std::fs::read_link(&from).unwrap(), &to).unwrap();
        }
    }
    edit(&copy);
    let target = copy.join("target");
    let crate_dir = copy.join(crate_dir);
    build_plugin_with_env(crate_dir.to_str().unwrap(), label, &[("CARGO_TARGET_DIR", target.to_str().unwrap())])
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} has no `{from}`", file.display());
    std::fs::write(file, text.replace(from, to)).unwrap();
}

/// Serves the in-place build of `id_user`, installs `refused` beside it, and returns the
/// refusal of the reload, after checking that the first generation still answers.
fn refused_while_serving(refused: &BuiltPlugin) -> LoadError {
    let dir = tempfile::tempdir().unwrap();
    let good = build_plugin(USER);
    good.install(dir.path());
    let manager = manager(dir.path());
    assert_eq!(manager.reload().unwrap().generation, 1);
    assert_eq!(serial(&manager), SERIAL);
    let file = refused.install(dir.path());
    let error = manager.reload().unwrap_err();
    assert_eq!(error.stage, Stage::Inspect, "{error}");
    assert_eq!(error.plugin.as_deref(), Some("id_user"), "{error}");
    assert_eq!(error.file, file, "{error}");
    // The serving generation keeps answering, and nothing of the refused build is left mapped.
    assert_eq!(manager.current().unwrap().number(), 1);
    assert_eq!(serial(&manager), SERIAL);
    assert_eq!(manager.invoke::<u64>("id_user", "count", args![]).unwrap(), 1);
    assert!(hotswap_tests::mapped_under(dir.path()).iter().all(|m| !m.contains(&refused.version())));
    error
}

#[test]
fn a_plugin_built_against_the_hosts_shared_crate_loads_here_and_from_another_checkout() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(USER).install(dir.path());
    let manager = manager(dir.path());
    manager.reload().unwrap();
    assert_eq!(serial(&manager), SERIAL);
    // The same sources at another path: the record holds no absolute path, so no false refusal.
    let same = build_copy("unchanged-copy", |_| {});
    let other = tempfile::tempdir().unwrap();
    same.install(other.path());
    let manager = self::manager(other.path());
    manager.reload().unwrap();
    assert_eq!(serial(&manager), SERIAL);
}

#[test]
fn a_nested_type_that_changed_layout_in_a_shared_crate_is_refused_at_inspect_naming_the_crate_on_both_sides() {
    let changed = build_copy("nested-meta-changed", |root| {
        edit(
            &root.join("tests/plugins/id_shared/src/lib.rs"),
            "    pub serial: u64,\n}",
            "    pub tag: u64,\n    pub serial: u64,\n}",
        );
    });
    let error = refused_while_serving(&changed);
    let reason = &error.reason;
    assert!(reason.starts_with("crate identity mismatch: crate `id_shared`: "), "{reason}");
    assert!(reason.contains("the plugin was built with id_shared 0.1.0 (path, no features, sources "), "{reason}");
    assert!(reason.contains("the host with id_shared 0.1.0 (path, no features, sources "), "{reason}");
    assert!(reason.contains("files that differ: src/lib.rs."), "{reason}");
    assert!(!reason.contains("Cargo.toml"), "only the changed file is named: {reason}");
}

#[test]
fn a_registry_crate_built_with_other_features_is_refused_at_inspect() {
    let featured = build_copy("libc-extra-traits", |root| {
        edit(
            &root.join("tests/plugins/id_user/Cargo.toml"),
            "[build-dependencies]",
            "libc = { version = \"0.2\", features = [\"extra_traits\"] }\n\n[build-dependencies]",
        );
    });
    let error = refused_while_serving(&featured);
    let reason = &error.reason;
    assert!(reason.starts_with("crate identity mismatch: crate `libc`: "), "{reason}");
    assert!(reason.contains("the plugin was built with libc 0.2."), "{reason}");
    assert!(reason.contains("features default,extra_traits,std"), "{reason}");
    assert!(reason.contains("the host with libc 0.2.") && reason.contains("features default,std)"), "{reason}");
    assert!(!reason.contains("id_shared"), "the shared crate is the same: {reason}");
}

const EXPORTER: &str = "tests/plugins/id_exporter";
const IMPORTER: &str = "tests/plugins/id_importer";

/// Plugin to plugin: `id_importer` hands `id_exporter`'s exported `fn(&Reading) -> u64` a
/// `Reading` of crate `id_pair_shared`, which the host does not link (so the host's record
/// cannot catch it). An exporter built against a copy in which `Reading`'s nested `Meta` gained
/// a field in front of `serial` keeps the export's `TypeId`, and would read the serial from the
/// wrong offset: the reload is refused at `dependencies`, naming both plugins and the crate, and
/// the serving pair keeps answering.
#[test]
fn an_importer_and_an_exporter_built_against_other_sources_of_a_crate_they_share_are_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    build_plugin(EXPORTER).install(dir.path());
    build_plugin(IMPORTER).install(dir.path());
    let manager = PluginManager::builder(dir.path()).free_delay(Duration::ZERO).build().unwrap();
    assert_eq!(manager.reload().unwrap().generation, 1);
    assert_eq!(manager.invoke::<u64>("id_importer", "serial", args![41_u64]).unwrap(), 41);

    let changed = build_copy_of(EXPORTER, "pair-meta-changed", |root| {
        edit(
            &root.join("tests/plugins/id_pair_shared/src/lib.rs"),
            "    pub serial: u64,\n}",
            "    pub tag: u64,\n    pub serial: u64,\n}",
        );
    });
    changed.install_newest(dir.path());
    let error = manager.reload().unwrap_err();
    assert_eq!(error.stage, Stage::Dependencies, "{error}");
    assert_eq!(error.plugin.as_deref(), Some("id_importer"), "{error}");
    assert_eq!(
        error.file.file_name().unwrap().to_string_lossy(),
        format!("id_importer@{}.so", build_plugin(IMPORTER).version())
    );
    let reason = &error.reason;
    assert!(
        reason.starts_with(
            "crate identity mismatch between plugin `id_importer` and plugin `id_exporter`, which it imports: crate `id_pair_shared`: `id_importer` was built with id_pair_shared 0.1.0 (path, no features, sources "
        ),
        "{reason}"
    );
    assert!(reason.contains(", `id_exporter` with id_pair_shared 0.1.0 (path, no features, sources "), "{reason}");
    assert!(reason.contains("files that differ: src/lib.rs."), "{reason}");
    // The serving pair keeps answering, and nothing of the refused build is left mapped.
    assert_eq!(manager.current().unwrap().number(), 1);
    assert_eq!(manager.invoke::<u64>("id_importer", "serial", args![42_u64]).unwrap(), 42);
    assert!(hotswap_tests::mapped_under(dir.path()).iter().all(|m| !m.contains(&changed.version())));
}
