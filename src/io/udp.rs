//! Opening the sockets a SIP server listens on, UDP and TCP alike.
//!
//! Every worker opens its own socket on each address with `SO_REUSEPORT`, so the kernel spreads
//! datagrams and connections over the workers by a hash of the peer's address and port; a
//! client keeps its worker as long as it keeps its address. The receiving side of UDP (one
//! datagram is one message, RFC 3261 18.3) is the worker's batch loop ([`super::worker`]).

use std::io;
use std::net::SocketAddr;

use mio::net::{TcpListener, UdpSocket};
use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections a TCP listener queues before the worker accepts them.
const TCP_BACKLOG: i32 = 1024;

/// Socket buffer sizes to ask the kernel for; `None` keeps the system default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Buffers {
    pub recv: Option<usize>,
    pub send: Option<usize>,
}

/// What the kernel granted of a buffer request, when it granted less.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capped {
    pub addr: SocketAddr,
    pub what: &'static str,
    pub asked: usize,
    pub got: usize,
}

fn socket(addr: SocketAddr, ty: Type, protocol: Protocol, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    if addr.is_ipv6() {
        // `[::]:5060` and `0.0.0.0:5060` coexist.
        socket.set_only_v6(true)?;
    }
    // TCP: a restart does not wait for old connections' TIME_WAIT. Not UDP, which has no
    // TIME_WAIT and where SO_REUSEADDR would let another socket share the port.
    if ty == Type::STREAM {
        socket.set_reuse_address(true)?;
    }
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Sets the buffer sizes asked for; returns those the kernel capped below the request. Linux
/// caps at `net.core.rmem_max`/`wmem_max` (and reports double what it grants); a process allowed
/// to (root) goes past the cap with `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE`.
fn size_buffers(s: &Socket, addr: SocketAddr, buffers: Buffers) -> io::Result<Vec<Capped>> {
    let mut capped = Vec::new();
    for (receive, asked) in [(true, buffers.recv), (false, buffers.send)] {
        let Some(asked) = asked else {
            continue;
        };
        let get = |s: &Socket| {
            if receive {
                s.recv_buffer_size()
            } else {
                s.send_buffer_size()
            }
        };
        if receive {
            s.set_recv_buffer_size(asked)?;
        } else {
            s.set_send_buffer_size(asked)?;
        }
        if get(s)? < asked {
            // Not permitted is fine: the warning below says what to raise.
            let _ = super::mmsg::force_buffer(s, receive, asked);
        }
        let got = get(s)?;
        if got < asked {
            capped.push(Capped {
                addr,
                what: if receive { "receive" } else { "send" },
                asked,
                got,
            });
        }
    }
    Ok(capped)
}

/// Opens a UDP socket the way a SIP server wants it: address reuse, IPv6 sockets IPv6-only,
/// non-blocking; with `SO_REUSEPORT` when `reuse_port` (one socket per worker on one address).
pub fn bind_udp_with(
    addr: SocketAddr,
    reuse_port: bool,
    buffers: Buffers,
) -> io::Result<(UdpSocket, Vec<Capped>)> {
    let s = socket(addr, Type::DGRAM, Protocol::UDP, reuse_port)?;
    let capped = size_buffers(&s, addr, buffers)?;
    s.bind(&addr.into())?;
    Ok((UdpSocket::from_std(s.into()), capped))
}

/// Opens a TCP listener the same way, with a backlog of 1024 pending connections.
pub fn bind_tcp_with(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let s = socket(addr, Type::STREAM, Protocol::TCP, reuse_port)?;
    s.bind(&addr.into())?;
    s.listen(TCP_BACKLOG)?;
    Ok(TcpListener::from_std(s.into()))
}

/// One UDP socket, no `SO_REUSEPORT`, default buffers.
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    bind_udp_with(addr, false, Buffers::default()).map(|(s, _)| s)
}

/// One TCP listener, no `SO_REUSEPORT`.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    bind_tcp_with(addr, false)
}
