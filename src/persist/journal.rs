//! The worker's side: records events into a buffer, hands buffers to the writer, drives
//! snapshots in bounded steps. Never blocks and never waits for the disk.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use super::record::{self, KIND_REMOVE, KIND_UPSERT};
use super::writer::{Msg, ShardShared};
use super::{Config, Stats};
use crate::location::{Event, Shard};

/// Snapshot chunks a shard keeps queued for the writer at most: a journal buffer waits behind
/// no more than this many (a few hundred KiB each).
const MAX_CHUNKS_IN_FLIGHT: usize = 4;

/// Room beyond `buffer_bytes` in a new buffer: more than a typical record (200 bytes to a few
/// KiB).
const SLACK: usize = 16 * 1024;

/// Bytes reserved per record slot in a snapshot chunk: one binding of typical size.
const SLOT_BYTES: usize = 256;

/// The journal of one shard, owned by the worker that owns the shard.
///
/// After each request (and each [`Shard::expire`]), pass every event from
/// [`Shard::poll_event`] to [`Journal::record`]; then call [`Journal::tick`] and make the
/// worker's poll timeout no later than [`Journal::next_deadline`]. At shutdown call [`Journal::close`] (it hands over everything it holds,
/// waiting for room in the queue), then [`Persist::finish`](super::Persist::finish). Dropping it without `close` hands
/// over what is buffered but abandons a snapshot in progress.
pub struct Journal {
    shard: usize,
    config: Config,
    tx: SyncSender<Msg>,
    recycled: Receiver<Vec<u8>>,
    shared: Arc<ShardShared>,
    stats: Arc<Stats>,
    /// Records not yet handed over, and when the first of them was recorded.
    buf: Vec<u8>,
    buf_since: u64,
    /// Handed over but not accepted by the queue yet (the writer is behind), in order.
    pending: VecDeque<Msg>,
    pending_bytes: usize,
    /// The compaction the journal is writing.
    compaction: u64,
    /// The scan position while a snapshot is being taken.
    snapshot: Option<usize>,
    snapshot_len: u64,
    /// Size of the last snapshot, and journal bytes since it began.
    last_snapshot_len: u64,
    journal_len: u64,
    /// Events are not journaled: the last records were dropped and only a snapshot can
    /// restore a loadable state.
    suspended: bool,
    /// When to start a snapshot that the writer asked for (retry with backoff).
    snapshot_due: Option<u64>,
    failures: u32,
    snapshots_seen: u64,
    last_now: u64,
    /// Counters not yet added to `stats` (published every 100 ms: no shared cache line per event).
    unpublished: Unpublished,
    published_at: u64,
    /// Shutting down: sends wait for room.
    blocking: bool,
}

#[derive(Debug, Default)]
struct Unpublished {
    events: u64,
    bytes: u64,
    dropped: u64,
    overflows: u64,
}

impl Journal {
    pub(super) fn new(
        shard: usize,
        config: Config,
        tx: SyncSender<Msg>,
        recycled: Receiver<Vec<u8>>,
        shared: Arc<ShardShared>,
        stats: Arc<Stats>,
        last_snapshot_len: u64,
    ) -> Journal {
        Journal {
            shard,
            buf: Vec::with_capacity(config.buffer_bytes + SLACK),
            config,
            tx,
            recycled,
            shared,
            stats,
            buf_since: 0,
            pending: VecDeque::new(),
            pending_bytes: 0,
            compaction: 0,
            snapshot: None,
            snapshot_len: 0,
            last_snapshot_len,
            journal_len: 0,
            suspended: false,
            snapshot_due: None,
            failures: 0,
            snapshots_seen: 0,
            last_now: 0,
            unpublished: Unpublished::default(),
            published_at: 0,
            blocking: false,
        }
    }

