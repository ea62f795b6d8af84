//! Probation and rollback. A reload on probation publishes its generation but keeps the
//! generation it replaced loaded and ready (its plugins are not freed, no hook of theirs runs).
//! The new generation becomes permanent when someone confirms it, or on its own when the
//! period ends with every check passed (the host's health check, if any, at each interval,
//! and no more plugin panics than allowed); it goes back to the previous generation on a
//! rollback asked for, or by itself as soon as a check fails.
//!
//! Going back is a swap of the published generation, like a reload's last step: nothing is
//! built, copied or opened. The previous generation's plugins did their `on_load`/`on_init`
//! once and run no hook again; the generation rolled back from is retired as a replaced
//! generation is (its fresh plugins' `on_free` runs once, after the free delay). One
//! generation back is kept: a second rollback in a row is refused, naming why.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::{Generation, Inner, PluginManager, lock};
use crate::HookError;

/// A host's health check for generations on probation: called with the generation on
/// probation, at each interval and once at the end of the period, on the probation's own
/// thread. An error or a panic rolls the generation back.
pub type HealthCheck = Arc<dyn Fn(&Arc<Generation>) -> Result<(), HookError> + Send + Sync>;

/// How often the probation thread looks at the panic count.
const PANIC_POLL: Duration = Duration::from_millis(20);

/// The terms of one reload on probation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Probation {
    /// How long the new generation is on probation.
    pub period: Duration,
    /// How many panics of calls into the new generation's plugins
    /// ([`InvokeError::Panicked`](crate::InvokeError::Panicked)) are tolerated during the
    /// period; one more rolls it back. Default 0.
    pub max_panics: u64,
}

impl Probation {
    /// Probation for `period`, rolled back at the first panic.
    pub fn new(period: Duration) -> Self {
        Probation { period, max_panics: 0 }
    }

    /// Sets [`Probation::max_panics`].
    pub fn max_panics(mut self, count: u64) -> Self {
        self.max_panics = count;
        self
    }
}

/// A generation on probation, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ProbationStatus {
    /// The generation on probation (serving now).
    pub generation: u64,
    /// The generation kept loaded and ready to go back to.
    pub previous: u64,
    /// The whole period, in milliseconds.
    pub period_ms: u64,
    /// What is left of it, in milliseconds.
    pub remaining_ms: u64,
    /// Panics of calls into its plugins so far.
    pub panics: u64,
    /// Panics tolerated; one more rolls it back.
    pub max_panics: u64,
    /// Health checks passed so far (0 when the host has none).
    pub health_checks_passed: u64,
}

/// How a probation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProbationResult {
    /// The generation became permanent; the previous one was retired.
    Confirmed,
    /// The previous generation serves again; the one on probation was retired.
    RolledBack,
}

/// How the last probation ended: `status` reports it until the next one ends.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ProbationEnd {
    /// The generation that was on probation.
    pub generation: u64,
    /// The generation kept ready during the probation.
    pub previous: u64,
    /// Confirmed or rolled back.
    pub result: ProbationResult,
    /// `true` when the manager decided (a check failed, or the period ended with every check
    /// passed); `false` when asked (API, control socket, signal).
    pub automatic: bool,
    /// Why, as one sentence.
    pub reason: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// How long the swap took (for a rollback: from the request to the previous generation
    /// serving, the retired generation's `on_free` excluded unless the free delay is zero).
    pub took_ms: f64,
}

/// Why a confirm or a rollback was refused; the serving generation is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbationError {
    /// No generation is on probation.
    #[error("{0}")]
    NotOnProbation(String),
    /// A reload is running; nothing was done.
    #[error("a reload is in progress; nothing was done, ask again when it is over")]
    Busy,
    /// The previous generation cannot serve what the host holds now.
    #[error("cannot roll back to generation {to}: {reason}; generation {from} keeps serving")]
    Refused {
        /// The generation serving.
        from: u64,
        /// The generation kept ready.
        to: u64,
        /// Why.
        reason: String,
    },
}

