//! The GPU model runner V1's host buffers (the CUDA default up to 0.21, then wherever V2 is
//! not): the input batch, block table and runner step buffers it shares with the CPU runner
//! ([`super::v1_core`]), then FlashInfer's workspaces and the drafter's buffer.

use crate::attribute::Category;
use crate::engines::vllm::components::{n, Ctx, MIB};
use crate::engines::vllm::cuda_graphs::compute_family;
use crate::engines::vllm::releases::{cite, gained_in, Release};
use crate::footprint::Component;

use super::v1_core::v1_core_buffers;

/// GPU model runner V1: the CUDA default up to 0.21, then where V2 is not (see
/// [`super::releases::RunnerDefault`]); each release's buffers from its row, then what
/// only the GPU runs: FlashInfer's and the drafter's.
pub(in crate::engines::vllm) fn v1_runner_buffers(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let rr = n(r.max_num_seqs);
    let mut out = v1_core_buffers(cx);
    if r.flashinfer {
        out.extend(flashinfer_buffers(cx));
    }
    if r.num_speculative_tokens > 0 {
        out.push(cx.host_buf(
            "spec_decode.backup_next_token_ids",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            cite(
                r.version,
                &[
                    (11, "vllm/v1/spec_decode/eagle.py:113@0.11.0"),
                    (20, "vllm/v1/spec_decode/llm_base_proposer.py:220@0.20.2"),
                    (
                        33,
                        "vllm/v1/spec_decode/llm_base_proposer.py:251-256@0.33.0",
                    ),
                ],
            ),
        ));
    }
    out
}

/// FlashInfer's host buffers in the V1 runner: the pinned copy of `paged_kv_indices` (up to
/// 0.28; a device tensor only from 0.29), and one 8 MiB pinned workspace per wrapper:
/// prefill, cascade, decode, and a decode wrapper per FULL CUDA graph size where decoding
/// cannot go through TRTLLM (SM100, 0.12+) or XQA (SM90, 0.25+).
fn flashinfer_buffers(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let v = r.version;
    let (rr, l) = (n(r.max_num_seqs), n(r.max_model_len));
    let fi = cite(
        v,
        &[
            (
                10,
                "vllm/v1/attention/backends/flashinfer.py:326-333@0.10.2",
            ),
            (
                12,
                "vllm/v1/attention/backends/flashinfer.py:549-560@0.12.0",
            ),
            (
                14,
                "vllm/v1/attention/backends/flashinfer.py:611,623-631@0.14.1",
            ),
            (29, "vllm/v1/attention/backends/flashinfer.py:923@0.29.0"),
        ],
    );
    let mut out = Vec::new();
    let rel = v.release();
    if rel.flashinfer_indices_on_device.is_none() {
        let l_blocks = l.div_ceil(r.block_size);
        out.push(cx.host_buf(
            "flashinfer.paged_kv_indices",
            4 * rr * l_blocks,
            "max_num_seqs × cdiv(L, B) × 4 B",
            &format!("{rr} × {l_blocks} × 4"),
            fi,
        ));
    }
    let family = r.gpu.as_ref().and_then(|g| compute_family(&g.name));
    let fused_decode = (family == Some(100) && rel.flashinfer_trtllm_decode_sm100.is_some())
        || (family == Some(90) && rel.flashinfer_xqa_decode_sm90.is_some());
    let per_size = if r.cudagraph_mode.starts_with("FULL") && !fused_decode {
        r.cudagraph_capture_sizes
            .iter()
            .filter(|s| rr.get().map_or(true, |rr| **s <= rr))
            .count() as u64
    } else {
        0
    };
    let (wrappers, which) = if fused_decode {
        (2 + per_size, "prefill, cascade; decode through TRTLLM/XQA")
    } else {
        (
            3 + per_size,
            "prefill, decode, cascade + one per FULL capture size",
        )
    };
    // Cited where the first release with TRTLLM decoding, then the first with XQA decoding,
    // shows which wrappers are made.
    let wrapper_sources: Vec<(u16, &'static str)> = [
        gained_in(|r: &Release| r.flashinfer_trtllm_decode_sm100),
        gained_in(|r: &Release| r.flashinfer_xqa_decode_sm90),
        Some((
            33,
            "vllm/v1/attention/backends/flashinfer.py:993-1006@0.33.0",
        )),
    ]
    .into_iter()
    .flatten()
    .collect();
    out.push(cx.exact(
        "flashinfer.workspaces",
        n(wrappers) * 8 * MIB,
        Category::Pinned,
        format!("wrappers × 8 MiB = {wrappers} × 8 MiB ({which})"),
        cite(v, &wrapper_sources),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::vllm::test_util::{built, component};
    use crate::engines::vllm::Version;
    use crate::footprint::Device;
    use crate::proc::roles::Role;

    const V1_FLASHINFER: &str =
        "VLLM_USE_V2_MODEL_RUNNER=0 vllm serve M --attention-backend FLASHINFER --max-num-seqs 256 --max-model-len 5120";

    #[test]
    fn flashinfer_indices_are_pinned_until_0_28() {
        // 256 × cdiv(5120, 16) × 4 B = 327,680 → pow2 524,288.
        let b = built(V1_FLASHINFER, Version::V0_28, Device::Cuda);
        let c = component(&b, Role::EngineCore, "flashinfer.paged_kv_indices").expect("0.28");
        assert_eq!(c.bytes, 524_288);
        let b = built(V1_FLASHINFER, Version::V0_29, Device::Cuda);
        assert!(component(&b, Role::EngineCore, "flashinfer.paged_kv_indices").is_none());
    }

    #[test]
    fn hopper_decodes_through_xqa_from_0_25() {
        // H100, 0.24: FULL graphs and no XQA → prefill, decode, cascade + one per capture
        // size ≤ 256 (1, 2, 4, 8…248, 256: 35) = 38 × 8 MiB.
        let b = built(V1_FLASHINFER, Version::V0_24, Device::Cuda);
        let c = component(&b, Role::EngineCore, "flashinfer.workspaces").unwrap();
        assert_eq!(c.bytes, 38 * 8 * MIB);
        // 0.25: XQA decodes on SM90: prefill and cascade only.
        let b = built(V1_FLASHINFER, Version::V0_25, Device::Cuda);
        let c = component(&b, Role::EngineCore, "flashinfer.workspaces").unwrap();
        assert_eq!(c.bytes, 2 * 8 * MIB);
    }
}
