//! The short form of the soak test: 4 threads call a plugin while it is reloaded 60 times;
//! no call may fail and the mapped libraries must stay bounded. The long form is run by hand:
//! `cargo run --release -p hotswap-tests --bin soak -- --reloads 2000`.

#[test]
fn short_soak_loses_no_call_and_bounds_memory() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(["--reloads", "60", "--threads", "4", "--retain", "2"])
        .output()
        .expect("running the soak binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(output.status.success(), "soak failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("failed calls: 0 of "), "{stdout}");
}