    /// The shard this journal belongs to.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Records one change of the shard: a few copies into a buffer, no syscall, no allocation
    /// in steady state. A refresh that changed the binding's identity (contact, instance or
    /// reg-id) is recorded as the removal of the old binding and the addition of the new one.
    pub fn record(&mut self, event: &Event, now_ms: u64) {
        self.last_now = now_ms;
        if self.suspended {
            self.unpublished.dropped += 1;
            return;
        }
        if self.buf.is_empty() {
            self.buf_since = now_ms;
        }
        let before = self.buf.len();
        match event {
            Event::Added { aor, binding } => {
                record::push_binding(&mut self.buf, KIND_UPSERT, aor, binding);
            }
            Event::Refreshed { aor, old, new } => {
                if !old.same_identity(new) {
                    record::push_binding(&mut self.buf, KIND_REMOVE, aor, old);
                }
                record::push_binding(&mut self.buf, KIND_UPSERT, aor, new);
            }
            Event::Removed { aor, binding } | Event::Expired { aor, binding } => {
                record::push_binding(&mut self.buf, KIND_REMOVE, aor, binding);
            }
        }
        self.journal_len += (self.buf.len() - before) as u64;
        self.unpublished.events += 1;
        if self.buf.len() >= self.config.buffer_bytes {
            self.hand_over(now_ms);
        }
    }

    /// Housekeeping, cheap when there is nothing to do: hands over a buffer older than half the
    /// window, retries what the queue refused, takes a snapshot step (at most
    /// [`Config::snapshot_slots`] record slots of `shard`) when one is in progress or due.
    /// `shard` must be the shard whose events this journal records.
    pub fn tick(&mut self, shard: &Shard, now_ms: u64) {
        self.last_now = now_ms;
        self.flush_pending();
        if self.shared.resnapshot.swap(false, Ordering::AcqRel) {
            // The writer failed and dropped the snapshot in progress, if any.
            self.snapshot = None;
            self.failures = self.failures.saturating_add(1);
            self.snapshot_due = Some(now_ms + self.backoff());
        }
        let done = self.shared.snapshots.load(Ordering::Acquire);
        if done != self.snapshots_seen {
            self.snapshots_seen = done;
            self.failures = 0;
        }
        if !self.buf.is_empty() && now_ms >= self.buf_since + self.config.window_ms / 2 {
            self.hand_over(now_ms);
        }
        if self.snapshot.is_none() {
            let compact = self.journal_len
                > self
                    .config
                    .compact_min_bytes
                    .max(2 * self.last_snapshot_len);
            if compact || self.snapshot_due.is_some_and(|t| now_ms >= t) {
                self.begin_snapshot(now_ms);
            }
        }
        if self.pending.is_empty() {
            self.snapshot_step(shard, now_ms);
        }
        if now_ms >= self.published_at + 100 {
            self.publish(now_ms);
        }
    }

    /// Starts a snapshot at the next [`Journal::tick`] (unless one is in progress), for an
    /// operator's request or a measurement; compaction otherwise starts by itself.
    pub fn snapshot_now(&mut self) {
        if self.snapshot.is_none() {
            self.snapshot_due = Some(0);
        }
    }

    /// When [`Journal::tick`] next has work, in `now_ms` milliseconds: the hand-over of the
    /// buffer, a queue retry, the next snapshot step or retry. `None`: nothing pending.
    pub fn next_deadline(&self) -> Option<u64> {
        let mut at: Option<u64> = None;
        let mut at_most = |t: u64| at = Some(at.map_or(t, |a| a.min(t)));
        if !self.buf.is_empty() {
            at_most(self.buf_since + self.config.window_ms / 2);
        }
        if self.snapshot.is_some() && self.pending.is_empty() {
            let in_flight = self.shared.chunks_in_flight.load(Ordering::Acquire);
            at_most(if in_flight < MAX_CHUNKS_IN_FLIGHT {
                self.last_now
            } else {
                self.last_now + 1
            });
        }
        if !self.pending.is_empty() {
            at_most(self.last_now + 10);
        }
        if let Some(t) = self.snapshot_due {
            at_most(t);
        }
        at
    }

