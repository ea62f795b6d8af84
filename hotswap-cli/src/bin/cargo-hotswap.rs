//! `cargo hotswap build|reload|status|watch|new`: install with
//! `cargo install --path hotswap-cli` from a hotswap checkout.

fn main() -> std::process::ExitCode {
    hotswap_cli::main("cargo hotswap")
}
