//! A generation (one loaded set of plugins with its vault) and handles on its plugins.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::path::Path;
use std::sync::{Arc, OnceLock, Weak};
use std::time::SystemTime;

use crate::abi::HookFailure;
use crate::error::InvokeError;
use crate::loader::LoadedPlugin;
use crate::value::{Args, Value};
use crate::vault::Vault;

use super::Reaper;

/// Up to this many plugins, a lookup by name scans them instead of hashing the name.
const LINEAR_LOOKUP_MAX: usize = 16;

/// One loaded set of plugins, with its vault. Kept alive by the manager while current, and
/// by every [`Plugin`] handle taken from it.
pub struct Generation {
    pub(super) number: u64,
    pub(super) plugins: Vec<Arc<LoadedPlugin>>,
    pub(super) index: HashMap<String, usize>,
    /// Taken out by `Drop` only (see [`Remains`]).
    pub(super) vault: ManuallyDrop<Arc<Vault>>,
    pub(super) loaded_at: SystemTime,
    /// Set when the generation is published: the reaper that frees it (see `Drop`).
    pub(super) freed_by: OnceLock<Weak<Reaper>>,
}

impl Generation {
    /// Its number: 1 for the first load, one more for each successful reload.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// When it was built.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// Its vault.
    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// Plugin names in load order.
    pub fn plugin_names(&self) -> Vec<&str> {
        self.plugins.iter().map(|p| p.name.as_str()).collect()
    }

    /// Handles on every plugin, in load order.
    pub fn plugins(self: &Arc<Self>) -> Vec<Plugin> {
        (0..self.plugins.len()).map(|index| Plugin { generation: Arc::clone(self), index }).collect()
    }

    /// A handle on plugin `name`.
    pub fn find_plugin(self: &Arc<Self>, name: &str) -> Option<Plugin> {
        let (index, _) = self.find(name)?;
        Some(Plugin { generation: Arc::clone(self), index })
    }

    #[inline]
    pub(super) fn loaded(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.find(name).map(|(_, plugin)| plugin)
    }

    /// Plugin `name` and where it is. On the by-name call path: comparing the names of a few
    /// plugins costs less than hashing the name (SipHash, about 200 instructions for a short
    /// name), so the index serves only larger generations.
    #[inline]
    fn find(&self, name: &str) -> Option<(usize, &Arc<LoadedPlugin>)> {
        if self.plugins.len() <= LINEAR_LOOKUP_MAX {
            self.plugins.iter().enumerate().find(|(_, p)| p.name == name)
        } else {
            self.index.get(name).map(|&i| (i, &self.plugins[i]))
        }
    }

    /// Calls `func` on every plugin, dependencies first; one plugin's failure does not stop
    /// the others.
    pub fn invoke_each(&self, func: &str, args: impl Fn() -> Args) -> Vec<(String, Result<Value, InvokeError>)> {
        self.plugins.iter().map(|p| (p.name.clone(), invoke(p, func, args()))).collect()
    }

    /// Calls `func` on every plugin, dependents first.
    pub fn invoke_each_backward(
        &self,
        func: &str,
        args: impl Fn() -> Args,
    ) -> Vec<(String, Result<Value, InvokeError>)> {
        self.plugins.iter().rev().map(|p| (p.name.clone(), invoke(p, func, args()))).collect()
    }
}

/// What a generation frees when it goes: `on_free` of its plugins, dependents first (each
/// plugin freed before the plugins it imports), then its vault, and with them the last
/// references to their libraries.
pub(crate) struct Remains {
    number: u64,
    plugins: Vec<Arc<LoadedPlugin>>,
    /// Only dropped, after the plugins (fields drop after `Drop::drop`).
    _vault: Arc<Vault>,
}

impl Drop for Remains {
    fn drop(&mut self) {
        while let Some(plugin) = self.plugins.pop() {
            drop(plugin);
        }
        tracing::debug!(generation = self.number, "generation released");
    }
}

impl Drop for Generation {
    /// A published generation is freed on its manager's reaper thread, wherever its last
    /// reference goes (a `Plugin` handle a caller drops, say): `on_free` is plugin code that
    /// may take long or never return, and closing a library takes hundreds of microseconds,
    /// neither of which a caller should wait for. It is freed here on the reaper thread itself,
    /// when the reaper has stopped (the manager is gone), and for a generation never published
    /// (a failed reload frees what it loaded at once).
    fn drop(&mut self) {
        let remains = Remains {
            number: self.number,
            plugins: std::mem::take(&mut self.plugins),
            // SAFETY: taken once, here; `self.vault` is never used again.
            _vault: unsafe { ManuallyDrop::take(&mut self.vault) },
        };
        let left = match self.freed_by.get().and_then(Weak::upgrade) {
            Some(reaper) => reaper.free_later(remains).err(),
            None => Some(remains),
        };
        drop(left);
    }
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation").field("number", &self.number).field("plugins", &self.plugin_names()).finish()
    }
}

