//! `ramscope measure` output.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::attribute::Category;
use crate::snapshot::TreeSnapshot;
use crate::units::bytes;

use super::{ellipsize, num, percent, table, Cell};

/// The breakdown asked for with `--by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakdown {
    Process,
    Category,
    Mapping,
}

/// The report, with every untrusted string (titles, command lines, config values) escaped.
pub fn render(snapshot: &TreeSnapshot, by: Breakdown, top: Option<usize>) -> String {
    crate::text::for_terminal(render_raw(snapshot, by, top))
}

fn render_raw(snapshot: &TreeSnapshot, by: Breakdown, top: Option<usize>) -> String {
    let mut out = String::new();
    match by {
        Breakdown::Process => {
            out.push_str(&processes(snapshot, top));
            out.push('\n');
            out.push_str(&categories(snapshot, top));
        }
        Breakdown::Category => out.push_str(&categories(snapshot, top)),
        Breakdown::Mapping => out.push_str(&mappings(snapshot, top.unwrap_or(25))),
    }
    out.push('\n');
    out.push_str(&footer(snapshot));
    out
}

fn processes(s: &TreeSnapshot, top: Option<usize>) -> String {
    let mut t = table(&[
        "PID", "PPID", "role", "process", "PSS", "USS", "RSS", "swap", "threads",
    ]);
    t.text_column(3)
        .optional_column(1)
        .optional_column(5)
        .optional_column(7)
        .optional_column(8);
    let mut procs: Vec<_> = s.processes.iter().collect();
    procs.sort_by(|a, b| b.pss_bytes.cmp(&a.pss_bytes).then(a.pid.cmp(&b.pid)));
    for p in procs.iter().take(top.unwrap_or(usize::MAX)) {
        let label = if p.cmdline.is_empty() {
            &p.name
        } else {
            &p.cmdline
        };
        t.add_row(vec![
            num(p.pid),
            num(p.ppid),
            Cell::new(p.role.name()),
            Cell::new(ellipsize(label.as_str(), 60)),
            num(bytes(p.pss_bytes)),
            num(bytes(p.uss_bytes)),
            num(bytes(p.rss_bytes)),
            num(bytes(p.swap_bytes)),
            num(p.threads),
        ]);
    }
    let hidden = procs.len().saturating_sub(top.unwrap_or(usize::MAX));
    let mut out = format!("{t}\n");
    if hidden > 0 {
        let _ = writeln!(
            out,
            "({hidden} smaller processes not shown; --top to change)"
        );
    }
    out
}

fn categories(s: &TreeSnapshot, top: Option<usize>) -> String {
    // One PSS column per process (largest first, as many as fit, at most six), then the
    // tree: the tree's own columns take about 55 terminal columns, a process about 13.
    let fitting = super::layout::terminal_width().saturating_sub(55) / 13;
    let mut procs: Vec<_> = s.processes.iter().collect();
    procs.sort_by_key(|p| std::cmp::Reverse(p.pss_bytes));
    procs.truncate(fitting.min(6));
    let mut header: Vec<String> = vec!["category".into()];
    header.extend(procs.iter().map(|p| format!("{} {}", p.role.name(), p.pid)));
    header.extend([
        "tree PSS".into(),
        "share".into(),
        "RSS sum".into(),
        "mapped sum".into(),
    ]);
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = table(&header_refs);
    // The tree's RSS sum and mapped size are what a narrow terminal can do without.
    let n = header_refs.len();
    t.optional_column(n - 1).optional_column(n - 2);

    let mut cats: Vec<(Category, u64, u64, u64)> = s
        .total
        .categories
        .iter()
        .map(|(&c, u)| (c, u.pss_bytes, u.rss_sum_bytes, u.size_sum_bytes))
        .collect();
    cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (c, pss, rss, mapped) in cats.iter().take(top.unwrap_or(usize::MAX)) {
        let mut row = vec![Cell::new(c.name())];
        row.extend(procs.iter().map(|p| num(bytes(p.category(*c).pss_bytes))));
        row.push(num(bytes(*pss)));
        row.push(num(percent(*pss, s.total.pss_bytes)));
        row.push(num(bytes(*rss)));
        row.push(num(bytes(*mapped)));
        t.add_row(row);
    }
    format!("{t}\n")
}

fn mappings(s: &TreeSnapshot, top: usize) -> String {
    #[derive(Default)]
    struct Row {
        category: Option<Category>,
        pss: u64,
        rss: u64,
        size: u64,
        processes: u64,
    }
    let mut rows: BTreeMap<(String, Category), Row> = BTreeMap::new();
    for p in &s.processes {
        for m in &p.mappings {
            let r = rows.entry((m.name.clone(), m.category)).or_default();
            r.category = Some(m.category);
            r.pss += m.pss_bytes;
            r.rss += m.rss_bytes;
            r.size += m.size_bytes;
            r.processes += 1;
        }
    }
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort_by(|a, b| b.1.pss.cmp(&a.1.pss).then(a.0.cmp(&b.0)));
    let mut t = table(&[
        "mapping",
        "category",
        "PSS",
        "RSS sum",
        "mapped",
        "processes",
    ]);
    t.text_column(0).optional_column(4).optional_column(5);
    for ((name, cat), r) in rows.iter().take(top) {
        t.add_row(vec![
            Cell::new(ellipsize(name, 80)),
            Cell::new(cat.name()),
            num(bytes(r.pss)),
            num(bytes(r.rss)),
            num(bytes(r.size)),
            num(r.processes),
        ]);
    }
    let mut out = format!("{t}\n");
    if rows.len() > top {
        let rest: u64 = rows.iter().skip(top).map(|r| r.1.pss).sum();
        let _ = writeln!(
            out,
            "({} more mappings with {} PSS not shown; --top to change)",
            rows.len() - top,
            bytes(rest)
        );
    }
    out
}

fn footer(s: &TreeSnapshot) -> String {
    let mut out = String::new();
    let n = s.processes.len();
    let _ = writeln!(
        out,
        "{n} process{}: PSS {} (shared pages split between their users: nothing counted twice), USS {}, RSS summed {} ({} more: shared pages counted once per process).",
        if n == 1 { "" } else { "es" },
        bytes(s.total.pss_bytes),
        bytes(s.total.uss_bytes),
        bytes(s.total.rss_sum_bytes),
        bytes(s.total.rss_sum_bytes.saturating_sub(s.total.pss_bytes)),
    );
    if s.total.swap_bytes > 0 {
        let _ = writeln!(
            out,
            "Swapped out: {} (proportional {}).",
            bytes(s.total.swap_bytes),
            bytes(s.total.swap_pss_bytes)
        );
    }
    if s.processes.iter().any(|p| p.uses_gpu) {
        let _ = writeln!(out, "`pinned` is shared anonymous memory in processes that map the GPU driver: CUDA pinned host buffers (inferred from the mapping's signature).");
    }
    for p in &s.processes {
        if let Some(m) = &p.reconciliation.mismatch {
            let _ = writeln!(out, "note: PID {}: {m}; totals from smaps.", p.pid);
        }
    }
    let skipped: Vec<String> = s
        .processes
        .iter()
        .filter(|p| p.reconciliation.skipped_rollup.is_some())
        .map(|p| p.pid.to_string())
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(
            out,
            "note: PSS of PID {} is summed from smaps, < 1 kB low per shared mapping (smaps_rollup skipped above 256 MiB of RSS; --exact reads it).",
            skipped.join(", ")
        );
    }
    for note in &s.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
