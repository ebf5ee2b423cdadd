//! `ramscope fit`: will a server fit in its container, and what should the container ask for.
//!
//! Plain data one way: an [`Input`] (an estimate, the host and container it is checked
//! against, and for a running server its measured tree) goes into [`assess`], a pure
//! function, which returns an [`Assessment`]: the load peak, steady state and growth bound
//! split by [`split::Kind`] (only file-backed page cache can be reclaimed), per process and
//! for the pod; the [`verdict`] findings, worst first, with the exit status; and the
//! [`kubernetes`] values with where each number comes from. Reading the container
//! ([`container`]) and printing ([`crate::report::fit`]) are apart from it. docs/fit.md
//! documents the JSON field by field.

pub mod container;
pub mod kubernetes;
pub mod measured;
pub mod quantity;
pub mod split;
pub mod verdict;

use serde::Serialize;

use crate::attribute::Category;
use crate::footprint::{Component, Estimate, Phase, ProcessEstimate};
use crate::host::{HostMemory, Refusal};
use crate::proc::roles::Role;
use crate::units::bytes;

use container::CgroupFacts;
use kubernetes::Kubernetes;
use measured::Measured;
use quantity::Headroom;
use split::{kind_of, Kind, Range, Split};
use verdict::{Finding, Verdict};

pub const SCHEMA: &str = "ramscope.fit/1";

/// Where the figures an assessment is checked against came from, in words
/// (`--memory-limit`, `memory cgroup /kubepods/… (v2)`, `/proc/meminfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sources {
    pub limit: Option<String>,
    pub node_memory: Option<String>,
    pub shm_size: Option<String>,
}

/// Everything [`assess`] looks at.
#[derive(Debug, Clone)]
pub struct Input {
    /// The prediction; `None` for a running process no engine models (then only its
    /// measurement is checked).
    pub estimate: Option<Estimate>,
    /// The limit, node memory and `/dev/shm` size it is checked against.
    pub host: HostMemory,
    pub sources: Sources,
    /// The memory cgroup read (the server's, or ramscope's own).
    pub cgroup: Option<CgroupFacts>,
    /// A running server's tree, measured now.
    pub measured: Option<Measured>,
    /// The engine's own start-up check on `host` ([`crate::engines::Launch::refusal`]).
    pub refusal: Option<Refusal>,
    pub headroom: Headroom,
    pub notes: Vec<String>,
}

/// The three moments, each split by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Phases {
    /// Steady state + what only loading holds.
    pub load_peak: Split,
    pub steady: Split,
    /// Steady state + what grows with traffic, at its caps.
    pub growth_bound: Split,
}

impl Phases {
    fn times(&self, n: u64) -> Phases {
        Phases {
            load_peak: self.load_peak.times(n),
            steady: self.steady.times(n),
            growth_bound: self.growth_bound.times(n),
        }
    }

    fn plus(&self, other: &Phases) -> Phases {
        Phases {
            load_peak: self.load_peak.plus(&other.load_peak),
            steady: self.steady.plus(&other.steady),
            growth_bound: self.growth_bound.plus(&other.growth_bound),
        }
    }

    fn is_too_large(&self) -> bool {
        [self.load_peak, self.steady, self.growth_bound]
            .iter()
            .any(Split::is_too_large)
    }
}

/// The kind of a component's pages, and its bytes.
fn kind_and_range(c: &Component) -> (Kind, Range) {
    (
        kind_of(c.category, c.pinned, c.locked),
        Range::new(c.bytes, c.low_bytes, c.high_bytes),
    )
}

/// One kind of process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessFit {
    pub role: Role,
    pub title: String,
    pub count: u64,
    /// One process.
    pub each: Phases,
    /// `count` of them.
    pub all: Phases,
}

impl ProcessFit {
    fn of(p: &ProcessEstimate) -> ProcessFit {
        let mut steady = Split::default();
        let mut load = Split::default();
        let mut growth = Split::default();
        for c in &p.components {
            let (kind, range) = kind_and_range(c);
            match c.phase {
                Phase::Steady => steady.add(kind, range),
                Phase::Load => load.add(kind, range),
                Phase::Growth => growth.add(kind, range),
            }
        }
        let each = Phases {
            load_peak: steady.plus(&load),
            steady,
            growth_bound: steady.plus(&growth),
        };
        ProcessFit {
            role: p.role,
            title: p.title.clone(),
            count: p.count,
            each,
            all: each.times(p.count),
        }
    }
}

