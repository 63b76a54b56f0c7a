//! End-to-end tests: the real `sipreg` binary on loopback UDP, driven by SIPp 3.6 (Debian
//! package `sip-tester`; `tools/test` installs it). Each test starts its own server on a free
//! port with its own temporary directory and credentials file, runs SIPp bounded in calls and
//! time, and asserts SIPp's exit status (0: every call succeeded), the response codes and
//! contents the scenarios check with `<ereg check_it>`, and where it matters SIPp's statistics,
//! message trace or logged headers.
//!
//! The scenarios live in `tests/sipp/`; the injection files (users and passwords) are written
//! here, next to the credentials file they must match. SIPp answers only the first challenge
//! of a 401 and only with MD5, so the server runs with `--auth-algorithms MD5,SHA-256`.
//!
//! Registration over TCP (SIPp `-t t1`: one connection) runs through the same challenge.
//!
//! What this file does not test: TCP keep-alives and limits (`src/io` tests them on loopback
//! sockets), SHA-256 and SHA-512-256 credentials
//! (SIPp cannot answer them; `tests/registrar_scenarios.rs` covers them), and expiry over time.
//!
//! This file is an I/O shell of its own: it binds sockets to find free ports, reads the clock
//! to bound run times and starts processes, so the few functions that do opt out of the
//! workspace's `disallowed-methods` lints, each with an `#[allow]`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sipreg::auth::file;

#[path = "support/ports.rs"]
mod ports;
#[path = "support/process.rs"]
mod process;
#[path = "support/tempdir.rs"]
mod tempdir;
use ports::bindable;
use process::Process;
use tempdir::TempDir;

const DOMAIN: &str = "example.com";
const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// How long the server may take to log `listening on`.
const STARTUP: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Ports handed out in this process, so that two tests running in parallel never get the same
/// one between its probe and its real bind.
static PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// The transport a server listens on and SIPp sends over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Udp,
    /// SIPp `-t t1`: one TCP connection for every call.
    Tcp,
}

impl Proto {
    /// The prefix of `--listen` and of the server's `listening on` line.
    fn name(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
    }
}

/// A free UDP port on `ip` that this process has not handed out before, with `extra` more
/// free ports after it at even offsets (SIPp binds its media ports at `-mp` and `-mp + 2`).
fn free_port(ip: IpAddr, extra: u16) -> u16 {
    let mut guard = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let used = guard.get_or_insert_with(HashSet::new);
    for _ in 0..1000 {
        let Some(port) = bindable(ip, 0) else {
            continue;
        };
        let group: Vec<u16> = (0..=extra).map_while(|i| port.checked_add(2 * i)).collect();
        if group.len() == usize::from(extra) + 1
            && group.iter().all(|p| !used.contains(p))
            && group.iter().skip(1).all(|&p| bindable(ip, p).is_some())
        {
            used.extend(group);
            return port;
        }
    }
    panic!("no free UDP port on {ip}");
}

/// A running `sipreg serve`, killed by PID when dropped (also when the test panics).
struct Server {
    process: Process,
    addr: SocketAddr,
}

impl Server {
    /// Starts the registrar on a free UDP port of `ip` with the credentials in `users` and
    /// waits until it logs that it listens.
    fn start(dir: &TempDir, ip: IpAddr, users: &Path) -> Server {
        Server::start_on(dir, Proto::Udp, ip, users)
    }

