//! Live functions, live types and live data.
//!
//! `hotswap-build` collects every free function whose name starts with the live prefix
//! (`live_` by default, compared case-insensitively) and every struct or enum whose name
//! starts with the prefix in CamelCase form (`Live` followed by an upper-case letter or `_`,
//! e.g. `LiveJob`). The generation's [`Vault`](crate::Vault) holds them by name:
//!
//! * a live function is fetched as a typed handle, [`Vault::live_func`](crate::Vault::live_func),
//!   checked by `TypeId` against the signature that was generated, so a mismatch is an error
//!   naming both signatures and never a call through the wrong type; it is called through the
//!   handle ([`LiveFn::call`]), which keeps its library mapped (see [`handle`] for why no safe
//!   method hands out the bare function or a `'static` name);
//! * a live type can be created by name ([`Vault::new_live`](crate::Vault::new_live), when it
//!   implements `Default`) and described ([`LiveTypeInfo`]);
//! * **live data** is a value of a live type that must outlive its generation, such as the
//!   payload of a job scheduled for later. It travels as a [`LiveData`] envelope (type name,
//!   the plugin version that wrote it, serde-serialised bytes), which holds no pointer into
//!   any library. The generation that runs the job decodes it with its own type of that
//!   name, so new code reads old data; memory of one version's type is never reinterpreted
//!   as another's. Fields one version does not know survive its [`LiveData::update`]; a type
//!   whose shape changed declares how its values migrate, up and down ([`LiveMigrate`]).

use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::sync::Arc;

use crate::abi::HookOutcome;
use crate::value::Value;

mod data;
pub(crate) mod guarded;
pub mod handle;
mod migrate;

pub use data::LiveData;
pub use guarded::{Guarded, GuardedFn};
pub use handle::{LiveCall, LiveFn, LiveHandle};
pub use migrate::{LiveMigrate, Migrations, ProbeMigrate, ProbeNoMigrate, crate_version};

// The entries below are made by generated code inside a plugin: their `&'static str`s and
// function pointers live in that plugin's library, which is closed once nothing refers to
// it. So their fields are private to this crate, which keeps every entry next to an `Arc` of
// its library (`RegisteredFunc`, `RegisteredType`) and lends them out only as owned copies
// (`LiveFuncInfo`, `LiveTypeInfo`) or borrowed from a handle that holds the library
// (`LiveFn::name`).

/// Decodes live data bytes, written by the build stamped with the second argument, into a value
/// of a live type, migrating them first when the type implements [`LiveMigrate`] (made by
/// generated code, when the type implements serde's `Serialize` and `Deserialize`). It runs
/// inside the plugin's `catch_unwind`: serde's and the migration's errors come back as the inner
/// `Err`, a panic in the type's `Deserialize` or its migration as `HookFailure::Panic`, never as
/// an unwind into the caller.
pub type LiveDecodeFn = fn(&[u8], &str) -> HookOutcome<Result<Value, LiveError>>;

/// Makes a default value of a live type (made by generated code, when the type implements
/// `Default`), inside the plugin's `catch_unwind`: a panic in `Default` comes back as
/// `HookFailure::Panic`.
pub type LiveMakeFn = fn() -> HookOutcome<Value>;

/// A live function as registered by generated code.
pub struct LiveFuncEntry {
    /// Function name, e.g. `live_add`.
    pub(crate) name: &'static str,
    /// Full path in the plugin, e.g. `crate::math::live_add`.
    pub(crate) path: &'static str,
    /// Signature as written in the source, e.g. `fn(i64) -> i64`.
    pub(crate) signature: &'static str,
    func: Box<dyn Any + Send + Sync>,
    /// The plugin's guarded entry for `func`'s signature.
    guarded: Guarded,
    type_id: TypeId,
    type_name: &'static str,
}

