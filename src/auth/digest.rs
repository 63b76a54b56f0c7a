//! The digest computation: algorithms, HA1 and response verification (RFC 7616 3.4.1,
//! RFC 2617 3.2.2, RFC 8760).
//!
//! What it does: names the supported algorithms, computes and parses HA1 (the stored
//! password-equivalent), computes the `response` a client should send and checks a received one
//! in constant time, without touching the heap. Each hash input (A1, A2, the KD string) is
//! written once into a stack buffer (hex digits eight at a time from word arithmetic, quoted
//! values copied a word at a time while they are searched for quoted-pairs) and hashed in one
//! call; MD5, the algorithm phones use, pads in that buffer and runs our own block function
//! (`md5_block`). The received response is compared eight digits at a time, the
//! client's lowercased and the expected ones encoded, the difference accumulated without an
//! early exit.
//!
//! What it does not do: decide whether the nonce is genuine or fresh ([`super::nonce`]), whether
//! the nonce-count is a replay ([`super::nc`]), find the user ([`super::users`]), or compare the
//! `uri` parameter with the Request-URI (that needs SIP URI equality and is the registrar's job).
//! `-sess` algorithms and `userhash=true` are not supported.

use core::fmt;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

use super::md5_block;
use crate::sip::auth::same_bytes;
use crate::sip::{DigestResponse, Quoted};

/// A digest algorithm (RFC 7616 3.3 `algorithm`, RFC 8760 for SHA-512-256).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
    Sha512_256,
}

impl Algorithm {
    /// Every supported algorithm, strongest first (the order to offer challenges in).
    pub const ALL: [Algorithm; 3] = [Algorithm::Sha512_256, Algorithm::Sha256, Algorithm::Md5];

    /// The algorithm named by an `algorithm` token, case-insensitively. `-sess` variants and
    /// unknown names are `None`.
    pub fn from_token(token: &[u8]) -> Option<Algorithm> {
        // The names differ in length, so the length picks the one candidate, compared a word at
        // a time (two overlapping words for the longest), letters folded (see `Folded`).
        const MD5: Folded = Folded::new(b"MD5");
        const SHA256: Folded = Folded::new(b"SHA-256");
        const SHA512_256: [Folded; 2] = Folded::ends(b"SHA-512-256");
        match token.len() {
            3 => MD5.matches(token).then_some(Algorithm::Md5),
            7 => SHA256.matches(token).then_some(Algorithm::Sha256),
            11 => Folded::both(&SHA512_256, token).then_some(Algorithm::Sha512_256),
            _ => None,
        }
    }

    /// The algorithm a response was computed with.
    pub fn of(resp: &DigestResponse<'_>) -> Option<Algorithm> {
        match resp.algorithm {
            // RFC 7616 3.3: "If this is not present, it is assumed to be "MD5"."
            None => Some(Algorithm::Md5),
            Some(token) => Algorithm::from_token(token),
        }
    }

    /// The name to write in a challenge's `algorithm` parameter.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512_256 => "SHA-512-256",
        }
    }

    /// Length of a digest in lowercase hex: 32 for MD5, 64 for the SHA-2 variants.
    pub const fn hex_len(self) -> usize {
        self.raw_len() * 2
    }

    const fn raw_len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha256 | Algorithm::Sha512_256 => 32,
        }
    }

    /// A dense index, for per-algorithm tables.
    pub(crate) const fn index(self) -> usize {
        match self {
            Algorithm::Md5 => 0,
            Algorithm::Sha256 => 1,
            Algorithm::Sha512_256 => 2,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The two lowercase hex digits of every byte value: one load per byte encoded.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = [DIGITS[b >> 4], DIGITS[b & 15]];
        b += 1;
    }
    t
};

/// The value of every hex digit, either case; `NOT_HEX` for every other byte.
static HEX_VALUES: [u8; 256] = {
    let mut t = [NOT_HEX; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => NOT_HEX,
        };
        b += 1;
    }
    t
};
const NOT_HEX: u8 = 0xff;

/// A name of at most eight bytes, for a case-insensitive compare in one word: ORing `fold` into
/// the received bytes lowercases the letter positions only (a byte ORed with 0x20 lands on a
/// lowercase letter only if it was that letter in either case), and every other byte (`-`,
/// digits) is compared exactly.
#[derive(Clone, Copy)]
struct Folded {
    /// The name lowercased, little-endian, unused bytes zero.
    lower: u64,
    /// 0x20 at each letter position.
    fold: u64,
    len: usize,
}

impl Folded {
    const fn new(name: &[u8]) -> Folded {
        let (mut lower, mut fold, mut i) = (0u64, 0u64, 0);
        while i < name.len() && i < 8 {
            let b = name[i];
            lower |= (b.to_ascii_lowercase() as u64) << (8 * i);
            if b.is_ascii_alphabetic() {
                fold |= 0x20 << (8 * i);
            }
            i += 1;
        }
        Folded {
            lower,
            fold,
            len: name.len(),
        }
    }

    /// The first and the last eight bytes of a name of 9 to 16 bytes (they overlap).
    const fn ends(name: &[u8]) -> [Folded; 2] {
        let (_, last) = name.split_at(name.len() - 8);
        [Folded::new(name), Folded::new(last)]
    }

    /// Whether `text` (exactly as long as the name) is the name in any letter case.
    #[inline(always)]
    fn matches(&self, text: &[u8]) -> bool {
        text.len() == self.len && (load_le(text) | self.fold) == self.lower
    }

    /// [`Folded::matches`] for a name given by its [`Folded::ends`].
    #[inline(always)]
    fn both([first, last]: &[Folded; 2], text: &[u8]) -> bool {
        let (Some(head), Some(tail)) = (text.first_chunk::<8>(), text.last_chunk::<8>()) else {
            return false;
        };
        (u64::from_le_bytes(*head) | first.fold) == first.lower
            && (u64::from_le_bytes(*tail) | last.fold) == last.lower
    }
}

/// Up to the first eight bytes of `s`, little-endian, unused bytes zero: whole words where they
/// fit (overlapping halves for 4 to 7 bytes), so no byte loop.
#[inline(always)]
fn load_le(s: &[u8]) -> u64 {
    let n = s.len();
    if let Some(w) = s.first_chunk::<8>() {
        return u64::from_le_bytes(*w);
    }
    if let (Some(lo), Some(hi)) = (s.first_chunk::<4>(), s.last_chunk::<4>()) {
        let (lo, hi) = (u32::from_le_bytes(*lo), u32::from_le_bytes(*hi));
        // `hi` covers bytes n-4..n: shifted into place, its overlap with `lo` is the same bytes.
        return u64::from(lo) | u64::from(hi) << (8 * (n - 4));
    }
    s.iter().rev().fold(0u64, |w, &b| w << 8 | u64::from(b))
}

const LOW_NIBBLES: u64 = 0x000f_000f_000f_000f;
const BYTES: u64 = 0x0101_0101_0101_0101;

/// Four bytes as eight lowercase hex digits, little-endian in a word (the digits of `raw[0]`
/// first): the nibbles spread one to a byte, then `'0' + n`, plus 39 for those above 9 (`'a'` is
/// `'0' + 49`). No table and no branch.
#[inline(always)]
fn hex_word(raw: [u8; 4]) -> u64 {
    hex_word_and_letters(raw).0
}

