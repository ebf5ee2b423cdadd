//! Every vLLM minor release 0.10 … 0.33 as data: one [`Release`] row per release with the
//! value of each fact the estimator branches on, and where in that release's source the
//! value was read. Formulas read a fact (`r.version.release().block_table_padding.value`)
//! instead of comparing versions, so a release boundary lives in one row.
//!
//! How it was read: the PyPI source archive of the last patch of every minor release
//! (0.10.2, 0.11.0, 0.12.0, 0.13.0, 0.14.1, 0.15.1 (the wheel: no sdist was published),
//! 0.16.0, 0.17.1, 0.18.1, 0.19.1, 0.20.2, 0.21.0, 0.22.1, 0.23.0, 0.24.0, 0.25.1, 0.26.0,
//! 0.27.1, 0.28.0, 0.29.0, 0.30.0, 0.31.0, 0.32.0, 0.33.0). A row repeats the fact of the row
//! before unless the source changed it; a citation `path:line@release` is the release where
//! the value was read, and every release up to the next citation of that fact was read and
//! has the same value. A behaviour the source gained in some release is a [`Gained`] fact:
//! `None` before it, then cited at the first release that has it
//! (`r.version.release().sleep_backs_up_runtime.is_some()`).

mod rows;
mod rows_later;
#[cfg(test)]
mod tests;

use super::Version;
use crate::gpu::Gpu;

pub use rows::RELEASES;

/// A fact and where it was read: `vllm/path.py:line@release` (or `:first-last`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cited<T> {
    pub value: T,
    pub at: &'static str,
}

pub(crate) const fn cited<T>(value: T, at: &'static str) -> Cited<T> {
    Cited { value, at }
}

/// A behaviour vLLM's source gained in some release: `None` in the rows before it, then
/// where the first release with it shows it (later rows keep that citation).
pub type Gained = Option<Cited<()>>;

pub(crate) const fn gained(at: &'static str) -> Gained {
    Some(cited((), at))
}

/// The first release whose row has the behaviour `fact` reads, as `(minor, file:line@release)`
/// for [`cite`]; `None` if no release has it.
pub(crate) fn gained_in(fact: fn(&Release) -> Gained) -> Option<(u16, &'static str)> {
    RELEASES
        .iter()
        .find_map(|r| fact(r).map(|c| (r.version.minor(), c.at)))
}

/// Picks the citation for `version` from `(first minor, file:line@release)` rows in release
/// order: the newest row at or before it (the first row when none is). For sources that
/// moved between releases while the formula stayed the same.
pub(crate) fn cite(version: Version, rows: &[(u16, &'static str)]) -> &'static str {
    let v = version.minor();
    rows.iter()
        .rev()
        .find(|(since, _)| *since <= v)
        .or(rows.first())
        .map_or("", |(_, at)| at)
}

/// Which GPU model runner vLLM picks on CUDA when `VLLM_USE_V2_MODEL_RUNNER` is unset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RunnerDefault {
    /// No V2 runner exists: the environment variable does nothing.
    V1Only,
    /// V1; `VLLM_USE_V2_MODEL_RUNNER=1` selects V2.
    V1,
    /// V2 for these architectures (only dense, unquantized ones when
    /// `dense_unquantized_only`), and for every dense model when `any_dense`; V1 otherwise.
    V2For {
        architectures: &'static [&'static str],
        dense_unquantized_only: bool,
        any_dense: bool,
    },
    /// V2 for every model.
    V2,
}

impl RunnerDefault {
    /// Whether a V2 runner exists to be chosen at all.
    pub fn has_v2(self) -> bool {
        self != RunnerDefault::V1Only
    }

    /// Whether vLLM would default to V2 for this model, before its fallbacks.
    pub fn prefers_v2(self, architecture: &str, moe: bool, quantized: bool) -> bool {
        match self {
            RunnerDefault::V1Only | RunnerDefault::V1 => false,
            RunnerDefault::V2 => true,
            RunnerDefault::V2For {
                architectures,
                dense_unquantized_only,
                any_dense,
            } => {
                let listed = architectures.contains(&architecture)
                    && !(dense_unquantized_only && (moe || quantized));
                listed || (any_dense && !moe)
            }
        }
    }
}

/// Speculative-decoding methods that send a default V2 choice back to V1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpecFallback {
    /// Every method except these.
    AllBut(&'static [&'static str]),
    /// Only these methods.
    Only(&'static [&'static str]),
}

/// What makes vLLM use V1 after all where it would default to V2
/// (`_get_v2_model_runner_unsupported_features`, for the features ramscope models).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct V2Fallback {
    pub spec: SpecFallback,
    /// `--enable-prompt-embeds` is one of them.
    pub prompt_embeds: bool,
}

