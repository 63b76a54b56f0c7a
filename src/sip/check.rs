//! The checks every UAS applies to a request before acting on it (RFC 3261 8.2 and 16.3), done
//! once, yielding the parsed fields every later step needs.
//!
//! Method-specific checks (a registrar's Contact rules, Require handling against what the element
//! supports) belong to the element; this module only knows syntax.

use super::addr::NameAddr;
use super::chars::{self, CommaList};
use super::error::ErrorKind;
use super::header::HeaderName;
use super::message::{Headers, Request};
use super::typed::{CSeq, delta_seconds, parse_call_id};
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
    /// The Expires header as [`Headers::expires`](super::Headers::expires) reads it: picked up
    /// by the same walk over the lines, and not a defect of the request here (only a REGISTER
    /// is refused for a bad one).
    pub expires: Result<Option<u32>, ErrorKind>,
}

/// The single-valued headers [`check_request`] picks up in its walk over the lines: where each
/// name's value goes (0: not picked up).
const FROM: usize = 1;
const TO: usize = 2;
const CALL_ID: usize = 3;
const CSEQ: usize = 4;
const MAX_FORWARDS: usize = 5;
const EXPIRES: usize = 6;
/// Via is picked up too, for its usual single line; there may be several.
const VIA: usize = 7;
static PICK: [u8; 64] = {
    let mut t = [0u8; 64];
    t[HeaderName::From as usize] = FROM as u8;
    t[HeaderName::To as usize] = TO as u8;
    t[HeaderName::CallId as usize] = CALL_ID as u8;
    t[HeaderName::CSeq as usize] = CSEQ as u8;
    t[HeaderName::MaxForwards as usize] = MAX_FORWARDS as u8;
    t[HeaderName::Expires as usize] = EXPIRES as u8;
    t[HeaderName::Via as usize] = VIA as u8;
    t
};

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
    // One walk over the lines picks up every single-valued header checked here, instead of one
    // walk per header; a repeated one is a defect (RFC 4475 multi01). A table says where each
    // name goes, with no branch per line: the last value and the count of each. (The walk finds
    // no defect itself: the checks below come in the order they always did.)
    // (Indices are masked to the tables' sizes, so that no access needs a bounds check; a count
    // cannot wrap, messages have far fewer than 256 lines.)
    let mut values: [&[u8]; 8] = [b""; 8];
    let mut counts = [0u8; 8];
    for line in h.lines {
        let at = PICK
            .get(line.name as usize & 63)
            .map_or(0, |&i| usize::from(i) & 7);
        if let (Some(v), Some(n)) = (values.get_mut(at), counts.get_mut(at)) {
            *v = line.value;
            *n = n.wrapping_add(1);
        }
    }
    let slot = |at: usize| match (counts.get(at), values.get(at)) {
        (Some(1), Some(v)) => Slot::One(v),
        (Some(0) | None, _) | (_, None) => Slot::Absent,
        _ => Slot::Repeated,
    };
    // RFC 3261 8.1.1: "a valid SIP request ... MUST contain To, From, CSeq, Call-ID,
    // Max-Forwards, and Via"; Max-Forwards is tolerated when missing, as deployed proxies do.
    // A single Via line, the usual, was found by the walk; several are walked again.
    let single_via = match slot(VIA) {
        Slot::One(v) => Some(v),
        Slot::Absent | Slot::Repeated => None,
    };
    let via = vias(h, single_via)?;
    let Some(from) = NameAddr::parse(slot(FROM).required(ErrorKind::BadFrom)?) else {
        return Err(ErrorKind::BadFrom);
    };
    let Some(to) = NameAddr::parse(slot(TO).required(ErrorKind::BadTo)?) else {
        return Err(ErrorKind::BadTo);
    };
    let call_id = slot(CALL_ID)
        .required(ErrorKind::BadCallId)
        .and_then(|v| parse_call_id(v).ok_or(ErrorKind::BadCallId))?;
    let cseq = slot(CSEQ)
        .required(ErrorKind::BadCSeq)
        .and_then(|v| CSeq::parse_for(v, req.raw_method, req.method).ok_or(ErrorKind::BadCSeq))?;
    // RFC 3261 8.1.1.5: "The method MUST match that of the request." (RFC 4475 mismatch01)
    if cseq.method != req.method || cseq.raw_method != req.raw_method {
        return Err(ErrorKind::CSeqMethodMismatch);
    }
    // Max-Forwards, 0 to 255 (RFC 4475 scalar02 treats larger values as defects).
    let max_forwards = slot(MAX_FORWARDS)
        .optional(ErrorKind::BadMaxForwards)?
        .map(|v| {
            chars::parse_decimal(v, 255)
                .map(|n| n as u8)
                .ok_or(ErrorKind::BadMaxForwards)
        })
        .transpose()?;
    let expires = slot(EXPIRES)
        .optional(ErrorKind::BadExpires)
        .and_then(|v| v.map(delta_seconds).transpose());
    Ok(Essentials {
        uri,
        via,
        from,
        to,
        call_id,
        cseq,
        max_forwards,
        expires,
    })
}

