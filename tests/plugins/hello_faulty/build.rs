fn main() -> Result<(), hotswap_build::Error> {
    // A faulty build of the hello demo's plugin `foo`: on reload it replaces foo's good build.
    hotswap_build::Config::new().plugin_name("foo").generate()?;
    Ok(())
}
