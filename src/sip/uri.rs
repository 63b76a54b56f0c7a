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
        if s.is_empty() || !s.iter().all(|&b| chars::is(b, HOST)) {
            return None;
        }
        if s.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
            // Looks like an IPv4 address; a numeric toplabel is not a valid host name either.
            let text = core::str::from_utf8(s).ok()?;
            return text.parse::<Ipv4Addr>().ok().map(Host::Ipv4);
        }
        // hostname = *( domainlabel "." ) toplabel [ "." ]; labels do not start or end with "-".
        let name = s.strip_suffix(b".").unwrap_or(s);
        for label in name.split(|&b| b == b'.') {
            if label.is_empty() || label.first() == Some(&b'-') || label.last() == Some(&b'-') {
                return None;
            }
        }
        Some(Host::Domain(s))
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
        let colon = memchr::memchr(b':', raw)?;
        let scheme = raw.get(..colon)?;
        let rest = raw.get(colon + 1..)?;
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
        let mut s = scheme.iter();
        if !s.next()?.is_ascii_alphabetic()
            || !s.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return None;
        }
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
    fn parse_rest(secure: bool, rest: &'a [u8], raw: &'a [u8]) -> Option<SipUri<'a>> {
        // A literal "@" appears nowhere in a SIP URI but as the end of userinfo: params and
        // headers admit it only escaped.
        let (userinfo, hostpart) = match memchr::memchr(b'@', rest) {
            Some(at) => (Some(rest.get(..at)?), rest.get(at + 1..)?),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, password) = match memchr::memchr(b':', info) {
                    Some(c) => (info.get(..c)?, Some(info.get(c + 1..)?)),
                    None => (info, None),
                };
                if !params::is_escaped_class(user, UNRESERVED | USER) {
                    return None;
                }
                if let Some(p) = password
                    && !p.is_empty()
                    && !params::is_escaped_class(p, UNRESERVED | PASSWORD)
                {
                    return None;
                }
                (Some(Escaped(user)), password.map(Escaped))
            }
        };
        let (hostport, headers) = match memchr::memchr(b'?', hostpart) {
            Some(q) => (hostpart.get(..q)?, Some(hostpart.get(q + 1..)?)),
            None => (hostpart, None),
        };
        if let Some(h) = headers
            && !params::is_uri_headers(h)
        {
            return None;
        }
        let (hostport, params) = match memchr::memchr(b';', hostport) {
            Some(s) => (hostport.get(..s)?, Params::uri(hostport.get(s + 1..)?)?),
            None => (hostport, Params::EMPTY),
        };
        let host_end = if hostport.first() == Some(&b'[') {
            memchr::memchr(b']', hostport)? + 1
        } else {
            memchr::memchr(b':', hostport).unwrap_or(hostport.len())
        };
        let host_raw = hostport.get(..host_end)?;
        let host = Host::parse(host_raw)?;
        let port = match hostport.get(host_end..)? {
            [] => None,
            [b':', digits @ ..] => Some(chars::parse_decimal(digits, 65_535)? as u16),
            _ => return None,
        };
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
