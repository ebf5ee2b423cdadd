//! What Ollama runs for one model: its settings (`num_ctx`, slots, loaded models, mmap, KV
//! type, batch) resolved from the environment, the model's params and the release's defaults,
//! and the runner command line they make, as the [`LlamaArgs`] of the llama-server it starts
//! (docs/ollama-host-ram.md §3, §4). Each setting says where its value came from.

use std::collections::BTreeMap;

use crate::engines::llama::args::{FlashAttn, GpuLayers, LlamaArgs, LoadMode};
use crate::footprint::Device;
use crate::gguf::GgufInfo;
use crate::units::Checked;

use super::releases::{ContextDefault, Generation, NoMmapFlag, ParallelDefault, Release};
use super::store::StoredModel;

const GIB: u64 = 1 << 30;

/// Architectures Ollama loads with one slot whatever OLLAMA_NUM_PARALLEL says
/// (server/sched.go:507@v0.32.15; releases before 0.12 forced only `mllama`).
const SINGLE_SLOT_ARCHITECTURES: &[&str] = &[
    "mllama",
    "qwen3vl",
    "qwen3vlmoe",
    "qwen35",
    "qwen35moe",
    "qwen3next",
    "lfm2",
    "lfm2moe",
    "nemotron_h",
    "nemotron_h_moe",
    "nemotron_h_omni",
];

/// Models per GPU Ollama keeps loaded when OLLAMA_MAX_LOADED_MODELS is unset
/// (server/sched.go:86, 286-288@v0.32.15; the CPU counts as one device).
const DEFAULT_MODELS_PER_GPU: u64 = 3;

/// A resolved value and where it came from (`OLLAMA_NUM_PARALLEL=4`, `default …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub why: String,
}

fn setting<T>(value: T, why: impl Into<String>) -> Setting<T> {
    Setting {
        value,
        why: why.into(),
    }
}

/// The host as the configuration needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    pub device: Device,
    /// Total VRAM of the GPUs (`None` on a CPU-only host).
    pub vram_bytes: Option<u64>,
    /// An integrated CUDA/ROCm GPU (Ollama loads with direct I/O there).
    pub integrated_gpu: bool,
}

/// Everything Ollama decides for one loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub release: Release,
    /// Context per slot, after the clamp to the model's training context.
    pub num_ctx: Setting<u64>,
    pub num_parallel: Setting<u64>,
    /// Runners (one per loaded model) Ollama keeps at most.
    pub max_loaded: Setting<u64>,
    pub use_mmap: Setting<bool>,
    pub kv_cache_type: Option<Setting<String>>,
    pub flash_attention: Setting<FlashAttn>,
    pub batch: Setting<u64>,
    /// The runner's command line as llama-server flags.
    pub llama: LlamaArgs,
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error(
        "num_ctx {num_ctx} × {parallel} slots is more than Ollama's 64-bit context size can hold"
    )]
    ContextTooLarge { num_ctx: u64, parallel: u64 },
    /// A LLAMA_ARG_* variable llama-server would refuse to start with.
    #[error("the llama-server runner would not start: {0}")]
    LlamaEnv(String),
}

/// Ollama's reading of a variable: trimmed of spaces, then of quotes (envconfig.Var).
fn var<'a>(env: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    env.get(key)
        .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\''))
        .filter(|v| !v.is_empty())
}

/// envconfig.Uint: a decimal number, else Ollama logs a warning and uses its default
/// (`None` here, with a note).
fn uint(env: &BTreeMap<String, String>, key: &str, notes: &mut Vec<String>) -> Option<u64> {
    let text = var(env, key)?;
    match text.parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => {
            notes.push(format!(
                "{key}={text:?} is not a number Ollama reads: it uses its default (envconfig/config.go:259-271@v0.32.15)"
            ));
            None
        }
    }
}

/// envconfig.BoolWithDefault: strconv.ParseBool, and anything it cannot read is *true*.
fn boolean(env: &BTreeMap<String, String>, key: &str) -> Option<bool> {
    let text = var(env, key)?;
    Some(!matches!(
        text,
        "0" | "f" | "F" | "false" | "FALSE" | "False"
    ))
}

