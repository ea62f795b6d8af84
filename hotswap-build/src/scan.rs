//! Walking the source tree and finding the hooks.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use hotswap_abi::Hook;
use regex::Regex;

use crate::Error;

/// Where a hook was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSite {
    /// The hook.
    pub hook: Hook,
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
        path.push_str(self.hook.name());
        path
    }
}

/// What kind of live item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LiveKind {
    /// A free function.
    Function,
    /// A struct or enum.
    Type,
}

/// A live item found in the sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveItem {
    /// Function or type.
    pub kind: LiveKind,
    /// The item's name.
    pub name: String,
    /// Module path below the crate root.
    pub module: Vec<String>,
    /// File, relative to the crate root.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// For a function, its signature as written (`fn(i64) -> i64`); for a type, a stable
    /// description of its fields (`struct LiveJob { id: u64 }`).
    pub description: String,
    /// For a function, the function-pointer type it is cast to, with `_` where the compiler
    /// infers (`fn(_) -> _`, `fn(&_) -> _`).
    pub cast: String,
    /// For a function, its number of parameters.
    pub arity: usize,
}

impl LiveItem {
    /// The item's path, e.g. `crate::jobs::LiveJob`.
    pub fn rust_path(&self) -> String {
        let mut path = String::from("crate");
        for m in &self.module {
            path.push_str("::");
            path.push_str(m);
        }
        path.push_str("::");
        path.push_str(&self.name);
        path
    }
}

/// Whether `name` is a live function name: it starts with `prefix`, compared
/// case-insensitively (`live_add`, `LIVE_add`).
pub fn is_live_function(name: &str, prefix: &str) -> bool {
    !prefix.is_empty() && name.len() > prefix.len() && name.to_lowercase().starts_with(&prefix.to_lowercase())
}

/// Whether `name` is a live type name: it starts with the prefix without its underscores,
/// compared case-insensitively, followed by an upper-case letter or `_` (`LiveJob`,
/// `LIVEJob`, `Live_Job`; not `Liver`). With prefix `hot_`: `HotJob`.
pub fn is_live_type(name: &str, prefix: &str) -> bool {
    let stem: String = prefix.chars().filter(|c| *c != '_').collect();
    if stem.is_empty() || name.len() <= stem.len() || !name.is_char_boundary(stem.len()) {
        return false;
    }
    let (head, rest) = name.split_at(stem.len());
    head.eq_ignore_ascii_case(&stem) && rest.chars().next().is_some_and(|c| c.is_ascii_uppercase() || c == '_')
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
                .map(|p| Regex::new(p).map_err(|source| Error::Regex { flag, pattern: p.clone(), source }))
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
    pub live: Vec<LiveItem>,
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

/// Where a module is declared, and whether code at the crate root (the generated registry)
/// may name it.
struct ModuleDecl {
    file: PathBuf,
    line: usize,
    reaches_root: bool,
}

/// Records every module declared in `items` (file modules and inline ones), by path.
fn module_decls(items: &[syn::Item], prefix: &[String], file: &Path, out: &mut BTreeMap<Vec<String>, ModuleDecl>) {
    for item in items {
        if let syn::Item::Mod(m) = item {
            if is_cfg_test(&m.attrs) {
                continue;
            }
            let mut path = prefix.to_vec();
            path.push(m.ident.to_string());
            let decl = ModuleDecl {
                file: file.to_path_buf(),
                line: m.ident.span().start().line,
                reaches_root: reaches_root(&m.vis, prefix.len()),
            };
            out.insert(path.clone(), decl);
            if let Some((_, inner)) = &m.content {
                module_decls(inner, &path, file, out);
            }
        }
    }
}

/// Whether an item declared with `vis` in a module `depth` levels below the crate root can be
/// named from the crate root's other modules (where the generated registry lives): anything
/// at the root can, below it only `pub`, `pub(crate)`, or `pub(super)` one level down.
fn reaches_root(vis: &syn::Visibility, depth: usize) -> bool {
    match vis {
        _ if depth == 0 => true,
        syn::Visibility::Public(_) => true,
        syn::Visibility::Inherited => false,
        syn::Visibility::Restricted(r) => {
            let path = &r.path;
            (path.is_ident("crate")) || (path.is_ident("super") && depth == 1)
        }
    }
}

/// The first module on `module`'s path that the crate root cannot name, if any.
fn hidden_module<'m>(
    module: &[String],
    decls: &'m BTreeMap<Vec<String>, ModuleDecl>,
) -> Option<(String, &'m ModuleDecl)> {
    (2..=module.len()).find_map(|len| {
        let decl = decls.get(&module[..len])?;
        (!decl.reaches_root).then(|| (module[..len].join("::"), decl))
    })
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.meta.require_list().is_ok_and(|l| l.tokens.to_string().trim() == "test"))
}

