//! Persistence (issue 6) through its public API, on real files: round trip, replay semantics,
//! compaction, damaged files, re-splitting between worker counts, expiry while down, write
//! errors. A "crash" is a copy of the data directory taken while the writer runs: what the disk
//! holds at that instant.
#![allow(clippy::disallowed_methods)] // tests create, damage and copy files

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sipreg::location::{Aor, Binding, Event, Registration, Shard};
use sipreg::persist::{self, Config, Journal, Persist, Report};
use sipreg::sip::{Transport, Uri};

const T0: u64 = 1_800_000_000_000;

fn tempdir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sipreg-persist-{}-{tag}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn aor(user: &str) -> Aor {
    let raw = format!("sip:{user}@example.com");
    let uri = Uri::parse(raw.as_bytes()).expect("AOR parses");
    Aor::from_uri(uri.sip().expect("sip"))
}

/// What a test compares: every durable field.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    aor: String,
    contact: String,
    params: String,
    instance: Option<String>,
    reg_id: Option<u32>,
    q: u16,
    expires_at: u64,
    updated_at: u64,
    call_id: String,
    cseq: u32,
    path: Vec<String>,
    source: String,
    transport: String,
}

fn row(aor: &Aor, b: &Binding) -> Row {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Row {
        aor: aor.to_string(),
        contact: s(b.contact()),
        params: s(b.params()),
        instance: b.instance().map(s),
        reg_id: b.reg_id(),
        q: b.q(),
        expires_at: b.expires_at(),
        updated_at: b.updated_at(),
        call_id: s(b.call_id()),
        cseq: b.cseq(),
        path: b.path().map(s).collect(),
        source: b.source().to_string(),
        transport: format!("{:?}", b.transport()),
    }
}

/// A registrar stand-in: shards by `shard_of`, each with its journal, as the workers will be.
struct Node {
    shards: Vec<Shard>,
    journals: Vec<Journal>,
    persist: Persist,
    report: Report,
}

impl Node {
    fn boot(dir: &Path, shards: usize, now: u64, config: Config) -> Node {
        let loaded = persist::load(dir, now, shards).expect("load");
        let (persist, journals) = persist::start(dir, &loaded, config).expect("start");
        let report = loaded.report.clone();
        let mut out: Vec<Shard> = (0..shards).map(|_| Shard::new()).collect();
        for (i, bindings) in loaded.shards.into_iter().enumerate() {
            for (aor, b) in bindings {
                assert_eq!(persist::shard_of(aor.as_bytes(), shards), i);
                assert!(out[i].restore(&aor, b, now).expect("restore"));
            }
        }
        Node {
            shards: out,
            journals,
            persist,
            report,
        }
    }

    fn shard(&self, aor: &Aor) -> usize {
        persist::shard_of(aor.as_bytes(), self.shards.len())
    }

    /// Drains the events of shard `i` into its journal and ticks it: the worker loop.
    fn drain(&mut self, i: usize, now: u64) {
        while let Some(ev) = self.shards[i].poll_event() {
            self.journals[i].record(&ev, now);
        }
        self.journals[i].tick(&self.shards[i], now);
    }

    fn tick_all(&mut self, now: u64) {
        for i in 0..self.shards.len() {
            self.drain(i, now);
        }
    }

    /// Adds or refreshes (same contact) a binding.
    fn register(&mut self, aor: &Aor, reg: &Registration<'_>, now: u64) {
        let i = self.shard(aor);
        let contact = Uri::parse(reg.contact).expect("contact parses");
        let shard = &mut self.shards[i];
        match shard.find_contact(aor.as_bytes(), &contact, now) {
            Some(id) => drop(shard.refresh(id, reg, now).expect("refresh")),
            None => drop(shard.insert(aor, reg, now).expect("insert")),
        }
        self.drain(i, now);
    }

    fn unregister(&mut self, aor: &Aor, contact: &str, now: u64) {
        let i = self.shard(aor);
        let uri = Uri::parse(contact.as_bytes()).expect("contact parses");
        let shard = &mut self.shards[i];
        let id = shard
            .find_contact(aor.as_bytes(), &uri, now)
            .expect("registered");
        shard.remove(id, now).expect("remove");
        self.drain(i, now);
    }

    fn rows(&self, now: u64) -> Vec<Row> {
        let mut out: Vec<Row> = self
            .shards
            .iter()
            .flat_map(|s| s.iter(now).map(|(a, b)| row(a, b)))
            .collect();
        out.sort();
        out
    }

