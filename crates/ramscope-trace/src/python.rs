//! Python frames, read from the interpreter's own frame chain at the event.
//!
//! No profile hook: nothing runs per Python call. At a sampled event the calling thread's frame
//! chain is walked (its own frames: no other thread pops them, so the GIL is not needed) and
//! each frame's file, function and line are read. Lines come from `PyCode_Addr2Line`, which
//! only reads the code object's line table (no allocation, no GIL).
//!
//! The structures differ per CPython minor version: [`LAYOUTS`] holds the offsets. 3.11 was
//! checked against its headers (offsetof on the installed 3.11.7); the others come from their
//! headers' declarations. Before trusting a layout, the first walk in a process reads every
//! pointer with `process_vm_readv` (which fails instead of faulting) and checks that each code
//! object and name really has the code and str types; if not, Python frames are turned off for
//! that process (`python_frames unsupported`) rather than risk a crash.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

use crate::stacks::PyFrame;
use crate::{strings, sys};

#[derive(Clone, Copy)]
struct Layout {
    minor: u32,
    /// PyThreadState → the current frame (3.10: PyFrameObject*; 3.11/3.12: _PyCFrame*;
    /// 3.13: _PyInterpreterFrame*).
    tstate_frame: usize,
    /// _PyCFrame → current_frame, where a _PyCFrame sits in between.
    cframe_current: Option<usize>,
    frame_code: usize,
    frame_previous: usize,
    /// 3.11+: pointer to the instruction; 3.10: `f_lasti` (int, in code units).
    frame_instr: usize,
    lasti_int: bool,
    /// The frame's owner byte (3.12+: 3 is a C-stack shim frame, skipped).
    frame_owner: Option<usize>,
    code_adaptive: usize,
    code_filename: usize,
    code_name: usize,
    /// sizeof(PyASCIIObject), sizeof(PyCompactUnicodeObject).
    ascii_data: usize,
    compact_data: usize,
}

const LAYOUTS: [Layout; 5] = [
    Layout {
        minor: 10,
        tstate_frame: 24,
        cframe_current: None,
        frame_code: 32,
        frame_previous: 24,
        frame_instr: 96,
        lasti_int: true,
        frame_owner: None,
        code_adaptive: 0,
        code_filename: 104,
        code_name: 112,
        ascii_data: 48,
        compact_data: 72,
    },
    Layout {
        minor: 11,
        tstate_frame: 56,
        cframe_current: Some(8),
        frame_code: 32,
        frame_previous: 48,
        frame_instr: 56,
        lasti_int: false,
        frame_owner: None,
        code_adaptive: 184,
        code_filename: 112,
        code_name: 120,
        ascii_data: 48,
        compact_data: 72,
    },
    Layout {
        minor: 12,
        tstate_frame: 56,
        cframe_current: Some(0),
        frame_code: 0,
        frame_previous: 8,
        frame_instr: 56,
        lasti_int: false,
        frame_owner: Some(70),
        code_adaptive: 192,
        code_filename: 112,
        code_name: 120,
        ascii_data: 40,
        compact_data: 56,
    },
    // 3.13.0 has `eval_breaker` after `interp` (current_frame at 72); its alphas did not (64).
    // Both are tried, in this order, by the first walk's check.
    Layout {
        minor: 13,
        tstate_frame: 72,
        cframe_current: None,
        frame_code: 0,
        frame_previous: 8,
        frame_instr: 56,
        lasti_int: false,
        frame_owner: Some(70),
        code_adaptive: 200,
        code_filename: 112,
        code_name: 120,
        ascii_data: 40,
        compact_data: 56,
    },
    Layout {
        minor: 13,
        tstate_frame: 64,
        cframe_current: None,
        frame_code: 0,
        frame_previous: 8,
        frame_instr: 56,
        lasti_int: false,
        frame_owner: Some(70),
        code_adaptive: 200,
        code_filename: 112,
        code_name: 120,
        ascii_data: 40,
        compact_data: 56,
    },
];

const UNKNOWN: u8 = 0;
const UNVERIFIED: u8 = 1;
const READY: u8 = 2;
const UNSUPPORTED: u8 = 3;

static STATUS: AtomicU8 = AtomicU8::new(UNKNOWN);
static LAYOUT: AtomicUsize = AtomicUsize::new(usize::MAX);
static NEXT_TRY_MS: AtomicU64 = AtomicU64::new(0);
static TRIES: AtomicU64 = AtomicU64::new(0);
/// major << 32 | minor << 16 | micro, once seen.
pub static VERSION: AtomicU64 = AtomicU64::new(0);