pub(crate) fn scan(crate_dir: &Path, filter: &FileFilter, live_prefix: &str) -> Result<Found, Error> {
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
        let text = std::fs::read_to_string(entry.path())
            .map_err(|source| Error::Io { path: entry.path().to_path_buf(), source })?;
        let ast = syn::parse_file(&text).map_err(|e| Error::Parse {
            file: relative.clone(),
            line: e.span().start().line,
            source: e,
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
    let mut decls = BTreeMap::new();
    for p in &parsed {
        module_decls(&p.ast.items, &p.module, &p.relative, &mut decls);
    }

    let mut sites: BTreeMap<Hook, (HookSite, &syn::ItemFn)> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut live = Vec::new();
    for p in &parsed {
        let mut ctx =
            Collector { file: &p.relative, live_prefix, sites: &mut sites, live: &mut live, errors: &mut errors };
        ctx.collect(&p.ast.items, &p.module);
    }
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let mut hooks = Vec::new();
    for hook in Hook::ALL {
        match sites.remove(&hook) {
            Some((site, item)) => {
                check_signature(&site, item)?;
                if let Some((module, decl)) = hidden_module(&site.module, &decls) {
                    return Err(Error::HiddenModule {
                        module,
                        file: decl.file.clone(),
                        line: decl.line,
                        item: format!("hook `{hook}` ({}:{})", site.file.display(), site.line),
                    });
                }
                hooks.push(site);
            }
            None => {
                return Err(Error::MissingHook {
                    hook,
                    expected: hook.signature(),
                    root: src.clone(),
                    scanned: parsed.len(),
                });
            }
        }
    }
    for item in &live {
        if let Some((module, decl)) = hidden_module(&item.module, &decls) {
            return Err(Error::HiddenModule {
                module,
                file: decl.file.clone(),
                line: decl.line,
                item: format!("live item `{}` ({}:{})", item.name, item.file.display(), item.line),
            });
        }
    }
    live.sort_by(|a, b| (&a.name, &a.file, a.line).cmp(&(&b.name, &b.file, b.line)));
    for pair in live.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(Error::DuplicateLive {
                name: pair[0].name.clone(),
                first: Box::new(pair[0].clone()),
                second: Box::new(pair[1].clone()),
            });
        }
    }
    Ok(Found { scanned: parsed.into_iter().map(|p| p.relative).collect(), hooks, live })
}

struct Collector<'a, 'b> {
    file: &'b Path,
    live_prefix: &'b str,
    sites: &'b mut BTreeMap<Hook, (HookSite, &'a syn::ItemFn)>,
    live: &'b mut Vec<LiveItem>,
    errors: &'b mut Vec<Error>,
}