/// [`hex_word`], and 1 in each byte of it that is a letter (`a` to `f`).
#[inline(always)]
fn hex_word_and_letters(raw: [u8; 4]) -> (u64, u64) {
    let x = u64::from(u32::from_le_bytes(raw));
    // Byte i of the input to bits 16i..16i+8.
    let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
    let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
    // The high nibble first in the text: it goes to the lower byte of each pair.
    let n = (x >> 4) & LOW_NIBBLES | (x & LOW_NIBBLES) << 8;
    // 1 in each byte holding 10 or more (n + 6 carries into bit 4); no carry crosses a byte.
    let letters = ((n + 6 * BYTES) >> 4) & BYTES;
    // `letters * 39` as shifts: vectorised (see `hex_eq`), a 64-bit multiply is five SSE2
    // instructions.
    (
        n + 0x30 * BYTES + (letters << 5) + (letters << 3) - letters,
        letters,
    )
}

/// The word with every `A`-`Z` byte lowercased, every other byte unchanged (what
/// `to_ascii_lowercase` does to each byte). The tests' model of a case-insensitive digit.
#[cfg(test)]
fn lowercase_word(w: u64) -> u64 {
    const HIGHS: u64 = 0x80 * BYTES;
    let low7 = w & !HIGHS;
    // Bit 7 of each byte: at least `A`, and above `Z`; the additions stay within the byte.
    let from_a = low7 + (0x80 - u64::from(b'A')) * BYTES;
    let past_z = low7 + (0x80 - u64::from(b'Z') - 1) * BYTES;
    let upper = from_a & !past_z & !w & HIGHS;
    w | upper >> 2
}

/// Writes `raw` as lowercase hex into the front of `out` (which holds at least twice its bytes):
/// four bytes a word with [`hex_word`], the rest (if `raw` is not a multiple of four) from the
/// table.
#[inline(always)]
fn encode_hex(raw: &[u8], out: &mut [u8]) {
    let (words, rest) = raw.as_chunks::<4>();
    let (outs, _) = out.as_chunks_mut::<8>();
    for (o, w) in outs.iter_mut().zip(words) {
        *o = hex_word(*w).to_le_bytes();
    }
    let tail = out.get_mut(words.len() * 8..).unwrap_or_default();
    for (pair, &b) in tail.chunks_exact_mut(2).zip(rest) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
}

/// The bytes that `hex` (either case, two digits a byte) writes into the front of `out`;
/// `None` if a byte is not a hex digit or `hex` is not exactly twice as long as `out`.
fn decode_hex(hex: &[u8], out: &mut [u8]) -> Option<()> {
    if hex.len() != out.len() * 2 {
        return None;
    }
    // Every digit decoded before one check: no branch per digit.
    let mut invalid = 0u8;
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        let (hi, lo) = (HEX_VALUES[usize::from(*hi)], HEX_VALUES[usize::from(*lo)]);
        invalid |= hi | lo;
        *o = hi << 4 | lo;
    }
    (invalid & 0xf0 == 0).then_some(())
}

/// A digest written as lowercase hex, on the stack (at most 64 characters).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex {
    buf: [u8; 64],
    len: u8,
}

impl Hex {
    fn encode(raw: &[u8]) -> Hex {
        let mut hex = Hex {
            buf: [0; 64],
            len: 0,
        };
        let raw = raw.get(..32).unwrap_or(raw);
        encode_hex(raw, &mut hex.buf);
        // At most 32 bytes, so at most 64 digits.
        hex.len = (raw.len() * 2) as u8;
        hex
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hex digits are ASCII, so the bytes are always UTF-8.
        f.write_str(core::str::from_utf8(self.as_bytes()).unwrap_or_default())
    }
}

impl fmt::Debug for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hex({self})")
    }
}

/// A raw digest, left-aligned in 32 bytes (MD5 fills the first 16).
type Raw = [u8; 32];

/// `H(data)`: one call into the hash, which pads and finishes in place.
fn hash(alg: Algorithm, data: &[u8]) -> Raw {
    let mut raw = [0; 32];
    match alg {
        Algorithm::Md5 => raw[..16].copy_from_slice(&Md5::digest(data)),
        Algorithm::Sha256 => raw.copy_from_slice(&Sha256::digest(data)),
        Algorithm::Sha512_256 => raw.copy_from_slice(&Sha512_256::digest(data)),
    }
    raw
}

/// An incremental hash, for inputs longer than a [`Input`] buffer.
enum Hasher {
    Md5(Md5),
    Sha256(Sha256),
    Sha512_256(Sha512_256),
}

impl Hasher {
    fn new(alg: Algorithm) -> Hasher {
        match alg {
            Algorithm::Md5 => Hasher::Md5(Md5::new()),
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512_256 => Hasher::Sha512_256(Sha512_256::new()),
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512_256(h) => h.update(bytes),
        }
    }

    fn finish(self) -> Raw {
        let mut raw = [0; 32];
        match self {
            Hasher::Md5(h) => raw[..16].copy_from_slice(&h.finalize()),
            Hasher::Sha256(h) => raw.copy_from_slice(&h.finalize()),
            Hasher::Sha512_256(h) => raw.copy_from_slice(&h.finalize()),
        }
        raw
    }
}

/// Copies `src` into `dst` (of the same length) a word at a time, and tells whether `src` holds a
/// backslash. The last word of a value of eight bytes or more overlaps the one before; shorter
/// values go byte by byte.
#[inline(always)]
fn copy_finding_backslash(dst: &mut [u8], src: &[u8]) -> bool {
    const BACKSLASHES: u64 = BYTES * b'\\' as u64;
    // A byte of `x` is zero exactly when the lowest flag of `(x - ONES) & !x & HIGHS` is set at
    // or below it; any flag at all means some byte is zero.
    let zero_byte = |x: u64| x.wrapping_sub(BYTES) & !x & (0x80 * BYTES);
    // Eight to sixteen bytes (a cnonce): the first and the last word cover them, no loop.
    if let (Some(s_first), Some(s_last)) = (src.first_chunk::<8>(), src.last_chunk::<8>())
        && src.len() <= 16
        && dst.len() == src.len()
    {
        let (first, last) = (u64::from_le_bytes(*s_first), u64::from_le_bytes(*s_last));
        if let Some(d) = dst.first_chunk_mut::<8>() {
            *d = *s_first;
        }
        if let Some(d) = dst.last_chunk_mut::<8>() {
            *d = *s_last;
        }
        return zero_byte(first ^ BACKSLASHES) | zero_byte(last ^ BACKSLASHES) != 0;
    }
    let mut found = 0u64;
    if let (Some(d_last), Some(s_last)) = (dst.last_chunk_mut::<8>(), src.last_chunk::<8>()) {
        let w = u64::from_le_bytes(*s_last);
        found |= zero_byte(w ^ BACKSLASHES);
        *d_last = *s_last;
        let (d_words, _) = dst.as_chunks_mut::<8>();
        let (s_words, _) = src.as_chunks::<8>();
        for (d, s) in d_words.iter_mut().zip(s_words) {
            let w = u64::from_le_bytes(*s);
            found |= zero_byte(w ^ BACKSLASHES);
            *d = *s;
        }
        return found != 0;
    }
    let mut any = false;
    for (d, &b) in dst.iter_mut().zip(src) {
        any |= b == b'\\';
        *d = b;
    }
    any
}

/// Room for a digest input on the stack: the largest the registrar hashes in practice, a
/// SHA-256 KD (two 64-digit hashes, a 44-character nonce, a cnonce, nc and qop), with margin.
const INPUT_LEN: usize = 384;

/// One hash input, gathered on the stack and handed to the hash in a single call when it fits
/// in [`INPUT_LEN`] bytes (every input from a real client does). A longer one, say a client's
/// kilobyte-long cnonce, is hashed incrementally, a buffer-full at a time: same digest, more calls.
struct Input {
    alg: Algorithm,
    buf: [u8; INPUT_LEN],
    len: usize,
    /// The hash of what no longer fitted, if anything did not.
    spilled: Option<Hasher>,
}

impl Input {
    fn new(alg: Algorithm) -> Input {
        Input {
            alg,
            buf: [0; INPUT_LEN],
            len: 0,
            spilled: None,
        }
    }

