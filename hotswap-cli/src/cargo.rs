//! Running `cargo build` with JSON messages: the command both kinds of build start from,
//! spawning it, handing each of cargo's messages to the caller, and a typed error when cargo
//! cannot be run or the build fails.

use std::io::BufReader;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use cargo_metadata::Message;

use crate::options::{CargoOutput, Profile};

/// The cargo to run: `$CARGO` (set when run by cargo), else `cargo`.
pub fn program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Why a [`CargoBuild`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CargoError {
    /// Cargo could not be started.
    #[error("cannot run {cargo}")]
    Spawn {
        /// The program tried.
        cargo: String,
        /// Why it could not run.
        #[source]
        source: std::io::Error,
    },
    /// Cargo's standard output could not be read or waited for.
    #[error("reading cargo's messages")]
    Messages(#[source] std::io::Error),
    /// Cargo ran and the build failed.
    #[error("cargo build of {what} failed ({status}); the output folder was not touched{}", shown(.diagnostics))]
    Failed {
        /// What was built (`greeter`, `the static host game`).
        what: String,
        /// Cargo's exit status.
        status: ExitStatus,
        /// Cargo's diagnostics, when its output was captured ([`CargoOutput::Capture`]),
        /// without its progress lines.
        diagnostics: Vec<String>,
    },
}

fn shown(diagnostics: &[String]) -> String {
    if diagnostics.is_empty() { String::new() } else { format!("\n{}", diagnostics.join("\n")) }
}

/// One `cargo build --manifest-path <crate> --message-format=json-render-diagnostics`, in the
/// given profile; add the targets, flags and environment with [`CargoBuild::command`], then
/// [`CargoBuild::run`] it.
#[derive(Debug)]
pub struct CargoBuild {
    command: Command,
    what: String,
}

impl CargoBuild {
    /// The build of the crate whose manifest is `manifest_path`; `what` names it in errors.
    pub fn new(manifest_path: &Path, profile: Profile, what: impl Into<String>) -> CargoBuild {
        let mut command = Command::new(program());
        command.arg("build").arg("--manifest-path").arg(manifest_path).arg("--message-format=json-render-diagnostics");
        if profile == Profile::Release {
            command.arg("--release");
        }
        CargoBuild { command, what: what.into() }
    }

    /// The command, to add arguments and environment to.
    pub fn command(&mut self) -> &mut Command {
        &mut self.command
    }

    /// Runs the build, handing each of cargo's messages to `on`; returns the messages as JSON
    /// lines when `keep_messages` is set (for `--leave-temps`), else nothing. With `verbose`,
    /// prints the command on standard error first.
    pub fn run(
        mut self,
        output: CargoOutput,
        keep_messages: bool,
        verbose: bool,
        mut on: impl FnMut(Message),
    ) -> Result<Vec<u8>, CargoError> {
        let capture = output == CargoOutput::Capture;
        self.command.stdout(Stdio::piped()).stderr(if capture { Stdio::piped() } else { Stdio::inherit() });
        if verbose {
            eprintln!("running: {:?}", self.command);
        }
        let mut child = self.command.spawn().map_err(|source| CargoError::Spawn {
            cargo: self.command.get_program().to_string_lossy().into_owned(),
            source,
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        // Drain stderr on its own thread so cargo never blocks on a full pipe.
        let stderr_reader = child.stderr.take().map(|mut stderr| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
                text
            })
        });
        let mut log = Vec::new();
        for message in Message::parse_stream(BufReader::new(stdout)) {
            let message = message.map_err(CargoError::Messages)?;
            if keep_messages {
                serde_json::to_writer(&mut log, &message).expect("a cargo message serializes");
                log.push(b'\n');
            }
            on(message);
        }
        let status = child.wait().map_err(CargoError::Messages)?;
        let stderr = stderr_reader.map(|t| t.join().unwrap_or_default()).unwrap_or_default();
        if !status.success() {
            let diagnostics = stderr
                .lines()
                .filter(|l| !l.trim_start().starts_with("Compiling") && !l.trim_start().starts_with("Blocking"))
                .map(str::to_string)
                .collect();
            return Err(CargoError::Failed { what: self.what, status, diagnostics });
        }
        Ok(log)
    }
}
