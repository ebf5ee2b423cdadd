//! Two GPU features that keep copies in pinned host memory: sleep mode's backups of the
//! cuMem allocations it frees (`CuMemAllocator.sleep`), and LoRA's CPU cache of adapters
//! (`LoRAModel.from_lora_tensors`, packed modules pinned per sub-module).

use super::components::{n, Ctx, MIB};
use super::releases::cite;
use super::weights::LayerTensors;
use crate::attribute::Category;
use crate::footprint::Component;
use crate::units::Checked;

/// The segment PyTorch's CUDA caching allocator requests for one tensor of `bytes`
/// (`get_allocation_size`): tensors up to 1 MiB share 2 MiB segments, those below 10 MiB
/// share 20 MiB segments, larger ones get their own, rounded up to 2 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Small,
    Medium,
    Own(Checked),
}

fn segment(bytes: Checked) -> Segment {
    match bytes.get() {
        Some(b) if b <= MIB => Segment::Small,
        Some(b) if b < 10 * MIB => Segment::Medium,
        _ => Segment::Own(bytes.div_ceil(2 * MIB) * (2 * MIB)),
    }
}

/// Pinned backups of tensors allocated in one cuMem pool: one `torch.empty(pin_memory=True)`
/// per segment, rounded to a power of two by the pinned allocator. Returns the point value
/// (shared segments packed full) and the most (every shared tensor alone in its segment).
fn backups(tensors: &[(Checked, u64)]) -> (Checked, Checked) {
    let (mut own, mut small, mut medium) = (n(0), n(0), n(0));
    let (mut small_count, mut medium_count) = (n(0), n(0));
    for (bytes, count) in tensors {
        match segment(*bytes) {
            Segment::Own(seg) => own = own + seg.pow2() * *count,
            Segment::Small => {
                small = small + *bytes * *count;
                small_count = small_count + *count;
            }
            Segment::Medium => {
                medium = medium + *bytes * *count;
                medium_count = medium_count + *count;
            }
        }
    }
    // A 20 MiB segment is backed up as pow2(20 MiB) = 32 MiB.
    let packed = own + small.div_ceil(2 * MIB) * (2 * MIB) + medium.div_ceil(20 * MIB) * (32 * MIB);
    let alone = own + small_count * (2 * MIB) + medium_count * (32 * MIB);
    (packed, alone)
}

/// The weights of one rank as (bytes, how many) per tensor shape: the four matrices and two
/// norms of each layer, the embedding and, untied, the LM head (vocabulary padded to 64,
/// split by TP; one of the two per rank under PP).
fn weight_tensors(cx: &Ctx) -> Vec<(Checked, u64)> {
    let (c, r) = (&cx.m.config, cx.r);
    let t = LayerTensors::of(cx);
    let layers = t.layers.raw();
    let dt = c.dtype.bytes().max(1.0) as u64;
    let mut out: Vec<(Checked, u64)> = t.sizes.iter().map(|s| (*s, layers)).collect();
    out.push((n(c.hidden_size) * dt, layers.saturating_mul(2)));
    let vocab = n(c.vocab_size).div_ceil(64u64) * 64;
    let embedding = vocab * c.hidden_size * dt / r.tensor_parallel_size.max(1);
    let heads = if r.pipeline_parallel_size > 1 || c.tie_word_embeddings {
        1
    } else {
        2
    };
    out.push((embedding, heads));
    out
}

/// LoRA's stacked GPU buffers (`lora_a_stacked`, `lora_b_stacked`: max_loras adapters of
/// every linear module of every layer), as (bytes, how many).
fn lora_gpu_tensors(cx: &Ctx) -> Vec<(Checked, u64)> {
    let r = cx.r;
    lora_modules(cx)
        .into_iter()
        .flat_map(|(a, b)| [a, b])
        .map(|t| (t * r.max_loras, cx.m.config.num_layers))
        .collect()
}

