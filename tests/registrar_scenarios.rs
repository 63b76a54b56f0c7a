//! Registrar scenarios on a virtual clock: the element is driven with bytes and `now` only, as
//! the I/O shell drives it, and every answer is parsed back and checked.

use std::net::SocketAddr;
use std::path::Path;

use sipreg::auth::{Algorithm, Ha1, compute_response};
use sipreg::location::Event;
use sipreg::registrar::{Config, ContactPolicy, Peer, Registrar};
use sipreg::sip::{self, Contacts, Credentials, Header, Limits, Message, Transport};

const DOMAIN: &str = "example.com";
const T0: u64 = 1_790_000_000_000;

/// A response, parsed back into owned parts.
#[derive(Debug)]
struct Answer {
    code: u16,
    reason: String,
    text: String,
}

impl Answer {
    fn headers(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}: ");
        self.text
            .split("\r\n")
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    /// The Contact URIs of a 200 with their granted expiry.
    fn contacts(&self) -> Vec<(String, u32)> {
        let mut storage = [Header::EMPTY; 64];
        let Ok(Message::Response(r)) =
            sip::parse_datagram(self.text.as_bytes(), &mut storage, &Limits::default())
        else {
            panic!("unparseable answer {}", self.text)
        };
        match r.headers.contacts().unwrap() {
            Contacts::List(list) => list
                .map(|c| {
                    let c = c.unwrap();
                    (
                        String::from_utf8_lossy(c.addr.uri.raw()).into_owned(),
                        c.expires.expect("every contact of a 200 has expires"),
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The nonce of the first challenge.
    fn nonce(&self) -> String {
        let h = &self.headers("WWW-Authenticate")[0];
        let start = h.find("nonce=\"").expect("nonce") + 7;
        let end = start + h[start..].find('"').unwrap();
        h[start..end].to_string()
    }
}

struct Harness {
    reg: Registrar,
    now: u64,
    source: SocketAddr,
}

impl Harness {
    fn new(config: Config) -> Harness {
        let mut reg = Registrar::new(config, [42; 32]);
        for (user, password) in [
            ("alice", "wonderland"),
            ("bob", "builder"),
            ("j.user", "secret"),
            ("watson", "secret"),
            ("user", "secret"),
            ("null-\0-null", "secret"),
        ] {
            for alg in Algorithm::ALL {
                reg.users_mut().insert(
                    user.as_bytes(),
                    DOMAIN.as_bytes(),
                    Ha1::from_password(
                        alg,
                        user.as_bytes(),
                        DOMAIN.as_bytes(),
                        password.as_bytes(),
                    ),
                );
            }
        }
        Harness {
            reg,
            now: T0,
            source: "192.0.2.44:5062".parse().unwrap(),
        }
    }

    fn default() -> Harness {
        Harness::new(Config::with_domains(&[DOMAIN.to_string()]))
    }

    fn advance(&mut self, seconds: u64) {
        self.now += seconds * 1000;
        self.reg.tick(self.now);
    }

    fn send(&mut self, bytes: &[u8]) -> Option<Answer> {
        let peer = Peer {
            source: self.source,
            transport: Transport::Udp,
            connection: None,
            local: None,
        };
        let mut out = [0u8; 8192];
        let n = self.reg.handle(self.now, peer, bytes, &mut out)?;
        let text = String::from_utf8(out[..n].to_vec()).expect("answers are text");
        let mut storage = [Header::EMPTY; 64];
        let Ok(Message::Response(r)) =
            sip::parse_datagram(text.as_bytes(), &mut storage, &Limits::default())
        else {
            panic!("unparseable answer {text}")
        };
        Some(Answer {
            code: r.code,
            reason: String::from_utf8_lossy(r.reason).into_owned(),
            text,
        })
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.reg.poll_event()).collect()
    }
}

/// A phone: one Call-ID, a CSeq that rises, a nonce it reuses with a rising nonce-count.
struct Phone {
    user: String,
    password: String,
    call_id: String,
    cseq: u32,
    contact: String,
    instance: Option<String>,
    nonce: Option<String>,
    nc: u32,
    alg: Algorithm,
}

impl Phone {
    fn new(user: &str, password: &str, contact_host: &str) -> Phone {
        Phone {
            user: user.to_string(),
            password: password.to_string(),
            call_id: format!("{user}-{contact_host}@phone"),
            cseq: 0,
            contact: format!("sip:{user}@{contact_host}:5060"),
            instance: None,
            nonce: None,
            nc: 0,
            alg: Algorithm::Md5,
        }
    }

    fn contact_header(&self, expires: Option<u32>) -> String {
        let mut c = format!("Contact: <{}>", self.contact);
        if let Some(i) = &self.instance {
            c.push_str(&format!(";+sip.instance=\"{i}\";reg-id=1"));
        }
        if let Some(e) = expires {
            c.push_str(&format!(";expires={e}"));
        }
        c + "\r\n"
    }

    /// A REGISTER for the phone's own AOR with `extra` header lines, credentials included
    /// when the phone holds a nonce.
    fn register(&mut self, extra: &str) -> Vec<u8> {
        self.register_as(&self.user.clone(), extra)
    }

    fn register_as(&mut self, aor_user: &str, extra: &str) -> Vec<u8> {
        self.cseq += 1;
        let mut msg = format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.44:5062;branch=z9hG4bK-{}-{};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{aor_user}@{DOMAIN}>;tag=ft{}\r\n\
             To: <sip:{aor_user}@{DOMAIN}>\r\n\
             Call-ID: {}\r\n\
             CSeq: {} REGISTER\r\n{extra}",
            self.call_id.replace('@', "."),
            self.cseq,
            self.cseq,
            self.call_id,
            self.cseq
        );
        if let Some(nonce) = self.nonce.clone() {
            self.nc += 1;
            msg.push_str(&authorization(
                &self.user,
                &self.password,
                &nonce,
                self.nc,
                self.alg,
                "REGISTER",
            ));
        }
        msg.push_str("Content-Length: 0\r\n\r\n");
        msg.into_bytes()
    }

    fn take_challenge(&mut self, a: &Answer) {
        assert_eq!(a.code, 401, "{}", a.text);
        self.nonce = Some(a.nonce());
        self.nc = 0;
    }
}

/// An Authorization header line as a client computes it.
fn authorization(
    user: &str,
    password: &str,
    nonce: &str,
    nc: u32,
    alg: Algorithm,
    method: &str,
) -> String {
    let template = format!(
        "Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"sip:{DOMAIN}\", \
         algorithm={}, cnonce=\"c0ffee\", qop=auth, nc={nc:08x}",
        alg.name()
    );
    let Some(Credentials::Digest(d)) = Credentials::parse(template.as_bytes()) else {
        panic!("client header must parse")
    };
    let ha1 = Ha1::from_password(alg, user.as_bytes(), DOMAIN.as_bytes(), password.as_bytes());
    let response = compute_response(&ha1, method.as_bytes(), &d, b"").unwrap();
    format!("Authorization: {template}, response=\"{response}\"\r\n")
}

/// Registers `phone` through the challenge; returns the 200.
fn register_fresh(h: &mut Harness, phone: &mut Phone, extra: &str) -> Answer {
    phone.nonce = None;
    let a = h.send(&phone.register(extra)).unwrap();
    phone.take_challenge(&a);
    h.send(&phone.register(extra)).unwrap()
}

#[test]
fn first_registration_goes_through_the_challenge() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    let contact = alice.contact_header(None);
    let a = h.send(&alice.register(&contact)).unwrap();
    assert_eq!(a.code, 401);
    // RFC 8760: one challenge per algorithm, strongest first, with an opaque and both qops.
    let challenges = a.headers("WWW-Authenticate");
    assert_eq!(challenges.len(), 3);
    for (c, alg) in challenges.iter().zip(["SHA-512-256", "SHA-256", "MD5"]) {
        assert!(c.starts_with("Digest realm=\"example.com\""), "{c}");
        assert!(c.contains(&format!("algorithm={alg}")), "{c}");
        assert!(c.contains("qop=\"auth,auth-int\""), "{c}");
        assert!(c.contains("opaque=\""), "{c}");
        assert!(!c.contains("stale"), "{c}");
    }
    assert!(a.headers("To")[0].contains(";tag="), "{}", a.text);
    alice.take_challenge(&a);
    let a = h.send(&alice.register(&contact)).unwrap();
    assert_eq!(a.code, 200, "{}", a.text);
    assert_eq!(
        a.contacts(),
        [("sip:alice@192.0.2.44:5060".to_string(), 3600)]
    );
    assert_eq!(a.headers("Date").len(), 1);
    // RFC 3581: the source is recorded in the answer's Via.
    assert!(
        a.headers("Via")[0].ends_with(";received=192.0.2.44;rport=5062"),
        "{}",
        a.text
    );
    let events = h.events();
    assert!(
        matches!(events.as_slice(), [Event::Added { .. }]),
        "{events:?}"
    );
    let bound: Vec<_> = h
        .reg
        .shard()
        .lookup(b"sip:alice@example.com", h.now)
        .collect();
    assert_eq!(bound.len(), 1);
    assert_eq!(bound[0].source(), h.source);
}

#[test]
fn every_algorithm_authenticates() {
    for alg in Algorithm::ALL {
        let mut h = Harness::default();
        let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
        alice.alg = alg;
        let contact = alice.contact_header(None);
        let a = register_fresh(&mut h, &mut alice, &contact);
        assert_eq!(a.code, 200, "{alg:?}: {}", a.text);
    }
}

#[test]
fn refresh_with_preemptive_credentials_and_rising_nc() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    let contact = alice.contact_header(Some(600));
    assert_eq!(register_fresh(&mut h, &mut alice, &contact).code, 200);
    for _ in 0..5 {
        h.advance(100);
        // Same nonce, nc 2, 3, ...: no new 401.
        let a = h.send(&alice.register(&contact)).unwrap();
        assert_eq!(a.code, 200, "{}", a.text);
        assert_eq!(a.contacts()[0].1, 600);
    }
    assert_eq!(h.reg.shard().count(b"sip:alice@example.com", h.now), 1);
}

#[test]
fn stale_nonce_gets_stale_true_only_with_right_credentials() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    let contact = alice.contact_header(None);
    assert_eq!(register_fresh(&mut h, &mut alice, &contact).code, 200);
    h.advance(h.reg.config().auth.nonce_lifetime + 1);
    let a = h.send(&alice.register(&contact)).unwrap();
    assert_eq!(a.code, 401);
    assert!(
        a.headers("WWW-Authenticate")[0].contains("stale=true"),
        "{}",
        a.text
    );
    // The same stale nonce with a wrong password: a plain challenge.
    alice.password = "guess".into();
    let a = h.send(&alice.register(&contact)).unwrap();
    assert_eq!(a.code, 401);
    assert!(
        !a.headers("WWW-Authenticate")[0].contains("stale"),
        "{}",
        a.text
    );
}

