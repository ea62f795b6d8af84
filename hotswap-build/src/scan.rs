//! Walking the source tree and finding the hooks.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::{expected_signature, Error};

/// The hooks every plugin defines.
pub const HOOKS: [&str; 7] = ["reloadable", "export", "import", "on_load", "on_init", "on_free", "invoke_func"];

/// Where a hook was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSite {
    /// The hook.
    pub hook: &'static str,
    /// Module path below the crate root (empty for the root).
    pub module: Vec<String>,
    /// File, relative to the crate root.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
}

impl HookSite {
    /// The path generated code uses, e.g. `crate::hooks::on_load`.
    pub fn rust_path(&self) -> String {
        let mut path = String::from("crate");
        for m in &self.module {
            path.push_str("::");
            path.push_str(m);
        }
        path.push_str("::");
        path.push_str(self.hook);
        path
    }
}

pub(crate) struct FileFilter {
    includes: Vec<Regex>,
    excludes: Vec<Regex>,
}

impl FileFilter {
    pub fn new(includes: &[String], excludes: &[String]) -> Result<Self, Error> {
        let compile = |flag: &'static str, patterns: &[String]| {
            patterns
                .iter()
                .map(|p| Regex::new(p).map_err(|e| Error::Regex { flag, pattern: p.clone(), message: e.to_string() }))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(FileFilter { includes: compile("--include", includes)?, excludes: compile("--exclude", excludes)? })
    }

    fn accepts(&self, relative: &str) -> bool {
        (self.includes.is_empty() || self.includes.iter().any(|r| r.is_match(relative)))
            && !self.excludes.iter().any(|r| r.is_match(relative))
    }
}

pub(crate) struct Found {
    pub scanned: Vec<PathBuf>,
    pub hooks: Vec<HookSite>,
}

struct Parsed {
    relative: PathBuf,
    module: Vec<String>,
    ast: syn::File,
}

/// The module path a file under `src/` stands for: `lib.rs` is the root, `a/mod.rs` and
/// `a.rs` are `a`, `a/b.rs` is `a::b`.
fn module_of(relative_to_src: &Path) -> Option<Vec<String>> {
    let mut parts: Vec<String> = relative_to_src.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if parts.is_empty() && stem == "lib" {
        return Some(Vec::new());
    }
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    Some(parts)
}

/// Collects `mod name;` declarations (file modules) reachable in `items`.
fn declared_modules(items: &[syn::Item], prefix: &[String], out: &mut HashSet<Vec<String>>) {
    for item in items {
        if let syn::Item::Mod(m) = item {
            if is_cfg_test(&m.attrs) {
                continue;
            }
            let mut path = prefix.to_vec();
            path.push(m.ident.to_string());
            match &m.content {
                None => {
                    out.insert(path);
                }
                Some((_, inner)) => declared_modules(inner, &path, out),
            }
        }
    }
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && a.meta.require_list().is_ok_and(|l| l.tokens.to_string().trim() == "test")
    })
}

pub(crate) fn scan(crate_dir: &Path, filter: &FileFilter, _live_prefix: &str) -> Result<Found, Error> {
    let src = crate_dir.join("src");
    let mut parsed = Vec::new();
    let mut walker: Vec<walkdir::DirEntry> = Vec::new();
    for entry in walkdir::WalkDir::new(&src).sort_by_file_name() {
        let entry = entry.map_err(|e| Error::Io {
            path: e.path().map(Path::to_path_buf).unwrap_or_else(|| src.clone()),
            source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("walk error")),
        })?;
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "rs") {
            walker.push(entry);
        }
    }
    for entry in walker {
        let relative = entry.path().strip_prefix(crate_dir).unwrap_or(entry.path()).to_path_buf();
        let relative_str = relative.to_string_lossy().replace('\\', "/");
        if !filter.accepts(&relative_str) {
            continue;
        }
        let Some(module) = module_of(entry.path().strip_prefix(&src).unwrap_or(entry.path())) else { continue };
        let text = std::fs::read_to_string(entry.path()).map_err(|source| Error::Io { path: entry.path().to_path_buf(), source })?;
        let ast = syn::parse_file(&text).map_err(|e| Error::Parse {
            file: relative.clone(),
            line: e.span().start().line,
            message: e.to_string(),
        })?;
        parsed.push(Parsed { relative, module, ast });
    }

    // Keep only files that are part of the crate: the root, and files whose module is declared
    // with `mod name;` by a file that is itself part of the crate.
    let mut reachable: HashSet<Vec<String>> = HashSet::new();
    reachable.insert(Vec::new());
    loop {
        let mut declared = HashSet::new();
        for p in parsed.iter().filter(|p| reachable.contains(&p.module)) {
            declared_modules(&p.ast.items, &p.module, &mut declared);
        }
        let before = reachable.len();
        reachable.extend(declared.into_iter().filter(|m| parsed.iter().any(|p| &p.module == m)));
        if reachable.len() == before {
            break;
        }
    }
    parsed.retain(|p| reachable.contains(&p.module));

    let mut sites: BTreeMap<&'static str, (HookSite, &syn::ItemFn)> = BTreeMap::new();
    let mut errors = Vec::new();
    for p in &parsed {
        collect_hooks(&p.ast.items, &p.module, &p.relative, &mut sites, &mut errors);
    }
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let mut hooks = Vec::new();
    for hook in HOOKS {
        match sites.remove(hook) {
            Some((site, item)) => {
                check_signature(&site, item)?;
                hooks.push(site);
            }
            None => {
                return Err(Error::MissingHook {
                    hook,
                    expected: expected_signature(hook),
                    root: src.clone(),
                    scanned: parsed.len(),
                })
            }
        }
    }
    Ok(Found { scanned: parsed.into_iter().map(|p| p.relative).collect(), hooks })
}

