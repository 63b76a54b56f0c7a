//! Stateless nonces: issued and checked with an HMAC key, no table of outstanding challenges.
//!
//! What it does: [`NonceKeys::issue`] writes a nonce that carries its own issue time and is
//! signed; [`NonceKeys::check`] tells a genuine fresh nonce from a stale one and from anything
//! else, using only the keys and `now`. Two keys are live at a time so that rotating the secret
//! does not break challenges already in flight. It also derives the `opaque` value.
//!
//! What it does not do: read a clock or a random source (time and secrets are arguments), or
//! detect replays (a nonce is meant to be reused with increasing nonce-counts; that is
//! [`super::nc::NcTracker`]'s job).
//!
//! # Layout
//!
//! 33 bytes, written as 44 base64url characters (no padding: 33 is a multiple of 3):
//!
//! ```text
//! issued: u64 BE | key id: u8 | seq: u64 BE | tag: 16 bytes
//! tag = HMAC-SHA256(key, 0x01 | issued | key id | seq | realm)[..16]
//! ```
//!
//! What the tag covers, and why:
//! - `issued`: the age of a nonce is what makes it stale; were it not signed, a client (or an
//!   attacker replaying a captured request) could rejuvenate an old nonce.
//! - `key id`: the tag commits to every byte of the token, so no field can be relabelled.
//! - `seq`: tells apart nonces issued in the same second. Each challenge gets its own nonce and
//!   so its own nonce-count sequence. It need not be secret or random: the caller may pass a
//!   counter or random bytes; unforgeability comes from the tag, not from `seq`.
//! - `realm`: a nonce issued for one realm (one domain, one tenant) is not accepted in another.
//! - the leading `0x01`: separates nonce tags from the `opaque` derivation (`0x02`) under the
//!   same key.
//!
//! Not covered: the client's address (NAT rebinding and UDP/TCP switches change it between a
//! challenge and the answer, and pre-emptive credentials on refresh would fail), and the method
//! or URI (one nonce serves a series of REGISTER refreshes).
//!
//! The 128-bit tag makes a forgery an online guess with probability 2^-128. Its first eight bytes
//! are the nonce's identity for nonce-count tracking ([`NonceCheck::Fresh`] `id`): unforgeable,
//! and distinct for distinct nonces except with probability about n^2 / 2^65.

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

const SIGNED_LEN: usize = 17;
const TAG_LEN: usize = 16;
const RAW_LEN: usize = SIGNED_LEN + TAG_LEN;
const OPAQUE_RAW_LEN: usize = 18;
const DOMAIN_NONCE: u8 = 0x01;
const DOMAIN_OPAQUE: u8 = 0x02;

/// A nonce as written in a challenge: 44 printable characters, no heap.
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
    /// Keyed once; cloning the HMAC state skips re-deriving the pads for each nonce.
    mac: HmacSha256,
}

impl Key {
    fn new(id: u8, secret: &[u8; 32]) -> Key {
        // HMAC takes keys of any length (long ones are hashed), so this never fails.
        let mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
        Key { id, mac }
    }

