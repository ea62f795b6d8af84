//! Code generator for hotswap plugins, called from each plugin's `build.rs`.
//!
//! It walks the plugin crate's source tree, parses every `.rs` file with syn, finds the seven
//! hooks (`on_load`, `on_init`, `on_free`, `export`, `import`, `invoke_func`, `reloadable`),
//! checks their signatures, and writes `$OUT_DIR/hotswap_registry.rs`: one descriptor symbol
//! whose entry points wrap every hook in `catch_unwind`. The plugin includes it with
//! `hotswap_runtime::plugin!();`. A missing or mistyped hook fails the build with the file,
//! the line and the expected signature.
//!
//! ```no_run
//! // build.rs of a plugin crate
//! fn main() -> Result<(), hotswap_build::Error> {
//!     hotswap_build::generate()?;
//!     Ok(())
//! }
//! ```
//!
//! or, configured:
//!
//! ```no_run
//! fn main() -> Result<(), hotswap_build::Error> {
//!     hotswap_build::Config::new()
//!         .plugin_name("greeter")
//!         .exclude(r"^src/bin/")
//!         .generate()?;
//!     Ok(())
//! }
//! ```
//!
//! A host calls [`host_identity`] from its own `build.rs` (it records the crates the host links,
//! which the runtime compares with each plugin's); a host that can also be built with its
//! plugins linked in (`cargo xtask build --static-linking`) calls [`static_host`] instead, which
//! does both; see [`StaticHost`].
//!
//! A plugin's registry carries the plugin's crate identity record (see
//! [`hotswap_abi::identity`]): every crate it links, with a hash of each path crate's files.
//!
//! # Environment
//!
//! `cargo xtask build` passes its flags through these variables (each printed as
//! `cargo:rerun-if-env-changed`): `HOTSWAP_VERSION` (the version stamp; default: the crate
//! version), `HOTSWAP_INCLUDE` and `HOTSWAP_EXCLUDE` (regexes, one per line, added to the
//! builder's), `HOTSWAP_LIVE_PREFIX`, `HOTSWAP_STATIC` (`1`: compile for linking into a host,
//! without exported symbols), `HOTSWAP_VERSION_<CRATE>` (a per-crate stamp, for static hosts).

#![warn(missing_docs, missing_debug_implementations)]

mod host;
mod host_identity;
mod identity;
mod scan;

pub use host::{StaticHost, static_host};
pub use host_identity::{HostIdentity, host_identity};

use std::fmt;
use std::path::{Path, PathBuf};

pub use scan::{HookSite, LiveItem, LiveKind, is_live_function, is_live_type};

/// The hooks (names, signatures, order), defined once in `hotswap-abi`.
pub use hotswap_abi::Hook;
use hotswap_abi::env;

/// Default prefix of live items.
pub const DEFAULT_LIVE_PREFIX: &str = "live_";

const TEMPLATE: &str = include_str!("../templates/registry.rs.tmpl");
const LIVE_FUNC_TEMPLATE: &str = include_str!("../templates/live_func_entry.rs.tmpl");
const LIVE_TYPE_TEMPLATE: &str = include_str!("../templates/live_type_entry.rs.tmpl");
const LIVE_IMPL_TEMPLATE: &str = include_str!("../templates/live_type_impl.rs.tmpl");

