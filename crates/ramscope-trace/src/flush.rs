//! Writing the process's `.rstrace` file (docs/trace-format.md).
//!
//! The whole file is rewritten each time, to a temporary name and then renamed, so a reader (or
//! a process killed mid-write) never leaves half a file. It is written when tracing starts,
//! every `flush_ms` while the process makes events, at exit (`fini`, `_exit`) and before exec.
//! A thread that finds a write due takes a try-lock and writes; the others carry on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::counters::{self, Kind, KINDS};
use crate::options::{self, Text};
use crate::out::Out;
use crate::{live, python, regions, stacks, strings, sys, thread};

static LOCK: sys::SpinLock = sys::SpinLock::new();
static NEXT_MS: AtomicU64 = AtomicU64::new(0);
static WRITES: AtomicU64 = AtomicU64::new(0);
static FINAL_WRITTEN: AtomicBool = AtomicBool::new(false);

/// Who this image is. Written at start and in a fork child (one thread each time).
struct Identity {
    pid: u32,
    ppid: u32,
    start_ticks: u64,
    image: u32,
    origin: &'static [u8],
    init_ns: u64,
    file: Text,
    tmp: Text,
    name: Text,
    parent: Text,
}

static mut ID: Identity = Identity {
    pid: 0,
    ppid: 0,
    start_ticks: 0,
    image: 0,
    origin: b"start",
    init_ns: 0,
    file: Text::new(),
    tmp: Text::new(),
    name: Text::new(),
    parent: Text::new(),
};
static mut OUT: Out = Out::new();
static mut REGIONS_OUT: Out = Out::new();

/// Text written once and copied into every write (see `body`).
struct Kept {
    strings: Out,
    strings_written: [u64; strings::WRITTEN_WORDS],
    stacks: Out,
    stacks_written: usize,
}
static mut KEPT: Kept = Kept {
    strings: Out::new(),
    strings_written: [0; strings::WRITTEN_WORDS],
    stacks: Out::new(),
    stacks_written: 0,
};

#[allow(static_mut_refs)]
fn id() -> &'static Identity {
    unsafe { &ID }
}

#[derive(Clone, Copy)]
pub enum Count {
    Munmap,
    Mremap,
    ShmOpen,
    ShmUnlink,
    MemfdCreate,
}
const COUNT_NAMES: [&[u8]; 5] = [
    b"munmap",
    b"mremap",
    b"shm_open",
    b"shm_unlink",
    b"memfd_create",
];
static COUNTS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

pub fn count(c: Count) {
    COUNTS[c as usize].fetch_add(1, Ordering::Relaxed);
}

/// The live-bytes history written as `sample` lines (the newest [`HISTORY`] writes).
const HISTORY: usize = 4096;
const SAMPLE_WORDS: usize = 9;
static mut SAMPLES: *mut u64 = std::ptr::null_mut();
static SAMPLE_COUNT: AtomicU64 = AtomicU64::new(0);
/// Scratch for mincore: one byte per page of a 1 GiB stretch.
static mut SCRATCH: *mut u8 = std::ptr::null_mut();
const SCRATCH_LEN: usize = 1 << 18;

pub fn pid() -> u32 {
    id().pid
}

#[allow(static_mut_refs)]
pub fn init() -> bool {
    unsafe {
        SAMPLES = sys::map(HISTORY * SAMPLE_WORDS * 8) as *mut u64;
        SCRATCH = sys::map(SCRATCH_LEN);
        if SAMPLES.is_null() || SCRATCH.is_null() {
            return false;
        }
        let s = options::settings();
        let (image, origin, parent): (u32, &'static [u8], &[u8]) = match s.exec_image {
            Some((_, image)) => (image, b"exec", s.exec_parent.bytes()),
            None => (0, b"start", b""),
        };
        set_identity(image, origin, parent);
        // An exec that bypassed the hooks (a raw syscall, execveat) left no marker, but the
        // previous image's file is there under the same PID and start time: follow it.
        if origin == b"start" {
            let mut last = None;
            let mut n = 0;
            while n < 10_000 && image_file_exists(n) {
                last = Some(n);
                n += 1;
            }
            if let Some(prev) = last {
                let mut name = [0u8; 256];
                set_identity(prev, b"exec", b"");
                let p = ID.name.bytes();
                let len = p.len().min(name.len());
                name[..len].copy_from_slice(&p[..len]);
                set_identity(prev + 1, b"exec", &name[..len]);
            }
        }
    }
    true
}

