//! SIP over TCP: accepting connections, framing their byte streams into messages, writing the
//! answers back, and closing connections that break the limits.
//!
//! Two layers. [`Conn`] is one connection's state without the socket: it is fed the bytes read
//! and the time, frames them with [`sip::parse_stream`] (RFC 3261 18.3: Content-Length delimits
//! messages on a stream), answers keep-alive pings, queues what is to be written and decides when
//! the connection must close; the tests drive it with byte chunks and a virtual clock.
//! [`Tcp`] is the shell around it: the listeners, the mio streams keyed by connection id, reads,
//! partial writes and write interest. Neither interprets a message beyond its framing: each
//! complete message goes to the worker's [`Sink`], which answers it.
//!
//! Not here: TLS and outbound connections: a request to a binding learnt over TCP follows the
//! connection the device opened ([`Tcp::send`], whichever worker wrote it), and fails if that
//! connection is gone, since behind NAT a new connection to the device's address reaches
//! nothing. Nor CRLF keep-alive pings of our own (RFC 5626 makes the client ping; we answer;
//! the registrar's keep-alive is a SIP OPTIONS request sent through the same path).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use super::{Datagram, Sink, now_ms};
use crate::sip::{self, Transport};

/// Limits on TCP connections; beyond them a connection is refused or closed, never the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    /// Open connections per loop. One more is accepted and closed at once (so the backlog drains
    /// and the client learns it at connect time), and counted in [`TcpStats::refused`].
    pub max_connections: usize,
    /// Largest message, head and body, in octets. A connection whose next message announces or
    /// reaches more is answered 513 Message Too Large (if the element writes one) and closed.
    pub max_message: usize,
    /// A connection without a complete message or a keep-alive ping for this long is closed.
    /// Partial bytes do not count: a client trickling one header a minute is idle.
    pub idle_timeout_ms: u64,
    /// Octets queued for a peer that does not read; beyond it the connection is closed at once.
    pub max_write_queue: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits::new(10_000, 65_535, Duration::from_secs(120))
    }
}

impl TcpLimits {
    /// Limits from configuration; the write queue may hold four messages of the largest size.
    pub fn new(max_connections: usize, max_message: usize, idle_timeout: Duration) -> TcpLimits {
        TcpLimits {
            max_connections,
            max_message,
            idle_timeout_ms: u64::try_from(idle_timeout.as_millis()).unwrap_or(u64::MAX),
            max_write_queue: max_message.saturating_mul(4),
        }
    }

    fn sip(&self) -> sip::Limits {
        sip::Limits {
            max_message: self.max_message,
            ..sip::Limits::default()
        }
    }
}

/// Counters of what happened to one worker's TCP connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections accepted and closed at once because `max_connections` were open.
    pub refused: u64,
    /// Closed because the peer closed (or reset) its side.
    pub closed_by_peer: u64,
    /// Closed after the idle timeout.
    pub idle: u64,
    /// Closed because a message did not frame (RFC 3261 18.3), too large ones included.
    pub invalid: u64,
    /// Of those, messages larger than `max_message`.
    pub too_large: u64,
    /// Closed because the peer let more than `max_write_queue` octets pile up.
    pub backlog: u64,
    /// Closed on a socket error.
    pub errors: u64,
    /// Closed when the loop stopped.
    pub shutdown: u64,
}

/// Why a connection closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// The peer closed or reset the connection.
    Peer,
    /// No complete message or ping within the idle timeout.
    Idle,
    /// A message that does not frame; the answer, if any, is written first.
    Invalid(sip::ErrorKind),
    /// The write queue exceeded its limit; nothing more is written.
    Backlog,
    /// A socket error.
    Error,
    /// The loop is stopping.
    Shutdown,
}

/// A PING is a double CRLF; its PONG a single one (RFC 5626 4.4.1).
const PING: &[u8] = b"\r\n\r\n";
const PONG: &[u8] = b"\r\n";

/// A read buffer emptied with more capacity than this gives it back, so that idle connections
/// hold no memory after one large message.
const KEEP_CAPACITY: usize = 4096;

