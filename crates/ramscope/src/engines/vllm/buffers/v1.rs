//! The GPU model runner V1's host buffers (the CUDA default up to 0.21, then wherever V2 is
//! not): the input batch, block table and runner step buffers, each release's from its row
//! of [`crate::engines::vllm::releases`], and FlashInfer's workspaces.

use crate::attribute::Category;
use crate::engines::vllm::components::{n, Ctx, MIB};
use crate::engines::vllm::cuda_graphs::compute_family;
use crate::engines::vllm::releases::{cite, gained_in, Release};
use crate::footprint::Component;

use super::times;

/// GPU model runner V1: the CUDA default up to 0.21, then where V2 is not (see
/// [`super::releases::RunnerDefault`]); each release's buffers from its row.
pub(in crate::engines::vllm) fn v1_runner_buffers(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let rel = r.version.release();
    let (rr, l, t) = (
        n(r.max_num_seqs),
        n(r.max_model_len),
        n(r.max_num_batched_tokens),
    );
    let nb = n(r.blocks_per_request());
    let h = n(cx.m.config.hidden_size);
    let dt = r.dtype.activation_bytes();
    let ib = "vllm/v1/worker/gpu_input_batch.py";
    let bt = "vllm/v1/worker/block_table.py";
    let mr = "vllm/v1/worker/gpu_model_runner.py";
    // From 0.19: positions and seq_lens on the GPU only, a set of small pinned step buffers.
    let step = rel.runner_step_buffers.value;
    let mut out = vec![cx.exact(
        "input_batch.token_ids",
        4 * rr * l,
        Category::Heap,
        format!("max_num_seqs × max_model_len × 4 B = {rr} × {l} × 4"),
        ib,
    )];
    if rel.input_batch_is_token_ids.value {
        out.push(cx.exact(
            "input_batch.is_token_ids",
            rr * l,
            Category::Heap,
            format!("max_num_seqs × max_model_len × 1 B = {rr} × {l}"),
            ib,
        ));
    }
    // Per-request int32 counters: numpy arrays (heap) moving one by one to pinned tensors.
    let heap = rel.input_batch_heap_counters.value;
    if heap > 0 {
        out.push(cx.exact(
            "input_batch.num_tokens",
            4 * heap * rr,
            Category::Heap,
            format!("{heap} × max_num_seqs × 4 B = {heap} × {rr} × 4"),
            ib,
        ));
    }
    let pinned = rel.input_batch_pinned_counters.value;
    if pinned == 1 {
        out.push(cx.host_buf(
            "input_batch.num_computed_tokens",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            ib,
        ));
    } else {
        let c = cx.host_buf(
            "input_batch.counters",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            ib,
        );
        out.push(times(c, pinned, &format!("{pinned} pinned counters")));
    }
    let s = cx.host_buf(
        "input_batch.sampling_params",
        4 * rr,
        "max_num_seqs × 4 B",
        &format!("{rr} × 4"),
        ib,
    );
    out.push(times(s, 6, "temperature, top_p, top_k, 3 penalties"));
    let acc = rel.accepted_tokens_bytes.value;
    out.push(cx.host_buf(
        "input_batch.num_accepted_tokens",
        acc * rr,
        &format!("max_num_seqs × {acc} B"),
        &format!("{rr} × {acc}"),
        ib,
    ));
    let lora_b = rel.lora_mapping_bytes.value;
    out.push(cx.exact(
        "input_batch.lora_and_logits_flags",
        (lora_b + 1) * rr,
        Category::Heap,
        format!("max_num_seqs × ({lora_b} + 1) B = {rr} × {}", lora_b + 1),
        ib,
    ));
    out.push(cx.host_buf(
        "logits.min_p",
        4 * rr,
        "max_num_seqs × 4 B",
        &format!("{rr} × 4"),
        "vllm/v1/sample/logits_processor/builtin.py",
    ));
    out.push(cx.host_buf(
        "block_table.block_table",
        4 * rr * nb,
        "max_num_seqs × blocks_per_req × 4 B",
        &format!("{rr} × {nb} × 4"),
        bt,
    ));
    out.push(cx.exact(
        "block_table.num_blocks_per_row",
        4 * rr,
        Category::Heap,
        format!("max_num_seqs × 4 B = {rr} × 4"),
        bt,
    ));
    out.push(cx.host_buf(
        "block_table.slot_mapping",
        8 * t,
        "max_num_batched_tokens × 8 B",
        &format!("{t} × 8"),
        bt,
    ));
    out.push(cx.host_buf(
        "runner.input_ids",
        4 * t,
        "max_num_batched_tokens × 4 B",
        &format!("{t} × 4"),
        mr,
    ));
    if !step {
        out.push(cx.host_buf(
            "runner.positions",
            8 * t,
            "max_num_batched_tokens × 8 B",
            &format!("{t} × 8"),
            mr,
        ));
    }
    out.push(cx.host_buf(
        "runner.query_start_loc",
        4 * (rr + 1),
        "(max_num_seqs + 1) × 4 B",
        &format!("{} × 4", rr + 1),
        mr,
    ));
    if !step {
        out.push(cx.host_buf(
            "runner.seq_lens",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            mr,
        ));
    }
    // "0.10" means 0.10.2, the first release with this pinned buffer (0.10.1.1 had none).
    out.push(cx.host_buf(
        "runner.inputs_embeds",
        t * h * dt,
        "max_num_batched_tokens × hidden × dtype",
        &format!("{t} × {h} × {dt}"),
        mr,
    ));
    if let Some(db) = rel.runner_token_flags.value {
        out.push(cx.host_buf(
            "runner.is_token_ids",
            t,
            "max_num_batched_tokens × 1 B",
            &t.to_string(),
            mr,
        ));
        let dn = if db == 1 { "bool" } else { "int64" };
        out.push(cx.host_buf(
            "runner.discard_request_indices",
            db * rr,
            &format!("max_num_seqs × {db} B ({dn})"),
            &format!("{rr} × {db}"),
            mr,
        ));
        out.push(cx.host_buf(
            "runner.num_decode_draft_tokens",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            mr,
        ));
    }
    out.push(cx.host_buf(
        "runner.num_accepted_tokens",
        acc * rr,
        &format!("max_num_seqs × {acc} B"),
        &format!("{rr} × {acc}"),
        mr,
    ));
    if cx.m.config.mrope {
        out.push(cx.host_buf(
            "runner.mrope_positions",
            24 * (t + 1),
            "3 × (max_num_batched_tokens + 1) × 8 B",
            &format!("3 × {} × 8", t + 1),
            mr,
        ));
    }
    let arange = if step {
        (rr + 1).max(t)
    } else {
        (rr + 1).max(l).max(t)
    };
    out.push(cx.exact(
        "runner.arange_np",
        8 * arange,
        Category::Heap,
        format!(
            "max(R+1, {}T) × 8 B = {arange} × 8",
            if step { "" } else { "L, " }
        ),
        mr,
    ));
    let (sn, sexpr) = if rel.sampled_per_seq.value {
        (rr, "max_num_seqs × 8 B")
    } else {
        (l, "max_model_len × 8 B")
    };
    out.push(cx.host_buf(
        "runner.sampled_token_ids",
        8 * sn,
        sexpr,
        &format!("{sn} × 8"),
        mr,
    ));
    if rel.sampled_per_seq.value {
        out.push(cx.host_buf(
            "runner.valid_sampled_token_count",
            8 * rr,
            "max_num_seqs × 8 B",
            &format!("{rr} × 8"),
            mr,
        ));
        out.push(cx.host_buf(
            "runner.encoder_seq_lens",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            mr,
        ));
    }
    if step {
        let small = [
            ("runner.optimistic_seq_lens", 4 * rr, "max_num_seqs × 4 B"),
            ("runner.prev_num_draft_tokens", 4 * rr, "max_num_seqs × 4 B"),
            ("runner.req_indices", 8 * t, "max_num_batched_tokens × 8 B"),
            ("runner.prev_positions", 8 * rr, "max_num_seqs × 8 B"),
            ("runner.num_scheduled_tokens", 4 * rr, "max_num_seqs × 4 B"),
            ("runner.query_pos", 8 * (rr + 1).max(t), "max(R+1, T) × 8 B"),
        ];
        for (id, raw, expr) in small {
            out.push(cx.host_buf(id, raw, expr, &raw.to_string(), mr));
        }
    }
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
