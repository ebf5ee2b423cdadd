//! Serving engines whose host memory ramscope can predict, each one folder behind one trait.
//!
//! An [`Engine`] recognises its processes and parses its command line into a [`Launch`]; a
//! launch names its model, lists the processes and components it will run (the estimate
//! model of [`crate::footprint`]) and suggests changes worth pricing ([`Candidate`]).
//! [`ALL`] is the registry: the estimate driver, `explain` and the commands reach an engine
//! only through it, so adding one is its folder and one line there (a test below fails when a
//! module outside this folder names an engine's own module).

pub mod llama;
pub mod ollama;
pub mod vllm;

use std::collections::BTreeMap;

use crate::calibrate::Baselines;
use crate::footprint::{Device, Estimate, Listing, LogMatch, ReleaseAssumed};
use crate::gpu::Gpu;
use crate::host::{HostMemory, Refusal};
use crate::model::{Model, ModelError};
use crate::proc::roles::{self, Engine as ProcessEngine, Role};
use crate::scan::check::Check;
use crate::scan::{Bindings, Scan};
use crate::server::ServerLaunch;

/// Every engine ramscope can estimate, one line each. The first is the default for a command
/// line that does not say which engine it starts (a model and flags alone).
pub static ALL: &[&dyn Engine] = &[
    &vllm::engine::Vllm,
    &llama::engine::LlamaCpp,
    &ollama::engine::Ollama,
];

/// A serving engine: how to recognise it, read its command line, and estimate it.
pub trait Engine: Sync {
    /// The name in JSON (`"engine": "vllm"`) and for [`named`].
    fn name(&self) -> &'static str;
    /// The name people write (`vLLM`).
    fn title(&self) -> &'static str;
    /// What [`crate::proc::roles`] tags this engine's processes with when it measures a tree.
    fn processes(&self) -> ProcessEngine;
    /// The releases whose defaults and buffers this engine knows, oldest first, as
    /// [`Options::release`] takes them.
    fn releases(&self) -> Vec<String>;
    /// A release as written (`0.11.0`, `v0.10.2`, `0.32.0+cpu`) in the form
    /// [`Options::release`] takes; `None` when it is not one of [`Engine::releases`].
    fn release(&self, written: &str) -> Option<String>;
    /// The release to estimate for a version as written: a known one ([`Engine::release`]),
    /// or the nearest known one assumed in its place, with why.
    fn read_release(&self, written: &str) -> Result<String, ReleaseAssumed> {
        self.release(written).ok_or_else(|| ReleaseAssumed {
            requested: Some(written.trim().to_string()),
            used: self.newest_release(),
            reason: "not a release ramscope has read".into(),
        })
    }
    /// The newest release known: what an estimate assumes when no release is given.
    fn newest_release(&self) -> String;
    /// Environment variables that change host RAM, read from ramscope's own environment when
    /// a command line is estimated without a running server.
    fn environment(&self) -> &'static [&'static str];
    /// The device a command line is estimated for when neither `--device` nor a running
    /// server says: vLLM is a GPU server first.
    fn default_device(&self) -> Device {
        Device::Cuda
    }
    /// The version installed for a running server as its installation writes it (when it
    /// says; [`Engine::read_release`] reads it) and the device it runs on, from what it was
    /// started with and whether its tree maps a GPU.
    fn running(&self, server: &ServerLaunch, uses_gpu: bool) -> (Option<String>, Device);
    /// Splits a command line as a user pastes it into words (quotes, backslashes).
    fn split_command_line(&self, line: &str) -> Result<Vec<String>, EngineError>;
    /// Parses the engine's flags, or a whole command line with its launcher and any leading
    /// `NAME=VALUE` environment assignments.
    fn parse(&self, argv: &[String]) -> Result<Box<dyn Launch>, EngineError>;
    /// Joins a scan of this engine's source with an estimate made at `config` for the same
    /// release (`ramscope scan --check`); `None` when the engine has no table of the source
    /// sites its components model.
    fn check_source(
        &self,
        scan: &Scan,
        estimate: &Estimate,
        config: &SourceConfig,
        threshold: u64,
        version_assumed: Option<String>,
    ) -> Option<Check> {
        let _ = (scan, estimate, config, threshold, version_assumed);
        None
    }
}

