//! The tiered sampler: `status` for every process every tick (microseconds; RSS and peaks),
//! `smaps_rollup` less often (exact PSS/USS, a page-table walk), full `smaps` for the category
//! split on a slow cadence or when a process's RSS moved. The slower reads back off further
//! when they prove expensive, so the sampler never costs a target more than about 1 % of its
//! time in held mmap locks.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::error::ProcError;
use crate::measure::{now_rfc3339, MeasureOptions, Measurer};
use crate::proc::roles::{identify, Identity};
use crate::proc::smaps::parse_rollup;
use crate::proc::status::{kind_from_stat, start_time_from_stat, Kind, Status};
use crate::proc::tree::ProcessTable;
use crate::proc::{Pid, ProcFs};
use crate::snapshot::{ProcessSnapshot, ReadTier, Reconciliation, TreeSnapshot};

use super::format::{Sample, SampleCost};

/// How often each tier runs.
#[derive(Debug, Clone)]
pub struct SamplerOptions {
    /// At most this often per process: `smaps_rollup`.
    pub rollup_every: Duration,
    /// At most this often per process: full `smaps`, unless RSS moves.
    pub smaps_every: Duration,
    /// RSS moving by more than this fraction since the last `smaps` read triggers one.
    pub smaps_on_move: f64,
    /// …and by at least this many bytes (small processes jitter by whole pages).
    pub smaps_on_move_min_bytes: u64,
    /// A slow tier's period is stretched so its reads take at most this share of wall time.
    pub max_read_share: f64,
    /// At most this often, every process's `stat` is scanned for new members of the tree
    /// (stretched so scans take at most 0.5 % of a core); between scans the known members
    /// are sampled.
    pub scan_every: Duration,
}

impl Default for SamplerOptions {
    fn default() -> Self {
        SamplerOptions {
            rollup_every: Duration::from_secs(1),
            smaps_every: Duration::from_secs(10),
            smaps_on_move: 0.05,
            smaps_on_move_min_bytes: 4 << 20,
            max_read_share: 0.01,
            scan_every: Duration::from_secs(1),
        }
    }
}

/// Which processes to follow.
#[derive(Debug, Clone)]
pub struct Follow {
    pub roots: Vec<Pid>,
    /// Leave the roots themselves out (for `run`, whose root is ramscope itself acting as the
    /// subreaper of the command's tree).
    pub exclude_roots: bool,
}

/// What the sampler remembers about a process between ticks. Costs are CPU time of the
/// reads.
struct Known {
    start_time: u64,
    /// The last entry read from `smaps` or `smaps_rollup` (identity, PSS, categories).
    last: ProcessSnapshot,
    smaps_at: Instant,
    smaps_rss: u64,
    smaps_cost: Duration,
    rollup_at: Instant,
    rollup_cost: Duration,
}

pub struct Sampler {
    fs: ProcFs,
    measurer: Measurer,
    options: SamplerOptions,
    known: BTreeMap<Pid, Known>,
    /// Every process ever followed: one that outlives its parent stays followed.
    followed: BTreeSet<Pid>,
    /// The tree's members as of the last scan, less those seen gone since.
    members: Vec<Pid>,
    last_scan: Option<(Instant, Duration)>,
    buf: Vec<u8>,
}

/// While a process's RSS moves, its `smaps` reads may take this many times the steady share.
const MOVING_BUDGET_FACTOR: f64 = 5.0;

/// Scans may take at most this share of one core.
const MAX_SCAN_SHARE: f64 = 0.005;

impl Sampler {
    pub fn new(fs: ProcFs, options: SamplerOptions) -> Sampler {
        let measurer = Measurer::new(
            fs.clone(),
            MeasureOptions {
                tree: false,
                keep_mappings: false,
                use_rollup: true,
            },
        );
        Sampler {
            fs,
            measurer,
            options,
            known: BTreeMap::new(),
            followed: BTreeSet::new(),
            members: Vec::new(),
            last_scan: None,
            buf: Vec::with_capacity(4096),
        }
    }

