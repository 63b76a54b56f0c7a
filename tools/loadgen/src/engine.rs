//! The load engine: many simulated user agents per UDP socket, a few sockets per thread.
//!
//! Each thread owns a share of the sockets (source address x port) and of the user agents (user
//! `i` goes to thread `i % threads`, then to one of its sockets). User agent state lives in a
//! `Vec`; an answer finds its user agent through the Call-ID and its transaction through the
//! CSeq, so no map is needed. Idle user agents wait in a FIFO: a new registration takes the one
//! idle longest, so with `--count` above `--users` every user registers once (with a challenge)
//! before anyone refreshes (with pre-emptive credentials: same nonce, nonce-count + 1).
//!
//! Load: open loop (`rate` registrations per second, optionally ramped up linearly) or closed
//! loop (`concurrency` transactions outstanding). Each run is bounded by a count, a duration or
//! both; then the engine waits for what is in flight (at most timer F) and, with `unregister`,
//! removes every binding it made.
//!
//! Timers are RFC 3261 17.1.2.2 (non-INVITE client transaction over UDP): "timer E [fires] to
//! fire in T1 seconds" and then "the client transaction MUST ... reset timer E ... to
//! MIN(2*T1, T2)" doubling up to T2; a provisional answer moves the interval to T2; "If Timer F
//! fires while the client transaction is still in the "Trying" state, the client transaction
//! SHOULD inform the TU about the timeout": a timeout here.
//!
//! Latency is taken on the kernel's side of the sockets, so that the generator's own work does
//! not count against the server: a request's clock starts when `sendmmsg` has taken it (not when
//! it was queued behind the rest of a received batch), and an answer's time is the kernel's
//! arrival stamp (`SO_TIMESTAMPNS`), not when a busy generator got round to reading it. A
//! registration's time runs from its first request to its 200; its *server* time leaves out the
//! generator's turnaround between the 401 and the retried request (digest, queueing).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use sipreg::auth::Algorithm;
use sipreg::sip::{self, CSeq, HeaderName};
use socket2::SockAddr;

use crate::digest::{Challenge, Session};
use crate::message::{self, Purpose, Register};
use crate::net::{Poller, RecvBatch, SendBatch};
use crate::pattern::Pattern;
use crate::summary::{Stats, histogram};

/// How load is offered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// Open loop: registrations started per second, reached after a linear ramp.
    Rate { per_s: f64, ramp: Duration },
    /// Closed loop: transactions outstanding at any time.
    Concurrency(usize),
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub target: SocketAddr,
    pub sources: Vec<IpAddr>,
    pub ports_per_source: usize,
    pub threads: usize,
    pub users: u64,
    pub first_user: u64,
    pub user_pattern: Pattern,
    pub password_pattern: Pattern,
    pub domain: String,
    /// Digest algorithms the simulated phones support.
    pub algorithms: Vec<Algorithm>,
    /// Whether the server challenges (else the first 200 is expected at once).
    pub auth: bool,
    pub load: Load,
    pub duration: Option<Duration>,
    pub count: Option<u64>,
    pub expires: u32,
    pub unregister: bool,
    pub t1: Duration,
    pub t2: Duration,
    pub batch: usize,
    /// Kernel-floor mode: any datagram that comes back for a transaction answers it.
    pub echo: bool,
    /// Draw a progress line on standard error once a second.
    pub progress: bool,
    /// Never sleep: poll the sockets in a loop. Costs a core, but an answer is seen without
    /// waiting for the scheduler to wake the thread (which on a busy machine takes milliseconds).
    pub busy_poll: bool,
}

/// What a run produced.
pub struct Outcome {
    pub stats: Stats,
    /// From the start to the end of the measured phase (the last answer before de-registration).
    pub measured: Duration,
}

