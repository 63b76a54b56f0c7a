//! Byte classes of the RFC 3261 section 25 grammar, as one lookup table.
//!
//! Each byte maps to a set of class bits; the scanners in this module family test membership with
//! one load and one mask. Nothing here allocates or looks beyond the slice it is given.

/// `alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"`
pub const TOKEN: u8 = 1;
/// `unreserved = alphanum / mark` with `mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"`
pub const UNRESERVED: u8 = 1 << 1;
/// Characters a URI user part may carry unescaped besides `unreserved`:
/// `user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"`
pub const USER: u8 = 1 << 2;
/// `param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"`
pub const PARAM: u8 = 1 << 3;
/// `hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"`
pub const HNV: u8 = 1 << 4;
/// Password characters besides `unreserved`: `"&" / "=" / "+" / "$" / ","`
pub const PASSWORD: u8 = 1 << 5;
/// Host name characters: `alphanum / "-" / "."`
pub const HOST: u8 = 1 << 6;
/// `word`: the Call-ID alphabet, `alphanum` plus `-.!%*_+`'~()<>:\"/[]?{}`
pub const WORD: u8 = 1 << 7;

const fn build() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() {
            t[c] = TOKEN | UNRESERVED | HOST | WORD;
        }
        c += 1;
    }
    let token = b"-.!%*_+`'~";
    let mut i = 0;
    while i < token.len() {
        t[token[i] as usize] |= TOKEN;
        i += 1;
    }
    let mark = b"-_.!~*'()";
    i = 0;
    while i < mark.len() {
        t[mark[i] as usize] |= UNRESERVED;
        i += 1;
    }
    let user = b"&=+$,;?/";
    i = 0;
    while i < user.len() {
        t[user[i] as usize] |= USER;
        i += 1;
    }
    let param = b"[]/:&+$";
    i = 0;
    while i < param.len() {
        t[param[i] as usize] |= PARAM;
        i += 1;
    }
    let hnv = b"[]/?:+$";
    i = 0;
    while i < hnv.len() {
        t[hnv[i] as usize] |= HNV;
        i += 1;
    }
    let password = b"&=+$,";
    i = 0;
    while i < password.len() {
        t[password[i] as usize] |= PASSWORD;
        i += 1;
    }
    t[b'-' as usize] |= HOST;
    t[b'.' as usize] |= HOST;
    let word = b"-.!%*_+`'~()<>:\\\"/[]?{}";
    i = 0;
    while i < word.len() {
        t[word[i] as usize] |= WORD;
        i += 1;
    }
    t
}

static TABLE: [u8; 256] = build();

/// True when `b` belongs to every class in `class`.
#[inline(always)]
pub fn is(b: u8, class: u8) -> bool {
    TABLE[b as usize] & class == class
}

/// True when `b` belongs to at least one class in `classes`.
#[inline(always)]
pub fn is_any(b: u8, classes: u8) -> bool {
    TABLE[b as usize] & classes != 0
}

/// True for every byte of a non-empty `token`.
#[inline]
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is(b, TOKEN))
}

/// Linear white space inside a header value. Folded lines keep their CRLF in the value slice, and
/// the framer guarantees each CRLF there is followed by SP or HT, so CR and LF count as LWS here.
#[inline(always)]
pub fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `s` without leading and trailing LWS.
#[inline]
pub fn trim(s: &[u8]) -> &[u8] {
    trim_end(trim_start(s))
}

/// `s` without leading LWS.
#[inline]
pub fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_lws(b)).count();
    s.get(n..).unwrap_or_default()
}

/// `s` without trailing LWS.
#[inline]
pub fn trim_end(s: &[u8]) -> &[u8] {
    let n = s.iter().rev().take_while(|&&b| is_lws(b)).count();
    s.get(..s.len() - n).unwrap_or_default()
}

/// The value of one hexadecimal digit.
#[inline]
pub fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses `1*DIGIT` into a number no larger than `max`; `None` if empty, not all digits, or larger.
#[inline]
pub fn parse_decimal(s: &[u8], max: u64) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    // Leading zeros are legal, so the length alone says nothing; overflow is checked per digit.
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        if v > max {
            return None;
        }
    }
    Some(v)
}

