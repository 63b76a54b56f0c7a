//! The location service (RFC 3261 10.2.1 "location service"): one shard of the table from
//! address-of-record to bindings, as one worker thread owns it.
//!
//! Sans-I/O and single-threaded: no locks, no clock, no sockets. Time comes in as `now`, in
//! milliseconds on the caller's clock; every change comes out as an [`Event`] the caller drains
//! with [`Shard::poll_event`] (for persistence, metrics, subscriptions), and
//! [`Shard::next_deadline`] tells the I/O loop when to call [`Shard::expire`].
//!
//! - [`Aor`]: the canonical key (RFC 3261 10.3 step 5);
//! - [`Binding`]: one contact of an AOR, packed into 80 bytes plus one heap block;
//! - [`Shard`]: the table, its primitives (insert, refresh, remove, match by contact or
//!   instance, lookup in routing order), expiry on a timing wheel, and the event queue.
//!
//! It does not implement registrar policy (RFC 3261 10.3 steps 6 to 8: Call-ID/CSeq checks,
//! minimum expiry, maximum contacts); it does not spread AORs over shards (the caller picks one
//! with [`shard_of`]) or persist anything: it gives persistence (`src/persist/`) a durable form of
//! a binding, a way to restore one, and a resumable scan for snapshots.

mod aor;
mod binding;
mod shard;
mod wheel;

use core::fmt;

pub use aor::Aor;
pub use binding::{Binding, DURABLE_FIXED, EchoParams, Path, Q_MAX, Registration, echo_params};
pub use shard::{BindingId, Entries, Event, Lookup, Shard};

/// The shard of an AOR among `shards`: FNV-1a 64 of the canonical AOR bytes
/// ([`Aor::as_bytes`]) modulo `shards`. Stable across runs, builds and machines: the workers
/// routing requests and the loader splitting saved bindings must agree on it. `shards` 0 is
/// taken as 1.
pub fn shard_of(aor: &[u8], shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in aor {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % shards.max(1) as u64) as usize
}

/// Why the shard refused a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The binding is not there (removed, expired, or the id is stale).
    NotFound,
    /// q above 1000 (1.0).
    QOutOfRange,
    /// reg-id of 2^31 or more (RFC 5626: "1 to (2^31 - 1)").
    RegIdOutOfRange,
    /// The binding's variable-length fields together exceed 65535 bytes.
    TooLong,
    /// 2^32 - 1 AORs are stored already.
    Full,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::NotFound => "no such binding",
            Error::QOutOfRange => "q is above 1.0",
            Error::RegIdOutOfRange => "reg-id is 2^31 or more",
            Error::TooLong => "binding fields exceed 65535 bytes",
            Error::Full => "the shard holds the most AORs it can index",
        })
    }
}

impl std::error::Error for Error {}