    /// Starts the registrar on a free port of `ip` over `proto`.
    fn start_on(dir: &TempDir, proto: Proto, ip: IpAddr, users: &Path) -> Server {
        let addr = SocketAddr::new(ip, free_port(ip, 0));
        let listen = format!("{}:{addr}", proto.name());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipreg"));
        cmd.args(["serve", "--listen", &listen, "--domain", DOMAIN])
            .arg("--users")
            .arg(users)
            .args(["--auth-algorithms", "MD5,SHA-256"])
            .arg("--data-dir")
            .arg(dir.path("data"));
        let mut process = Process::spawn(cmd, dir.path("server.log"));
        process.wait_for_log(&format!("listening on {listen}"), STARTUP);
        Server { process, addr }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// Asserts the server is still running (it must never crash on what SIPp sends).
    fn assert_alive(&mut self) {
        self.process.assert_alive();
    }
}

/// Writes a credentials file with `sipreg::auth::file` (HA1 for every algorithm).
fn write_users(path: &Path, users: &[(String, String)]) {
    let entries: Vec<file::Entry> = users
        .iter()
        .flat_map(|(user, password)| file::entries_for(user, DOMAIN, password.as_bytes()))
        .collect();
    std::fs::write(path, file::format(&entries)).expect("write the users file");
}

/// Writes a SIPp injection file: `user;[authentication username=user password=pw]`.
fn write_injection(path: &Path, rows: &[(String, String)]) {
    let mut csv = String::from("SEQUENTIAL\n");
    for (user, password) in rows {
        let _ = writeln!(
            csv,
            "{user};[authentication username={user} password={password}]"
        );
    }
    std::fs::write(path, csv).expect("write the injection file");
}

fn pair(user: &str, password: &str) -> (String, String) {
    (user.to_string(), password.to_string())
}

/// Where SIPp's scenario files are.
fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// Fails (never skips) when SIPp is not installed.
fn require_sipp() {
    match Command::new("sipp").arg("-v").output() {
        Ok(_) => {}
        Err(e) => panic!(
            "cannot run `sipp` ({e}): these end-to-end tests need SIPp 3.6; install the Debian \
             package sip-tester (`apt-get install -y sip-tester`; tools/test does it)"
        ),
    }
}

/// One SIPp run against a server.
struct Sipp<'a> {
    dir: &'a TempDir,
    name: String,
    scenario: &'static str,
    injection: PathBuf,
    ip: IpAddr,
    calls: u32,
    /// Calls per second and its period (`-r`, `-rp`); None: SIPp's default of 10 per second.
    rate: Option<(u32, u32)>,
    /// Upper bound of the whole run, enforced both by SIPp (`-timeout`) and by `timeout`.
    limit: Duration,
    /// Whether SIPp writes every message to `NAME.messages.log` (off for load runs).
    trace_messages: bool,
    proto: Proto,
    extra: Vec<String>,
}

/// What a SIPp run left behind.
struct SippRun {
    output: Output,
    name: String,
    dir: PathBuf,
    port: u16,
}

impl<'a> Sipp<'a> {
    fn new(dir: &'a TempDir, name: &str, scenario: &'static str, ip: IpAddr) -> Sipp<'a> {
        Sipp {
            dir,
            name: name.to_string(),
            scenario,
            injection: dir.path(&format!("{name}.csv")),
            ip,
            calls: 1,
            rate: None,
            limit: Duration::from_secs(10),
            trace_messages: true,
            proto: Proto::Udp,
            extra: Vec::new(),
        }
    }

    /// Writes the injection file, one call per row.
    fn users(mut self, rows: &[(String, String)]) -> Self {
        write_injection(&self.injection, rows);
        self.calls = u32::try_from(rows.len()).expect("fewer than 2^32 rows");
        self
    }

    fn run(self, server: &Server) -> SippRun {
        require_sipp();
        let port = free_port(self.ip, 0);
        // SIPp also binds media sockets (-mp and -mp + 2 on -i) and a remote-control socket
        // (-cp, on every address: SIPp 3.6 has no option to bind it elsewhere or not at all).
        let media = free_port(self.ip, 1);
        let control = free_port(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let file = |suffix: &str| self.dir.path(&format!("{}.{suffix}", self.name));
        let secs = self.limit.as_secs().max(1);
        let mut cmd = Command::new("timeout");
        cmd.args(["--kill-after=5", &format!("{}s", secs + 5), "sipp"])
            .arg(server.addr.to_string())
            .arg("-sf")
            .arg(scenario(self.scenario))
            .arg("-inf")
            .arg(&self.injection)
            .args(["-m", &self.calls.to_string()])
            .args(["-timeout", &format!("{secs}s")])
            .args(["-i", &self.ip.to_string()])
            .args(["-p", &port.to_string()])
            .args(["-mp", &media.to_string()])
            .args(["-cp", &control.to_string()])
            .args(["-nostdin", "-trace_err", "-error_file"])
            .arg(file("errors.log"))
            .args(["-trace_logs", "-log_file"])
            .arg(file("logs.log"))
            .args(["-trace_stat", "-stf"])
            .arg(file("stat.csv"))
            .args(match self.proto {
                Proto::Udp => &[][..],
                Proto::Tcp => &["-t", "t1"][..],
            })
            .args(&self.extra)
            .current_dir(&self.dir.0)
            .stdin(Stdio::null());
        if self.trace_messages {
            cmd.args(["-trace_msg", "-message_file"])
                .arg(file("messages.log"));
        }
        if let Some((rate, period)) = self.rate {
            cmd.args(["-r", &rate.to_string(), "-rp", &period.to_string()]);
        }
        let output = cmd.output().expect("run sipp under timeout");
        SippRun {
            output,
            name: self.name,
            dir: self.dir.0.clone(),
            port,
        }
    }
}

