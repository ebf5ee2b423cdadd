//! The model of a trace report: per process, exact totals per kind and category; per site,
//! live bytes at the process's peak and at the end, with named stacks; the tree's peak.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::attribute::{is_weights_file, Category};
use crate::proc::roles::{Engine, Role};

use super::dir::{TraceDir, TracedProcess};
use super::format::{
    Kind, Options, Origin, Peak, PythonFrames, Region, Site, Status, Total, TraceFile,
};
use super::label::{site_label, PythonFrame};
use super::symbolize::{locate, NativeFrame, Symbolizer};

pub const SCHEMA: &str = "ramscope.trace/1";

/// What to keep.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only the images of this PID.
    pub pid: Option<u32>,
    /// Only sites holding at least this many bytes at the end or at their process's peak.
    pub min_bytes: u64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub dir: String,
    /// The traced command (from run.json), if known.
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<serde_json::Value>,
    pub processes: Vec<ProcessReport>,
    /// When the processes' live bytes added up were highest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree_peak: Option<TreePeak>,
    /// Live bytes per category at the end, over the whole tree.
    pub categories: BTreeMap<Category, u64>,
    /// Bytes registered with CUDA (cudaHostRegister): already counted in their own kind.
    pub pinned_registered_bytes: u64,
    pub roles: Vec<RoleReport>,
    /// Every site that passed the filter, largest live bytes first.
    pub sites: Vec<SiteReport>,
    /// Events whose stack could not be kept, per reason, over the tree.
    pub lost: BTreeMap<String, u64>,
    pub notes: Vec<String>,
}

/// One process image.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    /// `pid`, or `pid#image` for an image after exec.
    pub name: String,
    pub pid: u32,
    pub ppid: u32,
    pub image: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The parent image's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub role: Role,
    pub engine: Engine,
    pub comm: String,
    pub cmdline: Vec<String>,
    pub exe: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    pub python_frames: PythonFrames,
    /// The last write was at exit or exec; otherwise the process was still running or was
    /// killed after its last write.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// No later image of this process replaced this one.
    pub last_image: bool,
    pub init_ns: u64,
    pub flush_ns: u64,
    pub options: Options,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Exact, per kind.
    pub totals: BTreeMap<Kind, Total>,
    /// Live bytes at the last write, per category.
    pub categories: BTreeMap<Category, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak: Option<Peak>,
    pub counts: BTreeMap<String, u64>,
    pub lost: BTreeMap<String, u64>,
}

impl ProcessReport {
    /// Live bytes of every kind but pinned.registered (counted in its own kind already).
    pub fn live_bytes(&self) -> u64 {
        self.totals
            .iter()
            .filter(|(k, _)| **k != Kind::PinnedRegistered)
            .fold(0u64, |a, (_, t)| a.saturating_add(t.live))
    }
}

/// The tree's peak: the processes' sample series summed on one time axis.
#[derive(Debug, Clone, Serialize)]
pub struct TreePeak {
    pub t_ns: u64,
    /// Since the first process began tracing.
    pub after_ns: u64,
    pub live_bytes: u64,
    /// VmRSS summed over the processes whose sample had it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_rss_bytes: Option<u64>,
    /// Each contributing process's live bytes then, by name.
    pub processes: BTreeMap<String, u64>,
}

/// One role's processes together.
#[derive(Debug, Clone, Serialize)]
pub struct RoleReport {
    pub role: Role,
    pub processes: usize,
    pub live_bytes: u64,
    /// The sum of the processes' own peaks (they need not peak together).
    pub peak_bytes: u64,
    pub categories: BTreeMap<Category, u64>,
}

/// One allocation site of one process.
#[derive(Debug, Clone, Serialize)]
pub struct SiteReport {
    pub process: String,
    pub pid: u32,
    pub role: Role,
    pub kind: Kind,
    /// `None` for pinned.registered (its bytes belong to another kind's site).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    pub label: String,
    pub calls: u64,
    pub bytes: u64,
    pub frees: u64,
    pub live_bytes: u64,
    pub peak_bytes: u64,
    /// Live bytes when its process reached its own peak.
    pub at_peak_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resident_bytes: Option<u64>,
    /// Poisson estimates (allocations below min_size); see the relative errors.
    pub sampled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_rel_error: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_peak_rel_error: Option<f64>,
    /// Innermost first.
    pub python: Vec<PythonFrame>,
    /// Innermost first.
    pub native: Vec<NativeFrame>,
    /// Its live mappings (mmap, shm, pinned).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionReport>,
}

