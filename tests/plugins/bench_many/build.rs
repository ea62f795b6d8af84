fn main() -> Result<(), hotswap_build::Error> {
    // The benchmarks build this crate ten times under ten plugin names: the runtime refuses a
    // library whose embedded name differs from its file name, so copies would not do.
    println!("cargo:rerun-if-env-changed=BENCH_PLUGIN_NAME");
    let name = std::env::var("BENCH_PLUGIN_NAME").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| "bench".to_string());
    hotswap_build::Config::new().plugin_name(name).generate()?;
    Ok(())
}
