//! The checks every UAS applies to a request before acting on it (RFC 3261 8.2 and 16.3), done
//! once, yielding the parsed fields every later step needs.
//!
//! Method-specific checks (a registrar's Contact rules, Require handling against what the element
//! supports) belong to the element; this module only knows syntax.

use super::addr::NameAddr;
use super::error::ErrorKind;
use super::header::HeaderName;
use super::message::Request;
use super::typed::CSeq;
use super::uri::{SipUri, Uri};
use super::via::Via;

/// The fields of a request that passed [`check_request`].
#[derive(Clone, Copy, Debug)]
pub struct Essentials<'a> {
    pub uri: SipUri<'a>,
    pub via: Via<'a>,
    pub from: NameAddr<'a>,
    pub to: NameAddr<'a>,
    pub call_id: &'a [u8],
    pub cseq: CSeq<'a>,
    pub max_forwards: Option<u8>,
}

/// Validates the Request-URI and the headers every request must carry.
pub fn check_request<'a>(req: &Request<'a, '_>) -> Result<Essentials<'a>, ErrorKind> {
    // RFC 3261 8.2.2.1: "If the Request-URI uses a scheme not supported by the UAS, it SHOULD
    // reject the request with a 416 (Unsupported URI Scheme) response."
    let uri = match Uri::parse(req.uri).ok_or(ErrorKind::BadRequestUri)? {
        Uri::Sip(u) => u,
        Uri::Other { .. } => return Err(ErrorKind::UnsupportedUriScheme),
    };
    // RFC 3261 19.1.5: headers are not allowed in a Request-URI (RFC 4475 escruri).
    if uri.headers.is_some() {
        return Err(ErrorKind::BadRequestUri);
    }
    let h = &req.headers;
    // RFC 3261 8.1.1: "a valid SIP request ... MUST contain To, From, CSeq, Call-ID,
    // Max-Forwards, and Via"; Max-Forwards is tolerated when missing, as deployed proxies do.
    let mut vias = h.vias();
    let via = vias.next().unwrap_or(Err(ErrorKind::BadVia))?;
    for v in vias {
        v?;
    }
    let from = h.from()?;
    let to = h.to()?;
    let call_id = h.call_id()?;
    let cseq = h.cseq()?;
    // RFC 3261 8.1.1.5: "The method MUST match that of the request." (RFC 4475 mismatch01)
    if cseq.method != req.method || cseq.raw_method != req.raw_method {
        return Err(ErrorKind::CSeqMethodMismatch);
    }
    let max_forwards = h.max_forwards()?;
    Ok(Essentials {
        uri,
        via,
        from,
        to,
        call_id,
        cseq,
        max_forwards,
    })
}

/// The Require option tags the element does not support, for a 420 (RFC 3261 8.2.2.3).
///
/// Returns how many tags in Require `supported` rejects, or a defect if Require is malformed.
/// (The 420 lists them by filtering Require with the same predicate.)
pub fn unsupported_requires(
    req: &Request<'_, '_>,
    supported: impl Fn(&[u8]) -> bool,
) -> Result<usize, ErrorKind> {
    let mut count = 0;
    for tag in req.headers.option_tags(HeaderName::Require) {
        if !supported(tag?) {
            count += 1;
        }
    }
    Ok(count)
}
