//! Typed access to header values, parsed on demand from the borrowed lines.
//!
//! Each accessor parses only what it is asked for and reports a defect as the [`ErrorKind`] a
//! server answers with. Single-valued headers that appear twice are defects (RFC 4475 multi01).

use super::addr::{Contact, NameAddr};
use super::auth::Credentials;
use super::chars::{self, run};
use super::error::ErrorKind;
use super::header::{Header, HeaderName};
use super::message::{Headers, Method};
use super::via::Via;

/// `CSeq = 1*DIGIT LWS Method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// RFC 3261 8.1.1.5: "The sequence number MUST be expressible as a 32-bit unsigned integer
    /// and MUST be less than 2**31."
    pub number: u32,
    pub method: Method,
    pub raw_method: &'a [u8],
}

impl<'a> CSeq<'a> {
    /// [`CSeq::parse`] for a request whose method is `raw_method` (a token, classified as
    /// `method`): a CSeq naming that very method is read without classifying it again. Returns
    /// what `CSeq::parse` returns, for every value.
    #[inline]
    pub fn parse_for(value: &'a [u8], raw_method: &[u8], method: Method) -> Option<CSeq<'a>> {
        let s = chars::trim(value);
        // RFC 3261 8.1.1.5: less than 2^31.
        if let Some((number, digits)) = chars::decimal_at(s, 0, (1 << 31) - 1) {
            let rest = s.get(digits..).unwrap_or_default();
            let named = chars::trim_start(rest);
            if named.len() < rest.len() && named == raw_method {
                return Some(CSeq {
                    number,
                    method,
                    raw_method: named,
                });
            }
        }
        CSeq::parse(value)
    }

    pub fn parse(value: &'a [u8]) -> Option<CSeq<'a>> {
        let s = chars::trim(value);
        let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
        let (digits, rest) = s.split_at_checked(n)?;
        let number = chars::parse_decimal(digits, (1 << 31) - 1)? as u32;
        let method = chars::trim_start(rest);
        if method.len() == rest.len() || !chars::is_token(method) {
            return None;
        }
        Some(CSeq {
            number,
            method: Method::classify(method),
            raw_method: method,
        })
    }
}

/// `callid = word [ "@" word ]`
pub fn parse_call_id(value: &[u8]) -> Option<&[u8]> {
    // One run of word bytes, then either the end or one '@' and a second run to the end.
    let left = chars::run_end(value, 0, run::WORD);
    let whole = match value.get(left) {
        None => left > 0,
        Some(b'@') => {
            left > 0 && {
                let right = chars::run_end(value, left + 1, run::WORD);
                right > left + 1 && right == value.len()
            }
        }
        Some(_) => false,
    };
    whole.then_some(value)
}

/// The value of Expires or Min-Expires: RFC 3261 20.19 via 25.1 delta-seconds, values past
/// 2^32-1 taken as 2^32-1.
pub(crate) fn delta_seconds(v: &[u8]) -> Result<u32, ErrorKind> {
    chars::parse_decimal_saturating(v, u64::from(u32::MAX))
        .map(|n| n as u32)
        .ok_or(ErrorKind::BadExpires)
}

/// Iterator over the comma-separated elements of every line with one name.
#[derive(Clone, Debug)]
pub struct Elements<'a, 'h> {
    lines: core::slice::Iter<'h, Header<'a>>,
    name: HeaderName,
    current: Option<chars::CommaList<'a>>,
    /// More than one line has the name: after the first, the others are looked for.
    repeated: bool,
}

impl<'a, 'h> Elements<'a, 'h> {
    /// The next line with the name; after the only one, no walk over the others.
    #[inline]
    fn next_line(&mut self) -> Option<&'h Header<'a>> {
        let name = self.name;
        let line = self.lines.find(|h| h.name == name)?;
        if !self.repeated {
            self.lines = [].iter();
        }
        Some(line)
    }
}

impl<'a> Iterator for Elements<'a, '_> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if let Some(e) = self.current.as_mut().and_then(Iterator::next) {
                return Some(e);
            }
            let line = self.next_line()?;
            self.current = Some(chars::CommaList::new(line.value));
        }
    }
}

/// Iterator over the Via values of a message, top first, each parsed ([`Headers::vias`]).
#[derive(Clone, Debug)]
pub struct Vias<'a, 'h> {
    elements: Elements<'a, 'h>,
    /// No value read yet: the first line may be read whole.
    top: bool,
}

