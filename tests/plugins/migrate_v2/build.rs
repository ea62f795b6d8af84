fn main() -> Result<(), hotswap_build::Error> {
    // Both fixture versions are the same plugin, `accounts`.
    hotswap_build::Config::new().plugin_name("accounts").generate()?;
    Ok(())
}
