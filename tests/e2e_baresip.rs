//! End-to-end test with a real SIP user agent: baresip 1.0 (Debian package `baresip-core`;
//! `tools/test` installs it) registers to the real `sipreg` binary on loopback UDP through the
//! digest challenge, and a query REGISTER sent from this test, with credentials computed here,
//! proves the binding exists: the registrar's 200 lists baresip's contact with an expiry.
//!
//! What baresip 1.0 needs, found by running it:
//! - MD5 alone. Its SIP stack (libre) gives up on the whole 401 ("Register: Function not
//!   implemented") as soon as one WWW-Authenticate header names an algorithm other than MD5,
//!   even when an MD5 challenge is offered next to it, so the server runs with
//!   `--auth-algorithms MD5` (`MD5,SHA-256` is not enough).
//! - A configuration directory of its own (`-f`) with `module_path`, `sip_listen` and
//!   `module_app account.so` (which reads the `accounts` file) and no audio or video module: it
//!   starts without sound hardware. `-n 127.0.0.1` keeps its local address on loopback. Next to
//!   `sip_listen` (UDP and TCP) it listens for SIP over TLS on the port after it, so both must
//!   be free.
//! - Its Contact user is not `alice` but `alice-0x<address>`: baresip 1.0 makes a contact user
//!   unique to each user agent (`<user>-<pointer>`), with no option to change it. The test
//!   matches the `alice-` prefix, the address and baresip's port.
//! - A graceful exit (SIGTERM, `-t`) unregisters. The test asserts while baresip runs, then
//!   kills it by PID; `-t` bounds its life if the test process itself dies.
//!
//! This file is an I/O shell of its own: it binds sockets, reads the clock to bound waits and
//! starts processes, so the few functions that do opt out of the workspace's
//! `disallowed-methods` lints, each with an `#[allow]`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sipreg::auth::{Algorithm, Ha1, compute_response, file};
use sipreg::sip::{self, Contacts, Credentials, Header, HeaderName, Limits, Message};

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
const USER: &str = "alice";
const PASSWORD: &str = "l00king-gl4ss";
const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How long the server may take to log `listening on`.
const STARTUP: Duration = Duration::from_secs(10);
/// How long baresip may take to register once started (it registers at once).
const REGISTERED: Duration = Duration::from_secs(10);
/// baresip quits by itself after this long (`-t`), should the test process die without
/// killing it.
const BARESIP_LIFETIME: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Harness (the temporary directory and the server as in tests/e2e_sipp.rs, trimmed)
// ---------------------------------------------------------------------------------------------

/// Fails (never skips) when baresip is not installed.
fn require_baresip() {
    if let Err(e) = Command::new("baresip")
        .arg("-h")
        .stdin(Stdio::null())
        .output()
    {
        panic!(
            "cannot run `baresip` ({e}): this end-to-end test needs baresip 1.0; install the \
             Debian package baresip-core (`apt-get install -y baresip-core`; tools/test does it)"
        );
    }
}

/// Starts `sipreg serve` on a free UDP port of loopback, offering MD5 only, and waits until it
/// logs that it listens.
fn start_sipreg(dir: &TempDir) -> (Process, SocketAddr) {
    let users = dir.path("users");
    let entries = file::entries_for(USER, DOMAIN, PASSWORD.as_bytes());
    std::fs::write(&users, file::format(&entries)).expect("write the users file");
    let addr = SocketAddr::new(V4, free_port(V4, 0));
    let listen = format!("udp:{addr}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipreg"));
    cmd.args(["serve", "--listen", &listen, "--domain", DOMAIN])
        .arg("--users")
        .arg(&users)
        // baresip 1.0 answers MD5 and refuses a 401 offering anything else (see above).
        .args(["--auth-algorithms", "MD5"])
        .arg("--data-dir")
        .arg(dir.path("data"));
    let mut server = Process::spawn(cmd, dir.path("sipreg.log"));
    server.wait_for_log(&format!("listening on {listen}"), STARTUP);
    (server, addr)
}

