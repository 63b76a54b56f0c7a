//! REGISTER processing, RFC 3261 section 10.3 step by step, with digest authentication
//! (RFC 3261 22, RFC 7616, RFC 8760), RFC 5626 instance/reg-id and RFC 3327 Path.
//!
//! Every check runs before anything changes: a request is applied whole or not at all. The
//! location shard stores; this module decides.

use crate::auth::{Algorithm, KnownA2, NcVerdict, NonceCheck, NonceKeys, UserDb};
use crate::location::{Aor, BindingId, EchoParams, Registration, echo_params};
use crate::sip::{
    Contact, Credentials, Essentials, HeaderName, Quoted, Request, ResponseBuilder, SipUri, Uri,
    chars::{self, CommaList},
};

use super::{AuthConfig, ContactPolicy, Peer, Received, Registrar, Ticket};

/// Contacts one REGISTER may carry; more is refused rather than processed partly.
const MAX_CONTACTS_PER_REQUEST: usize = 16;
/// Path values one REGISTER may carry.
const MAX_PATH: usize = 8;
/// The qop values offered in challenges.
pub(super) const QOP: &str = "auth,auth-int";

/// What the credentials of a request prove, decided from the request, the keys and the user
/// table alone: no nonce-count table, no location shard, so any worker can compute it.
enum Verdict<'a> {
    /// A right digest on a fresh nonce; whether it is new depends on the nonce-count
    /// ([`observe_nc`]). `nonce` identifies the nonce, issued at `issued` (seconds).
    Verified {
        username: Quoted<'a>,
        nonce: u64,
        issued: u64,
        nc: u32,
    },
    /// Challenge (again); `stale` when the credentials were right but the nonce had expired.
    Challenge { stale: bool },
    /// Authentication is off ([`AuthConfig::required`]).
    Open,
}

/// One change a REGISTER asks for, decided before any is applied: the Contact it comes from
/// (an index into the request's list) and the expiry granted, or the binding to remove. Small,
/// so that planning sixteen of them moves little; the [`Registration`] is built when applied.
#[derive(Clone, Copy)]
enum Op {
    Insert { contact: usize, granted: u32 },
    Refresh(BindingId, usize, u32),
    Remove(BindingId),
}

/// The Contact header fields of a REGISTER, parsed once.
#[derive(Clone, Copy)]
enum ContactSet {
    Absent,
    Wildcard,
    /// This many contacts, parsed into the caller's storage.
    List(usize),
}

/// Parses every Contact of `req` in one walk over the Contact elements; a defect is the reason
/// phrase of a 400. A `*` must be the only element (RFC 3261 10.3 step 6). The contacts go into
/// `items` when given; without, they are only checked (a request about to be challenged).
///
/// A line that parses whole as one Contact is one element: a comma outside quoted strings and
/// angle brackets, which would split it, fails the parse of a Contact. So the usual line, one
/// contact, is read once, with no search for commas first; others are split, and read element
/// by element.
fn parse_contacts<'a>(
    req: &Request<'a, '_>,
    mut items: Option<&mut [Option<Contact<'a>>; MAX_CONTACTS_PER_REQUEST]>,
) -> Result<ContactSet, &'static str> {
    let (mut n, mut count, mut wildcard, mut too_many) = (0, 0, false, false);
    let mut keep = |c: Contact<'a>, n: &mut usize, too_many: &mut bool| {
        if let Some(items) = items.as_deref_mut() {
            match items.get_mut(*n) {
                Some(slot) => *slot = Some(c),
                // Parsing stops; the walk goes on only to find a `*`.
                None => *too_many = true,
            }
        } else if *n >= MAX_CONTACTS_PER_REQUEST {
            *too_many = true;
        }
        *n += 1;
    };
    for line in req.headers.all(HeaderName::Contact) {
        if !wildcard
            && !too_many
            && let Ok(c) = Contact::parse(line.value)
        {
            count += 1;
            keep(c, &mut n, &mut too_many);
            continue;
        }
        for element in CommaList::new(line.value) {
            count += 1;
            if element == b"*" {
                wildcard = true;
            } else if !wildcard && !too_many {
                let c = Contact::parse(element).map_err(|_| "Bad Contact")?;
                keep(c, &mut n, &mut too_many);
            }
        }
    }
    match (wildcard, count) {
        (_, 0) => Ok(ContactSet::Absent),
        (true, 1) => Ok(ContactSet::Wildcard),
        (true, _) => Err("Bad Contact"),
        (false, _) if too_many => Err("Too Many Contacts"),
        (false, _) => Ok(ContactSet::List(n)),
    }
}

