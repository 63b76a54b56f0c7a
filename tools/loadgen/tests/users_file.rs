//! `sipreg-loadgen users` prints a credentials file sipreg loads, with the HA1 of each patterned
//! password.

use std::process::Command;

use sipreg::auth::{Algorithm, Ha1, file};

#[test]
fn users_subcommand_writes_a_sipreg_credentials_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_sipreg-loadgen"))
        .args([
            "users",
            "--user-pattern",
            "u%06d",
            "--password-pattern",
            "p%06d",
        ])
        .args(["--count", "3", "--first", "10", "--realm", "example.com"])
        .args(["--algorithms", "MD5,SHA-256"])
        .output()
        .expect("run sipreg-loadgen users");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("p0000"), "no password in the file");
    let entries = file::parse(&text).expect("sipreg parses it");
    assert_eq!(entries.len(), 6);
    let db = file::load(&entries);
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        let want = Ha1::from_password(alg, b"u000011", b"example.com", b"p000011").to_hex();
        let got = db
            .ha1(b"u000011", b"example.com", alg)
            .expect("user present")
            .to_hex();
        assert_eq!(got, want);
    }
    assert!(
        db.ha1(b"u000012", b"example.com", Algorithm::Sha512_256)
            .is_none()
    );
    assert!(db.ha1(b"u000013", b"example.com", Algorithm::Md5).is_none());
}
