//! A property test of the registrar element against a plain model of RFC 3261 10.3.
//!
//! Arbitrary sequences of operations run against one [`Registrar`] on a virtual clock: REGISTERs
//! from three users with four phones each (own Call-ID, rising CSeq, own contact URI, some with
//! `+sip.instance`), carrying zero to three contacts with per-contact `expires`, an Expires
//! header or neither; `Contact: *`; queries; clock jumps of up to 10,000 seconds; wrong
//! passwords, replayed nonce-counts, out-of-order CSeqs, retransmissions, reboots and REGISTERs
//! for another user's AOR. Phones get their nonces from 401s as real ones do: send, read the
//! challenge, resend with credentials; reuse the nonce with a rising nonce-count; fetch a new one
//! on `stale=true`.
//!
//! After every step:
//! 1. no expired binding is returned: every Contact of a 200 has `0 < expires <= max_expires`,
//!    and `Shard::lookup` yields only bindings with `expires_at > now`;
//! 2. no AOR has more than `max_contacts` live bindings;
//! 3. the store agrees with [`Model`], which implements RFC 3261 10.3 steps 3 to 8 and the
//!    registrar's stated policies plainly: the same contacts with the same expiry, Call-ID and
//!    CSeq; every answer is the one the model expects (a 200 lists the model's live contacts
//!    with their remaining seconds rounded up, in routing order; 401, 403, 400, 423 and 503 come
//!    exactly when the model says);
//! 4. the events drained with `poll_event` replay into the same table, and `tick` leaves no
//!    binding that is due.
//!
//! Where RFC 3261 leaves the registrar a choice, the model takes the one the registrar documents:
//! 423 below `min_expires`, the granted expiry lowered to `max_expires`, a `+sip.instance`
//! matching before the contact URI (RFC 5626), an equivalent contact twice in one request
//! counting once, a request with a used nonce-count or a repeated CSeq answered as a
//! retransmission when a binding carries its Call-ID and CSeq, and the contact limit under both
//! `ContactPolicy` values. Under `ReplaceOldest` a request that itself keeps more bindings than
//! the limit leaves nothing to replace, so the model expects 503, as for too many new contacts.
//!
//! It does not cover parsing (`tests/proptest_sip.rs`), Path, q-values or transports other than
//! UDP. `PROPTEST_CASES=N` runs more cases.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sipreg::auth::{Algorithm, Ha1, compute_response};
use sipreg::location::{Binding, Event};
use sipreg::registrar::{Config, ContactPolicy, Peer, Registrar};
use sipreg::sip::{self, Contacts, Credentials, Header, Limits, Message, Transport};

const DOMAIN: &str = "example.com";
const T0: u64 = 1_790_000_000_000;
const USERS: [(&str, &str); 3] = [
    ("alice", "wonderland"),
    ("bob", "builder"),
    ("carol", "secret"),
];
const DEVICES: usize = 4;
const MIN_EXPIRES: u32 = 60;
const MAX_EXPIRES: u32 = 7200;
const DEFAULT_EXPIRES: u32 = 3600;
const NONCE_LIFETIME: u64 = 3600;
const RETRY_AFTER: u32 = 30;

type Result<T = ()> = core::result::Result<T, TestCaseError>;

fn aor_of(user: usize) -> String {
    format!("sip:{}@{DOMAIN}", USERS[user].0)
}

// ---------------------------------------------------------------------------------------------
// What is generated.

/// One Contact of a REGISTER: the current contact URI of one of the user's phones.
#[derive(Clone, Debug)]
struct ContactSpec {
    device: usize,
    /// Write the host in capitals: an equivalent URI (RFC 3261 19.1.4), spelled differently.
    shout: bool,
    expires: Option<u32>,
}

#[derive(Clone, Debug)]
enum Body {
    /// Zero contacts is a query.
    Bind {
        contacts: Vec<ContactSpec>,
        expires: Option<u32>,
        /// All contacts in one header field, comma-separated.
        one_line: bool,
    },
    /// `Contact: *`, with `Expires: 0` as required or (rarely) something else.
    Wildcard { expires: Option<u32> },
}

#[derive(Clone, Debug)]
enum Twist {
    /// What a phone does.
    None,
    WrongPassword,
    /// A new request reusing a nonce-count already accepted (`back` below the highest).
    ReplayNc {
        back: u32,
    },
    /// CSeq `back` below the phone's last (0: the same number again), valid credentials.
    OldCSeq {
        back: u32,
    },
    /// The phone's own credentials for another user's AOR (`user` is an offset, 1 or 2).
    OtherAor {
        user: usize,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Send {
        user: usize,
        device: usize,
        body: Body,
        twist: Twist,
    },
    /// The phone's last request again, byte for byte.
    Retransmit { user: usize, device: usize },
    /// New Call-ID, CSeq from 1, new contact address, no nonce; same `+sip.instance`.
    Reboot { user: usize, device: usize },
    /// The clock moves; `tick` is whether the shell runs expiry now.
    Advance { ms: u64, tick: bool },
}

#[derive(Clone, Debug)]
struct Setup {
    max_contacts: usize,
    policy: ContactPolicy,
    /// Per phone (user * DEVICES + device): whether it sends `+sip.instance`.
    instance: Vec<bool>,
    /// Per phone: index into `Algorithm::ALL`.
    algorithm: Vec<usize>,
}

fn expires_value() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => Just(0u32),
        1 => 1..MIN_EXPIRES,
        1 => Just(MIN_EXPIRES - 1),
        1 => Just(MIN_EXPIRES),
        4 => MIN_EXPIRES..=MAX_EXPIRES,
        1 => Just(DEFAULT_EXPIRES),
        1 => Just(MAX_EXPIRES),
        1 => MAX_EXPIRES + 1..=100_000,
        1 => Just(u32::MAX),
    ]
}

