//! The Prometheus exporter's core, free of HTTP: measure the tree at most once per
//! `min_interval` however often it is scraped, and render the Prometheus text format.
//!
//! Label cardinality is bounded by construction: the main gauge is summed per role
//! (a handful) × category (14) × kind (3); per-process series exist only for the
//! `max_processes` largest processes; cgroup stat keys come from a fixed list.
//!
//! [`http`] is the bounded HTTP/1.1 front that serves it.

pub mod http;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::attribute::Category;
use crate::measure::{MeasureOptions, Measurer};
use crate::proc::cgroup::{CgroupMemory, CgroupReader, CgroupVersion};
use crate::proc::roles::Role;
use crate::proc::{Pid, ProcFs};
use crate::snapshot::{ProcessSnapshot, TreeSnapshot};

/// `memory.stat` keys exported (the ones that explain a container's host RAM).
pub const CGROUP_STAT_KEYS: [&str; 12] = [
    "anon",
    "file",
    "kernel",
    "kernel_stack",
    "pagetables",
    "shmem",
    "file_mapped",
    "file_dirty",
    "sock",
    "slab",
    // v1 names for the same things.
    "rss",
    "cache",
];

/// At most this many distinct cgroups are exported.
pub const MAX_CGROUPS: usize = 8;

/// At most this many trees are exported (each brings roles × categories × kinds series).
pub const MAX_TREES: usize = 16;

/// One measured tree and the name its series carry in the `tree` label: the path of the
/// cgroup holding its root (stable across restarts of the processes in one container), or
/// `pid/<root>` where no cgroup can be read.
#[derive(Debug, Clone)]
pub struct Tree {
    pub name: String,
    pub snapshot: TreeSnapshot,
}

#[derive(Debug, Clone)]
pub enum Targets {
    /// Every inference-server tree, found again at each refresh.
    Auto,
    Pids(Vec<Pid>),
}

#[derive(Debug, Clone)]
pub struct ExporterOptions {
    pub targets: Targets,
    pub min_interval: Duration,
    pub max_processes: usize,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub refreshes: u64,
    pub refresh_errors: u64,
    pub scrapes: u64,
    pub last_refresh_s: f64,
}

pub struct Exporter {
    fs: ProcFs,
    measurer: Measurer,
    cgroups: CgroupReader,
    options: ExporterOptions,
    cached: Option<(Instant, Arc<String>)>,
    stats: Stats,
}

