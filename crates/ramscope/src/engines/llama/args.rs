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

/// `-lzm` / `--lazy-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LazyMode {
    /// Read such tensors' rows from disk on demand (needs mmap).
    On,
    /// On, for tensors larger than 4 GiB (the default).
    Auto,
    /// Keep them resident.
    Off,
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
    /// `--lora` files (and the files of `--lora-scaled FNAME:SCALE`).
    pub lora: Vec<String>,
    /// `-hf` / `--hf-repo`: the model comes from a Hugging Face repository (ramscope reads the
    /// file itself, `-m`); its projector comes too unless `--no-mmproj`.
    pub hf_repo: Option<String>,
    /// `--mmproj-auto` / `--no-mmproj`: whether `-hf` also loads the repository's projector.
    pub mmproj_auto: Option<bool>,
    /// `-lzm` / `--lazy-mode`: large tensors (per-layer embeddings) read from disk on demand
    /// instead of kept resident.
    pub lazy_mode: Option<LazyMode>,
    /// `-dev` / `--device` as written (`none`: nothing is offloaded, every layer stays on the
    /// CPU).
    pub devices: Option<String>,
    /// `-ot` entries `pattern=buffer type`, in the order llama.cpp tries them (those from
    /// `LLAMA_ARG_OVERRIDE_TENSOR` first): a tensor matching `=CPU` stays in host RAM.
    pub override_tensor: Vec<String>,
    /// `-ncffn` / `--n-cpu-ffn N`: the dense FFN weights of the first N layers stay on the CPU.
    pub n_cpu_ffn: Option<u64>,
    /// `-fitt` / `--fit-target` in MiB per device (one value: every device).
    pub fit_target_mib: Option<Vec<u64>>,
    /// `-fitc` / `--fit-ctx`: the smallest context `--fit` may shrink to.
    pub fit_ctx: Option<u64>,
    /// `-ngld` / `--gpu-layers-draft`: the draft model's layers on the GPU.
    pub draft_gpu_layers: Option<GpuLayers>,
    /// `-ctkd` / `--cache-type-k-draft`: the draft model's K cache type.
    pub draft_cache_type_k: Option<String>,
    /// `-ctvd` / `--cache-type-v-draft`.
    pub draft_cache_type_v: Option<String>,
    /// `--spec-type` names in order (`--spec-default` adds `ngram-mod`, a 16 MiB table).
    pub spec_types: Vec<String>,
    /// `NAME=VALUE` words in front of the program.
    pub env: Vec<(String, String)>,
    /// Every flag given, by its long name, in order (for "you asked" in reports).
    pub given: Vec<String>,
    /// Flags translated from an older spelling, or accepted but ignored, in a sentence each.
    pub notes: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Parsing, by llama.cpp 0c1e570's rules (docs/llama-server-command-line.md §1): flags only,
// no positional words; a value is the next word whatever it looks like; no `--flag=value`;
// `_` for `-` in `--` words; the last of a repeated flag wins (lists add up); the environment
// is read first and the command line overrides it.

use std::collections::BTreeMap;

use super::flags::{lookup, Effect, Field, Flag, Kind, FLAGS};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("unknown llama-server flag {flag}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownFlag {
        flag: String,
        suggestion: Option<String>,
    },
    #[error("llama-server does not read \"{word}\": write {flag} {value} (a space, not '=')")]
    EqualsValue {
        word: String,
        flag: String,
        value: String,
    },
    #[error("llama-server flag {flag} needs a value")]
    MissingValue { flag: String },
    /// A value llama-server refuses; `flag` is the spelling or the variable it came from.
    #[error("llama-server {flag}: \"{value}\" is not {expected}")]
    BadValue {
        flag: String,
        value: String,
        expected: &'static str,
    },
    #[error("unexpected argument \"{arg}\": llama-server takes only flags (the model is -m FILE)")]
    Positional { arg: String },
    #[error("unbalanced quotes in the command line")]
    Quotes,
}

/// The cache types llama.cpp 0c1e570 accepts for `-ctk` / `-ctv` (common/arg.cpp
/// `kv_cache_types`).
pub const KV_CACHE_TYPES: &[&str] = &[
    "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1",
];
const KV_CACHE_TYPES_TEXT: &str = "one of f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1";

/// `--spec-type` names (common/speculative.cpp's name map).
const SPEC_TYPES: &[&str] = &[
    "none",
    "draft-simple",
    "draft-eagle3",
    "draft-mtp",
    "draft-dflash",
    "draft-dspark",
    "ngram-simple",
    "ngram-map-k",
    "ngram-map-k4v",
    "ngram-mod",
    "ngram-cache",
];

