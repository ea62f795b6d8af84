//! Starting the host that replaces this one: its sockets passed as descriptors 3, 4, … with
//! `LISTEN_FDS`/`LISTEN_FDNAMES`, a pipe to say it is ready, and a bounded wait for that word.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::HandoffError;
use super::inherit::{FIRST_FD, FROM_ENV, READY_FD_ENV};

/// How long a successor that closed its readiness pipe has to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// A started successor that said it is ready.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) pid: u32,
}

/// Starts `program` with `args` and the descriptors `fds` (dups of this host's sockets), and
/// waits until it says it is ready, exits, or `timeout` passes (then it is killed).
pub(crate) fn start(
    program: &Path,
    args: &[OsString],
    fds: Vec<(String, OwnedFd)>,
    timeout: Duration,
) -> Result<Started, HandoffError> {
    let count = fds.len() as RawFd;
    // Above every number the child's descriptors take, so moving one into place in the child
    // never overwrites another still to be moved.
    let floor = FIRST_FD + count + 1;
    let spawn_error = |source| HandoffError::Spawn { program: program.to_path_buf(), source };
    let (mut ready_read, ready_write) = std::io::pipe().map_err(spawn_error)?;
    let mut moved: Vec<OwnedFd> = Vec::with_capacity(fds.len() + 1);
    for fd in fds.iter().map(|(_, fd)| fd.as_fd()).chain(std::iter::once(ready_write.as_fd())) {
        moved.push(rustix::io::fcntl_dupfd_cloexec(fd, floor).map_err(|e| spawn_error(e.into()))?);
    }
    drop(ready_write);
    let sources: Vec<RawFd> = moved.iter().map(AsRawFd::as_raw_fd).collect();
    let names: Vec<&str> = fds.iter().map(|(name, _)| name.as_str()).collect();
    let mut command = Command::new(program);
    command
        .args(args)
        .env_remove("LISTEN_PID")
        .env("LISTEN_FDS", count.to_string())
        .env("LISTEN_FDNAMES", names.join(":"))
        .env(FROM_ENV, std::process::id().to_string())
        .env(READY_FD_ENV, (FIRST_FD + count).to_string());
    // SAFETY: the closure runs in the child between fork and exec and calls only dup2, which
    // is async-signal-safe; `sources` was allocated before the fork and is only read. dup2
    // clears close-on-exec on the new number, so exactly these descriptors cross the exec.
    unsafe {
        command.pre_exec(move || {
            for (index, &source) in sources.iter().enumerate() {
                if libc::dup2(source, FIRST_FD + index as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let started_at = Instant::now();
    let mut child = command.spawn().map_err(spawn_error)?;
    // Only the child holds the write end now: end of file on the pipe means it is gone.
    drop(moved);
    let pid = child.id();
    tracing::info!(pid, program = %program.display(), "started the new host; waiting until it is ready");
    match wait_ready(&mut ready_read, &mut child, started_at + timeout) {
        Ok(()) => Ok(Started { pid }),
        Err(failure) => {
            if matches!(failure, Failure::Exited) {
                // It closed the pipe on its way out (a panic unwinding, say): give it a moment
                // to finish, so its own exit status is what is reported.
                let until = Instant::now() + EXIT_GRACE;
                while Instant::now() < until && matches!(child.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let _ = child.kill();
            let status = child.wait().ok();
            let program = program.to_path_buf();
            Err(match failure {
                Failure::Exited => HandoffError::ExitedBeforeReady { program, pid, status: describe(status) },
                Failure::Timeout => HandoffError::NotReadyInTime { program, pid, waited: timeout },
                Failure::Io(source) => HandoffError::Wait { program, pid, source },
            })
        }
    }
}

enum Failure {
    Exited,
    Timeout,
    Io(std::io::Error),
}

/// Waits for the successor's readiness byte; end of file (every copy of the write end closed:
/// it exited, or closed it without a word) or its exit is a failure.
fn wait_ready(pipe: &mut std::io::PipeReader, child: &mut Child, deadline: Instant) -> Result<(), Failure> {
    let mut exited = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::Timeout);
        }
        let mut poll = [libc::pollfd { fd: pipe.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        let wait_ms = if exited { 0 } else { left.as_millis().min(100) as libc::c_int };
        // SAFETY: `poll` is one valid pollfd for a descriptor this function borrows.
        let ready = unsafe { libc::poll(poll.as_mut_ptr(), 1, wait_ms) };
        if ready < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Failure::Io(error));
        }
        if ready > 0 {
            let mut byte = [0u8; 1];
            return match pipe.read(&mut byte) {
                Ok(1) => Ok(()),
                Ok(_) => Err(Failure::Exited),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(Failure::Io(e)),
            };
        }
        if exited {
            // Exited, and nothing on the pipe (a descendant still holds its write end).
            return Err(Failure::Exited);
        }
        // It may have written its byte just before exiting: one more poll sees it, or EOF.
        exited = matches!(child.try_wait(), Ok(Some(_)));
    }
}

/// `exit status 3`, `killed by signal 9`.
fn describe(status: Option<std::process::ExitStatus>) -> String {
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => status.to_string(),
        },
        None => "exit status unknown".to_string(),
    }
}

/// The program a host was started as, made absolute at start (a later upgrade starts the
/// file found there then, which is the point: the new build installed at the same path).
pub(crate) fn own_program() -> PathBuf {
    let argv0 = std::env::args_os().next().map(PathBuf::from).unwrap_or_default();
    let from_argv = if argv0.components().count() > 1 { std::path::absolute(&argv0).ok() } else { None };
    from_argv
        .or_else(|| std::env::current_exe().ok())
        .map(|path| {
            // /proc/self/exe of a replaced file reads `… (deleted)`: the path is what is wanted.
            let text = path.to_string_lossy();
            match text.strip_suffix(" (deleted)") {
                Some(stripped) => PathBuf::from(stripped),
                None => path,
            }
        })
        .unwrap_or(argv0)
}
