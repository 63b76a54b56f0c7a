//! Framing: turns received bytes into a start line, header lines and a body, all borrowed.
//!
//! A UDP datagram is one message (RFC 3261 18.3: octets after Content-Length are ignored); on a
//! stream the parser reports a complete message and its length, a need for more bytes, or an
//! error (httparse's `Status`). Header values are not interpreted here beyond Content-Length; the
//! typed accessors in [`Headers`] parse them on demand, and the framer records which names have
//! a value with a control byte, found as it looks for each line's end, so that the response
//! writer can echo the others as they are. Nothing here allocates.

use super::chars::{self, TOKEN};
use super::error::{Error, ErrorKind};
use super::header::{Header, HeaderName};

/// Size limits applied while framing; every limit violation is a clear error, not a truncation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, head and body, in octets.
    pub max_message: usize,
    /// Longest start line or header line (folded continuations included), in octets.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // 65,535 is the largest UDP payload; no legitimate REGISTER comes near it.
        Limits {
            max_message: 65_535,
            max_line: 8_192,
        }
    }
}

/// A request method. RFC 3261 7.1: "The method names are case-sensitive."
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Register,
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Subscribe,
    Notify,
    Refer,
    Message,
    Info,
    Prack,
    Update,
    Publish,
    /// An extension method; the raw token is in [`Request::raw_method`].
    Other,
}

impl Method {
    pub fn classify(token: &[u8]) -> Method {
        match token {
            b"REGISTER" => Method::Register,
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"OPTIONS" => Method::Options,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"INFO" => Method::Info,
            b"PRACK" => Method::Prack,
            b"UPDATE" => Method::Update,
            b"PUBLISH" => Method::Publish,
            _ => Method::Other,
        }
    }
}

/// The header lines of a message, in received order. Typed accessors live in `typed.rs`.
#[derive(Clone, Copy, Debug)]
pub struct Headers<'a, 'h> {
    pub lines: &'h [Header<'a>],
    /// One bit per [`HeaderName`] present ([`HeaderName::bit`]): asking for a header the message
    /// does not carry (Require, Path, Authorization on a first REGISTER) costs no walk.
    present: u64,
    /// One bit per [`HeaderName`] with a line whose value holds a control byte (one below 0x20,
    /// HT included, or DEL), found by the framer as it looks for each line's end: the writer
    /// copies the values of every other name as they are, with no sanitising scan.
    dirty: u64,
    /// One bit per [`HeaderName`] with more than one line: once the first line of any other
    /// name is found, no walk looks for a second.
    repeated: u64,
}

impl<'a, 'h> Headers<'a, 'h> {
    pub fn new(lines: &'h [Header<'a>]) -> Self {
        let (present, dirty) = lines.iter().fold((0, 0), |(p, d), h| {
            let bit = h.name.bit();
            (p | bit, if has_ctl(h.value) { d | bit } else { d })
        });
        Headers {
            lines,
            present,
            dirty,
            repeated: repeated_names(lines, present),
        }
    }

    /// Whether more than one line has this name.
    #[inline]
    pub(crate) fn is_repeated(&self, name: HeaderName) -> bool {
        self.repeated & name.bit() != 0
    }

    /// Whether a line with this name is present.
    #[inline]
    pub fn has(&self, name: HeaderName) -> bool {
        self.present & name.bit() != 0
    }

    /// Whether every line with this name (if any) has a value free of control bytes (below 0x20,
    /// HT included, or DEL), so that it, and every part of it, can be echoed as it is.
    #[inline]
    pub(crate) fn is_clean(&self, name: HeaderName) -> bool {
        self.dirty & name.bit() == 0
    }

    /// The same lines with every name marked as having a control byte in a value: what the
    /// writer's careful path writes, to compare its fast path with.
    #[cfg(test)]
    pub(crate) fn careful(self) -> Self {
        Headers { dirty: !0, ..self }
    }

    /// The lines to search for `name`: none when it is absent.
    #[inline]
    pub(crate) fn lines_for(&self, name: HeaderName) -> &'h [Header<'a>] {
        if self.has(name) { self.lines } else { &[] }
    }

    /// The first line with this name.
    pub fn get(&self, name: HeaderName) -> Option<&'h Header<'a>> {
        self.lines_for(name).iter().find(|h| h.name == name)
    }

    /// Every line with this name, in order.
    pub fn all(&self, name: HeaderName) -> impl Iterator<Item = &'h Header<'a>> + 'h {
        // After the only line with the name, no walk over the others for a second.
        let most = if self.is_repeated(name) {
            usize::MAX
        } else {
            1
        };
        self.lines_for(name)
            .iter()
            .filter(move |h| h.name == name)
            .take(most)
    }

    /// The one line with this name: `Ok(None)` when absent, `Err(Repeated)` when repeated.
    pub fn single(&self, name: HeaderName) -> Result<Option<&'h Header<'a>>, Repeated> {
        if self.is_repeated(name) {
            return Err(Repeated);
        }
        Ok(self.get(name))
    }

    /// Lines whose name is not one sipreg knows, compared case-insensitively.
    pub fn other(&self, raw_name: &[u8]) -> Option<&'h Header<'a>> {
        self.lines
            .iter()
            .find(|h| h.name == HeaderName::Other && h.raw_name.eq_ignore_ascii_case(raw_name))
    }
}

/// [`Headers::repeated`] of `lines`, whose names are `present`. Most messages have each name
/// once, which their count of lines shows: as many as the names present. Others take a walk.
#[inline]
fn repeated_names(lines: &[Header<'_>], present: u64) -> u64 {
    if present.count_ones() as usize == lines.len() {
        return 0;
    }
    repeated_walk(lines)
}

/// [`repeated_names`] the long way: each name seen before a line with it.
#[cold]
#[inline(never)]
fn repeated_walk(lines: &[Header<'_>]) -> u64 {
    let (_, repeated) = lines.iter().fold((0u64, 0u64), |(seen, repeated), h| {
        let bit = h.name.bit();
        (seen | bit, repeated | seen & bit)
    });
    repeated
}

/// A single-valued header appeared more than once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repeated;

/// A request, borrowed from the received bytes.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a, 'h> {
    pub method: Method,
    pub raw_method: &'a [u8],
    /// The Request-URI, unparsed; see [`super::uri::Uri::parse`].
    pub uri: &'a [u8],
    pub headers: Headers<'a, 'h>,
    pub body: &'a [u8],
}

/// A response, borrowed from the received bytes.
#[derive(Clone, Copy, Debug)]
pub struct Response<'a, 'h> {
    pub code: u16,
    pub reason: &'a [u8],
    pub headers: Headers<'a, 'h>,
    pub body: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub enum Message<'a, 'h> {
    Request(Request<'a, 'h>),
    Response(Response<'a, 'h>),
}

impl<'a, 'h> Message<'a, 'h> {
    pub fn headers(&self) -> Headers<'a, 'h> {
        match self {
            Message::Request(r) => r.headers,
            Message::Response(r) => r.headers,
        }
    }
}

/// The outcome of parsing from a stream.
#[derive(Clone, Copy, Debug)]
pub enum Status<T> {
    /// A whole message, and how many octets of the buffer it used (leading CRLFs included).
    Complete(T, usize),
    /// The buffer holds the beginning of a message; read more.
    Partial,
}

enum StartLine<'a> {
    Request {
        method: Method,
        raw_method: &'a [u8],
        uri: &'a [u8],
    },
    Response {
        code: u16,
        reason: &'a [u8],
    },
}

struct Head<'a> {
    start: StartLine<'a>,
    count: usize,
    /// [`Headers::present`] of the lines stored.
    present: u64,
    /// [`Headers::dirty`] of the lines stored.
    dirty: u64,
    /// [`Headers::repeated`] of the lines stored.
    repeated: u64,
    body_offset: usize,
    content_length: Option<usize>,
}