    /// Waits up to `timeout` until the writer has handled everything this journal handed over:
    /// records written to their files, snapshots renamed into place, superseded files deleted
    /// (fsync may still be due). What is still buffered here is not covered: tick until
    /// [`Journal::next_deadline`] is `None` first. False when something is still pending here,
    /// the writer is gone, or the time ran out.
    pub fn wait_handled(&self, timeout: std::time::Duration) -> bool {
        if !self.pending.is_empty() || !self.buf.is_empty() {
            return false;
        }
        let (done, handled) = std::sync::mpsc::channel();
        // Blocks while the queue is full; the writer is draining it.
        self.tx.send(Msg::Barrier { done }).is_ok() && handled.recv_timeout(timeout).is_ok()
    }

    /// The clean shutdown of this shard's journal: hands everything over, waiting for room in
    /// the queue. If the shard's disk state is not current (after an error or an overflow) or a
    /// snapshot is in progress, first writes a whole snapshot of `shard`, so that a clean
    /// shutdown loses nothing when the disk works. Then [`Persist::finish`](super::Persist::finish).
    pub fn close(mut self, shard: &Shard, now_ms: u64) {
        self.last_now = now_ms;
        self.blocking = true;
        self.flush_pending();
        let resnapshot = self.shared.resnapshot.swap(false, Ordering::AcqRel);
        if resnapshot || self.suspended || self.snapshot_due.is_some() {
            self.snapshot = None;
            self.begin_snapshot(now_ms);
        }
        while self.snapshot.is_some() {
            self.snapshot_step(shard, now_ms);
        }
        // Drop hands over the buffer.
    }

    /// Encodes the next slots of the snapshot in progress, if any, and sends them; sends the
    /// end of the snapshot after the last.
    fn snapshot_step(&mut self, shard: &Shard, now_ms: u64) {
        let Some(cursor) = self.snapshot else {
            return;
        };
        if !self.blocking
            && self.shared.chunks_in_flight.load(Ordering::Acquire) >= MAX_CHUNKS_IN_FLIGHT
        {
            return;
        }
        let mut chunk = self.fresh_buffer();
        chunk.reserve(self.config.snapshot_slots * SLOT_BYTES);
        let next = shard.scan(cursor, self.config.snapshot_slots, now_ms, |aor, b| {
            record::push_binding(&mut chunk, KIND_UPSERT, aor, b);
        });
        self.snapshot_len += chunk.len() as u64;
        self.shared.chunks_in_flight.fetch_add(1, Ordering::AcqRel);
        self.send(
            Msg::SnapChunk {
                shard: self.shard,
                buf: chunk,
            },
            now_ms,
        );
        // `send` may have given up on the snapshot (overflow).
        if self.snapshot.is_some() {
            self.snapshot = next;
            if next.is_none() {
                self.last_snapshot_len = self.snapshot_len;
                let c = self.compaction;
                self.send(
                    Msg::SnapEnd {
                        shard: self.shard,
                        c,
                    },
                    now_ms,
                );
            }
        }
    }

    fn backoff(&self) -> u64 {
        self.config.retry_ms << self.failures.saturating_sub(1).min(5)
    }

