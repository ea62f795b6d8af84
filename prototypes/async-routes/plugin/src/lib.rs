//! The prototype plugin, plain C ABI (no hotswap) so that both routes load it the same way.
//! Every entry point catches panics: a panic must not unwind into the host.

use std::any::TypeId;
use std::ffi::c_void;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

// Route A: link the shared dylib (Bevy's `dynamic_linking` trick); plugin code still writes
// `tokio::spawn`, rustc takes tokio from the dylib.
#[cfg(feature = "shared")]
use proto_shared as _;

/// The line a "one-line edit" changes (measure.sh flips it).
const EDIT: &str = "edit-0";

/// Callback the host passes: called once by each spawned task that finishes its sleep.
type Done = extern "C" fn(u32);

/// The shared library's identity this plugin was compiled against (inlined const).
///
/// # Safety
/// `out` points to `cap` writable bytes.
#[cfg(feature = "shared")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn proto_shared_id(out: *mut u8, cap: usize) -> usize {
    let id = proto_shared::BUILD_ID.as_bytes();
    let n = id.len().min(cap);
    // SAFETY: the host passes a buffer of `cap` bytes.
    unsafe { std::ptr::copy_nonoverlapping(id.as_ptr(), out, n) };
    n
}

fn hash_of(id: TypeId) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

/// Hashes of the TypeIds of four shared types, in the order the host asks for them.
///
/// # Safety
/// `out` points to room for four `u64`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn proto_type_ids(out: *mut u64) {
    let ids = [
        TypeId::of::<tokio::runtime::Handle>(),
        TypeId::of::<tokio::sync::mpsc::Sender<String>>(),
        TypeId::of::<tracing::Span>(),
        TypeId::of::<log::Level>(),
    ];
    for (i, id) in ids.into_iter().enumerate() {
        // SAFETY: the host passes room for four u64.
        unsafe { *out.add(i) = hash_of(id) };
    }
}

/// One handler's worth of logging: a span with a field, a tracing event with fields, a log record.
#[unsafe(no_mangle)]
pub extern "C" fn proto_log(request: u32) -> bool {
    catch_unwind(|| {
        let span = tracing::info_span!("request", id = request);
        let _entered = span.enter();
        tracing::warn!(answer = 42, edit = EDIT, "plugin event {request}");
        log::warn!("plugin log record {request}");
    })
    .is_ok()
}

async fn task_body(sleep_ms: u64, done: Done, n: u32) {
    tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    tracing::info!(task = n, "plugin task finished");
    done(n);
}

/// Spawns `n` tasks with raw `tokio::spawn` (even n) or through a library that spawns
/// internally (odd n), from wherever the host calls it. Returns how many were spawned
/// (a spawn outside a runtime context panics; the panic is caught here).
#[unsafe(no_mangle)]
pub extern "C" fn proto_spawn_raw(n: u32, sleep_ms: u64, done: Done) -> u32 {
    let mut spawned = 0;
    for i in 0..n {
        let ok = catch_unwind(|| {
            if i % 2 == 0 {
                drop(tokio::spawn(task_body(sleep_ms, done, i)));
            } else {
                spawner::spawn_later(sleep_ms, move || done(i));
            }
        });
        if ok.is_ok() {
            spawned += 1;
        }
    }
    spawned
}

/// Route B (a copy of tokio in this library): polls `future` with the host's runtime entered
/// in this library's copy of tokio, as hotswap-tokio's `Entered` does.
struct Entered<F> {
    handle: tokio::runtime::Handle,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for Entered<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let _runtime = this.handle.enter();
        this.future.as_mut().poll(cx)
    }
}

/// Route B: enters the host's runtime `handle` (a `*const tokio::runtime::Handle` of the
/// host's copy, read by this library's copy: same source and features), then spawns `n`
/// tasks, raw (`wrap` false) or each wrapped to enter the handle around every poll.
///
/// # Safety
/// `handle` points to a live `tokio::runtime::Handle` of the same tokio source and features.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn proto_spawn_entered(
    handle: *const c_void,
    n: u32,
    sleep_ms: u64,
    done: Done,
    wrap: bool,
) -> u32 {
    // SAFETY: the host passes a pointer to its live runtime handle, of the same tokio.
    let handle = unsafe { &*handle.cast::<tokio::runtime::Handle>() }.clone();
    let _runtime = handle.enter();
    let mut spawned = 0;
    for i in 0..n {
        let ok = catch_unwind(AssertUnwindSafe(|| {
            if wrap {
                drop(tokio::spawn(Entered { handle: handle.clone(), future: Box::pin(task_body(sleep_ms, done, i)) }));
            } else {
                drop(tokio::spawn(task_body(sleep_ms, done, i)));
            }
        }));
        if ok.is_ok() {
            spawned += 1;
        }
    }
    spawned
}

/// Route A only: spawns `n` tasks and hands their `JoinHandle`s to the host (same tokio, same
/// std: the types agree). A JoinHandle dropped after its task ended frees the task through its
/// vtable, which is code in this library.
#[cfg(feature = "shared")]
#[unsafe(no_mangle)]
pub fn proto_spawn_keep(n: u32, sleep_ms: u64, done: Done) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n).map(|i| tokio::spawn(task_body(sleep_ms, done, i))).collect()
}

/// Route A only: spawns a task that panics after a sleep; the host awaits its `JoinHandle`.
#[cfg(feature = "shared")]
#[unsafe(no_mangle)]
pub fn proto_spawn_panic(sleep_ms: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
        panic!("plugin task panics");
    })
}
