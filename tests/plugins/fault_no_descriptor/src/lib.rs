//! Test fixture: a valid Rust shared library that exports a junk symbol but no hotswap
//! descriptor. The runtime must refuse it from the file alone, before `dlopen`.

/// An exported static that means nothing to hotswap.
#[unsafe(no_mangle)]
pub static FAULT_NO_DESCRIPTOR_JUNK: [u8; 8] = *b"junk\0\0\0\0";

/// An exported function, so the library has code as well as data.
#[unsafe(no_mangle)]
pub extern "C" fn fault_no_descriptor_add(a: u32, b: u32) -> u32 {
    a.wrapping_add(b)
}
