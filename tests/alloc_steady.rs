//! Allocations of the registrar in steady state, as a worker runs it: the whole 401 path
//! (parse, screen, nonce, challenges written) allocates nothing, and neither does a refresh with
//! pre-emptive credentials once its events are drained, journaled and given back.
//!
//! A counting global allocator wraps the system one. Only allocations made by the measuring thread
//! while a measurement is open are counted, so the test harness's own threads cannot disturb the
//! count however the tests are scheduled.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // `const`-initialised and without destructors: using them never allocates or registers a
    // destructor, which is what makes them usable from inside the allocator. Both are per thread,
    // so tests measuring in parallel never see each other's allocations.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    if MEASURING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; the counting touches only const
// thread-local `Cell`s, which neither allocate nor unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as above; `ptr` came from this allocator, which is `System` underneath.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns what it returned and how many allocations it made on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    MEASURING.with(|m| m.set(true));
    let out = f();
    MEASURING.with(|m| m.set(false));
    (out, ALLOCATIONS.with(Cell::get) - before)
}

#[path = "../benches/common/mod.rs"]
mod common;
use common::{NOW_MS, nonce, peer, register, registrar};

#[test]
fn steady_state_challenges_and_refreshes_allocate_nothing() {
    let mut reg = registrar();
    let mut out = [0u8; 4096];
    // The 401 path.
    let challenge = register(1, None);
    let _ = reg.handle(NOW_MS, peer(), &challenge, &mut out);
    let (n, count) = allocations(|| reg.handle(NOW_MS, peer(), &challenge, &mut out));
    assert!(n.is_some());
    assert_eq!(count, 0, "the 401 path allocates nothing");
    // Refreshes with pre-emptive credentials, events drained as the server does.
    let nonce = nonce(&mut reg);
    let mut total = 0;
    for k in 2..200u32 {
        let msg = register(k, Some((&nonce, k - 1)));
        let (n, count) = allocations(|| {
            let n = reg.handle(NOW_MS + u64::from(k), peer(), &msg, &mut out);
            while let Some(event) = reg.poll_event() {
                reg.recycle(event);
            }
            n
        });
        assert!(out.starts_with(b"SIP/2.0 200"), "{:?}", n);
        if k > 10 {
            total += count;
        }
    }
    // The refreshed binding's block and the event's copies come from the blocks of the events
    // given back (Registrar::recycle), as the server's workers do.
    assert_eq!(total, 0, "allocations in 189 refreshes");
}