impl<'a> Collector<'a, '_> {
    fn collect(&mut self, items: &'a [syn::Item], module: &[String]) {
        for item in items {
            match item {
                syn::Item::Fn(f) if !is_cfg_test(&f.attrs) => {
                    let name = f.sig.ident.to_string();
                    if let Some(hook) = Hook::from_name(&name) {
                        self.hook(hook, f, module);
                    } else if is_live_function(&name, self.live_prefix) {
                        self.live_function(f, module);
                    }
                }
                syn::Item::Struct(s)
                    if !is_cfg_test(&s.attrs) && is_live_type(&s.ident.to_string(), self.live_prefix) =>
                {
                    self.live_type(&s.ident, &s.generics, &s.vis, describe_struct(s), module);
                }
                syn::Item::Enum(e)
                    if !is_cfg_test(&e.attrs) && is_live_type(&e.ident.to_string(), self.live_prefix) =>
                {
                    self.live_type(&e.ident, &e.generics, &e.vis, describe_enum(e), module);
                }
                syn::Item::Mod(m) if !is_cfg_test(&m.attrs) => {
                    if let Some((_, inner)) = &m.content {
                        let mut path = module.to_vec();
                        path.push(m.ident.to_string());
                        self.collect(inner, &path);
                    }
                }
                _ => {}
            }
        }
    }

    fn hook(&mut self, hook: Hook, f: &'a syn::ItemFn, module: &[String]) {
        let site = HookSite {
            hook,
            module: module.to_vec(),
            file: self.file.to_path_buf(),
            line: f.sig.ident.span().start().line,
        };
        if let Some((first, _)) = self.sites.get(&hook) {
            self.errors.push(Error::DuplicateHook {
                hook,
                first: (first.file.clone(), first.line),
                second: (site.file.clone(), site.line),
            });
            return;
        }
        self.sites.insert(hook, (site, f));
    }

    fn bad_live(&mut self, name: &str, line: usize, problem: &str) {
        self.errors.push(Error::BadLive {
            name: name.to_string(),
            file: self.file.to_path_buf(),
            line,
            problem: problem.to_string(),
        });
    }

    fn live_function(&mut self, f: &syn::ItemFn, module: &[String]) {
        let sig = &f.sig;
        let name = sig.ident.to_string();
        let line = sig.ident.span().start().line;
        let problem = if sig.asyncness.is_some() {
            Some("must not be `async`")
        } else if !sig.generics.params.is_empty() {
            Some("must not be generic (a live function is registered as one function pointer)")
        } else if !matches!(sig.safety, syn::Safety::Default) || sig.abi.is_some() || sig.variadic.is_some() {
            Some("must be a plain `fn` (not unsafe, extern or variadic)")
        } else if !reaches_root(&f.vis, module.len()) {
            Some("is private in a nested module; make it `pub` so the registry can reach it")
        } else {
            None
        };
        if let Some(problem) = problem {
            return self.bad_live(&name, line, problem);
        }
        let mut written = Vec::new();
        let mut cast = Vec::new();
        for input in &sig.inputs {
            let syn::FnArg::Typed(pat) = input else { return self.bad_live(&name, line, "must be a free function") };
            if contains_impl_trait(&pat.ty) {
                return self.bad_live(&name, line, "must not take `impl Trait` parameters");
            }
            written.push(type_text(&pat.ty));
            cast.push(inferred(&pat.ty));
        }
        let (ret_written, ret_cast) = match &sig.output {
            syn::ReturnType::Default => (String::new(), String::new()),
            syn::ReturnType::Type(_, ty) => {
                if contains_impl_trait(ty) {
                    return self.bad_live(&name, line, "must not return `impl Trait`");
                }
                (format!(" -> {}", type_text(ty)), format!(" -> {}", inferred(ty)))
            }
        };
        self.live.push(LiveItem {
            kind: LiveKind::Function,
            name,
            module: module.to_vec(),
            file: self.file.to_path_buf(),
            line,
            description: format!("fn({}){ret_written}", written.join(", ")),
            arity: cast.len(),
            cast: format!("fn({}){ret_cast}", cast.join(", ")),
        });
    }

    fn live_type(
        &mut self,
        ident: &syn::Ident,
        generics: &syn::Generics,
        vis: &syn::Visibility,
        description: String,
        module: &[String],
    ) {
        let name = ident.to_string();
        let line = ident.span().start().line;
        if !generics.params.is_empty() {
            return self.bad_live(&name, line, "must not be generic (a live type is registered by name)");
        }
        if !reaches_root(vis, module.len()) {
            return self.bad_live(
                &name,
                line,
                "is private in a nested module; make it `pub` so the registry can reach it",
            );
        }
        self.live.push(LiveItem {
            kind: LiveKind::Type,
            name,
            module: module.to_vec(),
            file: self.file.to_path_buf(),
            line,
            description,
            cast: String::new(),
            arity: 0,
        });
    }
}

/// A type as compact text: `Vec<String>`, `&'static str`, `Option<(u8, i64)>`.
pub(crate) fn type_text(ty: &syn::Type) -> String {
    use quote::ToTokens;
    compact(&ty.to_token_stream().to_string())
}

/// Drops the spaces `to_string` puts between tokens, except between two words, after a
/// comma and around `->`.
fn compact(tokens: &str) -> String {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let chars: Vec<char> = tokens.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c != ' ' {
            out.push(c);
            continue;
        }
        let (Some(prev), Some(&next)) = (out.chars().last(), chars.get(i + 1)) else { continue };
        let arrow_next = next == '-' && chars.get(i + 2) == Some(&'>');
        if (word(prev) && (word(next) || next == '\'')) || prev == ',' || out.ends_with("->") || arrow_next {
            out.push(' ');
        }
    }
    out
}