/// Splits a shell command line into words (quotes, backslashes, line continuations).
pub fn split_command_line(line: &str) -> Result<Vec<String>, ArgsError> {
    crate::engines::vllm::args::split_command_line(line).map_err(|_| ArgsError::Quotes)
}

/// Parses a command line given as one string (see [`parse`]).
pub fn parse_str(line: &str) -> Result<LlamaArgs, ArgsError> {
    parse(&split_command_line(line)?)
}

/// Parses llama-server flags, or a whole command line: `env`, `NAME=VALUE` words (applied
/// like the environment they are), the program (`llama-server`, `/x/llama-server`,
/// `./build/bin/llama-server`), then flags. Variables of the environment the server inherits
/// are added with [`LlamaArgs::apply_env`].
pub fn parse(argv: &[String]) -> Result<LlamaArgs, ArgsError> {
    let mut parser = Parser::default();
    parser.load.ordered = true;
    let rest = strip_launcher(argv, &mut parser.args);
    let mut i = 0;
    while i < rest.len() {
        let word = &rest[i];
        i += 1;
        if !word.starts_with('-') || word == "-" {
            return Err(ArgsError::Positional { arg: word.clone() });
        }
        let (flag, negated) = lookup(word).ok_or_else(|| unknown(word))?;
        let take = |i: &mut usize| match rest.get(*i) {
            Some(v) => {
                *i += 1;
                Ok(v.as_str())
            }
            None => Err(ArgsError::MissingValue { flag: word.clone() }),
        };
        let value = match flag.kind {
            Kind::Switch | Kind::Pair => None,
            Kind::Value => Some(take(&mut i)?),
            Kind::OptValue => match rest.get(i) {
                Some(v) if is_switch_word(v) => {
                    i += 1;
                    Some(v.as_str())
                }
                _ => {
                    parser.args.notes.push(format!(
                        "{word} without a value (older releases' switch) read as {word} on; this release needs on, off or auto"
                    ));
                    None
                }
            },
            Kind::TwoValues => {
                let first = take(&mut i)?;
                take(&mut i)?;
                Some(first)
            }
        };
        let name = if negated {
            flag.negative_name()
        } else {
            flag.name()
        };
        parser.args.given.push(name.to_string());
        if let Some(now) = flag.removed {
            parser
                .args
                .notes
                .push(format!("{word}: llama.cpp 0c1e570 refuses it (now: {now})"));
        }
        parser.apply(flag, negated, value, word)?;
    }
    let mut args = parser.finish();
    let line_env: BTreeMap<String, String> = args.env.iter().cloned().collect();
    args.apply_vars(&line_env, "on the command line")?;
    Ok(args)
}

/// Drops `env` and `NAME=VALUE` words (kept in `args.env`) and the program (kept in
/// `args.program` when it is llama-server); returns the flags.
fn strip_launcher<'a>(argv: &'a [String], args: &mut LlamaArgs) -> &'a [String] {
    let mut i = 0;
    if argv.first().is_some_and(|w| w == "env") {
        i += 1;
    }
    while let Some((name, value)) = argv.get(i).and_then(|w| assignment(w)) {
        args.env.push((name.to_string(), value.to_string()));
        i += 1;
    }
    if let Some(w) = argv.get(i) {
        let base = w.rsplit('/').next().unwrap_or(w);
        // `server` is what the binary was called before it was renamed llama-server.
        if !w.starts_with('-') && (base.starts_with("llama-server") || base == "server") {
            args.program = Some(w.clone());
            i += 1;
        }
    }
    &argv[i..]
}

fn assignment(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    let mut chars = name.chars();
    let first = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    (first && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some((name, value))
}

fn unknown(word: &str) -> ArgsError {
    if let Some((name, value)) = word.split_once('=') {
        if let Some((flag, _)) = lookup(name) {
            if flag.kind != Kind::Switch && flag.kind != Kind::Pair {
                return ArgsError::EqualsValue {
                    word: word.to_string(),
                    flag: name.to_string(),
                    value: value.to_string(),
                };
            }
        }
    }
    ArgsError::UnknownFlag {
        flag: word.to_string(),
        suggestion: suggest(word),
    }
}

/// The known spelling closest to an unknown one: within an edit distance of a third of its
/// length (dashes aside), or one it abbreviates (`--ctx` → `--ctx-size`). Spellings whose
/// length alone puts them out of reach are skipped before the O(n·m) distance, so a hostile
/// 64 KiB word costs nothing.
pub fn suggest(word: &str) -> Option<String> {
    let body = word.trim_start_matches('-').replace('_', "-");
    if body.is_empty() {
        return None;
    }
    let len = body.chars().count();
    let limit = (len / 3).max(1);
    let names = || FLAGS.iter().flat_map(|f| f.names().chain(f.negatives()));
    let typo = names()
        .filter(|n| n.trim_start_matches('-').chars().count().abs_diff(len) <= limit)
        .map(|n| (strsim::levenshtein(&body, n.trim_start_matches('-')), n))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, n)| (*d, n.len()));
    let abbreviation = || {
        (len >= 3)
            .then(|| {
                names()
                    .filter(|n| n.starts_with("--") && n[2..].starts_with(&body))
                    .min_by_key(|n| n.len())
            })
            .flatten()
    };
    typo.map(|(_, n)| n)
        .or_else(abbreviation)
        .map(str::to_string)
}

