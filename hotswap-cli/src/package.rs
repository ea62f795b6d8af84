//! Which crate a folder holds: its package and workspace from `cargo metadata`, and whether it
//! is a hotswap plugin crate.

use std::path::Path;

use anyhow::{Context, Result, bail};
use cargo_metadata::{Metadata, MetadataCommand, Package};

/// The package whose Cargo.toml is in `dir` (a `what`: plugin or host), and its workspace
/// (members only, `cargo metadata --no-deps`).
pub fn package_at(dir: &Path, what: &str) -> Result<(Package, Metadata)> {
    if !dir.is_dir() {
        bail!("{what} folder {} does not exist", dir.display());
    }
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!("{} is not a crate: it has no Cargo.toml", dir.display());
    }
    let metadata = MetadataCommand::new()
        .manifest_path(&manifest)
        .no_deps()
        .exec()
        .with_context(|| format!("cargo metadata for {}", manifest.display()))?;
    let wanted = manifest.canonicalize()?;
    let package = metadata
        .packages
        .iter()
        .find(|p| p.manifest_path.as_std_path().canonicalize().is_ok_and(|m| m == wanted))
        .cloned()
        .with_context(|| format!("{} is a workspace manifest, not a {what} crate", manifest.display()))?;
    Ok((package, metadata))
}

/// The package at `dir`, checked to be a plugin crate, and its workspace.
pub fn plugin_package(dir: &Path) -> Result<(Package, Metadata)> {
    let (package, metadata) = package_at(dir, "plugin")?;
    let not_plugin = |why: &str| anyhow::anyhow!("{} is not a hotswap plugin crate: {why}", dir.display());
    if !package.targets.iter().any(|t| t.crate_types.iter().any(|c| c.to_string() == "cdylib")) {
        return Err(not_plugin("its [lib] has no crate-type \"cdylib\""));
    }
    if !package.dependencies.iter().any(|d| d.name == "hotswap-runtime") {
        return Err(not_plugin("it does not depend on hotswap-runtime"));
    }
    if !package.dependencies.iter().any(|d| d.name == "hotswap-build") {
        return Err(not_plugin("it has no build-dependency on hotswap-build"));
    }
    Ok((package, metadata))
}

/// The folder holding `package`'s Cargo.toml.
pub fn crate_dir(package: &Package) -> &Path {
    package.manifest_path.parent().expect("a manifest has a folder").as_std_path()
}
