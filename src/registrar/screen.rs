//! Request screening: the RFC 3261 8.2 checks a UAS applies before acting, and the answers to
//! requests that fail them.
//!
//! Screening turns a parse result into one of three outcomes: act on the request, answer it with a
//! rejection, or ignore it (malformed and stray responses, ACK). It knows which methods and which
//! extensions sipreg serves; it does not know users, bindings or policy.

use core::net::SocketAddr;

use crate::sip::{
    self, Disposition, Error, ErrorKind, Essentials, HeaderName, Headers, Message, Method, Request,
    ResponseBuilder, Uri,
};

/// The option tags sipreg supports in Require (RFC 3261 8.2.2.3).
/// `path`: RFC 3327 Path is stored and echoed by the registrar.
pub const SUPPORTED: &[&[u8]] = &[b"path"];

/// The methods a registrar answers itself; others get 405 with this Allow list.
pub const ALLOW: &[u8] = b"REGISTER, OPTIONS";

/// Why a request is refused, with what the response must carry besides the status line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A syntax defect, as the parser classified it.
    Syntax(ErrorKind),
    /// RFC 3261 8.2.1: "the UAS MUST generate a 405 (Method Not Allowed) response ... and MUST
    /// also add an Allow header field".
    MethodNotAllowed,
    /// A method sipreg does not recognise (RFC 3261 21.5.2: 501 Not Implemented).
    NotImplemented,
    /// RFC 3261 8.2.2.3: 420 (Bad Extension) listing the unsupported Require tags.
    BadExtension,
    /// RFC 3261 10.3 step 5 reads the AOR from To; a To that is not a SIP or SIPS URI has none.
    ToNotSip,
}

impl Rejection {
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Rejection::Syntax(kind) => kind.status(),
            Rejection::MethodNotAllowed => (405, "Method Not Allowed"),
            Rejection::NotImplemented => (501, "Not Implemented"),
            Rejection::BadExtension => (420, "Bad Extension"),
            Rejection::ToNotSip => (400, "To Is Not A SIP URI"),
        }
    }
}

/// The outcome of screening one message.
#[derive(Debug)]
pub enum Screened<R> {
    /// The request was acted on: what the `accept` closure of [`screen`] returned.
    Accept(R),
    /// Answer with this rejection.
    Reject(Rejection),
    /// Say nothing: a response (valid or not; a registrar absorbs strays), an ACK, or a request
    /// too broken to carry a Via to answer.
    Ignore,
}

/// Applies the generic UAS checks and the registrar's REGISTER syntax checks, and hands a request
/// that passes them to `accept` with its checked fields.
// The fields (some 660 bytes) are lent to `accept` where they were built: returned by value
// through an enum they were copied twice, about 250 instructions a request.
#[inline(always)]
pub fn screen<'a, 'h, R>(
    parsed: Result<Message<'a, 'h>, Error>,
    accept: impl FnOnce(&Request<'a, 'h>, &Essentials<'a>) -> R,
) -> Screened<R> {
    let req = match parsed {
        Ok(Message::Request(req)) => req,
        Ok(Message::Response(_)) => return Screened::Ignore,
        Err(e) => {
            return match e.disposition() {
                Disposition::Drop => Screened::Ignore,
                Disposition::Reject(..) => Screened::Reject(Rejection::Syntax(e.kind)),
            };
        }
    };
    // RFC 3261 17.2.3 / 8.2: ACK is never answered.
    if req.method == Method::Ack {
        return Screened::Ignore;
    }
    let checked = sip::check_request(&req);
    let essentials = match &checked {
        Ok(e) => e,
        Err(kind) => return Screened::Reject(Rejection::Syntax(*kind)),
    };
    match req.method {
        Method::Register | Method::Options => {}
        Method::Other => return Screened::Reject(Rejection::NotImplemented),
        _ => return Screened::Reject(Rejection::MethodNotAllowed),
    }
    // RFC 3261 8.2.2.3: "If a UAS does not understand an option-tag listed in a Require header
    // field, it MUST respond by generating a response with status code 420 (Bad Extension)."
    // (Most requests have no Require: then there is nothing to read.)
    if req.headers.has(HeaderName::Require) {
        match sip::unsupported_requires(&req, is_supported) {
            Ok(0) => {}
            Ok(_) => return Screened::Reject(Rejection::BadExtension),
            Err(kind) => return Screened::Reject(Rejection::Syntax(kind)),
        }
    }
    if req.method == Method::Register
        && let Err(r) = screen_register(essentials)
    {
        return Screened::Reject(r);
    }
    Screened::Accept(accept(&req, essentials))
}

fn is_supported(tag: &[u8]) -> bool {
    SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(tag))
}

