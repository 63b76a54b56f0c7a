//! Nonce-count replay protection in a fixed amount of memory.
//!
//! RFC 7616 3.4: "The purpose of this parameter is to allow the server to detect request
//! replays by maintaining its own copy of this count -- if the same nc value is seen twice,
//! then the request is a replay."
//!
//! What it does: remembers, per nonce, the highest nonce-count accepted, so a client may reuse a
//! nonce with strictly increasing counts (pre-emptive credentials on a refresh) while a repeated
//! or lower count is refused. The table never grows; when it must forget a nonce it raises a
//! watermark instead, and any nonce issued at or before the watermark that is not in the table
//! is answered [`NcVerdict::Unknown`], never `Accept`. The caller answers `Unknown` with a 401
//! `stale=true`; the client retries with a new nonce and the same password, so forgetting costs
//! one round trip and never lets a replay through.
//!
//! What it does not do: verify the nonce (do that first with [`super::nonce::NonceKeys::check`],
//! whose `Fresh { issued, id }` feeds [`NcTracker::observe`]) or the response digest. Call
//! `observe` only for a request whose digest verified, or an attacker could burn a client's
//! nonce-counts without knowing the password.
//!
//! # Memory
//!
//! A set-associative table: buckets of [`WAYS`] entries, each entry a nonce id (u64), its issue
//! time (u64) and the highest nonce-count seen (u32): [`NcTracker::BYTES_PER_ENTRY`] = 20 bytes,
//! stored as one boxed slice allocated once in [`NcTracker::with_capacity`]. The capacity is
//! rounded up to a multiple of 8; 1,048,576 entries take 20 MiB. Size it for the nonces that
//! are used within one nonce lifetime: (challenges answered per second) x (lifetime), with
//! headroom. A full bucket evicts its oldest entry (an expired one if any), so eviction follows
//! issue order closely and the watermark stays near `now - lifetime` as long as the table is big
//! enough; [`NcTracker::evictions`] counts the evictions of live entries, each of which may
//! cost a client a `stale` round trip.

/// Entries per bucket: the ids of one bucket fill one 64-byte cache line.
pub const WAYS: usize = 8;

/// What to do with a request's nonce-count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NcVerdict {
    /// The count is higher than any seen for this nonce: accept (and it is now recorded).
    Accept,
    /// The count was seen before for this nonce, or a higher one was: refuse the request.
    Replay,
    /// The table no longer knows this nonce and cannot rule out a replay: challenge again with
    /// `stale=true`.
    Unknown,
}

/// One bucket, as parallel arrays so a lookup scans eight ids in one cache line.
#[derive(Clone, Copy)]
struct Bucket {
    ids: [u64; WAYS],
    issued: [u64; WAYS],
    /// Highest accepted nonce-count; 0 marks an empty slot (counts start at 1).
    nc: [u32; WAYS],
}

const EMPTY: Bucket = Bucket {
    ids: [0; WAYS],
    issued: [0; WAYS],
    nc: [0; WAYS],
};

/// Per-nonce highest nonce-count, in a fixed table.
pub struct NcTracker {
    buckets: Box<[Bucket]>,
    lifetime: u64,
    watermark: u64,
    len: usize,
    evictions: u64,
}

impl NcTracker {
    /// Bytes of table per entry.
    pub const BYTES_PER_ENTRY: usize = size_of::<Bucket>() / WAYS;

    /// A table for at least `entries` nonces (at least one bucket). `lifetime` is the nonce
    /// lifetime given to [`super::nonce::NonceKeys::check`]: entries older than that are free
    /// to reuse. Allocates once, here.
    pub fn with_capacity(entries: usize, lifetime: u64) -> NcTracker {
        let buckets = entries.div_ceil(WAYS).max(1);
        NcTracker {
            buckets: vec![EMPTY; buckets].into_boxed_slice(),
            lifetime,
            watermark: 0,
            len: 0,
            evictions: 0,
        }
    }

    /// Forgets every nonce issued at or before `t`: they answer `Unknown` from now on unless in
    /// the table. Call it at start-up with the start time when the nonce keys survive a restart,
    /// since the empty table knows nothing of the nonces issued before.
    pub fn raise_watermark(&mut self, t: u64) {
        self.watermark = self.watermark.max(t);
    }

