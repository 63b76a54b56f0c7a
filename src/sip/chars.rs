//! Byte classes of the RFC 3261 section 25 grammar, as lookup tables, and the searches the
//! scanners of this module family share.
//!
//! Each byte maps to a set of class bits; the scanners test membership with one load and one
//! mask ([`run_end`] reads runs of a class four bytes a step). The searches for a few delimiters
//! (quotes, brackets, commas) read eight bytes at a time: header values are short, and a vector
//! search's set-up would cost more than it saves on them. Nothing here allocates or looks beyond
//! the slice it is given.

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

/// Classes beyond the eight bits of the table above, in a second table of their own.
const EXTRA_GEN_VALUE: u8 = 1;
const EXTRA_SCHEME: u8 = 1 << 1;
const EXTRA_OPAQUE: u8 = 1 << 2;

const fn build_extra() -> [u8; 256] {
    let base = build();
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if base[c] & TOKEN != 0 || matches!(b, b':' | b'[' | b']') {
            t[c] |= EXTRA_GEN_VALUE;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.') {
            t[c] |= EXTRA_SCHEME;
        }
        if b > b' ' && b < 0x7f && !matches!(b, b'<' | b'>' | b'"') {
            t[c] |= EXTRA_OPAQUE;
        }
        c += 1;
    }
    t
}

static EXTRA: [u8; 256] = build_extra();

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`, after the first byte.
#[inline(always)]
pub fn is_scheme(b: u8) -> bool {
    EXTRA[b as usize] & EXTRA_SCHEME != 0
}

/// The bytes an opaque (non-SIP) URI may hold: visible ASCII but `<`, `>` and `"`.
#[inline(always)]
pub fn is_opaque_uri(b: u8) -> bool {
    EXTRA[b as usize] & EXTRA_OPAQUE != 0
}

/// Single-bit classes for [`run_end`], one bit for each union of the classes above that a
/// scanner reads runs of (a union of two bits cannot be tested four bytes at once).
pub mod run {
    /// `unreserved / user-unreserved`: the bytes of a URI user part (besides escapes).
    pub const USER: u8 = 1;
    /// `unreserved / "&" / "=" / "+" / "$" / ","`: the bytes of a URI password.
    pub const PASSWORD: u8 = 1 << 1;
    /// `paramchar` without escapes: `param-unreserved / unreserved`.
    pub const PARAM: u8 = 1 << 2;
    /// `hnv-unreserved / unreserved`: URI header names and values.
    pub const HNV: u8 = 1 << 3;
    /// `token`.
    pub const TOKEN: u8 = 1 << 4;
    /// A header parameter value outside quotes: `token`, or a `host` (which adds `:`, `[` and
    /// `]` for IPv6 references, RFC 5118 4.5).
    pub const GEN_VALUE: u8 = 1 << 5;
    /// `alphanum`.
    pub const ALPHANUM: u8 = 1 << 6;
    /// `word` (RFC 3261 25.1): the bytes of a Call-ID on either side of its `@`.
    pub const WORD: u8 = 1 << 7;
}

const fn build_run() -> [u8; 256] {
    let base = build();
    let extra = build_extra();
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let k = base[c];
        if k & (UNRESERVED | USER) != 0 {
            t[c] |= run::USER;
        }
        if k & (UNRESERVED | PASSWORD) != 0 {
            t[c] |= run::PASSWORD;
        }
        if k & (UNRESERVED | PARAM) != 0 {
            t[c] |= run::PARAM;
        }
        if k & (UNRESERVED | HNV) != 0 {
            t[c] |= run::HNV;
        }
        if k & TOKEN != 0 {
            t[c] |= run::TOKEN;
        }
        if extra[c] & EXTRA_GEN_VALUE != 0 {
            t[c] |= run::GEN_VALUE;
        }
        if b.is_ascii_alphanumeric() {
            t[c] |= run::ALPHANUM;
        }
        if k & WORD != 0 {
            t[c] |= run::WORD;
        }
        c += 1;
    }
    t
}

static RUN: [u8; 256] = build_run();