    /// The next `n` free bytes of the buffer, making room first if they are not free.
    #[inline(always)]
    fn room(&mut self, n: usize) -> Option<&mut [u8]> {
        let at = self.len;
        // `checked_add`, not `+`: with `at <= end` known, the slice below needs no second check.
        let Some(end) = at.checked_add(n).filter(|&end| end <= INPUT_LEN) else {
            self.spill();
            // Longer than the whole buffer: `None`, and the caller hashes it directly.
            let room = self.buf.get_mut(..n)?;
            self.len = n;
            return Some(room);
        };
        self.len = end;
        self.buf.get_mut(at..end)
    }

    /// Hands the buffer to the incremental hash and empties it.
    #[cold]
    fn spill(&mut self) {
        let hasher = self.spilled.get_or_insert_with(|| Hasher::new(self.alg));
        hasher.put(self.buf.get(..self.len).unwrap_or_default());
        self.len = 0;
    }

    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) -> &mut Input {
        match self.room(bytes.len()) {
            Some(room) => room.copy_from_slice(bytes),
            // Longer than the whole buffer: straight to the hash (the buffer was just spilled).
            None => {
                if let Some(h) = self.spilled.as_mut() {
                    h.put(bytes);
                }
            }
        }
        self
    }

    /// `raw` as lowercase hex (at most 32 bytes, which always fit).
    #[inline(always)]
    fn put_hex(&mut self, raw: &[u8]) -> &mut Input {
        if let Some(room) = self.room(raw.len() * 2) {
            encode_hex(raw, room);
        }
        self
    }

    /// `unq(value)`: the quoted-string content with quoted-pairs resolved.
    ///
    /// Copied a word at a time while the same words are searched for a backslash, so the usual
    /// value (no quoted-pair) is read once, and without a call to `memcpy`.
    #[inline(always)]
    fn put_quoted(&mut self, q: Quoted<'_>) -> &mut Input {
        let (at, src) = (self.len, q.0);
        if let Some(room) = self.buf.get_mut(at..at + src.len()) {
            if !copy_finding_backslash(room, src) {
                self.len = at + src.len();
                return self;
            }
            // A quoted-pair: undo the copy, so every byte past `len` is zero again.
            room.fill(0);
        }
        self.put_chunks(q)
    }

    /// [`Input::put_quoted`] for a value with quoted-pairs, or too long for the buffer.
    #[cold]
    fn put_chunks(&mut self, q: Quoted<'_>) -> &mut Input {
        for chunk in q.chunks() {
            self.put(chunk);
        }
        self
    }

    /// A digest as hex text (64 digits at most): a fixed-size copy, not a `memcpy` call.
    #[inline(always)]
    fn put_hex_text(&mut self, hex: &Hex) -> &mut Input {
        let n = usize::from(hex.len);
        match self.room(n) {
            Some(room) => match (room.first_chunk_mut::<32>(), hex.buf.first_chunk::<32>()) {
                (Some(r), Some(h)) if n == 32 => *r = *h,
                _ => room.copy_from_slice(hex.buf.get(..n).unwrap_or_default()),
            },
            None => {
                if let Some(h) = self.spilled.as_mut() {
                    h.put(hex.as_bytes());
                }
            }
        }
        self
    }

    /// The digest of everything put. Takes the input by reference: moving it would copy the
    /// whole buffer.
    fn finish(&mut self) -> Raw {
        if self.alg == Algorithm::Md5 && self.spilled.is_none() {
            // Never spilled, so every byte past `len` is still zero: MD5 pads in place.
            if let Some(d) = md5_block::digest_in_place(&mut self.buf, self.len) {
                let mut raw = [0; 32];
                raw[..16].copy_from_slice(&d);
                return raw;
            }
        }
        let data = self.buf.get(..self.len).unwrap_or_default();
        match self.spilled.take() {
            None => hash(self.alg, data),
            Some(mut h) => {
                h.put(data);
                h.finish()
            }
        }
    }
}

/// `H(data)` as lowercase hex.
pub fn hash_hex(alg: Algorithm, data: &[u8]) -> Hex {
    Hex::encode(hash(alg, data).get(..alg.raw_len()).unwrap_or_default())
}

/// HA1 = H(username ":" realm ":" password) (RFC 7616 3.4.2, A1 for the non-`-sess` algorithms).
///
/// A password equivalent: whoever holds it can answer any challenge in its realm, so it is never
/// printed by `Debug` and compared only in constant time (it has no `PartialEq`). Kept in 32
/// bytes with the algorithm (33 bytes, no heap): an MD5 HA1 as its 32 lowercase hex digits, the
/// very bytes the response hash reads (so verifying copies them and encodes nothing), a SHA-2 one
/// as its raw 32-byte digest, written as hex when a response is computed (which halves the size
/// of a user table compared with storing 64 digits).
#[derive(Clone, Copy)]
pub struct Ha1 {
    alg: Algorithm,
    /// MD5: the lowercase hex text. SHA-256, SHA-512-256: the raw digest.
    bytes: [u8; 32],
}

impl Ha1 {
    /// The HA1 of a raw digest (its first [`Algorithm::raw_len`] bytes).
    fn from_raw(alg: Algorithm, raw: &Raw) -> Ha1 {
        let mut bytes = *raw;
        if alg == Algorithm::Md5 {
            encode_hex(raw.get(..16).unwrap_or_default(), &mut bytes);
        }
        Ha1 { alg, bytes }
    }

    /// HA1 of a plaintext password, for provisioning tools; the registrar only stores the result.
    pub fn from_password(alg: Algorithm, username: &[u8], realm: &[u8], password: &[u8]) -> Ha1 {
        let mut h = Input::new(alg);
        h.put(username).put(b":").put(realm).put(b":").put(password);
        Ha1::from_raw(alg, &h.finish())
    }

    /// HA1 from its hex text (a stored credentials file); either case, exactly
    /// [`Algorithm::hex_len`] digits.
    pub fn from_hex(alg: Algorithm, hex: &[u8]) -> Option<Ha1> {
        let mut raw = [0; 32];
        decode_hex(hex, raw.get_mut(..alg.raw_len())?)?;
        Some(Ha1::from_raw(alg, &raw))
    }

    /// An HA1 nobody's password produces in practice, for the unknown-user path: the all-zero
    /// digest.
    pub(crate) const fn dummy(alg: Algorithm) -> Ha1 {
        let bytes = match alg {
            Algorithm::Md5 => [b'0'; 32],
            Algorithm::Sha256 | Algorithm::Sha512_256 => [0; 32],
        };
        Ha1 { alg, bytes }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The lowercase hex form, as written in a credentials file and fed to the response hash.
    pub fn to_hex(&self) -> Hex {
        match self.alg {
            Algorithm::Md5 => {
                let mut buf = [0; 64];
                if let Some(front) = buf.first_chunk_mut::<32>() {
                    *front = self.bytes;
                }
                Hex { buf, len: 32 }
            }
            Algorithm::Sha256 | Algorithm::Sha512_256 => Hex::encode(&self.bytes),
        }
    }

    /// The MD5 HA1's hex digits; `None` for the other algorithms.
    #[inline(always)]
    fn md5_hex(&self) -> Option<&[u8; 32]> {
        (self.alg == Algorithm::Md5).then_some(&self.bytes)
    }

    /// Writes the hex form into `input`.
    #[inline(always)]
    fn put_into(&self, input: &mut Input) {
        match self.md5_hex() {
            Some(hex) => input.put(hex),
            None => input.put_hex(&self.bytes),
        };
    }
}

impl fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ha1({}, <redacted>)", self.alg)
    }
}

/// The `qop` a response was computed under.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Qop {
    Auth,
    AuthInt,
}

