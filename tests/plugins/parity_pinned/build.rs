fn main() -> Result<(), hotswap_build::Error> {
    // The plugin is called `pinned`.
    hotswap_build::Config::new().plugin_name("pinned").generate()?;
    Ok(())
}