/// A component that grows with traffic, and what caps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrowthTerm {
    pub role: Role,
    pub component: String,
    pub count: u64,
    pub kind: Kind,
    /// At its cap, per process.
    pub each: Range,
    /// The flag or variable that caps it (`--cache-ram`).
    pub knob: Option<String>,
    /// `false`: nothing caps it (no knob, or the knob says "no limit"); `each` is then only
    /// what the engine put there, not a bound.
    pub capped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl GrowthTerm {
    /// `prompt_cache (--cache-ram no limit)`.
    pub fn describe(&self) -> String {
        match &self.knob {
            Some(knob) => format!("{} ({knob})", self.component),
            None => format!("{} (no knob caps it)", self.component),
        }
    }
}

/// Whether a knob's text says it does not cap (`--cache-ram -1 (no limit)`).
fn uncapped_knob(knob: &str) -> bool {
    let k = knob.to_ascii_lowercase();
    ["no limit", "unlimited", "uncapped"]
        .iter()
        .any(|w| k.contains(w))
}

/// The whole pod: every process × its count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodFit {
    pub phases: Phases,
    /// The model files read through the page cache while loading: charged to the cgroup,
    /// cold afterwards, reclaimable (`Total.page_cache_bytes`).
    pub page_cache_read_through_bytes: u64,
    /// Room the `/dev/shm` segments need (their mapped size).
    pub shm_needed_bytes: u64,
    /// `engine`: the estimate's total; `components`: the mapped sizes of its shm components.
    pub shm_needed_from: &'static str,
    /// The largest mapped size of one shm component: segments are created one at a time and
    /// are sparse, so an engine fails to create one only when it alone does not fit.
    pub shm_largest_bytes: u64,
    /// Every mlocked component, each × its process count.
    pub locked_bytes: u64,
}

/// The figures the verdicts and the Kubernetes values use: the pod's estimate, raised to
/// the measurement where a running server already holds more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub load_non_reclaimable: Range,
    pub steady_non_reclaimable: Range,
    /// File-backed pages of the steady state (mapped weights and libraries): read all the
    /// time, so reclaiming them thrashes.
    pub hot_file: Range,
    pub growth_non_reclaimable: Range,
    pub growth_hot_file: Range,
    /// The measurement was above the estimate and replaced it.
    pub from_measurement: bool,
}

/// What the server is checked against: the smaller of the memory limit and the node's
/// memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bound {
    pub bytes: u64,
    /// `the memory limit`, `the node's memory`.
    pub what: String,
    pub is_limit: bool,
}

impl Bound {
    pub fn noun(&self) -> &'static str {
        if self.is_limit {
            "limit"
        } else {
            "node's memory"
        }
    }
}

/// The estimate in one line's worth of facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EstimateSummary {
    pub engine: &'static str,
    pub engine_version: String,
    /// Said when the release is one ramscope has not read.
    pub version_assumed: Option<String>,
    pub device: &'static str,
    pub model: String,
    pub weights_bytes: u64,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    pub schema: &'static str,
    /// The worst finding's verdict, `fits` when there is none.
    pub verdict: Verdict,
    pub certain: bool,
    /// The verdict as reports print it (`may OOM at load`).
    pub summary: String,
    /// 0 fits, 3 does not fit, 4 at risk (docs/fit.md).
    pub exit_code: i32,
    pub findings: Vec<Finding>,
    pub bound: Option<Bound>,
    pub host: HostMemory,
    pub sources: Sources,
    pub cgroup: Option<CgroupFacts>,
    pub estimate: Option<EstimateSummary>,
    pub processes: Vec<ProcessFit>,
    pub growth: Vec<GrowthTerm>,
    pub pod: PodFit,
    pub figures: Figures,
    pub measured: Option<Measured>,
    pub kubernetes: Kubernetes,
    pub refusal: Option<Refusal>,
    pub notes: Vec<String>,
}

/// Sizes an assessment cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} is larger than 16 EiB: check the flags and the sizes given")]
pub struct FitError {
    pub what: String,
}

/// The largest components of `e` that `pick` selects, each × its count, for a comment
/// (`runtime.first_forward 871 MiB, tokenizer 552 MiB, …`).
pub fn largest(e: Option<&Estimate>, pick: impl Fn(&Component) -> bool) -> String {
    largest_by(e, pick, |c| c.bytes)
}