fn maybe_expires() -> impl Strategy<Value = Option<u32>> {
    prop::option::weighted(0.5, expires_value())
}

fn contact_spec() -> impl Strategy<Value = ContactSpec> {
    (0..DEVICES, prop::bool::weighted(0.15), maybe_expires()).prop_map(
        |(device, shout, expires)| ContactSpec {
            device,
            shout,
            expires,
        },
    )
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        10 => (
            prop::collection::vec(contact_spec(), 0..=3),
            maybe_expires(),
            any::<bool>()
        )
            .prop_map(|(contacts, expires, one_line)| Body::Bind {
                contacts,
                expires,
                one_line,
            }),
        1 => prop_oneof![4 => Just(Some(0u32)), 1 => maybe_expires()]
            .prop_map(|expires| Body::Wildcard { expires }),
    ]
}

fn twist() -> impl Strategy<Value = Twist> {
    prop_oneof![
        16 => Just(Twist::None),
        1 => Just(Twist::WrongPassword),
        1 => (0..=1u32).prop_map(|back| Twist::ReplayNc { back }),
        3 => (0..=2u32).prop_map(|back| Twist::OldCSeq { back }),
        1 => (1..=2usize).prop_map(|user| Twist::OtherAor { user }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let phone = (0..USERS.len(), 0..DEVICES);
    prop_oneof![
        12 => (phone.clone(), body(), twist()).prop_map(|((user, device), body, twist)| {
            Op::Send {
                user,
                device,
                body,
                twist,
            }
        }),
        1 => phone
            .clone()
            .prop_map(|(user, device)| Op::Retransmit { user, device }),
        1 => phone.prop_map(|(user, device)| Op::Reboot { user, device }),
        5 => (
            prop_oneof![
                2 => (0..=120u64).prop_map(|s| s * 1000),
                2 => (0..=10_000u64).prop_map(|s| s * 1000),
                1 => 0..=10_000_000u64,
            ],
            prop::bool::weighted(0.8)
        )
            .prop_map(|(ms, tick)| Op::Advance { ms, tick }),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    let phones = USERS.len() * DEVICES;
    (
        1..=3usize,
        prop_oneof![
            Just(ContactPolicy::Reject),
            Just(ContactPolicy::ReplaceOldest)
        ],
        prop::collection::vec(any::<bool>(), phones),
        prop::collection::vec(0..Algorithm::ALL.len(), phones),
    )
        .prop_map(|(max_contacts, policy, instance, algorithm)| Setup {
            max_contacts,
            policy,
            instance,
            algorithm,
        })
}

// ---------------------------------------------------------------------------------------------
// Requests, as phones build them.

#[derive(Clone, Debug)]
struct ContactLine {
    uri: String,
    /// Equal keys are equivalent URIs: the generated URIs differ at most in the case of the host.
    key: String,
    /// `+sip.instance` without its quotes, as the store keeps it; sent with `reg-id=1`.
    instance: Option<String>,
    expires: Option<u32>,
}

#[derive(Clone, Debug)]
enum ContactField {
    Absent,
    Wildcard,
    List(Vec<ContactLine>),
}

#[derive(Clone, Debug)]
struct DigestAuth {
    nonce: String,
    nc: u32,
    password: String,
    right: bool,
    algorithm: Algorithm,
}

/// One REGISTER, described; [`Request::bytes`] writes it the same way every time.
#[derive(Clone, Debug)]
struct Request {
    owner: usize,
    device: usize,
    aor_user: usize,
    call_id: String,
    cseq: u32,
    auth: Option<DigestAuth>,
    contacts: ContactField,
    expires: Option<u32>,
    one_line: bool,
}

impl Request {
    fn bytes(&self) -> Vec<u8> {
        let user = USERS[self.owner].0;
        let aor_user = USERS[self.aor_user].0;
        let mut msg = format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {};branch=z9hG4bK-{}-{};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{aor_user}@{DOMAIN}>;tag=ft{}\r\n\
             To: <sip:{aor_user}@{DOMAIN}>\r\n\
             Call-ID: {}\r\n\
             CSeq: {} REGISTER\r\n",
            source(self.owner, self.device),
            self.call_id.replace('@', "."),
            self.cseq,
            self.cseq,
            self.call_id,
            self.cseq,
        );
        match &self.contacts {
            ContactField::Absent => {}
            ContactField::Wildcard => msg.push_str("Contact: *\r\n"),
            ContactField::List(list) => {
                let values: Vec<String> = list.iter().map(ContactLine::value).collect();
                if self.one_line {
                    let _ = write!(msg, "Contact: {}\r\n", values.join(", "));
                } else {
                    for v in values {
                        let _ = write!(msg, "Contact: {v}\r\n");
                    }
                }
            }
        }
        if let Some(e) = self.expires {
            let _ = write!(msg, "Expires: {e}\r\n");
        }
        if let Some(a) = &self.auth {
            msg.push_str(&authorization(
                user,
                &a.password,
                &a.nonce,
                a.nc,
                a.algorithm,
            ));
        }
        msg.push_str("Content-Length: 0\r\n\r\n");
        msg.into_bytes()
    }
}

impl ContactLine {
    fn value(&self) -> String {
        let mut v = format!("<{}>", self.uri);
        if let Some(i) = &self.instance {
            let _ = write!(v, ";+sip.instance=\"{i}\";reg-id=1");
        }
        if let Some(e) = self.expires {
            let _ = write!(v, ";expires={e}");
        }
        v
    }
}

/// An Authorization header line as a client computes it (as in `tests/registrar_scenarios.rs`).
fn authorization(user: &str, password: &str, nonce: &str, nc: u32, alg: Algorithm) -> String {
    let template = format!(
        "Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"sip:{DOMAIN}\", \
         algorithm={}, cnonce=\"c0ffee\", qop=auth, nc={nc:08x}",
        alg.name()
    );
    let Some(Credentials::Digest(d)) = Credentials::parse(template.as_bytes()) else {
        panic!("the client's own header must parse: {template}")
    };
    let ha1 = Ha1::from_password(alg, user.as_bytes(), DOMAIN.as_bytes(), password.as_bytes());
    let response = compute_response(&ha1, b"REGISTER", &d, b"")
        .expect("qop=auth with cnonce and nc always yields a response");
    format!("Authorization: {template}, response=\"{response}\"\r\n")
}

fn source(user: usize, device: usize) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, (10 * user + device + 1) as u8], 5062))
}

