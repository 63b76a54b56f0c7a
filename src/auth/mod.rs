//! Digest authentication (RFC 3261 22, RFC 7616, RFC 8760), sans-I/O.
//!
//! What it does, in the order a registrar uses it:
//! - [`NonceKeys`]: issues stateless, SipHash-tagged nonces and tells a received one
//!   [`NonceCheck::Fresh`], [`NonceCheck::Stale`] or [`NonceCheck::Invalid`]; derives the
//!   `opaque` value. Two keys are live so rotation does not break challenges in flight.
//! - [`UserDb`]: (username, realm) to [`Ha1`] per [`Algorithm`]; [`UserDb::verify_user`] checks
//!   a response so that an unknown user and a wrong password cost the same and look the same.
//! - [`NcTracker`]: per-nonce highest nonce-count in a fixed table, so a captured request cannot
//!   be replayed while a client may reuse its nonce with increasing counts.
//! - [`verify`] and [`compute_response`]: the digest itself, for callers with an HA1 in hand
//!   (and for the client side in tools and tests).
//!
//! What it does not do: read a clock, a random source, a socket or a file. Time comes in as
//! `now` (seconds), key material as bytes, and credentials as parsed
//! [`crate::sip::DigestResponse`] values. It does not choose the status code, compare the
//! `uri` parameter with the Request-URI, or support `-sess` algorithms or `userhash`.
//!
//! ```
//! use sipreg::auth::{Algorithm, Ha1, NcTracker, NcVerdict, NonceCheck, NonceKeys, UserDb};
//! use sipreg::auth::compute_response;
//! use sipreg::sip::{Credentials, DigestResponse, Quoted};
//!
//! let realm = b"example.com";
//! let keys = NonceKeys::new(0, &[7; 32]); // the shell supplies random bytes
//! let mut users = UserDb::new();
//! users.insert(b"alice", realm, Ha1::from_password(Algorithm::Sha256, b"alice", realm, b"pw"));
//! let mut counts = NcTracker::with_capacity(1 << 16, 300);
//!
//! // The 401: a nonce for this realm, issued now.
//! let now = 1_700_000_000;
//! let nonce = keys.issue(now, realm, 1);
//!
//! // The client answers (computed here as a client would).
//! let header = format!(
//!     "Digest username=\"alice\", realm=\"example.com\", uri=\"sip:example.com\", \
//!      algorithm=SHA-256, nonce=\"{nonce}\", nc=00000001, cnonce=\"c\", qop=auth"
//! );
//! let Some(Credentials::Digest(template)) = Credentials::parse(header.as_bytes()) else { panic!() };
//! let client_ha1 = Ha1::from_password(Algorithm::Sha256, b"alice", realm, b"pw");
//! let response = compute_response(&client_ha1, b"REGISTER", &template, b"").unwrap();
//! let resp = DigestResponse { response: Some(response.as_bytes()), ..template };
//!
//! // The registrar: nonce first, then the digest, then the count.
//! let text = resp.nonce.and_then(|q: Quoted| q.plain()).unwrap_or_default();
//! let NonceCheck::Fresh { issued, id } = keys.check(text, now + 2, realm, 300) else { panic!() };
//! assert!(users.verify_user(realm, b"REGISTER", &resp, b""));
//! assert_eq!(counts.observe(id, issued, resp.nc.unwrap_or(0), now + 2), NcVerdict::Accept);
//! // The same request again is a replay.
//! assert_eq!(counts.observe(id, issued, resp.nc.unwrap_or(0), now + 3), NcVerdict::Replay);
//! ```

mod base64url;
pub mod digest;
pub mod file;
mod md5_block;
pub mod nc;
pub mod nonce;
pub mod pattern;
pub mod users;

pub use digest::{
    Algorithm, Ha1, Hex, KnownA2, compute_response, compute_response_with, hash_hex, verify,
    verify_with,
};
pub use nc::{NcTracker, NcVerdict};
pub use nonce::{MAX_SKEW, Nonce, NonceCheck, NonceKeys, Opaque};
pub use users::UserDb;
