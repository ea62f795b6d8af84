//! The control protocol's messages: one JSON line each way.
//!
//! Paths travel as strings made with [`Path::to_string_lossy`]: a file or folder whose name is
//! not UTF-8 is shown with U+FFFD in place of the bad bytes, and never makes an answer fail.

use std::path::Path;
use std::sync::Arc;

use crate::error::{LoadError, Stage};
use crate::manager::{Generation, LiveTasks, MemoryReport, PluginReport, ProbationEnd, ProbationStatus, ReloadReport};

/// A request to the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlRequest {
    /// Reload the plugin folder.
    Reload,
    /// Report the generation serving now. Never waits for a reload.
    Status,
    /// Reload the plugin folder and put the new generation on probation
    /// ([`PluginManager::reload_on_probation`](crate::PluginManager::reload_on_probation)):
    /// `{"command":"reload_on_probation","period_ms":30000,"max_panics":0}`.
    ReloadOnProbation {
        /// The probation period, in milliseconds (above 0).
        period_ms: u64,
        /// Panics tolerated during the period (default 0: the first one rolls back).
        #[serde(default)]
        max_panics: Option<u64>,
    },
    /// Make the generation on probation permanent now: `{"command":"confirm"}`.
    Confirm,
    /// Go back to the generation kept ready by the reload on probation:
    /// `{"command":"rollback"}`.
    Rollback,
    /// Replace this host's process with a new binary without dropping a connection
    /// ([`Handoff::upgrade`](crate::handoff::Handoff::upgrade)):
    /// `{"command":"upgrade_host","program":"/usr/local/bin/game-server","ready_timeout_ms":60000}`
    /// (both fields optional). Answered once the new host is ready, or why it failed.
    UpgradeHost {
        /// The new binary (default: the path the host was started from).
        #[serde(default)]
        program: Option<String>,
        /// How long the new host has to be ready (default 60 s).
        #[serde(default)]
        ready_timeout_ms: Option<u64>,
    },
}

/// The host's answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlResponse {
    /// The reload was done; this generation now serves.
    Accepted {
        /// Generation number.
        generation: u64,
        /// Its plugins, dependencies first.
        plugins: Vec<PluginAnswer>,
        /// Library files the reload passed over, and why.
        ignored: Vec<IgnoredAnswer>,
        /// Time each stage took, in the order they ran.
        stage_ms: Vec<StageTime>,
        /// Time the reload took, in milliseconds (cargo excluded).
        total_ms: f64,
        /// The host's resident memory just after the reload, and its change since the last
        /// reload and the first load (absent where it cannot be read, or from an older host).
        #[serde(default)]
        memory: Option<MemoryReport>,
        /// The probation it is on (`reload_on_probation`; `null` for a plain reload).
        #[serde(default)]
        probation: Option<ProbationStatus>,
        /// Tasks still running on plugin code, per plugin and generation, just after the
        /// reload (absent without a task census, `PluginManagerBuilder::task_census`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tasks: Option<Vec<LiveTasks>>,
    },
    /// Answer to [`ControlRequest::Confirm`] and [`ControlRequest::Rollback`]: how the
    /// probation ended (its fields at the top level of the answer).
    ProbationEnded(ProbationEnd),
    /// Answer to [`ControlRequest::UpgradeHost`]: the new host serves; this one stopped
    /// accepting and drains its open connections, then exits.
    HostUpgraded {
        /// The new host's pid.
        pid: u32,
        /// The binary it runs (lossy UTF-8).
        program: String,
        /// Milliseconds from its start to its readiness.
        took_ms: f64,
        /// The pid of the host that answers (the old one).
        previous_pid: u32,
    },
    /// The request was refused: for a reload, the previous generation keeps serving.
    Refused {
        /// Why, as one sentence (for a reload: the [`LoadError`]'s text).
        reason: String,
        /// The plugin refused, when known.
        plugin: Option<String>,
        /// The file (or folder) concerned, when the refusal is a reload's.
        file: Option<String>,
        /// The stage at which the reload was refused, when the refusal is a reload's.
        stage: Option<Stage>,
    },
    /// The host cannot take the request now (a reload is already running, or every control
    /// connection is in use); nothing was done. Ask again later.
    Busy {
        /// Why, as one sentence.
        reason: String,
        /// The reload running now, if that is why.
        reload: Option<ReloadInProgress>,
    },
    /// Answer to [`ControlRequest::Status`].
    Serving {
        /// Generation number, if anything is loaded.
        generation: Option<u64>,
        /// Its plugins, dependencies first.
        plugins: Vec<PluginAnswer>,
        /// The reload running now, if any.
        reload: Option<ReloadInProgress>,
        /// The host's ABI fingerprint ([`crate::abi::FINGERPRINT`]): plugins must be built to
        /// the same (`None` from a host older than this field).
        fingerprint: Option<String>,
        /// The plugin folder the host loads from (lossy UTF-8; `None` from an older host).
        folder: Option<String>,
        /// The host's resident memory now, and its change since the last reload and the first
        /// load (absent before the first load, where it cannot be read, or from an older host).
        #[serde(default)]
        memory: Option<MemoryReport>,
        /// The generation on probation, if one is.
        #[serde(default)]
        probation: Option<ProbationStatus>,
        /// How the last probation ended (confirmed or rolled back, automatically or not,
        /// why), if one did.
        #[serde(default)]
        last_probation: Option<ProbationEnd>,
        /// Tasks still running on plugin code, per plugin and generation (absent without a
        /// task census, `PluginManagerBuilder::task_census`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tasks: Option<Vec<LiveTasks>>,
    },
}

