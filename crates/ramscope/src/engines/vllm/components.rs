//! The host allocations of a vLLM server, per process, as formulas
//! (docs/vllm-host-ram.md §1–§13).
//!
//! This module says which process holds what: the processes of a server and the parts each
//! one gets. The parts live in their own modules: [`super::scheduler`] (EngineCore's
//! scheduler), [`super::shm`] (the message queues between EngineCore and its workers),
//! [`super::buffers`] (the model runner's buffers), [`super::weights`] (the weights, the CPU
//! KV cache and the GPU features that live in host RAM), [`super::runtime`] and
//! [`super::cuda_graphs`]. Every byte count is computed as a [`Checked`] value, so an absurd
//! flag gives a too-large value (refused by [`crate::estimate::estimate`]) instead of a
//! wrapped one.

use crate::attribute::Category;
use crate::calibrate::Baselines;
use crate::engines::Options;
use crate::footprint::{Component, Device, Phase, ProcessEstimate};
use crate::model::Model;
use crate::proc::roles::Role;
use crate::units::Checked;

use super::buffers::{cpu_runner_buffers, lazy_buffers, v1_runner_buffers, v2_runner_buffers};
use super::defaults::{LoadStrategy, Resolved};
use super::prompt_embeds::{prompt_embeds, Holder};
use super::runtime::{self, baseline, tokenizer};
use super::scheduler::{request_state, scheduler};
use super::shm::{message_queues_engine, message_queues_worker};
use super::weights::{cpu_kv_cache, gpu_features, weights};
use super::{cuda_graphs, kv_transfer, mm_cache};

pub(super) const KIB: u64 = 1 << 10;
pub(super) const MIB: u64 = 1 << 20;
pub(super) const GIB: u64 = 1 << 30;

/// PyTorch's caching host allocator rounds every pinned block up to a power of two
/// (`u64::MAX` when that does not fit in 64 bits).
pub fn pow2(x: u64) -> u64 {
    Checked::new(x).pow2().raw()
}

/// A plain number as a [`Checked`] one, so every formula built on it is checked.
pub(super) fn n(v: u64) -> Checked {
    Checked::new(v)
}

/// What [`build`] returns.
pub struct Built {
    pub processes: Vec<ProcessEstimate>,
    pub page_cache_bytes: u64,
    pub shm_mapped_bytes: u64,
    pub notes: Vec<String>,
}

/// The buffer list of one process, with the version label used in every component.
pub(super) struct Ctx<'a> {
    pub m: &'a Model,
    pub r: &'a Resolved,
    pub b: &'a Baselines,
    pub ver: &'static str,
}

impl Ctx<'_> {
    pub fn exact(
        &self,
        id: &str,
        bytes: impl Into<Checked>,
        cat: Category,
        formula: String,
        source: &str,
    ) -> Component {
        Component::exact(id, bytes, cat, formula, source, self.ver)
    }

    /// A buffer that is pinned on CUDA (rounded to pow2) and plain on CPU.
    pub fn host_buf(
        &self,
        id: &str,
        raw: impl Into<Checked>,
        expr: &str,
        nums: &str,
        source: &str,
    ) -> Component {
        let raw = raw.into();
        if self.r.pin_memory {
            let bytes = raw.pow2();
            self.exact(
                id,
                bytes,
                Category::Pinned,
                format!("pow2({expr}) = pow2({nums}) = pow2({raw})"),
                source,
            )
        } else {
            self.exact(id, raw, Category::Heap, format!("{expr} = {nums}"), source)
        }
    }
}

