//! Dynamically typed values passed to and returned from `invoke_func`.
//!
//! A [`Value`] remembers the name of the type it holds, so a wrong downcast is an error that
//! names both types instead of a bare `None`. Downcasting goes through `TypeId`, with one
//! exception whose proof is at [`shared_runtime_type`]: [`LiveData`](crate::LiveData) made by
//! a plugin's copy of this crate.
//!
//! Files: this one holds [`Value`] (storage, downcasts, drop, ties to its library);
//! `args.rs` the [`Args`] of a call and `args!`; `shared.rs` the one type matched across
//! copies of the crate; `tests.rs` and `review_tests.rs` the unit tests.

use std::any::{Any, TypeId};
use std::fmt;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::sync::Arc;

use crate::live::LiveData;
use crate::maker_drop::{OnPanic, report_drop_panic, run_drop_caught};

mod args;
#[cfg(test)]
mod review_tests;
mod shared;
#[cfg(test)]
mod tests;

pub use args::{ArgError, Args};
use shared::{SHARED_TAG, shared_runtime_type};

/// Values of at most this many machine words, aligned no more than a word, are held inside
/// the [`Value`] itself; larger ones in a box. Three words hold every integer and float,
/// `&str`, `String` and `Vec`, so a call by name with such arguments and result allocates
/// nothing.
const INLINE_WORDS: usize = 3;

/// Where a [`Value`] keeps what it holds: the value itself, or a pointer to its box.
type Slot = MaybeUninit<[usize; INLINE_WORDS]>;

/// Drops what a [`Slot`] holds inside the `catch_unwind` of the code that made it; a panic
/// comes back as text (see `crate::maker_drop`).
type DropInMaker = unsafe fn(*mut Slot) -> Result<(), String>;

/// What a [`Value`] knows of the type it holds: one constant per type, in the read-only data
/// of the code that made the value (a plugin library, for a value a plugin returned).
struct TypeInfo {
    /// `TypeId::of::<T>()` as the maker's code computed it.
    type_id: TypeId,
    /// `std::any::type_name::<T>` of the maker's code.
    type_name: fn() -> &'static str,
    /// Whether the slot holds a `*mut T` to a box rather than the `T`.
    boxed: bool,
    /// The maker's function that drops the held `T` (and frees its box); `None` for an inline
    /// type without drop glue. Whichever side drops the `Value` calls it, so a panicking `Drop`
    /// of a plugin's type panics in the plugin's std, where it is caught, and the text is
    /// raised on the dropping side as its own panic.
    drop_in_maker: Option<DropInMaker>,
    /// [`SHARED_TAG`] of the copy of this crate that made the value when it holds that copy's
    /// `LiveData`; 0 otherwise.
    shared: u64,
}

impl TypeInfo {
    /// The constant for `T`, tagged `shared`.
    const fn of<T: Any + Send>(shared: u64) -> TypeInfo {
        let boxed = !fits_inline::<T>();
        let drop_in_maker: Option<DropInMaker> = if boxed {
            Some(drop_boxed::<T>)
        } else if std::mem::needs_drop::<T>() {
            Some(drop_inline::<T>)
        } else {
            None
        };
        TypeInfo { type_id: TypeId::of::<T>(), type_name: std::any::type_name::<T>, boxed, drop_in_maker, shared }
    }
}

/// A value of any `Send + 'static` type, with its type name.
///
/// A value of up to three words (an integer, a `String`, a `Vec`, …) is held inline; a larger
/// one in a box.
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
    /// The held value, or a `*mut T` to its box (`info.boxed`). Written once by
    /// [`Value::with_info`] in the code that made the value, as `T`.
    slot: Slot,
    /// Points into the read-only data of the code that made the value; only ever read while
    /// that code is mapped: `keep_alive` keeps it so, or the caller holds the generation
    /// (`invoke_typed`).
    info: &'static TypeInfo,
    /// Dropped after the held value (`Drop` runs before the fields are dropped): keeps the
    /// library holding `info` and the maker's drop function mapped.
    keep_alive: Option<Arc<dyn Any + Send + Sync>>,
    /// A `Value` owns a `T: Send` that need not be `Sync` (nor unwind safe).
    _owns: PhantomData<Box<dyn Any + Send>>,
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

