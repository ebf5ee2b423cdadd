use anyhow::Context;

use ramscope::record::sampler::Follow;

use super::recording::{record, summarize, Control, Stop};
use super::signals;
use crate::cli::RunArgs;

/// After this many Ctrl-C/SIGTERM the recording ends even if the command ignores them.
const SIGNALS_TO_GIVE_UP: usize = 3;

struct Child {
    pid: i32,
}

impl Control for Child {
    fn poll(&mut self, _t_s: f64) -> Option<Stop> {
        // Reap everything: ramscope is the subreaper of the command's tree, so orphaned
        // grandchildren come to it when they exit.
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: waitpid with a valid out pointer, non-blocking.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == self.pid {
                let (code, signal) = if libc::WIFEXITED(status) {
                    (Some(libc::WEXITSTATUS(status)), None)
                } else if libc::WIFSIGNALED(status) {
                    (None, Some(libc::WTERMSIG(status)))
                } else {
                    (None, None)
                };
                return Some(Stop {
                    reason: "exited",
                    exit_code: code,
                    exit_signal: signal,
                });
            }
        }
        if signals::received() >= SIGNALS_TO_GIVE_UP {
            return Some(Stop {
                reason: "interrupted",
                exit_code: None,
                exit_signal: Some(signals::last()),
            });
        }
        None
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    // Orphans of the command's tree are re-parented to ramscope instead of init, so they stay
    // in the tree (and get reaped).
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    // Bad options fail before the command starts, not after, leaving it running.
    super::recording::check(&args.record)?;
    let program = &args.command[0];
    let child = std::process::Command::new(program)
        .args(&args.command[1..])
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let pid = child.id();
    signals::install(Some(pid));
    let follow = Follow {
        roots: vec![std::process::id()],
        exclude_roots: true,
    };
    let mut control = Child { pid: pid as i32 };
    let out = record(
        &args.record,
        "run",
        args.command.clone(),
        follow,
        &mut control,
    )?;
    let rec = ramscope::record::Recording::read(&out)?;
    let code = rec
        .end
        .as_ref()
        .map_or(1, |e| match (e.exit_code, e.exit_signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 1,
        });
    // Like time(1): the summary goes to stderr, leaving stdout to the command (unless JSON
    // was asked for).
    let text = summarize(&out, args.record.json)?;
    if args.record.json {
        out!("{text}")?;
    } else {
        errout!("{text}")?;
    }
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