#[test]
fn replayed_nonce_count_is_refused() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    let contact = alice.contact_header(None);
    assert_eq!(register_fresh(&mut h, &mut alice, &contact).code, 200);
    // A new request (new CSeq) reusing nc=1.
    alice.nc = 0;
    let a = h.send(&alice.register(&contact)).unwrap();
    assert_eq!(a.code, 401, "{}", a.text);
    // A captured request with a lower count than the last one.
    alice.nc = 5;
    assert_eq!(h.send(&alice.register(&contact)).unwrap().code, 200);
    alice.nc = 2;
    assert_eq!(h.send(&alice.register(&contact)).unwrap().code, 401);
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let mut h = Harness::default();
    let mut wrong = Phone::new("alice", "guess", "192.0.2.44");
    let mut unknown = Phone::new("mallory", "guess", "192.0.2.44");
    let mut answers = Vec::new();
    for p in [&mut wrong, &mut unknown] {
        let contact = p.contact_header(None);
        let a = register_fresh(&mut h, p, &contact);
        assert_eq!(a.code, 401);
        answers.push(a);
    }
    // Same status line, same header names in the same order.
    let shape = |a: &Answer| {
        a.text
            .split("\r\n")
            .map(|l| l.split(':').next().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(answers[0].reason, answers[1].reason);
    assert_eq!(shape(&answers[0]), shape(&answers[1]));
}

#[test]
fn bindings_expire_on_the_virtual_clock() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    let contact = alice.contact_header(Some(60));
    assert_eq!(register_fresh(&mut h, &mut alice, &contact).code, 200);
    h.events();
    h.advance(59);
    assert_eq!(h.reg.shard().count(b"sip:alice@example.com", h.now), 1);
    h.advance(2);
    assert_eq!(h.reg.shard().count(b"sip:alice@example.com", h.now), 0);
    assert!(matches!(h.events().as_slice(), [Event::Expired { .. }]));
    // A query now lists nothing.
    let a = h.send(&alice.register("")).unwrap();
    assert_eq!(a.code, 200);
    assert!(a.contacts().is_empty());
}

