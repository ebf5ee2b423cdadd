//! `ramscope fit` output: the verdict and its findings, each process and the pod's memory by
//! kind at load, steady and at the growth caps, what a running server holds now, and the
//! Kubernetes values as a YAML snippet whose every number carries its arithmetic as a
//! comment. The JSON is the assessment as serde writes it (`ramscope.fit/1`, docs/fit.md).

use std::fmt::Write;

use crate::fit::split::{Kind, Range, Split};
use crate::fit::Assessment;
use crate::proc::cgroup::CgroupVersion;
use crate::units::{bytes, bytes_range};

use super::{num, table, Cell};

/// The text report. Untrusted strings (titles, model names, messages) are escaped; the
/// YAML is not re-wrapped, so it can be copied as it is.
pub fn render(a: &Assessment) -> String {
    let mut out = String::new();
    heading(&mut out, a);
    findings(&mut out, a);
    if a.estimate.is_some() {
        per_process(&mut out, a);
        pod(&mut out, a);
    }
    checked(&mut out, a);
    measured(&mut out, a);
    for n in a.notes.iter().chain(&a.kubernetes.notes) {
        let _ = writeln!(out, "note: {n}");
    }
    format!(
        "{}\nKubernetes:\n{}",
        crate::text::for_terminal(out),
        crate::text::clean_lines(a.kubernetes.yaml.clone())
    )
}

fn amount(r: Range) -> String {
    if r.is_exact() {
        bytes(r.bytes)
    } else {
        format!(
            "{} ({})",
            bytes(r.bytes),
            bytes_range(r.low_bytes, r.high_bytes)
        )
    }
}

