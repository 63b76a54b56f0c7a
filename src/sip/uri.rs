//! SIP and SIPS URIs (RFC 3261 19.1), other absolute URIs as opaque text, and `%HH` escapes.
//!
//! Parsing borrows from the input and validates everything once; the components it returns are
//! well formed by construction. Escapes stay escaped in the components and are decoded exactly
//! once, on comparison ([`Escaped`]), never recursively: `%2541` is `%41`, not `A`.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::chars::{self, HOST, PASSWORD, UNRESERVED, USER};
use super::params::{self, Params};

/// Bytes that may contain `%HH` escapes, compared after decoding each escape exactly once.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a [u8]);

impl<'a> Escaped<'a> {
    pub fn raw(&self) -> &'a [u8] {
        self.0
    }

    /// The decoded bytes. Malformed escapes (which validated components never contain) pass
    /// through literally.
    pub fn decoded(&self) -> Decoded<'a> {
        Decoded { rest: self.0 }
    }

    /// RFC 3261 19.1.4: components are compared after unescaping, case-sensitively.
    pub fn eq_decoded(&self, other: &Escaped<'_>) -> bool {
        self.decoded().eq(other.decoded())
    }

    /// Compares the decoded bytes with plain bytes.
    pub fn eq_bytes(&self, plain: &[u8]) -> bool {
        self.decoded().eq(plain.iter().copied())
    }

    /// Case-insensitive comparison of the decoded bytes.
    pub fn eq_ignore_case(&self, other: &Escaped<'_>) -> bool {
        self.decoded()
            .map(|b| b.to_ascii_lowercase())
            .eq(other.decoded().map(|b| b.to_ascii_lowercase()))
    }

    /// Writes the decoded bytes into `out`, returning the written part, or `None` if too small.
    pub fn decode_into<'b>(&self, out: &'b mut [u8]) -> Option<&'b [u8]> {
        let mut n = 0;
        for b in self.decoded() {
            *out.get_mut(n)? = b;
            n += 1;
        }
        out.get(..n)
    }
}

impl PartialEq for Escaped<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.eq_decoded(other)
    }
}

impl Eq for Escaped<'_> {}

/// Iterator over the decoded bytes of an [`Escaped`].
#[derive(Clone, Debug)]
pub struct Decoded<'a> {
    rest: &'a [u8],
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let (&b, tail) = self.rest.split_first()?;
        if b == b'%'
            && let [h, l, after @ ..] = tail
            && let (Some(h), Some(l)) = (chars::hex_value(*h), chars::hex_value(*l))
        {
            self.rest = after;
            return Some(h << 4 | l);
        }
        self.rest = tail;
        Some(b)
    }
}

/// The host part of a SIP URI or Via sent-by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host<'a> {
    Ipv4(Ipv4Addr),
    /// From an IPv6 reference `[...]`.
    Ipv6(Ipv6Addr),
    /// A host name, as received (compare case-insensitively).
    Domain(&'a [u8]),
}

impl<'a> Host<'a> {
    /// Parses `hostname / IPv4address / IPv6reference`.
    pub fn parse(s: &'a [u8]) -> Option<Host<'a>> {
        if let Some(inner) = s.strip_prefix(b"[") {
            let inner = inner.strip_suffix(b"]")?;
            let text = core::str::from_utf8(inner).ok()?;
            return text.parse::<Ipv6Addr>().ok().map(Host::Ipv6);
        }
        // An IPv4 address if it reads as one. All digits and dots but no address is nothing: a
        // numeric toplabel is not a valid host name either.
        if s.first().is_some_and(u8::is_ascii_digit) {
            if let Some(a) = parse_ipv4(s) {
                return Some(Host::Ipv4(a));
            }
            if s.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
                return None;
            }
        }
        // hostname = *( domainlabel "." ) toplabel [ "." ]; labels are not empty and do not start
        // or end with "-". Within `alphanum / "-" / "."` that can only go wrong around the
        // punctuation: at the ends of the name (without its optional trailing dot) and in the
        // pairs "..", ".-" and "-.". The name is read as if a dot stood on either side of it.
        let name = s.strip_suffix(b".").unwrap_or(s);
        let mut prev = b'.';
        for &b in name {
            // "-" and "." sort below every alphanumeric byte.
            let fine = if b >= b'0' {
                chars::is(b, HOST)
            } else {
                match b {
                    b'.' => prev != b'.' && prev != b'-',
                    b'-' => prev != b'.',
                    _ => false,
                }
            };
            if !fine {
                return None;
            }
            prev = b;
        }
        (prev != b'.' && prev != b'-').then_some(Host::Domain(s))
    }