static GET_TSTATE: AtomicUsize = AtomicUsize::new(0);
static ADDR2LINE: AtomicUsize = AtomicUsize::new(0);
static IS_FINALIZING: AtomicUsize = AtomicUsize::new(0);
static CODE_TYPE: AtomicUsize = AtomicUsize::new(0);
static STR_TYPE: AtomicUsize = AtomicUsize::new(0);

/// What the file's `python_frames` line says.
pub fn frames_status() -> &'static [u8] {
    match STATUS.load(Ordering::Relaxed) {
        READY => b"ok",
        UNSUPPORTED if VERSION.load(Ordering::Relaxed) != 0 => b"unsupported",
        _ => b"off",
    }
}

fn sym(name: &[u8]) -> usize {
    crate::hooks::dl::lookup(libc::RTLD_DEFAULT, name) as usize
}

/// Looks for an initialised interpreter in this process. Once libpython's symbols are found,
/// each stacked event just asks `Py_IsInitialized`; before that the symbol lookup is retried on
/// the first thousand stacked events, then once a second (a C program never gets one).
static IS_INITIALIZED: AtomicUsize = AtomicUsize::new(0);

fn detect() {
    let mut initialized = IS_INITIALIZED.load(Ordering::Relaxed);
    if initialized == 0 {
        let now = sys::coarse_ms();
        if now < NEXT_TRY_MS.load(Ordering::Relaxed) {
            return;
        }
        let tries = TRIES.fetch_add(1, Ordering::Relaxed);
        if tries >= 1000 {
            NEXT_TRY_MS.store(now + 1000, Ordering::Relaxed);
        }
        initialized = sym(b"Py_IsInitialized\0");
        if initialized == 0 {
            return;
        }
        IS_INITIALIZED.store(initialized, Ordering::Relaxed);
    }
    let initialized: extern "C" fn() -> libc::c_int = unsafe { std::mem::transmute(initialized) };
    if initialized() == 0 {
        return;
    }
    let version = sym(b"Py_GetVersion\0");
    if version == 0 {
        STATUS.store(UNSUPPORTED, Ordering::Relaxed);
        return;
    }
    let version: extern "C" fn() -> *const libc::c_char = unsafe { std::mem::transmute(version) };
    let text = unsafe { std::ffi::CStr::from_ptr(version()) }.to_bytes();
    let Some((major, minor, micro)) = parse_version(text) else {
        STATUS.store(UNSUPPORTED, Ordering::Relaxed);
        return;
    };
    VERSION.store(
        ((major as u64) << 32) | ((minor as u64) << 16) | micro as u64,
        Ordering::Relaxed,
    );
    let layout = LAYOUTS.iter().position(|l| major == 3 && l.minor == minor);
    let names: [(&[u8], &AtomicUsize); 5] = [
        (b"PyGILState_GetThisThreadState\0", &GET_TSTATE),
        (b"PyCode_Addr2Line\0", &ADDR2LINE),
        (b"PyCode_Type\0", &CODE_TYPE),
        (b"PyUnicode_Type\0", &STR_TYPE),
        (
            if minor >= 13 {
                b"Py_IsFinalizing\0"
            } else {
                b"_Py_IsFinalizing\0"
            },
            &IS_FINALIZING,
        ),
    ];
    let mut all = true;
    for (name, slot) in names {
        let a = sym(name);
        all &= a != 0;
        slot.store(a, Ordering::Relaxed);
    }
    match layout {
        Some(i) if all => {
            LAYOUT.store(i, Ordering::Relaxed);
            STATUS.store(UNVERIFIED, Ordering::Release);
        }
        _ => STATUS.store(UNSUPPORTED, Ordering::Relaxed),
    }
}

fn parse_version(s: &[u8]) -> Option<(u32, u32, u32)> {
    let end = s.iter().position(|&c| !(c.is_ascii_digit() || c == b'.'))?;
    let mut parts = s[..end].split(|&c| c == b'.');
    let mut next = || sys::parse_u64(parts.next()?).map(|v| v as u32);
    Some((next()?, next()?, next().unwrap_or(0)))
}

