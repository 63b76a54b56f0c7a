//! Messages shared by the benches: what a typical desk phone sends.
#![allow(dead_code)]

/// A REGISTER as a typical desk phone sends it.
pub const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK-524287-1---0b41c7a6e2f1d8c3;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:u012345@192.0.2.14:5060;transport=udp>;expires=3600;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0004f2a1b2c3>\";reg-id=1\r\n\
To: <sip:u012345@example.com>\r\n\
From: <sip:u012345@example.com>;tag=4b1c9a2e\r\n\
Call-ID: 7f1e3c2a9b8d4e6f0a1b2c3d4e5f6a7b@192.0.2.14\r\n\
CSeq: 2 REGISTER\r\n\
Expires: 3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Supported: replaces, path, outbound\r\n\
User-Agent: Polycom/6.4.3 VVX410\r\n\
Content-Length: 0\r\n\r\n";

/// The same REGISTER answering a challenge.
pub const REGISTER_AUTH: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK-524287-1---5c7e9a1b3d2f4e6a;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:u012345@192.0.2.14:5060;transport=udp>;expires=3600;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0004f2a1b2c3>\";reg-id=1\r\n\
To: <sip:u012345@example.com>\r\n\
From: <sip:u012345@example.com>;tag=4b1c9a2e\r\n\
Call-ID: 7f1e3c2a9b8d4e6f0a1b2c3d4e5f6a7b@192.0.2.14\r\n\
CSeq: 3 REGISTER\r\n\
Expires: 3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Supported: replaces, path, outbound\r\n\
User-Agent: Polycom/6.4.3 VVX410\r\n\
Authorization: Digest username=\"u012345\", realm=\"example.com\", nonce=\"AAAAAGcz4wABAAAAAAAAAQ8r2Yw7mF0aYb3xK1dQ\", uri=\"sip:example.com\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001, opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"\r\n\
Content-Length: 0\r\n\r\n";

use std::net::SocketAddr;

use sipreg::auth::{Algorithm, Ha1, compute_response};
use sipreg::registrar::{Config, Peer, Registrar};
use sipreg::sip::{
    self, Challenge, Contacts, Credentials, Essentials, Header, Headers, Limits, Message,
    ResponseBuilder, Transport,
};

/// What a registrar reads of a REGISTER: frame, the generic checks, every Contact, Expires and
/// the credentials. Returns a number derived from them so nothing is optimised away.
pub fn typed(bytes: &[u8]) -> usize {
    let mut storage = [Header::EMPTY; 32];
    let Ok(Message::Request(req)) = sip::parse_datagram(bytes, &mut storage, &Limits::default())
    else {
        return 0;
    };
    let Ok(e) = sip::check_request(&req) else {
        return 0;
    };
    let mut n = e.cseq.number as usize;
    if let Ok(Contacts::List(list)) = req.headers.contacts() {
        for c in list.flatten() {
            n += c.expires.unwrap_or(0) as usize;
        }
    }
    n += req.headers.expires().ok().flatten().unwrap_or(0) as usize;
    for c in req.headers.authorizations().flatten() {
        if let Credentials::Digest(d) = c {
            n += d.nc.unwrap_or(0) as usize;
        }
    }
    n
}

pub const NOW_MS: u64 = 1_790_000_000_000;
pub const USER: &str = "u012345";
pub const PASSWORD: &str = "secret-012345";
pub const DOMAIN: &str = "example.com";

pub fn peer() -> Peer {
    Peer {
        // Built, not parsed: the benches call this per request, and parsing text is no part of
        // what they measure.
        source: SocketAddr::from(([192, 0, 2, 14], 5060)),
        transport: Transport::Udp,
        connection: None,
        local: None,
    }
}

/// A registrar serving example.com with one user, MD5 first (as SIPp and most phones use).
pub fn registrar() -> Registrar {
    let mut config = Config::with_domains(&[DOMAIN.to_string()]);
    config.auth.algorithms = vec![Algorithm::Md5, Algorithm::Sha256];
    let mut reg = Registrar::new(config, [9; 32]);
    for alg in Algorithm::ALL {
        reg.users_mut().insert(
            USER.as_bytes(),
            DOMAIN.as_bytes(),
            Ha1::from_password(alg, USER.as_bytes(), DOMAIN.as_bytes(), PASSWORD.as_bytes()),
        );
    }
    reg
}

