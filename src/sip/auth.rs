//! Authorization and Proxy-Authorization values (RFC 3261 25.1 `credentials`, RFC 7616 3.4).
//!
//! Syntax only: which scheme, and the digest parameters as borrowed slices. Checking a response
//! against a password hash is the job of the digest module in the registrar core.
//!
//! One pass over the value, no allocation: tokens and LWS by the classes of [`chars`];
//! known parameter names recognised by their first byte and one case-folded 8-byte compare,
//! without scanning them; quoted strings scanned eight bytes at a time and borrowed in place,
//! quoted-pairs left escaped for [`Quoted`] to resolve. A known parameter given twice makes the
//! value malformed; unknown (extension) parameters are skipped unchecked.

use super::chars;

#[inline(always)]
fn is_token(b: u8) -> bool {
    chars::is(b, chars::TOKEN)
}

/// The first index at or after `i` whose byte does not satisfy `class` (or `s.len()`).
#[inline(always)]
fn skip(s: &[u8], mut i: usize, class: impl Fn(u8) -> bool) -> usize {
    while s.get(i).is_some_and(|&b| class(b)) {
        i += 1;
    }
    i
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;
/// ORed into a word, lowercases every ASCII letter in it. No byte but `A`-`Z` and `a`-`z` lands
/// in `a`-`z`, so a folded word equals an all-lowercase name exactly when the bytes are that name
/// in some letter case.
const FOLD: u64 = 0x2020_2020_2020_2020;

/// Up to the first eight bytes of `name` as a little-endian word, unused bytes zero.
const fn word(name: &[u8]) -> u64 {
    let mut w = 0u64;
    let mut i = 0;
    while i < name.len() && i < 8 {
        w |= (name[i] as u64) << (8 * i);
        i += 1;
    }
    w
}

/// The low `len` bytes of a word (`len` at most 8).
const fn low(len: usize) -> u64 {
    if len >= 8 {
        u64::MAX
    } else {
        (1 << (8 * len)) - 1
    }
}

/// The eight bytes at `s[at..]` as a folded little-endian word (see [`FOLD`]); past the end of
/// `s` the bytes are zero before folding.
#[inline(always)]
fn folded_word(s: &[u8], at: usize) -> u64 {
    let raw = match s.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        Some(w) => u64::from_le_bytes(w),
        // Fewer than eight bytes left in the value: gather what there is.
        None => {
            let mut w = [0u8; 8];
            for (d, &b) in w.iter_mut().zip(s.get(at..).unwrap_or_default()) {
                *d = b;
            }
            u64::from_le_bytes(w)
        }
    };
    raw | FOLD
}

/// The index of the first zero byte of `x`, flagged: `(x - ONES) & !x & HIGHS` is non-zero
/// exactly when some byte of `x` is zero (a borrow can flag bytes above the first zero only).
#[inline(always)]
const fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The index of the quote closing a quoted-string whose content starts at `s[i]` (what
/// [`chars::closing_quote`] returns), sixteen bytes a step: most values (names, realms, cnonces)
/// end within one step, hex responses and nonces within three. The last fifteen bytes of the
/// value are left to [`chars::closing_quote`].
#[inline(always)]
fn closing_quote(s: &[u8], mut i: usize) -> Option<usize> {
    const QUOTES: u64 = ONES * b'"' as u64;
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    // Flags the quotes and backslashes of `x`; the lowest flag is exact (see `zero_bytes`: both
    // bytes are below 0x80, so `!x` keeps their flags).
    let special = |x: u64| {
        ((x ^ QUOTES).wrapping_sub(ONES) | (x ^ BACKSLASHES).wrapping_sub(ONES)) & !x & HIGHS
    };
    while let Some((lo, hi)) = s
        .get(i..)
        .and_then(|rest| rest.first_chunk::<16>())
        .map(|w| w.split_at(8))
    {
        let lo = special(u64::from_le_bytes(lo.try_into().ok()?));
        let hi = special(u64::from_le_bytes(hi.try_into().ok()?));
        if lo | hi == 0 {
            i += 16;
            continue;
        }
        let at = if lo != 0 {
            i + (lo.trailing_zeros() / 8) as usize
        } else {
            i + 8 + (hi.trailing_zeros() / 8) as usize
        };
        match s.get(at)? {
            b'"' => return Some(at),
            // RFC 3261 25.1: quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F); CR and LF excluded.
            _ => match s.get(at + 1) {
                Some(&n) if n <= 0x7f && n != b'\r' && n != b'\n' => i = at + 2,
                _ => return None,
            },
        }
    }
    chars::closing_quote(s, i)
}

/// Whether every byte of `s` is a hex digit (either case), a word at a time ([`not_hex`]), the
/// last word overlapping the one before. The loop returns at the first word with a non-digit
/// (the value is public), which also keeps LLVM from vectorising it: its SSE2 form of the fold
/// this replaced took three times the instructions for the 32 digits of an MD5 response.
#[inline(always)]
fn all_hex(s: &[u8]) -> bool {
    let Some(last) = s.last_chunk::<8>() else {
        return s.iter().all(u8::is_ascii_hexdigit);
    };
    let (words, _) = s.as_chunks::<8>();
    for w in words {
        if not_hex(u64::from_le_bytes(*w)) != 0 {
            return false;
        }
    }
    not_hex(u64::from_le_bytes(*last)) == 0
}

/// 0x80 in each byte of `w` that is not a hex digit (either case): a byte is one when it lies
/// in `0`-`9`, or ORed with 0x20 in `a`-`f`, and is below 0x80.
#[inline(always)]
fn not_hex(w: u64) -> u64 {
    /// 0x80 in each byte of `x` (each below 0x80) that lies in `lo..=hi`; the additions stay
    /// within the byte.
    const fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
        let from_lo = x.wrapping_add(ONES * (0x80 - lo as u64));
        let past_hi = x.wrapping_add(ONES * (0x7f - hi as u64));
        from_lo & !past_hi & HIGHS
    }
    let low7 = w & !HIGHS;
    !(in_range(low7, b'0', b'9') | in_range(low7 | FOLD, b'a', b'f')) & HIGHS | w & HIGHS
}