#[allow(static_mut_refs)]
unsafe fn set_identity(image: u32, origin: &'static [u8], parent: &[u8]) {
    let id = &mut ID;
    id.pid = sys::getpid();
    id.ppid = sys::getppid();
    id.start_ticks = sys::start_ticks();
    id.image = image;
    id.origin = origin;
    id.init_ns = sys::realtime_ns();
    id.parent.set(&[parent]);
    let mut a = [0u8; 20];
    let mut b = [0u8; 20];
    let mut c = [0u8; 20];
    let pid = decimal(id.pid as u64, &mut a);
    let ticks = decimal(id.start_ticks, &mut b);
    let img = decimal(image as u64, &mut c);
    let dir = options::settings().dir.bytes();
    id.name.set(&[pid, b".", ticks, b".", img, b".rstrace"]);
    id.file
        .set(&[dir, b"/", pid, b".", ticks, b".", img, b".rstrace"]);
    id.tmp
        .set(&[dir, b"/.", pid, b".", ticks, b".", img, b".tmp"]);
    FINAL_WRITTEN.store(false, Ordering::Relaxed);
}

fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Whether this PID and start time already wrote a file as image `image`.
#[allow(static_mut_refs)]
unsafe fn image_file_exists(image: u32) -> bool {
    let mut a = [0u8; 20];
    let mut b = [0u8; 20];
    let mut c = [0u8; 20];
    let mut path = Text::new();
    let ok = path.set(&[
        options::settings().dir.bytes(),
        b"/",
        decimal(ID.pid as u64, &mut a),
        b".",
        decimal(ID.start_ticks, &mut b),
        b".",
        decimal(image as u64, &mut c),
        b".rstrace",
    ]);
    ok && libc::access(path.c_bytes().as_ptr() as *const libc::c_char, libc::F_OK) == 0
}

/// This image's file name (for a child's `parent` field).
pub fn file_name() -> &'static [u8] {
    id().name.bytes()
}

pub fn image() -> u32 {
    id().image
}

pub fn request_now() {
    NEXT_MS.store(0, Ordering::Relaxed);
}

/// Writes the file if it is due; called after events (cheaply: the clock is read once per 64
/// events of a thread).
#[inline(always)]
pub fn maybe() {
    let t = thread::state();
    t.events = t.events.wrapping_add(1);
    if t.events & 63 != 0 && NEXT_MS.load(Ordering::Relaxed) != 0 {
        return;
    }
    let now = sys::coarse_ms();
    if now < NEXT_MS.load(Ordering::Relaxed) {
        return;
    }
    if LOCK.try_lock() {
        let interval = options::FLUSH_MS.load(Ordering::Relaxed);
        NEXT_MS.store(now + interval, Ordering::Relaxed);
        let errno = sys::errno();
        write(false);
        sys::set_errno(errno);
        // A big file is written less often: at most 2% of the time goes to writing.
        let took = sys::coarse_ms().saturating_sub(now);
        NEXT_MS.store(now + interval.max(took * 50), Ordering::Relaxed);
        LOCK.unlock();
    }
}

/// The last write of this image (exit, `_exit`, exec).
pub fn final_write() {
    if sys::getpid() != id().pid {
        // A vfork child shares our memory but is not us: it must not write our file.
        return;
    }
    let Some(_guard) = thread::Guard::enter() else {
        return;
    };
    LOCK.lock();
    let errno = sys::errno();
    write(true);
    sys::set_errno(errno);
    FINAL_WRITTEN.store(true, Ordering::Relaxed);
    LOCK.unlock();
}

/// An exec failed: the image goes on, so its file is not final after all.
pub fn exec_failed() {
    FINAL_WRITTEN.store(false, Ordering::Relaxed);
    request_now();
}

pub fn lock_for_fork() {
    LOCK.lock();
}

pub fn unlock_after_fork() {
    LOCK.unlock();
}

#[allow(static_mut_refs)]
pub fn after_fork_in_child() {
    LOCK.reset();
    let mut parent = [0u8; 256];
    let p = file_name();
    let n = p.len().min(parent.len());
    parent[..n].copy_from_slice(&p[..n]);
    unsafe { set_identity(0, b"fork", &parent[..n]) };
    SAMPLE_COUNT.store(0, Ordering::Relaxed);
    request_now();
}

#[allow(static_mut_refs)]
fn write(last: bool) {
    counters::publish_own();
    let out = unsafe { &mut OUT };
    out.clear();
    let writes = WRITES.fetch_add(1, Ordering::Relaxed);
    // Residency costs a mincore walk of every large block and region: every fifth write, and
    // the last.
    let measure = last || writes.is_multiple_of(5);
    let now = sys::realtime_ns();
    let totals = Kind::ALL.map(counters::total);
    let rss = header(out, now, last);
    record_sample(now, &totals, rss);
    body(out, &totals, measure);
    out.raw(b"end\n");
    if !out.failed {
        put_file(out.bytes());
    }
}

