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
use crate::engines::vllm::defaults::{self, Context, Gpu, ResolveError};
use crate::engines::vllm::{components, source_lines};
use crate::engines::vllm::{Device, Version};
use crate::model::{Model, ModelError};
use crate::proc::roles::Role;
use crate::units::Checked;

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
    /// An exact component: bytes from a formula. A [`Checked`] value that is too large is kept
    /// as `u64::MAX`, which [`estimate`] turns into an error.
    pub fn exact(
        id: &str,
        bytes: impl Into<Checked>,
        category: Category,
        formula: String,
        source: &str,
        version: &str,
    ) -> Component {
        let bytes = bytes.into().raw();
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

    /// Turns this into an estimate between `low` and `high` (widened to include `bytes`, so
    /// low ≤ bytes ≤ high holds whatever the formulas give).
    pub fn range(mut self, low: impl Into<Checked>, high: impl Into<Checked>) -> Component {
        self.exactness = Exactness::Estimated;
        self.set_range(low.into(), high.into());
        self
    }

    /// Marks this as a measured baseline, with where it was measured.
    pub fn calibrated(
        mut self,
        provenance: &str,
        low: impl Into<Checked>,
        high: impl Into<Checked>,
    ) -> Component {
        self.exactness = Exactness::Calibrated;
        self.provenance = Some(provenance.to_string());
        self.set_range(low.into(), high.into());
        self
    }

    /// Replaces the point value, keeping the range around it.
    pub fn with_bytes(mut self, bytes: impl Into<Checked>) -> Component {
        self.bytes = bytes.into().raw();
        let (low, high) = (Checked::new(self.low_bytes), Checked::new(self.high_bytes));
        self.set_range(low, high);
        self
    }

    fn set_range(&mut self, low: Checked, high: Checked) {
        let bytes = Checked::new(self.bytes);
        self.low_bytes = low.min(bytes).raw();
        self.high_bytes = high.max(bytes).raw();
    }

    pub fn load_only(mut self) -> Component {
        self.phase = Phase::Load;
        self
    }

    pub fn mapped(mut self, bytes: impl Into<Checked>) -> Component {
        self.mapped_bytes = Some(bytes.into().raw());
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
    /// Sums the components (checked: a sum too large is `u64::MAX`, refused by [`estimate`]).
    pub fn new(role: Role, title: &str, count: u64, components: Vec<Component>) -> ProcessEstimate {
        let sum = |phase: Phase, field: fn(&Component) -> u64| -> Checked {
            components
                .iter()
                .filter(|c| c.phase == phase)
                .map(|c| Checked::new(field(c)))
                .sum()
        };
        let steady_bytes = sum(Phase::Steady, |c| c.bytes);
        let load = sum(Phase::Load, |c| c.bytes);
        ProcessEstimate {
            role,
            title: title.to_string(),
            count,
            steady_bytes: steady_bytes.raw(),
            peak_bytes: (steady_bytes + load).raw(),
            low_bytes: sum(Phase::Steady, |c| c.low_bytes).raw(),
            high_bytes: sum(Phase::Steady, |c| c.high_bytes).raw(),
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
    /// A byte count does not fit in 64 bits: the flags or the model ask for the impossible.
    #[error("{what} needs more than 16 EiB of host RAM, more than a 64-bit machine can address: check the flags and the model's config")]
    TooLarge { what: String },
    /// A component or sum whose range does not hold its point value (a bug in ramscope).
    #[error("internal error: {what}: low {low} ≤ bytes {bytes} ≤ high {high} does not hold")]
    Inconsistent {
        what: String,
        low: u64,
        bytes: u64,
        high: u64,
    },
}

/// Refuses a `u64::MAX` (too large) value and a range that does not hold its point value.
fn check_range(
    what: &dyn Fn() -> String,
    low: u64,
    bytes: u64,
    high: u64,
) -> Result<(), EstimateError> {
    if [low, bytes, high].contains(&u64::MAX) {
        return Err(EstimateError::TooLarge { what: what() });
    }
    let ordered = low <= bytes && bytes <= high;
    debug_assert!(ordered, "{}: {low} ≤ {bytes} ≤ {high}", what());
    if !ordered {
        return Err(EstimateError::Inconsistent {
            what: what(),
            low,
            bytes,
            high,
        });
    }
    Ok(())
}

/// Every component and process: no too-large value, low ≤ bytes ≤ high, peak ≥ steady.
fn check_processes(processes: &[ProcessEstimate]) -> Result<(), EstimateError> {
    for p in processes {
        if p.count == u64::MAX {
            return Err(EstimateError::TooLarge {
                what: format!("{} with 2^64 or more processes", p.title),
            });
        }
        for c in &p.components {
            let what = || format!("{} in {}", c.id, p.title);
            check_range(&what, c.low_bytes, c.bytes, c.high_bytes)?;
            if c.mapped_bytes == Some(u64::MAX) {
                return Err(EstimateError::TooLarge { what: what() });
            }
        }
        let what = || p.title.clone();
        check_range(&what, p.low_bytes, p.steady_bytes, p.high_bytes)?;
        check_range(&what, p.steady_bytes, p.peak_bytes, u64::MAX - 1)?;
    }
    Ok(())
}

/// The sums over processes, each times its count, checked.
fn total_of(
    processes: &[ProcessEstimate],
    page_cache_bytes: u64,
    shm_mapped_bytes: u64,
) -> Result<Total, EstimateError> {
    let mut steady = Checked::new(0);
    let mut peak = Checked::new(0);
    let mut low = Checked::new(0);
    let mut high = Checked::new(0);
    for p in processes {
        let n = Checked::new(p.count);
        let each = [p.steady_bytes, p.peak_bytes, p.low_bytes, p.high_bytes];
        if each.iter().any(|b| (n * *b).is_too_large()) {
            return Err(EstimateError::TooLarge {
                what: format!("{} × {}", p.count, p.title),
            });
        }
        steady = steady + n * p.steady_bytes;
        peak = peak + n * p.peak_bytes;
        low = low + n * p.low_bytes;
        high = high + n * p.high_bytes;
    }
    let total = Total {
        steady_bytes: steady.raw(),
        peak_bytes: peak.raw(),
        low_bytes: low.raw(),
        high_bytes: high.raw(),
        page_cache_bytes,
        shm_mapped_bytes,
    };
    let what = || "the total of all processes".to_string();
    check_range(&what, total.low_bytes, total.steady_bytes, total.high_bytes)?;
    check_range(&what, total.steady_bytes, total.peak_bytes, u64::MAX - 1)?;
    if shm_mapped_bytes == u64::MAX {
        return Err(EstimateError::TooLarge {
            what: "the /dev/shm segments".into(),
        });
    }
    Ok(total)
}

/// Predicts the host RAM of `vllm serve` for this model, flags and options.
/// The configuration vLLM would run with: its defaults for this release and device, with
/// the user's flags and environment applied.
pub fn configuration(
    model: &Model,
    args: &VllmArgs,
    options: &Options,
) -> Result<defaults::Resolved, EstimateError> {
    let mut env = options.env.clone();
    env.extend(args.env.clone());
    let cx = Context {
        version: options.version,
        device: options.device,
        gpu: &options.gpu,
        env: &env,
        host_memory_bytes: options.host_memory_bytes,
    };
    Ok(defaults::resolve(model, args, &cx)?)
}

pub fn estimate(
    model: &Model,
    args: &VllmArgs,
    options: &Options,
) -> Result<Estimate, EstimateError> {
    let resolved = configuration(model, args, options)?;
    let mut built = components::build(model, &resolved, &options.baselines, options);
    // Where the release's source allocates each component, from `ramscope scan` of it.
    for c in built
        .processes
        .iter_mut()
        .flat_map(|p| p.components.iter_mut())
    {
        if let Some(at) = source_lines::lookup(resolved.version, &c.id) {
            c.source = at;
        }
    }
    check_processes(&built.processes)?;
    let total = total_of(
        &built.processes,
        built.page_cache_bytes,
        built.shm_mapped_bytes,
    )?;
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

/// Fuzz entry point: any bytes as a vLLM argv. The first byte picks the version, the device
/// and whether the host's memory is known; the rest is split into words at NUL bytes and
/// whitespace and parsed. What parses is estimated with a bundled model (the one named, if
/// the catalog has it, else the default), touching no file. Never panics on its own: the
/// assertions are the invariants every estimate promises.
pub fn fuzz_argv(data: &[u8]) {
    let (selector, rest) = data.split_first().map_or((0, &[][..]), |(s, r)| (*s, r));
    let text = String::from_utf8_lossy(rest);
    let argv: Vec<String> = text
        .split(|c: char| c == '\0' || c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let Ok(args) = args::parse(&argv) else {
        return;
    };
    let model = args
        .model
        .as_deref()
        .and_then(Model::bundled)
        .unwrap_or_else(Model::default_model);
    let options = Options {
        version: Version::ALL[usize::from(selector) % Version::ALL.len()],
        device: if selector & 0x80 != 0 {
            Device::Cpu
        } else {
            Device::Cuda
        },
        host_memory_bytes: (selector & 0x40 != 0).then_some(64 << 30),
        cpu_cores: Some(16),
        ..Options::default()
    };
    match estimate(&model, &args, &options) {
        Ok(e) => {
            for p in &e.processes {
                for c in &p.components {
                    assert!(
                        c.low_bytes <= c.bytes && c.bytes <= c.high_bytes,
                        "{}",
                        c.id
                    );
                }
                assert!(p.low_bytes <= p.steady_bytes && p.steady_bytes <= p.high_bytes);
                assert!(p.steady_bytes <= p.peak_bytes);
            }
            let t = &e.total;
            assert!(t.low_bytes <= t.steady_bytes && t.steady_bytes <= t.high_bytes);
            assert!(t.steady_bytes <= t.peak_bytes);
        }
        Err(EstimateError::Inconsistent { .. }) => {
            panic!("an estimate broke low ≤ bytes ≤ high: {argv:?}")
        }
        Err(_) => {}
    }
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
        // docs/vllm-host-ram.md §3: 71.06 MiB at R=256 and 91.38 MiB at R=1024 (0.11).
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

    fn try_estimate(flags: &str, version: Version, device: Device) -> Result<Estimate, String> {
        let options = Options {
            version,
            device,
            host_memory_bytes: Some(64 << 30),
            ..Options::default()
        };
        let args = args::parse_str(flags).map_err(|e| e.to_string())?;
        estimate(&Model::default_model(), &args, &options).map_err(|e| e.to_string())
    }

    #[test]
    fn absurd_sizes_are_errors_not_wrapped_numbers() {
        let cuda = |flags: &str| try_estimate(flags, Version::V0_32, Device::Cuda);
        // Each of these printed a small or upside-down number before.
        for (flags, says) in [
            (
                "--max-model-len 4611686018427387904",
                "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1",
            ),
            (
                "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 vllm serve M --max-model-len 4611686018427387904",
                "needs more than 16 EiB",
            ),
            ("--kv-offloading-size 1e20", "needs more than 16 EiB"),
            (
                "--api-server-count 99999999999999",
                "needs more than 16 EiB",
            ),
            (
                "--max-num-seqs 18446744073709551615",
                "needs more than 16 EiB",
            ),
            (
                "--max-cudagraph-capture-size 1000000000000 --max-num-batched-tokens 1000000000000",
                "CUDA graphs",
            ),
            (
                "-tp 1 -pp 9223372036854775807 -dp 3",
                "needs more than 16 EiB",
            ),
        ] {
            let err = cuda(flags).expect_err(flags);
            assert!(err.contains(says), "{flags}: {err}");
        }
        let err = try_estimate(
            "VLLM_CPU_KVCACHE_SPACE=99999999999 vllm serve M",
            Version::V0_32,
            Device::Cpu,
        )
        .unwrap_err();
        assert!(err.contains("needs more than 16 EiB"), "{err}");
    }

    #[test]
    fn every_estimate_keeps_low_le_bytes_le_high() {
        let flags = [
            "--max-model-len 5120",
            "--max-model-len 40960 --max-num-seqs 1 --max-num-batched-tokens 40960",
            "-tp 2 -pp 2 -dp 2 --api-server-count 3",
            "--enable-lora --max-loras 4 --max-cpu-loras 8 --max-lora-rank 64",
            "--cpu-offload-gb 4 --enable-sleep-mode --kv-offloading-size 8",
            "--kv-offloading-size 8 --kv-offloading-backend lmcache",
            "--enforce-eager --safetensors-load-strategy eager",
            "--model-loader-extra-config {\"enable_multithread_load\":true}",
            "--num-gpu-blocks-override 0 --block-size 1",
            "--max-num-seqs 1000000 --max-num-batched-tokens 1000000",
        ];
        let mut estimated = 0;
        for version in Version::ALL {
            for device in [Device::Cuda, Device::Cpu] {
                for f in flags {
                    let Ok(e) = try_estimate(f, version, device) else {
                        continue;
                    };
                    estimated += 1;
                    for p in &e.processes {
                        for c in &p.components {
                            assert!(
                                c.low_bytes <= c.bytes && c.bytes <= c.high_bytes,
                                "{version} {device:?} {f}: {}",
                                c.id
                            );
                        }
                    }
                    let t = &e.total;
                    assert!(t.low_bytes <= t.steady_bytes && t.steady_bytes <= t.high_bytes);
                }
            }
        }
        assert!(estimated > 60, "only {estimated} estimates ran");
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn a_range_that_misses_its_value_is_an_error() {
        let what = || "x".to_string();
        assert!(matches!(
            check_range(&what, 5, 4, 6),
            Err(EstimateError::Inconsistent { .. })
        ));
        assert!(matches!(
            check_range(&what, 0, u64::MAX, u64::MAX),
            Err(EstimateError::TooLarge { .. })
        ));
    }

    #[test]
    fn fuzz_entry_survives_odd_argv() {
        for data in [
            &b""[..],
            b"\x00--max-model-len\x005120",
            b"\xc0qwen3-0.6b -tp 2 --max-num-seqs 0",
            b"\x41VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 vllm serve qwen3-8b --max-model-len 9999999999999",
            b"\xffgpt-oss-20b --cudagraph-capture-sizes 1 2 18446744073709551614",
            b"\x02--cpu-offload-gb 1e300",
        ] {
            fuzz_argv(data);
        }
    }

    #[test]
    fn v2_runner_drops_inputs_embeds() {
        let e = qwen3_8b("--max-model-len 5120", Version::V0_33);
        let ec = e.process(Role::EngineCore).unwrap();
        assert!(ec.component("runner.inputs_embeds").is_none());
        assert_eq!(ec.component("v2.all_token_ids").unwrap().bytes, 32 << 20);
    }
}
