//! Durable bindings: the location table survives restarts and crashes (issue 6), on local disk,
//! with no external service.
//!
//! Each worker's shard has a journal of its changes, written behind: the worker appends encoded
//! records of its [`Event`](crate::location::Event)s to an in-memory buffer ([`Journal::record`],
//! no syscall, no allocation once buffers are recycled) and hands full or old buffers to one
//! writer thread over a bounded queue ([`Journal::tick`]). The writer checksums, writes, and
//! fsyncs at most once per half window (group commit): a change reaches disk within the durability
//! window ([`Config::window_ms`], default 1 s). The worker never waits for the disk.
//!
//! Snapshots keep the journal from growing: when a shard's journal passes twice its last
//! snapshot (at least [`Config::compact_min_bytes`]), the worker starts a new journal and scans
//! its shard into a snapshot in steps of [`Config::snapshot_slots`] record slots per tick
//! (a bounded stall), while changes keep going to the new journal. The snapshot is fuzzy (a
//! binding changed during the scan may appear in either state); recovery replays the new journal
//! over it, and every record is idempotent by binding identity, so the result is exact.
//!
//! Start-up: [`load`] reads the newest complete generation, keeps every intact record (a
//! checksum on each, resync after damage), replays snapshot then journals, drops what expired
//! meanwhile, and splits the bindings by the new shard count with [`shard_of`]. [`start`] writes
//! them as a new generation for that shard count, then deletes the old files, then starts the
//! writer: a changed worker count keeps every binding, and old files never come back.
//!
//! On-disk layout in the data directory (`G` generation, `S` shard, `C` compaction):
//!
//! ```text
//! gG.gen           marker: generation G is complete and has N shards (one record)
//! gG-sS-cC.snap    shard S's table when compaction C began (upsert records)
//! gG-sS-cC.log     shard S's changes from compaction C on (upsert and remove records)
//! *.tmp            being written; ignored and deleted at start-up
//! ```
//!
//! Recovery of shard S = its newest `.snap`, then every `.log` of that compaction or later, in
//! order. The record format is in [`record`].
//!
//! Errors: a failed journal write or fsync leaves a gap that could bring a removed binding back,
//! so the writer deletes that shard's files (snapshot first) and asks the worker for a fresh
//! snapshot, retried with backoff until the disk takes it. The same happens when the disk is so
//! slow that a shard's pending writes pass [`Config::pending_limit`]: the worker drops them
//! rather than grow or block. So with a broken disk the server keeps serving from memory, counts
//! and logs the error ([`Stats`]), and the shard's bindings are not durable until the disk works
//! again: a crash meanwhile loses that shard's bindings (reported at the next start), but never
//! brings back a removed one. The exception is a disk that refuses even to delete a file: then
//! the old state stays and is loaded.
//!
//! # Wiring
//!
//! ```
//! use sipreg::location::Shard;
//! use sipreg::persist;
//!
//! # let dir = std::env::temp_dir().join(format!("sipreg-doc-{}", std::process::id()));
//! let workers = 2;
//! let now = 1_800_000_000_000; // io::now_ms()
//! // Start-up, before opening sockets: read, then rewrite for this worker count.
//! let loaded = persist::load(&dir, now, workers)?;
//! eprintln!("sipreg: persist: {}", loaded.report); // a warning if loaded.report.has_damage()
//! let (persist, mut journals) = persist::start(&dir, &loaded, persist::Config::default())?;
//! let mut shards: Vec<Shard> = (0..workers).map(|_| Shard::new()).collect();
//! for (shard, bindings) in shards.iter_mut().zip(loaded.shards) {
//!     for (aor, binding) in bindings {
//!         shard.restore(&aor, binding, now)?;
//!     }
//! }
//! // Each worker owns shards[i] and journals[i] (requests for an AOR go to worker
//! // persist::shard_of(aor, workers)). Its loop, after every request and expiry:
//! for (shard, journal) in shards.iter_mut().zip(journals.iter_mut()) {
//!     shard.expire(now);
//!     while let Some(event) = shard.poll_event() {
//!         journal.record(&event, now);
//!     }
//!     journal.tick(shard, now);
//!     // poll timeout: no later than journal.next_deadline() nor shard.next_deadline()
//! }
//! // Clean shutdown: each worker closes its journal, then the main thread waits for the disk.
//! for (shard, journal) in shards.iter().zip(journals) {
//!     journal.close(shard, now);
//! }
//! let stats = persist.stats().clone(); // expose: counters, healthy(), last_error()
//! persist.finish();
//! assert!(stats.healthy());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What this module does not do: read the clock (the caller passes `now_ms`, milliseconds since
//! the Unix epoch, the clock of bindings' `expires_at`), choose the data directory, or log
//! anywhere but standard error.
#![allow(clippy::disallowed_methods)] // files, the writer thread and its Instant clock live here, by design

