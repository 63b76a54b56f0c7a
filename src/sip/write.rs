//! Builds responses into a caller buffer, with no heap allocation.
//!
//! [`ResponseBuilder::start`] writes the status line and the headers copied from the request (RFC
//! 3261 8.2.6.2: every Via in order, From, To with a tag, Call-ID, CSeq), filling `received` and
//! `rport` in the top Via per RFC 3581. The caller then adds what the response needs and calls
//! [`ResponseBuilder::finish`]. A buffer too small is reported, never a partial message.
//!
//! Values received from the network are sanitised ([`Writer::put_value`]: folds become one space,
//! control characters are dropped). The copied headers skip that scan where the framer found the
//! values free of control bytes ([`Headers`] records which names have one); the bytes written are
//! the same either way.

use core::cell::Cell;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::addr::NameAddr;
use super::chars::flag_eq;
use super::chars::{self, CommaList};
use super::check::Essentials;
use super::header::{Header, HeaderName};
use super::message::{Headers, word};
use super::params::Params;
use super::uri::Host;
use super::via::{Rport, Via};

/// The buffer was too small for the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

impl core::fmt::Display for Overflow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("response does not fit the output buffer")
    }
}

impl std::error::Error for Overflow {}

/// An append-only writer over a byte buffer that remembers overflow instead of panicking.
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    overflow: bool,
}

impl<'b> Writer<'b> {
    pub fn new(buf: &'b mut [u8]) -> Self {
        Writer {
            buf,
            len: 0,
            overflow: false,
        }
    }

