//! The address-of-record key: a SIP or SIPS URI reduced to the canonical form RFC 3261 10.3
//! step 5 asks for, so that every spelling of one AOR finds the same bindings.
//!
//! This module only canonicalizes; whether the AOR belongs to a domain this registrar serves is
//! the registrar's decision.

use core::borrow::Borrow;
use core::fmt;
use std::io::Write as _;

use crate::sip::{Host, SipUri};

/// A canonical address-of-record: `sip:` or `sips:`, the user decoded, `@`, the host lowercased.
///
/// RFC 3261 10.3 step 5: "converting the To URI to canonical form ... all URI parameters MUST be
/// removed (including the user-param), and any escaped characters MUST be converted to their
/// unescaped form." Beyond that sentence:
/// - the password and URI headers are dropped, like the parameters;
/// - the port is dropped (as Kamailio does): `sip:alice@example.com:5070` is Alice's AOR at
///   `example.com`, not another user;
/// - the user stays case-sensitive (RFC 3261 19.1.4) and is decoded exactly once; a decoded NUL
///   is kept, never a terminator (RFC 4475 escnull);
/// - a host name is lowercased as written (a trailing dot stays, as URI comparison keeps it);
///   IP addresses are written in their canonical text form, so `[::1]` and `[0::1]` agree.
///
/// The form is unambiguous: a host never contains `@`, so the last `@` separates user and host
/// even when the decoded user contains one.
///
/// The bytes are owned and compact (one allocation). The shard looks AORs up by borrowed
/// `&[u8]`; [`Aor::encode`] writes the canonical bytes into a reused buffer for that.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aor(Box<[u8]>);

impl Aor {
    /// The canonical AOR of a SIP or SIPS URI.
    pub fn from_uri(uri: &SipUri<'_>) -> Aor {
        let mut out = Vec::with_capacity(uri.raw.len());
        Aor::encode(uri, &mut out);
        Aor(out.into_boxed_slice())
    }

    /// Appends the canonical bytes of `uri`'s AOR to `out`, for a lookup without allocating
    /// (clear and reuse one buffer).
    pub fn encode(uri: &SipUri<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(if uri.secure { b"sips:" } else { b"sip:" });
        if let Some(user) = uri.user {
            // RFC 3261 10.3 step 5: "any escaped characters MUST be converted to their
            // unescaped form"; `decoded` undoes each escape once (`%2541` is `%41`). Most user
            // parts have none and are copied whole.
            let raw = user.raw();
            // (A short user part is searched a word at a time, with no call.)
            if crate::sip::chars::find_byte(raw, 0, b'%').is_some() {
                out.extend(user.decoded());
            } else {
                out.extend_from_slice(raw);
            }
            out.push(b'@');
        }
        match uri.host {
            Host::Domain(name) => {
                let start = out.len();
                out.extend_from_slice(name);
                if let Some(host) = out.get_mut(start..) {
                    host.make_ascii_lowercase();
                }
            }
            // Writing to a Vec cannot fail.
            Host::Ipv4(ip) => {
                let _ = write!(out, "{ip}");
            }
            Host::Ipv6(ip) => {
                let _ = write!(out, "[{ip}]");
            }
        }
    }

    /// A copy whose block comes from `spare` when one fits.
    pub(super) fn copy_in(&self, spare: &mut super::binding::Spare) -> Aor {
        Aor(spare.copy(&self.0))
    }

    /// The heap block, for recycling.
    pub(super) fn into_block(self) -> Box<[u8]> {
        self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// An AOR from bytes [`Aor::as_bytes`] returned earlier (persistence reads them back). Not
    /// canonicalized again: bytes from anywhere else would make an AOR no request matches.
    pub fn from_stored(bytes: &[u8]) -> Aor {
        Aor(bytes.into())
    }
}

impl Borrow<[u8]> for Aor {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Aor {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Printable ASCII as is, anything else (a decoded NUL, UTF-8) as `\xHH`.
impl fmt::Display for Aor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.escape_ascii())
    }
}

impl fmt::Debug for Aor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aor(\"{}\")", self.0.escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Uri;

    fn aor(raw: &str) -> Aor {
        let uri = Uri::parse(raw.as_bytes()).expect("test URI parses");
        Aor::from_uri(uri.sip().expect("test URI is sip/sips"))
    }

    #[test]
    fn canonical_forms() {
        let cases: &[(&str, &[u8])] = &[
            ("sip:alice@example.com", b"sip:alice@example.com"),
            ("sips:alice@example.com", b"sips:alice@example.com"),
            ("SIP:alice@Example.COM", b"sip:alice@example.com"),
            ("sip:alice@example.com:5070", b"sip:alice@example.com"),
            ("sip:alice:secret@example.com", b"sip:alice@example.com"),
            (
                "sip:alice@example.com;user=phone;transport=tcp",
                b"sip:alice@example.com",
            ),
            ("sip:alice@example.com?Subject=x", b"sip:alice@example.com"),
            ("sip:%61lice@example.com", b"sip:alice@example.com"),
            // Decoded once: %25 is '%', the "41" after it stays literal.
            ("sip:%2541@example.com", b"sip:%41@example.com"),
            // RFC 4475 escnull: the NUL is part of the user, not its end.
            (
                "sip:null-%00-null@example.com",
                b"sip:null-\0-null@example.com",
            ),
            // A decoded '@' in the user; the host still follows the last '@'.
            ("sip:a%40b@example.com", b"sip:a@b@example.com"),
            // The user is case-sensitive.
            ("sip:Alice@example.com", b"sip:Alice@example.com"),
            ("sip:example.com", b"sip:example.com"),
            ("sip:bob@192.0.2.1:5060", b"sip:bob@192.0.2.1"),
            ("sip:bob@[2001:DB8:0::1]", b"sip:bob@[2001:db8::1]"),
            ("sip:bob@example.com.", b"sip:bob@example.com."),
        ];
        for (raw, want) in cases {
            assert_eq!(aor(raw).as_bytes(), *want, "{raw}");
        }
    }

    #[test]
    fn equal_spellings_hash_alike() {
        use core::hash::BuildHasher;
        let s = hashbrown::DefaultHashBuilder::default();
        let a = aor("sip:%61lice@EXAMPLE.com:5060;transport=udp");
        let b = aor("sip:alice@example.com");
        assert_eq!(a, b);
        assert_eq!(s.hash_one(&a), s.hash_one(&b));
        // Hash agrees with the borrowed form, so `&[u8]` lookups find owned keys.
        assert_eq!(s.hash_one(&a), s.hash_one(b.as_bytes()));
    }

    #[test]
    fn encode_appends_into_a_reused_buffer() {
        let uri = Uri::parse(b"sips:bob@Example.org").expect("parses");
        let mut buf = Vec::new();
        Aor::encode(uri.sip().expect("sips"), &mut buf);
        assert_eq!(buf, b"sips:bob@example.org");
        buf.clear();
        Aor::encode(uri.sip().expect("sips"), &mut buf);
        assert_eq!(buf, aor("sips:bob@example.org").as_bytes());
    }

    #[test]
    fn display_escapes_non_printable_bytes() {
        let a = aor("sip:x%00y@example.com");
        assert_eq!(a.to_string(), "sip:x\\x00y@example.com");
        assert_eq!(format!("{a:?}"), "Aor(\"sip:x\\x00y@example.com\")");
    }
}
