fn main() -> Result<(), hotswap_build::Error> {
    // Generates static_plugins(): empty, or the linked plugins with --static-linking.
    hotswap_build::static_host()?;
    Ok(())
}