    #[inline]
    pub fn put(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) => {
                copy(dst, bytes);
                self.len += bytes.len();
            }
            None => self.overflow = true,
        }
    }

    /// Writes `n` in decimal, straight into the buffer (no staging copy: responses carry several
    /// numbers, and a variable-length copy is a library call each).
    #[inline]
    pub fn put_u64(&mut self, n: u64) {
        // Up to five digits (ports, expiry times, lengths): formatted in a word, no loop.
        if let (Ok(n @ 0..100_000), Some(dst)) = (
            u32::try_from(n),
            self.buf
                .get_mut(self.len..)
                .and_then(|d| d.first_chunk_mut::<8>()),
        ) {
            let (text, digits) = short_decimal(n);
            *dst = text.to_le_bytes();
            self.len += digits;
            return;
        }
        self.put_u64_long(n);
    }

    /// `;received=` and an IPv4 address, then `;rport=` and `port` when there is one (the end of
    /// a response's top Via), written into a 48-byte window (see [`received_rport`]); `false`,
    /// with nothing written, when the buffer has no such window left.
    fn put_received_rport(&mut self, ip: Ipv4Addr, port: Option<u16>) -> bool {
        let Some(dst) = self
            .buf
            .get_mut(self.len..)
            .and_then(|d| d.first_chunk_mut::<48>())
        else {
            return false;
        };
        self.len += received_rport(dst, Some(ip), port);
        true
    }

    /// [`Writer::put_u64`] for six digits or more, or near the buffer's end.
    #[cold]
    #[inline(never)]
    fn put_u64_long(&mut self, n: u64) {
        let mut digits = 1;
        let mut rest = n / 10;
        while rest > 0 {
            digits += 1;
            rest /= 10;
        }
        let Some(dst) = self.buf.get_mut(self.len..self.len + digits) else {
            self.overflow = true;
            return;
        };
        let mut n = n;
        for d in dst.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len += digits;
    }

    /// Writes a header value received from the network: folded line breaks become one space and
    /// control characters are dropped, so a defect is never forwarded.
    #[inline]
    pub fn put_value(&mut self, v: &[u8]) {
        // Values are almost always clean: copy the clean prefix in one piece.
        let clean = clean_prefix(v);
        self.put(v.get(..clean).unwrap_or_default());
        if let Some(rest) = v.get(clean..).filter(|r| !r.is_empty()) {
            self.put_value_careful(rest);
        }
    }

    /// [`Writer::put_value`] from the first control byte on.
    #[cold]
    #[inline(never)]
    fn put_value_careful(&mut self, v: &[u8]) {
        let mut start = 0;
        let mut i = 0;
        while let Some(&b) = v.get(i) {
            if b < b' ' && b != b'\t' || b == 0x7f {
                self.put(v.get(start..i).unwrap_or_default());
                // Collapse a CRLF + WSP fold into one space.
                if b == b'\r' || b == b'\n' {
                    while matches!(v.get(i + 1), Some(b'\r' | b'\n' | b' ' | b'\t')) {
                        i += 1;
                    }
                    self.put(b" ");
                }
                start = i + 1;
            }
            i += 1;
        }
        self.put(v.get(start..).unwrap_or_default());
    }

    /// A value echoed from a request: as it is when the framer found it `clean` (no control
    /// byte, see [`Headers::is_clean`]), else through [`Writer::put_value`]; the same bytes
    /// either way.
    #[inline]
    fn put_echo(&mut self, v: &[u8], clean: bool) {
        if clean {
            self.put(v);
        } else {
            self.put_value(v);
        }
    }

    /// Writes `a`, `b` and `c` in one piece (one bounds check): a header line's name, value and
    /// line end. Nothing is written when they do not all fit.
    #[inline(always)]
    fn put3(&mut self, a: &[u8], b: &[u8], c: &[u8]) {
        let n = a.len() + b.len() + c.len();
        let Some(dst) = self.buf.get_mut(self.len..self.len + n) else {
            self.overflow = true;
            return;
        };
        let (da, rest) = dst.split_at_mut(a.len());
        let (db, dc) = rest.split_at_mut(b.len());
        copy(da, a);
        copy(db, b);
        copy(dc, c);
        self.len += n;
    }

    /// A challenge line whose quoted values need no escape (see [`ResponseBuilder::challenge`]),
    /// with one check of the room for all of it. Nothing is written when it does not fit.
    #[inline(always)]
    fn put_challenge(&mut self, name: &[u8], c: &Challenge<'_>) {
        const REALM: &[u8] = b": Digest realm=\"";
        const NONCE: &[u8] = b"\", nonce=\"";
        const OPAQUE: &[u8] = b"\", opaque=\"";
        const ALGORITHM: &[u8] = b"\", algorithm=";
        const QOP: &[u8] = b", qop=\"";
        const STALE: &[u8] = b", stale=true";
        let (algorithm, qop) = (c.algorithm.as_bytes(), c.qop.as_bytes());
        let n = name.len()
            + c.realm.len()
            + c.nonce.len()
            + c.opaque.len()
            + algorithm.len()
            + (REALM.len() + NONCE.len() + OPAQUE.len() + ALGORITHM.len() + 2)
            + if qop.is_empty() {
                0
            } else {
                QOP.len() + qop.len() + 1
            }
            + if c.stale { STALE.len() } else { 0 };
        let Some(dst) = self.buf.get_mut(self.len..self.len + n) else {
            self.overflow = true;
            return;
        };
        let mut r = Room {
            rest: dst,
            short: false,
        };
        r.put(name);
        r.put(REALM);
        r.put(c.realm);
        r.put(NONCE);
        r.put(c.nonce);
        r.put(OPAQUE);
        r.put(c.opaque);
        r.put(ALGORITHM);
        r.put(algorithm);
        if !qop.is_empty() {
            r.put(QOP);
            r.put(qop);
            r.put(b"\"");
        }
        if c.stale {
            r.put(STALE);
        }
        r.put(b"\r\n");
        self.len += n;
    }

    /// `prefix`, a value echoed from a request (see [`Writer::put_echo`]) and CRLF.
    #[inline]
    fn line(&mut self, prefix: &[u8], value: &[u8], clean: bool) {
        if clean {
            self.put3(prefix, value, b"\r\n");
        } else {
            self.put(prefix);
            self.put_value(value);
            self.put(b"\r\n");
        }
    }

    /// `SIP/2.0 code reason CRLF`.
    fn status_line(&mut self, code: u16, reason: &str) {
        if let Some(head) = status_head(code) {
            self.put3(&head, reason.as_bytes(), b"\r\n");
        } else {
            self.put(b"SIP/2.0 ");
            self.put_u64(u64::from(code));
            self.put(b" ");
            self.put(reason.as_bytes());
            self.put(b"\r\n");
        }
    }

    /// [`ResponseBuilder::start_checked`]'s lines for the usual request ([`Usual`]), in one
    /// piece; `false`, with nothing kept, for another request or a buffer that may not hold it.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn start_usual(
        &mut self,
        code: u16,
        reason: &str,
        h: &Headers<'_, '_>,
        via: &Via<'_>,
        tagged: bool,
        source: SocketAddr,
        to_tag: Option<&[u8]>,
    ) -> bool {
        match Usual::find(h, via, tagged, source, to_tag) {
            Some(usual) => self.put_usual(code, reason, &usual),
            None => false,
        }
    }

    /// The response's start as one piece when the request is the usual one ([`Usual`]): the
    /// room for all of it is checked once, then every piece goes in after the last. `false`,
    /// with nothing kept, when the buffer may not hold it (the general path then writes what
    /// fits and reports the overflow).
    #[inline(always)]
    fn put_usual(&mut self, code: u16, reason: &str, u: &Usual<'_>) -> bool {
        let Some(head) = status_head(code) else {
            return false;
        };
        let reason = reason.as_bytes();
        let tag = u.tag.unwrap_or_default();
        // The fixed text: the line ends, the names, `;tag=` and the received/rport window.
        const FIXED: usize = 2 + 7 + 48 + 8 + 6 + 5 + 11 + 8 + 2;
        let need = head.len()
            + reason.len()
            + u.via.len()
            + u.from.len()
            + u.to.len()
            + tag.len()
            + u.call_id.len()
            + u.cseq.len()
            + FIXED;
        let Some(dst) = self.buf.get_mut(self.len..).filter(|d| d.len() >= need) else {
            return false;
        };
        let room = dst.len();
        let mut r = Room {
            rest: dst,
            short: false,
        };
        r.put(&head);
        r.put(reason);
        r.put(b"\r\nVia: ");
        r.put(u.via);
        r.put_with::<48>(|window| received_rport(window, u.received, u.rport));
        r.put(b"\r\nFrom: ");
        r.put(u.from);
        r.put(b"\r\nTo: ");
        r.put(u.to);
        if let Some(tag) = u.tag {
            r.put(b";tag=");
            r.put(tag);
        }
        r.put(b"\r\nCall-ID: ");
        r.put(u.call_id);
        r.put(b"\r\nCSeq: ");
        r.put(u.cseq);
        r.put(b"\r\n");
        // Every piece fitted: `need` counts them all.
        if r.short {
            return false;
        }
        self.len += room - r.rest.len();
        true
    }

    /// Writes bytes as the content of a quoted-string, escaping `"` and `\`.
    pub fn put_quoted(&mut self, v: &[u8]) {
        self.put(b"\"");
        self.put_escaped(v);
        self.put(b"\"");
    }

    /// [`Writer::put_quoted`] without the quotes.
    #[inline(always)]
    fn put_escaped(&mut self, v: &[u8]) {
        // Nearly always nothing to escape or drop: copy that prefix in one piece.
        let plain = quoted_prefix(v);
        self.put(v.get(..plain).unwrap_or_default());
        if let Some(rest) = v.get(plain..).filter(|r| !r.is_empty()) {
            self.put_escaped_careful(rest);
        }
    }

    /// [`Writer::put_escaped`] from the first byte to escape or drop on.
    #[cold]
    #[inline(never)]
    fn put_escaped_careful(&mut self, v: &[u8]) {
        let mut rest = v;
        while let Some(i) = memchr::memchr2(b'"', b'\\', rest) {
            let (head, tail) = rest.split_at(i);
            self.put_value(head);
            if let Some((&special, after)) = tail.split_first() {
                self.put(&[b'\\', special]);
                rest = after;
            } else {
                rest = &[];
            }
        }
        self.put_value(rest);
    }

    pub fn put_ip(&mut self, ip: IpAddr) {
        if let IpAddr::V4(v4) = ip {
            // At most 15 bytes: written into a 16-byte window when there is one, four bytes
            // per octet (its digits and a dot), each next octet over the bytes past the last.
            if let Some(dst) = self
                .buf
                .get_mut(self.len..)
                .and_then(|d| d.first_chunk_mut::<16>())
            {
                let mut n = 0;
                for octet in v4.octets() {
                    let (text, len) = OCTETS[usize::from(octet)];
                    if let Some(d) = dst.get_mut(n..n + 4) {
                        d.copy_from_slice(&text.to_le_bytes());
                    }
                    n += usize::from(len);
                }
                // The last octet's dot is not part of the address.
                self.len += n - 1;
                return;
            }
            let [a, b, c, d] = v4.octets();
            self.put_u64(u64::from(a));
            for octet in [b, c, d] {
                self.put(b".");
                self.put_u64(u64::from(octet));
            }
            return;
        }
        // 39 bytes hold the longest IPv6 text form; 45 with an embedded IPv4.
        let mut tmp = [0u8; 48];
        let mut cursor = std::io::Cursor::new(&mut tmp[..]);
        if std::io::Write::write_fmt(&mut cursor, format_args!("{ip}")).is_ok() {
            let n = cursor.position() as usize;
            self.put(tmp.get(..n).unwrap_or_default());
        } else {
            self.overflow = true;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Where the writer stands, for [`Writer::rewind`].
    #[cfg(test)]
    fn mark(&self) -> (usize, bool) {
        (self.len, self.overflow)
    }

    /// Takes back everything written since `mark`, an overflow there included.
    #[cfg(test)]
    fn rewind(&mut self, (len, overflow): (usize, bool)) {
        if len <= self.len {
            self.len = len;
            self.overflow = overflow;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Result<usize, Overflow> {
        if self.overflow {
            Err(Overflow)
        } else {
            Ok(self.len)
        }
    }
}

/// The length of the longest prefix of `v` without a byte below 0x20 or DEL, eight bytes at a
/// time. (Tab counts as a stop too; the careful loop after the prefix keeps it.)
#[inline]
fn clean_prefix(v: &[u8]) -> usize {
    first_flagged(v, |w| !keep_clean(w) & HIGH)
}

/// The length of the longest prefix of `v` that [`Writer::put_escaped`] copies as it is: no
/// control byte, no `"` and no `\`.
#[inline]
fn quoted_prefix(v: &[u8]) -> usize {
    first_flagged(v, |w| !keep_quoted(w) & HIGH)
}

/// Whether [`Writer::put_value`] copies all of `v` as it is: [`clean_prefix`] without the
/// position, every word looked at and one answer at the end.
#[inline]
fn is_clean(v: &[u8]) -> bool {
    all_kept(v, keep_clean)
}

/// Whether [`Writer::put_escaped`] copies all of `v` as it is (see [`is_clean`]).
#[inline]
fn is_plain_quoted(v: &[u8]) -> bool {
    all_kept(v, keep_quoted)
}

/// The high bit of each byte of a little-endian word set where the byte is neither below 0x20
/// nor DEL. Per byte, with no carry between bytes: the high bit of `low + 0x60` is clear below
/// 0x20, that of `(low ^ 0x7f) + 0x7f` only at 0x7f; bytes of 0x80 or more have theirs.
#[inline(always)]
fn keep_clean(w: u64) -> u64 {
    let low = w & LOW7;
    (low + ONES * 0x60) & ((low ^ LOW7) + LOW7) | w
}

/// As [`keep_clean`], with `"` and `\` not kept either: `(low ^ c) + 0x7f` has its high bit
/// clear only where the byte is `c`.
#[inline(always)]
fn keep_quoted(w: u64) -> u64 {
    let low = w & LOW7;
    (low + ONES * 0x60)
        & ((low ^ LOW7) + LOW7)
        & ((low ^ (ONES * u64::from(b'"'))) + LOW7)
        & ((low ^ (ONES * u64::from(b'\\'))) + LOW7)
        | w
}

/// Whether `keep` keeps every byte of `v`: sixteen bytes a step, as two words (which the
/// compiler may turn into one vector), then the sixteen, eight or four-and-four bytes that end
/// `v`, overlapping bytes already seen; one to three bytes padded with a kept one.
#[inline(always)]
fn all_kept(v: &[u8], keep: impl Fn(u64) -> u64) -> bool {
    let mut kept = [HIGH, HIGH];
    keep_each(v, &keep, &mut kept);
    kept[0] & kept[1] & HIGH == HIGH
}

/// Ands `keep` of every byte of `v` into `kept` (see [`all_kept`]).
#[inline(always)]
fn keep_each(v: &[u8], keep: &impl Fn(u64) -> u64, kept: &mut [u64; 2]) {
    let mut chunks = v.chunks_exact(16);
    for chunk in chunks.by_ref() {
        let (lo, hi) = chunk.split_at(8);
        kept[0] &= keep(word(lo));
        kept[1] &= keep(word(hi));
    }
    if chunks.remainder().is_empty() {
        return;
    }
    let (lo, hi) = if let Some(last) = v.last_chunk::<16>() {
        let (lo, hi) = last.split_at(8);
        (word(lo), word(hi))
    } else if let (Some(lo), Some(hi)) = (v.first_chunk::<8>(), v.last_chunk::<8>()) {
        (u64::from_le_bytes(*lo), u64::from_le_bytes(*hi))
    } else if let (Some(lo), Some(hi)) = (v.first_chunk::<4>(), v.last_chunk::<4>()) {
        let w = u64::from(u32::from_le_bytes(*lo)) | u64::from(u32::from_le_bytes(*hi)) << 32;
        (w, w)
    } else {
        let mut padded = [b'a'; 8];
        if let Some(dst) = padded.get_mut(..v.len()) {
            copy(dst, v);
        }
        let w = u64::from_le_bytes(padded);
        (w, w)
    };
    kept[0] &= keep(lo);
    kept[1] &= keep(hi);
}

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The offset of the first byte of `v` that `flags` flags, or `v.len()`. `flags` marks bytes of
/// a little-endian word with their high bit, the lowest mark exact (spurious marks only above a
/// true one). Sixteen bytes a step (two words, which the compiler may turn into one vector),
/// then the tail as the sixteen, eight or four-and-four bytes that end `v`, overlapping bytes
/// already seen: those hold no true mark, so the lowest mark is still the first flagged byte.
#[inline(always)]
fn first_flagged(v: &[u8], flags: impl Fn(u64) -> u64) -> usize {
    // The first mark of two words: 0..16, or 16 for none.
    let first = |lo: u64, hi: u64| {
        if lo != 0 {
            (lo.trailing_zeros() / 8) as usize
        } else {
            8 + (hi.trailing_zeros() / 8) as usize
        }
    };
    let mut chunks = v.chunks_exact(16);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let (lo, hi) = chunk.split_at(8);
        let (lo, hi) = (flags(word(lo)), flags(word(hi)));
        if lo | hi != 0 {
            return at + first(lo, hi);
        }
        at += 16;
    }
    if chunks.remainder().is_empty() {
        return at;
    }
    let (lo, hi, hi_at) = if let Some(last) = v.last_chunk::<16>() {
        let (lo, hi) = last.split_at(8);
        (word(lo), word(hi), 8)
    } else if let (Some(lo), Some(hi)) = (v.first_chunk::<8>(), v.last_chunk::<8>()) {
        // The first eight bytes, then the last eight.
        (
            u64::from_le_bytes(*lo),
            u64::from_le_bytes(*hi),
            v.len() - 8,
        )
    } else if let (Some(lo), Some(hi)) = (v.first_chunk::<4>(), v.last_chunk::<4>()) {
        // The first four bytes, then the last four, as one word.
        let w = u64::from(u32::from_le_bytes(*lo)) | u64::from(u32::from_le_bytes(*hi)) << 32;
        let byte = (flags(w).trailing_zeros() / 8) as usize;
        return match byte {
            0..4 => byte,
            4..8 => v.len() - 4 + (byte - 4),
            _ => v.len(),
        };
    } else {
        // One to three bytes: each on its own, in the low byte of a word (whose mark is exact).
        return v
            .iter()
            .position(|&b| flags(u64::from(b)) & 0x80 != 0)
            .unwrap_or(v.len());
    };
    let (lo, hi) = (flags(lo), flags(hi));
    if lo | hi == 0 {
        return v.len();
    }
    if v.len() >= 16 {
        v.len() - 16 + first(lo, hi)
    } else if lo != 0 {
        (lo.trailing_zeros() / 8) as usize
    } else {
        hi_at + (hi.trailing_zeros() / 8) as usize
    }
}

/// Whether `v` holds a comma, a word at a time.
#[inline]
fn has_comma(v: &[u8]) -> bool {
    first_flagged(v, |w| flag_eq(w, b',')) < v.len()
}

/// The two decimal digits of 0 to 99 as a little-endian pair, the tens first.
static PAIRS: [u16; 100] = {
    let mut t = [0; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = (0x30 + i as u16 / 10) | (0x30 + i as u16 % 10) << 8;
        i += 1;
    }
    t
};

/// `n` (below 100,000) in decimal as a little-endian word, the most significant digit in the
/// lowest byte, and its number of digits; the bytes past the number are zero.
#[inline(always)]
fn short_decimal(n: u32) -> (u64, usize) {
    let digits = 1
        + usize::from(n >= 10)
        + usize::from(n >= 100)
        + usize::from(n >= 1000)
        + usize::from(n >= 10_000);
    // Five digits, then the leading zeros shifted out.
    let (top, rest) = (n / 10_000, n % 10_000);
    let pair = |p: u32| u64::from(PAIRS.get(p as usize).copied().unwrap_or_default());
    let text = u64::from(b'0' + top as u8) | pair(rest / 100) << 8 | pair(rest % 100) << 24;
    (text >> (8 * (5 - digits)), digits)
}

/// Each octet's decimal digits followed by a dot, as a little-endian word, and their count.
static OCTETS: [(u32, u8); 256] = {
    let mut t = [(0, 0); 256];
    let mut i = 0;
    while i < 256 {
        let (h, d, u) = (i as u32 / 100, i as u32 / 10 % 10, i as u32 % 10);
        t[i] = if i >= 100 {
            (
                (0x30 + h) | ((0x30 + d) << 8) | ((0x30 + u) << 16) | (0x2e << 24),
                4,
            )
        } else if i >= 10 {
            ((0x30 + d) | ((0x30 + u) << 8) | (0x2e << 16), 3)
        } else {
            ((0x30 + u) | (0x2e << 8), 2)
        };
        i += 1;
    }
    t
};

/// `SIP/2.0 code ` for a three-digit code, as one fixed-size piece.
#[inline(always)]
fn status_head(code: u16) -> Option<[u8; 12]> {
    if !(100..1000).contains(&code) {
        return None;
    }
    let [tens, units] = PAIRS
        .get(usize::from(code % 100))
        .copied()
        .unwrap_or_default()
        .to_le_bytes();
    let hundreds = b'0' + (code / 100) as u8;
    Some([
        b'S', b'I', b'P', b'/', b'2', b'.', b'0', b' ', hundreds, tens, units, b' ',
    ])
}

/// Writes `;received=` and `ip` when there is one, then `;rport=` and `port` when there is one,
/// at the start of `dst`, and returns their length (at most 37 bytes): the address four bytes
/// an octet (its digits and a dot), each next octet over the bytes past the last, and the port
/// as [`Writer::put_u64`] writes it; bytes past the length are left as scratch.
#[inline(always)]
fn received_rport(dst: &mut [u8; 48], ip: Option<Ipv4Addr>, port: Option<u16>) -> usize {
    let mut n = 0;
    if let Some(ip) = ip {
        let (head, rest) = dst.split_at_mut(10);
        head.copy_from_slice(b";received=");
        for octet in ip.octets() {
            let (text, len) = OCTETS[usize::from(octet)];
            if let Some(d) = rest.get_mut(n..n + 4) {
                d.copy_from_slice(&text.to_le_bytes());
            }
            n += usize::from(len);
        }
        // The last octet's dot is not part of the address.
        n += 10 - 1;
    }
    if let Some(port) = port {
        let (text, digits) = short_decimal(u32::from(port));
        if let Some(d) = dst.get_mut(n..n + 16) {
            d[..8].copy_from_slice(b";rport=_");
            d[7..15].copy_from_slice(&text.to_le_bytes());
        }
        n += 7 + digits;
    }
    n
}

/// Room checked in advance for a run of pieces: each goes in after the last, with no overflow
/// to remember. A piece that does not fit (which the caller's reckoning of the room rules out)
/// takes all the room left, so that nothing more fits and the caller sees `short`.
struct Room<'d> {
    rest: &'d mut [u8],
    short: bool,
}

impl Room<'_> {
    #[inline(always)]
    fn put(&mut self, s: &[u8]) {
        match core::mem::take(&mut self.rest).split_at_mut_checked(s.len()) {
            Some((d, rest)) => {
                copy(d, s);
                self.rest = rest;
            }
            None => self.short = true,
        }
    }

    /// Writes up to `N` bytes with `fill`, which returns how many it wrote; the bytes past those
    /// are scratch, written over by the next piece.
    #[inline(always)]
    fn put_with<const N: usize>(&mut self, fill: impl FnOnce(&mut [u8; N]) -> usize) {
        let rest = core::mem::take(&mut self.rest);
        let Some(window) = rest.first_chunk_mut::<N>() else {
            self.short = true;
            return;
        };
        let n = fill(window).min(N);
        self.rest = rest.get_mut(n..).unwrap_or_default();
    }
}