/// Whether a `T` is held inline.
const fn fits_inline<T>() -> bool {
    size_of::<T>() <= size_of::<Slot>() && align_of::<T>() <= align_of::<Slot>()
}

/// [`DropInMaker`] for an inline `T` with drop glue.
///
/// # Safety
/// `slot` holds a `T` written by `Value::new_named::<T>` of this copy, dropped only here.
unsafe fn drop_inline<T>(slot: *mut Slot) -> Result<(), String> {
    // SAFETY: forwarded from the caller: the slot holds a live `T`, properly aligned
    // (`fits_inline`), never used again.
    run_drop_caught::<T>(|| unsafe { std::ptr::drop_in_place(slot.cast::<T>()) })
}

/// [`DropInMaker`] for a boxed `T`.
///
/// # Safety
/// `slot` holds the `*mut T` of a `Box<T>` made by `Value::new_named::<T>` of this copy,
/// freed only here.
unsafe fn drop_boxed<T>(slot: *mut Slot) -> Result<(), String> {
    // SAFETY: forwarded from the caller: the pointer came from `Box::into_raw` and the box is
    // dropped once.
    let boxed = unsafe { Box::from_raw(slot.cast::<*mut T>().read()) };
    run_drop_caught::<T>(move || drop(boxed))
}

impl Value {
    /// Wraps a value.
    #[inline]
    pub fn new<T: Any + Send>(value: T) -> Self {
        // `TypeId` comparison within one copy of this crate: exact (and folded by the compiler).
        let info = if TypeId::of::<T>() == TypeId::of::<LiveData>() {
            const { &TypeInfo::of::<T>(SHARED_TAG) }
        } else {
            const { &TypeInfo::of::<T>(0) }
        };
        // SAFETY: `info` was made for `T`, in this copy.
        unsafe { Value::with_info(value, info) }
    }

    /// Wraps `value` described by `info`.
    ///
    /// # Safety
    /// `info` must be `TypeInfo::of::<T>` of this copy of the crate, except for its
    /// `type_name` and `shared`, which a test sets to pose as another copy's `LiveData`.
    #[inline]
    unsafe fn with_info<T: Any + Send>(value: T, info: &'static TypeInfo) -> Self {
        let mut slot = Slot::uninit();
        if info.boxed {
            // SAFETY: a pointer fits the slot (three words, word-aligned).
            unsafe { slot.as_mut_ptr().cast::<*mut T>().write(Box::into_raw(Box::new(value))) };
        } else {
            // SAFETY: `T` fits the slot in size and alignment (`fits_inline`, which decided
            // `info.boxed`).
            unsafe { slot.as_mut_ptr().cast::<T>().write(value) };
        }
        Value { slot, info, keep_alive: None, _owns: PhantomData }
    }

    /// Ties the value to the library that made it, so the library stays mapped while the
    /// value (and its drop glue and type name, which live in that library) exists. A value
    /// already tied keeps its tie (an inner value of a nested one, say).
    pub(crate) fn keep_alive(mut self, library: Arc<dyn Any + Send + Sync>) -> Self {
        self.keep_alive.get_or_insert(library);
        self
    }

    /// Ties the value to `library` unless it is tied already (see `keep_alive`).
    pub(crate) fn tie(&mut self, library: &Arc<dyn Any + Send + Sync>) {
        self.keep_alive.get_or_insert_with(|| Arc::clone(library));
    }

    /// The unit value, for functions that return nothing.
    pub fn unit() -> Self {
        Value::new(())
    }

    /// Name of the held type, as `std::any::type_name` gave it where the value was made;
    /// borrowed from the value, which keeps the library holding the text mapped.
    pub fn type_name(&self) -> &str {
        (self.info.type_name)()
    }

    /// Whether the value holds a `T`.
    #[inline]
    pub fn is<T: Any>(&self) -> bool {
        self.info.type_id == TypeId::of::<T>()
    }

    /// Where the held value is.
    #[inline]
    fn held(&self) -> *const () {
        if self.info.boxed {
            // SAFETY: a boxed value's slot holds its box pointer (`with_info`).
            unsafe { self.slot.as_ptr().cast::<*const ()>().read() }
        } else {
            self.slot.as_ptr().cast()
        }
    }

    /// Whether the held value may be read as a `T`.
    #[inline]
    fn holds<T: Any>(&self) -> bool {
        self.is::<T>() || shared_runtime_type::<T>(self.type_name(), self.info.shared)
    }

