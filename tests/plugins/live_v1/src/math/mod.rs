//! A nested module: its live function is registered as `crate::math::live_add`.

pub fn live_add(a: i64, b: i64) -> i64 {
    a + b
}

/// Not live: the prefix must start the name.
pub fn add_live(a: i64, b: i64) -> i64 {
    a - b
}
