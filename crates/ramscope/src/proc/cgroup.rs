//! The memory cgroup a process is charged to (v2 or v1): its limit, usage, peak and the
//! anon/file/shmem/kernel split of `memory.stat`.
//!
//! A container is killed by its cgroup's limit, not by anything in `/proc/<pid>/smaps`: the
//! cgroup is also charged for the page cache of files its processes read (model weights!),
//! which no process's RSS shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Pid;

/// Values at or above this mean "no limit" (v1 prints `PAGE_COUNTER_MAX` pages in bytes).
const V1_UNLIMITED: u64 = 1 << 62;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    V1,
    V2,
}

/// The memory accounting of one cgroup, in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupMemory {
    pub version: CgroupVersion,
    /// The cgroup's path inside its hierarchy, e.g. `/kubepods/pod…/…`.
    pub path: String,
    /// `memory.max` / `memory.limit_in_bytes`; `None` when unlimited.
    pub limit_bytes: Option<u64>,
    /// `memory.current` / `memory.usage_in_bytes`.
    pub usage_bytes: u64,
    /// `memory.peak` (v2, Linux 5.19+) / `memory.max_usage_in_bytes`.
    pub peak_bytes: Option<u64>,
    /// `memory.swap.current` (v2) / `memsw - usage` (v1).
    pub swap_bytes: Option<u64>,
    pub anon_bytes: u64,
    /// Page cache charged to the cgroup (includes mapped files and shmem on v2).
    pub file_bytes: u64,
    pub shmem_bytes: u64,
    pub file_mapped_bytes: u64,
    pub file_dirty_bytes: u64,
    /// Kernel memory: slab, stacks, page tables, sockets.
    pub kernel_bytes: Option<u64>,
    /// Every key of `memory.stat`, as the kernel wrote it.
    pub stat: BTreeMap<String, u64>,
}

impl CgroupMemory {
    /// Room left before the limit.
    pub fn headroom_bytes(&self) -> Option<u64> {
        self.limit_bytes
            .map(|limit| limit.saturating_sub(self.usage_bytes))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: line {line}: {what}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        what: String,
    },
}

/// Where to look: the proc root (for `<pid>/cgroup` and `self/mountinfo`) and the file
/// system root the mount points are relative to (`/` normally; a fixture folder in tests).
#[derive(Debug, Clone)]
pub struct CgroupReader {
    proc_root: PathBuf,
    fs_root: PathBuf,
}

impl Default for CgroupReader {
    fn default() -> Self {
        CgroupReader::new("/proc", "/")
    }
}

/// Where a memory cgroup is: its folder, and the mount point above which its ancestors
/// cannot be seen (inside a container, the container's own cgroup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLocation {
    pub version: CgroupVersion,
    /// The cgroup's path inside its hierarchy, as `/proc/<pid>/cgroup` prints it.
    pub path: String,
    /// Its folder (the deepest existing one, see [`CgroupReader`]'s notes on containers).
    pub dir: PathBuf,
    /// The hierarchy's mount point: `dir` or one of its ancestors.
    pub mount_dir: PathBuf,
}

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Membership {
    controllers: Vec<String>,
    path: String,
}

/// A cgroup file system mount from `mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupMount {
    version: CgroupVersion,
    /// The cgroup path that appears at the mount point (not `/` inside a cgroup namespace).
    root: String,
    mount_point: PathBuf,
    options: Vec<String>,
}

impl CgroupReader {
    pub fn new(proc_root: impl Into<PathBuf>, fs_root: impl Into<PathBuf>) -> CgroupReader {
        CgroupReader {
            proc_root: proc_root.into(),
            fs_root: fs_root.into(),
        }
    }

    /// The memory cgroup of `pid`, or `None` when no memory controller is mounted.
    pub fn memory_of(&self, pid: Pid) -> Result<Option<CgroupMemory>, CgroupError> {
        match self.locate(pid)? {
            Some(at) if at.version == CgroupVersion::V1 => read_v1(&at.dir, &at.path).map(Some),
            Some(at) => read_v2(&at.dir, &at.path).map(Some),
            None => Ok(None),
        }
    }

