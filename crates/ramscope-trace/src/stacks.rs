//! Stacks, and the per-stack totals the process keeps instead of an event log.
//!
//! A stack is the native return addresses at the event (innermost first, below the tracer's
//! own frames) plus, in a Python process, the calling thread's Python frames. Each distinct
//! (stack, kind, sampled) is one entry of a lock-free open-addressing table, holding the site's
//! calls, bytes, frees, live bytes and peaks. Frames live in an append-only arena.

use std::sync::atomic::{AtomicI64, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::counters::Kind;
use crate::{options, python, sys};

// 64 Ki distinct stacks (about 6 MiB of entries when all are used).
const CAP: usize = 1 << 16;
const ARENA_WORDS: usize = 16 << 20;
pub const MAX_PY: usize = 96;

#[derive(Clone, Copy, Default)]
pub struct PyFrame {
    pub file: u32,
    pub func: u32,
    pub line: u32,
}

pub struct Captured {
    pub native: [u64; options::MAX_NATIVE_DEPTH],
    pub n_native: usize,
    pub py: [PyFrame; MAX_PY],
    pub n_py: usize,
}

#[repr(C)]
pub struct Entry {
    key: AtomicU64,
    /// 0: empty; 1: being written; 2: ready.
    state: AtomicU32,
    kind: AtomicU8,
    sampled: AtomicU8,
    n_native: AtomicU16,
    n_py: AtomicU32,
    off: AtomicU32,
    pub calls: AtomicU64,
    pub bytes: AtomicU64,
    pub frees: AtomicU64,
    pub live: AtomicI64,
    pub peak: AtomicI64,
    pub at_peak: AtomicI64,
    /// Resident bytes of its large live blocks and regions at the last measurement; u64::MAX:
    /// not measured.
    pub resident: AtomicU64,
    /// Scratch for the writer's resident sum.
    pub resident_sum: AtomicU64,
}

static mut TABLE: *mut Entry = std::ptr::null_mut();
static mut ARENA: *mut u64 = std::ptr::null_mut();
/// Ids of used entries, in order of creation (id + 1; 0 while being written), so walks touch
/// only what is used rather than the whole table.
static mut IDS: *mut AtomicU32 = std::ptr::null_mut();
static ARENA_USED: AtomicU64 = AtomicU64::new(0);
pub static TABLE_FULL: AtomicU64 = AtomicU64::new(0);
pub static ARENA_FULL: AtomicU64 = AtomicU64::new(0);
pub static COUNT: AtomicU64 = AtomicU64::new(0);

/// The address range of this library's code: its frames are not part of the target's stack.
static OWN_LO: AtomicU64 = AtomicU64::new(0);
static OWN_HI: AtomicU64 = AtomicU64::new(0);

pub fn init() -> bool {
    unsafe {
        TABLE = sys::map(CAP * std::mem::size_of::<Entry>()) as *mut Entry;
        ARENA = sys::map(ARENA_WORDS * 8) as *mut u64;
        IDS = sys::map(CAP * 4) as *mut AtomicU32;
        if TABLE.is_null() || ARENA.is_null() || IDS.is_null() {
            return false;
        }
    }
    find_own_code();
    true
}

pub fn entry(id: u32) -> &'static Entry {
    unsafe { &*TABLE.add(id as usize & (CAP - 1)) }
}

type UnwindFn = extern "C" fn(ctx: *mut libc::c_void, arg: *mut libc::c_void) -> libc::c_int;
extern "C" {
    fn _Unwind_Backtrace(f: UnwindFn, arg: *mut libc::c_void) -> libc::c_int;
    fn _Unwind_GetIP(ctx: *mut libc::c_void) -> usize;
}

struct Walk<'a> {
    out: &'a mut [u64],
    n: usize,
    max: usize,
    skipping: bool,
}

extern "C" fn on_frame(ctx: *mut libc::c_void, arg: *mut libc::c_void) -> libc::c_int {
    let w = unsafe { &mut *(arg as *mut Walk) };
    let ip = unsafe { _Unwind_GetIP(ctx) } as u64;
    if ip == 0 {
        return 5; // _URC_END_OF_STACK
    }
    if w.skipping {
        if ip >= OWN_LO.load(Ordering::Relaxed) && ip < OWN_HI.load(Ordering::Relaxed) {
            return 0;
        }
        w.skipping = false;
    }
    if w.n >= w.max || w.n >= w.out.len() {
        return 4; // _URC_NORMAL_STOP
    }
    w.out[w.n] = ip;
    w.n += 1;
    0
}

/// Up to `max` native return addresses of the current event, below the tracer's own frames.
#[inline(always)]
fn unwind(c: &mut Captured, max: usize) {
    let mut w = Walk {
        out: &mut c.native,
        n: 0,
        max,
        skipping: true,
    };
    if max > 0 {
        unsafe { _Unwind_Backtrace(on_frame, &mut w as *mut Walk as *mut libc::c_void) };
    }
    c.n_native = w.n;
}