/// A phone's state: what it sends next.
#[derive(Clone, Debug, Default)]
struct Phone {
    generation: u32,
    cseq: u32,
    nonce: Option<String>,
    nc: u32,
    last: Option<Request>,
}

// ---------------------------------------------------------------------------------------------
// The model.

#[derive(Clone, Debug)]
struct ModelBinding {
    key: String,
    uri: String,
    instance: Option<String>,
    expires_at: u64,
    call_id: String,
    cseq: u32,
    updated_at: u64,
    /// Order of the last insert or refresh: of two bindings updated in the same millisecond, the
    /// later one routes first (the shard's order), and so is the one kept by ReplaceOldest.
    placed: u64,
}

#[derive(Clone, Copy, Debug)]
struct NonceState {
    issued_s: u64,
    /// Highest nonce-count accepted; 0 while none has been.
    highest: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Challenge { stale: bool },
    Ok(Vec<(String, u32)>),
    Fail(u16, &'static str),
}

/// One change a REGISTER asks for: indices into the bindings before the request (routing order)
/// and into the request's contacts.
enum Plan {
    Insert(usize),
    Refresh(usize, usize),
    Remove(usize),
}

/// RFC 3261 10.3, written down plainly, plus the registrar's stated policies.
struct Model {
    max_contacts: usize,
    policy: ContactPolicy,
    aors: BTreeMap<String, Vec<ModelBinding>>,
    nonces: HashMap<String, NonceState>,
    placed: u64,
}

impl Model {
    fn new(setup: &Setup) -> Model {
        Model {
            max_contacts: setup.max_contacts,
            policy: setup.policy,
            aors: BTreeMap::new(),
            nonces: HashMap::new(),
            placed: 0,
        }
    }

    /// Live bindings of `aor` in routing order: most recently updated first (all q are 1.0).
    fn live(&self, aor: &str, now: u64) -> Vec<&ModelBinding> {
        let mut v: Vec<&ModelBinding> = self
            .aors
            .get(aor)
            .map(|v| v.iter().filter(|b| b.expires_at > now).collect())
            .unwrap_or_default();
        v.sort_by_key(|b| std::cmp::Reverse((b.updated_at, b.placed)));
        v
    }

    /// The Contact list of a 200: the live bindings with their seconds left, rounded up.
    fn listing(&self, aor: &str, now: u64) -> Vec<(String, u32)> {
        self.live(aor, now)
            .into_iter()
            .map(|b| (b.uri.clone(), (b.expires_at - now).div_ceil(1000) as u32))
            .collect()
    }

    fn issued(&mut self, nonce: &str, now: u64) {
        self.nonces.insert(
            nonce.to_string(),
            NonceState {
                issued_s: now / 1000,
                highest: 0,
            },
        );
    }

    fn next_placed(&mut self) -> u64 {
        self.placed += 1;
        self.placed
    }

