//! The host allocations of a vLLM server, per process, as formulas
//! (docs/vllm-host-ram.md §1–§13).
//!
//! This module builds the processes and their runtime, scheduler and message-queue parts;
//! [`super::buffers`] has the model runner's buffers and [`super::weights`] the weights, the
//! CPU KV cache and the GPU features that live in host RAM. Every byte count is computed as a
//! [`Checked`] value, so an absurd flag gives a too-large value (refused by
//! [`crate::estimate::estimate`]) instead of a wrapped one.

use crate::attribute::Category;
use crate::calibrate::Baselines;
use crate::engines::Options;
use crate::footprint::{Component, Device, ProcessEstimate};
use crate::model::Model;
use crate::proc::roles::Role;
use crate::units::Checked;

use super::buffers::{cpu_runner_buffers, lazy_buffers, v1_runner_buffers, v2_runner_buffers};
use super::defaults::{LoadStrategy, Resolved};
use super::prompt_embeds::{prompt_embeds, Holder};
use super::runtime::{self, baseline, tokenizer};
use super::weights::{cpu_kv_cache, gpu_features, weights};
use super::{collectives, kv_transfer, mm_cache};

pub(super) const KIB: u64 = 1 << 10;
pub(super) const MIB: u64 = 1 << 20;
pub(super) const GIB: u64 = 1 << 30;

/// PyTorch's caching host allocator rounds every pinned block up to a power of two
/// (`u64::MAX` when that does not fit in 64 bits).
pub fn pow2(x: u64) -> u64 {
    Checked::new(x).pow2().raw()
}

/// A plain number as a [`Checked`] one, so every formula built on it is checked.
pub(super) fn n(v: u64) -> Checked {
    Checked::new(v)
}

/// What [`build`] returns.
pub struct Built {
    pub processes: Vec<ProcessEstimate>,
    pub page_cache_bytes: u64,
    pub shm_mapped_bytes: u64,
    pub notes: Vec<String>,
}

/// The buffer list of one process, with the version label used in every component.
pub(super) struct Ctx<'a> {
    pub m: &'a Model,
    pub r: &'a Resolved,
    pub b: &'a Baselines,
    pub ver: &'static str,
}

