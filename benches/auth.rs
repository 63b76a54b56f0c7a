//! Digest authentication alone: issuing and checking a nonce (SipHash-2-4), reading the
//! Authorization value of the bench REGISTER, verifying a response per algorithm, the
//! registrar's user lookup and verification together, and the nonce-count table. One element
//! per iteration.
//!
//! Run: `cargo bench --bench auth`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sipreg::auth::{
    Algorithm, Ha1, KnownA2, NcTracker, NonceKeys, UserDb, compute_response, verify,
};
use sipreg::sip::Credentials;

mod common;

const REALM: &[u8] = b"example.com";
const NOW: u64 = 1_790_000_000;

fn nonce(c: &mut Criterion) {
    let mut g = c.benchmark_group("nonce");
    g.throughput(Throughput::Elements(1));
    let keys = NonceKeys::new(0, &[7; 32]);
    let mut seq = 0;
    g.bench_function("issue", |b| {
        b.iter(|| {
            seq += 1;
            keys.issue(black_box(NOW), REALM, seq)
        })
    });
    let issued = keys.issue(NOW, REALM, 1).to_string();
    g.bench_function("check", |b| {
        b.iter(|| keys.check(black_box(issued.as_bytes()), NOW + 10, REALM, 3600))
    });
    g.finish();
}

/// `Credentials::parse` of the Authorization value in `common::REGISTER_AUTH`.
fn credentials(c: &mut Criterion) {
    let text = std::str::from_utf8(common::REGISTER_AUTH).expect("ASCII");
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix("Authorization: "))
        .expect("the bench REGISTER has credentials")
        .as_bytes();
    assert!(matches!(
        Credentials::parse(value),
        Some(Credentials::Digest(_))
    ));
    let mut g = c.benchmark_group("credentials");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse", |b| b.iter(|| Credentials::parse(black_box(value))));
    g.finish();
}

fn digest(c: &mut Criterion) {
    let mut g = c.benchmark_group("digest_verify");
    g.throughput(Throughput::Elements(1));
    for alg in [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256] {
        let ha1 = Ha1::from_password(alg, b"alice", REALM, b"secret");
        let template = format!(
            "Digest username=\"alice\", realm=\"example.com\", nonce=\"n0nce\", \
             uri=\"sip:example.com\", algorithm={}, cnonce=\"c0ffee\", qop=auth, nc=00000001",
            alg.name()
        );
        let Some(Credentials::Digest(d)) = Credentials::parse(template.as_bytes()) else {
            panic!("the header parses")
        };
        let response = compute_response(&ha1, b"REGISTER", &d, b"").expect("a response");
        let header = format!("{template}, response=\"{response}\"");
        let Some(Credentials::Digest(signed)) = Credentials::parse(header.as_bytes()) else {
            panic!("the header parses")
        };
        assert!(verify(&ha1, b"REGISTER", &signed, b""));
        g.bench_function(alg.name(), |b| {
            b.iter(|| verify(&ha1, b"REGISTER", black_box(&signed), b""))
        });
    }
    g.finish();
}

/// What the registrar runs per authenticated REGISTER after the nonce check: the user looked up
/// among 100,000 and the MD5 response verified, H(A2) of `REGISTER sip:example.com` computed
/// ahead, against a nonce as this registrar issues it (two MD5 blocks).
fn verify_user(c: &mut Criterion) {
    let mut users = UserDb::with_capacity(100_000);
    for i in 0..100_000u32 {
        let name = format!("u{i:06}");
        let ha1 = Ha1::from_password(Algorithm::Md5, name.as_bytes(), REALM, b"secret");
        users.insert(name.as_bytes(), REALM, ha1);
    }
    let known = [KnownA2::new(
        Algorithm::Md5,
        b"REGISTER",
        b"sip:example.com",
    )];
    let nonce = NonceKeys::new(0, &[7; 32]).issue(NOW, REALM, 1);
    let template = format!(
        "Digest username=\"u012345\", realm=\"example.com\", nonce=\"{nonce}\", \
         uri=\"sip:example.com\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001"
    );
    let Some(Credentials::Digest(d)) = Credentials::parse(template.as_bytes()) else {
        panic!("the header parses")
    };
    let ha1 = Ha1::from_password(Algorithm::Md5, b"u012345", REALM, b"secret");
    let response = compute_response(&ha1, b"REGISTER", &d, b"").expect("a response");
    let header = format!("{template}, response=\"{response}\"");
    let Some(Credentials::Digest(signed)) = Credentials::parse(header.as_bytes()) else {
        panic!("the header parses")
    };
    assert!(users.verify_user_with(REALM, b"REGISTER", &signed, b"", &known));
    let mut g = c.benchmark_group("verify_user");
    g.throughput(Throughput::Elements(1));
    g.bench_function("MD5_known_A2_100k", |b| {
        b.iter(|| users.verify_user_with(REALM, b"REGISTER", black_box(&signed), b"", &known))
    });
    g.finish();
}

fn nonce_count(c: &mut Criterion) {
    let mut g = c.benchmark_group("nonce_count");
    g.throughput(Throughput::Elements(1));
    // A million phones' nonces, each used once more per iteration.
    let mut t = NcTracker::with_capacity(1 << 20, 3600);
    for id in 0..1_000_000u64 {
        t.observe(id, NOW, 1, NOW);
    }
    let (mut id, mut nc) = (0u64, 1u32);
    g.bench_function("observe_1M", |b| {
        b.iter(|| {
            id = (id + 7919) % 1_000_000;
            if id < 7919 {
                nc += 1;
            }
            t.observe(black_box(id), NOW, nc + 1, NOW + 1)
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    nonce,
    credentials,
    digest,
    verify_user,
    nonce_count
);
criterion_main!(benches);
