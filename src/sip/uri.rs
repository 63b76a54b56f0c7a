//! SIP and SIPS URIs (RFC 3261 19.1), other absolute URIs as opaque text, and `%HH` escapes.
//!
//! Parsing borrows from the input and validates everything once; the components it returns are
//! well formed by construction. Escapes stay escaped in the components and are decoded exactly
//! once, on comparison ([`Escaped`]), never recursively: `%2541` is `%41`, not `A`.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::chars::{self, run};
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
        match Host::parse_at(s, 0)? {
            (host, end) if end == s.len() => Some(host),
            _ => None,
        }
    }

    /// Reads the host that starts at `s[start]`, up to the first byte no host can continue with,
    /// and returns it with the index where it ends. `None` when what is there is no valid host
    /// (an empty one included); whether the byte after it may follow a host is for the caller.
    ///
    /// One pass over the bytes in the usual cases: text that starts with a digit is read as an
    /// IPv4 address first (and as a name only when it turns out not to be one), a name is read
    /// with its label rules checked at each "." and "-" as it goes by, and an IPv6 reference is
    /// the `[` ... `]` around hex digits, `:` and `.`.
    #[inline(always)]
    pub fn parse_at(s: &'a [u8], start: usize) -> Option<(Host<'a>, usize)> {
        let (kind, addr, end) = host_at(s, start)?;
        Some((Host::build(kind, addr, s.get(start..end)?), end))
    }

    /// The host that [`host_at`] found, `raw` being its text.
    #[inline(always)]
    fn build(kind: HostKind, addr: u128, raw: &'a [u8]) -> Host<'a> {
        match kind {
            HostKind::Name => Host::Domain(raw),
            HostKind::V4 => Host::Ipv4(Ipv4Addr::from_bits(addr as u32)),
            HostKind::V6 => Host::Ipv6(Ipv6Addr::from_bits(addr)),
        }
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

/// Which kind of host a reading found: the [`Host`] variants without their data, so that a
/// reading's result is plain numbers until the value it goes into is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostKind {
    Name,
    V4,
    V6,
}

/// [`Host::parse_at`] as plain values: the kind of host, its address (the bits of the IPv4 or
/// IPv6 address, 0 for a name) and where it ends.
#[inline(always)]
pub(crate) fn host_at(s: &[u8], start: usize) -> Option<(HostKind, u128, usize)> {
    match s.get(start) {
        Some(b'[') => {
            let (a, end) = ipv6_at(s, start)?;
            Some((HostKind::V6, a.to_bits(), end))
        }
        Some(b) if b.is_ascii_digit() => match ipv4_at(s, start) {
            Some((a, end)) => Some((HostKind::V4, u128::from(a.to_bits()), end)),
            None => Some((HostKind::Name, 0, name_at(s, start)?)),
        },
        _ => Some((HostKind::Name, 0, name_at(s, start)?)),
    }
}

// Host name bytes by kind: what may follow an IPv4 address, and the test of a name for letters.
const H_DIGIT: u8 = 1;
const H_LETTER: u8 = 2;
const H_DASH: u8 = 4;
const H_DOT: u8 = 8;

const fn build_host_class() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_digit() {
            H_DIGIT
        } else if b.is_ascii_alphabetic() {
            H_LETTER
        } else if b == b'-' {
            H_DASH
        } else if b == b'.' {
            H_DOT
        } else {
            0
        };
        c += 1;
    }
    t
}

static HOST_CLASS: [u8; 256] = build_host_class();

