//! The prototype host. `host <plugin.so>` prints one `KEY value` line per measured question.
//! Built with `--features shared` and `-C prefer-dynamic` (route A) or without (route B).
//! A prototype: one file, `unsafe` dlopen/dlsym without the toolkit's checks.

use std::any::TypeId;
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_void};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[cfg(feature = "shared")]
use proto_shared as _;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

static DONE: AtomicU32 = AtomicU32::new(0);
extern "C" fn done(_task: u32) {
    DONE.fetch_add(1, Ordering::SeqCst);
}

/// Counts what reaches the host's subscriber from plugin code.
#[derive(Default)]
struct Seen {
    tracing_events: u32,
    log_records: u32,
    with_span_id: u32,
    with_field: u32,
    warn_level: u32,
    task_events: u32,
}

struct Counter(Arc<Mutex<Seen>>);

#[derive(Default)]
struct Fields {
    message: String,
    answer: bool,
}
impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.answer |= field.name() == "answer" && value == 42;
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.answer |= field.name() == "answer" && value == 42;
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Counter {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut seen = self.0.lock().unwrap();
        if fields.message.contains("plugin event") {
            seen.tracing_events += 1;
            seen.with_field += u32::from(fields.answer);
            seen.warn_level += u32::from(*event.metadata().level() == tracing::Level::WARN);
            if let Some(span) = ctx.event_span(event) {
                seen.with_span_id += u32::from(span.name() == "request");
            }
        } else if fields.message.contains("plugin log record") {
            seen.log_records += 1;
        } else if fields.message.contains("plugin task finished") {
            seen.task_events += 1;
        }
    }
}

fn hash_of(id: TypeId) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

fn mapped(path: &str) -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().filter(|l| l.ends_with(path)).count()
}

fn dlerror() -> String {
    // SAFETY: dlerror returns null or a valid C string.
    let e = unsafe { libc::dlerror() };
    if e.is_null() { "?".into() } else { unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned() }
}

fn sym<T: Copy>(lib: *mut c_void, name: &str) -> Option<T> {
    let c = CString::new(name).unwrap();
    // SAFETY: dlsym on a live handle; the caller names the right type.
    let p = unsafe { libc::dlsym(lib, c.as_ptr()) };
    if p.is_null() { None } else { Some(unsafe { std::mem::transmute_copy(&p) }) }
}

/// Route A's rule for "a library stays mapped while a task spawned from it runs": tokio's
/// task hooks (tokio_unstable) give each task's spawn location, a `&'static Location` in
/// the rodata of the code that called `spawn`; dladdr names that library, and the hook
/// takes a dlopen reference on it until the task terminates (released after a grace, since
/// tokio frees the task through its vtable, in that library, after the hook).
#[derive(Default)]
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
struct Pins {
    by_task: HashMap<tokio::task::Id, usize>,
    closing: Vec<(Instant, usize)>,
    pinned_total: u32,
}

#[cfg_attr(not(tokio_unstable), allow(dead_code))]
fn library_of(addr: *const u8) -> Option<String> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the link map.
    if unsafe { libc::dladdr(addr.cast(), &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    Some(unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned())
}

fn runtime(plugin: &str, pins: &Arc<Mutex<Pins>>) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_time();
    #[cfg(tokio_unstable)]
    {
        let (plugin_path, on_spawn) = (plugin.to_string(), pins.clone());
        builder.on_task_spawn(move |meta| {
            let Some(lib) = library_of(meta.spawned_at().file().as_ptr()) else { return };
            if lib != plugin_path {
                return;
            }
            let c = CString::new(lib).unwrap();
            // SAFETY: NOLOAD only bumps the reference count of a library already loaded.
            let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
            if !h.is_null() {
                let mut p = on_spawn.lock().unwrap();
                p.by_task.insert(meta.id(), h as usize);
                p.pinned_total += 1;
            }
        });
        let on_end = pins.clone();
        builder.on_task_terminate(move |meta| {
            let mut p = on_end.lock().unwrap();
            if let Some(h) = p.by_task.remove(&meta.id()) {
                p.closing.push((Instant::now(), h));
            }
        });
    }
    let _ = (plugin, pins);
    builder.build().unwrap()
}

