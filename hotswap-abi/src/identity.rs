//! The crate identity record: what a host and a plugin each say about the crates they link, so
//! that a type shared between them (a `RequestClock` in a crate both depend on) is known to have
//! one layout on both sides before any of the plugin's code runs.
//!
//! `TypeId` alone cannot tell: rustc hashes a struct's field list by path, so a type nested in
//! a field that changes layout keeps its `TypeId`. The record therefore carries, for every crate
//! a side links (the root package and the runtime itself left out; the runtime and this crate
//! are in the ABI fingerprint):
//!
//! * registry and git crates: name, version, source and the features enabled;
//! * path crates: name, version, features and a hash of every file of their folder, each file
//!   listed by its path relative to the crate (never an absolute path, so two checkouts agree).
//!
//! The text format, one entry a line, fields separated by one space:
//!
//! ```text
//! hotswap crate identity 1
//! crate <key> <name> <version> <source> <features> <sources>
//! file <key> <hash> <path relative to the crate>
//! ```
//!
//! `<key>` is `<name>@<compatible version>` ([`compatible`]): one build links at most one
//! crate per key, so the comparison ([`differences`]) pairs the host's and the plugin's entry
//! for each key both sides link. `<source>` is `path` for a path crate; `<features>` is a
//! comma-separated list or `-`; `<sources>` the hash of the files ([`fnv1a`], 16 hex digits) or
//! `-` for a registry crate. The compiler flags that change layouts (`--cfg`, target features)
//! are in the ABI fingerprint, not here.
//! Features are compared like the rest: cargo hashes a crate's features, and its dependencies'
//! identities, into the crate's identity, so a feature difference in a crate gives every type of
//! it and of every crate above it another `TypeId` (checked with rustc 1.95); the record names
//! such a difference before any code runs, where the `TypeId` check would refuse the value only
//! when it crosses. A plugin's record lists the crates its own code can reach (see
//! `hotswap-build`), so a crate only the host or only the runtime uses is never compared.
//!
//! `hotswap-build` writes the record (a plugin's build script into the exported
//! [`IDENTITY_SYMBOL`](crate::IDENTITY_SYMBOL), a host's into
//! [`HOST_IDENTITY_SYMBOL`](crate::HOST_IDENTITY_SYMBOL)); `hotswap-runtime` compares them at
//! stage `inspect`.

use std::collections::BTreeMap;
use std::fmt;

/// First line of every record; another first line is another format.
pub const HEADER: &str = "hotswap crate identity 1";

/// FNV-1a, 64 bits: the hash of a file's content and of a crate's file list.
pub const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The part of a version cargo keeps apart: `1.2.3` → `1`, `0.7.1` → `0.7`, `0.0.3` → `0.0.3`.
pub fn compatible(version: &str) -> String {
    let core = version.split(['-', '+']).next().unwrap_or(version);
    let parts: Vec<&str> = core.split('.').collect();
    match parts.as_slice() {
        [major, ..] if *major != "0" => major.to_string(),
        ["0", minor, ..] if *minor != "0" => format!("0.{minor}"),
        _ => core.to_string(),
    }
}

/// One crate a side links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateEntry {
    /// `<name>@<compatible version>`.
    pub key: String,
    /// Package name.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// `path`, or cargo's source id (`registry+https://…`, `git+https://…#<commit>`).
    pub source: String,
    /// Enabled features, sorted.
    pub features: Vec<String>,
    /// Hash of the files of a path crate (16 hex digits); `None` for other sources.
    pub sources: Option<String>,
    /// A path crate's files: path relative to the crate → hash (16 hex digits).
    pub files: BTreeMap<String, String>,
}

impl CrateEntry {
    /// An entry; `key` is derived from the name and version.
    pub fn new(name: &str, version: &str, source: &str, mut features: Vec<String>) -> Self {
        features.sort();
        features.dedup();
        CrateEntry {
            key: format!("{name}@{}", compatible(version)),
            name: name.to_string(),
            version: version.to_string(),
            source: source.to_string(),
            features,
            sources: None,
            files: BTreeMap::new(),
        }
    }

