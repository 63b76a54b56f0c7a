//! Batched datagram I/O: `recvmmsg`/`sendmmsg` over nonblocking UDP sockets, and epoll to wait
//! on many of them. The only `unsafe` code of the crate, each block with its reason.
//!
//! What it does not do: interpret the bytes, or retry (a datagram the kernel refuses is
//! counted by the caller and left to the SIP retransmission timers).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Largest datagram received; SIP over UDP stays under the path MTU, sipreg's limit is 64 KiB
/// but its answers to these requests are well under 2 KiB.
pub const MAX_DATAGRAM: usize = 4096;

/// A nonblocking UDP socket bound to `addr` (port 0: an ephemeral port) with large buffers.
pub fn bind_udp(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // Bigger buffers absorb bursts; the kernel caps them at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&SockAddr::from(addr))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Asks the kernel to stamp each datagram `sock` receives with its arrival time
/// (`SO_TIMESTAMPNS`, the system clock), read back with [`RecvBatch::arrival`]. A datagram's
/// latency then ends when it reached the socket, not when a busy load generator got round to
/// reading it.
pub fn enable_rx_timestamps(sock: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a valid c_int for the duration of the call; the size passed is its size.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Room for the control messages of one datagram: one `SCM_TIMESTAMPNS` needs 32 bytes.
/// Words, for the alignment `cmsghdr` needs.
type Control = [u64; 8];

/// Received datagrams of one `recvmmsg` call: `batch` buffers with their source addresses and,
/// when the socket asked for them, their arrival times.
pub struct RecvBatch {
    bufs: Vec<u8>,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    controls: Vec<Control>,
    iovs: Vec<libc::iovec>,
    /// Built once, pointing into the vectors above, whose heap blocks never move (none is
    /// resized after `new`). The kernel rewrites only each header's name and control lengths,
    /// which are reset before every call for the headers the last call used.
    hdrs: Vec<libc::mmsghdr>,
    count: usize,
}

impl RecvBatch {
    pub fn new(batch: usize) -> RecvBatch {
        let batch = batch.max(1);
        let mut b = RecvBatch {
            bufs: vec![0; batch * MAX_DATAGRAM],
            lens: vec![0; batch],
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid (AF_UNSPEC) value.
            addrs: vec![unsafe { zeroed() }; batch],
            addr_lens: vec![0; batch],
            controls: vec![[0; 8]; batch],
            iovs: Vec::with_capacity(batch),
            hdrs: Vec::with_capacity(batch),
            count: 0,
        };
        for chunk in b.bufs.chunks_exact_mut(MAX_DATAGRAM) {
            b.iovs.push(libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            });
        }
        for ((addr, iov), control) in b.addrs.iter_mut().zip(&mut b.iovs).zip(&mut b.controls) {
            // SAFETY: mmsghdr is plain old data; the pointers are filled in right here.
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            h.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = control.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = size_of::<Control>() as _;
            b.hdrs.push(h);
        }
        b
    }

    /// Receives up to a batch without blocking (`Ok(0)` when nothing is waiting) or, with
    /// `wait`, blocks until at least one arrives (or the socket's receive timeout).
    pub fn recv(&mut self, fd: RawFd, wait: bool) -> io::Result<usize> {
        for h in self.hdrs.iter_mut().take(self.count) {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_controllen = size_of::<Control>() as _;
        }
        self.count = 0;
        let flags = if wait {
            libc::MSG_WAITFORONE
        } else {
            libc::MSG_DONTWAIT
        };
        // SAFETY: `hdrs` holds `batch` headers whose iovecs point into `bufs` (MAX_DATAGRAM bytes
        // each), whose names point into `addrs` and whose control buffers into `controls`; all
        // live as long as the batch and are not resized.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        self.count = n as usize;
        for ((len, alen), h) in self
            .lens
            .iter_mut()
            .zip(&mut self.addr_lens)
            .zip(&self.hdrs)
            .take(self.count)
        {
            *len = (h.msg_len as usize).min(MAX_DATAGRAM);
            *alen = h.msg_hdr.msg_namelen;
        }
        Ok(self.count)
    }

    /// The `i`th datagram received by the last call.
    pub fn datagram(&self, i: usize) -> &[u8] {
        let len = self.lens.get(i).copied().unwrap_or(0);
        self.bufs
            .get(i * MAX_DATAGRAM..i * MAX_DATAGRAM + len)
            .unwrap_or_default()
    }

    /// When the `i`th datagram of the last call reached its socket, as time since the Unix
    /// epoch on the system clock: present when the socket has [`enable_rx_timestamps`].
    pub fn arrival(&self, i: usize) -> Option<Duration> {
        if i >= self.count {
            return None;
        }
        let h = self.hdrs.get(i)?;
        // SAFETY: the header's control buffer and length are what the kernel wrote for this
        // datagram; the CMSG_* functions stay within msg_controllen, and the timespec is read
        // unaligned from inside the control message that carries it.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&h.msg_hdr);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    return Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                }
                c = libc::CMSG_NXTHDR(&h.msg_hdr, c);
            }
        }
        None
    }

    /// The source of the `i`th datagram, raw, to send an answer back with [`SendBatch`].
    pub fn source(&self, i: usize) -> Option<(&libc::sockaddr_storage, libc::socklen_t)> {
        Some((self.addrs.get(i)?, *self.addr_lens.get(i)?))
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Datagrams queued for one `sendmmsg` call on one socket.
#[derive(Default)]
pub struct SendBatch {
    data: Vec<u8>,
    msgs: Vec<(usize, usize, libc::sockaddr_storage, libc::socklen_t)>,
    /// The caller's tag of each datagram, handed back by [`SendBatch::flush`] once it is sent.
    tags: Vec<u32>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: `iovs` and `hdrs` hold pointers only during `flush`, which clears them before it
// returns; in between the batch holds no pointer.
unsafe impl Send for SendBatch {}

impl SendBatch {
    /// Queues `bytes` for `to` (raw socket address of `len` bytes).
    pub fn push_raw(&mut self, bytes: &[u8], to: &libc::sockaddr_storage, len: libc::socklen_t) {
        self.push_tagged(bytes, to, len, 0);
    }

    fn push_tagged(
        &mut self,
        bytes: &[u8],
        to: &libc::sockaddr_storage,
        len: libc::socklen_t,
        tag: u32,
    ) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.msgs.push((start, bytes.len(), *to, len));
        self.tags.push(tag);
    }

    /// Queues `bytes` for `to`, with the tag `flush` reports when it has gone.
    pub fn push(&mut self, bytes: &[u8], to: &SockAddr, tag: u32) {
        // SAFETY: a SockAddr holds at most a sockaddr_storage's worth of bytes at as_ptr().
        let storage = unsafe { *to.as_ptr().cast::<libc::sockaddr_storage>() };
        self.push_tagged(bytes, &storage, to.len(), tag);
    }

    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Sends everything queued, `batch` datagrams per system call, and calls `sent` with the
    /// tag of each datagram the kernel took, right after the call that took it. Returns how
    /// many the kernel refused (buffer full or an error); those are dropped.
    pub fn flush(&mut self, fd: RawFd, batch: usize, mut sent: impl FnMut(u32)) -> usize {
        let mut dropped = 0;
        let mut from = 0;
        let (mut iovs, mut hdrs) = (
            std::mem::take(&mut self.iovs),
            std::mem::take(&mut self.hdrs),
        );
        while from < self.msgs.len() {
            let to = (from + batch.max(1)).min(self.msgs.len());
            iovs.clear();
            hdrs.clear();
            for (start, len, _, _) in &self.msgs[from..to] {
                iovs.push(libc::iovec {
                    // sendmmsg does not write through iov_base; the cast to *mut is the C API's.
                    iov_base: self.data[*start..].as_ptr() as *mut libc::c_void,
                    iov_len: *len,
                });
            }
            for (i, (_, _, addr, alen)) in self.msgs[from..to].iter_mut().enumerate() {
                // SAFETY: mmsghdr is plain old data; pointers are set right here.
                let mut h: libc::mmsghdr = unsafe { zeroed() };
                h.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
                h.msg_hdr.msg_namelen = *alen;
                h.msg_hdr.msg_iov = &mut iovs[i];
                h.msg_hdr.msg_iovlen = 1;
                hdrs.push(h);
            }
            // SAFETY: `hdrs` has to-from headers pointing into `iovs`, `data` and `msgs`, none of
            // which is resized or moved during the call.
            let n = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), hdrs.len() as libc::c_uint, 0) };
            if n <= 0 {
                let e = io::Error::last_os_error();
                if n < 0 && e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Skip the head datagram and go on with the rest.
                dropped += 1;
                from += 1;
            } else {
                for &tag in self.tags.get(from..from + n as usize).unwrap_or_default() {
                    sent(tag);
                }
                from += n as usize;
            }
        }
        self.data.clear();
        self.msgs.clear();
        self.tags.clear();
        // Kept for their capacity, without the pointers of this call.
        iovs.clear();
        hdrs.clear();
        (self.iovs, self.hdrs) = (iovs, hdrs);
        dropped
    }
}

