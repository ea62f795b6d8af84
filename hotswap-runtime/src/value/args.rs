//! The arguments of a call by name ([`Args`]), the `args!` macro, and [`ArgError`].

use std::any::Any;
use std::fmt;
use std::mem::ManuallyDrop;

use super::{TypeMismatch, Value};

/// An argument was missing or of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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

/// Arguments held without a heap allocation; more go to a vector.
const ARGS_INLINE: usize = 2;

/// The arguments of one `invoke_func` call.
///
/// Up to two arguments are held inline, and values of up to three words are held inside
/// their [`Value`], so `args![a, b]` of integers or strings allocates nothing for the call.
/// (The inline storage is plain std types: they cross to the plugin, and the fingerprint
/// vouches for std's layouts and this crate's, not for another crate's version.)
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
pub struct Args {
    /// The first [`ARGS_INLINE`] arguments; slots from `len` on are `None`. Dropped by
    /// `Args`' drop, which visits only the slots in use.
    pub(super) inline: ManuallyDrop<[Option<Value>; ARGS_INLINE]>,
    /// The others, in order; empty, and never allocated, until more than [`ARGS_INLINE`]
    /// arguments are pushed. Dropped by `Args`' drop.
    more: ManuallyDrop<Vec<Option<Value>>>,
    /// Number of arguments pushed (taken ones included).
    len: usize,
}

impl Args {
    /// No arguments.
    #[inline]
    pub fn new() -> Self {
        Args { inline: ManuallyDrop::new([const { None }; ARGS_INLINE]), more: ManuallyDrop::new(Vec::new()), len: 0 }
    }

    /// For `args!`: the first `len` of `inline` are the arguments, the others `None`.
    #[doc(hidden)]
    #[inline]
    pub fn __inline(inline: [Option<Value>; ARGS_INLINE], len: usize) -> Self {
        debug_assert!(len <= ARGS_INLINE && inline[len..].iter().all(Option::is_none));
        Args { inline: ManuallyDrop::new(inline), more: ManuallyDrop::new(Vec::new()), len }
    }

    /// Adds an argument, builder style.
    pub fn with<T: Any + Send>(mut self, value: T) -> Self {
        self.push(value);
        self
    }

    /// Adds an argument.
    #[inline]
    pub fn push<T: Any + Send>(&mut self, value: T) {
        self.push_value(Value::new(value));
    }

    /// Adds an already wrapped argument.
    #[inline]
    pub fn push_value(&mut self, value: Value) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = Some(value),
            None => self.more.push(Some(value)),
        }
        self.len += 1;
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn slot(&self, index: usize) -> Option<&Option<Value>> {
        if index < ARGS_INLINE {
            self.inline[..self.len.min(ARGS_INLINE)].get(index)
        } else {
            self.more.get(index - ARGS_INLINE)
        }
    }

    #[inline]
    fn slot_mut(&mut self, index: usize) -> Option<&mut Option<Value>> {
        if index < ARGS_INLINE {
            self.inline[..self.len.min(ARGS_INLINE)].get_mut(index)
        } else {
            self.more.get_mut(index - ARGS_INLINE)
        }
    }

    /// Every argument's slot, in order (`None` for a taken one).
    pub(super) fn slots_mut(&mut self) -> impl Iterator<Item = &mut Option<Value>> {
        let used = self.len.min(ARGS_INLINE);
        self.inline[..used].iter_mut().chain(self.more.iter_mut())
    }

    /// Borrows argument `index` as a `T`.
    #[inline]
    pub fn get<T: Any>(&self, index: usize) -> Result<&T, ArgError> {
        let len = self.len;
        let Some(value) = self.slot(index).and_then(Option::as_ref) else {
            return Err(ArgError::Missing { index, len });
        };
        value.downcast_ref::<T>().map_err(|mismatch| ArgError::WrongType { index, mismatch })
    }

    /// Takes argument `index` out as a `T`; a second take of the same index is `Missing`.
    #[inline]
    pub fn take<T: Any>(&mut self, index: usize) -> Result<T, ArgError> {
        let len = self.len;
        let Some(slot) = self.slot_mut(index) else { return Err(ArgError::Missing { index, len }) };
        let Some(value) = slot else { return Err(ArgError::Missing { index, len }) };
        if !value.holds::<T>() {
            return Err(wrong_type::<T>(index, value));
        }
        // SAFETY: the slot is `Some` and holds a `T`, both checked just above.
        Ok(unsafe { slot.take().unwrap_unchecked().take_unchecked() })
    }
}

/// The error of a `get` or `take` of a `T` that found `value` at `index`; out of line.
#[cold]
#[inline(never)]
fn wrong_type<T>(index: usize, value: &Value) -> ArgError {
    ArgError::WrongType { index, mismatch: TypeMismatch::new::<T>(value.type_name()) }
}

impl Drop for Args {
    #[inline]
    fn drop(&mut self) {
        // The usual case after a call: every argument was taken, nothing was spilled (`more`
        // is then empty and unallocated), so there is nothing to drop.
        let used = self.len.min(ARGS_INLINE);
        if self.len <= ARGS_INLINE && self.inline[..used].iter().all(Option::is_none) {
            return;
        }
        self.drop_arguments();
    }
}

impl Args {
    /// Drops the arguments left, every one of them even when one's drop panics.
    #[cold]
    #[inline(never)]
    fn drop_arguments(&mut self) {
        let used = self.len.min(ARGS_INLINE);
        // SAFETY: `more` is taken once, here, and never used again; it is empty and
        // unallocated unless more than `ARGS_INLINE` arguments were pushed. Held in a local, it
        // is dropped even when an inline argument's drop panics.
        let _more = (self.len > ARGS_INLINE).then(|| unsafe { ManuallyDrop::take(&mut self.more) });
        // SAFETY: each inline slot in use is dropped once, here, and never used again; the
        // slots past `used` were never written (`None`). Dropping a slice drops every element
        // even when one of them panics, and a taken argument's slot (`None`) needs nothing.
        unsafe { std::ptr::drop_in_place(&mut self.inline[..used]) };
    }
}

impl Default for Args {
    fn default() -> Self {
        Args::new()
    }
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries((0..self.len).map(|index| self.slot(index).and_then(Option::as_ref))).finish()
    }
}

/// Builds [`Args`] from a list of expressions: `args![1_i64, "x".to_string()]`.
#[macro_export]
macro_rules! args {
    // Up to the inline arguments: written in place, with nothing to check.
    () => {
        $crate::Args::new()
    };
    ($a:expr $(,)?) => {
        $crate::Args::__inline([::core::option::Option::Some($crate::Value::new($a)), ::core::option::Option::None], 1)
    };
    ($a:expr, $b:expr $(,)?) => {
        $crate::Args::__inline(
            [::core::option::Option::Some($crate::Value::new($a)), ::core::option::Option::Some($crate::Value::new($b))],
            2,
        )
    };
    ($($value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut args = $crate::Args::new();
        $(args.push($value);)*
        args
    }};
}