/// The `response` value a client holding `ha1` sends for this request, as lowercase hex.
///
/// Uses `resp`'s nonce, uri, qop, nc and cnonce; ignores its `response`. `None` when a parameter
/// the computation needs is missing, the qop is neither `auth` nor `auth-int`, or `resp` names an
/// algorithm other than `ha1`'s. The load generator and tests use this as the client side.
pub fn compute_response(
    ha1: &Ha1,
    method: &[u8],
    resp: &DigestResponse<'_>,
    body: &[u8],
) -> Option<Hex> {
    compute_response_with(ha1, method, resp, body, &[])
}

/// H(A2) of `A2 = Method ":" digest-uri-value` computed ahead, for a request a registrar expects
/// often: every REGISTER a phone sends to its domain signs the same A2 (`REGISTER:sip:domain`),
/// so its hash need not be computed per request. Used when the method, the algorithm and the
/// digest-uri as received match exactly and the qop is `auth` or absent.
#[derive(Clone, Debug)]
pub struct KnownA2 {
    alg: Algorithm,
    method: Box<[u8]>,
    uri: Box<[u8]>,
    hex: Hex,
}

impl KnownA2 {
    pub fn new(alg: Algorithm, method: &[u8], uri: &[u8]) -> KnownA2 {
        let mut h = Input::new(alg);
        h.put(method).put(b":").put(uri);
        KnownA2 {
            alg,
            method: method.into(),
            uri: uri.into(),
            hex: Hex::encode(h.finish().get(..alg.raw_len()).unwrap_or_default()),
        }
    }
}

/// [`compute_response`] with H(A2) taken from `known` when one matches the request.
pub fn compute_response_with(
    ha1: &Ha1,
    method: &[u8],
    resp: &DigestResponse<'_>,
    body: &[u8],
    known: &[KnownA2],
) -> Option<Hex> {
    let raw = response(ha1, method, resp, body, known)?;
    Some(Hex::encode(raw.get(..ha1.alg.raw_len())?))
}

/// The raw digest behind [`compute_response_with`]: each hash input is written once into a
/// stack buffer and hashed in one call.
#[inline]
fn response(
    ha1: &Ha1,
    method: &[u8],
    resp: &DigestResponse<'_>,
    body: &[u8],
    known: &[KnownA2],
) -> Option<Raw> {
    if Algorithm::of(resp)? != ha1.alg {
        return None;
    }
    response_of_alg(ha1, method, resp, body, known)
}

/// [`response`] once `resp`'s algorithm is known to be `ha1`'s.
#[inline(always)]
fn response_of_alg(
    ha1: &Ha1,
    method: &[u8],
    resp: &DigestResponse<'_>,
    body: &[u8],
    known: &[KnownA2],
) -> Option<Raw> {
    let alg = ha1.alg;
    let nonce = resp.nonce?;
    let uri = resp.uri?;
    const AUTH: Folded = Folded::new(b"auth");
    const AUTH_INT: Folded = Folded::new(b"auth-int");
    let qop = match resp.qop {
        None => None,
        Some(q) if AUTH.matches(q) => Some(Qop::Auth),
        Some(q) if AUTH_INT.matches(q) => Some(Qop::AuthInt),
        Some(_) => return None,
    };

    // RFC 2617 3.2.2.3 (kept by RFC 7616 3.4.3): "If the "qop" directive's value is "auth" or is
    // unspecified, then A2 is: A2 = Method ":" digest-uri-value". "If the "qop" value is
    // "auth-int", then A2 is: A2 = Method ":" digest-uri-value ":" H(entity-body)".
    let precomputed = (qop != Some(Qop::AuthInt))
        .then(|| {
            known.iter().find(|k| {
                k.alg == alg && same_bytes(&k.method, method) && same_bytes(&k.uri, uri.0)
            })
        })
        .flatten();
    // Borrowed from `known` when it is there, not copied.
    let computed;
    let ha2 = match precomputed {
        Some(k) => &k.hex,
        None => {
            let mut a2 = Input::new(alg);
            a2.put(method).put(b":").put_quoted(uri);
            if qop == Some(Qop::AuthInt) {
                a2.put(b":").put_hex(hash(alg, body).get(..alg.raw_len())?);
            }
            computed = Hex::encode(a2.finish().get(..alg.raw_len())?);
            &computed
        }
    };

    if let (Algorithm::Md5, Some(_)) = (alg, qop) {
        let (nc, cnonce, qop_text) = (resp.nc?, resp.cnonce?, resp.qop?);
        if let Some(raw) = md5_kd(ha1, nonce, nc, cnonce, qop_text, ha2) {
            return Some(raw);
        }
    }
    let mut kd = Input::new(alg);
    ha1.put_into(&mut kd);
    kd.put(b":").put_quoted(nonce);
    if let Some(qop) = qop {
        // RFC 7616 3.4.1: response = KD(H(A1), unq(nonce) ":" nc ":" unq(cnonce) ":" unq(qop)
        // ":" H(A2)). The nc is 8LHEX on the wire; the parser kept its value, so write it back
        // the way RFC 2617 3.2.2 defines it: "8LHEX", lowercase.
        let nc = resp.nc?.to_be_bytes();
        let (cnonce, qop_text) = (resp.cnonce?, resp.qop?);
        kd.put(b":")
            .put_hex(&nc)
            .put(b":")
            .put_quoted(cnonce)
            .put(b":");
        // The qop as received (its case may differ), of a length known from which one it is.
        match (
            qop,
            qop_text.first_chunk::<4>(),
            qop_text.first_chunk::<8>(),
        ) {
            (Qop::Auth, Some(text), _) => kd.put(text),
            (Qop::AuthInt, _, Some(text)) => kd.put(text),
            _ => kd.put(qop_text),
        };
    }
    // Without qop, RFC 2617 3.2.2.1 keeps RFC 2069 compatibility:
    // request-digest = KD(H(A1), unq(nonce-value) ":" H(A2)).
    kd.put(b":").put_hex_text(ha2);
    Some(kd.finish())
}

/// The MD5 KD of a `qop` response, `HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2`, when it
/// fits two blocks: written straight into them (the stored HA1's digits and H(A2) as they are,
/// the nc as hex from word arithmetic, quoted values copied a word at a time while searched for
/// quoted-pairs), padded there and compressed, with no buffer
/// to clear or spill beyond the 128 bytes. The fixed parts are 77 bytes, so nonce, cnonce and
/// qop may take 42 together: our 28-character nonces leave room for a 10-character cnonce (see
/// `nonce`). `None` when the input is longer or a value holds a quoted-pair; [`Input`] then
/// computes the same digest.
#[inline(always)]
fn md5_kd(
    ha1: &Ha1,
    nonce: Quoted<'_>,
    nc: u32,
    cnonce: Quoted<'_>,
    qop: &[u8],
    ha2: &Hex,
) -> Option<Raw> {
    const BLOCKS: usize = 128;
    /// `bytes` at `*at`, which moves past them.
    #[inline(always)]
    fn put<const N: usize>(buf: &mut [u8; BLOCKS], at: &mut usize, bytes: &[u8; N]) -> Option<()> {
        buf.get_mut(*at..*at + N)?.copy_from_slice(bytes);
        *at += N;
        Some(())
    }
    /// `bytes` at `*at`, a word at a time; `None` if they hold a backslash (a quoted-pair, when
    /// they are the content of a quoted-string) or do not fit.
    #[inline(always)]
    fn put_plain(buf: &mut [u8; BLOCKS], at: &mut usize, bytes: &[u8]) -> Option<()> {
        let end = at.checked_add(bytes.len())?;
        if copy_finding_backslash(buf.get_mut(*at..end)?, bytes) {
            return None;
        }
        *at = end;
        Some(())
    }

    let len = 77 + nonce.0.len() + cnonce.0.len() + qop.len();
    if len > BLOCKS - md5_block::MIN_PAD || ha2.len != 32 {
        return None;
    }
    let (ha1, ha2) = (ha1.md5_hex()?, ha2.buf.first_chunk::<32>()?);
    let mut buf = [0u8; BLOCKS];
    let mut at = 0;
    put(&mut buf, &mut at, ha1)?;
    put(&mut buf, &mut at, b":")?;
    put_plain(&mut buf, &mut at, nonce.0)?;
    put(&mut buf, &mut at, b":")?;
    put(&mut buf, &mut at, &hex_word(nc.to_be_bytes()).to_le_bytes())?;
    put(&mut buf, &mut at, b":")?;
    put_plain(&mut buf, &mut at, cnonce.0)?;
    put(&mut buf, &mut at, b":")?;
    // `auth` or `auth-int` as received (`response` matched it, in some letter case): four or
    // eight bytes, copied at their fixed size.
    match (qop.first_chunk::<4>(), qop.first_chunk::<8>(), qop.len()) {
        (Some(q), _, 4) => put(&mut buf, &mut at, q)?,
        (_, Some(q), 8) => put(&mut buf, &mut at, q)?,
        _ => put_plain(&mut buf, &mut at, qop)?,
    }
    put(&mut buf, &mut at, b":")?;
    put(&mut buf, &mut at, ha2)?;
    // The rest of the buffer is still zero: MD5 pads in place (two blocks, `at` being over 55).
    let digest = md5_block::digest_in_place(&mut buf, at)?;
    let mut raw = [0; 32];
    raw[..16].copy_from_slice(&digest);
    Some(raw)
}