/// Runs the load described by `cfg` until its bounds are reached.
pub fn run(cfg: &Config) -> io::Result<Outcome> {
    let threads = cfg.threads.max(1);
    let slots: Vec<IpAddr> = cfg
        .sources
        .iter()
        .flat_map(|&ip| std::iter::repeat_n(ip, cfg.ports_per_source.max(1)))
        .collect();
    if slots.len() < threads {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "fewer sockets (sources x ports-per-source) than threads",
        ));
    }
    if cfg.users < threads as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "fewer users than threads",
        ));
    }
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64 & 0xffff_ffff_ffff);
    let progress = Arc::new(Mutex::new(Progress::default()));
    let start = Instant::now();
    let mut workers = Vec::new();
    for t in 0..threads {
        let mut sockets = Vec::new();
        for (k, ip) in slots.iter().enumerate() {
            if k % threads == t {
                let sock = crate::net::bind_udp(SocketAddr::new(*ip, 0), false)?;
                crate::net::enable_rx_timestamps(&sock)?;
                let local = sock.local_addr()?;
                sockets.push(Sock {
                    sock,
                    local: local.to_string(),
                    out: SendBatch::default(),
                });
            }
        }
        let w = Worker::new(cfg, t, run_id, sockets, start, Arc::clone(&progress))?;
        workers.push(
            std::thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn(move || w.run())?,
        );
    }
    let mut printer = cfg.progress.then(|| Printer::new(start));
    while !workers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(p) = printer.as_mut() {
            p.tick(&progress);
        }
    }
    if printer.is_some() {
        eprintln!();
    }
    let mut stats = Stats::default();
    let mut measured = Duration::ZERO;
    for w in workers {
        let (s, m) = w
            .join()
            .map_err(|_| io::Error::other("a load thread panicked"))??;
        stats.merge(&s);
        measured = measured.max(m);
    }
    Ok(Outcome { stats, measured })
}

struct Sock {
    sock: UdpSocket,
    /// The bound address as text, for Via and Contact.
    local: String,
    out: SendBatch,
}

/// One simulated phone.
struct Ua {
    /// The user index (`i` of the patterns).
    index: u64,
    socket: u32,
    cseq: u32,
    registered: bool,
    session: Option<Session>,
    tx: Option<Tx>,
}

/// The transaction a user agent has in flight.
struct Tx {
    purpose: Purpose,
    /// Nonce-count of the credentials sent (0: no Authorization).
    nc: u32,
    /// When the registration began: its first request went to the kernel.
    began: Instant,
    /// When this request first went to the kernel (`sendmmsg` returned), or, until then, when
    /// it was queued.
    sent: Instant,
    /// Whether `sent` is the time the kernel took the request (retransmissions keep it).
    on_wire: bool,
    /// The load generator's own share of the registration so far: from a challenge's arrival
    /// to the retried request going out (digest, queueing behind other work).
    turnaround: Duration,
    /// When the challenge being answered arrived.
    challenged_at: Option<Instant>,
    interval: Duration,
    /// Timer F.
    deadline: Instant,
    challenges: u8,
    /// The user agent had no binding when the registration began.
    initial: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Main,
    Drain,
    Unregister,
}

/// The shared state the progress line reads.
struct Progress {
    registrations: u64,
    offered: u64,
    failed: u64,
    timeouts: u64,
    interval: Histogram<u64>,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress {
            registrations: 0,
            offered: 0,
            failed: 0,
            timeouts: 0,
            interval: histogram(),
        }
    }
}

struct Worker {
    cfg: Config,
    thread: usize,
    threads: u64,
    run_id: u64,
    target: SockAddr,
    uri: String,
    sockets: Vec<Sock>,
    dirty: Vec<u32>,
    uas: Vec<Ua>,
    idle: VecDeque<u32>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    in_flight: usize,
    /// Registrations offered so far (sent or missed).
    offered: u64,
    count: u64,
    rate: f64,
    concurrency: usize,
    start: Instant,
    phase: Phase,
    measured_end: Option<Instant>,
    unregister_queue: Vec<u32>,
    stats: Stats,
    scratch: Vec<u8>,
    cnonce: Vec<u8>,
    name: String,
    password: String,
    shared: Arc<Mutex<Progress>>,
    local_progress: Progress,
    last_publish: Instant,
}

