//! The allocator of `gateway-bench`: mimalloc (as in the data plane and the control plane), counting the allocations of the threads
//! that asked for it ([`count`]) and nothing else. Until the first [`count`] every allocation costs
//! one relaxed atomic load more than mimalloc's, so the baseline servers this binary
//! runs (`baseline-hyper`, `baseline-forwarder`) are not measurably slowed.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc as Inner;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Allocations and bytes requested on one thread while it was counting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls to `alloc`, `alloc_zeroed` and `realloc`.
    pub allocations: u64,
    /// Bytes they asked for.
    pub bytes: u64,
}

static ANY_COUNTING: AtomicBool = AtomicBool::new(false);

thread_local! {
    // Const-initialized and without destructors: reading them never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

fn note(size: usize) {
    if !ANY_COUNTING.load(Ordering::Relaxed) {
        return;
    }
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
        let _ = BYTES.try_with(|b| b.set(b.get() + size as u64));
    }
}

/// The global allocator (see the module docs).
pub struct Counting;

// SAFETY: every method forwards to `MiMalloc` with the same arguments; counting touches only
// thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract is `Inner.alloc`'s.
        unsafe { Inner.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { Inner.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr` and `layout` come from this allocator, which is `MiMalloc`'s.
        unsafe { Inner.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { Inner.dealloc(ptr, layout) }
    }
}

/// Runs `f`, counting the allocations made on this thread while it runs.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, Counts) {
    ANY_COUNTING.store(true, Ordering::Relaxed);
    let before = Counts {
        allocations: ALLOCATIONS.with(Cell::get),
        bytes: BYTES.with(Cell::get),
    };
    let was = COUNTING.with(|c| c.replace(true));
    let r = f();
    COUNTING.with(|c| c.set(was));
    let counts = Counts {
        allocations: ALLOCATIONS.with(Cell::get) - before.allocations,
        bytes: BYTES.with(Cell::get) - before.bytes,
    };
    (r, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_this_threads_allocations_only() {
        let (v, counts) = count(|| {
            let v: Vec<u8> = Vec::with_capacity(100);
            // Another thread's allocations are not this one's.
            std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 4096])))
                .join()
                .ok();
            v
        });
        assert_eq!(v.capacity(), 100);
        // The Vec, plus whatever spawning a thread allocates here; never the 4096 bytes there.
        assert!(counts.allocations >= 1, "{counts:?}");
        assert!(
            counts.bytes < 4096,
            "the other thread's allocation was counted: {counts:?}"
        );
        let (_, none) = count(|| 1 + 1);
        assert_eq!(none, Counts::default());
        let (_, one) = count(|| drop(std::hint::black_box(String::from("twelve bytes"))));
        assert_eq!(
            one,
            Counts {
                allocations: 1,
                bytes: 12
            }
        );
    }
}
