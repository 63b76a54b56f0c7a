//! End to end over loopback: the real `sipreg` binary, a generated credentials file, and the load
//! engine registering, refreshing and de-registering through it; and the engine against
//! `sipreg-udp-echo`.
//!
//! Finding `sipreg`: it is another package's binary, so `CARGO_BIN_EXE_sipreg` does not exist
//! here. Under `cargo test` at the workspace root the binary is built into the same profile
//! directory as this test (sipreg has integration tests, which make cargo build its binary), so
//! it is looked up beside the test executable. When it is missing (`cargo test -p
//! sipreg-loadgen` on a fresh tree) it is built with `cargo build -p sipreg` into a target
//! directory of its own, since the outer cargo holds the lock on this one.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sipreg::auth::file;
use sipreg_loadgen::engine::{self, Config, Load};
use sipreg_loadgen::pattern::Pattern;

fn sipreg_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let beside = profile_dir.join("sipreg");
    if beside.is_file() {
        return beside;
    }
    let target = profile_dir
        .parent()
        .expect("target dir")
        .join("loadgen-test-sipreg");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "sipreg", "--bin", "sipreg", "--target-dir"])
        .arg(&target)
        .current_dir(&root)
        .status()
        .expect("run cargo build -p sipreg");
    assert!(status.success(), "cargo build -p sipreg failed");
    target.join("debug").join("sipreg")
}

/// A loopback UDP port nobody uses right now.
fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral port");
    s.local_addr().expect("local address").port()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sipreg-loadgen-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// The server process, killed (by its own PID) when the test ends however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts sipreg with `users` credentials and waits until it answers an OPTIONS.
fn start_sipreg(dir: &Path, users: u64, extra: &[&str]) -> (Server, SocketAddr) {
    let mut text = String::new();
    let (u, p) = (
        Pattern::parse("u%06d").unwrap(),
        Pattern::parse("p%06d").unwrap(),
    );
    for i in 0..users {
        let entries = file::entries_for(&u.format(i), "example.com", p.format(i).as_bytes());
        text.push_str(&file::format(&entries));
    }
    let users_file = dir.join("users");
    std::fs::write(&users_file, text).expect("write users file");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(sipreg_binary())
        .arg("serve")
        .args(extra)
        .args([
            "--listen",
            &format!("udp:{addr}"),
            "--domain",
            "example.com",
            "--users",
        ])
        .arg(&users_file)
        .args(["--auth-algorithms", "MD5,SHA-256"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipreg");
    let server = Server(child);
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let options = "OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKprobe\r\n\
                   From: <sip:probe@example.com>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: probe\r\n\
                   CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "sipreg did not answer on {addr}");
        let _ = probe.send_to(options.as_bytes(), addr);
        if probe.recv_from(&mut buf).is_ok() {
            return (server, addr);
        }
    }
}

fn config(target: SocketAddr, users: u64, count: u64) -> Config {
    Config {
        target,
        sources: vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()],
        ports_per_source: 4,
        threads: 2,
        users,
        first_user: 0,
        user_pattern: Pattern::parse("u%06d").unwrap(),
        password_pattern: Pattern::parse("p%06d").unwrap(),
        domain: "example.com".into(),
        algorithms: sipreg::auth::Algorithm::ALL.to_vec(),
        auth: true,
        load: Load::Concurrency(64),
        duration: Some(Duration::from_secs(60)),
        count: Some(count),
        expires: 600,
        unregister: true,
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        batch: 32,
        echo: false,
        progress: false,
        busy_poll: false,
    }
}

/// 2,000 users register with a challenge (SHA-256, the strongest offered), refresh once with
/// pre-emptive credentials (nc=2), and de-register: no failure, no timeout.
#[test]
fn two_thousand_registrations_and_refreshes() {
    let dir = scratch_dir("e2e");
    let (_server, addr) = start_sipreg(&dir, 2000, &[]);
    let out = engine::run(&config(addr, 2000, 4000)).expect("run");
    let s = &out.stats;
    assert_eq!(s.failures, Default::default(), "failures by status");
    assert_eq!(s.timeouts, 0);
    assert_eq!(
        (s.registrations, s.initial, s.refreshes),
        (4000, 2000, 2000)
    );
    assert_eq!(s.challenges, 2000, "one challenge per initial registration");
    assert_eq!(s.exchanges, 6000);
    assert_eq!(s.unregistrations, 2000);
    assert_eq!(s.registration_us.len(), 4000);
    // The server's share of a registration leaves out the load generator's turnaround after a
    // challenge: never more than the whole, and less on average where there was a challenge.
    assert_eq!(s.registration_server_us.len(), 4000);
    assert!(s.registration_server_us.max() <= s.registration_us.max());
    assert!(s.registration_server_us.mean() < s.registration_us.mean());

    // Phones that only know MD5 pick the MD5 challenge.
    let mut md5 = config(addr, 200, 400);
    md5.algorithms = vec![sipreg::auth::Algorithm::Md5];
    md5.first_user = 1000;
    let out = engine::run(&md5).expect("run");
    assert_eq!(
        (
            out.stats.registrations,
            out.stats.failed(),
            out.stats.timeouts
        ),
        (400, 0, 0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// With nonces that live one second, a refresh two seconds later gets `stale=true` and succeeds
/// with the new nonce, without counting as a failure.
#[test]
fn stale_nonce_is_renewed() {
    let dir = scratch_dir("stale");
    let conf = dir.join("sipreg.toml");
    std::fs::write(&conf, "[auth]\nnonce_lifetime = 1\n").unwrap();
    let (_server, addr) = start_sipreg(&dir, 50, &["--config", conf.to_str().unwrap()]);
    let mut cfg = config(addr, 50, 50);
    cfg.unregister = false;
    let first = engine::run(&cfg).expect("run");
    assert_eq!((first.stats.registrations, first.stats.failed()), (50, 0));
    // A new run is a new set of phones (new Call-IDs), so drive refreshes within one run instead:
    // register, wait out the nonce, refresh.
    cfg.count = Some(100);
    cfg.load = Load::Rate {
        per_s: 40.0,
        ramp: Duration::ZERO,
    };
    let out = engine::run(&cfg).expect("run");
    let s = &out.stats;
    assert_eq!((s.registrations, s.failed(), s.timeouts), (100, 0, 0));
    assert!(
        s.stale > 0,
        "expected stale=true challenges, got {} challenges",
        s.challenges
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The kernel floor: every REGISTER comes back from sipreg-udp-echo and answers itself.
#[test]
fn echo_mode() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sipreg-udp-echo"))
        .args(["--listen", &addr.to_string(), "--duration", "30"])
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipreg-udp-echo");
    let _echo = Server(child);
    std::thread::sleep(Duration::from_millis(200));
    let mut cfg = config(addr, 500, 5000);
    cfg.echo = true;
    cfg.unregister = false;
    let out = engine::run(&cfg).expect("run");
    let s = &out.stats;
    assert_eq!(
        (s.registrations, s.exchanges, s.failed(), s.timeouts),
        (5000, 5000, 0, 0)
    );
}
