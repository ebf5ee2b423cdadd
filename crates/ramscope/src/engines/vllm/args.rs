//! vLLM's command line, parsed the way vLLM parses it: `--flag value`, `--flag=value`,
//! `--no-flag`, underscores for dashes, short forms (`-tp 2`, `-O3`), dotted config keys
//! (`-cc.cudagraph_mode=NONE`), and whole command lines (`vllm serve M …`,
//! `python -m vllm.entrypoints.openai.api_server --model M …`, with `NAME=VALUE` environment
//! assignments in front).
//!
//! Every flag of vLLM 0.32's `--help=all` is in [`FLAGS`]: either it drives a host-RAM
//! formula (a [`Field`]) or it carries the reason it does not. Flags of older releases that
//! newer ones removed are kept, with the release that removed them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Version;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("unknown vLLM flag {flag}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownFlag {
        flag: String,
        suggestion: Option<String>,
    },
    #[error("vLLM flag {flag} needs a value")]
    MissingValue { flag: String },
    #[error("vLLM flag {flag}: \"{value}\" is not {expected}")]
    BadValue {
        flag: String,
        value: String,
        expected: &'static str,
    },
    #[error("unexpected argument \"{arg}\" (the model is already \"{model}\")")]
    ExtraPositional { arg: String, model: String },
    #[error("unbalanced quotes in the command line")]
    Quotes,
}

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--flag` / `--no-flag` (argparse `BooleanOptionalAction`).
    Bool,
    /// `--flag` only (`store_true`).
    Switch,
    /// `--flag VALUE`.
    Value,
    /// `--flag [VALUE]`.
    OptValue,
    /// `--flag V1 V2 …` (`nargs="+"`).
    Multi,
}

/// The settings that change host RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Model,
    MaxModelLen,
    MaxNumSeqs,
    MaxNumBatchedTokens,
    BlockSize,
    Dtype,
    KvCacheDtype,
    GpuMemoryUtilization,
    KvCacheMemoryBytes,
    NumGpuBlocksOverride,
    SwapSpace,
    CpuOffloadGb,
    KvOffloadingSize,
    KvOffloadingBackend,
    KvTransferConfig,
    EnforceEager,
    EnableSleepMode,
    SafetensorsLoadStrategy,
    SafetensorsPrefetchThreads,
    LoadFormat,
    ModelLoaderExtraConfig,
    MaxParallelLoadingWorkers,
    MmProcessorCacheGb,
    MmProcessorCacheType,
    MmShmCacheMaxObjectSizeMb,
    LimitMmPerPrompt,
    LanguageModelOnly,
    MmEncoderOnly,
    ApiServerCount,
    TensorParallelSize,
    PipelineParallelSize,
    DataParallelSize,
    DataParallelSizeLocal,
    DecodeContextParallelSize,
    Headless,
    EnableLora,
    MaxLoras,
    MaxCpuLoras,
    MaxLoraRank,
    SpeculativeConfig,
    SpecMethod,
    SpecModel,
    SpecTokens,
    EnablePrefixCaching,
    PrefixCachingHashAlgo,
    MaxLogprobs,
    SkipTokenizerInit,
    EnablePromptEmbeds,
    CompilationConfig,
    CudagraphCaptureSizes,
    MaxCudagraphCaptureSize,
    OptimizationLevel,
    AttentionBackend,
    DistributedExecutorBackend,
    AsyncScheduling,
    EnableChunkedPrefill,
    EnableShmTensorArena,
    Quantization,
    ConfigFile,
}

/// What a flag does to host RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Drives a formula.
    Models(Field),
    /// Parsed and ignored, with the reason.
    NoHostRam(&'static str),
}

/// One vLLM flag.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    pub effect: Effect,
    /// The first release without it.
    pub removed_in: Option<Version>,
}

const fn m(name: &'static str, aliases: &'static [&'static str], kind: Kind, field: Field) -> Flag {
    Flag {
        name,
        aliases,
        kind,
        effect: Effect::Models(field),
        removed_in: None,
    }
}

const fn nh(
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    why: &'static str,
) -> Flag {
    Flag {
        name,
        aliases,
        kind,
        effect: Effect::NoHostRam(why),
        removed_in: None,
    }
}

const fn gone(name: &'static str, kind: Kind, removed_in: Version, effect: Effect) -> Flag {
    Flag {
        name,
        aliases: &[],
        kind,
        effect,
        removed_in: Some(removed_in),
    }
}

use Field as F;
use Kind::*;

/// Every flag ramscope knows, modelled ones first.
pub const FLAGS: &[Flag] = &[
    m("--model", &[], Value, F::Model),
    m("--max-model-len", &[], Value, F::MaxModelLen),
    m("--max-num-seqs", &[], Value, F::MaxNumSeqs),
    m(
        "--max-num-batched-tokens",
        &[],
        Value,
        F::MaxNumBatchedTokens,
    ),
    m("--block-size", &[], Value, F::BlockSize),
    m("--dtype", &[], Value, F::Dtype),
    m("--kv-cache-dtype", &[], Value, F::KvCacheDtype),
    m(
        "--gpu-memory-utilization",
        &["--device-memory-utilization"],
        Value,
        F::GpuMemoryUtilization,
    ),
    m("--kv-cache-memory-bytes", &[], Value, F::KvCacheMemoryBytes),
    m(
        "--num-gpu-blocks-override",
        &[],
        Value,
        F::NumGpuBlocksOverride,
    ),
    m("--cpu-offload-gb", &[], Value, F::CpuOffloadGb),
    m("--kv-offloading-size", &[], Value, F::KvOffloadingSize),
    m(
        "--kv-offloading-backend",
        &[],
        Value,
        F::KvOffloadingBackend,
    ),
    m("--kv-transfer-config", &[], Value, F::KvTransferConfig),
    m("--enforce-eager", &[], Bool, F::EnforceEager),
    m("--enable-sleep-mode", &[], Bool, F::EnableSleepMode),
    m(
        "--safetensors-load-strategy",
        &[],
        Value,
        F::SafetensorsLoadStrategy,
    ),
    m(
        "--safetensors-prefetch-num-threads",
        &[],
        Value,
        F::SafetensorsPrefetchThreads,
    ),
    m("--load-format", &[], Value, F::LoadFormat),
    m(
        "--model-loader-extra-config",
        &[],
        Value,
        F::ModelLoaderExtraConfig,
    ),
    m(
        "--max-parallel-loading-workers",
        &[],
        Value,
        F::MaxParallelLoadingWorkers,
    ),
    m("--mm-processor-cache-gb", &[], Value, F::MmProcessorCacheGb),
    m(
        "--mm-processor-cache-type",
        &[],
        Value,
        F::MmProcessorCacheType,
    ),
    m(
        "--mm-shm-cache-max-object-size-mb",
        &[],
        Value,
        F::MmShmCacheMaxObjectSizeMb,
    ),
    m("--limit-mm-per-prompt", &[], Value, F::LimitMmPerPrompt),
    m("--language-model-only", &[], Bool, F::LanguageModelOnly),
    m("--mm-encoder-only", &[], Bool, F::MmEncoderOnly),
    m("--api-server-count", &["-asc"], Value, F::ApiServerCount),
    m(
        "--tensor-parallel-size",
        &["-tp"],
        Value,
        F::TensorParallelSize,
    ),
    m(
        "--pipeline-parallel-size",
        &["-pp"],
        Value,
        F::PipelineParallelSize,
    ),
    m("--data-parallel-size", &["-dp"], Value, F::DataParallelSize),
    m(
        "--data-parallel-size-local",
        &["-dpl"],
        Value,
        F::DataParallelSizeLocal,
    ),
    m(
        "--decode-context-parallel-size",
        &["-dcp"],
        Value,
        F::DecodeContextParallelSize,
    ),
    m("--headless", &[], Switch, F::Headless),
    m("--enable-lora", &[], Bool, F::EnableLora),
    m("--max-loras", &[], Value, F::MaxLoras),
    m("--max-cpu-loras", &[], Value, F::MaxCpuLoras),
    m("--max-lora-rank", &[], Value, F::MaxLoraRank),
    m(
        "--speculative-config",
        &["-sc"],
        Value,
        F::SpeculativeConfig,
    ),
    m("--spec-method", &[], Value, F::SpecMethod),
    m("--spec-model", &[], Value, F::SpecModel),
    m("--spec-tokens", &[], Value, F::SpecTokens),
    m("--enable-prefix-caching", &[], Bool, F::EnablePrefixCaching),
    m(
        "--prefix-caching-hash-algo",
        &[],
        Value,
        F::PrefixCachingHashAlgo,
    ),
    m("--max-logprobs", &[], Value, F::MaxLogprobs),
    m("--skip-tokenizer-init", &[], Bool, F::SkipTokenizerInit),
    m("--enable-prompt-embeds", &[], Bool, F::EnablePromptEmbeds),
    m(
        "--compilation-config",
        &["-cc"],
        Value,
        F::CompilationConfig,
    ),
    m(
        "--cudagraph-capture-sizes",
        &[],
        Multi,
        F::CudagraphCaptureSizes,
    ),
    m(
        "--max-cudagraph-capture-size",
        &[],
        Value,
        F::MaxCudagraphCaptureSize,
    ),
    m("--optimization-level", &["-O"], Value, F::OptimizationLevel),
    m("--attention-backend", &[], Value, F::AttentionBackend),
    m(
        "--distributed-executor-backend",
        &[],
        Value,
        F::DistributedExecutorBackend,
    ),
    m("--async-scheduling", &[], Bool, F::AsyncScheduling),
    m(
        "--enable-chunked-prefill",
        &[],
        Bool,
        F::EnableChunkedPrefill,
    ),
    m(
        "--enable-shm-tensor-arena",
        &[],
        Bool,
        F::EnableShmTensorArena,
    ),
    m("--quantization", &["-q"], Value, F::Quantization),
    m("--config", &[], Value, F::ConfigFile),
    // Removed flags of 0.10–0.12, so old command lines parse and say what happened.
    gone(
        "--swap-space",
        Value,
        Version::V0_32,
        Effect::Models(F::SwapSpace),
    ),
    gone(
        "--disable-log-requests",
        Switch,
        Version::V0_32,
        Effect::NoHostRam("HTTP frontend or logging"),
    ),
    gone(
        "--max-seq-len-to-capture",
        Value,
        Version::V0_12,
        Effect::NoHostRam("CUDA graph sizes (replaced by --max-cudagraph-capture-size)"),
    ),
    gone(
        "--guided-decoding-backend",
        Value,
        Version::V0_11,
        Effect::NoHostRam("structured-output backend choice"),
    ),
    gone(
        "--disable-mm-preprocessor-cache",
        Switch,
        Version::V0_11,
        Effect::Models(F::MmProcessorCacheGb),
    ),
    gone(
        "--num-scheduler-steps",
        Value,
        Version::V0_10,
        Effect::NoHostRam("scheduling policy"),
    ),
    gone(
        "--preemption-mode",
        Value,
        Version::V0_11,
        Effect::NoHostRam("V0 scheduling"),
    ),
    gone(
        "--disable-async-output-proc",
        Switch,
        Version::V0_11,
        Effect::NoHostRam("V0 scheduling"),
    ),
    gone(
        "--tokenizer-pool-size",
        Value,
        Version::V0_11,
        Effect::NoHostRam("V0 tokenizer pool"),
    ),
    gone(
        "--device",
        Value,
        Version::V0_11,
        Effect::NoHostRam("device selection (use ramscope's own --device)"),
    ),
    gone(
        "--override-neuron-config",
        Value,
        Version::V0_11,
        Effect::NoHostRam("Neuron devices"),
    ),
    gone(
        "--long-lora-scaling-factors",
        Value,
        Version::V0_11,
        Effect::NoHostRam("LoRA options without a host buffer"),
    ),
    gone(
        "--enable-reasoning",
        Switch,
        Version::V0_10,
        Effect::NoHostRam("request and response formatting"),
    ),
    nh(
        "--mamba-cache-mode",
        &[],
        Value,
        "KV cache layout on the device",
    ),
    // Everything else vLLM 0.32 lists, and why it does not size host RAM.
    nh(
        "--aggregate-engine-logging",
        &[],
        Switch,
        "HTTP frontend or logging",
    ),
    nh(
        "--disable-log-stats",
        &[],
        Switch,
        "HTTP frontend or logging",
    ),
    nh(
        "--enable-log-requests",
        &[],
        Bool,
        "HTTP frontend or logging",
    ),
    nh(
        "--fail-on-environ-validation",
        &[],
        Bool,
        "HTTP frontend or logging",
    ),
    nh(
        "--gdn-prefill-backend",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh("--grpc", &[], Switch, "HTTP frontend or logging"),
    nh(
        "--kda-decode-backend",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--kda-prefill-backend",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh("--shutdown-timeout", &[], Value, "HTTP frontend or logging"),
    nh("--allow-credentials", &[], Bool, "HTTP frontend or logging"),
    nh("--allowed-headers", &[], Value, "HTTP frontend or logging"),
    nh("--allowed-methods", &[], Value, "HTTP frontend or logging"),
    nh("--allowed-origins", &[], Value, "HTTP frontend or logging"),
    nh(
        "--anthropic-disabled-thinking-effort",
        &[],
        Value,
        "request and response formatting",
    ),
    nh("--api-key", &[], Multi, "HTTP frontend or logging"),
    nh(
        "--chat-template",
        &[],
        Value,
        "request and response formatting",
    ),
    nh(
        "--chat-template-content-format",
        &[],
        Value,
        "request and response formatting",
    ),
    nh(
        "--cohere-format",
        &[],
        Value,
        "request and response formatting",
    ),
    nh(
        "--cohere-is-reasoning-model",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh(
        "--data-parallel-supervisor-port",
        &[],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--default-chat-template-kwargs",
        &[],
        Value,
        "request and response formatting",
    ),
    nh(
        "--disable-access-log-for-endpoints",
        &[],
        Value,
        "HTTP frontend or logging",
    ),
    nh(
        "--disable-fastapi-docs",
        &[],
        Bool,
        "HTTP frontend or logging",
    ),
    nh(
        "--disable-uvicorn-access-log",
        &[],
        Bool,
        "HTTP frontend or logging",
    ),
    nh(
        "--dp-supervisor-probe-failure-threshold",
        &[],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--dp-supervisor-probe-interval-s",
        &[],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--dp-supervisor-probe-timeout-s",
        &[],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--enable-auto-tool-choice",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh(
        "--enable-flash-late-interaction",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh(
        "--enable-force-include-usage",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh(
        "--enable-log-deltas",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh(
        "--enable-log-outputs",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh(
        "--enable-offline-docs",
        &[],
        Bool,
        "HTTP frontend or logging",
    ),
    nh(
        "--enable-per-request-metrics",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh(
        "--enable-prompt-tokens-details",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh(
        "--enable-request-id-headers",
        &[],
        Bool,
        "HTTP frontend or logging",
    ),
    nh("--enable-scale-out", &[], Bool, "HTTP frontend or logging"),
    nh(
        "--enable-server-load-tracking",
        &[],
        Bool,
        "HTTP frontend or logging",
    ),
    nh(
        "--enable-ssl-refresh",
        &[],
        Bool,
        "HTTP frontend or logging",
    ),
    nh(
        "--enable-tokenizer-info-endpoint",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh(
        "--exclude-tools-when-tool-choice-none",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh("--fingerprint-mode", &[], Value, "HTTP frontend or logging"),
    nh(
        "--fingerprint-value",
        &[],
        Value,
        "HTTP frontend or logging",
    ),
    nh("--grpc-port", &[], Value, "HTTP frontend or logging"),
    nh(
        "--h11-max-header-count",
        &[],
        Value,
        "HTTP frontend or logging",
    ),
    nh(
        "--h11-max-incomplete-event-size",
        &[],
        Value,
        "HTTP frontend or logging",
    ),
    nh("--host", &[], Value, "HTTP frontend or logging"),
    nh(
        "--log-error-stack",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh(
        "--lora-modules",
        &[],
        Multi,
        "request and response formatting",
    ),
    nh("--max-log-len", &[], Value, "HTTP frontend or logging"),
    nh("--middleware", &[], Value, "HTTP frontend or logging"),
    nh("--port", &[], Value, "HTTP frontend or logging"),
    nh(
        "--response-role",
        &[],
        Value,
        "request and response formatting",
    ),
    nh(
        "--return-tokens-as-token-ids",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh("--root-path", &[], Value, "HTTP frontend or logging"),
    nh(
        "--sse-keep-alive-interval",
        &[],
        Value,
        "HTTP frontend or logging",
    ),
    nh("--ssl-ca-certs", &[], Value, "HTTP frontend or logging"),
    nh("--ssl-cert-reqs", &[], Value, "HTTP frontend or logging"),
    nh("--ssl-certfile", &[], Value, "HTTP frontend or logging"),
    nh("--ssl-ciphers", &[], Value, "HTTP frontend or logging"),
    nh("--ssl-keyfile", &[], Value, "HTTP frontend or logging"),
    nh(
        "--tokens-only",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh(
        "--tool-call-parser",
        &[],
        Value,
        "request and response formatting",
    ),
    nh(
        "--tool-parser-plugin",
        &[],
        Value,
        "request and response formatting",
    ),
    nh(
        "--tool-server",
        &[],
        Value,
        "request and response formatting",
    ),
    nh(
        "--tool-strict-level",
        &[],
        Value,
        "request and response formatting",
    ),
    nh(
        "--trust-request-chat-template",
        &[],
        Bool,
        "request and response formatting",
    ),
    nh(
        "--trust-request-mm-kwargs",
        &[],
        Bool,
        "multimodal options without a host buffer",
    ),
    nh("--uds", &[], Value, "HTTP frontend or logging"),
    nh(
        "--uvicorn-log-level",
        &[],
        Value,
        "HTTP frontend or logging",
    ),
    nh(
        "--allow-deprecated-quantization",
        &[],
        Bool,
        "model identity and numerics",
    ),
    nh(
        "--allowed-local-media-path",
        &[],
        Value,
        "HTTP frontend or logging",
    ),
    nh(
        "--allowed-media-domains",
        &[],
        Multi,
        "HTTP frontend or logging",
    ),
    nh("--code-revision", &[], Value, "model identity and numerics"),
    nh("--config-format", &[], Value, "model identity and numerics"),
    nh("--convert", &[], Value, "model identity and numerics"),
    nh(
        "--disable-cascade-attn",
        &[],
        Bool,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--disable-sliding-window",
        &[],
        Bool,
        "KV cache layout on the device",
    ),
    nh(
        "--enable-cumem-allocator",
        &[],
        Bool,
        "model identity and numerics",
    ),
    nh(
        "--enable-nccl-comm-suspend",
        &[],
        Bool,
        "multi-node and process placement",
    ),
    nh(
        "--enable-return-routed-experts",
        &[],
        Bool,
        "GPU kernel selection (device memory)",
    ),
    nh("--enable-trace-replay", &[], Bool, "observability"),
    nh(
        "--generation-config",
        &[],
        Value,
        "model identity and numerics",
    ),
    nh(
        "--hf-config-path",
        &[],
        Value,
        "model identity and numerics",
    ),
    nh("--hf-overrides", &[], Value, "model identity and numerics"),
    nh("--hf-token", &[], OptValue, "model identity and numerics"),
    nh(
        "--io-processor-plugin",
        &[],
        Value,
        "model identity and numerics",
    ),
    nh(
        "--logits-processors",
        &[],
        Multi,
        "model identity and numerics",
    ),
    nh("--logprobs-mode", &[], Value, "model identity and numerics"),
    nh(
        "--model-class-overrides",
        &[],
        Value,
        "model identity and numerics",
    ),
    nh("--model-impl", &[], Value, "model identity and numerics"),
    nh(
        "--override-generation-config",
        &[],
        Value,
        "model identity and numerics",
    ),
    nh("--pooler-config", &[], Value, "model identity and numerics"),
    nh(
        "--quantization-config",
        &[],
        Value,
        "model identity and numerics",
    ),
    nh(
        "--renderer-num-workers",
        &[],
        Value,
        "model identity and numerics",
    ),
    nh(
        "--return-sampling-mask",
        &[],
        Bool,
        "model identity and numerics",
    ),
    nh("--revision", &[], Value, "model identity and numerics"),
    nh("--runner", &[], Value, "model identity and numerics"),
    nh("--seed", &[], Value, "model identity and numerics"),
    nh(
        "--served-model-name",
        &[],
        Multi,
        "model identity and numerics",
    ),
    nh(
        "--sleep-mode-offload-cudagraph",
        &[],
        Bool,
        "model identity and numerics",
    ),
    nh(
        "--sleep-preserve-parameter-names",
        &[],
        Multi,
        "model identity and numerics",
    ),
    nh("--tokenizer", &[], Value, "model identity and numerics"),
    nh(
        "--tokenizer-mode",
        &[],
        Value,
        "model identity and numerics",
    ),
    nh(
        "--tokenizer-revision",
        &[],
        Value,
        "model identity and numerics",
    ),
    nh(
        "--trust-remote-code",
        &[],
        Bool,
        "model identity and numerics",
    ),
    nh(
        "--use-fp64-gumbel",
        &[],
        Bool,
        "model identity and numerics",
    ),
    nh("--download-dir", &[], Value, "model identity and numerics"),
    nh(
        "--ignore-patterns",
        &[],
        Multi,
        "model identity and numerics",
    ),
    nh(
        "--pt-load-map-location",
        &[],
        Value,
        "model identity and numerics",
    ),
    nh(
        "--safetensors-prefetch-block-size",
        &[],
        Value,
        "model identity and numerics",
    ),
    nh(
        "--use-tqdm-on-load",
        &[],
        Bool,
        "model identity and numerics",
    ),
    nh(
        "--enable-mamba-cache-stochastic-rounding",
        &[],
        Bool,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--mamba-backend",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--mamba-cache-philox-rounds",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--mamba-ssu-algorithm",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--reasoning-parser",
        &[],
        Value,
        "request and response formatting",
    ),
    nh(
        "--reasoning-parser-plugin",
        &[],
        Value,
        "request and response formatting",
    ),
    nh(
        "--all2all-backend",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--cp-kv-cache-interleave-size",
        &[],
        Value,
        "KV cache layout on the device",
    ),
    nh(
        "--cpu-distributed-timeout-seconds",
        &[],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--data-parallel-address",
        &["-dpa"],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--data-parallel-backend",
        &["-dpb"],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--data-parallel-external-lb",
        &["-dpe"],
        Bool,
        "multi-node and process placement",
    ),
    nh(
        "--data-parallel-hybrid-lb",
        &["-dph"],
        Bool,
        "multi-node and process placement",
    ),
    nh(
        "--data-parallel-multi-port-external-lb",
        &["-dpm"],
        Switch,
        "multi-node and process placement",
    ),
    nh(
        "--data-parallel-rank",
        &["-dpn"],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--data-parallel-rpc-port",
        &["-dpp"],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--data-parallel-start-rank",
        &["-dpr"],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--dbo-decode-token-threshold",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--dbo-prefill-token-threshold",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--dcp-comm-backend",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--dcp-kv-cache-interleave-size",
        &[],
        Value,
        "KV cache layout on the device",
    ),
    nh(
        "--dcp-q-replicate",
        &[],
        Bool,
        "KV cache layout on the device",
    ),
    nh(
        "--device-ids",
        &[],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--disable-custom-all-reduce",
        &[],
        Bool,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--disable-nccl-for-dp-synchronization",
        &[],
        Bool,
        "multi-node and process placement",
    ),
    nh(
        "--distributed-timeout-seconds",
        &[],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--dp-sync-interval",
        &[],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--elastic-ep-max-dp-size",
        &[],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--enable-batch-sharded-sampling",
        &[],
        Bool,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--enable-dbo",
        &[],
        Bool,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--enable-elastic-ep",
        &[],
        Bool,
        "multi-node and process placement",
    ),
    nh(
        "--enable-ep-weight-filter",
        &[],
        Bool,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--enable-eplb",
        &[],
        Bool,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--enable-expert-parallel",
        &["-ep"],
        Bool,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--enable-fault-tolerance",
        &[],
        Bool,
        "multi-node and process placement",
    ),
    nh(
        "--enable-hc-sp",
        &[],
        Bool,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--eplb-config",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--expert-placement-strategy",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--fault-tolerance-config",
        &[],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--master-addr",
        &[],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--master-port",
        &[],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--nnodes",
        &["-n"],
        Value,
        "multi-node and process placement",
    ),
    nh(
        "--node-rank",
        &["-r"],
        Value,
        "multi-node and process placement",
    ),
    nh("--numa-bind", &[], Bool, "multi-node and process placement"),
    nh(
        "--numa-bind-cpus",
        &[],
        Multi,
        "multi-node and process placement",
    ),
    nh(
        "--numa-bind-nodes",
        &[],
        Multi,
        "multi-node and process placement",
    ),
    nh(
        "--prefill-context-parallel-size",
        &["-pcp"],
        Value,
        "KV cache layout on the device",
    ),
    nh(
        "--ray-workers-use-nsight",
        &[],
        Bool,
        "multi-node and process placement",
    ),
    nh(
        "--ubatch-size",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--worker-cls",
        &[],
        Value,
        "custom worker classes are not modelled",
    ),
    nh(
        "--worker-extension-cls",
        &[],
        Value,
        "custom worker classes are not modelled",
    ),
    nh(
        "--enable-mamba-shared-prefix-checkpoint",
        &[],
        Bool,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--kv-cache-dtype-skip-layers",
        &[],
        Multi,
        "KV cache layout on the device",
    ),
    nh(
        "--kv-sharing-fast-prefill",
        &[],
        Bool,
        "KV cache layout on the device",
    ),
    nh(
        "--mamba-block-size",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--mamba-cache-dtype",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--mamba-ssm-cache-dtype",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--prefix-cache-retention-interval",
        &[],
        Value,
        "KV cache layout on the device",
    ),
    nh(
        "--prefix-match-unit",
        &[],
        Value,
        "KV cache layout on the device",
    ),
    nh(
        "--replayssm-buffer-len",
        &[],
        Value,
        "KV cache layout on the device",
    ),
    nh(
        "--swa-bounded-replay",
        &[],
        Bool,
        "KV cache layout on the device",
    ),
    nh(
        "--use-replayssm",
        &[],
        Bool,
        "KV cache layout on the device",
    ),
    nh(
        "--cpu-offload-params",
        &[],
        Multi,
        "weight offload (GPU: not in this estimate yet)",
    ),
    nh(
        "--offload-backend",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--offload-group-size",
        &[],
        Value,
        "weight offload (GPU: not in this estimate yet)",
    ),
    nh(
        "--offload-num-in-group",
        &[],
        Value,
        "weight offload (GPU: not in this estimate yet)",
    ),
    nh(
        "--offload-params",
        &[],
        Multi,
        "weight offload (GPU: not in this estimate yet)",
    ),
    nh(
        "--offload-prefetch-step",
        &[],
        Value,
        "weight offload (GPU: not in this estimate yet)",
    ),
    nh(
        "--enable-mm-embeds",
        &[],
        Bool,
        "multimodal options without a host buffer",
    ),
    nh(
        "--interleave-mm-strings",
        &[],
        Bool,
        "multimodal options without a host buffer",
    ),
    nh(
        "--media-io-kwargs",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--mm-device-do-normalize",
        &[],
        Bool,
        "multimodal options without a host buffer",
    ),
    nh(
        "--mm-encoder-attn-backend",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--mm-encoder-attn-dtype",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--mm-encoder-fp8-scale-path",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--mm-encoder-fp8-scale-save-margin",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--mm-encoder-fp8-scale-save-path",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--mm-encoder-tp-mode",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--mm-hasher-algorithm",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--mm-ipc-gpu-memory-gb",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--mm-processor-device",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--mm-processor-kwargs",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--mm-tensor-ipc",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--skip-mm-profiling",
        &[],
        Bool,
        "multimodal options without a host buffer",
    ),
    nh(
        "--video-pruning-method",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--video-pruning-rate",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--default-mm-loras",
        &[],
        Value,
        "multimodal options without a host buffer",
    ),
    nh(
        "--enable-mixed-moe-lora-format",
        &[],
        Bool,
        "LoRA options without a host buffer",
    ),
    nh(
        "--enable-moe-shared-loras",
        &[],
        Bool,
        "LoRA options without a host buffer",
    ),
    nh(
        "--enable-tower-connector-lora",
        &[],
        Bool,
        "multimodal options without a host buffer",
    ),
    nh(
        "--fully-sharded-loras",
        &[],
        Bool,
        "LoRA options without a host buffer",
    ),
    nh(
        "--lora-dtype",
        &[],
        Value,
        "LoRA options without a host buffer",
    ),
    nh(
        "--lora-target-modules",
        &[],
        Multi,
        "LoRA options without a host buffer",
    ),
    nh(
        "--max-lora-cls-labels",
        &[],
        Value,
        "LoRA options without a host buffer",
    ),
    nh(
        "--specialize-active-lora",
        &[],
        Bool,
        "LoRA options without a host buffer",
    ),
    nh("--log-config-file", &[], Value, "observability"),
    nh("--log-level", &[], Value, "observability"),
    nh("--logging-config", &[], Value, "observability"),
    nh("--collect-detailed-traces", &[], Value, "observability"),
    nh("--cudagraph-metrics", &[], Bool, "observability"),
    nh("--custom-histogram-buckets", &[], Value, "observability"),
    nh(
        "--enable-layerwise-nvtx-tracing",
        &[],
        Bool,
        "observability",
    ),
    nh(
        "--enable-logging-iteration-details",
        &[],
        Bool,
        "observability",
    ),
    nh("--enable-mfu-metrics", &[], Bool, "observability"),
    nh("--jit-monitor-mode", &[], Value, "observability"),
    nh("--jit-monitor-verbose", &[], Bool, "observability"),
    nh("--kv-cache-metrics", &[], Bool, "observability"),
    nh("--kv-cache-metrics-sample", &[], Value, "observability"),
    nh("--otlp-traces-endpoint", &[], Value, "observability"),
    nh(
        "--per-request-spec-decode-metrics",
        &[],
        Value,
        "observability",
    ),
    nh(
        "--show-hidden-metrics-for-version",
        &[],
        Value,
        "observability",
    ),
    nh(
        "--disable-chunked-mm-input",
        &[],
        Bool,
        "multimodal options without a host buffer",
    ),
    nh(
        "--disable-hybrid-kv-cache-manager",
        &[],
        Bool,
        "KV cache layout on the device",
    ),
    nh(
        "--long-prefill-token-threshold",
        &[],
        Value,
        "scheduling policy",
    ),
    nh(
        "--long-prefill-token-threshold-adaptive",
        &[],
        Bool,
        "scheduling policy",
    ),
    nh("--max-num-active-seqs", &[], Value, "scheduling policy"),
    nh("--max-num-queued-reqs", &[], Value, "scheduling policy"),
    nh("--max-num-queued-tokens", &[], Value, "scheduling policy"),
    nh(
        "--max-num-scheduled-tokens",
        &[],
        Value,
        "scheduling policy",
    ),
    nh(
        "--prefill-schedule-interval",
        &[],
        Value,
        "scheduling policy",
    ),
    nh("--scheduler-cls", &[], Value, "scheduling policy"),
    nh(
        "--scheduler-reserve-full-isl",
        &[],
        Bool,
        "scheduling policy",
    ),
    nh("--scheduling-policy", &[], Value, "scheduling policy"),
    nh("--stream-interval", &[], Value, "scheduling policy"),
    nh("--watermark", &[], Value, "scheduling policy"),
    nh(
        "--enable-flashinfer-autotune",
        &[],
        Bool,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--ir-op-priority",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--linear-backend",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--moe-backend",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--sparse-indexer-topk-backend",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--additional-config",
        &[],
        Value,
        "engine sub-config without a host buffer",
    ),
    nh(
        "--attention-config",
        &["-ac"],
        Value,
        "engine sub-config without a host buffer",
    ),
    nh(
        "--aux-output-config",
        &[],
        Value,
        "engine sub-config without a host buffer",
    ),
    nh(
        "--diffusion-config",
        &["-dc"],
        Value,
        "engine sub-config without a host buffer",
    ),
    nh(
        "--ec-manager-config",
        &[],
        Value,
        "engine sub-config without a host buffer",
    ),
    nh(
        "--ec-transfer-config",
        &[],
        Value,
        "engine sub-config without a host buffer",
    ),
    nh(
        "--engram-config",
        &[],
        Value,
        "engine sub-config without a host buffer",
    ),
    nh(
        "--kernel-config",
        &[],
        Value,
        "GPU kernel selection (device memory)",
    ),
    nh(
        "--kv-events-config",
        &[],
        Value,
        "KV cache layout on the device",
    ),
    nh("--performance-mode", &[], Value, "scheduling policy"),
    nh("--profiler-config", &[], Value, "observability"),
    nh(
        "--reasoning-config",
        &[],
        Value,
        "request and response formatting",
    ),
    nh(
        "--structured-outputs-config",
        &[],
        Value,
        "engine sub-config without a host buffer",
    ),
    nh("--watermark-config", &[], Value, "scheduling policy"),
    nh(
        "--weight-transfer-config",
        &[],
        Value,
        "engine sub-config without a host buffer",
    ),
];

/// A parsed vLLM command line: what the user set, nothing defaulted yet (see
/// [`super::defaults::resolve`]). Change fields and re-estimate to see what a flag would do.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VllmArgs {
    pub model: Option<String>,
    pub max_model_len: Option<u64>,
    pub max_num_seqs: Option<u64>,
    pub max_num_batched_tokens: Option<u64>,
    pub block_size: Option<u64>,
    pub dtype: Option<String>,
    pub kv_cache_dtype: Option<String>,
    pub gpu_memory_utilization: Option<f64>,
    pub kv_cache_memory_bytes: Option<u64>,
    pub num_gpu_blocks_override: Option<u64>,
    /// GiB. Unused by V1; removed in 0.32.
    pub swap_space: Option<f64>,
    pub cpu_offload_gb: Option<f64>,
    /// GiB, total across TP × PP.
    pub kv_offloading_size: Option<f64>,
    pub kv_offloading_backend: Option<String>,
    /// JSON.
    pub kv_transfer_config: Option<String>,
    pub enforce_eager: Option<bool>,
    pub enable_sleep_mode: Option<bool>,
    pub safetensors_load_strategy: Option<String>,
    pub safetensors_prefetch_num_threads: Option<u64>,
    pub load_format: Option<String>,
    /// JSON.
    pub model_loader_extra_config: Option<String>,
    pub max_parallel_loading_workers: Option<u64>,
    pub mm_processor_cache_gb: Option<f64>,
    pub mm_processor_cache_type: Option<String>,
    pub mm_shm_cache_max_object_size_mb: Option<u64>,
    /// JSON, e.g. `{"image": 0}`.
    pub limit_mm_per_prompt: Option<String>,
    pub language_model_only: Option<bool>,
    pub mm_encoder_only: Option<bool>,
    pub api_server_count: Option<u64>,
    pub tensor_parallel_size: Option<u64>,
    pub pipeline_parallel_size: Option<u64>,
    pub data_parallel_size: Option<u64>,
    pub data_parallel_size_local: Option<u64>,
    pub decode_context_parallel_size: Option<u64>,
    pub headless: bool,
    pub enable_lora: Option<bool>,
    pub max_loras: Option<u64>,
    pub max_cpu_loras: Option<u64>,
    pub max_lora_rank: Option<u64>,
    /// JSON.
    pub speculative_config: Option<String>,
    pub spec_method: Option<String>,
    pub spec_model: Option<String>,
    pub spec_tokens: Option<u64>,
    pub enable_prefix_caching: Option<bool>,
    pub prefix_caching_hash_algo: Option<String>,
    pub max_logprobs: Option<u64>,
    pub skip_tokenizer_init: Option<bool>,
    pub enable_prompt_embeds: Option<bool>,
    /// JSON or a level; dotted keys (`-cc.cudagraph_mode=NONE`) are merged in.
    pub compilation_config: BTreeMap<String, String>,
    pub cudagraph_capture_sizes: Option<Vec<u64>>,
    pub max_cudagraph_capture_size: Option<u64>,
    pub optimization_level: Option<u64>,
    pub attention_backend: Option<String>,
    pub distributed_executor_backend: Option<String>,
    pub async_scheduling: Option<bool>,
    pub enable_chunked_prefill: Option<bool>,
    pub enable_shm_tensor_arena: Option<bool>,
    pub quantization: Option<String>,
    pub config_file: Option<String>,
    /// `NAME=VALUE` assignments written before the command.
    pub env: BTreeMap<String, String>,
    /// Every flag as given (canonical name → raw value, `true` for switches).
    pub given: BTreeMap<String, String>,
    /// Flags that change nothing in host RAM, with why.
    pub ignored: Vec<(String, &'static str)>,
    /// Flags removed by some release (checked against the chosen version later).
    pub removed: Vec<(String, Version)>,
}

/// Splits a shell command line into words: single and double quotes, backslash escapes.
pub fn split_command_line(line: &str) -> Result<Vec<String>, ArgsError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(ArgsError::Quotes),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch) => cur.push(ch),
                            None => return Err(ArgsError::Quotes),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(ArgsError::Quotes),
                    }
                }
            }
            '\\' => {
                // A backslash-newline continues the line.
                match chars.next() {
                    Some('\n') | None => {}
                    Some(ch) => {
                        in_word = true;
                        cur.push(ch);
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Parses a command line given as one string (see [`parse`]).
pub fn parse_str(line: &str) -> Result<VllmArgs, ArgsError> {
    parse(&split_command_line(line)?)
}

/// Parses vLLM flags, or a whole vLLM command line with its launcher and any leading
/// `NAME=VALUE` environment assignments.
pub fn parse(argv: &[String]) -> Result<VllmArgs, ArgsError> {
    let mut args = VllmArgs::default();
    let rest = strip_launcher(argv, &mut args.env);
    let mut i = 0;
    while i < rest.len() {
        let word = &rest[i];
        i += 1;
        if word == "--" {
            continue;
        }
        if !word.starts_with('-') || word == "-" || is_number(word) {
            match &args.model {
                None => {
                    args.model = Some(word.clone());
                    args.given.insert("--model".into(), word.clone());
                }
                Some(model) => {
                    return Err(ArgsError::ExtraPositional {
                        arg: word.clone(),
                        model: model.clone(),
                    })
                }
            }
            continue;
        }
        let (raw_name, inline) = match word.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (word.clone(), None),
        };
        // `-O3` is `--optimization-level 3`.
        if let Some(level) = raw_name
            .strip_prefix("-O")
            .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
        {
            apply(
                &mut args,
                FLAG_OPT_LEVEL,
                "--optimization-level",
                Some(level.to_string()),
            )?;
            continue;
        }
        let (name, dotted) = split_dotted(&raw_name);
        let (flag, negated) = lookup(&name).ok_or_else(|| ArgsError::UnknownFlag {
            flag: raw_name.clone(),
            suggestion: suggest(&name),
        })?;
        if let Some(key) = dotted {
            // `--compilation-config.mode 3` / `-cc.cudagraph_mode=NONE`.
            let value = match inline {
                Some(v) => v,
                None => take_value(rest, &mut i, &raw_name)?,
            };
            if flag.effect == Effect::Models(Field::CompilationConfig) {
                args.compilation_config
                    .insert(key.to_string(), value.clone());
            }
            record(&mut args, flag, &format!("{}.{key}", flag.name), &value);
            continue;
        }
        let value = match (flag.kind, negated) {
            (_, true) => {
                if inline.is_some() {
                    return Err(ArgsError::BadValue {
                        flag: raw_name,
                        value: inline.unwrap_or_default(),
                        expected: "a flag without a value",
                    });
                }
                Some("false".to_string())
            }
            (Bool | Switch, false) => match inline {
                Some(v) => Some(parse_bool(&raw_name, &v)?.to_string()),
                None => Some("true".to_string()),
            },
            (Value, false) => Some(match inline {
                Some(v) => v,
                None => take_value(rest, &mut i, &raw_name)?,
            }),
            (OptValue, false) => match inline {
                Some(v) => Some(v),
                None if i < rest.len() && !rest[i].starts_with('-') => {
                    i += 1;
                    Some(rest[i - 1].clone())
                }
                None => Some(String::new()),
            },
            (Multi, false) => {
                let mut values: Vec<String> = inline.into_iter().collect();
                while i < rest.len() && (!rest[i].starts_with('-') || is_number(&rest[i])) {
                    values.push(rest[i].clone());
                    i += 1;
                }
                if values.is_empty() {
                    return Err(ArgsError::MissingValue { flag: raw_name });
                }
                Some(values.join(" "))
            }
        };
        apply(&mut args, flag, &raw_name, value)?;
    }
    Ok(args)
}

const FLAG_OPT_LEVEL: &Flag = &m("--optimization-level", &["-O"], Value, F::OptimizationLevel);

fn is_number(s: &str) -> bool {
    s.parse::<f64>().is_ok()
}

fn take_value(rest: &[String], i: &mut usize, flag: &str) -> Result<String, ArgsError> {
    match rest.get(*i) {
        // A value may start with '-' only when it is a number (`--seed -1`).
        Some(v) if !v.starts_with('-') || is_number(v) => {
            *i += 1;
            Ok(v.clone())
        }
        _ => Err(ArgsError::MissingValue {
            flag: flag.to_string(),
        }),
    }
}

/// `--compilation-config.mode` → (`--compilation-config`, `mode`); `-cc.x` likewise.
fn split_dotted(name: &str) -> (String, Option<&str>) {
    let body = name.trim_start_matches('-');
    match body.split_once('.') {
        Some((head, key)) if !head.is_empty() => {
            let dashes = &name[..name.len() - body.len()];
            (format!("{dashes}{head}"), Some(key))
        }
        _ => (name.to_string(), None),
    }
}

/// Drops what comes before vLLM's own flags: `NAME=VALUE` words, a Python interpreter
/// with `-m module` (or a script path), and `vllm serve`.
fn strip_launcher<'a>(argv: &'a [String], env: &mut BTreeMap<String, String>) -> &'a [String] {
    let mut i = 0;
    if argv.first().is_some_and(|w| w == "env") {
        i += 1;
    }
    while let Some(w) = argv.get(i) {
        match w.split_once('=') {
            Some((k, v))
                if !k.is_empty()
                    && !k.starts_with('-')
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                env.insert(k.to_string(), v.to_string());
                i += 1;
            }
            _ => break,
        }
    }
    let base = |w: &str| w.rsplit('/').next().unwrap_or(w).to_string();
    if let Some(w) = argv.get(i) {
        if base(w).starts_with("python") {
            i += 1;
            // Interpreter options before the module (`-u`, `-X dev`, `-B`).
            while let Some(opt) = argv.get(i) {
                match opt.as_str() {
                    "-m" => {
                        i += 2;
                        break;
                    }
                    "-X" | "-W" => i += 2,
                    o if o.starts_with('-') => i += 1,
                    // A script path (`.../bin/vllm`).
                    _ => {
                        i += 1;
                        break;
                    }
                }
            }
        } else if base(w) == "vllm" {
            i += 1;
        }
    }
    if argv.get(i).is_some_and(|w| w == "serve") {
        i += 1;
    }
    &argv[i.min(argv.len())..]
}

/// Finds a flag by any spelling; the bool says it was the `--no-` form.
pub fn lookup(name: &str) -> Option<(&'static Flag, bool)> {
    // vLLM accepts underscores for dashes in long flags.
    let norm = match name.strip_prefix("--") {
        Some(long) => format!("--{}", long.replace('_', "-")),
        None => name.to_string(),
    };
    let find = |n: &str| FLAGS.iter().find(|f| f.name == n || f.aliases.contains(&n));
    if let Some(f) = find(&norm) {
        return Some((f, false));
    }
    let positive = norm.strip_prefix("--no-")?;
    let f = find(&format!("--{positive}"))?;
    (f.kind == Bool).then_some((f, true))
}

/// The known flag closest to an unknown one.
pub fn suggest(name: &str) -> Option<String> {
    let norm = name.replace('_', "-");
    let mut best: Option<(f64, &str)> = None;
    for f in FLAGS {
        for cand in std::iter::once(&f.name).chain(f.aliases.iter()) {
            let score = strsim::jaro_winkler(&norm, cand);
            if best.map_or(true, |(s, _)| score > s) {
                best = Some((score, cand));
            }
        }
    }
    best.filter(|(s, _)| *s > 0.7).map(|(_, n)| n.to_string())
}

fn parse_bool(flag: &str, v: &str) -> Result<bool, ArgsError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ArgsError::BadValue {
            flag: flag.to_string(),
            value: v.to_string(),
            expected: "true or false",
        }),
    }
}

fn record(args: &mut VllmArgs, flag: &Flag, key: &str, value: &str) {
    args.given.insert(key.to_string(), value.to_string());
    if let Effect::NoHostRam(why) = flag.effect {
        args.ignored.push((flag.name.to_string(), why));
    }
    if let Some(v) = flag.removed_in {
        if !args.removed.iter().any(|(n, _)| n == flag.name) {
            args.removed.push((flag.name.to_string(), v));
        }
    }
}

fn apply(
    args: &mut VllmArgs,
    flag: &Flag,
    raw: &str,
    value: Option<String>,
) -> Result<(), ArgsError> {
    let value = value.unwrap_or_default();
    record(args, flag, flag.name, &value);
    let Effect::Models(field) = flag.effect else {
        return Ok(());
    };
    let bad = |expected: &'static str| ArgsError::BadValue {
        flag: raw.to_string(),
        value: value.clone(),
        expected,
    };
    let int = || -> Result<u64, ArgsError> {
        parse_int(&value).ok_or_else(|| bad("a non-negative integer"))
    };
    let float = || -> Result<f64, ArgsError> {
        value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| bad("a non-negative number"))
    };
    let boolean = || parse_bool(raw, &value);
    let text = || Some(value.clone());
    match field {
        F::Model => args.model = text(),
        F::MaxModelLen => {
            args.max_model_len =
                Some(parse_len(&value).ok_or_else(|| bad("a length such as 5120, 32k or 1M"))?)
        }
        F::MaxNumSeqs => args.max_num_seqs = Some(int()?),
        F::MaxNumBatchedTokens => {
            args.max_num_batched_tokens =
                Some(parse_len(&value).ok_or_else(|| bad("a token count"))?)
        }
        F::BlockSize => args.block_size = Some(int()?),
        F::Dtype => args.dtype = text(),
        F::KvCacheDtype => args.kv_cache_dtype = text(),
        F::GpuMemoryUtilization => args.gpu_memory_utilization = Some(float()?),
        F::KvCacheMemoryBytes => {
            args.kv_cache_memory_bytes =
                Some(crate::units::parse_bytes(&value).ok_or_else(|| bad("a byte size"))?)
        }
        F::NumGpuBlocksOverride => args.num_gpu_blocks_override = Some(int()?),
        F::SwapSpace => args.swap_space = Some(float()?),
        F::CpuOffloadGb => args.cpu_offload_gb = Some(float()?),
        F::KvOffloadingSize => args.kv_offloading_size = Some(float()?),
        F::KvOffloadingBackend => args.kv_offloading_backend = text(),
        F::KvTransferConfig => args.kv_transfer_config = text(),
        F::EnforceEager => args.enforce_eager = Some(boolean()?),
        F::EnableSleepMode => args.enable_sleep_mode = Some(boolean()?),
        F::SafetensorsLoadStrategy => args.safetensors_load_strategy = text(),
        F::SafetensorsPrefetchThreads => args.safetensors_prefetch_num_threads = Some(int()?),
        F::LoadFormat => args.load_format = text(),
        F::ModelLoaderExtraConfig => args.model_loader_extra_config = text(),
        F::MaxParallelLoadingWorkers => args.max_parallel_loading_workers = Some(int()?),
        F::MmProcessorCacheGb => {
            // `--disable-mm-preprocessor-cache` (0.10) is a switch meaning a 0 GiB cache.
            args.mm_processor_cache_gb = Some(if flag.kind == Switch {
                if boolean()? {
                    0.0
                } else {
                    4.0
                }
            } else {
                float()?
            })
        }
        F::MmProcessorCacheType => args.mm_processor_cache_type = text(),
        F::MmShmCacheMaxObjectSizeMb => args.mm_shm_cache_max_object_size_mb = Some(int()?),
        F::LimitMmPerPrompt => args.limit_mm_per_prompt = text(),
        F::LanguageModelOnly => args.language_model_only = Some(boolean()?),
        F::MmEncoderOnly => args.mm_encoder_only = Some(boolean()?),
        F::ApiServerCount => args.api_server_count = Some(int()?),
        F::TensorParallelSize => {
            args.tensor_parallel_size =
                Some(positive(int()?).ok_or_else(|| bad("a positive integer"))?)
        }
        F::PipelineParallelSize => {
            args.pipeline_parallel_size =
                Some(positive(int()?).ok_or_else(|| bad("a positive integer"))?)
        }
        F::DataParallelSize => {
            args.data_parallel_size =
                Some(positive(int()?).ok_or_else(|| bad("a positive integer"))?)
        }
        F::DataParallelSizeLocal => args.data_parallel_size_local = Some(int()?),
        F::DecodeContextParallelSize => {
            args.decode_context_parallel_size =
                Some(positive(int()?).ok_or_else(|| bad("a positive integer"))?)
        }
        F::Headless => args.headless = boolean()?,
        F::EnableLora => args.enable_lora = Some(boolean()?),
        F::MaxLoras => args.max_loras = Some(int()?),
        F::MaxCpuLoras => args.max_cpu_loras = Some(int()?),
        F::MaxLoraRank => args.max_lora_rank = Some(int()?),
        F::SpeculativeConfig => {
            serde_json::from_str::<serde_json::Value>(&value).map_err(|_| bad("a JSON object"))?;
            args.speculative_config = text()
        }
        F::SpecMethod => args.spec_method = text(),
        F::SpecModel => args.spec_model = text(),
        F::SpecTokens => args.spec_tokens = Some(int()?),
        F::EnablePrefixCaching => args.enable_prefix_caching = Some(boolean()?),
        F::PrefixCachingHashAlgo => args.prefix_caching_hash_algo = text(),
        F::MaxLogprobs => args.max_logprobs = Some(int()?),
        F::SkipTokenizerInit => args.skip_tokenizer_init = Some(boolean()?),
        F::EnablePromptEmbeds => args.enable_prompt_embeds = Some(boolean()?),
        F::CompilationConfig => {
            if let Ok(level) = value.parse::<u64>() {
                args.compilation_config
                    .insert("mode".into(), level.to_string());
            } else {
                let json: serde_json::Value =
                    serde_json::from_str(&value).map_err(|_| bad("a JSON object or a level"))?;
                let obj = json
                    .as_object()
                    .ok_or_else(|| bad("a JSON object or a level"))?;
                for (k, v) in obj {
                    let v = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    args.compilation_config.insert(k.clone(), v);
                }
            }
        }
        F::CudagraphCaptureSizes => {
            let sizes: Option<Vec<u64>> = value
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_matches(['[', ']']).parse().ok())
                .collect();
            args.cudagraph_capture_sizes = Some(sizes.ok_or_else(|| bad("a list of integers"))?);
        }
        F::MaxCudagraphCaptureSize => args.max_cudagraph_capture_size = Some(int()?),
        F::OptimizationLevel => args.optimization_level = Some(int()?),
        F::AttentionBackend => args.attention_backend = text(),
        F::DistributedExecutorBackend => args.distributed_executor_backend = text(),
        F::AsyncScheduling => args.async_scheduling = Some(boolean()?),
        F::EnableChunkedPrefill => args.enable_chunked_prefill = Some(boolean()?),
        F::EnableShmTensorArena => args.enable_shm_tensor_arena = Some(boolean()?),
        F::Quantization => args.quantization = text(),
        F::ConfigFile => args.config_file = text(),
    }
    Ok(())
}

fn positive(v: u64) -> Option<u64> {
    (v > 0).then_some(v)
}

fn parse_int(s: &str) -> Option<u64> {
    s.trim().replace('_', "").parse().ok()
}

/// vLLM's human-readable lengths: `5120`, `32k`, `32K` (×1024 for K, ×1000 for k), `1m`, `1M`.
pub fn parse_len(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(n) = parse_int(s) {
        return Some(n);
    }
    let (num, suffix) = s.split_at(s.len().checked_sub(1)?);
    let mult: u64 = match suffix {
        "k" => 1000,
        "K" => 1024,
        "m" => 1_000_000,
        "M" => 1 << 20,
        "g" => 1_000_000_000,
        "G" => 1 << 30,
        _ => return None,
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * mult as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_command_line(s).unwrap()
    }

    #[test]
    fn parses_flags_in_every_spelling() {
        let a = parse(&words(
            "--max-model-len 5120 --max_num_seqs=256 -tp 2 --enforce-eager --no-enable-prefix-caching -O3 -cc.cudagraph_mode=NONE --max-model-len=32K",
        ))
        .unwrap();
        assert_eq!(a.max_model_len, Some(32_768));
        assert_eq!(a.max_num_seqs, Some(256));
        assert_eq!(a.tensor_parallel_size, Some(2));
        assert_eq!(a.enforce_eager, Some(true));
        assert_eq!(a.enable_prefix_caching, Some(false));
        assert_eq!(a.optimization_level, Some(3));
        assert_eq!(
            a.compilation_config
                .get("cudagraph_mode")
                .map(String::as_str),
            Some("NONE")
        );
    }

    #[test]
    fn parses_whole_command_lines() {
        let a = parse_str("VLLM_CPU_KVCACHE_SPACE=1 /opt/venv/bin/python3 -m vllm.entrypoints.openai.api_server --model /m --max-model-len 5120 --port 18001").unwrap();
        assert_eq!(a.model.as_deref(), Some("/m"));
        assert_eq!(
            a.env.get("VLLM_CPU_KVCACHE_SPACE").map(String::as_str),
            Some("1")
        );
        let b = parse_str("vllm serve Qwen/Qwen3-8B --max-model-len 5120").unwrap();
        assert_eq!(b.model.as_deref(), Some("Qwen/Qwen3-8B"));
        let c =
            parse_str("/usr/bin/python3 /usr/local/bin/vllm serve Qwen/Qwen3-8B -tp=4").unwrap();
        assert_eq!(c.model.as_deref(), Some("Qwen/Qwen3-8B"));
        assert_eq!(c.tensor_parallel_size, Some(4));
        let d = parse_str("Qwen/Qwen3-8B --cudagraph-capture-sizes 1 2 4 --dtype bf16").unwrap();
        assert_eq!(d.cudagraph_capture_sizes, Some(vec![1, 2, 4]));
        assert_eq!(d.dtype.as_deref(), Some("bf16"));
    }

    #[test]
    fn unknown_flags_name_the_closest() {
        let e = parse(&words("--max-model-length 5120")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown vLLM flag --max-model-length (did you mean --max-model-len?)"
        );
        assert!(matches!(
            parse(&words("--max-num-seqs")),
            Err(ArgsError::MissingValue { .. })
        ));
        assert!(matches!(
            parse(&words("--max-num-seqs lots")),
            Err(ArgsError::BadValue { .. })
        ));
        assert!(matches!(
            parse(&words("-tp 0")),
            Err(ArgsError::BadValue { .. })
        ));
        assert!(matches!(parse_str("--model 'x"), Err(ArgsError::Quotes)));
    }

    #[test]
    fn removed_flags_are_remembered() {
        let a = parse(&words("--swap-space 4")).unwrap();
        assert_eq!(a.swap_space, Some(4.0));
        assert_eq!(
            a.removed,
            vec![("--swap-space".to_string(), Version::V0_32)]
        );
    }

    #[test]
    fn ignored_flags_say_why() {
        let a = parse(&words("--host 0.0.0.0 --port 8000")).unwrap();
        assert_eq!(a.ignored.len(), 2);
        assert!(a.ignored[0].1.contains("HTTP"));
    }

    #[test]
    fn flag_names_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for f in FLAGS {
            for n in std::iter::once(&f.name).chain(f.aliases.iter()) {
                assert!(seen.insert(*n), "{n} listed twice");
            }
        }
    }
}