/// Whether all eight bytes of `w` are hex digits, either case (see [`not_hex`]).
#[inline(always)]
fn hex_word(w: u64) -> bool {
    not_hex(w) == 0
}

/// The number eight hex digits (either case, the first in the low byte of `w`) write, or `None`
/// if one is not a hex digit: checked by [`hex_word`], then each digit's value is its low nibble,
/// plus 9 for a letter (bit 6 set: `A`-`F` and `a`-`f` are 0x41-0x46 and 0x61-0x66, digits
/// 0x30-0x39), and the eight nibbles are packed most significant first.
#[inline(always)]
fn nc_value(w: u64) -> Option<u32> {
    if !hex_word(w) {
        return None;
    }
    let nibbles = (w & (ONES * 0x0f)) + ((w >> 6) & ONES) * 9;
    // Digit pairs into bytes: the first of each pair is the high nibble.
    let bytes = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff_00ff_00ff_00ff;
    let bytes = (bytes | bytes >> 8) & 0x0000_ffff_0000_ffff;
    let bytes = (bytes | bytes >> 16) & 0xffff_ffff;
    // The first pair is the most significant byte of the number.
    Some((bytes as u32).swap_bytes())
}

/// The first and the last eight bytes of `s` as words, when they cover it (8 to 16 bytes, the
/// length of most realms, URIs and methods): two loads, where the word loop of the functions
/// below would count, step and test once more.
#[inline(always)]
fn two_words(s: &[u8]) -> Option<(u64, u64)> {
    match (s.first_chunk::<8>(), s.last_chunk::<8>()) {
        (Some(first), Some(last)) if s.len() <= 16 => {
            Some((u64::from_le_bytes(*first), u64::from_le_bytes(*last)))
        }
        _ => None,
    }
}

/// Whether `s` holds a backslash: eight bytes a word, the last word overlapping the one before,
/// so a value of eight bytes or more has no byte loop.
#[inline(always)]
fn has_backslash(s: &[u8]) -> bool {
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    if let Some((first, last)) = two_words(s) {
        return zero_bytes(first ^ BACKSLASHES) | zero_bytes(last ^ BACKSLASHES) != 0;
    }
    let Some(last) = s.last_chunk::<8>() else {
        // Four to seven bytes (a short username or realm): two overlapping half words.
        return match (s.first_chunk::<4>(), s.last_chunk::<4>()) {
            (Some(lo), Some(hi)) => {
                let w =
                    u64::from(u32::from_le_bytes(*lo)) | u64::from(u32::from_le_bytes(*hi)) << 32;
                zero_bytes(w ^ BACKSLASHES) != 0
            }
            _ => s.contains(&b'\\'),
        };
    };
    let (words, _) = s.as_chunks::<8>();
    let found = words.iter().fold(
        zero_bytes(u64::from_le_bytes(*last) ^ BACKSLASHES),
        |found, w| found | zero_bytes(u64::from_le_bytes(*w) ^ BACKSLASHES),
    );
    found != 0
}

/// `a == b`, a word at a time with the last word overlapping (two half words below eight
/// bytes), so the short values compared here (realms, names, URIs) cost no call to `bcmp`.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if let (Some((a0, a1)), Some((b0, b1))) = (two_words(a), two_words(b)) {
        return (a0 ^ b0) | (a1 ^ b1) == 0;
    }
    if let (Some(x), Some(y)) = (a.last_chunk::<8>(), b.last_chunk::<8>()) {
        let (xs, _) = a.as_chunks::<8>();
        let (ys, _) = b.as_chunks::<8>();
        let diff = xs.iter().zip(ys).fold(
            u64::from_le_bytes(*x) ^ u64::from_le_bytes(*y),
            |diff, (x, y)| diff | (u64::from_le_bytes(*x) ^ u64::from_le_bytes(*y)),
        );
        return diff == 0;
    }
    let half = |s: &[u8]| match (s.first_chunk::<4>(), s.last_chunk::<4>()) {
        (Some(lo), Some(hi)) => {
            u64::from(u32::from_le_bytes(*lo)) << 32 | u64::from(u32::from_le_bytes(*hi))
        }
        _ => s.iter().fold(0u64, |w, &b| w << 8 | u64::from(b)),
    };
    half(a) == half(b)
}

