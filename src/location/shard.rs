//! The shard: AOR to bindings, expiry, and the queue of changes the caller drains.
//!
//! Layout, chosen for a million AORs of one binding each:
//! - `records`: a slab of `Record { aor, set }`, reused through a free list, so timer entries and
//!   [`BindingId`]s can name a record by a `u32` slot that never moves;
//! - `index`: a SwissTable of `u32` slots hashed by AOR bytes (5 bytes a bucket, not a record);
//! - a record stores its only binding inline and spills to a `Vec` from the second one on;
//! - the bindings of a record are kept in routing order (q descending, then most recently updated
//!   first), so [`Shard::lookup`] is a filtered slice walk with no sorting and no allocation.
//!
//! Expiry is lazy in two ways. Reads filter by `expires_at > now`, so a binding past its time is
//! never returned even before [`Shard::expire`] collects it. And every change to an AOR first
//! collects its expired bindings, so counts and matching see only live ones.
//!
//! The shard does not decide RFC 3261 10.3 policy (Call-ID/CSeq ordering, max contacts, min
//! expires, which contact replaces which): the registrar does, with these primitives.

use core::cell::Cell;
use core::hash::BuildHasher;
use std::collections::VecDeque;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::binding::Spare;
use super::wheel::{Timer, Wheel};
use super::{Aor, Binding, Error, Registration};
use crate::sip::Uri;

/// Names one binding for [`Shard::get`], [`Shard::refresh`] and [`Shard::remove`]. Valid until
/// the binding is removed, expires or is refreshed to an earlier expiry ([`Shard::refresh`]
/// returns the new id); a stale id finds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BindingId {
    slot: u32,
    key: u32,
}

impl BindingId {
    /// The record slot of the binding's AOR (see [`Shard::slot_entries`]).
    pub fn slot(self) -> u32 {
        self.slot
    }

    /// The binding's number within the shard, as [`Binding::key`] gives it.
    pub fn key(self) -> u32 {
        self.key
    }
}

/// A change to the table, for persistence, metrics and subscribers (RFC 3680).
///
/// Events own their data: the binding removed, or a copy of the binding stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Added {
        aor: Aor,
        binding: Binding,
    },
    /// A binding was updated in place; `old` is its state before (its contact may differ, for
    /// instance when an RFC 5626 flow re-registers from a new address).
    Refreshed {
        aor: Aor,
        old: Binding,
        new: Binding,
    },
    /// Removed by the registrar (`expires=0`, `Contact: *`, replaced).
    Removed {
        aor: Aor,
        binding: Binding,
    },
    /// Its time ran out.
    Expired {
        aor: Aor,
        binding: Binding,
    },
}

impl Event {
    pub fn aor(&self) -> &Aor {
        match self {
            Event::Added { aor, .. }
            | Event::Refreshed { aor, .. }
            | Event::Removed { aor, .. }
            | Event::Expired { aor, .. } => aor,
        }
    }

    /// The binding as stored now, or as it was when it went away.
    pub fn binding(&self) -> &Binding {
        match self {
            Event::Added { binding, .. }
            | Event::Removed { binding, .. }
            | Event::Expired { binding, .. } => binding,
            Event::Refreshed { new, .. } => new,
        }
    }
}

/// The bindings of one AOR, in routing order.
#[derive(Debug)]
enum Set {
    One(Binding),
    /// Two or more, or none while a change is in progress.
    Many(Vec<Binding>),
}

impl Set {
    fn as_slice(&self) -> &[Binding] {
        match self {
            Set::One(b) => core::slice::from_ref(b),
            Set::Many(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Binding] {
        match self {
            Set::One(b) => core::slice::from_mut(b),
            Set::Many(v) => v,
        }
    }

    fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    fn position(&self, key: u32) -> Option<usize> {
        self.as_slice().iter().position(|b| b.key == key)
    }

    /// Inserts in routing order: q descending, then most recently updated first; `b` goes before
    /// the bindings that tie with it, since it is the most recent change.
    fn insert(&mut self, b: Binding) {
        let rank = |x: &Binding| (x.q(), x.updated_at());
        let at = self.as_slice().partition_point(|x| rank(x) > rank(&b));
        match self {
            Set::Many(v) if v.is_empty() => *self = Set::One(b),
            Set::Many(v) => v.insert(at, b),
            Set::One(_) => {
                let Set::One(first) = core::mem::replace(self, Set::Many(Vec::new())) else {
                    return;
                };
                let pair = if at == 0 { [b, first] } else { [first, b] };
                *self = Set::Many(Vec::from(pair));
            }
        }
    }

    fn remove(&mut self, pos: usize) -> Option<Binding> {
        match self {
            Set::One(_) if pos == 0 => match core::mem::replace(self, Set::Many(Vec::new())) {
                Set::One(b) => Some(b),
                Set::Many(_) => None,
            },
            Set::One(_) => None,
            Set::Many(v) => {
                if pos >= v.len() {
                    return None;
                }
                let b = v.remove(pos);
                // Back to inline storage: most AORs have one binding, and a Vec costs 24 bytes
                // plus an allocation.
                if v.len() == 1
                    && let Some(last) = v.pop()
                {
                    *self = Set::One(last);
                }
                Some(b)
            }
        }
    }
}

#[derive(Debug)]
struct Record {
    aor: Aor,
    set: Set,
}

#[derive(Debug)]
enum Entry {
    Occupied(Record),
    /// The next free slot, or `NO_SLOT`.
    Vacant(u32),
}

const NO_SLOT: u32 = u32::MAX;

/// The location table of one worker: AOR to bindings, with expiry timers and an event queue.
///
/// Sans-I/O: `now` is the caller's clock in milliseconds (any epoch, non-decreasing), passed to
/// every call that depends on time. After each call, drain [`Shard::poll_event`]; after
/// [`Shard::next_deadline`], call [`Shard::expire`].
///
/// ```
/// use sipreg::location::{Aor, Registration, Shard};
/// use sipreg::sip::{Transport, Uri};
///
/// let to = Uri::parse(b"sip:alice@Example.com;user=phone").ok_or("bad URI")?;
/// let aor = Aor::from_uri(to.sip().ok_or("not sip")?);
/// let mut shard = Shard::new();
/// let now = 1_000;
/// shard.insert(&aor, &Registration {
///     contact: b"sip:alice@192.0.2.4:5060",
///     params: b"",
///     path: &[],
///     instance: None,
///     reg_id: None,
///     q: 1000,
///     expires_at: now + 3_600_000,
///     call_id: b"a84b4c76e66710",
///     cseq: 1,
///     source: "192.0.2.4:5060".parse()?,
///     transport: Transport::Udp,
///     connection: None,
/// }, now)?;
/// let contacts: Vec<_> = shard.lookup(b"sip:alice@example.com", now).map(|b| b.contact()).collect();
/// assert_eq!(contacts, [b"sip:alice@192.0.2.4:5060"]);
/// assert!(shard.poll_event().is_some()); // Added
/// assert_eq!(shard.next_deadline(), Some(3_601_000));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Shard {
    index: HashTable<u32>,
    records: Vec<Entry>,
    free: u32,
    hasher: DefaultHashBuilder,
    wheel: Wheel,
    /// Reused buffer for the timers an `expire` call takes from the wheel.
    due: Vec<Timer>,
    events: VecDeque<Event>,
    /// Blocks of consumed events, reused (see [`Shard::recycle`]).
    spare: Spare,
    next_key: u32,
    bindings: usize,
    aors: usize,
    /// The slot of the AOR looked up last. One REGISTER looks its AOR up several times (the
    /// binding it names, the count for the limit, the bindings for the 200); comparing the AOR
    /// with this slot's costs a fraction of hashing it and probing the index again. Checked
    /// against the record before use, so a stale slot is only a miss.
    recent: Cell<u32>,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::new()
    }
}

