//! Measuring live processes: read → attribute → snapshot.

use std::collections::BTreeSet;

use crate::error::ProcError;
use crate::proc::roles::{identify, Identity};
use crate::proc::smaps::{parse_rollup, Counters, SmapsParser};
use crate::proc::status::{kind_from_stat, Kind, Status};
use crate::proc::tree::ProcessTable;
use crate::proc::{Pid, ProcFs};
use crate::snapshot::{Attributor, ProcessSnapshot, Reconciliation, TreeSnapshot};

/// What to read and how far to follow the tree.
#[derive(Debug, Clone)]
pub struct MeasureOptions {
    /// Follow children (and children started while measuring).
    pub tree: bool,
    /// Keep a per-mapping breakdown (`--by mapping`).
    pub keep_mappings: bool,
    /// Read `smaps_rollup` for exact PSS totals where that is cheap (see
    /// [`Measurer::set_rollup_rss_limit`]): it costs a second page-table walk.
    pub use_rollup: bool,
}

impl Default for MeasureOptions {
    fn default() -> Self {
        MeasureOptions {
            tree: true,
            keep_mappings: false,
            use_rollup: true,
        }
    }
}

/// Reads processes, keeping its buffers between them.
pub struct Measurer {
    fs: ProcFs,
    options: MeasureOptions,
    smaps: Vec<u8>,
    rollup: Vec<u8>,
    attributor: Attributor,
    rollup_rss_limit: Option<u64>,
}

/// Above this RSS a process's rollup is skipped by default: walking its page tables a second
/// time costs about as much as smaps itself (~11 ms per GiB of 4 KiB pages, more for sparse
/// shared memory), while what it adds is under 1 kB of PSS per shared mapping (~0.1% of a
/// Python/torch process).
pub const ROLLUP_RSS_LIMIT: u64 = 256 << 20;

/// How many times to re-read a process whose smaps and rollup disagree (it was changing).
const CONSISTENT_READ_TRIES: usize = 3;

/// How many times to re-read a live process whose address space went away mid-read (an
/// execve; a shell script that execs its interpreter does several in a row).
const LOST_READ_TRIES: usize = 5;

impl Measurer {
    pub fn new(fs: ProcFs, options: MeasureOptions) -> Measurer {
        let attributor = Attributor::new(options.keep_mappings);
        Measurer {
            fs,
            options,
            smaps: Vec::with_capacity(1 << 20),
            rollup: Vec::with_capacity(1024),
            attributor,
            rollup_rss_limit: Some(ROLLUP_RSS_LIMIT),
        }
    }

    /// Reads `smaps_rollup` only for processes whose RSS is at most `limit` (`None`: always).
    pub fn set_rollup_rss_limit(&mut self, limit: Option<u64>) {
        self.rollup_rss_limit = limit;
    }

    pub fn fs(&self) -> &ProcFs {
        &self.fs
    }

