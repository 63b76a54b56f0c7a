//! NAT keep-alive: the registrar sends OPTIONS requests (RFC 3261 11) to the devices it holds
//! bindings for, and removes the bindings that stop answering; what carriers run Kamailio's
//! nathelper for (`natping_interval`, `sipping_method = "OPTIONS"`), with usrloc's
//! `keepalive_timeout`.
//!
//! Why. A device behind NAT can be reached only while its NAT keeps the mapping its REGISTER
//! opened, and consumer NATs drop an idle UDP mapping after as little as 30 seconds, long before
//! the registration expires. A request every interval keeps the mapping open, and its answer
//! (any response, a 404 or 405 too: something is there) proves the binding still leads to the
//! device. A binding that has not answered for `timeout` is removed with [`Event::Removed`],
//! journaled like any removal: calls then go to the AOR's other bindings at once instead of
//! waiting out a transaction timeout on a dead one, and the device comes back by registering.
//! (Marking it unreachable instead would need a state UDP bindings do not have, and routing to
//! learn to skip it; a removal is what routing and persistence already understand.)
//!
//! How.
//! - Each worker pings the bindings of its own shard. A cursor walks the shard's record slots
//!   so that one walk takes one interval: slot `i` of `n` comes due `interval * (i + 1) / n`
//!   after the walk began, so the pings of a tick are the slots the tick passes, spread evenly,
//!   never the whole table. [`Registrar::poll_transmit`] writes the next due ping; the shell
//!   asks until it says `None`.
//! - Which bindings: [`KeepaliveMode::All`], every reachable one; [`KeepaliveMode::Nat`], those
//!   whose Contact does not name the address and port the REGISTER came from (a device on a
//!   public address needs no pinhole kept). Never those registered through an edge proxy (Path,
//!   RFC 3327: the edge faces the device and keeps its flow; a ping would have to be routed
//!   through it), nor those learnt over a TCP connection that has closed: they are unreachable
//!   until the device connects again, and a datagram to the address of a NAT'd TCP flow would
//!   reach nothing.
//! - Where: to the address the REGISTER came from over UDP (RFC 3581), from the socket of its
//!   address family, or through the connection it was learnt over, whichever worker holds it:
//!   the shell's send path (`io::Destination`), which a proxy will use for the requests it
//!   routes to bindings.
//! - The answer: the Via branch (`z9hG4bK` and the id) and the Call-ID (the id) name the
//!   ping: `ka`, a token derived from the nonce secret (so that an off-path sender cannot fake
//!   answers), the worker, the binding's slot and key in that worker's shard, and a sequence
//!   number. [`Registrar::pong`] recognises an answer on whichever worker receives it (over UDP
//!   the kernel picks the worker by the device's address, over TCP the connection's worker);
//!   the shell hands it to the worker it names, whose [`Registrar::credit`] clears the binding.
//!
//! State: one entry per binding pinged and not answered yet (its key, slot and the time of the
//! first unanswered ping); a binding that answers costs nothing between pings. The table's
//! events drop the entries of bindings removed, expired or refreshed (a REGISTER is a sign of
//! life too), so the entries never outlive their bindings.

use core::net::SocketAddr;

use hashbrown::HashMap;

use super::{Config, Peer, Registrar, reachable};
use crate::auth::{Algorithm, hash_hex};
use crate::location::{Binding, BindingId, Event};
use crate::sip::{self, Header, Message, Method, SipUri, Transport, Uri, Writer};

/// Which bindings are pinged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeepaliveMode {
    /// None.
    Off,
    /// Those whose Contact differs from the address the REGISTER came from: behind NAT.
    #[default]
    Nat,
    /// Every reachable binding (UDP, or TCP with its connection open).
    All,
}

/// NAT keep-alive settings (`[nat]` in the configuration file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    pub mode: KeepaliveMode,
    /// Seconds between two pings of one binding; 0 turns pinging off. 30 by default, as
    /// Kamailio's `natping_interval` is commonly set: consumer NATs forget an idle UDP mapping
    /// after 30 to 60 seconds, and one OPTIONS of some 400 octets per device every 30 seconds
    /// costs little (a million NAT'd devices: 33,000 small datagrams a second over all workers).
    pub interval: u32,
    /// Seconds a pinged binding may go without answering before it is removed; 0 never removes.
    /// 120 by default: four pings unanswered in a row, which a loss rate of a few percent almost
    /// never produces, yet a dead device leaves the table within two minutes instead of at its
    /// registration's expiry (an hour by default).
    pub timeout: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            mode: KeepaliveMode::Nat,
            interval: 30,
            timeout: 120,
        }
    }
}

impl Keepalive {
    /// The interval in milliseconds, `None` when pinging is off.
    fn interval_ms(&self) -> Option<u64> {
        match (self.mode, self.interval) {
            (KeepaliveMode::Off, _) | (_, 0) => None,
            (_, seconds) => Some(u64::from(seconds) * 1000),
        }
    }
}

/// A request the registrar wrote on its own initiative ([`Registrar::poll_transmit`]): the
/// first `len` octets of the buffer, to send to `to` (its transport, address and connection),
/// over UDP from the socket bound to `local`, the address its Via names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub len: usize,
    pub to: Peer,
    pub local: Option<SocketAddr>,
}

/// An answer to one of the registrar's pings, recognised by [`Registrar::pong`]: which worker
/// sent the ping, and to which binding of its shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pong {
    worker: usize,
    slot: u32,
    key: u32,
}

impl Pong {
    /// The worker whose shard holds the binding: the one to [`Registrar::credit`] it.
    pub fn worker(&self) -> usize {
        self.worker
    }
}

