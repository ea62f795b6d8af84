//! The one place where a reload asked from outside the host's own code (the control socket, a
//! signal) is started, and where its progress is read.

use crate::error::LoadError;
use crate::manager::{PluginManager, ReloadReport};

use super::ReloadInProgress;

/// What a reload asked through the control socket or a signal came to.
#[derive(Debug)]
pub(crate) enum ReloadOutcome {
    /// Published.
    Done(ReloadReport),
    /// Refused; the previous generation keeps serving.
    Refused(LoadError),
    /// Not started: another reload is running.
    #[allow(dead_code)] // produced once `run_reload` calls `try_reload` (see below)
    Busy(ReloadInProgress),
}

/// MERGE POINT (issue 12): the single call site of a reload for the control socket and the
/// signal thread. It serialises through [`PluginManager::reload`] for now, so a reload started
/// by the host itself (or stuck in a hook) makes this wait. Switch it to
/// `manager.try_reload()` and map its busy error to [`ReloadOutcome::Busy`] (with
/// [`reload_progress`]) so that it never waits.
pub(crate) fn run_reload(manager: &PluginManager) -> ReloadOutcome {
    match manager.reload() {
        Ok(report) => ReloadOutcome::Done(report),
        Err(error) => ReloadOutcome::Refused(error),
    }
}

/// MERGE POINT (issue 12): the reload the manager is running now, from
/// `manager.reload_progress()` once it exists. Until then the control server only knows the
/// reloads it started itself, which it reports on its own.
pub(crate) fn reload_progress(_manager: &PluginManager) -> Option<ReloadInProgress> {
    None
}
