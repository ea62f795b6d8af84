//! Running a reload: the checks before it starts (re-entrance, linked plugins, another
//! reload), the reload's own thread bounded by the deadline, publishing its generation, and
//! handing the replaced one to the reaper.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::progress::Progress;
use super::{Generation, PluginManager, Probation, ReloadCallback, ReloadReport, load, lock};
use crate::error::{LoadError, LoadErrorKind, Stage};

impl PluginManager {
    pub(super) fn reload_inner(
        &self,
        extra: Option<ReloadCallback>,
        wait: bool,
        probation: Option<Probation>,
    ) -> Result<ReloadReport, LoadError> {
        let dir = self.plugin_dir();
        if let Some(own) = lock(&self.inner.threads).iter().find(|p| p.is_current_thread()) {
            let at = own.snapshot();
            let inside = match &at.plugin {
                Some(plugin) => format!("the `{}` hook of plugin `{plugin}`", at.stage),
                None => format!("stage `{}`", at.stage),
            };
            let error = LoadError::new(
                at.plugin.clone(),
                &dir,
                at.stage,
                format!("a reload was asked for from inside {inside} of a reload in progress, which would wait for itself; ask for it after the hook returns"),
            )
            .with_kind(LoadErrorKind::Reentrant);
            tracing::warn!("{error}");
            return Err(error);
        }
        if !self.inner.linked.is_empty() && self.inner.current.load().is_some() {
            // Linked plugins share one copy of their statics with every generation, so
            // running their lifecycle again would have the old generation's on_free undo the
            // new one's on_init. Refuse instead: the running generation keeps serving.
            let error = LoadError::new(
                None,
                "<plugins linked into the host>",
                Stage::Scan,
                "this host was built with --static-linking: its plugins are linked in, so no new code can be loaded; rebuild and restart the host (the running plugins keep serving)",
            )
            .with_kind(LoadErrorKind::StaticallyLinked);
            tracing::warn!("{error}");
            return Err(error);
        }
        let guard = if wait {
            lock(&self.inner.reload_lock)
        } else {
            match self.inner.reload_lock.try_lock() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    let at = self.reload_progress();
                    let (stage, plugin) = at.as_ref().map_or((Stage::Scan, None), |p| (p.stage, p.plugin.clone()));
                    let since = at.map_or_else(|| "a moment".to_string(), |p| p.to_string());
                    return Err(LoadError::new(plugin, &dir, stage, format!("reload in progress for {since}"))
                        .with_kind(LoadErrorKind::Busy));
                }
            }
        };
        if let Some((generation, previous)) = self.inner.probation.on_probation() {
            let error = LoadError::new(
                None,
                &dir,
                Stage::Scan,
                format!("generation {generation} is on probation (generation {previous} is kept ready to go back to): confirm it or roll back before reloading again"),
            )
            .with_kind(LoadErrorKind::OnProbation);
            tracing::warn!("{error}");
            return Err(error);
        }
        if probation.is_some() && self.inner.current.load().is_none() {
            let error = LoadError::new(
                None,
                &dir,
                Stage::Scan,
                "nothing serves yet: a first load cannot be on probation (there is no generation to go back to)",
            );
            tracing::warn!("{error}");
            return Err(error);
        }
        let (mut report, old) = self.run_reload(dir, extra)?;
        if let (Some(terms), Some(old)) = (probation, &old)
            && let Some(new) = self.current()
        {
            let started = self.begin_probation(&new, Arc::clone(old), terms);
            drop(guard);
            if let Err(e) = started {
                self.abandon_probation(new.number(), &e);
            }
            report.memory = self.inner.memory.after_reload();
            report.tasks = self.live_tasks();
            return Ok(report);
        }
        drop(guard);
        if let Some(old) = old {
            self.retire(old);
        }
        report.memory = self.inner.memory.after_reload();
        report.tasks = self.live_tasks();
        Ok(report)
    }

    /// Runs one reload on its own thread and publishes its generation; called with the
    /// reload lock held. Returns the report and the generation it replaced.
    #[allow(clippy::type_complexity)]
    fn run_reload(
        &self,
        dir: PathBuf,
        extra: Option<ReloadCallback>,
    ) -> Result<(ReloadReport, Option<Arc<Generation>>), LoadError> {
        let started = Instant::now();
        let first = self.inner.current.load().is_none();
        let number = self.inner.next_generation.load(Ordering::Relaxed);
        let progress = Arc::new(Progress::new());
        *lock(&self.inner.active) = Some(Arc::clone(&progress));
        lock(&self.inner.threads).push(Arc::clone(&progress));
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let inner = Arc::clone(&self.inner);
        let old = self.current();
        let thread_progress = Arc::clone(&progress);
        let thread_dir = dir.clone();
        let nice = self.inner.reload_nice;
        let work = move || {
            super::priority::lower(nice);
            thread_progress.enter();
            let build = load::Build { inner: &inner, dir: thread_dir, number, old, extra, progress: &thread_progress };
            let result = build.run();
            lock(&inner.threads).retain(|p| !Arc::ptr_eq(p, &thread_progress));
            // Let go of the manager before answering: a caller that drops the manager right
            // after the reload must be the one whose drop frees it (and runs `on_free`), not
            // this thread as it ends, perhaps after the process has exited.
            let reaper = Arc::clone(&inner.reaper);
            drop(inner);
            // Given up at the deadline: what it built is discarded, never published.
            if let Err(std::sync::mpsc::SendError(Ok((generation, _)))) = sender.send(result) {
                tracing::warn!(
                    generation = generation.number(),
                    "an abandoned reload finished late; its generation is discarded"
                );
                reaper.retire(generation, Duration::ZERO);
            }
        };
        let spawned = std::thread::Builder::new().name("hotswap-reload".into()).spawn(work);
        let received = match spawned {
            Ok(_) => receiver.recv_timeout(self.inner.reload_deadline),
            Err(e) => Err(std::sync::mpsc::RecvTimeoutError::Disconnected).inspect_err(|_| {
                tracing::error!("cannot start a reload thread: {e}");
            }),
        };
        let received = match received {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => receiver.try_recv().map_err(|_| ()),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                *lock(&self.inner.active) = None;
                lock(&self.inner.threads).retain(|p| !Arc::ptr_eq(p, &progress));
                let at = progress.snapshot();
                return Err(LoadError::new(
                    at.plugin,
                    &dir,
                    at.stage,
                    "the reload thread could not run or panicked in the host's own code",
                ));
            }
            Ok(result) => Ok(result),
        };
        *lock(&self.inner.active) = None;
        drop(receiver);
        let result = match received {
            Ok(result) => result,
            Err(()) => {
                self.inner.abandoned.fetch_add(1, Ordering::Relaxed);
                let at = progress.snapshot();
                let error = LoadError::new(
                    at.plugin.clone(),
                    &dir,
                    at.stage,
                    format!(
                        "the reload did not finish within its deadline of {:.1} s (PluginManagerBuilder::reload_deadline); stuck at {at}; its thread is abandoned and what it builds will be discarded",
                        self.inner.reload_deadline.as_secs_f64()
                    ),
                )
                .with_kind(LoadErrorKind::TimedOut);
                Err(error)
            }
        };
        match result {
            Ok((generation, mut report)) => {
                let _ = generation.freed_by.set(Arc::downgrade(&self.inner.reaper));
                let old = self.inner.current.swap(Some(generation));
                self.inner.published.store(number, Ordering::Release);
                self.inner.next_generation.store(number + 1, Ordering::Relaxed);
                self.inner.reloads.fetch_add(1, Ordering::Release);
                report.total_ms = started.elapsed().as_secs_f64() * 1000.0;
                log_report(&report);
                Ok((report, old))
            }
            Err(error) => {
                if first {
                    tracing::error!("first load refused, nothing is serving: {error}");
                } else {
                    tracing::error!("reload refused, the current generation keeps serving: {error}");
                }
                Err(error)
            }
        }
    }

    /// Hands a replaced generation to the reaper; with a zero free delay, waits for its
    /// `on_free` to have run, unless the reaper is stuck in one (see `reaper`).
    pub(super) fn retire(&self, old: Arc<Generation>) {
        let number = old.number();
        let ticket = self.inner.reaper.retire(old, self.inner.free_delay);
        if self.inner.free_delay.is_zero() {
            super::reaper::answer_without_stuck(&self.inner.reaper, ticket, number, self.inner.reload_deadline);
        }
    }
}

fn log_report(report: &ReloadReport) {
    use crate::error::escape_path;
    for p in &report.plugins {
        tracing::info!(generation = report.generation, plugin = %p.name, version = %p.version, file = %escape_path(&p.file), "{}", p.origin);
    }
    for f in &report.ignored {
        tracing::info!(generation = report.generation, plugin = %f.name.escape_default(), file = %escape_path(&f.file), "ignored: {}", f.note);
    }
    tracing::info!(
        generation = report.generation,
        plugins = %report.plugins.iter().map(|p| format!("{}@{}", p.name, p.version)).collect::<Vec<_>>().join(", "),
        total_ms = report.total_ms,
        "generation published"
    );
}
