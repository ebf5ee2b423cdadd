//! A recording folded into what people ask of it: the peak of every process and category and
//! when it happened, what the sampler cost, and which series grow.
//!
//! Peaks of RSS use every sample (`status` is read every tick); peaks of categories use the
//! samples that read `smaps` for that process, so they are lower bounds that can miss a
//! spike shorter than the `smaps` cadence. The kernel's own high-water mark (`VmHWM`) is
//! reported beside them as the exact RSS peak.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::attribute::Category;
use crate::proc::roles::{Engine, Role};
use crate::proc::Pid;
use crate::snapshot::ReadTier;

use super::format::{Recording, SampleCost};
use super::leak::{assess, LeakOptions, Trend};
use super::timeline::Holder;
pub use super::timeline::{process_timeline, tree_timeline, Timeline};

pub const REPORT_SCHEMA: &str = "ramscope.report/1";

/// One category's peak within a process or the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryPeak {
    pub category: Category,
    pub start_pss_bytes: u64,
    pub peak_pss_bytes: u64,
    pub peak_t_s: f64,
    pub end_pss_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessPeaks {
    pub pid: Pid,
    pub ppid: Pid,
    pub role: Role,
    pub engine: Engine,
    pub name: String,
    pub cmdline: String,
    pub first_t_s: f64,
    pub last_t_s: f64,
    pub start_rss_bytes: u64,
    pub peak_rss_bytes: u64,
    pub peak_rss_t_s: f64,
    pub end_rss_bytes: u64,
    /// `VmHWM`: the kernel's exact RSS peak, including spikes between samples.
    pub kernel_peak_rss_bytes: u64,
    pub peak_pss_bytes: u64,
    pub peak_pss_t_s: f64,
    pub categories: Vec<CategoryPeak>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TreePeaks {
    pub start_rss_sum_bytes: u64,
    pub peak_rss_sum_bytes: u64,
    pub peak_rss_sum_t_s: f64,
    pub peak_pss_bytes: u64,
    pub peak_pss_t_s: f64,
    pub max_processes: usize,
    pub categories: Vec<CategoryPeak>,
}

/// A series that grows (or grew and levelled off).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `None`: the whole tree.
    pub pid: Option<Pid>,
    pub role: Option<Role>,
    pub name: String,
    /// `rss` (every sample) or a category name (PSS at `smaps` samples).
    pub series: String,
    #[serde(flatten)]
    pub trend: Trend,
}

/// The moment the tree was largest, and what was largest in it: the answer to "what
/// peaked, when, where".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeakMoment {
    pub t_s: f64,
    pub rss_sum_bytes: u64,
    /// The tree's PSS at the same sample (each process's latest read, at most its RSS).
    pub pss_bytes: u64,
    /// The largest process then (by RSS).
    pub pid: Pid,
    pub name: String,
    pub role: Role,
    pub process_rss_bytes: u64,
    /// Its largest category then, from its latest `smaps` split; `None` before any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    #[serde(default)]
    pub category_pss_bytes: u64,
}

/// The sampler's cost, summed up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    pub samples: u64,
    pub cpu_s: f64,
    pub cpu_s_per_sample: f64,
    /// Sampler CPU time as a share of one core over the recording.
    pub cpu_share: f64,
    pub status_reads: u64,
    pub rollup_reads: u64,
    pub smaps_reads: u64,
    pub mean_rollup_s: f64,
    pub mean_smaps_s: f64,
    /// The dearest sample's time in `smaps` reads.
    pub max_smaps_s: f64,
}

/// Everything `report` shows, as the `ramscope.report/1` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub schema: String,
    pub command: Vec<String>,
    pub mode: String,
    pub started_at: String,
    pub interval_s: f64,
    pub duration_s: f64,
    pub samples: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub overhead: Overhead,
    pub tree: TreePeaks,
    pub processes: Vec<ProcessPeaks>,
    pub findings: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<PeakMoment>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Per-process state while folding.
struct Acc {
    peaks: ProcessPeaks,
    rss: Vec<(f64, f64)>,
    categories: BTreeMap<Category, Vec<(f64, f64)>>,
    /// The time of the process's latest `smaps` read: a category first seen at a later read
    /// was zero at this one, so its series starts there at zero.
    last_smaps_t: Option<f64>,
    /// Born during the recording (not in its first sample): everything it holds is growth.
    born_during: bool,
}

