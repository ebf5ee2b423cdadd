//! The terminal summary of a recording: what it cost, the peaks and when they happened, and
//! the series that grow.

use std::fmt::Write;

use crate::record::analysis::{Analysis, CategoryPeak, Finding};
use crate::record::leak::Trend;
use crate::units::{bytes, seconds, signed_bytes};

use super::{ellipsize, num, table, Cell, Table};

/// Categories smaller than this at their peak are left out of the peak table.
pub const MIN_CATEGORY_ROW: u64 = 1 << 20;

/// The report, with every untrusted string (titles, command lines, config values) escaped.
pub fn render(a: &Analysis) -> String {
    crate::text::for_terminal(render_raw(a))
}

fn render_raw(a: &Analysis) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} of `{}`: {} sample{} over {} (every {}); {}",
        a.mode,
        crate::text::one_line_command(&ellipsize(&a.command.join(" "), 80)),
        a.samples,
        if a.samples == 1 { "" } else { "s" },
        seconds(a.duration_s),
        seconds(a.interval_s),
        ended(a)
    );
    if let Some(h) = headline(a) {
        let _ = writeln!(out, "{h}");
    }
    out.push('\n');
    out.push_str(&peaks(a));
    out.push('\n');
    out.push_str(&findings(&a.findings));
    for n in &a.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out.push('\n');
    out.push_str(&overhead(a));
    out
}

/// Why the recording stopped, as a clause.
pub fn ended(a: &Analysis) -> String {
    match (a.ended.as_deref(), a.exit_code) {
        (Some("exited"), Some(c)) => format!("the command exited with code {c}"),
        (Some("exited"), None) => "the command exited".into(),
        (Some("interrupted"), _) => "stopped by an interrupt (Ctrl-C or a signal)".into(),
        (Some("duration"), _) => "stopped at the end of its --duration".into(),
        (Some("tree-gone"), _) => "stopped when every watched process had exited".into(),
        (Some(other), Some(c)) => format!("ended: {other}, code {c}"),
        (Some(other), None) => format!("ended: {other}"),
        (None, _) => {
            "the recording was cut short (no end line: the recorder was killed, or is still running)"
                .into()
        }
    }
}

/// What peaked, when, where: "Peak 254 MiB RSS / 252 MiB PSS at 5.80 s — heap 246 MiB in
/// PID 10698 python3".
pub fn headline(a: &Analysis) -> Option<String> {
    let p = a.peak.as_ref()?;
    let where_ = match p.category {
        Some(c) => format!(
            "{} {} in PID {} {}",
            c.name(),
            bytes(p.category_pss_bytes),
            p.pid,
            p.name
        ),
        None => format!(
            "PID {} {} at {} RSS",
            p.pid,
            p.name,
            bytes(p.process_rss_bytes)
        ),
    };
    Some(format!(
        "Peak {} RSS / {} PSS at {} — {where_}",
        bytes(p.rss_sum_bytes),
        bytes(p.pss_bytes),
        seconds(p.t_s)
    ))
}

pub fn overhead(a: &Analysis) -> String {
    let o = &a.overhead;
    format!(
        "Sampler cost: {:.3} ms CPU per sample ({:.2}% of one core); {} status, {} smaps_rollup ({:.2} ms each), {} smaps reads ({:.2} ms each, dearest sample {:.2} ms)\n",
        o.cpu_s_per_sample * 1e3,
        o.cpu_share * 100.0,
        o.status_reads,
        o.rollup_reads,
        o.mean_rollup_s * 1e3,
        o.smaps_reads,
        o.mean_smaps_s * 1e3,
        o.max_smaps_s * 1e3,
    )
}

