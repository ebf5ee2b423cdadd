//! CUDA pinned host memory, at the runtime (`cudaHostAlloc`…) and the driver (`cuMemHostAlloc`…).
//!
//! The runtime is linked dynamically by PyTorch and vLLM, so its functions are interposed by
//! name. The driver is reached through function pointers: `dlsym(libcuda, …)` and
//! `cuGetProcAddress(_v2)` (how the runtime itself, and statically linked runtimes such as
//! NCCL's, find it), so both hand out the wrappers below instead. A runtime call and the driver
//! call under it are one event: only the outermost pinned call on a thread is recorded, and the
//! mmaps the driver makes inside it are its `rounded` bytes, not events of their own.

use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{c_char, c_int, c_uint, c_void, size_t};

use super::{after_event, site};
use crate::counters::Kind;
use crate::regions::{self, Region};
use crate::thread::{self, Guard};
use crate::{sys, tracing};

#[derive(Clone, Copy)]
#[repr(usize)]
pub enum Fun {
    CudaHostAlloc,
    CudaMallocHost,
    CudaFreeHost,
    CudaHostRegister,
    CudaHostUnregister,
    CuMemHostAlloc,
    CuMemAllocHost,
    CuMemAllocHostV1,
    CuMemFreeHost,
    CuMemHostRegister,
    CuMemHostUnregister,
    CuGetProcAddress,
    CuGetProcAddressV2,
}

const FUNS: usize = 13;
static REAL: [AtomicUsize; FUNS] = [const { AtomicUsize::new(0) }; FUNS];

/// The symbol each function is found by when nothing handed us its real address.
const NAMES: [&[u8]; FUNS] = [
    b"cudaHostAlloc\0",
    b"cudaMallocHost\0",
    b"cudaFreeHost\0",
    b"cudaHostRegister\0",
    b"cudaHostUnregister\0",
    b"cuMemHostAlloc\0",
    b"cuMemAllocHost_v2\0",
    b"cuMemAllocHost\0",
    b"cuMemFreeHost\0",
    b"cuMemHostRegister_v2\0",
    b"cuMemHostUnregister\0",
    b"cuGetProcAddress\0",
    b"cuGetProcAddress_v2\0",
];

pub fn set_real(f: Fun, addr: usize) {
    let own = wrapper(f);
    // Never store a wrapper as the real function (a second dlsym of the same name).
    if addr != own {
        REAL[f as usize].store(addr, Ordering::Release);
    }
}

fn real(f: Fun) -> usize {
    let r = REAL[f as usize].load(Ordering::Acquire);
    if r != 0 {
        return r;
    }
    let name = NAMES[f as usize];
    let p = super::dl::lookup(libc::RTLD_NEXT, name) as usize;
    if p != 0 && p != wrapper(f) {
        REAL[f as usize].store(p, Ordering::Release);
        return p;
    }
    0
}

fn wrapper(f: Fun) -> usize {
    match f {
        Fun::CudaHostAlloc => cudaHostAlloc as *const () as usize,
        Fun::CudaMallocHost => cudaMallocHost as *const () as usize,
        Fun::CudaFreeHost => cudaFreeHost as *const () as usize,
        Fun::CudaHostRegister => cudaHostRegister as *const () as usize,
        Fun::CudaHostUnregister => cudaHostUnregister as *const () as usize,
        Fun::CuMemHostAlloc => cuMemHostAlloc as *const () as usize,
        Fun::CuMemAllocHost => cuMemAllocHost_v2 as *const () as usize,
        Fun::CuMemAllocHostV1 => ramscope_cuMemAllocHost_v1 as *const () as usize,
        Fun::CuMemFreeHost => cuMemFreeHost as *const () as usize,
        Fun::CuMemHostRegister => cuMemHostRegister_v2 as *const () as usize,
        Fun::CuMemHostUnregister => cuMemHostUnregister as *const () as usize,
        Fun::CuGetProcAddress => cuGetProcAddress as *const () as usize,
        Fun::CuGetProcAddressV2 => cuGetProcAddress_v2 as *const () as usize,
    }
}

/// A symbol name as passed to dlsym → the function it wraps and the wrapper's address.
pub fn wrapper_for(name: &[u8]) -> Option<(Fun, usize)> {
    let f = match name {
        b"cudaHostAlloc" => Fun::CudaHostAlloc,
        b"cudaMallocHost" => Fun::CudaMallocHost,
        b"cudaFreeHost" => Fun::CudaFreeHost,
        b"cudaHostRegister" => Fun::CudaHostRegister,
        b"cudaHostUnregister" => Fun::CudaHostUnregister,
        b"cuMemHostAlloc" => Fun::CuMemHostAlloc,
        b"cuMemAllocHost_v2" => Fun::CuMemAllocHost,
        b"cuMemAllocHost" => Fun::CuMemAllocHostV1,
        b"cuMemFreeHost" => Fun::CuMemFreeHost,
        b"cuMemHostRegister" | b"cuMemHostRegister_v2" => Fun::CuMemHostRegister,
        b"cuMemHostUnregister" => Fun::CuMemHostUnregister,
        b"cuGetProcAddress" => Fun::CuGetProcAddress,
        b"cuGetProcAddress_v2" => Fun::CuGetProcAddressV2,
        _ => return None,
    };
    Some((f, wrapper(f)))
}

