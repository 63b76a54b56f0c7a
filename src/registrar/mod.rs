//! The registrar element: what sipreg does with a request once its bytes have arrived.
//!
//! Sans-I/O, in the manner of quinn-proto: [`Registrar::handle`] takes the time, the source
//! address, the transport and the received bytes, and writes the answer into a caller buffer;
//! changes to the location table come out of [`Registrar::poll_event`]. Nothing here reads a
//! clock, a socket or a file, so tests drive it with a virtual clock.
//!
//! - [`screen`]: the checks every request passes first (RFC 3261 8.2) and the rejections.
//! - `register`: RFC 3261 section 10.3, step by step, with digest authentication.
//! - [`keepalive`]: NAT keep-alive pings (OPTIONS) to the bindings, and removal of the silent.

mod domains;
pub mod keepalive;
mod register;
pub mod screen;
mod serving;

use core::net::SocketAddr;

use crate::auth::{Algorithm, KnownA2, NcTracker, NonceKeys, UserDb};
use crate::location::{Event, Shard};
use crate::sip::{self, Header, Limits, Method, SipUri, Transport};

pub use keepalive::{Keepalive, KeepaliveMode, Outgoing, Pong};
use screen::Screened;
pub use serving::{FlowClose, OVERLOAD_RETRY_AFTER, reachable};

/// A domain sipreg is the registrar for, with the realm its challenges name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    /// Lowercase host name (or address literal) as it appears in Request-URIs and AORs.
    pub name: String,
    pub realm: String,
}

/// What to do when a REGISTER would leave an AOR with more bindings than allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactPolicy {
    /// Refuse the REGISTER with 503 and Retry-After; nothing changes.
    Reject,
    /// Accept it and remove the least recently updated bindings the request did not touch.
    ReplaceOldest,
}

/// Expiry and contact policy (RFC 3261 10.2.1.1, 10.3 step 7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Below this (and above zero), 423 Interval Too Brief with Min-Expires.
    pub min_expires: u32,
    /// Above this, the granted expiry is lowered to it.
    pub max_expires: u32,
    /// When neither the contact nor the request says.
    pub default_expires: u32,
    /// Bindings per AOR.
    pub max_contacts: usize,
    pub contact_policy: ContactPolicy,
    /// Retry-After of a 503 for the contact limit.
    pub retry_after: u32,
    /// What becomes of bindings learnt over a TCP connection when it closes.
    pub flow_close: FlowClose,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            max_contacts: 10,
            contact_policy: ContactPolicy::ReplaceOldest,
            retry_after: 30,
            flow_close: FlowClose::Unreachable,
        }
    }
}

/// Digest authentication settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    /// Whether REGISTER must carry valid digest credentials. Off, anyone may register any AOR
    /// of a served domain: only for a trusted network (an SBC in front that authenticates), or
    /// for measuring the registrar without authentication.
    pub required: bool,
    /// Algorithms offered in 401s, one challenge each, most preferred first (RFC 8760 2.4).
    pub algorithms: Vec<Algorithm>,
    /// Seconds a nonce stays fresh; an older one with correct credentials gets `stale=true`.
    /// Longer than the usual refresh interval, so that phones refreshing with pre-emptive
    /// credentials are not challenged each time; the nonce-count check stops replays meanwhile.
    pub nonce_lifetime: u64,
    /// Entries of the nonce-count table (20 bytes each). A phone that refreshes with its nonce
    /// holds one entry, so size it to the phones one registrar serves within a nonce lifetime;
    /// when it overflows, clients get `stale=true` and re-authenticate, never a replay through.
    pub nc_entries: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            required: true,
            algorithms: vec![Algorithm::Sha512_256, Algorithm::Sha256, Algorithm::Md5],
            nonce_lifetime: 3600,
            // 20 MiB.
            nc_entries: 1 << 20,
        }
    }
}

/// Everything the registrar element is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub domains: Vec<Domain>,
    pub policy: Policy,
    pub auth: AuthConfig,
    /// The Server header value.
    pub server: String,
    pub limits: Limits,
    /// AORs the location shard is sized for from the start (0: it grows on demand). Growing a
    /// large table rehashes and copies it at once, a stall of milliseconds for every request
    /// queued behind it; sizing it up front reserves address space, which the kernel backs
    /// only as bindings arrive.
    pub expected_aors: usize,
    /// NAT keep-alive pings.
    pub keepalive: Keepalive,
}

