//! `ramscope scan --check`: the estimator against one release's source. Three kinds of
//! difference fail it: a component whose sites are gone from the release (stale), a site
//! that reaches the threshold at the evaluated configuration and that no component models
//! and no known gap explains (unmodelled), and a component whose bytes differ from its
//! sites' evaluated formulas (mismatch).

use std::collections::BTreeSet;

use super::sites::{self, Modelled, Runner, CPU_BACKEND_FILES, KNOWN_GAPS, NOT_MODELLED, RUNNERS};
use super::source_lines;
use crate::footprint::{Component, Estimate};
use crate::scan::check::{site_bytes, site_ref, Check, Joined, Known, SiteRef, SCHEMA};
use crate::scan::{Bindings, Resolution, Scan, Site};
use crate::units::Checked;

/// Joins `scan` with `estimate` (made for the same release) at the configuration `b`.
pub fn check(
    scan: &Scan,
    estimate: &Estimate,
    b: &Bindings,
    pin_memory: bool,
    cpu_backend: bool,
    threshold: u64,
    version_assumed: Option<String>,
) -> Check {
    let mut out = Check {
        schema: SCHEMA,
        version: scan.version.clone(),
        version_assumed,
        threshold_bytes: threshold,
        joined: Vec::new(),
        stale: Vec::new(),
        mismatched: Vec::new(),
        unmodelled: Vec::new(),
        known: Vec::new(),
        not_modelled: Vec::new(),
        unevaluated: 0,
        source_lines: source_lines::rows(scan),
    };
    // The table's rows for this tree's release (or the release an estimate of it assumes).
    let release = sites::release_of(scan.version.as_deref());
    let rows: Vec<&Modelled> = sites::modelled_in(release).collect();
    let modelled: BTreeSet<(&str, &str)> = rows
        .iter()
        .flat_map(|m| m.anchors.iter().map(move |a| (m.file, *a)))
        .collect();
    let components: Vec<&Component> = estimate
        .processes
        .iter()
        .flat_map(|p| &p.components)
        .collect();
    let (running, idle) = runners(&components);
    let mut seen = BTreeSet::new();
    for c in components.iter().copied() {
        if !sites::is_tabled(&c.id) || !seen.insert(c.id.as_str()) {
            continue;
        }
        let mut sites = Vec::new();
        let mut missing = Vec::new();
        let mut sum = Some(Checked::new(0));
        // No row for this release: the release does not allocate the component (stale).
        for m in rows.iter().filter(|m| m.component == c.id) {
            for a in m.anchors {
                // A tensor on the run-time device is host memory only on the CPU backend.
                let found: Vec<&Site> = scan
                    .sites
                    .iter()
                    .filter(|s| s.file == m.file && s.anchor == *a)
                    .filter(|s| cpu_backend || s.method.always_host())
                    .collect();
                if found.is_empty() {
                    missing.push((*a).to_string());
                }
                for s in found {
                    let bytes = site_bytes(s, b, pin_memory).map(|v| v.saturating_mul(m.copies));
                    sum = match (sum, bytes) {
                        (Some(acc), Some(v)) => Some(acc + v),
                        _ => None,
                    };
                    sites.push(site_ref(s, bytes));
                }
            }
        }
        let scanned = sum.and_then(Checked::get);
        let agrees = scanned.map(|v| {
            let slack = (c.high_bytes / 100).max(4096);
            v + slack >= c.low_bytes && v <= c.high_bytes.saturating_add(slack)
        });
        let j = Joined {
            component: c.id.clone(),
            estimated_bytes: c.bytes,
            low_bytes: c.low_bytes,
            high_bytes: c.high_bytes,
            scanned_bytes: if sites.is_empty() { None } else { scanned },
            sites,
            missing,
            agrees,
        };
        if j.sites.is_empty() {
            out.stale.push(j);
        } else if j.agrees == Some(false) {
            out.mismatched.push(j);
        } else {
            out.joined.push(j);
        }
    }
    for s in &scan.sites {
        let gap = NOT_MODELLED
            .iter()
            .find(|g| g.covers(&s.file, &s.anchor, release));
        if let Some(g) = gap {
            out.not_modelled.push(Known {
                site: site_ref(s, site_bytes(s, b, pin_memory)),
                why: g.why.to_string(),
            });
            continue;
        }
        let host = s.method.always_host()
            || (cpu_backend && CPU_BACKEND_FILES.iter().any(|f| s.file.starts_with(f)));
        if !host || s.resolution == Resolution::None {
            continue;
        }
        if modelled.contains(&(s.file.as_str(), s.anchor.as_str())) {
            continue;
        }
        let Some(bytes) = site_bytes(s, b, pin_memory) else {
            out.unevaluated += 1;
            continue;
        };
        if bytes < threshold {
            continue;
        }
        let r = site_ref(s, Some(bytes));
        if let Some(other) = idle.iter().find(|r| r.owns(&s.file)) {
            out.known.push(Known {
                site: r,
                why: format!(
                    "a site of the {} model runner; this configuration runs the {} runner",
                    other.name, running
                ),
            });
            continue;
        }
        match KNOWN_GAPS
            .iter()
            .find(|g| g.covers(&s.file, &s.anchor, release))
        {
            Some(g) => out.known.push(Known {
                site: r,
                why: g.why.to_string(),
            }),
            None => out.unmodelled.push(r),
        }
    }
    let by_size = |a: &SiteRef, b: &SiteRef| b.bytes.cmp(&a.bytes).then(a.file.cmp(&b.file));
    out.unmodelled.sort_by(by_size);
    out.known.sort_by(|a, b| by_size(&a.site, &b.site));
    out
}

/// The runner an estimate runs (by the components it has) and the runners it does not, whose
/// sites are then not this configuration's; none idle when the estimate shows no runner.
fn runners(components: &[&Component]) -> (String, Vec<&'static Runner>) {
    let runs = |r: &Runner| {
        r.components
            .iter()
            .any(|id| components.iter().any(|c| c.id == *id))
    };
    let (running, idle): (Vec<&Runner>, Vec<&Runner>) = RUNNERS.iter().partition(|r| runs(r));
    if running.is_empty() {
        return (String::new(), Vec::new());
    }
    let names: Vec<&str> = running.iter().map(|r| r.name).collect();
    (names.join(" and "), idle)
}
