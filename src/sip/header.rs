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
        // Dispatch on length first: one comparison selects at most a few candidates.
        let candidates: &[(&[u8], HeaderName)] = match name.len() {
            2 => &[(b"to", To)],
            3 => &[(b"via", Via)],
            4 => &[
                (b"from", From),
                (b"cseq", CSeq),
                (b"date", Date),
                (b"path", Path),
            ],
            5 => &[(b"allow", Allow), (b"route", Route), (b"event", Event)],
            6 => &[(b"accept", Accept), (b"server", Server)],
            7 => &[
                (b"call-id", CallId),
                (b"contact", Contact),
                (b"expires", Expires),
                (b"require", Require),
                (b"subject", Subject),
            ],
            9 => &[(b"supported", Supported)],
            10 => &[(b"user-agent", UserAgent)],
            11 => &[
                (b"min-expires", MinExpires),
                (b"retry-after", RetryAfter),
                (b"unsupported", Unsupported),
            ],
            12 => &[
                (b"max-forwards", MaxForwards),
                (b"content-type", ContentType),
                (b"record-route", RecordRoute),
            ],
            13 => &[
                (b"authorization", Authorization),
                (b"proxy-require", ProxyRequire),
            ],
            14 => &[(b"content-length", ContentLength)],
            16 => &[
                (b"content-encoding", ContentEncoding),
                (b"www-authenticate", WwwAuthenticate),
            ],
            18 => &[(b"proxy-authenticate", ProxyAuthenticate)],
            19 => &[(b"proxy-authorization", ProxyAuthorization)],
            _ => &[],
        };
        for (text, header) in candidates {
            if name.eq_ignore_ascii_case(text) {
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
