fn main() -> Result<(), hotswap_build::Error> {
    // Both importer fixtures are the same plugin, `dep_importer`.
    hotswap_build::Config::new().plugin_name("dep_importer").generate()?;
    Ok(())
}