    /// Judges nonce-count `nc` for the nonce `nonce_id` issued at `issued` (both from
    /// [`super::nonce::NonceCheck::Fresh`]), at `now`, and records it when accepted.
    ///
    /// A nonce the table has not seen is accepted only with `nc == 1` and only if it was issued
    /// after the watermark; a first sight with a higher count is `Unknown`, because its earlier
    /// counts may have been accepted and then forgotten (or went to another node).
    pub fn observe(&mut self, nonce_id: u64, issued: u64, nc: u32, now: u64) -> NcVerdict {
        let index = self.bucket_index(nonce_id);
        let (watermark, lifetime) = (self.watermark, self.lifetime);
        let Some(bucket) = self.buckets.get_mut(index) else {
            // bucket_index is always below the bucket count; failing closed all the same.
            return NcVerdict::Unknown;
        };
        // Every index below is a slot number `0..WAYS` into the bucket's `[_; WAYS]` arrays.
        let slot = (0..WAYS).find(|&i| bucket.nc[i] != 0 && bucket.ids[i] == nonce_id);
        if let Some(i) = slot {
            // RFC 7616 3.4: "if the same nc value is seen twice, then the request is a replay."
            // A lower one has been seen too, by the client's count, so it is refused alike.
            if nc > bucket.nc[i] {
                bucket.nc[i] = nc;
                return NcVerdict::Accept;
            }
            return NcVerdict::Replay;
        }
        if nc == 0 {
            // Counts start at 00000001; zero was never a valid first use.
            return NcVerdict::Replay;
        }
        if issued <= watermark || nc != 1 {
            return NcVerdict::Unknown;
        }

        // Insert: an empty slot, else the oldest entry (expired ones are the oldest).
        let victim = (0..WAYS)
            .min_by_key(|&i| (bucket.nc[i] != 0, bucket.issued[i]))
            .unwrap_or(0);
        if bucket.nc[victim] == 0 {
            self.len += 1;
        } else {
            let old = bucket.issued[victim];
            // The invariant that makes eviction safe: every nonce ever dropped from the table was
            // issued at or before the watermark, so a nonce after it that is absent is new.
            self.watermark = self.watermark.max(old);
            if old.saturating_add(lifetime) >= now {
                self.evictions += 1;
            }
        }
        bucket.ids[victim] = nonce_id;
        bucket.issued[victim] = issued;
        bucket.nc[victim] = nc;
        NcVerdict::Accept
    }

    /// Nonces issued at or before this time and absent from the table answer `Unknown`.
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    /// Entries in use.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries the table holds (the requested capacity rounded up to a multiple of [`WAYS`]).
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// Bytes allocated for the table.
    pub fn memory_bytes(&self) -> usize {
        self.buckets.len() * size_of::<Bucket>()
    }

    /// Live (unexpired) entries evicted so far: non-zero means the table is too small for the
    /// load, and some clients were sent an extra `stale` challenge.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Multiply-shift onto the bucket range. The ids from nonce tags are already uniform; the
    /// multiply spreads ids a caller makes up some other way (counters) as well.
    fn bucket_index(&self, id: u64) -> usize {
        let mixed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let n = self.buckets.len() as u128;
        usize::try_from((u128::from(mixed) * n) >> 64).unwrap_or(0)
    }
}

