//! Stateless nonces: issued and checked with a keyed hash, no table of outstanding challenges.
//!
//! What it does: [`NonceKeys::issue`] writes a nonce that carries its own issue time and a tag;
//! [`NonceKeys::check`] tells a genuine fresh nonce from a stale one and from anything else,
//! using only the keys and `now`. Two keys are live at a time so that rotating the secret does
//! not break challenges already in flight. It also derives the `opaque` value.
//!
//! What it does not do: read a clock or a random source (time and secrets are arguments), or
//! detect replays (a nonce is meant to be reused with increasing nonce-counts; that is
//! [`super::nc::NcTracker`]'s job).
//!
//! # Layout
//!
//! 21 bytes, written as 28 base64url characters (no padding: 21 is a multiple of 3):
//!
//! ```text
//! issued: u32 BE | key id: u8 | seq: u32 BE | tag: 12 bytes
//! tag     = SipHash-2-4-128(tag key, issued | seq | realm)[..12]
//! tag key = HMAC-SHA256(secret, 0x01 | "sipreg nonce tag key" | key id)[..16], once per key
//! ```
//!
//! SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012) is a pseudorandom
//! function with a 128-bit key, built for short inputs: a tag over an 11-byte realm is fourteen
//! rounds of 64-bit additions, rotations and xors (about 270 instructions), where an HMAC-SHA256
//! tag is two SHA-256 compressions (about 7,000 instructions without SHA extensions). It is
//! implemented below with the reference implementation's 128-bit output and checked against
//! that implementation's test vectors.
//!
//! Why 28 characters: for qop=auth the MD5 digest hashes `HA1:nonce:nc:cnonce:auth:HA2`, 89
//! bytes plus the nonce and the cnonce, and MD5 pads a message by at least 9 bytes. With a nonce
//! of at most 30 characters and an 8-character cnonce that is two 64-byte blocks instead of
//! three; 28 characters leave room for a 10-character cnonce.
//!
//! What the tag covers, and why:
//! - `issued`: the age of a nonce is what makes it stale; were it not covered, a client (or an
//!   attacker replaying a captured request) could rejuvenate an old nonce.
//! - `key id`: not hashed, but bound all the same: each key id has its own tag key, so a nonce
//!   relabelled with another id is checked under a key its tag was not made with. (Leaving it
//!   out of the hashed bytes keeps `issued | seq` to one 64-bit word.)
//! - `seq`: tells apart nonces issued in the same second. Each challenge gets its own nonce and
//!   so its own nonce-count sequence. It names the issuer (10 bits: a worker, up to 1024) and
//!   counts (22 bits, wrapping every 4,194,304 nonces, more than one worker issues in a
//!   second); see [`NonceKeys::issue`]. It need not be secret or random: unforgeability comes
//!   from the tag, not from `seq`.
//! - `realm`: a nonce issued for one realm (one domain, one tenant) is not accepted in another.
//! - `issued | seq` is one 64-bit word before the realm, so the realm is hashed a word at a
//!   time; that head's length is fixed, so the encoding stays unambiguous.
//!
//! The tag key serves nothing else. The `opaque` value is an HMAC-SHA256 under the secret whose
//! input starts with 0x02 where the tag key's starts with 0x01, so neither tells anything about
//! the other.
//!
//! Not covered: the client's address (NAT rebinding and UDP/TCP switches change it between a
//! challenge and the answer, and pre-emptive credentials on refresh would fail), and the method
//! or URI (one nonce serves a series of REGISTER refreshes).
//!
//! `issued` holds the low 32 bits of the issue time in seconds. A check reads it as the time
//! nearest `now` with those low bits (serial number arithmetic, as in RFC 1982), so nonces go
//! on working after 2106, when seconds since 1970 outgrow 32 bits. The price: ages are told
//! apart only within 2^31 seconds (68 years) either way, so a lifetime longer than that acts as
//! 68 years.
//!
//! The 96-bit tag makes a forgery an online guess with probability 2^-96 per request (finding
//! the 128-bit tag key takes about 2^128 work). Its first eight bytes are the nonce's identity
//! for nonce-count tracking ([`NonceCheck::Fresh`] `id`): unforgeable, and, since nonces with
//! different fields hash different inputs, distinct among n nonces except with probability
//! about n^2 / 2^65 (a million live nonces: 3 x 10^-8). Two nonces are the same only if issued
//! in the same second for the same realm under the same key with the same `seq`.

use core::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::base64url;
use super::digest::ct_eq;

type HmacSha256 = Hmac<Sha256>;

/// Characters in a nonce.
pub const NONCE_LEN: usize = base64url::encoded_len(RAW_LEN);
/// Characters in an opaque value.
pub const OPAQUE_LEN: usize = base64url::encoded_len(OPAQUE_RAW_LEN);
/// How far in the future (seconds) a nonce's issue time may lie and still be accepted: room for
/// clock differences between the nodes or workers that share the keys.
pub const MAX_SKEW: u64 = 5;

/// Issue time, key id and seq: the bytes before the tag.
const FIELDS_LEN: usize = 9;
const TAG_LEN: usize = 12;
const RAW_LEN: usize = FIELDS_LEN + TAG_LEN;
const OPAQUE_RAW_LEN: usize = 18;
const DOMAIN_NONCE: u8 = 0x01;
const DOMAIN_OPAQUE: u8 = 0x02;
const TAG_KEY_LABEL: &[u8] = b"sipreg nonce tag key";
/// The caller's `seq` names the issuer from this bit on ([`NonceKeys::issue`]).
const ISSUER_SHIFT: u32 = 48;
/// Bits of the carried seq that name the issuer; the rest count.
const ISSUER_BITS: u32 = 10;
const COUNTER_BITS: u32 = 32 - ISSUER_BITS;

