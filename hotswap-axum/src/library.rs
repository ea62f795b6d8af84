//! Where a plugin's library is mapped, so that bytes pointing into it can be copied out
//! before they travel beyond the request: `Bytes::from_static` (a handler returning a
//! `&'static str`, `HeaderValue::from_static`) points into the library's read-only data, and
//! hyper may still hold such bytes (queued for a slow client, or a header about to be
//! encoded) after the body that holds the library's generation is gone.

use std::path::Path;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};

/// The address ranges a library file is mapped at (`/proc/self/maps`).
#[derive(Debug, Default)]
pub(crate) struct Mapped(Vec<(usize, usize)>);

impl Mapped {
    /// The ranges `library` is mapped at now (none if `/proc/self/maps` cannot be read).
    pub(crate) fn of(library: &Path) -> Mapped {
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return Mapped::default() };
        let ranges = maps
            .lines()
            .filter(|line| line.split_whitespace().nth(5).is_some_and(|path| Path::new(path) == library))
            .filter_map(|line| {
                let (start, end) = line.split_whitespace().next()?.split_once('-')?;
                Some((usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?))
            })
            .collect();
        Mapped(ranges)
    }

    fn holds(&self, bytes: &[u8]) -> bool {
        let at = bytes.as_ptr() as usize;
        !bytes.is_empty() && self.0.iter().any(|&(start, end)| (start..end).contains(&at))
    }

    /// `bytes`, copied out if they lie in the library.
    pub(crate) fn detach(&self, bytes: Bytes) -> Bytes {
        if self.holds(&bytes) { Bytes::copy_from_slice(&bytes) } else { bytes }
    }

    /// Copies out every header value that lies in the library.
    pub(crate) fn detach_headers(&self, headers: &mut HeaderMap) {
        for value in headers.values_mut() {
            if self.holds(value.as_bytes()) {
                let sensitive = value.is_sensitive();
                if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
                    copy.set_sensitive(sensitive);
                    *value = copy;
                }
            }
        }
    }
}
