//! RFC 4475 and RFC 5118 torture messages: every message in `testdata/` against the verdict its
//! README names, through the parser, the UAS screening and the response writer.

use std::net::SocketAddr;
use std::path::Path;

use sipreg::registrar::screen::{self, Rejection, Screened};
use sipreg::registrar::{Config, Peer, Registrar};
use sipreg::sip::{
    self, Contacts, ErrorKind, Header, HeaderName, Host, Limits, Message, Method, Transport,
};

/// What the README table asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// Parsed and passes the generic checks; the server answers as the method deserves
    /// (REGISTER and OPTIONS processed, other known methods 405 until the proxy lands,
    /// unknown methods 501).
    Valid,
    /// A response: parsed and absorbed without an answer.
    Response,
    /// Answered with this status code.
    Status(u16),
    /// Silently discarded.
    Dropped,
}

/// The bytes of a test vector, leaked so parsed views of it can live as long as the test.
fn load(name: &str) -> &'static [u8] {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Box::leak(bytes.into_boxed_slice())
}

fn source() -> SocketAddr {
    "192.0.2.77:5062".parse().unwrap()
}

/// Runs one datagram through the registrar (serving the vectors' domains, no users) and returns the
/// verdict seen on the wire.
fn verdict(bytes: &[u8]) -> Want {
    let mut storage = [Header::EMPTY; 64];
    let parsed = sip::parse_datagram(bytes, &mut storage, &Limits::default());
    let parsed_ok = parsed.is_ok();
    let was_response = matches!(parsed, Ok(Message::Response(_)));
    let domains = ["example.com", "[2001:db8::10]", "[2001:db8::10:5070]"].map(String::from);
    let mut registrar = Registrar::new(Config::with_domains(&domains), [1; 32]);
    let peer = Peer {
        source: source(),
        transport: Transport::Udp,
        connection: None,
        local: None,
    };
    let mut out = [0u8; 4096];
    let Some(n) = registrar.handle(0, peer, bytes, &mut out) else {
        return if was_response {
            Want::Response
        } else {
            Want::Dropped
        };
    };
    // The answer itself must be a well-formed response.
    let mut storage = [Header::EMPTY; 64];
    let Ok(Message::Response(resp)) =
        sip::parse_datagram(&out[..n], &mut storage, &Limits::default())
    else {
        panic!(
            "unparseable answer:\n{}",
            String::from_utf8_lossy(&out[..n])
        );
    };
    match resp.code {
        // Accepted for processing: a REGISTER is challenged (no credentials in the vectors),
        // OPTIONS answered, other methods of a clean message get 405/501 until the proxy lands.
        200 | 401 => Want::Valid,
        405 | 501 if parsed_ok => Want::Valid,
        code => Want::Status(code),
    }
}

fn request(bytes: &'static [u8]) -> (sip::Request<'static, 'static>, sip::Essentials<'static>) {
    let storage = Box::leak(Box::new([Header::EMPTY; 64]));
    let Ok(Message::Request(req)) = sip::parse_datagram(bytes, storage, &Limits::default()) else {
        panic!("not a request")
    };
    let e = sip::check_request(&req).expect("passes the generic checks");
    (req, e)
}

