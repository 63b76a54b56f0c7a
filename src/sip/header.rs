//! Header names: the ones sipreg understands, recognised case-insensitively and in compact form.
//!
//! Classification happens once per header line while framing, so later lookups compare a one-byte
//! enum. Names the enum does not know stay `Other` and keep their raw bytes in [`Header`]. A
//! perfect hash of a name's length and its first two bytes picks the one known name it can be,
//! which is then compared ignoring case a word at a time, read in place from the line.

use super::chars;

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

// `HeaderName::bit` gives each name one bit of a u64.
const _: () = assert!((HeaderName::Other as u32) < 64);

impl HeaderName {
    /// This name's bit in a set of names ([`super::Headers::has`]).
    #[inline]
    pub const fn bit(self) -> u64 {
        1 << self as u32
    }

    /// Recognises a header name in any letter case, including RFC 3261 section 7.3.3 compact
    /// forms and the compact forms registered since (`o` Event, `u` Allow-Events is `Other`).
    /// Anything that is not exactly a known name, ignoring ASCII case, is `Other`.
    pub fn classify(name: &[u8]) -> HeaderName {
        match name {
            [c] => COMPACT[usize::from(*c)],
            _ => known(name, name.len()).unwrap_or(HeaderName::Other),
        }
    }

    /// Classifies the header name that fills the first `len` bytes of `line` (the bytes after it,
    /// the rest of the line, are read but ignored), or `None` when those bytes are not a token.
    /// A known name is a token, so only other names are scanned byte by byte.
    #[inline(always)]
    pub(crate) fn classify_prefix(line: &[u8], len: usize) -> Option<HeaderName> {
        if len == 1 {
            let h = COMPACT[usize::from(*line.first()?)];
            if h != HeaderName::Other {
                return Some(h);
            }
        } else if let Some(h) = known(line, len) {
            return Some(h);
        }
        other_token(line.get(..len)?)
    }

    /// The known name shorter than eight bytes, compact forms included, that `w` (the first eight
    /// bytes of a line, little-endian) starts with, followed by a colon, and its length: with no
    /// search for the colon, which is where the name's is. `None` for any other start.
    #[inline(always)]
    pub(crate) fn short_known(w: u64) -> Option<(HeaderName, usize)> {
        let slot = &SHORT[short_slot(w as u32)];
        ((w | slot.fold) & slot.care == slot.lower).then_some((slot.name, usize::from(slot.len)))
    }

    /// The known name of eight to fifteen bytes that fills the first `len` bytes of the words
    /// `w0` and `w1` (the first sixteen bytes of a line, little-endian), byte `len` being a colon:
    /// the name's length and first two bytes pick the one such name it can be, which is then
    /// compared with its colon in two masked steps. `None` for any other name.
    #[inline(always)]
    pub(crate) fn known_long(w0: u64, w1: u64, len: usize) -> Option<HeaderName> {
        let slot = &LONG[long_slot(len, w0 as u32)];
        (w0 | slot.fold[0] == slot.lower[0] && (w1 | slot.fold[1]) & slot.care == slot.lower[1])
            .then_some(slot.name)
    }

