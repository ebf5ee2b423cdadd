//! The host RAM a vLLM server will use, per process, before it starts.
//!
//! [`estimate`] takes a [`Model`], the user's [`VllmArgs`] and [`Options`] (version, device,
//! GPU, environment, calibration) and returns an [`Estimate`]: per process role, the
//! components of `docs/vllm-host-ram.md` with bytes, formula, source and exactness, summed
//! into a steady state and a load peak. To see what a flag would change, edit the
//! `VllmArgs` and call [`estimate`] again.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::attribute::Category;
use crate::calibrate::Baselines;
use crate::engines::vllm::args::{self, ArgsError, VllmArgs};
use crate::engines::vllm::components;
use crate::engines::vllm::defaults::{self, Context, Gpu, ResolveError};
use crate::engines::vllm::{Device, Version};
use crate::model::{Model, ModelError};
use crate::proc::roles::Role;

pub const SCHEMA: &str = "ramscope.estimate/1";

/// How a number was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exactness {
    /// From a formula over known sizes.
    Exact,
    /// A measured baseline.
    Calibrated,
    /// A range; `bytes` is the point estimate.
    Estimated,
}

/// When a component holds memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// From start-up on.
    Steady,
    /// Only while the model loads (counted in the peak, not the steady state).
    Load,
}

/// One host allocation (or group of allocations) in one process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    pub id: String,
    /// Resident bytes (PSS share for shared memory).
    pub bytes: u64,
    pub category: Category,
    pub pinned: bool,
    pub exactness: Exactness,
    pub low_bytes: u64,
    pub high_bytes: u64,
    /// The formula with the numbers substituted.
    pub formula: String,
    pub source: String,
    /// vLLM versions the source reading is from.
    pub version: String,
    pub phase: Phase,
    /// Mapped (virtual) size, where it differs from the resident size (sparse shm files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapped_bytes: Option<u64>,
    /// Where a calibrated number was measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Component {
    /// An exact component: bytes from a formula.
    pub fn exact(
        id: &str,
        bytes: u64,
        category: Category,
        formula: String,
        source: &str,
        version: &str,
    ) -> Component {
        Component {
            id: id.to_string(),
            bytes,
            category,
            pinned: category == Category::Pinned,
            exactness: Exactness::Exact,
            low_bytes: bytes,
            high_bytes: bytes,
            formula,
            source: source.to_string(),
            version: version.to_string(),
            phase: Phase::Steady,
            mapped_bytes: None,
            provenance: None,
            note: None,
        }
    }

    /// Turns this into an estimate between `low` and `high`.
    pub fn range(mut self, low: u64, high: u64) -> Component {
        self.exactness = Exactness::Estimated;
        self.low_bytes = low.min(self.bytes);
        self.high_bytes = high.max(self.bytes);
        self
    }

    /// Marks this as a measured baseline, with where it was measured.
    pub fn calibrated(mut self, provenance: &str, low: u64, high: u64) -> Component {
        self.exactness = Exactness::Calibrated;
        self.provenance = Some(provenance.to_string());
        self.low_bytes = low.min(self.bytes);
        self.high_bytes = high.max(self.bytes);
        self
    }

    pub fn load_only(mut self) -> Component {
        self.phase = Phase::Load;
        self
    }

    pub fn mapped(mut self, bytes: u64) -> Component {
        self.mapped_bytes = Some(bytes);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Component {
        self.note = Some(note.into());
        self
    }
}

/// One kind of process and how many of it run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessEstimate {
    pub role: Role,
    /// The process title or command line it will show (`VLLM::EngineCore`).
    pub title: String,
    pub count: u64,
    /// Per process.
    pub steady_bytes: u64,
    pub peak_bytes: u64,
    pub low_bytes: u64,
    pub high_bytes: u64,
    pub components: Vec<Component>,
}

