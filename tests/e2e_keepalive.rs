//! End to end: the real `sipreg` binary on loopback, two workers, NAT keep-alive pings every
//! second with a three-second timeout (`[nat]` in a configuration file), and plain sockets for
//! devices.
//!
//! - A TCP device registers two AORs over one connection, chosen so that the two workers own
//!   one each: whichever worker accepted the connection, the other one's pings cross to it
//!   through its queue. The device keeps the connection open, receives OPTIONS for both on it
//!   within the interval, answers 200, and both bindings outlive the timeout (the answers,
//!   received by the connection's worker, are credited by each binding's owner).
//! - A UDP device that answers keeps its binding; one that never answers is pinged from the
//!   server's address and loses its binding after the timeout, which a REGISTER without
//!   Contact (a query, RFC 3261 10.2.3) shows.
//!
//! An I/O test of its own: it binds sockets, reads the clock to bound every wait, starts the
//! server (killed by PID on drop) and writes files.
#![allow(clippy::disallowed_methods)] // An I/O test: sockets, the clock, a process, files.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use sipreg::location::{Aor, shard_of};
use sipreg::sip::Uri;

#[path = "support/ports.rs"]
mod ports;
#[path = "support/process.rs"]
mod process;
#[path = "support/tempdir.rs"]
mod tempdir;
use ports::free_port;
use process::Process;
use tempdir::TempDir;

const DOMAIN: &str = "example.com";
const INTERVAL: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(3);
/// How long the server may take to start.
const STARTUP: Duration = Duration::from_secs(10);
/// Slack for the poll loop's tick (100 ms) and a loaded machine.
const SLACK: Duration = Duration::from_millis(700);

/// The running server, killed by PID when dropped.
struct Server {
    process: Process,
    addr: SocketAddr,
}

