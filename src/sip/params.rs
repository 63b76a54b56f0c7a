//! `;name=value` parameter lists, for URIs and for header values.
//!
//! A [`Params`] is the raw text after the first `;`, validated once when the owning URI or header
//! value is parsed; iterating it afterwards cannot fail. Values keep their quotes: callers that
//! need the content use [`unquote`].

use super::chars::{self, HNV, UNRESERVED, run};

/// A validated parameter list (the text after the first `;`, or empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params<'a> {
    raw: &'a [u8],
}

/// One parameter: its name, its value if it has one, and its raw text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    pub name: &'a [u8],
    pub value: Option<&'a [u8]>,
    pub raw: &'a [u8],
}

impl<'a> Params<'a> {
    pub const EMPTY: Params<'static> = Params { raw: b"" };

    /// Wraps header parameters after checking
    /// `generic-param = token [ EQUAL gen-value ]`, `gen-value = token / host / quoted-string`.
    pub fn header(raw: &'a [u8]) -> Option<Self> {
        Self::header_visit(raw, |_| Some(()))
    }

    /// Like [`Params::header`], handing each parameter to `visit` in the same pass; `visit`
    /// returning `None` rejects the list.
    ///
    /// The list is read by its grammar, left to right: `LWS token LWS [ "=" LWS value LWS ]`,
    /// then `;` or the end. That accepts exactly the lists whose `;`-separated pieces (quoted
    /// strings kept whole) pass the `generic-param` check, and yields the same pieces as
    /// [`Params::iter`], without a separator search and a second look at every piece. Each
    /// parameter is handed over as soon as it is read, before what follows it is looked at.
    #[inline]
    pub fn header_visit(
        raw: &'a [u8],
        visit: impl FnMut(&Param<'a>) -> Option<()>,
    ) -> Option<Self> {
        Self::header_read(raw, &mut Visitor(visit))
    }

    /// [`Params::header_visit`] for a reader that recognises the usual parameters of its header
    /// itself: each parameter is offered to [`Recognise::usual`] first, and read by the general
    /// step and handed to [`Recognise::visit`] when that declines.
    #[inline(always)]
    pub(crate) fn header_read(raw: &'a [u8], r: &mut impl Recognise<'a>) -> Option<Self> {
        let mut i = 0;
        while i < raw.len() {
            let end = match r.usual(raw, i) {
                Some(end) => end,
                None => {
                    let (p, end) = header_param_at(raw, i)?;
                    r.visit(&p)?;
                    end
                }
            };
            match next_header_param(raw, end)? {
                Some(next) => i = next,
                None => break,
            }
        }
        Some(Params { raw })
    }

    /// Wraps URI parameters after checking `pname ["=" pvalue]` with `paramchar` bytes only.
    pub fn uri(raw: &'a [u8]) -> Option<Self> {
        let (params, end) = Self::uri_at(raw, 0)?;
        (end == raw.len()).then_some(params)
    }

    /// Reads URI parameters from `s[start..]` (what follows the first `;`) up to the first byte
    /// that cannot continue them, returning them and where they end. The caller decides whether
    /// that byte (`?`, `>`, the end) may end them; any other byte there makes the URI malformed.
    ///
    /// `uri-parameters = *( ";" uri-parameter )`, read in one pass: a name run, an optional
    /// "=" and value run, then ";" or the end. White space is no paramchar, so it is refused as
    /// everywhere in a URI; an empty parameter (";;", a trailing ";") is refused too. An empty
    /// list (what follows a lone trailing ";" after the host) is accepted.
    #[inline]
    pub(crate) fn uri_at(s: &'a [u8], start: usize) -> Option<(Self, usize)> {
        const CLASSES: u8 = run::PARAM;
        let mut i = uri_param_name_end(s, start);
        if i != start {
            loop {
                if s.get(i) == Some(&b'=') {
                    let end = escaped_end(s, i + 1, CLASSES);
                    if end == i + 1 {
                        return None;
                    }
                    i = end;
                }
                if s.get(i) != Some(&b';') {
                    break;
                }
                let end = uri_param_name_end(s, i + 1);
                if end == i + 1 {
                    return None;
                }
                i = end;
            }
        }
        Some((
            Params {
                raw: s.get(start..i)?,
            },
            i,
        ))
    }

    /// A list taken as valid without a check, for the reference parsers in tests.
    #[cfg(test)]
    pub(crate) fn unchecked(raw: &'a [u8]) -> Self {
        Params { raw }
    }

    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            rest: if self.raw.is_empty() {
                None
            } else {
                Some(self.raw)
            },
        }
    }

    /// The parameter with this name (compared case-insensitively), if present.
    pub fn find(&self, name: &[u8]) -> Option<Param<'a>> {
        self.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// `Some(value)` for `name=value`, `Some(None)` for a bare `name`, `None` when absent.
    pub fn get(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.find(name).map(|p| p.value)
    }
}

