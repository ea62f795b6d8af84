//! Shared fixtures of the generator's tests.

/// The seven hooks, as a plugin writes them.
pub const HOOKS: &str = r#"
use std::sync::Arc;
use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};
pub fn reloadable() -> bool { true }
pub fn export() -> Option<Export> { None }
pub fn import() -> &'static [&'static str] { &[] }
pub fn on_load(_ctx: &LoadContext) -> HookResult { Ok(()) }
pub fn on_init(_vault: &Arc<Vault>) -> HookResult { Ok(()) }
pub fn on_free() {}
pub fn invoke_func(name: &str, _args: Args) -> Result<Value, HookError> { Err(name.into()) }
"#;

/// A crate folder with the given `src/` files.
pub fn write_crate(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join("src").join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}
