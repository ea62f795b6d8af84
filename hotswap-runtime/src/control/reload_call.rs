//! The one place where a reload asked from outside the host's own code (the control socket, a
//! signal) is started, and where its progress is read.

use crate::error::{LoadError, LoadErrorKind};
use crate::manager::{PluginManager, Probation, ReloadReport};

use super::ReloadInProgress;

/// What a reload asked through the control socket or a signal came to.
#[derive(Debug)]
pub(crate) enum ReloadOutcome {
    /// Published.
    Done(ReloadReport),
    /// Refused; the previous generation keeps serving.
    Refused(LoadError),
    /// Not started: another reload is running.
    Busy(ReloadInProgress),
}

/// The single call site of a reload for the control socket and the signal thread: never waits
/// for another reload ([`PluginManager::try_reload`]); a reload already running is answered
/// as busy with its stage and plugin.
/// With `probation`, the new generation is put on probation.
pub(crate) fn run_reload(manager: &PluginManager, probation: Option<Probation>) -> ReloadOutcome {
    let result = match probation {
        Some(terms) => manager.try_reload_on_probation(terms),
        None => manager.try_reload(),
    };
    match result {
        Ok(report) => ReloadOutcome::Done(report),
        Err(error) if error.kind == LoadErrorKind::Busy => {
            ReloadOutcome::Busy(reload_progress(manager).unwrap_or(ReloadInProgress {
                running_ms: 0,
                stage: Some(error.stage),
                plugin: error.plugin.clone(),
            }))
        }
        Err(error) => ReloadOutcome::Refused(error),
    }
}

/// The reload the manager is running now, if any.
pub(crate) fn reload_progress(manager: &PluginManager) -> Option<ReloadInProgress> {
    manager.reload_progress().map(|p| ReloadInProgress {
        running_ms: p.elapsed.as_millis() as u64,
        stage: Some(p.stage),
        plugin: p.plugin,
    })
}