/// A nonce as written in a challenge: 28 printable characters, no heap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce([u8; NONCE_LEN]);

impl Nonce {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Written by the base64url encoder: always ASCII, so the fallback is never taken.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The `opaque` value for a realm: 24 printable characters.
///
/// A fixed token per (key, realm): `base64url(HMAC-SHA256(key, 0x02 | realm)[..18])`. It holds no
/// state (the nonce holds everything); it exists because clients expect one, and deriving it
/// from the key makes it the same on every worker and node without coordination, and lets
/// [`NonceKeys::opaque_matches`] recognize it. It changes when the key rotates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Opaque([u8; OPAQUE_LEN]);

impl Opaque {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Written by the base64url encoder: always ASCII.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

macro_rules! token_fmt {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.as_str())
            }
        }
    };
}
token_fmt!(Nonce);
token_fmt!(Opaque);

/// What a received nonce is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, for this realm, and young enough. `id` identifies it for nonce-count tracking.
    Fresh { issued: u64, id: u64 },
    /// Ours and for this realm, but older than the lifetime. Verify the digest anyway: if it is
    /// right, challenge again with `stale=true` so the client retries with the same password and
    /// a new nonce; if not, challenge without it. RFC 2617 3.2.1: "The server should only set
    /// stale to TRUE if it receives a request for which the nonce is invalid but with a valid
    /// digest for that nonce (indicating that the client knows the correct username/password)."
    Stale,
    /// Not a nonce we issued for this realm under a live key (bad encoding, bad tag, unknown key,
    /// wrong realm) or issued further in the future than [`MAX_SKEW`]: a fresh challenge without
    /// `stale`.
    Invalid,
}

struct Key {
    id: u8,
    /// Keys the nonce tags; derived from the secret once.
    tag_key: sip::Key,
    /// Keyed with the secret once, for the opaque value; cloning the state skips re-deriving
    /// the pads.
    mac: HmacSha256,
}

impl Key {
    fn new(id: u8, secret: &[u8; 32]) -> Key {
        // HMAC takes keys of any length (long ones are hashed), so this never fails.
        let mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
        let mut derive = mac.clone();
        derive.update(&[DOMAIN_NONCE]);
        derive.update(TAG_KEY_LABEL);
        derive.update(&[id]);
        let okm = derive.finalize().into_bytes();
        let mut tag_key = [0u8; 16];
        tag_key.iter_mut().zip(okm).for_each(|(k, o)| *k = o);
        Key {
            id,
            tag_key: sip::Key::new(&tag_key),
            mac,
        }
    }

    /// The tag of a nonce, as bytes: the layout's reference (see [`Key::tag_words`]).
    #[cfg(test)]
    fn tag(&self, issued: u32, seq: u32, realm: &[u8]) -> [u8; TAG_LEN] {
        let [a, b, c, d] = issued.to_be_bytes();
        let [e, f, g, h] = seq.to_be_bytes();
        let full = sip::hash128(&self.tag_key, &[[a, b, c, d, e, f, g, h]], realm);
        let mut tag = [0u8; TAG_LEN];
        tag.iter_mut().zip(full).for_each(|(t, f)| *t = f);
        tag
    }

    /// The tag of a nonce as the layout's big-endian numbers: its first eight bytes (the
    /// nonce's identity) and its last four. `issued | seq` is the hash's first word, read
    /// little-endian as SipHash reads its bytes, and the hash's two output words are the tag's
    /// bytes in little-endian order, so no byte is laid out in memory.
    #[inline(always)]
    fn tag_words(&self, issued: u32, seq: u32, realm: &[u8]) -> (u64, u32) {
        let head = u64::from(issued.swap_bytes()) | u64::from(seq.swap_bytes()) << 32;
        let (low, high) = sip::hash128_word(&self.tag_key, head, realm);
        (low.swap_bytes(), (high as u32).swap_bytes())
    }

    /// The identity of the nonce with these fields when `text` is its tag's text under this
    /// key, else `None`.
    #[inline(never)]
    fn tag_of(&self, issued: u32, seq: u32, realm: &[u8], text: &[u8; 16]) -> Option<u64> {
        let (id, rest) = self.tag_words(issued, seq, realm);
        let groups = [
            (id >> 40) as u32,
            (id >> 16) as u32,
            (id << 8) as u32 | rest >> 24,
            rest,
        ];
        let mut expected = [0u8; 16];
        base64url::encode_groups(&groups, &mut expected);
        same_16(&expected, text).then_some(id)
    }

    fn opaque(&self, realm: &[u8]) -> [u8; OPAQUE_RAW_LEN] {
        let mut mac = self.mac.clone();
        mac.update(&[DOMAIN_OPAQUE]);
        mac.update(realm);
        let tag = mac.finalize().into_bytes();
        let mut raw = [0; OPAQUE_RAW_LEN];
        raw.iter_mut().zip(tag).for_each(|(r, t)| *r = t);
        raw
    }
}

/// The current nonce key and the one before it.
///
/// Secrets are 32 bytes the caller draws from a random source (the core never reads one). To
/// rotate, call [`NonceKeys::rotate`] with a new secret: nonces signed with the previous key keep
/// verifying, and those signed with the key before that become [`NonceCheck::Invalid`]. Rotate
/// no more often than the nonce lifetime, or live challenges are cut short. Workers and nodes
/// that answer for each other's nonces must hold the same keys with the same ids.
pub struct NonceKeys {
    current: Key,
    previous: Option<Key>,
}

