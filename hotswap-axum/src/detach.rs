//! Bytes that leave a plugin's response as the host's own. hyper may hold a body's bytes
//! after the body, and with it the generation, is gone (queued for a slow client), and a
//! response head's header values until it is encoded; such bytes can point into the plugin's
//! library (`Bytes::from_static`: a handler returning a `&'static str`,
//! `HeaderValue::from_static`) or be freed through code in it (`Bytes::from_owner` of a
//! plugin type). Copies have neither tie, whatever the bytes were.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};

/// A copy of `bytes` on the heap, freed by the shared `bytes` crate's code.
pub(crate) fn owned(bytes: &Bytes) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

/// Replaces every header value with a copy.
pub(crate) fn owned_headers(headers: &mut HeaderMap) {
    for value in headers.values_mut() {
        if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            *value = copy;
        }
    }
}