/// The manager's probation settings and state.
pub(super) struct State {
    /// The host's health check and its interval.
    pub health: Option<(Duration, HealthCheck)>,
    running: Mutex<Option<Running>>,
    last_end: Mutex<Option<ProbationEnd>>,
}

/// A probation in progress.
struct Running {
    previous: Arc<Generation>,
    generation: u64,
    terms: Probation,
    started: Instant,
    /// Panics of the new generation's plugins counted before the probation began.
    panics_before: u64,
    checks_passed: Arc<AtomicU64>,
    /// Dropped when the probation ends: the probation thread then stops at once.
    _stop: Sender<()>,
}

impl State {
    /// No probation yet, with the builder's health check.
    pub fn new(health: Option<(Duration, HealthCheck)>) -> Self {
        State { health, running: Mutex::new(None), last_end: Mutex::new(None) }
    }

    /// Whether a generation is on probation, for refusing a reload: `(generation, previous)`.
    pub fn on_probation(&self) -> Option<(u64, u64)> {
        lock(&self.running).as_ref().map(|r| (r.generation, r.previous.number))
    }

    /// Takes the generation kept ready, at shutdown.
    pub fn take_previous(&self) -> Option<Arc<Generation>> {
        lock(&self.running).take().map(|r| r.previous)
    }
}

/// Panics counted so far in the plugins of `generation`.
fn panics_of(generation: &Generation) -> u64 {
    generation.plugins.iter().map(|p| p.panics.load(Ordering::Relaxed)).sum()
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Who ends a probation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Request,
    Manager,
}

impl PluginManager {
    /// Puts `generation`, just published in place of `previous`, on probation. Called by the
    /// reload with the reload lock held; an error means the probation thread could not start,
    /// and the reload must roll back (see [`PluginManager::abandon_probation`]) once it let go
    /// of the lock.
    pub(super) fn begin_probation(
        &self,
        generation: &Arc<Generation>,
        previous: Arc<Generation>,
        terms: Probation,
    ) -> std::io::Result<()> {
        let (stop, stopped) = std::sync::mpsc::channel();
        let checks_passed = Arc::new(AtomicU64::new(0));
        let running = Running {
            previous,
            generation: generation.number,
            terms,
            started: Instant::now(),
            panics_before: panics_of(generation),
            checks_passed: Arc::clone(&checks_passed),
            _stop: stop,
        };
        tracing::info!(
            generation = generation.number,
            previous = running.previous.number,
            period_s = terms.period.as_secs_f64(),
            max_panics = terms.max_panics,
            "generation on probation; the previous one is kept ready"
        );
        *lock(&self.inner.probation.running) = Some(running);
        let weak = Arc::downgrade(&self.inner);
        let number = generation.number;
        std::thread::Builder::new()
            .name("hotswap-probation".into())
            .spawn(move || watch(&weak, &stopped, number, terms, &checks_passed))
            .map(drop)
    }

    /// Without its thread nothing would end a probation: goes back at once.
    pub(super) fn abandon_probation(&self, generation: u64, error: &std::io::Error) {
        tracing::error!(generation, "cannot start the probation thread: {error}");
        let reason = format!("the probation thread could not start: {error}");
        let _ = self.end_probation(Some(generation), ProbationResult::RolledBack, By::Manager, reason, true);
    }

    /// The generation on probation now, if any. Never waits for a reload.
    pub fn probation(&self) -> Option<ProbationStatus> {
        let running = lock(&self.inner.probation.running);
        let running = running.as_ref()?;
        let panics = self.current().map_or(0, |g| panics_of(&g).saturating_sub(running.panics_before));
        Some(ProbationStatus {
            generation: running.generation,
            previous: running.previous.number,
            period_ms: running.terms.period.as_millis() as u64,
            remaining_ms: running.terms.period.saturating_sub(running.started.elapsed()).as_millis() as u64,
            panics,
            max_panics: running.terms.max_panics,
            health_checks_passed: running.checks_passed.load(Ordering::Relaxed),
        })
    }

    /// How the last probation ended (confirmed or rolled back, by whom, why), if one did.
    pub fn last_probation(&self) -> Option<ProbationEnd> {
        lock(&self.inner.probation.last_end).clone()
    }