    /// A buffer from the writer's returns, or a new one with room for a hand-over's worth and
    /// the record that crosses the line, so that appending never reallocates (a reallocation
    /// copies the buffer and, past malloc's mmap threshold, faults in fresh pages).
    fn fresh_buffer(&mut self) -> Vec<u8> {
        self.recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.config.buffer_bytes + SLACK))
    }

    fn hand_over(&mut self, now_ms: u64) {
        if self.buf.is_empty() {
            return;
        }
        let fresh = self.fresh_buffer();
        let buf = core::mem::replace(&mut self.buf, fresh);
        self.send(
            Msg::Journal {
                shard: self.shard,
                buf,
            },
            now_ms,
        );
    }

    fn begin_snapshot(&mut self, now_ms: u64) {
        // Records so far belong to the old compaction's journal.
        self.hand_over(now_ms);
        self.compaction += 1;
        self.suspended = false;
        self.snapshot = Some(0);
        self.snapshot_due = None;
        self.snapshot_len = 0;
        self.journal_len = 0;
        let c = self.compaction;
        self.send(
            Msg::SnapBegin {
                shard: self.shard,
                c,
            },
            now_ms,
        );
    }

    fn send(&mut self, msg: Msg, now_ms: u64) {
        self.unpublished.bytes += msg.bytes() as u64;
        if self.blocking {
            let _ = self.tx.send(msg);
            return;
        }
        if self.pending.is_empty() {
            match self.tx.try_send(msg) {
                Ok(()) => return,
                Err(TrySendError::Full(msg)) => self.queue(msg),
                Err(TrySendError::Disconnected(_)) => {} // the writer is gone: nothing to do
            }
        } else {
            self.queue(msg);
        }
        if self.pending_bytes > self.config.pending_limit {
            self.overflow(now_ms);
        }
    }

    fn queue(&mut self, msg: Msg) {
        self.pending_bytes += msg.bytes();
        self.pending.push_back(msg);
    }

    fn flush_pending(&mut self) {
        if self.blocking {
            for msg in self.pending.drain(..) {
                let _ = self.tx.send(msg);
            }
            self.pending_bytes = 0;
            return;
        }
        while let Some(msg) = self.pending.pop_front() {
            let bytes = msg.bytes();
            match self.tx.try_send(msg) {
                Ok(()) => self.pending_bytes -= bytes,
                Err(TrySendError::Full(msg)) => {
                    self.pending.push_front(msg);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => self.pending_bytes -= bytes,
            }
        }
    }

    /// The writer is too far behind: drop what waits (bounded memory), tell the writer the
    /// journal has a gap, and stop journaling until a snapshot can be taken.
    fn overflow(&mut self, now_ms: u64) {
        let chunks = self
            .pending
            .iter()
            .filter(|m| matches!(m, Msg::SnapChunk { .. }))
            .count();
        self.shared
            .chunks_in_flight
            .fetch_sub(chunks, Ordering::AcqRel);
        self.pending.clear();
        self.pending_bytes = 0;
        self.buf.clear();
        self.snapshot = None;
        self.suspended = true;
        self.shared.gap.store(true, Ordering::Release);
        self.unpublished.overflows += 1;
        self.failures = self.failures.saturating_add(1);
        self.snapshot_due = Some(now_ms + self.backoff());
    }

    fn publish(&mut self, now_ms: u64) {
        self.published_at = now_ms;
        let u = core::mem::take(&mut self.unpublished);
        let add = |c: &std::sync::atomic::AtomicU64, n: u64| {
            if n > 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&self.stats.events, u.events);
        add(&self.stats.bytes_queued, u.bytes);
        add(&self.stats.events_dropped, u.dropped);
        add(&self.stats.overflows, u.overflows);
    }
}