/// cuGetProcAddress takes base names; the version picks the variant (size_t sizes for every
/// release this tracer meets).
fn proc_wrapper_for(name: &[u8]) -> Option<(Fun, usize)> {
    match name {
        b"cuMemAllocHost" => Some((Fun::CuMemAllocHost, wrapper(Fun::CuMemAllocHost))),
        b"cuMemHostRegister" => Some((Fun::CuMemHostRegister, wrapper(Fun::CuMemHostRegister))),
        b"cuGetProcAddress" => Some((Fun::CuGetProcAddressV2, wrapper(Fun::CuGetProcAddressV2))),
        _ => wrapper_for(name),
    }
}

/// Runs a pinned call; returns its result, the bytes the driver mapped inside, and whether it
/// was the outermost pinned call on this thread (the one to record).
fn pinned_call(call: impl FnOnce() -> c_int) -> (c_int, u64, bool) {
    let t = thread::state();
    let outer = t.pinned_depth == 0;
    if outer {
        t.pinned_mapped = 0;
    }
    t.pinned_depth += 1;
    let r = call();
    let t = thread::state();
    t.pinned_depth -= 1;
    (r, t.pinned_mapped, outer)
}

fn record_alloc(ptr: *mut c_void, size: u64, mapped: u64, kind: Kind) {
    if ptr.is_null() || !tracing() {
        return;
    }
    let Some(_guard) = Guard::enter() else {
        return;
    };
    let page = sys::PAGE as u64;
    let span = ((ptr as u64 + size + page - 1) & !(page - 1)) - (ptr as u64 & !(page - 1));
    let stack = site(kind, false);
    regions::add(Region {
        start: ptr as u64,
        len: size,
        kind,
        stack,
        rounded: if mapped > 0 { mapped } else { span },
        path: None,
        resident: None,
    });
    after_event();
}

fn record_free(ptr: *mut c_void, kinds: &[Kind]) {
    if ptr.is_null() || !tracing() {
        return;
    }
    if let Some(_guard) = Guard::enter() {
        regions::remove_at(ptr as u64, kinds);
        after_event();
    }
}

const NOT_FOUND: c_int = 500; // CUDA_ERROR_NOT_FOUND / cudaErrorSymbolNotFound

macro_rules! real_or_fail {
    ($f:expr, $ty:ty) => {{
        let r = real($f);
        if r == 0 {
            return NOT_FOUND;
        }
        std::mem::transmute::<usize, $ty>(r)
    }};
}

