//! Deciding what a reload does, over plain lists: which serving plugins are carried over, and
//! the order plugins load in. No I/O and no plugin code here, so both are unit-tested.

use std::collections::{BTreeMap, HashMap};

use super::report::PluginOrigin;

/// What the serving generation knows of a plugin that is in the folder again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Serving {
    /// Its `reloadable` hook said yes.
    pub reloadable: bool,
    /// The folder's file is the one it was loaded from (same identity or same sha256).
    pub same_file: bool,
    /// The plugins it imports.
    pub imports: Vec<String>,
}

/// The origin of each plugin of the next generation. `found` holds every plugin the folder
/// offers, with what the serving generation knows of it (`None`: not serving now).
///
/// A non-reloadable serving plugin is kept; one whose file is unchanged is kept when
/// `reuse_unchanged`, but only if everything it imports is kept too (repeated until stable,
/// since demoting one plugin can demote its importers); everything else is loaded.
pub(super) fn plan_origins(
    found: &BTreeMap<String, Option<Serving>>,
    reuse_unchanged: bool,
) -> BTreeMap<String, PluginOrigin> {
    let mut origins: BTreeMap<String, PluginOrigin> = found
        .iter()
        .map(|(name, serving)| {
            let origin = match serving {
                Some(s) if !s.reloadable => PluginOrigin::NotReloadable,
                Some(s) if reuse_unchanged && s.same_file => PluginOrigin::Unchanged,
                _ => PluginOrigin::Loaded,
            };
            (name.clone(), origin)
        })
        .collect();
    loop {
        let demote: Vec<String> = origins
            .iter()
            .filter(|(name, origin)| {
                **origin == PluginOrigin::Unchanged
                    && found[*name].as_ref().is_some_and(|s| {
                        s.imports.iter().any(|i| {
                            !matches!(origins.get(i), Some(PluginOrigin::Unchanged | PluginOrigin::NotReloadable))
                        })
                    })
            })
            .map(|(name, _)| name.clone())
            .collect();
        if demote.is_empty() {
            return origins;
        }
        for name in demote {
            origins.insert(name, PluginOrigin::Loaded);
        }
    }
}

/// Why plugins cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OrderError {
    /// `plugin` imports `import`, which is not among the plugins.
    Missing { plugin: String, import: String },
    /// The plugins import each other in a cycle; the first name is repeated at the end.
    Cycle(Vec<String>),
}

/// Orders plugins so that every plugin comes after the plugins it imports; plugins with no
/// order between them come by name.
pub(super) fn dependency_order(imports: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, OrderError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        name: &'a str,
        imports: &'a BTreeMap<String, Vec<String>>,
        marks: &mut HashMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
        order: &mut Vec<String>,
    ) -> Result<(), OrderError> {
        match marks.get(name) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let start = path.iter().position(|n| *n == name).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(name.to_string());
                return Err(OrderError::Cycle(cycle));
            }
            None => {}
        }
        marks.insert(name, Mark::Visiting);
        path.push(name);
        for import in &imports[name] {
            let Some((import, _)) = imports.get_key_value(import) else {
                return Err(OrderError::Missing { plugin: name.to_string(), import: import.clone() });
            };
            visit(import, imports, marks, path, order)?;
        }
        path.pop();
        marks.insert(name, Mark::Done);
        order.push(name.to_string());
        Ok(())
    }
    let mut marks = HashMap::new();
    let mut order = Vec::new();
    for name in imports.keys() {
        visit(name, imports, &mut marks, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imports(list: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        list.iter().map(|(n, i)| (n.to_string(), i.iter().map(|s| s.to_string()).collect())).collect()
    }

    fn serving(reloadable: bool, same_file: bool, imports: &[&str]) -> Option<Serving> {
        Some(Serving { reloadable, same_file, imports: imports.iter().map(|s| s.to_string()).collect() })
    }

    #[test]
    fn dependencies_come_first_and_ties_go_by_name() {
        let order = dependency_order(&imports(&[("c", &["a"]), ("b", &[]), ("a", &["b"]), ("d", &[])])).unwrap();
        assert_eq!(order, ["b", "a", "c", "d"]);
    }

    #[test]
    fn a_cycle_is_reported_in_full() {
        let error = dependency_order(&imports(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])])).unwrap_err();
        assert_eq!(error, OrderError::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
        let error = dependency_order(&imports(&[("a", &["a"])])).unwrap_err();
        assert_eq!(error, OrderError::Cycle(vec!["a".into(), "a".into()]));
    }

    #[test]
    fn a_missing_import_names_both_plugins() {
        let error = dependency_order(&imports(&[("a", &["ghost"])])).unwrap_err();
        assert_eq!(error, OrderError::Missing { plugin: "a".into(), import: "ghost".into() });
    }

    #[test]
    fn unchanged_plugins_are_kept_unless_an_import_is_reloaded() {
        let found: BTreeMap<String, Option<Serving>> = [
            ("store".to_string(), serving(true, false, &[])),
            ("logic".to_string(), serving(true, true, &["store"])),
            ("front".to_string(), serving(true, true, &["logic"])),
            ("lone".to_string(), serving(true, true, &[])),
            ("pinned".to_string(), serving(false, false, &[])),
            ("new".to_string(), None),
        ]
        .into_iter()
        .collect();
        let origins = plan_origins(&found, true);
        // `store` changed, so `logic` and, through it, `front` are loaded again.
        assert_eq!(origins["store"], PluginOrigin::Loaded);
        assert_eq!(origins["logic"], PluginOrigin::Loaded);
        assert_eq!(origins["front"], PluginOrigin::Loaded);
        assert_eq!(origins["lone"], PluginOrigin::Unchanged);
        assert_eq!(origins["pinned"], PluginOrigin::NotReloadable);
        assert_eq!(origins["new"], PluginOrigin::Loaded);
    }

    #[test]
    fn without_reuse_every_reloadable_plugin_loads() {
        let found: BTreeMap<String, Option<Serving>> =
            [("a".to_string(), serving(true, true, &[])), ("b".to_string(), serving(false, true, &[]))]
                .into_iter()
                .collect();
        let origins = plan_origins(&found, false);
        assert_eq!(origins["a"], PluginOrigin::Loaded);
        assert_eq!(origins["b"], PluginOrigin::NotReloadable);
    }
}
