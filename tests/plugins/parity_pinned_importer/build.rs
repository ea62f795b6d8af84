fn main() -> Result<(), hotswap_build::Error> {
    // The plugin is called `pinned_importer`.
    hotswap_build::Config::new().plugin_name("pinned_importer").generate()?;
    Ok(())
}