/// A live mapping of a site.
#[derive(Debug, Clone, Serialize)]
pub struct RegionReport {
    pub start: u64,
    pub len: u64,
    pub rounded: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resident: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The relative standard error of a sampled estimate: about sqrt(sample_bytes / bytes).
pub fn relative_error(sample_bytes: Option<u64>, estimate: u64) -> Option<f64> {
    let s = sample_bytes?;
    (estimate > 0).then(|| (s as f64 / estimate as f64).sqrt())
}

/// The category `measure` would put a kind's bytes in; `None` for pinned.registered.
pub fn category_of(kind: Kind, path: Option<&str>) -> Option<Category> {
    Some(match kind {
        Kind::Heap | Kind::MmapAnon => Category::Heap,
        Kind::MmapShared => Category::SharedAnon,
        Kind::Shm => Category::Shm,
        Kind::Pinned => Category::Pinned,
        Kind::MmapFile if path.is_some_and(|p| is_weights_file(p.as_bytes())) => Category::Weights,
        Kind::MmapFile => Category::FileOther,
        Kind::PinnedRegistered => return None,
    })
}

/// Builds the report of a trace directory.
pub fn aggregate(dir: &TraceDir, filter: &Filter, symbolizer: &mut Symbolizer) -> Report {
    let chosen: Vec<&TracedProcess> = dir
        .processes
        .iter()
        .filter(|p| filter.pid.map_or(true, |pid| p.trace.pid == pid))
        .collect();
    let mut notes = dir.notes.clone();
    if chosen.is_empty() {
        notes.push(format!(
            "no traced process has PID {}",
            filter.pid.unwrap_or_default()
        ));
    }
    let processes: Vec<ProcessReport> = chosen
        .iter()
        .map(|p| process_report(p, &dir.processes))
        .collect();
    let mut sites = Vec::new();
    for p in &chosen {
        sites.extend(site_reports(p, filter.min_bytes, symbolizer));
    }
    sites.sort_by(|a, b| {
        (b.live_bytes, b.at_peak_bytes, &a.process, &a.label).cmp(&(
            a.live_bytes,
            a.at_peak_bytes,
            &b.process,
            &b.label,
        ))
    });
    let mut categories = BTreeMap::new();
    let mut lost: BTreeMap<String, u64> = BTreeMap::new();
    let mut roles: BTreeMap<Role, RoleReport> = BTreeMap::new();
    for p in &processes {
        let r = roles.entry(p.role).or_insert_with(|| RoleReport {
            role: p.role,
            processes: 0,
            live_bytes: 0,
            peak_bytes: 0,
            categories: BTreeMap::new(),
        });
        r.processes += 1;
        r.live_bytes = r.live_bytes.saturating_add(p.live_bytes());
        r.peak_bytes = r.peak_bytes.saturating_add(p.peak.map_or(0, |k| k.live));
        for (c, b) in &p.categories {
            add(&mut r.categories, *c, *b);
            add(&mut categories, *c, *b);
        }
        for (reason, n) in &p.lost {
            let slot = lost.entry(reason.clone()).or_default();
            *slot = slot.saturating_add(*n);
        }
    }
    for p in &chosen {
        let t = &p.trace;
        if t.skipped > 0 {
            notes.push(format!(
                "{}: {} record(s) of a newer tracer were skipped",
                t.file_name, t.skipped
            ));
        }
    }
    notes.extend(
        symbolizer
            .problems
            .drain(..)
            .map(|p| format!("symbols: {p}")),
    );
    Report {
        schema: SCHEMA,
        dir: dir.path.display().to_string(),
        command: dir
            .run
            .as_ref()
            .map(|r| r.command.clone())
            .unwrap_or_default(),
        run: dir.run.as_ref().map(|r| r.raw.clone()),
        tree_peak: tree_peak(&chosen),
        pinned_registered_bytes: processes
            .iter()
            .map(|p| p.totals.get(&Kind::PinnedRegistered).map_or(0, |t| t.live))
            .fold(0, u64::saturating_add),
        processes,
        categories,
        roles: roles.into_values().collect(),
        sites,
        lost,
        notes,
    }
}

fn process_report(p: &TracedProcess, all: &[TracedProcess]) -> ProcessReport {
    let t = &p.trace;
    ProcessReport {
        name: p.name(),
        pid: t.pid,
        ppid: t.ppid,
        image: t.image,
        origin: t.origin,
        parent: p.parent.and_then(|i| all.get(i)).map(TracedProcess::name),
        role: p.identity.role,
        engine: p.identity.engine,
        comm: t.comm.clone(),
        cmdline: t.cmdline.clone(),
        exe: t.exe.clone(),
        python: t.python.clone(),
        python_frames: t.python_frames,
        is_final: t.is_final,
        last_image: p.last_image,
        init_ns: t.init_ns,
        flush_ns: t.flush_ns,
        options: t.options.clone(),
        status: t.status.clone(),
        totals: t.totals.clone(),
        categories: process_categories(t),
        peak: t.peak,
        counts: t.counts.clone(),
        lost: t.lost.clone(),
    }
}

/// Live bytes per category from the exact totals. File mappings are split by their live
/// regions' paths: weights by extension, the rest other files.
fn process_categories(t: &TraceFile) -> BTreeMap<Category, u64> {
    let mut out = BTreeMap::new();
    for (&kind, total) in &t.totals {
        if kind == Kind::MmapFile {
            let weights: u64 = t
                .regions
                .iter()
                .filter(|r| r.kind == Kind::MmapFile)
                .filter(|r| category_of(r.kind, region_path(t, r)) == Some(Category::Weights))
                .fold(0u64, |a, r| a.saturating_add(r.len))
                .min(total.live);
            add(&mut out, Category::Weights, weights);
            add(&mut out, Category::FileOther, total.live - weights);
        } else if let Some(c) = category_of(kind, None) {
            add(&mut out, c, total.live);
        }
    }
    out
}

fn add(map: &mut BTreeMap<Category, u64>, c: Category, bytes: u64) {
    if bytes > 0 {
        let slot = map.entry(c).or_default();
        *slot = slot.saturating_add(bytes);
    }
}

fn region_path<'t>(t: &'t TraceFile, r: &Region) -> Option<&'t str> {
    r.path.map(|id| t.string(id))
}

