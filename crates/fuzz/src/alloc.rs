//! An allocator wrapper that watches what one fuzz execution allocates.
//!
//! While a thread is armed (inside [`crate::run`]'s call of the parser), every allocation made on
//! that thread is counted: the live total and its peak, which the harness compares with the
//! target's budget after the execution. A single request above the hard cap is refused after a
//! message naming the target and the execution to replay, so a header that claims 2^60 elements
//! stops the test with a diagnosis instead of taking the machine's memory (the refusal makes
//! Rust abort the process: an allocation failure cannot be unwound).
//!
//! Register it in the test binary: `#[global_allocator] static A: GuardAlloc = GuardAlloc;`.
//! Allocations on other threads (a parser's rayon workers) are not counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

pub struct GuardAlloc;

struct State {
    armed: Cell<bool>,
    live: Cell<isize>,
    peak: Cell<isize>,
    cap: Cell<usize>,
    target: Cell<&'static str>,
    exec: Cell<u64>,
}

thread_local! {
    static STATE: State = const {
        State {
            armed: Cell::new(false),
            live: Cell::new(0),
            peak: Cell::new(0),
            cap: Cell::new(usize::MAX),
            target: Cell::new(""),
            exec: Cell::new(0),
        }
    };
}

/// Start counting on this thread: live and peak bytes from zero, requests above `cap` refused.
pub(crate) fn arm(target: &'static str, exec: u64, cap: usize) {
    let _ = STATE.try_with(|s| {
        s.live.set(0);
        s.peak.set(0);
        s.cap.set(cap);
        s.target.set(target);
        s.exec.set(exec);
        s.armed.set(true);
    });
}

/// Stop counting; returns the peak of live bytes since [`arm`].
pub(crate) fn disarm() -> usize {
    STATE
        .try_with(|s| {
            s.armed.set(false);
            s.peak.get().max(0) as usize
        })
        .unwrap_or(0)
}

/// Writes `n` in decimal into `buf`, returning the digits.
fn digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Counts `added` new live bytes for a request of `size` bytes (the whole block, for a
/// reallocation); false when it must be refused. Never allocates.
fn admit(size: usize, added: usize) -> bool {
    STATE
        .try_with(|s| {
            if !s.armed.get() {
                return true;
            }
            if size > s.cap.get() {
                s.armed.set(false);
                let mut err = std::io::stderr().lock();
                let (mut a, mut b, mut c) = ([0u8; 20], [0u8; 20], [0u8; 20]);
                let _ = err.write_all(b"\nglassbox-fuzz: target ");
                let _ = err.write_all(s.target.get().as_bytes());
                let _ = err.write_all(b" asked for one allocation of ");
                let _ = err.write_all(digits(size as u64, &mut a));
                let _ = err.write_all(b" bytes (cap ");
                let _ = err.write_all(digits(s.cap.get() as u64, &mut b));
                let _ = err.write_all(b") at execution ");
                let _ = err.write_all(digits(s.exec.get(), &mut c));
                let _ = err.write_all(b"; rerun with the same GLASSBOX_FUZZ_EXECS and GLASSBOX_FUZZ_DUMP=");
                let _ = err.write_all(s.target.get().as_bytes());
                let _ = err.write_all(b":");
                let _ = err.write_all(digits(s.exec.get(), &mut c));
                let _ = err.write_all(b" to write out its input\n");
                return false;
            }
            let live = s.live.get().saturating_add(added as isize);
            s.live.set(live);
            if live > s.peak.get() {
                s.peak.set(live);
            }
            true
        })
        .unwrap_or(true)
}

fn release(size: usize) {
    let _ = STATE.try_with(|s| {
        if s.armed.get() {
            s.live.set(s.live.get().saturating_sub(size as isize));
        }
    });
}

unsafe impl GlobalAlloc for GuardAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !admit(layout.size(), layout.size()) {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !admit(layout.size(), layout.size()) {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        release(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() && !admit(new_size, new_size - layout.size()) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if new_size < layout.size() {
            release(layout.size() - new_size);
        }
        p
    }
}
