//! Machine-wide settings that decide whether a server fits: available memory, swap,
//! overcommit, transparent huge pages, and the size of the `/dev/shm` a process sees.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Pid;

/// What `/proc/meminfo` and `/proc/sys/vm` say, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMemory {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_free_bytes: u64,
    /// tmpfs and shared memory in use, machine-wide.
    pub shmem_bytes: u64,
    /// `vm.overcommit_memory`: 0 heuristic, 1 always, 2 never.
    pub overcommit_memory: Option<u8>,
    /// The selected mode of `/sys/kernel/mm/transparent_hugepage/enabled`.
    pub transparent_hugepages: Option<String>,
}

/// A tmpfs (normally `/dev/shm`) as a given process sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShmMount {
    pub path: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
}

impl HostMemory {
    /// Reads `<proc_root>/meminfo` and the vm settings; missing pieces stay empty.
    pub fn read(proc_root: &Path, sys_root: &Path) -> std::io::Result<HostMemory> {
        let meminfo = std::fs::read_to_string(proc_root.join("meminfo"))?;
        let mut h = HostMemory::parse_meminfo(&meminfo);
        h.overcommit_memory = std::fs::read_to_string(proc_root.join("sys/vm/overcommit_memory"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        h.transparent_hugepages =
            std::fs::read_to_string(sys_root.join("kernel/mm/transparent_hugepage/enabled"))
                .ok()
                .and_then(|s| selected_mode(&s));
        Ok(h)
    }

    pub fn parse_meminfo(text: &str) -> HostMemory {
        let mut h = HostMemory::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let kb = value
                .trim()
                .trim_end_matches(" kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0);
            let bytes = kb.saturating_mul(1024);
            match key {
                "MemTotal" => h.total_bytes = bytes,
                "MemAvailable" => h.available_bytes = bytes,
                "SwapTotal" => h.swap_total_bytes = bytes,
                "SwapFree" => h.swap_free_bytes = bytes,
                "Shmem" => h.shmem_bytes = bytes,
                _ => {}
            }
        }
        h
    }
}

/// `always [madvise] never` → `madvise`.
fn selected_mode(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let end = text[start..].find(']')? + start;
    Some(text[start..end].to_string())
}

/// The `/dev/shm` of `pid`'s mount namespace (through `/proc/<pid>/root`), or ours when that
/// is not readable.
pub fn dev_shm_of(proc_root: &Path, pid: Pid) -> Option<ShmMount> {
    let theirs = proc_root.join(pid.to_string()).join("root/dev/shm");
    statvfs(&theirs)
        .or_else(|| statvfs(Path::new("/dev/shm")))
        .map(|(size, used)| ShmMount {
            path: "/dev/shm".into(),
            size_bytes: size,
            used_bytes: used,
        })
}

/// (size, used) of the file system holding `path`.
pub fn statvfs(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(PathBuf::from(path).as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and st a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut st) };
    if rc != 0 {
        return None;
    }
    let block = st.f_frsize as u64;
    let size = st.f_blocks as u64 * block;
    let free = st.f_bfree as u64 * block;
    Some((size, size.saturating_sub(free)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo() {
        let h = HostMemory::parse_meminfo(
            "MemTotal:       24576000 kB\nMemFree:  1 kB\nMemAvailable:   20000000 kB\nShmem:  9000 kB\nSwapTotal:  0 kB\n",
        );
        assert_eq!(h.total_bytes, 24576000 * 1024);
        assert_eq!(h.available_bytes, 20000000 * 1024);
        assert_eq!(h.shmem_bytes, 9000 * 1024);
    }

    #[test]
    fn this_machine() {
        let h = HostMemory::read(Path::new("/proc"), Path::new("/sys")).unwrap();
        assert!(h.total_bytes > 0 && h.available_bytes <= h.total_bytes);
        assert!(h.overcommit_memory.is_some());
        let shm = dev_shm_of(Path::new("/proc"), std::process::id()).expect("/dev/shm");
        assert!(shm.size_bytes > 0);
        assert_eq!(
            selected_mode("always [madvise] never").as_deref(),
            Some("madvise")
        );
    }
}