/// A process's sites with their stacks named, those of at least `min_bytes`.
fn site_reports(p: &TracedProcess, min_bytes: u64, symbolizer: &mut Symbolizer) -> Vec<SiteReport> {
    let t = &p.trace;
    let kept: Vec<&Site> = t
        .sites
        .iter()
        .filter(|s| s.live.max(s.at_peak) >= min_bytes)
        .collect();
    let mut modules = t.modules.clone();
    modules.sort_by_key(|m| m.start);
    // Every address of every kept stack, named per file in one pass.
    let mut per_file: HashMap<&str, Vec<u64>> = HashMap::new();
    for s in &kept {
        for &a in t.stacks.get(&s.stack).map_or(&[][..], |st| &st.native) {
            if let Some((m, offset)) = locate(&modules, a) {
                per_file.entry(m.path.as_str()).or_default().push(offset);
            }
        }
    }
    let mut named: HashMap<(String, u64), NativeFrame> = HashMap::new();
    for (path, mut offsets) in per_file {
        offsets.sort_unstable();
        offsets.dedup();
        for f in symbolizer.resolve(path, &offsets) {
            named.insert((path.to_string(), f.offset), f);
        }
    }
    let frame = |a: u64| match locate(&modules, a) {
        Some((m, offset)) => named
            .get(&(m.path.clone(), offset))
            .cloned()
            .unwrap_or_else(|| unnamed(&m.path, offset)),
        None => unnamed("", a),
    };
    let sample_bytes = t.options.sample_bytes;
    kept.into_iter()
        .map(|s| {
            let stack = t.stacks.get(&s.stack);
            let python: Vec<PythonFrame> = stack.map_or_else(Vec::new, |st| {
                st.python
                    .iter()
                    .map(|f| PythonFrame {
                        file: t.string(f.file).to_string(),
                        function: t.string(f.function).to_string(),
                        line: f.line,
                    })
                    .collect()
            });
            let native: Vec<NativeFrame> =
                stack.map_or_else(Vec::new, |st| st.native.iter().map(|&a| frame(a)).collect());
            let regions: Vec<RegionReport> = t
                .regions
                .iter()
                .filter(|r| r.stack == s.stack && r.kind == s.kind)
                .map(|r| RegionReport {
                    start: r.start,
                    len: r.len,
                    rounded: r.rounded,
                    resident: r.resident,
                    path: region_path(t, r).map(str::to_string),
                })
                .collect();
            let path = regions.iter().find_map(|r| r.path.as_deref());
            let sampled = |v: u64| {
                if s.sampled {
                    relative_error(sample_bytes, v)
                } else {
                    None
                }
            };
            SiteReport {
                process: p.name(),
                pid: t.pid,
                role: p.identity.role,
                kind: s.kind,
                category: category_of(s.kind, path),
                // A fork child starts with its parent's live blocks at their sites (calls 0).
                label: if t.origin == Some(Origin::Fork) && s.calls == 0 {
                    format!(
                        "{} (from the parent, at fork)",
                        site_label(&python, &native)
                    )
                } else {
                    site_label(&python, &native)
                },
                calls: s.calls,
                bytes: s.bytes,
                frees: s.frees,
                live_bytes: s.live,
                peak_bytes: s.peak,
                at_peak_bytes: s.at_peak,
                // A mapping's residency is its regions' (mincore at the write): a sparse
                // shm segment or an untouched file mapping shows how little is in RAM.
                resident_bytes: s.resident.or_else(|| {
                    (!regions.is_empty())
                        .then(|| regions.iter().map(|r| r.resident).sum::<Option<u64>>())
                        .flatten()
                }),
                sampled: s.sampled,
                live_rel_error: sampled(s.live),
                at_peak_rel_error: sampled(s.at_peak),
                python,
                native,
                regions,
            }
        })
        .collect()
}

