//! Measurement beside prediction: every estimated component matched to the category its
//! bytes live in, the difference named, the container checked, and advice priced by
//! re-running the estimator with the changed setting.

mod advice;
mod trust;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::attribute::Category;
use crate::engines::Candidate;
use crate::footprint::{Device, Estimate, Phase, ProcessEstimate};
use crate::proc::cgroup::CgroupMemory;
use crate::proc::host::{HostMemory, ShmMount};
use crate::proc::roles::Role;
use crate::server::ServerLaunch;
use crate::snapshot::{ProcessSnapshot, TreeSnapshot};
use crate::units::bytes;

pub const SCHEMA: &str = "ramscope.explain/1";

/// Categories are compared in families: the estimator knows how much library code a process
/// maps, not how the loader splits it between CUDA, torch and Python packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Heap,
    Code,
    Weights,
    Pinned,
    Shm,
    Stack,
    GpuDriver,
    Files,
    Other,
}

impl Family {
    pub fn of(c: Category) -> Family {
        match c {
            Category::Heap => Family::Heap,
            Category::CodeCuda
            | Category::CodeTorch
            | Category::CodePython
            | Category::CodeOther => Family::Code,
            Category::Weights => Family::Weights,
            Category::Pinned => Family::Pinned,
            Category::Shm | Category::SharedAnon => Family::Shm,
            Category::Stack => Family::Stack,
            Category::GpuDriver => Family::GpuDriver,
            Category::FileOther => Family::Files,
            Category::Kernel | Category::Other => Family::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Heap => "heap",
            Family::Code => "code",
            Family::Weights => "weights",
            Family::Pinned => "pinned",
            Family::Shm => "shm",
            Family::Stack => "stack",
            Family::GpuDriver => "gpu-driver",
            Family::Files => "file.other",
            Family::Other => "other",
        }
    }
}

/// One family of one process: what the model says, what was measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub category: Family,
    /// The estimated components in this family, largest first.
    pub components: Vec<String>,
    pub estimated_bytes: u64,
    pub measured_bytes: u64,
    /// The measured bytes the components account for: min(estimated, measured).
    pub explained_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residual: Option<String>,
}

/// One measured process beside its estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessExplanation {
    pub pid: u32,
    pub role: Role,
    pub title: String,
    pub measured_pss_bytes: u64,
    pub estimated_bytes: u64,
    pub explained_fraction: f64,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Info,
    Warn,
    Critical,
}

/// A container or host fact that decides whether the server fits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub level: Level,
    pub what: String,
    pub detail: String,
}

/// A change, with the bytes it saves according to a second estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    pub action: String,
    pub saves_bytes: u64,
    /// `steady` or `peak`: which figure the saving is in.
    pub applies_to: &'static str,
    pub why: String,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub schema: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch: Option<ServerLaunch>,
    pub snapshot: TreeSnapshot,
    pub estimate: Estimate,
    pub processes: Vec<ProcessExplanation>,
    pub measured_pss_bytes: u64,
    pub estimated_bytes: u64,
    pub explained_fraction: f64,
    pub checks: Vec<Check>,
    /// Why this explanation may not hold (unknown vLLM version, processes far from their
    /// estimates). When there is any, `advice` is empty and `advice_withheld` counts it.
    pub doubts: Vec<String>,
    /// The release came from the server's installation or the user and ramscope has read it;
    /// `false` exactly when the estimate's `version_assumed` is set.
    pub version_known: bool,
    pub advice: Vec<Advice>,
    pub advice_withheld: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupMemory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostMemory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_shm: Option<ShmMount>,
    /// The components beside a `ramscope trace` of the server (`explain --trace DIR`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::trace::join::TraceJoin>,
    pub notes: Vec<String>,
}

/// The container and host as the server sees them.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub cgroup: Option<CgroupMemory>,
    pub host: Option<HostMemory>,
    pub dev_shm: Option<ShmMount>,
}

/// Prices the engine's suggested changes by estimating again.
pub trait Reestimate {
    /// The changes the engine suggests for the command line `base` was estimated for.
    fn candidates(&self, base: &Estimate) -> Vec<Candidate>;
    /// The estimate with `change` applied; `None` when the change cannot be priced.
    fn with(&self, change: &Candidate) -> Option<Estimate>;
}