fn invoke(plugin: &LoadedPlugin, func: &str, args: Args) -> Result<Value, InvokeError> {
    let library: Arc<dyn Any + Send + Sync> = plugin.mapping.clone();
    (plugin.hooks.invoke_func)(func, args)
        .map(|value| value.keep_alive(library))
        .map_err(|failure| hook_failure(plugin, func, failure))
}

/// Calls `func` and takes a `T` out of its result, for a caller that keeps the plugin's
/// library mapped for the whole call (it borrows the plugin from a generation it holds). The
/// result never escapes as a `Value`, so it is not tied to the library (no shared reference
/// count is touched): a `T` named by the host by `TypeId` has the host's drop glue. A `Value`
/// or `Args` result (which hold plugin-made values) takes the tied path.
#[inline(always)]
pub(super) fn invoke_typed<T: Any>(plugin: &LoadedPlugin, func: &str, args: Args) -> Result<T, InvokeError> {
    let nested = TypeId::of::<T>() == TypeId::of::<Value>() || TypeId::of::<T>() == TypeId::of::<Args>();
    let value = if nested {
        invoke(plugin, func, args)?
    } else {
        (plugin.hooks.invoke_func)(func, args).map_err(|failure| hook_failure(plugin, func, failure))?
    };
    value.downcast::<T>().map_err(|mismatch| InvokeError::ResultType {
        plugin: plugin.name.clone(),
        func: func.to_string(),
        mismatch,
    })
}

fn hook_failure(plugin: &LoadedPlugin, func: &str, failure: HookFailure) -> InvokeError {
    match failure {
        HookFailure::Error(message) => {
            InvokeError::Failed { plugin: plugin.name.clone(), func: func.to_string(), message }
        }
        HookFailure::Panic(message) => {
            plugin.panics.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            InvokeError::Panicked { plugin: plugin.name.clone(), func: func.to_string(), message }
        }
    }
}

/// A plugin of one generation. Keeps that generation alive while it exists.
#[derive(Clone)]
pub struct Plugin {
    pub(super) generation: Arc<Generation>,
    pub(super) index: usize,
}

impl Plugin {
    fn loaded(&self) -> &LoadedPlugin {
        &self.generation.plugins[self.index]
    }

    /// Plugin name.
    pub fn name(&self) -> &str {
        &self.loaded().name
    }

    /// Version stamp.
    pub fn version(&self) -> &str {
        &self.loaded().version
    }

    /// The file it was loaded from.
    pub fn file(&self) -> &Path {
        &self.loaded().file
    }

    /// SHA-256 of that file.
    pub fn sha256(&self) -> &str {
        &self.loaded().sha256
    }

    /// When it was loaded.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded().loaded_at
    }

    /// The private copy the library was opened from.
    pub fn loaded_from(&self) -> &Path {
        &self.loaded().loaded_from
    }

    /// The generation in which this plugin was loaded (older than [`Plugin::generation`]'s
    /// number for a non-reloadable plugin kept across reloads).
    pub fn loaded_in_generation(&self) -> u64 {
        self.loaded().generation
    }

    /// Whether its `reloadable` hook said yes.
    pub fn reloadable(&self) -> bool {
        self.loaded().reloadable
    }

    /// The generation this handle belongs to.
    pub fn generation(&self) -> &Arc<Generation> {
        &self.generation
    }

    /// Calls the plugin's `invoke_func`. A panic inside is contained and returned as
    /// [`InvokeError::Panicked`]; the plugin stays usable.
    pub fn invoke_func(&self, func: &str, args: Args) -> Result<Value, InvokeError> {
        invoke(self.loaded(), func, args)
    }

    /// Calls `func` and downcasts the result to `T`.
    pub fn invoke<T: Any>(&self, func: &str, args: Args) -> Result<T, InvokeError> {
        invoke_typed(self.loaded(), func, args)
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name())
            .field("version", &self.version())
            .field("generation", &self.generation.number)
            .finish()
    }
}
