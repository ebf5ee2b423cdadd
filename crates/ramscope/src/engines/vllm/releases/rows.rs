//! The rows: 0.10 in full, then each release as the changes its source shows against the
//! release before (`..R10` keeps every other fact and its citation). 0.10–0.21 are here,
//! 0.22–0.33 in [`super::rows_later`].

use super::rows_later::{R22, R23, R24, R25, R26, R27, R28, R29, R30, R31, R32, R33};
use super::{
    cited, gained, BatchDefaults, BlockTablePadding, CaptureGrid, ConnectorSizing, CpuKvAuto,
    GrammarBitmask, KvOffload, Release, RunnerDefault,
};
use crate::engines::vllm::Version;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Every release read, oldest first, one per minor.
pub static RELEASES: [Release; 24] = [
    R10, R11, R12, R13, R14, R15, R16, R17, R18, R19, R20, R21, R22, R23, R24, R25, R26, R27, R28,
    R29, R30, R31, R32, R33,
];

pub(super) const R10: Release = Release {
    version: Version::V0_10,
    cuda_runner: cited(
        RunnerDefault::V1Only,
        "vllm/v1/worker/gpu_worker.py:201@0.10.2",
    ),
    v2_fallback: None,
    executor_mp_counts_dp: cited(false, "vllm/config/parallel.py:375@0.10.2"),
    api_servers_default_dp: cited(false, "vllm/entrypoints/openai/cli_args.py:248-251@0.10.2"),
    headless_api_server_limit: cited(1, "vllm/entrypoints/cli/serve.py:76-77@0.10.2"),
    gpu_memory_utilization: cited(0.9, "vllm/config/cache.py:42@0.10.2"),
    batch_defaults: cited(
        BatchDefaults {
            over_160_gib: None,
            over_70_gib: (1024, 8192),
            other: (256, 2048),
            gb10_small: false,
            cpu_per_rank: (128, 2048),
        },
        "vllm/engine/arg_utils.py:1669-1687,1705-1712@0.10.2",
    ),
    cuda_block_size: cited(16, "vllm/platforms/cuda.py:138@0.10.2"),
    cuda_mla_block_size: cited(64, "vllm/platforms/cuda.py:174@0.10.2"),
    cpu_block_size: cited(128, "vllm/platforms/cpu.py:149@0.10.2"),
    cpu_mla_block_size: cited(None, "vllm/platforms/cpu.py:99-100@0.10.2"),
    cudagraph_mode: cited("PIECEWISE", "vllm/config/__init__.py:3393@0.10.2"),
    capture_grid: cited(CaptureGrid::Every8, "vllm/config/__init__.py:3655@0.10.2"),
    capture_counts_draft_tokens: cited(false, "vllm/config/scheduler.py:244@0.10.2"),
    capture_cap_sm100: cited(512, "vllm/config/scheduler.py:244@0.10.2"),
    capture_adds_max_tokens: cited(false, "vllm/config/__init__.py:3655@0.10.2"),
    capture_adds_max_seqs: cited(false, "vllm/config/__init__.py:3655@0.10.2"),
    capture_decode_grid: cited(false, "vllm/config/__init__.py:3655@0.10.2"),
    input_batch_is_token_ids: cited(false, "vllm/v1/worker/gpu_input_batch.py:104-111@0.10.2"),
    input_batch_heap_counters: cited(3, "vllm/v1/worker/gpu_input_batch.py:111-113@0.10.2"),
    input_batch_pinned_counters: cited(1, "vllm/v1/worker/gpu_input_batch.py:114@0.10.2"),
    accepted_tokens_bytes: cited(8, "vllm/v1/worker/gpu_input_batch.py:208-209@0.10.2"),
    lora_mapping_bytes: cited(4, "vllm/v1/worker/gpu_input_batch.py:216-217@0.10.2"),
    runner_token_flags: cited(None, "vllm/v1/worker/gpu_model_runner.py:315-329@0.10.2"),
    sampled_per_seq: cited(false, "vllm/v1/worker/gpu_model_runner.py:400-401@0.10.2"),
    runner_step_buffers: cited(false, "vllm/v1/worker/gpu_model_runner.py:315-319@0.10.2"),
    block_table_padding: cited(
        BlockTablePadding::None,
        "vllm/v1/worker/block_table.py:180@0.10.2",
    ),
    kv_block_object_bytes: cited(168, "vllm/v1/core/kv_cache_utils.py:158-159@0.10.2"),
    mq_response_chunk_bytes: cited(
        10 * MIB,
        "vllm/distributed/device_communicators/shm_broadcast.py:213@0.10.2",
    ),
    xgrammar_compilers: cited(1, "vllm/v1/structured_output/backend_xgrammar.py:77@0.10.2"),
    load_strategies: cited(&["lazy", "eager"], "vllm/config/load.py:54-60@0.10.2"),
    auto_prefetch: cited(false, "vllm/config/load.py:54@0.10.2"),
    weight_load_threads: cited(
        8,
        "vllm/model_executor/model_loader/default_loader.py:34@0.10.2",
    ),
    kv_offload: None,
    kv_connector_sizing: None,
    mm_ipc_cache_one_api_server: None,
    flashinfer_trtllm_decode_sm100: None,
    flashinfer_xqa_decode_sm90: None,
    flashinfer_indices_on_device: None,
    v2_staged_contents_pool: None,
    v2_ngram_token_ids_on_gpu: None,
    cpu_eager_skips_warmup: None,
    prefetch_weight_offload: None,
    kv_offloading_backend_default: None,
    simple_kv_offload: None,
    kv_offload_aligned_blocks: None,
    lmcache_separate_server: None,
    prompt_embeds_in_engine: None,
    sleep_backs_up_runtime: None,
    valid_sampled_count_bytes: None,
    valid_sampled_count_spec_only: None,
    runner_is_padding: None,
    v2_grammar_bitmask: None,
    cpu_kv_auto: cited(
        CpuKvAuto::Fixed(4 * GIB),
        "vllm/platforms/cpu.py:111-113@0.10.2",
    ),
    flags_added: cited(&[], "vllm/engine/arg_utils.py:282@0.10.2"),
};