/// `dst.copy_from_slice(src)` (the two are as long), inline for the pieces a response is made
/// of: a library call costs more than copying up to 128 bytes as two overlapping blocks of 8 to
/// 64 bytes. The block size is found by halving the range, so that the usual lengths (8 to 32
/// bytes) take two compares, not five.
#[inline(always)]
fn copy(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if dst.len() != n {
        dst.copy_from_slice(src);
    } else if n <= 16 {
        if n >= 8 {
            copy_ends::<8>(dst, src);
        } else if n >= 4 {
            copy_ends::<4>(dst, src);
        } else if let (Some(d), Some(&s)) = (dst.first_mut(), src.first()) {
            // One to three bytes: the first, the middle and the last.
            *d = s;
            if let (Some(d), Some(&s)) = (dst.get_mut(n / 2), src.get(n / 2)) {
                *d = s;
            }
            if let (Some(d), Some(&s)) = (dst.last_mut(), src.last()) {
                *d = s;
            }
        }
    } else if n <= 32 {
        copy_ends::<16>(dst, src);
    } else if n <= 64 {
        copy_ends::<32>(dst, src);
    } else if n <= 128 {
        copy_ends::<64>(dst, src);
    } else {
        dst.copy_from_slice(src);
    }
}

/// The first and the last `N` bytes of `src` into `dst` (as long, `N` to `2N` bytes).
#[inline(always)]
fn copy_ends<const N: usize>(dst: &mut [u8], src: &[u8]) {
    if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
        *d = *s;
    }
    if let (Some(d), Some(s)) = (dst.last_chunk_mut::<N>(), src.last_chunk::<N>()) {
        *d = *s;
    }
}

/// A Digest challenge for WWW-Authenticate or Proxy-Authenticate (RFC 7616 3.3).
#[derive(Clone, Copy, Debug)]
pub struct Challenge<'a> {
    pub realm: &'a [u8],
    pub nonce: &'a [u8],
    pub opaque: &'a [u8],
    /// `MD5`, `SHA-256`, `SHA-512-256`.
    pub algorithm: &'a str,
    /// The qop-options offered, such as `auth,auth-int`; empty for none.
    pub qop: &'a str,
    pub stale: bool,
}

/// `name: Digest realm="..", nonce="`: a challenge up to its nonce.
fn challenge_head(w: &mut Writer<'_>, name: &str, realm: &[u8]) {
    w.put(name.as_bytes());
    w.put(b": Digest realm=");
    w.put_quoted(realm);
    w.put(b", nonce=");
}

/// A challenge after its nonce: opaque, algorithm and qop (not `stale`, not the line end).
fn challenge_tail(w: &mut Writer<'_>, c: &Challenge<'_>) {
    w.put(b", opaque=");
    w.put_quoted(c.opaque);
    w.put(b", algorithm=");
    w.put(c.algorithm.as_bytes());
    if !c.qop.is_empty() {
        w.put(b", qop=");
        w.put_quoted(c.qop.as_bytes());
    }
}

/// The end of every body-less response a server sends: `Server` (RFC 3261 20.35) with its
/// product, `Content-Length: 0` and the blank line, rendered once so that
/// [`ResponseBuilder::finish_with`] writes them as one copy, with no check of the product's bytes
/// per response.
#[derive(Clone, Debug)]
pub struct Trailer {
    bytes: Box<[u8]>,
}

impl Trailer {
    /// The bytes [`ResponseBuilder::server`] and [`ResponseBuilder::finish`] write for `product`.
    pub fn new(product: &str) -> Self {
        // A product with bytes to drop or replace may need more room than its length.
        let mut room = 64 + 2 * product.len();
        loop {
            let mut buf = vec![0u8; room];
            let mut r = ResponseBuilder {
                w: Writer::new(&mut buf),
            };
            r.server(product);
            if let Ok(n) = r.finish() {
                buf.truncate(n);
                return Trailer {
                    bytes: buf.into_boxed_slice(),
                };
            }
            room *= 2;
        }
    }
}

/// The Digest challenges one realm sends, rendered once: everything but the nonce (and
/// `stale`) is the same in every 401, so writing one is mostly copying (see
/// [`ResponseBuilder::challenges`]).
#[derive(Clone, Debug, Default)]
pub struct ChallengeLines {
    lines: Vec<ChallengeLine>,
}

/// One challenge: the text before the nonce's content and the text after it to the line's end,
/// without and with `stale=true`.
#[derive(Clone, Debug, Default)]
struct ChallengeLine {
    head: Box<[u8]>,
    tail: Box<[u8]>,
    stale_tail: Box<[u8]>,
}

impl ChallengeLines {
    /// One challenge per algorithm, in order, for header `name` (`WWW-Authenticate` or
    /// `Proxy-Authenticate`); `realm`, `opaque` and `qop` as in [`Challenge`].
    pub fn new(name: &str, realm: &[u8], opaque: &[u8], algorithms: &[&str], qop: &str) -> Self {
        let render = |f: &dyn Fn(&mut Writer<'_>)| -> Box<[u8]> {
            // Room for the fixed words, the header name and the longest algorithm name, and every
            // escaped part escaped in full.
            let longest = algorithms.iter().map(|a| a.len()).max().unwrap_or(0);
            let room = 256 + name.len() + longest + 2 * (realm.len() + opaque.len() + qop.len());
            let mut buf = vec![0u8; room];
            let mut w = Writer::new(&mut buf);
            f(&mut w);
            let n = w.len;
            buf.truncate(n);
            buf.into_boxed_slice()
        };
        let lines = algorithms
            .iter()
            .map(|&algorithm| {
                let c = Challenge {
                    realm,
                    nonce: b"",
                    opaque,
                    algorithm,
                    qop,
                    stale: false,
                };
                // The nonce's opening quote ends the head; its closing quote starts the tail.
                let head = render(&|w| {
                    challenge_head(w, name, realm);
                    w.put(b"\"");
                });
                let tail = |end: &[u8]| {
                    render(&|w| {
                        w.put(b"\"");
                        challenge_tail(w, &c);
                        w.put(end);
                    })
                };
                ChallengeLine {
                    head,
                    tail: tail(b"\r\n"),
                    stale_tail: tail(b", stale=true\r\n"),
                }
            })
            .collect();
        ChallengeLines { lines }
    }
}

/// Writes a response to a request into a buffer.
pub struct ResponseBuilder<'b> {
    w: Writer<'b>,
}

impl<'b> ResponseBuilder<'b> {
    /// Writes the status line and the headers copied from the request's `request` headers.
    ///
    /// `source` is where the request came from: it fills `received` and `rport` in the top Via.
    /// `to_tag` is added to To when the request's To has no tag (RFC 3261 8.2.6.2).
    pub fn start(
        buf: &'b mut [u8],
        code: u16,
        reason: &str,
        request: &Headers<'_, '_>,
        source: SocketAddr,
        to_tag: Option<&[u8]>,
    ) -> Self {
        Self::start_general(
            Writer::new(buf),
            code,
            reason,
            request,
            None,
            source,
            to_tag,
        )
    }

    /// [`ResponseBuilder::start`] for a request that passed
    /// [`check_request`](super::check_request): reuses its parsed top Via and To instead of
    /// parsing them again.
    pub fn start_checked(
        buf: &'b mut [u8],
        code: u16,
        reason: &str,
        request: &Headers<'_, '_>,
        checked: &Essentials<'_>,
        source: SocketAddr,
        to_tag: Option<&[u8]>,
    ) -> Self {
        // A To without parameters (the usual REGISTER) has no tag: no search for one.
        let tagged = !checked.to.params.is_empty() && checked.to.tag().is_some();
        let mut w = Writer::new(buf);
        if w.start_usual(code, reason, request, &checked.via, tagged, source, to_tag) {
            return ResponseBuilder { w };
        }
        let parsed = (&checked.via, tagged);
        Self::start_general(w, code, reason, request, Some(parsed), source, to_tag)
    }