impl std::fmt::Debug for LiveFuncEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The strings live in the plugin's library; an entry is only reachable (and so
        // printable) while its library is mapped.
        f.debug_struct("LiveFuncEntry")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("signature", &self.signature)
            .field("type_name", &self.type_name)
            .finish_non_exhaustive()
    }
}

impl LiveFuncEntry {
    /// Used by generated code: `f` is the function coerced to a function pointer, behind the
    /// wrapper of `live_call`; `guarded` its guarded entry (`guarded_N` of the function
    /// itself, same signature).
    pub fn new<F: Any + Send + Sync + Copy>(
        name: &'static str,
        path: &'static str,
        signature: &'static str,
        f: F,
        guarded: Guarded,
    ) -> Self {
        LiveFuncEntry {
            name,
            path,
            signature,
            func: Box::new(f),
            guarded,
            type_id: TypeId::of::<F>(),
            type_name: std::any::type_name::<F>(),
        }
    }
}

/// A live type as registered by generated code.
#[derive(Debug)]
pub struct LiveTypeEntry {
    /// Type name, e.g. `LiveJob`.
    pub(crate) name: &'static str,
    /// Full path in the plugin.
    pub(crate) path: &'static str,
    /// Stable description of its fields, e.g. `struct LiveJob { id: u64, text: String }`.
    pub(crate) description: &'static str,
    /// Makes a default value, when the type implements `Default`.
    pub(crate) make_default: Option<LiveMakeFn>,
    /// Decodes live data bytes, when the type implements serde's `Serialize` and `Deserialize`.
    pub(crate) decode: Option<LiveDecodeFn>,
}

impl LiveTypeEntry {
    /// Used by generated code.
    pub fn new(
        name: &'static str,
        path: &'static str,
        description: &'static str,
        make_default: Option<LiveMakeFn>,
        decode: Option<LiveDecodeFn>,
    ) -> Self {
        LiveTypeEntry { name, path, description, make_default, decode }
    }
}

/// Everything live that one plugin registered.
#[derive(Debug, Default)]
pub struct LiveRegistry {
    /// Live functions.
    pub funcs: Vec<LiveFuncEntry>,
    /// Live types.
    pub types: Vec<LiveTypeEntry>,
}

/// Implemented by generated code for every live type.
pub trait LiveType: Any {
    /// The live type's name.
    const NAME: &'static str;
    /// The plugin that defines it.
    const PLUGIN: &'static str;
    /// The version stamp of the build that defines it.
    const VERSION: &'static str;

    /// How its values migrate between versions: generated code returns the type's
    /// [`LiveMigrate`] implementation, if it has one. `None` by default (nothing migrates).
    fn migrations() -> Option<Migrations> {
        None
    }
}