impl V2Fallback {
    pub fn falls_back(self, spec_method: Option<&str>, prompt_embeds: bool) -> bool {
        let spec = spec_method.is_some_and(|m| match self.spec {
            SpecFallback::AllBut(ok) => !ok.contains(&m),
            SpecFallback::Only(bad) => bad.contains(&m),
        });
        spec || (self.prompt_embeds && prompt_embeds)
    }
}

/// How the V1 block table widens each request's row of block ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockTablePadding {
    /// No padding: `cdiv(max_model_len, block_size)` blocks.
    None,
    /// To a multiple of `128 // block_size` when `block_size ≤ 128` (TRTLLM attention).
    FloorOf128,
    /// To a multiple of `128 / gcd(128, block_size)` (`get_block_table_width`).
    Gcd128,
}

impl BlockTablePadding {
    /// The padded row width for `blocks` blocks of `block_size` tokens.
    pub fn pad(self, blocks: u64, block_size: u64) -> u64 {
        let multiple = match self {
            BlockTablePadding::None => 1,
            BlockTablePadding::FloorOf128 if block_size <= 128 => 128 / block_size.max(1),
            BlockTablePadding::FloorOf128 => 1,
            BlockTablePadding::Gcd128 => 128 / gcd(128, block_size),
        };
        blocks.div_ceil(multiple).saturating_mul(multiple)
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// How the default CUDA graph batch sizes step (`_set_cudagraph_sizes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureGrid {
    /// 1, 2, 4, then every 8 up to the largest size.
    Every8,
    /// 1, 2, 4, every 8 below 256, every 16 from 256.
    Every8Then16,
}

/// `max_num_seqs` and `max_num_batched_tokens` when the user gives neither
/// (`_set_default_args`, `vllm serve`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchDefaults {
    /// GPUs with ≥ 160 GiB; `None` before this tier existed.
    pub over_160_gib: Option<(u64, u64)>,
    /// GPUs with ≥ 70 GiB that are not an A100 (nor a GB10 when `gb10_small`).
    pub over_70_gib: (u64, u64),
    /// Every other GPU.
    pub other: (u64, u64),
    /// The GB10 (DGX Spark) stays on the small tier despite its memory.
    pub gb10_small: bool,
    /// The CPU backend, per rank of TP × PP.
    pub cpu_per_rank: (u64, u64),
}

impl BatchDefaults {
    /// The CUDA defaults for this GPU.
    pub fn cuda(&self, gpu: &Gpu) -> (u64, u64) {
        let gib = gpu.gib();
        let name = gpu.name.to_ascii_lowercase();
        match self.over_160_gib {
            Some(large) if gib >= 160.0 => large,
            _ if gib >= 70.0
                && !name.contains("a100")
                && !(self.gb10_small && name.contains("gb10")) =>
            {
                self.over_70_gib
            }
            _ => self.other,
        }
    }
}

/// What `--kv-offloading-size` does with the native backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvOffload {
    /// It passes `num_cpu_blocks = 0`: the offloading connector refuses to start.
    ZeroCpuBlocks,
    /// `cpu_bytes_to_use`: one pinned CPU tensor per layer.
    PinnedTensors,
    /// `cpu_bytes_to_use`: one `/dev/shm` region mapped by every rank (CUDA).
    SharedRegion,
}

/// How `OffloadingConnector` in `--kv-transfer-config` is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorSizing {
    /// `kv_connector_extra_config.num_cpu_blocks`.
    NumCpuBlocks,
    /// `kv_connector_extra_config.cpu_bytes_to_use` (`num_cpu_blocks` is refused).
    CpuBytesToUse,
}

/// V2's grammar bitmask (`rows × cdiv(vocab, 32)` int32), while it was host memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrammarBitmask {
    /// One pinned `CpuGpuBuffer` of `max_num_seqs` rows (`InputBuffers`).
    PinnedBuffer,
    /// A `UvaBufferPool` of two pinned buffers of `max_num_seqs × (1 + draft tokens)` rows.
    PinnedPool,
    /// A device tensor only: nothing on the host.
    Device,
}

/// How the CPU backend sizes its KV cache when neither `VLLM_CPU_KVCACHE_SPACE` nor
/// `--kv-cache-memory-bytes` is given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CpuKvAuto {
    /// A fixed budget in bytes, whatever the machine.
    Fixed(u64),
    /// This share of the host's memory per NUMA node (`MemTotal ÷ nodes × share`), fixed
    /// when the configuration is made.
    NodeShare(f64),
    /// What the worker's RSS after warm-up leaves of `ceil(u × node MemTotal)`.
    FillsReservation,
}