    /// The start of a response to any request: every Via line, value by value, and
    /// each copied value sanitised where the framer found a control byte.
    #[inline(never)]
    fn start_general(
        mut w: Writer<'b>,
        code: u16,
        reason: &str,
        h: &Headers<'_, '_>,
        parsed: Option<(&Via<'_>, bool)>,
        source: SocketAddr,
        to_tag: Option<&[u8]>,
    ) -> Self {
        w.status_line(code, reason);
        // One walk over the lines: every Via written as it comes, the first From, To, Call-ID
        // and CSeq kept for after them.
        let mut vias = Vias {
            parsed: parsed.map(|(via, _)| via),
            top: true,
            clean: h.is_clean(HeaderName::Via),
            source,
        };
        let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
        for line in h.lines {
            // Most lines are none of these: one bit test passes them by.
            if line.name.bit() & COPIED == 0 {
                continue;
            }
            match line.name {
                HeaderName::Via => vias.line(&mut w, line.value),
                HeaderName::From if from.is_none() => from = Some(line.value),
                HeaderName::To if to.is_none() => to = Some(line.value),
                HeaderName::CallId if call_id.is_none() => call_id = Some(line.value),
                HeaderName::CSeq if cseq.is_none() => cseq = Some(line.value),
                _ => {}
            }
        }
        let has_tag = |to: &[u8]| match parsed {
            Some((_, tagged)) => tagged,
            None => NameAddr::parse(to).is_none_or(|a| a.tag().is_some()),
        };
        let clean = [
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ]
        .map(|name| h.is_clean(name));
        if let (Some(from), Some(to), Some(call_id), Some(cseq), [true, true, true, true]) =
            (from, to, call_id, cseq, clean)
        {
            // All four, none with a control byte (the usual case): a few pieces.
            w.put3(b"From: ", from, b"\r\nTo: ");
            match (has_tag(to), to_tag) {
                (false, Some(tag)) => {
                    w.put3(to, b";tag=", tag);
                    w.put3(b"\r\nCall-ID: ", call_id, b"\r\nCSeq: ");
                }
                _ => {
                    w.put3(to, b"\r\nCall-ID: ", call_id);
                    w.put(b"\r\nCSeq: ");
                }
            }
            w.put3(cseq, b"\r\n", b"");
            return ResponseBuilder { w };
        }
        if let Some(from) = from {
            w.line(b"From: ", from, h.is_clean(HeaderName::From));
        }
        if let Some(to) = to {
            let clean = h.is_clean(HeaderName::To);
            match (has_tag(to), to_tag) {
                (false, Some(tag)) => {
                    w.put(b"To: ");
                    w.put_echo(to, clean);
                    w.put3(b";tag=", tag, b"\r\n");
                }
                _ => w.line(b"To: ", to, clean),
            }
        }
        if let Some(call_id) = call_id {
            w.line(b"Call-ID: ", call_id, h.is_clean(HeaderName::CallId));
        }
        if let Some(cseq) = cseq {
            w.line(b"CSeq: ", cseq, h.is_clean(HeaderName::CSeq));
        }
        ResponseBuilder { w }
    }

    /// Any header, value written as given (folds collapsed, control characters dropped).
    pub fn header(&mut self, name: &str, value: &[u8]) -> &mut Self {
        if is_clean(value) {
            self.w.put3(name.as_bytes(), b": ", value);
            self.w.put(b"\r\n");
            return self;
        }
        self.w.put(name.as_bytes());
        self.w.put(b": ");
        self.w.put_value(value);
        self.w.put(b"\r\n");
        self
    }

    fn number(&mut self, name: &str, n: u64) -> &mut Self {
        self.w.put(name.as_bytes());
        self.w.put(b": ");
        self.w.put_u64(n);
        self.w.put(b"\r\n");
        self
    }

    /// `Contact: <uri>;params;expires=N`. `params` is raw header-parameter text as stored from
    /// a request's Contact (without the leading `;`, for instance `+sip.instance="<urn:..>";reg-id=1`);
    /// an `expires` among them is dropped, since the granted value is the one written.
    pub fn contact(&mut self, uri: &[u8], params: &[u8], expires: u32) -> &mut Self {
        // The list is read first. When it is `p1;p2;..`, with nothing between the parameters and
        // at most one expires among them (what a stored Contact usually holds), the parameters
        // before and after the expires one are two runs of the list, each written as one value:
        // sanitising a run whole gives the bytes of sanitising each of its parameters, since the
        // `;` between them is kept and stops a fold. Another valid list is written parameter by
        // parameter; a malformed one not at all.
        let (mut next, mut runs, mut cut) = (0, true, None);
        let valid = Params::header_visit(params, |p| {
            let at = (p.raw.as_ptr() as usize).wrapping_sub(params.as_ptr() as usize);
            let end = at + p.raw.len();
            runs &= at == next;
            if p.name.eq_ignore_ascii_case(b"expires") {
                runs &= cut.is_none();
                cut = Some((at, end));
            }
            next = end + 1;
            Some(())
        })
        .is_some();
        let runs = valid && runs && (params.is_empty() || next == params.len() + 1);
        let (before, after) = match cut {
            None => (params, &b""[..]),
            Some((at, end)) => (
                params.get(..at.saturating_sub(1)).unwrap_or_default(),
                params.get(end + 1..).unwrap_or_default(),
            ),
        };
        let plain = runs && is_clean(uri) && is_clean(params);
        if plain {
            self.w.put3(b"Contact: <", uri, b">");
        } else {
            self.w.put(b"Contact: <");
            self.w.put_value(uri);
            self.w.put(b">");
        }
        if runs {
            for run in [before, after] {
                if run.is_empty() {
                    continue;
                }
                if plain {
                    self.w.put3(b";", run, b"");
                } else {
                    self.w.put(b";");
                    self.w.put_value(run);
                }
            }
        } else if valid {
            let w = &mut self.w;
            Params::header_visit(params, |p| {
                if !p.name.eq_ignore_ascii_case(b"expires") {
                    w.put(b";");
                    w.put_value(p.raw);
                }
                Some(())
            });
        }
        self.w.put(b";expires=");
        self.w.put_u64(u64::from(expires));
        self.w.put(b"\r\n");
        self
    }

    /// [`ResponseBuilder::contact`] for parameters already reduced to what is echoed: no
    /// `expires` among them, a valid list (`location::echo_params`, what a binding stores).
    /// They are written as they are, with no second reading: the same bytes `contact` writes
    /// for the list they came from.
    pub fn contact_echo(&mut self, uri: &[u8], params: &[u8], expires: u32) -> &mut Self {
        let sep: &[u8] = if params.is_empty() { b"" } else { b";" };
        if is_clean(uri) && params.is_empty() {
            self.w.put3(b"Contact: <", uri, b">;expires=");
        } else if is_clean(uri) && is_clean(params) {
            self.w.put3(b"Contact: <", uri, b">;");
            self.w.put3(params, b";expires=", b"");
        } else {
            self.w.put(b"Contact: <");
            self.w.put_value(uri);
            self.w.put(b">");
            self.w.put(sep);
            self.w.put_value(params);
            self.w.put(b";expires=");
        }
        self.w.put_u64(u64::from(expires));
        self.w.put(b"\r\n");
        self
    }

    pub fn expires(&mut self, seconds: u32) -> &mut Self {
        self.number("Expires", u64::from(seconds))
    }

    /// RFC 3261 10.3 step 7: the 423 carries Min-Expires.
    pub fn min_expires(&mut self, seconds: u32) -> &mut Self {
        self.number("Min-Expires", u64::from(seconds))
    }

    pub fn retry_after(&mut self, seconds: u32) -> &mut Self {
        self.number("Retry-After", u64::from(seconds))
    }

    /// `Date` in RFC 1123 form, from seconds since the Unix epoch (the caller owns the clock).
    pub fn date(&mut self, unix_seconds: u64) -> &mut Self {
        self.date_line(http_date(unix_seconds), unix_seconds)
    }

    /// [`ResponseBuilder::date`], the text taken from `cache` when it holds this second's (and
    /// left there for the next response of the same second).
    pub fn date_from(&mut self, cache: &DateCache, unix_seconds: u64) -> &mut Self {
        self.date_line(cache.text(unix_seconds), unix_seconds)
    }

    /// The Date line: `text` when the year has four digits, else formatted the long way.
    #[inline(always)]
    fn date_line(&mut self, text: Option<[u8; 29]>, unix_seconds: u64) -> &mut Self {
        match text {
            Some(date) => self.w.put3(b"Date: ", &date, b"\r\n"),
            None => {
                self.w.put(b"Date: ");
                write_http_date(&mut self.w, unix_seconds);
                self.w.put(b"\r\n");
            }
        }
        self
    }

    pub fn www_authenticate(&mut self, c: &Challenge<'_>) -> &mut Self {
        self.challenge("WWW-Authenticate", c)
    }

    pub fn proxy_authenticate(&mut self, c: &Challenge<'_>) -> &mut Self {
        self.challenge("Proxy-Authenticate", c)
    }

    fn challenge(&mut self, name: &str, c: &Challenge<'_>) -> &mut Self {
        // Nothing to escape or drop in the quoted values (the usual case): the line in one piece.
        let qop = c.qop.as_bytes();
        if is_plain_quoted(c.realm)
            && is_plain_quoted(c.nonce)
            && is_plain_quoted(c.opaque)
            && is_plain_quoted(qop)
        {
            self.w.put_challenge(name.as_bytes(), c);
            return self;
        }
        let w = &mut self.w;
        challenge_head(w, name, c.realm);
        w.put_quoted(c.nonce);
        challenge_tail(w, c);
        if c.stale {
            w.put(b", stale=true");
        }
        w.put(b"\r\n");
        self
    }

    /// The challenges of `lines`, one per algorithm, all with `nonce`: the fixed text is copied,
    /// only the nonce is written.
    pub fn challenges(&mut self, lines: &ChallengeLines, nonce: &[u8], stale: bool) -> &mut Self {
        // Nonces are base64url tokens; anything to escape or drop takes the careful path.
        let plain = is_plain_quoted(nonce);
        for line in &lines.lines {
            let tail = if stale { &line.stale_tail } else { &line.tail };
            if plain {
                self.w.put3(&line.head, nonce, tail);
            } else {
                self.w.put(&line.head);
                self.w.put_escaped(nonce);
                self.w.put(tail);
            }
        }
        self
    }

    /// `Unsupported` listing option tags (RFC 3261 8.2.2.3, for a 420).
    pub fn unsupported<'t>(&mut self, tags: impl IntoIterator<Item = &'t [u8]>) -> &mut Self {
        self.w.put(b"Unsupported: ");
        for (i, tag) in tags.into_iter().enumerate() {
            if i > 0 {
                self.w.put(b", ");
            }
            self.w.put_value(tag);
        }
        self.w.put(b"\r\n");
        self
    }

    pub fn server(&mut self, product: &str) -> &mut Self {
        let product = product.as_bytes();
        if is_clean(product) {
            self.w.put3(b"Server: ", product, b"\r\n");
            return self;
        }
        self.header("Server", product)
    }

    /// Writes Content-Length and the blank line; returns the message length.
    pub fn finish(mut self) -> Result<usize, Overflow> {
        self.w.put(b"Content-Length: 0\r\n\r\n");
        self.w.finish()
    }

    /// [`ResponseBuilder::server`] then [`ResponseBuilder::finish`], as one copy of the bytes
    /// they write for the product `trailer` was made for; returns the message length.
    pub fn finish_with(mut self, trailer: &Trailer) -> Result<usize, Overflow> {
        self.w.put(&trailer.bytes);
        self.w.finish()
    }

    /// Writes Content-Type, Content-Length, the blank line and the body.
    pub fn finish_with_body(mut self, content_type: &str, body: &[u8]) -> Result<usize, Overflow> {
        self.header("Content-Type", content_type.as_bytes());
        self.number("Content-Length", body.len() as u64);
        self.w.put(b"\r\n");
        self.w.put(body);
        self.w.finish()
    }
}

/// The Via lines of a response, written as the request's lines come (RFC 3261 8.2.6.2: every
/// Via value, in order).
struct Vias<'p, 'v> {
    /// The request's top Via, parsed already (by [`check_request`](super::check_request)).
    parsed: Option<&'p Via<'v>>,
    /// No Via value written yet: the next is the top one, which gets `received` and `rport`.
    top: bool,
    /// The request's Via values hold no control byte ([`Headers::is_clean`]).
    clean: bool,
    source: SocketAddr,
}

impl Vias<'_, '_> {
    /// The values of one Via line, each on its own line.
    #[inline]
    fn line(&mut self, w: &mut Writer<'_>, value: &[u8]) {
        if let (true, Some(via)) = (self.top, self.parsed) {
            let value = chars::trim(value);
            if is_whole_value(value, via) {
                self.value(w, value);
                return;
            }
        }
        if has_comma(value) {
            self.list(w, value);
        } else {
            // A value without a comma is one element, the value itself: what `elements` gives
            // for it, read without the list's quote and bracket logic.
            self.value(w, chars::trim(value));
        }
    }

    /// The values of a Via line with a comma, as `elements` gives them.
    #[inline(never)]
    fn list(&mut self, w: &mut Writer<'_>, value: &[u8]) {
        for element in CommaList::new(value) {
            self.value(w, element);
        }
    }

    #[inline(always)]
    fn value(&mut self, w: &mut Writer<'_>, value: &[u8]) {
        // Empty elements (`Via: a,,b`) are no Via values; echoing them would forward the defect.
        if value.is_empty() {
            return;
        }
        if !self.top {
            w.line(b"Via: ", value, self.clean);
            return;
        }
        self.top = false;
        let parsed;
        let via = match self.parsed {
            Some(via) => via,
            None => match Via::parse(value) {
                Some(via) => {
                    parsed = via;
                    &parsed
                }
                None => return w.line(b"Via: ", value, self.clean),
            },
        };
        w.put(b"Via: ");
        write_top_via(w, value, via, self.source, self.clean);
        w.put(b"\r\n");
    }
}

/// Whether the trimmed Via line `value` is the one value `via` was parsed from, so that it
/// needs no search for a comma: the parse read parameters up to the end of `value` (a parsed
/// Via value is one element) and nothing before its transport holds a comma.
#[inline(always)]
fn is_whole_value(value: &[u8], via: &Via<'_>) -> bool {
    let params = via.params.raw();
    let (start, end) = (
        value.as_ptr() as usize,
        value.as_ptr() as usize + value.len(),
    );
    let transport = via.raw_transport.as_ptr() as usize;
    // Before the transport, the usual `SIP/2.0/`: one word to look at.
    let no_comma = |before: &[u8]| match before.first_chunk::<8>() {
        Some(w) if before.len() == 8 => flag_eq(u64::from_le_bytes(*w), b',') == 0,
        _ => !has_comma(before),
    };
    !params.is_empty()
        && params.as_ptr() as usize + params.len() == end
        && (start..end).contains(&transport)
        && value.get(..transport - start).is_some_and(no_comma)
}