impl Ctx<'_> {
    pub fn exact(
        &self,
        id: &str,
        bytes: impl Into<Checked>,
        cat: Category,
        formula: String,
        source: &str,
    ) -> Component {
        Component::exact(id, bytes, cat, formula, source, self.ver)
    }

    /// A buffer that is pinned on CUDA (rounded to pow2) and plain on CPU.
    pub fn host_buf(
        &self,
        id: &str,
        raw: impl Into<Checked>,
        expr: &str,
        nums: &str,
        source: &str,
    ) -> Component {
        let raw = raw.into();
        if self.r.pin_memory {
            let bytes = raw.pow2();
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
    let mut shm_mapped = n(0);
    let api_count = r.api_server_count;
    let engines = r.data_parallel_size_local;
    let workers_per_engine = if r.runner_in_engine_core {
        0
    } else {
        r.world_size()
    };
    let launcher = api_count > 1;
    let coordinator = r.data_parallel_size > 1;
    let py_processes = n(api_count)
        + u64::from(launcher)
        + engines
        + n(engines) * workers_per_engine
        + u64::from(coordinator);
    // With fork, children share their parent's import pages copy-on-write until written.
    // Several API servers are started with spawn (`APIServerProcessManager`), so they share
    // nothing with the launcher.
    let forked = if launcher {
        py_processes.saturating_sub(api_count)
    } else {
        py_processes
    };
    let fork_group = if r.fork { forked.max(1) } else { n(1) };
    let api_fork_group = if launcher { n(1) } else { fork_group };

    let mut processes = Vec::new();

    // API server(s).
    if api_count > 0 {
        let mut c = baseline(&cx, Role::ApiServer, py_processes, api_fork_group);
        c.extend(tokenizer(&cx, "api-server"));
        c.push(request_state(
            &cx,
            40 + 45,
            "vllm/v1/engine/output_processor.py",
        ));
        c.extend(mm_cache::api_server(&cx));
        shm_mapped = shm_mapped + mm_cache::shm_mapped(&cx);
        c.extend(prompt_embeds(&cx, Holder::ApiServer));
        let title = if api_count > 1 {
            "VLLM::APIServer_{i}"
        } else {
            "API server (the vllm serve command line)"
        };
        processes.push(ProcessEstimate::new(Role::ApiServer, title, api_count, c));
        if launcher {
            let c = baseline(&cx, Role::ApiServer, py_processes, n(1));
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
        c.extend(mm_cache::engine_core(&cx));
        c.extend(prompt_embeds(&cx, Holder::EngineCore));
        if workers_per_engine > 0 {
            let (q, mapped) = message_queues_engine(&cx, workers_per_engine);
            shm_mapped = shm_mapped + mapped * engines;
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
        shm_mapped = shm_mapped + mapped * engines;
        c.extend(q);
        c.extend(runner(&cx, options, &mut notes));
        // The worker's own copy of each running request's prompt embeddings.
        c.extend(prompt_embeds(&cx, Holder::Worker));
        // `setup_proc_title_and_log_prefix`: _DP{i} with data parallelism, _TP{j} (here the
        // rank within the engine) with more than one rank.
        let dp = if r.data_parallel_size > 1 {
            "_DP{i}"
        } else {
            ""
        };
        let rank = if r.world_size() > 1 { "_TP{j}" } else { "" };
        let title = format!("VLLM::Worker{dp}{rank}");
        processes.push(ProcessEstimate::new(
            Role::Worker,
            &title,
            (n(engines) * workers_per_engine).raw(),
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
    if !r.fork || launcher || workers_per_engine > 0 || mm_cache::kind(&cx) == mm_cache::Kind::Shm {
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
                n(b.tracker_bytes) * 2,
            )];
        processes.push(ProcessEstimate::new(
            Role::Helper,
            "python -c from multiprocessing.resource_tracker import main",
            1,
            c,
        ));
    }

    // The offloading connector's /dev/shm region, one per engine.
    shm_mapped = shm_mapped + kv_transfer::shm_mapped(&cx) * engines;
    let page_cache_bytes = match r.load_strategy {
        LoadStrategy::Other => 0,
        _ => model.weights.total_bytes,
    };
    Built {
        processes,
        page_cache_bytes,
        shm_mapped_bytes: shm_mapped.raw(),
        notes,
    }
}

pub(super) fn gib(bytes: u64) -> String {
    let g = bytes as f64 / GIB as f64;
    if g.fract() == 0.0 {
        format!("{g:.0} GiB")
    } else {
        format!("{g:.2} GiB")
    }
}

/// Per-request Python state: grows with the tokens held, up to a KV cache full of requests.
fn request_state(cx: &Ctx, bytes_per_token: u64, source: &str) -> Component {
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

fn scheduler(cx: &Ctx) -> Vec<Component> {
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

/// Resident pages of a message queue at rest: the metadata page and a few chunks' first
/// pages (measured: 44 KiB after 16 requests), split between writer and reader by PSS.
const MQ_RESIDENT: u64 = 44 * KIB;

pub(super) fn mq(
    cx: &Ctx,
    id: &str,
    mapped: Checked,
    formula: String,
    mappers: Checked,
) -> Component {
    let mappers = mappers.max(1);
    let share = n(MQ_RESIDENT) / mappers;
    cx.exact(
        id,
        share,
        Category::Shm,
        format!("{formula}; resident ≈ 44 KiB ÷ {mappers} processes"),
        "vllm/distributed/device_communicators/shm_broadcast.py",
    )
    .range(share, mapped / mappers)
    .mapped(mapped)
    .note("/dev/shm/psm_*: sparse; pages become resident only as messages are written")
}

fn broadcast_size(r: &Resolved, readers: u64) -> (Checked, String) {
    let chunk = r.mq_broadcast_chunk_bytes;
    let bytes = (n(chunk) + 1 + readers) * 10;
    (
        bytes,
        format!(
            "(VLLM_MQ_MAX_CHUNK_BYTES_MB + 1 + readers) × 10 = ({} + 1 + {readers}) × 10 = {bytes}",
            chunk
        ),
    )
}

fn response_size(r: &Resolved) -> (Checked, String) {
    let chunk = r.mq_response_chunk_bytes;
    let bytes = (n(chunk) + 2) * 10;
    (
        bytes,
        format!("(max_chunk_bytes + 2) × 10 = ({chunk} + 2) × 10 = {bytes}"),
    )
}

fn message_queues_engine(cx: &Ctx, workers: u64) -> (Vec<Component>, Checked) {
    let r = cx.r;
    let (bc, bf) = broadcast_size(r, workers);
    let (rs, rf) = response_size(r);
    let mut out = vec![mq(cx, "shm.rpc_broadcast_mq", bc, bf, n(workers) + 1)];
    // The engine reads every worker's response queue.
    let resp = mq(
        cx,
        "shm.worker_response_mqs",
        rs * workers,
        format!("{workers} × {rf}"),
        n(2),
    );
    let (bytes, low, high) = (
        n(resp.bytes) * workers,
        n(resp.low_bytes) * workers,
        resp.high_bytes,
    );
    out.push(resp.with_bytes(bytes).range(low, high));
    let mut mapped = bc + rs * workers;
    if r.shm_tensor_arena {
        let arena = (n(256 * MIB) + 1 + workers) * 8;
        mapped = mapped + arena;
        out.push(mq(
            cx,
            "shm.tensor_arena",
            arena,
            format!("(256 MiB + 1 + readers) × 8 = {arena}"),
            n(workers) + 1,
        ));
    }
    (out, mapped)
}

fn message_queues_worker(cx: &Ctx, workers: u64, options: &Options) -> (Vec<Component>, Checked) {
    let r = cx.r;
    let (bc, bf) = broadcast_size(r, workers);
    let (rs, rf) = response_size(r);
    let mut out = vec![
        mq(cx, "shm.rpc_broadcast_mq", bc, bf, n(workers) + 1),
        mq(cx, "shm.worker_response_mq", rs, rf, n(2)),
    ];
    // The parallel groups' broadcasters, NCCL and the CPU all-reduce.
    let (groups, mapped) = collectives::group_buffers(cx, options);
    out.extend(groups);
    (out, mapped)
}

/// The process that runs the model: buffers, weights, runtime, features.
fn runner(cx: &Ctx, options: &Options, notes: &mut Vec<String>) -> Vec<Component> {
    let r = cx.r;
    let mut out = Vec::new();
    match r.device {
        Device::Cuda => out.extend(gpu_runtime(cx)),
        Device::Cpu => out.extend(runtime::cpu(cx)),
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
    out.extend(kv_transfer::host_buffers(cx, notes));
    out
}

fn gpu_runtime(cx: &Ctx) -> Vec<Component> {
    let (r, cfg) = (cx.r, &cx.m.config);
    let mut out = runtime::cuda(cx);
    let sizes = r.cudagraph_capture_sizes.len() as u64;
    if sizes > 0 {
        let layers = n(cfg.num_layers) / r.pipeline_parallel_size;
        let piecewise = if r.cudagraph_mode.contains("PIECEWISE") {
            sizes
        } else {
            0
        };
        let full_limit = n(r.max_num_seqs) * (n(1) + r.num_speculative_tokens);
        let full = if r.cudagraph_mode.starts_with("FULL") {
            r.cudagraph_capture_sizes
                .iter()
                .filter(|s| full_limit.get().map_or(true, |limit| **s <= limit))
                .count() as u64
        } else {
            0
        };
        let units = (n(piecewise) + full) * layers;
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
            .range(bytes * 4 / 10, units * (500 * KIB))
            .note("host-side graph nodes; 0 with --enforce-eager"),
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
        // Past 2^63 the next power of two does not fit: too large, not a wrap to 0.
        assert_eq!(pow2((1 << 63) + 1), u64::MAX);
    }

    use crate::engines::vllm::test_util::{built, process};
    use crate::engines::vllm::Version;

    #[test]
    fn data_parallel_engines_get_a_worker_each_and_spawned_api_servers() {
        // 0.33, DP 2, TP 1: the mp executor runs one worker per engine, and two API servers
        // (one per DP rank) are spawned, so they share no pages with the launcher.
        let b = built("-dp 2 --max-model-len 5120", Version::V0_33, Device::Cuda);
        let w = process(&b, Role::Worker).expect("a worker per engine");
        assert_eq!((w.count, w.title.as_str()), (2, "VLLM::Worker_DP{i}"));
        assert!(w.components.iter().any(|c| c.id == "runner.input_ids"
            || c.id == "v2.all_token_ids"
            || c.id == "input_batch.token_ids"));
        let api = process(&b, Role::ApiServer).unwrap();
        assert_eq!(api.count, 2);
        let imports = api
            .components
            .iter()
            .find(|c| c.id == "runtime.python_imports")
            .unwrap();
        assert!(!imports.formula.contains("forked"), "{}", imports.formula);
        let engine = process(&b, Role::EngineCore).unwrap();
        assert!(engine.components.iter().all(|c| c.id != "runner.input_ids"));
        // 0.16 ran the model inside each EngineCore when TP × PP = 1.
        let b = built("-dp 2 --max-model-len 5120", Version::V0_16, Device::Cuda);
        assert!(process(&b, Role::Worker).is_none());
    }
}
