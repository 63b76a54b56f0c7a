//! Which served domain a Request-URI names (RFC 3261 10.3 step 1), in one hash lookup whatever
//! the number of domains: a carrier's registrar may serve thousands of customer domains, and a
//! walk over them per REGISTER would make every request pay for the largest tenant list.

use core::hash::{BuildHasher, Hasher};
use core::net::IpAddr;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::Domain;
use crate::sip::{Host, SipUri, chars};

/// Bytes of a host name that go into its hash. Longer names (DNS allows 253) still compare
/// whole; the cap bounds the work an attacker's long host can cost before the comparison.
const HASHED_PREFIX: usize = 64;

/// Up to this many domains, a walk over the names costs less than hashing the host.
const WALK: usize = 8;

/// The served domains indexed by host: names case-insensitively, address literals by value
/// (`[2001:db8::10]` and `[2001:db8:0::10]` are one domain).
pub(super) struct DomainIndex {
    hasher: DefaultHashBuilder,
    /// Indices into the domain list, hashed by [`DomainIndex::hash`] of the lowercase name.
    names: HashTable<usize>,
    /// The domains whose name is an address literal, with that address. Few by nature.
    addresses: Vec<(IpAddr, usize)>,
    /// Every domain's name, in the configured order, ready to be compared with a host a word
    /// at a time.
    folded: Vec<Folded>,
}

/// A host name prepared for case-insensitive comparison: its lowercase words at every multiple of
/// eight and the last eight bytes (overlapping the one before), each with a mask of the case bit
/// of its letters. A host equals the name when each of its words, with the mask set, equals the
/// lowercase word: a letter may come in either case, any other byte only as it is.
struct Folded {
    lower: Box<[u8]>,
    /// Empty for names shorter than a word, compared byte by byte.
    words: Box<[(u64, u64)]>,
}

impl Folded {
    fn new(name: &[u8]) -> Folded {
        let lower = name.to_ascii_lowercase().into_boxed_slice();
        let n = lower.len();
        let words = if n < 8 {
            Box::default()
        } else {
            let offsets = (0..n.div_ceil(8) - 1).map(|i| i * 8).chain([n - 8]);
            offsets
                .filter_map(|at| {
                    let word = chars::word_at(&lower, at)?;
                    let mask = word
                        .to_le_bytes()
                        .map(|b| if b.is_ascii_lowercase() { 0x20 } else { 0 });
                    Some((word, u64::from_le_bytes(mask)))
                })
                .collect()
        };
        Folded { lower, words }
    }

    #[inline]
    fn matches(&self, host: &[u8]) -> bool {
        let n = self.lower.len();
        if host.len() != n {
            return false;
        }
        if self.words.is_empty() {
            return host.eq_ignore_ascii_case(&self.lower);
        }
        let last = self.words.len() - 1;
        self.words.iter().enumerate().all(|(i, &(word, mask))| {
            let at = if i == last { n - 8 } else { i * 8 };
            chars::word_at(host, at).is_some_and(|h| h | mask == word)
        })
    }
}

impl DomainIndex {
    pub(super) fn new(domains: &[Domain]) -> DomainIndex {
        let hasher = DefaultHashBuilder::default();
        let mut names = HashTable::with_capacity(domains.len());
        let mut addresses = Vec::new();
        for (i, d) in domains.iter().enumerate() {
            let name = d.name.as_bytes();
            let hash = Self::hash(&hasher, name);
            let seen = |&j: &usize| {
                domains
                    .get(j)
                    .is_some_and(|o| o.name.as_bytes().eq_ignore_ascii_case(name))
            };
            // The first of two equal names wins, as in the configured order.
            if names.find(hash, seen).is_none() {
                names.insert_unique(hash, i, |&j: &usize| {
                    let other = domains.get(j).map(|o| o.name.as_bytes());
                    Self::hash(&hasher, other.unwrap_or_default())
                });
            }
            if let Some(ip) = Host::parse(name).and_then(|h| h.ip())
                && !addresses.iter().any(|&(a, _)| a == ip)
            {
                addresses.push((ip, i));
            }
        }
        let folded = domains
            .iter()
            .map(|d| Folded::new(d.name.as_bytes()))
            .collect();
        DomainIndex {
            hasher,
            names,
            addresses,
            folded,
        }
    }

    /// The index of the domain `uri` names in the list the index was built from.
    #[inline]
    pub(super) fn find(&self, uri: &SipUri<'_>) -> Option<usize> {
        let host = uri.host_raw;
        let named = |j: usize| self.folded.get(j).is_some_and(|name| name.matches(host));
        let by_name = || {
            if self.folded.len() <= WALK {
                return self.folded.iter().position(|name| name.matches(host));
            }
            let hash = Self::hash(&self.hasher, host);
            self.names.find(hash, |&j| named(j)).copied()
        };
        match uri.host.ip() {
            // An address literal matches by value, or by the same spelling as configured.
            Some(ip) => {
                let by_value = self.addresses.iter().find(|&&(a, _)| a == ip);
                match (by_value.map(|&(_, i)| i), by_name()) {
                    (Some(a), Some(n)) => Some(a.min(n)),
                    (a, n) => a.or(n),
                }
            }
            None => by_name(),
        }
    }

    /// Whether `host` spells the name of domain `d` (case-insensitively).
    #[inline]
    pub(super) fn spells(&self, d: usize, host: &[u8]) -> bool {
        self.folded.get(d).is_some_and(|name| name.matches(host))
    }