mod journal;
mod load;
pub mod record;
mod writer;

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub use journal::Journal;
pub use load::{FileReport, Loaded, Report, load};
pub use writer::{Persist, start};

/// Tuning. The defaults suit a carrier registrar on one local disk.
#[derive(Clone, Debug)]
pub struct Config {
    /// The durability window: a change acknowledged at `t` is on disk by `t + window_ms`
    /// (the worker hands its buffer over within half of it, the writer fsyncs within the other
    /// half). After kill -9, at most the changes of the last window are lost.
    pub window_ms: u64,
    /// A worker hands its buffer over once it holds this many bytes, before the window.
    pub buffer_bytes: usize,
    /// Bytes a shard may hold waiting for the writer before it gives up on the journal and
    /// re-snapshots later (see the module docs).
    pub pending_limit: usize,
    /// Record slots a worker encodes into a snapshot per [`Journal::tick`]: bounds the stall.
    pub snapshot_slots: usize,
    /// A shard's journal is compacted once it exceeds this and twice the last snapshot.
    pub compact_min_bytes: u64,
    /// Wait before a snapshot after a failure is retried; doubles with each failure in a row, up
    /// to 32 times this.
    pub retry_ms: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            window_ms: 1000,
            buffer_bytes: 64 * 1024,
            pending_limit: 64 * 1024 * 1024,
            snapshot_slots: 2048,
            compact_min_bytes: 64 * 1024 * 1024,
            retry_ms: 1000,
        }
    }
}

/// Takes the data directory for this process: an exclusive lock on `DIR/lock`, held as long as
/// the returned file is open. A second server on the same directory would interleave journals
/// and undo each other's removals; it is refused instead.
pub fn lock(dir: &std::path::Path) -> std::io::Result<std::fs::File> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            format!(
                "{} is locked: another sipreg uses this data directory",
                path.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The shard of an AOR among `shards`: [`location::shard_of`](crate::location::shard_of), which
/// the workers route by.
pub fn shard_of(aor: &[u8], shards: usize) -> usize {
    crate::location::shard_of(aor, shards)
}

/// Counters and health for the server to expose; shared by the writer and the journals.
/// Counters are cumulative since start.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events recorded by all journals.
    pub events: AtomicU64,
    /// Bytes of records handed to the writer (journal and snapshot).
    pub bytes_queued: AtomicU64,
    /// Bytes written to files.
    pub bytes_written: AtomicU64,
    /// fsync calls of journal files (one per group commit per file).
    pub syncs: AtomicU64,
    /// Snapshots completed (renamed into place).
    pub snapshots: AtomicU64,
    /// Write, fsync, rename or create failures.
    pub write_errors: AtomicU64,
    /// Times a shard gave up its journal because the writer was too far behind.
    pub overflows: AtomicU64,
    /// Events not journaled because their shard was waiting for a fresh snapshot.
    pub events_dropped: AtomicU64,
    /// Shards whose on-disk state is not current (an error or overflow, snapshot pending).
    pub shards_not_durable: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Stats {
    /// The most recent disk error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// True while every shard's state is on disk or on its way (no unresolved error).
    pub fn healthy(&self) -> bool {
        self.shards_not_durable.load(Ordering::Relaxed) == 0
    }

    fn error(&self, what: &str, err: &std::io::Error) {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
        let text = format!("{what}: {err}");
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(text);
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        write!(
            f,
            "events {} queued {} B written {} B syncs {} snapshots {} write errors {} \
             overflows {} dropped {} shards not durable {}",
            n(&self.events),
            n(&self.bytes_queued),
            n(&self.bytes_written),
            n(&self.syncs),
            n(&self.snapshots),
            n(&self.write_errors),
            n(&self.overflows),
            n(&self.events_dropped),
            n(&self.shards_not_durable),
        )?;
        if let Some(e) = self.last_error() {
            write!(f, " last error: {e}")?;
        }
        Ok(())
    }
}

/// A file name of the data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileName {
    Generation {
        g: u64,
    },
    Snapshot {
        g: u64,
        s: usize,
        c: u64,
    },
    Log {
        g: u64,
        s: usize,
        c: u64,
    },
    /// A `.tmp` of any of them.
    Temporary {
        g: u64,
    },
}

