//! The hot path allocates nothing: parsing a REGISTER (with and without credentials), reading
//! every field a registrar needs from it, and writing the 401 and 200 answers into a stack buffer;
//! and the registrar as a worker runs it, in steady state: the whole 401 path, a refresh with
//! pre-emptive credentials once its events are drained, journaled and given back, and the NAT
//! keep-alive: writing each ping and crediting its answer.
//!
//! A counting global allocator wraps the system one. Only allocations made by the measuring thread
//! while a measurement is open are counted, so the test harness's own threads cannot disturb the
//! count however the tests are scheduled.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::net::SocketAddr;

use sipreg::sip::{
    self, Challenge, Contacts, Credentials, Header, Limits, Message, ResponseBuilder,
};

struct Counting;

thread_local! {
    // `const`-initialised and without destructors: using them never allocates or registers a
    // destructor, which is what makes them usable from inside the allocator. Both are per thread,
    // so tests measuring in parallel never see each other's allocations.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    if MEASURING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; the counting touches only const
// thread-local `Cell`s, which neither allocate nor unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as above; `ptr` came from this allocator, which is `System` underneath.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns what it returned and how many allocations it made on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    MEASURING.with(|m| m.set(true));
    let out = f();
    MEASURING.with(|m| m.set(false));
    (out, ALLOCATIONS.with(Cell::get) - before)
}

const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: \"Alice\" <sip:alice@example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=456248\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:alice@192.0.2.1:5060;transport=udp>;q=0.7;expires=3600;\
+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1, \
<sip:alice%40home@[2001:db8::1]:5062>;expires=60\r\n\
Supported: path, outbound\r\n\
Expires: 7200\r\n\
Content-Length: 0\r\n\r\n";

const REGISTER_WITH_AUTHORIZATION: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhdt;rport\r\n\
Max-Forwards: 70\r\n\
To: \"Alice\" <sip:alice@example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=456248\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1827 REGISTER\r\n\
Contact: <sip:alice@192.0.2.1:5060;transport=udp>;q=0.7;expires=3600\r\n\
Authorization: Digest username=\"alice\", realm=\"example.com\",\r\n\x20\
nonce=\"MTI4OTY5MDk0MDowOmRlYWRiZWVm\", uri=\"sip:example.com\",\r\n\x20\
response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\",\r\n\x20\
algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"0a4f113b\",\r\n\x20\
opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"\r\n\
Expires: 7200\r\n\
Content-Length: 0\r\n\r\n";

/// What a registrar reads from a REGISTER; returns a digest of it so nothing is optimised away.
fn read_register(bytes: &[u8]) -> usize {
    let mut storage = [Header::EMPTY; 32];
    let parsed = sip::parse_datagram(bytes, &mut storage, &Limits::default());
    let Ok(Message::Request(req)) = parsed else {
        panic!("the REGISTER does not parse: {parsed:?}")
    };
    let e = sip::check_request(&req).expect("the REGISTER passes the generic checks");
    let mut seen = e.call_id.len() + e.cseq.number as usize;
    let Ok(Contacts::List(contacts)) = req.headers.contacts() else {
        panic!("no contact list")
    };
    for contact in contacts {
        let c = contact.expect("contact parses");
        let uri = c.addr.uri.sip().expect("SIP contact");
        seen += uri.user.map_or(0, |u| u.decoded().count());
        seen += usize::from(c.q.unwrap_or(1000)) + c.expires.unwrap_or(0) as usize;
    }
    for credentials in req.headers.authorizations() {
        let Ok(Credentials::Digest(d)) = credentials else {
            panic!("credentials do not parse")
        };
        assert!(d.username.expect("username").eq_bytes(b"alice"));
        seen += d.nc.unwrap_or(0) as usize + d.response.map_or(0, <[u8]>::len);
    }
    seen += req.headers.expires().expect("Expires").unwrap_or(0) as usize;
    black_box(seen)
}

/// Writes the 401 and the 200 for `bytes` into stack buffers; returns their lengths.
fn write_answers(bytes: &[u8], source: SocketAddr) -> (usize, usize) {
    let mut storage = [Header::EMPTY; 32];
    let parsed = sip::parse_datagram(bytes, &mut storage, &Limits::default());
    let Ok(Message::Request(req)) = parsed else {
        panic!("the REGISTER does not parse: {parsed:?}")
    };
    let mut out = [0u8; 4096];
    let mut r = ResponseBuilder::start(
        &mut out,
        401,
        "Unauthorized",
        &req.headers,
        source,
        Some(b"t1"),
    );
    r.www_authenticate(&Challenge {
        realm: b"example.com",
        nonce: b"MTI4OTY5MDk0MDowOmRlYWRiZWVm",
        opaque: b"5ccc069c403ebaf9f0171e9517f40e41",
        algorithm: "SHA-256",
        qop: "auth",
        stale: false,
    });
    let unauthorized = r.finish().expect("the 401 fits");
    black_box(&out);

    let mut out = [0u8; 4096];
    let mut r = ResponseBuilder::start(&mut out, 200, "OK", &req.headers, source, Some(b"t1"));
    r.contact(
        b"sip:alice@192.0.2.1:5060;transport=udp",
        b";+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1",
        3600,
    )
    .contact(b"sip:alice%40home@[2001:db8::1]:5062", b"", 60)
    .header("Path", b"<sip:edge.example.com;lr>")
    .date(1_289_690_940)
    .server("sipreg");
    let ok = r.finish().expect("the 200 fits");
    black_box(&out);
    (unauthorized, ok)
}

