//! Ollama's own start-up check: it reads the host's free memory its own way and refuses a
//! model it thinks will not fit, before the kernel has a say (docs/ollama-host-ram.md §6).
//!
//! Up to 0.24 it refuses with "model requires more system memory (X) than is available (Y)"
//! when what it computes for the host side of the model is more than free memory plus free
//! swap; from 0.13.0 "free" inside a memory cgroup is `memory.max − memory.current`, which
//! counts reclaimable page cache as used (ollama#15704), and with `memory.max` = `max` it is
//! `MemTotal − memory.current`. From 0.30.0 (llama-server runners) Ollama refuses nothing by
//! this arithmetic: the same reading only decides whether to map the model
//! ([`mmap_off_for_host_pressure`]).

use crate::host::{HostMemory, Refusal};

use super::releases::{FreeMemory, Generation, Release};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
const KIB: u64 = 1 << 10;
const GB: u64 = 1_000_000_000;

/// Bytes as Ollama's `format.HumanBytes2` writes them: one decimal, binary units
/// (format/bytes.go:52-63@v0.24.0).
pub fn human_bytes2(b: u64) -> String {
    let one = |unit: u64, name: &str| format!("{:.1} {name}", b as f64 / unit as f64);
    if b >= GIB {
        one(GIB, "GiB")
    } else if b >= MIB {
        one(MIB, "MiB")
    } else if b >= KIB {
        one(KIB, "KiB")
    } else {
        format!("{b} B")
    }
}

/// What Ollama reads as free memory, and how it got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeReading {
    pub free: u64,
    pub swap: u64,
    /// The reading with its numbers (`memory.max 32.0 GiB − memory.current 21.2 GiB`).
    pub how: String,
    /// `memory.current` was above the total, and Ollama's unsigned subtraction wrapped to a
    /// number near 2^64: it sees all the memory in the world.
    pub wrapped: bool,
}

/// Ollama's free-memory reading on `host` (discover/cpu_linux.go:23-74@v0.32.15; before
/// 0.13.0 `MemAvailable` alone); `None` when the numbers it needs are not known.
pub fn free_memory(method: FreeMemory, host: &HostMemory) -> Option<FreeReading> {
    let swap = host.swap_free_bytes.unwrap_or(0);
    let available = host.mem_available_bytes.map(|free| FreeReading {
        free,
        swap,
        how: format!("MemAvailable {}", human_bytes2(free)),
        wrapped: false,
    });
    match (method, host.usage_bytes) {
        (FreeMemory::MemAvailable, _) | (FreeMemory::CgroupMaxMinusCurrent, None) => available,
        (FreeMemory::CgroupMaxMinusCurrent, Some(used)) => {
            let (total, total_name) = match (host.limit_bytes, host.mem_total_bytes) {
                (Some(limit), _) => (limit, "memory.max"),
                // memory.max = "max" does not parse, so the total stays MemTotal, yet free
                // is still overwritten (ollama#15961).
                (None, Some(total)) => (total, "MemTotal (memory.max is max)"),
                (None, None) => return None,
            };
            let wrapped = used > total;
            let free = total.wrapping_sub(used);
            Some(FreeReading {
                free,
                swap,
                how: format!(
                    "{total_name} {} − memory.current {} (page cache included)",
                    human_bytes2(total),
                    human_bytes2(used)
                ),
                wrapped,
            })
        }
    }
}

/// Ollama's verdict on starting a model whose host side it computes as `required` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Refused(Refusal),
    /// It starts; the comparison that let it.
    Starts(String),
    /// This release makes no such check.
    NoCheck(String),
    /// The free memory Ollama would read is not known.
    Unknown(String),
}

/// Where each generation's check is, for [`Refusal::source`].
fn source(generation: Generation, release: &Release) -> String {
    let check = match generation {
        Generation::Estimator => "llm/server.go:166-173@v0.9.6",
        Generation::Layouts => "llm/server.go:1075-1081@v0.24.0",
        Generation::LlamaServer => "server/sched.go:1227-1260@v0.32.15",
    };
    format!(
        "{check}; free memory {} (docs/ollama-host-ram.md §6)",
        release.free_memory.at
    )
}

/// Decides as Ollama `release` does for a model it sizes at `required` bytes on the host.
pub fn check(release: &Release, required: u64, host: &HostMemory) -> Verdict {
    let generation = release.generation.value;
    if generation == Generation::LlamaServer {
        return Verdict::NoCheck(format!(
            "Ollama {} starts llama-server without a system-memory check of its own (none in llm/ or server/ at v0.30.0 – v0.32.15); its free-memory reading only decides whether to map the model",
            release.version
        ));
    }
    let Some(reading) = free_memory(release.free_memory.value, host) else {
        return Verdict::Unknown(
            "the free memory Ollama would read (MemAvailable, or memory.current with memory.max or MemTotal) is not known".into(),
        );
    };
    let available = reading.free.saturating_add(reading.swap);
    let what = match generation {
        Generation::Estimator => "its estimate's total minus what goes to VRAM",
        _ => "the input weights, the CPU compute graph and the CPU layers' weights and cache",
    };
    let mut arithmetic = format!(
        "required {} ({what}) {} available {} = free {} ({}) + free swap {}",
        human_bytes2(required),
        if required > available { ">" } else { "≤" },
        human_bytes2(available),
        human_bytes2(reading.free),
        reading.how,
        human_bytes2(reading.swap),
    );
    if reading.wrapped {
        arithmetic.push_str(
            "; memory.current is above the total, so Ollama's unsigned subtraction wrapped and it sees almost 2^64 bytes free",
        );
    }
    if let (Some(used), Some(file)) = (host.usage_bytes, host.usage_file_bytes) {
        if release.free_memory.value == FreeMemory::CgroupMaxMinusCurrent && file > 0 {
            let total = host.limit_bytes.or(host.mem_total_bytes).unwrap_or(0);
            let kernel = total.saturating_sub(used.saturating_sub(file));
            arithmetic.push_str(&format!(
                "; {} of it is page cache the kernel reclaims, which leaves {} for the model",
                human_bytes2(file.min(used)),
                human_bytes2(kernel)
            ));
        }
    }
    if required > available {
        Verdict::Refused(Refusal {
            message: format!(
                "model requires more system memory ({}) than is available ({})",
                human_bytes2(required),
                human_bytes2(available)
            ),
            arithmetic,
            source: source(generation, release),
        })
    } else {
        Verdict::Starts(arithmetic)
    }
}

/// From 0.30.0, on Linux with only discrete GPUs and the model predicted to fit them, Ollama
/// loads without mmap when its free-memory reading is below the model's size plus the mapped
/// size of the models already loaded plus max(8 GB, total/10) (server/sched.go:1227-1260
/// @v0.32.15): weights then sit in anonymous memory, not reclaimable page cache.
pub fn mmap_off_for_host_pressure(
    model_bytes: u64,
    loaded_mapped_bytes: u64,
    free: u64,
    total: u64,
) -> bool {
    let headroom = if total == 0 {
        8 * GB
    } else {
        (8 * GB).max(total / 10)
    };
    let pressure = model_bytes
        .saturating_add(loaded_mapped_bytes)
        .saturating_add(headroom);
    free > 0 && free < pressure
}

#[cfg(test)]
mod tests;