/// The calling thread's Python frames, innermost first; 0 when none can be read.
pub fn capture(out: &mut [PyFrame]) -> usize {
    let status = STATUS.load(Ordering::Acquire);
    if status == UNKNOWN {
        detect();
        return 0;
    }
    if status == UNSUPPORTED {
        return 0;
    }
    let Some(l) = LAYOUTS.get(LAYOUT.load(Ordering::Relaxed)).copied() else {
        return 0;
    };
    let finalizing: extern "C" fn() -> libc::c_int =
        unsafe { std::mem::transmute(IS_FINALIZING.load(Ordering::Relaxed)) };
    if finalizing() != 0 {
        return 0;
    }
    let get: extern "C" fn() -> usize =
        unsafe { std::mem::transmute(GET_TSTATE.load(Ordering::Relaxed)) };
    let tstate = get();
    if tstate == 0 {
        return 0;
    }
    if status == UNVERIFIED {
        match verify(&l, tstate) {
            Some(true) => STATUS.store(READY, Ordering::Release),
            Some(false) => {
                // Another layout of the same minor version, if there is one, is tried next.
                let at = LAYOUT.load(Ordering::Relaxed);
                match LAYOUTS.iter().skip(at + 1).position(|x| x.minor == l.minor) {
                    Some(k) => LAYOUT.store(at + 1 + k, Ordering::Relaxed),
                    None => STATUS.store(UNSUPPORTED, Ordering::Release),
                }
                return 0;
            }
            None => return 0, // no frames on this thread yet: verify on a later event
        }
    }
    walk(&l, tstate, out, &Direct)
}

/// Reads a word of the target's memory.
trait Reader {
    fn word(&self, addr: usize) -> Option<usize>;
}

struct Direct;
impl Reader for Direct {
    #[inline(always)]
    fn word(&self, addr: usize) -> Option<usize> {
        if addr < 4096 {
            return None;
        }
        Some(unsafe { (addr as *const usize).read_unaligned() })
    }
}

/// Reads through process_vm_readv: a bad address is an error, not a fault.
struct Safe;
impl Reader for Safe {
    fn word(&self, addr: usize) -> Option<usize> {
        let mut v: usize = 0;
        let local = libc::iovec {
            iov_base: &mut v as *mut usize as *mut libc::c_void,
            iov_len: 8,
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: 8,
        };
        let n = unsafe { libc::process_vm_readv(sys::getpid() as i32, &local, 1, &remote, 1, 0) };
        (n == 8).then_some(v)
    }
}

fn first_frame(l: &Layout, tstate: usize, r: &impl Reader) -> Option<usize> {
    let mut f = r.word(tstate + l.tstate_frame)?;
    if let Some(off) = l.cframe_current {
        if f == 0 {
            return None;
        }
        f = r.word(f + off)?;
    }
    (f != 0).then_some(f)
}

/// Some(true): the first frames look right; Some(false): they do not; None: nothing to check.
fn verify(l: &Layout, tstate: usize) -> Option<bool> {
    let code_type = CODE_TYPE.load(Ordering::Relaxed);
    let str_type = STR_TYPE.load(Ordering::Relaxed);
    let mut f = first_frame(l, tstate, &Safe)?;
    let mut checked = 0;
    while f != 0 && checked < 8 {
        let Some(code) = Safe.word(f + l.frame_code) else {
            return Some(false);
        };
        let owner = l
            .frame_owner
            .and_then(|o| Safe.word(f + o))
            .map(|w| w as u8);
        if owner != Some(3) {
            if Safe.word(code + 8) != Some(code_type) {
                return Some(false);
            }
            let file = Safe.word(code + l.code_filename)?;
            let name = Safe.word(code + l.code_name)?;
            if Safe.word(file + 8) != Some(str_type) || Safe.word(name + 8) != Some(str_type) {
                return Some(false);
            }
            checked += 1;
        }
        f = Safe.word(f + l.frame_previous).unwrap_or(0);
    }
    (checked > 0).then_some(true)
}

fn walk(l: &Layout, tstate: usize, out: &mut [PyFrame], r: &impl Reader) -> usize {
    let code_type = CODE_TYPE.load(Ordering::Relaxed);
    let addr2line: extern "C" fn(usize, libc::c_int) -> libc::c_int =
        unsafe { std::mem::transmute(ADDR2LINE.load(Ordering::Relaxed)) };
    let Some(mut f) = first_frame(l, tstate, r) else {
        return 0;
    };
    let mut n = 0;
    let mut guard = 0;
    while f != 0 && n < out.len() && guard < 1024 {
        guard += 1;
        let next = r.word(f + l.frame_previous).unwrap_or(0);
        let Some(code) = r.word(f + l.frame_code) else {
            break;
        };
        let shim = l
            .frame_owner
            .is_some_and(|o| unsafe { *((f + o) as *const u8) } == 3);
        if shim || code == 0 || r.word(code + 8) != Some(code_type) {
            f = next;
            continue;
        }
        let offset = if l.lasti_int {
            let lasti = unsafe { *((f + l.frame_instr) as *const i32) };
            lasti.saturating_mul(2)
        } else {
            let instr = r.word(f + l.frame_instr).unwrap_or(0);
            let start = code + l.code_adaptive;
            if instr >= start {
                ((instr - start) as i64).min(i32::MAX as i64) as i32
            } else {
                -1 // not started yet: the function's first line
            }
        };
        let file_obj = r.word(code + l.code_filename).unwrap_or(0);
        let name_obj = r.word(code + l.code_name).unwrap_or(0);
        let line = cached_line(code, offset, file_obj ^ name_obj.rotate_left(17), || {
            addr2line(code, offset)
        });
        let file = name_id(l, file_obj);
        let func = name_id(l, name_obj);
        out[n] = PyFrame {
            file: file.unwrap_or(u32::MAX),
            func: func.unwrap_or(u32::MAX),
            line: line.max(0) as u32,
        };
        n += 1;
        f = next;
    }
    n
}

