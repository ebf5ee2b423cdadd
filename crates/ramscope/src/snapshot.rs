//! Per-process and per-tree memory, by category: the data every report is made from.
//!
//! Invariant: a process's categories add up exactly to its own totals (RSS, PSS, USS, swap),
//! and the totals are the kernel's `smaps_rollup` figures whenever smaps and the rollup were
//! read from an unchanged process. Per-mapping PSS in `smaps` is rounded down to the kB, while
//! the rollup sums PSS at full precision; the difference (< 1 kB per shared mapping) is handed
//! to the categories whose shared mappings produced it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::attribute::{classify, Category, Neighbour, ProcessTraits};
use crate::proc::roles::{Engine, Role};
use crate::proc::smaps::{add_kb, Counters, Mapping};
use crate::proc::Pid;

pub const SNAPSHOT_SCHEMA: &str = "ramscope.snapshot/1";

/// One category's share of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryUsage {
    pub rss_bytes: u64,
    pub pss_bytes: u64,
    #[serde(default)]
    pub uss_bytes: u64,
    #[serde(default)]
    pub swap_bytes: u64,
    #[serde(default)]
    pub swap_pss_bytes: u64,
    /// Mapped (virtual) size.
    #[serde(default)]
    pub size_bytes: u64,
    /// Anonymous pages (RSS) inside these mappings: for file mappings, the copy-on-write pages
    /// a process wrote (a library's relocated data and globals).
    #[serde(default)]
    pub anon_bytes: u64,
    #[serde(default)]
    pub mappings: u64,
}

impl CategoryUsage {
    // Counts from smaps are at most `MAX_KB` (so `* 1024` fits); sums saturate rather than
    // wrap, which only a hostile text can reach.
    fn add_kb(&mut self, c: &Counters) {
        self.rss_bytes = self.rss_bytes.saturating_add(c.rss * 1024);
        self.pss_bytes = self.pss_bytes.saturating_add(c.pss * 1024);
        self.uss_bytes = self.uss_bytes.saturating_add(c.uss() * 1024);
        self.swap_bytes = self.swap_bytes.saturating_add(c.swap * 1024);
        self.swap_pss_bytes = self.swap_pss_bytes.saturating_add(c.swap_pss * 1024);
        self.size_bytes = self.size_bytes.saturating_add(c.size * 1024);
        self.anon_bytes = self.anon_bytes.saturating_add(c.anonymous * 1024);
        self.mappings += 1;
    }

    pub fn add(&mut self, other: &CategoryUsage) {
        self.rss_bytes = self.rss_bytes.saturating_add(other.rss_bytes);
        self.pss_bytes = self.pss_bytes.saturating_add(other.pss_bytes);
        self.uss_bytes = self.uss_bytes.saturating_add(other.uss_bytes);
        self.swap_bytes = self.swap_bytes.saturating_add(other.swap_bytes);
        self.swap_pss_bytes = self.swap_pss_bytes.saturating_add(other.swap_pss_bytes);
        self.size_bytes = self.size_bytes.saturating_add(other.size_bytes);
        self.anon_bytes = self.anon_bytes.saturating_add(other.anon_bytes);
        self.mappings = self.mappings.saturating_add(other.mappings);
    }
}

/// Where a process's totals came from, and whether they agree with its categories.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// `smaps_rollup` when the rollup was read and matched; `smaps` otherwise.
    pub totals_from: String,
    /// PSS the rollup has beyond the sum of the per-mapping (rounded-down) PSS values.
    pub pss_rounding_bytes: u64,
    /// Set when the process changed between reading smaps and the rollup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<String>,
    /// Set when the rollup was not read because the process is large.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_rollup: Option<String>,
}

/// One mapped object's share of a process, for `--by mapping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingUsage {
    /// The path, or a pseudo name (`[heap]`, `[anon]`, `[stack]`).
    pub name: String,
    pub category: Category,
    pub rss_bytes: u64,
    pub pss_bytes: u64,
    pub size_bytes: u64,
    pub mappings: u64,
}

