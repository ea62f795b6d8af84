//! `reload` and `status`: their flags, and the answer printed ([`crate::answer::print`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use hotswap_runtime::{ControlRequest, default_socket_path};

/// Arguments of `reload`.
#[derive(Args, Debug)]
pub struct ReloadArgs {
    /// Control socket of the host [default: $HOTSWAP_SOCKET, else $XDG_RUNTIME_DIR/hotswap/control.sock, else `/tmp/hotswap-<uid>/control.sock`]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Seconds to wait for the host's answer.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Print one JSON object instead of text (schema in the guide, section 6).
    #[arg(long)]
    json: bool,
    /// Put the new generation on probation for this many seconds: the previous generation
    /// stays loaded and ready until `confirm`, `rollback`, a failed check, or the end of the
    /// period with every check passed.
    #[arg(long, value_name = "SECS")]
    probation: Option<f64>,
    /// With --probation: plugin panics tolerated during the period; one more rolls back.
    #[arg(long, value_name = "N", requires = "probation")]
    max_panics: Option<u64>,
}

/// Arguments of `status`, `confirm` and `rollback`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Control socket of the host (same default as `reload`).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Seconds to wait for the host's answer.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Print one JSON object instead of text (schema in the guide, section 6).
    #[arg(long)]
    json: bool,
}

/// Arguments of `upgrade-host`.
#[derive(Args, Debug)]
pub struct UpgradeHostArgs {
    /// Control socket of the host (same default as `reload`).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The new host binary [default: the path the running host was started from].
    #[arg(long, value_name = "PATH")]
    program: Option<PathBuf>,
    /// Seconds the new host has to load its plugins and say it is ready; then it is killed
    /// and the old host keeps serving.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    ready_timeout: f64,
    /// Seconds to wait for the host's answer [default: --ready-timeout + 30].
    #[arg(long)]
    timeout: Option<u64>,
    /// Print one JSON object instead of text (schema in the guide, section 6).
    #[arg(long)]
    json: bool,
}

/// `upgrade-host`: exit codes in [`crate::reload::exit`].
pub fn upgrade_host(args: UpgradeHostArgs) -> Result<ExitCode> {
    if !(args.ready_timeout.is_finite() && args.ready_timeout >= 0.001) {
        anyhow::bail!("--ready-timeout {}: give a number of seconds of at least 0.001", args.ready_timeout);
    }
    let program = match args.program {
        // The host may run in another folder: send an absolute path.
        Some(path) => Some(std::path::absolute(&path)?.to_string_lossy().into_owned()),
        None => None,
    };
    let ready_timeout_ms = (args.ready_timeout * 1000.0).round() as u64;
    let timeout = args.timeout.unwrap_or(ready_timeout_ms / 1000 + 30);
    ask(
        args.socket,
        ControlRequest::UpgradeHost { program, ready_timeout_ms: Some(ready_timeout_ms) },
        timeout,
        args.json,
    )
}

/// `reload`: exit codes in [`crate::reload::exit`].
pub fn reload(args: ReloadArgs) -> Result<ExitCode> {
    let request = match args.probation {
        None => ControlRequest::Reload,
        Some(secs) if secs.is_finite() && secs >= 0.001 => {
            ControlRequest::ReloadOnProbation { period_ms: (secs * 1000.0).round() as u64, max_panics: args.max_panics }
        }
        Some(secs) => anyhow::bail!("--probation {secs}: give a number of seconds of at least 0.001"),
    };
    ask(args.socket, request, args.timeout, args.json)
}

/// `confirm`: exit codes in [`crate::reload::exit`].
pub fn confirm(args: StatusArgs) -> Result<ExitCode> {
    ask(args.socket, ControlRequest::Confirm, args.timeout, args.json)
}

/// `rollback`: exit codes in [`crate::reload::exit`].
pub fn rollback(args: StatusArgs) -> Result<ExitCode> {
    ask(args.socket, ControlRequest::Rollback, args.timeout, args.json)
}

/// `status`: exit codes in [`crate::reload::exit`].
pub fn status(args: StatusArgs) -> Result<ExitCode> {
    ask(args.socket, ControlRequest::Status, args.timeout, args.json)
}

fn ask(socket: Option<PathBuf>, request: ControlRequest, timeout: u64, json: bool) -> Result<ExitCode> {
    let socket = socket.unwrap_or_else(default_socket_path);
    crate::answer::print(&crate::reload::ask(&socket, &request, Duration::from_secs(timeout)), json)
}
