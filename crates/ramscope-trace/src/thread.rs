//! Per-thread state, held in initial-exec TLS by the C shim (src/shim.c says why).

/// Laid over the shim's 256 zeroed bytes; all-zero is the valid starting state.
#[repr(C)]
pub struct ThreadState {
    /// Non-zero while this thread is inside a hook: allocations made then (by the tracer, or by
    /// libc under it) pass straight through.
    pub depth: u32,
    /// Counter slot + 1 (0: none yet); see counters.rs.
    pub slot: u32,
    /// Nesting of CUDA pinned calls: mmaps inside are the driver's, charged to the pinned event.
    pub pinned_depth: u32,
    /// Events since this thread last asked whether a write is due.
    pub events: u32,
    /// Bytes of small heap allocations until the next sample (Poisson process).
    pub until_sample: i64,
    pub rng: u64,
    /// Bytes the driver mapped inside the current outermost pinned call.
    pub pinned_mapped: u64,
    /// Live-byte changes per kind not yet added to the shared approximate totals (peaks).
    pub pending: [i64; crate::counters::KINDS],
}

const _: () = assert!(std::mem::size_of::<ThreadState>() <= 256);

extern "C" {
    fn ramscope_thread_state() -> *mut u8;
}

#[inline(always)]
pub fn state() -> &'static mut ThreadState {
    // The shim's block is 256 bytes, 64-aligned, zeroed at thread start, and only this
    // thread touches it.
    unsafe { &mut *(ramscope_thread_state() as *mut ThreadState) }
}

/// The re-entrancy guard: at most one live `Guard` per thread.
pub struct Guard(());

impl Guard {
    #[inline(always)]
    pub fn enter() -> Option<Guard> {
        let t = state();
        if t.depth != 0 {
            return None;
        }
        t.depth = 1;
        Some(Guard(()))
    }
}

impl Drop for Guard {
    #[inline(always)]
    fn drop(&mut self) {
        state().depth = 0;
    }
}
