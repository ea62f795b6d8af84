//! `reload` and `status`: requests to a running host's control socket.
//!
//! Every request ends as one [`Outcome`] ([`ask`]): printed for a person, or as one JSON object
//! with `--json` (`answer`), and turned into the process's exit code ([`exit`]).

use std::path::Path;
use std::time::Duration;

use hotswap_runtime::{
    ControlError, ControlRequest, ControlResponse, IgnoredAnswer, LiveTasks, MemoryReport, PluginAnswer, ProbationEnd,
    ProbationResult, ProbationStatus, ReloadInProgress, Stage, StageTime, send_request,
};

/// Exit codes of `reload` and `status` (and the `exit_code` field of their JSON).
pub mod exit {
    /// `reload`: accepted, the new generation serves. `status`: the host answered.
    pub const OK: u8 = 0;
    /// The host refused the request; for a reload, the previous generation keeps serving.
    pub const REFUSED: u8 = 1;
    /// No host listens on the socket (nothing there, or a socket no process answers on).
    /// Command-line usage errors also exit 2.
    pub const NO_HOST: u8 = 2;
    /// The host is busy (a reload is already running, or every control connection is in
    /// use); nothing was done: try again later.
    pub const BUSY: u8 = 3;
    /// The host took the connection but did not answer in time; it may be stuck in a reload.
    pub const TIMEOUT: u8 = 4;
    /// A host's socket is there, but this user may not use it (permission denied).
    pub const FORBIDDEN: u8 = 5;
    /// The process answering runs as another user; its answer was not trusted.
    pub const UNTRUSTED: u8 = 6;
    /// Any other error (an invalid answer, an I/O error).
    pub const ERROR: u8 = 7;
}

/// What a request came to: the one definition of the `--json` output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// `reload` or `status`.
    pub command: &'static str,
    /// What happened.
    pub result: OutcomeKind,
    /// The process's exit code (see [`exit`]).
    pub exit_code: u8,
    /// The socket asked.
    pub socket: String,
    /// One sentence for a person.
    pub message: String,
    /// The generation serving (after an accepted reload, or in a status answer).
    pub generation: Option<u64>,
    /// Its plugins.
    pub plugins: Vec<PluginAnswer>,
    /// Library files an accepted reload passed over.
    pub ignored: Vec<IgnoredAnswer>,
    /// Time each stage of an accepted reload took.
    pub stage_ms: Vec<StageTime>,
    /// Total time of an accepted reload, in milliseconds.
    pub total_ms: Option<f64>,
    /// Why a reload was refused.
    pub refusal: Option<Refusal>,
    /// The reload the host is running, when it said so.
    pub reload_in_progress: Option<ReloadInProgress>,
    /// The host's ABI fingerprint, in a status answer (plugins must be built to the same).
    pub fingerprint: Option<String>,
    /// The plugin folder the host loads from, in a status answer.
    pub folder: Option<String>,
    /// The host's resident memory (after an accepted reload, or in a status answer), and its
    /// change since the last reload and the first load.
    pub memory: Option<MemoryReport>,
    /// The generation on probation (after `reload --probation`, or in a status answer).
    pub probation: Option<ProbationStatus>,
    /// How the last probation ended (`confirm`, `rollback`, or in a status answer).
    pub last_probation: Option<ProbationEnd>,
    /// Tasks still running on plugin code, per plugin and generation (after an accepted
    /// reload, or in a status answer, from a host with a task census).
    pub tasks: Option<Vec<LiveTasks>>,
    /// The new host after `upgrade-host`.
    pub host_upgrade: Option<HostUpgrade>,
}

/// The new host that took over (`upgrade-host`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostUpgrade {
    /// Its pid.
    pub pid: u32,
    /// The binary it runs.
    pub program: String,
    /// Milliseconds from its start to its readiness.
    pub took_ms: f64,
    /// The pid of the host it replaced (which drains its connections, then exits).
    pub previous_pid: u32,
}

