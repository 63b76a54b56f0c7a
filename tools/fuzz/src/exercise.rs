//! One pass of untrusted bytes through everything the SIP syntax layer offers: framing as a
//! datagram and as a stream, every typed accessor, request screening, and response writing; then
//! through the registrar's whole request path, `Registrar::handle`, on a registrar that keeps its
//! state from one input to the next.
//!
//! Shared by the libFuzzer target (`fuzz_targets/parse.rs`) and by `tests/proptest_sip.rs` (which
//! includes this file with `#[path]`), so a committed crash input replays through exactly the code
//! the fuzzer ran. The only outcome it checks besides "no panic" is that every response sipreg
//! writes parses again as a response with the status it was written with: a defect in a request
//! must never be echoed into a malformed answer.

use std::cell::RefCell;
use std::net::SocketAddr;

use sipreg::auth::{Algorithm, Ha1};
use sipreg::registrar::screen::{self, Screened};
use sipreg::registrar::{Config, Peer, Registrar};
use sipreg::sip::{
    self, Challenge, Contacts, Credentials, DigestResponse, Escaped, Header, HeaderName, Headers,
    Limits, Message, NameAddr, Quoted, Request, ResponseBuilder, Status, Uri,
};

/// The limits a deployment uses, and tight ones so that the limit paths are reached too.
const LIMITS: [Limits; 2] = [
    Limits {
        max_message: 65_535,
        max_line: 8_192,
    },
    Limits {
        max_message: 600,
        max_line: 90,
    },
];

/// Header storage sizes: the registrar's, and one small enough to overflow.
const STORAGE_SMALL: usize = 6;
const STORAGE: usize = 64;

/// Where the request "came from": an IPv4 peer and an IPv6 one exercise both `received` forms.
fn sources() -> [SocketAddr; 2] {
    [
        SocketAddr::from(([192, 0, 2, 77], 5062)),
        SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x77], 40_000)),
    ]
}

/// Runs `data` through every parser entry point and, for what parses, every accessor and writer.
pub fn exercise(data: &[u8]) {
    for limits in &LIMITS {
        let mut storage = [Header::EMPTY; STORAGE];
        let parsed = sip::parse_datagram(data, &mut storage, limits);
        if let Ok(msg) = &parsed {
            message(msg);
        }
        screened(screen::screen(parsed, |_, _| ()), data);

        let mut small = [Header::EMPTY; STORAGE_SMALL];
        if let Ok(msg) = sip::parse_datagram(data, &mut small, limits) {
            message(&msg);
        }

        stream(data, limits);
    }
    registrar_pass(data);
    let mut storage = [Header::EMPTY; STORAGE];
    let salvaged = sip::salvage(data, &mut storage);
    headers(&salvaged);
    respond(&salvaged);
}

/// Parses `data` as a stream: message after message until it needs more bytes or fails.
fn stream(data: &[u8], limits: &Limits) {
    let mut rest = data;
    // Every complete message uses at least one octet, so this bounds the loop by the input.
    for _ in 0..=data.len() {
        let mut storage = [Header::EMPTY; STORAGE];
        match sip::parse_stream(rest, &mut storage, limits) {
            Ok(Status::Complete(msg, used)) => {
                message(&msg);
                assert!(
                    used > 0 && used <= rest.len(),
                    "parse_stream consumed {used} of {} octets",
                    rest.len()
                );
                rest = rest.get(used..).unwrap_or_default();
            }
            Ok(Status::Partial) | Err(_) => return,
        }
    }
}

fn message(msg: &Message<'_, '_>) {
    let h = msg.headers();
    headers(&h);
    match msg {
        Message::Request(req) => request(req),
        Message::Response(resp) => {
            assert!((100..=699).contains(&resp.code), "status {}", resp.code);
        }
    }
}

fn request(req: &Request<'_, '_>) {
    if let Some(uri) = Uri::parse(req.uri) {
        visit_uri(&uri);
    }
    if let Ok(e) = sip::check_request(req) {
        visit_uri(&Uri::Sip(e.uri));
        visit_name_addr(&e.from);
        visit_name_addr(&e.to);
        assert!(!e.call_id.is_empty());
        assert!(e.cseq.number < 1 << 31);
    }
    let _ = sip::unsupported_requires(req, |t| {
        assert!(!t.is_empty());
        t.eq_ignore_ascii_case(b"path")
    });
    respond(&req.headers);
}