impl Worker {
    fn new(
        cfg: &Config,
        thread: usize,
        run_id: u64,
        sockets: Vec<Sock>,
        start: Instant,
        shared: Arc<Mutex<Progress>>,
    ) -> io::Result<Worker> {
        let threads = cfg.threads.max(1) as u64;
        let t = thread as u64;
        let share = |n: u64| n / threads + u64::from(t < n % threads);
        let mine = share(cfg.users);
        let uas: Vec<Ua> = (0..mine)
            .map(|l| Ua {
                index: cfg.first_user + l * threads + t,
                socket: (l % sockets.len() as u64) as u32,
                cseq: 0,
                registered: false,
                session: None,
                tx: None,
            })
            .collect();
        let (rate, concurrency) = match cfg.load {
            Load::Rate { per_s, .. } => (per_s / threads as f64, usize::MAX),
            Load::Concurrency(n) => (0.0, (share(n as u64) as usize).max(1)),
        };
        Ok(Worker {
            thread,
            threads,
            run_id,
            target: SockAddr::from(cfg.target),
            uri: format!("sip:{}", cfg.domain),
            dirty: Vec::new(),
            idle: (0..uas.len() as u32).collect(),
            uas,
            sockets,
            timers: BinaryHeap::new(),
            in_flight: 0,
            offered: 0,
            count: cfg.count.map_or(u64::MAX, share),
            rate,
            concurrency,
            start,
            phase: Phase::Main,
            measured_end: None,
            unregister_queue: Vec::new(),
            stats: Stats::default(),
            scratch: Vec::with_capacity(2048),
            cnonce: Vec::with_capacity(32),
            name: String::new(),
            password: String::new(),
            shared,
            local_progress: Progress::default(),
            last_publish: start,
            cfg: cfg.clone(),
        })
    }

    fn run(mut self) -> io::Result<(Stats, Duration)> {
        let mut poller = Poller::new(self.sockets.len().min(1024))?;
        for (i, s) in self.sockets.iter().enumerate() {
            poller.add(&s.sock, i as u64)?;
        }
        let mut batch = RecvBatch::new(self.cfg.batch);
        let mut ready = Vec::new();
        loop {
            let now = Instant::now();
            if !self.advance(now) {
                break;
            }
            self.fire_timers(now);
            self.flush();
            self.publish(now, false);
            let wait = if self.cfg.busy_poll {
                Duration::ZERO
            } else {
                self.next_wake(now)
            };
            ready.clear();
            poller.wait(wait, |token| ready.push(token as usize))?;
            for &i in &ready {
                while let Some(sock) = self.sockets.get(i) {
                    let n = batch.recv(sock.sock.as_raw_fd(), false)?;
                    let (now, wall) = (Instant::now(), SystemTime::now());
                    for d in 0..n {
                        let arrival = arrival_instant(batch.arrival(d), now, wall);
                        self.on_datagram(batch.datagram(d), arrival, now);
                    }
                    if n < self.cfg.batch {
                        break;
                    }
                }
            }
            self.flush();
        }
        self.publish(Instant::now(), true);
        let end = self.measured_end.unwrap_or_else(Instant::now);
        Ok((self.stats, end - self.start))
    }

