//! Errors of the runtime.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::value::TypeMismatch;

/// The step of loading a generation at which a plugin was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stage {
    /// Listing the plugin folder and choosing files.
    Scan,
    /// Reading the file, checking its manifest and copying it to a fresh path.
    Copy,
    /// Reading the ELF file, its fingerprint and its crate identity (compared with the host's:
    /// the crates both link), before any of its code runs.
    Inspect,
    /// `dlopen` with `RTLD_NOW` and reading the descriptor.
    Open,
    /// The `reloadable` hook.
    Reloadable,
    /// The `export` hook.
    Export,
    /// The `import` hook.
    Import,
    /// Ordering plugins by their imports, and comparing the crate identity of each plugin with
    /// that of every plugin it imports (the crates both link).
    Dependencies,
    /// The `on_load` hook.
    OnLoad,
    /// Building the generation's vault.
    VaultSetup,
    /// The `on_init` hook.
    OnInit,
    /// The host's reload callbacks.
    Callback,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Stage::Scan => "scan",
            Stage::Copy => "copy",
            Stage::Inspect => "inspect",
            Stage::Open => "open",
            Stage::Reloadable => hotswap_abi::Hook::Reloadable.name(),
            Stage::Export => hotswap_abi::Hook::Export.name(),
            Stage::Import => hotswap_abi::Hook::Import.name(),
            Stage::Dependencies => "dependencies",
            Stage::OnLoad => hotswap_abi::Hook::OnLoad.name(),
            Stage::VaultSetup => "vault set-up",
            Stage::OnInit => hotswap_abi::Hook::OnInit.name(),
            Stage::Callback => "reload callback",
        };
        f.write_str(s)
    }
}

/// What kind of failure a [`LoadError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// A plugin, its file or the folder was refused at `stage` (the common case).
    Refused,
    /// Another reload was running ([`PluginManager::try_reload`](crate::PluginManager::try_reload));
    /// `stage` and `plugin` say where it was.
    Busy,
    /// The reload did not finish within the manager's deadline; `stage` and `plugin` say
    /// where it was stuck. Its thread was abandoned and its generation is discarded if it ever
    /// returns.
    TimedOut,
    /// A reload was asked for from inside a hook or reload callback of a reload in progress
    /// (it would wait for itself).
    Reentrant,
    /// The host was built with `--static-linking`: no new code can be loaded.
    StaticallyLinked,
    /// A generation is on probation: it must be confirmed or rolled back before another
    /// reload ([`PluginManager::reload_on_probation`](crate::PluginManager::reload_on_probation)).
    OnProbation,
}

/// A load or reload failed; nothing was published.
///
/// When the refusal comes from an error of the host's side (reading or copying the file,
/// `dlopen`, reading the ELF file), that error is its [`source`](std::error::Error::source);
/// `reason` already includes its text. Errors made by plugin code (a hook's error, a panic)
/// and by reload callbacks are kept as text only: an error object from a plugin's library
/// must not outlive that library.
#[derive(Debug, Clone)]
pub struct LoadError {
    /// The plugin, when known.
    pub plugin: Option<String>,
    /// The file (or folder) concerned.
    pub file: PathBuf,
    /// The step that failed.
    pub stage: Stage,
    /// What went wrong.
    pub reason: String,
    /// What kind of failure this is.
    pub kind: LoadErrorKind,
    /// The underlying error, when there is one (see above). Shared, so that the error stays
    /// `Clone`.
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(plugin) = &self.plugin {
            write!(f, "plugin `{}` ", escape_text(plugin))?;
        }
        let (verb, stage, file, reason) =
            (self.kind.verb(), self.stage, escape_path(&self.file), escape_text(&self.reason));
        write!(f, "{verb} at stage `{stage}` ({file}): {reason}")
    }
}

// Written out rather than derived: thiserror would hand out the `Arc` as the source, and a
// caller's `downcast_ref::<io::Error>()` must find the error inside it.
impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl LoadErrorKind {
    fn verb(self) -> &'static str {
        match self {
            LoadErrorKind::Refused | LoadErrorKind::StaticallyLinked | LoadErrorKind::OnProbation => "refused",
            LoadErrorKind::Busy => "busy",
            LoadErrorKind::TimedOut => "timed out",
            LoadErrorKind::Reentrant => "re-entrant reload refused",
        }
    }
}

impl LoadError {
    /// A refusal of `plugin` (when known) and `file` at `stage`.
    pub fn new(plugin: Option<String>, file: impl Into<PathBuf>, stage: Stage, reason: impl Into<String>) -> Self {
        LoadError {
            plugin,
            file: file.into(),
            stage,
            reason: reason.into(),
            kind: LoadErrorKind::Refused,
            source: None,
        }
    }

    /// The same error with `source` as its [`source`](std::error::Error::source); `reason`
    /// should already say what it says.
    pub(crate) fn caused_by(mut self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// The same error with another kind.
    pub fn with_kind(mut self, kind: LoadErrorKind) -> Self {
        self.kind = kind;
        self
    }
}

/// A path as text safe for one log line: control characters (a newline in a file name could
/// forge a log line) are escaped as Rust escapes them, and bytes that are not UTF-8 are
/// replaced.
pub(crate) fn escape_path(path: &std::path::Path) -> String {
    escape_text(&path.to_string_lossy())
}

/// Text safe for one log line: control characters escaped (see [`escape_path`]).
pub(crate) fn escape_text(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars()
            .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
            .collect()
    } else {
        text.to_string()
    }
}

/// A call into a plugin failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// No plugin of that name in the current generation.
    #[error("no plugin named `{0}` is loaded")]
    NoSuchPlugin(String),
    /// Nothing is loaded yet.
    #[error("no generation is loaded yet")]
    NotLoaded,
    /// The plugin's `invoke_func` returned an error.
    #[error("plugin `{plugin}`: {func}: {message}")]
    Failed {
        /// The plugin.
        plugin: String,
        /// The function name.
        func: String,
        /// The error's text.
        message: String,
    },
    /// The plugin's `invoke_func` panicked; the panic was contained.
    #[error("plugin `{plugin}`: {func} panicked: {message}")]
    Panicked {
        /// The plugin.
        plugin: String,
        /// The function name.
        func: String,
        /// The panic message.
        message: String,
    },
    /// The result was not of the type the caller asked for.
    #[error("plugin `{plugin}`: {func} returned the wrong type: {mismatch}")]
    ResultType {
        /// The plugin.
        plugin: String,
        /// The function name.
        func: String,
        /// The types.
        mismatch: TypeMismatch,
    },
}
