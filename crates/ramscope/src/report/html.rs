//! The self-contained HTML report: inline CSS and inline SVG charts, no scripts, nothing
//! fetched, so it can be mailed or attached to a bug as one file.

use std::fmt::Write;

use crate::record::analysis::{process_timeline, tree_timeline, Analysis, Timeline};
use crate::record::Recording;
use crate::units::{bytes, seconds, signed_bytes};

use super::chart::{stacked_svg, ChartError};
use super::record::finding_line;

/// At most this many per-process charts (the largest by peak RSS); every process is in the
/// tables regardless.
pub const MAX_PROCESS_CHARTS: usize = 16;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}\
th,td{padding:.2em .7em;border-bottom:1px solid #eee;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
.meta{color:#555}.leak{color:#b00}.plateau{color:#555}figure{margin:1em 0}\
figcaption{font-size:.85em;color:#555}";

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn figure(out: &mut String, id: &str, tl: &Timeline, caption: &str) -> Result<(), ChartError> {
    let svg = stacked_svg(tl, 1000, 420)?;
    let series: Vec<&str> = tl.categories.iter().map(|(c, _)| c.name()).collect();
    let _ = writeln!(
        out,
        "<figure class=\"chart\" id=\"{}\" data-series=\"{}\">{svg}<figcaption>{}</figcaption></figure>",
        escape(id),
        escape(&series.join(",")),
        escape(caption)
    );
    Ok(())
}

pub fn render(rec: &Recording, a: &Analysis) -> Result<String, ChartError> {
    let mut o = String::new();
    let command = a.command.join(" ");
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"generator\" content=\"ramscope {}\"><title>ramscope report: {}</title>\
<style>{STYLE}</style></head><body>\n<h1>ramscope report</h1>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&command)
    );
    let _ = writeln!(
        o,
        "<p class=\"meta\"><b>{}</b> of <code>{}</code>, started {}; {} sample{} over {} (every {}){}.</p>",
        escape(&a.mode),
        escape(&command),
        escape(&a.started_at),
        a.samples,
        if a.samples == 1 { "" } else { "s" },
        seconds(a.duration_s),
        seconds(a.interval_s),
        match (&a.ended, a.exit_code) {
            (Some(r), Some(c)) => format!("; {} with code {c}", escape(r)),
            (Some(r), None) => format!("; {}", escape(r)),
            (None, _) => "; the recording was cut short".into(),
        }
    );
    let _ = writeln!(
        o,
        "<p class=\"meta\" id=\"overhead\">{}</p>",
        escape(super::record::overhead(a).trim())
    );

    o.push_str("<h2>Leak findings</h2>\n");
    if a.findings.is_empty() {
        o.push_str("<p id=\"findings\">No series grew steadily: no leak found.</p>\n");
    } else {
        o.push_str("<ul id=\"findings\">\n");
        for f in &a.findings {
            let class = match f.trend {
                crate::record::leak::Trend::Growing { .. } => "leak",
                crate::record::leak::Trend::Plateau { .. } => "plateau",
            };
            let _ = writeln!(o, "<li class=\"{class}\">{}</li>", escape(&finding_line(f)));
        }
        o.push_str("</ul>\n");
    }

    o.push_str("<h2>Whole tree</h2>\n");
    let tree = tree_timeline(rec);
    figure(
        &mut o,
        "chart-tree",
        &tree,
        "PSS by category, each process's latest smaps split held until its next; the line is the sum of RSS.",
    )?;

    o.push_str("<h2>Peaks</h2>\n<table id=\"peaks\"><tr><th>PID</th><th>role</th><th>process / category</th><th>start</th><th>peak</th><th>above start</th><th>at</th></tr>\n");
    for p in &a.processes {
        row(
            &mut o,
            &p.pid.to_string(),
            p.role.name(),
            &format!(
                "{} RSS (kernel peak {})",
                p.name,
                bytes(p.kernel_peak_rss_bytes)
            ),
            p.start_rss_bytes,
            p.peak_rss_bytes,
            p.peak_rss_t_s,
        );
        for c in &p.categories {
            row(
                &mut o,
                "",
                "",
                &format!("  {} PSS", c.category),
                c.start_pss_bytes,
                c.peak_pss_bytes,
                c.peak_t_s,
            );
        }
    }
    row(
        &mut o,
        "tree",
        "",
        "RSS sum",
        a.tree.start_rss_sum_bytes,
        a.tree.peak_rss_sum_bytes,
        a.tree.peak_rss_sum_t_s,
    );
    for c in &a.tree.categories {
        row(
            &mut o,
            "tree",
            "",
            &format!("  {} PSS", c.category),
            c.start_pss_bytes,
            c.peak_pss_bytes,
            c.peak_t_s,
        );
    }
    o.push_str("</table>\n");

    o.push_str("<h2>Processes</h2>\n<table id=\"processes\"><tr><th>PID</th><th>PPID</th><th>role</th><th>command</th><th>seen</th><th>peak RSS</th><th>peak PSS</th><th>end RSS</th></tr>\n");
    for p in &a.processes {
        let _ = writeln!(
            o,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td><code>{}</code></td><td>{} – {}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            p.pid,
            p.ppid,
            p.role.name(),
            escape(&super::ellipsize(&p.cmdline, 100)),
            seconds(p.first_t_s),
            seconds(p.last_t_s),
            bytes(p.peak_rss_bytes),
            bytes(p.peak_pss_bytes),
            bytes(p.end_rss_bytes),
        );
    }
    o.push_str("</table>\n");

    let mut charted: Vec<_> = a.processes.iter().collect();
    charted.sort_by_key(|p| std::cmp::Reverse(p.peak_rss_bytes));
    for p in charted.iter().take(MAX_PROCESS_CHARTS) {
        let tl = process_timeline(rec, p.pid);
        figure(
            &mut o,
            &format!("chart-pid-{}", p.pid),
            &tl,
            "PSS by category at the samples that read smaps; the line is RSS at every sample.",
        )?;
    }
    if a.processes.len() > MAX_PROCESS_CHARTS {
        let _ = writeln!(
            o,
            "<p class=\"meta\">{} smaller processes are in the tables only.</p>",
            a.processes.len() - MAX_PROCESS_CHARTS
        );
    }
    for n in &a.notes {
        let _ = writeln!(o, "<p class=\"meta\">note: {}</p>", escape(n));
    }
    o.push_str("</body></html>\n");
    Ok(o)
}

fn row(o: &mut String, pid: &str, role: &str, what: &str, start: u64, peak: u64, at: f64) {
    let _ = writeln!(
        o,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
        escape(pid),
        escape(role),
        escape(what),
        bytes(start),
        bytes(peak),
        signed_bytes(peak as i64 - start as i64),
        seconds(at)
    );
}
