//! Host memory of the parallel groups a worker joins: the shared-memory broadcaster of the
//! tensor-parallel and decode-context-parallel groups (every platform), NCCL's host buffers
//! (CUDA), and the CPU backend's shared-memory all-reduce (`csrc/cpu/shm.cpp`), which the
//! tensor- and pipeline-parallel groups each create.

use super::components::{n, Ctx, MIB};
use super::releases::cite;
use super::shm::mq;
use crate::attribute::Category;
use crate::engines::Options;
use crate::footprint::{Component, Device};
use crate::units::Checked;

/// `MessageQueue.create_from_process_group(cpu_group, 1 << 22, 6)` for a group of `size`:
/// 6 chunks of 4 MiB plus one metadata byte for the writer and each of `size − 1` readers.
fn broadcaster_bytes(size: u64) -> Checked {
    (n(4 * MIB) + 1 + (size - 1)) * 6
}

/// `sizeof(ThreadSHMContext)` on x86-64 and aarch64: 4 stamps, 6 ints, a size_t, 8 ints,
/// 16 pointers, 2 size_t and 40 bytes of padding.
const THREAD_CONTEXT_BYTES: u64 = 256;
/// `PER_THREAD_SHM_BUFFER_BYTES` (`csrc/cpu/shm.cpp`), the same in every release.
const PER_THREAD_BUFFER: u64 = 4 * MIB;

/// One rank's all-reduce segment: the thread contexts (rounded to 64 bytes) and a 4 MiB
/// buffer per OpenMP thread.
pub(super) fn cpu_allreduce_segment(threads: u64) -> Checked {
    let contexts = (n(threads) * THREAD_CONTEXT_BYTES).div_ceil(64u64) * 64;
    contexts + n(threads) * PER_THREAD_BUFFER
}

/// The group buffers of one worker, and the `/dev/shm` bytes they map per engine.
pub(super) fn group_buffers(cx: &Ctx, options: &Options) -> (Vec<Component>, Checked) {
    let r = cx.r;
    let (tp, pp, dcp) = (
        r.tensor_parallel_size,
        r.pipeline_parallel_size,
        r.decode_context_parallel_size,
    );
    let world = r.world_size();
    let mut out = Vec::new();
    let mut mapped = n(0);
    // GroupCoordinator creates a broadcaster for groups of more than one rank, whatever
    // the platform; one TP group per pipeline stage, world ÷ DCP groups of DCP.
    for (id, size, groups) in [
        ("shm.tp_group_broadcaster", tp, n(pp)),
        ("shm.dcp_group_broadcaster", dcp, n(world) / dcp.max(1)),
    ] {
        if size <= 1 {
            continue;
        }
        let bytes = broadcaster_bytes(size);
        mapped = mapped + bytes * groups;
        out.push(mq(
            cx,
            id,
            bytes,
            format!(
                "(4 MiB + 1 + readers) × 6 = ({} + 1 + {}) × 6 = {bytes}",
                4 * MIB,
                size - 1
            ),
            n(size),
        ));
    }
    if tp > 1 && r.device == Device::Cuda {
        out.push(
            cx.exact(
                "nccl.host_buffers",
                32 * MIB,
                Category::Pinned,
                "NCCL proxy and /dev/shm/nccl-* buffers per rank [est]".into(),
                "NCCL (not vLLM)",
            )
            .range(10 * MIB, 100 * MIB)
            .note("≈ 9 MiB pinned per connection plus small /dev/shm segments (user reports)"),
        );
    }
    if r.device == Device::Cpu {
        if let Some((c, m)) = cpu_allreduce(cx, options, world) {
            mapped = mapped + m;
            out.push(c);
        }
    }
    (out, mapped)
}

