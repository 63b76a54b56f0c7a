//! The credentials file: one line per (user, realm, algorithm) with the HA1 in hex, never a
//! password. Parsing and formatting only; reading and writing the file is the binary's job.
//!
//! ```text
//! # user   realm        algorithm    HA1
//! alice    example.com  SHA-256      5a2c...
//! alice    example.com  MD5          939e...
//! ```
//!
//! Blank lines and lines starting with `#` are ignored. A malformed line is an error naming the
//! line; nothing is half loaded.

use core::fmt;

use super::digest::{Algorithm, Ha1};
use super::users::UserDb;

/// One credentials line.
#[derive(Clone, Debug)]
pub struct Entry {
    pub user: String,
    pub realm: String,
    pub ha1: Ha1,
}

/// A defect in a credentials file, with its 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for FileError {}

/// Whether a user name or realm can be stored as one field of a line.
pub fn is_storable(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('#') && s.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// Parses a credentials file.
pub fn parse(text: &str) -> Result<Vec<Entry>, FileError> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let fail = |message: String| FileError {
            line: line_no,
            message,
        };
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let [user, realm, algorithm, hex] = fields.as_slice() else {
            return Err(fail(format!(
                "expected 4 fields (user realm algorithm HA1), found {}",
                fields.len()
            )));
        };
        let alg = Algorithm::from_token(algorithm.as_bytes()).ok_or_else(|| {
            fail(format!(
                "unknown algorithm {algorithm:?} (MD5, SHA-256 or SHA-512-256)"
            ))
        })?;
        let ha1 = Ha1::from_hex(alg, hex.as_bytes()).ok_or_else(|| {
            fail(format!(
                "HA1 for {} must be {} hex digits",
                alg.name(),
                alg.hex_len()
            ))
        })?;
        entries.push(Entry {
            user: (*user).to_string(),
            realm: (*realm).to_string(),
            ha1,
        });
    }
    Ok(entries)
}

/// Formats entries as a credentials file, with a header comment.
pub fn format(entries: &[Entry]) -> String {
    let mut out =
        String::from("# sipreg credentials: user realm algorithm HA1 (never a password)\n");
    for e in entries {
        out.push_str(&format!(
            "{} {} {} {}\n",
            e.user,
            e.realm,
            e.ha1.algorithm().name(),
            e.ha1.to_hex()
        ));
    }
    out
}

/// The entries of a password for every algorithm.
pub fn entries_for(user: &str, realm: &str, password: &[u8]) -> Vec<Entry> {
    Algorithm::ALL
        .iter()
        .map(|&alg| Entry {
            user: user.to_string(),
            realm: realm.to_string(),
            ha1: Ha1::from_password(alg, user.as_bytes(), realm.as_bytes(), password),
        })
        .collect()
}

/// Loads entries into a user store.
pub fn load(entries: &[Entry]) -> UserDb {
    let mut db = UserDb::with_capacity(entries.len());
    for e in entries {
        db.insert(e.user.as_bytes(), e.realm.as_bytes(), e.ha1);
    }
    db
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let entries = entries_for("alice", "example.com", b"wonderland");
        let text = format(&entries);
        assert!(!text.contains("wonderland"));
        let back = parse(&text).unwrap();
        assert_eq!(back.len(), 3);
        let db = load(&back);
        assert!(
            db.ha1(b"alice", b"example.com", Algorithm::Sha256)
                .is_some()
        );
        assert!(db.ha1(b"alice", b"example.com", Algorithm::Md5).is_some());
    }

    #[test]
    fn errors_name_the_line() {
        let text = "# comment\n\nalice example.com MD5 00\n";
        let err = parse(text).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("32 hex digits"), "{err}");
        let err = parse("alice example.com\n").unwrap_err();
        assert_eq!((err.line, err.message.contains("4 fields")), (1, true));
        let err = parse("a r SHA-1 00\n").unwrap_err();
        assert!(err.message.contains("unknown algorithm"), "{err}");
        assert!(!is_storable("has space"));
        assert!(!is_storable(""));
        assert!(is_storable("j.user"));
    }
}