/// Whether two Contacts of one request name the same binding: the same `+sip.instance` and
/// reg-id (RFC 5626), or equivalent URIs (RFC 3261 19.1.4).
fn same_binding(a: &Contact<'_>, b: &Contact<'_>) -> bool {
    if let (Some(x), Some(y)) = (a.instance, b.instance)
        && x == y
        && a.reg_id == b.reg_id
    {
        return true;
    }
    match (&a.addr.uri, &b.addr.uri) {
        (Uri::Sip(x), Uri::Sip(y)) => x.raw == y.raw || x.matches(y),
        (x, y) => x.raw() == y.raw(),
    }
}

/// Checks the credentials of `req` against `realm`: the receive-side half of authentication.
#[allow(clippy::too_many_arguments)] // the fields of Registrar borrowed apart
fn authenticate<'a>(
    keys: &NonceKeys,
    users: &UserDb,
    cfg: &AuthConfig,
    known: &[KnownA2],
    realm: &[u8],
    now_s: u64,
    req: &Request<'a, '_>,
) -> Verdict<'a> {
    const CHALLENGE: Verdict<'static> = Verdict::Challenge { stale: false };
    // RFC 3261 22.4: the credentials for our realm; other schemes (RFC 4475 regaut01) and other
    // realms are not ours, and earn a fresh challenge.
    let digest = req.headers.authorizations().find_map(|c| match c {
        Ok(Credentials::Digest(d)) if d.realm.is_some_and(|r| r.eq_bytes(realm)) => Some(d),
        _ => None,
    });
    let Some(d) = digest else {
        return CHALLENGE;
    };
    let (Some(username), Some(nonce)) = (d.username, d.nonce.and_then(|n| n.plain())) else {
        return CHALLENGE;
    };
    // Only the algorithms offered are accepted (no downgrade to one the operator turned off).
    if !Algorithm::of(&d).is_some_and(|a| cfg.algorithms.contains(&a)) {
        return CHALLENGE;
    }
    // RFC 7616 3.4: qop is required; without it there is no nonce-count to stop a replay.
    let (Some(nc), Some(_), Some(_)) = (d.nc, d.qop, d.cnonce) else {
        return CHALLENGE;
    };
    // The digest covers the digest-uri the client signed. RFC 2617 3.2.2.5 lets a server also
    // compare it with the Request-URI; deployed clients (SIPp among them) sign the server's
    // address instead of the domain, and the method in HA2 plus the nonce-count already stop
    // reuse elsewhere, so only its presence is required.
    if d.uri.is_none() {
        return CHALLENGE;
    }
    let body = req.body;
    match keys.check(nonce, now_s, realm, cfg.nonce_lifetime) {
        NonceCheck::Invalid => CHALLENGE,
        // RFC 7616 3.3: stale "indicating that the previous request from the client was
        // rejected because the nonce value was stale" -- only when the digest itself was right.
        NonceCheck::Stale => Verdict::Challenge {
            stale: users.verify_user_with(realm, req.raw_method, &d, body, known),
        },
        NonceCheck::Fresh { issued, id } => {
            if !users.verify_user_with(realm, req.raw_method, &d, body, known) {
                // Unknown user and wrong password: the same 401.
                return CHALLENGE;
            }
            Verdict::Verified {
                username,
                nonce: id,
                issued,
                nc,
            }
        }
    }
}

