fn main() -> Result<(), hotswap_build::Error> {
    // A build of plugin `greeter` that can be made to hang: on reload it replaces `greeter_v1`.
    hotswap_build::Config::new().plugin_name("greeter").generate()?;
    Ok(())
}