fn header(out: &mut Out, now: u64, last: bool) -> Option<u64> {
    let id = id();
    out.raw(b"ramscope-trace 1\npid ");
    out.u64(id.pid as u64);
    out.raw(b"\nppid ");
    out.u64(id.ppid as u64);
    out.raw(b"\nstart_ticks ");
    out.u64(id.start_ticks);
    out.raw(b"\nimage ");
    out.u64(id.image as u64);
    out.raw(b"\norigin ");
    out.raw(id.origin);
    out.raw(b"\nparent ");
    if id.parent.bytes().is_empty() {
        out.byte(b'-');
    } else {
        out.escaped(id.parent.bytes());
    }
    out.raw(b"\ninit_ns ");
    out.u64(id.init_ns);
    out.raw(b"\nflush_ns ");
    out.u64(now);
    out.raw(if last { b"\nfinal 1\n" } else { b"\nfinal 0\n" });
    crate::flush_proc::identity_lines(out);
    out.raw(b"python ");
    let v = python::VERSION.load(Ordering::Relaxed);
    if v == 0 {
        out.byte(b'-');
    } else {
        out.u64(v >> 32);
        out.byte(b'.');
        out.u64((v >> 16) & 0xffff);
        out.byte(b'.');
        out.u64(v & 0xffff);
    }
    out.raw(b"\npython_frames ");
    out.raw(python::frames_status());
    out.raw(b"\noption sample_bytes ");
    out.u64(options::SAMPLE_BYTES.load(Ordering::Relaxed));
    out.raw(b"\noption min_size ");
    out.u64(options::MIN_SIZE.load(Ordering::Relaxed));
    out.raw(b"\noption native_depth ");
    out.u64(options::NATIVE_DEPTH.load(Ordering::Relaxed));
    out.byte(b'\n');
    crate::flush_proc::status_line(out)
}

#[allow(static_mut_refs)]
fn record_sample(now: u64, totals: &[counters::Total; KINDS], rss: Option<u64>) {
    let n = SAMPLE_COUNT.fetch_add(1, Ordering::Relaxed) as usize;
    let row = unsafe {
        std::slice::from_raw_parts_mut(SAMPLES.add((n % HISTORY) * SAMPLE_WORDS), SAMPLE_WORDS)
    };
    row[0] = now;
    for k in 0..6 {
        row[1 + k] = totals[k].live.max(0) as u64;
    }
    row[7] = rss.unwrap_or(u64::MAX);
    row[8] = 1;
}

#[allow(static_mut_refs)]
fn body(out: &mut Out, totals: &[counters::Total; KINDS], measure: bool) {
    let mut peak_all: i64 = 0;
    for kind in Kind::ALL {
        let t = &totals[kind as usize];
        out.raw(b"total ");
        out.raw(kind.name());
        out.kv(b"calls", t.calls);
        out.kv(b"bytes", t.bytes);
        out.kv(b"frees", t.frees);
        out.kv(b"freed", t.freed);
        out.raw(b" live=");
        out.i64_floor0(t.live);
        out.raw(b" peak=");
        out.i64_floor0(t.peak);
        out.byte(b'\n');
        if kind.counts_in_peak() {
            peak_all += t.live.max(0);
        }
    }
    for (i, name) in COUNT_NAMES.iter().enumerate() {
        out.raw(b"count ");
        out.raw(name);
        out.byte(b' ');
        out.u64(COUNTS[i].load(Ordering::Relaxed));
        out.byte(b'\n');
    }
    out.raw(b"count stacks ");
    out.u64(stacks::COUNT.load(Ordering::Relaxed));
    out.byte(b'\n');
    let lost: [(&[u8], u64); 5] = [
        (
            b"stack_table_full",
            stacks::TABLE_FULL.load(Ordering::Relaxed),
        ),
        (b"ptr_table_full", live::FULL.load(Ordering::Relaxed)),
        (b"region_table_full", regions::FULL.load(Ordering::Relaxed)),
        (b"string_table_full", strings::FULL.load(Ordering::Relaxed)),
        (b"arena_full", stacks::ARENA_FULL.load(Ordering::Relaxed)),
    ];
    for (name, v) in lost {
        out.raw(b"lost ");
        out.raw(name);
        out.byte(b' ');
        out.u64(v);
        out.byte(b'\n');
    }
    let peak = counters::PEAK_ALL.load(Ordering::Relaxed).max(peak_all);
    counters::WRITTEN_PEAK.store(peak, Ordering::Relaxed);
    out.raw(b"peak");
    out.kv(b"ns", counters::PEAK_NS.load(Ordering::Relaxed));
    out.raw(b" live=");
    out.i64_floor0(peak);
    out.byte(b'\n');
    samples(out);
    crate::flush_proc::module_lines(out);
    let scratch = unsafe { std::slice::from_raw_parts_mut(SCRATCH, SCRATCH_LEN) };
    if measure {
        measure_sites(scratch);
    }
    // Regions first: their residency adds to their sites' before the sites are written.
    let regions_text = unsafe { &mut REGIONS_OUT };
    regions_text.clear();
    regions::for_each(measure, scratch, |r| {
        if measure {
            if let (Some(id), Some(res)) = (r.stack, r.resident) {
                stacks::entry(id)
                    .resident_sum
                    .fetch_add(res, Ordering::Relaxed);
            }
        }
        regions_text.raw(b"region ");
        regions_text.raw(r.kind.name());
        regions_text.byte(b' ');
        regions_text.hex(r.start);
        regions_text.byte(b' ');
        regions_text.u64(r.len);
        regions_text.raw(b" stack=");
        match r.stack {
            Some(id) => regions_text.u64(id as u64),
            None => regions_text.byte(b'-'),
        }
        regions_text.kv(b"rounded", r.rounded);
        regions_text.raw(b" resident=");
        match r.resident {
            Some(v) => regions_text.u64(v),
            None => regions_text.byte(b'-'),
        }
        regions_text.raw(b" path=");
        match r.path {
            Some(id) => regions_text.u64(id as u64),
            None => regions_text.byte(b'-'),
        }
        regions_text.byte(b'\n');
    });
    // Strings and stacks never change once made: their text is formatted once, kept, and
    // copied into each write (a worker of a vLLM server has tens of thousands of stacks).
    let kept = unsafe { &mut KEPT };
    strings::for_each_new(&mut kept.strings_written, |id, s| {
        kept.strings.raw(b"str ");
        kept.strings.u64(id as u64);
        kept.strings.byte(b' ');
        kept.strings.escaped(s);
        kept.strings.byte(b'\n');
    });
    stacks::for_each_new(&mut kept.stacks_written, |s| {
        crate::flush_proc::stack_line(&mut kept.stacks, &s);
    });
    out.raw(kept.strings.bytes());
    out.raw(kept.stacks.bytes());
    out.failed |= kept.strings.failed || kept.stacks.failed;
    stacks::for_each(|s| {
        if measure {
            let sum = s.entry.resident_sum.swap(0, Ordering::Relaxed);
            s.entry.resident.store(sum, Ordering::Relaxed);
        }
        crate::flush_proc::site_line(out, &s);
    });
    out.raw(regions_text.bytes());
    out.failed |= regions_text.failed;
}

