//! fork: the child gets its own file and identity; what is live stays live (see counters.rs).

use crate::{counters, flush, regions, stacks};

extern "C" fn prepare() {
    // No write and no region change may be half done in the child's copy of memory.
    flush::lock_for_fork();
    regions::lock_for_fork();
}

extern "C" fn parent() {
    regions::unlock_after_fork();
    flush::unlock_after_fork();
}

extern "C" fn child() {
    regions::after_fork_in_child();
    counters::after_fork_in_child();
    stacks::after_fork_in_child();
    flush::after_fork_in_child();
    flush::write_now();
}

pub fn register() {
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}