impl Shard {
    pub fn new() -> Shard {
        Shard::with_capacity(0)
    }

    /// Room for `aors` AORs before the table grows.
    pub fn with_capacity(aors: usize) -> Shard {
        Shard {
            index: HashTable::with_capacity(aors),
            records: Vec::with_capacity(aors),
            free: NO_SLOT,
            hasher: DefaultHashBuilder::default(),
            wheel: Wheel::new(),
            due: Vec::new(),
            events: VecDeque::new(),
            spare: Spare::default(),
            next_key: 0,
            bindings: 0,
            aors: 0,
            recent: Cell::new(NO_SLOT),
        }
    }

    /// Bindings stored, including expired ones not yet collected.
    pub fn len(&self) -> usize {
        self.bindings
    }

    pub fn is_empty(&self) -> bool {
        self.bindings == 0
    }

    /// AORs with at least one stored binding.
    pub fn aor_count(&self) -> usize {
        self.aors
    }

    /// The live bindings of `aor` (canonical bytes, see [`Aor::encode`]) for routing: q
    /// descending, then most recently updated first.
    pub fn lookup(&self, aor: &[u8], now: u64) -> Lookup<'_> {
        Lookup {
            entries: self.entries(aor, now),
        }
    }

    /// [`Shard::lookup`] with the id of each binding, for the registrar to act on.
    pub fn entries(&self, aor: &[u8], now: u64) -> Entries<'_> {
        self.entries_in(self.slot_of(aor), now)
    }

    /// The number of record slots, free ones included: slot numbers run from 0 below it, one AOR
    /// each. Never shrinks. For a walk over the table in bounded steps ([`Shard::slot_entries`]).
    pub fn slots(&self) -> usize {
        self.records.len()
    }

    /// The live bindings of the AOR in record slot `slot`, with their ids, in routing order;
    /// none for a free slot or one past [`Shard::slots`]. A slot keeps its AOR while the AOR has
    /// bindings, so a walk over every slot sees every binding once.
    pub fn slot_entries(&self, slot: usize, now: u64) -> Entries<'_> {
        self.entries_in(u32::try_from(slot).ok(), now)
    }

    /// The live bindings in record slot `slot`; none for no slot or a free one.
    fn entries_in(&self, slot: Option<u32>, now: u64) -> Entries<'_> {
        let found = slot.and_then(|slot| Some((slot, self.record(slot)?)));
        let (slot, bindings) = match found {
            Some((slot, rec)) => (slot, rec.set.as_slice()),
            None => (NO_SLOT, &[][..]),
        };
        Entries {
            slot,
            iter: bindings.iter(),
            now,
        }
    }

    /// The number of live bindings of `aor`.
    pub fn count(&self, aor: &[u8], now: u64) -> usize {
        self.lookup(aor, now).count()
    }

    /// The binding `id` names, if it is still there and live.
    pub fn get(&self, id: BindingId, now: u64) -> Option<&Binding> {
        let rec = self.record(id.slot)?;
        rec.set
            .as_slice()
            .iter()
            .find(|b| b.key == id.key && b.is_live(now))
    }

    /// Notes which of the shell's UDP sockets binding `id` was learnt on ([`Binding::local`]).
    /// A refresh forgets it: note it again after each.
    pub fn set_local(&mut self, id: BindingId, index: u16) {
        let Some(rec) = self.record_mut(id.slot) else {
            return;
        };
        if let Some(b) = rec.set.as_mut_slice().iter_mut().find(|b| b.key == id.key) {
            b.set_local(index);
        }
    }

    /// The live binding of `aor` whose contact URI is equivalent to `contact`.
    ///
    /// RFC 3261 10.3 step 7: "the registrar checks whether there is a binding for a contact URI
    /// ... using the URI comparison rules of Section 19.1.4 for SIP and SIPS". Other schemes
    /// compare byte for byte, a strict stand-in for their own rules.
    pub fn find_contact(&self, aor: &[u8], contact: &Uri<'_>, now: u64) -> Option<BindingId> {
        self.entries(aor, now)
            .find(|(_, b)| contact_matches(b.contact(), contact))
            .map(|(id, _)| id)
    }

    /// The live binding of `aor` with this `+sip.instance` (compared byte for byte) and reg-id
    /// (RFC 5626 section 6: a flow is named by instance and reg-id; `None` matches a binding
    /// without reg-id, as RFC 5627 GRUU registrations have).
    pub fn find_instance(
        &self,
        aor: &[u8],
        instance: &[u8],
        reg_id: Option<u32>,
        now: u64,
    ) -> Option<BindingId> {
        self.entries(aor, now)
            .find(|(_, b)| b.instance() == Some(instance) && b.reg_id() == reg_id)
            .map(|(id, _)| id)
    }

    /// Every stored live binding, AOR by AOR (for a persistence snapshot).
    pub fn iter(&self, now: u64) -> impl Iterator<Item = (&Aor, &Binding)> {
        self.records.iter().flat_map(move |e| {
            let (aor, bindings) = match e {
                Entry::Occupied(r) => (Some(&r.aor), r.set.as_slice()),
                Entry::Vacant(_) => (None, &[][..]),
            };
            bindings
                .iter()
                .filter(move |b| b.is_live(now))
                .filter_map(move |b| Some((aor?, b)))
        })
    }

    /// Visits the live bindings of at most `max_slots` record slots from slot `from` on, and
    /// returns the slot to continue from, or `None` once the whole table has been visited: a
    /// scan in bounded steps for a snapshot taken while the shard keeps changing. A binding
    /// added, changed or removed during the scan may be seen in either state; the caller's
    /// journal of events since the scan began settles it.
    pub fn scan(
        &self,
        from: usize,
        max_slots: usize,
        now: u64,
        mut visit: impl FnMut(&Aor, &Binding),
    ) -> Option<usize> {
        let end = from.saturating_add(max_slots).min(self.records.len());
        for entry in self.records.get(from..end).unwrap_or_default() {
            if let Entry::Occupied(r) = entry {
                for b in r.set.as_slice().iter().filter(|b| b.is_live(now)) {
                    visit(&r.aor, b);
                }
            }
        }
        (end < self.records.len()).then_some(end)
    }

    /// Puts back a binding read from disk (see [`Binding::decode_durable`]) with its stored
    /// fields, expiry and update time, without emitting an event: restoring is not a change.
    /// Returns false and stores nothing if it expired by `now`. Does not look for a binding it
    /// duplicates: the loader hands each binding once.
    pub fn restore(&mut self, aor: &Aor, mut binding: Binding, now: u64) -> Result<bool, Error> {
        if !binding.is_live(now) {
            return Ok(false);
        }
        let key = self.next_key;
        binding.key = key;
        let slot = match self.slot_of(aor.as_bytes()) {
            Some(slot) => slot,
            None => self.add_record(aor.clone())?,
        };
        self.next_key = key.wrapping_add(1);
        let expires_at = binding.expires_at();
        if let Some(rec) = self.record_mut(slot) {
            rec.set.insert(binding);
            self.bindings += 1;
        }
        self.wheel
            .schedule(due_second(expires_at), Timer { slot, key }, now / 1000);
        Ok(true)
    }

    /// Adds a binding to `aor` and emits [`Event::Added`]. Expired bindings of `aor` are
    /// collected first. Does not look for an existing binding to replace: that is
    /// [`Shard::find_contact`] / [`Shard::find_instance`] and [`Shard::refresh`].
    pub fn insert(
        &mut self,
        aor: &Aor,
        reg: &Registration<'_>,
        now: u64,
    ) -> Result<BindingId, Error> {
        let key = self.next_key;
        let binding = Binding::new_in(reg, key, now, &mut self.spare)?;
        let slot = match self.slot_of(aor.as_bytes()) {
            Some(slot) => {
                self.collect_expired(slot, now);
                slot
            }
            None => self.add_record(aor.clone())?,
        };
        self.next_key = key.wrapping_add(1);
        let expires_at = binding.expires_at();
        self.events.push_back(Event::Added {
            aor: aor.copy_in(&mut self.spare),
            binding: binding.copy_in(&mut self.spare),
        });
        if let Some(rec) = self.record_mut(slot) {
            rec.set.insert(binding);
            self.bindings += 1;
        }
        self.wheel
            .schedule(due_second(expires_at), Timer { slot, key }, now / 1000);
        Ok(BindingId { slot, key })
    }

    /// Replaces the binding `id` with `reg` (contact, expiry, Call-ID, CSeq, source, ...), keeps
    /// its place in the routing order up to date, and emits [`Event::Refreshed`]. Returns the id
    /// to use from now on (it changes when the expiry moves earlier).
    pub fn refresh(
        &mut self,
        id: BindingId,
        reg: &Registration<'_>,
        now: u64,
    ) -> Result<BindingId, Error> {
        let new = Binding::new_in(reg, id.key, now, &mut self.spare)?;
        self.collect_expired(id.slot, now);
        let result = self.refresh_live(id, new, now);
        self.release_if_empty(id.slot);
        result
    }

    fn refresh_live(
        &mut self,
        id: BindingId,
        mut new: Binding,
        now: u64,
    ) -> Result<BindingId, Error> {
        let next_key = self.next_key;
        let spare = &mut self.spare;
        let rec = occupied_mut(&mut self.records, id.slot).ok_or(Error::NotFound)?;
        let pos = rec.set.position(id.key).ok_or(Error::NotFound)?;
        let old = rec.set.remove(pos).ok_or(Error::NotFound)?;
        // The wheel entry of this key comes due no later than the old expiry and reschedules
        // itself if the binding lives on, so a later expiry needs nothing. An earlier one needs
        // an entry of its own; a new key makes the old entry stale.
        let rekey = new.expires_at() < old.expires_at();
        if rekey {
            new.key = next_key;
        }
        let copy = new.copy_in(spare);
        let aor = rec.aor.copy_in(spare);
        let key = new.key;
        let expires_at = new.expires_at();
        rec.set.insert(new);
        if rekey {
            self.next_key = next_key.wrapping_add(1);
            let timer = Timer { slot: id.slot, key };
            self.wheel
                .schedule(due_second(expires_at), timer, now / 1000);
        }
        self.events.push_back(Event::Refreshed {
            aor,
            old,
            new: copy,
        });
        Ok(BindingId { slot: id.slot, key })
    }

    /// Removes the binding `id` and emits [`Event::Removed`].
    pub fn remove(&mut self, id: BindingId, now: u64) -> Result<(), Error> {
        self.collect_expired(id.slot, now);
        let spare = &mut self.spare;
        let removed = occupied_mut(&mut self.records, id.slot).and_then(|rec| {
            let pos = rec.set.position(id.key)?;
            Some((rec.aor.copy_in(spare), rec.set.remove(pos)?))
        });
        self.release_if_empty(id.slot);
        let (aor, binding) = removed.ok_or(Error::NotFound)?;
        self.bindings -= 1;
        self.events.push_back(Event::Removed { aor, binding });
        Ok(())
    }

    /// Removes every binding of `aor` (RFC 3261 10.3 step 6, `Contact: *`): [`Event::Removed`]
    /// for the live ones, [`Event::Expired`] for those already past their time. Returns how many
    /// live bindings were removed.
    pub fn remove_aor(&mut self, aor: &[u8], now: u64) -> usize {
        let Some(rec) = self.slot_of(aor).and_then(|slot| self.release(slot)) else {
            return 0;
        };
        let Record { aor, set } = rec;
        let mut live = 0;
        let mut emit = |binding: Binding| {
            let aor = aor.clone();
            self.bindings -= 1;
            self.events.push_back(if binding.is_live(now) {
                live += 1;
                Event::Removed { aor, binding }
            } else {
                Event::Expired { aor, binding }
            });
        };
        match set {
            Set::One(b) => emit(b),
            Set::Many(v) => v.into_iter().for_each(emit),
        }
        live
    }

    /// Removes the bindings whose time has come and emits [`Event::Expired`] for each; returns
    /// how many. Timers have one-second resolution: a binding is collected once `now` reaches
    /// its `expires_at` rounded up to a whole second (at most 999 ms late; reads stop returning
    /// it at `expires_at` exactly). The work is the timers due since the last call (at most one
    /// pass over the wheel's 4096 one-second slots), not the table size.
    pub fn expire(&mut self, now: u64) -> usize {
        let mut due = core::mem::take(&mut self.due);
        self.wheel.advance(now / 1000, &mut due);
        let mut expired = 0;
        for timer in due.drain(..) {
            let Some(rec) = occupied_mut(&mut self.records, timer.slot) else {
                continue; // the AOR is gone
            };
            let Some(pos) = rec.set.position(timer.key) else {
                continue; // removed, expired or re-keyed meanwhile
            };
            let expires_at = rec.set.as_slice().get(pos).map_or(0, Binding::expires_at);
            if expires_at > now {
                // Refreshed since the entry was scheduled, or parked at the wheel's horizon.
                self.wheel
                    .schedule(due_second(expires_at), timer, now / 1000);
                continue;
            }
            if let Some(binding) = rec.set.remove(pos) {
                let aor = rec.aor.clone();
                self.bindings -= 1;
                expired += 1;
                self.events.push_back(Event::Expired { aor, binding });
            }
            self.release_if_empty(timer.slot);
        }
        self.due = due;
        expired
    }

    /// When [`Shard::expire`] next has work, in milliseconds: no later than the next expiry
    /// rounded up to a whole second, possibly earlier (a refreshed binding's old timer, or a far
    /// expiry being rescheduled). `None` when no timer is pending, hence nothing stored.
    pub fn next_deadline(&self) -> Option<u64> {
        self.wheel.next_due().map(|s| s.saturating_mul(1000))
    }

    /// The next change, oldest first. Drain after every call that changes the table.
    /// Gives back an event taken from [`Shard::poll_event`] once its consumer is done with it:
    /// its heap blocks are reused for the next bindings and events of the same sizes, so a
    /// steady stream of refreshes allocates nothing. Dropping events instead is correct too,
    /// only slower.
    pub fn recycle(&mut self, event: Event) {
        let (aor, a, b) = match event {
            Event::Added { aor, binding }
            | Event::Removed { aor, binding }
            | Event::Expired { aor, binding } => (aor, binding, None),
            Event::Refreshed { aor, old, new } => (aor, old, Some(new)),
        };
        self.spare.give(aor.into_block());
        self.spare.give(a.into_data());
        if let Some(b) = b {
            self.spare.give(b.into_data());
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn slot_of(&self, aor: &[u8]) -> Option<u32> {
        let records = &self.records;
        let holds = |slot: u32| {
            matches!(records.get(slot as usize),
                Some(Entry::Occupied(r)) if r.aor.as_bytes() == aor)
        };
        let recent = self.recent.get();
        if holds(recent) {
            return Some(recent);
        }
        let slot = *self.index.find(self.hasher.hash_one(aor), |&s| holds(s))?;
        self.recent.set(slot);
        Some(slot)
    }

    fn record(&self, slot: u32) -> Option<&Record> {
        match self.records.get(slot as usize)? {
            Entry::Occupied(r) => Some(r),
            Entry::Vacant(_) => None,
        }
    }

    fn record_mut(&mut self, slot: u32) -> Option<&mut Record> {
        occupied_mut(&mut self.records, slot)
    }

    /// A new, empty record for `aor`, in a free slot or at the end of the slab.
    fn add_record(&mut self, aor: Aor) -> Result<u32, Error> {
        let hash = self.hasher.hash_one(aor.as_bytes());
        let rec = Entry::Occupied(Record {
            aor,
            set: Set::Many(Vec::new()),
        });
        let slot = match self.records.get_mut(self.free as usize) {
            Some(entry) => {
                let slot = self.free;
                self.free = match core::mem::replace(entry, rec) {
                    Entry::Vacant(next) => next,
                    // The free list only holds vacant slots.
                    Entry::Occupied(_) => NO_SLOT,
                };
                slot
            }
            None => {
                let slot = u32::try_from(self.records.len())
                    .ok()
                    .filter(|&s| s != NO_SLOT)
                    .ok_or(Error::Full)?;
                self.records.push(rec);
                slot
            }
        };
        let (records, hasher) = (&self.records, &self.hasher);
        self.index
            .insert_unique(hash, slot, |&s| match records.get(s as usize) {
                Some(Entry::Occupied(r)) => hasher.hash_one(r.aor.as_bytes()),
                _ => 0,
            });
        self.aors += 1;
        Ok(slot)
    }

    /// Takes the record out of the table and frees its slot.
    fn release(&mut self, slot: u32) -> Option<Record> {
        let entry = self.records.get_mut(slot as usize)?;
        if matches!(entry, Entry::Vacant(_)) {
            return None;
        }
        let Entry::Occupied(rec) = core::mem::replace(entry, Entry::Vacant(self.free)) else {
            return None;
        };
        let hash = self.hasher.hash_one(rec.aor.as_bytes());
        if let Ok(found) = self.index.find_entry(hash, |&s| s == slot) {
            found.remove();
        }
        self.free = slot;
        self.aors -= 1;
        Some(rec)
    }

    fn release_if_empty(&mut self, slot: u32) {
        if self.record(slot).is_some_and(|r| r.set.is_empty()) {
            self.release(slot);
        }
    }

    /// Removes the expired bindings of one record (leaving it in place even if empty) and emits
    /// [`Event::Expired`] for each.
    fn collect_expired(&mut self, slot: u32, now: u64) {
        let Some(rec) = occupied_mut(&mut self.records, slot) else {
            return;
        };
        while let Some(pos) = rec.set.as_slice().iter().position(|b| !b.is_live(now)) {
            let Some(binding) = rec.set.remove(pos) else {
                break;
            };
            self.bindings -= 1;
            self.events.push_back(Event::Expired {
                aor: rec.aor.clone(),
                binding,
            });
        }
    }
}

/// The record in `slot`, if the slot is occupied. A free function so that the caller can keep
/// using the shard's other fields while it holds the record.
fn occupied_mut(records: &mut [Entry], slot: u32) -> Option<&mut Record> {
    match records.get_mut(slot as usize)? {
        Entry::Occupied(r) => Some(r),
        Entry::Vacant(_) => None,
    }
}

/// The wheel second at which a binding expiring at `expires_at` ms is due: the first whole
/// second not before it, so that when `now` reaches it, `expires_at <= now`.
fn due_second(expires_at: u64) -> u64 {
    expires_at.div_ceil(1000)
}

fn contact_matches(stored: &[u8], contact: &Uri<'_>) -> bool {
    // Identical bytes are equivalent URIs: the common refresh needs no parsing.
    if stored == contact.raw() {
        return true;
    }
    match (Uri::parse(stored), contact) {
        (Some(Uri::Sip(a)), Uri::Sip(b)) => a.matches(b),
        (Some(Uri::Other { raw: a, .. }), Uri::Other { raw: b, .. }) => a == *b,
        _ => false,
    }
}

/// The live bindings of an AOR with their ids, in routing order. See [`Shard::entries`].
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    slot: u32,
    iter: core::slice::Iter<'a, Binding>,
    now: u64,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (BindingId, &'a Binding);

    fn next(&mut self) -> Option<Self::Item> {
        let now = self.now;
        let b = self.iter.find(|b| b.is_live(now))?;
        Some((
            BindingId {
                slot: self.slot,
                key: b.key,
            },
            b,
        ))
    }
}

/// The live bindings of an AOR, in routing order. See [`Shard::lookup`].
#[derive(Clone, Debug)]
pub struct Lookup<'a> {
    entries: Entries<'a>,
}