impl Config {
    /// Defaults for these domains, each its own realm.
    pub fn with_domains(names: &[String]) -> Config {
        Config {
            domains: names
                .iter()
                .map(|n| Domain {
                    name: n.to_ascii_lowercase(),
                    realm: n.to_ascii_lowercase(),
                })
                .collect(),
            policy: Policy::default(),
            auth: AuthConfig::default(),
            server: concat!("sipreg/", env!("CARGO_PKG_VERSION")).to_string(),
            limits: Limits::default(),
            expected_aors: 0,
            keepalive: Keepalive::default(),
        }
    }
}

/// What the receiving worker made of a message ([`Registrar::receive`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Answered without another worker: the answer's length in `out`, or nothing to send.
    Answered(Option<usize>),
    /// A REGISTER whose AOR worker `shard` owns; hand it there with the ticket.
    Owner { shard: usize, ticket: Ticket },
}

/// The digest verification a receiving worker did for the owner of the AOR: a right response
/// on a fresh nonce. The owner checks the nonce-count against its table, so a replay is
/// refused by the worker that keeps that nonce's counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// False when authentication is off: no nonce-count to check.
    pub(crate) verified: bool,
    pub(crate) nonce: u64,
    pub(crate) issued: u64,
    pub(crate) nc: u32,
}

/// Where a request came from, as the I/O shell knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub source: SocketAddr,
    pub transport: Transport,
    /// The shell's id of the stream connection, if any (RFC 5626 flows).
    pub connection: Option<u64>,
    /// The local address the request arrived on, when the shell says: a binding learnt over UDP
    /// remembers its socket, so that requests to the device leave from the address its NAT
    /// mapping was opened to ([`crate::location::Binding::local`]).
    pub local: Option<SocketAddr>,
}

/// The registrar element: credentials, nonce keys, the nonce-count table and one location
/// shard. One worker owns one `Registrar`.
pub struct Registrar {
    config: Config,
    /// The served domains by host, for step 1 of a REGISTER.
    domains: domains::DomainIndex,
    users: UserDb,
    keys: NonceKeys,
    /// Each domain's challenges, rendered once: realm, opaque (a MAC of the realm), algorithm
    /// and qop never change; a 401 writes only the nonce.
    challenges: Vec<sip::ChallengeLines>,
    /// Each domain's H(A2) for `REGISTER sip:<domain>`, per algorithm offered: what phones sign.
    known_a2: Vec<Vec<KnownA2>>,
    counts: NcTracker,
    shard: Shard,
    /// Nonce sequence number, so two challenges in the same second differ.
    seq: u64,
    /// The To tag of this element's responses (RFC 3261 8.2.6.2), derived from the secret.
    tag: [u8; 16],
    /// Reused buffer for canonical AOR bytes.
    aor_buf: Vec<u8>,
    /// Reused buffer for Contact parameters reduced by reading them by their grammar.
    params_buf: Vec<u8>,
    /// The Date of the 200s, formatted once a second.
    date: sip::DateCache,
    /// Server, Content-Length: 0 and the blank line that end every response, rendered once.
    trailer: sip::Trailer,
    /// The AORs with bindings learnt over each connection.
    flows: serving::Flows,
    /// Where the keep-alive walk stands, and the bindings that have not answered.
    keepalive: keepalive::Pinger,
}

