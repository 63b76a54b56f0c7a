//! Worker threads: one poll loop per core, each with its own sockets and element, and the
//! bounded hand-off between them.
//!
//! [`Server::start`] opens every socket first (so a bad address fails before any thread runs):
//! for each worker, one `SO_REUSEPORT` UDP socket and one TCP listener on every configured
//! address, in the same order, so socket `i` of any worker has the same local address. Then each
//! worker runs on its own thread, pinned to a core if asked:
//!
//! - UDP: `recvmmsg` up to a batch of datagrams, answer each into the batch's reply slots,
//!   `sendmmsg` the answers; again until the socket would block, with the inbox served between
//!   batches so a busy socket cannot starve it.
//! - TCP: accept, read, frame (see [`super::tcp`]), answer on the connection.
//! - Hand-off: when the element says another worker must finish a message
//!   ([`Outcome::HandOff`]), the message is copied into a pooled buffer and posted to that
//!   worker's bounded queue, which wakes its poll only if it sleeps. The owner answers from its
//!   own socket on the same local address (UDP), or gives the answer to the worker holding the
//!   connection (TCP). A full queue never blocks: the receiving worker answers at once through
//!   [`Element::on_overload`] (a 503 with Retry-After).
//! - Requests of the element's own ([`Element::poll_transmit`], asked after every tick): UDP
//!   ones leave in one `sendmmsg` per socket from the batch's slots; one for a TCP connection
//!   is queued on it if this worker holds it, or copied into a pooled buffer and posted to the
//!   worker that does, which reports back if the connection is gone
//!   ([`Element::on_undeliverable`]).
//!
//! Buffers circulate through a pool, so a steady load allocates nothing per message.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};

use super::mmsg::Batch;
use super::tcp::{self, Tcp, TcpLimits, TcpStats};
use super::udp::{Buffers, Capped, bind_tcp_with, bind_udp_with};
use super::{Datagram, Destination, Element, Outcome, Sink, Transmit, now_ms};
use crate::sip::{self, Transport};

/// The poll token of a worker's waker; connection tokens never come near it.
const WAKER: Token = Token(usize::MAX - 1);

/// Longest sleep in poll, so that [`Element::on_tick`] runs at least this often.
const TICK: Duration = Duration::from_millis(100);

/// UDP batches served in one turn of the loop before the poll is asked again (so TCP and the
/// clock are not starved by a socket that never drains).
const ROUNDS: usize = 64;

/// Requests of the element's own sent in one turn of the loop; more wait for the next turn,
/// which comes without sleeping, so that a burst of them cannot starve the sockets.
const TRANSMITS: usize = 4096;

/// How the workers are laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Worker threads (at least one).
    pub workers: usize,
    /// Pin worker `i` to core `i` (modulo the cores available).
    pub pin: bool,
    /// UDP addresses; port 0 picks a free port, the same for every worker.
    pub udp: Vec<SocketAddr>,
    /// TCP addresses, likewise.
    pub tcp: Vec<SocketAddr>,
    pub tcp_limits: TcpLimits,
    pub buffers: Buffers,
    /// Capacity of each worker's hand-off queue, in messages.
    pub queue: usize,
    /// Datagrams per `recvmmsg`/`sendmmsg`.
    pub batch: usize,
    /// Largest message accepted over UDP, in octets (a longer datagram reaches the element
    /// truncated to one octet more, so it is still seen as too large).
    pub max_message: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workers: 1,
            pin: false,
            udp: Vec::new(),
            tcp: Vec::new(),
            tcp_limits: TcpLimits::default(),
            buffers: Buffers::default(),
            queue: 4096,
            batch: 32,
            max_message: 65_535,
        }
    }
}

/// What one worker counted, returned when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages received (UDP datagrams and framed TCP messages).
    pub received: u64,
    /// `recvmmsg` calls that returned datagrams.
    pub batches: u64,
    /// Messages handed to another worker.
    pub handed_off: u64,
    /// Messages handed to this worker and answered by it.
    pub taken_over: u64,
    /// Messages answered by [`Element::on_overload`] because the owner's queue was full.
    pub overloaded: u64,
    /// Answers and requests for another worker's TCP connection, and connection-closed and
    /// undeliverable notices, that could not be posted (its queue was full or it had stopped).
    pub lost_posts: u64,
    /// Requests the element wrote on its own initiative ([`Element::poll_transmit`]), delivered
    /// or not.
    pub transmitted: u64,
    /// Requests found undeliverable here: on a connection that was gone, whoever asked, or on
    /// a stream transport without one ([`Element::on_undeliverable`]).
    pub undeliverable: u64,
    pub tcp: TcpStats,
}