const TABLE: &[(&str, Want)] = &[
    // RFC 4475 3.1.1: valid messages.
    ("rfc4475/wsinv", Want::Valid),
    ("rfc4475/lwsdisp", Want::Valid),
    ("rfc4475/longreq", Want::Valid),
    ("rfc4475/semiuri", Want::Valid),
    ("rfc4475/transports", Want::Valid),
    ("rfc4475/mpart01", Want::Valid),
    ("rfc4475/intmeth", Want::Valid),
    ("rfc4475/esc01", Want::Valid),
    ("rfc4475/unreason", Want::Response),
    ("rfc4475/noreason", Want::Response),
    ("rfc4475/escnull", Want::Valid),
    ("rfc4475/esc02", Want::Valid),
    ("rfc4475/dblreq", Want::Valid),
    // RFC 4475 3.1.2: invalid messages.
    ("rfc4475/badinv01", Want::Status(400)),
    ("rfc4475/clerr", Want::Status(400)),
    ("rfc4475/ncl", Want::Status(400)),
    ("rfc4475/scalar02", Want::Status(400)),
    ("rfc4475/scalarlg", Want::Response),
    ("rfc4475/bigcode", Want::Dropped),
    ("rfc4475/quotbal", Want::Status(400)),
    ("rfc4475/ltgtruri", Want::Status(400)),
    ("rfc4475/lwsruri", Want::Status(400)),
    ("rfc4475/regbadct", Want::Status(400)),
    ("rfc4475/badaspec", Want::Status(400)),
    ("rfc4475/baddn", Want::Status(400)),
    // "may reject with 400": sipreg rejects the first three; a bad Date is not acted on.
    ("rfc4475/lwsstart", Want::Status(400)),
    ("rfc4475/trws", Want::Status(400)),
    ("rfc4475/escruri", Want::Status(400)),
    ("rfc4475/baddate", Want::Valid),
    ("rfc4475/badvers", Want::Status(505)),
    ("rfc4475/mismatch01", Want::Status(400)),
    ("rfc4475/mismatch02", Want::Status(400)),
    ("rfc4475/badbranch", Want::Valid),
    ("rfc4475/insuf", Want::Status(400)),
    ("rfc4475/unkscm", Want::Status(416)),
    ("rfc4475/novelsc", Want::Status(416)),
    ("rfc4475/unksm2", Want::Status(400)),
    ("rfc4475/bext01", Want::Status(420)),
    ("rfc4475/invut", Want::Valid),
    ("rfc4475/regaut01", Want::Valid),
    ("rfc4475/multi01", Want::Status(400)),
    ("rfc4475/mcl01", Want::Status(400)),
    ("rfc4475/bcast", Want::Response),
    ("rfc4475/zeromf", Want::Valid),
    ("rfc4475/cparam01", Want::Valid),
    ("rfc4475/cparam02", Want::Valid),
    ("rfc4475/regescrt", Want::Valid),
    ("rfc4475/sdp01", Want::Valid),
    ("rfc4475/inv2543", Want::Valid),
    // "400 or drop": it has no Via, so there is nowhere to send a 400.
    ("rfc4475/test", Want::Dropped),
    // RFC 5118.
    ("rfc5118/ipv6-good", Want::Valid),
    ("rfc5118/port-ambiguous", Want::Valid),
    ("rfc5118/port-unambiguous", Want::Valid),
    ("rfc5118/via-received-param-with-delim", Want::Valid),
    ("rfc5118/via-received-param-no-delim", Want::Valid),
    ("rfc5118/ipv6-in-sdp", Want::Valid),
    ("rfc5118/mult-ip-in-header", Want::Valid),
    ("rfc5118/mult-ip-in-sdp", Want::Valid),
    ("rfc5118/ipv4-mapped-ipv6", Want::Valid),
    ("rfc5118/ipv6-correct-abnf-2-colons", Want::Valid),
    ("rfc5118/ipv6-bad", Want::Status(400)),
    // "reject or tolerate": the address does not parse as IPv6, so sipreg rejects it.
    ("rfc5118/ipv6-bug-abnf-3-colons", Want::Status(400)),
];

#[test]
fn every_message_is_in_the_table() {
    let mut files = Vec::new();
    for dir in ["rfc4475", "rfc5118"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(dir);
        for entry in std::fs::read_dir(path).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            files.push(format!("{dir}/{}", name.trim_end_matches(".dat")));
        }
    }
    files.sort();
    let mut listed: Vec<String> = TABLE.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
}