/// Parses one UDP datagram.
///
/// RFC 3261 18.3: without Content-Length the body runs to the end of the datagram; octets beyond
/// Content-Length are discarded; a Content-Length larger than the datagram is an error.
pub fn parse_datagram<'a, 'h>(
    buf: &'a [u8],
    storage: &'h mut [Header<'a>],
    limits: &Limits,
) -> Result<Message<'a, 'h>, Error> {
    if buf.len() > limits.max_message {
        return Err(Error {
            kind: ErrorKind::MessageTooLarge,
            in_response: looks_like_response(skip_crlf(buf)),
        });
    }
    let head = parse_head(buf, storage, limits)?;
    let after = buf.get(head.body_offset..).unwrap_or_default();
    let body = match head.content_length {
        None => after,
        Some(n) => after.get(..n).ok_or(Error {
            kind: ErrorKind::ContentLengthExceedsMessage,
            in_response: matches!(head.start, StartLine::Response { .. }),
        })?,
    };
    Ok(assemble(head, storage, body))
}

/// Recovers the header lines of a request that failed to parse, so that it can still be answered
/// (a 400 needs the Via, From, To, Call-ID and CSeq of the request it answers).
///
/// Lines that are not `token ":" value` are skipped; the scan stops at the blank line, the end of
/// the buffer or the end of `storage`. Only for the error path: nothing here is validated.
pub fn salvage<'a, 'h>(buf: &'a [u8], storage: &'h mut [Header<'a>]) -> Headers<'a, 'h> {
    let rest = skip_crlf(buf);
    let mut count = 0;
    let mut pos = line_end(rest, 0).map_or(rest.len(), |(_, next)| next);
    while count < storage.len() {
        let Some((end, mut next)) = line_end(rest, pos) else {
            break;
        };
        if end == pos {
            break; // the blank line
        }
        while matches!(rest.get(next), Some(b' ' | b'\t')) {
            match line_end(rest, next) {
                Some((_, n)) => next = n,
                None => next = rest.len(),
            }
        }
        let line = rest.get(pos..next).unwrap_or_default();
        let name_len = line.iter().take_while(|&&b| chars::is(b, TOKEN)).count();
        let raw_name = line.get(..name_len).unwrap_or_default();
        let after = chars::trim_start(line.get(name_len..).unwrap_or_default());
        if let (true, Some(value)) = (name_len > 0, after.strip_prefix(b":"))
            && let Some(slot) = storage.get_mut(count)
        {
            *slot = Header {
                name: HeaderName::classify(raw_name),
                raw_name,
                value: chars::trim(value),
            };
            count += 1;
        }
        pos = next;
    }
    Headers::new(storage.get(..count).unwrap_or_default())
}

/// Parses the next message from a stream buffer.
///
/// Leading CRLFs (RFC 3261 7.5; RFC 5626 keep-alives) are skipped and counted in the consumed
/// length. Content-Length is mandatory on streams (RFC 3261 18.3).
pub fn parse_stream<'a, 'h>(
    buf: &'a [u8],
    storage: &'h mut [Header<'a>],
    limits: &Limits,
) -> Result<Status<Message<'a, 'h>>, Error> {
    let skipped = buf.len() - skip_crlf(buf).len();
    let rest = skip_crlf(buf);
    let response = looks_like_response(rest);
    let fail = |kind| Error {
        kind,
        in_response: response,
    };
    // The blank line ends the head: CRLF CRLF, or the bare-LF forms the datagram parser accepts.
    let Some(end) = head_end(rest) else {
        return if rest.len() > limits.max_message {
            Err(fail(ErrorKind::MessageTooLarge))
        } else {
            Ok(Status::Partial)
        };
    };
    if end > limits.max_message {
        return Err(fail(ErrorKind::MessageTooLarge));
    }
    let head_bytes = rest.get(..end).unwrap_or_default();
    let head = parse_head(head_bytes, storage, limits)?;
    let Some(length) = head.content_length else {
        return Err(fail(ErrorKind::MissingContentLength));
    };
    let total = head.body_offset + length;
    if total > limits.max_message {
        return Err(fail(ErrorKind::MessageTooLarge));
    }
    let Some(body) = rest.get(head.body_offset..total) else {
        return Ok(Status::Partial);
    };
    Ok(Status::Complete(
        assemble(head, storage, body),
        skipped + total,
    ))
}

/// The length of the head (blank line included) at the start of `buf`, if it is all there.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let lf = from + memchr::memchr(b'\n', buf.get(from..)?)?;
        match buf.get(lf + 1..) {
            Some([b'\n', ..]) => return Some(lf + 2),
            Some([b'\r', b'\n', ..]) => return Some(lf + 3),
            _ => from = lf + 1,
        }
    }
}

fn assemble<'a, 'h>(
    head: Head<'a>,
    storage: &'h mut [Header<'a>],
    body: &'a [u8],
) -> Message<'a, 'h> {
    let lines: &'h [Header<'a>] = storage.get(..head.count).unwrap_or_default();
    let headers = Headers {
        lines,
        present: head.present,
        dirty: head.dirty,
        repeated: head.repeated,
    };
    match head.start {
        StartLine::Request {
            method,
            raw_method,
            uri,
        } => Message::Request(Request {
            method,
            raw_method,
            uri,
            headers,
            body,
        }),
        StartLine::Response { code, reason } => Message::Response(Response {
            code,
            reason,
            headers,
            body,
        }),
    }
}

fn skip_crlf(buf: &[u8]) -> &[u8] {
    let n = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    buf.get(n..).unwrap_or_default()
}

fn looks_like_response(buf: &[u8]) -> bool {
    // "SIP/" in any letter case: setting the case bit of the first three bytes gives "sip/" for
    // those letters in either case and for no other bytes.
    buf.first_chunk::<4>()
        .is_some_and(|p| u32::from_le_bytes(*p) | 0x0020_2020 == u32::from_le_bytes(*b"sip/"))
}

/// Finds the end of the line starting at `from`: returns (end of content, start of next line).
/// Accepts CRLF and, leniently, a bare LF.
#[inline]
fn line_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let lf = find_lf(buf, from)?;
    let end = if lf > from && buf.get(lf - 1) == Some(&b'\r') {
        lf - 1
    } else {
        lf
    };
    Some((end, lf + 1))
}

/// Finds the next LF at or after `from`. Header lines are short (tens of bytes), where a
/// word-at-a-time scan beats a SIMD search's set-up cost. Two words per step: a line of a typical
/// REGISTER takes one or two steps, and the loop's own bookkeeping is paid once per 16 bytes.
#[inline(always)]
fn find_lf(buf: &[u8], from: usize) -> Option<usize> {
    find_flagged(buf, from, |w| chars::flag_eq(w, b'\n'), |b| b == b'\n')
}

/// The first byte at or after `from` that `flags` marks in its word, two words per step, and
/// `is` among the last fewer than 16 bytes. `flags` may mark bytes above the first spuriously,
/// as long as its lowest mark is exact (as [`chars::flag_eq`] and [`ctl_bits`] do).
#[inline(always)]
fn find_flagged(
    buf: &[u8],
    from: usize,
    flags: impl Fn(u64) -> u64,
    is: impl Fn(u8) -> bool,
) -> Option<usize> {
    let tail = buf.get(from..)?;
    let mut chunks = tail.chunks_exact(16);
    let mut at = from;
    for chunk in chunks.by_ref() {
        let (lo, hi) = chunk.split_at(8);
        let lo = flags(word(lo));
        let hi = flags(word(hi));
        if lo | hi != 0 {
            let bit = if lo != 0 {
                lo.trailing_zeros()
            } else {
                64 + hi.trailing_zeros()
            };
            return Some(at + (bit / 8) as usize);
        }
        at += 16;
    }
    Some(at + chunks.remainder().iter().position(|&b| is(b))?)
}

/// Finds the first control byte (below 0x20, or DEL) at or after `from`, two words per step like
/// [`find_lf`]. On a clean header line it is the CR of the line's CRLF; anything else (HT, a lone
/// CR, a bare LF, another control) shows the value is not clean.
#[cfg(test)]
#[inline(always)]
fn find_ctl(buf: &[u8], from: usize) -> Option<usize> {
    find_flagged(buf, from, ctl_bits, is_ctl)
}

/// A control byte: below 0x20 (HT included) or DEL, what [`super::Writer::put_value`] does not
/// copy as it is.
#[inline(always)]
pub(super) fn is_ctl(b: u8) -> bool {
    b < b' ' || b == 0x7f
}

