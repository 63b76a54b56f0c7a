//! The worker-side cost of persistence, side by side in one run: refreshing 100,000 bindings
//! with the events dropped (persistence off) and with every event recorded into the journal and
//! the journal ticked every 64 events (persistence on; the writer thread writes behind, to a
//! temporary directory). The ratio of the two is the hot-path overhead.
//!
//! Run: `taskset -c 1 cargo bench --bench persist` (the writer then runs on the other core, as
//! it would beside a worker). Throughput is in refreshes per second.
#![allow(clippy::disallowed_methods)] // a temporary data directory

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sipreg::location::{Aor, BindingId, Registration, Shard};
use sipreg::persist::{self, Config};
use sipreg::sip::{Transport, Uri};

const N: usize = 100_000;
const HOUR_MS: u64 = 3_600_000;

struct User {
    aor: Aor,
    contact: String,
    call_id: String,
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

fn bench(c: &mut Criterion) {
    let users: Vec<User> = (0..N)
        .map(|i| {
            let to = format!("sip:u{i:06}@example.com");
            let uri = Uri::parse(to.as_bytes()).expect("AOR parses");
            User {
                aor: Aor::from_uri(uri.sip().expect("sip")),
                contact: format!("sip:u{i:06}@192.0.2.14:5060;transport=udp"),
                call_id: format!("{i:08x}-4b1c-9a2e-8d3f-{:012x}", i * 7919),
            }
        })
        .collect();
    let source: SocketAddr = "192.0.2.14:5060".parse().expect("address");
    let mut shard = Shard::new();
    let ids: Vec<BindingId> = users
        .iter()
        .map(|u| {
            let id = shard.insert(&u.aor, &registration(u, source, 1, HOUR_MS), 0);
            while shard.poll_event().is_some() {}
            id.expect("insert")
        })
        .collect();

    let dir = std::env::temp_dir().join(format!("sipreg-bench-persist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let loaded = persist::load(&dir, 0, 1).expect("load");
    let (p, mut journals) = persist::start(&dir, &loaded, Config::default()).expect("start");
    let mut journal = journals.pop().expect("one journal");

    let mut g = c.benchmark_group("persist");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    let mut round = 0u64;
    for on in [false, true] {
        let name = if on { "refresh_journaled" } else { "refresh" };
        g.bench_function(name, |b| {
            b.iter(|| {
                round += 1;
                let now = round * 1_000;
                for (k, (u, id)) in users.iter().zip(&ids).enumerate() {
                    let reg = registration(u, source, round as u32 + 1, now + HOUR_MS);
                    black_box(shard.refresh(*id, &reg, now)).ok();
                    while let Some(ev) = shard.poll_event() {
                        if on {
                            journal.record(&ev, now);
                        }
                    }
                    if on && k % 64 == 63 {
                        journal.tick(&shard, now);
                    }
                }
            })
        });
    }
    g.finish();
    let now = round * 1_000;
    println!("persist stats: {}", p.stats());
    journal.close(&shard, now);
    p.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
