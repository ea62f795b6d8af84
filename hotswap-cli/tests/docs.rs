//! The docs' tables and figures, checked against what they describe, so they cannot drift:
//!
//! - the exit codes of `reload`/`status` in the guide, in docs/operations.md and in the comment
//!   of docs/ops/hello-host.service, against `hotswap_cli::reload` (each result's code and its
//!   name in `--json`);
//! - the `--json` field names (the guide's table and its example), the names inside each field,
//!   and the stage strings, against what serde writes for the real types;
//! - the guide's cost figures against the tables of BENCHMARKS.md.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hotswap_cli::reload::{OutcomeKind, Refusal};
use hotswap_runtime::{ControlRequest, IgnoredAnswer, PluginAnswer, ReloadInProgress, Stage, StageTime};

mod common;
use common::repo;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every result of a request. The match makes a new `OutcomeKind` fail to compile here until it
/// is added (and so documented).
fn all_results() -> Vec<OutcomeKind> {
    use OutcomeKind::*;
    let all = [
        Accepted, Refused, Busy, Serving, Confirmed, RolledBack, Upgraded, NoHost, Timeout, Forbidden, Untrusted, Error,
    ];
    for kind in all {
        match kind {
            Accepted | Refused | Busy | Serving | Confirmed | RolledBack | Upgraded | NoHost | Timeout | Forbidden
            | Untrusted | Error => {}
        }
    }
    all.to_vec()
}

/// The name serde writes for a value that serialises as a string.
fn serde_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).unwrap().as_str().expect("a string").to_string()
}

/// The code's exit codes, each with the `result` names that give it.
fn exit_codes() -> BTreeMap<u8, BTreeSet<String>> {
    let mut codes: BTreeMap<u8, BTreeSet<String>> = BTreeMap::new();
    for kind in all_results() {
        codes.entry(kind.exit_code()).or_default().insert(serde_name(&kind));
    }
    codes
}

/// The cells of a markdown table row (`\|` inside a cell is not a separator).
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => out.last_mut().unwrap().push(chars.next().unwrap()),
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

/// The rows (as cells, header and separator left out) of the first table from the first line
/// that contains `heading` (a heading, or the table's own header).
fn table_after(text: &str, heading: &str) -> Vec<Vec<String>> {
    let start = text.lines().position(|l| l.contains(heading)).unwrap_or_else(|| panic!("no `{heading}`"));
    text.lines()
        .skip(start)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(cells)
        .collect()
}

