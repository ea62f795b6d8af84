//! Frees replaced generations after the free delay, on one thread of its own.
//!
//! `on_free` is plugin code: it must never run under the reload lock nor on a thread that
//! serves the control socket or signals, and a plugin whose `on_free` never returns must not
//! multiply threads. So one reaper thread per manager frees generations in the order they
//! fall due. At most [`MAX_WAITING`] generations wait: when a reload retires one more, the
//! oldest waiting one falls due at once. When the reaper is stuck in a plugin's `on_free`, a
//! generation that would overflow the queue is leaked (it stays mapped and gets no
//! `on_free`) with a warning, so memory stays bounded by the queue and no thread is added.
//!
//! A reload with a zero free delay waits for the generation it replaced to be freed, but only
//! while the reaper makes progress: once the reaper has spent [`FREE_PATIENCE`] in one
//! generation (a plugin's `on_free` that does not return), the reload answers without it, with
//! one warning for that stuck `on_free`, and later reloads do not wait behind it at all
//! ([`Reaper::wait_unless_stuck`]).
//!
//! The same thread closes libraries released on other threads (see `crate::retention`), so a
//! caller dropping the last reference to a replaced library never waits for its `dlclose`.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::generation::{Generation, Remains};
use crate::retention::{CloseLater, Graveyard};

/// How many retired generations may wait for their free delay at once.
pub(crate) const MAX_WAITING: usize = 16;

/// How long a reload with a zero free delay waits for the reaper to get out of one
/// generation's `on_free` before it answers without it.
pub(crate) const FREE_PATIENCE: Duration = Duration::from_secs(1);

/// What [`Reaper::wait_unless_stuck`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Freed {
    /// The generation was freed.
    Yes,
    /// The reaper has been freeing `what` for longer than the patience, and the generation
    /// waits behind it. `first`: this stuck `on_free` was not reported before.
    BehindStuck { what: String, first: bool },
    /// The limit passed with the reaper not stuck (it was not running, say).
    TimedOut,
}

struct Waiting {
    due: Instant,
    ticket: u64,
    /// Dropped to free it; read only to name it.
    generation: Arc<Generation>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// Tickets handed out so far.
    issued: u64,
    /// Every ticket up to this one has been freed (or leaked).
    done: u64,
    /// Since when the reaper has been freeing what it is freeing now (a waiting generation, or
    /// remains handed over), if it is.
    busy_since: Option<Instant>,
    /// What the reaper is freeing now, in words, if it is.
    busy_with: Option<String>,
    /// The `busy_since` of the stuck `on_free` already reported by a warning.
    stuck_reported: Option<Instant>,
    /// The reaper thread runs.
    started: bool,
    /// The manager is gone: free what is left, then stop.
    closing: bool,
    /// The reaper thread has stopped.
    stopped: bool,
    /// The reaper thread is freeing remains or closing libraries handed over to it.
    handling: bool,
    /// The reaper thread's id, once it runs.
    thread: Option<std::thread::ThreadId>,
    /// Released libraries wait to be closed ([`CloseLater::close_later`]).
    graveyard_due: bool,
    /// Generations whose last reference went on another thread ([`Reaper::free_later`]).
    remains: Vec<Remains>,
    leaked: u64,
}

/// Frees replaced generations and closes released libraries on its own thread (see the
/// module documentation).
pub(crate) struct Reaper {
    queue: Mutex<Queue>,
    changed: Condvar,
    graveyard: Arc<Graveyard>,
    /// The reaper thread's nice value (`PluginManagerBuilder::reload_nice`).
    nice: i32,
}

/// Asks the reaper thread to close the graveyard's excess libraries. Returns false, and the
/// caller closes them itself, on the reaper thread itself or when no reaper thread runs (none
/// started yet, or stopped).
impl CloseLater for Reaper {
    fn close_later(&self) -> bool {
        let mut queue = self.lock();
        if !Self::takes_work(&queue) {
            return false;
        }
        queue.graveyard_due = true;
        self.changed.notify_all();
        true
    }
}

impl Reaper {
    /// A reaper that also closes `graveyard`'s libraries released on other threads.
    pub fn new(graveyard: &Arc<Graveyard>, nice: i32) -> Arc<Self> {
        let reaper = Arc::new(Reaper {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            graveyard: Arc::clone(graveyard),
            nice,
        });
        graveyard.close_on(&reaper);
        reaper
    }

    /// Whether the reaper thread runs and this is another thread, so work can be handed to it.
    fn takes_work(queue: &Queue) -> bool {
        queue.started && !queue.stopped && queue.thread != Some(std::thread::current().id())
    }

