fn main() -> Result<(), hotswap_build::Error> {
    hotswap_build::generate()?;
    Ok(())
}
