use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::bail;

use ramscope::measure::{MeasureOptions, Measurer};
use ramscope::proc::ProcFs;
use ramscope::record::sampler::Follow;
use ramscope::record::Sample;
use ramscope::report::layout::terminal_width;
use ramscope::report::live::{self, LiveView};
use ramscope::units::{bytes, seconds};

use super::out::WriteError;
use super::recording::{check, record, summarize, Control, Stop};
use super::signals;
use crate::cli::WatchArgs;

struct Watch {
    fs: ProcFs,
    roots: Vec<u32>,
    duration: Option<Duration>,
    /// The live view, while it holds the terminal.
    screen: Option<Screen>,
    last_line_t: f64,
}

impl Control for Watch {
    fn poll(&mut self, t_s: f64) -> Option<Stop> {
        let stop = |reason| {
            Some(Stop {
                reason,
                exit_code: None,
                exit_signal: None,
            })
        };
        if signals::received() > 0 {
            return stop("interrupted");
        }
        if self.duration.is_some_and(|d| t_s >= d.as_secs_f64()) {
            return stop("duration");
        }
        if self.roots.iter().all(|&p| !self.fs.exists(p)) {
            return stop("tree-gone");
        }
        None
    }

    fn on_sample(&mut self, s: &Sample) {
        if let Some(screen) = self.screen.as_mut() {
            screen.draw(s);
            return;
        }
        if s.t_s - self.last_line_t >= 1.0 || self.last_line_t < 0.0 {
            self.last_line_t = s.t_s;
            let t = &s.snapshot.total;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "t={} processes={} rss_sum={} pss={}",
                seconds(s.t_s),
                s.snapshot.processes.len(),
                bytes(t.rss_sum_bytes),
                bytes(t.pss_bytes)
            );
            let _ = out.flush();
        }
    }
}

/// The live view's hold on the terminal: the alternate screen, the cursor hidden. Dropping it
/// restores both, so every way out of `watch` (the end, Ctrl-C or SIGTERM, an error, a panic)
/// gives the user back their screen and scrollback as they were.
struct Screen {
    view: LiveView,
    /// A frame could not be written (the terminal went away): drawing stops, recording not.
    broken: bool,
}

impl Screen {
    fn enter() -> Result<Screen, WriteError> {
        out!("{}", live::ENTER)?;
        Ok(Screen {
            view: LiveView::new(),
            broken: false,
        })
    }

    /// Draws `s` over the last frame, sized to the terminal as it is now (it may have been
    /// resized since).
    fn draw(&mut self, s: &Sample) {
        if self.broken {
            return;
        }
        let (width, height) = (terminal_width(), live::terminal_height());
        let frame = live::paint(&self.view.frame(s, width, height), width, height);
        if out!("{frame}").is_err() {
            self.broken = true;
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // Nothing better to do when even this fails: the terminal is gone.
        let _ = out!("{}", live::LEAVE);
    }
}

/// A terminal that cannot move its cursor (`TERM=dumb`, Emacs shell buffers) gets progress
/// lines instead of the live view.
fn can_redraw() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("TERM").map_or(true, |t| t != "dumb")
}

pub fn run(args: WatchArgs) -> anyhow::Result<()> {
    let fs = ProcFs::new(&args.record.proc_root);
    let mut roots = args.pids.clone();
    if args.auto {
        let measurer = Measurer::new(fs.clone(), MeasureOptions::default());
        roots.extend(measurer.find_servers()?);
    }
    if roots.is_empty() {
        bail!("nothing to watch: give a PID or --auto");
    }
    roots.sort_unstable();
    roots.dedup();
    for &pid in &roots {
        if !fs.exists(pid) {
            bail!("no process with PID {pid}");
        }
    }
    let command = roots
        .iter()
        .map(|&p| {
            fs.cmdline(p)
                .map(|a| a.join(" "))
                .unwrap_or_else(|_| format!("PID {p}"))
        })
        .collect();
    // Bad options fail here, before the live view takes the screen.
    check(&args.record)?;
    signals::install(None);
    let screen = if !args.no_live && can_redraw() {
        Some(Screen::enter()?)
    } else {
        None
    };
    let mut control = Watch {
        fs,
        roots: roots.clone(),
        duration: args.duration,
        screen,
        last_line_t: -1.0,
    };
    let follow = Follow {
        roots,
        exclude_roots: false,
    };
    let recorded = record(&args.record, "watch", command, follow, &mut control);
    // The user's screen comes back before the summary, or the error, is printed.
    control.screen = None;
    let out = recorded?;
    out!("{}", summarize(&out, args.record.json)?)?;
    Ok(())
}
