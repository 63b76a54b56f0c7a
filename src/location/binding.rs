//! One binding of an AOR to a contact address (RFC 3261 10), packed for a table of millions.
//!
//! A [`Binding`] is 80 bytes plus one heap block holding its variable-length fields (contact URI,
//! contact parameters, `+sip.instance`, Call-ID, Path values) back to back, located by `u16` end
//! offsets. It keeps bytes as it is given them; it does not parse or judge them. The registrar
//! decides what to store (RFC 3261 10.3 policy) and describes it with a [`Registration`]; the
//! one thing read here is the Contact parameter list, reduced once by [`echo_params`] to what a
//! 200 OK echoes, so that writing the answer copies it as it is.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::Error;
use crate::sip::{Params, Transport, chars};

/// Where [`echo_params`] put the parameters to store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoParams<'a> {
    /// A part of the list given, as it is.
    Slice(&'a [u8]),
    /// Written at the end of the caller's buffer, at `start..end`.
    Built { start: usize, end: usize },
}

/// The Contact parameters a binding keeps and a 200 OK echoes ([`Registration::params`]): the
/// header-parameter list `raw` of a Contact (what follows its first `;`, as `Contact::parse`
/// accepted it) without its `expires` parameters, the others as written between the separators
/// (white space around them dropped), joined by `;`. A list that is not a valid `generic-param`
/// list gives nothing. `has_expires`: whether the list may hold an `expires` parameter (what
/// the parse of the Contact found); when false, it is not looked for.
///
/// The usual lists are a slice of `raw`: no white space and either no `expires` or one at
/// either end (`expires=3600;+sip.instance=..`, `..;reg-id=1;expires=3600`), found without
/// reading the list by its grammar. Any other is read by it, and the result appended to
/// `scratch`.
#[inline]
pub fn echo_params<'a>(raw: &'a [u8], has_expires: bool, scratch: &mut Vec<u8>) -> EchoParams<'a> {
    let fast = if !has_expires {
        Some(raw)
    } else {
        leading_expires(raw).or_else(|| trailing_expires(raw))
    };
    // The rest has no white space, so each parameter is the text between two separators (a
    // quoted `;` lies in a value, and the grammar's reading agrees), and no `x`, so no other
    // `expires`.
    if let Some(kept) = fast
        && !chars::has_blank_or_x(kept, has_expires)
    {
        return EchoParams::Slice(kept);
    }
    echo_params_by_grammar(raw, scratch)
}

/// [`echo_params`] for a list read by its grammar.
#[cold]
#[inline(never)]
fn echo_params_by_grammar<'a>(raw: &[u8], scratch: &mut Vec<u8>) -> EchoParams<'a> {
    let start = scratch.len();
    let valid = Params::header_visit(raw, |p| {
        if !p.name.eq_ignore_ascii_case(b"expires") {
            if scratch.len() > start {
                scratch.push(b';');
            }
            scratch.extend_from_slice(p.raw);
        }
        Some(())
    });
    if valid.is_none() {
        scratch.truncate(start);
    }
    EchoParams::Built {
        start,
        end: scratch.len(),
    }
}