    /// What the registrar must answer to `req` at `now`, with the model changed accordingly.
    fn process(&mut self, now: u64, req: &Request) -> Expect {
        // Step 3, digest authentication (RFC 7616; RFC 2617 3.2.1 on stale).
        let Some(auth) = &req.auth else {
            return Expect::Challenge { stale: false };
        };
        let Some(nonce) = self.nonces.get_mut(&auth.nonce) else {
            return Expect::Challenge { stale: false };
        };
        if (now / 1000).saturating_sub(nonce.issued_s) > NONCE_LIFETIME {
            // "The server should only set stale to TRUE if it receives a request for which the
            // nonce is invalid but with a valid digest for that nonce."
            return Expect::Challenge { stale: auth.right };
        }
        if !auth.right {
            return Expect::Challenge { stale: false };
        }
        // Step 4: only the user's own AOR. Decided by the worker that received the request,
        // before the AOR's owner counts the nonce: a refused request uses up no nonce-count.
        if req.aor_user != req.owner {
            return Expect::Fail(403, "Not Authorized For This AOR");
        }
        // RFC 7616 3.4: "if the same nc value is seen twice, then the request is a replay."
        let replay = if nonce.highest > 0 {
            if auth.nc > nonce.highest {
                nonce.highest = auth.nc;
                false
            } else {
                true
            }
        } else if auth.nc == 0 {
            true
        } else if auth.nc == 1 {
            nonce.highest = 1;
            false
        } else {
            // A nonce never used with a count above 1: earlier counts may have been forgotten,
            // so the registrar asks for a new nonce.
            return Expect::Challenge { stale: true };
        };
        let aor = aor_of(req.aor_user);
        // In routing order, the order in which the registrar searches them.
        let bindings: Vec<ModelBinding> = self.live(&aor, now).into_iter().cloned().collect();
        let retransmission = bindings
            .iter()
            .any(|b| b.call_id == req.call_id && b.cseq == req.cseq);
        if replay {
            // A used nonce-count passes only as the retransmission of a request that bound.
            return if retransmission {
                Expect::Ok(self.listing(&aor, now))
            } else {
                Expect::Challenge { stale: false }
            };
        }
        let list = match &req.contacts {
            // Step 6: no Contact is a query.
            ContactField::Absent => return Expect::Ok(self.listing(&aor, now)),
            ContactField::Wildcard => {
                // "If the request has additional Contact fields or an expiration time other than
                // zero, the request is invalid".
                if req.expires != Some(0) {
                    return Expect::Fail(400, "Wildcard Needs Expires 0");
                }
                // "it MUST remove the binding only if the CSeq in the request is higher than the
                // value stored for that binding. Otherwise, the update MUST be aborted".
                if bindings
                    .iter()
                    .any(|b| b.call_id == req.call_id && req.cseq <= b.cseq)
                {
                    return Expect::Fail(400, "CSeq Out Of Order");
                }
                self.aors.remove(&aor);
                return Expect::Ok(Vec::new());
            }
            ContactField::List(list) => list,
        };
        // Step 7, contact by contact, against the bindings as they were before the request.
        let mut seen: Vec<&str> = Vec::new();
        let mut plans: Vec<(Plan, u32)> = Vec::new();
        for (ci, c) in list.iter().enumerate() {
            // The same contact (an equivalent URI) twice in one request counts once.
            if seen.contains(&c.key.as_str()) {
                continue;
            }
            seen.push(&c.key);
            // "the expiration interval ... from the expires parameter ... If there is no such
            // parameter, but the request has an Expires header field, that value MUST be taken
            // ... If neither, the locally-configured default value MUST be taken".
            let requested = c.expires.or(req.expires).unwrap_or(DEFAULT_EXPIRES);
            if requested > 0 && requested < 3600 && requested < MIN_EXPIRES {
                return Expect::Fail(423, "Interval Too Brief");
            }
            let granted = requested.min(MAX_EXPIRES);
            // RFC 5626: a contact with +sip.instance matches the binding of that instance first.
            let existing = c
                .instance
                .as_ref()
                .and_then(|i| bindings.iter().position(|b| b.instance.as_ref() == Some(i)))
                .or_else(|| bindings.iter().position(|b| b.key == c.key));
            match existing {
                Some(b) => {
                    let old = &bindings[b];
                    // "If they are the same, the registrar compares the CSeq value. If the value
                    // is higher than that of the existing binding, it MUST update or remove the
                    // binding as above. If not, the update MUST be aborted and the request fails."
                    if old.call_id == req.call_id && req.cseq <= old.cseq {
                        // The request that wrote this binding, again: answered, nothing changes.
                        if req.cseq == old.cseq {
                            return Expect::Ok(self.listing(&aor, now));
                        }
                        return Expect::Fail(400, "CSeq Out Of Order");
                    }
                    assert!(
                        !plans.iter().any(|(p, _)| matches!(
                            p,
                            Plan::Refresh(x, _) | Plan::Remove(x) if *x == b
                        )),
                        "the generator never makes two contacts of a request match one binding"
                    );
                    if granted == 0 {
                        plans.push((Plan::Remove(b), 0));
                    } else {
                        plans.push((Plan::Refresh(b, ci), granted));
                    }
                }
                None if granted == 0 => {}
                None => plans.push((Plan::Insert(ci), granted)),
            }
        }
        // The contact limit (step 8 precondition, registrar policy).
        let count = |f: fn(&Plan) -> bool| plans.iter().filter(|(p, _)| f(p)).count();
        let inserts = count(|p| matches!(p, Plan::Insert(_)));
        let refreshes = count(|p| matches!(p, Plan::Refresh(..)));
        let removes = count(|p| matches!(p, Plan::Remove(_)));
        let after = bindings.len() + inserts - removes;
        let overflow = after.saturating_sub(self.max_contacts);
        if overflow > 0 {
            match self.policy {
                ContactPolicy::Reject => return Expect::Fail(503, "Too Many Bindings"),
                // Only bindings the request does not keep can make room; a request that itself
                // keeps more than the limit cannot be satisfied.
                ContactPolicy::ReplaceOldest if inserts + refreshes > self.max_contacts => {
                    return Expect::Fail(503, "Too Many Bindings");
                }
                ContactPolicy::ReplaceOldest => {}
            }
        }
        // Apply: "The binding updates MUST be committed ... if and only if all binding updates
        // and additions succeed."
        let mut next: Vec<Option<ModelBinding>> = bindings.into_iter().map(Some).collect();
        let mut touched = vec![false; next.len()];
        for (plan, granted) in plans {
            let new = |model: &mut Model, c: &ContactLine| ModelBinding {
                key: c.key.clone(),
                uri: c.uri.clone(),
                instance: c.instance.clone(),
                expires_at: now + u64::from(granted) * 1000,
                call_id: req.call_id.clone(),
                cseq: req.cseq,
                updated_at: now,
                placed: model.next_placed(),
            };
            match plan {
                Plan::Insert(ci) => {
                    next.push(Some(new(self, &list[ci])));
                    touched.push(true);
                }
                Plan::Refresh(b, ci) => {
                    next[b] = Some(new(self, &list[ci]));
                    touched[b] = true;
                }
                Plan::Remove(b) => {
                    next[b] = None;
                    touched[b] = true;
                }
            }
        }
        // ReplaceOldest: drop the least recently updated bindings the request did not touch.
        for _ in 0..overflow {
            let oldest = (0..next.len())
                .filter(|&i| !touched[i])
                .filter_map(|i| next[i].as_ref().map(|b| (i, b)))
                // Ties go to the one placed later: it comes first in routing order.
                .min_by_key(|(_, b)| (b.updated_at, std::cmp::Reverse(b.placed)))
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                next[i] = None;
            }
        }
        let next: Vec<ModelBinding> = next.into_iter().flatten().collect();
        if next.is_empty() {
            self.aors.remove(&aor);
        } else {
            self.aors.insert(aor.clone(), next);
        }
        Expect::Ok(self.listing(&aor, now))
    }
}