/// The REGISTER syntax every registrar step relies on: To is a SIP URI and Expires parses (as
/// [`Essentials::expires`] holds it). The Contacts are parsed once, by the registrar itself.
#[inline]
fn screen_register(e: &Essentials<'_>) -> Result<(), Rejection> {
    if !matches!(e.to.uri, Uri::Sip(_)) {
        return Err(Rejection::ToNotSip);
    }
    e.expires.map_err(Rejection::Syntax)?;
    Ok(())
}

/// Writes the response for a rejection into `out`; `None` when the request is too broken to be
/// answered (no Via to send it to) or the buffer is too small.
///
/// `raw` is the received message: the headers are recovered from it leniently, since a request
/// that failed to parse has no `Request` to take them from.
pub fn write_rejection(
    rejection: Rejection,
    raw: &[u8],
    source: SocketAddr,
    to_tag: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    let mut storage = [sip::Header::EMPTY; super::MAX_HEADERS];
    let headers = sip::salvage(raw, &mut storage);
    write_rejection_for(rejection, &headers, source, to_tag, out)
}

/// Writes the response for a rejection of a request whose headers are at hand.
pub fn write_rejection_for(
    rejection: Rejection,
    headers: &Headers<'_, '_>,
    source: SocketAddr,
    to_tag: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    // RFC 3261 18.2.2: the response goes where the top Via says; without one there is no answer.
    headers.get(HeaderName::Via)?;
    let (code, reason) = rejection.status();
    let mut r = ResponseBuilder::start(out, code, reason, headers, source, Some(to_tag));
    match rejection {
        Rejection::MethodNotAllowed => {
            r.header("Allow", ALLOW);
        }
        Rejection::BadExtension => {
            // RFC 3261 8.2.2.3: "listing those option tags the UAS does not understand".
            let tags = headers
                .elements(HeaderName::Require)
                .filter(|t| !is_supported(t));
            r.unsupported(tags);
        }
        _ => {}
    }
    r.finish().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen_bytes(bytes: &[u8]) -> Result<(), Rejection> {
        let mut storage = [sip::Header::EMPTY; 64];
        let parsed = sip::parse_datagram(bytes, &mut storage, &sip::Limits::default());
        match screen(parsed, |_, _| ()) {
            Screened::Accept(()) => Ok(()),
            Screened::Reject(r) => Err(r),
            Screened::Ignore => panic!("ignored"),
        }
    }

    const BASE: &str = "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\n\
To: <sip:a@example.com>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\n";

    #[test]
    fn register_checks() {
        let ok = format!("{BASE}Contact: <sip:a@192.0.2.1>;expires=60\r\nl: 0\r\n\r\n");
        assert_eq!(screen_bytes(ok.as_bytes()), Ok(()));
        let path = format!("{BASE}Require: path\r\nl: 0\r\n\r\n");
        assert_eq!(screen_bytes(path.as_bytes()), Ok(()));
        let cases = [
            (
                "Expires: soon\r\n",
                Rejection::Syntax(ErrorKind::BadExpires),
            ),
            ("Require: foo, path\r\n", Rejection::BadExtension),
        ];
        for (extra, want) in cases {
            let msg = format!("{BASE}{extra}l: 0\r\n\r\n");
            assert_eq!(screen_bytes(msg.as_bytes()), Err(want), "{extra}");
        }
    }

    #[test]
    fn rejection_carries_what_rfc_asks() {
        let msg = format!("{BASE}Require: foo, path, bar\r\nl: 0\r\n\r\n");
        let source: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let mut out = [0u8; 1024];
        let n = write_rejection(
            Rejection::BadExtension,
            msg.as_bytes(),
            source,
            b"x",
            &mut out,
        )
        .unwrap();
        let text = std::str::from_utf8(&out[..n]).unwrap();
        assert!(text.starts_with("SIP/2.0 420 Bad Extension\r\n"), "{text}");
        assert!(text.contains("\r\nUnsupported: foo, bar\r\n"), "{text}");
        assert!(
            text.contains("\r\nTo: <sip:a@example.com>;tag=x\r\n"),
            "{text}"
        );
        let n = write_rejection(
            Rejection::MethodNotAllowed,
            msg.as_bytes(),
            source,
            b"x",
            &mut out,
        )
        .unwrap();
        let text = std::str::from_utf8(&out[..n]).unwrap();
        assert!(text.contains("\r\nAllow: REGISTER, OPTIONS\r\n"), "{text}");
        // No Via: nothing can be sent.
        assert!(
            write_rejection(
                Rejection::Syntax(ErrorKind::BadVia),
                b"OPTIONS sip:a@b SIP/2.0\r\nTo: x\r\n\r\n",
                source,
                b"x",
                &mut out
            )
            .is_none()
        );
    }
}
