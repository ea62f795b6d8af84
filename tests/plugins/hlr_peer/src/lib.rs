//! Benchmark fixture for hot-lib-reloader (the peer in `tests/benches`): the function its
//! `#[hot_module]` calls, exported unmangled as hot-lib-reloader requires. No hotswap here.

/// Added to every sum: `$HLR_PEER_BIAS` at build time (0 when unset), so that a second build
/// with another bias tells which library answered.
const BIAS: i64 = match option_env!("HLR_PEER_BIAS") {
    Some(text) => parse(text),
    None => 0,
};

const fn parse(text: &str) -> i64 {
    let bytes = text.as_bytes();
    let mut value = 0_i64;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "HLR_PEER_BIAS must be a decimal number");
        value = value * 10 + (bytes[i] - b'0') as i64;
        i += 1;
    }
    value
}

/// `a + b + BIAS`, called through hot-lib-reloader's generated forwarding function.
#[unsafe(no_mangle)]
pub fn hlr_add(a: i64, b: i64) -> i64 {
    a.wrapping_add(b).wrapping_add(BIAS)
}