/// Everything measured about one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSnapshot {
    pub pid: Pid,
    pub ppid: Pid,
    pub role: Role,
    pub engine: Engine,
    pub name: String,
    pub cmdline: String,
    pub rss_bytes: u64,
    pub pss_bytes: u64,
    pub uss_bytes: u64,
    pub swap_bytes: u64,
    #[serde(default)]
    pub swap_pss_bytes: u64,
    #[serde(default)]
    pub pss_anon_bytes: u64,
    #[serde(default)]
    pub pss_file_bytes: u64,
    #[serde(default)]
    pub pss_shmem_bytes: u64,
    /// The kernel's own RSS high-water mark (`VmHWM`).
    #[serde(default)]
    pub peak_rss_bytes: u64,
    #[serde(default)]
    pub threads: u32,
    /// Maps a GPU driver (its shared anonymous memory is reported as `pinned`).
    #[serde(default)]
    pub uses_gpu: bool,
    /// `RssAnon`, `RssFile` and `RssShmem` from `status`: the cheap split, fresh every tick
    /// of a recording.
    #[serde(default)]
    pub rss_anon_bytes: u64,
    #[serde(default)]
    pub rss_file_bytes: u64,
    #[serde(default)]
    pub rss_shmem_bytes: u64,
    /// Empty in a recording's samples that did not read `smaps` for this process.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub categories: BTreeMap<Category, CategoryUsage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mappings: Vec<MappingUsage>,
    #[serde(default)]
    pub reconciliation: Reconciliation,
    /// In a recording: the file this entry was read from at this sample. `status` entries
    /// have fresh RSS and carry PSS/USS/swap from the process's last `smaps_rollup` or
    /// `smaps` read; only `smaps` entries have categories. Absent in a plain snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<ReadTier>,
}

/// How deep a sample looked at a process, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadTier {
    /// `/proc/<pid>/status`: RSS and its anon/file/shmem split, microseconds.
    Status,
    /// `/proc/<pid>/smaps_rollup`: exact PSS/USS/swap totals, a page-table walk. Written
    /// `smaps_rollup`, as the file is named; older recordings say `rollup`.
    #[serde(rename = "smaps_rollup", alias = "rollup")]
    Rollup,
    /// `/proc/<pid>/smaps`: every mapping, hence categories; the dearest read.
    Smaps,
}

impl ReadTier {
    pub fn name(self) -> &'static str {
        match self {
            ReadTier::Status => "status",
            ReadTier::Rollup => "smaps_rollup",
            ReadTier::Smaps => "smaps",
        }
    }
}

impl ProcessSnapshot {
    pub fn category(&self, c: Category) -> CategoryUsage {
        self.categories.get(&c).copied().unwrap_or_default()
    }
}

/// A category's tree total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotalUsage {
    pub pss_bytes: u64,
    #[serde(default)]
    pub uss_bytes: u64,
    #[serde(default)]
    pub rss_sum_bytes: u64,
    #[serde(default)]
    pub swap_pss_bytes: u64,
    /// Mapped size summed over the processes (a segment two processes map counts twice).
    #[serde(default)]
    pub size_sum_bytes: u64,
}

/// The tree's totals: PSS adds up without double counting, the RSS sum is shown beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeTotal {
    pub pss_bytes: u64,
    pub uss_bytes: u64,
    pub rss_sum_bytes: u64,
    #[serde(default)]
    pub swap_bytes: u64,
    #[serde(default)]
    pub swap_pss_bytes: u64,
    pub categories: BTreeMap<Category, TotalUsage>,
}

/// A moment's measurement of a set of processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeSnapshot {
    pub schema: String,
    pub taken_at: String,
    pub processes: Vec<ProcessSnapshot>,
    pub total: TreeTotal,
    /// Processes skipped (exited mid-read) and other remarks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl TreeSnapshot {
    pub fn new(taken_at: String, processes: Vec<ProcessSnapshot>, notes: Vec<String>) -> Self {
        let total = TreeTotal::of(&processes);
        TreeSnapshot {
            schema: SNAPSHOT_SCHEMA.to_string(),
            taken_at,
            processes,
            total,
            notes,
        }
    }
}

