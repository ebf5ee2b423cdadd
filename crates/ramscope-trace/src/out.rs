//! The text the writer builds, in memory mapped by the library (never the heap it traces).

use crate::sys;

pub struct Out {
    ptr: *mut u8,
    len: usize,
    cap: usize,
    /// Set when the buffer could not grow: the file would be incomplete, so it is not written.
    pub failed: bool,
}

impl Out {
    pub const fn new() -> Out {
        Out {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
            failed: false,
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.failed = false;
    }

    pub fn bytes(&self) -> &[u8] {
        if self.ptr.is_null() {
            return &[];
        }
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    fn reserve(&mut self, more: usize) -> bool {
        if self.len + more <= self.cap {
            return true;
        }
        let want = (self.len + more).max(self.cap * 2).max(1 << 20);
        let want = (want + sys::PAGE - 1) & !(sys::PAGE - 1);
        let p = if self.ptr.is_null() {
            sys::map(want)
        } else {
            sys::remap(self.ptr, self.cap, want)
        };
        if p.is_null() {
            self.failed = true;
            return false;
        }
        self.ptr = p;
        self.cap = want;
        true
    }

    pub fn raw(&mut self, b: &[u8]) {
        if !self.reserve(b.len()) {
            return;
        }
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.ptr.add(self.len), b.len()) };
        self.len += b.len();
    }

    pub fn byte(&mut self, b: u8) {
        self.raw(&[b]);
    }

    pub fn u64(&mut self, mut v: u64) {
        let mut d = [0u8; 20];
        let mut i = d.len();
        loop {
            i -= 1;
            d[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.raw(&d[i..]);
    }

    /// Negative live bytes (a fork child freeing what its parent counted) print as 0.
    pub fn i64_floor0(&mut self, v: i64) {
        self.u64(v.max(0) as u64);
    }

    pub fn hex(&mut self, mut v: u64) {
        let mut d = [0u8; 16];
        let mut i = d.len();
        loop {
            i -= 1;
            d[i] = b"0123456789abcdef"[(v & 15) as usize];
            v >>= 4;
            if v == 0 {
                break;
            }
        }
        self.raw(&d[i..]);
    }

    /// A string field: bytes outside 0x21..=0x7e and `%` become `%XX`; empty is `%`.
    pub fn escaped(&mut self, s: &[u8]) {
        if s.is_empty() {
            self.byte(b'%');
            return;
        }
        for &c in s {
            if (0x21..=0x7e).contains(&c) && c != b'%' {
                self.byte(c);
            } else {
                let hex = b"0123456789ABCDEF";
                self.raw(&[b'%', hex[(c >> 4) as usize], hex[(c & 15) as usize]]);
            }
        }
    }

    /// `key=value` with a leading space.
    pub fn kv(&mut self, key: &[u8], v: u64) {
        self.byte(b' ');
        self.raw(key);
        self.byte(b'=');
        self.u64(v);
    }
}