/// An epoll instance watching sockets for readability, each with a caller-chosen token.
pub struct Poller {
    fd: RawFd,
    events: Vec<libc::epoll_event>,
    /// Whether the kernel has `epoll_pwait2` (Linux 5.11).
    pwait2: bool,
}

impl Poller {
    pub fn new(capacity: usize) -> io::Result<Poller> {
        // SAFETY: plain system call; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Poller {
            fd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; capacity.max(1)],
            pwait2: true,
        })
    }

    /// Watches `sock` for readability (level-triggered), reporting `token`.
    pub fn add(&mut self, sock: &impl AsRawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        let r = unsafe { libc::epoll_ctl(self.fd, libc::EPOLL_CTL_ADD, sock.as_raw_fd(), &mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` (at most a second) and calls `f` with each ready token.
    ///
    /// Uses `epoll_pwait2` for sub-millisecond timeouts, so an open loop at a few thousand
    /// requests per second sleeps between sends instead of spinning; kernels before 5.11 get
    /// `epoll_wait` with the timeout rounded up to a millisecond.
    pub fn wait(&mut self, timeout: Duration, mut f: impl FnMut(u64)) -> io::Result<()> {
        let timeout = timeout.min(Duration::from_secs(1));
        let len = self.events.len() as libc::c_int;
        let mut n = -1;
        if self.pwait2 {
            let ts = libc::timespec {
                tv_sec: timeout.as_secs() as libc::time_t,
                tv_nsec: timeout.subsec_nanos() as libc::c_long,
            };
            // SAFETY: `events` has room for `len` entries, the kernel writes at most that many;
            // `ts` lives for the call; a null signal mask means none is changed.
            n = unsafe {
                libc::epoll_pwait2(
                    self.fd,
                    self.events.as_mut_ptr(),
                    len,
                    &ts,
                    std::ptr::null(),
                )
            };
            if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
                self.pwait2 = false;
            }
        }
        if !self.pwait2 {
            let ms = timeout.as_micros().div_ceil(1000) as libc::c_int;
            // SAFETY: as above.
            n = unsafe { libc::epoll_wait(self.fd, self.events.as_mut_ptr(), len, ms) };
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        for ev in self.events.iter().take(n as usize) {
            f(ev.u64);
        }
        Ok(())
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        // SAFETY: `fd` is the epoll descriptor this value owns, closed once.
        unsafe {
            libc::close(self.fd);
        }
    }
}

/// Whether standard error is a terminal (the live progress line is drawn only then).
pub fn stderr_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(2) == 1 }
}

/// CPU time (user + system) this process has used so far: how much of a core the load costs,
/// which a shared machine's wall clock does not show.
pub fn process_cpu() -> Duration {
    // SAFETY: rusage is plain old data, all-zero valid; getrusage writes only into it.
    let mut u: libc::rusage = unsafe { zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer; the result is checked.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = bind_udp("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let b = bind_udp("127.0.0.1:0".parse().unwrap(), false).unwrap();
        (a, b)
    }

    /// Sends every datagram queued on `tx` from `from` to `to`, and returns the tags reported.
    fn send_all(tx: &mut SendBatch, from: &UdpSocket) -> Vec<u32> {
        let mut tags = Vec::new();
        assert_eq!(tx.flush(from.as_raw_fd(), 8, |t| tags.push(t)), 0);
        tags
    }

    /// Waits (briefly) until `rx` has received `n` datagrams on `sock`.
    fn recv_n(rx: &mut RecvBatch, sock: &UdpSocket, n: usize) -> usize {
        for _ in 0..200 {
            let got = rx.recv(sock.as_raw_fd(), false).unwrap();
            if got > 0 {
                assert_eq!(got, n);
                return got;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("nothing received");
    }

    #[test]
    fn flush_reports_each_tag_once_in_order() {
        let (a, b) = pair();
        let to = SockAddr::from(b.local_addr().unwrap());
        let mut tx = SendBatch::default();
        for tag in [7, 3, 9] {
            tx.push(b"x", &to, tag);
        }
        assert_eq!(send_all(&mut tx, &a), [7, 3, 9]);
        assert!(tx.is_empty());
        // Reused: nothing of the last call is reported again.
        tx.push(b"y", &to, 4);
        assert_eq!(send_all(&mut tx, &a), [4]);
    }

    /// The headers are built once: a second call, after one that filled them, still gets the
    /// bytes, the source and the arrival time of what it receives.
    #[test]
    fn arrival_is_stamped_on_every_call_of_a_reused_batch() {
        let (a, b) = pair();
        enable_rx_timestamps(&b).unwrap();
        let to = SockAddr::from(b.local_addr().unwrap());
        let mut tx = SendBatch::default();
        let mut rx = RecvBatch::new(4);
        for round in 0..3u8 {
            let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            tx.push(&[b'a' + round; 10], &to, 0);
            tx.push(&[b'a' + round; 20], &to, 0);
            send_all(&mut tx, &a);
            // Both were queued before the first recv: one call takes both.
            std::thread::sleep(Duration::from_millis(2));
            recv_n(&mut rx, &b, 2);
            let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            assert_eq!(rx.datagram(0), [b'a' + round; 10]);
            assert_eq!(rx.datagram(1), [b'a' + round; 20]);
            let (_, alen) = rx.source(0).unwrap();
            assert_eq!(alen as usize, size_of::<libc::sockaddr_in>());
            for i in 0..2 {
                let at = rx.arrival(i).expect("stamped");
                assert!(before <= at && at <= after, "{before:?} {at:?} {after:?}");
            }
            assert_eq!(rx.arrival(2), None, "beyond what the call received");
        }
    }

    #[test]
    fn no_arrival_without_timestamps() {
        let (a, b) = pair();
        let mut tx = SendBatch::default();
        tx.push(b"z", &SockAddr::from(b.local_addr().unwrap()), 0);
        send_all(&mut tx, &a);
        let mut rx = RecvBatch::new(2);
        recv_n(&mut rx, &b, 1);
        assert_eq!(rx.datagram(0), b"z");
        assert_eq!(rx.arrival(0), None);
    }
}