/// What the front of a stream buffer holds.
#[derive(Debug, PartialEq, Eq)]
enum Frame<'a> {
    /// Not enough bytes to tell; read more.
    Partial,
    /// A keep-alive ping (RFC 5626 4.4.1), four octets.
    Ping,
    /// Line ends before a message, to be ignored (RFC 3261 7.5), this many octets.
    Blank(usize),
    /// One complete message, exactly its octets.
    Message(&'a [u8]),
    /// Bytes that cannot be framed (at most `max_message` of them, for the answer), and why.
    Invalid(&'a [u8], sip::Error),
}

/// Classifies the front of `buf`.
fn frame<'a>(buf: &'a [u8], limits: &sip::Limits) -> Frame<'a> {
    if buf.starts_with(PING) {
        return Frame::Ping;
    }
    // The beginning of a ping: wait for the rest rather than take it for blank lines.
    if buf.is_empty() || PING.starts_with(buf) {
        return Frame::Partial;
    }
    let blank = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if blank > 0 {
        return Frame::Blank(blank);
    }
    let mut storage = [sip::Header::EMPTY; 64];
    match sip::parse_stream(buf, &mut storage, limits) {
        Ok(sip::Status::Partial) => Frame::Partial,
        // No leading line ends remain, so `used` is the message's own length.
        Ok(sip::Status::Complete(_, used)) => Frame::Message(buf.get(..used).unwrap_or(buf)),
        Err(e) => Frame::Invalid(buf.get(..limits.max_message).unwrap_or(buf), e),
    }
}

