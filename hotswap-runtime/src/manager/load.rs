//! Building one generation, as a sequence of named phases: plan (scan the folder and decide
//! what to carry over) → open (copy, check and `dlopen` the new libraries) → declare (the
//! `reloadable`, `export` and `import` hooks) → order (dependencies) → on_load → vault →
//! on_init → callbacks. Runs on the reload's own thread; nothing is published here.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use super::folder;
use super::generation::Generation;
use super::plan::{self, OrderError, Serving};
use super::progress::Progress;
use super::report::{IgnoredFile, PluginOrigin, PluginReport, ReloadReport};
use super::{Inner, ReloadCallback};
use crate::LoadContext;
use crate::error::{LoadError, Stage};
use crate::library_file::FileIdentity;
use crate::live::{RegisteredFunc, RegisteredType};
use crate::loader::{LoadedPlugin, Staged};
use crate::vault::Vault;

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Stage timings of one build, overall and per plugin.
#[derive(Default)]
struct Timings {
    stages: Vec<(Stage, f64)>,
    per_plugin: HashMap<String, Vec<(Stage, f64)>>,
    lap_started: Option<Instant>,
}

impl Timings {
    fn lap(&mut self, stage: Stage) {
        let started = self.lap_started.replace(Instant::now()).unwrap_or_else(Instant::now);
        self.stages.push((stage, ms(started.elapsed())));
    }

    fn plugin(&mut self, name: &str, stage: Stage, since: Instant) {
        self.per_plugin.entry(name.to_string()).or_default().push((stage, ms(since.elapsed())));
    }
}

/// One reload's inputs.
pub(super) struct Build<'a> {
    pub inner: &'a Inner,
    pub dir: PathBuf,
    pub number: u64,
    pub old: Option<Arc<Generation>>,
    pub extra: Option<ReloadCallback>,
    pub progress: &'a Progress,
}

/// What the plan phase decided.
struct Planned {
    plugins: BTreeMap<String, (Arc<LoadedPlugin>, PluginOrigin)>,
    ignored: Vec<IgnoredFile>,
}