    /// Where the memory cgroup of `pid` is in the file system, or `None` when no memory
    /// controller is mounted.
    pub fn locate(&self, pid: Pid) -> Result<Option<CgroupLocation>, CgroupError> {
        let cgroup_file = self.proc_root.join(pid.to_string()).join("cgroup");
        let memberships = parse_memberships(&read(&cgroup_file)?);
        let mountinfo_file = self.proc_root.join("self/mountinfo");
        let mounts = parse_mountinfo(&read(&mountinfo_file)?);
        let located = |version, mount: &CgroupMount, path: &str| CgroupLocation {
            version,
            path: path.to_string(),
            dir: self.cgroup_dir(mount, path),
            mount_dir: self.mount_dir(mount),
        };

        // v1 with a memory hierarchy wins: on hybrid systems the v2 tree then has no memory
        // controller.
        if let Some(member) = memberships
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == "memory"))
        {
            if let Some(mount) = mounts
                .iter()
                .find(|m| m.version == CgroupVersion::V1 && m.options.iter().any(|o| o == "memory"))
            {
                return Ok(Some(located(CgroupVersion::V1, mount, &member.path)));
            }
        }
        if let Some(member) = memberships.iter().find(|m| m.controllers.is_empty()) {
            if let Some(mount) = mounts.iter().find(|m| m.version == CgroupVersion::V2) {
                let at = located(CgroupVersion::V2, mount, &member.path);
                if at.dir.join("memory.current").exists() {
                    return Ok(Some(at));
                }
            }
        }
        Ok(None)
    }

    /// The mount point of `mount` under the file system root.
    fn mount_dir(&self, mount: &CgroupMount) -> PathBuf {
        self.fs_root.join(
            mount
                .mount_point
                .strip_prefix("/")
                .unwrap_or(&mount.mount_point),
        )
    }

    /// The folder of cgroup `path` under `mount`. Inside a container the mount shows only
    /// the container's own subtree, and /proc may still print the host's path: fall back to
    /// the deepest existing folder, then to the mount point itself.
    fn cgroup_dir(&self, mount: &CgroupMount, path: &str) -> PathBuf {
        let base = self.mount_dir(mount);
        let relative = path
            .strip_prefix(mount.root.as_str())
            .unwrap_or(path)
            .trim_start_matches('/');
        let full = base.join(relative);
        if full.is_dir() {
            return full;
        }
        base
    }
}

fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_u64(path: &Path) -> Result<Option<u64>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = text.trim();
            if text == "max" {
                return Ok(None);
            }
            text.parse().map(Some).map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                line: 1,
                what: format!("expected a number, found {text:?}"),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn read_stat(path: &Path) -> Result<BTreeMap<String, u64>, CgroupError> {
    parse_stat(&read(path)?, path)
}

/// `memory.stat`: one `key value` per line.
fn parse_stat(text: &str, path: &Path) -> Result<BTreeMap<String, u64>, CgroupError> {
    let mut stat = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let parsed = line
            .split_once(' ')
            .and_then(|(k, v)| v.trim().parse::<u64>().ok().map(|v| (k, v)));
        match parsed {
            Some((k, v)) => {
                stat.insert(k.to_string(), v);
            }
            None => {
                return Err(CgroupError::Parse {
                    path: path.to_path_buf(),
                    line: i + 1,
                    what: format!("expected `key value`, found {line:?}"),
                })
            }
        }
    }
    Ok(stat)
}

fn read_v2(dir: &Path, path: &str) -> Result<CgroupMemory, CgroupError> {
    let stat = read_stat(&dir.join("memory.stat"))?;
    let get = |k: &str| stat.get(k).copied().unwrap_or(0);
    // `kernel` exists since 5.18; before it, its parts.
    let kernel = stat.get("kernel").copied().or_else(|| {
        let parts = [
            "kernel_stack",
            "pagetables",
            "sock",
            "slab",
            "percpu",
            "vmalloc",
        ];
        parts
            .iter()
            .any(|k| stat.contains_key(*k))
            .then(|| parts.iter().fold(0u64, |sum, k| sum.saturating_add(get(k))))
    });
    Ok(CgroupMemory {
        version: CgroupVersion::V2,
        path: path.to_string(),
        limit_bytes: read_u64(&dir.join("memory.max"))?,
        usage_bytes: read_u64(&dir.join("memory.current"))?.unwrap_or(0),
        peak_bytes: read_u64(&dir.join("memory.peak"))?,
        swap_bytes: read_u64(&dir.join("memory.swap.current"))?,
        anon_bytes: get("anon"),
        file_bytes: get("file"),
        shmem_bytes: get("shmem"),
        file_mapped_bytes: get("file_mapped"),
        file_dirty_bytes: get("file_dirty"),
        kernel_bytes: kernel,
        stat,
    })
}

fn read_v1(dir: &Path, path: &str) -> Result<CgroupMemory, CgroupError> {
    let stat = read_stat(&dir.join("memory.stat"))?;
    // The `total_` keys include child cgroups, as v2's figures do.
    let get = |k: &str| {
        stat.get(&format!("total_{k}"))
            .or_else(|| stat.get(k))
            .copied()
            .unwrap_or(0)
    };
    let usage = read_u64(&dir.join("memory.usage_in_bytes"))?.unwrap_or(0);
    let limit = read_u64(&dir.join("memory.limit_in_bytes"))?.filter(|&l| l < V1_UNLIMITED);
    let swap = read_u64(&dir.join("memory.memsw.usage_in_bytes"))?.map(|m| m.saturating_sub(usage));
    Ok(CgroupMemory {
        version: CgroupVersion::V1,
        path: path.to_string(),
        limit_bytes: limit,
        usage_bytes: usage,
        peak_bytes: read_u64(&dir.join("memory.max_usage_in_bytes"))?,
        swap_bytes: swap,
        // `rss` already includes transparent huge pages (`rss_huge`).
        anon_bytes: get("rss"),
        file_bytes: get("cache"),
        shmem_bytes: get("shmem"),
        file_mapped_bytes: get("mapped_file"),
        file_dirty_bytes: get("dirty"),
        kernel_bytes: read_u64(&dir.join("memory.kmem.usage_in_bytes"))?,
        stat,
    })
}

