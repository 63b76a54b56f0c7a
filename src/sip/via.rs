//! Via values (RFC 3261 20.42, RFC 3581 rport): sent-protocol, sent-by and the parameters a
//! server acts on. LWS is allowed around every `/` of the sent-protocol and around the `:` of
//! sent-by (RFC 4475 wsinv).

use core::net::IpAddr;

use super::chars::{self, run};
use super::params::{Param, Params, Recognise};
use super::uri::Host;

/// The transport named in a Via.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
    Other,
}

impl Transport {
    #[inline]
    pub fn classify(token: &[u8]) -> Transport {
        // The names are letters only: with the case bit set in each byte of the token (and
        // zeros after a short one), each compares as one word.
        let (word, case) = match *token {
            [a, b] => ([a, b, 0, 0], 0x2020),
            [a, b, c] => ([a, b, c, 0], 0x20_2020),
            [a, b, c, d] => ([a, b, c, d], 0x2020_2020),
            _ => return Transport::Other,
        };
        match u32::from_le_bytes(word) | case {
            w if w == u32::from_le_bytes(*b"udp\0") => Transport::Udp,
            w if w == u32::from_le_bytes(*b"tcp\0") => Transport::Tcp,
            w if w == u32::from_le_bytes(*b"tls\0") => Transport::Tls,
            w if w == u32::from_le_bytes(*b"sctp") => Transport::Sctp,
            w if w == u32::from_le_bytes(*b"ws\0\0") => Transport::Ws,
            w if w == u32::from_le_bytes(*b"wss\0") => Transport::Wss,
            _ => Transport::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other => "",
        }
    }
}

/// RFC 3581: the client asks for `rport` without a value; a server fills it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rport {
    Absent,
    Requested,
    Value(u16),
}

/// One Via value.
#[derive(Clone, Copy, Debug)]
pub struct Via<'a> {
    pub transport: Transport,
    pub raw_transport: &'a [u8],
    pub host: Host<'a>,
    pub host_raw: &'a [u8],
    pub port: Option<u16>,
    pub params: Params<'a>,
    pub branch: Option<&'a [u8]>,
    pub received: Option<IpAddr>,
    pub rport: Rport,
    pub maddr: Option<&'a [u8]>,
    /// The parameters other than `received` and `rport`, as one slice of the value, when they
    /// are exactly `p1;p2;...` with nothing between them and come before any `received` or
    /// `rport` (the usual `branch=..;rport`): what a response's Via repeats before its own
    /// `received` and `rport`, copied without reading the list again. `None` otherwise.
    pub kept_params: Option<&'a [u8]>,
}