/// `hostname = *( domainlabel "." ) toplabel [ "." ]` at `s[start..]`: labels are not empty and
/// do not start or end with "-". Within `alphanum / "-" / "."` that can only go wrong around the
/// punctuation: at the start, at the end (without the optional trailing dot) and in the pairs
/// "..", ".-" and "-.". So the name is read as runs of letters and digits (four bytes a step),
/// and each "." or "-" that ends one is checked against what came before it.
/// Digits and dots only is no name (a numeric toplabel is not valid), and no address either
/// when the caller's IPv4 reading failed.
#[inline(always)]
fn name_at(s: &[u8], start: usize) -> Option<usize> {
    // Label by label: a run of letters and digits, then the "." or "-" that ends it. A "." must
    // follow a letter or digit (a run just read); a "-" a letter, digit or "-".
    let mut i = start;
    let mut after_dash = false;
    let ran = loop {
        let end = chars::run_end(s, i, run::ALPHANUM);
        let ran = end > i;
        i = end;
        match s.get(i) {
            Some(b'.') if ran => after_dash = false,
            Some(b'-') if ran || after_dash => after_dash = true,
            Some(b'.' | b'-') => return None,
            _ => break ran,
        }
        i += 1;
    };
    // Not empty, and not ending in "-".
    if i == start || (!ran && after_dash) {
        return None;
    }
    let name = s.get(start..i)?;
    // Text that starts with a digit was no IPv4 address (the caller tried): digits and dots
    // only is no name either.
    if name.first().is_some_and(u8::is_ascii_digit)
        && !name
            .iter()
            .any(|&b| HOST_CLASS[usize::from(b)] & (H_LETTER | H_DASH) != 0)
    {
        return None;
    }
    Some(i)
}

/// `IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT` at `s[start..]`, followed by
/// no host byte, read as the standard library reads one (each part at most 255, no leading zero
/// but in "0") without the detour through `str`.
///
/// With sixteen bytes from `start` on (an address is at most fifteen, and the byte after it is
/// looked at), they are read as one array, whose length the compiler knows: each look at a byte
/// is then a compare with a constant instead of with the slice's length.
#[inline(always)]
fn ipv4_at(s: &[u8], start: usize) -> Option<(Ipv4Addr, usize)> {
    let (bits, len) = match s.get(start..).and_then(|rest| rest.first_chunk::<16>()) {
        Some(w) => ipv4_in(|k| w.get(k).copied())?,
        None => ipv4_in(|k| s.get(start + k).copied())?,
    };
    Some((Ipv4Addr::from_bits(bits), start + len))
}

/// The reading behind [`ipv4_at`], over the bytes `byte(0)`, `byte(1)`, ... (`None` past the
/// end): the address's bits and its length.
#[inline(always)]
fn ipv4_in(byte: impl Fn(usize) -> Option<u8>) -> Option<(u32, usize)> {
    let digit = |k: usize| {
        let d = byte(k)?.wrapping_sub(b'0');
        (d < 10).then_some(u32::from(d))
    };
    let mut bits = 0u32;
    let mut i = 0;
    for k in 0..4 {
        if k > 0 {
            if byte(i) != Some(b'.') {
                return None;
            }
            i += 1;
        }
        let first = digit(i)?;
        let mut value = first;
        i += 1;
        if let Some(d) = digit(i) {
            // No leading zero but in "0".
            if first == 0 {
                return None;
            }
            value = value * 10 + d;
            i += 1;
            if let Some(d) = digit(i) {
                value = value * 10 + d;
                i += 1;
            }
        }
        if value > 255 {
            return None;
        }
        bits = bits << 8 | value;
    }
    if byte(i).is_some_and(|b| HOST_CLASS[usize::from(b)] != 0) {
        return None;
    }
    Some((bits, i))
}