/// The `result` of an [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    /// A reload was accepted.
    Accepted,
    /// The host refused.
    Refused,
    /// The host is busy.
    Busy,
    /// The host answered a status request.
    Serving,
    /// The generation on probation was made permanent.
    Confirmed,
    /// The previous generation serves again.
    RolledBack,
    /// A new host process took over (`upgrade-host`).
    Upgraded,
    /// No host listens.
    NoHost,
    /// No answer in time.
    Timeout,
    /// This user may not use the socket.
    Forbidden,
    /// The answering process runs as another user.
    Untrusted,
    /// Anything else.
    Error,
}

/// Why a reload was refused.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refusal {
    /// The plugin, when known.
    pub plugin: Option<String>,
    /// The file or folder concerned, when known.
    pub file: Option<String>,
    /// The stage, when the refusal is a reload's.
    pub stage: Option<Stage>,
    /// The whole reason.
    pub reason: String,
}

impl OutcomeKind {
    /// The process's exit code for this result (one of [`exit`]).
    pub fn exit_code(self) -> u8 {
        match self {
            OutcomeKind::Accepted
            | OutcomeKind::Serving
            | OutcomeKind::Confirmed
            | OutcomeKind::RolledBack
            | OutcomeKind::Upgraded => exit::OK,
            OutcomeKind::Refused => exit::REFUSED,
            OutcomeKind::NoHost => exit::NO_HOST,
            OutcomeKind::Busy => exit::BUSY,
            OutcomeKind::Timeout => exit::TIMEOUT,
            OutcomeKind::Forbidden => exit::FORBIDDEN,
            OutcomeKind::Untrusted => exit::UNTRUSTED,
            OutcomeKind::Error => exit::ERROR,
        }
    }
}

impl Outcome {
    fn new(command: &'static str, socket: &Path, result: OutcomeKind, message: String) -> Self {
        Outcome {
            command,
            result,
            exit_code: result.exit_code(),
            socket: socket.to_string_lossy().into_owned(),
            message,
            generation: None,
            plugins: Vec::new(),
            ignored: Vec::new(),
            stage_ms: Vec::new(),
            total_ms: None,
            refusal: None,
            reload_in_progress: None,
            fingerprint: None,
            folder: None,
            memory: None,
            probation: None,
            last_probation: None,
            tasks: None,
            host_upgrade: None,
        }
    }

    /// Whether the request failed without an answer from a host.
    pub fn is_error(&self) -> bool {
        !matches!(
            self.result,
            OutcomeKind::Accepted
                | OutcomeKind::Refused
                | OutcomeKind::Busy
                | OutcomeKind::Serving
                | OutcomeKind::Confirmed
                | OutcomeKind::RolledBack
                | OutcomeKind::Upgraded
        )
    }
}