/// The top Via of every Via line's `via-parm`s, all of which must parse
/// ([`Headers::vias`](super::Headers::vias) read the same way). `single` is the value of the
/// only Via line, when the caller knows there is exactly one: then the lines are not walked.
///
/// A line that parses whole as one Via is one element: RFC 3261 20.42 admits a comma in a
/// `via-parm` only inside a quoted-string (sent-protocol, sent-by and parameter names and plain
/// values are tokens, hosts and digits), and the split skips quoted strings as the parameter
/// reader does. So the usual line, one Via, is read once, with no search for commas first;
/// others are split, and read element by element. (A line with LWS at either end, which the
/// split would trim, is split too.)
#[inline(always)]
fn vias<'a>(h: &Headers<'a, '_>, single: Option<&'a [u8]>) -> Result<Via<'a>, ErrorKind> {
    let mut top = None;
    match single {
        Some(value) => via_line(value, &mut top)?,
        None => {
            for l in h.lines.iter().filter(|l| l.name == HeaderName::Via) {
                via_line(l.value, &mut top)?;
            }
        }
    }
    top.ok_or(ErrorKind::BadVia)
}

/// Checks every `via-parm` of one Via line, keeping the first parsed in `top` if it is empty.
#[inline(always)]
fn via_line<'a>(value: &'a [u8], top: &mut Option<Via<'a>>) -> Result<(), ErrorKind> {
    let plain = match (value.first(), value.last()) {
        (Some(&a), Some(&z)) => !chars::is_lws(a) && !chars::is_lws(z),
        _ => false,
    };
    if plain && let Some(v) = Via::read(value) {
        top.get_or_insert(v);
        return Ok(());
    }
    for element in CommaList::new(value) {
        let v = Via::parse(element).ok_or(ErrorKind::BadVia)?;
        top.get_or_insert(v);
    }
    Ok(())
}

/// A single-valued header seen during the walk over the lines.
#[derive(Clone, Copy)]
enum Slot<'a> {
    Absent,
    One(&'a [u8]),
    Repeated,
}

impl<'a> Slot<'a> {
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

/// The walks the one-pass versions replaced, kept as the reference they are tested against.
#[cfg(test)]
mod reference {
    use super::super::error::ErrorKind;
    use super::super::message::Headers;
    use super::super::via::Via;

    /// The old top Via: every element of every Via line, split at commas, must parse.
    pub fn vias<'a>(h: &Headers<'a, '_>) -> Result<Via<'a>, ErrorKind> {
        let mut vias = h.vias();
        let via = vias.next().unwrap_or(Err(ErrorKind::BadVia))?;
        for v in vias {
            v?;
        }
        Ok(via)
    }
}

#[cfg(test)]
mod tests {
    use super::super::chars::arb::{self, span};
    use super::super::{Header, Limits, Message, parse_datagram};
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::select;
    use proptest::test_runner::TestCaseError;

