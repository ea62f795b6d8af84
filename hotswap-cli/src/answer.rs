//! Printing a host's answer ([`Outcome`]): the text or JSON that `reload` and `status` print,
//! and the one-line form each `watch` cycle ends with.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use hotswap_runtime::PluginAnswer;

use crate::reload::{Outcome, OutcomeKind};

/// What a refused reload leaves serving, said after the reason.
const PREVIOUS_KEEPS_SERVING: &str = "the previous generation keeps serving";

/// `name version (origin)` of a plugin in an answer.
fn plugin(p: &PluginAnswer) -> String {
    format!("{} {} ({})", p.name, p.version, p.origin)
}

/// Prints `outcome` as `reload` and `status` do (text, errors on standard error; or one JSON
/// object with `json`) and returns its exit code.
pub fn print(outcome: &Outcome, json: bool) -> Result<ExitCode> {
    let code = ExitCode::from(outcome.exit_code);
    if json {
        println!("{}", serde_json::to_string(outcome)?);
        return Ok(code);
    }
    if outcome.is_error() {
        eprintln!("error: {}", outcome.message);
        return Ok(code);
    }
    println!("{}", outcome.message);
    for p in &outcome.plugins {
        println!("  {} sha256 {}", plugin(p), p.sha256);
    }
    for i in &outcome.ignored {
        println!("  ignored {}: {}", i.file, i.note);
    }
    if let Some(memory) = &outcome.memory {
        println!("memory: {memory}");
    }
    if let Some(tasks) = &outcome.tasks {
        let counts: Vec<String> = tasks.iter().map(ToString::to_string).collect();
        println!("tasks: {}", if counts.is_empty() { "none".to_string() } else { counts.join(" ") });
    }
    match outcome.result {
        OutcomeKind::Refused if outcome.command == "reload" => println!("{PREVIOUS_KEEPS_SERVING}"),
        OutcomeKind::Serving => {
            if let Some(running) = &outcome.reload_in_progress {
                println!("{running}");
            }
            if let Some(end) = &outcome.last_probation {
                println!(
                    "last probation: generation {} {} ({}{})",
                    end.generation,
                    match end.result {
                        hotswap_runtime::ProbationResult::Confirmed => "confirmed",
                        _ => "rolled back",
                    },
                    if end.automatic { "by the host: " } else { "" },
                    end.reason
                );
            }
        }
        _ => {}
    }
    Ok(code)
}

/// The end of a `watch` cycle's line for a reload's `outcome`; `output_dir` is where a host
/// that is not running yet would load from.
pub fn one_line(outcome: &Outcome, output_dir: &Path) -> String {
    match outcome.result {
        OutcomeKind::Accepted => format!(
            "reload accepted: generation {} in {:.1} ms, serving {}",
            outcome.generation.unwrap_or_default(),
            outcome.total_ms.unwrap_or_default(),
            outcome.plugins.iter().map(plugin).collect::<Vec<_>>().join(", ")
        ),
        OutcomeKind::Refused => {
            let reason = outcome.refusal.as_ref().map_or(&outcome.message, |r| &r.reason);
            format!("reload REFUSED: {reason}; {PREVIOUS_KEEPS_SERVING}")
        }
        OutcomeKind::Busy => format!("reload not done, the host is {}", outcome.message),
        OutcomeKind::NoHost => {
            format!("no host is listening on {} (start it; it will load {})", outcome.socket, output_dir.display())
        }
        _ => format!("reload request failed: {}", outcome.message),
    }
}
