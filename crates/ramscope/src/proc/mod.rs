//! Reading `/proc`: one job per module, all through a [`ProcFs`] whose root can be moved so
//! tests can run on captured files.

pub mod cgroup;
pub mod host;
pub mod roles;
pub mod smaps;
pub mod status;
pub mod tree;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::ProcError;

/// A process id.
pub type Pid = u32;

/// Where `/proc` lives (normally `/proc`).
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
}

impl Default for ProcFs {
    fn default() -> Self {
        ProcFs::new("/proc")
    }
}

impl ProcFs {
    pub fn new(root: impl Into<PathBuf>) -> ProcFs {
        ProcFs { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pid_path(&self, pid: Pid, file: &str) -> PathBuf {
        self.root.join(pid.to_string()).join(file)
    }

    /// Reads `/proc/<pid>/<file>` into `buf` (cleared first, capacity kept), mapping the
    /// errno values that mean "gone" or "not yours" to their own errors.
    pub fn read_into(&self, pid: Pid, file: &str, buf: &mut Vec<u8>) -> Result<(), ProcError> {
        buf.clear();
        let path = self.pid_path(pid, file);
        let result = std::fs::File::open(&path).and_then(|mut f| f.read_to_end(buf));
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(ProcError::from_io(pid, &path, e)),
        }
    }

    pub fn read_string(&self, pid: Pid, file: &str) -> Result<String, ProcError> {
        let mut buf = Vec::new();
        self.read_into(pid, file, &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// `cmdline` with its NUL separators turned into spaces (empty for kernel threads and
    /// zombies).
    pub fn cmdline(&self, pid: Pid) -> Result<Vec<String>, ProcError> {
        let mut buf = Vec::new();
        self.read_into(pid, "cmdline", &mut buf)?;
        Ok(split_cmdline(&buf))
    }

    pub fn comm(&self, pid: Pid) -> Result<String, ProcError> {
        Ok(self.read_string(pid, "comm")?.trim_end().to_string())
    }

    /// Every numeric entry of the proc root: the processes (thread-group leaders).
    pub fn pids(&self) -> io::Result<Vec<Pid>> {
        let mut pids = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            if let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<Pid>().ok())
            {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        Ok(pids)
    }

    pub fn exists(&self, pid: Pid) -> bool {
        self.root.join(pid.to_string()).exists()
    }
}

/// Splits a NUL-separated command line. A process that rewrote its title (setproctitle) may
/// use spaces instead of NULs; that comes back as one argument, which is what it shows.
pub fn split_cmdline(buf: &[u8]) -> Vec<String> {
    buf.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}
