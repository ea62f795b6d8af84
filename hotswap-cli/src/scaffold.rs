//! Scaffolding (`new plugin <path>`, `new host <path>`): crates from `templates/`, added to the
//! workspace.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use toml_edit::{DocumentMut, Item, Value};

use crate::paths::normalize;

const PLUGIN_FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../templates/new-plugin/Cargo.toml.tmpl")),
    ("build.rs", include_str!("../templates/new-plugin/build.rs.tmpl")),
    ("src/lib.rs", include_str!("../templates/new-plugin/src/lib.rs.tmpl")),
];
const HOST_FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../templates/new-host/Cargo.toml.tmpl")),
    ("build.rs", include_str!("../templates/new-host/build.rs.tmpl")),
    ("src/main.rs", include_str!("../templates/new-host/src/main.rs.tmpl")),
];

/// What `new` creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A plugin crate: a cdylib with the seven hooks and one live function.
    Plugin,
    /// A host binary that loads a folder of plugins and reloads them on request.
    Host,
}

/// What to scaffold ([`scaffold`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewOptions {
    /// A plugin or a host.
    pub kind: Kind,
    /// Folder of the new crate; it must not exist yet, or be empty.
    pub path: PathBuf,
    /// Crate name; `None` for the folder's name.
    pub name: Option<String>,
    /// The hotswap checkout to depend on (holding hotswap-runtime/ and hotswap-build/).
    pub hotswap_path: Option<PathBuf>,
    /// Depend on the hotswap crates from the registry at this version requirement (wins over
    /// `hotswap_path`).
    pub hotswap_version: Option<String>,
    /// Where the scaffolded files and printed commands say built plugins go (default `bin`).
    pub output_dir: String,
}

impl NewOptions {
    /// A `kind` crate in `path`, with the defaults above.
    pub fn new(kind: Kind, path: PathBuf) -> NewOptions {
        NewOptions { kind, path, name: None, hotswap_path: None, hotswap_version: None, output_dir: "bin".into() }
    }
}

/// What `new` did.
#[derive(Debug)]
pub struct Scaffolded {
    /// The crate's folder.
    pub dir: PathBuf,
    /// Its name.
    pub name: String,
    /// The files written, relative to `dir`.
    pub files: Vec<PathBuf>,
    /// The workspace manifest it was added to.
    pub workspace: PathBuf,
    /// Whether that workspace manifest was created.
    pub workspace_created: bool,
}

/// Creates the crate and adds it to the workspace; `tool` is the command the generated files
/// name (`cargo hotswap`). Refuses to overwrite anything.
pub fn scaffold(args: &NewOptions, tool: &str) -> Result<Scaffolded> {
    let cwd = std::env::current_dir().context("the current folder")?;
    let dir = normalize(&cwd.join(&args.path));
    let folder_name = dir.file_name().and_then(|n| n.to_str()).context("the new crate's path has no folder name")?;
    let name = args.name.clone().unwrap_or_else(|| folder_name.to_string());
    check_crate_name(&name)?;
    if dir.exists() {
        let empty = dir.is_dir() && std::fs::read_dir(&dir)?.next().is_none();
        if !empty {
            bail!("{} already exists and is not empty; nothing was written", dir.display());
        }
    }

    let (workspace, workspace_created) = match find_workspace(dir.parent().unwrap_or(&dir))? {
        Some(w) => (w, false),
        None => {
            let manifest = cwd.join("Cargo.toml");
            if manifest.exists() {
                bail!(
                    "{} is a package, not a workspace; add a [workspace] table to it, or run `new` in a folder of its own",
                    manifest.display()
                );
            }
            if !dir.starts_with(&cwd) {
                bail!(
                    "no Cargo workspace holds {}; run `new` from the folder that should become its workspace",
                    dir.display()
                );
            }
            (manifest, true)
        }
    };
    let root = workspace.parent().expect("a manifest has a folder").to_path_buf();
    let member = dir.strip_prefix(&root).map_err(|_| {
        anyhow::anyhow!(
            "{} is outside its workspace {}; create it inside {}",
            dir.display(),
            workspace.display(),
            root.display()
        )
    })?;
    let member = member.to_str().context("the crate's path is not UTF-8")?.replace('\\', "/");

    let mut doc: DocumentMut = if workspace_created {
        "[workspace]\nresolver = \"3\"\nmembers = []\n".parse().expect("a valid manifest")
    } else {
        std::fs::read_to_string(&workspace)
            .with_context(|| format!("reading {}", workspace.display()))?
            .parse()
            .with_context(|| format!("parsing {}", workspace.display()))?
    };
    let (runtime_dep, build_dep) = dependency_lines(&mut doc, args)?;
    add_member(&mut doc, &member)?;

    let templates = match args.kind {
        Kind::Plugin => PLUGIN_FILES,
        Kind::Host => HOST_FILES,
    };
    let plugin_path = display_path(&dir);
    let mut files = Vec::new();
    for (file, template) in templates {
        let text = template
            .replace("{{crate_name}}", &name)
            .replace("{{runtime_dep}}", &runtime_dep)
            .replace("{{build_dep}}", &build_dep)
            .replace("{{tool}}", tool)
            .replace("{{plugin_path}}", &plugin_path)
            .replace("{{output_dir}}", &args.output_dir);
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("files are in a folder"))
            .with_context(|| format!("creating {}", path.parent().unwrap().display()))?;
        // create_new: never overwrite, even if something appeared since the check above.
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        std::io::Write::write_all(&mut out, text.as_bytes())?;
        files.push(PathBuf::from(file));
    }
    crate::atomic::write_atomically(&workspace, doc.to_string().as_bytes())?;
    Ok(Scaffolded { dir, name, files, workspace, workspace_created })
}