impl<'a> Iterator for Vias<'a, '_> {
    type Item = Result<Via<'a>, ErrorKind>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.top {
            self.top = false;
            let first = self.elements.next_line()?;
            // The usual first line holds one value: read whole, with no search for a comma
            // first. A `via-parm` has no comma outside its quoted strings (RFC 3261 25.1: a
            // host, a port, tokens and `gen-value`s), so a line that parses whole is one
            // element, the line itself, which is what the list split gives; any other line is
            // split as a list.
            if let Some(via) = Via::parse(chars::trim(first.value)) {
                return Some(Ok(via));
            }
            self.elements.current = Some(chars::CommaList::new(first.value));
        }
        self.elements
            .next()
            .map(|v| Via::parse(v).ok_or(ErrorKind::BadVia))
    }
}

/// The Contact headers of a message.
#[derive(Clone, Debug)]
pub enum Contacts<'a, 'h> {
    /// No Contact header: for REGISTER, a query (RFC 3261 10.3 step 6 reads none).
    Absent,
    /// `Contact: *`, alone (RFC 3261 10.2.2).
    Wildcard,
    /// Contact addresses; iterating yields each parsed element.
    List(ContactIter<'a, 'h>),
}

/// Iterator over parsed Contact elements.
#[derive(Clone, Debug)]
pub struct ContactIter<'a, 'h> {
    elements: Elements<'a, 'h>,
}

impl<'a> Iterator for ContactIter<'a, '_> {
    type Item = Result<Contact<'a>, ErrorKind>;

    fn next(&mut self) -> Option<Self::Item> {
        self.elements.next().map(Contact::parse)
    }
}

fn single<'a>(
    h: &Headers<'a, '_>,
    name: HeaderName,
    err: ErrorKind,
) -> Result<Option<&'a [u8]>, ErrorKind> {
    h.single(name)
        .map(|o| o.map(|line| line.value))
        .map_err(|_| err)
}

impl<'a, 'h> Headers<'a, 'h> {
    /// Every comma-separated element of every line with this name, in order.
    pub fn elements(&self, name: HeaderName) -> Elements<'a, 'h> {
        Elements {
            lines: self.lines_for(name).iter(),
            name,
            current: None,
            repeated: self.is_repeated(name),
        }
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> Vias<'a, 'h> {
        Vias {
            elements: self.elements(HeaderName::Via),
            top: true,
        }
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Result<Via<'a>, ErrorKind> {
        self.vias().next().unwrap_or(Err(ErrorKind::BadVia))
    }

    fn name_addr(&self, name: HeaderName, err: ErrorKind) -> Result<NameAddr<'a>, ErrorKind> {
        let value = single(self, name, err)?.ok_or(err)?;
        NameAddr::parse(value).ok_or(err)
    }

