//! The host allocations of a vLLM server, per process, as formulas
//! (docs/vllm-host-ram.md §1–§9, docs/vllm-cpu-backend.md Parts A–C).

use crate::attribute::Category;
use crate::calibrate::Baselines;
use crate::estimate::{Component, Options, ProcessEstimate};
use crate::model::Model;
use crate::proc::roles::Role;

use super::defaults::{LoadStrategy, Resolved};
use super::{Device, Version};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// PyTorch's caching host allocator rounds every pinned block up to a power of two.
pub fn pow2(x: u64) -> u64 {
    x.max(1).next_power_of_two()
}

/// What [`build`] returns.
pub struct Built {
    pub processes: Vec<ProcessEstimate>,
    pub page_cache_bytes: u64,
    pub shm_mapped_bytes: u64,
    pub notes: Vec<String>,
}

/// The buffer list of one process, with the version label used in every component.
struct Ctx<'a> {
    m: &'a Model,
    r: &'a Resolved,
    b: &'a Baselines,
    ver: &'static str,
}

impl Ctx<'_> {
    fn exact(
        &self,
        id: &str,
        bytes: u64,
        cat: Category,
        formula: String,
        source: &str,
    ) -> Component {
        Component::exact(id, bytes, cat, formula, source, self.ver)
    }

    /// A buffer that is pinned on CUDA (rounded to pow2) and plain on CPU.
    fn host_buf(&self, id: &str, raw: u64, expr: &str, nums: &str, source: &str) -> Component {
        if self.r.pin_memory {
            let bytes = pow2(raw);
            self.exact(
                id,
                bytes,
                Category::Pinned,
                format!("pow2({expr}) = pow2({nums}) = pow2({raw})"),
                source,
            )
        } else {
            self.exact(id, raw, Category::Heap, format!("{expr} = {nums}"), source)
        }
    }
}

/// Builds every process of the server.
pub fn build(model: &Model, r: &Resolved, b: &Baselines, options: &Options) -> Built {
    let cx = Ctx {
        m: model,
        r,
        b,
        ver: r.version.name(),
    };
    let mut notes = Vec::new();
    let mut shm_mapped = 0u64;
    let api_count = r.api_server_count;
    let engines = r.data_parallel_size_local;
    let workers_per_engine = if r.runner_in_engine_core {
        0
    } else {
        r.world_size()
    };
    let launcher = api_count > 1;
    let coordinator = r.data_parallel_size > 1;
    let py_processes = api_count
        + u64::from(launcher)
        + engines
        + engines * workers_per_engine
        + u64::from(coordinator);
    // With fork, children share their parent's import pages copy-on-write until written.
    let fork_group = if r.fork { py_processes.max(1) } else { 1 };

    let mut processes = Vec::new();

    // API server(s).
    if api_count > 0 {
        let mut c = baseline(&cx, Role::ApiServer, py_processes, fork_group);
        c.extend(tokenizer(&cx, "api-server"));
        c.push(request_state(
            &cx,
            40 + 45,
            "vllm/v1/engine/output_processor.py",
        ));
        if r.multimodal {
            let ipc = api_count == 1 && r.data_parallel_size == 1;
            if r.mm_processor_cache_type == "shm" && ipc {
                let mapped = r.mm_processor_cache_bytes;
                shm_mapped += mapped;
                c.push(
                    cx.exact("mm.processor_cache_shm", mapped, Category::Shm, format!("mm_processor_cache_gb = {}", gib(mapped)), "vllm/multimodal/cache.py")
                        .range(0, mapped)
                        .mapped(mapped)
                        .note("a /dev/shm ring written by the API server and read by the engine; sparse until items arrive"),
                );
            } else {
                c.push(
                    cx.exact("mm.processor_cache", r.mm_processor_cache_bytes, Category::Heap, format!("mm_processor_cache_gb = {}", gib(r.mm_processor_cache_bytes)), "vllm/multimodal/cache.py")
                        .range(0, r.mm_processor_cache_bytes)
                        .note("LRU of processed multimodal items; fills to the limit as distinct items arrive, in every API server"),
                );
            }
        }
        let title = if api_count > 1 {
            "VLLM::APIServer_{i}"
        } else {
            "API server (the vllm serve command line)"
        };
        processes.push(ProcessEstimate::new(Role::ApiServer, title, api_count, c));
        if launcher {
            let c = baseline(&cx, Role::ApiServer, py_processes, 1);
            processes.push(ProcessEstimate::new(
                Role::ApiServer,
                "vllm serve (launcher of the API servers)",
                1,
                c,
            ));
        }
    }

    // EngineCore(s).
    {
        let mut c = baseline(&cx, Role::EngineCore, py_processes, fork_group);
        c.extend(tokenizer(&cx, "engine-core"));
        c.extend(scheduler(&cx));
        if r.multimodal
            && api_count == 1
            && r.data_parallel_size == 1
            && r.mm_processor_cache_type != "shm"
        {
            c.push(
                cx.exact(
                    "mm.receiver_cache",
                    r.mm_processor_cache_bytes,
                    Category::Heap,
                    format!(
                        "mm_processor_cache_gb = {}",
                        gib(r.mm_processor_cache_bytes)
                    ),
                    "vllm/multimodal/cache.py",
                )
                .range(0, r.mm_processor_cache_bytes)
                .note("MultiModalReceiverCache: mirrors the API server's sender cache"),
            );
        }
        if workers_per_engine > 0 {
            let (q, mapped) = message_queues_engine(&cx, workers_per_engine);
            shm_mapped += engines * mapped;
            c.extend(q);
        }
        if r.runner_in_engine_core {
            c.extend(runner(&cx, options, &mut notes));
        }
        let title = if engines > 1 {
            "VLLM::EngineCore_DP{i}"
        } else {
            "VLLM::EngineCore"
        };
        processes.push(ProcessEstimate::new(Role::EngineCore, title, engines, c));
    }

    // Workers.
    if workers_per_engine > 0 {
        let mut c = baseline(&cx, Role::Worker, py_processes, fork_group);
        let (q, mapped) = message_queues_worker(&cx, workers_per_engine, options);
        shm_mapped += engines * mapped;
        c.extend(q);
        c.extend(runner(&cx, options, &mut notes));
        let title = match (r.device, r.world_size()) {
            (_, 1) => "VLLM::Worker".to_string(),
            (_, _) if engines > 1 => "VLLM::Worker_DP{i}_TP{j}".to_string(),
            _ => "VLLM::Worker_TP{j}".to_string(),
        };
        processes.push(ProcessEstimate::new(
            Role::Worker,
            &title,
            engines * workers_per_engine,
            c,
        ));
    }

    if coordinator {
        let c = baseline(&cx, Role::DpCoordinator, py_processes, fork_group);
        processes.push(ProcessEstimate::new(
            Role::DpCoordinator,
            "VLLM::DPCoordinator",
            1,
            c,
        ));
    }

    // Python's resource tracker starts with the first spawned child or SharedMemory.
    if !r.fork || workers_per_engine > 0 || (r.multimodal && r.mm_processor_cache_type == "shm") {
        let c = vec![cx
            .exact(
                "runtime.resource_tracker",
                b.tracker_bytes,
                Category::Heap,
                "a bare Python running multiprocessing.resource_tracker".into(),
                "multiprocessing/resource_tracker.py",
            )
            .calibrated(
                &b.provenance_imports,
                b.tracker_bytes / 2,
                b.tracker_bytes * 2,
            )];
        processes.push(ProcessEstimate::new(
            Role::Helper,
            "python -c from multiprocessing.resource_tracker import main",
            1,
            c,
        ));
    }

    let page_cache_bytes = match r.load_strategy {
        LoadStrategy::Other => 0,
        _ => model.weights.total_bytes,
    };
    Built {
        processes,
        page_cache_bytes,
        shm_mapped_bytes: shm_mapped,
        notes,
    }
}

