//! One plugin library, opened from a private copy.

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use crate::abi::{self, HookFailure, PluginDescriptor, PluginHooks};
use crate::error::{LoadError, Stage};
use crate::fingerprint::mismatch_reason;
use crate::inspect::inspect;
use crate::manifest::{Manifest, ManifestError};
use crate::retention::Graveyard;

/// A plugin of a generation. Shared (`Arc`) when a non-reloadable plugin is kept across
/// reloads. Dropping it runs `on_free` if `on_load` had succeeded.
pub(crate) struct LoadedPlugin {
    pub name: String,
    pub version: String,
    pub file: PathBuf,
    pub loaded_from: PathBuf,
    pub sha256: String,
    pub loaded_at: SystemTime,
    pub generation: u64,
    pub reloadable: bool,
    pub imports: Vec<String>,
    pub export: Option<std::sync::Arc<crate::vault::Export>>,
    /// Points into the library, which is *not* `'static`: it may be closed once `mapping` is
    /// released (see `retention`). Sound because the reference never leaves this struct (the
    /// crate only calls through it) and `mapping`, declared after it, keeps the library
    /// mapped for as long as this struct exists, `Drop` (which calls `on_free`) included.
    pub hooks: &'static PluginHooks,
    pub on_load_done: AtomicBool,
    /// Calls into it that panicked (counted for probation).
    pub panics: std::sync::atomic::AtomicU64,
    pub mapping: Arc<Mapping>,
    /// The identity of `file` when it was read, to recognise it later without reading it.
    pub identity: Option<crate::library_file::FileIdentity>,
    /// The crates the plugin links (its crate identity record), compared with the host's at
    /// `inspect` and with the plugins it imports at `dependencies`; `None` for a plugin linked
    /// into the host, which shares the host's crates.
    pub crates: Option<hotswap_abi::identity::Record>,
    /// Whether the plugin's `tracing` and `log` are its own copies, whose events reach the
    /// host only through the sink its `logs` entry installs (`hotswap_abi::logs`): true for a
    /// dynamic plugin off the shared route; a plugin linked into the host, or on the shared
    /// route, already logs through the host's.
    pub forward_logs: bool,
}

/// A mapped library. Shared by the plugin, its generation's vault, every `Value` it returned
/// and every handle on its live functions, so that it is released only when none of them is
/// left; then the [`Graveyard`] decides when to close it.
pub(crate) struct Mapping {
    /// `None` for a plugin linked into the host.
    library: Option<ManuallyDrop<libloading::Library>>,
    plugin: String,
    path: PathBuf,
    unloadable: bool,
    graveyard: Arc<Graveyard>,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Some(mut library) = self.library.take() {
            // SAFETY: `library` was just taken out of the option: it is dropped exactly once.
            let library = unsafe { ManuallyDrop::take(&mut library) };
            self.graveyard.bury(
                std::mem::take(&mut self.plugin),
                std::mem::take(&mut self.path),
                library,
                self.unloadable,
            );
        }
    }
}

/// Deletes a file when dropped, unless kept.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A plugin file read once (see [`Staged::copy`]): its bytes, for the checks before
/// `dlopen`; their sha256; and the private copy written while reading, under a temporary
/// name, deleted when this is dropped unless [`LoadedPlugin::open`] accepts it.
pub(crate) struct Staged {
    pub bytes: Vec<u8>,
    pub sha256: String,
    partial: RemoveOnDrop,
}

impl Staged {
    /// Reads `file` (at most `max_bytes`) in one pass, hashing it and writing its private
    /// copy to `partial`, a path nothing else uses.
    pub fn copy(name: &str, file: &Path, max_bytes: u64, partial: PathBuf) -> Result<Self, LoadError> {
        let (bytes, sha256) = crate::library_file::copy_library(name, file, max_bytes, &partial)?;
        Ok(Staged { bytes, sha256, partial: RemoveOnDrop(Some(partial)) })
    }

    /// Where the copy is written.
    pub fn path(&self) -> &Path {
        self.partial.0.as_deref().expect("a staged copy has its file")
    }
}

