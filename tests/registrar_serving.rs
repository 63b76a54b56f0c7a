//! What the registrar does for the server around it, on a virtual clock: bindings learnt over a
//! TCP connection when it closes (unreachable or removed), the 503 a saturated worker sends,
//! a policy reload, and nonces that differ between workers sharing one key.

use std::net::SocketAddr;

use sipreg::auth::{Algorithm, Ha1, compute_response};
use sipreg::location::Event;
use sipreg::registrar::{Config, FlowClose, Peer, Registrar, reachable};
use sipreg::sip::{self, Credentials, Header, Limits, Message, Transport};

const DOMAIN: &str = "example.com";
const T0: u64 = 1_790_000_000_000;

fn registrar(flow_close: FlowClose) -> Registrar {
    let mut config = Config::with_domains(&[DOMAIN.to_string()]);
    config.policy.flow_close = flow_close;
    let mut reg = Registrar::new(config, [7; 32]);
    for user in ["alice", "bob"] {
        reg.users_mut().insert(
            user.as_bytes(),
            DOMAIN.as_bytes(),
            Ha1::from_password(Algorithm::Md5, user.as_bytes(), DOMAIN.as_bytes(), b"pw"),
        );
    }
    reg
}

fn peer(connection: Option<u64>) -> Peer {
    Peer {
        source: "192.0.2.9:40000".parse::<SocketAddr>().unwrap(),
        transport: if connection.is_some() {
            Transport::Tcp
        } else {
            Transport::Udp
        },
        connection,
        local: None,
    }
}

/// Sends `bytes` and returns the status code and the text of the answer.
fn send(reg: &mut Registrar, now: u64, p: Peer, bytes: &[u8]) -> Option<(u16, String)> {
    let mut out = [0u8; 8192];
    let n = reg.handle(now, p, bytes, &mut out)?;
    let text = String::from_utf8(out[..n].to_vec()).unwrap();
    let mut storage = [Header::EMPTY; 64];
    let Ok(Message::Response(r)) =
        sip::parse_datagram(text.as_bytes(), &mut storage, &Limits::default())
    else {
        panic!("unparseable answer {text}")
    };
    Some((r.code, text))
}

