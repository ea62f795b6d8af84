//! What one generation of plugins shares.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::abi::HookFailure;
use crate::live::{LiveData, LiveError, LiveFn, LiveFuncInfo, LiveTypeInfo, RegisteredFunc, RegisteredType};
use crate::maker_drop::{MakerDrop, OnPanic};
use crate::value::Value;

fn sorted<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut names: Vec<String> = names.cloned().collect();
    names.sort();
    names
}

/// What a plugin offers the plugins that import it: any `Send + Sync` value, with its type
/// name so that a wrong typed access can say what the export really is.
///
/// The value is dropped by the plugin that made it, whenever its generation goes; a panic in
/// its `Drop` is caught there and logged.
pub struct Export {
    value: MakerDrop<Box<dyn Any + Send + Sync>>,
    /// Points into the exporting plugin's library (as does `value`'s vtable): an `Export`
    /// lives only in that plugin's `LoadedPlugin` and in vaults, which both keep the library
    /// mapped, and the name is lent out borrowed from `self`.
    type_name: &'static str,
}

impl Export {
    /// Wraps the value a plugin exports.
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        let value = MakerDrop::new::<T>(Box::new(value) as Box<dyn Any + Send + Sync>, OnPanic::Log);
        Export { value, type_name: std::any::type_name::<T>() }
    }

    /// The exported value's type name.
    pub fn type_name(&self) -> &str {
        self.type_name
    }

    /// The value, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.value.downcast_ref::<T>()
    }
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Export<{}>", self.type_name)
    }
}

/// The host's per-generation extension object.
pub type Extension = Box<dyn Any + Send + Sync>;

/// A typed access to the vault failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The host gave no extension constructor.
    #[error("the host set no extension (PluginManagerBuilder::extension_newer)")]
    NoExtension,
    /// The extension is of another type.
    #[error("the extension is not a `{expected}`")]
    ExtensionType {
        /// The type asked for.
        expected: String,
    },
    /// No plugin of that name exports anything in this generation.
    #[error("plugin `{plugin}` exports nothing in this generation")]
    NoExport {
        /// The plugin asked for.
        plugin: String,
    },
    /// The export is of another type.
    #[error("plugin `{plugin}` exports a `{found}`, not the `{expected}` asked for")]
    ExportType {
        /// The plugin asked for.
        plugin: String,
        /// The type asked for.
        expected: String,
        /// The type exported.
        found: String,
    },
}

/// Shared by the plugins of one generation: the host's extension, every plugin's export, and
/// a data bag. Each generation gets a fresh vault.
pub struct Vault {
    generation: u64,
    /// Dropped by the host's code inside the host's `catch_unwind`, wherever the last
    /// reference to the vault goes: a plugin that kept the vault may drop it under its own
    /// frames, where a panic of the host's std would abort the process. A panic is logged.
    extension: Option<MakerDrop<Extension>>,
    exports: HashMap<String, Arc<Export>>,
    /// Each value is dropped by the side that stored it (see `set_data`).
    data: RwLock<HashMap<String, MakerDrop<Arc<dyn Any + Send + Sync>>>>,
    live_funcs: HashMap<String, RegisteredFunc>,
    live_types: HashMap<String, RegisteredType>,
    /// The libraries of the generation's plugins: exports, data-bag values and live items
    /// point into them, so they stay mapped while the vault lives. Declared last, so dropped
    /// last.
    _libraries: Vec<Arc<dyn Any + Send + Sync>>,
}

impl Vault {
    /// Only the host's manager makes vaults.
    #[cfg_attr(not(feature = "host"), allow(dead_code))]
    pub(crate) fn new(
        generation: u64,
        extension: Option<Extension>,
        exports: HashMap<String, Arc<Export>>,
        live_funcs: HashMap<String, RegisteredFunc>,
        live_types: HashMap<String, RegisteredType>,
        libraries: Vec<Arc<dyn Any + Send + Sync>>,
    ) -> Self {
        Vault {
            generation,
            // Made here, in the host's copy of this crate: the drop function is the host's.
            extension: extension.map(|ext| MakerDrop::new::<dyn Any + Send + Sync>(ext, OnPanic::Log)),
            exports,
            data: RwLock::new(HashMap::new()),
            live_funcs,
            live_types,
            _libraries: libraries,
        }
    }

    /// A typed handle on live function `name`. `F` is a function pointer type such as
    /// `fn(i64) -> i64`; it must be the exact signature the plugin defines (checked by
    /// `TypeId`), else the error names both signatures.
    ///
    /// The handle keeps the function's library mapped. To follow reloads instead of staying
    /// on this generation's code, use [`PluginManager::hot_fn`](crate::PluginManager::hot_fn).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(manager: &hotswap_runtime::PluginManager) -> Result<(), Box<dyn std::error::Error>> {
    /// use hotswap_runtime::LiveError;
    ///
    /// let generation = manager.current().ok_or("nothing is loaded")?;
    /// // In the plugin: `pub fn live_add(a: i64, b: i64) -> i64`.
    /// let add = generation.vault().live_func::<fn(i64, i64) -> i64>("live_add")?;
    /// assert_eq!(add.call((2, 3)), 5);
    ///
    /// // Another signature is an error naming both, never a call through the wrong type.
    /// let wrong = generation.vault().live_func::<fn(i64) -> i64>("live_add");
    /// assert!(matches!(wrong, Err(LiveError::Signature(_))));
    /// # Ok(()) }
    /// ```
    pub fn live_func<F: Any + Copy>(&self, name: &str) -> Result<LiveFn<F>, LiveError> {
        self.live_funcs
            .get(name)
            .ok_or_else(|| LiveError::UnknownFunction {
                name: name.to_string(),
                known: sorted(self.live_funcs.keys()),
            })?
            .handle::<F>()
    }

