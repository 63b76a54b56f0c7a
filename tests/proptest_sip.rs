//! Property tests for the SIP syntax layer (`sipreg::sip`).
//!
//! - Untrusted bytes never panic: arbitrary bytes, SIP-shaped token soup and mutated valid
//!   REGISTERs go through `tools/fuzz/src/exercise.rs`, the same pass the fuzz target runs
//!   (framing as datagram and stream, every typed accessor, screening, response writing).
//! - Parse, write, parse is stable: generated REGISTERs (escaped users, domain/IPv4/IPv6 hosts,
//!   compact and long names in any letter case, folded lines, shuffled headers) parse to what was
//!   generated; the 200 written for them echoes From, To, Call-ID, CSeq and Via as RFC 3261
//!   8.2.6.2 and RFC 3581 say; writing again from the parsed response gives the same bytes.
//! - Stream framing: generated messages, concatenated and cut into arbitrary chunks, come out of
//!   `parse_stream` one by one, whole and in order.
//! - URIs and hosts read as the start of a longer value (`Uri::parse_prefix`, `Host::parse_at`)
//!   end where they end and read as they do alone. (That the one-pass URI, name-addr and
//!   parameter parsers agree with the implementations they replaced is tested next to them, in
//!   `src/sip/{uri,addr,params,chars}.rs`, where the old code is kept as a reference.)
//! - Committed fuzz findings (`tools/fuzz/regressions/`) and the seed corpus replay without panic.
//!
//! Case counts are modest so the file runs in seconds in a debug build; `PROPTEST_CASES=N` raises
//! them for a longer run.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use sipreg::sip::{
    self, Contacts, Credentials, Header, Headers, Host, Limits, Message, Method, NameAddr,
    ResponseBuilder, Rport, Status, Uri,
};

#[path = "../tools/fuzz/src/exercise.rs"]
mod exercise;