impl<'a> Via<'a> {
    /// Parses one `via-parm` (the caller has split comma lists).
    pub fn parse(value: &'a [u8]) -> Option<Via<'a>> {
        Via::read(value)
    }

    /// [`Via::parse`] inlined, for the caller that keeps the Via where it is built.
    #[inline(always)]
    pub(crate) fn read(value: &'a [u8]) -> Option<Via<'a>> {
        let (transport, raw_transport, end) = match usual_protocol(value) {
            Some(usual) => usual,
            None => {
                let i = protocol_name_version(value)?;
                let end = chars::run_end(value, i, run::TOKEN);
                let raw = value.get(i..end).filter(|t| !t.is_empty())?;
                (Transport::classify(raw), raw, end)
            }
        };
        // sent-protocol LWS sent-by: at least one white space.
        let start = skip_lws(value, end);
        if start == end {
            return None;
        }
        // The host is read, and checked, in one pass up to the first byte no host continues
        // with.
        let (host, end) = Host::parse_at(value, start)?;
        let host_raw = value.get(start..end)?;
        let mut i = skip_lws(value, end);
        let mut port = None;
        if value.get(i) == Some(&b':') {
            let from = skip_lws(value, i + 1);
            let (p, end) = chars::decimal_at(value, from, 65_535)?;
            port = Some(p as u16);
            i = skip_lws(value, end);
        }
        let mut found = Found {
            branch: None,
            received: None,
            rport: Rport::Absent,
            maddr: None,
            dropped: false,
            contiguous: true,
            kept_len: 0,
            kept_last: None,
        };
        let (params, kept_params) = match value.get(i..) {
            Some([]) => (Params::EMPTY, Some(&b""[..])),
            Some([b';', rest @ ..]) => {
                let params = Params::header_read(rest, &mut found)?;
                (params, found.kept(rest))
            }
            _ => return None,
        };
        Some(Via {
            transport,
            raw_transport,
            host,
            host_raw,
            port,
            params,
            branch: found.branch,
            received: found.received,
            rport: found.rport,
            maddr: found.maddr,
            kept_params,
        })
    }
}

/// The usual sent-protocol, `SIP/2.0/` and `UDP`, `TCP` or `TLS` before a space, in two word
/// compares (with the case bit set in every letter): the transport, its name and where it
/// ends. `None` for any other shape, which the grammar then reads.
#[inline(always)]
fn usual_protocol(value: &[u8]) -> Option<(Transport, &[u8], usize)> {
    const SIP_2_0: u64 = u64::from_le_bytes(*b"sip/2.0/");
    const UDP: u32 = u32::from_le_bytes(*b"udp ");
    const TCP: u32 = u32::from_le_bytes(*b"tcp ");
    const TLS: u32 = u32::from_le_bytes(*b"tls ");
    let (head, rest) = value.split_first_chunk::<8>()?;
    let name = rest.first_chunk::<4>()?;
    if u64::from_le_bytes(*head) | 0x20_2020 != SIP_2_0 {
        return None;
    }
    let transport = match u32::from_le_bytes(*name) | 0x20_2020 {
        UDP => Transport::Udp,
        TCP => Transport::Tcp,
        TLS => Transport::Tls,
        _ => return None,
    };
    Some((transport, rest.get(..3)?, 11))
}

/// `protocol-name SLASH protocol-version SLASH` with LWS anywhere around the slashes, which
/// must be `SIP` and `2.0`; where the transport starts.
fn protocol_name_version(s: &[u8]) -> Option<usize> {
    let start = skip_lws(s, 0);
    let end = chars::run_end(s, start, run::TOKEN);
    let name = s.get(start..end)?;
    let start = separator(s, end, b'/')?;
    let end = chars::run_end(s, start, run::TOKEN);
    let version = s.get(start..end)?;
    let next = separator(s, end, b'/')?;
    (name.eq_ignore_ascii_case(b"SIP") && version == b"2.0").then_some(next)
}

/// `SWS b SWS` at `s[i..]`: where what follows it starts.
fn separator(s: &[u8], i: usize, b: u8) -> Option<usize> {
    let i = skip_lws(s, i);
    (s.get(i) == Some(&b)).then(|| skip_lws(s, i + 1))
}

/// The first index at or after `i` that is not linear white space.
#[inline(always)]
fn skip_lws(s: &[u8], mut i: usize) -> usize {
    while s.get(i).is_some_and(|&b| chars::is_lws(b)) {
        i += 1;
    }
    i
}

/// `1*DIGIT` no larger than `max`, the whole of `s`.
#[inline(always)]
fn decimal(s: &[u8], max: u32) -> Option<u32> {
    match chars::decimal_at(s, 0, max)? {
        (v, end) if end == s.len() => Some(v),
        _ => None,
    }
}

/// `branch=` (the name in any case) at `list[i..]` with a value of token and host bytes right
/// after the `=`: where the value starts and ends. `None` for any other shape, which the
/// general step reads (LWS around the `=`, a quoted value, no value).
#[inline(always)]
fn branch_at(list: &[u8], i: usize) -> Option<(usize, usize)> {
    const BRANCH: u64 = u64::from_le_bytes(*b"branch=\0");
    let w = chars::word_at(list, i)?;
    if (w & 0x00ff_ffff_ffff_ffff) | 0x2020_2020_2020 != BRANCH {
        return None;
    }
    let from = i + 7;
    // The usual branch is long (the magic cookie and a unique part): eight bytes a step.
    let end = chars::long_run_end(list, from, run::GEN_VALUE);
    (end > from).then_some((from, end))
}

/// `rport` (in any case) at `list[i..]` without a value: the end of the list or a `;` right
/// after it.
///
/// One word compare and one byte compare, with the case bit set in each (only the byte that
/// differs from a lower-case letter by that bit, its upper case, becomes it). (`eq_lower` over
/// five bytes was left a call per half by the compiler.)
#[inline(always)]
fn bare_rport_at(list: &[u8], i: usize) -> bool {
    const RPOR: u32 = u32::from_le_bytes(*b"rpor");
    match list.get(i..).and_then(|rest| rest.first_chunk::<5>()) {
        Some(&[r, p, o, r2, t]) => {
            u32::from_le_bytes([r, p, o, r2]) | 0x2020_2020 == RPOR
                && t | 0x20 == b't'
                && matches!(list.get(i + 5), None | Some(b';'))
        }
        None => false,
    }
}

/// What the parameters of a Via say, gathered in the pass that validates them.
struct Found<'a> {
    branch: Option<&'a [u8]>,
    received: Option<IpAddr>,
    rport: Rport,
    maddr: Option<&'a [u8]>,
    /// A `received` or `rport` has been seen.
    dropped: bool,
    /// No kept parameter came after a dropped one.
    contiguous: bool,
    /// The lengths of the kept parameters, one more each for the `;` after it.
    kept_len: usize,
    /// The last kept parameter.
    kept_last: Option<&'a [u8]>,
}

impl<'a> Recognise<'a> for Found<'a> {
    /// The usual two, `branch=` with a plain value and a bare `rport`, told by a word compare.
    #[inline(always)]
    fn usual(&mut self, list: &'a [u8], i: usize) -> Option<usize> {
        if let Some((from, end)) = branch_at(list, i) {
            self.branch = Some(list.get(from..end)?);
            self.keep(list.get(i..end)?);
            Some(end)
        } else if bare_rport_at(list, i) {
            self.rport = Rport::Requested;
            self.dropped = true;
            Some(i + 5)
        } else {
            None
        }
    }

