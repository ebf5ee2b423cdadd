//! From what the user set to what vLLM will use: defaults per version, device and GPU
//! (`vllm/engine/arg_utils.py`, `vllm/config/*.py`, `vllm/platforms/{cuda,cpu}.py`), and the
//! environment variables that change host RAM.

use std::collections::BTreeMap;

use serde::Serialize;

use super::args::VllmArgs;
use super::kv_transfer::{self, KvTransfer};
use super::limits;
use super::offload::{self, WeightOffload};
use super::releases::flag_added_in;
use super::{cuda_graphs, Version};
use crate::footprint::Device;
use crate::gpu::Gpu;
use crate::hf::Dtype;
use crate::model::Model;
use crate::units::Checked;

const GIB: f64 = (1u64 << 30) as f64;

/// How the model weights are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadStrategy {
    Lazy,
    /// No strategy given (0.20+): lazy, but on NFS/Lustre a checkpoint that fits in 90% of
    /// the available RAM is first prefetched into the page cache.
    Auto,
    Eager,
    Prefetch,
    Torchao,
    /// `enable_multithread_load` in `--model-loader-extra-config`.
    Multithread,
    /// Not safetensors (`--load-format` pt, gguf, runai_streamer…): not analysed.
    Other,
}

/// Everything the formulas need, defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    pub version: Version,
    pub device: Device,
    pub gpu: Option<Gpu>,
    pub max_model_len: u64,
    pub max_num_seqs: u64,
    pub max_num_batched_tokens: u64,
    pub block_size: u64,
    pub dtype: Dtype,
    pub kv_cache_dtype: Dtype,
    pub gpu_memory_utilization: f64,
    pub tensor_parallel_size: u64,
    pub pipeline_parallel_size: u64,
    pub data_parallel_size: u64,
    pub data_parallel_size_local: u64,
    pub decode_context_parallel_size: u64,
    pub api_server_count: u64,
    pub enforce_eager: bool,
    pub torch_compile: bool,
    pub cudagraph_mode: String,
    pub cudagraph_capture_sizes: Vec<u64>,
    pub num_speculative_tokens: u64,
    pub speculative_method: Option<String>,
    pub model_runner_v2: bool,
    pub pin_memory: bool,
    /// The model runs in the EngineCore process (uniproc executor).
    pub runner_in_engine_core: bool,
    /// Python children start with fork (share pages copy-on-write) rather than spawn.
    pub fork: bool,
    pub load_strategy: LoadStrategy,
    pub load_threads: u64,
    pub cpu_offload_bytes: u64,
    pub kv_offloading_bytes: u64,
    pub kv_offloading_backend: String,
    /// `num_cpu_blocks` of an `OffloadingConnector` in `--kv-transfer-config`.
    /// KV transfer and offload connectors (`--kv-transfer-config`, `--kv-offloading-size`).
    pub kv_transfer: KvTransfer,
    /// The weight offloader (`--cpu-offload-gb`, `--offload-group-size`).
    pub weight_offload: WeightOffload,
    pub enable_prompt_embeds: bool,
    pub sleep_mode: bool,
    /// `--sleep-mode-offload-cudagraph`: sleep also backs up the CUDA graph pool (0.32+).
    pub sleep_offload_cudagraph: bool,
    pub enable_lora: bool,
    pub max_loras: u64,
    pub max_cpu_loras: u64,
    pub max_lora_rank: u64,
    pub multimodal: bool,
    pub mm_processor_cache_bytes: u64,
    pub mm_processor_cache_type: String,
    pub enable_prefix_caching: bool,
    pub max_logprobs: u64,
    pub skip_tokenizer_init: bool,
    pub flashinfer: bool,
    pub mq_broadcast_chunk_bytes: u64,
    pub mq_response_chunk_bytes: u64,
    pub xgrammar_cache_bytes: u64,
    pub shm_tensor_arena: bool,
    /// CPU backend: KV-cache bytes per worker, when fixed by the user.
    pub cpu_kv_cache_bytes: Option<u64>,
    /// KV blocks per engine (GPU: estimated from memory; CPU: from the KV budget).
    pub num_kv_blocks: u64,
    pub num_kv_blocks_exact: bool,
    /// Notes on removed flags and surprising defaults.
    pub notes: Vec<String>,
}

