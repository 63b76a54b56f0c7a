//! The I/O shell: sockets, worker threads, the poll loops and the clock, around the sans-I/O
//! element.
//!
//! This is the one place that reads the clock, touches sockets and starts threads; the clippy
//! configuration forbids them everywhere else. [`worker::Server`] runs one thread per worker,
//! each pinned to a core if asked, each with its own `SO_REUSEPORT` UDP socket and TCP listener
//! on every configured address and its own mio `Poll`: the kernel spreads clients over the
//! workers by their address and port. A worker hands each received message, with the time, the
//! peer and the connection, to its [`Element`], sends back what the element wrote, and carries
//! messages the element hands to another worker over a bounded channel ([`Outcome::HandOff`]).
//! It also sends what the element writes on its own initiative ([`Element::poll_transmit`]:
//! keep-alive pings today, requests a proxy routes to bindings later), over UDP or through the
//! TCP connection a binding was learnt on, whichever worker holds it. It holds no protocol logic
//! beyond TCP framing.
//!
//! - [`mmsg`]: batched `recvmmsg`/`sendmmsg`, the crate's one use of `unsafe`;
//! - [`udp`]: opening sockets; [`tcp`]: connections, framing and their limits;
//! - [`worker`]: the threads, the loop and the hand-off.
#![allow(clippy::disallowed_methods)] // the clock, sockets and threads live here, by design

pub mod mmsg;
pub mod tcp;
pub mod udp;
pub mod worker;

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::sip::{self, Transport};
pub use tcp::{TcpLimits, TcpStats};
pub use udp::{bind_tcp, bind_udp};
pub use worker::{Server, Settings, Stats};

/// What the element sees of one received message: a UDP datagram, or one message framed from
/// a TCP connection.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    /// Milliseconds since the Unix epoch.
    pub now_ms: u64,
    pub source: SocketAddr,
    pub local: SocketAddr,
    /// `Udp` or `Tcp`.
    pub transport: Transport,
    /// The connection it arrived on (TCP): an id unique for the life of the server, never
    /// reused, naming the worker that holds it. The answer goes back on it;
    /// [`Element::on_closed`] reports its end.
    pub connection: Option<u64>,
    pub bytes: &'a [u8],
}

/// Where a request the element sends on its own initiative goes ([`Element::poll_transmit`]):
/// what a binding records of the device it was learnt from.
///
/// - With a `connection`: written on that TCP connection, through the worker holding it (its id
///   names the worker; another worker's is reached over its queue). If the connection has closed
///   meanwhile, [`Element::on_undeliverable`] says so: no new connection is opened, since behind
///   NAT a connection to the address a device connected from reaches nothing (RFC 5626 3.5:
///   requests follow the flow the device opened).
/// - UDP without one: a datagram to `remote` (RFC 3581: the source of the device's requests,
///   where its NAT mapping lets datagrams in) from this worker's socket bound to `local`, the
///   address the device sends to, so that its NAT recognises the reply path. With `local` absent
///   or bound by no socket, from the first UDP socket of `remote`'s address family (IPv6 sockets
///   are IPv6-only): the right one whenever one address per family is served, as by default.
/// - Another transport without a connection: undeliverable at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destination {
    pub transport: Transport,
    pub remote: SocketAddr,
    pub local: Option<SocketAddr>,
    pub connection: Option<u64>,
}

/// A request the element wrote into the `out` of [`Element::poll_transmit`]: its first `len`
/// octets, for `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub len: usize,
    pub to: Destination,
}

/// What the element made of a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    /// Send the first `n` octets written into `out` back to the sender.
    Reply(usize),
    /// Send nothing (a response, a message to drop).
    Silent,
    /// Another worker must finish it (it owns the state the message changes): the message goes
    /// to worker `worker` with `ticket`, the work already done here, and that worker's
    /// [`Element::on_handoff`] answers it. If that worker's queue is full, this worker's
    /// [`Element::on_overload`] answers instead.
    HandOff { worker: usize, ticket: T },
}

