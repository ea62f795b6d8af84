//! Dynamically typed values passed to and returned from `invoke_func`.
//!
//! A [`Value`] remembers the name of the type it holds, so a wrong downcast is an error that
//! names both types instead of a bare `None`. Downcasting goes through `TypeId`, with one
//! exception whose proof is at [`shared_runtime_type`]: [`LiveData`](crate::LiveData) made by
//! a plugin's copy of this crate.

use std::any::{Any, TypeId};
use std::fmt;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::sync::Arc;

use crate::live::LiveData;
use crate::maker_drop::{OnPanic, report_drop_panic, run_drop_caught};

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
        write!(f, "Value<{}>", self.type_name())
    }
}

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
    inline: ManuallyDrop<[Option<Value>; ARGS_INLINE]>,
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
    fn slots_mut(&mut self) -> impl Iterator<Item = &mut Option<Value>> {
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

    /// A value of `T` that poses as a `LiveData` named `name` and tagged `shared`.
    fn posing<T: Any + Send>(inner: T, type_name: fn() -> &'static str, shared: u64) -> Value {
        let info = Box::leak(Box::new(TypeInfo { type_name, shared, ..TypeInfo::of::<T>(0) }));
        // SAFETY: `info` is `T`'s but for the name and tag.
        unsafe { Value::with_info(inner, info) }
    }

    fn made_elsewhere<T: Any + Send>(inner: T, shared: u64) -> Value {
        posing(inner, std::any::type_name::<LiveData>, shared)
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
        let value = posing(plugin_data(), std::any::type_name::<TypeMismatch>, SHARED_TAG);
        assert!(value.downcast_ref::<TypeMismatch>().is_err());
        let data =
            LiveData { type_name: String::new(), plugin: String::new(), written_by: String::new(), bytes: Vec::new() };
        assert_eq!(Value::new(data).info.shared, SHARED_TAG);
        assert_eq!(Value::new(String::new()).info.shared, 0);
    }

    #[test]
    fn a_value_taken_out_of_a_value_keeps_the_outer_ones_library() {
        let library: Arc<dyn Any + Send + Sync> = Arc::new("the library");
        let outer = Value::new(Value::new(5_u8)).keep_alive(Arc::clone(&library));
        let inner = outer.downcast::<Value>().unwrap();
        assert!(inner.keep_alive.as_ref().is_some_and(|l| Arc::ptr_eq(l, &library)));
        let args = Value::new(crate::args![1_u8, 2_u8]).keep_alive(Arc::clone(&library));
        let args = args.downcast::<Args>().unwrap();
        assert!(args.inline.iter().flatten().all(|v| v.keep_alive.is_some()));
        assert_eq!(Arc::strong_count(&library), 4);
    }

    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its drops in the counter it points to; `PAD` words make it inline or boxed.
    struct Counted<const PAD: usize>(Arc<AtomicUsize>, [usize; PAD]);

    impl<const PAD: usize> Drop for Counted<PAD> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counted_drops<const PAD: usize>() -> (bool, usize, usize) {
        let drops = Arc::new(AtomicUsize::new(0));
        let value = Value::new(Counted::<PAD>(Arc::clone(&drops), [7; PAD]));
        let boxed = value.info.boxed;
        drop(value);
        let dropped = drops.load(Ordering::SeqCst);
        let taken = Value::new(Counted::<PAD>(Arc::clone(&drops), [7; PAD])).downcast::<Counted<PAD>>().unwrap();
        assert_eq!(taken.1, [7; PAD]);
        let after_take = drops.load(Ordering::SeqCst) - dropped;
        drop(taken);
        (boxed, dropped, after_take)
    }

    #[test]
    fn small_values_are_inline_large_ones_boxed_and_each_is_dropped_once() {
        // One word of Arc plus PAD words.
        assert_eq!(counted_drops::<2>(), (false, 1, 0), "3 words: inline, dropped once, moved out without a drop");
        assert_eq!(counted_drops::<3>(), (true, 1, 0), "4 words: boxed, dropped once, moved out without a drop");
        for (value, boxed) in [
            (Value::new(5_i64), false),
            (Value::new(String::from("five")), false),
            (Value::new(()), false),
            (Value::new(5_u128), align_of::<u128>() > align_of::<usize>()),
            (Value::new([5_u64; 4]), true),
        ] {
            assert_eq!(value.info.boxed, boxed, "{}", value.type_name());
        }
        assert!(Value::new(5_i64).info.drop_in_maker.is_none(), "nothing to run for an inline value without drop glue");
        assert_eq!(Value::new(String::from("five")).downcast::<String>().unwrap(), "five");
        assert_eq!(Value::new([5_u64; 4]).downcast::<[u64; 4]>().unwrap(), [5; 4]);
        assert_eq!(*Value::new(5_u128).downcast_ref::<u128>().unwrap(), 5);
    }

    /// Panics when dropped; `PAD` words make it inline or boxed.
    struct PanicsOnDrop<const PAD: usize>([usize; PAD]);

    impl<const PAD: usize> Drop for PanicsOnDrop<PAD> {
        fn drop(&mut self) {
            panic!("drop refused");
        }
    }

    #[test]
    fn a_panicking_drop_is_raised_as_the_droppers_panic_naming_the_type() {
        for (payload, boxed) in [
            (std::panic::catch_unwind(|| drop(Value::new(PanicsOnDrop([0; 1])))), false),
            (std::panic::catch_unwind(|| drop(Value::new(PanicsOnDrop([0; 8])))), true),
        ] {
            let message = crate::private::take_panic_message(payload.unwrap_err());
            assert!(
                message.contains("PanicsOnDrop") && message.ends_with("panicked when dropped: drop refused"),
                "boxed {boxed}: {message}"
            );
        }
    }

    #[test]
    fn more_arguments_than_the_inline_ones_keep_their_order() {
        let mut args = Args::new();
        for i in 0..7_i64 {
            args.push(i);
        }
        args.push(String::from("last"));
        assert_eq!(args.len(), 8);
        assert_eq!(args.take::<String>(7).unwrap(), "last");
        assert_eq!(args.take::<i64>(5).unwrap(), 5);
        assert!(matches!(args.take::<i64>(5), Err(ArgError::Missing { index: 5, len: 8 })));
        assert!(matches!(args.get::<i64>(8), Err(ArgError::Missing { index: 8, len: 8 })));
        assert!(matches!(args.take::<String>(4), Err(ArgError::WrongType { index: 4, .. })));
        assert_eq!((0..5).map(|i| *args.get::<i64>(i).unwrap()).sum::<i64>(), 10, "a refused take leaves the argument");
        assert_eq!(
            format!("{args:?}"),
            "[Some(Value<i64>), Some(Value<i64>), Some(Value<i64>), Some(Value<i64>), Some(Value<i64>), None, Some(Value<i64>), None]"
        );
        let library: Arc<dyn Any + Send + Sync> = Arc::new("the library");
        let args = Value::new(args).keep_alive(Arc::clone(&library)).downcast::<Args>().unwrap();
        assert_eq!(Arc::strong_count(&library), 7, "each argument left is tied, spilled ones included");
        drop(args);
        assert_eq!(Arc::strong_count(&library), 1);
    }
}

