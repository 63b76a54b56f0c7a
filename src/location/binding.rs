//! One binding of an AOR to a contact address (RFC 3261 10), packed for a table of millions.
//!
//! A [`Binding`] is 80 bytes plus one heap block holding its variable-length fields (contact URI,
//! contact parameters, `+sip.instance`, Call-ID, Path values) back to back, located by `u16` end
//! offsets. It keeps bytes as received; it does not parse or judge them. The registrar decides
//! what to store (RFC 3261 10.3 policy) and describes it with a [`Registration`].

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::Error;
use crate::sip::Transport;

/// What one Contact of a REGISTER asks the shard to store: the input of
/// [`Shard::insert`](super::Shard::insert) and [`Shard::refresh`](super::Shard::refresh).
#[derive(Clone, Copy, Debug)]
pub struct Registration<'a> {
    /// The contact URI as received, without `<>`: echoed in the 200 OK and used as the
    /// Request-URI of requests routed to this binding.
    pub contact: &'a [u8],
    /// The Contact header parameters to echo (for instance `;+sip.instance="<urn:...>";reg-id=1`).
    pub params: &'a [u8],
    /// The Path header values, in order (RFC 3327).
    pub path: &'a [&'a [u8]],
    /// The `+sip.instance` value as received (RFC 5626).
    pub instance: Option<&'a [u8]>,
    /// The `reg-id` (RFC 5626: "1 to (2^31 - 1)"); 0 is stored too.
    pub reg_id: Option<u32>,
    /// q in thousandths, 0 to 1000 (`q=0.7` is 700).
    pub q: u16,
    /// When the binding expires, in milliseconds on the caller's clock.
    pub expires_at: u64,
    pub call_id: &'a [u8],
    pub cseq: u32,
    /// Where the REGISTER came from (RFC 3581: replies and requests go back there through NAT).
    pub source: SocketAddr,
    pub transport: Transport,
    /// The I/O layer's id of the connection the REGISTER arrived on (stream transports, RFC 5626
    /// flows).
    pub connection: Option<u64>,
}

/// A stored binding. Read through its accessors; the shard creates and changes it.
#[derive(Clone, PartialEq, Eq)]
pub struct Binding {
    /// contact | params | instance | call_id | path entries (each a big-endian u16 length, then
    /// the bytes).
    data: Box<[u8]>,
    expires_at: u64,
    updated_at: u64,
    connection: u64,
    /// IPv4 in the first four bytes, or IPv6 (see `META_V6`).
    ip: [u8; 16],
    cseq: u32,
    /// `REG_ID_SET` | reg-id.
    reg_id: u32,
    /// Unique within the shard; names the binding in a `BindingId` and in timer entries.
    pub(super) key: u32,
    /// Where contact, params, instance and call_id end in `data`.
    ends: [u16; 4],
    port: u16,
    /// q (10 bits) | transport (3 bits) | `META_CONNECTION` | `META_INSTANCE` | `META_V6`.
    meta: u16,
}

const REG_ID_SET: u32 = 1 << 31;
const META_Q: u16 = 0x3ff;
const META_TRANSPORT_SHIFT: u16 = 10;
const META_TRANSPORT: u16 = 0b111 << META_TRANSPORT_SHIFT;
const META_CONNECTION: u16 = 1 << 13;
const META_INSTANCE: u16 = 1 << 14;
const META_V6: u16 = 1 << 15;

/// The largest q, 1.0.
pub const Q_MAX: u16 = 1000;

impl Binding {
    /// Packs a registration; `key` and `now` (the update time) come from the shard.
    pub(super) fn new(reg: &Registration<'_>, key: u32, now: u64) -> Result<Binding, Error> {
        if reg.q > Q_MAX {
            return Err(Error::QOutOfRange);
        }
        let reg_id = match reg.reg_id {
            None => 0,
            Some(id) if id < REG_ID_SET => id | REG_ID_SET,
            Some(_) => return Err(Error::RegIdOutOfRange),
        };
        let instance = reg.instance.unwrap_or_default();
        let path_len: usize = reg.path.iter().map(|p| 2 + p.len()).sum();
        let len = reg.contact.len() + reg.params.len() + instance.len() + reg.call_id.len();
        let total = len + path_len;
        // Every offset is at most `total`, so one check covers them all.
        if total > usize::from(u16::MAX) || reg.path.iter().any(|p| p.len() > 0xffff) {
            return Err(Error::TooLong);
        }
        let mut data = Vec::with_capacity(total);
        let mut ends = [0u16; 4];
        for (end, part) in ends
            .iter_mut()
            .zip([reg.contact, reg.params, instance, reg.call_id])
        {
            data.extend_from_slice(part);
            *end = data.len() as u16; // data.len() <= total <= u16::MAX, checked above
        }
        for p in reg.path {
            data.extend_from_slice(&(p.len() as u16).to_be_bytes()); // each <= 0xffff, checked
            data.extend_from_slice(p);
        }

        let (ip, v6) = match reg.source.ip() {
            IpAddr::V4(v4) => {
                let mut ip = [0u8; 16];
                ip[..4].copy_from_slice(&v4.octets());
                (ip, false)
            }
            IpAddr::V6(v6) => (v6.octets(), true),
        };
        let mut meta = reg.q | transport_code(reg.transport) << META_TRANSPORT_SHIFT;
        if reg.connection.is_some() {
            meta |= META_CONNECTION;
        }
        if reg.instance.is_some() {
            meta |= META_INSTANCE;
        }
        if v6 {
            meta |= META_V6;
        }
        Ok(Binding {
            data: data.into_boxed_slice(),
            expires_at: reg.expires_at,
            updated_at: now,
            connection: reg.connection.unwrap_or(0),
            ip,
            cseq: reg.cseq,
            reg_id,
            key,
            ends,
            port: reg.source.port(),
            meta,
        })
    }

