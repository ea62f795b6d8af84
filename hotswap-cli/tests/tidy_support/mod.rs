//! The source reading behind the tidy tests: comments, strings and test modules blanked out,
//! the paths each file refers to, and the module graph of a crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path: `[]` is the crate root, `["commands", "build"]` is `commands::build`.
pub type ModPath = Vec<String>;

/// Where one module refers to another: the referring file and line.
#[derive(Debug, Clone)]
pub struct Reference {
    pub file: String,
    pub line: usize,
}

/// Every `.rs` file under `dir`, recursively, relative to `dir`.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// A library's sources, by path relative to `src/` (`src/bin` is not the library), of the
/// crate in `crate_dir`.
pub fn library_sources(crate_dir: &Path) -> BTreeMap<String, String> {
    let src = crate_dir.join("src");
    rust_files(&src)
        .into_iter()
        .filter(|p| !p.starts_with("bin"))
        .map(|p| (p.to_string_lossy().into_owned(), std::fs::read_to_string(src.join(&p)).unwrap()))
        .collect()
}

/// The module a file under `src/` defines.
pub fn module_of(file: &str) -> ModPath {
    let stem = file.strip_suffix(".rs").expect("a .rs file");
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("lib" | "mod")) {
        parts.pop();
    }
    parts
}

