// Records the crates this host links, which the runtime compares with each plugin's at load.
fn main() -> Result<(), hotswap_build::Error> {
    hotswap_build::host_identity()?;
    Ok(())
}