/// A message's context, carried with it to the worker that finishes it.
#[derive(Clone, Copy, Debug)]
struct Meta {
    now_ms: u64,
    source: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    connection: Option<u64>,
    /// Index of the UDP socket it arrived on (the same local address on every worker).
    socket: usize,
}

impl Meta {
    fn of(d: &Datagram<'_>, socket: usize) -> Meta {
        Meta {
            now_ms: d.now_ms,
            source: d.source,
            local: d.local,
            transport: d.transport,
            connection: d.connection,
            socket,
        }
    }

    fn datagram<'a>(&self, bytes: &'a [u8]) -> Datagram<'a> {
        Datagram {
            now_ms: self.now_ms,
            source: self.source,
            local: self.local,
            transport: self.transport,
            connection: self.connection,
            bytes,
        }
    }
}

/// What workers post to each other.
enum Msg<T, C> {
    /// A message to finish, with the work done so far.
    Job {
        meta: Meta,
        bytes: Vec<u8>,
        ticket: T,
    },
    /// An answer to write on a connection this worker holds.
    Reply {
        connection: u64,
        bytes: Vec<u8>,
    },
    /// A request worker `from`'s element sends to a binding learnt over a connection this worker
    /// holds (`to.connection`).
    Send {
        to: Destination,
        bytes: Vec<u8>,
        from: usize,
    },
    /// A request this worker's element sent found its connection gone.
    Undeliverable(Destination),
    /// A connection held by another worker closed.
    Closed(u64),
    Control(Arc<C>),
}

/// A worker's queue and the means to wake it.
struct Mailbox<T, C> {
    tx: Sender<Msg<T, C>>,
    waker: Waker,
    /// Set while the worker is about to sleep or sleeping in poll; a poster that clears it
    /// wakes the worker. Busy workers are never woken, so a loaded hand-off costs no syscall.
    sleeping: AtomicBool,
}

impl<T, C> Mailbox<T, C> {
    /// Queues `msg` and wakes the worker if it sleeps; a full queue gives the message back.
    #[allow(clippy::result_large_err)] // giving the message back is the point; it is moved once
    fn post(&self, msg: Msg<T, C>) -> Result<(), Msg<T, C>> {
        self.tx.try_send(msg).map_err(|e| match e {
            TrySendError::Full(m) | TrySendError::Disconnected(m) => m,
        })?;
        // Pairs with the fence in the worker between setting `sleeping` and looking at its
        // queue: either it sees this message, or this sees it sleeping.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
        Ok(())
    }
}

/// What the workers share: their mailboxes and the buffer pool.
struct Shared<T, C> {
    mailboxes: Vec<Mailbox<T, C>>,
    pool_tx: Sender<Vec<u8>>,
    pool_rx: Receiver<Vec<u8>>,
}

impl<T, C> Shared<T, C> {
    /// A buffer holding a copy of `bytes`, from the pool when it has one.
    fn copy(&self, bytes: &[u8]) -> Vec<u8> {
        let mut v = self.pool_rx.try_recv().unwrap_or_default();
        v.clear();
        v.extend_from_slice(bytes);
        v
    }

    fn recycle(&self, v: Vec<u8>) {
        // A full pool lets the buffer go.
        let _ = self.pool_tx.try_send(v);
    }
}

/// The running workers.
pub struct Server<E: Element> {
    shared: Arc<Shared<E::Ticket, E::Control>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<io::Result<(E, Stats)>>>,
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    warnings: Vec<String>,
}

