//! Ollama behind the [`Engine`] trait. A launch resolves its model in Ollama's store
//! ([`super::store`]), Ollama's settings for it ([`super::config`]), and lists:
//!
//! - the runner, as the llama engine estimates the llama-server command line Ollama builds,
//!   counted OLLAMA_MAX_LOADED_MODELS times: the worst case, every loaded model the size of
//!   this one, each in its own runner;
//! - the `ollama serve` Go process, an estimated range (docs/ollama-host-ram.md §7).
//!
//! Its [`Launch::refusal`] is Ollama's own check of the release ([`super::refusal`]).

use std::collections::BTreeMap;

use serde_json::json;

use crate::attribute::Category;
use crate::engines::llama::engine::{model_of_gguf, LlamaCpp};
use crate::engines::llama::listing as llama_listing;
use crate::engines::{Candidate, Engine, EngineError, Launch, Options};
use crate::footprint::{Component, Device, Estimate, Listing, ProcessEstimate, ReleaseAssumed};
use crate::gguf;
use crate::host::{HostMemory, Refusal};
use crate::model::{Model, ModelError, ModelSource};
use crate::proc::roles::{Engine as ProcessEngine, Role};
use crate::server::ServerLaunch;
use crate::units::{bytes, Checked};

use super::args::{self, OllamaArgs, MODEL_VARIABLE};
use super::config::{self, Host, Resolved};
use super::refusal::{self, Verdict};
use super::releases::{self, Release, Version};
use super::store::{self, StoredModel};

/// Ollama, for the registry ([`crate::engines::ALL`]).
#[derive(Debug, Clone, Copy)]
pub struct Ollama;

/// Variables `ollama serve` reads that change host RAM, those its llama-server runners
/// inherit, and where the store is.
const ENVIRONMENT: &[&str] = &[
    "OLLAMA_NUM_PARALLEL",
    "OLLAMA_MAX_LOADED_MODELS",
    "OLLAMA_CONTEXT_LENGTH",
    "OLLAMA_KV_CACHE_TYPE",
    "OLLAMA_FLASH_ATTENTION",
    "OLLAMA_GPU_OVERHEAD",
    "OLLAMA_MODELS",
    "LLAMA_ARG_CACHE_RAM",
    "LLAMA_ARG_CTX_CHECKPOINTS",
    "LLAMA_ARG_REPACK",
    "LLAMA_ARG_NO_HOST",
    "GGML_CUDA_NO_PINNED",
    "HOME",
    MODEL_VARIABLE,
];

/// The `ollama serve` process: the Go server's heap and code. Not measured by ramscope;
/// ollama/ollama#7754 reports about 50 MB for an idle 0.4.2 once the runners stopped being
/// embedded in it (docs/ollama-host-ram.md §7).
const SERVE_BYTES: u64 = 60 << 20;
const SERVE_LOW_BYTES: u64 = 30 << 20;
const SERVE_HIGH_BYTES: u64 = 250 << 20;

impl Engine for Ollama {
    fn name(&self) -> &'static str {
        "ollama"
    }

    fn title(&self) -> &'static str {
        "Ollama"
    }

    fn processes(&self) -> ProcessEngine {
        ProcessEngine::Ollama
    }

    fn releases(&self) -> Vec<String> {
        releases::boundaries()
            .iter()
            .map(Version::to_string)
            .collect()
    }

    fn release(&self, written: &str) -> Option<String> {
        Version::parse(written)
            .filter(|v| v.is_known())
            .map(|v| v.to_string())
    }

    fn read_release(&self, written: &str) -> Result<String, ReleaseAssumed> {
        releases::read(written).map(|v| v.to_string())
    }

    fn newest_release(&self) -> String {
        Version::NEWEST.to_string()
    }

    fn environment(&self) -> &'static [&'static str] {
        ENVIRONMENT
    }

    /// Ollama finds NVIDIA GPUs and falls back to the CPU, as llama-server does.
    fn default_device(&self) -> Device {
        LlamaCpp.default_device()
    }

    fn running(&self, server: &ServerLaunch, uses_gpu: bool) -> (Option<String>, Device) {
        let device = if uses_gpu { Device::Cuda } else { Device::Cpu };
        (server.version.clone(), device)
    }

    fn split_command_line(&self, line: &str) -> Result<Vec<String>, EngineError> {
        args::split_command_line(line).map_err(EngineError::new)
    }

    fn parse(&self, argv: &[String]) -> Result<Box<dyn Launch>, EngineError> {
        let args = args::parse(argv).map_err(EngineError::new)?;
        Ok(Box::new(OllamaLaunch { args }))
    }
}

