//! Typed handles on live functions, and how code calls through them.
//!
//! A live function's pointer and name live in the plugin's library, which is closed once
//! nothing refers to it (see [`retention`](crate::retention)). So no safe method hands either
//! out on its own: the name is borrowed from the handle, and the function is called *through*
//! the handle ([`LiveFn::call`], [`LiveCall`]), which keeps the library mapped for the whole
//! call. Only [`LiveFn::as_raw`], an `unsafe fn`, gives the bare pointer.
//!
//! A copied pointer cannot outlive its handle, because there is no safe way to copy it:
//!
//! ```compile_fail,E0614
//! # fn f(vault: &hotswap_runtime::Vault) -> Result<(), hotswap_runtime::LiveError> {
//! let add = vault.live_func::<fn(i64, i64) -> i64>("live_add")?;
//! let raw: fn(i64, i64) -> i64 = *add; // no `Deref` to the bare function
//! # Ok(()) }
//! ```
//!
//! ```compile_fail,E0599
//! # fn f(vault: &hotswap_runtime::Vault) -> Result<(), hotswap_runtime::LiveError> {
//! let add = vault.live_func::<fn(i64, i64) -> i64>("live_add")?;
//! let raw: fn(i64, i64) -> i64 = add.get(); // no safe getter either
//! # Ok(()) }
//! ```
//!
//! and a name cannot outlive its handle, because it is borrowed from it:
//!
//! ```compile_fail,E0597
//! # fn f(vault: &hotswap_runtime::Vault) -> Result<(), hotswap_runtime::LiveError> {
//! let name: &str = {
//!     let add = vault.live_func::<fn(i64, i64) -> i64>("live_add")?;
//!     add.name()
//! }; // `add` dropped here while still borrowed
//! println!("{name}");
//! # Ok(()) }
//! ```
//!
//! ```compile_fail,E0505
//! # fn f(vault: &hotswap_runtime::Vault) -> Result<(), hotswap_runtime::LiveError> {
//! let add = vault.live_func::<fn(i64, i64) -> i64>("live_add")?;
//! let name = add.name();
//! drop(add); // cannot move out of `add` while `name` borrows it
//! println!("{name}");
//! # Ok(()) }
//! ```
//!
//! The same code, keeping the handle while the name is used, compiles:
//!
//! ```no_run
//! # fn f(vault: &hotswap_runtime::Vault) -> Result<(), hotswap_runtime::LiveError> {
//! let add = vault.live_func::<fn(i64, i64) -> i64>("live_add")?;
//! let name = add.name();
//! println!("{name} = {}", add.call((2, 3)));
//! drop(add);
//! # Ok(()) }
//! ```

use std::any::{Any, TypeId};
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;

use super::guarded::Guarded;
use crate::value::Value;

pub(crate) mod sealed {
    /// Implemented only by this crate's live-function handles.
    pub trait Sealed {}

    /// Proof that the caller is this crate: [`super::LiveHandle::with_fn`] needs one, so code
    /// outside the crate cannot call it and keep the pointer it is given.
    #[derive(Debug)]
    pub struct Token(pub(crate) ());
}

/// A handle through which a live function is called; implemented by the runtime's handles
/// ([`LiveFn`] today) and by no other type (sealed).
///
/// Every handle type gets [`LiveCall`] for free: it only has to say how to reach its
/// function pointer while keeping the function's library mapped.
pub trait LiveHandle: sealed::Sealed {
    /// The function pointer type, e.g. `fn(i64, i64) -> i64`.
    type Fn: Copy;

    /// Runs `body` with the function's handle while the library holding it is kept mapped.
    /// Callable by this crate only (the token cannot be made elsewhere).
    #[doc(hidden)]
    fn with_fn<R>(&self, token: sealed::Token, body: impl FnOnce(&LiveFn<Self::Fn>) -> R) -> R;
}

