//! Free loopback ports for the end-to-end tests that run the real binary.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
/// Whether `port` on `ip` can be bound now, for UDP and for TCP alike; returns the port (the
/// one chosen when `port` is 0).
#[allow(clippy::disallowed_methods)] // Probing for a free port needs a socket.
pub fn bindable(ip: IpAddr, port: u16) -> Option<u16> {
    let socket = UdpSocket::bind(SocketAddr::new(ip, port)).ok()?;
    let port = socket.local_addr().ok()?.port();
    TcpListener::bind(SocketAddr::new(ip, port)).ok()?;
    Some(port)
}

/// A port free on `ip` for UDP and TCP alike, whose next `extra` ports are free too (baresip
/// listens on `sip_listen` and, for TLS, on the port after it).
#[allow(dead_code)] // e2e_sipp keeps its own, which never hands a port out twice.
pub fn free_port(ip: IpAddr, extra: u16) -> u16 {
    for _ in 0..1000 {
        let Some(port) = bindable(ip, 0) else {
            continue;
        };
        if (1..=extra).all(|i| {
            port.checked_add(i)
                .is_some_and(|p| bindable(ip, p).is_some())
        }) {
            return port;
        }
    }
    panic!("no free port on {ip}");
}
