//! The client side of digest authentication (RFC 3261 22.2, RFC 7616, RFC 8760).
//!
//! What it does: reads the Digest challenges of a 401 (`WWW-Authenticate`) or 407
//! (`Proxy-Authenticate`), picks the strongest algorithm both sides support, keeps the
//! nonce-count of a nonce that is reused for refreshes, and writes the credentials. The response
//! itself is `sipreg::auth::compute_response`, the function the registrar's verifier uses.
//!
//! What it does not do: `-sess` algorithms, `userhash`, `qop=auth-int` (only `auth`, or none when
//! the challenge offers no qop), or decide when to re-authenticate (the engine does, from
//! [`Challenge::stale`]).

use std::sync::Arc;

use sipreg::auth::{Algorithm, Ha1, compute_response};
use sipreg::sip::chars::{self, CommaList};
use sipreg::sip::{DigestResponse, Quoted};

/// One Digest challenge, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub realm: Arc<str>,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Whether `qop` lists `auth`; otherwise the RFC 2069 form is used.
    pub qop_auth: bool,
    /// RFC 7616 3.3: "stale: A case-insensitive flag indicating that the previous request from
    /// the client was rejected because the nonce value was stale." The credentials were right;
    /// retry with the new nonce without asking the user.
    pub stale: bool,
}

impl Challenge {
    /// Parses one challenge value (`Digest realm="...", nonce="...", ...`). `None` for another
    /// scheme, an unknown or `-sess` algorithm, a missing realm or nonce, or bad syntax.
    pub fn parse(value: &[u8]) -> Option<Challenge> {
        let s = chars::trim(value);
        let n = s.iter().take_while(|&&b| chars::is_token(&[b])).count();
        let (scheme, rest) = s.split_at_checked(n)?;
        if !scheme.eq_ignore_ascii_case(b"Digest")
            || !rest.first().is_some_and(|&b| chars::is_lws(b))
        {
            return None;
        }
        // Values stay borrowed until the challenge is complete; only the three kept are copied.
        let (mut realm, mut nonce, mut opaque) = (None, None, None);
        let mut algorithm = Some(Algorithm::Md5); // RFC 7616 3.3: absent means MD5.
        let (mut qop_auth, mut stale) = (false, false);
        for param in CommaList::new(rest) {
            let eq = param.iter().position(|&b| b == b'=')?;
            let name = chars::trim(param.get(..eq)?);
            let raw = chars::trim(param.get(eq + 1..)?);
            let value = if raw.first() == Some(&b'"') {
                let (inner, after) = chars::split_quoted(raw)?;
                if !after.is_empty() {
                    return None;
                }
                Value::Quoted(inner)
            } else {
                // A token: UTF-8 as the owned form was.
                std::str::from_utf8(raw).ok()?;
                Value::Token(raw)
            };
            let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
            if is(b"realm") {
                realm = Some(value);
            } else if is(b"nonce") {
                nonce = Some(value);
            } else if is(b"opaque") {
                opaque = Some(value);
            } else if is(b"algorithm") {
                algorithm = value.with(Algorithm::from_token);
            } else if is(b"qop") {
                // As text, trimmed as `str::trim` does (any Unicode white space), as before.
                qop_auth = value.with(|v| {
                    String::from_utf8_lossy(v)
                        .split(',')
                        .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                });
            } else if is(b"stale") {
                stale = value.with(|v| v.eq_ignore_ascii_case(b"true"));
            }
        }
        Some(Challenge {
            realm: Arc::from(realm?.owned()),
            nonce: nonce?.owned(),
            opaque: opaque.map(Value::owned),
            algorithm: algorithm?,
            qop_auth,
            stale,
        })
    }

    /// The challenge to answer among several: the strongest algorithm in `supported`.
    /// RFC 8760 3: the server lists its preferred first, and a client "SHOULD" use "the topmost
    /// header field that it supports"; sipreg lists strongest first, so both rules agree there.
    /// Ties (two challenges with one algorithm) go to the first.
    pub fn choose<'v>(
        values: impl Iterator<Item = &'v [u8]>,
        supported: &[Algorithm],
    ) -> Option<Challenge> {
        let rank = |a: Algorithm| Algorithm::ALL.iter().position(|&x| x == a);
        let mut best: Option<Challenge> = None;
        for c in values.filter_map(Challenge::parse) {
            if !supported.contains(&c.algorithm) {
                continue;
            }
            if best
                .as_ref()
                .is_none_or(|b| rank(c.algorithm) < rank(b.algorithm))
            {
                best = Some(c);
            }
        }
        best
    }
}

