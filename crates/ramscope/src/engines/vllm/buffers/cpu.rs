//! The CPU backend's runner: the V1 runner's buffers with `device="cpu"`, all plain heap.

use crate::attribute::Category;
use crate::engines::vllm::components::{n, Ctx};
use crate::footprint::Component;
use crate::units::Checked;

/// CPU backend: the V1 runner with `device="cpu"`, nothing pinned (docs/vllm-host-ram.md §5).
pub(in crate::engines::vllm) fn cpu_runner_buffers(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
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
    let heap =
        |id: &str, bytes: Checked, f: String, s: &str| cx.exact(id, bytes, Category::Heap, f, s);
    let mut out = vec![
        heap(
            "input_batch.token_ids",
            4 * rr * l,
            format!("max_num_seqs × max_model_len × 4 B = {rr} × {l} × 4"),
            ib,
        ),
        heap(
            "input_batch.is_token_ids",
            rr * l,
            format!("max_num_seqs × max_model_len × 1 B = {rr} × {l}"),
            ib,
        ),
        heap(
            "input_batch.counters",
            16 * rr,
            format!("4 × max_num_seqs × 4 B = 4 × {rr} × 4"),
            ib,
        ),
        heap(
            "input_batch.sampling_params",
            24 * rr,
            format!("6 × max_num_seqs × 4 B = 6 × {rr} × 4"),
            ib,
        ),
        heap(
            "input_batch.num_accepted_tokens",
            4 * rr,
            format!("max_num_seqs × 4 B = {rr} × 4"),
            ib,
        ),
        heap(
            "input_batch.lora_and_logits_flags",
            9 * rr,
            format!("max_num_seqs × (8 + 1) B = {rr} × 9"),
            ib,
        ),
        heap(
            "logits.min_p",
            4 * rr,
            format!("max_num_seqs × 4 B = {rr} × 4"),
            "vllm/v1/sample/logits_processor/builtin.py",
        ),
        heap(
            "block_table.block_table",
            4 * rr * nb,
            format!("max_num_seqs × blocks_per_req × 4 B = {rr} × {nb} × 4"),
            bt,
        ),
        heap(
            "block_table.num_blocks_per_row",
            4 * rr,
            format!("max_num_seqs × 4 B = {rr} × 4"),
            bt,
        ),
        heap(
            "block_table.slot_mapping",
            8 * t,
            format!("max_num_batched_tokens × 8 B = {t} × 8"),
            bt,
        ),
        heap(
            "runner.input_ids",
            4 * t,
            format!("max_num_batched_tokens × 4 B = {t} × 4"),
            mr,
        ),
        heap(
            "runner.positions_is_padding",
            9 * t,
            format!("max_num_batched_tokens × (8 + 1) B = {t} × 9"),
            mr,
        ),
        heap(
            "runner.query_start_loc",
            4 * (rr + 1),
            format!("(max_num_seqs + 1) × 4 B = {} × 4", rr + 1),
            mr,
        ),
        heap(
            "runner.per_request_int32",
            32 * rr,
            format!("8 × max_num_seqs × 4 B = 8 × {rr} × 4"),
            mr,
        ),
        heap(
            "runner.req_indices",
            8 * t,
            format!("max_num_batched_tokens × 8 B = {t} × 8"),
            mr,
        ),
        heap(
            "runner.per_request_int64",
            16 * rr,
            format!("2 × max_num_seqs × 8 B = 2 × {rr} × 8"),
            mr,
        ),
        heap(
            "runner.inputs_embeds",
            t * h * dt,
            format!("max_num_batched_tokens × hidden × dtype = {t} × {h} × {dt}"),
            mr,
        ),
        heap(
            "runner.is_token_ids",
            t,
            format!("max_num_batched_tokens × 1 B = {t}"),
            mr,
        ),
        heap(
            "runner.discard_request_mask",
            rr,
            format!("max_num_seqs × 1 B = {rr}"),
            mr,
        ),
        heap(
            "runner.arange",
            24 * (rr + 1).max(t),
            format!("3 × max(R+1, T) × 8 B = 3 × {} × 8", (rr + 1).max(t)),
            mr,
        ),
    ];
    if cx.m.config.mrope {
        out.push(heap(
            "runner.mrope_positions",
            24 * (t + 1),
            format!("3 × (T + 1) × 8 B = 3 × {} × 8", t + 1),
            mr,
        ));
    }
    out
}
