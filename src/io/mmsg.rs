//! Batched UDP I/O: `recvmmsg(2)` and `sendmmsg(2)`, one system call for up to [`Batch::len`]
//! datagrams each way.
//!
//! This module is the crate's one exception to `#![deny(unsafe_code)]`: the two calls take
//! arrays of raw `mmsghdr` structures pointing into buffers we own, and neither `std` nor
//! `socket2` wraps them (nor `SO_RCVBUFFORCE`, also here: [`force_buffer`]). The unsafe code is confined to building those arrays, making the calls
//! and reading back the source addresses the kernel wrote; every block states why it is sound.
//! Everything else (what to do with a datagram, where replies go) is safe code in the worker.
#![allow(unsafe_code)] // the documented exception; see the module comment

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

/// The room for a source address.
const SOURCE_LEN: libc::socklen_t = size_of::<libc::sockaddr_storage>() as libc::socklen_t;

/// Receive and send slots for one socket at a time: `len` datagrams of up to `size` octets in,
/// `len` replies of up to `size` octets out. Allocated once per worker; no call allocates.
pub struct Batch {
    size: usize,
    len: usize,
    /// `len` receive slots of `size` octets, back to back.
    recv: Vec<u8>,
    /// Octets received in each slot (after [`Batch::recv`]).
    recv_len: Vec<usize>,
    sources: Vec<libc::sockaddr_storage>,
    /// `len` reply slots of `size` octets, back to back.
    send: Vec<u8>,
    /// Replies queued: slot length and destination.
    queued: Vec<(usize, SocketAddr)>,
    /// The receive call's headers, built once: each points at its iovec over a slot of `recv`
    /// and at its address in `sources`. All of them live in heap blocks that never move (no
    /// vector here grows), so moving the batch leaves the pointers right. The kernel writes back
    /// only `msg_len` and `msg_namelen`.
    recv_headers: Vec<libc::mmsghdr>,
    recv_iovecs: Vec<libc::iovec>,
    /// Headers the last receive filled, whose `msg_namelen` the kernel shortened.
    filled: usize,
    /// Scratch for the send call, rebuilt on each (they point into the vectors above).
    headers: Vec<libc::mmsghdr>,
    iovecs: Vec<libc::iovec>,
    dests: Vec<libc::sockaddr_storage>,
}

// SAFETY: the raw pointers inside the headers and iovecs point into this same value's heap
// blocks (the receive ones since `new`, the send ones rewritten before every call) and are
// dereferenced only by the kernel during a call on `&mut self`; moving the batch to another
// thread moves those blocks' owners with it, and the blocks themselves stay where they are.
unsafe impl Send for Batch {}