impl Resolved {
    /// TP × PP (`u64::MAX`, too large, if the product does not fit; [`resolve`] refuses that).
    pub fn world_size(&self) -> u64 {
        (Checked::new(self.tensor_parallel_size) * self.pipeline_parallel_size).raw()
    }

    /// KV blocks per request row (`max_num_blocks_per_req`; `u64::MAX` when too large).
    pub fn blocks_per_request(&self) -> u64 {
        let per = Checked::new(self.max_model_len)
            .div_ceil(Checked::new(self.block_size) * self.decode_context_parallel_size)
            .max(Checked::new(1) + self.num_speculative_tokens);
        // From 0.21 rows are padded for TRTLLM attention (block_table.py).
        let padding = self.version.release().block_table_padding.value;
        padding.pad(per.raw(), self.block_size)
    }

    /// The resolved values, by vLLM's own names, for reports.
    pub fn as_map(&self) -> BTreeMap<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => {
                map.into_iter().filter(|(k, _)| k != "notes").collect()
            }
            _ => BTreeMap::new(),
        }
    }
}

/// Why a configuration cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}")]
    Invalid(String),
}

/// Inputs to [`resolve`] besides the command line.
pub struct Context<'a> {
    pub version: Version,
    pub device: Device,
    pub gpu: &'a Gpu,
    /// Environment variables vLLM would see.
    pub env: &'a BTreeMap<String, String>,
    /// `MemTotal` of the CPU worker's NUMA node (CPU backend, automatic KV size).
    pub host_memory_bytes: Option<u64>,
}

