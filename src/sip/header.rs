//! Header names: the ones sipreg understands, recognised case-insensitively and in compact form.
//!
//! Classification happens once per header line while framing, so later lookups compare a one-byte
//! enum. Names the enum does not know stay `Other` and keep their raw bytes in [`Header`].

/// A header name sipreg knows, or `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Accept,
    Allow,
    Authorization,
    CallId,
    Contact,
    ContentEncoding,
    ContentLength,
    ContentType,
    CSeq,
    Date,
    Event,
    Expires,
    From,
    MaxForwards,
    MinExpires,
    Path,
    ProxyAuthenticate,
    ProxyAuthorization,
    ProxyRequire,
    RecordRoute,
    Require,
    RetryAfter,
    Route,
    Server,
    Subject,
    Supported,
    To,
    Unsupported,
    UserAgent,
    Via,
    WwwAuthenticate,
    Other,
}

impl HeaderName {
    /// Recognises a header name in any letter case, including RFC 3261 section 7.3.3 compact
    /// forms and the compact forms registered since (`o` Event, `u` Allow-Events is `Other`).
    /// `name` is a token, as the framer guarantees; other bytes may be misclassified.
    pub fn classify(name: &[u8]) -> HeaderName {
        use HeaderName::*;
        if let [c] = name {
            return match c.to_ascii_lowercase() {
                b'i' => CallId,
                b'm' => Contact,
                b'e' => ContentEncoding,
                b'l' => ContentLength,
                b'c' => ContentType,
                b'f' => From,
                b's' => Subject,
                b'k' => Supported,
                b't' => To,
                b'v' => Via,
                b'o' => Event,
                _ => Other,
            };
        }
        let Some(key) = fold(name) else {
            return Other;
        };
        // Dispatch on length first; then compare three folded words per candidate.
        let candidates: &[([u64; 3], HeaderName)] = match name.len() {
            2 => &[(TO, To)],
            3 => &[(VIA, Via)],
            4 => &[(FROM, From), (CSEQ, CSeq), (DATE, Date), (PATH, Path)],
            5 => &[(ALLOW, Allow), (ROUTE, Route), (EVENT, Event)],
            6 => &[(ACCEPT, Accept), (SERVER, Server)],
            7 => &[
                (CALL_ID, CallId),
                (CONTACT, Contact),
                (EXPIRES, Expires),
                (REQUIRE, Require),
                (SUBJECT, Subject),
            ],
            9 => &[(SUPPORTED, Supported)],
            10 => &[(USER_AGENT, UserAgent)],
            11 => &[
                (MIN_EXPIRES, MinExpires),
                (RETRY_AFTER, RetryAfter),
                (UNSUPPORTED, Unsupported),
            ],
            12 => &[
                (MAX_FORWARDS, MaxForwards),
                (CONTENT_TYPE, ContentType),
                (RECORD_ROUTE, RecordRoute),
            ],
            13 => &[
                (AUTHORIZATION, Authorization),
                (PROXY_REQUIRE, ProxyRequire),
            ],
            14 => &[(CONTENT_LENGTH, ContentLength)],
            16 => &[
                (CONTENT_ENCODING, ContentEncoding),
                (WWW_AUTHENTICATE, WwwAuthenticate),
            ],
            18 => &[(PROXY_AUTHENTICATE, ProxyAuthenticate)],
            19 => &[(PROXY_AUTHORIZATION, ProxyAuthorization)],
            _ => &[],
        };
        for (k, header) in candidates {
            if *k == key {
                return *header;
            }
        }
        Other
    }

    /// The full canonical name, as the writer emits it.
    pub fn as_str(self) -> &'static str {
        use HeaderName::*;
        match self {
            Accept => "Accept",
            Allow => "Allow",
            Authorization => "Authorization",
            CallId => "Call-ID",
            Contact => "Contact",
            ContentEncoding => "Content-Encoding",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            CSeq => "CSeq",
            Date => "Date",
            Event => "Event",
            Expires => "Expires",
            From => "From",
            MaxForwards => "Max-Forwards",
            MinExpires => "Min-Expires",
            Path => "Path",
            ProxyAuthenticate => "Proxy-Authenticate",
            ProxyAuthorization => "Proxy-Authorization",
            ProxyRequire => "Proxy-Require",
            RecordRoute => "Record-Route",
            Require => "Require",
            RetryAfter => "Retry-After",
            Route => "Route",
            Server => "Server",
            Subject => "Subject",
            Supported => "Supported",
            To => "To",
            Unsupported => "Unsupported",
            UserAgent => "User-Agent",
            Via => "Via",
            WwwAuthenticate => "WWW-Authenticate",
            Other => "",
        }
    }
}