    /// Starts what is due and moves between phases; false when the run is over.
    fn advance(&mut self, now: Instant) -> bool {
        let elapsed = now - self.start;
        if self.phase == Phase::Main {
            let out_of_time = self.cfg.duration.is_some_and(|d| elapsed >= d);
            if out_of_time || self.offered >= self.count {
                self.phase = Phase::Drain;
            } else {
                match self.cfg.load {
                    Load::Rate { ramp, .. } => {
                        // The first registration goes at once: n are due once n-1 periods passed.
                        let due = (offered_by(self.rate, ramp, elapsed) as u64 + 1).min(self.count);
                        while self.offered < due {
                            self.offered += 1;
                            self.local_progress.offered += 1;
                            match self.idle.pop_front() {
                                Some(ua) => self.begin(ua, Purpose::Register, now),
                                None => self.stats.missed += 1,
                            }
                        }
                    }
                    Load::Concurrency(_) => {
                        while self.in_flight < self.concurrency && self.offered < self.count {
                            let Some(ua) = self.idle.pop_front() else {
                                break;
                            };
                            self.offered += 1;
                            self.local_progress.offered += 1;
                            self.begin(ua, Purpose::Register, now);
                        }
                    }
                }
            }
        }
        if self.phase == Phase::Drain && self.in_flight == 0 {
            self.measured_end = Some(now);
            if !self.cfg.unregister {
                return false;
            }
            self.phase = Phase::Unregister;
            self.unregister_queue = (0..self.uas.len() as u32)
                .filter(|&i| self.uas[i as usize].registered)
                .rev()
                .collect();
        }
        if self.phase == Phase::Unregister {
            let limit = match self.cfg.load {
                Load::Concurrency(_) => self.concurrency,
                Load::Rate { .. } => 64,
            };
            while self.in_flight < limit {
                let Some(ua) = self.unregister_queue.pop() else {
                    break;
                };
                self.begin(ua, Purpose::Unregister, now);
            }
            if self.in_flight == 0 && self.unregister_queue.is_empty() {
                return false;
            }
        }
        true
    }

    /// How long the loop may sleep.
    fn next_wake(&self, now: Instant) -> Duration {
        let mut wake = Duration::from_millis(100);
        if let Some(Reverse((at, _, _))) = self.timers.peek() {
            wake = wake.min(at.saturating_duration_since(now));
        }
        if self.phase == Phase::Main {
            if let Load::Rate { ramp, .. } = self.cfg.load {
                let next = time_of(self.rate, ramp, self.offered);
                wake = wake.min((self.start + next).saturating_duration_since(now));
            }
            if let Some(d) = self.cfg.duration {
                wake = wake.min((self.start + d).saturating_duration_since(now));
            }
        }
        wake
    }

    /// Begins a registration (or de-registration) on an idle user agent.
    fn begin(&mut self, ua: u32, purpose: Purpose, now: Instant) {
        let auth = self.cfg.auth && !self.cfg.echo;
        let Some(u) = self.uas.get_mut(ua as usize) else {
            return;
        };
        let nc = match (&mut u.session, auth) {
            (Some(s), true) => s.next_nc(),
            _ => 0,
        };
        u.cseq += 1;
        u.tx = Some(Tx {
            purpose,
            nc,
            began: now,
            sent: now,
            on_wire: false,
            turnaround: Duration::ZERO,
            challenged_at: None,
            interval: self.cfg.t1,
            deadline: now + self.cfg.t1 * 64,
            challenges: 0,
            initial: !u.registered,
        });
        let cseq = u.cseq;
        self.in_flight += 1;
        self.timers.push(Reverse((now + self.cfg.t1, ua, cseq)));
        self.send(ua);
    }

    /// Writes the current request of `ua` and queues it on its socket.
    fn send(&mut self, ua: u32) {
        let Some(u) = self.uas.get(ua as usize) else {
            return;
        };
        let Some(tx) = &u.tx else { return };
        let Some(sock) = self.sockets.get_mut(u.socket as usize) else {
            return;
        };
        self.name.clear();
        self.cfg.user_pattern.write(u.index, &mut self.name);
        self.scratch.clear();
        Register {
            run: self.run_id,
            ua: u.index,
            cseq: u.cseq,
            user: &self.name,
            domain: &self.cfg.domain,
            local: &sock.local,
            expires: match tx.purpose {
                Purpose::Register => self.cfg.expires,
                Purpose::Unregister => 0,
            },
        }
        .write_head(&mut self.scratch);
        if let (Some(s), true) = (&u.session, tx.nc > 0) {
            message::cnonce(self.run_id, u.index, &mut self.cnonce);
            s.write_authorization(
                &mut self.scratch,
                &self.name,
                &self.uri,
                tx.nc,
                &self.cnonce,
            );
        }
        message::finish(&mut self.scratch);
        if sock.out.is_empty() {
            self.dirty.push(u.socket);
        }
        sock.out.push(&self.scratch, &self.target, ua);
    }