impl Exporter {
    pub fn new(fs: ProcFs, options: ExporterOptions) -> Exporter {
        let measurer = Measurer::new(
            fs.clone(),
            MeasureOptions {
                tree: true,
                keep_mappings: false,
                use_rollup: true,
            },
        );
        Exporter {
            cgroups: CgroupReader::new(fs.root(), "/"),
            fs,
            measurer,
            options,
            cached: None,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The text for one scrape at `now`: the cached measurement if it is fresh enough, else a
    /// new one; the exporter's own counters are always current.
    pub fn scrape(&mut self, now: Instant) -> String {
        self.stats.scrapes += 1;
        let fresh = self
            .cached
            .as_ref()
            .is_some_and(|(at, _)| now.duration_since(*at) < self.options.min_interval);
        if !fresh {
            let body = Arc::new(self.refresh());
            self.cached = Some((now, body));
        }
        let (at, body) = self.cached.clone().unwrap_or_else(|| (now, Arc::default()));
        let mut out = String::with_capacity(body.len() + 1024);
        out.push_str(&body);
        self_metrics(&mut out, &self.stats, now.duration_since(at).as_secs_f64());
        out
    }

    fn refresh(&mut self) -> String {
        let started = Instant::now();
        self.stats.refreshes += 1;
        let mut errors = Vec::new();
        let roots: Vec<Pid> = match &self.options.targets {
            Targets::Auto => match self.measurer.find_servers() {
                Ok(r) => r,
                Err(e) => {
                    errors.push(e.to_string());
                    Vec::new()
                }
            },
            Targets::Pids(p) => p.iter().copied().filter(|&p| self.fs.exists(p)).collect(),
        };
        // Each tree on its own, named by the cgroup holding it: two servers on one node (two
        // pods under one DaemonSet) stay apart, and the name joins with cAdvisor's `id`.
        let mut trees: Vec<Tree> = Vec::new();
        let mut cgroups: Vec<CgroupMemory> = Vec::new();
        for &root in &roots {
            if trees
                .iter()
                .any(|t| t.snapshot.processes.iter().any(|p| p.pid == root))
            {
                continue; // inside a tree already measured
            }
            let snapshot = match self.measurer.tree(&[root]) {
                Ok(s) => s,
                Err(e) if e.is_gone() => continue,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            let cgroup = match self.cgroups.memory_of(root) {
                Ok(c) => c,
                // A process that exited since the tree was read is not an error.
                Err(_) if !self.fs.exists(root) => None,
                Err(e) => {
                    errors.push(e.to_string());
                    None
                }
            };
            let name = cgroup
                .as_ref()
                .map_or_else(|| format!("pid/{root}"), |c| c.path.clone());
            if let Some(c) = cgroup {
                if !cgroups
                    .iter()
                    .any(|k| k.path == c.path && k.version == c.version)
                {
                    cgroups.push(c);
                }
            }
            match trees.iter_mut().find(|t| t.name == name) {
                Some(t) => {
                    let mut processes = std::mem::take(&mut t.snapshot.processes);
                    processes.extend(snapshot.processes);
                    t.snapshot = TreeSnapshot::new(snapshot.taken_at, processes, Vec::new());
                }
                None => trees.push(Tree { name, snapshot }),
            }
        }
        trees.truncate(MAX_TREES);
        cgroups.truncate(MAX_CGROUPS);
        self.stats.refresh_errors += u64::from(!errors.is_empty());
        self.stats.last_refresh_s = started.elapsed().as_secs_f64();
        render(
            &trees,
            &cgroups,
            self.options.max_processes,
            self.stats.last_refresh_s,
        )
    }
}

/// Escapes a label value for the text format.
pub fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars().take(120) {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

/// The measurement part of the exposition.
pub fn render(
    trees: &[Tree],
    cgroups: &[CgroupMemory],
    max_processes: usize,
    refresh_s: f64,
) -> String {
    let mut out = String::new();
    help(
        &mut out,
        "ramscope_targets",
        "gauge",
        "Process trees measured (roots found or given and alive).",
    );
    let _ = writeln!(out, "ramscope_targets {}", trees.len());

    if !trees.is_empty() {
        // tree → role → category → (pss, rss, uss)
        type ByRole = BTreeMap<Role, BTreeMap<Category, (u64, u64, u64)>>;
        let mut by_tree: Vec<(&str, ByRole, BTreeMap<Role, usize>)> = Vec::new();
        for t in trees {
            let mut by_role = ByRole::new();
            let mut counts: BTreeMap<Role, usize> = BTreeMap::new();
            for p in &t.snapshot.processes {
                *counts.entry(p.role).or_default() += 1;
                let cats = by_role.entry(p.role).or_default();
                for (c, u) in &p.categories {
                    let e = cats.entry(*c).or_default();
                    e.0 += u.pss_bytes;
                    e.1 += u.rss_bytes;
                    e.2 += u.uss_bytes;
                }
            }
            by_tree.push((&t.name, by_role, counts));
        }
        help(
            &mut out,
            "ramscope_memory_bytes",
            "gauge",
            "Host RAM of each measured tree by process role and category; kind is pss, rss (summed over processes, double counts shared pages) or uss.",
        );
        for (tree, by_role, _) in &by_tree {
            let tree = label(tree);
            for (role, cats) in by_role {
                for (c, (pss, rss, uss)) in cats {
                    for (kind, v) in [("pss", pss), ("rss", rss), ("uss", uss)] {
                        let _ = writeln!(
                            out,
                            "ramscope_memory_bytes{{tree=\"{tree}\",role=\"{}\",category=\"{}\",kind=\"{kind}\"}} {v}",
                            role.name(),
                            c.name()
                        );
                    }
                }
            }
        }
        help(
            &mut out,
            "ramscope_processes",
            "gauge",
            "Processes in the measured tree by role.",
        );
        for (tree, _, counts) in &by_tree {
            let tree = label(tree);
            for (role, n) in counts {
                let _ = writeln!(
                    out,
                    "ramscope_processes{{tree=\"{tree}\",role=\"{}\"}} {n}",
                    role.name()
                );
            }
        }
        help(
            &mut out,
            "ramscope_tree_memory_bytes",
            "gauge",
            "The tree's totals: pss and uss add up without double counting; rss_sum does not.",
        );
        for t in trees {
            let tree = label(&t.name);
            let total = &t.snapshot.total;
            for (kind, v) in [
                ("pss", total.pss_bytes),
                ("uss", total.uss_bytes),
                ("rss_sum", total.rss_sum_bytes),
                ("swap", total.swap_bytes),
            ] {
                let _ = writeln!(
                    out,
                    "ramscope_tree_memory_bytes{{tree=\"{tree}\",kind=\"{kind}\"}} {v}"
                );
            }
        }

        let all: Vec<(&str, &ProcessSnapshot)> = trees
            .iter()
            .flat_map(|t| {
                t.snapshot
                    .processes
                    .iter()
                    .map(move |p| (t.name.as_str(), p))
            })
            .collect();
        let mut largest = all.clone();
        largest.sort_by(|(_, a), (_, b)| b.pss_bytes.cmp(&a.pss_bytes).then(a.pid.cmp(&b.pid)));
        largest.truncate(max_processes);
        help(
            &mut out,
            "ramscope_process_info",
            "gauge",
            "One series per exported process (the largest by PSS), value 1.",
        );
        for (tree, p) in &largest {
            let _ = writeln!(
                out,
                "ramscope_process_info{{tree=\"{}\",pid=\"{}\",ppid=\"{}\",role=\"{}\",engine=\"{}\",name=\"{}\"}} 1",
                label(tree),
                p.pid,
                p.ppid,
                p.role.name(),
                p.engine.name(),
                label(&p.name)
            );
        }
        help(
            &mut out,
            "ramscope_process_memory_bytes",
            "gauge",
            "Per-process totals for the exported processes.",
        );
        for (_, p) in &largest {
            for (kind, v) in [
                ("pss", p.pss_bytes),
                ("rss", p.rss_bytes),
                ("uss", p.uss_bytes),
                ("swap", p.swap_bytes),
                ("peak_rss", p.peak_rss_bytes),
            ] {
                let _ = writeln!(
                    out,
                    "ramscope_process_memory_bytes{{pid=\"{}\",role=\"{}\",kind=\"{kind}\"}} {v}",
                    p.pid,
                    p.role.name()
                );
            }
        }
        help(
            &mut out,
            "ramscope_processes_not_exported",
            "gauge",
            "Processes measured but left out of the per-process series (over --max-processes).",
        );
        let _ = writeln!(
            out,
            "ramscope_processes_not_exported {}",
            all.len().saturating_sub(largest.len())
        );
    }

    if !cgroups.is_empty() {
        help(&mut out, "ramscope_cgroup_memory_bytes", "gauge", "The memory cgroup holding a measured tree: usage, limit (absent when unlimited), peak and swap.");
        for c in cgroups {
            let l = label(&c.path);
            let v = match c.version {
                CgroupVersion::V1 => "1",
                CgroupVersion::V2 => "2",
            };
            for (kind, value) in [
                ("current", Some(c.usage_bytes)),
                ("max", c.limit_bytes),
                ("peak", c.peak_bytes),
                ("swap", c.swap_bytes),
            ] {
                if let Some(value) = value {
                    let _ = writeln!(out, "ramscope_cgroup_memory_bytes{{cgroup=\"{l}\",version=\"{v}\",kind=\"{kind}\"}} {value}");
                }
            }
        }
        help(
            &mut out,
            "ramscope_cgroup_memory_stat_bytes",
            "gauge",
            "Selected memory.stat entries of that cgroup.",
        );
        for c in cgroups {
            let l = label(&c.path);
            for key in CGROUP_STAT_KEYS {
                if let Some(v) = c.stat.get(key) {
                    let _ = writeln!(
                        out,
                        "ramscope_cgroup_memory_stat_bytes{{cgroup=\"{l}\",key=\"{key}\"}} {v}"
                    );
                }
            }
        }
    }
    help(
        &mut out,
        "ramscope_snapshot_duration_seconds",
        "gauge",
        "Wall time of the last measurement of the tree.",
    );
    let _ = writeln!(out, "ramscope_snapshot_duration_seconds {refresh_s:.6}");
    out
}

/// The exporter's own counters, current at every scrape.
fn self_metrics(out: &mut String, s: &Stats, age_s: f64) {
    help(
        out,
        "ramscope_snapshot_refreshes_total",
        "counter",
        "Measurements of the tree taken (at most one per --min-interval, however often scraped).",
    );
    let _ = writeln!(out, "ramscope_snapshot_refreshes_total {}", s.refreshes);
    help(
        out,
        "ramscope_snapshot_errors_total",
        "counter",
        "Refreshes that could not measure every target.",
    );
    let _ = writeln!(out, "ramscope_snapshot_errors_total {}", s.refresh_errors);
    help(
        out,
        "ramscope_scrapes_total",
        "counter",
        "Scrapes answered.",
    );
    let _ = writeln!(out, "ramscope_scrapes_total {}", s.scrapes);
    help(
        out,
        "ramscope_snapshot_age_seconds",
        "gauge",
        "Age of the measurement this scrape was served from.",
    );
    let _ = writeln!(out, "ramscope_snapshot_age_seconds {age_s:.3}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_between_refreshes() {
        let me = std::process::id();
        let mut e = Exporter::new(
            ProcFs::default(),
            ExporterOptions {
                targets: Targets::Pids(vec![me]),
                min_interval: Duration::from_secs(3600),
                max_processes: 4,
            },
        );
        let t0 = Instant::now();
        let first = e.scrape(t0);
        for _ in 0..50 {
            e.scrape(t0 + Duration::from_secs(1));
        }
        assert_eq!(e.stats().refreshes, 1);
        assert_eq!(e.stats().scrapes, 51);
        assert!(first.contains("role=\"other\",category=\"heap\",kind=\"pss\"}"));
        assert!(first.contains(&format!(",pid=\"{me}\",")));
        e.scrape(t0 + Duration::from_secs(3601));
        assert_eq!(e.stats().refreshes, 2);
    }

    #[test]
    fn escapes_labels() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(label(&"x".repeat(500)).len(), 120);
    }

    #[test]
    fn gone_targets_yield_no_series() {
        let text = render(&[], &[], 4, 0.0);
        assert!(text.contains("ramscope_targets 0"));
        assert!(!text.contains("ramscope_memory_bytes{"));
    }
}
