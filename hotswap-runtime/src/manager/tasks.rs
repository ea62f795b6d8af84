//! Tasks still running on plugin code, as the host's task hooks count them (the shared route,
//! guide section 10): the runtime itself knows nothing of tokio, so a host hands the manager a
//! census ([`PluginManagerBuilder::task_census`](super::PluginManagerBuilder::task_census),
//! for example `hotswap_tokio::PluginTasks::census`), and the status and reload answers
//! carry what it says.

use std::sync::Arc;

/// The live tasks spawned from one plugin library: those of a generation older than the
/// serving one run on replaced code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct LiveTasks {
    /// The plugin.
    pub plugin: String,
    /// The generation that loaded its library.
    pub generation: u64,
    /// Tasks spawned from its code and not yet ended.
    pub live: usize,
}

impl LiveTasks {
    /// `live` tasks of `plugin`'s library loaded in `generation`.
    pub fn new(plugin: impl Into<String>, generation: u64, live: usize) -> LiveTasks {
        LiveTasks { plugin: plugin.into(), generation, live }
    }
}

impl std::fmt::Display for LiveTasks {
    /// `plugin@generation=live`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}={}", self.plugin, self.generation, self.live)
    }
}

/// Counts the live tasks per plugin library, oldest generation first.
pub type TaskCensus = Arc<dyn Fn() -> Vec<LiveTasks> + Send + Sync>;