/// Errors of live functions, types and data.
///
/// Serde's errors are kept as text (`message`), not as a [`source`](std::error::Error::source):
/// they may be made by a plugin's code, and an error object whose vtable lives in a plugin's
/// library must not outlive that library in the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// No live function of that name in this generation.
    #[error("no live function `{name}` in this generation (known: {})", list(known))]
    UnknownFunction {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: Vec<String>,
    },
    /// The live function has another signature.
    #[error("{0}")]
    Signature(Box<SignatureMismatch>),
    /// No live type of that name.
    #[error("no live type `{name}` in this generation (known: {})", list(known))]
    UnknownType {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: Vec<String>,
    },
    /// The type cannot do what was asked.
    #[error("live type `{name}` {missing}")]
    Unsupported {
        /// The type.
        name: String,
        /// What it lacks.
        missing: String,
    },
    /// Encoding live data failed.
    #[error("cannot encode live data of type `{type_name}`: {message}")]
    Encode {
        /// The type.
        type_name: String,
        /// serde's message.
        message: String,
    },
    /// Live data could not be read by the current type: an incompatible change.
    #[error(
        "live data of type `{type_name}` written by version {written_by} cannot be read by version {reader}{}: {message}",
        field.as_ref().map(|f| format!(" (field `{f}`)")).unwrap_or_default()
    )]
    Decode {
        /// The type.
        type_name: String,
        /// Version that wrote the data.
        written_by: String,
        /// Version that tried to read it.
        reader: String,
        /// The field that could not be read (a path such as `owner.name` when nested), when
        /// serde says.
        field: Option<String>,
        /// serde's message.
        message: String,
    },
    /// Plugin code that makes a live type's value panicked: its `Default`
    /// ([`Vault::new_live`](crate::Vault::new_live)) or its `Deserialize`
    /// ([`Vault::decode_live`](crate::Vault::decode_live)). The panic was caught in the plugin.
    #[error("live type `{type_name}` of plugin `{plugin}` panicked in its `{during}`: {message}")]
    Panicked {
        /// The type.
        type_name: String,
        /// The plugin that defines it.
        plugin: String,
        /// What was running: `Default` or `Deserialize`.
        during: &'static str,
        /// The panic message.
        message: String,
    },
    /// The type's [`LiveMigrate::migrate`] refused the value.
    #[error(
        "live data of type `{type_name}` written by version {written_by} could not be migrated to version {reader}: {message}"
    )]
    Migrate {
        /// The type.
        type_name: String,
        /// Version that wrote the data.
        written_by: String,
        /// Version that tried to read it.
        reader: String,
        /// The migration's message.
        message: String,
    },
    /// The envelope holds another type.
    #[error("live data holds a `{found}`, not a `{expected}`")]
    WrongType {
        /// The type asked for.
        expected: String,
        /// The type held.
        found: String,
    },
}

/// What [`LiveError::Signature`] reports: a live function asked for with another type than
/// the one generated for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "live function `{name}` ({path} in plugin `{plugin}`) has signature `{found}` (`{found_type}`), not the `{expected}` asked for"
)]
#[non_exhaustive]
pub struct SignatureMismatch {
    /// The name.
    pub name: String,
    /// Its path.
    pub path: String,
    /// Its plugin.
    pub plugin: String,
    /// The type asked for.
    pub expected: String,
    /// The signature as written in the plugin.
    pub found: String,
    /// The signature's Rust type.
    pub found_type: String,
}

fn list(names: &[String]) -> String {
    if names.is_empty() { "none".to_string() } else { names.join(", ") }
}

/// Information on a live function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFuncInfo {
    /// Name.
    pub name: String,
    /// Full path in the plugin.
    pub path: String,
    /// Plugin.
    pub plugin: String,
    /// Signature as written.
    pub signature: String,
}

/// Information on a live type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTypeInfo {
    /// Name.
    pub name: String,
    /// Full path in the plugin.
    pub path: String,
    /// Plugin.
    pub plugin: String,
    /// Version stamp of the plugin that defines it.
    pub version: String,
    /// Stable description of its fields.
    pub description: String,
    /// Whether [`Vault::new_live`](crate::Vault::new_live) can make one.
    pub has_default: bool,
    /// Whether it can be carried as [`LiveData`].
    pub serializable: bool,
}

pub(crate) struct RegisteredFunc {
    pub entry: LiveFuncEntry,
    pub plugin: String,
    pub library: Arc<dyn Any + Send + Sync>,
}

pub(crate) struct RegisteredType {
    pub entry: LiveTypeEntry,
    pub plugin: String,
    pub version: String,
    /// Keeps the library holding the entry's strings and functions mapped.
    pub library: Arc<dyn Any + Send + Sync>,
}

impl RegisteredFunc {
    pub fn handle<F: Any + Copy>(&self) -> Result<LiveFn<F>, LiveError> {
        if self.entry.type_id != TypeId::of::<F>() {
            return Err(self.mismatch::<F>());
        }
        let func = *self.entry.func.downcast_ref::<F>().ok_or_else(|| self.mismatch::<F>())?;
        Ok(LiveFn::new(func, self.entry.guarded, self.entry.name, Arc::clone(&self.library)))
    }

