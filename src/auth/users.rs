//! The credentials store: (username, realm) to HA1, one per algorithm.
//!
//! What it does: holds HA1 values (never passwords) in a hashbrown table, looks them up by
//! borrowed bytes without allocating, and verifies a response for a user in a way that looks the
//! same for an unknown user and a wrong password: both run one full digest computation and both
//! answer `false`.
//!
//! What it does not do: read a credentials file (that is I/O: the shell parses the file and
//! calls [`UserDb::insert`] with [`Ha1::from_hex`] values), check the nonce or the nonce-count,
//! or support `userhash=true` (RFC 7616 3.4.4; we never offer it, so such a response fails).

use core::hash::{BuildHasher, Hash, Hasher};

use hashbrown::{Equivalent, HashMap};

use super::digest::{Algorithm, Ha1, KnownA2, verify_with_alg};
use crate::sip::auth::same_bytes;
use crate::sip::{DigestResponse, Quoted};

/// Longest username with quoted-pairs we unescape (on the stack) for a lookup; a longer one is
/// looked up as unknown. Usernames without quoted-pairs may be any length.
pub const MAX_ESCAPED_USERNAME: usize = 256;

/// The table's hasher: a word at a time, multiply and rotate (the FxHash step), lengths mixed
/// in, and the result folded through one wide multiply so both the low bits (hashbrown's bucket)
/// and the top seven (its tag) depend on every input bit. About 40 instructions for a username
/// and realm, against about 160 for the default (foldhash, which hashes each slice through its
/// general byte path after a separate length word).
///
/// Not a keyed PRF: what it resists is limited to a per-table random seed. That is enough here
/// because hash flooding needs colliding keys *inserted*, and the table holds only users the
/// operator provisioned; a request can only look up, and a lookup's probe ends at the first
/// group with an empty slot whatever its key hashes to.
#[derive(Clone)]
struct UserHashBuilder {
    seed: u64,
}

impl Default for UserHashBuilder {
    fn default() -> UserHashBuilder {
        // std's per-process random keys, drawn once per table.
        UserHashBuilder {
            seed: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl BuildHasher for UserHashBuilder {
    type Hasher = UserHasher;

    fn build_hasher(&self) -> UserHasher {
        UserHasher(self.seed)
    }
}

struct UserHasher(u64);

impl UserHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    #[inline(always)]
    fn mix(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(Self::K);
    }
}

impl Hasher for UserHasher {
    /// The length, then the bytes as whole words (the last one overlapping the one before, or
    /// two overlapping half words below eight bytes).
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.mix(bytes.len() as u64);
        if let Some(last) = bytes.last_chunk::<8>() {
            let (words, _) = bytes.as_chunks::<8>();
            for w in words {
                self.mix(u64::from_le_bytes(*w));
            }
            self.mix(u64::from_le_bytes(*last));
        } else if let (Some(lo), Some(hi)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
            self.mix(u64::from(u32::from_le_bytes(*lo)) | u64::from(u32::from_le_bytes(*hi)) << 32);
        } else {
            self.mix(bytes.iter().fold(0, |w, &b| w << 8 | u64::from(b)));
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        let wide = u128::from(self.0) * u128::from(0x9e37_79b9_7f4a_7c15_u64);
        (wide >> 64) as u64 ^ wide as u64
    }
}

/// The owned key. Its `Hash` must equal [`UserRef`]'s for the same bytes: both hash the two
/// slices in order, each with its length.
#[derive(PartialEq, Eq)]
struct UserKey {
    username: Box<[u8]>,
    realm: Box<[u8]>,
}

impl Hash for UserKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        UserRef {
            username: &self.username,
            realm: &self.realm,
        }
        .hash(state);
    }
}

/// The borrowed key used for lookups.
struct UserRef<'a> {
    username: &'a [u8],
    realm: &'a [u8],
}

impl Hash for UserRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // `write` mixes each length in, so ("ab", "c") and ("a", "bc") hash apart.
        state.write(self.username);
        state.write(self.realm);
    }
}