/// A binding pinged and not answered since.
#[derive(Clone, Copy, Debug)]
struct Silence {
    slot: u32,
    /// When the first unanswered ping went out.
    since: u64,
}

/// What a visit of one binding decided.
enum Visit {
    Skip,
    Ping(Outgoing),
    /// Silent for the whole timeout: remove it.
    Remove,
}

/// The first letters of every ping id.
const ID_PREFIX: &[u8] = b"ka";

/// RFC 3261 8.1.1.7: the branch "MUST always begin with the characters z9hG4bK".
const MAGIC: &[u8] = b"z9hG4bK";

/// The pinger of one worker: where its walk over the shard stands and which bindings are silent.
#[derive(Debug)]
pub(super) struct Pinger {
    /// Eight hex digits derived from the nonce secret, the same on every worker.
    token: [u8; 8],
    /// This worker's index, named in the ids of its pings.
    pub(super) worker: usize,
    /// The local addresses of the shell's UDP sockets and TCP listeners.
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    /// When the current walk began (the first call starts one).
    walk_start: Option<u64>,
    /// The slot the walk is at, and the index of the next binding in it.
    cursor: usize,
    index: usize,
    /// Numbers the pings; starts at the clock of the first one, so ids differ across restarts.
    seq: u64,
    /// Bindings pinged and not answered yet, by key.
    silent: HashMap<u32, Silence>,
}

impl Pinger {
    pub(super) fn new(secret: &[u8; 32]) -> Pinger {
        let mut keyed = Vec::with_capacity(secret.len() + 9);
        keyed.extend_from_slice(b"keepalive");
        keyed.extend_from_slice(secret);
        let digest = hash_hex(Algorithm::Sha256, &keyed);
        let mut token = [b'0'; 8];
        for (t, h) in token.iter_mut().zip(digest.as_bytes()) {
            *t = *h;
        }
        Pinger {
            token,
            worker: 0,
            udp: Vec::new(),
            tcp: Vec::new(),
            walk_start: None,
            cursor: 0,
            index: 0,
            seq: 0,
            silent: HashMap::new(),
        }
    }

    /// Drops the silence of a binding the table changed: gone, or refreshed by its device.
    pub(super) fn observe(&mut self, event: &Event) {
        if self.silent.is_empty() {
            return;
        }
        match event {
            Event::Added { .. } => {}
            Event::Refreshed { old, new, .. } => {
                self.silent.remove(&old.key());
                self.silent.remove(&new.key());
            }
            Event::Removed { binding, .. } | Event::Expired { binding, .. } => {
                self.silent.remove(&binding.key());
            }
        }
    }

    /// How many of `slots` the walk should have passed at `now`; starts the next walk once
    /// this one has passed them all and its interval is over (at once if it fell a whole
    /// interval behind, so that a stalled worker does not ping in a burst to catch up).
    fn due(&mut self, now: u64, slots: usize, interval: u64) -> usize {
        let start = *self.walk_start.get_or_insert(now);
        let mut elapsed = now.saturating_sub(start);
        if self.cursor >= slots && elapsed >= interval {
            let next = if elapsed >= 2 * interval {
                now
            } else {
                start + interval
            };
            self.walk_start = Some(next);
            self.cursor = 0;
            self.index = 0;
            elapsed = now.saturating_sub(next);
        }
        let passed = slots as u128 * u128::from(elapsed.min(interval)) / u128::from(interval);
        usize::try_from(passed).unwrap_or(slots)
    }

    /// Decides what to do with binding `id` now, and writes its ping into `out` if one is due.
    fn visit(
        &mut self,
        id: BindingId,
        b: &Binding,
        now: u64,
        config: &Config,
        out: &mut [u8],
    ) -> Visit {
        if !reachable(b) || b.path().next().is_some() {
            return Visit::Skip;
        }
        let Some(Uri::Sip(uri)) = Uri::parse(b.contact()) else {
            return Visit::Skip;
        };
        let nat_only = config.keepalive.mode == KeepaliveMode::Nat;
        // RFC 3261 19.1.1: headers are not allowed in a Request-URI.
        if uri.headers.is_some() || (nat_only && !behind_nat(b, &uri)) {
            return Visit::Skip;
        }
        let timeout = u64::from(config.keepalive.timeout) * 1000;
        let silence = self
            .silent
            .get(&b.key())
            // A silence from before the last refresh, or of another binding once keys wrapped,
            // does not count.
            .filter(|s| s.slot == id.slot() && b.updated_at() <= s.since)
            .copied();
        if let Some(s) = silence
            && timeout > 0
            && now.saturating_sub(s.since) >= timeout
        {
            return Visit::Remove;
        }
        let Some(outgoing) = self.write_ping(id, b, config, out) else {
            return Visit::Skip;
        };
        if timeout > 0 && silence.is_none() {
            self.silent.insert(
                b.key(),
                Silence {
                    slot: id.slot(),
                    since: now,
                },
            );
        }
        Visit::Ping(outgoing)
    }

