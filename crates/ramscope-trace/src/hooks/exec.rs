//! exec and exit: the image's last write, and an exec'd program that stays traced.
//!
//! Before exec the file is written as final. The new program gets `LD_PRELOAD` and the
//! `RAMSCOPE_TRACE_*` settings back if the caller's environment dropped them (heaptrack's
//! children, by contrast, lose tracing), and `RAMSCOPE_TRACE_IMAGE` so it knows it is image
//! n+1 of the same PID. A vfork child (Python's subprocess, posix_spawn) shares the parent's
//! memory: it gets the environment but must not write the parent's file.

use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{c_char, c_int, pid_t};

use crate::{flush, options, sys, tracing};

const MAX_ENV: usize = 1024;
const TEXT: usize = 16384;

/// A patched environment, built on the stack (a vfork child must not map memory the parent
/// would then keep).
struct Env {
    ptrs: [*const c_char; MAX_ENV],
    text: [u8; TEXT],
    used: usize,
}

impl Env {
    fn new() -> Env {
        Env {
            ptrs: [std::ptr::null(); MAX_ENV],
            text: [0; TEXT],
            used: 0,
        }
    }

    fn push_text(&mut self, parts: &[&[u8]]) -> Option<*const c_char> {
        let len: usize = parts.iter().map(|p| p.len()).sum::<usize>() + 1;
        if self.used + len > TEXT {
            return None;
        }
        let start = self.used;
        for p in parts {
            self.text[self.used..self.used + p.len()].copy_from_slice(p);
            self.used += p.len();
        }
        self.text[self.used] = 0;
        self.used += 1;
        Some(self.text[start..].as_ptr() as *const c_char)
    }
}

fn name_of(entry: &[u8]) -> &[u8] {
    match entry.iter().position(|&c| c == b'=') {
        Some(i) => &entry[..i + 1],
        None => entry,
    }
}

/// `envp` with our settings restored; `same_process`: add the exec image marker.
unsafe fn patch(envp: *const *const c_char, env: &mut Env, same_process: bool) -> Option<()> {
    let s = options::settings();
    let mut n = 0;
    let mut preload_at = None;
    if !envp.is_null() {
        let mut p = envp;
        while !(*p).is_null() {
            if n + s.env_count + 3 >= MAX_ENV {
                return None;
            }
            let e = std::ffi::CStr::from_ptr(*p).to_bytes();
            if e.starts_with(b"RAMSCOPE_TRACE_IMAGE=") {
                p = p.add(1);
                continue;
            }
            if e.starts_with(b"LD_PRELOAD=") {
                preload_at = Some(n);
            }
            env.ptrs[n] = *p;
            n += 1;
            p = p.add(1);
        }
    }
    let has = |env: &Env, n: usize, name: &[u8]| {
        env.ptrs[..n]
            .iter()
            .any(|&q| std::ffi::CStr::from_ptr(q).to_bytes().starts_with(name))
    };
    for e in &s.env[..s.env_count] {
        let e = e.bytes();
        if !has(env, n, name_of(e)) {
            env.ptrs[n] = env.push_text(&[e])?;
            n += 1;
        }
    }
    let lib = s.library.bytes();
    if !lib.is_empty() {
        match preload_at {
            None => {
                env.ptrs[n] = env.push_text(&[b"LD_PRELOAD=", lib])?;
                n += 1;
            }
            Some(i) => {
                let cur = std::ffi::CStr::from_ptr(env.ptrs[i]).to_bytes();
                let value = &cur[b"LD_PRELOAD=".len()..];
                let present = value
                    .split(|&c| c == b':' || c == b' ')
                    .any(|part| part == lib);
                if !present {
                    env.ptrs[i] = env.push_text(&[b"LD_PRELOAD=", lib, b":", value])?;
                }
            }
        }
    }
    if same_process {
        let mut a = [0u8; 20];
        let mut b = [0u8; 20];
        let pid = decimal(sys::getpid() as u64, &mut a);
        let image = decimal(flush::image() as u64 + 1, &mut b);
        env.ptrs[n] = env.push_text(&[
            b"RAMSCOPE_TRACE_IMAGE=",
            pid,
            b":",
            image,
            b":",
            flush::file_name(),
        ])?;
        n += 1;
    }
    env.ptrs[n] = std::ptr::null();
    Some(())
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

fn real(slot: &AtomicUsize, name: &[u8]) -> usize {
    let mut p = slot.load(Ordering::Acquire);
    if p == 0 {
        p = super::dl::lookup(libc::RTLD_NEXT, name) as usize;
        slot.store(p, Ordering::Release);
    }
    p
}

extern "C" {
    static environ: *const *const c_char;
}

/// Runs an exec with a patched environment (when tracing), writing the final file first.
unsafe fn exec_with(
    envp: *const *const c_char,
    run: impl FnOnce(*const *const c_char) -> c_int,
) -> c_int {
    if !tracing() {
        return run(envp);
    }
    let same_process = sys::getpid() == flush::pid();
    let mut env = Env::new();
    let patched = patch(envp, &mut env, same_process).is_some();
    if same_process {
        flush::final_write();
    }
    let r = run(if patched { env.ptrs.as_ptr() } else { envp });
    // Still here: the exec failed and this image goes on.
    let errno = sys::errno();
    if same_process {
        flush::exec_failed();
    }
    sys::set_errno(errno);
    r
}

#[no_mangle]
pub unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    exec_with(envp, |e| {
        libc::syscall(libc::SYS_execve, path, argv, e) as c_int
    })
}