/// Why generation failed. `Debug` prints the same readable text as `Display`, so
/// `fn main() -> Result<(), hotswap_build::Error>` in `build.rs` shows a clear message.
/// The underlying error (io, parser, regex, TOML) stays reachable through
/// [`source`](std::error::Error::source).
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A source file does not parse.
    #[error("{}:{line}: cannot parse: {source}", file.display())]
    Parse {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The parser's error.
        source: syn::Error,
    },
    /// A hook is missing. There is no file and line to name: the message names the folder
    /// scanned and how many of its files are part of the crate.
    #[error("missing hook `{hook}`: no `fn {hook}` in the {scanned} scanned file(s) under {}; expected `{expected}`", root.display())]
    MissingHook {
        /// The hook.
        hook: Hook,
        /// Its expected signature.
        expected: &'static str,
        /// The scanned folder.
        root: PathBuf,
        /// How many files were scanned.
        scanned: usize,
    },
    /// A hook has the wrong shape.
    #[error("{}:{line}: hook `{hook}` {problem}; expected `{expected}`", file.display())]
    BadHook {
        /// The hook.
        hook: Hook,
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: String,
        /// Its expected signature.
        expected: &'static str,
    },
    /// A hook is defined twice.
    #[error("hook `{hook}` is defined twice: {}:{} and {}:{}", first.0.display(), first.1, second.0.display(), second.1)]
    DuplicateHook {
        /// The hook.
        hook: Hook,
        /// First place (file, line).
        first: (PathBuf, usize),
        /// Second place.
        second: (PathBuf, usize),
    },
    /// A hook or live item sits in a module the crate root cannot name (a private module below
    /// the root's own modules), so the generated registry would fail with E0603.
    #[error("{}:{line}: module `{module}` is private, so the generated registry cannot reach {item} (rustc would report E0603); declare it `pub mod` or `pub(crate) mod`", file.display())]
    HiddenModule {
        /// The module path below the crate root, e.g. `outer::inner`.
        module: String,
        /// The file declaring the module.
        file: PathBuf,
        /// 1-based line of the declaration.
        line: usize,
        /// What is inside: ``hook `on_load` (src/outer/inner.rs:7)``.
        item: String,
    },
    /// A live item cannot be registered.
    #[error("{}:{line}: live item `{name}` {problem}", file.display())]
    BadLive {
        /// The item.
        name: String,
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// Two live items share a name.
    #[error("two live items are named `{name}`: {} ({}:{}) and {} ({}:{}); live items are found by name, so rename one", first.rust_path(), first.file.display(), first.line, second.rust_path(), second.file.display(), second.line)]
    DuplicateLive {
        /// The name.
        name: String,
        /// The first item (by file and line).
        first: Box<LiveItem>,
        /// The second item.
        second: Box<LiveItem>,
    },
    /// A regex did not compile.
    #[error("invalid {flag} regex `{pattern}`: {source}")]
    Regex {
        /// `--include` or `--exclude` (or its variable).
        flag: &'static str,
        /// The pattern.
        pattern: String,
        /// The regex error.
        source: regex::Error,
    },
    /// A `Cargo.toml` does not parse.
    #[error("{}: {source}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The TOML error (boxed: it is large).
        source: Box<toml::de::Error>,
    },
    /// A required variable is missing (not run from a build script?).
    #[error("environment variable {0} is not set; call hotswap_build from a build script")]
    Env(&'static str),
    /// A name or version that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// A placeholder of the template was left unfilled (a bug in hotswap-build).
    #[error("the registry template's placeholder `{0}` was left unfilled; this is a bug in hotswap-build")]
    Placeholder(String),
    /// The rendered template did not parse (a bug in the template).
    #[error("generated code does not parse ({0}); this is a bug in hotswap-build")]
    Template(#[source] syn::Error),
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Builder for the code generator, in the style of `prost_build::Config`.
#[derive(Debug, Clone)]
pub struct Config {
    crate_dir: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    plugin_name: Option<String>,
    version: Option<String>,
    includes: Vec<String>,
    excludes: Vec<String>,
    live_prefix: Option<String>,
    emit_cargo: bool,
    unloadable: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

/// What [`Config::generate`] produced.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The registry file written.
    pub path: PathBuf,
    /// The generated source.
    pub source: String,
    /// Every `.rs` file scanned, relative to the crate root.
    pub scanned: Vec<PathBuf>,
    /// Where each hook was found.
    pub hooks: Vec<HookSite>,
    /// Live functions and types, by name.
    pub live: Vec<LiveItem>,
}

impl Config {
    /// Defaults: crate folder `CARGO_MANIFEST_DIR`, output `OUT_DIR`, plugin name = crate name,
    /// version from `HOTSWAP_VERSION` or the crate version, every `.rs` file under `src/`.
    pub fn new() -> Self {
        Config {
            crate_dir: None,
            out_dir: None,
            plugin_name: None,
            version: None,
            includes: Vec::new(),
            excludes: Vec::new(),
            live_prefix: None,
            emit_cargo: true,
            unloadable: true,
        }
    }

    /// The plugin crate's folder (default `CARGO_MANIFEST_DIR`).
    pub fn crate_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.crate_dir = Some(dir.into());
        self
    }

    /// Where to write `hotswap_registry.rs` (default `OUT_DIR`).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// The plugin's name (default: the crate name, `CARGO_PKG_NAME`, with `-` as `_`).
    pub fn plugin_name(mut self, name: impl Into<String>) -> Self {
        self.plugin_name = Some(name.into());
        self
    }

    /// The version stamp (default: `HOTSWAP_VERSION`, else `CARGO_PKG_VERSION`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Scan only files whose path relative to the crate root (with `/` separators, e.g.
    /// `src/net/mod.rs`) matches one of the include regexes (unanchored: use `^`/`$`).
    /// Default: every `.rs` file under `src/`.
    pub fn include(mut self, regex: impl Into<String>) -> Self {
        self.includes.push(regex.into());
        self
    }

    /// Skip files whose relative path matches this regex (checked after the includes).
    pub fn exclude(mut self, regex: impl Into<String>) -> Self {
        self.excludes.push(regex.into());
        self
    }

    /// Prefix of live items (default `live_`, compared case-insensitively).
    pub fn live_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.live_prefix = Some(prefix.into());
        self
    }

    /// Whether the runtime may close this plugin's library once nothing refers to it (default
    /// true). Say `false` if the plugin starts threads it does not join in `on_free`, or
    /// hands out `'static` references or function pointers the runtime cannot track.
    pub fn unloadable(mut self, unloadable: bool) -> Self {
        self.unloadable = unloadable;
        self
    }

    /// Whether to print `cargo:rerun-if-…` lines (default true; false for tests).
    pub fn emit_cargo_directives(mut self, emit: bool) -> Self {
        self.emit_cargo = emit;
        self
    }

    /// The stamp `cargo xtask build` passed: `HOTSWAP_VERSION_<CRATE>` (the crate name in upper
    /// case, `-` as `_`; used when one build compiles several plugins, as a static host does),
    /// else `HOTSWAP_VERSION`.
    fn version_from_env(&self) -> Result<Option<String>, Error> {
        let package = self.env("CARGO_PKG_NAME").ok_or(Error::Env("CARGO_PKG_NAME"))?;
        let key = env::version_for(&package);
        if self.emit_cargo {
            println!("cargo:rerun-if-env-changed={key}");
        }
        let specific = std::env::var(&key).ok().filter(|v| !v.is_empty());
        Ok(specific.or_else(|| self.env(env::VERSION).filter(|v| !v.is_empty())))
    }

    fn env(&self, key: &'static str) -> Option<String> {
        if self.emit_cargo {
            println!("cargo:rerun-if-env-changed={key}");
        }
        std::env::var(key).ok()
    }

    /// Scans the crate, checks the hooks and writes the registry.
    pub fn generate(&self) -> Result<Generated, Error> {
        let invalid = |what: &str, value: &str| Error::Invalid(format!("invalid {what}: `{value}`"));
        let crate_dir = match &self.crate_dir {
            Some(d) => d.clone(),
            None => PathBuf::from(self.env("CARGO_MANIFEST_DIR").ok_or(Error::Env("CARGO_MANIFEST_DIR"))?),
        };
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => PathBuf::from(self.env("OUT_DIR").ok_or(Error::Env("OUT_DIR"))?),
        };
        let plugin_name = match &self.plugin_name {
            Some(n) => n.clone(),
            None => self.env("CARGO_PKG_NAME").ok_or(Error::Env("CARGO_PKG_NAME"))?.replace('-', "_"),
        };
        let version = match &self.version {
            Some(v) => v.clone(),
            None => match self.version_from_env()? {
                Some(v) => v,
                None => self.env("CARGO_PKG_VERSION").ok_or(Error::Env("CARGO_PKG_VERSION"))?,
            },
        };
        let linked_statically = self.env(env::STATIC).is_some_and(|v| v == "1");
        if plugin_name.is_empty() || !plugin_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid("plugin name (use letters, digits and `_`)", &plugin_name));
        }
        if version.is_empty() || version.contains(['/', '\\', '@']) || version.chars().any(char::is_whitespace) {
            return Err(invalid("version stamp (no `/`, `\\`, `@` or spaces)", &version));
        }
        let mut includes = self.includes.clone();
        let mut excludes = self.excludes.clone();
        if let Some(list) = self.env(env::INCLUDE) {
            includes.extend(list.lines().filter(|l| !l.is_empty()).map(str::to_string));
        }
        if let Some(list) = self.env(env::EXCLUDE) {
            excludes.extend(list.lines().filter(|l| !l.is_empty()).map(str::to_string));
        }
        let live_prefix = self
            .live_prefix
            .clone()
            .or_else(|| self.env(env::LIVE_PREFIX).filter(|p| !p.is_empty()))
            .unwrap_or_else(|| DEFAULT_LIVE_PREFIX.to_string());
        let filter = scan::FileFilter::new(&includes, &excludes)?;
        if self.emit_cargo {
            // Before scanning, so that a build failing on a bad source still reruns on edits.
            println!("cargo:rerun-if-changed={}", crate_dir.join("src").display());
        }
        let found = scan::scan(&crate_dir, &filter, &live_prefix)?;
        if self.emit_cargo {
            for file in &found.scanned {
                println!("cargo:rerun-if-changed={}", crate_dir.join(file).display());
            }
        }
        // The crates the plugin links, compared with the host's at load. Not for a plugin
        // linked into a host (one build), nor without cargo (tests of this crate): an empty
        // record, which the runtime refuses to load.
        let identity = if self.emit_cargo && !linked_statically {
            identity::compute(&crate_dir, &out_dir, false, true)?.render()
        } else {
            String::new()
        };
        let source =
            render(&plugin_name, &version, self.unloadable, linked_statically, &found.hooks, &found.live, &identity)?;
        let path = out_dir.join("hotswap_registry.rs");
        write_if_changed(&path, &source)?;
        Ok(Generated { path, source, scanned: found.scanned, hooks: found.hooks, live: found.live })
    }
}

