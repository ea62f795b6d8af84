//! Turning the file watcher's events into saves, for `watch`: one save is every change that
//! lands until the files have been quiet for the settle time (default 10 ms), and no file is
//! still open for writing (an editor's write still going on), at most [`OPEN_WAIT`].
//!
//! Events carry the time they arrived (the watcher's callback stamps them), so a change that
//! lands while a build runs is timed from when it happened, not from when the build ended;
//! it waits in the channel, and makes the next save (one more build after the running one).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::EventKind;
use notify::event::{AccessKind, AccessMode, ModifyKind};

/// How long a save waits at most for a file still open for writing.
pub const OPEN_WAIT: Duration = Duration::from_secs(1);

/// An event from the watcher, with the time it arrived.
pub type Stamped = (Instant, notify::Result<notify::Event>);

/// The changed paths of one save.
#[derive(Debug, Clone)]
pub struct Save {
    /// Every path changed (created, written, renamed, removed), in arrival order.
    pub paths: Vec<PathBuf>,
    /// When the first change arrived.
    pub first: Instant,
    /// When the save was settled (the build may start).
    pub settled: Instant,
}

/// What an event means for a save.
enum Change {
    /// A change, and the file may still be being written.
    Writing,
    /// A change after which the file is complete (closed after writing, renamed, removed).
    Done,
}

fn change(kind: &EventKind) -> Option<Change> {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Change::Done),
        EventKind::Modify(ModifyKind::Metadata(_)) | EventKind::Access(_) => None,
        EventKind::Modify(ModifyKind::Name(_)) | EventKind::Remove(_) => Some(Change::Done),
        EventKind::Create(notify::event::CreateKind::Folder) => Some(Change::Done),
        EventKind::Create(_) | EventKind::Modify(_) => Some(Change::Writing),
        _ => None,
    }
}

/// Waits for the next save among the events of `rx` whose paths `relevant` accepts; `None`
/// when `stop` is set. `Err` when the watcher stopped. Watch errors are printed and skipped.
pub fn next_save(
    rx: &Receiver<Stamped>,
    settle: Duration,
    stop: &AtomicBool,
    relevant: impl Fn(&std::path::Path) -> bool,
) -> Result<Option<Save>, RecvTimeoutError> {
    let mut paths = Vec::new();
    let mut open: HashSet<PathBuf> = HashSet::new();
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let wait = match first {
            None => Duration::from_millis(200),
            Some(first) => {
                let quiet = last + settle;
                let deadline = if open.is_empty() { quiet } else { quiet.max(first + OPEN_WAIT) };
                if now >= deadline {
                    return Ok(Some(Save { paths, first, settled: now }));
                }
                deadline - now
            }
        };
        match rx.recv_timeout(wait) {
            Ok((at, Ok(event))) => {
                let Some(kind) = change(&event.kind) else { continue };
                let mut any = false;
                for path in event.paths.into_iter().filter(|p| relevant(p)) {
                    match kind {
                        Change::Writing => open.insert(path.clone()),
                        Change::Done => open.remove(&path),
                    };
                    paths.push(path);
                    any = true;
                }
                if any {
                    last = if first.is_none() { at } else { at.max(last) };
                    first.get_or_insert(at);
                }
            }
            Ok((_, Err(e))) => eprintln!("watch error: {e}"),
            Err(RecvTimeoutError::Timeout) => {}
            Err(e @ RecvTimeoutError::Disconnected) => return Err(e),
        }
    }
    Ok(None)
}