fn unnamed(module: &str, offset: u64) -> NativeFrame {
    NativeFrame {
        function: None,
        file: None,
        line: None,
        module: module.to_string(),
        offset,
    }
}

/// A process's live bytes and VmRSS (if known) between two of its samples.
type Held = (u64, Option<u64>);

/// (time, 0 for a sample or 1 for the end, process, what it holds from then; None at the end).
type Event = (u64, u8, usize, Option<Held>);

/// Sums the processes' sample series on one time axis. A process holds its last sample's
/// value until its next; before its first sample and after its last write it holds 0 (an
/// exec'd image's bytes become the next image's, a process that exited holds nothing).
fn tree_peak(processes: &[&TracedProcess]) -> Option<TreePeak> {
    let mut events: Vec<Event> = Vec::new();
    for (i, p) in processes.iter().enumerate() {
        let t = &p.trace;
        for s in &t.samples {
            events.push((s.t_ns, 0, i, Some((s.total(), s.vm_rss))));
        }
        if let Some(last) = t.samples.last() {
            // Held until the last write; gone right after it.
            events.push((t.flush_ns.max(last.t_ns), 1, i, None));
        }
    }
    // At one instant, values change first, the peak is read, then processes end.
    events.sort_by_key(|e| (e.0, e.1, e.2));
    let mut current: Vec<Held> = vec![(0, None); processes.len()];
    // Wide enough that hostile values cannot overflow it.
    let mut sum: u128 = 0;
    let mut best: Option<(u64, u128, Vec<Held>)> = None;
    let mut i = 0;
    while i < events.len() {
        let now = events[i].0;
        let mut changed = false;
        while i < events.len() && events[i].0 == now && events[i].1 == 0 {
            let (_, _, p, value) = events[i];
            let (v, rss) = value.unwrap_or_default();
            sum = sum - u128::from(current[p].0) + u128::from(v);
            current[p] = (v, rss);
            changed = true;
            i += 1;
        }
        if changed && best.as_ref().map_or(true, |b| sum > b.1) {
            best = Some((now, sum, current.clone()));
        }
        while i < events.len() && events[i].0 == now && events[i].1 == 1 {
            let p = events[i].2;
            sum -= u128::from(current[p].0);
            current[p] = (0, None);
            i += 1;
        }
    }
    let (t_ns, live_bytes, values) = best?;
    let start = processes
        .iter()
        .map(|p| p.trace.init_ns)
        .min()
        .unwrap_or(t_ns);
    let rss: Vec<u64> = values.iter().filter_map(|v| v.1).collect();
    Some(TreePeak {
        t_ns,
        after_ns: t_ns.saturating_sub(start),
        live_bytes: u64::try_from(live_bytes).unwrap_or(u64::MAX),
        vm_rss_bytes: (!rss.is_empty()).then(|| rss.iter().fold(0u64, |a, b| a.saturating_add(*b))),
        processes: processes
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.0 > 0)
            .map(|(p, v)| (p.name(), v.0))
            .collect(),
    })
}

#[cfg(test)]
mod tests;