/// The nearest Cargo.toml with a `[workspace]` table at or above `start`.
fn find_workspace(start: &Path) -> Result<Option<PathBuf>> {
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if manifest.is_file() {
            let text = std::fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
            let doc: DocumentMut = text.parse().with_context(|| format!("parsing {}", manifest.display()))?;
            if doc.contains_key("workspace") {
                return Ok(Some(manifest));
            }
        }
    }
    Ok(None)
}

/// Where the hotswap crates come from, when `new` adds them to `[workspace.dependencies]`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// A hotswap checkout holding `hotswap-runtime/` and `hotswap-build/`.
    Path(PathBuf),
    /// The registry, at this version requirement.
    Registry(String),
}

impl Source {
    /// `--hotswap-version`, else `--hotswap-path`, else the checkout this tool was built from,
    /// else the registry at this tool's own version.
    fn of(args: &NewOptions) -> Result<Source> {
        if let Some(version) = &args.hotswap_version {
            cargo_metadata::semver::VersionReq::parse(version)
                .with_context(|| format!("--hotswap-version {version} is not a version requirement"))?;
            return Ok(Source::Registry(version.clone()));
        }
        match args.hotswap_path.clone().or_else(built_from) {
            Some(checkout) => {
                let checkout =
                    checkout.canonicalize().with_context(|| format!("--hotswap-path {}", checkout.display()))?;
                Ok(Source::Path(checkout))
            }
            None => Ok(Source::Registry(env!("CARGO_PKG_VERSION").to_string())),
        }
    }

    /// The `[workspace.dependencies]` entry for `krate`. The runtime's default `host` feature is
    /// off there, so plugins (`workspace = true`) build without the host side; hosts turn it
    /// on in their own manifest.
    fn entry(&self, krate: &str) -> Result<Value> {
        let mut inline = toml_edit::InlineTable::new();
        match self {
            Source::Path(checkout) => {
                let path = checkout.join(krate);
                if !path.join("Cargo.toml").is_file() {
                    bail!("{} has no {krate}/Cargo.toml: is it a hotswap checkout?", checkout.display());
                }
                inline.insert("path", Value::from(path.to_str().context("the hotswap path is not UTF-8")?));
            }
            Source::Registry(version) => {
                inline.insert("version", Value::from(version.as_str()));
            }
        }
        if krate == "hotswap-runtime" {
            inline.insert("default-features", Value::from(false));
        }
        Ok(Value::InlineTable(inline))
    }
}

