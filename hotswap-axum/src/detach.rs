//! Bytes that leave a plugin's response as the host's own. hyper may hold a body's bytes
//! after the body, and with it the generation, is gone (queued for a slow client), and a
//! response head's header names and values until it is encoded (for a body that is already at
//! its end, hyper drops the body before it encodes the head); such bytes can point into the
//! plugin's library (`Bytes::from_static`: a handler returning a `&'static str`,
//! `HeaderValue::from_static`, `HeaderName::from_static` as tower-http's layers make their
//! names) or be freed through code in it (`Bytes::from_owner` of a plugin type). Copies have
//! neither tie, whatever the bytes were.

use axum::body::Bytes;
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, header};
use bytes::BytesMut;
use hyper::ext::ReasonPhrase;

/// A copy of `bytes` on the heap, freed by the shared `bytes` crate's code.
pub(crate) fn owned(bytes: &Bytes) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

/// Replaces every header name and value with a copy; returns the plugin's map, for the caller
/// to drop in the plugin's scope (a value's drop may be the plugin's code). A value that is
/// not a valid header value (only `unsafe` code can make one) is left out, with a warning.
/// The values are copied into one buffer (one allocation for the whole head).
#[must_use = "the plugin's headers are to be dropped in the plugin's scope"]
pub(crate) fn owned_headers(headers: &mut HeaderMap) -> HeaderMap {
    let mut buffer = BytesMut::with_capacity(headers.values().map(HeaderValue::len).sum());
    for value in headers.values() {
        buffer.extend_from_slice(value.as_bytes());
    }
    let buffer = buffer.freeze();
    let mut copies = HeaderMap::with_capacity(headers.len());
    let mut at = 0;
    for (name, value) in headers.iter() {
        let bytes = buffer.slice(at..at + value.len());
        at += value.len();
        let Some(name) = owned_name(name) else { continue };
        match HeaderValue::from_maybe_shared(bytes) {
            Ok(mut copy) => {
                copy.set_sensitive(value.is_sensitive());
                copies.append(name, copy);
            }
            Err(_) => tracing::warn!(header = %name, "left out a header value that is not valid"),
        }
    }
    std::mem::replace(headers, copies)
}

/// Names most responses carry: compared first, since a standard name is an enum (no bytes,
/// nothing of the plugin) and comparing two is cheaper than parsing one.
const COMMON: [HeaderName; 8] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CACHE_CONTROL,
    header::CONTENT_ENCODING,
    header::LOCATION,
    header::SET_COOKIE,
    header::VARY,
    header::ETAG,
];

/// `name` as a name that holds nothing of the plugin: a standard name is an enum; a custom
/// one's bytes (which may be the plugin's read-only data, `HeaderName::from_static`) are
/// copied by `from_bytes`.
fn owned_name(name: &HeaderName) -> Option<HeaderName> {
    if let Some(common) = COMMON.iter().find(|common| *common == name) {
        return Some(common.clone());
    }
    HeaderName::from_bytes(name.as_str().as_bytes()).ok()
}

/// A copy of the response's custom reason phrase (`hyper::ext::ReasonPhrase`, which hyper
/// writes in an HTTP/1 status line after the body may be gone), if it has one.
pub(crate) fn owned_reason(extensions: &Extensions) -> Option<ReasonPhrase> {
    let reason = extensions.get::<ReasonPhrase>()?;
    match ReasonPhrase::try_from(reason.as_bytes().to_vec()) {
        Ok(copy) => Some(copy),
        Err(_) => {
            tracing::warn!("left out a reason phrase that is not valid");
            None
        }
    }
}
