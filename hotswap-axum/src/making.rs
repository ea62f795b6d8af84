//! Asking a plugin for its router, off the request path: the plugin's router function runs
//! once per generation on a thread of its own (inside the host's tokio runtime, when there is
//! one), so a slow or hanging one never blocks a runtime worker. Requests wait for it without
//! blocking, up to a bounded time ([`PluginRouter::router_timeout`](crate::PluginRouter)),
//! then answer 503 naming plugin and generation; once the function returns, its router serves.
//! The router kept with its generation is dropped in the plugin's scope, a panic of its drop
//! logged with plugin and generation.

use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::Router;
use hotswap_runtime::{Args, Plugin, Value};

use crate::scope::{PluginScope, ScopeGuard};
use crate::service::RouterError;
use crate::{ROUTER, panic_message};

/// One generation's router, in that generation's data bag: the router, then the value it came
/// in, which keeps the plugin's library (the router's handlers' code) mapped until the router
/// is dropped.
pub(crate) struct Slot {
    pub(crate) router: ManuallyDrop<Router>,
    pub(crate) scope: Arc<PluginScope>,
    made: ManuallyDrop<Mutex<Value>>,
}

impl Drop for Slot {
    /// Runs wherever the generation's vault goes (the reaper thread, usually): the router's
    /// drop is the plugin's code (its handlers' captures, its state), so it runs in the
    /// plugin's scope and a panic there is caught and logged with plugin and generation.
    fn drop(&mut self) {
        // SAFETY: `drop` runs once; neither field is used after it.
        let (router, made) = unsafe { (ManuallyDrop::take(&mut self.router), ManuallyDrop::take(&mut self.made)) };
        let _scope = ScopeGuard::enter(Arc::clone(&self.scope));
        // Each under its own `catch_unwind`: a second panic while the first unwinds would abort.
        let dropped =
            [catch_unwind(AssertUnwindSafe(move || drop(router))), catch_unwind(AssertUnwindSafe(move || drop(made)))];
        for payload in dropped.into_iter().filter_map(Result::err) {
            let message = panic_message(payload);
            tracing::error!(
                plugin = %self.scope.plugin,
                generation = self.scope.generation,
                "panic in the plugin's code while dropping its router: {message}"
            );
        }
    }
}

/// What a `PluginRouter` builds a generation's router with.
pub(crate) struct Recipe<S> {
    pub(crate) key: String,
    pub(crate) state: S,
    pub(crate) spans: bool,
}

/// Asks `plugin` for its router (in its scope); stores it in its generation's data bag.
pub(crate) fn make_slot<S: Clone + Send + Sync + 'static>(
    plugin: &Plugin,
    recipe: &Recipe<S>,
) -> Result<Arc<Slot>, Box<RouterError>> {
    let (name, number, library) = (plugin.name(), plugin.generation().number(), plugin.loaded_from());
    let scope = Arc::new(if recipe.spans {
        PluginScope::new(name, number, library)
    } else {
        PluginScope::without_span(name, number, library)
    });
    let made = {
        let _scope = ScopeGuard::enter(Arc::clone(&scope));
        plugin.invoke_func(ROUTER, Args::new().with(recipe.state.clone()))
    };
    let name = plugin.name().to_string();
    let made =
        made.map_err(|source| Box::new(RouterError::Failed { plugin: name.clone(), generation: number, source }))?;
    let router = match made.downcast_ref::<Router>() {
        Ok(router) => router.clone(),
        Err(mismatch) => {
            return Err(Box::new(RouterError::NotARouter { plugin: name, generation: number, source: mismatch }));
        }
    };
    tracing::debug!(plugin = plugin.name(), generation = number, "took the plugin's router for this generation");
    let vault = plugin.generation().vault();
    let slot = Slot { router: ManuallyDrop::new(router), scope, made: ManuallyDrop::new(Mutex::new(made)) };
    vault.set_data(recipe.key.clone(), slot);
    Ok(vault.data::<Slot>(&recipe.key).expect("the slot just stored"))
}

/// One generation's router being made on a thread of its own.
pub(crate) struct Making {
    pub(crate) plugin: String,
    pub(crate) generation: u64,
    timeout: Duration,
    deadline: Instant,
    state: Mutex<Progress>,
    finished: Condvar,
}

enum Progress {
    Running(Vec<Waker>),
    Finished(Result<Arc<Slot>, Arc<RouterError>>),
}

/// What waiting for a router gave.
pub(crate) enum Made {
    Router(Arc<Slot>),
    Failed(Arc<RouterError>),
    /// The router function has not returned by the deadline.
    TimedOut(Box<RouterError>),
}