/// Builds every process of the server.
pub fn build(model: &Model, r: &Resolved, b: &Baselines, options: &Options) -> Built {
    let cx = Ctx {
        m: model,
        r,
        b,
        ver: r.version.name(),
    };
    let mut notes = Vec::new();
    let mut shm_mapped = n(0);
    let api_count = r.api_server_count;
    let engines = r.data_parallel_size_local;
    let workers_per_engine = if r.runner_in_engine_core {
        0
    } else {
        r.world_size()
    };
    let launcher = api_count > 1;
    let coordinator = r.data_parallel_size > 1;
    let py_processes = n(api_count)
        + u64::from(launcher)
        + engines
        + n(engines) * workers_per_engine
        + u64::from(coordinator);
    // With fork, children share their parent's import pages copy-on-write until written.
    // Several API servers are started with spawn (`APIServerProcessManager`), so they share
    // nothing with the launcher.
    let forked = if launcher {
        py_processes.saturating_sub(api_count)
    } else {
        py_processes
    };
    let fork_group = if r.fork { forked.max(1) } else { n(1) };
    let api_fork_group = if launcher { n(1) } else { fork_group };

    let mut processes = Vec::new();

    // API server(s).
    if api_count > 0 {
        let mut c = baseline(&cx, Role::ApiServer, py_processes, api_fork_group);
        c.extend(tokenizer(&cx, "api-server"));
        c.push(request_state(
            &cx,
            40 + 45,
            "vllm/v1/engine/output_processor.py",
        ));
        c.extend(mm_cache::api_server(&cx));
        shm_mapped = shm_mapped + mm_cache::shm_mapped(&cx);
        c.extend(prompt_embeds(&cx, Holder::ApiServer));
        let title = if api_count > 1 {
            "VLLM::APIServer_{i}"
        } else {
            "API server (the vllm serve command line)"
        };
        processes.push(ProcessEstimate::new(Role::ApiServer, title, api_count, c));
        if launcher {
            let c = baseline(&cx, Role::ApiServer, py_processes, n(1));
            processes.push(ProcessEstimate::new(
                Role::ApiServer,
                "vllm serve (launcher of the API servers)",
                1,
                c,
            ));
        }
    }

    // EngineCore(s).
    {
        let mut c = baseline(&cx, Role::EngineCore, py_processes, fork_group);
        let baseline_len = c.len();
        c.extend(tokenizer(&cx, "engine-core"));
        c.extend(scheduler(&cx));
        c.extend(mm_cache::engine_core(&cx));
        c.extend(prompt_embeds(&cx, Holder::EngineCore));
        if workers_per_engine > 0 {
            let (q, mapped) = message_queues_engine(&cx, workers_per_engine);
            shm_mapped = shm_mapped + mapped * engines;
            c.extend(q);
        }
        if r.runner_in_engine_core {
            let before = rss_before_runner(&cx, Role::EngineCore, &c[baseline_len..]);
            c.extend(runner(&cx, options, before, &mut notes));
        }
        let title = if engines > 1 {
            "VLLM::EngineCore_DP{i}"
        } else {
            "VLLM::EngineCore"
        };
        processes.push(ProcessEstimate::new(Role::EngineCore, title, engines, c));
    }

    // Workers.
    if workers_per_engine > 0 {
        let mut c = baseline(&cx, Role::Worker, py_processes, fork_group);
        let baseline_len = c.len();
        let (q, mapped) = message_queues_worker(&cx, workers_per_engine, options);
        shm_mapped = shm_mapped + mapped * engines;
        c.extend(q);
        let before = rss_before_runner(&cx, Role::Worker, &c[baseline_len..]);
        c.extend(runner(&cx, options, before, &mut notes));
        // The worker's own copy of each running request's prompt embeddings.
        c.extend(prompt_embeds(&cx, Holder::Worker));
        // `setup_proc_title_and_log_prefix`: _DP{i} with data parallelism, _TP{j} (here the
        // rank within the engine) with more than one rank.
        let dp = if r.data_parallel_size > 1 {
            "_DP{i}"
        } else {
            ""
        };
        let rank = if r.world_size() > 1 { "_TP{j}" } else { "" };
        let title = format!("VLLM::Worker{dp}{rank}");
        processes.push(ProcessEstimate::new(
            Role::Worker,
            &title,
            (n(engines) * workers_per_engine).raw(),
            c,
        ));
    }

    if coordinator {
        let c = baseline(&cx, Role::DpCoordinator, py_processes, fork_group);
        processes.push(ProcessEstimate::new(
            Role::DpCoordinator,
            "VLLM::DPCoordinator",
            1,
            c,
        ));
    }

    // Python's resource tracker starts with the first spawned child or SharedMemory.
    if !r.fork || launcher || workers_per_engine > 0 || mm_cache::kind(&cx) == mm_cache::Kind::Shm {
        let c = vec![cx
            .exact(
                "runtime.resource_tracker",
                b.tracker_bytes,
                Category::Heap,
                "a bare Python running multiprocessing.resource_tracker".into(),
                "multiprocessing/resource_tracker.py",
            )
            .calibrated(
                &b.provenance_imports,
                b.tracker_bytes / 2,
                n(b.tracker_bytes) * 2,
            )];
        processes.push(ProcessEstimate::new(
            Role::Helper,
            "python -c from multiprocessing.resource_tracker import main",
            1,
            c,
        ));
    }

    // The offloading connector's /dev/shm region, one per engine.
    shm_mapped = shm_mapped + kv_transfer::shm_mapped(&cx) * engines;
    let page_cache_bytes = match r.load_strategy {
        LoadStrategy::Other => 0,
        _ => model.weights.total_bytes,
    };
    Built {
        processes,
        page_cache_bytes,
        shm_mapped_bytes: shm_mapped.raw(),
        notes,
    }
}

