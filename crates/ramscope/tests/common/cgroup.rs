//! Memory cgroups for the end-to-end tests: a child of the test's own cgroup with a hard limit
//! that swap cannot soften, processes moved into it before they exec, the kernel's OOM kills
//! read back, and the cgroup removed when dropped (its processes killed first), also when a
//! test fails. cgroup v1 (the `memory` hierarchy) and v2 (the unified one). [`Launched`] is a
//! server started inside one, its memory sampled while it starts.
//!
//! Creating a cgroup needs root and a writable hierarchy. When that is not possible the test
//! fails and says why, unless `RAMSCOPE_SKIP_CGROUP=1`, in which case [`Cgroup::create`]
//! returns `None` and the test says it skipped.

use std::ffi::CString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A memory cgroup this test made; removed when dropped.
#[derive(Debug)]
pub struct Cgroup {
    pub dir: PathBuf,
    pub version: Version,
    /// `cgroup.procs`, ready for the moment between fork and exec (nothing may allocate there).
    procs: CString,
}

/// What the cgroup holds now, from its `memory.stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Anonymous memory and shmem (tmpfs, memfd, shared anonymous): what the kernel cannot drop.
    pub non_reclaimable: u64,
    /// Pages on the file LRU lists (page cache): what it can.
    pub file: u64,
}

impl Cgroup {
    /// A new cgroup named `ramscope-<name>-<pid>` under the test's own memory cgroup. `None`
    /// when it cannot be made and `RAMSCOPE_SKIP_CGROUP=1`; otherwise a failure panics with
    /// the reason.
    pub fn create(name: &str) -> Option<Cgroup> {
        match Cgroup::try_create(name) {
            Ok(c) => Some(c),
            Err(why) if skip_requested() => {
                eprintln!(
                    "skipped: no memory cgroup could be made ({why}); RAMSCOPE_SKIP_CGROUP=1"
                );
                None
            }
            Err(why) => panic!(
                "no memory cgroup could be made: {why} (these tests need root and a writable \
                 cgroup hierarchy; RAMSCOPE_SKIP_CGROUP=1 skips them)"
            ),
        }
    }

    fn try_create(name: &str) -> Result<Cgroup, String> {
        let (version, parent) = parent_dir()?;
        let dir = parent.join(format!("ramscope-{name}-{}", std::process::id()));
        if dir.exists() {
            // Left by an earlier run of this process id that was killed: empty it and reuse it.
            let stale = Cgroup::at(dir.clone(), version)?;
            stale.kill_all();
        } else {
            std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        }
        Cgroup::at(dir, version)
    }