impl SippRun {
    fn read(&self, suffix: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.{suffix}", self.name)))
            .unwrap_or_default()
    }

    /// The end of SIPp's screen output and its error log, for failure messages.
    fn report(&self) -> String {
        let stdout = String::from_utf8_lossy(&self.output.stdout);
        let tail: Vec<&str> = stdout.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "status {}\n--- sipp screen (end) ---\n{}\n--- sipp stderr ---\n{}\n--- errors.log ---\n{}",
            self.output.status,
            tail.join("\n"),
            String::from_utf8_lossy(&self.output.stderr),
            self.read("errors.log"),
        )
    }

    /// SIPp exits with 0 only when every call succeeded.
    fn assert_success(&self) -> &Self {
        assert_eq!(
            self.output.status.code(),
            Some(0),
            "sipp {} failed\n{}",
            self.name,
            self.report()
        );
        self
    }

    /// A cumulative counter from the last line of the `-trace_stat` file, e.g.
    /// `SuccessfulCall(C)`.
    fn stat(&self, column: &str) -> u64 {
        let csv = self.read("stat.csv");
        let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines.next().unwrap_or_default().split(';').collect();
        let last: Vec<&str> = lines.next_back().unwrap_or_default().split(';').collect();
        let i = header
            .iter()
            .position(|h| *h == column)
            .unwrap_or_else(|| panic!("no column {column} in the statistics:\n{csv}"));
        last.get(i)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no value for {column} in the statistics:\n{csv}"))
    }

    /// The lines of the `-trace_logs` file (what the scenario's `<log>` actions wrote).
    fn logged(&self) -> String {
        self.read("logs.log")
    }

    /// The messages of the `-trace_msg` file, in order, retransmissions included.
    fn messages(&self) -> Vec<Traced> {
        let text = self.read("messages.log");
        let mut out = Vec::new();
        for block in text.split("\n-----------------------------------------------") {
            let mut lines = block
                .lines()
                .skip_while(|l| !(l.starts_with("UDP message") || l.starts_with("TCP message")));
            let Some(direction) = lines.next() else {
                continue;
            };
            let lines: Vec<String> = lines
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            out.push(Traced {
                sent: direction.contains("sent"),
                lines,
            });
        }
        out
    }
}

/// One message of SIPp's message trace.
struct Traced {
    sent: bool,
    lines: Vec<String>,
}

impl Traced {
    fn start_line(&self) -> &str {
        self.lines.first().map_or("", String::as_str)
    }