impl core::fmt::Debug for Journal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Journal")
            .field("shard", &self.shard)
            .field("buffered", &self.buf.len())
            .field("pending_bytes", &self.pending_bytes)
            .field("compaction", &self.compaction)
            .field("snapshot", &self.snapshot)
            .field("suspended", &self.suspended)
            .finish()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let now = self.last_now;
        self.blocking = true;
        self.flush_pending();
        self.hand_over(now);
        if self.snapshot.take().is_some() {
            let _ = self.tx.send(Msg::SnapAbort { shard: self.shard });
        }
        self.publish(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::{Aor, Registration};
    use crate::sip::{Transport, Uri};
    use std::sync::mpsc;

    fn shard_with(n: usize) -> (Shard, Vec<Event>) {
        let mut shard = Shard::new();
        let mut events = Vec::new();
        for i in 0..n {
            let raw = format!("sip:u{i}@example.com");
            let uri = Uri::parse(raw.as_bytes()).expect("parses");
            let aor = Aor::from_uri(uri.sip().expect("sip"));
            let contact = format!("sip:u{i}@192.0.2.1");
            let reg = Registration {
                contact: contact.as_bytes(),
                params: b"",
                path: &[],
                instance: None,
                reg_id: None,
                q: 1000,
                expires_at: 10_000_000,
                call_id: b"c",
                cseq: 1,
                source: "192.0.2.1:5060".parse().expect("address"),
                transport: Transport::Udp,
                connection: None,
            };
            shard.insert(&aor, &reg, 0).expect("insert");
            events.extend(core::iter::from_fn(|| shard.poll_event()));
        }
        (shard, events)
    }

    /// A writer that takes nothing: the queue (one message) fills, the pending bytes pass the
    /// limit, and the journal gives up, flags the gap, drops events, and snapshots after the
    /// backoff once the queue has room again.
    #[test]
    fn a_stuck_writer_never_blocks_the_worker() {
        let (tx, rx) = mpsc::sync_channel(1);
        let (_recycle_tx, recycle_rx) = mpsc::sync_channel(1);
        let shared = Arc::new(ShardShared::default());
        let stats = Arc::new(Stats::default());
        let config = Config {
            buffer_bytes: 256,
            pending_limit: 4096,
            snapshot_slots: 8,
            retry_ms: 100,
            ..Config::default()
        };
        let mut j = Journal::new(
            0,
            config,
            tx,
            recycle_rx,
            Arc::clone(&shared),
            Arc::clone(&stats),
            0,
        );
        let (shard, events) = shard_with(200);
        for ev in &events {
            j.record(ev, 1_000);
        }
        assert!(j.suspended, "{j:?}");
        assert!(shared.gap.load(Ordering::Acquire));
        assert!(j.pending_bytes <= 4096 + 512);
        assert!(j.unpublished.dropped > 0);
        // Within the backoff nothing starts; after it, a snapshot begins once the queue drains.
        j.tick(&shard, 1_050);
        assert!(j.snapshot.is_none());
        assert_eq!(j.next_deadline(), Some(1_100));
        while rx.try_recv().is_ok() {}
        j.tick(&shard, 1_100);
        assert!(!j.suspended);
        assert!(j.snapshot.is_some() || j.compaction == 1);
        let mut begun = false;
        for _ in 0..1000 {
            while let Ok(msg) = rx.try_recv() {
                begun |= matches!(msg, Msg::SnapBegin { c: 1, .. });
                if let Msg::SnapChunk { .. } = msg {
                    shared.chunks_in_flight.fetch_sub(1, Ordering::AcqRel); // as the writer does
                }
                if let Msg::SnapEnd { c, .. } = msg {
                    assert_eq!(c, 1);
                    assert!(begun);
                    j.tick(&shard, 1_200);
                    j.publish(1_300);
                    assert_eq!(stats.overflows.load(Ordering::Relaxed), 1);
                    return;
                }
            }
            j.tick(&shard, 1_100);
        }
        panic!("the snapshot never ended: {j:?}");
    }

    /// The gap flag reaches the real writer: it deletes the shard's files, reports the shard not
    /// durable, and the next snapshot makes it durable again.
    #[test]
    fn a_gap_invalidates_the_files_until_the_next_snapshot() {
        let dir = std::env::temp_dir().join(format!("sipreg-journal-gap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let loaded = super::super::load(&dir, 0, 1).expect("load");
        let config = Config {
            window_ms: 20,
            retry_ms: 50,
            ..Config::default()
        };
        let (p, mut journals) = super::super::start(&dir, &loaded, config).expect("start");
        let mut j = journals.pop().expect("one");
        let (shard, events) = shard_with(10);
        for ev in &events {
            j.record(ev, 0);
        }
        j.tick(&shard, 100);
        j.shared.gap.store(true, Ordering::Release);
        let snaps = |dir: &std::path::Path| {
            std::fs::read_dir(dir)
                .expect("list")
                .filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".snap"))
                })
                .count()
        };
        let stats = Arc::clone(p.stats());
        let mut now = 100;
        let mut saw_invalid = false;
        for _ in 0..500 {
            std::thread::sleep(std::time::Duration::from_millis(2));
            // Deleted, snapshot first, while the shard waits for its next snapshot.
            saw_invalid |= !stats.healthy() && snaps(&dir) == 0;
            now += 5;
            j.tick(&shard, now);
            if saw_invalid && stats.healthy() {
                break;
            }
        }
        assert!(saw_invalid && stats.healthy(), "{stats}");
        assert_eq!(snaps(&dir), 1);
        j.close(&shard, now);
        p.finish();
        let back = super::super::load(&dir, 0, 1).expect("load");
        assert_eq!(back.report.bindings, 10, "{}", back.report);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
