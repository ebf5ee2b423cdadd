//! `ramscope scan` for people: the sites as a table (sorted by bytes when a configuration
//! is given), the `--check` verdict, and the JSON document with bytes per site.

use std::fmt::Write;

use serde::Serialize;

use crate::report::layout::wrap;
use crate::scan::check::{site_bytes, Check, Joined, SiteRef};
use crate::scan::{Bindings, Pinned, Resolution, Scan, Site};
use crate::text::clean;
use crate::units::bytes;

/// What to show.
pub struct View<'a> {
    /// Also sites sized by data and tensors on a run-time device.
    pub all: bool,
    pub min_bytes: Option<u64>,
    pub bindings: Option<(&'a Bindings, bool)>,
    pub describe: Option<String>,
    pub width: usize,
}

fn kind(s: &Site) -> String {
    let pin = match &s.pinned {
        Pinned::No => String::new(),
        Pinned::Yes => " pinned".into(),
        // vLLM pins when `is_pin_memory_available()`: on CUDA, not on the CPU backend.
        Pinned::When(c) if c.contains("pin_memory") => " pinned on CUDA".into(),
        Pinned::When(c) => format!(" pinned if {}", clean(c)),
    };
    format!("{}{pin}", s.method.name())
}

fn resolution(r: Resolution) -> &'static str {
    match r {
        Resolution::Full => "resolved",
        Resolution::Partial => "partly",
        Resolution::None => "data",
    }
}

fn header(scan: &Scan) -> String {
    let what = match (&scan.package, &scan.version) {
        (Some(p), Some(v)) => format!("{p} {v}"),
        (Some(p), None) => format!("{p} (release unknown)"),
        (None, Some(v)) => v.clone(),
        (None, None) => "release unknown".into(),
    };
    format!(
        "host-RAM allocation sites in {} ({what})\n",
        clean(&scan.root.display().to_string())
    )
}

/// The site list.
pub fn sites(scan: &Scan, view: &View) -> String {
    let mut out = header(scan);
    if let Some(d) = &view.describe {
        let _ = writeln!(out, "evaluated for {}", clean(d));
    }
    let mut rows: Vec<(&Site, Option<u64>)> = scan
        .sites
        .iter()
        .filter(|s| view.all || (s.resolution != Resolution::None && s.method.always_host()))
        .map(|s| (s, view.bindings.and_then(|(b, pin)| site_bytes(s, b, pin))))
        .collect();
    let shown_before = rows.len();
    if let Some(min) = view.min_bytes {
        rows.retain(|(_, b)| b.is_some_and(|b| b >= min));
    }
    if view.bindings.is_some() {
        rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    }
    // One entry per site: bytes (with a configuration) or resolution, anchor and kind on the
    // first line; the formula, then where and through what, indented below. Paths and
    // formulas are long, and a table would squeeze the one thing people read: the formula.
    let indent = 11;
    let room = view.width.saturating_sub(indent).max(20);
    for (s, b) in &rows {
        let head = match (view.bindings.is_some(), b) {
            (true, Some(b)) => format!("{:>9}", bytes(*b)),
            (true, None) => format!("{:>9}", "?"),
            (false, _) => format!("{:>9}", resolution(s.resolution)),
        };
        let _ = writeln!(out, "{head}  {}  {}", clean(&s.anchor), kind(s));
        let mut below = vec![format!("{} B", clean(&s.formula.to_string()))];
        let mut at = format!("{}:{}", clean(&s.file), s.line);
        if !s.via.is_empty() {
            let via: Vec<String> = s
                .via
                .iter()
                .map(|h| format!("{} ({}:{})", clean(&h.callee), clean(&h.file), h.line))
                .collect();
            at.push_str(&format!(" via {}", via.join(" → ")));
        }
        below.push(at);
        for text in below {
            for line in wrap(&text, room) {
                let _ = writeln!(out, "{:indent$}{line}", "");
            }
        }
    }
    let hidden = scan.sites.len() - shown_before;
    let _ = writeln!(
        out,
        "\n{} sites shown of {}{}; {} files read, {} parsed ({}){}",
        rows.len(),
        scan.sites.len(),
        if hidden > 0 && !view.all {
            format!(" ({hidden} sized by data or on a run-time device: --all)")
        } else {
            String::new()
        },
        scan.files_scanned,
        scan.files_parsed,
        bytes(scan.bytes_scanned),
        if scan.skipped.is_empty() {
            String::new()
        } else {
            format!(
                "; {} skipped or partly parsed (--json lists them)",
                scan.skipped.len()
            )
        }
    );
    out
}