    /// Measures one process.
    pub fn process(&mut self, pid: Pid) -> Result<ProcessSnapshot, ProcError> {
        let status = Status::parse(&self.fs.read_string(pid, "status")?);
        if status.vm_size == 0 {
            // No address space: a kernel thread, or a process exiting (a zombie).
            self.no_memory_why(pid)?;
            return Err(ProcError::Vanished { pid });
        }
        let argv = self.fs.cmdline(pid)?;
        let comm = self.fs.comm(pid)?;
        let Identity { role, engine } = identify(&comm, &argv);

        let use_rollup = self.options.use_rollup
            && self
                .rollup_rss_limit
                .map_or(true, |limit| status.vm_rss <= limit);
        let mut attribution = None;
        let mut reconciliation = Reconciliation::default();
        let mut tries = 0;
        let mut lost_reads = 0;
        while tries < CONSISTENT_READ_TRIES {
            // The rollup walks the page tables again; on a second core that walk overlaps
            // with generating the (much longer) smaps text, so exact totals cost little time.
            let (fs, rollup_buf, smaps_buf) = (&self.fs, &mut self.rollup, &mut self.smaps);
            let (rollup, smaps) = if use_rollup {
                std::thread::scope(|scope| {
                    let rollup = scope.spawn(|| read_rollup(fs, pid, rollup_buf));
                    let smaps = fs.read_into(pid, "smaps", smaps_buf);
                    let rollup = rollup.join().unwrap_or(Err(ProcError::Vanished { pid }));
                    (rollup, smaps)
                })
            } else {
                (Ok(None), fs.read_into(pid, "smaps", smaps_buf))
            };
            let rollup = match smaps.and(rollup) {
                Ok(rollup) if !self.smaps.is_empty() => rollup,
                // Nothing mapped, or the rollup found the address space gone. A process that
                // exited says so in `stat`; one that is still there was caught in execve: a
                // file opened before it and read after sees the old address space released.
                // Read it again (the new one is there a moment later).
                Ok(_) | Err(ProcError::Vanished { .. }) => {
                    self.no_memory_why(pid)?;
                    lost_reads += 1;
                    if lost_reads > LOST_READ_TRIES {
                        return Err(ProcError::Vanished { pid });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
                Err(e) => return Err(e),
            };
            tries += 1;
            let maps = SmapsParser::new(&self.smaps)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| ProcError::Parse {
                    pid,
                    path: self.fs.pid_path(pid, "smaps"),
                    source,
                })?;
            let mut a = self.attributor.attribute(&maps);
            reconciliation = a.reconcile(rollup.as_ref());
            attribution = Some(a);
            if reconciliation.mismatch.is_none() {
                break;
            }
        }
        let Some(a) = attribution else {
            return Err(ProcError::Vanished { pid });
        };
        if self.options.use_rollup && !use_rollup {
            reconciliation.skipped_rollup = Some(format!(
                "smaps_rollup not read for {} of RSS (a second page walk); PSS is rounded down per mapping, by under 1 kB per shared mapping",
                crate::units::bytes(status.vm_rss)
            ));
        }
        let sum = a.sum;
        Ok(ProcessSnapshot {
            pid,
            ppid: status.ppid,
            role,
            engine,
            name: if status.name.is_empty() {
                comm
            } else {
                status.name
            },
            cmdline: argv.join(" "),
            rss_bytes: sum.rss * 1024,
            pss_bytes: sum.pss * 1024,
            uss_bytes: sum.uss() * 1024,
            swap_bytes: sum.swap * 1024,
            swap_pss_bytes: sum.swap_pss * 1024,
            pss_anon_bytes: sum.pss_anon * 1024,
            pss_file_bytes: sum.pss_file * 1024,
            pss_shmem_bytes: sum.pss_shmem * 1024,
            peak_rss_bytes: status.vm_hwm,
            threads: status.threads,
            uses_gpu: a.uses_gpu,
            rss_anon_bytes: status.rss_anon,
            rss_file_bytes: status.rss_file,
            rss_shmem_bytes: status.rss_shmem,
            categories: a.categories,
            mappings: a.mappings,
            reconciliation,
            read: None,
        })
    }

    /// Why `pid` has no memory to read: an error when it is a kernel thread or has exited,
    /// `Ok` when it is a live process (caught between address spaces).
    fn no_memory_why(&self, pid: Pid) -> Result<(), ProcError> {
        let stat = self.fs.read_string(pid, "stat")?;
        match kind_from_stat(&stat) {
            Some(Kind::KernelThread) => Err(ProcError::KernelThread { pid }),
            Some(Kind::Exited) | None => Err(ProcError::Vanished { pid }),
            Some(Kind::Live) => Ok(()),
        }
    }

    /// Measures `roots` (and, with `tree`, every descendant, including processes that start
    /// while the tree is read). A root that does not exist is an error; a descendant that
    /// exits mid-read is skipped with a note.
    pub fn tree(&mut self, roots: &[Pid]) -> Result<TreeSnapshot, ProcError> {
        for &root in roots {
            if !self.fs.exists(root) {
                return Err(ProcError::NoSuchProcess { pid: root });
            }
        }
        self.walk(roots, true)
    }

    /// Like [`Measurer::tree`] for roots that were discovered rather than named: a root that
    /// has exited since is left out with a note.
    pub fn found_trees(&mut self, roots: &[Pid]) -> Result<TreeSnapshot, ProcError> {
        self.walk(roots, false)
    }

    fn walk(&mut self, roots: &[Pid], roots_must_exist: bool) -> Result<TreeSnapshot, ProcError> {
        let taken_at = now_rfc3339();
        let mut processes = Vec::new();
        let mut notes = Vec::new();
        let mut done: BTreeSet<Pid> = BTreeSet::new();
        let mut skipped = 0usize;
        let root_set: BTreeSet<Pid> = roots.iter().copied().collect();

        let mut pending: Vec<Pid> = roots.to_vec();
        // New children can keep appearing; a bounded number of rounds keeps a fork bomb from
        // holding us forever.
        for _round in 0..16 {
            if self.options.tree {
                let table = ProcessTable::scan(&self.fs).map_err(|e| ProcError::Io {
                    pid: 0,
                    path: self.fs.root().to_path_buf(),
                    source: e,
                })?;
                for &root in roots {
                    pending.extend(table.descendants(root));
                }
            }
            pending.retain(|p| !done.contains(p));
            pending.sort_unstable();
            pending.dedup();
            if pending.is_empty() {
                break;
            }
            for pid in std::mem::take(&mut pending) {
                done.insert(pid);
                match self.process(pid) {
                    Ok(p) => processes.push(p),
                    Err(e) if root_set.contains(&pid) && (roots_must_exist || !e.is_gone()) => {
                        return Err(e)
                    }
                    Err(e) if e.is_gone() => skipped += 1,
                    Err(e) => notes.push(format!("skipped PID {pid}: {e}")),
                }
            }
            if !self.options.tree {
                break;
            }
        }
        if skipped > 0 {
            notes.push(if skipped == 1 {
                "1 process exited while the tree was read and is not counted".to_string()
            } else {
                format!("{skipped} processes exited while the tree was read and are not counted")
            });
        }
        order_as_tree(&mut processes, roots);
        Ok(TreeSnapshot::new(taken_at, processes, notes))
    }

    /// Every inference-server tree on the machine: processes that head one (an API server of
    /// a known engine) and are not inside another such tree.
    pub fn find_servers(&self) -> Result<Vec<Pid>, ProcError> {
        let table = ProcessTable::scan(&self.fs).map_err(|e| ProcError::Io {
            pid: 0,
            path: self.fs.root().to_path_buf(),
            source: e,
        })?;
        let mut heads = Vec::new();
        for pid in table.pids() {
            let (Ok(argv), Ok(comm)) = (self.fs.cmdline(pid), self.fs.comm(pid)) else {
                continue;
            };
            let id = identify(&comm, &argv);
            // An orphaned engine core (its API server gone) still heads what is left.
            let orphan_engine = id.engine != crate::proc::roles::Engine::Unknown
                && matches!(id.role, crate::proc::roles::Role::EngineCore)
                && table.parent(pid) == Some(1);
            if id.is_server_root() || orphan_engine {
                heads.push(pid);
            }
        }
        let nested: BTreeSet<Pid> = heads
            .iter()
            .copied()
            .filter(|&p| heads.iter().any(|&h| h != p && table.is_within(p, h)))
            .collect();
        heads.retain(|p| !nested.contains(p));
        Ok(heads)
    }
}

/// The rollup, or `None` on kernels older than 4.14 that lack it (then totals come from smaps
/// itself).
fn read_rollup(fs: &ProcFs, pid: Pid, buf: &mut Vec<u8>) -> Result<Option<Counters>, ProcError> {
    match fs.read_into(pid, "smaps_rollup", buf) {
        Ok(()) if buf.is_empty() => Err(ProcError::Vanished { pid }),
        Ok(()) => parse_rollup(buf)
            .map(Some)
            .map_err(|source| ProcError::Parse {
                pid,
                path: fs.pid_path(pid, "smaps_rollup"),
                source,
            }),
        Err(ProcError::Unsupported { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Parents before children, siblings by PID, roots in the order given.
fn order_as_tree(processes: &mut [ProcessSnapshot], roots: &[Pid]) {
    let mut table = ProcessTable::default();
    for p in processes.iter() {
        table.insert(p.pid, p.ppid);
    }
    // Rank of each PID in walk order (first walk wins when trees overlap).
    let mut rank: std::collections::BTreeMap<Pid, usize> = std::collections::BTreeMap::new();
    for &root in roots {
        for pid in table.descendants(root) {
            let next = rank.len();
            rank.entry(pid).or_insert(next);
        }
    }
    processes.sort_by_key(|p| rank.get(&p.pid).copied().unwrap_or(usize::MAX));
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}
