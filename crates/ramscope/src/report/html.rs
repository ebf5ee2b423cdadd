//! The self-contained HTML report: inline CSS and inline SVG charts, no scripts, nothing
//! fetched, so it can be mailed or attached to a bug as one file.

use std::fmt::Write;

use crate::record::analysis::{process_timeline, tree_timeline, Analysis, CategoryPeak, Timeline};
use crate::record::timeline::{process_view_timeline, wall_time};
use crate::record::Recording;
use crate::units::{bytes, seconds, signed_bytes};

use super::chart::{draw, ChartError};
use super::record::{ended, finding_line, headline, MIN_CATEGORY_ROW};

/// At most this many per-process charts (the largest by peak RSS); every process is in the
/// tables regardless.
pub const MAX_PROCESS_CHARTS: usize = 16;

/// Bands in the by-process view: the largest processes, the rest as one band.
const MAX_PROCESS_BANDS: usize = 8;

/// The charts' coordinate space; they scale to the page, and at this size their text is
/// about the size of the page's small print from a phone-wide page up.
const CHART_W: u32 = 760;
const CHART_H: u32 = 340;
const PROCESS_CHART_H: u32 = 300;

/// Wide tables scroll inside their own box, so the page itself never scrolls sideways;
/// numbers never wrap; long command lines break anywhere.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;padding:0 1em;color:#222;max-width:1100px;line-height:1.4}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
.table{overflow-x:auto;max-width:100%}\
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}\
th,td{padding:.2em .7em;border-bottom:1px solid #eee;text-align:left;vertical-align:top}\
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
td code{overflow-wrap:anywhere}\
.meta{color:#555}.headline{font-size:1.15em;font-weight:600}\
.leak{color:#b00}.plateau{color:#555}figure{margin:1em 0;max-width:1000px}\
figure svg{display:block;width:100%;height:auto}\
figcaption{font-size:.85em;color:#555}";

pub fn escape(s: &str) -> String {
    super::chart::escape(s)
}

fn figure(
    out: &mut String,
    id: &str,
    tl: &Timeline,
    height: u32,
    caption: &str,
) -> Result<(), ChartError> {
    let chart = draw(tl, CHART_W, height)?;
    let _ = writeln!(
        out,
        "<figure class=\"chart\" id=\"{}\" data-series=\"{}\">{}<figcaption>{}</figcaption></figure>",
        escape(id),
        escape(&chart.series.join(",")),
        chart.svg,
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
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"generator\" content=\"ramscope {}\"><title>ramscope report: {}</title>\
<style>{STYLE}</style></head><body>\n<h1>ramscope report</h1>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&command)
    );
    let _ = writeln!(
        o,
        "<p class=\"meta\" id=\"meta\"><b>{}</b> of <code>{}</code>, started {}; {} sample{} over {} (every {}); {}.</p>",
        escape(&a.mode),
        escape(&command),
        escape(&wall_time(&a.started_at)),
        a.samples,
        if a.samples == 1 { "" } else { "s" },
        seconds(a.duration_s),
        seconds(a.interval_s),
        escape(&ended(a)),
    );
    if let Some(h) = headline(a) {
        let _ = writeln!(
            o,
            "<p class=\"headline\" id=\"headline\">{}</p>",
            escape(&h)
        );
    }

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
    let mut tree = tree_timeline(rec);
    // The page says what was recorded and when, once, above.
    tree.subtitle.clear();
    figure(
        &mut o,
        "chart-tree",
        &tree,
        CHART_H,
        "PSS by category: each process's latest smaps split, held until its next read and scaled down to its RSS when that fell below it. The line is the sum of RSS at every sample.",
    )?;
    figure(
        &mut o,
        "chart-processes",
        &process_view_timeline(rec, MAX_PROCESS_BANDS),
        CHART_H,
        "PSS by process, on the same time axis: each process's latest PSS read, at most its RSS. The line is the sum of RSS.",
    )?;

    o.push_str("<h2>Peaks</h2>\n<div class=\"table\"><table id=\"peaks\"><tr><th>PID</th><th>role</th><th>process / category</th><th>start</th><th>peak</th><th>above start</th><th>at</th></tr>\n");
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
            Some(p.start_rss_bytes),
            p.peak_rss_bytes,
            p.peak_rss_t_s,
        );
        category_rows(&mut o, &p.categories);
    }
    let tr = &a.tree;
    row(
        &mut o,
        "tree",
        "",
        &format!(
            "PSS (up to {} process{})",
            tr.max_processes,
            if tr.max_processes == 1 { "" } else { "es" }
        ),
        None,
        tr.peak_pss_bytes,
        tr.peak_pss_t_s,
    );
    row(
        &mut o,
        "tree",
        "",
        "RSS sum",
        Some(tr.start_rss_sum_bytes),
        tr.peak_rss_sum_bytes,
        tr.peak_rss_sum_t_s,
    );
    category_rows(&mut o, &tr.categories);
    o.push_str("</table></div>\n");

    o.push_str("<h2>Processes</h2>\n<div class=\"table\"><table id=\"processes\"><tr><th>PID</th><th>PPID</th><th>role</th><th>command</th><th>seen</th><th>peak RSS</th><th>peak PSS</th><th>end RSS</th></tr>\n");
    for p in &a.processes {
        let _ = writeln!(
            o,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td><code>{}</code></td><td class=\"n\">{} – {}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
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
    o.push_str("</table></div>\n");

    o.push_str("<h2>Each process</h2>\n");
    let mut charted: Vec<_> = a.processes.iter().collect();
    charted.sort_by_key(|p| std::cmp::Reverse(p.peak_rss_bytes));
    for p in charted.iter().take(MAX_PROCESS_CHARTS) {
        let tl = process_timeline(rec, p.pid);
        figure(
            &mut o,
            &format!("chart-pid-{}", p.pid),
            &tl,
            PROCESS_CHART_H,
            "PSS by category: each smaps read held until the next, scaled down to RSS when that fell below it. The line is RSS at every sample.",
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
    // What recording cost comes last: it qualifies the numbers, it is not a finding.
    let _ = writeln!(
        o,
        "<p class=\"meta\" id=\"overhead\">{}</p>",
        escape(super::record::overhead(a).trim())
    );
    o.push_str("</body></html>\n");
    Ok(o)
}

/// One indented row per category large enough to matter, as in the terminal report.
fn category_rows(o: &mut String, categories: &[CategoryPeak]) {
    for c in categories
        .iter()
        .filter(|c| c.peak_pss_bytes >= MIN_CATEGORY_ROW)
    {
        row(
            o,
            "",
            "",
            &format!("\u{a0}\u{a0}{} PSS", c.category),
            Some(c.start_pss_bytes),
            c.peak_pss_bytes,
            c.peak_t_s,
        );
    }
}

/// A peak-table row; `start: None` leaves start and growth blank (the tree's PSS, whose
/// start is not a sample of its own).
fn row(o: &mut String, pid: &str, role: &str, what: &str, start: Option<u64>, peak: u64, at: f64) {
    let (start, above) = match start {
        Some(s) => (bytes(s), signed_bytes(peak as i64 - s as i64)),
        None => (String::new(), String::new()),
    };
    let _ = writeln!(
        o,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{start}</td><td class=\"n\">{}</td><td class=\"n\">{above}</td><td class=\"n\">{}</td></tr>",
        escape(pid),
        escape(role),
        escape(what),
        bytes(peak),
        seconds(at)
    );
}
