//! Dynamically typed values passed to and returned from `invoke_func`.
//!
//! A [`Value`] remembers the name of the type it holds, so a wrong downcast is an error that
//! names both types instead of a bare `None`. Downcasting goes through `TypeId`, with one
//! exception whose proof is at [`shared_runtime_type`]: [`LiveData`](crate::LiveData) made by
//! a plugin's copy of this crate.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use crate::live::LiveData;
use crate::maker_drop::{MakerDrop, OnPanic};

/// A value of any `Send + 'static` type, with its type name.
///
/// ```
/// use hotswap_runtime::Value;
///
/// let value = Value::new(42_i64);
/// assert_eq!(value.type_name(), "i64");
/// assert_eq!(*value.downcast_ref::<i64>().unwrap(), 42);
/// let wrong = value.downcast::<String>().unwrap_err();
/// assert_eq!(wrong.to_string(), "expected a value of type `alloc::string::String`, found `i64`");
/// ```
pub struct Value {
    // Field order matters: `inner` (whose drop glue may live in a plugin library) is dropped
    // before `keep_alive` (which keeps that library mapped). It is dropped by the side that
    // made it, so a panicking `Drop` in a plugin's type is a panic the host can catch.
    inner: MakerDrop<Box<dyn Any + Send>>,
    /// Points into the read-only data of the code that made the value (a plugin library, for a
    /// value a plugin returned); only ever lent out borrowed from `self`, and `keep_alive`
    /// keeps that library mapped.
    type_name: &'static str,
    /// [`SHARED_TAG`] of the copy of this crate that made the value when it holds that copy's
    /// `LiveData`; 0 otherwise.
    shared: u64,
    keep_alive: Option<Arc<dyn Any + Send + Sync>>,
}

/// A downcast asked for one type but the value held another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a value of type `{expected}`, found `{found}`")]
pub struct TypeMismatch {
    /// The type asked for.
    pub expected: String,
    /// The type held.
    pub found: String,
}

impl TypeMismatch {
    fn new<T>(found: &str) -> Self {
        TypeMismatch { expected: std::any::type_name::<T>().to_string(), found: found.to_string() }
    }
}

impl Value {
    /// Wraps a value.
    pub fn new<T: Any + Send>(value: T) -> Self {
        // `TypeId` comparison within one copy of this crate: exact.
        let shared = if TypeId::of::<T>() == TypeId::of::<LiveData>() { SHARED_TAG } else { 0 };
        let inner = MakerDrop::new::<T>(Box::new(value) as Box<dyn Any + Send>, OnPanic::Raise);
        Value { inner, type_name: std::any::type_name::<T>(), shared, keep_alive: None }
    }

    /// Ties the value to the library that made it, so the library stays mapped while the
    /// value (and its drop glue and type name, which live in that library) exists. A value
    /// already tied keeps its tie (an inner value of a nested one, say).
    pub(crate) fn keep_alive(mut self, library: Arc<dyn Any + Send + Sync>) -> Self {
        self.keep_alive.get_or_insert(library);
        self
    }

    /// The unit value, for functions that return nothing.
    pub fn unit() -> Self {
        Value::new(())
    }

    /// Name of the held type, as `std::any::type_name` gave it where the value was made;
    /// borrowed from the value, which keeps the library holding the text mapped.
    pub fn type_name(&self) -> &str {
        self.type_name
    }

    /// Whether the value holds a `T`.
    pub fn is<T: Any>(&self) -> bool {
        self.inner.is::<T>()
    }

    /// Borrows the held `T`.
    pub fn downcast_ref<T: Any>(&self) -> Result<&T, TypeMismatch> {
        if let Some(value) = self.inner.downcast_ref::<T>() {
            return Ok(value);
        }
        if shared_runtime_type::<T>(self.type_name, self.shared) {
            // SAFETY: `shared_runtime_type` proves the held value is a `LiveData` of the same
            // layout as `T` (the host's `LiveData`); only its `TypeId` differs.
            return Ok(unsafe { &*(&**self.inner as *const (dyn Any + Send) as *const T) });
        }
        Err(TypeMismatch::new::<T>(self.type_name))
    }