    /// The hash of a host name, case-insensitive: its length and its first
    /// [`HASHED_PREFIX`] bytes in lowercase, eight at a time.
    fn hash(hasher: &DefaultHashBuilder, name: &[u8]) -> u64 {
        let mut h = hasher.build_hasher();
        h.write_usize(name.len());
        let prefix = name.get(..HASHED_PREFIX).unwrap_or(name);
        let mut chunks = prefix.chunks_exact(8);
        for chunk in chunks.by_ref() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            word.make_ascii_lowercase();
            h.write_u64(u64::from_le_bytes(word));
        }
        let mut last = [0u8; 8];
        for (l, b) in last.iter_mut().zip(chunks.remainder()) {
            *l = b.to_ascii_lowercase();
        }
        h.write_u64(u64::from_le_bytes(last));
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Uri;

    fn domains(names: &[&str]) -> Vec<Domain> {
        names
            .iter()
            .map(|n| Domain {
                name: n.to_string(),
                realm: n.to_string(),
            })
            .collect()
    }

    fn find(index: &DomainIndex, uri: &str) -> Option<usize> {
        let Some(Uri::Sip(u)) = Uri::parse(uri.as_bytes()) else {
            panic!("test URI {uri} must parse")
        };
        index.find(&u)
    }

    /// The walk the index replaces, which defines what it must answer.
    fn walk(list: &[Domain], uri: &str) -> Option<usize> {
        let Some(Uri::Sip(u)) = Uri::parse(uri.as_bytes()) else {
            panic!("test URI {uri} must parse")
        };
        list.iter().position(|d| {
            d.name.as_bytes().eq_ignore_ascii_case(u.host_raw)
                || (u.host.ip().is_some()
                    && Host::parse(d.name.as_bytes()).is_some_and(|h| h.matches(&u.host)))
        })
    }

    #[test]
    fn names_case_insensitively_and_addresses_by_value() {
        let list = domains(&[
            "example.com",
            "192.0.2.1",
            "[2001:db8::10]",
            "b.example.org",
        ]);
        let index = DomainIndex::new(&list);
        for (uri, want) in [
            ("sip:example.com", Some(0)),
            ("sip:EXAMPLE.Com;transport=tcp", Some(0)),
            ("sips:u@b.example.ORG:5061", Some(3)),
            ("sip:192.0.2.1", Some(1)),
            ("sip:[2001:db8:0::10]", Some(2)),
            ("sip:[2001:DB8::10]:5060", Some(2)),
            ("sip:example.co", None),
            ("sip:xexample.com", None),
            ("sip:192.0.2.2", None),
            ("sip:[2001:db8::11]", None),
        ] {
            assert_eq!(find(&index, uri), want, "{uri}");
            assert_eq!(walk(&list, uri), want, "{uri}");
        }
    }

    #[test]
    fn folded_names_compare_as_eq_ignore_ascii_case() {
        // Lengths around the word size, letters in both cases, the bytes next to the case bit
        // ('@' and '[' beside 'A'..'Z', '`' and '{' beside 'a'..'z') and a non-ASCII byte.
        let names = [
            "a.b",
            "exampl",
            "example",
            "example.",
            "example.com",
            "xxxxxxxxxxxxxxxx.example",
        ];
        for name in names.iter().map(|n| n.as_bytes()) {
            let folded = Folded::new(name);
            for at in 0..name.len() {
                for b in [
                    b'a', b'A', b'z', b'Z', b'@', b'[', b'`', b'{', b'.', b'-', 0xc1,
                ] {
                    let mut host = name.to_vec();
                    host[at] = b;
                    assert_eq!(
                        folded.matches(&host),
                        host.eq_ignore_ascii_case(name),
                        "{:?} against {:?}",
                        String::from_utf8_lossy(&host),
                        String::from_utf8_lossy(name)
                    );
                }
            }
            let upper = name.to_ascii_uppercase();
            assert!(folded.matches(&upper) && folded.matches(name));
            assert!(!folded.matches(&name[1..]) && !folded.matches(&[name, b"x"].concat()));
        }
    }

    #[test]
    fn the_first_of_equal_domains_wins() {
        let few = ["a.example", "b.example", "A.EXAMPLE", "[::1]", "[0::1]"];
        let many: Vec<String> = few
            .iter()
            .map(|n| n.to_string())
            .chain((0..WALK).map(|i| format!("pad-{i}.example")))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        // Both ways of finding a name: the walk and the hash table.
        for names in [&few[..], &many[..]] {
            let list = domains(names);
            let index = DomainIndex::new(&list);
            assert_eq!(find(&index, "sip:a.example"), Some(0));
            assert_eq!(find(&index, "sip:[::1]"), Some(3));
        }
    }

    #[test]
    fn agrees_with_the_walk_over_many_domains() {
        let names: Vec<String> = (0..5000)
            .map(|i| format!("tenant-{i}.voice.example"))
            .chain((0..50).map(|i| format!("10.0.{}.{}", i / 10, i % 10)))
            // Names longer than the hashed prefix that differ only after it.
            .chain((0..20).map(|i| format!("{}-{i}.example", "x".repeat(80))))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let list = domains(&refs);
        let index = DomainIndex::new(&list);
        for name in names
            .iter()
            .step_by(7)
            .chain(["nobody.example".to_string()].iter())
        {
            let uri = format!("sip:u@{}", name.to_ascii_uppercase());
            assert_eq!(find(&index, &uri), walk(&list, &uri), "{uri}");
        }
        let long = format!("sip:{}-19.example", "X".repeat(80));
        assert_eq!(find(&index, &long), Some(5069));
    }
}
