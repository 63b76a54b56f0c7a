//! The REGISTER requests a simulated user agent sends, and how its answers are recognised.
//!
//! Every transaction is named by its user agent and CSeq: the Call-ID is
//! `<ua hex>.<run hex>@sipreg-loadgen` (one per user agent and run, kept across refreshes as a
//! phone does, RFC 3261 10.2.4 "SHOULD use the same Call-ID"), the branch is
//! `z9hG4bK<run>.<ua>.<cseq>`. A retransmission is the same bytes.

use std::io::Write;
use std::net::SocketAddr;

/// What a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Add or refresh the binding (`Expires: N`).
    Register,
    /// Remove it (`Expires: 0`).
    Unregister,
}

/// The fields of one REGISTER.
pub struct Register<'a> {
    pub run: u64,
    pub ua: u64,
    pub cseq: u32,
    pub user: &'a str,
    pub domain: &'a str,
    pub local: SocketAddr,
    pub expires: u32,
}

impl Register<'_> {
    /// Appends the request up to and including the Expires line; the caller adds an optional
    /// Authorization line and then [`finish`].
    pub fn write_head(&self, out: &mut Vec<u8>) {
        let Register {
            run,
            ua,
            cseq,
            user,
            domain,
            local,
            expires,
        } = self;
        let _ = write!(
            out,
            "REGISTER sip:{domain} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{run:x}.{ua:x}.{cseq:x};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{domain}>;tag={ua:x}.{run:x}\r\n\
             To: <sip:{user}@{domain}>\r\n\
             Call-ID: {ua:x}.{run:x}@sipreg-loadgen\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@{local};transport=udp>\r\n\
             Expires: {expires}\r\n\
             User-Agent: sipreg-loadgen\r\n"
        );
    }
}

/// Ends the header section (no body).
pub fn finish(out: &mut Vec<u8>) {
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

/// The user agent index and run a Call-ID names, if it is one of ours.
pub fn parse_call_id(call_id: &[u8]) -> Option<(u64, u64)> {
    let local = call_id.strip_suffix(b"@sipreg-loadgen")?;
    let dot = local.iter().position(|&b| b == b'.')?;
    let hex = |s: &[u8]| -> Option<u64> {
        if s.is_empty() || s.len() > 16 {
            return None;
        }
        let text = std::str::from_utf8(s).ok()?;
        u64::from_str_radix(text, 16).ok()
    };
    Some((hex(local.get(..dot)?)?, hex(local.get(dot + 1..)?)?))
}

/// The cnonce a user agent uses: fixed per user agent and run (the nonce-count distinguishes
/// requests).
pub fn cnonce(run: u64, ua: u64) -> String {
    format!("{run:x}{ua:x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipreg::sip::{self, HeaderName};

    #[test]
    fn register_parses_and_names_its_ua() {
        let mut out = Vec::new();
        let r = Register {
            run: 0xabc,
            ua: 77,
            cseq: 3,
            user: "u000077",
            domain: "example.com",
            local: "127.0.0.2:40000".parse().unwrap(),
            expires: 600,
        };
        r.write_head(&mut out);
        finish(&mut out);
        let mut storage = [sip::Header::EMPTY; 32];
        let sip::Message::Request(req) =
            sip::parse_datagram(&out, &mut storage, &sip::Limits::default()).unwrap()
        else {
            panic!()
        };
        let ess = sip::check_request(&req).unwrap();
        assert_eq!(ess.cseq.number, 3);
        let call_id = req.headers.get(HeaderName::CallId).unwrap().value;
        assert_eq!(parse_call_id(call_id), Some((77, 0xabc)));
        assert_eq!(parse_call_id(b"x@elsewhere"), None);
        assert_eq!(parse_call_id(b"zz.1@sipreg-loadgen"), None);
    }
}
