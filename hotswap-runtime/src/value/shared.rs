//! The one type read across copies of this crate by name rather than by `TypeId`:
//! [`LiveData`], under the proof at [`shared_runtime_type`].

use std::any::{Any, TypeId};

use crate::live::LiveData;

/// Identifies this copy of the crate by its ABI fingerprint (FNV-1a of
/// [`FINGERPRINT`](crate::abi::FINGERPRINT)); never 0.
pub(super) const SHARED_TAG: u64 = {
    let bytes = crate::abi::FINGERPRINT.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    if hash == 0 { 1 } else { hash }
};

/// Whether a value of another `TypeId`, named `found` and tagged `shared`, may be read as `T`.
///
/// Host and plugin each compile their own copy of `hotswap-runtime`, and cargo may give the
/// two copies different metadata hashes, so the `TypeId` of [`LiveData`] differs between the
/// two sides while it is the same type. It is recognised when all of these hold:
///
/// 1. `T` is this copy's `LiveData` (by `TypeId`, exact);
/// 2. the value was made by `Value::new` of a copy of this crate whose own `LiveData` it
///    held (by `TypeId`, in that copy): `shared` is that copy's [`SHARED_TAG`];
/// 3. that tag equals ours, so both copies have the same ABI fingerprint: the same rustc
///    release and commit for the same target (hence the same std and `String`/`Vec` layouts)
///    and the same hotswap-runtime source (hence the same `LiveData` declaration);
/// 4. the type names agree (a further check, not relied on).
///
/// `LiveData` is `#[repr(C)]` with `String` and `Vec<u8>` fields only, so its layout follows
/// from its declaration and std's types alone: no cfg, feature or optimisation setting
/// changes it. Every other type, user or runtime, is matched by `TypeId` only.
pub(super) fn shared_runtime_type<T: Any>(found: &str, shared: u64) -> bool {
    TypeId::of::<T>() == TypeId::of::<LiveData>() && shared == SHARED_TAG && found == std::any::type_name::<T>()
}