impl Equivalent<UserKey> for UserRef<'_> {
    fn equivalent(&self, key: &UserKey) -> bool {
        same_bytes(&key.username, self.username) && same_bytes(&key.realm, self.realm)
    }
}

/// The HA1 values of one user, indexed by [`Algorithm`].
#[derive(Clone, Copy, Default)]
struct Ha1Set([Option<Ha1>; 3]);

/// Users and their HA1 values.
///
/// Memory: per user, the two key slices on the heap plus about 100 bytes of entry (three
/// optional 33-byte HA1 values) and the table's own overhead.
#[derive(Default)]
pub struct UserDb {
    users: HashMap<UserKey, Ha1Set, UserHashBuilder>,
}

/// The HA1 compared against when the user is unknown, so the work done is the same.
const DUMMY: [Ha1; 3] = [
    Ha1::dummy(Algorithm::Md5),
    Ha1::dummy(Algorithm::Sha256),
    Ha1::dummy(Algorithm::Sha512_256),
];

impl UserDb {
    pub fn new() -> UserDb {
        UserDb::default()
    }

    pub fn with_capacity(users: usize) -> UserDb {
        UserDb {
            users: HashMap::with_capacity_and_hasher(users, UserHashBuilder::default()),
        }
    }

    /// Adds or replaces the user's HA1 for `ha1`'s algorithm; other algorithms' values stay.
    pub fn insert(&mut self, username: &[u8], realm: &[u8], ha1: Ha1) {
        let index = ha1.algorithm().index();
        let key = UserRef { username, realm };
        if let Some(set) = self.users.get_mut(&key) {
            if let Some(slot) = set.0.get_mut(index) {
                *slot = Some(ha1);
            }
            return;
        }
        let mut set = Ha1Set::default();
        if let Some(slot) = set.0.get_mut(index) {
            *slot = Some(ha1);
        }
        self.users.insert(
            UserKey {
                username: username.into(),
                realm: realm.into(),
            },
            set,
        );
    }

    /// Removes the user (every algorithm); whether they were there.
    pub fn remove(&mut self, username: &[u8], realm: &[u8]) -> bool {
        self.users.remove(&UserRef { username, realm }).is_some()
    }

    /// The user's HA1 for `alg`. No allocation.
    pub fn ha1(&self, username: &[u8], realm: &[u8], alg: Algorithm) -> Option<&Ha1> {
        let set = self.users.get(&UserRef { username, realm })?;
        set.0.get(alg.index())?.as_ref()
    }

    /// Users stored.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `resp` proves knowledge of the password of its `username` in `realm` (the realm
    /// this server challenged with, which the response must name too).
    ///
    /// Unknown users, users without an HA1 for the response's algorithm, and wrong passwords all
    /// run the same digest computation (against a fixed dummy HA1 when there is no real one) and
    /// all return `false`, so neither the answer nor its timing tells them apart; the caller
    /// sends the same 401 for each. The hash table lookup itself differs by a few nanoseconds
    /// between a hit and a miss. No allocation.
    pub fn verify_user(
        &self,
        realm: &[u8],
        method: &[u8],
        resp: &DigestResponse<'_>,
        body: &[u8],
    ) -> bool {
        self.verify_user_with(realm, method, resp, body, &[])
    }

    /// [`UserDb::verify_user`] with H(A2) values computed ahead (see [`KnownA2`]); the answer is
    /// the same, only faster when one matches.
    pub fn verify_user_with(
        &self,
        realm: &[u8],
        method: &[u8],
        resp: &DigestResponse<'_>,
        body: &[u8],
        known: &[KnownA2],
    ) -> bool {
        // An unsupported algorithm is visible in the request itself; refusing early leaks nothing.
        let Some(alg) = Algorithm::of(resp) else {
            return false;
        };
        let realm_ok = resp.realm.is_some_and(|r| r.eq_bytes(realm));
        let stored = match resp.username {
            Some(name) if !resp.userhash => match name.plain() {
                Some(plain) => self.ha1(plain, realm, alg),
                None => self.ha1_escaped(name, realm, alg),
            },
            _ => None,
        };
        let found = stored.is_some();
        // Borrowed, not copied: the digest reads the HA1 where it is stored.
        let Some(ha1) = stored.or(DUMMY.get(alg.index())) else {
            return false;
        };
        let ok = verify_with_alg(alg, ha1, method, resp, body, known);
        // Non-short-circuiting: the digest above has run whatever `found` is.
        ok & found & realm_ok
    }