/// `IPv6reference = "[" IPv6address "]"` at `s[start..]`.
fn ipv6_at(s: &[u8], start: usize) -> Option<(Ipv6Addr, usize)> {
    let mut i = start + 1;
    while s
        .get(i)
        .is_some_and(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    {
        i += 1;
    }
    if s.get(i) != Some(&b']') {
        return None;
    }
    let text = core::str::from_utf8(s.get(start + 1..i)?).ok()?;
    Some((text.parse().ok()?, i + 1))
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
        Uri::read(raw, true)
    }

    /// Reads the URI at the start of `s` up to the first byte that cannot continue it; its
    /// [`Uri::raw`] says how far that is. Whether that byte may end the URI (the end of the
    /// value, the `>` of a name-addr) is for the caller: any other byte there makes the URI
    /// malformed. No byte a URI can contain is `>`, so `<`...`>` needs no search for its end.
    #[inline(always)]
    pub fn parse_prefix(s: &'a [u8]) -> Option<Uri<'a>> {
        Uri::read(s, false)
    }

    /// The parser behind both: `whole` when the URI must take all of `s`.
    #[inline(always)]
    fn read(s: &'a [u8], whole: bool) -> Option<Uri<'a>> {
        UriParts::read(s, whole).map(UriParts::uri)
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

/// Which scheme a URI reading found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Sip,
    Sips,
    Other,
}

/// What a URI reading found, as slices and numbers: the [`Uri`] is built from them once, where
/// it is stored (a name-addr's URI field, a Request-URI's result), instead of being built as
/// the reading goes and moved from one enum to the next on its way out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UriParts<'a> {
    scheme: Scheme,
    host_kind: HostKind,
    /// The IPv4 or IPv6 address of the host (its bits), 0 for a name.
    addr: u128,
    /// The user; for another scheme, the scheme.
    user: Option<&'a [u8]>,
    password: Option<&'a [u8]>,
    host_raw: &'a [u8],
    port: Option<u16>,
    params: Params<'a>,
    headers: Option<&'a [u8]>,
    /// The whole URI.
    pub(crate) raw: &'a [u8],
}

impl<'a> UriParts<'a> {
    /// Reads the URI at the start of `s`, as [`Uri::parse_prefix`] (or, with `whole`,
    /// [`Uri::parse`]) does.
    #[inline(always)]
    pub(crate) fn read(s: &'a [u8], whole: bool) -> Option<UriParts<'a>> {
        // "sip:" and "sips:" with the case bit set in the letters only (":" has it already, and
        // the byte that differs from it by that bit alone is no ":").
        const SIP: u32 = u32::from_le_bytes(*b"sip:");
        const SIPS: u32 = u32::from_le_bytes(*b"sips");
        let (scheme, at) = match s.first_chunk::<4>().map(|w| u32::from_le_bytes(*w)) {
            Some(w) if w | 0x0020_2020 == SIP => (Scheme::Sip, 4),
            Some(w) if w | 0x2020_2020 == SIPS && s.get(4) == Some(&b':') => (Scheme::Sips, 5),
            _ => return UriParts::read_other(s, whole),
        };
        UriParts::read_sip(scheme, s, at, whole)
    }

    /// The URI these parts describe.
    #[inline(always)]
    pub(crate) fn uri(self) -> Uri<'a> {
        match self.scheme {
            Scheme::Other => Uri::Other {
                scheme: self.user.unwrap_or_default(),
                raw: self.raw,
            },
            scheme => Uri::Sip(SipUri {
                secure: scheme == Scheme::Sips,
                user: self.user.map(Escaped),
                password: self.password.map(Escaped),
                host: Host::build(self.host_kind, self.addr, self.host_raw),
                host_raw: self.host_raw,
                port: self.port,
                params: self.params,
                headers: self.headers,
                raw: self.raw,
            }),
        }
    }

    /// `scheme ":" opaque` for schemes other than `sip` and `sips` (which the caller has tried).
    #[cold]
    fn read_other(s: &'a [u8], whole: bool) -> Option<UriParts<'a>> {
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), and the first ":" ends it.
        if !s.first()?.is_ascii_alphabetic() {
            return None;
        }
        let len = s.iter().take_while(|&&b| chars::is_scheme(b)).count();
        let scheme = s.get(..len)?;
        if s.get(len) != Some(&b':') {
            return None;
        }
        if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
            // Unreachable from `read`, which reads these itself.
            return None;
        }
        let opaque = s
            .get(len + 1..)?
            .iter()
            .take_while(|&&b| chars::is_opaque_uri(b))
            .count();
        let end = len + 1 + opaque;
        if opaque == 0 || (whole && end != s.len()) {
            return None;
        }
        Some(UriParts {
            scheme: Scheme::Other,
            host_kind: HostKind::Name,
            addr: 0,
            user: Some(scheme),
            password: None,
            host_raw: b"",
            port: None,
            params: Params::EMPTY,
            headers: None,
            raw: s.get(..end)?,
        })
    }

    /// Reads what follows `sip:` (from `s[at]`) in one forward pass: each component is read as
    /// a run of its own alphabet, and the byte that ends the run says what comes next. Stops at
    /// the first byte that cannot continue the URI; `whole` refuses the URI unless that is the
    /// end of `s`.
    ///
    /// A literal "@" appears nowhere in a SIP URI but as the end of userinfo: params and headers
    /// admit it only escaped. So the user is the run of user characters at the start when an
    /// "@" (or a ":" and a password run, then "@") ends it, and there is no userinfo otherwise;
    /// an "@" anywhere else is refused by the host, port, params or headers it turns up in.
    #[inline(always)]
    fn read_sip(scheme: Scheme, s: &'a [u8], at: usize, whole: bool) -> Option<UriParts<'a>> {
        // A URI that is all of `s` (a Request-URI) is read from a host first: when one is there
        // and no "@" follows it, there is no userinfo (host bytes are no "@" either), and the
        // bytes have been looked at once. RFC 3261 10.2 leaves no userinfo in a REGISTER's.
        let no_userinfo = match whole.then(|| host_at(s, at)).flatten() {
            Some(host) if chars::find_byte(s, host.2, b'@').is_none() => Some(host),
            _ => None,
        };
        let (user, password, host_start, (host_kind, addr, mut i)) = match no_userinfo {
            Some(host) => (None, None, at, host),
            None => {
                // userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"; the user is
                // 1*( ... ).
                let user_end = params::escaped_end(s, at, chars::run::USER);
                let (user, password, host_start) = match s.get(user_end) {
                    Some(b'@') if user_end > at => (Some(s.get(at..user_end)?), None, user_end + 1),
                    Some(b':') if user_end > at => {
                        let end = params::escaped_end(s, user_end + 1, chars::run::PASSWORD);
                        if s.get(end) == Some(&b'@') {
                            (
                                Some(s.get(at..user_end)?),
                                Some(s.get(user_end + 1..end)?),
                                end + 1,
                            )
                        } else {
                            (None, None, at)
                        }
                    }
                    _ => (None, None, at),
                };
                (user, password, host_start, host_at(s, host_start)?)
            }
        };
        let host_raw = s.get(host_start..i)?;
        let mut port = None;
        if s.get(i) == Some(&b':') {
            let (value, end) = chars::decimal_at(s, i + 1, 65_535)?;
            port = Some(value as u16);
            i = end;
        }
        // The host and port end at the parameters, the headers or the end of the URI.
        let mut params = Params::EMPTY;
        if s.get(i) == Some(&b';') {
            (params, i) = Params::uri_at(s, i + 1)?;
        }
        let mut headers = None;
        if s.get(i) == Some(&b'?') {
            let end = params::uri_headers_end(s, i + 1);
            let h = s.get(i + 1..end)?;
            if !params::is_uri_headers(h) {
                return None;
            }
            headers = Some(h);
            i = end;
        }
        if whole && i != s.len() {
            return None;
        }
        Some(UriParts {
            scheme,
            host_kind,
            addr,
            user,
            password,
            host_raw,
            port,
            params,
            headers,
            raw: s.get(..i)?,
        })
    }
}

impl<'a> SipUri<'a> {
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

/// The implementations the one-pass parser replaced, kept as the reference it is tested against.
#[cfg(test)]
pub(crate) mod reference {
    use super::super::chars::{self, HOST, PASSWORD, UNRESERVED, USER};
    use super::super::params::{self, Params};
    use super::{Escaped, Host, Ipv4Addr, Ipv6Addr, SipUri, Uri};

    /// `IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT`, read as the standard
    /// library reads it (each part at most 255, no leading zero but in "0") without the detour
    /// through `str`, which cost more than the rest of the host check.
    pub fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
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

    pub fn host(s: &[u8]) -> Option<Host<'_>> {
        if let Some(inner) = s.strip_prefix(b"[") {
            let inner = inner.strip_suffix(b"]")?;
            let text = core::str::from_utf8(inner).ok()?;
            return text.parse::<Ipv6Addr>().ok().map(Host::Ipv6);
        }
        if s.first().is_some_and(u8::is_ascii_digit) {
            if let Some(a) = parse_ipv4(s) {
                return Some(Host::Ipv4(a));
            }
            if s.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
                return None;
            }
        }
        let name = s.strip_suffix(b".").unwrap_or(s);
        let mut prev = b'.';
        for &b in name {
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

    pub fn uri(raw: &[u8]) -> Option<Uri<'_>> {
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
            parse_rest(false, rest, raw).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case(b"sips") {
            parse_rest(true, rest, raw).map(Uri::Sip)
        } else {
            let opaque_ok = !rest.is_empty()
                && rest
                    .iter()
                    .all(|&b| b > b' ' && b < 0x7f && !matches!(b, b'<' | b'>' | b'"'));
            opaque_ok.then_some(Uri::Other { scheme, raw })
        }
    }

    fn uri_params(raw: &[u8]) -> Option<Params<'_>> {
        params::reference::uri(raw).map(Params::unchecked)
    }

    fn parse_rest<'a>(secure: bool, rest: &'a [u8], raw: &'a [u8]) -> Option<SipUri<'a>> {
        let (user, password, hostpart) = split_userinfo(rest)?;
        let host_len = if hostpart.first() == Some(&b'[') {
            hostpart.iter().position(|&b| b == b']')? + 1
        } else {
            hostpart.iter().take_while(|&&b| chars::is(b, HOST)).count()
        };
        let (host_raw, after) = hostpart.split_at_checked(host_len)?;
        let host = host(host_raw)?;
        let (port, after) = match after {
            [b':', digits @ ..] => {
                let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
                let (digits, after) = digits.split_at_checked(n)?;
                (Some(chars::parse_decimal(digits, 65_535)? as u16), after)
            }
            _ => (None, after),
        };
        let (params, headers) = match after {
            [] => (Params::EMPTY, None),
            [b';', rest @ ..] => match rest.iter().position(|&b| b == b'?') {
                Some(q) => (uri_params(rest.get(..q)?)?, Some(rest.get(q + 1..)?)),
                None => (uri_params(rest)?, None),
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
            [b'@', hostpart @ ..] if !user.is_empty() => {
                Some((Some(Escaped(user)), password.map(Escaped), hostpart))
            }
            _ if after_user.contains(&b'@') => None,
            _ => Some((None, None, rest)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::chars::arb::{self, span};
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

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
            assert_eq!(reference::parse_ipv4(text.as_bytes()), std, "{text}");
            let ours = match Host::parse(text.as_bytes()) {
                Some(Host::Ipv4(a)) => Some(a),
                _ => None,
            };
            assert_eq!(ours, std, "{text}");
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

    /// What a parsed URI says, with where each part lies in `base`.
    fn described(base: &[u8], uri: Option<Uri<'_>>) -> Option<String> {
        let uri = uri?;
        let mut d = format!("{uri:?} raw@{:?}", span(base, uri.raw()));
        if let Uri::Sip(u) = uri {
            d += &format!(
                " user@{:?} password@{:?} host@{:?} params@{:?} headers@{:?}",
                u.user.map(|x| span(base, x.raw())),
                u.password.map(|x| span(base, x.raw())),
                span(base, u.host_raw),
                span(base, u.params.raw()),
                u.headers.map(|h| span(base, h)),
            );
            if let Host::Domain(d2) = u.host {
                d += &format!(" domain@{:?}", span(base, d2));
            }
        }
        Some(d)
    }

    fn check_uri(v: &[u8]) -> Result<(), TestCaseError> {
        let text = String::from_utf8_lossy(v);
        prop_assert_eq!(
            described(v, Uri::parse(v)),
            described(v, reference::uri(v)),
            "{:?}",
            text
        );
        prop_assert_eq!(Host::parse(v), reference::host(v), "{:?}", text);
        // Read up to a `>` as a name-addr reads it, against the reference given the text before
        // the first `>`.
        let close = v.iter().position(|&b| b == b'>').unwrap_or(v.len());
        let ours = Uri::parse_prefix(v).filter(|u| u.raw().len() == close);
        prop_assert_eq!(
            described(v, ours),
            described(v, reference::uri(&v[..close])),
            "{:?}",
            text
        );
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn uris_agree_with_reference_on_anything(v in arb::bytes()) {
            check_uri(&v)?;
        }

        #[test]
        fn uris_agree_with_reference_on_soup(v in arb::soup()) {
            check_uri(&v)?;
        }

        #[test]
        fn uris_agree_with_reference_on_edited_uris(v in arb::edited(arb::uri())) {
            check_uri(&v)?;
        }

        #[test]
        fn uris_agree_with_reference_on_edited_uris_in_brackets(
            v in arb::edited(arb::uri().prop_map(|u| format!("{u}>;tag=x"))),
        ) {
            check_uri(&v)?;
        }

        #[test]
        fn hosts_agree_with_reference_on_edited_hosts(v in arb::edited(arb::host())) {
            check_uri(&v)?;
        }
    }
}
