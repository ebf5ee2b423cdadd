//! The rows of 0.22–0.33, each as the changes its source shows against the release before
//! (the rows of 0.10–0.21 are in [`super::rows`]).

use super::rows::{R10, R21};
use super::{
    cited, gained, BatchDefaults, BlockTablePadding, KvOffload, Release, RunnerDefault,
    SpecFallback, V2Fallback,
};
use crate::engines::vllm::Version;

pub(super) const R22: Release = Release {
    version: Version::V0_22,
    cuda_runner: cited(
        RunnerDefault::V2For {
            architectures: &["Qwen3ForCausalLM"],
            dense_unquantized_only: true,
            any_dense: false,
        },
        "vllm/config/vllm.py:69,493-532@0.22.1",
    ),
    v2_fallback: Some(cited(
        V2Fallback {
            spec: SpecFallback::AllBut(&["eagle", "eagle3", "mtp"]),
            prompt_embeds: true,
        },
        "vllm/config/vllm.py:2000-2002,2037@0.22.1",
    )),
    flags_added: cited(
        &[
            "--cpu-distributed-timeout-seconds",
            "--data-parallel-multi-port-external-lb",
            "--data-parallel-supervisor-port",
            "--dp-supervisor-probe-failure-threshold",
            "--dp-supervisor-probe-interval-s",
            "--dp-supervisor-probe-timeout-s",
            "--enable-cumem-allocator",
            "--enable-mixed-moe-lora-format",
            "--linear-backend",
            "--spec-method",
            "--spec-model",
            "--spec-tokens",
            "--use-fp64-gumbel",
        ],
        "vllm/engine/arg_utils.py:412@0.22.1",
    ),
    ..R21
};

pub(super) const R23: Release = Release {
    version: Version::V0_23,
    cuda_runner: cited(
        RunnerDefault::V2For {
            architectures: &["LlamaForCausalLM", "MistralForCausalLM", "Qwen3ForCausalLM"],
            dense_unquantized_only: true,
            any_dense: false,
        },
        "vllm/config/vllm.py:69-75,558@0.23.0",
    ),
    kv_offload_aligned_blocks: gained("vllm/v1/kv_offload/cpu/spec.py:51-57@0.23.0"),
    lmcache_separate_server: gained("vllm/config/vllm.py:793-799@0.23.0"),
    flags_added: cited(&[], "vllm/engine/arg_utils.py:412@0.23.0"),
    ..R22
};

pub(super) const R24: Release = Release {
    version: Version::V0_24,
    cuda_runner: cited(
        RunnerDefault::V2For {
            architectures: &[
                "DeepseekV2ForCausalLM",
                "GraniteMoeForCausalLM",
                "LlamaForCausalLM",
                "MistralForCausalLM",
                "Qwen2MoeForCausalLM",
                "Qwen3ForCausalLM",
            ],
            dense_unquantized_only: false,
            any_dense: false,
        },
        "vllm/config/vllm.py:68-77,559-561@0.24.0",
    ),
    v2_fallback: Some(cited(
        V2Fallback {
            spec: SpecFallback::AllBut(&["eagle", "eagle3", "mtp", "dflash"]),
            prompt_embeds: true,
        },
        "vllm/config/vllm.py:2031,2072@0.24.0",
    )),
    kv_block_object_bytes: cited(128, "vllm/v1/core/kv_cache_utils.py:117-118@0.24.0"),
    flags_added: cited(
        &[
            "--device-ids",
            "--diffusion-config",
            "--jit-monitor-verbose",
            "--prefill-schedule-interval",
            "--watermark",
        ],
        "vllm/engine/arg_utils.py:414@0.24.0",
    ),
    ..R23
};

/// V2 by default for these MoE architectures, and for every dense model (0.25–0.28).
const V2_MOE_0_25: &[&str] = &[
    "DeepseekV2ForCausalLM",
    "GraniteMoeForCausalLM",
    "Qwen2MoeForCausalLM",
];

pub(super) const R25: Release = Release {
    version: Version::V0_25,
    cuda_runner: cited(
        RunnerDefault::V2For {
            architectures: V2_MOE_0_25,
            dense_unquantized_only: false,
            any_dense: true,
        },
        "vllm/config/vllm.py:68-74,571-574@0.25.1",
    ),
    v2_fallback: Some(cited(
        V2Fallback {
            spec: SpecFallback::AllBut(&["eagle", "eagle3", "mtp", "dflash", "dspark"]),
            prompt_embeds: true,
        },
        "vllm/config/vllm.py:2072-2078,2117@0.25.1",
    )),
    flashinfer_xqa_decode_sm90: gained("vllm/v1/attention/backends/flashinfer.py:719-731@0.25.1"),
    flags_added: cited(
        &[
            "--enable-per-request-metrics",
            "--jit-monitor-mode",
            "--mm-ipc-gpu-memory-gb",
            "--model-class-overrides",
        ],
        "vllm/engine/arg_utils.py:414@0.25.1",
    ),
    ..R24
};

