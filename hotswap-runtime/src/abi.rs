//! The contract between a host and a plugin library.
//!
//! The names, the layout version and the hooks are defined once, in the `hotswap-abi` crate,
//! and re-exported here. A dynamic plugin built by `hotswap-build` exports exactly the five
//! symbols of [`SYMBOLS`], each name ending in `_V` and the [`LAYOUT_VERSION`]:
//!
//! * [`FINGERPRINT_SYMBOL`]: a plain byte array holding the plugin's [`FINGERPRINT`]. It has no
//!   relocations, so the runtime reads it straight from the file and refuses a mismatched
//!   library *before* `dlopen` runs any of its code.
//! * [`NAME_SYMBOL`] and [`VERSION_SYMBOL`]: plain byte arrays holding the plugin name and
//!   version stamp, read from the file the same way (`cargo xtask status`, the loader's checks).
//! * [`IDENTITY_SYMBOL`]: a plain byte array holding the plugin's crate identity record
//!   ([`hotswap_abi::identity`]): the crates it links, compared at stage `inspect` with the
//!   host's record ([`HOST_IDENTITY_SYMBOL`], linked into the host by
//!   `hotswap_build::host_identity()`).
//! * [`DESCRIPTOR_SYMBOL`]: a [`PluginDescriptor`], read after `dlopen` (with `RTLD_NOW`).
//!
//! A plugin compiled to be linked into a host (`HOTSWAP_STATIC=1`) exports none of them: the
//! host reaches its descriptor by path.
//!
//! The descriptor's hooks use the Rust ABI and Rust types (`String`, `Box<dyn Any>`, ...).
//! That is sound only because the fingerprint guarantees both sides were built by the same
//! rustc for the same target against the same `hotswap-runtime`, so every type has the same
//! layout on both sides. Values that cross the boundary are allocated with the system
//! allocator on both sides (neither host nor plugin may install a different
//! `#[global_allocator]`).

use crate::LoadContext;
use crate::live::LiveRegistry;
use crate::value::{Args, Value};
use crate::vault::{Export, Vault};

pub use hotswap_abi::logs::{LogLevel, LogRecord, LogSink, LogSource};
pub use hotswap_abi::{
    DESCRIPTOR_SYMBOL, FINGERPRINT_SYMBOL, HOST_IDENTITY_SYMBOL, Hook, IDENTITY_SYMBOL, LAYOUT_VERSION, NAME_SYMBOL,
    SYMBOLS, VERSION_SYMBOL, env,
};

/// First bytes of every descriptor.
pub const MAGIC: [u8; 16] = *b"hotswap-plugin\0\0";

/// rustc version and commit, target triple, hotswap-runtime version and source hash,
/// hotswap-abi version and source hash, descriptor layout version, a hash of the `cfg` values
/// (`--cfg`, target features; from this crate's build script), then the panic strategy and
/// whether debug assertions are on, as the compiler really built this crate (`cfg!`, not the
/// build script's environment: a `panic = "abort"` set in a Cargo profile reaches the crate
/// but not `CARGO_CFG_PANIC`). A plugin built with `panic = "abort"` would kill the host at
/// its first panic; one built in another profile than the host sees other `TypeId`s for the
/// crates they share. Both are refused before any of their code runs.
pub const FINGERPRINT: &str =
    concat!(env!("HOTSWAP_ABI_FINGERPRINT"), "; panic ", panic_strategy!(), "; debug_assertions ", debug_assertions!());

#[cfg(panic = "unwind")]
macro_rules! panic_strategy {
    () => {
        "unwind"
    };
}
#[cfg(panic = "abort")]
macro_rules! panic_strategy {
    () => {
        "abort"
    };
}
#[cfg(not(any(panic = "unwind", panic = "abort")))]
macro_rules! panic_strategy {
    () => {
        "other"
    };
}
#[cfg(debug_assertions)]
macro_rules! debug_assertions {
    () => {
        "on"
    };
}
#[cfg(not(debug_assertions))]
macro_rules! debug_assertions {
    () => {
        "off"
    };
}
use {debug_assertions, panic_strategy};

