use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::bail;

use ramscope::measure::{MeasureOptions, Measurer};
use ramscope::proc::ProcFs;
use ramscope::record::sampler::Follow;
use ramscope::record::Sample;
use ramscope::report::{ellipsize, num, table, Cell};
use ramscope::units::{bytes, seconds};

use super::recording::{record, summarize, Control, Stop};
use super::signals;
use crate::cli::WatchArgs;

struct Watch {
    fs: ProcFs,
    roots: Vec<u32>,
    duration: Option<Duration>,
    live: bool,
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
        let mut out = std::io::stdout().lock();
        if self.live {
            // Redraw in place: cursor home, clear, then the view.
            let view = ramscope::text::clean_lines(live_view(s));
            let _ = write!(out, "\x1b[H\x1b[2J{view}");
        } else if s.t_s - self.last_line_t >= 1.0 || self.last_line_t < 0.0 {
            self.last_line_t = s.t_s;
            let t = &s.snapshot.total;
            let _ = writeln!(
                out,
                "t={} processes={} rss_sum={} pss={}",
                seconds(s.t_s),
                s.snapshot.processes.len(),
                bytes(t.rss_sum_bytes),
                bytes(t.pss_bytes)
            );
        }
        let _ = out.flush();
    }
}

fn live_view(s: &Sample) -> String {
    let mut t = table(&[
        "PID",
        "role",
        "process",
        "RSS",
        "PSS",
        "kernel peak",
        "read",
    ]);
    t.text_column(2);
    for p in &s.snapshot.processes {
        t.add_row(vec![
            num(p.pid),
            Cell::new(p.role.name()),
            Cell::new(ellipsize(&p.name, 28)),
            num(bytes(p.rss_bytes)),
            num(bytes(p.pss_bytes)),
            num(bytes(p.peak_rss_bytes)),
            Cell::new(p.read.map_or("", |r| r.name())),
        ]);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ramscope watch: t={}  {} processes  RSS sum {}  PSS {}  (sample took {:.2} ms CPU)  Ctrl-C stops",
        seconds(s.t_s),
        s.snapshot.processes.len(),
        bytes(s.snapshot.total.rss_sum_bytes),
        bytes(s.snapshot.total.pss_bytes),
        s.overhead.cpu_s * 1e3
    );
    let _ = writeln!(out, "{t}");
    out
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
    signals::install(None);
    let mut control = Watch {
        fs,
        roots: roots.clone(),
        duration: args.duration,
        live: !args.no_live && std::io::stdout().is_terminal(),
        last_line_t: -1.0,
    };
    let follow = Follow {
        roots,
        exclude_roots: false,
    };
    let out = record(&args.record, "watch", command, follow, &mut control)?;
    out!("{}", summarize(&out, args.record.json)?)?;
    Ok(())
}
