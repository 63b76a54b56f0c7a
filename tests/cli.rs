//! The `sipreg` command line as an operator uses it: managing the credentials file (one user,
//! many from a pattern), checking a configuration file, and the errors a mistake earns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sipreg::auth::file;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("sipreg-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sipreg(args: &[&str], users: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .args(args)
        .arg("--users")
        .arg(users)
        .stdin(Stdio::null())
        .output()
        .expect("run sipreg")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn users_are_added_in_bulk_from_a_pattern() {
    let dir = Dir::new("bulk");
    let users = dir.path("users");
    let o = sipreg(
        &[
            "user",
            "add",
            "alice",
            "--realm",
            "example.com",
            "--password",
            "x",
        ],
        &users,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = sipreg(
        &[
            "user",
            "add",
            "--realm",
            "example.com",
            "--pattern",
            "u%06d",
            "--password-pattern",
            "p%06d",
            "--count",
            "3",
            "--first",
            "41",
        ],
        &users,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("3 users (u000041 to u000043)"),
        "{}",
        text(&o)
    );
    let o = sipreg(&["user", "list"], &users);
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    let names: Vec<&str> = listed
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["alice", "u000041", "u000042", "u000043"],
        "{listed}"
    );
    // Each with its own password, as HA1 for every algorithm.
    let stored = std::fs::read_to_string(&users).unwrap();
    let want = file::entries_for("u000042", "example.com", b"p000042");
    for line in file::format(&want).lines() {
        assert!(stored.lines().any(|l| l == line), "{line} missing");
    }
    // Adding again replaces rather than duplicates.
    let o = sipreg(
        &[
            "user",
            "add",
            "--realm",
            "example.com",
            "--pattern",
            "u%06d",
            "--password-pattern",
            "q%d",
            "--count",
            "3",
            "--first",
            "41",
        ],
        &users,
    );
    assert!(o.status.success(), "{}", text(&o));
    let stored = std::fs::read_to_string(&users).unwrap();
    assert_eq!(file::parse(&stored).unwrap().len(), 4 * want.len());
    let line = file::format(&file::entries_for("u000042", "example.com", b"q42"));
    let line = line.lines().next().unwrap();
    assert!(stored.lines().any(|l| l == line), "{line} missing");
}

#[test]
fn a_bad_pattern_is_refused_with_a_reason_and_nothing_written() {
    let dir = Dir::new("badpattern");
    let users = dir.path("users");
    for (pattern, password) in [
        ("u", "p%d"),
        ("u%d%d", "p%d"),
        ("u%5d", "p%d"),
        ("u%d", "p%x"),
    ] {
        let o = sipreg(
            &[
                "user",
                "add",
                "--realm",
                "r",
                "--pattern",
                pattern,
                "--password-pattern",
                password,
                "--count",
                "2",
            ],
            &users,
        );
        assert!(!o.status.success());
        assert!(text(&o).contains("pattern"), "{}", text(&o));
    }
    // A user name and a pattern together, or a pattern without its count, are usage errors.
    let o = sipreg(
        &["user", "add", "bob", "--realm", "r", "--pattern", "u%d"],
        &users,
    );
    assert!(!o.status.success());
    assert!(!users.exists());
}

#[test]
fn check_config_names_the_line_of_a_mistake() {
    let dir = Dir::new("config");
    let cfg = dir.path("sipreg.toml");
    std::fs::write(
        &cfg,
        "[server]\nworkers = 2\n\n[policy]\ntcp_close = \"drop\"\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains(":5:") && t.contains("policy.tcp_close"), "{t}");
    std::fs::write(
        &cfg,
        "[server]\nworkers = 2\n\n[policy]\ntcp_close = \"remove\"\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// Nonces carry the issuing worker's index in 10 bits: more than 1024 workers could issue one
/// nonce twice, so the command line refuses them before anything starts, as the file does.
#[test]
fn too_many_workers_are_refused_before_serving() {
    let o = Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .args(["serve", "--workers", "1025", "--listen", "udp:127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("--workers") && t.contains("1024"), "{t}");
}
