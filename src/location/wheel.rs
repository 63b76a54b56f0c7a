//! The expiry timer: a hashed timing wheel of one-second slots with lazy deletion.
//!
//! The wheel only remembers which binding (record slot, binding key) to look at in which second.
//! It does not know whether that binding still exists or when it now expires: the shard checks
//! each entry when it comes due, drops it if the binding is gone or has a new key, and schedules
//! it again if the binding was refreshed meanwhile. So refresh and removal never touch the wheel,
//! and a binding has one entry whatever the number of refreshes.
//!
//! Cost: [`Wheel::advance`] visits at most `SLOTS` slots however far the clock jumps, plus the
//! entries due; [`Wheel::next_due`] scans a 512-byte bitmap. Neither grows with the number of
//! entries. An expiry further than `SLOTS` seconds away is parked in the last slot of the horizon
//! and rescheduled when that comes due, once per `SLOTS` seconds of its wait.

/// Slots of one second each: 68 minutes, more than the usual registrar max-expires of an hour.
const SLOTS: usize = 4096;
const WORDS: usize = SLOTS / 64;

/// What a timer entry points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Timer {
    /// The record's slot in the shard.
    pub slot: u32,
    /// The binding's key when the entry was scheduled.
    pub key: u32,
}

#[derive(Debug)]
pub(super) struct Wheel {
    slots: Box<[Vec<Timer>]>,
    /// Bit `i` set: slot `i` holds entries.
    occupied: [u64; WORDS],
    /// The first second not yet processed; every entry is due at `cursor` or later.
    cursor: u64,
    len: usize,
}

impl Wheel {
    pub fn new() -> Wheel {
        Wheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            occupied: [0; WORDS],
            cursor: 0,
            len: 0,
        }
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Schedules `timer` to come due at second `due`, or as soon as possible if `due` has passed.
    /// `now_sec` lets an empty wheel start at the current time instead of replaying the past.
    pub fn schedule(&mut self, due: u64, timer: Timer, now_sec: u64) {
        if self.len == 0 {
            self.cursor = self.cursor.max(now_sec);
        }
        let at = due.clamp(self.cursor, self.cursor + (SLOTS as u64 - 1));
        let i = (at % SLOTS as u64) as usize; // < SLOTS
        if let Some(slot) = self.slots.get_mut(i) {
            slot.push(timer);
            self.len += 1;
            self.set(i);
        }
    }

    /// Moves every entry due at or before second `now_sec` into `out` and marks those seconds
    /// processed. Entries come out in due order, each slot in scheduling order.
    pub fn advance(&mut self, now_sec: u64, out: &mut Vec<Timer>) {
        if now_sec < self.cursor {
            return;
        }
        let seconds = (now_sec - self.cursor + 1).min(SLOTS as u64);
        for s in self.cursor..self.cursor + seconds {
            let i = (s % SLOTS as u64) as usize; // < SLOTS
            if self.is_set(i)
                && let Some(slot) = self.slots.get_mut(i)
            {
                self.len -= slot.len();
                // Take the Vec so its memory goes back: a slot is refilled only SLOTS seconds
                // later, and a registration storm must not pin its peak in every slot.
                out.append(&mut core::mem::take(slot));
                self.clear(i);
            }
        }
        self.cursor = now_sec + 1;
    }

    /// The first second that has entries, if any. Entries parked at the horizon or stale make
    /// this earlier than the next real expiry, never later.
    pub fn next_due(&self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let start = (self.cursor % SLOTS as u64) as usize;
        let (word, bit) = (start / 64, start % 64);
        // The start word from `bit` on, the other words in order, then the start word below `bit`.
        let first = self.occupied.get(word).copied().unwrap_or(0) & (!0u64 << bit);
        let mut found = (first != 0).then(|| word * 64 + first.trailing_zeros() as usize);
        for k in 1..=WORDS {
            if found.is_some() {
                break;
            }
            let w = (word + k) % WORDS;
            let mut bits = self.occupied.get(w).copied().unwrap_or(0);
            if k == WORDS {
                bits &= !(!0u64 << bit);
            }
            if bits != 0 {
                found = Some(w * 64 + bits.trailing_zeros() as usize);
            }
        }
        let i = found?;
        let ahead = (i + SLOTS - start) % SLOTS;
        Some(self.cursor + ahead as u64)
    }