    pub fn options(&self) -> &SamplerOptions {
        &self.options
    }

    /// The processes of the followed tree, parents first, from a fresh scan when one is due.
    fn members(&mut self, follow: &Follow) -> Result<Vec<Pid>, ProcError> {
        if let Some((at, cost)) = self.last_scan {
            let period = self.options.scan_every.max(cost.div_f64(MAX_SCAN_SHARE));
            if at.elapsed() < period {
                return Ok(self.members.clone());
            }
        }
        let started = Instant::now();
        let cpu = thread_cpu_seconds();
        let table = ProcessTable::scan(&self.fs).map_err(|e| ProcError::Io {
            pid: 0,
            path: self.fs.root().to_path_buf(),
            source: e,
        })?;
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let heads: Vec<Pid> = follow
            .roots
            .iter()
            .copied()
            .chain(self.followed.iter().copied())
            .collect();
        for head in heads {
            if !table.contains(head) {
                continue;
            }
            for pid in table.descendants(head) {
                if follow.exclude_roots && follow.roots.contains(&pid) {
                    continue;
                }
                if seen.insert(pid) {
                    out.push(pid);
                }
            }
        }
        self.followed.retain(|p| table.contains(*p));
        self.followed.extend(out.iter().copied());
        self.members.clone_from(&out);
        self.last_scan = Some((started, cpu_since(cpu)));
        Ok(out)
    }

    /// Takes one sample of the tree at `t_s` seconds since the start.
    pub fn sample(&mut self, follow: &Follow, t_s: f64) -> Result<Sample, ProcError> {
        let wall = Instant::now();
        let cpu = thread_cpu_seconds();
        let mut cost = SampleCost::default();

        let scan = Instant::now();
        let pids = self.members(follow)?;
        cost.scan_s = scan.elapsed().as_secs_f64();

        let mut processes = Vec::with_capacity(pids.len());
        let mut notes = Vec::new();
        // Processes that are no more (exited, reaped, or never had memory): dropped until a
        // scan finds them again. Any other failure leaves a process in the tree, so a live
        // process is never lost to one bad read.
        let mut ended = BTreeSet::new();
        for pid in pids {
            match self.process(pid, &mut cost) {
                Ok(Some(p)) => processes.push(p),
                Ok(None) => {
                    ended.insert(pid);
                }
                Err(e) if e.is_gone() => {
                    ended.insert(pid);
                }
                Err(e) => notes.push(format!("skipped PID {pid}: {e}")),
            }
        }
        self.known.retain(|p, _| !ended.contains(p));
        self.members.retain(|p| !ended.contains(p));

        let mut snapshot = TreeSnapshot::new(now_rfc3339(), processes, notes);
        // The tree's category totals only mean something when every process was split.
        if snapshot.processes.iter().any(|p| p.categories.is_empty()) {
            snapshot.total.categories.clear();
        }
        cost.wall_s = wall.elapsed().as_secs_f64();
        cost.cpu_s = (thread_cpu_seconds() - cpu).max(0.0);
        Ok(Sample {
            t_s,
            snapshot,
            overhead: cost,
        })
    }