impl Making {
    /// Starts making `plugin`'s router on a new thread; `done` runs on that thread once it is
    /// made or failed (before waiters are woken).
    pub(crate) fn start<S: Clone + Send + Sync + 'static>(
        plugin: Plugin,
        recipe: Arc<Recipe<S>>,
        timeout: Duration,
        runtime: Option<tokio::runtime::Handle>,
        done: impl FnOnce(&Result<Arc<Slot>, Box<RouterError>>) + Send + 'static,
    ) -> Result<Arc<Making>, Box<RouterError>> {
        let making = Arc::new(Making {
            plugin: plugin.name().to_string(),
            generation: plugin.generation().number(),
            timeout,
            deadline: Instant::now() + timeout,
            state: Mutex::new(Progress::Running(Vec::new())),
            finished: Condvar::new(),
        });
        // The host's runtime, entered on the thread: a router function may spawn or make
        // tokio resources as it would on a worker.
        let (worker, watchdog) = (Arc::clone(&making), Arc::clone(&making));
        let thread = format!("router {}@{}", making.plugin, making.generation);
        let spawned = std::thread::Builder::new().name(thread.clone()).spawn(move || {
            let _runtime = runtime.as_ref().map(tokio::runtime::Handle::enter);
            let made = catch_unwind(AssertUnwindSafe(|| make_slot(&plugin, &recipe))).unwrap_or_else(|payload| {
                let message = panic_message(payload);
                let generation = worker.generation;
                Err(Box::new(RouterError::HostPanicked { plugin: plugin.name().to_string(), generation, message }))
            });
            done(&made);
            worker.finish(made.map_err(Arc::from));
            // The generation (and the state clone) go here, on this thread.
            drop((plugin, recipe));
        });
        if let Err(source) = spawned {
            let (plugin, generation) = (making.plugin.clone(), making.generation);
            return Err(Box::new(RouterError::NoThread { plugin, generation, source }));
        }
        // Wakes the requests waiting at the deadline, if the router function has not returned
        // by then. Does not hold the generation.
        let _ = std::thread::Builder::new().name(format!("{thread} watchdog")).spawn(move || watchdog.watch());
        Ok(making)
    }

    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn finish(&self, made: Result<Arc<Slot>, Arc<RouterError>>) {
        let wakers = match std::mem::replace(&mut *self.lock(), Progress::Finished(made)) {
            Progress::Running(wakers) => wakers,
            Progress::Finished(_) => Vec::new(),
        };
        self.finished.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Blocks until the router is made or failed (true), or the deadline or `limit` passed
    /// (false).
    pub(crate) fn wait(&self, limit: Duration) -> bool {
        matches!(*self.wait_locked(limit), Progress::Finished(_))
    }

    /// Blocks until the router is made or failed, or the deadline or `limit` passed; returns
    /// the progress, locked.
    fn wait_locked(&self, limit: Duration) -> MutexGuard<'_, Progress> {
        let timeout = self.deadline.saturating_duration_since(Instant::now()).min(limit);
        self.finished
            .wait_timeout_while(self.lock(), timeout, |p| matches!(p, Progress::Running(_)))
            .unwrap_or_else(|e| e.into_inner())
            .0
    }

    /// Wakes the waiting requests at the deadline if the router function is still running.
    fn watch(&self) {
        let mut progress = self.wait_locked(self.timeout);
        if let Progress::Running(wakers) = &mut *progress {
            let wakers = std::mem::take(wakers);
            drop(progress);
            tracing::error!(
                plugin = %self.plugin,
                generation = self.generation,
                "the plugin's router function has not returned after {} ms: requests to this generation answer 503 until it does",
                self.timeout.as_millis()
            );
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    /// The router once made, or its failure, or a timeout once past the deadline; else
    /// `Pending`, waking `cx` when one of those comes.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<Made> {
        let mut progress = self.lock();
        match &mut *progress {
            Progress::Finished(Ok(slot)) => Poll::Ready(Made::Router(Arc::clone(slot))),
            Progress::Finished(Err(error)) => Poll::Ready(Made::Failed(Arc::clone(error))),
            Progress::Running(_) if Instant::now() >= self.deadline => {
                Poll::Ready(Made::TimedOut(Box::new(RouterError::TimedOut {
                    plugin: self.plugin.clone(),
                    generation: self.generation,
                    waited_ms: self.timeout.as_millis() as u64,
                })))
            }
            Progress::Running(wakers) => {
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}