/// Resolves Ollama's settings for `model` (its header `info`) on `host`, with `env` the
/// environment `ollama serve` sees.
pub fn resolve(
    release: Release,
    host: Host,
    env: &BTreeMap<String, String>,
    model: &StoredModel,
    info: &GgufInfo,
) -> Result<Resolved, ConfigError> {
    let generation = release.generation.value;
    let mut notes = Vec::new();
    let arch = info.architecture().unwrap_or("");
    let n_ctx_train = info.arch_u64("context_length").unwrap_or(0);
    let embedding = info.metadata.contains_key(&format!("{arch}.pooling_type"));

    let num_parallel = num_parallel(release, host, env, arch, embedding, &mut notes);
    let num_ctx = num_ctx(release, host, env, model, n_ctx_train, &mut notes);
    let max_loaded = match uint(env, "OLLAMA_MAX_LOADED_MODELS", &mut notes) {
        Some(n) if n > 0 => setting(n, format!("OLLAMA_MAX_LOADED_MODELS={n}")),
        _ => setting(
            DEFAULT_MODELS_PER_GPU,
            "default: 3 per GPU, the CPU counting as one (server/sched.go:286-288@v0.32.15)",
        ),
    };
    let use_mmap = use_mmap(release, host, model);
    let flash_attention = flash_attention(generation, env);
    let kv_cache_type = kv_cache_type(generation, env, flash_attention.value, &mut notes);

    let ctx_total = Checked::new(num_ctx.value) * num_parallel.value;
    let ctx_total = ctx_total
        .get()
        .filter(|&c| i64::try_from(c).is_ok())
        .ok_or(ConfigError::ContextTooLarge {
            num_ctx: num_ctx.value,
            parallel: num_parallel.value,
        })?;
    let batch = batch(
        generation,
        host,
        model,
        embedding,
        ctx_total,
        flash_attention.value,
    );

    let mut llama = LlamaArgs {
        program: Some(generation.runner_title().to_string()),
        model: Some(model.gguf.display().to_string()),
        mmproj: model.projector.as_ref().map(|p| p.display().to_string()),
        lora: model
            .adapters
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        ctx_size: Some(ctx_total),
        // Fits: num_parallel ≤ ctx_total ≤ i64::MAX.
        parallel: Some(i64::try_from(num_parallel.value).unwrap_or(i64::MAX)),
        batch: Some(batch.value),
        embedding,
        ..LlamaArgs::default()
    };
    let mut given = vec!["--model", "--ctx-size", "--parallel", "--batch-size"];
    if generation == Generation::LlamaServer {
        // appendBatchArgs passes the same number as -b and -ub (llm/llama_server.go:581-594).
        llama.ubatch = Some(batch.value);
        given.push("--ubatch-size");
        llama.model_draft = model.draft.as_ref().map(|p| p.display().to_string());
        llama.flash_attn = Some(flash_attention.value);
        given.push("--flash-attn");
    } else {
        // The Go runner links llama.cpp and keeps no llama-server prompt cache; its one
        // context holds every slot's cells in one buffer (llama/llama.go:90-103@v0.9.6).
        llama.cache_ram_mib = Some(0);
        llama.kv_unified = Some(true);
        llama.flash_attn = Some(flash_attention.value);
    }
    if let Some(t) = &kv_cache_type {
        llama.cache_type_k = Some(t.value.clone());
        llama.cache_type_v = Some(t.value.clone());
        given.extend(["--cache-type-k", "--cache-type-v"]);
    }
    // num_gpu from the params goes to -ngl as it is (llm/llama_server.go:404-409@v0.32.15);
    // otherwise llama-server fits layers itself and older runners got Ollama's own count,
    // which only the CPU fixes in advance (0).
    llama.gpu_layers = match model.params.num_gpu {
        Some(n) if n >= 0 => Some(GpuLayers::Count(n.unsigned_abs())),
        _ if host.device == Device::Cpu && generation != Generation::LlamaServer => {
            Some(GpuLayers::Count(0))
        }
        _ => None,
    };
    if llama.gpu_layers.is_some() {
        given.push("--n-gpu-layers");
    }
    let direct_io = generation == Generation::LlamaServer
        && release.no_mmap_flag.value == NoMmapFlag::LoadMode
        && host.integrated_gpu
        && host.device == Device::Cuda;
    if direct_io {
        llama.load_mode = Some(LoadMode::DirectIo);
        given.push("--load-mode");
    } else if !use_mmap.value {
        llama.load_mode = Some(LoadMode::None);
        given.push(match release.no_mmap_flag.value {
            NoMmapFlag::NoMmap => "--no-mmap",
            NoMmapFlag::LoadMode => "--load-mode",
        });
    }
    if embedding {
        given.push("--embedding");
    }
    llama.given = given.into_iter().map(String::from).collect();
    if generation == Generation::LlamaServer {
        // The runner inherits `ollama serve`'s environment (llm/llama_server.go:445-446), so
        // llama-server reads LLAMA_ARG_* for what Ollama leaves unset: it passes no
        // --cache-ram, so LLAMA_ARG_CACHE_RAM caps the prompt cache (ollama/ollama#18264).
        llama
            .apply_env(env)
            .map_err(|e| ConfigError::LlamaEnv(e.to_string()))?;
    }
    notes.extend(llama.notes.iter().cloned());
    Ok(Resolved {
        release,
        num_ctx,
        num_parallel,
        max_loaded,
        use_mmap,
        kv_cache_type,
        flash_attention,
        batch,
        llama,
        notes,
    })
}