    /// [`UserDb::ha1`] for a username with quoted-pairs, unescaped on the stack first; apart
    /// from the common path so that path does not set up the buffer.
    #[cold]
    fn ha1_escaped(&self, name: Quoted<'_>, realm: &[u8], alg: Algorithm) -> Option<&Ha1> {
        let mut buf = [0u8; MAX_ESCAPED_USERNAME];
        self.ha1(unescape(name, &mut buf)?, realm, alg)
    }
}

impl core::fmt::Debug for UserDb {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UserDb")
            .field("users", &self.users.len())
            .finish()
    }
}

/// The unescaped content of `q`: borrowed when it has no quoted-pair, else copied into `buf`.
fn unescape<'a>(q: Quoted<'a>, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    if let Some(plain) = q.plain() {
        return Some(plain);
    }
    let mut len = 0;
    for chunk in q.chunks() {
        buf.get_mut(len..len + chunk.len())?.copy_from_slice(chunk);
        len += chunk.len();
    }
    buf.get(..len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::digest::{compute_response, verify};
    use crate::sip::Credentials;

    const RFC2617: &[u8] = b"Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
        nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
        nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
        opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    const REALM: &[u8] = b"testrealm@host.com";

    fn digest(value: &[u8]) -> DigestResponse<'_> {
        match Credentials::parse(value) {
            Some(Credentials::Digest(d)) => d,
            other => panic!("not digest credentials: {other:?}"),
        }
    }

    fn db() -> UserDb {
        let mut db = UserDb::new();
        db.insert(
            b"Mufasa",
            REALM,
            Ha1::from_password(Algorithm::Md5, b"Mufasa", REALM, b"Circle Of Life"),
        );
        db.insert(
            b"Mufasa",
            REALM,
            Ha1::from_password(Algorithm::Sha256, b"Mufasa", REALM, b"Circle Of Life"),
        );
        db
    }

    #[test]
    fn lookups() {
        let db = db();
        assert_eq!(db.len(), 1);
        let cases: [(&[u8], &[u8], Algorithm, bool); 6] = [
            (b"Mufasa", REALM, Algorithm::Md5, true),
            (b"Mufasa", REALM, Algorithm::Sha256, true),
            (b"Mufasa", REALM, Algorithm::Sha512_256, false),
            (b"mufasa", REALM, Algorithm::Md5, false),
            (b"Mufasa", b"other", Algorithm::Md5, false),
            // The length prefix keeps ("ab","c") and ("a","bc") apart.
            (b"Mufas", b"aetestrealm@host.com", Algorithm::Md5, false),
        ];
        for (user, realm, alg, found) in cases {
            let got = db.ha1(user, realm, alg);
            assert_eq!(got.is_some(), found, "{user:?} {realm:?} {alg}");
            if let Some(h) = got {
                assert_eq!(h.algorithm(), alg);
            }
        }
        let mut db = db;
        assert!(db.remove(b"Mufasa", REALM));
        assert!(!db.remove(b"Mufasa", REALM));
        assert!(db.is_empty());
    }

    /// Many users, names of every length from empty to a few words: each found under its own
    /// realm only, and near misses (one byte changed, one byte longer) not found.
    #[test]
    fn lookups_with_the_table_hasher() {
        let mut db = UserDb::with_capacity(16);
        let name =
            |i: usize| -> Vec<u8> { (0..i % 40).map(|k| b'a' + ((i + k) % 26) as u8).collect() };
        let realm = |i: usize| format!("r{}.example.com", i % 7).into_bytes();
        let ha1 = Ha1::from_password(Algorithm::Md5, b"u", b"r", b"pw");
        for i in 0..2000 {
            db.insert(
                &[name(i), i.to_string().into_bytes()].concat(),
                &realm(i),
                ha1,
            );
        }
        assert_eq!(db.len(), 2000);
        for i in 0..2000 {
            let user = [name(i), i.to_string().into_bytes()].concat();
            assert!(db.ha1(&user, &realm(i), Algorithm::Md5).is_some(), "{i}");
            assert!(
                db.ha1(&user, &realm(i + 1), Algorithm::Md5).is_none(),
                "{i}"
            );
            let mut near = user.clone();
            near[0] ^= 0x20;
            assert!(db.ha1(&near, &realm(i), Algorithm::Md5).is_none(), "{i}");
            near = [user.as_slice(), b"x"].concat();
            assert!(db.ha1(&near, &realm(i), Algorithm::Md5).is_none(), "{i}");
        }
        // The empty name and realm are keys like any other.
        db.insert(b"", b"", ha1);
        assert!(db.ha1(b"", b"", Algorithm::Md5).is_some());
        assert!(db.ha1(b"", b"x", Algorithm::Md5).is_none());
    }

    #[test]
    fn verify_user_outcomes() {
        let db = db();
        let good = digest(RFC2617);
        let wrong_password = digest(
            b"Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
            nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
            nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef2\"",
        );
        let cases: [(&str, &[u8], DigestResponse<'_>, bool); 7] = [
            ("RFC 2617 3.5", REALM, good, true),
            ("wrong password", REALM, wrong_password, false),
            (
                "unknown user",
                REALM,
                DigestResponse {
                    username: Some(Quoted(b"Scar")),
                    ..good
                },
                false,
            ),
            (
                "no username",
                REALM,
                DigestResponse {
                    username: None,
                    ..good
                },
                false,
            ),
            ("other realm challenged", b"example.com", good, false),
            (
                "no HA1 for SHA-512-256",
                REALM,
                DigestResponse {
                    algorithm: Some(b"SHA-512-256"),
                    ..good
                },
                false,
            ),
            (
                "userhash",
                REALM,
                DigestResponse {
                    userhash: true,
                    ..good
                },
                false,
            ),
        ];
        for (what, realm, resp, want) in cases {
            assert_eq!(db.verify_user(realm, b"GET", &resp, b""), want, "{what}");
        }
    }

    /// The unknown user's response is checked against the dummy HA1: one that matches the dummy
    /// exactly (so the computation really ran) still fails.
    #[test]
    fn unknown_user_runs_the_dummy_digest() {
        let db = db();
        let resp = DigestResponse {
            username: Some(Quoted(b"Scar")),
            ..digest(RFC2617)
        };
        let dummy = DUMMY[Algorithm::Md5.index()];
        let forged = compute_response(&dummy, b"GET", &resp, b"").unwrap();
        let resp = DigestResponse {
            response: Some(forged.as_bytes()),
            ..resp
        };
        assert!(verify(&dummy, b"GET", &resp, b""));
        assert!(!db.verify_user(REALM, b"GET", &resp, b""));
    }

    #[test]
    fn escaped_usernames() {
        let mut db = UserDb::new();
        let realm = b"example.com";
        db.insert(
            b"o\"brien",
            realm,
            Ha1::from_password(Algorithm::Md5, b"o\"brien", realm, b"pw"),
        );
        let ha1 = *db.ha1(b"o\"brien", realm, Algorithm::Md5).unwrap();
        let template = digest(
            b"Digest username=\"o\\\"brien\", realm=\"example.com\", uri=\"sip:example.com\", \
            nonce=\"n\", nc=00000001, cnonce=\"c\", qop=auth",
        );
        let response = compute_response(&ha1, b"REGISTER", &template, b"").unwrap();
        let resp = DigestResponse {
            response: Some(response.as_bytes()),
            ..template
        };
        assert!(db.verify_user(realm, b"REGISTER", &resp, b""));

        let mut buf = [0u8; 4];
        assert_eq!(unescape(Quoted(b"a\\bc"), &mut buf), Some(&b"abc"[..]));
        assert_eq!(unescape(Quoted(b"a\\bcde"), &mut buf), None);
        assert_eq!(
            unescape(Quoted(b"plain-and-long"), &mut buf),
            Some(&b"plain-and-long"[..])
        );
    }
}