    /// Writes an OPTIONS to binding `b` into `out` (RFC 3261 8.1.1 and 11.1): Request-URI and
    /// To the contact, a fresh branch, Call-ID and From tag. `None` when it does not fit or no
    /// socket can send it.
    fn write_ping(
        &mut self,
        id: BindingId,
        b: &Binding,
        config: &Config,
        out: &mut [u8],
    ) -> Option<Outgoing> {
        let to = Peer {
            source: b.source(),
            transport: b.transport(),
            connection: b.connection(),
            local: None,
        };
        let family = |a: &&SocketAddr| a.is_ipv4() == to.source.is_ipv4();
        let local = match to.transport {
            // The socket the binding was learnt on, else the first of its family; none, no ping.
            Transport::Udp => Some(
                *b.local()
                    .and_then(|i| self.udp.get(usize::from(i)))
                    .filter(family)
                    .or_else(|| self.udp.iter().find(family))?,
            ),
            // On a connection the Via only names the server (RFC 3261 18.2.2: the answer comes
            // back on the connection); the connection's own address is not recorded.
            _ => self
                .tcp
                .iter()
                .find(family)
                .or_else(|| self.tcp.first())
                .copied(),
        };
        let domain = config
            .domains
            .first()
            .map_or("invalid", |d| d.name.as_str());
        self.seq = self.seq.wrapping_add(1);
        let mut w = Writer::new(out);
        w.put(b"OPTIONS ");
        w.put(b.contact());
        w.put(b" SIP/2.0\r\nVia: SIP/2.0/");
        w.put(to.transport.as_str().as_bytes());
        w.put(b" ");
        match local {
            Some(a) if !a.ip().is_unspecified() => {
                if a.is_ipv6() {
                    w.put(b"[");
                    w.put_ip(a.ip());
                    w.put(b"]");
                } else {
                    w.put_ip(a.ip());
                }
                w.put(b":");
                w.put_u64(u64::from(a.port()));
            }
            // Listening on every address: the served domain names the server (the device
            // answers to where the request came from: `received` and `rport`).
            Some(a) => {
                w.put(domain.as_bytes());
                w.put(b":");
                w.put_u64(u64::from(a.port()));
            }
            None => w.put(domain.as_bytes()),
        }
        w.put(b";branch=");
        w.put(MAGIC);
        self.put_id(&mut w, id);
        if to.transport == Transport::Udp {
            // RFC 3581: answer to the source address and port, through the device's NAT.
            w.put(b";rport");
        }
        w.put(b"\r\nMax-Forwards: 70\r\nFrom: <sip:keepalive@");
        w.put(domain.as_bytes());
        w.put(b">;tag=");
        self.put_id(&mut w, id);
        w.put(b"\r\nTo: <");
        w.put(b.contact());
        w.put(b">\r\nCall-ID: ");
        self.put_id(&mut w, id);
        w.put(b"\r\nCSeq: 1 OPTIONS\r\nUser-Agent: ");
        w.put_value(config.server.as_bytes());
        w.put(b"\r\nContent-Length: 0\r\n\r\n");
        let len = w.finish().ok()?;
        Some(Outgoing { len, to, local })
    }

    /// `ka<token>.<worker>.<slot>.<key>.<seq>`: the ping's branch (after the magic cookie),
    /// Call-ID and From tag; token characters only.
    fn put_id(&self, w: &mut Writer<'_>, id: BindingId) {
        w.put(ID_PREFIX);
        w.put(&self.token);
        for n in [
            self.worker as u64,
            u64::from(id.slot()),
            u64::from(id.key()),
            self.seq,
        ] {
            w.put(b".");
            w.put_u64(n);
        }
    }

    /// The ping an id names, if this server's token is in it.
    fn parse_id(&self, id: &[u8]) -> Option<Pong> {
        let rest = id.strip_prefix(ID_PREFIX)?.strip_prefix(&self.token[..])?;
        let mut numbers = rest.strip_prefix(b".")?.split(|&b| b == b'.');
        let mut next = |max: u64| -> Option<u64> {
            let digits = numbers.next()?;
            let all_digits = !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
            all_digits.then(|| sip::chars::parse_decimal(digits, max))?
        };
        let worker = usize::try_from(next(u64::from(u16::MAX))?).ok()?;
        let slot = u32::try_from(next(u64::from(u32::MAX))?).ok()?;
        let key = u32::try_from(next(u64::from(u32::MAX))?).ok()?;
        next(u64::MAX)?;
        numbers
            .next()
            .is_none()
            .then_some(Pong { worker, slot, key })
    }
}

/// Whether a binding looks learnt from behind NAT: its Contact does not name the address and
/// port its REGISTER came from (a host name, a private address the NAT rewrote, another port;
/// over TCP the source port is the connection's, so nearly every TCP binding qualifies).
fn behind_nat(b: &Binding, contact: &SipUri<'_>) -> bool {
    let source = b.source();
    let default_port = if contact.secure { 5061 } else { 5060 };
    contact.host.ip() != Some(source.ip()) || contact.port.unwrap_or(default_port) != source.port()
}

impl Registrar {
    /// The number of the UDP socket (in [`Registrar::set_local_addresses`]) a request from
    /// `peer` came in on, if it came over UDP on one of them.
    pub(super) fn local_index(&self, peer: Peer) -> Option<u16> {
        if peer.transport != Transport::Udp || peer.connection.is_some() {
            return None;
        }
        let local = peer.local?;
        let i = self.keepalive.udp.iter().position(|a| *a == local)?;
        u16::try_from(i).ok()
    }

    /// New keep-alive settings (a SIGHUP reload). A change forgets which bindings were waiting
    /// for an answer, so that a silence from before the change (pinging off, a longer timeout)
    /// removes nothing: each binding's next ping starts its silence again.
    pub fn set_keepalive(&mut self, keepalive: Keepalive) {
        if self.config.keepalive == keepalive {
            return;
        }
        self.config.keepalive = keepalive;
        self.keepalive.silent.clear();
    }

    /// The local addresses the shell sends from: its UDP sockets and TCP listeners, ports
    /// resolved, in the same order on every worker. A ping names one in its Via; a UDP ping
    /// leaves from the socket the binding was learnt on ([`crate::location::Binding::local`]),
    /// else (not known, as after a restart) from the first socket of the device's address
    /// family, and without one it is not sent.
    pub fn set_local_addresses(&mut self, udp: &[SocketAddr], tcp: &[SocketAddr]) {
        self.keepalive.udp = udp.to_vec();
        self.keepalive.tcp = tcp.to_vec();
    }

