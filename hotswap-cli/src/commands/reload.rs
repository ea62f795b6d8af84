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
}

/// Arguments of `status`.
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

/// `reload`: exit codes in [`crate::reload::exit`].
pub fn reload(args: ReloadArgs) -> Result<ExitCode> {
    ask(args.socket, ControlRequest::Reload, args.timeout, args.json)
}

/// `status`: exit codes in [`crate::reload::exit`].
pub fn status(args: StatusArgs) -> Result<ExitCode> {
    ask(args.socket, ControlRequest::Status, args.timeout, args.json)
}

fn ask(socket: Option<PathBuf>, request: ControlRequest, timeout: u64, json: bool) -> Result<ExitCode> {
    let socket = socket.unwrap_or_else(default_socket_path);
    crate::answer::print(&crate::reload::ask(&socket, &request, Duration::from_secs(timeout)), json)
}