/// Sends `request` to the host on `socket` and says what it came to. Never fails: every
/// error is an [`Outcome`] with its message (each cause said once) and exit code.
pub fn ask(socket: &Path, request: &ControlRequest, timeout: Duration) -> Outcome {
    let command = match request {
        ControlRequest::Status => "status",
        ControlRequest::Confirm => "confirm",
        ControlRequest::Rollback => "rollback",
        ControlRequest::UpgradeHost { .. } => "upgrade-host",
        _ => "reload",
    };
    let answer = match send_request(socket, request, timeout) {
        Ok(answer) => answer,
        Err(error) => return failed(command, socket, error),
    };
    let unexpected = |other: &ControlResponse| {
        Outcome::new(command, socket, OutcomeKind::Error, format!("unexpected answer from the host: {other:?}"))
    };
    match answer {
        ControlResponse::Accepted { generation, plugins, ignored, stage_ms, total_ms, memory, probation, tasks }
            if command == "reload" =>
        {
            let mut message = format!("accepted: generation {generation} is serving (reload took {total_ms:.1} ms)");
            if let Some(p) = &probation {
                message.push_str(&format!(
                    "; on probation for {:.1} s, generation {} kept ready (confirm or rollback)",
                    p.period_ms as f64 / 1000.0,
                    p.previous
                ));
            }
            Outcome {
                probation,
                generation: Some(generation),
                plugins,
                ignored,
                stage_ms,
                total_ms: Some(total_ms),
                memory,
                tasks,
                ..Outcome::new(command, socket, OutcomeKind::Accepted, message)
            }
        }
        ControlResponse::Refused { reason, plugin, file, stage } => {
            let message = format!("refused: {reason}");
            let refusal = Refusal { plugin, file, stage, reason };
            Outcome { refusal: Some(refusal), ..Outcome::new(command, socket, OutcomeKind::Refused, message) }
        }
        ControlResponse::Busy { reason, reload } => {
            let message = format!("busy: {reason}; nothing was done, try again later");
            Outcome { reload_in_progress: reload, ..Outcome::new(command, socket, OutcomeKind::Busy, message) }
        }
        ControlResponse::Serving {
            generation,
            plugins,
            reload,
            fingerprint,
            folder,
            memory,
            probation,
            last_probation,
            tasks,
        } if command == "status" => {
            let mut message = match generation {
                Some(generation) => format!("serving generation {generation}"),
                None => "no generation loaded yet".to_string(),
            };
            if let Some(p) = &probation {
                message.push_str(&format!(
                    " on probation ({:.1} s left, {} panics of {} allowed, {} health checks passed; generation {} kept ready)",
                    p.remaining_ms as f64 / 1000.0,
                    p.panics,
                    p.max_panics,
                    p.health_checks_passed,
                    p.previous
                ));
            }
            Outcome {
                probation,
                last_probation,
                generation,
                plugins,
                reload_in_progress: reload,
                fingerprint,
                folder,
                memory,
                tasks,
                ..Outcome::new(command, socket, OutcomeKind::Serving, message)
            }
        }
        ControlResponse::ProbationEnded(end) if command == "confirm" || command == "rollback" => {
            let (kind, message) = match end.result {
                ProbationResult::Confirmed => (
                    OutcomeKind::Confirmed,
                    format!(
                        "confirmed: generation {} is permanent, generation {} is retired",
                        end.generation, end.previous
                    ),
                ),
                _ => (
                    OutcomeKind::RolledBack,
                    format!(
                        "rolled back: generation {} serves again, generation {} is retired (took {:.1} ms)",
                        end.previous, end.generation, end.took_ms
                    ),
                ),
            };
            Outcome { last_probation: Some(end), ..Outcome::new(command, socket, kind, message) }
        }
        ControlResponse::HostUpgraded { pid, program, took_ms, previous_pid } if command == "upgrade-host" => {
            let message = format!(
                "upgraded: the new host (pid {pid}, {program}) is ready after {took_ms:.0} ms; the old host (pid {previous_pid}) stopped accepting and drains its connections"
            );
            let upgrade = HostUpgrade { pid, program, took_ms, previous_pid };
            Outcome { host_upgrade: Some(upgrade), ..Outcome::new(command, socket, OutcomeKind::Upgraded, message) }
        }
        other => unexpected(&other),
    }
}

fn failed(command: &'static str, socket: &Path, error: ControlError) -> Outcome {
    let kind = match &error {
        ControlError::NoHost { .. } => OutcomeKind::NoHost,
        ControlError::Forbidden { .. } => OutcomeKind::Forbidden,
        ControlError::Untrusted { .. } => OutcomeKind::Untrusted,
        ControlError::Timeout { .. } => OutcomeKind::Timeout,
        _ => OutcomeKind::Error,
    };
    let mut outcome = Outcome::new(command, socket, kind, error.to_string());
    if kind == OutcomeKind::Timeout {
        // A stuck reload does not stop the host from answering `status` at once; ask it
        // what it is doing.
        if let Ok(ControlResponse::Serving { generation, reload, .. }) =
            send_request(socket, &ControlRequest::Status, Duration::from_secs(2))
        {
            outcome.generation = generation;
            if let Some(running) = &reload {
                outcome.message.push_str(&format!(" ({running})"));
            }
            if let Some(generation) = generation {
                outcome.message.push_str(&format!("; generation {generation} keeps serving"));
            }
            outcome.reload_in_progress = reload;
        }
    }
    outcome
}
