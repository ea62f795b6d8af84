//! `watch <pluginDir>… <outputDir>`: rebuild a plugin when its sources change, then ask the
//! running host to reload; one line per cycle.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hotswap_runtime::{ControlRequest, default_socket_path};
use notify::{RecursiveMode, Watcher};

use crate::build_cache::BuildCache;
use crate::cargo::CargoError;
use crate::options::{BuildOptions, CargoOutput};
use crate::output_dir::Installed;
use crate::package::{crate_dir, plugin_package};
use crate::plugin_build::{BuildTimes, Prepared};
use crate::reload::OutcomeKind;
use crate::settle::{Save, Stamped};

/// What to watch and how to build and reload ([`run`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WatchOptions {
    /// The plugin crate folders to watch and rebuild.
    pub plugin_dirs: Vec<PathBuf>,
    /// The output folder the host loads from.
    pub output_dir: PathBuf,
    /// The host's control socket; `None` for the default (`reload --help`).
    pub socket: Option<PathBuf>,
    /// Ask the host to reload after each build (default); `false` only builds.
    pub reload: bool,
    /// Quiet time after the last change before a build starts (default 10 ms); a file still
    /// open for writing is waited for too (see [`crate::settle`]).
    pub debounce: Duration,
    /// Build and reload everything once at start (default).
    pub initial_build: bool,
    /// Extra paths whose changes rebuild every watched plugin (e.g. a shared crate).
    pub also_watch: Vec<PathBuf>,
    /// How each plugin is built; cargo's output is captured (shown with a failed build only)
    /// by default, so that each cycle is one line, and the debug info is split out as `build`
    /// does: done in this process, that costs the cycle less than a library carrying it costs
    /// the install and the host's reload (BENCHMARKS.md, edit loop); the manifest is not synced
    /// to disk ([`BuildOptions::no_sync`]).
    pub build: BuildOptions,
}

impl WatchOptions {
    /// Watch `plugin_dirs`, building into `output_dir`, with the defaults above.
    pub fn new(plugin_dirs: Vec<PathBuf>, output_dir: PathBuf) -> WatchOptions {
        WatchOptions {
            plugin_dirs,
            output_dir,
            socket: None,
            reload: true,
            debounce: Duration::from_millis(10),
            initial_build: true,
            also_watch: Vec::new(),
            build: BuildOptions { cargo_output: CargoOutput::Capture, no_sync: true, ..BuildOptions::default() },
        }
    }
}

struct Watched {
    dir: PathBuf,
    name: String,
}

/// Runs the watch until Ctrl-C (SIGINT) or SIGTERM, printing one line per cycle.
pub fn run(options: &WatchOptions) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("installing the Ctrl-C handler")?;
    }
    run_until(options, &stop)
}