/// Flags each control byte ([`is_ctl`]) of an 8-byte word with its high bit. As with
/// [`chars::flag_eq`], bytes above the first control may be flagged spuriously; the lowest flag is
/// exact (each of the two tests' lowest flag is).
#[inline(always)]
pub(super) fn ctl_bits(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The has-less-than test: a byte below 0x20 (and none of 0x80 or more) sets the high bit.
    let below = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    below | chars::flag_eq(w, 0x7f)
}

/// True when `v` holds a control byte ([`is_ctl`]), a word at a time.
pub(super) fn has_ctl(v: &[u8]) -> bool {
    let mut words = v.chunks_exact(8);
    for chunk in words.by_ref() {
        if ctl_bits(word(chunk)) != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| is_ctl(b))
}

/// Finds the first colon in `buf`, wherever it is, a word at a time: [`plain_line`]'s name end,
/// which needs no stop at the line's end (a colon beyond it leaves a name with CR or LF in it, no
/// token, and the line goes the general way). `None` for fewer than eight bytes, which go the
/// general way too.
#[cfg(test)]
#[inline(always)]
fn first_colon(buf: &[u8]) -> Option<usize> {
    // Most names end within the first word: that one is read before any loop.
    let first = chars::flag_eq(u64::from_le_bytes(*buf.first_chunk::<8>()?), b':');
    if first != 0 {
        return Some((first.trailing_zeros() / 8) as usize);
    }
    let mut i = 8;
    while let Some(chunk) = buf.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let colon = chars::flag_eq(u64::from_le_bytes(*chunk), b':');
        if colon != 0 {
            return Some(i + (colon.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    Some(i + buf.get(i..)?.iter().position(|&b| b == b':')?)
}

/// Finds the colon that ends a header name; `None` when an LF, or the end of `buf`, comes first.
#[inline(always)]
fn find_colon(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = buf.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let w = u64::from_le_bytes(*chunk);
        let lf = chars::flag_eq(w, b'\n');
        let colon = chars::flag_eq(w, b':');
        if lf | colon != 0 {
            // Each lowest flag is exact (see `chars::flag_eq`), so comparing them orders the two.
            let at = colon.trailing_zeros();
            return (at < lf.trailing_zeros()).then_some(i + (at / 8) as usize);
        }
        i += 8;
    }
    let at = i + buf
        .get(i..)?
        .iter()
        .position(|&b| b == b':' || b == b'\n')?;
    (buf.get(at) == Some(&b':')).then_some(at)
}

#[inline(always)]
pub(super) fn word(chunk: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(chunk);
    u64::from_le_bytes(w)
}

/// Frames the start line and the header lines at the start of `buf`, storing the lines in
/// `storage`. Inlined into its two callers, which then read the head where it was built rather
/// than through memory.
#[inline(always)]
fn parse_head<'a>(
    buf: &'a [u8],
    storage: &mut [Header<'a>],
    limits: &Limits,
) -> Result<Head<'a>, Error> {
    let lead = buf.len() - skip_crlf(buf).len();
    let response = looks_like_response(buf.get(lead..).unwrap_or_default());
    let fail = |kind| Error {
        kind,
        in_response: response,
    };

    let plain = if response {
        None
    } else {
        plain_request_line(buf, lead, limits.max_line)
    };
    let (start, pos) = match plain {
        Some(plain) => plain,
        None => start_line(buf, lead, response, limits).map_err(fail)?,
    };

    let lines = if buf.len().saturating_sub(pos) > limits.max_line {
        header_lines::<true>(buf, pos, storage, limits)
    } else {
        header_lines::<false>(buf, pos, storage, limits)
    }
    .map_err(fail)?;
    Ok(Head {
        start,
        count: lines.count,
        present: lines.present,
        dirty: lines.dirty,
        repeated: lines.repeated,
        body_offset: lines.body_offset,
        content_length: lines.content_length,
    })
}

/// What the header lines give [`Head`].
struct Lines {
    count: usize,
    present: u64,
    dirty: u64,
    repeated: u64,
    body_offset: usize,
    content_length: Option<usize>,
}

/// Frames the header lines from `pos` to the blank line, storing them in `storage`.
///
/// A function of its own, apart from the start line, so that the loop's state stays in
/// registers. A plain line ([`plain_header`]) tells whether the next line starts with a byte
/// above SP, so that the test for the blank line (and the buffer's end) is made only after a line
/// followed by something else.
///
/// `LONG` is whether the bytes from `pos` on are more than `limits.max_line`: when they are not,
/// no line can be too long, and plain lines are not measured.
#[inline(never)]
fn header_lines<'a, const LONG: bool>(
    buf: &'a [u8],
    pos: usize,
    storage: &mut [Header<'a>],
    limits: &Limits,
) -> Result<Lines, ErrorKind> {
    let plain_max = if LONG { limits.max_line } else { usize::MAX };
    let storage_len = storage.len();
    let mut slots = storage.iter_mut();
    let mut present = 0;
    let mut dirty = 0;
    let mut content_length = 0;
    let mut rest = buf.get(pos..).unwrap_or_default();
    let blank = 'lines: loop {
        match rest {
            [b'\r', b'\n', ..] => break 2,
            [b'\n', ..] => break 1,
            [] => return Err(ErrorKind::Truncated),
            _ => {}
        }
        loop {
            // The usual line is stored as `plain_header` cut it; any other line takes the
            // general path, whose verdicts these are.
            let Some((header, next, header_next)) = plain_header(rest, plain_max) else {
                let (header, clean, len) = general_line(rest, limits.max_line)?;
                if !clean {
                    dirty |= header.name.bit();
                }
                push(
                    header,
                    &mut slots,
                    &mut present,
                    &mut content_length,
                    limits,
                )?;
                rest = rest.get(len..).unwrap_or_default();
                continue 'lines;
            };
            // A plain line's value holds no control byte: its name stays clean.
            push(
                header,
                &mut slots,
                &mut present,
                &mut content_length,
                limits,
            )?;
            rest = next;
            if !header_next {
                continue 'lines;
            }
        }
    };
    let count = storage_len - slots.len();
    Ok(Lines {
        count,
        present,
        dirty,
        repeated: repeated_names(storage.get(..count).unwrap_or_default(), present),
        body_offset: buf.len() - rest.len() + blank,
        content_length: (present & HeaderName::ContentLength.bit() != 0).then_some(content_length),
    })
}

/// Any start line at `lead`: the line, its length checked, parsed as a request or a status line.
/// Returns the start line and where the next line starts.
#[cold]
#[inline(never)]
fn start_line<'a>(
    buf: &'a [u8],
    lead: usize,
    response: bool,
    limits: &Limits,
) -> Result<(StartLine<'a>, usize), ErrorKind> {
    let (end, pos) = line_end(buf, lead).ok_or_else(|| {
        if buf.len() - lead > limits.max_line {
            ErrorKind::LineTooLong
        } else {
            ErrorKind::Truncated
        }
    })?;
    if end - lead > limits.max_line {
        return Err(ErrorKind::LineTooLong);
    }
    let line = buf.get(lead..end).unwrap_or_default();
    let start = if response {
        parse_status_line(line)?
    } else {
        parse_request_line(line)?
    };
    Ok((start, pos))
}