fn collect_hooks<'a>(
    items: &'a [syn::Item],
    module: &[String],
    file: &Path,
    sites: &mut BTreeMap<&'static str, (HookSite, &'a syn::ItemFn)>,
    errors: &mut Vec<Error>,
) {
    for item in items {
        match item {
            syn::Item::Fn(f) if !is_cfg_test(&f.attrs) => {
                let name = f.sig.ident.to_string();
                let Some(hook) = HOOKS.iter().copied().find(|h| *h == name) else { continue };
                let site = HookSite { hook, module: module.to_vec(), file: file.to_path_buf(), line: f.sig.ident.span().start().line };
                if let Some((first, _)) = sites.get(hook) {
                    errors.push(Error::DuplicateHook {
                        hook,
                        first: (first.file.clone(), first.line),
                        second: (site.file.clone(), site.line),
                    });
                    continue;
                }
                sites.insert(hook, (site, f));
            }
            syn::Item::Mod(m) if !is_cfg_test(&m.attrs) => {
                if let Some((_, inner)) = &m.content {
                    let mut path = module.to_vec();
                    path.push(m.ident.to_string());
                    collect_hooks(inner, &path, file, sites, errors);
                }
            }
            _ => {}
        }
    }
}

fn check_signature(site: &HookSite, item: &syn::ItemFn) -> Result<(), Error> {
    let sig = &item.sig;
    let bad = |problem: String| Error::BadHook {
        hook: site.hook,
        file: site.file.clone(),
        line: site.line,
        problem,
        expected: expected_signature(site.hook),
    };
    if sig.asyncness.is_some() {
        return Err(bad("must not be `async`".into()));
    }
    if sig.unsafety.is_some() {
        return Err(bad("must not be `unsafe`".into()));
    }
    if sig.abi.is_some() {
        return Err(bad("must not declare an `extern` ABI (the generated entry point does that)".into()));
    }
    if !sig.generics.params.is_empty() {
        return Err(bad("must not be generic".into()));
    }
    if sig.variadic.is_some() {
        return Err(bad("must not be variadic".into()));
    }
    if !site.module.is_empty() && matches!(item.vis, syn::Visibility::Inherited) {
        return Err(bad(format!("is private in module `{}`; make it `pub` so the registry can call it", site.module.join("::"))));
    }
    let params: Vec<&syn::FnArg> = sig.inputs.iter().collect();
    let want = match site.hook {
        "on_load" | "on_init" => 1,
        "invoke_func" => 2,
        _ => 0,
    };
    if params.len() != want {
        return Err(bad(format!("takes {} parameter(s), but must take {want}", params.len())));
    }
    for (i, param) in params.iter().enumerate() {
        let syn::FnArg::Typed(pat) = param else {
            return Err(bad("must be a free function, not a method".into()));
        };
        let needs_ref = matches!((site.hook, i), ("on_load", 0) | ("on_init", 0) | ("invoke_func", 0));
        if needs_ref && !matches!(*pat.ty, syn::Type::Reference(_)) {
            return Err(bad(format!("parameter {} must be a reference", i + 1)));
        }
    }
    let returns = match &sig.output {
        syn::ReturnType::Default => None,
        syn::ReturnType::Type(_, ty) => Some(ty.as_ref()),
    };
    match (site.hook, returns) {
        ("on_free", Some(ty)) if !is_unit(ty) => Err(bad("must return nothing".into())),
        ("on_free", _) => Ok(()),
        (_, None) => Err(bad("returns nothing".into())),
        ("reloadable", Some(ty)) if !last_segment_is(ty, "bool") => Err(bad("must return `bool`".into())),
        ("export", Some(ty)) if !last_segment_is(ty, "Option") => Err(bad("must return an `Option`".into())),
        ("import", Some(ty)) if !matches!(ty, syn::Type::Reference(_)) => {
            Err(bad("must return a `&'static [&'static str]`".into()))
        }
        ("on_load" | "on_init", Some(ty)) if !(last_segment_is(ty, "HookResult") || last_segment_is(ty, "Result")) => {
            Err(bad("must return `hotswap_runtime::HookResult`".into()))
        }
        ("invoke_func", Some(ty)) if !last_segment_is(ty, "Result") => Err(bad("must return a `Result`".into())),
        _ => Ok(()),
    }
}

fn is_unit(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Tuple(t) if t.elems.is_empty())
}

fn last_segment_is(ty: &syn::Type, name: &str) -> bool {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == name),
        syn::Type::Paren(p) => last_segment_is(&p.elem, name),
        _ => false,
    }
}