impl<E: Element> Server<E> {
    /// Opens every socket and starts one worker per element (`settings.workers` is ignored in
    /// favour of `elements.len()`, which must not be zero).
    pub fn start(settings: &Settings, elements: Vec<E>) -> io::Result<Server<E>> {
        let workers = elements.len();
        if workers == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no workers"));
        }
        let reuse = workers > 1;
        let mut warnings = Vec::new();
        // Sockets, worker by worker; port 0 is resolved by the first worker's socket.
        let mut udp_addrs = settings.udp.clone();
        let mut tcp_addrs = settings.tcp.clone();
        let mut udp: Vec<Vec<UdpSocket>> = Vec::with_capacity(workers);
        let mut tcp: Vec<Vec<TcpListener>> = Vec::with_capacity(workers);
        if reuse {
            // SO_REUSEPORT would let this server share a port another process (a second sipreg
            // by mistake) already holds, splitting its traffic silently. A plain bind first
            // fails with EADDRINUSE if anyone holds it.
            for addr in settings.udp.iter().filter(|a| a.port() != 0) {
                drop(
                    bind_udp_with(*addr, false, Buffers::default())
                        .map_err(|e| with_addr(e, "udp", *addr))?,
                );
            }
            for addr in settings.tcp.iter().filter(|a| a.port() != 0) {
                drop(bind_tcp_with(*addr, false).map_err(|e| with_addr(e, "tcp", *addr))?);
            }
        }
        for w in 0..workers {
            let mut mine = Vec::with_capacity(udp_addrs.len());
            for addr in &mut udp_addrs {
                let (s, capped) = bind_udp_with(*addr, reuse, settings.buffers)
                    .map_err(|e| with_addr(e, "udp", *addr))?;
                if w == 0 {
                    *addr = s.local_addr()?;
                    warnings.extend(capped.iter().map(describe));
                }
                mine.push(s);
            }
            udp.push(mine);
            let mut mine = Vec::with_capacity(tcp_addrs.len());
            for addr in &mut tcp_addrs {
                let l = bind_tcp_with(*addr, reuse).map_err(|e| with_addr(e, "tcp", *addr))?;
                if w == 0 {
                    *addr = l.local_addr()?;
                }
                mine.push(l);
            }
            tcp.push(mine);
        }
        let cores = if settings.pin {
            let ids = core_affinity::get_core_ids().unwrap_or_default();
            if ids.is_empty() {
                warnings.push("cannot list the cores: workers are not pinned".into());
            }
            ids
        } else {
            Vec::new()
        };
        let mut polls = Vec::with_capacity(workers);
        let mut mailboxes = Vec::with_capacity(workers);
        let mut inboxes = Vec::with_capacity(workers);
        for _ in 0..workers {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), WAKER)?;
            let (tx, rx) = bounded(settings.queue.max(1));
            mailboxes.push(Mailbox {
                tx,
                waker,
                sleeping: AtomicBool::new(false),
            });
            inboxes.push(rx);
            polls.push(poll);
        }
        let (pool_tx, pool_rx) =
            bounded(workers * settings.queue.max(1) + workers * settings.batch);
        let shared = Arc::new(Shared {
            mailboxes,
            pool_tx,
            pool_rx,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(workers);
        let parts = elements
            .into_iter()
            .zip(polls)
            .zip(inboxes)
            .zip(udp.into_iter().zip(tcp));
        for (index, (((element, poll), inbox), (udp, tcp))) in parts.enumerate() {
            let mut locals = Vec::with_capacity(udp.len());
            for s in &udp {
                locals.push(s.local_addr()?);
            }
            let locals = (locals, tcp_addrs.clone());
            let worker = Worker::new(index, element, poll, udp, locals, tcp, inbox, settings)?;
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            let core = cores.get(index % cores.len().max(1)).copied();
            let thread = std::thread::Builder::new()
                .name(format!("sipreg-worker-{index}"))
                .spawn(move || {
                    if let Some(core) = core {
                        // Best effort: an unpinned worker still works, only less predictably.
                        core_affinity::set_for_current(core);
                    }
                    worker.run(&shared, &stop)
                })?;
            threads.push(thread);
        }
        Ok(Server {
            shared,
            stop,
            threads,
            udp: udp_addrs,
            tcp: tcp_addrs,
            warnings,
        })
    }

    /// The UDP addresses served, ports resolved.
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp
    }

    /// The TCP addresses served, ports resolved.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp
    }

    /// What the operator should know about the set-up (buffers capped, cores not pinned).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Gives `control` to every worker's [`Element::on_control`]. A worker whose queue is full
    /// gets it once the queue has room: this waits (on the caller's thread, never a worker's).
    pub fn control(&self, control: E::Control) {
        let control = Arc::new(control);
        for m in &self.shared.mailboxes {
            let mut msg = Msg::Control(Arc::clone(&control));
            while let Err(back) = m.post(msg) {
                msg = back;
                if self.threads.iter().all(|t| t.is_finished()) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Whether a worker has ended (with an error: they only end when told to stop).
    pub fn any_finished(&self) -> bool {
        self.threads.iter().any(|t| t.is_finished())
    }

    /// Stops every worker (each closes its connections, serves what is queued for it, calls
    /// [`Element::on_stop`]) and returns the elements with their counts, in worker order.
    pub fn stop(self) -> io::Result<Vec<(E, Stats)>> {
        self.stop.store(true, Ordering::SeqCst);
        for m in &self.shared.mailboxes {
            let _ = m.waker.wake();
        }
        let mut done = Vec::with_capacity(self.threads.len());
        let mut first_error = None;
        for t in self.threads {
            match t.join() {
                Ok(Ok(r)) => done.push(r),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(io::Error::other("a worker panicked"));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }
}

fn with_addr(e: io::Error, proto: &str, addr: SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("{proto}:{addr}: {e}"))
}

fn describe(c: &Capped) -> String {
    format!(
        "udp:{}: the kernel granted a {} buffer of {} octets, below the {} asked \
         (raise net.core.{}mem_max)",
        c.addr,
        c.what,
        c.got,
        c.asked,
        if c.what == "receive" { "r" } else { "w" }
    )
}

/// One worker: its poll, sockets, connections, element and inbox.
struct Worker<E: Element> {
    index: usize,
    element: E,
    poll: Poll,
    udp: Vec<UdpSocket>,
    locals: Vec<SocketAddr>,
    /// The TCP listeners' addresses, for [`Element::on_start`].
    tcp_locals: Vec<SocketAddr>,
    /// Whether the element may have more to transmit than the last turn sent.
    transmitting: bool,
    /// Sockets not yet read until they would block.
    ready: Vec<bool>,
    first_connection: usize,
    tcp: Tcp,
    inbox: Receiver<Msg<E::Ticket, E::Control>>,
    batch: Batch,
    /// TCP reads.
    buf: Vec<u8>,
    /// Answers written outside a batch (TCP, hand-offs).
    out: Vec<u8>,
    stats: Stats,
}

/// A worker's [`Front`]: its index, element and stats, borrowed apart from the fields (sockets,
/// connections, buffers) the caller uses beside it, which a method taking `&mut self` could
/// not leave free.
macro_rules! front {
    ($worker:expr, $shared:expr) => {
        Front {
            index: $worker.index,
            element: &mut $worker.element,
            shared: $shared,
            stats: &mut $worker.stats,
        }
    };
}

/// The part of a worker that answers messages: its element and the way to other workers.
struct Front<'a, E: Element> {
    index: usize,
    element: &'a mut E,
    shared: &'a Shared<E::Ticket, E::Control>,
    stats: &'a mut Stats,
}

impl<E: Element> Front<'_, E> {
    /// The element's answer to a message received here, the hand-off done if it asks for one.
    fn handle(&mut self, d: Datagram<'_>, socket: usize, out: &mut [u8]) -> Option<usize> {
        self.stats.received += 1;
        match self.element.on_message(d, out) {
            Outcome::Reply(n) => Some(n),
            Outcome::Silent => None,
            Outcome::HandOff { worker, ticket } => {
                let Some(mailbox) = self
                    .shared
                    .mailboxes
                    .get(worker)
                    .filter(|_| worker != self.index)
                else {
                    // Its own, or no such worker: finish it here.
                    return self.element.on_handoff(d, ticket, out);
                };
                let bytes = self.shared.copy(d.bytes);
                let job = Msg::Job {
                    meta: Meta::of(&d, socket),
                    bytes,
                    ticket,
                };
                match mailbox.post(job) {
                    Ok(()) => {
                        self.stats.handed_off += 1;
                        None
                    }
                    Err(back) => {
                        if let Msg::Job { bytes, .. } = back {
                            self.shared.recycle(bytes);
                        }
                        self.stats.overloaded += 1;
                        self.element.on_overload(d, out)
                    }
                }
            }
        }
    }
}

impl<E: Element> Sink for Front<'_, E> {
    fn message(&mut self, message: Datagram<'_>, out: &mut [u8]) -> Option<usize> {
        self.handle(message, 0, out)
    }

    fn stream_error(
        &mut self,
        message: Datagram<'_>,
        error: sip::Error,
        out: &mut [u8],
    ) -> Option<usize> {
        self.element.on_stream_error(message, error, out)
    }

    fn closed(&mut self, connection: u64) {
        self.element.on_closed(connection);
        for (i, m) in self.shared.mailboxes.iter().enumerate() {
            if i != self.index && m.post(Msg::Closed(connection)).is_err() {
                self.stats.lost_posts += 1;
            }
        }
    }
}