/// Joins a measured tree with its estimate.
pub fn explain(
    snapshot: TreeSnapshot,
    estimate: Estimate,
    launch: Option<ServerLaunch>,
    environment: Environment,
    reestimate: &dyn Reestimate,
) -> Explanation {
    let mut notes = Vec::new();
    let mut processes = Vec::new();
    for p in &snapshot.processes {
        match estimate_for(&estimate, p) {
            Some(e) => processes.push(join(p, e)),
            None => {
                notes.push(format!(
                    "PID {} ({}) has no counterpart in the estimate",
                    p.pid,
                    p.role.name()
                ));
                processes.push(join_unmodelled(p));
            }
        }
    }
    for e in &estimate.processes {
        let seen = snapshot
            .processes
            .iter()
            .filter(|p| p.role == e.role)
            .count() as u64;
        if seen < e.count {
            notes.push(format!(
                "the estimate has {} {} process(es), {} running",
                e.count,
                e.role.name(),
                seen
            ));
        }
    }
    let measured: u64 = processes.iter().map(|p| p.measured_pss_bytes).sum();
    let estimated: u64 = processes.iter().map(|p| p.estimated_bytes).sum();
    let rows = || processes.iter().flat_map(|p| &p.rows);
    let explained = rows().map(|r| r.explained_bytes).sum();
    let larger = rows()
        .map(|r| r.estimated_bytes.max(r.measured_bytes))
        .sum();
    let checks = checks(&snapshot, &estimate, &environment);
    // Known when the installation or the user named a release ramscope has read.
    let version_known = estimate.version_assumed.is_none();
    let title = crate::engines::named(estimate.engine).map_or(estimate.engine, |e| e.title());
    let doubts = trust::doubts(estimate.version_assumed.as_ref(), title, &processes);
    let mut advice = advice::advise(&estimate, reestimate);
    let advice_withheld = if doubts.is_empty() {
        0
    } else {
        std::mem::take(&mut advice).len()
    };
    // A measured tree bounds what any change can save in it.
    if !snapshot.processes.is_empty() {
        advice.retain(|a| a.saves_bytes <= measured);
    }
    Explanation {
        schema: SCHEMA,
        launch,
        measured_pss_bytes: measured,
        estimated_bytes: estimated,
        explained_fraction: fraction(explained, larger),
        snapshot,
        estimate,
        processes,
        checks,
        doubts,
        version_known,
        advice,
        advice_withheld,
        cgroup: environment.cgroup,
        host: environment.host,
        dev_shm: environment.dev_shm,
        trace: None,
        notes,
    }
}

impl Explanation {
    /// Measured minus estimated heap, over the tree's processes.
    pub fn heap_residual_bytes(&self) -> i64 {
        self.processes
            .iter()
            .flat_map(|p| &p.rows)
            .filter(|r| r.category == Family::Heap)
            .map(|r| r.measured_bytes as i64 - r.estimated_bytes as i64)
            .sum()
    }
}

/// Explained bytes over the larger of estimate and measurement, family by family: memory
/// the model predicts but the process does not hold is as unexplained as the reverse.
fn fraction(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 / whole as f64).min(1.0)
}

/// The estimate entry a measured process instantiates: the same role. The resource tracker
/// and compile workers have their own roles; a measured role the estimate lacks has none.
fn estimate_for<'e>(estimate: &'e Estimate, p: &ProcessSnapshot) -> Option<&'e ProcessEstimate> {
    estimate.processes.iter().find(|e| e.role == p.role)
}

