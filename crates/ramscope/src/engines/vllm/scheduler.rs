//! The EngineCore's scheduler in host RAM: the KV block pool's Python objects, the prefix-cache map, per-request state and structured output. The API
//! server's output processor keeps per-request state of the same kind ([`request_state`]).

use crate::attribute::Category;
use crate::footprint::Component;

use super::components::{n, Ctx};

/// Per-request Python state: grows with the tokens held, up to a KV cache full of requests.
pub(super) fn request_state(cx: &Ctx, bytes_per_token: u64, source: &str) -> Component {
    let r = cx.r;
    let kv_tokens = (n(r.num_kv_blocks) * r.block_size).max(r.max_model_len);
    let tokens = kv_tokens.min(n(r.max_num_seqs) * r.max_model_len);
    let high = tokens * bytes_per_token;
    cx.exact(
        "requests.python_state",
        0,
        Category::Heap,
        format!("≈ {bytes_per_token} B × tokens held, ≤ {bytes_per_token} × {tokens}"),
        source,
    )
    .range(0, high)
    .note("0 at idle; grows with running requests (the waiting queue is unbounded)")
}

/// What the EngineCore's scheduler holds: one Python object per KV block, the prefix-cache
/// map, every request's state and the structured-output bitmask and grammar caches.
pub(super) fn scheduler(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let mut out = Vec::new();
    // KVCacheBlock: a dataclass without slots (168 B) up to 0.17, then `slots=True` with 6,
    // 7 and 8 fields (120, 128, 136 B), per release.
    let per = r.version.release().kv_block_object_bytes.value;
    let blocks = n(r.num_kv_blocks);
    let bytes = per * blocks;
    let c = cx.exact(
        "scheduler.kv_block_objects",
        bytes,
        Category::Heap,
        format!("{per} B × num_kv_blocks = {per} × {blocks}"),
        "vllm/v1/core/block_pool.py",
    );
    out.push(if r.num_kv_blocks_exact {
        c.range(bytes * 85 / 100, bytes * 115 / 100)
    } else {
        c.range(bytes / 2, bytes * 2)
            .note("num_kv_blocks estimated from GPU memory; pass --num-gpu-blocks-override for the logged value")
    });
    if r.enable_prefix_caching {
        out.push(
            cx.exact(
                "scheduler.prefix_cache_map",
                0,
                Category::Heap,
                format!("≈ 155 B × cached blocks ≤ 155 × {blocks}"),
                "vllm/v1/core/block_pool.py",
            )
            .range(0, 155 * blocks)
            .note("fills as blocks are cached"),
        );
    }
    out.push(request_state(cx, 53 + 48, "vllm/v1/request.py"));
    let v = n(cx.m.config.vocab_size);
    let spec = n(1) + r.num_speculative_tokens;
    let bitmask = n(r.max_num_seqs) * spec * v.div_ceil(32u64) * 4;
    out.push(
        cx.exact(
            "structured_output.bitmask",
            0,
            Category::Heap,
            format!(
                "max_num_seqs × (1 + spec) × ceil(V/32) × 4 B = {} × {spec} × {} × 4",
                r.max_num_seqs,
                v.div_ceil(32u64)
            ),
            "vllm/v1/structured_output/__init__.py",
        )
        .range(0, bitmask)
        .note("allocated on the first structured-output request"),
    );
    // One compiler, or two from 0.33 (JSON without special tokens, structural tags with
    // them), each with its own cache of VLLM_XGRAMMAR_CACHE_MB.
    let compilers = r.version.release().xgrammar_compilers;
    let cache = n(r.xgrammar_cache_bytes);
    out.push(
        cx.exact(
            "structured_output.grammar_cache",
            0,
            Category::Heap,
            format!(
                "≤ compilers × VLLM_XGRAMMAR_CACHE_MB = {} × {}",
                compilers.value,
                crate::units::bytes(r.xgrammar_cache_bytes)
            ),
            compilers.at,
        )
        .range(0, cache * compilers.value)
        .note("compiled grammars, bounded by VLLM_XGRAMMAR_CACHE_MB per compiler"),
    );
    out
}