/// A command line (and the environment written in front of it) as its engine parsed it.
pub trait Launch: std::fmt::Debug + Send + Sync {
    /// The engine that parsed it.
    fn engine(&self) -> &'static dyn Engine;
    /// The model as the command line names it (a folder, a Hub id), if it names one.
    fn model(&self) -> Option<&str>;
    /// The model the command line names, read (`env` finds the Hugging Face cache); `None`
    /// when it names none.
    fn resolve_model(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Result<Model, ModelError>> {
        self.model().map(|spec| Model::resolve(spec, env))
    }
    /// Makes a command line that sets nothing at all the engine's built-in example.
    fn use_example_if_empty(&mut self);
    /// The processes this command line starts for `model`, with their components: the
    /// defaults of the release and device in `options` applied.
    fn list(&self, model: &Model, options: &Options) -> Result<Listing, EngineError>;
    /// Changes worth pricing against `base` (this launch's estimate, made with the
    /// environment `env`), each with the command line and environment it gives.
    fn candidates(&self, base: &Estimate, env: &BTreeMap<String, String>) -> Vec<Candidate>;
    /// The configuration a scan of the engine's source is evaluated at (`ramscope scan
    /// --config`).
    fn source_config(&self, model: &Model, options: &Options) -> Result<SourceConfig, EngineError> {
        let _ = (model, options);
        Err(EngineError::new(Unsupported {
            engine: self.engine().title(),
            what: "scanning its source",
        }))
    }
    /// Whether the engine itself refuses to start on `host`, by its own check (Ollama
    /// compares what it thinks the model needs with `memory.max − memory.current`); `None`
    /// when it would start (or the engine does no such check). The kernel's verdict is the
    /// fit check's, not this.
    fn refusal(&self, estimate: &Estimate, host: &HostMemory) -> Option<Refusal> {
        let _ = (estimate, host);
        None
    }
    /// The buffers the engine's own log printed (`log`, as the server wrote it) beside the
    /// components of `estimate` that predict them.
    fn reconcile_log(&self, estimate: &Estimate, log: &str) -> Result<Vec<LogMatch>, EngineError> {
        let _ = (estimate, log);
        Err(EngineError::new(Unsupported {
            engine: self.engine().title(),
            what: "reading its log",
        }))
    }
    fn clone_box(&self) -> Box<dyn Launch>;
}

impl Clone for Box<dyn Launch> {
    fn clone(&self) -> Box<dyn Launch> {
        self.clone_box()
    }
}

/// Everything an estimate takes besides the model and the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// The engine release (`0.11`), as [`Engine::release`] gives it; `None`: the newest.
    pub release: Option<String>,
    /// Set when `release` stands in for a version ramscope has not read; the estimate
    /// carries it so every report can say so.
    pub release_assumed: Option<ReleaseAssumed>,
    pub device: Device,
    pub gpu: Gpu,
    /// Environment variables the engine will see (those in the command line are added on top).
    pub env: BTreeMap<String, String>,
    /// Runtime baselines: built in, or from `ramscope calibrate`.
    pub baselines: Baselines,
    /// `MemTotal` of the host (CPU backend without a fixed KV size).
    pub host_memory_bytes: Option<u64>,
    /// CPU cores of the host (CPU backend all-reduce buffers).
    pub cpu_cores: Option<u64>,
    /// torch and Python versions of the server's environment, when known (a running server):
    /// the built-in baselines say when they were measured on others.
    pub torch_version: Option<String>,
    pub python_version: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            release: None,
            release_assumed: None,
            device: Device::Cuda,
            gpu: Gpu::default_gpu(),
            env: BTreeMap::new(),
            baselines: Baselines::built_in(),
            host_memory_bytes: None,
            cpu_cores: None,
            torch_version: None,
            python_version: None,
        }
    }
}

/// A change an engine suggests; `explain` prices it by estimating again with it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// What to do, as the user would type it (`--max-num-seqs 128 (now 256)`).
    pub action: String,
    pub why: String,
    /// What the change saves is load-peak memory, not steady-state memory.
    pub peak_only: bool,
    /// The command line with the change.
    pub launch: Box<dyn Launch>,
    /// The whole environment the engine sees with the change.
    pub env: BTreeMap<String, String>,
}

/// A configuration a scan of an engine's source is evaluated at.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    /// The values of the names the scan's formulas use.
    pub bindings: Bindings,
    /// Whether allocations that pin when they can are pinned (and rounded up).
    pub pin_memory: bool,
    /// The release and device the configuration resolved to.
    pub release: String,
    pub device: Device,
    /// The settings that size most buffers, for a heading (`max_num_seqs 256 · …`).
    pub settings: String,
}

/// What an engine refuses (a flag, a configuration it cannot run), in the engine's words.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct EngineError(Box<dyn std::error::Error + Send + Sync>);

impl EngineError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> EngineError {
        EngineError(Box::new(e))
    }
}

/// Something an engine does not offer.
#[derive(Debug, thiserror::Error)]
#[error("{engine}: {what} is not supported")]
struct Unsupported {
    engine: &'static str,
    what: &'static str,
}

/// The registered engine called `name` (`vllm`).
pub fn named(name: &str) -> Option<&'static dyn Engine> {
    ALL.iter().copied().find(|e| e.name() == name)
}

/// The engine ramscope falls back to when a command line does not say which it starts.
pub fn default_engine() -> &'static dyn Engine {
    ALL[0]
}

/// The registered engine whose processes [`crate::proc::roles`] tags `tag`.
pub fn for_processes(tag: ProcessEngine) -> Option<&'static dyn Engine> {
    ALL.iter().copied().find(|e| e.processes() == tag)
}

