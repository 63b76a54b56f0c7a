//! The checks every UAS applies to a request before acting on it (RFC 3261 8.2 and 16.3), done
//! once, yielding the parsed fields every later step needs.
//!
//! Method-specific checks (a registrar's Contact rules, Require handling against what the element
//! supports) belong to the element; this module only knows syntax.

use super::addr::NameAddr;
use super::chars;
use super::error::ErrorKind;
use super::header::HeaderName;
use super::message::Request;
use super::typed::{CSeq, parse_call_id};
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
#[inline(always)]
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
    // One walk over the lines picks up every single-valued header checked here, instead of one
    // walk per header; a repeated one is a defect (RFC 4475 multi01).
    let (mut from, mut to, mut call_id) = (Slot::Absent, Slot::Absent, Slot::Absent);
    let (mut cseq, mut max_forwards) = (Slot::Absent, Slot::Absent);
    for line in h.lines {
        let slot = match line.name {
            HeaderName::From => &mut from,
            HeaderName::To => &mut to,
            HeaderName::CallId => &mut call_id,
            HeaderName::CSeq => &mut cseq,
            HeaderName::MaxForwards => &mut max_forwards,
            _ => continue,
        };
        slot.add(line.value);
    }
    let from = name_addr(from, ErrorKind::BadFrom)?;
    let to = name_addr(to, ErrorKind::BadTo)?;
    let call_id = call_id
        .required(ErrorKind::BadCallId)
        .and_then(|v| parse_call_id(v).ok_or(ErrorKind::BadCallId))?;
    let cseq = cseq
        .required(ErrorKind::BadCSeq)
        .and_then(|v| CSeq::parse_for(v, req.raw_method, req.method).ok_or(ErrorKind::BadCSeq))?;
    // RFC 3261 8.1.1.5: "The method MUST match that of the request." (RFC 4475 mismatch01)
    if cseq.method != req.method || cseq.raw_method != req.raw_method {
        return Err(ErrorKind::CSeqMethodMismatch);
    }
    // Max-Forwards, 0 to 255 (RFC 4475 scalar02 treats larger values as defects).
    let max_forwards = max_forwards
        .optional(ErrorKind::BadMaxForwards)?
        .map(|v| {
            chars::parse_decimal(v, 255)
                .map(|n| n as u8)
                .ok_or(ErrorKind::BadMaxForwards)
        })
        .transpose()?;
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

/// A single-valued header seen during the walk over the lines.
#[derive(Clone, Copy)]
enum Slot<'a> {
    Absent,
    One(&'a [u8]),
    Repeated,
}

impl<'a> Slot<'a> {
    fn add(&mut self, value: &'a [u8]) {
        *self = match self {
            Slot::Absent => Slot::One(value),
            _ => Slot::Repeated,
        };
    }

    fn optional(self, err: ErrorKind) -> Result<Option<&'a [u8]>, ErrorKind> {
        match self {
            Slot::Absent => Ok(None),
            Slot::One(v) => Ok(Some(v)),
            Slot::Repeated => Err(err),
        }
    }

    fn required(self, err: ErrorKind) -> Result<&'a [u8], ErrorKind> {
        self.optional(err)?.ok_or(err)
    }
}

/// From or To: present once and a valid name-addr or addr-spec.
fn name_addr(slot: Slot<'_>, err: ErrorKind) -> Result<NameAddr<'_>, ErrorKind> {
    NameAddr::parse(slot.required(err)?).ok_or(err)
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