/// llama.cpp's `is_truthy`, `is_falsey`, `is_autoy`.
fn is_truthy(v: &str) -> bool {
    matches!(v, "on" | "enabled" | "true" | "1")
}
fn is_falsey(v: &str) -> bool {
    matches!(v, "off" | "disabled" | "false" | "0")
}
fn is_autoy(v: &str) -> bool {
    matches!(v, "auto" | "-1")
}
/// A word `-fa` (or `--log-colors`) takes as its value rather than as the next flag.
fn is_switch_word(v: &str) -> bool {
    is_truthy(v) || is_falsey(v) || is_autoy(v)
}

fn parse_bool(source: &str, v: &str) -> Result<bool, ArgsError> {
    if is_truthy(v) {
        Ok(true)
    } else if is_falsey(v) {
        Ok(false)
    } else {
        Err(ArgsError::BadValue {
            flag: source.to_string(),
            value: v.to_string(),
            expected: "on or off (true, false, 1, 0, enabled, disabled)",
        })
    }
}

/// The load flags of a line, resolved into one [`LoadMode`] at the end (see
/// [`LoadFlags::resolve`]).
#[derive(Debug, Default)]
struct LoadFlags {
    /// `--load-mode` as given: the line comes from a release that had it.
    explicit: Option<LoadMode>,
    /// Whether the flags came in a command line's order (the environment has none: there
    /// `LLAMA_ARG_LOAD_MODE` wins over the old variables).
    ordered: bool,
    /// The mode the last load flag assigned (the rule of releases that had `--load-mode`
    /// beside the old flags: each assigned the whole mode, the last won).
    last: Option<LoadMode>,
    /// The old flags as the independent settings they were before `--load-mode`.
    old: bool,
    mmap: Option<bool>,
    mlock: bool,
    direct_io: Option<bool>,
}

impl LoadFlags {
    fn resolve(&self) -> (Option<LoadMode>, Option<String>) {
        match self.explicit {
            Some(mode) if !self.ordered => return (Some(mode), None),
            Some(_) => return (self.last, None),
            None if !self.old => return (None, None),
            None => {}
        }
        // Before --load-mode: direct I/O (when asked) replaced mmap; mmap was on unless
        // --no-mmap; --mlock locked whatever held the weights.
        let mode = if self.direct_io == Some(true) {
            LoadMode::DirectIo
        } else {
            match (self.mmap.unwrap_or(true), self.mlock) {
                (true, true) => LoadMode::MmapMlock,
                (false, true) => LoadMode::Mlock,
                (true, false) => LoadMode::Mmap,
                (false, false) => LoadMode::None,
            }
        };
        let word = load_mode_word(mode);
        let note = format!(
            "the load flags of releases before --load-mode read as --load-mode {word} (they combined; releases that had both spellings let the last flag set the whole mode)"
        );
        (Some(mode), Some(note))
    }
}

fn load_mode_word(mode: LoadMode) -> &'static str {
    match mode {
        LoadMode::Auto => "auto",
        LoadMode::None => "none",
        LoadMode::Mmap => "mmap",
        LoadMode::Mlock => "mlock",
        LoadMode::MmapMlock => "mmap+mlock",
        LoadMode::DirectIo => "dio",
    }
}

#[derive(Debug, Default)]
struct Parser {
    args: LlamaArgs,
    load: LoadFlags,
}

impl Parser {
    fn finish(mut self) -> LlamaArgs {
        let (mode, note) = self.load.resolve();
        if mode.is_some() {
            self.args.load_mode = mode;
        }
        self.args.notes.extend(note);
        self.args
    }

