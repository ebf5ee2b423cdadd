//! Heap blocks that carry a stack (every block ≥ min_size, and sampled small ones), by address,
//! so their free is charged to the site that allocated them.
//!
//! Most frees are of blocks without a stack; a counting filter (one byte per bucket of
//! addresses) answers "certainly not here" with one load from a 1 MiB array before the table
//! is probed. The table is open addressing with tombstones; an entry is removed *before* the
//! block is handed back to malloc, so a racing malloc that returns the same address cannot
//! meet the stale entry.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::sys;

// 128 Ki blocks with a stack at once; more are counted as `lost ptr_table_full`. The filter is
// read by every free before anything may have written it, so it is faulted in at start (1 MiB
// of the process's RSS; see sys::map_populated). The table is only read where the filter says
// a block may be, which an insert wrote first, and by the writer, which skips untouched pages.
const CAP: usize = 1 << 17;
const FILTER: usize = 1 << 20;
const EMPTY: u64 = 0;
const TOMBSTONE: u64 = 1;
const PROBES: usize = 256;

#[repr(C)]
struct Slot {
    key: AtomicU64,
    stack: AtomicU32,
    _pad: u32,
    /// Bytes this block stands for at its site (its size, or a sampled estimate).
    weight: AtomicU64,
    /// Usable size when the block is ≥ min_size (its residency is measured), else 0.
    len: AtomicU64,
}

static mut TABLE: *mut Slot = std::ptr::null_mut();
static mut COUNTS: *mut AtomicU8 = std::ptr::null_mut();
pub static FULL: AtomicU64 = AtomicU64::new(0);

pub fn init() -> bool {
    unsafe {
        TABLE = sys::map(CAP * std::mem::size_of::<Slot>()) as *mut Slot;
        COUNTS = sys::map_populated(FILTER) as *mut AtomicU8;
        !TABLE.is_null() && !COUNTS.is_null()
    }
}

#[inline(always)]
fn mix(p: u64) -> u64 {
    (p >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[inline(always)]
fn counter(p: u64) -> &'static AtomicU8 {
    unsafe { &*COUNTS.add((mix(p) >> 44) as usize & (FILTER - 1)) }
}

fn slot(i: usize) -> &'static Slot {
    unsafe { &*TABLE.add(i & (CAP - 1)) }
}

pub fn insert(p: u64, stack: u32, weight: u64, len: u64) -> bool {
    let start = (mix(p) >> 40) as usize;
    for j in 0..PROBES {
        let s = slot(start + j);
        // Try the empty case first, as a write: a first read of an untouched page would map
        // the zero page and make the write that follows flush every CPU's TLB (see sys::map_populated).
        let cur = match s
            .key
            .compare_exchange(EMPTY, p, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => EMPTY,
            Err(TOMBSTONE) => {
                if s.key
                    .compare_exchange(TOMBSTONE, p, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    EMPTY
                } else {
                    continue;
                }
            }
            Err(_) => continue,
        };
        if cur == EMPTY {
            s.stack.store(stack, Ordering::Relaxed);
            s.weight.store(weight, Ordering::Relaxed);
            s.len.store(len, Ordering::Release);
            let c = counter(p);
            // Saturates: a bucket that ever reaches 255 stays "maybe" for good.
            let _ = c.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| {
                (v < 255).then_some(v + 1)
            });
            return true;
        }
    }
    FULL.fetch_add(1, Ordering::Relaxed);
    false
}

/// Removes `p` if it carries a stack: (stack, weight).
#[inline(always)]
pub fn remove(p: u64) -> Option<(u32, u64)> {
    let c = counter(p);
    if c.load(Ordering::Relaxed) == 0 {
        return None;
    }
    remove_slow(p, c)
}

#[cold]
fn remove_slow(p: u64, c: &AtomicU8) -> Option<(u32, u64)> {
    let start = (mix(p) >> 40) as usize;
    for j in 0..PROBES {
        let s = slot(start + j);
        let cur = s.key.load(Ordering::Acquire);
        if cur == EMPTY {
            return None;
        }
        if cur == p {
            let stack = s.stack.load(Ordering::Relaxed);
            let weight = s.weight.load(Ordering::Relaxed);
            s.key.store(TOMBSTONE, Ordering::Release);
            let _ = c.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| {
                (v > 0 && v < 255).then(|| v - 1)
            });
            return Some((stack, weight));
        }
    }
    None
}

/// Every live block measured for residency: (address, usable size, stack).
pub fn for_each_large(mut f: impl FnMut(u64, u64, u32)) {
    let size = std::mem::size_of::<Slot>();
    let base = unsafe { TABLE } as usize;
    sys::for_each_touched_page(base, CAP * size, |page| {
        for i in (page - base) / size..((page - base + sys::PAGE) / size).min(CAP) {
            visit(i, &mut f);
        }
    });
}

fn visit(i: usize, f: &mut impl FnMut(u64, u64, u32)) {
    let s = slot(i);
    let key = s.key.load(Ordering::Acquire);
    if key <= TOMBSTONE {
        return;
    }
    let len = s.len.load(Ordering::Acquire);
    if len > 0 {
        f(key, len, s.stack.load(Ordering::Relaxed));
    }
}
