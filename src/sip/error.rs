//! What can be wrong with a message, and what RFC 3261 and RFC 4475 say to do about it.
//!
//! The parser reports a small `Copy` error; [`Error::disposition`] is the single place that maps
//! each defect to a status code and a reason phrase naming the defect, or to a silent drop. It
//! does not build the response itself (see [`crate::sip::write`]).

use core::fmt;

/// Every defect the syntax layer detects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The buffer holds more octets than the configured message limit.
    MessageTooLarge,
    /// More header lines than the caller's header storage holds.
    TooManyHeaders,
    /// A start line or header line longer than the configured line limit.
    LineTooLong,
    /// The message ends before the blank line that closes the header section.
    Truncated,
    /// The start line is neither a Request-Line nor a Status-Line.
    BadStartLine,
    /// The SIP-Version is well formed but not 2.0.
    UnsupportedVersion,
    /// The status code of a response is not three digits.
    BadStatusCode,
    /// A header line without a colon, or with an invalid header name.
    BadHeaderLine,
    /// A header value containing a control character (NUL, bare CR or LF).
    BadHeaderValue,
    /// Content-Length is not a number (negative, empty, or too large).
    BadContentLength,
    /// Content-Length appears more than once.
    DuplicateContentLength,
    /// Content-Length announces more body than the datagram carries.
    ContentLengthExceedsMessage,
    /// A message on a stream transport without Content-Length.
    MissingContentLength,
    /// The Request-URI does not parse.
    BadRequestUri,
    /// The Request-URI scheme is not `sip` or `sips`.
    UnsupportedUriScheme,
    /// No Via, or a Via value that does not parse.
    BadVia,
    /// From is missing, repeated, or malformed.
    BadFrom,
    /// To is missing, repeated, or malformed.
    BadTo,
    /// Call-ID is missing, repeated, or malformed.
    BadCallId,
    /// CSeq is missing, repeated, malformed, or its number exceeds 2^31-1.
    BadCSeq,
    /// The CSeq method differs from the request method.
    CSeqMethodMismatch,
    /// Max-Forwards is repeated, malformed or above 255.
    BadMaxForwards,
    /// A Contact value that does not parse.
    BadContact,
    /// An Expires header that is not a delta-seconds value.
    BadExpires,
    /// An Authorization or Proxy-Authorization value that does not parse.
    BadAuthorization,
    /// A Require, Proxy-Require or Supported value that is not a token list.
    BadOptionTags,
    /// A Route, Record-Route or Path value that does not parse.
    BadRoute,
}

impl ErrorKind {
    /// The status code and reason phrase a UAS answers a request with this defect.
    pub fn status(self) -> (u16, &'static str) {
        use ErrorKind::*;
        match self {
            // RFC 3261 21.5.7: "513 Message Too Large: The server was unable to process the
            // request since the message length exceeded its capabilities."
            MessageTooLarge => (513, "Message Too Large"),
            TooManyHeaders => (400, "Too Many Headers"),
            LineTooLong => (400, "Header Line Too Long"),
            Truncated => (400, "Incomplete Message"),
            BadStartLine => (400, "Malformed Request-Line"),
            // RFC 3261 21.5.7: 505 Version Not Supported
            UnsupportedVersion => (505, "Version Not Supported"),
            BadStatusCode => (400, "Malformed Status-Line"),
            BadHeaderLine => (400, "Malformed Header Line"),
            BadHeaderValue => (400, "Control Character In Header"),
            BadContentLength => (400, "Bad Content-Length"),
            DuplicateContentLength => (400, "Multiple Content-Length"),
            ContentLengthExceedsMessage => (400, "Content-Length Exceeds Message"),
            MissingContentLength => (400, "Missing Content-Length"),
            BadRequestUri => (400, "Bad Request-URI"),
            // RFC 3261 8.2.2.1: "it SHOULD reject the request with a 416 (Unsupported URI Scheme)"
            UnsupportedUriScheme => (416, "Unsupported URI Scheme"),
            BadVia => (400, "Bad Via"),
            BadFrom => (400, "Bad From"),
            BadTo => (400, "Bad To"),
            BadCallId => (400, "Bad Call-ID"),
            BadCSeq => (400, "Bad CSeq"),
            CSeqMethodMismatch => (400, "CSeq Method Mismatch"),
            BadMaxForwards => (400, "Bad Max-Forwards"),
            BadContact => (400, "Bad Contact"),
            BadExpires => (400, "Bad Expires"),
            BadAuthorization => (400, "Bad Authorization"),
            BadOptionTags => (400, "Bad Option Tags"),
            BadRoute => (400, "Bad Route"),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.status().1)
    }
}

impl std::error::Error for ErrorKind {}

/// A defect, and whether it was found in a response (which is dropped, never answered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub in_response: bool,
}

/// What to do with a message that failed to parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Answer the request with this status and reason phrase.
    Reject(u16, &'static str),
    /// Discard silently. RFC 3261 18.1.2: a malformed response is dropped; there is no one to tell.
    Drop,
}

impl Error {
    pub(crate) fn request(kind: ErrorKind) -> Self {
        Error {
            kind,
            in_response: false,
        }
    }

    /// The reaction RFC 3261 asks for.
    pub fn disposition(self) -> Disposition {
        if self.in_response {
            Disposition::Drop
        } else {
            let (code, reason) = self.kind.status();
            Disposition::Reject(code, reason)
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::request(kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.in_response {
            write!(f, "malformed response: {}", self.kind)
        } else {
            write!(f, "{}", self.kind)
        }
    }
}

impl std::error::Error for Error {}