/// One plugin of a generation, as the control socket reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PluginAnswer {
    /// Plugin name.
    pub name: String,
    /// Version stamp.
    pub version: String,
    /// SHA-256 of its library file.
    pub sha256: String,
    /// The library file in the plugin folder (lossy UTF-8).
    pub file: String,
    /// `loaded` (its library was loaded for this generation), `unchanged` (the instance of an
    /// earlier generation was kept: same sha256, no import changed) or `not reloadable` (kept:
    /// its `reloadable` hook said no).
    pub origin: String,
    /// The generation its library was loaded in (`status` only).
    pub loaded_in_generation: Option<u64>,
    /// Time each of its stages took in this reload (empty for a kept plugin and in `status`).
    pub stage_ms: Vec<StageTime>,
}

/// A library file a reload passed over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IgnoredAnswer {
    /// The plugin name its file name gives.
    pub name: String,
    /// The file (lossy UTF-8).
    pub file: String,
    /// Why it was not loaded.
    pub note: String,
}

/// The time one stage took.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageTime {
    /// The stage.
    pub stage: Stage,
    /// Milliseconds.
    pub ms: f64,
}

/// A reload that is running now.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReloadInProgress {
    /// How long it has been running, in milliseconds.
    pub running_ms: u64,
    /// The stage it is in, when the host knows it.
    pub stage: Option<Stage>,
    /// The plugin it is working on, when the host knows it.
    pub plugin: Option<String>,
}

impl std::fmt::Display for ReloadInProgress {
    /// `reload in progress for 12 s (stage on_load, plugin greeter)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reload in progress for {} s", self.running_ms / 1000)?;
        match (&self.stage, &self.plugin) {
            (Some(stage), Some(plugin)) => write!(f, " (stage {stage}, plugin {plugin})"),
            (Some(stage), None) => write!(f, " (stage {stage})"),
            (None, Some(plugin)) => write!(f, " (plugin {plugin})"),
            (None, None) => Ok(()),
        }
    }
}

fn lossy(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn stage_times(stages: &[(Stage, f64)]) -> Vec<StageTime> {
    stages.iter().map(|&(stage, ms)| StageTime { stage, ms }).collect()
}

impl From<&PluginReport> for PluginAnswer {
    fn from(p: &PluginReport) -> Self {
        PluginAnswer {
            name: p.name.clone(),
            version: p.version.clone(),
            sha256: p.sha256.clone(),
            file: lossy(&p.file),
            origin: p.note.clone(),
            loaded_in_generation: None,
            stage_ms: stage_times(&p.stage_ms),
        }
    }
}

impl ControlResponse {
    /// The answer to an accepted reload.
    pub(crate) fn accepted(report: &ReloadReport, probation: Option<ProbationStatus>) -> Self {
        ControlResponse::Accepted {
            generation: report.generation,
            plugins: report.plugins.iter().map(PluginAnswer::from).collect(),
            ignored: report
                .ignored
                .iter()
                .map(|i| IgnoredAnswer { name: i.name.clone(), file: lossy(&i.file), note: i.note.clone() })
                .collect(),
            stage_ms: stage_times(&report.stage_ms),
            total_ms: report.total_ms,
            memory: report.memory,
            probation,
            tasks: report.tasks.clone(),
        }
    }

    /// The answer to a refused reload.
    pub(crate) fn refused_reload(error: &LoadError) -> Self {
        ControlResponse::Refused {
            reason: error.to_string(),
            plugin: error.plugin.clone(),
            file: Some(lossy(&error.file)),
            stage: Some(error.stage),
        }
    }

    /// A refusal that is not a reload's (a bad request, another user).
    pub(crate) fn refused(reason: impl Into<String>) -> Self {
        ControlResponse::Refused { reason: reason.into(), plugin: None, file: None, stage: None }
    }

    /// The answer to a status request: the published generation, read without any lock, the
    /// plugin folder, the host's resident memory and its probation.
    pub(crate) fn serving(
        current: Option<Arc<Generation>>,
        reload: Option<ReloadInProgress>,
        folder: &Path,
        memory: Option<MemoryReport>,
        probation: Option<ProbationStatus>,
        last_probation: Option<ProbationEnd>,
        tasks: Option<Vec<LiveTasks>>,
    ) -> Self {
        let plugins = current
            .as_ref()
            .map(|generation| {
                generation
                    .plugins()
                    .iter()
                    .map(|p| PluginAnswer {
                        name: p.name().to_string(),
                        version: p.version().to_string(),
                        sha256: p.sha256().to_string(),
                        file: lossy(p.file()),
                        origin: if p.loaded_in_generation() == generation.number() {
                            "loaded"
                        } else if p.reloadable() {
                            "unchanged"
                        } else {
                            "not reloadable"
                        }
                        .to_string(),
                        loaded_in_generation: Some(p.loaded_in_generation()),
                        stage_ms: Vec::new(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        ControlResponse::Serving {
            generation: current.map(|g| g.number()),
            plugins,
            reload,
            fingerprint: Some(crate::abi::FINGERPRINT.to_string()),
            // Absolute (from the host's current folder), so a tool elsewhere can compare it.
            folder: Some(lossy(&std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf()))),
            memory,
            probation,
            last_probation,
            tasks,
        }
    }

    /// One JSON line, newline included. Never fails: should serialising ever fail, the line
    /// is a refusal that says so.
    pub(crate) fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_else(|e| {
            let fallback = ControlResponse::refused(format!("the host could not encode its answer: {e}"));
            serde_json::to_string(&fallback)
                .unwrap_or_else(|_| r#"{"status":"refused","reason":"the host could not encode its answer"}"#.into())
        });
        line.push('\n');
        line
    }
}
