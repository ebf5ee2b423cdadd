//! Exact totals per kind, without a shared cache line on the malloc path.
//!
//! Each thread owns a slot of counters while it lives (released by a thread-exit destructor), so
//! its adds are plain loads and stores to memory no other thread writes. The writer sums the
//! slots. Threads beyond the slots share slot 0 with atomic adds: still exact, only slower.
//!
//! Peaks need a live total across threads at the moment of each event, which per-thread slots
//! cannot give cheaply: each thread therefore batches its live-byte changes and adds them to a
//! shared total once they reach [`BATCH`] bytes (or at once for the rare non-heap kinds). The
//! peak is thus exact to within `BATCH` bytes per thread.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use crate::thread;

pub const KINDS: usize = 7;

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Heap = 0,
    MmapAnon = 1,
    MmapShared = 2,
    MmapFile = 3,
    Shm = 4,
    Pinned = 5,
    PinnedRegistered = 6,
}

impl Kind {
    pub const ALL: [Kind; KINDS] = [
        Kind::Heap,
        Kind::MmapAnon,
        Kind::MmapShared,
        Kind::MmapFile,
        Kind::Shm,
        Kind::Pinned,
        Kind::PinnedRegistered,
    ];

    pub fn name(self) -> &'static [u8] {
        match self {
            Kind::Heap => b"heap",
            Kind::MmapAnon => b"mmap.anon",
            Kind::MmapShared => b"mmap.shared",
            Kind::MmapFile => b"mmap.file",
            Kind::Shm => b"shm",
            Kind::Pinned => b"pinned",
            Kind::PinnedRegistered => b"pinned.registered",
        }
    }

    pub fn from_u8(v: u8) -> Kind {
        Kind::ALL.get(v as usize).copied().unwrap_or(Kind::Heap)
    }

    /// Registered pinned memory was allocated by someone else (and counted there).
    pub fn counts_in_peak(self) -> bool {
        self != Kind::PinnedRegistered
    }
}

#[repr(C)]
struct KindCounters {
    calls: AtomicU64,
    bytes: AtomicU64,
    frees: AtomicU64,
    freed: AtomicU64,
}

#[repr(C, align(64))]
struct Slot {
    owned: AtomicU32,
    kinds: [KindCounters; KINDS],
}

const SLOTS: usize = 256;
pub const BATCH: i64 = 256 * 1024;

#[allow(clippy::declare_interior_mutable_const)]
const ZERO_KIND: KindCounters = KindCounters {
    calls: AtomicU64::new(0),
    bytes: AtomicU64::new(0),
    frees: AtomicU64::new(0),
    freed: AtomicU64::new(0),
};
#[allow(clippy::declare_interior_mutable_const)]
const ZERO_SLOT: Slot = Slot {
    owned: AtomicU32::new(0),
    kinds: [ZERO_KIND; KINDS],
};

static SLOT: [Slot; SLOTS] = [ZERO_SLOT; SLOTS];

/// Live bytes inherited from the parent at fork (the child's counters restart at zero).
static BASE: [AtomicI64; KINDS] = [const { AtomicI64::new(0) }; KINDS];
/// Shared approximate live bytes per kind, and their peaks (see the module comment).
static LIVE: [AtomicI64; KINDS] = [const { AtomicI64::new(0) }; KINDS];
static PEAK: [AtomicI64; KINDS] = [const { AtomicI64::new(0) }; KINDS];
static LIVE_ALL: AtomicI64 = AtomicI64::new(0);
pub static PEAK_ALL: AtomicI64 = AtomicI64::new(0);
pub static PEAK_NS: AtomicU64 = AtomicU64::new(0);
/// The peak at which sites' live bytes were last copied into `at_peak`.
static SNAPSHOT_AT: AtomicI64 = AtomicI64::new(0);

static mut THREAD_KEY: libc::pthread_key_t = 0;

pub fn init() -> bool {
    // The key's destructor returns a thread's slot when it exits.
    unsafe { libc::pthread_key_create(&raw mut THREAD_KEY, Some(release_slot)) == 0 }
}

unsafe extern "C" fn release_slot(_: *mut libc::c_void) {
    let t = thread::state();
    if t.slot > 1 {
        if let Some(s) = SLOT.get(t.slot as usize - 1) {
            s.owned.store(0, Ordering::Release);
        }
    }
    t.slot = 0;
    publish_pending(t);
}

#[inline(always)]
fn my_slot() -> (&'static Slot, bool) {
    let t = thread::state();
    if t.slot == 0 {
        acquire_slot(t);
    }
    match SLOT.get(t.slot as usize - 1) {
        Some(s) if t.slot > 1 => (s, true),
        _ => (&SLOT[0], false),
    }
}

#[cold]
fn acquire_slot(t: &mut thread::ThreadState) {
    t.slot = 1; // shared slot unless a free one is found
    for (i, s) in SLOT.iter().enumerate().skip(1) {
        if s.owned.load(Ordering::Relaxed) == 0
            && s.owned
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            t.slot = i as u32 + 1;
            // Any non-null value makes the destructor run at thread exit.
            unsafe { libc::pthread_setspecific(THREAD_KEY, std::ptr::dangling::<libc::c_void>()) };
            return;
        }
    }
}

