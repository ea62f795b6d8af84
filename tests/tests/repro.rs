//! Reproducible plugin builds (issue 16) and the build's output folder (issue 12, section 6),
//! with the real `cargo xtask build`, real cargo and a real host.
//!
//! Builds that must start from other paths use copies of the needed crates (hotswap-runtime,
//! hotswap-build, templates, the hello demo's plugins) in `target/hotswap-test-repro/<name>`:
//! the folders are fixed so that cargo's artifacts stay warm between runs, and each test
//! copies the sources afresh. The tests share those copies, so they take turns.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotswap_tests::workspace_root;

/// The tests edit shared copies of the crates: one at a time.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `cargo xtask <args>` from the workspace root, offline: every package its builds need
/// was fetched first ([`fetched`]).
fn xtask<A: AsRef<OsStr>>(args: &[A]) -> Output {
    fetched();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Command::new(cargo)
        .current_dir(workspace_root())
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(args)
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .expect("running cargo xtask")
}

/// Once per process: `cargo fetch --locked --target <this platform>`, so that the offline
/// builds below (xtask itself, and the copies' plugins with their build dependencies) find
/// every package they need even when this test binary was built alone (`cargo test -p
/// hotswap-tests`) from an empty cargo home. Offline first, so that a machine whose cargo home
/// holds them all makes no request; only this platform's packages, as a new machine's `cargo
/// test` downloads (so nothing below may rely on another platform's, which the lock also
/// names).
fn fetched() {
    static FETCHED: std::sync::Once = std::sync::Once::new();
    FETCHED.call_once(|| {
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let version = Command::new(rustc).arg("-vV").output().expect("running rustc -vV");
        let host = text(&version.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
            .expect("rustc -vV names the host");
        let fetch = |offline: bool| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut command = Command::new(cargo);
            command.current_dir(workspace_root()).args(["fetch", "--locked", "--quiet", "--target", &host]);
            if offline {
                command.arg("--offline");
            }
            command.output().expect("running cargo fetch")
        };
        if !fetch(true).status.success() {
            let online = fetch(false);
            assert!(online.status.success(), "cargo fetch --target {host}: {}", text(&online.stderr));
        }
    });
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `build <flags…> <crate> <out> [-- cargo args]`, from `extra` = flags, then `--` and cargo
/// arguments.
fn build_args(first: &str, crate_dir: &Path, out: &Path, extra: &[&str]) -> Vec<OsString> {
    let (flags, cargo_args) = match extra.iter().position(|a| *a == "--") {
        Some(i) => (&extra[..i], &extra[i..]),
        None => (extra, &[][..]),
    };
    let mut args: Vec<OsString> = vec!["build".into(), first.into()];
    args.extend(flags.iter().map(OsString::from));
    args.extend([crate_dir.as_os_str().to_owned(), out.as_os_str().to_owned()]);
    args.extend(cargo_args.iter().map(OsString::from));
    args
}

/// `cargo xtask build --debug <crate> <out> [extra…]`, which must succeed; returns stdout and
/// stderr.
fn build(crate_dir: &Path, out: &Path, extra: &[&str]) -> (String, String) {
    let output = xtask(&build_args("--debug", crate_dir, out, extra));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "cargo xtask build {} failed:\n{stdout}\n{stderr}", crate_dir.display());
    (stdout, stderr)
}

/// The version `build --print-stamp` gives.
fn stamp(crate_dir: &Path, extra: &[&str]) -> String {
    let out = tempfile::tempdir().unwrap();
    let output = xtask(&build_args("--print-stamp", crate_dir, out.path(), extra));
    assert!(output.status.success(), "print-stamp failed: {}", text(&output.stderr));
    let version = text(&output.stdout).trim().to_string();
    assert!(!version.is_empty() && !version.contains('\n'), "{version:?}");
    version
}

/// The `.so` files in `dir`, by name.
fn libraries(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "so"))
        .collect();
    found.sort();
    found
}