    /// Takes in one parameter; `None` when its value is malformed. Names are told apart by
    /// their length first, so each is compared with one name at most (two for length 5).
    #[inline(always)]
    fn visit(&mut self, p: &Param<'a>) -> Option<()> {
        let name = p.name;
        match name.len() {
            6 if chars::eq_lower(name, b"branch") => self.branch = Some(p.value?),
            8 if chars::eq_lower(name, b"received") => {
                // RFC 3261: received = IPv4address / IPv6address; RFC 5118 4.5 shows it with
                // brackets too, and both are accepted.
                let v = p.value?;
                let v = v
                    .strip_prefix(b"[")
                    .and_then(|v| v.strip_suffix(b"]"))
                    .unwrap_or(v);
                self.received = Some(core::str::from_utf8(v).ok()?.parse().ok()?);
                self.dropped = true;
                return Some(());
            }
            5 if chars::eq_lower(name, b"rport") => {
                self.rport = match p.value {
                    None => Rport::Requested,
                    Some(v) => Rport::Value(decimal(v, 65_535)? as u16),
                };
                self.dropped = true;
                return Some(());
            }
            5 if chars::eq_lower(name, b"maddr") => {
                let v = p.value?;
                Host::parse(v)?;
                self.maddr = Some(v);
            }
            3 if chars::eq_lower(name, b"ttl") => {
                decimal(p.value?, 255)?;
            }
            _ => {}
        }
        self.keep(p.raw);
        Some(())
    }
}

impl<'a> Found<'a> {
    /// Takes in a parameter that a response repeats (any but `received` and `rport`).
    #[inline(always)]
    fn keep(&mut self, raw: &'a [u8]) {
        self.contiguous &= !self.dropped;
        self.kept_len += raw.len() + 1;
        self.kept_last = Some(raw);
    }

    /// [`Via::kept_params`] for the list `list`, once every parameter has been visited. The
    /// kept parameters are one plain run from the start exactly when the last of them ends
    /// where their lengths and one `;` between each add up to: any LWS or dropped parameter
    /// between them, or before the first, would make the run longer.
    fn kept(&self, list: &'a [u8]) -> Option<&'a [u8]> {
        let end = match self.kept_last {
            Some(last) => last.as_ptr() as usize + last.len() - list.as_ptr() as usize,
            None => 0,
        };
        list.get(..end)
            .filter(|_| self.contiguous && end == self.kept_len.saturating_sub(1))
    }
}

/// The parser the one-pass version replaced, kept as the reference it is tested against.
#[cfg(test)]
mod reference {
    use super::super::chars::{self, TOKEN};
    use super::super::params::{Param, Params};
    use super::super::uri::Host;
    use super::{Rport, Transport, Via};

    /// The old `Transport::classify`.
    pub fn classify(token: &[u8]) -> Transport {
        const NAMES: [(&[u8], Transport); 6] = [
            (b"UDP", Transport::Udp),
            (b"TCP", Transport::Tcp),
            (b"TLS", Transport::Tls),
            (b"SCTP", Transport::Sctp),
            (b"WS", Transport::Ws),
            (b"WSS", Transport::Wss),
        ];
        NAMES
            .iter()
            .find(|(n, _)| token.eq_ignore_ascii_case(n))
            .map_or(Transport::Other, |(_, t)| *t)
    }