/// Each category's start, peak and end. `from_zero`: the owner did not exist at the
/// recording's start, so every category started at zero.
fn category_peaks(
    series: &BTreeMap<Category, Vec<(f64, f64)>>,
    from_zero: bool,
) -> Vec<CategoryPeak> {
    let mut out: Vec<CategoryPeak> = series
        .iter()
        .filter_map(|(&category, pts)| {
            let first = pts.first()?;
            let last = pts.last()?;
            // The first time the peak was reached, not the last sample that held it.
            let peak =
                pts.iter()
                    .copied()
                    .fold(None, |best: Option<(f64, f64)>, p| match best {
                        Some(b) if b.1 >= p.1 => Some(b),
                        _ => Some(p),
                    })?;
            Some(CategoryPeak {
                category,
                start_pss_bytes: if from_zero { 0 } else { first.1 as u64 },
                peak_pss_bytes: peak.1 as u64,
                peak_t_s: peak.0,
                end_pss_bytes: last.1 as u64,
            })
        })
        .filter(|c| c.peak_pss_bytes > 0)
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.peak_pss_bytes));
    out
}

/// Folds a recording.
pub fn analyze(rec: &Recording, leak: &LeakOptions) -> Analysis {
    let mut order: Vec<Pid> = Vec::new();
    let mut accs: BTreeMap<Pid, Acc> = BTreeMap::new();
    let mut tree = TreePeaks::default();
    let mut tree_rss: Vec<(f64, f64)> = Vec::new();
    for (i, s) in rec.samples.iter().enumerate() {
        let t = s.t_s;
        let total = &s.snapshot.total;
        if i == 0 {
            tree.start_rss_sum_bytes = total.rss_sum_bytes;
        }
        if total.rss_sum_bytes > tree.peak_rss_sum_bytes {
            tree.peak_rss_sum_bytes = total.rss_sum_bytes;
            tree.peak_rss_sum_t_s = t;
        }
        if total.pss_bytes > tree.peak_pss_bytes {
            tree.peak_pss_bytes = total.pss_bytes;
            tree.peak_pss_t_s = t;
        }
        tree.max_processes = tree.max_processes.max(s.snapshot.processes.len());
        tree_rss.push((t, total.rss_sum_bytes as f64));
        for p in &s.snapshot.processes {
            let acc = accs.entry(p.pid).or_insert_with(|| {
                order.push(p.pid);
                Acc {
                    peaks: ProcessPeaks {
                        pid: p.pid,
                        ppid: p.ppid,
                        role: p.role,
                        engine: p.engine,
                        name: p.name.clone(),
                        cmdline: p.cmdline.clone(),
                        first_t_s: t,
                        last_t_s: t,
                        // A process born during the recording held nothing at its start.
                        start_rss_bytes: if i == 0 { p.rss_bytes } else { 0 },
                        peak_rss_bytes: 0,
                        peak_rss_t_s: t,
                        end_rss_bytes: p.rss_bytes,
                        kernel_peak_rss_bytes: 0,
                        peak_pss_bytes: 0,
                        peak_pss_t_s: t,
                        categories: Vec::new(),
                    },
                    rss: Vec::new(),
                    categories: BTreeMap::new(),
                    last_smaps_t: None,
                    born_during: i > 0,
                }
            });
            if acc.peaks.name != p.name || acc.peaks.cmdline != p.cmdline {
                // The process exec'd (a fork becoming its command, a shim becoming the
                // interpreter): its life so far says nothing about what it is now.
                let pk = &mut acc.peaks;
                pk.start_rss_bytes = if acc.born_during { 0 } else { p.rss_bytes };
                pk.peak_rss_bytes = 0;
                pk.kernel_peak_rss_bytes = 0;
                pk.peak_pss_bytes = 0;
                acc.rss.clear();
                acc.categories.clear();
                acc.last_smaps_t = None;
            }
            let pk = &mut acc.peaks;
            pk.role = p.role;
            pk.engine = p.engine;
            pk.name.clone_from(&p.name);
            pk.cmdline.clone_from(&p.cmdline);
            pk.last_t_s = t;
            pk.end_rss_bytes = p.rss_bytes;
            if p.rss_bytes > pk.peak_rss_bytes {
                pk.peak_rss_bytes = p.rss_bytes;
                pk.peak_rss_t_s = t;
            }
            pk.kernel_peak_rss_bytes = pk.kernel_peak_rss_bytes.max(p.peak_rss_bytes);
            if p.read != Some(ReadTier::Status) && p.pss_bytes > pk.peak_pss_bytes {
                pk.peak_pss_bytes = p.pss_bytes;
                pk.peak_pss_t_s = t;
            }
            acc.rss.push((t, p.rss_bytes as f64));
            if !p.categories.is_empty() {
                for c in Category::ALL {
                    let v = p.categories.get(&c).map_or(0, |u| u.pss_bytes);
                    let series = acc.categories.entry(c).or_default();
                    if v > 0 && series.is_empty() {
                        // Absent at the previous read: it starts from zero there, so its
                        // "start" and any growth claim see the step.
                        if let Some(t0) = acc.last_smaps_t {
                            series.push((t0, 0.0));
                        }
                    }
                    if v > 0 || !series.is_empty() {
                        series.push((t, v as f64));
                    }
                }
                acc.last_smaps_t = Some(t);
            }
        }
    }

    let timeline = tree_timeline(rec);
    let mut tree_series: BTreeMap<Category, Vec<(f64, f64)>> = BTreeMap::new();
    for band in &timeline.bands {
        let Some(c) = band.category else { continue };
        tree_series.insert(
            c,
            timeline
                .times
                .iter()
                .zip(&band.values)
                .map(|(&t, &v)| (t, v as f64))
                .collect(),
        );
    }
    tree.categories = category_peaks(&tree_series, false);

    let mut findings = Vec::new();
    let mut judge =
        |pid: Option<Pid>, role: Option<Role>, name: &str, series: &str, pts: &[(f64, f64)]| {
            if let Some(trend) = assess(pts, leak) {
                findings.push(Finding {
                    pid,
                    role,
                    name: name.to_string(),
                    series: series.to_string(),
                    trend,
                });
            }
        };
    judge(None, None, "whole tree", "rss", &tree_rss);
    let mut processes = Vec::new();
    for pid in order {
        let Some(mut acc) = accs.remove(&pid) else {
            continue;
        };
        acc.peaks.categories = category_peaks(&acc.categories, acc.born_during);
        let (role, name) = (acc.peaks.role, acc.peaks.name.clone());
        judge(Some(pid), Some(role), &name, "rss", &acc.rss);
        for (c, pts) in &acc.categories {
            judge(Some(pid), Some(role), &name, c.name(), pts);
        }
        processes.push(acc.peaks);
    }

    let cost = rec.overhead();
    let samples = rec.samples.len() as u64;
    let duration = rec.duration_s();
    let mut overhead = summarize_cost(&cost, samples, duration);
    overhead.max_smaps_s = rec
        .samples
        .iter()
        .map(|s| s.overhead.smaps_s)
        .fold(0.0, f64::max);
    Analysis {
        schema: REPORT_SCHEMA.into(),
        command: rec.header.command.clone(),
        mode: rec.header.mode.clone(),
        started_at: rec.header.started_at.clone(),
        interval_s: rec.header.interval_s,
        duration_s: duration,
        samples: rec.samples.len(),
        ended: rec.end.as_ref().map(|e| e.reason.clone()),
        exit_code: rec.end.as_ref().and_then(|e| e.exit_code),
        overhead,
        tree,
        processes,
        findings,
        peak: peak_moment(rec),
        notes: rec.notes.clone(),
    }
}