/// The usual request line at `from`, `Method SP Request-URI SP "SIP/2.0" CRLF` with method and
/// URI free of control bytes and SP, a word at a time: the method ends at the first control byte
/// or SP, which must be SP, the URI likewise, and "SIP/2.0" CRLF follows. Returns the start line
/// and where the next line starts; `None` for any other line, which [`start_line`] then parses
/// (accepting everything this accepts, with the same parts).
#[inline(always)]
fn plain_request_line(buf: &[u8], from: usize, max_line: usize) -> Option<(StartLine<'_>, usize)> {
    let rest = buf.get(from..)?;
    // The method: REGISTER before all others.
    let (method, method_len) = if rest.first_chunk::<9>() == Some(b"REGISTER ") {
        (Method::Register, 8)
    } else {
        let len = find_ctl_or_space(rest, 0)?;
        let raw = rest.get(..len)?;
        let method = Method::classify(raw);
        // A known method is a token.
        if rest.get(len) != Some(&b' ') || method == Method::Other && !chars::is_token(raw) {
            return None;
        }
        (method, len)
    };
    let (raw_method, after_method) = rest.split_at_checked(method_len)?;
    // `after_method` starts with the SP found above.
    let from_uri = after_method.get(1..)?;
    let (uri, after_uri) = from_uri.split_at_checked(find_ctl_or_space(from_uri, 0)?)?;
    if uri.is_empty()
        || after_uri.first_chunk::<10>() != Some(b" SIP/2.0\r\n")
        || method_len + uri.len() + 9 > max_line
    {
        return None;
    }
    let start = StartLine::Request {
        method,
        raw_method,
        uri,
    };
    Some((start, from + method_len + uri.len() + 11))
}

/// The first control byte or SP at or after `from`, whole words only: `None` when there is none
/// before the last fewer than eight bytes.
#[inline(always)]
fn find_ctl_or_space(buf: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut at = from;
    for chunk in buf.get(from..)?.chunks_exact(8) {
        let w = word(chunk);
        // As in `has_ctl_or_space`; the lowest flag is exact.
        let found = (w.wrapping_sub(ONES * 0x21) & !w & HIGH) | chars::flag_eq(w, 0x7f);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    None
}

/// Stores one header line in the next free slot, with its name's bit in `present`, reading
/// Content-Length on the way: its value goes to `content_length`, which means something once
/// Content-Length's bit is in `present` (so that a repeated line is seen there too).
#[inline(always)]
fn push<'a>(
    header: Header<'a>,
    slots: &mut core::slice::IterMut<'_, Header<'a>>,
    present: &mut u64,
    content_length: &mut usize,
    limits: &Limits,
) -> Result<(), ErrorKind> {
    if header.name == HeaderName::ContentLength {
        if *present & HeaderName::ContentLength.bit() != 0 {
            return Err(ErrorKind::DuplicateContentLength);
        }
        let n = chars::parse_decimal(header.value, limits.max_message as u64)
            .ok_or(ErrorKind::BadContentLength)?;
        *content_length = n as usize;
    }
    *slots.next().ok_or(ErrorKind::TooManyHeaders)? = header;
    *present |= header.name.bit();
    Ok(())
}

/// The shape nearly every line has, `Name: value CRLF`: a token, a colon, one space, a value
/// that neither starts nor ends with white space and holds no control byte ([`is_ctl`]: no HT,
/// no fold), CRLF, and a next line that is not a continuation. `None` for anything else, which
/// [`general_line`] then parses; where both succeed they agree (the header line grammar and its
/// verdicts are `general_line`'s). Returns the header and the bytes after the line.
#[inline(always)]
fn plain_header(rest: &[u8], max_line: usize) -> Option<(Header<'_>, &[u8], bool)> {
    // Most names end within the line's first word, which is read once: for the colon, and as
    // the name's word (with its colon) for the classifier.
    let first = u64::from_le_bytes(*rest.first_chunk::<8>()?);
    // A space before the colon is not a token byte, so HCOLON's white space goes the general way.
    // A known name and its colon take no search for the colon beyond the word it is in.
    let (name, colon) = match HeaderName::short_known(first) {
        Some(known) => known,
        None => match long_known(rest, first) {
            Some(known) => known,
            None => any_name(rest, first)?,
        },
    };
    let (raw_name, after_name) = rest.split_at_checked(colon)?;
    // `after_name` starts with the colon found above. A value that starts with HT, CR or LF ends
    // at once, empty, at that control byte (below), so that only SP needs a test here.
    let [_, b' ', first, ..] = after_name else {
        return None;
    };
    if *first == b' ' {
        return None;
    }
    let from_value = after_name.get(2..)?;
    // The first control byte ends the value: the CR of CRLF on a plain line.
    let (value, end) = from_value.split_at_checked(find_ctl_bytewise(from_value)?)?;
    // An empty value is not plain (its general form is trimmed from the SP before it).
    let [.., last] = value else {
        return None;
    };
    // A next line that starts with SP or HT would continue this one.
    let [b'\r', b'\n', next, ..] = *end else {
        return None;
    };
    if *last == b' '
        || next <= b' ' && (next == b' ' || next == b'\t')
        || colon + 2 + value.len() > max_line
    {
        return None;
    }
    let header = Header {
        name,
        raw_name,
        value,
    };
    Some((header, end.get(2..)?, next > b' '))
}

/// [`find_ctl`] from the start of `buf`, written byte by byte over sixteen-byte chunks: the
/// compiler makes each chunk's test a few vector compares and one mask test (SSE2 on x86-64),
/// cheaper than two words' arithmetic tests, and the position, once found, one count of trailing
/// zeros.
#[inline(always)]
fn find_ctl_bytewise(buf: &[u8]) -> Option<usize> {
    let mut chunks = buf.chunks_exact(16);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let chunk: &[u8; 16] = chunk.try_into().unwrap_or(&[0; 16]);
        let flags = chunk.map(|b| if is_ctl(b) { 0xff } else { 0u8 });
        if flags.iter().fold(0, |any, &f| any | f) != 0 {
            return Some(at + (u128::from_le_bytes(flags).trailing_zeros() / 8) as usize);
        }
        at += 16;
    }
    Some(at + chunks.remainder().iter().position(|&b| is_ctl(b))?)
}

/// The known name of eight to fifteen bytes at the start of `rest`, whose first word is
/// `first`, and its colon, the first in `rest`'s second word.
#[inline(always)]
fn long_known(rest: &[u8], first: u64) -> Option<(HeaderName, usize)> {
    let second = u64::from_le_bytes(*rest.get(8..)?.first_chunk::<8>()?);
    let colon_bits = chars::flag_eq(second, b':');
    if colon_bits == 0 {
        return None;
    }
    let len = 8 + (colon_bits.trailing_zeros() / 8) as usize;
    Some((HeaderName::known_long(first, second, len)?, len))
}

/// The name at the start of `rest`, whose first word is `first`, and its colon, the first in
/// `rest`; `None` when the name is not a token or no colon comes before the last fewer than
/// eight bytes.
#[inline(never)]
fn any_name(rest: &[u8], first: u64) -> Option<(HeaderName, usize)> {
    let mut len = 0;
    let mut word = first;
    loop {
        let colon_bits = chars::flag_eq(word, b':');
        if colon_bits != 0 {
            len += (colon_bits.trailing_zeros() / 8) as usize;
            return Some((HeaderName::classify_prefix(rest, len)?, len));
        }
        len += 8;
        word = chars::word_at(rest, len)?;
    }
}

/// [`plain_header`] as offsets into `rest`: the name, the colon's, the value's end and the line's
/// length (the value starts two bytes after the colon).
#[cfg(test)]
fn plain_line(rest: &[u8], max_line: usize) -> Option<(HeaderName, usize, usize, usize)> {
    let (header, next, _) = plain_header(rest, max_line)?;
    let colon = header.raw_name.len();
    Some((
        header.name,
        colon,
        colon + 2 + header.value.len(),
        rest.len() - next.len(),
    ))
}

