//! Advice: candidate changes to the command line or environment, each priced by estimating
//! again with the change. Advice that saves nothing is not shown.

use std::collections::BTreeMap;

use crate::engines::vllm::args::VllmArgs;
use crate::engines::vllm::Device;
use crate::estimate::Estimate;
use crate::units::bytes;

use super::{Advice, Reestimate};

fn gib(b: u64) -> String {
    format!("{:.3}", b as f64 / (1u64 << 30) as f64)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

/// Candidate changes, each priced by a second estimate. Advice that saves nothing is dropped.
pub(super) fn advise(base: &Estimate, reestimate: &dyn Reestimate) -> Vec<Advice> {
    let mut out = Vec::new();
    let arg = |name: &str| base.args.get(name).and_then(|v| v.as_u64());
    let price = |change: &dyn Fn(&mut VllmArgs, &mut BTreeMap<String, String>)| {
        reestimate.with(change).map(|e| {
            (
                base.total.steady_bytes.saturating_sub(e.total.steady_bytes),
                base.total.peak_bytes.saturating_sub(e.total.peak_bytes),
            )
        })
    };
    let mut push = |action: String, saved: Option<(u64, u64)>, peak_only: bool, why: String| {
        if let Some((steady, peak)) = saved {
            let (saves, applies_to) = if peak_only {
                (peak, "peak")
            } else {
                (steady, "steady")
            };
            if saves >= 1 << 20 {
                out.push(Advice {
                    action,
                    saves_bytes: saves,
                    applies_to,
                    why,
                });
            }
        }
    };

    if let Some(seqs) = arg("max_num_seqs").filter(|&s| s > 1) {
        let to = (seqs / 2).max(1);
        push(
            format!("--max-num-seqs {to} (now {seqs})"),
            price(&|a, _| a.max_num_seqs = Some(to)),
            false,
            "InputBatch, block tables and sampling buffers are sized for max_num_seqs concurrent sequences; fewer concurrent sequences lowers throughput under load".into(),
        );
    }
    if let Some(len) = arg("max_model_len").filter(|&l| l > 1024) {
        let to = len / 2;
        push(
            format!("--max-model-len {to} (now {len})"),
            price(&|a, _| a.max_model_len = Some(to)),
            false,
            "token-id buffers and block tables are sized for max_model_len per sequence; longer prompts are then refused".into(),
        );
    }
    if base.device == Device::Cuda
        && base.args.get("enforce_eager").and_then(|v| v.as_bool()) != Some(true)
    {
        push(
            "--enforce-eager".into(),
            price(&|a, _| a.enforce_eager = Some(true)),
            false,
            "CUDA graphs keep host-side graph nodes for every captured batch size (and torch.compile state); eager mode is slower per token".into(),
        );
    }
    if let Some(cache) = arg("mm_processor_cache_bytes").filter(|&b| b > 0) {
        push(
            format!("--mm-processor-cache-gb 0 (now {})", gib(cache)),
            price(&|a, _| a.mm_processor_cache_gb = Some(0.0)),
            false,
            "the multimodal processor cache is kept per API server (and mirrored in the engine); repeated images are then processed again".into(),
        );
    }
    if let Some(n) = arg("api_server_count").filter(|&n| n > 1) {
        push(
            format!("--api-server-count 1 (now {n})"),
            price(&|a, _| a.api_server_count = Some(1)),
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
            price(&|a, _| a.safetensors_load_strategy = Some("lazy".into())),
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
                    price(&|a, env| {
                        a.env.remove("VLLM_CPU_KVCACHE_SPACE");
                        env.insert("VLLM_CPU_KVCACHE_SPACE".into(), to.to_string());
                    }),
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
                    price(&|a, env| {
                        a.env.remove("VLLM_CPU_KVCACHE_SPACE");
                        env.remove("VLLM_CPU_KVCACHE_SPACE");
                        a.kv_cache_memory_bytes = Some(to);
                    }),
                    false,
                    why,
                );
            }
        }
    }
    if base.device == Device::Cuda {
        push(
            "TORCHINDUCTOR_COMPILE_THREADS=1".into(),
            price(&|_, env| {
                env.insert("TORCHINDUCTOR_COMPILE_THREADS".into(), "1".into());
            }),
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
                    price(&|a, _| match field {
                        "cpu_offload_bytes" => a.cpu_offload_gb = Some(lower),
                        _ => a.kv_offloading_size = Some(lower),
                    }),
                    false,
                    "pinned host buffers are rounded up to powers of two by PyTorch's caching host allocator: a size just above a power of two nearly doubles".into(),
                );
            }
        }
    }
    out.sort_by_key(|a| std::cmp::Reverse(a.saves_bytes));
    out
}