    /// The next keep-alive ping due at `now_ms`, written into `out`, with where it goes; `None`
    /// when no more is due now (or pinging is off). Removes, on the way, the bindings silent for
    /// the whole timeout: drain [`Registrar::poll_event`] after it. Call it after every tick,
    /// until it says `None`.
    pub fn poll_transmit(&mut self, now_ms: u64, out: &mut [u8]) -> Option<Outgoing> {
        let interval = self.config.keepalive.interval_ms()?;
        loop {
            let slots = self.shard.slots();
            let k = &mut self.keepalive;
            if k.cursor >= k.due(now_ms, slots, interval) {
                return None;
            }
            let Some((id, binding)) = self.shard.slot_entries(k.cursor, now_ms).nth(k.index) else {
                k.cursor += 1;
                k.index = 0;
                continue;
            };
            match k.visit(id, binding, now_ms, &self.config, out) {
                Visit::Skip => k.index += 1,
                Visit::Ping(outgoing) => {
                    k.index += 1;
                    return Some(outgoing);
                }
                // The next binding of the slot moves into this one's index.
                Visit::Remove => {
                    k.silent.remove(&binding.key());
                    let _ = self.shard.remove(id, now_ms);
                }
            }
        }
    }

    /// If `bytes` is a response to one of this server's keep-alive pings, which (its status
    /// does not matter: any answer proves the device is there). Cheap for anything else: a
    /// request is told by its first octets and not parsed.
    pub fn pong(&self, bytes: &[u8]) -> Option<Pong> {
        self.config.keepalive.interval_ms()?;
        let start = bytes.iter().position(|&b| b != b'\r' && b != b'\n')?;
        if !bytes.get(start..start + 4)?.eq_ignore_ascii_case(b"SIP/") {
            return None;
        }
        let mut storage = [Header::EMPTY; super::MAX_HEADERS];
        let parsed = sip::parse_datagram(bytes, &mut storage, &self.config.limits);
        let Ok(Message::Response(response)) = parsed else {
            return None;
        };
        let headers = response.headers;
        let id = headers.top_via().ok()?.branch?.strip_prefix(MAGIC)?;
        let cseq = headers.cseq().ok()?;
        if headers.call_id().ok()? != id || cseq.method != Method::Options {
            return None;
        }
        self.keepalive.parse_id(id)
    }

    /// Credits the binding a [`Registrar::pong`] names (this worker's, per [`Pong::worker`]):
    /// it answered, so its silence ends.
    pub fn credit(&mut self, pong: Pong) {
        let k = &mut self.keepalive;
        if pong.worker == k.worker && k.silent.get(&pong.key).is_some_and(|s| s.slot == pong.slot) {
            k.silent.remove(&pong.key);
        }
    }

    /// A request to `to` could not be delivered (the shell found its connection gone): the
    /// bindings learnt over that connection are treated as after its closing (unreachable or
    /// removed, per the policy). Returns how many were affected.
    pub fn unreachable(&mut self, now_ms: u64, to: Peer) -> usize {
        match to.connection {
            Some(connection) => self.connection_closed(now_ms, connection),
            None => 0,
        }
    }

    /// Bindings pinged and not answered yet.
    pub fn unanswered(&self) -> usize {
        self.keepalive.silent.len()
    }
}

#[cfg(test)]
mod tests {
    //! The pinger on a virtual clock: when pings go out and how they spread, what they look
    //! like, which bindings get them, answers crediting bindings, silent ones removed, TCP
    //! bindings through their connection and never over UDP once it has closed.

    use super::*;
    use crate::location::Aor;
    use crate::registrar::{FlowClose, Received};

    const UDP: &str = "198.51.100.1:5060";
    const TCP: &str = "198.51.100.1:5060";
    const INTERVAL: u64 = 10_000;

    fn registrar(mode: KeepaliveMode, timeout: u32) -> Registrar {
        let mut config = Config::with_domains(&["example.com".to_string()]);
        config.auth.required = false;
        config.policy.max_expires = 3600;
        config.keepalive = Keepalive {
            mode,
            interval: (INTERVAL / 1000) as u32,
            timeout,
        };
        let mut reg = Registrar::new(config, [7; 32]);
        reg.set_local_addresses(&[UDP.parse().unwrap()], &[TCP.parse().unwrap()]);
        reg
    }

    fn udp(source: &str) -> Peer {
        Peer {
            source: source.parse().unwrap(),
            transport: Transport::Udp,
            connection: None,
            local: None,
        }
    }

    fn tcp(source: &str, connection: u64) -> Peer {
        Peer {
            source: source.parse().unwrap(),
            transport: Transport::Tcp,
            connection: Some(connection),
            local: None,
        }
    }

