//! The I/O shell: sockets, the poll loop and the clock, around the sans-I/O element.
//!
//! This is the one place that reads the clock and touches sockets; the clippy configuration
//! forbids both everywhere else. One loop serves UDP sockets ([`udp`]) and TCP listeners with the
//! connections accepted from them ([`tcp`]) on one thread and one mio `Poll`: it hands each
//! received message with the time, the peer and the connection to the element, and sends back
//! whatever the element wrote, on the socket or connection the message came from. It holds no
//! protocol logic beyond TCP framing.
#![allow(clippy::disallowed_methods)] // the clock and sockets live here, by design

pub mod tcp;
pub mod udp;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

use crate::sip::{self, Transport};
pub use tcp::{TcpLimits, TcpStats};

/// Largest datagram accepted; longer ones are truncated by the kernel and then fail to frame.
const MAX_DATAGRAM: usize = 65_535;

/// Pending connections a TCP listener queues before the loop accepts them.
const TCP_BACKLOG: i32 = 1024;

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
    /// The connection it arrived on (TCP): an id unique for the life of the loop, never reused.
    /// The answer goes back on it; [`Element::on_closed`] reports its end.
    pub connection: Option<u64>,
    pub bytes: &'a [u8],
}

/// The element driven by the loop: given a message, write the answer into `out` and return its
/// length, or `None` to send nothing.
pub trait Element {
    fn on_datagram(&mut self, datagram: Datagram<'_>, out: &mut [u8]) -> Option<usize>;

    /// Bytes on a TCP connection that do not frame as a message (`error` says why: no
    /// Content-Length, too large, a broken head). Write the answer to a request into `out` if
    /// one is due (`error.disposition()`; a malformed response gets none); the loop sends it and
    /// then closes the connection (RFC 3261 18.3). `datagram.bytes` holds the received bytes
    /// from the start of the bad message, at most the message size limit, for the headers the
    /// answer copies. By default nothing is answered.
    fn on_stream_error(
        &mut self,
        _datagram: Datagram<'_>,
        _error: sip::Error,
        _out: &mut [u8],
    ) -> Option<usize> {
        None
    }

    /// TCP connection `connection` closed (by the peer, an error, the idle timeout, a framing
    /// error, or the loop stopping); no message will arrive on it and nothing can be sent on it.
    /// A registrar marks the bindings learnt over it unreachable, or removes them (RFC 5626
    /// flows). Called once per connection, after its last message.
    fn on_closed(&mut self, _connection: u64) {}

    /// Called after every poll wake-up (at least every 200 ms) for timers such as expiry.
    fn on_tick(&mut self, _now_ms: u64) {}
}

/// What one loop serves: UDP sockets, TCP listeners and the limits on TCP connections.
#[derive(Debug, Default)]
pub struct Listeners {
    pub udp: Vec<UdpSocket>,
    pub tcp: Vec<TcpListener>,
    pub tcp_limits: TcpLimits,
}

impl From<Vec<UdpSocket>> for Listeners {
    /// UDP sockets only.
    fn from(udp: Vec<UdpSocket>) -> Listeners {
        Listeners {
            udp,
            ..Listeners::default()
        }
    }
}

/// What the loop counted, returned when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub tcp: TcpStats,
}

/// Opens a UDP socket the way a SIP server wants it: address reuse (a restart does not wait),
/// IPv6 sockets IPv6-only (so `[::]:5060` and `0.0.0.0:5060` coexist), non-blocking.
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