/// Where the run of bytes in the [`run`] class `bit` that starts at `s[i]` ends (`i` itself
/// when `s[i]` is not in it, `s.len()` when the run reaches the end). Unrolled four bytes a
/// step while four remain, each byte tested on its own so that the first one outside the class
/// is known at once: the runs in SIP values are short, a rescan would cost more than it saves.
#[inline(always)]
pub fn run_end(s: &[u8], i: usize, bit: u8) -> usize {
    let member = |b: u8| RUN[b as usize] & bit != 0;
    let Some(rest) = s.get(i..) else {
        return i;
    };
    let mut chunks = rest.chunks_exact(4);
    let mut n = i;
    for chunk in &mut chunks {
        if let &[a, b, c, d] = chunk {
            if !member(a) {
                return n;
            }
            if !member(b) {
                return n + 1;
            }
            if !member(c) {
                return n + 2;
            }
            if !member(d) {
                return n + 3;
            }
        }
        n += 4;
    }
    for &b in chunks.remainder() {
        if !member(b) {
            return n;
        }
        n += 1;
    }
    n
}

/// `s.eq_ignore_ascii_case(lower)` for a `lower` without upper-case letters (a name as the
/// grammar spells it, lower-cased), comparing four or eight bytes at a time: each byte of `s`
/// with the case bit set where `lower` has a letter, else as it is. Inlined with a literal
/// `lower`, the masks are constants.
#[inline(always)]
pub fn eq_lower(s: &[u8], lower: &[u8]) -> bool {
    debug_assert!(!lower.iter().any(u8::is_ascii_uppercase));
    let fold = |l: u8| if l.is_ascii_lowercase() { 0x20 } else { 0 };
    let n = lower.len();
    if s.len() != n {
        return false;
    }
    match n {
        0..4 => s.iter().zip(lower).all(|(&a, &l)| a | fold(l) == l),
        4..=8 => {
            let word = |v: &[u8], at: usize| {
                v.get(at..at + 4)
                    .and_then(|w| <[u8; 4]>::try_from(w).ok())
                    .map(u32::from_le_bytes)
            };
            let eq = |at: usize| match (word(s, at), word(lower, at)) {
                (Some(a), Some(l)) => {
                    let mask = l.to_le_bytes().map(fold);
                    a | u32::from_le_bytes(mask) == l
                }
                _ => false,
            };
            eq(0) && eq(n - 4)
        }
        _ => {
            let eq = |at: usize| match (word_at(s, at), word_at(lower, at)) {
                (Some(a), Some(l)) => {
                    let mask = l.to_le_bytes().map(fold);
                    a | u64::from_le_bytes(mask) == l
                }
                _ => false,
            };
            let mut at = 0;
            while at + 8 < n {
                if !eq(at) {
                    return false;
                }
                at += 8;
            }
            eq(n - 8)
        }
    }
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

/// The number written by the digits that start at `s[i]`, and where they end; `None` when there
/// are none or the number is larger than `max` (leading zeros are legal). For a number inside a
/// value (a port, a CSeq), read in the pass that finds its end.
#[inline(always)]
pub fn decimal_at(s: &[u8], mut i: usize, max: u32) -> Option<(u32, usize)> {
    let start = i;
    let mut v = 0u64;
    while let Some(&b) = s.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v * 10 + u64::from(d);
        if v > u64::from(max) {
            return None;
        }
        i += 1;
    }
    (i > start).then_some((v as u32, i))
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
#[inline]
pub fn split_quoted(s: &[u8]) -> Option<(&[u8], &[u8])> {
    if s.first() != Some(&b'"') {
        return None;
    }
    let end = closing_quote(s, 1)?;
    Some((s.get(1..end)?, s.get(end + 1..)?))
}

/// The index of the `"` that closes a quoted-string whose content starts at `s[i]` (just after
/// the opening quote), or `None` when the quote is never closed or a quoted-pair is malformed.
#[inline]
pub fn closing_quote(s: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i = find_either(s, i, b'"', b'\\')?;
        match s.get(i)? {
            b'"' => return Some(i),
            // RFC 3261 25.1: quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F); CR and LF excluded.
            _ => match s.get(i + 1) {
                Some(&n) if n <= 0x7f && n != b'\r' && n != b'\n' => i += 2,
                _ => return None,
            },
        }
    }
}