    /// A small cursor over a header value that skips LWS where the grammar allows it.
    struct Cursor<'a> {
        s: &'a [u8],
    }

    impl<'a> Cursor<'a> {
        fn lws(&mut self) -> bool {
            let t = chars::trim_start(self.s);
            let skipped = t.len() != self.s.len();
            self.s = t;
            skipped
        }

        fn token(&mut self) -> Option<&'a [u8]> {
            let n = self.s.iter().take_while(|&&b| chars::is(b, TOKEN)).count();
            let (t, rest) = self.s.split_at_checked(n)?;
            self.s = rest;
            (n > 0).then_some(t)
        }

        fn byte(&mut self, b: u8) -> Option<()> {
            let rest = self.s.strip_prefix(&[b])?;
            self.s = rest;
            Some(())
        }

        /// `SWS b SWS`
        fn separator(&mut self, b: u8) -> Option<()> {
            self.lws();
            self.byte(b)?;
            self.lws();
            Some(())
        }
    }

    /// The old `Via::parse`.
    pub fn parse<'a>(value: &'a [u8]) -> Option<Via<'a>> {
        let mut c = Cursor { s: value };
        c.lws();
        let name = c.token()?;
        c.separator(b'/')?;
        let version = c.token()?;
        c.separator(b'/')?;
        let raw_transport = c.token()?;
        if !name.eq_ignore_ascii_case(b"SIP") || version != b"2.0" {
            return None;
        }
        // sent-protocol LWS sent-by: at least one white space.
        if !c.lws() {
            return None;
        }
        // The host is read, and checked, in one pass up to the first byte no host continues
        // with.
        let (host, host_len) = Host::parse_at(c.s, 0)?;
        let (host_raw, rest) = c.s.split_at_checked(host_len)?;
        c.s = rest;
        c.lws();
        let mut port = None;
        if c.s.first() == Some(&b':') {
            c.separator(b':')?;
            let n = c.s.iter().take_while(|b| b.is_ascii_digit()).count();
            let (digits, rest) = c.s.split_at_checked(n)?;
            port = Some(chars::parse_decimal(digits, 65_535)? as u16);
            c.s = rest;
            c.lws();
        }
        let mut branch = None;
        let mut received = None;
        let mut rport = Rport::Absent;
        let mut maddr = None;
        // Where the kept parameters end, and where the next one must start to stay contiguous
        // (offsets into the list); `None` once they are not one plain run.
        let list_start = c.s.get(1..).unwrap_or_default().as_ptr() as usize;
        let (mut kept_end, mut next_start, mut contiguous, mut dropped) = (0, 0, true, false);
        // The parameters a server acts on are read in the pass that validates the list.
        let mut visit = |p: &Param<'a>| {
            let is_dropped =
                chars::eq_lower(p.name, b"received") || chars::eq_lower(p.name, b"rport");
            if is_dropped {
                dropped = true;
            } else {
                let offset = p.raw.as_ptr() as usize - list_start;
                contiguous &= !dropped && offset == next_start;
                kept_end = offset + p.raw.len();
                next_start = kept_end + 1;
            }
            if chars::eq_lower(p.name, b"branch") {
                branch = Some(p.value?);
            } else if chars::eq_lower(p.name, b"received") {
                // RFC 3261: received = IPv4address / IPv6address; RFC 5118 4.5 shows it with
                // brackets too, and both are accepted.
                let v = p.value?;
                let v = v
                    .strip_prefix(b"[")
                    .and_then(|v| v.strip_suffix(b"]"))
                    .unwrap_or(v);
                received = Some(core::str::from_utf8(v).ok()?.parse().ok()?);
            } else if chars::eq_lower(p.name, b"rport") {
                rport = match p.value {
                    None => Rport::Requested,
                    Some(v) => Rport::Value(chars::parse_decimal(v, 65_535)? as u16),
                };
            } else if chars::eq_lower(p.name, b"maddr") {
                let v = p.value?;
                Host::parse(v)?;
                maddr = Some(v);
            } else if chars::eq_lower(p.name, b"ttl") {
                chars::parse_decimal(p.value?, 255)?;
            }
            Some(())
        };
        let (params, kept_params) = match c.s {
            [] => (Params::EMPTY, Some(&b""[..])),
            [b';', rest @ ..] => {
                let params = Params::header_visit(rest, &mut visit)?;
                (params, rest.get(..kept_end).filter(|_| contiguous))
            }
            _ => return None,
        };
        let via = Via {
            transport: classify(raw_transport),
            raw_transport,
            host,
            host_raw,
            port,
            params,
            branch,
            received,
            rport,
            maddr,
            kept_params,
        };
        Some(via)
    }
}

