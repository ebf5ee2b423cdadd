//! `ramscope trace report` output: the processes, the tree's peak, the top allocation sites
//! (or live bytes per process, role or category), pinned memory, lost events; and the flame
//! graph of live bytes.

use std::fmt::Write;

use crate::attribute::Category;
use crate::trace::aggregate::{Report, SiteReport};
use crate::trace::format::Kind;
use crate::trace::join::TraceJoin;
use crate::trace::label::flame_native;
use crate::units::{bytes, signed_bytes};

use super::{ellipsize, num, table, Cell};

/// What the text shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Site,
    Process,
    Role,
    Category,
}

/// Which live bytes: at each process's last write, or at its own peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    End,
    Peak,
}

#[derive(Debug, Clone, Copy)]
pub struct Show {
    pub by: By,
    pub top: usize,
    pub stacks: bool,
}

/// The text report, every untrusted string (titles, paths, function names) escaped.
pub fn render(r: &Report, show: Show) -> String {
    crate::text::for_terminal(render_raw(r, show))
}

fn render_raw(r: &Report, show: Show) -> String {
    let mut out = String::new();
    let images = r.processes.len();
    let pids = {
        let mut p: Vec<u32> = r.processes.iter().map(|p| p.pid).collect();
        p.sort_unstable();
        p.dedup();
        p.len()
    };
    let _ = writeln!(
        out,
        "Trace {}: {pids} process{}{}",
        r.dir,
        if pids == 1 { "" } else { "es" },
        if images > pids {
            format!(" ({images} images: exec started new programs)")
        } else {
            String::new()
        }
    );
    if !r.command.is_empty() {
        let command = ellipsize(&r.command.join(" "), 160);
        let _ = writeln!(out, "command: {}", crate::text::one_line_command(&command));
    }
    match &r.tree_peak {
        Some(p) => {
            // The largest contributors; a tree of shell helpers has dozens of small ones.
            let mut largest: Vec<(&String, &u64)> = p.processes.iter().collect();
            largest.sort_by_key(|(_, b)| std::cmp::Reverse(**b));
            let more = largest.len().saturating_sub(5);
            let mut parts: Vec<String> = largest
                .into_iter()
                .take(5)
                .map(|(name, b)| {
                    let role = r.processes.iter().find(|p| &p.name == name);
                    let role = role.map_or("", |p| p.role.name());
                    format!("{role} {name}: {}", bytes(*b))
                })
                .collect();
            if more > 0 {
                parts.push(format!("{more} more"));
            }
            let _ = writeln!(
                out,
                "Tree peak: {} traced live at +{:.1} s{} ({})",
                bytes(p.live_bytes),
                p.after_ns as f64 / 1e9,
                p.vm_rss_bytes
                    .map(|b| format!(", VmRSS summed {}", bytes(b)))
                    .unwrap_or_default(),
                parts.join(", ")
            );
        }
        None => {
            let _ = writeln!(out, "Tree peak: unknown (no process wrote a sample)");
        }
    }
    out.push('\n');
    processes(&mut out, r, show);
    match show.by {
        By::Site => sites(&mut out, r, show),
        By::Process => breakdown(
            &mut out,
            "Live bytes at the end, per process",
            r.processes
                .iter()
                .map(|p| (format!("{} {}", p.role.name(), p.name), &p.categories))
                .collect(),
        ),
        By::Role => breakdown(
            &mut out,
            "Live bytes at the end, per role",
            r.roles
                .iter()
                .map(|x| (format!("{} ×{}", x.role.name(), x.processes), &x.categories))
                .collect(),
        ),
        By::Category => categories(&mut out, r),
    }
    pinned(&mut out, r);
    if r.pinned_registered_bytes > 0 {
        let _ = writeln!(
            out,
            "\nRegistered with CUDA (cudaHostRegister): {} — already counted in the kind that allocated it.",
            bytes(r.pinned_registered_bytes)
        );
    }
    if !r.lost.is_empty() {
        let parts: Vec<String> = r.lost.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            out,
            "\nLost events: {} — their bytes are in the totals, but not in any site.",
            parts.join(", ")
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

/// The processes, in the order they began; with more than `top`, the `top` of the
/// largest own peak (`--by process` shows every one).
fn processes(out: &mut String, r: &Report, show: Show) {
    let mut t = table(&[
        "process", "role", "title", "python", "live", "own peak", "state",
    ]);
    t.text_column(2).optional_column(6).optional_column(3);
    let mut shown: Vec<usize> = (0..r.processes.len()).collect();
    if show.by != By::Process && shown.len() > show.top {
        shown.sort_by_key(|&i| std::cmp::Reverse(r.processes[i].peak.map_or(0, |k| k.live)));
        shown.truncate(show.top);
        shown.sort_unstable();
    }
    for p in shown.iter().map(|&i| &r.processes[i]) {
        let state = match (p.is_final, p.last_image) {
            (true, false) => "exec'd",
            (true, true) => "exited",
            (false, _) => "running or killed",
        };
        t.add_row(vec![
            Cell::new(&p.name),
            Cell::new(p.role.name()),
            Cell::new(ellipsize(&p.comm, 40)),
            Cell::new(p.python.as_deref().unwrap_or("-")),
            num(bytes(p.live_bytes())),
            num(p.peak.map_or("-".into(), |k| bytes(k.live))),
            Cell::new(state),
        ]);
    }
    let _ = writeln!(out, "{t}");
    let hidden = r.processes.len() - shown.len();
    if hidden > 0 {
        let _ = writeln!(
            out,
            "… and {hidden} more process image(s) with smaller peaks (--by process lists all)."
        );
    }
}

/// `1.00 MiB ±12%` for a sampled estimate, the bytes alone when exact.
fn estimate(b: u64, rel_error: Option<f64>) -> String {
    match rel_error {
        Some(e) => format!("{} ±{:.0}%", bytes(b), e * 100.0),
        None => bytes(b),
    }
}

fn sites(out: &mut String, r: &Report, show: Show) {
    let mut at_peak: Vec<&SiteReport> = r.sites.iter().filter(|s| s.at_peak_bytes > 0).collect();
    at_peak.sort_by_key(|s| std::cmp::Reverse(s.at_peak_bytes));
    site_table(
        out,
        &format!(
            "\nTop {} sites at each process's own peak (live bytes when that process peaked; processes peak at different times):",
            show.top
        ),
        &at_peak,
        At::Peak,
        show,
    );
    let live: Vec<&SiteReport> = r.sites.iter().filter(|s| s.live_bytes > 0).collect();
    site_table(
        out,
        &format!("\nTop {} sites by live bytes at the end:", show.top),
        &live,
        At::End,
        show,
    );
    if r.sites.iter().any(|s| s.sampled) {
        let _ = writeln!(
            out,
            "± is a sampled site's relative standard error (allocations below min_size are sampled by bytes); other sites are exact."
        );
    }
}

fn site_table(out: &mut String, title: &str, sites: &[&SiteReport], at: At, show: Show) {
    let _ = writeln!(out, "{title}");
    if sites.is_empty() {
        let _ = writeln!(out, "  (none)");
        return;
    }
    let mut t = table(&["bytes", "resident", "kind", "process", "site"]);
    t.text_column(4).optional_column(1);
    for s in sites.iter().take(show.top) {
        let value = match at {
            At::End => estimate(s.live_bytes, s.live_rel_error),
            At::Peak => estimate(s.at_peak_bytes, s.at_peak_rel_error),
        };
        let resident = match (at, s.resident_bytes) {
            (At::End, Some(b)) => bytes(b),
            _ => "-".into(),
        };
        let cells = vec![
            num(value),
            num(resident),
            Cell::new(s.kind.name()),
            Cell::new(format!("{} {}", s.role.name(), s.process)),
            Cell::new(&s.label),
        ];
        if show.stacks {
            t.add_row_with_detail(cells, stack_lines(s));
        } else {
            t.add_row(cells);
        }
    }
    let _ = writeln!(out, "{t}");
}

/// The whole stack, innermost first: Python frames, then native ones.
fn stack_lines(s: &SiteReport) -> Vec<String> {
    let mut lines: Vec<String> = s
        .python
        .iter()
        .map(|f| format!("py  {}", f.label()))
        .collect();
    lines.extend(
        s.native
            .iter()
            .map(|f| format!("    {} [{}]", f.label(), f.module_name())),
    );
    for r in &s.regions {
        lines.push(format!(
            "    region {:#x} {} (rounded {}, resident {}){}",
            r.start,
            bytes(r.len),
            bytes(r.rounded),
            r.resident.map_or("-".into(), bytes),
            r.path
                .as_deref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default()
        ));
    }
    lines
}

/// Rows of categories, one column per category that has bytes anywhere.
fn breakdown(
    out: &mut String,
    title: &str,
    rows: Vec<(String, &std::collections::BTreeMap<Category, u64>)>,
) {
    let _ = writeln!(out, "\n{title}:");
    let mut columns: Vec<Category> = rows.iter().flat_map(|(_, c)| c.keys().copied()).collect();
    columns.sort();
    columns.dedup();
    let mut header = vec!["", "total"];
    header.extend(columns.iter().map(|c| c.name()));
    let mut t = table(&header);
    for (name, cats) in rows {
        let mut cells = vec![Cell::new(name), num(bytes(cats.values().sum()))];
        cells.extend(
            columns
                .iter()
                .map(|c| num(cats.get(c).map_or("-".into(), |b| bytes(*b)))),
        );
        t.add_row(cells);
    }
    let _ = writeln!(out, "{t}");
}

fn categories(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "\nLive bytes at the end, per category (the categories of `ramscope measure`):"
    );
    let mut t = table(&["category", "live", "what"]);
    t.text_column(2);
    let mut rows: Vec<(&Category, &u64)> = r.categories.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1));
    for (c, b) in rows {
        t.add_row(vec![
            Cell::new(c.name()),
            num(bytes(*b)),
            Cell::new(c.describe()),
        ]);
    }
    let _ = writeln!(out, "{t}");
}