fn sha256(path: &Path) -> String {
    hotswap_runtime::inspect::sha256_hex(&std::fs::read(path).unwrap())
}

fn library_of(dir: &Path, plugin: &str) -> PathBuf {
    let mut matching: Vec<PathBuf> = libraries(dir)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{plugin}@")))
        .collect();
    matching.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    matching.pop().unwrap_or_else(|| panic!("no library of {plugin} in {}", dir.display()))
}

/// A workspace of its own at `target/hotswap-test-repro/<name>` holding copies of the crates a
/// hello plugin needs, sources copied afresh (its own `target/` kept). Bar gets a feature
/// `loud` (which changes nothing in its code) so that builds with and without it can be told
/// apart.
fn checkout(name: &str) -> PathBuf {
    let root = workspace_root();
    let dir = root.join("target").join("hotswap-test-repro").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n != "target") {
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    for folder in [
        "hotswap-abi",
        "hotswap-runtime",
        "hotswap-build",
        "templates",
        "demo/hello/plugin/foo",
        "demo/hello/plugin/bar",
    ] {
        copy_tree(&root.join(folder), &dir.join(folder));
    }
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let start = manifest.find("members = [").unwrap();
    let end = start + manifest[start..].find(']').unwrap() + 1;
    let members = r#"members = ["hotswap-abi", "hotswap-runtime", "hotswap-build", "demo/hello/plugin/*"]"#;
    std::fs::write(dir.join("Cargo.toml"), format!("{}{members}{}", &manifest[..start], &manifest[end..])).unwrap();
    let bar = dir.join("demo/hello/plugin/bar/Cargo.toml");
    let with_feature = std::fs::read_to_string(&bar).unwrap() + "\n[features]\nloud = []\n";
    std::fs::write(bar, with_feature).unwrap();
    // The copied Cargo.lock is the whole repository's; cargo trims it to this smaller workspace
    // at its first resolve (dropping, say, features' dependencies that only other members
    // enable). Let it do so now, so every stamp below sees the lock a build sees, as in a
    // real workspace whose lock is settled. `cargo update --workspace` resolves from the
    // registry index alone and keeps every locked version: unlike `cargo metadata`, it needs no
    // package downloaded, so it works offline on a new machine, whose cargo home holds only
    // this platform's packages (not, say, macOS's kqueue, which the lock also names).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let settled =
        Command::new(cargo).args(["update", "--workspace", "--offline", "--quiet"]).current_dir(&dir).output().unwrap();
    assert!(settled.status.success(), "cargo update --workspace in {}: {}", dir.display(), text(&settled.stderr));
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// (size, modification time, inode) of a file: what a write would change.
fn identity(path: &Path) -> (u64, std::time::SystemTime, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap();
    (m.len(), m.modified().unwrap(), m.ino())
}

#[test]
fn building_an_unchanged_plugin_again_gives_the_same_name_and_bytes_and_writes_nothing() {
    let _turn = turn();
    let bar = workspace_root().join("demo/hello/plugin/bar");
    let out = tempfile::tempdir().unwrap();
    let (first, _) = build(&bar, out.path(), &[]);
    assert!(first.starts_with("built bar "), "{first}");
    let library = library_of(out.path(), "bar");
    let manifest = library.with_extension("json");
    let (library_before, manifest_before) = (identity(&library), identity(&manifest));
    let digest = sha256(&library);

    let (second, _) = build(&bar, out.path(), &[]);
    assert!(second.starts_with("unchanged since "), "{second}");
    assert!(second.contains("kept"), "{second}");
    assert_eq!(libraries(out.path()), vec![library.clone()], "the same name, no second file");
    assert_eq!(sha256(&library), digest);
    assert_eq!(identity(&library), library_before, "the library was not written again");
    assert_eq!(identity(&manifest), manifest_before, "the manifest was not written again");
    // The library, its manifest and its split-out debug info.
    let files: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(files.len() <= 3, "nothing else was left: {files:?}");

    // The manifest keeps the time the bytes were first built, which the build reports.
    let kept: hotswap_runtime::Manifest = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert!(second.contains(&kept.built_at), "{second} / {}", kept.built_at);
    assert_eq!(kept.sha256, digest);

    // A lost manifest is written again; the library still is not.
    std::fs::remove_file(&manifest).unwrap();
    let (third, _) = build(&bar, out.path(), &[]);
    assert!(third.starts_with("unchanged since "), "{third}");
    assert!(manifest.exists());
    assert_eq!(identity(&library), library_before);
}

#[test]
fn two_checkouts_at_different_paths_build_the_same_bytes() {
    let _turn = turn();
    let (a, b) = (checkout("a"), checkout("b"));
    let (out_a, out_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_, stderr_a) = build(&a.join("demo/hello/plugin/foo"), out_a.path(), &["--reproducible"]);
    let (_, stderr_b) = build(&b.join("demo/hello/plugin/foo"), out_b.path(), &["--reproducible"]);
    let (lib_a, lib_b) = (library_of(out_a.path(), "foo"), library_of(out_b.path(), "foo"));
    assert_eq!(lib_a.file_name(), lib_b.file_name(), "same inputs, same name");
    assert_eq!(sha256(&lib_a), sha256(&lib_b), "same inputs, same bytes");
    for (stderr, dir) in [(&stderr_a, &a), (&stderr_b, &b)] {
        assert!(!stderr.contains("note: the library contains"), "{stderr}");
        let bytes = std::fs::read(library_of(if dir == &a { out_a.path() } else { out_b.path() }, "foo")).unwrap();
        let needle = dir.as_os_str().as_encoded_bytes();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{} is embedded in the library", dir.display());
    }
}

#[test]
fn every_input_change_gives_a_new_version() {
    let _turn = turn();
    let dir = checkout("a");
    let bar = dir.join("demo/hello/plugin/bar");
    let base = stamp(&bar, &["--debug"]);
    assert_eq!(stamp(&bar, &["--debug"]), base, "same inputs, same stamp");
    assert_eq!(stamp(&bar, &["--debug", "--", "--offline", "-j", "1"]), base, "arguments that change nothing");
    let changed = [
        ("the profile", stamp(&bar, &[])),
        ("a feature", stamp(&bar, &["--debug", "--", "--features", "loud"])),
        ("the live prefix", stamp(&bar, &["--debug", "--live-prefix", "hot_"])),
        ("path remapping", stamp(&bar, &["--debug", "--reproducible"])),
        ("an include pattern", stamp(&bar, &["--debug", "--include", "^src/lib.rs$"])),
    ];
    for (what, version) in &changed {
        assert_ne!(*version, base, "{what} must change the version");
    }

    // A resolved dependency version in Cargo.lock (arc-swap is a dependency of the runtime).
    let lock = dir.join("Cargo.lock");
    let original = std::fs::read_to_string(&lock).unwrap();
    let entry = "name = \"arc-swap\"\nversion = \"";
    let at = original.find(entry).expect("arc-swap is locked") + entry.len();
    let end = at + original[at..].find('"').unwrap();
    let edited = format!("{}{}.999{}", &original[..at], &original[at..end], &original[end..]);
    std::fs::write(&lock, edited).unwrap();
    let with_other_arc_swap = stamp(&bar, &["--debug"]);
    std::fs::write(&lock, &original).unwrap();
    assert_ne!(with_other_arc_swap, base, "a Cargo.lock version change must change the version");

    // A path dependency's version.
    let runtime_manifest = dir.join("hotswap-runtime/Cargo.toml");
    let text = std::fs::read_to_string(&runtime_manifest).unwrap();
    std::fs::write(&runtime_manifest, text.replacen("[package]", "[package]\n# a comment counts too", 1)).unwrap();
    assert_ne!(stamp(&bar, &["--debug"]), base, "a change in a path dependency must change the version");
    std::fs::write(&runtime_manifest, &text).unwrap();
    assert_eq!(stamp(&bar, &["--debug"]), base, "undoing the change gives the old stamp back");

    // A real build with the feature: a new file beside the old one, carrying the new stamp.
    let out = tempfile::tempdir().unwrap();
    build(&bar, out.path(), &[]);
    build(&bar, out.path(), &["--", "--features", "loud"]);
    let names: Vec<String> =
        libraries(out.path()).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&format!("bar@{base}.so")), "{names:?} / {base}");
    assert!(names.contains(&format!("bar@{}.so", changed[1].1)), "{names:?}");
}

