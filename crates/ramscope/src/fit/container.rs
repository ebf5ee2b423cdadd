//! What the container a server runs in allows it: the memory cgroup's limit (the smallest
//! of the cgroup's and its ancestors', as the kernel enforces it), what the cgroup is charged
//! now and how much of that is page cache, and the size of `/dev/shm` as the server sees it.
//!
//! Every value is `None` when its file is missing or unreadable: an unlimited cgroup has no
//! limit, not a limit of 0, and a kernel that hides `memory.stat` says nothing about the page
//! cache.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::proc::cgroup::{CgroupLocation, CgroupVersion};
use crate::proc::Pid;

/// At or above this a v1 limit means "no limit" (the kernel prints `PAGE_COUNTER_MAX`
/// pages in bytes, 2^63 rounded down to a page).
const V1_UNLIMITED: u64 = 1 << 62;

/// The file holding a cgroup's limit, and its usage, per version.
struct Files {
    limit: &'static str,
    usage: &'static str,
    /// `memory.stat` keys: v1's `total_` keys include child cgroups, as v2's figures do.
    anon: &'static str,
    shmem: &'static str,
    active_file: &'static str,
    inactive_file: &'static str,
}

const V1: Files = Files {
    limit: "memory.limit_in_bytes",
    usage: "memory.usage_in_bytes",
    anon: "total_rss",
    shmem: "total_shmem",
    active_file: "total_active_file",
    inactive_file: "total_inactive_file",
};

const V2: Files = Files {
    limit: "memory.max",
    usage: "memory.current",
    anon: "anon",
    shmem: "shmem",
    active_file: "active_file",
    inactive_file: "inactive_file",
};

/// A memory cgroup's limit and charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupFacts {
    pub version: CgroupVersion,
    /// The cgroup's path in its hierarchy (`/kubepods/pod…/…`).
    pub path: String,
    /// The smallest limit of the cgroup and every ancestor visible from here; `None`: none
    /// of them has one.
    pub limit_bytes: Option<u64>,
    /// The file that limit was read from (a parent's, often: Kubernetes sets the pod's).
    pub limit_file: Option<String>,
    /// `memory.current` / `memory.usage_in_bytes`.
    pub usage_bytes: Option<u64>,
    pub anon_bytes: Option<u64>,
    /// tmpfs (`/dev/shm`), memfd and shared anonymous pages: charged, not reclaimable.
    pub shmem_bytes: Option<u64>,
    pub active_file_bytes: Option<u64>,
    pub inactive_file_bytes: Option<u64>,
    /// `usage − inactive_file`: what the kubelet compares with the limit (and evicts by).
    pub working_set_bytes: Option<u64>,
    /// Files that could not be read as numbers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Reads the cgroup at `at`: its usage and `memory.stat`, and the limits of it and its
/// ancestors up to the hierarchy's mount point.
pub fn read_cgroup(at: &CgroupLocation) -> CgroupFacts {
    let files = match at.version {
        CgroupVersion::V1 => &V1,
        CgroupVersion::V2 => &V2,
    };
    let mut notes = Vec::new();
    let mut limit: Option<(u64, PathBuf)> = None;
    let mut consider = |bytes: Option<u64>, file: PathBuf| {
        if let Some(bytes) = bytes.filter(|&b| at.version == CgroupVersion::V2 || b < V1_UNLIMITED)
        {
            if limit
                .as_ref()
                .map_or(true, |(smallest, _)| bytes < *smallest)
            {
                limit = Some((bytes, file));
            }
        }
    };
    // The folder, then each parent while still inside the mount.
    let mut dir = Some(at.dir.as_path());
    while let Some(d) = dir.filter(|d| d.starts_with(&at.mount_dir)) {
        let file = d.join(files.limit);
        consider(read_number(&file, &mut notes), file);
        dir = d.parent();
    }
    let stat_file = at.dir.join("memory.stat");
    let stat = std::fs::read_to_string(&stat_file).ok();
    let key = |name: &str| -> Option<u64> {
        stat.as_deref()?.lines().find_map(|line| {
            let (k, v) = line.split_once(' ')?;
            (k == name).then(|| v.trim().parse().ok()).flatten()
        })
    };
    // v1's own sum over the ancestors, which a container may not be able to see.
    if at.version == CgroupVersion::V1 {
        consider(key("hierarchical_memory_limit"), stat_file.clone());
    }
    let usage = read_number(&at.dir.join(files.usage), &mut notes);
    let inactive_file = key(files.inactive_file);
    CgroupFacts {
        version: at.version,
        path: at.path.clone(),
        limit_file: limit.as_ref().map(|(_, f)| f.display().to_string()),
        limit_bytes: limit.map(|(b, _)| b),
        usage_bytes: usage,
        anon_bytes: key(files.anon),
        shmem_bytes: key(files.shmem),
        active_file_bytes: key(files.active_file),
        inactive_file_bytes: inactive_file,
        working_set_bytes: usage.zip(inactive_file).map(|(u, i)| u.saturating_sub(i)),
        notes,
    }
}