#[test]
fn udp_verdicts() {
    let mut failures = Vec::new();
    for (name, want) in TABLE {
        let got = verdict(load(&format!("{name}.dat")));
        if got != *want {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn tcp_framing_verdicts() {
    let limits = Limits::default();
    // clerr: on a stream, a Content-Length beyond the data means "wait for more".
    let mut storage = [Header::EMPTY; 64];
    assert!(matches!(
        sip::parse_stream(load("rfc4475/clerr.dat"), &mut storage, &limits),
        Ok(sip::Status::Partial)
    ));
    // ncl, mcl01: the length cannot be known; the connection must be closed.
    for (name, kind) in [
        ("rfc4475/ncl", ErrorKind::BadContentLength),
        ("rfc4475/mcl01", ErrorKind::DuplicateContentLength),
    ] {
        let mut storage = [Header::EMPTY; 64];
        let err =
            sip::parse_stream(load(&format!("{name}.dat")), &mut storage, &limits).expect_err(name);
        assert_eq!(err.kind, kind, "{name}");
    }
}

#[test]
fn escnull_binds_two_distinct_contacts_and_keeps_the_aor_whole() {
    let bytes = load("rfc4475/escnull.dat");
    let (req, e) = request(bytes);
    let mut buf = [0u8; 64];
    let user = e.to.uri.sip().unwrap().user.unwrap();
    assert_eq!(user.decode_into(&mut buf), Some(&b"null-\0-null"[..]));
    let Ok(Contacts::List(list)) = req.headers.contacts() else {
        panic!()
    };
    let users: Vec<Vec<u8>> = list
        .map(|c| {
            let c = c.unwrap();
            c.addr.uri.sip().unwrap().user.unwrap().decoded().collect()
        })
        .collect();
    assert_eq!(users, [b"\0".to_vec(), b"\0\0".to_vec()]);
}

#[test]
fn esc02_is_not_register() {
    let bytes = load("rfc4475/esc02.dat");
    let (req, _) = request(bytes);
    assert_eq!(req.method, Method::Other);
    assert_eq!(req.raw_method, b"RE%47IST%45R");
    // C%6Fntact is an unknown header, not a third Contact.
    assert!(req.headers.other(b"C%6Fntact").is_some());
    assert_eq!(req.headers.elements(HeaderName::Contact).count(), 2);
    let mut storage = [Header::EMPTY; 64];
    let parsed = sip::parse_datagram(bytes, &mut storage, &Limits::default());
    assert!(matches!(
        screen::screen(parsed, |_, _| ()),
        Screened::Reject(Rejection::NotImplemented)
    ));
}

#[test]
fn dblreq_ignores_the_trailing_invite() {
    let bytes = load("rfc4475/dblreq.dat");
    let (req, e) = request(bytes);
    assert_eq!(req.method, Method::Register);
    assert!(req.body.is_empty());
    assert_eq!(e.call_id, b"dblreq.0ha0isndaksdj99sdfafnl3lk233412");
}

#[test]
fn cparam_ownership() {
    let bytes = load("rfc4475/cparam01.dat");
    let (req, _) = request(bytes);
    let Ok(Contacts::List(mut list)) = req.headers.contacts() else {
        panic!()
    };
    let c = list.next().unwrap().unwrap();
    assert!(c.addr.uri.sip().unwrap().params.is_empty());
    assert_eq!(c.addr.params.get(b"unknownparam"), Some(None));

    let bytes = load("rfc4475/cparam02.dat");
    let (req, _) = request(bytes);
    let Ok(Contacts::List(mut list)) = req.headers.contacts() else {
        panic!()
    };
    let c = list.next().unwrap().unwrap();
    assert_eq!(
        c.addr.uri.sip().unwrap().params.get(b"unknownparam"),
        Some(None)
    );
    assert!(c.addr.params.find(b"unknownparam").is_none());
}

#[test]
fn regescrt_keeps_the_escaped_route_header() {
    let bytes = load("rfc4475/regescrt.dat");
    let (req, _) = request(bytes);
    let Ok(Contacts::List(mut list)) = req.headers.contacts() else {
        panic!()
    };
    let c = list.next().unwrap().unwrap();
    assert_eq!(
        c.addr.uri.sip().unwrap().headers,
        Some(&b"Route=%3Csip:sip.example.com%3E"[..])
    );
}

#[test]
fn bext01_lists_both_unknown_requires() {
    let bytes = load("rfc4475/bext01.dat");
    let mut out = [0u8; 2048];
    let n =
        screen::write_rejection(Rejection::BadExtension, bytes, source(), b"t", &mut out).unwrap();
    let text = String::from_utf8_lossy(&out[..n]);
    assert!(
        text.contains("\r\nUnsupported: nothingSupportsThis, nothingSupportsThisEither\r\n"),
        "{text}"
    );
}

#[test]
fn regaut01_carries_an_unknown_scheme() {
    let bytes = load("rfc4475/regaut01.dat");
    let (req, _) = request(bytes);
    let creds: Vec<_> = req.headers.authorizations().collect();
    assert_eq!(
        creds,
        [Ok(sip::Credentials::Other {
            scheme: b"NoOneKnowsThisScheme"
        })]
    );
}

#[test]
fn rfc5118_ipv6_references_parse_everywhere() {
    let bytes = load("rfc5118/ipv6-good.dat");
    let (req, e) = request(bytes);
    assert!(matches!(e.uri.host, Host::Ipv6(_)));
    assert!(matches!(e.via.host, Host::Ipv6(_)));
    let Ok(Contacts::List(mut list)) = req.headers.contacts() else {
        panic!()
    };
    let c = list.next().unwrap().unwrap();
    assert!(matches!(c.addr.uri.sip().unwrap().host, Host::Ipv6(_)));

    let bytes = load("rfc5118/port-ambiguous.dat");
    let (_, e) = request(bytes);
    assert_eq!(e.uri.host, Host::Ipv6("2001:db8::10:5070".parse().unwrap()));
    assert_eq!(e.uri.port, None);
    let bytes = load("rfc5118/port-unambiguous.dat");
    let (_, e) = request(bytes);
    assert_eq!(e.uri.port, Some(5070));

    for name in [
        "rfc5118/via-received-param-with-delim",
        "rfc5118/via-received-param-no-delim",
    ] {
        let bytes = load(&format!("{name}.dat"));
        let (_, e) = request(bytes);
        assert_eq!(
            e.via.received,
            Some("2001:db8::9:255".parse().unwrap()),
            "{name}"
        );
    }
}

#[test]
fn rejections_echo_received_and_rport() {
    // transports.dat has no rport; the answer still says where the request came from, because the
    // sent-by host is a name, not the source address (RFC 3261 18.2.1).
    let bytes = load("rfc4475/unkscm.dat");
    let mut out = [0u8; 2048];
    let n = screen::write_rejection(
        Rejection::Syntax(ErrorKind::UnsupportedUriScheme),
        bytes,
        source(),
        b"t",
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&out[..n]);
    assert!(
        text.contains(
            "\r\nVia: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234;received=192.0.2.77\r\n"
        ),
        "{text}"
    );
    let bytes = load("rfc4475/mpart01.dat");
    let mut storage = [Header::EMPTY; 64];
    let Ok(Message::Request(req)) = sip::parse_datagram(bytes, &mut storage, &Limits::default())
    else {
        panic!()
    };
    let n = sip::ResponseBuilder::start(&mut out, 200, "OK", &req.headers, source(), Some(b"t"))
        .finish()
        .unwrap();
    let text = String::from_utf8_lossy(&out[..n]);
    assert!(
        text.contains(";received=192.0.2.77;rport=5062\r\n"),
        "{text}"
    );
}