    fn nonce_mac(&self, signed: &[u8; SIGNED_LEN], realm: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(&[DOMAIN_NONCE]);
        mac.update(signed);
        mac.update(realm);
        mac
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
    /// second distinct: a counter or random bytes.
    pub fn issue(&self, now: u64, realm: &[u8], seq: u64) -> Nonce {
        let mut signed = [0u8; SIGNED_LEN];
        let (time, rest) = signed.split_at_mut(8);
        time.copy_from_slice(&now.to_be_bytes());
        let (id, seq_bytes) = rest.split_at_mut(1);
        id.fill(self.current.id);
        seq_bytes.copy_from_slice(&seq.to_be_bytes());

        let tag = self
            .current
            .nonce_mac(&signed, realm)
            .finalize()
            .into_bytes();
        let mut raw = [0u8; RAW_LEN];
        let (head, tail) = raw.split_at_mut(SIGNED_LEN);
        head.copy_from_slice(&signed);
        tail.iter_mut().zip(tag).for_each(|(r, t)| *r = t);

        let mut text = [0u8; NONCE_LEN];
        // NONCE_LEN is encoded_len(RAW_LEN), so the buffer always fits.
        let _ = base64url::encode(&raw, &mut text);
        Nonce(text)
    }

    /// What `nonce` (the unquoted parameter as received) is, for `realm` at `now`.
    ///
    /// The tag is verified before the time is looked at, so a forged token is always `Invalid`,
    /// never `Stale`: `stale=true` tells a client to retry silently, which only a holder of a
    /// genuine nonce deserves. A nonce exactly `lifetime` seconds old is still fresh.
    pub fn check(&self, nonce: &[u8], now: u64, realm: &[u8], lifetime: u64) -> NonceCheck {
        let Some(fields) = Fields::decode(nonce) else {
            return NonceCheck::Invalid;
        };
        let mut genuine = false;
        for key in self.keys().filter(|k| k.id == fields.key_id) {
            let mac = key.nonce_mac(&fields.signed, realm);
            genuine |= mac.verify_truncated_left(&fields.tag).is_ok();
        }
        if !genuine {
            return NonceCheck::Invalid;
        }
        if fields.issued > now.saturating_add(MAX_SKEW) {
            return NonceCheck::Invalid;
        }
        if now.saturating_sub(fields.issued) > lifetime {
            return NonceCheck::Stale;
        }
        NonceCheck::Fresh {
            issued: fields.issued,
            id: fields.id,
        }
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

/// A decoded nonce, before its tag is checked.
struct Fields {
    signed: [u8; SIGNED_LEN],
    tag: [u8; TAG_LEN],
    issued: u64,
    key_id: u8,
    id: u64,
}

impl Fields {
    fn decode(text: &[u8]) -> Option<Fields> {
        if text.len() != NONCE_LEN {
            return None;
        }
        let mut raw = [0u8; RAW_LEN];
        if base64url::decode(text, &mut raw)? != RAW_LEN {
            return None;
        }
        let (signed, tag) = raw.split_first_chunk::<SIGNED_LEN>()?;
        let tag: [u8; TAG_LEN] = tag.try_into().ok()?;
        let (issued, rest) = signed.split_first_chunk::<8>()?;
        let (&key_id, _seq) = rest.split_first()?;
        let (id, _) = tag.split_first_chunk::<8>()?;
        Some(Fields {
            signed: *signed,
            tag,
            issued: u64::from_be_bytes(*issued),
            key_id,
            id: u64::from_be_bytes(*id),
        })
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
        assert_eq!(n.as_bytes().len(), 44);
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

    /// (what, when checked, the verdict) for a nonce issued at t = 1000.
    #[test]
    fn ages() {
        let keys = NonceKeys::new(0, &K1);
        let n = keys.issue(1_000, REALM, 1);
        let cases: [(&str, u64, bool, bool); 6] = [
            // (what, now, fresh, stale)
            ("at issue", 1_000, true, false),
            ("at the lifetime", 1_000 + LIFE, true, false),
            ("one second past", 1_001 + LIFE, false, true),
            ("long past", u64::MAX, false, true),
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
        // An old nonce re-dated to now (the tag no longer matches): Invalid, not Fresh.
        let mut raw = [0u8; RAW_LEN];
        base64url::decode(good, &mut raw).unwrap();
        raw[..8].copy_from_slice(&2_000u64.to_be_bytes());
        let mut redated = [0u8; NONCE_LEN];
        base64url::encode(&raw, &mut redated).unwrap();
        assert_eq!(
            keys.check(&redated, 2_000, REALM, LIFE),
            NonceCheck::Invalid
        );

        let cases: [(&str, &[u8], &[u8]); 5] = [
            ("empty", b"", REALM),
            ("truncated", &good[..43], REALM),
            ("extended", &[good, b"A"].concat(), REALM),
            ("not base64url", &[b'='; 44], REALM),
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
        // The same secret under another id does not verify: the id is signed.
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