impl NonceKeys {
    pub fn new(id: u8, secret: &[u8; 32]) -> NonceKeys {
        NonceKeys {
            current: Key::new(id, secret),
            previous: None,
        }
    }

    /// Restores the previous key too (after a restart, from wherever the keys are kept).
    pub fn with_previous(mut self, id: u8, secret: &[u8; 32]) -> NonceKeys {
        self.previous = Some(Key::new(id, secret));
        self
    }

    /// Makes `secret` the current key, with the next id; the current key becomes the previous.
    pub fn rotate(&mut self, secret: &[u8; 32]) {
        let next = Key::new(self.current.id.wrapping_add(1), secret);
        self.previous = Some(core::mem::replace(&mut self.current, next));
    }

    pub fn current_id(&self) -> u8 {
        self.current.id
    }

    /// A new nonce for `realm`, issued at `now` (seconds). `seq` makes nonces issued in the same
    /// second distinct; the nonce carries 32 bits of it: bits 48 to 57 name the issuer (one of
    /// up to 1024 workers sharing the keys: worker `i` starts from `i << 48`), above bits 0 to
    /// 21, a counter the caller increments for each nonce. The bits in between are dropped, so
    /// the counter wraps every 4,194,304 nonces without reaching the issuer's bits; two nonces
    /// of one second differ when their issuers or their counters do.
    pub fn issue(&self, now: u64, realm: &[u8], seq: u64) -> Nonce {
        // The low 32 bits of the time; `check` restores the rest from its own `now`.
        let (issued, seq) = (now as u32, carried_seq(seq));
        let (id, rest) = self.current.tag_words(issued, seq, realm);
        // The seven 24-bit groups of `issued | key id | seq | tag` (see `check`), encoded
        // without laying the 21 bytes out first; the `as u32` keep the low bits.
        let groups = [
            issued >> 8,
            issued << 16 | u32::from(self.current.id) << 8 | seq >> 24,
            seq,
            (id >> 40) as u32,
            (id >> 16) as u32,
            (id << 8) as u32 | rest >> 24,
            rest,
        ];
        let mut text = [0u8; NONCE_LEN];
        base64url::encode_groups(&groups, &mut text);
        Nonce(text)
    }

    /// What `nonce` (the unquoted parameter as received) is, for `realm` at `now`.
    ///
    /// The tag is verified before the time is looked at, so a forged token is always `Invalid`,
    /// never `Stale`: `stale=true` tells a client to retry silently, which only a holder of a
    /// genuine nonce deserves. A nonce exactly `lifetime` seconds old is still fresh.
    ///
    /// Only the fields are decoded: the first three groups of four characters,
    ///
    /// ```text
    /// group 0: issued[0..3]
    /// group 1: issued[3], key id, seq[0]
    /// group 2: seq[1..4]
    /// groups 3 to 6: tag[0..3], tag[3..6], tag[6..9], tag[9..12]
    /// ```
    ///
    /// The tag they call for is then encoded and compared with the last sixteen characters:
    /// base64url without padding has one spelling for each byte string, so the text is the
    /// tag's exactly when its bytes are, and a character outside the alphabet never matches.
    pub fn check(&self, nonce: &[u8], now: u64, realm: &[u8], lifetime: u64) -> NonceCheck {
        const { assert!(NONCE_LEN == 28 && RAW_LEN == 21 && FIELDS_LEN == 9) };
        let Some((fields, tag_text)) = nonce
            .split_first_chunk::<12>()
            .and_then(|(fields, rest)| Some((fields, rest.first_chunk::<16>()?)))
            .filter(|_| nonce.len() == NONCE_LEN)
        else {
            return NonceCheck::Invalid;
        };
        let Some([g0, g1, g2]) = base64url::decode_groups::<3>(fields) else {
            return NonceCheck::Invalid;
        };
        // The shifts drop the bits that belong to the fields before.
        let (low_issued, key_id, seq) = (g0 << 8 | g1 >> 16, (g1 >> 8) as u8, g1 << 24 | g2);
        // Under each live key with the nonce's id (two only if both keys were given one id).
        let mut genuine = None;
        if self.current.id == key_id {
            genuine = self.current.tag_of(low_issued, seq, realm, tag_text);
        }
        if let Some(previous) = self.previous.as_ref().filter(|k| k.id == key_id) {
            genuine = genuine.or(previous.tag_of(low_issued, seq, realm, tag_text));
        }
        let Some(id) = genuine else {
            return NonceCheck::Invalid;
        };
        let Some(issued) = issued_at(low_issued, now) else {
            return NonceCheck::Invalid;
        };
        if issued > now.saturating_add(MAX_SKEW) {
            return NonceCheck::Invalid;
        }
        if now.saturating_sub(issued) > lifetime {
            return NonceCheck::Stale;
        }
        NonceCheck::Fresh { issued, id }
    }

    /// The opaque value to put in challenges for `realm` (see [`Opaque`]).
    pub fn opaque(&self, realm: &[u8]) -> Opaque {
        let mut text = [0u8; OPAQUE_LEN];
        // OPAQUE_LEN is encoded_len(OPAQUE_RAW_LEN), so the buffer always fits.
        let _ = base64url::encode(&self.current.opaque(realm), &mut text);
        Opaque(text)
    }