impl FileName {
    fn parse(name: &str) -> Option<FileName> {
        if let Some(base) = name.strip_suffix(".tmp") {
            let g = match FileName::parse(base)? {
                FileName::Generation { g }
                | FileName::Snapshot { g, .. }
                | FileName::Log { g, .. }
                | FileName::Temporary { g } => g,
            };
            return Some(FileName::Temporary { g });
        }
        let num = |s: &str, p: char| s.strip_prefix(p)?.parse::<u64>().ok();
        if let Some(base) = name.strip_suffix(".gen") {
            return Some(FileName::Generation { g: num(base, 'g')? });
        }
        let (base, snap) = match (name.strip_suffix(".snap"), name.strip_suffix(".log")) {
            (Some(b), _) => (b, true),
            (_, Some(b)) => (b, false),
            _ => return None,
        };
        let mut parts = base.split('-');
        let g = num(parts.next()?, 'g')?;
        let s = usize::try_from(num(parts.next()?, 's')?).ok()?;
        let c = num(parts.next()?, 'c')?;
        if parts.next().is_some() {
            return None;
        }
        Some(if snap {
            FileName::Snapshot { g, s, c }
        } else {
            FileName::Log { g, s, c }
        })
    }

    fn generation(g: u64) -> String {
        format!("g{g:08}.gen")
    }

    fn snapshot(g: u64, s: usize, c: u64) -> String {
        format!("g{g:08}-s{s:04}-c{c:08}.snap")
    }

    fn log(g: u64, s: usize, c: u64) -> String {
        format!("g{g:08}-s{s:04}-c{c:08}.log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_of_is_fnv1a_and_stable() {
        // FNV-1a 64 test vectors: "" and "a".
        assert_eq!(
            shard_of(b"", usize::MAX),
            0xcbf2_9ce4_8422_2325 % usize::MAX
        );
        assert_eq!(
            shard_of(b"a", 1 << 40),
            (0xaf63_dc4c_8601_ec8c_u64 % (1 << 40)) as usize
        );
        assert_eq!(shard_of(b"sip:alice@example.com", 1), 0);
        assert_eq!(shard_of(b"sip:alice@example.com", 0), 0);
        let spread: std::collections::BTreeSet<_> = (0..100)
            .map(|i| shard_of(format!("sip:u{i}@example.com").as_bytes(), 4))
            .collect();
        assert_eq!(spread.len(), 4);
    }

    #[test]
    fn file_names_round_trip() {
        let cases = [
            (FileName::generation(3), FileName::Generation { g: 3 }),
            (
                FileName::snapshot(3, 1, 7),
                FileName::Snapshot { g: 3, s: 1, c: 7 },
            ),
            (FileName::log(12, 0, 0), FileName::Log { g: 12, s: 0, c: 0 }),
            (
                FileName::log(12, 0, 0) + ".tmp",
                FileName::Temporary { g: 12 },
            ),
        ];
        for (name, want) in cases {
            assert_eq!(FileName::parse(&name), Some(want), "{name}");
        }
        for other in [
            "users",
            "g1.gen.bak",
            "g1-s1.log",
            "gx.gen",
            "g1-s1-c1-x.log",
            ".tmp",
        ] {
            assert_eq!(FileName::parse(other), None, "{other}");
        }
    }
}