/// Calls every typed accessor of [`Headers`] and looks inside what they return.
fn headers(h: &Headers<'_, '_>) {
    for via in h.vias().flatten() {
        let _ = (via.transport.as_str(), via.host.ip(), via.branch, via.maddr);
        via.params.iter().for_each(drop);
    }
    let _ = h.top_via();
    if let Ok(a) = h.from() {
        visit_name_addr(&a);
    }
    if let Ok(a) = h.to() {
        visit_name_addr(&a);
    }
    let _ = (h.call_id(), h.cseq(), h.max_forwards());
    let _ = (h.expires(), h.min_expires(), h.content_length());
    let _ = (h.user_agent(), h.other(b"X-Unknown"));
    match h.contacts() {
        Ok(Contacts::List(list)) => {
            for contact in list.flatten() {
                visit_name_addr(&contact.addr);
                if let Some(q) = contact.q {
                    assert!(q <= 1000, "q {q}");
                }
                let _ = (contact.expires, contact.instance, contact.reg_id);
            }
        }
        Ok(Contacts::Absent | Contacts::Wildcard) | Err(_) => {}
    }
    for credentials in h.authorizations().chain(h.proxy_authorizations()) {
        match credentials {
            Ok(Credentials::Digest(d)) => visit_digest(&d),
            Ok(Credentials::Other { scheme }) => assert!(!scheme.is_empty()),
            Err(_) => {}
        }
    }
    for name in [
        HeaderName::Require,
        HeaderName::ProxyRequire,
        HeaderName::Supported,
        HeaderName::Unsupported,
    ] {
        h.option_tags(name).for_each(drop);
    }
    for name in [HeaderName::Path, HeaderName::Route, HeaderName::RecordRoute] {
        for route in h.routes(name).flatten() {
            assert!(route.bracketed);
            visit_name_addr(&route);
        }
    }
}

fn visit_name_addr(a: &NameAddr<'_>) {
    visit_uri(&a.uri);
    let _ = (a.display, a.tag());
    a.params.iter().for_each(drop);
}

fn visit_uri(uri: &Uri<'_>) {
    let _ = uri.raw();
    let Some(u) = uri.sip() else { return };
    for part in [u.user, u.password].into_iter().flatten() {
        visit_escaped(part);
    }
    let _ = (
        u.host.ip(),
        u.host.matches(&u.host),
        u.transport(),
        u.headers,
    );
    u.params.iter().for_each(drop);
    let _ = u.matches(u);
}

fn visit_escaped(e: Escaped<'_>) {
    let decoded = e.decoded().count();
    assert!(decoded <= e.raw().len());
    let mut buf = [0u8; 64];
    if let Some(out) = e.decode_into(&mut buf) {
        assert_eq!(out.len(), decoded);
    }
    assert!(e.eq_decoded(&e) && e.eq_ignore_case(&e));
    let _ = e.eq_bytes(b"alice");
}

fn visit_digest(d: &DigestResponse<'_>) {
    let quoted = [d.username, d.realm, d.nonce, d.uri, d.cnonce, d.opaque];
    for q in quoted.into_iter().flatten() {
        visit_quoted(q);
    }
    let _ = (d.response, d.algorithm, d.qop, d.nc, d.userhash);
}

fn visit_quoted(q: Quoted<'_>) {
    let _ = q.plain();
    let unescaped: usize = q.chunks().map(<[u8]>::len).sum();
    assert!(unescaped <= q.0.len());
    let _ = q.eq_bytes(b"alice");
}

/// Writes the responses a registrar sends (401, 200 with bindings, 423, 420) into a 4 KiB buffer
/// and into one too small, and checks what fits parses back with the status written.
fn respond(h: &Headers<'_, '_>) {
    for source in sources() {
        for size in [4096, 160] {
            let mut out = vec![0u8; size];
            let written = write_401(&mut out, h, source);
            check_written(&out, written, 401);
            let written = write_200(&mut out, h, source);
            check_written(&out, written, 200);
            let mut r =
                ResponseBuilder::start(&mut out, 423, "Interval Too Brief", h, source, None);
            r.min_expires(3600).date(1_289_690_940);
            let written = r.finish();
            check_written(&out, written, 423);
            let mut r = ResponseBuilder::start(&mut out, 420, "Bad Extension", h, source, None);
            r.unsupported(h.elements(HeaderName::Require));
            let written = r.finish_with_body("text/plain", b"unsupported");
            check_written(&out, written, 420);
        }
    }
}