/// The desk-phone REGISTER with `cseq`, and credentials for `nonce` with `nc` when given.
pub fn register(cseq: u32, auth: Option<(&str, u32)>) -> Vec<u8> {
    let mut msg = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK-524287-1---{cseq:016x};rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:{USER}@192.0.2.14:5060;transport=udp>;expires=3600\r\n\
To: <sip:{USER}@{DOMAIN}>\r\n\
From: <sip:{USER}@{DOMAIN}>;tag=4b1c9a2e\r\n\
Call-ID: 7f1e3c2a9b8d4e6f0a1b2c3d4e5f6a7b@192.0.2.14\r\n\
CSeq: {cseq} REGISTER\r\n\
Expires: 3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Supported: replaces, path, outbound\r\n\
User-Agent: Polycom/6.4.3 VVX410\r\n"
    );
    if let Some((nonce, nc)) = auth {
        let template = format!(
            "Digest username=\"{USER}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"sip:{DOMAIN}\", \
             algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc={nc:08x}"
        );
        let Some(Credentials::Digest(d)) = Credentials::parse(template.as_bytes()) else {
            panic!("client header must parse")
        };
        let ha1 = Ha1::from_password(
            Algorithm::Md5,
            USER.as_bytes(),
            DOMAIN.as_bytes(),
            PASSWORD.as_bytes(),
        );
        let response = compute_response(&ha1, b"REGISTER", &d, b"").expect("MD5 response");
        msg.push_str(&format!(
            "Authorization: {template}, response=\"{response}\"\r\n"
        ));
    }
    msg.push_str("Content-Length: 0\r\n\r\n");
    msg.into_bytes()
}

/// Drains the location events a request left and gives them back, as a server worker does
/// after every message: their memory is reused, so a steady stream of refreshes allocates
/// nothing. A bench that left them queued would measure an allocation per request, and a queue
/// growing without end, that the server never has.
pub fn settle(reg: &mut Registrar) {
    while let Some(event) = reg.poll_event() {
        reg.recycle(event);
    }
}

/// Gets a nonce from the registrar's 401 to `register(1, None)`.
pub fn nonce(reg: &mut Registrar) -> String {
    let mut out = [0u8; 4096];
    let n = reg
        .handle(NOW_MS, peer(), &register(1, None), &mut out)
        .expect("a 401");
    let text = String::from_utf8_lossy(&out[..n]).into_owned();
    let start = text.find("nonce=\"").expect("a challenge") + 7;
    let end = start + text[start..].find('"').expect("closing quote");
    text[start..end].to_string()
}

/// The 401 the registrar sends the bench phone: two challenges (SHA-256, MD5) and Server.
pub fn write_401(
    out: &mut [u8],
    h: &Headers<'_, '_>,
    e: &Essentials<'_>,
    src: SocketAddr,
) -> usize {
    let mut r =
        ResponseBuilder::start_checked(out, 401, "Unauthorized", h, e, src, Some(b"a1b2c3d4"));
    for algorithm in ["SHA-256", "MD5"] {
        r.www_authenticate(&Challenge {
            realm: b"example.com",
            nonce: b"AAAAAGcz4wABAAAAAAAAAQ8r2Yw7mF0aYb3xK1dQ",
            opaque: b"5ccc069c403ebaf9f0171e9517f40e41",
            algorithm,
            qop: "auth,auth-int",
            stale: false,
        });
    }
    r.server("sipreg");
    r.finish().unwrap_or(0)
}

/// The 200 the registrar sends the bench phone: its binding with instance and reg-id, Date,
/// Server.
pub fn write_200(
    out: &mut [u8],
    h: &Headers<'_, '_>,
    e: &Essentials<'_>,
    src: SocketAddr,
) -> usize {
    let mut r = ResponseBuilder::start_checked(out, 200, "OK", h, e, src, Some(b"a1b2c3d4"));
    r.contact(
        b"sip:u012345@192.0.2.14:5060;transport=udp",
        b"+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0004f2a1b2c3>\";reg-id=1",
        3600,
    );
    r.date(1_795_000_000);
    r.server("sipreg");
    r.finish().unwrap_or(0)
}
