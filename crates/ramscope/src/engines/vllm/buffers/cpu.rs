//! The CPU backend's runner: `CPUModelRunner` subclasses the GPU runner V1, so it allocates
//! the same buffers as each release's V1 runner ([`super::v1_core`]), with nothing pinned
//! (`pin_memory` is off on CPU). It then points every device copy at its host copy
//! (`_postprocess_tensors`), so a buffer the V1 runner keeps on the device only is host
//! memory here.

use crate::engines::vllm::components::{n, Ctx};
use crate::footprint::Component;

use super::v1_core::v1_core_buffers;

/// CPU backend: the V1 runner's buffers as plain heap, and its device-only tensors, which
/// the CPU device puts in host memory (docs/vllm-host-ram.md §5).
pub(in crate::engines::vllm) fn cpu_runner_buffers(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let rel = r.version.release();
    let (rr, t) = (n(r.max_num_seqs), n(r.max_num_batched_tokens));
    let mr = "vllm/v1/worker/gpu_model_runner.py";
    let mut out = v1_core_buffers(cx);
    // From 0.19 positions, seq_lens and num_computed_tokens are device tensors (before,
    // positions and seq_lens were CpuGpuBuffers, counted by the V1 runner).
    if rel.runner_step_buffers.value {
        let device_only = [
            ("runner.positions", 8 * t, "max_num_batched_tokens × 8 B"),
            ("runner.seq_lens", 4 * rr, "max_num_seqs × 4 B"),
            ("runner.num_computed_tokens", 4 * rr, "max_num_seqs × 4 B"),
        ];
        for (id, raw, expr) in device_only {
            out.push(cx.host_buf(id, raw, expr, &raw.to_string(), mr));
        }
    }
    if rel.runner_is_padding.is_some() {
        out.push(cx.host_buf(
            "runner.is_padding",
            t,
            "max_num_batched_tokens × 1 B",
            &t.to_string(),
            mr,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::engines::vllm::test_util::{built, component};
    use crate::engines::vllm::Version;
    use crate::footprint::Device;
    use crate::proc::roles::Role;

    // R = 128, T = 2048, L = 5120 (the CPU defaults for one rank): worker components.
    const FLAGS: &str = "vllm serve M --max-model-len 5120";

    fn bytes(v: Version, id: &str) -> Option<u64> {
        let b = built(FLAGS, v, Device::Cpu);
        component(&b, Role::Worker, id)
            .or_else(|| component(&b, Role::EngineCore, id))
            .map(|c| c.bytes)
    }

    #[test]
    fn release_0_10_has_no_token_id_flags_nor_discard_buffer() {
        assert_eq!(bytes(Version::V0_10, "input_batch.is_token_ids"), None);
        assert_eq!(bytes(Version::V0_10, "runner.is_token_ids"), None);
        assert_eq!(
            bytes(Version::V0_10, "runner.discard_request_indices"),
            None
        );
        // 0.11: R × L = 128 × 5120 B; T = 2048 B; int64 discard indices, 128 × 8 B.
        assert_eq!(
            bytes(Version::V0_11, "input_batch.is_token_ids"),
            Some(655_360)
        );
        assert_eq!(bytes(Version::V0_11, "runner.is_token_ids"), Some(2048));
        assert_eq!(
            bytes(Version::V0_11, "runner.discard_request_indices"),
            Some(1024)
        );
        // 0.12: a bool mask, 128 × 1 B.
        assert_eq!(
            bytes(Version::V0_12, "runner.discard_request_indices"),
            Some(128)
        );
    }

    #[test]
    fn one_arange_before_0_19_three_after() {
        // 0.18: one max(R + 1, L, T) × 8 B = 5120 × 8; no req_indices buffer.
        assert_eq!(bytes(Version::V0_18, "runner.arange_np"), Some(40_960));
        assert_eq!(bytes(Version::V0_18, "runner.arange_scratch"), None);
        assert_eq!(bytes(Version::V0_18, "runner.query_pos"), None);
        assert_eq!(bytes(Version::V0_18, "runner.req_indices"), None);
        // 0.19: three max(R + 1, T) × 8 B = 2048 × 8; req_indices T × 8 B.
        for id in [
            "runner.arange_np",
            "runner.arange_scratch",
            "runner.query_pos",
        ] {
            assert_eq!(bytes(Version::V0_19, id), Some(16_384), "{id}");
        }
        assert_eq!(bytes(Version::V0_19, "runner.req_indices"), Some(16_384));
    }

    #[test]
    fn device_tensors_are_host_memory_here() {
        // 0.18: positions is a CpuGpuBuffer (T × 8 B); 0.19: a device tensor, still T × 8 B
        // on the CPU, next to num_computed_tokens (R × 4 B); is_padding (T × 1 B) from 0.31.
        assert_eq!(bytes(Version::V0_18, "runner.positions"), Some(16_384));
        assert_eq!(bytes(Version::V0_19, "runner.positions"), Some(16_384));
        assert_eq!(bytes(Version::V0_18, "runner.num_computed_tokens"), None);
        assert_eq!(
            bytes(Version::V0_19, "runner.num_computed_tokens"),
            Some(512)
        );
        assert_eq!(bytes(Version::V0_30, "runner.is_padding"), None);
        assert_eq!(bytes(Version::V0_31, "runner.is_padding"), Some(2048));
    }

    #[test]
    fn counters_follow_the_release() {
        // 0.10: 3 numpy counters and 1 tensor (R × 4 B each); 0.19–0.26: 3 tensors; 0.27: 4.
        assert_eq!(bytes(Version::V0_10, "input_batch.num_tokens"), Some(1536));
        assert_eq!(
            bytes(Version::V0_10, "input_batch.num_computed_tokens"),
            Some(512)
        );
        assert_eq!(bytes(Version::V0_26, "input_batch.counters"), Some(1536));
        assert_eq!(bytes(Version::V0_27, "input_batch.counters"), Some(2048));
        // int64 accepted-token counts until 0.18, int32 from 0.19.
        assert_eq!(
            bytes(Version::V0_18, "input_batch.num_accepted_tokens"),
            Some(1024)
        );
        assert_eq!(
            bytes(Version::V0_19, "input_batch.num_accepted_tokens"),
            Some(512)
        );
    }
}
