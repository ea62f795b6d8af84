//! `cargo xtask`: the hotswap commands inside this repository (`build`, `reload`, `status`,
//! `watch`, `new`). They live in the `hotswap-cli` library, so any workspace's xtask is these
//! same few lines, and `cargo install --path hotswap-cli` gives them as `cargo hotswap`.
//!
//! Run `cargo xtask help` for the commands and their flags.

fn main() -> std::process::ExitCode {
    hotswap_cli::main("cargo xtask")
}