/// Finds the first `sep` in `s` that is outside quoted strings and angle brackets. `None` also
/// when a quote or bracket is left open before any separator.
#[inline]
pub fn find_unquoted(s: &[u8], sep: u8) -> Option<usize> {
    if sep == b'"' || sep == b'<' {
        // Such a separator opens a quote or bracket wherever it stands.
        return find_unquoted_loop(s, 0, sep);
    }
    let first = find_byte(s, 0, sep)?;
    find_unquoted_from(s, first, sep)
}

/// [`find_unquoted`] when the first `sep` of `s` (neither `"` nor `<`) is known to be at
/// `first`: that is the answer unless a quote or bracket opens before it.
#[inline]
fn find_unquoted_from(s: &[u8], first: usize, sep: u8) -> Option<usize> {
    match find_either(s.get(..first)?, 0, b'"', b'<') {
        None => Some(first),
        Some(open) => find_unquoted_loop(s, open, sep),
    }
}

/// [`find_unquoted`] from `s[i]`, outside any quote or bracket.
fn find_unquoted_loop(s: &[u8], mut i: usize, sep: u8) -> Option<usize> {
    loop {
        // Jump between the only three bytes that matter; header values are mostly plain text,
        // and short: a word at a time beats a vector search and its set-up there.
        let at = find_any3(s, i, sep, b'"', b'<')?;
        match s.get(at)? {
            b'"' => i = closing_quote(s, at + 1)? + 1,
            b'<' => i = find_byte(s, at + 1, b'>')? + 1,
            _ => return Some(at),
        }
    }
}

// Word-at-a-time search over short slices. A byte equal to the one sought becomes zero after an
// XOR with it repeated, and `(v - ONES) & !v & HIGHS` flags zero bytes; a borrow can flag bytes
// above the first real zero only, so the lowest flag (little-endian: the first byte) is a real
// match, also when the flags of several searches are ORed together.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `s[i..]` as a little-endian word, if there are eight.
#[inline(always)]
pub fn word_at(s: &[u8], i: usize) -> Option<u64> {
    let w = s.get(i..i.checked_add(8)?)?;
    <[u8; 8]>::try_from(w).ok().map(u64::from_le_bytes)
}

/// Flags (high bit of each byte) the bytes of `x` equal to `b`: the classic zero-byte test
/// applied to `x ^ b`. Bytes above the first match may be flagged spuriously; the lowest flag is
/// exact.
#[inline(always)]
pub(crate) fn flag_eq(x: u64, b: u8) -> u64 {
    let v = x ^ (ONES * u64::from(b));
    v.wrapping_sub(ONES) & !v & HIGHS
}