#[test]
fn wildcard_removes_every_binding_and_needs_expires_zero() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    let mut desk = Phone::new("alice", "wonderland", "192.0.2.45");
    for p in [&mut alice, &mut desk] {
        let contact = p.contact_header(None);
        assert_eq!(register_fresh(&mut h, p, &contact).code, 200);
    }
    assert_eq!(h.reg.shard().count(b"sip:alice@example.com", h.now), 2);
    let a = h.send(&alice.register("Contact: *\r\n")).unwrap();
    assert_eq!(
        (a.code, a.reason.as_str()),
        (400, "Wildcard Needs Expires 0")
    );
    let a = h
        .send(&alice.register("Contact: *\r\nExpires: 0\r\n"))
        .unwrap();
    assert_eq!(a.code, 200, "{}", a.text);
    assert!(a.contacts().is_empty());
    assert_eq!(h.reg.shard().count(b"sip:alice@example.com", h.now), 0);
    let a = h
        .send(&alice.register("Contact: *, <sip:a@b>\r\nExpires: 0\r\n"))
        .unwrap();
    assert_eq!(a.code, 400);
}

#[test]
fn expires_zero_removes_one_binding() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    let contact = alice.contact_header(None);
    assert_eq!(register_fresh(&mut h, &mut alice, &contact).code, 200);
    let a = h
        .send(&alice.register(&alice.contact_header(Some(0))))
        .unwrap();
    assert_eq!(a.code, 200);
    assert!(a.contacts().is_empty());
    let events = h.events();
    assert!(
        matches!(events.last(), Some(Event::Removed { .. })),
        "{events:?}"
    );
}