// ---------------------------------------------------------------------------------------------
// The registrar under test, the phones, and the checks.

/// A response, parsed back.
#[derive(Debug)]
struct Answer {
    code: u16,
    reason: String,
    text: String,
}

impl Answer {
    fn headers(&self, name: &str) -> Vec<&str> {
        let prefix = format!("{name}: ");
        self.text
            .split("\r\n")
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect()
    }

    fn contacts(&self) -> Vec<(String, Option<u32>)> {
        let mut storage = [Header::EMPTY; 64];
        let Ok(Message::Response(r)) =
            sip::parse_datagram(self.text.as_bytes(), &mut storage, &Limits::default())
        else {
            return vec![("<unparseable>".into(), None)];
        };
        match r.headers.contacts() {
            Ok(Contacts::List(list)) => list
                .map(|c| match c {
                    Ok(c) => (
                        String::from_utf8_lossy(c.addr.uri.raw()).into_owned(),
                        c.expires,
                    ),
                    Err(_) => ("<bad contact>".into(), None),
                })
                .collect(),
            Ok(Contacts::Absent) => Vec::new(),
            _ => vec![("<bad contact list>".into(), None)],
        }
    }

    fn challenge(&self) -> Option<(String, bool)> {
        let h = self.headers("WWW-Authenticate");
        let first = h.first()?;
        let start = first.find("nonce=\"")? + 7;
        let end = start + first.get(start..)?.find('"')?;
        Some((
            first.get(start..end)?.to_string(),
            first.contains("stale=true"),
        ))
    }
}

struct World {
    reg: Registrar,
    model: Model,
    setup: Setup,
    phones: Vec<Phone>,
    now: u64,
    /// The table as the events describe it, expired-but-uncollected bindings included.
    replayed: BTreeMap<Vec<u8>, Vec<Binding>>,
    log: Vec<String>,
}