fn request(user: &str, contact: &str, cseq: u32, auth: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/TCP 192.0.2.9:40000;branch=z9hG4bK-{user}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{DOMAIN}>;tag=f{cseq}\r\n\
         To: <sip:{user}@{DOMAIN}>\r\n\
         Call-ID: {user}-call\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <{contact}>\r\n{auth}\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn nonce_of(text: &str) -> String {
    let start = text.find("nonce=\"").expect("a challenge") + 7;
    let end = start + text[start..].find('"').unwrap();
    text[start..end].to_string()
}

fn authorization(user: &str, nonce: &str) -> String {
    let template = format!(
        "Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"sip:{DOMAIN}\", \
         algorithm=MD5, cnonce=\"abc\", qop=auth, nc=00000001"
    );
    let Some(Credentials::Digest(d)) = Credentials::parse(template.as_bytes()) else {
        panic!("client header must parse")
    };
    let ha1 = Ha1::from_password(Algorithm::Md5, user.as_bytes(), DOMAIN.as_bytes(), b"pw");
    let response = compute_response(&ha1, b"REGISTER", &d, b"").unwrap();
    format!("Authorization: {template}, response=\"{response}\"\r\n")
}

/// Registers `contact` for `user` over `p` through the challenge.
fn register(reg: &mut Registrar, now: u64, p: Peer, user: &str, contact: &str, cseq: u32) {
    let (code, text) = send(reg, now, p, &request(user, contact, cseq, "")).unwrap();
    assert_eq!(code, 401, "{text}");
    let auth = authorization(user, &nonce_of(&text));
    let (code, text) = send(reg, now, p, &request(user, contact, cseq + 1, &auth)).unwrap();
    assert_eq!(code, 200, "{text}");
    // The shell drains events after every message; the registrar notes flows on the way.
    while reg.poll_event().is_some() {}
}

/// (contact, connection, reachable) of every binding of `user`.
fn bindings(reg: &Registrar, user: &str, now: u64) -> Vec<(String, Option<u64>, bool)> {
    let aor = format!("sip:{user}@{DOMAIN}");
    reg.shard()
        .lookup(aor.as_bytes(), now)
        .map(|b| {
            (
                String::from_utf8_lossy(b.contact()).into_owned(),
                b.connection(),
                reachable(b),
            )
        })
        .collect()
}

#[test]
fn a_closed_connection_leaves_its_bindings_unreachable_by_default() {
    let mut reg = registrar(FlowClose::default());
    register(
        &mut reg,
        T0,
        peer(Some(11)),
        "alice",
        "sip:alice@10.0.0.1:5060;transport=tcp",
        1,
    );
    register(
        &mut reg,
        T0,
        peer(None),
        "alice",
        "sip:alice@10.0.0.2:5060",
        10,
    );
    register(
        &mut reg,
        T0,
        peer(Some(12)),
        "bob",
        "sip:bob@10.0.0.3:5060;transport=tcp",
        1,
    );
    assert_eq!(reg.connection_closed(T0 + 1000, 11), 1);
    let mut events = std::iter::from_fn(|| reg.poll_event());
    assert!(matches!(events.next(), Some(Event::Refreshed { .. })));
    let mut alice = bindings(&reg, "alice", T0 + 1000);
    alice.sort();
    assert_eq!(
        alice,
        [
            (
                "sip:alice@10.0.0.1:5060;transport=tcp".to_string(),
                None,
                false
            ),
            ("sip:alice@10.0.0.2:5060".to_string(), None, true),
        ]
    );
    // Bob's connection is another one.
    assert_eq!(bindings(&reg, "bob", T0 + 1000)[0].1, Some(12));
    // Once told, a second close of the same connection finds nothing.
    assert_eq!(reg.connection_closed(T0 + 2000, 11), 0);
    // The phone reconnects and refreshes: reachable again over the new connection.
    register(
        &mut reg,
        T0 + 3000,
        peer(Some(13)),
        "alice",
        "sip:alice@10.0.0.1:5060;transport=tcp",
        20,
    );
    assert!(bindings(&reg, "alice", T0 + 3000).iter().all(|b| b.2));
}

#[test]
fn the_remove_policy_deletes_them() {
    let mut reg = registrar(FlowClose::Remove);
    register(
        &mut reg,
        T0,
        peer(Some(5)),
        "alice",
        "sip:alice@10.0.0.1:5060;transport=tcp",
        1,
    );
    // The binding moves to another connection before the first one closes: not affected.
    register(
        &mut reg,
        T0,
        peer(Some(6)),
        "bob",
        "sip:bob@10.0.0.3:5060;transport=tcp",
        1,
    );
    register(
        &mut reg,
        T0 + 10,
        peer(Some(7)),
        "bob",
        "sip:bob@10.0.0.3:5060;transport=tcp",
        5,
    );
    assert_eq!(reg.connection_closed(T0 + 1000, 5), 1);
    assert!(matches!(reg.poll_event(), Some(Event::Removed { .. })));
    assert!(bindings(&reg, "alice", T0 + 1000).is_empty());
    assert_eq!(reg.connection_closed(T0 + 1000, 6), 0);
    assert_eq!(bindings(&reg, "bob", T0 + 1000).len(), 1);
}

#[test]
fn a_saturated_worker_answers_503_with_retry_after() {
    let reg = registrar(FlowClose::default());
    let mut out = [0u8; 4096];
    let bytes = request("alice", "sip:alice@10.0.0.1", 1, "");
    let n = reg.overloaded(peer(None), &bytes, &mut out).unwrap();
    let text = std::str::from_utf8(&out[..n]).unwrap();
    assert!(
        text.starts_with("SIP/2.0 503 Service Unavailable\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nRetry-After: 5\r\n"), "{text}");
    assert!(text.contains("\r\nCall-ID: alice-call\r\n"), "{text}");
    // A malformed request keeps its own rejection; a response gets nothing.
    let n = reg
        .overloaded(
            peer(None),
            b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
            &mut out,
        )
        .unwrap();
    assert!(out[..n].starts_with(b"SIP/2.0 400 "));
    assert_eq!(
        reg.overloaded(
            peer(None),
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n",
            &mut out
        ),
        None
    );
}

#[test]
fn a_policy_reload_applies_to_the_next_register_and_keeps_bindings() {
    let mut reg = registrar(FlowClose::default());
    register(&mut reg, T0, peer(None), "alice", "sip:alice@10.0.0.1", 1);
    let mut policy = reg.config().policy.clone();
    policy.min_expires = 1000;
    policy.max_expires = 8000;
    policy.default_expires = 5000;
    reg.set_policy(policy);
    assert_eq!(bindings(&reg, "alice", T0).len(), 1);
    let bytes = request("bob", "sip:bob@10.0.0.2", 1, "Expires: 600\r\n");
    let (code, text) = send(&mut reg, T0, peer(None), &bytes).unwrap();
    assert_eq!(code, 401, "{text}");
    let auth = authorization("bob", &nonce_of(&text));
    let auth = format!("Expires: 600\r\n{auth}");
    let bytes = request("bob", "sip:bob@10.0.0.2", 2, &auth);
    let (code, text) = send(&mut reg, T0, peer(None), &bytes).unwrap();
    assert_eq!(code, 423, "{text}");
    assert!(text.contains("\r\nMin-Expires: 1000\r\n"), "{text}");
}

#[test]
fn workers_sharing_a_key_issue_different_nonces() {
    let mut a = registrar(FlowClose::default());
    let mut b = registrar(FlowClose::default());
    a.set_worker(0);
    b.set_worker(1);
    let bytes = request("alice", "sip:alice@10.0.0.1", 1, "");
    let (_, ta) = send(&mut a, T0, peer(None), &bytes).unwrap();
    let (_, tb) = send(&mut b, T0, peer(None), &bytes).unwrap();
    assert_ne!(nonce_of(&ta), nonce_of(&tb));
    // Each worker's nonce is good on the other (one key): a phone may move between them.
    let auth = authorization("alice", &nonce_of(&ta));
    let (code, text) = send(
        &mut b,
        T0,
        peer(None),
        &request("alice", "sip:alice@10.0.0.1", 2, &auth),
    )
    .unwrap();
    assert_eq!(code, 200, "{text}");
}

#[test]
fn a_register_for_another_workers_aor_is_verified_here_and_finished_by_the_owner() {
    use sipreg::location::shard_of;
    use sipreg::registrar::Received;
    let mut workers = [
        registrar(FlowClose::default()),
        registrar(FlowClose::default()),
    ];
    for (i, w) in workers.iter_mut().enumerate() {
        w.set_worker(i);
    }
    let owner = shard_of(format!("sip:alice@{DOMAIN}").as_bytes(), 2);
    let other = 1 - owner;
    let mut out = [0u8; 8192];
    let contact = "sip:alice@10.0.0.1";
    // The challenge needs no shard: the receiving worker answers it.
    let first = request("alice", contact, 1, "");
    let Received::Answered(Some(n)) =
        workers[other].receive(T0, peer(None), &first, &mut out, other, 2)
    else {
        panic!("a 401 from the receiving worker")
    };
    let text = String::from_utf8_lossy(&out[..n]).into_owned();
    assert!(text.starts_with("SIP/2.0 401 "), "{text}");
    // A right digest goes to the owner with its ticket; the owner answers 200 and stores it.
    let second = request(
        "alice",
        contact,
        2,
        &authorization("alice", &nonce_of(&text)),
    );
    let Received::Owner { shard, ticket } =
        workers[other].receive(T0, peer(None), &second, &mut out, other, 2)
    else {
        panic!("handed to the owner")
    };
    assert_eq!(shard, owner);
    let n = workers[owner]
        .own(T0, peer(None), &second, ticket, &mut out)
        .unwrap();
    assert!(out[..n].starts_with(b"SIP/2.0 200 "));
    assert_eq!(bindings(&workers[owner], "alice", T0).len(), 1);
    assert!(bindings(&workers[other], "alice", T0).is_empty());
    // The same bytes again (a retransmission): the owner's nonce-count sees nc reused and
    // answers it as the retransmission it is.
    let Received::Owner { ticket, .. } =
        workers[other].receive(T0, peer(None), &second, &mut out, other, 2)
    else {
        panic!("handed to the owner")
    };
    let n = workers[owner]
        .own(T0, peer(None), &second, ticket, &mut out)
        .unwrap();
    assert!(out[..n].starts_with(b"SIP/2.0 200 "));
    // The same credentials on a new request: a replay, challenged.
    let replay = request(
        "alice",
        contact,
        3,
        &authorization("alice", &nonce_of(&text)),
    );
    let Received::Owner { ticket, .. } =
        workers[other].receive(T0, peer(None), &replay, &mut out, other, 2)
    else {
        panic!("handed to the owner")
    };
    let n = workers[owner]
        .own(T0, peer(None), &replay, ticket, &mut out)
        .unwrap();
    assert!(out[..n].starts_with(b"SIP/2.0 401 "));
    // A wrong password never leaves the receiving worker.
    let mut bad = authorization("alice", &nonce_of(&text));
    bad = bad.replace("response=\"", "response=\"0");
    let wrong = request("alice", contact, 4, &bad);
    assert!(matches!(
        workers[other].receive(T0, peer(None), &wrong, &mut out, other, 2),
        Received::Answered(Some(_))
    ));
}

#[test]
fn with_authentication_off_a_register_binds_at_once() {
    let mut config = Config::with_domains(&[DOMAIN.to_string()]);
    config.auth.required = false;
    let mut reg = Registrar::new(config, [7; 32]);
    // No credentials, and no user table: 200 straight away, for any AOR of the domain.
    for (user, cseq) in [("carol", 1), ("carol", 2), ("dave", 1)] {
        let (code, text) = send(
            &mut reg,
            T0,
            peer(None),
            &request(user, "sip:x@10.0.0.9", cseq, ""),
        )
        .unwrap();
        assert_eq!(code, 200, "{text}");
    }
    assert_eq!(bindings(&reg, "carol", T0).len(), 1);
    assert_eq!(bindings(&reg, "dave", T0).len(), 1);
    // The CSeq rules still hold: an old CSeq on the same Call-ID is refused.
    let (code, _) = send(
        &mut reg,
        T0,
        peer(None),
        &request("carol", "sip:x@10.0.0.9", 1, ""),
    )
    .unwrap();
    assert_ne!(code, 200);
}