/// An Ollama command line.
#[derive(Debug, Clone, PartialEq)]
pub struct OllamaLaunch {
    pub args: OllamaArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum OllamaError {
    #[error("Ollama: no model to estimate: use `ollama run NAME`, or put {MODEL_VARIABLE}=NAME (a name in Ollama's store or a .gguf path) in front of `ollama serve` or in --env")]
    NoModel,
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Gguf(#[from] gguf::GgufError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("Ollama {0} is not a release ramscope knows: known are {first} to {last}", first = Version::OLDEST, last = Version::NEWEST)]
    Release(String),
    #[error("{0} loaded models' files need more than 16 EiB of page cache: check OLLAMA_MAX_LOADED_MODELS")]
    TooLarge(u64),
}

fn fail(e: impl Into<OllamaError>) -> EngineError {
    EngineError::new(e.into())
}

impl OllamaLaunch {
    /// The environment `ollama serve` sees: `base`, then the line's own assignments.
    fn environment(&self, base: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut env = base.clone();
        env.extend(self.args.env.iter().cloned());
        env
    }

    /// The model named by the line or by [`MODEL_VARIABLE`] in `env`.
    fn spec(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        self.args
            .model
            .clone()
            .or_else(|| env(MODEL_VARIABLE))
            .filter(|s| !s.trim().is_empty())
    }

    fn stored(&self, env: &BTreeMap<String, String>) -> Result<StoredModel, EngineError> {
        let get = |k: &str| env.get(k).cloned();
        let spec = self.spec(&get).ok_or_else(|| fail(OllamaError::NoModel))?;
        let dir = store::models_dir(&get).map_err(fail)?;
        store::resolve(spec.trim(), &dir).map_err(fail)
    }
}

impl Launch for OllamaLaunch {
    fn engine(&self) -> &'static dyn Engine {
        &Ollama
    }

    fn model(&self) -> Option<&str> {
        self.args.model.as_deref()
    }

    fn resolve_model(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Result<Model, ModelError>> {
        // The line's own assignments come first, then ramscope's environment.
        let line = |k: &str| {
            self.args
                .env
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .or_else(|| env(k))
        };
        let spec = self.spec(&line)?;
        let found = store::models_dir(&line).and_then(|dir| store::resolve(spec.trim(), &dir));
        Some(match found {
            Ok(m) => model_of_gguf(&m.gguf).map(|mut model| {
                model.name = m.name;
                model
            }),
            Err(e) => Err(ModelError::Gguf(e.to_string())),
        })
    }

    fn use_example_if_empty(&mut self) {
        // No model ships with ramscope: an Ollama estimate needs one in the user's store.
    }

    fn list(&self, model: &Model, options: &Options) -> Result<Listing, EngineError> {
        let env = self.environment(&options.env);
        let release = match &options.release {
            Some(r) => Version::parse(r)
                .filter(|v| v.is_known())
                .ok_or_else(|| fail(OllamaError::Release(r.clone())))?,
            None => Version::NEWEST,
        };
        let release = Release::of(release);
        let get = |k: &str| env.get(k).cloned();
        let stored = match (self.spec(&get), &model.source) {
            (Some(_), _) => self.stored(&env)?,
            // A model the caller resolved itself (a GGUF path) with no name in the line.
            (None, ModelSource::Gguf(path)) => store::gguf_file(path),
            (None, _) => return Err(fail(OllamaError::NoModel)),
        };
        let info = gguf::read_header(&stored.gguf).map_err(fail)?;
        let host = Host {
            device: options.device,
            vram_bytes: (options.device == Device::Cuda).then_some(options.gpu.memory_bytes),
            integrated_gpu: false,
        };
        let resolved = config::resolve(release, host, &env, &stored, &info).map_err(fail)?;
        let llama_options = Options {
            release: None,
            release_assumed: None,
            env: env.clone(),
            ..options.clone()
        };
        let runner = llama_listing(&info, &resolved.llama, &llama_options)?;
        assemble(&resolved, &stored, runner)
    }

    fn candidates(&self, base: &Estimate, env: &BTreeMap<String, String>) -> Vec<Candidate> {
        let mut out = Vec::new();
        let with = |name: &str, value: &str| {
            let mut launch = self.clone();
            launch.args.env.retain(|(k, _)| k != name);
            launch.args.env.push((name.to_string(), value.to_string()));
            let mut env = env.clone();
            env.insert(name.to_string(), value.to_string());
            (Box::new(launch) as Box<dyn Launch>, env)
        };
        let runners = base
            .processes
            .iter()
            .find(|p| p.role == Role::Worker)
            .map_or(0, |p| p.count);
        let cache = base
            .processes
            .iter()
            .filter(|p| p.role == Role::Worker)
            .flat_map(|p| &p.components)
            .find(|c| c.id == "prompt_cache");
        if let Some(c) = cache.filter(|c| c.bytes > 1 << 30) {
            let (launch, env) = with("LLAMA_ARG_CACHE_RAM", "1024");
            out.push(Candidate {
                action: format!("LLAMA_ARG_CACHE_RAM=1024 (now {})", bytes(c.bytes)),
                why: "Ollama passes no --cache-ram, so each llama-server runner may keep up to llama.cpp's default of prompt state in host RAM; the runner inherits this variable (ollama/ollama#18264)".into(),
                peak_only: false,
                launch,
                env,
            });
        }
        if runners > 1 {
            let (launch, env) = with("OLLAMA_MAX_LOADED_MODELS", "1");
            out.push(Candidate {
                action: format!("OLLAMA_MAX_LOADED_MODELS=1 (now {runners})"),
                why: "every loaded model is its own runner process with its own buffers and prompt cache".into(),
                peak_only: false,
                launch,
                env,
            });
        }
        out
    }

    fn refusal(&self, estimate: &Estimate, host: &HostMemory) -> Option<Refusal> {
        let version = Version::parse(&estimate.engine_version)?;
        let required = required_bytes(estimate);
        match refusal::check(&Release::of(version), required, host) {
            Verdict::Refused(r) => Some(r),
            _ => None,
        }
    }

    /// A runner's log is llama-server's (Ollama forces `--log-verbosity 4` on it).
    fn reconcile_log(
        &self,
        estimate: &Estimate,
        log: &str,
    ) -> Result<Vec<crate::footprint::LogMatch>, EngineError> {
        Ok(crate::engines::llama::evidence::reconcile(estimate, log))
    }

    fn clone_box(&self) -> Box<dyn Launch> {
        Box::new(self.clone())
    }
}

/// The runner's components Ollama's check counts as the model's host side (its weights on
/// the CPU, KV cache on the CPU and compute graph; before 0.13 its own estimate of the same,
/// docs/ollama-host-ram.md §6): one runner, the model being loaded. Ollama counts each CPU
/// weight once, so repacked copies count only when the weights are not mapped (then they are
/// the only copy of those tensors).
pub fn required_bytes(estimate: &Estimate) -> u64 {
    let components: Vec<&Component> = estimate
        .processes
        .iter()
        .filter(|p| p.role == Role::Worker)
        .flat_map(|p| &p.components)
        .collect();
    let mapped = components.iter().any(|c| c.id == "weights.mapped");
    components
        .iter()
        .filter(|c| match c.id.as_str() {
            "weights.mapped" | "weights.allocated" | "mmproj.weights" | "kv_cache"
            | "compute_buffer" => true,
            "weights.repacked" => !mapped,
            _ => false,
        })
        .map(|c| Checked::new(c.bytes))
        .sum::<Checked>()
        .raw()
}

/// Ollama's listing: the runner (as the llama engine listed it) × the loaded models, and the
/// `ollama serve` process.
fn assemble(r: &Resolved, stored: &StoredModel, runner: Listing) -> Result<Listing, EngineError> {
    let release = r.release;
    let generation = release.generation.value;
    let count = r.max_loaded.value;
    let mut processes: Vec<ProcessEstimate> = runner
        .processes
        .into_iter()
        .map(|p| ProcessEstimate::new(Role::Worker, generation.runner_title(), count, p.components))
        .collect();
    let serve = Component::exact(
        "ollama.server",
        SERVE_BYTES,
        Category::Heap,
        "the Go server's heap, runtime and code: not measured by ramscope".into(),
        "ollama/ollama#7754 (docs/ollama-host-ram.md §7)",
        &release.version.to_string(),
    )
    .range(SERVE_LOW_BYTES, SERVE_HIGH_BYTES)
    .note("an estimate: grows with concurrent requests (their JSON bodies and images)");
    processes.insert(
        0,
        ProcessEstimate::new(Role::ApiServer, "ollama serve", 1, vec![serve]),
    );

    let mut notes = vec![
        format!("num_ctx {}: {}", r.num_ctx.value, r.num_ctx.why),
        format!(
            "num_parallel {}: {}",
            r.num_parallel.value, r.num_parallel.why
        ),
        if count > 1 {
            format!(
                "{count} runners: {}; the worst case is counted, {count} loaded models the size of this one, each in its own runner (OLLAMA_MAX_LOADED_MODELS=1 counts one)",
                r.max_loaded.why
            )
        } else {
            format!("1 runner: {}", r.max_loaded.why)
        },
        format!(
            "mmap {}: {}",
            if r.use_mmap.value { "on" } else { "off" },
            r.use_mmap.why
        ),
        format!("num_batch {}: {}", r.batch.value, r.batch.why),
    ];
    match release.llama_cpp_build.value {
        Some(build) => notes.push(format!(
            "Ollama {} ships llama.cpp {build} ({}); its llama-server is estimated with the llama.cpp release ramscope has read ({})",
            release.version, release.llama_cpp_build.at, runner.engine_version
        )),
        None => notes.push(format!(
            "Ollama {} runs `ollama runner` with llama.cpp linked in; its buffers are estimated as llama.cpp {}'s, with no llama-server prompt cache",
            release.version, runner.engine_version
        )),
    }
    for note in r.notes.iter().chain(&runner.notes) {
        if !notes.contains(note) {
            notes.push(note.clone());
        }
    }

    let mut args = BTreeMap::new();
    args.insert("model".to_string(), json!(stored.name));
    args.insert("num_ctx".to_string(), json!(r.num_ctx.value));
    args.insert("num_parallel".to_string(), json!(r.num_parallel.value));
    args.insert("max_loaded_models".to_string(), json!(count));
    args.insert("use_mmap".to_string(), json!(r.use_mmap.value));
    args.insert(
        "kv_cache_type".to_string(),
        json!(r.kv_cache_type.as_ref().map(|t| t.value.clone())),
    );
    args.insert("num_batch".to_string(), json!(r.batch.value));
    args.insert("runner".to_string(), json!(generation.runner_title()));
    args.insert("runner_flags".to_string(), json!(r.llama.given.join(" ")));
    args.insert(
        "llama_cpp_build".to_string(),
        json!(release.llama_cpp_build.value),
    );
    // What the runner resolved to, under the llama engine's names.
    for key in [
        "ctx_size",
        "parallel",
        "kv_unified",
        "cache_ram_mib",
        "load_mode",
        "n_gpu_layers",
    ] {
        if let Some(v) = runner.args.get(key) {
            args.insert(format!("runner.{key}"), v.clone());
        }
    }
    notes.push(format!("model {}: {}", stored.name, stored.gguf.display()));

    // Each loaded model's file passes through the page cache.
    let page_cache_bytes = (Checked::new(runner.page_cache_bytes) * count)
        .get()
        .ok_or_else(|| fail(OllamaError::TooLarge(count)))?;
    Ok(Listing {
        engine_version: release.version.to_string(),
        device: runner.device,
        gpu: runner.gpu,
        args,
        processes,
        page_cache_bytes,
        shm_mapped_bytes: 0,
        notes,
    })
}

#[cfg(test)]
mod tests;
