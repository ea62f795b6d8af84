//! Plugin code never aborts the host (issue 12, section 1).
//!
//! Host and plugin each have their own copy of std: a panic of the plugin's std that reaches
//! the host is a foreign exception, which aborts the process even inside the host's
//! `catch_unwind`. Each case here makes plugin code panic somewhere that used to escape: in an
//! error's `Display`, in the `Drop` of a panic payload, of an error, of a returned value, of an
//! export, of a data-bag value; and loads a plugin built with `panic = "abort"` or in the other
//! profile than the host.
//!
//! An abort cannot be caught, so every case runs in a child process: the test binary runs
//! itself again for that one test ([`in_child`]) and the parent asserts that the child
//! exited normally and reached its end. Each case asserts that the host survives, that a
//! refusal or error names the plugin, the file or function, and the stage, that the serving
//! generation keeps answering, and that nothing is left in the manager's work folder beyond
//! the copies the serving generation uses.
//!
//! Fixtures: `greeter_v1` serves; `abort_hooks` misbehaves on demand (environment variable
//! `ABORT_FAULT` for its hooks, function names for its calls); `abort_strategy` is built with
//! `panic = "abort"`, or in the other profile.

use std::any::Any;
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hotswap_runtime::{InvokeError, LoadError, PluginManager, Stage, args};
use hotswap_tests::child_case::{PATIENCE, in_child};
use hotswap_tests::{BuiltPlugin, build_plugin, build_plugin_with_cargo_args};

const GREETER: &str = "tests/plugins/greeter_v1";
const HOOKS: &str = "tests/plugins/abort_hooks";
const STRATEGY: &str = "tests/plugins/abort_strategy";

// ---------------------------------------------------------------------------------------------
// Running a case in a child process.
// ---------------------------------------------------------------------------------------------

/// [`in_child`] with `ABORT_FAULT=fault` in the child's environment.
fn isolated(
    test: &str,
    fault: &str,
    build: impl FnOnce() -> Vec<BuiltPlugin>,
    case: impl FnOnce(&[BuiltPlugin]),
) -> Option<String> {
    in_child(test, &[("ABORT_FAULT", fault)], build, case)
}

/// The fixtures built the usual way (in the host's profile).
fn built(crates: &[&str]) -> Vec<BuiltPlugin> {
    crates.iter().map(|krate| build_plugin(krate)).collect()
}

// ---------------------------------------------------------------------------------------------
// A host in the child.
// ---------------------------------------------------------------------------------------------

/// A manager serving some fixtures, with its own work folder; released libraries are closed
/// at once (`retain_released_libraries(0)`), so a library nothing uses leaves no copy behind.
struct Host {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    manager: PluginManager,
}