/// Whether `resp.response` is the digest a holder of `ha1` computes for this request.
///
/// `method` is the request method (`REGISTER`), `body` the message body (used for
/// `qop=auth-int` only). The hex digits may come in either case (some clients send uppercase);
/// the comparison with the expected value takes the same time wherever they differ. No heap.
///
/// A response without `qop` (RFC 2069 style) verifies if correct, but carries no nonce-count and
/// so no replay protection: a registrar that offers `qop` should refuse such responses.
pub fn verify(ha1: &Ha1, method: &[u8], resp: &DigestResponse<'_>, body: &[u8]) -> bool {
    verify_with(ha1, method, resp, body, &[])
}

/// [`verify`] with H(A2) taken from `known` when one matches (see [`KnownA2`]).
#[inline]
pub fn verify_with(
    ha1: &Ha1,
    method: &[u8],
    resp: &DigestResponse<'_>,
    body: &[u8],
    known: &[KnownA2],
) -> bool {
    matches_response(ha1, resp, response(ha1, method, resp, body, known))
}

/// [`verify_with`] for a caller that has found `resp`'s algorithm ([`Algorithm::of`]) to be
/// `alg` ([`super::UserDb`], which picked the HA1 by it): not derived from the text again.
#[inline]
pub(super) fn verify_with_alg(
    alg: Algorithm,
    ha1: &Ha1,
    method: &[u8],
    resp: &DigestResponse<'_>,
    body: &[u8],
    known: &[KnownA2],
) -> bool {
    if ha1.alg != alg {
        return false;
    }
    matches_response(ha1, resp, response_of_alg(ha1, method, resp, body, known))
}

/// Whether `resp.response` is the `expected` digest (`None`: it could not be computed).
#[inline(always)]
fn matches_response(ha1: &Ha1, resp: &DigestResponse<'_>, expected: Option<Raw>) -> bool {
    let (Some(got), Some(expected)) = (resp.response, expected) else {
        return false;
    };
    let raw = expected.get(..ha1.alg.raw_len()).unwrap_or_default();
    // The length is public (it follows from the algorithm), so returning early leaks nothing.
    if got.len() != raw.len() * 2 {
        return false;
    }
    hex_eq(got, raw)
}

/// Whether `text` is `raw` in hex, digits in either case, in time that depends on the length
/// only. Eight digits at a time: the expected ones encoded from `raw` (the secret), XORed with the
/// client's, the difference accumulated without an early exit. A letter's two cases differ in bit
/// 5 alone (0x20), so a difference of exactly 0x20 where the expected digit is a letter is
/// allowed, and any other difference is not: `A`-`F` for `a`-`f`, and nothing else.
/// Digests are 16 or 32 bytes, whole words; any other length takes [`hex_eq_pairs`].
#[inline(always)]
fn hex_eq(text: &[u8], raw: &[u8]) -> bool {
    let (texts, text_rest) = text.as_chunks::<8>();
    let (raws, raw_rest) = raw.as_chunks::<4>();
    if texts.len() != raws.len() || !text_rest.is_empty() || !raw_rest.is_empty() {
        return hex_eq_pairs(text, raw);
    }
    // One word's difference: the digits that do not match, but for a letter's case.
    let word_diff = |t: &[u8; 8], r: &[u8; 4]| {
        let (expected, letters) = hex_word_and_letters(*r);
        (u64::from_le_bytes(*t) ^ expected) & !(letters << 5)
    };
    let diff = match (texts, raws) {
        // MD5's four words written out: LLVM vectorises the loop below with SSE2, which has no
        // 64-bit multiply, at half as many instructions again.
        ([t0, t1, t2, t3], [r0, r1, r2, r3]) => {
            word_diff(t0, r0) | word_diff(t1, r1) | word_diff(t2, r2) | word_diff(t3, r3)
        }
        _ => texts
            .iter()
            .zip(raws)
            .fold(0u64, |acc, (t, r)| acc | word_diff(t, r)),
    };
    core::hint::black_box(diff) == 0
}

/// [`hex_eq`] a digit pair at a time, for lengths that are not whole words.
#[cold]
fn hex_eq_pairs(text: &[u8], raw: &[u8]) -> bool {
    if text.len() != raw.len() * 2 {
        return false;
    }
    let diff = text.chunks_exact(2).zip(raw).fold(0u8, |acc, (t, &r)| {
        let [hi, lo] = HEX_PAIRS[usize::from(r)];
        acc | (t.first().map_or(0, u8::to_ascii_lowercase) ^ hi)
            | (t.get(1).map_or(0, u8::to_ascii_lowercase) ^ lo)
    });
    core::hint::black_box(diff) == 0
}

