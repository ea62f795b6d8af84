//! Turning the file watcher's events into saves, for `watch`: one save is every change that
//! lands until the files have been quiet for the settle time (default 10 ms), and no file is
//! still open for writing (an editor's write still going on), at most [`OPEN_WAIT`].
//!
//! Events carry the time they arrived (the watcher's callback stamps them), so a change that
//! lands while a build runs is timed from when it happened, not from when the build ended;
//! it waits in the channel, and makes the next save (one more build after the running one).
//!
//! The quiet time is not idle: when the last change leaves no file open for writing, the
//! caller's `prepare` runs at once (`watch` computes the version stamps there, issue 24), and
//! the save says whether no event arrived after it started ([`Save::prepared`]): only then may
//! its work be used.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
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
    /// Whether the last `prepare` of [`next_save`] started after every event of the save was
    /// read, and none arrived while it ran or after: its work saw the save's final files.
    pub prepared: bool,
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

/// The save being gathered.
#[derive(Default)]
struct Pending {
    paths: Vec<PathBuf>,
    open: HashSet<PathBuf>,
    first: Option<Instant>,
    last: Option<Instant>,
    /// Whether an event was taken since `prepare` last started.
    changed_since_prepare: bool,
}

impl Pending {
    fn take(&mut self, (at, event): Stamped, relevant: &impl Fn(&std::path::Path) -> bool) {
        let event = match event {
            Ok(event) => event,
            Err(e) => return eprintln!("watch error: {e}"),
        };
        let Some(kind) = change(&event.kind) else { return };
        for path in event.paths.into_iter().filter(|p| relevant(p)) {
            match kind {
                Change::Writing => self.open.insert(path.clone()),
                Change::Done => self.open.remove(&path),
            };
            self.paths.push(path);
            self.changed_since_prepare = true;
            self.last = Some(self.last.map_or(at, |last| last.max(at)));
            self.first.get_or_insert(at);
        }
    }
}

/// Waits for the next save among the events of `rx` whose paths `relevant` accepts; `None`
/// when `stop` is set. `Err` when the watcher stopped. Watch errors are printed and skipped.
/// `prepare` is called with the save's paths so far each time a change leaves no file open
/// for writing, before the quiet time is waited for ([`Save::prepared`]).
pub fn next_save(
    rx: &Receiver<Stamped>,
    settle: Duration,
    stop: &AtomicBool,
    relevant: impl Fn(&std::path::Path) -> bool,
    mut prepare: impl FnMut(&[PathBuf]),
) -> Result<Option<Save>, RecvTimeoutError> {
    let mut pending = Pending::default();
    while !stop.load(Ordering::SeqCst) {
        // Everything that arrived already, first: events queued during a build are old, and
        // their times alone would end the save before its last events are read.
        loop {
            match rx.try_recv() {
                Ok(stamped) => pending.take(stamped, &relevant),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            }
        }
        if pending.changed_since_prepare && pending.open.is_empty() && !pending.paths.is_empty() {
            pending.changed_since_prepare = false;
            prepare(&pending.paths);
            continue;
        }
        let now = Instant::now();
        let wait = match (pending.first, pending.last) {
            (Some(first), Some(last)) => {
                let quiet = last + settle;
                let deadline = if pending.open.is_empty() { quiet } else { quiet.max(first + OPEN_WAIT) };
                if now >= deadline {
                    let prepared = !pending.changed_since_prepare && pending.open.is_empty();
                    return Ok(Some(Save { paths: pending.paths, first, settled: now, prepared }));
                }
                deadline - now
            }
            _ => Duration::from_millis(200),
        };
        match rx.recv_timeout(wait) {
            Ok(stamped) => pending.take(stamped, &relevant),
            Err(RecvTimeoutError::Timeout) => {}
            Err(e @ RecvTimeoutError::Disconnected) => return Err(e),
        }
    }
    Ok(None)
}