#[cfg(test)]
mod tests {
    use super::super::chars::arb::{self, span};
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::select;
    use proptest::test_runner::TestCaseError;

    #[test]
    fn folded_sent_protocol() {
        let v = Via::parse(b"SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, Transport::Udp);
        assert_eq!(v.host, Host::Ipv4("192.0.2.2".parse().unwrap()));
        assert_eq!(v.branch, Some(&b"390skdjuw"[..]));
        let v = Via::parse(
            b"SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8",
        )
        .unwrap();
        assert_eq!(v.transport, Transport::Tcp);
        assert_eq!(v.host, Host::Domain(b"spindle.example.com"));
        assert_eq!(v.branch, Some(&b"z9hG4bK9ikj8"[..]));
    }

    #[test]
    fn nat_params() {
        let v = Via::parse(
            b"SIP/2.0/UDP [2001:db8::9:1]:5070;rport;branch=z9hG4bK1;received=[2001:db8::9:255]",
        )
        .unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport, Rport::Requested);
        assert_eq!(v.received, Some("2001:db8::9:255".parse().unwrap()));
        let v =
            Via::parse(b"SIP/2.0/UDP host:5060 ; rport=1234 ; received=2001:db8::9:255").unwrap();
        assert_eq!(v.rport, Rport::Value(1234));
        assert_eq!(v.received, Some("2001:db8::9:255".parse().unwrap()));
    }