/// `a == b && !has_backslash(b)`, in one pass over the words of [`same_bytes`]: the difference
/// and the backslashes of `b` accumulated together (at equal bytes, `a`'s are the same). Most
/// values compared (realms) are 8 to 16 bytes, two words.
#[inline(always)]
fn same_plain_bytes(a: &[u8], b: &[u8]) -> bool {
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    if a.len() != b.len() {
        return false;
    }
    if let (Some((a0, a1)), Some((b0, b1))) = (two_words(a), two_words(b)) {
        let escapes = zero_bytes(b0 ^ BACKSLASHES) | zero_bytes(b1 ^ BACKSLASHES);
        return (a0 ^ b0) | (a1 ^ b1) | escapes == 0;
    }
    let (Some(x), Some(y)) = (a.last_chunk::<8>(), b.last_chunk::<8>()) else {
        return same_bytes(a, b) && !has_backslash(b);
    };
    let (xs, _) = a.as_chunks::<8>();
    let (ys, _) = b.as_chunks::<8>();
    let last = u64::from_le_bytes(*y);
    let (diff, escapes) = xs.iter().zip(ys).fold(
        (
            u64::from_le_bytes(*x) ^ last,
            zero_bytes(last ^ BACKSLASHES),
        ),
        |(diff, escapes), (x, y)| {
            let y = u64::from_le_bytes(*y);
            (
                diff | (u64::from_le_bytes(*x) ^ y),
                escapes | zero_bytes(y ^ BACKSLASHES),
            )
        },
    );
    diff | escapes == 0
}

/// The content of a quoted-string, quotes stripped, quoted-pairs still escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted<'a>(pub &'a [u8]);

impl<'a> Quoted<'a> {
    /// The raw content when it holds no quoted-pair (the usual case), else `None`.
    pub fn plain(&self) -> Option<&'a [u8]> {
        (!has_backslash(self.0)).then_some(self.0)
    }

    /// The content with quoted-pairs resolved, as chunks to feed a hash without copying.
    pub fn chunks(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.0;
        let mut first = true;
        core::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            // After a backslash the next byte is literal, even another backslash or quote.
            let skip = usize::from(!first && !rest.is_empty());
            first = false;
            let from = skip.min(rest.len());
            let end = rest
                .get(from..)?
                .iter()
                .position(|&b| b == b'\\')
                .map_or(rest.len(), |p| p + from);
            let (chunk, tail) = rest.split_at(end);
            rest = tail.get(1..).unwrap_or_default();
            Some(chunk)
        })
    }

    /// Compares the unescaped content with plain bytes.
    #[inline]
    pub fn eq_bytes(&self, other: &[u8]) -> bool {
        // A quoted-pair makes the content shorter than its escaped form: at equal lengths the
        // two are equal only if the bytes are and there is none.
        if self.0.len() == other.len() {
            return same_plain_bytes(self.0, other);
        }
        self.eq_shorter(other)
    }

    /// [`Quoted::eq_bytes`] when the lengths differ: equal only through quoted-pairs.
    #[cold]
    fn eq_shorter(&self, other: &[u8]) -> bool {
        has_backslash(self.0) && self.eq_unescaped(other)
    }

    /// [`Quoted::eq_bytes`] for content with quoted-pairs.
    #[cold]
    fn eq_unescaped(&self, other: &[u8]) -> bool {
        let mut rest = other;
        for chunk in self.chunks() {
            match rest.strip_prefix(chunk) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

/// `dig-resp` parameters of a Digest credentials value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DigestResponse<'a> {
    pub username: Option<Quoted<'a>>,
    pub realm: Option<Quoted<'a>>,
    pub nonce: Option<Quoted<'a>>,
    pub uri: Option<Quoted<'a>>,
    pub response: Option<&'a [u8]>,
    /// `MD5`, `MD5-sess`, `SHA-256`, ... as written (token).
    pub algorithm: Option<&'a [u8]>,
    pub cnonce: Option<Quoted<'a>>,
    pub opaque: Option<Quoted<'a>>,
    /// `auth` or `auth-int` (a token in responses; quoted by some clients).
    pub qop: Option<&'a [u8]>,
    /// nonce-count, 8 hex digits.
    pub nc: Option<u32>,
    /// RFC 7616 userhash=true.
    pub userhash: bool,
}

/// The `dig-resp` parameters this parser keeps; any other name is an extension and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Param {
    Username,
    Realm,
    Nonce,
    Uri,
    Response,
    Algorithm,
    Cnonce,
    Opaque,
    Qop,
    Nc,
    Userhash,
}