pub(super) const R26: Release = Release {
    version: Version::V0_26,
    cuda_runner: cited(
        RunnerDefault::V2For {
            architectures: &[
                "DeepseekV2ForCausalLM",
                "GraniteMoeForCausalLM",
                "InklingForCausalLM",
                "InklingForConditionalGeneration",
                "LongcatFlashNgramForCausalLM",
                "Qwen2MoeForCausalLM",
            ],
            dense_unquantized_only: false,
            any_dense: true,
        },
        "vllm/config/vllm.py:68-77,619-622@0.26.0",
    ),
    flags_added: cited(
        &[
            "--enable-moe-shared-loras",
            "--max-num-scheduled-tokens",
            "--prefix-match-unit",
        ],
        "vllm/engine/arg_utils.py:417@0.26.0",
    ),
    ..R25
};

pub(super) const R27: Release = Release {
    version: Version::V0_27,
    cuda_runner: cited(
        RunnerDefault::V2For {
            architectures: &[
                "DeepseekV2ForCausalLM",
                "GraniteMoeForCausalLM",
                "InklingForCausalLM",
                "InklingForConditionalGeneration",
                "KimiK3ForConditionalGeneration",
                "LongcatFlashNgramForCausalLM",
                "Qwen2MoeForCausalLM",
            ],
            dense_unquantized_only: false,
            any_dense: true,
        },
        "vllm/config/vllm.py:69-79,658@0.27.1",
    ),
    input_batch_pinned_counters: cited(4, "vllm/v1/worker/gpu_input_batch.py:177@0.27.1"),
    block_table_padding: cited(
        BlockTablePadding::Gcd128,
        "vllm/v1/worker/block_table.py:20-40@0.27.1",
    ),
    kv_offload: Some(cited(
        KvOffload::SharedRegion,
        "vllm/v1/kv_offload/cpu/spec.py:144-161@0.27.1",
    )),
    cpu_eager_skips_warmup: gained("vllm/v1/worker/cpu_model_runner.py:148@0.27.1"),
    flags_added: cited(
        &[
            "--cohere-format",
            "--cohere-is-reasoning-model",
            "--enable-fault-tolerance",
            "--fault-tolerance-config",
            "--kda-prefill-backend",
            "--mamba-ssu-algorithm",
            "--mm-hasher-algorithm",
            "--replayssm-buffer-len",
            "--use-replayssm",
            "--video-pruning-method",
        ],
        "vllm/engine/arg_utils.py:422@0.27.1",
    ),
    ..R26
};

pub(super) const R28: Release = Release {
    version: Version::V0_28,
    cuda_runner: cited(
        RunnerDefault::V2For {
            architectures: &[
                "DeepseekV2ForCausalLM",
                "DeepseekV4ForCausalLM",
                "GraniteMoeForCausalLM",
                "InklingForCausalLM",
                "InklingForConditionalGeneration",
                "KimiK3ForConditionalGeneration",
                "LongcatFlashNgramForCausalLM",
                "Qwen2MoeForCausalLM",
            ],
            dense_unquantized_only: false,
            any_dense: true,
        },
        "vllm/config/vllm.py:69-80,712@0.28.0",
    ),
    capture_cap_sm100: cited(1024, "vllm/config/vllm.py:1937-1938@0.28.0"),
    batch_defaults: cited(
        BatchDefaults {
            over_160_gib: Some((1024, 16384)),
            ..R10.batch_defaults.value
        },
        "vllm/engine/arg_utils.py:2582-2590@0.28.0",
    ),
    cpu_mla_block_size: cited(Some(16), "vllm/platforms/cpu.py:140-147@0.28.0"),
    flags_added: cited(
        &[
            "--ec-manager-config",
            "--mm-device-do-normalize",
            "--mm-processor-device",
            "--return-sampling-mask",
        ],
        "vllm/engine/arg_utils.py:424@0.28.0",
    ),
    ..R27
};

