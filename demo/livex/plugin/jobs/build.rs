fn main() -> Result<(), hotswap_build::Error> {
    // The crate is `livex_jobs`; the plugin, and its files in `bin/`, are `jobs`.
    hotswap_build::Config::new().plugin_name("jobs").generate()?;
    Ok(())
}
