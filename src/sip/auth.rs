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

impl<'a> DigestResponse<'a> {
    /// Records one `dig-resp` parameter; `None` when its value is malformed. The name is matched
    /// on its length first, so each parameter costs at most two case-insensitive compares.
    fn set(&mut self, name: &[u8], value: &'a [u8], quoted: bool) -> Option<()> {
        let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
        let q = Some(Quoted(value));
        match name.len() {
            2 if is(b"nc") => {
                // nc-value = 8LHEX
                if quoted || value.len() != 8 {
                    return None;
                }
                let mut n = 0u32;
                for &b in value {
                    n = n << 4 | u32::from(chars::hex_value(b)?);
                }
                self.nc = Some(n);
            }
            3 if is(b"uri") => self.uri = q,
            3 if is(b"qop") => self.qop = Some(value),
            5 if is(b"realm") => self.realm = q,
            5 if is(b"nonce") => self.nonce = q,
            6 if is(b"cnonce") => self.cnonce = q,
            6 if is(b"opaque") => self.opaque = q,
            8 if is(b"username") => self.username = q,
            8 if is(b"response") => {
                if !value.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                self.response = Some(value);
            }
            8 if is(b"userhash") => self.userhash = value.eq_ignore_ascii_case(b"true"),
            9 if is(b"algorithm") => self.algorithm = Some(value),
            // Other auth-params are extensions and ignored.
            _ => {}
        }
        Some(())
    }
}

/// Length of the token at the start of `s`.
fn token_len(s: &[u8]) -> usize {
    s.iter().take_while(|&&b| chars::is(b, TOKEN)).count()
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
        let (scheme, rest) = s.split_at_checked(token_len(s))?;
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
        // One pass over `dig-resp *(COMMA dig-resp)`: each parameter's name, `=`, its value
        // (a quoted-string or a token), then a comma or the end. No element is scanned twice.
        let mut d = DigestResponse::default();
        let mut s = rest;
        loop {
            s = chars::trim_start(s);
            let n = token_len(s);
            let (name, after) = s.split_at_checked(n)?;
            if name.is_empty() {
                return None;
            }
            let after = chars::trim_start(after).strip_prefix(b"=")?;
            let after = chars::trim_start(after);
            let (value, quoted, after) = if after.first() == Some(&b'"') {
                let (inner, after) = chars::split_quoted(after)?;
                (inner, true, after)
            } else {
                let (value, after) = after.split_at_checked(token_len(after))?;
                if value.is_empty() {
                    return None;
                }
                (value, false, after)
            };
            d.set(name, value, quoted)?;
            match chars::trim_start(after) {
                [] => break,
                [b',', tail @ ..] => s = tail,
                _ => return None,
            }
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
        // Empty elements, a dangling comma, junk after a value, nothing at all.
        for bad in [
            &b"Digest realm=\"a\","[..],
            b"Digest realm=\"a\",,nonce=\"b\"",
            b"Digest ,realm=\"a\"",
            b"Digest realm=\"a\" x",
            b"Digest realm=a\"b\"",
            b"Digest realm=",
            b"Digest  ",
            b"Digest",
        ] {
            assert!(Credentials::parse(bad).is_none(), "{bad:?}");
        }
        // LWS around `=` and `,`, any letter case in names, unknown parameters ignored.
        let Some(Credentials::Digest(d)) =
            Credentials::parse(b"digest  REALM = \"a\" ,\r\n NC=0000000A , x-y=z,qop=auth")
        else {
            panic!()
        };
        assert_eq!(
            (d.realm, d.nc, d.qop),
            (Some(Quoted(b"a")), Some(10), Some(&b"auth"[..]))
        );
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