    /// Takes the held `T` out.
    ///
    /// A moved-out value no longer keeps the library that made it mapped. Its drop glue is
    /// the host's own (the host named its type), but what it points to is not checked: a
    /// `&'static str`, function pointer or trait object a plugin put in it points into the
    /// plugin's library (see the guide, "Memory and unloading"). A `Value` taken out of a
    /// `Value` keeps the outer one's library. A value of another type is dropped by its maker
    /// (see [`Value`]'s drop) and the error returned.
    pub fn downcast<T: Any>(self) -> Result<T, TypeMismatch> {
        if self.downcast_ref::<T>().is_err() {
            return Err(TypeMismatch::new::<T>(self.type_name));
        }
        let Value { inner, type_name: _, shared: _, keep_alive } = self;
        let inner = inner.into_inner();
        let mut taken = match inner.downcast::<T>() {
            Ok(held) => held,
            // SAFETY: `downcast_ref` above accepted the value, so it is a `T` by `TypeId` or a
            // `LiveData` proven by `shared_runtime_type`; the box was allocated by the system
            // allocator, which both sides use, for a value of `T`'s layout, and `T`'s drop glue
            // (the host's) is the right one for it.
            Err(inner) => unsafe { Box::from_raw(Box::into_raw(inner) as *mut T) },
        };
        if let Some(library) = keep_alive {
            tie_nested(&mut *taken, &library);
        }
        Ok(*taken)
    }
}

/// Ties the `Value`s inside a `Value` or `Args` just taken out of a value to the library the
/// outer value was tied to: they were made by the same code.
fn tie_nested(taken: &mut dyn Any, library: &Arc<dyn Any + Send + Sync>) {
    let tie = |value: &mut Value| {
        value.keep_alive.get_or_insert_with(|| Arc::clone(library));
    };
    if let Some(value) = taken.downcast_mut::<Value>() {
        tie(value);
    } else if let Some(args) = taken.downcast_mut::<Args>() {
        args.0.iter_mut().flatten().for_each(tie);
    }
}

/// Identifies this copy of the crate by its ABI fingerprint (FNV-1a of
/// [`FINGERPRINT`](crate::abi::FINGERPRINT)); never 0.
const SHARED_TAG: u64 = {
    let bytes = crate::abi::FINGERPRINT.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    if hash == 0 { 1 } else { hash }
};

/// Whether a value of another `TypeId`, named `found` and tagged `shared`, may be read as `T`.
///
/// Host and plugin each compile their own copy of `hotswap-runtime`, and cargo may give the
/// two copies different metadata hashes, so the `TypeId` of [`LiveData`] differs between the
/// two sides while it is the same type. It is recognised when all of these hold:
///
/// 1. `T` is this copy's `LiveData` (by `TypeId`, exact);
/// 2. the value was made by `Value::new` of a copy of this crate whose own `LiveData` it
///    held (by `TypeId`, in that copy): `shared` is that copy's [`SHARED_TAG`];
/// 3. that tag equals ours, so both copies have the same ABI fingerprint: the same rustc
///    release and commit for the same target (hence the same std and `String`/`Vec` layouts)
///    and the same hotswap-runtime source (hence the same `LiveData` declaration);
/// 4. the type names agree (a further check, not relied on).
///
/// `LiveData` is `#[repr(C)]` with `String` and `Vec<u8>` fields only, so its layout follows
/// from its declaration and std's types alone: no cfg, feature or optimisation setting
/// changes it. Every other type, user or runtime, is matched by `TypeId` only.
fn shared_runtime_type<T: Any>(found: &str, shared: u64) -> bool {
    TypeId::of::<T>() == TypeId::of::<LiveData>() && shared == SHARED_TAG && found == std::any::type_name::<T>()
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value<{}>", self.type_name)
    }
}

/// An argument was missing or of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// Fewer arguments than the function needs.
    #[error("argument {index} is missing ({len} given)")]
    Missing {
        /// Position asked for.
        index: usize,
        /// Number of arguments given.
        len: usize,
    },
    /// The argument had another type.
    #[error("argument {index}: {mismatch}")]
    WrongType {
        /// Position of the argument.
        index: usize,
        /// The two types.
        mismatch: TypeMismatch,
    },
}

/// The arguments of one `invoke_func` call.
///
/// ```
/// use hotswap_runtime::{args, ArgError};
///
/// let mut args = args![2_i64, "two".to_string()];
/// assert_eq!(*args.get::<i64>(0).unwrap(), 2);
/// assert_eq!(args.take::<String>(1).unwrap(), "two");
/// assert!(matches!(args.take::<String>(1), Err(ArgError::Missing { index: 1, .. })), "taken already");
/// assert!(matches!(args.get::<u8>(0), Err(ArgError::WrongType { index: 0, .. })));
/// ```
#[derive(Debug, Default)]
pub struct Args(Vec<Option<Value>>);

impl Args {
    /// No arguments.
    pub fn new() -> Self {
        Args(Vec::new())
    }

    /// Adds an argument, builder style.
    pub fn with<T: Any + Send>(mut self, value: T) -> Self {
        self.push(value);
        self
    }

    /// Adds an argument.
    pub fn push<T: Any + Send>(&mut self, value: T) {
        self.0.push(Some(Value::new(value)));
    }