    /// RFC 3261 19.1.4: host names compare case-insensitively, addresses by value.
    pub fn matches(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
            (Host::Ipv6(a), Host::Ipv6(b)) => a == b,
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }

    pub fn ip(&self) -> Option<core::net::IpAddr> {
        match *self {
            Host::Ipv4(a) => Some(a.into()),
            Host::Ipv6(a) => Some(a.into()),
            Host::Domain(_) => None,
        }
    }
}

/// `IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT`, read as the standard
/// library reads it (each part at most 255, no leading zero but in "0") without the detour
/// through `str`, which cost more than the rest of the host check.
fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if s.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut value = 0u32;
        while let Some(&d) = s.get(i).filter(|d| d.is_ascii_digit()) {
            if i - start == 3 {
                return None;
            }
            value = value * 10 + u32::from(d - b'0');
            i += 1;
        }
        let leading_zero = i - start > 1 && s.get(start) == Some(&b'0');
        if i == start || leading_zero {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    (i == s.len()).then(|| Ipv4Addr::from(octets))
}

/// A SIP or SIPS URI.
#[derive(Clone, Copy, Debug)]
pub struct SipUri<'a> {
    pub secure: bool,
    pub user: Option<Escaped<'a>>,
    pub password: Option<Escaped<'a>>,
    pub host: Host<'a>,
    /// The host as written (brackets included for IPv6).
    pub host_raw: &'a [u8],
    pub port: Option<u16>,
    pub params: Params<'a>,
    /// The text after `?`, validated as `hname=hvalue` pairs.
    pub headers: Option<&'a [u8]>,
    /// The whole URI as received.
    pub raw: &'a [u8],
}

/// Any URI in a SIP message.
#[derive(Clone, Copy, Debug)]
pub enum Uri<'a> {
    Sip(SipUri<'a>),
    /// An absoluteURI of another scheme (`tel:`, `http:`, ...), kept opaque.
    Other {
        scheme: &'a [u8],
        raw: &'a [u8],
    },
}

impl<'a> Uri<'a> {
    /// Parses a URI: `sip:`/`sips:` in full, other schemes as `scheme ":" opaque`.
    pub fn parse(raw: &'a [u8]) -> Option<Uri<'a>> {
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), and the first ":" ends it.
        if !raw.first()?.is_ascii_alphabetic() {
            return None;
        }
        let len = raw
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            .count();
        let (scheme, rest) = raw.split_at_checked(len)?;
        let rest = rest.strip_prefix(b":")?;
        if scheme.eq_ignore_ascii_case(b"sip") {
            SipUri::parse_rest(false, rest, raw).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case(b"sips") {
            SipUri::parse_rest(true, rest, raw).map(Uri::Sip)
        } else {
            let opaque_ok = !rest.is_empty()
                && rest
                    .iter()
                    .all(|&b| b > b' ' && b < 0x7f && !matches!(b, b'<' | b'>' | b'"'));
            opaque_ok.then_some(Uri::Other { scheme, raw })
        }
    }

    pub fn sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }

    pub fn raw(&self) -> &'a [u8] {
        match self {
            Uri::Sip(u) => u.raw,
            Uri::Other { raw, .. } => raw,
        }
    }
}