/// [`largest`] by another size of each component (its mapped size).
pub fn largest_by(
    e: Option<&Estimate>,
    pick: impl Fn(&Component) -> bool,
    size: impl Fn(&Component) -> u64,
) -> String {
    // One entry per component name: the same component in several processes is summed.
    let mut by_id: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for p in e.into_iter().flat_map(|e| &e.processes) {
        for c in p.components.iter().filter(|c| pick(c)) {
            let sum = by_id.entry(c.id.as_str()).or_default();
            *sum = sum.saturating_add(size(c).saturating_mul(p.count));
        }
    }
    let mut all: Vec<(u64, &str)> = by_id
        .into_iter()
        .map(|(id, b)| (b, id))
        .filter(|(b, _)| *b > 0)
        .collect();
    all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let shown: Vec<String> = all
        .iter()
        .take(3)
        .map(|(b, id)| format!("{id} {}", bytes(*b)))
        .collect();
    match all.len() {
        0 => String::new(),
        n if n > 3 => format!("{}, …", shown.join(", ")),
        _ => shown.join(", "),
    }
}

/// Checks the input: the figures, the findings and the Kubernetes values.
pub fn assess(input: Input) -> Result<Assessment, FitError> {
    let Input {
        estimate,
        host,
        sources,
        cgroup,
        measured,
        refusal,
        headroom,
        mut notes,
    } = input;
    let est = estimate.as_ref();
    let processes: Vec<ProcessFit> = est
        .map(|e| e.processes.iter().map(ProcessFit::of).collect())
        .unwrap_or_default();
    let phases = processes
        .iter()
        .fold(Phases::default(), |sum, p| sum.plus(&p.all));
    if phases.is_too_large() {
        return Err(FitError {
            what: "the estimate summed by kind".into(),
        });
    }
    let growth = growth_terms(est);
    let pod = pod_fit(est, phases);

    let figures = figures(&phases, measured.as_ref(), &mut notes);
    let checked = [
        figures.load_non_reclaimable,
        figures.growth_non_reclaimable.plus(figures.growth_hot_file),
    ];
    if checked.iter().any(|r| r.is_too_large()) {
        return Err(FitError {
            what: "the growth bound".into(),
        });
    }
    let bound = bound(&host, &mut notes);
    let uncapped: Vec<String> = growth
        .iter()
        .filter(|g| !g.capped)
        .map(GrowthTerm::describe)
        .collect();
    let findings = verdict::findings(&verdict::Checks {
        figures: &figures,
        bound: bound.as_ref(),
        refusal: refusal.as_ref(),
        shm_needed_bytes: pod.shm_needed_bytes,
        shm_largest_bytes: pod.shm_largest_bytes,
        shm_size_bytes: host.shm_size_bytes,
        grows: !growth.is_empty(),
        uncapped: uncapped.clone(),
    });
    if host.shm_size_bytes.is_none() && pod.shm_needed_bytes > 0 {
        notes.push(format!(
            "the size of /dev/shm is not known: the segments need {}",
            bytes(pod.shm_needed_bytes)
        ));
    }
    let mut kubernetes = kubernetes::values(&kubernetes::Sizing {
        estimate: est,
        figures: &figures,
        pod: &pod,
        headroom,
        uncapped: &uncapped,
    })?;
    let (verdict, certain) = findings
        .first()
        .map_or((Verdict::Fits, true), |f| (f.verdict, f.certain));
    let what = match est {
        Some(e) => format!(
            "{} {} {} on {}",
            e.engine,
            e.engine_version,
            e.model.name,
            e.device.name()
        ),
        None => "a measured process".into(),
    };
    kubernetes.yaml = kubernetes::yaml(
        &kubernetes,
        &format!("ramscope fit: {what}: {}", verdict.phrase(certain)),
    );
    Ok(Assessment {
        schema: SCHEMA,
        verdict,
        certain,
        summary: verdict.phrase(certain).to_string(),
        exit_code: verdict::exit_code(&findings),
        findings,
        bound,
        host,
        sources,
        cgroup,
        estimate: est.map(summary),
        processes,
        growth,
        pod,
        figures,
        measured,
        kubernetes,
        refusal,
        notes,
    })
}

fn summary(e: &Estimate) -> EstimateSummary {
    let title = crate::engines::named(e.engine).map_or(e.engine, |x| x.title());
    EstimateSummary {
        engine: e.engine,
        engine_version: e.engine_version.clone(),
        version_assumed: e.version_assumed.as_ref().map(|a| a.describe(title)),
        device: e.device.name(),
        model: e.model.name.clone(),
        weights_bytes: e.model.weights_bytes,
    }
}

fn growth_terms(e: Option<&Estimate>) -> Vec<GrowthTerm> {
    let mut out = Vec::new();
    for p in e.into_iter().flat_map(|e| &e.processes) {
        for c in p.components.iter().filter(|c| c.phase == Phase::Growth) {
            let (kind, each) = kind_and_range(c);
            out.push(GrowthTerm {
                role: p.role,
                component: c.id.clone(),
                count: p.count,
                kind,
                each,
                knob: c.knob.clone(),
                capped: c.knob.as_deref().is_some_and(|k| !uncapped_knob(k)),
                note: c.note.clone(),
            });
        }
    }
    out
}