impl Param {
    /// The known parameter whose name starts at `s[at]`, in any letter case, and the name's
    /// length; `None` for any other name (an extension, or a known name followed by more token
    /// characters). The folded first byte picks at most three candidates, each checked with one
    /// masked compare of the first eight bytes (a ninth byte for `algorithm`), so the name is
    /// never scanned byte by byte.
    #[inline(always)]
    fn recognise(s: &[u8], at: usize) -> Option<(Param, usize)> {
        const NC: u64 = word(b"nc");
        const URI: u64 = word(b"uri");
        const QOP: u64 = word(b"qop");
        const REALM: u64 = word(b"realm");
        const NONCE: u64 = word(b"nonce");
        const CNONCE: u64 = word(b"cnonce");
        const OPAQUE: u64 = word(b"opaque");
        const USERNAME: u64 = word(b"username");
        const RESPONSE: u64 = word(b"response");
        const USERHASH: u64 = word(b"userhash");
        const ALGORITHM: u64 = word(b"algorithm");
        let w = folded_word(s, at);
        let is_name = |name: u64, len: usize| w & low(len) == name;
        let (param, len) = match w as u8 {
            b'n' if is_name(NC, 2) => (Param::Nc, 2),
            b'n' if is_name(NONCE, 5) => (Param::Nonce, 5),
            b'u' if is_name(URI, 3) => (Param::Uri, 3),
            b'u' if w == USERNAME => (Param::Username, 8),
            b'u' if w == USERHASH => (Param::Userhash, 8),
            b'r' if is_name(REALM, 5) => (Param::Realm, 5),
            b'r' if w == RESPONSE => (Param::Response, 8),
            b'c' if is_name(CNONCE, 6) => (Param::Cnonce, 6),
            b'o' if is_name(OPAQUE, 6) => (Param::Opaque, 6),
            b'q' if is_name(QOP, 3) => (Param::Qop, 3),
            b'a' if w == ALGORITHM && s.get(at + 8).is_some_and(|&b| b | 0x20 == b'm') => {
                (Param::Algorithm, 9)
            }
            _ => return None,
        };
        // The name ends there only if no token character follows (`nonce2` is an extension).
        if s.get(at + len).is_some_and(|&b| is_token(b)) {
            return None;
        }
        Some((param, len))
    }
}

impl<'a> DigestResponse<'a> {
    /// Records one known `dig-resp` parameter; `None` when its value is malformed.
    #[inline(always)]
    fn set(&mut self, param: Param, value: &'a [u8], quoted: bool) -> Option<()> {
        let q = Some(Quoted(value));
        match param {
            Param::Nc => {
                // nc-value = 8LHEX (either case accepted)
                match value.first_chunk::<8>() {
                    Some(digits) if !quoted && value.len() == 8 => {
                        self.nc = Some(nc_value(u64::from_le_bytes(*digits))?);
                    }
                    _ => return None,
                }
            }
            Param::Uri => self.uri = q,
            Param::Qop => self.qop = Some(value),
            Param::Realm => self.realm = q,
            Param::Nonce => self.nonce = q,
            Param::Cnonce => self.cnonce = q,
            Param::Opaque => self.opaque = q,
            Param::Username => self.username = q,
            Param::Response => {
                if !all_hex(value) {
                    return None;
                }
                self.response = Some(value);
            }
            Param::Userhash => self.userhash = value.eq_ignore_ascii_case(b"true"),
            Param::Algorithm => self.algorithm = Some(value),
        }
        Some(())
    }
}

/// The content of the quoted-string whose opening quote is `s[open]`, `true` (it was quoted),
/// and the index after its closing quote; `None` if it is not closed.
#[inline(always)]
fn quoted_string(s: &[u8], open: usize) -> Option<(&[u8], bool, usize)> {
    let close = closing_quote(s, open + 1)?;
    Some((s.get(open + 1..close)?, true, close + 1))
}

/// A credentials value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials<'a> {
    Digest(DigestResponse<'a>),
    /// Another scheme (RFC 4475 regaut01): the server answers with a fresh Digest challenge.
    Other {
        scheme: &'a [u8],
    },
}