/// The sample with the largest RSS sum (the first one), its largest process, and that
/// process's largest category as charted (held from its latest `smaps` read).
pub fn peak_moment(rec: &Recording) -> Option<PeakMoment> {
    let at = rec
        .samples
        .iter()
        .enumerate()
        .fold(None, |best: Option<(usize, u64)>, (i, s)| {
            let v = s.snapshot.total.rss_sum_bytes;
            match best {
                Some(b) if b.1 >= v => Some(b),
                _ => Some((i, v)),
            }
        })?
        .0;
    let mut holders: BTreeMap<Pid, Holder> = BTreeMap::new();
    let mut split = BTreeMap::new();
    for s in &rec.samples[..=at] {
        for p in &s.snapshot.processes {
            if let Some(h) = holders.entry(p.pid).or_default().update(s.t_s, p) {
                split.insert(p.pid, h.pss);
            }
        }
    }
    let s = &rec.samples[at];
    let big = s
        .snapshot
        .processes
        .iter()
        .max_by_key(|p| (p.rss_bytes, std::cmp::Reverse(p.pid)))?;
    let largest = split
        .get(&big.pid)
        .and_then(|m| m.iter().max_by_key(|(_, &v)| v))
        .filter(|(_, &v)| v > 0);
    Some(PeakMoment {
        t_s: s.t_s,
        rss_sum_bytes: s.snapshot.total.rss_sum_bytes,
        pss_bytes: s
            .snapshot
            .processes
            .iter()
            .map(|p| p.pss_bytes.min(p.rss_bytes))
            .fold(0u64, u64::saturating_add),
        pid: big.pid,
        name: big.name.clone(),
        role: big.role,
        process_rss_bytes: big.rss_bytes,
        category: largest.map(|(&c, _)| c),
        category_pss_bytes: largest.map_or(0, |(_, &v)| v),
    })
}

fn summarize_cost(c: &SampleCost, samples: u64, duration_s: f64) -> Overhead {
    let per = |x: f64, n: u64| if n == 0 { 0.0 } else { x / n as f64 };
    Overhead {
        samples,
        cpu_s: c.cpu_s,
        cpu_s_per_sample: per(c.cpu_s, samples),
        cpu_share: if duration_s > 0.0 {
            c.cpu_s / duration_s
        } else {
            0.0
        },
        status_reads: c.status_reads,
        rollup_reads: c.rollup_reads,
        smaps_reads: c.smaps_reads,
        mean_rollup_s: per(c.rollup_s, c.rollup_reads),
        mean_smaps_s: per(c.smaps_s, c.smaps_reads),
        max_smaps_s: 0.0,
    }
}
