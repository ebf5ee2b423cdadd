//! `diff`: two snapshots or recordings (say, before and after a flag change) compared per
//! process role and category. Processes are matched by role, not PID: a restart gives every
//! process a new PID but the same job.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::attribute::Category;
use crate::proc::roles::Role;
use crate::proc::Pid;
use crate::record::format::Input;
use crate::snapshot::ProcessSnapshot;
use crate::units::{bytes, signed_bytes};

use super::{num, percent, table, Cell};

pub const DIFF_SCHEMA: &str = "ramscope.diff/1";

/// Which moment of a recording stands for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Moment {
    /// Each process's last `smaps` read.
    Last,
    /// Each process's per-category peak (and its peak PSS total).
    Peak,
}

/// PSS and RSS of one role (all its processes) or one of its categories.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub pss_bytes: u64,
    pub rss_bytes: u64,
}

impl Usage {
    fn add(&mut self, pss: u64, rss: u64) {
        self.pss_bytes += pss;
        self.rss_bytes += rss;
    }
}

/// One side, folded by role.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Side {
    pub roles: BTreeMap<Role, RoleUsage>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleUsage {
    pub processes: usize,
    pub total: Usage,
    pub categories: BTreeMap<Category, Usage>,
}

impl Side {
    pub fn of(input: &Input, at: Moment) -> Side {
        let mut side = Side::default();
        match input {
            Input::Snapshot(s) => {
                for p in &s.processes {
                    side.add_process(p);
                }
            }
            Input::Recording(r) => {
                // Per PID: the chosen moment of its categorized entries.
                let mut chosen: BTreeMap<Pid, ProcessSnapshot> = BTreeMap::new();
                for s in &r.samples {
                    for p in s
                        .snapshot
                        .processes
                        .iter()
                        .filter(|p| !p.categories.is_empty())
                    {
                        match (at, chosen.get_mut(&p.pid)) {
                            (Moment::Last, _) | (Moment::Peak, None) => {
                                chosen.insert(p.pid, p.clone());
                            }
                            (Moment::Peak, Some(best)) => {
                                best.pss_bytes = best.pss_bytes.max(p.pss_bytes);
                                best.rss_bytes = best.rss_bytes.max(p.rss_bytes);
                                for (c, u) in &p.categories {
                                    let e = best.categories.entry(*c).or_default();
                                    e.pss_bytes = e.pss_bytes.max(u.pss_bytes);
                                    e.rss_bytes = e.rss_bytes.max(u.rss_bytes);
                                }
                            }
                        }
                    }
                }
                for p in chosen.values() {
                    side.add_process(p);
                }
            }
        }
        side
    }

    fn add_process(&mut self, p: &ProcessSnapshot) {
        let r = self.roles.entry(p.role).or_default();
        r.processes += 1;
        r.total.add(p.pss_bytes, p.rss_bytes);
        for (c, u) in &p.categories {
            r.categories
                .entry(*c)
                .or_default()
                .add(u.pss_bytes, u.rss_bytes);
        }
    }
}

/// One row of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// `None`: every category of the role (its total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    pub a: Usage,
    pub b: Usage,
    pub pss_delta_bytes: i64,
    pub rss_delta_bytes: i64,
}

