//! A llama-server command line as given: every setting that changes host RAM, `None` where
//! the line (and its `LLAMA_ARG_*` variables) left it to the default. Defaults are applied in
//! [`super::config`], not here, so reports can tell "you asked" from "the default".

/// `-ngl` / `--n-gpu-layers`: how many layers go to the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuLayers {
    /// `auto` (the default in releases with `--fit`): as many as fit.
    Auto,
    /// `all`, or a number at least the layer count.
    All,
    Count(u64),
}

/// `--load-mode` (and the `--no-mmap` / `--mlock` / `--mmap` flags older releases had).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// `auto`: mmap unless a device cannot use it.
    Auto,
    /// `none`: read into allocated buffers (`--no-mmap` before).
    None,
    Mmap,
    /// `mlock`: read into allocated buffers and lock them.
    Mlock,
    /// `mmap+mlock`: map and lock the mapping (`--mlock` before).
    MmapMlock,
    /// `dio`: read with O_DIRECT into allocated buffers, bypassing the page cache.
    DirectIo,
}

/// `-fa` / `--flash-attn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashAttn {
    On,
    Off,
    Auto,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlamaArgs {
    /// The program as written (`llama-server`, `/opt/llama/bin/llama-server`).
    pub program: Option<String>,
    /// `-m` / `--model`.
    pub model: Option<String>,
    /// `-mm` / `--mmproj`.
    pub mmproj: Option<String>,
    /// `-md` / `--model-draft`.
    pub model_draft: Option<String>,
    /// `-c` / `--ctx-size` (0: the model's training context).
    pub ctx_size: Option<u64>,
    /// `-np` / `--parallel` (-1: auto).
    pub parallel: Option<i64>,
    /// `-kvu` / `--kv-unified`, `-no-kvu`.
    pub kv_unified: Option<bool>,
    /// `--kv-unified-per-slot N`.
    pub kv_unified_per_slot: Option<u64>,
    /// `-ngl`.
    pub gpu_layers: Option<GpuLayers>,
    pub load_mode: Option<LoadMode>,
    /// `-ctk` / `--cache-type-k` as written (`f16`, `q8_0`).
    pub cache_type_k: Option<String>,
    /// `-ctv` / `--cache-type-v`.
    pub cache_type_v: Option<String>,
    /// `-b` / `--batch-size`.
    pub batch: Option<u64>,
    /// `-ub` / `--ubatch-size`.
    pub ubatch: Option<u64>,
    pub flash_attn: Option<FlashAttn>,
    /// `-kvo` / `-nkvo`.
    pub kv_offload: Option<bool>,
    /// `-cram` / `--cache-ram` in MiB (-1: no limit, 0: off).
    pub cache_ram_mib: Option<i64>,
    /// `--cache-prompt` / `--no-cache-prompt`.
    pub cache_prompt: Option<bool>,
    /// `-ctxcp` / `--ctx-checkpoints`.
    pub ctx_checkpoints: Option<u64>,
    /// `--repack` / `-nr` / `--no-repack`.
    pub repack: Option<bool>,
    /// `--no-host`.
    pub no_host: bool,
    /// `--swa-full`.
    pub swa_full: bool,
    /// `--embedding`.
    pub embedding: bool,
    /// `-fit` / `--fit on|off`.
    pub fit: Option<bool>,
    /// `--mmproj-offload` / `--no-mmproj-offload`.
    pub mmproj_offload: Option<bool>,
    /// `-cmoe` / `--cpu-moe`.
    pub cpu_moe: bool,
    /// `-ncmoe` / `--n-cpu-moe N`.
    pub n_cpu_moe: Option<u64>,
    /// `--lora` files.
    pub lora: Vec<String>,
    /// `NAME=VALUE` words in front of the program.
    pub env: Vec<(String, String)>,
    /// Every flag given, by its long name, in order (for "you asked" in reports).
    pub given: Vec<String>,
    /// Flags translated from an older spelling, or accepted but ignored, in a sentence each.
    pub notes: Vec<String>,
}
