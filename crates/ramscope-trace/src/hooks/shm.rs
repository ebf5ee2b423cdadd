//! shm_open, shm_unlink and memfd_create are counted; the memory itself is charged when the
//! object is mapped (hooks/mmap.rs sees the fd's `/dev/shm/…` or `/memfd:…` path).

use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{c_char, c_int, c_uint, mode_t};

use crate::flush::{self, Count};
use crate::thread::Guard;
use crate::tracing;

static REAL_SHM_OPEN: AtomicUsize = AtomicUsize::new(0);
static REAL_SHM_UNLINK: AtomicUsize = AtomicUsize::new(0);

fn real(slot: &AtomicUsize, name: &[u8]) -> usize {
    let mut p = slot.load(Ordering::Acquire);
    if p == 0 {
        p = super::dl::lookup(libc::RTLD_NEXT, name) as usize;
        slot.store(p, Ordering::Release);
    }
    p
}

fn counted(c: Count) {
    if tracing() {
        if let Some(_g) = Guard::enter() {
            flush::count(c);
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn shm_open(name: *const c_char, oflag: c_int, mode: mode_t) -> c_int {
    let f = real(&REAL_SHM_OPEN, b"shm_open\0");
    if f == 0 {
        crate::sys::set_errno(libc::ENOSYS);
        return -1;
    }
    let f: extern "C" fn(*const c_char, c_int, mode_t) -> c_int = std::mem::transmute(f);
    let fd = f(name, oflag, mode);
    if fd >= 0 {
        counted(Count::ShmOpen);
    }
    fd
}

#[no_mangle]
pub unsafe extern "C" fn shm_unlink(name: *const c_char) -> c_int {
    let f = real(&REAL_SHM_UNLINK, b"shm_unlink\0");
    if f == 0 {
        crate::sys::set_errno(libc::ENOSYS);
        return -1;
    }
    let f: extern "C" fn(*const c_char) -> c_int = std::mem::transmute(f);
    let r = f(name);
    if r == 0 {
        counted(Count::ShmUnlink);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn memfd_create(name: *const c_char, flags: c_uint) -> c_int {
    let fd = libc::syscall(libc::SYS_memfd_create, name, flags) as c_int;
    if fd >= 0 {
        counted(Count::MemfdCreate);
    }
    fd
}
