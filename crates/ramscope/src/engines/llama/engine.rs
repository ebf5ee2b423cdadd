//! llama-server behind the [`Engine`] trait: its process, its command line ([`super::args`]),
//! its defaults per release ([`super::config`]) and its components ([`super::components`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::engines::{Candidate, Engine, EngineError, Launch, Options};
use crate::footprint::{Device, Estimate, Listing, ProcessEstimate};
use crate::gguf::{self, GgufInfo};
use crate::hf::{Dtype, ModelConfig};
use crate::model::{Model, ModelError, ModelSource, Weights};
use crate::proc::roles::{Engine as ProcessEngine, Role};
use crate::server::ServerLaunch;

use super::args::{self, LlamaArgs};
use super::components;
use super::config::{self, Release, RELEASES};
use super::model::Hparams;

/// llama.cpp's server, for the registry ([`crate::engines::ALL`]).
#[derive(Debug, Clone, Copy)]
pub struct LlamaCpp;

/// Environment variables llama-server reads that change host RAM (common/arg.cpp@0c1e570),
/// and ggml's switch for pinned host buffers.
const ENVIRONMENT: &[&str] = &[
    "LLAMA_ARG_MODEL",
    "LLAMA_ARG_CTX_SIZE",
    "LLAMA_ARG_N_PARALLEL",
    "LLAMA_ARG_KV_UNIFIED",
    "LLAMA_ARG_KV_UNIFIED_PER_SLOT",
    "LLAMA_ARG_N_GPU_LAYERS",
    "LLAMA_ARG_LOAD_MODE",
    "LLAMA_ARG_CACHE_TYPE_K",
    "LLAMA_ARG_CACHE_TYPE_V",
    "LLAMA_ARG_BATCH",
    "LLAMA_ARG_UBATCH",
    "LLAMA_ARG_FLASH_ATTN",
    "LLAMA_ARG_KV_OFFLOAD",
    "LLAMA_ARG_CACHE_RAM",
    "LLAMA_ARG_CACHE_PROMPT",
    "LLAMA_ARG_CTX_CHECKPOINTS",
    "LLAMA_ARG_REPACK",
    "LLAMA_ARG_NO_HOST",
    "LLAMA_ARG_SWA_FULL",
    "LLAMA_ARG_EMBEDDINGS",
    "LLAMA_ARG_FIT",
    "LLAMA_ARG_MMPROJ",
    "GGML_CUDA_NO_PINNED",
];

fn known(written: &str) -> Option<Release> {
    let w = written
        .trim()
        .trim_start_matches("commit ")
        .to_ascii_lowercase();
    if w.len() < 7 {
        return None;
    }
    RELEASES
        .iter()
        .copied()
        .find(|r| r.commit.starts_with(&w[..7]) && r.commit.len() <= w.len())
}

impl Engine for LlamaCpp {
    fn name(&self) -> &'static str {
        "llama.cpp"
    }

    fn title(&self) -> &'static str {
        "llama.cpp"
    }

    fn processes(&self) -> ProcessEngine {
        ProcessEngine::LlamaCpp
    }

    fn releases(&self) -> Vec<String> {
        RELEASES.iter().map(|r| r.commit.to_string()).collect()
    }

    fn release(&self, written: &str) -> Option<String> {
        known(written).map(|r| r.commit.to_string())
    }

    fn newest_release(&self) -> String {
        RELEASES[RELEASES.len() - 1].commit.to_string()
    }

    fn environment(&self) -> &'static [&'static str] {
        ENVIRONMENT
    }

    fn running(&self, server: &ServerLaunch, uses_gpu: bool) -> (Option<String>, Device) {
        let device = if uses_gpu { Device::Cuda } else { Device::Cpu };
        (built_commit(server.pid), device)
    }

    /// llama-server runs on the CPU unless built for a GPU: assume a GPU only where this
    /// machine has an NVIDIA device (a fit check usually runs on the node it checks).
    fn default_device(&self) -> Device {
        if Path::new("/dev/nvidia0").exists() || Path::new("/proc/driver/nvidia/version").exists() {
            Device::Cuda
        } else {
            Device::Cpu
        }
    }

    fn split_command_line(&self, line: &str) -> Result<Vec<String>, EngineError> {
        args::split_command_line(line).map_err(EngineError::new)
    }

    fn parse(&self, argv: &[String]) -> Result<Box<dyn Launch>, EngineError> {
        let args = args::parse(argv).map_err(EngineError::new)?;
        Ok(Box::new(LlamaLaunch { args }))
    }
}