    /// One process at the depth its state calls for. `None`: a zombie or kernel thread.
    fn process(
        &mut self,
        pid: Pid,
        cost: &mut SampleCost,
    ) -> Result<Option<ProcessSnapshot>, ProcError> {
        let Some(start_time) = self.live_start_time(pid)? else {
            return Ok(None);
        };
        self.fs.read_into(pid, "status", &mut self.buf)?;
        cost.status_reads += 1;
        let status = Status::parse(&String::from_utf8_lossy(&self.buf));
        if status.vm_size == 0 {
            // No address space: exiting, about to be a zombie.
            return Ok(None);
        }
        let tier = self.tier(pid, start_time, &status);
        let mut tried = 0;
        let mut entry = loop {
            match self.read(pid, tier, start_time, &status, cost) {
                Ok(entry) => break entry,
                // A read opened before an execve and finished after it finds the old address
                // space gone (smaps_rollup: ESRCH, smaps: empty) though the process lives on:
                // a shell script exec'ing its interpreter does it several times in its first
                // milliseconds. Read again; failing that, keep it in the tree from `status`.
                Err(e) if e.is_gone() && self.live_start_time(pid)? == Some(start_time) => {
                    tried += 1;
                    if tried > 1 {
                        break self.status_only(pid, &status);
                    }
                }
                Err(e) => return Err(e),
            }
        };
        // `status` is fresh every tick whatever else was read.
        entry.ppid = status.ppid;
        entry.threads = status.threads;
        entry.peak_rss_bytes = status.vm_hwm;
        entry.rss_anon_bytes = status.rss_anon;
        entry.rss_file_bytes = status.rss_file;
        entry.rss_shmem_bytes = status.rss_shmem;
        Ok(Some(entry))
    }

    /// The start time of `pid` from its `stat` if it is a live user process, `None` if it
    /// has exited (a zombie) or is a kernel thread.
    fn live_start_time(&mut self, pid: Pid) -> Result<Option<u64>, ProcError> {
        self.fs.read_into(pid, "stat", &mut self.buf)?;
        let stat = String::from_utf8_lossy(&self.buf);
        if kind_from_stat(&stat).is_some_and(|k| k != Kind::Live) {
            return Ok(None);
        }
        Ok(Some(start_time_from_stat(&stat).unwrap_or(0)))
    }

    /// What to read of `pid` this tick.
    fn tier(&self, pid: Pid, start_time: u64, status: &Status) -> ReadTier {
        let now = Instant::now();
        let share = self.options.max_read_share.max(1e-6);
        match self.known.get(&pid) {
            // New, or the PID was reused, or it exec'd into something else: full read.
            None => ReadTier::Smaps,
            Some(k) if k.start_time != start_time || k.last.name != status.name => ReadTier::Smaps,
            Some(k) => {
                let smaps_period = self.options.smaps_every.max(k.smaps_cost.div_f64(share));
                let moved = status.vm_rss.abs_diff(k.smaps_rss);
                let moved_enough = moved as f64 > self.options.smaps_on_move * k.smaps_rss as f64
                    && moved >= self.options.smaps_on_move_min_bytes;
                // A process that keeps moving is still re-read at most 5x as often as the
                // budget allows for steady ones.
                let move_period = k.smaps_cost.div_f64(share * MOVING_BUDGET_FACTOR);
                let rollup_period = self.options.rollup_every.max(k.rollup_cost.div_f64(share));
                if now - k.smaps_at >= smaps_period
                    || (moved_enough && now - k.smaps_at >= move_period)
                {
                    ReadTier::Smaps
                } else if now - k.rollup_at >= rollup_period {
                    ReadTier::Rollup
                } else {
                    ReadTier::Status
                }
            }
        }
    }