/// Equality whose time depends on the length only, not on where the bytes differ.
///
/// `black_box` keeps the optimizer from turning the accumulated difference back into an early
/// exit; this is best effort, as in every pure-Rust constant-time comparison.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    core::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Credentials;

    fn digest(value: &[u8]) -> DigestResponse<'_> {
        match Credentials::parse(value) {
            Some(Credentials::Digest(d)) => d,
            other => panic!("not digest credentials: {other:?}"),
        }
    }

    /// A precomputed H(A2) gives the same answers as computing it, and is used only where it
    /// applies (same method, algorithm and uri; not auth-int).
    #[test]
    fn known_a2_changes_nothing() {
        let header = |qop: &str, uri: &str| {
            format!(
                "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"{uri}\", \
                 algorithm=MD5, qop={qop}, nc=00000001, cnonce=\"c\""
            )
        };
        let ha1 = Ha1::from_password(Algorithm::Md5, b"u", b"r", b"pw");
        let known = [
            KnownA2::new(Algorithm::Sha256, b"REGISTER", b"sip:r"),
            KnownA2::new(Algorithm::Md5, b"REGISTER", b"sip:r"),
        ];
        for (qop, uri) in [("auth", "sip:r"), ("auth-int", "sip:r"), ("auth", "sip:R")] {
            let text = header(qop, uri);
            let d = digest(text.as_bytes());
            for method in [&b"REGISTER"[..], b"OPTIONS"] {
                let plain = compute_response(&ha1, method, &d, b"body").unwrap();
                let fast = compute_response_with(&ha1, method, &d, b"body", &known).unwrap();
                assert_eq!(plain, fast, "{qop} {uri}");
                let resp = DigestResponse {
                    response: Some(plain.as_bytes()),
                    ..d
                };
                assert!(verify_with(&ha1, method, &resp, b"body", &known));
            }
        }
    }

    /// RFC 7616 3.9.1 (MD5 and SHA-256) and RFC 2617 3.5, byte for byte.
    #[test]
    fn rfc_examples() {
        let rfc7616 = |alg: &str, response: &str| {
            format!(
                "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
                 uri=\"/dir/index.html\", algorithm={alg}, \
                 nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
                 cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
                 response=\"{response}\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            )
        };
        let rfc2617 = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
                       nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
                       qop=auth, nc=00000001, cnonce=\"0a4f113b\", \
                       response=\"6629fae49393a05397450978507c4ef1\", \
                       opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
            .to_string();
        let cases: [(String, Algorithm, &str, &str, &str); 3] = [
            (
                rfc7616("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
                Algorithm::Md5,
                "http-auth@example.org",
                "Circle of Life",
                "8ca523f5e9506fed4657c9700eebdbec",
            ),
            (
                rfc7616(
                    "SHA-256",
                    "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
                ),
                Algorithm::Sha256,
                "http-auth@example.org",
                "Circle of Life",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            (
                rfc2617,
                Algorithm::Md5,
                "testrealm@host.com",
                "Circle Of Life",
                "6629fae49393a05397450978507c4ef1",
            ),
        ];
        for (header, alg, realm, password, response) in &cases {
            let d = digest(header.as_bytes());
            assert_eq!(Algorithm::of(&d), Some(*alg));
            let ha1 = Ha1::from_password(*alg, b"Mufasa", realm.as_bytes(), password.as_bytes());
            let computed = compute_response(&ha1, b"GET", &d, b"").unwrap();
            assert_eq!(computed.to_string(), *response, "{header}");
            assert!(verify(&ha1, b"GET", &d, b""), "{header}");
            // The same request under another method, or with the wrong password, fails.
            assert!(!verify(&ha1, b"POST", &d, b""));
            let wrong = Ha1::from_password(*alg, b"Mufasa", realm.as_bytes(), b"circle of life");
            assert!(!verify(&wrong, b"GET", &d, b""));
            // Uppercase hex from the client is accepted.
            let upper = header.replace(response, &response.to_ascii_uppercase());
            assert!(verify(&ha1, b"GET", &digest(upper.as_bytes()), b""));
        }
        // The RFC 2617 3.5 HA1 as it would sit in a credentials file.
        let ha1 = Ha1::from_password(
            Algorithm::Md5,
            b"Mufasa",
            b"testrealm@host.com",
            b"Circle Of Life",
        );
        assert_eq!(ha1.to_hex().to_string(), "939e7578ed9e3c518a452acee763bce9");
    }

    #[test]
    fn algorithm_tokens() {
        let cases: [(&[u8], Option<Algorithm>); 9] = [
            (b"MD5", Some(Algorithm::Md5)),
            (b"md5", Some(Algorithm::Md5)),
            (b"SHA-256", Some(Algorithm::Sha256)),
            (b"sha-256", Some(Algorithm::Sha256)),
            (b"SHA-512-256", Some(Algorithm::Sha512_256)),
            (b"MD5-sess", None),
            (b"SHA-256-sess", None),
            (b"SHA-512/256", None),
            (b"", None),
        ];
        for (token, want) in cases {
            assert_eq!(Algorithm::from_token(token), want, "{token:?}");
        }
        assert_eq!(
            Algorithm::of(&DigestResponse::default()),
            Some(Algorithm::Md5)
        );
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_token(alg.name().as_bytes()), Some(alg));
            assert_eq!(hash_hex(alg, b"").as_bytes().len(), alg.hex_len());
        }
        assert_eq!(Algorithm::Md5.hex_len(), 32);
        assert_eq!(Algorithm::Sha512_256.hex_len(), 64);
        // FIPS 180-4 SHA-512/256("abc"): the real truncated variant, not SHA-512 cut short.
        assert_eq!(
            hash_hex(Algorithm::Sha512_256, b"abc").to_string(),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
    }

    #[test]
    fn ha1_hex_round_trip() {
        for alg in Algorithm::ALL {
            let ha1 = Ha1::from_password(alg, b"alice", b"example.com", b"secret");
            let hex = ha1.to_hex();
            let back = Ha1::from_hex(alg, hex.as_bytes()).unwrap();
            assert_eq!(back.to_hex(), hex);
            let upper = hex.to_string().to_ascii_uppercase();
            assert_eq!(Ha1::from_hex(alg, upper.as_bytes()).unwrap().to_hex(), hex);
        }
        let bad: [(&[u8], Algorithm); 4] = [
            (b"939e7578ed9e3c518a452acee763bce", Algorithm::Md5),
            (b"939e7578ed9e3c518a452acee763bce9", Algorithm::Sha256),
            (b"939e7578ed9e3c518a452acee763bceg", Algorithm::Md5),
            (b"", Algorithm::Md5),
        ];
        for (hex, alg) in bad {
            assert!(Ha1::from_hex(alg, hex).is_none(), "{hex:?}");
        }
        let shown = format!("{:?}", Ha1::from_password(Algorithm::Md5, b"a", b"b", b"c"));
        assert_eq!(shown, "Ha1(MD5, <redacted>)");
    }

    #[test]
    fn sha512_256_round_trip() {
        let header = b"Digest username=\"alice\", realm=\"example.com\", uri=\"sip:example.com\", \
            algorithm=SHA-512-256, nonce=\"abc\", nc=0000002a, cnonce=\"xyz\", qop=auth, \
            response=\"00\"";
        let d = digest(header);
        let ha1 = Ha1::from_password(Algorithm::Sha512_256, b"alice", b"example.com", b"pw");
        let response = compute_response(&ha1, b"REGISTER", &d, b"").unwrap();
        assert_eq!(response.as_bytes().len(), 64);
        let good = DigestResponse {
            response: Some(response.as_bytes()),
            ..d
        };
        assert!(verify(&ha1, b"REGISTER", &good, b""));
        // A different nc, or an HA1 for another algorithm, does not verify.
        assert!(!verify(
            &ha1,
            b"REGISTER",
            &DigestResponse {
                nc: Some(43),
                ..good
            },
            b""
        ));
        let sha256 = Ha1::from_password(Algorithm::Sha256, b"alice", b"example.com", b"pw");
        assert!(!verify(&sha256, b"REGISTER", &good, b""));
    }

    /// auth-int and the RFC 2069 form, against the formulas written out with the hash directly.
    #[test]
    fn auth_int_and_no_qop() {
        let md5 = |s: &[u8]| hash_hex(Algorithm::Md5, s).to_string();
        let ha1 = Ha1::from_password(Algorithm::Md5, b"bob", b"example.com", b"pw");
        let ha1_hex = ha1.to_hex().to_string();
        let body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n";

        let ha2 = md5(format!("REGISTER:sip:example.com:{}", md5(body)).as_bytes());
        let want = md5(format!("{ha1_hex}:n1:0000000a:c1:auth-int:{ha2}").as_bytes());
        let header = format!(
            "Digest username=\"bob\", realm=\"example.com\", uri=\"sip:example.com\", \
             nonce=\"n1\", nc=0000000a, cnonce=\"c1\", qop=auth-int, response=\"{want}\""
        );
        let d = digest(header.as_bytes());
        assert!(verify(&ha1, b"REGISTER", &d, body));
        assert!(!verify(&ha1, b"REGISTER", &d, b"tampered"));
        assert!(!verify(&ha1, b"REGISTER", &d, b""));

        let ha2 = md5(b"REGISTER:sip:example.com");
        let want = md5(format!("{ha1_hex}:n1:{ha2}").as_bytes());
        let header = format!(
            "Digest username=\"bob\", realm=\"example.com\", uri=\"sip:example.com\", \
             nonce=\"n1\", response=\"{want}\""
        );
        assert!(verify(&ha1, b"REGISTER", &digest(header.as_bytes()), b""));
    }

    /// Quoted-pairs are resolved before hashing: `"a\"b"` hashes as `a"b`.
    #[test]
    fn quoted_pairs_hash_unescaped() {
        let ha1 = Ha1::from_password(Algorithm::Md5, b"bob", b"example.com", b"pw");
        let ha1_hex = ha1.to_hex().to_string();
        let md5 = |s: &[u8]| hash_hex(Algorithm::Md5, s).to_string();
        let ha2 = md5(b"REGISTER:sip:example.com");
        let want = md5(format!("{ha1_hex}:n\"1:00000001:c\\1:auth:{ha2}").as_bytes());
        let header = format!(
            "Digest username=\"bob\", realm=\"example.com\", uri=\"sip:example.com\", \
             nonce=\"n\\\"1\", nc=00000001, cnonce=\"c\\\\1\", qop=auth, response=\"{want}\""
        );
        assert!(verify(&ha1, b"REGISTER", &digest(header.as_bytes()), b""));
    }

    /// Quoted-pairs anywhere in a nonce or cnonce of every length up to a few words: the copy
    /// made before the backslash is found is undone, and the digest is that of the unescaped
    /// text, for every algorithm (MD5 pads in place over the bytes that copy touched).
    #[test]
    fn quoted_pairs_at_every_position() {
        for alg in Algorithm::ALL {
            let h = |s: &[u8]| hash_hex(alg, s).to_string();
            let ha1 = Ha1::from_password(alg, b"bob", b"example.com", b"pw");
            let ha2 = h(b"REGISTER:sip:example.com");
            for len in 1..40 {
                for at in 0..len {
                    let mut escaped = "x".repeat(len);
                    escaped.replace_range(at..at + 1, "\\\"");
                    let plain = escaped.replace("\\\"", "\"");
                    let want = h(
                        format!("{}:{plain}:00000001:{plain}:auth:{ha2}", ha1.to_hex()).as_bytes(),
                    );
                    let header = format!(
                        "Digest username=\"bob\", realm=\"example.com\", uri=\"sip:example.com\", \
                         algorithm={alg}, nonce=\"{escaped}\", nc=00000001, cnonce=\"{escaped}\", \
                         qop=auth, response=\"{want}\""
                    );
                    assert!(
                        verify(&ha1, b"REGISTER", &digest(header.as_bytes()), b""),
                        "{alg} {len} {at}"
                    );
                }
            }
        }
    }

    /// The word-at-a-time copy against `copy_from_slice` and `contains`.
    #[test]
    fn copy_finding_backslash_agrees() {
        for len in 0..40 {
            let clean: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut cases = vec![clean.clone()];
            for at in 0..len {
                let mut v = clean.clone();
                v[at] = b'\\';
                cases.push(v);
            }
            for src in cases {
                let mut dst = vec![0u8; len];
                let found = copy_finding_backslash(&mut dst, &src);
                assert_eq!(dst, src);
                assert_eq!(found, src.contains(&b'\\'), "{src:?}");
            }
        }
    }

    /// Algorithm and qop names against `eq_ignore_ascii_case`: every spelling in any letter
    /// case, and every single-byte change of each (the bytes that fold onto a letter or onto
    /// `-` and the digits among them).
    #[test]
    fn folded_names_agree_with_eq_ignore_ascii_case() {
        let names: [&[u8]; 5] = [b"MD5", b"SHA-256", b"SHA-512-256", b"auth", b"auth-int"];
        let matches = |name: &[u8], text: &[u8]| match name.len() {
            11 => Algorithm::from_token(text) == Some(Algorithm::Sha512_256),
            _ => Folded::new(name).matches(text),
        };
        for name in names {
            // Every letter-case combination.
            let letters: Vec<usize> = (0..name.len())
                .filter(|&i| name[i].is_ascii_alphabetic())
                .collect();
            for mask in 0..1u32 << letters.len() {
                let mut text = name.to_vec();
                for (bit, &i) in letters.iter().enumerate() {
                    if mask & 1 << bit != 0 {
                        text[i] = text[i].to_ascii_lowercase();
                    }
                }
                assert!(matches(name, &text), "{:?}", String::from_utf8_lossy(&text));
            }
            // Every byte value at every position.
            for at in 0..name.len() {
                for b in 0..=255u8 {
                    let mut text = name.to_vec();
                    text[at] = b;
                    assert_eq!(
                        matches(name, &text),
                        text.eq_ignore_ascii_case(name),
                        "{name:?} with {b:#x} at {at}"
                    );
                }
            }
            // Shorter and longer.
            assert!(!matches(name, &name[..name.len() - 1]));
            assert!(!matches(name, &[name, b"x"].concat()));
        }
        for (token, alg) in [
            (&b"md5"[..], Algorithm::Md5),
            (b"sha-256", Algorithm::Sha256),
            (b"Sha-512-256", Algorithm::Sha512_256),
        ] {
            assert_eq!(Algorithm::from_token(token), Some(alg));
        }
        // Same lengths, other names.
        for token in [
            &b"SHA"[..],
            b"MD5-ses",
            b"SHA-256-ses",
            b"SHA-512/256",
            b"SHA_256",
        ] {
            assert_eq!(Algorithm::from_token(token), None, "{token:?}");
        }
    }

    /// The word helpers against their byte-at-a-time definitions, every byte value in every
    /// position of the word.
    #[test]
    fn word_helpers_agree_with_bytes() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut bytes = *b"0aZ9-fA_";
                bytes[at] = b;
                let lower = lowercase_word(u64::from_le_bytes(bytes)).to_le_bytes();
                assert_eq!(
                    lower,
                    bytes.map(|c| c.to_ascii_lowercase()),
                    "{b:#x} at {at}"
                );
            }
            for at in 0..4 {
                let mut raw = [0x00, 0x9f, 0xa0, 0xff];
                raw[at] = b;
                let text: String = raw.iter().map(|r| format!("{r:02x}")).collect();
                assert_eq!(
                    &hex_word(raw).to_le_bytes(),
                    text.as_bytes(),
                    "{b:#x} at {at}"
                );
            }
        }
        for len in 0..12 {
            let bytes: Vec<u8> = (1..=len as u8).collect();
            let want = bytes.iter().rev().fold(0u64, |w, &b| w << 8 | u64::from(b));
            assert_eq!(load_le(&bytes), want & low_bytes(len), "{len}");
        }
    }

    fn low_bytes(n: usize) -> u64 {
        if n >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * n)) - 1
        }
    }

    /// The response comparison against lowercasing and comparing bytes: equal, one digit off,
    /// either case, and the bytes that OR 0x20 would wrongly fold onto a digit or a letter.
    #[test]
    fn hex_eq_agrees_with_bytes() {
        let raw: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        for len in [16, 32, 1, 3, 5, 18] {
            let raw = &raw[..len];
            let good: Vec<u8> = raw
                .iter()
                .flat_map(|b| format!("{b:02x}").into_bytes())
                .collect();
            assert!(hex_eq(&good, raw));
            assert!(hex_eq(&good.to_ascii_uppercase(), raw));
            for at in 0..good.len() {
                for b in 0..=255u8 {
                    let mut text = good.clone();
                    text[at] = b;
                    let want = text.to_ascii_lowercase() == good;
                    assert_eq!(hex_eq(&text, raw), want, "{b:#x} at {at}");
                }
            }
        }
    }

    /// The two-block MD5 path against the md-5 crate over the KD string written out: nonce and
    /// cnonce lengths across the 119-byte limit, with and without quoted-pairs, both qops, known
    /// and computed H(A2).
    #[test]
    fn two_block_kd_agrees_with_the_crate() {
        use md5::Digest as _;
        let ha1 = Ha1::from_password(Algorithm::Md5, b"u", b"r", b"pw");
        let known = [KnownA2::new(Algorithm::Md5, b"REGISTER", b"sip:r")];
        let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let unescape = |q: &str| q.replace("\\x", "x");
        for nonce_len in 0..48 {
            for cnonce_len in [0, 1, 7, 8, 9, 10, 15, 16, 17] {
                for escaped in [false, true] {
                    for qop in ["auth", "AUTH", "auth-int"] {
                        let mut nonce = "n".repeat(nonce_len);
                        if escaped && nonce_len > 0 {
                            nonce.replace_range(..1, "\\x");
                        }
                        let cnonce = "c".repeat(cnonce_len);
                        let header = format!(
                            "Digest username=\"u\", realm=\"r\", nonce=\"{nonce}\", \
                             uri=\"sip:r\", qop={qop}, nc=0000ABCD, cnonce=\"{cnonce}\""
                        );
                        let d = digest(header.as_bytes());
                        let ha2 = if qop == "auth-int" {
                            let body = hex(&md5::Md5::digest(b"body"));
                            hex(&md5::Md5::digest(format!("REGISTER:sip:r:{body}")))
                        } else {
                            hex(&md5::Md5::digest(b"REGISTER:sip:r"))
                        };
                        let kd = format!(
                            "{}:{}:0000abcd:{cnonce}:{qop}:{ha2}",
                            ha1.to_hex(),
                            unescape(&nonce)
                        );
                        let want = hex(&md5::Md5::digest(kd.as_bytes()));
                        for k in [&known[..], &[]] {
                            let got = compute_response_with(&ha1, b"REGISTER", &d, b"body", k);
                            assert_eq!(got.unwrap().to_string(), want, "{header}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn incomplete_responses_fail() {
        let ha1 = Ha1::from_password(Algorithm::Md5, b"bob", b"example.com", b"pw");
        let full = b"Digest username=\"bob\", realm=\"example.com\", uri=\"sip:example.com\", \
            nonce=\"n1\", nc=00000001, cnonce=\"c1\", qop=auth, \
            response=\"00000000000000000000000000000000\"";
        let d = digest(full);
        // (what is wrong, the response, whether the expected digest can still be computed)
        let cases: [(&str, DigestResponse<'_>, bool); 8] = [
            (
                "no response",
                DigestResponse {
                    response: None,
                    ..d
                },
                true,
            ),
            (
                "short response",
                DigestResponse {
                    response: Some(b"00"),
                    ..d
                },
                true,
            ),
            ("no nonce", DigestResponse { nonce: None, ..d }, false),
            ("no uri", DigestResponse { uri: None, ..d }, false),
            ("qop without nc", DigestResponse { nc: None, ..d }, false),
            (
                "qop without cnonce",
                DigestResponse { cnonce: None, ..d },
                false,
            ),
            (
                "unknown qop",
                DigestResponse {
                    qop: Some(b"auth-conf"),
                    ..d
                },
                false,
            ),
            (
                "sess",
                DigestResponse {
                    algorithm: Some(b"MD5-sess"),
                    ..d
                },
                false,
            ),
        ];
        for (name, case, computable) in cases {
            let computed = compute_response(&ha1, b"REGISTER", &case, b"");
            assert_eq!(computed.is_some(), computable, "{name}");
            assert!(!verify(&ha1, b"REGISTER", &case, b""), "{name}");
        }
    }

    /// The hex tables against `format!`: every byte encodes as `{:02x}`, decodes back from
    /// either case, and every other byte is refused.
    #[test]
    fn hex_tables() {
        for b in 0..=255u8 {
            let text = format!("{b:02x}");
            assert_eq!(HEX_PAIRS[usize::from(b)], text.as_bytes());
            for digits in [text.clone(), text.to_ascii_uppercase()] {
                let mut out = [0u8];
                assert_eq!(
                    decode_hex(digits.as_bytes(), &mut out),
                    Some(()),
                    "{digits}"
                );
                assert_eq!(out[0], b);
            }
            let mut out = [0u8];
            let valid = b.is_ascii_hexdigit();
            assert_eq!(decode_hex(&[b, b'0'], &mut out).is_some(), valid, "{b:#x}");
            assert_eq!(decode_hex(&[b'0', b], &mut out).is_some(), valid, "{b:#x}");
        }
        let mut out = [0u8; 2];
        assert!(decode_hex(b"abc", &mut out).is_none());
        assert!(decode_hex(b"abcdef", &mut out).is_none());
        assert_eq!(Hex::encode(&[0x01, 0xab]).to_string(), "01ab");
    }

    /// Inputs longer than the stack buffer, or put in many pieces, hash exactly like the same
    /// bytes given to the hash at once.
    #[test]
    fn input_spills_to_the_same_digest() {
        let data: Vec<u8> = (0..2000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for alg in Algorithm::ALL {
            // 375 and 376: the longest input MD5 still pads inside the buffer, and the shortest
            // it does not.
            for len in [
                0, 1, 55, 56, 63, 64, 119, 120, 375, 376, 383, 384, 385, 447, 448, 449, 1000, 2000,
            ] {
                let whole = &data[..len];
                let want = hash(alg, whole);
                for piece in [1, 7, 64, 383, 384, 385, 2000] {
                    let mut input = Input::new(alg);
                    for chunk in whole.chunks(piece) {
                        input.put(chunk);
                    }
                    assert!(input.finish() == want, "{alg} {len} in pieces of {piece}");
                }
                // Hex pieces past the end of the buffer too.
                let mut input = Input::new(alg);
                input.put(whole).put_hex(&[0xab; 32]);
                let mut text = whole.to_vec();
                text.extend_from_slice(&[b'a', b'b'].repeat(32));
                assert!(input.finish() == hash(alg, &text), "{alg} {len} then hex");
            }
        }
    }

    /// A client's nonce and cnonce far longer than the stack buffer, with quoted-pairs, give the
    /// digest of the formula written out.
    #[test]
    fn long_values_verify() {
        for alg in Algorithm::ALL {
            let h = |s: &[u8]| hash_hex(alg, s).to_string();
            let ha1 = Ha1::from_password(alg, b"bob", b"example.com", b"pw");
            let nonce = "n".repeat(500);
            let cnonce = "c\\\"".repeat(400);
            let ha2 = h(b"REGISTER:sip:example.com");
            let want = h(format!(
                "{}:{nonce}:00000001:{}:auth:{ha2}",
                ha1.to_hex(),
                "c\"".repeat(400)
            )
            .as_bytes());
            let header = format!(
                "Digest username=\"bob\", realm=\"example.com\", uri=\"sip:example.com\", \
                 algorithm={alg}, nonce=\"{nonce}\", nc=00000001, cnonce=\"{cnonce}\", \
                 qop=auth, response=\"{want}\""
            );
            assert!(
                verify(&ha1, b"REGISTER", &digest(header.as_bytes()), b""),
                "{alg}"
            );
        }
    }

    #[test]
    fn constant_time_eq() {
        let cases: [(&[u8], &[u8], bool); 5] = [
            (b"", b"", true),
            (b"abc", b"abc", true),
            (b"abc", b"abd", false),
            (b"abc", b"ab", false),
            (b"\x00", b"\x80", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(ct_eq(a, b), want, "{a:?} {b:?}");
        }
    }
}