/// A parameter value as it stands in the challenge.
#[derive(Clone, Copy)]
enum Value<'a> {
    /// Between the quotes, quoted-pairs unresolved.
    Quoted(&'a [u8]),
    Token(&'a [u8]),
}

impl Value<'_> {
    /// The value, quoted-pairs resolved (and, from a quoted string that is not UTF-8, invalid
    /// sequences replaced, as when it was copied out).
    fn owned(self) -> String {
        match self {
            Value::Quoted(inner) => unescape(inner),
            Value::Token(t) => String::from_utf8_lossy(t).into_owned(),
        }
    }

    /// Calls `f` with the resolved bytes, without copying when nothing needs resolving.
    fn with<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Value::Quoted(inner) if inner.contains(&b'\\') => f(unescape(inner).as_bytes()),
            Value::Quoted(v) | Value::Token(v) => f(v),
        }
    }
}

/// Appends `value` as the inside of a quoted string: `"` and `\\` become quoted-pairs
/// (RFC 3261 25.1), undoing [`unescape`].
fn quote(out: &mut Vec<u8>, value: &[u8]) {
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// Resolves quoted-pairs.
fn unescape(inner: &[u8]) -> String {
    if !inner.contains(&b'\\') {
        return String::from_utf8_lossy(inner).into_owned();
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut escaped = false;
    for &b in inner {
        if !escaped && b == b'\\' {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(b);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a user agent keeps between requests: the last challenge answered, its HA1 and the
/// nonce-count, so that a refresh carries pre-emptive credentials with the same nonce.
#[derive(Clone)]
pub struct Session {
    pub challenge: Challenge,
    ha1: Ha1,
    /// The last nonce-count sent with this nonce (0: none yet).
    nc: u32,
}

impl Session {
    /// A session for a fresh challenge: HA1 from the password, nonce-count 0.
    pub fn new(challenge: Challenge, user: &str, password: &str) -> Session {
        let ha1 = Ha1::from_password(
            challenge.algorithm,
            user.as_bytes(),
            challenge.realm.as_bytes(),
            password.as_bytes(),
        );
        Session {
            challenge,
            ha1,
            nc: 0,
        }
    }

    /// Takes a new challenge (after `stale=true`, or any new nonce): same user, new nonce, the
    /// count starts again. The HA1 is kept when realm and algorithm did not change.
    pub fn renew(&mut self, challenge: Challenge, user: &str, password: &str) {
        if challenge.realm == self.challenge.realm
            && challenge.algorithm == self.challenge.algorithm
        {
            self.challenge = challenge;
            self.nc = 0;
        } else {
            *self = Session::new(challenge, user, password);
        }
    }

    /// The nonce-count for the next request with this nonce. RFC 7616 3.4: "The nc value is the
    /// hexadecimal count of the number of requests (including the current request) that the
    /// client has sent with the nonce value in this request."
    pub fn next_nc(&mut self) -> u32 {
        self.nc = self.nc.wrapping_add(1);
        self.nc
    }

    pub fn nc(&self) -> u32 {
        self.nc
    }

    /// Appends the Authorization header line (with CRLF) for `REGISTER uri` with count `nc`.
    /// A retransmission passes the same `nc` and gets the same bytes.
    pub fn write_authorization(
        &self,
        out: &mut Vec<u8>,
        user: &str,
        uri: &str,
        nc: u32,
        cnonce: &[u8],
    ) {
        let c = &self.challenge;
        let qop: Option<&[u8]> = c.qop_auth.then_some(b"auth");
        let template = DigestResponse {
            username: Some(Quoted(user.as_bytes())),
            realm: Some(Quoted(c.realm.as_bytes())),
            nonce: Some(Quoted(c.nonce.as_bytes())),
            uri: Some(Quoted(uri.as_bytes())),
            response: None,
            algorithm: Some(c.algorithm.name().as_bytes()),
            cnonce: qop.map(|_| Quoted(cnonce)),
            opaque: None,
            qop,
            nc: qop.map(|_| nc),
            userhash: false,
        };
        // compute_response is None only for a missing parameter or an algorithm mismatch; the
        // template above has every parameter and the HA1's own algorithm.
        let response = compute_response(&self.ha1, b"REGISTER", &template, b"")
            .expect("complete template with the HA1's algorithm");
        // Appended piece by piece rather than through `write!`, which cost more than the
        // registrar's whole verification (callgrind).
        out.extend_from_slice(b"Authorization: Digest username=\"");
        out.extend_from_slice(user.as_bytes());
        out.extend_from_slice(b"\", realm=\"");
        quote(out, c.realm.as_bytes());
        out.extend_from_slice(b"\", nonce=\"");
        quote(out, c.nonce.as_bytes());
        out.extend_from_slice(b"\", uri=\"");
        out.extend_from_slice(uri.as_bytes());
        out.extend_from_slice(b"\", response=\"");
        out.extend_from_slice(response.as_bytes());
        out.extend_from_slice(b"\", algorithm=");
        out.extend_from_slice(c.algorithm.name().as_bytes());
        if qop.is_some() {
            out.extend_from_slice(b", qop=auth, nc=");
            crate::message::hex8(out, nc);
            out.extend_from_slice(b", cnonce=\"");
            out.extend_from_slice(cnonce);
            out.push(b'"');
        }
        if let Some(o) = &c.opaque {
            out.extend_from_slice(b", opaque=\"");
            quote(out, o.as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipreg::auth::{NcTracker, NcVerdict, NonceCheck, NonceKeys, UserDb};
    use sipreg::sip::Credentials;

    const REALM: &[u8] = b"example.com";

    fn server() -> (NonceKeys, UserDb) {
        let keys = NonceKeys::new(0, &[9; 32]);
        let mut users = UserDb::new();
        for alg in Algorithm::ALL {
            users.insert(
                b"u000001",
                REALM,
                Ha1::from_password(alg, b"u000001", REALM, b"p000001"),
            );
        }
        (keys, users)
    }

    fn header_value(line: &[u8]) -> &[u8] {
        let v = line.strip_prefix(b"Authorization: ").unwrap();
        v.strip_suffix(b"\r\n").unwrap()
    }

    /// The credentials this module writes pass the registrar's own verifier, for every algorithm,
    /// and a wrong password does not.
    #[test]
    fn credentials_verify_with_sipreg() {
        let (keys, users) = server();
        let now = 1_800_000_000;
        for alg in Algorithm::ALL {
            let nonce = String::from_utf8(keys.issue(now, REALM, 1).as_bytes().to_vec()).unwrap();
            let value = format!(
                "Digest realm=\"example.com\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
                alg.name()
            );
            let ch = Challenge::parse(value.as_bytes()).unwrap();
            assert_eq!(ch.algorithm, alg);
            for (password, ok) in [("p000001", true), ("wrong", false)] {
                let mut s = Session::new(ch.clone(), "u000001", password);
                let nc = s.next_nc();
                let mut out = Vec::new();
                s.write_authorization(&mut out, "u000001", "sip:example.com", nc, b"c0ffee");
                let Some(Credentials::Digest(d)) = Credentials::parse(header_value(&out)) else {
                    panic!("unparsable {}", String::from_utf8_lossy(&out))
                };
                assert_eq!(
                    users.verify_user(REALM, b"REGISTER", &d, b""),
                    ok,
                    "{alg} {password}"
                );
                assert_eq!(d.nc, Some(1));
                let text = d.nonce.unwrap().plain().unwrap();
                assert!(matches!(
                    keys.check(text, now + 1, REALM, 300),
                    NonceCheck::Fresh { .. }
                ));
            }
        }
    }

    /// Reusing a nonce counts up, which the registrar's replay table accepts; the same count
    /// again is a replay.
    #[test]
    fn nonce_count_increments_on_reuse() {
        let (keys, users) = server();
        let now = 1_800_000_000;
        let nonce = String::from_utf8(keys.issue(now, REALM, 1).as_bytes().to_vec()).unwrap();
        let value =
            format!("Digest realm=\"example.com\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"");
        let mut s = Session::new(
            Challenge::parse(value.as_bytes()).unwrap(),
            "u000001",
            "p000001",
        );
        let mut counts = NcTracker::with_capacity(1024, 300);
        for want in 1..=3u32 {
            let nc = s.next_nc();
            assert_eq!(nc, want);
            let mut out = Vec::new();
            s.write_authorization(&mut out, "u000001", "sip:example.com", nc, b"abc");
            assert!(String::from_utf8_lossy(&out).contains(&format!("nc={want:08x}")));
            let Some(Credentials::Digest(d)) = Credentials::parse(header_value(&out)) else {
                panic!()
            };
            assert!(users.verify_user(REALM, b"REGISTER", &d, b""));
            let NonceCheck::Fresh { issued, id } = keys.check(nonce.as_bytes(), now, REALM, 300)
            else {
                panic!()
            };
            assert_eq!(counts.observe(id, issued, nc, now), NcVerdict::Accept);
            assert_eq!(counts.observe(id, issued, nc, now), NcVerdict::Replay);
        }
        // A retransmission repeats the count: same bytes.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        s.write_authorization(&mut a, "u000001", "sip:example.com", s.nc(), b"abc");
        s.write_authorization(&mut b, "u000001", "sip:example.com", s.nc(), b"abc");
        assert_eq!(a, b);
    }

    /// The line is what the `write!` form wrote, byte for byte, with and without qop and opaque.
    #[test]
    fn authorization_line_is_unchanged() {
        for (offer, tail) in [
            (
                b"Digest realm=\"r\\\"q\", nonce=\"n1\", algorithm=MD5, qop=\"auth\", opaque=\"o\""
                    .as_slice(),
                ", qop=auth, nc=0000002a, cnonce=\"c0\", opaque=\"o\"",
            ),
            (b"Digest realm=\"r\", nonce=\"n1\"".as_slice(), ""),
        ] {
            let ch = Challenge::parse(offer).unwrap();
            let s = Session::new(ch.clone(), "u1", "p1");
            let mut out = Vec::new();
            s.write_authorization(&mut out, "u1", "sip:r", 42, b"c0");
            let Some(Credentials::Digest(d)) = Credentials::parse(header_value(&out)) else {
                panic!("unparsable {}", String::from_utf8_lossy(&out))
            };
            let response = d.response.unwrap();
            // The realm goes back quoted as it came (RFC 3261 25.1 quoted-pair), though the
            // hash is over its unescaped value.
            let realm = ch.realm.replace('"', "\\\"");
            let want = format!(
                "Authorization: Digest username=\"u1\", realm=\"{realm}\", nonce=\"n1\", \
                 uri=\"sip:r\", response=\"{}\", algorithm=MD5{tail}\r\n",
                String::from_utf8_lossy(response),
            );
            assert_eq!(String::from_utf8_lossy(&out), want);
        }
    }

    #[test]
    fn stale_and_renewal() {
        let v = b"Digest realm=\"example.com\", nonce=\"n2\", algorithm=SHA-256, qop=\"auth,auth-int\", stale=TRUE, opaque=\"o\"";
        let ch = Challenge::parse(v).unwrap();
        assert!(ch.stale && ch.qop_auth);
        assert_eq!(ch.opaque.as_deref(), Some("o"));
        let first = Challenge::parse(
            b"Digest realm=\"example.com\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\"",
        )
        .unwrap();
        assert!(!first.stale);
        let mut s = Session::new(first, "u", "p");
        s.next_nc();
        s.next_nc();
        assert_eq!(s.nc(), 2);
        s.renew(ch, "u", "p");
        assert_eq!((s.nc(), s.challenge.nonce.as_str()), (0, "n2"));
        assert_eq!(s.next_nc(), 1);
    }

    #[test]
    fn picks_the_strongest_supported() {
        let offers: [&[u8]; 3] = [
            b"Digest realm=\"r\", nonce=\"a\", algorithm=SHA-512-256, qop=\"auth\"",
            b"Digest realm=\"r\", nonce=\"b\", algorithm=SHA-256, qop=\"auth\"",
            b"Digest realm=\"r\", nonce=\"c\", algorithm=MD5, qop=\"auth\"",
        ];
        let pick =
            |sup: &[Algorithm]| Challenge::choose(offers.iter().copied(), sup).map(|c| c.algorithm);
        assert_eq!(pick(&Algorithm::ALL), Some(Algorithm::Sha512_256));
        assert_eq!(
            pick(&[Algorithm::Md5, Algorithm::Sha256]),
            Some(Algorithm::Sha256)
        );
        assert_eq!(pick(&[Algorithm::Md5]), Some(Algorithm::Md5));
        // The order of the offers does not matter: strongest wins.
        let reversed = offers.iter().rev().copied();
        assert_eq!(
            Challenge::choose(reversed, &Algorithm::ALL).map(|c| c.algorithm),
            Some(Algorithm::Sha512_256)
        );
        // No algorithm parameter means MD5; -sess and other schemes are skipped.
        assert_eq!(
            Challenge::parse(b"Digest realm=\"r\", nonce=\"x\"")
                .unwrap()
                .algorithm,
            Algorithm::Md5
        );
        assert!(Challenge::parse(b"Digest realm=\"r\", nonce=\"x\", algorithm=MD5-sess").is_none());
        assert!(Challenge::parse(b"Basic realm=\"r\"").is_none());
        assert!(Challenge::parse(b"Digest nonce=\"x\"").is_none());
    }
}
