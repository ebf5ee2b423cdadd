//! The shared-memory message queues between an EngineCore and its workers
//! (`shm_broadcast.py`'s `MessageQueue` in `/dev/shm`): the RPC broadcast queue, one response
//! queue per worker, and the optional tensor arena. Each is mapped by every process that
//! reads or writes it, so a queue's resident pages are shared out by PSS.

use crate::attribute::Category;
use crate::engines::Options;
use crate::footprint::Component;
use crate::units::Checked;

use super::collectives;
use super::components::{n, Ctx, KIB, MIB};
use super::defaults::Resolved;

/// Resident pages of a message queue at rest: the metadata page and a few chunks' first
/// pages (measured: 44 KiB after 16 requests), split between writer and reader by PSS.
const MQ_RESIDENT: u64 = 44 * KIB;

pub(super) fn mq(
    cx: &Ctx,
    id: &str,
    mapped: Checked,
    formula: String,
    mappers: Checked,
) -> Component {
    let mappers = mappers.max(1);
    let share = n(MQ_RESIDENT) / mappers;
    cx.exact(
        id,
        share,
        Category::Shm,
        format!("{formula}; resident ≈ 44 KiB ÷ {mappers} processes"),
        "vllm/distributed/device_communicators/shm_broadcast.py",
    )
    .range(share, mapped / mappers)
    .mapped(mapped)
    .note("/dev/shm/psm_*: sparse; pages become resident only as messages are written")
}

fn broadcast_size(r: &Resolved, readers: u64) -> (Checked, String) {
    let chunk = r.mq_broadcast_chunk_bytes;
    let bytes = (n(chunk) + 1 + readers) * 10;
    (
        bytes,
        format!(
            "(VLLM_MQ_MAX_CHUNK_BYTES_MB + 1 + readers) × 10 = ({} + 1 + {readers}) × 10 = {bytes}",
            chunk
        ),
    )
}

fn response_size(r: &Resolved) -> (Checked, String) {
    let chunk = r.mq_response_chunk_bytes;
    let bytes = (n(chunk) + 2) * 10;
    (
        bytes,
        format!("(max_chunk_bytes + 2) × 10 = ({chunk} + 2) × 10 = {bytes}"),
    )
}

pub(super) fn message_queues_engine(cx: &Ctx, workers: u64) -> (Vec<Component>, Checked) {
    let r = cx.r;
    let (bc, bf) = broadcast_size(r, workers);
    let (rs, rf) = response_size(r);
    let mut out = vec![mq(cx, "shm.rpc_broadcast_mq", bc, bf, n(workers) + 1)];
    // The engine reads every worker's response queue: one queue's share, times the queues.
    let one = mq(cx, "shm.worker_response_mqs", rs, rf.clone(), n(2));
    let (bytes, low, high) = (
        n(one.bytes) * workers,
        n(one.low_bytes) * workers,
        n(one.high_bytes) * workers,
    );
    let mut resp = one.with_bytes(bytes).range(low, high).mapped(rs * workers);
    resp.formula = format!(
        "{workers} queues, each {rf} mapped; resident ≈ {workers} × 44 KiB ÷ 2 processes = {}",
        bytes.raw()
    );
    out.push(resp);
    let mut mapped = bc + rs * workers;
    if r.shm_tensor_arena {
        let arena = (n(256 * MIB) + 1 + workers) * 8;
        mapped = mapped + arena;
        out.push(mq(
            cx,
            "shm.tensor_arena",
            arena,
            format!("(256 MiB + 1 + readers) × 8 = {arena}"),
            n(workers) + 1,
        ));
    }
    (out, mapped)
}

pub(super) fn message_queues_worker(
    cx: &Ctx,
    workers: u64,
    options: &Options,
) -> (Vec<Component>, Checked) {
    let r = cx.r;
    let (bc, bf) = broadcast_size(r, workers);
    let (rs, rf) = response_size(r);
    let mut out = vec![
        mq(cx, "shm.rpc_broadcast_mq", bc, bf, n(workers) + 1),
        mq(cx, "shm.worker_response_mq", rs, rf, n(2)),
    ];
    // The parallel groups' broadcasters, NCCL and the CPU all-reduce.
    let (groups, mapped) = collectives::group_buffers(cx, options);
    out.extend(groups);
    (out, mapped)
}

#[cfg(test)]
mod tests {
    use crate::engines::vllm::test_util::{built, component};
    use crate::engines::vllm::Version;
    use crate::footprint::Device;
    use crate::proc::roles::Role;

    #[test]
    fn the_engines_response_queues_show_every_queues_bytes() {
        // TP 4: four workers, each with a response queue of (24 MiB + 2) × 10 B mapped, read
        // by EngineCore: 4 × 44 KiB ÷ 2 processes = 90,112 B resident, 4 × 251,658,260 mapped.
        let b = built(
            "vllm serve M --max-model-len 5120 -tp 4",
            Version::V0_33,
            Device::Cuda,
        );
        let c = component(&b, Role::EngineCore, "shm.worker_response_mqs").expect("queues");
        assert_eq!(c.bytes, 90_112);
        assert_eq!(c.mapped_bytes, Some(4 * 251_658_260));
        assert_eq!(c.high_bytes, 4 * 251_658_260 / 2);
        assert!(
            c.formula
                .starts_with("4 queues, each (max_chunk_bytes + 2) × 10"),
            "{}",
            c.formula
        );
        assert!(
            c.formula.ends_with("4 × 44 KiB ÷ 2 processes = 90112"),
            "{}",
            c.formula
        );
    }
}