/// Starts baresip with its own configuration directory: SIP on `local` only, one account for
/// alice whose outbound proxy is the registrar.
fn start_baresip(dir: &TempDir, local: SocketAddr, registrar: SocketAddr) -> Process {
    let config = dir.path("baresip");
    std::fs::create_dir_all(&config).expect("create baresip's directory");
    std::fs::write(
        config.join("config"),
        format!(
            "module_path /usr/lib/baresip/modules\n\
             sip_listen {local}\n\
             module_app account.so\n"
        ),
    )
    .expect("write baresip's config");
    std::fs::write(
        config.join("accounts"),
        format!(
            "<sip:{USER}@{DOMAIN};transport=udp>;auth_pass={PASSWORD};\
             outbound=\"sip:{registrar};transport=udp\";regint=600\n"
        ),
    )
    .expect("write baresip's accounts");
    let mut cmd = Command::new("baresip");
    cmd.arg("-f")
        .arg(&config)
        .args(["-n", &local.ip().to_string()])
        .args(["-t", &BARESIP_LIFETIME.as_secs().to_string()])
        // A SIP trace in the log, for the failure report.
        .arg("-s");
    Process::spawn(cmd, dir.path("baresip.log"))
}

// ---------------------------------------------------------------------------------------------
// The query, from the test's own socket
// ---------------------------------------------------------------------------------------------

/// A REGISTER for alice with no Contact (a query, RFC 3261 10.2.3), with `auth` as its
/// Authorization line or none.
fn query_request(local: SocketAddr, call_id: &str, cseq: u32, auth: &str) -> String {
    format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-{call_id}-{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{USER}@{DOMAIN}>;tag=q{cseq}\r\n\
         To: <sip:{USER}@{DOMAIN}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    )
}

