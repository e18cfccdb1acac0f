//! A counting global allocator: the one way to measure what a test's
//! connections allocate. Include it with `#[path = "common/counting.rs"]
//! mod counting;` in a test binary of its own (one global allocator per
//! binary); `CURRENT` is the bytes allocated now.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) struct Counting;

pub(crate) static CURRENT: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; the
// counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CURRENT.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CURRENT.fetch_add(new_size, Ordering::Relaxed);
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `CURRENT` once it has stopped moving: read after `quiet`, then every
/// 100 ms until three reads in a row agree (at most 5 s more). What a
/// runtime's threads release when a connection goes quiet can come late
/// on a loaded machine, so one read after a fixed wait may come too early.
// (for the binaries that wait for a release: not every one does)
#[allow(dead_code)]
pub(crate) fn settled(quiet: std::time::Duration) -> usize {
    use std::time::{Duration, Instant};
    std::thread::sleep(quiet);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = CURRENT.load(Ordering::Relaxed);
    let mut same = 0;
    while same < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = CURRENT.load(Ordering::Relaxed);
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}