/// The names in backquotes in `text`: `` `a` / `b` `` gives `a`, `b`.
fn quoted(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// An exit-code table: code → the result names in backquotes in column `names`.
fn documented_codes(rows: &[Vec<String>], names: usize) -> BTreeMap<u8, BTreeSet<String>> {
    rows.iter()
        .map(|row| {
            let code = row[0].parse().unwrap_or_else(|_| panic!("not an exit code: {row:?}"));
            (code, quoted(&row[names]).into_iter().collect())
        })
        .collect()
}

/// The codes of `reload` only (`serving` is the answer to `status`, `confirmed` and
/// `rolled_back` those of `confirm` and `rollback`, `upgraded` that of `upgrade-host`).
fn reload_codes() -> BTreeMap<u8, BTreeSet<String>> {
    let others: Vec<String> =
        [OutcomeKind::Serving, OutcomeKind::Confirmed, OutcomeKind::RolledBack, OutcomeKind::Upgraded]
            .iter()
            .map(serde_name)
            .collect();
    let mut codes = exit_codes();
    codes.values_mut().for_each(|names| names.retain(|name| !others.contains(name)));
    codes
}

#[test]
fn the_exit_code_tables_and_the_service_comment_give_the_codes_of_the_command() {
    let guide = table_after(&read("docs/guide.md"), "#### Exit codes of `reload` and `status`");
    assert_eq!(documented_codes(&guide, 1), exit_codes(), "docs/guide.md");

    let operations = table_after(&read("docs/operations.md"), "| exit code |");
    assert_eq!(documented_codes(&operations, 1), reload_codes(), "docs/operations.md");

    // `# Exit codes (as in docs/operations.md): 0 accepted, 1 refused, …` up to the next sentence.
    let service = read("docs/ops/hello-host.service");
    let comment: String = service
        .lines()
        .skip_while(|l| !l.contains("Exit codes"))
        .take_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    let listed = comment.split_once("):").expect("`Exit codes (…):` in the service's comment").1;
    let listed = listed.split_once('.').expect("the list ends with a full stop").0;
    let mut codes: BTreeMap<u8, BTreeSet<String>> = BTreeMap::new();
    for item in listed.split(',') {
        let (code, name) = item.trim().trim_start_matches('#').trim().split_once(' ').expect("`<code> <result>`");
        codes.entry(code.parse().unwrap()).or_default().insert(name.trim().to_string());
    }
    assert_eq!(codes, reload_codes(), "docs/ops/hello-host.service: {listed}");
}

/// The `--json` table of the guide: field → its row's meaning.
fn json_table() -> BTreeMap<String, String> {
    table_after(&read("docs/guide.md"), "#### `--json`")
        .into_iter()
        .map(|row| {
            let field = quoted(&row[0]).pop().unwrap_or_else(|| panic!("no field name: {row:?}"));
            (field, row[2].clone())
        })
        .collect()
}

fn keys(value: &serde_json::Value) -> BTreeSet<String> {
    value.as_object().expect("an object").keys().cloned().collect()
}

/// Each key of `value` is named in `text` in backquotes.
fn names_every_key(text: &str, value: &serde_json::Value, what: &str) {
    let named: BTreeSet<String> = quoted(text).into_iter().collect();
    let missing: Vec<_> = keys(value).into_iter().filter(|k| !named.contains(k)).collect();
    assert!(missing.is_empty(), "the guide's `{what}` row does not name {missing:?}: {text}");
}

#[test]
fn the_json_fields_and_stage_strings_in_the_guide_are_those_serde_writes() {
    let dir = tempfile::tempdir().unwrap();
    let outcome =
        hotswap_cli::reload::ask(&dir.path().join("none.sock"), &ControlRequest::Status, Duration::from_secs(1));
    let json = serde_json::to_value(&outcome).unwrap();
    let table = json_table();
    assert_eq!(table.keys().cloned().collect::<BTreeSet<_>>(), keys(&json), "the guide's --json table");

    // The example line has every field too.
    let guide = read("docs/guide.md");
    let example = guide.split("#### `--json`").nth(1).unwrap().split("```json\n").nth(1).unwrap();
    let example: serde_json::Value = serde_json::from_str(example.split("\n```").next().unwrap()).unwrap();
    assert_eq!(keys(&example), keys(&json), "the guide's --json example");

    // The names inside the fields.
    let stage_time = StageTime { stage: Stage::Scan, ms: 0.1 };
    let plugin = PluginAnswer {
        name: "p".into(),
        version: "1".into(),
        sha256: "0".into(),
        file: "f".into(),
        origin: "loaded".into(),
        loaded_in_generation: None,
        stage_ms: vec![stage_time],
    };
    names_every_key(&table["plugins"], &serde_json::to_value(&plugin).unwrap(), "plugins");
    names_every_key(&table["stage_ms"], &serde_json::to_value(stage_time).unwrap(), "stage_ms");
    let ignored = IgnoredAnswer { name: "p".into(), file: "f".into(), note: "n".into() };
    names_every_key(&table["ignored"], &serde_json::to_value(&ignored).unwrap(), "ignored");
    let refusal = Refusal { plugin: None, file: None, stage: None, reason: String::new() };
    names_every_key(&table["refusal"], &serde_json::to_value(&refusal).unwrap(), "refusal");
    let running = ReloadInProgress { running_ms: 0, stage: None, plugin: None };
    names_every_key(&table["reload_in_progress"], &serde_json::to_value(&running).unwrap(), "reload_in_progress");
    let results: BTreeSet<String> = quoted(&table["result"]).into_iter().collect();
    assert_eq!(results, all_results().iter().map(serde_name).collect(), "the guide's `result` row");

    // The stage strings: exactly the ones serde reads and writes, one per variant of `Stage`.
    let listed = table["refusal"].split("as these exact strings:").nth(1).expect("the stage list");
    let listed = quoted(listed.split(';').next().unwrap());
    for name in &listed {
        let stage: Stage = serde_json::from_value(serde_json::Value::String(name.clone()))
            .unwrap_or_else(|e| panic!("`{name}` is not a stage serde reads: {e}"));
        assert_eq!(&serde_name(&stage), name);
    }
    let source = read("hotswap-runtime/src/error.rs");
    let body = source.split("pub enum Stage {").nth(1).unwrap().split("\n}").next().unwrap();
    let variants: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("    ")?.strip_suffix(','))
        .filter(|l| l.chars().all(char::is_alphanumeric))
        .collect();
    assert!(variants.contains(&"VaultSetup"), "{variants:?}");
    assert_eq!(listed.len(), variants.len(), "one string per variant of Stage {variants:?}: {listed:?}");
    assert_eq!(listed.iter().collect::<BTreeSet<_>>().len(), listed.len(), "{listed:?}");
}