/// Runs [`Config::new`]`.generate()`: the whole build script of most plugins.
pub fn generate() -> Result<Generated, Error> {
    Config::new().generate()
}

fn render(
    plugin_name: &str,
    version: &str,
    unloadable: bool,
    linked_statically: bool,
    hooks: &[HookSite],
    live: &[LiveItem],
    identity: &str,
) -> Result<String, Error> {
    render_template(TEMPLATE, plugin_name, version, unloadable, linked_statically, hooks, live, identity)
}

#[allow(clippy::too_many_arguments)]
fn render_template(
    template: &str,
    plugin_name: &str,
    version: &str,
    unloadable: bool,
    linked_statically: bool,
    hooks: &[HookSite],
    live: &[LiveItem],
    identity: &str,
) -> Result<String, Error> {
    let fill = |template: &str, item: &LiveItem| {
        template
            .replace("{{name_lit}}", &format!("{:?}", item.name))
            .replace("{{path_lit}}", &format!("{:?}", item.rust_path()))
            .replace("{{signature_lit}}", &format!("{:?}", item.description))
            .replace("{{description_lit}}", &format!("{:?}", item.description))
            .replace("{{cast}}", &item.cast)
            .replace("{{arity}}", &item.arity.to_string())
            .replace("{{params}}", &(0..item.arity).map(|i| format!("a{i}")).collect::<Vec<_>>().join(", "))
            .replace("{{path}}", &item.rust_path())
    };
    let of_kind = |kind: LiveKind| live.iter().filter(move |i| i.kind == kind);
    let live_funcs: Vec<String> = of_kind(LiveKind::Function).map(|i| fill(LIVE_FUNC_TEMPLATE, i)).collect();
    let live_types: Vec<String> = of_kind(LiveKind::Type).map(|i| fill(LIVE_TYPE_TEMPLATE, i)).collect();
    let live_impls: Vec<String> = of_kind(LiveKind::Type).map(|i| fill(LIVE_IMPL_TEMPLATE, i)).collect();
    let mut text = template
        .replace("{{live_funcs}}", &live_funcs.join(", "))
        .replace("{{live_types}}", &live_types.join(", "))
        .replace("{{live_type_impls}}", &live_impls.join("\n"));
    // Each hook coerced to the type the contract states (`hotswap_abi::Hook::fn_type`).
    let hook_consts: Vec<String> = hooks
        .iter()
        .map(|site| {
            format!("const {}: {} = {};", site.hook.name().to_uppercase(), site.hook.fn_type(), site.rust_path())
        })
        .collect();
    text = text
        .replace("{{hook_consts}}", &hook_consts.join("\n"))
        .replace("{{layout_version}}", &hotswap_abi::LAYOUT_VERSION.to_string())
        .replace("{{fingerprint_symbol}}", hotswap_abi::FINGERPRINT_SYMBOL)
        .replace("{{name_symbol}}", hotswap_abi::NAME_SYMBOL)
        .replace("{{version_symbol}}", hotswap_abi::VERSION_SYMBOL)
        .replace("{{descriptor_symbol}}", hotswap_abi::DESCRIPTOR_SYMBOL)
        .replace("{{identity_symbol}}", hotswap_abi::IDENTITY_SYMBOL)
        .replace("{{identity_len}}", &identity.len().to_string())
        .replace("{{identity_bytes}}", &byte_literal(identity))
        .replace("{{unloadable}}", if unloadable { "true" } else { "false" })
        .replace("{{export_attr}}", if linked_statically { "" } else { "#[unsafe(no_mangle)]" })
        .replace("{{plugin_name_lit}}", &format!("{plugin_name:?}"))
        .replace("{{version_lit}}", &format!("{version:?}"))
        .replace("{{plugin_name_len}}", &plugin_name.len().to_string())
        .replace("{{plugin_name_bytes}}", &byte_literal(plugin_name))
        .replace("{{version_len}}", &version.len().to_string())
        .replace("{{version_bytes}}", &byte_literal(version))
        .replace("{{plugin_name}}", plugin_name);
    // A placeholder left in would often still parse (`{{reloadable}}` is a block in a block).
    if let Some(left) = unfilled_placeholder(&text) {
        return Err(Error::Placeholder(left.to_string()));
    }
    let file = syn::parse_file(&text).map_err(Error::Template)?;
    let mut out = String::from("// @generated by hotswap-build. Do not edit.\n");
    out.push_str(&prettyplease::unparse(&file));
    Ok(out)
}