    /// Makes the generation on probation permanent now and retires the previous one (its
    /// plugins' `on_free` runs once, after the free delay). Waits for a running reload.
    pub fn confirm(&self) -> Result<ProbationEnd, ProbationError> {
        self.end_probation(None, ProbationResult::Confirmed, By::Request, "confirmed on request".into(), true)
    }

    /// Goes back to the generation kept ready by the reload on probation: it serves again at
    /// once, running no hook again; the generation rolled back from is retired (its fresh
    /// plugins' `on_free` runs once). Refused when no generation is on probation (a second
    /// rollback in a row, say: only one generation back is kept), and when the previous
    /// generation lacks a live function a [`HotFn`](crate::HotFn) alive needs. Waits for a
    /// running reload.
    pub fn rollback(&self) -> Result<ProbationEnd, ProbationError> {
        self.end_probation(None, ProbationResult::RolledBack, By::Request, "rolled back on request".into(), true)
    }

    /// [`PluginManager::confirm`] without waiting for a running reload
    /// ([`ProbationError::Busy`] instead). For control sockets and signals.
    pub fn try_confirm(&self) -> Result<ProbationEnd, ProbationError> {
        self.end_probation(None, ProbationResult::Confirmed, By::Request, "confirmed on request".into(), false)
    }

    /// [`PluginManager::rollback`] without waiting for a running reload
    /// ([`ProbationError::Busy`] instead). For control sockets and signals.
    pub fn try_rollback(&self) -> Result<ProbationEnd, ProbationError> {
        self.end_probation(None, ProbationResult::RolledBack, By::Request, "rolled back on request".into(), false)
    }

    /// Ends the probation of `only` (any, when `None`).
    fn end_probation(
        &self,
        only: Option<u64>,
        result: ProbationResult,
        by: By,
        reason: String,
        wait: bool,
    ) -> Result<ProbationEnd, ProbationError> {
        let started = Instant::now();
        let guard = if wait {
            lock(&self.inner.reload_lock)
        } else {
            match self.inner.reload_lock.try_lock() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return Err(ProbationError::Busy),
            }
        };
        let mut running = lock(&self.inner.probation.running);
        let ended = match running.take() {
            Some(run) if only.is_none_or(|g| g == run.generation) => run,
            other => {
                *running = other;
                return Err(ProbationError::NotOnProbation(self.why_not_on_probation()));
            }
        };
        let (generation, previous) = (ended.generation, ended.previous.number);
        let retired = match result {
            ProbationResult::Confirmed => Arc::clone(&ended.previous),
            ProbationResult::RolledBack => {
                if let Err(reason) = contracts_hold(&self.inner, &ended.previous) {
                    *running = Some(ended);
                    return Err(ProbationError::Refused { from: generation, to: previous, reason });
                }
                let Some(newer) = self.inner.current.swap(Some(Arc::clone(&ended.previous))) else {
                    unreachable!("a generation on probation is published")
                };
                self.inner.published.store(previous, Ordering::Release);
                newer
            }
        };
        drop(ended);
        drop(running);
        let end = ProbationEnd {
            generation,
            previous,
            result,
            automatic: by == By::Manager,
            reason,
            at_unix_ms: unix_ms(SystemTime::now()),
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
        };
        *lock(&self.inner.probation.last_end) = Some(end.clone());
        drop(guard);
        match result {
            ProbationResult::Confirmed => {
                tracing::info!(
                    generation,
                    previous,
                    automatic = end.automatic,
                    "{}: generation {generation} is permanent, generation {previous} is retired",
                    end.reason
                );
            }
            ProbationResult::RolledBack => {
                tracing::warn!(
                    generation,
                    previous,
                    automatic = end.automatic,
                    took_ms = end.took_ms,
                    "{}: generation {previous} serves again, generation {generation} is retired",
                    end.reason
                );
            }
        }
        self.retire(retired);
        Ok(end)
    }

    /// Why nothing is on probation, for a refused confirm or rollback.
    fn why_not_on_probation(&self) -> String {
        let serving = self.generation_number();
        match self.last_probation() {
            Some(end) if end.result == ProbationResult::RolledBack && end.previous == serving => format!(
                "generation {serving} serves again after a rollback from generation {}, and only one generation back is kept: nothing older is loaded to go back to (reload the build you want instead)",
                end.generation
            ),
            Some(end) if end.generation == serving => format!(
                "generation {serving} is not on probation: it was made permanent ({}) and generation {} was retired",
                end.reason, end.previous
            ),
            _ if serving == 0 => "no generation is loaded".to_string(),
            _ => format!(
                "generation {serving} is not on probation: it was published by a reload without one, so no previous generation is kept (reload with a probation period to keep one ready)"
            ),
        }
    }
}