pub(super) fn gib(bytes: u64) -> String {
    let g = bytes as f64 / GIB as f64;
    if g.fract() == 0.0 {
        format!("{g:.0} GiB")
    } else {
        format!("{g:.2} GiB")
    }
}

/// The steady bytes of `components`.
pub(super) fn steady_bytes(components: &[Component]) -> Checked {
    components
        .iter()
        .filter(|c| c.phase == Phase::Steady)
        .map(|c| n(c.bytes))
        .sum()
}

/// What the RSS of the process that runs the model holds before its runner is built: its
/// baseline with shared pages whole, and the rest of its components so far (`after_baseline`).
fn rss_before_runner(cx: &Ctx, role: Role, after_baseline: &[Component]) -> Checked {
    runtime::baseline_rss(cx, role) + steady_bytes(after_baseline)
}

/// The process that runs the model: buffers, weights, runtime, features. `before` is what
/// the process's RSS holds already (the CPU backend's automatic KV size subtracts it).
fn runner(cx: &Ctx, options: &Options, before: Checked, notes: &mut Vec<String>) -> Vec<Component> {
    let r = cx.r;
    let mut out = Vec::new();
    match r.device {
        Device::Cuda => {
            out.extend(runtime::cuda(cx));
            out.extend(cuda_graphs::host_graphs(cx));
        }
        Device::Cpu => out.extend(runtime::cpu(cx)),
    }
    if r.device == Device::Cpu {
        out.extend(cpu_runner_buffers(cx));
    } else if r.model_runner_v2 {
        out.extend(v2_runner_buffers(cx));
    } else {
        out.extend(v1_runner_buffers(cx));
    }
    out.extend(lazy_buffers(cx));
    out.extend(weights(cx, notes));
    if r.device == Device::Cpu {
        let rss = before + steady_bytes(&out);
        out.extend(cpu_kv_cache(cx, rss, options, notes));
    } else {
        out.extend(gpu_features(cx, notes));
    }
    out.extend(kv_transfer::host_buffers(cx, notes));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow2_rounds_like_the_pinned_allocator() {
        assert_eq!(pow2(327_680), 524_288);
        assert_eq!(pow2(64 << 20), 64 << 20);
        assert_eq!(pow2(1028), 2048);
        assert_eq!(pow2(0), 1);
        // Past 2^63 the next power of two does not fit: too large, not a wrap to 0.
        assert_eq!(pow2((1 << 63) + 1), u64::MAX);
    }

    use crate::engines::vllm::test_util::{built, process};
    use crate::engines::vllm::Version;

    #[test]
    fn data_parallel_engines_get_a_worker_each_and_spawned_api_servers() {
        // 0.33, DP 2, TP 1: the mp executor runs one worker per engine, and two API servers
        // (one per DP rank) are spawned, so they share no pages with the launcher.
        let b = built("-dp 2 --max-model-len 5120", Version::V0_33, Device::Cuda);
        let w = process(&b, Role::Worker).expect("a worker per engine");
        assert_eq!((w.count, w.title.as_str()), (2, "VLLM::Worker_DP{i}"));
        assert!(w.components.iter().any(|c| c.id == "runner.input_ids"
            || c.id == "v2.all_token_ids"
            || c.id == "input_batch.token_ids"));
        let api = process(&b, Role::ApiServer).unwrap();
        assert_eq!(api.count, 2);
        let imports = api
            .components
            .iter()
            .find(|c| c.id == "runtime.python_imports")
            .unwrap();
        assert!(!imports.formula.contains("forked"), "{}", imports.formula);
        let engine = process(&b, Role::EngineCore).unwrap();
        assert!(engine.components.iter().all(|c| c.id != "runner.input_ids"));
        // 0.16 ran the model inside each EngineCore when TP × PP = 1.
        let b = built("-dp 2 --max-model-len 5120", Version::V0_16, Device::Cuda);
        assert!(process(&b, Role::Worker).is_none());
    }
}