/// What a connection hands the element.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// One complete message.
    Message(&'a [u8]),
    /// Bytes that do not frame; the connection closes after the answer.
    Invalid(&'a [u8], sip::Error),
}

/// One connection's state without its socket: the unframed bytes, the write queue, the time of
/// the last sign of life and whether it must close.
#[derive(Debug)]
pub struct Conn {
    /// Received bytes not yet framed (the beginning of a message). Empty most of the time: a
    /// segment holding whole messages is framed where it was read and never copied here.
    pending: Vec<u8>,
    out: Outbox,
}

/// The half of [`Conn`] that framing writes to, apart from the buffer it reads.
#[derive(Debug)]
struct Outbox {
    queue: Vec<u8>,
    /// Octets of `queue` already written.
    sent: usize,
    last_activity_ms: u64,
    closing: Option<Close>,
}

impl Conn {
    /// A connection accepted at `now_ms`.
    pub fn new(now_ms: u64) -> Conn {
        Conn {
            pending: Vec::new(),
            out: Outbox {
                queue: Vec::new(),
                sent: 0,
                last_activity_ms: now_ms,
                closing: None,
            },
        }
    }

    /// Frames `bytes` read at `now_ms` after what was pending. Every complete message goes to
    /// `handle`, which writes its answer into `out` and returns the length; answers and pongs are
    /// queued in order. Stops at the first framing error or when the queue overflows; the bytes
    /// after that are ignored.
    pub fn receive(
        &mut self,
        now_ms: u64,
        bytes: &[u8],
        limits: &TcpLimits,
        out: &mut [u8],
        mut handle: impl FnMut(Inbound<'_>, &mut [u8]) -> Option<usize>,
    ) {
        if self.out.closing.is_some() {
            return;
        }
        let sip_limits = limits.sip();
        if self.pending.is_empty() {
            let used = self
                .out
                .frame_all(now_ms, bytes, limits, &sip_limits, out, &mut handle);
            if self.out.closing.is_none() {
                self.pending
                    .extend_from_slice(bytes.get(used..).unwrap_or_default());
            }
        } else {
            self.pending.extend_from_slice(bytes);
            let used =
                self.out
                    .frame_all(now_ms, &self.pending, limits, &sip_limits, out, &mut handle);
            self.pending.drain(..used.min(self.pending.len()));
        }
        // A closing connection reads nothing more; an emptied large buffer goes back.
        let release = self.out.closing.is_some()
            || (self.pending.is_empty() && self.pending.capacity() > KEEP_CAPACITY);
        if release {
            self.pending = Vec::new();
        }
    }

    /// The queued octets not yet written.
    pub fn unsent(&self) -> &[u8] {
        self.out.queue.get(self.out.sent..).unwrap_or_default()
    }

    /// Records that `n` octets of [`Conn::unsent`] were written.
    pub fn written(&mut self, n: usize) {
        self.out.sent = (self.out.sent + n).min(self.out.queue.len());
        if self.out.sent == self.out.queue.len() {
            self.out.sent = 0;
            if self.out.queue.capacity() > KEEP_CAPACITY {
                self.out.queue = Vec::new();
            } else {
                self.out.queue.clear();
            }
        }
    }

    /// Why the connection must close, if it must.
    pub fn closing(&self) -> Option<Close> {
        self.out.closing
    }

    /// Queues an answer produced later than the message it answers (by the worker that owns
    /// the message's AOR); a closing connection takes nothing more.
    pub fn send(&mut self, bytes: &[u8], limits: &TcpLimits) {
        if self.out.closing.is_none() {
            self.out.queue(bytes, limits);
        }
    }

    /// Whether to close now: at once for a peer that does not read; otherwise once the answer
    /// to the last message is written.
    pub fn close_now(&self) -> bool {
        match self.out.closing {
            None => false,
            Some(Close::Backlog) => true,
            Some(_) => self.unsent().is_empty(),
        }
    }

    /// Whether the idle timeout has passed at `now_ms`.
    pub fn idle(&self, now_ms: u64, limits: &TcpLimits) -> bool {
        now_ms.saturating_sub(self.out.last_activity_ms) >= limits.idle_timeout_ms
    }
}

impl Outbox {
    /// Frames the messages at the front of `buf`; returns how many octets were used.
    fn frame_all(
        &mut self,
        now_ms: u64,
        buf: &[u8],
        limits: &TcpLimits,
        sip_limits: &sip::Limits,
        out: &mut [u8],
        handle: &mut impl FnMut(Inbound<'_>, &mut [u8]) -> Option<usize>,
    ) -> usize {
        let mut used = 0;
        while self.closing.is_none() {
            let rest = buf.get(used..).unwrap_or_default();
            match frame(rest, sip_limits) {
                Frame::Partial => break,
                Frame::Ping => {
                    used += PING.len();
                    self.last_activity_ms = now_ms;
                    // RFC 5626 4.4.1: "When a server receives a CRLF-CRLF, it MUST respond with
                    // a single CRLF" (the PONG).
                    self.queue(PONG, limits);
                }
                Frame::Blank(n) => used += n,
                Frame::Message(message) => {
                    used += message.len();
                    self.last_activity_ms = now_ms;
                    if let Some(n) = handle(Inbound::Message(message), out) {
                        self.queue(out.get(..n).unwrap_or_default(), limits);
                    }
                }
                Frame::Invalid(bytes, error) => {
                    // RFC 3261 18.3: "If the Content-Length header field is missing in a
                    // stream-based message, the message is considered in error"; past an error
                    // there is no telling where the next message starts, so the connection ends
                    // after the answer.
                    if let Some(n) = handle(Inbound::Invalid(bytes, error), out) {
                        self.queue(out.get(..n).unwrap_or_default(), limits);
                    }
                    if self.closing.is_none() {
                        self.closing = Some(Close::Invalid(error.kind));
                    }
                }
            }
        }
        used
    }

    fn queue(&mut self, bytes: &[u8], limits: &TcpLimits) {
        if self.queue.len() - self.sent + bytes.len() > limits.max_write_queue {
            self.closing = Some(Close::Backlog);
            return;
        }
        self.queue.extend_from_slice(bytes);
    }
}

/// An accepted connection with its socket.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    conn: Conn,
    /// Whether WRITABLE interest is registered (only while the write queue is not empty).
    writable: bool,
}

/// The TCP side of one poll loop: listeners and the connections accepted from them.
///
/// A connection id is the worker's id base (its index in the high bits, see [`id_base`]) with
/// the connection's mio token in the low bits: tokens start above those of the sockets and
/// listeners and only ever grow, so an id is never reused for the life of the server, and any
/// worker can tell from an id which worker holds the connection ([`worker_of`]).
pub struct Tcp {
    listeners: Vec<TcpListener>,
    conns: HashMap<u64, Connection>,
    id_base: u64,
    next_token: u64,
    limits: TcpLimits,
    stats: TcpStats,
    /// When idle connections were last looked for.
    swept_ms: u64,
    expired: Vec<u64>,
}

/// How often the connections are scanned for idleness.
const SWEEP_MS: u64 = 1000;

/// Bits of a connection id that hold the mio token; the worker index is above them.
const TOKEN_BITS: u32 = 40;
const TOKEN_MASK: u64 = (1 << TOKEN_BITS) - 1;

/// The id base of worker `index`'s connections.
pub fn id_base(index: usize) -> u64 {
    (index as u64) << TOKEN_BITS
}

/// The index of the worker holding connection `id`.
pub fn worker_of(id: u64) -> usize {
    (id >> TOKEN_BITS) as usize
}

/// The mio token of connection `id` in its worker's poll.
fn token_of(id: u64) -> Token {
    Token((id & TOKEN_MASK) as usize)
}

impl Tcp {
    /// Registers the listeners with tokens `first_token..`; connection tokens follow them, and
    /// connection ids are `id_base | token`.
    pub fn new(
        mut listeners: Vec<TcpListener>,
        limits: TcpLimits,
        registry: &Registry,
        first_token: usize,
        id_base: u64,
    ) -> io::Result<Tcp> {
        for (i, l) in listeners.iter_mut().enumerate() {
            registry.register(l, Token(first_token + i), Interest::READABLE)?;
        }
        let next_token = (first_token + listeners.len()) as u64;
        Ok(Tcp {
            listeners,
            conns: HashMap::new(),
            id_base,
            next_token,
            limits,
            stats: TcpStats::default(),
            swept_ms: 0,
            expired: Vec::new(),
        })
    }

    pub fn stats(&self) -> TcpStats {
        self.stats
    }

    /// Accepts every pending connection on listener `index`.
    pub fn accept(&mut self, index: usize, registry: &Registry) {
        let Some(listener) = self.listeners.get(index) else {
            return;
        };
        loop {
            let (mut stream, peer) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors (EMFILE, ENFILE) or memory: leave the rest in the backlog;
                // the next connection attempt wakes the listener again.
                Err(e)
                    if e.raw_os_error()
                        .is_some_and(|c| c == 24 || c == 23 || c == 12) =>
                {
                    return;
                }
                // A connection reset before it was accepted (ECONNABORTED) concerns no one.
                Err(_) => continue,
            };
            if self.conns.len() >= self.limits.max_connections {
                // Dropping the stream closes it.
                self.stats.refused += 1;
                continue;
            }
            let Ok(local) = stream.local_addr() else {
                continue;
            };
            // Answers are small and whole; Nagle's algorithm would only delay them.
            let _ = stream.set_nodelay(true);
            let Ok(token) = usize::try_from(self.next_token) else {
                return;
            };
            if self.next_token > TOKEN_MASK {
                // 2^40 connections in one worker's life; refuse rather than reuse an id.
                self.stats.refused += 1;
                continue;
            }
            let id = self.id_base | self.next_token;
            if registry
                .register(&mut stream, Token(token), Interest::READABLE)
                .is_err()
            {
                continue;
            }
            self.next_token += 1;
            self.stats.accepted += 1;
            self.conns.insert(
                id,
                Connection {
                    stream,
                    peer,
                    local,
                    conn: Conn::new(now_ms()),
                    writable: false,
                },
            );
        }
    }

    /// Serves a readiness event of connection `id`: reads and frames what arrived, writes what
    /// is queued, and closes the connection if it must.
    #[allow(clippy::too_many_arguments)] // the loop's buffers are lent, not owned, by design
    pub fn ready(
        &mut self,
        id: u64,
        readable: bool,
        registry: &Registry,
        sink: &mut impl Sink,
        buf: &mut [u8],
        out: &mut [u8],
    ) {
        let limits = self.limits;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut gone = None;
        // Readiness is edge-triggered: read until the socket would block.
        while readable && c.conn.closing().is_none() {
            let n = match c.stream.read(buf) {
                Ok(0) => {
                    gone = Some(Close::Peer);
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    gone = Some(peer_or_error(&e));
                    break;
                }
            };
            let (source, local) = (c.peer, c.local);
            let now = now_ms();
            c.conn.receive(
                now,
                buf.get(..n).unwrap_or_default(),
                &limits,
                out,
                |inbound, out| {
                    let message = |bytes| Datagram {
                        now_ms: now,
                        source,
                        local,
                        transport: Transport::Tcp,
                        connection: Some(id),
                        bytes,
                    };
                    match inbound {
                        Inbound::Message(bytes) => sink.message(message(bytes), out),
                        Inbound::Invalid(bytes, error) => {
                            sink.stream_error(message(bytes), error, out)
                        }
                    }
                },
            );
        }
        self.settle(id, gone, registry, sink);
    }

    /// Queues `bytes` (the answer to a message of this connection written by another worker, or
    /// a request of the element's own to the device at the other end) and writes what it can.
    /// Returns false when the connection is gone (closed meanwhile).
    pub fn send(
        &mut self,
        id: u64,
        bytes: &[u8],
        registry: &Registry,
        sink: &mut impl Sink,
    ) -> bool {
        let limits = self.limits;
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        c.conn.send(bytes, &limits);
        self.settle(id, None, registry, sink);
        true
    }

    /// After reading or queueing: writes what is queued, closes the connection if it must
    /// (`gone` says it already has), and asks for WRITABLE only while octets wait.
    fn settle(&mut self, id: u64, gone: Option<Close>, registry: &Registry, sink: &mut impl Sink) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut gone = gone;
        if let Err(e) = flush(c) {
            gone = gone.or(Some(peer_or_error(&e)));
        }
        let reason = gone.or_else(|| c.conn.close_now().then(|| c.conn.closing()).flatten());
        if let Some(reason) = reason {
            self.close(id, reason, registry, sink);
            return;
        }
        let want = !c.conn.unsent().is_empty();
        if want != c.writable {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if registry
                .reregister(&mut c.stream, token_of(id), interest)
                .is_ok()
            {
                c.writable = want;
            } else {
                self.close(id, Close::Error, registry, sink);
            }
        }
    }

    /// Closes the connections idle at `now_ms`; scans at most once a second.
    pub fn sweep(&mut self, now_ms: u64, registry: &Registry, sink: &mut impl Sink) {
        if now_ms.saturating_sub(self.swept_ms) < SWEEP_MS {
            return;
        }
        self.swept_ms = now_ms;
        let limits = self.limits;
        let mut expired = std::mem::take(&mut self.expired);
        expired.extend(
            self.conns
                .iter()
                .filter(|(_, c)| c.conn.idle(now_ms, &limits))
                .map(|(&id, _)| id),
        );
        for id in expired.drain(..) {
            self.close(id, Close::Idle, registry, sink);
        }
        self.expired = expired;
    }

    /// Closes every connection (the loop is stopping).
    pub fn close_all(&mut self, registry: &Registry, sink: &mut impl Sink) {
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id, Close::Shutdown, registry, sink);
        }
    }

    fn close(&mut self, id: u64, reason: Close, registry: &Registry, sink: &mut impl Sink) {
        let Some(mut c) = self.conns.remove(&id) else {
            return;
        };
        let _ = registry.deregister(&mut c.stream);
        if matches!(reason, Close::Invalid(_)) {
            // Send FIN after the answer rather than leave it to the drop.
            let _ = c.stream.shutdown(Shutdown::Write);
        }
        let s = &mut self.stats;
        match reason {
            Close::Peer => s.closed_by_peer += 1,
            Close::Idle => s.idle += 1,
            Close::Invalid(kind) => {
                s.invalid += 1;
                if kind == sip::ErrorKind::MessageTooLarge {
                    s.too_large += 1;
                }
            }
            Close::Backlog => s.backlog += 1,
            Close::Error => s.errors += 1,
            Close::Shutdown => s.shutdown += 1,
        }
        drop(c);
        sink.closed(id);
    }
}