/// How many native frames, with the Python frames, name a stack in [`STACK_CACHE`].
const KEY_FRAMES: usize = 6;

/// Recently seen stacks by a short key: the innermost [`KEY_FRAMES`] native frames and every
/// Python frame. DWARF unwinding costs about a microsecond per frame; most events repeat a
/// stack seen before, and the short key finds it for a sixth of the unwinding. Two stacks
/// that agree on the key (the same six innermost native frames and the same Python frames)
/// but differ further out are counted as the first one seen.
static STACK_CACHE: [AtomicU64; 8192] = [const { AtomicU64::new(0) }; 8192];

/// The site of the current event's stack for `kind`, made if new.
#[inline(always)]
pub fn site(kind: Kind, sampled: bool) -> Option<u32> {
    let mut c = Captured {
        native: [0; options::MAX_NATIVE_DEPTH],
        n_native: 0,
        py: [PyFrame::default(); MAX_PY],
        n_py: 0,
    };
    let depth = options::NATIVE_DEPTH.load(Ordering::Relaxed) as usize;
    let short = depth.min(KEY_FRAMES);
    unwind(&mut c, short);
    c.n_py = python::capture(&mut c.py);
    let short_key = key(&c, kind, sampled);
    let slot = &STACK_CACHE[(short_key as usize) & (STACK_CACHE.len() - 1)];
    let cached = slot.load(Ordering::Relaxed);
    // Ids are below 2^16 (CAP): the high bits hold the key's.
    if cached != 0 && cached & !0xffff == short_key & !0xffff {
        return Some((cached & 0xffff) as u32);
    }
    if depth > short && c.n_native == short {
        unwind(&mut c, depth);
    }
    let id = intern(&c, kind, sampled)?;
    slot.store((short_key & !0xffff) | id as u64, Ordering::Relaxed);
    Some(id)
}

const _: () = assert!(CAP <= 1 << 16);

fn key(c: &Captured, kind: Kind, sampled: bool) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3 ^ ((kind as u64) << 1) ^ sampled as u64;
    let mut mix = |w: u64| {
        h = (h.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    };
    for &ip in &c.native[..c.n_native] {
        mix(ip);
    }
    mix(0xfeed);
    for f in &c.py[..c.n_py] {
        mix(((f.file as u64) << 32) | f.func as u64);
        mix(f.line as u64);
    }
    h ^= h >> 29;
    h | 1
}

/// The table entry for this stack, kind and sampling, made if new.
pub fn intern(c: &Captured, kind: Kind, sampled: bool) -> Option<u32> {
    let k = key(c, kind, sampled);
    for probe in 0..128usize {
        let id = ((k as usize).wrapping_add(probe) & (CAP - 1)) as u32;
        let e = entry(id);
        // Claiming an empty slot is tried first, as a write (see live::insert for why).
        match e
            .key
            .compare_exchange(0, k, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                fill(e, id, c, kind, sampled);
                return Some(id);
            }
            Err(cur) if cur == k => return wait_ready(e).then_some(id),
            Err(_) => {}
        }
    }
    TABLE_FULL.fetch_add(1, Ordering::Relaxed);
    None
}