fn gib(bytes: u64) -> String {
    let g = bytes as f64 / GIB as f64;
    if g.fract() == 0.0 {
        format!("{g:.0} GiB")
    } else {
        format!("{g:.2} GiB")
    }
}

/// Python, torch and vLLM imports plus this process's share of library pages.
fn baseline(cx: &Ctx, role: Role, py_processes: u64, fork_group: u64) -> Vec<Component> {
    let b = cx.b;
    let anon = match role {
        Role::ApiServer => b.api_anon_bytes,
        Role::Worker => b.worker_anon_bytes,
        _ => b.engine_anon_bytes,
    };
    let mut out = Vec::new();
    let imports = cx
        .exact(
            "runtime.python_imports",
            anon,
            Category::Heap,
            format!(
                "anonymous memory after Python, torch and vLLM imports and start-up = {}",
                crate::units::bytes(anon)
            ),
            "vllm/entrypoints/openai/api_server.py (imports)",
        )
        .calibrated(&b.provenance_imports, anon * 9 / 10, anon * 11 / 10);
    if fork_group > 1 {
        // Forked processes split the parent's untouched pages by PSS; how many stay shared
        // depends on how much each process writes (refcounts dirty pages) [est: half].
        let share = anon / 2 + anon / 2 / fork_group;
        out.push(
            Component {
                bytes: share,
                formula: format!(
                    "imports × (1/2 + 1/2 ÷ {fork_group} forked processes) = {} × {:.3}",
                    crate::units::bytes(anon),
                    share as f64 / anon as f64
                ),
                ..imports
            }
            .range(anon / fork_group, anon)
            .note("forked: copy-on-write pages shared with the parent count once across the tree"),
        );
    } else {
        out.push(imports);
    }
    let n = py_processes.max(1);
    let libs = b.libraries_bytes / n;
    out.push(
        cx.exact(
            "runtime.libraries",
            libs,
            Category::CodeTorch,
            format!(
                "library pages ÷ Python processes = {} ÷ {n}",
                crate::units::bytes(b.libraries_bytes)
            ),
            "torch/lib, nvidia/*/lib, triton, vllm/_C (mapped files)",
        )
        .calibrated(&b.provenance_imports, libs * 8 / 10, b.libraries_bytes)
        .note("file-backed and shared: PSS splits it among the processes mapping it"),
    );
    if role == Role::Worker && cx.r.device == Device::Cpu {
        out.push(
            cx.exact(
                "runtime.worker_libraries",
                b.worker_libraries_bytes,
                Category::CodeTorch,
                "vLLM CPU kernels (_C.abi3.so), oneDNN".into(),
                "vllm/_C.abi3.so",
            )
            .calibrated(
                &b.provenance_imports,
                b.worker_libraries_bytes / 2,
                b.worker_libraries_bytes * 2,
            ),
        );
    }
    out
}