    /// Hands the remains of a generation to the reaper thread, which frees them next. Gives
    /// them back, for the caller to free itself, on the reaper thread itself or when no
    /// reaper thread runs (none started yet, or stopped).
    pub fn free_later(&self, remains: Remains) -> Result<(), Remains> {
        let mut queue = self.lock();
        if !Self::takes_work(&queue) {
            return Err(remains);
        }
        queue.remains.push(remains);
        self.changed.notify_all();
        Ok(())
    }

    /// Waits until nothing handed over by [`Reaper::free_later`] or
    /// [`CloseLater::close_later`] is left to do, at most `timeout`. Returns whether that is so.
    pub fn wait_handed_over(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut queue = self.lock();
        while !queue.remains.is_empty() || queue.graveyard_due || queue.handling {
            let now = Instant::now();
            if now >= deadline || !queue.started || queue.stopped {
                return false;
            }
            queue = self.changed.wait_timeout(queue, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Frees `generation` after `delay` (and after every generation retired before it), and
    /// returns its ticket for [`Reaper::wait_for`].
    pub fn retire(self: &Arc<Self>, generation: Arc<Generation>, delay: Duration) -> u64 {
        let mut queue = self.lock();
        queue.issued += 1;
        let ticket = queue.issued;
        if queue.waiting.len() >= MAX_WAITING {
            let stuck = queue.busy_since.is_some_and(|since| since.elapsed() > FREE_PATIENCE);
            if stuck {
                queue.leaked += 1;
                tracing::warn!(
                    generation = generation.number(),
                    "the reaper is stuck in a plugin's on_free and {MAX_WAITING} generations wait: this generation is leaked (stays mapped, no on_free)"
                );
                std::mem::forget(generation);
                return ticket;
            }
            if let Some(oldest) = queue.waiting.front_mut() {
                oldest.due = Instant::now();
            }
        }
        queue.waiting.push_back(Waiting { due: Instant::now() + delay, ticket, generation });
        if !queue.started {
            let reaper = Arc::clone(self);
            let spawned = std::thread::Builder::new().name("hotswap-reaper".into()).spawn(move || reaper.run());
            match spawned {
                Ok(_) => queue.started = true,
                Err(e) => {
                    // Without a thread, free now on this one (after the reload lock is gone).
                    tracing::warn!("cannot start the reaper thread ({e}); freeing the old generation now");
                    let freed: Vec<Waiting> = queue.waiting.drain(..).collect();
                    queue.done = ticket;
                    drop(queue);
                    drop(freed);
                    return ticket;
                }
            }
        }
        self.changed.notify_all();
        ticket
    }

    /// Waits until the generation of `ticket` is freed, at most `timeout`. Returns whether it
    /// was.
    pub fn wait_for(&self, ticket: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut queue = self.lock();
        while queue.done < ticket {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            queue = self.changed.wait_timeout(queue, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    /// Waits until the generation of `ticket` is freed, at most `limit`, but gives up as soon
    /// as the reaper has been freeing one thing (running a plugin's `on_free`) for longer than
    /// `patience`: what waits behind a stuck `on_free` may wait forever, and a reload's answer
    /// must not. Never waits when the reaper is already stuck.
    pub fn wait_unless_stuck(&self, ticket: u64, patience: Duration, limit: Duration) -> Freed {
        let deadline = Instant::now() + limit;
        let mut queue = self.lock();
        while queue.done < ticket {
            let now = Instant::now();
            if let Some(since) = queue.busy_since
                && now.duration_since(since) >= patience
            {
                let first = queue.stuck_reported != Some(since);
                queue.stuck_reported = Some(since);
                let what = queue.busy_with.clone().unwrap_or_else(|| "a generation".into());
                return Freed::BehindStuck { what, first };
            }
            if now >= deadline {
                return Freed::TimedOut;
            }
            // Wake up when the thing being freed now would count as stuck, or at the limit.
            let wake = queue.busy_since.map_or(deadline, |since| (since + patience).min(deadline));
            let wait = wake.saturating_duration_since(now).max(Duration::from_millis(1));
            queue = self.changed.wait_timeout(queue, wait).unwrap_or_else(|e| e.into_inner()).0;
        }
        Freed::Yes
    }

    /// Makes everything waiting due now.
    pub fn hurry(&self) {
        let mut queue = self.lock();
        let now = Instant::now();
        for waiting in &mut queue.waiting {
            waiting.due = now;
        }
        self.changed.notify_all();
    }

    /// Tickets handed out so far.
    pub fn issued(&self) -> u64 {
        self.lock().issued
    }

    /// Number of generations that waited too long behind a stuck reaper and were leaked.
    pub fn leaked(&self) -> u64 {
        self.lock().leaked
    }

    /// Stops the thread once everything waiting is freed (immediately due).
    pub fn close(&self) {
        let mut queue = self.lock();
        queue.closing = true;
        let now = Instant::now();
        for waiting in &mut queue.waiting {
            waiting.due = now;
        }
        self.changed.notify_all();
    }

    /// Runs `work` without the queue's lock, and takes the lock again. Plugin hooks catch their
    /// own panics; this catches a panic of the host's own drop code, so the reaper survives it.
    fn unlocked<'a>(
        &'a self,
        queue: std::sync::MutexGuard<'a, Queue>,
        what: &str,
        work: impl FnOnce(),
    ) -> std::sync::MutexGuard<'a, Queue> {
        drop(queue);
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).is_err() {
            tracing::error!("{what} panicked");
        }
        self.lock()
    }

    fn run(self: Arc<Self>) {
        super::priority::lower(self.nice);
        let mut queue = self.lock();
        queue.thread = Some(std::thread::current().id());
        loop {
            if !queue.remains.is_empty() || queue.graveyard_due {
                let remains = std::mem::take(&mut queue.remains);
                let close = std::mem::take(&mut queue.graveyard_due);
                queue.handling = true;
                // Remains run `on_free` too: a reaper stuck in one is stuck (see `retire`).
                queue.busy_since = Some(Instant::now());
                queue.busy_with = Some("a generation whose last handle went on another thread".into());
                self.changed.notify_all();
                queue = self.unlocked(queue, "freeing a generation or closing a library", || {
                    drop(remains);
                    if close {
                        self.graveyard.close_excess();
                    }
                });
                queue.handling = false;
                queue.busy_since = None;
                queue.busy_with = None;
                self.changed.notify_all();
                continue;
            }
            // Generations fall due in ticket order except when hurried; take the earliest.
            let next = queue.waiting.iter().enumerate().min_by_key(|(_, w)| (w.due, w.ticket)).map(|(i, w)| (i, w.due));
            match next {
                None if queue.closing => {
                    queue.stopped = true;
                    return;
                }
                None => {
                    queue = self.changed.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
                Some((index, due)) => {
                    let now = Instant::now();
                    if due > now {
                        queue = self.changed.wait_timeout(queue, due - now).unwrap_or_else(|e| e.into_inner()).0;
                        continue;
                    }
                    let Some(waiting) = queue.waiting.remove(index) else { continue };
                    queue.busy_since = Some(now);
                    queue.busy_with = Some(format!(
                        "generation {} ({})",
                        waiting.generation.number(),
                        waiting.generation.plugin_names().join(", ")
                    ));
                    // Wakes a reload waiting for this generation, to time its patience.
                    self.changed.notify_all();
                    queue = self.unlocked(queue, "freeing a generation", move || drop(waiting));
                    queue.busy_since = None;
                    queue.busy_with = None;
                    // Nothing is being freed now, so every ticket below the lowest waiting one
                    // is done (tickets can complete out of order when one was hurried).
                    let lowest_waiting = queue.waiting.iter().map(|w| w.ticket).min();
                    queue.done = lowest_waiting.map_or(queue.issued, |t| t - 1).max(queue.done);
                    self.changed.notify_all();
                }
            }
        }
    }
}

/// For a reload with a zero free delay: waits until generation `number` (retired as `ticket`)
/// is freed, unless the reaper is stuck in an `on_free` (its own or an earlier generation's),
/// in which case the reload answers now and the generation is freed when the reaper gets
/// free. A stuck `on_free` is warned about once, not on every reload behind it.
pub(super) fn answer_without_stuck(reaper: &Reaper, ticket: u64, number: u64, limit: Duration) {
    match reaper.wait_unless_stuck(ticket, FREE_PATIENCE.min(limit), limit) {
        Freed::Yes => {}
        Freed::BehindStuck { what, first: true } => tracing::warn!(
            generation = number,
            "a plugin's on_free has not returned after {:.1} s (freeing {what}): the reload answers without waiting for it; replaced generations wait behind it (at most {MAX_WAITING}, then leaked) and later reloads do not wait",
            FREE_PATIENCE.min(limit).as_secs_f64()
        ),
        Freed::BehindStuck { what, first: false } => tracing::debug!(
            generation = number,
            "the reaper is still stuck freeing {what}; generation {number} waits behind it"
        ),
        Freed::TimedOut => {
            tracing::warn!(generation = number, "a replaced generation was not freed within the reload deadline")
        }
    }
}
