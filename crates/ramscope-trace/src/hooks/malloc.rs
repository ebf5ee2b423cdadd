//! The malloc family. The real functions are glibc's `__libc_*` entry points, which need no
//! `dlsym` (whose own allocations would arrive here before it returned).
//!
//! Live bytes are `malloc_usable_size`: what the block really holds, and the same number at
//! allocation and at free without remembering the request.

use std::sync::atomic::Ordering;

use libc::{c_int, c_void, size_t};

use super::{after_event, site};
use crate::counters::{self, Kind};
use crate::thread::Guard;
use crate::{live, options, sample, stacks, tracing};

extern "C" {
    fn __libc_malloc(size: size_t) -> *mut c_void;
    fn __libc_calloc(n: size_t, size: size_t) -> *mut c_void;
    fn __libc_realloc(p: *mut c_void, size: size_t) -> *mut c_void;
    fn __libc_free(p: *mut c_void);
    fn __libc_memalign(align: size_t, size: size_t) -> *mut c_void;
    fn __libc_valloc(size: size_t) -> *mut c_void;
    fn __libc_pvalloc(size: size_t) -> *mut c_void;
    fn malloc_usable_size(p: *mut c_void) -> size_t;
}

/// Counts a new block and, when it is large or sampled, charges it to its stack.
#[inline(always)]
fn on_alloc(p: *mut c_void) {
    if p.is_null() || !tracing() {
        return;
    }
    let Some(_guard) = Guard::enter() else {
        return;
    };
    let usable = unsafe { malloc_usable_size(p) } as u64;
    // The site first: the totals' update may copy every site's live bytes as the new peak's.
    if usable >= options::MIN_SIZE.load(Ordering::Relaxed) {
        record(p, usable, usable, false);
    } else if let Some(weight) = sample::weight(usable) {
        record(p, weight, 0, true);
    }
    counters::allocated(Kind::Heap, usable);
    after_event();
}

#[cold]
#[inline(never)]
fn record(p: *mut c_void, weight: u64, len: u64, sampled: bool) {
    let Some(id) = site(Kind::Heap, sampled) else {
        return;
    };
    stacks::allocated(id, weight);
    if !live::insert(p as u64, id, weight, len) {
        // Untracked from here: its free cannot find it, so do not count it live at the site.
        stacks::freed(id, weight);
    }
}

/// Uncounts a block about to be freed (before the real free: see live.rs).
#[inline(always)]
fn on_free(p: *mut c_void) {
    if p.is_null() || !tracing() {
        return;
    }
    let Some(_guard) = Guard::enter() else {
        return;
    };
    let usable = unsafe { malloc_usable_size(p) } as u64;
    counters::freed(Kind::Heap, usable);
    if let Some((id, weight)) = live::remove(p as u64) {
        stacks::freed(id, weight);
    }
}

#[no_mangle]
pub unsafe extern "C" fn malloc(size: size_t) -> *mut c_void {
    let p = __libc_malloc(size);
    on_alloc(p);
    p
}

#[no_mangle]
pub unsafe extern "C" fn calloc(n: size_t, size: size_t) -> *mut c_void {
    let p = __libc_calloc(n, size);
    on_alloc(p);
    p
}

#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    on_free(p);
    __libc_free(p);
}

#[no_mangle]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    free(p)
}

#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: size_t) -> *mut c_void {
    if p.is_null() {
        return malloc(size);
    }
    if !tracing() || crate::thread::state().depth != 0 {
        return __libc_realloc(p, size);
    }
    // The old block is uncounted first; if realloc fails it is still there, and is counted
    // again (as an allocation at this realloc, which is where it now lives).
    on_free(p);
    let q = __libc_realloc(p, size);
    if q.is_null() {
        if size != 0 {
            on_alloc(p);
        }
        return q;
    }
    on_alloc(q);
    q
}

#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: size_t, size: size_t) -> *mut c_void {
    match n.checked_mul(size) {
        Some(total) => realloc(p, total),
        None => {
            crate::sys::set_errno(libc::ENOMEM);
            std::ptr::null_mut()
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn memalign(align: size_t, size: size_t) -> *mut c_void {
    let p = __libc_memalign(align, size);
    on_alloc(p);
    p
}

#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: size_t, size: size_t) -> *mut c_void {
    memalign(align, size)
}

#[no_mangle]
pub unsafe extern "C" fn valloc(size: size_t) -> *mut c_void {
    let p = __libc_valloc(size);
    on_alloc(p);
    p
}

#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: size_t) -> *mut c_void {
    let p = __libc_pvalloc(size);
    on_alloc(p);
    p
}

#[no_mangle]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    align: size_t,
    size: size_t,
) -> c_int {
    if out.is_null() {
        return libc::EINVAL;
    }
    if align == 0
        || !align.is_power_of_two()
        || !align.is_multiple_of(std::mem::size_of::<*mut c_void>())
    {
        return libc::EINVAL;
    }
    let errno = crate::sys::errno();
    let p = __libc_memalign(align, size);
    if p.is_null() {
        crate::sys::set_errno(errno);
        return libc::ENOMEM;
    }
    *out = p;
    on_alloc(p);
    0
}