/// Lines a running host printed, collected by a thread.
struct Host {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Host {
    fn start(plugins: &Path, socket: &Path) -> Host {
        let mut child = Command::new(hotswap_tests::tools::cargo_binary("hello-host", "hello-host"))
            .arg("--plugins")
            .arg(plugins)
            .arg("--socket")
            .arg(socket)
            .args(["--interval-ms", "20"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Host { child, lines }
    }

    /// Waits until a line after the first `from` lines contains `what`; returns its index.
    fn wait_for(&self, from: usize, what: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(i) = self.lines.lock().unwrap().iter().skip(from).position(|l| l.contains(what)) {
                return from + i;
            }
            assert!(Instant::now() < deadline, "the host never printed {what:?}: {:?}", self.lines.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number after `#` in the last line of `plugin`'s calls.
fn last_call_number(lines: &[String], plugin: &str) -> u64 {
    let line = lines.iter().rev().find(|l| l.contains(&format!("({plugin} call #"))).expect("a call line");
    let after = line.rsplit_once('#').unwrap().1;
    after.trim_end_matches(')').parse().unwrap()
}

#[test]
fn hello_demo_edit_foo_and_reload_keeps_bar_unchanged_with_its_state() {
    let _turn = turn();
    let dir = checkout("a");
    let plugins = tempfile::tempdir().unwrap();
    let (foo, bar) = (dir.join("demo/hello/plugin/foo"), dir.join("demo/hello/plugin/bar"));
    build(&foo, plugins.path(), &[]);
    build(&bar, plugins.path(), &[]);
    let socket_dir = tempfile::tempdir().unwrap();
    let socket = socket_dir.path().join("control.sock");
    let host = Host::start(plugins.path(), &socket);
    host.wait_for(0, "(bar call #3)");
    let bar_loads = || host.lines().iter().filter(|l| l.contains("[bar] on_load")).count();
    assert_eq!(bar_loads(), 1);

    // Edit foo only, and do what demo/hello/reload.sh does: build every plugin, reload.
    let source = foo.join("src/lib.rs");
    let code = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, code.replace("Hello, {who}!", "Howdy, {who}!")).unwrap();
    let (foo_out, _) = build(&foo, plugins.path(), &[]);
    let (bar_out, _) = build(&bar, plugins.path(), &[]);
    assert!(foo_out.starts_with("built foo "), "{foo_out}");
    assert!(bar_out.starts_with("unchanged since "), "{bar_out}");
    assert_eq!(libraries(plugins.path()).len(), 3, "a new foo beside the old one, bar kept");
    let before_reload = host.lines().len();
    let calls_before = last_call_number(&host.lines(), "bar");

    let reload = xtask(&[OsStr::new("reload"), OsStr::new("--socket"), socket.as_os_str()]);
    let report = text(&reload.stdout);
    assert!(reload.status.success(), "{report}\n{}", text(&reload.stderr));
    let line_of = |plugin: &str| report.lines().find(|l| l.trim_start().starts_with(plugin)).unwrap_or("").to_string();
    let (foo_line, bar_line) = (line_of("foo "), line_of("bar "));
    assert!(foo_line.contains("(loaded)"), "{report}");
    assert!(bar_line.contains("(unchanged)"), "{report}");
    let bar_sha = sha256(&library_of(plugins.path(), "bar"));
    assert!(bar_line.contains(&bar_sha), "the reload report shows bar's sha256: {report}");
    assert!(foo_line.contains(&sha256(&library_of(plugins.path(), "foo"))), "{report}");

    let after = host.wait_for(before_reload, "Howdy, world!");
    host.wait_for(after, "(bar call #");
    let lines = host.lines();
    assert_eq!(bar_loads(), 1, "bar's on_load did not run again: {lines:?}");
    assert!(lines[before_reload..].iter().any(|l| l.contains("[foo] on_load")), "foo was loaded anew");
    let calls_after = last_call_number(&lines, "bar");
    assert!(calls_after > calls_before, "bar's count went on ({calls_before} -> {calls_after}): its state was kept");

    // status shows each plugin's sha256, in text and as JSON.
    let status = xtask(&[OsStr::new("status"), OsStr::new("--json"), OsStr::new("--socket"), socket.as_os_str()]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let bar_entry = answer["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "bar").unwrap();
    assert_eq!(bar_entry["sha256"], bar_sha.as_str(), "{answer}");
    let status = xtask(&[OsStr::new("status"), OsStr::new("--socket"), socket.as_os_str()]);
    assert!(text(&status.stdout).contains(&format!("sha256 {bar_sha}")), "{}", text(&status.stdout));
}

#[test]
fn a_build_removes_temporaries_of_dead_builds_and_reports_orphan_manifests() {
    let _turn = turn();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path();
    // A process that has exited: its id names a dead writer.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let dead_partial = dir.join(format!(".hotswap-{dead}-a1b2c3.partial"));
    std::fs::write(&dead_partial, vec![0u8; 7 << 20]).unwrap();
    // This test process is alive: its temporary is left alone.
    let live_partial = dir.join(format!(".hotswap-{}-d4e5f6.partial", std::process::id()));
    std::fs::write(&live_partial, b"being written").unwrap();
    // Temporaries without a process id (older hotswap): removed only when old.
    let old_unowned = dir.join(".hotswap-Xy12Ab.partial");
    let new_unowned = dir.join(".hotswap-Zz98Qq.partial");
    for file in [&old_unowned, &new_unowned] {
        std::fs::write(file, b"partial").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options().write(true).open(&old_unowned).unwrap().set_modified(two_hours_ago).unwrap();
    // A manifest whose library never arrived, and a JSON file that is no manifest.
    let orphan = dir.join("ghost@1.0.0+hdeadbeef0000.json");
    let manifest = hotswap_runtime::Manifest {
        name: "ghost".into(),
        version: "1.0.0+hdeadbeef0000".into(),
        git_revision: None,
        sha256: "0".repeat(64),
        fingerprint: "f".into(),
        crate_identity: None,
        shared_library: None,
        built_at: "2026-01-01T00:00:00Z".into(),
        library: "ghost@1.0.0+hdeadbeef0000.so".into(),
    };
    std::fs::write(&orphan, serde_json::to_vec(&manifest).unwrap()).unwrap();
    std::fs::write(dir.join("notes.json"), b"{\"not\": \"a manifest\"}").unwrap();

    let (_, stderr) = build(&workspace_root().join("demo/hello/plugin/bar"), dir, &[]);
    assert!(!dead_partial.exists(), "the dead build's temporary is removed");
    assert!(!old_unowned.exists(), "an old temporary without a writer id is removed");
    assert!(live_partial.exists(), "a live writer's temporary is kept");
    assert!(new_unowned.exists(), "a recent temporary without a writer id is kept");
    assert!(stderr.contains(&format!("removed {}", dead_partial.display())), "{stderr}");
    assert!(orphan.exists(), "an orphan manifest is reported, not removed");
    assert!(stderr.contains(&format!("warning: {} has no library", orphan.display())), "{stderr}");
    assert!(!stderr.contains("notes.json"), "{stderr}");
    // The build's own files went in whole, and no temporary of its own was left.
    let leftovers: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    let library = library_of(dir, "bar");
    let built: hotswap_runtime::Manifest =
        serde_json::from_slice(&std::fs::read(library.with_extension("json")).unwrap()).unwrap();
    assert_eq!(built.sha256, sha256(&library));
}
