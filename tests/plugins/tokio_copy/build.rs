fn main() -> Result<(), hotswap_build::Error> {
    hotswap_build::Config::new().plugin_name("copy").generate()?;
    Ok(())
}