/// The text parsers, for the fuzz targets (no file is read).
pub(crate) fn fuzz_parsers(memberships: &str, mountinfo: &str, stat: &str) {
    let memberships = parse_memberships(memberships);
    let mounts = parse_mountinfo(mountinfo);
    for (member, mount) in memberships.iter().zip(&mounts) {
        let _ = member.path.strip_prefix(mount.root.as_str());
    }
    let _ = parse_stat(stat, Path::new("memory.stat"));
}

/// `hierarchy-ID:controller-list:cgroup-path`; v2 has ID 0 and an empty list.
fn parse_memberships(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(Membership {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// `36 35 98:0 /root /mnt rw,noatime master:1 - cgroup cgroup rw,memory`
fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fs_type = right.next()?;
            let _source = right.next()?;
            let super_options = right.next().unwrap_or("");
            let version = match fs_type {
                "cgroup2" => CgroupVersion::V2,
                "cgroup" => CgroupVersion::V1,
                _ => return None,
            };
            Some(CgroupMount {
                version,
                root: fields.get(3)?.to_string(),
                mount_point: PathBuf::from(unescape_mount(fields.get(4)?)),
                options: super_options.split(',').map(String::from).collect(),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mount(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // The kernel escapes one byte, so at most `\377`; anything else is taken literally.
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            d.iter()
                .all(|b| (b'0'..=b'7').contains(b))
                .then(|| d.iter().fold(0u16, |v, b| v * 8 + u16::from(b - b'0')))
                .and_then(|v| u8::try_from(v).ok())
        });
        if let (b'\\', Some(v)) = (bytes[i], octal) {
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_escapes_beyond_a_byte_are_literal() {
        assert_eq!(unescape_mount(r"/a\040b"), "/a b");
        assert_eq!(unescape_mount(r"/d\777x"), r"/d\777x");
        assert_eq!(unescape_mount(r"/e\04"), r"/e\04");
    }

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn captured_v1_hierarchy() {
        let root = fixture("cgroup-v1");
        let reader = CgroupReader::new(root.join("proc"), &root);
        let m = reader.memory_of(4242).unwrap().expect("a memory cgroup");
        assert_eq!(m.version, CgroupVersion::V1);
        assert_eq!(m.path, "/process_api/99db3fd348181a1688c70fba7559580d");
        assert_eq!(m.limit_bytes, None, "9223372036854771712 means unlimited");
        assert!(m.usage_bytes > 0);
        assert_eq!(m.anon_bytes, m.stat["total_rss"]);
        assert_eq!(m.file_bytes, m.stat["total_cache"]);
        assert!(m.peak_bytes.unwrap() >= m.usage_bytes);
    }

    #[test]
    fn v2_hierarchy_in_a_namespace() {
        let root = fixture("cgroup-v2");
        let reader = CgroupReader::new(root.join("proc"), &root);
        let m = reader.memory_of(77).unwrap().expect("a memory cgroup");
        assert_eq!(m.version, CgroupVersion::V2);
        assert_eq!(m.limit_bytes, Some(16 << 30));
        assert_eq!(m.usage_bytes, 9_663_676_416);
        assert_eq!(m.peak_bytes, Some(12_884_901_888));
        assert_eq!(m.anon_bytes, 3_221_225_472);
        assert_eq!(m.file_bytes, 6_227_702_784);
        assert_eq!(m.shmem_bytes, 134_217_728);
        assert_eq!(m.kernel_bytes, Some(104_857_600));
        assert_eq!(m.headroom_bytes(), Some((16 << 30) - 9_663_676_416));
    }

    #[test]
    fn this_machine() {
        // Whatever this machine has, reading it must not fail.
        let reader = CgroupReader::default();
        let m = reader.memory_of(std::process::id()).unwrap();
        if let Some(m) = m {
            assert!(m.usage_bytes > 0);
        }
    }

    #[test]
    fn mountinfo_and_memberships() {
        let mounts = parse_mountinfo(
            "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n35 31 0:32 /kube /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory\n23 1 0:5 / /dev rw - tmpfs tmpfs rw\n",
        );
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[1].root, "/kube");
        assert_eq!(
            mounts[1].mount_point,
            PathBuf::from("/sys/fs/cgroup/mem ory")
        );
        let m = parse_memberships("4:memory:/a/b\n0::/c\n");
        assert_eq!(m[0].controllers, vec!["memory"]);
        assert!(m[1].controllers.is_empty());
    }
}
