//! Persistence at one million bindings, measured (not asserted): the worker-side append cost,
//! the writer's throughput and both threads' CPU time per event, a snapshot's per-tick stall, the start-up rewrite and the load.
//!
//! Run (release, on an idle machine):
//! `cargo test --release --test persist_scale -- --ignored --nocapture`
#![allow(clippy::disallowed_methods)] // a measurement: files, the clock

use std::time::{Duration, Instant};

use sipreg::location::{Aor, Event, Registration, Shard};
use sipreg::persist::{self, Config};
use sipreg::sip::{Transport, Uri};

const N: usize = 1_000_000;

/// User plus system CPU time in milliseconds from a /proc stat file (clock ticks of 10 ms): the
/// whole process (dead threads included) or one thread.
fn cpu_ms(stat: &str) -> u64 {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    let after = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    fields.iter().sum::<u64>() * 10
}
const T0: u64 = 1_800_000_000_000;

#[test]
#[ignore = "a measurement at 1M bindings: run in release with --ignored --nocapture"]
fn one_million_bindings() {
    let dir = std::env::temp_dir().join(format!("sipreg-persist-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = Config::default();

    // A shard of 1M AORs of one binding each (the realistic fields of benches/location.rs),
    // and the events it emitted.
    let mut shard = Shard::with_capacity(N);
    let mut events: Vec<Event> = Vec::with_capacity(N);
    for i in 0..N {
        let to = format!("sip:u{i:07}@example.com");
        let uri = Uri::parse(to.as_bytes()).expect("AOR parses");
        let aor = Aor::from_uri(uri.sip().expect("sip"));
        let contact = format!("sip:u{i:07}@192.0.2.14:5060;transport=udp");
        let call_id = format!("{i:08x}-4b1c-9a2e-8d3f-{:012x}", i * 7919);
        let reg = Registration {
            contact: contact.as_bytes(),
            params: b"",
            path: &[],
            instance: None,
            reg_id: None,
            q: 1000,
            expires_at: T0 + 3_600_000,
            call_id: call_id.as_bytes(),
            cseq: 1,
            source: "192.0.2.14:5060".parse().expect("address"),
            transport: Transport::Udp,
            connection: None,
        };
        shard.insert(&aor, &reg, T0).expect("insert");
        events.extend(std::iter::from_fn(|| shard.poll_event()));
    }

    // 1. The encoding alone, into one warm 64 KiB buffer.
    let mut buf = Vec::with_capacity(1 << 17);
    let t = Instant::now();
    for ev in &events {
        persist::record::push_binding(
            &mut buf,
            persist::record::KIND_UPSERT,
            ev.aor(),
            ev.binding(),
        );
        if buf.len() >= 1 << 16 {
            std::hint::black_box(&buf);
            buf.clear();
        }
    }
    let warm = t.elapsed();
    println!(
        "encode into a warm buffer: {:.0} ns/event",
        warm.as_nanos() as f64 / N as f64
    );

    // 2. The worker with hand-over, ticking every 64 events as a busy worker loop would, and
    // the writer behind it (the queue may hold everything: no overflow in this measurement).
    let loaded = persist::load(&dir, T0, 1).expect("load");
    let roomy = Config {
        pending_limit: 1 << 30,
        ..cfg.clone()
    };
    let (p, mut journals) = persist::start(&dir, &loaded, roomy).expect("start");
    let mut journal = journals.pop().expect("one journal");
    let (process0, thread0) = (cpu_ms("/proc/self/stat"), cpu_ms("/proc/thread-self/stat"));
    let t = Instant::now();
    for (k, ev) in events.iter().enumerate() {
        journal.record(ev, T0);
        if k % 64 == 63 {
            journal.tick(&shard, T0);
        }
    }
    let append = t.elapsed();
    journal.close(&shard, T0);
    let stats = p.stats().clone();
    p.finish();
    let written = t.elapsed();
    let worker_cpu = cpu_ms("/proc/thread-self/stat") - thread0;
    let writer_cpu = (cpu_ms("/proc/self/stat") - process0).saturating_sub(worker_cpu);
    println!(
        "CPU: worker {worker_cpu} ms ({} ns/event), writer {writer_cpu} ms ({} ns/event)",
        worker_cpu * 1_000_000 / N as u64,
        writer_cpu * 1_000_000 / N as u64,
    );
    let bytes = stats
        .bytes_written
        .load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "record + tick: {N} events in {append:?}: {:.0} ns/event, {:.2} M events/s",
        append.as_nanos() as f64 / N as f64,
        N as f64 / append.as_secs_f64() / 1e6,
    );
    println!(
        "writer: {bytes} bytes ({} B/event) written and fsynced {written:?} after the first \
         append: {:.0} MB/s, {:.0} k events/s",
        bytes / N as u64,
        bytes as f64 / written.as_secs_f64() / 1e6,
        N as f64 / written.as_secs_f64() / 1e3,
    );
    drop(events);

    // 3. Start-up: load the journal of 1M records, rewrite as a new generation, restore.
    let (t, cpu) = (Instant::now(), cpu_ms("/proc/self/stat"));
    let loaded = persist::load(&dir, T0 + 1000, 2).expect("load");
    let load = t.elapsed();
    println!(
        "load: {} in {load:?} (CPU {} ms)",
        loaded.report,
        cpu_ms("/proc/self/stat") - cpu
    );
    assert_eq!(loaded.report.bindings, N as u64);
    let (t, cpu) = (Instant::now(), cpu_ms("/proc/self/stat"));
    let (p, mut journals) = persist::start(&dir, &loaded, cfg.clone()).expect("start");
    let rewrite = t.elapsed();
    let rewrite_cpu = cpu_ms("/proc/self/stat") - cpu;
    let t = Instant::now();
    let mut shards: Vec<Shard> = (0..2)
        .map(|_| Shard::with_capacity(N / 2 + N / 8))
        .collect();
    for (s, bindings) in shards.iter_mut().zip(loaded.shards) {
        for (aor, b) in bindings {
            s.restore(&aor, b, T0 + 1000).expect("restore");
        }
    }
    let restore = t.elapsed();
    println!(
        "start: rewrite of 2 snapshots {rewrite:?} (CPU {rewrite_cpu} ms), restore into shards \
         {restore:?}"
    );

    // 4. A snapshot of a 500k shard taken in steps: the stall is the longest tick.
    let j = &mut journals[0];
    j.snapshot_now();
    let (mut ticks, mut worst, mut total) = (0u32, Duration::ZERO, Duration::ZERO);
    let t = Instant::now();
    loop {
        let s = Instant::now();
        j.tick(&shards[0], T0 + 2000);
        let d = s.elapsed();
        worst = worst.max(d);
        total += d;
        ticks += 1;
        if j.next_deadline().is_none() || t.elapsed() > Duration::from_secs(60) {
            break;
        }
        if j.next_deadline() > Some(T0 + 2000) {
            std::thread::sleep(Duration::from_millis(1)); // the queue is full: as a worker would
        }
    }
    println!(
        "snapshot of {} bindings: {ticks} ticks, worst {worst:?}, mean {:?}, worker time {total:?}, \
         wall {:?}",
        shards[0].len(),
        total / ticks,
        t.elapsed()
    );
    for (j, s) in journals.into_iter().zip(&shards) {
        j.close(s, T0 + 2000);
    }
    p.finish();
    let (t, cpu) = (Instant::now(), cpu_ms("/proc/self/stat"));
    let again = persist::load(&dir, T0 + 3000, 2).expect("load");
    println!(
        "load after snapshot: {} in {:?} (CPU {} ms)",
        again.report,
        t.elapsed(),
        cpu_ms("/proc/self/stat") - cpu
    );
    assert_eq!(again.report.bindings, N as u64);
    let _ = std::fs::remove_dir_all(&dir);
}