/// Runs the watch until `stop` is set, printing one line per cycle.
pub fn run_until(options: &WatchOptions, stop: &AtomicBool) -> Result<()> {
    let output_dir = options.output_dir.as_path();
    let mut plugins = Vec::new();
    for dir in &options.plugin_dirs {
        let (package, _) = plugin_package(dir)?;
        plugins.push(Watched { dir: crate_dir(&package).to_path_buf(), name: package.name.to_string() });
    }
    let output_abs = std::path::absolute(output_dir)?;
    let also: Vec<PathBuf> = options.also_watch.iter().map(std::path::absolute).collect::<Result<_, _>>()?;

    let (tx, rx) = std::sync::mpsc::channel::<Stamped>();
    // Each event is stamped on arrival, so a change made during a build is timed from then.
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send((Instant::now(), event));
    })
    .context("starting the file watcher")?;
    for dir in plugins.iter().map(|p| &p.dir).chain(&also) {
        if !dir.exists() {
            bail!("{} does not exist", dir.display());
        }
        watcher.watch(dir, RecursiveMode::Recursive).with_context(|| format!("watching {}", dir.display()))?;
    }
    let names: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
    println!(
        "watching {} → {} (Ctrl-C stops){}",
        names.join(", "),
        output_dir.display(),
        if options.reload { "" } else { ", building only" }
    );

    let cache = RefCell::new(BuildCache::default());
    // Version stamps computed while a save settles, by plugin index (see `crate::settle`).
    let prepared = RefCell::new(HashMap::<usize, Prepared>::new());
    let cycle = |changed: &BTreeMap<usize, BTreeSet<String>>, save: Option<&Save>| {
        let indices: Vec<usize> = changed.keys().copied().collect();
        let what: Vec<String> = changed
            .iter()
            .map(|(i, files)| {
                let mut files: Vec<&str> = files.iter().map(String::as_str).collect();
                let more = files.len().saturating_sub(3);
                files.truncate(3);
                let tail = if more > 0 { format!(" +{more}") } else { String::new() };
                format!("{}: {}{tail}", plugins[*i].name, files.join(", "))
            })
            .collect();
        let mut prepared = std::mem::take(&mut *prepared.borrow_mut());
        if !save.is_some_and(|s| s.prepared) {
            prepared.clear();
        }
        let work: Vec<(usize, Option<Prepared>)> = indices.iter().map(|&i| (i, prepared.remove(&i))).collect();
        run_cycle(options, &plugins, work, &what.join("; "), save, stop, &mut cache.borrow_mut());
    };

    if options.initial_build {
        let all: BTreeMap<usize, BTreeSet<String>> =
            (0..plugins.len()).map(|i| (i, BTreeSet::from(["initial build".to_string()]))).collect();
        cycle(&all, None);
    }
    // Editor droppings, build output, and files of the output folder are never a change.
    let relevant = |path: &Path| {
        !is_noise(path)
            && !path.starts_with(&output_abs)
            && !plugins.iter().any(|p| path.strip_prefix(&p.dir).is_ok_and(|rel| rel.starts_with("target")))
    };
    // While a save settles: the stamps of the plugins it changed so far, for the build to use
    // if nothing changes after (the files are read now, as the build would read them).
    let prepare = |paths: &[PathBuf]| {
        let mut prepared = prepared.borrow_mut();
        prepared.clear();
        for i in changed_plugins(paths, &plugins, &also).into_keys() {
            let stamp = crate::plugin_build::prepare(
                &plugins[i].dir,
                &options.output_dir,
                &options.build,
                &mut cache.borrow_mut(),
            );
            // A failure is the build's to report.
            if let Ok(stamp) = stamp {
                prepared.insert(i, stamp);
            }
        }
    };
    loop {
        let save = match crate::settle::next_save(&rx, options.debounce, stop, relevant, prepare) {
            Ok(Some(save)) => save,
            Ok(None) => break,
            Err(_) => bail!("the file watcher stopped"),
        };
        let changed = changed_plugins(&save.paths, &plugins, &also);
        if !changed.is_empty() {
            cycle(&changed, Some(&save));
        }
    }
    println!("watch stopped");
    Ok(())
}

/// The plugins (by index) the changed `paths` belong to, with the paths relative to each.
fn changed_plugins(paths: &[PathBuf], plugins: &[Watched], also: &[PathBuf]) -> BTreeMap<usize, BTreeSet<String>> {
    let mut changed: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for path in paths {
        // A file that came and went (an editor's or sed's temporary file, renamed over
        // the source) is not a change of its own; a removed source file is.
        let source_like = matches!(path.extension().and_then(|e| e.to_str()), Some("rs" | "toml"));
        if !path.exists() && !source_like {
            continue;
        }
        if let Some(shared) = also.iter().find(|a| path.starts_with(a)) {
            let rel = path.strip_prefix(shared.parent().unwrap_or(shared)).unwrap_or(path).display().to_string();
            for i in 0..plugins.len() {
                changed.entry(i).or_default().insert(rel.clone());
            }
            continue;
        }
        // The deepest plugin folder holding the path (plugin crates may nest).
        if let Some((i, plugin)) = plugins
            .iter()
            .enumerate()
            .filter(|(_, p)| path.starts_with(&p.dir))
            .max_by_key(|(_, p)| p.dir.components().count())
        {
            let rel = path.strip_prefix(&plugin.dir).unwrap_or(path).display().to_string();
            changed.entry(i).or_default().insert(rel);
        }
    }
    changed
}

