fn main() -> Result<(), hotswap_build::Error> {
    hotswap_build::Config::new().generate()?;
    Ok(())
}
