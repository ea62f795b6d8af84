//! The socket's folder and file: checked without following symbolic links, and nothing but a
//! dead socket is ever removed.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use super::{ControlError, io};

/// The process's user id.
pub(crate) fn own_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Creates `dir` (mode 0700) if missing, then checks it without following links: a real
/// folder (not a symbolic link), owned by us (or root's with the sticky bit, like `/tmp`), and
/// not writable by group or others unless sticky.
pub(crate) fn prepare_folder(dir: &Path) -> Result<(), ControlError> {
    let unsafe_folder = |reason: String| ControlError::UnsafeFolder { path: dir.to_path_buf(), reason };
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(format!("creating {}", dir.display())))?;
    }
    // O_NOFOLLOW: a symbolic link in the last component is refused by the kernel (ELOOP), so
    // the folder checked is the folder itself; another user who may create the name (in
    // /tmp, say) cannot point it at a folder of ours and re-point it later.
    let fd = match rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        // With O_DIRECTORY, Linux says ENOTDIR for a link, ELOOP without it.
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
            let link = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
            return Err(unsafe_folder(if link {
                "it is a symbolic link; use a real folder (a link can be re-pointed by whoever may write its parent)"
                    .into()
            } else {
                "it is not a folder".into()
            }));
        }
        Err(e) => return Err(io(format!("opening {}", dir.display()))(e.into())),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| io(format!("reading {}", dir.display()))(e.into()))?;
    let uid = own_uid();
    let mode = stat.st_mode & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if stat.st_uid != uid && !(stat.st_uid == 0 && sticky) {
        return Err(unsafe_folder(format!("owned by uid {}, not by us ({uid})", stat.st_uid)));
    }
    if mode & 0o022 != 0 && !sticky {
        return Err(unsafe_folder(format!(
            "writable by group or others (mode {mode:o}); run `chmod go-w {}`",
            dir.display()
        )));
    }
    Ok(())
}

/// Makes `path` free for a new socket: nothing there is fine; a socket no process answers on
/// (left by a host that died) is removed; a socket a process answers on is [`ControlError::InUse`];
/// anything else (a regular file, a folder, a symbolic link) is refused and left alone.
pub(crate) fn clear_socket_path(path: &Path) -> Result<(), ControlError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
    };
    if !meta.file_type().is_socket() {
        let what = if meta.file_type().is_symlink() {
            "a symbolic link"
        } else if meta.is_dir() {
            "a folder"
        } else if meta.is_file() {
            "a regular file"
        } else {
            "not a socket"
        };
        return Err(ControlError::NotASocket { path: path.to_path_buf(), what });
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(ControlError::InUse(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            // A stale socket from a host that died.
            std::fs::remove_file(path).map_err(io(format!("removing stale socket {}", path.display())))
        }
        Err(e) => Err(io(format!("checking whether a host listens on {}", path.display()))(e)),
    }
}

/// Which file a path named when the server bound it, so that stopping removes only its own
/// socket, never one another host bound there since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    pub(crate) fn of(path: &Path) -> Option<FileIdentity> {
        std::fs::symlink_metadata(path).ok().map(|m| FileIdentity { dev: m.dev(), ino: m.ino() })
    }

    /// Removes `path` if it is still this file.
    pub(crate) fn remove_if_same(self, path: &PathBuf) {
        if FileIdentity::of(path) == Some(self) {
            let _ = std::fs::remove_file(path);
        }
    }
}