const R11: Release = Release {
    version: Version::V0_11,
    cudagraph_mode: cited("FULL_AND_PIECEWISE", "vllm/config/__init__.py:366@0.11.0"),
    input_batch_is_token_ids: cited(true, "vllm/v1/worker/gpu_input_batch.py:118@0.11.0"),
    runner_token_flags: cited(Some(8), "vllm/v1/worker/gpu_model_runner.py:359-365@0.11.0"),
    kv_connector_sizing: Some(cited(
        ConnectorSizing::NumCpuBlocks,
        "vllm/v1/kv_offload/cpu.py:25-26@0.11.0",
    )),
    mm_ipc_cache_one_api_server: gained("vllm/multimodal/cache.py:497-498@0.11.0"),
    prompt_embeds_in_engine: gained("vllm/v1/request.py:86@0.11.0"),
    flags_added: cited(
        &[
            "--allowed-media-domains",
            "--dbo-decode-token-threshold",
            "--dbo-prefill-token-threshold",
            "--enable-dbo",
            "--expert-placement-strategy",
            "--mm-processor-cache-type",
            "--mm-shm-cache-max-object-size-mb",
            "--pooler-config",
            "--structured-outputs-config",
            "--trust-request-chat-template",
            "--video-pruning-rate",
        ],
        "vllm/engine/arg_utils.py:285@0.11.0",
    ),
    ..R10
};

const R12: Release = Release {
    version: Version::V0_12,
    cuda_runner: cited(RunnerDefault::V1, "vllm/envs.py:1550-1551@0.12.0"),
    cudagraph_mode: cited("FULL_AND_PIECEWISE", "vllm/config/vllm.py:144@0.12.0"),
    capture_grid: cited(
        CaptureGrid::Every8Then16,
        "vllm/config/vllm.py:1069-1074@0.12.0",
    ),
    capture_counts_draft_tokens: cited(false, "vllm/config/vllm.py:1038-1040@0.12.0"),
    capture_cap_sm100: cited(512, "vllm/config/vllm.py:1038-1040@0.12.0"),
    lora_mapping_bytes: cited(8, "vllm/v1/worker/gpu_input_batch.py:214@0.12.0"),
    runner_token_flags: cited(Some(1), "vllm/v1/worker/gpu_model_runner.py:491-492@0.12.0"),
    sampled_per_seq: cited(
        true,
        "vllm/v1/worker/gpu_model_runner.py:576-577,590@0.12.0",
    ),
    mq_response_chunk_bytes: cited(
        24 * MIB,
        "vllm/distributed/device_communicators/shm_broadcast.py:251@0.12.0",
    ),
    cpu_block_size: cited(128, "vllm/platforms/cpu.py:182@0.12.0"),
    load_strategies: cited(
        &["lazy", "eager", "torchao"],
        "vllm/config/load.py:56-64@0.12.0",
    ),
    kv_offload: Some(cited(
        KvOffload::ZeroCpuBlocks,
        "vllm/config/vllm.py:485-488@0.12.0",
    )),
    flashinfer_trtllm_decode_sm100: gained(
        "vllm/v1/attention/backends/flashinfer.py:513-515@0.12.0",
    ),
    flags_added: cited(
        &[
            "--aggregate-engine-logging",
            "--all2all-backend",
            "--cp-kv-cache-interleave-size",
            "--cudagraph-capture-sizes",
            "--data-parallel-external-lb",
            "--dcp-kv-cache-interleave-size",
            "--disable-nccl-for-dp-synchronization",
            "--ec-transfer-config",
            "--enable-mm-embeds",
            "--kv-cache-metrics",
            "--kv-cache-metrics-sample",
            "--kv-offloading-backend",
            "--kv-offloading-size",
            "--mamba-block-size",
            "--master-addr",
            "--master-port",
            "--max-cudagraph-capture-size",
            "--mm-encoder-attn-backend",
            "--nnodes",
            "--node-rank",
            "--optimization-level",
            "--prefill-context-parallel-size",
            "--reasoning-parser-plugin",
            "--stream-interval",
            "--tokens-only",
        ],
        "vllm/engine/arg_utils.py:351@0.12.0",
    ),
    valid_sampled_count_bytes: Some(cited(
        8,
        "vllm/v1/worker/gpu_model_runner.py:590-592@0.12.0",
    )),
    v2_grammar_bitmask: Some(cited(
        GrammarBitmask::PinnedBuffer,
        "vllm/v1/worker/gpu/input_batch.py:40-42@0.12.0",
    )),
    ..R11
};

