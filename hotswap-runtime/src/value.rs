//! Dynamically typed values passed to and returned from `invoke_func`.
//!
//! A [`Value`] remembers the name of the type it holds, so a wrong downcast is an error that
//! names both types instead of a bare `None`. Downcasting goes through `TypeId`, so it can
//! never reinterpret memory: at worst it fails.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

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
    type_name: &'static str,
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
        let inner = MakerDrop::new::<T>(Box::new(value) as Box<dyn Any + Send>, OnPanic::Raise);
        Value { inner, type_name: std::any::type_name::<T>(), keep_alive: None }
    }

    /// Ties the value to the library that made it, so the library stays mapped while the
    /// value (and its drop glue and type name, which live in that library) exists.
    pub(crate) fn keep_alive(mut self, library: Arc<dyn Any + Send + Sync>) -> Self {
        self.keep_alive = Some(library);
        self
    }

    /// The unit value, for functions that return nothing.
    pub fn unit() -> Self {
        Value::new(())
    }

    /// Name of the held type, as `std::any::type_name` gave it where the value was made.
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
        if runtime_type_matches::<T>(self.type_name) {
            // SAFETY: see `runtime_type_matches`: the held value is a `T` of the same layout,
            // built from the same source by the same compiler; only its TypeId differs.
            return Ok(unsafe { &*(&**self.inner as *const (dyn Any + Send) as *const T) });
        }
        Err(TypeMismatch::new::<T>(self.type_name))
    }

    /// Takes the held `T` out.
    ///
    /// Only a value of a type the host can name is moved out, and such a type's drop glue is
    /// the host's own, so the library that made the value may go once it is taken. A value of
    /// another type is dropped by its maker (see [`Value`]'s drop) and the error returned.
    pub fn downcast<T: Any>(self) -> Result<T, TypeMismatch> {
        if self.downcast_ref::<T>().is_err() {
            return Err(TypeMismatch::new::<T>(self.type_name));
        }
        let Value { inner, type_name: _, keep_alive } = self;
        let inner = inner.into_inner();
        let taken = match inner.downcast::<T>() {
            Ok(held) => *held,
            // SAFETY: `downcast_ref` above accepted the value, so it is a `T` by `TypeId` or by
            // `runtime_type_matches` (see there); the box was allocated by the system
            // allocator, which both sides use, for a value of `T`'s layout.
            Err(inner) => *unsafe { Box::from_raw(Box::into_raw(inner) as *mut T) },
        };
        drop(keep_alive);
        Ok(taken)
    }
}

/// Whether a value whose type is named `found` is a `T` although their `TypeId`s differ.
///
/// Host and plugin each compile their own copy of `hotswap-runtime`, and cargo may give the
/// two copies different metadata hashes (different feature unification of its dependencies),
/// so the `TypeId` of, say, [`LiveData`](crate::LiveData) differs between the two sides.
/// Its layout does not: the ABI fingerprint, checked before the plugin was loaded, guarantees
/// the same compiler and the same `hotswap-runtime` version. So a non-generic type of this
/// crate is recognised by its stable name. User types never are: for them the `TypeId`
/// decides, so a changed type is an error, never a reinterpretation.
fn runtime_type_matches<T: Any>(found: &str) -> bool {
    let expected = std::any::type_name::<T>();
    expected == found && expected.starts_with("hotswap_runtime::") && !expected.contains('<')
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