impl Registrar {
    /// The receiving worker's part of a REGISTER (RFC 3261 10.3 steps 1 to 5): the domain, the
    /// Contact syntax, the digest (nonce MAC and response, no nonce-count), the AOR's owner
    /// (403 otherwise) and the canonical AOR. Everything that needs no location table is
    /// answered here; the rest goes on at once when this worker owns the AOR (`me` of
    /// `shards`), or is handed to its owner with the [`Ticket`].
    #[allow(clippy::too_many_arguments)] // the request and where it is served, lent in
    pub(super) fn register<'a>(
        &mut self,
        now_ms: u64,
        peer: Peer,
        req: &Request<'a, '_>,
        e: &Essentials<'a>,
        out: &mut [u8],
        (me, shards): (usize, usize),
    ) -> Received {
        let now_s = now_ms / 1000;
        // Step 1: "The registrar inspects the Request-URI to determine whether it has access to
        // bindings for the domain identified in the Request-URI."
        let Some(d) = self.domain_of(&e.uri) else {
            return Received::Answered(self.reply(peer, (req, e), 404, "Domain Not Served", out));
        };
        // Syntax first, so that a malformed Contact earns its 400 before any challenge (RFC 4475
        // regbadct is answered 400 whatever the credentials). It costs the 401 path about 2,200
        // instructions of its 16,000.
        // On the stack, filled in place: the set is large and moving it costs.
        // Step 3 in part: without an Authorization header there is nothing to check, and the
        // answer is a challenge once the Contacts are known to be well formed.
        let auth = self.config.auth.required;
        if auth && !req.headers.has(HeaderName::Authorization) {
            if let Err(reason) = parse_contacts(req, None) {
                return Received::Answered(self.reply(peer, (req, e), 400, reason, out));
            }
            return Received::Answered(self.challenge(now_s, d, false, peer, (req, e), out));
        }
        let mut items = [None; MAX_CONTACTS_PER_REQUEST];
        let contacts = match parse_contacts(req, Some(&mut items)) {
            Ok(c) => c,
            Err(reason) => return Received::Answered(self.reply(peer, (req, e), 400, reason, out)),
        };
        // Step 2 (Require) was screening. Step 3: "A registrar SHOULD authenticate the UAC."
        let Some(domain) = self.config.domains.get(d) else {
            return Received::Answered(None);
        };
        let realm = domain.realm.as_bytes();
        let known = self.known_a2.get(d).map(Vec::as_slice).unwrap_or_default();
        let verdict = if auth {
            authenticate(
                &self.keys,
                &self.users,
                &self.config.auth,
                known,
                realm,
                now_s,
                req,
            )
        } else {
            Verdict::Open
        };
        let (username, ticket) = match verdict {
            Verdict::Verified {
                username,
                nonce,
                issued,
                nc,
            } => (
                Some(username),
                Ticket {
                    verified: true,
                    nonce,
                    issued,
                    nc,
                },
            ),
            Verdict::Open => (
                None,
                Ticket {
                    verified: false,
                    nonce: 0,
                    issued: 0,
                    nc: 0,
                },
            ),
            Verdict::Challenge { stale } => {
                return Received::Answered(self.challenge(now_s, d, stale, peer, (req, e), out));
            }
        };
        // Screening guarantees a SIP or SIPS To.
        let Uri::Sip(to) = e.to.uri else {
            return Received::Answered(self.reply(peer, (req, e), 400, "To Is Not A SIP URI", out));
        };
        // Step 4: "The registrar SHOULD determine if the authenticated user is authorized to
        // modify registrations for this address-of-record." Here: their own user at the domain.
        if username.is_some_and(|u| !self.owns(d, u, &to)) {
            let answer = self.reply(peer, (req, e), 403, "Not Authorized For This AOR", out);
            return Received::Answered(answer);
        }
        // Step 5: the canonical AOR, and the worker whose shard holds it.
        self.with_aor(&to, |reg, aor| {
            let shard = crate::location::shard_of(aor, shards);
            if shard != me {
                return Received::Owner { shard, ticket };
            }
            let answer = reg.owned(
                now_ms,
                peer,
                (req, e),
                d,
                ticket,
                (contacts, &items),
                (&to, aor),
                out,
            );
            Received::Answered(answer)
        })
    }

    /// Runs `f` with the canonical bytes of the AOR `to` ([`Aor::encode`]), written into the
    /// registrar's reused buffer.
    fn with_aor<R>(&mut self, to: &SipUri<'_>, f: impl FnOnce(&mut Self, &[u8]) -> R) -> R {
        let mut aor = core::mem::take(&mut self.aor_buf);
        aor.clear();
        Aor::encode(to, &mut aor);
        let result = f(self, &aor);
        self.aor_buf = aor;
        result
    }

    /// The owner's part of a REGISTER another worker received and verified (see
    /// [`Registrar::register`]): the request is read again (the bytes crossed threads, the
    /// parse did not), then [`Registrar::owned`] finishes it.
    pub(super) fn register_owned<'a>(
        &mut self,
        now_ms: u64,
        peer: Peer,
        req: &Request<'a, '_>,
        e: &Essentials<'a>,
        ticket: Ticket,
        out: &mut [u8],
    ) -> Option<usize> {
        let d = self.domain_of(&e.uri)?;
        let mut items = [None; MAX_CONTACTS_PER_REQUEST];
        let contacts = parse_contacts(req, Some(&mut items)).ok()?;
        let Uri::Sip(to) = e.to.uri else {
            return None;
        };
        self.with_aor(&to, |reg, aor| {
            reg.owned(
                now_ms,
                peer,
                (req, e),
                d,
                ticket,
                (contacts, &items),
                (&to, aor),
                out,
            )
        })
    }

    /// Steps 6 to 8 on the shard that owns the AOR: the nonce-count (a replay is answered only
    /// as the retransmission it may be), then the bindings.
    #[allow(clippy::too_many_arguments)] // the parts of one request, decided apart
    fn owned<'a>(
        &mut self,
        now_ms: u64,
        peer: Peer,
        (req, e): (&Request<'a, '_>, &Essentials<'a>),
        d: usize,
        ticket: Ticket,
        contacts: (ContactSet, &[Option<Contact<'a>>]),
        (to, aor): (&SipUri<'_>, &[u8]),
        out: &mut [u8],
    ) -> Option<usize> {
        let now_s = now_ms / 1000;
        let counted = if ticket.verified {
            self.counts
                .observe(ticket.nonce, ticket.issued, ticket.nc, now_s)
        } else {
            // Authentication is off: every request is new.
            NcVerdict::Accept
        };
        match counted {
            NcVerdict::Accept => self.update(now_ms, peer, req, e, contacts, (to, aor), out),
            // The table no longer knows this nonce: a fresh one costs the client one round
            // trip and cannot let a replay through.
            NcVerdict::Unknown => self.challenge(now_s, d, true, peer, (req, e), out),
            // A correct digest with a used nonce-count is answered only as the retransmission
            // of the request just processed: same Call-ID and CSeq as a stored binding.
            NcVerdict::Replay if self.is_retransmission(aor, e, now_ms) => {
                self.ok(now_ms, peer, (req, e), aor, out)
            }
            NcVerdict::Replay => self.challenge(now_s, d, false, peer, (req, e), out),
        }
    }

    #[allow(clippy::too_many_arguments)] // the parts of one request, decided apart
    fn update<'a>(
        &mut self,
        now_ms: u64,
        peer: Peer,
        req: &Request<'a, '_>,
        e: &Essentials<'a>,
        (contacts, items): (ContactSet, &[Option<Contact<'a>>]),
        (to, aor): (&SipUri<'_>, &[u8]),
        out: &mut [u8],
    ) -> Option<usize> {
        // Screening refused a REGISTER whose Expires does not parse.
        let header_expires = e.expires.ok().flatten();
        let list = match contacts {
            // Step 6: no Contact is a query.
            ContactSet::Absent => return self.ok(now_ms, peer, (req, e), aor, out),
            ContactSet::Wildcard => {
                return self.remove_all(now_ms, peer, req, e, header_expires, aor, out);
            }
            ContactSet::List(n) => items.get(..n).unwrap_or_default(),
        };
        let mut paths: [&[u8]; MAX_PATH] = [b""; MAX_PATH];
        let mut path_count = 0;
        for p in req.headers.elements(HeaderName::Path) {
            let Some(slot) = paths.get_mut(path_count) else {
                return self.reply(peer, (req, e), 400, "Too Many Path Values", out);
            };
            *slot = p;
            path_count += 1;
        }
        if req.headers.routes(HeaderName::Path).any(|r| r.is_err()) {
            return self.reply(peer, (req, e), 400, "Bad Path", out);
        }
        let path = paths.get(..path_count).unwrap_or_default();
        let policy = &self.config.policy;
        let mut ops: [Option<Op>; MAX_CONTACTS_PER_REQUEST] = [None; MAX_CONTACTS_PER_REQUEST];
        let mut planned = 0;
        let (mut inserts, mut refreshes, mut removes) = (0usize, 0usize, 0usize);
        for (k, c) in list.iter().enumerate() {
            let Some(c) = c else { continue };
            // The same binding named twice in one request counts once: the first wins.
            let earlier = list.get(..k).unwrap_or_default().iter().flatten();
            if earlier.into_iter().any(|p| same_binding(p, c)) {
                continue;
            }
            // Step 7: "the expiration interval ... from the expires parameter of the Contact
            // header field ... If there is no such parameter, but the request has an Expires
            // header field, that value MUST be taken ... If neither, the locally-configured
            // default value MUST be taken".
            let requested = c
                .expires
                .or(header_expires)
                .unwrap_or(policy.default_expires);
            // "If and only if the requested expiration interval is greater than zero AND
            // smaller than one hour AND less than a registrar-configured minimum, the registrar
            // MAY reject the registration with a response of 423 (Interval Too Brief)."
            if requested > 0 && requested < 3600 && requested < policy.min_expires {
                let min = policy.min_expires;
                return self.too_brief(min, peer, (req, e), out);
            }
            let granted = requested.min(policy.max_expires);
            // RFC 5626 / 5627: a device is its +sip.instance (and reg-id); a rebooted phone
            // replaces its binding even from a new address. Otherwise the URI identifies it.
            let existing = c
                .instance
                .and_then(|i| self.shard.find_instance(aor, i, c.reg_id, now_ms))
                .or_else(|| self.shard.find_contact(aor, &c.addr.uri, now_ms));
            // Two different spellings can still reach one stored binding (one by instance, one
            // by URI): that binding is changed once.
            let targeted = |id: BindingId| {
                let ops = ops.get(..planned).unwrap_or(&ops);
                ops.iter().flatten().any(|op| match *op {
                    Op::Refresh(t, ..) | Op::Remove(t) => t == id,
                    Op::Insert { .. } => false,
                })
            };
            let op = match existing {
                Some(id) if targeted(id) => continue,
                Some(id) => {
                    let binding = self.shard.get(id, now_ms)?;
                    // "If the Call-ID value in the existing binding differs ... the binding MUST
                    // be removed if the expiration time is zero and updated otherwise. If they
                    // are the same, the registrar compares the CSeq value. If the value is
                    // higher than that of the existing binding, it MUST update or remove the
                    // binding as above. If not, the update MUST be aborted and the request fails."
                    if binding.call_id() == e.call_id && e.cseq.number <= binding.cseq() {
                        if e.cseq.number == binding.cseq() && self.is_retransmission(aor, e, now_ms)
                        {
                            // The same request again: answer as before, change nothing.
                            return self.ok(now_ms, peer, (req, e), aor, out);
                        }
                        return self.reply(peer, (req, e), 400, "CSeq Out Of Order", out);
                    }
                    if granted == 0 {
                        removes += 1;
                        Some(Op::Remove(id))
                    } else {
                        refreshes += 1;
                        Some(Op::Refresh(id, k, granted))
                    }
                }
                None if granted == 0 => None,
                None => {
                    inserts += 1;
                    Some(Op::Insert {
                        contact: k,
                        granted,
                    })
                }
            };
            if let Some(slot) = ops.get_mut(planned) {
                *slot = op;
            }
            planned += 1;
        }
        // Step 8 precondition: the contact limit.
        let max = policy.max_contacts;
        let live = self.shard.count(aor, now_ms);
        let after = (live + inserts).saturating_sub(removes);
        let overflow = after.saturating_sub(max);
        // Under ReplaceOldest only bindings this request leaves alone can make room.
        let kept_by_request = inserts + refreshes;
        if overflow > 0 && (policy.contact_policy == ContactPolicy::Reject || kept_by_request > max)
        {
            let retry = policy.retry_after;
            return self.too_many(retry, peer, (req, e), out);
        }
        // Apply.
        let mut owned_aor = None;
        let mut touched: [Option<BindingId>; MAX_CONTACTS_PER_REQUEST] =
            [None; MAX_CONTACTS_PER_REQUEST];
        let ops = ops.get(..planned).unwrap_or(&ops);
        for (op, touched) in ops.iter().flatten().zip(touched.iter_mut()) {
            let (refresh, k, granted) = match *op {
                Op::Insert { contact, granted } => (None, contact, granted),
                Op::Refresh(id, contact, granted) => (Some(id), contact, granted),
                Op::Remove(id) => {
                    match self.shard.remove(id, now_ms) {
                        Ok(()) => *touched = None,
                        Err(_) => {
                            return self.reply(peer, (req, e), 500, "Location Store Refused", out);
                        }
                    }
                    continue;
                }
            };
            let Some(Some(c)) = list.get(k) else { continue };
            // Parameters that are not a slice of the request are reduced into the registrar's
            // reused buffer.
            let scratch = &mut self.params_buf;
            scratch.clear();
            let raw = c.addr.params.raw();
            let params = match echo_params(raw, c.expires.is_some(), scratch) {
                EchoParams::Slice(kept) => kept,
                EchoParams::Built { start, end } => scratch.get(start..end).unwrap_or_default(),
            };
            let reg = Registration {
                contact: c.addr.uri.raw(),
                params,
                path,
                instance: c.instance,
                reg_id: c.reg_id,
                q: c.q.unwrap_or(1000),
                expires_at: now_ms + u64::from(granted) * 1000,
                call_id: e.call_id,
                cseq: e.cseq.number,
                source: peer.source,
                transport: peer.transport,
                connection: peer.connection,
            };
            let result = match refresh {
                None => {
                    let key = owned_aor.get_or_insert_with(|| Aor::from_uri(to));
                    self.shard.insert(key, &reg, now_ms)
                }
                Some(id) => self.shard.refresh(id, &reg, now_ms),
            };
            match result {
                Ok(id) => *touched = Some(id),
                Err(crate::location::Error::TooLong) => {
                    return self.reply(peer, (req, e), 400, "Contact Too Long", out);
                }
                Err(_) => return self.reply(peer, (req, e), 500, "Location Store Refused", out),
            }
        }
        // The UDP socket the REGISTER came in on, for requests to the device later.
        if let Some(index) = self.local_index(peer) {
            for id in touched.iter().flatten() {
                self.shard.set_local(*id, index);
            }
        }
        if overflow > 0 {
            self.remove_oldest(aor, overflow, &touched, now_ms);
        }
        self.ok(now_ms, peer, (req, e), aor, out)
    }

    /// `ContactPolicy::ReplaceOldest`: drop the least recently updated bindings this request did
    /// not touch.
    fn remove_oldest(
        &mut self,
        aor: &[u8],
        mut count: usize,
        touched: &[Option<BindingId>],
        now_ms: u64,
    ) {
        while count > 0 {
            let oldest = self
                .shard
                .entries(aor, now_ms)
                .filter(|(id, _)| !touched.contains(&Some(*id)))
                .min_by_key(|(_, b)| b.updated_at())
                .map(|(id, _)| id);
            let Some(id) = oldest else { break };
            if self.shard.remove(id, now_ms).is_err() {
                break;
            }
            count -= 1;
        }
    }

    /// Step 6 with `Contact: *`.
    #[allow(clippy::too_many_arguments)]
    fn remove_all(
        &mut self,
        now_ms: u64,
        peer: Peer,
        req: &Request<'_, '_>,
        e: &Essentials<'_>,
        header_expires: Option<u32>,
        aor: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        // "If the request has additional Contact fields or an expiration time other than zero,
        // the request is invalid, and the server MUST return a 400 (Invalid Request)."
        if header_expires != Some(0) {
            return self.reply(peer, (req, e), 400, "Wildcard Needs Expires 0", out);
        }
        // "it MUST remove the binding only if the CSeq in the request is higher than the value
        // stored for that binding. Otherwise, the update MUST be aborted and the request fails."
        let stale = self
            .shard
            .entries(aor, now_ms)
            .any(|(_, b)| b.call_id() == e.call_id && e.cseq.number <= b.cseq());
        if stale {
            return self.reply(peer, (req, e), 400, "CSeq Out Of Order", out);
        }
        self.shard.remove_aor(aor, now_ms);
        self.ok(now_ms, peer, (req, e), aor, out)
    }

    /// True when a stored binding of `aor` was written by this very request (same Call-ID and
    /// CSeq): the client retransmitted it.
    fn is_retransmission(&self, aor: &[u8], e: &Essentials<'_>, now_ms: u64) -> bool {
        self.shard
            .entries(aor, now_ms)
            .any(|(_, b)| b.call_id() == e.call_id && b.cseq() == e.cseq.number)
    }

    /// Whether the authenticated `username` may register `to` in domain `d`: its own user name
    /// at the domain.
    fn owns(&self, d: usize, username: Quoted<'_>, to: &SipUri<'_>) -> bool {
        if !self.domains.spells(d, to.host_raw) {
            return false;
        }
        let Some(user) = to.user else {
            return false;
        };
        // The usual user part has no escape and the usual user name no quoted-pair: then both
        // are their bytes.
        let raw = user.raw();
        if let Some(name) = username.plain()
            && chars::find_byte(raw, 0, b'%').is_none()
        {
            return name == raw;
        }
        let mut buf = [0u8; 256];
        match user.decode_into(&mut buf) {
            Some(user) => username.eq_bytes(user),
            None => false,
        }
    }

    /// Step 8: "The registrar returns a 200 (OK) response. The response MUST contain Contact
    /// header field values enumerating all current bindings."
    fn ok(
        &self,
        now_ms: u64,
        peer: Peer,
        (req, e): (&Request<'_, '_>, &Essentials<'_>),
        aor: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        self.respond(peer, (req, e), 200, "OK", out, |r| {
            for b in self.shard.lookup(aor, now_ms) {
                let left = b.expires_in(now_ms).div_ceil(1000);
                r.contact_echo(
                    b.contact(),
                    b.params(),
                    u32::try_from(left).unwrap_or(u32::MAX),
                );
            }
            // RFC 3327 5.3: the registrar returns the Path it stored when the UA supports path.
            // (Without a Path in the request there is nothing to return: Supported is not read.)
            let supports_path = req.headers.get(HeaderName::Path).is_some()
                && req
                    .headers
                    .option_tags(HeaderName::Supported)
                    .any(|t| t.is_ok_and(|t| t.eq_ignore_ascii_case(b"path")));
            if supports_path {
                for p in req.headers.elements(HeaderName::Path) {
                    r.header("Path", p);
                }
            }
            r.date_from(&self.date, now_ms / 1000);
        })
    }

    /// A 401 with one challenge per configured algorithm, most preferred first.
    fn challenge(
        &mut self,
        now_s: u64,
        d: usize,
        stale: bool,
        peer: Peer,
        (req, e): (&Request<'_, '_>, &Essentials<'_>),
        out: &mut [u8],
    ) -> Option<usize> {
        self.seq = self.seq.wrapping_add(1);
        let realm = self.config.domains.get(d)?.realm.as_bytes();
        let nonce = self.keys.issue(now_s, realm, self.seq);
        let lines = self.challenges.get(d)?;
        self.respond(peer, (req, e), 401, "Unauthorized", out, |r| {
            r.challenges(lines, nonce.as_bytes(), stale);
        })
    }

    /// RFC 3261 10.3 step 7: "the registrar MAY reject the registration with a response of
    /// 423 (Interval Too Brief). This response MUST contain a Min-Expires header field".
    fn too_brief(
        &self,
        min: u32,
        peer: Peer,
        request: (&Request<'_, '_>, &Essentials<'_>),
        out: &mut [u8],
    ) -> Option<usize> {
        self.respond(peer, request, 423, "Interval Too Brief", out, |r| {
            r.min_expires(min);
        })
    }

    /// The contact limit under `ContactPolicy::Reject`.
    fn too_many(
        &self,
        retry_after: u32,
        peer: Peer,
        request: (&Request<'_, '_>, &Essentials<'_>),
        out: &mut [u8],
    ) -> Option<usize> {
        self.respond(peer, request, 503, "Too Many Bindings", out, |r| {
            r.retry_after(retry_after);
        })
    }

    /// A response with nothing but the copied headers and Server.
    fn reply(
        &self,
        peer: Peer,
        request: (&Request<'_, '_>, &Essentials<'_>),
        code: u16,
        reason: &str,
        out: &mut [u8],
    ) -> Option<usize> {
        self.respond(peer, request, code, reason, out, |_| {})
    }

    /// Writes a response: the headers copied from the request, what `add` writes, Server.
    pub(super) fn respond(
        &self,
        peer: Peer,
        (req, e): (&Request<'_, '_>, &Essentials<'_>),
        code: u16,
        reason: &str,
        out: &mut [u8],
        add: impl FnOnce(&mut ResponseBuilder<'_>),
    ) -> Option<usize> {
        let mut r = ResponseBuilder::start_checked(
            out,
            code,
            reason,
            &req.headers,
            e,
            peer.source,
            Some(&self.tag),
        );
        add(&mut r);
        r.finish_with(&self.trailer).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{self, Header, Limits, Message};

    /// The walk [`parse_contacts`] replaced: every element of every line, split at commas.
    fn by_elements(req: &Request<'_, '_>) -> Result<(usize, Vec<Vec<u8>>), &'static str> {
        let (mut count, mut wildcard, mut list) = (0, false, Vec::new());
        for element in req.headers.elements(HeaderName::Contact) {
            count += 1;
            if element == b"*" {
                wildcard = true;
            } else if !wildcard && list.len() <= MAX_CONTACTS_PER_REQUEST {
                let c = Contact::parse(element).map_err(|_| "Bad Contact")?;
                list.push(c.addr.uri.raw().to_vec());
            }
        }
        match (wildcard, count) {
            (true, 1) => Ok((usize::MAX, Vec::new())),
            (true, _) if count > 0 => Err("Bad Contact"),
            _ if list.len() > MAX_CONTACTS_PER_REQUEST => Err("Too Many Contacts"),
            _ => Ok((list.len(), list)),
        }
    }

    fn ours(req: &Request<'_, '_>) -> Result<(usize, Vec<Vec<u8>>), &'static str> {
        let mut items = [None; MAX_CONTACTS_PER_REQUEST];
        let set = parse_contacts(req, Some(&mut items));
        // Checking alone says the same.
        assert_eq!(parse_contacts(req, None).map(|_| ()), set.map(|_| ()));
        Ok(match set? {
            ContactSet::Absent => (0, Vec::new()),
            ContactSet::Wildcard => (usize::MAX, Vec::new()),
            ContactSet::List(n) => {
                let uris = items.iter().flatten().map(|c| c.addr.uri.raw().to_vec());
                (n, uris.collect())
            }
        })
    }

    /// A line that parses whole is one contact; anything else is split at its commas, as
    /// before: both readings agree on every Contact header set.
    #[test]
    fn contact_lines_read_whole_or_split_agree() {
        let many = vec!["<sip:a@x>"; MAX_CONTACTS_PER_REQUEST + 1].join(", ");
        let lines: &[&[&str]] = &[
            &[],
            &["<sip:a@192.0.2.1>;expires=60"],
            &["<sip:a,b@192.0.2.1>;p=\"x, y\""],
            &["\"Doe, J\" <sip:a@x>", "<sip:b@x>"],
            &["<sip:a@x>, <sip:b@x>;q=0.5"],
            &["<sip:a@x>,"],
            &["*"],
            &["*", "<sip:a@x>"],
            &["<sip:a@x>", "*"],
            &["sip:a@x, sip:b@x"],
            &["sip:a@x;p, junk"],
            &["<sip:a@x"],
            &[&many],
            &["<sip:a@x>", &many],
        ];
        for set in lines {
            let mut msg = String::from(
                "REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
                 From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n",
            );
            for line in *set {
                msg += &format!("Contact: {line}\r\n");
            }
            msg += "Content-Length: 0\r\n\r\n";
            let mut storage = [Header::EMPTY; 64];
            let Ok(Message::Request(req)) =
                sip::parse_datagram(msg.as_bytes(), &mut storage, &Limits::default())
            else {
                panic!("test message must frame: {msg}")
            };
            assert_eq!(ours(&req), by_elements(&req), "{set:?}");
        }
    }
}
