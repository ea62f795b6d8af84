//! What a load or reload reports: per plugin, per ignored file, per stage.

use std::path::PathBuf;

use crate::error::Stage;

/// How a plugin of a new generation came to be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PluginOrigin {
    /// Loaded from its file.
    Loaded,
    /// The serving instance, carried over: its file is byte-identical (sha256) and nothing it
    /// imports changed.
    Unchanged,
    /// The serving instance, carried over because its `reloadable` hook said no.
    NotReloadable,
    /// Linked into the host (static linking).
    Linked,
}

impl PluginOrigin {
    /// Whether the plugin's hooks run for this generation.
    pub fn is_fresh(self) -> bool {
        matches!(self, PluginOrigin::Loaded | PluginOrigin::Linked)
    }

    /// The word the reports use: `loaded`, `unchanged`, `not reloadable`, `static (linked
    /// into the host)`.
    pub fn note(self) -> &'static str {
        match self {
            PluginOrigin::Loaded => "loaded",
            PluginOrigin::Unchanged => "unchanged",
            PluginOrigin::NotReloadable => "not reloadable",
            PluginOrigin::Linked => "static (linked into the host)",
        }
    }
}

impl std::fmt::Display for PluginOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.note())
    }
}

/// What one plugin of a load or reload was.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PluginReport {
    /// Plugin name.
    pub name: String,
    /// Version stamp.
    pub version: String,
    /// File it was loaded from.
    pub file: PathBuf,
    /// SHA-256 of that file.
    pub sha256: String,
    /// How it came to be in the generation.
    pub origin: PluginOrigin,
    /// `origin` in words: `loaded`, `unchanged` (the serving instance was kept: same sha256,
    /// no import changed) or `not reloadable` (the serving instance was kept: its
    /// `reloadable` hook said no).
    pub note: String,
    /// Time each of this plugin's stages took, in milliseconds (empty for a kept plugin).
    pub stage_ms: Vec<(Stage, f64)>,
    /// How many of this plugin's replaced libraries `dlclose` left mapped so far (see
    /// [`retention`](crate::retention)); 0 for a plugin that unloads cleanly.
    #[serde(default)]
    pub still_mapped: u64,
}

/// Why a file in the plugin folder was passed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IgnoredReason {
    /// The plugin is not in the manager's whitelist.
    NotWhitelisted,
    /// The entry is a symbolic link: plugin libraries must be regular files.
    Symlink,
    /// The entry is not a regular file (a folder, FIFO, socket or device).
    NotRegularFile,
    /// The file name is not valid UTF-8, so no plugin name can be read from it.
    NonUtf8Name,
    /// A build manifest (`<plugin>@<version>.json`) with no library beside it: a build that
    /// died between writing the two, or a library removed by hand.
    OrphanManifest,
}

impl IgnoredReason {
    /// The reason in words.
    pub fn note(self) -> &'static str {
        match self {
            IgnoredReason::NotWhitelisted => "not in the whitelist",
            IgnoredReason::Symlink => {
                "a symbolic link: plugin libraries must be regular files (copy or rename the build into the folder)"
            }
            IgnoredReason::NotRegularFile => "not a regular file",
            IgnoredReason::NonUtf8Name => "the file name is not UTF-8",
            IgnoredReason::OrphanManifest => "a manifest with no library beside it",
        }
    }
}

/// A library file a reload passed over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IgnoredFile {
    /// The plugin name its file name gives (lossy when the name is not UTF-8).
    pub name: String,
    /// The file.
    pub file: PathBuf,
    /// Why it was not loaded.
    pub reason: IgnoredReason,
    /// `reason` in words.
    pub note: String,
}

impl IgnoredFile {
    pub(crate) fn new(name: String, file: PathBuf, reason: IgnoredReason) -> Self {
        IgnoredFile { name, file, reason, note: reason.note().to_string() }
    }
}

/// What a successful load or reload did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReloadReport {
    /// Number of the generation now serving.
    pub generation: u64,
    /// Its plugins, in load order (dependencies first).
    pub plugins: Vec<PluginReport>,
    /// Library files in the folder that were not loaded, and why.
    pub ignored: Vec<IgnoredFile>,
    /// Time each stage took, in milliseconds, in the order they ran.
    pub stage_ms: Vec<(Stage, f64)>,
    /// Total time, in milliseconds.
    pub total_ms: f64,
    /// The process's resident memory just after this reload, and its change since the last
    /// reload and the first load (None where it cannot be read).
    #[serde(default)]
    pub memory: Option<super::MemoryReport>,
    /// Tasks still running on plugin code just after this reload, per plugin library (those of
    /// an older generation than `generation` run on replaced code), as the host's task census
    /// counts them ([`PluginManagerBuilder::task_census`](super::PluginManagerBuilder::task_census));
    /// `None` without a census. The control socket's reload answer carries this list.
    #[serde(default)]
    pub tasks: Option<Vec<super::LiveTasks>>,
}