/// Calling a live function through its handle with a tuple of arguments:
/// `handle.call(())`, `handle.call((x,))`, `handle.call((a, b))`, up to eight arguments.
///
/// Implemented for every [`LiveHandle`] whose function takes the tuple's types. [`LiveFn`]
/// also has an inherent `call`, so the trait need not be imported.
///
/// ```no_run
/// use hotswap_runtime::LiveCall;
///
/// // Generic over the handle type: works for any of the runtime's live-function handles.
/// fn total(add: &impl LiveCall<(i64, i64), Output = i64>) -> i64 {
///     add.call((1, 2)) + add.call((3, 4))
/// }
/// # fn f(vault: &hotswap_runtime::Vault) -> Result<(), hotswap_runtime::LiveError> {
/// let add = vault.live_func::<fn(i64, i64) -> i64>("live_add")?;
/// println!("{}", total(&add));
/// # Ok(()) }
/// ```
pub trait LiveCall<Args>: sealed::Sealed {
    /// What the function returns.
    type Output;

    /// Calls the function. A panic in it is caught in its plugin and raised again as a panic
    /// of the caller's own std (the host's, or the calling plugin's), which the caller can
    /// catch. A [`Value`] it returns is tied to its library.
    fn call(&self, args: Args) -> Self::Output;
}

macro_rules! live_call_impl {
    ($($arg:ident),*) => {
        impl<H, $($arg,)* R> LiveCall<($($arg,)*)> for H
        where
            H: LiveHandle,
            H::Fn: Fn($($arg),*) -> R,
        {
            type Output = R;

            #[inline]
            #[allow(non_snake_case)]
            fn call(&self, ($($arg,)*): ($($arg,)*)) -> R {
                self.with_fn(sealed::Token(()), move |func| {
                    $(let mut $arg = ManuallyDrop::new($arg);)*
                    let args: &[*mut ()] = &[$((&raw mut $arg).cast::<()>()),*];
                    // SAFETY: `H::Fn: Fn($($arg),*) -> R` and `H::Fn` is the function's exact
                    // pointer type (checked by `TypeId` when the handle was made), so the
                    // arguments and `R` are its parameter and result types up to lifetimes;
                    // each argument is in a `ManuallyDrop`, moved out by the call only.
                    let mut result: R = unsafe { func.guarded.call::<R>(args) };
                    func.tie(&mut result);
                    result
                })
            }
        }
    };
}

live_call_impl!();
live_call_impl!(A1);
live_call_impl!(A1, A2);
live_call_impl!(A1, A2, A3);
live_call_impl!(A1, A2, A3, A4);
live_call_impl!(A1, A2, A3, A4, A5);
live_call_impl!(A1, A2, A3, A4, A5, A6);
live_call_impl!(A1, A2, A3, A4, A5, A6, A7);
live_call_impl!(A1, A2, A3, A4, A5, A6, A7, A8);

/// A typed handle on one generation's live function. Keeps the library that holds the
/// function mapped while it (or a clone) exists; calling through it costs two indirect
/// calls (the plugin's guarded entry, then the function).
///
/// It stays on the generation it was fetched from: fetch it again after a reload to call the
/// new code.
pub struct LiveFn<F> {
    /// The function behind the wrapper that raises its panic as the host's (for `as_raw`).
    func: F,
    /// The plugin's guarded entry, through which every call goes.
    guarded: Guarded,
    /// Points into the library's read-only data: only ever lent out borrowed from `self`.
    name: &'static str,
    _library: Arc<dyn Any + Send + Sync>,
}

impl<F: Copy> LiveFn<F> {
    /// Made by the vault only: `func` and `name` live in `library`.
    pub(crate) fn new(func: F, guarded: Guarded, name: &'static str, library: Arc<dyn Any + Send + Sync>) -> Self {
        LiveFn { func, guarded, name, _library: library }
    }

    /// Ties `result` to the function's library when it is a [`Value`]: its type information
    /// and drop glue live there. (A `Value` inside another type, `Vec<Value>` say, is not
    /// tied: see the guide, "Memory and unloading".)
    #[inline]
    fn tie<R>(&self, result: &mut R) {
        if type_id_of::<R>() == TypeId::of::<Value>() {
            // SAFETY: `R` is `Value` (same `TypeId`; lifetimes cannot differ, `Value` has none).
            let value = unsafe { &mut *(result as *mut R).cast::<Value>() };
            value.tie(&self._library);
        }
    }

