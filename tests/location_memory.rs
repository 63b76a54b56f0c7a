//! Bytes per binding of the location shard at one million AORs of one binding each, measured
//! with a counting global allocator.
//!
//! Two numbers per profile: the bytes the shard asked for (`requested`), and an estimate of what
//! glibc malloc spends on them (`malloc`: each block rounded up to 16 bytes with an 8-byte
//! header, 32 bytes at least), which is closer to resident memory.
//!
//! Run (about 2 s in release; ignored in debug builds, where it takes longer):
//! `cargo test --release --test location_memory -- --ignored --nocapture`
//!
//! The `unsafe` here is the `GlobalAlloc` impl, which cannot be written without it; it forwards
//! every call to the system allocator unchanged and only counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, Ordering};

use sipreg::location::{Aor, Registration, Shard};
use sipreg::sip::{Transport, Uri};

struct Counting;

static REQUESTED: AtomicIsize = AtomicIsize::new(0);
static MALLOC: AtomicIsize = AtomicIsize::new(0);

/// What glibc malloc uses for a request of `size` bytes on 64-bit Linux.
fn chunk(size: usize) -> isize {
    ((size + 8).div_ceil(16) * 16).max(32) as isize
}

fn count(size: usize, sign: isize) {
    REQUESTED.fetch_add(sign * size as isize, Ordering::Relaxed);
    MALLOC.fetch_add(sign * chunk(size), Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments, which upholds the
// `GlobalAlloc` contract exactly as `System` does; the counters have no effect on memory.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), -1);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout.size(), -1);
        count(new_size, 1);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: u64 = 1_000_000;
/// Registrations spread over an hour, each for an hour: the timers fill the whole wheel.
const HOUR_MS: u64 = 3_600_000;

fn snapshot() -> (isize, isize) {
    (
        REQUESTED.load(Ordering::Relaxed),
        MALLOC.load(Ordering::Relaxed),
    )
}

struct Profile {
    name: &'static str,
    outbound: bool,
}

/// Fills a shard with `N` AORs of one binding each, refreshes every binding once, and returns
/// bytes per binding after the fill and after the refresh round, as (requested, malloc).
fn measure(p: &Profile) -> [(f64, f64); 2] {
    let source: SocketAddr = "192.0.2.14:5060".parse().expect("address");
    let base = snapshot();
    let mut shard = Shard::new();
    let mut ids = Vec::with_capacity(N as usize);
    let ids_bytes = (N as usize * size_of::<sipreg::location::BindingId>()) as isize;
    let per_binding = |s: (isize, isize)| {
        let requested = (s.0 - base.0 - ids_bytes) as f64 / N as f64;
        let malloc = (s.1 - base.1 - chunk(ids_bytes as usize)) as f64 / N as f64;
        (requested, malloc)
    };
    let mut once = |i: u64, shard: &mut Shard, now: u64, refresh: Option<usize>| {
        let user = format!("u{:06}", i % 1_000_000);
        let to = format!("sip:{user}@example.com");
        let contact = format!("sip:{user}@192.0.2.14:5060;transport=udp");
        let call_id = format!("{:08x}-4b1c-9a2e-8d3f-{:012x}", i, i * 7919);
        let instance = format!("\"<urn:uuid:00000000-0000-1000-8000-{i:012x}>\"");
        let params = format!(";+sip.instance={instance};reg-id=1");
        let reg = Registration {
            contact: contact.as_bytes(),
            params: if p.outbound { params.as_bytes() } else { b"" },
            path: &[],
            instance: p.outbound.then_some(instance.as_bytes()),
            reg_id: p.outbound.then_some(1),
            q: 1000,
            expires_at: now + HOUR_MS,
            call_id: call_id.as_bytes(),
            cseq: 1 + refresh.map_or(0, |_| 1),
            source,
            transport: Transport::Udp,
            connection: None,
        };
        match refresh {
            None => {
                let uri = Uri::parse(to.as_bytes()).expect("AOR parses");
                let aor = Aor::from_uri(uri.sip().expect("sip"));
                ids.push(shard.insert(&aor, &reg, now).expect("insert"));
            }
            Some(k) => {
                let id = ids.get(k).copied().expect("id of an inserted binding");
                shard.refresh(id, &reg, now).expect("refresh");
            }
        }
        while shard.poll_event().is_some() {}
    };
    for i in 0..N {
        let now = i * HOUR_MS / N;
        once(i, &mut shard, now, None);
        if i % 1000 == 0 {
            shard.expire(now);
        }
    }
    let filled = per_binding(snapshot());
    assert_eq!(shard.len(), N as usize);
    // Everyone re-registers half an hour later: the old timers stay until they come due.
    for i in 0..N {
        let now = HOUR_MS / 2 + i * HOUR_MS / N;
        once(i, &mut shard, now, Some(i as usize));
        if i % 1000 == 0 {
            shard.expire(now);
        }
    }
    let refreshed = per_binding(snapshot());
    assert_eq!(shard.len(), N as usize);
    drop(ids);
    drop(shard);
    [filled, refreshed]
}

#[test]
#[cfg_attr(debug_assertions, ignore = "slow in debug; run with --release")]
fn bytes_per_binding_at_one_million() {
    let profiles = [
        Profile {
            name: "plain (contact + Call-ID)",
            outbound: false,
        },
        Profile {
            name: "outbound (+ instance, reg-id, params)",
            outbound: true,
        },
    ];
    let mut plain = 0.0;
    for p in &profiles {
        let [(r, m), (rr, rm)] = measure(p);
        println!(
            "{}: {r:.1} B/binding requested, {m:.1} B malloc; after a refresh round \
             {rr:.1} B requested, {rm:.1} B malloc",
            p.name
        );
        if !p.outbound {
            plain = r.max(rr);
        }
    }
    assert!(
        plain <= 256.0,
        "{plain:.1} bytes per binding, over the 256 budget"
    );
}
