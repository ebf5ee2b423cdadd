//! What the machine or container a server runs in offers it: physical memory, the memory
//! cgroup's limit and usage, and the size of `/dev/shm`. A fit check compares an estimate
//! with it; an engine models its own start-up check against it ([`crate::engines::Launch::refusal`]).
//! Every field is `None` when it is not known, which is not the same as zero (an unlimited
//! cgroup has no limit, not a limit of 0).

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostMemory {
    /// `MemTotal` of `/proc/meminfo` (or what `--node-memory` says).
    pub mem_total_bytes: Option<u64>,
    /// `MemAvailable` of `/proc/meminfo`.
    pub mem_available_bytes: Option<u64>,
    /// `SwapFree` of `/proc/meminfo`.
    pub swap_free_bytes: Option<u64>,
    /// The memory cgroup's limit (`memory.max`, v1 `memory.limit_in_bytes`, or
    /// `--memory-limit`); `None`: no limit.
    pub limit_bytes: Option<u64>,
    /// What the cgroup is charged now (`memory.current`, v1 `memory.usage_in_bytes`).
    pub usage_bytes: Option<u64>,
    /// The page cache inside that usage (`active_file + inactive_file`).
    pub usage_file_bytes: Option<u64>,
    /// Size of the tmpfs at `/dev/shm` (or what `--shm-size` says).
    pub shm_size_bytes: Option<u64>,
}

/// An engine refusing to start by its own arithmetic, before the kernel has a say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// What the engine prints, as it words it.
    pub message: String,
    /// Its arithmetic with the numbers filled in (`required 10.2 GiB > free = memory.max −
    /// memory.current = 2.9 GiB`).
    pub arithmetic: String,
    /// Where the check is (`file:line@release`, from a document in docs/).
    pub source: String,
}