const R13: Release = Release {
    version: Version::V0_13,
    capture_counts_draft_tokens: cited(true, "vllm/config/vllm.py:1066-1074@0.13.0"),
    flags_added: cited(
        &[
            "--attention-backend",
            "--attention-config",
            "--cudagraph-metrics",
            "--enable-layerwise-nvtx-tracing",
            "--profiler-config",
        ],
        "vllm/engine/arg_utils.py:353@0.13.0",
    ),
    cpu_kv_auto: cited(
        CpuKvAuto::NodeShare(0.5),
        "vllm/platforms/cpu.py:152-155@0.13.0",
    ),
    ..R12
};

const R14: Release = Release {
    version: Version::V0_14,
    input_batch_heap_counters: cited(2, "vllm/v1/worker/gpu_input_batch.py:130-131@0.14.1"),
    kv_offload: Some(cited(
        KvOffload::PinnedTensors,
        "vllm/config/vllm.py:518@0.14.1",
    )),
    kv_connector_sizing: Some(cited(
        ConnectorSizing::CpuBytesToUse,
        "vllm/v1/kv_offload/cpu.py:25-29@0.14.1",
    )),
    kv_offloading_backend_default: gained("vllm/config/cache.py:158@0.14.1"),
    flags_added: cited(
        &[
            "--allow-deprecated-quantization",
            "--default-chat-template-kwargs",
            "--enable-log-deltas",
            "--enable-logging-iteration-details",
            "--enable-mfu-metrics",
            "--enable-offline-docs",
            "--enable-return-routed-experts",
            "--enable-tower-connector-lora",
            "--ubatch-size",
        ],
        "vllm/engine/arg_utils.py:353@0.14.1",
    ),
    valid_sampled_count_spec_only: gained("vllm/v1/worker/gpu_model_runner.py:664,673-676@0.14.1"),
    v2_grammar_bitmask: Some(cited(
        GrammarBitmask::PinnedPool,
        "vllm/v1/worker/gpu/structured_outputs.py:21-23@0.14.1",
    )),
    ..R13
};

const R15: Release = Release {
    version: Version::V0_15,
    api_servers_default_dp: cited(true, "vllm/entrypoints/cli/serve.py:86-98@0.15.1"),
    headless_api_server_limit: cited(0, "vllm/entrypoints/cli/serve.py:53-61@0.15.1"),
    flags_added: cited(
        &["--mamba-cache-mode", "--mm-encoder-only", "--ssl-ciphers"],
        "vllm/engine/arg_utils.py:350@0.15.1",
    ),
    ..R14
};

const R16: Release = Release {
    version: Version::V0_16,
    flags_added: cited(
        &[
            "--disable-access-log-for-endpoints",
            "--enable-flashinfer-autotune",
            "--kernel-config",
            "--specialize-active-lora",
            "--weight-transfer-config",
        ],
        "vllm/engine/arg_utils.py:352@0.16.0",
    ),
    v2_grammar_bitmask: Some(cited(
        GrammarBitmask::Device,
        "vllm/v1/worker/gpu/structured_outputs.py:17-19@0.16.0",
    )),
    ..R15
};