/// The value of `name` in a challenge line, without quotes.
fn challenge_param<'a>(challenge: &'a str, name: &str) -> Option<&'a str> {
    challenge
        .split(',')
        .filter_map(|p| p.trim().trim_start_matches("Digest ").split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

/// The Authorization line answering `challenge` (a WWW-Authenticate value) for alice, its
/// response computed here with MD5.
fn authorization(challenge: &str) -> Result<String, String> {
    let nonce = challenge_param(challenge, "nonce").ok_or("no nonce in the challenge")?;
    let mut template = format!(
        "Digest username=\"{USER}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", \
         uri=\"sip:{DOMAIN}\", algorithm=MD5, cnonce=\"e2e\", qop=auth, nc=00000001"
    );
    if let Some(opaque) = challenge_param(challenge, "opaque") {
        let _ = write!(template, ", opaque=\"{opaque}\"");
    }
    let Some(Credentials::Digest(d)) = Credentials::parse(template.as_bytes()) else {
        return Err(format!("our own credentials do not parse: {template}"));
    };
    let ha1 = Ha1::from_password(
        Algorithm::Md5,
        USER.as_bytes(),
        DOMAIN.as_bytes(),
        PASSWORD.as_bytes(),
    );
    let response =
        compute_response(&ha1, b"REGISTER", &d, b"").ok_or("no response for our credentials")?;
    Ok(format!(
        "Authorization: {template}, response=\"{response}\"\r\n"
    ))
}

/// One binding as the registrar's 200 lists it.
#[derive(Debug)]
struct Listed {
    user: String,
    ip: Option<IpAddr>,
    port: Option<u16>,
    expires: Option<u32>,
}

/// The answer to one request.
struct Answer {
    code: u16,
    text: String,
    challenge: Option<String>,
    bindings: Vec<Listed>,
}

/// Sends `request` and waits, a second at most, for the response of its CSeq, skipping any
/// other datagram.
#[allow(clippy::disallowed_methods)] // Bounding the wait needs the clock.
fn exchange(
    socket: &UdpSocket,
    to: SocketAddr,
    request: &str,
    cseq: u32,
) -> Result<Answer, String> {
    socket
        .send_to(request.as_bytes(), to)
        .map_err(|e| format!("send: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or("no answer within a second")?;
        socket
            .set_read_timeout(Some(left))
            .map_err(|e| format!("set the read timeout: {e}"))?;
        let n = socket.recv(&mut buf).map_err(|e| format!("receive: {e}"))?;
        let bytes = buf.get(..n).unwrap_or_default();
        let mut storage = [Header::EMPTY; 64];
        let Ok(Message::Response(r)) = sip::parse_datagram(bytes, &mut storage, &Limits::default())
        else {
            continue;
        };
        if r.headers.cseq().map(|c| c.number) != Ok(cseq) {
            continue;
        }
        let text = String::from_utf8_lossy(bytes).into_owned();
        let challenge = r
            .headers
            .get(HeaderName::WwwAuthenticate)
            .map(|h| String::from_utf8_lossy(h.value).into_owned());
        let mut bindings = Vec::new();
        if let Ok(Contacts::List(list)) = r.headers.contacts() {
            for contact in list {
                let contact = contact.map_err(|e| format!("bad Contact ({e:?}) in\n{text}"))?;
                let Some(uri) = contact.addr.uri.sip() else {
                    continue;
                };
                bindings.push(Listed {
                    user: uri
                        .user
                        .map(|u| String::from_utf8_lossy(u.raw()).into_owned())
                        .unwrap_or_default(),
                    ip: uri.host.ip(),
                    port: uri.port,
                    expires: contact.expires,
                });
            }
        }
        return Ok(Answer {
            code: r.code,
            text,
            challenge,
            bindings,
        });
    }
}

/// Queries alice's bindings through the digest challenge; returns what the 200 lists.
fn query(socket: &UdpSocket, registrar: SocketAddr, attempt: u32) -> Result<Vec<Listed>, String> {
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let call_id = format!("e2e-baresip-query-{attempt}");
    let first = exchange(socket, registrar, &query_request(local, &call_id, 1, ""), 1)?;
    if first.code != 401 {
        return Err(format!("expected 401, got\n{}", first.text));
    }
    let challenge = first
        .challenge
        .ok_or_else(|| format!("401 without a challenge:\n{}", first.text))?;
    let auth = authorization(&challenge)?;
    let second = exchange(
        socket,
        registrar,
        &query_request(local, &call_id, 2, &auth),
        2,
    )?;
    if second.code != 200 {
        return Err(format!("expected 200, got\n{}", second.text));
    }
    Ok(second.bindings)
}

/// Both logs, for failure messages.
fn report(server: &Process, baresip: &Process) -> String {
    format!(
        "--- sipreg log ---\n{}\n--- baresip log ---\n{}",
        server.log(),
        baresip.log()
    )
}

/// Panics with both logs when either process has exited.
fn assert_alive(server: &mut Process, baresip: &mut Process) {
    for (name, status) in [("sipreg", server.exited()), ("baresip", baresip.exited())] {
        if let Some(status) = status {
            panic!("{name} exited with {status}\n{}", report(server, baresip));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

/// baresip registers alice at start, answering the 401 with MD5 digest credentials; the
/// registrar then lists baresip's contact (alice's contact user at 127.0.0.1 and baresip's
/// port) with an expiry for alice, as the test's own authenticated query shows.
#[test]
#[allow(clippy::disallowed_methods)] // The query socket and bounding the wait.
fn baresip_registers_with_digest_auth() {
    require_baresip();
    let started = Instant::now();
    let dir = TempDir::new("baresip");
    let (mut server, registrar) = start_sipreg(&dir);
    let local = SocketAddr::new(V4, free_port(V4, 1));
    let mut baresip = start_baresip(&dir, local, registrar);

    let socket = UdpSocket::bind(SocketAddr::new(V4, 0)).expect("bind the query socket");
    let deadline = Instant::now() + REGISTERED;
    let mut attempt = 0;
    let ours = |b: &Listed| b.ip == Some(local.ip()) && b.port == Some(local.port());
    let (listed, i) = loop {
        attempt += 1;
        let last = match query(&socket, registrar, attempt) {
            Ok(listed) => match listed.iter().position(ours) {
                Some(i) => break (listed, i),
                None => format!("{listed:?}"),
            },
            Err(e) => e,
        };
        assert_alive(&mut server, &mut baresip);
        assert!(
            Instant::now() < deadline,
            "no binding for baresip at {local} within {REGISTERED:?} ({attempt} queries); \
             last answer: {last}\n{}",
            report(&server, &baresip)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let b = &listed[i];
    assert!(
        b.user == USER || b.user.starts_with(&format!("{USER}-")),
        "alice's contact user: {listed:?}\n{}",
        report(&server, &baresip)
    );
    assert!(
        b.expires.is_some_and(|e| (1..=600).contains(&e)),
        "an expiry within baresip's regint=600: {listed:?}\n{}",
        report(&server, &baresip)
    );
    assert_alive(&mut server, &mut baresip);
    eprintln!(
        "baresip registered {b:?} after {attempt} queries in {:?}",
        started.elapsed()
    );
}
