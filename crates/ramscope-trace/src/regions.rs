//! Live mapped regions (mmap, shm, pinned), so munmap/mremap/cudaFreeHost know what they end.
//!
//! Map and unmap calls are system calls already, and rare next to malloc; a dense array under a
//! spin lock is simple and fast enough (a walk of a few thousand entries is a microsecond).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::counters::{self, Kind};
use crate::{stacks, sys};

const CAP: usize = 1 << 16;

#[derive(Clone, Copy)]
pub struct Region {
    pub start: u64,
    pub len: u64,
    pub kind: Kind,
    pub stack: Option<u32>,
    /// Bytes the kernel mapped for it (pinned: the driver's mappings inside the call).
    pub rounded: u64,
    pub path: Option<u32>,
    pub resident: Option<u64>,
}

static LOCK: sys::SpinLock = sys::SpinLock::new();
static mut REGIONS: *mut Region = std::ptr::null_mut();
static mut COUNT: usize = 0;
pub static FULL: AtomicU64 = AtomicU64::new(0);

pub fn init() -> bool {
    unsafe {
        REGIONS = sys::map(CAP * std::mem::size_of::<Region>()) as *mut Region;
        !REGIONS.is_null()
    }
}

/// Runs `f` on the region array (base pointer, live count) under the lock.
fn with<R>(f: impl FnOnce(*mut Region, &mut usize) -> R) -> R {
    LOCK.lock();
    #[allow(static_mut_refs)]
    let r = unsafe { f(REGIONS, &mut COUNT) };
    LOCK.unlock();
    r
}

unsafe fn all<'a>(base: *mut Region, count: usize) -> &'a mut [Region] {
    std::slice::from_raw_parts_mut(base, count)
}

/// Charges a new region to its kind and site and remembers it.
pub fn add(r: Region) {
    // The site first: the totals' update may copy every site's live bytes as the new peak's.
    if let Some(id) = r.stack {
        stacks::allocated(id, r.len);
    }
    counters::allocated(r.kind, r.len);
    with(|base, count| {
        if *count >= CAP {
            FULL.fetch_add(1, Ordering::Relaxed);
            return;
        }
        unsafe { *base.add(*count) = r };
        *count += 1;
    });
}

fn charge_free(kind: Kind, stack: Option<u32>, bytes: u64) {
    counters::freed(kind, bytes);
    if let Some(id) = stack {
        stacks::freed(id, bytes);
    }
}

/// `[start, start+len)` was unmapped (or mapped over): every tracked byte in it ends.
/// Regions partly inside are trimmed or split.
pub fn unmap(start: u64, len: u64) {
    let end = start.saturating_add(len);
    let mut ended: [(Kind, Option<u32>, u64); 16] = [(Kind::Heap, None, 0); 16];
    let mut n_ended = 0;
    with(|base, count| {
        let mut i = 0;
        while i < *count {
            let regions = unsafe { all(base, *count) };
            let r = regions[i];
            let r_end = r.start.saturating_add(r.len);
            if r_end <= start || r.start >= end {
                i += 1;
                continue;
            }
            let cut_lo = r.start.max(start);
            let cut_hi = r_end.min(end);
            let cut = cut_hi - cut_lo;
            if n_ended < ended.len() {
                ended[n_ended] = (r.kind, r.stack, cut);
                n_ended += 1;
            } else {
                // No room to defer: charge here (charging takes no lock).
                charge_free(r.kind, r.stack, cut);
            }
            let keep_lo = cut_lo - r.start;
            let keep_hi = r_end - cut_hi;
            if keep_lo == 0 && keep_hi == 0 {
                regions[i] = regions[*count - 1];
                *count -= 1;
                continue;
            }
            if keep_lo > 0 {
                regions[i].len = keep_lo;
                if keep_hi > 0 && *count < CAP {
                    let mut tail = r;
                    tail.start = cut_hi;
                    tail.len = keep_hi;
                    tail.rounded = keep_hi;
                    unsafe { *base.add(*count) = tail };
                    *count += 1;
                }
            } else {
                regions[i].start = cut_hi;
                regions[i].len = keep_hi;
            }
            regions[i].rounded = regions[i].rounded.min(regions[i].len);
            i += 1;
        }
    });
    for &(kind, stack, bytes) in &ended[..n_ended] {
        charge_free(kind, stack, bytes);
    }
}

/// Removes the region that starts at `start` and is of one of `kinds` (cudaFreeHost,
/// cudaHostUnregister): true if there was one.
pub fn remove_at(start: u64, kinds: &[Kind]) -> bool {
    let found = with(|base, count| {
        let regions = unsafe { all(base, *count) };
        let i = regions
            .iter()
            .position(|r| r.start == start && kinds.contains(&r.kind))?;
        let r = regions[i];
        regions[i] = regions[*count - 1];
        *count -= 1;
        Some(r)
    });
    match found {
        Some(r) => {
            charge_free(r.kind, r.stack, r.len);
            true
        }
        None => false,
    }
}

/// mremap moved or resized a region. The whole region now belongs to the mremap's site (as a
/// realloc'd block belongs to the realloc's), so its old site's bytes end there.
pub fn remap(old: u64, old_len: u64, new: u64, new_len: u64, stack: Option<u32>) -> bool {
    let found = with(|base, count| {
        let regions = unsafe { all(base, *count) };
        let i = regions.iter().position(|r| r.start == old)?;
        let r = regions[i];
        regions[i].start = new;
        regions[i].len = new_len;
        regions[i].rounded = new_len;
        regions[i].stack = stack;
        Some(r)
    });
    let Some(r) = found else {
        return false;
    };
    let _ = old_len;
    charge_free(r.kind, r.stack, r.len);
    if let Some(id) = stack {
        stacks::allocated(id, new_len);
    }
    counters::allocated(r.kind, new_len);
    true
}

/// A copy of every live region with its residency measured now (when `measure`), for the
/// writer; `f` runs outside the lock.
pub fn for_each(measure: bool, scratch: &mut [u8], mut f: impl FnMut(&Region)) {
    let mut at = 0;
    loop {
        let mut batch: [Option<Region>; 64] = [None; 64];
        let got = with(|base, count| {
            let regions = unsafe { all(base, *count) };
            let mut n = 0;
            for r in regions.iter_mut().skip(at).take(64) {
                if measure {
                    r.resident = sys::resident(r.start as usize, r.len as usize, scratch);
                }
                batch[n] = Some(*r);
                n += 1;
            }
            n
        });
        for r in batch.iter().take(got).flatten() {
            f(r);
        }
        if got < 64 {
            break;
        }
        at += got;
    }
}

pub fn after_fork_in_child() {
    LOCK.reset();
}

pub fn lock_for_fork() {
    LOCK.lock();
}

pub fn unlock_after_fork() {
    LOCK.unlock();
}

/// The kind of the region starting at `start`, if tracked.
pub fn kind_at(start: u64) -> Option<Kind> {
    with(|base, count| {
        let regions = unsafe { all(base, *count) };
        regions.iter().find(|r| r.start == start).map(|r| r.kind)
    })
}
