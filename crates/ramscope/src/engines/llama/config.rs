//! A llama-server command line with the release's defaults applied: the context and slots
//! as llama.cpp pads and splits them, the cache types, the load mode, which layers stay on
//! the CPU (docs/llama-host-ram.md §2). Everything a component formula reads is here, so the
//! report can print the configuration that was actually estimated.

use super::args::{FlashAttn, GpuLayers, LlamaArgs, LoadMode};
use super::model::Hparams;
use crate::gguf::types;

/// What a llama.cpp release defaults to, one row per release read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// The llama.cpp commit (what `llama-server --version` prints after "commit").
    pub commit: &'static str,
    /// Where it was read from.
    pub shipped_in: &'static str,
    /// `-np -1` (auto) resolves to this many slots with a unified KV cache.
    pub auto_slots: u64,
    /// `--cache-ram` default in MiB.
    pub cache_ram_mib: i64,
    pub ctx_checkpoints: u64,
    pub n_batch: u64,
    pub n_ubatch: u64,
}

/// Every release whose source was read, oldest first. The citations in
/// [`super::components`] are to these.
pub const RELEASES: &[Release] = &[Release {
    commit: "0c1e570",
    shipped_in: "llama-cpp-python 0.3.36",
    // tools/server/server.cpp:156-160 and common/common.h:452-454, 631, 634 @0c1e570.
    auto_slots: 4,
    cache_ram_mib: 8192,
    ctx_checkpoints: 32,
    n_batch: 2048,
    n_ubatch: 512,
}];

/// How the weights reach memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loading {
    /// CPU weights are views into a file mapping (page cache), not copies.
    pub mmap: bool,
    /// Pages are locked with mlock (resident, counted against RLIMIT_MEMLOCK).
    pub mlock: bool,
    /// Read with O_DIRECT: the file does not pass through the page cache.
    pub direct_io: bool,
}

/// The prompt cache's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheCap {
    Off,
    Mib(u64),
    /// `--cache-ram -1`: no byte limit (only the token limit, the context size).
    NoLimit,
}

/// A KV cache element type and its ggml block size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvType {
    pub name: &'static str,
    pub type_id: u32,
}

impl KvType {
    /// Bytes of a row of `n` elements (`ggml_row_size`): `n / block × block bytes`.
    pub fn row_bytes(self, n: u64) -> u64 {
        types::tensor_bytes(self.type_id, n).unwrap_or_else(|| {
            // A width that is not a whole number of blocks: llama.cpp refuses such a cache;
            // round up so the estimate errs high rather than failing.
            let (_, block, bytes) = types::lookup(self.type_id).unwrap_or(("", 1, 2));
            n.div_ceil(block).saturating_mul(bytes)
        })
    }
}

/// The KV types llama-server accepts for `-ctk` / `-ctv` (common/arg.cpp kv_cache_types).
const KV_TYPES: &[&str] = &[
    "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1",
];

pub fn kv_type(name: &str) -> Option<KvType> {
    let lower = name.to_ascii_lowercase();
    if !KV_TYPES.contains(&lower.as_str()) {
        return None;
    }
    types::TYPES
        .iter()
        .find(|(_, n, _, _)| n.eq_ignore_ascii_case(&lower))
        .map(|&(id, n, _, _)| KvType {
            name: n,
            type_id: id,
        })
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub release: Release,
    /// A GPU backend is present (a CUDA build with a device).
    pub gpu: bool,
    /// Context cells in all (after padding) and per sequence stream.
    pub n_ctx: u64,
    pub n_ctx_seq: u64,
    /// Server slots (`n_seq_max`).
    pub n_seq: u64,
    pub unified: bool,
    /// KV streams: 1 when unified, one per slot otherwise.
    pub n_stream: u64,
    pub n_batch: u64,
    pub n_ubatch: u64,
    pub type_k: KvType,
    pub type_v: KvType,
    pub flash_attn: bool,
    pub loading: Loading,
    pub repack: bool,
    pub no_host: bool,
    /// Layers (counting the output layer as layer n_layer) on the GPU.
    pub gpu_layers: u64,
    pub kv_offload: bool,
    pub cache: CacheCap,
    pub ctx_checkpoints: u64,
    pub swa_full: bool,
    pub embedding: bool,
    /// Expert tensors (`*_exps`) of layers below this stay on the CPU whatever `-ngl` says
    /// (`--cpu-moe`: every layer; `--n-cpu-moe N`: the first N).
    pub cpu_moe_layers: u64,
    /// Defaults that surprise, assumptions made.
    pub notes: Vec<String>,
}