#[test]
fn several_devices_share_one_aor() {
    let mut h = Harness::default();
    let mut phones: Vec<Phone> = (1..=3)
        .map(|i| Phone::new("alice", "wonderland", &format!("192.0.2.{i}")))
        .collect();
    for p in &mut phones {
        let contact = p.contact_header(None);
        assert_eq!(register_fresh(&mut h, p, &contact).code, 200);
    }
    let a = h.send(&phones[0].register("")).unwrap();
    let mut contacts: Vec<String> = a.contacts().into_iter().map(|c| c.0).collect();
    contacts.sort();
    assert_eq!(
        contacts,
        [
            "sip:alice@192.0.2.1:5060",
            "sip:alice@192.0.2.2:5060",
            "sip:alice@192.0.2.3:5060"
        ]
    );
}

#[test]
fn rebooted_phone_replaces_its_binding_by_instance() {
    let mut h = Harness::default();
    let mut phone = Phone::new("alice", "wonderland", "192.0.2.44");
    phone.instance = Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>".into());
    let contact = phone.contact_header(None);
    assert_eq!(register_fresh(&mut h, &mut phone, &contact).code, 200);
    // After a reboot: new Call-ID, new address, same instance and reg-id.
    let mut rebooted = Phone::new("alice", "wonderland", "198.51.100.7");
    rebooted.instance = phone.instance.clone();
    let contact = rebooted.contact_header(None);
    let a = register_fresh(&mut h, &mut rebooted, &contact);
    assert_eq!(a.code, 200);
    assert_eq!(a.contacts().len(), 1, "{}", a.text);
    assert_eq!(a.contacts()[0].0, "sip:alice@198.51.100.7:5060");
    assert!(
        a.headers("Contact")[0].contains("+sip.instance="),
        "{}",
        a.text
    );
}

#[test]
fn contact_limit_under_both_policies() {
    for policy in [ContactPolicy::Reject, ContactPolicy::ReplaceOldest] {
        let mut config = Config::with_domains(&[DOMAIN.to_string()]);
        config.policy.max_contacts = 2;
        config.policy.contact_policy = policy;
        let mut h = Harness::new(config);
        let mut phones: Vec<Phone> = (1..=3)
            .map(|i| Phone::new("alice", "wonderland", &format!("192.0.2.{i}")))
            .collect();
        for p in phones.iter_mut().take(2) {
            let contact = p.contact_header(None);
            assert_eq!(register_fresh(&mut h, p, &contact).code, 200);
            h.advance(1);
        }
        let contact = phones[2].contact_header(None);
        let a = register_fresh(&mut h, &mut phones[2], &contact);
        let mut left: Vec<String> = h
            .reg
            .shard()
            .lookup(b"sip:alice@example.com", h.now)
            .map(|b| String::from_utf8_lossy(b.contact()).into_owned())
            .collect();
        left.sort();
        match policy {
            ContactPolicy::Reject => {
                assert_eq!(a.code, 503, "{}", a.text);
                assert_eq!(a.headers("Retry-After"), ["30"]);
                assert_eq!(
                    left,
                    ["sip:alice@192.0.2.1:5060", "sip:alice@192.0.2.2:5060"]
                );
            }
            ContactPolicy::ReplaceOldest => {
                assert_eq!(a.code, 200, "{}", a.text);
                assert_eq!(
                    left,
                    ["sip:alice@192.0.2.2:5060", "sip:alice@192.0.2.3:5060"]
                );
            }
        }
    }
}