impl<E: Element> Worker<E> {
    #[allow(clippy::too_many_arguments)] // the parts Server::start prepared, moved in once
    fn new(
        index: usize,
        element: E,
        poll: Poll,
        mut udp: Vec<UdpSocket>,
        (locals, tcp_locals): (Vec<SocketAddr>, Vec<SocketAddr>),
        tcp: Vec<TcpListener>,
        inbox: Receiver<Msg<E::Ticket, E::Control>>,
        settings: &Settings,
    ) -> io::Result<Worker<E>> {
        for (i, s) in udp.iter_mut().enumerate() {
            poll.registry().register(s, Token(i), Interest::READABLE)?;
        }
        let first_listener = udp.len();
        let first_connection = first_listener + tcp.len();
        let tcp = Tcp::new(
            tcp,
            settings.tcp_limits,
            poll.registry(),
            first_listener,
            tcp::id_base(index),
        )?;
        let slot = settings.max_message.saturating_add(1).max(2048);
        Ok(Worker {
            index,
            element,
            poll,
            ready: vec![false; udp.len()],
            udp,
            locals,
            tcp_locals,
            transmitting: false,
            first_connection,
            tcp,
            inbox,
            batch: Batch::new(settings.batch, slot),
            buf: vec![0; 65_536],
            out: vec![0; slot.max(settings.tcp_limits.max_message)],
            stats: Stats::default(),
        })
    }

