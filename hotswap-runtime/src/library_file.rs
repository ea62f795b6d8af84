//! A plugin library file below the manager: what identifies the file without reading it, and
//! reading it within bounds into a private copy (the loader's first stage). The manager and the
//! loader both use this; it uses neither.

use std::io::Read;
use std::path::Path;

use crate::error::{LoadError, Stage};

/// What tells that a file is the very one read before without reading it: device, inode,
/// size, modification and status-change times. Replacing a file (rename) changes the inode;
/// writing it in place changes the times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileIdentity {
    /// The identity of `file`, if it can be read.
    pub(crate) fn of(file: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(file).ok()?;
        Some(FileIdentity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// How much of a library is read, hashed and written at a time: small enough to stay in the
/// CPU's cache between the three.
const CHUNK: usize = 256 << 10;

/// Reads a library file of at most `max_bytes` (refusing a larger one before reading it) in
/// one pass: each chunk read is hashed and written to `copy_to` while it is in the cache.
/// Returns the bytes (for the checks before `dlopen`) and their sha256. On error nothing is
/// left at `copy_to`; on success the caller owns (and deletes, unless it keeps) that file.
pub(crate) fn copy_library(
    name: &str,
    file: &Path,
    max_bytes: u64,
    copy_to: &Path,
) -> Result<(Vec<u8>, String), LoadError> {
    use sha2::Digest;
    use std::io::Write;
    let fail = |reason: String| LoadError::new(Some(name.to_string()), file, Stage::Copy, reason);
    let mut handle = std::fs::File::open(file).map_err(|e| fail(format!("cannot read: {e}")).caused_by(e))?;
    let meta = handle.metadata().map_err(|e| fail(format!("cannot read: {e}")).caused_by(e))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let too_big = |size: u64| {
        fail(format!(
            "the library is {size} bytes, over the limit of {max_bytes} bytes (PluginManagerBuilder::max_library_size)"
        ))
    };
    if meta.len() > max_bytes {
        return Err(too_big(meta.len()));
    }
    let mut out = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(copy_to)
        .map_err(|e| fail(format!("cannot copy to {}: {e}", copy_to.display())).caused_by(e))?;
    let remove = |error: LoadError| {
        let _ = std::fs::remove_file(copy_to);
        error
    };
    let mut hasher = sha2::Sha256::new();
    // One byte more than the size read above, to notice a file that grew since.
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    loop {
        let filled = bytes.len();
        if filled as u64 > max_bytes {
            return Err(remove(too_big(filled as u64)));
        }
        let want = CHUNK.min((max_bytes + 1 - filled as u64).try_into().unwrap_or(CHUNK));
        // `read_to_end` reads into the spare capacity without zeroing it first.
        let n = match (&mut handle).take(want as u64).read_to_end(&mut bytes) {
            Ok(n) => n,
            Err(e) => return Err(remove(fail(format!("cannot read: {e}")).caused_by(e))),
        };
        if n == 0 {
            break;
        }
        let chunk = &bytes[filled..];
        hasher.update(chunk);
        if let Err(e) = out.write_all(chunk) {
            return Err(remove(fail(format!("cannot copy to {}: {e}", copy_to.display())).caused_by(e)));
        }
    }
    let sha256 = crate::inspect::hex(&hasher.finalize());
    Ok((bytes, sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_stay_reachable_as_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let Err(error) = copy_library("p", &missing, 1 << 20, &dir.path().join("copy")) else { panic!("copied") };
        assert!(std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>()), "{error}");
    }
}
