//! The library API behind the commands, called as a tool of your own would: plain options, no
//! command line. Each answer is checked against what the command line says for the same
//! request, so the two cannot drift apart.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hotswap_cli::BuildOptions;
use hotswap_cli::options::Profile;
use hotswap_cli::reload::{OutcomeKind, exit};
use hotswap_runtime::ControlRequest;

mod common;
use common::{ok, repo};

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-hotswap")).current_dir(repo()).args(args).output().unwrap()
}

/// `plugin_build::stamp` with options gives the version `build --print-stamp` prints with the
/// flags those options stand for; another profile gives another version.
#[test]
fn the_stamp_from_options_is_the_stamp_of_the_same_flags() {
    let out = tempfile::tempdir().unwrap();
    let plugin = repo().join("demo/hello/plugin/foo");
    let mut options = BuildOptions::default();
    options.profile = Profile::Dev;
    options.cargo_args = vec!["--features".into(), "loud".into()];
    let library = hotswap_cli::plugin_build::stamp(&plugin, out.path(), &options).unwrap();
    let printed = ok(
        cli(&[
            "build",
            "--print-stamp",
            "--debug",
            plugin.to_str().unwrap(),
            out.path().to_str().unwrap(),
            "--",
            "--features",
            "loud",
        ]),
        "build --print-stamp",
    );
    assert_eq!(printed.trim(), library.version);

    let release = hotswap_cli::plugin_build::stamp(&plugin, out.path(), &BuildOptions::default()).unwrap();
    assert_ne!(release.version, library.version, "the profile is an input of the stamp");
}

/// A static host build refuses the per-plugin options before it builds anything, as the
/// command line refuses their flags.
#[test]
fn a_static_build_refuses_per_plugin_options() {
    let out = tempfile::tempdir().unwrap();
    let host = repo().join("demo/slink/host");
    let mut options = BuildOptions::default();
    options.include = vec!["src/lib.rs".into()];
    let error = hotswap_cli::static_build::build(&host, out.path(), &options).unwrap_err();
    let cli_error = cli(&[
        "build",
        "--static-linking",
        "--include",
        "src/lib.rs",
        host.to_str().unwrap(),
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(cli_error.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&cli_error.stderr);
    assert!(stderr.contains(&error.to_string()), "{stderr}\n{error}");
    assert!(error.to_string().contains("--include, --exclude and --live-prefix"), "{error}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "nothing written");
}

/// With no host on the socket, `reload::ask` says so (exit code 2), `answer::one_line` (a
/// watch cycle's end) names the socket and the folder to load, and `reload --json` prints the
/// same outcome.
#[test]
fn no_host_is_one_outcome_for_the_library_the_watch_line_and_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let outcome = hotswap_cli::reload::ask(&socket, &ControlRequest::Reload, Duration::from_secs(5));
    assert_eq!(outcome.result, OutcomeKind::NoHost);
    assert_eq!(outcome.exit_code, exit::NO_HOST);
    let line = hotswap_cli::answer::one_line(&outcome, Path::new("bin"));
    assert_eq!(line, format!("no host is listening on {} (start it; it will load bin)", socket.display()));

    let output = cli(&["reload", "--json", "--timeout", "5", "--socket", socket.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(i32::from(exit::NO_HOST)));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json, serde_json::to_value(&outcome).unwrap());
}
