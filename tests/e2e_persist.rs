//! Bindings survive a crash (issue 6): the real binary under load is killed with SIGKILL and
//! restarted with another number of workers; every binding acknowledged with 200 more than one
//! durability window before the kill is back with its contact and remaining expiry, and no
//! binding removed before then comes back. A clean stop loses nothing at all.
//!
//! The phones are this test's own UDP clients (digest computed with sipreg's auth code, answers
//! read with its parser), so it knows exactly what was acknowledged and when.
#![allow(clippy::disallowed_methods)] // An I/O test: sockets, the clock, threads, files.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sipreg::auth::{Algorithm, Ha1, compute_response, file};
use sipreg::sip::{self, Contacts, Credentials, Header, HeaderName, Limits, Message};

#[path = "support/process.rs"]
mod process;
#[path = "support/tempdir.rs"]
mod tempdir;
use process::Process;
use tempdir::TempDir;

const DOMAIN: &str = "example.com";
const WINDOW_MS: u64 = 500;
const STARTUP: Duration = Duration::from_secs(20);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A running server, killed by PID on drop.
struct Server {
    process: Process,
}

impl Server {
    fn start(dir: &TempDir, port: u16, workers: usize, run: &str) -> Server {
        let listen = format!("udp:127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipreg"));
        cmd.args(["serve", "--listen", &listen, "--domain", DOMAIN])
            .arg("--users")
            .arg(dir.path("users"))
            .args(["--auth-algorithms", "MD5"])
            .args(["--workers", &workers.to_string()])
            .arg("--data-dir")
            .arg(dir.path("data"))
            .arg("--config")
            .arg(dir.path("sipreg.toml"));
        let mut process = Process::spawn(cmd, dir.path(&format!("server-{run}.log")));
        process.wait_for_log(&format!("listening on {listen}"), STARTUP);
        Server { process }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    fn kill9(&mut self) {
        self.process.kill();
    }