    /// Sends what is queued. A request's clock starts when the kernel has taken it, not when
    /// it was queued: the work done in between (the rest of a received batch) is the load
    /// generator's, not the server's.
    fn flush(&mut self) {
        let uas = &mut self.uas;
        for i in self.dirty.drain(..) {
            if let Some(s) = self.sockets.get_mut(i as usize) {
                let mut now = None;
                let mut stamp = |ua: u32| {
                    let Some(tx) = uas.get_mut(ua as usize).and_then(|u| u.tx.as_mut()) else {
                        return;
                    };
                    if tx.on_wire {
                        return; // a retransmission
                    }
                    let at = *now.get_or_insert_with(Instant::now);
                    tx.on_wire = true;
                    tx.sent = at;
                    match tx.challenged_at.take() {
                        Some(challenged) => {
                            tx.turnaround += at.saturating_duration_since(challenged)
                        }
                        None => tx.began = at,
                    }
                };
                let dropped = s.out.flush(s.sock.as_raw_fd(), self.cfg.batch, &mut stamp);
                self.stats.send_errors += dropped as u64;
            }
        }
    }

    /// Retransmissions (timer E) and timeouts (timer F).
    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((at, ua, cseq))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(u) = self.uas.get_mut(ua as usize) else {
                continue;
            };
            if u.cseq != cseq {
                continue;
            }
            let Some(tx) = &mut u.tx else { continue };
            if now >= tx.deadline {
                self.stats.timeouts += 1;
                self.local_progress.timeouts += 1;
                self.finish(ua);
                continue;
            }
            tx.interval = (tx.interval * 2).min(self.cfg.t2);
            let next = (now + tx.interval).min(tx.deadline);
            self.timers.push(Reverse((next, ua, cseq)));
            self.stats.retransmissions += 1;
            self.send(ua);
        }
    }

    /// Ends the transaction of `ua`; the user agent is idle again.
    fn finish(&mut self, ua: u32) {
        if let Some(tx) = self.uas.get_mut(ua as usize).and_then(|u| u.tx.take()) {
            self.in_flight -= 1;
            if tx.purpose == Purpose::Register {
                self.idle.push_back(ua);
            }
        }
    }

    /// Takes one received datagram: `arrival` is when it reached the socket (latencies end
    /// there), `now` when it is being read (what is sent in answer starts from there).
    fn on_datagram(&mut self, data: &[u8], arrival: Instant, now: Instant) {
        let mut storage = [sip::Header::EMPTY; 48];
        let Ok(msg) = sip::parse_datagram(data, &mut storage, &sip::Limits::default()) else {
            self.stats.stray += 1;
            return;
        };
        let headers = msg.headers();
        let code = match msg {
            sip::Message::Response(r) => r.code,
            // Echo mode: our own request coming back is the answer.
            sip::Message::Request(_) if self.cfg.echo => 200,
            sip::Message::Request(_) => {
                self.stats.stray += 1;
                return;
            }
        };
        let ids = headers
            .get(HeaderName::CallId)
            .and_then(|h| message::parse_call_id(h.value));
        let cseq = headers
            .get(HeaderName::CSeq)
            .and_then(|h| CSeq::parse(h.value))
            .map(|c| c.number);
        let (Some((index, run)), Some(cseq)) = (ids, cseq) else {
            self.stats.stray += 1;
            return;
        };
        let Some(rel) = index.checked_sub(self.cfg.first_user) else {
            self.stats.stray += 1;
            return;
        };
        let ua = rel / self.threads;
        if run != self.run_id
            || rel % self.threads != self.thread as u64
            || ua >= self.uas.len() as u64
        {
            self.stats.stray += 1;
            return;
        }
        let ua = ua as u32;
        let u = &mut self.uas[ua as usize];
        let Some(tx) = &mut u.tx else {
            self.stats.stray += 1;
            return;
        };
        if u.cseq != cseq {
            self.stats.stray += 1;
            return;
        }
        if code < 200 {
            // RFC 3261 17.1.2.2: in the Proceeding state retransmissions go at T2 intervals.
            tx.interval = self.cfg.t2;
            return;
        }
        // De-registrations come after the measured phase: counted apart.
        if tx.purpose == Purpose::Register {
            self.stats.exchanges += 1;
            let _ = self
                .stats
                .exchange_us
                .record(micros(arrival.saturating_duration_since(tx.sent)));
        } else {
            self.stats.unregister_exchanges += 1;
        }
        let challenged = (code == 401 || code == 407) && self.cfg.auth && !self.cfg.echo;
        if code == 200 {
            let total = arrival.saturating_duration_since(tx.began);
            let elapsed = micros(total);
            match tx.purpose {
                Purpose::Register => {
                    self.stats.registrations += 1;
                    if tx.initial {
                        self.stats.initial += 1;
                    } else {
                        self.stats.refreshes += 1;
                    }
                    let _ = self.stats.registration_us.record(elapsed);
                    let _ = self
                        .stats
                        .registration_server_us
                        .record(micros(total.saturating_sub(tx.turnaround)));
                    let _ = self.local_progress.interval.record(elapsed);
                    self.local_progress.registrations += 1;
                    u.registered = true;
                }
                Purpose::Unregister => {
                    self.stats.unregistrations += 1;
                    u.registered = false;
                }
            }
            self.finish(ua);
        } else if challenged && tx.challenges < 2 {
            let name = if code == 401 {
                HeaderName::WwwAuthenticate
            } else {
                HeaderName::ProxyAuthenticate
            };
            let values = headers.all(name).map(|h| h.value);
            let Some(ch) = Challenge::choose(values, &self.cfg.algorithms) else {
                self.fail(ua, code);
                return;
            };
            self.stats.challenges += 1;
            if ch.stale {
                self.stats.stale += 1;
            }
            self.name.clear();
            self.cfg.user_pattern.write(u.index, &mut self.name);
            self.password.clear();
            self.cfg.password_pattern.write(u.index, &mut self.password);
            let session = match u.session.take() {
                Some(mut s) => {
                    s.renew(ch, &self.name, &self.password);
                    s
                }
                None => Session::new(ch, &self.name, &self.password),
            };
            let session = u.session.insert(session);
            tx.nc = session.next_nc();
            tx.challenges += 1;
            tx.sent = now;
            tx.on_wire = false;
            tx.challenged_at = Some(arrival);
            tx.interval = self.cfg.t1;
            tx.deadline = now + self.cfg.t1 * 64;
            // RFC 3261 22.2: the retried request gets a new CSeq (and so a new branch).
            u.cseq += 1;
            let cseq = u.cseq;
            self.timers.push(Reverse((now + self.cfg.t1, ua, cseq)));
            self.send(ua);
        } else {
            self.fail(ua, code);
        }
    }

    fn fail(&mut self, ua: u32, code: u16) {
        *self.stats.failures.entry(code).or_default() += 1;
        self.local_progress.failed += 1;
        self.finish(ua);
    }

    /// Hands counts to the progress line every 200 ms (and at the end).
    fn publish(&mut self, now: Instant, last: bool) {
        if !self.cfg.progress || (!last && now - self.last_publish < Duration::from_millis(200)) {
            return;
        }
        self.last_publish = now;
        if let Ok(mut p) = self.shared.lock() {
            let l = &mut self.local_progress;
            p.registrations += l.registrations;
            p.offered += l.offered;
            p.failed += l.failed;
            p.timeouts += l.timeouts;
            let _ = p.interval.add(&l.interval);
            *l = Progress::default();
        }
    }
}