impl Delta {
    fn new(category: Option<Category>, a: Usage, b: Usage) -> Delta {
        Delta {
            category,
            a,
            b,
            pss_delta_bytes: b.pss_bytes as i64 - a.pss_bytes as i64,
            rss_delta_bytes: b.rss_bytes as i64 - a.rss_bytes as i64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleDiff {
    pub role: Role,
    pub a_processes: usize,
    pub b_processes: usize,
    pub total: Delta,
    pub categories: Vec<Delta>,
}

/// The `ramscope.diff/1` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    pub schema: String,
    pub a: String,
    pub b: String,
    pub at: Moment,
    pub roles: Vec<RoleDiff>,
    pub total: Delta,
    pub categories: Vec<Delta>,
}

pub fn diff(a_name: &str, a: &Side, b_name: &str, b: &Side, at: Moment) -> Diff {
    let empty = RoleUsage::default();
    let mut roles: Vec<Role> = a.roles.keys().chain(b.roles.keys()).copied().collect();
    roles.sort();
    roles.dedup();
    let mut tree_a: BTreeMap<Category, Usage> = BTreeMap::new();
    let mut tree_b: BTreeMap<Category, Usage> = BTreeMap::new();
    let (mut total_a, mut total_b) = (Usage::default(), Usage::default());
    let mut out = Vec::new();
    for role in roles {
        let ra = a.roles.get(&role).unwrap_or(&empty);
        let rb = b.roles.get(&role).unwrap_or(&empty);
        total_a.add(ra.total.pss_bytes, ra.total.rss_bytes);
        total_b.add(rb.total.pss_bytes, rb.total.rss_bytes);
        let mut cats = Vec::new();
        for c in Category::ALL {
            let (ua, ub) = (
                ra.categories.get(&c).copied(),
                rb.categories.get(&c).copied(),
            );
            if ua.is_none() && ub.is_none() {
                continue;
            }
            let (ua, ub) = (ua.unwrap_or_default(), ub.unwrap_or_default());
            tree_a.entry(c).or_default().add(ua.pss_bytes, ua.rss_bytes);
            tree_b.entry(c).or_default().add(ub.pss_bytes, ub.rss_bytes);
            cats.push(Delta::new(Some(c), ua, ub));
        }
        cats.sort_by_key(|d| std::cmp::Reverse(d.pss_delta_bytes.unsigned_abs()));
        out.push(RoleDiff {
            role,
            a_processes: ra.processes,
            b_processes: rb.processes,
            total: Delta::new(None, ra.total, rb.total),
            categories: cats,
        });
    }
    let mut categories: Vec<Delta> = Category::ALL
        .iter()
        .filter(|c| tree_a.contains_key(c) || tree_b.contains_key(c))
        .map(|&c| {
            Delta::new(
                Some(c),
                tree_a.get(&c).copied().unwrap_or_default(),
                tree_b.get(&c).copied().unwrap_or_default(),
            )
        })
        .collect();
    categories.sort_by_key(|d| std::cmp::Reverse(d.pss_delta_bytes.unsigned_abs()));
    Diff {
        schema: DIFF_SCHEMA.into(),
        a: a_name.into(),
        b: b_name.into(),
        at,
        roles: out,
        total: Delta::new(None, total_a, total_b),
        categories,
    }
}

/// Rows smaller than this on both sides and in their change are left out of the table.
const MIN_ROW: u64 = 1 << 20;

/// The report, with every untrusted string (titles, command lines, config values) escaped.
pub fn render(d: &Diff) -> String {
    crate::text::for_terminal(render_raw(d))
}

fn render_raw(d: &Diff) -> String {
    let mut t = table(&["role", "category", "A PSS", "B PSS", "change", "", "B RSS"]);
    t.text_column(0).optional_column(5).optional_column(6);
    let mut push = |role: String, what: String, x: &Delta| {
        t.add_row(vec![
            Cell::new(role),
            Cell::new(what),
            num(bytes(x.a.pss_bytes)),
            num(bytes(x.b.pss_bytes)),
            num(signed_bytes(x.pss_delta_bytes)),
            num(if x.a.pss_bytes == 0 {
                "new".to_string()
            } else {
                let pct = percent(x.pss_delta_bytes.unsigned_abs(), x.a.pss_bytes);
                format!("{}{pct}", if x.pss_delta_bytes < 0 { "-" } else { "+" })
            }),
            num(bytes(x.b.rss_bytes)),
        ]);
    };
    for r in &d.roles {
        push(
            format!("{} ({}→{})", r.role.name(), r.a_processes, r.b_processes),
            "all".into(),
            &r.total,
        );
        for c in r.categories.iter().filter(|c| big(c)) {
            push(String::new(), c.category.map_or("", |c| c.name()).into(), c);
        }
    }
    push("whole tree".into(), "all".into(), &d.total);
    for c in d.categories.iter().filter(|c| big(c)) {
        push(String::new(), c.category.map_or("", |c| c.name()).into(), c);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A = {}\nB = {}\n(recordings compared at each process's {} smaps read; processes matched by role)",
        d.a,
        d.b,
        match d.at {
            Moment::Last => "last",
            Moment::Peak => "peak per category across",
        }
    );
    let _ = writeln!(out, "{t}");
    out
}

fn big(d: &Delta) -> bool {
    d.a.pss_bytes >= MIN_ROW
        || d.b.pss_bytes >= MIN_ROW
        || d.pss_delta_bytes.unsigned_abs() >= MIN_ROW
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{CategoryUsage, TreeSnapshot};

    fn proc(pid: Pid, role: Role, heap_mib: u64) -> ProcessSnapshot {
        let mut categories = BTreeMap::new();
        categories.insert(
            Category::Heap,
            CategoryUsage {
                rss_bytes: heap_mib << 20,
                pss_bytes: heap_mib << 20,
                ..Default::default()
            },
        );
        ProcessSnapshot {
            pid,
            ppid: 1,
            role,
            engine: crate::proc::roles::Engine::Vllm,
            name: "x".into(),
            cmdline: "x".into(),
            rss_bytes: heap_mib << 20,
            pss_bytes: heap_mib << 20,
            uss_bytes: 0,
            swap_bytes: 0,
            swap_pss_bytes: 0,
            pss_anon_bytes: 0,
            pss_file_bytes: 0,
            pss_shmem_bytes: 0,
            peak_rss_bytes: 0,
            threads: 1,
            uses_gpu: false,
            rss_anon_bytes: 0,
            rss_file_bytes: 0,
            rss_shmem_bytes: 0,
            categories,
            mappings: vec![],
            reconciliation: Default::default(),
            read: None,
        }
    }

    #[test]
    fn matches_by_role() {
        let a = Input::Snapshot(Box::new(TreeSnapshot::new(
            "t".into(),
            vec![proc(10, Role::ApiServer, 100), proc(11, Role::Worker, 500)],
            vec![],
        )));
        let b = Input::Snapshot(Box::new(TreeSnapshot::new(
            "t".into(),
            vec![
                proc(20, Role::ApiServer, 100),
                proc(21, Role::Worker, 300),
                proc(22, Role::Worker, 300),
            ],
            vec![],
        )));
        let d = diff(
            "a",
            &Side::of(&a, Moment::Last),
            "b",
            &Side::of(&b, Moment::Last),
            Moment::Last,
        );
        let w = d.roles.iter().find(|r| r.role == Role::Worker).unwrap();
        assert_eq!((w.a_processes, w.b_processes), (1, 2));
        assert_eq!(w.total.pss_delta_bytes, 100 << 20);
        assert_eq!(d.total.pss_delta_bytes, 100 << 20);
        assert!(render(&d).contains("+100 MiB"));
    }
}
