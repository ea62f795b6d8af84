//! The hooks every plugin defines.

use std::fmt;

/// A hook: a `pub fn` with a fixed name and signature that every plugin defines, found by
/// `hotswap-build` in the plugin's sources and called by the runtime through the descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Hook {
    /// `reloadable()`: whether the plugin may be replaced by a reload.
    Reloadable,
    /// `export()`: the value the plugin hands to the plugins that import it.
    Export,
    /// `import()`: the plugins whose exports this one needs.
    Import,
    /// `on_load(ctx)`: the first call into a newly opened library.
    OnLoad,
    /// `on_init(vault)`: set-up with the generation's vault.
    OnInit,
    /// `on_free()`: the last call before the plugin's generation is dropped.
    OnFree,
    /// `invoke_func(name, args)`: a call by name from the host.
    InvokeFunc,
}

impl Hook {
    /// Every hook, in the order of the descriptor's `PluginHooks` fields (the order the
    /// generator reports them in and the generated registry lists them).
    pub const ALL: [Hook; 7] =
        [Hook::Reloadable, Hook::Export, Hook::Import, Hook::OnLoad, Hook::OnInit, Hook::OnFree, Hook::InvokeFunc];

    /// The function's name in the plugin's sources (and the generated entry point's).
    pub const fn name(self) -> &'static str {
        match self {
            Hook::Reloadable => "reloadable",
            Hook::Export => "export",
            Hook::Import => "import",
            Hook::OnLoad => "on_load",
            Hook::OnInit => "on_init",
            Hook::OnFree => "on_free",
            Hook::InvokeFunc => "invoke_func",
        }
    }

    /// The signature a plugin writes, as shown in error messages and the docs.
    pub const fn signature(self) -> &'static str {
        match self {
            Hook::Reloadable => "pub fn reloadable() -> bool",
            Hook::Export => "pub fn export() -> Option<hotswap_runtime::Export>",
            Hook::Import => "pub fn import() -> &'static [&'static str]",
            Hook::OnLoad => "pub fn on_load(ctx: &hotswap_runtime::LoadContext) -> hotswap_runtime::HookResult",
            Hook::OnInit => {
                "pub fn on_init(vault: &std::sync::Arc<hotswap_runtime::Vault>) -> hotswap_runtime::HookResult"
            }
            Hook::OnFree => "pub fn on_free()",
            Hook::InvokeFunc => {
                "pub fn invoke_func(name: &str, args: hotswap_runtime::Args) -> Result<hotswap_runtime::Value, hotswap_runtime::HookError>"
            }
        }
    }

    /// The function-pointer type the generated registry coerces the user's hook to, so a hook
    /// with another signature fails to compile with both types in the message. The same
    /// signature as [`Hook::signature`], without the names.
    pub const fn fn_type(self) -> &'static str {
        match self {
            Hook::Reloadable => "fn() -> bool",
            Hook::Export => "fn() -> Option<hotswap_runtime::Export>",
            Hook::Import => "fn() -> &'static [&'static str]",
            Hook::OnLoad => "fn(&hotswap_runtime::LoadContext) -> hotswap_runtime::HookResult",
            Hook::OnInit => "fn(&std::sync::Arc<hotswap_runtime::Vault>) -> hotswap_runtime::HookResult",
            Hook::OnFree => "fn()",
            Hook::InvokeFunc => {
                "fn(&str, hotswap_runtime::Args) -> Result<hotswap_runtime::Value, hotswap_runtime::HookError>"
            }
        }
    }

    /// The hook named `name`, if any.
    pub fn from_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Hook;

    #[test]
    fn signature_and_fn_type_agree() {
        for hook in Hook::ALL {
            assert_eq!(Hook::from_name(hook.name()), Some(hook));
            let signature = hook.signature();
            let rest = signature.strip_prefix("pub fn ").and_then(|s| s.strip_prefix(hook.name())).expect(signature);
            // Drop the parameter names: `(ctx: &T, b: U)` -> `(&T, U)`.
            let (params, ret) = rest.split_at(rest.find(')').unwrap() + 1);
            let params: Vec<&str> = params[1..params.len() - 1]
                .split(", ")
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once(": ").expect(signature).1)
                .collect();
            let mut expected = String::from("fn(");
            expected.push_str(&params.join(", "));
            expected.push(')');
            expected.push_str(ret);
            assert_eq!(hook.fn_type(), expected);
        }
    }
}