impl Registrar {
    /// A registrar with no users yet. `secret` keys the nonces; the shell draws it at random.
    pub fn new(config: Config, secret: [u8; 32]) -> Registrar {
        let shard = Shard::with_capacity(config.expected_aors);
        let counts = NcTracker::with_capacity(config.auth.nc_entries, config.auth.nonce_lifetime);
        let keys = NonceKeys::new(0, &secret);
        let algorithms: Vec<&str> = config.auth.algorithms.iter().map(|a| a.name()).collect();
        let challenges = config
            .domains
            .iter()
            .map(|d| {
                let realm = d.realm.as_bytes();
                let opaque = keys.opaque(realm);
                let name = "WWW-Authenticate";
                sip::ChallengeLines::new(name, realm, opaque.as_bytes(), &algorithms, register::QOP)
            })
            .collect();
        let known_a2 = config
            .domains
            .iter()
            .map(|d| {
                let uri = format!("sip:{}", d.name);
                let algorithms = config.auth.algorithms.iter();
                algorithms
                    .map(|&a| KnownA2::new(a, b"REGISTER", uri.as_bytes()))
                    .collect()
            })
            .collect();
        let pinger = keepalive::Pinger::new(&secret);
        let mut tag = [0u8; 16];
        let digest = crate::auth::hash_hex(Algorithm::Sha256, &secret);
        for (t, h) in tag.iter_mut().zip(digest.as_bytes()) {
            *t = *h;
        }
        Registrar {
            domains: domains::DomainIndex::new(&config.domains),
            trailer: sip::Trailer::new(&config.server),
            config,
            users: UserDb::new(),
            keys,
            challenges,
            known_a2,
            counts,
            shard,
            seq: 0,
            tag,
            aor_buf: Vec::with_capacity(128),
            params_buf: Vec::new(),
            date: sip::DateCache::default(),
            flows: serving::Flows::default(),
            keepalive: pinger,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn users(&self) -> &UserDb {
        &self.users
    }

    pub fn users_mut(&mut self) -> &mut UserDb {
        &mut self.users
    }

    /// Replaces the credentials (a reload keeps bindings and nonces).
    pub fn set_users(&mut self, users: UserDb) {
        self.users = users;
    }

    /// The location table, for routing lookups and snapshots.
    pub fn shard(&self) -> &Shard {
        &self.shard
    }

    /// The next change to the location table (added, refreshed, removed, expired).
    ///
    /// Drain them after every call that can change the table: the connection of each binding
    /// stored is noted here on the way out, for [`Registrar::connection_closed`].
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.shard.poll_event()?;
        self.flows.observe(&event);
        self.keepalive.observe(&event);
        Some(event)
    }

    /// Expires due bindings; the shell calls it at [`Registrar::next_deadline`] or periodically.
    pub fn tick(&mut self, now_ms: u64) -> usize {
        self.shard.expire(now_ms)
    }

    /// When the next binding expires, in milliseconds.
    pub fn next_deadline(&self) -> Option<u64> {
        self.shard.next_deadline()
    }

    /// Handles one received message and writes the answer into `out`; returns its length, or
    /// `None` when nothing is to be sent. The single-worker form of [`Registrar::receive`],
    /// which also credits the answers to keep-alive pings ([`Registrar::pong`]).
    pub fn handle(
        &mut self,
        now_ms: u64,
        peer: Peer,
        bytes: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        if let Some(pong) = self.pong(bytes) {
            self.credit(pong);
            return None;
        }
        match self.receive(now_ms, peer, bytes, out, 0, 1) {
            Received::Answered(answer) => answer,
            // One shard owns every AOR.
            Received::Owner { .. } => None,
        }
    }

    /// Handles one message received by worker `me` of `shards` (each worker's registrar holds
    /// one shard of the location table; an AOR belongs to [`location::shard_of`](crate::location::shard_of)): answers it
    /// into `out` when it needs no shard or this one, else says which worker must finish it
    /// with [`Registrar::own`]. Parsing, screening, the domain, the Contact syntax and the
    /// digest check (nonce MAC, response) happen here, on the receiving worker; the owner does
    /// the nonce-count and the bindings.
    pub fn receive(
        &mut self,
        now_ms: u64,
        peer: Peer,
        bytes: &[u8],
        out: &mut [u8],
        me: usize,
        shards: usize,
    ) -> Received {
        let limits = self.config.limits;
        with_frame(bytes, &limits, |parsed| {
            let screened = screen::screen(parsed, |req, e| match req.method {
                Method::Register => self.register(now_ms, peer, req, e, &mut *out, (me, shards)),
                Method::Options => Received::Answered(self.options(peer, req, e, &mut *out)),
                // Screening lets only REGISTER and OPTIONS through.
                _ => Received::Answered(None),
            });
            match screened {
                Screened::Accept(received) => received,
                Screened::Ignore => Received::Answered(None),
                Screened::Reject(r) => Received::Answered(screen::write_rejection(
                    r,
                    bytes,
                    peer.source,
                    &self.tag,
                    out,
                )),
            }
        })
    }

    /// Finishes a REGISTER another worker received, verified and handed here with `ticket`
    /// ([`Received::Owner`]); writes the answer into `out`.
    pub fn own(
        &mut self,
        now_ms: u64,
        peer: Peer,
        bytes: &[u8],
        ticket: Ticket,
        out: &mut [u8],
    ) -> Option<usize> {
        let limits = self.config.limits;
        with_frame(bytes, &limits, |parsed| {
            let screened = screen::screen(parsed, |req, e| {
                (req.method == Method::Register)
                    .then(|| self.register_owned(now_ms, peer, req, e, ticket, out))
                    .flatten()
            });
            match screened {
                Screened::Accept(answer) => answer,
                // The receiving worker screened these very bytes.
                Screened::Reject(_) | Screened::Ignore => None,
            }
        })
    }

    /// Answers a request whose bytes did not frame on a stream (RFC 3261 18.3: no
    /// Content-Length, too large, a broken head); the shell closes the connection after it.
    /// A malformed response gets no answer.
    pub fn reject_unframed(
        &self,
        peer: Peer,
        error: sip::Error,
        bytes: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        match error.disposition() {
            sip::Disposition::Drop => None,
            sip::Disposition::Reject(..) => screen::write_rejection(
                screen::Rejection::Syntax(error.kind),
                bytes,
                peer.source,
                &self.tag,
                out,
            ),
        }
    }

    /// RFC 3261 11.2: OPTIONS is answered as an INVITE would be, here with 200 and what the
    /// registrar supports.
    fn options(
        &self,
        peer: Peer,
        req: &sip::Request<'_, '_>,
        e: &sip::Essentials<'_>,
        out: &mut [u8],
    ) -> Option<usize> {
        self.respond(peer, (req, e), 200, "OK", out, |r| {
            r.header("Allow", screen::ALLOW);
            r.header("Supported", b"path");
        })
    }

    /// The served domain a URI's host names, if any: host names compare case-insensitively,
    /// address literals by value (`[2001:db8::10]` and `[2001:db8:0::10]` are one domain).
    fn domain_of(&self, uri: &SipUri<'_>) -> Option<usize> {
        self.domains.find(uri)
    }
}

/// Header lines a message is first framed into: a REGISTER from a phone or SIPp has about a
/// dozen. Room is zeroed before framing, about 40 bytes a line, so room for [`MAX_HEADERS`]
/// costs every message some 200 instructions that only the rare long one needs.
const USUAL_HEADERS: usize = 24;
/// Header lines a message may have at most; more is 400 Too Many Headers.
pub const MAX_HEADERS: usize = 64;

/// Frames a datagram and hands the result to `f`: into room for [`USUAL_HEADERS`], and only
/// when that is too little, again into room for [`MAX_HEADERS`]. Either way `f` sees what framing
/// with the full room gives.
#[inline(always)]
fn with_frame<'b, R>(
    bytes: &'b [u8],
    limits: &Limits,
    f: impl FnOnce(Result<sip::Message<'b, '_>, sip::Error>) -> R,
) -> R {
    let mut storage = [Header::EMPTY; USUAL_HEADERS];
    match sip::parse_datagram(bytes, &mut storage, limits) {
        Err(e) if e.kind == sip::ErrorKind::TooManyHeaders => with_full_room(bytes, limits, f),
        parsed => f(parsed),
    }
}

#[cold]
#[inline(never)]
fn with_full_room<'b, R>(
    bytes: &'b [u8],
    limits: &Limits,
    f: impl FnOnce(Result<sip::Message<'b, '_>, sip::Error>) -> R,
) -> R {
    let mut storage = [Header::EMPTY; MAX_HEADERS];
    f(sip::parse_datagram(bytes, &mut storage, limits))
}
