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

/// Received datagrams of one `recvmmsg` call: `batch` buffers with their source addresses.
pub struct RecvBatch {
    bufs: Vec<u8>,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    count: usize,
}

impl RecvBatch {
    pub fn new(batch: usize) -> RecvBatch {
        let batch = batch.max(1);
        RecvBatch {
            bufs: vec![0; batch * MAX_DATAGRAM],
            lens: vec![0; batch],
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid (AF_UNSPEC) value.
            addrs: vec![unsafe { zeroed() }; batch],
            addr_lens: vec![0; batch],
            iovs: Vec::with_capacity(batch),
            hdrs: Vec::with_capacity(batch),
            count: 0,
        }
    }

    /// Receives up to a batch without blocking (`Ok(0)` when nothing is waiting) or, with
    /// `wait`, blocks until at least one arrives (or the socket's receive timeout).
    pub fn recv(&mut self, fd: RawFd, wait: bool) -> io::Result<usize> {
        let batch = self.lens.len();
        self.iovs.clear();
        self.hdrs.clear();
        for (chunk, addr) in self
            .bufs
            .chunks_exact_mut(MAX_DATAGRAM)
            .zip(&mut self.addrs)
        {
            self.iovs.push(libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            });
            // SAFETY: mmsghdr is plain old data; the pointers are filled in below.
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            h.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iovlen = 1;
            self.hdrs.push(h);
        }
        for (h, iov) in self.hdrs.iter_mut().zip(&mut self.iovs) {
            h.msg_hdr.msg_iov = iov;
        }
        let flags = if wait {
            libc::MSG_WAITFORONE
        } else {
            libc::MSG_DONTWAIT
        };
        // SAFETY: `hdrs` holds `batch` headers whose iovecs point into `bufs` (MAX_DATAGRAM bytes
        // each) and whose names point into `addrs`; all live for the call and are not moved.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                batch as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.count = 0;
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
}

impl SendBatch {
    /// Queues `bytes` for `to` (raw socket address of `len` bytes).
    pub fn push_raw(&mut self, bytes: &[u8], to: &libc::sockaddr_storage, len: libc::socklen_t) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.msgs.push((start, bytes.len(), *to, len));
    }

    /// Queues `bytes` for `to`.
    pub fn push(&mut self, bytes: &[u8], to: &SockAddr) {
        // SAFETY: a SockAddr holds at most a sockaddr_storage's worth of bytes at as_ptr().
        let storage = unsafe { *to.as_ptr().cast::<libc::sockaddr_storage>() };
        self.push_raw(bytes, &storage, to.len());
    }

    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Sends everything queued, `batch` datagrams per system call. Returns how many the kernel
    /// refused (buffer full or an error); those are dropped.
    pub fn flush(&mut self, fd: RawFd, batch: usize) -> usize {
        let mut dropped = 0;
        let mut from = 0;
        // Local, so that the batch holds no raw pointers and can move between threads.
        let mut iovs: Vec<libc::iovec> = Vec::with_capacity(batch.max(1));
        let mut hdrs: Vec<libc::mmsghdr> = Vec::with_capacity(batch.max(1));
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
                from += n as usize;
            }
        }
        self.data.clear();
        self.msgs.clear();
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
