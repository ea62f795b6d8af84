//! The command line (by hand: no argument parser to build on the shared route).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What the host was asked to do.
pub struct Args {
    /// Folder of plugin libraries written by `cargo xtask build`.
    pub plugins: PathBuf,
    /// Control socket (default: as `cargo xtask reload`).
    pub socket: Option<PathBuf>,
    /// Loopback address to serve HTTP on.
    pub listen: SocketAddr,
    /// Worker threads of the runtime.
    pub workers: usize,
    /// After a new host took over: the longest this one waits for its open connections.
    pub drain: Duration,
    /// How long a replaced generation nobody holds waits before it is freed.
    pub free_delay: Duration,
}

pub const USAGE: &str = "usage: service-host [--plugins DIR (bin)] [--socket PATH] [--listen ADDR (127.0.0.1:8080)] \
                         [--workers N (2)] [--drain-secs S (30)] [--free-delay-ms MS (2000)]";

impl Args {
    /// Reads `std::env::args`; an error names the flag.
    pub fn parse() -> Result<Args, String> {
        let mut args = Args {
            plugins: PathBuf::from("bin"),
            socket: None,
            listen: ([127, 0, 0, 1], 8080).into(),
            workers: 2,
            drain: Duration::from_secs(30),
            free_delay: Duration::from_secs(2),
        };
        let mut given = std::env::args().skip(1);
        while let Some(flag) = given.next() {
            if flag == "--help" || flag == "-h" {
                return Err(USAGE.to_string());
            }
            let value = given.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}\n{USAGE}");
            match flag.as_str() {
                "--plugins" => args.plugins = PathBuf::from(&value),
                "--socket" => args.socket = Some(PathBuf::from(&value)),
                "--listen" => args.listen = value.parse().map_err(|e| bad(&e))?,
                "--workers" => args.workers = value.parse().map_err(|e| bad(&e))?,
                "--drain-secs" => {
                    args.drain = value.parse().map(|s: f64| Duration::from_secs_f64(s.max(0.0))).map_err(|e| bad(&e))?
                }
                "--free-delay-ms" => args.free_delay = value.parse().map(Duration::from_millis).map_err(|e| bad(&e))?,
                _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
            }
        }
        Ok(args)
    }
}