    /// The status code of a response (0 for a request).
    fn code(&self) -> u16 {
        self.start_line()
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    fn headers(&self, name: &str) -> Vec<&str> {
        let prefix = format!("{name}:");
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(str::trim)
            .collect()
    }

    fn cseq(&self) -> u32 {
        self.header("CSeq")
            .and_then(|c| c.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// (Call-ID, CSeq): a retransmission has the same as its original.
    fn transaction(&self) -> (String, u32) {
        (
            self.header("Call-ID").unwrap_or("").to_string(),
            self.cseq(),
        )
    }
}

/// The distinct transactions (Call-ID, CSeq) of the received responses with status `code`,
/// so that a response answered again for a retransmission counts once.
fn answered(trace: &[Traced], code: u16) -> Vec<(String, u32)> {
    let mut seen: Vec<(String, u32)> = trace
        .iter()
        .filter(|m| !m.sent && m.code() == code)
        .map(Traced::transaction)
        .collect();
    seen.sort();
    seen.dedup();
    seen
}

/// The value of `name=` in a Digest header line, without quotes.
fn digest_param<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split([',', ' '])
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// One test's world: a temporary directory, a users file and a running server.
struct World {
    dir: TempDir,
    server: Server,
}

impl World {
    fn new(name: &str, ip: IpAddr, users: &[(String, String)]) -> World {
        require_sipp();
        let dir = TempDir::new(name);
        let path = dir.path("users");
        write_users(&path, users);
        let server = Server::start(&dir, ip, &path);
        World { dir, server }
    }

    fn sipp(&self, name: &str, scenario: &'static str) -> Sipp<'_> {
        Sipp::new(&self.dir, name, scenario, self.server.addr.ip())
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// 401 with an MD5 challenge first, then 200 whose Contact carries `expires=3600` (or a few
/// seconds less when a lost 200 is answered again for the retransmitted REGISTER: the time left).
/// The credentials are written by `sipreg user add`, as an operator would.
#[test]
fn registers_through_the_digest_challenge() {
    require_sipp();
    let dir = TempDir::new("register");
    let users = dir.path("users");
    let status = Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .args(["user", "add", "alice", "--realm", DOMAIN, "--users"])
        .arg(&users)
        .args(["--password", "wonderland"])
        .stdin(Stdio::null())
        .output()
        .expect("run sipreg user add");
    assert!(status.status.success(), "sipreg user add: {status:?}");
    let mut server = Server::start(&dir, V4, &users);
    let run = Sipp::new(&dir, "register", "register.xml", V4)
        .users(&[pair("alice", "wonderland")])
        .run(&server);
    run.assert_success();
    assert_eq!(run.stat("SuccessfulCall(C)"), 1);
    assert_eq!(run.stat("FailedCall(C)"), 0);
    // The Contact SIPp registered, with this SIPp's own port.
    let contact = format!("<sip:alice@127.0.0.1:{}>;expires=", run.port);
    assert!(run.logged().contains(&contact), "{}", run.logged());
    server.assert_alive();
}

/// After the first 200, two more REGISTERs in the same call carry credentials computed from the
/// same challenge; each is answered 200 (no new 401) and grants its new expiry.
///
/// SIPp 3.6.1 reuses the last challenge for every `[authentication]` of a call and takes nc from
/// a process-wide counter raised on each use (`mync++` in its auth.cpp). With one call per SIPp
/// run the nonce-count is therefore 1, 2, 3 on one nonce; the trace proves it.
#[test]
fn refreshes_with_preemptive_credentials() {
    let world = World::new("refresh", V4, &[pair("bob", "builder")]);
    let run = world
        .sipp("refresh", "refresh.xml")
        .users(&[pair("bob", "builder")])
        .run(&world.server);
    run.assert_success();
    let trace = run.messages();
    let challenged: Vec<u32> = answered(&trace, 401).iter().map(|t| t.1).collect();
    assert_eq!(challenged, [1], "only the first REGISTER is challenged");
    let accepted: Vec<u32> = answered(&trace, 200).iter().map(|t| t.1).collect();
    assert_eq!(
        accepted,
        [2, 3, 4],
        "each REGISTER with credentials gets 200"
    );
    // The credentials of each REGISTER (a retransmission repeats them exactly).
    let mut credentials: Vec<(u32, String, String)> = trace
        .iter()
        .filter(|m| m.sent)
        .filter_map(|m| {
            let auth = m.header("Authorization")?;
            let nonce = digest_param(auth, "nonce")?.to_string();
            let nc = digest_param(auth, "nc")?.to_string();
            Some((m.cseq(), nonce, nc))
        })
        .collect();
    credentials.dedup();
    let counts: Vec<(u32, &str)> = credentials
        .iter()
        .map(|(cseq, _, nc)| (*cseq, nc.as_str()))
        .collect();
    assert_eq!(
        counts,
        [(2, "00000001"), (3, "00000002"), (4, "00000003")],
        "a rising nonce-count: {credentials:#?}"
    );
    assert!(
        credentials.iter().all(|c| c.1 == credentials[0].1),
        "one nonce: {credentials:#?}"
    );
}

/// `Expires: 0` for one of two contacts: 200 listing the other only.
#[test]
fn deregisters_one_contact() {
    let world = World::new("deregister", V4, &[pair("carol", "c4r0l")]);
    world
        .sipp("deregister", "deregister.xml")
        .users(&[pair("carol", "c4r0l")])
        .run(&world.server)
        .assert_success();
}

/// `Contact: *` without `Expires: 0` is a 400; with it, every binding goes (200 without
/// Contact), and a query confirms it.
#[test]
fn wildcard_removes_every_binding() {
    let world = World::new("wildcard", V4, &[pair("dave", "d4ve")]);
    world
        .sipp("wildcard", "wildcard.xml")
        .users(&[pair("dave", "d4ve")])
        .run(&world.server)
        .assert_success();
}

/// `expires=30` gets 423 Interval Too Brief with `Min-Expires: 60`, and nothing is bound.
#[test]
fn too_brief_interval_is_refused_with_min_expires() {
    let world = World::new("too-brief", V4, &[pair("erin", "3rin")]);
    world
        .sipp("too-brief", "too_brief.xml")
        .users(&[pair("erin", "3rin")])
        .run(&world.server)
        .assert_success();
}

/// A wrong password and an unknown user both get a second 401 (fresh challenge, not stale).
#[test]
fn wrong_password_and_unknown_user_are_challenged_again() {
    let world = World::new("rejected", V4, &[pair("frank", "right")]);
    let run = world
        .sipp("rejected", "rejected.xml")
        .users(&[pair("frank", "wrong"), pair("mallory", "anything")])
        .run(&world.server);
    run.assert_success();
    assert_eq!(run.stat("SuccessfulCall(C)"), 2);
    let trace = run.messages();
    let mut challenged: Vec<u32> = answered(&trace, 401).iter().map(|t| t.1).collect();
    challenged.sort_unstable();
    assert_eq!(
        challenged,
        [1, 1, 2, 2],
        "both REGISTERs of both calls get 401"
    );
    assert!(answered(&trace, 200).is_empty());
}

/// Three devices of one AOR (each its own SIPp: port, Call-ID, Contact) register in turn; the
/// third one's 200 lists all three contacts.
#[test]
fn several_devices_share_one_aor() {
    let world = World::new("devices", V4, &[pair("grace", "h0pper")]);
    let mut ports = Vec::new();
    let mut last = String::new();
    for device in 1..=3 {
        let run = world
            .sipp(&format!("device{device}"), "device.xml")
            .users(&[pair("grace", "h0pper")])
            .run(&world.server);
        run.assert_success();
        ports.push(run.port);
        last = run.logged();
    }
    let mut listed: Vec<(u16, u32)> = last
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Contact: <sip:grace@127.0.0.1:"))
        .filter_map(|rest| {
            let (port, expires) = rest.split_once(">;expires=")?;
            Some((port.parse().ok()?, expires.trim().parse().ok()?))
        })
        .collect();
    listed.sort_unstable();
    ports.sort_unstable();
    let listed_ports: Vec<u16> = listed.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        listed_ports, ports,
        "the last 200 lists the three devices:\n{last}"
    );
    assert!(
        listed.iter().all(|(_, e)| (3590..=3600).contains(e)),
        "each with its expiry: {listed:?}"
    );
}

/// The same registration over TCP: SIPp opens one connection and sends both REGISTERs on it;
/// the 401 and the 200 come back on it (SIPp reads nothing else), and the server's Via answer
/// names the transport SIPp used.
#[test]
fn registers_over_tcp() {
    let dir = TempDir::new("tcp");
    let users = dir.path("users");
    write_users(&users, &[pair("ivan", "1v4n")]);
    let mut server = Server::start_on(&dir, Proto::Tcp, V4, &users);
    let mut sipp = Sipp::new(&dir, "tcp", "register.xml", V4).users(&[pair("ivan", "1v4n")]);
    sipp.proto = Proto::Tcp;
    let run = sipp.run(&server);
    run.assert_success();
    assert_eq!(run.stat("SuccessfulCall(C)"), 1);
    let trace = run.messages();
    assert_eq!(answered(&trace, 401).len(), 1, "one challenge");
    assert_eq!(answered(&trace, 200).len(), 1, "one 200");
    let received: Vec<&Traced> = trace.iter().filter(|m| !m.sent).collect();
    assert!(
        received.iter().all(|m| m
            .header("Via")
            .is_some_and(|v| v.starts_with("SIP/2.0/TCP "))),
        "every answer came over TCP with SIPp's TCP Via"
    );
    let contact = format!("<sip:ivan@127.0.0.1:{}>;expires=", run.port);
    assert!(run.logged().contains(&contact), "{}", run.logged());
    server.assert_alive();
}

/// The same registration over IPv6 loopback.
#[test]
fn registers_over_ipv6() {
    let mut world = World::new("ipv6", V6, &[pair("heidi", "h31di")]);
    let run = world
        .sipp("ipv6", "register.xml")
        .users(&[pair("heidi", "h31di")])
        .run(&world.server);
    run.assert_success();
    let contact = format!("<sip:heidi@[::1]:{}>;expires=", run.port);
    assert!(run.logged().contains(&contact), "{}", run.logged());
    world.server.assert_alive();
}

/// 10,000 distinct users register through the challenge with no failure, at 1,000 calls per
/// second (the debug build sustains 2,000 on this 2-core machine with no retransmission when
/// idle; half leaves room for a loaded machine). A datagram dropped by a full socket buffer is
/// retransmitted (T1 = 500 ms, doubling, up to 5 times: 15 s of cover), so only a wrong answer
/// or a server that stops answering fails a call.
#[test]
#[allow(clippy::disallowed_methods)] // Bounding the run time needs the clock.
fn ten_thousand_users_register() {
    const USERS: u32 = 10_000;
    const BOUND: Duration = Duration::from_secs(40);
    let started = Instant::now();
    let users: Vec<(String, String)> = (0..USERS)
        .map(|i| (format!("user{i:05}"), format!("pw{i}x")))
        .collect();
    let mut world = World::new("10k", V4, &users);
    let mut sipp = world.sipp("10k", "register.xml").users(&users);
    sipp.rate = Some((1000, 1000));
    sipp.limit = Duration::from_secs(30);
    sipp.trace_messages = false;
    sipp.extra = ["-max_retrans", "5"].map(String::from).to_vec();
    let run = sipp.run(&world.server);
    run.assert_success();
    assert_eq!(
        run.stat("SuccessfulCall(C)"),
        u64::from(USERS),
        "{}",
        run.report()
    );
    assert_eq!(run.stat("FailedCall(C)"), 0, "{}", run.report());
    world.server.assert_alive();
    let elapsed = started.elapsed();
    assert!(elapsed < BOUND, "10,000 registrations took {elapsed:?}");
    eprintln!(
        "10,000 registrations in {elapsed:?} ({} retransmissions)",
        run.stat("Retransmissions(C)")
    );
}

/// SIGHUP re-reads the credentials file: a user added to it after the start is refused before
/// the signal (the rejected.xml scenario expects the second 401) and registers after it, with no
/// restart. Bindings made before the reload stay: the device scenario's 200 lists the earlier
/// device's contact with the new one.
#[test]
#[allow(clippy::disallowed_methods)] // Bounding the wait needs the clock.
fn sighup_reloads_the_credentials_and_keeps_the_bindings() {
    let mut world = World::new("reload", V4, &[pair("grace", "h0pper")]);
    world
        .sipp("before", "register.xml")
        .users(&[pair("grace", "h0pper")])
        .run(&world.server)
        .assert_success();
    world
        .sipp("refused", "rejected.xml")
        .users(&[pair("heidi", "n3w")])
        .run(&world.server)
        .assert_success();
    write_users(
        &world.dir.path("users"),
        &[pair("grace", "h0pper"), pair("heidi", "n3w")],
    );
    let pid = world.server.process.child.id().to_string();
    let status = Command::new("kill").args(["-HUP", &pid]).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -HUP {pid}");
    let deadline = Instant::now() + STARTUP;
    while !world
        .server
        .log()
        .contains("reloaded: 6 credential entries")
    {
        assert!(
            Instant::now() < deadline,
            "no reload:\n{}",
            world.server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = world
        .sipp("after", "register.xml")
        .users(&[pair("heidi", "n3w")])
        .run(&world.server);
    run.assert_success();
    assert_eq!(run.stat("SuccessfulCall(C)"), 1);
    // Grace's binding survived the reload: a second device of hers sees both contacts.
    let run = world
        .sipp("grace2", "device.xml")
        .users(&[pair("grace", "h0pper")])
        .run(&world.server);
    run.assert_success();
    let mut ports: Vec<&str> = Vec::new();
    let logged = run.logged();
    for l in logged.lines() {
        if let Some((port, _)) = l
            .trim()
            .strip_prefix("Contact: <sip:grace@127.0.0.1:")
            .and_then(|rest| rest.split_once('>'))
            && !ports.contains(&port)
        {
            ports.push(port);
        }
    }
    assert_eq!(ports.len(), 2, "both devices listed:\n{logged}");
    world.server.assert_alive();
}