/// The element one worker drives. Every worker has its own, so nothing in it is shared or
/// locked; what must be shared (credentials, configuration) comes in through
/// [`Element::on_control`].
pub trait Element: Send + 'static {
    /// The work done on the receiving worker that travels with a handed-off message.
    type Ticket: Send + 'static;
    /// What [`Server::control`] broadcasts to every worker (a reload, say).
    type Control: Send + Sync + 'static;

    /// A received message: answer it into `out`, stay silent, or hand it to another worker.
    fn on_message(&mut self, message: Datagram<'_>, out: &mut [u8]) -> Outcome<Self::Ticket>;

    /// A message another worker handed to this one; write the answer into `out`. It goes back
    /// to the sender from this worker's socket on the same local address (UDP), or through the
    /// worker holding the connection (TCP).
    fn on_handoff(
        &mut self,
        _message: Datagram<'_>,
        _ticket: Self::Ticket,
        _out: &mut [u8],
    ) -> Option<usize> {
        None
    }

    /// The worker a message was to be handed to is saturated (its queue is full): answer
    /// without it, typically 503 with Retry-After (RFC 3261 21.5.4). Nothing by default.
    fn on_overload(&mut self, _message: Datagram<'_>, _out: &mut [u8]) -> Option<usize> {
        None
    }

    /// Bytes on a TCP connection that do not frame as a message (`error` says why: no
    /// Content-Length, too large, a broken head). Write the answer to a request into `out` if
    /// one is due (`error.disposition()`; a malformed response gets none); the worker sends it and
    /// then closes the connection (RFC 3261 18.3). `message.bytes` holds the received bytes
    /// from the start of the bad message, at most the message size limit, for the headers the
    /// answer copies. By default nothing is answered.
    fn on_stream_error(
        &mut self,
        _message: Datagram<'_>,
        _error: sip::Error,
        _out: &mut [u8],
    ) -> Option<usize> {
        None
    }

    /// TCP connection `connection` closed (by the peer, an error, the idle timeout, a framing
    /// error, or the server stopping); no message will arrive on it and nothing can be sent on
    /// it. Every worker is told, since any of them may hold state learnt over it (a registrar
    /// marks the bindings unreachable, or removes them: RFC 5626 flows). Once per connection
    /// and worker, after its last message.
    fn on_closed(&mut self, _connection: u64) {}

    /// Called after every poll wake-up (at least every 100 ms) for timers such as expiry.
    fn on_tick(&mut self, _now_ms: u64) {}

    /// The worker is starting, on its own thread, before any message: the local addresses of
    /// its UDP sockets and TCP listeners, ports resolved, in configuration order (the same on
    /// every worker). What a request the element writes itself names as its sender (Via).
    fn on_start(&mut self, _udp: &[SocketAddr], _tcp: &[SocketAddr]) {}

    /// The next request the element sends on its own initiative, written into `out`, and where
    /// it goes (see [`Destination`]); `None` when nothing more is due now. Asked after every
    /// [`Element::on_tick`] until it says `None` (a few thousand at most per turn of the loop,
    /// which then goes on without sleeping). Datagrams leave in batches (`sendmmsg`); a request
    /// lost to a full socket buffer or a full queue between workers is lost as the network
    /// would lose it, unreported.
    fn poll_transmit(&mut self, _now_ms: u64, _out: &mut [u8]) -> Option<Transmit> {
        None
    }

    /// A request from [`Element::poll_transmit`] could not be sent: its connection had closed
    /// (the worker holding it found it gone), or it named no connection on a stream transport.
    /// Told to the worker whose element wrote it, so that it can treat the destination as
    /// unreachable.
    fn on_undeliverable(&mut self, _to: Destination) {}

    /// A broadcast from [`Server::control`].
    fn on_control(&mut self, _control: &Self::Control) {}

    /// The worker is stopping (after its connections closed): flush what must not be lost.
    fn on_stop(&mut self, _now_ms: u64) {}
}

