//! The parts of the file read from /proc (identity, status, code mappings) and the stack and
//! site lines.

use std::sync::atomic::Ordering;

use crate::out::Out;
use crate::{stacks, strings, sys};

/// Streams a /proc file line by line through a fixed buffer (/proc/self/maps of a large
/// process is megabytes; the buffer is not).
fn for_each_line(path: &[u8], mut f: impl FnMut(&[u8])) {
    let fd = unsafe {
        libc::open(
            path.as_ptr() as *const libc::c_char,
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 16384];
    let mut have = 0;
    loop {
        let r = unsafe {
            libc::read(
                fd,
                buf.as_mut_ptr().add(have) as *mut libc::c_void,
                buf.len() - have,
            )
        };
        if r < 0 && sys::errno() == libc::EINTR {
            continue;
        }
        if r <= 0 {
            if have > 0 {
                f(&buf[..have]);
            }
            break;
        }
        have += r as usize;
        let mut start = 0;
        while let Some(nl) = buf[start..have].iter().position(|&c| c == b'\n') {
            f(&buf[start..start + nl]);
            start += nl + 1;
        }
        if start == 0 && have == buf.len() {
            // A line longer than the buffer: pass it whole-as-far-as-it-goes and move on.
            f(&buf[..have]);
            have = 0;
            continue;
        }
        buf.copy_within(start..have, 0);
        have -= start;
    }
    unsafe { libc::close(fd) };
}

pub fn identity_lines(out: &mut Out) {
    let mut path = [0u8; 4096];
    let n = unsafe {
        libc::readlink(
            c"/proc/self/exe".as_ptr(),
            path.as_mut_ptr() as *mut libc::c_char,
            path.len(),
        )
    };
    out.raw(b"exe ");
    if n > 0 {
        out.escaped(&path[..n as usize]);
    } else {
        out.byte(b'-');
    }
    let mut comm = [0u8; 64];
    let n = sys::read_file(b"/proc/self/comm\0", &mut comm);
    let comm = &comm[..n];
    let comm = comm.strip_suffix(b"\n").unwrap_or(comm);
    out.raw(b"\ncomm ");
    out.escaped(comm);
    out.raw(b"\ncmdline");
    let mut args = [0u8; 32768];
    let n = sys::read_file(b"/proc/self/cmdline\0", &mut args);
    let args = &args[..n];
    let args = args.strip_suffix(b"\0").unwrap_or(args);
    if !args.is_empty() {
        for arg in args.split(|&c| c == 0) {
            out.byte(b' ');
            out.escaped(arg);
        }
    }
    out.byte(b'\n');
}

/// `status <VmRSS> <RssAnon> <RssFile> <RssShmem> <VmHWM>` in bytes; returns VmRSS.
pub fn status_line(out: &mut Out) -> Option<u64> {
    let keys: [&[u8]; 5] = [b"VmRSS:", b"RssAnon:", b"RssFile:", b"RssShmem:", b"VmHWM:"];
    let mut values: [Option<u64>; 5] = [None; 5];
    for_each_line(b"/proc/self/status\0", |line| {
        for (i, k) in keys.iter().enumerate() {
            if let Some(rest) = line.strip_prefix(*k) {
                let digits: &[u8] = rest
                    .split(|&c| c == b' ' || c == b'\t')
                    .find(|p| !p.is_empty())
                    .unwrap_or(b"");
                values[i] = sys::parse_u64(digits).and_then(|kb| kb.checked_mul(1024));
            }
        }
    });
    out.raw(b"status");
    for v in values {
        out.byte(b' ');
        match v {
            Some(v) => out.u64(v),
            None => out.byte(b'-'),
        }
    }
    out.byte(b'\n');
    values[0]
}

/// `module` lines: executable file mappings, for symbolising return addresses afterwards.
pub fn module_lines(out: &mut Out) {
    for_each_line(b"/proc/self/maps\0", |line| {
        // start-end perms offset dev inode path
        let mut fields = line.splitn(6, |&c| c == b' ');
        let (Some(range), Some(perms), Some(offset)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return;
        };
        let path = fields.nth(2).map(|p| p.trim_ascii_start()).unwrap_or(b"");
        if perms.get(2) != Some(&b'x') || !path.starts_with(b"/") {
            return;
        }
        let Some(dash) = range.iter().position(|&c| c == b'-') else {
            return;
        };
        out.raw(b"module ");
        out.raw(&range[..dash]);
        out.byte(b' ');
        out.raw(&range[dash + 1..]);
        out.byte(b' ');
        out.raw(offset);
        out.byte(b' ');
        out.escaped(path);
        out.byte(b'\n');
    });
}

pub fn stack_line(out: &mut Out, s: &stacks::Site) {
    out.raw(b"stack ");
    out.u64(s.id as u64);
    out.byte(b' ');
    if s.native.is_empty() {
        out.byte(b'-');
    }
    for (i, ip) in s.native.iter().enumerate() {
        if i > 0 {
            out.byte(b',');
        }
        out.hex(*ip);
    }
    out.byte(b' ');
    if s.py.len() < 2 {
        out.byte(b'-');
    }
    let unknown = || strings::intern(b"?").unwrap_or(0) as u64;
    for (i, pair) in s.py.chunks_exact(2).enumerate() {
        if i > 0 {
            out.byte(b',');
        }
        let file = pair[0] >> 32;
        let func = pair[0] & 0xffff_ffff;
        out.u64(if file == u32::MAX as u64 {
            unknown()
        } else {
            file
        });
        out.byte(b':');
        out.u64(if func == u32::MAX as u64 {
            unknown()
        } else {
            func
        });
        out.byte(b':');
        out.u64(pair[1]);
    }
    out.byte(b'\n');
}

pub fn site_line(out: &mut Out, s: &stacks::Site) {
    out.raw(b"site ");
    out.u64(s.id as u64);
    out.byte(b' ');
    out.raw(s.kind.name());
    let e = s.entry;
    out.kv(b"calls", e.calls.load(Ordering::Relaxed));
    out.kv(b"bytes", e.bytes.load(Ordering::Relaxed));
    out.kv(b"frees", e.frees.load(Ordering::Relaxed));
    out.raw(b" live=");
    out.i64_floor0(e.live.load(Ordering::Relaxed));
    out.raw(b" peak=");
    out.i64_floor0(e.peak.load(Ordering::Relaxed));
    out.raw(b" at_peak=");
    out.i64_floor0(e.at_peak.load(Ordering::Relaxed));
    out.raw(b" resident=");
    match e.resident.load(Ordering::Relaxed) {
        _ if s.sampled => out.byte(b'-'),
        u64::MAX => out.byte(b'-'),
        v => out.u64(v),
    }
    out.kv(b"sampled", s.sampled as u64);
    out.byte(b'\n');
}
