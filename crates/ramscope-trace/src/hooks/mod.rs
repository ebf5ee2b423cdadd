//! The interposed functions, one file per family.

pub mod cuda;
pub mod dl;
pub mod exec;
pub mod fork;
pub mod malloc;
pub mod mmap;
pub mod shm;

use crate::counters::Kind;
use crate::stacks::{self, Captured, PyFrame};
use crate::{flush, options};

/// Captures the current stack and returns its site for `kind`.
#[inline(never)]
pub fn site(kind: Kind, sampled: bool) -> Option<u32> {
    let mut c = Captured {
        native: [0; options::MAX_NATIVE_DEPTH],
        n_native: 0,
        py: [PyFrame::default(); stacks::MAX_PY],
        n_py: 0,
    };
    stacks::capture(&mut c);
    stacks::intern(&c, kind, sampled)
}

/// After an event: write the file if it is due.
#[inline(always)]
pub fn after_event() {
    flush::maybe();
}