fn serving(fixtures: &[&BuiltPlugin]) -> Host {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, work) = (tmp.path().join("plugins"), tmp.path().join("work"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::create_dir(&work).unwrap();
    for fixture in fixtures {
        fixture.install(&dir);
    }
    let manager = PluginManager::builder(&dir)
        .work_root(&work)
        .free_delay(Duration::ZERO)
        .retain_released_libraries(0)
        .build()
        .unwrap();
    assert_eq!(manager.load_plugins().expect("the fixtures load").generation, 1);
    let host = Host { _tmp: tmp, dir, manager };
    host.assert_answers(1);
    host
}

impl Host {
    /// Generation `number` serves, and `greeter` answers from it.
    fn assert_answers(&self, number: u64) {
        let current = self.manager.current().expect("a generation serves");
        assert_eq!(current.number(), number);
        let greeter = self.manager.find_plugin("greeter").expect("greeter serves");
        assert_eq!(greeter.invoke::<String>("answer", args![]).unwrap(), "v1");
        assert_eq!(greeter.invoke::<i64>("add", args![6_i64, 7_i64]).unwrap(), 13);
    }

    /// The work folder holds nothing but the copies the serving generation uses (waits for a
    /// replaced generation's libraries to be closed).
    fn assert_work_folder_clean(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let used: BTreeSet<PathBuf> = self
                .manager
                .current()
                .map(|g| g.plugins().iter().map(|p| p.loaded_from().to_path_buf()).collect())
                .unwrap_or_default();
            let present: BTreeSet<PathBuf> =
                std::fs::read_dir(self.manager.work_dir()).unwrap().map(|e| e.unwrap().path()).collect();
            if present == used {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the work folder holds {present:#?}, the serving generation uses {used:#?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Installs `fixture`, reloads, and checks the refusal: it names `plugin`, the installed
    /// file and `stage`, and says each of `says`; generation 1 keeps serving, nothing is left
    /// in the work folder, and once the file is gone the next reload works.
    fn assert_refused(&self, fixture: &BuiltPlugin, plugin: &str, stage: Stage, says: &[&str]) -> LoadError {
        let file = fixture.install(&self.dir);
        let error = self.manager.reload().expect_err("the reload must be refused");
        let text = error.to_string();
        assert_eq!(error.plugin.as_deref(), Some(plugin), "{text}");
        assert_eq!(error.file, file, "{text}");
        assert!(text.contains(&file.display().to_string()), "the message names the file: {text}");
        assert_eq!(error.stage, stage, "{text}");
        assert!(text.contains(&format!("refused at stage `{stage}`")), "{text}");
        for part in says {
            assert!(text.contains(part), "`{part}` missing from: {text}");
        }
        self.assert_answers(1);
        self.assert_work_folder_clean();
        self.remove(fixture);
        assert_eq!(self.manager.reload().expect("the reload after the repair").generation, 2);
        self.assert_answers(2);
        self.assert_work_folder_clean();
        error
    }

    /// Removes an installed fixture (library and manifest) from the plugin folder.
    fn remove(&self, fixture: &BuiltPlugin) {
        for file in [&fixture.library, &fixture.manifest] {
            std::fs::remove_file(self.dir.join(file.file_name().unwrap())).unwrap();
        }
    }

    /// Calls `abort_hooks`' `func`; afterwards the plugin, `greeter` and generation 1 serve on.
    fn call(&self, func: &str) -> Result<hotswap_runtime::Value, InvokeError> {
        let plugin = self.manager.find_plugin("abort_hooks").expect("abort_hooks serves");
        let outcome = plugin.invoke_func(func, args![]);
        assert_eq!(plugin.invoke::<String>("answer", args![]).unwrap(), "abort_hooks", "usable after `{func}`");
        outcome
    }
}

/// The text of a panic the host caught.
fn panic_text(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload.downcast_ref::<&str>().map(|s| s.to_string()).unwrap_or_else(|| "<not text>".into()),
    }
}

/// Asserts that `text` says each of `parts`.
fn assert_says(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "`{part}` missing from: {text}");
    }
}

/// A case that installs a fixture in a host serving `greeter` and expects the reload refused
/// (see [`Host::assert_refused`]); `never_says` must not be in the reason.
struct Refused<'a> {
    test: &'a str,
    fault: &'a str,
    plugin: &'a str,
    stage: Stage,
    says: &'a [&'a str],
    never_says: &'a [&'a str],
}

impl Refused<'_> {
    /// Runs the case in a child; `build` gives `greeter`'s build and the faulty one.
    fn run(&self, build: impl FnOnce() -> Vec<BuiltPlugin>) {
        isolated(self.test, self.fault, build, |fixtures| {
            let host = serving(&[&fixtures[0]]);
            let error = host.assert_refused(&fixtures[1], self.plugin, self.stage, self.says);
            for part in self.never_says {
                assert!(!error.reason.contains(part), "`{part}` in: {error}");
            }
        });
    }
}