    fn run(
        mut self,
        shared: &Shared<E::Ticket, E::Control>,
        stop: &AtomicBool,
    ) -> io::Result<(E, Stats)> {
        let mut events = Events::with_capacity(256);
        let first_listener = self.udp.len();
        let me = shared
            .mailboxes
            .get(self.index)
            .ok_or_else(|| io::Error::other("worker without a mailbox"))?;
        self.element.on_start(&self.locals, &self.tcp_locals);
        while !stop.load(Ordering::Relaxed) {
            me.sleeping.store(true, Ordering::Relaxed);
            // Pairs with the fence in `Mailbox::post`.
            fence(Ordering::SeqCst);
            let busy = self.transmitting || self.ready.iter().any(|&r| r) || !self.inbox.is_empty();
            let timeout = if busy { Duration::ZERO } else { TICK };
            let polled = self.poll.poll(&mut events, Some(timeout));
            me.sleeping.store(false, Ordering::Relaxed);
            match polled {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                let Token(t) = event.token();
                if t == WAKER.0 {
                    // The inbox is served below.
                } else if t < first_listener {
                    if let Some(r) = self.ready.get_mut(t) {
                        *r = true;
                    }
                } else if t < self.first_connection {
                    self.tcp.accept(t - first_listener, self.poll.registry());
                } else {
                    // Errors and hang-ups are found by the read that follows.
                    let readable =
                        event.is_readable() || event.is_read_closed() || event.is_error();
                    let mut front = front!(self, shared);
                    let id = tcp::id_base(self.index) | t as u64;
                    self.tcp.ready(
                        id,
                        readable,
                        self.poll.registry(),
                        &mut front,
                        &mut self.buf,
                        &mut self.out,
                    );
                }
            }
            for _ in 0..ROUNDS {
                let mut any = false;
                for s in 0..self.udp.len() {
                    if self.ready.get(s).copied().unwrap_or(false) {
                        any = true;
                        self.udp_batch(s, shared);
                    }
                }
                let served = self.serve_inbox(shared, self.batch.len() * 2);
                if !any && served == 0 {
                    break;
                }
            }
            let now = now_ms();
            self.element.on_tick(now);
            let mut front = front!(self, shared);
            self.tcp.sweep(now, self.poll.registry(), &mut front);
            self.transmitting = self.transmit(shared, now);
        }
        // Stopping: connections close (every worker is told), what was handed here is answered.
        let mut front = front!(self, shared);
        self.tcp.close_all(self.poll.registry(), &mut front);
        self.serve_inbox(shared, usize::MAX);
        self.element.on_stop(now_ms());
        self.stats.tcp = self.tcp.stats();
        Ok((self.element, self.stats))
    }

