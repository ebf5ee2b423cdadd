//! `ramscope explain` output: per process, estimate beside measurement; then the container,
//! then advice.

use std::fmt::Write;

use crate::explain::{Explanation, Level};
use crate::units::{bytes, signed_bytes};

use super::{ellipsize, num, percent, table, Cell};

/// The report, with every untrusted string (titles, command lines, config values) escaped.
pub fn render(x: &Explanation) -> String {
    crate::text::for_terminal(render_raw(x))
}

fn render_raw(x: &Explanation) -> String {
    let mut out = String::new();
    let e = &x.estimate;
    // The installed version as written; with the release estimated when it is not that one.
    let installed = x.launch.as_ref().and_then(|l| l.version.clone());
    let version = match (installed, x.version_known) {
        (Some(v), true) => v,
        (Some(v), false) => format!("{v} (estimated as {})", e.engine_version),
        (None, true) => e.engine_version.clone(),
        (None, false) => format!("(version unknown; estimated as {})", e.engine_version),
    };
    let title = crate::engines::named(e.engine).map_or(e.engine, |x| x.title());
    let _ = writeln!(
        out,
        "{title} {}{} on {} · model {} ({}, {} of weights)",
        version,
        x.launch
            .as_ref()
            .and_then(|l| l.distribution.as_deref())
            .map(|d| format!(" ({d})"))
            .unwrap_or_default(),
        e.device.name(),
        e.model.name,
        e.model.architecture,
        bytes(e.model.weights_bytes),
    );
    if let Some(l) = &x.launch {
        let command = ellipsize(&l.argv.join(" "), 160);
        let _ = writeln!(out, "command: {}", crate::text::one_line_command(&command));
        let vars: Vec<String> = l
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("VLLM_"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !vars.is_empty() {
            let _ = writeln!(out, "environment: {}", vars.join(" "));
        }
    }
    if !x.doubts.is_empty() {
        let _ = writeln!(
            out,
            "\nThis explanation is doubtful: the model may not describe this tree."
        );
        for d in &x.doubts {
            let _ = writeln!(out, "  - {d}");
        }
    }
    out.push('\n');

    let mut t = table(&[
        "process",
        "memory",
        "estimated",
        "measured PSS",
        "difference",
        "components / what differs",
    ]);
    t.text_column(5).optional_column(4);
    for p in &x.processes {
        t.add_row(vec![
            Cell::new(format!("{} {}", p.role.name(), p.pid)),
            Cell::new("total"),
            num(bytes(p.estimated_bytes)),
            num(bytes(p.measured_pss_bytes)),
            num(signed_bytes(
                p.measured_pss_bytes as i64 - p.estimated_bytes as i64,
            )),
            Cell::new(format!(
                "{} explained",
                percent((p.explained_fraction * 1e4) as u64, 10_000)
            )),
        ]);
        for r in &p.rows {
            if r.estimated_bytes < 512 << 10 && r.measured_bytes < 512 << 10 {
                continue;
            }
            let what = match &r.residual {
                Some(text) => ellipsize(text.split(':').next().unwrap_or(text), 70),
                None => ellipsize(&r.components.join(", "), 90),
            };
            t.add_row(vec![
                Cell::new(""),
                Cell::new(r.category.name()),
                num(bytes(r.estimated_bytes)),
                num(bytes(r.measured_bytes)),
                num(signed_bytes(
                    r.measured_bytes as i64 - r.estimated_bytes as i64,
                )),
                Cell::new(what),
            ]);
        }
    }
    let _ = writeln!(out, "{t}");
    let _ = writeln!(
        out,
        "Tree: measured {} PSS ({} RSS summed); estimated {} steady, {} at the load peak. Explained: {} (bytes where estimate and measurement agree, over the larger of the two, per category).",
        bytes(x.measured_pss_bytes),
        bytes(x.snapshot.total.rss_sum_bytes),
        bytes(x.estimated_bytes),
        bytes(e.total.peak_bytes),
        percent((x.explained_fraction * 1e4) as u64, 10_000),
    );
    if e.total.page_cache_bytes > 0 {
        let _ = writeln!(
            out,
            "Outside every process: {} of weight files in the page cache (charged to the container's cgroup).",
            bytes(e.total.page_cache_bytes)
        );
    }

    if !x.checks.is_empty() {
        let _ = writeln!(out, "\nContainer and host:");
        for c in &x.checks {
            let mark = match c.level {
                Level::Ok => "ok  ",
                Level::Info => "info",
                Level::Warn => "WARN",
                Level::Critical => "FAIL",
            };
            let _ = writeln!(out, "  {mark} {}: {}", c.what, c.detail);
        }
    }
    if x.advice_withheld > 0 {
        let _ = writeln!(
            out,
            "\nAdvice withheld ({} suggestion{}): it would be priced on an estimate that does not match this tree (see above).",
            x.advice_withheld,
            if x.advice_withheld == 1 { "" } else { "s" }
        );
    } else if x.advice.is_empty() {
        let _ = writeln!(
            out,
            "\nNo change to the command line would save host RAM here."
        );
    } else {
        let _ = writeln!(
            out,
            "\nAdvice (each priced by estimating again with the change):"
        );
        let mut t = table(&["change", "saves", "why"]);
        t.text_column(0).text_column(2);
        for a in &x.advice {
            t.add_row(vec![
                Cell::new(&a.action),
                num(format!("{} {}", bytes(a.saves_bytes), a.applies_to)),
                Cell::new(&a.why),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    if let Some(t) = &x.trace {
        out.push_str(&super::trace::join_text(t));
    }
    for n in x.notes.iter().chain(&x.snapshot.notes) {
        let _ = writeln!(out, "note: {n}");
    }
    out
}
