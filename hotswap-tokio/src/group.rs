//! A plugin's tasks that its `on_free` cancels: [`TaskGroup`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Tasks a plugin spawns and cancels when its generation is replaced, for plugins on the
/// shared route (guide, section 10: one tokio for the process), where plugin code spawns with
/// the process's runtime.
///
/// Keep one in a `static` of the plugin: a plugin's statics are per library, so each
/// generation has its own group. Spawn through it, and cancel it in `on_free` with a bounded
/// wait, so the tasks of a replaced generation end (dropped at their next `.await`) instead of
/// running on the old code for as long as they like:
///
/// ```no_run
/// use std::time::Duration;
/// static TASKS: hotswap_tokio::TaskGroup = hotswap_tokio::TaskGroup::new();
///
/// fn start_background_work() {
///     TASKS.spawn(async {
///         loop {
///             tokio::time::sleep(Duration::from_secs(1)).await;
///             // … work; a cancel drops this future at its next `.await`
///         }
///     });
/// }
///
/// pub fn on_free() {
///     let left = TASKS.cancel_and_wait(Duration::from_millis(500));
///     if left > 0 {
///         eprintln!("{left} tasks still running on the replaced code");
///     }
/// }
/// ```
///
/// A task that must finish something first can watch [`TaskGroup::cancelled`] itself and
/// return when it fires. The wait blocks the thread running `on_free` (the manager's reaper
/// thread, not a runtime worker) and needs the runtime running to drop the tasks. With
/// `free_delay(ZERO)` a reload waits at most 1 s for `on_free`: with a longer timeout it may
/// answer (with a warning) before the tasks ended.
#[derive(Debug)]
pub struct TaskGroup {
    cancelled: AtomicBool,
    notify: Notify,
    live: Mutex<usize>,
    drained: Condvar,
}

impl Default for TaskGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskGroup {
    /// An empty group, not cancelled; usable in a `static`.
    pub const fn new() -> TaskGroup {
        TaskGroup {
            cancelled: AtomicBool::new(false),
            notify: Notify::const_new(),
            live: Mutex::new(0),
            drained: Condvar::new(),
        }
    }

    /// Spawns `future` on the current runtime (`tokio::spawn`), counted in this group. The
    /// task's output is `Some` when the future completed, `None` when the group was cancelled
    /// first (the future is then dropped at once, inside the task). Spawning into a cancelled
    /// group starts a task that ends at its first poll.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime, like `tokio::spawn`.
    #[track_caller]
    pub fn spawn<F>(&'static self, future: F) -> JoinHandle<Option<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let counted = Counted::new(self);
        tokio::spawn(async move {
            let _counted = counted;
            let mut future = std::pin::pin!(future);
            let mut cancelled = std::pin::pin!(self.cancelled());
            std::future::poll_fn(|cx| {
                if Pin::new(&mut cancelled).poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                future.as_mut().poll(cx).map(Some)
            })
            .await
        })
    }

    /// Cancels every task of the group, now and spawned later: each one's future is dropped
    /// at its next poll.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether [`TaskGroup::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once the group is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the flag is read, so a cancel in between is not missed.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// How many of the group's tasks have not ended (their future neither completed nor
    /// dropped).
    pub fn live(&self) -> usize {
        *self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cancels the group and waits at most `timeout` for its tasks to end; returns how many
    /// are left (0 when all ended in time).
    pub fn cancel_and_wait(&self, timeout: Duration) -> usize {
        self.cancel();
        let deadline = Instant::now() + timeout;
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        while *live > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            live = self.drained.wait_timeout(live, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        *live
    }
}

/// One task of a group: counted from the spawn until its future is gone.
struct Counted(&'static TaskGroup);

impl Counted {
    fn new(group: &'static TaskGroup) -> Counted {
        *group.live.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Counted(group)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut live = self.0.live.lock().unwrap_or_else(|e| e.into_inner());
        *live -= 1;
        if *live == 0 {
            self.0.drained.notify_all();
        }
    }
}
