//! SIP over UDP: one datagram is one message (RFC 3261 18.3), answered to its source address.
//!
//! No framing, no connection state and no retransmission here: a reply that does not fit the
//! socket buffer is dropped as the network would drop it, and the client retransmits.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

use super::{Datagram, Element, now_ms};
use crate::sip::Transport;

/// Receives from `socket` until it would block; every datagram is answered before the next is
/// read.
pub fn drain(
    socket: &UdpSocket,
    local: SocketAddr,
    element: &mut impl Element,
    buf: &mut [u8],
    out: &mut [u8],
) {
    loop {
        let (n, source) = match socket.recv_from(buf) {
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
            transport: Transport::Udp,
            connection: None,
            bytes: buf.get(..n).unwrap_or_default(),
        };
        if let Some(len) = element.on_datagram(datagram, out)
            && let Some(reply) = out.get(..len)
        {
            // A full socket buffer drops the reply as the network would; the client
            // retransmits (RFC 3261 17.1.2).
            let _ = socket.send_to(reply, source);
        }
    }
}