    /// Every live function of this generation, by name.
    pub fn live_funcs(&self) -> Vec<LiveFuncInfo> {
        let mut all: Vec<_> = self.live_funcs.values().map(RegisteredFunc::info).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Information on live type `name`.
    pub fn live_type(&self, name: &str) -> Result<LiveTypeInfo, LiveError> {
        self.registered_type(name).map(RegisteredType::info)
    }

    /// Every live type of this generation, by name.
    pub fn live_types(&self) -> Vec<LiveTypeInfo> {
        let mut all: Vec<_> = self.live_types.values().map(RegisteredType::info).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// A default value of live type `name` (the type must implement `Default`).
    pub fn new_live(&self, name: &str) -> Result<Value, LiveError> {
        let ty = self.registered_type(name)?;
        let make = ty.entry.make_default.ok_or_else(|| LiveError::Unsupported {
            name: name.to_string(),
            missing: "does not implement Default".into(),
        })?;
        match make() {
            Ok(value) => Ok(value.keep_alive(Arc::clone(&ty.library))),
            Err(failure) => Err(ty.failed(name, "Default", failure)),
        }
    }

    /// Decodes `data` with this generation's live type of the same name.
    pub fn decode_live(&self, data: &LiveData) -> Result<Value, LiveError> {
        let ty = self.registered_type(&data.type_name)?;
        let decode = ty.entry.decode.ok_or_else(|| LiveError::Unsupported {
            name: data.type_name.clone(),
            missing: "does not implement serde's Serialize and Deserialize".into(),
        })?;
        match decode(&data.bytes, &data.written_by) {
            Ok(Ok(value)) => Ok(value.keep_alive(Arc::clone(&ty.library))),
            Ok(Err(error)) => Err(error),
            Err(HookFailure::Error(message)) => Err(LiveError::Decode {
                type_name: data.type_name.clone(),
                written_by: data.written_by.clone(),
                reader: ty.version.clone(),
                field: None,
                message,
            }),
            Err(failure) => Err(ty.failed(&data.type_name, "Deserialize", failure)),
        }
    }

    fn registered_type(&self, name: &str) -> Result<&RegisteredType, LiveError> {
        self.live_types
            .get(name)
            .ok_or_else(|| LiveError::UnknownType { name: name.to_string(), known: sorted(self.live_types.keys()) })
    }

    /// The generation this vault belongs to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The host's extension object for this generation.
    pub fn extension<T: Any>(&self) -> Result<&T, VaultError> {
        let ext = self.extension.as_ref().ok_or(VaultError::NoExtension)?;
        ext.downcast_ref::<T>()
            .ok_or_else(|| VaultError::ExtensionType { expected: std::any::type_name::<T>().to_string() })
    }

    /// The export of plugin `plugin`, as a `T`.
    pub fn import<T: Any>(&self, plugin: &str) -> Result<&T, VaultError> {
        let export = self.exports.get(plugin).ok_or_else(|| VaultError::NoExport { plugin: plugin.to_string() })?;
        export.downcast_ref::<T>().ok_or_else(|| VaultError::ExportType {
            plugin: plugin.to_string(),
            expected: std::any::type_name::<T>().to_string(),
            found: export.type_name().to_string(),
        })
    }

    /// Stores `value` in the data bag under `key`, replacing what was there.
    ///
    /// The value is dropped by the side that stored it: a panic in the `Drop` of a value a
    /// plugin stored is caught in the plugin and logged, wherever the vault goes.
    pub fn set_data<T: Any + Send + Sync>(&self, key: impl Into<String>, value: T) {
        let value = MakerDrop::new::<T>(Arc::new(value) as Arc<dyn Any + Send + Sync>, OnPanic::Log);
        let replaced = self.data.write().unwrap_or_else(|e| e.into_inner()).insert(key.into(), value);
        // Dropped after the lock is released: its drop may run anyone's code.
        drop(replaced);
    }

    /// Reads `key` from the data bag; `None` if absent or of another type.
    pub fn data<T: Any + Send + Sync>(&self, key: &str) -> Option<Arc<T>> {
        let shared = self.data.read().unwrap_or_else(|e| e.into_inner()).get(key)?.share();
        if !shared.is::<T>() {
            // `shared` may be the last reference by now (another thread replaced the value):
            // its maker drops it.
            return None;
        }
        shared.into_inner().downcast::<T>().ok()
    }
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("generation", &self.generation)
            .field("exports", &self.exports.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
