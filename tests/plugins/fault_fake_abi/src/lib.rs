//! Test fixture: a library that looks like a hotswap plugin from the outside (it exports the
//! descriptor symbol and the fingerprint, name and version byte arrays) but carries the ABI
//! fingerprint of another toolchain. The runtime must refuse it at stage `inspect`, from the
//! file alone: its descriptor is junk, and a static initialiser records whether the library
//! was ever opened.
//!
//! The symbol names are written out because `#[unsafe(no_mangle)]` takes the item's name:
//! they must match `hotswap_abi::SYMBOLS` (the suffix is the layout version), which
//! `hotswap-build/tests/tidy.rs` checks.

/// The foreign fingerprint. `faults.rs` looks for this text in the refusal.
#[unsafe(no_mangle)]
pub static HOTSWAP_ABI_FINGERPRINT_V6: [u8; 78] =
    *b"rustc 0.0.0 (fake); target none; hotswap-runtime 0.0.0; layout 0; panic unwind";

/// The plugin name; the test installs the file as `fault_fake_abi@1.0.0.so`.
#[unsafe(no_mangle)]
pub static HOTSWAP_PLUGIN_NAME_V6: [u8; 14] = *b"fault_fake_abi";

/// The version stamp.
#[unsafe(no_mangle)]
pub static HOTSWAP_PLUGIN_VERSION_V6: [u8; 5] = *b"1.0.0";

/// A crate identity record that lists nothing (never read: the fingerprint stops the runtime
/// first).
#[unsafe(no_mangle)]
pub static HOTSWAP_CRATE_IDENTITY_V6: [u8; 24] = *b"hotswap crate identity 1";

/// Not a `PluginDescriptor` at all: reading it after `dlopen` would be undefined behaviour,
/// which is why the fingerprint must stop the runtime first.
#[unsafe(no_mangle)]
pub static HOTSWAP_PLUGIN_DESCRIPTOR_V6: [u8; 16] = [0xAB; 16];

/// Runs when the library is opened (never when its file is only read): leaves a marker file
/// named after the process, which `faults.rs` checks is absent.
extern "C" fn record_open() {
    let marker = std::env::temp_dir().join(format!("hotswap-fault_fake_abi-opened-{}", std::process::id()));
    let _ = std::fs::write(marker, b"the library was opened");
}

// SAFETY: `.init_array` holds pointers to functions the dynamic loader calls, without
// arguments that we use, when the library is opened. `record_open` has the C ABI, does not
// unwind (its only fallible call has its error ignored) and needs no initialised state
// beyond what the std of a loaded library has.
#[used]
#[unsafe(link_section = ".init_array")]
static RECORD_OPEN: extern "C" fn() = record_open;
