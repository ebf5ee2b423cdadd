//! vLLM's advice: changes to the command line or environment that can lower host RAM, each
//! with the command line and environment it gives. `explain` prices them by estimating again
//! and drops those that save nothing.

use std::collections::BTreeMap;

use crate::engines::Candidate;
use crate::footprint::{Device, Estimate};
use crate::units::bytes;

use super::args::VllmArgs;
use super::engine::VllmLaunch;

fn gib(b: u64) -> String {
    format!("{:.3}", b as f64 / (1u64 << 30) as f64)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

/// The changes worth pricing for the command line `args`, whose estimate is `base`, made
/// with the environment `env`.
pub(super) fn candidates(
    args: &VllmArgs,
    base: &Estimate,
    env: &BTreeMap<String, String>,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let arg = |name: &str| base.args.get(name).and_then(|v| v.as_u64());
    let mut push = |action: String,
                    change: &dyn Fn(&mut VllmArgs, &mut BTreeMap<String, String>),
                    peak_only: bool,
                    why: String| {
        let mut changed = args.clone();
        let mut changed_env = env.clone();
        change(&mut changed, &mut changed_env);
        out.push(Candidate {
            action,
            why,
            peak_only,
            launch: Box::new(VllmLaunch { args: changed }),
            env: changed_env,
        });
    };

    if let Some(seqs) = arg("max_num_seqs").filter(|&s| s > 1) {
        let to = (seqs / 2).max(1);
        push(
            format!("--max-num-seqs {to} (now {seqs})"),
            &|a, _| a.max_num_seqs = Some(to),
            false,
            "InputBatch, block tables and sampling buffers are sized for max_num_seqs concurrent sequences; fewer concurrent sequences lowers throughput under load".into(),
        );
    }
    if let Some(len) = arg("max_model_len").filter(|&l| l > 1024) {
        let to = len / 2;
        push(
            format!("--max-model-len {to} (now {len})"),
            &|a, _| a.max_model_len = Some(to),
            false,
            "token-id buffers and block tables are sized for max_model_len per sequence; longer prompts are then refused".into(),
        );
    }
    if base.device == Device::Cuda
        && base.args.get("enforce_eager").and_then(|v| v.as_bool()) != Some(true)
    {
        push(
            "--enforce-eager".into(),
            &|a, _| a.enforce_eager = Some(true),
            false,
            "CUDA graphs keep host-side graph nodes for every captured batch size (and torch.compile state); eager mode is slower per token".into(),
        );
    }
    if let Some(cache) = arg("mm_processor_cache_bytes").filter(|&b| b > 0) {
        push(
            format!("--mm-processor-cache-gb 0 (now {})", gib(cache)),
            &|a, _| a.mm_processor_cache_gb = Some(0.0),
            false,
            "the multimodal processor cache is kept per API server (and mirrored in the engine); repeated images are then processed again".into(),
        );
    }
    if let Some(n) = arg("api_server_count").filter(|&n| n > 1) {
        push(
            format!("--api-server-count 1 (now {n})"),
            &|a, _| a.api_server_count = Some(1),
            false,
            "every API server process carries the full Python/torch import baseline and its own caches".into(),
        );
    }
    let strategy = base
        .args
        .get("load_strategy")
        .and_then(|v| v.as_str())
        .unwrap_or("lazy");
    if matches!(strategy, "eager" | "prefetch" | "multithread") {
        push(
            format!("--safetensors-load-strategy lazy (now {strategy})"),
            &|a, _| a.safetensors_load_strategy = Some("lazy".into()),
            true,
            "eager and prefetch loading read whole weight files through host RAM at start-up, in every TP rank".into(),
        );
    }
    if base.device == Device::Cpu {
        if let Some(kv) = arg("cpu_kv_cache_bytes").filter(|&b| b >= 512 << 20) {
            let why = "the CPU backend's KV cache is host RAM, allocated in full at start-up; a smaller cache holds fewer tokens at once (the scheduler then queues requests)".to_string();
            let whole_gib = kv >> 30;
            if whole_gib >= 2 {
                // vLLM reads VLLM_CPU_KVCACHE_SPACE with int(): whole GiB only.
                let to = whole_gib / 2;
                push(
                    format!("VLLM_CPU_KVCACHE_SPACE={to} (now {})", gib(kv)),
                    &|a, env| {
                        a.env.remove("VLLM_CPU_KVCACHE_SPACE");
                        env.insert("VLLM_CPU_KVCACHE_SPACE".into(), to.to_string());
                    },
                    false,
                    why,
                );
            } else {
                // Below 2 GiB the variable cannot express half; the flag takes bytes.
                let to = kv / 2;
                push(
                    format!(
                        "VLLM_CPU_KVCACHE_SPACE unset and --kv-cache-memory-bytes {to} ({}; now {} GiB)",
                        bytes(to),
                        gib(kv)
                    ),
                    &|a, env| {
                        a.env.remove("VLLM_CPU_KVCACHE_SPACE");
                        env.remove("VLLM_CPU_KVCACHE_SPACE");
                        a.kv_cache_memory_bytes = Some(to);
                    },
                    false,
                    why,
                );
            }
        }
    }
    if base.device == Device::Cuda {
        push(
            "TORCHINDUCTOR_COMPILE_THREADS=1".into(),
            &|_, env| {
                env.insert("TORCHINDUCTOR_COMPILE_THREADS".into(), "1".into());
            },
            true,
            "torch.compile starts one compile worker per core at start-up (~75 MiB PSS each); one thread compiles more slowly".into(),
        );
    }
    for (flag, field) in [
        ("--cpu-offload-gb", "cpu_offload_bytes"),
        ("--kv-offloading-size", "kv_offloading_bytes"),
    ] {
        if let Some(gb) = arg(field)
            .map(|b| b as f64 / (1u64 << 30) as f64)
            .filter(|&g| g > 0.0)
        {
            let lower = 2f64.powi(gb.log2().floor() as i32);
            if lower < gb {
                push(
                    format!("{flag} {lower} (now {gb})"),
                    &|a, _| match field {
                        "cpu_offload_bytes" => a.cpu_offload_gb = Some(lower),
                        _ => a.kv_offloading_size = Some(lower),
                    },
                    false,
                    "pinned host buffers are rounded up to powers of two by PyTorch's caching host allocator: a size just above a power of two nearly doubles".into(),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::{Launch, Options};
    use crate::model::Model;

    fn estimate_of(args: &VllmArgs, options: &Options) -> Estimate {
        let model = Model::default_model();
        let launch = VllmLaunch { args: args.clone() };
        let listing = launch.list(&model, options).unwrap();
        Estimate::assemble("vllm", &model, listing).unwrap()
    }

    #[test]
    fn each_candidate_carries_its_change() {
        let args =
            super::super::args::parse_str("--max-model-len 5120 --max-num-seqs 256").unwrap();
        let options = Options::default();
        let base = estimate_of(&args, &options);
        let all = candidates(&args, &base, &options.env);
        let seqs = all
            .iter()
            .find(|c| c.action == "--max-num-seqs 128 (now 256)")
            .unwrap();
        assert_eq!(seqs.launch.model(), None);
        let changed = estimate_of(
            &super::super::args::parse_str("--max-model-len 5120 --max-num-seqs 128").unwrap(),
            &options,
        );
        let mut again = options.clone();
        again.env = seqs.env.clone();
        let priced = seqs.launch.list(&Model::default_model(), &again).unwrap();
        assert_eq!(priced.args, changed.args);
        let threads = all
            .iter()
            .find(|c| c.action == "TORCHINDUCTOR_COMPILE_THREADS=1")
            .unwrap();
        assert!(threads.peak_only);
        assert_eq!(
            threads
                .env
                .get("TORCHINDUCTOR_COMPILE_THREADS")
                .map(String::as_str),
            Some("1")
        );
    }

    #[test]
    fn the_cpu_kv_cache_is_halved_in_whole_gib_or_in_bytes() {
        let options = Options {
            device: Device::Cpu,
            ..Options::default()
        };
        for (space, action, env_after) in [
            ("8", "VLLM_CPU_KVCACHE_SPACE=4 (now 8)", Some("4")),
            ("1", "VLLM_CPU_KVCACHE_SPACE unset and --kv-cache-memory-bytes 536870912 (512 MiB; now 1 GiB)", None),
        ] {
            let line = format!("VLLM_CPU_KVCACHE_SPACE={space} vllm serve qwen3-0.6b");
            let args = super::super::args::parse_str(&line).unwrap();
            let base = estimate_of(&args, &options);
            let all = candidates(&args, &base, &options.env);
            let kv = all
                .iter()
                .find(|c| c.action.starts_with("VLLM_CPU_KVCACHE_SPACE"))
                .unwrap();
            assert_eq!(kv.action, action);
            assert_eq!(
                kv.env.get("VLLM_CPU_KVCACHE_SPACE").map(String::as_str),
                env_after
            );
        }
    }
}
