//! The I/O shell: sockets, the poll loop and the clock, around the sans-I/O element.
//!
//! This is the one place that reads the clock and touches sockets; the clippy configuration
//! forbids both everywhere else. It receives datagrams, hands each one with the time and the
//! source address to the element, and sends back whatever the element wrote. It holds no protocol
//! logic.
#![allow(clippy::disallowed_methods)] // the clock and sockets live here, by design

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

/// Largest datagram accepted; longer ones are truncated by the kernel and then fail to frame.
const MAX_DATAGRAM: usize = 65_535;

/// What the element sees of one received datagram.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    /// Milliseconds since the Unix epoch.
    pub now_ms: u64,
    pub source: SocketAddr,
    pub local: SocketAddr,
    pub bytes: &'a [u8],
}

/// The element driven by the loop: given a datagram, write the answer into `out` and return its
/// length, or `None` to send nothing.
pub trait Element {
    fn on_datagram(&mut self, datagram: Datagram<'_>, out: &mut [u8]) -> Option<usize>;

    /// Called after every poll wake-up (at least every 200 ms) for timers such as expiry.
    fn on_tick(&mut self, _now_ms: u64) {}
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

/// The wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Serves every socket from one poll loop until `stop` is set. Each readable socket is drained
/// until it would block; every datagram is answered before the next is read.
pub fn serve(
    sockets: Vec<UdpSocket>,
    element: &mut impl Element,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut sockets = sockets;
    let mut locals = Vec::with_capacity(sockets.len());
    for (i, s) in sockets.iter_mut().enumerate() {
        poll.registry().register(s, Token(i), Interest::READABLE)?;
        locals.push(s.local_addr()?);
    }
    let mut events = Events::with_capacity(64);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = vec![0u8; MAX_DATAGRAM];
    while !stop.load(Ordering::Relaxed) {
        match poll.poll(&mut events, Some(Duration::from_millis(200))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        element.on_tick(now_ms());
        for event in events.iter() {
            let Token(i) = event.token();
            let (Some(socket), Some(&local)) = (sockets.get(i), locals.get(i)) else {
                continue;
            };
            loop {
                let (n, source) = match socket.recv_from(&mut buf) {
                    Ok(r) => r,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // ICMP errors from earlier sends surface here; they concern no one now.
                    Err(_) => continue,
                };
                let datagram = Datagram {
                    now_ms: now_ms(),
                    source,
                    local,
                    bytes: buf.get(..n).unwrap_or_default(),
                };
                if let Some(len) = element.on_datagram(datagram, &mut out)
                    && let Some(reply) = out.get(..len)
                {
                    // A full socket buffer drops the reply as the network would; the client
                    // retransmits (RFC 3261 17.1.2).
                    let _ = socket.send_to(reply, source);
                }
            }
        }
    }
    Ok(())
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