/// One minor release: the value of every fact the estimator branches on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Release {
    pub version: Version,

    // Processes.
    /// The CUDA model runner: V1 and V2 allocate entirely different host buffers.
    pub cuda_runner: Cited<RunnerDefault>,
    /// When a default V2 choice falls back to V1; `None` while V2 is never a default.
    pub v2_fallback: Option<Cited<V2Fallback>>,
    /// The `mp` executor (one worker process per rank) whenever TP × PP × DP > 1, not only
    /// TP × PP > 1: with DP > 1 the runner leaves EngineCore for its own process.
    pub executor_mp_counts_dp: Cited<bool>,
    /// `--api-server-count` defaults to `--data-parallel-size` (else 1): each API server is
    /// a process with its own tokenizer and baseline.
    pub api_servers_default_dp: Cited<bool>,
    /// `--headless` refuses more API servers than this.
    pub headless_api_server_limit: Cited<u64>,
    /// The multimodal IPC cache needs exactly one API server (before: only DP = 1).
    pub mm_ipc_cache_one_api_server: Gained,

    // Defaults.
    /// `--gpu-memory-utilization`: sets the KV blocks, whose count sizes scheduler objects.
    pub gpu_memory_utilization: Cited<f64>,
    /// Batch defaults per GPU class: R and T size nearly every runner buffer.
    pub batch_defaults: Cited<BatchDefaults>,
    /// Default KV block size on CUDA: sets blocks per request and KV block count.
    pub cuda_block_size: Cited<u64>,
    /// The same for MLA models on CUDA (FlashMLA's kernel block).
    pub cuda_mla_block_size: Cited<u64>,
    /// The same on the CPU backend (x86 with IPEX, a dependency there, in 0.10/0.11).
    pub cpu_block_size: Cited<u64>,
    /// MLA on the CPU backend: its block size, or `None` when vLLM refuses MLA on CPU.
    pub cpu_mla_block_size: Cited<Option<u64>>,
    /// `cudagraph_mode` by default: FULL graphs add FlashInfer decode wrappers.
    pub cudagraph_mode: Cited<&'static str>,

    // CUDA graphs: each captured size keeps host-side graph state.
    pub capture_grid: Cited<CaptureGrid>,
    /// The default largest size is `2 × R × (1 + draft tokens)` rather than `2 × R`.
    pub capture_counts_draft_tokens: Cited<bool>,
    /// The default largest size on data-centre Blackwell (512 elsewhere).
    pub capture_cap_sm100: Cited<u64>,
    /// `max_num_batched_tokens` is captured too when below the largest size.
    pub capture_adds_max_tokens: Cited<bool>,
    /// `max_num_seqs` is captured too when below the largest size (no speculation).
    pub capture_adds_max_seqs: Cited<bool>,
    /// With speculation, decode sizes come from a grid of request counts.
    pub capture_decode_grid: Cited<bool>,

    // V1 runner and input batch buffers (sizes in bytes per element).
    /// `InputBatch.is_token_ids`, R × L bytes, next to `token_ids`.
    pub input_batch_is_token_ids: Cited<bool>,
    /// Per-request int32 counters kept as plain numpy arrays (heap).
    pub input_batch_heap_counters: Cited<u64>,
    /// Per-request int32 counters kept as pinned CPU tensors (rounded to a power of two each).
    pub input_batch_pinned_counters: Cited<u64>,
    /// `num_accepted_tokens` element size (input batch and runner).
    pub accepted_tokens_bytes: Cited<u64>,
    /// LoRA: `request_lora_mapping` element size, R of them.
    pub lora_mapping_bytes: Cited<u64>,
    /// Runner `is_token_ids`, `num_decode_draft_tokens` and the discarded-request buffer,
    /// whose element size this is; `None` before they existed.
    pub runner_token_flags: Cited<Option<u64>>,
    /// `sampled_token_ids` has R rows (with `encoder_seq_lens` beside it), not L.
    pub sampled_per_seq: Cited<bool>,
    /// The step buffers of 0.19 on: `positions` and `seq_lens` on the GPU only; pinned
    /// `optimistic_seq_lens`, `prev_num_draft_tokens`, `req_indices`, `prev_positions`,
    /// `num_scheduled_tokens`, `query_pos`; `arange_np` no longer covers `max_model_len`.
    pub runner_step_buffers: Cited<bool>,
    /// `valid_sampled_token_count_cpu` (R of them, pinned) element size; `None` before it
    /// existed.
    pub valid_sampled_count_bytes: Option<Cited<u64>>,
    /// `valid_sampled_token_count_cpu` is made only with speculative decoding under async
    /// scheduling (before: always).
    pub valid_sampled_count_spec_only: Gained,
    /// The runner's `is_padding`, a T-byte device tensor (host memory on the CPU backend).
    pub runner_is_padding: Gained,
    /// Row padding of the block table (R × row × 4 B, pinned).
    pub block_table_padding: Cited<BlockTablePadding>,
    /// FlashInfer decodes through TRTLLM on SM100, so no per-size decode wrapper there.
    pub flashinfer_trtllm_decode_sm100: Gained,
    /// FlashInfer decodes through XQA on SM90 as well.
    pub flashinfer_xqa_decode_sm90: Gained,
    /// FlashInfer's `paged_kv_indices` is a device tensor only (no pinned host copy).
    pub flashinfer_indices_on_device: Gained,

    // V2 runner.
    /// Staged writes of `all_token_ids` go through a growing pinned pool.
    pub v2_staged_contents_pool: Gained,
    /// With n-gram speculation `all_token_ids` lives on the GPU.
    pub v2_ngram_token_ids_on_gpu: Gained,
    /// The grammar bitmask for structured outputs; `None` before V2 existed.
    pub v2_grammar_bitmask: Option<Cited<GrammarBitmask>>,

    // CPU runner.
    /// The CPU worker skips its warm-up profile run under `--enforce-eager` (before: it ran
    /// it, sampler over a full batch of logits included, whatever the compilation mode).
    pub cpu_eager_skips_warmup: Gained,
    /// The KV cache's size when the user gives none.
    pub cpu_kv_auto: Cited<CpuKvAuto>,

    // Engine core.
    /// One `KVCacheBlock` object, its `block_id` int and its list slot, on CPython 3.11
    /// (tracemalloc): a dict-backed dataclass, then `slots=True` with 6, 7, 8 fields.
    pub kv_block_object_bytes: Cited<u64>,
    /// Chunk size of each worker's response message queue (shared memory).
    pub mq_response_chunk_bytes: Cited<u64>,
    /// xgrammar compilers per backend, each with its own `VLLM_XGRAMMAR_CACHE_MB` cache.
    pub xgrammar_compilers: Cited<u64>,

    // Weights.
    /// `--safetensors-load-strategy` values accepted.
    pub load_strategies: Cited<&'static [&'static str]>,
    /// No strategy given: checkpoints on NFS that fit in RAM are prefetched into the page cache.
    pub auto_prefetch: Cited<bool>,
    /// Threads of the multithreaded loader when `num_threads` is not given.
    pub weight_load_threads: Cited<u64>,
    /// Prefetch weight offload (`--offload-group-size`).
    pub prefetch_weight_offload: Gained,

    // KV offloading.
    /// `--kv-offloading-size` with the native backend; `None` before the flag existed.
    pub kv_offload: Option<Cited<KvOffload>>,
    /// `OffloadingConnector` sizing; `None` before it existed.
    pub kv_connector_sizing: Option<Cited<ConnectorSizing>>,
    /// `--kv-offloading-backend` defaults to `native` (before: unset, so the size alone did
    /// nothing).
    pub kv_offloading_backend_default: Gained,
    /// `VLLM_USE_SIMPLE_KV_OFFLOAD=1` and `SimpleCPUOffloadConnector` exist.
    pub simple_kv_offload: Gained,
    /// The CPU offloading connector rounds the bytes of one offloaded block up to 4 KiB.
    pub kv_offload_aligned_blocks: Gained,
    /// `--kv-offloading-backend lmcache` means `LMCacheMPConnector`: storage in a separate
    /// server.
    pub lmcache_separate_server: Gained,

    // Other features.
    /// Prompt embeddings reach the V1 engine (`Request.prompt_embeds`).
    pub prompt_embeds_in_engine: Gained,
    /// Sleep mode also backs up the `runtime` (and `cudagraph`) allocations.
    pub sleep_backs_up_runtime: Gained,

    // Flags.
    /// Flags ramscope knows that first appear in this release (removed ones are in the
    /// flag table): earlier releases refuse them.
    pub flags_added: Cited<&'static [&'static str]>,
}

impl Version {
    /// This release's row.
    pub fn release(self) -> &'static Release {
        // Rows are in release order, one per minor (tested), so the index is the offset.
        let i = usize::from(self.minor() - Version::OLDEST.minor());
        &RELEASES[i.min(RELEASES.len() - 1)]
    }
}

/// The first release whose row adds `flag`, if ramscope knows when it appeared.
pub fn flag_added_in(flag: &str) -> Option<Version> {
    RELEASES
        .iter()
        .find(|r| r.flags_added.value.contains(&flag))
        .map(|r| r.version)
}