impl<'a> SipUri<'a> {
    /// Parses what follows `sip:` in one forward pass: each component is read as a run of its
    /// own alphabet, and the byte that ends the run says what comes next. (Splitting at the first
    /// `@`, `?`, `;` and `:` first, as the grammar reads, costs a search call per delimiter.)
    fn parse_rest(secure: bool, rest: &'a [u8], raw: &'a [u8]) -> Option<SipUri<'a>> {
        let (user, password, hostpart) = split_userinfo(rest)?;
        let host_len = if hostpart.first() == Some(&b'[') {
            hostpart.iter().position(|&b| b == b']')? + 1
        } else {
            hostpart.iter().take_while(|&&b| chars::is(b, HOST)).count()
        };
        let (host_raw, after) = hostpart.split_at_checked(host_len)?;
        let host = Host::parse(host_raw)?;
        let (port, after) = match after {
            [b':', digits @ ..] => {
                let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
                let (digits, after) = digits.split_at_checked(n)?;
                (Some(chars::parse_decimal(digits, 65_535)? as u16), after)
            }
            _ => (None, after),
        };
        // The host and port end at the parameters, the headers or the end of the URI.
        let (params, headers) = match after {
            [] => (Params::EMPTY, None),
            [b';', rest @ ..] => match rest.iter().position(|&b| b == b'?') {
                Some(q) => (Params::uri(rest.get(..q)?)?, Some(rest.get(q + 1..)?)),
                None => (Params::uri(rest)?, None),
            },
            [b'?', rest @ ..] => (Params::EMPTY, Some(rest)),
            _ => return None,
        };
        if let Some(h) = headers
            && !params::is_uri_headers(h)
        {
            return None;
        }
        Some(SipUri {
            secure,
            user,
            password,
            host,
            host_raw,
            port,
            params,
            headers,
            raw,
        })
    }

    /// The value of the `transport` URI parameter, if any.
    pub fn transport(&self) -> Option<&'a [u8]> {
        self.params.get(b"transport").flatten()
    }

    /// URI equivalence per RFC 3261 19.1.4.
    pub fn matches(&self, other: &SipUri<'_>) -> bool {
        // "A SIP and SIPS URI are never equivalent."
        // "Comparison of the userinfo of SIP and SIPS URIs is case-sensitive."
        // "An IP address that is the result of a DNS lookup of a host name does not match that
        //  host name." / "A URI omitting any component with a default value will not match a URI
        //  explicitly containing that component with its default value."
        if self.secure != other.secure
            || self.user != other.user
            || self.password != other.password
            || !self.host.matches(&other.host)
            || self.port != other.port
        {
            return false;
        }
        // "A URI omitting the user, ttl, method, maddr or transport parameter will not match a
        //  URI containing that parameter." Other parameters that appear in both must match.
        const SIGNIFICANT: [&[u8]; 5] = [b"user", b"ttl", b"method", b"maddr", b"transport"];
        for name in SIGNIFICANT {
            let a = self.params.find(name);
            let b = other.params.find(name);
            match (a, b) {
                (None, None) => {}
                (Some(a), Some(b)) if param_values_match(a.value, b.value) => {}
                _ => return false,
            }
        }
        for a in self.params.iter() {
            if let Some(b) = other.params.find(a.name)
                && !param_values_match(a.value, b.value)
            {
                return false;
            }
        }
        // "URI header components are never ignored. Any present header component MUST be present
        //  in both URIs and match for the URIs to match."
        headers_match(self.headers, other.headers) && headers_match(other.headers, self.headers)
    }
}

/// Splits `[ userinfo "@" ] hostport ...` into user, password and the rest.
///
/// A literal "@" appears nowhere in a SIP URI but as the end of userinfo: params and headers admit
/// it only escaped. So the user is the run of user characters at the start when an "@" (or a
/// ":" and a password run, then "@") ends it, and there is no userinfo when no "@" follows at
/// all; an "@" after anything else means a malformed user or password.
type UserInfo<'a> = (Option<Escaped<'a>>, Option<Escaped<'a>>, &'a [u8]);

fn split_userinfo(rest: &[u8]) -> Option<UserInfo<'_>> {
    let user_len = params::escaped_run(rest, UNRESERVED | USER);
    let user = rest.get(..user_len)?;
    let after_user = rest.get(user_len..)?;
    let (password, after) = match after_user {
        [b':', tail @ ..] => {
            let n = params::escaped_run(tail, UNRESERVED | PASSWORD);
            (Some(tail.get(..n)?), tail.get(n..)?)
        }
        _ => (None, after_user),
    };
    match after {
        // userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"; the user is 1*( ... ).
        [b'@', hostpart @ ..] if !user.is_empty() => {
            Some((Some(Escaped(user)), password.map(Escaped), hostpart))
        }
        _ if after_user.contains(&b'@') => None,
        _ => Some((None, None, rest)),
    }
}

fn param_values_match(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Escaped(a).eq_ignore_case(&Escaped(b)),
        _ => false,
    }
}

