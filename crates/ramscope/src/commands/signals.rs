//! Ctrl-C and SIGTERM while recording: note them, and pass them on to the recorded command
//! when they did not already reach it.
//!
//! A Ctrl-C typed at the terminal goes to the whole foreground process group, command
//! included, so forwarding it again would deliver it twice; a `kill` aimed at ramscope alone
//! reaches only ramscope. `si_code` tells them apart: the terminal's come from the kernel.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

static CHILD: AtomicI32 = AtomicI32::new(0);
static RECEIVED: AtomicUsize = AtomicUsize::new(0);
static LAST: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    RECEIVED.fetch_add(1, Ordering::SeqCst);
    LAST.store(sig, Ordering::SeqCst);
    let child = CHILD.load(Ordering::SeqCst);
    // SAFETY: `info` is the siginfo the kernel passed to this SA_SIGINFO handler; kill is
    // async-signal-safe.
    unsafe {
        let from_terminal = !info.is_null() && (*info).si_code == libc::SI_KERNEL;
        if child > 0 && !from_terminal {
            libc::kill(child, sig);
        }
    }
}

/// Installs the handler for SIGINT and SIGTERM. `child`: the PID to pass them to, if any.
pub fn install(child: Option<u32>) {
    CHILD.store(child.map_or(0, |c| c as i32), Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a valid handler and an empty mask, installed before
        // the recording starts.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// How many SIGINT/SIGTERM arrived so far.
pub fn received() -> usize {
    RECEIVED.load(Ordering::SeqCst)
}

/// The last signal received (0 if none).
pub fn last() -> i32 {
    LAST.load(Ordering::SeqCst)
}