/// The function-pointer parameter type to cast to: references keep their shape, so that the
/// pointer stays higher-ranked over their lifetimes (`&_`, `&mut _`); everything else is
/// inferred (`_`).
fn inferred(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Reference(r) if r.mutability.is_some() => format!("&mut {}", inferred(&r.elem)),
        syn::Type::Reference(r) => format!("&{}", inferred(&r.elem)),
        syn::Type::Paren(p) => inferred(&p.elem),
        _ => "_".to_string(),
    }
}

fn contains_impl_trait(ty: &syn::Type) -> bool {
    use quote::ToTokens;
    ty.to_token_stream().into_iter().any(|t| matches!(t, proc_macro2::TokenTree::Ident(i) if i == "impl"))
}

fn describe_fields(fields: &syn::Fields) -> String {
    match fields {
        syn::Fields::Named(named) => {
            let list: Vec<String> = named
                .named
                .iter()
                .map(|f| {
                    format!("{}: {}", f.ident.as_ref().map(|i| i.to_string()).unwrap_or_default(), type_text(&f.ty))
                })
                .collect();
            if list.is_empty() { " {}".to_string() } else { format!(" {{ {} }}", list.join(", ")) }
        }
        syn::Fields::Unnamed(unnamed) => {
            format!("({})", unnamed.unnamed.iter().map(|f| type_text(&f.ty)).collect::<Vec<_>>().join(", "))
        }
        syn::Fields::Unit => String::new(),
    }
}

fn describe_struct(s: &syn::ItemStruct) -> String {
    format!("struct {}{}", s.ident, describe_fields(&s.fields))
}

fn describe_enum(e: &syn::ItemEnum) -> String {
    let variants: Vec<String> =
        e.variants.iter().map(|v| format!("{}{}", v.ident, describe_fields(&v.fields))).collect();
    format!("enum {} {{ {} }}", e.ident, variants.join(", "))
}

fn check_signature(site: &HookSite, item: &syn::ItemFn) -> Result<(), Error> {
    let sig = &item.sig;
    let bad = |problem: String| Error::BadHook {
        hook: site.hook,
        file: site.file.clone(),
        line: site.line,
        problem,
        expected: site.hook.signature(),
    };
    if sig.asyncness.is_some() {
        return Err(bad("must not be `async`".into()));
    }
    if !matches!(sig.safety, syn::Safety::Default) {
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
    if !reaches_root(&item.vis, site.module.len()) {
        return Err(bad(format!(
            "is private in module `{}`; make it `pub` so the registry can call it",
            site.module.join("::")
        )));
    }
    let params: Vec<&syn::FnArg> = sig.inputs.iter().collect();
    // The parameters the contract states (`hotswap_abi::Hook::fn_type`).
    let expected: syn::TypeFnPtr = syn::parse_str(site.hook.fn_type()).expect("hotswap-abi's hook types parse");
    let want = expected.inputs.len();
    if params.len() != want {
        return Err(bad(format!("takes {} parameter(s), but must take {want}", params.len())));
    }
    for (i, (param, expected)) in params.iter().zip(&expected.inputs).enumerate() {
        let syn::FnArg::Typed(pat) = param else {
            return Err(bad("must be a free function, not a method".into()));
        };
        let needs_ref = matches!(expected.ty, syn::Type::Reference(_));
        if needs_ref && !matches!(*pat.ty, syn::Type::Reference(_)) {
            return Err(bad(format!("parameter {} must be a reference", i + 1)));
        }
    }
    let returns = match &sig.output {
        syn::ReturnType::Default => None,
        syn::ReturnType::Type(_, ty) => Some(ty.as_ref()),
    };
    match (site.hook, returns) {
        (Hook::OnFree, Some(ty)) if !is_unit(ty) => Err(bad("must return nothing".into())),
        (Hook::OnFree, _) => Ok(()),
        (_, None) => Err(bad("returns nothing".into())),
        (Hook::Reloadable, Some(ty)) if !last_segment_is(ty, "bool") => Err(bad("must return `bool`".into())),
        (Hook::Export, Some(ty)) if !last_segment_is(ty, "Option") => Err(bad("must return an `Option`".into())),
        (Hook::Import, Some(ty)) if !matches!(ty, syn::Type::Reference(_)) => {
            Err(bad("must return a `&'static [&'static str]`".into()))
        }
        (Hook::OnLoad | Hook::OnInit, Some(ty))
            if !(last_segment_is(ty, "HookResult") || last_segment_is(ty, "Result")) =>
        {
            Err(bad("must return `hotswap_runtime::HookResult`".into()))
        }
        (Hook::InvokeFunc, Some(ty)) if !last_segment_is(ty, "Result") => Err(bad("must return a `Result`".into())),
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
