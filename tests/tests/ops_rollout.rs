//! The Ansible rollout of docs/ops/rollout.yml, for real: `ansible-playbook` (ansible-core,
//! which the test installs into target/ansible-venv on first use, as .ci/run does) drives three
//! hello hosts on this machine, each with its own plugin folder and control socket
//! (`ansible_connection=local`). A good build goes through the canary's probation and confirm,
//! then reaches the other two; a build that loads but fails (its `greet` panics, or errs so the
//! host's health check fails) is rolled back by the canary's host by itself, a good build whose
//! health command fails is rolled back by the playbook, and a build whose `on_load` fails is
//! refused by the canary: each time the rollout stops there, the other two never see the build,
//! and all three keep serving the good build. So does a rollout whose hotswap command is
//! missing, or answers `status --json` without the probation fields (an older command: the
//! canary is rolled back, never confirmed). Last, a host whose process died fails the rollout
//! when it is reached, its folder left as it was.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hotswap_tests::tools::{ansible_playbook, cargo_binary};
use hotswap_tests::{BuiltPlugin, build_plugin, build_plugin_with_cargo_args, workspace_root};

const HOSTS: [&str; 3] = ["canary", "web2", "web3"];

/// Kills the host processes when the test ends, however it ends.
struct Hosts(Vec<Child>);