    /// Whether `opaque` is the value this realm's current or previous key gives. Optional: the
    /// nonce carries all the state, so a registrar may ignore the opaque a client echoes.
    pub fn opaque_matches(&self, realm: &[u8], opaque: &[u8]) -> bool {
        let mut raw = [0u8; OPAQUE_RAW_LEN];
        if opaque.len() != OPAQUE_LEN || base64url::decode(opaque, &mut raw).is_none() {
            return false;
        }
        let mut ok = false;
        for key in self.keys() {
            ok |= ct_eq(&key.opaque(realm), &raw);
        }
        ok
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        core::iter::once(&self.current).chain(self.previous.as_ref())
    }
}

impl fmt::Debug for NonceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ids only: the secrets never reach a log.
        f.debug_struct("NonceKeys")
            .field("current", &self.current.id)
            .field("previous", &self.previous.as_ref().map(|k| k.id))
            .finish()
    }
}

/// The 32 bits of the caller's `seq` a nonce carries: the issuer over the counter (see
/// [`NonceKeys::issue`]).
fn carried_seq(seq: u64) -> u32 {
    let issuer = (seq >> ISSUER_SHIFT) as u32 & ((1 << ISSUER_BITS) - 1);
    let counter = seq as u32 & ((1 << COUNTER_BITS) - 1);
    issuer << COUNTER_BITS | counter
}

/// The issue time whose low 32 bits are `low`, as seen at `now`: the one nearest `now`, up to
/// 2^31 seconds behind or ahead. `None` if that lies before 0 or past `u64::MAX`: not a time
/// this module ever issued at.
fn issued_at(low: u32, now: u64) -> Option<u64> {
    // Truncating `now` is the point: only the low 32 bits are compared.
    let behind = (now as u32).wrapping_sub(low) as i32;
    now.checked_add_signed(-i64::from(behind))
}

/// Whether `a` and `b` are the same, in time that does not depend on where they differ.
#[inline(always)]
fn same_16(a: &[u8; 16], b: &[u8; 16]) -> bool {
    let word = |s: &[u8; 16], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let diff = (word(a, 0) ^ word(b, 0)) | (word(a, 8) ^ word(b, 8));
    core::hint::black_box(diff) == 0
}

/// A nonce decoded whole, the documented layout's reference for the tests.
#[cfg(test)]
struct Fields {
    issued: u32,
    key_id: u8,
    seq: u32,
    /// The tag's first eight bytes, big-endian: also the nonce's identity.
    id: u64,
    /// The tag's last four bytes, big-endian.
    tag_rest: u32,
}

#[cfg(test)]
impl Fields {
    /// The fields of a nonce's text, straight from the seven 24-bit groups its 28 characters
    /// decode to (the 21 bytes are never laid out in memory):
    ///
    /// ```text
    /// group 0: issued[0..3]
    /// group 1: issued[3], key id, seq[0]
    /// group 2: seq[1..4]
    /// groups 3 to 6: tag[0..3], tag[3..6], tag[6..9], tag[9..12]
    /// ```
    fn decode(text: &[u8]) -> Option<Fields> {
        const { assert!(NONCE_LEN == 28 && RAW_LEN == 21 && FIELDS_LEN == 9) };
        let [g0, g1, g2, g3, g4, g5, g6] = base64url::decode_groups::<7>(text)?;
        Some(Fields {
            issued: g0 << 8 | g1 >> 16,
            key_id: (g1 >> 8) as u8,
            // The shifts drop the bits that belong to the fields before.
            seq: g1 << 24 | g2,
            id: u64::from(g3) << 40 | u64::from(g4) << 16 | u64::from(g5 >> 8),
            tag_rest: g5 << 24 | g6,
        })
    }

    /// Whether `tag` is this nonce's tag, in time that does not depend on where they differ.
    fn tag_is(&self, tag: &[u8; TAG_LEN]) -> bool {
        let (head, rest) = tag.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
        let rest = rest.first_chunk::<4>().copied().unwrap_or_default();
        let diff = (u64::from_be_bytes(*head) ^ self.id)
            | u64::from(u32::from_be_bytes(rest) ^ self.tag_rest);
        core::hint::black_box(diff) == 0
    }
}

mod sip {
    //! SipHash-2-4 with a 128-bit output, as the reference implementation computes it
    //! (Aumasson and Bernstein; its `vectors_sip128` are the tests below).
    //!
    //! What it does: one call hashes a message given as whole 8-byte words then any tail. What
    //! it does not do: streaming, the 64-bit output, or other round counts.

    /// A SipHash key (two little-endian 64-bit words), as the state it starts a hash with.
    #[derive(Clone, Copy)]
    pub(super) struct Key([u64; 4]);

    impl Key {
        pub(super) fn new(bytes: &[u8; 16]) -> Key {
            let (k0, k1) = bytes.split_at(8);
            let word = |b: &[u8]| {
                let mut w = [0u8; 8];
                w.copy_from_slice(b);
                u64::from_le_bytes(w)
            };
            let (k0, k1) = (word(k0), word(k1));
            let start = [
                k0 ^ 0x736f_6d65_7073_6575,
                // 0xee: the 128-bit output's tweak.
                k1 ^ 0x646f_7261_6e64_6f6d ^ 0xee,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ];
            Key(start)
        }
    }

    struct State {
        v0: u64,
        v1: u64,
        v2: u64,
        v3: u64,
    }

    impl State {
        fn round(&mut self) {
            self.v0 = self.v0.wrapping_add(self.v1);
            self.v1 = self.v1.rotate_left(13) ^ self.v0;
            self.v0 = self.v0.rotate_left(32);
            self.v2 = self.v2.wrapping_add(self.v3);
            self.v3 = self.v3.rotate_left(16) ^ self.v2;
            self.v0 = self.v0.wrapping_add(self.v3);
            self.v3 = self.v3.rotate_left(21) ^ self.v0;
            self.v2 = self.v2.wrapping_add(self.v1);
            self.v1 = self.v1.rotate_left(17) ^ self.v2;
            self.v2 = self.v2.rotate_left(32);
        }

