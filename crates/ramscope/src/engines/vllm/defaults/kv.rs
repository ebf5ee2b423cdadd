//! The KV cache as the host sees it: the default block size per release, device and
//! attention kind (which sets every block table's width), the CPU backend's KV budget, and
//! how many blocks an engine gets (which sizes the scheduler's per-block objects).

use std::collections::BTreeMap;

use super::{env_var, ResolveError, Resolved};
use crate::engines::vllm::Version;
use crate::footprint::Device;
use crate::gpu::Gpu;
use crate::model::Model;
use crate::units::Checked;

const GIB: f64 = (1u64 << 30) as f64;

/// `--block-size`, or the release's default for the device and for MLA models; refuses MLA
/// on a CPU backend that does not run it.
pub(super) fn block_size(
    version: Version,
    device: Device,
    mla: bool,
    given: Option<u64>,
) -> Result<u64, ResolveError> {
    let rel = version.release();
    let cpu_mla = match (device, mla) {
        (Device::Cpu, true) => Some(rel.cpu_mla_block_size.value.ok_or_else(|| {
            ResolveError::Invalid(format!(
                "vLLM {version} does not run MLA models on the CPU backend (CPU MLA arrived in 0.28)"
            ))
        })?),
        _ => None,
    };
    let block_size = given.unwrap_or(match (device, mla) {
        (Device::Cuda, true) => rel.cuda_mla_block_size.value,
        (Device::Cuda, false) => rel.cuda_block_size.value,
        (Device::Cpu, true) => cpu_mla.unwrap_or(16),
        (Device::Cpu, false) => rel.cpu_block_size.value,
    });
    if block_size == 0 {
        return Err(ResolveError::Invalid("--block-size must be > 0".into()));
    }
    Ok(block_size)
}

/// CPU KV cache: VLLM_CPU_KVCACHE_SPACE (whole GiB), else --kv-cache-memory-bytes, else
/// automatic (`None`).
pub(super) fn cpu_kv_cache_bytes(
    device: Device,
    env: &BTreeMap<String, String>,
    kv_cache_memory_bytes: Option<u64>,
) -> Result<Option<u64>, ResolveError> {
    Ok(match device {
        Device::Cuda => None,
        Device::Cpu => match env_var(env, "VLLM_CPU_KVCACHE_SPACE") {
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
            None => kv_cache_memory_bytes,
        },
    })
}

/// KV blocks per engine. GPU: what fits in `u × memory` after weights and activations (an
/// estimate unless `--num-gpu-blocks-override`); CPU: the fixed KV budget over the block size.
pub(super) fn kv_blocks(
    model: &Model,
    r: &Resolved,
    override_blocks: Option<u64>,
    gpu: &Gpu,
) -> (u64, bool) {
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
    use super::super::{resolve, test_context};
    use super::*;
    use crate::engines::vllm::args::{parse_str, VllmArgs};

    #[test]
    fn cpu_kv_space_rules() {
        let gpu = Gpu::default_gpu();
        let mut env = BTreeMap::new();
        env.insert("VLLM_CPU_KVCACHE_SPACE".to_string(), "1".to_string());
        let r = resolve(
            &Model::default_model(),
            &parse_str("--max-model-len 5120").unwrap(),
            &test_context(Version::V0_32, Device::Cpu, &gpu, &env),
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
            &test_context(Version::V0_32, Device::Cpu, &gpu, &env)
        )
        .is_err());
        env.insert("VLLM_CPU_KVCACHE_SPACE".to_string(), "1.5".to_string());
        assert!(resolve(
            &Model::default_model(),
            &VllmArgs::default(),
            &test_context(Version::V0_32, Device::Cpu, &gpu, &env)
        )
        .is_err());
    }

    #[test]
    fn block_sizes_per_device_and_attention() {
        assert_eq!(
            block_size(Version::V0_33, Device::Cuda, false, None),
            Ok(16)
        );
        assert_eq!(block_size(Version::V0_33, Device::Cuda, true, None), Ok(64));
        assert_eq!(
            block_size(Version::V0_33, Device::Cpu, false, None),
            Ok(128)
        );
        // MLA on the CPU backend: refused before 0.28, even with a block size given.
        assert!(block_size(Version::V0_27, Device::Cpu, true, Some(16)).is_err());
        assert_eq!(block_size(Version::V0_28, Device::Cpu, true, None), Ok(16));
        assert!(block_size(Version::V0_33, Device::Cuda, false, Some(0)).is_err());
    }
}
