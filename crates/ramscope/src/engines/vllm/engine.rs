//! vLLM behind the [`Engine`] trait: its processes (`vllm serve`, `VLLM::EngineCore`), its
//! command line ([`super::args`]), its defaults per release and device ([`super::defaults`]),
//! its components ([`super::components`], with where each release allocates them from
//! [`super::source_lines`]), its advice ([`super::advice`]) and its source check
//! ([`super::scan_check`] against the table of [`super::sites`]).

use std::collections::BTreeMap;

use crate::engines::{Candidate, Engine, EngineError, Launch, Options, SourceConfig};
use crate::footprint::{Device, Estimate, Listing, ReleaseAssumed};
use crate::model::Model;
use crate::proc::roles::Engine as ProcessEngine;
use crate::scan::check::Check;
use crate::scan::Scan;
use crate::server::ServerLaunch;

use super::args::{self, VllmArgs};
use super::defaults::{self, Context, ResolveError, Resolved};
use super::{advice, cited_lines, components, scan_check, sites, source_lines, version, Version};

/// vLLM, for the registry ([`crate::engines::ALL`]).
#[derive(Debug, Clone, Copy)]
pub struct Vllm;

/// vLLM environment variables that change host RAM.
const ENVIRONMENT: &[&str] = &[
    "VLLM_CPU_KVCACHE_SPACE",
    "VLLM_MQ_MAX_CHUNK_BYTES_MB",
    "VLLM_USE_V2_MODEL_RUNNER",
    "VLLM_WORKER_MULTIPROC_METHOD",
    "VLLM_ENABLE_V1_MULTIPROCESSING",
    "VLLM_XGRAMMAR_CACHE_MB",
    "VLLM_ATTENTION_BACKEND",
    "VLLM_CPU_CI_ENV",
    "VLLM_ALLOW_LONG_MAX_MODEL_LEN",
];

impl Engine for Vllm {
    fn name(&self) -> &'static str {
        "vllm"
    }

    fn title(&self) -> &'static str {
        "vLLM"
    }

    fn processes(&self) -> ProcessEngine {
        ProcessEngine::Vllm
    }

    fn releases(&self) -> Vec<String> {
        Version::ALL.iter().map(|v| v.to_string()).collect()
    }

    fn release(&self, written: &str) -> Option<String> {
        Version::parse(written).map(|v| v.to_string())
    }

    fn read_release(&self, written: &str) -> Result<String, ReleaseAssumed> {
        version::read(written)
            .map(|v| v.to_string())
            .map_err(ReleaseAssumed::from)
    }

    fn newest_release(&self) -> String {
        Version::NEWEST.to_string()
    }

    fn environment(&self) -> &'static [&'static str] {
        ENVIRONMENT
    }

    fn running(&self, server: &ServerLaunch, uses_gpu: bool) -> (Option<String>, Device) {
        // As installed (`0.34.0`, `0.25.1+cpu`): the options read it, assuming what is unknown.
        let release = server.version.clone();
        let device = if uses_gpu {
            Device::Cuda
        } else if server.is_cpu_build() {
            Device::Cpu
        } else {
            // A CUDA build measured before its first CUDA call still runs on the GPU.
            Device::Cuda
        };
        (release, device)
    }

    fn split_command_line(&self, line: &str) -> Result<Vec<String>, EngineError> {
        args::split_command_line(line).map_err(EngineError::new)
    }

    fn parse(&self, argv: &[String]) -> Result<Box<dyn Launch>, EngineError> {
        let args = args::parse(argv).map_err(EngineError::new)?;
        Ok(Box::new(VllmLaunch { args }))
    }

    fn check_source(
        &self,
        scan: &Scan,
        estimate: &Estimate,
        config: &SourceConfig,
        threshold: u64,
        version_assumed: Option<String>,
    ) -> Option<Check> {
        Some(scan_check::check(
            scan,
            estimate,
            &config.bindings,
            config.pin_memory,
            config.device == Device::Cpu,
            threshold,
            version_assumed,
        ))
    }
}

/// A vLLM command line: the flags as given, nothing defaulted yet.
#[derive(Debug, Clone, PartialEq)]
pub struct VllmLaunch {
    pub args: VllmArgs,
}