        /// Two rounds per message word: the "2" of SipHash-2-4.
        fn compress(&mut self, m: u64) {
            self.v3 ^= m;
            self.round();
            self.round();
            self.v0 ^= m;
        }

        fn sum(&self) -> u64 {
            self.v0 ^ self.v1 ^ self.v2 ^ self.v3
        }

        /// The two output words, four rounds each: the "4".
        #[inline(always)]
        fn finish(mut self) -> (u64, u64) {
            self.v2 ^= 0xee;
            (0..4).for_each(|_| self.round());
            let low = self.sum();
            self.v1 ^= 0xdd;
            (0..4).for_each(|_| self.round());
            (low, self.sum())
        }
    }

    /// [`hash128`] of the eight bytes of `head` (little-endian) followed by `tail`, as the two
    /// output words (the low one holds the first eight bytes, little-endian): the state the key
    /// starts with is the key's own, the tail's last bytes are read as two overlapping words or
    /// three single bytes, and no byte array is filled.
    #[inline(always)]
    pub(super) fn hash128_word(key: &Key, head: u64, tail: &[u8]) -> (u64, u64) {
        let [v0, v1, v2, v3] = key.0;
        let mut s = State { v0, v1, v2, v3 };
        s.compress(head);
        let (words, rest) = tail.as_chunks::<8>();
        for w in words {
            s.compress(u64::from_le_bytes(*w));
        }
        // The last bytes: the end of the tail's last eight, shifted down, when it has eight.
        let last = match tail.last_chunk::<8>() {
            Some(end) if !rest.is_empty() => u64::from_le_bytes(*end) >> (64 - 8 * rest.len()),
            _ => last_word(rest),
        };
        let len = 8 + tail.len();
        s.compress(last | (len as u64) << 56);
        s.finish()
    }

    /// The bytes of `rest` (fewer than eight) as a little-endian word, zero above them: the
    /// first four and the last four, which overlap on bytes of the same value, or the first,
    /// middle and last of one to three.
    #[inline(always)]
    fn last_word(rest: &[u8]) -> u64 {
        let n = rest.len();
        if let (Some(lo), Some(hi)) = (rest.first_chunk::<4>(), rest.last_chunk::<4>()) {
            u64::from(u32::from_le_bytes(*lo)) | u64::from(u32::from_le_bytes(*hi)) << (8 * (n - 4))
        } else if let (Some(&a), Some(&b), Some(&c)) = (rest.first(), rest.get(n / 2), rest.last())
        {
            u64::from(a) | u64::from(b) << (8 * (n / 2)) | u64::from(c) << (8 * (n - 1))
        } else {
            0
        }
    }