impl ProcessEstimate {
    pub fn new(role: Role, title: &str, count: u64, components: Vec<Component>) -> ProcessEstimate {
        let steady: Vec<&Component> = components
            .iter()
            .filter(|c| c.phase == Phase::Steady)
            .collect();
        let steady_bytes = steady.iter().map(|c| c.bytes).sum();
        let load: u64 = components
            .iter()
            .filter(|c| c.phase == Phase::Load)
            .map(|c| c.bytes)
            .sum();
        ProcessEstimate {
            role,
            title: title.to_string(),
            count,
            steady_bytes,
            peak_bytes: steady_bytes + load,
            low_bytes: steady.iter().map(|c| c.low_bytes).sum(),
            high_bytes: steady.iter().map(|c| c.high_bytes).sum(),
            components,
        }
    }

    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.id == id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    pub name: String,
    pub architecture: String,
    pub source: String,
    pub weights_bytes: u64,
    pub weights_exact: bool,
    pub parameters: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Total {
    pub steady_bytes: u64,
    pub peak_bytes: u64,
    pub low_bytes: u64,
    pub high_bytes: u64,
    /// Model files in the page cache: not in any process, but charged to the cgroup.
    pub page_cache_bytes: u64,
    /// Mapped size of every `/dev/shm` segment (needs that much tmpfs room).
    pub shm_mapped_bytes: u64,
}

/// The whole prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub schema: &'static str,
    pub engine: &'static str,
    pub engine_version: Version,
    pub device: Device,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Gpu>,
    pub model: ModelSummary,
    pub args: BTreeMap<String, serde_json::Value>,
    pub processes: Vec<ProcessEstimate>,
    pub total: Total,
    /// Removed flags, surprising defaults, where the baseline came from.
    pub notes: Vec<String>,
}

impl Estimate {
    pub fn process(&self, role: Role) -> Option<&ProcessEstimate> {
        self.processes.iter().find(|p| p.role == role)
    }
}

