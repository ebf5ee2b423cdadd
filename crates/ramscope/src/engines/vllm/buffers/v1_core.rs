//! The buffers the V1 model runner and its input batch allocate in `__init__`, each release's
//! from its row of [`crate::engines::vllm::releases`]: pinned on CUDA, plain heap on the CPU
//! backend, whose runner is a subclass of this one (`CPUModelRunner(GPUModelRunner)`).

use crate::attribute::Category;
use crate::engines::vllm::components::{n, Ctx};
use crate::engines::vllm::defaults::Resolved;
use crate::footprint::Component;
use crate::units::Checked;

use super::times;

const IB: &str = "vllm/v1/worker/gpu_input_batch.py";
const BT: &str = "vllm/v1/worker/block_table.py";
const MR: &str = "vllm/v1/worker/gpu_model_runner.py";

/// The input batch, block table and runner buffers of the release's V1 runner.
pub(super) fn v1_core_buffers(cx: &Ctx) -> Vec<Component> {
    let mut out = input_batch(cx);
    out.extend(runner(cx));
    out
}

/// `max_num_seqs`, `max_model_len`, `max_num_batched_tokens`: the three sizes most buffers
/// are shaped by.
fn seqs_len_tokens(r: &Resolved) -> (Checked, Checked, Checked) {
    (
        n(r.max_num_seqs),
        n(r.max_model_len),
        n(r.max_num_batched_tokens),
    )
}

/// `InputBatch` and its `BlockTable`.
fn input_batch(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let rel = r.version.release();
    let (rr, l, t) = seqs_len_tokens(r);
    let nb = n(r.blocks_per_request());
    let mut out = vec![cx.exact(
        "input_batch.token_ids",
        4 * rr * l,
        Category::Heap,
        format!("max_num_seqs × max_model_len × 4 B = {rr} × {l} × 4"),
        IB,
    )];
    if rel.input_batch_is_token_ids.value {
        out.push(cx.exact(
            "input_batch.is_token_ids",
            rr * l,
            Category::Heap,
            format!("max_num_seqs × max_model_len × 1 B = {rr} × {l}"),
            IB,
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
            IB,
        ));
    }
    let pinned = rel.input_batch_pinned_counters.value;
    if pinned == 1 {
        out.push(cx.host_buf(
            "input_batch.num_computed_tokens",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            IB,
        ));
    } else {
        let c = cx.host_buf(
            "input_batch.counters",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            IB,
        );
        out.push(times(c, pinned, &format!("{pinned} pinned counters")));
    }
    let s = cx.host_buf(
        "input_batch.sampling_params",
        4 * rr,
        "max_num_seqs × 4 B",
        &format!("{rr} × 4"),
        IB,
    );
    out.push(times(s, 6, "temperature, top_p, top_k, 3 penalties"));
    let acc = rel.accepted_tokens_bytes.value;
    out.push(cx.host_buf(
        "input_batch.num_accepted_tokens",
        acc * rr,
        &format!("max_num_seqs × {acc} B"),
        &format!("{rr} × {acc}"),
        IB,
    ));
    let lora_b = rel.lora_mapping_bytes.value;
    out.push(cx.exact(
        "input_batch.lora_and_logits_flags",
        (lora_b + 1) * rr,
        Category::Heap,
        format!("max_num_seqs × ({lora_b} + 1) B = {rr} × {}", lora_b + 1),
        IB,
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
        BT,
    ));
    out.push(cx.exact(
        "block_table.num_blocks_per_row",
        4 * rr,
        Category::Heap,
        format!("max_num_seqs × 4 B = {rr} × 4"),
        BT,
    ));
    out.push(cx.host_buf(
        "block_table.slot_mapping",
        8 * t,
        "max_num_batched_tokens × 8 B",
        &format!("{t} × 8"),
        BT,
    ));
    out
}