#[test]
fn out_of_order_cseq_is_refused_and_a_retransmission_gets_the_same_answer() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    let contact = alice.contact_header(None);
    let first = register_fresh(&mut h, &mut alice, &contact);
    assert_eq!(first.code, 200);
    // The request just processed, again, byte for byte (same nonce-count too).
    alice.cseq -= 1;
    alice.nc -= 1;
    let again = h.send(&alice.register(&contact)).unwrap();
    assert_eq!(again.code, 200, "{}", again.text);
    assert_eq!(again.contacts(), first.contacts());
    // A lower CSeq on the same Call-ID with fresh credentials.
    alice.cseq -= 2;
    let a = h.send(&alice.register(&contact)).unwrap();
    assert_eq!((a.code, a.reason.as_str()), (400, "CSeq Out Of Order"));
}

#[test]
fn interval_too_brief() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    let contact = alice.contact_header(Some(30));
    let a = register_fresh(&mut h, &mut alice, &contact);
    assert_eq!(a.code, 423);
    assert_eq!(a.headers("Min-Expires"), ["60"]);
    // Above the maximum: clamped, not refused.
    let a = h
        .send(&alice.register(&alice.contact_header(Some(100_000))))
        .unwrap();
    assert_eq!(a.code, 200);
    assert_eq!(a.contacts()[0].1, 7200);
    // The Expires header applies when the contact has no parameter.
    let mut bob = Phone::new("bob", "builder", "192.0.2.50");
    let contact = bob.contact_header(None) + "Expires: 120\r\n";
    let a = register_fresh(&mut h, &mut bob, &contact);
    assert_eq!(a.contacts()[0].1, 120);
}

#[test]
fn someone_elses_aor_is_forbidden() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    let contact = alice.contact_header(None);
    let a = h.send(&alice.register_as("bob", &contact)).unwrap();
    alice.take_challenge(&a);
    let a = h.send(&alice.register_as("bob", &contact)).unwrap();
    assert_eq!(
        (a.code, a.reason.as_str()),
        (403, "Not Authorized For This AOR")
    );
    assert_eq!(h.reg.shard().count(b"sip:bob@example.com", h.now), 0);
}

#[test]
fn the_aor_domain_matches_in_any_case_but_not_by_prefix() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    let contact = alice.contact_header(None);
    let a = h.send(&alice.register(&contact)).unwrap();
    alice.take_challenge(&a);
    let with_to_host = |msg: Vec<u8>, host: &str| {
        let text = String::from_utf8(msg).unwrap();
        let to = format!("To: <sip:alice@{host}>");
        text.replacen(&format!("To: <sip:alice@{DOMAIN}>"), &to, 1)
            .into_bytes()
    };
    // RFC 3261 19.1.4: the host part compares case-insensitively.
    let a = h
        .send(&with_to_host(alice.register(&contact), "EXAMPLE.Com"))
        .unwrap();
    assert_eq!(a.code, 200, "{}", a.text);
    assert_eq!(h.reg.shard().count(b"sip:alice@example.com", h.now), 1);
    for other in ["example.co", "example.comm", "xample.com"] {
        let a = h
            .send(&with_to_host(alice.register(&contact), other))
            .unwrap();
        assert_eq!(
            (a.code, a.reason.as_str()),
            (403, "Not Authorized For This AOR"),
            "{other}"
        );
    }
}

#[test]
fn other_domains_are_not_served() {
    let mut h = Harness::default();
    let msg =
        b"REGISTER sip:elsewhere.net SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
From: <sip:a@elsewhere.net>;tag=1\r\nTo: <sip:a@elsewhere.net>\r\nCall-ID: x\r\n\
CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
    let a = h.send(msg).unwrap();
    assert_eq!((a.code, a.reason.as_str()), (404, "Domain Not Served"));
}

