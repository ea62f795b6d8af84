fn main() -> Result<(), hotswap_build::Error> {
    // Both fixture versions are the same plugin, `greeter`.
    hotswap_build::Config::new().plugin_name("greeter").generate()?;
    Ok(())
}