impl LoadedPlugin {
    /// Checks and opens `file` (whose file name says it holds plugin `expected_name`) from
    /// its private copy, `staged`, which is renamed to `copy_to` once the checks passed. Runs no plugin code besides the library's static
    /// initialisers, and those only after the fingerprint matched.
    pub fn open(
        file: &Path,
        expected_name: &str,
        staged: Staged,
        copy_to: &Path,
        generation: u64,
        graveyard: &Arc<Graveyard>,
    ) -> Result<Self, LoadError> {
        let Staged { bytes, sha256, partial } = staged;
        let fail = |stage: Stage, reason: String| LoadError::new(Some(expected_name.to_string()), file, stage, reason);
        let manifest = Manifest::read_beside(file).map_err(|e| fail(Stage::Copy, e.to_string()).caused_by(e))?;
        let facts = inspect(&bytes).map_err(|e| fail(Stage::Inspect, e.to_string()).caused_by(e))?;
        if facts.name != expected_name {
            return Err(fail(
                Stage::Inspect,
                format!(
                    "the library is plugin `{}`, but its file name says `{expected_name}`; name plugin files `<plugin>@<version>.so`",
                    facts.name
                ),
            ));
        }
        match &manifest {
            Some(manifest) => manifest
                .check(file, expected_name, &facts.fingerprint, facts.identity.as_deref(), &sha256)
                .map_err(|e| fail(Stage::Copy, e.to_string()).caused_by(ManifestError::Mismatch(Box::new(e))))?,
            None => tracing::warn!(
                plugin = expected_name,
                file = %crate::error::escape_path(file),
                "no manifest beside the library: its sha256 is not checked against the build's"
            ),
        }
        if facts.fingerprint != abi::FINGERPRINT {
            return Err(fail(Stage::Inspect, mismatch_reason(&facts.fingerprint, abi::FINGERPRINT)));
        }
        // The crates both sides link: same versions, sources, features and (path crates) files,
        // so every type they share has one layout (a nested field's layout is not in `TypeId`).
        let crates = crate::identity::check(facts.identity.as_deref())
            .map_err(|e| fail(Stage::Inspect, e.to_string()).caused_by(e))?;
        // The shared route: the shared library the plugin was linked against must be the very
        // file this process runs (another build would resolve symbols of another layout).
        if let Some(wanted) = manifest.as_ref().and_then(|m| m.shared_library.as_ref()) {
            crate::shared_library::check(wanted).map_err(|e| fail(Stage::Inspect, e.to_string()).caused_by(e))?;
        }
        // A fresh path for every load: dlopen dedups by path and inode, so reopening the same
        // path would hand back the library already mapped. Written under a temporary name
        // while it was read and renamed now, so the loader never sees half a file.
        let partial_path = partial.0.as_deref().expect("a staged copy has its file");
        if let Err(e) = std::fs::rename(partial_path, copy_to) {
            return Err(fail(Stage::Copy, format!("cannot copy to {}: {e}", copy_to.display())).caused_by(e));
        }
        partial.keep();
        link_debug_info(file, &bytes, copy_to);
        drop(bytes);
        // Until the library is handed to a `Mapping` (whose release deletes the copy), any
        // refusal deletes the copy: a refused reload leaves nothing in the work folder.
        let copy_guard = RemoveOnDrop(Some(copy_to.to_path_buf()));

        // SAFETY: loading a library runs its static initialisers. The file passed the ELF and
        // fingerprint checks above, so it was built by hotswap-build with this exact compiler
        // and runtime; its initialisers are those of Rust's std. RTLD_NOW makes a missing symbol
        // fail here, before any hook runs, instead of at the first call.
        let library = unsafe { libloading::os::unix::Library::open(Some(copy_to), libc::RTLD_NOW | libc::RTLD_LOCAL) }
            .map_err(|e| fail(Stage::Open, format!("dlopen failed: {e}")).caused_by(e))?;
        let library: libloading::Library = library.into();

        // SAFETY: the symbol is declared by generated code as a `PluginDescriptor` static; the
        // fingerprint guarantees its layout matches ours. We read the header (C layout) first.
        // The `'static` is not true of the library, which the retention policy closes once the
        // `Mapping` made below is released; it holds for every use because the descriptor (and
        // `hooks`, borrowed from it) is only read here, while `library` is open, and through
        // `LoadedPlugin::hooks`, which lives next to the `Arc<Mapping>` that keeps it open.
        let descriptor: &'static PluginDescriptor = unsafe {
            let symbol = library
                .get::<*const PluginDescriptor>(format!("{}\0", abi::DESCRIPTOR_SYMBOL).as_bytes())
                .map_err(|e| fail(Stage::Open, format!("descriptor symbol: {e}")).caused_by(e))?;
            let ptr: *const PluginDescriptor = *symbol;
            &*ptr
        };
        if descriptor.header.magic != abi::MAGIC || descriptor.header.layout_version != abi::LAYOUT_VERSION {
            return Err(fail(Stage::Open, "descriptor has a wrong magic number or layout version".into()));
        }
        // SAFETY: `library` is open until the end of this function at least (an error drops
        // it, success moves it into the `Mapping`); the strings are its statics, copied into
        // owned `String`s here, so nothing keeps pointing at them.
        let (header_fp, name, version) = unsafe {
            (
                descriptor.header.fingerprint.to_string_lossy(),
                descriptor.name.to_string_lossy(),
                descriptor.version.to_string_lossy(),
            )
        };
        if header_fp != abi::FINGERPRINT {
            return Err(fail(Stage::Open, format!("descriptor {}", mismatch_reason(&header_fp, abi::FINGERPRINT))));
        }
        if name != expected_name {
            return Err(fail(
                Stage::Open,
                format!(
                    "the library is plugin `{name}`, but its file name says `{expected_name}`; name plugin files `<plugin>@<version>.so`"
                ),
            ));
        }
        copy_guard.keep();
        Ok(LoadedPlugin {
            identity: None,
            crates: Some(crates),
            forward_logs: manifest.as_ref().is_none_or(|m| m.shared_library.is_none()),
            name,
            version,
            file: file.to_path_buf(),
            loaded_from: copy_to.to_path_buf(),
            sha256,
            loaded_at: SystemTime::now(),
            generation,
            reloadable: true,
            imports: Vec::new(),
            export: None,
            hooks: &descriptor.hooks,
            on_load_done: AtomicBool::new(false),
            panics: std::sync::atomic::AtomicU64::new(0),
            mapping: Arc::new(Mapping {
                library: Some(ManuallyDrop::new(library)),
                plugin: expected_name.to_string(),
                path: copy_to.to_path_buf(),
                unloadable: descriptor.unloadable,
                graveyard: Arc::clone(graveyard),
            }),
        })
    }

    /// A plugin linked into the host (`cargo xtask build --static-linking`).
    pub fn linked(
        descriptor: &'static PluginDescriptor,
        generation: u64,
        graveyard: &Arc<Graveyard>,
    ) -> Result<Self, LoadError> {
        // SAFETY: the descriptor is a static of this very binary, never unloaded.
        let (name, version, fingerprint) = unsafe {
            (
                descriptor.name.to_string_lossy(),
                descriptor.version.to_string_lossy(),
                descriptor.header.fingerprint.to_string_lossy(),
            )
        };
        let file = PathBuf::from(format!("<{name} linked into the host>"));
        if descriptor.header.magic != abi::MAGIC || fingerprint != abi::FINGERPRINT {
            return Err(LoadError::new(
                Some(name),
                file,
                Stage::Open,
                format!("linked plugin built against another runtime: [{fingerprint}]"),
            ));
        }
        Ok(LoadedPlugin {
            identity: None,
            crates: None,
            forward_logs: false,
            name,
            version,
            file,
            loaded_from: PathBuf::new(),
            sha256: String::new(),
            loaded_at: SystemTime::now(),
            generation,
            reloadable: true,
            imports: Vec::new(),
            export: None,
            hooks: &descriptor.hooks,
            on_load_done: AtomicBool::new(false),
            panics: std::sync::atomic::AtomicU64::new(0),
            mapping: Arc::new(Mapping {
                library: None,
                plugin: String::new(),
                path: PathBuf::new(),
                unloadable: false,
                graveyard: Arc::clone(graveyard),
            }),
        })
    }

    /// Builds a stage error for this plugin from a hook failure.
    pub fn hook_error(&self, stage: Stage, failure: HookFailure) -> LoadError {
        let reason = match failure {
            HookFailure::Error(e) => format!("{stage} returned an error: {e}"),
            HookFailure::Panic(p) => format!("{stage} panicked: {p}"),
        };
        LoadError::new(Some(self.name.clone()), &self.file, stage, reason)
    }
}