/// Direct-mapped cache of line numbers by (code object, instruction offset). `PyCode_Addr2Line`
/// scans the code's line table from its start, for every frame of every stack: a profile of a
/// traced vLLM start-up had it at 11% of all CPU time before this cache. The tag also holds
/// the code's file and name objects, so a code object freed and replaced at the same address
/// is not mistaken for the old one unless those match too.
static LINE_CACHE: [AtomicU64; 16384] = [const { AtomicU64::new(0) }; 16384];

fn cached_line(
    code: usize,
    offset: i32,
    names: usize,
    compute: impl FnOnce() -> libc::c_int,
) -> libc::c_int {
    let h = (code as u64 ^ (names as u64).rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (offset as u32 as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    let slot = &LINE_CACHE[(h >> 50) as usize & (LINE_CACHE.len() - 1)];
    // 40 bits of tag, 24 bits of line (+1, so an empty slot never matches).
    let tag = h & !0xff_ffff;
    let v = slot.load(Ordering::Relaxed);
    if v != 0 && v & !0xff_ffff == tag {
        return (v & 0xff_ffff) as libc::c_int - 1;
    }
    let line = compute();
    if (0..0xff_fffe).contains(&line) {
        slot.store(tag | (line as u64 + 1), Ordering::Relaxed);
    }
    line
}

/// Direct-mapped cache from a str object's address (and length and hash) to its interned id:
/// file and function names repeat on every stack.
static NAME_CACHE: [AtomicU64; 4096] = [const { AtomicU64::new(0) }; 4096];

fn name_id(l: &Layout, obj: usize) -> Option<u32> {
    if obj < 4096 {
        return None;
    }
    let p = obj as *const u8;
    let len = unsafe { (p.add(16) as *const isize).read_unaligned() };
    let hash = unsafe { (p.add(24) as *const i64).read_unaligned() };
    let tag = ((obj as u64) ^ (hash as u64).rotate_left(17) ^ (len as u64))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let slot = &NAME_CACHE[(tag >> 52) as usize & 4095];
    let cached = slot.load(Ordering::Relaxed);
    if cached != 0 && (cached >> 32) as u32 == (tag >> 20) as u32 {
        return Some(cached as u32);
    }
    let mut buf = [0u8; strings::MAX_LEN];
    let n = read_str(l, obj, &mut buf);
    let id = strings::intern(&buf[..n])?;
    slot.store(
        ((tag >> 20) & 0xffff_ffff) << 32 | id as u64,
        Ordering::Relaxed,
    );
    Some(id)
}

/// A str object's text as UTF-8 (ASCII and Latin-1 compact strings; others become `?`).
fn read_str(l: &Layout, obj: usize, out: &mut [u8]) -> usize {
    let p = obj as *const u8;
    let len = unsafe { (p.add(16) as *const isize).read_unaligned() };
    let state = unsafe { (p.add(32) as *const u32).read_unaligned() };
    let kind = (state >> 2) & 7;
    let compact = state & (1 << 5) != 0;
    let ascii = state & (1 << 6) != 0;
    if len < 0 || !compact {
        out[0] = b'?';
        return 1;
    }
    let len = len as usize;
    if ascii {
        let n = len.min(out.len());
        unsafe { std::ptr::copy_nonoverlapping(p.add(l.ascii_data), out.as_mut_ptr(), n) };
        return n;
    }
    if kind == 1 {
        let data = unsafe { std::slice::from_raw_parts(p.add(l.compact_data), len) };
        let mut n = 0;
        for &c in data {
            if c < 0x80 {
                if n + 1 > out.len() {
                    break;
                }
                out[n] = c;
                n += 1;
            } else {
                if n + 2 > out.len() {
                    break;
                }
                out[n] = 0xc0 | (c >> 6);
                out[n + 1] = 0x80 | (c & 0x3f);
                n += 2;
            }
        }
        return n;
    }
    out[0] = b'?';
    1
}