impl<'a> Credentials<'a> {
    pub fn parse(value: &'a [u8]) -> Option<Credentials<'a>> {
        const DIGEST: u64 = word(b"digest");
        let s = chars::trim(value);
        // `Digest` and LWS, as every client writes it, in one compare; any other start is
        // scanned as a token.
        let scheme_len = 6;
        if folded_word(s, 0) & low(6) != DIGEST || !s.get(6).is_some_and(|&b| chars::is_lws(b)) {
            let scheme_len = skip(s, 0, is_token);
            if scheme_len == 0 {
                return None;
            }
            if scheme_len != 6 || folded_word(s, 0) & low(6) != DIGEST {
                return Some(Credentials::Other {
                    scheme: s.get(..scheme_len)?,
                });
            }
            // Digest LWS dig-resp *(COMMA dig-resp): the LWS is missing.
            return None;
        }
        // Each parameter's name, `=`, its value (a quoted-string or a token), then a comma or
        // the end; `i` only moves forward.
        let mut d = DigestResponse::default();
        let mut seen = 0u16;
        let mut i = scheme_len;
        loop {
            // One space before the name, as clients write it after `Digest` and each comma, is
            // taken without the LWS loop when the byte after it is no LWS: the loop stops there.
            let name = match (s.get(i), s.get(i + 1)) {
                (Some(b' '), Some(&b)) if !chars::is_lws(b) => i + 1,
                _ => skip(s, i, chars::is_lws),
            };
            let param = match Param::recognise(s, name) {
                Some((param, len)) => {
                    i = name + len;
                    Some(param)
                }
                None => {
                    i = skip(s, name, is_token);
                    if i == name {
                        return None;
                    }
                    None
                }
            };
            // `=` straight after the name, as clients write it, is checked before any LWS skip.
            if s.get(i) != Some(&b'=') {
                i = skip(s, i, chars::is_lws);
                if s.get(i) != Some(&b'=') {
                    return None;
                }
            }
            i += 1;
            // The value: a quote straight after the `=` is taken without looking for LWS (and
            // without reading the byte again).
            let (value, quoted, end) = match s.get(i) {
                Some(b'"') => quoted_string(s, i)?,
                _ => {
                    let start = skip(s, i, chars::is_lws);
                    if s.get(start) == Some(&b'"') {
                        quoted_string(s, start)?
                    } else {
                        let end = skip(s, start, is_token);
                        (s.get(start..end).filter(|t| !t.is_empty())?, false, end)
                    }
                }
            };
            i = end;
            if let Some(param) = param {
                // A parameter given twice is ambiguous: which one did the client sign, which one
                // did a proxy on the way read? RFC 9110 11.2 says of the same auth-param syntax
                // in challenges: "Each parameter name MUST only occur once per challenge."
                let bit = 1u16 << param as u16;
                if seen & bit != 0 {
                    return None;
                }
                seen |= bit;
                d.set(param, value, quoted)?;
            }
            // A comma straight after the value, as clients write it, before any LWS skip.
            match s.get(i) {
                Some(b',') => i += 1,
                None => break,
                Some(_) => {
                    i = skip(s, i, chars::is_lws);
                    match s.get(i) {
                        Some(b',') => i += 1,
                        None => break,
                        Some(_) => return None,
                    }
                }
            }
        }
        Some(Credentials::Digest(d))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{Strategy, any, prop, prop_oneof};

    use super::*;

    #[test]
    fn rfc7616_example() {
        let v = br#"Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
       qop=auth,
       response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let Some(Credentials::Digest(d)) = Credentials::parse(v) else {
            panic!()
        };
        assert!(d.username.unwrap().eq_bytes(b"Mufasa"));
        assert_eq!(d.algorithm, Some(&b"SHA-256"[..]));
        assert_eq!(d.nc, Some(1));
        assert_eq!(d.qop, Some(&b"auth"[..]));
        assert_eq!(d.response.unwrap().len(), 64);
    }

    #[test]
    fn other_schemes_and_errors() {
        assert_eq!(
            Credentials::parse(b"NoOneKnowsThisScheme opaque-data=here"),
            Some(Credentials::Other {
                scheme: b"NoOneKnowsThisScheme"
            })
        );
        assert!(Credentials::parse(b"Digest username=\"a").is_none());
        assert!(Credentials::parse(b"Digest nc=1").is_none());
        assert!(Credentials::parse(b"Digest response=\"xyz\"").is_none());
        assert!(Credentials::parse(b"Digest username").is_none());
        // Empty elements, a dangling comma, junk after a value, nothing at all.
        for bad in [
            &b"Digest realm=\"a\","[..],
            b"Digest realm=\"a\",,nonce=\"b\"",
            b"Digest ,realm=\"a\"",
            b"Digest realm=\"a\" x",
            b"Digest realm=a\"b\"",
            b"Digest realm=",
            b"Digest  ",
            b"Digest",
            // A known parameter twice, in any case, even with the same value.
            b"Digest realm=\"a\", realm=\"a\"",
            b"Digest nonce=\"a\", qop=auth, NONCE=\"b\"",
            b"Digest nc=00000001, Nc=00000002",
        ] {
            assert!(Credentials::parse(bad).is_none(), "{bad:?}");
        }
        // Unknown parameters may repeat: they are not read.
        assert!(Credentials::parse(b"Digest x=1, x=2, realm=\"a\"").is_some());
        // LWS around `=` and `,`, any letter case in names, unknown parameters ignored.
        let Some(Credentials::Digest(d)) =
            Credentials::parse(b"digest  REALM = \"a\" ,\r\n NC=0000000A , x-y=z,qop=auth")
        else {
            panic!()
        };
        assert_eq!(
            (d.realm, d.nc, d.qop),
            (Some(Quoted(b"a")), Some(10), Some(&b"auth"[..]))
        );
    }

    /// The 16-byte quoted-string scan finds what `chars::split_quoted` finds, with the quote,
    /// the escape and bytes the SWAR test could confuse (0x00, 0x80, 0xa2, 0xdc) at every offset,
    /// in values of up to three steps.
    #[test]
    fn quoted_scan_agrees_with_split_quoted() {
        for len in 0..48 {
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x80, 0xa2, 0xdc, 0x21, 0x5b] {
                    for after in [b'"', b'x', b'\r', b'\n', 0x80] {
                        let mut v = vec![b'"'];
                        v.extend(std::iter::repeat_n(b'a', len));
                        v[1 + at] = special;
                        if let Some(next) = v.get_mut(2 + at) {
                            *next = after;
                        }
                        v.extend_from_slice(b"\", x");
                        let ours = closing_quote(&v, 1).map(|end| (&v[1..end], &v[end + 1..]));
                        assert_eq!(ours, chars::split_quoted(&v), "{v:?}");
                    }
                }
            }
        }
    }