/// Applies vLLM's defaults.
pub fn resolve(model: &Model, args: &VllmArgs, cx: &Context) -> Result<Resolved, ResolveError> {
    let cfg = &model.config;
    let version = cx.version;
    let rel = version.release();
    let device = cx.device;
    let env = |k: &str| cx.env.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut notes = Vec::new();

    for (flag, removed_in) in &args.removed {
        if version >= *removed_in {
            notes.push(format!(
                "{flag} was removed in vLLM {removed_in}: vLLM {version} refuses it; ignored here"
            ));
        }
    }
    for flag in flags_newer_than(version, args) {
        notes.push(flag);
    }
    if let Some(gb) = args.swap_space {
        let refused = args
            .removed
            .iter()
            .any(|(flag, gone)| flag == "--swap-space" && version >= *gone);
        if !refused {
            notes.push(format!(
                "--swap-space {gb}: V1 engines allocate no CPU swap (num_cpu_blocks = 0); it only checks the size against total RAM"
            ));
        }
    }
    if args.config_file.is_some() {
        notes
            .push("--config: the YAML file is not read; pass its flags on the command line".into());
    }

    let tp = args.tensor_parallel_size.unwrap_or(1);
    let pp = args.pipeline_parallel_size.unwrap_or(1);
    let dp = args.data_parallel_size.unwrap_or(1);
    let dp_local = args.data_parallel_size_local.unwrap_or(dp).max(1);
    let dcp = args.decode_context_parallel_size.unwrap_or(1);
    let world = limits::check_parallel(tp, pp, dp, args.data_parallel_size_local)?;
    if cfg.num_attention_heads % tp != 0 {
        return Err(ResolveError::Invalid(format!(
            "--tensor-parallel-size {tp} does not divide the model's {} attention heads",
            cfg.num_attention_heads
        )));
    }
    limits::check_headless(version, args)?;
    let api_server_count = if args.headless {
        0
    } else {
        args.api_server_count
            .unwrap_or_else(|| default_api_servers(version, args, dp, dp_local))
    };

    let max_model_len = limits::max_model_len(args.max_model_len, cfg.max_model_len, cx.env)?;
    if max_model_len > cfg.max_model_len {
        notes.push(format!(
            "--max-model-len {max_model_len} exceeds the model's {}: allowed by VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, positions past it give NaN or out-of-bounds errors",
            cfg.max_model_len
        ));
    }

    // Batch defaults: `get_batch_defaults` / `_set_default_args` in arg_utils.py.
    let (default_r, default_t) = match device {
        // Too large stays too large (u64::MAX), refused with the buffers it sizes.
        Device::Cpu => {
            let (r, t) = rel.batch_defaults.value.cpu_per_rank;
            (
                (Checked::new(r) * world).raw(),
                (Checked::new(t) * world).raw(),
            )
        }
        Device::Cuda => rel.batch_defaults.value.cuda(cx.gpu),
    };
    let chunked = args.enable_chunked_prefill.unwrap_or(true);
    let max_num_batched_tokens = match args.max_num_batched_tokens {
        Some(t) => t,
        None if !chunked => default_t.max(max_model_len),
        None => default_t,
    };
    let max_num_seqs = args
        .max_num_seqs
        .unwrap_or(default_r.min(max_num_batched_tokens));
    if max_num_seqs == 0 || max_num_batched_tokens == 0 {
        return Err(ResolveError::Invalid(
            "--max-num-seqs and --max-num-batched-tokens must be > 0".into(),
        ));
    }

    let cpu_mla = match (device, cfg.mla.is_some()) {
        (Device::Cpu, true) => Some(rel.cpu_mla_block_size.value.ok_or_else(|| {
            ResolveError::Invalid(format!(
                "vLLM {version} does not run MLA models on the CPU backend (CPU MLA arrived in 0.28)"
            ))
        })?),
        _ => None,
    };
    let block_size = args
        .block_size
        .unwrap_or(match (device, cfg.mla.is_some()) {
            (Device::Cuda, true) => rel.cuda_mla_block_size.value,
            (Device::Cuda, false) => rel.cuda_block_size.value,
            (Device::Cpu, true) => cpu_mla.unwrap_or(16),
            (Device::Cpu, false) => rel.cpu_block_size.value,
        });
    if block_size == 0 {
        return Err(ResolveError::Invalid("--block-size must be > 0".into()));
    }

    let dtype = match args.dtype.as_deref().filter(|d| *d != "auto") {
        Some(d) => Dtype::parse(d).ok_or_else(|| {
            ResolveError::Invalid(format!(
                "--dtype {d}: expected auto, bfloat16, float16 or float32"
            ))
        })?,
        // vLLM computes in 16 bits when the checkpoint says float32 or a 4/8-bit format.
        None => match cfg.dtype {
            Dtype::F16 => Dtype::F16,
            Dtype::F32 if device == Device::Cpu => Dtype::F32,
            _ => Dtype::Bf16,
        },
    };
    let kv_cache_dtype = match args.kv_cache_dtype.as_deref().filter(|d| *d != "auto") {
        Some(d) => Dtype::parse(d).ok_or_else(|| {
            ResolveError::Invalid(format!(
                "--kv-cache-dtype {d}: expected auto, fp8, fp8_e4m3, fp8_e5m2 or bfloat16"
            ))
        })?,
        None => dtype,
    };
    let gpu_memory_utilization = args
        .gpu_memory_utilization
        .unwrap_or(rel.gpu_memory_utilization.value);
    if !(0.0..=1.0).contains(&gpu_memory_utilization) || gpu_memory_utilization == 0.0 {
        return Err(ResolveError::Invalid(format!(
            "--gpu-memory-utilization {gpu_memory_utilization} must be in (0, 1]"
        )));
    }

    // Compilation and CUDA graphs.
    let level_zero = args.optimization_level == Some(0)
        || args
            .compilation_config
            .get("mode")
            .or_else(|| args.compilation_config.get("level"))
            .is_some_and(|m| m == "0" || m.eq_ignore_ascii_case("none"));
    let enforce_eager = args.enforce_eager.unwrap_or(false);
    let torch_compile = !enforce_eager && !level_zero && env("VLLM_CPU_CI_ENV") != Some("1");
    let mut cudagraph_mode = args
        .compilation_config
        .get("cudagraph_mode")
        .map(|m| m.to_ascii_uppercase())
        .unwrap_or_else(|| rel.cudagraph_mode.value.into());
    if device == Device::Cpu || enforce_eager || level_zero {
        cudagraph_mode = "NONE".into();
    }
    let spec_json = args
        .speculative_config
        .as_deref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
    let num_speculative_tokens = args.spec_tokens.unwrap_or_else(|| {
        spec_json
            .as_ref()
            .and_then(|j| j.get("num_speculative_tokens"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    });
    let speculative_method = args.spec_method.clone().or_else(|| {
        spec_json
            .as_ref()
            .and_then(|j| j.get("method"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    });
    let cudagraph_capture_sizes = if cudagraph_mode == "NONE" {
        Vec::new()
    } else {
        cuda_graphs::capture_sizes(
            version,
            args,
            max_num_seqs,
            max_num_batched_tokens,
            num_speculative_tokens,
            cuda_graphs::compute_family(&cx.gpu.name) == Some(100),
        )?
    };

    let runner = rel.cuda_runner.value;
    let model_runner_v2 = device == Device::Cuda
        && runner.has_v2()
        && match env("VLLM_USE_V2_MODEL_RUNNER") {
            Some(v) => v == "1" || v.eq_ignore_ascii_case("true"),
            None => {
                let quantized = cfg.quantization.is_some() || args.quantization.is_some();
                let falls_back = rel.v2_fallback.is_some_and(|f| {
                    f.value.falls_back(
                        speculative_method.as_deref(),
                        args.enable_prompt_embeds.unwrap_or(false),
                    )
                });
                runner.prefers_v2(&cfg.architecture, cfg.num_experts > 0, quantized) && !falls_back
            }
        };

    // Processes.
    let multiprocessing = env("VLLM_ENABLE_V1_MULTIPROCESSING") != Some("0");
    let runner_in_engine_core = match device {
        // The CPU platform turns `uni` into `mp` so OpenMP can be set per worker.
        Device::Cpu => !multiprocessing,
        Device::Cuda => {
            // From 0.17 the `mp` executor also runs for DP > 1 (TP × PP × DP > 1).
            let ranks = if rel.executor_mp_counts_dp.value {
                (Checked::new(world) * dp).raw()
            } else {
                world
            };
            ranks == 1
                && !matches!(
                    args.distributed_executor_backend.as_deref(),
                    Some("mp" | "ray")
                )
        }
    };
    let fork = match device {
        Device::Cpu => false,
        Device::Cuda => env("VLLM_WORKER_MULTIPROC_METHOD").unwrap_or("fork") == "fork",
    };

    // Weights.
    let load_format = args.load_format.as_deref().unwrap_or("auto");
    let extra = args
        .model_loader_extra_config
        .as_deref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
    let multithread = extra
        .as_ref()
        .and_then(|e| e.get("enable_multithread_load"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let load_threads = extra
        .as_ref()
        .and_then(|e| e.get("num_threads"))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(rel.weight_load_threads.value);
    let load_strategy = if !matches!(load_format, "auto" | "safetensors") {
        notes.push(format!(
            "--load-format {load_format}: host RAM while loading is not analysed"
        ));
        LoadStrategy::Other
    } else if multithread {
        LoadStrategy::Multithread
    } else {
        let known = rel.load_strategies.value;
        match args.safetensors_load_strategy.as_deref() {
            None if rel.auto_prefetch.value => LoadStrategy::Auto,
            None | Some("lazy") => LoadStrategy::Lazy,
            Some("eager") => LoadStrategy::Eager,
            Some("prefetch") if known.contains(&"prefetch") => LoadStrategy::Prefetch,
            Some("torchao") if known.contains(&"torchao") => LoadStrategy::Torchao,
            Some(other) => {
                return Err(ResolveError::Invalid(format!(
                    "--safetensors-load-strategy {other} is not known to vLLM {version}"
                )))
            }
        }
    };

    let cpu_offload_bytes = limits::gib_bytes("--cpu-offload-gb", args.cpu_offload_gb)?;
    let kv_offloading_bytes = limits::gib_bytes("--kv-offloading-size", args.kv_offloading_size)?;
    let kv_transfer = kv_transfer::resolve(
        version,
        &kv_transfer::Request {
            transfer_config: args.kv_transfer_config.as_deref(),
            offloading_bytes: kv_offloading_bytes,
            offloading_backend: args.kv_offloading_backend.as_deref(),
            ranks: world,
            env: cx.env,
        },
        &mut notes,
    )?;
    let weight_offload = offload::resolve(version, args, cpu_offload_bytes, &mut notes)?;
    let sleep_mode = args.enable_sleep_mode.unwrap_or(false);
    if sleep_mode && device == Device::Cpu {
        notes.push("--enable-sleep-mode is ignored by the CPU backend".into());
    }

    let enable_lora = args.enable_lora.unwrap_or(false);
    let max_loras = args.max_loras.unwrap_or(1);
    let max_cpu_loras = args.max_cpu_loras.unwrap_or(max_loras).max(max_loras);
    let max_lora_rank = args.max_lora_rank.unwrap_or(16);
    if enable_lora {
        limits::check_lora(max_loras, args.max_cpu_loras, max_lora_rank)?;
    }

    let mm_disabled_by_limit = args.limit_mm_per_prompt.as_deref().is_some_and(|s| {
        serde_json::from_str::<serde_json::Value>(s)
            .ok()
            .and_then(|j| {
                j.as_object()
                    .map(|o| !o.is_empty() && o.values().all(|v| v.as_u64() == Some(0)))
            })
            .unwrap_or(false)
    });
    let multimodal =
        cfg.multimodal && !args.language_model_only.unwrap_or(false) && !mm_disabled_by_limit;
    let mm_processor_cache_bytes = limits::gib_bytes(
        "--mm-processor-cache-gb",
        Some(args.mm_processor_cache_gb.unwrap_or(4.0)),
    )?;
    let mm_processor_cache_type = args
        .mm_processor_cache_type
        .clone()
        .unwrap_or_else(|| "lru".into());

    let flashinfer = device == Device::Cuda
        && (args
            .attention_backend
            .as_deref()
            .or(env("VLLM_ATTENTION_BACKEND"))
            .is_some_and(|b| b.eq_ignore_ascii_case("FLASHINFER"))
            || cx.gpu.name.starts_with("B200"));

    let mq_broadcast_chunk_bytes = limits::env_mib(cx.env, "VLLM_MQ_MAX_CHUNK_BYTES_MB", 16)?;
    let mq_response_chunk_bytes = rel.mq_response_chunk_bytes.value;
    let xgrammar_cache_bytes = limits::env_mib(cx.env, "VLLM_XGRAMMAR_CACHE_MB", 512)?;

    // CPU KV cache: VLLM_CPU_KVCACHE_SPACE (whole GiB), else --kv-cache-memory-bytes, else auto.
    let cpu_kv_cache_bytes = match device {
        Device::Cuda => None,
        Device::Cpu => match env("VLLM_CPU_KVCACHE_SPACE") {
            Some(v) => {
                let gib: u64 = v.trim().parse().map_err(|_| {
                    ResolveError::Invalid(format!(
                        "VLLM_CPU_KVCACHE_SPACE={v}: vLLM parses it with int(), so it must be a whole number of GiB"
                    ))
                })?;
                if gib == 0 {
                    return Err(ResolveError::Invalid(
                        "VLLM_CPU_KVCACHE_SPACE=0 asks for no KV cache (it is not \"automatic\"); vLLM fails with \"No available memory for the cache blocks\"".into(),
                    ));
                }
                Some(gib.checked_mul(1 << 30).ok_or_else(|| {
                    ResolveError::Invalid(format!(
                        "VLLM_CPU_KVCACHE_SPACE={v} GiB needs more than 16 EiB, more than a 64-bit machine can address"
                    ))
                })?)
            }
            None => args.kv_cache_memory_bytes,
        },
    };

    let mut resolved = Resolved {
        version,
        device,
        gpu: (device == Device::Cuda).then(|| cx.gpu.clone()),
        max_model_len,
        max_num_seqs,
        max_num_batched_tokens,
        block_size,
        dtype,
        kv_cache_dtype,
        gpu_memory_utilization,
        tensor_parallel_size: tp,
        pipeline_parallel_size: pp,
        data_parallel_size: dp,
        data_parallel_size_local: dp_local,
        decode_context_parallel_size: dcp,
        api_server_count,
        enforce_eager,
        torch_compile,
        cudagraph_mode,
        cudagraph_capture_sizes,
        num_speculative_tokens,
        speculative_method,
        model_runner_v2,
        pin_memory: device == Device::Cuda,
        runner_in_engine_core,
        fork,
        load_strategy,
        load_threads,
        cpu_offload_bytes,
        kv_offloading_bytes,
        kv_offloading_backend: args
            .kv_offloading_backend
            .clone()
            .unwrap_or_else(|| "native".into()),
        kv_transfer,
        weight_offload,
        enable_prompt_embeds: args.enable_prompt_embeds.unwrap_or(false),
        sleep_mode: sleep_mode && device == Device::Cuda,
        sleep_offload_cudagraph: args.sleep_mode_offload_cudagraph.unwrap_or(false),
        enable_lora,
        max_loras,
        max_cpu_loras,
        max_lora_rank,
        multimodal,
        mm_processor_cache_bytes,
        mm_processor_cache_type,
        enable_prefix_caching: args.enable_prefix_caching.unwrap_or(true),
        max_logprobs: args.max_logprobs.unwrap_or(20),
        skip_tokenizer_init: args.skip_tokenizer_init.unwrap_or(false),
        flashinfer,
        mq_broadcast_chunk_bytes,
        mq_response_chunk_bytes,
        xgrammar_cache_bytes,
        shm_tensor_arena: args.enable_shm_tensor_arena.unwrap_or(false),
        cpu_kv_cache_bytes,
        num_kv_blocks: 0,
        num_kv_blocks_exact: false,
        notes,
    };
    let (blocks, exact) = kv_blocks(model, &resolved, args.num_gpu_blocks_override, cx.gpu);
    resolved.num_kv_blocks = blocks;
    resolved.num_kv_blocks_exact = exact;
    if device == Device::Cuda && max_num_seqs >= 1024 && args.max_num_seqs.is_none() {
        resolved.notes.push(format!(
            "max_num_seqs defaults to {max_num_seqs} on {}: buffers that scale with it are sized for {max_num_seqs} sequences",
            cx.gpu.name
        ));
    }
    Ok(resolved)
}

/// Notes for flags the command line gives that `version` does not have yet: vLLM refuses
/// them ("unrecognized arguments"), ramscope still applies them.
fn flags_newer_than(version: Version, args: &VllmArgs) -> Vec<String> {
    let names: std::collections::BTreeSet<&str> = args
        .given
        .keys()
        .map(|k| k.split('.').next().unwrap_or(k))
        .collect();
    names
        .into_iter()
        .filter_map(|flag| {
            let added = flag_added_in(flag).filter(|a| version < *a)?;
            Some(format!(
                "{flag} first appeared in vLLM {added}: vLLM {version} refuses it"
            ))
        })
        .collect()
}

/// `--api-server-count` when not given (`vllm/entrypoints/cli/serve.py`): 1 up to 0.14; from
/// 0.15 one per DP rank with internal load balancing, the local ranks with hybrid balancing,
/// and 1 with external balancing.
fn default_api_servers(version: Version, args: &VllmArgs, dp: u64, dp_local: u64) -> u64 {
    if !version.release().api_servers_default_dp.value {
        return 1;
    }
    let on = |flag: &str| args.given.get(flag).is_some_and(|v| v != "false");
    let external = on("--data-parallel-external-lb")
        || on("--data-parallel-multi-port-external-lb")
        || args.given.contains_key("--data-parallel-rank");
    let hybrid =
        on("--data-parallel-hybrid-lb") || args.given.contains_key("--data-parallel-start-rank");
    if external {
        1
    } else if hybrid {
        dp_local
    } else {
        dp
    }
}

/// KV blocks per engine. GPU: what fits in `u × memory` after weights and activations (an
/// estimate unless `--num-gpu-blocks-override`); CPU: the fixed KV budget over the block size.
fn kv_blocks(model: &Model, r: &Resolved, override_blocks: Option<u64>, gpu: &Gpu) -> (u64, bool) {
    if let Some(n) = override_blocks {
        return (n, true);
    }
    let cfg = &model.config;
    // Too large per token means no block fits: 0 blocks (vLLM would fail to start).
    let per_token = Checked::from(cfg.kv_bytes_per_token(r.kv_cache_dtype.bytes()));
    let per_token_rank = (per_token.raw() as f64 / r.world_size() as f64).max(1.0);
    let per_block = per_token_rank * r.block_size as f64;
    match r.device {
        Device::Cpu => match r.cpu_kv_cache_bytes {
            Some(bytes) => {
                // `get_kv_cache_config_from_groups`: one page per layer per block, for all
                // layers of the worker.
                let per_block_worker = per_token / r.world_size().max(1) * r.block_size;
                ((Checked::new(bytes) / per_block_worker.max(1)).raw(), true)
            }
            None => (0, false),
        },
        Device::Cuda => {
            let weights_rank = model.weights.total_bytes as f64 / r.world_size() as f64;
            // Profiled activation peak: the larger of the MLP intermediate of a full batch
            // and the sampler's logits (R × V fp32), plus ~0.5 GiB non-torch memory [est].
            // In floats: only compared with the GPU's memory, so overflow cannot matter.
            let act = (r.max_num_batched_tokens as f64
                * 4.0
                * cfg.intermediate_size.max(cfg.moe_intermediate_size) as f64)
                .max(r.max_num_seqs as f64 * cfg.vocab_size as f64 * 4.0);
            let free =
                gpu.memory_bytes as f64 * r.gpu_memory_utilization - weights_rank - act - 0.5 * GIB;
            // `as` saturates; free ≤ the GPU's memory, so the count is small anyway.
            ((free.max(0.0) / per_block) as u64, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::vllm::args::parse_str;

    fn ctx<'a>(
        version: Version,
        device: Device,
        gpu: &'a Gpu,
        env: &'a BTreeMap<String, String>,
    ) -> Context<'a> {
        Context {
            version,
            device,
            gpu,
            env,
            host_memory_bytes: None,
        }
    }

    #[test]
    fn h100_defaults_are_1024_and_8192() {
        let gpu = Gpu::default_gpu();
        let env = BTreeMap::new();
        let r = resolve(
            &Model::default_model(),
            &parse_str("--max-model-len 5120").unwrap(),
            &ctx(Version::V0_11, Device::Cuda, &gpu, &env),
        )
        .unwrap();
        assert_eq!(
            (r.max_num_seqs, r.max_num_batched_tokens, r.block_size),
            (1024, 8192, 16)
        );
        assert_eq!(r.blocks_per_request(), 320);
        assert_eq!(r.world_size(), 1);
        assert_eq!(r.cudagraph_capture_sizes.len(), 67);
        assert!(r.runner_in_engine_core);
        let l4 = Gpu::parse("l4").unwrap();
        let r = resolve(
            &Model::default_model(),
            &VllmArgs::default(),
            &ctx(Version::V0_11, Device::Cuda, &l4, &env),
        )
        .unwrap();
        assert_eq!((r.max_num_seqs, r.max_num_batched_tokens), (256, 2048));
        assert_eq!(r.max_model_len, 40960);
    }

    #[test]
    fn v012_captures_51_sizes() {
        let gpu = Gpu::default_gpu();
        let env = BTreeMap::new();
        let r = resolve(
            &Model::default_model(),
            &VllmArgs::default(),
            &ctx(Version::V0_12, Device::Cuda, &gpu, &env),
        )
        .unwrap();
        assert_eq!(r.cudagraph_capture_sizes.len(), 51);
    }

    #[test]
    fn cpu_kv_space_rules() {
        let gpu = Gpu::default_gpu();
        let mut env = BTreeMap::new();
        env.insert("VLLM_CPU_KVCACHE_SPACE".to_string(), "1".to_string());
        let r = resolve(
            &Model::default_model(),
            &parse_str("--max-model-len 5120").unwrap(),
            &ctx(Version::V0_32, Device::Cpu, &gpu, &env),
        )
        .unwrap();
        assert_eq!(r.cpu_kv_cache_bytes, Some(1 << 30));
        assert_eq!(
            (r.max_num_seqs, r.max_num_batched_tokens, r.block_size),
            (128, 2048, 128)
        );
        assert!(!r.runner_in_engine_core && !r.fork && !r.pin_memory);
        env.insert("VLLM_CPU_KVCACHE_SPACE".to_string(), "0".to_string());
        assert!(resolve(
            &Model::default_model(),
            &VllmArgs::default(),
            &ctx(Version::V0_32, Device::Cpu, &gpu, &env)
        )
        .is_err());
        env.insert("VLLM_CPU_KVCACHE_SPACE".to_string(), "1.5".to_string());
        assert!(resolve(
            &Model::default_model(),
            &VllmArgs::default(),
            &ctx(Version::V0_32, Device::Cpu, &gpu, &env)
        )
        .is_err());
    }

    #[test]
    fn removed_flags_become_notes() {
        let gpu = Gpu::default_gpu();
        let env = BTreeMap::new();
        let a = parse_str("--swap-space 4").unwrap();
        let r = resolve(
            &Model::default_model(),
            &a,
            &ctx(Version::V0_33, Device::Cuda, &gpu, &env),
        )
        .unwrap();
        assert!(
            r.notes.iter().any(|n| n.contains("removed in vLLM 0.18")),
            "{:?}",
            r.notes
        );
        // 0.17 is the last release that still accepts it (and ignores it under V1).
        for (v, removed) in [(Version::V0_17, false), (Version::V0_18, true)] {
            let r = resolve(
                &Model::default_model(),
                &a,
                &ctx(v, Device::Cuda, &gpu, &env),
            )
            .unwrap();
            let said = |s: &str| r.notes.iter().any(|n| n.contains(s));
            assert_eq!(said("removed in vLLM 0.18"), removed, "{v}: {:?}", r.notes);
            assert_eq!(said("num_cpu_blocks = 0"), !removed, "{v}: {:?}", r.notes);
        }
    }

    #[test]
    fn flags_newer_than_the_release_are_noted() {
        let gpu = Gpu::default_gpu();
        let env = BTreeMap::new();
        let a = parse_str("--language-model-only --max-model-len 4096").unwrap();
        let notes = |v| {
            resolve(
                &Model::default_model(),
                &a,
                &ctx(v, Device::Cuda, &gpu, &env),
            )
            .unwrap()
            .notes
        };
        let old = notes(Version::V0_16);
        assert!(
            old.iter()
                .any(|n| n
                    == "--language-model-only first appeared in vLLM 0.17: vLLM 0.16 refuses it"),
            "{old:?}"
        );
        assert!(!notes(Version::V0_17)
            .iter()
            .any(|n| n.contains("first appeared")));
    }

    #[test]
    fn release_facts_reach_the_resolved_configuration() {
        let gpu = Gpu::default_gpu();
        let env = BTreeMap::new();
        let args = parse_str("--max-model-len 5120 -dp 2").unwrap();
        let r = |v| {
            resolve(
                &Model::default_model(),
                &args,
                &ctx(v, Device::Cuda, &gpu, &env),
            )
            .unwrap()
        };
        let (v16, v17) = (r(Version::V0_16), r(Version::V0_17));
        // DP > 1 with TP = 1: the runner leaves EngineCore from 0.17 (mp executor).
        assert!(v16.runner_in_engine_core && !v17.runner_in_engine_core);
        // One API server per DP rank from 0.15.
        assert_eq!(
            (
                r(Version::V0_14).api_server_count,
                r(Version::V0_15).api_server_count
            ),
            (1, 2)
        );
        assert_eq!(
            (
                v17.gpu_memory_utilization,
                r(Version::V0_20).gpu_memory_utilization
            ),
            (0.9, 0.92)
        );
        // Qwen3-8B (dense) defaults to V2 from 0.22 (Qwen3 listed), V1 before.
        assert!(!r(Version::V0_21).model_runner_v2 && r(Version::V0_22).model_runner_v2);
        // Rows of 320 blocks are padded from 0.21 (already a multiple of 8 at B = 16).
        assert_eq!(r(Version::V0_21).blocks_per_request(), 320);
        let odd = parse_str("--max-model-len 5000").unwrap();
        let b = |v| {
            resolve(
                &Model::default_model(),
                &odd,
                &ctx(v, Device::Cuda, &gpu, &env),
            )
            .unwrap()
            .blocks_per_request()
        };
        assert_eq!((b(Version::V0_20), b(Version::V0_21)), (313, 320));
    }
}
