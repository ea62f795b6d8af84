fn main() -> Result<(), hotswap_build::Error> {
    // Another build of plugin `dep_zeta`.
    hotswap_build::Config::new().plugin_name("dep_zeta").generate()?;
    Ok(())
}