fn join(p: &ProcessSnapshot, e: &ProcessEstimate) -> ProcessExplanation {
    let mut estimated: BTreeMap<Family, (u64, Vec<(u64, String)>)> = BTreeMap::new();
    for c in e.components.iter().filter(|c| c.phase == Phase::Steady) {
        let entry = estimated.entry(Family::of(c.category)).or_default();
        entry.0 += c.bytes;
        entry.1.push((c.bytes, c.id.clone()));
    }
    let measured = measured_families(p);
    let mut families: Vec<Family> = estimated.keys().chain(measured.keys()).copied().collect();
    families.sort();
    families.dedup();
    let mut rows = Vec::new();
    for f in families {
        let (est, mut comps) = estimated.remove(&f).unwrap_or_default();
        let meas = measured.get(&f).copied().unwrap_or(0);
        comps.sort_by_key(|c| std::cmp::Reverse(c.0));
        let residual = residual(f, est, meas, p.role);
        rows.push(Row {
            category: f,
            components: comps.into_iter().map(|(_, id)| id).collect(),
            estimated_bytes: est,
            measured_bytes: meas,
            explained_bytes: est.min(meas),
            residual,
        });
    }
    rows.sort_by(|a, b| {
        b.measured_bytes
            .max(b.estimated_bytes)
            .cmp(&a.measured_bytes.max(a.estimated_bytes))
    });
    let explained: u64 = rows.iter().map(|r| r.explained_bytes).sum();
    let larger: u64 = rows
        .iter()
        .map(|r| r.estimated_bytes.max(r.measured_bytes))
        .sum();
    ProcessExplanation {
        pid: p.pid,
        role: p.role,
        title: e.title.clone(),
        measured_pss_bytes: p.pss_bytes,
        estimated_bytes: e.steady_bytes,
        explained_fraction: fraction(explained, larger),
        rows,
    }
}

/// Measured PSS per family. Copy-on-write pages that a process wrote inside library
/// mappings are private anonymous memory, counted where the estimator's baselines count them
/// (the process's anonymous memory, `Pss_Anon`): in the heap family.
fn measured_families(p: &ProcessSnapshot) -> BTreeMap<Family, u64> {
    let mut measured: BTreeMap<Family, u64> = BTreeMap::new();
    for (&c, u) in &p.categories {
        let family = Family::of(c);
        let written = if family == Family::Code {
            u.anon_bytes.min(u.pss_bytes)
        } else {
            0
        };
        *measured.entry(family).or_default() += u.pss_bytes - written;
        if written > 0 {
            *measured.entry(Family::Heap).or_default() += written;
        }
    }
    measured
}

fn join_unmodelled(p: &ProcessSnapshot) -> ProcessExplanation {
    let measured = measured_families(p);
    ProcessExplanation {
        pid: p.pid,
        role: p.role,
        title: p.name.clone(),
        measured_pss_bytes: p.pss_bytes,
        estimated_bytes: 0,
        explained_fraction: 0.0,
        rows: measured
            .into_iter()
            .map(|(f, m)| Row {
                category: f,
                components: Vec::new(),
                estimated_bytes: 0,
                measured_bytes: m,
                explained_bytes: 0,
                residual: Some("not modelled for this role".into()),
            })
            .collect(),
    }
}

/// Differences below this are noise (allocator slack, a few pages of code).
fn negligible(est: u64, meas: u64) -> bool {
    let diff = est.abs_diff(meas);
    diff < 8 << 20 || diff * 10 < est.max(meas)
}

/// Names a difference: what usually makes it, and what to do to see more.
fn residual(f: Family, est: u64, meas: u64, role: Role) -> Option<String> {
    if negligible(est, meas) {
        return None;
    }
    let diff = bytes(est.abs_diff(meas));
    let above = meas > est;
    let text = match (f, above) {
        (Family::Heap, true) => format!(
            "heap is {diff} above the model: Python objects and caches grow with traffic (request state, tokenizer caches, allocator fragmentation); run it again under load, or trace the allocations (memray, heaptrack)"
        ),
        (Family::Heap, false) => format!(
            "heap is {diff} below the model: buffers not touched yet (allocated lazily, or zero pages never written), or a smaller import set than the calibration's"
        ),
        (Family::Code, true) => format!(
            "libraries are {diff} above the model: more code paged in (first kernels, more imported packages) than the calibration saw; `ramscope calibrate` measures this stack"
        ),
        (Family::Code, false) => format!(
            "libraries are {diff} below the model: fewer pages touched, or shared with more processes than modelled"
        ),
        (Family::Shm, true) => format!(
            "shared memory is {diff} above the model: queues filled by large messages, or other shared segments"
        ),
        (Family::Shm, false) => format!(
            "shared memory is {diff} below the model: the queues are sparse, only pages written by messages are resident"
        ),
        (Family::Pinned, true) => format!(
            "pinned memory is {diff} above the model: the caching host allocator keeps freed blocks, rounded to powers of two"
        ),
        (Family::Pinned, false) => format!("pinned memory is {diff} below the model: not all buffers allocated yet"),
        (Family::Weights, true) => format!(
            "mapped weights are {diff} above the model: pages of mmapped weight files stay resident after loading"
        ),
        (Family::Weights, false) => format!("mapped weights are {diff} below the model"),
        (Family::Stack, _) => format!("thread stacks differ by {diff}: thread count of {}", role.name()),
        (Family::GpuDriver, _) => format!("GPU driver mappings differ by {diff}"),
        (Family::Files, _) | (Family::Other, _) => format!("{} differs by {diff}", f.name()),
    };
    Some(text)
}