    pub fn from(&self) -> Result<NameAddr<'a>, ErrorKind> {
        self.name_addr(HeaderName::From, ErrorKind::BadFrom)
    }

    pub fn to(&self) -> Result<NameAddr<'a>, ErrorKind> {
        self.name_addr(HeaderName::To, ErrorKind::BadTo)
    }

    pub fn call_id(&self) -> Result<&'a [u8], ErrorKind> {
        let v =
            single(self, HeaderName::CallId, ErrorKind::BadCallId)?.ok_or(ErrorKind::BadCallId)?;
        parse_call_id(v).ok_or(ErrorKind::BadCallId)
    }

    pub fn cseq(&self) -> Result<CSeq<'a>, ErrorKind> {
        let v = single(self, HeaderName::CSeq, ErrorKind::BadCSeq)?.ok_or(ErrorKind::BadCSeq)?;
        CSeq::parse(v).ok_or(ErrorKind::BadCSeq)
    }

    /// Max-Forwards, 0 to 255 (RFC 4475 scalar02 treats larger values as defects).
    pub fn max_forwards(&self) -> Result<Option<u8>, ErrorKind> {
        single(self, HeaderName::MaxForwards, ErrorKind::BadMaxForwards)?
            .map(|v| {
                chars::parse_decimal(v, 255)
                    .map(|n| n as u8)
                    .ok_or(ErrorKind::BadMaxForwards)
            })
            .transpose()
    }

    fn delta_seconds(&self, name: HeaderName) -> Result<Option<u32>, ErrorKind> {
        single(self, name, ErrorKind::BadExpires)?
            .map(delta_seconds)
            .transpose()
    }

    pub fn expires(&self) -> Result<Option<u32>, ErrorKind> {
        self.delta_seconds(HeaderName::Expires)
    }

    pub fn min_expires(&self) -> Result<Option<u32>, ErrorKind> {
        self.delta_seconds(HeaderName::MinExpires)
    }

    pub fn content_length(&self) -> Option<usize> {
        let v = self.get(HeaderName::ContentLength)?.value;
        chars::parse_decimal(v, u64::from(u32::MAX)).map(|n| n as usize)
    }

    pub fn user_agent(&self) -> Option<&'a [u8]> {
        self.get(HeaderName::UserAgent).map(|h| h.value)
    }

    /// The Contact headers: absent, a lone wildcard, or a list. A `*` mixed with other contacts
    /// is a defect (RFC 3261 10.3 step 6).
    pub fn contacts(&self) -> Result<Contacts<'a, 'h>, ErrorKind> {
        let mut all = self.elements(HeaderName::Contact);
        let Some(first) = all.next() else {
            return Ok(Contacts::Absent);
        };
        let mut wildcard = first == b"*";
        let mut count = 1;
        for e in all {
            wildcard |= e == b"*";
            count += 1;
        }
        match (wildcard, count) {
            (true, 1) => Ok(Contacts::Wildcard),
            (true, _) => Err(ErrorKind::BadContact),
            (false, _) => Ok(Contacts::List(ContactIter {
                elements: self.elements(HeaderName::Contact),
            })),
        }
    }

    /// Every Authorization value (one per realm may be present), parsed.
    pub fn authorizations(&self) -> impl Iterator<Item = Result<Credentials<'a>, ErrorKind>> + 'h {
        self.all(HeaderName::Authorization)
            .map(|h| Credentials::parse(h.value).ok_or(ErrorKind::BadAuthorization))
    }

    /// Every Proxy-Authorization value, parsed.
    pub fn proxy_authorizations(
        &self,
    ) -> impl Iterator<Item = Result<Credentials<'a>, ErrorKind>> + 'h {
        self.all(HeaderName::ProxyAuthorization)
            .map(|h| Credentials::parse(h.value).ok_or(ErrorKind::BadAuthorization))
    }

    /// The option tags of Require, Proxy-Require, Supported or Unsupported.
    pub fn option_tags(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<&'a [u8], ErrorKind>> + 'h {
        self.elements(name).map(|t| {
            if chars::is_token(t) {
                Ok(t)
            } else {
                Err(ErrorKind::BadOptionTags)
            }
        })
    }

    /// The name-addr values of Path, Route or Record-Route, in order.
    pub fn routes(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<NameAddr<'a>, ErrorKind>> + 'h {
        self.elements(name).map(|v| {
            NameAddr::parse(v)
                .filter(|a| a.bracketed)
                .ok_or(ErrorKind::BadRoute)
        })
    }
}

/// The implementations replaced by faster ones, kept as oracles for the tests.
#[cfg(test)]
mod reference {
    use super::{ErrorKind, HeaderName, Headers, Via};

    /// Every Via value, top first: each line split as a comma list, each element parsed.
    pub(super) fn vias<'a>(h: &Headers<'a, '_>) -> Vec<Result<Via<'a>, ErrorKind>> {
        h.elements(HeaderName::Via)
            .map(|v| Via::parse(v).ok_or(ErrorKind::BadVia))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq() {
        let c = CSeq::parse(b"0009\r\n  INVITE").unwrap();
        assert_eq!((c.number, c.method), (9, Method::Invite));
        assert_eq!(
            CSeq::parse(b"2147483647 REGISTER").unwrap().number,
            2_147_483_647
        );
        assert!(CSeq::parse(b"2147483648 REGISTER").is_none());
        assert!(CSeq::parse(b"36893488147419103232 REGISTER").is_none());
        assert!(CSeq::parse(b"1REGISTER").is_none());
        assert!(CSeq::parse(b"REGISTER").is_none());
        assert!(CSeq::parse(b"1 REG ISTER").is_none());
    }

    #[test]
    fn cseq_for_a_method_reads_as_the_general_parser() {
        let values: &[&[u8]] = &[
            b"2 REGISTER",
            b"  0009\r\n  REGISTER ",
            b"2147483647 REGISTER",
            b"2147483648 REGISTER",
            b"99999999999 REGISTER",
            b"2REGISTER",
            b"2 INVITE",
            b"2 REGISTERX",
            b"2 REG ISTER",
            b"REGISTER",
            b"2 ",
            b"",
            b"-1 REGISTER",
            b"2 \tREGISTER",
            b"2 register",
        ];
        for &v in values {
            assert_eq!(
                CSeq::parse_for(v, b"REGISTER", Method::Register),
                CSeq::parse(v),
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn call_ids() {
        assert!(parse_call_id(b"f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com").is_some());
        assert!(parse_call_id(b"wsinv.ndaksdj@192.0.2.1").is_some());
        assert!(parse_call_id(b"a@b@c").is_none());
        assert!(parse_call_id(b"has space").is_none());
        assert!(parse_call_id(b"").is_none());
        assert!(parse_call_id(b"plain").is_some());
        for bad in [&b"@b"[..], b"a@", b"@", b"a\x00b"] {
            assert!(parse_call_id(bad).is_none(), "{bad:?}");
        }
    }

    /// `word` by the letter of RFC 3261 25.1, one byte at a time.
    fn is_word(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"-.!%*_+`'~()<>:\\\"/[]?{}".contains(&b)
    }

    #[test]
    fn every_byte_is_classed_as_the_grammar_says() {
        for b in 0..=255u8 {
            let alone = parse_call_id(&[b]).is_some();
            assert_eq!(alone, is_word(b), "byte {b:#04x} alone");
            let around_at = parse_call_id(&[b'a', b, b'@', b'c']).is_some();
            assert_eq!(around_at, is_word(b), "byte {b:#04x} before '@'");
        }
    }

    #[test]
    fn at_signs_and_runs_of_every_length_are_judged_by_the_grammar() {
        // Every string of up to 11 bytes over a word byte, '@' and a non-word byte, so that
        // both runs cross the table scan's four-byte steps.
        let alphabet = [b'a', b'@', b';'];
        for len in 0..=11u32 {
            for mut code in 0..3usize.pow(len) {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        let b = alphabet[code % 3];
                        code /= 3;
                        b
                    })
                    .collect();
                let ats = s.iter().filter(|&&b| b == b'@').count();
                let expected = s.iter().all(|&b| b == b'@' || is_word(b))
                    && s.split(|&b| b == b'@').all(|w| !w.is_empty())
                    && ats <= 1;
                assert_eq!(parse_call_id(&s).is_some(), expected, "{s:?}");
            }
        }
    }

    /// A `via-parm` with a host, a port and parameters (quoted strings with commas, escapes
    /// and brackets among them).
    fn via_parm() -> impl proptest::strategy::Strategy<Value = String> {
        use crate::sip::chars::arb;
        use proptest::prelude::*;
        (
            proptest::sample::select(&["SIP/2.0/UDP ", "SIP/2.0/TCP", "sip / 2.0 / tls  "][..]),
            arb::host(),
            proptest::sample::select(&["", ":5060", " : 7"][..]),
            proptest::option::of(arb::header_params()),
            proptest::sample::select(&["", ";x=\"a,b\"", ";y=\"\\\",<\"", ";z=<a,b>"][..]),
        )
            .prop_map(|(p, h, port, params, extra)| {
                let params = params.map(|l| format!(";{l}")).unwrap_or_default();
                format!("{p}{h}{port}{params}{extra}")
            })
    }

    /// A Via value: one `via-parm`, or two in a list.
    fn via_value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let sep = proptest::sample::select(&[",", " , ", ",,"][..]);
        (via_parm(), proptest::option::of(via_parm()), sep).prop_map(|(a, b, sep)| match b {
            Some(b) => format!("{a}{sep}{b}"),
            None => a,
        })
    }

    proptest::proptest! {
        /// The Vias read with the first line parsed whole are those of the list split.
        #[test]
        fn vias_agree_with_reference(
            values in proptest::collection::vec(crate::sip::chars::arb::edited(via_value()), 0..3),
            other_first in proptest::bool::ANY,
        ) {
            let mut lines: Vec<Header<'_>> = values
                .iter()
                .map(|v| Header {
                    name: HeaderName::Via,
                    raw_name: b"Via",
                    value: v,
                })
                .collect();
            if other_first {
                lines.insert(0, Header { name: HeaderName::To, raw_name: b"To", value: b"a, b" });
            }
            let h = Headers::new(&lines);
            let fast: Vec<_> = h.vias().map(|v| format!("{v:?}")).collect();
            let slow: Vec<_> = super::reference::vias(&h).iter().map(|v| format!("{v:?}")).collect();
            proptest::prop_assert_eq!(fast, slow);
        }
    }
}