    /// Registers `contact` for `user` from `peer`, drains the events.
    fn register(reg: &mut Registrar, now: u64, peer: Peer, user: &str, contact: &str) {
        let transport = peer.transport.as_str();
        let msg = format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/{transport} {};branch=z9hG4bK{user}{now}\r\n\
             From: <sip:{user}@example.com>;tag=1\r\nTo: <sip:{user}@example.com>\r\n\
             Call-ID: {user}\r\nCSeq: {} REGISTER\r\nContact: <{contact}>\r\nExpires: 3600\r\n\
             Content-Length: 0\r\n\r\n",
            peer.source,
            now / 100 + 1
        );
        let mut out = [0u8; 2048];
        let n = reg.handle(now, peer, msg.as_bytes(), &mut out).unwrap();
        assert!(
            out[..n].starts_with(b"SIP/2.0 200 "),
            "{}",
            String::from_utf8_lossy(&out[..n])
        );
        drain(reg);
    }

    /// Drains the events, returning them.
    fn drain(reg: &mut Registrar) -> Vec<Event> {
        std::iter::from_fn(|| reg.poll_event()).collect()
    }

    /// One ping sent: when, its text, where.
    #[derive(Debug)]
    struct Sent {
        at: u64,
        text: String,
        to: Peer,
        local: Option<SocketAddr>,
    }

    impl Sent {
        /// The Request-URI.
        fn uri(&self) -> &str {
            self.text.split(' ').nth(1).unwrap()
        }

        /// A response to it with `code`, as a device writes one: the request's Via (with
        /// `received` and `rport` filled), From, To with a tag, Call-ID and CSeq.
        fn answer(&self, code: u16) -> Vec<u8> {
            let mut lines = self.text.split("\r\n");
            lines.next();
            let mut out = format!("SIP/2.0 {code} Whatever\r\n");
            for line in lines.take_while(|l| !l.is_empty()) {
                let keep = ["Via:", "From:", "To:", "Call-ID:", "CSeq:"];
                if let Some(name) = keep.iter().find(|k| line.starts_with(*k)) {
                    let extra = match *name {
                        "Via:" => ";received=203.0.113.7",
                        "To:" => ";tag=dev",
                        _ => "",
                    };
                    out += &format!("{line}{extra}\r\n");
                }
            }
            out += "Content-Length: 0\r\n\r\n";
            out.into_bytes()
        }
    }

    /// The next ping due at `now`, if any.
    fn next_ping(reg: &mut Registrar, now: u64) -> Option<Sent> {
        let mut out = [0u8; 2048];
        let o = reg.poll_transmit(now, &mut out)?;
        Some(Sent {
            at: now,
            text: String::from_utf8(out[..o.len].to_vec()).unwrap(),
            to: o.to,
            local: o.local,
        })
    }

    /// Polls every 100 ms from `from` up to `to` (excluded), collecting what is sent.
    fn run(reg: &mut Registrar, from: u64, to: u64) -> Vec<Sent> {
        let mut sent = Vec::new();
        for now in (from..to).step_by(100) {
            while let Some(ping) = next_ping(reg, now) {
                sent.push(ping);
            }
            drain(reg);
        }
        sent
    }

    fn bindings(reg: &Registrar, user: &str, now: u64) -> usize {
        let uri = format!("sip:{user}@example.com");
        let parsed = Uri::parse(uri.as_bytes()).unwrap();
        let aor = Aor::from_uri(parsed.sip().unwrap());
        reg.shard().count(aor.as_bytes(), now)
    }

    #[test]
    fn every_binding_is_pinged_once_an_interval_spread_over_it() {
        let mut reg = registrar(KeepaliveMode::All, 0);
        for i in 0..100 {
            register(
                &mut reg,
                0,
                udp(&format!("192.0.2.{}:5060", i + 1)),
                &format!("u{i}"),
                &format!("sip:u{i}@10.0.0.{}", i + 1),
            );
        }
        let sent = run(&mut reg, 0, 3 * INTERVAL + 1);
        assert_eq!(sent.len(), 300);
        // Each binding once a walk, a whole interval apart.
        for i in 0..100 {
            let uri = format!("sip:u{i}@10.0.0.{}", i + 1);
            let at: Vec<u64> = sent
                .iter()
                .filter(|s| s.uri() == uri)
                .map(|s| s.at)
                .collect();
            assert_eq!(at.len(), 3, "{uri}");
            assert!(
                at.windows(2).all(|w| w[1] - w[0] == INTERVAL),
                "{uri}: {at:?}"
            );
        }
        // Never a burst: a 100 ms tick sends about one hundredth of them.
        let mut per_tick = std::collections::HashMap::new();
        for s in &sent {
            *per_tick.entry(s.at).or_insert(0) += 1;
        }
        assert!(per_tick.values().all(|&n| n <= 2), "{per_tick:?}");
        // The first walk began at the first poll and ended an interval later.
        assert_eq!(sent.first().map(|s| s.at), Some(100));
        assert_eq!(sent[99].at, INTERVAL);
    }

    #[test]
    fn a_tick_costs_the_slots_it_passes_not_the_table() {
        // A late tick catches up by the slots due, no more; a stall of a whole interval starts
        // a new walk rather than a burst.
        let mut reg = registrar(KeepaliveMode::All, 0);
        for i in 0..50 {
            register(
                &mut reg,
                0,
                udp(&format!("192.0.2.{}:5060", i + 1)),
                &format!("u{i}"),
                "sip:x@10.0.0.1",
            );
        }
        assert_eq!(run(&mut reg, 0, 100).len(), 0);
        assert_eq!(run(&mut reg, INTERVAL / 5, INTERVAL / 5 + 1).len(), 10);
        assert_eq!(run(&mut reg, INTERVAL / 2, INTERVAL / 2 + 1).len(), 15);
        assert_eq!(run(&mut reg, 5 * INTERVAL, 5 * INTERVAL + 1).len(), 25);
        assert_eq!(run(&mut reg, 5 * INTERVAL + 1, 5 * INTERVAL + 2).len(), 0);
        assert_eq!(run(&mut reg, 6 * INTERVAL + 1, 6 * INTERVAL + 2).len(), 50);
    }

    #[test]
    fn a_ping_is_an_options_request_a_device_can_answer() {
        let mut reg = registrar(KeepaliveMode::All, 0);
        register(
            &mut reg,
            0,
            udp("203.0.113.7:40000"),
            "alice",
            "sip:alice@10.0.0.2:5062;ob",
        );
        let sent = run(&mut reg, 0, INTERVAL + 100);
        let [ping] = &sent[..] else {
            panic!("{sent:?}")
        };
        assert_eq!(ping.to, udp("203.0.113.7:40000"));
        assert_eq!(ping.local, Some(UDP.parse().unwrap()));
        // Parsed and checked as any request: RFC 3261 8.1.1's mandatory headers.
        let mut storage = [Header::EMPTY; 32];
        let parsed =
            sip::parse_datagram(ping.text.as_bytes(), &mut storage, &sip::Limits::default());
        let Ok(Message::Request(req)) = parsed else {
            panic!("{}", ping.text)
        };
        let e = sip::check_request(&req).expect("a valid request");
        assert_eq!(req.method, Method::Options);
        assert_eq!(req.uri, b"sip:alice@10.0.0.2:5062;ob");
        assert_eq!(e.cseq.method, Method::Options);
        let via = req.headers.top_via().unwrap();
        assert!(via.branch.unwrap().starts_with(b"z9hG4bKka"));
        assert_eq!(via.rport, sip::Rport::Requested);
        assert_eq!(via.host_raw, b"198.51.100.1");
        assert_eq!(via.port, Some(5060));
        assert_eq!(req.headers.max_forwards(), Ok(Some(70)));
        assert_eq!(e.to.uri.raw(), b"sip:alice@10.0.0.2:5062;ob");
        assert!(req.headers.from().unwrap().params.get(b"tag").is_some());
        assert!(
            ping.text.ends_with("\r\nContent-Length: 0\r\n\r\n"),
            "{}",
            ping.text
        );
        // Every ping is a new transaction.
        let again = run(&mut reg, INTERVAL + 100, 2 * INTERVAL + 100);
        let branch = |t: &str| {
            t.split("branch=")
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string()
        };
        assert_ne!(branch(&ping.text), branch(&again[0].text));
    }

    #[test]
    fn answered_bindings_survive_and_silent_ones_are_removed_after_the_timeout() {
        let mut reg = registrar(KeepaliveMode::All, 30);
        register(
            &mut reg,
            0,
            udp("203.0.113.1:5060"),
            "alice",
            "sip:alice@10.0.0.1",
        );
        register(
            &mut reg,
            0,
            udp("203.0.113.2:5060"),
            "bob",
            "sip:bob@10.0.0.2",
        );
        // Two silent devices of one AOR: both go.
        register(
            &mut reg,
            0,
            udp("203.0.113.3:5060"),
            "carol",
            "sip:carol@10.0.0.31",
        );
        register(
            &mut reg,
            100,
            udp("203.0.113.3:5060"),
            "carol",
            "sip:carol@10.0.0.32",
        );
        let mut removed = Vec::new();
        for now in (0..10 * INTERVAL).step_by(100) {
            while let Some(ping) = next_ping(&mut reg, now) {
                // Alice answers, with a 405 once: any answer will do. Bob never does.
                if ping.uri() == "sip:alice@10.0.0.1" {
                    let code = if now < INTERVAL { 405 } else { 200 };
                    let pong = reg.pong(&ping.answer(code)).expect("recognised");
                    assert_eq!(pong.worker(), 0);
                    reg.credit(pong);
                }
            }
            for e in drain(&mut reg) {
                removed.push((now, e));
            }
        }
        assert_eq!(bindings(&reg, "alice", 10 * INTERVAL), 1);
        assert_eq!(bindings(&reg, "bob", 10 * INTERVAL), 0);
        assert_eq!(bindings(&reg, "carol", 10 * INTERVAL), 0);
        // The first unanswered ping went out in the first walk; three walks later the binding
        // is removed (Removed, for the journal), without a fourth ping.
        let mut gone = Vec::new();
        for (at, event) in &removed {
            let Event::Removed { binding, .. } = event else {
                panic!("{removed:?}")
            };
            assert!((3 * INTERVAL..4 * INTERVAL + 100).contains(at), "{at}");
            gone.push(String::from_utf8(binding.contact().to_vec()).unwrap());
        }
        gone.sort();
        assert_eq!(
            gone,
            [
                "sip:bob@10.0.0.2",
                "sip:carol@10.0.0.31",
                "sip:carol@10.0.0.32"
            ]
        );
        assert_eq!(reg.unanswered(), 0);
    }

    #[test]
    fn a_register_ends_a_silence() {
        let mut reg = registrar(KeepaliveMode::All, 30);
        register(
            &mut reg,
            0,
            udp("203.0.113.2:5060"),
            "bob",
            "sip:bob@10.0.0.2",
        );
        run(&mut reg, 0, 2 * INTERVAL + 100);
        assert_eq!(reg.unanswered(), 1);
        // Bob refreshes just before he would be removed: silence starts again from his refresh.
        register(
            &mut reg,
            3 * INTERVAL - 500,
            udp("203.0.113.2:5060"),
            "bob",
            "sip:bob@10.0.0.2",
        );
        assert_eq!(reg.unanswered(), 0);
        run(&mut reg, 2 * INTERVAL + 100, 5 * INTERVAL + 100);
        assert_eq!(bindings(&reg, "bob", 5 * INTERVAL + 100), 1);
        run(&mut reg, 5 * INTERVAL + 100, 7 * INTERVAL + 100);
        assert_eq!(bindings(&reg, "bob", 7 * INTERVAL + 100), 0);
    }

    #[test]
    fn answers_are_recognised_only_with_this_servers_token_and_id() {
        let mut reg = registrar(KeepaliveMode::All, 30);
        register(
            &mut reg,
            0,
            udp("203.0.113.1:5060"),
            "alice",
            "sip:alice@10.0.0.1",
        );
        let sent = run(&mut reg, 0, INTERVAL + 100);
        let answer = String::from_utf8(sent[0].answer(200)).unwrap();
        assert!(reg.pong(answer.as_bytes()).is_some());
        // Leading line ends, as a UDP keep-alive might leave, are allowed.
        assert!(reg.pong(format!("\r\n{answer}").as_bytes()).is_some());
        // Another server's secret, a Call-ID that differs, another method, a request.
        let other = registrar(KeepaliveMode::All, 30);
        let mut foreign = Registrar::new(other.config().clone(), [8; 32]);
        foreign.set_worker(0);
        assert_eq!(foreign.pong(answer.as_bytes()), None);
        let call_id = answer.replace("Call-ID: ka", "Call-ID: kb");
        assert_eq!(reg.pong(call_id.as_bytes()), None);
        let method = answer.replace("CSeq: 1 OPTIONS", "CSeq: 1 INFO");
        assert_eq!(reg.pong(method.as_bytes()), None);
        let id = answer
            .split("Call-ID: ")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap();
        let longer = answer.replace(id, &format!("{id}.9"));
        assert_eq!(reg.pong(longer.as_bytes()), None);
        assert_eq!(reg.pong(sent[0].text.as_bytes()), None);
        // An answer crediting another worker's binding is not this worker's to credit.
        let pong = reg.pong(answer.as_bytes()).unwrap();
        reg.set_worker(1);
        reg.credit(pong);
        assert_eq!(reg.unanswered(), 1);
        reg.set_worker(0);
        // Through the single-worker path too: `handle` credits it and answers nothing.
        let mut out = [0u8; 512];
        assert_eq!(reg.unanswered(), 1);
        assert_eq!(
            reg.handle(
                INTERVAL,
                udp("203.0.113.1:5060"),
                answer.as_bytes(),
                &mut out
            ),
            None
        );
        assert_eq!(reg.unanswered(), 0);
    }

    #[test]
    fn nat_mode_pings_only_contacts_that_differ_from_their_source() {
        let mut reg = registrar(KeepaliveMode::Nat, 0);
        // Public and symmetric: the contact is where it sends from.
        register(
            &mut reg,
            0,
            udp("203.0.113.1:5060"),
            "public",
            "sip:public@203.0.113.1",
        );
        register(
            &mut reg,
            0,
            udp("203.0.113.2:5070"),
            "port",
            "sip:port@203.0.113.2:5070;transport=udp",
        );
        // Behind NAT: a private address, another port, a host name.
        register(
            &mut reg,
            0,
            udp("203.0.113.3:5060"),
            "private",
            "sip:private@10.0.0.3",
        );
        register(
            &mut reg,
            0,
            udp("203.0.113.4:61000"),
            "mapped",
            "sip:mapped@203.0.113.4",
        );
        register(
            &mut reg,
            0,
            udp("203.0.113.5:5060"),
            "named",
            "sip:named@phone.example.net",
        );
        // One AOR, three devices behind one address: only the public one is left out, though it
        // comes first in the AOR's list.
        let multi = udp("203.0.113.6:5060");
        register(&mut reg, 0, multi, "multi", "sip:multi@10.0.0.61");
        register(&mut reg, 100, multi, "multi", "sip:multi@10.0.0.62");
        register(&mut reg, 200, multi, "multi", "sip:multi@203.0.113.6");
        let mut uris: Vec<String> = run(&mut reg, 0, INTERVAL + 100)
            .iter()
            .map(|s| s.uri().to_string())
            .collect();
        uris.sort();
        assert_eq!(
            uris,
            [
                "sip:mapped@203.0.113.4",
                "sip:multi@10.0.0.61",
                "sip:multi@10.0.0.62",
                "sip:named@phone.example.net",
                "sip:private@10.0.0.3"
            ]
        );
        // Off: nothing, and answers are not even looked at.
        let mut off = registrar(KeepaliveMode::Off, 0);
        register(
            &mut off,
            0,
            udp("203.0.113.3:5060"),
            "private",
            "sip:private@10.0.0.3",
        );
        assert!(run(&mut off, 0, INTERVAL + 100).is_empty());
    }

    #[test]
    fn tcp_bindings_are_pinged_through_their_connection_and_not_once_it_closes() {
        let mut reg = registrar(KeepaliveMode::All, 0);
        let id = (1 << 40) | 7;
        register(
            &mut reg,
            0,
            tcp("203.0.113.9:41000", id),
            "alice",
            "sip:alice@10.0.0.9;transport=tcp",
        );
        register(
            &mut reg,
            0,
            udp("203.0.113.8:5060"),
            "bob",
            "sip:bob@10.0.0.8",
        );
        let sent = run(&mut reg, 0, INTERVAL + 100);
        let ping = sent
            .iter()
            .find(|s| s.uri().starts_with("sip:alice"))
            .unwrap();
        assert_eq!(ping.to, tcp("203.0.113.9:41000", id));
        assert!(
            ping.text
                .contains("\r\nVia: SIP/2.0/TCP 198.51.100.1:5060;branch=z9hG4bKka"),
            "{}",
            ping.text
        );
        assert!(!ping.text.contains("rport"));
        // The connection is reported gone (closed, or found gone when a ping was sent on it):
        // the binding stays, unreachable, and is pinged no more, over TCP or UDP.
        assert_eq!(reg.unreachable(INTERVAL, ping.to), 1);
        drain(&mut reg);
        assert_eq!(bindings(&reg, "alice", INTERVAL), 1);
        let later = run(&mut reg, INTERVAL + 100, 3 * INTERVAL + 100);
        assert_eq!(later.len(), 2);
        assert!(
            later.iter().all(|s| s.uri() == "sip:bob@10.0.0.8"),
            "{later:?}"
        );
        // Under the remove policy it goes.
        let mut reg = registrar(KeepaliveMode::All, 0);
        let mut policy = reg.config().policy.clone();
        policy.flow_close = FlowClose::Remove;
        reg.set_policy(policy);
        register(
            &mut reg,
            0,
            tcp("203.0.113.9:41000", id),
            "alice",
            "sip:alice@10.0.0.9;transport=tcp",
        );
        assert_eq!(reg.unreachable(0, tcp("203.0.113.9:41000", id)), 1);
        assert!(matches!(drain(&mut reg)[..], [Event::Removed { .. }]));
    }

    #[test]
    fn bindings_behind_an_edge_proxy_or_without_a_socket_are_not_pinged() {
        let mut reg = registrar(KeepaliveMode::All, 0);
        // Path: the edge proxy keeps the device's flow.
        let msg = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.50;branch=z9hG4bKp\r\n\
             From: <sip:edge@example.com>;tag=1\r\nTo: <sip:edge@example.com>\r\nCall-ID: p\r\n\
             CSeq: 1 REGISTER\r\nPath: <sip:edge.example.com;lr>\r\nContact: <sip:edge@10.0.0.1>\r\n\
             Content-Length: 0\r\n\r\n";
        let mut out = [0u8; 2048];
        let received = reg.receive(0, udp("192.0.2.50:5060"), msg.as_bytes(), &mut out, 0, 1);
        assert!(matches!(received, Received::Answered(Some(_))));
        drain(&mut reg);
        assert_eq!(bindings(&reg, "edge", 0), 1);
        // IPv6 device, IPv4 sockets only.
        register(
            &mut reg,
            0,
            udp("[2001:db8::9]:5060"),
            "six",
            "sip:six@[2001:db8::9]:5070",
        );
        assert!(run(&mut reg, 0, 2 * INTERVAL).is_empty());
    }

    /// A reload (SIGHUP) applies new settings at once: pinging turned off stops the pings and
    /// removes nothing; turned back on, a silence from before the change is forgotten, so the
    /// binding is pinged again and removed only a full timeout after that.
    #[test]
    fn a_reload_changes_the_pinging_without_removing_on_old_silences() {
        let mut reg = registrar(KeepaliveMode::All, 30);
        register(
            &mut reg,
            0,
            udp("203.0.113.1:5060"),
            "dave",
            "sip:dave@10.0.0.4",
        );
        let before = run(&mut reg, 0, 2 * INTERVAL);
        assert!(!before.is_empty(), "pinged while on");
        let settings = reg.config().keepalive;
        reg.set_keepalive(Keepalive {
            interval: 0,
            ..settings
        });
        assert!(
            run(&mut reg, 2 * INTERVAL, 6 * INTERVAL).is_empty(),
            "pinging off"
        );
        assert_eq!(
            bindings(&reg, "dave", 6 * INTERVAL),
            1,
            "nothing removed while off"
        );
        // Silent since its first ping, far longer than the 30 s timeout by now.
        reg.set_keepalive(settings);
        let again = run(&mut reg, 6 * INTERVAL, 8 * INTERVAL);
        assert!(!again.is_empty(), "pinged again once back on");
        assert_eq!(
            bindings(&reg, "dave", 8 * INTERVAL),
            1,
            "an old silence removes nothing"
        );
        run(&mut reg, 8 * INTERVAL, 12 * INTERVAL);
        assert_eq!(
            bindings(&reg, "dave", 12 * INTERVAL),
            0,
            "a new silence does"
        );
    }

    /// With several UDP sockets of one family, a device is pinged from the one its REGISTER
    /// came in on: its NAT forwards only what comes from the address the mapping was opened to.
    /// A refresh on another socket moves it; not knowing the socket falls back to the first.
    #[test]
    fn pings_leave_from_the_socket_the_binding_was_learnt_on() {
        let mut reg = registrar(KeepaliveMode::All, 0);
        let sockets: [SocketAddr; 2] = [
            "198.51.100.1:5060".parse().unwrap(),
            "198.51.100.2:5080".parse().unwrap(),
        ];
        reg.set_local_addresses(&sockets, &[TCP.parse().unwrap()]);
        let on = |local: Option<SocketAddr>, source: &str| Peer {
            local,
            ..udp(source)
        };
        register(
            &mut reg,
            0,
            on(Some(sockets[1]), "203.0.113.1:5060"),
            "alice",
            "sip:alice@10.0.0.1",
        );
        register(
            &mut reg,
            0,
            on(None, "203.0.113.2:5060"),
            "bob",
            "sip:bob@10.0.0.2",
        );
        let sent = run(&mut reg, 0, INTERVAL + 100);
        let from = |user: &str| {
            let mut l: Vec<_> = sent
                .iter()
                .filter(|p| p.uri().contains(user))
                .map(|p| p.local)
                .collect();
            l.dedup();
            l
        };
        assert_eq!(from("alice"), [Some(sockets[1])]);
        assert!(
            sent.iter()
                .filter(|p| p.uri().contains("alice"))
                .all(|p| p.text.contains("Via: SIP/2.0/UDP 198.51.100.2:5080;"))
        );
        assert_eq!(from("bob"), [Some(sockets[0])]);
        // Alice refreshes through the first socket: her pings follow.
        register(
            &mut reg,
            INTERVAL + 100,
            on(Some(sockets[0]), "203.0.113.1:5060"),
            "alice",
            "sip:alice@10.0.0.1",
        );
        let sent = run(&mut reg, INTERVAL + 100, 3 * INTERVAL);
        let alice: Vec<_> = sent
            .iter()
            .filter(|p| p.uri().contains("alice"))
            .map(|p| p.local)
            .collect();
        assert!(
            !alice.is_empty() && alice.iter().all(|l| *l == Some(sockets[0])),
            "{alice:?}"
        );
    }
}