/// The dependency lines for the new crate: from `[workspace.dependencies]`, which gets the
/// hotswap crates added (see [`Source`]) when it lacks them.
fn dependency_lines(doc: &mut DocumentMut, args: &NewOptions) -> Result<(String, String)> {
    let workspace = doc["workspace"].or_insert(toml_edit::table());
    let deps = workspace
        .as_table_mut()
        .context("[workspace] is not a table")?
        .entry("dependencies")
        .or_insert(toml_edit::table())
        .as_table_mut()
        .context("[workspace.dependencies] is not a table")?;
    let missing: Vec<&str> =
        ["hotswap-runtime", "hotswap-build"].into_iter().filter(|c| !deps.contains_key(c)).collect();
    if !missing.is_empty() {
        let source = Source::of(args)?;
        for krate in missing {
            deps.insert(krate, Item::Value(source.entry(krate)?));
        }
        // First use of hotswap in this workspace: a host hashes every plugin library it loads,
        // which takes a quarter of a second per debug build of a plugin unless sha2 is
        // optimised in dev builds too.
        let profile = doc.entry("profile").or_insert(toml_edit::table());
        if let Some(profile) = profile.as_table_mut() {
            profile.set_implicit(true);
            let dev = profile.entry("dev").or_insert(toml_edit::table());
            if let Some(dev) = dev.as_table_mut() {
                dev.set_implicit(true);
                let package = dev.entry("package").or_insert(toml_edit::table());
                if let Some(package) = package.as_table_mut() {
                    package.set_implicit(true);
                    if !package.contains_key("sha2") {
                        let mut sha2 = toml_edit::Table::new();
                        sha2.insert("opt-level", toml_edit::value(3));
                        package.insert("sha2", Item::Table(sha2));
                    }
                }
            }
        }
    }
    let runtime = match args.kind {
        Kind::Plugin => "hotswap-runtime.workspace = true",
        Kind::Host => "hotswap-runtime = { workspace = true, features = [\"host\"] }",
    };
    Ok((runtime.into(), "hotswap-build.workspace = true".into()))
}

/// The hotswap checkout this tool was compiled from, if it is still there.
fn built_from() -> Option<PathBuf> {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    checkout.join("hotswap-runtime/Cargo.toml").is_file().then(|| checkout.to_path_buf())
}

/// Adds `member` to `[workspace] members` unless one of its entries (or globs) covers it.
fn add_member(doc: &mut DocumentMut, member: &str) -> Result<()> {
    let workspace = doc["workspace"].as_table_mut().context("[workspace] is not a table")?;
    let members = workspace
        .entry("members")
        .or_insert(Item::Value(Value::Array(toml_edit::Array::new())))
        .as_array_mut()
        .context("[workspace] members is not an array")?;
    let covered = members
        .iter()
        .filter_map(|m| m.as_str())
        .any(|pattern| pattern == member || (pattern.contains('*') && glob_matches(pattern, member)));
    if !covered {
        members.push(member);
    }
    Ok(())
}

/// Cargo's member globs are path globs; `*` matches one path component here, which covers
/// the usual `plugins/*`.
fn glob_matches(pattern: &str, member: &str) -> bool {
    let p: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let m: Vec<&str> = member.split('/').collect();
    p.len() == m.len() && p.iter().zip(&m).all(|(p, m)| component_matches(p, m))
}

fn component_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((prefix, suffix)) => {
            name.len() >= prefix.len() + suffix.len() && name.starts_with(prefix) && name.ends_with(suffix)
        }
    }
}

fn check_crate_name(name: &str) -> Result<()> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        bail!(
            "`{name}` is not a valid crate name: use letters, digits, `_` and `-`, starting with a letter (or pass --name)"
        );
    }
    Ok(())
}

/// The path relative to the current folder when it is inside it, for printed commands.
pub fn display_path(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd).unwrap_or(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_cover_members_one_component_per_star() {
        assert!(glob_matches("plugins/*", "plugins/greeter"));
        assert!(glob_matches("demo/*/plugin/*", "demo/hello/plugin/foo"));
        assert!(!glob_matches("plugins/*", "plugins/a/b"));
        assert!(!glob_matches("plugins/*", "host"));
        assert!(glob_matches("plug*", "plugin"));
    }

    #[test]
    fn crate_names_are_checked() {
        assert!(check_crate_name("greeter_2").is_ok());
        assert!(check_crate_name("my-host").is_ok());
        assert!(check_crate_name("2fast").is_err());
        assert!(check_crate_name("a b").is_err());
    }
}
