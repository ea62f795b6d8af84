//! Which plugin's code this thread is running: set by the host around every poll of a
//! plugin's response future or body (and by task hooks around the polls of tasks that plugin
//! code spawned), read by spawn hooks and by the panic hook [`log_panics`].

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::{Arc, Once};

/// The plugin whose code a thread is running: its name, generation and library file, and the
/// `tracing` span `plugin{name, generation}` its events are recorded in.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PluginScope {
    /// Plugin name.
    pub plugin: String,
    /// The generation serving the request (or that spawned the task).
    pub generation: u64,
    /// The private copy of the plugin's library the code runs from (`Plugin::loaded_from`).
    pub library: PathBuf,
    span: tracing::Span,
}

impl PluginScope {
    /// A scope for `plugin` of `generation`, whose code is in `library`.
    pub fn new(plugin: impl Into<String>, generation: u64, library: impl Into<PathBuf>) -> PluginScope {
        let plugin = plugin.into();
        let span = tracing::info_span!("plugin", name = %plugin, generation);
        PluginScope { plugin, generation, library: library.into(), span }
    }

    /// A scope whose span is disabled (`tracing::Span::none()`).
    pub fn without_span(plugin: impl Into<String>, generation: u64, library: impl Into<PathBuf>) -> PluginScope {
        PluginScope { plugin: plugin.into(), generation, library: library.into(), span: tracing::Span::none() }
    }

    /// The span `plugin{name, generation}`, entered with the scope by [`ScopeGuard`]: events
    /// of the plugin's code (handlers, body streams) are recorded in it. Task hooks enter it
    /// around the polls of a task they attribute to the plugin.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<PluginScope>>> = const { RefCell::new(None) };
}

/// The plugin whose code this thread is running now, if a [`ScopeGuard`] (or
/// [`replace_scope`]) says so.
pub fn current_scope() -> Option<Arc<PluginScope>> {
    CURRENT.try_with(|current| current.borrow().clone()).ok().flatten()
}

/// Makes `scope` current on this thread and returns the scope it replaces: for tokio's
/// `on_before_task_poll` / `on_after_task_poll` hooks, which cannot hold a guard between the
/// two calls.
pub fn replace_scope(scope: Option<Arc<PluginScope>>) -> Option<Arc<PluginScope>> {
    CURRENT.try_with(|current| current.replace(scope)).ok().flatten()
}

/// Makes a scope current until dropped (also when a panic unwinds through it), then restores
/// the one before.
#[derive(Debug)]
#[must_use = "the scope is current only while the guard lives"]
pub struct ScopeGuard {
    previous: Option<Arc<PluginScope>>,
    /// The span entered, exited on drop.
    span: Option<tracing::span::Id>,
}

impl ScopeGuard {
    /// Enters `scope` (and its span) on this thread.
    pub fn enter(scope: Arc<PluginScope>) -> ScopeGuard {
        let span = scope.span.id();
        if let Some(id) = &span {
            tracing::dispatcher::get_default(|dispatch| dispatch.enter(id));
        }
        ScopeGuard { previous: replace_scope(Some(scope)), span }
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        if let Some(id) = &self.span {
            tracing::dispatcher::get_default(|dispatch| dispatch.exit(id));
        }
        replace_scope(self.previous.take());
    }
}

/// Installs (once) a panic hook that logs a panic in plugin code (a handler, a body stream, a
/// task plugin code spawned and the host's task hooks attributed) as a `tracing` error naming
/// the plugin and its generation, then calls the hook that was installed before. The panic
/// itself is contained elsewhere: by `PluginRouter` for handlers and bodies, by tokio's task
/// harness for tasks (the process shares one std on the shared route, so a panic is an
/// ordinary Rust panic on both sides).
pub fn log_panics() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(scope) = current_scope() {
                let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
                let payload = info.payload();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic with a non-string payload".to_string());
                tracing::error!(
                    plugin = %scope.plugin,
                    generation = scope.generation,
                    %location,
                    "plugin code panicked: {message}"
                );
            }
            previous(info);
        }));
    });
}
