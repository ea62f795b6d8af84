//! The slink demo's host. Built normally, it loads its plugins from `--plugins`; built with
//! `cargo xtask build --static-linking`, the plugins are linked in and `static_plugins()`
//! returns them. Everything else is the same code: hook order, dependencies, vault,
//! extension, live functions and types, `invoke_func`, `invoke_each`, reload.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hotswap_runtime::{PluginManager, ReloadReport, args};

hotswap_runtime::static_plugins!();

#[derive(Parser)]
#[command(about = "hotswap slink demo host")]
struct Cli {
    /// Folder of plugin libraries (ignored when the plugins are linked in).
    #[arg(long, default_value = "bin")]
    plugins: PathBuf,
    /// Rounds of calls.
    #[arg(long, default_value_t = 3)]
    rounds: u64,
    /// Reload after this round (0: never).
    #[arg(long, default_value_t = 2)]
    reload_after: u64,
}

fn order(report: &ReloadReport) -> String {
    report.plugins.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let linked = static_plugins();
    println!(
        "mode: {}",
        if linked.is_empty() { "dynamic (plugins loaded from a folder)" } else { "static (plugins linked in)" }
    );
    let manager = PluginManager::builder(&cli.plugins)
        .static_plugins(linked)
        .extension_newer(|| AtomicU64::new(0))
        .free_delay(Duration::ZERO)
        .reuse_unchanged(false)
        .build()?;
    let report = manager.load_plugins().context("loading the plugins")?;
    println!("generation {}: load order {}", report.generation, order(&report));
    for round in 1..=cli.rounds {
        let shop = manager.find_plugin("slink_shop").context("slink_shop is loaded")?;
        let receipt: String = shop.invoke("checkout", args![round + 2])?;
        println!("round {round}: {receipt}");
        for (plugin, result) in manager.invoke_each("describe", || args![]) {
            println!("round {round}: {plugin} says {}", result?.downcast::<String>()?);
        }
        let vault = manager.current().context("a generation is loaded")?.vault().clone();
        let discount = vault.live_func::<fn(u64) -> u64>("live_discount")?;
        println!("round {round}: live_discount(1500) = {}", discount.call((1500,)));
        println!("round {round}: live type {}", vault.live_type("LiveReceipt")?.description);
        if round == cli.reload_after {
            // In a static build the reload is refused (no new code can be loaded), and the
            // running plugins keep serving.
            match manager.reload() {
                Ok(report) => println!("reloaded: generation {}: load order {}", report.generation, order(&report)),
                Err(error) => println!("reload refused: {error}"),
            }
        }
    }
    Ok(())
}