/// What the TCP layer hands its worker: the element's view of a connection's messages, with
/// the hand-off already dealt with.
pub trait Sink {
    /// A framed message; the answer to queue on the connection, if one is due now.
    fn message(&mut self, message: Datagram<'_>, out: &mut [u8]) -> Option<usize>;
    /// Bytes that do not frame (see [`Element::on_stream_error`]).
    fn stream_error(
        &mut self,
        message: Datagram<'_>,
        error: sip::Error,
        out: &mut [u8],
    ) -> Option<usize>;
    /// The connection closed.
    fn closed(&mut self, connection: u64);
}

/// The wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// 32 bytes from the kernel's random source, for nonce keys and tags.
pub fn random_secret() -> [u8; 32] {
    use std::io::Read;
    let mut secret = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut secret));
    if read.is_err() {
        // No random device (a minimal container): fall back to the clock and the process id,
        // hashed, which is unique per start though predictable; say so.
        eprintln!("sipreg: /dev/urandom unavailable; nonce keys derive from the clock");
        let seed = now_ms() ^ (u64::from(std::process::id()) << 32);
        for (i, b) in secret.iter_mut().enumerate() {
            *b = (seed.rotate_left(i as u32 * 8) >> 3) as u8 ^ i as u8;
        }
    }
    secret
}

#[cfg(test)]
mod tests {
    //! The workers on loopback sockets: UDP and TCP together, framing across segments, the
    //! pong, answers on the connection, closing reported to every worker, the connection and
    //! idle limits, the hand-off between workers and the answer when a queue is full; requests
    //! of the element's own over UDP and through a connection held by any worker, and the
    //! report when that connection is gone.