/// One header line at the start of `rest` (which is not the blank line): the header, and the
/// length of the line with its folded continuations and its line end, and whether the value is
/// free of control bytes ([`is_ctl`]; a folded value is not). Any line: white space around the
/// colon, an empty value, bare LF, folding, and every defect.
#[cold]
#[inline(never)]
fn general_line(rest: &[u8], max_line: usize) -> Result<(Header<'_>, bool, usize), ErrorKind> {
    // The first colon ends the name, so the bytes before it must be a token and, by RFC 3261
    // 25.1 (HCOLON = *( SP / HTAB ) ":" SWS), optional white space.
    let colon = find_colon(rest).ok_or(ErrorKind::BadHeaderLine)?;
    let mut name_len = colon;
    while let Some(b' ' | b'\t') = rest.get(name_len.wrapping_sub(1)) {
        name_len -= 1;
    }
    let name = HeaderName::classify_prefix(rest, name_len).ok_or(ErrorKind::BadHeaderLine)?;
    let raw_name = rest.get(..name_len).unwrap_or_default();
    let value_start = colon + 1;
    let unterminated = || {
        if rest.len() > max_line {
            ErrorKind::LineTooLong
        } else {
            ErrorKind::Truncated
        }
    };
    let mut lf = find_lf(rest, value_start).ok_or_else(unterminated)?;
    // A line that begins with SP or HT continues the previous one (folding).
    while matches!(rest.get(lf + 1), Some(b' ' | b'\t')) {
        lf = find_lf(rest, lf + 1).ok_or_else(unterminated)?;
    }
    // `lf` is past the colon, so `lf - 1` is in the line.
    let value_end = if rest.get(lf - 1) == Some(&b'\r') {
        lf - 1
    } else {
        lf
    };
    if value_end > max_line {
        return Err(ErrorKind::LineTooLong);
    }
    let header = Header {
        name,
        raw_name,
        value: chars::trim(rest.get(value_start..value_end).unwrap_or_default()),
    };
    Ok((header, !has_ctl(header.value), lf + 1))
}

/// `Request-Line = Method SP Request-URI SP SIP-Version CRLF`, with single spaces exactly.
#[inline(always)]
fn parse_request_line(line: &[u8]) -> Result<StartLine<'_>, ErrorKind> {
    // The usual line ends in exactly " SIP/2.0"; any other goes the general way, which accepts
    // everything this accepts, with the same parts.
    if let Some(head) = line.strip_suffix(b" SIP/2.0")
        && let Some(first) = find_byte(head, b' ')
        && let (Some(raw_method), Some(uri)) = (head.get(..first), head.get(first + 1..))
    {
        let method = Method::classify(raw_method);
        // A known method is a token.
        if (method != Method::Other || chars::is_token(raw_method))
            && !uri.is_empty()
            && !has_ctl_or_space(uri)
        {
            return Ok(StartLine::Request {
                method,
                raw_method,
                uri,
            });
        }
    }
    general_request_line(line)
}

/// The first `byte` in `buf`, a word at a time.
#[inline(always)]
fn find_byte(buf: &[u8], byte: u8) -> Option<usize> {
    let mut words = buf.chunks_exact(8);
    let mut at = 0;
    for chunk in words.by_ref() {
        let bits = chars::flag_eq(word(chunk), byte);
        if bits != 0 {
            return Some(at + (bits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    Some(at + words.remainder().iter().position(|&b| b == byte)?)
}

/// True when `buf` holds a control character, SP or DEL, a word at a time.
#[inline(always)]
fn has_ctl_or_space(buf: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Some byte is below 0x21 exactly when the has-less-than test is non-zero.
    let found = |w: u64| (w.wrapping_sub(ONES * 0x21) & !w & HIGH) | chars::flag_eq(w, 0x7f) != 0;
    let mut words = buf.chunks_exact(8);
    for chunk in words.by_ref() {
        if found(word(chunk)) {
            return true;
        }
    }
    match buf.last_chunk::<8>() {
        // The tail as the word that ends `buf`, over bytes already seen.
        Some(last) if !words.remainder().is_empty() => found(u64::from_le_bytes(*last)),
        Some(_) => false,
        None => words.remainder().iter().any(|&b| b <= b' ' || b == 0x7f),
    }
}

#[cold]
#[inline(never)]
fn general_request_line(line: &[u8]) -> Result<StartLine<'_>, ErrorKind> {
    let first = memchr::memchr(b' ', line).ok_or(ErrorKind::BadStartLine)?;
    let last = memchr::memrchr(b' ', line).ok_or(ErrorKind::BadStartLine)?;
    if last <= first {
        return Err(ErrorKind::BadStartLine);
    }
    let method = line.get(..first).unwrap_or_default();
    let uri = line.get(first + 1..last).unwrap_or_default();
    let version = line.get(last + 1..).unwrap_or_default();
    if !chars::is_token(method) {
        return Err(ErrorKind::BadStartLine);
    }
    // The Request-URI contains no white space or control characters (RFC 4475 3.1.2.12, lwsruri).
    if uri.is_empty() || uri.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(ErrorKind::BadStartLine);
    }
    check_version(version)?;
    Ok(StartLine::Request {
        method: Method::classify(method),
        raw_method: method,
        uri,
    })
}

/// `Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF`
fn parse_status_line(line: &[u8]) -> Result<StartLine<'_>, ErrorKind> {
    let sp = memchr::memchr(b' ', line).ok_or(ErrorKind::BadStartLine)?;
    check_version(line.get(..sp).unwrap_or_default())?;
    let rest = line.get(sp + 1..).unwrap_or_default();
    let code_bytes = rest.get(..3).ok_or(ErrorKind::BadStatusCode)?;
    let code = chars::parse_decimal(code_bytes, 699).ok_or(ErrorKind::BadStatusCode)?;
    if code < 100 {
        return Err(ErrorKind::BadStatusCode);
    }
    let reason = match rest.get(3) {
        None => &[][..],
        Some(b' ') => rest.get(4..).unwrap_or_default(),
        // A fourth digit, as in RFC 4475 bigcode: not a 3DIGIT status code.
        Some(_) => return Err(ErrorKind::BadStatusCode),
    };
    if reason.iter().any(|&b| b < b' ' && b != b'\t') {
        return Err(ErrorKind::BadStartLine);
    }
    Ok(StartLine::Response {
        code: code as u16,
        reason,
    })
}

/// `SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT`; only 2.0 is supported (RFC 3261 8.2.2.x, 505).
fn check_version(v: &[u8]) -> Result<(), ErrorKind> {
    let Some(rest) = v
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case(b"SIP/"))
        .and_then(|_| v.get(4..))
    else {
        return Err(ErrorKind::BadStartLine);
    };
    let dot = memchr::memchr(b'.', rest).ok_or(ErrorKind::BadStartLine)?;
    let major = chars::parse_decimal_saturating(rest.get(..dot).unwrap_or_default(), 1000)
        .ok_or(ErrorKind::BadStartLine)?;
    let minor = chars::parse_decimal_saturating(rest.get(dot + 1..).unwrap_or_default(), 1000)
        .ok_or(ErrorKind::BadStartLine)?;
    if (major, minor) == (2, 0) {
        Ok(())
    } else {
        Err(ErrorKind::UnsupportedVersion)
    }
}

/// The framer the current one replaced, kept as the oracle it is tested against: the same
/// verdicts, headers, `present` and `dirty` for every input.
#[cfg(test)]
mod reference {
    use super::*;

    pub(super) fn parse_head<'a>(
        buf: &'a [u8],
        storage: &mut [Header<'a>],
        limits: &Limits,
    ) -> Result<Head<'a>, Error> {
        let lead = buf.len() - skip_crlf(buf).len();
        let response = looks_like_response(buf.get(lead..).unwrap_or_default());
        let fail = |kind| Error {
            kind,
            in_response: response,
        };

        let (end, mut pos) = line_end(buf, lead).ok_or_else(|| {
            if buf.len() - lead > limits.max_line {
                fail(ErrorKind::LineTooLong)
            } else {
                fail(ErrorKind::Truncated)
            }
        })?;
        if end - lead > limits.max_line {
            return Err(fail(ErrorKind::LineTooLong));
        }
        let line = buf.get(lead..end).unwrap_or_default();
        let start = if response {
            parse_status_line(line).map_err(fail)?
        } else {
            parse_request_line(line).map_err(fail)?
        };

