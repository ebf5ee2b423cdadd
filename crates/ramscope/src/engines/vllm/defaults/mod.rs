//! From what the user set to what vLLM will use: defaults per version, device and GPU
//! (`vllm/engine/arg_utils.py`, `vllm/config/*.py`, `vllm/platforms/{cuda,cpu}.py`), and the
//! environment variables that change host RAM. [`resolve`] applies them in vLLM's order, one
//! concern per module: flag notes ([`flag_notes`]), the process layout ([`processes`]), batch
//! limits ([`batch`]), the KV cache ([`kv`]), compilation and CUDA graphs ([`compile`]) and
//! weight loading ([`load`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::args::VllmArgs;
use super::kv_transfer::{self, KvTransfer};
use super::limits;
use super::offload::{self, WeightOffload};
use super::Version;
use crate::footprint::Device;
use crate::gpu::Gpu;
use crate::hf::Dtype;
use crate::model::Model;
use crate::units::Checked;

mod batch;
mod compile;
mod flag_notes;
mod kv;
mod load;
mod processes;

pub use load::LoadStrategy;

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
    let device = cx.device;
    let env = |k: &str| env_var(cx.env, k);
    let mut notes = flag_notes::flag_notes(version, args);

    let parallel = processes::parallel(version, cfg, args)?;
    let world = parallel.world;

    let max_model_len = limits::max_model_len(args.max_model_len, cfg.max_model_len, cx.env)?;
    if max_model_len > cfg.max_model_len {
        notes.push(format!(
            "--max-model-len {max_model_len} exceeds the model's {}: allowed by VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, positions past it give NaN or out-of-bounds errors",
            cfg.max_model_len
        ));
    }

    let batch::Batch {
        max_num_seqs,
        max_num_batched_tokens,
    } = batch::batch(version, device, cx.gpu, world, max_model_len, args)?;
    let block_size = kv::block_size(version, device, cfg.mla.is_some(), args.block_size)?;

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
        .unwrap_or(version.release().gpu_memory_utilization.value);
    if !(0.0..=1.0).contains(&gpu_memory_utilization) || gpu_memory_utilization == 0.0 {
        return Err(ResolveError::Invalid(format!(
            "--gpu-memory-utilization {gpu_memory_utilization} must be in (0, 1]"
        )));
    }

    let compilation = compile::compilation(
        version,
        device,
        cx.gpu,
        cx.env,
        args,
        max_num_seqs,
        max_num_batched_tokens,
    )?;
    let model_runner_v2 = processes::model_runner_v2(
        version,
        device,
        cfg,
        args,
        cx.env,
        compilation.speculative_method.as_deref(),
    );
    let runner_in_engine_core =
        processes::runner_in_engine_core(version, device, &parallel, args, cx.env);
    let fork = processes::fork(device, cx.env);

    let (load_strategy, load_threads) = load::load(version, args, &mut notes)?;

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
    let mq_response_chunk_bytes = version.release().mq_response_chunk_bytes.value;
    let xgrammar_cache_bytes = limits::env_mib(cx.env, "VLLM_XGRAMMAR_CACHE_MB", 512)?;

    let cpu_kv_cache_bytes = kv::cpu_kv_cache_bytes(
        version,
        device,
        cx.env,
        args.kv_cache_memory_bytes,
        cx.host_memory_bytes,
        &mut notes,
    )?;

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
        tensor_parallel_size: parallel.tensor,
        pipeline_parallel_size: parallel.pipeline,
        data_parallel_size: parallel.data,
        data_parallel_size_local: parallel.data_local,
        decode_context_parallel_size: parallel.decode_context,
        api_server_count: parallel.api_server_count,
        enforce_eager: compilation.enforce_eager,
        torch_compile: compilation.torch_compile,
        cudagraph_mode: compilation.cudagraph_mode,
        cudagraph_capture_sizes: compilation.cudagraph_capture_sizes,
        num_speculative_tokens: compilation.num_speculative_tokens,
        speculative_method: compilation.speculative_method,
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
    let (blocks, exact) = kv::kv_blocks(model, &resolved, args.num_gpu_blocks_override, cx.gpu);
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

/// An environment variable vLLM would see; set but empty counts as unset.
fn env_var<'a>(env: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    env.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

/// The [`Context`] the tests of every concern resolve with.
#[cfg(test)]
fn test_context<'a>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::vllm::test_util::resolved;

    #[test]
    fn release_facts_reach_the_resolved_configuration() {
        let r = |v| resolved("--max-model-len 5120 -dp 2", v, Device::Cuda).unwrap();
        assert_eq!(
            (
                r(Version::V0_17).gpu_memory_utilization,
                r(Version::V0_20).gpu_memory_utilization
            ),
            (0.9, 0.92)
        );
        // Rows of 320 blocks are padded from 0.21 (already a multiple of 8 at B = 16).
        assert_eq!(r(Version::V0_21).blocks_per_request(), 320);
        let b = |v| {
            resolved("--max-model-len 5000", v, Device::Cuda)
                .unwrap()
                .blocks_per_request()
        };
        assert_eq!((b(Version::V0_20), b(Version::V0_21)), (313, 320));
    }
}