    fn terminate(&mut self) {
        let pid = self.process.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.process.exited().is_none() {
            assert!(Instant::now() < deadline, "no clean stop:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn user(i: usize) -> String {
    format!("u{i:05}")
}

fn password(i: usize) -> String {
    format!("p{i:05}")
}

/// One phone's signalling with the server, from one socket.
struct Ua {
    socket: UdpSocket,
    server: SocketAddr,
    cseq: u32,
}

/// What a REGISTER earned: the status and the text of the final answer.
struct Answer {
    code: u16,
    text: String,
}

impl Ua {
    fn new(server: SocketAddr) -> Ua {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        Ua {
            socket,
            server,
            cseq: 0,
        }
    }

    fn exchange(&self, msg: &[u8]) -> Option<Answer> {
        // Two tries: the registrar answers a retransmission again.
        for _ in 0..2 {
            self.socket.send_to(msg, self.server).ok()?;
            let mut buf = [0u8; 8192];
            if let Ok((n, _)) = self.socket.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let mut storage = [Header::EMPTY; 64];
                let Ok(Message::Response(r)) =
                    sip::parse_datagram(text.as_bytes(), &mut storage, &Limits::default())
                else {
                    return None;
                };
                return Some(Answer { code: r.code, text });
            }
        }
        None
    }

    fn request(&mut self, i: usize, contact: Option<(&str, u32)>, auth: &str) -> Vec<u8> {
        self.cseq += 1;
        let u = user(i);
        let contact = contact
            .map(|(c, e)| format!("Contact: <{c}>;expires={e}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bK-{u}-{};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{u}@{DOMAIN}>;tag=t{u}\r\nTo: <sip:{u}@{DOMAIN}>\r\n\
             Call-ID: {u}-{}@test\r\nCSeq: {} REGISTER\r\n{contact}{auth}Content-Length: 0\r\n\r\n",
            self.socket.local_addr().unwrap().port(),
            self.cseq,
            self.socket.local_addr().unwrap().port(),
            self.cseq
        )
        .into_bytes()
    }

    /// REGISTER through the challenge; `contact` None is a query.
    fn register(&mut self, i: usize, contact: Option<(&str, u32)>) -> Option<Answer> {
        let first = self.request(i, contact, "");
        let a = self.exchange(&first)?;
        if a.code != 401 {
            return Some(a);
        }
        let start = a.text.find("nonce=\"")? + 7;
        let nonce = &a.text[start..start + a.text[start..].find('"')?];
        let (u, p) = (user(i), password(i));
        let template = format!(
            "Digest username=\"{u}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", \
             uri=\"sip:{DOMAIN}\", algorithm=MD5, cnonce=\"c{}\", qop=auth, nc=00000001",
            self.cseq
        );
        let Some(Credentials::Digest(d)) = Credentials::parse(template.as_bytes()) else {
            panic!("client credentials parse")
        };
        let ha1 = Ha1::from_password(
            Algorithm::Md5,
            u.as_bytes(),
            DOMAIN.as_bytes(),
            p.as_bytes(),
        );
        let response = compute_response(&ha1, b"REGISTER", &d, b"")?;
        let auth = format!("Authorization: {template}, response=\"{response}\"\r\n");
        let second = self.request(i, contact, &auth);
        self.exchange(&second)
    }

    /// The contacts of user `i` with their remaining seconds, by an authenticated query.
    fn query(&mut self, i: usize) -> Vec<(String, u32)> {
        let a = self.register(i, None).expect("the query is answered");
        assert_eq!(a.code, 200, "{}", a.text);
        let mut storage = [Header::EMPTY; 64];
        let Ok(Message::Response(r)) =
            sip::parse_datagram(a.text.as_bytes(), &mut storage, &Limits::default())
        else {
            panic!("{}", a.text)
        };
        if r.headers.get(HeaderName::Contact).is_none() {
            return Vec::new();
        }
        match r.headers.contacts().unwrap() {
            Contacts::List(list) => list
                .map(|c| {
                    let c = c.unwrap();
                    (
                        String::from_utf8_lossy(c.addr.uri.raw()).into_owned(),
                        c.expires.unwrap(),
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn contact(i: usize) -> String {
    format!("sip:{}@192.0.2.{}:{}", user(i), 1 + i % 200, 5060 + i)
}

/// Granted expiry of user `i`: different per user, so a restored expiry is checked for real.
fn expires(i: usize) -> u32 {
    1800 + (i as u32 % 50) * 30
}

/// Registered users (0..REGISTERED), of which 0..REMOVED then de-register; CHURN more keep
/// registering until the kill.
const REGISTERED: usize = 400;
const REMOVED: usize = 100;
const CHURN: usize = 50;

fn setup(dir: &TempDir) {
    let entries: Vec<file::Entry> = (0..REGISTERED + CHURN)
        .flat_map(|i| file::entries_for(&user(i), DOMAIN, password(i).as_bytes()))
        .collect();
    std::fs::write(dir.path("users"), file::format(&entries)).unwrap();
    // Keep-alive off: these user agents register contacts that are not their address (so the
    // default would ping them) and take any datagram for the answer they wait for.
    std::fs::write(
        dir.path("sipreg.toml"),
        format!("[persist]\nwindow_ms = {WINDOW_MS}\n\n[nat]\nkeepalive = \"off\"\n"),
    )
    .unwrap();
}

/// Registers 0..REGISTERED and removes 0..REMOVED; returns when each was acknowledged (ms).
fn populate(server: SocketAddr) -> Vec<u64> {
    let mut ua = Ua::new(server);
    let mut acked = vec![0; REGISTERED];
    for (i, at) in acked.iter_mut().enumerate() {
        let a = ua
            .register(i, Some((&contact(i), expires(i))))
            .expect("answered");
        assert_eq!(a.code, 200, "{}", a.text);
        *at = now_ms();
    }
    for i in 0..REMOVED {
        let a = ua.register(i, Some((&contact(i), 0))).expect("answered");
        assert_eq!(a.code, 200, "{}", a.text);
    }
    acked
}

/// Checks what the restarted server holds against what was acknowledged.
fn verify(server: SocketAddr, acked: &[u64]) {
    let mut ua = Ua::new(server);
    let now = now_ms();
    for i in 0..REMOVED {
        assert_eq!(ua.query(i), [], "{} was removed and came back", user(i));
    }
    for (i, &at) in acked.iter().enumerate().skip(REMOVED) {
        let got = ua.query(i);
        assert_eq!(got.len(), 1, "{}: {got:?}", user(i));
        assert_eq!(got[0].0, contact(i));
        // Remaining expiry: granted minus the time since the 200 (one second of rounding each
        // way).
        let left = u64::from(expires(i)) - (now - at) / 1000;
        let got_left = u64::from(got[0].1);
        assert!(
            got_left + 2 >= left && got_left <= left + 1,
            "{}: {got_left} s left, expected about {left}",
            user(i)
        );
    }
}

#[test]
fn bindings_survive_sigkill_under_load_and_a_new_worker_count() {
    let dir = TempDir::new("crash");
    setup(&dir);
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = Server::start(&dir, port, 2, "first");
    let acked = populate(addr);
    // Load until the kill: CHURN phones keep registering and refreshing.
    let stop = Arc::new(AtomicBool::new(false));
    let churned = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, churned) = (Arc::clone(&stop), Arc::clone(&churned));
        std::thread::spawn(move || {
            let mut ua = Ua::new(addr);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let i = REGISTERED + n % CHURN;
                if ua
                    .register(i, Some((&contact(i), 3600)))
                    .is_some_and(|a| a.code == 200)
                {
                    churned.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
        })
    };
    // Everything above was acknowledged; wait out the window (twice, for margin), then crash.
    std::thread::sleep(Duration::from_millis(2 * WINDOW_MS + 200));
    assert!(churned.load(Ordering::Relaxed) > 0, "{}", server.log());
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    // Another worker count: the shards are re-split on load.
    let mut server = Server::start(&dir, port, 3, "second");
    let log = server.log();
    let restored: usize = log
        .lines()
        .find(|l| l.contains(" bindings restored"))
        .and_then(|l| {
            l.split(" bindings restored")
                .next()?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no restore line:\n{log}"));
    // The 300 acknowledged and kept, plus the churning phones that made it to disk.
    assert!(
        (REGISTERED - REMOVED..=REGISTERED - REMOVED + CHURN).contains(&restored),
        "{restored} restored:\n{log}"
    );
    verify(addr, &acked);
    // A clean stop loses nothing, even what changed a moment before it.
    let mut ua = Ua::new(addr);
    let last = REMOVED; // re-registered now, just before the stop
    let a = ua
        .register(last, Some((&contact(last), expires(last))))
        .unwrap();
    assert_eq!(a.code, 200, "{}", a.text);
    let gone = REMOVED + 1; // removed now
    let a = ua.register(gone, Some((&contact(gone), 0))).unwrap();
    assert_eq!(a.code, 200, "{}", a.text);
    server.terminate();
    let server = Server::start(&dir, port, 1, "third");
    let mut ua = Ua::new(addr);
    assert_eq!(ua.query(last).len(), 1, "{}", server.log());
    assert_eq!(ua.query(gone), [], "{}", server.log());
    assert_eq!(ua.query(REMOVED + 2).len(), 1);
}

/// Persistence in a directory another server holds is refused, not shared.
#[test]
fn a_second_server_on_the_same_data_directory_is_refused() {
    let dir = TempDir::new("lock");
    setup(&dir);
    let _first = Server::start(&dir, free_port(), 1, "first");
    let out = Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .args([
            "serve",
            "--listen",
            &format!("udp:127.0.0.1:{}", free_port()),
        ])
        .args(["--domain", DOMAIN, "--data-dir"])
        .arg(dir.path("data"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another sipreg uses this data directory"),
        "{err}"
    );
}
