//! The registrar core alone, no sockets: a complete authenticated REGISTER (parse, nonce check,
//! digest, nonce-count, store update, 200 written) and the 401 path.
//!
//! Run: `cargo bench --bench core`. Results go to perf/RESULTS.md.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

mod common;
use common::{NOW_MS, nonce, peer, register, registrar, settle};

fn core(c: &mut Criterion) {
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));

    let mut reg = registrar();
    let mut out = [0u8; 4096];
    let challenge = register(1, None);
    g.bench_function("register_401", |b| {
        b.iter(|| reg.handle(NOW_MS, peer(), black_box(&challenge), &mut out))
    });

    // Refreshes with pre-emptive credentials: one nonce, rising nc and CSeq, each answered 200.
    // The requests are made outside the timing in batches of 64, as the server receives them
    // (one `recvmmsg` fills up to 64 buffers), and dropped outside it: each is a fresh Vec, and
    // freeing it is the bench's cost, not the registrar's. Larger batches (criterion's
    // `SmallInput` makes ~1,600) are read back from beyond the L2 cache, which a datagram the
    // kernel has just copied in never is.
    let mut reg = registrar();
    let nonce = nonce(&mut reg);
    let mut n = 1u32;
    g.bench_function("register_auth_200", |b| {
        b.iter_batched_ref(
            || {
                n += 1;
                register(n, Some((&nonce, n - 1)))
            },
            |msg| {
                let len = reg.handle(NOW_MS, peer(), black_box(msg), &mut out);
                debug_assert!(out.starts_with(b"SIP/2.0 200"));
                settle(&mut reg);
                len
            },
            BatchSize::NumIterations(64),
        )
    });
    assert!(
        out.starts_with(b"SIP/2.0 200"),
        "the measured path must be the 200"
    );
    g.finish();
}

criterion_group!(benches, core);
criterion_main!(benches);