        let mut count = 0;
        let mut present = 0;
        let mut dirty = 0;
        let mut content_length = None;
        loop {
            let rest = buf.get(pos..).unwrap_or_default();
            match rest {
                [b'\r', b'\n', ..] => {
                    pos += 2;
                    break;
                }
                [b'\n', ..] => {
                    pos += 1;
                    break;
                }
                [] => return Err(fail(ErrorKind::Truncated)),
                _ => {}
            }
            // The usual line is stored straight from `plain_line`'s offsets; any other line takes the
            // general path, whose verdicts these are.
            let len = match plain_line(rest, limits.max_line) {
                // A plain line's value holds no control byte: its name stays clean.
                Some((name, colon, value_end, len)) => {
                    let header = Header {
                        name,
                        raw_name: rest.get(..colon).unwrap_or_default(),
                        value: rest.get(colon + 2..value_end).unwrap_or_default(),
                    };
                    present |= name.bit();
                    push(header, storage, &mut count, &mut content_length, limits).map_err(fail)?;
                    len
                }
                None => {
                    let (header, clean, len) = general_line(rest, limits.max_line).map_err(fail)?;
                    present |= header.name.bit();
                    if !clean {
                        dirty |= header.name.bit();
                    }
                    push(header, storage, &mut count, &mut content_length, limits).map_err(fail)?;
                    len
                }
            };
            pos += len;
        }
        Ok(Head {
            start,
            count,
            present,
            dirty,
            repeated: super::repeated_walk(storage.get(..count).unwrap_or_default()),
            body_offset: pos,
            content_length,
        })
    }

    /// Stores one header line, reading Content-Length on the way.
    #[inline(always)]
    fn push<'a>(
        header: Header<'a>,
        storage: &mut [Header<'a>],
        count: &mut usize,
        content_length: &mut Option<usize>,
        limits: &Limits,
    ) -> Result<(), ErrorKind> {
        if header.name == HeaderName::ContentLength {
            if content_length.is_some() {
                return Err(ErrorKind::DuplicateContentLength);
            }
            let n = chars::parse_decimal(header.value, limits.max_message as u64)
                .ok_or(ErrorKind::BadContentLength)?;
            *content_length = Some(n as usize);
        }
        let slot = storage.get_mut(*count).ok_or(ErrorKind::TooManyHeaders)?;
        *slot = header;
        *count += 1;
        Ok(())
    }

    /// The shape nearly every line has, `Name: value CRLF`: a token, a colon, one space, a value
    /// that neither starts nor ends with white space and holds no control byte ([`is_ctl`]: no HT,
    /// no fold), CRLF, and no continuation. `None` for anything else, which [`general_line`] then
    /// parses; where both succeed they agree (the header line grammar and its verdicts are
    /// `general_line`'s). Returns the name, the colon's offset (the value starts two bytes later),
    /// the end of the value and the length of the line.
    #[inline(always)]
    fn plain_line(rest: &[u8], max_line: usize) -> Option<(HeaderName, usize, usize, usize)> {
        let colon = first_colon(rest)?;
        // A space before the colon is not a token byte, so HCOLON's white space goes the general way.
        let name = HeaderName::classify_prefix(rest, colon)?;
        let value_start = colon + 2;
        if rest.get(colon + 1) != Some(&b' ')
            || rest.get(value_start).is_none_or(|&b| chars::is_lws(b))
        {
            return None;
        }
        // The first control byte ends the value: the CR of CRLF on a plain line.
        let value_end = find_ctl(rest, value_start)?;
        // `rest[value_start]` is neither LWS nor (were it another control) CR, so a value that ends
        // at a CR is not empty, and its last byte, no control, is LWS only if it is SP.
        if rest.get(value_end) != Some(&b'\r')
            || rest.get(value_end + 1) != Some(&b'\n')
            || matches!(rest.get(value_end + 2), Some(b' ' | b'\t'))
            || value_end > max_line
            || rest.get(value_end - 1) == Some(&b' ')
        {
            return None;
        }
        Some((name, colon, value_end, value_end + 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:alice@example.com>\r\n\
From: <sip:alice@example.com>;tag=456248\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:alice@192.0.2.1:5060>\r\n\
Expires: 7200\r\n\
Content-Length: 0\r\n\r\n";

    fn parse(buf: &[u8]) -> Result<Message<'_, '_>, Error> {
        let storage = Box::leak(Box::new([Header::EMPTY; 32]));
        parse_datagram(buf, storage, &Limits::default())
    }

    #[test]
    fn register_frames() {
        let Message::Request(r) = parse(REGISTER).unwrap() else {
            panic!("not a request")
        };
        assert_eq!(r.method, Method::Register);
        assert_eq!(r.uri, b"sip:example.com");
        assert_eq!(r.headers.lines.len(), 9);
        assert_eq!(r.headers.get(HeaderName::Expires).unwrap().value, b"7200");
        assert!(r.body.is_empty());
    }

    /// The parser's set of present names is the one the lines give, compact and folded forms
    /// included, so that a lookup skipped for an absent name never misses a present one.
    #[test]
    fn present_names_match_the_lines() {
        let msg =
            b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nRequire:\r\n path\r\n\
X-Other: 1\r\nl: 0\r\nVia: SIP/2.0/UDP i\r\nX-Third: 2\r\n\r\n";
        for buf in [REGISTER, &msg[..]] {
            let Message::Request(r) = parse(buf).unwrap() else {
                panic!("not a request")
            };
            let again = Headers::new(r.headers.lines);
            for name in [HeaderName::Via, HeaderName::Require, HeaderName::Other] {
                let present = r.headers.lines.iter().any(|h| h.name == name);
                assert_eq!(r.headers.has(name), present, "{name:?}");
                assert_eq!(again.has(name), present, "{name:?}");
                assert_eq!(r.headers.get(name).is_some(), present, "{name:?}");
                let repeated = r.headers.lines.iter().filter(|h| h.name == name).count() > 1;
                assert_eq!(r.headers.is_repeated(name), repeated, "{name:?}");
                assert_eq!(again.is_repeated(name), repeated, "{name:?}");
            }
            assert!(!r.headers.has(HeaderName::Path));
            assert_eq!(r.headers.all(HeaderName::Path).count(), 0);
        }
    }

    #[test]
    fn verdicts() {
        let cases: &[(&[u8], ErrorKind)] = &[
            (b"INVITE  sip:a@b SIP/2.0\r\n\r\n", ErrorKind::BadStartLine),
            (
                b"OPTIONS sip:a@b SIP/2.0  \r\n\r\n",
                ErrorKind::BadStartLine,
            ),
            (
                b"OPTIONS sip:a@b SIP/7.0\r\n\r\n",
                ErrorKind::UnsupportedVersion,
            ),
            (b"OPTIONS sip:a@b\r\n\r\n", ErrorKind::BadStartLine),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nFoo bar\r\n\r\n",
                ErrorKind::BadHeaderLine,
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nl: -1\r\n\r\n",
                ErrorKind::BadContentLength,
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nl: 1\r\n\r\nx",
                ErrorKind::DuplicateContentLength,
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nl: 5\r\n\r\nabc",
                ErrorKind::ContentLengthExceedsMessage,
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nTo: x\r\n",
                ErrorKind::Truncated,
            ),
            (b"", ErrorKind::Truncated),
        ];
        for (input, kind) in cases {
            let err = parse(input).unwrap_err();
            assert_eq!(err.kind, *kind, "{}", String::from_utf8_lossy(input));
            assert!(!err.in_response);
        }
    }

    /// The status line test is `eq_ignore_ascii_case` with "SIP/": every byte in each place.
    #[test]
    fn response_prefix() {
        for at in 0..4 {
            for b in 0..=255u8 {
                let mut p = *b"SIP/2";
                p[at] = b;
                let expected = p[..4].eq_ignore_ascii_case(b"SIP/");
                assert_eq!(looks_like_response(&p), expected, "{p:?}");
                assert_eq!(looks_like_response(&p[..4]), expected, "{p:?}");
                assert!(!looks_like_response(&p[..3]));
            }
        }
    }

    #[test]
    fn malformed_response_is_dropped() {
        let err = parse(b"SIP/2.0 4294967301 big\r\n\r\n").unwrap_err();
        assert!(err.in_response);
        assert_eq!(err.disposition(), super::super::error::Disposition::Drop);
    }

    #[test]
    fn responses() {
        let Message::Response(r) = parse(b"SIP/2.0 100 \r\nl: 0\r\n\r\n").unwrap() else {
            panic!()
        };
        assert_eq!((r.code, r.reason), (100, &b""[..]));
    }

    #[test]
    fn folding_and_trailing_octets() {
        let buf = b"OPTIONS sip:a@b SIP/2.0\r\nSubject: one\r\n two\r\nl: 2\r\n\r\nabcdef";
        let Message::Request(r) = parse(buf).unwrap() else {
            panic!()
        };
        assert_eq!(r.headers.lines[0].value, b"one\r\n two");
        assert_eq!(r.body, b"ab");
    }

    #[test]
    fn too_many_headers_and_long_lines() {
        let mut storage = [Header::EMPTY; 2];
        let err = parse_datagram(
            b"OPTIONS sip:a@b SIP/2.0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
            &mut storage,
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooManyHeaders);
        let limits = Limits {
            max_line: 20,
            ..Limits::default()
        };
        let mut storage = [Header::EMPTY; 4];
        let err = parse_datagram(
            b"OPTIONS sip:a@b SIP/2.0\r\nSubject: a long subject line\r\n\r\n",
            &mut storage,
            &limits,
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::LineTooLong);
    }

    #[test]
    fn stream_framing() {
        let limits = Limits::default();
        let mut storage = [Header::EMPTY; 32];
        let mut two = b"\r\n\r\n".to_vec();
        two.extend_from_slice(REGISTER);
        two.extend_from_slice(REGISTER);
        match parse_stream(&two, &mut storage, &limits).unwrap() {
            Status::Complete(_, n) => assert_eq!(n, 4 + REGISTER.len()),
            Status::Partial => panic!("complete message reported partial"),
        }
        for cut in 0..REGISTER.len() {
            let mut storage = [Header::EMPTY; 32];
            assert!(matches!(
                parse_stream(&REGISTER[..cut], &mut storage, &limits),
                Ok(Status::Partial)
            ));
        }
        let mut storage = [Header::EMPTY; 32];
        let err = parse_stream(
            b"OPTIONS sip:a@b SIP/2.0\r\nTo: x\r\n\r\n",
            &mut storage,
            &limits,
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::MissingContentLength);
        // Bare line feeds frame on a stream as they do in a datagram.
        let mut storage = [Header::EMPTY; 32];
        let bare = b"OPTIONS sip:a@b SIP/2.0\nl: 2\n\nabOPTIONS";
        assert!(matches!(
            parse_stream(bare, &mut storage, &limits),
            Ok(Status::Complete(_, 32))
        ));
        let mut storage = [Header::EMPTY; 32];
        let body = b"OPTIONS sip:a@b SIP/2.0\r\nl: 4\r\n\r\nab";
        assert!(matches!(
            parse_stream(body, &mut storage, &limits),
            Ok(Status::Partial)
        ));
    }

    #[test]
    fn plain_lines_agree_with_the_general_parser() {
        let names: &[&[u8]] = &[
            b"Via",
            b"v",
            b"Max-Forwards",
            b"X-Unknown",
            b"Call\rID",
            b"A B",
        ];
        let colons: &[&[u8]] = &[b":", b" :", b"\t:"];
        let values: &[&[u8]] = &[
            b" value",
            b"  value",
            b" value ",
            b"\tvalue",
            b"value",
            b" ",
            b"",
            b" a\r\n b",
            b" a:b;c=\"d\"",
            b" a\tb",
            b" a\x7fb",
            b" a\rb",
            b" a\x01b",
            b" caf\xc3\xa9",
            b" 0123456789abcdef0123456789\x00x",
            b" 0123456789abcdef0123456789abcdef",
        ];
        let ends: &[&[u8]] = &[
            b"\r\n",
            b"\n",
            b"\r\n continued\r\n",
            b"\r\n\tmore\r\n",
            b"",
        ];
        let mut plain = 0;
        for name in names {
            for colon in colons {
                for value in values {
                    for end in ends {
                        let line = [*name, *colon, *value, *end, b"Next: 1\r\n"].concat();
                        for max_line in [8, 8192] {
                            let general = general_line(&line, max_line);
                            if let Some((name, colon, value_end, len)) = plain_line(&line, max_line)
                            {
                                plain += 1;
                                let header = Header {
                                    name,
                                    raw_name: &line[..colon],
                                    value: &line[colon + 2..value_end],
                                };
                                // A plain line is a clean one.
                                assert_eq!(general, Ok((header, true, len)), "{line:?}");
                            }
                        }
                    }
                }
            }
        }
        assert!(plain > 0);
    }

    #[test]
    fn request_line_fast_path_agrees() {
        fn parts(r: Result<StartLine<'_>, ErrorKind>) -> Result<(Method, &[u8], &[u8]), ErrorKind> {
            match r? {
                StartLine::Request {
                    method,
                    raw_method,
                    uri,
                } => Ok((method, raw_method, uri)),
                StartLine::Response { .. } => panic!("a request line parsed as a status line"),
            }
        }
        let lines: &[&[u8]] = &[
            b"REGISTER sip:example.com SIP/2.0",
            b"INVITE sip:a@b;transport=udp SIP/2.0",
            b"NEWMETHOD sip:a@b SIP/2.0",
            b"NEW\x01METHOD sip:a@b SIP/2.0",
            b"OPTIONS  sip:a@b SIP/2.0",
            b"OPTIONS sip:a@b  SIP/2.0",
            b"OPTIONS sip:a b SIP/2.0",
            b"OPTIONS sip:a\x7fb SIP/2.0",
            b"OPTIONS sip:a\x80b SIP/2.0",
            b"OPTIONS sip:a@example.com;long-parameter=\x09 SIP/2.0",
            b"OPTIONS sip:a@b sip/2.0",
            b"OPTIONS sip:a@b SIP/02.00",
            b"OPTIONS sip:a@b SIP/7.0",
            b"OPTIONS  SIP/2.0",
            b" SIP/2.0",
            b"SIP/2.0",
            b"OPTIONS SIP/2.0",
        ];
        for line in lines {
            assert_eq!(
                parts(parse_request_line(line)),
                parts(general_request_line(line)),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn word_scanners() {
        for len in 0..40 {
            for at in 0..len {
                let mut buf = vec![b'a'; len];
                buf[at] = b' ';
                assert_eq!(find_byte(&buf, b' '), Some(at));
                assert!(has_ctl_or_space(&buf));
                for bad in [0u8, b'\r', 0x7f] {
                    buf[at] = bad;
                    assert!(has_ctl_or_space(&buf), "{buf:?}");
                }
                buf[at] = 0xff;
                assert!(!has_ctl_or_space(&buf));
                assert_eq!(find_byte(&buf, b' '), None);
            }
        }
    }

    /// The scans behind plain lines find what a byte-by-byte search finds, in the two-word steps
    /// and in the tail, with a second match after the first (where the word tests may flag
    /// spuriously).
    #[test]
    fn ctl_and_colon_scanners() {
        let specials = [0u8, b'\t', b'\r', b'\n', 0x1f, 0x7f, b':'];
        let filler = [b'a', b' ', 0x80, 0xff, b'~', b'!', 0x9f, 0x20];
        for len in 0..40 {
            for first in 0..len {
                for second in first..len {
                    for (&a, &b) in specials.iter().zip(specials.iter().rev()) {
                        let mut buf: Vec<u8> = (0..len).map(|i| filler[i % filler.len()]).collect();
                        buf[second] = b;
                        buf[first] = a;
                        let naive = |from: usize| {
                            let at = buf.get(from..)?.iter().position(|&c| is_ctl(c))?;
                            Some(from + at)
                        };
                        for from in 0..=len + 1 {
                            assert_eq!(find_ctl(&buf, from), naive(from), "{buf:?} {from}");
                        }
                        assert_eq!(has_ctl(&buf), naive(0).is_some(), "{buf:?}");
                        let colon = buf.iter().position(|&c| c == b':');
                        let expected = if len >= 8 { colon } else { None };
                        assert_eq!(first_colon(&buf), expected, "{buf:?}");
                    }
                }
            }
        }
        for b in 0..=255u8 {
            assert_eq!(is_ctl(b), b < 0x20 || b == 0x7f);
            assert_eq!(ctl_bits(u64::from(b)) & 0x80 != 0, is_ctl(b), "{b}");
        }
    }

    /// Header lines from pieces, clean and not, then one byte replaced, inserted or removed.
    fn message_from(
        lines: &[(usize, usize, Vec<usize>, usize)],
        edit: Option<(usize, u8, u8)>,
    ) -> Vec<u8> {
        const NAMES: &[&[u8]] = &[
            b"Via",
            b"v",
            b"From",
            b"t",
            b"Call-ID",
            b"CSeq",
            b"X-Other",
            b"Content-Length-X",
            b"Proxy-Authorization",
        ];
        // Mostly the plain forms, so that both paths are taken often.
        const COLONS: &[&[u8]] = &[b": ", b": ", b": ", b": ", b":", b" : ", b":\t", b":  "];
        // Clean pieces first, twice as likely as the others.
        const PIECES: &[&[u8]] = &[
            b"a",
            b"<sip:x@y>",
            b";tag=1",
            b",",
            b"\"q\"",
            b":",
            b"0123456789abcdef",
            b"SIP/2.0/UDP h",
            b"\xc3\xa9",
            b" ",
            b"\t",
            b"\r\n ",
            b"\r\n\t",
            b"\x00",
            b"\x01",
            b"\x7f",
            b"\r",
            b"\n",
        ];
        let piece = |p: usize| PIECES[if p < 18 { p % 9 } else { p % PIECES.len() }];
        const ENDS: &[&[u8]] = &[
            b"\r\n",
            b"\r\n",
            b"\r\n",
            b"\r\n",
            b"\n",
            b"\r\n \r\n",
            b" \r\n",
        ];
        let mut msg = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        for (name, colon, value, end) in lines {
            msg.extend_from_slice(NAMES[name % NAMES.len()]);
            msg.extend_from_slice(COLONS[colon % COLONS.len()]);
            for &p in value {
                msg.extend_from_slice(piece(p));
            }
            msg.extend_from_slice(ENDS[end % ENDS.len()]);
        }
        msg.extend_from_slice(b"\r\n");
        crate::sip::testing::edit(&mut msg, edit);
        msg
    }

    /// What a framing gives, with every slice as its offset and length in `buf`: equal for two
    /// framings of `buf` exactly when they give the same parts at the same places.
    fn framed(buf: &[u8], head: Result<Head<'_>, Error>, storage: &[Header<'_>]) -> String {
        let at = |s: &[u8]| (s.as_ptr() as usize - buf.as_ptr() as usize, s.len());
        let head = match head {
            Ok(head) => head,
            Err(e) => return format!("{e:?}"),
        };
        let start = match head.start {
            StartLine::Request {
                method,
                raw_method,
                uri,
            } => format!("{method:?} {:?} {:?}", at(raw_method), at(uri)),
            StartLine::Response { code, reason } => format!("{code} {:?}", at(reason)),
        };
        let lines: Vec<_> = storage[..head.count]
            .iter()
            .map(|h| (h.name, at(h.raw_name), at(h.value)))
            .collect();
        format!(
            "{start} {lines:?} {:x} {:x} {:x} {} {:?}",
            head.present, head.dirty, head.repeated, head.body_offset, head.content_length
        )
    }

    /// The framer and the one it replaced agree on `buf`.
    fn agrees_with_reference(buf: &[u8], headers: usize, max_line: usize) -> Result<(), String> {
        let limits = Limits {
            max_line,
            ..Limits::default()
        };
        let mut storage = vec![Header::EMPTY; headers];
        let new = framed(buf, parse_head(buf, &mut storage, &limits), &storage);
        let mut storage = vec![Header::EMPTY; headers];
        let old = framed(
            buf,
            reference::parse_head(buf, &mut storage, &limits),
            &storage,
        );
        if new == old {
            Ok(())
        } else {
            Err(format!(
                "{:?}\n new {new}\n old {old}",
                String::from_utf8_lossy(buf)
            ))
        }
    }

    /// The bench REGISTER, clean, every header line's forms.
    const DESK_PHONE: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.14:5060;branch=z9hG4bK-524287-1---0b41c7a6e2f1d8c3;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:u012345@192.0.2.14:5060;transport=udp>;expires=3600;reg-id=1\r\n\
To: <sip:u012345@example.com>\r\n\
From: <sip:u012345@example.com>;tag=4b1c9a2e\r\n\
Call-ID: 7f1e3c2a9b8d4e6f0a1b2c3d4e5f6a7b@192.0.2.14\r\n\
CSeq: 2 REGISTER\r\n\
Expires: 3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Supported: replaces, path, outbound\r\n\
User-Agent: Polycom/6.4.3 VVX410\r\n\
Proxy-Authorization: Digest username=\"u012345\"\r\n\
WWW-Authenticate: x\r\n\
X-Unknown-Header-Name: y\r\n\
i: 1\r\nm: <sip:a@b>\r\nl: 0\r\n\r\n";

    #[test]
    fn framer_agrees_with_reference_on_cuts() {
        for msg in [REGISTER, DESK_PHONE] {
            for cut in 0..=msg.len() {
                for max_line in [12, 40, 8192] {
                    agrees_with_reference(&msg[..cut], 32, max_line).unwrap();
                }
            }
            for headers in 0..20 {
                agrees_with_reference(msg, headers, 8192).unwrap();
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// Wherever a line starts, a line the plain path takes is one the general parser gives
        /// the same header and length for, and calls clean; and the names a framed message
        /// records as having a value with a control byte are those a scan of the stored values
        /// finds (what the writer relies on to copy the others as they are).
        #[test]
        fn plain_path_and_clean_record_agree_on_random_lines(
            lines in proptest::collection::vec(
                (0..9usize, 0..8usize, proptest::collection::vec(0..36usize, 0..6), 0..7usize),
                0..8,
            ),
            edit in proptest::option::of((0..4096usize, proptest::prelude::any::<u8>(), 0..3u8)),
            max_line in proptest::sample::select(&[12usize, 8192][..]),
        ) {
            let msg = message_from(&lines, edit);
            for start in 0..msg.len() {
                if start > 0 && msg[start - 1] != b'\n' {
                    continue;
                }
                let rest = &msg[start..];
                if let Some((name, colon, value_end, len)) = plain_line(rest, max_line) {
                    let header = Header {
                        name,
                        raw_name: &rest[..colon],
                        value: &rest[colon + 2..value_end],
                    };
                    proptest::prop_assert_eq!(general_line(rest, max_line), Ok((header, true, len)));
                }
            }
            let limits = Limits { max_line, ..Limits::default() };
            let mut storage = [Header::EMPTY; 16];
            if let Ok(m) = parse_datagram(&msg, &mut storage, &limits) {
                let h = m.headers();
                let scanned = Headers::new(h.lines);
                proptest::prop_assert_eq!(
                    (h.present, h.dirty, h.repeated),
                    (scanned.present, scanned.dirty, scanned.repeated)
                );
            }
        }

        /// The framer gives what the one it replaced gives: on messages of clean and unclean
        /// lines, on the desk phone's REGISTER, each with a random edit, and on byte soup after
        /// a start line.
        #[test]
        fn framer_agrees_with_reference(
            lines in proptest::collection::vec(
                (0..9usize, 0..8usize, proptest::collection::vec(0..36usize, 0..6), 0..7usize),
                0..8,
            ),
            edit in proptest::option::of((0..4096usize, proptest::prelude::any::<u8>(), 0..3u8)),
            soup in proptest::collection::vec(
                proptest::sample::select(&b": \t\r\n\r\naZ-;\x00\x7f\x80\xff"[..]),
                0..64,
            ),
            start in 0..4usize,
            headers in proptest::sample::select(&[3usize, 32][..]),
            max_line in proptest::sample::select(&[12usize, 40, 8192][..]),
        ) {
            let msg = message_from(&lines, edit);
            proptest::prop_assert_eq!(agrees_with_reference(&msg, headers, max_line), Ok(()));
            let mut phone = DESK_PHONE.to_vec();
            crate::sip::testing::edit(&mut phone, edit);
            proptest::prop_assert_eq!(agrees_with_reference(&phone, headers, max_line), Ok(()));
            let starts: [&[u8]; 4] =
                [b"", b"OPTIONS sip:a@b SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n", b"\r\nINFO x SIP/2.0\n"];
            let soup = [starts[start], &soup[..]].concat();
            proptest::prop_assert_eq!(agrees_with_reference(&soup, headers, max_line), Ok(()));
        }
    }
}