/// Closes pins whose task terminated more than `grace` ago.
fn release_pins(pins: &Mutex<Pins>, grace: Duration) {
    let mut p = pins.lock().unwrap();
    let now = Instant::now();
    p.closing.retain(|&(at, h)| {
        if now.duration_since(at) < grace {
            return true;
        }
        // SAFETY: a reference taken by the spawn hook.
        unsafe { libc::dlclose(h as *mut c_void) };
        false
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let plugin = std::fs::canonicalize(&args[1]).unwrap().to_string_lossy().into_owned();
    let sleep_ms: u64 = args.get(2).map_or(300, |s| s.parse().unwrap());
    let route = if cfg!(feature = "shared") { "shared" } else { "copy" };
    println!("ROUTE {route}");

    let seen = Arc::new(Mutex::new(Seen::default()));
    tracing_subscriber::registry().with(Counter(seen.clone())).init();
    let pins = Arc::new(Mutex::new(Pins::default()));
    let rt = runtime(&plugin, &pins);

    let c = CString::new(plugin.clone()).unwrap();
    // SAFETY: loading the prototype's own plugin.
    let lib = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if lib.is_null() {
        println!("LOAD refused by dlopen: {}", dlerror());
        std::process::exit(3);
    }
    println!("LOAD ok");

    #[cfg(feature = "shared")]
    {
        let f: unsafe extern "C" fn(*mut u8, usize) -> usize = sym(lib, "proto_shared_id").expect("proto_shared_id");
        let mut buf = [0u8; 64];
        // SAFETY: a buffer of buf.len() bytes.
        let n = unsafe { f(buf.as_mut_ptr(), buf.len()) };
        let theirs = String::from_utf8_lossy(&buf[..n]).into_owned();
        let ours = proto_shared::build_id();
        println!("SHARED_ID host={ours} plugin={theirs} {}", if ours == theirs { "match" } else { "MISMATCH" });
        if ours != theirs {
            println!("LOAD refused by fingerprint: plugin built against another shared library");
            std::process::exit(4);
        }
    }

    let ids: unsafe extern "C" fn(*mut u64) = sym(lib, "proto_type_ids").unwrap();
    let mut theirs = [0u64; 4];
    // SAFETY: room for four u64.
    unsafe { ids(theirs.as_mut_ptr()) };
    let ours = [
        hash_of(TypeId::of::<tokio::runtime::Handle>()),
        hash_of(TypeId::of::<tokio::sync::mpsc::Sender<String>>()),
        hash_of(TypeId::of::<tracing::Span>()),
        hash_of(TypeId::of::<log::Level>()),
    ];
    let equal = ours.iter().zip(&theirs).filter(|(a, b)| a == b).count();
    println!("TYPEIDS equal {equal}/4 (Handle, mpsc::Sender<String>, tracing::Span, log::Level)");

    // Logging: ten handler calls, on a runtime worker.
    let log_fn: extern "C" fn(u32) -> bool = sym(lib, "proto_log").unwrap();
    rt.block_on(async {
        tokio::spawn(async move {
            for i in 0..10 {
                assert!(log_fn(i));
            }
        })
        .await
        .unwrap();
    });

    #[cfg(feature = "shared")]
    if args.get(3).is_some_and(|a| a == "joinhandles") {
        // The terminate hook is not the end of a task's use of its library: tokio frees the
        // task through its vtable after the hook, and a JoinHandle (or a waker) held past the
        // end defers that free to its own drop. Release the pins at once, close, drop the
        // handles: the free runs code from an unmapped library.
        let keep: fn(u32, u64, extern "C" fn(u32)) -> Vec<tokio::task::JoinHandle<()>> =
            sym(lib, "proto_spawn_keep").unwrap();
        let handles = rt.block_on(async move { tokio::spawn(async move { keep(4, sleep_ms, done) }).await.unwrap() });
        unsafe { libc::dlclose(lib) };
        std::thread::sleep(Duration::from_millis(sleep_ms + 300));
        release_pins(&pins, Duration::ZERO);
        println!(
            "JOINHANDLES tasks finished {}/4, library mapped {} after the pins were released",
            DONE.load(Ordering::SeqCst),
            mapped(&plugin)
        );
        drop(handles);
        println!("JOINHANDLES dropped without a crash");
        return;
    }
    #[cfg(feature = "shared")]
    {
        // A panic in a task spawned by plugin code: one std, one tokio, so the task harness
        // catches it and the JoinHandle reports it.
        let spawn_panic: fn(u64) -> tokio::task::JoinHandle<()> = sym(lib, "proto_spawn_panic").unwrap();
        let handle = {
            let _runtime = rt.enter();
            spawn_panic(10)
        };
        let joined = rt.block_on(handle);
        println!("PANIC_TASK contained {} (JoinError is_panic), host goes on", joined.is_err_and(|e| e.is_panic()));
    }
    // Raw spawn from plugin code called on a runtime worker (as a handler is).
    let n = 20;
    let spawn_raw: extern "C" fn(u32, u64, extern "C" fn(u32)) -> u32 = sym(lib, "proto_spawn_raw").unwrap();
    let spawned = rt.block_on(async move { tokio::spawn(async move { spawn_raw(n, sleep_ms, done) }).await.unwrap() });
    let mut finished_wrapped = None;
    let mut spawned_entered = None;
    if route == "shared" {
        // The "reload": the host drops its own reference while the tasks still sleep.
        unsafe { libc::dlclose(lib) };
        println!(
            "MAPPED_AFTER_CLOSE_WHILE_TASKS_RUN {} (pins taken by spawn hook: {})",
            mapped(&plugin),
            pins.lock().unwrap().pinned_total
        );
    }
    std::thread::sleep(Duration::from_millis(sleep_ms + 300));
    println!("RAW_SPAWN spawned {spawned}/{n} finished {}/{n}", DONE.swap(0, Ordering::SeqCst));

    if route == "copy" {
        // Route B: raw spawn with the runtime entered in the plugin's copy (what a handler under
        // hotswap_tokio::serve sees), then spawn with the per-poll wrapper.
        let entered: unsafe extern "C" fn(*const c_void, u32, u64, extern "C" fn(u32), bool) -> u32 =
            sym(lib, "proto_spawn_entered").unwrap();
        let handle = rt.handle().clone();
        // SAFETY: the host's live handle, same tokio source and features.
        let s = unsafe { entered((&raw const handle).cast(), n, sleep_ms, done, false) };
        std::thread::sleep(Duration::from_millis(sleep_ms + 300));
        spawned_entered = Some((s, DONE.swap(0, Ordering::SeqCst)));
        // SAFETY: as above.
        let s = unsafe { entered((&raw const handle).cast(), n, sleep_ms, done, true) };
        std::thread::sleep(Duration::from_millis(sleep_ms + 300));
        finished_wrapped = Some((s, DONE.swap(0, Ordering::SeqCst)));
        unsafe { libc::dlclose(lib) };
    }
    if let Some((s, f)) = spawned_entered {
        println!("ENTERED_RAW_SPAWN spawned {s}/{n} finished {f}/{n}");
    }
    if let Some((s, f)) = finished_wrapped {
        println!("WRAPPED_SPAWN spawned {s}/{n} finished {f}/{n}");
    }
    release_pins(&pins, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(50));
    println!("MAPPED_AFTER_TASKS_END {} (0 = unmapped)", mapped(&plugin));
    let seen = seen.lock().unwrap();
    println!(
        "LOGS tracing {}/10 (warn {}, in span request {}, field answer {}) log {}/10 task-events {}",
        seen.tracing_events, seen.warn_level, seen.with_span_id, seen.with_field, seen.log_records, seen.task_events
    );
    drop(rt);
}