    #[test]
    fn rejects() {
        for bad in [
            &b"SIP/2.0 host"[..],
            b"SIP/2.0/UDP",
            b"SIP/2.0/UDPhost",
            b"SIP/3.0/UDP host",
            b"SIP/2.0/UDP host:99999",
            b"SIP/2.0/UDP host;received=notanip",
            b"SIP/2.0/UDP host;rport=x",
            b"SIP/2.0/UDP host junk",
            b"SIP/2.0/UDP host;branch",
        ] {
            assert!(
                Via::parse(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// How the sent-by host was read before `Host::parse_at`: the longest run of host bytes (or
    /// up to the `]` of an IPv6 reference), which must then parse whole.
    fn host_by_run(s: &[u8]) -> Option<(Host<'_>, usize)> {
        let len = if s.first() == Some(&b'[') {
            memchr::memchr(b']', s)? + 1
        } else {
            s.iter().take_while(|&&b| chars::is(b, chars::HOST)).count()
        };
        Some((Host::parse(s.get(..len)?)?, len))
    }

    /// The fields of a Via, with slices as places in `base` (empty ones by content: an empty
    /// slice has no place).
    fn fields(base: &[u8], v: &Via<'_>) -> String {
        let at = |part: &[u8]| {
            if part.is_empty() {
                None
            } else {
                Some(span(base, part))
            }
        };
        format!(
            "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            v.transport,
            at(v.raw_transport),
            v.host,
            at(v.host_raw),
            v.port,
            (at(v.params.raw()), v.params.raw()),
            v.branch.map(at),
            v.received,
            v.rport,
            v.maddr.map(at),
            v.kept_params.map(at),
            v.params.iter().map(|p| p.raw).collect::<Vec<_>>(),
        )
    }

    fn check(v: &[u8]) -> Result<(), TestCaseError> {
        let ours = Via::parse(v).map(|via| fields(v, &via));
        let old = reference::parse(v).map(|via| fields(v, &via));
        prop_assert_eq!(ours, old, "{:?}", String::from_utf8_lossy(v));
        Ok(())
    }

    fn lws() -> impl Strategy<Value = &'static str> {
        select(&["", "", "", " ", "\t", "\r\n ", "  "][..])
    }

    /// A Via value: the usual shape and the RFC 4475 wsinv one, every transport in any case,
    /// any host, a port or none, and parameters a server acts on among others.
    fn via() -> impl Strategy<Value = String> {
        let protocol = prop_oneof![
            3 => Just(String::from("SIP/2.0/")),
            1 => (select(&["SIP", "sip", "sIp", "SIPS", "SI"][..]), lws(), lws(), select(&["2.0", "2.00", "3.0"][..]), lws(), lws())
                .prop_map(|(n, a, b, v, c, d)| format!("{a}{n}{b}/{c}{v}{d}/")),
        ];
        let transport = select(
            &[
                "UDP", "udp", "Tcp", "TLS", "SCTP", "sctp", "WS", "wss", "WSS", "UDPX", "x-tr", "U",
            ][..],
        );
        let port = proptest::option::of((
            lws(),
            lws(),
            select(&["5060", "0", "65535", "65536", "005060", "99999", ""][..]),
        ));
        let param = prop_oneof![
            3 => "branch=z9hG4bK[a-zA-Z0-9.-]{0,12}".prop_map(String::from),
            2 => select(&["rport", "RPORT", "rport=5060", "rport=0", "rport=65536", "rport=", "rport=x", "rport = 1"][..]).prop_map(String::from),
            2 => (select(&["received", "Received"][..]), arb::host()).prop_map(|(n, h)| format!("{n}={h}")),
            1 => any::<core::net::Ipv6Addr>().prop_map(|a| format!("received={a}")),
            1 => (select(&["maddr", "MADDR"][..]), arb::host()).prop_map(|(n, h)| format!("{n}={h}")),
            1 => select(&["ttl=1", "ttl=255", "ttl=256", "TTL=016", "ttl", "branch", "branch=\"q;x\"", "maddr", "received"][..]).prop_map(String::from),
            2 => arb::header_params(),
        ];
        let params = prop::collection::vec((lws(), lws(), param), 0..4);
        (
            protocol,
            lws(),
            transport,
            select(&[" ", " ", "  ", "\t", "\r\n ", ""][..]),
            arb::host(),
            port,
            lws(),
            params,
            any::<bool>(),
        )
            .prop_map(
                |(protocol, a, transport, sp, host, port, b, params, semi)| {
                    let mut s = format!("{a}{protocol}{transport}{sp}{host}");
                    if let Some((c, d, port)) = port {
                        s += &format!("{c}:{d}{port}");
                    }
                    s += b;
                    for (c, d, p) in params {
                        s += &format!("{c};{d}{p}");
                    }
                    if semi {
                        s += ";";
                    }
                    s
                },
            )
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn parse_agrees_with_reference_on_vias(v in via()) {
            check(v.as_bytes())?;
        }

        #[test]
        fn parse_agrees_with_reference_on_edited_vias(v in arb::edited(via())) {
            check(&v)?;
        }

        #[test]
        fn parse_agrees_with_reference_on_anything(v in arb::bytes()) {
            check(&v)?;
            let with_protocol = [&b"SIP/2.0/"[..], &v].concat();
            check(&with_protocol)?;
        }

        #[test]
        fn parse_agrees_with_reference_on_soup(v in arb::soup()) {
            check(&[&b"SIP/2.0/UDP "[..], &v].concat())?;
        }

        #[test]
        fn classify_agrees_with_reference(t in prop_oneof![
            select(&["UDP", "udp", "uDp", "TCP", "tcp", "TLS", "tls", "SCTP", "sctp", "WS", "ws", "WSS", "wss", "wS"][..]).prop_map(|t| t.as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 0..6),
            prop::collection::vec(select(b"udpUDPtcTClsLSwW\0 @`[{pP\x10\x30\xd0\xf0".to_vec()), 0..5),
        ]) {
            prop_assert_eq!(Transport::classify(&t), reference::classify(&t), "{:?}", t);
        }

        /// The host of a Via is read in one pass now; it ends where, and is what, the run it
        /// replaced gave (so every Via keeps its verdict and its fields).
        #[test]
        fn sent_by_host_reads_as_the_run_did(s in proptest::prop_oneof![
            r"[\[\]0-9a-fA-F.:;xz-]{0,24}",
            r"[0-9]{1,4}(\.[0-9]{1,4}){0,4}[a-z0-9.:;-]{0,4}",
            r"[a-z0-9-]{1,6}(\.[a-z0-9-]{1,6}){0,3}\.?[:;]?",
            r"\[[0-9a-f:.]{0,20}\]?[:;a-z]{0,2}",
        ]) {
            let s = s.as_bytes();
            let new = Host::parse_at(s, 0);
            let old = host_by_run(s);
            proptest::prop_assert_eq!(new.map(|(h, n)| (format!("{h:?}"), n)), old.map(|(h, n)| (format!("{h:?}"), n)));
        }
    }
}
