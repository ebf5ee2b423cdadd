//! The GPU model runner V2's host buffers (`vllm/v1/worker/gpu/`): UVA-backed pools, the
//! pinned token table, the grammar bitmask while it was host memory (0.12–0.15) and, from
//! 0.30, the pool that stages token table writes.

use crate::attribute::Category;
use crate::engines::vllm::components::{n, Ctx};
use crate::engines::vllm::releases::{cite, GrammarBitmask};
use crate::footprint::Component;

use super::times;

/// GPU model runner V2 (0.32/0.33 default): one pinned R×L token table and small pools.
pub(in crate::engines::vllm) fn v2_runner_buffers(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let (rr, l) = (n(r.max_num_seqs), n(r.max_model_len));
    let st = "vllm/v1/worker/gpu/states.py";
    let pools = times(
        cx.host_buf(
            "v2.uva_pools",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            "vllm/v1/worker/gpu/buffer_utils.py",
        ),
        75,
        "≈ 25 UVA-backed tensors × 3 copies",
    );
    let pools = {
        let b = pools.bytes;
        pools.range(b / 2, n(b) * 2)
    };
    // With n-gram speculation (0.32+) the token table is a dense GPU tensor, written
    // without the staging pool.
    let ngram = r.version.release().v2_ngram_token_ids_on_gpu.is_some()
        && matches!(r.speculative_method.as_deref(), Some("ngram" | "ngram_gpu"));
    let mut out = vec![
        pools,
        cx.exact(
            "v2.numpy_state",
            12 * rr + 8 * rr,
            Category::Heap,
            format!("max_num_seqs × 20 B = {rr} × 20"),
            st,
        ),
    ];
    if !ngram {
        out.push(cx.host_buf(
            "v2.all_token_ids",
            4 * rr * l,
            "max_num_seqs × max_model_len × 4 B",
            &format!("{rr} × {l} × 4"),
            st,
        ));
        out.extend(staged_contents(cx));
    }
    out.extend(grammar_bitmask(cx));
    if cx.m.config.mrope {
        out.push(cx.host_buf(
            "v2.mrope_prefill_positions",
            4 * rr * 3 * l,
            "max_num_seqs × 3 × max_model_len × 4 B",
            &format!("{rr} × 3 × {l} × 4"),
            "vllm/v1/worker/gpu/mm/rope.py",
        ));
    }
    out
}

/// The structured-output grammar bitmask, one int32 bit-word per 32 vocabulary entries per
/// logit row, made at start-up whether or not a request uses a grammar: one pinned
/// `CpuGpuBuffer` of max_num_seqs rows (0.12–0.13), then a `UvaBufferPool` of two pinned
/// buffers of max_num_seqs × (1 + draft tokens) rows (0.14–0.15); a GPU tensor from 0.16.
fn grammar_bitmask(cx: &Ctx) -> Option<Component> {
    let r = cx.r;
    let fact = r.version.release().v2_grammar_bitmask?;
    let words = n(cx.m.config.vocab_size).div_ceil(32u64);
    let rr = n(r.max_num_seqs);
    let (rows, rows_expr, copies) = match fact.value {
        GrammarBitmask::PinnedBuffer => (rr, "max_num_seqs".to_string(), 1),
        GrammarBitmask::PinnedPool => (
            rr * (1 + r.num_speculative_tokens),
            "max_num_seqs × (1 + draft tokens)".to_string(),
            2,
        ),
        GrammarBitmask::Device => return None,
    };
    let one = cx.host_buf(
        "v2.grammar_bitmask",
        rows * words * 4,
        &format!("{rows_expr} × cdiv(vocab, 32) × 4 B"),
        &format!("{rows} × {words} × 4"),
        fact.at,
    );
    Some(if copies == 1 {
        one
    } else {
        times(one, copies, "a pool of 2 for overlapping steps")
    })
}