    fn part(&self, i: usize) -> &[u8] {
        let start = match i.checked_sub(1) {
            Some(prev) => self.ends.get(prev).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.ends.get(i).copied().unwrap_or(0);
        self.data
            .get(usize::from(start)..usize::from(end))
            .unwrap_or_default()
    }

    /// The contact URI as received.
    pub fn contact(&self) -> &[u8] {
        self.part(0)
    }

    /// The Contact parameters to echo, as received.
    pub fn params(&self) -> &[u8] {
        self.part(1)
    }

    /// The `+sip.instance` value as received.
    pub fn instance(&self) -> Option<&[u8]> {
        (self.meta & META_INSTANCE != 0).then(|| self.part(2))
    }

    pub fn reg_id(&self) -> Option<u32> {
        (self.reg_id & REG_ID_SET != 0).then_some(self.reg_id & !REG_ID_SET)
    }

    pub fn call_id(&self) -> &[u8] {
        self.part(3)
    }

    pub fn cseq(&self) -> u32 {
        self.cseq
    }

    /// The Path values, in the order they were stored.
    pub fn path(&self) -> Path<'_> {
        let start = usize::from(self.ends[3]);
        Path {
            rest: self.data.get(start..).unwrap_or_default(),
        }
    }

    /// q in thousandths.
    pub fn q(&self) -> u16 {
        self.meta & META_Q
    }

    /// Milliseconds on the caller's clock.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Milliseconds left at `now`, 0 once expired.
    pub fn expires_in(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }

    /// Whether the binding still exists at `now`: it lives while `now < expires_at`.
    pub fn is_live(&self, now: u64) -> bool {
        self.expires_at > now
    }

    /// When the binding was added or last refreshed, in milliseconds.
    pub fn updated_at(&self) -> u64 {
        self.updated_at
    }

    pub fn source(&self) -> SocketAddr {
        let ip = if self.meta & META_V6 != 0 {
            IpAddr::V6(Ipv6Addr::from(self.ip))
        } else {
            let [a, b, c, d, ..] = self.ip;
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        };
        SocketAddr::new(ip, self.port)
    }

    pub fn transport(&self) -> Transport {
        transport_from_code((self.meta & META_TRANSPORT) >> META_TRANSPORT_SHIFT)
    }

    pub fn connection(&self) -> Option<u64> {
        (self.meta & META_CONNECTION != 0).then_some(self.connection)
    }

    /// The heap bytes this binding owns beyond its own size.
    pub fn heap_len(&self) -> usize {
        self.data.len()
    }
}

impl fmt::Debug for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Binding")
            .field("contact", &self.contact().escape_ascii().to_string())
            .field("params", &self.params().escape_ascii().to_string())
            .field("q", &self.q())
            .field("expires_at", &self.expires_at)
            .field("updated_at", &self.updated_at)
            .field("call_id", &self.call_id().escape_ascii().to_string())
            .field("cseq", &self.cseq)
            .field(
                "instance",
                &self.instance().map(|i| i.escape_ascii().to_string()),
            )
            .field("reg_id", &self.reg_id())
            .field("path", &self.path().count())
            .field("source", &self.source())
            .field("transport", &self.transport())
            .field("connection", &self.connection())
            .field("key", &self.key)
            .finish()
    }
}

/// Iterator over the stored Path values.
#[derive(Clone, Debug)]
pub struct Path<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Path<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, tail) = self.rest.split_first_chunk::<2>()?;
        let (value, tail) = tail.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
        self.rest = tail;
        Some(value)
    }
}

fn transport_code(t: Transport) -> u16 {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
        Transport::Sctp => 3,
        Transport::Ws => 4,
        Transport::Wss => 5,
        Transport::Other => 6,
    }
}

