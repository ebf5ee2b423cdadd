//! The interposed functions, one file per family.

pub mod cuda;
pub mod dl;
pub mod exec;
pub mod fork;
pub mod malloc;
pub mod mmap;
pub mod shm;

use crate::counters::Kind;
use crate::flush;
use crate::stacks;

/// Captures the current stack and returns its site for `kind`. Inlined into the (cold) event
/// paths: every frame between the hook and the unwinder is one more frame to unwind through.
#[inline(always)]
pub fn site(kind: Kind, sampled: bool) -> Option<u32> {
    stacks::site(kind, sampled)
}

/// After an event: write the file if it is due.
#[inline(always)]
pub fn after_event() {
    flush::maybe();
}