#[test]
fn options_is_answered() {
    let mut h = Harness::default();
    let msg = b"OPTIONS sip:192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
From: <sip:ping@example.com>;tag=1\r\nTo: <sip:192.0.2.10>\r\nCall-ID: ping\r\n\
CSeq: 1 OPTIONS\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n\r\n";
    let a = h.send(msg).unwrap();
    assert_eq!(a.code, 200);
    assert_eq!(a.headers("Allow"), ["REGISTER, OPTIONS"]);
}

// RFC 4475 registrar cases, submitted with valid credentials where the case is about what gets
// bound (the vectors themselves carry none).

fn torture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/rfc4475")
        .join(format!("{name}.dat"));
    std::fs::read(path).unwrap()
}

/// Inserts an Authorization line after the request line of a torture message.
fn with_credentials(msg: &[u8], user: &str, nonce: &str) -> Vec<u8> {
    let line_end = msg.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut out = msg[..line_end].to_vec();
    let escaped = user.replace('\0', "\\\0");
    let auth = authorization(user, "secret", nonce, 1, Algorithm::Md5, "REGISTER").replacen(
        &format!("username=\"{user}\""),
        &format!("username=\"{escaped}\""),
        1,
    );
    out.extend_from_slice(auth.as_bytes());
    out.extend_from_slice(&msg[line_end..]);
    out
}

fn register_torture(h: &mut Harness, name: &str, user: &str) -> Answer {
    let msg = torture(name);
    let a = h.send(&msg).unwrap();
    assert_eq!(a.code, 401, "{name}: {}", a.text);
    let nonce = a.nonce();
    h.send(&with_credentials(&msg, user, &nonce)).unwrap()
}

#[test]
fn rfc4475_escnull_binds_two_contacts_to_the_whole_aor() {
    let mut h = Harness::default();
    let a = register_torture(&mut h, "escnull", "null-\0-null");
    assert_eq!(a.code, 200, "{}", a.text);
    let mut contacts: Vec<String> = a.contacts().into_iter().map(|c| c.0).collect();
    contacts.sort();
    assert_eq!(
        contacts,
        ["sip:%00%00@host5.example.com", "sip:%00@host5.example.com"]
    );
    assert_eq!(
        h.reg.shard().count(b"sip:null-\0-null@example.com", h.now),
        2
    );
    assert_eq!(h.reg.shard().count(b"sip:null-@example.com", h.now), 0);
}

#[test]
fn rfc4475_dblreq_registers_and_ignores_the_invite() {
    let mut h = Harness::default();
    let a = register_torture(&mut h, "dblreq", "j.user");
    assert_eq!(a.code, 200, "{}", a.text);
    assert_eq!(a.contacts()[0].0, "sip:j.user@host.example.com");
}

#[test]
fn rfc4475_cparam01_and_cparam02_keep_parameters_where_they_were() {
    let mut h = Harness::default();
    let a = register_torture(&mut h, "cparam01", "watson");
    assert_eq!(a.code, 200, "{}", a.text);
    assert!(
        a.headers("Contact")[0]
            .starts_with("<sip:+19725552222@gw1.example.net>;unknownparam;expires="),
        "{}",
        a.text
    );
    let mut h = Harness::default();
    let a = register_torture(&mut h, "cparam02", "watson");
    assert_eq!(a.code, 200, "{}", a.text);
    assert!(
        a.headers("Contact")[0]
            .starts_with("<sip:+19725552222@gw1.example.net;unknownparam>;expires="),
        "{}",
        a.text
    );
}

#[test]
fn rfc4475_regescrt_keeps_the_escaped_header_in_the_binding() {
    let mut h = Harness::default();
    let a = register_torture(&mut h, "regescrt", "user");
    assert_eq!(a.code, 200, "{}", a.text);
    assert_eq!(
        a.contacts()[0].0,
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    );
}

#[test]
fn rfc4475_registrar_rejections() {
    let mut h = Harness::default();
    let a = h.send(&torture("unksm2")).unwrap();
    assert_eq!((a.code, a.reason.as_str()), (400, "To Is Not A SIP URI"));
    let a = h.send(&torture("scalar02")).unwrap();
    assert_eq!(a.code, 400);
    // An unknown scheme earns a fresh Digest challenge.
    let a = h.send(&torture("regaut01")).unwrap();
    assert_eq!(a.code, 401);
    assert!(a.headers("WWW-Authenticate")[0].starts_with("Digest "));
}