    /// Known names in any case, anywhere (also in the last bytes of the value, where fewer than
    /// eight remain), and near misses that are extensions.
    #[test]
    fn parameter_names() {
        let known: [(&str, Param); 11] = [
            ("username", Param::Username),
            ("realm", Param::Realm),
            ("nonce", Param::Nonce),
            ("uri", Param::Uri),
            ("response", Param::Response),
            ("algorithm", Param::Algorithm),
            ("cnonce", Param::Cnonce),
            ("opaque", Param::Opaque),
            ("qop", Param::Qop),
            ("nc", Param::Nc),
            ("userhash", Param::Userhash),
        ];
        for (name, param) in known {
            let upper = name.to_ascii_uppercase();
            let mixed: String = name
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            for n in [name, &upper, &mixed] {
                for tail in ["", "=", "=x", " = \"a long value\""] {
                    let s = format!("{n}{tail}");
                    assert_eq!(
                        Param::recognise(s.as_bytes(), 0),
                        Some((param, name.len())),
                        "{s}"
                    );
                    let s = format!("x, {s}");
                    assert_eq!(Param::recognise(s.as_bytes(), 3), Some((param, name.len())));
                }
                // Longer tokens, and the name cut short, are not the parameter.
                for longer in [format!("{n}x"), format!("{n}-1"), format!("{n}0=1")] {
                    assert_eq!(Param::recognise(longer.as_bytes(), 0), None, "{longer}");
                }
                let short = &n.as_bytes()[..n.len() - 1];
                assert_eq!(Param::recognise(short, 0), None, "{n}");
            }
        }
        // Bytes that fold onto letters without being letters, and near-miss spellings.
        for other in [
            "n\u{3}",
            "u\x12i",
            "nonc@",
            "userhas",
            "algorithn",
            "algorith",
            "x",
            "Nd",
            "qo",
            "realms",
            "cnonce_",
            "opaqu",
            "responsE2",
        ] {
            assert_eq!(Param::recognise(other.as_bytes(), 0), None, "{other:?}");
        }
    }