/// A llama-server command line.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaLaunch {
    pub args: LlamaArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum LlamaError {
    #[error("llama-server needs a GGUF model file: give -m FILE (or LLAMA_ARG_MODEL)")]
    NoModel,
    #[error("{0}: llama-server loads GGUF files; this is not one")]
    NotGguf(String),
    #[error(transparent)]
    Gguf(#[from] gguf::GgufError),
    #[error(transparent)]
    Hparams(#[from] super::model::HparamsError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Footprint(String),
}

impl Launch for LlamaLaunch {
    fn engine(&self) -> &'static dyn Engine {
        &LlamaCpp
    }

    fn model(&self) -> Option<&str> {
        self.args.model.as_deref()
    }

    fn resolve_model(
        &self,
        _env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Result<Model, ModelError>> {
        let path = self.args.model.as_deref()?;
        Some(model_of_gguf(Path::new(path)))
    }

    fn use_example_if_empty(&mut self) {
        // No built-in GGUF: a llama-server estimate needs the user's file.
    }

    fn list(&self, model: &Model, options: &Options) -> Result<Listing, EngineError> {
        let ModelSource::Gguf(path) = &model.source else {
            return Err(EngineError::new(LlamaError::NoModel));
        };
        let info = gguf::read_header(path).map_err(|e| EngineError::new(LlamaError::from(e)))?;
        let mut args = self.args.clone();
        args.apply_env(&options.env).map_err(EngineError::new)?;
        listing(&info, &args, options)
    }

    fn candidates(&self, base: &Estimate, env: &BTreeMap<String, String>) -> Vec<Candidate> {
        let mut out = Vec::new();
        let component = |id: &str| {
            base.processes
                .iter()
                .flat_map(|p| &p.components)
                .find(|c| c.id == id)
        };
        if component("weights.repacked").is_some() && component("weights.mapped").is_some() {
            let mut launch = self.clone();
            launch.args.repack = Some(false);
            out.push(Candidate {
                action: "--no-repack".into(),
                why: "repacked weights are a second copy of their mapped pages".into(),
                peak_only: false,
                launch: Box::new(launch),
                env: env.clone(),
            });
        }
        let f16_kv = self.args.cache_type_k.as_deref().unwrap_or("f16") == "f16";
        if f16_kv && component("kv_cache").is_some_and(|c| c.bytes >= 256 << 20) {
            let mut launch = self.clone();
            launch.args.cache_type_k = Some("q8_0".into());
            launch.args.cache_type_v = Some("q8_0".into());
            launch.args.flash_attn = Some(super::args::FlashAttn::On);
            out.push(Candidate {
                action: "-ctk q8_0 -ctv q8_0 -fa on".into(),
                why: "an 8-bit KV cache takes 34 bytes per 32 values instead of 64".into(),
                peak_only: false,
                launch: Box::new(launch),
                env: env.clone(),
            });
        }
        out
    }

    fn reconcile_log(
        &self,
        estimate: &Estimate,
        log: &str,
    ) -> Result<Vec<crate::footprint::LogMatch>, EngineError> {
        Ok(super::evidence::reconcile(estimate, log))
    }

    fn clone_box(&self) -> Box<dyn Launch> {
        Box::new(self.clone())
    }
}

/// The processes and components of llama-server `args` serving `info`, with the release
/// and device of `options` (Ollama's runners are this too).
pub fn listing(
    info: &GgufInfo,
    args: &LlamaArgs,
    options: &Options,
) -> Result<Listing, EngineError> {
    let err = |e: LlamaError| EngineError::new(e);
    let hparams = Hparams::from_gguf(info).map_err(|e| err(e.into()))?;
    let release = options
        .release
        .as_deref()
        .and_then(known)
        .unwrap_or(RELEASES[RELEASES.len() - 1]);
    let gpu = options.device == Device::Cuda;
    let resolved = config::resolve(args, &hparams, release, gpu).map_err(|e| err(e.into()))?;
    // The projector's header is read for its tensors only: it is a `clip` model, not a
    // language model.
    let mmproj = match &args.mmproj {
        Some(p) => Some(gguf::read_header(Path::new(p)).map_err(|e| err(e.into()))?),
        None => None,
    };
    let mmproj_on_cpu = !gpu || args.mmproj_offload == Some(false);
    let mut built = components::build(
        &hparams,
        &resolved,
        mmproj.as_ref().map(|p| (p, mmproj_on_cpu)),
    );
    if let Some(path) = &args.model_draft {
        // The draft model is a second model and context in the same process: its own
        // weights, KV cache (-ctkd/-ctvd), output and compute buffers, on -ngld layers.
        let info = gguf::read_header(Path::new(path)).map_err(|e| err(e.into()))?;
        let draft = Hparams::from_gguf(&info).map_err(|e| err(e.into()))?;
        let mut draft_args = args.clone();
        draft_args.cache_type_k = args.draft_cache_type_k.clone();
        draft_args.cache_type_v = args.draft_cache_type_v.clone();
        draft_args.gpu_layers = args.draft_gpu_layers;
        draft_args.cache_ram_mib = Some(0);
        let r = config::resolve(&draft_args, &draft, release, gpu).map_err(|e| err(e.into()))?;
        let extra = components::build(&draft, &r, None);
        built.page_cache_bytes = built
            .page_cache_bytes
            .saturating_add(extra.page_cache_bytes);
        built.components.extend(
            extra
                .components
                .into_iter()
                .filter(|c| {
                    !c.id.starts_with("runtime.") && c.phase != crate::footprint::Phase::Growth
                })
                .map(|mut c| {
                    c.id = format!("draft.{}", c.id);
                    c
                }),
        );
    }
    let title = args
        .program
        .as_deref()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
        .unwrap_or_else(|| "llama-server".into());
    let process = ProcessEstimate::new(Role::ApiServer, &title, 1, built.components);
    let mut notes = resolved.notes.clone();
    notes.extend(built.notes);
    if !args.lora.is_empty() {
        notes.push("LoRA adapters (--lora) add their tensors: not estimated".into());
    }
    let r = &resolved;
    let settings = BTreeMap::from([
        ("ctx_size".to_string(), json!(r.n_ctx)),
        ("n_ctx_seq".to_string(), json!(r.n_ctx_seq)),
        ("parallel".to_string(), json!(r.n_seq)),
        ("kv_unified".to_string(), json!(r.unified)),
        ("batch_size".to_string(), json!(r.n_batch)),
        ("ubatch_size".to_string(), json!(r.n_ubatch)),
        ("cache_type_k".to_string(), json!(r.type_k.name)),
        ("cache_type_v".to_string(), json!(r.type_v.name)),
        ("flash_attn".to_string(), json!(r.flash_attn)),
        (
            "load_mode".to_string(),
            json!(
                match (r.loading.mmap, r.loading.mlock, r.loading.direct_io) {
                    (_, _, true) => "dio",
                    (true, true, _) => "mmap+mlock",
                    (true, false, _) => "mmap",
                    (false, true, _) => "mlock",
                    (false, false, _) => "none",
                }
            ),
        ),
        ("repack".to_string(), json!(r.repack)),
        ("n_gpu_layers".to_string(), json!(r.gpu_layers)),
        ("kv_offload".to_string(), json!(r.kv_offload)),
        (
            "cache_ram_mib".to_string(),
            match r.cache {
                config::CacheCap::Off => json!(0),
                config::CacheCap::Mib(n) => json!(n),
                config::CacheCap::NoLimit => json!(-1),
            },
        ),
        ("model".to_string(), json!(info.path.display().to_string())),
        ("architecture".to_string(), json!(hparams.arch)),
    ]);
    Ok(Listing {
        engine_version: release.commit.to_string(),
        device: if gpu { Device::Cuda } else { Device::Cpu },
        gpu: gpu.then(|| options.gpu.clone()),
        args: settings,
        processes: vec![process],
        page_cache_bytes: built.page_cache_bytes,
        shm_mapped_bytes: 0,
        notes,
    })
}

/// A GGUF file as a [`Model`]: what the summary and the shared reports read.
pub fn model_of_gguf(path: &Path) -> Result<Model, ModelError> {
    let info = gguf::read_header(path).map_err(|e| ModelError::Gguf(e.to_string()))?;
    let h = Hparams::from_gguf(&info).map_err(|e| ModelError::Gguf(e.to_string()))?;
    let dominant = info
        .bytes_by_type
        .iter()
        .max_by_key(|(_, b)| **b)
        .map(|(k, _)| *k)
        .unwrap_or("F16");
    let dtype = match dominant {
        "F32" => Dtype::F32,
        "F16" => Dtype::F16,
        "BF16" => Dtype::Bf16,
        k if k.starts_with("Q8") => Dtype::Fp8,
        _ => Dtype::Fp4,
    };
    let parameters = info
        .tensors
        .iter()
        .map(|t| t.dims.iter().product::<u64>())
        .fold(0u64, u64::saturating_add);
    let name = h.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    Ok(Model {
        name,
        source: ModelSource::Gguf(PathBuf::from(path)),
        config: ModelConfig {
            architecture: h.arch.clone(),
            model_type: h.arch.clone(),
            hidden_size: h.n_embd,
            intermediate_size: h.n_ff,
            num_layers: h.n_layer,
            num_attention_heads: h.n_head,
            num_kv_heads: h.n_head_kv.iter().copied().max().unwrap_or(0),
            head_dim: h.head_dim_k,
            vocab_size: h.n_vocab,
            max_model_len: h.n_ctx_train,
            dtype,
            tie_word_embeddings: !info.tensors.iter().any(|t| t.name == "output.weight"),
            multimodal: false,
            mrope: false,
            mla: None,
            num_experts: h.n_expert,
            moe_intermediate_size: 0,
            sliding_window_layers: h.swa_layers.iter().filter(|s| **s).count() as u64,
            quantization: Some(dominant.to_string()),
        },
        weights: Weights {
            total_bytes: info.tensor_bytes,
            files: 1,
            largest_file_bytes: info.file_bytes,
            parameters,
            exact: true,
        },
        tokenizer_json_bytes: None,
    })
}

/// The llama.cpp commit a running server was built from, when it is one ramscope has read:
/// llama.cpp embeds its commit as a string in the binary (`build-info`), so the program and
/// the llama/ggml libraries it maps are searched for the known commits. Nothing is executed;
/// files over 512 MiB are skipped.
fn built_commit(pid: crate::proc::Pid) -> Option<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let mut files: Vec<PathBuf> = vec![PathBuf::from(format!("/proc/{pid}/exe"))];
    for line in maps.lines() {
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        let name = path.rsplit('/').next().unwrap_or("");
        let ours = name.starts_with("libllama") || name.starts_with("libggml");
        if ours && !files.iter().any(|f| f.as_os_str() == path) {
            files.push(PathBuf::from(path));
        }
    }
    for file in files {
        let small = std::fs::metadata(&file).is_ok_and(|m| m.is_file() && m.len() <= 512 << 20);
        let Some(bytes) = small.then(|| std::fs::read(&file).ok()).flatten() else {
            continue;
        };
        for r in RELEASES {
            if memchr::memmem::find(&bytes, r.commit.as_bytes()).is_some() {
                return Some(r.commit.to_string());
            }
        }
    }
    None
}