/// The runner's own step buffers.
fn runner(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let rel = r.version.release();
    let (rr, l, t) = seqs_len_tokens(r);
    let h = n(cx.m.config.hidden_size);
    let dt = r.dtype.activation_bytes();
    // From 0.19: positions and seq_lens on the GPU only, a set of small pinned step buffers.
    let step = rel.runner_step_buffers.value;
    let mut out = vec![cx.host_buf(
        "runner.input_ids",
        4 * t,
        "max_num_batched_tokens × 4 B",
        &format!("{t} × 4"),
        MR,
    )];
    if !step {
        out.push(cx.host_buf(
            "runner.positions",
            8 * t,
            "max_num_batched_tokens × 8 B",
            &format!("{t} × 8"),
            MR,
        ));
    }
    out.push(cx.host_buf(
        "runner.query_start_loc",
        4 * (rr + 1),
        "(max_num_seqs + 1) × 4 B",
        &format!("{} × 4", rr + 1),
        MR,
    ));
    if !step {
        out.push(cx.host_buf(
            "runner.seq_lens",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            MR,
        ));
    }
    // "0.10" means 0.10.2, the first release with this pinned buffer (0.10.1.1 had none).
    out.push(cx.host_buf(
        "runner.inputs_embeds",
        t * h * dt,
        "max_num_batched_tokens × hidden × dtype",
        &format!("{t} × {h} × {dt}"),
        MR,
    ));
    if let Some(db) = rel.runner_token_flags.value {
        out.push(cx.host_buf(
            "runner.is_token_ids",
            t,
            "max_num_batched_tokens × 1 B",
            &t.to_string(),
            MR,
        ));
        let dn = if db == 1 { "bool" } else { "int64" };
        out.push(cx.host_buf(
            "runner.discard_request_indices",
            db * rr,
            &format!("max_num_seqs × {db} B ({dn})"),
            &format!("{rr} × {db}"),
            MR,
        ));
    }
    // Every release has one int32 draft count per request: `num_draft_tokens` in 0.10,
    // `num_decode_draft_tokens` from 0.11.
    out.push(cx.host_buf(
        "runner.num_decode_draft_tokens",
        4 * rr,
        "max_num_seqs × 4 B",
        &format!("{rr} × 4"),
        MR,
    ));
    let acc = rel.accepted_tokens_bytes.value;
    out.push(cx.host_buf(
        "runner.num_accepted_tokens",
        acc * rr,
        &format!("max_num_seqs × {acc} B"),
        &format!("{rr} × {acc}"),
        MR,
    ));
    if cx.m.config.mrope {
        out.push(cx.host_buf(
            "runner.mrope_positions",
            24 * (t + 1),
            "3 × (max_num_batched_tokens + 1) × 8 B",
            &format!("3 × {} × 8", t + 1),
            MR,
        ));
    }
    let arange = if step {
        (rr + 1).max(t)
    } else {
        (rr + 1).max(l).max(t)
    };
    let arange_expr = if step {
        "max(R+1, T)"
    } else {
        "max(R+1, L, T)"
    };
    out.push(cx.exact(
        "runner.arange_np",
        8 * arange,
        Category::Heap,
        format!("{arange_expr} × 8 B = {arange} × 8"),
        MR,
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
        MR,
    ));
    // Always made until 0.13; from 0.14 only for draft tokens counted under async scheduling
    // (counted whenever speculative decoding is on: async scheduling is its default there).
    let spec_only = rel.valid_sampled_count_spec_only.is_some();
    if let Some(b) = rel.valid_sampled_count_bytes {
        if !spec_only || r.num_speculative_tokens > 0 {
            let b = b.value;
            out.push(cx.host_buf(
                "runner.valid_sampled_token_count",
                b * rr,
                &format!("max_num_seqs × {b} B"),
                &format!("{rr} × {b}"),
                MR,
            ));
        }
    }
    if rel.sampled_per_seq.value {
        out.push(cx.host_buf(
            "runner.encoder_seq_lens",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            MR,
        ));
    }
    if step {
        let small = [
            ("runner.optimistic_seq_lens", 4 * rr, "max_num_seqs × 4 B"),
            ("runner.prev_num_draft_tokens", 4 * rr, "max_num_seqs × 4 B"),
            ("runner.req_indices", 8 * t, "max_num_batched_tokens × 8 B"),
            ("runner.prev_positions", 8 * rr, "max_num_seqs × 8 B"),
            ("runner.num_scheduled_tokens", 4 * rr, "max_num_seqs × 4 B"),
            ("runner.query_pos", 8 * arange, "max(R+1, T) × 8 B"),
        ];
        for (id, raw, expr) in small {
            out.push(cx.host_buf(id, raw, expr, &raw.to_string(), MR));
        }
        // The numpy scratch `query_pos` is computed into before its copy to the device.
        out.push(cx.exact(
            "runner.arange_scratch",
            8 * arange,
            Category::Heap,
            format!("max(R+1, T) × 8 B = {arange} × 8"),
            MR,
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

    const FLAGS: &str = "vllm serve M --max-num-seqs 1024 --max-model-len 5120";

    fn bytes(v: Version, flags: &str, id: &str) -> Option<u64> {
        let b = built(flags, v, Device::Cuda);
        component(&b, Role::EngineCore, id).map(|c| c.bytes)
    }

    #[test]
    fn valid_sampled_token_count_follows_its_dtype_and_condition() {
        // 0.12: made for every configuration, int64: pow2(1024 × 8 B) = 8192.
        assert_eq!(
            bytes(Version::V0_12, FLAGS, "runner.valid_sampled_token_count"),
            Some(8192)
        );
        // 0.14–0.18: only with speculative decoding (still int64).
        assert_eq!(
            bytes(Version::V0_14, FLAGS, "runner.valid_sampled_token_count"),
            None
        );
        let spec = format!(
            "{FLAGS} --speculative-config {}",
            r#"'{"method":"eagle","model":"yuhuili/EAGLE-LLaMA3.1-Instruct-8B","num_speculative_tokens":2}'"#
        );
        assert_eq!(
            bytes(Version::V0_18, &spec, "runner.valid_sampled_token_count"),
            Some(8192)
        );
        // 0.19: int32, pow2(1024 × 4 B) = 4096.
        assert_eq!(
            bytes(Version::V0_19, &spec, "runner.valid_sampled_token_count"),
            Some(4096)
        );
    }

    #[test]
    fn the_0_10_runner_counts_draft_tokens_and_no_discard_buffer() {
        // num_draft_tokens (0.10) and num_decode_draft_tokens: pow2(1024 × 4 B) = 4096.
        assert_eq!(
            bytes(Version::V0_10, FLAGS, "runner.num_decode_draft_tokens"),
            Some(4096)
        );
        assert_eq!(
            bytes(Version::V0_10, FLAGS, "runner.discard_request_indices"),
            None
        );
        // 0.19: the scratch arange, max(1024 + 1, 8192) × 8 B = 65,536 (numpy, no pow2).
        assert_eq!(
            bytes(Version::V0_19, FLAGS, "runner.arange_scratch"),
            Some(65_536)
        );
        assert_eq!(bytes(Version::V0_18, FLAGS, "runner.arange_scratch"), None);
    }
}