/// Folds a header name of up to 24 bytes into three little-endian words with every byte OR-ed
/// with 0x20, padding included. Among token characters only the letters A-Z and `_` lack that
/// bit: letters become lowercase and `_` becomes DEL, which no known name contains. So two tokens
/// fold alike exactly when they are equal ignoring case.
#[inline]
fn fold(name: &[u8]) -> Option<[u64; 3]> {
    let mut buf = [0u8; 24];
    buf.get_mut(..name.len())?.copy_from_slice(name);
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(buf.get(i * 8..i * 8 + 8).unwrap_or(&[0; 8]));
        u64::from_le_bytes(w) | 0x2020_2020_2020_2020
    };
    Some([word(0), word(1), word(2)])
}

/// The same folding at compile time, for the known names.
const fn key(name: &str) -> [u64; 3] {
    let bytes = name.as_bytes();
    let mut words = [0x2020_2020_2020_2020u64; 3];
    let mut i = 0;
    while i < bytes.len() {
        words[i / 8] |= (bytes[i] as u64) << ((i % 8) * 8);
        i += 1;
    }
    words
}

const TO: [u64; 3] = key("to");
const VIA: [u64; 3] = key("via");
const FROM: [u64; 3] = key("from");
const CSEQ: [u64; 3] = key("cseq");
const DATE: [u64; 3] = key("date");
const PATH: [u64; 3] = key("path");
const ALLOW: [u64; 3] = key("allow");
const ROUTE: [u64; 3] = key("route");
const EVENT: [u64; 3] = key("event");
const ACCEPT: [u64; 3] = key("accept");
const SERVER: [u64; 3] = key("server");
const CALL_ID: [u64; 3] = key("call-id");
const CONTACT: [u64; 3] = key("contact");
const EXPIRES: [u64; 3] = key("expires");
const REQUIRE: [u64; 3] = key("require");
const SUBJECT: [u64; 3] = key("subject");
const SUPPORTED: [u64; 3] = key("supported");
const USER_AGENT: [u64; 3] = key("user-agent");
const MIN_EXPIRES: [u64; 3] = key("min-expires");
const RETRY_AFTER: [u64; 3] = key("retry-after");
const UNSUPPORTED: [u64; 3] = key("unsupported");
const MAX_FORWARDS: [u64; 3] = key("max-forwards");
const CONTENT_TYPE: [u64; 3] = key("content-type");
const RECORD_ROUTE: [u64; 3] = key("record-route");
const AUTHORIZATION: [u64; 3] = key("authorization");
const PROXY_REQUIRE: [u64; 3] = key("proxy-require");
const CONTENT_LENGTH: [u64; 3] = key("content-length");
const CONTENT_ENCODING: [u64; 3] = key("content-encoding");
const WWW_AUTHENTICATE: [u64; 3] = key("www-authenticate");
const PROXY_AUTHENTICATE: [u64; 3] = key("proxy-authenticate");
const PROXY_AUTHORIZATION: [u64; 3] = key("proxy-authorization");

/// One header line as borrowed slices of the received bytes.
///
/// `value` is trimmed of surrounding white space and may contain folded line breaks (CRLF followed
/// by SP or HT); the typed parsers treat those as LWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: HeaderName,
    pub raw_name: &'a [u8],
    pub value: &'a [u8],
}

impl Header<'_> {
    /// An empty slot for caller-provided header storage.
    pub const EMPTY: Header<'static> = Header {
        name: HeaderName::Other,
        raw_name: b"",
        value: b"",
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_round_trips() {
        use HeaderName::*;
        let all = [
            Accept,
            Allow,
            Authorization,
            CallId,
            Contact,
            ContentEncoding,
            ContentLength,
            ContentType,
            CSeq,
            Date,
            Event,
            Expires,
            From,
            MaxForwards,
            MinExpires,
            Path,
            ProxyAuthenticate,
            ProxyAuthorization,
            ProxyRequire,
            RecordRoute,
            Require,
            RetryAfter,
            Route,
            Server,
            Subject,
            Supported,
            To,
            Unsupported,
            UserAgent,
            Via,
            WwwAuthenticate,
        ];
        for h in all {
            assert_eq!(HeaderName::classify(h.as_str().as_bytes()), h, "{h:?}");
            let upper = h.as_str().to_ascii_uppercase();
            assert_eq!(HeaderName::classify(upper.as_bytes()), h, "{h:?}");
        }
    }

    #[test]
    fn compact_forms() {
        for (c, h) in [
            ("i", HeaderName::CallId),
            ("M", HeaderName::Contact),
            ("f", HeaderName::From),
            ("T", HeaderName::To),
            ("v", HeaderName::Via),
            ("l", HeaderName::ContentLength),
            ("c", HeaderName::ContentType),
            ("k", HeaderName::Supported),
            ("s", HeaderName::Subject),
            ("e", HeaderName::ContentEncoding),
            ("o", HeaderName::Event),
            ("u", HeaderName::Other),
        ] {
            assert_eq!(HeaderName::classify(c.as_bytes()), h);
        }
        assert_eq!(HeaderName::classify(b"C%6Fntact"), HeaderName::Other);
        assert_eq!(
            HeaderName::classify(b"MaX-fOrWaRdS"),
            HeaderName::MaxForwards
        );
    }
}