fn pod_fit(e: Option<&Estimate>, phases: Phases) -> PodFit {
    let all = |pick: &dyn Fn(&Component) -> bool, size: &dyn Fn(&Component) -> u64| -> u64 {
        e.into_iter()
            .flat_map(|e| &e.processes)
            .flat_map(|p| {
                p.components
                    .iter()
                    .filter(|c| pick(c))
                    .map(move |c| size(c).saturating_mul(p.count))
            })
            .fold(0u64, u64::saturating_add)
    };
    let engine_shm = e.map_or(0, |e| e.total.shm_mapped_bytes);
    let (shm_needed_bytes, shm_needed_from) = if engine_shm > 0 {
        (engine_shm, "engine")
    } else {
        let shm = all(&|c| c.category == Category::Shm, &|c| {
            c.mapped_bytes.unwrap_or(c.bytes)
        });
        (shm, "components")
    };
    PodFit {
        phases,
        page_cache_read_through_bytes: e.map_or(0, |e| e.total.page_cache_bytes),
        shm_needed_bytes,
        shm_needed_from,
        shm_largest_bytes: e
            .into_iter()
            .flat_map(|e| &e.processes)
            .flat_map(|p| &p.components)
            .filter(|c| c.category == Category::Shm)
            .map(|c| c.mapped_bytes.unwrap_or(c.bytes))
            .max()
            .unwrap_or(0),
        locked_bytes: all(&|c| c.locked, &|c| c.bytes),
    }
}

/// The pod's figures, raised to the measurement where it is higher. Without an estimate the
/// measurement is all there is: its load peak and growth are unknown.
fn figures(phases: &Phases, measured: Option<&Measured>, notes: &mut Vec<String>) -> Figures {
    let nr = |s: &Split| s.non_reclaimable();
    let mut steady = nr(&phases.steady);
    let mut hot = phases.steady.file;
    let mut from_measurement = false;
    if let Some(m) = measured {
        let now = m.split.non_reclaimable();
        if now.bytes > steady.bytes {
            if steady.bytes > 0 {
                notes.push(format!(
                    "measured now: {} non-reclaimable, above the estimated steady state {}: the verdicts use the measurement",
                    bytes(now.bytes),
                    bytes(steady.bytes)
                ));
            }
            steady = steady.max(now);
            from_measurement = true;
        }
        hot = hot.max(m.split.file);
    }
    // What loading and growth add on top of the steady state, from the estimate.
    let load = extra(nr(&phases.load_peak), nr(&phases.steady));
    let growth = extra(nr(&phases.growth_bound), nr(&phases.steady));
    let growth_file = extra(phases.growth_bound.file, phases.steady.file);
    Figures {
        load_non_reclaimable: steady.plus(load),
        steady_non_reclaimable: steady,
        hot_file: hot,
        growth_non_reclaimable: steady.plus(growth),
        growth_hot_file: hot.plus(growth_file),
        from_measurement,
    }
}

/// `with − without`, end by end (the sums share their terms, so no end goes below 0).
fn extra(with: Range, without: Range) -> Range {
    Range::new(
        with.bytes.saturating_sub(without.bytes),
        with.low_bytes.saturating_sub(without.low_bytes),
        with.high_bytes.saturating_sub(without.high_bytes),
    )
}

/// The smaller of the limit and the node's memory.
fn bound(host: &HostMemory, notes: &mut Vec<String>) -> Option<Bound> {
    let limit = host.limit_bytes.map(|bytes| Bound {
        bytes,
        what: "the memory limit".into(),
        is_limit: true,
    });
    let node = host.mem_total_bytes.map(|bytes| Bound {
        bytes,
        what: "the node's memory".into(),
        is_limit: false,
    });
    match (limit, node) {
        (Some(l), Some(n)) if n.bytes < l.bytes => {
            notes.push(format!(
                "the memory limit {} is above the node's memory {}: the node bounds it",
                bytes(l.bytes),
                bytes(n.bytes)
            ));
            Some(n)
        }
        (Some(l), _) => Some(l),
        (None, Some(n)) => {
            notes.push(format!(
                "no memory limit: checked against the node's memory {} (other pods share it)",
                bytes(n.bytes)
            ));
            Some(n)
        }
        (None, None) => {
            notes.push("no memory limit and no node memory known: nothing to check against".into());
            None
        }
    }
}

#[cfg(test)]
mod tests;
