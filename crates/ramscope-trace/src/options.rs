//! Settings, read once from the environment `ramscope trace` sets.
//!
//! - `RAMSCOPE_TRACE_DIR` (required: without it the library stays out of the way)
//! - `RAMSCOPE_TRACE_MIN_SIZE` (default 64 KiB): heap allocations from this size get a stack each
//! - `RAMSCOPE_TRACE_SAMPLE_BYTES` (default 512 KiB): mean bytes between samples below that;
//!   0 turns sampling of small allocations off
//! - `RAMSCOPE_TRACE_NATIVE_DEPTH` (default 32, at most 128)
//! - `RAMSCOPE_TRACE_FLUSH_MS` (default 1000)
//! - `RAMSCOPE_TRACE_IMAGE` (set by the exec hook: `<pid>:<image>:<previous file>`)

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys;

pub static MIN_SIZE: AtomicU64 = AtomicU64::new(64 * 1024);
pub static SAMPLE_BYTES: AtomicU64 = AtomicU64::new(512 * 1024);
pub static NATIVE_DEPTH: AtomicU64 = AtomicU64::new(32);
pub static FLUSH_MS: AtomicU64 = AtomicU64::new(1000);

pub const MAX_NATIVE_DEPTH: usize = 128;

/// A fixed buffer for a string read at start-up (paths, environment entries).
pub struct Text {
    buf: [u8; 4096],
    len: usize,
}

impl Text {
    pub const fn new() -> Text {
        Text {
            buf: [0; 4096],
            len: 0,
        }
    }

    pub fn set(&mut self, parts: &[&[u8]]) -> bool {
        let mut n = 0;
        for p in parts {
            if n + p.len() >= self.buf.len() {
                return false;
            }
            self.buf[n..n + p.len()].copy_from_slice(p);
            n += p.len();
        }
        self.buf[n] = 0;
        self.len = n;
        true
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// With its terminating NUL.
    pub fn c_bytes(&self) -> &[u8] {
        &self.buf[..self.len + 1]
    }
}

/// Written only while the library starts (one thread, before tracing is on) and in a fork
/// child (one thread); read afterwards.
pub struct Settings {
    pub dir: Text,
    /// `NAME=value` entries an exec'd program must get to be traced too.
    pub env: [Text; 6],
    pub env_count: usize,
    /// This library's own path (for `LD_PRELOAD` in an exec'd program's environment).
    pub library: Text,
    /// From `RAMSCOPE_TRACE_IMAGE` when this image was exec'd by a traced one.
    pub exec_image: Option<(u32, u32)>,
    pub exec_parent: Text,
}

pub static mut SETTINGS: Settings = Settings {
    dir: Text::new(),
    env: [
        Text::new(),
        Text::new(),
        Text::new(),
        Text::new(),
        Text::new(),
        Text::new(),
    ],
    env_count: 0,
    library: Text::new(),
    exec_image: None,
    exec_parent: Text::new(),
};

#[allow(static_mut_refs)]
pub fn settings() -> &'static Settings {
    unsafe { &SETTINGS }
}

const KEYS: [&[u8]; 5] = [
    b"RAMSCOPE_TRACE_DIR\0",
    b"RAMSCOPE_TRACE_MIN_SIZE\0",
    b"RAMSCOPE_TRACE_SAMPLE_BYTES\0",
    b"RAMSCOPE_TRACE_NATIVE_DEPTH\0",
    b"RAMSCOPE_TRACE_FLUSH_MS\0",
];

#[allow(static_mut_refs)]
pub unsafe fn read_from_env() -> bool {
    let s = &mut SETTINGS;
    let Some(dir) = sys::env(KEYS[0]) else {
        return false;
    };
    if dir.is_empty() || !s.dir.set(&[dir]) {
        return false;
    }
    let number = |key: &[u8]| sys::env(key).and_then(sys::parse_u64);
    if let Some(v) = number(KEYS[1]) {
        MIN_SIZE.store(v.max(1), Ordering::Relaxed);
    }
    if let Some(v) = number(KEYS[2]) {
        SAMPLE_BYTES.store(v, Ordering::Relaxed);
    }
    if let Some(v) = number(KEYS[3]) {
        NATIVE_DEPTH.store(v.min(MAX_NATIVE_DEPTH as u64), Ordering::Relaxed);
    }
    if let Some(v) = number(KEYS[4]) {
        FLUSH_MS.store(v.clamp(10, 3_600_000), Ordering::Relaxed);
    }
    // What a program exec'd without our variables gets back (see hooks/exec.rs).
    s.env_count = 0;
    for key in KEYS {
        let name = &key[..key.len() - 1];
        if let Some(v) = sys::env(key) {
            if s.env[s.env_count].set(&[name, b"=", v]) {
                s.env_count += 1;
            }
        }
    }
    find_own_path(s);
    if let Some(image) = sys::env(b"RAMSCOPE_TRACE_IMAGE\0") {
        parse_image(image, s);
    }
    true
}

/// `<pid>:<image>:<file>`: only meaningful when the PID is ours (the exec'd program itself, not
/// a process it later starts with the same environment).
fn parse_image(v: &[u8], s: &mut Settings) {
    let mut parts = v.splitn(3, |&c| c == b':');
    let (Some(pid), Some(image), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let (Some(pid), Some(image)) = (sys::parse_u64(pid), sys::parse_u64(image)) else {
        return;
    };
    if pid as u32 == sys::getpid() && image < u32::MAX as u64 {
        s.exec_image = Some((pid as u32, image as u32));
        s.exec_parent.set(&[file]);
    }
}

fn find_own_path(s: &mut Settings) {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let addr = read_from_env as *const libc::c_void;
    if unsafe { libc::dladdr(addr, &mut info) } != 0 && !info.dli_fname.is_null() {
        let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_bytes();
        s.library.set(&[name]);
    }
}