impl Server {
    fn start(dir: &TempDir) -> Server {
        let ip = IpAddr::from(Ipv4Addr::LOCALHOST);
        let addr = SocketAddr::new(ip, free_port(ip, 0));
        let config = dir.path("sipreg.toml");
        let text = format!(
            "[server]\nlisten = [\"udp:{addr}\", \"tcp:{addr}\"]\nworkers = 2\npin_workers = false\n\n\
             [[domain]]\nname = \"{DOMAIN}\"\n\n[auth]\nrequired = false\n\n\
             [persist]\ndir = \"{}\"\n\n\
             [nat]\nkeepalive = \"nat\"\nkeepalive_interval = {}\nkeepalive_timeout = {}\n",
            dir.path("data").display(),
            INTERVAL.as_secs(),
            TIMEOUT.as_secs(),
        );
        std::fs::write(&config, text).expect("write the configuration");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipreg"));
        cmd.arg("serve").arg("--config").arg(&config);
        let mut process = Process::spawn(cmd, dir.path("server.log"));
        process.wait_for_log("keep-alive: OPTIONS every 1 s", STARTUP);
        Server { process, addr }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    fn assert_alive(&mut self) {
        self.process.assert_alive();
    }
}

/// A REGISTER for `user` from `via` over `transport`, binding `contact`, or a query without
/// Contact when `contact` is `None`.
fn register(
    user: &str,
    contact: Option<&str>,
    transport: &str,
    via: SocketAddr,
    cseq: u32,
) -> Vec<u8> {
    let binding = match contact {
        Some(c) => format!("Contact: <{c}>\r\nExpires: 300\r\n"),
        None => String::new(),
    };
    format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/{transport} {via};branch=z9hG4bK-{user}-{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag={user}\r\nTo: <sip:{user}@{DOMAIN}>\r\n\
         Call-ID: {user}-{transport}\r\nCSeq: {cseq} REGISTER\r\n{binding}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The answer a device gives a request: `code`, with the request's Via, From, To (tagged),
/// Call-ID and CSeq.
fn answer(request: &str, code: u16) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {code} OK\r\n");
    for line in request.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        for name in ["Via:", "From:", "Call-ID:", "CSeq:"] {
            if line.starts_with(name) {
                out += line;
                out += "\r\n";
            }
        }
        if line.starts_with("To:") {
            out += &format!("{line};tag=device\r\n");
        }
    }
    out += "Content-Length: 0\r\n\r\n";
    out.into_bytes()
}

/// The Request-URI of a request, or `None` for a response.
fn request_uri(message: &str) -> Option<&str> {
    let line = message.split("\r\n").next()?;
    let mut parts = line.split(' ');
    let method = parts.next()?;
    (method != "SIP/2.0").then(|| parts.next())?
}

/// The status code of a response.
fn status(message: &str) -> Option<u16> {
    message.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

/// The canonical AOR's shard among two workers, as the server computes it.
fn shard(user: &str) -> usize {
    let uri = format!("sip:{user}@{DOMAIN}");
    let parsed = Uri::parse(uri.as_bytes()).expect("a URI");
    let aor = Aor::from_uri(parsed.sip().expect("a SIP URI"));
    shard_of(aor.as_bytes(), 2)
}

/// A TCP connection read message by message (Content-Length framing).
struct Stream {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Stream {
    /// The next whole message, or `None` if none arrives by `deadline` (reading at least
    /// once, for up to the socket's read timeout).
    fn next(&mut self, deadline: Instant) -> Option<String> {
        loop {
            if let Some(m) = self.take() {
                return Some(m);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the server closed the connection"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("read: {e}"),
            }
            if Instant::now() >= deadline {
                return self.take();
            }
        }
    }

    fn take(&mut self) -> Option<String> {
        let start = self.buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
        let text = String::from_utf8_lossy(&self.buf[start..]).into_owned();
        let head = text.find("\r\n\r\n")? + 4;
        let length: usize = text[..head]
            .split("\r\n")
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                let name = name.trim().to_ascii_lowercase();
                (name == "content-length" || name == "l").then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        let end = head + length;
        let message = text.get(..end)?.to_string();
        self.buf.drain(..start + end);
        Some(message)
    }
}

/// The bindings the server lists for `user`, by a REGISTER without Contact.
fn query(server: SocketAddr, user: &str, n: u32) -> String {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the query socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    socket
        .send_to(&register(user, None, "UDP", local, 100 + n), server)
        .unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buf).expect("an answer to the query");
    let text = String::from_utf8_lossy(&buf[..len]).into_owned();
    assert_eq!(status(&text), Some(200), "{text}");
    text
}

#[test]
fn devices_behind_nat_are_pinged_through_their_flow_and_silent_ones_removed() {
    let dir = TempDir::new("keepalive");
    let mut server = Server::start(&dir);
    let addr = server.addr;

    // Two AORs, one per worker, registered over one connection.
    let mut users = Vec::new();
    for want in 0..2 {
        let user = (0..)
            .map(|i| format!("tcp{i}"))
            .find(|u| shard(u) == want)
            .unwrap();
        users.push(user);
    }
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let tcp_local = stream.local_addr().unwrap();
    let mut tcp = Stream {
        stream,
        buf: Vec::new(),
    };
    // Contacts that do not name the source address: behind NAT, as far as the server can tell.
    let contact = |user: &str, host: &str| format!("sip:{user}@{host}:5060");
    let registered = Instant::now();
    for (i, user) in users.iter().enumerate() {
        let c = contact(user, &format!("10.0.0.{}", i + 1)) + ";transport=tcp";
        let request = register(user, Some(&c), "TCP", tcp_local, 1);
        tcp.stream.write_all(&request).unwrap();
    }
    for _ in &users {
        let reply = tcp
            .next(Instant::now() + Duration::from_secs(5))
            .expect("a 200");
        assert_eq!(status(&reply), Some(200), "{reply}");
    }

    // A UDP device that answers, and one that never reads.
    let answering = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    answering
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    for (socket, user, host) in [
        (&answering, "carol", "10.0.0.3"),
        (&silent, "dave", "10.0.0.4"),
    ] {
        let local = socket.local_addr().unwrap();
        socket
            .send_to(
                &register(user, Some(&contact(user, host)), "UDP", local, 1),
                addr,
            )
            .unwrap();
    }
    let mut buf = [0u8; 4096];
    let (n, _) = answering.recv_from(&mut buf).expect("carol's 200");
    assert_eq!(status(&String::from_utf8_lossy(&buf[..n])), Some(200));

    // Answer every ping for longer than the timeout; dave says nothing.
    let mut pinged: Vec<(String, Duration)> = Vec::new();
    let mut dave_listed_early = None;
    // A silent binding goes at the first visit a full timeout after its first unanswered ping,
    // which came within an interval of registering: by TIMEOUT + 2 x INTERVAL at the latest.
    let end = Instant::now() + TIMEOUT + 2 * INTERVAL + SLACK;
    while Instant::now() < end {
        while let Some(m) = tcp.next(Instant::now()) {
            let uri = request_uri(&m)
                .unwrap_or_else(|| panic!("a request: {m}"))
                .to_string();
            assert!(m.starts_with("OPTIONS "), "{m}");
            assert!(m.contains("\r\nVia: SIP/2.0/TCP "), "{m}");
            pinged.push((uri, registered.elapsed()));
            tcp.stream.write_all(&answer(&m, 200)).unwrap();
        }
        if let Ok((n, from)) = answering.recv_from(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            assert_eq!(from, addr, "from the served address");
            assert!(m.starts_with("OPTIONS sip:carol@10.0.0.3:5060 "), "{m}");
            assert!(m.contains(";rport"), "{m}");
            pinged.push(("carol".into(), registered.elapsed()));
            answering.send_to(&answer(&m, 200), from).unwrap();
        }
        // Before the timeout, dave is still there.
        if dave_listed_early.is_none() && registered.elapsed() > INTERVAL + SLACK {
            dave_listed_early = Some(query(addr, "dave", 1).contains(&contact("dave", "10.0.0.4")));
        }
        server.assert_alive();
    }
    assert_eq!(
        dave_listed_early,
        Some(true),
        "dave's binding before the timeout"
    );

    // Every TCP binding got its first ping on the connection within the interval, and more.
    for (i, user) in users.iter().enumerate() {
        let uri = contact(user, &format!("10.0.0.{}", i + 1)) + ";transport=tcp";
        let times: Vec<Duration> = pinged.iter().filter(|p| p.0 == uri).map(|p| p.1).collect();
        assert!(
            times.len() >= 3,
            "{user} pinged {times:?}\n{}",
            server.log()
        );
        assert!(
            times[0] <= INTERVAL + SLACK,
            "{user} first pinged at {:?}",
            times[0]
        );
    }
    assert!(
        pinged.iter().filter(|p| p.0 == "carol").count() >= 3,
        "{pinged:?}"
    );

    // Those that answered are still bound; dave, pinged and silent, is gone.
    for (i, user) in users.iter().enumerate() {
        let listed = query(addr, user, 2);
        assert!(
            listed.contains(&contact(user, &format!("10.0.0.{}", i + 1))),
            "{listed}"
        );
    }
    assert!(query(addr, "carol", 2).contains(&contact("carol", "10.0.0.3")));
    let dave = query(addr, "dave", 2);
    assert!(!dave.contains("Contact:"), "{dave}");
    silent
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut pings = 0;
    while let Ok((n, from)) = silent.recv_from(&mut buf) {
        assert_eq!(from, addr);
        let m = String::from_utf8_lossy(&buf[..n]);
        // The answer to dave's REGISTER waits there too.
        if status(&m).is_none() {
            assert!(m.starts_with("OPTIONS sip:dave@10.0.0.4:5060 "), "{m}");
            pings += 1;
        }
    }
    assert!((2..=4).contains(&pings), "dave pinged {pings} times");
    // The connection is still open and served.
    let query_on_tcp = register(&users[0], None, "TCP", tcp_local, 9);
    tcp.stream.write_all(&query_on_tcp).unwrap();
    let reply = loop {
        let m = tcp
            .next(Instant::now() + Duration::from_secs(5))
            .expect("an answer");
        if request_uri(&m).is_none() {
            break m;
        }
        tcp.stream.write_all(&answer(&m, 200)).unwrap();
    };
    assert_eq!(status(&reply), Some(200), "{reply}");
    server.assert_alive();
}