#[test]
fn path_is_stored_and_echoed_when_supported() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    let extra =
        alice.contact_header(None) + "Path: <sip:edge1.example.net;lr>\r\nSupported: path\r\n";
    let a = register_fresh(&mut h, &mut alice, &extra);
    assert_eq!(a.code, 200, "{}", a.text);
    assert_eq!(a.headers("Path"), ["<sip:edge1.example.net;lr>"]);
    let b: Vec<_> = h
        .reg
        .shard()
        .lookup(b"sip:alice@example.com", h.now)
        .collect();
    assert_eq!(b[0].path().count(), 1);
}

#[test]
fn malformed_contacts_get_400_before_any_challenge() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    for (contact, reason) in [
        ("Contact: *\r\nContact: <sip:a@b>\r\n", "Bad Contact"),
        ("Contact: <sip:a@b>;q=2\r\n", "Bad Contact"),
        ("Contact: sip:a@b?Route=x\r\n", "Bad Contact"),
    ] {
        let a = h.send(&alice.register(contact)).unwrap();
        assert_eq!((a.code, a.reason.as_str()), (400, reason), "{contact}");
    }
    let many: String = (0..17)
        .map(|i| format!("Contact: <sip:a@192.0.2.{i}>\r\n"))
        .collect();
    let a = h.send(&alice.register(&many)).unwrap();
    assert_eq!((a.code, a.reason.as_str()), (400, "Too Many Contacts"));
}

#[test]
fn one_contact_in_two_spellings_is_one_binding() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "phone.example.net");
    let contacts = "Contact: <sip:alice@phone.example.net:5060>\r\n\
                    Contact: <sip:alice@PHONE.EXAMPLE.NET:5060>;expires=200\r\n";
    let a = register_fresh(&mut h, &mut alice, contacts);
    assert_eq!(a.code, 200, "{}", a.text);
    // RFC 3261 19.1.4: host names compare case-insensitively; the first spelling wins.
    assert_eq!(
        a.contacts(),
        [("sip:alice@phone.example.net:5060".to_string(), 3600)]
    );
    assert_eq!(h.reg.shard().count(b"sip:alice@example.com", h.now), 1);
}

#[test]
fn replace_oldest_never_exceeds_the_limit_with_refreshes() {
    let mut config = Config::with_domains(&[DOMAIN.to_string()]);
    config.policy.max_contacts = 1;
    config.policy.contact_policy = ContactPolicy::ReplaceOldest;
    let mut h = Harness::new(config);
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.1");
    let contact = alice.contact_header(None);
    assert_eq!(register_fresh(&mut h, &mut alice, &contact).code, 200);
    // A refresh of the stored binding plus a new one: two kept by this request, limit one.
    let both = contact + "Contact: <sip:alice@192.0.2.2:5060>\r\n";
    let a = h.send(&alice.register(&both)).unwrap();
    assert_eq!(a.code, 503, "{}", a.text);
    assert_eq!(h.reg.shard().count(b"sip:alice@example.com", h.now), 1);
}

/// Framing starts with room for a usual number of header lines and takes the full room only
/// when a message needs it: a long REGISTER registers all the same, with its Contact found among
/// the lines past that first room, and only one beyond the limit is refused.
#[test]
fn long_registers_are_served_up_to_the_header_limit() {
    let mut h = Harness::default();
    let mut alice = Phone::new("alice", "wonderland", "192.0.2.44");
    let padding =
        |n: usize| -> String { (0..n).map(|i| format!("X-Padding-{i}: {i}\r\n")).collect() };
    // 6 lines from the phone, the padding, the Contact, Authorization and Content-Length: 64.
    let at_limit = padding(55) + &alice.contact_header(None);
    let a = register_fresh(&mut h, &mut alice, &at_limit);
    assert_eq!(a.code, 200, "{}", a.text);
    assert_eq!(
        a.contacts(),
        [("sip:alice@192.0.2.44:5060".to_string(), 3600)]
    );
    let over = padding(56) + &alice.contact_header(None);
    let a = h.send(&alice.register(&over)).unwrap();
    assert_eq!((a.code, a.reason.as_str()), (400, "Too Many Headers"));
}