/// The cell `column` of the row whose first cells start with `row`, in the table under the
/// BENCHMARKS.md heading that contains `table`.
fn bench(table: &str, row: &[&str], column: usize) -> String {
    let rows = table_after(&read("BENCHMARKS.md"), table);
    let found = rows
        .iter()
        .find(|cells| row.iter().zip(cells.iter()).all(|(want, cell)| cell.starts_with(want)))
        .unwrap_or_else(|| panic!("no row {row:?} under `{table}` in BENCHMARKS.md"));
    found[column].clone()
}

#[test]
fn the_guides_cost_figures_are_those_of_benchmarks_md() {
    const CALLS: &str = "Per-call cost, thread CPU time";
    const RELOADS: &str = "Reload latency, excluding cargo";
    const RENAME: &str = "New build renamed into the folder";
    let by_name = bench(CALLS, &["by name, follows reloads"], 1);
    let hot_fn = bench(CALLS, &["`HotFn` (follows reloads)"], 1);
    let floor = bench(CALLS, &["the floor for following reloads"], 1);
    let live = bench(CALLS, &["live function handle fetched once"], 1);
    let dyn_fn = bench(CALLS, &["`Box<dyn Fn"], 1);
    let find = bench(CALLS, &["`manager.find_plugin(\"greeter\")` + invoke"], 1);
    let cached = bench(CALLS, &["cached `Plugin` handle: `invoke::<i64>"], 1);
    let reload = bench(RELOADS, &["1 plugin, its file changed (greeter v1 ↔ v2); as built"], 2);
    let reload_debug = bench(RELOADS, &["1 plugin, its file changed (greeter v1 ↔ v2); debug info kept in"], 2);
    let rename = bench(RENAME, &["hotswap, `reload_on_new_builds", "greeter as built"], 2);
    // The guide's sentences, wrapped as they are (one space or a line break between words).
    let guide = read("docs/guide.md").split_whitespace().collect::<Vec<_>>().join(" ");
    for sentence in [
        format!("A call by name (`manager.invoke::<T>`) costs {by_name} ns"),
        format!("costs {hot_fn} ns, against {floor} ns for the floor"),
        format!("a live-function handle call {live} ns, against a `dyn Fn` call ({dyn_fn} ns)"),
        format!("{reload} ms for a release plugin as `cargo xtask build` installs it"),
        format!("{reload_debug} ms with the debug info kept in"),
        format!("`manager.find_plugin(…)` and a call cost {find} ns against {cached} ns"),
        format!("the first call that sees the new code takes {rename} ms (median)"),
    ] {
        assert!(guide.contains(&sentence), "docs/guide.md does not say, from BENCHMARKS.md: {sentence}");
    }
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn the_guides_first_reload_fits_one_screen_and_every_link_into_the_guide_has_its_heading() {
    let guide = read("docs/guide.md");
    let lines: Vec<&str> = guide.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("## 1. ")).expect("section 1");
    let seen = lines[start..].iter().position(|l| l.contains("[gen 2] greeter: Howdy")).expect("the new output");
    assert!(seen <= 35, "the first reload takes {seen} lines of section 1 (at most ~30)");
    // Every step of it is there, in the dev recipe.
    let first: String = lines[start..start + seen + 1].join("\n");
    for step in [
        "cargo hotswap new host host",
        "cargo hotswap new plugin plugins/greeter",
        "cargo hotswap build plugins/greeter bin --debug",
        "cargo run -p host -- bin",
        "cargo hotswap reload",
    ] {
        assert!(first.contains(step), "the first reload lacks `{step}`");
    }

    let headings: BTreeSet<String> = lines
        .iter()
        .filter(|l| l.starts_with('#') && !l.starts_with("#["))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    for (file, prefix) in
        [("README.md", "docs/guide.md#"), ("docs/operations.md", "guide.md#"), ("docs/guide.md", "](#")]
    {
        let text = read(file);
        for link in text.split(prefix).skip(1) {
            let target: String = link.chars().take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_').collect();
            assert!(headings.contains(&target), "{file} links to guide.md#{target}, which has no heading");
        }
    }
}
