//! printf-style patterns for user names and passwords: `u%06d` formats user 42 as `u000042`.
//! `sipreg user add --pattern` creates users by them and `sipreg-loadgen` registers as them, so
//! the two agree on every name.
//!
//! Supports one integer conversion `%d` with an optional zero flag and width (`%d`, `%6d`,
//! `%06d`), and `%%` for a percent sign. Nothing else: no other conversions, no precision.

use core::fmt;

/// A parsed pattern: literal text around at most one number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    prefix: String,
    number: Option<Number>,
    suffix: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Number {
    width: usize,
    zero: bool,
}

/// Why a pattern was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError(String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let mut prefix = String::new();
        let mut suffix = String::new();
        let mut number = None;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let out = if number.is_some() {
                &mut suffix
            } else {
                &mut prefix
            };
            if c != '%' {
                out.push(c);
                continue;
            }
            if chars.peek() == Some(&'%') {
                chars.next();
                out.push('%');
                continue;
            }
            let zero = chars.next_if_eq(&'0').is_some();
            let mut width = 0usize;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                chars.next();
                width = width * 10 + d as usize;
                if width > 32 {
                    return Err(PatternError(format!("{text:?}: width over 32")));
                }
            }
            if chars.next() != Some('d') {
                return Err(PatternError(format!(
                    "{text:?}: only %d, %Nd, %0Nd and %% are supported"
                )));
            }
            if number.is_some() {
                return Err(PatternError(format!("{text:?}: more than one %d")));
            }
            number = Some(Number { width, zero });
        }
        Ok(Pattern {
            prefix,
            number,
            suffix,
        })
    }

    /// Whether the pattern numbers its texts (has a `%d`), and does so without padding with
    /// spaces (`%d` or `%0Nd`, not `%Nd`): what names in a credentials file need.
    pub fn numbers_without_spaces(&self) -> bool {
        self.number.is_some_and(|n| n.zero || n.width == 0)
    }

    /// The text for index `i`.
    pub fn format(&self, i: u64) -> String {
        let mut s = String::with_capacity(self.prefix.len() + 20 + self.suffix.len());
        self.write(i, &mut s);
        s
    }

    /// Appends the text for index `i`.
    pub fn write(&self, i: u64, out: &mut String) {
        out.push_str(&self.prefix);
        if let Some(n) = self.number {
            let pad = if n.zero { b'0' } else { b' ' };
            push_decimal(i, n.width, pad, |d| out.push(char::from(d)));
        }
        out.push_str(&self.suffix);
    }
}

/// Hands `push` the decimal digits of `n`, left-padded with `pad` to `width`, as
/// `{n:width$}` (or `{n:0width$}`) writes them, without the formatting machinery: the load
/// generator names a user this way for every request it sends.
pub fn push_decimal(n: u64, width: usize, pad: u8, mut push: impl FnMut(u8)) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (rest % 10) as u8;
        }
        rest /= 10;
        if rest == 0 || at == 0 {
            break;
        }
    }
    (digits.len() - at..width).for_each(|_| push(pad));
    digits.iter().skip(at).for_each(|&d| push(d));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written number matches what `format!` writes, for every width and both pads.
    #[test]
    fn numbers_as_format_writes_them() {
        for width in [0usize, 1, 3, 6, 20, 32] {
            for i in [0u64, 7, 42, 999_999, 1_000_000, u64::MAX] {
                for zero in [false, true] {
                    let p = Pattern {
                        prefix: "a".into(),
                        number: Some(Number { width, zero }),
                        suffix: "z".into(),
                    };
                    let want = if zero {
                        format!("a{i:0width$}z")
                    } else {
                        format!("a{i:width$}z")
                    };
                    assert_eq!(p.format(i), want, "{width} {zero} {i}");
                }
            }
        }
    }

    #[test]
    fn formats() {
        let cases = [
            ("u%06d", 42, "u000042"),
            ("u%d", 42, "u42"),
            ("u%3d", 7, "u  7"),
            ("%d@x", 0, "0@x"),
            ("100%%-%02d", 5, "100%-05"),
            ("fixed", 9, "fixed"),
        ];
        for (p, i, want) in cases {
            assert_eq!(Pattern::parse(p).unwrap().format(i), want, "{p}");
        }
        assert!(Pattern::parse("u%s").is_err());
        assert!(Pattern::parse("u%d%d").is_err());
        assert!(Pattern::parse("u%").is_err());
        let numbered = |p: &str| Pattern::parse(p).unwrap().numbers_without_spaces();
        assert!(numbered("u%d") && numbered("u%06d") && numbered("%d%%"));
        assert!(!numbered("u") && !numbered("u%5d"));
    }
}