/// Everything besides the model and the flags.
#[derive(Debug, Clone)]
pub struct Options {
    pub version: Version,
    pub device: Device,
    pub gpu: Gpu,
    /// Environment variables vLLM will see (those in the command line are added on top).
    pub env: BTreeMap<String, String>,
    /// Runtime baselines: built in, or from `ramscope calibrate`.
    pub baselines: Baselines,
    /// `MemTotal` of the host (CPU backend without a fixed KV size).
    pub host_memory_bytes: Option<u64>,
    /// CPU cores of the host (CPU backend all-reduce buffers).
    pub cpu_cores: Option<u64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            version: Version::NEWEST,
            device: Device::Cuda,
            gpu: Gpu::default_gpu(),
            env: BTreeMap::new(),
            baselines: Baselines::built_in(),
            host_memory_bytes: None,
            cpu_cores: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EstimateError {
    #[error(transparent)]
    Args(#[from] ArgsError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Config(#[from] ResolveError),
}

/// Predicts the host RAM of `vllm serve` for this model, flags and options.
pub fn estimate(
    model: &Model,
    args: &VllmArgs,
    options: &Options,
) -> Result<Estimate, EstimateError> {
    let mut env = options.env.clone();
    env.extend(args.env.clone());
    let cx = Context {
        version: options.version,
        device: options.device,
        gpu: &options.gpu,
        env: &env,
        host_memory_bytes: options.host_memory_bytes,
    };
    let resolved = defaults::resolve(model, args, &cx)?;
    let built = components::build(model, &resolved, &options.baselines, options);
    let mut total = Total {
        steady_bytes: 0,
        peak_bytes: 0,
        low_bytes: 0,
        high_bytes: 0,
        page_cache_bytes: built.page_cache_bytes,
        shm_mapped_bytes: built.shm_mapped_bytes,
    };
    for p in &built.processes {
        total.steady_bytes += p.count * p.steady_bytes;
        total.peak_bytes += p.count * p.peak_bytes;
        total.low_bytes += p.count * p.low_bytes;
        total.high_bytes += p.count * p.high_bytes;
    }
    let mut notes = resolved.notes.clone();
    notes.extend(built.notes);
    notes.push(options.baselines.describe());
    Ok(Estimate {
        schema: SCHEMA,
        engine: "vllm",
        engine_version: resolved.version,
        device: resolved.device,
        gpu: resolved.gpu.clone(),
        model: ModelSummary {
            name: model.name.clone(),
            architecture: model.config.architecture.clone(),
            source: model.source.describe(),
            weights_bytes: model.weights.total_bytes,
            weights_exact: model.weights.exact,
            parameters: model.weights.parameters,
        },
        args: resolved.as_map(),
        processes: built.processes,
        total,
        notes,
    })
}

/// Estimates a whole command line as a user would type it (`vllm serve M …` or
/// `python -m vllm.entrypoints.openai.api_server --model M …`, `NAME=VALUE` words first).
/// The model is resolved like `ramscope estimate` does; `env` reads the environment (for the
/// Hugging Face cache). With no model in the line, the built-in default is used.
pub fn from_command_line(
    line: &str,
    options: &Options,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Estimate, EstimateError> {
    from_argv(&args::split_command_line(line)?, &[], options, env)
}

/// Like [`from_command_line`], for an argv as a process has it (`/proc/<pid>/cmdline`) and
/// the environment variables the server was started with (added to `options.env`).
pub fn from_argv(
    argv: &[String],
    server_env: &[(String, String)],
    options: &Options,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Estimate, EstimateError> {
    let args = args::parse(argv)?;
    let model = match &args.model {
        Some(spec) => Model::resolve(spec, env)?,
        None => Model::default_model(),
    };
    let mut options = options.clone();
    options.env.extend(server_env.iter().cloned());
    estimate(&model, &args, &options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwen3_8b(flags: &str, version: Version) -> Estimate {
        let options = Options {
            version,
            ..Options::default()
        };
        estimate(
            &Model::default_model(),
            &args::parse_str(flags).unwrap(),
            &options,
        )
        .unwrap()
    }

    #[test]
    fn seed_case_token_ids() {
        let e = qwen3_8b("--max-model-len 5120 --max-num-seqs 256", Version::V0_11);
        let ec = e.process(Role::EngineCore).unwrap();
        let ids = ec.component("input_batch.token_ids").unwrap();
        assert_eq!(ids.bytes, 5_242_880);
        assert_eq!(
            ids.formula,
            "max_num_seqs × max_model_len × 4 B = 256 × 5120 × 4"
        );
        assert_eq!(ids.exactness, Exactness::Exact);
        assert_eq!(
            ec.component("input_batch.is_token_ids").unwrap().bytes,
            1_310_720
        );
        let embeds = ec.component("runner.inputs_embeds").unwrap();
        assert_eq!(embeds.bytes, 64 << 20);
        assert!(embeds.pinned);
        // Weights are on the GPU: host RAM only while loading.
        for p in &e.processes {
            for c in &p.components {
                if c.category == Category::Weights {
                    assert_eq!(c.phase, Phase::Load, "{}", c.id);
                }
            }
        }
    }

    #[test]
    fn h100_default_is_1024_sequences() {
        let e = qwen3_8b("--max-model-len 5120", Version::V0_11);
        let ec = e.process(Role::EngineCore).unwrap();
        assert_eq!(
            ec.component("input_batch.token_ids").unwrap().bytes,
            20_971_520
        );
        assert_eq!(
            ec.component("block_table.block_table").unwrap().bytes,
            2_097_152
        );
    }

    #[test]
    fn structured_total_matches_the_worked_example() {
        // vllm-host-ram.md §11: 71.06 MiB at R=256 and 91.38 MiB at R=1024 (0.11).
        for (flags, mib) in [
            ("--max-model-len 5120 --max-num-seqs 256", 71.06),
            ("--max-model-len 5120", 91.38),
        ] {
            let e = qwen3_8b(flags, Version::V0_11);
            let ec = e.process(Role::EngineCore).unwrap();
            let sum: u64 = ec
                .components
                .iter()
                .filter(|c| {
                    c.id.starts_with("input_batch.")
                        || c.id.starts_with("block_table.")
                        || c.id.starts_with("runner.")
                        || c.id.starts_with("logits.")
                })
                .filter(|c| c.exactness == Exactness::Exact && c.phase == Phase::Steady)
                .map(|c| c.bytes)
                .sum();
            let got = sum as f64 / (1u64 << 20) as f64;
            assert!((got - mib).abs() < 0.05, "{flags}: {got} MiB");
        }
    }

    #[test]
    fn tensor_parallel_workers_each_read_the_weights() {
        let e = qwen3_8b("--max-model-len 5120 -tp 2", Version::V0_11);
        let w = e.process(Role::Worker).unwrap();
        assert_eq!(w.count, 2);
        assert!(w.component("weights.load.lazy").is_some());
        assert!(w.component("shm.worker_response_mq").is_some());
        assert!(e
            .process(Role::EngineCore)
            .unwrap()
            .component("runner.inputs_embeds")
            .is_none());
    }

    #[test]
    fn from_argv_reads_the_server_environment() {
        let argv: Vec<String> = [
            "python",
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            "qwen3-0.6b",
            "--max-model-len",
            "5120",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let options = Options {
            device: Device::Cpu,
            version: Version::V0_32,
            ..Options::default()
        };
        let env = [("VLLM_CPU_KVCACHE_SPACE".to_string(), "2".to_string())];
        let e = from_argv(&argv, &env, &options, &|_| None).unwrap();
        let w = e.process(Role::Worker).unwrap();
        let kv = w.component("kv_cache.cpu").unwrap();
        assert!(
            kv.bytes <= 2 << 30 && kv.bytes > (2 << 30) - (64 << 20),
            "{}",
            kv.bytes
        );
    }

    #[test]
    fn v2_runner_drops_inputs_embeds() {
        let e = qwen3_8b("--max-model-len 5120", Version::V0_33);
        let ec = e.process(Role::EngineCore).unwrap();
        assert!(ec.component("runner.inputs_embeds").is_none());
        assert_eq!(ec.component("v2.all_token_ids").unwrap().bytes, 32 << 20);
    }
}