impl core::fmt::Debug for NcTracker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NcTracker")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .field("watermark", &self.watermark)
            .field("evictions", &self.evictions)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NcVerdict::{Accept, Replay, Unknown};

    #[test]
    fn memory_is_stated() {
        assert_eq!(NcTracker::BYTES_PER_ENTRY, 20);
        let t = NcTracker::with_capacity(1 << 20, 300);
        assert_eq!(t.capacity(), 1 << 20);
        assert_eq!(t.memory_bytes(), 20 << 20);
        assert_eq!(NcTracker::with_capacity(0, 300).capacity(), WAYS);
        assert_eq!(NcTracker::with_capacity(9, 300).capacity(), 2 * WAYS);
    }

    /// One nonce through a sequence of counts: (nc, verdict).
    #[test]
    fn sequences() {
        let cases: [(&str, &[(u32, NcVerdict)]); 5] = [
            ("counting up", &[(1, Accept), (2, Accept), (3, Accept)]),
            (
                "repeat",
                &[(1, Accept), (2, Accept), (2, Replay), (3, Accept)],
            ),
            (
                "lower",
                &[
                    (1, Accept),
                    (5, Accept),
                    (4, Replay),
                    (1, Replay),
                    (6, Accept),
                ],
            ),
            (
                "gaps are fine once known",
                &[(1, Accept), (10, Accept), (11, Accept)],
            ),
            (
                "first sight above one",
                &[(2, Unknown), (0, Replay), (1, Accept), (1, Replay)],
            ),
        ];
        for (name, steps) in cases {
            let mut t = NcTracker::with_capacity(64, 300);
            for (k, &(nc, want)) in steps.iter().enumerate() {
                assert_eq!(t.observe(0xABCD, 1_000, nc, 1_010), want, "{name} step {k}");
            }
        }
    }

    #[test]
    fn nonces_are_independent() {
        let mut t = NcTracker::with_capacity(64, 300);
        assert_eq!(t.observe(1, 1_000, 1, 1_000), Accept);
        assert_eq!(t.observe(2, 1_000, 1, 1_000), Accept);
        assert_eq!(t.observe(1, 1_000, 2, 1_000), Accept);
        assert_eq!(t.observe(2, 1_000, 2, 1_000), Accept);
        assert_eq!(t.observe(2, 1_000, 2, 1_000), Replay);
        assert_eq!(t.len(), 2);
    }

    /// Fill a one-bucket table past capacity: the evicted nonce can never be accepted again, at
    /// any count, and newer nonces keep working.
    #[test]
    fn eviction_raises_the_watermark() {
        let mut t = NcTracker::with_capacity(WAYS, 300);
        let now = 1_100;
        for id in 0..WAYS as u64 {
            assert_eq!(t.observe(id, 1_000 + id, 1, now), Accept);
        }
        assert_eq!(t.watermark(), 0);
        // The ninth evicts the oldest (id 0, issued 1000), live, so it counts as an eviction.
        assert_eq!(t.observe(100, 1_050, 1, now), Accept);
        assert_eq!(t.watermark(), 1_000);
        assert_eq!(t.evictions(), 1);
        assert_eq!(t.len(), WAYS);
        // Replaying the evicted nonce at its old count, a higher one, or from the start.
        for nc in [1, 2, 99] {
            assert_eq!(t.observe(0, 1_000, nc, now), Unknown, "nc {nc}");
        }
        // Entries still in the table keep their history.
        assert_eq!(t.observe(1, 1_001, 1, now), Replay);
        assert_eq!(t.observe(1, 1_001, 2, now), Accept);
        // A new nonce after the watermark is accepted.
        assert_eq!(t.observe(200, 1_060, 1, now), Accept);
        assert_eq!(t.watermark(), 1_001);
        // Anything issued at or before the watermark and absent is Unknown, even a first use.
        assert_eq!(t.observe(300, 1_001, 1, now), Unknown);
    }

    #[test]
    fn expired_entries_are_reclaimed_without_counting_as_evictions() {
        let mut t = NcTracker::with_capacity(WAYS, 300);
        for id in 0..WAYS as u64 {
            assert_eq!(t.observe(id, 1_000, 1, 1_000), Accept);
        }
        // Much later, all of them have expired: reuse is not an eviction.
        for id in 100..100 + WAYS as u64 {
            assert_eq!(t.observe(id, 2_000, 1, 2_000), Accept);
        }
        assert_eq!(t.evictions(), 0);
        assert_eq!(t.watermark(), 1_000);
        assert_eq!(t.observe(0, 1_000, 2, 2_000), Unknown);
    }

    #[test]
    fn restart_watermark() {
        let mut t = NcTracker::with_capacity(64, 300);
        t.raise_watermark(5_000);
        // A nonce issued before the restart: its history is unknown.
        assert_eq!(t.observe(1, 4_900, 1, 5_001), Unknown);
        assert_eq!(t.observe(2, 5_001, 1, 5_001), Accept);
        t.raise_watermark(10);
        assert_eq!(t.watermark(), 5_000);
    }

    /// Many nonces through a small table: whatever the eviction order, no (nonce, nc) pair is
    /// ever accepted twice.
    #[test]
    fn never_accepts_twice_under_pressure() {
        let mut t = NcTracker::with_capacity(32, 300);
        let mut accepted = std::collections::HashSet::new();
        let mut x = 0x1234_5678_u64;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = x % 200;
            let issued = id * 10;
            let nc = u32::try_from(x >> 60).unwrap() + 1;
            if t.observe(id, issued, nc, issued + 5) == Accept {
                assert!(
                    accepted.insert((id, nc)),
                    "step {step}: ({id}, {nc}) accepted twice"
                );
            }
        }
        assert!(t.len() <= t.capacity());
        assert!(accepted.len() > 200);
    }
}