/// Writes the top Via with `received` and `rport` filled in.
///
/// RFC 3261 18.2.1: "the server MUST add a received parameter to that header field value" when the
/// sent-by host differs from the packet's source address. RFC 3581 4: with `rport` present and no
/// value, "the server MUST set the value of the parameter to the source port of the request" and
/// "MUST insert a received parameter containing the source IP address ... even if it is
/// identical to the value of the host component".
fn write_top_via(w: &mut Writer<'_>, raw: &[u8], via: &Via<'_>, source: SocketAddr, clean: bool) {
    let params_raw = via.params.raw();
    // The sent-protocol and sent-by part is everything before the parameters' ';'.
    let head = if params_raw.is_empty() {
        raw
    } else {
        let offset = params_raw.as_ptr() as usize - raw.as_ptr() as usize;
        raw.get(..offset.saturating_sub(1)).unwrap_or(raw)
    };
    let head = chars::trim_end(head);
    // Every parameter but received and rport, as `;p1;p2`: in one piece when the parse found
    // them so, else one by one. (Parts of a clean `raw` are clean; a `via` parsed from other
    // bytes than `raw` is written the careful way.)
    let within = |part: &[u8]| {
        let (start, end) = (raw.as_ptr() as usize, raw.as_ptr() as usize + raw.len());
        let p = part.as_ptr() as usize;
        clean && p >= start && p + part.len() <= end
    };
    match via.kept_params {
        Some(kept) if !kept.is_empty() && within(kept) => w.put3(head, b";", kept),
        Some([]) => w.put_echo(head, clean),
        Some(kept) => {
            w.put_echo(head, clean);
            w.put(b";");
            w.put_echo(kept, false);
        }
        None => {
            w.put_echo(head, clean);
            for p in via.params.iter() {
                let is = |n: &[u8]| p.name.eq_ignore_ascii_case(n);
                // Written again below, always as `;received=..;rport=..`, so that writing a
                // response from a response gives the same bytes.
                if is(b"received") || is(b"rport") {
                    continue;
                }
                w.put(b";");
                w.put_echo(p.raw, within(p.raw));
            }
        }
    }
    let (received, port) = received_and_rport(via, source);
    if let Some(IpAddr::V4(ip)) = received
        && w.put_received_rport(ip, port)
    {
        return;
    }
    if let Some(ip) = received {
        w.put(b";received=");
        w.put_ip(ip);
    }
    match via.rport {
        Rport::Requested => {
            w.put(b";rport=");
            w.put_u64(u64::from(source.port()));
        }
        Rport::Value(port) => {
            w.put(b";rport=");
            w.put_u64(u64::from(port));
        }
        Rport::Absent => {}
    }
}

/// The `received` and `rport` values of a response's top Via, for a request from `source`.
#[inline(always)]
fn received_and_rport(via: &Via<'_>, source: SocketAddr) -> (Option<IpAddr>, Option<u16>) {
    let source_ip = source.ip().to_canonical();
    let sent_by_is_source = match (via.host, source_ip) {
        (Host::Domain(_), _) => false,
        (Host::Ipv4(host), IpAddr::V4(source)) => host == source,
        (host, _) => host.ip().is_some_and(|ip| ip.to_canonical() == source_ip),
    };
    let received = if via.rport == Rport::Requested || !sent_by_is_source {
        Some(source_ip)
    } else {
        // The client's own received parameter is kept when we have no better knowledge.
        via.received
    };
    let port = match via.rport {
        Rport::Requested => Some(source.port()),
        Rport::Value(port) => Some(port),
        Rport::Absent => None,
    };
    (received, port)
}

/// What the start of a response to the usual request is made of, when it can be written in
/// one piece ([`Writer::put_usual`]): a single Via line holding one value, already parsed, whose
/// echoed part is one run of its bytes; From, To, Call-ID and CSeq present; none of these with
/// a control byte; an IPv4 `received` if any.
struct Usual<'a> {
    /// The top Via as echoed: sent-protocol, sent-by and the parameters kept, in one piece.
    via: &'a [u8],
    received: Option<Ipv4Addr>,
    rport: Option<u16>,
    from: &'a [u8],
    to: &'a [u8],
    /// The tag to add to To.
    tag: Option<&'a [u8]>,
    call_id: &'a [u8],
    cseq: &'a [u8],
}

impl<'a> Usual<'a> {
    /// The pieces for a request whose top Via is `via` (and whose To has a tag when `tagged`),
    /// or `None` when the request is not the usual one. The same bytes as the general path in
    /// [`ResponseBuilder::start_general`] writes.
    #[inline(always)]
    fn find(
        h: &Headers<'a, '_>,
        via: &Via<'_>,
        tagged: bool,
        source: SocketAddr,
        to_tag: Option<&'a [u8]>,
    ) -> Option<Self> {
        // None of the copied values holds a control byte.
        if [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ]
        .iter()
        .any(|&name| !h.is_clean(name))
        {
            return None;
        }
        // The first line of each name, and the number of Via lines: walked from the end, so
        // that the last line seen of a name, the one kept, is its first.
        let (mut top, mut from, mut to, mut call_id, mut cseq) = (None, None, None, None, None);
        let mut vias = 0usize;
        for line in h.lines.iter().rev() {
            // Most lines are none of these: one bit test passes them by.
            if line.name.bit() & COPIED == 0 {
                continue;
            }
            match line.name {
                HeaderName::Via => {
                    vias += 1;
                    top = Some(line);
                }
                HeaderName::From => from = Some(line),
                HeaderName::To => to = Some(line),
                HeaderName::CallId => call_id = Some(line),
                HeaderName::CSeq => cseq = Some(line),
                _ => {}
            }
        }
        if vias != 1 {
            return None;
        }
        let value = |line: Option<&'_ Header<'a>>| line.map(|line| line.value);
        // A plain line's value has no LWS at either end: nothing to trim.
        let value_of_via = value(top)?;
        let (&first, &last) = (value_of_via.first()?, value_of_via.last()?);
        if chars::is_lws(first) || chars::is_lws(last) || !is_whole_value(value_of_via, via) {
            return None;
        }
        // The parameters end the value (`is_whole_value`), after the `;` that ends the head.
        let params = via.params.raw();
        let semicolon = value_of_via.len().checked_sub(params.len() + 1)?;
        let head = value_of_via.get(..semicolon)?;
        let via_echoed = match via.kept_params? {
            [] => chars::trim_end(head),
            // The head, its `;` and the kept parameters, when nothing lies between them.
            kept if kept.as_ptr() == params.as_ptr()
                && value_of_via.get(semicolon) == Some(&b';')
                && head.last().is_some_and(|&b| !chars::is_lws(b)) =>
            {
                value_of_via.get(..semicolon + 1 + kept.len())?
            }
            _ => return None,
        };
        // What `received_and_rport` gives, for an IPv4 source (or an IPv4-mapped IPv6 one).
        let (source_ip, source_port) = match source {
            SocketAddr::V4(s) => (*s.ip(), s.port()),
            SocketAddr::V6(s) => (s.ip().to_ipv4_mapped()?, s.port()),
        };
        let sent_by_is_source = match via.host {
            Host::Ipv4(host) => host == source_ip,
            Host::Domain(_) => false,
            // Perhaps an IPv4-mapped address: the general path compares it.
            Host::Ipv6(_) => return None,
        };
        let received = if via.rport == Rport::Requested || !sent_by_is_source {
            Some(source_ip)
        } else {
            match via.received {
                Some(IpAddr::V4(ip)) => Some(ip),
                Some(IpAddr::V6(_)) => return None,
                None => None,
            }
        };
        let rport = match via.rport {
            Rport::Requested => Some(source_port),
            Rport::Value(port) => Some(port),
            Rport::Absent => None,
        };
        Some(Usual {
            via: via_echoed,
            received,
            rport,
            from: value(from)?,
            to: value(to)?,
            tag: to_tag.filter(|_| !tagged),
            call_id: value(call_id)?,
            cseq: value(cseq)?,
        })
    }
}

/// The request headers a response copies (RFC 3261 8.2.6.2).
const COPIED: u64 = HeaderName::Via.bit()
    | HeaderName::From.bit()
    | HeaderName::To.bit()
    | HeaderName::CallId.bit()
    | HeaderName::CSeq.bit();

/// The `Date` text of the last second a response was written in: a registrar answering
/// thousands of requests a second formats it once a second instead of once a response.
#[derive(Debug, Default)]
pub struct DateCache {
    last: Cell<Option<(u64, [u8; 29])>>,
}

impl DateCache {
    /// The text for `unix_seconds` (see [`http_date`]), formatted unless it is the last one's.
    fn text(&self, unix_seconds: u64) -> Option<[u8; 29]> {
        if let Some((second, text)) = self.last.get()
            && second == unix_seconds
        {
            return Some(text);
        }
        let text = http_date(unix_seconds)?;
        self.last.set(Some((unix_seconds, text)));
        Some(text)
    }
}

/// [`write_http_date`]'s text for a year of four digits (all of 1000 to 9999), which is always
/// 29 bytes long: filled in a fixed array, to be copied in one piece. In 32-bit arithmetic, the
/// date by [`civil_from_days_32`].
fn http_date(unix_seconds: u64) -> Option<[u8; 29]> {
    let days = unix_seconds / 86_400;
    // Days to the end of 9999, the last year of four digits.
    if days >= 2_932_897 {
        return None;
    }
    let (days, secs) = (days as u32, (unix_seconds - days * 86_400) as u32);
    let (year, month, day) = civil_from_days_32(days);
    // Every number below is under 100, every index within its table (the masks say so to
    // the compiler).
    let pair = |n: u32| PAIRS_128[n as usize & 127].to_le_bytes();
    let mut text = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    text[0..4].copy_from_slice(&WEEKDAY_WORDS[(days % 7) as usize & 7].to_le_bytes());
    text[5..7].copy_from_slice(&pair(day));
    text[8..12].copy_from_slice(&MONTH_WORDS[month.wrapping_sub(1) as usize & 15].to_le_bytes());
    text[12..14].copy_from_slice(&pair(year / 100));
    text[14..16].copy_from_slice(&pair(year % 100));
    let minutes = secs / 60;
    text[17..19].copy_from_slice(&pair(minutes / 60));
    text[20..22].copy_from_slice(&pair(minutes % 60));
    text[23..25].copy_from_slice(&pair(secs - minutes * 60));
    Some(text)
}

/// [`PAIRS`] with room up to 127, so that an index masked with 127 needs no bounds check.
static PAIRS_128: [u16; 128] = {
    let mut t = [0; 128];
    let mut i = 0;
    while i < 100 {
        t[i] = PAIRS[i];
        i += 1;
    }
    t
};

/// `Thu,` to `Wed,` as little-endian words, by days since 1970-01-01 modulo 7 (padded to 8).
static WEEKDAY_WORDS: [u32; 8] = {
    let mut t = [0; 8];
    let mut i = 0;
    while i < 7 {
        let d = DAYS[i];
        t[i] = u32::from_le_bytes([d[0], d[1], d[2], b',']);
        i += 1;
    }
    t
};

/// `Jan ` to `Dec ` as little-endian words (padded to 16).
static MONTH_WORDS: [u32; 16] = {
    let mut t = [0; 16];
    let mut i = 0;
    while i < 12 {
        let m = MONTHS[i];
        t[i] = u32::from_le_bytes([m[0], m[1], m[2], b' ']);
        i += 1;
    }
    t
};

/// [`civil_from_days`] for the days up to the end of 9999, in 32-bit arithmetic with no
/// division but by constants (C. Neri and L. Schneider, "Euclidean affine functions and their
/// application to calendar algorithms", 2022): the day counted from 1 March 0000, the century
/// and the day within it, then the year and the day within it from one 64-bit product, then
/// month and day from one more.
#[inline]
fn civil_from_days_32(days: u32) -> (u32, u32, u32) {
    let n = days + 719_468;
    let n1 = 4 * n + 3;
    let century = n1 / 146_097;
    let n2 = (n1 % 146_097) | 3;
    let p2 = 2_939_745 * u64::from(n2);
    let year_of_century = (p2 >> 32) as u32;
    let day_of_year = (p2 as u32) / 2_939_745 / 4;
    let n3 = 2141 * day_of_year + 197_913;
    let (month, day) = (n3 >> 16, (n3 & 0xffff) / 2141 + 1);
    // Counted from March: January and February belong to the next year.
    let january = u32::from(day_of_year >= 306);
    (
        100 * century + year_of_century + january,
        month - 12 * january,
        day,
    )
}

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// RFC 1123 date, as RFC 3261 20.17 requires: `Sat, 13 Nov 2010 23:29:00 GMT`.
fn write_http_date(w: &mut Writer<'_>, unix_seconds: u64) {
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    w.put(DAYS.get((days % 7) as usize).map_or(&[][..], |d| &d[..]));
    w.put(b", ");
    put_2(w, day);
    w.put(b" ");
    w.put(MONTHS.get(month as usize - 1).map_or(&[][..], |m| &m[..]));
    w.put(b" ");
    w.put_u64(year);
    w.put(b" ");
    put_2(w, secs / 3600);
    w.put(b":");
    put_2(w, secs / 60 % 60);
    w.put(b":");
    put_2(w, secs % 60);
    w.put(b" GMT");
}