    use super::*;
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, TcpStream, UdpSocket};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\n\
To: <sip:a@example.com>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";

    /// What the test elements were told, with the worker that was told.
    #[derive(Debug, Default)]
    struct Seen {
        messages: Vec<(usize, Transport, Option<u64>)>,
        errors: Vec<sip::ErrorKind>,
        closed: Vec<(usize, u64)>,
        controls: Vec<(usize, u32)>,
    }

    /// Answers every message `ok TRANSPORT` and every framing error `bad`; in `handoff` mode
    /// hands every message to the next worker, which answers `wN TRANSPORT`; `slow` makes
    /// the owner take that long per message.
    struct Echo {
        index: usize,
        workers: usize,
        handoff: bool,
        slow: Duration,
        seen: Arc<Mutex<Seen>>,
    }

    fn write(out: &mut [u8], answer: &str) -> Option<usize> {
        out.get_mut(..answer.len())?
            .copy_from_slice(answer.as_bytes());
        Some(answer.len())
    }

    impl Element for Echo {
        type Ticket = usize;
        type Control = u32;

        fn on_message(&mut self, d: Datagram<'_>, out: &mut [u8]) -> Outcome<usize> {
            if let Ok(mut seen) = self.seen.lock() {
                seen.messages.push((self.index, d.transport, d.connection));
            }
            if self.handoff {
                return Outcome::HandOff {
                    worker: (self.index + 1) % self.workers,
                    ticket: self.index,
                };
            }
            match write(out, &format!("ok {:?}", d.transport)) {
                Some(n) => Outcome::Reply(n),
                None => Outcome::Silent,
            }
        }

        fn on_handoff(&mut self, d: Datagram<'_>, from: usize, out: &mut [u8]) -> Option<usize> {
            assert_ne!(from, self.index);
            std::thread::sleep(self.slow);
            write(out, &format!("w{} {:?}", self.index, d.transport))
        }

        fn on_overload(&mut self, _d: Datagram<'_>, out: &mut [u8]) -> Option<usize> {
            write(out, "busy")
        }

        fn on_stream_error(
            &mut self,
            _d: Datagram<'_>,
            error: sip::Error,
            out: &mut [u8],
        ) -> Option<usize> {
            self.seen.lock().ok()?.errors.push(error.kind);
            write(out, "bad")
        }

        fn on_closed(&mut self, connection: u64) {
            if let Ok(mut seen) = self.seen.lock() {
                seen.closed.push((self.index, connection));
            }
        }

        fn on_control(&mut self, c: &u32) {
            if let Ok(mut seen) = self.seen.lock() {
                seen.controls.push((self.index, *c));
            }
        }
    }

    /// Workers serving one UDP socket and one TCP listener on loopback, stopped on drop.
    struct Running {
        udp: SocketAddr,
        tcp: SocketAddr,
        seen: Arc<Mutex<Seen>>,
        server: Option<Server<Echo>>,
    }

    impl Running {
        fn start(limits: TcpLimits) -> Running {
            Running::with(1, false, Duration::ZERO, 4096, limits)
        }

        fn with(
            workers: usize,
            handoff: bool,
            slow: Duration,
            queue: usize,
            limits: TcpLimits,
        ) -> Running {
            let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let settings = Settings {
                workers,
                udp: vec![any],
                tcp: vec![any],
                tcp_limits: limits,
                queue,
                ..Settings::default()
            };
            let seen = Arc::new(Mutex::new(Seen::default()));
            let elements = (0..workers)
                .map(|index| Echo {
                    index,
                    workers,
                    handoff,
                    slow,
                    seen: Arc::clone(&seen),
                })
                .collect();
            let server = Server::start(&settings, elements).expect("start");
            Running {
                udp: server.udp_addrs()[0],
                tcp: server.tcp_addrs()[0],
                seen,
                server: Some(server),
            }
        }

        fn connect(&self) -> TcpStream {
            let s = TcpStream::connect(self.tcp).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        }

        fn stop(mut self) -> Vec<Stats> {
            let server = self.server.take().expect("running");
            let done = server.stop().expect("workers");
            done.into_iter().map(|(_, s)| s).collect()
        }

        fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
            f(&self.seen.lock().unwrap())
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            if let Some(s) = self.server.take() {
                let _ = s.stop();
            }
        }
    }

    fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf).expect("read the answer");
        buf
    }

    /// Reads until the server closes; returns what came before.
    fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
        let mut all = Vec::new();
        s.read_to_end(&mut all).expect("server closes");
        all
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..250 {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}");
    }

    fn udp_client() -> UdpSocket {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        udp
    }

    fn ask(udp: &UdpSocket, to: SocketAddr) -> (Vec<u8>, SocketAddr) {
        udp.send_to(REGISTER, to).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = udp.recv_from(&mut buf).unwrap();
        (buf[..n].to_vec(), from)
    }

    #[test]
    fn serves_udp_and_tcp_together() {
        let run = Running::start(TcpLimits::default());
        assert_eq!(ask(&udp_client(), run.udp), (b"ok Udp".to_vec(), run.udp));
        // TCP: a message split across two segments, then a ping, then two messages at once.
        let mut tcp = run.connect();
        let (a, b) = REGISTER.split_at(40);
        tcp.write_all(a).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        tcp.write_all(b).unwrap();
        assert_eq!(read_exactly(&mut tcp, 6), b"ok Tcp");
        tcp.write_all(b"\r\n\r\n").unwrap();
        assert_eq!(read_exactly(&mut tcp, 2), b"\r\n");
        tcp.write_all(&[REGISTER, REGISTER].concat()).unwrap();
        assert_eq!(read_exactly(&mut tcp, 12), b"ok Tcpok Tcp");
        // A second connection gets its own id.
        let mut other = run.connect();
        other.write_all(REGISTER).unwrap();
        assert_eq!(read_exactly(&mut other, 6), b"ok Tcp");
        let ids = run.seen(|s| {
            let tcp: Vec<Option<u64>> = s
                .messages
                .iter()
                .filter(|m| m.1 == Transport::Tcp)
                .map(|m| m.2)
                .collect();
            assert_eq!(s.messages.first(), Some(&(0, Transport::Udp, None)));
            tcp
        });
        assert_eq!(ids.len(), 4);
        let (first, second) = (ids[0].unwrap(), ids[3].unwrap());
        assert!(ids[..3].iter().all(|&i| i == Some(first)));
        assert_ne!(first, second);
        // Closing is reported once, with the id.
        drop(tcp);
        wait_until("on_closed", || run.seen(|s| s.closed == [(0, first)]));
        let stats = run.stop();
        assert_eq!(stats[0].tcp.accepted, 2);
        assert_eq!(stats[0].tcp.closed_by_peer, 1);
        assert_eq!(stats[0].tcp.shutdown, 1);
        assert_eq!(stats[0].received, 5);
    }

    #[test]
    fn a_framing_error_is_answered_then_the_connection_closes() {
        let run = Running::start(TcpLimits::default());
        let mut tcp = run.connect();
        let bad = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n";
        tcp.write_all(&[REGISTER, bad].concat()).unwrap();
        assert_eq!(read_to_close(&mut tcp), b"ok Tcpbad");
        wait_until("on_closed", || run.seen(|s| s.closed.len() == 1));
        assert_eq!(
            run.seen(|s| s.errors.clone()),
            [sip::ErrorKind::MissingContentLength]
        );
        assert_eq!(run.stop()[0].tcp.invalid, 1);
    }

    #[test]
    fn connections_beyond_the_limit_are_closed_at_once() {
        let run = Running::start(TcpLimits::new(1, 65_535, Duration::from_secs(120)));
        let mut first = run.connect();
        first.write_all(REGISTER).unwrap();
        assert_eq!(read_exactly(&mut first, 6), b"ok Tcp");
        let mut second = run.connect();
        let _ = second.write_all(REGISTER);
        // Closed without an answer (an EOF or a reset, depending on timing).
        let mut buf = Vec::new();
        assert!(matches!(second.read_to_end(&mut buf), Ok(0) | Err(_)));
        assert!(buf.is_empty());
        // The first one is still served.
        first.write_all(REGISTER).unwrap();
        assert_eq!(read_exactly(&mut first, 6), b"ok Tcp");
        let stats = run.stop();
        assert_eq!((stats[0].tcp.accepted, stats[0].tcp.refused), (1, 1));
    }

    #[test]
    fn idle_connections_are_closed() {
        let run = Running::start(TcpLimits::new(10, 65_535, Duration::from_millis(300)));
        let mut tcp = run.connect();
        // Half a message is not a sign of life.
        tcp.write_all(&REGISTER[..30]).unwrap();
        assert_eq!(read_to_close(&mut tcp), b"");
        wait_until("on_closed", || run.seen(|s| s.closed.len() == 1));
        assert_eq!(run.stop()[0].tcp.idle, 1);
    }

    #[test]
    fn a_burst_is_answered_whole_through_the_batches() {
        let run = Running::start(TcpLimits::default());
        let udp = udp_client();
        // More than one batch (32) at once; the socket buffer holds them all.
        for _ in 0..100 {
            udp.send_to(REGISTER, run.udp).unwrap();
        }
        let mut buf = [0u8; 64];
        for _ in 0..100 {
            let (n, _) = udp.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"ok Udp");
        }
        let stats = run.stop();
        assert_eq!(stats[0].received, 100);
        assert!(stats[0].batches < 100, "{} batches", stats[0].batches);
    }

    #[test]
    fn handed_off_messages_are_answered_by_the_owner_from_the_same_address() {
        let run = Running::with(2, true, Duration::ZERO, 64, TcpLimits::default());
        // Many source ports, so SO_REUSEPORT gives both workers some; each answer comes from
        // the other worker, on the address the request was sent to.
        let mut answered_by = [0; 2];
        for _ in 0..40 {
            let (answer, from) = ask(&udp_client(), run.udp);
            assert_eq!(from, run.udp);
            match answer.as_slice() {
                b"w0 Udp" => answered_by[0] += 1,
                b"w1 Udp" => answered_by[1] += 1,
                other => panic!("{}", String::from_utf8_lossy(other)),
            }
        }
        assert!(answered_by[0] > 0 && answered_by[1] > 0, "{answered_by:?}");
        // Over TCP the owner's answer goes back through the connection's worker.
        let mut tcp = run.connect();
        tcp.write_all(REGISTER).unwrap();
        let answer = read_exactly(&mut tcp, 6);
        let holder = run.seen(|s| s.messages.last().map(|m| m.0)).unwrap();
        assert_eq!(answer, format!("w{} Tcp", 1 - holder).as_bytes());
        // Its closing reaches both workers.
        drop(tcp);
        wait_until("on_closed on both", || run.seen(|s| s.closed.len() == 2));
        run.seen(|s| {
            let mut workers: Vec<usize> = s.closed.iter().map(|c| c.0).collect();
            workers.sort();
            assert_eq!(workers, [0, 1]);
        });
        // A control reaches every worker.
        run.server.as_ref().unwrap().control(7);
        wait_until("controls", || run.seen(|s| s.controls.len() == 2));
        let stats = run.stop();
        let handed: u64 = stats.iter().map(|s| s.handed_off).sum();
        let taken: u64 = stats.iter().map(|s| s.taken_over).sum();
        assert_eq!((handed, taken), (41, 41));
    }

    fn echoes(workers: usize, seen: &Arc<Mutex<Seen>>) -> Vec<Echo> {
        (0..workers)
            .map(|index| Echo {
                index,
                workers,
                handoff: false,
                slow: Duration::ZERO,
                seen: Arc::clone(seen),
            })
            .collect()
    }

    #[test]
    fn a_port_in_use_is_refused_even_with_several_workers() {
        // SO_REUSEPORT must not let a second server share the port silently.
        let run = Running::with(2, false, Duration::ZERO, 64, TcpLimits::default());
        let udp = Settings {
            workers: 2,
            udp: vec![run.udp],
            ..Settings::default()
        };
        let err = Server::start(&udp, echoes(2, &run.seen))
            .err()
            .expect("udp port taken");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains(&run.udp.to_string()), "{err}");
        let tcp = Settings {
            workers: 2,
            tcp: vec![run.tcp],
            ..Settings::default()
        };
        let err = Server::start(&tcp, echoes(2, &run.seen))
            .err()
            .expect("tcp port taken");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        // The first server is unharmed.
        assert_eq!(ask(&udp_client(), run.udp).0, b"ok Udp");
    }

    /// Told by a control to send `bytes` to `to` from worker `worker`.
    struct Order {
        worker: usize,
        bytes: Vec<u8>,
        to: Destination,
    }

    /// What the sending elements were told.
    #[derive(Debug, Default)]
    struct Told {
        started: Vec<(usize, Vec<SocketAddr>, Vec<SocketAddr>)>,
        connections: Vec<u64>,
        closed: Vec<(usize, u64)>,
        undeliverable: Vec<(usize, Destination)>,
    }

    /// Answers every message `ok` and sends on its own initiative what it is ordered to.
    struct Sender {
        index: usize,
        orders: std::collections::VecDeque<(Vec<u8>, Destination)>,
        told: Arc<Mutex<Told>>,
    }

    impl Element for Sender {
        type Ticket = ();
        type Control = Order;

        fn on_start(&mut self, udp: &[SocketAddr], tcp: &[SocketAddr]) {
            let started = (self.index, udp.to_vec(), tcp.to_vec());
            self.told.lock().unwrap().started.push(started);
        }

        fn on_message(&mut self, d: Datagram<'_>, out: &mut [u8]) -> Outcome<()> {
            if let Some(c) = d.connection {
                self.told.lock().unwrap().connections.push(c);
            }
            write(out, "ok").map_or(Outcome::Silent, Outcome::Reply)
        }

        fn on_closed(&mut self, connection: u64) {
            self.told
                .lock()
                .unwrap()
                .closed
                .push((self.index, connection));
        }

        fn on_control(&mut self, order: &Order) {
            if order.worker == self.index {
                self.orders.push_back((order.bytes.clone(), order.to));
            }
        }

        fn poll_transmit(&mut self, _now_ms: u64, out: &mut [u8]) -> Option<Transmit> {
            let (bytes, to) = self.orders.pop_front()?;
            out.get_mut(..bytes.len())?.copy_from_slice(&bytes);
            Some(Transmit {
                len: bytes.len(),
                to,
            })
        }

        fn on_undeliverable(&mut self, to: Destination) {
            self.told
                .lock()
                .unwrap()
                .undeliverable
                .push((self.index, to));
        }
    }

    #[test]
    fn requests_of_the_elements_own_go_out_over_udp_and_through_any_workers_connection() {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let settings = Settings {
            workers: 2,
            udp: vec![any],
            tcp: vec![any],
            ..Settings::default()
        };
        let told = Arc::new(Mutex::new(Told::default()));
        let senders = (0..2)
            .map(|index| Sender {
                index,
                orders: Default::default(),
                told: Arc::clone(&told),
            })
            .collect();
        let server = Server::start(&settings, senders).expect("start");
        let (udp, tcp) = (server.udp_addrs()[0], server.tcp_addrs()[0]);
        let seen = |f: &dyn Fn(&Told) -> bool| f(&told.lock().unwrap());
        wait_until("on_start", || seen(&|t| t.started.len() == 2));
        assert!(seen(&|t| {
            t.started
                .iter()
                .all(|(_, u, t)| u.as_slice() == [udp] && t.as_slice() == [tcp])
        }));
        let order = |worker: usize, bytes: &[u8], to: Destination| {
            server.control(Order {
                worker,
                bytes: bytes.to_vec(),
                to,
            });
        };
        // UDP: from each worker, out of the socket on the served address.
        let client = udp_client();
        let to = Destination {
            transport: Transport::Udp,
            remote: client.local_addr().unwrap(),
            local: None,
            connection: None,
        };
        for worker in 0..2 {
            order(worker, format!("ping {worker}").as_bytes(), to);
            let mut buf = [0u8; 64];
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(
                (&buf[..n], from),
                (format!("ping {worker}").as_bytes(), udp)
            );
        }
        // TCP: through the connection, from the worker holding it and from the other one.
        let mut stream = TcpStream::connect(tcp).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(REGISTER).unwrap();
        assert_eq!(read_exactly(&mut stream, 2), b"ok");
        let id = told.lock().unwrap().connections[0];
        let holder = tcp::worker_of(id);
        let to = Destination {
            transport: Transport::Tcp,
            remote: stream.local_addr().unwrap(),
            local: None,
            connection: Some(id),
        };
        for worker in [1 - holder, holder] {
            order(worker, format!("hello from {worker}").as_bytes(), to);
            let got = read_exactly(&mut stream, 12);
            assert_eq!(got, format!("hello from {worker}").as_bytes());
        }
        // Once it has closed, both report it undeliverable to the element that asked.
        drop(stream);
        wait_until("on_closed", || seen(&|t| t.closed.len() == 2));
        for worker in [1 - holder, holder] {
            order(worker, b"too late", to);
            wait_until("undeliverable", || {
                seen(&|t| t.undeliverable.contains(&(worker, to)))
            });
        }
        // A stream transport without a connection is never sent: no connection is opened.
        let nowhere = Destination {
            connection: None,
            ..to
        };
        order(0, b"nowhere", nowhere);
        wait_until("undeliverable", || {
            seen(&|t| t.undeliverable.contains(&(0, nowhere)))
        });
        let stats: Vec<Stats> = server.stop().unwrap().into_iter().map(|(_, s)| s).collect();
        let sum = |f: fn(&Stats) -> u64| stats.iter().map(f).sum::<u64>();
        assert_eq!(sum(|s| s.transmitted), 7);
        assert_eq!(sum(|s| s.undeliverable), 3);
    }

    #[test]
    fn a_datagram_leaves_from_the_socket_of_its_local_address_or_family() {
        let v4: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let v4b: SocketAddr = "198.51.100.1:5060".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
        let locals = [v6, v4, v4b];
        let to = |remote: &str, local: Option<SocketAddr>| Destination {
            transport: Transport::Udp,
            remote: remote.parse().unwrap(),
            local,
            connection: None,
        };
        let pick = |d| worker::udp_socket_for(&locals, &d);
        assert_eq!(pick(to("203.0.113.9:5060", None)), Some(1));
        assert_eq!(pick(to("203.0.113.9:5060", Some(v4b))), Some(2));
        assert_eq!(pick(to("[2001:db8::9]:5060", None)), Some(0));
        // A local address no socket has: the family decides.
        assert_eq!(
            pick(to(
                "203.0.113.9:5060",
                Some("192.0.2.7:5060".parse().unwrap())
            )),
            Some(1)
        );
        assert_eq!(
            worker::udp_socket_for(&[v6], &to("203.0.113.9:5060", None)),
            None
        );
    }

    #[test]
    fn a_full_queue_is_answered_at_once_and_nothing_waits() {
        // The owner takes 50 ms per message and its queue holds 2: of a burst of 20 from one
        // client (one worker receives them all), most are answered "busy" by the receiver.
        let run = Running::with(2, true, Duration::from_millis(50), 2, TcpLimits::default());
        let udp = udp_client();
        for _ in 0..20 {
            udp.send_to(REGISTER, run.udp).unwrap();
        }
        let mut buf = [0u8; 64];
        let mut busy = 0;
        let mut done = 0;
        for _ in 0..20 {
            let (n, _) = udp.recv_from(&mut buf).unwrap();
            match &buf[..n] {
                b"busy" => busy += 1,
                b"w0 Udp" | b"w1 Udp" => done += 1,
                other => panic!("{}", String::from_utf8_lossy(other)),
            }
        }
        assert!(busy >= 10, "{busy} busy, {done} done");
        assert!(done >= 1);
        let stats = run.stop();
        assert_eq!(stats.iter().map(|s| s.overloaded).sum::<u64>(), busy);
    }
}