/// A case run in a child on a host serving `greeter` and `abort_hooks` (with `ABORT_FAULT` set
/// to `fault`); afterwards `greeter` still answers and the work folder holds nothing else
/// than the serving generation's copies. Returns the child's standard error (`None` in the child).
fn serving_both(test: &str, fault: &str, case: impl FnOnce(&Host, &BuiltPlugin)) -> Option<String> {
    isolated(
        test,
        fault,
        || built(&[GREETER, HOOKS]),
        |fixtures| {
            let host = serving(&[&fixtures[0], &fixtures[1]]);
            case(&host, &fixtures[1]);
            host.assert_answers(host.manager.current().unwrap().number());
            host.assert_work_folder_clean();
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Hooks: the error's Display, the panic payload's Drop.
// ---------------------------------------------------------------------------------------------

#[test]
fn an_on_load_error_whose_display_panics_is_refused_at_on_load() {
    Refused {
        test: "an_on_load_error_whose_display_panics_is_refused_at_on_load",
        fault: "on_load_display",
        plugin: "abort_hooks",
        stage: Stage::OnLoad,
        says: &[
            "on_load returned an error",
            "an error whose `Display` panicked: the Display of the on_load error exploded",
        ],
        never_says: &[],
    }
    .run(|| built(&[GREETER, HOOKS]));
}

#[test]
fn an_on_load_panic_whose_payload_panics_when_dropped_is_refused_and_the_payload_leaked() {
    Refused {
        test: "an_on_load_panic_whose_payload_panics_when_dropped_is_refused_and_the_payload_leaked",
        fault: "on_load_payload",
        plugin: "abort_hooks",
        stage: Stage::OnLoad,
        says: &[
            "on_load panicked: panic with a non-string payload",
            "dropping the panic payload panicked: the on_load panic payload exploded when dropped",
            "leaked",
        ],
        never_says: &[],
    }
    .run(|| built(&[GREETER, HOOKS]));
}

// ---------------------------------------------------------------------------------------------
// Calls: errors, payloads and returned values.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_call_error_whose_display_or_drop_panics_is_an_invoke_error() {
    serving_both("a_call_error_whose_display_or_drop_panics_is_an_invoke_error", "", |host, _| {
        let display = ["an error whose `Display` panicked: the Display of the invoke_func error exploded"];
        let drop = [
            "an invoke_func error that explodes when dropped",
            "dropping the error panicked: the invoke_func error exploded when dropped",
        ];
        for (func, says) in [("display_panics", &display[..]), ("error_drop_panics", &drop[..])] {
            match host.call(func) {
                Err(error @ InvokeError::Failed { .. }) => {
                    let text = error.to_string();
                    assert!(text.starts_with(&format!("plugin `abort_hooks`: {func}: ")), "{text}");
                    assert_says(&text, says);
                }
                other => panic!("`{func}`: expected InvokeError::Failed, got {other:?}"),
            }
        }
        host.assert_answers(1);
    });
}

#[test]
fn a_call_panic_whose_payload_panics_when_dropped_is_contained_and_the_payload_leaked() {
    serving_both(
        "a_call_panic_whose_payload_panics_when_dropped_is_contained_and_the_payload_leaked",
        "",
        |host, _| {
            for _ in 0..3 {
                match host.call("payload_drop_panics") {
                    Err(error @ InvokeError::Panicked { .. }) => assert_says(
                        &error.to_string(),
                        &[
                            "plugin `abort_hooks`: payload_drop_panics panicked: panic with a non-string payload",
                            "dropping the panic payload panicked: the invoke_func panic payload exploded when dropped",
                            "leaked",
                        ],
                    ),
                    other => panic!("expected InvokeError::Panicked, got {other:?}"),
                }
            }
            host.assert_answers(1);
        },
    );
}

#[test]
fn a_returned_value_whose_drop_panics_is_a_panic_the_host_catches() {
    serving_both("a_returned_value_whose_drop_panics_is_a_panic_the_host_catches", "", |host, hooks| {
        let says = ["a `abort_hooks::Bomb` panicked when dropped", "the returned value exploded when dropped"];
        // Dropped by the host.
        let value = host.call("value_drop_panics").expect("a value");
        assert_eq!(value.type_name(), "abort_hooks::Bomb");
        assert_says(&panic_text(catch_unwind(AssertUnwindSafe(|| drop(value))).unwrap_err()), &says);
        // Dropped by `invoke` when it is not the type asked for.
        let plugin = host.manager.find_plugin("abort_hooks").unwrap();
        let caught = catch_unwind(AssertUnwindSafe(|| plugin.invoke::<String>("value_drop_panics", args![])));
        assert_says(&panic_text(caught.unwrap_err()), &says);
        // On a thread of the host's, which the panic ends like one of the host's own.
        let value = host.call("value_drop_panics").expect("a value");
        let joined = std::thread::spawn(move || drop(value)).join();
        assert_says(&panic_text(joined.unwrap_err()), &says);
        host.assert_answers(1);
        // The values held the library mapped; gone, they leave nothing behind once the plugin
        // is removed and its generation replaced.
        drop(plugin);
        host.remove(hooks);
        assert_eq!(host.manager.reload().unwrap().generation, 2);
    });
}

// ---------------------------------------------------------------------------------------------
// Live functions and live types.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_live_function_panic_whose_payload_panics_when_dropped_is_the_hosts_to_catch() {
    serving_both("a_live_function_panic_whose_payload_panics_when_dropped_is_the_hosts_to_catch", "", |host, _| {
        let vault = host.manager.current().unwrap().vault().clone();
        let live = vault.live_func::<fn(i64) -> i64>("live_payload_drop_panics").unwrap();
        assert_says(
            &panic_text(catch_unwind(|| live.call((1,))).unwrap_err()),
            &[
                "panic with a non-string payload",
                "dropping the panic payload panicked: the live function's panic payload exploded when dropped",
                "leaked",
            ],
        );
        assert_eq!(live.call((-4,)), -4, "usable after the panic");
        // A live type's value made by the plugin, dropped by the host.
        let bomb = vault.new_live("LiveBomb").unwrap();
        assert_says(
            &panic_text(catch_unwind(AssertUnwindSafe(|| drop(bomb))).unwrap_err()),
            &["a `abort_hooks::LiveBomb` panicked when dropped", "a LiveBomb exploded when dropped"],
        );
        host.assert_answers(1);
    });
}

// ---------------------------------------------------------------------------------------------
// Values the runtime drops: exports and the data bag.
// ---------------------------------------------------------------------------------------------

/// With `abort_hooks`' hooks having left a value that panics when dropped in generation 1:
/// removes `abort_hooks` and reloads. The runtime drops generation 1 and with it the value;
/// the host lives on and later reloads work.
fn generation_drop_survives(host: &Host, hooks: &BuiltPlugin) {
    host.remove(hooks);
    assert_eq!(host.manager.reload().expect("the reload without abort_hooks").generation, 2);
    host.assert_answers(2);
    host.assert_work_folder_clean();
    assert_eq!(host.manager.reload().expect("a later reload").generation, 3);
}

#[test]
fn an_export_whose_drop_panics_is_dropped_without_harm_when_its_generation_goes() {
    let Some(stderr) = serving_both(
        "an_export_whose_drop_panics_is_dropped_without_harm_when_its_generation_goes",
        "export_drop",
        generation_drop_survives,
    ) else {
        return;
    };
    // The plugin's panic hook printed it: the drop ran, and panicked.
    assert!(stderr.contains("the export exploded when dropped"), "the export was never dropped:\n{stderr}");
}

#[test]
fn a_data_bag_value_whose_drop_panics_is_dropped_without_harm_when_its_generation_goes() {
    let Some(stderr) = serving_both(
        "a_data_bag_value_whose_drop_panics_is_dropped_without_harm_when_its_generation_goes",
        "data_drop",
        generation_drop_survives,
    ) else {
        return;
    };
    assert!(stderr.contains("the data bag value exploded when dropped"), "the value was never dropped:\n{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Builds that must be refused before any of their code runs.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_plugin_built_with_panic_abort_in_its_profile_is_refused_at_inspect() {
    Refused {
        test: "a_plugin_built_with_panic_abort_in_its_profile_is_refused_at_inspect",
        fault: "",
        plugin: "abort_strategy",
        stage: Stage::Inspect,
        says: &[
            "ABI fingerprint mismatch",
            "the plugin was built with `panic = \"abort\"` (its first panic would kill the host)",
            "; panic abort",
        ],
        never_says: &["same profile", "toolchain"],
    }
    .run(|| {
        // The profile the host (this test binary) was built in.
        let profile = if cfg!(debug_assertions) { "dev" } else { "release" };
        let config = format!("profile.{profile}.panic=\"abort\"");
        let aborting =
            build_plugin_with_cargo_args(STRATEGY, "panic-abort", cfg!(debug_assertions), &["--config", &config]);
        vec![build_plugin(GREETER), aborting]
    });
}

#[test]
fn a_plugin_built_in_the_other_profile_is_refused_at_inspect_with_the_fix() {
    let (plugin_is, host_is) =
        if cfg!(debug_assertions) { ("a release", "a dev (debug)") } else { ("a dev (debug)", "a release") };
    Refused {
        test: "a_plugin_built_in_the_other_profile_is_refused_at_inspect_with_the_fix",
        fault: "",
        plugin: "abort_strategy",
        stage: Stage::Inspect,
        says: &[
            "ABI fingerprint mismatch",
            &format!("the plugin is {plugin_is} build and the host {host_is} build"),
            "build both with the same profile (`--debug` matches a dev host)",
        ],
        never_says: &["toolchain", "panic = "],
    }
    .run(|| {
        let other = build_plugin_with_cargo_args(STRATEGY, "other-profile", !cfg!(debug_assertions), &[]);
        vec![build_plugin(GREETER), other]
    });
}