    /// Borrows the held `T`.
    #[inline]
    pub fn downcast_ref<T: Any>(&self) -> Result<&T, TypeMismatch> {
        if self.holds::<T>() {
            // SAFETY: the value is a `T` by `TypeId` (the maker's `TypeId::of::<T>()`, equal
            // to ours only for the same type, of the same layout since the fingerprint
            // matched), or a `LiveData` of `T`'s layout proven by `shared_runtime_type`; it
            // lives as long as `self`.
            return Ok(unsafe { &*self.held().cast::<T>() });
        }
        Err(TypeMismatch::new::<T>(self.type_name()))
    }

    /// Takes the held `T` out.
    ///
    /// A moved-out value no longer keeps the library that made it mapped. Its drop glue is
    /// the host's own (the host named its type), but what it points to is not checked: a
    /// `&'static str`, function pointer or trait object a plugin put in it points into the
    /// plugin's library (see the guide, "Memory and unloading"). A `Value` taken out of a
    /// `Value` keeps the outer one's library. A value of another type is dropped by its maker
    /// (see [`Value`]'s drop) and the error returned.
    #[inline(always)]
    pub fn downcast<T: Any>(self) -> Result<T, TypeMismatch> {
        if !self.holds::<T>() {
            return Err(TypeMismatch::new::<T>(self.type_name()));
        }
        // SAFETY: checked just above.
        Ok(unsafe { self.take_unchecked() })
    }

    /// Moves the held value out as a `T`.
    ///
    /// # Safety
    /// `self.holds::<T>()` must be true.
    #[inline]
    unsafe fn take_unchecked<T: Any>(self) -> T {
        let this = ManuallyDrop::new(self);
        let held = this.held().cast::<T>().cast_mut();
        let mut taken = if this.info.boxed {
            // SAFETY: accepted by `holds` above, so the box holds a `T` (see `downcast_ref`);
            // it was allocated by the system allocator, which both sides use, for a value of
            // `T`'s layout, and `T`'s drop glue (ours) is the right one for it. `this` is
            // never dropped, so the box is freed once.
            *unsafe { Box::from_raw(held) }
        } else {
            // SAFETY: as above for an inline `T`, moved out once (`this` is never dropped).
            unsafe { held.read() }
        };
        if this.keep_alive.is_some() {
            // SAFETY: `this` is never dropped, so `keep_alive` is moved out once.
            let library = unsafe { std::ptr::read(&this.keep_alive) };
            tie_nested(&mut taken, library);
        }
        taken
    }
}

impl Drop for Value {
    #[inline]
    fn drop(&mut self) {
        if let Some(drop_in_maker) = self.info.drop_in_maker {
            // SAFETY: the slot holds the value `drop_in_maker` was chosen for (`TypeInfo::of`),
            // never dropped before (`downcast` moves it out without running this). The maker's
            // code must be mapped: a value a plugin made is tied to its library (`keep_alive`,
            // dropped after this), dropped while its generation is held, or taken out of a
            // tied `Value` or `Args` (`tie_nested` ties it). A `Value` inside another type a
            // plugin returned (`Vec<Value>`, `Option<Value>`) is not tied once that is taken
            // out: the guide's "Memory and unloading" puts it with the plugin pointers the
            // runtime cannot check.
            if let Err(message) = unsafe { drop_in_maker(&mut self.slot) } {
                report_drop_panic(message, OnPanic::Raise);
            }
        }
    }
}

/// Ties the `Value`s inside a `Value` or `Args` just taken out of a value to the library the
/// outer value was tied to: they were made by the same code. Out of line: a value a call
/// returns is taken out while its generation is held, untied.
#[cold]
#[inline(never)]
fn tie_nested(taken: &mut dyn Any, library: Option<Arc<dyn Any + Send + Sync>>) {
    let Some(library) = library else { return };
    let tie = |value: &mut Value| {
        value.keep_alive.get_or_insert_with(|| Arc::clone(&library));
    };
    if let Some(value) = taken.downcast_mut::<Value>() {
        tie(value);
    } else if let Some(args) = taken.downcast_mut::<Args>() {
        args.slots_mut().flatten().for_each(tie);
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value<{}>", self.type_name())
    }
}
