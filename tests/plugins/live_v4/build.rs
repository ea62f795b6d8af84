fn main() -> Result<(), hotswap_build::Error> {
    // Every version is the same plugin, `jobs`.
    hotswap_build::Config::new().plugin_name("jobs").generate()?;
    Ok(())
}
