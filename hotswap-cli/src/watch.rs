//! `watch <pluginDir>… <outputDir>`: rebuild a plugin when its sources change, then ask the
//! running host to reload; one line per cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hotswap_runtime::{ControlRequest, default_socket_path};
use notify::{EventKind, RecursiveMode, Watcher};

use crate::options::{BuildOptions, CargoOutput};
use crate::output_dir::Installed;
use crate::package::{crate_dir, plugin_package};

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
    /// Quiet time after the last change before a build starts (default 300 ms).
    pub debounce: Duration,
    /// Build and reload everything once at start (default).
    pub initial_build: bool,
    /// Extra paths whose changes rebuild every watched plugin (e.g. a shared crate).
    pub also_watch: Vec<PathBuf>,
    /// How each plugin is built; cargo's output is captured (shown with a failed build only)
    /// by default, so that each cycle is one line.
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
            debounce: Duration::from_millis(300),
            initial_build: true,
            also_watch: Vec::new(),
            build: BuildOptions { cargo_output: CargoOutput::Capture, ..BuildOptions::default() },
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

    let (tx, rx) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(tx).context("starting the file watcher")?;
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

    let cycle = |changed: &BTreeMap<usize, BTreeSet<String>>| {
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
        run_cycle(options, &plugins, &indices, &what.join("; "), stop);
    };

    if options.initial_build {
        let all: BTreeMap<usize, BTreeSet<String>> =
            (0..plugins.len()).map(|i| (i, BTreeSet::from(["initial build".to_string()]))).collect();
        cycle(&all);
    }
    let debounce = options.debounce;
    while !stop.load(Ordering::SeqCst) {
        // Wait for a first change, then until the files have been quiet for `debounce`:
        // an editor's save, or a `git checkout`, is many events.
        let mut events = Vec::new();
        let mut deadline: Option<std::time::Instant> = None;
        while !stop.load(Ordering::SeqCst) {
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(std::time::Instant::now()),
                None => Duration::from_millis(200),
            };
            match rx.recv_timeout(wait) {
                Ok(Ok(event)) => {
                    // Only changes count: cargo reading the sources during a build must not
                    // start another one.
                    if matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_))
                        && !matches!(event.kind, EventKind::Modify(notify::event::ModifyKind::Metadata(_)))
                    {
                        events.extend(event.paths);
                        deadline = Some(std::time::Instant::now() + debounce);
                    }
                }
                Ok(Err(e)) => eprintln!("watch error: {e}"),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if deadline.is_some() {
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => bail!("the file watcher stopped"),
            }
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut changed: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
        for path in events {
            if is_noise(&path) || path.starts_with(&output_abs) {
                continue;
            }
            // A file that came and went (an editor's or sed's temporary file, renamed over
            // the source) is not a change of its own; a removed source file is.
            let source_like = matches!(path.extension().and_then(|e| e.to_str()), Some("rs" | "toml"));
            if !path.exists() && !source_like {
                continue;
            }
            if let Some(shared) = also.iter().find(|a| path.starts_with(a)) {
                let rel = path.strip_prefix(shared.parent().unwrap_or(shared)).unwrap_or(&path).display().to_string();
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
                if path.strip_prefix(&plugin.dir).is_ok_and(|rel| rel.starts_with("target")) {
                    continue;
                }
                let rel = path.strip_prefix(&plugin.dir).unwrap_or(&path).display().to_string();
                changed.entry(i).or_default().insert(rel);
            }
        }
        if !changed.is_empty() {
            cycle(&changed);
        }
    }
    println!("watch stopped");
    Ok(())
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

/// Builds the plugins at `indices` and asks for a reload; prints the cycle's line.
fn run_cycle(options: &WatchOptions, plugins: &[Watched], indices: &[usize], what: &str, stop: &AtomicBool) {
    let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let clock = time.get(11..19).unwrap_or(&time).to_string();
    let mut built = Vec::new();
    let mut build_secs = 0.0;
    for &i in indices {
        match crate::plugin_build::build(&plugins[i].dir, &options.output_dir, &options.build) {
            Ok(b) => {
                build_secs += b.elapsed.as_secs_f64();
                let unchanged = if matches!(b.installed, Installed::Unchanged { .. }) { " (unchanged)" } else { "" };
                built.push(format!("{} {}{unchanged}", b.name, b.version));
            }
            Err(e) => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                println!("[{clock}] {what} · build of {} FAILED; the host stays on its current code", plugins[i].name);
                println!("{e:#}");
                return;
            }
        }
    }
    let built_line = format!("built {} in {build_secs:.1}s", built.join(", "));
    if !options.reload {
        println!("[{clock}] {what} · {built_line}");
        return;
    }
    let socket = options.socket.clone().unwrap_or_else(default_socket_path);
    let outcome = crate::reload::ask(&socket, &ControlRequest::Reload, Duration::from_secs(60));
    println!("[{clock}] {what} · {built_line} · {}", crate::answer::one_line(&outcome, &options.output_dir));
}