    fn shutdown(self, now: u64) {
        for (j, s) in self.journals.into_iter().zip(&self.shards) {
            j.close(s, now);
        }
        self.persist.finish();
    }

    /// Waits until everything recorded is in the files, ticking so that buffers are handed
    /// over, then waiting for the writer to have handled all of it (however slowly it is
    /// scheduled on a loaded machine).
    fn settle(&mut self, now: u64, config: &Config) {
        // Tick as a worker loop would until nothing is pending (snapshot steps, queue retries).
        for _ in 0..10_000 {
            self.tick_all(now + config.window_ms);
            if self.journals.iter().all(|j| j.next_deadline().is_none()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        for j in &self.journals {
            assert!(
                j.wait_handled(std::time::Duration::from_secs(60)),
                "the writer handles what shard {} handed over",
                j.shard()
            );
        }
    }
}

fn reg(contact: &str, expires_at: u64) -> Registration<'_> {
    Registration {
        contact: contact.as_bytes(),
        params: b"",
        path: &[],
        instance: None,
        reg_id: None,
        q: 1000,
        expires_at,
        call_id: b"call-1",
        cseq: 1,
        source: "192.0.2.1:5060".parse().expect("address"),
        transport: Transport::Udp,
        connection: None,
    }
}

fn fast() -> Config {
    Config {
        window_ms: 100,
        ..Config::default()
    }
}

/// Copies the data directory as it is now: what a crash would leave.
fn crash_copy(dir: &Path, tag: &str) -> PathBuf {
    let copy = tempdir(tag);
    fs::create_dir_all(&copy).expect("mkdir");
    for e in fs::read_dir(dir).expect("list") {
        let e = e.expect("entry");
        if e.path().is_file() {
            fs::copy(e.path(), copy.join(e.file_name())).expect("copy");
        }
    }
    copy
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn bindings_round_trip_with_every_durable_field() {
    let dir = tempdir("roundtrip");
    let mut node = Node::boot(&dir, 2, T0, fast());
    assert_eq!(node.report.generation, 0);
    let path: [&[u8]; 2] = [b"<sip:edge1.example.com;lr>", b"<sip:edge2;lr>"];
    let full = Registration {
        params: b"+sip.instance=\"<urn:uuid:1>\";reg-id=1",
        path: &path,
        instance: Some(b"\"<urn:uuid:1>\""),
        reg_id: Some(1),
        q: 700,
        call_id: b"abc@192.0.2.9",
        cseq: 42,
        source: "[2001:db8::9]:5070".parse().expect("address"),
        transport: Transport::Tls,
        connection: Some(17),
        ..reg("sip:alice@192.0.2.9:5070;transport=tls", T0 + 3_600_000)
    };
    node.register(&aor("alice"), &full, T0);
    for i in 0..50 {
        let c = format!("sip:u{i}@192.0.2.1");
        node.register(&aor(&format!("u{i}")), &reg(&c, T0 + 60_000 + i), T0 + i);
    }
    let before = node.rows(T0 + 100);
    node.shutdown(T0 + 100);

    let node = Node::boot(&dir, 2, T0 + 1000, fast());
    assert_eq!(node.report.bindings, 51, "{}", node.report);
    assert!(!node.report.has_damage());
    assert_eq!(node.rows(T0 + 100), before);
    let alice = node.shards[node.shard(&aor("alice"))]
        .lookup(aor("alice").as_bytes(), T0 + 1000)
        .next()
        .expect("restored")
        .clone();
    assert_eq!(
        alice.connection(),
        None,
        "the connection id dies with the process"
    );
    assert_eq!(alice.expires_in(T0 + 1000), 3_599_000);
    node.shutdown(T0 + 1000);
    let _ = fs::remove_dir_all(&dir);
}

/// Removal, wildcard, replacement, expiry and a contact change, after a clean shutdown and after
/// a crash once the window has passed.
#[test]
fn removed_bindings_never_come_back() {
    let dir = tempdir("replay");
    let cfg = fast();
    let mut node = Node::boot(&dir, 3, T0, cfg.clone());
    let far = T0 + 3_600_000;
    let now = T0 + 10;
    node.register(&aor("a"), &reg("sip:a1@h", far), now);
    node.register(&aor("a"), &reg("sip:a2@h", far), now);
    node.register(&aor("b"), &reg("sip:b@h", far), now);
    node.register(&aor("d"), &reg("sip:d1@h", far), now);
    node.register(&aor("d"), &reg("sip:d2@h", far), now);
    node.register(&aor("e"), &reg("sip:e@h", T0 + 5_000), now);
    let inst = Registration {
        instance: Some(b"<urn:uuid:c>"),
        reg_id: Some(1),
        ..reg("sip:c@192.0.2.1:1111", far)
    };
    node.register(&aor("c"), &inst, now);
    // Let a snapshot or two happen in between: the records cross files.
    node.settle(now, &cfg);

    let now = T0 + 6_000;
    // De-registration.
    node.unregister(&aor("a"), "sip:a1@h", now);
    // Refresh with a new expiry.
    node.register(&aor("b"), &reg("sip:b@h", far + 1), now);
    // A flow re-registers from a new address: the contact changes in place.
    let c = aor("c");
    let i = node.shard(&c);
    let id = node.shards[i]
        .find_instance(c.as_bytes(), b"<urn:uuid:c>", Some(1), now)
        .expect("flow");
    let moved = Registration {
        instance: Some(b"<urn:uuid:c>"),
        reg_id: Some(1),
        ..reg("sip:c@192.0.2.2:2222", far)
    };
    node.shards[i].refresh(id, &moved, now).expect("refresh");
    node.drain(i, now);
    // Wildcard.
    let d = aor("d");
    let i = node.shard(&d);
    assert_eq!(node.shards[i].remove_aor(d.as_bytes(), now), 2);
    node.drain(i, now);
    // Expiry.
    let e = aor("e");
    let i = node.shard(&e);
    assert_eq!(node.shards[i].expire(now), 1);
    node.drain(i, now);

    let want = node.rows(now);
    let contacts: Vec<_> = want.iter().map(|r| r.contact.as_str()).collect();
    assert_eq!(contacts, ["sip:a2@h", "sip:b@h", "sip:c@192.0.2.2:2222"]);

    node.settle(now, &cfg);
    let crashed = crash_copy(&dir, "replay-crash");
    node.shutdown(now);

    // A clock that went back (before e's expiry) must not bring e back either.
    for d in [&dir, &crashed] {
        let node = Node::boot(d, 3, T0 + 4_000, cfg.clone());
        assert_eq!(node.rows(now), want, "{}", d.display());
        node.shutdown(T0 + 4_000);
    }
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_dir_all(&crashed);
}

/// Small compaction thresholds: many snapshots taken in steps while the table changes, and the
/// journal stays bounded.
#[test]
fn compaction_under_churn_keeps_exactly_the_live_set() {
    let dir = tempdir("compact");
    let cfg = Config {
        window_ms: 20,
        compact_min_bytes: 4096,
        snapshot_slots: 3,
        buffer_bytes: 512,
        ..Config::default()
    };
    let mut node = Node::boot(&dir, 2, T0, cfg.clone());
    let far = T0 + 3_600_000;
    let mut now = T0;
    for round in 0..40u64 {
        for u in 0..40u64 {
            now += 1;
            let a = aor(&format!("u{u}"));
            let c = format!("sip:u{u}-r{round}@h");
            // Replace the previous contact: remove it, add the new one.
            if round > 0 {
                node.unregister(&a, &format!("sip:u{u}-r{}@h", round - 1), now);
            }
            node.register(&a, &reg(&c, far), now);
            if (u + round) % 7 == 0 {
                // A short-lived extra contact, added and removed within the round.
                node.register(&a, &reg("sip:extra@h", far), now);
                node.unregister(&a, "sip:extra@h", now);
            }
        }
        node.tick_all(now);
    }
    let want = node.rows(now);
    assert_eq!(want.len(), 40);
    node.settle(now, &cfg);
    let stats = node.persist.stats().clone();
    assert!(
        stats.snapshots.load(Ordering::Relaxed) >= 2,
        "snapshots taken: {stats}"
    );
    let crashed = crash_copy(&dir, "compact-crash");
    node.shutdown(now);
    let logs = files(&dir);
    assert!(logs.len() <= 1 + 2 * 3, "old files are deleted: {logs:?}");
    for d in [&dir, &crashed] {
        let node = Node::boot(d, 2, now, cfg.clone());
        assert_eq!(node.rows(now), want, "{}", d.display());
        node.shutdown(now);
    }
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_dir_all(&crashed);
}

/// Writes `n` bindings on one shard with a clean shutdown; returns the data directory.
fn one_shard_dir(tag: &str, n: u64) -> PathBuf {
    let dir = tempdir(tag);
    let mut node = Node::boot(&dir, 1, T0, fast());
    for i in 0..n {
        let c = format!("sip:u{i}@192.0.2.1");
        node.register(&aor(&format!("u{i}")), &reg(&c, T0 + 3_600_000), T0);
    }
    node.shutdown(T0);
    // A restart writes everything into one snapshot.
    Node::boot(&dir, 1, T0, fast()).shutdown(T0);
    dir
}

/// The one file of a kind in `dir`.
fn file_of(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<_> = files(dir)
        .into_iter()
        .filter(|f| f.ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    dir.join(&found[0])
}

#[test]
fn a_torn_tail_loses_only_the_torn_record() {
    let dir = one_shard_dir("torn", 100);
    // After a clean shutdown and a restart everything sits in the snapshot.
    let snap = file_of(&dir, ".snap");
    let bytes = fs::read(&snap).expect("read");
    fs::write(&snap, &bytes[..bytes.len() - 7]).expect("truncate");
    let node = Node::boot(&dir, 1, T0, fast());
    assert_eq!(node.report.bindings, 99, "{}", node.report);
    assert_eq!(node.report.damaged, 1);
    assert!(node.report.bytes_skipped > 0);
    assert!(node.report.to_string().contains("damaged"));
    node.shutdown(T0);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn flipped_bits_mid_file_lose_only_their_records() {
    let dir = one_shard_dir("flip", 100);
    let snap = file_of(&dir, ".snap");
    let mut bytes = fs::read(&snap).expect("read");
    let n = bytes.len();
    // Three flips in three different records, one of them in a length field area.
    for at in [n / 4, n / 2, n / 2 + 3 * (n / 100) + 5] {
        bytes[at] ^= 0x10;
    }
    fs::write(&snap, &bytes).expect("write");
    let node = Node::boot(&dir, 1, T0, fast());
    assert_eq!(node.report.bindings, 97, "{}", node.report);
    assert_eq!(node.report.damaged, 3);
    node.shutdown(T0);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn garbage_files_and_inserted_garbage_are_skipped_not_fatal() {
    let dir = one_shard_dir("garbage", 50);
    let snap = file_of(&dir, ".snap");
    let mut bytes = fs::read(&snap).expect("read");
    // Garbage in the middle, between records or inside one.
    let junk: Vec<u8> = (0..997u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    bytes.splice(bytes.len() / 2..bytes.len() / 2, junk.iter().copied());
    fs::write(&snap, &bytes).expect("write");
    // A journal of pure garbage, named as one of ours.
    let name = snap
        .file_name()
        .expect("name")
        .to_string_lossy()
        .replace(".snap", ".log");
    fs::write(dir.join(name), &junk).expect("write");
    let node = Node::boot(&dir, 1, T0, fast());
    assert!(node.report.bindings >= 49, "{}", node.report);
    assert_eq!(node.report.damaged, 2, "{}", node.report);
    assert!(node.report.bytes_skipped >= 2 * 997);
    node.shutdown(T0);
    // The damaged files were rewritten clean.
    let node = Node::boot(&dir, 1, T0, fast());
    assert!(!node.report.has_damage(), "{}", node.report);
    node.shutdown(T0);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_generation_marker_does_not_discard_the_data() {
    let dir = one_shard_dir("marker", 20);
    let marker = file_of(&dir, ".gen");
    fs::write(&marker, b"garbage").expect("write");
    let node = Node::boot(&dir, 1, T0, fast());
    assert_eq!(node.report.bindings, 20, "{}", node.report);
    assert!(!node.report.ignored.is_empty());
    node.shutdown(T0);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn changing_the_worker_count_keeps_every_binding() {
    let dir = tempdir("resplit");
    let mut node = Node::boot(&dir, 3, T0, fast());
    for i in 0..300 {
        let c = format!("sip:u{i}@192.0.2.1");
        node.register(&aor(&format!("u{i}")), &reg(&c, T0 + 3_600_000), T0);
    }
    let want = node.rows(T0);
    node.shutdown(T0);
    for shards in [2, 1, 4, 3] {
        let node = Node::boot(&dir, shards, T0, fast());
        assert_eq!(node.rows(T0), want, "{shards} shards");
        assert_eq!(node.report.bindings, 300);
        let listed = files(&dir);
        // One generation only: the marker and one snapshot per shard.
        assert_eq!(
            listed.iter().filter(|f| f.ends_with(".snap")).count(),
            shards,
            "{listed:?}"
        );
        assert_eq!(listed.iter().filter(|f| f.ends_with(".gen")).count(), 1);
        node.shutdown(T0);
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn bindings_that_expired_while_down_are_dropped_the_rest_keep_their_expiry() {
    let dir = tempdir("downtime");
    let mut node = Node::boot(&dir, 2, T0, fast());
    for i in 0..20u64 {
        let c = format!("sip:u{i}@h");
        node.register(&aor(&format!("u{i}")), &reg(&c, T0 + 1_000 * (i + 1)), T0);
    }
    node.shutdown(T0);
    let later = T0 + 10_500;
    let node = Node::boot(&dir, 2, later, fast());
    assert_eq!(node.report.expired, 10);
    assert_eq!(node.report.bindings, 10);
    let mut left: Vec<u64> = node
        .rows(later)
        .iter()
        .map(|r| r.expires_at - later)
        .collect();
    left.sort_unstable();
    assert_eq!(left, (0..10).map(|i| 500 + 1000 * i).collect::<Vec<_>>());
    node.shutdown(later);
    let _ = fs::remove_dir_all(&dir);
}

/// A journal that cannot be written (its name taken by a directory: fails for root too): the
/// shard keeps serving, the error is counted, the shard is re-snapshotted under a new name, and
/// nothing removed meanwhile comes back.
#[test]
fn a_write_error_is_survived_and_healed_by_a_snapshot() {
    let dir = tempdir("ioerror");
    let cfg = Config {
        window_ms: 50,
        retry_ms: 20,
        ..Config::default()
    };
    let mut node = Node::boot(&dir, 1, T0, cfg.clone());
    // The first journal of generation 1, shard 0, compaction 0.
    let log = dir.join(
        file_of(&dir, ".snap")
            .file_name()
            .expect("name")
            .to_string_lossy()
            .replace(".snap", ".log"),
    );
    fs::create_dir(&log).expect("block the journal");
    let far = T0 + 3_600_000;
    let mut now = T0;
    for i in 0..30 {
        node.register(
            &aor(&format!("u{i}")),
            &reg(&format!("sip:u{i}@h"), far),
            now,
        );
    }
    node.unregister(&aor("u3"), "sip:u3@h", now);
    // The writer fails, deletes the shard's files and asks for a snapshot; the worker retries.
    let stats = node.persist.stats().clone();
    // Bounded by wall time, not by a count of ticks: on a loaded machine the writer thread may
    // take a while to be scheduled.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < give_up {
        now += 25;
        node.tick_all(now);
        std::thread::sleep(std::time::Duration::from_millis(10));
        if stats.write_errors.load(Ordering::Relaxed) > 0 && stats.healthy() {
            break;
        }
    }
    assert!(stats.write_errors.load(Ordering::Relaxed) > 0, "{stats}");
    assert!(stats.last_error().is_some());
    assert!(stats.healthy(), "healed by a snapshot: {stats}");
    node.unregister(&aor("u4"), "sip:u4@h", now);
    let want = node.rows(now);
    assert_eq!(want.len(), 28);
    node.settle(now, &cfg);
    let crashed = crash_copy(&dir, "ioerror-crash");
    node.shutdown(now);
    for d in [&dir, &crashed] {
        let node = Node::boot(d, 1, now, cfg.clone());
        assert_eq!(node.rows(now), want, "{}", d.display());
        node.shutdown(now);
    }
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_dir_all(&crashed);
}

#[test]
fn start_fails_cleanly_when_the_directory_is_a_file() {
    let dir = tempdir("notadir");
    fs::write(&dir, b"x").expect("write");
    let loaded = persist::load(&dir, T0, 1);
    // Listing a file fails; the caller reports it.
    assert!(loaded.is_err());
    let empty = persist::load(&tempdir("missing"), T0, 2).expect("a missing directory is empty");
    assert!(persist::start(&dir, &empty, Config::default()).is_err());
    let _ = fs::remove_file(&dir);
}

#[test]
fn events_journal_their_kinds() {
    // Every event kind is accepted by the journal; the replay tests above check their effect.
    let dir = tempdir("kinds");
    let mut node = Node::boot(&dir, 1, T0, fast());
    let a = aor("k");
    node.register(&a, &reg("sip:k@h", T0 + 1000), T0);
    node.shards[0].expire(T0 + 2000);
    let evs: Vec<Event> = std::iter::from_fn(|| node.shards[0].poll_event()).collect();
    assert!(matches!(evs.as_slice(), [Event::Expired { .. }]));
    for e in &evs {
        node.journals[0].record(e, T0 + 2000);
    }
    node.shutdown(T0 + 2000);
    let node = Node::boot(&dir, 1, T0, fast());
    assert_eq!(node.report.bindings, 0, "{}", node.report);
    node.shutdown(T0);
    let _ = fs::remove_dir_all(&dir);
}

/// A crash while start-up rewrote the table leaves a newer generation without its marker: the
/// complete older one is loaded, and the partial files are deleted.
#[test]
fn an_unfinished_rewrite_is_ignored_in_favour_of_the_complete_generation() {
    let dir = one_shard_dir("unfinished", 30);
    let snap = file_of(&dir, ".snap");
    // Generation 90 got one of two snapshots written, half of it, and no marker.
    let bytes = fs::read(&snap).expect("read");
    fs::write(
        dir.join("g00000090-s0000-c00000000.snap"),
        &bytes[..bytes.len() / 2],
    )
    .expect("write");
    fs::write(dir.join("g00000090-s0001-c00000000.snap.tmp"), b"partial").expect("write");
    let node = Node::boot(&dir, 2, T0, fast());
    assert_eq!(node.report.bindings, 30, "{}", node.report);
    assert!(!node.report.has_damage(), "{}", node.report);
    assert_eq!(node.report.ignored.len(), 2, "{:?}", node.report.ignored);
    node.shutdown(T0);
    let listed = files(&dir);
    assert!(
        listed.iter().all(|f| f.starts_with("g00000091")),
        "{listed:?}"
    );
    let node = Node::boot(&dir, 2, T0, fast());
    assert_eq!(node.report.bindings, 30);
    node.shutdown(T0);
    let _ = fs::remove_dir_all(&dir);
}

/// Random changes (add, refresh, contact change, removal, wildcard, expiry) over a few AORs,
/// with small compaction thresholds, and a crash after each settled batch: the restart holds
/// exactly the table at the crash, never a removed binding.
#[test]
fn random_changes_survive_crashes_exactly() {
    let cfg = Config {
        window_ms: 10,
        compact_min_bytes: 2048,
        snapshot_slots: 2,
        buffer_bytes: 300,
        retry_ms: 10,
        ..Config::default()
    };
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for case in 0..6 {
        let dir = tempdir("random");
        let shards = 1 + case % 3;
        let mut node = Node::boot(&dir, shards, T0, cfg.clone());
        let mut now = T0;
        for batch in 0..3 {
            for _ in 0..60 {
                now += 1 + next(500);
                let a = aor(&format!("r{}", next(6)));
                let i = node.shard(&a);
                let contact = format!("sip:c{}@192.0.2.{}", next(3), next(2));
                let ttl = 1_000 + next(60_000);
                match next(6) {
                    0..=2 => node.register(&a, &reg(&contact, now + ttl), now),
                    3 => {
                        let ids: Vec<_> = node.shards[i]
                            .entries(a.as_bytes(), now)
                            .map(|(id, _)| id)
                            .collect();
                        if let Some(&id) = ids.first() {
                            if next(2) == 0 {
                                node.shards[i].remove(id, now).expect("remove");
                            } else {
                                // The contact changes in place (a flow from a new address).
                                let moved = format!("sip:m{}@192.0.2.9", next(1000));
                                let r = reg(&moved, now + ttl);
                                if node.shards[i]
                                    .find_contact(
                                        a.as_bytes(),
                                        &Uri::parse(moved.as_bytes()).expect("uri"),
                                        now,
                                    )
                                    .is_none()
                                {
                                    node.shards[i].refresh(id, &r, now).expect("refresh");
                                }
                            }
                        }
                    }
                    4 => drop(node.shards[i].remove_aor(a.as_bytes(), now)),
                    _ => drop(node.shards[i].expire(now)),
                }
                node.drain(i, now);
            }
            node.settle(now, &cfg);
            let want = node.rows(now);
            let crashed = crash_copy(&dir, "random-crash");
            let other = 1 + (case + batch) % 4;
            let back = Node::boot(&crashed, other, now, cfg.clone());
            assert_eq!(back.rows(now), want, "case {case} batch {batch}");
            assert!(!back.report.has_damage(), "{}", back.report);
            back.shutdown(now);
            let _ = fs::remove_dir_all(&crashed);
        }
        node.shutdown(now);
        let _ = fs::remove_dir_all(&dir);
    }
}
