//! Every flag of llama-server's `--help` (llama.cpp 0c1e570, as PyPI's llama-cpp-python 0.3.36
//! vendors it; captured in tests/fixtures/llama-server-0c1e570-help.txt), and the flags older
//! releases had that change host RAM: how each takes its value, the environment variable
//! llama.cpp reads for it, and what it does to host RAM (a [`Field`] of
//! [`super::args::LlamaArgs`], or the reason it does not matter). [`super::args`] parses
//! command lines against this table; tests/llama_help.rs checks it against the help.
//!
//! Each modelled flag's line in common/arg.cpp and what it sets: docs/llama-server-command-line.md
//! §2; the older releases' flags: §3.

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--flag` alone (sets something on).
    Switch,
    /// One setting with positive and negative spellings (`-kvo`, `--kv-offload`, `-nkvo`,
    /// `--no-kv-offload`).
    Pair,
    /// `--flag VALUE`.
    Value,
    /// `--flag VALUE` in this release; older releases had a bare `--flag` (`-fa`), which is
    /// still understood when the next word is not one of the flag's values.
    OptValue,
    /// `--flag V1 V2`.
    TwoValues,
}

/// The settings that change host RAM: one per [`super::args::LlamaArgs`] field they fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Model,
    HfRepo,
    Mmproj,
    MmprojAuto,
    MmprojOffload,
    /// `-mmdev none` keeps the projector on the CPU.
    MmprojDevice,
    ModelDraft,
    CtxSize,
    Parallel,
    KvUnified,
    KvUnifiedPerSlot,
    GpuLayers,
    LoadMode,
    LazyMode,
    CacheTypeK,
    CacheTypeV,
    Batch,
    Ubatch,
    FlashAttn,
    KvOffload,
    CacheRam,
    CachePrompt,
    CtxCheckpoints,
    Repack,
    NoHost,
    SwaFull,
    /// `--embedding`, and `--rerank` (embeddings with rank pooling).
    Embedding,
    Fit,
    FitTarget,
    FitCtx,
    Device,
    OverrideTensor,
    CpuMoe,
    NCpuMoe,
    NCpuFfn,
    Lora,
    LoraScaled,
    DraftGpuLayers,
    DraftCacheTypeK,
    DraftCacheTypeV,
    SpecType,
    /// `--spec-default`: adds the ngram-mod draft type.
    SpecDefault,
    /// `--mmap` / `--no-mmap` of older releases.
    LegacyMmap,
    /// `--mlock` of older releases.
    LegacyMlock,
    /// `-dio` / `--direct-io` / `-ndio` / `--no-direct-io` of older releases.
    LegacyDirectIo,
}

/// What a flag does to host RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Fills a field the estimate uses.
    Models(Field),
    /// Does not change host RAM measurably, with the reason.
    NoHostRam(&'static str),
    /// Changes host RAM in a way ramscope does not model, with what it does.
    NotModelled(&'static str),
}

/// One llama-server flag.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// Every spelling, positive ones first, then after ` | ` the negative ones of a
    /// [`Kind::Pair`]: `"-kvo --kv-offload | -nkvo --no-kv-offload"`.
    spellings: &'static str,
    pub kind: Kind,
    /// The variable llama.cpp reads for it (`LLAMA_ARG_CTX_SIZE`; a pair also reads the
    /// `LLAMA_ARG_NO_…` form).
    pub env: Option<&'static str>,
    pub effect: Effect,
    /// Set when llama.cpp 0c1e570 refuses the flag: what it is written as now.
    pub removed: Option<&'static str>,
}

impl Flag {
    /// The spellings that turn the setting on or give it a value.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + Clone {
        let positive = self.spellings.split(" | ").next().unwrap_or("");
        positive.split_whitespace()
    }

    /// The spellings that turn a [`Kind::Pair`] off.
    pub fn negatives(&self) -> impl Iterator<Item = &'static str> + Clone {
        let negative = self.spellings.split(" | ").nth(1).unwrap_or("");
        negative.split_whitespace()
    }

    /// The long name reports use: the first `--` spelling (`--ctx-size` for `-c`).
    pub fn name(&self) -> &'static str {
        long_of(self.names())
    }

    /// The long name of the negative spelling (`--no-kv-offload`).
    pub fn negative_name(&self) -> &'static str {
        long_of(self.negatives())
    }

    /// The `LLAMA_ARG_NO_…` variable a pair also reads (as "off", whatever its value).
    pub fn negative_env(&self) -> Option<String> {
        let env = self.env?;
        (self.kind == Kind::Pair)
            .then(|| env.replacen("LLAMA_ARG_", "LLAMA_ARG_NO_", 1))
            .filter(|n| n != env)
    }
}

fn long_of(mut names: impl Iterator<Item = &'static str> + Clone) -> &'static str {
    let first = names.clone().next().unwrap_or("");
    names.find(|n| n.starts_with("--")).unwrap_or(first)
}

/// Finds a flag by any spelling as llama.cpp does (a `--` word may use `_` for `-`); the bool
/// says it was a negative spelling.
pub fn lookup(word: &str) -> Option<(&'static Flag, bool)> {
    let norm = if word.starts_with("--") {
        word.replace('_', "-")
    } else {
        word.to_string()
    };
    FLAGS.iter().find_map(|f| {
        if f.names().any(|n| n == norm) {
            Some((f, false))
        } else if f.negatives().any(|n| n == norm) {
            Some((f, true))
        } else {
            None
        }
    })
}

/// The variables llama.cpp reads for flags that change host RAM (what an estimate of a command
/// line should also read from the environment).
pub fn host_ram_env() -> Vec<String> {
    let mut vars = Vec::new();
    for f in FLAGS {
        if let (Effect::Models(_), Some(env)) = (f.effect, f.env) {
            vars.push(env.to_string());
            vars.extend(f.negative_env());
        }
    }
    vars
}

const fn flag(spellings: &'static str, kind: Kind, env: &'static str, effect: Effect) -> Flag {
    Flag {
        spellings,
        kind,
        env: if env.is_empty() { None } else { Some(env) },
        effect,
        removed: None,
    }
}

/// A flag llama.cpp 0c1e570 refuses (older releases had it), with what it is written as now.
const fn gone(
    spellings: &'static str,
    kind: Kind,
    env: &'static str,
    effect: Effect,
    now: &'static str,
) -> Flag {
    Flag {
        removed: Some(now),
        ..flag(spellings, kind, env, effect)
    }
}

const fn m(field: Field) -> Effect {
    Effect::Models(field)
}
const fn nh(why: &'static str) -> Effect {
    Effect::NoHostRam(why)
}
const fn nm(what: &'static str) -> Effect {
    Effect::NotModelled(what)
}

use Field as F;
use Kind::*;

const EXITS: &str = "prints and exits";
const THREADS: &str = "CPU threads and their placement";
const SAMPLING: &str = "sampling and generation limits";
const FORMATTING: &str = "chat templates and response formatting";
const ROPE: &str = "position encoding numerics";
const LOGGING: &str = "logging";
const FRONTEND: &str = "HTTP server and endpoints";
const TOOLS: &str = "built-in tools and MCP";
const GPU_SPLIT: &str = "how work is split among GPUs (device memory)";
const SPEC_POLICY: &str = "speculative decoding lengths and thresholds";
const CONTROL_VECTOR: &str = "control vectors: one n_embd row per layer";
const DOWNLOAD: &str = "the file comes from the network: give ramscope the local path";
const LOOKUP_CACHE: &str = "an n-gram lookup cache file read into memory";
const MM_COMPUTE: &str = "the multimodal encoder's compute buffer grows with image tokens";
const VIDEO: &str = "video frames decoded per request";
const RPC: &str = "layers placed on RPC servers leave this host";
const CHECK_TENSORS: &str = "without mmap, GPU tensors load through a tensor-sized buffer";
const OVERRIDE_KV: &str = "metadata overrides are not applied to the GGUF header read";
const ROUTER: &str = "router mode: each model runs in its own llama-server process";
const SLEEP: &str = "an idle server unloads its model";
const DRAFT_PLACEMENT: &str = "where the draft model's weights go";
const PRESET: &str = "a preset that downloads a model (and a draft)";

/// Every flag ramscope knows, those that fill a field first; within each group in the order
/// of `--help`.
#[rustfmt::skip]
pub const FLAGS: &[Flag] = &[
    flag("-m --model", Value, "LLAMA_ARG_MODEL", m(F::Model)),
    flag("-hf -hfr --hf-repo", Value, "LLAMA_ARG_HF_REPO", m(F::HfRepo)),
    flag("-c --ctx-size", Value, "LLAMA_ARG_CTX_SIZE", m(F::CtxSize)),
    flag("--kv-unified-per-slot", Value, "LLAMA_ARG_KV_UNIFIED_PER_SLOT", m(F::KvUnifiedPerSlot)),
    flag("-b --batch-size", Value, "LLAMA_ARG_BATCH", m(F::Batch)),
    flag("-ub --ubatch-size", Value, "LLAMA_ARG_UBATCH", m(F::Ubatch)),
    flag("--swa-full", Switch, "LLAMA_ARG_SWA_FULL", m(F::SwaFull)),
    flag("-ctxcp --ctx-checkpoints --swa-checkpoints", Value, "LLAMA_ARG_CTX_CHECKPOINTS", m(F::CtxCheckpoints)),
    flag("-cram --cache-ram", Value, "LLAMA_ARG_CACHE_RAM", m(F::CacheRam)),
    flag("-kvu --kv-unified | -no-kvu --no-kv-unified", Pair, "LLAMA_ARG_KV_UNIFIED", m(F::KvUnified)),
    flag("-fa --flash-attn", OptValue, "LLAMA_ARG_FLASH_ATTN", m(F::FlashAttn)),
    flag("-kvo --kv-offload | -nkvo --no-kv-offload", Pair, "LLAMA_ARG_KV_OFFLOAD", m(F::KvOffload)),
    flag("--repack | -nr --no-repack", Pair, "LLAMA_ARG_REPACK", m(F::Repack)),
    flag("--no-host", Switch, "LLAMA_ARG_NO_HOST", m(F::NoHost)),
    flag("-ctk --cache-type-k", Value, "LLAMA_ARG_CACHE_TYPE_K", m(F::CacheTypeK)),
    flag("-ctv --cache-type-v", Value, "LLAMA_ARG_CACHE_TYPE_V", m(F::CacheTypeV)),
    flag("-np --parallel", Value, "LLAMA_ARG_N_PARALLEL", m(F::Parallel)),
    flag("-mm --mmproj", Value, "LLAMA_ARG_MMPROJ", m(F::Mmproj)),
    flag("--mmproj-auto | --no-mmproj --no-mmproj-auto", Pair, "LLAMA_ARG_MMPROJ_AUTO", m(F::MmprojAuto)),
    flag("--mmproj-offload | --no-mmproj-offload", Pair, "LLAMA_ARG_MMPROJ_OFFLOAD", m(F::MmprojOffload)),
    // No LLAMA_ARG_ prefix: llama.cpp keeps the mtmd library's own name.
    flag("-mmdev --mmproj-device", Value, "MTMD_BACKEND_DEVICE", m(F::MmprojDevice)),
    flag("-lm --load-mode", Value, "LLAMA_ARG_LOAD_MODE", m(F::LoadMode)),
    flag("-lzm --lazy-mode", Value, "LLAMA_ARG_LAZY_MODE", m(F::LazyMode)),
    flag("-dev --device", Value, "LLAMA_ARG_DEVICE", m(F::Device)),
    flag("-ot --override-tensor", Value, "LLAMA_ARG_OVERRIDE_TENSOR", m(F::OverrideTensor)),
    flag("-cmoe --cpu-moe", Switch, "LLAMA_ARG_CPU_MOE", m(F::CpuMoe)),
    flag("-ncmoe --n-cpu-moe", Value, "LLAMA_ARG_N_CPU_MOE", m(F::NCpuMoe)),
    flag("-ncffn --n-cpu-ffn", Value, "LLAMA_ARG_N_CPU_FFN", m(F::NCpuFfn)),
    flag("-ngl --gpu-layers --n-gpu-layers", Value, "LLAMA_ARG_N_GPU_LAYERS", m(F::GpuLayers)),
    flag("-fit --fit", Value, "LLAMA_ARG_FIT", m(F::Fit)),
    flag("-fitt --fit-target", Value, "LLAMA_ARG_FIT_TARGET", m(F::FitTarget)),
    flag("-fitc --fit-ctx", Value, "LLAMA_ARG_FIT_CTX", m(F::FitCtx)),
    flag("--lora", Value, "", m(F::Lora)),
    flag("--lora-scaled", Value, "", m(F::LoraScaled)),
    flag("--embedding --embeddings", Switch, "LLAMA_ARG_EMBEDDINGS", m(F::Embedding)),
    flag("--rerank --reranking", Switch, "LLAMA_ARG_RERANKING", m(F::Embedding)),
    flag("--cache-prompt | --no-cache-prompt", Pair, "LLAMA_ARG_CACHE_PROMPT", m(F::CachePrompt)),
    flag("--spec-draft-type-k -ctkd --cache-type-k-draft", Value, "LLAMA_ARG_SPEC_DRAFT_CACHE_TYPE_K", m(F::DraftCacheTypeK)),
    flag("--spec-draft-type-v -ctvd --cache-type-v-draft", Value, "LLAMA_ARG_SPEC_DRAFT_CACHE_TYPE_V", m(F::DraftCacheTypeV)),
    flag("--spec-draft-ngl -ngld --gpu-layers-draft --n-gpu-layers-draft", Value, "LLAMA_ARG_N_GPU_LAYERS_DRAFT", m(F::DraftGpuLayers)),
    flag("--spec-draft-model -md --model-draft", Value, "LLAMA_ARG_SPEC_DRAFT_MODEL", m(F::ModelDraft)),
    flag("--spec-type", Value, "LLAMA_ARG_SPEC_TYPE", m(F::SpecType)),
    flag("--spec-default", Switch, "", m(F::SpecDefault)),
    // Flags of older releases that change host RAM. Before --load-mode they were independent
    // settings (mmap on by default, so --mlock locked the mapping); the releases that had both
    // made each one assign the whole mode; 0c1e570 refuses them (args.rs reads either way).
    gone("--mmap | --no-mmap", Pair, "LLAMA_ARG_MMAP", m(F::LegacyMmap), "--load-mode mmap / --load-mode none"),
    gone("--mlock", Switch, "LLAMA_ARG_MLOCK", m(F::LegacyMlock), "--load-mode mmap+mlock (mlock without mmap)"),
    gone("-dio --direct-io | -ndio --no-direct-io", Pair, "LLAMA_ARG_DIO", m(F::LegacyDirectIo), "--load-mode dio"),
    gone("-cd --ctx-size-draft", Value, "", nm("the draft's own context size"), "nothing: the draft shares the target's context"),
    // Everything else 0c1e570 lists, and why it does not size host RAM (or what it does that
    // is not modelled).
    flag("-h --help --usage", Switch, "", nh(EXITS)),
    flag("--version", Switch, "", nh(EXITS)),
    flag("-cl --cache-list", Switch, "", nh(EXITS)),
    flag("--completion-bash", Switch, "", nh(EXITS)),
    flag("-t --threads", Value, "LLAMA_ARG_THREADS", nh(THREADS)),
    flag("-tb --threads-batch", Value, "", nh(THREADS)),
    flag("-C --cpu-mask", Value, "", nh(THREADS)),
    flag("-Cr --cpu-range", Value, "", nh(THREADS)),
    flag("--cpu-strict", Value, "", nh(THREADS)),
    flag("--prio", Value, "", nh(THREADS)),
    flag("--poll", Value, "", nh(THREADS)),
    flag("-Cb --cpu-mask-batch", Value, "", nh(THREADS)),
    flag("-Crb --cpu-range-batch", Value, "", nh(THREADS)),
    flag("--cpu-strict-batch", Value, "", nh(THREADS)),
    flag("--prio-batch", Value, "", nh(THREADS)),
    flag("--poll-batch", Value, "", nh(THREADS)),
    flag("-lcs --lookup-cache-static", Value, "", nm(LOOKUP_CACHE)),
    flag("-lcd --lookup-cache-dynamic", Value, "", nm(LOOKUP_CACHE)),
    flag("-n --predict --n-predict", Value, "LLAMA_ARG_N_PREDICT", nh(SAMPLING)),
    flag("--keep", Value, "", nh(SAMPLING)),
    flag("-cms --checkpoint-min-step", Value, "LLAMA_ARG_CHECKPOINT_MIN_SPACING_NT", nh("spacing of checkpoints (--ctx-checkpoints caps their number)")),
    flag("--cache-idle-slots | --no-cache-idle-slots", Pair, "LLAMA_ARG_CACHE_IDLE_SLOTS", nh("what enters the prompt cache (--cache-ram caps it)")),
    flag("--context-shift | --no-context-shift", Pair, "LLAMA_ARG_CONTEXT_SHIFT", nh("what a full slot does")),
    flag("--perf | --no-perf", Pair, "LLAMA_ARG_PERF", nh(LOGGING)),
    flag("-e --escape | --no-escape", Pair, "", nh(FORMATTING)),
    flag("-r --reverse-prompt", Value, "", nh(FORMATTING)),
    flag("-sp --special", Switch, "", nh(FORMATTING)),
    flag("--warmup | --no-warmup", Pair, "", nh("one empty decode at start")),
    flag("--spm-infill", Switch, "", nh(FORMATTING)),
    flag("--samplers", Value, "", nh(SAMPLING)),
    flag("-s --seed", Value, "", nh(SAMPLING)),
    flag("--sampler-seq --sampling-seq", Value, "", nh(SAMPLING)),
    flag("--ignore-eos", Switch, "", nh(SAMPLING)),
    flag("--temp --temperature", Value, "LLAMA_ARG_TEMPERATURE", nh(SAMPLING)),
    flag("--top-k", Value, "LLAMA_ARG_TOP_K", nh(SAMPLING)),
    flag("--top-p", Value, "LLAMA_ARG_TOP_P", nh(SAMPLING)),
    flag("--min-p", Value, "LLAMA_ARG_MIN_P", nh(SAMPLING)),
    flag("--top-nsigma --top-n-sigma", Value, "", nh(SAMPLING)),
    flag("--xtc-probability", Value, "", nh(SAMPLING)),
    flag("--xtc-threshold", Value, "", nh(SAMPLING)),
    flag("--typical --typical-p", Value, "", nh(SAMPLING)),
    flag("--repeat-last-n", Value, "", nh(SAMPLING)),
    flag("--repeat-penalty", Value, "LLAMA_ARG_REPEAT_PENALTY", nh(SAMPLING)),
    flag("--presence-penalty", Value, "LLAMA_ARG_PRESENCE_PENALTY", nh(SAMPLING)),
    flag("--frequency-penalty", Value, "LLAMA_ARG_FREQUENCY_PENALTY", nh(SAMPLING)),
    flag("--dry-multiplier", Value, "", nh(SAMPLING)),
    flag("--dry-base", Value, "", nh(SAMPLING)),
    flag("--dry-allowed-length", Value, "", nh(SAMPLING)),
    flag("--dry-penalty-last-n", Value, "", nh(SAMPLING)),
    flag("--dry-sequence-breaker", Value, "", nh(SAMPLING)),
    flag("--adaptive-target", Value, "", nh(SAMPLING)),
    flag("--adaptive-decay", Value, "", nh(SAMPLING)),
    flag("--dynatemp-range", Value, "", nh(SAMPLING)),
    flag("--dynatemp-exp", Value, "", nh(SAMPLING)),
    flag("--mirostat", Value, "", nh(SAMPLING)),
    flag("--mirostat-lr", Value, "", nh(SAMPLING)),
    flag("--mirostat-ent", Value, "", nh(SAMPLING)),
    flag("-l --logit-bias", Value, "", nh(SAMPLING)),
    flag("--grammar", Value, "", nh(SAMPLING)),
    flag("--grammar-file", Value, "", nh(SAMPLING)),
    flag("-j --json-schema", Value, "", nh(SAMPLING)),
    flag("-jf --json-schema-file", Value, "", nh(SAMPLING)),
    flag("-bs --backend-sampling", Switch, "LLAMA_ARG_BACKEND_SAMPLING", nh(SAMPLING)),
    flag("--pooling", Value, "LLAMA_ARG_POOLING", nh("how embeddings are pooled (the output buffer is sized either way)")),
    flag("--rope-scaling", Value, "LLAMA_ARG_ROPE_SCALING_TYPE", nh(ROPE)),
    flag("--rope-scale", Value, "LLAMA_ARG_ROPE_SCALE", nh(ROPE)),
    flag("--rope-freq-base", Value, "LLAMA_ARG_ROPE_FREQ_BASE", nh(ROPE)),
    flag("--rope-freq-scale", Value, "LLAMA_ARG_ROPE_FREQ_SCALE", nh(ROPE)),
    flag("--yarn-orig-ctx", Value, "LLAMA_ARG_YARN_ORIG_CTX", nh(ROPE)),
    flag("--yarn-ext-factor", Value, "LLAMA_ARG_YARN_EXT_FACTOR", nh(ROPE)),
    flag("--yarn-attn-factor", Value, "LLAMA_ARG_YARN_ATTN_FACTOR", nh(ROPE)),
    flag("--yarn-beta-slow", Value, "LLAMA_ARG_YARN_BETA_SLOW", nh(ROPE)),
    flag("--yarn-beta-fast", Value, "LLAMA_ARG_YARN_BETA_FAST", nh(ROPE)),
    flag("-dt --defrag-thold", Value, "LLAMA_ARG_DEFRAG_THOLD", nh("deprecated, does nothing")),
    flag("-cb --cont-batching | -nocb --no-cont-batching", Pair, "LLAMA_ARG_CONT_BATCHING", nh("batching policy")),
    flag("-mmu --mmproj-url", Value, "LLAMA_ARG_MMPROJ_URL", nm(DOWNLOAD)),
    flag("--image-min-tokens", Value, "LLAMA_ARG_IMAGE_MIN_TOKENS", nm(MM_COMPUTE)),
    flag("--image-max-tokens", Value, "LLAMA_ARG_IMAGE_MAX_TOKENS", nm(MM_COMPUTE)),
    flag("--mtmd-batch-max-tokens", Value, "LLAMA_ARG_MTMD_BATCH_MAX_TOKENS", nm(MM_COMPUTE)),
    flag("--video-fps", Value, "LLAMA_ARG_VIDEO_FPS", nm(VIDEO)),
    flag("--video-timestamp-interval", Value, "LLAMA_ARG_VIDEO_TIMESTAMP_INTERVAL", nm(VIDEO)),
    flag("--video-ffmpeg-dir", Value, "LLAMA_ARG_VIDEO_FFMPEG_DIR", nh("where ffmpeg is found")),
    flag("--rpc", Value, "LLAMA_ARG_RPC", nm(RPC)),
    flag("--numa", Value, "LLAMA_ARG_NUMA", nh("thread and page placement across NUMA nodes")),
    flag("--list-devices", Switch, "", nh(EXITS)),
    flag("-sm --split-mode", Value, "LLAMA_ARG_SPLIT_MODE", nh(GPU_SPLIT)),
    flag("-ts --tensor-split", Value, "LLAMA_ARG_TENSOR_SPLIT", nh(GPU_SPLIT)),
    flag("-mg --main-gpu", Value, "LLAMA_ARG_MAIN_GPU", nh(GPU_SPLIT)),
    flag("--check-tensors", Switch, "", nm(CHECK_TENSORS)),
    flag("--override-kv", Value, "", nm(OVERRIDE_KV)),
    flag("--op-offload | --no-op-offload", Pair, "", nh(GPU_SPLIT)),
    flag("--control-vector", Value, "", nh(CONTROL_VECTOR)),
    flag("--control-vector-scaled", Value, "", nh(CONTROL_VECTOR)),
    flag("--control-vector-layer-range", TwoValues, "", nh(CONTROL_VECTOR)),
    flag("-a --alias", Value, "LLAMA_ARG_ALIAS", nh(FRONTEND)),
    flag("--tags", Value, "LLAMA_ARG_TAGS", nh(FRONTEND)),
    flag("-mu --model-url", Value, "LLAMA_ARG_MODEL_URL", nm(DOWNLOAD)),
    flag("-dr --docker-repo", Value, "LLAMA_ARG_DOCKER_REPO", nm(DOWNLOAD)),
    flag("-hff --hf-file", Value, "LLAMA_ARG_HF_FILE", nm(DOWNLOAD)),
    flag("-hft --hf-token", Value, "HF_TOKEN", nh("a download credential")),
    flag("--embd-normalize", Value, "", nh(FORMATTING)),
    flag("--host", Value, "LLAMA_ARG_HOST", nh(FRONTEND)),
    flag("--port", Value, "LLAMA_ARG_PORT", nh(FRONTEND)),
    flag("--reuse-port", Switch, "LLAMA_ARG_REUSE_PORT", nh(FRONTEND)),
    flag("--path", Value, "LLAMA_ARG_STATIC_PATH", nh(FRONTEND)),
    flag("--cors-origins", Value, "LLAMA_ARG_CORS_ORIGINS", nh(FRONTEND)),
    flag("--cors-methods", Value, "LLAMA_ARG_CORS_METHODS", nh(FRONTEND)),
    flag("--cors-headers", Value, "LLAMA_ARG_CORS_HEADERS", nh(FRONTEND)),
    flag("--cors-credentials | --no-cors-credentials", Pair, "LLAMA_ARG_CORS_CREDENTIALS", nh(FRONTEND)),
    flag("--api-prefix", Value, "LLAMA_ARG_API_PREFIX", nh(FRONTEND)),
    flag("--ui-config --webui-config", Value, "LLAMA_ARG_UI_CONFIG", nh(FRONTEND)),
    flag("--ui-config-file --webui-config-file", Value, "LLAMA_ARG_UI_CONFIG_FILE", nh(FRONTEND)),
    flag("--ui-mcp-proxy --webui-mcp-proxy | --no-ui-mcp-proxy --no-webui-mcp-proxy", Pair, "LLAMA_ARG_UI_MCP_PROXY", nh(TOOLS)),
    flag("--tools", Value, "LLAMA_ARG_TOOLS", nh(TOOLS)),
    flag("--tools-runtime", Value, "LLAMA_ARG_TOOLS_RUNTIME", nh(TOOLS)),
    flag("--mcp-servers-config", Value, "LLAMA_ARG_MCP_SERVERS_CONFIG", nh(TOOLS)),
    flag("--mcp-servers-json", Value, "LLAMA_ARG_MCP_SERVERS_JSON", nh(TOOLS)),
    flag("-ag --agent | -no-ag --no-agent", Pair, "LLAMA_ARG_AGENT", nh(TOOLS)),
    flag("--ui --webui | --no-ui --no-webui", Pair, "LLAMA_ARG_UI", nh(FRONTEND)),
    flag("--api-key", Value, "LLAMA_API_KEY", nh(FRONTEND)),
    flag("--api-key-file", Value, "LLAMA_ARG_API_KEY_FILE", nh(FRONTEND)),
    flag("--ssl-key-file", Value, "LLAMA_ARG_SSL_KEY_FILE", nh(FRONTEND)),
    flag("--ssl-cert-file", Value, "LLAMA_ARG_SSL_CERT_FILE", nh(FRONTEND)),
    flag("--chat-template-kwargs", Value, "LLAMA_ARG_CHAT_TEMPLATE_KWARGS", nh(FORMATTING)),
    flag("-to --timeout", Value, "LLAMA_ARG_TIMEOUT", nh(FRONTEND)),
    flag("--sse-ping-interval", Value, "LLAMA_ARG_SSE_PING_INTERVAL", nh(FRONTEND)),
    flag("--threads-http", Value, "LLAMA_ARG_THREADS_HTTP", nh(THREADS)),
    flag("--cache-reuse", Value, "LLAMA_ARG_CACHE_REUSE", nh("reuse of cached prefixes by KV shifting")),
    flag("--metrics", Switch, "LLAMA_ARG_ENDPOINT_METRICS", nh(FRONTEND)),
    flag("--props", Switch, "LLAMA_ARG_ENDPOINT_PROPS", nh(FRONTEND)),
    flag("--slots | --no-slots", Pair, "LLAMA_ARG_ENDPOINT_SLOTS", nh(FRONTEND)),
    flag("--slot-save-path", Value, "", nh("slot state is saved to disk")),
    flag("--media-path", Value, "", nh(FRONTEND)),
    flag("--models-dir", Value, "LLAMA_ARG_MODELS_DIR", nm(ROUTER)),
    flag("--models-preset", Value, "LLAMA_ARG_MODELS_PRESET", nm(ROUTER)),
    flag("--models-max", Value, "LLAMA_ARG_MODELS_MAX", nm(ROUTER)),
    flag("--models-autoload | --no-models-autoload", Pair, "LLAMA_ARG_MODELS_AUTOLOAD", nm(ROUTER)),
    flag("--jinja | --no-jinja", Pair, "LLAMA_ARG_JINJA", nh(FORMATTING)),
    flag("--reasoning-format", Value, "LLAMA_ARG_THINK", nh(FORMATTING)),
    flag("-rea --reasoning", Value, "LLAMA_ARG_REASONING", nh(FORMATTING)),
    flag("--reasoning-effort", Value, "LLAMA_ARG_REASONING_EFFORT", nh(FORMATTING)),
    flag("--reasoning-budget", Value, "LLAMA_ARG_THINK_BUDGET", nh(FORMATTING)),
    flag("--reasoning-budget-message", Value, "LLAMA_ARG_THINK_BUDGET_MESSAGE", nh(FORMATTING)),
    flag("--reasoning-preserve | --no-reasoning-preserve", Pair, "LLAMA_ARG_REASONING_PRESERVE", nh(FORMATTING)),
    flag("--chat-template", Value, "LLAMA_ARG_CHAT_TEMPLATE", nh(FORMATTING)),
    flag("--chat-template-file", Value, "LLAMA_ARG_CHAT_TEMPLATE_FILE", nh(FORMATTING)),
    flag("--skip-chat-parsing | --no-skip-chat-parsing", Pair, "LLAMA_ARG_SKIP_CHAT_PARSING", nh(FORMATTING)),
    flag("--prefill-assistant | --no-prefill-assistant", Pair, "LLAMA_ARG_PREFILL_ASSISTANT", nh(FORMATTING)),
    flag("-sps --slot-prompt-similarity", Value, "", nh("which slot a request goes to")),
    flag("--lora-init-without-apply", Switch, "", nh("adapters are loaded either way")),
    flag("--sleep-idle-seconds", Value, "", nm(SLEEP)),
    flag("--log-disable", Switch, "", nh(LOGGING)),
    flag("--log-file", Value, "LLAMA_ARG_LOG_FILE", nh(LOGGING)),
    flag("--log-jsonl | --no-log-jsonl", Pair, "LLAMA_ARG_LOG_JSONL", nh(LOGGING)),
    flag("--log-prompts-dir", Value, "", nh(LOGGING)),
    flag("--log-colors", OptValue, "LLAMA_ARG_LOG_COLORS", nh(LOGGING)),
    flag("-v --verbose --log-verbose", Switch, "", nh(LOGGING)),
    flag("--offline", Switch, "LLAMA_ARG_OFFLINE", nh("downloads are skipped")),
    flag("-lv --verbosity --log-verbosity", Value, "LLAMA_ARG_LOG_VERBOSITY", nh(LOGGING)),
    flag("--log-prefix | --no-log-prefix", Pair, "LLAMA_ARG_LOG_PREFIX", nh(LOGGING)),
    flag("--log-timestamps | --no-log-timestamps", Pair, "LLAMA_ARG_LOG_TIMESTAMPS", nh(LOGGING)),
    flag("--spec-draft-hf -hfd -hfrd --hf-repo-draft", Value, "LLAMA_ARG_SPEC_DRAFT_HF_REPO", nm(DOWNLOAD)),
    flag("--spec-draft-threads -td --threads-draft", Value, "", nh(THREADS)),
    flag("--spec-draft-threads-batch -tbd --threads-batch-draft", Value, "", nh(THREADS)),
    flag("--spec-draft-cpu-mask -Cd --cpu-mask-draft", Value, "", nh(THREADS)),
    flag("--spec-draft-cpu-range -Crd --cpu-range-draft", Value, "", nh(THREADS)),
    flag("--spec-draft-cpu-strict --cpu-strict-draft", Value, "", nh(THREADS)),
    flag("--spec-draft-prio --prio-draft", Value, "", nh(THREADS)),
    flag("--spec-draft-poll --poll-draft", Value, "", nh(THREADS)),
    flag("--spec-draft-cpu-mask-batch -Cbd --cpu-mask-batch-draft", Value, "", nh(THREADS)),
    flag("--spec-draft-cpu-strict-batch --cpu-strict-batch-draft", Value, "", nh(THREADS)),
    flag("--spec-draft-prio-batch --prio-batch-draft", Value, "", nh(THREADS)),
    flag("--spec-draft-poll-batch --poll-batch-draft", Value, "", nh(THREADS)),
    flag("--spec-draft-override-tensor -otd --override-tensor-draft", Value, "", nm(DRAFT_PLACEMENT)),
    flag("--spec-draft-cpu-moe -cmoed --cpu-moe-draft", Switch, "LLAMA_ARG_SPEC_DRAFT_CPU_MOE", nm(DRAFT_PLACEMENT)),
    flag("--spec-draft-n-cpu-moe --spec-draft-ncmoe -ncmoed --n-cpu-moe-draft", Value, "LLAMA_ARG_SPEC_DRAFT_N_CPU_MOE", nm(DRAFT_PLACEMENT)),
    flag("--spec-draft-n-max", Value, "LLAMA_ARG_SPEC_DRAFT_N_MAX", nh(SPEC_POLICY)),
    flag("--spec-draft-n-min", Value, "LLAMA_ARG_SPEC_DRAFT_N_MIN", nh(SPEC_POLICY)),
    flag("--spec-synth-len", Value, "LLAMA_ARG_SPEC_SYNTH_LEN", nh(SPEC_POLICY)),
    flag("--spec-synth-rates", Value, "LLAMA_ARG_SPEC_SYNTH_RATES", nh(SPEC_POLICY)),
    flag("--spec-draft-p-split --draft-p-split", Value, "LLAMA_ARG_SPEC_DRAFT_P_SPLIT", nh(SPEC_POLICY)),
    flag("--spec-draft-p-min --draft-p-min", Value, "LLAMA_ARG_SPEC_DRAFT_P_MIN", nh(SPEC_POLICY)),
    flag("--spec-draft-backend-sampling | --no-spec-draft-backend-sampling", Pair, "LLAMA_ARG_SPEC_DRAFT_BACKEND_SAMPLING", nh(SPEC_POLICY)),
    flag("--spec-draft-device -devd --device-draft", Value, "", nm(DRAFT_PLACEMENT)),
    flag("--spec-ngram-mod-n-min", Value, "", nh(SPEC_POLICY)),
    flag("--spec-ngram-mod-n-max", Value, "", nh(SPEC_POLICY)),
    flag("--spec-ngram-mod-n-match", Value, "", nh(SPEC_POLICY)),
    flag("--spec-ngram-simple-size-n", Value, "", nh(SPEC_POLICY)),
    flag("--spec-ngram-simple-size-m", Value, "", nh(SPEC_POLICY)),
    flag("--spec-ngram-simple-min-hits", Value, "", nh(SPEC_POLICY)),
    flag("--spec-ngram-map-k-size-n", Value, "", nh(SPEC_POLICY)),
    flag("--spec-ngram-map-k-size-m", Value, "", nh(SPEC_POLICY)),
    flag("--spec-ngram-map-k-min-hits", Value, "", nh(SPEC_POLICY)),
    flag("--spec-ngram-map-k4v-size-n", Value, "", nh(SPEC_POLICY)),
    flag("--spec-ngram-map-k4v-size-m", Value, "", nh(SPEC_POLICY)),
    flag("--spec-ngram-map-k4v-min-hits", Value, "", nh(SPEC_POLICY)),
    // Listed by 0c1e570's help, but refused when given.
    gone("--draft --draft-n --draft-max", Value, "LLAMA_ARG_DRAFT_MAX", nh(SPEC_POLICY), "--spec-draft-n-max or --spec-ngram-mod-n-max"),
    gone("--draft-min --draft-n-min", Value, "LLAMA_ARG_DRAFT_MIN", nh(SPEC_POLICY), "--spec-draft-n-min or --spec-ngram-mod-n-min"),
    gone("--spec-ngram-size-n", Value, "", nh(SPEC_POLICY), "the respective --spec-ngram-*-size-n or --spec-ngram-mod-n-match"),
    gone("--spec-ngram-size-m", Value, "", nh(SPEC_POLICY), "the respective --spec-ngram-*-size-m"),
    gone("--spec-ngram-min-hits", Value, "", nh(SPEC_POLICY), "the respective --spec-ngram-*-min-hits"),
    flag("--embd-gemma-default", Switch, "", nm(PRESET)),
    flag("--fim-qwen-1.5b-default", Switch, "", nm(PRESET)),
    flag("--fim-qwen-3b-default", Switch, "", nm(PRESET)),
    flag("--fim-qwen-7b-default", Switch, "", nm(PRESET)),
    flag("--fim-qwen-7b-spec", Switch, "", nm(PRESET)),
    flag("--fim-qwen-14b-spec", Switch, "", nm(PRESET)),
    flag("--fim-qwen-30b-default", Switch, "", nm(PRESET)),
    flag("--gpt-oss-20b-default", Switch, "", nm(PRESET)),
    flag("--gpt-oss-120b-default", Switch, "", nm(PRESET)),
    flag("--vision-gemma-4b-default", Switch, "", nm(PRESET)),
    flag("--vision-gemma-12b-default", Switch, "", nm(PRESET)),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for f in FLAGS {
            for n in f.names().chain(f.negatives()) {
                assert!(n.starts_with('-'), "{n}");
                assert!(seen.insert(n), "{n} listed twice");
            }
        }
    }

    #[test]
    fn only_pairs_have_negative_spellings() {
        for f in FLAGS {
            assert_eq!(
                f.kind == Kind::Pair,
                f.negatives().next().is_some(),
                "{}",
                f.name()
            );
        }
    }

    #[test]
    fn spellings_resolve_like_llama_cpp() {
        let (f, neg) = lookup("-nkvo").unwrap();
        assert!(neg);
        assert_eq!(f.name(), "--kv-offload");
        assert_eq!(f.negative_name(), "--no-kv-offload");
        assert_eq!(f.negative_env().as_deref(), Some("LLAMA_ARG_NO_KV_OFFLOAD"));
        // Underscores stand for dashes only in `--` words.
        assert_eq!(lookup("--ctx_size").unwrap().0.name(), "--ctx-size");
        assert!(lookup("-n_gpu_layers").is_none());
        assert_eq!(lookup("--no-mmproj").unwrap().0.name(), "--mmproj-auto");
        assert!(lookup("--bogus").is_none());
        // A switch has no negative variable: LLAMA_ARG_NO_HOST is --no-host's own.
        assert_eq!(lookup("--no-host").unwrap().0.negative_env(), None);
    }

    #[test]
    fn the_variables_that_change_host_ram_include_negatives() {
        let vars = host_ram_env();
        for v in [
            "LLAMA_ARG_CTX_SIZE",
            "LLAMA_ARG_NO_MMAP",
            "LLAMA_ARG_LOAD_MODE",
        ] {
            assert!(vars.iter().any(|x| x == v), "{v}");
        }
        assert!(!vars.iter().any(|x| x == "LLAMA_ARG_PORT"));
    }
}