#[inline(always)]
fn add(c: &AtomicU64, v: u64, owned: bool) {
    if owned {
        c.store(c.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
    } else {
        c.fetch_add(v, Ordering::Relaxed);
    }
}

/// An allocation of `bytes` of `kind`.
#[inline(always)]
pub fn allocated(kind: Kind, bytes: u64) {
    let (slot, owned) = my_slot();
    let k = &slot.kinds[kind as usize];
    add(&k.calls, 1, owned);
    add(&k.bytes, bytes, owned);
    changed(kind, bytes as i64);
}

/// A free of `bytes` of `kind`.
#[inline(always)]
pub fn freed(kind: Kind, bytes: u64) {
    let (slot, owned) = my_slot();
    let k = &slot.kinds[kind as usize];
    add(&k.frees, 1, owned);
    add(&k.freed, bytes, owned);
    changed(kind, -(bytes as i64));
}

#[inline(always)]
fn changed(kind: Kind, delta: i64) {
    let t = thread::state();
    let p = &mut t.pending[kind as usize];
    *p = p.wrapping_add(delta);
    if kind != Kind::Heap || *p >= BATCH || *p <= -BATCH {
        publish_pending(t);
    }
}

fn publish_pending(t: &mut thread::ThreadState) {
    let mut grew = false;
    for kind in Kind::ALL {
        let d = std::mem::take(&mut t.pending[kind as usize]);
        if d == 0 {
            continue;
        }
        let now = LIVE[kind as usize].fetch_add(d, Ordering::Relaxed) + d;
        PEAK[kind as usize].fetch_max(now, Ordering::Relaxed);
        if kind.counts_in_peak() {
            let all = LIVE_ALL.fetch_add(d, Ordering::Relaxed) + d;
            if d > 0 && all > PEAK_ALL.load(Ordering::Relaxed) {
                PEAK_ALL.fetch_max(all, Ordering::Relaxed);
                PEAK_NS.store(crate::sys::realtime_ns(), Ordering::Relaxed);
                grew = true;
            }
        }
    }
    if grew {
        maybe_snapshot();
        // A process that grows fast may be killed for it (OOM) before its next periodic
        // write: a peak 10% (and 1 MiB) above the last written one is written at once.
        let peak = PEAK_ALL.load(Ordering::Relaxed);
        let written = WRITTEN_PEAK.load(Ordering::Relaxed);
        if peak >= written + (written / 10).max(1 << 20) {
            crate::flush::request_now();
        }
    }
}

/// The peak in the last file written (see `publish_pending`).
pub static WRITTEN_PEAK: AtomicI64 = AtomicI64::new(0);

/// Copies every site's live bytes into `at_peak` when the peak has grown by 1% and 1 MiB
/// since the last copy (so a steadily growing process copies O(log) times, not per event).
fn maybe_snapshot() {
    let peak = PEAK_ALL.load(Ordering::Relaxed);
    let last = SNAPSHOT_AT.load(Ordering::Relaxed);
    if peak < last + (last / 100).max(1 << 20) {
        return;
    }
    if SNAPSHOT_AT
        .compare_exchange(last, peak, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
    {
        crate::stacks::snapshot_at_peak();
    }
}

pub struct Total {
    pub calls: u64,
    pub bytes: u64,
    pub frees: u64,
    pub freed: u64,
    pub live: i64,
    pub peak: i64,
}

/// Exact totals of one kind (sums of the slots, plus what a fork child inherited).
pub fn total(kind: Kind) -> Total {
    let mut t = Total {
        calls: 0,
        bytes: 0,
        frees: 0,
        freed: 0,
        live: 0,
        peak: 0,
    };
    for s in SLOT.iter() {
        let k = &s.kinds[kind as usize];
        t.calls = t.calls.wrapping_add(k.calls.load(Ordering::Relaxed));
        t.bytes = t.bytes.wrapping_add(k.bytes.load(Ordering::Relaxed));
        t.frees = t.frees.wrapping_add(k.frees.load(Ordering::Relaxed));
        t.freed = t.freed.wrapping_add(k.freed.load(Ordering::Relaxed));
    }
    t.live = BASE[kind as usize]
        .load(Ordering::Relaxed)
        .wrapping_add(t.bytes as i64)
        .wrapping_sub(t.freed as i64);
    t.peak = PEAK[kind as usize].load(Ordering::Relaxed).max(t.live);
    t
}

/// In a fork child: what the parent had live stays (it is mapped in the child too), the call
/// counts restart, and every slot but the forking thread's is free again.
pub fn after_fork_in_child() {
    let own = thread::state().slot;
    for kind in Kind::ALL {
        let t = total(kind);
        BASE[kind as usize].store(t.live, Ordering::Relaxed);
        LIVE[kind as usize].store(t.live, Ordering::Relaxed);
        PEAK[kind as usize].store(t.live, Ordering::Relaxed);
    }
    for (i, s) in SLOT.iter().enumerate() {
        for k in s.kinds.iter() {
            k.calls.store(0, Ordering::Relaxed);
            k.bytes.store(0, Ordering::Relaxed);
            k.frees.store(0, Ordering::Relaxed);
            k.freed.store(0, Ordering::Relaxed);
        }
        if i as u32 + 1 != own {
            s.owned.store(0, Ordering::Relaxed);
        }
    }
    let all: i64 = Kind::ALL
        .iter()
        .filter(|k| k.counts_in_peak())
        .map(|&k| BASE[k as usize].load(Ordering::Relaxed))
        .sum();
    LIVE_ALL.store(all, Ordering::Relaxed);
    PEAK_ALL.store(all, Ordering::Relaxed);
    SNAPSHOT_AT.store(all, Ordering::Relaxed);
    PEAK_NS.store(crate::sys::realtime_ns(), Ordering::Relaxed);
    thread::state().pending = [0; KINDS];
}

/// Sums of pending per-thread batches are not visible here; the writer calls this for its own
/// thread so a single-threaded program's file is exact.
pub fn publish_own() {
    publish_pending(thread::state());
}
