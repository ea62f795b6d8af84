fn main() -> Result<(), hotswap_build::Error> {
    // One crate, three plugins: the feature chooses which (see src/lib.rs).
    let name = if std::env::var_os("CARGO_FEATURE_C").is_some() {
        "dep_cyc_c"
    } else if std::env::var_os("CARGO_FEATURE_B").is_some() {
        "dep_cyc_b"
    } else {
        "dep_cyc_a"
    };
    hotswap_build::Config::new().plugin_name(name).generate()?;
    Ok(())
}