/// `source` with comments, string and character literals blanked out (newlines kept, so
/// line numbers hold), and `#[cfg(test)] mod … { … }` blocks removed likewise.
pub fn strip(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let ident_before = out.last().is_some_and(|p| p.is_alphanumeric() || *p == '_');
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.extend([' ', ' ']);
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.extend([' ', ' ']);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && !ident_before && matches!(next, Some('"' | '#')) {
            // A raw string: r"…", r#"…"#, …
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let body_start = i + 2 + hashes;
            let rest: String = chars[body_start..].iter().collect();
            let body_len = rest.find(&close).map_or(rest.chars().count(), |b| rest[..b].chars().count());
            let end = (body_start + body_len + close.chars().count()).min(chars.len());
            out.extend(chars[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && next == Some('\\') {
            // An escaped character literal: '\n', '\'', '\u{1F600}'.
            let end = (i + 2..chars.len()).find(|&j| chars[j] == '\'' && j > i + 2).unwrap_or(chars.len() - 1);
            out.extend(chars[i..=end].iter().map(|_| ' '));
            i = end + 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            out.extend([' ', ' ', ' ']);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    remove_test_modules(&out.into_iter().collect::<String>())
}

/// Blanks `#[cfg(test)] mod name { … }` blocks (in already stripped text).
pub fn remove_test_modules(text: &str) -> String {
    let mut out: Vec<char> = text.chars().collect();
    let mut from = 0;
    while let Some(found) = text[from..].find("#[cfg(test)]") {
        let start = from + found;
        let after = text[start + "#[cfg(test)]".len()..].trim_start();
        from = start + 1;
        if !after.starts_with("mod ") {
            continue;
        }
        let Some(open) = text[start..].find('{').map(|o| start + o) else { break };
        let mut depth = 0;
        let mut end = text.len();
        for (offset, c) in text[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + offset + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        // Byte offsets to char offsets: the stripped text is ASCII outside identifiers.
        let (cs, ce) = (text[..start].chars().count(), text[..end].chars().count());
        for c in &mut out[cs..ce] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        from = end;
    }
    out.into_iter().collect()
}

/// The paths a stripped source refers to, each as the segments after its first one, with the
/// first (`crate`, `super`, `self` or a plain name) and the line.
pub fn paths_in(text: &str) -> Vec<(String, Vec<String>, usize)> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\n' {
            line += 1;
        }
        let after_colons = i >= 2 && chars[i - 1] == ':' && chars[i - 2] == ':';
        let starts_path =
            is_ident(chars[i]) && !chars[i].is_ascii_digit() && (i == 0 || !is_ident(chars[i - 1])) && !after_colons;
        if !starts_path {
            i += 1;
            continue;
        }
        let read_ident = |at: usize| -> (String, usize) {
            let end = (at..chars.len()).find(|&j| !is_ident(chars[j])).unwrap_or(chars.len());
            (chars[at..end].iter().collect(), end)
        };
        let (first, mut at) = read_ident(i);
        let mut rest = Vec::new();
        let mut groups = Vec::new();
        while chars.get(at) == Some(&':') && chars.get(at + 1) == Some(&':') {
            at += 2;
            while chars.get(at).is_some_and(|c| c.is_whitespace()) {
                at += 1;
            }
            if chars.get(at) == Some(&'{') {
                // `use crate::{a, b::c}`: each first name of the group.
                let mut depth = 0;
                let mut expect_name = true;
                while at < chars.len() {
                    match chars[at] {
                        '{' => {
                            depth += 1;
                            expect_name = depth == 1;
                        }
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        ',' if depth == 1 => expect_name = true,
                        c if is_ident(c) && expect_name && depth == 1 => {
                            let (name, end) = read_ident(at);
                            groups.push(name);
                            expect_name = false;
                            at = end;
                            continue;
                        }
                        c if !c.is_whitespace() && depth == 1 => expect_name = false,
                        _ => {}
                    }
                    at += 1;
                }
                break;
            }
            if !chars.get(at).is_some_and(|&c| is_ident(c)) {
                break;
            }
            let (segment, end) = read_ident(at);
            rest.push(segment);
            at = end;
        }
        if groups.is_empty() {
            if !rest.is_empty() {
                found.push((first, rest, line));
            }
        } else {
            for name in groups {
                let mut path = rest.clone();
                path.push(name);
                found.push((first.clone(), path, line));
            }
        }
        line += chars[i..at.min(chars.len())].iter().filter(|&&c| c == '\n').count();
        i = at.max(i + 1);
    }
    found
}

/// The module graph: for each module, the modules it refers to and where first.
pub fn module_graph(sources: &BTreeMap<String, String>) -> BTreeMap<ModPath, BTreeMap<ModPath, Reference>> {
    let modules: BTreeSet<ModPath> = sources.keys().map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<ModPath, BTreeMap<ModPath, Reference>> = BTreeMap::new();
    for (file, source) in sources {
        let here = module_of(file);
        let edges = graph.entry(here.clone()).or_default();
        for (first, rest, line) in paths_in(&strip(source)) {
            let mut base = match first.as_str() {
                "crate" => Vec::new(),
                "self" => here.clone(),
                "super" => here[..here.len().saturating_sub(1)].to_vec(),
                name => {
                    let mut child = here.clone();
                    child.push(name.to_string());
                    if !modules.contains(&child) {
                        continue; // not a path into this crate (std::…, anyhow::…, a type's item)
                    }
                    child
                }
            };
            let mut target = base.clone();
            for segment in rest {
                base.push(segment);
                if modules.contains(&base) {
                    target = base.clone();
                }
            }
            if target != here {
                edges.entry(target).or_insert(Reference { file: file.clone(), line });
            }
        }
    }
    graph
}

/// A cycle of the graph, as the modules along it (the first repeated at the end), if any.
pub fn find_cycle(graph: &BTreeMap<ModPath, BTreeMap<ModPath, Reference>>) -> Option<Vec<ModPath>> {
    fn visit(
        node: &ModPath,
        graph: &BTreeMap<ModPath, BTreeMap<ModPath, Reference>>,
        stack: &mut Vec<ModPath>,
        done: &mut BTreeSet<ModPath>,
    ) -> Option<Vec<ModPath>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if !done.insert(node.clone()) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flat_map(|edges| edges.keys()) {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

pub fn name(module: &ModPath) -> String {
    if module.is_empty() { "crate".to_string() } else { module.join("::") }
}

/// The cycle, each step with the file and line of its reference.
pub fn describe(cycle: &[ModPath], graph: &BTreeMap<ModPath, BTreeMap<ModPath, Reference>>) -> String {
    cycle
        .windows(2)
        .map(|w| {
            let at = &graph[&w[0]][&w[1]];
            format!("{} -> {} (src/{}:{})", name(&w[0]), name(&w[1]), at.file, at.line)
        })
        .collect::<Vec<_>>()
        .join("\n")
}