    /// Sets what `flag` (spelled `source`: the word or the variable) with `value` means.
    fn apply(
        &mut self,
        flag: &Flag,
        negated: bool,
        value: Option<&str>,
        source: &str,
    ) -> Result<(), ArgsError> {
        let field = match flag.effect {
            Effect::Models(field) => field,
            Effect::NotModelled(what) => {
                self.args
                    .notes
                    .push(format!("{source}: not modelled ({what})"));
                return Ok(());
            }
            Effect::NoHostRam(_) => return Ok(()),
        };
        let v = value.unwrap_or("");
        let bad = |expected: &'static str| ArgsError::BadValue {
            flag: source.to_string(),
            value: v.to_string(),
            expected,
        };
        let text = || Some(v.to_string());
        let a = &mut self.args;
        match field {
            Field::Model => a.model = text(),
            Field::HfRepo => a.hf_repo = text(),
            Field::Mmproj => a.mmproj = text(),
            Field::ModelDraft => a.model_draft = text(),
            Field::MmprojAuto => a.mmproj_auto = Some(!negated),
            Field::MmprojOffload => a.mmproj_offload = Some(!negated),
            Field::MmprojDevice => a.mmproj_offload = Some(v != "none"),
            Field::KvUnified => a.kv_unified = Some(!negated),
            Field::KvOffload => a.kv_offload = Some(!negated),
            Field::Repack => a.repack = Some(!negated),
            Field::CachePrompt => a.cache_prompt = Some(!negated),
            Field::NoHost => a.no_host = true,
            Field::SwaFull => a.swa_full = true,
            Field::Embedding => a.embedding = true,
            Field::CpuMoe => a.cpu_moe = true,
            Field::CtxSize => a.ctx_size = Some(count(v).ok_or_else(|| bad(COUNT))?),
            Field::KvUnifiedPerSlot => {
                a.kv_unified_per_slot = Some(count(v).ok_or_else(|| bad(COUNT))?)
            }
            Field::CtxCheckpoints => a.ctx_checkpoints = Some(count(v).ok_or_else(|| bad(COUNT))?),
            Field::NCpuMoe => a.n_cpu_moe = Some(count(v).ok_or_else(|| bad(COUNT))?),
            Field::NCpuFfn => a.n_cpu_ffn = Some(count(v).ok_or_else(|| bad(COUNT))?),
            Field::FitCtx => a.fit_ctx = Some(count(v).ok_or_else(|| bad(COUNT))?),
            Field::Batch => a.batch = Some(positive(v).ok_or_else(|| bad(POSITIVE))?),
            Field::Ubatch => a.ubatch = Some(positive(v).ok_or_else(|| bad(POSITIVE))?),
            Field::Parallel => {
                // tools/server: 0 is refused, any negative number means auto.
                let n = int(v).filter(|n| *n != 0);
                a.parallel = Some(n.ok_or_else(|| bad("a whole number other than 0 (-1: auto)"))?)
            }
            Field::CacheRam => {
                a.cache_ram_mib = Some(
                    int(v).ok_or_else(|| bad("MiB as a whole number (-1: no limit, 0: off)"))?,
                )
            }
            Field::GpuLayers => a.gpu_layers = Some(gpu_layers(v).ok_or_else(|| bad(LAYERS))?),
            Field::DraftGpuLayers => {
                a.draft_gpu_layers = Some(gpu_layers(v).ok_or_else(|| bad(LAYERS))?)
            }
            Field::CacheTypeK => {
                a.cache_type_k = Some(kv_type(v).ok_or_else(|| bad(KV_CACHE_TYPES_TEXT))?)
            }
            Field::CacheTypeV => {
                a.cache_type_v = Some(kv_type(v).ok_or_else(|| bad(KV_CACHE_TYPES_TEXT))?)
            }
            Field::DraftCacheTypeK => {
                a.draft_cache_type_k = Some(kv_type(v).ok_or_else(|| bad(KV_CACHE_TYPES_TEXT))?)
            }
            Field::DraftCacheTypeV => {
                a.draft_cache_type_v = Some(kv_type(v).ok_or_else(|| bad(KV_CACHE_TYPES_TEXT))?)
            }
            Field::FlashAttn => {
                a.flash_attn = Some(match value {
                    None => FlashAttn::On,
                    Some(w) if is_truthy(w) => FlashAttn::On,
                    Some(w) if is_falsey(w) => FlashAttn::Off,
                    Some(w) if is_autoy(w) => FlashAttn::Auto,
                    Some(_) => return Err(bad("on, off or auto")),
                })
            }
            Field::Fit => a.fit = Some(parse_bool(source, v)?),
            Field::LazyMode => {
                a.lazy_mode = Some(match v {
                    "on" => LazyMode::On,
                    "auto" => LazyMode::Auto,
                    "off" => LazyMode::Off,
                    _ => return Err(bad("on, auto or off")),
                })
            }
            Field::LoadMode => {
                let mode = match v {
                    "auto" => LoadMode::Auto,
                    "none" => LoadMode::None,
                    "mmap" => LoadMode::Mmap,
                    "mlock" => LoadMode::Mlock,
                    "mmap+mlock" => LoadMode::MmapMlock,
                    "dio" => LoadMode::DirectIo,
                    _ => return Err(bad("one of auto, none, mmap, mlock, mmap+mlock, dio")),
                };
                self.load.explicit = Some(mode);
                self.load.last = Some(mode);
            }
            Field::LegacyMmap => {
                self.load.old = true;
                self.load.mmap = Some(!negated);
                self.load.last = Some(if negated {
                    LoadMode::None
                } else {
                    LoadMode::Mmap
                });
            }
            Field::LegacyMlock => {
                self.load.old = true;
                self.load.mlock = true;
                self.load.last = Some(LoadMode::Mlock);
            }
            Field::LegacyDirectIo => {
                self.load.old = true;
                self.load.direct_io = Some(!negated);
                self.load.last = Some(if negated {
                    LoadMode::None
                } else {
                    LoadMode::DirectIo
                });
            }
            Field::Device => {
                if v.is_empty() {
                    return Err(bad("a comma-separated list of devices, or none"));
                }
                a.devices = text()
            }
            Field::OverrideTensor => {
                let entries: Vec<&str> = v.split(',').collect();
                if entries.iter().any(|e| !e.contains('=')) {
                    return Err(bad("pattern=buffer type entries separated by commas"));
                }
                a.override_tensor
                    .extend(entries.iter().map(|e| e.to_string()));
            }
            Field::FitTarget => {
                // MiB per device, separated by ',' or '/'; llama.cpp multiplies by 2^20.
                let mib: Option<Vec<u64>> = v
                    .split([',', '/'])
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse::<u64>()
                            .ok()
                            .filter(|m| m.checked_mul(1 << 20).is_some())
                    })
                    .collect();
                a.fit_target_mib = Some(
                    mib.filter(|m| !m.is_empty())
                        .ok_or_else(|| bad("MiB per device, separated by commas"))?,
                );
            }
            Field::Lora => a.lora.extend(csv(v)),
            Field::LoraScaled => {
                for item in csv(v) {
                    match item.split(':').collect::<Vec<_>>()[..] {
                        [file, scale] if scale.parse::<f32>().is_ok() => {
                            a.lora.push(file.to_string())
                        }
                        _ => return Err(bad("FNAME:SCALE entries separated by commas")),
                    }
                }
            }
            Field::SpecType => {
                let names: Vec<&str> = v.split(',').collect();
                if names.iter().any(|n| !SPEC_TYPES.contains(n)) {
                    return Err(bad("speculative types (none, draft-simple, draft-eagle3, draft-mtp, draft-dflash, draft-dspark, ngram-simple, ngram-map-k, ngram-map-k4v, ngram-mod, ngram-cache) separated by commas"));
                }
                a.spec_types.extend(names.iter().map(|n| n.to_string()));
            }
            Field::SpecDefault => a.spec_types.push("ngram-mod".to_string()),
        }
        Ok(())
    }
}

