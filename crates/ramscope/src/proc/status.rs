//! `/proc/<pid>/status` and `/proc/<pid>/stat`: cheap per-process counters.

use super::Pid;

/// The fields of `status` ramscope uses, in bytes where they are sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    pub ppid: Pid,
    pub uid: u32,
    pub threads: u32,
    pub vm_rss: u64,
    pub vm_hwm: u64,
    pub vm_swap: u64,
    pub rss_anon: u64,
    pub rss_file: u64,
    pub rss_shmem: u64,
    pub vm_size: u64,
    pub vm_locked: u64,
    pub vm_pinned: u64,
}

impl Status {
    pub fn parse(text: &str) -> Status {
        let mut s = Status::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            let kb = || {
                value
                    .strip_suffix(" kB")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .and_then(|v| v.checked_mul(1024))
                    .unwrap_or(0)
            };
            match key {
                "Name" => s.name = value.to_string(),
                "PPid" => s.ppid = value.parse().unwrap_or(0),
                "Uid" => {
                    s.uid = value
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                }
                "Threads" => s.threads = value.parse().unwrap_or(0),
                "VmRSS" => s.vm_rss = kb(),
                "VmHWM" => s.vm_hwm = kb(),
                "VmSwap" => s.vm_swap = kb(),
                "RssAnon" => s.rss_anon = kb(),
                "RssFile" => s.rss_file = kb(),
                "RssShmem" => s.rss_shmem = kb(),
                "VmSize" => s.vm_size = kb(),
                "VmLck" => s.vm_locked = kb(),
                "VmPin" => s.vm_pinned = kb(),
                _ => {}
            }
        }
        s
    }
}

/// The parent PID from `/proc/<pid>/stat` (field 4, after the parenthesised command name,
/// which may itself contain spaces and parentheses).
pub fn ppid_from_stat(stat: &str) -> Option<Pid> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// Process start time in clock ticks since boot (field 22 of `stat`), to tell a reused PID
/// from the process that had it.
pub fn start_time_from_stat(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// What a process is, as far as reading its memory goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A user process that is running (or sleeping): it has an address space.
    Live,
    /// Exited and waiting to be reaped (`Z`), or being torn down (`X`): its memory is gone.
    Exited,
    /// A kernel thread: it never had user memory.
    KernelThread,
}

/// `PF_KTHREAD` in the flags of `stat` (field 9).
const PF_KTHREAD: u64 = 0x0020_0000;

/// The kind of process from `/proc/<pid>/stat`: its state (field 3) and flags (field 9).
pub fn kind_from_stat(stat: &str) -> Option<Kind> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?;
    let flags: u64 = fields.nth(5)?.parse().ok()?;
    Some(if flags & PF_KTHREAD != 0 {
        Kind::KernelThread
    } else if matches!(state, "Z" | "X" | "x") {
        Kind::Exited
    } else {
        Kind::Live
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let s = Status::parse(
            "Name:\tpython3\nPPid:\t412\nUid:\t1000\t1000\t1000\t1000\nThreads:\t47\nVmRSS:\t 1166000 kB\nRssShmem:\t  544768 kB\nVmHWM:\t 1166000 kB\n",
        );
        assert_eq!(s.name, "python3");
        assert_eq!(s.ppid, 412);
        assert_eq!(s.uid, 1000);
        assert_eq!(s.threads, 47);
        assert_eq!(s.vm_rss, 1166000 * 1024);
        assert_eq!(s.rss_shmem, 544768 * 1024);
    }

    #[test]
    fn stat_with_odd_names() {
        let stat = "1234 (VLLM::Worker (x) y) S 77 1234 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 47 0 98765 100 ";
        assert_eq!(ppid_from_stat(stat), Some(77));
        assert_eq!(start_time_from_stat(stat), Some(98765));
        assert_eq!(ppid_from_stat("garbage"), None);
        assert_eq!(kind_from_stat(stat), Some(Kind::Live));
        assert_eq!(kind_from_stat("garbage"), None);
    }

    #[test]
    fn kernel_threads_and_zombies() {
        // kthreadd, as this kernel shows it, and a zombie.
        let kthreadd = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 3 0 0 20 0 1 0 1 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
        assert_eq!(kind_from_stat(kthreadd), Some(Kind::KernelThread));
        let zombie = "77 (python3) Z 1 77 77 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0";
        assert_eq!(kind_from_stat(zombie), Some(Kind::Exited));
    }

    #[test]
    fn this_machines_kthreadd_is_a_kernel_thread() {
        // PID 2 is kthreadd on Linux, unless a PID namespace hides it.
        if let Ok(stat) = std::fs::read_to_string("/proc/2/stat") {
            if stat.contains("(kthreadd)") {
                assert_eq!(kind_from_stat(&stat), Some(Kind::KernelThread));
            }
        }
        let me = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert_eq!(kind_from_stat(&me), Some(Kind::Live));
    }
}