fn num_parallel(
    release: Release,
    host: Host,
    env: &BTreeMap<String, String>,
    arch: &str,
    embedding: bool,
    notes: &mut Vec<String>,
) -> Setting<u64> {
    if embedding {
        return setting(
            1,
            "1: an embedding model always gets one slot (server/sched.go:500-504@v0.32.15)",
        );
    }
    let forced = SINGLE_SLOT_ARCHITECTURES.contains(&arch)
        && (arch == "mllama" || release.generation.value != Generation::Estimator);
    let asked = uint(env, "OLLAMA_NUM_PARALLEL", notes).filter(|&n| n > 0);
    let chosen = match (asked, release.parallel_default.value) {
        (Some(n), _) => setting(n, format!("OLLAMA_NUM_PARALLEL={n}")),
        (None, ParallelDefault::Fixed(n)) => {
            setting(n, format!("default {n} ({})", release.parallel_default.at))
        }
        (None, ParallelDefault::Auto(n)) => {
            let why = match host.device {
                Device::Cpu => format!("default on the CPU: {n} ({})", release.parallel_default.at),
                Device::Cuda => format!(
                    "default: {n} when the model fits the GPU with {n} slots, else 1 ({}); the estimate takes {n}",
                    release.parallel_default.at
                ),
            };
            setting(n, why)
        }
    };
    if forced && chosen.value != 1 {
        notes.push(format!(
            "{arch} is loaded with one slot whatever OLLAMA_NUM_PARALLEL says (server/sched.go:507@v0.32.15)"
        ));
        return setting(1, format!("1: forced for {arch}"));
    }
    chosen
}

fn num_ctx(
    release: Release,
    host: Host,
    env: &BTreeMap<String, String>,
    model: &StoredModel,
    n_ctx_train: u64,
    notes: &mut Vec<String>,
) -> Setting<u64> {
    let from_env = uint(env, "OLLAMA_CONTEXT_LENGTH", notes).filter(|&n| n > 0);
    let asked = match (model.params.num_ctx.filter(|&n| n > 0), from_env) {
        (Some(n), _) => setting(n, format!("the model's params: num_ctx {n}")),
        (None, Some(n)) => setting(n, format!("OLLAMA_CONTEXT_LENGTH={n}")),
        (None, None) => match release.context_default.value {
            ContextDefault::Fixed(n) => {
                setting(n, format!("default {n} ({})", release.context_default.at))
            }
            ContextDefault::VramTiered => {
                let overhead = uint(env, "OLLAMA_GPU_OVERHEAD", notes).unwrap_or(0);
                let vram = match host.device {
                    Device::Cpu => 0,
                    Device::Cuda => host.vram_bytes.unwrap_or(0).saturating_sub(overhead),
                };
                let n = if vram >= 47 * GIB {
                    262_144
                } else if vram >= 23 * GIB {
                    32_768
                } else {
                    4096
                };
                setting(
                    n,
                    format!(
                        "default for {:.1} GiB of VRAM: {n} (server/routes.go:2049-2057@v0.32.15)",
                        vram as f64 / GIB as f64
                    ),
                )
            }
        },
    };
    if n_ctx_train > 0 && asked.value > n_ctx_train {
        return setting(
            n_ctx_train,
            format!(
                "{}, cut to the model's training context {n_ctx_train} (llm/server.go:112-116@v0.32.15)",
                asked.why
            ),
        );
    }
    asked
}