/// If the library names a separate debug-info file (a `.gnu_debuglink`, as `cargo xtask
/// build` writes when it splits the debug info out) and that file is beside `file`, links it
/// (a symbolic link) beside the private copy under the name the library gives, where gdb and
/// std's backtraces look for it. For debuggers only: nothing is read from it, and a failure
/// changes nothing else.
fn link_debug_info(file: &Path, bytes: &[u8], copy_to: &Path) {
    use object::Object;
    let Ok(Some((name, _crc))) = object::File::parse(bytes).and_then(|f| f.gnu_debuglink()) else { return };
    // A plain file name only: never a path out of the plugin folder.
    let Ok(name) = std::str::from_utf8(name) else { return };
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return;
    }
    let Ok(source) = std::path::absolute(file.with_file_name(name)) else { return };
    let link = copy_to.with_file_name(name);
    if source.is_file() && link.symlink_metadata().is_err() {
        let _ = std::os::unix::fs::symlink(&source, &link);
    }
}

impl Drop for LoadedPlugin {
    fn drop(&mut self) {
        if self.on_load_done.load(Ordering::Acquire) {
            match (self.hooks.on_free)() {
                Ok(()) => {
                    tracing::debug!(plugin = %self.name, version = %self.version, "on_free done")
                }
                Err(e) => {
                    tracing::warn!(plugin = %self.name, version = %self.version, "on_free failed: {e:?}")
                }
            }
        }
        // The mapping is released with the last reference to it (see `Mapping`).
    }
}