impl TreeTotal {
    pub fn of(processes: &[ProcessSnapshot]) -> TreeTotal {
        let mut t = TreeTotal::default();
        for p in processes {
            // Snapshots read back from files may hold any numbers: saturate, never wrap.
            let add = |sum: &mut u64, v: u64| *sum = sum.saturating_add(v);
            add(&mut t.pss_bytes, p.pss_bytes);
            add(&mut t.uss_bytes, p.uss_bytes);
            add(&mut t.rss_sum_bytes, p.rss_bytes);
            add(&mut t.swap_bytes, p.swap_bytes);
            add(&mut t.swap_pss_bytes, p.swap_pss_bytes);
            for (&c, u) in &p.categories {
                let e = t.categories.entry(c).or_default();
                add(&mut e.pss_bytes, u.pss_bytes);
                add(&mut e.uss_bytes, u.uss_bytes);
                add(&mut e.rss_sum_bytes, u.rss_bytes);
                add(&mut e.swap_pss_bytes, u.swap_pss_bytes);
                add(&mut e.size_sum_bytes, u.size_bytes);
            }
        }
        t
    }
}

/// Accumulates one process's mappings into categories. Reuse one per thread: it keeps its
/// buffers between processes.
#[derive(Debug, Default)]
pub struct Attributor {
    traits: ProcessTraits,
    by_category: [CategoryUsage; Category::ALL.len()],
    /// Mappings with shared pages per category: where PSS rounding comes from.
    shared_mappings: [u64; Category::ALL.len()],
    sum: Counters,
    mappings: Option<BTreeMap<(Category, String), MappingUsage>>,
}

/// The result of attributing one smaps text.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    pub categories: BTreeMap<Category, CategoryUsage>,
    /// The plain sum of every mapping's counters (kB).
    pub sum: Counters,
    pub uses_gpu: bool,
    pub mappings: Vec<MappingUsage>,
    shared_mappings: [u64; Category::ALL.len()],
}

impl Attributor {
    pub fn new(keep_mappings: bool) -> Attributor {
        Attributor {
            mappings: keep_mappings.then(BTreeMap::new),
            ..Default::default()
        }
    }