/// The index of the first `b` at or after `i`, if any.
#[inline]
pub fn find_byte(s: &[u8], mut i: usize, b: u8) -> Option<usize> {
    while let Some(x) = word_at(s, i) {
        let hits = flag_eq(x, b);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let p = s.get(i..)?.iter().position(|&c| c == b)?;
    Some(i + p)
}

/// The index of the first `b` in `s`, if any: [`find_byte`] on short slices, the vector search
/// of `memchr` on long ones, where its set-up pays for itself (from about 32 bytes).
#[inline]
pub fn find_byte_long(s: &[u8], b: u8) -> Option<usize> {
    if s.len() < 32 {
        find_byte(s, 0, b)
    } else {
        memchr::memchr(b, s)
    }
}

/// The index of the first `a` or `b` at or after `i`, if any.
#[inline]
pub fn find_either(s: &[u8], mut i: usize, a: u8, b: u8) -> Option<usize> {
    while let Some(x) = word_at(s, i) {
        let hits = flag_eq(x, a) | flag_eq(x, b);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let p = s.get(i..)?.iter().position(|&c| c == a || c == b)?;
    Some(i + p)
}

/// The index of the first `a`, `b` or `c` at or after `i`, if any.
#[inline]
pub fn find_any3(s: &[u8], mut i: usize, a: u8, b: u8, c: u8) -> Option<usize> {
    while let Some(x) = word_at(s, i) {
        let hits = flag_eq(x, a) | flag_eq(x, b) | flag_eq(x, c);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let p = s
        .get(i..)?
        .iter()
        .position(|&d| d == a || d == b || d == c)?;
    Some(i + p)
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
        // Without a comma anywhere (the usual single-element value) there is nothing to split,
        // whatever quotes and brackets the value holds, and one search for the comma says so.
        let found = match find_byte_long(s, b',') {
            None => None,
            Some(comma) => find_unquoted_from(s, comma, b','),
        };
        match found {
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

/// Inputs for the tests that compare the parsers of this module family with the implementations
/// they replaced: SIP-shaped soup, well-formed URIs, name-addrs and parameter lists, and the same
/// with a few bytes edited anywhere.
#[cfg(test)]
pub(crate) mod arb {
    use proptest::prelude::*;
    use proptest::sample::{Index, select};

    /// Pieces of the URI and header grammars, near misses included.
    pub const PIECES: &[&str] = &[
        "sip:",
        "sips:",
        "SIP:",
        "sIpS:",
        "tel:",
        "x-y+z.1:",
        "sip",
        ":",
        "@",
        ";",
        "?",
        "=",
        "&",
        ",",
        "<",
        ">",
        "\"",
        "\\",
        " ",
        "\t",
        "\r\n ",
        "%",
        "%4",
        "%41",
        "%zz",
        "%2C",
        "%00",
        "[",
        "]",
        "::",
        "2001:db8::1",
        "[2001:db8::1]",
        "[::ffff:1.2.3.4]",
        "192.0.2.14",
        "0.0.0.0",
        "255.255.255.255",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.",
        "1..2",
        ".",
        "..",
        "-",
        "a-",
        "-a",
        "a.-b",
        "example.com",
        "EXAMPLE.COM.",
        "1abc.com",
        "a",
        "Z",
        "0",
        "9",
        "5060",
        "65535",
        "65536",
        "99999",
        "user",
        "u012345",
        "alice:secret",
        "transport=udp",
        "lr",
        "tag=4b1c9a2e",
        "expires=3600",
        "q=0.7",
        "q=1.5",
        "reg-id=1",
        "reg-id=0",
        "+sip.instance=\"<urn:uuid:x>\"",
        "\"Alice\"",
        "Alice Smith",
        "\"a\\\"b\"",
        "\u{80}",
        "\0",
        "\u{7f}",
        "\r",
        "\n",
        "!",
        "~",
        "*",
        "'",
        "(",
        ")",
        "$",
        "+",
        "/",
        "_",
        "#",
        "^",
        "{",
        "|",
        "}",
        "`",
    ];

    /// Bytes worth putting anywhere: every delimiter of the grammars, and a few of each class.
    pub const BYTES: &[u8] =
        b"@:;?=&,<>\"\\ \t\r\n%[].-+!~*'()$/_#^{|}`aZf09\x00\x01\x7f\x80\xa2\xdc\xff";

    /// Anything at all, short.
    pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..48)
    }

    /// Pieces of the grammars in any order: mostly malformed.
    pub fn soup() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(select(PIECES), 0..16).prop_map(|p| p.concat().into_bytes())
    }

    /// A host: a name, an IPv4 or IPv6 address, or text in the host alphabet that may be none.
    pub fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-zA-Z0-9]([a-zA-Z0-9-]{0,5}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,5}[a-zA-Z0-9])?){0,3}\\.?",
            2 => any::<core::net::Ipv4Addr>().prop_map(|a| a.to_string()),
            2 => any::<core::net::Ipv6Addr>().prop_map(|a| format!("[{a}]")),
            1 => "[0-9]{1,4}(\\.[0-9]{1,4}){0,4}\\.?",
            1 => "[a-zA-Z0-9.-]{0,12}",
            1 => "\\[[0-9a-fA-F:.]{0,16}\\]?",
        ]
    }

    /// A URI: SIP or SIPS with any of its parts, or another scheme.
    pub fn uri() -> impl Strategy<Value = String> {
        let scheme = select(
            &[
                "sip:", "sip:", "sip:", "sips:", "SIP:", "sIpS:", "tel:", "x-y+z.1:",
            ][..],
        );
        let user = proptest::option::of(prop_oneof![
            "[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,10}",
            "[a-z]{0,4}%[0-9a-fA-F]{2}[a-z]{0,3}",
            "\\+1[0-9]{7}",
        ]);
        let password = proptest::option::of("[a-zA-Z0-9&=+$,%]{0,6}");
        let port =
            proptest::option::of(prop_oneof!["[0-9]{1,5}", "0{1,3}5060", Just(String::new())]);
        let param = prop_oneof![
            "[a-zA-Z-]{1,8}",
            "[a-z]{1,8}=[a-zA-Z0-9.-]{1,8}",
            "[a-z]{1,4}=%[0-9A-F]{2}",
            "maddr=[0-9.]{7,15}",
            "x=\\[::1\\]",
            "[a-z]{0,2}=?",
        ];
        let params = prop::collection::vec(param, 0..4);
        let headers = proptest::option::of(prop::collection::vec(
            prop_oneof!["[a-zA-Z]{1,6}=[a-zA-Z0-9%:]{0,6}", "[a-z]{0,3}=?[a-z]{0,3}"],
            1..3,
        ));
        (
            scheme,
            user,
            password,
            host(),
            port,
            params,
            any::<bool>(),
            headers,
        )
            .prop_map(
                |(scheme, user, password, host, port, params, semi, headers)| {
                    let mut s = String::from(scheme);
                    if let Some(user) = user {
                        s += &user;
                        if let Some(password) = password {
                            s += ":";
                            s += &password;
                        }
                        s += "@";
                    }
                    s += &host;
                    if let Some(port) = port {
                        s += ":";
                        s += &port;
                    }
                    for p in params {
                        s += ";";
                        s += &p;
                    }
                    if semi {
                        s += ";";
                    }
                    if let Some(h) = headers {
                        s += "?";
                        s += &h.join("&");
                    }
                    s
                },
            )
    }

    fn lws() -> impl Strategy<Value = &'static str> {
        select(&["", "", "", " ", "\t", "\r\n ", "  "][..])
    }

    /// A header parameter list (what follows the first `;`): names with and without values,
    /// tokens, hosts and quoted strings, LWS around the punctuation.
    pub fn header_params() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            select(
                &[
                    "tag",
                    "q",
                    "expires",
                    "+sip.instance",
                    "reg-id",
                    "branch",
                    "rport",
                    "received",
                    "Q",
                    "EXPIRES"
                ][..]
            )
            .prop_map(String::from),
            "[a-zA-Z0-9.!%*_+`'~-]{1,8}",
        ];
        let value = proptest::option::of(prop_oneof![
            "[a-zA-Z0-9.!%*_+`'~-]{1,10}",
            "[0-9]{1,12}",
            "[01]\\.[0-9]{0,4}",
            r#""([ !#-\[\]-~]|\\[\x00-\x7f]){0,12}""#,
            "\"<urn:uuid:[0-9a-f-]{8,20}>\"",
            "\\[?[0-9a-f:]{2,12}\\]?",
        ]);
        let param = (name, lws(), lws(), value).prop_map(|(n, a, b, v)| match v {
            Some(v) => format!("{n}{a}={b}{v}"),
            None => n,
        });
        (prop::collection::vec((param, lws(), lws()), 1..5)).prop_map(|ps| {
            let mut s = String::new();
            for (k, (p, a, b)) in ps.into_iter().enumerate() {
                if k > 0 {
                    s += a;
                    s += ";";
                    s += b;
                }
                s += &p;
            }
            s
        })
    }

    /// A `name-addr` or `addr-spec` with optional header parameters.
    pub fn name_addr() -> impl Strategy<Value = String> {
        let display = prop_oneof![
            Just(String::new()),
            r#""([ !#-\[\]-~]|\\[\x00-\x7f]){0,10}""#,
            "[A-Za-z]{1,6}( [A-Za-z.]{1,6}){0,2}",
        ];
        (
            display,
            any::<bool>(),
            uri(),
            lws(),
            lws(),
            proptest::option::of(header_params()),
        )
            .prop_map(|(display, bracket, uri, a, b, params)| {
                let mut s = if bracket || !display.is_empty() {
                    format!("{display}{a}<{uri}>")
                } else {
                    uri
                };
                if let Some(p) = params {
                    s += b;
                    s += ";";
                    s += a;
                    s += &p;
                }
                s
            })
    }

    /// `base` with up to four bytes replaced, inserted or removed, or a span cut out.
    pub fn edited(base: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![4 => select(BYTES), 1 => any::<u8>()];
        let edit = (any::<Index>(), any::<Index>(), byte, 0..4u8);
        (base, prop::collection::vec(edit, 0..4)).prop_map(|(base, edits)| {
            let mut v = base.into_bytes();
            for (at, to, byte, how) in edits {
                if v.is_empty() {
                    v.push(byte);
                    continue;
                }
                let at = at.index(v.len());
                match how {
                    0 => v[at] = byte,
                    1 => v.insert(at, byte),
                    2 => {
                        v.remove(at);
                    }
                    _ => {
                        let to = at + to.index(v.len() - at);
                        v.drain(at..to);
                    }
                }
            }
            v
        })
    }

    /// Where `part` lies relative to `base` (offset and length), to compare slices by place, not
    /// only by content. A slice from elsewhere (`Params::EMPTY`) gets an offset of its own.
    pub fn span(base: &[u8], part: &[u8]) -> (usize, usize) {
        let offset = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        (offset, part.len())
    }
}

