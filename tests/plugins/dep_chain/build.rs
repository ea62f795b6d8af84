fn main() -> Result<(), hotswap_build::Error> {
    // One crate, three plugins: the feature chooses which (see src/lib.rs).
    let name = if std::env::var_os("CARGO_FEATURE_ALPHA").is_some() {
        "dep_alpha"
    } else if std::env::var_os("CARGO_FEATURE_MID").is_some() {
        "dep_mid"
    } else {
        "dep_zeta"
    };
    hotswap_build::Config::new().plugin_name(name).generate()?;
    Ok(())
}