/// Adds each large live heap block's resident bytes to its site's scratch sum.
fn measure_sites(scratch: &mut [u8]) {
    live::for_each_large(|p, len, stack| {
        if let Some(res) = sys::resident(p as usize, len as usize, scratch) {
            stacks::entry(stack)
                .resident_sum
                .fetch_add(res.min(len), Ordering::Relaxed);
        }
    });
}

fn samples(out: &mut Out) {
    let n = SAMPLE_COUNT.load(Ordering::Relaxed) as usize;
    let first = n.saturating_sub(HISTORY);
    for i in first..n {
        let row = unsafe {
            std::slice::from_raw_parts(SAMPLES.add((i % HISTORY) * SAMPLE_WORDS), SAMPLE_WORDS)
        };
        if row[8] != 1 {
            continue;
        }
        out.raw(b"sample");
        for w in &row[..7] {
            out.byte(b' ');
            out.u64(*w);
        }
        out.byte(b' ');
        if row[7] == u64::MAX {
            out.byte(b'-');
        } else {
            out.u64(row[7]);
        }
        out.byte(b'\n');
    }
}

fn put_file(bytes: &[u8]) {
    let id = id();
    let tmp = id.tmp.c_bytes();
    let fd = unsafe {
        libc::open(
            tmp.as_ptr() as *const libc::c_char,
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        return;
    }
    let mut done = 0;
    let mut ok = true;
    while done < bytes.len() {
        let r = unsafe {
            libc::write(
                fd,
                bytes.as_ptr().add(done) as *const libc::c_void,
                bytes.len() - done,
            )
        };
        if r < 0 && sys::errno() == libc::EINTR {
            continue;
        }
        if r <= 0 {
            ok = false;
            break;
        }
        done += r as usize;
    }
    unsafe { libc::close(fd) };
    let errno = sys::errno();
    if ok {
        unsafe {
            libc::rename(
                tmp.as_ptr() as *const libc::c_char,
                id.file.c_bytes().as_ptr() as *const libc::c_char,
            )
        };
    } else {
        // A full disk: keep the last complete file rather than a truncated one.
        unsafe { libc::unlink(tmp.as_ptr() as *const libc::c_char) };
    }
    sys::set_errno(errno);
}

/// Writes at once (a fork child: it should appear in the directory even if it never
/// allocates).
pub fn write_now() {
    let guard = thread::Guard::enter();
    LOCK.lock();
    let errno = sys::errno();
    write(false);
    sys::set_errno(errno);
    LOCK.unlock();
    drop(guard);
}