impl<'a> Iterator for Lookup<'a> {
    type Item = &'a Binding;

    fn next(&mut self) -> Option<&'a Binding> {
        self.entries.next().map(|(_, b)| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Transport;

    #[test]
    fn a_walk_over_the_slots_sees_every_live_binding_once() {
        let mut shard = Shard::new();
        let (a, b, c) = (
            aor("sip:alice@example.com"),
            aor("sip:bob@example.com"),
            aor("sip:carol@example.com"),
        );
        shard
            .insert(&a, &reg("sip:a1@192.0.2.1", 500, 10_000), 0)
            .unwrap();
        shard
            .insert(&a, &reg("sip:a2@192.0.2.1", 900, 10_000), 0)
            .unwrap();
        let gone = shard
            .insert(&b, &reg("sip:b@192.0.2.2", 0, 10_000), 0)
            .unwrap();
        shard
            .insert(&c, &reg("sip:c@192.0.2.3", 0, 2_000), 0)
            .unwrap();
        shard.remove(gone, 1).unwrap();
        let walk = |now| {
            let mut seen = Vec::new();
            for slot in 0..shard.slots() + 1 {
                for (id, binding) in shard.slot_entries(slot, now) {
                    assert_eq!(id.slot() as usize, slot);
                    assert_eq!(id.key(), binding.key());
                    assert_eq!(shard.get(id, now), Some(binding));
                    seen.push(String::from_utf8(binding.contact().to_vec()).unwrap());
                }
            }
            seen
        };
        // Bob's slot is free; carol's binding is past its time at 2 s.
        assert_eq!(shard.slots(), 3);
        assert_eq!(
            walk(1_000),
            ["sip:a2@192.0.2.1", "sip:a1@192.0.2.1", "sip:c@192.0.2.3"]
        );
        assert_eq!(walk(2_000), ["sip:a2@192.0.2.1", "sip:a1@192.0.2.1"]);
    }

    /// The remembered slot of the last lookup never answers for an AOR that left it, even when
    /// another AOR took the slot over.
    #[test]
    fn a_reused_slot_is_not_the_old_aors() {
        let mut shard = Shard::new();
        let (a, b) = (aor("sip:alice@example.com"), aor("sip:bob@example.com"));
        let id = shard
            .insert(&a, &reg("sip:a@192.0.2.1", 0, 10_000), 0)
            .unwrap();
        assert_eq!(shard.count(a.as_bytes(), 1), 1);
        shard.remove(id, 1).unwrap();
        assert_eq!(shard.count(a.as_bytes(), 1), 0);
        let taken = shard
            .insert(&b, &reg("sip:b@192.0.2.2", 0, 10_000), 1)
            .unwrap();
        // Bob took alice's slot; alice is looked up right after bob, and the other way round.
        assert_eq!(taken.slot(), id.slot());
        assert_eq!(shard.count(b.as_bytes(), 1), 1);
        assert_eq!(shard.count(a.as_bytes(), 1), 0);
        assert_eq!(shard.count(b.as_bytes(), 1), 1);
        let contacts: Vec<&[u8]> = shard.lookup(b.as_bytes(), 1).map(|x| x.contact()).collect();
        assert_eq!(contacts, [&b"sip:b@192.0.2.2"[..]]);
    }

    #[test]
    fn restored_bindings_keep_their_fields_and_expire() {
        let mut src = Shard::new();
        let a = aor("sip:alice@example.com");
        src.insert(&a, &reg("sip:a1@192.0.2.1", 500, 10_000), 1_000)
            .expect("insert");
        src.insert(&a, &reg("sip:a2@192.0.2.1", 900, 20_000), 2_000)
            .expect("insert");
        src.insert(
            &aor("sip:bob@example.com"),
            &reg("sip:b@x", 0, 3_000),
            2_000,
        )
        .expect("insert");
        let mut seen = Vec::new();
        let mut from = Some(0);
        while let Some(f) = from {
            from = src.scan(f, 1, 2_500, |aor, b| seen.push((aor.clone(), b.clone())));
        }
        assert_eq!(seen.len(), 3);
        let mut dst = Shard::new();
        for (aor, b) in seen {
            let mut bytes = Vec::new();
            b.encode_durable(&mut bytes);
            let (d, _) = Binding::decode_durable(&bytes).expect("decodes");
            assert!(dst.restore(&aor, d, 2_500).expect("fits"));
        }
        assert!(dst.poll_event().is_none(), "restoring is not a change");
        assert_eq!(
            contacts(&dst, &a, 2_500),
            ["sip:a2@192.0.2.1", "sip:a1@192.0.2.1"]
        );
        let b = dst
            .lookup(a.as_bytes(), 2_500)
            .next()
            .expect("live")
            .clone();
        assert_eq!(
            (b.updated_at(), b.expires_at(), b.q()),
            (2_000, 20_000, 900)
        );
        assert_eq!(dst.expire(3_000), 1);
        assert_eq!(dst.expire(10_000), 1);
        assert_eq!(dst.len(), 1);
        // An expired one is not restored.
        let mut bytes = Vec::new();
        b.encode_durable(&mut bytes);
        let (gone, _) = Binding::decode_durable(&bytes).expect("decodes");
        assert!(!dst.restore(&a, gone, 20_000).expect("fits"));
    }

    fn aor(s: &str) -> Aor {
        let uri = Uri::parse(s.as_bytes()).expect("test AOR parses");
        Aor::from_uri(uri.sip().expect("test AOR is sip"))
    }

    fn reg(contact: &str, q: u16, expires_at: u64) -> Registration<'_> {
        Registration {
            contact: contact.as_bytes(),
            params: b"",
            path: &[],
            instance: None,
            reg_id: None,
            q,
            expires_at,
            call_id: b"call-1",
            cseq: 1,
            source: "192.0.2.1:5060".parse().expect("address"),
            transport: Transport::Udp,
            connection: None,
        }
    }