impl Build<'_> {
    pub fn run(self) -> Result<(Arc<Generation>, ReloadReport), LoadError> {
        let mut timings = Timings { lap_started: Some(Instant::now()), ..Timings::default() };
        let Planned { mut plugins, ignored } =
            if self.inner.linked.is_empty() { self.plan_and_open(&mut timings)? } else { self.linked()? };
        timings.lap(Stage::Open);
        self.declare(&mut plugins, &mut timings)?;
        timings.lap(Stage::Import);
        let ordered = self.order(plugins)?;
        timings.lap(Stage::Dependencies);

        // Build the generation now so that a failure below drops it, and with it runs
        // `on_free` (in reverse order) for every plugin whose `on_load` succeeded.
        let origins: Vec<PluginOrigin> = ordered.iter().map(|(_, o)| *o).collect();
        let mut generation = Generation {
            number: self.number,
            index: ordered.iter().enumerate().map(|(i, (p, _))| (p.name.clone(), i)).collect(),
            plugins: ordered.into_iter().map(|(p, _)| p).collect(),
            vault: std::mem::ManuallyDrop::new(Arc::new(Vault::new(
                self.number,
                None,
                HashMap::new(),
                HashMap::new(),
                HashMap::new(),
                Vec::new(),
            ))),
            loaded_at: SystemTime::now(),
            freed_by: std::sync::OnceLock::new(),
        };
        self.on_load(&generation, &origins, &mut timings)?;
        timings.lap(Stage::OnLoad);
        *generation.vault = Arc::new(self.vault(&generation)?);
        self.check_hot_contracts(&generation.vault)?;
        timings.lap(Stage::VaultSetup);
        self.on_init(&generation, &origins, &mut timings)?;
        timings.lap(Stage::OnInit);
        let generation = Arc::new(generation);
        self.callbacks(&generation)?;
        timings.lap(Stage::Callback);

        let report = ReloadReport {
            generation: self.number,
            plugins: generation
                .plugins
                .iter()
                .zip(&origins)
                .map(|(p, origin)| PluginReport {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    file: p.file.clone(),
                    sha256: p.sha256.clone(),
                    origin: *origin,
                    note: origin.note().to_string(),
                    stage_ms: timings.per_plugin.remove(&p.name).unwrap_or_default(),
                    still_mapped: self.inner.graveyard.still_mapped(Some(&p.name)),
                })
                .collect(),
            ignored,
            stage_ms: timings.stages,
            total_ms: 0.0,
            memory: None,
            tasks: None,
        };
        Ok((generation, report))
    }

    /// Plugins linked into the host: loaded once, never from files.
    fn linked(&self) -> Result<Planned, LoadError> {
        let mut plugins = BTreeMap::new();
        for descriptor in &self.inner.linked {
            let plugin = LoadedPlugin::linked(descriptor, self.number, &self.inner.graveyard)?;
            plugins.insert(plugin.name.clone(), (Arc::new(plugin), PluginOrigin::Linked));
        }
        Ok(Planned { plugins, ignored: Vec::new() })
    }

    fn serving(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.old.as_ref().and_then(|g| g.loaded(name))
    }

    /// Plan: scan the folder, check modes, decide per plugin whether to carry the serving
    /// instance over (a file whose identity or sha256 is unchanged) or load its file. Open:
    /// copy, check and `dlopen` every plugin to load.
    fn plan_and_open(&self, timings: &mut Timings) -> Result<Planned, LoadError> {
        self.progress.at(Stage::Scan, None);
        let scanned = folder::scan(&self.dir, self.inner.whitelist.as_ref())?;
        if self.inner.strict_modes {
            folder::check_modes(&self.dir, None)?;
            for (name, file) in &scanned.files {
                folder::check_modes(file, Some(name))?;
            }
        }
        timings.lap(Stage::Scan);

        let mut found: BTreeMap<String, Option<Serving>> = BTreeMap::new();
        let mut contents: HashMap<String, Staged> = HashMap::new();
        let mut identities: HashMap<String, Option<FileIdentity>> = HashMap::new();
        for (name, file) in &scanned.files {
            self.progress.at(Stage::Copy, Some(name));
            let identity = FileIdentity::of(file);
            identities.insert(name.clone(), identity);
            let serving = self.serving(name).map(|p| (p.reloadable, p.identity, p.sha256.clone(), p.imports.clone()));
            let facts = match serving {
                None => None,
                Some((false, _, _, imports)) => Some(Serving { reloadable: false, same_file: false, imports }),
                // The same file as the serving one (device, inode, size, times): not read again.
                Some((true, Some(kept), _, imports)) if identity == Some(kept) && self.inner.reuse_unchanged => {
                    Some(Serving { reloadable: true, same_file: true, imports })
                }
                Some((true, _, sha256, imports)) => {
                    // Read, hashed and copied in one pass: a file whose identity changed
                    // usually holds new code, which is then loaded from this copy.
                    let read = self.stage(name, file)?;
                    let same_file = read.sha256 == sha256;
                    contents.insert(name.clone(), read);
                    Some(Serving { reloadable: true, same_file, imports })
                }
            };
            found.insert(name.clone(), facts);
        }
        let origins = plan::plan_origins(&found, self.inner.reuse_unchanged);

        let mut plugins = BTreeMap::new();
        for (name, origin) in origins {
            if origin != PluginOrigin::Loaded {
                let kept = self.serving(&name).expect("only serving plugins are carried over");
                plugins.insert(name, (Arc::clone(kept), origin));
                continue;
            }
            let file = &scanned.files[&name];
            if self.inner.require_manifest && std::fs::symlink_metadata(crate::Manifest::path_for(file)).is_err() {
                return Err(LoadError::new(
                    Some(name.clone()),
                    file,
                    Stage::Copy,
                    "no build manifest beside the library, and the manager requires one (PluginManagerBuilder::require_manifest)",
                ));
            }
            let t = Instant::now();
            let staged = match contents.remove(&name) {
                Some(read) => read,
                None => self.stage(&name, file)?,
            };
            self.progress.at(Stage::Open, Some(&name));
            let copy = staged.path().with_extension(std::env::consts::DLL_EXTENSION);
            let mut plugin = LoadedPlugin::open(file, &name, staged, &copy, self.number, &self.inner.graveyard)?;
            plugin.identity = identities.remove(&name).flatten();
            timings.plugin(&name, Stage::Open, t);
            plugins.insert(name, (Arc::new(plugin), PluginOrigin::Loaded));
        }
        Ok(Planned { plugins, ignored: scanned.ignored })
    }

    /// Reads, hashes and copies `file` in one pass, to a fresh name in the work folder.
    fn stage(&self, name: &str, file: &Path) -> Result<Staged, LoadError> {
        let partial = self.inner.work.path().join(format!(
            "g{}-{}-{name}.partial",
            self.number,
            self.inner.copies.fetch_add(1, Ordering::Relaxed) + 1,
        ));
        Staged::copy(name, file, self.inner.max_library_size, partial)
    }

    /// The `reloadable`, `export` and `import` hooks of every fresh plugin.
    fn declare(
        &self,
        plugins: &mut BTreeMap<String, (Arc<LoadedPlugin>, PluginOrigin)>,
        timings: &mut Timings,
    ) -> Result<(), LoadError> {
        for (plugin, origin) in plugins.values_mut() {
            if !origin.is_fresh() {
                continue;
            }
            let p = Arc::get_mut(plugin).expect("a fresh plugin has one owner");
            if p.forward_logs {
                // Before the plugin's first hook, so every hook's events reach the host.
                (p.hooks.logs)(crate::host_logs::sink(self.number));
            }
            let t = Instant::now();
            self.progress.at(Stage::Reloadable, Some(&p.name));
            p.reloadable = (p.hooks.reloadable)().map_err(|f| p.hook_error(Stage::Reloadable, f))?;
            timings.plugin(&p.name, Stage::Reloadable, t);
            let t = Instant::now();
            self.progress.at(Stage::Export, Some(&p.name));
            p.export = (p.hooks.export)().map_err(|f| p.hook_error(Stage::Export, f))?.map(Arc::new);
            timings.plugin(&p.name, Stage::Export, t);
            let t = Instant::now();
            self.progress.at(Stage::Import, Some(&p.name));
            p.imports = (p.hooks.import)().map_err(|f| p.hook_error(Stage::Import, f))?;
            timings.plugin(&p.name, Stage::Import, t);
        }
        Ok(())
    }

    /// Dependencies first; a kept non-reloadable plugin may not import a reloadable one.
    fn order(
        &self,
        mut plugins: BTreeMap<String, (Arc<LoadedPlugin>, PluginOrigin)>,
    ) -> Result<Vec<(Arc<LoadedPlugin>, PluginOrigin)>, LoadError> {
        self.progress.at(Stage::Dependencies, None);
        let imports: BTreeMap<String, Vec<String>> =
            plugins.iter().map(|(name, (p, _))| (name.clone(), p.imports.clone())).collect();
        let order = plan::dependency_order(&imports).map_err(|error| {
            let (plugin, reason) = match error {
                OrderError::Missing { plugin, import } => {
                    let reason = format!("imports plugin `{import}`, which is not in {}", self.dir.display());
                    (plugin, reason)
                }
                OrderError::Cycle(cycle) => (cycle[0].clone(), format!("import cycle: {}", cycle.join(" -> "))),
            };
            let file = plugins[&plugin].0.file.clone();
            LoadError::new(Some(plugin), file, Stage::Dependencies, reason)
        })?;
        for (plugin, _) in plugins.values().filter(|(p, _)| !p.reloadable) {
            if let Some(import) = plugin.imports.iter().find(|i| plugins[*i].0.reloadable) {
                return Err(LoadError::new(
                    Some(plugin.name.clone()),
                    &plugin.file,
                    Stage::Dependencies,
                    format!(
                        "plugin `{}` is not reloadable but imports `{import}`, which is: a kept plugin would go on using an old generation's export; make `{import}` non-reloadable too, or `{}` reloadable",
                        plugin.name, plugin.name
                    ),
                ));
            }
        }
        // An importer and the plugins it imports: the crates both link must agree, as with the
        // host, since an export's type can come from a crate the host does not link.
        for (importer, _) in plugins.values() {
            for exporter in &importer.imports {
                let exporter = &plugins[exporter].0;
                if let (Some(mine), Some(theirs)) = (&importer.crates, &exporter.crates) {
                    crate::identity::check_import(&importer.name, mine, &exporter.name, theirs).map_err(|e| {
                        LoadError::new(Some(importer.name.clone()), &importer.file, Stage::Dependencies, e.to_string())
                            .caused_by(e)
                    })?;
                }
            }
        }
        Ok(order.iter().map(|name| plugins.remove(name).expect("ordered names come from the map")).collect())
    }

    fn on_load(
        &self,
        generation: &Generation,
        origins: &[PluginOrigin],
        timings: &mut Timings,
    ) -> Result<(), LoadError> {
        for (plugin, _) in generation.plugins.iter().zip(origins).filter(|(_, o)| o.is_fresh()) {
            let ctx = LoadContext {
                plugin: plugin.name.clone(),
                version: plugin.version.clone(),
                generation: self.number,
                file: plugin.file.clone(),
            };
            let t = Instant::now();
            self.progress.at(Stage::OnLoad, Some(&plugin.name));
            (plugin.hooks.on_load)(&ctx).map_err(|f| plugin.hook_error(Stage::OnLoad, f))?;
            plugin.on_load_done.store(true, Ordering::Release);
            timings.plugin(&plugin.name, Stage::OnLoad, t);
        }
        Ok(())
    }

    /// The extension, every export and every live item.
    fn vault(&self, generation: &Generation) -> Result<Vault, LoadError> {
        self.progress.at(Stage::VaultSetup, None);
        let extension = match &self.inner.extension_newer {
            Some(newer) => {
                let newer = Arc::clone(newer);
                let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || newer()));
                Some(made.map_err(|p| {
                    LoadError::new(
                        None,
                        &self.dir,
                        Stage::VaultSetup,
                        format!("the extension constructor panicked: {}", crate::private::panic_message(p.as_ref())),
                    )
                })?)
            }
            None => None,
        };
        let exports = generation
            .plugins
            .iter()
            .filter_map(|p| p.export.as_ref().map(|e| (p.name.clone(), Arc::clone(e))))
            .collect();
        let (live_funcs, live_types) = collect_live(&generation.plugins, self.progress)?;
        let libraries = generation.plugins.iter().map(|p| p.mapping.clone() as Arc<dyn Any + Send + Sync>).collect();
        Ok(Vault::new(self.number, extension, exports, live_funcs, live_types, libraries))
    }

    /// Every [`HotFn`](crate::HotFn) the host holds must find its function, with its
    /// signature, in the new generation.
    fn check_hot_contracts(&self, vault: &Vault) -> Result<(), LoadError> {
        for contract in super::hot::live_contracts(&self.inner.hot_contracts) {
            if let Err(e) = (contract.check)(vault, &contract.name) {
                return Err(LoadError::new(
                    None,
                    &self.dir,
                    Stage::VaultSetup,
                    format!(
                        "the host holds a HotFn on live function `{}`, which this generation cannot serve: {e}",
                        contract.name
                    ),
                ));
            }
        }
        Ok(())
    }

    fn on_init(
        &self,
        generation: &Generation,
        origins: &[PluginOrigin],
        timings: &mut Timings,
    ) -> Result<(), LoadError> {
        for (plugin, _) in generation.plugins.iter().zip(origins).filter(|(_, o)| o.is_fresh()) {
            let t = Instant::now();
            self.progress.at(Stage::OnInit, Some(&plugin.name));
            (plugin.hooks.on_init)(&generation.vault).map_err(|f| plugin.hook_error(Stage::OnInit, f))?;
            timings.plugin(&plugin.name, Stage::OnInit, t);
        }
        Ok(())
    }

    /// The host's reload callbacks; an error or a panic fails the reload.
    fn callbacks(&self, generation: &Arc<Generation>) -> Result<(), LoadError> {
        self.progress.at(Stage::Callback, None);
        let added = self.inner.added_callbacks.snapshot();
        for callback in self.inner.callbacks.iter().chain(&added).chain(self.extra.as_ref()) {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                callback(generation, self.old.as_ref()).map_err(|e| e.to_string())
            }));
            let reason = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => format!("a reload callback returned an error: {e}"),
                Err(p) => format!("a reload callback panicked: {}", crate::private::panic_message(p.as_ref())),
            };
            return Err(LoadError::new(None, &self.dir, Stage::Callback, reason));
        }
        Ok(())
    }
}