fn alloc_like(pp: *mut *mut c_void, size: u64, call: impl FnOnce() -> c_int) -> c_int {
    let (r, mapped, outer) = pinned_call(call);
    if r == 0 && outer && !pp.is_null() {
        record_alloc(unsafe { *pp }, size, mapped, Kind::Pinned);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn cudaHostAlloc(pp: *mut *mut c_void, size: size_t, flags: c_uint) -> c_int {
    let f = real_or_fail!(
        Fun::CudaHostAlloc,
        extern "C" fn(*mut *mut c_void, size_t, c_uint) -> c_int
    );
    alloc_like(pp, size as u64, || f(pp, size, flags))
}

#[no_mangle]
pub unsafe extern "C" fn cudaMallocHost(pp: *mut *mut c_void, size: size_t) -> c_int {
    let f = real_or_fail!(
        Fun::CudaMallocHost,
        extern "C" fn(*mut *mut c_void, size_t) -> c_int
    );
    alloc_like(pp, size as u64, || f(pp, size))
}

#[no_mangle]
pub unsafe extern "C" fn cuMemHostAlloc(
    pp: *mut *mut c_void,
    size: size_t,
    flags: c_uint,
) -> c_int {
    let f = real_or_fail!(
        Fun::CuMemHostAlloc,
        extern "C" fn(*mut *mut c_void, size_t, c_uint) -> c_int
    );
    alloc_like(pp, size as u64, || f(pp, size, flags))
}

#[no_mangle]
pub unsafe extern "C" fn cuMemAllocHost_v2(pp: *mut *mut c_void, size: size_t) -> c_int {
    let f = real_or_fail!(
        Fun::CuMemAllocHost,
        extern "C" fn(*mut *mut c_void, size_t) -> c_int
    );
    alloc_like(pp, size as u64, || f(pp, size))
}

/// The pre-3.2 driver entry point, whose size is 32 bits; only handed out by dlsym.
#[no_mangle]
pub unsafe extern "C" fn ramscope_cuMemAllocHost_v1(pp: *mut *mut c_void, size: c_uint) -> c_int {
    let f = real_or_fail!(
        Fun::CuMemAllocHostV1,
        extern "C" fn(*mut *mut c_void, c_uint) -> c_int
    );
    alloc_like(pp, size as u64, || f(pp, size))
}

fn free_like(p: *mut c_void, kinds: &[Kind], call: impl FnOnce() -> c_int) -> c_int {
    let (r, _, outer) = pinned_call(call);
    if r == 0 && outer {
        record_free(p, kinds);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn cudaFreeHost(p: *mut c_void) -> c_int {
    let f = real_or_fail!(Fun::CudaFreeHost, extern "C" fn(*mut c_void) -> c_int);
    free_like(p, &[Kind::Pinned], || f(p))
}

#[no_mangle]
pub unsafe extern "C" fn cuMemFreeHost(p: *mut c_void) -> c_int {
    let f = real_or_fail!(Fun::CuMemFreeHost, extern "C" fn(*mut c_void) -> c_int);
    free_like(p, &[Kind::Pinned], || f(p))
}

fn register_like(p: *mut c_void, size: u64, call: impl FnOnce() -> c_int) -> c_int {
    let (r, _, outer) = pinned_call(call);
    if r == 0 && outer {
        record_alloc(p, size, 0, Kind::PinnedRegistered);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn cudaHostRegister(p: *mut c_void, size: size_t, flags: c_uint) -> c_int {
    let f = real_or_fail!(
        Fun::CudaHostRegister,
        extern "C" fn(*mut c_void, size_t, c_uint) -> c_int
    );
    register_like(p, size as u64, || f(p, size, flags))
}

#[no_mangle]
pub unsafe extern "C" fn cuMemHostRegister_v2(
    p: *mut c_void,
    size: size_t,
    flags: c_uint,
) -> c_int {
    let f = real_or_fail!(
        Fun::CuMemHostRegister,
        extern "C" fn(*mut c_void, size_t, c_uint) -> c_int
    );
    register_like(p, size as u64, || f(p, size, flags))
}

#[no_mangle]
pub unsafe extern "C" fn cudaHostUnregister(p: *mut c_void) -> c_int {
    let f = real_or_fail!(Fun::CudaHostUnregister, extern "C" fn(*mut c_void) -> c_int);
    free_like(p, &[Kind::PinnedRegistered], || f(p))
}

#[no_mangle]
pub unsafe extern "C" fn cuMemHostUnregister(p: *mut c_void) -> c_int {
    let f = real_or_fail!(
        Fun::CuMemHostUnregister,
        extern "C" fn(*mut c_void) -> c_int
    );
    free_like(p, &[Kind::PinnedRegistered], || f(p))
}

/// After the real cuGetProcAddress found `symbol`: hand out our wrapper instead.
unsafe fn swap_in_wrapper(symbol: *const c_char, pfn: *mut *mut c_void) {
    if symbol.is_null() || pfn.is_null() || (*pfn).is_null() {
        return;
    }
    let name = std::ffi::CStr::from_ptr(symbol).to_bytes();
    if let Some((f, w)) = proc_wrapper_for(name) {
        set_real(f, *pfn as usize);
        *pfn = w as *mut c_void;
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuGetProcAddress(
    symbol: *const c_char,
    pfn: *mut *mut c_void,
    version: c_int,
    flags: u64,
) -> c_int {
    let f = real_or_fail!(
        Fun::CuGetProcAddress,
        extern "C" fn(*const c_char, *mut *mut c_void, c_int, u64) -> c_int
    );
    let r = f(symbol, pfn, version, flags);
    if r == 0 {
        swap_in_wrapper(symbol, pfn);
    }
    r
}

#[no_mangle]
pub unsafe extern "C" fn cuGetProcAddress_v2(
    symbol: *const c_char,
    pfn: *mut *mut c_void,
    version: c_int,
    flags: u64,
    status: *mut c_int,
) -> c_int {
    let f = real_or_fail!(
        Fun::CuGetProcAddressV2,
        extern "C" fn(*const c_char, *mut *mut c_void, c_int, u64, *mut c_int) -> c_int
    );
    let r = f(symbol, pfn, version, flags, status);
    if r == 0 {
        swap_in_wrapper(symbol, pfn);
    }
    r
}