/// The implementations the word-at-a-time versions replaced, kept as the reference they are
/// tested against.
#[cfg(test)]
pub(crate) mod reference {
    pub fn split_quoted(s: &[u8]) -> Option<(&[u8], &[u8])> {
        let body = s.strip_prefix(b"\"")?;
        let mut i = 0;
        loop {
            i += memchr::memchr2(b'"', b'\\', body.get(i..)?)?;
            match body.get(i)? {
                b'"' => return Some((body.get(..i)?, body.get(i + 1..)?)),
                _ => match body.get(i + 1) {
                    Some(&n) if n <= 0x7f && n != b'\r' && n != b'\n' => i += 2,
                    _ => return None,
                },
            }
        }
    }

    pub fn find_unquoted(s: &[u8], sep: u8) -> Option<usize> {
        let mut i = 0;
        loop {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Strategy;

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
    fn lower_case_names() {
        for name in [
            &b""[..],
            b"q",
            b"ab",
            b"tag",
            b"rport",
            b"reg-id",
            b"expires",
            b"received",
            b"+sip.instance",
            b"a-rather-long-name-x",
        ] {
            let mut cases = vec![name.to_vec(), name.to_ascii_uppercase()];
            for at in 0..name.len() {
                for b in [
                    0x00,
                    0x0b,
                    b'+' ^ 0x20,
                    name[at] ^ 0x20,
                    name[at] ^ 0x01,
                    0x80,
                ] {
                    let mut v = name.to_vec();
                    v[at] = b;
                    cases.push(v);
                }
            }
            cases.push(name[..name.len().saturating_sub(1)].to_vec());
            cases.push([name, b"x"].concat());
            for v in cases {
                assert_eq!(
                    eq_lower(&v, name),
                    v.eq_ignore_ascii_case(name),
                    "{v:?} {name:?}"
                );
            }
        }
    }

    #[test]
    fn decimals() {
        // A number inside a value: where it ends, and the bound at both ends of the range.
        assert_eq!(decimal_at(b":05060;x", 1, 65_535), Some((5060, 6)));
        assert_eq!(decimal_at(b"65536", 0, 65_535), None);
        assert_eq!(decimal_at(b"x", 0, 65_535), None);
        assert_eq!(
            decimal_at(b"2147483647 R", 0, (1 << 31) - 1),
            Some(((1 << 31) - 1, 10))
        );
        assert_eq!(decimal_at(b"2147483648", 0, (1 << 31) - 1), None);
        assert_eq!(decimal_at(b"4294967295", 0, u32::MAX), Some((u32::MAX, 10)));
        assert_eq!(decimal_at(b"99999999999999999999", 0, u32::MAX), None);
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

    /// The word-at-a-time searches find the first match wherever it is, next to the bytes the
    /// zero-byte test could confuse.
    #[test]
    fn word_searches_find_the_first_match() {
        for len in 0..20 {
            for at in 0..len {
                for noise in [0x00, 0x01, 0x80, 0xff, b'+', b'-'] {
                    let mut v = vec![b'x'; len];
                    for (k, b) in v.iter_mut().enumerate() {
                        if k % 3 == 1 {
                            *b = noise;
                        }
                    }
                    v[at] = b',';
                    for from in 0..=len {
                        let want = v[from.min(len)..]
                            .iter()
                            .position(|&b| b == b',')
                            .map(|p| p + from);
                        assert_eq!(find_byte(&v, from, b','), want);
                        assert_eq!(find_either(&v, from, b',', b'"'), want);
                        assert_eq!(find_any3(&v, from, b',', b'"', b'<'), want);
                    }
                }
            }
        }
    }

    fn comma_list_reference(s: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut rest = Some(s);
        while let Some(r) = rest {
            match reference::find_unquoted(r, b',') {
                Some(i) => {
                    out.push(trim(&r[..i]));
                    rest = Some(&r[i + 1..]);
                }
                None => {
                    out.push(trim(r));
                    rest = None;
                }
            }
        }
        out
    }

    fn check_scans(v: &[u8], sep: u8) -> Result<(), proptest::test_runner::TestCaseError> {
        use proptest::prop_assert_eq;
        let text = String::from_utf8_lossy(v);
        for sep in [b',', b';', b'"', b'<', sep] {
            prop_assert_eq!(
                find_unquoted(v, sep),
                reference::find_unquoted(v, sep),
                "{:?} {}",
                text,
                sep
            );
        }
        for from in [0, 1, 2] {
            if let Some(rest) = v.get(from..) {
                prop_assert_eq!(
                    split_quoted(rest),
                    reference::split_quoted(rest),
                    "{:?}",
                    text
                );
            }
        }
        let ours: Vec<&[u8]> = CommaList::new(v).collect();
        prop_assert_eq!(ours, comma_list_reference(v), "{:?}", text);
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        #[test]
        fn scans_agree_with_reference_on_anything(v in arb::bytes(), sep in proptest::prelude::any::<u8>()) {
            check_scans(&v, sep)?;
        }

        #[test]
        fn scans_agree_with_reference_on_soup(v in arb::soup(), sep in proptest::sample::select(arb::BYTES)) {
            check_scans(&v, sep)?;
        }

        #[test]
        fn scans_agree_with_reference_on_edited_lists(
            v in arb::edited(proptest::collection::vec(arb::name_addr(), 1..4).prop_map(|v| v.join(", "))),
            sep in proptest::sample::select(arb::BYTES),
        ) {
            check_scans(&v, sep)?;
        }
    }
}

// flow: scans for the registrar's Contact parameters (`location::echo_params`).

/// Whether `s` holds a byte of at most 0x20 (space, HT, CR, LF or another control byte) or
/// DEL, or, when `x`, an `x` or `X`: a word at a time, the tail padded with a byte that is
/// neither. A list of parameters without such bytes has no white space around its separators,
/// and no `expires` parameter.
#[inline]
pub fn has_blank_or_x(s: &[u8], x: bool) -> bool {
    if s.is_empty() {
        return false;
    }
    // High bit of each byte below 0x21 (the classic less-than test; bytes of 0x80 and more have
    // their own high bit, masked off by `!w`), at DEL, or equal to `x` once the case bit is set.
    let flags = |w: u64| {
        let low = w.wrapping_sub(ONES * 0x21) & !w & HIGHS;
        let del = flag_eq(w, 0x7f);
        let xs = if x {
            flag_eq(w | (ONES * 0x20), b'x')
        } else {
            0
        };
        low | del | xs
    };
    let mut chunks = s.chunks_exact(8);
    let mut found = 0;
    for c in chunks.by_ref() {
        if let Ok(c) = <[u8; 8]>::try_from(c) {
            found |= flags(u64::from_le_bytes(c));
        }
    }
    let mut tail = [b'a'; 8];
    for (t, &b) in tail.iter_mut().zip(chunks.remainder()) {
        *t = b;
    }
    found |= flags(u64::from_le_bytes(tail));
    found != 0
}

#[cfg(test)]
mod flow_tests {
    use super::has_blank_or_x;

    #[test]
    fn blank_or_x_is_found_in_every_position() {
        for b in 0..=255u8 {
            let want = b <= 0x20 || b == 0x7f;
            let want_x = want || b | 0x20 == b'x';
            for len in 1..20 {
                for at in 0..len {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    assert_eq!(has_blank_or_x(&s, false), want, "{b:#x} {len} {at}");
                    assert_eq!(has_blank_or_x(&s, true), want_x, "{b:#x} {len} {at}");
                }
            }
        }
        assert!(!has_blank_or_x(b"", true));
        assert!(!has_blank_or_x("é;ü=ß".as_bytes(), true));
    }
}

// names: searches added for the address parsers (name-addr, URI, Via and their parameters).

/// [`run_end`] for runs that are often long (a Via branch, a tag, a URI user): eight bytes a
/// step, their classes ANDed together and tested once, which is one load and one AND a byte
/// where [`run_end`] spends a test and a branch on each. The step that holds the end of the run
/// is read again by [`run_end`], which says where in it the run ends.
#[inline(always)]
pub fn long_run_end(s: &[u8], i: usize, bit: u8) -> usize {
    let Some(rest) = s.get(i..) else {
        return i;
    };
    let mut n = i;
    for chunk in rest.chunks_exact(8) {
        if let &[a, b, c, d, e, f, g, h] = chunk {
            let t = |x: u8| RUN[usize::from(x)];
            if t(a) & t(b) & t(c) & t(d) & t(e) & t(f) & t(g) & t(h) & bit == 0 {
                break;
            }
        }
        n += 8;
    }
    run_end(s, n, bit)
}

/// `1*DIGIT` of one to nine digits (below 2^30, so read without a limit check) at `s[i..]`,
/// the whole of a header parameter's value: the number and where the digits end. `None` when
/// there is no digit, ten or more, or another byte of a parameter value ([`run::GEN_VALUE`])
/// after them (`3600s`): what a caller then reads the general way.
#[inline(always)]
pub fn short_decimal_at(s: &[u8], i: usize) -> Option<(u32, usize)> {
    let mut n = 0u32;
    let mut j = i;
    while let Some(&b) = s.get(j) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if j - i == 9 {
            return None;
        }
        n = n * 10 + u32::from(d);
        j += 1;
    }
    if j == i
        || s.get(j)
            .is_some_and(|&b| RUN[usize::from(b)] & run::GEN_VALUE != 0)
    {
        return None;
    }
    Some((n, j))
}

#[cfg(test)]
mod names_tests {
    use super::*;

    /// The eight-byte steps end where the four-byte ones do, wherever the end falls in a step.
    #[test]
    fn long_runs_end_where_short_ones_do() {
        for len in 0..40 {
            for stop in 0..=len {
                for from in 0..=len + 1 {
                    let mut v = vec![b'a'; len];
                    if stop < len {
                        v[stop] = b';';
                    }
                    for bit in [run::TOKEN, run::GEN_VALUE, run::ALPHANUM, run::USER] {
                        assert_eq!(long_run_end(&v, from, bit), run_end(&v, from, bit));
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn long_runs_agree_with_short_ones(v in arb::bytes(), from in 0usize..50, bit in 0u32..8) {
            let bit = 1u8 << bit;
            proptest::prop_assert_eq!(long_run_end(&v, from, bit), run_end(&v, from, bit));
        }
    }
}
