//! `name-addr` and `addr-spec` values (From, To, Contact, Route, Record-Route, Path), and the
//! Contact specifics: wildcard, q, expires, `+sip.instance` and `reg-id`.
//!
//! The one subtle rule lives here: in the `addr-spec` form (no angle brackets) everything after
//! the first `;` is a header parameter, never a URI parameter (RFC 3261 20, RFC 4475 cparam01);
//! such a URI may not carry `?` headers or commas (RFC 4475 regbadct).

use super::chars::{self, TOKEN, run};
use super::error::ErrorKind;
use super::params::{Param, Params, Recognise, Visitor};
use super::uri::{Uri, UriParts};

/// A parsed `name-addr` or `addr-spec` with its header parameters.
#[derive(Clone, Copy, Debug)]
pub struct NameAddr<'a> {
    /// The display name as written: a quoted-string with its quotes, or tokens.
    pub display: Option<&'a [u8]>,
    pub uri: Uri<'a>,
    /// True when the URI was written inside `<` `>`.
    pub bracketed: bool,
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parses one element; the caller has already split comma lists.
    pub fn parse(value: &'a [u8]) -> Option<NameAddr<'a>> {
        Some(NameAddrParts::read(value, &mut Tag)?.build())
    }

    /// Parses one element, handing each header parameter to `visit` while validating it.
    #[inline]
    pub fn parse_visit(
        value: &'a [u8],
        visit: impl FnMut(&Param<'a>) -> Option<()>,
    ) -> Option<NameAddr<'a>> {
        Some(NameAddrParts::read(value, &mut Visitor(visit))?.build())
    }

    /// The `tag` parameter (From and To).
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.params.get(b"tag").flatten()
    }
}

/// A name-addr as read, with its URI as [`UriParts`]: the [`NameAddr`] is built from it once,
/// where it is stored.
#[derive(Clone, Copy)]
struct NameAddrParts<'a> {
    display: Option<&'a [u8]>,
    uri: UriParts<'a>,
    bracketed: bool,
    params: Params<'a>,
}

impl<'a> NameAddrParts<'a> {
    #[inline(always)]
    fn build(self) -> NameAddr<'a> {
        NameAddr {
            display: self.display,
            uri: self.uri.uri(),
            bracketed: self.bracketed,
            params: self.params,
        }
    }

    /// Reads one element, handing its header parameters to `params` while validating them.
    ///
    /// In the `name-addr` form the URI is read straight from after the `<`, up to the first byte
    /// that cannot continue it, which must be the `>`: no byte of a URI is `>`, so the bracket
    /// needs no search of its own and the URI's bytes are looked at once.
    #[inline(always)]
    fn read(value: &'a [u8], params: &mut impl Recognise<'a>) -> Option<NameAddrParts<'a>> {
        // The framer and the comma split leave no LWS at either end in the usual value: two
        // looks say so without the trimming loops.
        let s = match (value.first(), value.last()) {
            (Some(&a), Some(&z)) if !chars::is_lws(a) && !chars::is_lws(z) => value,
            _ => chars::trim(value),
        };
        // The display name, if any, and where the URI starts after its "<".
        let open = match s.first() {
            Some(b'<') => Some((None, 1)),
            Some(b'"') => {
                let close = chars::closing_quote(s, 1)?;
                let display = s.get(..close + 1)?;
                let mut k = close + 1;
                while s.get(k).is_some_and(|&b| chars::is_lws(b)) {
                    k += 1;
                }
                if s.get(k) != Some(&b'<') {
                    return None;
                }
                Some((Some(display), k + 1))
            }
            _ => {
                // display-name = *(token LWS); a '<' after only tokens and LWS starts a name-addr.
                let n = s
                    .iter()
                    .take_while(|&&b| chars::is(b, TOKEN) || chars::is_lws(b))
                    .count();
                match s.get(n) {
                    Some(b'<') => {
                        let display = chars::trim(s.get(..n)?);
                        Some(((!display.is_empty()).then_some(display), n + 1))
                    }
                    _ => None,
                }
            }
        };
        let (display, uri, after, bracketed) = match open {
            Some((display, start)) => {
                let body = s.get(start..)?;
                let uri = UriParts::read(body, false)?;
                let len = uri.raw.len();
                if body.get(len) != Some(&b'>') {
                    return None;
                }
                (display, uri, body.get(len + 1..)?, true)
            }
            None => {
                // The URI runs to the first ";". RFC 3261 20: "if the URI contains a comma,
                // question mark or semicolon, the URI MUST be enclosed in angle brackets".
                let mut end = 0;
                while let Some(&b) = s.get(end) {
                    match b {
                        b';' => break,
                        b'?' | b',' | b'<' | b'>' | b'"' => return None,
                        _ => end += 1,
                    }
                }
                let uri = UriParts::read(chars::trim_end(s.get(..end)?), true)?;
                (None, uri, s.get(end..)?, false)
            }
        };
        let after = chars::trim_start(after);
        let params = match after {
            [] => Params::EMPTY,
            [b';', rest @ ..] => Params::header_read(rest, params)?,
            _ => return None,
        };
        Some(NameAddrParts {
            display,
            uri,
            bracketed,
            params,
        })
    }
}