#[cfg(test)]
mod review_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts its drops; `PANIC` makes the drop panic after counting.
    struct Dropped<const PANIC: bool>(Arc<AtomicUsize>);

    impl<const PANIC: bool> Drop for Dropped<PANIC> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
            if PANIC {
                panic!("refused");
            }
        }
    }

    /// Drops `args` inside `catch_unwind`; returns whether it panicked.
    fn drop_caught(args: Args) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(args))).is_err()
    }

    #[test]
    fn a_panicking_argument_does_not_leak_the_others() {
        let drops = Arc::new(AtomicUsize::new(0));
        let ok = || Dropped::<false>(Arc::clone(&drops));
        let bad = || Dropped::<true>(Arc::clone(&drops));
        // The first inline argument panics: the second is still dropped.
        assert!(drop_caught(crate::args![bad(), ok()]));
        assert_eq!(drops.swap(0, Ordering::SeqCst), 2, "inline: every argument dropped once");
        // A spilled argument panics: the inline ones and the other spilled ones are dropped.
        assert!(drop_caught(crate::args![ok(), ok(), bad(), ok()]));
        assert_eq!(drops.swap(0, Ordering::SeqCst), 4, "spilled: every argument dropped once");
        // Two panicking arguments: the second panic, during unwinding, is logged, not an abort.
        assert!(drop_caught(crate::args![bad(), ok(), bad(), ok()]));
        assert_eq!(drops.swap(0, Ordering::SeqCst), 4, "two panics: every argument dropped once");
        // Taken arguments are not dropped again.
        let mut args = crate::args![ok(), bad(), ok()];
        drop(args.take::<Dropped<true>>(1).map(std::mem::forget));
        assert!(args.take::<u8>(0).is_err(), "a wrong take leaves the argument");
        assert!(!drop_caught(args));
        assert_eq!(drops.swap(0, Ordering::SeqCst), 2);
    }

    #[test]
    fn zero_sized_and_over_aligned_values() {
        let drops = Arc::new(AtomicUsize::new(0));
        struct Zst;
        #[repr(align(16))]
        struct Wide(u8);
        #[repr(align(8))]
        struct Full([u8; 24]);
        let zst = Value::new(Zst);
        assert!(!zst.info.boxed);
        assert!(zst.downcast::<Zst>().is_ok());
        let wide = Value::new(Wide(9));
        assert!(wide.info.boxed, "align 16 does not fit the word-aligned slot");
        assert_eq!(wide.downcast_ref::<Wide>().unwrap().0, 9);
        assert_eq!(wide.downcast_ref::<Wide>().unwrap() as *const Wide as usize % 16, 0);
        assert_eq!(wide.downcast::<Wide>().unwrap().0, 9);
        let full = Value::new(Full([3; 24]));
        assert!(!full.info.boxed);
        assert_eq!(full.downcast::<Full>().unwrap().0, [3; 24]);
        let big = Value::new(u128::MAX);
        assert_eq!(*big.downcast_ref::<u128>().unwrap(), u128::MAX);
        assert_eq!(big.downcast::<u128>().unwrap(), u128::MAX);
        // A value made on one thread, dropped on another.
        let value = Value::new(Dropped::<false>(Arc::clone(&drops)));
        std::thread::spawn(move || drop(value)).join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        // A value of a value of args, a wrong downcast then drop.
        let nested = Value::new(Value::new(crate::args![Dropped::<false>(Arc::clone(&drops))]));
        assert!(nested.downcast::<Args>().is_err());
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }
}
