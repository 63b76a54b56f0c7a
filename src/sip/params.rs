//! `;name=value` parameter lists, for URIs and for header values.
//!
//! A [`Params`] is the raw text after the first `;`, validated once when the owning URI or header
//! value is parsed; iterating it afterwards cannot fail. Values keep their quotes: callers that
//! need the content use [`unquote`].

use super::chars::{self, HNV, PARAM, TOKEN, UNRESERVED};

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
    /// [`Params::iter`], without a separator search and a second look at every piece.
    pub fn header_visit(
        raw: &'a [u8],
        mut visit: impl FnMut(&Param<'a>) -> Option<()>,
    ) -> Option<Self> {
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
                        let (inner, _) = chars::split_quoted(v)?;
                        inner.len() + 2
                    } else {
                        // host values include IPv6 addresses, with or without brackets (RFC 5118
                        // 4.5).
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
                // A ";" must be followed by another parameter.
                [b';', rest @ ..] if !rest.is_empty() => rest,
                _ => return None,
            };
        }
        Some(Params { raw })
    }

    /// Wraps URI parameters after checking `pname ["=" pvalue]` with `paramchar` bytes only.
    pub fn uri(raw: &'a [u8]) -> Option<Self> {
        // uri-parameters = *( ";" uri-parameter ), read in one pass: a name run, an optional
        // "=" and value run, then ";" or the end. White space is no paramchar, so it is refused
        // as everywhere in a URI; an empty parameter (";;", a trailing ";") is refused too. An
        // empty list (what follows a lone trailing ";" after the host) is accepted.
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
        Some(Params { raw })
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
        let (name, value) = match memchr::memchr(b'=', raw) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