    fn at(dir: PathBuf, version: Version) -> Result<Cgroup, String> {
        let procs = CString::new(
            dir.join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .map_err(|_| format!("{} has a NUL byte", dir.display()))?;
        Ok(Cgroup {
            dir,
            version,
            procs,
        })
    }

    /// Sets the hard memory limit, and the memory+swap limit to the same (v1) or the swap
    /// limit to 0 (v2), so that the kernel kills rather than swaps. Where the kernel accounts
    /// no swap, swap must be off.
    pub fn set_limit(&self, bytes: u64) -> Result<(), String> {
        let (limit, swap, swap_value) = match self.version {
            Version::V1 => (
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                bytes.to_string(),
            ),
            Version::V2 => ("memory.max", "memory.swap.max", "0".to_string()),
        };
        self.write(limit, &bytes.to_string())?;
        if self.dir.join(swap).exists() {
            self.write(swap, &swap_value)?;
        } else if swap_is_on() {
            return Err(format!(
                "{swap} is missing (no swap accounting) and swap is on: an OOM could hide in swap"
            ));
        }
        Ok(())
    }

    /// Makes `cmd` start inside this cgroup: the child writes its own PID to `cgroup.procs`
    /// between fork and exec, so everything it runs and starts is charged here from its first
    /// page.
    pub fn place(&self, cmd: &mut Command) {
        let procs = self.procs.clone();
        // SAFETY: only open/write/close on a path prepared beforehand: async-signal-safe, no
        // allocation. "0" means the writing process.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let wrote = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = std::io::Error::last_os_error();
                libc::close(fd);
                if wrote != 1 {
                    return Err(err);
                }
                Ok(())
            });
        }
    }

    /// How many processes the kernel's OOM killer killed in this cgroup (v1 `memory.oom_control`,
    /// v2 `memory.events`); `None` when the kernel does not say.
    pub fn oom_kills(&self) -> Option<u64> {
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        field(&self.read(file).ok()?, "oom_kill")
    }

    /// The cgroup's memory now, by kind.
    pub fn usage(&self) -> Usage {
        let stat = self.read("memory.stat").unwrap_or_default();
        let get = |k: &str| field(&stat, k).unwrap_or(0);
        match self.version {
            // v1: `rss` is anonymous memory; shmem is counted in `cache`.
            Version::V1 => Usage {
                non_reclaimable: get("total_rss") + get("total_shmem"),
                file: get("total_active_file") + get("total_inactive_file"),
            },
            Version::V2 => Usage {
                non_reclaimable: get("anon") + get("shmem"),
                file: get("active_file") + get("inactive_file"),
            },
        }
    }

    /// The most the cgroup was charged (page cache included) since it was made, where the
    /// kernel keeps it (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
    pub fn peak_usage(&self) -> Option<u64> {
        let file = match self.version {
            Version::V1 => "memory.max_usage_in_bytes",
            Version::V2 => "memory.peak",
        };
        self.read(file).ok()?.trim().parse().ok()
    }

    /// The processes in it now.
    pub fn pids(&self) -> Vec<i32> {
        self.read("cgroup.procs")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// SIGKILLs every process in it until it is empty (at most 10 s).
    pub fn kill_all(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() > deadline {
                return;
            }
            for pid in pids {
                // SAFETY: kill(2) on a process this test started inside its own cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn read(&self, file: &str) -> std::io::Result<String> {
        std::fs::read_to_string(self.dir.join(file))
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        std::fs::write(self.dir.join(file), value)
            .map_err(|e| format!("writing {value} to {}: {e}", self.dir.join(file).display()))
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        // The kernel may need a moment after the last process exits before rmdir succeeds.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("warning: could not remove {}", self.dir.display());
    }
}

/// Whether the kernel killed something in `cg`: its OOM-kill count, or `status`'s SIGKILL.
pub fn killed_by_kernel(cg: &Cgroup, status: &ExitStatus) -> bool {
    cg.oom_kills().is_some_and(|n| n >= 1) || status.signal() == Some(libc::SIGKILL)
}

/// `unshare --mount` with a private `/dev/shm` tmpfs of `bytes`, then exec of what follows.
pub fn private_dev_shm(bytes: u64) -> Vec<String> {
    let script = format!("mount -t tmpfs -o size={bytes} tmpfs /dev/shm && exec \"$0\" \"$@\"");
    [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]
    .iter()
    .map(|w| w.to_string())
    .collect()
}

/// A server started inside a cgroup, with its output in `log`; stopped (then killed) when
/// dropped. The cgroup, dropped after it, kills whatever of its tree is left.
pub struct Launched {
    pub child: Child,
    pub log: PathBuf,
    pub port: u16,
    stop: i32,
    /// The most non-reclaimable memory (anonymous + shmem) the cgroup was seen to hold,
    /// sampled every 100 ms while waiting and after each request the test makes.
    pub peak: u64,
    started: Instant,
}

/// How a start ended.
#[derive(Debug)]
pub enum Start {
    Ready(Duration),
    Exited(ExitStatus, Duration),
}

impl Launched {
    /// Starts `wrap` + `argv` in `cg` with `env` added, writing its output to `log`. `stop`
    /// is the signal that shuts it down cleanly (SIGTERM for vLLM, whose whole tree follows);
    /// the kernel sends it too if the test process dies first.
    pub fn start(
        cg: &Cgroup,
        wrap: &[String],
        argv: &[String],
        env: &[(String, String)],
        log: PathBuf,
        port: u16,
        stop: i32,
    ) -> Launched {
        let file = std::fs::File::create(&log).expect("create the server log");
        let all: Vec<&String> = wrap.iter().chain(argv).collect();
        let mut cmd = Command::new(all[0]);
        cmd.args(&all[1..])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("VLLM_NO_USAGE_STATS", "1")
            .env("HF_HUB_OFFLINE", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file);
        cg.place(&mut cmd);
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, stop);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", all[0]));
        Launched {
            child,
            log,
            port,
            stop,
            peak: 0,
            started: Instant::now(),
        }
    }

    /// Waits until `ready` says so or the server exits, sampling the cgroup's memory.
    pub fn wait(&mut self, cg: &Cgroup, timeout: Duration, ready: impl Fn(u16) -> bool) -> Start {
        loop {
            self.sample(cg);
            if let Some(status) = self.exited() {
                return Start::Exited(status, self.started.elapsed());
            }
            if ready(self.port) {
                return Start::Ready(self.started.elapsed());
            }
            assert!(
                self.started.elapsed() < timeout,
                "neither ready nor gone after {timeout:?}; log:\n{}",
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `ready` says so; its exit or an OOM kill first fails the test.
    pub fn ready(
        &mut self,
        cg: &Cgroup,
        timeout: Duration,
        ready: impl Fn(u16) -> bool,
    ) -> Duration {
        match self.wait(cg, timeout, ready) {
            Start::Ready(took) => took,
            outcome => panic!(
                "not ready: {outcome:?}; oom_kill {:?}; non-reclaimable peak seen {} MiB; log:\n{}",
                cg.oom_kills(),
                self.peak >> 20,
                self.tail()
            ),
        }
    }

    pub fn sample(&mut self, cg: &Cgroup) {
        self.peak = self.peak.max(cg.usage().non_reclaimable);
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for the server")
    }

    /// Waits (at most `timeout`) for the server to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last 30 lines of its output.
    pub fn tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        if self.exited().is_none() {
            // SAFETY: a signal to the server this test started.
            unsafe { libc::kill(self.child.id() as i32, self.stop) };
            if self.wait_exit(Duration::from_secs(30)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

fn skip_requested() -> bool {
    std::env::var("RAMSCOPE_SKIP_CGROUP").is_ok_and(|v| v == "1")
}

/// `key N` in a flat-keyed cgroup file.
pub fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Whether any swap area is active (`/proc/swaps` lists more than its heading).
fn swap_is_on() -> bool {
    std::fs::read_to_string("/proc/swaps").map_or(true, |t| t.lines().count() > 1)
}

/// The directory new cgroups go in: the test's own memory cgroup. On v1 that is its place in
/// the `memory` hierarchy. On v2 the memory controller must be enabled for its children; a
/// cgroup that holds processes cannot enable it (the kernel's no-internal-process rule), and
/// then the hierarchy's root, which is exempt, is used instead.
fn parent_dir() -> Result<(Version, PathBuf), String> {
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let v1 = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    });
    if let Some(path) = v1 {
        let (root, mount) = mount_of(&mounts, |fstype, opts| {
            fstype == "cgroup" && opts.split(',').any(|o| o == "memory")
        })
        .ok_or("no cgroup v1 memory hierarchy mounted")?;
        return Ok((Version::V1, join(&mount, &root, &path)));
    }
    let path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("the process is in no memory cgroup (no v1 memory line, no v2 line)")?;
    let (root, mount) =
        mount_of(&mounts, |fstype, _| fstype == "cgroup2").ok_or("no cgroup2 hierarchy mounted")?;
    let controllers = std::fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
    if !controllers.split_whitespace().any(|c| c == "memory") {
        return Err(format!(
            "the memory controller is not available in {}",
            mount.display()
        ));
    }
    let own_dir = join(&mount, &root, path);
    for dir in [own_dir, mount.clone()] {
        if enable_memory(&dir).is_ok() {
            if dir == mount {
                eprintln!(
                    "note: the test's own cgroup cannot enable the memory controller for its \
                     children; using {}",
                    mount.display()
                );
            }
            return Ok((Version::V2, dir));
        }
    }
    Err(format!(
        "cannot enable the memory controller in {}'s cgroup.subtree_control",
        mount.display()
    ))
}

/// Enables `+memory` for `dir`'s children, unless it is already.
fn enable_memory(dir: &Path) -> Result<(), String> {
    let file = dir.join("cgroup.subtree_control");
    let now = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
    if now.split_whitespace().any(|c| c == "memory") {
        return Ok(());
    }
    std::fs::write(&file, "+memory").map_err(|e| format!("{}: {e}", file.display()))
}

/// (root within the hierarchy, mount point) of the first mount whose filesystem type and
/// super options `pick` accepts.
pub fn mount_of(mountinfo: &str, pick: impl Fn(&str, &str) -> bool) -> Option<(String, PathBuf)> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let fields: Vec<&str> = left.split(' ').collect();
        let mut rest = right.split(' ');
        let (fstype, _source, opts) = (rest.next()?, rest.next()?, rest.next().unwrap_or(""));
        if !pick(fstype, opts) {
            return None;
        }
        Some((fields.get(3)?.to_string(), PathBuf::from(fields.get(4)?)))
    })
}

/// The directory of cgroup `path` in a hierarchy mounted at `mount` from `root`.
pub fn join(mount: &Path, root: &str, path: &str) -> PathBuf {
    let rel = path
        .strip_prefix(root)
        .filter(|_| root != "/")
        .unwrap_or(path);
    mount.join(rel.trim_start_matches('/'))
}