    fn contacts(shard: &Shard, aor: &Aor, now: u64) -> Vec<String> {
        shard
            .lookup(aor.as_bytes(), now)
            .map(|b| String::from_utf8_lossy(b.contact()).into_owned())
            .collect()
    }

    /// The kind and contact of every pending event.
    fn events(shard: &mut Shard) -> Vec<(&'static str, String)> {
        core::iter::from_fn(|| shard.poll_event())
            .map(|e| {
                let kind = match e {
                    Event::Added { .. } => "added",
                    Event::Refreshed { .. } => "refreshed",
                    Event::Removed { .. } => "removed",
                    Event::Expired { .. } => "expired",
                };
                (
                    kind,
                    String::from_utf8_lossy(e.binding().contact()).into_owned(),
                )
            })
            .collect()
    }

    fn ev(kind: &'static str, contact: &str) -> (&'static str, String) {
        (kind, contact.to_owned())
    }

    #[test]
    fn insert_then_lookup_by_any_spelling() {
        let mut shard = Shard::new();
        let alice = aor("sip:alice@example.com");
        let id = shard
            .insert(&alice, &reg("sip:alice@192.0.2.1", 1000, 60_000), 0)
            .expect("insert");
        let to = Uri::parse(b"sip:%61lice@EXAMPLE.COM:5060;user=phone").expect("parses");
        let mut key = Vec::new();
        Aor::encode(to.sip().expect("sip"), &mut key);
        assert_eq!(contacts(&shard, &alice, 0), ["sip:alice@192.0.2.1"]);
        assert_eq!(shard.lookup(&key, 0).count(), 1);
        assert_eq!(shard.count(&key, 0), 1);
        assert_eq!(shard.count(b"sip:bob@example.com", 0), 0);
        assert_eq!(
            shard.get(id, 0).map(Binding::contact),
            Some(&b"sip:alice@192.0.2.1"[..])
        );
        assert_eq!((shard.len(), shard.aor_count()), (1, 1));
        let e = shard.poll_event().expect("added");
        assert_eq!(e.aor(), &alice);
        assert!(matches!(e, Event::Added { .. }));
        assert_eq!(shard.poll_event(), None);
    }