/// Parses `1*DIGIT`, saturating at `max` instead of failing (RFC 3261 delta-seconds rule).
#[inline]
pub fn parse_decimal_saturating(s: &[u8], max: u64) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v
            .saturating_mul(10)
            .saturating_add(u64::from(b - b'0'))
            .min(max);
    }
    Some(v)
}

/// Splits off a quoted-string at the start of `s` (which must begin with `"`), honouring
/// quoted-pairs. Returns the content between the quotes (escapes kept) and the rest after the
/// closing quote, or `None` when the quote is never closed.
pub fn split_quoted(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let body = s.strip_prefix(b"\"")?;
    let mut i = 0;
    loop {
        i += memchr::memchr2(b'"', b'\\', body.get(i..)?)?;
        match body.get(i)? {
            b'"' => return Some((body.get(..i)?, body.get(i + 1..)?)),
            // RFC 3261 25.1: quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F); CR and LF excluded.
            _ => match body.get(i + 1) {
                Some(&n) if n <= 0x7f && n != b'\r' && n != b'\n' => i += 2,
                _ => return None,
            },
        }
    }
}

/// Finds the first `sep` in `s` that is outside quoted strings and angle brackets. `None` also
/// when a quote or bracket is left open before any separator.
pub fn find_unquoted(s: &[u8], sep: u8) -> Option<usize> {
    let mut i = 0;
    loop {
        // Jump between the only three bytes that matter; header values are mostly plain text.
        let at = i + memchr::memchr3(sep, b'"', b'<', s.get(i..)?)?;
        match s.get(at)? {
            b'"' => {
                let (inner, _) = split_quoted(s.get(at..)?)?;
                i = at + inner.len() + 2;
            }
            b'<' => i = at + 1 + memchr::memchr(b'>', s.get(at + 1..)?)? + 1,
            _ => return Some(at),
        }
    }
}

/// Iterates over the comma-separated elements of a header value (commas inside quoted strings and
/// angle brackets do not split), each trimmed of LWS. Empty elements are yielded as empty slices so
/// that callers can reject them.
#[derive(Clone, Debug)]
pub struct CommaList<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> CommaList<'a> {
    pub fn new(value: &'a [u8]) -> Self {
        CommaList { rest: Some(value) }
    }
}

impl<'a> Iterator for CommaList<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.rest?;
        match find_unquoted(s, b',') {
            Some(i) => {
                self.rest = s.get(i + 1..);
                Some(trim(s.get(..i)?))
            }
            None => {
                self.rest = None;
                Some(trim(s))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(is_token(b"REGISTER"));
        assert!(is_token(b"RE%47IST%45R"));
        assert!(!is_token(b"RE GISTER"));
        assert!(!is_token(b""));
        assert!(is(b'?', USER) && !is(b'?', PARAM) && is(b'?', HNV));
        assert!(is(b'(', UNRESERVED) && !is(b'(', TOKEN));
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal(b"0068", 255), Some(68));
        assert_eq!(parse_decimal(b"300", 255), None);
        assert_eq!(parse_decimal(b"", 255), None);
        assert_eq!(
            parse_decimal(b"36893488147419103232", u64::from(u32::MAX)),
            None
        );
        assert_eq!(
            parse_decimal_saturating(b"10000000000000000000000000", 7),
            Some(7)
        );
        assert_eq!(parse_decimal_saturating(b"12a", 7), None);
    }

    #[test]
    fn quoted() {
        let (inner, rest) = split_quoted(br#""J Rosenberg \\\"" <sip:a@b>"#).unwrap();
        assert_eq!(inner, br#"J Rosenberg \\\""#);
        assert_eq!(rest, b" <sip:a@b>");
        assert!(split_quoted(b"\"Mr. J. User <sip:j.user@example.com>").is_none());
    }

    #[test]
    fn comma_list() {
        let v: Vec<&[u8]> =
            CommaList::new(br#""a, b" <sip:x@y;p=1,2>, sip:z@w ,<sip:q@r>"#).collect();
        assert_eq!(v.len(), 3);
        assert_eq!(v[1], b"sip:z@w");
        let v: Vec<&[u8]> = CommaList::new(b"a,,b").collect();
        assert_eq!(v, [&b"a"[..], b"", b"b"]);
    }
}
