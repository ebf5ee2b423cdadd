//! Raw system calls and small helpers that never allocate and never enter the hooks.
//!
//! The library exports `mmap`, `munmap` and `mremap` itself, so its own memory is mapped with
//! the `syscall` instruction directly: calling `libc::mmap` from here would bind to the
//! library's own hook.

use std::sync::atomic::{AtomicBool, Ordering};

pub const PAGE: usize = 4096;

fn map_with(len: usize, extra: libc::c_int) -> *mut u8 {
    let p = unsafe {
        libc::syscall(
            libc::SYS_mmap,
            0usize,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra,
            -1i32,
            0usize,
        )
    };
    if p < 0 || p as usize == libc::MAP_FAILED as usize {
        std::ptr::null_mut()
    } else {
        p as *mut u8
    }
}

/// Maps `len` bytes of zeroed, private memory that is only backed once touched.
pub fn map(len: usize) -> *mut u8 {
    map_with(len, libc::MAP_NORESERVE)
}

/// Like [`map`], but every page is faulted in now. For tables read before they are written
/// (the free path's filter): a page first read maps the shared zero page, and the later write
/// then replaces it with a TLB flush on every CPU that runs the process — an interrupt per
/// page that a multi-threaded target pays.
pub fn map_populated(len: usize) -> *mut u8 {
    map_with(len, libc::MAP_POPULATE)
}

/// Grows a mapping made by [`map`], moving it if needed. Null on failure (the old one stays).
pub fn remap(ptr: *mut u8, old: usize, new: usize) -> *mut u8 {
    let p = unsafe { libc::syscall(libc::SYS_mremap, ptr, old, new, libc::MREMAP_MAYMOVE) };
    if p < 0 || p as usize == libc::MAP_FAILED as usize {
        std::ptr::null_mut()
    } else {
        p as *mut u8
    }
}

pub fn getpid() -> u32 {
    unsafe { libc::syscall(libc::SYS_getpid) as u32 }
}

pub fn getppid() -> u32 {
    unsafe { libc::syscall(libc::SYS_getppid) as u32 }
}

fn clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(id, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Wall-clock nanoseconds (comparable across the processes of a tree).
pub fn realtime_ns() -> u64 {
    clock(libc::CLOCK_REALTIME)
}

/// Cheap monotonic milliseconds (the coarse clock is read from the vDSO without a syscall).
pub fn coarse_ms() -> u64 {
    clock(libc::CLOCK_MONOTONIC_COARSE) / 1_000_000
}

/// A NUL-terminated environment variable's value, without allocating.
pub fn env(name: &[u8]) -> Option<&'static [u8]> {
    debug_assert!(name.last() == Some(&0));
    let p = unsafe { libc::getenv(name.as_ptr() as *const libc::c_char) };
    if p.is_null() {
        return None;
    }
    Some(unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes())
}

pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// Reads a whole (small, /proc) file into `buf`; returns the bytes read.
pub fn read_file(path: &[u8], buf: &mut [u8]) -> usize {
    let fd = unsafe {
        libc::open(
            path.as_ptr() as *const libc::c_char,
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return 0;
    }
    let mut n = 0;
    while n < buf.len() {
        let r = unsafe {
            libc::read(
                fd,
                buf.as_mut_ptr().add(n) as *mut libc::c_void,
                buf.len() - n,
            )
        };
        if r < 0 && errno() == libc::EINTR {
            continue;
        }
        if r <= 0 {
            break;
        }
        n += r as usize;
    }
    unsafe { libc::close(fd) };
    n
}

pub fn errno() -> i32 {
    unsafe { *libc::__errno_location() }
}

pub fn set_errno(e: i32) {
    unsafe { *libc::__errno_location() = e };
}

/// Field 22 of /proc/self/stat: the process's start time in clock ticks after boot. With the
/// PID it names a process uniquely (PIDs are reused).
pub fn start_ticks() -> u64 {
    let mut buf = [0u8; 1024];
    let n = read_file(b"/proc/self/stat\0", &mut buf);
    let s = &buf[..n];
    // The command name (field 2) may contain spaces and ')': count fields after the last ')'.
    let Some(close) = s.iter().rposition(|&c| c == b')') else {
        return 0;
    };
    let mut field = 2;
    for part in s[close + 1..].split(|&c| c == b' ') {
        if part.is_empty() {
            continue;
        }
        field += 1;
        if field == 22 {
            return parse_u64(part).unwrap_or(0);
        }
    }
    0
}

/// A lock for rare events (mmap regions, the periodic write). Spins, then yields: its holders
/// never block, so a waiter is never left waiting long.
pub struct SpinLock(AtomicBool);

impl SpinLock {
    pub const fn new() -> SpinLock {
        SpinLock(AtomicBool::new(false))
    }

    pub fn lock(&self) {
        let mut spins = 0u32;
        while self
            .0
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                unsafe { libc::sched_yield() };
            }
        }
    }

    pub fn try_lock(&self) -> bool {
        self.0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    pub fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }

    /// In a fork child only the forking thread exists: whatever held the lock is gone.
    pub fn reset(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Resident bytes of `[start, start+len)`: pages the kernel reports in RAM (mincore).
/// `vec` is scratch, one byte per page.
pub fn resident(start: usize, len: usize, vec: &mut [u8]) -> Option<u64> {
    if len == 0 || vec.is_empty() {
        return Some(0);
    }
    let first = start & !(PAGE - 1);
    let end = start.checked_add(len)?.checked_add(PAGE - 1)? & !(PAGE - 1);
    let mut at = first;
    let mut pages_in = 0u64;
    while at < end {
        let pages = ((end - at) / PAGE).min(vec.len());
        let r = unsafe {
            libc::mincore(
                at as *mut libc::c_void,
                pages * PAGE,
                vec.as_mut_ptr() as *mut libc::c_uchar,
            )
        };
        if r != 0 {
            return None;
        }
        pages_in += vec[..pages].iter().filter(|&&b| b & 1 != 0).count() as u64;
        at += pages * PAGE;
    }
    Some(pages_in * PAGE as u64)
}

/// Calls `f` with each page of `[start, start+len)` (page-aligned) that is resident, so a walk
/// of a lazily mapped table reads only pages something wrote: reading an untouched page would
/// map the zero page, and the first later write to it would then flush every CPU's TLB.
pub fn for_each_touched_page(start: usize, len: usize, mut f: impl FnMut(usize)) {
    let mut vec = [0u8; 512];
    let mut at = start;
    let end = start + len;
    while at < end {
        let pages = ((end - at) / PAGE).min(vec.len());
        if pages == 0 {
            break;
        }
        let r = unsafe {
            libc::mincore(
                at as *mut libc::c_void,
                pages * PAGE,
                vec.as_mut_ptr() as *mut libc::c_uchar,
            )
        };
        for (i, &v) in vec[..pages].iter().enumerate() {
            // If mincore fails, visit every page (correct, only slower).
            if r != 0 || v & 1 != 0 {
                f(at + i * PAGE);
            }
        }
        at += pages * PAGE;
    }
}