/// One row per process (RSS), then its categories (PSS), then the tree.
pub fn peaks(a: &Analysis) -> String {
    let mut t = table(&[
        "PID",
        "role",
        "process / category",
        "start",
        "peak",
        "above start",
        "at",
    ]);
    t.text_column(2);
    for p in &a.processes {
        t.add_row(vec![
            num(p.pid),
            Cell::new(p.role.name()),
            Cell::new(format!(
                "{} RSS (kernel peak {})",
                ellipsize(&p.name, 24),
                bytes(p.kernel_peak_rss_bytes)
            )),
            num(bytes(p.start_rss_bytes)),
            num(bytes(p.peak_rss_bytes)),
            num(signed_bytes(
                p.peak_rss_bytes as i64 - p.start_rss_bytes as i64,
            )),
            num(seconds(p.peak_rss_t_s)),
        ]);
        category_rows(&mut t, &p.categories);
    }
    let tr = &a.tree;
    t.add_row(vec![
        Cell::new("tree"),
        Cell::new(""),
        Cell::new(format!(
            "PSS (up to {} process{})",
            tr.max_processes,
            if tr.max_processes == 1 { "" } else { "es" }
        )),
        num(""),
        num(bytes(tr.peak_pss_bytes)),
        num(""),
        num(seconds(tr.peak_pss_t_s)),
    ]);
    t.add_row(vec![
        Cell::new("tree"),
        Cell::new(""),
        Cell::new("RSS sum"),
        num(bytes(tr.start_rss_sum_bytes)),
        num(bytes(tr.peak_rss_sum_bytes)),
        num(signed_bytes(
            tr.peak_rss_sum_bytes as i64 - tr.start_rss_sum_bytes as i64,
        )),
        num(seconds(tr.peak_rss_sum_t_s)),
    ]);
    category_rows(&mut t, &tr.categories);
    format!("Peaks (times are seconds since the start)\n{t}\n")
}

/// "growing N MiB/h since T" lines, and plateaus.
/// One indented row per category large enough to matter.
fn category_rows(t: &mut Table, categories: &[CategoryPeak]) {
    for c in categories
        .iter()
        .filter(|c| c.peak_pss_bytes >= MIN_CATEGORY_ROW)
    {
        t.add_row(vec![
            Cell::new(""),
            Cell::new(""),
            Cell::new(format!("  {} PSS", c.category)),
            num(bytes(c.start_pss_bytes)),
            num(bytes(c.peak_pss_bytes)),
            num(signed_bytes(
                c.peak_pss_bytes as i64 - c.start_pss_bytes as i64,
            )),
            num(seconds(c.peak_t_s)),
        ]);
    }
}

pub fn findings(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "No series grew steadily: no leak found.\n".into();
    }
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(out, "{}", finding_line(f));
    }
    out
}

pub fn finding_line(f: &Finding) -> String {
    let who = match (f.pid, f.role) {
        (Some(pid), Some(role)) => format!("PID {pid} {} ({})", f.name, role.name()),
        _ => f.name.clone(),
    };
    match &f.trend {
        Trend::Growing {
            bytes_per_hour,
            since_t_s,
            grown_bytes,
            from_bytes,
            to_bytes,
            peak_bytes,
            peak_t_s,
        } => {
            let mut line = format!(
                "{who} {}: growing {}/h since t={} (from {} to {}, +{} so far)",
                f.series,
                bytes(*bytes_per_hour as u64),
                seconds(*since_t_s),
                bytes(*from_bytes as u64),
                bytes(*to_bytes as u64),
                bytes(*grown_bytes as u64)
            );
            if peak_t_s < since_t_s && peak_bytes > to_bytes {
                let _ = write!(
                    line,
                    "; still below its peak of {} at t={}",
                    bytes(*peak_bytes as u64),
                    seconds(*peak_t_s)
                );
            }
            line
        }
        Trend::Plateau {
            since_t_s,
            level_bytes,
            start_bytes,
            peak_bytes,
            peak_t_s,
            ..
        } => format!(
            "{who} {}: rose from {} to {} (peak at t={}) and has held near {} since t={}: a plateau, not a leak",
            f.series,
            bytes(*start_bytes as u64),
            bytes(*peak_bytes as u64),
            seconds(*peak_t_s),
            bytes(*level_bytes as u64),
            seconds(*since_t_s)
        ),
    }
}