impl Resolved {
    /// The first layer on the GPU (`i_gpu_start`): layers below it stay on the CPU.
    pub fn first_gpu_layer(&self, n_layer: u64) -> u64 {
        (n_layer + 1).saturating_sub(self.gpu_layers)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
}

/// Applies `release`'s defaults to `args` for `model`; `gpu`: a GPU device is present.
pub fn resolve(
    args: &LlamaArgs,
    model: &Hparams,
    release: Release,
    gpu: bool,
) -> Result<Resolved, ConfigError> {
    let mut notes = Vec::new();
    let bad = |s: String| ConfigError::Invalid(s);

    // Slots: -1 (the default) is 4 slots sharing one unified KV cache
    // (tools/server/server.cpp:156-160).
    let (n_seq, auto_unified) = match args.parallel {
        None | Some(-1) => {
            notes.push(format!(
                "-np not set: llama-server runs {} slots sharing one unified KV cache",
                release.auto_slots
            ));
            (release.auto_slots, true)
        }
        Some(n) if (1..=256).contains(&n) => (n as u64, false),
        Some(n) => return Err(bad(format!("--parallel {n}: expected -1 or 1..256"))),
    };
    let unified = args.kv_unified.unwrap_or(auto_unified);

    // Context: 0 is the training context; padded to 256 (src/llama-context.cpp:290-305).
    let mut n_ctx = match (args.ctx_size, args.kv_unified_per_slot) {
        (Some(c), _) if c > 0 => c,
        (_, Some(per_slot)) if per_slot > 0 => per_slot.saturating_mul(n_seq),
        _ => {
            if model.n_ctx_train == 0 {
                return Err(bad(format!(
                    "-c not given and {} names no context_length",
                    model.path.display()
                )));
            }
            notes.push(format!(
                "-c not given: the model's training context, {} tokens",
                model.n_ctx_train
            ));
            model.n_ctx_train
        }
    };
    if n_ctx > 1 << 32 {
        return Err(bad(format!(
            "context of {n_ctx} tokens: llama.cpp keeps it in 32 bits"
        )));
    }
    n_ctx = pad(n_ctx, 256);
    let n_ctx_seq = if unified {
        n_ctx
    } else {
        let seq = pad(n_ctx / n_seq, 256);
        if seq == 0 {
            return Err(bad(format!(
                "context {n_ctx} split over {n_seq} slots is 0"
            )));
        }
        n_ctx = seq * n_seq;
        seq
    };
    let n_stream = if unified { 1 } else { n_seq };

    let n_ubatch = args.ubatch.unwrap_or(release.n_ubatch);
    let mut n_batch = args.batch.unwrap_or(release.n_batch);
    if args.embedding {
        // Embeddings need a batch in one ubatch (tools/server/server.cpp:150-154).
        n_batch = n_batch.min(n_ubatch);
    }
    let n_ubatch = n_ubatch.min(n_batch);
    if n_batch == 0 || n_ubatch == 0 {
        return Err(bad("batch sizes must be at least 1".into()));
    }

    let kv = |given: &Option<String>, flag: &str| -> Result<KvType, ConfigError> {
        let name = given.as_deref().unwrap_or("f16");
        kv_type(name).ok_or_else(|| {
            bad(format!(
                "{flag} {name}: not a KV cache type ({})",
                KV_TYPES.join(", ")
            ))
        })
    };
    let type_k = kv(&args.cache_type_k, "--cache-type-k")?;
    let type_v = kv(&args.cache_type_v, "--cache-type-v")?;
    // Auto turns flash attention on when every device supports it, which the CPU backend
    // does (src/llama-context.cpp:3818-3824).
    let flash_attn = !matches!(args.flash_attn, Some(FlashAttn::Off));
    if !flash_attn
        && !["f16", "f32", "bf16"]
            .iter()
            .any(|t| type_v.name.eq_ignore_ascii_case(t))
    {
        return Err(bad(
            "a quantized V cache needs flash attention (-fa on)".into()
        ));
    }

    // Load mode: auto is mmap where every device can map (src/llama-model.cpp:1512-1520).
    let loading = match args.load_mode.unwrap_or(LoadMode::Auto) {
        LoadMode::Auto | LoadMode::Mmap => Loading {
            mmap: true,
            mlock: false,
            direct_io: false,
        },
        LoadMode::MmapMlock => Loading {
            mmap: true,
            mlock: true,
            direct_io: false,
        },
        LoadMode::None => Loading {
            mmap: false,
            mlock: false,
            direct_io: false,
        },
        LoadMode::Mlock => Loading {
            mmap: false,
            mlock: true,
            direct_io: false,
        },
        LoadMode::DirectIo => Loading {
            mmap: false,
            mlock: false,
            direct_io: true,
        },
    };

    let n_layer = model.n_layer;
    let gpu_layers = if !gpu {
        0
    } else {
        match args.gpu_layers.unwrap_or(GpuLayers::Auto) {
            GpuLayers::Count(n) => n.min(n_layer + 1),
            GpuLayers::All => n_layer + 1,
            GpuLayers::Auto => {
                notes.push(
                    "-ngl auto: assumed every layer fits on the GPU (--fit lowers it when they do not)"
                        .into(),
                );
                n_layer + 1
            }
        }
    };
    if !gpu && matches!(args.gpu_layers, Some(GpuLayers::Count(n)) if n > 0) {
        notes.push("-ngl given but no GPU device: every layer stays on the CPU".into());
    }

    let cache = if args.cache_prompt == Some(false) {
        CacheCap::Off
    } else {
        match args.cache_ram_mib.unwrap_or(release.cache_ram_mib) {
            0 => CacheCap::Off,
            n if n < 0 => CacheCap::NoLimit,
            n => CacheCap::Mib(n as u64),
        }
    };
    if args.cache_ram_mib.is_none() && cache != CacheCap::Off {
        notes.push(format!(
            "--cache-ram not set: the prompt cache may grow to {} MiB with traffic",
            release.cache_ram_mib
        ));
    }
    if args.ctx_size.is_none() && args.fit != Some(false) && !gpu {
        notes.push(
            "--fit is on: with no GPU, llama-server lowers an unset -c when host RAM (all of it, cgroup limits ignored) is short".into(),
        );
    }
    if !args.override_tensor.is_empty() {
        notes.push(format!(
            "-ot {}: tensor overrides are not modelled; tensors are placed by -ngl alone",
            args.override_tensor.join(",")
        ));
    }
    notes.extend(args.notes.iter().cloned());

    Ok(Resolved {
        release,
        gpu,
        n_ctx,
        n_ctx_seq,
        n_seq,
        unified,
        n_stream,
        n_batch,
        n_ubatch,
        type_k,
        type_v,
        flash_attn,
        loading,
        repack: args.repack.unwrap_or(true),
        no_host: args.no_host,
        gpu_layers,
        kv_offload: args.kv_offload.unwrap_or(true),
        cache,
        ctx_checkpoints: args.ctx_checkpoints.unwrap_or(release.ctx_checkpoints),
        swa_full: args.swa_full,
        embedding: args.embedding,
        cpu_moe_layers: if args.cpu_moe {
            n_layer
        } else {
            args.n_cpu_moe.unwrap_or(0).min(n_layer)
        },
        notes,
    })
}

/// `GGML_PAD`: `x` rounded up to a multiple of `n`.
pub fn pad(x: u64, n: u64) -> u64 {
    x.div_ceil(n).saturating_mul(n)
}