pub(super) const R29: Release = Release {
    version: Version::V0_29,
    cuda_runner: cited(RunnerDefault::V2, "vllm/config/vllm.py:645@0.29.0"),
    v2_fallback: Some(cited(
        V2Fallback {
            spec: SpecFallback::AllBut(&[
                "eagle",
                "eagle3",
                "mtp",
                "dflash",
                "dspark",
                "extract_hidden_states",
            ]),
            prompt_embeds: false,
        },
        "vllm/config/vllm.py:2564-2573@0.29.0",
    )),
    capture_decode_grid: cited(true, "vllm/config/vllm.py:2030-2036@0.29.0"),
    flashinfer_indices_on_device: gained("vllm/v1/attention/backends/flashinfer.py:923@0.29.0"),
    flags_added: cited(
        &[
            "--dcp-q-replicate",
            "--enable-batch-sharded-sampling",
            "--enable-trace-replay",
            "--max-num-queued-reqs",
            "--max-num-queued-tokens",
            "--per-request-spec-decode-metrics",
            "--prefix-cache-retention-interval",
            "--sse-keep-alive-interval",
        ],
        "vllm/engine/arg_utils.py:460@0.29.0",
    ),
    ..R28
};

pub(super) const R30: Release = Release {
    version: Version::V0_30,
    v2_fallback: Some(cited(
        V2Fallback {
            spec: SpecFallback::Only(&[
                "ngram",
                "ngram_gpu",
                "draft_model",
                "suffix",
                "medusa",
                "mlp_speculator",
                "custom_class",
            ]),
            prompt_embeds: false,
        },
        "vllm/config/vllm.py:2839-2849@0.30.0",
    )),
    kv_block_object_bytes: cited(136, "vllm/v1/core/kv_cache_utils.py:175-176@0.30.0"),
    v2_staged_contents_pool: gained("vllm/v1/worker/gpu/buffer_utils.py:91,175@0.30.0"),
    flags_added: cited(
        &[
            "--dp-sync-interval",
            "--elastic-ep-max-dp-size",
            "--enable-nccl-comm-suspend",
            "--enable-scale-out",
            "--engram-config",
            "--kda-decode-backend",
            "--sparse-indexer-topk-backend",
            "--watermark-config",
        ],
        "vllm/engine/arg_utils.py:432@0.30.0",
    ),
    ..R29
};

pub(super) const R31: Release = Release {
    version: Version::V0_31,
    v2_fallback: Some(cited(
        V2Fallback {
            spec: SpecFallback::Only(&[
                "ngram",
                "ngram_gpu",
                "suffix",
                "medusa",
                "mlp_speculator",
                "custom_class",
            ]),
            prompt_embeds: false,
        },
        "vllm/config/vllm.py:3074-3082@0.31.0",
    )),
    capture_adds_max_seqs: cited(true, "vllm/config/vllm.py:2539-2540@0.31.0"),
    flags_added: cited(
        &[
            "--anthropic-disabled-thinking-effort",
            "--aux-output-config",
            "--enable-mamba-shared-prefix-checkpoint",
            "--logging-config",
            "--long-prefill-token-threshold-adaptive",
            "--max-lora-cls-labels",
            "--max-num-active-seqs",
            "--sleep-preserve-parameter-names",
            "--swa-bounded-replay",
            "--tool-strict-level",
            "--trust-request-mm-kwargs",
        ],
        "vllm/engine/arg_utils.py:464@0.31.0",
    ),
    runner_is_padding: gained("vllm/v1/worker/gpu_model_runner.py:797-799@0.31.0"),
    ..R30
};

pub(super) const R32: Release = Release {
    version: Version::V0_32,
    v2_fallback: Some(cited(
        V2Fallback {
            spec: SpecFallback::Only(&["suffix", "medusa", "mlp_speculator", "custom_class"]),
            prompt_embeds: false,
        },
        "vllm/config/vllm.py:2928-2933@0.32.0",
    )),
    v2_ngram_token_ids_on_gpu: gained("vllm/v1/worker/gpu/model_runner.py:275-276@0.32.0"),
    sleep_backs_up_runtime: gained("vllm/device_allocator/sleep_mode_backend.py:134-136@0.32.0"),
    flags_added: cited(
        &[
            "--custom-histogram-buckets",
            "--enable-hc-sp",
            "--enable-shm-tensor-arena",
            "--grpc-port",
            "--sleep-mode-offload-cudagraph",
        ],
        "vllm/engine/arg_utils.py:471@0.32.0",
    ),
    ..R31
};

pub(super) const R33: Release = Release {
    version: Version::V0_33,
    v2_fallback: Some(cited(
        V2Fallback {
            spec: SpecFallback::Only(&["suffix", "custom_class"]),
            prompt_embeds: false,
        },
        "vllm/config/vllm.py:3067@0.33.0",
    )),
    batch_defaults: cited(
        BatchDefaults {
            gb10_small: true,
            ..R28.batch_defaults.value
        },
        "vllm/engine/arg_utils.py:2973-2987@0.33.0",
    ),
    xgrammar_compilers: cited(
        2,
        "vllm/v1/structured_output/backend_xgrammar.py:105-112@0.33.0",
    ),
    flags_added: cited(&[], "vllm/engine/arg_utils.py:489@0.33.0"),
    ..R32
};
