//! `dlsym`: the real one, and the wrapper that hands out the CUDA driver wrappers.
//!
//! glibc's dlsym looks at its caller's return address to resolve RTLD_NEXT and the caller's
//! local scope, so a wrapper that *calls* the real dlsym would change what RTLD_NEXT means for
//! every library. The exported `dlsym` is therefore a naked trampoline: it asks [`wants`]
//! whether the name is one of the wrapped CUDA entry points and otherwise *jumps* to the real
//! dlsym, the caller's return address still on the stack. Only wrapped names take the slow path.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The real dlsym, read by the trampoline (set before `wants` returns 0).
static mut REAL_DLSYM: usize = 0;

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
        unsafe { REAL_DLSYM = p };
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

#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn dlsym(
    _handle: *mut libc::c_void,
    _name: *const libc::c_char,
) -> *mut libc::c_void {
    std::arch::naked_asm!(
        "push rdi",
        "push rsi",
        "sub rsp, 8",
        "mov rdi, rsi",
        "call {wants}",
        "add rsp, 8",
        "pop rsi",
        "pop rdi",
        "test eax, eax",
        "jnz 2f",
        "jmp qword ptr [rip + {real}]",
        "2:",
        "jmp {slow}",
        wants = sym wants,
        real = sym REAL_DLSYM,
        slow = sym slow,
    )
}

#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn dlsym(
    _handle: *mut libc::c_void,
    _name: *const libc::c_char,
) -> *mut libc::c_void {
    std::arch::naked_asm!(
        "stp x29, x30, [sp, #-32]!",
        "mov x29, sp",
        "stp x0, x1, [sp, #16]",
        "mov x0, x1",
        "bl {wants}",
        "mov w2, w0",
        "ldp x0, x1, [sp, #16]",
        "ldp x29, x30, [sp], #32",
        "cbnz w2, 2f",
        "adrp x16, {real}",
        "ldr x16, [x16, :lo12:{real}]",
        "br x16",
        "2:",
        "b {slow}",
        wants = sym wants,
        real = sym REAL_DLSYM,
        slow = sym slow,
    )
}

/// 1 when `name` takes the slow path (a wrapped CUDA entry point, or no real dlsym yet).
unsafe extern "C" fn wants(name: *const libc::c_char) -> libc::c_int {
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

unsafe extern "C" fn slow(
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