    fn is_set(&self, i: usize) -> bool {
        self.occupied
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set(&mut self, i: usize) {
        if let Some(w) = self.occupied.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    fn clear(&mut self, i: usize) {
        if let Some(w) = self.occupied.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(key: u32) -> Timer {
        Timer { slot: 0, key }
    }

    fn advance(w: &mut Wheel, now: u64) -> Vec<u32> {
        let mut out = Vec::new();
        w.advance(now, &mut out);
        out.iter().map(|t| t.key).collect()
    }

    #[test]
    fn entries_come_due_in_their_second() {
        let mut w = Wheel::new();
        w.schedule(10, t(1), 0);
        w.schedule(12, t(2), 0);
        w.schedule(10, t(3), 0);
        assert_eq!(w.len(), 3);
        assert_eq!(w.next_due(), Some(10));
        assert_eq!(advance(&mut w, 9), Vec::<u32>::new());
        assert_eq!(advance(&mut w, 10), [1, 3]);
        assert_eq!(w.next_due(), Some(12));
        assert_eq!(advance(&mut w, 20), [2]);
        assert_eq!(w.next_due(), None);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn past_due_fires_at_the_next_advance() {
        let mut w = Wheel::new();
        w.advance(100, &mut Vec::new());
        w.schedule(50, t(1), 100);
        assert_eq!(w.next_due(), Some(101));
        assert_eq!(advance(&mut w, 101), [1]);
    }

    #[test]
    fn empty_wheel_starts_at_now() {
        let mut w = Wheel::new();
        let now = 1_700_000_000;
        w.schedule(now + 3600, t(1), now);
        assert_eq!(w.next_due(), Some(now + 3600));
        assert_eq!(advance(&mut w, now + 3599), Vec::<u32>::new());
        assert_eq!(advance(&mut w, now + 3600), [1]);
    }

    #[test]
    fn far_expiry_parks_at_the_horizon() {
        let mut w = Wheel::new();
        let far = 3 * SLOTS as u64 + 5;
        w.schedule(far, t(1), 0);
        assert_eq!(w.next_due(), Some(SLOTS as u64 - 1));
        assert_eq!(advance(&mut w, SLOTS as u64 - 1), [1]);
        // The shard reschedules it; it parks again until it is within reach.
        w.schedule(far, t(1), SLOTS as u64 - 1);
        assert_eq!(w.next_due(), Some(2 * SLOTS as u64 - 1));
    }

    #[test]
    fn a_long_clock_jump_visits_each_slot_once() {
        let mut w = Wheel::new();
        for k in 0..SLOTS as u32 {
            w.schedule(u64::from(k) + 1, t(k), 0);
        }
        let mut fired = advance(&mut w, 1_000_000);
        fired.sort_unstable();
        assert_eq!(fired, (0..SLOTS as u32).collect::<Vec<_>>());
        assert_eq!(w.next_due(), None);
        // The cursor moved to the new time.
        w.schedule(1_000_010, t(9), 1_000_000);
        assert_eq!(w.next_due(), Some(1_000_010));
    }

    #[test]
    fn next_due_wraps_around_the_bitmap() {
        let mut w = Wheel::new();
        w.advance(SLOTS as u64 - 3, &mut Vec::new());
        // Cursor near the end of the array: the next due slot is at the start of it.
        w.schedule(SLOTS as u64 + 2, t(1), 0);
        assert_eq!(w.next_due(), Some(SLOTS as u64 + 2));
        // One in the start word below the cursor's bit, i.e. almost a whole turn ahead.
        let mut w = Wheel::new();
        w.advance(40, &mut Vec::new());
        w.schedule(41 + SLOTS as u64 - 3, t(1), 0);
        assert_eq!(w.next_due(), Some(41 + SLOTS as u64 - 3));
    }
}
