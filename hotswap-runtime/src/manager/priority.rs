//! The CPU priority of the threads that reload and free generations
//! (`PluginManagerBuilder::reload_nice`).

/// Raises this thread's nice value by `nice` (Linux keeps a nice value per thread: only the
/// reload thread, or the reaper, is affected). Both are threads of their own, started for the
/// purpose, so there is nothing to restore. A failure is logged: the work runs anyway.
pub(super) fn lower(nice: i32) {
    if nice <= 0 {
        return;
    }
    if let Err(e) = rustix::process::nice(nice) {
        let thread = std::thread::current();
        tracing::warn!(
            "could not lower the priority of the thread `{}` by {nice}: {e}",
            thread.name().unwrap_or("unnamed")
        );
    }
}