    /// Classifies every mapping. Takes the whole list because two rules (pinned memory and
    /// code files) depend on what else the process maps.
    pub fn attribute(&mut self, maps: &[Mapping<'_>]) -> Attribution {
        self.traits.clear();
        for m in maps {
            self.traits.observe(m);
        }
        self.traits.finish();
        self.by_category = Default::default();
        self.shared_mappings = [0; Category::ALL.len()];
        self.sum = Counters::default();
        if let Some(m) = self.mappings.as_mut() {
            m.clear();
        }

        let mut previous: Option<Neighbour> = None;
        for m in maps {
            let category = classify(m, previous, &self.traits);
            previous = Some(Neighbour::of(m));
            let i = category.index();
            self.by_category[i].add_kb(&m.counters);
            if m.counters.pss < m.counters.rss {
                self.shared_mappings[i] += 1;
            }
            self.sum.add(&m.counters);
            // smaps does not split PSS by kind per mapping (only the rollup does): shared
            // memory is shmem; elsewhere the anonymous pages (all of an anonymous mapping, the
            // copy-on-write pages of a file mapping) are anon and the rest is file.
            let c = &m.counters;
            if matches!(
                category,
                Category::Pinned | Category::Shm | Category::SharedAnon
            ) {
                self.sum.pss_shmem = add_kb(self.sum.pss_shmem, c.pss);
            } else {
                let anon = c.anonymous.min(c.pss);
                self.sum.pss_anon = add_kb(self.sum.pss_anon, anon);
                self.sum.pss_file = add_kb(self.sum.pss_file, c.pss - anon);
            }
            if let Some(per_mapping) = self.mappings.as_mut() {
                let name = mapping_name(m, category);
                let e = per_mapping
                    .entry((category, name.clone()))
                    .or_insert_with(|| MappingUsage {
                        name,
                        category,
                        rss_bytes: 0,
                        pss_bytes: 0,
                        size_bytes: 0,
                        mappings: 0,
                    });
                e.rss_bytes = e.rss_bytes.saturating_add(m.counters.rss * 1024);
                e.pss_bytes = e.pss_bytes.saturating_add(m.counters.pss * 1024);
                e.size_bytes = e.size_bytes.saturating_add(m.counters.size * 1024);
                e.mappings += 1;
            }
        }

        let categories = Category::ALL
            .iter()
            .filter(|c| self.by_category[c.index()].mappings > 0)
            .map(|&c| (c, self.by_category[c.index()]))
            .collect();
        Attribution {
            categories,
            sum: self.sum,
            uses_gpu: self.traits.has_gpu_driver,
            mappings: self
                .mappings
                .as_ref()
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default(),
            shared_mappings: self.shared_mappings,
        }
    }
}

fn mapping_name(m: &Mapping<'_>, category: Category) -> String {
    if m.path.is_empty() {
        match category {
            Category::Stack => "[thread stacks]".to_string(),
            _ => "[anon]".to_string(),
        }
    } else {
        m.path_lossy().into_owned()
    }
}

impl Attribution {
    /// Brings the categories to the rollup's totals when both were read from an unchanged
    /// process, and says what happened either way.
    pub fn reconcile(&mut self, rollup: Option<&Counters>) -> Reconciliation {
        let Some(rollup) = rollup else {
            return Reconciliation {
                totals_from: "smaps".into(),
                ..Default::default()
            };
        };
        let shared: u64 = self.shared_mappings.iter().sum();
        let rss_same = rollup.rss == self.sum.rss;
        let pss_gap = rollup.pss as i64 - self.sum.pss as i64;
        if !rss_same || pss_gap < 0 || pss_gap as u64 > shared {
            return Reconciliation {
                totals_from: "smaps".into(),
                pss_rounding_bytes: 0,
                skipped_rollup: None,
                mismatch: Some(format!(
                    "the process changed while it was read (smaps Rss {} kB, Pss {} kB; smaps_rollup Rss {} kB, Pss {} kB)",
                    self.sum.rss, self.sum.pss, rollup.rss, rollup.pss
                )),
            };
        }
        let gap_bytes = pss_gap as u64 * 1024;
        distribute(
            &mut self.categories,
            &self.shared_mappings,
            pss_gap as u64,
            |u| &mut u.pss_bytes,
        );
        // SwapPss is rounded per mapping the same way.
        let swap_gap = rollup.swap_pss.saturating_sub(self.sum.swap_pss);
        if swap_gap > 0 {
            distribute(&mut self.categories, &self.shared_mappings, swap_gap, |u| {
                &mut u.swap_pss_bytes
            });
        }
        self.sum.pss = rollup.pss;
        self.sum.swap_pss = self.sum.swap_pss.max(rollup.swap_pss);
        self.sum.pss_anon = rollup.pss_anon;
        self.sum.pss_file = rollup.pss_file;
        self.sum.pss_shmem = rollup.pss_shmem;
        Reconciliation {
            totals_from: "smaps_rollup".into(),
            pss_rounding_bytes: gap_bytes,
            ..Default::default()
        }
    }
}

/// Splits `amount_kb` kB over the categories in proportion to `weights` (largest remainder,
/// in whole kB, so the parts add up exactly). With no weights it all goes to the category with
/// the most PSS.
fn distribute(
    categories: &mut BTreeMap<Category, CategoryUsage>,
    weights: &[u64; Category::ALL.len()],
    amount_kb: u64,
    field: impl Fn(&mut CategoryUsage) -> &mut u64,
) {
    if amount_kb == 0 || categories.is_empty() {
        return;
    }
    let total_weight: u64 = weights.iter().sum();
    if total_weight == 0 {
        if let Some((_, u)) = categories.iter_mut().max_by_key(|(_, u)| u.pss_bytes) {
            *field(u) = field(u).saturating_add(amount_kb * 1024);
        }
        return;
    }
    let mut given = 0u64;
    let mut remainders: Vec<(u64, Category)> = Vec::new();
    for (&c, u) in categories.iter_mut() {
        let w = weights[c.index()];
        if w == 0 {
            continue;
        }
        let exact = amount_kb as u128 * w as u128;
        let share = (exact / total_weight as u128) as u64;
        *field(u) = field(u).saturating_add(share * 1024);
        given += share;
        remainders.push(((exact % total_weight as u128) as u64, c));
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    // Fewer kB are left than categories with a weight, so one pass hands them all out.
    for (_, c) in remainders.iter().take((amount_kb - given) as usize) {
        if let Some(u) = categories.get_mut(c) {
            *field(u) = field(u).saturating_add(1024);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribute_adds_up_exactly() {
        let mut cats = BTreeMap::new();
        cats.insert(Category::CodeCuda, CategoryUsage::default());
        cats.insert(Category::CodePython, CategoryUsage::default());
        cats.insert(Category::Heap, CategoryUsage::default());
        let mut w = [0u64; Category::ALL.len()];
        w[Category::CodeCuda.index()] = 3;
        w[Category::CodePython.index()] = 4;
        distribute(&mut cats, &w, 5, |u| &mut u.pss_bytes);
        let total: u64 = cats.values().map(|u| u.pss_bytes).sum();
        assert_eq!(total, 5 * 1024);
        assert_eq!(cats[&Category::Heap].pss_bytes, 0);
        assert!(cats.values().all(|u| u.pss_bytes % 1024 == 0));
    }

    use crate::proc::smaps::{parse_rollup, SmapsParser};

    const STAGES: [&str; 15] = [
        "00-python-bare",
        "01-import-torch",
        "02-cuda-context",
        "03-pinned-small",
        "04-pinned-300MiB",
        "05-cpu-tensors",
        "06-host-register-64MiB",
        "07-posix-shm-64MiB",
        "08-import-transformers",
        "09-model-built-saved-freed",
        "10-weights-on-cpu",
        "11-weights-on-gpu",
        "12-after-generate",
        "13-child-cuda",
        "14-parent-with-child",
    ];

    fn fixture(stage: &str, ext: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/cuda-torch-h100/{stage}.{ext}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Attributes one captured stage: (attribution after reconciliation, rollup, reconciliation).
    fn stage(stage: &str) -> (Attribution, Counters, Reconciliation) {
        let smaps = fixture(stage, "smaps");
        let rollup = parse_rollup(&fixture(stage, "smaps_rollup")).unwrap();
        let maps: Vec<_> = SmapsParser::new(&smaps).collect::<Result<_, _>>().unwrap();
        let mut a = Attributor::new(true).attribute(&maps);
        let r = a.reconcile(Some(&rollup));
        (a, rollup, r)
    }

    fn total(a: &Attribution, f: impl Fn(&CategoryUsage) -> u64) -> u64 {
        a.categories.values().map(f).sum()
    }

    #[test]
    fn every_stage_adds_up_to_its_rollup() {
        for name in STAGES {
            let (a, rollup, r) = stage(name);
            // Categories always add up exactly to the process totals.
            assert_eq!(total(&a, |u| u.rss_bytes), a.sum.rss * 1024, "{name} rss");
            assert_eq!(total(&a, |u| u.pss_bytes), a.sum.pss * 1024, "{name} pss");
            assert_eq!(total(&a, |u| u.uss_bytes), a.sum.uss() * 1024, "{name} uss");
            assert_eq!(
                total(&a, |u| u.swap_bytes),
                a.sum.swap * 1024,
                "{name} swap"
            );
            if r.mismatch.is_none() {
                // Read from an unchanged process: to the kB of the kernel's rollup.
                assert_eq!(a.sum.rss, rollup.rss, "{name}");
                assert_eq!(a.sum.pss, rollup.pss, "{name}");
                assert_eq!(r.totals_from, "smaps_rollup");
            } else {
                // Some stages were captured while the process still moved (smaps and the
                // rollup disagree on Rss): reported as such, and within 0.1%.
                assert_ne!(a.sum.rss, rollup.rss, "{name}: a mismatch must be real");
                let off_kb = a.sum.rss.abs_diff(rollup.rss);
                assert!(
                    off_kb * 1000 < rollup.rss || off_kb < 1024,
                    "{name}: off by {off_kb} kB"
                );
            }
            let other = a
                .categories
                .get(&Category::Other)
                .map_or(0, |u| u.pss_bytes);
            assert_eq!(other, 0, "{name}: unmatched mappings");
        }
    }

    #[test]
    fn pss_split_from_smaps_alone_is_close_to_the_rollups() {
        for name in &STAGES[9..] {
            let smaps = fixture(name, "smaps");
            let rollup = parse_rollup(&fixture(name, "smaps_rollup")).unwrap();
            let maps: Vec<_> = SmapsParser::new(&smaps).collect::<Result<_, _>>().unwrap();
            let mut a = Attributor::new(false).attribute(&maps);
            let r = a.reconcile(None);
            assert_eq!(r.totals_from, "smaps");
            for (got, want, what) in [
                (a.sum.pss_anon, rollup.pss_anon, "anon"),
                (a.sum.pss_file, rollup.pss_file, "file"),
                (a.sum.pss_shmem, rollup.pss_shmem, "shmem"),
            ] {
                let off = got.abs_diff(want);
                assert!(
                    off * 200 < want.max(1) || off < 1024,
                    "{name} {what}: {got} vs {want} kB"
                );
            }
        }
    }

    #[test]
    fn stages_without_movement_reconcile_exactly() {
        // Stages 09..14 were captured from a settled process: all must reconcile.
        for name in &STAGES[9..] {
            let (_, _, r) = stage(name);
            assert!(r.mismatch.is_none(), "{name}: {r:?}");
            assert!(r.pss_rounding_bytes < 64 * 1024, "{name}: {r:?}");
        }
    }

    fn mapping<'a>(a: &'a Attribution, needle: &str) -> &'a MappingUsage {
        a.mappings
            .iter()
            .filter(|m| m.name.contains(needle))
            .max_by_key(|m| m.size_bytes)
            .unwrap_or_else(|| panic!("no mapping named like {needle}"))
    }

    #[test]
    fn pinned_buffer_is_pinned() {
        let (a, _, _) = stage("04-pinned-300MiB");
        let zero = mapping(&a, "/dev/zero");
        assert_eq!(zero.category, Category::Pinned);
        // A 300 MiB pinned tensor becomes a 512 MiB power-of-two block, plus the small ones.
        assert!(zero.size_bytes >= 512 << 20, "{zero:?}");
        let pinned = a.categories[&Category::Pinned];
        assert!(pinned.rss_bytes >= 512 << 20);
        assert!(a.uses_gpu);
        // Before any CUDA context, the same signature would be plain shared memory.
        let (bare, _, _) = stage("00-python-bare");
        assert!(!bare.uses_gpu);
        assert!(!bare.categories.contains_key(&Category::Pinned));
    }

    #[test]
    fn driver_and_libraries() {
        let (a, _, _) = stage("12-after-generate");
        assert_eq!(mapping(&a, "/dev/nvidiactl").category, Category::GpuDriver);
        assert_eq!(mapping(&a, "libcublasLt").category, Category::CodeCuda);
        assert_eq!(mapping(&a, "libcuda.so").category, Category::CodeCuda);
        assert_eq!(
            mapping(&a, "libtorch_cuda.so").category,
            Category::CodeTorch
        );
        assert_eq!(mapping(&a, "libtriton.so").category, Category::CodeTorch);
        assert_eq!(
            mapping(&a, "/usr/bin/python3.12").category,
            Category::CodePython
        );
        assert_eq!(mapping(&a, "libc.so.6").category, Category::CodeOther);
        assert_eq!(mapping(&a, "[heap]").category, Category::Heap);
        assert_eq!(mapping(&a, "[stack]").category, Category::Stack);
        assert_eq!(mapping(&a, "locale-archive").category, Category::FileOther);
        // torch starts threads: their stacks are found by their guard pages.
        assert!(a.categories[&Category::Stack].mappings > 10);
    }

    #[test]
    fn weights_and_shm() {
        let (a, _, _) = stage("10-weights-on-cpu");
        let w = mapping(&a, "model.safetensors");
        assert_eq!(w.category, Category::Weights);
        assert!(w.size_bytes > 500 << 20);
        let (a, _, _) = stage("07-posix-shm-64MiB");
        let shm = mapping(&a, "/dev/shm/ramscope_probe");
        assert_eq!(shm.category, Category::Shm);
        assert_eq!(shm.rss_bytes, 64 << 20);
    }

    #[test]
    fn import_torch_is_mostly_heap_and_code() {
        // docs/categories.md §9: import torch ≈ 277 MiB anon + 213 MiB file. About 20 MiB of the
        // anonymous pages are libraries' copied-on-write data, which stays with the code.
        let (a, _, _) = stage("01-import-torch");
        let heap = a.categories[&Category::Heap].pss_bytes;
        let code: u64 = [
            Category::CodeTorch,
            Category::CodeCuda,
            Category::CodePython,
            Category::CodeOther,
        ]
        .iter()
        .filter_map(|c| a.categories.get(c))
        .map(|u| u.pss_bytes)
        .sum();
        assert!((250 << 20..280 << 20).contains(&heap), "heap {heap}");
        assert!((215 << 20..245 << 20).contains(&code), "code {code}");
    }
}