impl Batch {
    /// Slots for `len` datagrams of at most `size` octets each way. A datagram longer than
    /// `size` is truncated to it; make `size` one more than the largest message accepted, so a
    /// truncated one is still recognised as too large.
    pub fn new(len: usize, size: usize) -> Batch {
        let len = len.clamp(1, 1024);
        let mut batch = Batch {
            size,
            len,
            recv: vec![0; len * size],
            recv_len: vec![0; len],
            // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid (AF_UNSPEC) value.
            sources: vec![unsafe { zeroed() }; len],
            send: vec![0; len * size],
            queued: Vec::with_capacity(len),
            // SAFETY: as above: mmsghdr and iovec are plain data (null pointers, zero lengths).
            recv_headers: vec![unsafe { zeroed() }; len],
            recv_iovecs: vec![unsafe { zeroed() }; len],
            filled: 0,
            // SAFETY: as above.
            headers: vec![unsafe { zeroed() }; len],
            iovecs: vec![unsafe { zeroed() }; len],
            dests: vec![unsafe { zeroed() }; len],
        };
        for (i, slot) in batch
            .recv
            .chunks_exact_mut(size.max(1))
            .enumerate()
            .take(len)
        {
            batch.recv_iovecs[i] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: slot.len(),
            };
            let h = &mut batch.recv_headers[i].msg_hdr;
            h.msg_name = (&raw mut batch.sources[i]).cast();
            h.msg_namelen = SOURCE_LEN;
            h.msg_iov = &raw mut batch.recv_iovecs[i];
            h.msg_iovlen = 1;
        }
        batch
    }

    /// Datagrams per system call.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch has no slots (never: `new` makes at least one).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Receives up to [`Batch::len`] datagrams from `socket` without blocking; returns how many
    /// (`Ok(0)` never happens: no datagram is `WouldBlock`).
    pub fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        // Only the headers the last call filled changed: the address room the kernel shortened
        // to each source's length is given back. (Rebuilding all `len` headers on every call
        // cost about a thousand instructions, most of it for calls that find one datagram.)
        for h in self.recv_headers.iter_mut().take(self.filled) {
            h.msg_hdr.msg_namelen = SOURCE_LEN;
        }
        // An error below may come after the kernel wrote some headers: restore all next time.
        self.filled = self.len;
        // SAFETY: `recv_headers` holds `len` initialised mmsghdr (built in `new`), each pointing
        // at a live iovec over its slot of `recv` and at its sockaddr_storage of `sources`, with
        // `msg_namelen` its full size; all are owned by `self`, in heap blocks that have not
        // moved since, and not otherwise borrowed during the call; the kernel writes at most
        // iov_len octets into each slot and at most msg_namelen octets into each address.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.recv_headers.as_mut_ptr(),
                self.len as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        self.filled = n;
        for i in 0..n {
            self.recv_len[i] = (self.recv_headers[i].msg_len as usize).min(self.size);
        }
        Ok(n)
    }

    /// Datagram `i` of the last [`Batch::recv`]: its octets and its source (`None` for an
    /// address family other than IPv4 and IPv6, which a SIP socket never reports).
    pub fn received(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let len = *self.recv_len.get(i)?;
        let bytes = self.recv.get(i * self.size..i * self.size + len)?;
        Some((bytes, from_storage(self.sources.get(i)?)?))
    }

    /// Datagram `i` of the last [`Batch::recv`] with the reply slot for the next queued reply
    /// (the two live in separate buffers, so the answer can be written while the request is
    /// read). `None` past the datagrams received, for an unknown address family, or when every
    /// reply slot is taken.
    pub fn message_and_slot(&mut self, i: usize) -> Option<(&[u8], SocketAddr, &mut [u8])> {
        let len = *self.recv_len.get(i)?;
        let bytes = self.recv.get(i * self.size..i * self.size + len)?;
        let source = from_storage(self.sources.get(i)?)?;
        let q = self.queued.len();
        if q >= self.len {
            return None;
        }
        let slot = self.send.get_mut(q * self.size..(q + 1) * self.size)?;
        Some((bytes, source, slot))
    }

    /// Reply slot for the next queued reply, or `None` when every slot is taken (send first).
    pub fn reply_slot(&mut self) -> Option<&mut [u8]> {
        let i = self.queued.len();
        if i >= self.len {
            return None;
        }
        self.send.get_mut(i * self.size..(i + 1) * self.size)
    }

    /// Queues the first `len` octets written into the current [`Batch::reply_slot`] for `dest`.
    pub fn queue(&mut self, len: usize, dest: SocketAddr) {
        if self.queued.len() < self.len {
            self.queued.push((len.min(self.size), dest));
        }
    }

    /// Replies queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// Sends every queued reply on `socket` and empties the queue; returns how many the kernel
    /// took. Replies it refuses (a full socket buffer, an unreachable destination) are dropped
    /// as the network would drop them: the client retransmits (RFC 3261 17.1.2).
    pub fn send(&mut self, socket: &impl AsRawFd) -> usize {
        let total = self.queued.len();
        let mut sent = 0;
        while sent < total {
            match self.send_from(socket.as_raw_fd(), sent) {
                Ok(n) => sent += n.max(1),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // WouldBlock (buffer full) or a per-destination error on the first reply in
                // line: drop that one and go on with the rest.
                Err(_) => sent += 1,
            }
        }
        self.queued.clear();
        total
    }

    /// One `sendmmsg` for the queued replies from index `first` on.
    fn send_from(&mut self, fd: RawFd, first: usize) -> io::Result<usize> {
        let count = self.queued.len() - first;
        for (k, &(len, dest)) in self.queued[first..].iter().enumerate() {
            let i = first + k;
            let slot = &mut self.send[i * self.size..i * self.size + len];
            self.iovecs[k] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: slot.len(),
            };
            let name_len = to_storage(dest, &mut self.dests[k]);
            // SAFETY: plain data, all zeroes is valid.
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            h.msg_hdr.msg_name = (&raw mut self.dests[k]).cast();
            h.msg_hdr.msg_namelen = name_len;
            h.msg_hdr.msg_iov = &raw mut self.iovecs[k];
            h.msg_hdr.msg_iovlen = 1;
            self.headers[k] = h;
        }
        // SAFETY: the first `count` headers are initialised and point at live iovecs over reply
        // slots and at destination addresses of `msg_namelen` octets, all owned by `self`; the
        // kernel only reads them.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                self.headers.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