/// A tokenizer copy: the Rust tokenizer plus `get_vocab()` as a Python dict.
fn tokenizer(cx: &Ctx, role: &str) -> Option<Component> {
    if cx.r.skip_tokenizer_init {
        return None;
    }
    let v = cx.m.config.vocab_size;
    let bytes = v * 400;
    let (source, why) = if role == "api-server" {
        ("vllm/v1/engine/async_llm.py", "the frontend's tokenizer")
    } else {
        (
            "vllm/v1/structured_output/__init__.py",
            "a second copy for structured outputs",
        )
    };
    Some(
        cx.exact(
            "tokenizer",
            bytes,
            Category::Heap,
            format!("vocab × ≈400 B = {v} × 400"),
            source,
        )
        .range(v * 150, v * 1000)
        .note(why),
    )
}

/// Per-request Python state: grows with the tokens held, up to a KV cache full of requests.
fn request_state(cx: &Ctx, bytes_per_token: u64, source: &str) -> Component {
    let r = cx.r;
    let kv_tokens = (r.num_kv_blocks * r.block_size).max(r.max_model_len);
    let tokens = kv_tokens.min(r.max_num_seqs * r.max_model_len);
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

fn scheduler(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let mut out = Vec::new();
    // KVCacheBlock: a dataclass without slots (≈168 B) up to 0.12, with slots (≈136 B) later.
    let per = if r.version >= Version::V0_32 {
        136
    } else {
        168
    };
    let blocks = r.num_kv_blocks;
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
    let v = cx.m.config.vocab_size;
    let bitmask = r.max_num_seqs * (1 + r.num_speculative_tokens) * v.div_ceil(32) * 4;
    out.push(
        cx.exact(
            "structured_output.bitmask",
            0,
            Category::Heap,
            format!(
                "max_num_seqs × (1 + spec) × ceil(V/32) × 4 B = {} × {} × {} × 4",
                r.max_num_seqs,
                1 + r.num_speculative_tokens,
                v.div_ceil(32)
            ),
            "vllm/v1/structured_output/__init__.py",
        )
        .range(0, bitmask)
        .note("allocated on the first structured-output request"),
    );
    out.push(
        cx.exact(
            "structured_output.grammar_cache",
            0,
            Category::Heap,
            format!(
                "≤ VLLM_XGRAMMAR_CACHE_MB = {}",
                crate::units::bytes(r.xgrammar_cache_bytes)
            ),
            "vllm/v1/structured_output/backend_xgrammar.py",
        )
        .range(0, r.xgrammar_cache_bytes)
        .note("compiled grammars, bounded by VLLM_XGRAMMAR_CACHE_MB"),
    );
    out
}

/// Resident pages of a message queue at rest: the metadata page and a few chunks' first
/// pages (measured: 44 KiB after 16 requests), split between writer and reader by PSS.
const MQ_RESIDENT: u64 = 44 * KIB;

fn mq(cx: &Ctx, id: &str, mapped: u64, formula: String, mappers: u64) -> Component {
    let share = MQ_RESIDENT / mappers.max(1);
    cx.exact(
        id,
        share,
        Category::Shm,
        format!("{formula}; resident ≈ 44 KiB ÷ {mappers} processes"),
        "vllm/distributed/device_communicators/shm_broadcast.py",
    )
    .range(share, mapped / mappers.max(1))
    .mapped(mapped)
    .note("/dev/shm/psm_*: sparse; pages become resident only as messages are written")
}

fn broadcast_size(r: &Resolved, readers: u64) -> (u64, String) {
    let chunk = r.mq_broadcast_chunk_bytes;
    let bytes = (chunk + 1 + readers) * 10;
    (
        bytes,
        format!(
            "(VLLM_MQ_MAX_CHUNK_BYTES_MB + 1 + readers) × 10 = ({} + 1 + {readers}) × 10 = {bytes}",
            chunk
        ),
    )
}

fn response_size(r: &Resolved) -> (u64, String) {
    let chunk = r.mq_response_chunk_bytes;
    let bytes = (chunk + 2) * 10;
    (
        bytes,
        format!("(max_chunk_bytes + 2) × 10 = ({chunk} + 2) × 10 = {bytes}"),
    )
}

fn message_queues_engine(cx: &Ctx, workers: u64) -> (Vec<Component>, u64) {
    let r = cx.r;
    let (bc, bf) = broadcast_size(r, workers);
    let (rs, rf) = response_size(r);
    let mut out = vec![mq(cx, "shm.rpc_broadcast_mq", bc, bf, workers + 1)];
    // The engine reads every worker's response queue.
    let resp = mq(
        cx,
        "shm.worker_response_mqs",
        rs * workers,
        format!("{workers} × {rf}"),
        2,
    );
    out.push(Component {
        bytes: resp.bytes * workers,
        low_bytes: resp.low_bytes * workers,
        ..resp
    });
    let mut mapped = bc + rs * workers;
    if r.shm_tensor_arena {
        let arena = ((256 * MIB) + 1 + workers) * 8;
        mapped += arena;
        out.push(mq(
            cx,
            "shm.tensor_arena",
            arena,
            format!("(256 MiB + 1 + readers) × 8 = {arena}"),
            workers + 1,
        ));
    }
    (out, mapped)
}

fn message_queues_worker(cx: &Ctx, workers: u64, options: &Options) -> (Vec<Component>, u64) {
    let r = cx.r;
    let (bc, bf) = broadcast_size(r, workers);
    let (rs, rf) = response_size(r);
    let mut out = vec![
        mq(cx, "shm.rpc_broadcast_mq", bc, bf, workers + 1),
        mq(cx, "shm.worker_response_mq", rs, rf, 2),
    ];
    let mut mapped = 0;
    let tp = r.tensor_parallel_size;
    if tp > 1 && r.device == Device::Cuda {
        let bytes = ((4 * MIB) + tp) * 6;
        mapped += bytes * r.pipeline_parallel_size;
        out.push(mq(
            cx,
            "shm.tp_group_broadcaster",
            bytes,
            format!("(4 MiB + W) × 6 = ({} + {tp}) × 6", 4 * MIB),
            tp,
        ));
        out.push(
            cx.exact(
                "nccl.host_buffers",
                32 * MIB,
                Category::Pinned,
                "NCCL proxy and /dev/shm/nccl-* buffers per rank [est]".into(),
                "NCCL (not vLLM)",
            )
            .range(10 * MIB, 100 * MIB)
            .note("≈ 9 MiB pinned per connection plus small /dev/shm segments (user reports)"),
        );
    }
    if tp > 1 && r.device == Device::Cpu {
        let cores = options.cpu_cores.unwrap_or(16);
        let threads = (cores / tp).max(1);
        let bytes = threads * 2 * MIB;
        out.push(
            cx.exact(
                "shm.cpu_allreduce",
                bytes,
                Category::Shm,
                format!("OMP threads × 2 MiB = {threads} × 2 MiB (MAP_POPULATE: resident)"),
                "csrc/cpu/shm.cpp",
            )
            .range(bytes / 2, bytes * 2),
        );
        mapped += bytes * tp;
    }
    (out, mapped)
}

/// The process that runs the model: buffers, weights, runtime, features.
fn runner(cx: &Ctx, options: &Options, notes: &mut Vec<String>) -> Vec<Component> {
    let r = cx.r;
    let mut out = Vec::new();
    match r.device {
        Device::Cuda => out.extend(gpu_runtime(cx)),
        Device::Cpu => out.extend(cpu_runtime(cx)),
    }
    if r.device == Device::Cpu {
        out.extend(cpu_runner_buffers(cx));
    } else if r.model_runner_v2 {
        out.extend(v2_runner_buffers(cx));
    } else {
        out.extend(v1_runner_buffers(cx));
    }
    out.extend(lazy_buffers(cx));
    out.extend(weights(cx, notes));
    if r.device == Device::Cpu {
        out.extend(cpu_kv_cache(cx, &out, options, notes));
    } else {
        out.extend(gpu_features(cx, notes));
    }
    out
}

fn gpu_runtime(cx: &Ctx) -> Vec<Component> {
    let (r, b, cfg) = (cx.r, cx.b, &cx.m.config);
    let mut out = vec![
        cx.exact(
            "runtime.cuda_context",
            b.cuda_context_bytes,
            Category::CodeCuda,
            "CUDA context creation (driver state, libcuda pages)".into(),
            "torch.cuda._lazy_init",
        )
        .calibrated(
            &b.provenance_cuda,
            b.cuda_context_bytes * 8 / 10,
            b.cuda_context_bytes * 13 / 10,
        ),
        cx.exact(
            "runtime.first_forward",
            b.first_forward_bytes,
            Category::Heap,
            "lazy CUDA module loading, cuBLAS/cuDNN handles and workspaces".into(),
            "torch (first kernels)",
        )
        .calibrated(
            &b.provenance_first_forward,
            b.first_forward_bytes / 2,
            b.first_forward_bytes * 3 / 2,
        ),
    ];
    if r.torch_compile {
        out.push(
            cx.exact("runtime.torch_compile", 133 * MIB, Category::Heap, "Dynamo/Inductor state, Triton launchers (one process; vLLM forces TORCHINDUCTOR_COMPILE_THREADS=1)".into(), "vllm/env_override.py")
                .range(100 * MIB, 500 * MIB)
                .note("0 with --enforce-eager"),
        );
    }
    let sizes = r.cudagraph_capture_sizes.len() as u64;
    if sizes > 0 {
        let layers = cfg.num_layers / r.pipeline_parallel_size;
        let piecewise = if r.cudagraph_mode.contains("PIECEWISE") {
            sizes
        } else {
            0
        };
        let full_limit = r.max_num_seqs * (1 + r.num_speculative_tokens);
        let full = if r.cudagraph_mode.starts_with("FULL") {
            r.cudagraph_capture_sizes
                .iter()
                .filter(|s| **s <= full_limit)
                .count() as u64
        } else {
            0
        };
        let units = (piecewise + full) * layers;
        // Measured 3.9 MiB per whole-model eager graph of 8 layers (≈0.49 MiB per layer);
        // Inductor-fused pieces launch fewer kernels [est: a quarter of that].
        let per = 125 * KIB;
        let bytes = units * per;
        out.push(
            cx.exact(
                "runtime.cuda_graphs",
                bytes,
                Category::Heap,
                format!("(piecewise {piecewise} + full {full} graphs) × {layers} layers × ≈125 KiB = {units} × 125 KiB"),
                "vllm/compilation/cuda_graph.py",
            )
            .range(bytes * 4 / 10, units * 500 * KIB)
            .note("host-side graph nodes; 0 with --enforce-eager"),
        );
    }
    out
}

fn cpu_runtime(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let cfg = &cx.m.config;
    let mut out = Vec::new();
    if r.torch_compile {
        // Measured +82 MiB (4 layers × 256) and +90 MiB (8 × 512) against --enforce-eager.
        let extra = 2 * MIB * cfg.num_layers.saturating_sub(4);
        let bytes = 82 * MIB + extra;
        out.push(
            cx.exact(
                "runtime.torch_compile",
                bytes,
                Category::Heap,
                format!("82 MiB + 2 MiB × (layers − 4) = 82 MiB + 2 MiB × {}", cfg.num_layers.saturating_sub(4)),
                "vllm/platforms/cpu.py (DYNAMO_TRACE_ONCE, inductor)",
            )
            .calibrated(crate::calibrate::BUILT_IN_CPU_STACK, bytes * 8 / 10, bytes * 2)
            .note("Dynamo/Inductor state, warm-up activations kept by the allocator; 0 with --enforce-eager"),
        );
    }
    out
}

/// GPU model runner V1 (0.10–0.12; 0.32/0.33 with VLLM_USE_V2_MODEL_RUNNER=0).
fn v1_runner_buffers(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let v = r.version;
    let (rr, l, t) = (r.max_num_seqs, r.max_model_len, r.max_num_batched_tokens);
    let nb = r.blocks_per_request();
    let h = cx.m.config.hidden_size;
    let dt = r.dtype.activation_bytes();
    let ib = "vllm/v1/worker/gpu_input_batch.py";
    let bt = "vllm/v1/worker/block_table.py";
    let mr = "vllm/v1/worker/gpu_model_runner.py";
    let new = v >= Version::V0_32;
    let mut out = vec![cx.exact(
        "input_batch.token_ids",
        4 * rr * l,
        Category::Heap,
        format!("max_num_seqs × max_model_len × 4 B = {rr} × {l} × 4"),
        ib,
    )];
    if v >= Version::V0_11 {
        out.push(cx.exact(
            "input_batch.is_token_ids",
            rr * l,
            Category::Heap,
            format!("max_num_seqs × max_model_len × 1 B = {rr} × {l}"),
            ib,
        ));
    }
    if new {
        out.push(cx.host_buf(
            "input_batch.counters",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            ib,
        ));
        let c = out.pop().map(|c| times(c, 4, "4 pinned counters"));
        out.extend(c);
    } else {
        out.push(cx.exact(
            "input_batch.num_tokens",
            12 * rr,
            Category::Heap,
            format!("3 × max_num_seqs × 4 B = 3 × {rr} × 4"),
            ib,
        ));
        out.push(cx.host_buf(
            "input_batch.num_computed_tokens",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            ib,
        ));
    }
    let s = cx.host_buf(
        "input_batch.sampling_params",
        4 * rr,
        "max_num_seqs × 4 B",
        &format!("{rr} × 4"),
        ib,
    );
    out.push(times(s, 6, "temperature, top_p, top_k, 3 penalties"));
    let acc = if new { 4 } else { 8 };
    out.push(cx.host_buf(
        "input_batch.num_accepted_tokens",
        acc * rr,
        &format!("max_num_seqs × {acc} B"),
        &format!("{rr} × {acc}"),
        ib,
    ));
    let lora_b = if v >= Version::V0_12 { 8 } else { 4 };
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
    if !new {
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
    if !new {
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
    if v >= Version::V0_11 {
        out.push(cx.host_buf(
            "runner.is_token_ids",
            t,
            "max_num_batched_tokens × 1 B",
            &t.to_string(),
            mr,
        ));
        let (db, dn) = if v >= Version::V0_12 {
            (1, "bool")
        } else {
            (8, "int64")
        };
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
    let arange = if new {
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
            if new { "" } else { "L, " }
        ),
        mr,
    ));
    let (sn, sexpr) = if v >= Version::V0_12 {
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
    if v >= Version::V0_12 {
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
    if new {
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
        let fi = "vllm/v1/attention/backends/flashinfer.py";
        let l_blocks = l.div_ceil(r.block_size);
        out.push(cx.host_buf(
            "flashinfer.paged_kv_indices",
            4 * rr * l_blocks,
            "max_num_seqs × cdiv(L, B) × 4 B",
            &format!("{rr} × {l_blocks} × 4"),
            fi,
        ));
        let wrappers = 3 + if r.cudagraph_mode.starts_with("FULL") {
            r.cudagraph_capture_sizes
                .iter()
                .filter(|s| **s <= rr)
                .count() as u64
        } else {
            0
        };
        out.push(cx.exact(
            "flashinfer.workspaces",
            wrappers * 8 * MIB,
            Category::Pinned,
            format!("wrappers × 8 MiB = {wrappers} × 8 MiB (prefill, decode, cascade + one per FULL capture size)"),
            fi,
        ));
    }
    if r.num_speculative_tokens > 0 {
        out.push(cx.host_buf(
            "spec_decode.backup_next_token_ids",
            4 * rr,
            "max_num_seqs × 4 B",
            &format!("{rr} × 4"),
            "vllm/v1/spec_decode/eagle.py",
        ));
    }
    out
}

/// GPU model runner V2 (0.32/0.33 default): one pinned R×L token table and small pools.
fn v2_runner_buffers(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let (rr, l, t) = (r.max_num_seqs, r.max_model_len, r.max_num_batched_tokens);
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
        pools.range(b / 2, b * 2)
    };
    let mut out = vec![
        cx.host_buf(
            "v2.all_token_ids",
            4 * rr * l,
            "max_num_seqs × max_model_len × 4 B",
            &format!("{rr} × {l} × 4"),
            st,
        ),
        pools,
        cx.exact(
            "v2.numpy_state",
            12 * rr + 8 * rr,
            Category::Heap,
            format!("max_num_seqs × 20 B = {rr} × 20"),
            st,
        ),
        times(
            cx.host_buf(
                "v2.staged_contents",
                4 * t,
                "max_num_batched_tokens × 4 B",
                &format!("{t} × 4"),
                "vllm/v1/worker/gpu/buffer_utils.py",
            ),
            2,
            "2 pool slots",
        ),
    ];
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

/// CPU backend: the V1 runner with `device="cpu"`, nothing pinned (vllm-cpu-backend.md §A3.2).
fn cpu_runner_buffers(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let (rr, l, t) = (r.max_num_seqs, r.max_model_len, r.max_num_batched_tokens);
    let nb = r.blocks_per_request();
    let h = cx.m.config.hidden_size;
    let dt = r.dtype.activation_bytes();
    let ib = "vllm/v1/worker/gpu_input_batch.py";
    let bt = "vllm/v1/worker/block_table.py";
    let mr = "vllm/v1/worker/gpu_model_runner.py";
    let heap = |id: &str, bytes: u64, f: String, s: &str| cx.exact(id, bytes, Category::Heap, f, s);
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

/// A component standing for `n` equal allocations.
fn times(mut c: Component, n: u64, what: &str) -> Component {
    c.bytes *= n;
    c.low_bytes *= n;
    c.high_bytes *= n;
    c.formula = format!("{n} × {} ({what})", c.formula);
    c
}

/// Buffers allocated on first use and never freed.
fn lazy_buffers(cx: &Ctx) -> Vec<Component> {
    let r = cx.r;
    let (rr, l) = (r.max_num_seqs, r.max_model_len);
    let v = cx.m.config.vocab_size;
    let mut out = vec![cx
        .exact(
            "input_batch.allowed_token_ids_mask",
            0,
            Category::Heap,
            format!("max_num_seqs × vocab × 1 B = {rr} × {v}"),
            "vllm/v1/worker/gpu_input_batch.py",
        )
        .range(0, rr * v)
        .note("allocated on the first request with allowed_token_ids, then kept")];
    if r.pin_memory {
        out.push(
            cx.exact(
                "sampler.prompt_token_ids",
                0,
                Category::Pinned,
                format!("≤ pow2(max_num_seqs × max_model_len × 8 B) = pow2({rr} × {l} × 8)"),
                "vllm/v1/worker/gpu_input_batch.py",
            )
            .range(0, pow2(8 * rr * l))
            .note("per step with penalties; the pinned block stays cached"),
        );
    }
    out
}

/// Per-parameter tensor sizes of one rank, in load order (for pinned per-parameter copies).
fn parameter_tensors(cx: &Ctx) -> Vec<u64> {
    let c = &cx.m.config;
    let tp = cx.r.tensor_parallel_size;
    let dt = cx.m.config.dtype.bytes().max(1.0) as u64;
    let h = c.hidden_size;
    let q = c.num_attention_heads * c.head_dim;
    let kv = c.num_kv_heads * c.head_dim;
    let mut layer = vec![h * (q + 2 * kv) * dt / tp, q * h * dt / tp];
    if c.num_experts > 0 {
        layer.push(c.num_experts * 2 * c.moe_intermediate_size * h * dt / tp);
        layer.push(c.num_experts * c.moe_intermediate_size * h * dt / tp);
    } else {
        layer.push(2 * c.intermediate_size * h * dt / tp);
        layer.push(c.intermediate_size * h * dt / tp);
    }
    let layers = c.num_layers / cx.r.pipeline_parallel_size;
    let mut out = Vec::new();
    for _ in 0..layers {
        out.extend(&layer);
    }
    out
}

fn weights(cx: &Ctx, notes: &mut Vec<String>) -> Vec<Component> {
    let (r, m) = (cx.r, cx.m);
    let w = &m.weights;
    let shard = w.largest_file_bytes;
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
    match r.load_strategy {
        LoadStrategy::Lazy | LoadStrategy::Torchao => {
            let mut c = mark(cx.exact(
                "weights.load.lazy",
                shard,
                Category::Weights,
                format!(
                    "largest safetensors file (mmap, pages touched while copying) = {}",
                    crate::units::bytes(shard)
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
                cx.exact("weights.load.eager", bytes, Category::Heap, format!("≈ 2.5 × largest file = 2.5 × {}", crate::units::bytes(shard)), wl)
                    .range(shard * 2, shard * 3)
                    .load_only()
                    .note("f.read() of the whole file, then deserialized copies; the previous file's dict lives until replaced"),
            );
        }
        LoadStrategy::Multithread => {
            let n = r.load_threads.min(w.files.max(1) as u64);
            let bytes = n * shard;
            out.push(
                cx.exact(
                    "weights.load.multithread",
                    bytes,
                    Category::Heap,
                    format!(
                        "threads × largest file = {n} × {}",
                        crate::units::bytes(shard)
                    ),
                    wl,
                )
                .range(bytes / 2, bytes * 3 / 2)
                .load_only(),
            );
        }
        LoadStrategy::Prefetch => {
            notes.push("--safetensors-load-strategy prefetch: the checkpoint is read into the page cache before loading (no RSS)".into());
        }
        LoadStrategy::Other => {}
    }
    if r.device == Device::Cpu {
        let c = &m.config;
        let tp = r.tensor_parallel_size;
        let dt = r.dtype.activation_bytes();
        let vocab = 2 * c.vocab_size * c.hidden_size * dt / tp;
        let resident = w.total_bytes / r.world_size() + vocab;
        let cmp = cx.exact(
            "weights.resident",
            resident,
            Category::Heap,
            format!(
                "weights ÷ ranks + 2 × vocab × hidden × dtype ÷ TP = {} ÷ {} + 2 × {} × {} × {dt} ÷ {tp}",
                w.total_bytes,
                r.world_size(),
                c.vocab_size,
                c.hidden_size
            ),
            "vllm/model_executor/layers/utils.py (oneDNN packing)",
        )
        .note("linear layers re-packed by oneDNN (1×); embedding and LM head keep the original and a packed copy");
        out.push(if exact {
            cmp
        } else {
            cmp.range(resident * 9 / 10, resident * 11 / 10)
        });
        // Allocator retention of load-time copies, per layer [est].
        let extra_layers = c.num_layers.saturating_sub(4);
        let residual = 3 * MIB * extra_layers * c.hidden_size / 512;
        out.push(
            cx.exact(
                "weights.load_residual",
                residual,
                Category::Heap,
                format!(
                    "≈ 3 MiB × (layers − 4) × hidden ÷ 512 = 3 MiB × {extra_layers} × {} ÷ 512",
                    c.hidden_size
                ),
                "glibc malloc (freed originals)",
            )
            .range(0, residual * 2 + 10 * MIB),
        );
        let largest = parameter_tensors(cx).into_iter().max().unwrap_or(0);
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

/// The CPU backend's KV cache: one zero-filled allocation in each worker.
fn cpu_kv_cache(
    cx: &Ctx,
    so_far: &[Component],
    options: &Options,
    notes: &mut Vec<String>,
) -> Vec<Component> {
    let (r, c) = (cx.r, &cx.m.config);
    let per_token = c.kv_bytes_per_token(r.kv_cache_dtype.bytes()) / r.world_size().max(1);
    let per_block = per_token * r.block_size;
    let src = "vllm/v1/worker/utils.py (allocate_kv_cache)";
    match r.cpu_kv_cache_bytes {
        Some(budget) => {
            let blocks = r.num_kv_blocks;
            let bytes = blocks * per_block;
            vec![cx.exact(
                "kv_cache.cpu",
                bytes,
                Category::Heap,
                format!("floor(budget ÷ block bytes) × block bytes = {blocks} × {per_block} (budget {})", crate::units::bytes(budget)),
                src,
            )
            .note("torch.zeros: resident at start-up")]
        }
        None => {
            let Some(node) = options.host_memory_bytes else {
                notes.push("CPU KV cache is automatic (no VLLM_CPU_KVCACHE_SPACE) and the host memory is unknown: set --env VLLM_CPU_KVCACHE_SPACE=N".into());
                return Vec::new();
            };
            let target = (node as f64 * r.gpu_memory_utilization) as u64;
            let rest: u64 = so_far
                .iter()
                .filter(|c| c.phase == crate::estimate::Phase::Steady)
                .map(|c| c.bytes)
                .sum();
            let kv = target.saturating_sub(rest) / per_block.max(1) * per_block;
            notes.push(format!(
                "automatic CPU KV cache: the worker grows to gpu_memory_utilization × node memory = {} × {}",
                r.gpu_memory_utilization,
                crate::units::bytes(node)
            ));
            vec![cx
                .exact(
                    "kv_cache.cpu",
                    kv,
                    Category::Heap,
                    format!(
                        "u × node memory − worker's other memory = {} × {node} − {rest}",
                        r.gpu_memory_utilization
                    ),
                    src,
                )
                .range(kv * 95 / 100, kv * 105 / 100)
                .note("automatic size: whatever the worker keeps after warm-up shrinks the cache")]
        }
    }
}

/// CPU offload, KV offload, sleep mode, LoRA: GPU features that live in host RAM.
fn gpu_features(cx: &Ctx, notes: &mut Vec<String>) -> Vec<Component> {
    let (r, c) = (cx.r, &cx.m.config);
    let mut out = Vec::new();
    if r.cpu_offload_bytes > 0 {
        // One pinned tensor per parameter until the budget is crossed.
        let mut raw = 0u64;
        let mut pinned = 0u64;
        for p in parameter_tensors(cx) {
            if raw >= r.cpu_offload_bytes {
                break;
            }
            raw += p;
            pinned += pow2(p);
        }
        out.push(
            cx.exact(
                "cpu_offload.weights",
                pinned,
                Category::Pinned,
                format!(
                    "Σ pow2(parameter) until cpu_offload_gb is crossed = Σ pow2 over {} of weights",
                    crate::units::bytes(raw)
                ),
                "vllm/model_executor/models/utils.py (maybe_offload_to_cpu)",
            )
            .range(raw, pinned)
            .note("per rank; pinned and rounded per parameter"),
        );
    }
    let kv_layer_page = 2
        * r.block_size
        * (c.num_kv_heads / r.tensor_parallel_size).max(1)
        * c.head_dim
        * r.kv_cache_dtype.bytes() as u64;
    let layers = c.num_layers / r.pipeline_parallel_size;
    if let Some(blocks) = r.kv_connector_cpu_blocks {
        let per_layer = blocks * kv_layer_page;
        let pinned = layers * pow2(per_layer);
        out.push(cx.exact(
            "kv_offload.cpu_tensors",
            pinned,
            Category::Pinned,
            format!("layers × pow2(num_cpu_blocks × page) = {layers} × pow2({blocks} × {kv_layer_page})"),
            "vllm/v1/kv_offload/worker/cpu_gpu.py",
        ));
    } else if r.kv_offloading_bytes > 0 && r.version >= Version::V0_12 {
        let ranks = r.world_size();
        if r.kv_offloading_backend == "lmcache" {
            let per = r.kv_offloading_bytes / ranks;
            out.push(
                cx.exact(
                    "kv_offload.lmcache",
                    per,
                    Category::Pinned,
                    format!(
                        "kv_offloading_size ÷ (TP × PP) = {} ÷ {ranks}",
                        r.kv_offloading_bytes
                    ),
                    "vllm/config/vllm.py (LMCache max_local_cpu_size)",
                )
                .range(per, per * 11 / 10),
            );
        } else if r.version >= Version::V0_32 {
            let per = r.kv_offloading_bytes / ranks;
            out.push(
                cx.exact("kv_offload.shared_region", per, Category::Shm, format!("kv_offloading_size ÷ ranks mapping it = {} ÷ {ranks}", r.kv_offloading_bytes), "vllm/v1/kv_offload/cpu/shared_offload_region.py")
                    .mapped(r.kv_offloading_bytes)
                    .note("/dev/shm/vllm_offload_*.mmap, populated, then unlinked: shows as (deleted); no pow2 rounding"),
            );
        } else {
            let per_rank = r.kv_offloading_bytes / ranks;
            let blocks = per_rank / (kv_layer_page * layers).max(1);
            let pinned = layers * pow2(blocks * kv_layer_page);
            out.push(
                cx.exact("kv_offload.cpu_tensors", pinned, Category::Pinned, format!("layers × pow2(blocks × page) = {layers} × pow2({blocks} × {kv_layer_page})"), "vllm/v1/kv_offload/worker/cpu_gpu.py")
                    .range(0, pinned)
                    .note("0.12's native backend passes num_cpu_blocks = 0 by reading; it may fail to start"),
            );
        }
    }
    if r.sleep_mode {
        let segs: u64 = parameter_tensors(cx)
            .into_iter()
            .map(|p| pow2(p.div_ceil(2 * MIB) * 2 * MIB))
            .sum();
        out.push(
            cx.exact("sleep_mode.weight_backups", segs, Category::Pinned, "Σ pow2(2 MiB-aligned parameter segment) per rank".into(), "vllm/device_allocator/cumem.py")
                .range(0, segs)
                .note("pinned copies of the weights while asleep; after wake-up they stay in PyTorch's pinned cache (by reading)"),
        );
        notes.push("sleep mode: level-1 sleep copies the weights to pinned host memory".into());
    }
    if r.enable_lora {
        let rank = r.max_lora_rank;
        let h = c.hidden_size;
        let dt = r.dtype.activation_bytes();
        let q = c.num_attention_heads * c.head_dim;
        let kv = c.num_kv_heads * c.head_dim;
        let modules = [
            (h, q + 2 * kv),
            (q, h),
            (h, 2 * c.intermediate_size),
            (c.intermediate_size, h),
        ];
        let per_layer: u64 = modules
            .iter()
            .map(|(i, o)| pow2(rank * i * dt) + pow2(o * rank * dt))
            .sum();
        let per_adapter = per_layer * c.num_layers;
        let bytes = per_adapter * r.max_cpu_loras;
        out.push(
            cx.exact(
                "lora.cpu_cache",
                bytes,
                Category::Pinned,
                format!("max_cpu_loras × layers × Σ pow2(r·in·dt) + pow2(out·r·dt) = {} × {} × {per_layer}", r.max_cpu_loras, c.num_layers),
                "vllm/lora/models.py",
            )
            .range(0, bytes)
            .note("adapters at rank max_lora_rank on every linear layer; only once loaded"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow2_rounds_like_the_pinned_allocator() {
        assert_eq!(pow2(327_680), 524_288);
        assert_eq!(pow2(64 << 20), 64 << 20);
        assert_eq!(pow2(1028), 2048);
        assert_eq!(pow2(0), 1);
    }
}
