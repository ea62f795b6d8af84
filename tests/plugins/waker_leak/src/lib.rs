//! Test fixture for `tests/tests/wakers.rs`: plugin `waker`, a handler that polls a host-owned
//! object (the extension, a waker slot like tokio's `AtomicWaker`) and is then dropped, leaving
//! a waker in the host's object.
//!
//! Calls, each with the host's waker (what the handler's future would be polled with):
//! * `park_direct(waker)`: polls the slot under the host's waker, as an `async fn` or a
//!   `join!` of a fixed set does; the slot keeps the host's waker;
//! * `park_unordered(waker)`: polls it inside a set of futures that makes a waker of its own
//!   for each (as `futures::stream::FuturesUnordered` does, written out here to keep the
//!   fixture free of dependencies): the slot keeps a waker whose functions are this library's
//!   code; woken, it marks its task and wakes the host's waker, as `FuturesUnordered` does.
//!
//! Both then drop their futures (the call is over, as a dropped handler's future is). Feature
//! `pinned` makes a library the runtime never closes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use hotswap_runtime::{Args, Export, HookError, HookResult, LoadContext, Value, Vault};

hotswap_runtime::plugin!();

/// The host's object: a slot holding the last waker it was polled with.
type Slot = Arc<Mutex<Option<Waker>>>;

static VAULT: Mutex<Option<Arc<Vault>>> = Mutex::new(None);

/// Waits on the host's slot: stores the waker it is polled with, as a channel's receiver does.
struct WaitOnSlot(Slot);

impl Future for WaitOnSlot {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *self.0.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// One future's task in the set: woken, it is marked ready and the set's own waker (the host's)
/// is woken, as `FuturesUnordered`'s tasks do.
struct Task {
    ready: AtomicBool,
    parent: Waker,
}

static TASK_WAKER: RawWakerVTable = RawWakerVTable::new(task_clone, task_wake, task_wake_by_ref, task_drop);

fn task_waker(task: Arc<Task>) -> Waker {
    let raw = RawWaker::new(Arc::into_raw(task).cast(), &TASK_WAKER);
    // SAFETY: the vtable's functions treat the data pointer as what `Arc::into_raw` gave for an
    // `Arc<Task>`, owning one count per waker, and `Task` is `Send + Sync`.
    unsafe { Waker::from_raw(raw) }
}

unsafe fn task_clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` holds one count of an `Arc<Task>` (see `task_waker`); one more for the clone.
    unsafe { Arc::increment_strong_count(data.cast::<Task>()) };
    RawWaker::new(data, &TASK_WAKER)
}

unsafe fn task_wake(data: *const ()) {
    // SAFETY: `data` holds one count of an `Arc<Task>`, given up by the waker being woken.
    let task = unsafe { Arc::from_raw(data.cast::<Task>()) };
    task.ready.store(true, Ordering::SeqCst);
    task.parent.wake_by_ref();
}

unsafe fn task_wake_by_ref(data: *const ()) {
    // SAFETY: `data` points to a live `Task` (the waker holds a count on it).
    let task = unsafe { &*data.cast::<Task>() };
    task.ready.store(true, Ordering::SeqCst);
    task.parent.wake_by_ref();
}

unsafe fn task_drop(data: *const ()) {
    // SAFETY: `data` holds one count of an `Arc<Task>`, given up by the waker being dropped.
    drop(unsafe { Arc::from_raw(data.cast::<Task>()) });
}

fn slot() -> Result<Slot, HookError> {
    let vault = VAULT.lock().unwrap().clone().ok_or("on_init has not run")?;
    Ok(Arc::clone(vault.extension::<Slot>()?))
}

pub fn reloadable() -> bool {
    true
}

pub fn export() -> Option<Export> {
    None
}

pub fn import() -> &'static [&'static str] {
    &[]
}

pub fn on_load(_ctx: &LoadContext) -> HookResult {
    Ok(())
}

pub fn on_init(vault: &Arc<Vault>) -> HookResult {
    *VAULT.lock().unwrap() = Some(Arc::clone(vault));
    Ok(())
}

pub fn on_free() {
    VAULT.lock().unwrap().take();
}

pub fn invoke_func(name: &str, mut args: Args) -> Result<Value, HookError> {
    let host_waker = args.take::<Waker>(0)?;
    let mut future = WaitOnSlot(slot()?);
    let pending = match name {
        "park_direct" => Pin::new(&mut future).poll(&mut Context::from_waker(&host_waker)).is_pending(),
        "park_unordered" => {
            let task = Arc::new(Task { ready: AtomicBool::new(false), parent: host_waker });
            let own = task_waker(Arc::clone(&task));
            Pin::new(&mut future).poll(&mut Context::from_waker(&own)).is_pending()
        }
        _ => return Err(format!("unknown function `{name}`").into()),
    };
    Ok(Value::new(pending))
}