    /// The parser this one replaced, kept as the model: element by element with
    /// `chars::split_quoted`, names compared with `eq_ignore_ascii_case`, plus the refusal of a
    /// known name given twice.
    fn reference(value: &[u8]) -> Option<Credentials<'_>> {
        fn token_len(s: &[u8]) -> usize {
            s.iter()
                .take_while(|&&b| chars::is(b, chars::TOKEN))
                .count()
        }
        fn set<'a>(
            d: &mut DigestResponse<'a>,
            seen: &mut Vec<Vec<u8>>,
            name: &[u8],
            value: &'a [u8],
            quoted: bool,
        ) -> Option<()> {
            const KNOWN: [&str; 11] = [
                "username",
                "realm",
                "nonce",
                "uri",
                "response",
                "algorithm",
                "cnonce",
                "opaque",
                "qop",
                "nc",
                "userhash",
            ];
            let lower = name.to_ascii_lowercase();
            if KNOWN.iter().any(|k| k.as_bytes() == lower) {
                if seen.contains(&lower) {
                    return None;
                }
                seen.push(lower);
            }
            let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
            let q = Some(Quoted(value));
            if is(b"nc") {
                if quoted || value.len() != 8 {
                    return None;
                }
                let mut n = 0u32;
                for &b in value {
                    n = n << 4 | u32::from(chars::hex_value(b)?);
                }
                d.nc = Some(n);
            } else if is(b"uri") {
                d.uri = q;
            } else if is(b"qop") {
                d.qop = Some(value);
            } else if is(b"realm") {
                d.realm = q;
            } else if is(b"nonce") {
                d.nonce = q;
            } else if is(b"cnonce") {
                d.cnonce = q;
            } else if is(b"opaque") {
                d.opaque = q;
            } else if is(b"username") {
                d.username = q;
            } else if is(b"response") {
                if !value.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                d.response = Some(value);
            } else if is(b"userhash") {
                d.userhash = value.eq_ignore_ascii_case(b"true");
            } else if is(b"algorithm") {
                d.algorithm = Some(value);
            }
            Some(())
        }
        let s = chars::trim(value);
        let (scheme, rest) = s.split_at_checked(token_len(s))?;
        if scheme.is_empty() {
            return None;
        }
        if !scheme.eq_ignore_ascii_case(b"Digest") {
            return Some(Credentials::Other { scheme });
        }
        if !rest.first().is_some_and(|&b| chars::is_lws(b)) {
            return None;
        }
        let mut d = DigestResponse::default();
        let mut seen = Vec::new();
        let mut s = rest;
        loop {
            s = chars::trim_start(s);
            let (name, after) = s.split_at_checked(token_len(s))?;
            if name.is_empty() {
                return None;
            }
            let after = chars::trim_start(chars::trim_start(after).strip_prefix(b"=")?);
            let (value, quoted, after) = if after.first() == Some(&b'"') {
                let (inner, after) = chars::split_quoted(after)?;
                (inner, true, after)
            } else {
                let (value, after) = after.split_at_checked(token_len(after))?;
                if value.is_empty() {
                    return None;
                }
                (value, false, after)
            };
            set(&mut d, &mut seen, name, value, quoted)?;
            match chars::trim_start(after) {
                [] => break,
                [b',', tail @ ..] => s = tail,
                _ => return None,
            }
        }
        Some(Credentials::Digest(d))
    }

    /// Pieces of credentials values, right and wrong: every known name in several cases, near
    /// misses, values of each kind, separators, LWS, and bytes the 8-byte scans could confuse.
    const PIECES: &[&[u8]] = &[
        b"Digest ",
        b"digest\t",
        b"DIGEST",
        b"Basic ",
        b"username",
        b"USERNAME",
        b"UserName",
        b"userhash",
        b"realm",
        b"Realm",
        b"nonce",
        b"NONCE",
        b"nc",
        b"Nc",
        b"uri",
        b"URI",
        b"response",
        b"Response",
        b"algorithm",
        b"ALGORITHM",
        b"cnonce",
        b"opaque",
        b"qop",
        b"QoP",
        b"nonce2",
        b"usernam",
        b"algorith",
        b"x-y",
        b"=",
        b"=",
        b"=",
        b" = ",
        b",",
        b", ",
        b" ,",
        b",\r\n ",
        b" ",
        b"\t",
        b"\"",
        b"\"\"",
        b"\"a b\"",
        b"\"q\\\"x\"",
        b"\"\\\\\"",
        b"\\",
        b"00000001",
        b"0000000A",
        b"0000000g",
        b"1",
        b"auth",
        b"MD5",
        b"true",
        b"TRUE",
        b"6629fae49393a05397450978507c4ef1",
        b"\"6629FAE49393A053\"",
        b"\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\"",
        b"\x80",
        b"\x00",
        b"\x7f",
        b"\r\n",
        b"\n",
        b"\r",
        b"@",
        b"sip:example.com",
    ];

    /// A well-formed parameter: a name from `PIECES`-like spellings, LWS, a value of the kind
    /// that name expects, or another kind.
    fn param() -> impl Strategy<Value = Vec<u8>> {
        let name = prop::sample::select(
            &[
                "username",
                "Username",
                "REALM",
                "nonce",
                "uri",
                "response",
                "algorithm",
                "cnonce",
                "opaque",
                "qop",
                "nc",
                "NC",
                "userhash",
                "x-ext",
                "nonce-x",
                "Realmx",
            ][..],
        );
        let lws = prop::sample::select(&["", "", " ", "\t", "\r\n "][..]);
        let value = prop_oneof![
            "[0-9a-fA-F]{8}",
            "[0-9a-f]{32}",
            "[A-Za-z0-9.!%*_+`'~-]{1,12}",
            r#""([ !#-\[\]-~]|\\[\x00-\x7f]){0,20}""#,
            r#""[^"\\]{0,12}""#,
        ];
        (name, lws.clone(), lws, value)
            .prop_map(|(n, a, b, v)| format!("{n}{a}={b}{v}").into_bytes())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// Soup of pieces: mostly malformed, so the error paths are compared too.
        #[test]
        fn agrees_with_reference_on_soup(
            parts in prop::collection::vec(prop::sample::select(PIECES), 0..24),
        ) {
            let v = parts.concat();
            proptest::prop_assert_eq!(Credentials::parse(&v), reference(&v), "{:?}", String::from_utf8_lossy(&v));
        }

        /// Arbitrary bytes after the scheme.
        #[test]
        fn agrees_with_reference_on_bytes(tail in prop::collection::vec(any::<u8>(), 0..64)) {
            let v = [&b"Digest "[..], &tail].concat();
            proptest::prop_assert_eq!(Credentials::parse(&v), reference(&v), "{:?}", String::from_utf8_lossy(&v));
        }

        /// Structured lists, then one byte replaced, inserted or removed anywhere.
        #[test]
        fn agrees_with_reference_on_lists(
            params in prop::collection::vec(param(), 1..12),
            sep in prop::sample::select(&[",", ", ", " ,\t", ",\r\n "][..]),
            edit in proptest::option::of((any::<prop::sample::Index>(), any::<u8>(), 0..3u8)),
        ) {
            let mut v = b"Digest ".to_vec();
            v.extend(params.join(sep.as_bytes()));
            if let Some((at, byte, how)) = edit {
                let at = at.index(v.len());
                match how {
                    0 => v[at] = byte,
                    1 => v.insert(at, byte),
                    _ => { v.remove(at); }
                }
            }
            proptest::prop_assert_eq!(Credentials::parse(&v), reference(&v), "{:?}", String::from_utf8_lossy(&v));
        }
    }

    /// The word-at-a-time hex check against `is_ascii_hexdigit`: every byte value at every
    /// position of values up to three words long.
    #[test]
    fn all_hex_agrees_with_bytes() {
        for len in 0..24 {
            let digits: Vec<u8> = (0..len)
                .map(|i| b"0123456789abcdefABCDEF"[i % 22])
                .collect();
            assert!(all_hex(&digits), "{len}");
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut v = digits.clone();
                    v[at] = b;
                    assert_eq!(all_hex(&v), b.is_ascii_hexdigit(), "{len} {at} {b:#x}");
                }
            }
        }
    }

    /// The word-at-a-time nc against `u32::from_str_radix`: every byte value at every position,
    /// and numbers with digits of both cases.
    #[test]
    fn nc_value_agrees_with_from_str_radix() {
        let parse = |d: &[u8; 8]| {
            let text = std::str::from_utf8(d).ok()?;
            text.bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| u32::from_str_radix(text, 16).ok())?
        };
        for base in [
            *b"00000000",
            *b"0123abcd",
            *b"FEDCBA98",
            *b"ffffffff",
            *b"9aF0e1D2",
        ] {
            assert_eq!(nc_value(u64::from_le_bytes(base)), parse(&base));
            for at in 0..8 {
                for b in 0..=255u8 {
                    let mut d = base;
                    d[at] = b;
                    assert_eq!(nc_value(u64::from_le_bytes(d)), parse(&d), "{d:?}");
                }
            }
        }
    }

    /// `plain` sees a backslash wherever it is, in the 8-byte steps and in the tail.
    #[test]
    fn plain_sees_every_escape() {
        for len in 0..24 {
            let clean = vec![b'a'; len];
            assert_eq!(Quoted(&clean).plain(), Some(&clean[..]));
            for at in 0..len {
                let mut v = clean.clone();
                v[at] = b'\\';
                assert_eq!(Quoted(&v).plain(), None, "{len} {at}");
                assert!(!Quoted(&v).eq_bytes(&v), "{len} {at}");
            }
        }
    }

    /// The word-at-a-time compares against `==`: every length up to a few words, equal and with
    /// one byte changed anywhere, and lengths that differ by one.
    #[test]
    fn same_bytes_agrees_with_eq() {
        for len in 0..40 {
            let a: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
            assert!(same_bytes(&a, &a.clone()));
            for at in 0..len {
                for flip in [1u8, 0x20, 0x80] {
                    let mut b = a.clone();
                    b[at] ^= flip;
                    assert!(!same_bytes(&a, &b), "{len} {at} {flip}");
                }
            }
            let mut longer = a.clone();
            longer.push(0);
            assert!(!same_bytes(&a, &longer));
            assert!(!same_bytes(&longer, &a));
        }
    }

    /// The fused compare against its definition: every length up to a few words, equal, with a
    /// backslash anywhere, and with one byte changed anywhere.
    #[test]
    fn same_plain_bytes_agrees_with_its_definition() {
        for len in 0..40 {
            let a: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(same_plain_bytes(&a, &a.clone()), "{len}");
            for at in 0..len {
                let mut escaped = a.clone();
                escaped[at] = b'\\';
                assert!(!same_plain_bytes(&escaped, &escaped.clone()), "{len} {at}");
                for flip in [1u8, 0x20, 0x80] {
                    let mut b = a.clone();
                    b[at] ^= flip;
                    assert!(!same_plain_bytes(&a, &b), "{len} {at} {flip}");
                }
            }
            assert!(!same_plain_bytes(&a, &[a.as_slice(), b"x"].concat()));
        }
    }

    /// `eq_bytes` against unescaping first: plain and escaped content, equal lengths and not.
    #[test]
    fn eq_bytes_agrees_with_unescaping() {
        let unescape = |q: &[u8]| {
            let mut out = Vec::new();
            let mut it = q.iter();
            while let Some(&b) = it.next() {
                out.push(if b == b'\\' {
                    *it.next().unwrap_or(&b)
                } else {
                    b
                });
            }
            out
        };
        let contents: [&[u8]; 9] = [
            b"",
            b"example.com",
            b"example\\.com",
            b"example.co\\m",
            br"a\\b",
            br"a\b",
            b"\\e\\x\\a\\m\\p\\l\\e",
            b"a-long-realm-name.example.com",
            b"a-long-realm-name\\.example.com",
        ];
        let others: [&[u8]; 8] = [
            b"",
            b"example.com",
            b"example\\.com",
            b"example.co",
            br"a\b",
            br"a\\b",
            b"a-long-realm-name.example.com",
            b"example",
        ];
        for q in contents {
            for other in others {
                assert_eq!(
                    Quoted(q).eq_bytes(other),
                    unescape(q) == other,
                    "{:?} {:?}",
                    String::from_utf8_lossy(q),
                    String::from_utf8_lossy(other)
                );
            }
        }
    }

    #[test]
    fn quoted_pairs() {
        let q = Quoted(br#"a\"b\\c"#);
        assert!(q.plain().is_none());
        assert!(q.eq_bytes(br#"a"b\c"#));
        assert!(!q.eq_bytes(br#"a"b\\c"#));
        assert!(Quoted(b"plain").eq_bytes(b"plain"));
        assert!(Quoted(b"").eq_bytes(b""));
    }
}
