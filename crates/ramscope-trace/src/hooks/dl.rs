//! `dlsym`: the real one, and the wrapper that hands out the CUDA driver wrappers.
//!
//! The exported `dlsym` is the trampoline in src/shim.c; it asks [`ramscope_dlsym_wants`]
//! whether a name is one of the wrapped CUDA driver entry points and otherwise jumps to the real
//! `dlsym` with the caller's return address intact.

use std::sync::atomic::{AtomicUsize, Ordering};

extern "C" {
    static mut ramscope_real_dlsym_ptr: *mut libc::c_void;
}

static REAL: AtomicUsize = AtomicUsize::new(0);

fn real() -> usize {
    let r = REAL.load(Ordering::Acquire);
    if r != 0 {
        return r;
    }
    // dlvsym is not wrapped; from here RTLD_NEXT means "after this library": glibc's dlsym.
    let mut p = 0usize;
    for version in [&b"GLIBC_2.34\0"[..], b"GLIBC_2.2.5\0", b"GLIBC_2.17\0"] {
        p = unsafe {
            libc::dlvsym(
                libc::RTLD_NEXT,
                c"dlsym".as_ptr(),
                version.as_ptr() as *const libc::c_char,
            )
        } as usize;
        if p != 0 {
            break;
        }
    }
    if p != 0 {
        unsafe { ramscope_real_dlsym_ptr = p as *mut libc::c_void };
        REAL.store(p, Ordering::Release);
    }
    p
}

/// The real dlsym, called from this library (so RTLD_NEXT means "after ramscope").
pub fn lookup(handle: *mut libc::c_void, name: &[u8]) -> *mut libc::c_void {
    let r = real();
    if r == 0 {
        return std::ptr::null_mut();
    }
    let f: extern "C" fn(*mut libc::c_void, *const libc::c_char) -> *mut libc::c_void =
        unsafe { std::mem::transmute(r) };
    f(handle, name.as_ptr() as *const libc::c_char)
}

/// 1 when `name` takes the slow path (a wrapped CUDA entry point, or no real dlsym yet).
#[no_mangle]
pub unsafe extern "C" fn ramscope_dlsym_wants(name: *const libc::c_char) -> libc::c_int {
    if real() == 0 {
        return 1;
    }
    if name.is_null() {
        return 0;
    }
    // Cheap first test: every wrapped name starts with "cu".
    if *name != b'c' as libc::c_char || *name.add(1) != b'u' as libc::c_char {
        return 0;
    }
    let name = std::ffi::CStr::from_ptr(name).to_bytes();
    super::cuda::wrapper_for(name).is_some() as libc::c_int
}

#[no_mangle]
pub unsafe extern "C" fn ramscope_dlsym_slow(
    handle: *mut libc::c_void,
    name: *const libc::c_char,
) -> *mut libc::c_void {
    let r = real();
    if r == 0 || name.is_null() {
        return std::ptr::null_mut();
    }
    let f: extern "C" fn(*mut libc::c_void, *const libc::c_char) -> *mut libc::c_void =
        std::mem::transmute(r);
    let found = f(handle, name);
    if found.is_null() {
        return found;
    }
    let bytes = std::ffi::CStr::from_ptr(name).to_bytes();
    match super::cuda::wrapper_for(bytes) {
        Some((id, wrapper)) => {
            super::cuda::set_real(id, found as usize);
            wrapper as *mut libc::c_void
        }
        None => found,
    }
}