/// Whether `generation` can serve every [`HotFn`](crate::HotFn) the host holds now.
fn contracts_hold(inner: &Inner, generation: &Generation) -> Result<(), String> {
    for contract in super::hot::live_contracts(&inner.hot_contracts) {
        (contract.check)(&generation.vault, &contract.name).map_err(|e| {
            format!("the host holds a HotFn on live function `{}`, which it cannot serve: {e}", contract.name)
        })?;
    }
    Ok(())
}

/// The probation thread: checks at each poll, ends the probation either way, and stops as
/// soon as the probation ends otherwise (its sender is dropped).
fn watch(weak: &Weak<Inner>, stopped: &Receiver<()>, generation: u64, terms: Probation, passed: &AtomicU64) {
    let started = Instant::now();
    let deadline = started + terms.period;
    let interval = weak.upgrade().and_then(|inner| inner.probation.health.as_ref().map(|(i, _)| *i));
    let mut next_check = interval.map(|i| started + i);
    loop {
        let wait = deadline.saturating_duration_since(Instant::now()).min(PANIC_POLL);
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(inner) = weak.upgrade() else { return };
        let manager = PluginManager { inner };
        let now = Instant::now();
        let at_end = now >= deadline;
        let check_now = at_end || next_check.is_some_and(|at| now >= at);
        if check_now {
            next_check = interval.map(|i| now + i);
        }
        let (result, reason) = match manager.judge(generation, terms, check_now, passed) {
            Err(reason) => (ProbationResult::RolledBack, reason),
            Ok(()) if at_end => {
                let reason = match interval {
                    Some(_) => format!(
                        "the health check passed for the whole probation of {:.1} s",
                        terms.period.as_secs_f64()
                    ),
                    None => format!("no check failed during the probation of {:.1} s", terms.period.as_secs_f64()),
                };
                (ProbationResult::Confirmed, reason)
            }
            Ok(()) => continue,
        };
        if let Err(e) = manager.end_probation(Some(generation), result, By::Manager, reason, true) {
            tracing::debug!(generation, "probation already ended: {e}");
        }
        return;
    }
}

impl PluginManager {
    /// The checks of one poll: the panic count, then the health check when due.
    fn judge(&self, generation: u64, terms: Probation, check_now: bool, passed: &AtomicU64) -> Result<(), String> {
        let before = match lock(&self.inner.probation.running).as_ref() {
            Some(run) if run.generation == generation => run.panics_before,
            _ => return Ok(()),
        };
        let Some(serving) = self.current().filter(|g| g.number == generation) else { return Ok(()) };
        let panics = panics_of(&serving).saturating_sub(before);
        if panics > terms.max_panics {
            return Err(format!(
                "plugins of generation {generation} panicked {panics} times during its probation (at most {} allowed)",
                terms.max_panics
            ));
        }
        let Some((_, check)) = self.inner.probation.health.as_ref().filter(|_| check_now) else { return Ok(()) };
        let check = Arc::clone(check);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&serving)));
        match outcome {
            Ok(Ok(())) => {
                passed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) => Err(format!("the health check of generation {generation} failed: {e}")),
            Err(p) => Err(format!(
                "the health check of generation {generation} panicked: {}",
                crate::private::panic_message(p.as_ref())
            )),
        }
    }
}
