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
    }
}