/// The parameters of a From or To, where only their syntax matters: the usual `tag=` with a
/// plain value is told by a word compare.
struct Tag;

impl<'a> Recognise<'a> for Tag {
    #[inline(always)]
    fn usual(&mut self, list: &'a [u8], i: usize) -> Option<usize> {
        const TAG: u32 = u32::from_le_bytes(*b"tag=");
        let w = u32::from_le_bytes(*list.get(i..)?.first_chunk::<4>()?);
        if w | 0x0020_2020 != TAG {
            return None;
        }
        let end = chars::run_end(list, i + 4, run::GEN_VALUE);
        (end > i + 4).then_some(end)
    }

    #[inline(always)]
    fn visit(&mut self, _: &Param<'a>) -> Option<()> {
        Some(())
    }
}

/// A Contact header set: the wildcard `*` or a list of addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactKind {
    Wildcard,
    Address,
}

/// One Contact element with its registrar-relevant parameters decoded.
#[derive(Clone, Copy, Debug)]
pub struct Contact<'a> {
    pub addr: NameAddr<'a>,
    /// q-value in thousandths (0..=1000).
    pub q: Option<u16>,
    /// The `expires` parameter, saturated at 2^32-1 (RFC 3261 20.19 delta-seconds).
    pub expires: Option<u32>,
    /// `+sip.instance` content without its quotes (RFC 5626 4.1).
    pub instance: Option<&'a [u8]>,
    /// `reg-id` (RFC 5626 4.2).
    pub reg_id: Option<u32>,
}

impl<'a> Contact<'a> {
    /// Parses one Contact element (not `*`).
    pub fn parse(value: &'a [u8]) -> Result<Contact<'a>, ErrorKind> {
        let mut p = ContactParams {
            q: None,
            expires: None,
            instance: None,
            reg_id: None,
        };
        let addr = NameAddrParts::read(value, &mut p).ok_or(ErrorKind::BadContact)?;
        Ok(Contact {
            addr: addr.build(),
            q: p.q,
            expires: p.expires,
            instance: p.instance,
            reg_id: p.reg_id,
        })
    }
}

/// The parameters of a Contact a registrar acts on, gathered in the pass that validates them.
struct ContactParams<'a> {
    q: Option<u16>,
    expires: Option<u32>,
    instance: Option<&'a [u8]>,
    reg_id: Option<u32>,
}

