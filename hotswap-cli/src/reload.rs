//! `reload` and `status`: requests to a running host's control socket.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use hotswap_runtime::{ControlRequest, ControlResponse, default_socket_path, send_request};

#[derive(Args, Debug)]
pub struct ReloadArgs {
    /// Control socket of the host [default: $HOTSWAP_SOCKET, else $XDG_RUNTIME_DIR/hotswap/control.sock, else /tmp/hotswap-<uid>/control.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Seconds to wait for the host's answer.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Control socket of the host (same default as `reload`).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print the host's answer as JSON (generation, and each plugin's name, version and
    /// sha256), one line.
    #[arg(long)]
    json: bool,
}

/// Exit codes: 0 accepted, 1 refused, 2 no host or another error.
pub fn reload(args: ReloadArgs) -> Result<ExitCode> {
    let socket = args.socket.unwrap_or_else(default_socket_path);
    let answer = send_request(&socket, &ControlRequest::Reload, Duration::from_secs(args.timeout))?;
    match answer {
        ControlResponse::Accepted { generation, plugins, total_ms } => {
            println!("accepted: generation {generation} is serving (reload took {total_ms:.1} ms)");
            for p in plugins {
                println!("  {} {} ({}) sha256 {}", p.name, p.version, p.note, p.sha256);
            }
            Ok(ExitCode::SUCCESS)
        }
        ControlResponse::Refused { reason } => {
            println!("refused: {reason}");
            println!("the previous generation keeps serving");
            Ok(ExitCode::from(1))
        }
        other => anyhow::bail!("unexpected answer from the host: {other:?}"),
    }
}

pub fn status(args: StatusArgs) -> Result<ExitCode> {
    let socket = args.socket.unwrap_or_else(default_socket_path);
    let answer = send_request(&socket, &ControlRequest::Status, Duration::from_secs(10))?;
    if args.json && matches!(answer, ControlResponse::Serving { .. }) {
        println!("{}", serde_json::to_string(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    match answer {
        ControlResponse::Serving { generation: Some(generation), plugins } => {
            println!("serving generation {generation}");
            for p in plugins {
                println!("  {} {} sha256 {}", p.name, p.version, p.sha256);
            }
        }
        ControlResponse::Serving { generation: None, .. } => println!("no generation loaded yet"),
        other => anyhow::bail!("unexpected answer from the host: {other:?}"),
    }
    Ok(ExitCode::SUCCESS)
}
