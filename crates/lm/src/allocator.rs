//! Settings for mimalloc, the allocator of the glassbox binary, suited to a forward pass's
//! buffers: per-layer activations of tens of MB and logits of hundreds of MB, freed and
//! allocated again on every pass.

use libmimalloc_sys::{mi_option_set, mi_option_t};

// Indices in mimalloc's `mi_option_e` (mimalloc.h). The enum is part of its stable ABI: options
// are only ever appended, and retired ones keep their place as `deprecated_*`.
const PURGE_DELAY: mi_option_t = 15;
const ALLOW_THP: mi_option_t = 43;

/// Keep freed memory for reuse instead of returning it to the OS after a second, and do not ask
/// for transparent huge pages. Measured on SmolLM2 (8 x 512 tokens, logits at every position):
/// with the defaults, each pass faulted its 805 MB of logits in afresh, at up to 2 s a time when
/// the kernel had to assemble huge pages; with these settings the unembedding takes 0.75 s at
/// two threads, its GEMM's own time. Call it first thing in `main`.
pub fn keep_freed_memory() {
    // SAFETY: mi_option_set only stores an integer in mimalloc's option table; it is safe to
    // call at any time, and harmless if mimalloc is not the global allocator.
    unsafe {
        mi_option_set(PURGE_DELAY, -1);
        mi_option_set(ALLOW_THP, 0);
    }
}