fn wait_ready(e: &Entry) -> bool {
    for _ in 0..1_000_000 {
        if e.state.load(Ordering::Acquire) == 2 {
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

fn fill(e: &Entry, id: u32, c: &Captured, kind: Kind, sampled: bool) {
    e.state.store(1, Ordering::Release);
    let words = c.n_native + 2 * c.n_py;
    let off = ARENA_USED.fetch_add(words as u64, Ordering::Relaxed);
    let (n_native, n_py) = if off + words as u64 > ARENA_WORDS as u64 {
        ARENA_FULL.fetch_add(1, Ordering::Relaxed);
        (0, 0)
    } else {
        unsafe {
            let base = ARENA.add(off as usize);
            std::ptr::copy_nonoverlapping(c.native.as_ptr(), base, c.n_native);
            for (j, f) in c.py[..c.n_py].iter().enumerate() {
                *base.add(c.n_native + 2 * j) = ((f.file as u64) << 32) | f.func as u64;
                *base.add(c.n_native + 2 * j + 1) = f.line as u64;
            }
        }
        (c.n_native, c.n_py)
    };
    e.kind.store(kind as u8, Ordering::Relaxed);
    e.sampled.store(sampled as u8, Ordering::Relaxed);
    e.n_native.store(n_native as u16, Ordering::Relaxed);
    e.n_py.store(n_py as u32, Ordering::Relaxed);
    e.off.store(off as u32, Ordering::Relaxed);
    e.resident.store(u64::MAX, Ordering::Relaxed);
    e.state.store(2, Ordering::Release);
    let n = COUNT.fetch_add(1, Ordering::AcqRel) as usize;
    if n < CAP {
        unsafe { (*IDS.add(n)).store(id + 1, Ordering::Release) };
    }
}

/// An allocation of `bytes` at site `id`.
pub fn allocated(id: u32, bytes: u64) {
    let e = entry(id);
    e.calls.fetch_add(1, Ordering::Relaxed);
    e.bytes.fetch_add(bytes, Ordering::Relaxed);
    let live = e.live.fetch_add(bytes as i64, Ordering::Relaxed) + bytes as i64;
    e.peak.fetch_max(live, Ordering::Relaxed);
}

/// A free of `bytes` allocated at site `id`.
pub fn freed(id: u32, bytes: u64) {
    let e = entry(id);
    e.frees.fetch_add(1, Ordering::Relaxed);
    e.live.fetch_sub(bytes as i64, Ordering::Relaxed);
}

/// A ready entry's fields, for the writer.
pub struct Site<'a> {
    pub id: u32,
    pub kind: Kind,
    pub sampled: bool,
    pub native: &'a [u64],
    /// Pairs of words: (file << 32 | func, line).
    pub py: &'a [u64],
    pub entry: &'a Entry,
}

/// Ids of every entry made so far.
fn used() -> impl Iterator<Item = u32> {
    let n = (COUNT.load(Ordering::Acquire) as usize).min(CAP);
    (0..n).filter_map(|j| match unsafe { (*IDS.add(j)).load(Ordering::Acquire) } {
        0 => None,
        id => Some(id - 1),
    })
}

/// A ready entry's view (None while it is being written).
fn site_of(i: u32) -> Option<Site<'static>> {
    let e = entry(i);
    if e.key.load(Ordering::Relaxed) == 0 || e.state.load(Ordering::Acquire) != 2 {
        return None;
    }
    let off = e.off.load(Ordering::Relaxed) as usize;
    let n_native = e.n_native.load(Ordering::Relaxed) as usize;
    let n_py = e.n_py.load(Ordering::Relaxed) as usize;
    if off + n_native + 2 * n_py > ARENA_WORDS {
        return None;
    }
    let words = unsafe { std::slice::from_raw_parts(ARENA.add(off), n_native + 2 * n_py) };
    Some(Site {
        id: i,
        kind: Kind::from_u8(e.kind.load(Ordering::Relaxed)),
        sampled: e.sampled.load(Ordering::Relaxed) != 0,
        native: &words[..n_native],
        py: &words[n_native..],
        entry: e,
    })
}

pub fn for_each(mut f: impl FnMut(Site)) {
    for i in used() {
        if let Some(s) = site_of(i) {
            f(s);
        }
    }
}

/// The entries made since `*next` (in order of creation), for text that is written once and
/// kept: a stack never changes. Stops at an entry still being written (it comes next time).
pub fn for_each_new(next: &mut usize, mut f: impl FnMut(Site)) {
    let n = (COUNT.load(Ordering::Acquire) as usize).min(CAP);
    while *next < n {
        let id = unsafe { (*IDS.add(*next)).load(Ordering::Acquire) };
        let Some(s) = id.checked_sub(1).and_then(site_of) else {
            return;
        };
        f(s);
        *next += 1;
    }
}

/// Every site's live bytes become its `at_peak` (the process has just reached a new peak).
pub fn snapshot_at_peak() {
    for i in used() {
        let e = entry(i);
        {
            e.at_peak
                .store(e.live.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

/// In a fork child: what is live stays live (the memory is mapped in the child too); calls,
/// bytes and frees restart so the tree's totals do not count the parent's calls twice.
pub fn after_fork_in_child() {
    for i in used() {
        let e = entry(i);
        {
            let live = e.live.load(Ordering::Relaxed);
            e.calls.store(0, Ordering::Relaxed);
            e.bytes.store(0, Ordering::Relaxed);
            e.frees.store(0, Ordering::Relaxed);
            e.peak.store(live, Ordering::Relaxed);
            e.at_peak.store(live, Ordering::Relaxed);
        }
    }
}

fn find_own_code() {
    // The PT_LOAD segments of the object that holds this function.
    struct Search {
        addr: u64,
        lo: u64,
        hi: u64,
    }
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        let s = &mut *(data as *mut Search);
        let info = &*info;
        let mut lo = u64::MAX;
        let mut hi = 0;
        for j in 0..info.dlpi_phnum as usize {
            let ph = &*info.dlpi_phdr.add(j);
            if ph.p_type == libc::PT_LOAD {
                let start = info.dlpi_addr + ph.p_vaddr;
                lo = lo.min(start);
                hi = hi.max(start + ph.p_memsz);
            }
        }
        if s.addr >= lo && s.addr < hi {
            s.lo = lo;
            s.hi = hi;
            return 1;
        }
        0
    }
    let mut s = Search {
        addr: find_own_code as *const () as usize as u64,
        lo: 0,
        hi: 0,
    };
    unsafe { libc::dl_iterate_phdr(Some(each), &mut s as *mut Search as *mut libc::c_void) };
    OWN_LO.store(s.lo, Ordering::Relaxed);
    OWN_HI.store(s.hi, Ordering::Relaxed);
}