/// The first `{{word}}` in `text`, if any.
fn unfilled_placeholder(text: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(at) = text[from..].find("{{") {
        let start = from + at;
        let name = &text[start + 2..];
        let name_len = name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(name.len());
        let end = start + 2 + name_len;
        if name_len > 0 && text[end..].starts_with("}}") {
            return Some(&text[start..end + 2]);
        }
        from = start + 1;
    }
    None
}

/// `b"..."` for `s`, escaped.
pub(crate) fn byte_literal(s: &str) -> String {
    let mut out = String::from("b\"");
    for b in s.bytes() {
        out.extend(std::ascii::escape_default(b).map(char::from));
    }
    out.push('"');
    out
}

pub(crate) fn write_if_changed(path: &Path, contents: &str) -> Result<(), Error> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension("rs.tmp");
    std::fs::write(&tmp, contents).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_are_send_sync_and_small() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<super::Error>();
        // Clippy's `result_large_err` threshold: every `Result<_, Error>` stays cheap to return.
        assert!(std::mem::size_of::<super::Error>() <= 128, "{}", std::mem::size_of::<super::Error>());
    }

    #[test]
    fn unfilled_placeholders_are_found() {
        assert_eq!(super::unfilled_placeholder("a {{reloadable}} b"), Some("{{reloadable}}"));
        assert_eq!(super::unfilled_placeholder("{ { x } } {{}} {{ a }} {{a-b}}"), None);
        assert_eq!(super::unfilled_placeholder("{{{x}}"), Some("{{x}}"));
    }

    #[test]
    fn rendering_fails_on_a_placeholder_left_in_the_template() {
        let template = super::TEMPLATE.replace("{{live_type_impls}}", "const X: u8 = {{new_placeholder}};");
        let error = super::render_template(&template, "p", "1", true, false, &[], &[], "").unwrap_err();
        assert!(error.to_string().contains("placeholder `{{new_placeholder}}` was left unfilled"), "{error}");
        // A hook the scan did not provide leaves its constant out; the rest still renders.
        assert!(super::render_template(super::TEMPLATE, "p", "1", true, false, &[], &[], "").is_ok());
    }
}
