//! Dropping a value in the copy of the runtime that made it.
//!
//! Host and plugin each link their own copy of std and of this crate. A value a plugin made (a
//! [`Value`](crate::Value) its `invoke_func` returned, its [`Export`](crate::Export), a value it
//! put in the vault's data bag) has its drop glue in the plugin. Run from the host, a panic in
//! that glue is a panic of the plugin's std, which the host's `catch_unwind` cannot catch
//! ("Rust cannot catch foreign exceptions"): the process aborts. So such a value carries a
//! function of the copy that made it, which drops it inside that copy's `catch_unwind` and
//! returns the panic as text; the side dropping it then raises the text as its own panic, or
//! logs it (see [`OnPanic`]). A value made on the same side as it is dropped takes the same
//! path at the cost of one indirect call.

use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What the side dropping a value does when its drop panicked in the maker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnPanic {
    /// Panics, on the dropping side, with the maker's message: the owner dropped the value
    /// itself and can catch it (unless it is already panicking: then it is logged).
    Raise,
    /// Logs an error: the value is dropped by the runtime (a vault, a generation), wherever
    /// the last reference to it happens to go, where a panic would hit an unrelated caller.
    Log,
}

/// A pointer (`Box` or `Arc`) whose pointee is dropped by the copy of the runtime that made it.
pub(crate) struct MakerDrop<P> {
    pointer: ManuallyDrop<P>,
    drop_in_maker: fn(P) -> Result<(), String>,
    on_panic: OnPanic,
}

impl<P> MakerDrop<P> {
    /// Wraps `pointer`, to a `T` (named in the message if its drop panics). Must be called by
    /// the side that made the pointee: the drop function is the caller's copy.
    pub(crate) fn new<T: ?Sized>(pointer: P, on_panic: OnPanic) -> Self {
        MakerDrop { pointer: ManuallyDrop::new(pointer), drop_in_maker: drop_caught::<P, T>, on_panic }
    }

    /// Takes the pointer out; the caller drops it from now on.
    pub(crate) fn into_inner(self) -> P {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the pointer is taken out exactly once and the
        // `Drop` impl below never sees it.
        unsafe { ManuallyDrop::take(&mut this.pointer) }
    }
}

impl<X: ?Sized> MakerDrop<std::sync::Arc<X>> {
    /// Another reference to the same value, dropped by the same maker.
    pub(crate) fn share(&self) -> Self {
        MakerDrop {
            pointer: ManuallyDrop::new(std::sync::Arc::clone(&self.pointer)),
            drop_in_maker: self.drop_in_maker,
            on_panic: self.on_panic,
        }
    }
}

impl<P> Deref for MakerDrop<P> {
    type Target = P;

    fn deref(&self) -> &P {
        &self.pointer
    }
}

impl<P> Drop for MakerDrop<P> {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once, and nothing reads the pointer after it.
        let pointer = unsafe { ManuallyDrop::take(&mut self.pointer) };
        if let Err(message) = (self.drop_in_maker)(pointer) {
            report_drop_panic(message, self.on_panic);
        }
    }
}

/// Drops `pointer` inside this copy's `catch_unwind`; a panic comes back as text.
fn drop_caught<P, T: ?Sized>(pointer: P) -> Result<(), String> {
    run_drop_caught::<T>(move || drop(pointer))
}

/// Runs `drop`, which drops a `T`, inside this copy's `catch_unwind`; a panic comes back as
/// the text every maker-side drop reports. Must run in the copy that made the value.
pub(crate) fn run_drop_caught<T: ?Sized>(drop: impl FnOnce()) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(drop)).map_err(|payload| {
        format!(
            "a `{}` panicked when dropped: {}",
            std::any::type_name::<T>(),
            crate::private::take_panic_message(payload)
        )
    })
}

/// What the dropping side does with the text of a maker-side drop's panic, under
/// [`OnPanic`]'s rule.
pub(crate) fn report_drop_panic(message: String, on_panic: OnPanic) {
    match on_panic {
        OnPanic::Raise if !std::thread::panicking() => panic!("{message}"),
        _ => tracing::error!("{message}"),
    }
}
