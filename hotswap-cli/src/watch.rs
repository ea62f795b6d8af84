//! `watch <pluginDir>… <outputDir>`: rebuild a plugin when its sources change, then ask the
//! running host to reload; one line per cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use hotswap_runtime::{ControlRequest, default_socket_path};
use notify::{EventKind, RecursiveMode, Watcher};

use crate::plugin_build::{BuildArgs, Installed, build, plugin_package};
use crate::reload::OutcomeKind;

/// Arguments of `watch`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  watch demo/hello/plugin/foo demo/hello/plugin/bar demo/hello/bin\n  watch plugins/greeter bin --debug\n\n\
Each cycle prints one line: what changed, the build time and the reload result (accepted with\n\
the versions serving, or refused with the reason). A failed build or a refused reload leaves\n\
the host on the code it was running; the watch goes on. Ctrl-C stops it."
)]
pub struct WatchArgs {
    /// The plugin crate folders to watch (PLUGIN_DIR…), then the output folder the host loads
    /// from (OUTPUT_DIR, last).
    #[arg(required = true, num_args = 2.., value_name = "DIR")]
    pub paths: Vec<PathBuf>,
    /// Control socket of the host (same default as `reload`).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Only build; do not ask a host to reload.
    #[arg(long)]
    pub no_reload: bool,
    /// Quiet time after the last change before a build starts, in milliseconds.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    pub debounce_ms: u64,
    /// Do not build and reload everything once at start.
    #[arg(long)]
    pub no_initial_build: bool,
    /// Build with the dev profile instead of release.
    #[arg(long)]
    pub debug: bool,
    /// Extra paths whose changes rebuild every watched plugin (e.g. a shared crate).
    #[arg(long = "also-watch", value_name = "PATH")]
    pub also_watch: Vec<PathBuf>,
    /// Extra arguments for `cargo build`, after `--`.
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

struct Watched {
    dir: PathBuf,
    name: String,
}

/// Runs the watch until Ctrl-C.
pub fn run(args: WatchArgs) -> Result<()> {
    let (output_dir, plugin_dirs) = args.paths.split_last().expect("clap requires two paths");
    let mut plugins = Vec::new();
    for dir in plugin_dirs {
        let (package, _) = plugin_package(dir)?;
        let dir = package.manifest_path.parent().expect("a manifest has a folder").as_std_path().to_path_buf();
        plugins.push(Watched { dir, name: package.name.to_string() });
    }
    let output_abs = std::path::absolute(output_dir)?;
    let also: Vec<PathBuf> = args.also_watch.iter().map(std::path::absolute).collect::<Result<_, _>>()?;

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("installing the Ctrl-C handler")?;
    }

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
        if args.no_reload { ", building only" } else { "" }
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
        run_cycle(&args, &plugins, &indices, output_dir, &what.join("; "), &stop);
    };

    if !args.no_initial_build {
        let all: BTreeMap<usize, BTreeSet<String>> =
            (0..plugins.len()).map(|i| (i, BTreeSet::from(["initial build".to_string()]))).collect();
        cycle(&all);
    }
    let debounce = Duration::from_millis(args.debounce_ms);
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

fn run_cycle(
    args: &WatchArgs,
    plugins: &[Watched],
    indices: &[usize],
    output_dir: &Path,
    what: &str,
    stop: &AtomicBool,
) {
    let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let clock = time.get(11..19).unwrap_or(&time).to_string();
    let mut built = Vec::new();
    let mut build_secs = 0.0;
    for &i in indices {
        let build_args = BuildArgs {
            plugin_dir: plugins[i].dir.clone(),
            output_dir: output_dir.to_path_buf(),
            leave_temps: false,
            include: Vec::new(),
            exclude: Vec::new(),
            live_prefix: None,
            debug: args.debug,
            verbose: false,
            keep_debuginfo: false,
            reproducible: false,
            static_linking: false,
            print_stamp: false,
            cargo_args: args.cargo_args.clone(),
        };
        match build(&build_args, true) {
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
    if args.no_reload {
        println!("[{clock}] {what} · {built_line}");
        return;
    }
    let socket = args.socket.clone().unwrap_or_else(default_socket_path);
    let outcome = crate::reload::ask(&socket, &ControlRequest::Reload, Duration::from_secs(60));
    let result = match outcome.result {
        OutcomeKind::Accepted => {
            let serving: Vec<String> =
                outcome.plugins.iter().map(|p| format!("{} {} ({})", p.name, p.version, p.origin)).collect();
            format!(
                "reload accepted: generation {} in {:.1} ms, serving {}",
                outcome.generation.unwrap_or_default(),
                outcome.total_ms.unwrap_or_default(),
                serving.join(", ")
            )
        }
        OutcomeKind::Refused => {
            let reason = outcome.refusal.map(|r| r.reason).unwrap_or(outcome.message);
            format!("reload REFUSED: {reason}; the previous generation keeps serving")
        }
        OutcomeKind::Busy => format!("reload not done, the host is {}", outcome.message),
        OutcomeKind::NoHost => {
            format!("no host is listening on {} (start it; it will load {})", outcome.socket, output_dir.display())
        }
        _ => format!("reload request failed: {}", outcome.message),
    };
    println!("[{clock}] {what} · {built_line} · {result}");
}