impl Drop for Hosts {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `xtask status --json --socket S`.
fn status(xtask: &Path, socket: &Path) -> serde_json::Value {
    let output = Command::new(xtask).args(["status", "--json", "--socket"]).arg(socket).output().unwrap();
    assert!(output.status.success(), "status: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The generation `status` shows and the version of its plugin `foo`.
fn serving_foo(status: &serde_json::Value) -> (u64, String) {
    let plugin = status["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "foo").expect("foo serves");
    (status["generation"].as_u64().unwrap(), plugin["version"].as_str().unwrap().to_string())
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Runs the playbook on `build` with the extra variables `extra` (`name=value` or JSON), watching the
/// canary for 2 s, looking every second; returns whether it succeeded and its output.
fn playbook(ansible: &Path, inventory: &Path, build: &Path, extra: &[String]) -> (bool, String) {
    let mut command = Command::new(ansible);
    command
        .arg("-i")
        .arg(inventory)
        .arg(workspace_root().join("docs/ops/rollout.yml"))
        .arg("-e")
        .arg(format!("build_dir={}", build.display()))
        .args(["-e", "canary_watch_secs=2", "-e", "canary_poll_secs=1"]);
    for variable in extra {
        command.arg("-e").arg(variable);
    }
    let output = command
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// A build folder holding one build.
fn build_folder(root: &Path, name: &str, build: &BuiltPlugin) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir(&dir).unwrap();
    build.install(&dir);
    dir
}

/// Three hello hosts, `canary` first, serving `foo` and `bar`, and the inventory naming them.
struct Fleet {
    temp: tempfile::TempDir,
    hosts: Hosts,
    sockets: Vec<PathBuf>,
    plugin_dirs: Vec<PathBuf>,
    inventory: PathBuf,
    ansible: PathBuf,
    xtask: PathBuf,
}

impl Fleet {
    fn start(ansible: PathBuf, first: [&BuiltPlugin; 2]) -> Fleet {
        let host_binary = cargo_binary("hello-host", "hello-host");
        let xtask = cargo_binary("xtask", "xtask");
        let temp = tempfile::tempdir().unwrap();
        let python = ansible.with_file_name("python3");
        let mut inventory = String::from("[hotswap]\n");
        let mut fleet = Fleet {
            hosts: Hosts(Vec::new()),
            sockets: Vec::new(),
            plugin_dirs: Vec::new(),
            inventory: temp.path().join("inventory.ini"),
            temp,
            ansible,
            xtask,
        };
        for name in HOSTS {
            let home = fleet.temp.path().join(name);
            let plugins = home.join("plugins");
            std::fs::create_dir_all(&plugins).unwrap();
            for build in first {
                build.install(&plugins);
            }
            let socket = home.join("control.sock");
            let log = std::fs::File::create(home.join("host.log")).unwrap();
            let child = Command::new(&host_binary)
                .arg("--plugins")
                .arg(&plugins)
                .arg("--socket")
                .arg(&socket)
                .args(["--interval-ms", "100", "--health-interval-ms", "100"])
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            fleet.hosts.0.push(child);
            inventory.push_str(&format!(
                "{name} ansible_connection=local ansible_python_interpreter={} hotswap_plugin_dir={} hotswap_socket={} hotswap_cli={}\n",
                python.display(),
                plugins.display(),
                socket.display(),
                fleet.xtask.display(),
            ));
            fleet.sockets.push(socket);
            fleet.plugin_dirs.push(plugins);
        }
        std::fs::write(&fleet.inventory, &inventory).unwrap();
        for socket in &fleet.sockets {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !socket.exists() {
                assert!(Instant::now() < deadline, "host on {} did not start", socket.display());
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!(status(&fleet.xtask, socket)["generation"], 1);
        }
        fleet
    }

    fn playbook(&self, build: &Path, extra: &[String]) -> (bool, String) {
        playbook(&self.ansible, &self.inventory, build, extra)
    }

    fn status(&self, host: usize) -> serde_json::Value {
        status(&self.xtask, &self.sockets[host])
    }

    /// A rollout of `build` that must stop at the canary: the playbook fails with `expected` in
    /// its output, the canary's status has passed `canary` (its `last_probation`, or the whole
    /// status for a refusal), `web2` and `web3` are never touched, every plugin folder is as it
    /// was, and every host still serves `serving` (generation 2, with `foo` of `good`), its rounds
    /// going on. Returns how long the playbook took.
    fn stopped_at_the_canary(
        &mut self,
        build: &Path,
        extra: &[String],
        expected: &[&str],
        canary: impl FnOnce(&serde_json::Value),
        good: &BuiltPlugin,
    ) -> Duration {
        let before: Vec<Vec<String>> = self.plugin_dirs.iter().map(|d| files_in(d)).collect();
        let started = Instant::now();
        let (ok, output) = self.playbook(build, extra);
        let took = started.elapsed();
        assert!(!ok, "the rollout succeeded:\n{output}");
        for text in expected {
            assert!(output.contains(text), "no `{text}` in:\n{output}");
        }
        assert!(
            !output.contains("[web2]") && !output.contains("[web3]"),
            "hosts after the canary were touched:\n{output}"
        );
        canary(&self.status(0));
        for (index, dir) in self.plugin_dirs.iter().enumerate() {
            let status = self.status(index);
            assert!(status["probation"].is_null(), "{}: {status}", HOSTS[index]);
            assert_eq!(serving_foo(&status), (2, good.version()), "{}: {status}", HOSTS[index]);
            // The canary's copy was taken back out; the others never got one.
            assert_eq!(files_in(dir), before[index], "{}", HOSTS[index]);
        }
        self.assert_rounds_on(good);
        took
    }

    /// Every host is still running and its last round called `foo` of `build`.
    fn assert_rounds_on(&mut self, build: &BuiltPlugin) {
        let logs: Vec<usize> = HOSTS.iter().map(|name| self.log(name).len()).collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        for (index, name) in HOSTS.iter().enumerate() {
            // A round that started after this check did.
            let last = loop {
                let log = self.log(name);
                let last = log[logs[index]..].lines().rev().find(|l| l.contains("] foo ")).map(str::to_string);
                if let Some(last) = last {
                    break last;
                }
                assert!(Instant::now() < deadline, "{name}: no round within 20 s");
                std::thread::sleep(Duration::from_millis(50));
            };
            assert!(last.contains(&build.version()) && !last.contains("error"), "{name}: {last}");
        }
        for (index, child) in self.hosts.0.iter_mut().enumerate() {
            assert!(child.try_wait().unwrap().is_none(), "{} exited", HOSTS[index]);
        }
    }

    fn log(&self, host: &str) -> String {
        std::fs::read_to_string(self.temp.path().join(host).join("host.log")).unwrap()
    }
}

#[test]
fn a_canary_on_probation_passes_the_build_to_the_fleet_or_rolls_it_back_and_stops_the_rollout() {
    let ansible = match ansible_playbook() {
        Ok(path) => path,
        Err(why) => return hotswap_tests::skip_unless_ci(&why),
    };
    let started = Instant::now();
    const FOO: &str = "demo/hello/plugin/foo";
    let (foo, bar) = (build_plugin(FOO), build_plugin("demo/hello/plugin/bar"));
    // Other builds of foo (versions come from content, so another setting makes another
    // library and version).
    let foo_new = build_plugin_with_cargo_args(FOO, "rollout-good", true, &["--config", "profile.dev.debug=1"]);
    let foo_other = build_plugin_with_cargo_args(FOO, "rollout-other", true, &["--config", "profile.dev.debug=0"]);
    assert!(foo.version() != foo_new.version() && foo_new.version() != foo_other.version());
    // Builds of foo that load but fail in `greet`: an error, or a panic.
    let erring = build_plugin("tests/plugins/hello_faulty");
    let panicking =
        build_plugin_with_cargo_args("tests/plugins/hello_faulty", "panics", true, &["--features", "panics"]);
    // A real build whose `on_load` fails: every reload that picks it is refused.
    let broken = build_plugin("tests/plugins/fault_on_load");

    let mut fleet = Fleet::start(ansible, [&foo, &bar]);
    let root = fleet.temp.path().to_path_buf();
    let health_ran = root.join("health-ran");
    let health = |command: &str| serde_json::json!({ "hotswap_health_command": command }).to_string();

    // A good build: the canary reloads on probation, is watched, passes the health command and
    // is confirmed; then the other two reload.
    let good_started = Instant::now();
    let (ok, output) = fleet
        .playbook(&build_folder(&root, "build-good", &foo_new), &[health(&format!("touch {}", health_ran.display()))]);
    let good_took = good_started.elapsed();
    assert!(ok, "the good rollout failed:\n{output}");
    let confirmed_at = output.find("TASK [Confirm the canary's build]").unwrap_or_else(|| panic!("{output}"));
    assert!(output[confirmed_at..].contains("changed: [canary]"), "{output}");
    let web_reloaded_at = output.find("changed: [web2]").unwrap_or_else(|| panic!("{output}"));
    assert!(confirmed_at < web_reloaded_at && output[confirmed_at..].contains("changed: [web3]"), "{output}");
    assert!(health_ran.exists(), "the health command ran on the canary:\n{output}");
    let canary = fleet.status(0);
    assert_eq!(serving_foo(&canary), (2, foo_new.version()), "{canary}");
    let end = &canary["last_probation"];
    assert_eq!((end["result"].as_str(), end["automatic"].as_bool()), (Some("confirmed"), Some(false)), "{canary}");
    assert!(canary["probation"].is_null(), "{canary}");
    for index in 1..3 {
        let status = fleet.status(index);
        assert_eq!(serving_foo(&status), (2, foo_new.version()), "{status}");
        assert!(status["last_probation"].is_null(), "the fleet reloads without probation: {status}");
    }
    fleet.assert_rounds_on(&foo_new);

    // A build whose `greet` panics: the canary's host rolls it back at the first panic.
    let panicking_took = fleet.stopped_at_the_canary(
        &build_folder(&root, "build-panicking", &panicking),
        &[],
        &["rolled the build back by itself", "generation 3", "panicked"],
        |canary| {
            let end = &canary["last_probation"];
            assert_eq!((end["result"].as_str(), end["automatic"].as_bool()), (Some("rolled_back"), Some(true)));
            assert_eq!((end["generation"].as_u64(), end["previous"].as_u64()), (Some(3), Some(2)), "{canary}");
        },
        &foo_new,
    );

    // A build whose `greet` returns an error: the host's health check fails and rolls it back.
    fleet.stopped_at_the_canary(
        &build_folder(&root, "build-erring", &erring),
        &[],
        &["rolled the build back by itself", "health check of generation 4 failed", "the faulty foo cannot greet"],
        |canary| {
            let end = &canary["last_probation"];
            assert_eq!((end["result"].as_str(), end["automatic"].as_bool()), (Some("rolled_back"), Some(true)));
            assert_eq!(end["generation"].as_u64(), Some(4), "{canary}");
        },
        &foo_new,
    );

    // A good build whose health command fails: the playbook rolls the canary back.
    fleet.stopped_at_the_canary(
        &build_folder(&root, "build-unhealthy", &foo_other),
        &[health("false")],
        &["Run the health command on the canary", "rolled back: "],
        |canary| {
            let end = &canary["last_probation"];
            assert_eq!((end["result"].as_str(), end["automatic"].as_bool()), (Some("rolled_back"), Some(false)));
            assert_eq!((end["generation"].as_u64(), end["reason"].as_str()), (Some(5), Some("rolled back on request")));
        },
        &foo_new,
    );

    // A build the canary refuses to load: nothing to roll back, the rollout stops there.
    let broken_took = fleet.stopped_at_the_canary(
        &build_folder(&root, "build-broken", &broken),
        &[],
        &["refused", "fault_on_load refuses to load"],
        |canary| assert!(canary["last_probation"]["generation"] == 5, "{canary}"),
        &foo_new,
    );
    // The hotswap command is missing on the hosts: the canary's reload cannot even be asked
    // for; the rollout stops there and the copied build is taken back out.
    let missing = root.join("no-such-hotswap-cli");
    fleet.stopped_at_the_canary(
        &build_folder(&root, "build-no-cli", &foo_other),
        &[format!("hotswap_cli={}", missing.display())],
        &["failed the build at `Ask the host to reload`"],
        |canary| assert!(canary["last_probation"]["generation"] == 5, "{canary}"),
        &foo_new,
    );

    // An older hotswap command whose `status --json` has no probation fields: the playbook
    // cannot see the canary on probation, so it must not confirm it or go on: it stops at the
    // canary and rolls it back.
    let older = root.join("older-cli");
    std::fs::write(
        &older,
        format!(
            "#!/bin/sh\nif [ \"$1\" = status ]; then\n  {xtask} \"$@\" | {python} -c 'import json, sys; d = json.load(sys.stdin); d.pop(\"probation\", None); d.pop(\"last_probation\", None); print(json.dumps(d))'\nelse\n  exec {xtask} \"$@\"\nfi\n",
            xtask = fleet.xtask.display(),
            python = fleet.ansible.with_file_name("python3").display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&older, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fleet.stopped_at_the_canary(
        &build_folder(&root, "build-older-cli", &foo_other),
        &[format!("hotswap_cli={}", older.display())],
        &["failed the build at `Watch the canary on probation`", "rolled back: "],
        |canary| {
            let end = &canary["last_probation"];
            assert_eq!(
                (end["result"].as_str(), end["automatic"].as_bool()),
                (Some("rolled_back"), Some(false)),
                "{canary}"
            );
        },
        &foo_new,
    );

    // web3's host is gone (its process died) when the rollout reaches it: the canary was
    // confirmed and web2 reloaded beside it, web3's reload fails, the playbook fails naming
    // it, and web3's folder is as it was (the copied build taken back out, so a restarted
    // host does not pick it up).
    let web3 = &mut fleet.hosts.0[2];
    web3.kill().unwrap();
    web3.wait().unwrap();
    let web3_before = files_in(&fleet.plugin_dirs[2]);
    let (ok, output) = fleet.playbook(&build_folder(&root, "build-web3-down", &foo_other), &[]);
    assert!(!ok, "the rollout succeeded with web3 down:\n{output}");
    assert!(output.contains("web3 failed the build at `Ask the host to reload`"), "{output}");
    for (index, name) in HOSTS.iter().enumerate().take(2) {
        let status = fleet.status(index);
        assert_eq!(serving_foo(&status).1, foo_other.version(), "{name}: {status}");
    }
    assert_eq!(fleet.status(0)["last_probation"]["result"], "confirmed");
    assert_eq!(files_in(&fleet.plugin_dirs[2]), web3_before, "web3's folder");

    eprintln!(
        "rollout test took {:.1?} (good rollout to 3 hosts {good_took:.1?}, rolled back by the canary {panicking_took:.1?}, refused by the canary {broken_took:.1?})",
        started.elapsed()
    );
}