/// Pinned sites: what was asked of CUDA, what the driver mapped, what is in RAM.
fn pinned(out: &mut String, r: &Report) {
    let sites: Vec<&SiteReport> = r
        .sites
        .iter()
        .filter(|s| s.kind == Kind::Pinned && s.live_bytes > 0)
        .collect();
    if sites.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nPinned memory (requested of CUDA, mapped by the driver, resident):"
    );
    let mut t = table(&["requested", "rounded", "resident", "process", "site"]);
    t.text_column(4);
    for s in sites {
        let rounded: u64 = s.regions.iter().map(|r| r.rounded).sum();
        let resident: Option<u64> = s
            .regions
            .iter()
            .map(|r| r.resident)
            .sum::<Option<u64>>()
            .or(s.resident_bytes);
        t.add_row(vec![
            num(bytes(s.live_bytes)),
            num(if s.regions.is_empty() {
                "-".into()
            } else {
                bytes(rounded)
            }),
            num(resident.map_or("-".into(), bytes)),
            Cell::new(format!("{} {}", s.role.name(), s.process)),
            Cell::new(&s.label),
        ]);
    }
    let _ = writeln!(out, "{t}");
}

/// Folded stacks for a flame graph: `role;process;python frames outermost first;native
/// frames outermost first bytes`.
pub fn folded(r: &Report, at: At) -> Vec<String> {
    let mut lines = Vec::new();
    for s in &r.sites {
        let value = match at {
            At::End => s.live_bytes,
            At::Peak => s.at_peak_bytes,
        };
        if value == 0 {
            continue;
        }
        let mut frames = vec![
            s.role.name().to_string(),
            format!("{} {}", s.process, process_title(r, &s.process)),
        ];
        frames.extend(s.python.iter().rev().map(|f| f.label()));
        frames.extend(flame_native(&s.python, &s.native));
        frames.push(format!("[{}]", s.kind.name()));
        let frames: Vec<String> = frames.iter().map(|f| frame_name(f)).collect();
        lines.push(format!("{} {value}", frames.join(";")));
    }
    lines
}