    /// Reads `pid` at depth `tier`.
    fn read(
        &mut self,
        pid: Pid,
        tier: ReadTier,
        start_time: u64,
        status: &Status,
        cost: &mut SampleCost,
    ) -> Result<ProcessSnapshot, ProcError> {
        let now = Instant::now();
        let entry = match tier {
            ReadTier::Smaps => {
                let t = Instant::now();
                let cpu = thread_cpu_seconds();
                let mut p = self.measurer.process(pid)?;
                let took = t.elapsed();
                let busy = cpu_since(cpu);
                cost.smaps_reads += 1;
                cost.smaps_s += took.as_secs_f64();
                p.read = Some(ReadTier::Smaps);
                let entry = p.clone();
                self.known.insert(
                    pid,
                    Known {
                        start_time,
                        smaps_rss: p.rss_bytes,
                        last: p,
                        smaps_at: now,
                        smaps_cost: busy,
                        rollup_at: now,
                        // A rollup costs about half a full read (the same page walk, less
                        // text).
                        rollup_cost: busy / 2,
                    },
                );
                entry
            }
            ReadTier::Rollup => {
                let t = Instant::now();
                let cpu = thread_cpu_seconds();
                self.fs.read_into(pid, "smaps_rollup", &mut self.buf)?;
                let took = t.elapsed();
                let busy = cpu_since(cpu);
                cost.rollup_reads += 1;
                cost.rollup_s += took.as_secs_f64();
                if self.buf.is_empty() {
                    return Err(ProcError::Vanished { pid });
                }
                let c = parse_rollup(&self.buf).map_err(|source| ProcError::Parse {
                    pid,
                    path: self.fs.pid_path(pid, "smaps_rollup"),
                    source,
                })?;
                let Some(k) = self.known.get_mut(&pid) else {
                    return Ok(self.status_only(pid, status));
                };
                k.rollup_at = now;
                k.rollup_cost = busy;
                let last = &mut k.last;
                last.rss_bytes = c.rss * 1024;
                last.pss_bytes = c.pss * 1024;
                last.uss_bytes = c.uss() * 1024;
                last.swap_bytes = c.swap * 1024;
                last.swap_pss_bytes = c.swap_pss * 1024;
                last.pss_anon_bytes = c.pss_anon * 1024;
                last.pss_file_bytes = c.pss_file * 1024;
                last.pss_shmem_bytes = c.pss_shmem * 1024;
                let mut p = without_categories(last);
                p.read = Some(ReadTier::Rollup);
                p.reconciliation = Reconciliation {
                    totals_from: "smaps_rollup".into(),
                    pss_rounding_bytes: 0,
                    mismatch: None,
                    ..Default::default()
                };
                p
            }
            ReadTier::Status => self.status_only(pid, status),
        };
        Ok(entry)
    }

    /// An entry from `status` alone: what was last read of the process (if anything) with
    /// its current RSS. Also what a live process whose deeper read failed gets.
    fn status_only(&self, pid: Pid, status: &Status) -> ProcessSnapshot {
        let mut p = match self.known.get(&pid) {
            Some(k) => without_categories(&k.last),
            None => {
                let argv = self.fs.cmdline(pid).unwrap_or_default();
                let Identity { role, engine } = identify(&status.name, &argv);
                ProcessSnapshot {
                    pid,
                    ppid: status.ppid,
                    role,
                    engine,
                    name: status.name.clone(),
                    cmdline: argv.join(" "),
                    rss_bytes: 0,
                    pss_bytes: 0,
                    uss_bytes: 0,
                    swap_bytes: status.vm_swap,
                    swap_pss_bytes: 0,
                    pss_anon_bytes: 0,
                    pss_file_bytes: 0,
                    pss_shmem_bytes: 0,
                    peak_rss_bytes: 0,
                    threads: 0,
                    uses_gpu: false,
                    rss_anon_bytes: 0,
                    rss_file_bytes: 0,
                    rss_shmem_bytes: 0,
                    categories: Default::default(),
                    mappings: Vec::new(),
                    reconciliation: Reconciliation::default(),
                    read: None,
                }
            }
        };
        p.read = Some(ReadTier::Status);
        p.rss_bytes = status.vm_rss;
        p.reconciliation = Reconciliation {
            totals_from: "status".into(),
            ..Default::default()
        };
        p
    }
}

/// CPU time spent since `start` (from [`thread_cpu_seconds`]). The read budget uses CPU
/// time rather than wall time: the kernel walks the target's page tables on the reader's
/// CPU, and wall time would also count waiting for a busy machine's cores.
fn cpu_since(start: f64) -> Duration {
    Duration::from_secs_f64((thread_cpu_seconds() - start).max(0.0))
}

fn without_categories(p: &ProcessSnapshot) -> ProcessSnapshot {
    ProcessSnapshot {
        categories: Default::default(),
        mappings: Vec::new(),
        ..p.clone()
    }
}

