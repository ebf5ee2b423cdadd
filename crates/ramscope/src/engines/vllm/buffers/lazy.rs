//! Runner buffers allocated on the first request that needs them and then kept.

use crate::attribute::Category;
use crate::engines::vllm::components::{n, Ctx};
use crate::footprint::{Component, Device};

/// Buffers allocated on first use and never freed (V1 and CPU runners: V2 keeps the allowed
/// token ids and the penalties' prompt tokens on the GPU).
pub(in crate::engines::vllm) fn lazy_buffers(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    if r.device == Device::Cuda && r.model_runner_v2 {
        return Vec::new();
    }
    let (rr, l) = (n(r.max_num_seqs), n(r.max_model_len));
    let v = n(cx.m.config.vocab_size);
    // On the CPU backend the "device" copy of the mask is host memory too.
    let copies: u64 = if r.device == Device::Cpu { 2 } else { 1 };
    let mut out = vec![cx
        .exact(
            "input_batch.allowed_token_ids_mask",
            0,
            Category::Heap,
            format!("copies × max_num_seqs × vocab × 1 B = {copies} × {rr} × {v}"),
            "vllm/v1/worker/gpu_input_batch.py",
        )
        .range(0, rr * v * copies)
        .note("allocated on the first request with allowed_token_ids, then kept (a CPU copy and a device copy)")];
    if r.pin_memory {
        out.push(
            cx.exact(
                "sampler.prompt_token_ids",
                0,
                Category::Pinned,
                format!("≤ pow2(max_num_seqs × max_model_len × 8 B) = pow2({rr} × {l} × 8)"),
                "vllm/v1/worker/gpu_input_batch.py",
            )
            .range(0, (8 * rr * l).pow2())
            .note("per step with penalties; the pinned block stays cached"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::vllm::test_util::{built, component};
    use crate::engines::vllm::Version;
    use crate::proc::roles::Role;

    #[test]
    fn the_allowed_token_mask_is_host_memory_twice_on_the_cpu_backend() {
        // 128 sequences (TP 1 CPU default) × vocabulary 151936 × 1 B, CPU and "device" copy.
        let b = built("--max-model-len 5120", Version::V0_33, Device::Cpu);
        let c = component(&b, Role::Worker, "input_batch.allowed_token_ids_mask").unwrap();
        assert_eq!(c.high_bytes, 2 * 128 * 151_936);
        // The V2 runner keeps it on the GPU.
        let b = built(
            "VLLM_USE_V2_MODEL_RUNNER=1 vllm serve M --max-model-len 5120",
            Version::V0_33,
            Device::Cuda,
        );
        assert!(component(&b, Role::EngineCore, "input_batch.allowed_token_ids_mask").is_none());
    }
}
