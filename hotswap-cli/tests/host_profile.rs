//! `build` and `watch` check the profile the running host needs before building: a real host
//! (a plugin manager and its control socket, in this process) answers `status` with its
//! fingerprint and folder, and a build of the other profile into that folder stops at once,
//! with one line naming the flag; the same build into another folder is not this host's
//! business.

use std::path::Path;
use std::process::Command;

use hotswap_cli::host_profile::{Evidence, check};
use hotswap_cli::options::Profile;
use hotswap_runtime::{ControlServer, PluginManager};

mod common;
use common::repo;

/// This test's profile, which is the in-process host's, and the other one.
fn profiles() -> (Profile, Profile, &'static str) {
    if cfg!(debug_assertions) {
        (Profile::Dev, Profile::Release, "dev (debug assertions on)")
    } else {
        (Profile::Release, Profile::Dev, "release (debug assertions off)")
    }
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-hotswap")).current_dir(repo()).args(args).output().unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn a_build_of_the_other_profile_than_the_running_host_stops_before_building() {
    let temp = tempfile::tempdir().unwrap();
    let (folder, other_folder) = (temp.path().join("bin"), temp.path().join("elsewhere"));
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("notes.txt"), "not a plugin").unwrap();
    let socket = temp.path().join("control.sock");
    let manager = PluginManager::builder(&folder).build().unwrap();
    // Nothing loaded yet (the folder holds no plugin): the host answers `status` all the same.
    let _server = ControlServer::start(manager.clone(), &socket).unwrap();
    let (own, other, own_name) = profiles();

    // `status --json` shows what the check reads: the host's fingerprint and folder.
    let status = cli(&["status", "--json", "--socket", socket.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["fingerprint"], hotswap_runtime::abi::FINGERPRINT, "{json}");
    assert_eq!(json["folder"], folder.to_str().unwrap(), "{json}");

    // The host's own profile passes, and the host is what said so.
    let needed = check(&folder, &socket, own).expect("the host's profile").expect("known");
    assert_eq!((needed.profile, needed.evidence), (own, Evidence::Host { socket: socket.clone() }));
    // A build into a folder the host does not load is not checked against it.
    assert_eq!(check(&other_folder, &socket, other), Ok(None));

    // The other profile, from the command line: one line naming the flag, nothing built.
    let plugin = repo().join("demo/hello/plugin/foo");
    let (s, p, f) = (socket.to_str().unwrap(), plugin.to_str().unwrap(), folder.to_str().unwrap());
    let flag = if own == Profile::Dev { "with --debug" } else { "without --debug" };
    let expected = format!(
        "error: the host on {s} is a {own_name} build: build {flag} (or pass --no-profile-check to build {} anyway)",
        other.cargo_name()
    );
    let other_flag: &[&str] = if other == Profile::Dev { &["--debug"] } else { &[] };
    for command in ["build", "watch"] {
        let mut args = vec![command, "--socket", s, p, f];
        args.extend(other_flag);
        let output = cli(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert_eq!(stderr.trim(), expected, "{command}");
    }
    assert_eq!(names(&folder), ["notes.txt"], "nothing built into the host's folder");
    assert!(manager.current().is_none(), "the host was only asked its status");
}
