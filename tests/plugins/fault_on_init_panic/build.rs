fn main() -> Result<(), hotswap_build::Error> {
    // A faulty build of plugin `greeter`: on reload it replaces `greeter_v1`.
    hotswap_build::Config::new().plugin_name("greeter").generate()?;
    Ok(())
}