    /// Adds a file of a path crate (its path relative to the crate, `/`-separated) and sets
    /// [`sources`](Self::sources) from the files so far.
    pub fn add_file(&mut self, relative: &str, content_hash: u64) {
        self.files.insert(relative.to_string(), format!("{content_hash:016x}"));
        let mut listing = String::new();
        for (path, hash) in &self.files {
            listing.push_str(path);
            listing.push('\0');
            listing.push_str(hash);
            listing.push('\n');
        }
        self.sources = Some(format!("{:016x}", fnv1a(listing.as_bytes())));
    }
}

impl fmt::Display for CrateEntry {
    /// `name version (source[, features a,b][, sources h])`, as a refusal names it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({}", self.name, self.version, self.source)?;
        if self.features.is_empty() {
            write!(f, ", no features")?;
        } else {
            write!(f, ", features {}", self.features.join(","))?;
        }
        if let Some(sources) = &self.sources {
            write!(f, ", sources {sources}")?;
        }
        write!(f, ")")
    }
}

/// What a side says about the crates it links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// By key.
    pub crates: BTreeMap<String, CrateEntry>,
}

/// Why a record's text was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "crate identity record, line {}: {}", self.line, self.problem)
    }
}

impl std::error::Error for ParseError {}

impl Record {
    /// Adds an entry (replacing one of the same key).
    pub fn insert(&mut self, entry: CrateEntry) {
        self.crates.insert(entry.key.clone(), entry);
    }

    /// The text form (see the module documentation). The same record always gives the same
    /// text.
    pub fn render(&self) -> String {
        let mut out = format!("{HEADER}\n");
        for c in self.crates.values() {
            let features = if c.features.is_empty() { "-".to_string() } else { c.features.join(",") };
            let sources = c.sources.as_deref().unwrap_or("-");
            out.push_str(&format!("crate {} {} {} {} {features} {sources}\n", c.key, c.name, c.version, c.source));
            for (path, hash) in &c.files {
                out.push_str(&format!("file {} {hash} {path}\n", c.key));
            }
        }
        out
    }

    /// Reads the text form.
    pub fn parse(text: &str) -> Result<Record, ParseError> {
        let mut lines = text.lines().enumerate();
        let bad = |line: usize, problem: String| ParseError { line: line + 1, problem };
        match lines.next() {
            Some((_, HEADER)) => {}
            Some((i, other)) => return Err(bad(i, format!("expected `{HEADER}`, found `{other}`"))),
            None => return Err(bad(0, "empty: the library or host records no crate identity".into())),
        }
        let mut record = Record::default();
        for (i, line) in lines {
            if let Some(rest) = line.strip_prefix("crate ") {
                let fields: Vec<&str> = rest.split(' ').collect();
                let [key, name, version, source, features, sources] = fields[..] else {
                    return Err(bad(i, format!("a crate line has 6 fields: `{line}`")));
                };
                let features =
                    if features == "-" { Vec::new() } else { features.split(',').map(str::to_string).collect() };
                let mut entry = CrateEntry::new(name, version, source, features);
                entry.key = key.to_string();
                entry.sources = (sources != "-").then(|| sources.to_string());
                record.crates.insert(key.to_string(), entry);
            } else if let Some(rest) = line.strip_prefix("file ") {
                let mut fields = rest.splitn(3, ' ');
                let (Some(key), Some(hash), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
                    return Err(bad(i, format!("a file line has 3 fields: `{line}`")));
                };
                let entry =
                    record.crates.get_mut(key).ok_or_else(|| bad(i, format!("file of unknown crate `{key}`")))?;
                entry.files.insert(path.to_string(), hash.to_string());
            } else if !line.is_empty() {
                return Err(bad(i, format!("unknown line `{line}`")));
            }
        }
        Ok(record)
    }
}

/// A crate both sides link, in two different builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The plugin's entry.
    pub plugin: CrateEntry,
    /// The host's entry.
    pub host: CrateEntry,
}