#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    execve(path, argv, environ)
}

static REAL_EXECVPE: AtomicUsize = AtomicUsize::new(0);
static REAL_FEXECVE: AtomicUsize = AtomicUsize::new(0);
static REAL_SPAWN: AtomicUsize = AtomicUsize::new(0);
static REAL_SPAWNP: AtomicUsize = AtomicUsize::new(0);

type ExecvpeFn = extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;

#[no_mangle]
pub unsafe extern "C" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let f = real(&REAL_EXECVPE, b"execvpe\0");
    if f == 0 {
        sys::set_errno(libc::ENOSYS);
        return -1;
    }
    let f: ExecvpeFn = std::mem::transmute(f);
    exec_with(envp, |e| f(file, argv, e))
}

#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    execvpe(file, argv, environ)
}

#[no_mangle]
pub unsafe extern "C" fn fexecve(
    fd: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let f = real(&REAL_FEXECVE, b"fexecve\0");
    if f == 0 {
        sys::set_errno(libc::ENOSYS);
        return -1;
    }
    let f: extern "C" fn(c_int, *const *const c_char, *const *const c_char) -> c_int =
        std::mem::transmute(f);
    exec_with(envp, |e| f(fd, argv, e))
}

type SpawnFn = extern "C" fn(
    *mut pid_t,
    *const c_char,
    *const libc::posix_spawn_file_actions_t,
    *const libc::posix_spawnattr_t,
    *const *const c_char,
    *const *const c_char,
) -> c_int;

/// posix_spawn starts a new process: it gets the environment, not the image marker.
unsafe fn spawn_with(
    slot: &AtomicUsize,
    name: &[u8],
    args: (
        *mut pid_t,
        *const c_char,
        *const libc::posix_spawn_file_actions_t,
        *const libc::posix_spawnattr_t,
        *const *const c_char,
        *const *const c_char,
    ),
) -> c_int {
    let f = real(slot, name);
    if f == 0 {
        return libc::ENOSYS;
    }
    let f: SpawnFn = std::mem::transmute(f);
    let (pid, path, actions, attr, argv, envp) = args;
    if !tracing() {
        return f(pid, path, actions, attr, argv, envp);
    }
    let mut env = Env::new();
    let e = if patch(envp, &mut env, false).is_some() {
        env.ptrs.as_ptr()
    } else {
        envp
    };
    f(pid, path, actions, attr, argv, e)
}

#[no_mangle]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut pid_t,
    path: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    spawn_with(
        &REAL_SPAWN,
        b"posix_spawn\0",
        (pid, path, actions, attr, argv, envp),
    )
}

#[no_mangle]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut pid_t,
    file: *const c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    spawn_with(
        &REAL_SPAWNP,
        b"posix_spawnp\0",
        (pid, file, actions, attr, argv, envp),
    )
}

/// `_exit` skips `fini`: Python's `os._exit` (multiprocessing's fork children) ends here.
#[no_mangle]
pub unsafe extern "C" fn _exit(status: c_int) -> ! {
    if tracing() {
        flush::final_write();
    }
    libc::syscall(libc::SYS_exit_group, status);
    loop {
        std::hint::spin_loop();
    }
}

#[no_mangle]
pub unsafe extern "C" fn _Exit(status: c_int) -> ! {
    _exit(status)
}

extern "C" {
    fn ramscope_execl();
    fn ramscope_execlp();
    fn ramscope_execle();
}

// The variadic execl family lives in src/shim.c; these export it (a jump keeps the variadic
// arguments where the caller put them).
#[cfg(target_arch = "x86_64")]
macro_rules! export_jump {
    ($name:ident, $target:ident) => {
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name() {
            std::arch::naked_asm!("jmp {t}", t = sym $target)
        }
    };
}

#[cfg(target_arch = "aarch64")]
macro_rules! export_jump {
    ($name:ident, $target:ident) => {
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $name() {
            std::arch::naked_asm!("b {t}", t = sym $target)
        }
    };
}

export_jump!(execl, ramscope_execl);
export_jump!(execlp, ramscope_execlp);
export_jump!(execle, ramscope_execle);