/// The pool staging `all_token_ids` writes (0.30+): max(2, in-flight batches) pinned slots,
/// each grown to pow2(the tokens staged in one step) and never shrunk. A new request stages
/// its whole prompt at once, so one prompt of max_model_len tokens grows a slot to
/// pow2(4 × L); requests added together can grow it further, up to all max_num_seqs.
fn staged_contents(cx: &Ctx) -> Option<Component> {
    let r = cx.r;
    // No pool before the release that added it.
    r.version.release().v2_staged_contents_pool?;
    let (rr, l) = (n(r.max_num_seqs), n(r.max_model_len));
    // set_default_max_concurrency(max_concurrent_batches): PP + 1 with async scheduling.
    let slots = (r.pipeline_parallel_size + 1).max(2);
    let one_prompt = (4 * l).pow2();
    let all = (4 * rr * l).pow2();
    Some(
        cx.exact(
            "v2.staged_contents",
            n(slots) * one_prompt,
            Category::Pinned,
            format!("slots × pow2(4 B × tokens staged in one step) = {slots} × pow2(4 × {l}) (a max_model_len prompt in each slot)"),
            cite(
                r.version,
                &[
                    (30, "vllm/v1/worker/gpu/buffer_utils.py:85-93,175@0.30.0"),
                    (33, "vllm/v1/worker/gpu/buffer_utils.py:88-96,179@0.33.0"),
                ],
            ),
        )
        .range(n(slots) * 4, n(slots) * all)
        .note("grows with the largest prompt batch seen and never shrinks; up to all max_num_seqs prompts staged in one step"),
    )
}

#[cfg(test)]
mod tests {
    use crate::engines::vllm::test_util::{built, component};
    use crate::engines::vllm::Version;
    use crate::footprint::Device;
    use crate::proc::roles::Role;

    #[test]
    fn v2_pins_a_grammar_bitmask_until_0_16() {
        // Qwen3-8B: cdiv(151936, 32) = 4748 words; 256 rows × 4748 × 4 B = 4,861,952 B,
        // pinned: pow2 = 8 MiB. 0.12–0.13 one buffer, 0.14–0.15 a pool of two, then none.
        let flags =
            "VLLM_USE_V2_MODEL_RUNNER=1 vllm serve M --max-num-seqs 256 --max-model-len 5120";
        let bitmask = |v: Version| {
            let b = built(flags, v, Device::Cuda);
            component(&b, Role::EngineCore, "v2.grammar_bitmask").map(|c| c.bytes)
        };
        assert_eq!(bitmask(Version::V0_12), Some(8 << 20));
        assert_eq!(bitmask(Version::V0_13), Some(8 << 20));
        assert_eq!(bitmask(Version::V0_14), Some(16 << 20));
        assert_eq!(bitmask(Version::V0_15), Some(16 << 20));
        assert_eq!(bitmask(Version::V0_16), None);
    }

    #[test]
    fn v2_staging_grows_with_prompts_not_the_token_budget() {
        // L = 5120: one prompt stages 4 × 5120 = 20,480 B → pow2 32,768 per slot, 2 slots;
        // at most all 256 requests' prompts at once: 2 × pow2(4 × 256 × 5120) = 16 MiB.
        let flags =
            "VLLM_USE_V2_MODEL_RUNNER=1 vllm serve M --max-num-seqs 256 --max-model-len 5120";
        let b = built(flags, Version::V0_33, Device::Cuda);
        let c = component(&b, Role::EngineCore, "v2.staged_contents").expect("staged");
        assert_eq!((c.bytes, c.high_bytes), (65_536, 16_777_216));
        // With n-gram speculation the token table is on the GPU: neither exists.
        let ngram = format!(
            "{flags} --speculative-config {}",
            r#"'{"method":"ngram","num_speculative_tokens":3,"prompt_lookup_max":4}'"#
        );
        let b = built(&ngram, Version::V0_33, Device::Cuda);
        assert!(component(&b, Role::EngineCore, "v2.all_token_ids").is_none());
        assert!(component(&b, Role::EngineCore, "v2.staged_contents").is_none());
    }
}