impl<'a> Recognise<'a> for ContactParams<'a> {
    /// `expires=` with one to nine digits, told by a word compare and read in one pass; what
    /// the general step would have read as its value ends where the digits do.
    #[inline(always)]
    fn usual(&mut self, list: &'a [u8], i: usize) -> Option<usize> {
        const EXPIRES: u64 = u64::from_le_bytes(*b"expires=");
        if chars::word_at(list, i)? | 0x0020_2020_2020_2020 != EXPIRES {
            return None;
        }
        let (n, end) = chars::short_decimal_at(list, i + 8)?;
        self.expires = Some(n);
        Some(end)
    }

    /// The four names differ in length: one compare at most per parameter.
    #[inline(always)]
    fn visit(&mut self, p: &Param<'a>) -> Option<()> {
        let is = |n: &[u8]| chars::eq_lower(p.name, n);
        match p.name.len() {
            1 if is(b"q") => self.q = Some(parse_qvalue(p.value?).ok()?),
            7 if is(b"expires") => {
                let v = p.value?;
                self.expires = Some(match short_decimal(v) {
                    Some(n) => n?,
                    None => chars::parse_decimal_saturating(v, u64::from(u32::MAX))? as u32,
                });
            }
            13 if is(b"+sip.instance") => {
                // A value that starts with a quote is a whole quoted-string (the list was
                // read by its grammar): what `params::unquote` gives, without a new scan.
                let v = p.value?;
                self.instance = Some(match v {
                    [b'"', inner @ .., b'"'] => inner,
                    _ => v,
                });
            }
            6 if is(b"reg-id") => {
                // RFC 5626 4.2: reg-id = 1*DIGIT, 1 to 2^31-1.
                let v = p.value?;
                let n = match short_decimal(v) {
                    Some(n) => n?,
                    None => u32::try_from(chars::parse_decimal(v, (1 << 31) - 1)?).ok()?,
                };
                if n == 0 {
                    return None;
                }
                self.reg_id = Some(n);
            }
            _ => {}
        }
        Some(())
    }
}

/// `1*DIGIT` of one to nine digits, which stays below 2^31-1 and so below every limit here:
/// one multiply-add a digit, without the limit checks. `Some(None)` when a byte is no digit;
/// `None` for other lengths, which the caller reads with its limit.
#[inline(always)]
fn short_decimal(v: &[u8]) -> Option<Option<u32>> {
    if !(1..=9).contains(&v.len()) {
        return None;
    }
    let mut n = 0u32;
    for &b in v {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Some(None);
        }
        n = n * 10 + u32::from(d);
    }
    Some(Some(n))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
pub fn parse_qvalue(s: &[u8]) -> Result<u16, ErrorKind> {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(i) => (s.get(..i).unwrap_or_default(), s.get(i + 1..)),
        None => (s, None),
    };
    let whole: u16 = match int {
        b"0" => 0,
        b"1" => 1000,
        _ => return Err(ErrorKind::BadContact),
    };
    let mut thousandths = 0u16;
    if let Some(frac) = frac {
        if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
            return Err(ErrorKind::BadContact);
        }
        let mut scale = 100;
        for &d in frac {
            thousandths += u16::from(d - b'0') * scale;
            scale /= 10;
        }
    }
    if whole == 1000 && thousandths != 0 {
        return Err(ErrorKind::BadContact);
    }
    Ok(whole + thousandths)
}

/// The implementation the one-pass parser replaced, kept as the reference it is tested against.
#[cfg(test)]
pub(crate) mod reference {
    use super::super::chars::{self, TOKEN};
    use super::super::error::ErrorKind;
    use super::super::params::{self, Param, Params};
    use super::super::uri;
    use super::{Contact, NameAddr, parse_qvalue};

