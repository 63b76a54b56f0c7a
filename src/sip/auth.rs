//! Authorization and Proxy-Authorization values (RFC 3261 25.1 `credentials`, RFC 7616 3.4).
//!
//! Syntax only: which scheme, and the digest parameters as borrowed slices. Checking a response
//! against a password hash is the job of the digest module in the registrar core.

use super::chars::{self, TOKEN};

/// The content of a quoted-string, quotes stripped, quoted-pairs still escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted<'a>(pub &'a [u8]);

impl<'a> Quoted<'a> {
    /// The raw content when it holds no quoted-pair (the usual case), else `None`.
    pub fn plain(&self) -> Option<&'a [u8]> {
        (!self.0.contains(&b'\\')).then_some(self.0)
    }

    /// The content with quoted-pairs resolved, as chunks to feed a hash without copying.
    pub fn chunks(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.0;
        let mut first = true;
        core::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            // After a backslash the next byte is literal, even another backslash or quote.
            let skip = usize::from(!first && !rest.is_empty());
            first = false;
            let from = skip.min(rest.len());
            let end = rest
                .get(from..)?
                .iter()
                .position(|&b| b == b'\\')
                .map_or(rest.len(), |p| p + from);
            let (chunk, tail) = rest.split_at(end);
            rest = tail.get(1..).unwrap_or_default();
            Some(chunk)
        })
    }

    /// Compares the unescaped content with plain bytes.
    pub fn eq_bytes(&self, other: &[u8]) -> bool {
        let mut rest = other;
        for chunk in self.chunks() {
            match rest.strip_prefix(chunk) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

/// `dig-resp` parameters of a Digest credentials value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DigestResponse<'a> {
    pub username: Option<Quoted<'a>>,
    pub realm: Option<Quoted<'a>>,
    pub nonce: Option<Quoted<'a>>,
    pub uri: Option<Quoted<'a>>,
    pub response: Option<&'a [u8]>,
    /// `MD5`, `MD5-sess`, `SHA-256`, ... as written (token).
    pub algorithm: Option<&'a [u8]>,
    pub cnonce: Option<Quoted<'a>>,
    pub opaque: Option<Quoted<'a>>,
    /// `auth` or `auth-int` (a token in responses; quoted by some clients).
    pub qop: Option<&'a [u8]>,
    /// nonce-count, 8 hex digits.
    pub nc: Option<u32>,
    /// RFC 7616 userhash=true.
    pub userhash: bool,
}

/// A credentials value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials<'a> {
    Digest(DigestResponse<'a>),
    /// Another scheme (RFC 4475 regaut01): the server answers with a fresh Digest challenge.
    Other {
        scheme: &'a [u8],
    },
}

impl<'a> Credentials<'a> {
    pub fn parse(value: &'a [u8]) -> Option<Credentials<'a>> {
        let s = chars::trim(value);
        let n = s.iter().take_while(|&&b| chars::is(b, TOKEN)).count();
        let (scheme, rest) = s.split_at_checked(n)?;
        if scheme.is_empty() {
            return None;
        }
        if !scheme.eq_ignore_ascii_case(b"Digest") {
            return Some(Credentials::Other { scheme });
        }
        // Digest LWS dig-resp *(COMMA dig-resp)
        if !rest.first().is_some_and(|&b| chars::is_lws(b)) {
            return None;
        }
        let mut d = DigestResponse::default();
        for param in chars::CommaList::new(rest) {
            let eq = memchr::memchr(b'=', param)?;
            let name = chars::trim(param.get(..eq)?);
            let raw = chars::trim(param.get(eq + 1..)?);
            if !chars::is_token(name) {
                return None;
            }
            let (value, quoted) = if raw.first() == Some(&b'"') {
                let (inner, after) = chars::split_quoted(raw)?;
                if !after.is_empty() {
                    return None;
                }
                (inner, true)
            } else if chars::is_token(raw) {
                (raw, false)
            } else {
                return None;
            };
            let q = Some(Quoted(value));
            let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
            if is(b"username") {
                d.username = q;
            } else if is(b"realm") {
                d.realm = q;
            } else if is(b"nonce") {
                d.nonce = q;
            } else if is(b"uri") {
                d.uri = q;
            } else if is(b"cnonce") {
                d.cnonce = q;
            } else if is(b"opaque") {
                d.opaque = q;
            } else if is(b"response") {
                if !value.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                d.response = Some(value);
            } else if is(b"algorithm") {
                d.algorithm = Some(value);
            } else if is(b"qop") {
                d.qop = Some(value);
            } else if is(b"nc") {
                // nc-value = 8LHEX
                if quoted || value.len() != 8 {
                    return None;
                }
                let mut n = 0u32;
                for &b in value {
                    n = n << 4 | u32::from(chars::hex_value(b)?);
                }
                d.nc = Some(n);
            } else if is(b"userhash") {
                d.userhash = value.eq_ignore_ascii_case(b"true");
            }
            // Other auth-params are extensions and ignored.
        }
        Some(Credentials::Digest(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7616_example() {
        let v = br#"Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
       qop=auth,
       response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let Some(Credentials::Digest(d)) = Credentials::parse(v) else {
            panic!()
        };
        assert!(d.username.unwrap().eq_bytes(b"Mufasa"));
        assert_eq!(d.algorithm, Some(&b"SHA-256"[..]));
        assert_eq!(d.nc, Some(1));
        assert_eq!(d.qop, Some(&b"auth"[..]));
        assert_eq!(d.response.unwrap().len(), 64);
    }

    #[test]
    fn other_schemes_and_errors() {
        assert_eq!(
            Credentials::parse(b"NoOneKnowsThisScheme opaque-data=here"),
            Some(Credentials::Other {
                scheme: b"NoOneKnowsThisScheme"
            })
        );
        assert!(Credentials::parse(b"Digest username=\"a").is_none());
        assert!(Credentials::parse(b"Digest nc=1").is_none());
        assert!(Credentials::parse(b"Digest response=\"xyz\"").is_none());
        assert!(Credentials::parse(b"Digest username").is_none());
    }

    #[test]
    fn quoted_pairs() {
        let q = Quoted(br#"a\"b\\c"#);
        assert!(q.plain().is_none());
        assert!(q.eq_bytes(br#"a"b\c"#));
        assert!(!q.eq_bytes(br#"a"b\\c"#));
        assert!(Quoted(b"plain").eq_bytes(b"plain"));
        assert!(Quoted(b"").eq_bytes(b""));
    }
}
