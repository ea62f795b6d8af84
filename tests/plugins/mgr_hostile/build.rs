fn main() -> Result<(), hotswap_build::Error> {
    // A build of plugin `greeter`, so it replaces the serving greeter in a fault test.
    hotswap_build::Config::new().plugin_name("greeter").generate()?;
    Ok(())
}