#[test]
fn the_counter_sees_allocations() {
    let (v, n) = allocations(|| black_box(Vec::<u8>::with_capacity(16)));
    drop(v);
    assert_eq!(n, 1);
}

#[test]
fn parsing_a_register_allocates_nothing() {
    for bytes in [REGISTER, REGISTER_WITH_AUTHORIZATION] {
        let input = black_box(bytes);
        let (_, n) = allocations(|| read_register(input));
        assert_eq!(n, 0, "{}", String::from_utf8_lossy(bytes));
    }
}

#[test]
fn writing_the_401_and_200_allocates_nothing() {
    // IPv6 sources take the formatting path of `received`; IPv4 ones the digit path.
    let sources: [SocketAddr; 2] = [
        "192.0.2.77:5062".parse().expect("address"),
        "[2001:db8::77]:40000".parse().expect("address"),
    ];
    for bytes in [REGISTER, REGISTER_WITH_AUTHORIZATION] {
        for source in sources {
            let input = black_box(bytes);
            let ((unauthorized, ok), n) = allocations(|| write_answers(input, source));
            assert!(unauthorized > 0 && ok > 0);
            assert_eq!(n, 0, "{source}");
        }
    }
}

#[path = "../benches/common/mod.rs"]
mod common;

#[test]
fn steady_state_challenges_and_refreshes_allocate_nothing() {
    let mut reg = common::registrar();
    let mut out = [0u8; 4096];
    // The 401 path.
    let challenge = common::register(1, None);
    let _ = reg.handle(common::NOW_MS, common::peer(), &challenge, &mut out);
    let (n, count) =
        allocations(|| reg.handle(common::NOW_MS, common::peer(), &challenge, &mut out));
    assert!(n.is_some());
    assert_eq!(count, 0, "the 401 path allocates nothing");
    // Refreshes with pre-emptive credentials, events drained as the server does.
    let nonce = common::nonce(&mut reg);
    let mut total = 0;
    for k in 2..200u32 {
        let msg = common::register(k, Some((&nonce, k - 1)));
        let (n, count) = allocations(|| {
            let n = reg.handle(
                common::NOW_MS + u64::from(k),
                common::peer(),
                &msg,
                &mut out,
            );
            while let Some(event) = reg.poll_event() {
                reg.recycle(event);
            }
            n
        });
        assert!(out.starts_with(b"SIP/2.0 200"), "{:?}", n);
        if k > 10 {
            total += count;
        }
    }
    // The refreshed binding's block and the event's copies come from the blocks of the events
    // given back (Registrar::recycle), as the server's workers do.
    assert_eq!(total, 0, "allocations in 189 refreshes");
}

/// The answer a device gives a ping: 200 with its Via, From, To, Call-ID and CSeq.
fn answer_to(ping: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(ping);
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for line in text.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        if ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
            .iter()
            .any(|h| line.starts_with(h))
        {
            out += line;
            out += "\r\n";
        }
    }
    out += "Content-Length: 0\r\n\r\n";
    out.into_bytes()
}

#[test]
fn steady_state_keepalive_pings_and_answers_allocate_nothing() {
    use sipreg::registrar::{Config, Keepalive, KeepaliveMode, Peer, Registrar};
    let mut config = Config::with_domains(&["example.com".to_string()]);
    config.auth.required = false;
    config.keepalive = Keepalive {
        mode: KeepaliveMode::All,
        interval: 10,
        timeout: 60,
    };
    let mut reg = Registrar::new(config, [9; 32]);
    let local: SocketAddr = "198.51.100.1:5060".parse().unwrap();
    reg.set_local_addresses(&[local], &[]);
    let peer = |i: u32| Peer {
        source: SocketAddr::from(([192, 0, 2, (i % 250) as u8 + 1], 40_000 + i as u16)),
        transport: sip::Transport::Udp,
        connection: None,
        local: None,
    };
    let mut out = [0u8; 4096];
    for i in 0..200u32 {
        let msg = format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK{i}\r\n\
             From: <sip:u{i}@example.com>;tag=1\r\nTo: <sip:u{i}@example.com>\r\nCall-ID: c{i}\r\n\
             CSeq: 1 REGISTER\r\nContact: <sip:u{i}@10.0.0.1>\r\nExpires: 3600\r\n\
             Content-Length: 0\r\n\r\n"
        );
        assert!(reg.handle(0, peer(i), msg.as_bytes(), &mut out).is_some());
    }
    while let Some(event) = reg.poll_event() {
        reg.recycle(event);
    }
    // Three walks of the table, every ping answered at once; the first one warms up.
    let mut pings = 0;
    let mut total = 0;
    for now in (0..=30_000u64).step_by(100) {
        loop {
            let (sent, count) = allocations(|| reg.poll_transmit(now, &mut out));
            let Some(sent) = sent else {
                total += if now >= 10_000 { count } else { 0 };
                break;
            };
            pings += 1;
            let answer = answer_to(&out[..sent.len]);
            let (n, credit) = allocations(|| reg.handle(now, sent.to, &answer, &mut out));
            assert_eq!(n, None);
            if now >= 10_000 {
                total += count + credit;
            }
        }
    }
    assert_eq!(pings, 600);
    assert_eq!(reg.unanswered(), 0);
    assert_eq!(total, 0, "allocations in 400 pings and answers");
}
