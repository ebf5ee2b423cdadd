//! Interned strings (Python file and function names, mapped file paths), written once per file
//! as `str <id> <text>` and referred to by id.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::sys;

const CAP: usize = 1 << 16;
const ARENA: usize = 16 << 20;
pub const MAX_LEN: usize = 1024;

#[repr(C)]
struct Entry {
    hash: AtomicU64,
    /// 0: empty; 1: being written; 2: ready.
    state: AtomicU32,
    len: AtomicU32,
    off: AtomicU64,
}

static mut TABLE: *mut Entry = std::ptr::null_mut();
static mut BYTES: *mut u8 = std::ptr::null_mut();
static USED: AtomicU64 = AtomicU64::new(0);
pub static FULL: AtomicU64 = AtomicU64::new(0);

pub fn init() -> bool {
    let ok = unsafe {
        TABLE = sys::map(CAP * std::mem::size_of::<Entry>()) as *mut Entry;
        BYTES = sys::map(ARENA);
        !TABLE.is_null() && !BYTES.is_null()
    };
    // Python frames whose names cannot be read point at it.
    ok && intern(b"?").is_some()
}

fn entry(i: usize) -> &'static Entry {
    unsafe { &*TABLE.add(i & (CAP - 1)) }
}

pub fn hash(s: &[u8]) -> u64 {
    // FNV-1a, then a finaliser: strings here are short paths and names.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h | 1
}

/// The id of `s` (truncated to [`MAX_LEN`]); `None` when the table is full.
pub fn intern(s: &[u8]) -> Option<u32> {
    let s = &s[..s.len().min(MAX_LEN)];
    let h = hash(s);
    for probe in 0..64usize {
        let i = (h as usize).wrapping_add(probe);
        let e = entry(i);
        let cur = e.hash.load(Ordering::Acquire);
        if cur == 0 {
            if e.hash
                .compare_exchange(0, h, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return fill(e, s, (i & (CAP - 1)) as u32);
            }
            // Lost the race: look at what was put here.
            if e.hash.load(Ordering::Acquire) == h && same(e, s) {
                return Some((i & (CAP - 1)) as u32);
            }
        } else if cur == h && same(e, s) {
            return Some((i & (CAP - 1)) as u32);
        }
    }
    FULL.fetch_add(1, Ordering::Relaxed);
    None
}

fn fill(e: &Entry, s: &[u8], id: u32) -> Option<u32> {
    e.state.store(1, Ordering::Release);
    let off = USED.fetch_add(s.len() as u64, Ordering::Relaxed);
    if off + s.len() as u64 > ARENA as u64 {
        FULL.fetch_add(1, Ordering::Relaxed);
        // Keep the slot usable as an empty name rather than leaving it half made.
        e.len.store(0, Ordering::Relaxed);
        e.off.store(0, Ordering::Relaxed);
        e.state.store(2, Ordering::Release);
        return None;
    }
    unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), BYTES.add(off as usize), s.len()) };
    e.off.store(off, Ordering::Relaxed);
    e.len.store(s.len() as u32, Ordering::Relaxed);
    e.state.store(2, Ordering::Release);
    Some(id)
}

fn same(e: &Entry, s: &[u8]) -> bool {
    // A writer is copying: wait for it (a few hundred bytes at most).
    let mut spins = 0;
    while e.state.load(Ordering::Acquire) != 2 {
        spins += 1;
        if spins > 1_000_000 {
            return false;
        }
        std::hint::spin_loop();
    }
    text(e).is_some_and(|t| t == s)
}

fn text(e: &Entry) -> Option<&'static [u8]> {
    if e.state.load(Ordering::Acquire) != 2 {
        return None;
    }
    let off = e.off.load(Ordering::Relaxed) as usize;
    let len = e.len.load(Ordering::Relaxed) as usize;
    if off + len > ARENA {
        return None;
    }
    Some(unsafe { std::slice::from_raw_parts(BYTES.add(off), len) })
}

/// Strings not yet in `written` (one bit per id), marked as they are passed to `f`.
pub fn for_each_new(written: &mut [u64; CAP / 64], mut f: impl FnMut(u32, &[u8])) {
    let size = std::mem::size_of::<Entry>();
    let base = unsafe { TABLE } as usize;
    let mut pages = [false; CAP * std::mem::size_of::<Entry>() / sys::PAGE + 1];
    sys::for_each_touched_page(base, CAP * size, |page| {
        pages[(page - base) / sys::PAGE] = true
    });
    for i in 0..CAP {
        if !pages[i * size / sys::PAGE] {
            continue;
        }
        if written[i / 64] & (1 << (i % 64)) != 0 {
            continue;
        }
        let e = entry(i);
        if e.hash.load(Ordering::Relaxed) == 0 {
            continue;
        }
        if let Some(t) = text(e) {
            f(i as u32, t);
            written[i / 64] |= 1 << (i % 64);
        }
    }
}

pub const WRITTEN_WORDS: usize = CAP / 64;