/// Every header of `a` appears in `b` with an equal value.
fn headers_match(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    fn split(h: &[u8]) -> (&[u8], &[u8]) {
        let mut parts = h.splitn(2, |&c| c == b'=');
        let name = parts.next().unwrap_or_default();
        (name, parts.next().unwrap_or_default())
    }
    let Some(a) = a else { return true };
    let b = b.unwrap_or_default();
    a.split(|&c| c == b'&').all(|ha| {
        let (na, va) = split(ha);
        b.split(|&c| c == b'&').any(|hb| {
            let (nb, vb) = split(hb);
            Escaped(na).eq_ignore_case(&Escaped(nb)) && Escaped(va) == Escaped(vb)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri<'_> {
        match Uri::parse(s.as_bytes()) {
            Some(Uri::Sip(u)) => u,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn components() {
        let u = sip("sips:alice:secret@[2001:db8::10]:5070;transport=tcp;lr?Subject=x&Priority=u");
        assert!(u.secure);
        assert!(u.user.unwrap().eq_bytes(b"alice"));
        assert!(u.password.unwrap().eq_bytes(b"secret"));
        assert_eq!(u.host, Host::Ipv6("2001:db8::10".parse().unwrap()));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.transport(), Some(&b"tcp"[..]));
        assert_eq!(u.params.get(b"lr"), Some(None));
        assert_eq!(u.headers, Some(&b"Subject=x&Priority=u"[..]));

        let u = sip("sip:user;par=u%40example.net@example.com");
        assert!(u.user.unwrap().eq_bytes(b"user;par=u@example.net"));
        assert_eq!(u.host, Host::Domain(b"example.com"));

        let u = sip("SIP:192.0.2.4");
        assert_eq!(u.host, Host::Ipv4(Ipv4Addr::new(192, 0, 2, 4)));
        assert!(u.user.is_none());
    }

    #[test]
    fn rejects() {
        for bad in [
            "sip:",
            "sip:user@",
            "sip:@example.com:99999",
            "sip:example.com:",
            "sip:example.com:5x",
            "sip:[2001:db8:::192.0.2.1]",
            "sip:[2001:db8::10",
            "sip:ex ample.com",
            "sip:-bad-.com",
            "sip:a@b;x=%zz",
            "sip:a@b?Route=<x>",
            " sip:a@b",
            "1sip:a@b",
            "sip:a%4@b",
            "sip:a@999.1.1.1",
        ] {
            assert!(Uri::parse(bad.as_bytes()).is_none(), "{bad} accepted");
        }
        assert!(matches!(
            Uri::parse(b"tel:+1-201-555-0123"),
            Some(Uri::Other { scheme: b"tel", .. })
        ));
    }

    #[test]
    fn host_labels() {
        for good in [
            "example.com",
            "example.com.",
            "a--b.c",
            "x",
            "1abc.com",
            "a.b1",
        ] {
            assert!(
                matches!(Host::parse(good.as_bytes()), Some(Host::Domain(_))),
                "{good}"
            );
        }
        for bad in [
            "", ".", "..", "a..b", "a.-b", "a-.b", "-a", "a-", "a..", ".a", "1.2.3", "a_b",
            "1.2.3.4.",
        ] {
            assert!(Host::parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn ipv4_as_the_standard_library_reads_it() {
        for text in [
            "192.0.2.14",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.04",
            "0.10.100.0",
            "1.2.3",
            "1.2.3.4.",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1234.1.1.1",
            "999.1.1.1",
            "00.0.0.0",
            "",
            "1.2.3.",
        ] {
            let std = text.parse::<Ipv4Addr>().ok();
            assert_eq!(parse_ipv4(text.as_bytes()), std, "{text}");
        }
    }

    #[test]
    fn escapes_decode_once() {
        let u = sip("sip:null-%00-null@example.com");
        let mut out = [0u8; 32];
        assert_eq!(
            u.user.unwrap().decode_into(&mut out),
            Some(&b"null-\0-null"[..])
        );
        assert!(Escaped(b"%2541").eq_bytes(b"%41"));
        assert!(!Escaped(b"%2541").eq_bytes(b"A"));
        assert!(Escaped(b"%75se%72").eq_bytes(b"user"));
        assert!(Escaped(b"%00").decoded().ne(Escaped(b"%00%00").decoded()));
    }

    #[test]
    fn rfc3261_19_1_4_equivalence() {
        let equal = [
            (
                "sip:%61lice@atlanta.com;transport=TCP",
                "sip:alice@AtLanTa.CoM;Transport=tcp",
            ),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            (
                "sip:carol@chicago.com;security=on",
                "sip:carol@chicago.com;newparam=5",
            ),
            (
                "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            ),
            (
                "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
            ),
        ];
        for (a, b) in equal {
            assert!(sip(a).matches(&sip(b)), "{a} != {b}");
            assert!(sip(b).matches(&sip(a)), "{b} != {a}");
        }
        let different = [
            (
                "SIP:ALICE@AtLanTa.CoM;Transport=udp",
                "sip:alice@AtLanTa.CoM;Transport=UDP",
            ),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            (
                "sip:bob@biloxi.com",
                "sip:bob@biloxi.com:6000;transport=tcp",
            ),
            (
                "sip:carol@chicago.com",
                "sip:carol@chicago.com?Subject=next%20meeting",
            ),
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
            (
                "sip:carol@chicago.com;security=on",
                "sip:carol@chicago.com;security=off",
            ),
            ("sip:a@b", "sips:a@b"),
        ];
        for (a, b) in different {
            assert!(!sip(a).matches(&sip(b)), "{a} == {b}");
        }
    }
}
