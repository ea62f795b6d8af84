//! The built-in reload trigger ([`PluginManagerBuilder::reload_on_new_builds`]): an inotify
//! watch (through `notify`) on the plugin folder that reloads when a new library lands in it.
//!
//! A new library "lands" when a `*.so` (not hidden) is renamed into the folder (how `cargo
//! xtask build` installs it, and `mv`) or a write to one is finished (`cp`). Opening or
//! reading files, which every reload does, is not an event here, and neither is a hidden file
//! (`cargo xtask build`'s temporary) or a manifest. Events are debounced: the reload starts
//! once no new event came for the debounce time, so a build that installs several libraries
//! at once is one reload.
//!
//! The reload goes through [`PluginManager::try_reload`]: it never waits behind a running
//! reload. If one is running (`Busy`), the trigger tries again shortly after, so a library
//! that landed while another reload ran is still loaded.
//!
//! The watching thread holds only a `Weak` reference to the manager, upgraded for the
//! duration of one reload: it never keeps the manager alive. The watch is owned by the
//! manager; dropping the manager drops the watch, which ends the watching thread (never
//! joined: a reload in progress there finishes on its own).
//!
//! [`PluginManagerBuilder::reload_on_new_builds`]: super::PluginManagerBuilder::reload_on_new_builds
//! [`PluginManager::try_reload`]: super::PluginManager::try_reload

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use super::{Inner, PluginManager};
use crate::error::LoadErrorKind;

/// How long to wait before trying again when a reload was already running.
const BUSY_RETRY: Duration = Duration::from_millis(20);

/// The watch on the plugin folder; owned by the manager, dropped with it.
pub(crate) struct Trigger {
    watcher: Mutex<notify::RecommendedWatcher>,
    dir: Mutex<PathBuf>,
}

impl Trigger {
    /// Starts watching `dir` and the thread that reloads `manager` (held weakly).
    pub fn start(manager: Weak<Inner>, dir: &Path, debounce: Duration) -> std::io::Result<Trigger> {
        let (sender, events) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            if event.as_ref().is_ok_and(lands_a_library) || event.is_err() {
                // The receiver is gone only once the thread has ended.
                let _ = sender.send(event.map(|_| ()));
            }
        })
        .map_err(notify_error)?;
        watcher.watch(dir, RecursiveMode::NonRecursive).map_err(notify_error)?;
        std::thread::Builder::new()
            .name("hotswap-trigger".into())
            .spawn(move || watch_loop(&manager, &events, debounce))?;
        Ok(Trigger { watcher: Mutex::new(watcher), dir: Mutex::new(dir.to_path_buf()) })
    }

    /// Watches `dir` instead of the folder watched so far (for
    /// [`PluginManager::set_plugin_dir`]).
    pub fn rewatch(&self, dir: &Path) {
        let mut watched = super::lock(&self.dir);
        let mut watcher = super::lock(&self.watcher);
        let _ = watcher.unwatch(&watched);
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::error!(dir = %crate::error::escape_path(dir), "cannot watch the new plugin folder for new builds: {e}");
        }
        *watched = dir.to_path_buf();
    }
}

fn notify_error(e: notify::Error) -> std::io::Error {
    match e.kind {
        notify::ErrorKind::Io(io) => io,
        _ => std::io::Error::other(e.to_string()),
    }
}

/// Whether `event` puts a new library in the folder: a rename into it, or the end of a write.
fn lands_a_library(event: &Event) -> bool {
    // inotify reports every rename into the folder as `To`, and one within the folder also as
    // `Both`: only `To` counts, so that one rename is one event.
    let kind = matches!(
        event.kind,
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Any))
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    );
    kind && event.paths.last().is_some_and(|path| is_library(path))
}

fn is_library(path: &Path) -> bool {
    let visible = path.file_name().is_some_and(|n| !n.as_encoded_bytes().starts_with(b"."));
    visible && path.extension().is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
}

/// Waits for events; after each burst (no new event for `debounce`), reloads. Ends when the
/// watch is dropped (the channel closes) or the manager is gone.
fn watch_loop(manager: &Weak<Inner>, events: &Receiver<notify::Result<()>>, debounce: Duration) {
    loop {
        match events.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!("watching the plugin folder: {e}");
                continue;
            }
            Err(_) => return,
        }
        // Debounce: wait until the folder has been quiet for `debounce`.
        let mut quiet_from = Instant::now();
        loop {
            let left = debounce.saturating_sub(quiet_from.elapsed());
            match events.recv_timeout(left) {
                Ok(_) => quiet_from = Instant::now(),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        loop {
            let Some(inner) = manager.upgrade() else { return };
            let result = PluginManager { inner }.try_reload();
            match result {
                Err(e) if e.kind == LoadErrorKind::Busy => {
                    // Another reload runs; it may have scanned the folder before the new
                    // library landed. Try again soon, unless the watch is gone.
                    match events.recv_timeout(BUSY_RETRY) {
                        Err(RecvTimeoutError::Disconnected) => return,
                        Ok(_) | Err(RecvTimeoutError::Timeout) => continue,
                    }
                }
                // A refused reload is logged by the manager; the next build triggers again.
                Ok(_) | Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::CreateKind;

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        paths.iter().fold(Event::new(kind), |e, p| e.add_path(PathBuf::from(p)))
    }

    #[test]
    fn only_a_visible_library_renamed_in_or_written_lands() {
        let to = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let both = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let opened = EventKind::Access(AccessKind::Open(notify::event::AccessMode::Any));
        let created = EventKind::Create(CreateKind::File);
        assert!(lands_a_library(&event(to, &["/p/greeter@2.so"])));
        assert!(lands_a_library(&event(written, &["/p/greeter@2.so"])));
        // The same rename seen as `Both` is not counted twice.
        assert!(!lands_a_library(&event(both, &["/p/.greeter.tmp", "/p/greeter@2.so"])));
        assert!(!lands_a_library(&event(to, &["/p/.hotswap-x.so"])));
        assert!(!lands_a_library(&event(to, &["/p/greeter@2.json"])));
        assert!(!lands_a_library(&event(opened, &["/p/greeter@2.so"])));
        assert!(!lands_a_library(&event(created, &["/p/greeter@2.so"])), "a file being written is not a build yet");
    }
}