/// A file holding one number, or `max`; `None` when missing, `max`, or not a number (noted).
fn read_number(path: &Path, notes: &mut Vec<String>) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    if text == "max" {
        return None;
    }
    match text.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            notes.push(format!(
                "{}: not a number ({:?})",
                path.display(),
                crate::report::ellipsize(text, 40)
            ));
            None
        }
    }
}

/// The size of the tmpfs at `/dev/shm` as process `pid` sees it (through its root, so a
/// container's own mount), or as this process sees it; `None` when there is none.
pub fn dev_shm_size(proc_root: &Path, pid: Option<Pid>) -> Option<u64> {
    let path = match pid {
        Some(pid) => proc_root.join(pid.to_string()).join("root/dev/shm"),
        None => PathBuf::from("/dev/shm"),
    };
    crate::proc::host::statvfs(&path)
        .map(|(size, _used)| size)
        .filter(|&size| size > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::cgroup::CgroupReader;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn facts_of(name: &str, pid: Pid) -> CgroupFacts {
        let root = fixture(name);
        let at = CgroupReader::new(root.join("proc"), &root)
            .locate(pid)
            .unwrap()
            .expect("a memory cgroup");
        read_cgroup(&at)
    }

    #[test]
    fn v1_takes_the_smallest_limit_up_the_hierarchy() {
        let f = facts_of("fit-cgroup-v1", 42);
        assert_eq!(f.version, CgroupVersion::V1);
        assert_eq!(f.path, "/kubepods/podA/ctr1");
        // The container says "unlimited" (2^63 − 4096), the pod 2 GiB, kubepods 8 GiB.
        assert_eq!(f.limit_bytes, Some(2 << 30));
        let file = f.limit_file.unwrap();
        assert!(
            file.ends_with("memory/kubepods/podA/memory.limit_in_bytes"),
            "{file}"
        );
        assert_eq!(f.usage_bytes, Some(1_610_612_736));
        assert_eq!(f.anon_bytes, Some(512 << 20));
        assert_eq!(f.shmem_bytes, Some(64 << 20));
        assert_eq!(f.inactive_file_bytes, Some(768 << 20));
        assert_eq!(f.working_set_bytes, Some(1_610_612_736 - (768 << 20)));
        assert!(f.notes.is_empty(), "{:?}", f.notes);
    }

    #[test]
    fn v2_max_is_no_limit_and_missing_files_are_none() {
        let f = facts_of("fit-cgroup-v2", 77);
        assert_eq!(f.version, CgroupVersion::V2);
        // ctr.scope says max; the pod (the namespace's root) 3 GiB.
        assert_eq!(f.limit_bytes, Some(3 << 30));
        assert!(f.limit_file.unwrap().ends_with("sys/fs/cgroup/memory.max"));
        assert_eq!(f.usage_bytes, Some(1_500_000_000));
        // No memory.stat: nothing is known of the page cache, which is not "none".
        assert_eq!(f.inactive_file_bytes, None);
        assert_eq!(f.working_set_bytes, None);
        assert_eq!(f.anon_bytes, None);
    }

    #[test]
    fn unlimited_everywhere_is_none_and_the_v1_hierarchical_limit_counts() {
        let dir = tempfile::tempdir().unwrap();
        let leaf = dir.path().join("a/b");
        std::fs::create_dir_all(&leaf).unwrap();
        let write = |p: &Path, s: &str| std::fs::write(p, s).unwrap();
        write(
            &dir.path().join("memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        write(&leaf.join("memory.limit_in_bytes"), "9223372036854771712\n");
        write(&leaf.join("memory.usage_in_bytes"), "garbage\n");
        let at = CgroupLocation {
            version: CgroupVersion::V1,
            path: "/a/b".into(),
            dir: leaf.clone(),
            mount_dir: dir.path().to_path_buf(),
        };
        let f = read_cgroup(&at);
        assert_eq!(f.limit_bytes, None);
        assert_eq!(f.usage_bytes, None, "not a number is not 0");
        assert_eq!(f.notes.len(), 1, "{:?}", f.notes);
        // A limit set above what the container can see shows in memory.stat only.
        write(
            &leaf.join("memory.stat"),
            "cache 0\nhierarchical_memory_limit 1073741824\n",
        );
        let f = read_cgroup(&at);
        assert_eq!(f.limit_bytes, Some(1 << 30));
        assert!(f.limit_file.unwrap().ends_with("memory.stat"));
        // A v2 folder without memory.max (the root) has no limit either.
        let at = CgroupLocation {
            version: CgroupVersion::V2,
            ..at
        };
        assert_eq!(read_cgroup(&at).limit_bytes, None);
    }

    #[test]
    fn this_machine() {
        // Whatever this machine has, reading it must not fail or invent a zero.
        if let Ok(Some(at)) = CgroupReader::default().locate(std::process::id()) {
            let f = read_cgroup(&at);
            assert_ne!(f.limit_bytes, Some(0));
        }
        let ours = dev_shm_size(Path::new("/proc"), None);
        let via_proc = dev_shm_size(Path::new("/proc"), Some(std::process::id()));
        assert_eq!(ours, via_proc, "the same mount seen two ways");
    }
}