/// What a header parameter list is read for (see [`Params::header_read`]).
pub(crate) trait Recognise<'a> {
    /// Takes in the parameter that starts at `list[i]` when it has a shape this reader knows
    /// (a name told by a word compare, a plain value right after the `=`), and returns where it
    /// ends: where the general step would have ended it, having taken in what [`Recognise::visit`]
    /// would. `None` leaves the parameter to the general step, also when it is malformed.
    fn usual(&mut self, list: &'a [u8], i: usize) -> Option<usize>;

    /// Takes in a parameter the general step has read; `None` rejects the list.
    fn visit(&mut self, p: &Param<'a>) -> Option<()>;
}

/// A reader that recognises nothing and hands every parameter to a closure.
pub(crate) struct Visitor<F>(pub(crate) F);

impl<'a, F: FnMut(&Param<'a>) -> Option<()>> Recognise<'a> for Visitor<F> {
    #[inline(always)]
    fn usual(&mut self, _: &'a [u8], _: usize) -> Option<usize> {
        None
    }

    #[inline(always)]
    fn visit(&mut self, p: &Param<'a>) -> Option<()> {
        (self.0)(p)
    }
}

/// One header parameter at `raw[i..]`, `LWS token LWS [ "=" LWS gen-value ]`, and where it ends
/// (after the value, or after the LWS that follows a name without one): the step of
/// [`Params::header_visit`], for the parsers that read some parameters their own way.
#[inline(always)]
pub(crate) fn header_param_at(raw: &[u8], i: usize) -> Option<(Param<'_>, usize)> {
    let start = skip_lws(raw, i);
    let mut j = chars::run_end(raw, start, run::TOKEN);
    if j == start {
        return None;
    }
    let name = raw.get(start..j)?;
    j = skip_lws(raw, j);
    let value = if raw.get(j) == Some(&b'=') {
        let from = skip_lws(raw, j + 1);
        let end = if raw.get(from) == Some(&b'"') {
            chars::closing_quote(raw, from + 1)? + 1
        } else {
            // host values include IPv6 addresses, with or without brackets (RFC 5118 4.5).
            chars::run_end(raw, from, run::GEN_VALUE)
        };
        if end == from {
            return None;
        }
        j = end;
        Some(raw.get(from..end)?)
    } else {
        None
    };
    let p = Param {
        name,
        value,
        raw: raw.get(start..j)?,
    };
    Some((p, j))
}

/// What follows a header parameter that ends at `raw[j]`: LWS, then the end of the list
/// (`Some(None)`) or a `;` with another parameter after it (`Some(Some(where it starts))`).
/// `None` for anything else.
#[inline(always)]
pub(crate) fn next_header_param(raw: &[u8], j: usize) -> Option<Option<usize>> {
    let i = skip_lws(raw, j);
    match raw.get(i) {
        None => Some(None),
        // A ";" must be followed by another parameter.
        Some(b';') if i + 1 < raw.len() => Some(Some(i + 1)),
        _ => None,
    }
}

