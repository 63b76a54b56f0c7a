//! Via values (RFC 3261 20.42, RFC 3581 rport): sent-protocol, sent-by and the parameters a
//! server acts on. LWS is allowed around every `/` of the sent-protocol and around the `:` of
//! sent-by (RFC 4475 wsinv).

use core::net::IpAddr;

use super::chars::{self, TOKEN};
use super::params::{Param, Params};
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

impl<'a> Via<'a> {
    /// Parses one `via-parm` (the caller has split comma lists).
    pub fn parse(value: &'a [u8]) -> Option<Via<'a>> {
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
            transport: Transport::classify(raw_transport),
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
    use super::*;

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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

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