    #[test]
    fn lookup_orders_by_q_then_most_recent() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        let rows = [
            ("sip:low@x", 100, 0),
            ("sip:old@x", 500, 1),
            ("sip:new@x", 500, 2),
        ];
        for (contact, q, now) in rows {
            shard
                .insert(&a, &reg(contact, q, 60_000), now)
                .expect("insert");
        }
        shard
            .insert(&a, &reg("sip:top@x", 1000, 60_000), 3)
            .expect("insert");
        let want = ["sip:top@x", "sip:new@x", "sip:old@x", "sip:low@x"];
        assert_eq!(contacts(&shard, &a, 3), want);
        // Refreshing "old" makes it the most recent of its q.
        let old = shard.find_contact(a.as_bytes(), &Uri::parse(b"sip:old@x").expect("uri"), 4);
        shard
            .refresh(old.expect("found"), &reg("sip:old@x", 500, 60_000), 4)
            .expect("refresh");
        let want = ["sip:top@x", "sip:old@x", "sip:new@x", "sip:low@x"];
        assert_eq!(contacts(&shard, &a, 4), want);
        // Ties in q and time: the latest change first.
        let b = aor("sip:b@example.com");
        for contact in ["sip:1@x", "sip:2@x", "sip:3@x"] {
            shard
                .insert(&b, &reg(contact, 0, 60_000), 9)
                .expect("insert");
        }
        assert_eq!(contacts(&shard, &b, 9), ["sip:3@x", "sip:2@x", "sip:1@x"]);
    }

    #[test]
    fn refresh_updates_in_place_and_reports_old_and_new() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        let id = shard
            .insert(&a, &reg("sip:a@192.0.2.1", 1000, 60_000), 0)
            .expect("insert");
        shard.poll_event();
        let moved = Registration {
            cseq: 2,
            source: "198.51.100.7:40000".parse().expect("address"),
            connection: Some(9),
            transport: Transport::Tcp,
            ..reg("sip:a@198.51.100.7:40000;transport=tcp", 900, 120_000)
        };
        let id2 = shard.refresh(id, &moved, 1_000).expect("refresh");
        // A later expiry keeps the id.
        assert_eq!(id2, id);
        let b = shard.get(id, 1_000).expect("still there").clone();
        assert_eq!(b.contact(), moved.contact);
        assert_eq!(
            (b.cseq(), b.q(), b.expires_at(), b.updated_at()),
            (2, 900, 120_000, 1_000)
        );
        assert_eq!((b.connection(), b.transport()), (Some(9), Transport::Tcp));
        assert_eq!(b.source(), moved.source);
        match shard.poll_event() {
            Some(Event::Refreshed { aor, old, new }) => {
                assert_eq!(aor, a);
                assert_eq!(old.contact(), b"sip:a@192.0.2.1");
                assert_eq!(old.cseq(), 1);
                assert_eq!(new, b);
            }
            other => panic!("want Refreshed, got {other:?}"),
        }
        assert_eq!((shard.len(), shard.aor_count()), (1, 1));
    }

    #[test]
    fn refresh_to_an_earlier_expiry_moves_the_timer() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        let id = shard
            .insert(&a, &reg("sip:a@x", 0, 3_600_000), 0)
            .expect("insert");
        let id2 = shard
            .refresh(id, &reg("sip:a@x", 0, 60_000), 1_000)
            .expect("refresh");
        assert_ne!(id2, id, "a new key makes the old timer stale");
        assert_eq!(shard.get(id, 1_000), None);
        assert_eq!(shard.next_deadline(), Some(60_000));
        assert_eq!(shard.expire(59_999), 0);
        assert_eq!(shard.expire(60_000), 1);
        events(&mut shard);
        // The old timer at 3600 s finds nothing.
        assert_eq!(shard.expire(3_600_000), 0);
        assert_eq!(shard.poll_event(), None);
        assert_eq!(shard.next_deadline(), None);
    }

    #[test]
    fn remove_one_and_stale_ids() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        let x = shard
            .insert(&a, &reg("sip:x@h", 0, 60_000), 0)
            .expect("insert");
        let y = shard
            .insert(&a, &reg("sip:y@h", 0, 60_000), 0)
            .expect("insert");
        events(&mut shard);
        shard.remove(x, 1).expect("remove");
        assert_eq!(events(&mut shard), [ev("removed", "sip:x@h")]);
        assert_eq!(shard.remove(x, 1), Err(Error::NotFound));
        assert_eq!(
            shard.refresh(x, &reg("sip:x@h", 0, 90_000), 1),
            Err(Error::NotFound)
        );
        assert_eq!(contacts(&shard, &a, 1), ["sip:y@h"]);
        shard.remove(y, 1).expect("remove");
        assert_eq!((shard.len(), shard.aor_count()), (0, 0));
        // The slot is reused by another AOR; the old ids do not reach into it.
        let b = aor("sip:b@example.com");
        let z = shard
            .insert(&b, &reg("sip:z@h", 0, 60_000), 2)
            .expect("insert");
        assert_eq!(z.slot, x.slot);
        assert_eq!(shard.get(x, 2), None);
        assert_eq!(shard.get(y, 2), None);
        assert_eq!(shard.remove(y, 2), Err(Error::NotFound));
        assert_eq!(shard.records.len(), 1);
    }

    #[test]
    fn remove_aor_reports_live_as_removed_and_stale_as_expired() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        shard
            .insert(&a, &reg("sip:short@h", 0, 1_000), 0)
            .expect("insert");
        shard
            .insert(&a, &reg("sip:long@h", 0, 60_000), 0)
            .expect("insert");
        shard
            .insert(&a, &reg("sip:mid@h", 0, 30_000), 0)
            .expect("insert");
        events(&mut shard);
        assert_eq!(shard.remove_aor(a.as_bytes(), 5_000), 2);
        let mut got = events(&mut shard);
        got.sort();
        let want = [
            ev("expired", "sip:short@h"),
            ev("removed", "sip:long@h"),
            ev("removed", "sip:mid@h"),
        ];
        assert_eq!(got, want);
        assert_eq!((shard.len(), shard.aor_count()), (0, 0));
        assert_eq!(shard.remove_aor(a.as_bytes(), 5_000), 0);
        // Stale timers of the removed bindings find nothing.
        assert_eq!(shard.expire(100_000), 0);
        assert_eq!(shard.poll_event(), None);
    }

    #[test]
    fn find_contact_uses_uri_equivalence() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        let id = shard
            .insert(
                &a,
                &reg("sip:a@Host.Example.com:5060;transport=udp", 0, 60_000),
                0,
            )
            .expect("insert");
        let tel = shard
            .insert(&a, &reg("tel:+15551234", 0, 60_000), 0)
            .expect("insert");
        let find = |s: &str| {
            let uri = Uri::parse(s.as_bytes()).expect("uri");
            shard.find_contact(a.as_bytes(), &uri, 0)
        };
        assert_eq!(find("sip:a@host.example.com:5060;TRANSPORT=UDP"), Some(id));
        assert_eq!(
            find("sip:%61@host.example.com:5060;transport=udp;foo=bar"),
            Some(id)
        );
        assert_eq!(
            find("sip:a@host.example.com;transport=udp"),
            None,
            "port differs"
        );
        assert_eq!(find("sip:a@host.example.com:5060;transport=tcp"), None);
        assert_eq!(find("sips:a@host.example.com:5060;transport=udp"), None);
        assert_eq!(find("sip:A@host.example.com:5060;transport=udp"), None);
        assert_eq!(find("tel:+15551234"), Some(tel));
        assert_eq!(find("tel:+15551235"), None);
        // Not after it expired.
        let uri = Uri::parse(b"tel:+15551234").expect("uri");
        assert_eq!(shard.find_contact(a.as_bytes(), &uri, 60_000), None);
        assert_eq!(shard.find_contact(b"sip:nobody@example.com", &uri, 0), None);
    }

    #[test]
    fn find_instance_by_instance_and_reg_id() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        let inst = b"\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\"";
        let flow = |reg_id, contact| Registration {
            instance: Some(inst),
            reg_id,
            ..reg(contact, 0, 60_000)
        };
        let one = shard
            .insert(&a, &flow(Some(1), "sip:a@x"), 0)
            .expect("insert");
        let two = shard
            .insert(&a, &flow(Some(2), "sip:a@y"), 0)
            .expect("insert");
        let gruu = shard.insert(&a, &flow(None, "sip:a@z"), 0).expect("insert");
        shard
            .insert(&a, &reg("sip:a@w", 0, 60_000), 0)
            .expect("insert");
        let find = |i: &[u8], r| shard.find_instance(a.as_bytes(), i, r, 0);
        assert_eq!(find(inst, Some(1)), Some(one));
        assert_eq!(find(inst, Some(2)), Some(two));
        assert_eq!(find(inst, None), Some(gruu));
        assert_eq!(find(inst, Some(3)), None);
        assert_eq!(find(b"\"<urn:uuid:other>\"", Some(1)), None);
    }

    #[test]
    fn entries_and_iter_list_live_bindings() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        let b = aor("sip:b@example.com");
        let ia = shard
            .insert(&a, &reg("sip:a@h", 0, 10_000), 0)
            .expect("insert");
        let ib = shard
            .insert(&b, &reg("sip:b@h", 0, 20_000), 0)
            .expect("insert");
        let ids: Vec<_> = shard.entries(a.as_bytes(), 0).map(|(id, _)| id).collect();
        assert_eq!(ids, [ia]);
        let all: Vec<_> = shard
            .iter(0)
            .map(|(aor, b)| (aor.clone(), b.contact()))
            .collect();
        assert_eq!(all, [(a, &b"sip:a@h"[..]), (b.clone(), &b"sip:b@h"[..])]);
        let later: Vec<_> = shard.iter(15_000).map(|(aor, _)| aor.clone()).collect();
        assert_eq!(later, [b]);
        assert!(shard.get(ib, 15_000).is_some());
        assert!(shard.get(ia, 15_000).is_none());
    }

    #[test]
    fn reads_never_return_an_expired_binding() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        let id = shard
            .insert(&a, &reg("sip:a@h", 0, 10_000), 0)
            .expect("insert");
        assert_eq!(shard.count(a.as_bytes(), 9_999), 1);
        // expire() has not run: the binding is still stored but no read returns it.
        assert_eq!(shard.len(), 1);
        assert_eq!(shard.count(a.as_bytes(), 10_000), 0);
        assert_eq!(shard.get(id, 10_000), None);
        assert_eq!(shard.entries(a.as_bytes(), 10_000).count(), 0);
        assert_eq!(shard.iter(10_000).count(), 0);
        let uri = Uri::parse(b"sip:a@h").expect("uri");
        assert_eq!(shard.find_contact(a.as_bytes(), &uri, 10_000), None);
    }

    #[test]
    fn changes_to_an_aor_collect_its_expired_bindings_first() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        shard
            .insert(&a, &reg("sip:old@h", 0, 10_000), 0)
            .expect("insert");
        events(&mut shard);
        shard
            .insert(&a, &reg("sip:new@h", 0, 90_000), 20_000)
            .expect("insert");
        assert_eq!(
            events(&mut shard),
            [ev("expired", "sip:old@h"), ev("added", "sip:new@h")]
        );
        assert_eq!(shard.len(), 1);
        // Removing or refreshing with a stale id also collects, and frees the emptied record.
        let b = aor("sip:b@example.com");
        let id = shard
            .insert(&b, &reg("sip:b@h", 0, 30_000), 20_000)
            .expect("insert");
        events(&mut shard);
        assert_eq!(shard.remove(id, 30_000), Err(Error::NotFound));
        assert_eq!(events(&mut shard), [ev("expired", "sip:b@h")]);
        assert_eq!(shard.aor_count(), 1);
        let c = aor("sip:c@example.com");
        let id = shard
            .insert(&c, &reg("sip:c@h", 0, 40_000), 30_000)
            .expect("insert");
        assert_eq!(
            shard.refresh(id, &reg("sip:c@h", 0, 90_000), 40_000),
            Err(Error::NotFound)
        );
        assert_eq!(shard.aor_count(), 1);
    }

    #[test]
    fn expire_on_a_virtual_clock() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        assert_eq!(shard.next_deadline(), None);
        shard
            .insert(&a, &reg("sip:1@h", 0, 1_500), 0)
            .expect("insert");
        shard
            .insert(&a, &reg("sip:2@h", 0, 3_000), 0)
            .expect("insert");
        events(&mut shard);
        // Due in whole seconds, never before the expiry.
        assert_eq!(shard.next_deadline(), Some(2_000));
        assert_eq!(shard.expire(1_999), 0);
        assert_eq!(shard.expire(2_000), 1);
        assert_eq!(events(&mut shard), [ev("expired", "sip:1@h")]);
        assert_eq!(shard.next_deadline(), Some(3_000));
        assert_eq!(shard.expire(3_000), 1);
        assert_eq!(events(&mut shard), [ev("expired", "sip:2@h")]);
        assert_eq!(
            (shard.len(), shard.aor_count(), shard.next_deadline()),
            (0, 0, None)
        );
    }

    #[test]
    fn refresh_before_expiry_outlives_the_old_timer() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        let id = shard
            .insert(&a, &reg("sip:a@h", 0, 60_000), 0)
            .expect("insert");
        for k in 1..=5u64 {
            // Re-register every 30 s for another 60 s.
            let now = k * 30_000;
            assert_eq!(shard.expire(now), 0);
            shard
                .refresh(id, &reg("sip:a@h", 0, now + 60_000), now)
                .expect("refresh");
        }
        // Only one timer entry, however many refreshes.
        assert_eq!(shard.wheel.len(), 1);
        assert_eq!(shard.expire(209_999), 0);
        assert_eq!(shard.count(a.as_bytes(), 209_999), 1);
        assert_eq!(shard.expire(210_000), 1);
        assert_eq!(shard.count(a.as_bytes(), 210_000), 0);
    }

    #[test]
    fn many_bindings_expire_in_one_tick() {
        let mut shard = Shard::new();
        let n = 10_000;
        for i in 0..n {
            let a = aor(&format!("sip:u{i}@example.com"));
            let contact = format!("sip:u{i}@192.0.2.1");
            // Spread over one second: all due in the same tick.
            let expires_at = 60_000 + (i % 1000) as u64;
            shard
                .insert(&a, &reg(&contact, 0, expires_at), 0)
                .expect("insert");
        }
        events(&mut shard);
        assert_eq!(shard.expire(60_000), 10, "the ones at 60.000 s");
        assert_eq!(shard.next_deadline(), Some(61_000));
        assert_eq!(shard.expire(61_000), n - 10);
        let got = events(&mut shard);
        assert_eq!(got.len(), n);
        assert!(got.iter().all(|(kind, _)| *kind == "expired"));
        assert_eq!((shard.len(), shard.aor_count()), (0, 0));
    }

    #[test]
    fn a_clock_jump_expires_everything_due() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        // One beyond the wheel's horizon, one within it.
        shard
            .insert(&a, &reg("sip:far@h", 0, 10_000_000), 0)
            .expect("insert");
        shard
            .insert(&a, &reg("sip:near@h", 0, 5_000), 0)
            .expect("insert");
        events(&mut shard);
        assert_eq!(shard.expire(9_999_999), 1);
        assert_eq!(events(&mut shard), [ev("expired", "sip:near@h")]);
        assert_eq!(shard.count(a.as_bytes(), 9_999_999), 1);
        // The far one is parked at the horizon: the deadline comes before it, never after.
        let deadline = shard.next_deadline().expect("pending");
        assert!(deadline <= 10_000_000);
        let mut now = 9_999_999;
        while shard.count(a.as_bytes(), now) == 1 {
            now = shard.next_deadline().expect("pending").max(now + 1);
            shard.expire(now);
        }
        assert_eq!(now, 10_000_000);
        assert_eq!(events(&mut shard), [ev("expired", "sip:far@h")]);
    }

    #[test]
    fn an_expiry_in_the_past_is_collected_at_once() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        shard.expire(50_000);
        shard
            .insert(&a, &reg("sip:a@h", 0, 40_000), 50_000)
            .expect("insert");
        assert_eq!(shard.count(a.as_bytes(), 50_000), 0);
        assert!(shard.next_deadline().is_some_and(|d| d <= 51_000));
        assert_eq!(shard.expire(51_000), 1);
    }

    #[test]
    fn invalid_registrations_change_nothing() {
        let mut shard = Shard::new();
        let a = aor("sip:a@example.com");
        let bad = Registration {
            q: 1001,
            ..reg("sip:a@h", 0, 60_000)
        };
        assert_eq!(shard.insert(&a, &bad, 0), Err(Error::QOutOfRange));
        assert_eq!(
            (shard.len(), shard.aor_count(), shard.poll_event()),
            (0, 0, None)
        );
        let id = shard
            .insert(&a, &reg("sip:a@h", 0, 60_000), 0)
            .expect("insert");
        events(&mut shard);
        assert_eq!(shard.refresh(id, &bad, 1), Err(Error::QOutOfRange));
        assert_eq!(shard.get(id, 1).map(Binding::q), Some(0));
        assert_eq!(shard.poll_event(), None);
    }

    #[test]
    fn packed_sizes() {
        // One binding inline: the slab entry is the AOR key plus the binding.
        assert_eq!(core::mem::size_of::<Set>(), 80);
        assert_eq!(core::mem::size_of::<Entry>(), 96);
    }

    mod model {
        //! The shard against a model: a `BTreeMap` of `Vec`s, eager expiry, sorted on demand.

        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        #[derive(Clone, Debug)]
        enum Op {
            Insert {
                aor: u8,
                contact: u8,
                q: u16,
                ttl: u64,
            },
            Refresh {
                aor: u8,
                which: usize,
                q: u16,
                ttl: u64,
            },
            Remove {
                aor: u8,
                which: usize,
            },
            RemoveAor {
                aor: u8,
            },
            Advance {
                ms: u64,
                expire: bool,
            },
        }

        fn op() -> impl Strategy<Value = Op> {
            let ttl = prop_oneof![
                4 => 0..5_000u64,
                1 => 0..10_000_000u64, // beyond the wheel's 4096 s horizon
            ];
            let q = prop_oneof![Just(0u16), Just(500), Just(1000), 0..=1000u16];
            prop_oneof![
                4 => (0..3u8, 0..4u8, q.clone(), ttl.clone())
                    .prop_map(|(aor, contact, q, ttl)| Op::Insert { aor, contact, q, ttl }),
                3 => (0..3u8, 0..4usize, q, ttl)
                    .prop_map(|(aor, which, q, ttl)| Op::Refresh { aor, which, q, ttl }),
                2 => (0..3u8, 0..4usize).prop_map(|(aor, which)| Op::Remove { aor, which }),
                1 => (0..3u8).prop_map(|aor| Op::RemoveAor { aor }),
                3 => (prop_oneof![4 => 0..3_000u64, 1 => 0..20_000_000u64], any::<bool>())
                    .prop_map(|(ms, expire)| Op::Advance { ms, expire }),
            ]
        }

        #[derive(Clone, Debug, PartialEq)]
        struct M {
            contact: String,
            q: u16,
            expires_at: u64,
            updated_at: u64,
            /// The step of the last insert or refresh: breaks ties, latest first.
            seq: usize,
        }

        fn aor_of(i: u8) -> Aor {
            aor(&format!("sip:user{i}@example.com"))
        }

        /// Live model bindings of one AOR in routing order.
        fn routed(model: &BTreeMap<u8, Vec<M>>, aor: u8, now: u64) -> Vec<M> {
            let mut v: Vec<M> = model
                .get(&aor)
                .map(|v| v.iter().filter(|m| m.expires_at > now).cloned().collect())
                .unwrap_or_default();
            v.sort_by_key(|m| core::cmp::Reverse((m.q, m.updated_at, m.seq)));
            v
        }

        fn check(
            shard: &mut Shard,
            model: &mut BTreeMap<u8, Vec<M>>,
            replay: &mut Vec<(Aor, Binding)>,
            now: u64,
        ) {
            // Replay the events: they must rebuild the same live table.
            while let Some(e) = shard.poll_event() {
                match e {
                    Event::Added { aor, binding } => replay.push((aor, binding)),
                    Event::Refreshed { aor, old, new } => {
                        let at = replay.iter().position(|(a, b)| *a == aor && *b == old);
                        let at = at.expect("a refresh of a binding the events added");
                        replay[at] = (aor, new);
                    }
                    Event::Removed { aor, binding } | Event::Expired { aor, binding } => {
                        let at = replay.iter().position(|(a, b)| *a == aor && *b == binding);
                        replay.remove(at.expect("a removal of a binding the events added"));
                    }
                }
            }
            model.retain(|_, v| {
                v.retain(|m| m.expires_at > now);
                !v.is_empty()
            });
            for i in 0..3u8 {
                let a = aor_of(i);
                let got: Vec<_> = shard.lookup(a.as_bytes(), now).collect();
                assert!(
                    got.iter().all(|b| b.expires_at() > now),
                    "an expired binding"
                );
                let got: Vec<_> = got
                    .iter()
                    .map(|b| (b.contact().to_vec(), b.q(), b.expires_at(), b.updated_at()))
                    .collect();
                let want: Vec<_> = routed(model, i, now)
                    .into_iter()
                    .map(|m| (m.contact.into_bytes(), m.q, m.expires_at, m.updated_at))
                    .collect();
                assert_eq!(got, want, "aor {i} at {now}");
                assert_eq!(shard.count(a.as_bytes(), now), want.len());
                let mut replayed: Vec<_> = replay
                    .iter()
                    .filter(|(r, b)| *r == a && b.is_live(now))
                    .map(|(_, b)| b.clone())
                    .collect();
                let mut stored: Vec<_> = shard.lookup(a.as_bytes(), now).cloned().collect();
                replayed.sort_by_key(|b| b.key);
                stored.sort_by_key(|b| b.key);
                assert_eq!(replayed, stored, "events disagree with the table");
            }
            let live: usize = model.values().map(Vec::len).sum();
            assert!(shard.len() >= live);
            assert_eq!(shard.len(), replay.len());
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn shard_agrees_with_model(ops in proptest::collection::vec(op(), 1..80)) {
                let mut shard = Shard::new();
                let mut model: BTreeMap<u8, Vec<M>> = BTreeMap::new();
                let mut replay = Vec::new();
                let mut now = 1_000_000u64;
                for (seq, op) in ops.into_iter().enumerate() {
                    match op {
                        Op::Insert { aor, contact, q, ttl } => {
                            let c = format!("sip:c{contact}@192.0.2.1");
                            let r = reg(&c, q, now + ttl);
                            shard.insert(&aor_of(aor), &r, now).expect("insert");
                            model.entry(aor).or_default().push(M {
                                contact: c,
                                q,
                                expires_at: now + ttl,
                                updated_at: now,
                                seq,
                            });
                        }
                        Op::Refresh { aor, which, q, ttl } => {
                            let a = aor_of(aor);
                            let live = routed(&model, aor, now);
                            let ids: Vec<_> =
                                shard.entries(a.as_bytes(), now).map(|(id, _)| id).collect();
                            prop_assert_eq!(ids.len(), live.len());
                            if let (Some(id), Some(m)) = (ids.get(which), live.get(which)) {
                                let r = reg(&m.contact, q, now + ttl);
                                shard.refresh(*id, &r, now).expect("refresh");
                                let v = model.entry(aor).or_default();
                                let slot = v.iter_mut().find(|x| *x == m).expect("in model");
                                *slot = M { q, expires_at: now + ttl, updated_at: now, seq, ..m.clone() };
                            }
                        }
                        Op::Remove { aor, which } => {
                            let a = aor_of(aor);
                            let live = routed(&model, aor, now);
                            let ids: Vec<_> =
                                shard.entries(a.as_bytes(), now).map(|(id, _)| id).collect();
                            if let (Some(id), Some(m)) = (ids.get(which), live.get(which)) {
                                shard.remove(*id, now).expect("remove");
                                prop_assert_eq!(shard.remove(*id, now), Err(Error::NotFound));
                                let v = model.entry(aor).or_default();
                                v.retain(|x| x != m);
                            }
                        }
                        Op::RemoveAor { aor } => {
                            let live = routed(&model, aor, now).len();
                            prop_assert_eq!(shard.remove_aor(aor_of(aor).as_bytes(), now), live);
                            model.remove(&aor);
                        }
                        Op::Advance { ms, expire } => {
                            now += ms;
                            if expire {
                                shard.expire(now);
                                check(&mut shard, &mut model, &mut replay, now);
                                // After expire() nothing due is stored: the replayed
                                // events mirror the stored set (checked above).
                                prop_assert!(replay
                                    .iter()
                                    .all(|(_, b)| due_second(b.expires_at()) * 1000 > now));
                                prop_assert!(shard.next_deadline().is_none_or(|d| d > now));
                            }
                        }
                    }
                    check(&mut shard, &mut model, &mut replay, now);
                }
            }
        }
    }
}