fn process_title<'r>(r: &'r Report, name: &str) -> &'r str {
    r.processes
        .iter()
        .find(|p| p.name == name)
        .map_or("", |p| p.comm.as_str())
}

/// A frame as the folded format allows: no `;`, no line breaks or other control characters.
fn frame_name(f: &str) -> String {
    f.chars()
        .map(|c| if c == ';' || c.is_control() { '_' } else { c })
        .collect()
}

/// Writes a self-contained SVG flame graph of live bytes.
pub fn flame(r: &Report, at: At, out: impl std::io::Write) -> std::io::Result<()> {
    let lines = folded(r, at);
    if lines.is_empty() {
        return Err(std::io::Error::other(
            "no site holds live bytes: nothing to draw",
        ));
    }
    let mut options = inferno::flamegraph::Options::default();
    options.title = match at {
        At::End => "Live bytes at the end".into(),
        At::Peak => "Live bytes at each process's own peak".into(),
    };
    options.subtitle = Some(r.dir.clone());
    options.count_name = "bytes".into();
    options.colors =
        inferno::flamegraph::color::Palette::Basic(inferno::flamegraph::color::BasicPalette::Mem);
    options.hash = true;
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
}

/// `explain --trace`: each component's estimate beside the traced live bytes at its cited
/// lines, then the heap no component explains.
pub fn join_text(j: &TraceJoin) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nEstimate beside the trace {} (sites matched by the source line each component cites):",
        j.dir
    );
    let mut t = table(&[
        "component",
        "estimated",
        "traced at peak",
        "traced at end",
        "in",
    ]);
    t.text_column(4).optional_column(2);
    let mut missing = Vec::new();
    for c in &j.components {
        let name = format!("{} {}", c.role.name(), c.id);
        match &c.traced {
            Some(tr) => {
                t.add_row(vec![
                    Cell::new(name),
                    num(bytes(c.estimated_bytes)),
                    num(bytes(tr.at_peak_bytes)),
                    num(bytes(tr.live_bytes)),
                    Cell::new(tr.processes.join(", ")),
                ]);
            }
            None => missing.push(c),
        }
    }
    if t.is_empty() {
        let _ = writeln!(out, "  no component's cited lines are in the trace");
    } else {
        let _ = writeln!(out, "{t}");
    }
    // Largest first; components of no bytes in this configuration say nothing here.
    missing.sort_by_key(|c| std::cmp::Reverse(c.estimated_bytes));
    missing.retain(|c| c.estimated_bytes > 0);
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "Not traced ({}): normal for what is allocated lazily (on the first request, or by a feature this run did not use), for heap below min_size that no sample hit, for library pages (the loader maps them), or when the traced vLLM is another release whose lines moved.",
            missing.len()
        );
        let mut t = table(&["component", "estimated", "cites", "why"]);
        t.text_column(2).text_column(3).optional_column(3);
        for c in missing {
            t.add_row(vec![
                Cell::new(format!("{} {}", c.role.name(), c.id)),
                num(bytes(c.estimated_bytes)),
                Cell::new(&c.source),
                Cell::new(c.why_not.as_deref().unwrap_or("")),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    if !j.unmatched_heap_sites.is_empty() {
        let _ = writeln!(
            out,
            "\nHeap the estimate leaves unexplained (measured − estimated: {}); the largest traced heap sites no component cites:",
            signed_bytes(j.heap_residual_bytes)
        );
        let mut t = table(&["live at end", "at peak", "process", "site"]);
        t.text_column(3);
        for s in &j.unmatched_heap_sites {
            t.add_row(vec![
                num(bytes(s.live_bytes)),
                num(bytes(s.at_peak_bytes)),
                Cell::new(format!("{} {}", s.role.name(), s.process)),
                Cell::new(&s.label),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    for n in &j.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}