    /// Adds an already wrapped argument.
    pub fn push_value(&mut self, value: Value) {
        self.0.push(Some(value));
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Borrows argument `index` as a `T`.
    pub fn get<T: Any>(&self, index: usize) -> Result<&T, ArgError> {
        let len = self.0.len();
        let value = self.0.get(index).and_then(Option::as_ref).ok_or(ArgError::Missing { index, len })?;
        value.downcast_ref::<T>().map_err(|mismatch| ArgError::WrongType { index, mismatch })
    }

    /// Takes argument `index` out as a `T`; a second take of the same index is `Missing`.
    pub fn take<T: Any>(&mut self, index: usize) -> Result<T, ArgError> {
        let len = self.0.len();
        let slot = self.0.get_mut(index).ok_or(ArgError::Missing { index, len })?;
        let value = slot.take().ok_or(ArgError::Missing { index, len })?;
        match value.downcast_ref::<T>() {
            Ok(_) => Ok(value.downcast::<T>().expect("type checked just above")),
            Err(mismatch) => {
                *slot = Some(value);
                Err(ArgError::WrongType { index, mismatch })
            }
        }
    }
}

/// Builds [`Args`] from a list of expressions: `args![1_i64, "x".to_string()]`.
#[macro_export]
macro_rules! args {
    ($($value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut args = $crate::Args::new();
        $(args.push($value);)*
        args
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a plugin's copy of this crate builds for its own `LiveData`: the same declaration,
    /// hence the same layout, under another `TypeId`.
    #[repr(C)]
    struct PluginLiveData {
        type_name: String,
        plugin: String,
        written_by: String,
        bytes: Vec<u8>,
    }

    /// A type that shares `LiveData`'s name but not its layout.
    struct Impostor {
        bytes: Vec<u8>,
    }

    fn made_elsewhere<T: Any + Send>(inner: T, shared: u64) -> Value {
        let inner = MakerDrop::new::<T>(Box::new(inner) as Box<dyn Any + Send>, OnPanic::Raise);
        Value { inner, type_name: std::any::type_name::<LiveData>(), shared, keep_alive: None }
    }

    fn plugin_data() -> PluginLiveData {
        PluginLiveData {
            type_name: "LiveJob".into(),
            plugin: "jobs".into(),
            written_by: "1".into(),
            bytes: b"{}".to_vec(),
        }
    }

    #[test]
    fn live_data_of_a_copy_with_the_same_fingerprint_is_read_by_name() {
        let value = made_elsewhere(plugin_data(), SHARED_TAG);
        assert_eq!(value.downcast_ref::<LiveData>().unwrap().plugin, "jobs");
        let data = value.downcast::<LiveData>().unwrap();
        assert_eq!((data.type_name.as_str(), data.bytes.as_slice()), ("LiveJob", b"{}".as_slice()));
    }

    #[test]
    fn the_same_name_from_another_fingerprint_or_no_tag_is_a_mismatch_not_a_reinterpretation() {
        for shared in [0, SHARED_TAG ^ 1] {
            let value = made_elsewhere(Impostor { bytes: vec![1] }, shared);
            let error = value.downcast_ref::<LiveData>().unwrap_err();
            assert_eq!(error.found, "hotswap_runtime::live::data::LiveData");
            let back = value.downcast::<LiveData>().unwrap_err();
            assert_eq!(back.expected, back.found, "same name, refused all the same");
        }
        assert_eq!(made_elsewhere(Impostor { bytes: vec![2] }, 0).downcast::<Impostor>().unwrap().bytes, [2]);
    }

    #[test]
    fn only_live_data_is_matched_by_name() {
        // A runtime type other than LiveData, named right and tagged right: still refused.
        let value = Value {
            inner: MakerDrop::new::<PluginLiveData>(Box::new(plugin_data()) as Box<dyn Any + Send>, OnPanic::Raise),
            type_name: std::any::type_name::<TypeMismatch>(),
            shared: SHARED_TAG,
            keep_alive: None,
        };
        assert!(value.downcast_ref::<TypeMismatch>().is_err());
        let data =
            LiveData { type_name: String::new(), plugin: String::new(), written_by: String::new(), bytes: Vec::new() };
        assert_eq!(Value::new(data).shared, SHARED_TAG);
        assert_eq!(Value::new(String::new()).shared, 0);
    }

    #[test]
    fn a_value_taken_out_of_a_value_keeps_the_outer_ones_library() {
        let library: Arc<dyn Any + Send + Sync> = Arc::new("the library");
        let outer = Value::new(Value::new(5_u8)).keep_alive(Arc::clone(&library));
        let inner = outer.downcast::<Value>().unwrap();
        assert!(inner.keep_alive.as_ref().is_some_and(|l| Arc::ptr_eq(l, &library)));
        let args = Value::new(crate::args![1_u8, 2_u8]).keep_alive(Arc::clone(&library));
        let args = args.downcast::<Args>().unwrap();
        assert!(args.0.iter().flatten().all(|v| v.keep_alive.is_some()));
        assert_eq!(Arc::strong_count(&library), 4);
    }
}
