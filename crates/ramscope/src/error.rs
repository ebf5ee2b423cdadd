//! Errors as values, each with the context a user needs to act on it.

use std::io;
use std::path::{Path, PathBuf};

use crate::proc::Pid;

/// Failures reading one process's files under `/proc`.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("no process with PID {pid}")]
    NoSuchProcess { pid: Pid },
    #[error(
        "permission denied reading {}: run ramscope as the process's user, as root, or with CAP_SYS_PTRACE",
        path.display()
    )]
    PermissionDenied { pid: Pid, path: PathBuf },
    #[error("process {pid} exited while it was being read")]
    Vanished { pid: Pid },
    #[error("{} is not available on this kernel", path.display())]
    Unsupported { pid: Pid, path: PathBuf },
    #[error("cannot parse {}: {source}", path.display())]
    Parse {
        pid: Pid,
        path: PathBuf,
        source: crate::proc::smaps::ParseError,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        pid: Pid,
        path: PathBuf,
        source: io::Error,
    },
}

impl ProcError {
    /// Maps an I/O error on `/proc/<pid>/<file>` to what it means for that process.
    pub fn from_io(pid: Pid, path: &Path, e: io::Error) -> ProcError {
        let pid_dir_exists = path.parent().is_some_and(|d| d.exists());
        match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => ProcError::PermissionDenied {
                pid,
                path: path.to_path_buf(),
            },
            // ESRCH: the task went away between open and read.
            Some(libc::ESRCH) => ProcError::Vanished { pid },
            Some(libc::ENOENT) if pid_dir_exists => ProcError::Unsupported {
                pid,
                path: path.to_path_buf(),
            },
            Some(libc::ENOENT) => ProcError::NoSuchProcess { pid },
            _ => ProcError::Io {
                pid,
                path: path.to_path_buf(),
                source: e,
            },
        }
    }

    pub fn pid(&self) -> Pid {
        match self {
            ProcError::NoSuchProcess { pid }
            | ProcError::PermissionDenied { pid, .. }
            | ProcError::Vanished { pid }
            | ProcError::Unsupported { pid, .. }
            | ProcError::Parse { pid, .. }
            | ProcError::Io { pid, .. } => *pid,
        }
    }

    /// The process is gone (before or during the read): in a tree that is normal churn.
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            ProcError::NoSuchProcess { .. } | ProcError::Vanished { .. }
        )
    }
}