/// A reset or broken pipe is the peer leaving; anything else is an error.
fn peer_or_error(e: &io::Error) -> Close {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Close::Peer,
        _ => Close::Error,
    }
}

/// Writes what is queued until it is all written or the socket would block.
fn flush(c: &mut Connection) -> io::Result<()> {
    while !c.conn.unsent().is_empty() {
        match c.stream.write(c.conn.unsent()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => c.conn.written(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\n\
To: <sip:a@example.com>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 4\r\n\r\nbody";

    /// The test element's answer to REGISTER.
    fn ok() -> Vec<u8> {
        format!("ok {}", REGISTER.len()).into_bytes()
    }

    /// A connection under test and what its element saw.
    struct Harness {
        conn: Conn,
        limits: TcpLimits,
        seen: Vec<Inbound<'static>>,
    }

    impl Harness {
        fn new() -> Harness {
            Harness::with(TcpLimits::default())
        }

        fn with(limits: TcpLimits) -> Harness {
            Harness {
                conn: Conn::new(0),
                limits,
                seen: Vec::new(),
            }
        }

        /// Feeds `bytes` at `now_ms`; the element answers a message `ok N` (N its length) and
        /// an invalid one `bad`.
        fn feed(&mut self, now_ms: u64, bytes: &[u8]) {
            let mut out = [0u8; 64];
            let seen = &mut self.seen;
            self.conn
                .receive(now_ms, bytes, &self.limits, &mut out, |inbound, out| {
                    let answer = match &inbound {
                        Inbound::Message(m) => format!("ok {}", m.len()),
                        Inbound::Invalid(..) => "bad".to_string(),
                    };
                    // Keep an owned copy, leaked: tests only.
                    seen.push(match inbound {
                        Inbound::Message(m) => Inbound::Message(m.to_vec().leak()),
                        Inbound::Invalid(m, e) => Inbound::Invalid(m.to_vec().leak(), e),
                    });
                    out.get_mut(..answer.len())?
                        .copy_from_slice(answer.as_bytes());
                    Some(answer.len())
                });
        }

        /// Takes everything queued, as if the socket wrote it all.
        fn sent(&mut self) -> Vec<u8> {
            let bytes = self.conn.unsent().to_vec();
            self.conn.written(bytes.len());
            bytes
        }
    }

    #[test]
    fn frames_messages_split_and_joined_anywhere() {
        let two = [REGISTER, REGISTER].concat();
        // Every split point of two back-to-back messages, in two chunks.
        for cut in 0..=two.len() {
            let mut h = Harness::new();
            let (a, b) = two.split_at(cut);
            h.feed(1, a);
            h.feed(2, b);
            assert_eq!(
                h.seen,
                [Inbound::Message(REGISTER), Inbound::Message(REGISTER)],
                "cut at {cut}"
            );
            assert_eq!(h.sent(), ok().repeat(2), "cut at {cut}");
            assert_eq!(h.conn.closing(), None);
            assert!(h.conn.pending.is_empty());
        }
        // One byte at a time.
        let mut h = Harness::new();
        for b in two.iter() {
            h.feed(1, std::slice::from_ref(b));
        }
        assert_eq!(h.seen.len(), 2);
    }

    #[test]
    fn a_whole_segment_is_framed_without_copying() {
        let mut h = Harness::new();
        h.feed(1, REGISTER);
        assert_eq!(h.conn.pending.capacity(), 0);
        assert_eq!(h.seen, [Inbound::Message(REGISTER)]);
    }

    #[test]
    fn keep_alive_ping_gets_one_pong() {
        let mut h = Harness::new();
        // RFC 5626 4.4.1: CRLF CRLF in, CRLF out; in pieces too; between messages.
        h.feed(1, b"\r\n\r\n");
        assert_eq!(h.sent(), b"\r\n");
        h.feed(2, b"\r\n");
        h.feed(3, b"\r");
        assert_eq!(h.sent(), b"");
        h.feed(4, b"\n");
        assert_eq!(h.sent(), b"\r\n");
        h.feed(5, &[REGISTER, b"\r\n\r\n", REGISTER].concat());
        assert_eq!(h.sent(), [ok(), b"\r\n".to_vec(), ok()].concat());
        assert!(h.seen.len() == 2 && h.conn.closing().is_none());
    }

    #[test]
    fn blank_lines_before_a_message_are_ignored() {
        // RFC 3261 7.5: empty lines before the start line are skipped; not a ping.
        let mut h = Harness::new();
        h.feed(1, &[b"\r\n", REGISTER].concat());
        assert_eq!(h.sent(), ok());
        assert_eq!(h.seen, [Inbound::Message(REGISTER)]);
    }

    #[test]
    fn framing_errors_are_answered_then_close() {
        let missing = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n";
        let cases: [(&[u8], sip::ErrorKind); 2] = [
            (missing, sip::ErrorKind::MissingContentLength),
            (b"NOT SIP AT ALL\r\n\r\n", sip::ErrorKind::BadStartLine),
        ];
        for (bytes, kind) in cases {
            let mut h = Harness::new();
            // A good message first, the bad one, and bytes after it that are never read.
            h.feed(1, &[REGISTER, bytes, REGISTER].concat());
            assert_eq!(h.conn.closing(), Some(Close::Invalid(kind)));
            assert_eq!(h.seen.len(), 2, "{kind:?}");
            assert!(
                matches!(h.seen[1], Inbound::Invalid(b, e) if b.starts_with(bytes) && e.kind == kind)
            );
            // The answer is written before the connection closes.
            assert!(!h.conn.close_now());
            assert_eq!(h.sent(), [ok(), b"bad".to_vec()].concat());
            assert!(h.conn.close_now());
            // Nothing more is framed.
            h.feed(2, REGISTER);
            assert_eq!(h.seen.len(), 2);
        }
    }

    #[test]
    fn oversize_messages_close_the_connection() {
        let limits = TcpLimits::new(10, 200, Duration::from_secs(120));
        // Content-Length announcing more than the limit: refused before the body arrives (the
        // parser calls a length beyond the limit a bad Content-Length).
        let mut h = Harness::with(limits);
        let big = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nContent-Length: 500\r\n\r\n";
        h.feed(1, big);
        assert!(matches!(h.conn.closing(), Some(Close::Invalid(_))));
        // A head that never ends: refused once it passes the limit, never buffered beyond it.
        let mut h = Harness::with(limits);
        h.feed(1, b"REGISTER sip:example.com SIP/2.0\r\n");
        for i in 0..20 {
            h.feed(2, format!("X-Filler-{i:02}: 0123456789\r\n").as_bytes());
            assert!(h.conn.pending.len() <= 200 + 30);
        }
        assert_eq!(
            h.conn.closing(),
            Some(Close::Invalid(sip::ErrorKind::MessageTooLarge))
        );
        assert!(matches!(h.seen[..], [Inbound::Invalid(b, _)] if b.len() == 200));
        assert_eq!(h.conn.pending.capacity(), 0);
        // A message of exactly the limit passes.
        let exact = REGISTER.len();
        let mut h = Harness::with(TcpLimits::new(10, exact, Duration::from_secs(120)));
        h.feed(1, REGISTER);
        assert_eq!(h.seen, [Inbound::Message(REGISTER)]);
    }

    #[test]
    fn idle_expiry_counts_messages_and_pings_not_bytes() {
        let limits = TcpLimits::new(10, 65_535, Duration::from_secs(120));
        let mut h = Harness::with(limits);
        assert!(!h.conn.idle(119_999, &limits));
        assert!(h.conn.idle(120_000, &limits));
        h.feed(100_000, REGISTER);
        assert!(!h.conn.idle(219_999, &limits));
        h.feed(200_000, b"\r\n\r\n");
        assert!(!h.conn.idle(319_999, &limits));
        // Half a message is no sign of life (a slow-loris client is idle).
        h.feed(300_000, b"REGISTER sip:example.com SIP/2.0\r\n");
        assert!(h.conn.idle(320_000, &limits));
    }

    #[test]
    fn a_peer_that_does_not_read_is_closed_at_once() {
        let limits = TcpLimits {
            max_write_queue: 2 * ok().len(),
            ..TcpLimits::default()
        };
        let mut h = Harness::with(limits);
        h.feed(1, REGISTER);
        h.feed(2, REGISTER);
        assert_eq!(h.conn.closing(), None);
        h.feed(3, REGISTER);
        assert_eq!(h.conn.closing(), Some(Close::Backlog));
        assert!(h.conn.close_now());
        // Partly written: the rest stays queued in order.
        let mut h = Harness::new();
        h.feed(1, REGISTER);
        h.conn.written(2);
        h.feed(2, b"\r\n\r\n");
        assert_eq!(h.sent(), [&ok()[2..], b"\r\n"].concat());
    }
}