/// Editor droppings and build output, never a reason to rebuild.
fn is_noise(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with('.')
        || name.starts_with('#')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name == "4913"
        || path.components().any(|c| c.as_os_str() == "target" || c.as_os_str() == ".git")
}

/// Builds the plugins of `work` (by index, each with the stamp computed while the save
/// settled, if still valid) and asks for a reload; prints the cycle's line: what changed, the
/// build with its parts (cargo, and ours: stamp, split debug info, install), the host's
/// answer, and the time from the first change of `save` to the answer (and how much of it was
/// spent waiting for the save to settle, and stamping meanwhile).
fn run_cycle(
    options: &WatchOptions,
    plugins: &[Watched],
    work: Vec<(usize, Option<Prepared>)>,
    what: &str,
    save: Option<&Save>,
    stop: &AtomicBool,
    cache: &mut BuildCache,
) {
    let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let clock = time.get(11..19).unwrap_or(&time).to_string();
    // The stamps computed while the save settled: their time was part of the wait.
    let stamped = work.iter().filter_map(|(_, p)| p.as_ref().map(|p| p.took)).sum::<Duration>();
    let stamped = if work.iter().all(|(_, p)| p.is_none()) {
        String::new()
    } else {
        format!(", stamped meanwhile in {:.0} ms", stamped.as_secs_f64() * 1000.0)
    };
    let since = |save: &Save| {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "{:.0} ms after the change (waited {:.0} ms{})",
            ms(save.first.elapsed()),
            ms(save.settled - save.first),
            stamped
        )
    };
    let mut built = Vec::new();
    let mut times = BuildTimes::default();
    for (i, prepared) in work {
        let build =
            crate::plugin_build::build_prepared(&plugins[i].dir, &options.output_dir, &options.build, cache, prepared);
        match build {
            Ok(b) => {
                times.add(&b.times);
                let unchanged = if matches!(b.installed, Installed::Unchanged { .. }) { " (unchanged)" } else { "" };
                built.push(format!("{} {}{unchanged}", b.name, b.version));
            }
            Err(e) => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let after = save.map(|s| format!(" · {}", since(s))).unwrap_or_default();
                println!(
                    "[{clock}] {what} · build of {} FAILED: {}; the host stays on its current code{after}",
                    plugins[i].name,
                    why(&e)
                );
                println!("{e:#}");
                return;
            }
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let built_line = format!(
        "built {} in {:.0} ms (cargo {:.0} ms, ours {:.0} ms: stamp {:.0}, split {:.0}, install {:.0})",
        built.join(", "),
        ms(times.cargo + times.ours()),
        ms(times.cargo),
        ms(times.ours()),
        ms(times.stamp),
        ms(times.split),
        ms(times.install)
    );
    let after = save.map(|s| format!(" · {}", since(s))).unwrap_or_default();
    if !options.reload {
        println!("[{clock}] {what} · {built_line}{after}");
        return;
    }
    let socket = options.socket.clone().unwrap_or_else(default_socket_path);
    let outcome = crate::reload::ask(&socket, &ControlRequest::Reload, Duration::from_secs(60));
    let after = match save {
        Some(s) if outcome.result == OutcomeKind::Accepted => format!(" · serving {}", since(s)),
        Some(s) => format!(" · {}", since(s)),
        None => String::new(),
    };
    println!("[{clock}] {what} · {built_line} · {}{after}", crate::answer::one_line(&outcome, &options.output_dir));
}

/// Why a build failed, in a few words: the compiler's first error and where, when cargo
/// failed; else the error's first line.
fn why(error: &anyhow::Error) -> String {
    if let Some(CargoError::Failed { diagnostics, .. }) = error.downcast_ref::<CargoError>() {
        let first = diagnostics.iter().position(|l| l.starts_with("error"));
        if let Some(i) = first {
            let at = diagnostics[i + 1..]
                .iter()
                .take(3)
                .find_map(|l| l.trim_start().strip_prefix("--> "))
                .map(|at| format!(" at {at}"))
                .unwrap_or_default();
            return format!("{}{at}", diagnostics[i]);
        }
    }
    error.to_string().lines().next().unwrap_or_default().to_string()
}
