//! The work folder that holds private copies of loaded libraries: where it goes, and removing
//! the folders of hosts that died without cleaning up.

use std::path::{Path, PathBuf};

/// Whether `name` is `<prefix><pid>-…` and no process `pid` exists any more: the name of
/// something a process left behind (a work folder, a build's temporary file).
pub(super) fn left_by_dead_process(name: &std::ffi::OsStr, prefix: &str) -> bool {
    let Some(pid) = name
        .to_str()
        .and_then(|n| n.strip_prefix(prefix))
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(pid, _)| pid.parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // Signal 0 only checks that the process exists; EPERM means it exists as another user.
    match rustix::process::test_kill_process(pid) {
        Ok(()) => false,
        Err(e) => e != rustix::io::Errno::PERM,
    }
}

/// Removes `hotswap-<pid>-*` work folders in `root` that belong to us and to a process that
/// no longer exists. Best effort: anything unexpected is left alone.
pub(super) fn remove_stale_work_dirs(root: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(root) else { return };
    let uid = rustix::process::getuid().as_raw();
    for entry in entries.flatten() {
        if !left_by_dead_process(&entry.file_name(), "hotswap-") {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        if meta.is_dir() && meta.uid() == uid {
            tracing::info!(folder = ?entry.path(), "removing the work folder of a host that is gone");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A tmpfs folder this user can write and map code from, for the copies of loaded libraries.
pub(super) fn memory_backed_work_root() -> Option<PathBuf> {
    let candidates =
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).into_iter().chain([PathBuf::from("/dev/shm")]);
    candidates.into_iter().find(|dir| is_exec_tmpfs(dir))
}

fn is_exec_tmpfs(dir: &Path) -> bool {
    use rustix::fs::{Access, StatVfsMountFlags};
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let Ok(fs) = rustix::fs::statfs(dir) else { return false };
    let Ok(vfs) = rustix::fs::statvfs(dir) else { return false };
    let writable = rustix::fs::access(dir, Access::WRITE_OK | Access::EXEC_OK).is_ok();
    #[allow(clippy::unnecessary_cast)]
    let is_tmpfs = fs.f_type as i64 == TMPFS_MAGIC;
    is_tmpfs && !vfs.f_flag.contains(StatVfsMountFlags::NOEXEC) && writable
}