impl World {
    fn new(setup: Setup) -> World {
        let mut config = Config::with_domains(&[DOMAIN.to_string()]);
        config.policy.min_expires = MIN_EXPIRES;
        config.policy.max_expires = MAX_EXPIRES;
        config.policy.default_expires = DEFAULT_EXPIRES;
        config.policy.max_contacts = setup.max_contacts;
        config.policy.contact_policy = setup.policy;
        config.policy.retry_after = RETRY_AFTER;
        config.auth.nonce_lifetime = NONCE_LIFETIME;
        // A case uses a few dozen nonces; 4096 entries never evict one (the default is 20 MiB,
        // allocated per case).
        config.auth.nc_entries = 4096;
        let mut reg = Registrar::new(config, [7; 32]);
        for (user, password) in USERS {
            for alg in Algorithm::ALL {
                let ha1 = Ha1::from_password(
                    alg,
                    user.as_bytes(),
                    DOMAIN.as_bytes(),
                    password.as_bytes(),
                );
                reg.users_mut()
                    .insert(user.as_bytes(), DOMAIN.as_bytes(), ha1);
            }
        }
        World {
            reg,
            model: Model::new(&setup),
            phones: vec![Phone::default(); USERS.len() * DEVICES],
            setup,
            now: T0,
            replayed: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    fn trace(&self) -> String {
        let mut s = format!(
            "\nmax_contacts={} policy={:?}\n",
            self.setup.max_contacts, self.setup.policy
        );
        for line in &self.log {
            s.push_str(line);
            s.push('\n');
        }
        s
    }

    fn contact_line(&self, user: usize, spec: &ContactSpec) -> ContactLine {
        let phone = user * DEVICES + spec.device;
        let generation = self.phones[phone].generation;
        let name = USERS[user].0;
        let host = format!("d{}g{generation}.example.net", spec.device);
        let key = format!("sip:{name}@{host}:5060");
        let uri = if spec.shout {
            format!("sip:{name}@{}:5060", host.to_ascii_uppercase())
        } else {
            key.clone()
        };
        ContactLine {
            uri,
            key,
            instance: self.setup.instance[phone].then(|| {
                format!(
                    "<urn:uuid:00000000-0000-1000-8000-0000000000{user}{}>",
                    spec.device
                )
            }),
            expires: spec.expires,
        }
    }

    fn step(&mut self, op: &Op) -> Result {
        match op {
            Op::Advance { ms, tick } => {
                self.now += ms;
                self.log.push(format!(
                    "advance {ms} ms{}",
                    if *tick { ", tick" } else { "" }
                ));
                if *tick {
                    self.reg.tick(self.now);
                    self.drain()?;
                    // Collected at the latest when `now` reaches the expiry rounded up to a second.
                    for (aor, bindings) in &self.replayed {
                        for b in bindings {
                            prop_assert!(
                                b.expires_at().div_ceil(1000) * 1000 > self.now,
                                "tick left a due binding of {}: {b:?}{}",
                                String::from_utf8_lossy(aor),
                                self.trace()
                            );
                        }
                    }
                }
            }
            Op::Reboot { user, device } => {
                let p = &mut self.phones[user * DEVICES + device];
                *p = Phone {
                    generation: p.generation + 1,
                    ..Phone::default()
                };
                self.log.push(format!("reboot {}/{device}", USERS[*user].0));
            }
            Op::Retransmit { user, device } => {
                if let Some(req) = self.phones[user * DEVICES + device].last.clone() {
                    self.log.push("retransmit:".into());
                    self.exchange(&req)?;
                }
            }
            Op::Send {
                user,
                device,
                body,
                twist,
            } => {
                if !matches!(twist, Twist::None) {
                    self.log.push(format!("{twist:?}:"));
                }
                self.send(*user, *device, body, twist)?;
            }
        }
        self.check_store()
    }

    /// A phone's REGISTER, through one challenge when it gets one.
    fn send(&mut self, user: usize, device: usize, body: &Body, twist: &Twist) -> Result {
        let phone = user * DEVICES + device;
        let (contacts, expires, one_line) = match body {
            Body::Bind {
                contacts,
                expires,
                one_line,
            } if contacts.is_empty() => (ContactField::Absent, *expires, *one_line),
            Body::Bind {
                contacts,
                expires,
                one_line,
            } => (
                ContactField::List(
                    contacts
                        .iter()
                        .map(|c| self.contact_line(user, c))
                        .collect(),
                ),
                *expires,
                *one_line,
            ),
            Body::Wildcard { expires } => (ContactField::Wildcard, *expires, false),
        };
        let aor_user = match twist {
            Twist::OtherAor { user: offset } => (user + offset) % USERS.len(),
            _ => user,
        };
        let (name, right_password) = USERS[user];
        let (password, right) = match twist {
            Twist::WrongPassword => (format!("{right_password}!"), false),
            _ => (right_password.to_string(), true),
        };
        let algorithm = Algorithm::ALL[self.setup.algorithm[phone]];
        let attempts = if matches!(twist, Twist::ReplayNc { .. }) {
            1
        } else {
            2
        };
        for _ in 0..attempts {
            let p = &mut self.phones[phone];
            let cseq = match twist {
                Twist::OldCSeq { back } => p.cseq.saturating_sub(*back).max(1),
                _ => p.cseq + 1,
            };
            p.cseq = p.cseq.max(cseq);
            let auth = match (&p.nonce, twist) {
                (None, _) => None,
                (Some(nonce), Twist::ReplayNc { back }) => {
                    let highest = self.model.nonces.get(nonce).map_or(0, |n| n.highest);
                    Some((nonce.clone(), highest.saturating_sub(*back)))
                }
                (Some(nonce), _) => {
                    p.nc += 1;
                    Some((nonce.clone(), p.nc))
                }
            }
            .map(|(nonce, nc)| DigestAuth {
                nonce,
                nc,
                password: password.clone(),
                right,
                algorithm,
            });
            let req = Request {
                owner: user,
                device,
                aor_user,
                call_id: format!("{name}-d{device}-g{}@phone", p.generation),
                cseq,
                auth,
                contacts: contacts.clone(),
                expires,
                one_line,
            };
            if !matches!(twist, Twist::ReplayNc { .. }) {
                p.last = Some(req.clone());
            }
            let answer = self.exchange(&req)?;
            if answer.code != 401 || matches!(twist, Twist::ReplayNc { .. }) {
                break;
            }
            // A phone takes the nonce of a 401 and resends with credentials.
            let (nonce, _) = answer.challenge().unwrap_or_default();
            self.model.issued(&nonce, self.now);
            let p = &mut self.phones[phone];
            p.nonce = Some(nonce);
            p.nc = 0;
        }
        Ok(())
    }

    /// Sends one request and checks the answer against the model's.
    fn exchange(&mut self, req: &Request) -> Result<Answer> {
        let expect = self.model.process(self.now, req);
        let peer = Peer {
            source: source(req.owner, req.device),
            transport: Transport::Udp,
            connection: None,
            local: None,
        };
        let mut out = [0u8; 8192];
        let bytes = req.bytes();
        let n = self.reg.handle(self.now, peer, &bytes, &mut out);
        let text = n
            .and_then(|n| out.get(..n))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let mut storage = [Header::EMPTY; 64];
        let (code, reason) =
            match sip::parse_datagram(text.as_bytes(), &mut storage, &Limits::default()) {
                Ok(Message::Response(r)) => {
                    (r.code, String::from_utf8_lossy(r.reason).into_owned())
                }
                _ => (0, String::new()),
            };
        let answer = Answer { code, reason, text };
        self.log.push(format!(
            "  t+{}ms {} -> {} {}",
            self.now - T0,
            describe(req),
            answer.code,
            answer.reason
        ));
        prop_assert!(
            answer.code != 0,
            "no parseable answer to\n{}{}",
            String::from_utf8_lossy(&bytes),
            self.trace()
        );
        match &expect {
            Expect::Challenge { stale } => {
                prop_assert_eq!(
                    answer.code,
                    401,
                    "expected 401 {:?}{}",
                    expect,
                    self.trace()
                );
                let challenge = answer.challenge();
                prop_assert!(challenge.is_some(), "401 without a nonce{}", self.trace());
                let (nonce, got_stale) = challenge.unwrap_or_default();
                prop_assert_eq!(got_stale, *stale, "stale flag{}", self.trace());
                prop_assert!(
                    !self.model.nonces.contains_key(&nonce),
                    "a 401 repeated a nonce{}",
                    self.trace()
                );
            }
            Expect::Fail(code, reason) => {
                prop_assert_eq!(
                    (answer.code, answer.reason.as_str()),
                    (*code, *reason),
                    "{}",
                    self.trace()
                );
                if *code == 423 {
                    let min = MIN_EXPIRES.to_string();
                    prop_assert_eq!(answer.headers("Min-Expires"), vec![min.as_str()]);
                }
                if *code == 503 {
                    let retry = RETRY_AFTER.to_string();
                    prop_assert_eq!(answer.headers("Retry-After"), vec![retry.as_str()]);
                }
            }
            Expect::Ok(listing) => {
                prop_assert_eq!(
                    (answer.code, answer.reason.as_str()),
                    (200, "OK"),
                    "{}",
                    self.trace()
                );
                let got = answer.contacts();
                // Invariant 1: a 200 never lists an expired binding, nor grants above the maximum.
                for (uri, expires) in &got {
                    prop_assert!(
                        expires.is_some_and(|e| e > 0 && e <= MAX_EXPIRES),
                        "{uri} listed with expires {expires:?}{}",
                        self.trace()
                    );
                }
                let want: Vec<(String, Option<u32>)> =
                    listing.iter().map(|(u, e)| (u.clone(), Some(*e))).collect();
                prop_assert_eq!(got, want, "the 200's contacts{}", self.trace());
            }
        }
        Ok(answer)
    }

    /// Replays the pending events into `replayed`.
    fn drain(&mut self) -> Result {
        while let Some(event) = self.reg.poll_event() {
            let (gone, added) = match event {
                Event::Added { aor, binding } => ((aor, None), Some(binding)),
                Event::Refreshed { aor, old, new } => ((aor, Some(old)), Some(new)),
                Event::Removed { aor, binding } | Event::Expired { aor, binding } => {
                    ((aor, Some(binding)), None)
                }
            };
            let (aor, old) = gone;
            let bindings = self.replayed.entry(aor.as_bytes().to_vec()).or_default();
            if let Some(old) = old {
                let at = bindings.iter().position(|b| *b == old);
                prop_assert!(
                    at.is_some(),
                    "an event names a binding the events never added: {old:?}{}",
                    self.trace()
                );
                if let Some(at) = at {
                    bindings.remove(at);
                }
            }
            if let Some(new) = added {
                bindings.push(new);
            }
            if bindings.is_empty() {
                self.replayed.remove(aor.as_bytes());
            }
        }
        Ok(())
    }

    fn check_store(&mut self) -> Result {
        self.drain()?;
        let now = self.now;
        let shard = self.reg.shard();
        let stored_total: usize = self.replayed.values().map(Vec::len).sum();
        prop_assert_eq!(
            shard.len(),
            stored_total,
            "bindings stored vs. replayed from events{}",
            self.trace()
        );
        for aor in self.replayed.keys() {
            prop_assert!(
                (0..USERS.len()).any(|u| aor_of(u).as_bytes() == aor.as_slice()),
                "events for an AOR nobody registered: {}",
                String::from_utf8_lossy(aor)
            );
        }
        for user in 0..USERS.len() {
            let aor = aor_of(user);
            let stored: Vec<&Binding> = shard.lookup(aor.as_bytes(), now).collect();
            // Invariant 1: lookups return live bindings only.
            for b in &stored {
                prop_assert!(
                    b.expires_at() > now,
                    "lookup returned an expired binding {b:?}{}",
                    self.trace()
                );
            }
            // Invariant 2: the contact limit.
            let count = shard.count(aor.as_bytes(), now);
            prop_assert_eq!(count, stored.len());
            prop_assert!(
                count <= self.setup.max_contacts,
                "{aor} has {count} bindings, the limit is {}{}",
                self.setup.max_contacts,
                self.trace()
            );
            // Invariant 3: the store is the model.
            let got: Vec<_> = stored
                .iter()
                .map(|b| {
                    (
                        String::from_utf8_lossy(b.contact()).into_owned(),
                        b.expires_at(),
                        String::from_utf8_lossy(b.call_id()).into_owned(),
                        b.cseq(),
                        b.instance()
                            .map(|i| String::from_utf8_lossy(i).into_owned()),
                    )
                })
                .collect();
            let want: Vec<_> = self
                .model
                .live(&aor, now)
                .into_iter()
                .map(|b| {
                    (
                        b.uri.clone(),
                        b.expires_at,
                        b.call_id.clone(),
                        b.cseq,
                        b.instance.clone(),
                    )
                })
                .collect();
            prop_assert_eq!(got, want, "store vs. model for {}{}", aor, self.trace());
            // Invariant 4: the events describe the same table.
            let mut replayed: Vec<&Binding> = self
                .replayed
                .get(aor.as_bytes())
                .map(|v| v.iter().filter(|b| b.expires_at() > now).collect())
                .unwrap_or_default();
            for b in &stored {
                let at = replayed.iter().position(|r| r == b);
                prop_assert!(
                    at.is_some(),
                    "stored but not in the events: {b:?}{}",
                    self.trace()
                );
                if let Some(at) = at {
                    replayed.remove(at);
                }
            }
            prop_assert!(
                replayed.is_empty(),
                "in the events but not stored: {replayed:?}{}",
                self.trace()
            );
        }
        Ok(())
    }
}

fn describe(req: &Request) -> String {
    let contacts = match &req.contacts {
        ContactField::Absent => "query".to_string(),
        ContactField::Wildcard => "Contact: *".to_string(),
        ContactField::List(list) => list
            .iter()
            .map(|c| {
                let mut s = c.uri.clone();
                if c.instance.is_some() {
                    s.push_str(";+sip.instance");
                }
                if let Some(e) = c.expires {
                    let _ = write!(s, ";expires={e}");
                }
                s
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    let auth = match &req.auth {
        None => "no credentials".to_string(),
        Some(a) => format!(
            "nc={}{}",
            a.nc,
            if a.right { "" } else { " wrong password" }
        ),
    };
    format!(
        "REGISTER {} by {}/{} Call-ID {} CSeq {} [{contacts}]{} ({auth})",
        aor_of(req.aor_user),
        USERS[req.owner].0,
        req.device,
        req.call_id,
        req.cseq,
        req.expires
            .map(|e| format!(" Expires: {e}"))
            .unwrap_or_default(),
    )
}

proptest! {
    #[test]
    fn registrar_agrees_with_the_rfc_3261_model(
        setup in setup(),
        ops in prop::collection::vec(op(), 1..48),
    ) {
        let mut world = World::new(setup);
        world.check_store()?;
        for op in &ops {
            world.step(op)?;
        }
        // In the end everything expires.
        world.step(&Op::Advance { ms: u64::from(MAX_EXPIRES) * 1000 + 1000, tick: true })?;
        prop_assert_eq!(world.reg.shard().len(), 0, "{}", world.trace());
        prop_assert!(world.replayed.is_empty(), "{}", world.trace());
    }
}