/// Opens a TCP listener the same way as [`bind_udp`] (address reuse, IPv6-only for IPv6,
/// non-blocking), with a backlog of 1024 pending connections.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(TCP_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// The wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Serves every UDP socket and TCP listener from one poll loop until `stop` is set, and closes
/// every TCP connection when it does. Each readable socket is drained until it would block;
/// every message is answered before the next is read. `listeners` is a [`Listeners`] or, for
/// UDP alone, a `Vec<UdpSocket>`.
///
/// Tokens: UDP socket `i` is `i`, TCP listener `j` is `udp.len() + j`, and connections take the
/// tokens after those, which are also their ids.
pub fn serve(
    listeners: impl Into<Listeners>,
    element: &mut impl Element,
    stop: Arc<AtomicBool>,
) -> io::Result<Stats> {
    let Listeners {
        udp: mut sockets,
        tcp: listeners,
        tcp_limits,
    } = listeners.into();
    let mut poll = Poll::new()?;
    let mut locals = Vec::with_capacity(sockets.len());
    for (i, s) in sockets.iter_mut().enumerate() {
        poll.registry().register(s, Token(i), Interest::READABLE)?;
        locals.push(s.local_addr()?);
    }
    let first_listener = sockets.len();
    let first_connection = first_listener + listeners.len();
    let mut tcp = tcp::Tcp::new(listeners, tcp_limits, poll.registry(), first_listener)?;
    let mut events = Events::with_capacity(64);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    // An answer can be as large as the largest message allowed on either transport.
    let mut out = vec![0u8; MAX_DATAGRAM.max(tcp_limits.max_message)];
    while !stop.load(Ordering::Relaxed) {
        match poll.poll(&mut events, Some(Duration::from_millis(200))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let now = now_ms();
        element.on_tick(now);
        for event in events.iter() {
            let Token(t) = event.token();
            if t < first_listener {
                if let (Some(socket), Some(&local)) = (sockets.get(t), locals.get(t)) {
                    udp::drain(socket, local, element, &mut buf, &mut out);
                }
            } else if t < first_connection {
                tcp.accept(t - first_listener, poll.registry());
            } else {
                // Errors and hang-ups are found by the read that follows.
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                tcp.ready(
                    t as u64,
                    readable,
                    poll.registry(),
                    element,
                    &mut buf,
                    &mut out,
                );
            }
        }
        tcp.sweep(now, poll.registry(), element);
    }
    tcp.close_all(poll.registry(), element);
    Ok(Stats { tcp: tcp.stats() })
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
    //! The loop itself on loopback sockets: UDP and TCP in one `serve`, framing across
    //! segments, the pong, answers on the connection, closing reported to the element, and the
    //! connection and idle limits.

    use super::*;
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, TcpStream};
    use std::sync::Mutex;

    const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\n\
To: <sip:a@example.com>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";

    /// What the test element was told.
    #[derive(Debug, Default)]
    struct Seen {
        messages: Vec<(Transport, Option<u64>)>,
        errors: Vec<sip::ErrorKind>,
        closed: Vec<u64>,
    }

    /// Answers every message `ok TRANSPORT` and every framing error `bad`.
    struct Echo(Arc<Mutex<Seen>>);

    impl Element for Echo {
        fn on_datagram(&mut self, d: Datagram<'_>, out: &mut [u8]) -> Option<usize> {
            let mut seen = self.0.lock().ok()?;
            seen.messages.push((d.transport, d.connection));
            let answer = format!("ok {:?}", d.transport);
            out.get_mut(..answer.len())?
                .copy_from_slice(answer.as_bytes());
            Some(answer.len())
        }

        fn on_stream_error(
            &mut self,
            _d: Datagram<'_>,
            error: sip::Error,
            out: &mut [u8],
        ) -> Option<usize> {
            self.0.lock().ok()?.errors.push(error.kind);
            out.get_mut(..3)?.copy_from_slice(b"bad");
            Some(3)
        }

        fn on_closed(&mut self, connection: u64) {
            if let Ok(mut seen) = self.0.lock() {
                seen.closed.push(connection);
            }
        }
    }

    /// A loop serving one UDP socket and one TCP listener on loopback, stopped on drop.
    struct Running {
        udp: SocketAddr,
        tcp: SocketAddr,
        seen: Arc<Mutex<Seen>>,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<io::Result<Stats>>>,
    }

    impl Running {
        fn start(limits: TcpLimits) -> Running {
            let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let udp = bind_udp(any).expect("bind udp");
            let tcp = bind_tcp(any).expect("bind tcp");
            let (udp_addr, tcp_addr) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
            let seen = Arc::new(Mutex::new(Seen::default()));
            let stop = Arc::new(AtomicBool::new(false));
            let listeners = Listeners {
                udp: vec![udp],
                tcp: vec![tcp],
                tcp_limits: limits,
            };
            let mut element = Echo(Arc::clone(&seen));
            let flag = Arc::clone(&stop);
            let thread = std::thread::spawn(move || serve(listeners, &mut element, flag));
            Running {
                udp: udp_addr,
                tcp: tcp_addr,
                seen,
                stop,
                thread: Some(thread),
            }
        }

        fn connect(&self) -> TcpStream {
            let s = TcpStream::connect(self.tcp).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        }

        fn stop(mut self) -> Stats {
            self.stop.store(true, Ordering::Relaxed);
            let thread = self.thread.take().expect("running");
            thread.join().expect("loop thread").expect("loop")
        }

        fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
            f(&self.seen.lock().unwrap())
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
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

    #[test]
    fn serves_udp_and_tcp_together() {
        let run = Running::start(TcpLimits::default());
        // UDP as before.
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        udp.send_to(REGISTER, run.udp).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = udp.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ok Udp");
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
                .filter(|m| m.0 == Transport::Tcp)
                .map(|m| m.1)
                .collect();
            assert_eq!(s.messages.first(), Some(&(Transport::Udp, None)));
            tcp
        });
        assert_eq!(ids.len(), 4);
        let (first, second) = (ids[0].unwrap(), ids[3].unwrap());
        assert!(ids[..3].iter().all(|&i| i == Some(first)));
        assert_ne!(first, second);
        // Closing is reported once, with the id.
        drop(tcp);
        wait_until("on_closed", || run.seen(|s| s.closed == [first]));
        let stats = run.stop();
        assert_eq!(stats.tcp.accepted, 2);
        assert_eq!(stats.tcp.closed_by_peer, 1);
        assert_eq!(stats.tcp.shutdown, 1);
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
        assert_eq!(run.stop().tcp.invalid, 1);
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
        assert_eq!((stats.tcp.accepted, stats.tcp.refused), (1, 1));
    }

    #[test]
    fn idle_connections_are_closed() {
        let run = Running::start(TcpLimits::new(10, 65_535, Duration::from_millis(300)));
        let mut tcp = run.connect();
        // Half a message is not a sign of life.
        tcp.write_all(&REGISTER[..30]).unwrap();
        assert_eq!(read_to_close(&mut tcp), b"");
        wait_until("on_closed", || run.seen(|s| s.closed.len() == 1));
        assert_eq!(run.stop().tcp.idle, 1);
    }
}