    /// Calls the function with a tuple of arguments: `add.call((2, 3))`, `twice.call((21,))`,
    /// `tick.call(())`. Arguments are not coerced: pass `text.as_str()`, not `&text`, to a
    /// `fn(&str)`. A panic in the plugin is raised again as a panic of the caller's own std
    /// (the host's, or the calling plugin's); a returned [`Value`] is tied to the library.
    #[inline]
    pub fn call<Args>(&self, args: Args) -> <Self as LiveCall<Args>>::Output
    where
        Self: LiveCall<Args>,
    {
        LiveCall::call(self, args)
    }

    /// The live function's name, borrowed from the handle (it lives in the plugin's library).
    pub fn name(&self) -> &str {
        self.name
    }

    /// The bare function pointer, not tied to the handle's lifetime. It points to a wrapper
    /// that raises a panic of the function as a panic of the host's std: call it from host
    /// code only (from a plugin, such a panic unwinding into the plugin's `catch_unwind`
    /// aborts the process); [`call`](Self::call) raises it in the caller's std.
    ///
    /// # Safety
    ///
    /// The pointer points into the plugin's library, which is closed (`dlclose`) once no
    /// handle, generation or value refers to it. The caller must not call the pointer, nor use
    /// anything it returned that points into the library, after this handle and every clone of
    /// it is dropped: keep the handle alive at least as long as the pointer, as with
    /// libloading's `Symbol::into_raw`. Calling it after that is undefined behaviour (in
    /// practice a SIGSEGV on an unmapped page, or a call into whatever library was mapped there
    /// next).
    pub unsafe fn as_raw(&self) -> F {
        self.func
    }
}

impl<F: Copy> sealed::Sealed for LiveFn<F> {}

impl<F: Copy> LiveHandle for LiveFn<F> {
    type Fn = F;

    #[inline]
    fn with_fn<R>(&self, _: sealed::Token, body: impl FnOnce(&LiveFn<F>) -> R) -> R {
        // `self` is borrowed for the whole call, so `_library` keeps the code mapped.
        body(self)
    }
}

impl<F: Copy> Clone for LiveFn<F> {
    fn clone(&self) -> Self {
        LiveFn { func: self.func, guarded: self.guarded, name: self.name, _library: Arc::clone(&self._library) }
    }
}

// The library reference is only held, never used, so a panic cannot leave it half-changed:
// a handle can be used inside and after `catch_unwind` as its function pointer can.
impl<F: UnwindSafe> UnwindSafe for LiveFn<F> {}
impl<F: RefUnwindSafe> RefUnwindSafe for LiveFn<F> {}

impl<F> fmt::Debug for LiveFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LiveFn<{}>({})", std::any::type_name::<F>(), self.name)
    }
}

/// `TypeId::of::<T>()` for a `T` that need not be `'static`, with its lifetimes erased (the
/// `typeid` crate's method): `LiveCall`'s result type may borrow from an argument.
#[inline(always)]
fn type_id_of<T: ?Sized>() -> TypeId {
    trait NonStaticAny {
        fn type_id(&self) -> TypeId
        where
            Self: 'static;
    }
    impl<T: ?Sized> NonStaticAny for PhantomData<T> {
        #[inline(always)]
        fn type_id(&self) -> TypeId
        where
            Self: 'static,
        {
            TypeId::of::<T>()
        }
    }
    let phantom = PhantomData::<T>;
    // SAFETY: only the trait object's lifetime bound changes; `type_id` reads nothing of
    // `self` and only names `T`, whose `TypeId` does not depend on its lifetimes.
    NonStaticAny::type_id(unsafe { std::mem::transmute::<&dyn NonStaticAny, &(dyn NonStaticAny + 'static)>(&phantom) })
}