/// A generation's live functions and types, by name.
type LiveTables = (HashMap<String, RegisteredFunc>, HashMap<String, RegisteredType>);

/// Gathers every plugin's live functions and types; a name registered by two plugins is an
/// error naming both.
fn collect_live(plugins: &[Arc<LoadedPlugin>], progress: &Progress) -> Result<LiveTables, LoadError> {
    let mut funcs: HashMap<String, RegisteredFunc> = HashMap::new();
    let mut types: HashMap<String, RegisteredType> = HashMap::new();
    for plugin in plugins {
        progress.at(Stage::VaultSetup, Some(&plugin.name));
        let registry = (plugin.hooks.live_items)(crate::private::rethrow_in_host)
            .map_err(|f| plugin.hook_error(Stage::VaultSetup, f))?;
        let clash = |kind: &str, name: &str, other: &str| {
            LoadError::new(
                Some(plugin.name.clone()),
                &plugin.file,
                Stage::VaultSetup,
                format!("live {kind} `{name}` is defined by both plugin `{other}` and plugin `{}`", plugin.name),
            )
        };
        for entry in registry.funcs {
            if let Some(other) = funcs.get(entry.name) {
                return Err(clash("function", entry.name, &other.plugin));
            }
            let library: Arc<dyn Any + Send + Sync> = plugin.mapping.clone();
            funcs.insert(entry.name.to_string(), RegisteredFunc { entry, plugin: plugin.name.clone(), library });
        }
        for entry in registry.types {
            if let Some(other) = types.get(entry.name) {
                return Err(clash("type", entry.name, &other.plugin));
            }
            let library: Arc<dyn Any + Send + Sync> = plugin.mapping.clone();
            types.insert(
                entry.name.to_string(),
                RegisteredType { entry, plugin: plugin.name.clone(), version: plugin.version.clone(), library },
            );
        }
    }
    Ok((funcs, types))
}