    /// The full canonical name, as the writer emits it.
    pub const fn as_str(self) -> &'static str {
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

/// RFC 3261 7.3.3 compact forms and the ones registered since.
const COMPACT_FORMS: [(u8, HeaderName); 11] = {
    use HeaderName::*;
    [
        (b'i', CallId),
        (b'm', Contact),
        (b'e', ContentEncoding),
        (b'l', ContentLength),
        (b'c', ContentType),
        (b'f', From),
        (b's', Subject),
        (b'k', Supported),
        (b't', To),
        (b'v', Via),
        (b'o', Event),
    ]
};

/// RFC 3261 7.3.3 compact forms, indexed by byte (either case).
static COMPACT: [HeaderName; 256] = {
    use HeaderName::*;
    let mut t = [Other; 256];
    let forms = COMPACT_FORMS;
    let mut i = 0;
    while i < forms.len() {
        let (c, h) = forms[i];
        t[c as usize] = h;
        t[c.to_ascii_uppercase() as usize] = h;
        i += 1;
    }
    t
};

/// The known full names, each with its canonical spelling from [`HeaderName::as_str`].
const KNOWN: [HeaderName; 31] = {
    use HeaderName::*;
    [
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
    ]
};

/// One slot of the perfect hash of the known names: the name in lowercase as three little-endian
/// words (zero past its end), the bits that may differ by letter case (0x20 at each letter), and
/// the bytes that belong to the name. A candidate of the same length matches when
/// `(word | fold) & care == lower` for each word: letters in either case, every other byte exact.
#[derive(Clone, Copy)]
struct Slot {
    lower: [u64; 3],
    fold: [u64; 3],
    care: [u64; 3],
    len: usize,
    name: HeaderName,
}

/// A slot no name hashes to. Its length, 1, is no known name's (compact forms are looked up
/// apart), so that it matches nothing, the empty name included.
const EMPTY_SLOT: Slot = Slot {
    lower: [0; 3],
    fold: [0; 3],
    care: [0; 3],
    len: 1,
    name: HeaderName::Other,
};

/// The hash of a name of two bytes or more: its length and its first two bytes (`first_two`,
/// little-endian), case folded, multiplied into the top six bits. The multiplier was searched for
/// so that the 31 known names land in 31 different slots; `TABLE`'s construction fails to compile
/// otherwise.
#[inline(always)]
const fn slot_of(len: usize, first_two: u32) -> usize {
    const MULTIPLIER: u32 = 0x6bd3_3a6b;
    let key = (len as u32 & 0xff) | ((first_two & 0xffff | 0x2020) << 8);
    (key.wrapping_mul(MULTIPLIER) >> 26) as usize
}

static TABLE: [Slot; 64] = {
    let mut t = [EMPTY_SLOT; 64];
    let mut k = 0;
    while k < KNOWN.len() {
        let name = KNOWN[k].as_str().as_bytes();
        let len = name.len();
        assert!(len >= 2 && len <= 24);
        let mut slot = Slot {
            len,
            name: KNOWN[k],
            ..EMPTY_SLOT
        };
        let mut i = 0;
        while i < len {
            let shift = (i % 8) * 8;
            let b = name[i].to_ascii_lowercase();
            slot.lower[i / 8] |= (b as u64) << shift;
            slot.care[i / 8] |= 0xff << shift;
            if b.is_ascii_lowercase() {
                slot.fold[i / 8] |= 0x20 << shift;
            }
            i += 1;
        }
        let at = slot_of(len, name[0] as u32 | (name[1] as u32) << 8);
        assert!(t[at].len == 1, "two known header names share a hash slot");
        t[at] = slot;
        k += 1;
    }
    t
};

/// One slot of the perfect hash of the names shorter than eight bytes, compact forms included: the
/// name and the colon after it as a little-endian word (zero past the colon), the bits that may
/// differ by letter case, and the bytes that belong to the name and its colon. A line's first word
/// whose first colon ends a short name matches when `(word | fold) & care == lower`.
#[derive(Clone, Copy)]
struct Short {
    lower: u64,
    fold: u64,
    care: u64,
    name: HeaderName,
    len: u8,
}

/// The slot of a name shorter than eight bytes, from its first two bytes (`first_two`,
/// little-endian; a compact form's second byte is its colon), case folded (the case bit cleared),
/// multiplied into the top six bits. The multiplier was searched for so that the 27 short names
/// land in 27 different slots; `SHORT`'s construction fails to compile otherwise.
#[inline(always)]
const fn short_slot(first_two: u32) -> usize {
    const MULTIPLIER: u32 = 0x6bf4_6c69;
    (first_two & 0xdfdf).wrapping_mul(MULTIPLIER) as usize >> 26
}

static SHORT: [Short; 64] = {
    // A slot no name hashes to matches nothing: `lower` has a bit outside `care`.
    let mut t = [Short {
        lower: 1,
        fold: 0,
        care: 0,
        name: HeaderName::Other,
        len: 0,
    }; 64];
    let mut k = 0;
    while k < KNOWN.len() {
        let name = KNOWN[k].as_str().as_bytes();
        if name.len() < 8 {
            put_short(&mut t, name, KNOWN[k]);
        }
        k += 1;
    }
    let mut k = 0;
    while k < COMPACT_FORMS.len() {
        let (c, h) = COMPACT_FORMS[k];
        put_short(&mut t, &[c], h);
        k += 1;
    }
    t
};

/// Puts the short `name` (canonical spelling) in its slot of `t`.
const fn put_short(t: &mut [Short; 64], name: &[u8], h: HeaderName) {
    let len = name.len();
    let mut slot = Short {
        lower: (b':' as u64) << (len * 8),
        fold: 0,
        care: 0xff << (len * 8),
        name: h,
        len: len as u8,
    };
    let mut i = 0;
    while i < len {
        let b = name[i].to_ascii_lowercase();
        slot.lower |= (b as u64) << (i * 8);
        slot.care |= 0xff << (i * 8);
        if b.is_ascii_lowercase() {
            slot.fold |= 0x20 << (i * 8);
        }
        i += 1;
    }
    // The first two bytes of the name and its colon.
    let first_two = (slot.lower & 0xffff) as u32;
    let at = short_slot(first_two);
    assert!(t[at].care == 0, "two short header names share a hash slot");
    t[at] = slot;
}

/// A name of eight to fifteen bytes and the colon after it, as `Short` is for shorter ones: two
/// little-endian words, the first all name, the second `care`d up to the colon.
#[derive(Clone, Copy)]
struct Long {
    lower: [u64; 2],
    fold: [u64; 2],
    care: u64,
    name: HeaderName,
}

/// The slot of a name of eight to fifteen bytes, from its length and its first two bytes
/// (`first_two`, little-endian), case folded (the case bit cleared), multiplied into the top six
/// bits. The multiplier was searched for so that the 11 such names land in 11 different slots;
/// `LONG`'s construction fails to compile otherwise.
#[inline(always)]
const fn long_slot(len: usize, first_two: u32) -> usize {
    const MULTIPLIER: u32 = 0xc3ba_ea9f;
    ((first_two & 0xdfdf) | (len as u32) << 16).wrapping_mul(MULTIPLIER) as usize >> 26
}

/// The known names of eight to fifteen bytes, each in its `long_slot`.
static LONG: [Long; 64] = {
    // A slot no name hashes to matches nothing: its second word has a bit outside `care`.
    let mut t = [Long {
        lower: [0, 1],
        fold: [0; 2],
        care: 0,
        name: HeaderName::Other,
    }; 64];
    let mut k = 0;
    while k < KNOWN.len() {
        let name = KNOWN[k].as_str().as_bytes();
        let len = name.len();
        if len >= 8 && len < 16 {
            let mut slot = Long {
                lower: [0, (b':' as u64) << ((len - 8) * 8)],
                fold: [0; 2],
                care: 0xff << ((len - 8) * 8),
                name: KNOWN[k],
            };
            let mut i = 0;
            while i < len {
                let shift = (i % 8) * 8;
                let b = name[i].to_ascii_lowercase();
                slot.lower[i / 8] |= (b as u64) << shift;
                if i >= 8 {
                    slot.care |= 0xff << shift;
                }
                if b.is_ascii_lowercase() {
                    slot.fold[i / 8] |= 0x20 << shift;
                }
                i += 1;
            }
            let at = long_slot(len, name[0] as u32 | (name[1] as u32) << 8);
            assert!(t[at].care == 0, "two long header names share a hash slot");
            t[at] = slot;
        }
        k += 1;
    }
    t
};

/// The known name (two bytes or more) that fills the first `len` bytes of `line`, if any.
#[inline(always)]
fn known(line: &[u8], len: usize) -> Option<HeaderName> {
    let first = word(line, 0);
    let slot = &TABLE[slot_of(len, first as u32)];
    let matches = |i: usize, w: u64| (w | slot.fold[i]) & slot.care[i] == slot.lower[i];
    (slot.len == len
        && matches(0, first)
        && (len <= 8 || matches(1, word(line, 8)))
        && (len <= 16 || matches(2, word(line, 16))))
    .then_some(slot.name)
}

/// `Other` if `name` is a token, `None` if not.
#[cold]
#[inline(never)]
fn other_token(name: &[u8]) -> Option<HeaderName> {
    chars::is_token(name).then_some(HeaderName::Other)
}

/// The eight bytes of `line` from `at` as a little-endian word, zero-padded past its end.
#[inline(always)]
fn word(line: &[u8], at: usize) -> u64 {
    match line.get(at..).and_then(|r| r.first_chunk::<8>()) {
        Some(w) => u64::from_le_bytes(*w),
        None => padded_word(line.get(at..).unwrap_or_default()),
    }
}

/// The first bytes of `tail` (fewer than eight) as a little-endian word, zero-padded.
#[cold]
#[inline(never)]
fn padded_word(tail: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    for (d, s) in w.iter_mut().zip(tail) {
        *d = *s;
    }
    u64::from_le_bytes(w)
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

    #[test]
    fn only_exact_names_match() {
        use HeaderName::*;
        for h in KNOWN {
            let name = h.as_str().as_bytes();
            for i in 0..name.len() {
                // Flipping the case bit keeps a letter the same name and makes anything else
                // (`-` becomes CR) a different one; so does any other byte.
                let mut flipped = name.to_vec();
                flipped[i] ^= 0x20;
                let expected = if name[i].is_ascii_alphabetic() {
                    h
                } else {
                    Other
                };
                assert_eq!(HeaderName::classify(&flipped), expected, "{flipped:?}");
                let mut other = name.to_vec();
                other[i] = b'_';
                assert_eq!(HeaderName::classify(&other), Other, "{other:?}");
            }
            if name.len() > 2 {
                // ("T" is To's compact form.)
                assert_eq!(HeaderName::classify(&name[..name.len() - 1]), Other);
            }
            assert_eq!(HeaderName::classify(&[name, b"x"].concat()), Other);
        }
    }

    /// The first-word classifiers agree with `classify` on every known name and compact form, in
    /// either case, with any byte flipped or replaced, and one byte shorter or longer.
    #[test]
    fn first_word_classifiers_agree() {
        let check = |name: &[u8]| {
            let len = name.len();
            if len == 0 || len >= 16 || name.contains(&b':') {
                return;
            }
            let mut line = [0u8; 16];
            for (d, s) in line.iter_mut().zip(name.iter().chain(b": x")) {
                *d = *s;
            }
            let (w0, w1) = line.split_at(8);
            let w0 = u64::from_le_bytes(w0.try_into().unwrap());
            let w1 = u64::from_le_bytes(w1.try_into().unwrap());
            let found = if len < 8 {
                HeaderName::short_known(w0).map(|(h, l)| {
                    assert_eq!(l, len, "{name:?}");
                    h
                })
            } else {
                HeaderName::known_long(w0, w1, len)
            };
            let expected = HeaderName::classify(name);
            assert_eq!(found.unwrap_or(HeaderName::Other), expected, "{name:?}");
        };
        let forms = COMPACT_FORMS.map(|(c, _)| vec![c]);
        let names = KNOWN.iter().map(|h| h.as_str().as_bytes().to_vec());
        for name in names.chain(forms) {
            for i in 0..name.len() {
                for b in [name[i] ^ 0x20, b'_', b'-', b'\r', b'A', b'z', 0, 0xff] {
                    let mut edited = name.clone();
                    edited[i] = b;
                    check(&edited);
                }
            }
            check(&name);
            check(&name.to_ascii_uppercase());
            check(&name[..name.len() - 1]);
            check(&[&name[..], b"s"].concat());
        }
    }

    #[test]
    fn prefixes_of_lines() {
        use HeaderName::*;
        let cases: &[(&[u8], usize, Option<HeaderName>)] = &[
            (b"Via: SIP/2.0/UDP h", 3, Some(Via)),
            (b"v: SIP/2.0/UDP h", 1, Some(Via)),
            (b"CONTENT-LENGTH:0", 14, Some(ContentLength)),
            (b"X-Custom: 1", 8, Some(Other)),
            (b"u: x", 1, Some(Other)),
            (b"Call\rID: x", 7, None),
            (b"Foo bar: x", 7, None),
            (b"Via : x", 4, None),
            (b": x", 0, None),
            (b"Via", 4, None),
        ];
        for &(line, len, expected) in cases {
            assert_eq!(
                HeaderName::classify_prefix(line, len),
                expected,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