    /// SipHash-2-4-128 of `head` (whole words) followed by `tail`, as bytes: the general form,
    /// which the reference vectors test, for [`hash128_word`] to be tested against.
    #[cfg(test)]
    pub(super) fn hash128(key: &Key, head: &[[u8; 8]], tail: &[u8]) -> [u8; 16] {
        let [v0, v1, v2, v3] = key.0;
        let mut s = State { v0, v1, v2, v3 };
        let (words, rest) = tail.as_chunks::<8>();
        for w in head.iter().chain(words) {
            s.compress(u64::from_le_bytes(*w));
        }
        // The last word: the remaining bytes, and the message length modulo 256 in the top byte.
        let len = head.len() * 8 + tail.len();
        let last = rest
            .iter()
            .rev()
            .fold(0u64, |word, &b| word << 8 | u64::from(b));
        s.compress(last | (len as u64) << 56);
        let (low, high) = s.finish();
        let mut out = [0u8; 16];
        let (a, b) = out.split_at_mut(8);
        a.copy_from_slice(&low.to_le_bytes());
        b.copy_from_slice(&high.to_le_bytes());
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn hex(bytes: &[u8]) -> String {
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }

        const KEY: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

        /// The reference implementation's `vectors_sip128` (key 00..0f, message 00..len-1):
        /// every tail length, zero to two whole words, and the longest vector.
        #[test]
        fn reference_vectors() {
            let cases: [(usize, &str); 18] = [
                (0, "a3817f04ba25a8e66df67214c7550293"),
                (1, "da87c1d86b99af44347659119b22fc45"),
                (2, "8177228da4a45dc7fca38bdef60affe4"),
                (3, "9c70b60c5267a94e5f33b6b02985ed51"),
                (4, "f88164c12d9c8faf7d0f6e7c7bcd5579"),
                (5, "1368875980776f8854527a07690e9627"),
                (6, "14eeca338b208613485ea0308fd7a15e"),
                (7, "a1f1ebbed8dbc153c0b84aa61ff08239"),
                (8, "3b62a9ba6258f5610f83e264f31497b4"),
                (9, "264499060ad9baabc47f8b02bb6d71ed"),
                (10, "00110dc378146956c95447d3f3d0fbba"),
                (11, "0151c568386b6677a2b4dc6f81e5dc18"),
                (12, "d626b266905ef35882634df68532c125"),
                (13, "9869e247e9c08b10d029934fc4b952f7"),
                (14, "31fcefac66d7de9c7ec7485fe4494902"),
                (15, "5493e99933b0a8117e08ec0f97cfc3d9"),
                (16, "6ee2a4ca67b054bbfd3315bf85230577"),
                (63, "5150d1772f50834a503e069a973fbd7c"),
            ];
            let message: Vec<u8> = (0..64).collect();
            let key = Key::new(&KEY);
            for (len, want) in cases {
                assert_eq!(
                    hex(&hash128(&key, &[], &message[..len])),
                    want,
                    "length {len}"
                );
            }
        }

        /// One head word and a tail of every length up to 63 (through every way of reading the
        /// tail's last bytes), word by word as the general form reads them.
        #[test]
        fn the_word_form_is_the_general_form() {
            let message: Vec<u8> = (0..80).map(|i: u8| i.wrapping_mul(151) ^ 0x5a).collect();
            let key = Key::new(&KEY);
            for head in [0u64, 1, 0x0123_4567_89ab_cdef, u64::MAX] {
                for len in 0..64 {
                    let tail = &message[7..7 + len];
                    let bytes = hash128(&key, &[head.to_le_bytes()], tail);
                    let (low, high) = hash128_word(&key, head, tail);
                    assert_eq!(bytes[..8], low.to_le_bytes(), "{head:#x} {len}");
                    assert_eq!(bytes[8..], high.to_le_bytes(), "{head:#x} {len}");
                }
            }
        }

        /// Words given as the head hash like the same bytes in the tail.
        #[test]
        fn head_words_are_message_bytes() {
            let message: Vec<u8> = (0..64).collect();
            let key = Key::new(&KEY);
            let (words, _) = message.as_chunks::<8>();
            for len in 0..=message.len() {
                for n in 0..=len / 8 {
                    let head = &words[..n];
                    let tail = &message[n * 8..len];
                    assert_eq!(
                        hash128(&key, head, tail),
                        hash128(&key, &[], &message[..len]),
                        "length {len}, {n} head words"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: [u8; 32] = [1; 32];
    const K2: [u8; 32] = [2; 32];
    const K3: [u8; 32] = [3; 32];
    const REALM: &[u8] = b"example.com";
    const LIFE: u64 = 300;

    #[test]
    fn issue_then_check() {
        let keys = NonceKeys::new(7, &K1);
        let n = keys.issue(1_000, REALM, 42);
        assert_eq!(n.as_bytes().len(), 28);
        assert!(
            n.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(b))
        );
        let NonceCheck::Fresh { issued, id } = keys.check(n.as_bytes(), 1_000, REALM, LIFE) else {
            panic!("{n:?} not fresh");
        };
        assert_eq!(issued, 1_000);
        // Distinct seq, distinct nonce and identity; the same inputs, the same nonce.
        let other = keys.issue(1_000, REALM, 43);
        assert_ne!(other, n);
        assert!(matches!(
            keys.check(other.as_bytes(), 1_000, REALM, LIFE),
            NonceCheck::Fresh { id: id2, .. } if id2 != id
        ));
        assert_eq!(keys.issue(1_000, REALM, 42), n);
    }

    /// The fields read straight from the base64url groups against the documented byte layout
    /// (`issued | key id | seq | tag`, big-endian) decoded byte by byte, for raw nonces whose
    /// every byte runs through its values; and a tag differing in any one byte is refused.
    #[test]
    fn fields_agree_with_the_byte_layout() {
        for step in 0..=255u8 {
            let raw: [u8; RAW_LEN] =
                core::array::from_fn(|i| (i as u8).wrapping_mul(29).wrapping_add(step));
            let mut text = [0u8; NONCE_LEN];
            base64url::encode(&raw, &mut text).unwrap();
            let f = Fields::decode(&text).unwrap();
            assert_eq!(f.issued, u32::from_be_bytes(raw[0..4].try_into().unwrap()));
            assert_eq!(f.key_id, raw[4]);
            assert_eq!(f.seq, u32::from_be_bytes(raw[5..9].try_into().unwrap()));
            assert_eq!(f.id, u64::from_be_bytes(raw[9..17].try_into().unwrap()));
            let tag: [u8; TAG_LEN] = raw[9..].try_into().unwrap();
            assert!(f.tag_is(&tag));
            for at in 0..TAG_LEN {
                let mut other = tag;
                other[at] ^= 1 << (step % 8);
                assert!(!f.tag_is(&other), "{step} {at}");
            }
        }
        // A nonce as issued is the documented layout encoded byte by byte.
        let keys = NonceKeys::new(0x5a, &K1);
        for (now, seq) in [
            (0, 0),
            (1_000, 42),
            (u64::from(u32::MAX), u64::MAX),
            (0xa5a5_a5a5, 1 << 48 | 7),
        ] {
            let (issued, carried) = (now as u32, carried_seq(seq));
            let mut raw = [0u8; RAW_LEN];
            raw[..4].copy_from_slice(&issued.to_be_bytes());
            raw[4] = 0x5a;
            raw[5..9].copy_from_slice(&carried.to_be_bytes());
            raw[9..].copy_from_slice(&keys.current.tag(issued, carried, REALM));
            let mut text = [0u8; NONCE_LEN];
            base64url::encode(&raw, &mut text).unwrap();
            assert_eq!(keys.issue(now, REALM, seq).as_bytes(), &text, "{now} {seq}");
        }
        // Not 28 characters, or not the alphabet.
        let good = NonceKeys::new(0, &K1).issue(1_000, REALM, 1);
        assert!(Fields::decode(&good.as_bytes()[..27]).is_none());
        assert!(Fields::decode(&[good.as_bytes(), b"A"].concat()).is_none());
        let mut bad = good.as_bytes().to_vec();
        bad[13] = b'+';
        assert!(Fields::decode(&bad).is_none());
    }

    /// The digest a phone computes for qop=auth with MD5, `MD5(HA1:nonce:nc:cnonce:auth:HA2)`,
    /// takes two MD5 blocks with an 8-character cnonce (it took three with 44-character nonces).
    #[test]
    fn md5_response_input_fits_two_blocks() {
        let nonce = NonceKeys::new(0, &K1).issue(1_790_000_000, REALM, 1);
        let (ha1, ha2) = ("0".repeat(32), "f".repeat(32));
        let blocks = |cnonce: &str| {
            let input = format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}");
            // MD5 appends at least 9 bytes (0x80 and the 64-bit length) in 64-byte blocks.
            (input.len() + 9).div_ceil(64)
        };
        assert_eq!(blocks("0a4f113b"), 2);
        assert_eq!(blocks("0a4f113b00"), 2, "room for a 10-character cnonce");
        assert_eq!(blocks("0a4f113b001"), 3);
    }

    /// (what, when checked, the verdict) for a nonce issued at t = 1000.
    #[test]
    fn ages() {
        let keys = NonceKeys::new(0, &K1);
        let n = keys.issue(1_000, REALM, 1);
        let cases: [(&str, u64, bool, bool); 7] = [
            // (what, now, fresh, stale)
            ("at issue", 1_000, true, false),
            ("at the lifetime", 1_000 + LIFE, true, false),
            ("one second past", 1_001 + LIFE, false, true),
            ("68 years on", 1_000 + (1 << 31) - 1, false, true),
            (
                "2^31 seconds on: read as 2^31 ahead",
                1_000 + (1 << 31),
                false,
                false,
            ),
            ("clock behind within skew", 1_000 - MAX_SKEW, true, false),
            ("issued in the future", 1_000 - MAX_SKEW - 1, false, false),
        ];
        for (what, now, fresh, stale) in cases {
            let got = keys.check(n.as_bytes(), now, REALM, LIFE);
            assert_eq!(
                matches!(got, NonceCheck::Fresh { .. }),
                fresh,
                "{what}: {got:?}"
            );
            assert_eq!(got == NonceCheck::Stale, stale, "{what}: {got:?}");
            assert!(fresh || stale || got == NonceCheck::Invalid, "{what}");
        }
    }

    /// The nonce carries the low 32 bits of the issue time; checks restore the rest, so 2106
    /// (2^32 seconds since 1970) is an ordinary second.
    #[test]
    fn issue_times_past_32_bits() {
        let keys = NonceKeys::new(0, &K1);
        let wrap = 1u64 << 32;
        // (issued, checked, the issue time seen, or None for stale)
        let cases: [(u64, u64, Option<u64>); 6] = [
            (wrap - 2, wrap + 3, Some(wrap - 2)),
            (wrap + 1, wrap + 1, Some(wrap + 1)),
            (wrap + 1, wrap - 3, Some(wrap + 1)),
            (wrap - 2, wrap - 2 + LIFE + 1, None),
            (u64::MAX - 10, u64::MAX, Some(u64::MAX - 10)),
            (3 * wrap + 7, 3 * wrap + 7 + LIFE, Some(3 * wrap + 7)),
        ];
        for (at, now, seen) in cases {
            let n = keys.issue(at, REALM, 1);
            let got = keys.check(n.as_bytes(), now, REALM, LIFE);
            match seen {
                Some(t) => assert!(
                    matches!(got, NonceCheck::Fresh { issued, .. } if issued == t),
                    "issued {at}, checked {now}: {got:?}"
                ),
                None => assert_eq!(got, NonceCheck::Stale, "issued {at}, checked {now}"),
            }
        }
        // Read at second 3, a nonce from just before 2^32 would have been issued before 1970.
        let n = keys.issue(wrap - 2, REALM, 1);
        assert_eq!(
            keys.check(n.as_bytes(), 3, REALM, LIFE),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn seq_names_issuer_and_counter() {
        let cases: [(u64, u32); 5] = [
            (0, 0),
            (42, 42),
            ((5 << 48) | 7, (5 << 22) | 7),
            // The counter wraps without touching the issuer.
            ((5 << 48) + (1 << 22) + 7, (5 << 22) | 7),
            ((1023 << 48) | ((1 << 22) - 1), u32::MAX),
        ];
        for (seq, carried) in cases {
            assert_eq!(carried_seq(seq), carried, "{seq:#x}");
        }
        // 1024 workers, each a few nonces into its count, all distinct in the same second.
        let mut seen = std::collections::HashSet::new();
        for worker in 0..1024u64 {
            for counter in [1, 2, 3, (1 << 22) - 1] {
                assert!(seen.insert(carried_seq((worker << 48) + counter)));
            }
        }
        let keys = NonceKeys::new(0, &K1);
        assert_ne!(
            keys.issue(1_000, REALM, 1),
            keys.issue(1_000, REALM, (1 << 48) | 1)
        );
    }

    #[test]
    fn tampering_is_invalid() {
        let keys = NonceKeys::new(0, &K1);
        let n = keys.issue(1_000, REALM, 1);
        let good = n.as_bytes();
        // Every single-character change anywhere in the token.
        for i in 0..good.len() {
            let mut bad = good.to_vec();
            bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
            assert_eq!(
                keys.check(&bad, 1_000, REALM, LIFE),
                NonceCheck::Invalid,
                "at {i}"
            );
        }
        // Every single-bit change of every byte, re-encoded: the tag catches all of them.
        let mut raw = [0u8; RAW_LEN];
        base64url::decode(good, &mut raw).unwrap();
        for i in 0..RAW_LEN * 8 {
            let mut bad = raw;
            bad[i / 8] ^= 1 << (i % 8);
            let mut text = [0u8; NONCE_LEN];
            base64url::encode(&bad, &mut text).unwrap();
            assert_eq!(
                keys.check(&text, 1_000, REALM, LIFE),
                NonceCheck::Invalid,
                "bit {i}"
            );
        }
        // An old nonce re-dated to now (the tag no longer matches): Invalid, not Fresh.
        raw[..4].copy_from_slice(&2_000u32.to_be_bytes());
        let mut redated = [0u8; NONCE_LEN];
        base64url::encode(&raw, &mut redated).unwrap();
        assert_eq!(
            keys.check(&redated, 2_000, REALM, LIFE),
            NonceCheck::Invalid
        );

        let cases: [(&str, &[u8], &[u8]); 5] = [
            ("empty", b"", REALM),
            ("truncated", &good[..NONCE_LEN - 1], REALM),
            ("extended", &[good, b"A"].concat(), REALM),
            ("not base64url", &[b'='; NONCE_LEN], REALM),
            ("other realm", good, b"example.net"),
        ];
        for (what, text, realm) in cases {
            assert_eq!(
                keys.check(text, 1_000, realm, LIFE),
                NonceCheck::Invalid,
                "{what}"
            );
        }
        // A forged-but-old token is Invalid, never Stale.
        let stranger = NonceKeys::new(0, &K2).issue(1_000, REALM, 1);
        assert_eq!(
            keys.check(stranger.as_bytes(), 9_999, REALM, LIFE),
            NonceCheck::Invalid
        );
    }

    /// The realm is hashed after a fixed-length head, so realms that are prefixes of each other,
    /// or differ only past their first word, still give different tags.
    #[test]
    fn realms() {
        let keys = NonceKeys::new(0, &K1);
        let realms: [&[u8]; 6] = [
            b"",
            b"a",
            b"a\0",
            b"example.com",
            b"example.com.",
            b"a-realm-longer-than-one-word.example.com",
        ];
        for issued_for in realms {
            let n = keys.issue(1_000, issued_for, 1);
            for checked_for in realms {
                let fresh = matches!(
                    keys.check(n.as_bytes(), 1_000, checked_for, LIFE),
                    NonceCheck::Fresh { .. }
                );
                assert_eq!(
                    fresh,
                    issued_for == checked_for,
                    "{issued_for:?} {checked_for:?}"
                );
            }
        }
    }

    #[test]
    fn rotation() {
        let mut keys = NonceKeys::new(255, &K1);
        let first = keys.issue(1_000, REALM, 1);
        keys.rotate(&K2);
        assert_eq!(keys.current_id(), 0);
        let second = keys.issue(1_000, REALM, 1);
        assert!(matches!(
            keys.check(first.as_bytes(), 1_000, REALM, LIFE),
            NonceCheck::Fresh { .. }
        ));
        assert!(matches!(
            keys.check(second.as_bytes(), 1_000, REALM, LIFE),
            NonceCheck::Fresh { .. }
        ));
        keys.rotate(&K3);
        assert_eq!(
            keys.check(first.as_bytes(), 1_000, REALM, LIFE),
            NonceCheck::Invalid
        );
        assert!(matches!(
            keys.check(second.as_bytes(), 1_000, REALM, LIFE),
            NonceCheck::Fresh { .. }
        ));

        // Restored after a restart: the same two keys, the same verdicts.
        let restored = NonceKeys::new(1, &K3).with_previous(0, &K2);
        assert!(matches!(
            restored.check(second.as_bytes(), 1_000, REALM, LIFE),
            NonceCheck::Fresh { .. }
        ));
        assert_eq!(
            restored.check(first.as_bytes(), 1_000, REALM, LIFE),
            NonceCheck::Invalid
        );
        // Relabelled with the other live key's id: checked under that key, Invalid.
        let mut raw = [0u8; RAW_LEN];
        base64url::decode(second.as_bytes(), &mut raw).unwrap();
        raw[4] = restored.current_id();
        let mut relabelled = [0u8; NONCE_LEN];
        base64url::encode(&raw, &mut relabelled).unwrap();
        assert_eq!(
            restored.check(&relabelled, 1_000, REALM, LIFE),
            NonceCheck::Invalid
        );
        // The same secret under another id does not verify: the id keys the tag.
        let relabelled = NonceKeys::new(9, &K2);
        assert_eq!(
            relabelled.check(second.as_bytes(), 1_000, REALM, LIFE),
            NonceCheck::Invalid
        );
        assert_eq!(
            format!("{restored:?}"),
            "NonceKeys { current: 1, previous: Some(0) }"
        );
    }

    #[test]
    fn opaque_per_realm_and_key() {
        let mut keys = NonceKeys::new(0, &K1);
        let a = keys.opaque(REALM);
        assert_eq!(a.as_bytes().len(), OPAQUE_LEN);
        assert_eq!(keys.opaque(REALM), a);
        assert_ne!(keys.opaque(b"example.net"), a);
        assert!(keys.opaque_matches(REALM, a.as_bytes()));
        assert!(!keys.opaque_matches(b"example.net", a.as_bytes()));
        keys.rotate(&K2);
        assert_ne!(keys.opaque(REALM), a);
        assert!(keys.opaque_matches(REALM, a.as_bytes()));
        keys.rotate(&K3);
        assert!(!keys.opaque_matches(REALM, a.as_bytes()));
        let cases: [&[u8]; 3] = [b"", b"short", &[b'!'; OPAQUE_LEN]];
        for text in cases {
            assert!(!keys.opaque_matches(REALM, text), "{text:?}");
        }
    }
}