fn checks(snapshot: &TreeSnapshot, estimate: &Estimate, env: &Environment) -> Vec<Check> {
    let mut out = Vec::new();
    let pss = snapshot.total.pss_bytes;
    let peak = estimate.total.peak_bytes;
    if let Some(cg) = &env.cgroup {
        let cache = cg.file_bytes;
        match cg.limit_bytes {
            Some(limit) => {
                let level = if cg.usage_bytes * 10 >= limit * 9 || peak > limit {
                    Level::Critical
                } else if cg.usage_bytes * 10 >= limit * 7 {
                    Level::Warn
                } else {
                    Level::Ok
                };
                out.push(Check {
                    level,
                    what: format!("cgroup {} ({:?})", cg.path, cg.version).to_lowercase(),
                    detail: format!(
                        "limit {}, in use {} (anon {}, page cache {}, shmem {}); the estimated load peak is {}{}; the weight files' page cache (up to {}) is charged here too, reclaimable but counted in memory.current",
                        bytes(limit),
                        bytes(cg.usage_bytes),
                        bytes(cg.anon_bytes),
                        bytes(cache),
                        bytes(cg.shmem_bytes),
                        bytes(peak),
                        if peak > limit {
                            ": the server can be OOM-killed while loading"
                        } else {
                            ""
                        },
                        bytes(estimate.total.page_cache_bytes),
                    ),
                });
            }
            None => out.push(Check {
                level: Level::Info,
                what: format!("cgroup {}", cg.path),
                detail: format!(
                    "no memory limit; charged {} (anon {}, page cache {} — weight files read at start-up stay charged until reclaimed)",
                    bytes(cg.usage_bytes),
                    bytes(cg.anon_bytes),
                    bytes(cache)
                ),
            }),
        }
    }
    if let Some(shm) = &env.dev_shm {
        let needed = estimate.total.shm_mapped_bytes;
        let (level, detail) = if needed > shm.size_bytes {
            (
                Level::Critical,
                format!(
                    "{} of /dev/shm, but the configuration maps {} of shared memory (message queues{}): vLLM fails with a bus error or NCCL errors; run the container with --shm-size={} or more (Kubernetes: an emptyDir with medium: Memory)",
                    bytes(shm.size_bytes),
                    bytes(needed),
                    if estimate.device == Device::Cuda { ", NCCL" } else { "" },
                    bytes(needed.next_power_of_two().max(1 << 30))
                ),
            )
        } else {
            (
                Level::Ok,
                format!(
                    "{} of /dev/shm ({} used); the configuration maps {}",
                    bytes(shm.size_bytes),
                    bytes(shm.used_bytes),
                    bytes(needed)
                ),
            )
        };
        out.push(Check {
            level,
            what: "/dev/shm".into(),
            detail,
        });
    }
    if let Some(h) = &env.host {
        let level = if h.available_bytes < peak.saturating_sub(pss) {
            Level::Warn
        } else {
            Level::Ok
        };
        out.push(Check {
            level,
            what: "host memory".into(),
            detail: format!(
                "{} available of {}; swap {} ({} free); the tree uses {} PSS",
                bytes(h.available_bytes),
                bytes(h.total_bytes),
                bytes(h.swap_total_bytes),
                bytes(h.swap_free_bytes),
                bytes(pss)
            ),
        });
        if h.overcommit_memory == Some(2) {
            out.push(Check {
                level: Level::Warn,
                what: "vm.overcommit_memory = 2".into(),
                detail: "strict accounting counts reserved address space (8 MiB per thread stack, 64 MiB malloc arenas, sparse shm): Python/torch processes can fail to start with far less RSS than the limit".into(),
            });
        }
        if h.transparent_hugepages.as_deref() == Some("always") {
            out.push(Check {
                level: Level::Info,
                what: "transparent huge pages: always".into(),
                detail: "anonymous memory is backed by 2 MiB pages where possible: RSS of sparse heaps can grow by up to 2 MiB per touched region; `madvise` avoids that".into(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::{self, Launch, Options};
    use crate::estimate::estimate;
    use crate::model::Model;
    use crate::proc::cgroup::CgroupVersion;
    use crate::proc::roles::Engine;
    use crate::snapshot::CategoryUsage;

    struct Rerun {
        launch: Box<dyn Launch>,
        options: Options,
    }

    impl Reestimate for Rerun {
        fn candidates(&self, base: &Estimate) -> Vec<Candidate> {
            self.launch.candidates(base, &self.options.env)
        }

        fn with(&self, change: &Candidate) -> Option<Estimate> {
            let mut o = self.options.clone();
            o.env = change.env.clone();
            estimate(&Model::default_model(), &*change.launch, &o).ok()
        }
    }

    /// A vLLM command line of flags, parsed through the registry.
    fn parse(flags: &str) -> Box<dyn Launch> {
        let vllm = engines::named("vllm").unwrap();
        vllm.parse(&vllm.split_command_line(flags).unwrap())
            .unwrap()
    }

    fn setup(flags: &str) -> (Estimate, Rerun) {
        let launch = parse(flags);
        let options = Options::default();
        let e = estimate(&Model::default_model(), &*launch, &options).unwrap();
        (e, Rerun { launch, options })
    }

    /// A measured process that holds `heap` and `code` bytes of PSS.
    fn process(pid: u32, role: Role, heap: u64, code: u64) -> ProcessSnapshot {
        let mut categories = BTreeMap::new();
        categories.insert(
            Category::Heap,
            CategoryUsage {
                pss_bytes: heap,
                rss_bytes: heap,
                ..Default::default()
            },
        );
        categories.insert(
            Category::CodeTorch,
            CategoryUsage {
                pss_bytes: code,
                rss_bytes: code,
                ..Default::default()
            },
        );
        ProcessSnapshot {
            pid,
            ppid: 1,
            role,
            engine: Engine::Vllm,
            name: "python3".into(),
            cmdline: String::new(),
            rss_bytes: heap + code,
            pss_bytes: heap + code,
            uss_bytes: heap + code,
            swap_bytes: 0,
            swap_pss_bytes: 0,
            pss_anon_bytes: heap,
            pss_file_bytes: code,
            pss_shmem_bytes: 0,
            peak_rss_bytes: 0,
            threads: 1,
            uses_gpu: true,
            rss_anon_bytes: heap,
            rss_file_bytes: code,
            rss_shmem_bytes: 0,
            categories,
            mappings: Vec::new(),
            reconciliation: Default::default(),
            read: None,
        }
    }

    #[test]
    fn joins_by_family_and_names_the_residual() {
        let (e, rerun) = setup("--max-model-len 5120");
        let engine = e.process(Role::EngineCore).unwrap();
        let heap_est: u64 = engine
            .components
            .iter()
            .filter(|c| c.phase == Phase::Steady && Family::of(c.category) == Family::Heap)
            .map(|c| c.bytes)
            .sum();
        // Measured: the modelled heap plus 400 MiB more, and no library pages at all.
        let measured = process(10, Role::EngineCore, heap_est + (400 << 20), 0);
        let snapshot = TreeSnapshot::new("now".into(), vec![measured], Vec::new());
        let x = explain(snapshot, e, None, Environment::default(), &rerun);
        let p = &x.processes[0];
        let heap = p.rows.iter().find(|r| r.category == Family::Heap).unwrap();
        assert_eq!(heap.estimated_bytes, heap_est);
        assert_eq!(heap.explained_bytes, heap_est);
        assert!(heap
            .residual
            .as_deref()
            .unwrap()
            .starts_with("heap is 400 MiB above the model"));
        assert!(heap
            .components
            .iter()
            .any(|c| c == "runtime.python_imports"));
        // A modelled heap allocation of EngineCore (V2 keeps its token tables pinned or on
        // the GPU, so none of them is heap at the newest release).
        assert!(heap
            .components
            .iter()
            .any(|c| c == "scheduler.kv_block_objects"));
        // Two-sided: the estimated library pages the process does not map are unexplained too.
        let larger: u64 = p
            .rows
            .iter()
            .map(|r| r.estimated_bytes.max(r.measured_bytes))
            .sum();
        assert!(larger > heap_est + (400 << 20));
        let expected = heap_est as f64 / larger as f64;
        assert!((p.explained_fraction - expected).abs() < 1e-9);
        assert!((x.explained_fraction - expected).abs() < 1e-9);
        // The estimate's other processes are missing from the measurement: said so.
        assert!(x.notes.iter().any(|n| n.contains("api-server")));
    }

    #[test]
    fn a_tree_far_from_its_estimate_is_doubted_and_gets_no_advice() {
        // Python sleepers titled like vLLM: 70 MiB where the model expects ~640 MiB.
        let (mut e, rerun) = setup("--max-model-len 5120 --max-num-seqs 256");
        e.version_assumed = Some(crate::footprint::ReleaseAssumed {
            requested: None,
            used: e.engine_version.clone(),
            reason: "no installation was found".into(),
        });
        let api = process(10, Role::ApiServer, 50 << 20, 20 << 20);
        let snapshot = TreeSnapshot::new("now".into(), vec![api], Vec::new());
        let x = explain(snapshot, e, None, Environment::default(), &rerun);
        assert!(!x.version_known);
        assert!(x.explained_fraction < 0.2, "{}", x.explained_fraction);
        assert!(x.processes[0].explained_fraction < 0.2);
        assert_eq!(x.doubts.len(), 2, "{:?}", x.doubts);
        assert!(x.advice.is_empty() && x.advice_withheld > 0);
    }

    #[test]
    fn advice_is_priced_by_a_second_estimate() {
        let (e, rerun) = setup("--max-model-len 5120 --max-num-seqs 256");
        let base = e.total.steady_bytes;
        let snapshot = TreeSnapshot::new("now".into(), Vec::new(), Vec::new());
        let x = explain(snapshot, e, None, Environment::default(), &rerun);
        let seqs = x
            .advice
            .iter()
            .find(|a| a.action.starts_with("--max-num-seqs 128"))
            .unwrap();
        let again = estimate(
            &Model::default_model(),
            &*parse("--max-model-len 5120 --max-num-seqs 128"),
            &rerun.options,
        )
        .unwrap()
        .total
        .steady_bytes;
        assert_eq!(seqs.saves_bytes, base - again);
        assert!(x.advice.iter().all(|a| a.saves_bytes >= 1 << 20));
        assert!(x.advice.iter().any(|a| a.action == "--enforce-eager"));
        assert!(x
            .advice
            .windows(2)
            .all(|w| w[0].saves_bytes >= w[1].saves_bytes));
    }

    #[test]
    fn a_limit_below_the_load_peak_is_critical() {
        let (e, rerun) = setup("--max-model-len 5120 --safetensors-load-strategy eager");
        let peak = e.total.peak_bytes;
        let cgroup = CgroupMemory {
            version: CgroupVersion::V2,
            path: "/kubepods/pod1".into(),
            limit_bytes: Some(peak / 2),
            usage_bytes: peak / 8,
            peak_bytes: None,
            swap_bytes: None,
            anon_bytes: peak / 8,
            file_bytes: 0,
            shmem_bytes: 0,
            file_mapped_bytes: 0,
            file_dirty_bytes: 0,
            kernel_bytes: None,
            stat: BTreeMap::new(),
        };
        let snapshot = TreeSnapshot::new("now".into(), Vec::new(), Vec::new());
        let env = Environment {
            cgroup: Some(cgroup),
            ..Default::default()
        };
        let x = explain(snapshot, e, None, env, &rerun);
        let c = x
            .checks
            .iter()
            .find(|c| c.what.starts_with("cgroup"))
            .unwrap();
        assert_eq!(c.level, Level::Critical);
        assert!(c.detail.contains("OOM-killed while loading"));
        // And the load-strategy advice prices the peak, not the steady state.
        let lazy = x.advice.iter().find(|a| a.action.contains("lazy")).unwrap();
        assert_eq!(lazy.applies_to, "peak");
    }
}
