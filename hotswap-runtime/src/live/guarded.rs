//! How a live function is called so that its panic is raised by the caller's own std.
//!
//! Host and every plugin link their own copy of std. A panic unwinding out of one copy's
//! frames into another copy's `catch_unwind` is a foreign exception there, which aborts the
//! process. A live function may be called by the host or by plugin code (its own plugin's or
//! another's), so no single copy of std may raise its panic. Generated code therefore
//! registers, beside each live function, a [`Guarded`] entry made in the plugin: it runs the
//! function inside the plugin's `catch_unwind` and hands a panic back as its message. The
//! caller's handle ([`LiveFn`](super::LiveFn), [`HotFn`](crate::HotFn)), compiled into the
//! caller, then raises that message as a panic of the caller's std (`resume_unwind`, so the
//! panic hook, which already printed the message in the plugin, does not run twice).
//!
//! Arguments and result cross as pointers to the caller's own storage: each argument is read
//! (moved) once by the plugin before the function runs, and the result is written once into
//! the caller's slot. Their types are the signature the caller's handle was checked against
//! by `TypeId` (see [`RegisteredFunc::handle`](super::RegisteredFunc)), up to lifetimes, so
//! both sides agree on every layout (the ABI fingerprint vouches for the compiler).

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::private::take_panic_message;

/// A live function's guarded entry: runs the function `target` points to on the arguments
/// `args` points to (one pointer per argument, each read once), writes the result to `out` and
/// returns `None`; or returns the message of its panic, caught in the plugin's own std.
pub type GuardedFn = unsafe fn(target: *const (), args: *const *mut (), out: *mut ()) -> Option<String>;

/// What generated code registers for a live function besides its typed pointer: the plugin's
/// guarded entry for the function's exact signature, and the function itself.
#[derive(Clone, Copy)]
pub struct Guarded {
    pub(crate) call: GuardedFn,
    pub(crate) target: *const (),
}

// SAFETY: `target` is a function pointer (code, immutable), which any thread may call; `call`
// is a function pointer too.
unsafe impl Send for Guarded {}
// SAFETY: as above.
unsafe impl Sync for Guarded {}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Guarded")
    }
}

macro_rules! guarded {
    ($make:ident, $body:ident $(, $arg:ident $value:ident $index:literal)*) => {
        /// Used by generated code: the guarded entry of `f`, a live function of this many
        /// arguments (`f` is the function itself, not a wrapper).
        pub fn $make<$($arg,)* R>(f: fn($($arg),*) -> R) -> Guarded {
            Guarded { call: $body::<$($arg,)* R>, target: f as *const () }
        }

        /// # Safety
        /// `target` is a `fn($($arg),*) -> R` (made by the matching `guarded_*`); `args`
        /// points to one pointer per argument, each to an initialised value of its type that
        /// the caller gives up (it is moved out here); `out` is valid for writing an `R`.
        unsafe fn $body<$($arg,)* R>(target: *const (), args: *const *mut (), out: *mut ()) -> Option<String> {
            // SAFETY: `target` came from a `fn($($arg),*) -> R` cast to `*const ()` by the
            // matching `guarded_*`, of the same size.
            let f = unsafe { std::mem::transmute::<*const (), fn($($arg),*) -> R>(target) };
            $(
                // SAFETY: forwarded from the caller: the pointer is to an initialised `$arg`,
                // read once.
                let $value = unsafe { args.add($index).read().cast::<$arg>().read() };
            )*
            let _ = args;
            match catch_unwind(AssertUnwindSafe(move || f($($value),*))) {
                Ok(result) => {
                    // SAFETY: forwarded from the caller: `out` is valid for writing an `R`.
                    unsafe { out.cast::<R>().write(result) };
                    None
                }
                Err(payload) => Some(take_panic_message(payload)),
            }
        }
    };
}

guarded!(guarded_0, guarded_body_0);
guarded!(guarded_1, guarded_body_1, A1 a1 0);
guarded!(guarded_2, guarded_body_2, A1 a1 0, A2 a2 1);
guarded!(guarded_3, guarded_body_3, A1 a1 0, A2 a2 1, A3 a3 2);
guarded!(guarded_4, guarded_body_4, A1 a1 0, A2 a2 1, A3 a3 2, A4 a4 3);
guarded!(guarded_5, guarded_body_5, A1 a1 0, A2 a2 1, A3 a3 2, A4 a4 3, A5 a5 4);
guarded!(guarded_6, guarded_body_6, A1 a1 0, A2 a2 1, A3 a3 2, A4 a4 3, A5 a5 4, A6 a6 5);
guarded!(guarded_7, guarded_body_7, A1 a1 0, A2 a2 1, A3 a3 2, A4 a4 3, A5 a5 4, A6 a6 5, A7 a7 6);
guarded!(guarded_8, guarded_body_8, A1 a1 0, A2 a2 1, A3 a3 2, A4 a4 3, A5 a5 4, A6 a6 5, A7 a7 6, A8 a8 7);

impl Guarded {
    /// Calls the function on `args` and returns its result; a panic in it is raised here, as
    /// a panic of this copy of std, which is the caller's: every binary (host or plugin)
    /// links its own copy of this crate, and the caller's handle runs its own.
    ///
    /// # Safety
    /// `R` and the arguments `args` points to must be the function's result and parameter
    /// types up to lifetimes (the caller's handle was checked by `TypeId` against the
    /// function's signature); each argument is moved out, so the caller must not drop it.
    #[inline]
    pub(crate) unsafe fn call<R>(self, args: &[*mut ()]) -> R {
        let mut out = std::mem::MaybeUninit::<R>::uninit();
        // SAFETY: forwarded from the caller; `out` is a slot for an `R`.
        match unsafe { (self.call)(self.target, args.as_ptr(), out.as_mut_ptr().cast()) } {
            // SAFETY: `None` means the plugin wrote the result.
            None => unsafe { out.assume_init() },
            Some(message) => raise(message),
        }
    }
}

/// Raises the message of a live function's panic in this copy of std.
#[cold]
#[inline(never)]
fn raise(message: String) -> ! {
    std::panic::resume_unwind(Box::new(message))
}
