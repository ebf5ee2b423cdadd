//! Errors as values, each with the context a user needs to act on it.

use std::io;
use std::path::{Path, PathBuf};

use crate::proc::Pid;

/// Failures reading one process's files under `/proc`.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("no process with PID {pid}")]
    NoSuchProcess { pid: Pid },
    /// `hint` says what would let ramscope read it, from who ramscope runs as.
    #[error("permission denied reading {}: {hint}", path.display())]
    PermissionDenied {
        pid: Pid,
        path: PathBuf,
        hint: String,
    },
    #[error("process {pid} exited while it was being read")]
    Vanished { pid: Pid },
    #[error("PID {pid} is a kernel thread: it has no user memory to measure")]
    KernelThread { pid: Pid },
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
                hint: permission_hint(&Privileges::current(), path),
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
            | ProcError::KernelThread { pid }
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

/// `CAP_SYS_PTRACE`: reading another user's (or a more privileged) process's memory maps.
const CAP_SYS_PTRACE: u32 = 19;

/// Capability names by number (linux/capability.h), without `CAP_`.
const CAP_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Who ramscope runs as, for the permission hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Privileges {
    euid: u32,
    /// Effective capabilities (`CapEff`), `None` when unknown.
    caps: Option<u64>,
}

impl Privileges {
    fn current() -> Privileges {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        let caps = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| cap_field(&s, "CapEff"));
        Privileges { euid, caps }
    }
}

/// A capability set from a `status` text (`CapEff:\t000001ffffffffff`).
fn cap_field(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(name)?.strip_prefix(':')?;
        u64::from_str_radix(v.trim(), 16).ok()
    })
}

/// What would let ramscope read `path` (`/proc/<pid>/<file>`), given who it runs as. Root is
/// never told to run as root: then something else refused it.
fn permission_hint(me: &Privileges, path: &Path) -> String {
    // The target's permitted capabilities (its `status` is readable by anyone).
    let target_caps = path
        .parent()
        .and_then(|d| std::fs::read_to_string(d.join("status")).ok())
        .and_then(|s| cap_field(&s, "CapPrm"));
    hint_for(me, target_caps)
}

fn hint_for(me: &Privileges, target_caps: Option<u64>) -> String {
    let ptrace = me.caps.is_some_and(|c| c & (1 << CAP_SYS_PTRACE) != 0);
    let lacking = match (me.caps, target_caps) {
        (Some(mine), Some(theirs)) => theirs & !mine,
        _ => 0,
    };
    if me.euid != 0 && !ptrace {
        return "run ramscope as the process's user, as root, or with CAP_SYS_PTRACE".into();
    }
    let who = if me.euid == 0 { "root" } else { "a user" };
    if !ptrace {
        return format!(
            "ramscope runs as {who} but without CAP_SYS_PTRACE, which reading another user's process needs (in a container: --cap-add SYS_PTRACE)"
        );
    }
    if lacking != 0 {
        let names: Vec<String> = (0..64)
            .filter(|bit| lacking & (1 << bit) != 0)
            .map(|bit| match CAP_NAMES.get(bit) {
                Some(name) => format!("CAP_{name}"),
                None => format!("capability {bit}"),
            })
            .collect();
        return format!(
            "ramscope runs as {who} with CAP_SYS_PTRACE, but the process holds capabilities ramscope lacks ({}): run ramscope with them too (a container or a reduced bounding set took them away)",
            names.join(", ")
        );
    }
    format!(
        "ramscope already runs as {who} with CAP_SYS_PTRACE, so something else refuses it: the process may be in another user namespace, /proc may be mounted with hidepid=, or a security module (Yama ptrace_scope 3, AppArmor, SELinux) forbids it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u64 = 0x1ff_ffff_ffff;

    #[test]
    fn the_hint_fits_who_ramscope_runs_as() {
        let user = Privileges {
            euid: 1000,
            caps: Some(0),
        };
        assert!(hint_for(&user, Some(0)).contains("as root, or with CAP_SYS_PTRACE"));
        // Root never hears "run as root".
        let root_no_ptrace = Privileges {
            euid: 0,
            caps: Some(ALL & !(1 << CAP_SYS_PTRACE)),
        };
        let h = hint_for(&root_no_ptrace, Some(0));
        assert!(!h.contains("as root,"), "{h}");
        assert!(h.contains("--cap-add SYS_PTRACE"), "{h}");
        // This machine's case: root with CAP_SYS_PTRACE but not CAP_SYS_RESOURCE (24), and a
        // target that has it.
        let root = Privileges {
            euid: 0,
            caps: Some(ALL & !(1 << 24)),
        };
        let h = hint_for(&root, Some(ALL));
        assert!(
            h.contains("capabilities ramscope lacks (CAP_SYS_RESOURCE)"),
            "{h}"
        );
        let h = hint_for(&root, Some(ALL | 1 << 50));
        assert!(h.contains("(CAP_SYS_RESOURCE, capability 50)"), "{h}");
        let h = hint_for(&root, Some(0));
        assert!(h.contains("hidepid"), "{h}");
        assert!(!h.contains("as root,"), "{h}");
    }

    #[test]
    fn capability_sets_parse() {
        let status = "Name:\tx\nCapPrm:\t000001ffffffffff\nCapEff:\t0000000000080000\n";
        assert_eq!(cap_field(status, "CapPrm"), Some(ALL));
        assert_eq!(cap_field(status, "CapEff"), Some(1 << CAP_SYS_PTRACE));
        assert_eq!(cap_field(status, "CapBnd"), None);
    }
}
