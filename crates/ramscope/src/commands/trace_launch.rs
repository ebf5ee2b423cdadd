//! `ramscope trace -- CMD`: runs CMD with the tracer library preloaded into every process
//! of its tree, then says where the trace is.
//!
//! The command's own stdin, stdout and stderr are its own: ramscope writes only to stderr,
//! after the command ends, so the command's output is byte-identical to an untraced run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use serde::Serialize;

use super::signals;
use crate::cli::TraceArgs;
use ramscope::trace::library;

/// After the command exits, how long its orphaned descendants get to finish (and write their
/// final files) before ramscope stops waiting for them.
const ORPHAN_GRACE_MS: u64 = 3000;

#[derive(Serialize)]
struct RunRecord<'a> {
    schema: &'static str,
    command: &'a [String],
    library: String,
    started_ns: u64,
    ended_ns: u64,
    exit_code: Option<i32>,
    exit_signal: Option<i32>,
    min_size: Option<u64>,
    sample_bytes: Option<u64>,
    flush_ms: Option<u64>,
    native_depth: Option<u32>,
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn default_dir() -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .unwrap_or_else(|_| "now".into());
    PathBuf::from(format!("ramscope-trace-{stamp}"))
}

/// Makes the directory; refuses one that already holds a trace (two runs' files would mix).
fn prepare_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.exists() && !dir.is_dir() {
        bail!("--out {} is a file, not a directory", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let holds_trace = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".rstrace") || name == "run.json"
        });
    if holds_trace {
        bail!(
            "{} already holds a trace; choose another --out or remove it",
            dir.display()
        );
    }
    std::fs::canonicalize(dir).with_context(|| format!("cannot resolve {}", dir.display()))
}

pub fn launch(a: TraceArgs) -> anyhow::Result<()> {
    let Some(program) = a.command.first() else {
        bail!("give the command to trace after `--` (ramscope trace -- CMD …), or read a trace with `ramscope trace report DIR`");
    };
    if let Some(n) = a.native_depth {
        if n > 128 {
            bail!("--native-depth {n}: at most 128");
        }
    }
    if a.flush_ms == Some(0) {
        bail!("--flush-ms must be at least 1");
    }
    let dir = prepare_dir(&a.out.clone().unwrap_or_else(default_dir))?;
    let lib = library::path()?;
    let preload = match std::env::var("LD_PRELOAD") {
        Ok(existing) if !existing.is_empty() => format!("{}:{existing}", lib.display()),
        _ => lib.display().to_string(),
    };

    let mut cmd = Command::new(program);
    cmd.args(&a.command[1..])
        .env("LD_PRELOAD", preload)
        .env("RAMSCOPE_TRACE_DIR", &dir)
        .env_remove("RAMSCOPE_TRACE_IMAGE");
    let settings = [
        ("RAMSCOPE_TRACE_MIN_SIZE", a.min_size),
        ("RAMSCOPE_TRACE_SAMPLE_BYTES", a.sample_bytes),
        ("RAMSCOPE_TRACE_FLUSH_MS", a.flush_ms),
        ("RAMSCOPE_TRACE_NATIVE_DEPTH", a.native_depth.map(u64::from)),
    ];
    for (key, value) in settings {
        match value {
            Some(v) => cmd.env(key, v.to_string()),
            None => cmd.env_remove(key),
        };
    }
    // Orphaned descendants come back to ramscope, so it can wait for their last writes.
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let started_ns = now_ns();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{program}`"))?;
    signals::install(Some(child.id()));
    let (exit_code, exit_signal) = wait_for(child.id() as i32);
    wait_for_orphans();
    let record = RunRecord {
        schema: "ramscope.trace-run/1",
        command: &a.command,
        library: lib.display().to_string(),
        started_ns,
        ended_ns: now_ns(),
        exit_code,
        exit_signal,
        min_size: a.min_size,
        sample_bytes: a.sample_bytes,
        flush_ms: a.flush_ms,
        native_depth: a.native_depth,
    };
    let json = serde_json::to_vec_pretty(&record)?;
    let run_json = dir.join("run.json");
    std::fs::write(&run_json, json)
        .with_context(|| format!("cannot write {}", run_json.display()))?;
    let files = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".rstrace"))
                .count()
        })
        .unwrap_or(0);
    eprintln!(
        "ramscope trace: {files} process image(s) traced into {}; read it with `ramscope trace report {}`",
        dir.display(),
        dir.display()
    );
    if files == 0 {
        eprintln!("ramscope trace: no process wrote a trace file (a static binary, or one that clears LD_PRELOAD, cannot be traced)");
    }
    // The command's status is ramscope's: scripts can still tell success from failure.
    let code = match (exit_code, exit_signal) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    };
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// Waits for the command; returns its exit code or the signal that ended it.
fn wait_for(pid: i32) -> (Option<i32>, Option<i32>) {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid on our own child with a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return (Some(libc::WEXITSTATUS(status)), None);
            }
            if libc::WIFSIGNALED(status) {
                return (None, Some(libc::WTERMSIG(status)));
            }
            continue;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return (None, None);
        }
    }
}

/// Reaps descendants that outlived the command, for up to [`ORPHAN_GRACE_MS`].
fn wait_for_orphans() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ORPHAN_GRACE_MS);
    while std::time::Instant::now() < deadline {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid(-1, WNOHANG) with a valid out pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r < 0 {
            return; // ECHILD: nothing left
        }
        if r == 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