fn transport_from_code(code: u16) -> Transport {
    match code {
        0 => Transport::Udp,
        1 => Transport::Tcp,
        2 => Transport::Tls,
        3 => Transport::Sctp,
        4 => Transport::Ws,
        5 => Transport::Wss,
        _ => Transport::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registration<'static> {
        Registration {
            contact: b"sip:u012345@192.0.2.14:5060;transport=udp",
            params: b";+sip.instance=\"<urn:uuid:1>\";reg-id=1",
            path: &[b"<sip:edge1.example.com;lr>", b"<sip:edge2.example.com;lr>"],
            instance: Some(b"\"<urn:uuid:1>\""),
            reg_id: Some(1),
            q: 700,
            expires_at: 3_600_000,
            call_id: b"7f1e3c2a9b8d4e6f0a1b2c3d4e5f6a7b@192.0.2.14",
            cseq: 2,
            source: "192.0.2.14:5060".parse().expect("address"),
            transport: Transport::Tls,
            connection: Some(42),
        }
    }

    #[test]
    fn fields_round_trip() {
        let r = reg();
        let b = Binding::new(&r, 7, 1_000).expect("fits");
        assert_eq!(b.contact(), r.contact);
        assert_eq!(b.params(), r.params);
        assert_eq!(b.instance(), r.instance);
        assert_eq!(b.reg_id(), Some(1));
        assert_eq!(b.q(), 700);
        assert_eq!(b.expires_at(), 3_600_000);
        assert_eq!(b.expires_in(3_000_000), 600_000);
        assert_eq!(b.expires_in(4_000_000), 0);
        assert!(b.is_live(3_599_999));
        assert!(!b.is_live(3_600_000));
        assert_eq!(b.updated_at(), 1_000);
        assert_eq!(b.call_id(), r.call_id);
        assert_eq!(b.cseq(), 2);
        assert_eq!(b.path().collect::<Vec<_>>(), r.path);
        assert_eq!(b.source(), r.source);
        assert_eq!(b.transport(), Transport::Tls);
        assert_eq!(b.connection(), Some(42));
        assert_eq!(b.key, 7);
    }

    #[test]
    fn absent_and_empty_fields() {
        let r = Registration {
            params: b"",
            path: &[],
            instance: None,
            reg_id: None,
            connection: None,
            q: 0,
            ..reg()
        };
        let b = Binding::new(&r, 0, 0).expect("fits");
        assert_eq!(b.instance(), None);
        assert_eq!(b.reg_id(), None);
        assert_eq!(b.connection(), None);
        assert_eq!(b.path().next(), None);
        assert_eq!(b.params(), b"");
        assert_eq!(b.q(), 0);
        // An empty instance is present, not absent; reg-id 0 likewise.
        let r = Registration {
            instance: Some(b""),
            reg_id: Some(0),
            ..r
        };
        let b = Binding::new(&r, 0, 0).expect("fits");
        assert_eq!(b.instance(), Some(&b""[..]));
        assert_eq!(b.reg_id(), Some(0));
        assert_eq!(b.path().next(), None);
    }

    #[test]
    fn every_transport_and_address_family_round_trips() {
        let transports = [
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Sctp,
            Transport::Ws,
            Transport::Wss,
            Transport::Other,
        ];
        let sources = [
            "192.0.2.1:1",
            "[2001:db8::1]:65535",
            "[::ffff:192.0.2.1]:5060",
        ];
        for t in transports {
            for s in sources {
                let source: SocketAddr = s.parse().expect("address");
                let b = Binding::new(
                    &Registration {
                        transport: t,
                        source,
                        q: Q_MAX,
                        ..reg()
                    },
                    1,
                    0,
                )
                .expect("fits");
                assert_eq!(b.transport(), t);
                assert_eq!(b.source(), source);
                assert_eq!(b.q(), Q_MAX);
            }
        }
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let too_long = vec![b'a'; 70_000];
        let long_path = [&too_long[..]];
        let cases: [(Registration<'_>, Error); 4] = [
            (Registration { q: 1001, ..reg() }, Error::QOutOfRange),
            (
                Registration {
                    reg_id: Some(1 << 31),
                    ..reg()
                },
                Error::RegIdOutOfRange,
            ),
            (
                Registration {
                    contact: &too_long,
                    ..reg()
                },
                Error::TooLong,
            ),
            (
                Registration {
                    path: &long_path,
                    ..reg()
                },
                Error::TooLong,
            ),
        ];
        for (r, want) in cases {
            assert_eq!(Binding::new(&r, 0, 0), Err(want));
        }
        // The largest reg-id RFC 5626 allows fits.
        let max = Registration {
            reg_id: Some((1 << 31) - 1),
            ..reg()
        };
        assert_eq!(
            Binding::new(&max, 0, 0).expect("fits").reg_id(),
            Some((1 << 31) - 1)
        );
    }

    #[test]
    fn packed_size() {
        assert_eq!(core::mem::size_of::<Binding>(), 80);
    }
}
