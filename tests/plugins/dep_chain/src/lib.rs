//! Test fixture: the chain of plugins `dep_alpha` -> `dep_mid` -> `dep_zeta` (alphabetical order
//! is the reverse of dependency order), one crate whose features choose the plugin: none is
//! `dep_zeta`, the bottom; `mid` is `dep_mid`, importing `dep_zeta`; `alpha` is `dep_alpha`,
//! importing both; `v2` makes a second build (`BUILD` "v2"), so that a reload really replaces the
//! library (an unchanged file may be carried over). The builds differ only in `NAME`, `BUILD`
//! and `IMPORTS` (and `build.rs` names the plugin as `NAME` does).
//!
//! Every hook appends `g<generation> <plugin>:<hook>` to `hooks.log` in the plugin folder (the
//! folder of `LoadContext::file`), so one file records the order of the hooks of every plugin,
//! `on_load` and `on_free` included. `on_init` also records `<plugin>:on_init` in the host's
//! extension, when the host set one.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault, VaultError};

hotswap_runtime::plugin!();

#[cfg(feature = "alpha")]
const NAME: &str = "dep_alpha";
#[cfg(feature = "alpha")]
const IMPORTS: &[&str] = &["dep_mid", "dep_zeta"];
#[cfg(all(feature = "mid", not(feature = "alpha")))]
const NAME: &str = "dep_mid";
#[cfg(all(feature = "mid", not(feature = "alpha")))]
const IMPORTS: &[&str] = &["dep_zeta"];
#[cfg(not(any(feature = "mid", feature = "alpha")))]
const NAME: &str = "dep_zeta";
#[cfg(not(any(feature = "mid", feature = "alpha")))]
const IMPORTS: &[&str] = &[];
/// Which build of the plugin this is: feature `v2` makes another build of the same plugin.
const BUILD: &str = if cfg!(feature = "v2") { "v2" } else { "v1" };

/// The host's extension: a counter that starts at zero in every generation, and the host's own
/// log, which outlives generations. Only std types, so the `TypeId`s agree with the host's.
type HostExtension = (AtomicU64, Arc<Mutex<Vec<String>>>);

static LOG_FILE: Mutex<Option<PathBuf>> = Mutex::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(0);
static VAULT: Mutex<Option<Arc<Vault>>> = Mutex::new(None);

fn log(hook: &str) {
    let Some(path) = LOG_FILE.lock().unwrap().clone() else { return };
    let line = format!("g{} {NAME}:{hook}\n", GENERATION.load(Ordering::SeqCst));
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("open hooks.log");
    file.write_all(line.as_bytes()).expect("write hooks.log");
}

fn vault() -> Result<Arc<Vault>, HookError> {
    VAULT.lock().unwrap().clone().ok_or_else(|| "on_init has not run".into())
}

/// The host's extension, `None` if the host set none; an extension of another type is an error.
fn host_extension(vault: &Vault) -> Result<Option<&HostExtension>, VaultError> {
    match vault.extension::<HostExtension>() {
        Ok(extension) => Ok(Some(extension)),
        Err(VaultError::NoExtension) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    IMPORTS
}

pub fn on_load(ctx: &LoadContext) -> HookResult {
    if ctx.plugin != NAME {
        return Err(format!("loaded as `{}`, expected `{NAME}`", ctx.plugin).into());
    }
    let dir = ctx.file.parent().ok_or("the plugin file has no folder")?;
    *LOG_FILE.lock().unwrap() = Some(dir.join("hooks.log"));
    GENERATION.store(ctx.generation, Ordering::SeqCst);
    log("on_load");
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    log("on_init");
    if vault.generation() != GENERATION.load(Ordering::SeqCst) {
        return Err(format!("on_init got the vault of generation {}", vault.generation()).into());
    }
    if let Some((_, host_log)) = host_extension(vault)? {
        host_log.lock().unwrap().push(format!("{NAME}:on_init"));
    }
    *VAULT.lock().unwrap() = Some(Arc::clone(vault));
    Ok(())
}

pub fn on_free() {
    log("on_free");
    VAULT.lock().unwrap().take();
}

pub fn invoke_func(name: &str, mut args: Args) -> Result<Value, HookError> {
    match name {
        "name" => Ok(Value::new(NAME.to_string())),
        "build" => Ok(Value::new(BUILD.to_string())),
        "generation" => Ok(Value::new(vault()?.generation())),
        // Increments this generation's counter in the host's extension; returns the new value.
        "bump" => {
            let vault = vault()?;
            let (counter, _) = host_extension(&vault)?.ok_or("the host set no extension")?;
            Ok(Value::new(counter.fetch_add(1, Ordering::SeqCst) + 1))
        }
        "set_data" => {
            let key = args.take::<String>(0)?;
            let value = args.take::<String>(1)?;
            vault()?.set_data(key, value);
            Ok(Value::unit())
        }
        "get_data" => {
            let key = args.get::<String>(0)?;
            Ok(Value::new(vault()?.data::<String>(key).map(|value| (*value).clone())))
        }
        _ => Err(format!("unknown function `{name}`").into()),
    }
}
