//! Where the model runs and how many processes a server has: the parallel sizes, the API
//! servers, which CUDA model runner (V1 or V2), whether the runner has worker processes of
//! its own or runs inside EngineCore, and whether children are forked or spawned. Each
//! process carries its own Python baseline, so the layout sets most of the total.

use std::collections::BTreeMap;

use super::{env_var, ResolveError};
use crate::engines::vllm::args::VllmArgs;
use crate::engines::vllm::{limits, Version};
use crate::footprint::Device;
use crate::hf::ModelConfig;
use crate::units::Checked;

/// The parallel sizes and the API servers they imply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Parallel {
    pub tensor: u64,
    pub pipeline: u64,
    pub data: u64,
    pub data_local: u64,
    pub decode_context: u64,
    /// TP × PP.
    pub world: u64,
    pub api_server_count: u64,
}

/// The parallel flags, checked as vLLM checks them.
pub(super) fn parallel(
    version: Version,
    cfg: &ModelConfig,
    args: &VllmArgs,
) -> Result<Parallel, ResolveError> {
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
    Ok(Parallel {
        tensor: tp,
        pipeline: pp,
        data: dp,
        data_local: dp_local,
        decode_context: dcp,
        world,
        api_server_count,
    })
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

/// Whether the CUDA runner is V2: `VLLM_USE_V2_MODEL_RUNNER` when set, else the release's
/// default for this model, unless a feature sends it back to V1.
pub(super) fn model_runner_v2(
    version: Version,
    device: Device,
    cfg: &ModelConfig,
    args: &VllmArgs,
    env: &BTreeMap<String, String>,
    speculative_method: Option<&str>,
) -> bool {
    let rel = version.release();
    let runner = rel.cuda_runner.value;
    device == Device::Cuda
        && runner.has_v2()
        && match env_var(env, "VLLM_USE_V2_MODEL_RUNNER") {
            Some(v) => v == "1" || v.eq_ignore_ascii_case("true"),
            None => {
                let quantized = cfg.quantization.is_some() || args.quantization.is_some();
                let falls_back = rel.v2_fallback.is_some_and(|f| {
                    f.value.falls_back(
                        speculative_method,
                        args.enable_prompt_embeds.unwrap_or(false),
                    )
                });
                runner.prefers_v2(&cfg.architecture, cfg.num_experts > 0, quantized) && !falls_back
            }
        }
}

/// Whether the model runs in the EngineCore process (uniproc executor) rather than in
/// worker processes of its own.
pub(super) fn runner_in_engine_core(
    version: Version,
    device: Device,
    parallel: &Parallel,
    args: &VllmArgs,
    env: &BTreeMap<String, String>,
) -> bool {
    let multiprocessing = env_var(env, "VLLM_ENABLE_V1_MULTIPROCESSING") != Some("0");
    match device {
        // The CPU platform turns `uni` into `mp` so OpenMP can be set per worker.
        Device::Cpu => !multiprocessing,
        Device::Cuda => {
            // From 0.17 the `mp` executor also runs for DP > 1 (TP × PP × DP > 1).
            let ranks = if version.release().executor_mp_counts_dp.value {
                (Checked::new(parallel.world) * parallel.data).raw()
            } else {
                parallel.world
            };
            ranks == 1
                && !matches!(
                    args.distributed_executor_backend.as_deref(),
                    Some("mp" | "ray")
                )
        }
    }
}

/// Python children start with fork (sharing pages copy-on-write) rather than spawn.
pub(super) fn fork(device: Device, env: &BTreeMap<String, String>) -> bool {
    match device {
        Device::Cpu => false,
        Device::Cuda => env_var(env, "VLLM_WORKER_MULTIPROC_METHOD").unwrap_or("fork") == "fork",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::vllm::args::parse_str;
    use crate::engines::vllm::test_util::resolved;
    use crate::model::Model;

    #[test]
    fn the_process_layout_follows_the_release() {
        let r = |v| resolved("--max-model-len 5120 -dp 2", v, Device::Cuda).unwrap();
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
        // Qwen3-8B (dense) defaults to V2 from 0.22 (Qwen3 listed), V1 before.
        assert!(!r(Version::V0_21).model_runner_v2 && r(Version::V0_22).model_runner_v2);
    }

    #[test]
    fn api_servers_by_load_balancing() {
        let cfg = Model::default_model().config;
        let count = |v, flags: &str| {
            parallel(v, &cfg, &parse_str(flags).unwrap()).map(|p| p.api_server_count)
        };
        let dp4 = "-dp 4 --data-parallel-size-local 2";
        assert_eq!(count(Version::V0_33, dp4), Ok(4));
        assert_eq!(
            count(Version::V0_33, &format!("{dp4} --data-parallel-hybrid-lb")),
            Ok(2)
        );
        assert_eq!(
            count(
                Version::V0_33,
                &format!("{dp4} --data-parallel-external-lb")
            ),
            Ok(1)
        );
        assert_eq!(count(Version::V0_14, dp4), Ok(1));
        // A TP size that does not divide the heads is refused.
        assert!(count(Version::V0_33, "-tp 3").is_err());
    }

    #[test]
    fn spawn_and_forced_executors() {
        let mut env = BTreeMap::new();
        assert!(fork(Device::Cuda, &env) && !fork(Device::Cpu, &env));
        env.insert("VLLM_WORKER_MULTIPROC_METHOD".into(), "spawn".into());
        assert!(!fork(Device::Cuda, &env));
        let cfg = Model::default_model().config;
        let one = parallel(Version::V0_33, &cfg, &VllmArgs::default()).unwrap();
        let mp = parse_str("--distributed-executor-backend mp").unwrap();
        let none = BTreeMap::new();
        assert!(runner_in_engine_core(
            Version::V0_33,
            Device::Cuda,
            &one,
            &VllmArgs::default(),
            &none
        ));
        assert!(!runner_in_engine_core(
            Version::V0_33,
            Device::Cuda,
            &one,
            &mp,
            &none
        ));
        // The CPU backend always has a worker unless multiprocessing is off.
        assert!(!runner_in_engine_core(
            Version::V0_33,
            Device::Cpu,
            &one,
            &VllmArgs::default(),
            &none
        ));
    }
}