    /// The old `Contact::parse`.
    pub fn contact(value: &[u8]) -> Result<Contact<'_>, ErrorKind> {
        let mut q = None;
        let mut expires = None;
        let mut instance = None;
        let mut reg_id = None;
        let addr = parse_visit(value, |p| {
            let is = |n: &[u8]| p.name.eq_ignore_ascii_case(n);
            if is(b"q") {
                q = Some(parse_qvalue(p.value?).ok()?);
            } else if is(b"expires") {
                let n = chars::parse_decimal_saturating(p.value?, u64::from(u32::MAX))?;
                expires = Some(n as u32);
            } else if is(b"+sip.instance") {
                instance = Some(params::unquote(p.value?));
            } else if is(b"reg-id") {
                let n = chars::parse_decimal(p.value?, (1 << 31) - 1)?;
                reg_id = Some(u32::try_from(n).ok().filter(|&n| n > 0)?);
            }
            Some(())
        })
        .ok_or(ErrorKind::BadContact)?;
        Ok(Contact {
            addr,
            q,
            expires,
            instance,
            reg_id,
        })
    }

    pub fn parse_visit<'a>(
        value: &'a [u8],
        visit: impl FnMut(&Param<'a>) -> Option<()>,
    ) -> Option<NameAddr<'a>> {
        let s = chars::trim(value);
        let (display, bracketed_rest) = if s.first() == Some(&b'"') {
            let (inner, rest) = chars::reference::split_quoted(s)?;
            let display = s.get(..inner.len() + 2)?;
            let rest = chars::trim_start(rest);
            (Some(display), Some(rest.strip_prefix(b"<")?))
        } else {
            let n = s
                .iter()
                .take_while(|&&b| chars::is(b, TOKEN) || chars::is_lws(b))
                .count();
            match s.get(n) {
                Some(b'<') => {
                    let display = chars::trim(s.get(..n)?);
                    (
                        (!display.is_empty()).then_some(display),
                        Some(s.get(n + 1..)?),
                    )
                }
                _ => (None, None),
            }
        };
        let (uri_raw, after, bracketed) = match bracketed_rest {
            Some(rest) => {
                let close = memchr::memchr(b'>', rest)?;
                (rest.get(..close)?, rest.get(close + 1..)?, true)
            }
            None => {
                let end = memchr::memchr(b';', s).unwrap_or(s.len());
                let uri = chars::trim_end(s.get(..end)?);
                if uri
                    .iter()
                    .any(|&b| matches!(b, b'?' | b',' | b'<' | b'>' | b'"'))
                {
                    return None;
                }
                (uri, s.get(end..)?, false)
            }
        };
        let uri = uri::reference::uri(uri_raw)?;
        let after = chars::trim_start(after);
        let params = match after {
            [] => Params::EMPTY,
            [b';', rest @ ..] => Params::unchecked(params::reference::header_visit(rest, visit)?),
            _ => return None,
        };
        Some(NameAddr {
            display,
            uri,
            bracketed,
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::chars::arb::{self, span};
    use super::super::params::Param;
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::select;
    use proptest::test_runner::TestCaseError;

    #[test]
    fn forms() {
        let a = NameAddr::parse(
            br#""J Rosenberg \\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(a.display, Some(&br#""J Rosenberg \\\"""#[..]));
        assert_eq!(a.tag(), Some(&b"98asjd8"[..]));
        assert!(a.bracketed);

        let a =
            NameAddr::parse(b"Alice Smith <sip:alice@atlanta.com;transport=tcp>;tag=1").unwrap();
        assert_eq!(a.display, Some(&b"Alice Smith"[..]));
        assert_eq!(a.uri.sip().unwrap().transport(), Some(&b"tcp"[..]));

        // RFC 4475 cparam01 / cparam02: where a contact parameter ends and a URI parameter begins.
        let a = NameAddr::parse(b"sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(a.uri.sip().unwrap().params.is_empty());
        assert_eq!(a.params.get(b"unknownparam"), Some(None));
        let a = NameAddr::parse(b"<sip:+19725552222@gw1.example.net;unknownparam>").unwrap();
        assert_eq!(a.uri.sip().unwrap().params.get(b"unknownparam"), Some(None));
        assert!(a.params.is_empty());
    }

    #[test]
    fn rejects() {
        for bad in [
            &b"Bell, Alexander <sip:a.g.bell@example.com>;tag=43"[..],
            b"\"Watson, Thomas\" < sip:t.watson@example.org >",
            b"\"Mr. J. User <sip:j.user@example.com>",
            b"sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            b"<sip:a@b",
            b"<sip:a@b> junk",
            b"<sip:a@b>;=x",
        ] {
            assert!(
                NameAddr::parse(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn contact_params() {
        let c = Contact::parse(
            br#"<sip:alice@192.0.2.1>;q=0.7;expires=3600;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";reg-id=1"#,
        )
        .unwrap();
        assert_eq!(c.q, Some(700));
        assert_eq!(c.expires, Some(3600));
        assert_eq!(
            c.instance,
            Some(&b"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"[..])
        );
        assert_eq!(c.reg_id, Some(1));
        let c = Contact::parse(b"<sip:a@b>;expires=280297596632815").unwrap();
        assert_eq!(c.expires, Some(u32::MAX));
        assert!(Contact::parse(b"<sip:a@b>;q=1.5").is_err());
        assert!(Contact::parse(b"<sip:a@b>;expires=soon").is_err());
        assert!(Contact::parse(b"<sip:a@b>;reg-id=0").is_err());
    }

    #[test]
    fn qvalues() {
        assert_eq!(parse_qvalue(b"0"), Ok(0));
        assert_eq!(parse_qvalue(b"0.33"), Ok(330));
        assert_eq!(parse_qvalue(b"1.000"), Ok(1000));
        assert_eq!(parse_qvalue(b"0.001"), Ok(1));
        assert!(parse_qvalue(b"1.001").is_err());
        assert!(parse_qvalue(b"0.0001").is_err());
        assert!(parse_qvalue(b".5").is_err());
    }

    type Seen = Vec<((usize, usize), Option<(usize, usize)>, (usize, usize))>;

    /// What a parsed name-addr says, with where its parts lie in `base`.
    fn described(base: &[u8], a: &NameAddr<'_>) -> String {
        format!(
            "{a:?} display@{:?} uri@{:?} params@{:?}",
            a.display.map(|d| span(base, d)),
            span(base, a.uri.raw()),
            span(base, a.params.raw()),
        )
    }

    fn run<'a>(
        v: &'a [u8],
        refuse: &[u8],
        parse: impl FnOnce(&'a [u8], &mut dyn FnMut(&Param<'a>) -> Option<()>) -> Option<NameAddr<'a>>,
    ) -> (Option<String>, Seen) {
        let mut seen = Seen::new();
        let mut visit = |p: &Param<'a>| {
            seen.push((span(v, p.name), p.value.map(|x| span(v, x)), span(v, p.raw)));
            (p.name != refuse).then_some(())
        };
        let got = parse(v, &mut visit).map(|a| described(v, &a));
        (got, seen)
    }

    fn check_name_addr(v: &[u8], refuse: &[u8]) -> Result<(), TestCaseError> {
        let text = String::from_utf8_lossy(v);
        let ours = run(v, refuse, |v, visit| NameAddr::parse_visit(v, visit));
        let old = run(v, refuse, |v, visit| reference::parse_visit(v, visit));
        prop_assert_eq!(ours, old, "{:?}", text);
        // `parse` reads the usual `tag=` its own way; its verdict and fields are the same.
        let ours = NameAddr::parse(v).map(|a| described(v, &a));
        let old = reference::parse_visit(v, |_| Some(())).map(|a| described(v, &a));
        prop_assert_eq!(ours, old, "{:?}", text);
        let ours = Contact::parse(v).map(|c| {
            (
                format!("{c:?}"),
                described(v, &c.addr),
                c.instance.map(|i| span(v, i)),
            )
        });
        let old = reference::contact(v).map(|c| {
            (
                format!("{c:?}"),
                described(v, &c.addr),
                c.instance.map(|i| span(v, i)),
            )
        });
        prop_assert_eq!(ours, old, "{:?}", text);
        Ok(())
    }

    const REFUSE: &[&[u8]] = &[b"", b"tag", b"x", b"expires"];

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn name_addrs_agree_with_reference_on_anything(v in arb::bytes(), refuse in select(REFUSE)) {
            check_name_addr(&v, refuse)?;
        }

        #[test]
        fn name_addrs_agree_with_reference_on_soup(v in arb::soup(), refuse in select(REFUSE)) {
            check_name_addr(&v, refuse)?;
        }

        #[test]
        fn name_addrs_agree_with_reference_on_edited_values(v in arb::edited(arb::name_addr()), refuse in select(REFUSE)) {
            check_name_addr(&v, refuse)?;
        }
    }
}