/// Iterator over [`Params`].
#[derive(Clone, Debug)]
pub struct ParamIter<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        let s = self.rest?;
        let (raw, rest) = match chars::find_unquoted(s, b';') {
            Some(i) => (s.get(..i)?, s.get(i + 1..)),
            None => (s, None),
        };
        self.rest = rest;
        let raw = chars::trim(raw);
        let (name, value) = match raw.iter().position(|&b| b == b'=') {
            Some(i) => (
                chars::trim(raw.get(..i)?),
                Some(chars::trim(raw.get(i + 1..)?)),
            ),
            None => (raw, None),
        };
        Some(Param { name, value, raw })
    }
}

/// Strips the quotes of a quoted-string value; other values are returned unchanged. Quoted-pairs
/// are kept escaped: compare with [`chars::split_quoted`] semantics in mind.
pub fn unquote(value: &[u8]) -> &[u8] {
    match chars::split_quoted(value) {
        Some((inner, [])) => inner,
        _ => value,
    }
}

/// True when `s` is non-empty and every byte is in `classes` or part of a well-formed `%HH`.
pub fn is_escaped_class(s: &[u8], classes: u8) -> bool {
    !s.is_empty() && escaped_run(s, classes) == s.len()
}

/// The length of the longest prefix of `s` made of bytes in `classes` and well-formed `%HH`
/// escapes. A `%` without two hex digits after it ends the run.
#[inline]
pub fn escaped_run(s: &[u8], classes: u8) -> usize {
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if chars::is_any(b, classes) {
            i += 1;
        } else if b == b'%'
            && let (Some(&h), Some(&l)) = (s.get(i + 1), s.get(i + 2))
            && chars::hex_value(h).is_some()
            && chars::hex_value(l).is_some()
        {
            i += 3;
        } else {
            break;
        }
    }
    i
}

/// Where the run of bytes in the [`run`] class `bit` and well-formed `%HH` escapes that starts
/// at `s[i]` ends (`i` itself for an empty run): [`escaped_run`] for the classes of `bit`.
#[inline(always)]
pub(crate) fn escaped_end(s: &[u8], mut i: usize, bit: u8) -> usize {
    loop {
        i = chars::run_end(s, i, bit);
        if s.get(i) == Some(&b'%')
            && let (Some(&h), Some(&l)) = (s.get(i + 1), s.get(i + 2))
            && chars::hex_value(h).is_some()
            && chars::hex_value(l).is_some()
        {
            i += 3;
        } else {
            return i;
        }
    }
}

/// Where the URI parameter name that starts at `s[i]` ends: [`escaped_end`] over `paramchar`,
/// with the usual `transport=` (RFC 3261 19.1.1) told by a word compare instead. Its name ends
/// at the `=`, which is no `paramchar`.
#[inline(always)]
fn uri_param_name_end(s: &[u8], i: usize) -> usize {
    match s.get(i..i + 10) {
        Some(name) if chars::eq_lower(name, b"transport=") => i + 9,
        _ => escaped_end(s, i, run::PARAM),
    }
}

/// The first index at or after `i` that is not linear white space.
#[inline(always)]
fn skip_lws(s: &[u8], mut i: usize) -> usize {
    while s.get(i).is_some_and(|&b| chars::is_lws(b)) {
        i += 1;
    }
    i
}

/// Where the URI headers that start at `s[i]` (after the `?`) end: the run of `hnv-unreserved`,
/// `unreserved`, escapes, `&` and `=`. Whether they are well formed is for [`is_uri_headers`].
#[inline]
pub(crate) fn uri_headers_end(s: &[u8], mut i: usize) -> usize {
    loop {
        i = escaped_end(s, i, run::HNV);
        match s.get(i) {
            Some(b'&' | b'=') => i += 1,
            _ => return i,
        }
    }
}