fn put_2(w: &mut Writer<'_>, n: u64) {
    w.put(&[b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]);
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian (H. Hinnant's
/// algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::header::Header;

    #[test]
    fn dates() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        write_http_date(&mut w, 1_289_690_940);
        let n = w.finish().unwrap();
        assert_eq!(&buf[..n], b"Sat, 13 Nov 2010 23:29:00 GMT");
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        write_http_date(&mut w, 951_782_400); // leap day
        let n = w.finish().unwrap();
        assert_eq!(&buf[..n], b"Tue, 29 Feb 2000 00:00:00 GMT");
    }

    /// The cached Date is the formatted one for every second asked, in any order, and the
    /// years without a four-digit form still go the long way.
    #[test]
    fn the_date_cache_follows_the_clock() {
        let cache = DateCache::default();
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        for secs in [
            1_790_000_000,
            1_790_000_000,
            1_790_000_001,
            1_789_999_999,
            0,
            253_402_300_800,
            1_790_000_001,
        ] {
            assert_eq!(cache.text(secs), http_date(secs), "{secs}");
            let mut w = Writer::new(&mut a);
            let mut r = ResponseBuilder {
                w: Writer::new(&mut b),
            };
            r.date_from(&cache, secs);
            let m = r.w.len;
            w.put(b"Date: ");
            write_http_date(&mut w, secs);
            w.put(b"\r\n");
            let n = w.len;
            assert_eq!(a[..n], b[..m], "{secs}");
        }
    }

    /// The least a request needs for a response to be started from it.
    const CALL_ID_ONLY: [Header<'static>; 1] = [Header {
        name: HeaderName::CallId,
        raw_name: b"Call-ID",
        value: b"x",
    }];

    /// A response ended with a trailer is the one ended with Server and `finish`, for products
    /// plain, empty, long, with control bytes and with bytes above ASCII, and overflows alike.
    #[test]
    fn trailers_end_responses_as_server_and_finish_do() {
        let h = Headers::new(&CALL_ID_ONLY);
        let source = SocketAddr::from(([192, 0, 2, 1], 5060));
        let long = "p\r\n\t\x7f".repeat(100);
        for product in [
            "sipreg/0.1.0",
            "",
            "a\r\nb",
            "é\u{0}x\ty",
            "\x7f",
            long.as_str(),
        ] {
            let trailer = Trailer::new(product);
            for size in [0, 40, 60, 100, 2048, 4096] {
                let (mut a, mut b) = (vec![0u8; size], vec![0u8; size]);
                let mut r = ResponseBuilder::start(&mut a, 200, "OK", &h, source, None);
                r.server(product);
                let old = r.finish();
                let r = ResponseBuilder::start(&mut b, 200, "OK", &h, source, None);
                let new = r.finish_with(&trailer);
                assert_eq!(old.is_ok(), new.is_ok(), "{product:?} in {size}");
                if let (Ok(m), Ok(n)) = (old, new) {
                    assert_eq!(a[..m], b[..n], "{product:?}");
                }
            }
        }
    }

    /// Long header and algorithm names are rendered whole: the lines' room counts them.
    #[test]
    fn challenge_lines_hold_long_names() {
        let h = Headers::new(&CALL_ID_ONLY);
        let source = SocketAddr::from(([192, 0, 2, 1], 5060));
        let (name, algorithm) = ("X-Authenticate-".repeat(20), "ALG-".repeat(80));
        let lines = ChallengeLines::new(&name, b"r", b"o", &[algorithm.as_str()], "auth");
        let (mut a, mut b) = ([0u8; 2048], [0u8; 2048]);
        let mut r = ResponseBuilder::start(&mut a, 401, "Unauthorized", &h, source, None);
        r.challenges(&lines, b"n", false);
        let n = r.finish().unwrap();
        let mut r = ResponseBuilder::start(&mut b, 401, "Unauthorized", &h, source, None);
        r.challenge(
            &name,
            &Challenge {
                realm: b"r",
                nonce: b"n",
                opaque: b"o",
                algorithm: &algorithm,
                qop: "auth",
                stale: false,
            },
        );
        let m = r.finish().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&a[..n]),
            String::from_utf8_lossy(&b[..m])
        );
    }

    /// The precomputed challenges write the same bytes as one `www_authenticate` per algorithm.
    #[test]
    fn challenge_lines_match_challenges() {
        let h = Headers::new(&CALL_ID_ONLY);
        let source = SocketAddr::from(([192, 0, 2, 1], 5060));
        let (realm, opaque, qop) = (&b"ex\"ample.com"[..], &b"op"[..], "auth,auth-int");
        let algorithms = ["SHA-256", "MD5"];
        let lines = ChallengeLines::new("WWW-Authenticate", realm, opaque, &algorithms, qop);
        for nonce in [
            &b"AAAAAGcz4wABAAAAAAAAAQ8r2Yw7mF0aYb3xK1dQ"[..],
            b"a\"b\\c",
            b"",
        ] {
            for stale in [false, true] {
                let (mut a, mut b) = ([0u8; 1024], [0u8; 1024]);
                let mut r = ResponseBuilder::start(&mut a, 401, "Unauthorized", &h, source, None);
                r.challenges(&lines, nonce, stale);
                let n = r.finish().unwrap();
                let mut r = ResponseBuilder::start(&mut b, 401, "Unauthorized", &h, source, None);
                for algorithm in algorithms {
                    r.www_authenticate(&Challenge {
                        realm,
                        nonce,
                        opaque,
                        algorithm,
                        qop,
                        stale,
                    });
                }
                let m = r.finish().unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&a[..n]),
                    String::from_utf8_lossy(&b[..m])
                );
            }
        }
    }

    /// A challenge written byte by byte, the reference for [`ResponseBuilder::www_authenticate`].
    fn ref_challenge(w: &mut Writer<'_>, name: &str, c: &Challenge<'_>) {
        w.put(name.as_bytes());
        w.put(b": Digest realm=");
        ref_put_quoted(w, c.realm);
        w.put(b", nonce=");
        ref_put_quoted(w, c.nonce);
        w.put(b", opaque=");
        ref_put_quoted(w, c.opaque);
        w.put(b", algorithm=");
        w.put(c.algorithm.as_bytes());
        if !c.qop.is_empty() {
            w.put(b", qop=");
            ref_put_quoted(w, c.qop.as_bytes());
        }
        if c.stale {
            w.put(b", stale=true");
        }
        w.put(b"\r\n");
    }

    /// Challenges with plain values and with values to escape or drop, in buffers of every
    /// size around what they need: the reference bytes when they fit, an overflow when not.
    #[test]
    fn challenges_match_the_reference() {
        let values: [&[u8]; 5] = [
            b"example.com",
            b"",
            b"ex\"am\\ple",
            b"a\x01b\r\n c",
            b"\xc3\xa9",
        ];
        let nonces: [&[u8]; 3] = [b"AAAAAGcz4wABAAAAAAAAAQ8r2Yw7mF0aYb3xK1dQ", b"n\"", b""];
        for (&realm, &opaque) in values.iter().zip(values.iter().rev()) {
            for nonce in nonces {
                for qop in ["auth,auth-int", "", "a\"b"] {
                    for stale in [false, true] {
                        let c = Challenge {
                            realm,
                            nonce,
                            opaque,
                            algorithm: "SHA-256",
                            qop,
                            stale,
                        };
                        let mut b = vec![0u8; 512];
                        let mut w = Writer::new(&mut b);
                        w.put(b"xyz");
                        ref_challenge(&mut w, "Proxy-Authenticate", &c);
                        let want = w.finish().map(|n| b[..n].to_vec()).unwrap();
                        for size in want.len() - 3..=want.len() + 1 {
                            let mut a = vec![0u8; size];
                            let mut r = ResponseBuilder {
                                w: Writer::new(&mut a),
                            };
                            r.w.put(b"xyz");
                            r.proxy_authenticate(&c);
                            let got = r.w.finish().map(|n| a[..n].to_vec());
                            let want = Some(want.clone())
                                .filter(|w| w.len() <= size)
                                .ok_or(Overflow);
                            assert_eq!(got, want, "{c:?} in {size}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn clean_prefix_stops_at_the_first_control() {
        for (v, want) in [
            (&b""[..], 0),
            (b"plain value, longer than eight", 30),
            (b"0123456\x7f89", 7),
            (b"01234567\r\n x", 8),
            (b"\t", 0),
            (b"caf\xc3\xa9 ok", 8),
            (b"abcdefghijklm\x00", 13),
        ] {
            assert_eq!(clean_prefix(v), want, "{}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn values_are_sanitised() {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        w.put_value(b"a\r\n  b\0c");
        w.put_quoted(br#"x"y\z"#);
        let n = w.finish().unwrap();
        assert_eq!(&buf[..n], br#"a bc"x\"y\\z""#);
    }

    /// The top Via written from the parse's one-piece parameters is the Via written by walking
    /// the list, and the one-piece form is found where it is meant to be.
    #[test]
    fn kept_via_params_agree_with_the_list() {
        let source: SocketAddr = "192.0.2.9:5070".parse().unwrap();
        let cases: &[(&[u8], bool)] = &[
            (b"SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK-1;rport", true),
            (b"SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK-1", true),
            (b"SIP/2.0/UDP 192.0.2.14", true),
            (
                b"SIP/2.0/UDP h.example.com;branch=z9hG4bK-1;x=\"a;b\";rport",
                true,
            ),
            (
                b"SIP/2.0/UDP 192.0.2.14;branch=z9hG4bK-1;received=192.0.2.1;rport=9",
                true,
            ),
            (b"SIP/2.0/UDP 192.0.2.14;rport;branch=z9hG4bK-1", false),
            (
                b"SIP/2.0/UDP 192.0.2.14;branch=z9hG4bK-1;rport;ttl=3",
                false,
            ),
            (b"SIP/2.0/UDP 192.0.2.14 ; branch=z9hG4bK-1 ;rport", false),
            (b"SIP/2.0/UDP 192.0.2.14;branch = z9hG4bK-1;rport", true),
            (b"SIP/2.0/UDP 192.0.2.14;received=192.0.2.1", true),
        ];
        for &(value, one_piece) in cases {
            let via = Via::parse(value).unwrap();
            assert_eq!(via.kept_params.is_some(), one_piece, "{value:?}");
            let slow = Via {
                kept_params: None,
                ..via
            };
            // The slow way: the list walked, every part sanitised.
            let mut b = [0u8; 256];
            let mut slow_w = Writer::new(&mut b);
            write_top_via(&mut slow_w, value, &slow, source, false);
            let m = slow_w.finish().unwrap();
            for clean in [false, true] {
                let mut a = [0u8; 256];
                let mut fast_w = Writer::new(&mut a);
                write_top_via(&mut fast_w, value, &via, source, clean);
                let n = fast_w.finish().unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&a[..n]),
                    String::from_utf8_lossy(&b[..m]),
                    "{value:?}"
                );
            }
        }
    }

    /// A stored Contact is written with its parameters but expires, in order; a malformed list
    /// is left out whole, not cut where the fault is; an earlier overflow stays reported.
    #[test]
    fn contact_parameters_are_written_whole_or_not_at_all() {
        let headers = [Header::EMPTY; 0];
        let h = Headers::new(&headers);
        let src: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let write = |params: &[u8], size: usize| {
            let mut buf = vec![0u8; size];
            let mut r = ResponseBuilder::start(&mut buf, 200, "OK", &h, src, None);
            r.contact(b"sip:a@192.0.2.1", params, 60);
            let n = r.finish().ok();
            n.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
        };
        let text = write(b"expires=3600;+sip.instance=\"<urn:x>\";reg-id=1", 512).unwrap();
        assert!(
            text.contains(
                "Contact: <sip:a@192.0.2.1>;+sip.instance=\"<urn:x>\";reg-id=1;expires=60\r\n"
            ),
            "{text}"
        );
        let text = write(b"q=0.5;ok=1;;", 512).unwrap();
        assert!(
            text.contains("Contact: <sip:a@192.0.2.1>;expires=60\r\n"),
            "{text}"
        );
        assert_eq!(
            write(b"q=0.5;;", 20),
            None,
            "an overflow before a malformed list stays"
        );
        // Rewinding takes back an overflow after the mark, and only that one.
        let mut buf = [0u8; 4];
        let mut w = Writer::new(&mut buf);
        w.put(b"ab");
        let mark = w.mark();
        w.put(b"cdef");
        w.rewind(mark);
        w.put(b"cd");
        assert_eq!(w.finish(), Ok(4));
        let mut buf = [0u8; 4];
        let mut w = Writer::new(&mut buf);
        w.put(b"abcdef");
        let mark = w.mark();
        w.put(b"ab");
        w.rewind(mark);
        assert!(w.finish().is_err());
    }

    #[test]
    fn numbers_and_addresses() {
        for n in [0, 9, 10, 99, 100, 5060, 65_535, u64::MAX] {
            let mut buf = [0u8; 32];
            let mut w = Writer::new(&mut buf);
            w.put_u64(n);
            let len = w.finish().unwrap();
            assert_eq!(&buf[..len], n.to_string().as_bytes());
        }
        for ip in [
            "0.0.0.0",
            "192.0.2.14",
            "255.255.255.255",
            "2001:db8::1",
            "::ffff:1.2.3.4",
        ] {
            let mut buf = [0u8; 64];
            let mut w = Writer::new(&mut buf);
            w.put_ip(ip.parse().unwrap());
            let len = w.finish().unwrap();
            assert_eq!(&buf[..len], ip.as_bytes());
        }
        // A number that does not fit is an overflow, not a partial write.
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        w.put_u64(1234);
        assert_eq!(w.finish(), Err(Overflow));
    }

    #[test]
    fn overflow_is_reported() {
        let mut buf = [0u8; 4];
        let mut w = Writer::new(&mut buf);
        w.put(b"hello");
        assert_eq!(w.finish(), Err(Overflow));
    }

    // -----------------------------------------------------------------------------------------
    // The writer as it was before its fast paths (copies of clean values, words at a time,
    // tables, one-piece lines): byte by byte, the reference the fast paths must match.

    fn ref_put_value(w: &mut Writer<'_>, v: &[u8]) {
        let mut start = 0;
        let mut i = 0;
        while let Some(&b) = v.get(i) {
            if b < b' ' && b != b'\t' || b == 0x7f {
                w.put(v.get(start..i).unwrap_or_default());
                if b == b'\r' || b == b'\n' {
                    while matches!(v.get(i + 1), Some(b'\r' | b'\n' | b' ' | b'\t')) {
                        i += 1;
                    }
                    w.put(b" ");
                }
                start = i + 1;
            }
            i += 1;
        }
        w.put(v.get(start..).unwrap_or_default());
    }

    fn ref_put_quoted(w: &mut Writer<'_>, v: &[u8]) {
        w.put(b"\"");
        let mut rest = v;
        while let Some(i) = rest.iter().position(|&b| b == b'"' || b == b'\\') {
            ref_put_value(w, &rest[..i]);
            w.put(&[b'\\', rest[i]]);
            rest = &rest[i + 1..];
        }
        ref_put_value(w, rest);
        w.put(b"\"");
    }

    fn ref_put_u64(w: &mut Writer<'_>, n: u64) {
        w.put(n.to_string().as_bytes());
    }

    fn ref_put_ip(w: &mut Writer<'_>, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                ref_put_u64(w, u64::from(a));
                for octet in [b, c, d] {
                    w.put(b".");
                    ref_put_u64(w, u64::from(octet));
                }
            }
            IpAddr::V6(_) => w.put(ip.to_string().as_bytes()),
        }
    }

    fn ref_top_via(w: &mut Writer<'_>, raw: &[u8], via: &Via<'_>, source: SocketAddr) {
        let params_raw = via.params.raw();
        let head = if params_raw.is_empty() {
            raw
        } else {
            let offset = params_raw.as_ptr() as usize - raw.as_ptr() as usize;
            raw.get(..offset.saturating_sub(1)).unwrap_or(raw)
        };
        ref_put_value(w, chars::trim_end(head));
        for p in via.params.iter() {
            let is = |n: &[u8]| p.name.eq_ignore_ascii_case(n);
            if is(b"received") || is(b"rport") {
                continue;
            }
            w.put(b";");
            ref_put_value(w, p.raw);
        }
        let source_ip = source.ip().to_canonical();
        let sent_by_is_source = match via.host {
            Host::Domain(_) => false,
            host => host.ip().is_some_and(|ip| ip.to_canonical() == source_ip),
        };
        let received = if via.rport == Rport::Requested || !sent_by_is_source {
            Some(source_ip)
        } else {
            via.received
        };
        if let Some(ip) = received {
            w.put(b";received=");
            ref_put_ip(w, ip);
        }
        match via.rport {
            Rport::Requested => {
                w.put(b";rport=");
                ref_put_u64(w, u64::from(source.port()));
            }
            Rport::Value(port) => {
                w.put(b";rport=");
                ref_put_u64(w, u64::from(port));
            }
            Rport::Absent => {}
        }
    }

    fn ref_start<'b>(
        buf: &'b mut [u8],
        code: u16,
        reason: &str,
        h: &Headers<'_, '_>,
        parsed: Option<(Via<'_>, bool)>,
        source: SocketAddr,
        to_tag: Option<&[u8]>,
    ) -> Writer<'b> {
        let mut w = Writer::new(buf);
        w.put(b"SIP/2.0 ");
        ref_put_u64(&mut w, u64::from(code));
        w.put(b" ");
        w.put(reason.as_bytes());
        w.put(b"\r\n");
        let vias = h.elements(HeaderName::Via).filter(|v| !v.is_empty());
        for (i, value) in vias.enumerate() {
            w.put(b"Via: ");
            let top = match (i, parsed) {
                (0, Some((via, _))) => Some(via),
                (0, None) => Via::parse(value),
                _ => None,
            };
            match top {
                Some(via) => ref_top_via(&mut w, value, &via, source),
                None => ref_put_value(&mut w, value),
            }
            w.put(b"\r\n");
        }
        if let Some(from) = h.get(HeaderName::From) {
            w.put(b"From: ");
            ref_put_value(&mut w, from.value);
            w.put(b"\r\n");
        }
        if let Some(to) = h.get(HeaderName::To) {
            w.put(b"To: ");
            ref_put_value(&mut w, to.value);
            let has_tag = match parsed {
                Some((_, tagged)) => tagged,
                None => NameAddr::parse(to.value).is_none_or(|a| a.tag().is_some()),
            };
            if let (false, Some(tag)) = (has_tag, to_tag) {
                w.put(b";tag=");
                w.put(tag);
            }
            w.put(b"\r\n");
        }
        for name in [HeaderName::CallId, HeaderName::CSeq] {
            if let Some(line) = h.get(name) {
                w.put(name.as_str().as_bytes());
                w.put(b": ");
                ref_put_value(&mut w, line.value);
                w.put(b"\r\n");
            }
        }
        w
    }

    fn ref_http_date(w: &mut Writer<'_>, unix_seconds: u64) {
        let days = unix_seconds / 86_400;
        let secs = unix_seconds % 86_400;
        let (year, month, day) = civil_from_days(days);
        w.put(&DAYS[(days % 7) as usize][..]);
        w.put(format!(", {day:02} ").as_bytes());
        w.put(&MONTHS[month as usize - 1][..]);
        w.put(b" ");
        ref_put_u64(w, year);
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        w.put(format!(" {h:02}:{m:02}:{s:02} GMT").as_bytes());
    }

    /// What the registrar and the benches write after the copied headers, the reference way.
    fn ref_rest(w: &mut Writer<'_>, nonce: &[u8], contact: (&[u8], &[u8]), date: u64) {
        for algorithm in ["SHA-256", "MD5"] {
            w.put(b"WWW-Authenticate: Digest realm=");
            ref_put_quoted(w, b"ex\"ample.com");
            w.put(b", nonce=");
            ref_put_quoted(w, nonce);
            w.put(b", opaque=");
            ref_put_quoted(w, b"op");
            w.put(b", algorithm=");
            w.put(algorithm.as_bytes());
            w.put(b", qop=");
            ref_put_quoted(w, b"auth");
            w.put(b"\r\n");
        }
        w.put(b"Contact: <");
        ref_put_value(w, contact.0);
        w.put(b">");
        let start = w.mark();
        let valid = Params::header_visit(contact.1, |p| {
            if !p.name.eq_ignore_ascii_case(b"expires") {
                w.put(b";");
                ref_put_value(w, p.raw);
            }
            Some(())
        });
        if valid.is_none() {
            w.rewind(start);
        }
        w.put(b";expires=");
        ref_put_u64(w, 7200);
        w.put(b"\r\nDate: ");
        ref_http_date(w, date);
        w.put(b"\r\nServer: ");
        ref_put_value(w, b"sipreg\t1");
        w.put(b"\r\nContent-Length: 0\r\n\r\n");
    }

    /// Request lines from pieces, clean and not (control bytes, folds, commas, quotes), then
    /// one byte replaced, inserted or removed.
    fn request_from(lines: &[(usize, Vec<usize>)], edit: Option<(usize, u8, u8)>) -> Vec<u8> {
        const NAMES: &[&[u8]] = &[
            b"Via: ",
            b"v: ",
            b"From: ",
            b"f:",
            b"To: ",
            b"t: ",
            b"Call-ID: ",
            b"i:\t",
            b"CSeq: ",
            b"Contact: ",
            b"X-Other: ",
            b"Via : ",
        ];
        const PIECES: &[&[u8]] = &[
            b"SIP/2.0/UDP 192.0.2.14:5060",
            b"SIP/2.0/TCP h.example.com",
            b";branch=z9hG4bK-1",
            b";rport",
            b";rport=7",
            b";received=192.0.2.99",
            b";x=\"a,b;c\"",
            b", ",
            b",",
            b"<sip:alice@example.com>",
            b"\"Al\\\"ice\" <sip:a@b>",
            b";tag=12ab",
            b"843817637684230@998sdasdh09",
            b"1 REGISTER",
            b"\xc3\xa9",
            b" ",
            b"\t",
            b"\r\n ",
            b"\x00",
            b"\x7f",
            b"\r",
            b"\x01",
        ];
        let mut msg = b"REGISTER sip:example.com SIP/2.0\r\n".to_vec();
        for (name, value) in lines {
            msg.extend_from_slice(NAMES[name % NAMES.len()]);
            for &p in value {
                // The first fourteen pieces, the clean ones, twice as likely as the others.
                let p = if p < 28 { p % 14 } else { p % PIECES.len() };
                msg.extend_from_slice(PIECES[p]);
            }
            msg.extend_from_slice(b"\r\n");
        }
        msg.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        crate::sip::testing::edit(&mut msg, edit);
        msg
    }

    /// What a finished writer wrote into `buf`.
    fn written(result: Result<usize, Overflow>, buf: &[u8]) -> Result<Vec<u8>, Overflow> {
        result.map(|n| buf[..n].to_vec())
    }

    const NONCES: &[&[u8]] = &[
        b"AAAAAGcz4wABAAAAAAAAAQ8r2Yw7mF0aYb3xK1dQ",
        b"a\"b\\c\x01",
        b"",
    ];
    const CONTACTS: &[(&[u8], &[u8])] = &[
        (
            b"sip:a@192.0.2.1:5060",
            b"+sip.instance=\"<urn:x>\";reg-id=1;expires=5",
        ),
        (b"sip:a@\x01h\r\n x", b"q=0.5;;"),
        (
            b"sip:a@192.0.2.1:5060;transport=udp",
            b"+sip.instance=\"<urn:x>\";reg-id=1",
        ),
        (b"sip:b@c", b""),
        (b"sip:b@c", b"lr ;x=\"a\x01b\";y=\"c\\\"d\""),
        (b"sip:c@d\x7f", b"lr\r\n ;Expires=3;q=1"),
        (b"sip:e@f", b"a=\"\r\n \";b;c=[::1]"),
        (b"sip:e@f", b"expires=1;a;b"),
        (b"sip:e@f", b"a;EXPIRES=1;b"),
        (b"sip:e@f", b"a;b;expires=1"),
        (b"sip:e@f", b"expires=1"),
        (b"sip:e@f", b"expires=1;expires=2;a"),
        (b"sip:e@f\r\n", b"expires=1;a=\"\x01\""),
    ];
    const DATES: &[u64] = &[
        0,
        951_782_400,
        1_795_000_000,
        253_402_300_799,
        253_402_300_800,
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        /// Responses to random requests, through `start` and `start_checked`, with the echoed
        /// values copied as they are where the framer found them clean or all the careful way,
        /// and the rest of a 401 and a 200 after them, are the reference writer's bytes; in a
        /// buffer too small, both overflow.
        #[test]
        fn responses_match_the_reference_writer(
            lines in proptest::collection::vec(
                (0..12usize, proptest::collection::vec(0..50usize, 0..6)),
                0..8,
            ),
            edit in proptest::option::of((0..4096usize, proptest::prelude::any::<u8>(), 0..3u8)),
            size in proptest::sample::select(&[2048usize, 400, 160, 40][..]),
            nonce in proptest::sample::select(NONCES),
            contact in proptest::sample::select(CONTACTS),
            date in proptest::sample::select(DATES),
        ) {
            let msg = request_from(&lines, edit);
            let mut storage = [Header::EMPTY; 24];
            let Ok(crate::sip::Message::Request(req)) =
                crate::sip::parse_datagram(&msg, &mut storage, &crate::sip::Limits::default())
            else {
                return Ok(());
            };
            let checked = crate::sip::check_request(&req).ok();
            let sources: [SocketAddr; 3] = [
                "192.0.2.14:5060".parse().unwrap(),
                "198.51.100.7:65535".parse().unwrap(),
                "[2001:db8::77]:40000".parse().unwrap(),
            ];
            let lines = ChallengeLines::new("WWW-Authenticate", b"ex\"ample.com", b"op", &["SHA-256", "MD5"], "auth");
            for h in [req.headers, req.headers.careful()] {
                for source in sources {
                    for to_tag in [None, Some(&b"sr1"[..])] {
                        for parsed in [None, checked.as_ref().map(|e| (e.via, e.to.tag().is_some()))] {
                            let (mut a, mut b) = (vec![0u8; size], vec![0u8; size]);
                            let mut r = match (parsed, checked.as_ref()) {
                                (Some(_), Some(e)) => ResponseBuilder::start_checked(&mut a, 401, "Unauthorized", &h, e, source, to_tag),
                                _ => ResponseBuilder::start(&mut a, 401, "Unauthorized", &h, source, to_tag),
                            };
                            r.challenges(&lines, nonce, false)
                                .contact(contact.0, contact.1, 7200)
                                .date(date)
                                .server("sipreg\t1");
                            let new = r.finish().map(|n| a[..n].to_vec());
                            let mut w = ref_start(&mut b, 401, "Unauthorized", &h, parsed, source, to_tag);
                            ref_rest(&mut w, nonce, contact, date);
                            let reference = w.finish();
                            let reference = written(reference, &b);
                            proptest::prop_assert_eq!(
                                new.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
                                reference.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())
                            );
                            proptest::prop_assert_eq!(new, reference);
                        }
                    }
                }
            }
        }
    }

    /// Requests of the usual shape (one Via line, From, To, Call-ID, CSeq), with the Via
    /// variants the one-piece start has to tell apart.
    const USUAL: &[&str] = &[
        "Via: SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK-524287-1---0b41c7a6e2f1d8c3;rport",
        "Via: SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK-1",
        "Via: SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK-1;rport=7;received=192.0.2.99",
        "Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK-1;x=\"a;b\";rport",
        "Via: SIP/2.0/UDP 192.0.2.14;rport;branch=z9hG4bK-1",
        "Via: SIP/2.0/UDP 192.0.2.14 ;branch=z9hG4bK-1",
        "Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK-1;rport",
        "Via: SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK-1;received=[2001:db8::2]",
    ];

    fn usual_request(via: &str, to_tag: bool) -> Vec<u8> {
        let to = if to_tag { ";tag=99" } else { "" };
        format!(
            "REGISTER sip:example.com SIP/2.0\r\n{via}\r\nMax-Forwards: 70\r\n\
             To: <sip:u1@example.com>{to}\r\nFrom: <sip:u1@example.com>;tag=4b1c\r\n\
             Call-ID: 7f1e3c2a@192.0.2.14\r\nCSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    /// The plain usual request takes the one-piece start.
    #[test]
    fn the_usual_request_is_found() {
        let msg = usual_request(USUAL[0], false);
        let mut storage = [Header::EMPTY; 24];
        let Ok(crate::sip::Message::Request(req)) =
            crate::sip::parse_datagram(&msg, &mut storage, &crate::sip::Limits::default())
        else {
            panic!("parses");
        };
        let e = crate::sip::check_request(&req).unwrap();
        let source: SocketAddr = "192.0.2.14:5060".parse().unwrap();
        assert!(Usual::find(&req.headers, &e.via, false, source, Some(b"t")).is_some());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        /// Usual requests, as they are and with one byte replaced, inserted or removed, from
        /// IPv4, IPv6 and IPv4-mapped sources, in buffers of several sizes: `start_checked`
        /// writes the reference writer's bytes, whichever path it takes.
        #[test]
        fn usual_requests_match_the_reference_writer(
            via in proptest::sample::select(USUAL),
            to_tag in proptest::prelude::any::<bool>(),
            edit in proptest::option::of((0..400usize, proptest::prelude::any::<u8>(), 0..3u8)),
            size in proptest::sample::select(&[2048usize, 330, 300, 250][..]),
            source in proptest::sample::select(&[
                "192.0.2.14:5060",
                "198.51.100.7:65535",
                "[2001:db8::1]:5060",
                "[::ffff:192.0.2.14]:5060",
            ][..]),
        ) {
            let mut msg = usual_request(via, to_tag);
            crate::sip::testing::edit(&mut msg, edit);
            let mut storage = [Header::EMPTY; 24];
            let Ok(crate::sip::Message::Request(req)) =
                crate::sip::parse_datagram(&msg, &mut storage, &crate::sip::Limits::default())
            else {
                return Ok(());
            };
            let Ok(e) = crate::sip::check_request(&req) else {
                return Ok(());
            };
            let source: SocketAddr = source.parse().unwrap();
            let parsed = Some((e.via, e.to.tag().is_some()));
            let (mut a, mut b) = (vec![0u8; size], vec![0u8; size]);
            let mut r = ResponseBuilder::start_checked(&mut a, 401, "Unauthorized", &req.headers, &e, source, Some(b"sr1"));
            r.server("sipreg");
            let new = r.finish().map(|n| a[..n].to_vec());
            let mut w = ref_start(&mut b, 401, "Unauthorized", &req.headers, parsed, source, Some(b"sr1"));
            w.put(b"Server: sipreg\r\nContent-Length: 0\r\n\r\n");
            let reference = w.finish();
            proptest::prop_assert_eq!(new, written(reference, &b));
        }
    }

    /// The word scans stop where a byte-by-byte search does, whatever the length and wherever
    /// the first and a second stop byte are (words, the overlapping tail word, the halves form
    /// and single bytes).
    #[test]
    fn prefix_scans_agree_with_bytes() {
        let stops = [0u8, b'\t', b'\r', b'\n', 0x1f, 0x7f, b'"', b'\\'];
        let filler = [b'a', b' ', 0x80, 0xff, b'~', b'!', 0x9f, b'#', b'[', b']'];
        let ctl = |b: u8| b < b' ' || b == 0x7f;
        for len in 0..50 {
            let base: Vec<u8> = (0..len).map(|i| filler[i % filler.len()]).collect();
            assert_eq!(clean_prefix(&base), len);
            assert_eq!(quoted_prefix(&base), len);
            assert!(is_clean(&base) && is_plain_quoted(&base));
            assert!(!has_comma(&base));
            for first in 0..len {
                for second in first..len {
                    for (&a, &b) in stops.iter().zip(stops.iter().rev()) {
                        let mut v = base.clone();
                        v[second] = b;
                        v[first] = a;
                        let clean = v.iter().position(|&c| ctl(c)).unwrap_or(len);
                        let quoted = v
                            .iter()
                            .position(|&c| ctl(c) || c == b'"' || c == b'\\')
                            .unwrap_or(len);
                        assert_eq!(clean_prefix(&v), clean, "{v:?}");
                        assert_eq!(quoted_prefix(&v), quoted, "{v:?}");
                        assert_eq!(is_clean(&v), clean == len, "{v:?}");
                        assert_eq!(is_plain_quoted(&v), quoted == len, "{v:?}");
                        v[first] = b',';
                        assert!(has_comma(&v), "{v:?}");
                    }
                }
            }
        }
    }

    /// The inline copy is `copy_from_slice` at every length.
    #[test]
    fn copies_of_every_length() {
        let src: Vec<u8> = (0..160u8).collect();
        for len in 0..160 {
            let mut dst = vec![0xaa; len + 2];
            copy(&mut dst[1..=len], &src[..len]);
            assert_eq!(&dst[1..=len], &src[..len]);
            assert_eq!((dst[0], dst[len + 1]), (0xaa, 0xaa), "{len}");
        }
    }

    /// Numbers, addresses and dates, the fast ways, in buffers of every size around what they
    /// need: the reference bytes when they fit, an overflow when they do not.
    #[test]
    fn numbers_addresses_and_dates_match_the_reference() {
        let mut numbers: Vec<u64> = (0..1100)
            .chain([9999, 10_000, 65_535, 99_999, 100_000, 123_456, u64::MAX])
            .collect();
        numbers.extend((0..64).map(|i| 1u64 << i));
        let mut ips: Vec<IpAddr> = (0..=255u8)
            .flat_map(|o| {
                [
                    [o, 0, 0, 0],
                    [0, o, 9, 99],
                    [255, 255, o, 100],
                    [1, 2, 3, o],
                ]
            })
            .map(IpAddr::from)
            .collect();
        ips.extend(["2001:db8::1", "::ffff:1.2.3.4", "::"].map(|s| s.parse::<IpAddr>().unwrap()));
        let dates = [
            0,
            951_782_400,
            1_289_690_940,
            1_795_000_000,
            253_402_300_799,
            253_402_300_800,
            u64::MAX,
        ];
        let check = |fast: &dyn Fn(&mut Writer<'_>), slow: &dyn Fn(&mut Writer<'_>)| {
            for size in 0..48 {
                for offset in [0, 3] {
                    let (mut a, mut b) = (vec![0u8; size + offset], vec![0u8; size + offset]);
                    let mut w = Writer::new(&mut a);
                    w.put(&b"xyz"[..offset]);
                    fast(&mut w);
                    let fast_out = w.finish();
                    let fast_out = written(fast_out, &a);
                    let mut w = Writer::new(&mut b);
                    w.put(&b"xyz"[..offset]);
                    slow(&mut w);
                    let slow_out = w.finish();
                    assert_eq!(fast_out, written(slow_out, &b), "size {size}");
                }
            }
        };
        for n in numbers {
            check(&|w| w.put_u64(n), &|w| ref_put_u64(w, n));
        }
        for ip in ips {
            check(&|w| w.put_ip(ip), &|w| ref_put_ip(w, ip));
        }
        // The top Via's end, in its window or piece by piece, in buffers up to past the window.
        for ip in ["0.0.0.0", "192.0.2.14", "255.255.255.255"] {
            let ip: Ipv4Addr = ip.parse().unwrap();
            for port in [None, Some(0), Some(5060), Some(65_535)] {
                let slow = |w: &mut Writer<'_>| {
                    w.put(b";received=");
                    ref_put_ip(w, IpAddr::V4(ip));
                    if let Some(port) = port {
                        w.put(b";rport=");
                        ref_put_u64(w, u64::from(port));
                    }
                };
                for size in 0..64 {
                    let (mut a, mut b) = (vec![0u8; size], vec![0u8; size]);
                    let mut w = Writer::new(&mut a);
                    if !w.put_received_rport(ip, port) {
                        assert!(size < 48);
                        slow(&mut w);
                    }
                    let fast_out = w.finish();
                    let fast_out = written(fast_out, &a);
                    let mut w = Writer::new(&mut b);
                    slow(&mut w);
                    let slow_out = w.finish();
                    assert_eq!(fast_out, written(slow_out, &b), "{ip} {port:?} in {size}");
                }
            }
        }
        for date in dates {
            let fast = |w: &mut Writer<'_>| match http_date(date) {
                Some(text) => w.put(&text),
                None => write_http_date(w, date),
            };
            check(&fast, &|w| ref_http_date(w, date));
            assert_eq!(
                http_date(date).is_some(),
                (253_402_300_800 > date),
                "{date}"
            );
        }
        // Every day for 30 years, a second before midnight.
        for day in 0..11_000u64 {
            let t = day * 86_400 + 86_399;
            let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
            let mut w = Writer::new(&mut b);
            ref_http_date(&mut w, t);
            let n = w.finish().unwrap();
            a[..29].copy_from_slice(&http_date(t).unwrap());
            assert_eq!(&a[..29], &b[..n]);
        }
    }
}