/// Sets a socket buffer with `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE`, which exceed
/// `net.core.rmem_max`/`wmem_max` for a process with CAP_NET_ADMIN (root); `receive` picks which.
/// socket2 does not wrap these options.
pub fn force_buffer(socket: &impl AsRawFd, receive: bool, size: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    let option = if receive {
        libc::SO_RCVBUFFORCE
    } else {
        libc::SO_SNDBUFFORCE
    };
    // SAFETY: `value` is a live c_int and its size is passed with it; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The socket address the kernel wrote into `s`.
fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which is smaller than
            // sockaddr_storage and no more strictly aligned.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `addr` into `s` as the kernel expects it; returns the length to pass.
fn to_storage(addr: SocketAddr, s: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in; every
            // field is written below (the rest is zeroed padding).
            let out =
                unsafe { &mut *(s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            // SAFETY: plain data, all zeroes is valid.
            *out = unsafe { zeroed() };
            out.sin_family = libc::AF_INET as libc::sa_family_t;
            out.sin_port = a.port().to_be();
            out.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let out =
                unsafe { &mut *(s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            // SAFETY: plain data, all zeroes is valid.
            *out = unsafe { zeroed() };
            out.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            out.sin6_port = a.port().to_be();
            out.sin6_flowinfo = a.flowinfo();
            out.sin6_addr.s6_addr = a.ip().octets();
            out.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn pair(ip: &str) -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind((ip, 0)).unwrap();
        let b = UdpSocket::bind((ip, 0)).unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (a, b)
    }

    #[test]
    fn receives_and_answers_a_batch_over_ipv4_and_ipv6() {
        for ip in ["127.0.0.1", "::1"] {
            let (server, client) = pair(ip);
            let to = server.local_addr().unwrap();
            for i in 0..5u8 {
                client.send_to(&[b'a' + i; 3], to).unwrap();
            }
            let mut batch = Batch::new(4, 16);
            std::thread::sleep(Duration::from_millis(50));
            // Four now (the batch size), the fifth next time, then nothing.
            let mut seen = Vec::new();
            for expect in [4, 1] {
                let n = batch.recv(&server).unwrap();
                assert_eq!(n, expect);
                for i in 0..n {
                    let (bytes, from) = batch.received(i).unwrap();
                    assert_eq!(from, client.local_addr().unwrap());
                    let bytes = bytes.to_vec();
                    let slot = batch.reply_slot().unwrap();
                    slot[..3].copy_from_slice(&bytes);
                    slot[..3].make_ascii_uppercase();
                    batch.queue(3, from);
                    seen.push(bytes);
                }
                assert_eq!(batch.send(&server), n);
                assert_eq!(batch.queued(), 0);
            }
            let err = batch.recv(&server).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            assert_eq!(seen.len(), 5);
            let mut buf = [0u8; 16];
            for i in 0..5u8 {
                let (n, from) = client.recv_from(&mut buf).unwrap();
                assert_eq!((&buf[..n], from), (&[b'A' + i; 3][..], to));
            }
        }
    }

    /// The receive headers are built once and point into the batch's buffers: a batch moved
    /// (here to another thread) between calls still receives into its own slots, each with its
    /// full source address, and more datagrams than the call before filled.
    #[test]
    fn a_batch_moved_between_calls_still_receives() {
        let (server, client) = pair("127.0.0.1");
        let (other, _) = pair("127.0.0.1");
        let to = server.local_addr().unwrap();
        let mut batch = Batch::new(4, 16);
        client.send_to(b"first", to).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(batch.recv(&server).unwrap(), 1);
        assert_eq!(
            batch.received(0).unwrap(),
            (&b"first"[..], client.local_addr().unwrap())
        );
        let batch = Box::new(batch);
        let senders = [&client, &other, &client];
        for (i, s) in senders.iter().enumerate() {
            s.send_to(format!("msg{i}").as_bytes(), to).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        let expected: Vec<(Vec<u8>, SocketAddr)> = senders
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("msg{i}").into_bytes(), s.local_addr().unwrap()))
            .collect();
        let got = std::thread::spawn(move || {
            let mut batch = *batch;
            let n = batch.recv(&server).unwrap();
            (0..n)
                .map(|i| {
                    let (bytes, from) = batch.received(i).unwrap();
                    (bytes.to_vec(), from)
                })
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_datagram_longer_than_a_slot_is_truncated_to_it() {
        let (server, client) = pair("127.0.0.1");
        client
            .send_to(&[7u8; 100], server.local_addr().unwrap())
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut batch = Batch::new(2, 10);
        assert_eq!(batch.recv(&server).unwrap(), 1);
        assert_eq!(batch.received(0).unwrap().0, &[7u8; 10]);
        // No more slots than the batch has.
        for _ in 0..2 {
            assert!(batch.reply_slot().is_some());
            batch.queue(1, client.local_addr().unwrap());
        }
        assert!(batch.reply_slot().is_none());
    }
}