impl Difference {
    /// The files of a path crate that differ: changed, only in the plugin's build (`+`) or only
    /// in the host's (`-`).
    pub fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (path, hash) in &self.plugin.files {
            match self.host.files.get(path) {
                Some(h) if h == hash => {}
                Some(_) => out.push(path.clone()),
                None => out.push(format!("+{path}")),
            }
        }
        for path in self.host.files.keys() {
            if !self.plugin.files.contains_key(path) {
                out.push(format!("-{path}"));
            }
        }
        out
    }

    /// The difference with each side named by `first` (the `plugin` entry's side) and `second`
    /// (the other's): the crate, each side's entry, then the files that differ.
    /// [`Display`](fmt::Display) names the sides "the plugin" and "the host".
    pub fn describe(&self, first: &str, second: &str) -> String {
        let mut out = format!(
            "crate `{}`: {first} was built with {}, {second} with {}",
            self.plugin.name, self.plugin, self.host
        );
        let files = self.files();
        if !files.is_empty() {
            out.push_str(&format!("; files that differ: {}", files.join(", ")));
        }
        out
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe("the plugin", "the host"))
    }
}

/// The crates both records list whose entries differ, by key.
pub fn differences(plugin: &Record, host: &Record) -> Vec<Difference> {
    plugin
        .crates
        .iter()
        .filter_map(|(key, p)| {
            let h = host.crates.get(key)?;
            let same = p.name == h.name
                && p.version == h.version
                && p.source == h.source
                && p.features == h.features
                && p.sources == h.sources;
            (!same).then(|| Difference { plugin: p.clone(), host: h.clone() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(serial_first: bool) -> CrateEntry {
        let mut e = CrateEntry::new("shared", "0.1.0", "path", vec![]);
        e.add_file("Cargo.toml", 1);
        e.add_file("src/lib.rs", if serial_first { 2 } else { 3 });
        e
    }

    #[test]
    fn compatible_versions_follow_cargo() {
        assert_eq!(compatible("1.0.219"), "1");
        assert_eq!(compatible("0.7.3"), "0.7");
        assert_eq!(compatible("0.0.3"), "0.0.3");
        assert_eq!(compatible("2.0.0-rc.1"), "2");
    }

    #[test]
    fn a_record_reads_back_what_it_wrote() {
        let mut r = Record::default();
        r.insert(shared(true));
        r.insert(CrateEntry::new(
            "libc",
            "0.2.170",
            "registry+https://github.com/rust-lang/crates.io-index",
            vec!["std".into(), "default".into()],
        ));
        let text = r.render();
        assert!(text.starts_with(HEADER), "{text}");
        assert_eq!(Record::parse(&text).unwrap(), r);
    }

    #[test]
    fn only_crates_both_sides_link_are_compared_and_the_changed_file_is_named() {
        let mut plugin = Record::default();
        plugin.insert(shared(false));
        plugin.insert(CrateEntry::new("only-plugin", "1.0.0", "path", vec![]));
        let mut host = Record::default();
        host.insert(shared(true));
        host.insert(CrateEntry::new("only-host", "1.0.0", "path", vec![]));
        let diffs = differences(&plugin, &host);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        let text = diffs[0].to_string();
        assert!(text.starts_with("crate `shared`: the plugin was built with shared 0.1.0 (path"), "{text}");
        assert!(text.ends_with("files that differ: src/lib.rs"), "{text}");
        assert!(differences(&host, &host).is_empty());
    }

    #[test]
    fn a_feature_difference_alone_is_a_difference_naming_both_feature_lists() {
        let registry = "registry+https://github.com/rust-lang/crates.io-index";
        let mut plugin = Record::default();
        plugin.insert(CrateEntry::new("libc", "0.2.1", registry, vec!["extra_traits".into(), "std".into()]));
        let mut host = Record::default();
        host.insert(CrateEntry::new("libc", "0.2.1", registry, vec!["std".into()]));
        let diffs = differences(&plugin, &host);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        let text = diffs[0].to_string();
        assert!(text.contains("features extra_traits,std") && text.contains("features std)"), "{text}");
        assert!(differences(&plugin, &plugin).is_empty());
    }

    #[test]
    fn an_empty_text_is_no_record() {
        assert!(Record::parse("").unwrap_err().problem.contains("no crate identity"));
    }
}