/// Sleep mode: what one sleep copies to pinned host memory. Level 1 backs up the weights;
/// from 0.32 every level also backs up the `runtime` pool (KV-cache set-up state, LoRA's
/// buffers) and, with `--sleep-mode-offload-cudagraph`, the CUDA graph pool. After wake-up
/// the pinned blocks stay in PyTorch's pinned cache.
pub(super) fn sleep_mode(cx: &Ctx, notes: &mut Vec<String>) -> Vec<Component> {
    let r = cx.r;
    if !r.sleep_mode {
        return Vec::new();
    }
    let v = r.version;
    let (weights, weights_high) = backups(&weight_tensors(cx));
    let mut out = vec![cx
        .exact(
            "sleep_mode.weight_backups",
            weights,
            Category::Pinned,
            "Σ pow2(cuMem segment) over the weights of one rank: matrices ≥ 10 MiB in their own 2 MiB-rounded segment, smaller tensors packed in 2 or 20 MiB segments; embedding and LM head included".into(),
            cite(v, &[
                (10, "vllm/device_allocator/cumem.py:200-211@0.10.2"),
                (32, "vllm/device_allocator/cumem.py:256-276@0.32.0"),
            ]),
        )
        .range(0, weights_high)
        .note("level-1 sleep only (level 2 discards the weights); 0 until the first /sleep")];
    if let Some(runtime) = v.release().sleep_backs_up_runtime {
        let lora = if r.enable_lora {
            backups(&lora_gpu_tensors(cx))
        } else {
            (n(0), n(0))
        };
        out.push(
            cx.exact(
                "sleep_mode.runtime_backups",
                lora.0,
                Category::Pinned,
                format!("LoRA's stacked buffers in the runtime pool, Σ pow2(segment) = {}", lora.0),
                runtime.at,
            )
            .range(0, lora.1)
            .note("every sleep level backs up the runtime pool; the attention back-end's KV set-up buffers are in it too and not sized here"),
        );
        if r.sleep_offload_cudagraph {
            notes.push("--sleep-mode-offload-cudagraph: sleep also copies the CUDA graph memory pool to pinned host memory (not sized here)".into());
        }
    }
    out
}

/// (lora_a, lora_b) bytes of each linear module of one layer at rank max_lora_rank, one
/// adapter: q, k, v, o, gate, up, down, each its own tensor.
fn lora_modules(cx: &Ctx) -> Vec<(Checked, Checked)> {
    let (c, r) = (&cx.m.config, cx.r);
    let rank = n(r.max_lora_rank);
    let dt = r.dtype.activation_bytes();
    let h = n(c.hidden_size);
    let q = n(c.num_attention_heads) * c.head_dim;
    let kv = n(c.num_kv_heads) * c.head_dim;
    let i = n(c.intermediate_size);
    // (in, out) of each module; lora_a is rank × in, lora_b out × rank.
    [(h, q), (h, kv), (h, kv), (q, h), (h, i), (h, i), (i, h)]
        .into_iter()
        .map(|(inp, o)| (rank * inp * dt, o * rank * dt))
        .collect()
}

