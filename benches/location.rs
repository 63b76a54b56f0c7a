//! Speed of the location shard: insert, refresh, lookup and expiry over 100,000 AORs of one
//! binding each, with the realistic contact and Call-ID of tests/location_memory.rs. Each
//! iteration drains the events, as the worker loop does.
//!
//! Run: `cargo bench --bench location`. Throughput is in bindings per second.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sipreg::location::{Aor, BindingId, Registration, Shard};
use sipreg::sip::{Transport, Uri};

const N: usize = 100_000;
const HOUR_MS: u64 = 3_600_000;

/// The AOR, contact and Call-ID of user `i`.
struct User {
    aor: Aor,
    contact: String,
    call_id: String,
}

fn users() -> Vec<User> {
    (0..N)
        .map(|i| {
            let to = format!("sip:u{i:06}@example.com");
            let uri = Uri::parse(to.as_bytes()).expect("AOR parses");
            User {
                aor: Aor::from_uri(uri.sip().expect("sip")),
                contact: format!("sip:u{i:06}@192.0.2.14:5060;transport=udp"),
                call_id: format!("{i:08x}-4b1c-9a2e-8d3f-{:012x}", i * 7919),
            }
        })
        .collect()
}

fn registration(u: &User, source: SocketAddr, cseq: u32, expires_at: u64) -> Registration<'_> {
    Registration {
        contact: u.contact.as_bytes(),
        params: b"",
        path: &[],
        instance: None,
        reg_id: None,
        q: 1000,
        expires_at,
        call_id: u.call_id.as_bytes(),
        cseq,
        source,
        transport: Transport::Udp,
        connection: None,
    }
}

fn filled(users: &[User], source: SocketAddr, expires_at: u64) -> (Shard, Vec<BindingId>) {
    let mut shard = Shard::new();
    let ids = users
        .iter()
        .map(|u| {
            let id = shard.insert(&u.aor, &registration(u, source, 1, expires_at), 0);
            while shard.poll_event().is_some() {}
            id.expect("insert")
        })
        .collect();
    (shard, ids)
}

fn bench(c: &mut Criterion) {
    let users = users();
    let source: SocketAddr = "192.0.2.14:5060".parse().expect("address");
    let mut g = c.benchmark_group("location");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);

    g.bench_function("insert", |b| {
        b.iter_batched(
            Shard::new,
            |mut shard| {
                for u in &users {
                    let reg = registration(u, source, 1, HOUR_MS);
                    black_box(shard.insert(&u.aor, &reg, 0)).ok();
                    while shard.poll_event().is_some() {}
                }
                shard
            },
            BatchSize::PerIteration,
        )
    });

    let (mut shard, ids) = filled(&users, source, HOUR_MS);
    let mut round = 0u64;
    g.bench_function("refresh", |b| {
        b.iter(|| {
            // A later expiry each round: the id and the timer entry stay.
            round += 1;
            let now = round * 1_000;
            for (u, id) in users.iter().zip(&ids) {
                let reg = registration(u, source, round as u32 + 1, now + HOUR_MS);
                black_box(shard.refresh(*id, &reg, now)).ok();
                while shard.poll_event().is_some() {}
            }
        })
    });

    g.bench_function("lookup", |b| {
        let now = round * 1_000;
        b.iter(|| {
            let mut found = 0usize;
            for u in &users {
                found += shard.lookup(black_box(u.aor.as_bytes()), now).count();
            }
            assert_eq!(found, N);
        })
    });

    g.bench_function("expire_one_tick", |b| {
        b.iter_batched(
            || filled(&users, source, HOUR_MS).0,
            |mut shard| {
                let n = shard.expire(HOUR_MS);
                while shard.poll_event().is_some() {}
                assert_eq!(n, N);
                shard
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
