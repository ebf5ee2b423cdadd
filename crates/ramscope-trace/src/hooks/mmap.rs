//! mmap, munmap and mremap called through the dynamic linker (Python's arenas and `mmap`
//! module, numpy, safetensors, shared memory, the CUDA driver). glibc's own mmaps for large
//! malloc blocks do not come here, so they are not counted twice.

use libc::{c_int, c_void, off_t, size_t};

use super::{after_event, site};
use crate::counters::Kind;
use crate::regions::{self, Region};
use crate::thread::{self, Guard};
use crate::{strings, sys, tracing};

fn raw_mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    let r = unsafe { libc::syscall(libc::SYS_mmap, addr, len, prot, flags, fd, off) };
    r as *mut c_void
}

fn page_round(len: u64) -> u64 {
    len.saturating_add(sys::PAGE as u64 - 1) & !(sys::PAGE as u64 - 1)
}

#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    let p = raw_mmap(addr, len, prot, flags, fd, off);
    if p == libc::MAP_FAILED || !tracing() {
        return p;
    }
    let t = thread::state();
    if t.pinned_depth > 0 {
        // The CUDA driver mapping pinned memory: part of the pinned event.
        t.pinned_mapped = t.pinned_mapped.saturating_add(page_round(len as u64));
        return p;
    }
    let Some(_guard) = Guard::enter() else {
        return p;
    };
    let (kind, path) = classify(flags, fd);
    let len = page_round(len as u64);
    if flags & libc::MAP_FIXED != 0 {
        regions::unmap(p as u64, len);
    }
    let stack = site(kind, false);
    regions::add(Region {
        start: p as u64,
        len,
        kind,
        stack,
        rounded: len,
        path,
        resident: None,
    });
    after_event();
    p
}

#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    mmap(addr, len, prot, flags, fd, off)
}

/// Anonymous private, anonymous shared, a shm/memfd object, or a file (with its path).
fn classify(flags: c_int, fd: c_int) -> (Kind, Option<u32>) {
    let shared = flags & libc::MAP_SHARED != 0;
    if flags & libc::MAP_ANONYMOUS != 0 || fd < 0 {
        return (
            if shared {
                Kind::MmapShared
            } else {
                Kind::MmapAnon
            },
            None,
        );
    }
    let mut link = [0u8; 64];
    let mut path = [0u8; 1024];
    let n = fd_link_name(fd, &mut link);
    let len = unsafe {
        libc::readlink(
            link[..n].as_ptr() as *const libc::c_char,
            path.as_mut_ptr() as *mut libc::c_char,
            path.len(),
        )
    };
    if len <= 0 {
        return (Kind::MmapFile, None);
    }
    let path = &path[..len as usize];
    let id = strings::intern(path);
    if path.starts_with(b"/dev/shm/") || path.starts_with(b"/memfd:") {
        (Kind::Shm, id)
    } else if path == b"/dev/zero" || path.starts_with(b"/dev/zero ") {
        (
            if shared {
                Kind::MmapShared
            } else {
                Kind::MmapAnon
            },
            id,
        )
    } else {
        (Kind::MmapFile, id)
    }
}

/// "/proc/self/fd/<fd>\0" into `buf`; returns its length with the NUL.
fn fd_link_name(fd: c_int, buf: &mut [u8; 64]) -> usize {
    let prefix = b"/proc/self/fd/";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 12];
    let mut v = fd as u32;
    let mut k = 0;
    loop {
        digits[k] = b'0' + (v % 10) as u8;
        k += 1;
        v /= 10;
        if v == 0 || k == digits.len() {
            break;
        }
    }
    let mut n = prefix.len();
    while k > 0 {
        k -= 1;
        buf[n] = digits[k];
        n += 1;
    }
    buf[n] = 0;
    n + 1
}

/// The guard for recording an unmap or remap: tracing is on, the thread is not already in a
/// hook, and the call is not the CUDA driver's own inside a pinned call (part of that event).
fn recording() -> Option<Guard> {
    if !tracing() || thread::state().pinned_depth > 0 {
        return None;
    }
    Guard::enter()
}

#[no_mangle]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: size_t) -> c_int {
    let r = libc::syscall(libc::SYS_munmap, addr, len) as c_int;
    let Some(_guard) = (r == 0).then(recording).flatten() else {
        return r;
    };
    crate::flush::count(crate::flush::Count::Munmap);
    regions::unmap(addr as u64, page_round(len as u64));
    after_event();
    r
}

/// mremap is variadic in C (a fifth argument with MREMAP_FIXED); on x86-64 and AArch64 a
/// variadic caller passes it in the same register as a fixed fifth parameter.
#[no_mangle]
pub unsafe extern "C" fn mremap(
    old: *mut c_void,
    old_len: size_t,
    new_len: size_t,
    flags: c_int,
    new_addr: *mut c_void,
) -> *mut c_void {
    let r = libc::syscall(libc::SYS_mremap, old, old_len, new_len, flags, new_addr) as *mut c_void;
    let Some(_guard) = (r != libc::MAP_FAILED).then(recording).flatten() else {
        return r;
    };
    crate::flush::count(crate::flush::Count::Mremap);
    // The site is the mremap's own stack; its kind is the region's (looked up inside).
    let kind = regions::kind_at(old as u64).unwrap_or(Kind::MmapAnon);
    let stack = site(kind, false);
    regions::remap(
        old as u64,
        page_round(old_len as u64),
        r as u64,
        page_round(new_len as u64),
        stack,
    );
    after_event();
    r
}