    /// `Essentials::expires`, picked up in the walk, is what the typed accessor reads.
    fn expires_agree(extra: &[u8]) {
        let mut msg = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
            .to_vec();
        msg.extend_from_slice(extra);
        msg.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        let mut storage = [Header::EMPTY; 64];
        if let Ok(Message::Request(req)) = parse_datagram(&msg, &mut storage, &Limits::default())
            && let Ok(e) = check_request(&req)
        {
            assert_eq!(
                e.expires,
                req.headers.expires(),
                "{:?}",
                extra.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn expires_is_read_as_the_typed_accessor_reads_it() {
        for extra in [
            &b""[..],
            b"Expires: 3600\r\n",
            b"Expires: 0\r\nExpires: 1\r\n",
            b"Expires: soon\r\n",
            b"Expires: 99999999999999\r\n",
            b"Expires:\r\n",
            b"Max-Forwards: 70\r\nExpires: 60\r\n",
        ] {
            expires_agree(extra);
        }
    }

    /// The top Via as the walk over Via lines reads it is what the old element walk read: the
    /// same verdict, the same fields in the same places.
    fn vias_agree(lines: &[u8]) -> Result<(), TestCaseError> {
        let mut msg = b"OPTIONS sip:x SIP/2.0\r\n".to_vec();
        msg.extend_from_slice(lines);
        msg.extend_from_slice(b"From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
        let mut storage = [Header::EMPTY; 64];
        if let Ok(Message::Request(req)) = parse_datagram(&msg, &mut storage, &Limits::default()) {
            let at = |v: &Via<'_>| {
                (
                    format!("{v:?}"),
                    span(&msg, v.raw_transport),
                    span(&msg, v.host_raw),
                    span(&msg, v.params.raw()),
                    v.branch.map(|b| span(&msg, b)),
                    v.kept_params.map(|k| span(&msg, k)),
                )
            };
            let old = reference::vias(&req.headers).map(|v| at(&v));
            // Read by a walk over the lines, and from the only line when there is one.
            let ours = vias(&req.headers, None).map(|v| at(&v));
            prop_assert_eq!(&ours, &old, "{:?}", lines.escape_ascii().to_string());
            let mut via_lines = req
                .headers
                .lines
                .iter()
                .filter(|l| l.name == HeaderName::Via);
            if let (Some(only), None) = (via_lines.next(), via_lines.next()) {
                let ours = vias(&req.headers, Some(only.value)).map(|v| at(&v));
                prop_assert_eq!(&ours, &old, "{:?}", lines.escape_ascii().to_string());
            }
        }
        Ok(())
    }

    #[test]
    fn vias_are_read_as_the_element_walk_read_them() {
        for lines in [
            &b""[..],
            b"Via: SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK1;rport\r\n",
            b"Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b\r\n",
            b"Via: SIP/2.0/UDP a;x=\"p, q\";branch=z9hG4bK1\r\n",
            b"Via: SIP/2.0/UDP a;x=\"p, <q\", SIP/2.0/UDP b\r\n",
            b"Via: SIP/2.0/UDP a\r\nVia: SIP/2.0/UDP b, junk\r\n",
            b"Via: SIP/2.0/UDP a,\r\n",
            b"Via: ,SIP/2.0/UDP a\r\n",
            b"Via:   SIP/2.0/UDP a ;branch=1  \r\n",
            b"Via: SIP/2.0/UDP a;branch=1\r\n  \r\n",
        ] {
            vias_agree(lines).unwrap();
        }
        // The lines above are read at all: the usual one gives a Via.
        let msg = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let mut storage = [Header::EMPTY; 64];
        let Ok(Message::Request(req)) = parse_datagram(msg, &mut storage, &Limits::default())
        else {
            panic!("framed");
        };
        assert_eq!(
            vias(&req.headers, None).unwrap().branch,
            Some(&b"z9hG4bK1"[..])
        );
    }

    fn via_lines() -> impl Strategy<Value = String> {
        let via = select(
            &[
                "SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK-524287-1---0b41c7a6e2f1d8c3;rport",
                "SIP/2.0/TCP h.example.com;x=\"a, b\";branch=z9hG4bK1",
                "SIP / 2.0 / UDP [2001:db8::1] ; received=192.0.2.1",
                "SIP/2.0/UDP a;x=\"<,>\"",
                "SIP/2.0/UDP a;rport=1",
            ][..],
        );
        let sep = select(&[", ", ",", " ,\r\n ", "\r\nVia: ", "\r\nv: ", "\r\nVia:  "][..]);
        (via.clone(), prop::collection::vec((sep, via), 0..3)).prop_map(|(first, rest)| {
            let mut s = format!("Via: {first}");
            for (sep, v) in rest {
                s += sep;
                s += v;
            }
            s + "\r\n"
        })
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn vias_agree_on_edited_lines(lines in arb::edited(via_lines())) {
            vias_agree(&lines)?;
        }

        #[test]
        fn expires_agrees_on_edited_lines(
            line in arb::edited(proptest::prelude::Just("Expires: 3600\r\nExpires: 1\r\n".to_string()))
        ) {
            expires_agree(&line);
        }
    }
}