/// CLOCK_MONOTONIC in seconds.
pub fn monotonic_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// CPU time (user + system) of the calling thread, in seconds.
pub fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_itself_at_every_depth() {
        let me = std::process::id();
        let mut s = Sampler::new(
            ProcFs::default(),
            SamplerOptions {
                rollup_every: Duration::ZERO,
                smaps_every: Duration::from_secs(3600),
                max_read_share: 1.0,
                ..Default::default()
            },
        );
        let follow = Follow {
            roots: vec![me],
            exclude_roots: false,
        };
        let first = s.sample(&follow, 0.0).unwrap();
        let p = first
            .snapshot
            .processes
            .iter()
            .find(|p| p.pid == me)
            .unwrap();
        assert_eq!(p.read, Some(ReadTier::Smaps));
        assert!(!p.categories.is_empty());
        assert!(first.overhead.smaps_reads >= 1);
        let second = s.sample(&follow, 0.1).unwrap();
        let p = second
            .snapshot
            .processes
            .iter()
            .find(|p| p.pid == me)
            .unwrap();
        assert_eq!(p.read, Some(ReadTier::Rollup));
        assert!(p.categories.is_empty());
        assert!(p.pss_bytes > 0 && p.rss_bytes > 0);
    }

    /// A captured process under a fake proc root, as PID 4242.
    fn fake_proc(root: &std::path::Path, smaps: bool) {
        let fixtures = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/cuda-torch-h100/00-python-bare"
        );
        let dir = root.join("4242");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("stat"),
            "4242 (python3) S 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0",
        )
        .unwrap();
        std::fs::copy(format!("{fixtures}.status"), dir.join("status")).unwrap();
        std::fs::copy(format!("{fixtures}.cmdline"), dir.join("cmdline")).unwrap();
        std::fs::write(dir.join("comm"), "python3\n").unwrap();
        if smaps {
            std::fs::copy(format!("{fixtures}.smaps"), dir.join("smaps")).unwrap();
            std::fs::copy(format!("{fixtures}.smaps_rollup"), dir.join("smaps_rollup")).unwrap();
        } else {
            // What a read straddling an execve sees: the old address space already gone.
            std::fs::write(dir.join("smaps"), "").unwrap();
            std::fs::write(dir.join("smaps_rollup"), "").unwrap();
        }
    }

    #[test]
    fn a_live_process_caught_mid_exec_stays_in_the_tree() {
        let root = tempfile::tempdir().unwrap();
        fake_proc(root.path(), false);
        let mut s = Sampler::new(ProcFs::new(root.path()), SamplerOptions::default());
        let follow = Follow {
            roots: vec![4242],
            exclude_roots: false,
        };
        let first = s.sample(&follow, 0.0).unwrap();
        let p = &first.snapshot.processes;
        assert_eq!(p.len(), 1, "{:?}", first.snapshot.notes);
        assert_eq!((p[0].pid, p[0].read), (4242, Some(ReadTier::Status)));
        assert_eq!(p[0].name, "python3");
        assert!(p[0].rss_bytes > 0);
        // A moment later its smaps reads fine: it is still a member (no scan is due yet) and
        // gets its full read.
        fake_proc(root.path(), true);
        let second = s.sample(&follow, 0.05).unwrap();
        let p = &second.snapshot.processes;
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].read, Some(ReadTier::Smaps));
        assert!(!p[0].categories.is_empty());
    }

    #[test]
    fn an_exited_process_leaves_the_tree() {
        let root = tempfile::tempdir().unwrap();
        fake_proc(root.path(), true);
        let mut s = Sampler::new(ProcFs::new(root.path()), SamplerOptions::default());
        let follow = Follow {
            roots: vec![4242],
            exclude_roots: false,
        };
        assert_eq!(s.sample(&follow, 0.0).unwrap().snapshot.processes.len(), 1);
        std::fs::write(
            root.path().join("4242/stat"),
            "4242 (python3) Z 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0",
        )
        .unwrap();
        let gone = s.sample(&follow, 0.05).unwrap();
        assert!(gone.snapshot.processes.is_empty());
        assert!(s.members.is_empty());
    }
}
