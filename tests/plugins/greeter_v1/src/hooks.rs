use std::sync::Arc;

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

pub fn reloadable() -> bool {
    super::log("reloadable");
    true
}

pub fn export() -> Option<Export> {
    super::log("export");
    None
}

pub fn import() -> &'static [&'static str] {
    super::log("import");
    &[]
}

pub fn on_load(_ctx: &LoadContext) -> HookResult {
    super::log("on_load");
    Ok(())
}

pub fn on_init(_vault: &Arc<Vault>) -> HookResult {
    super::log("on_init");
    Ok(())
}

pub fn on_free() {}

pub fn invoke_func(name: &str, mut args: Args) -> Result<Value, HookError> {
    match name {
        "answer" => Ok(Value::new(super::answer())),
        "add" => Ok(Value::new(args.take::<i64>(0)? + args.take::<i64>(1)?)),
        "hook_log" => Ok(Value::new(super::HOOK_LOG.lock().unwrap().iter().map(|s| s.to_string()).collect::<Vec<_>>())),
        "panic" => panic!("asked to panic"),
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
