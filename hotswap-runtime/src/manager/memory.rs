//! The process's resident memory across generations, for the reload report and `status`.
//!
//! Unloading a library does not drop its statics: heap a plugin keeps in a static (a cache, a
//! `OnceLock<Vec<u8>>`) stays allocated after its generation is freed unless its `on_free`
//! lets go of it, so a plugin caching 20 MB that way costs 20 MB more on every reload. The
//! runtime cannot see whose heap it is, but it can show the symptom: the resident set size
//! (RSS) after each reload, against the previous reload and the first load, which an operator
//! can alert on.

use std::sync::atomic::{AtomicU64, Ordering};

/// The process's resident memory, and how it moved across generations. In a
/// [`ReloadReport`](super::ReloadReport), sampled just after the reload (with a zero free delay,
/// after the generation it replaced was freed, unless its `on_free` is stuck); in `status`,
/// sampled when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryReport {
    /// Resident set size of the whole process, in bytes (`VmRSS` of `/proc/self/status`).
    pub rss_bytes: u64,
    /// `rss_bytes` minus the sample taken just after the previous successful load or reload
    /// (0 for the first load).
    pub rss_change_bytes: i64,
    /// `rss_bytes` minus the sample taken just after the first load.
    pub rss_since_first_load_bytes: i64,
    /// Successful reloads since the first load: `rss_since_first_load_bytes` divided by this is
    /// what each reload has cost on average (a steady cost per reload is a plugin that keeps
    /// heap in a static; see the guide's section 8).
    pub reloads_since_first_load: u64,
}

impl std::fmt::Display for MemoryReport {
    /// `RSS 212.4 MiB (+36.0 MiB since the last reload, +144.1 MiB since the first load, over
    /// 4 reloads)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |bytes: f64| bytes / f64::from(1u32 << 20);
        write!(
            f,
            "RSS {:.1} MiB ({:+.1} MiB since the last reload, {:+.1} MiB since the first load, over {} reload{})",
            mib(self.rss_bytes as f64),
            mib(self.rss_change_bytes as f64),
            mib(self.rss_since_first_load_bytes as f64),
            self.reloads_since_first_load,
            if self.reloads_since_first_load == 1 { "" } else { "s" }
        )
    }
}

/// Samples taken after loads and reloads (0: none yet).
#[derive(Debug, Default)]
pub(crate) struct MemoryTrack {
    first: AtomicU64,
    last: AtomicU64,
    reloads: AtomicU64,
}

impl MemoryTrack {
    /// Records a sample just after a successful load or reload, and reports it.
    pub fn after_reload(&self) -> Option<MemoryReport> {
        let rss = resident_bytes()?;
        let first = match self.first.compare_exchange(0, rss, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => rss,
            Err(first) => {
                self.reloads.fetch_add(1, Ordering::AcqRel);
                first
            }
        };
        let last = self.last.swap(rss, Ordering::AcqRel);
        Some(self.report(rss, if last == 0 { rss } else { last }, first))
    }

    /// Reports the RSS now, against the samples taken so far (None before the first load).
    pub fn now(&self) -> Option<MemoryReport> {
        let first = self.first.load(Ordering::Acquire);
        if first == 0 {
            return None;
        }
        let rss = resident_bytes()?;
        Some(self.report(rss, self.last.load(Ordering::Acquire), first))
    }

    fn report(&self, rss: u64, last: u64, first: u64) -> MemoryReport {
        MemoryReport {
            rss_bytes: rss,
            rss_change_bytes: signed_difference(rss, last),
            rss_since_first_load_bytes: signed_difference(rss, first),
            reloads_since_first_load: self.reloads.load(Ordering::Acquire),
        }
    }
}

fn signed_difference(a: u64, b: u64) -> i64 {
    i64::try_from(i128::from(a) - i128::from(b)).unwrap_or(if a > b { i64::MAX } else { i64::MIN })
}

/// The process's resident set size in bytes, from `VmRSS` in `/proc/self/status`; None where
/// there is no such file.
pub(crate) fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_and_grows_with_touched_heap() {
        let before = resident_bytes().expect("Linux has /proc/self/status");
        let held = vec![0x5Au8; 64 << 20];
        let after = resident_bytes().unwrap();
        assert!(after >= before + (48 << 20), "{before} -> {after}");
        drop(held);
    }

    #[test]
    fn samples_are_counted_from_the_first_load() {
        let track = MemoryTrack::default();
        assert_eq!(track.now(), None, "nothing before the first load");
        let first = track.after_reload().unwrap();
        assert_eq!(
            (first.rss_change_bytes, first.rss_since_first_load_bytes, first.reloads_since_first_load),
            (0, 0, 0)
        );
        let second = track.after_reload().unwrap();
        assert_eq!(second.reloads_since_first_load, 1);
        assert_eq!(second.rss_since_first_load_bytes, signed_difference(second.rss_bytes, first.rss_bytes));
        assert_eq!(signed_difference(1, 3), -2);
        let shown = MemoryReport {
            rss_bytes: 3 << 20,
            rss_change_bytes: -(1 << 19),
            rss_since_first_load_bytes: 1 << 20,
            reloads_since_first_load: 1,
        }
        .to_string();
        assert_eq!(shown, "RSS 3.0 MiB (-0.5 MiB since the last reload, +1.0 MiB since the first load, over 1 reload)");
    }
}
