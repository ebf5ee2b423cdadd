//! The KV cache as the host sees it: the default block size per release, device and
//! attention kind (which sets every block table's width), the CPU backend's KV budget, and
//! how many blocks an engine gets (which sizes the scheduler's per-block objects).

use std::collections::BTreeMap;

use super::{env_var, ResolveError, Resolved};
use crate::engines::vllm::releases::CpuKvAuto;
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

/// CPU KV cache: VLLM_CPU_KVCACHE_SPACE (whole GiB), else --kv-cache-memory-bytes, else the
/// release's default: a fixed size (before 0.13), half the host's memory per NUMA node
/// (0.13–0.19, of `host_memory_bytes`), or automatic (`None`: what the worker's RSS leaves
/// of its reservation, known once the worker is built; also `None` when the host's memory
/// is needed and unknown).
pub(super) fn cpu_kv_cache_bytes(
    version: Version,
    device: Device,
    env: &BTreeMap<String, String>,
    kv_cache_memory_bytes: Option<u64>,
    host_memory_bytes: Option<u64>,
    notes: &mut Vec<String>,
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
            None => {
                kv_cache_memory_bytes.or_else(|| release_default(version, host_memory_bytes, notes))
            }
        },
    })
}

/// The KV size a release gives the CPU backend when the user gives none, if it is fixed
/// before the worker starts.
fn release_default(version: Version, host: Option<u64>, notes: &mut Vec<String>) -> Option<u64> {
    let auto = version.release().cpu_kv_auto;
    match (auto.value, host) {
        (CpuKvAuto::Fixed(bytes), _) => {
            notes.push(format!(
                "no VLLM_CPU_KVCACHE_SPACE: vLLM {version} gives the KV cache its default of {} ({})",
                crate::units::bytes(bytes),
                auto.at
            ));
            Some(bytes)
        }
        (CpuKvAuto::NodeShare(share), Some(node)) => {
            // `int(total // numa_nodes × 0.5)`; floats only for the product.
            let bytes = (node as f64 * share) as u64;
            notes.push(format!(
                "no VLLM_CPU_KVCACHE_SPACE: vLLM {version} gives the KV cache {share} × the memory per NUMA node = {share} × {} ({})",
                crate::units::bytes(node),
                auto.at
            ));
            Some(bytes)
        }
        (CpuKvAuto::NodeShare(_), None) => {
            notes.push(format!(
                "no VLLM_CPU_KVCACHE_SPACE: vLLM {version} gives the KV cache half the memory per NUMA node, which is unknown here: set --env VLLM_CPU_KVCACHE_SPACE=N"
            ));
            None
        }
        (CpuKvAuto::FillsReservation, _) => None,
    }
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
    use super::super::{resolve, test_context, Context};
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
    fn cpu_kv_defaults_follow_the_release() {
        let gpu = Gpu::default_gpu();
        let env = BTreeMap::new();
        let args = parse_str("--max-model-len 5120").unwrap();
        let kv = |version: Version, host: Option<u64>| {
            let cx = Context {
                host_memory_bytes: host,
                ..test_context(version, Device::Cpu, &gpu, &env)
            };
            resolve(&Model::default_model(), &args, &cx)
                .unwrap()
                .cpu_kv_cache_bytes
        };
        // 0.10–0.12: 4 GiB whatever the host has.
        assert_eq!(kv(Version::V0_10, None), Some(4 << 30));
        assert_eq!(kv(Version::V0_12, Some(64 << 30)), Some(4 << 30));
        // 0.13–0.19: half the memory per NUMA node, 64 GiB → 32 GiB; unknown: none.
        assert_eq!(kv(Version::V0_13, Some(64 << 30)), Some(32 << 30));
        assert_eq!(kv(Version::V0_19, None), None);
        // 0.20 on: sized by the worker once built, not here.
        assert_eq!(kv(Version::V0_20, Some(64 << 30)), None);
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