/// Whether the build a fingerprint (a [`FINGERPRINT`], a host's or a plugin's) comes from had
/// debug assertions on: `Some(true)` for cargo's dev profile, `Some(false)` for release (the
/// profiles' defaults), `None` when the fingerprint does not say. A plugin is loaded only by a
/// host whose answer is the same; `cargo hotswap build` uses this to pick `--debug` or not.
pub fn debug_assertions_of(fingerprint: &str) -> Option<bool> {
    match fingerprint.split("; ").find_map(|field| field.strip_prefix("debug_assertions "))? {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// Length of [`FINGERPRINT`] in bytes.
pub const FINGERPRINT_LEN: usize = FINGERPRINT.len();

/// [`FINGERPRINT`] as a fixed-size array, the type of the exported fingerprint symbol.
pub const FINGERPRINT_BYTES: [u8; FINGERPRINT_LEN] = {
    let src = FINGERPRINT.as_bytes();
    let mut out = [0u8; FINGERPRINT_LEN];
    let mut i = 0;
    while i < FINGERPRINT_LEN {
        out[i] = src[i];
        i += 1;
    }
    out
};

/// A `&'static str` with a C layout, so the header can be read from a library whose Rust
/// layout is not yet trusted.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FfiStr {
    ptr: *const u8,
    len: usize,
}

// SAFETY: an `FfiStr` is only ever built from a `&'static str` (see `new`): a shared reference
// to immutable data, which any thread may read. (Whether that data is still mapped is another
// matter, left to `as_bytes`' callers.)
unsafe impl Sync for FfiStr {}
// SAFETY: as above; it is a shared reference to immutable data.
unsafe impl Send for FfiStr {}

impl FfiStr {
    /// Wraps a static string.
    pub const fn new(s: &'static str) -> Self {
        FfiStr { ptr: s.as_ptr(), len: s.len() }
    }

    /// The bytes, for comparing a header from an untrusted library.
    ///
    /// # Safety
    /// `self` must come from a descriptor in a library that is still loaded, and the slice
    /// must not be used after that library is closed: it borrows `self`, not the library.
    pub unsafe fn as_bytes(&self) -> &[u8] {
        // SAFETY: built by `new` from a `&'static str` in a library the caller keeps loaded
        // while the slice is used.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The string, lossily decoded.
    ///
    /// # Safety
    /// As for [`FfiStr::as_bytes`].
    pub unsafe fn to_string_lossy(&self) -> String {
        // SAFETY: forwarded to the caller.
        String::from_utf8_lossy(unsafe { self.as_bytes() }).into_owned()
    }
}

/// The part of the descriptor whose layout never changes between versions.
#[repr(C)]
#[derive(Debug)]
pub struct DescriptorHeader {
    /// Always [`MAGIC`].
    pub magic: [u8; 16],
    /// [`LAYOUT_VERSION`] of the runtime the plugin was built against.
    pub layout_version: u32,
    /// [`FINGERPRINT`] of the runtime the plugin was built against.
    pub fingerprint: FfiStr,
}

/// Why a hook did not return a value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HookFailure {
    /// The hook returned an error; the text is its `Display`.
    Error(String),
    /// The hook panicked; the text is the panic message. The panic was caught inside the plugin.
    Panic(String),
}

/// What every hook entry point returns.
pub type HookOutcome<T> = Result<T, HookFailure>;

/// The entry points of one plugin, each wrapping a user hook in `catch_unwind`.
#[repr(C)]
#[derive(Debug)]
pub struct PluginHooks {
    /// `reloadable()`.
    pub reloadable: fn() -> HookOutcome<bool>,
    /// `export()`.
    pub export: fn() -> HookOutcome<Option<Export>>,
    /// `import()`.
    pub import: fn() -> HookOutcome<Vec<String>>,
    /// `on_load(ctx)`.
    pub on_load: fn(&LoadContext) -> HookOutcome<()>,
    /// `on_init(vault)`.
    pub on_init: fn(&std::sync::Arc<Vault>) -> HookOutcome<()>,
    /// `on_free()`.
    pub on_free: fn() -> HookOutcome<()>,
    /// `invoke_func(name, args)`.
    pub invoke_func: fn(&str, Args) -> HookOutcome<Value>,
    /// The live functions and types found at build time.
    pub live_items: fn(Rethrow) -> HookOutcome<LiveRegistry>,
    /// Forwards the plugin's `tracing` events and `log` records to the host's sink
    /// ([`hotswap_abi::logs`]); called once, before the first hook (`reloadable`), for a
    /// dynamic plugin that is not on the shared route. Never unwinds.
    pub logs: fn(LogSink),
}

/// What a plugin exports under [`DESCRIPTOR_SYMBOL`].
#[repr(C)]
#[derive(Debug)]
pub struct PluginDescriptor {
    /// Checked before anything else is read.
    pub header: DescriptorHeader,
    /// Plugin name (the crate name unless the build script chose another).
    pub name: FfiStr,
    /// Version stamp written by `cargo xtask build` (or the crate version).
    pub version: FfiStr,
    /// Whether the library may be closed (`dlclose`) once nothing refers to it; false when
    /// the plugin declared it starts threads or hands out references the runtime cannot see
    /// (`hotswap_build::Config::unloadable(false)`).
    pub unloadable: bool,
    /// Hook entry points.
    pub hooks: PluginHooks,
}

impl PluginDescriptor {
    /// Used by generated code.
    pub const fn new(name: &'static str, version: &'static str, unloadable: bool, hooks: PluginHooks) -> Self {
        PluginDescriptor {
            header: DescriptorHeader {
                magic: MAGIC,
                layout_version: LAYOUT_VERSION,
                fingerprint: FfiStr::new(FINGERPRINT),
            },
            name: FfiStr::new(name),
            version: FfiStr::new(version),
            unloadable,
            hooks,
        }
    }
}

/// The host's way to raise a panic that a live function's code caught on the plugin's side,
/// for the bare pointer [`LiveFn::as_raw`](crate::LiveFn::as_raw) hands out (host code only):
/// the plugin's copy of std cannot unwind into the host's (the host would see a foreign
/// exception and abort), so that wrapper catches the panic and calls this host function, which
/// resumes it as the host's own panic. Calls through a handle do not use it: they take the
/// plugin's guarded entry and raise the panic in the caller's std
/// ([`Guarded`](crate::live::Guarded)).
pub type Rethrow = fn(String) -> !;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_is_read_back_from_a_fingerprint() {
        assert_eq!(debug_assertions_of(FINGERPRINT), Some(cfg!(debug_assertions)));
        assert_eq!(debug_assertions_of("rustc 1; layout 5; panic unwind; debug_assertions off"), Some(false));
        assert_eq!(debug_assertions_of("rustc 1; layout 5"), None);
    }

    #[test]
    fn the_fingerprint_names_the_contract_crate_and_the_layout() {
        let abi = format!("; hotswap-abi {} (source {:016x}); ", hotswap_abi::VERSION, hotswap_abi::SOURCE_HASH);
        assert!(FINGERPRINT.contains(&abi), "{FINGERPRINT}");
        assert!(FINGERPRINT.contains(&format!("; layout {LAYOUT_VERSION}; ")), "{FINGERPRINT}");
        assert!(
            FINGERPRINT.contains(&format!("; hotswap-runtime {} (source ", env!("CARGO_PKG_VERSION"))),
            "{FINGERPRINT}"
        );
        assert!(DESCRIPTOR_SYMBOL.ends_with(&format!("_V{LAYOUT_VERSION}")));
    }
}
