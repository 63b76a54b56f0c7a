//! What the registrar offers the server around it beyond answering requests: the answer when
//! a worker is saturated, reloading credentials and policy, and the bindings learnt over a
//! connection when that connection closes.
//!
//! A binding learnt over TCP can only be reached through the connection the device opened
//! (sipreg does not open connections to devices; RFC 5626 3.5 and 4.3: requests follow the
//! flow). When that connection closes, the binding is either kept and marked unreachable (its
//! connection is cleared, so routing knows to skip it until the device reconnects and
//! refreshes) or removed, as [`FlowClose`] says.

use hashbrown::{HashMap, HashSet};

use super::{Peer, Registrar, screen};
use crate::location::{Aor, Binding, Event, Registration};
use crate::sip;
use screen::Screened;

/// What happens to the bindings learnt over a connection that closes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlowClose {
    /// Keep them, unreachable (no connection) until the device registers again or they expire.
    #[default]
    Unreachable,
    /// Remove them.
    Remove,
}

/// Seconds in the Retry-After of a 503 sent because a worker is saturated: long enough for a
/// burst to pass, short enough that a phone is not left unregistered.
pub const OVERLOAD_RETRY_AFTER: u32 = 5;

/// Which AORs have bindings learnt over which connection, kept from the shard's events.
///
/// An entry may outlive the binding that made it (the binding expired, or moved to another
/// connection): closing checks each binding's connection, so a stale entry costs a lookup and
/// nothing else, and the entries of a connection go when it closes.
#[derive(Debug, Default)]
pub struct Flows {
    by_connection: HashMap<u64, HashSet<Aor>>,
}

impl Flows {
    /// Notes the connection of a binding an event stored.
    pub fn observe(&mut self, event: &Event) {
        let (aor, binding) = match event {
            Event::Added { aor, binding } => (aor, binding),
            Event::Refreshed { aor, new, .. } => (aor, new),
            Event::Removed { .. } | Event::Expired { .. } => return,
        };
        if let Some(c) = binding.connection() {
            let aors = self.by_connection.entry(c).or_default();
            if !aors.contains(aor) {
                aors.insert(aor.clone());
            }
        }
    }
}

/// Whether routing can reach `binding`: over UDP always (to its source address, RFC 3581);
/// over a stream only while the connection it came on is open.
pub fn reachable(binding: &Binding) -> bool {
    binding.transport() == sip::Transport::Udp || binding.connection().is_some()
}

impl Registrar {
    /// The answer to a request that cannot be served now because the worker owning its AOR is
    /// saturated: 503 Service Unavailable with Retry-After (RFC 3261 21.5.4); a malformed
    /// request still gets its own rejection, a response nothing.
    pub fn overloaded(&self, peer: Peer, bytes: &[u8], out: &mut [u8]) -> Option<usize> {
        let limits = self.config.limits;
        super::with_frame(bytes, &limits, |parsed| {
            let screened = screen::screen(parsed, |req, e| {
                self.respond(peer, (req, e), 503, "Service Unavailable", &mut *out, |r| {
                    r.retry_after(OVERLOAD_RETRY_AFTER);
                })
            });
            match screened {
                Screened::Accept(answer) => answer,
                Screened::Ignore => None,
                Screened::Reject(r) => {
                    screen::write_rejection(r, bytes, peer.source, &self.tag, out)
                }
            }
        })
    }

    /// Puts back a binding loaded from disk at start-up (no event: it is on disk already);
    /// an expired one is skipped. Returns whether it was stored.
    pub fn restore(
        &mut self,
        aor: &Aor,
        binding: Binding,
        now_ms: u64,
    ) -> Result<bool, crate::location::Error> {
        self.shard.restore(aor, binding, now_ms)
    }

    /// Gives back an event from [`Registrar::poll_event`] once consumed, so its memory is reused
    /// ([`crate::location::Shard::recycle`]).
    pub fn recycle(&mut self, event: Event) {
        self.shard.recycle(event);
    }

    /// Makes this registrar's nonces distinct from those of the other workers' registrars
    /// (which share its key): worker `index` numbers its nonces from `index << 48`; its
    /// keep-alive pings name it, so that their answers find their way back to it.
    pub fn set_worker(&mut self, index: usize) {
        self.seq = (index as u64) << 48;
        self.keepalive.worker = index;
    }

    /// Replaces the registration policy (a reload); bindings stay as they are, and the new
    /// limits apply from the next REGISTER.
    pub fn set_policy(&mut self, policy: super::Policy) {
        self.config.policy = policy;
    }

    /// Connection `connection` closed at `now_ms`: the bindings learnt over it become
    /// unreachable or are removed, per the policy. Returns how many bindings were affected.
    pub fn connection_closed(&mut self, now_ms: u64, connection: u64) -> usize {
        let Some(aors) = self.flows.by_connection.remove(&connection) else {
            return 0;
        };
        let mut affected = 0;
        for aor in aors {
            let ids: Vec<_> = self
                .shard
                .entries(aor.as_bytes(), now_ms)
                .filter(|(_, b)| b.connection() == Some(connection))
                .map(|(id, _)| id)
                .collect();
            for id in ids {
                let done = match self.config.policy.flow_close {
                    FlowClose::Remove => self.shard.remove(id, now_ms).is_ok(),
                    FlowClose::Unreachable => self.detach(id, now_ms),
                };
                affected += usize::from(done);
            }
        }
        affected
    }

    /// Clears the connection of binding `id`, keeping everything else.
    fn detach(&mut self, id: crate::location::BindingId, now_ms: u64) -> bool {
        // Copied out first: the refresh changes the binding these bytes live in.
        let Some(b) = self.shard.get(id, now_ms) else {
            return false;
        };
        let contact = b.contact().to_vec();
        let params = b.params().to_vec();
        let paths: Vec<Vec<u8>> = b.path().map(<[u8]>::to_vec).collect();
        let instance = b.instance().map(<[u8]>::to_vec);
        let call_id = b.call_id().to_vec();
        let (reg_id, q, expires_at, cseq) = (b.reg_id(), b.q(), b.expires_at(), b.cseq());
        let (source, transport) = (b.source(), b.transport());
        let path: Vec<&[u8]> = paths.iter().map(Vec::as_slice).collect();
        let reg = Registration {
            contact: &contact,
            params: &params,
            path: &path,
            instance: instance.as_deref(),
            reg_id,
            q,
            expires_at,
            call_id: &call_id,
            cseq,
            source,
            transport,
            connection: None,
        };
        self.shard.refresh(id, &reg, now_ms).is_ok()
    }
}
