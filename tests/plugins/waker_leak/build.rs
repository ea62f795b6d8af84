fn main() -> Result<(), hotswap_build::Error> {
    // The plugin is called `waker`; with feature `pinned` its library is never closed.
    let pinned = std::env::var_os("CARGO_FEATURE_PINNED").is_some();
    hotswap_build::Config::new().plugin_name("waker").unloadable(!pinned).generate()?;
    Ok(())
}