impl Launch for VllmLaunch {
    fn engine(&self) -> &'static dyn Engine {
        &Vllm
    }

    fn model(&self) -> Option<&str> {
        self.args.model.as_deref()
    }

    fn use_example_if_empty(&mut self) {
        if self.args.model.is_none() && self.args.given.is_empty() {
            // The built-in example: Qwen3-8B with a 5120-token context.
            self.args.max_model_len = Some(5120);
        }
    }

    fn list(&self, model: &Model, options: &Options) -> Result<Listing, EngineError> {
        let resolved = configuration(model, &self.args, options).map_err(EngineError::new)?;
        // Built-in baselines come from the measured stack nearest to this release and device.
        let baselines = options
            .baselines
            .for_target(&crate::calibrate::stacks::Target {
                vllm_minor: Some(resolved.version.minor()),
                cpu: resolved.device == Device::Cpu,
                torch: options.torch_version.clone(),
                python: options.python_version.clone(),
            });
        let mut built = components::build(model, &resolved, &baselines, options);
        // Where the release's source allocates each component, from `ramscope scan` of it;
        // for one that is not an allocation site, the cited line of the code that makes it.
        for c in built
            .processes
            .iter_mut()
            .flat_map(|p| p.components.iter_mut())
        {
            let at = source_lines::lookup(resolved.version, &c.id)
                .or_else(|| cited_lines::lookup(resolved.version, &c.id, &c.source));
            if let Some(at) = at {
                c.source = at;
            }
        }
        let mut notes = resolved.notes.clone();
        notes.extend(built.notes);
        notes.push(baselines.describe());
        Ok(Listing {
            engine_version: resolved.version.to_string(),
            device: resolved.device,
            gpu: resolved.gpu.clone(),
            args: resolved.as_map(),
            processes: built.processes,
            page_cache_bytes: built.page_cache_bytes,
            shm_mapped_bytes: built.shm_mapped_bytes,
            notes,
        })
    }

    fn candidates(&self, base: &Estimate, env: &BTreeMap<String, String>) -> Vec<Candidate> {
        advice::candidates(&self.args, base, env)
    }

    fn source_config(&self, model: &Model, options: &Options) -> Result<SourceConfig, EngineError> {
        let r = configuration(model, &self.args, options).map_err(EngineError::new)?;
        Ok(SourceConfig {
            bindings: sites::bindings(model, &r),
            pin_memory: r.pin_memory,
            release: r.version.to_string(),
            device: r.device,
            settings: format!(
                "max_num_seqs {} · max_model_len {} · max_num_batched_tokens {}",
                r.max_num_seqs, r.max_model_len, r.max_num_batched_tokens
            ),
        })
    }

    fn clone_box(&self) -> Box<dyn Launch> {
        Box::new(self.clone())
    }
}

/// The configuration vLLM would run with: its defaults for the release and device of
/// `options`, with the flags and the environment (`options.env`, then the command line's own
/// `NAME=VALUE` words) applied.
pub fn configuration(
    model: &Model,
    args: &VllmArgs,
    options: &Options,
) -> Result<Resolved, ResolveError> {
    let version = match &options.release {
        Some(r) => Version::parse(r).ok_or_else(|| {
            ResolveError::Invalid(format!(
                "vLLM {r} is not a release ramscope knows: known are {}",
                Vllm.releases().join(", ")
            ))
        })?,
        None => Version::NEWEST,
    };
    let mut env = options.env.clone();
    env.extend(args.env.clone());
    let cx = Context {
        version,
        device: options.device,
        gpu: &options.gpu,
        env: &env,
        host_memory_bytes: options.host_memory_bytes,
    };
    defaults::resolve(model, args, &cx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(flags: &str) -> VllmLaunch {
        VllmLaunch {
            args: args::parse_str(flags).unwrap(),
        }
    }

    #[test]
    fn the_release_in_the_options_is_the_one_estimated() {
        let model = Model::default_model();
        for v in Version::ALL {
            let options = Options {
                release: Some(v.to_string()),
                ..Options::default()
            };
            let listing = launch("--max-model-len 5120")
                .list(&model, &options)
                .unwrap();
            assert_eq!(listing.engine_version, v.to_string());
        }
        let unknown = Options {
            release: Some("0.9".into()),
            ..Options::default()
        };
        let err = launch("").list(&model, &unknown).unwrap_err().to_string();
        assert!(err.contains("vLLM 0.9 is not a release"), "{err}");
    }

    #[test]
    fn the_example_applies_only_to_an_empty_command_line() {
        let mut empty = launch("");
        empty.use_example_if_empty();
        assert_eq!(empty.args.max_model_len, Some(5120));
        let mut given = launch("--max-num-seqs 8");
        given.use_example_if_empty();
        assert_eq!(given.args.max_model_len, None);
    }

    #[test]
    fn a_running_server_says_its_release_and_device() {
        let server = |version: &str, env: &[(&str, &str)]| ServerLaunch {
            pid: 1,
            argv: Vec::new(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            site_packages: None,
            distribution: None,
            version: Some(version.to_string()),
            env_unreadable: false,
        };
        let cpu = server("0.32.0+cpu", &[]);
        assert_eq!(
            Vllm.running(&cpu, false),
            (Some("0.32.0+cpu".into()), Device::Cpu)
        );
        assert_eq!(Vllm.running(&cpu, true).1, Device::Cuda);
        let cuda = server("0.25.1", &[]);
        assert_eq!(
            Vllm.running(&cuda, false),
            (Some("0.25.1".into()), Device::Cuda)
        );
        // An installation ramscope has not read is kept as written, for the options to read.
        let kv = server("0.9.0", &[("VLLM_CPU_KVCACHE_SPACE", "4")]);
        assert_eq!(
            Vllm.running(&kv, false),
            (Some("0.9.0".into()), Device::Cpu)
        );
        assert_eq!(Vllm.read_release("0.25.1"), Ok("0.25".into()));
        let newer = Vllm.read_release("0.34.0").unwrap_err();
        assert_eq!(
            (newer.used.as_str(), newer.requested.as_deref()),
            ("0.33", Some("0.34.0"))
        );
        assert_eq!(Vllm.read_release("0.9.0").unwrap_err().used, "0.10");
    }
}
