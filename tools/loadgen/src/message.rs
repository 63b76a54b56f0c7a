//! The REGISTER requests a simulated user agent sends, and how its answers are recognised.
//!
//! Every transaction is named by its user agent and CSeq: the Call-ID is
//! `<ua hex>.<run hex>@sipreg-loadgen` (one per user agent and run, kept across refreshes as a
//! phone does, RFC 3261 10.2.4 "SHOULD use the same Call-ID"), the branch is
//! `z9hG4bK<run>.<ua>.<cseq>`. A retransmission is the same bytes.

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
    /// The sending socket's address as text (`127.0.0.2:40000`), written once per socket.
    pub local: &'a str,
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
        // Byte by byte rather than through `write!`: formatting cost the load generator more
        // than the registrar spends answering (callgrind), and the generator must outrun it.
        let (user, domain, local) = (user.as_bytes(), domain.as_bytes(), local.as_bytes());
        let put = |out: &mut Vec<u8>, parts: &[&[u8]]| parts.iter().for_each(|p| out.extend(*p));
        put(
            out,
            &[
                b"REGISTER sip:",
                domain,
                b" SIP/2.0\r\nVia: SIP/2.0/UDP ",
                local,
            ],
        );
        out.extend(b";branch=z9hG4bK");
        hex(out, *run);
        out.push(b'.');
        hex(out, *ua);
        out.push(b'.');
        hex(out, u64::from(*cseq));
        put(
            out,
            &[
                b";rport\r\nMax-Forwards: 70\r\nFrom: <sip:",
                user,
                b"@",
                domain,
            ],
        );
        out.extend(b">;tag=");
        ua_run(out, *ua, *run);
        put(
            out,
            &[b"\r\nTo: <sip:", user, b"@", domain, b">\r\nCall-ID: "],
        );
        ua_run(out, *ua, *run);
        out.extend(b"@sipreg-loadgen\r\nCSeq: ");
        decimal(out, u64::from(*cseq));
        put(out, &[b" REGISTER\r\nContact: <sip:", user, b"@", local]);
        out.extend(b";transport=udp>\r\nExpires: ");
        decimal(out, u64::from(*expires));
        out.extend(b"\r\nUser-Agent: sipreg-loadgen\r\n");
    }
}

/// `<ua hex>.<run hex>`.
fn ua_run(out: &mut Vec<u8>, ua: u64, run: u64) {
    hex(out, ua);
    out.push(b'.');
    hex(out, run);
}

/// Appends `n` in lowercase hexadecimal without leading zeros, as `{n:x}` does.
pub fn hex(out: &mut Vec<u8>, n: u64) {
    let digits = (16 - n.leading_zeros() as usize / 4).max(1);
    for i in (0..digits).rev() {
        out.push(b"0123456789abcdef"[(n >> (i * 4)) as usize & 15]);
    }
}

/// Appends `n` in lowercase hexadecimal, 8 digits with leading zeros, as `{n:08x}` does.
pub fn hex8(out: &mut Vec<u8>, n: u32) {
    for i in (0..8).rev() {
        out.push(b"0123456789abcdef"[(n >> (i * 4)) as usize & 15]);
    }
}

/// Appends `n` in decimal, as `{n}` does.
pub fn decimal(out: &mut Vec<u8>, n: u64) {
    sipreg::auth::pattern::push_decimal(n, 0, b'0', |d| out.push(d));
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
        s.iter().try_fold(0u64, |n, &b| {
            let d = (b as char).to_digit(16)?;
            Some(n << 4 | u64::from(d))
        })
    };
    Some((hex(local.get(..dot)?)?, hex(local.get(dot + 1..)?)?))
}

/// The cnonce a user agent uses: fixed per user agent and run (the nonce-count distinguishes
/// requests). Written into `out` (cleared first), which the caller reuses.
pub fn cnonce(run: u64, ua: u64, out: &mut Vec<u8>) {
    out.clear();
    hex(out, run);
    hex(out, ua);
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
            local: "127.0.0.2:40000",
            expires: 600,
        };
        r.write_head(&mut out);
        // What the `write!` form of this request gave, byte for byte.
        let formatted = "REGISTER sip:example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.2:40000;branch=z9hG4bKabc.4d.3;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:u000077@example.com>;tag=4d.abc\r\n\
             To: <sip:u000077@example.com>\r\n\
             Call-ID: 4d.abc@sipreg-loadgen\r\n\
             CSeq: 3 REGISTER\r\n\
             Contact: <sip:u000077@127.0.0.2:40000;transport=udp>\r\n\
             Expires: 600\r\n\
             User-Agent: sipreg-loadgen\r\n";
        assert_eq!(String::from_utf8_lossy(&out), formatted);
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
        assert_eq!(parse_call_id(b".1@sipreg-loadgen"), None);
        assert_eq!(
            parse_call_id(b"ffffffffffffffff.0@sipreg-loadgen"),
            Some((u64::MAX, 0))
        );
        assert_eq!(parse_call_id(b"10000000000000000.0@sipreg-loadgen"), None);
    }

    #[test]
    fn numbers_are_written_as_format_writes_them() {
        for n in [
            0u64,
            1,
            9,
            10,
            15,
            16,
            255,
            4096,
            99_999,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let (mut h, mut d) = (Vec::new(), Vec::new());
            hex(&mut h, n);
            decimal(&mut d, n);
            assert_eq!(String::from_utf8(h).unwrap(), format!("{n:x}"));
            assert_eq!(String::from_utf8(d).unwrap(), format!("{n}"));
            let mut h8 = Vec::new();
            hex8(&mut h8, n as u32);
            assert_eq!(String::from_utf8(h8).unwrap(), format!("{:08x}", n as u32));
        }
        let mut c = b"stale".to_vec();
        cnonce(0xab, 0x1f, &mut c);
        assert_eq!(c, b"ab1f");
    }
}