/// The CPU cache of LoRA adapters: every loaded adapter's A and B matrices, each module its
/// own pinned tensor (packed q/k/v and gate/up stay separate tensors in a list).
pub(super) fn lora_cpu_cache(cx: &Ctx) -> Option<Component> {
    let r = cx.r;
    if !r.enable_lora {
        return None;
    }
    let layers = cx.m.config.num_layers;
    let per_layer: Checked = lora_modules(cx)
        .into_iter()
        .map(|(a, b)| a.pow2() + b.pow2())
        .sum();
    let bytes = per_layer * layers * r.max_cpu_loras;
    Some(
        cx.exact(
            "lora.cpu_cache",
            bytes,
            Category::Pinned,
            format!(
                "max_cpu_loras × layers × Σ over q, k, v, o, gate, up, down of pow2(r·in·dt) + pow2(out·r·dt) = {} × {layers} × {per_layer}",
                r.max_cpu_loras
            ),
            cite(r.version, &[
                (10, "vllm/lora/models.py:156-171@0.10.2"),
                (12, "vllm/lora/models.py:143-148@0.12.0"),
                (13, "vllm/lora/lora_model.py:103-108@0.13.0"),
                (33, "vllm/lora/lora_model.py:120-176@0.33.0"),
            ]),
        )
        .range(0, bytes)
        .note("adapters at rank max_lora_rank on every linear layer; only once loaded"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::vllm::test_util::with_ctx;
    use crate::engines::vllm::Version;
    use crate::footprint::Device;

    const M: u64 = 1 << 20;

    #[test]
    fn segments_follow_the_caching_allocator() {
        assert_eq!(segment(n(4096)), Segment::Small);
        assert_eq!(segment(n(5 * M)), Segment::Medium);
        assert_eq!(segment(n(48 * M + 1)), Segment::Own(n(50 * M)));
        // Two 1 KiB tensors share a 2 MiB segment; alone each needs one.
        assert_eq!(backups(&[(n(1024), 2)]), (n(2 * M), n(4 * M)));
        // A 50 MiB tensor: segment 50 MiB, backup pow2 = 64 MiB.
        assert_eq!(backups(&[(n(50 * M), 1)]).0, n(64 * M));
        // A config claiming 2^64 − 2 layers of 1 TiB tensors is too large, not wrapped.
        assert!(backups(&[(n(1 << 40), u64::MAX - 1)]).0.is_too_large());
    }

    #[test]
    fn level_one_backs_up_every_weight_including_the_embeddings() {
        // Qwen3-8B, TP 1, per layer: qkv 48 MiB → 64 MiB, o 32 MiB, gate_up 192 MiB → 256
        // MiB, down 96 MiB → 128 MiB: 480 MiB × 36 = 17,280 MiB. Norms 72 × 8 KiB = 576 KiB:
        // one 2 MiB segment. Embedding 151936 (a multiple of 64) × 4096 × 2 = 1187 MiB →
        // 2048 MiB, untied so twice: 4096 MiB. Total 21,378 MiB.
        let bytes = with_ctx("--enable-sleep-mode", Version::V0_33, Device::Cuda, |cx| {
            let mut notes = Vec::new();
            sleep_mode(cx, &mut notes)[0].bytes
        });
        assert_eq!(bytes, (17_280 + 2 + 4096) * M);
    }

    #[test]
    fn lora_keeps_every_sub_module_apart() {
        // Rank 16, bf16, Qwen3-8B per layer (A = 16 × in × 2, B = out × 16 × 2):
        // q: A 131072, B 131072; k, v: A 131072, B 32768 each; o: A 131072, B 131072;
        // gate, up: A 131072, B 393216 → 524288 each; down: A 393216 → 524288, B 131072.
        // Σ = 262144 + 2 × 163840 + 262144 + 2 × 655360 + 655360 = 2,818,048 B per layer.
        let c = with_ctx(
            "--enable-lora --max-loras 2 --max-cpu-loras 3",
            Version::V0_33,
            Device::Cuda,
            lora_cpu_cache,
        )
        .unwrap();
        assert_eq!(c.bytes, 3 * 36 * 2_818_048);
    }

    #[test]
    fn runtime_backups_start_in_0_32() {
        let ids = |v: Version| {
            with_ctx("--enable-sleep-mode --enable-lora", v, Device::Cuda, |cx| {
                let mut notes = Vec::new();
                sleep_mode(cx, &mut notes)
                    .into_iter()
                    .map(|c| c.id)
                    .collect::<Vec<_>>()
            })
        };
        assert!(!ids(Version::V0_31).contains(&"sleep_mode.runtime_backups".to_string()));
        assert!(ids(Version::V0_32).contains(&"sleep_mode.runtime_backups".to_string()));
    }
}
