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
use crate::proc::smaps::{Counters, Mapping};
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
    #[serde(default)]
    pub mappings: u64,
}

impl CategoryUsage {
    fn add_kb(&mut self, c: &Counters) {
        self.rss_bytes += c.rss * 1024;
        self.pss_bytes += c.pss * 1024;
        self.uss_bytes += c.uss() * 1024;
        self.swap_bytes += c.swap * 1024;
        self.swap_pss_bytes += c.swap_pss * 1024;
        self.size_bytes += c.size * 1024;
        self.mappings += 1;
    }

    pub fn add(&mut self, other: &CategoryUsage) {
        self.rss_bytes += other.rss_bytes;
        self.pss_bytes += other.pss_bytes;
        self.uss_bytes += other.uss_bytes;
        self.swap_bytes += other.swap_bytes;
        self.swap_pss_bytes += other.swap_pss_bytes;
        self.size_bytes += other.size_bytes;
        self.mappings += other.mappings;
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
    pub categories: BTreeMap<Category, CategoryUsage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mappings: Vec<MappingUsage>,
    #[serde(default)]
    pub reconciliation: Reconciliation,
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
            t.pss_bytes += p.pss_bytes;
            t.uss_bytes += p.uss_bytes;
            t.rss_sum_bytes += p.rss_bytes;
            t.swap_bytes += p.swap_bytes;
            t.swap_pss_bytes += p.swap_pss_bytes;
            for (&c, u) in &p.categories {
                let e = t.categories.entry(c).or_default();
                e.pss_bytes += u.pss_bytes;
                e.uss_bytes += u.uss_bytes;
                e.rss_sum_bytes += u.rss_bytes;
                e.swap_pss_bytes += u.swap_pss_bytes;
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
                e.rss_bytes += m.counters.rss * 1024;
                e.pss_bytes += m.counters.pss * 1024;
                e.size_bytes += m.counters.size * 1024;
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
                pss_rounding_bytes: 0,
                mismatch: None,
            };
        };
        let shared: u64 = self.shared_mappings.iter().sum();
        let rss_same = rollup.rss == self.sum.rss;
        let pss_gap = rollup.pss as i64 - self.sum.pss as i64;
        if !rss_same || pss_gap < 0 || pss_gap as u64 > shared {
            return Reconciliation {
                totals_from: "smaps".into(),
                pss_rounding_bytes: 0,
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
            mismatch: None,
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
            *field(u) += amount_kb * 1024;
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
        *field(u) += share * 1024;
        given += share;
        remainders.push(((exact % total_weight as u128) as u64, c));
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    // Fewer kB are left than categories with a weight, so one pass hands them all out.
    for (_, c) in remainders.iter().take((amount_kb - given) as usize) {
        if let Some(u) = categories.get_mut(c) {
            *field(u) += 1024;
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
}