fn write_401(
    out: &mut [u8],
    h: &Headers<'_, '_>,
    source: SocketAddr,
) -> Result<usize, sip::Overflow> {
    let mut r = ResponseBuilder::start(out, 401, "Unauthorized", h, source, Some(b"sr1"));
    r.www_authenticate(&Challenge {
        realm: b"example.com",
        nonce: b"MTI4OTY5MDk0MDowOmRlYWRiZWVm",
        opaque: b"o\"p\\q",
        algorithm: "SHA-256",
        qop: "auth",
        stale: true,
    })
    .server("sipreg");
    r.finish()
}

fn write_200(
    out: &mut [u8],
    h: &Headers<'_, '_>,
    source: SocketAddr,
) -> Result<usize, sip::Overflow> {
    let mut r = ResponseBuilder::start(out, 200, "OK", h, source, Some(b"sr1"));
    if let Ok(Contacts::List(list)) = h.contacts() {
        for contact in list.flatten() {
            // `contact` takes parameter text with its leading `;`, as a registrar stores it.
            let raw = contact.addr.params.raw();
            let params = if raw.is_empty() {
                Vec::new()
            } else {
                [&b";"[..], raw].concat()
            };
            r.contact(
                contact.addr.uri.raw(),
                &params,
                contact.expires.unwrap_or(3600),
            );
        }
    }
    for path in h.all(HeaderName::Path) {
        r.header("Path", path.value);
    }
    r.expires(3600);
    r.finish()
}

/// A response that fit must parse as a response carrying `code`.
fn check_written(out: &[u8], written: Result<usize, sip::Overflow>, code: u16) {
    let Ok(n) = written else { return };
    let bytes = out
        .get(..n)
        .expect("the writer reports a length within its buffer");
    let mut storage = vec![Header::EMPTY; 600];
    match sip::parse_datagram(bytes, &mut storage, &LIMITS[0]) {
        Ok(Message::Response(resp)) => {
            assert_eq!(resp.code, code);
            assert!(resp.body.len() <= n);
        }
        other => panic!(
            "sipreg wrote a response that does not parse ({other:?}):\n{}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

fn screened(s: Screened<()>, raw: &[u8]) {
    let Screened::Reject(rejection) = s else {
        return;
    };
    for source in sources() {
        let mut out = [0u8; 4096];
        if let Some(n) = screen::write_rejection(rejection, raw, source, b"sr1", &mut out) {
            check_written(&out, Ok(n), rejection.status().0);
        }
    }
}

thread_local! {
    /// One registrar for the whole run, so inputs meet the state earlier ones left.
    static REGISTRAR: RefCell<Registrar> = RefCell::new(new_registrar());
}

fn new_registrar() -> Registrar {
    let domains = ["example.com", "[2001:db8::10]"].map(String::from);
    let mut config = Config::with_domains(&domains);
    // A small nonce-count table: the default 20 MiB would dominate every run.
    config.auth.nc_entries = 1024;
    let mut registrar = Registrar::new(config, [3; 32]);
    for alg in Algorithm::ALL {
        let ha1 = Ha1::from_password(alg, b"alice", b"example.com", b"wonderland");
        registrar.users_mut().insert(b"alice", b"example.com", ha1);
    }
    registrar
}

/// The registrar's request path from both sources; whatever it answers must parse as a response.
fn registrar_pass(data: &[u8]) {
    REGISTRAR.with(|cell| {
        let mut registrar = cell.borrow_mut();
        for (i, source) in sources().into_iter().enumerate() {
            let now = 1_790_000_000_000 + i as u64 * 61_000;
            let peer = Peer {
                source,
                transport: sip::Transport::Udp,
                connection: None,
                local: None,
            };
            let mut out = [0u8; 8192];
            if let Some(n) = registrar.handle(now, peer, data, &mut out) {
                let answer = out.get(..n).unwrap_or_default();
                // A response carries every Via value of its request, each on its own line: more
                // lines than the request had, so more room to parse it.
                let mut storage = [Header::EMPTY; 1024];
                assert!(
                    matches!(
                        sip::parse_datagram(answer, &mut storage, &Limits::default()),
                        Ok(Message::Response(_))
                    ),
                    "the registrar wrote an unparseable answer:\n{}",
                    String::from_utf8_lossy(answer)
                );
            }
            registrar.tick(now);
            while registrar.poll_event().is_some() {}
        }
    });
}
