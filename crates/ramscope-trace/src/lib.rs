//! ramscope's allocation tracer, preloaded (`LD_PRELOAD`) into every process of a traced tree.
//!
//! It interposes the allocation calls (docs/trace-format.md has the list), keeps exact totals of
//! every call, takes stacks for the events that matter (large, mapped, shared, pinned, and small
//! heap allocations sampled by bytes), aggregates per stack inside the process and rewrites one
//! `.rstrace` file per process image now and then, at exit and before `exec`.
//!
//! Rules every line here follows, because this code runs inside someone else's process, inside
//! their `malloc`:
//! - nothing on a hook path allocates (no `Vec`, no `String`, no `format!`); tables live in
//!   memory mapped once with raw syscalls, and the library's own global allocator goes straight
//!   to glibc (`__libc_malloc`), so even std cannot recurse into the hooks;
//! - nothing panics (an unwind through `extern "C"` aborts the target): no indexing without a
//!   bound check that falls back, no `unwrap`;
//! - no lock is taken on the malloc/free path: counters are per-thread slots, tables are
//!   lock-free; the only lock guards mmap regions (rare, syscall-bound events);
//! - the target's output is untouched: the library never writes to stdout or stderr.

#![allow(clippy::missing_safety_doc)]

mod counters;
mod flush;
mod flush_proc;
mod hooks;
mod live;
mod options;
mod out;
mod python;
mod regions;
mod sample;
mod stacks;
mod strings;
mod sys;
mod thread;

use std::sync::atomic::{AtomicU8, Ordering};

/// The library's own allocations (std internals, if any) bypass the hooks.
struct LibcAllocator;

extern "C" {
    fn __libc_malloc(size: usize) -> *mut libc::c_void;
    fn __libc_free(ptr: *mut libc::c_void);
    fn __libc_memalign(align: usize, size: usize) -> *mut libc::c_void;
    fn __libc_realloc(ptr: *mut libc::c_void, size: usize) -> *mut libc::c_void;
    fn __libc_calloc(n: usize, size: usize) -> *mut libc::c_void;
}

unsafe impl std::alloc::GlobalAlloc for LibcAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.align() <= 16 {
            __libc_malloc(layout.size()) as *mut u8
        } else {
            __libc_memalign(layout.align(), layout.size()) as *mut u8
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        __libc_free(ptr as *mut libc::c_void)
    }
}

#[global_allocator]
static ALLOCATOR: LibcAllocator = LibcAllocator;

/// 0: not started; 1: starting (hooks pass through); 2: tracing; 3: off (no trace directory,
/// or the tables could not be mapped): hooks pass through for the life of the image.
static STATE: AtomicU8 = AtomicU8::new(0);
const STARTING: u8 = 1;
const TRACING: u8 = 2;
const OFF: u8 = 3;

/// Whether hooks should record. Starts tracing on first use (a hook can run before the
/// library's constructor: other libraries' constructors allocate first).
#[inline(always)]
pub(crate) fn tracing() -> bool {
    match STATE.load(Ordering::Acquire) {
        TRACING => true,
        0 => start(),
        _ => false,
    }
}

#[cold]
fn start() -> bool {
    if STATE
        .compare_exchange(0, STARTING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return STATE.load(Ordering::Acquire) == TRACING;
    }
    let guard = thread::Guard::enter();
    let ok = guard.is_some() && unsafe { start_tracing() };
    drop(guard);
    STATE.store(if ok { TRACING } else { OFF }, Ordering::Release);
    if ok {
        // The first write makes the process visible in the trace directory at once.
        flush::request_now();
    }
    ok
}

unsafe fn start_tracing() -> bool {
    if !options::read_from_env() {
        return false;
    }
    if !(counters::init() && stacks::init() && strings::init() && live::init() && regions::init()) {
        return false;
    }
    if !flush::init() {
        return false;
    }
    hooks::fork::register();
    true
}

/// Runs when the library is loaded, so tracing starts even in a process that never allocates
/// through the hooks before its first fork.
extern "C" fn on_load() {
    tracing();
}

/// Runs at normal exit (after `atexit` handlers of libraries loaded later): the final write.
extern "C" fn on_unload() {
    if STATE.load(Ordering::Acquire) == TRACING {
        flush::final_write();
    }
}

#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

#[used]
#[link_section = ".fini_array"]
static ON_UNLOAD: extern "C" fn() = on_unload;