/// The engine a command line starts (`vllm serve …`, `python -m vllm.entrypoints…`), read
/// past `--`, `env` and `NAME=VALUE` words; [`default_engine`] for flags alone.
pub fn for_command(argv: &[String]) -> &'static dyn Engine {
    let is_assignment = |w: &String| {
        w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    let start = argv
        .iter()
        .position(|w| w != "--" && w != "env" && !is_assignment(w))
        .unwrap_or(argv.len());
    let command = &argv[start..];
    let program = command
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .unwrap_or("");
    let id = roles::identify(program, command);
    match for_processes(id.engine) {
        Some(engine) if id.role == Role::ApiServer => engine,
        // `ollama run NAME` is a client, but it names the model its server will load.
        Some(engine) if id.engine == ProcessEngine::Ollama => engine,
        _ => default_engine(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn every_engine_is_found_by_its_names_and_releases() {
        assert!(!ALL.is_empty());
        for e in ALL {
            assert_eq!(named(e.name()).map(|f| f.name()), Some(e.name()));
            assert_eq!(
                for_processes(e.processes()).map(|f| f.name()),
                Some(e.name())
            );
            let releases = e.releases();
            assert!(releases.contains(&e.newest_release()), "{}", e.name());
            for r in &releases {
                assert_eq!(e.release(r).as_ref(), Some(r), "{} {r}", e.name());
            }
        }
        assert!(named("no-such-engine").is_none());
    }

    #[test]
    fn a_command_line_picks_its_engine() {
        let vllm = |line: &str| for_command(&words(line)).name();
        assert_eq!(vllm("vllm serve Qwen/Qwen3-8B"), "vllm");
        assert_eq!(
            vllm("-- env VLLM_X=1 /venv/bin/python -m vllm.entrypoints.openai.api_server"),
            "vllm"
        );
        // Flags alone say nothing: the default engine.
        assert_eq!(
            for_command(&words("--max-model-len 5120")).name(),
            default_engine().name()
        );
        assert_eq!(for_command(&[]).name(), default_engine().name());
        assert_eq!(vllm("llama-server -m m.gguf -c 4096"), "llama.cpp");
        assert_eq!(vllm("OLLAMA_NUM_PARALLEL=2 ollama serve"), "ollama");
        assert_eq!(vllm("ollama run qwen3:8b"), "ollama");
    }

    /// Lines of `text` that name one of `modules` under `engines::` (`engines::vllm::args`,
    /// `engines::{vllm, …}`), with their line numbers.
    fn naming_lines(text: &str, modules: &[&str]) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let names = |path: &str| {
                modules.iter().any(|m| {
                    path.strip_prefix(m).is_some_and(|rest| {
                        !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                    })
                })
            };
            let hit = line.match_indices("engines::").any(|(at, _)| {
                let path = &line[at + "engines::".len()..];
                match path.strip_prefix('{') {
                    Some(group) => group
                        .split(['}', ';'])
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .any(|item| names(item.trim())),
                    None => names(path),
                }
            });
            if hit {
                out.push((i + 1, line.trim().to_string()));
            }
        }
        out
    }

    #[test]
    fn finds_an_engine_named_outside_the_registry() {
        let modules = ["vllm"];
        let text = "use crate::engines::vllm::args;\nuse crate::engines::{self, vllm};\nuse crate::engines::vllmish;\nuse crate::engines::{Engine, Launch};\nlet e = crate::engines::vllm::engine::Vllm;";
        let lines: Vec<usize> = naming_lines(text, &modules)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(lines, [1, 2, 5]);
    }

    /// Only this folder names an engine's own module: every other module reaches engines
    /// through the registry.
    #[test]
    fn the_registry_is_the_only_place_engines_are_named() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let engines = src.join("engines");
        // Every folder here is one engine's module (`engines::vllm`, `engines::llama`).
        let names: Vec<String> = std::fs::read_dir(&engines)
            .expect("src/engines is readable")
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.len() >= ALL.len(), "{names:?}");
        let modules: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut offenders = Vec::new();
        let mut folders = vec![src.clone()];
        let mut files = 0;
        while let Some(dir) = folders.pop() {
            let entries = std::fs::read_dir(&dir).expect("src/ is readable");
            for entry in entries.flatten() {
                let path = entry.path();
                if path == engines {
                    continue;
                }
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|x| x == "rs") {
                    files += 1;
                    let text = std::fs::read_to_string(&path).expect("a readable source file");
                    for (n, line) in naming_lines(&text, &modules) {
                        let at = path.strip_prefix(&src).unwrap_or(&path).display();
                        offenders.push(format!("src/{at}:{n}: {line}"));
                    }
                }
            }
        }
        assert!(files > 50, "only {files} files under {}", src.display());
        assert!(
            offenders.is_empty(),
            "engines named outside src/engines (use engines::ALL / named / for_command):\n{}",
            offenders.join("\n")
        );
    }
}