/// The CPU backend's all-reduce: each rank of the TP group and of the PP group creates one
/// segment, and every rank maps every rank's segment with `MAP_POPULATE`. Resident per
/// worker (PSS) is one segment per group; RSS and the mapping are group size × segment.
fn cpu_allreduce(cx: &Ctx, options: &Options, world: u64) -> Option<(Component, Checked)> {
    let r = cx.r;
    let groups: Vec<(&str, u64)> = [
        ("TP", r.tensor_parallel_size),
        ("PP", r.pipeline_parallel_size),
    ]
    .into_iter()
    .filter(|(_, size)| *size > 1)
    .collect();
    if groups.is_empty() {
        return None;
    }
    // OpenMP threads per rank: the cores split among the ranks [est].
    let cores = options.cpu_cores.unwrap_or(16);
    let threads = (cores / world.max(1)).max(1);
    let seg = cpu_allreduce_segment(threads);
    let bytes = seg * groups.len() as u64;
    let mapped_here: Checked = groups.iter().map(|(_, size)| seg * *size).sum();
    let names: Vec<String> = groups.iter().map(|(g, s)| format!("{g} {s}")).collect();
    let c = cx
        .exact(
            "shm.cpu_allreduce",
            bytes,
            Category::Shm,
            format!(
                "groups × (threads × (4 MiB + 256 B)) = {} × ({threads} × {}) ({}; threads = {cores} cores ÷ {world} ranks)",
                groups.len(),
                PER_THREAD_BUFFER + THREAD_CONTEXT_BYTES,
                names.join(", ")
            ),
            cite(
                r.version,
                &[
                    (10, "csrc/cpu/shm.cpp:10,258-302@0.10.2"),
                    (33, "csrc/cpu/shm.cpp:14,308-352@0.33.0"),
                ],
            ),
        )
        .range(bytes / 2, bytes * 2)
        .mapped(mapped_here)
        .note("MAP_POPULATE: resident from start-up; every rank maps all of its group's segments (RSS = group size × segment, PSS = one segment)");
    // Per engine: every rank's segment, once per group.
    Some((c, seg * world * groups.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::vllm::test_util::{built, component};
    use crate::engines::vllm::Version;
    use crate::proc::roles::Role;

    #[test]
    fn a_segment_is_four_mib_per_thread_plus_contexts() {
        // 8 threads: contexts 8 × 256 = 2048 (a multiple of 64), buffers 8 × 4 MiB.
        assert_eq!(cpu_allreduce_segment(8).raw(), 2048 + 8 * 4 * 1024 * 1024);
        // 3 threads: 768 B of contexts, already 64-aligned.
        assert_eq!(cpu_allreduce_segment(3).raw(), 768 + 3 * 4 * 1024 * 1024);
    }

    #[test]
    fn cpu_tp_and_pp_groups_each_map_every_ranks_segment() {
        // 16 cores, TP 2 × PP 2 = 4 ranks → 4 threads: segment 4 × (4 MiB + 256) =
        // 16,778,240 B. Two groups: PSS 2 segments, mapped 2 + 2 segments per worker.
        let b = built("-tp 2 -pp 2", Version::V0_33, Device::Cpu);
        let c = component(&b, Role::Worker, "shm.cpu_allreduce").expect("all-reduce");
        assert_eq!(c.bytes, 2 * 16_778_240);
        assert_eq!(c.mapped_bytes, Some(4 * 16_778_240));
        // The TP group's broadcaster exists on the CPU backend too: (4 MiB + 2) × 6.
        let mq = component(&b, Role::Worker, "shm.tp_group_broadcaster").expect("broadcaster");
        assert_eq!(mq.mapped_bytes, Some((4 * 1024 * 1024 + 2) * 6));
        // TP 2 alone: 8 threads, one group.
        let b = built("-tp 2", Version::V0_33, Device::Cpu);
        let c = component(&b, Role::Worker, "shm.cpu_allreduce").unwrap();
        assert_eq!(c.bytes, 8 * (4 * 1024 * 1024 + 256));
    }

    #[test]
    fn decode_context_parallel_groups_have_their_own_broadcaster() {
        // TP 4 with DCP 2: a DCP group of 2 → (4 MiB + 1 + 1) × 6.
        let b = built("-tp 4 -dcp 2", Version::V0_33, Device::Cuda);
        let mq = component(&b, Role::Worker, "shm.dcp_group_broadcaster").expect("dcp");
        assert_eq!(mq.mapped_bytes, Some((4 * 1024 * 1024 + 2) * 6));
        let b = built("-tp 4", Version::V0_33, Device::Cuda);
        assert!(component(&b, Role::Worker, "shm.dcp_group_broadcaster").is_none());
    }
}