const R17: Release = Release {
    version: Version::V0_17,
    executor_mp_counts_dp: cited(true, "vllm/config/parallel.py:715@0.17.1"),
    prefetch_weight_offload: gained("vllm/model_executor/offloader/prefetch.py:578@0.17.1"),
    flags_added: cited(
        &[
            "--cpu-offload-params",
            "--enable-elastic-ep",
            "--fail-on-environ-validation",
            "--language-model-only",
            "--moe-backend",
            "--offload-backend",
            "--offload-group-size",
            "--offload-num-in-group",
            "--offload-params",
            "--offload-prefetch-step",
            "--performance-mode",
        ],
        "vllm/engine/arg_utils.py:362@0.17.1",
    ),
    ..R16
};

const R18: Release = Release {
    version: Version::V0_18,
    input_batch_heap_counters: cited(1, "vllm/v1/worker/gpu_input_batch.py:137@0.18.1"),
    input_batch_pinned_counters: cited(2, "vllm/v1/worker/gpu_input_batch.py:130-138@0.18.1"),
    kv_block_object_bytes: cited(120, "vllm/v1/core/kv_cache_utils.py:109-110@0.18.1"),
    cuda_block_size: cited(16, "vllm/config/cache.py:34@0.18.1"),
    cuda_mla_block_size: cited(
        64,
        "vllm/v1/attention/backends/mla/flashmla.py:59-60@0.18.1",
    ),
    load_strategies: cited(
        &["lazy", "eager", "prefetch", "torchao"],
        "vllm/config/load.py:57-68@0.18.1",
    ),
    flags_added: cited(
        &[
            "--dcp-comm-backend",
            "--distributed-timeout-seconds",
            "--enable-ep-weight-filter",
            "--gdn-prefill-backend",
            "--grpc",
            "--shutdown-timeout",
        ],
        "vllm/engine/arg_utils.py:362@0.18.1",
    ),
    ..R17
};

const R19: Release = Release {
    version: Version::V0_19,
    input_batch_heap_counters: cited(0, "vllm/v1/worker/gpu_input_batch.py:137-143@0.19.1"),
    input_batch_pinned_counters: cited(3, "vllm/v1/worker/gpu_input_batch.py:130-150@0.19.1"),
    accepted_tokens_bytes: cited(4, "vllm/v1/worker/gpu_input_batch.py:221-222@0.19.1"),
    runner_step_buffers: cited(
        true,
        "vllm/v1/worker/gpu_model_runner.py:670-691,759@0.19.1",
    ),
    auto_prefetch: cited(
        true,
        "vllm/model_executor/model_loader/weight_utils.py:870-873@0.19.1",
    ),
    simple_kv_offload: gained("vllm/config/vllm.py:660-661@0.19.1"),
    flags_added: cited(
        &[
            "--kv-cache-dtype-skip-layers",
            "--lora-target-modules",
            "--mm-tensor-ipc",
            "--reasoning-config",
            "--renderer-num-workers",
            "--scheduler-reserve-full-isl",
        ],
        "vllm/engine/arg_utils.py:373@0.19.1",
    ),
    valid_sampled_count_bytes: Some(cited(
        4,
        "vllm/v1/worker/gpu_model_runner.py:843-845@0.19.1",
    )),
    ..R18
};

const R20: Release = Release {
    version: Version::V0_20,
    gpu_memory_utilization: cited(0.92, "vllm/config/cache.py:66@0.20.2"),
    capture_adds_max_tokens: cited(true, "vllm/config/vllm.py:1527-1531@0.20.2"),
    flags_added: cited(
        &[
            "--enable-flash-late-interaction",
            "--enable-mamba-cache-stochastic-rounding",
            "--ir-op-priority",
            "--mamba-backend",
            "--mamba-cache-philox-rounds",
            "--numa-bind",
            "--numa-bind-cpus",
            "--numa-bind-nodes",
            "--quantization-config",
        ],
        "vllm/engine/arg_utils.py:403@0.20.2",
    ),
    cpu_kv_auto: cited(
        CpuKvAuto::FillsReservation,
        "vllm/v1/worker/cpu_worker.py:58-60,183-184@0.20.2",
    ),
    ..R19
};

pub(super) const R21: Release = Release {
    version: Version::V0_21,
    block_table_padding: cited(
        BlockTablePadding::FloorOf128,
        "vllm/v1/worker/block_table.py:260-264@0.21.0",
    ),
    flags_added: cited(
        &[
            "--fingerprint-mode",
            "--fingerprint-value",
            "--mm-encoder-attn-dtype",
            "--mm-encoder-fp8-scale-path",
            "--mm-encoder-fp8-scale-save-margin",
            "--mm-encoder-fp8-scale-save-path",
            "--safetensors-prefetch-block-size",
            "--safetensors-prefetch-num-threads",
        ],
        "vllm/engine/arg_utils.py:412@0.21.0",
    ),
    ..R20
};