fn use_mmap(release: Release, host: Host, model: &StoredModel) -> Setting<bool> {
    if let Some(m) = model.params.use_mmap {
        return setting(m, format!("the model's params: use_mmap {m}"));
    }
    let cite = match release.generation.value {
        Generation::Estimator => "llm/server.go:245-249@v0.9.6",
        Generation::Layouts => "llm/server.go:720-729@v0.24.0",
        Generation::LlamaServer => "server/sched.go:1158-1165@v0.32.15",
    };
    match host.device {
        Device::Cpu => setting(false, format!("a CPU-only load ({cite})")),
        Device::Cuda => setting(
            true,
            format!(
                "a GPU load; Ollama turns it off when its free-memory reading is short ({}), which the estimate does not know",
                match release.generation.value {
                    Generation::LlamaServer => "server/sched.go:1227-1260@v0.32.15",
                    _ => cite,
                }
            ),
        ),
    }
}

fn flash_attention(generation: Generation, env: &BTreeMap<String, String>) -> Setting<FlashAttn> {
    match boolean(env, "OLLAMA_FLASH_ATTENTION") {
        Some(true) => setting(FlashAttn::On, "OLLAMA_FLASH_ATTENTION on"),
        Some(false) => setting(FlashAttn::Off, "OLLAMA_FLASH_ATTENTION off"),
        None => match generation {
            Generation::Estimator => {
                setting(FlashAttn::Off, "default off (llm/server.go:204-230@v0.9.6)")
            }
            Generation::Layouts => setting(
                FlashAttn::Auto,
                "default auto (llm/server.go:193-255@v0.24.0)",
            ),
            Generation::LlamaServer => setting(
                FlashAttn::Auto,
                "default auto where the devices support it (llm/llama_server.go:597-622@v0.32.15)",
            ),
        },
    }
}

fn kv_cache_type(
    generation: Generation,
    env: &BTreeMap<String, String>,
    flash: FlashAttn,
    notes: &mut Vec<String>,
) -> Option<Setting<String>> {
    let t = var(env, "OLLAMA_KV_CACHE_TYPE")?.to_ascii_lowercase();
    let quantized = t != "f16" && t != "f32";
    if generation != Generation::LlamaServer && quantized && flash != FlashAttn::On {
        notes.push(format!(
            "OLLAMA_KV_CACHE_TYPE={t} is dropped: before 0.30 a quantized KV cache needs OLLAMA_FLASH_ATTENTION=1 (llm/server.go:237-241@v0.24.0)"
        ));
        return None;
    }
    Some(setting(
        t.clone(),
        format!("OLLAMA_KV_CACHE_TYPE={t} (llm/llama_server.go:394-396@v0.32.15)"),
    ))
}

fn batch(
    generation: Generation,
    host: Host,
    model: &StoredModel,
    embedding: bool,
    ctx_total: u64,
    flash: FlashAttn,
) -> Setting<u64> {
    let asked = model.params.num_batch.filter(|&n| n > 0);
    if generation != Generation::LlamaServer {
        let n = asked.unwrap_or(512);
        return setting(n, "num_batch (default 512)");
    }
    if embedding {
        let n = asked.unwrap_or(512).min(ctx_total.max(1));
        return setting(
            n,
            "embedding model: num_batch up to the context (llm/llama_server.go:561-570@v0.32.15)",
        );
    }
    if let Some(n) = asked {
        return setting(n, format!("the model's params: num_batch {n}"));
    }
    let cite = "server/sched.go:822-866@v0.32.15";
    if host.device == Device::Cuda && flash == FlashAttn::Off {
        let small_gpu = host.vram_bytes.is_some_and(|v| v <= 8 * GIB);
        let n = if ctx_total > 4096 && small_gpu {
            256
        } else {
            512
        };
        return setting(n, format!("CUDA without flash attention: {n} ({cite})"));
    }
    let n = if ctx_total > 32_768 {
        2048
    } else if ctx_total > 4096 {
        1024
    } else {
        512
    };
    let lowered = if n > 512 {
        "; Ollama lowers it when its memory prediction leaves too little headroom"
    } else {
        ""
    };
    setting(
        n,
        format!("for a {ctx_total}-token context: {n}{lowered} ({cite})"),
    )
}

#[cfg(test)]
mod tests;