/// `cases` unless `PROPTEST_CASES` says otherwise.
fn config(cases: u32) -> ProptestConfig {
    let from_env = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok());
    ProptestConfig {
        cases: from_env.unwrap_or(cases),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The model of a REGISTER: what is generated, and so what parsing must give back.

#[derive(Clone, Debug)]
enum HostSpec {
    Domain(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl HostSpec {
    fn text(&self) -> String {
        match self {
            HostSpec::Domain(d) => d.clone(),
            HostSpec::V4(a) => a.to_string(),
            HostSpec::V6(a) => format!("[{a}]"),
        }
    }

    fn matches(&self, host: &Host<'_>) -> bool {
        match (self, host) {
            (HostSpec::Domain(d), Host::Domain(h)) => d.as_bytes() == *h,
            (HostSpec::V4(a), Host::Ipv4(h)) => a == h,
            (HostSpec::V6(a), Host::Ipv6(h)) => a == h,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
struct UriSpec {
    secure: bool,
    /// The user part as written (with `%HH` escapes) and as it decodes.
    user: Option<(String, Vec<u8>)>,
    host: HostSpec,
    port: Option<u16>,
    /// URI parameters, written inside the angle brackets.
    params: &'static str,
}

impl UriSpec {
    fn text(&self) -> String {
        let mut s = String::from(if self.secure { "sips:" } else { "sip:" });
        if let Some((user, _)) = &self.user {
            s += user;
            s.push('@');
        }
        s += &self.host.text();
        if let Some(p) = self.port {
            s += &format!(":{p}");
        }
        s += self.params;
        s
    }

    fn check(&self, uri: &Uri<'_>) {
        assert_eq!(uri.raw(), self.text().as_bytes());
        let u = uri.sip().expect("a SIP URI");
        assert_eq!(u.secure, self.secure);
        match (&self.user, u.user) {
            (None, None) => {}
            (Some((raw, decoded)), Some(user)) => {
                assert_eq!(user.raw(), raw.as_bytes());
                assert!(user.decoded().eq(decoded.iter().copied()), "user {raw}");
            }
            other => panic!("user mismatch: {other:?}"),
        }
        assert!(
            self.host.matches(&u.host),
            "{:?} vs {:?}",
            self.host,
            u.host
        );
        assert_eq!(u.port, self.port);
    }
}

#[derive(Clone, Debug)]
struct ContactSpec {
    display: Option<&'static str>,
    uri: UriSpec,
    /// q in thousandths.
    q: Option<u16>,
    expires: Option<u32>,
}

#[derive(Clone, Debug)]
struct ViaSpec {
    transport: &'static str,
    host: HostSpec,
    port: Option<u16>,
    branch: String,
    rport: bool,
}

#[derive(Clone, Debug)]
struct Digest {
    /// The username as the client means it; written as a quoted-string with quoted-pairs.
    username: String,
    nonce: String,
    response: String,
    nc: Option<u32>,
}

#[derive(Clone, Debug)]
struct Register {
    registrar: HostSpec,
    aor: UriSpec,
    display: Option<&'static str>,
    from_tag: String,
    to_tag: Option<String>,
    call_id: String,
    cseq: u32,
    max_forwards: Option<u8>,
    vias: Vec<ViaSpec>,
    contacts: Vec<ContactSpec>,
    expires: Option<u32>,
    authorization: Option<Digest>,
    body: Vec<u8>,
    /// Drives every presentation choice: header order, name forms, letter case, white space.
    style: u64,
}

const USER_CHARS: &[char] = &[
    'a', 'b', 'c', 'x', 'y', 'z', 'A', 'Q', 'Z', '0', '1', '9', '-', '_', '.', '!', '~', '*', '\'',
    '(', ')', '&', '=', '+', '$',
];
const DISPLAYS: &[&str] = &[
    "Alice",
    "Alice Smith",
    "\"Alice\"",
    "\"J Rosenberg \\\\\\\"\"",
    "\"Bob, the builder <b>\"",
    "\"\"",
];
const URI_PARAMS: &[&str] = &["", ";transport=tcp", ";ob", ";lr;x=%41"];

fn user() -> impl Strategy<Value = (String, Vec<u8>)> {
    let part = prop_oneof![
        3 => prop::sample::select(USER_CHARS).prop_map(|c| (c.to_string(), vec![c as u8])),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(b, upper)| {
            let raw = if upper { format!("%{b:02X}") } else { format!("%{b:02x}") };
            (raw, vec![b])
        }),
    ];
    prop::collection::vec(part, 1..10).prop_map(|parts| {
        parts
            .into_iter()
            .fold((String::new(), Vec::new()), |(mut s, mut d), (raw, dec)| {
                s += &raw;
                d.extend(dec);
                (s, d)
            })
    })
}

fn domain() -> impl Strategy<Value = String> {
    // The last label starts with a letter, so the name never reads as an IPv4 address.
    (
        prop::collection::vec("[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", 0..3),
        "[a-z][a-z0-9]{0,5}",
    )
        .prop_map(|(mut labels, tld)| {
            labels.push(tld);
            labels.join(".")
        })
}

fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        any::<u128>().prop_map(Ipv6Addr::from),
        (any::<u16>(), any::<u16>())
            .prop_map(|(a, b)| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, a, b)),
        any::<[u8; 4]>().prop_map(|a| Ipv4Addr::from(a).to_ipv6_mapped()),
    ]
}

fn host() -> impl Strategy<Value = HostSpec> {
    prop_oneof![
        2 => domain().prop_map(HostSpec::Domain),
        1 => any::<[u8; 4]>().prop_map(|a| HostSpec::V4(a.into())),
        1 => ipv6().prop_map(HostSpec::V6),
    ]
}

fn uri(with_user: bool) -> impl Strategy<Value = UriSpec> {
    (
        prop::bool::weighted(0.2),
        user(),
        host(),
        prop::option::of(any::<u16>()),
        prop::sample::select(URI_PARAMS),
    )
        .prop_map(move |(secure, user, host, port, params)| UriSpec {
            secure,
            user: with_user.then_some(user),
            host,
            port,
            params,
        })
}

fn contact() -> impl Strategy<Value = ContactSpec> {
    (
        prop::option::of(prop::sample::select(DISPLAYS)),
        uri(true),
        prop::option::of(0u16..=1000),
        prop::option::of(prop_oneof![0u32..100_000, Just(u32::MAX)]),
    )
        .prop_map(|(display, uri, q, expires)| ContactSpec {
            display,
            uri,
            q,
            expires,
        })
}

fn via() -> impl Strategy<Value = ViaSpec> {
    (
        prop::sample::select(&["UDP", "TCP", "TLS", "udp", "SCTP"][..]),
        host(),
        prop::option::of(any::<u16>()),
        "[a-zA-Z0-9.!~*_+-]{1,16}",
        any::<bool>(),
    )
        .prop_map(|(transport, host, port, branch, rport)| ViaSpec {
            transport,
            host,
            port,
            branch: format!("z9hG4bK{branch}"),
            rport,
        })
}

fn digest() -> impl Strategy<Value = Digest> {
    (
        "[a-zA-Z0-9 ,;=\"\\\\@.]{0,12}",
        "[a-zA-Z0-9+/=]{1,24}",
        "[0-9a-f]{32}",
        prop::option::of(any::<u32>()),
    )
        .prop_map(|(username, nonce, response, nc)| Digest {
            username,
            nonce,
            response,
            nc,
        })
}

prop_compose! {
    fn register()(
        registrar in host(),
        aor in uri(true),
        display in prop::option::of(prop::sample::select(DISPLAYS)),
        from_tag in "[a-zA-Z0-9.~-]{1,12}",
        to_tag in prop::option::of("[a-zA-Z0-9]{1,8}"),
        call_id in "[a-zA-Z0-9.!%*_+~()-]{1,20}(@[a-zA-Z0-9.:]{1,12})?",
        cseq in 0u32..(1 << 31),
        max_forwards in prop::option::of(any::<u8>()),
        vias in prop::collection::vec(via(), 1..=3),
        contacts in prop::collection::vec(contact(), 1..=3),
        expires in prop::option::of(any::<u32>()),
        authorization in prop::option::of(digest()),
        style in any::<u64>(),
    ) -> Register {
        Register {
            registrar, aor, display, from_tag, to_tag, call_id, cseq, max_forwards, vias,
            contacts, expires, authorization, body: Vec::new(), style,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering: one model, many spellings.

/// SplitMix64: the presentation choices come from `Register::style`, so a failing case replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'s>(&mut self, items: &[&'s str]) -> &'s str {
        items[self.below(items.len())]
    }

    /// `SWS`: usually nothing, sometimes blanks or a folded line.
    fn sws(&mut self) -> &'static str {
        if self.chance(2) {
            ""
        } else {
            self.pick(&["", " ", "  ", "\t", "\r\n ", " \r\n\t"])
        }
    }

    /// `LWS`: at least one blank, possibly folded.
    fn lws(&mut self) -> &'static str {
        self.pick(&[" ", " ", " ", "  ", "\t", "\r\n ", " \r\n  "])
    }

    /// A header name in its long or compact form, in random letter case.
    fn name(&mut self, long: &str, compact: Option<&str>) -> String {
        let name = match compact {
            Some(c) if self.chance(2) => c,
            _ => long,
        };
        if self.chance(2) {
            return name.to_string();
        }
        name.chars()
            .map(|c| {
                if self.chance(2) {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    /// `HCOLON` and the SWS before the value.
    fn hcolon(&mut self) -> String {
        let before = self.pick(&["", "", "", " ", "\t "]);
        let after = self.pick(&[" ", " ", " ", "", "  ", "\t", "\r\n ", " \r\n\t"]);
        format!("{before}:{after}")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Via,
    Contact,
    Other,
}

fn name_addr(rng: &mut Rng, display: Option<&str>, uri: &UriSpec) -> String {
    let uri_text = uri.text();
    match display {
        // A bare addr-spec: only without URI parameters, which would become header parameters.
        None if uri.params.is_empty() && rng.chance(3) => uri_text,
        None => format!("<{uri_text}>"),
        Some(d) if d.starts_with('"') => format!("{d}{}<{uri_text}>", rng.sws()),
        Some(d) => format!("{d}{}<{uri_text}>", rng.lws()),
    }
}

/// `;name[=value]` with the white space SEMI and EQUAL allow.
fn param(rng: &mut Rng, name: &str, value: Option<&str>) -> String {
    let mut s = format!("{};{}{name}", rng.sws(), rng.sws());
    if let Some(v) = value {
        s += &format!("{}={}{v}", rng.sws(), rng.sws());
    }
    s
}

fn via_value(rng: &mut Rng, v: &ViaSpec) -> String {
    let mut s = format!(
        "SIP{}/{}2.0{}/{}{}{}{}",
        rng.sws(),
        rng.sws(),
        rng.sws(),
        rng.sws(),
        v.transport,
        rng.lws(),
        v.host.text()
    );
    if let Some(p) = v.port {
        s += &format!("{}:{}{p}", rng.sws(), rng.sws());
    }
    let branch = param(rng, "branch", Some(&v.branch));
    let rport = if v.rport {
        param(rng, "rport", None)
    } else {
        String::new()
    };
    if rng.chance(2) {
        s += &branch;
        s += &rport;
    } else {
        s += &rport;
        s += &branch;
    }
    s
}

fn qvalue(rng: &mut Rng, q: u16) -> String {
    match q {
        1000 => rng.pick(&["1", "1.", "1.0", "1.000"]).to_string(),
        0 => rng.pick(&["0", "0.", "0.0", "0.000"]).to_string(),
        _ => {
            let text = format!("0.{q:03}");
            if rng.chance(2) {
                text.trim_end_matches('0').to_string()
            } else {
                text
            }
        }
    }
}

fn contact_value(rng: &mut Rng, c: &ContactSpec) -> String {
    let mut s = name_addr(rng, c.display, &c.uri);
    let q = c.q.map(|q| {
        let text = qvalue(rng, q);
        param(rng, "q", Some(&text))
    });
    let expires = c
        .expires
        .map(|e| param(rng, "expires", Some(&e.to_string())));
    let mut parts: Vec<String> = q.into_iter().chain(expires).collect();
    if rng.chance(2) {
        parts.reverse();
    }
    for p in parts {
        s += &p;
    }
    s
}

fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn authorization_value(rng: &mut Rng, d: &Digest, realm: &str) -> String {
    let mut params = vec![
        format!("username={}", quoted(&d.username)),
        format!("realm={}", quoted(realm)),
        format!("nonce=\"{}\"", d.nonce),
        format!("uri=\"sip:{realm}\""),
        format!("response={}", quoted(&d.response)),
        "algorithm=MD5".to_string(),
    ];
    if let Some(nc) = d.nc {
        params.push(format!("nc={nc:08x}"));
        params.push("qop=auth".to_string());
        params.push("cnonce=\"0a4f113b\"".to_string());
    }
    for i in (1..params.len()).rev() {
        params.swap(i, rng.below(i + 1));
    }
    let mut s = format!("Digest{}", rng.lws());
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            s += &format!("{},{}", rng.sws(), rng.sws());
        }
        s += p;
    }
    s
}

/// Writes the REGISTER as bytes, with every presentation choice drawn from `r.style`.
fn render(r: &Register) -> Vec<u8> {
    let rng = &mut Rng(r.style);
    let mut lines: Vec<(Kind, String)> = Vec::new();
    let mut add = |kind, name: String, value: String, rng: &mut Rng| {
        let line = format!("{name}{}{value}\r\n", rng.hcolon());
        lines.push((kind, line));
    };

    // Vias and Contacts: one line each, or comma-separated elements sharing lines.
    let vias: Vec<String> = r.vias.iter().map(|v| via_value(rng, v)).collect();
    let contacts: Vec<String> = r.contacts.iter().map(|c| contact_value(rng, c)).collect();
    for (kind, long, compact, values) in [
        (Kind::Via, "Via", "v", vias),
        (Kind::Contact, "Contact", "m", contacts),
    ] {
        let mut values = values.into_iter().peekable();
        while let Some(first) = values.next() {
            let mut value = first;
            while values.peek().is_some() && rng.chance(2) {
                let next = values.next().expect("peeked");
                value = format!("{value}{},{}{next}", rng.sws(), rng.sws());
            }
            let name = rng.name(long, Some(compact));
            add(kind, name, value, rng);
        }
    }

    let from = name_addr(rng, r.display, &r.aor) + &param(rng, "tag", Some(&r.from_tag));
    let name = rng.name("From", Some("f"));
    add(Kind::Other, name, from, rng);
    let mut to = name_addr(rng, r.display, &r.aor);
    if let Some(tag) = &r.to_tag {
        to += &param(rng, "tag", Some(tag));
    }
    let name = rng.name("To", Some("t"));
    add(Kind::Other, name, to, rng);
    let name = rng.name("Call-ID", Some("i"));
    add(Kind::Other, name, r.call_id.clone(), rng);
    let cseq = format!("{}{}REGISTER", r.cseq, rng.lws());
    let name = rng.name("CSeq", None);
    add(Kind::Other, name, cseq, rng);
    if let Some(mf) = r.max_forwards {
        let name = rng.name("Max-Forwards", None);
        add(Kind::Other, name, mf.to_string(), rng);
    }
    if let Some(e) = r.expires {
        let name = rng.name("Expires", None);
        add(Kind::Other, name, e.to_string(), rng);
    }
    if let Some(d) = &r.authorization {
        let value = authorization_value(rng, d, &r.registrar.text());
        let name = rng.name("Authorization", None);
        add(Kind::Other, name, value, rng);
    }
    if rng.chance(3) {
        let name = rng.name("User-Agent", None);
        add(Kind::Other, name, "proptest/1.0 (sipreg)".into(), rng);
    }
    if rng.chance(3) {
        let name = rng.name("X-Extension", None);
        add(Kind::Other, name, "a=b;c".into(), rng);
    }
    let zeros = if rng.chance(4) { "00" } else { "" };
    let name = rng.name("Content-Length", Some("l"));
    add(Kind::Other, name, format!("{zeros}{}", r.body.len()), rng);

    // Shuffle, then put the Via and Contact lines back in their relative order: the order of
    // Vias is the route back, and the Contacts are compared in order.
    let mut order: Vec<(Kind, String)> = lines.clone();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    for kind in [Kind::Via, Kind::Contact] {
        let mut originals = lines.iter().filter(|(k, _)| *k == kind).cloned();
        for slot in order.iter_mut().filter(|(k, _)| *k == kind) {
            *slot = originals.next().expect("same count");
        }
    }

    let mut out = format!("REGISTER sip:{} SIP/2.0\r\n", r.registrar.text()).into_bytes();
    for (_, line) in order {
        out.extend_from_slice(line.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&r.body);
    out
}

// ---------------------------------------------------------------------------------------------
// Checks.

fn source() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::from((a, p))),
        (ipv6(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(IpAddr::V6(a), p)),
    ]
}

fn parse<'a, 'h>(
    bytes: &'a [u8],
    storage: &'h mut [Header<'a>],
) -> (sip::Request<'a, 'h>, sip::Essentials<'a>) {
    let parsed = sip::parse_datagram(bytes, storage, &Limits::default());
    let Ok(Message::Request(req)) = parsed else {
        panic!(
            "{parsed:?}\n{}",
            String::from_utf8_lossy(bytes).escape_debug()
        );
    };
    let essentials = sip::check_request(&req).unwrap_or_else(|e| {
        panic!("{e:?}\n{}", String::from_utf8_lossy(bytes).escape_debug());
    });
    (req, essentials)
}

/// The bindings a 200 lists: each Contact URI with its expiry.
type Bindings = Vec<(Vec<u8>, u32)>;

fn request_bindings(h: &Headers<'_, '_>, default_expires: u32) -> Bindings {
    let Ok(Contacts::List(list)) = h.contacts() else {
        panic!("no contact list")
    };
    list.map(|c| {
        let c = c.expect("contact parses");
        (
            c.addr.uri.raw().to_vec(),
            c.expires.unwrap_or(default_expires),
        )
    })
    .collect()
}

/// The 200 a registrar sends for a REGISTER (or for the headers of a previous 200).
fn write_ok(h: &Headers<'_, '_>, source: SocketAddr, bindings: &Bindings) -> Vec<u8> {
    let mut out = [0u8; 4096];
    let mut r = ResponseBuilder::start(&mut out, 200, "OK", h, source, Some(b"sr.1"));
    for (uri, expires) in bindings {
        r.contact(uri, b"", *expires);
    }
    let n = r.finish().expect("a 200 fits 4 KiB");
    out[..n].to_vec()
}

fn parse_response<'a, 'h>(bytes: &'a [u8], storage: &'h mut [Header<'a>]) -> sip::Response<'a, 'h> {
    match sip::parse_datagram(bytes, storage, &Limits::default()) {
        Ok(Message::Response(resp)) => resp,
        other => panic!(
            "{other:?}\n{}",
            String::from_utf8_lossy(bytes).escape_debug()
        ),
    }
}

fn same_name_addr(a: &NameAddr<'_>, b: &NameAddr<'_>) {
    assert_eq!(a.uri.raw(), b.uri.raw());
    assert_eq!(a.tag(), b.tag());
}

fn check_parsed(r: &Register, req: &sip::Request<'_, '_>, e: &sip::Essentials<'_>) {
    assert_eq!(req.method, Method::Register);
    assert!(r.registrar.matches(&e.uri.host));
    r.aor.check(&e.from.uri);
    r.aor.check(&e.to.uri);
    assert_eq!(e.from.tag(), Some(r.from_tag.as_bytes()));
    assert_eq!(e.to.tag(), r.to_tag.as_deref().map(str::as_bytes));
    assert_eq!(e.call_id, r.call_id.as_bytes());
    assert_eq!(e.cseq.number, r.cseq);
    assert_eq!(e.max_forwards, r.max_forwards);
    assert_eq!(req.headers.expires(), Ok(r.expires));
    assert_eq!(req.body, &r.body[..]);

    let vias: Vec<_> = req.headers.vias().map(|v| v.expect("via")).collect();
    assert_eq!(vias.len(), r.vias.len());
    for (spec, via) in r.vias.iter().zip(&vias) {
        assert!(spec.host.matches(&via.host));
        assert_eq!(via.port, spec.port);
        assert_eq!(via.branch, Some(spec.branch.as_bytes()));
        let rport = if spec.rport {
            Rport::Requested
        } else {
            Rport::Absent
        };
        assert_eq!(via.rport, rport);
    }

    let Ok(Contacts::List(list)) = req.headers.contacts() else {
        panic!("no contact list")
    };
    let contacts: Vec<_> = list.map(|c| c.expect("contact")).collect();
    assert_eq!(contacts.len(), r.contacts.len());
    for (spec, c) in r.contacts.iter().zip(&contacts) {
        spec.uri.check(&c.addr.uri);
        assert_eq!(c.q, spec.q);
        assert_eq!(c.expires, spec.expires);
    }

    let creds: Vec<_> = req.headers.authorizations().collect();
    match &r.authorization {
        None => assert!(creds.is_empty()),
        Some(d) => {
            let [Ok(Credentials::Digest(got))] = creds[..] else {
                panic!("{creds:?}")
            };
            assert!(
                got.username
                    .expect("username")
                    .eq_bytes(d.username.as_bytes())
            );
            assert!(got.nonce.expect("nonce").eq_bytes(d.nonce.as_bytes()));
            assert_eq!(got.response, Some(d.response.as_bytes()));
            assert_eq!(got.nc, d.nc);
        }
    }
}

/// Checks the 200 echoes the request as RFC 3261 8.2.6.2 and RFC 3581 4 require.
fn check_echo(
    r: &Register,
    req: &sip::Request<'_, '_>,
    e: &sip::Essentials<'_>,
    resp: &sip::Response<'_, '_>,
    source: SocketAddr,
    bindings: &Bindings,
) {
    assert_eq!(resp.code, 200);
    let h = &resp.headers;
    same_name_addr(&h.from().expect("From"), &e.from);
    let to = h.to().expect("To");
    assert_eq!(to.uri.raw(), e.to.uri.raw());
    // RFC 3261 8.2.6.2: the UAS adds a tag to a To that has none.
    let want_tag = r.to_tag.as_deref().map_or(&b"sr.1"[..], str::as_bytes);
    assert_eq!(to.tag(), Some(want_tag));
    assert_eq!(h.call_id(), Ok(e.call_id));
    let cseq = h.cseq().expect("CSeq");
    assert_eq!(
        (cseq.number, cseq.method),
        (e.cseq.number, Method::Register)
    );

    let sent: Vec<_> = req.headers.vias().map(|v| v.expect("via")).collect();
    let got: Vec<_> = h.vias().map(|v| v.expect("response via")).collect();
    assert_eq!(got.len(), sent.len());
    for (i, (s, g)) in sent.iter().zip(&got).enumerate() {
        assert_eq!(g.branch, s.branch);
        assert!(g.host.matches(&s.host));
        assert_eq!(g.port, s.port);
        if i > 0 {
            assert_eq!(g.rport, s.rport);
            assert_eq!(g.received, s.received);
        }
    }
    let top = &got[0];
    let source_ip = source.ip().to_canonical();
    let sent_by_is_source = sent[0]
        .host
        .ip()
        .is_some_and(|ip| ip.to_canonical() == source_ip);
    if sent[0].rport == Rport::Requested {
        // RFC 3581 4: "the server MUST set the value of the parameter to the source port" and
        // "MUST insert a received parameter ... even if it is identical to the ... host".
        assert_eq!(top.rport, Rport::Value(source.port()));
        assert_eq!(top.received, Some(source_ip));
    } else {
        assert_eq!(top.rport, Rport::Absent);
        // RFC 3261 18.2.1: received is added when sent-by is not the packet's source.
        let want = (!sent_by_is_source).then_some(source_ip);
        assert_eq!(top.received, want);
    }

    assert_eq!(&request_bindings(h, 0), bindings);
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
        exercise::exercise(&bytes);
    }

    #[test]
    fn sip_shaped_soup_never_panics(parts in prop::collection::vec(prop::sample::select(SOUP), 0..80)) {
        exercise::exercise(parts.concat().as_bytes());
    }

    #[test]
    fn mutated_registers_never_panic(r in register(), edits in prop::collection::vec(edit(), 1..6)) {
        let mut bytes = render(&r);
        for e in &edits {
            e.apply(&mut bytes);
        }
        exercise::exercise(&bytes);
    }

    #[test]
    fn parse_write_parse_is_stable(r in register(), source in source(), top_via_is_source in any::<bool>()) {
        let mut r = r;
        if top_via_is_source {
            r.vias[0].host = match source.ip() {
                IpAddr::V4(a) => HostSpec::V4(a),
                IpAddr::V6(a) => HostSpec::V6(a),
            };
        }
        let bytes = render(&r);
        let mut storage = [Header::EMPTY; 64];
        let (req, e) = parse(&bytes, &mut storage);
        check_parsed(&r, &req, &e);

        let bindings = request_bindings(&req.headers, r.expires.unwrap_or(3600));
        let first = write_ok(&req.headers, source, &bindings);
        let mut storage = [Header::EMPTY; 64];
        let resp = parse_response(&first, &mut storage);
        check_echo(&r, &req, &e, &resp, source, &bindings);

        // Writing from the parsed response gives a response with the same content, and from
        // there on the same bytes: the writer has a fixed point one step away.
        let second = write_ok(&resp.headers, source, &bindings);
        let mut storage = [Header::EMPTY; 64];
        let resp2 = parse_response(&second, &mut storage);
        check_echo(&r, &req, &e, &resp2, source, &bindings);
        let third = write_ok(&resp2.headers, source, &bindings);
        prop_assert_eq!(
            String::from_utf8_lossy(&second),
            String::from_utf8_lossy(&third)
        );
        prop_assert_eq!(
            String::from_utf8_lossy(&first),
            String::from_utf8_lossy(&second)
        );
    }

    /// A URI read as the start of a longer value (`Uri::parse_prefix`, what a name-addr does
    /// up to its `>`) ends where the URI ends, and reads as the URI alone does; a host read the
    /// same way (`Host::parse_at`) ends where the host ends.
    #[test]
    fn uris_and_hosts_read_as_prefixes(
        u in prop_oneof![uri(true), uri(false)],
        tail in prop::sample::select(&["", ">", ">;tag=1", " ;x", "\r\n", "\"", "<"][..]),
    ) {
        let text = u.text();
        let whole = Uri::parse(text.as_bytes()).expect("a generated URI parses");
        u.check(&whole);
        let longer = format!("{text}{tail}");
        let prefix = Uri::parse_prefix(longer.as_bytes()).expect("a URI followed by a delimiter");
        prop_assert_eq!(prefix.raw(), text.as_bytes());
        u.check(&prefix);
        let bracketed = format!("<{text}>");
        let a = NameAddr::parse(bracketed.as_bytes()).expect("the URI in angle brackets");
        u.check(&a.uri);

        let host = u.host.text();
        let longer = format!("{host}{tail}");
        let (h, end) = Host::parse_at(longer.as_bytes(), 0).expect("a generated host");
        prop_assert_eq!(end, host.len());
        prop_assert!(u.host.matches(&h));
    }

    #[test]
    fn stream_framing_yields_every_message(
        messages in prop::collection::vec((register(), prop::collection::vec(any::<u8>(), 0..64), 0usize..3), 1..5),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let mut wire = Vec::new();
        for (r, body, keepalives) in &messages {
            // RFC 5626 keep-alives (CRLF pairs) may precede any message on a stream.
            wire.extend(b"\r\n\r\n".repeat(*keepalives));
            let mut r = r.clone();
            r.body.clone_from(body);
            wire.extend(render(&r));
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();

        let mut buffer = Vec::new();
        let mut seen: Vec<(Vec<u8>, u32, Vec<u8>)> = Vec::new();
        let mut from = 0;
        for cut in cuts {
            buffer.extend_from_slice(&wire[from..cut]);
            from = cut;
            loop {
                let mut storage = [Header::EMPTY; 64];
                match sip::parse_stream(&buffer, &mut storage, &Limits::default()) {
                    Ok(Status::Complete(Message::Request(req), used)) => {
                        let e = sip::check_request(&req).expect("check_request");
                        seen.push((e.call_id.to_vec(), e.cseq.number, req.body.to_vec()));
                        buffer.drain(..used);
                    }
                    Ok(Status::Partial) => break,
                    other => panic!("{other:?}"),
                }
            }
        }
        prop_assert!(buffer.is_empty(), "left over: {:?}", buffer);
        let want: Vec<_> = messages
            .iter()
            .map(|(r, body, _)| (r.call_id.as_bytes().to_vec(), r.cseq, body.clone()))
            .collect();
        prop_assert_eq!(seen, want);
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations and soup for the no-panic properties.

/// Pieces of SIP that take the parser past its first checks more often than random bytes do.
const SOUP: &[&str] = &[
    "REGISTER sip:example.com SIP/2.0\r\n",
    "SIP/2.0 200 OK\r\n",
    "INVITE ",
    " SIP/2.0",
    "\r\n",
    "\r\n ",
    "\n",
    "\r\n\r\n",
    "Via: SIP/2.0/UDP ",
    "v:",
    "SIP / 2.0 / TCP",
    "192.0.2.1",
    "[2001:db8::1]",
    ":5060",
    ";branch=z9hG4bK",
    ";rport",
    ";received=",
    "From:",
    "To:",
    "Contact:",
    "m:",
    "*",
    "<sip:",
    "sips:",
    "tel:+1",
    "alice%40x",
    "%",
    "%0",
    "@",
    ">",
    "<",
    ";tag=",
    ";q=0.5",
    ";expires=",
    "Expires: ",
    "Call-ID: ",
    "CSeq: ",
    " REGISTER",
    "Max-Forwards: ",
    "Content-Length: ",
    "l: ",
    "0",
    "4294967296",
    "99999999999999999999",
    "Authorization: Digest ",
    "username=",
    "\"",
    "\\",
    "\\\"",
    ",",
    "nc=",
    "00000001",
    "Require: ",
    "Path: ",
    "Route: ",
    "path",
    " ",
    "\t",
    "\0",
    "\u{7f}",
    "=",
    "?",
    "a",
];

#[derive(Clone, Debug)]
enum Edit {
    Flip(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    DuplicateLine(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop::sample::select(SOUP).prop_map(|s| s.as_bytes().to_vec());
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        any::<Index>().prop_map(Edit::Truncate),
        (
            any::<Index>(),
            prop_oneof![prop::collection::vec(any::<u8>(), 1..8), interesting]
        )
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
        any::<Index>().prop_map(Edit::DuplicateLine),
    ]
}

impl Edit {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let at = |i: &Index, bytes: &Vec<u8>| i.index(bytes.len() + 1);
        match self {
            Edit::Flip(i, b) => {
                if !bytes.is_empty() {
                    let n = i.index(bytes.len());
                    bytes[n] = *b;
                }
            }
            Edit::Truncate(i) => bytes.truncate(at(i, bytes)),
            Edit::Insert(i, new) => {
                let n = at(i, bytes);
                bytes.splice(n..n, new.iter().copied());
            }
            Edit::Delete(i, len) => {
                let n = at(i, bytes);
                let end = (n + len).min(bytes.len());
                bytes.drain(n..end);
            }
            Edit::DuplicateLine(i) => {
                let n = at(i, bytes);
                let start = bytes[..n]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
                let end = bytes[n..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| n + p + 1);
                let line = bytes[start..end].to_vec();
                bytes.splice(end..end, line);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Committed inputs.

fn replay_dir(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_file() && path.extension().is_none_or(|e| e != "md") {
            let bytes = std::fs::read(&path).expect("readable input");
            let outcome = std::panic::catch_unwind(|| exercise::exercise(&bytes));
            assert!(outcome.is_ok(), "{} panics", path.display());
            count += 1;
        }
    }
    count
}

/// Every crash the fuzzer found and was fixed stays fixed.
#[test]
fn fuzz_regressions_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/fuzz/regressions");
    replay_dir(&dir);
}

/// The seed corpus (RFC 4475 and 5118 torture messages, REGISTERs with credentials) and what the
/// fuzzer added to it run clean in the test suite too, without the fuzzer installed.
#[test]
fn fuzz_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/fuzz/corpus/parse");
    assert!(replay_dir(&dir) >= 62, "the seed corpus is missing");
}