    fn mismatch<F>(&self) -> LiveError {
        LiveError::Signature(Box::new(SignatureMismatch {
            name: self.entry.name.to_string(),
            path: self.entry.path.to_string(),
            plugin: self.plugin.clone(),
            expected: std::any::type_name::<F>().to_string(),
            found: self.entry.signature.to_string(),
            found_type: self.entry.type_name.to_string(),
        }))
    }

    pub fn info(&self) -> LiveFuncInfo {
        LiveFuncInfo {
            name: self.entry.name.to_string(),
            path: self.entry.path.to_string(),
            plugin: self.plugin.clone(),
            signature: self.entry.signature.to_string(),
        }
    }
}

impl RegisteredType {
    /// The error of plugin code making a value of this type (`during`: `Default` or
    /// `Deserialize`) that did not return one.
    pub fn failed(&self, name: &str, during: &'static str, failure: crate::abi::HookFailure) -> LiveError {
        let message = match failure {
            crate::abi::HookFailure::Panic(message) => message,
            other => format!("{other:?}"),
        };
        LiveError::Panicked { type_name: name.to_string(), plugin: self.plugin.clone(), during, message }
    }

    pub fn info(&self) -> LiveTypeInfo {
        LiveTypeInfo {
            name: self.entry.name.to_string(),
            path: self.entry.path.to_string(),
            plugin: self.plugin.clone(),
            version: self.version.clone(),
            description: self.entry.description.to_string(),
            has_default: self.entry.make_default.is_some(),
            serializable: self.entry.decode.is_some(),
        }
    }
}

/// Used by generated code to find out, at compile time, whether a live type implements
/// `Default` and serde's traits ("autoref specialisation": the impl on `LiveProbe<T>` is
/// chosen when its bounds hold, the one on `&LiveProbe<T>` otherwise).
pub struct LiveProbe<T>(PhantomData<T>);

impl<T> LiveProbe<T> {
    /// A probe for `T`.
    pub const fn new() -> Self {
        LiveProbe(PhantomData)
    }
}

impl<T> std::fmt::Debug for LiveProbe<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LiveProbe<{}>", std::any::type_name::<T>())
    }
}

impl<T> Default for LiveProbe<T> {
    fn default() -> Self {
        LiveProbe::new()
    }
}

/// Chosen when `T: Default`.
pub trait ProbeDefault {
    /// A constructor of default values.
    fn probe_default(&self) -> Option<LiveMakeFn>;
}
impl<T: Default + Any + Send> ProbeDefault for LiveProbe<T> {
    fn probe_default(&self) -> Option<LiveMakeFn> {
        // Monomorphised in the plugin: its own std catches a panic of `T::default`.
        Some(|| crate::private::guard_infallible(|| Value::new(T::default())))
    }
}
/// Fallback when `T` is not `Default`.
pub trait ProbeNoDefault {
    /// None.
    fn probe_default(&self) -> Option<LiveMakeFn> {
        None
    }
}
impl<T> ProbeNoDefault for &LiveProbe<T> {}

/// Chosen when `T` is serde-serialisable.
pub trait ProbeSerde {
    /// A decoder of live data bytes.
    fn probe_decode(&self) -> Option<LiveDecodeFn>;
}
impl<T: LiveType + serde::de::DeserializeOwned + serde::Serialize + Send> ProbeSerde for LiveProbe<T> {
    fn probe_decode(&self) -> Option<LiveDecodeFn> {
        // Monomorphised in the plugin: its own std catches a panic of `T`'s `Deserialize` or
        // its migration (and of serde's error's `Display` or drop).
        Some(|bytes, written_by| {
            crate::private::guard_infallible(|| migrate::read::<T>(bytes, written_by).map(Value::new))
        })
    }
}
/// Fallback when `T` is not serialisable.
pub trait ProbeNoSerde {
    /// None.
    fn probe_decode(&self) -> Option<LiveDecodeFn> {
        None
    }
}
impl<T> ProbeNoSerde for &LiveProbe<T> {}