fn site_line(r: &SiteRef) -> String {
    format!(
        "{}:{}  {}  {} B{}",
        clean(&r.file),
        r.line,
        clean(&r.anchor),
        clean(&r.formula),
        r.bytes
            .map_or_else(String::new, |b| format!(" = {}", bytes(b)))
    )
}

fn joined_line(j: &Joined) -> String {
    let est = if j.low_bytes == j.high_bytes {
        bytes(j.estimated_bytes)
    } else {
        format!(
            "{} ({}–{})",
            bytes(j.estimated_bytes),
            bytes(j.low_bytes),
            bytes(j.high_bytes)
        )
    };
    let scanned = j.scanned_bytes.map_or_else(|| "?".to_string(), bytes);
    format!("{}: estimated {est}, source {scanned}", clean(&j.component))
}

/// The `--check` verdict.
pub fn check(scan: &Scan, c: &Check, describe: &str) -> String {
    let mut out = header(scan);
    let _ = writeln!(out, "checked against the estimator for {}", clean(describe));
    let _ = writeln!(
        out,
        "\ncomponents joined to their sites ({}):",
        c.joined.len()
    );
    for j in &c.joined {
        let _ = writeln!(out, "  ok  {}", joined_line(j));
        for s in &j.sites {
            let _ = writeln!(out, "        {}", site_line(s));
        }
    }
    let section = |out: &mut String, title: &str, n: usize| {
        let _ = writeln!(out, "\n{title} ({n}):");
    };
    section(
        &mut out,
        "stale: the release has none of the component's sites",
        c.stale.len(),
    );
    for j in &c.stale {
        let _ = writeln!(
            out,
            "  {}  (looked for {})",
            clean(&j.component),
            j.missing.join(", ")
        );
    }
    section(
        &mut out,
        "formula differs from the source",
        c.mismatched.len(),
    );
    for j in &c.mismatched {
        let _ = writeln!(out, "  {}", joined_line(j));
        for s in &j.sites {
            let _ = writeln!(out, "        {}", site_line(s));
        }
    }
    section(
        &mut out,
        &format!(
            "sites of {} or more that no component models",
            bytes(c.threshold_bytes)
        ),
        c.unmodelled.len(),
    );
    for s in &c.unmodelled {
        let _ = writeln!(out, "  {}", site_line(s));
    }
    section(
        &mut out,
        "known gaps (left out on purpose, with why)",
        c.known.len(),
    );
    for k in &c.known {
        let _ = writeln!(out, "  {}\n      {}", site_line(&k.site), clean(&k.why));
    }
    section(
        &mut out,
        "not modelled yet (sized by run-time settings)",
        c.not_modelled.len(),
    );
    for k in &c.not_modelled {
        let _ = writeln!(out, "  {}\n      {}", site_line(&k.site), clean(&k.why));
    }
    let _ = writeln!(
        out,
        "\n{} unexplained difference(s); {} sites could not be evaluated for this configuration",
        c.failures(),
        c.unevaluated
    );
    out
}

#[derive(Serialize)]
struct SiteWithBytes<'a> {
    #[serde(flatten)]
    site: &'a Site,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
}

#[derive(Serialize)]
struct Doc<'a> {
    #[serde(flatten)]
    scan: &'a Scan,
    evaluated: bool,
    #[serde(rename = "sites")]
    with_bytes: Vec<SiteWithBytes<'a>>,
}

/// `ramscope.scan/1`, with each site's bytes when a configuration is given.
pub fn json(scan: &Scan, bindings: Option<(&Bindings, bool)>) -> serde_json::Value {
    let with_bytes: Vec<SiteWithBytes> = scan
        .sites
        .iter()
        .map(|s| SiteWithBytes {
            site: s,
            bytes: bindings.and_then(|(b, pin)| site_bytes(s, b, pin)),
        })
        .collect();
    let mut v = serde_json::to_value(Doc {
        scan,
        evaluated: bindings.is_some(),
        with_bytes: Vec::new(),
    })
    .unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "sites".into(),
            serde_json::to_value(with_bytes).unwrap_or_default(),
        );
    }
    v
}