/// `expires=` (any case) and digits at the start of `raw`, then its end or a `;`: what follows.
#[inline]
fn leading_expires(raw: &[u8]) -> Option<&[u8]> {
    if !chars::eq_lower(raw.get(..8)?, b"expires=") {
        return None;
    }
    let digits = raw
        .get(8..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    match raw.get(8 + digits) {
        _ if digits == 0 => None,
        None => Some(b""),
        Some(b';') => raw.get(9 + digits..),
        Some(_) => None,
    }
}

/// `;expires=` (any case) and digits at the end of `raw`: what comes before. The `;` separates
/// parameters: within a quoted string, a closing quote would follow it.
fn trailing_expires(raw: &[u8]) -> Option<&[u8]> {
    let digits = raw.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let at = raw.len().checked_sub(digits + 9)?;
    let name = raw.get(at + 1..at + 9)?;
    (digits > 0 && raw.get(at) == Some(&b';') && chars::eq_lower(name, b"expires="))
        .then(|| raw.get(..at))
        .flatten()
}

/// What one Contact of a REGISTER asks the shard to store: the input of
/// [`Shard::insert`](super::Shard::insert) and [`Shard::refresh`](super::Shard::refresh).
#[derive(Clone, Copy, Debug)]
pub struct Registration<'a> {
    /// The contact URI as received, without `<>`: echoed in the 200 OK and used as the
    /// Request-URI of requests routed to this binding.
    pub contact: &'a [u8],
    /// The Contact header parameters to echo, in the form [`echo_params`] gives: the list as
    /// received without its `expires` parameters and the leading `;` (for instance
    /// `+sip.instance="<urn:...>";reg-id=1`). A 200 OK writes them after the URI as they are,
    /// with the granted `expires` after them.
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

/// Heap blocks given back by the consumer of events ([`Shard::recycle`](super::Shard::recycle)),
/// reused for new bindings and event copies of the same size: a steady stream of refreshes then
/// allocates nothing. Bounded: beyond [`Spare::MAX`] blocks, more are freed.
#[derive(Debug, Default)]
pub(super) struct Spare {
    blocks: Vec<Box<[u8]>>,
}

impl Spare {
    const MAX: usize = 64;

    /// A block of exactly `len` bytes (contents unspecified).
    pub(super) fn take(&mut self, len: usize) -> Box<[u8]> {
        match self.blocks.iter().rposition(|b| b.len() == len) {
            Some(i) => self.blocks.swap_remove(i),
            None => vec![0u8; len].into_boxed_slice(),
        }
    }

    /// A block holding a copy of `bytes`.
    pub(super) fn copy(&mut self, bytes: &[u8]) -> Box<[u8]> {
        let mut b = self.take(bytes.len());
        b.copy_from_slice(bytes);
        b
    }

    pub(super) fn give(&mut self, block: Box<[u8]>) {
        if !block.is_empty() && self.blocks.len() < Spare::MAX {
            self.blocks.push(block);
        }
    }
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
    #[cfg(test)]
    pub(super) fn new(reg: &Registration<'_>, key: u32, now: u64) -> Result<Binding, Error> {
        Binding::new_in(reg, key, now, &mut Spare::default())
    }

    /// Packs a registration (`key` and `now`, the update time, come from the shard), its heap
    /// block taken from `spare` when one of the right size is there.
    pub(super) fn new_in(
        reg: &Registration<'_>,
        key: u32,
        now: u64,
        spare: &mut Spare,
    ) -> Result<Binding, Error> {
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
        let mut data = spare.take(total);
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            if let Some(dst) = data.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            at += bytes.len();
            at
        };
        let mut ends = [0u16; 4];
        for (end, part) in ends
            .iter_mut()
            .zip([reg.contact, reg.params, instance, reg.call_id])
        {
            *end = put(part) as u16; // at most total <= u16::MAX, checked above
        }
        for p in reg.path {
            put(&(p.len() as u16).to_be_bytes()); // each <= 0xffff, checked
            put(p);
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
            data,
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

    /// A copy of this binding with its heap block taken from `spare` when one fits.
    pub(super) fn copy_in(&self, spare: &mut Spare) -> Binding {
        let mut data = spare.take(self.data.len());
        data.copy_from_slice(&self.data);
        Binding {
            data,
            expires_at: self.expires_at,
            updated_at: self.updated_at,
            connection: self.connection,
            ip: self.ip,
            cseq: self.cseq,
            reg_id: self.reg_id,
            key: self.key,
            ends: self.ends,
            port: self.port,
            meta: self.meta,
        }
    }

    /// The heap block, for [`Spare::give`].
    pub(super) fn into_data(self) -> Box<[u8]> {
        self.data
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

    /// The number naming this binding within its shard, as its
    /// [`BindingId`](super::BindingId) does: unique among the shard's bindings; a refresh that
    /// moves the expiry earlier gives the binding a new one.
    pub fn key(&self) -> u32 {
        self.key
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

    /// Which of the shell's UDP sockets a binding without a connection was learnt on, as the
    /// registrar numbers them: requests to the device leave from it, the address its NAT
    /// mapping was opened to. Kept in the connection slot, which such a binding does not use
    /// (index + 1; 0 when not known, as after a restart: it is not in the durable form).
    pub fn local(&self) -> Option<u16> {
        if self.meta & META_CONNECTION != 0 {
            return None;
        }
        self.connection
            .checked_sub(1)
            .and_then(|i| u16::try_from(i).ok())
    }

    /// Notes [`Binding::local`]; a binding with a connection keeps its connection instead.
    pub(super) fn set_local(&mut self, index: u16) {
        if self.meta & META_CONNECTION == 0 {
            self.connection = u64::from(index) + 1;
        }
    }

    /// The heap bytes this binding owns beyond its own size.
    pub fn heap_len(&self) -> usize {
        self.data.len()
    }

    /// Appends the durable form of this binding to `out`: every field but the connection id
    /// (which dies with the process) and the shard's key. Little-endian, [`DURABLE_FIXED`]
    /// bytes of fixed fields, then the variable-length block as stored:
    ///
    /// ```text
    /// expires_at u64 | updated_at u64 | cseq u32 | reg_id u32 (bit 31: present) |
    /// ends [u16; 4] (contact, params, instance, call-id end offsets) | port u16 |
    /// meta u16 (q 10 bits, transport 3 bits, bit 14 instance, bit 15 IPv6) | ip [u8; 16] |
    /// data length u16 | data (contact, params, instance, call-id, then each Path value as a
    /// big-endian u16 length and its bytes)
    /// ```
    ///
    /// One copy of the packed fields; no allocation when `out` has room.
    pub fn encode_durable(&self, out: &mut Vec<u8>) {
        out.reserve(DURABLE_FIXED + self.data.len());
        out.extend_from_slice(&self.expires_at.to_le_bytes());
        out.extend_from_slice(&self.updated_at.to_le_bytes());
        out.extend_from_slice(&self.cseq.to_le_bytes());
        out.extend_from_slice(&self.reg_id.to_le_bytes());
        for end in self.ends {
            out.extend_from_slice(&end.to_le_bytes());
        }
        out.extend_from_slice(&self.port.to_le_bytes());
        out.extend_from_slice(&(self.meta & !META_CONNECTION).to_le_bytes());
        out.extend_from_slice(&self.ip);
        // Binding::new keeps data within u16::MAX bytes.
        out.extend_from_slice(&(self.data.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.data);
    }

    /// The binding [`Binding::encode_durable`] wrote at the start of `bytes`, and the bytes
    /// after it; `None` if they do not hold a well-formed one (truncated, offsets out of order,
    /// q above 1.0, a malformed Path block). The connection is absent; the shard assigns the key
    /// when it restores the binding.
    pub fn decode_durable(bytes: &[u8]) -> Option<(Binding, &[u8])> {
        let mut r = Reader(bytes);
        let expires_at = u64::from_le_bytes(r.array()?);
        let updated_at = u64::from_le_bytes(r.array()?);
        let cseq = u32::from_le_bytes(r.array()?);
        let mut reg_id = u32::from_le_bytes(r.array()?);
        let mut ends = [0u16; 4];
        for end in &mut ends {
            *end = u16::from_le_bytes(r.array()?);
        }
        let port = u16::from_le_bytes(r.array()?);
        let meta = u16::from_le_bytes(r.array()?) & !META_CONNECTION;
        let ip: [u8; 16] = r.array()?;
        let len = usize::from(u16::from_le_bytes(r.array()?));
        let data = r.take(len)?;
        let ordered = ends.windows(2).all(|w| w[0] <= w[1]);
        if !ordered || usize::from(ends[3]) > data.len() || meta & META_Q > Q_MAX {
            return None;
        }
        if reg_id & REG_ID_SET == 0 {
            reg_id = 0;
        }
        // Absent instance: Binding::new stores an empty one.
        if meta & META_INSTANCE == 0 && ends[1] != ends[2] {
            return None;
        }
        // The Path block must split into whole values.
        let mut path = Path {
            rest: data.get(usize::from(ends[3])..)?,
        };
        while path.next().is_some() {}
        if !path.rest.is_empty() {
            return None;
        }
        let (data, ends) = echo_form(data, ends);
        let binding = Binding {
            data,
            expires_at,
            updated_at,
            connection: 0,
            ip,
            cseq,
            reg_id,
            key: 0,
            ends,
            port,
            meta,
        };
        Some((binding, r.0))
    }

    /// Whether `self` and `other` are the same binding of one AOR for persistence: the same
    /// contact URI bytes, `+sip.instance` and reg-id. A refresh that changes any of them is a
    /// removal of the old binding and an addition of the new one on disk.
    pub fn same_identity(&self, other: &Binding) -> bool {
        self.contact() == other.contact()
            && self.instance() == other.instance()
            && self.reg_id() == other.reg_id()
    }
}

/// The size of the fixed part of [`Binding::encode_durable`]'s form.
pub const DURABLE_FIXED: usize = 8 + 8 + 4 + 4 + 8 + 2 + 2 + 16 + 2;

/// The data block of a decoded binding with its Contact parameters in [`echo_params`] form, and
/// the end offsets. Records written before bindings kept that form hold the parameters as
/// received, `expires` included; the rest are already in it and come back as they are (the
/// form is stable: reducing it again gives it back).
fn echo_form(data: &[u8], ends: [u16; 4]) -> (Box<[u8]>, [u16; 4]) {
    let (from, to) = (usize::from(ends[0]), usize::from(ends[1]));
    let params = data.get(from..to).unwrap_or_default();
    if !chars::has_blank_or_x(params, true) {
        return (data.into(), ends);
    }
    let mut echo = Vec::new();
    let kept = match echo_params(params, true, &mut echo) {
        EchoParams::Slice(kept) => kept,
        EchoParams::Built { start, end } => echo.get(start..end).unwrap_or_default(),
    };
    if kept == params {
        return (data.into(), ends);
    }
    let shorter = params.len() - kept.len().min(params.len());
    let mut out = Vec::with_capacity(data.len() - shorter);
    out.extend_from_slice(data.get(..from).unwrap_or_default());
    out.extend_from_slice(kept);
    out.extend_from_slice(data.get(to..).unwrap_or_default());
    let mut ends = ends;
    for end in ends.iter_mut().skip(1) {
        // The reduced list is never longer than the one it came from.
        *end -= shorter as u16;
    }
    (out.into_boxed_slice(), ends)
}

/// A checked reader over untrusted bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
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
            params: b"+sip.instance=\"<urn:uuid:1>\";reg-id=1",
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

    /// The socket a binding was learnt on shares the connection's slot: a binding with a
    /// connection keeps it, one without remembers the socket, and neither reaches disk.
    #[test]
    fn local_socket_and_connection_share_a_slot_without_mixing() {
        let tcp = Binding::new(&reg(), 1, 0).expect("fits");
        assert!(tcp.connection().is_some());
        let mut moved = tcp.clone();
        moved.set_local(3);
        assert_eq!(
            (moved.connection(), moved.local()),
            (tcp.connection(), None)
        );
        let mut udp = Binding::new(
            &Registration {
                connection: None,
                ..reg()
            },
            2,
            0,
        )
        .expect("fits");
        assert_eq!((udp.connection(), udp.local()), (None, None));
        udp.set_local(0);
        assert_eq!((udp.connection(), udp.local()), (None, Some(0)));
        udp.set_local(7);
        assert_eq!(udp.local(), Some(7));
        let mut out = Vec::new();
        udp.encode_durable(&mut out);
        let (d, _) = Binding::decode_durable(&out).expect("decodes");
        assert_eq!(d.local(), None);
    }

    #[test]
    fn durable_form_round_trips_every_field_but_the_connection() {
        for r in [
            reg(),
            Registration {
                params: b"",
                path: &[],
                instance: None,
                reg_id: None,
                connection: None,
                source: "[2001:db8::7]:5061".parse().expect("address"),
                ..reg()
            },
        ] {
            let b = Binding::new(&r, 9, 1_234).expect("fits");
            let mut out = vec![0xaa];
            b.encode_durable(&mut out);
            assert_eq!(out.len(), 1 + DURABLE_FIXED + b.heap_len());
            out.push(0xbb);
            let (d, rest) = Binding::decode_durable(&out[1..]).expect("decodes");
            assert_eq!(rest, [0xbb]);
            assert_eq!(d.connection(), None);
            assert_eq!(d.key, 0);
            let want = Binding {
                connection: 0,
                key: 0,
                meta: b.meta & !META_CONNECTION,
                ..b.clone()
            };
            assert_eq!(d, want);
            assert!(d.same_identity(&b));
            // Every truncation is refused, never a panic.
            for n in 0..out.len() - 2 {
                assert!(Binding::decode_durable(&out[1..1 + n]).is_none(), "{n}");
            }
        }
    }

    #[test]
    fn malformed_durable_forms_are_refused() {
        let b = Binding::new(&reg(), 0, 0).expect("fits");
        let mut good = Vec::new();
        b.encode_durable(&mut good);
        let q_at = 8 + 8 + 4 + 4 + 8 + 2;
        let high = (b.meta >> 8) as u8;
        let cases: [&[(usize, u8)]; 3] = [
            // contact end beyond params end: offsets out of order
            &[(24, 0xff)],
            // q 1023 (the low ten bits of meta)
            &[(q_at, 0xff), (q_at + 1, high | 0x03)],
            // a Path length running past the data
            &[(DURABLE_FIXED + usize::from(b.ends[3]), 0x7f)],
        ];
        for edits in cases {
            let mut bad = good.clone();
            for &(at, byte) in edits {
                bad[at] = byte;
            }
            assert!(Binding::decode_durable(&bad).is_none(), "{edits:?}");
        }
    }

    #[test]
    fn packed_size() {
        assert_eq!(core::mem::size_of::<Binding>(), 80);
    }

    /// What a 200 OK carries for a Contact with parameters `raw` and expiry 60: written from
    /// the raw list as the writer always could, and from its reduced form as bindings keep it.
    fn contact_lines(raw: &[u8], has_expires: bool) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let headers = [crate::sip::Header::EMPTY; 0];
        let h = crate::sip::Headers::new(&headers);
        let source: SocketAddr = "192.0.2.1:5060".parse().expect("address");
        let uri = b"sip:a@192.0.2.1";
        let write = |f: &dyn Fn(&mut crate::sip::ResponseBuilder<'_>)| {
            let mut buf = vec![0u8; 1024];
            let mut r = crate::sip::ResponseBuilder::start(&mut buf, 200, "OK", &h, source, None);
            f(&mut r);
            let n = r.finish().expect("fits");
            buf.truncate(n);
            buf
        };
        let mut scratch = vec![0xaa];
        let echo = match echo_params(raw, has_expires, &mut scratch) {
            EchoParams::Slice(s) => s.to_vec(),
            EchoParams::Built { start, end } => scratch[start..end].to_vec(),
        };
        let old = write(&|r| {
            r.contact(uri, raw, 60);
        });
        let new = write(&|r| {
            r.contact_echo(uri, &echo, 60);
        });
        (old, new, echo)
    }

    #[test]
    fn reduced_parameters_are_written_as_the_raw_ones_were() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"expires=3600", b""),
            (b"EXPIRES=0", b""),
            (
                b"expires=3600;+sip.instance=\"<urn:x>\";reg-id=1",
                b"+sip.instance=\"<urn:x>\";reg-id=1",
            ),
            (
                b"+sip.instance=\"<urn:x>\";reg-id=1;Expires=60",
                b"+sip.instance=\"<urn:x>\";reg-id=1",
            ),
            (b"a=1;expires=5;b", b"a=1;b"),
            // A parameter without a value keeps the white space after its name, as the
            // grammar's reading hands it over.
            (b"a ; expires = 5 ; b = \"x y\"", b"a ;b = \"x y\""),
            (b"expires=1;expires=2;c", b"c"),
            (b"p=\"a;expires=5\"", b"p=\"a;expires=5\""),
            (b"p=\";expires=5\";expires=7", b"p=\";expires=5\""),
            (
                b"methods=\"INVITE, BYE\";expires=3600",
                b"methods=\"INVITE, BYE\"",
            ),
            (b"x=\r\n 1;q=0.5", b"x=\r\n 1;q=0.5"),
        ];
        for &(raw, want) in cases {
            let (old, new, echo) = contact_lines(raw, true);
            assert_eq!(echo, want, "{:?}", raw.escape_ascii().to_string());
            assert_eq!(old, new, "{:?}", raw.escape_ascii().to_string());
        }
        // Without an expires parameter the list is not looked at when it has no white space.
        assert_eq!(contact_lines(b"q=0.5;reg-id=1", false).2, b"q=0.5;reg-id=1");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// For every Contact that parses, the reduced parameters write the bytes the raw ones
        /// did, and reducing them again changes nothing (a binding read back stays as it is).
        #[test]
        fn reduced_parameters_agree_with_the_writer(
            params in crate::sip::chars::arb::edited(crate::sip::chars::arb::header_params()),
        ) {
            let mut value = b"<sip:a@192.0.2.1>;".to_vec();
            value.extend_from_slice(&params);
            let Ok(c) = crate::sip::Contact::parse(&value) else {
                return Ok(());
            };
            let raw = c.addr.params.raw();
            let (old, new, echo) = contact_lines(raw, c.expires.is_some());
            proptest::prop_assert_eq!(&old, &new, "{:?}", raw.escape_ascii().to_string());
            let (_, _, again) = contact_lines(&echo, true);
            proptest::prop_assert_eq!(&again, &echo);
        }
    }

    /// Records written before bindings kept reduced parameters hold them as received, with the
    /// Contact's expires: they load reduced, every other field as it was.
    #[test]
    fn records_of_the_earlier_form_load_reduced() {
        let earlier = Registration {
            params: b"expires=3600;+sip.instance=\"<urn:uuid:1>\";reg-id=1",
            ..reg()
        };
        let b = Binding::new(&earlier, 0, 5).expect("fits");
        let mut bytes = Vec::new();
        b.encode_durable(&mut bytes);
        let (d, rest) = Binding::decode_durable(&bytes).expect("decodes");
        assert!(rest.is_empty());
        let want = Binding::new(&reg(), 0, 5).expect("fits");
        assert_eq!(d.params(), want.params());
        assert_eq!(
            (d.contact(), d.instance(), d.call_id()),
            (want.contact(), want.instance(), want.call_id())
        );
        assert_eq!(
            d.path().collect::<Vec<_>>(),
            want.path().collect::<Vec<_>>()
        );
        assert_eq!(d.heap_len(), want.heap_len());
        // The reduced form reads back as it is.
        let mut again = Vec::new();
        d.encode_durable(&mut again);
        let (e, _) = Binding::decode_durable(&again).expect("decodes");
        assert_eq!(e, d);
    }
}
