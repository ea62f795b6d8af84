//! Sends one request to a control socket and prints the answer as JSON. Used by the security
//! tests to talk to a host as another user.

use std::path::PathBuf;
use std::time::Duration;

use hotswap_runtime::{ControlRequest, send_request};

fn main() {
    let socket: PathBuf = std::env::args_os().nth(1).expect("usage: control-client <socket>").into();
    match send_request(&socket, &ControlRequest::Reload, Duration::from_secs(30)) {
        Ok(answer) => println!("{}", serde_json::to_string(&answer).unwrap()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