/// `anonymous 1.00 GiB, pinned 256 MiB, shared 0 B, file 300 MiB`.
fn kinds(s: &Split) -> String {
    Kind::ALL
        .iter()
        .map(|&k| format!("{} {}", k.name(), bytes(s.get(k).bytes)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn heading(out: &mut String, a: &Assessment) {
    let _ = writeln!(out, "ramscope fit: {}", a.summary);
    match &a.estimate {
        Some(e) => {
            let title = crate::engines::named(e.engine).map_or(e.engine, |x| x.title());
            let _ = writeln!(
                out,
                "{title} {} ({}), model {} (weights {})",
                e.engine_version,
                e.device,
                e.model,
                bytes(e.weights_bytes)
            );
            if let Some(assumed) = &e.version_assumed {
                let _ = writeln!(out, "warning: {assumed}");
            }
        }
        None => {
            let _ = writeln!(out, "No estimate: checked as measured.");
        }
    }
    let source = |s: &Option<String>| s.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
    let known = |v: Option<u64>, none: &str| v.map_or(none.to_string(), bytes);
    let _ = writeln!(
        out,
        "Memory limit {}{}; node memory {}{}; /dev/shm {}{}",
        known(a.host.limit_bytes, "none"),
        source(&a.sources.limit),
        known(a.host.mem_total_bytes, "unknown"),
        source(&a.sources.node_memory),
        known(a.host.shm_size_bytes, "unknown"),
        source(&a.sources.shm_size)
    );
    out.push('\n');
}

fn findings(out: &mut String, a: &Assessment) {
    if a.findings.is_empty() {
        let _ = writeln!(out, "Fits: no finding.");
    } else {
        let _ = writeln!(out, "Findings, worst first:");
        for f in &a.findings {
            let _ = writeln!(out, "  {}: {}", f.summary, f.detail);
        }
    }
    if let Some(r) = &a.refusal {
        let _ = writeln!(
            out,
            "The engine's own check: {}\n  {}\n  source: {}",
            r.message, r.arithmetic, r.source
        );
    }
    out.push('\n');
}

fn per_process(out: &mut String, a: &Assessment) {
    let _ = writeln!(
        out,
        "Per process, non-reclaimable (anonymous + pinned + shared; file-backed is page cache, reclaimable):"
    );
    let mut t = table(&[
        "process",
        "count",
        "load peak",
        "steady",
        "+ growth",
        "file-backed",
    ]);
    t.optional_column(5);
    for p in &a.processes {
        let e = &p.each;
        t.add_row_with_detail(
            vec![
                Cell::new(p.role.name()),
                num(p.count),
                num(bytes(e.load_peak.non_reclaimable().bytes)),
                num(bytes(e.steady.non_reclaimable().bytes)),
                num(bytes(e.growth_bound.non_reclaimable().bytes)),
                num(bytes(e.steady.file.bytes)),
            ],
            vec![format!("steady: {}", kinds(&e.steady))],
        );
    }
    let _ = writeln!(out, "{t}");
}

fn pod(out: &mut String, a: &Assessment) {
    let _ = writeln!(out, "Pod (every process × its count):");
    let phases = &a.pod.phases;
    let mut t = table(&["memory", "load peak", "steady", "steady + growth"]);
    for kind in Kind::ALL {
        t.add_row(vec![
            Cell::new(kind.describe()),
            num(bytes(phases.load_peak.get(kind).bytes)),
            num(bytes(phases.steady.get(kind).bytes)),
            num(bytes(phases.growth_bound.get(kind).bytes)),
        ]);
    }
    let nr = |s: &Split| s.non_reclaimable();
    t.add_row(vec![
        Cell::new("non-reclaimable"),
        num(bytes(nr(&phases.load_peak).bytes)),
        num(bytes(nr(&phases.steady).bytes)),
        num(bytes(nr(&phases.growth_bound).bytes)),
    ]);
    let range = |s: &Split| bytes_range(nr(s).low_bytes, nr(s).high_bytes);
    t.add_row(vec![
        Cell::new("  its range"),
        num(range(&phases.load_peak)),
        num(range(&phases.steady)),
        num(range(&phases.growth_bound)),
    ]);
    let _ = writeln!(out, "{t}");
    let _ = writeln!(
        out,
        "Model files read at load stay in the page cache: {} (charged to the cgroup, reclaimable, cold once loaded).",
        bytes(a.pod.page_cache_read_through_bytes)
    );
    if a.pod.shm_needed_bytes > 0 {
        let _ = writeln!(
            out,
            "/dev/shm segments map {} (mostly sparse; tmpfs pages count against the limit once written).",
            bytes(a.pod.shm_needed_bytes)
        );
    }
    for g in &a.growth {
        let cap = match (&g.knob, g.capped) {
            (Some(knob), true) => format!("capped by {knob}"),
            (Some(knob), false) => format!("NOT capped: {knob}"),
            (None, _) => "NOT capped: no knob bounds it".to_string(),
        };
        let _ = writeln!(
            out,
            "Grows with traffic: {} in {} × {}: {} each, {cap}.",
            g.component,
            g.count,
            g.role.name(),
            amount(g.each)
        );
    }
}

fn checked(out: &mut String, a: &Assessment) {
    let f = &a.figures;
    let _ = writeln!(
        out,
        "Checked: load peak {}; steady {} + file-backed read all the time {}; with growth {} + {}{}.",
        amount(f.load_non_reclaimable),
        amount(f.steady_non_reclaimable),
        bytes(f.hot_file.bytes),
        amount(f.growth_non_reclaimable),
        bytes(f.growth_hot_file.bytes),
        if f.from_measurement {
            " (the steady state as measured)"
        } else {
            ""
        }
    );
}

fn measured(out: &mut String, a: &Assessment) {
    if let Some(m) = &a.measured {
        let _ = writeln!(out, "\nMeasured now (PSS, at {}):", m.taken_at);
        let mut t = table(&["pid", "process", "anonymous", "pinned", "shared", "file"]);
        t.text_column(1);
        for p in &m.processes {
            let s = &p.split;
            t.add_row(vec![
                num(p.pid),
                Cell::new(format!("{} ({})", p.name, p.role.name())),
                num(bytes(s.anonymous.bytes)),
                num(bytes(s.pinned.bytes)),
                num(bytes(s.shared.bytes)),
                num(bytes(s.file.bytes)),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    if let Some(c) = &a.cgroup {
        let opt = |v: Option<u64>| v.map_or("unknown".to_string(), bytes);
        let version = match c.version {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        };
        let _ = writeln!(
            out,
            "Memory cgroup {} ({version}): limit {}, usage {}, working set (usage − inactive file) {}, shmem {}.",
            c.path,
            c.limit_bytes.map_or("none".to_string(), bytes),
            opt(c.usage_bytes),
            opt(c.working_set_bytes),
            opt(c.shmem_bytes)
        );
    }
}