const COUNT: &str = "a whole number from 0 to 2147483647";
const POSITIVE: &str = "a whole number from 1 to 2147483647";
const LAYERS: &str = "auto, all or a number of layers";

/// A number as llama.cpp's `std::stoi` reads it, refused (not wrapped) outside 32 bits.
fn int(v: &str) -> Option<i64> {
    v.parse::<i32>().ok().map(i64::from)
}

fn count(v: &str) -> Option<u64> {
    int(v).and_then(|n| u64::try_from(n).ok())
}

fn positive(v: &str) -> Option<u64> {
    count(v).filter(|n| *n > 0)
}

/// `-ngl`: `auto`, `all`, or a number (-1 is auto, -2 and below all: common/common.h).
fn gpu_layers(v: &str) -> Option<GpuLayers> {
    match v {
        "auto" => Some(GpuLayers::Auto),
        "all" => Some(GpuLayers::All),
        _ => match int(v)? {
            -1 => Some(GpuLayers::Auto),
            n if n < -1 => Some(GpuLayers::All),
            n => Some(GpuLayers::Count(n as u64)),
        },
    }
}

fn kv_type(v: &str) -> Option<String> {
    KV_CACHE_TYPES.contains(&v).then(|| v.to_string())
}

/// llama.cpp's comma-separated values: `"…"` quotes a field with commas, `""` is a quote.
fn csv(v: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if field.is_empty() => quoted = true,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

mod env;

#[cfg(test)]
mod tests;