/// `headers = "?" header *( "&" header )`, `header = hname "=" hvalue`.
pub fn is_uri_headers(s: &[u8]) -> bool {
    s.split(|&b| b == b'&').all(|h| {
        let mut parts = h.splitn(2, |&b| b == b'=');
        let name = parts.next().unwrap_or_default();
        let value = parts.next().unwrap_or_default();
        is_escaped_class(name, HNV | UNRESERVED)
            && (value.is_empty() || is_escaped_class(value, HNV | UNRESERVED))
    })
}

/// The implementations the one-pass versions replaced, kept as the reference they are tested
/// against.
#[cfg(test)]
pub(crate) mod reference {
    use super::super::chars::{self, PARAM, TOKEN, UNRESERVED};
    use super::{Param, escaped_run};

    /// The old `Params::header_visit`; returns the raw list on success.
    pub fn header_visit<'a>(
        raw: &'a [u8],
        mut visit: impl FnMut(&Param<'a>) -> Option<()>,
    ) -> Option<&'a [u8]> {
        let mut s = raw;
        while !s.is_empty() {
            let start = chars::trim_start(s);
            let name_len = start.iter().take_while(|&&b| chars::is(b, TOKEN)).count();
            if name_len == 0 {
                return None;
            }
            let (name, after_name) = start.split_at_checked(name_len)?;
            let after_name = chars::trim_start(after_name);
            let (value, after) = match after_name {
                [b'=', v @ ..] => {
                    let v = chars::trim_start(v);
                    let len = if v.first() == Some(&b'"') {
                        let (inner, _) = chars::reference::split_quoted(v)?;
                        inner.len() + 2
                    } else {
                        v.iter()
                            .take_while(|&&b| {
                                chars::is(b, TOKEN) || matches!(b, b':' | b'[' | b']')
                            })
                            .count()
                    };
                    if len == 0 {
                        return None;
                    }
                    let (value, after) = v.split_at_checked(len)?;
                    (Some(value), after)
                }
                _ => (None, after_name),
            };
            let param_len = start.len() - after.len();
            visit(&Param {
                name,
                value,
                raw: start.get(..param_len)?,
            })?;
            s = match chars::trim_start(after) {
                [] => &[],
                [b';', rest @ ..] if !rest.is_empty() => rest,
                _ => return None,
            };
        }
        Some(raw)
    }

    /// The old `Params::uri`; returns the raw list on success.
    pub fn uri(raw: &[u8]) -> Option<&[u8]> {
        const CLASSES: u8 = PARAM | UNRESERVED;
        let mut s = raw;
        while !s.is_empty() {
            let name = escaped_run(s, CLASSES);
            if name == 0 {
                return None;
            }
            s = s.get(name..)?;
            if let [b'=', value @ ..] = s {
                let n = escaped_run(value, CLASSES);
                if n == 0 {
                    return None;
                }
                s = value.get(n..)?;
            }
            match s {
                [] => {}
                [b';', rest @ ..] if !rest.is_empty() => s = rest,
                _ => return None,
            }
        }
        Some(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::super::chars::arb::{self, span};
    use super::super::chars::{PARAM, UNRESERVED};
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::select;
    use proptest::test_runner::TestCaseError;

    #[test]
    fn header_params() {
        let p =
            Params::header(b"tag = 98asjd8 ; newparam =\r\n newvalue ;  secondparam ; q = 0.33")
                .unwrap();
        assert_eq!(p.get(b"TAG"), Some(Some(&b"98asjd8"[..])));
        assert_eq!(p.get(b"newparam"), Some(Some(&b"newvalue"[..])));
        assert_eq!(p.get(b"secondparam"), Some(None));
        assert_eq!(p.get(b"q"), Some(Some(&b"0.33"[..])));
        assert_eq!(p.get(b"missing"), None);
        let p = Params::header(
            br#"+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1"#,
        )
        .unwrap();
        assert_eq!(
            unquote(p.get(b"+sip.instance").unwrap().unwrap()),
            b"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"
        );
        assert!(Params::header(b"received=2001:db8::9:255").is_some());
        assert!(Params::header(b"a=").is_none());
        assert!(Params::header(b"a b=c").is_none());
        assert!(Params::header(b"a=\"open").is_none());
    }

    #[test]
    fn uri_params() {
        let p = Params::uri(b"%6C%72;n%61me=v%61lue%25%34%31").unwrap();
        assert_eq!(p.iter().count(), 2);
        assert!(Params::uri(b"lr;x=%G1").is_none());
        assert!(Params::uri(b" lr").is_none());
        assert!(is_uri_headers(b"Route=%3Csip:sip.example.com%3E"));
        assert!(!is_uri_headers(b"Route=<sip:x>"));
    }

    type Seen = Vec<((usize, usize), Option<(usize, usize)>, (usize, usize))>;

    /// Runs a header parameter parser with a visitor that records where each parameter lies and
    /// refuses the one named `refuse`.
    fn visited<'a>(
        raw: &'a [u8],
        refuse: &[u8],
        parse: impl FnOnce(&'a [u8], &mut dyn FnMut(&Param<'a>) -> Option<()>) -> Option<&'a [u8]>,
    ) -> (Option<(usize, usize)>, Seen) {
        let mut seen = Seen::new();
        let mut visit = |p: &Param<'a>| {
            seen.push((
                span(raw, p.name),
                p.value.map(|v| span(raw, v)),
                span(raw, p.raw),
            ));
            (p.name != refuse).then_some(())
        };
        let got = parse(raw, &mut visit).map(|r| span(raw, r));
        (got, seen)
    }

    fn check_params(v: &[u8], refuse: &[u8]) -> Result<(), TestCaseError> {
        let text = String::from_utf8_lossy(v);
        let ours = visited(v, refuse, |raw, visit| {
            Params::header_visit(raw, visit).map(|p| p.raw)
        });
        let old = visited(v, refuse, |raw, visit| reference::header_visit(raw, visit));
        prop_assert_eq!(ours, old, "{:?}", text);
        let ours = Params::uri(v).map(|p| span(v, p.raw));
        let old = reference::uri(v).map(|r| span(v, r));
        prop_assert_eq!(ours, old, "{:?}", text);
        prop_assert_eq!(
            escaped_end(v, 0, run::PARAM),
            escaped_run(v, PARAM | UNRESERVED)
        );
        prop_assert_eq!(
            escaped_end(v, 0, run::USER),
            escaped_run(v, chars::USER | UNRESERVED)
        );
        Ok(())
    }

    const REFUSE: &[&[u8]] = &[b"", b"q", b"tag", b"x", b"expires"];

    fn refuse() -> impl Strategy<Value = &'static [u8]> {
        select(REFUSE)
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn params_agree_with_reference_on_anything(v in arb::bytes(), refuse in refuse()) {
            check_params(&v, refuse)?;
        }

        #[test]
        fn params_agree_with_reference_on_soup(v in arb::soup(), refuse in refuse()) {
            check_params(&v, refuse)?;
        }

        #[test]
        fn params_agree_with_reference_on_edited_lists(v in arb::edited(arb::header_params()), refuse in refuse()) {
            check_params(&v, refuse)?;
        }

        /// `transport=` is told by a word compare: lists with it in any case and place, edited.
        #[test]
        fn uri_params_agree_with_reference_on_edited_transports(
            v in arb::edited(
                (select(&["transport=", "TRANSPORT=", "Transport=", "transport", "transpor=", "transport%3D"][..]),
                 select(&["udp", "TCP", "tls", "", "%75dp", "x;lr", "udp?h=v", "udp>"][..]),
                 select(&["", "lr;", "maddr=1.2.3.4;"][..]))
                    .prop_map(|(n, v, before)| format!("{before}{n}{v}")),
            ),
        ) {
            check_params(&v, b"")?;
        }

        #[test]
        fn uri_params_agree_with_reference_on_edited_lists(
            v in arb::edited(arb::uri().prop_map(|u| u.split_once(';').map(|(_, p)| p.to_string()).unwrap_or(u))),
        ) {
            check_params(&v, b"")?;
        }
    }
}