    /// One `recvmmsg` on socket `s`, every datagram answered, one `sendmmsg`.
    fn udp_batch(&mut self, s: usize, shared: &Shared<E::Ticket, E::Control>) {
        let (Some(socket), Some(&local)) = (self.udp.get(s), self.locals.get(s)) else {
            return;
        };
        let n = match self.batch.recv(socket) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Some(r) = self.ready.get_mut(s) {
                    *r = false;
                }
                return;
            }
            // EINTR, or an ICMP error from an earlier send surfacing here: it concerns no one;
            // the socket stays ready and is read again.
            Err(_) => return,
        };
        self.stats.batches += 1;
        let now = now_ms();
        let mut front = front!(self, shared);
        for i in 0..n {
            let Some((bytes, source, slot)) = self.batch.message_and_slot(i) else {
                continue;
            };
            let d = Datagram {
                now_ms: now,
                source,
                local,
                transport: Transport::Udp,
                connection: None,
                bytes,
            };
            if let Some(len) = front.handle(d, s, slot) {
                self.batch.queue(len, source);
            }
        }
        if self.batch.queued() > 0 {
            self.batch.send(socket);
        }
    }

    /// Sends what the element writes on its own initiative, up to [`TRANSMITS`] requests;
    /// returns whether it may have more.
    fn transmit(&mut self, shared: &Shared<E::Ticket, E::Control>, now: u64) -> bool {
        // The UDP socket whose datagrams wait in the batch's slots.
        let mut batched: Option<usize> = None;
        for _ in 0..TRANSMITS {
            let Some(Transmit { len, to }) = self.element.poll_transmit(now, &mut self.out) else {
                flush_batch(&mut self.batch, &self.udp, batched);
                return false;
            };
            self.stats.transmitted += 1;
            let bytes = self.out.get(..len).unwrap_or_default();
            let delivered = match (to.connection, to.transport) {
                (Some(id), _) if tcp::worker_of(id) == self.index => {
                    let mut front = front!(self, shared);
                    self.tcp.send(id, bytes, self.poll.registry(), &mut front)
                }
                (Some(id), _) => match shared.mailboxes.get(tcp::worker_of(id)) {
                    // No such worker: an id this server never gave out.
                    None => false,
                    Some(holder) => {
                        let msg = Msg::Send {
                            to,
                            bytes: shared.copy(bytes),
                            from: self.index,
                        };
                        // The holder reports a gone connection; a full queue loses the request
                        // as the network would.
                        if let Err(Msg::Send { bytes, .. }) = holder.post(msg) {
                            shared.recycle(bytes);
                            self.stats.lost_posts += 1;
                        }
                        true
                    }
                },
                (None, Transport::Udp) => match udp_socket_for(&self.locals, &to) {
                    Some(s) => {
                        if batched.is_some_and(|b| b != s) || self.batch.reply_slot().is_none() {
                            flush_batch(&mut self.batch, &self.udp, batched);
                        }
                        batched = Some(s);
                        match self.batch.reply_slot() {
                            Some(slot) if slot.len() >= bytes.len() => {
                                if let Some(dst) = slot.get_mut(..bytes.len()) {
                                    dst.copy_from_slice(bytes);
                                }
                                self.batch.queue(bytes.len(), to.remote);
                            }
                            // Longer than a slot (the TCP limit may exceed the UDP one).
                            _ => {
                                if let Some(socket) = self.udp.get(s) {
                                    let _ = socket.send_to(bytes, to.remote);
                                }
                            }
                        }
                        true
                    }
                    None => false,
                },
                // No connection to a device is ever opened from here (see `Destination`).
                (None, _) => false,
            };
            if !delivered {
                self.stats.undeliverable += 1;
                self.element.on_undeliverable(to);
            }
        }
        flush_batch(&mut self.batch, &self.udp, batched);
        true
    }

    /// Serves up to `limit` messages from the inbox; returns how many.
    fn serve_inbox(&mut self, shared: &Shared<E::Ticket, E::Control>, limit: usize) -> usize {
        // The usual case, and cheaper to ask than a `try_recv` that finds nothing.
        if self.inbox.is_empty() {
            return 0;
        }
        let mut served = 0;
        while served < limit {
            let Ok(msg) = self.inbox.try_recv() else {
                break;
            };
            served += 1;
            match msg {
                Msg::Job {
                    meta,
                    bytes,
                    ticket,
                } => {
                    self.stats.taken_over += 1;
                    let answer =
                        self.element
                            .on_handoff(meta.datagram(&bytes), ticket, &mut self.out);
                    shared.recycle(bytes);
                    let Some(n) = answer else {
                        continue;
                    };
                    let reply = self.out.get(..n).unwrap_or_default();
                    match meta.connection {
                        None => {
                            if let Some(socket) = self.udp.get(meta.socket) {
                                // A full buffer drops it as the network would; the client
                                // retransmits (RFC 3261 17.1.2).
                                let _ = socket.send_to(reply, meta.source);
                            }
                        }
                        Some(id) if tcp::worker_of(id) == self.index => {
                            let mut front = front!(self, shared);
                            self.tcp.send(id, reply, self.poll.registry(), &mut front);
                        }
                        Some(id) => {
                            let msg = Msg::Reply {
                                connection: id,
                                bytes: shared.copy(reply),
                            };
                            if let Some(m) = shared.mailboxes.get(tcp::worker_of(id))
                                && let Err(back) = m.post(msg)
                            {
                                if let Msg::Reply { bytes, .. } = back {
                                    shared.recycle(bytes);
                                }
                                self.stats.lost_posts += 1;
                            }
                        }
                    }
                }
                Msg::Reply { connection, bytes } => {
                    let mut front = front!(self, shared);
                    self.tcp
                        .send(connection, &bytes, self.poll.registry(), &mut front);
                    shared.recycle(bytes);
                }
                Msg::Send { to, bytes, from } => {
                    let mut front = front!(self, shared);
                    let id = to.connection.unwrap_or(u64::MAX);
                    let sent = self.tcp.send(id, &bytes, self.poll.registry(), &mut front);
                    shared.recycle(bytes);
                    if !sent {
                        self.stats.undeliverable += 1;
                        let posted = match shared.mailboxes.get(from) {
                            Some(m) => m.post(Msg::Undeliverable(to)).is_ok(),
                            None => false,
                        };
                        if !posted {
                            self.stats.lost_posts += 1;
                        }
                    }
                }
                Msg::Undeliverable(to) => self.element.on_undeliverable(to),
                Msg::Closed(id) => self.element.on_closed(id),
                Msg::Control(c) => self.element.on_control(&c),
            }
        }
        served
    }
}

/// The UDP socket, among those bound to `locals`, that a request to `to` leaves from: the one
/// bound to `to.local` if any; else the first of the destination's address family. `None` when
/// no socket can reach it.
pub fn udp_socket_for(locals: &[SocketAddr], to: &Destination) -> Option<usize> {
    to.local
        .and_then(|local| locals.iter().position(|&l| l == local))
        .or_else(|| {
            locals
                .iter()
                .position(|l| l.is_ipv4() == to.remote.is_ipv4())
        })
}

/// Sends the datagrams queued in `batch` on UDP socket `socket` of `udp`.
fn flush_batch(batch: &mut Batch, udp: &[UdpSocket], socket: Option<usize>) {
    if let Some(socket) = socket.and_then(|s| udp.get(s))
        && batch.queued() > 0
    {
        batch.send(socket);
    }
}