/// The instant a datagram reached its socket, from the kernel's stamp on the system clock:
/// `wall` and `now` are the same moment on the two clocks. Without a stamp, or with one from
/// the future (the system clock stepped), it is `now`.
fn arrival_instant(stamp: Option<Duration>, now: Instant, wall: SystemTime) -> Instant {
    let age = stamp
        .and_then(|s| wall.duration_since(UNIX_EPOCH).ok()?.checked_sub(s))
        .unwrap_or(Duration::ZERO);
    now.checked_sub(age).unwrap_or(now)
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

/// Registrations due `elapsed` into a run at `rate` per second after a linear ramp from zero.
fn offered_by(rate: f64, ramp: Duration, elapsed: Duration) -> f64 {
    let (t, r) = (elapsed.as_secs_f64(), ramp.as_secs_f64());
    if r > 0.0 && t < r {
        rate * t * t / (2.0 * r)
    } else {
        rate * (t - r / 2.0)
    }
}

/// When the `n`th registration is due (inverse of [`offered_by`]).
fn time_of(rate: f64, ramp: Duration, n: u64) -> Duration {
    if rate <= 0.0 {
        return Duration::from_secs(3600);
    }
    let r = ramp.as_secs_f64();
    let n = n as f64;
    let t = if r > 0.0 && n < rate * r / 2.0 {
        (2.0 * r * n / rate).sqrt()
    } else {
        n / rate + r / 2.0
    };
    Duration::from_secs_f64(t.min(1e6))
}

/// The live progress line.
struct Printer {
    start: Instant,
    last: Instant,
    registrations: u64,
    offered: u64,
    failed: u64,
    timeouts: u64,
}

impl Printer {
    fn new(start: Instant) -> Printer {
        Printer {
            start,
            last: start,
            registrations: 0,
            offered: 0,
            failed: 0,
            timeouts: 0,
        }
    }

    fn tick(&mut self, shared: &Mutex<Progress>) {
        let now = Instant::now();
        let secs = (now - self.last).as_secs_f64();
        if secs < 1.0 {
            return;
        }
        let Ok(mut p) = shared.lock() else { return };
        let offered = (p.offered - self.offered) as f64 / secs;
        let achieved = (p.registrations - self.registrations) as f64 / secs;
        let h = &p.interval;
        let q = |x: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        eprint!(
            "\r{:>6.1}s offered {:>9.0}/s achieved {:>9.0}/s  p50 {:>7}us p99 {:>7}us p99.9 {:>7}us  \
             failed {} timeouts {}   ",
            (now - self.start).as_secs_f64(),
            offered,
            achieved,
            q(0.5),
            q(0.99),
            q(0.999),
            p.failed,
            p.timeouts,
        );
        self.registrations = p.registrations;
        self.offered = p.offered;
        self.failed = p.failed;
        self.timeouts = p.timeouts;
        p.interval.reset();
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_schedule_inverts() {
        let ramp = Duration::from_secs(2);
        for n in [1u64, 10, 500, 1000, 5000] {
            let t = time_of(1000.0, ramp, n);
            let back = offered_by(1000.0, ramp, t);
            assert!((back - n as f64).abs() < 1e-6, "{n}: {back}");
        }
        assert_eq!(
            offered_by(100.0, Duration::ZERO, Duration::from_secs(3)),
            300.0
        );
    }

    #[test]
    fn arrival_comes_from_the_kernel_stamp() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let since = wall.duration_since(UNIX_EPOCH).unwrap();
        let old = since - Duration::from_micros(250);
        assert_eq!(
            arrival_instant(Some(old), now, wall),
            now - Duration::from_micros(250)
        );
        // No stamp, or one ahead of the clock read after it (the system clock stepped back):
        // the datagram arrived when it is read.
        assert_eq!(arrival_instant(None, now, wall), now);
        let ahead = since + Duration::from_millis(3);
        assert_eq!(arrival_instant(Some(ahead), now, wall), now);
    }
}
