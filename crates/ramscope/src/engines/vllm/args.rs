//! vLLM's command line, parsed the way vLLM parses it: `--flag value`, `--flag=value`,
//! `--no-flag`, underscores for dashes, short forms (`-tp 2`, `-O3`), dotted config keys
//! (`-cc.cudagraph_mode=NONE`), and whole command lines (`vllm serve M …`,
//! `python -m vllm.entrypoints.openai.api_server --model M …`, with `NAME=VALUE` environment
//! assignments in front).
//!
//! Every flag of vLLM 0.32's `--help=all` is in [`FLAGS`]: either it drives a host-RAM
//! formula (a [`Field`]) or it carries the reason it does not. Flags of older releases that
//! newer ones removed are kept, with the release that removed them.

use std::collections::BTreeMap;

use serde::Serialize;

pub use super::command_line::split_command_line;
use super::command_line::strip_launcher;
use super::flags::m;
pub use super::flags::{Effect, Field, Flag, Kind, FLAGS};
use super::Version;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("unknown vLLM flag {flag}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownFlag {
        flag: String,
        suggestion: Option<String>,
    },
    #[error("vLLM flag {flag} needs a value")]
    MissingValue { flag: String },
    #[error("vLLM flag {flag}: \"{value}\" is not {expected}")]
    BadValue {
        flag: String,
        value: String,
        expected: &'static str,
    },
    #[error("unexpected argument \"{arg}\" (the model is already \"{model}\")")]
    ExtraPositional { arg: String, model: String },
    #[error("unbalanced quotes in the command line")]
    Quotes,
}

use Field as F;
use Kind::*;

/// A parsed vLLM command line: what the user set, nothing defaulted yet (see
/// [`super::defaults::resolve`]). Change fields and re-estimate to see what a flag would do.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VllmArgs {
    pub model: Option<String>,
    pub max_model_len: Option<u64>,
    pub max_num_seqs: Option<u64>,
    pub max_num_batched_tokens: Option<u64>,
    pub block_size: Option<u64>,
    pub dtype: Option<String>,
    pub kv_cache_dtype: Option<String>,
    pub gpu_memory_utilization: Option<f64>,
    pub kv_cache_memory_bytes: Option<u64>,
    pub num_gpu_blocks_override: Option<u64>,
    /// GiB. Unused by V1; removed in 0.18.
    pub swap_space: Option<f64>,
    pub cpu_offload_gb: Option<f64>,
    /// GiB, total across TP × PP.
    pub kv_offloading_size: Option<f64>,
    pub kv_offloading_backend: Option<String>,
    /// JSON.
    pub kv_transfer_config: Option<String>,
    pub enforce_eager: Option<bool>,
    pub enable_sleep_mode: Option<bool>,
    pub safetensors_load_strategy: Option<String>,
    pub safetensors_prefetch_num_threads: Option<u64>,
    pub load_format: Option<String>,
    /// JSON.
    pub model_loader_extra_config: Option<String>,
    pub max_parallel_loading_workers: Option<u64>,
    pub mm_processor_cache_gb: Option<f64>,
    pub mm_processor_cache_type: Option<String>,
    pub mm_shm_cache_max_object_size_mb: Option<u64>,
    /// JSON, e.g. `{"image": 0}`.
    pub limit_mm_per_prompt: Option<String>,
    pub language_model_only: Option<bool>,
    pub mm_encoder_only: Option<bool>,
    pub api_server_count: Option<u64>,
    pub tensor_parallel_size: Option<u64>,
    pub pipeline_parallel_size: Option<u64>,
    pub data_parallel_size: Option<u64>,
    pub data_parallel_size_local: Option<u64>,
    pub decode_context_parallel_size: Option<u64>,
    pub headless: bool,
    pub enable_lora: Option<bool>,
    pub max_loras: Option<u64>,
    pub max_cpu_loras: Option<u64>,
    pub max_lora_rank: Option<u64>,
    /// JSON.
    pub speculative_config: Option<String>,
    pub spec_method: Option<String>,
    pub spec_model: Option<String>,
    pub spec_tokens: Option<u64>,
    pub enable_prefix_caching: Option<bool>,
    pub prefix_caching_hash_algo: Option<String>,
    pub max_logprobs: Option<u64>,
    pub skip_tokenizer_init: Option<bool>,
    pub enable_prompt_embeds: Option<bool>,
    /// JSON or a level; dotted keys (`-cc.cudagraph_mode=NONE`) are merged in.
    pub compilation_config: BTreeMap<String, String>,
    pub cudagraph_capture_sizes: Option<Vec<u64>>,
    pub max_cudagraph_capture_size: Option<u64>,
    pub optimization_level: Option<u64>,
    pub attention_backend: Option<String>,
    pub distributed_executor_backend: Option<String>,
    pub async_scheduling: Option<bool>,
    pub enable_chunked_prefill: Option<bool>,
    pub enable_shm_tensor_arena: Option<bool>,
    pub quantization: Option<String>,
    pub config_file: Option<String>,
    /// `--offload-backend`: auto, uva or prefetch.
    pub offload_backend: Option<String>,
    pub offload_group_size: Option<u64>,
    pub offload_num_in_group: Option<u64>,
    pub offload_prefetch_step: Option<u64>,
    pub offload_params: Option<Vec<String>>,
    pub sleep_mode_offload_cudagraph: Option<bool>,
    /// `NAME=VALUE` assignments written before the command.
    pub env: BTreeMap<String, String>,
    /// Every flag as given (canonical name → raw value, `true` for switches).
    pub given: BTreeMap<String, String>,
    /// Flags that change nothing in host RAM, with why.
    pub ignored: Vec<(String, &'static str)>,
    /// Flags removed by some release (checked against the chosen version later).
    pub removed: Vec<(String, Version)>,
}

/// Parses a command line given as one string (see [`parse`]).
pub fn parse_str(line: &str) -> Result<VllmArgs, ArgsError> {
    parse(&split_command_line(line)?)
}

/// Parses vLLM flags, or a whole vLLM command line with its launcher and any leading
/// `NAME=VALUE` environment assignments.
pub fn parse(argv: &[String]) -> Result<VllmArgs, ArgsError> {
    let mut args = VllmArgs::default();
    let rest = strip_launcher(argv, &mut args.env);
    let mut i = 0;
    while i < rest.len() {
        let word = &rest[i];
        i += 1;
        if word == "--" {
            continue;
        }
        if !word.starts_with('-') || word == "-" || is_number(word) {
            match &args.model {
                None => {
                    args.model = Some(word.clone());
                    args.given.insert("--model".into(), word.clone());
                }
                Some(model) => {
                    return Err(ArgsError::ExtraPositional {
                        arg: word.clone(),
                        model: model.clone(),
                    })
                }
            }
            continue;
        }
        let (raw_name, inline) = match word.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (word.clone(), None),
        };
        // `-O3` is `--optimization-level 3`.
        if let Some(level) = raw_name
            .strip_prefix("-O")
            .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
        {
            apply(
                &mut args,
                FLAG_OPT_LEVEL,
                "--optimization-level",
                Some(level.to_string()),
            )?;
            continue;
        }
        let (name, dotted) = split_dotted(&raw_name);
        let (flag, negated) = lookup(&name).ok_or_else(|| ArgsError::UnknownFlag {
            flag: raw_name.clone(),
            suggestion: suggest(&name),
        })?;
        if let Some(key) = dotted {
            // `--compilation-config.mode 3` / `-cc.cudagraph_mode=NONE`.
            let value = match inline {
                Some(v) => v,
                None => take_value(rest, &mut i, &raw_name)?,
            };
            if flag.effect == Effect::Models(Field::CompilationConfig) {
                args.compilation_config
                    .insert(key.to_string(), value.clone());
            }
            record(&mut args, flag, &format!("{}.{key}", flag.name), &value);
            continue;
        }
        let value = match (flag.kind, negated) {
            (_, true) => {
                if inline.is_some() {
                    return Err(ArgsError::BadValue {
                        flag: raw_name,
                        value: inline.unwrap_or_default(),
                        expected: "a flag without a value",
                    });
                }
                Some("false".to_string())
            }
            (Bool | Switch, false) => match inline {
                Some(v) => Some(parse_bool(&raw_name, &v)?.to_string()),
                None => Some("true".to_string()),
            },
            (Value, false) => Some(match inline {
                Some(v) => v,
                None => take_value(rest, &mut i, &raw_name)?,
            }),
            (OptValue, false) => match inline {
                Some(v) => Some(v),
                None if i < rest.len() && !rest[i].starts_with('-') => {
                    i += 1;
                    Some(rest[i - 1].clone())
                }
                None => Some(String::new()),
            },
            (Multi, false) => {
                let mut values: Vec<String> = inline.into_iter().collect();
                while i < rest.len() && (!rest[i].starts_with('-') || is_number(&rest[i])) {
                    values.push(rest[i].clone());
                    i += 1;
                }
                if values.is_empty() {
                    return Err(ArgsError::MissingValue { flag: raw_name });
                }
                Some(values.join(" "))
            }
        };
        apply(&mut args, flag, &raw_name, value)?;
    }
    Ok(args)
}

const FLAG_OPT_LEVEL: &Flag = &m("--optimization-level", &["-O"], Value, F::OptimizationLevel);

fn is_number(s: &str) -> bool {
    s.parse::<f64>().is_ok()
}

fn take_value(rest: &[String], i: &mut usize, flag: &str) -> Result<String, ArgsError> {
    match rest.get(*i) {
        // A value may start with '-' only when it is a number (`--seed -1`).
        Some(v) if !v.starts_with('-') || is_number(v) => {
            *i += 1;
            Ok(v.clone())
        }
        _ => Err(ArgsError::MissingValue {
            flag: flag.to_string(),
        }),
    }
}

/// `--compilation-config.mode` → (`--compilation-config`, `mode`); `-cc.x` likewise.
fn split_dotted(name: &str) -> (String, Option<&str>) {
    let body = name.trim_start_matches('-');
    match body.split_once('.') {
        Some((head, key)) if !head.is_empty() => {
            let dashes = &name[..name.len() - body.len()];
            (format!("{dashes}{head}"), Some(key))
        }
        _ => (name.to_string(), None),
    }
}

/// Finds a flag by any spelling; the bool says it was the `--no-` form.
pub fn lookup(name: &str) -> Option<(&'static Flag, bool)> {
    // vLLM accepts underscores for dashes in long flags.
    let norm = match name.strip_prefix("--") {
        Some(long) => format!("--{}", long.replace('_', "-")),
        None => name.to_string(),
    };
    let find = |n: &str| FLAGS.iter().find(|f| f.name == n || f.aliases.contains(&n));
    if let Some(f) = find(&norm) {
        return Some((f, false));
    }
    let positive = norm.strip_prefix("--no-")?;
    let f = find(&format!("--{positive}"))?;
    (f.kind == Bool).then_some((f, true))
}

/// The known flag closest to an unknown one, if any is close: within an edit distance of a
/// third of the name (a typo), or one the name abbreviates (`--quant`). Names are compared
/// without their dashes, which every flag shares, so `--bogus-flag` matches nothing.
/// Every flag name and alias vLLM knows.
fn all_names() -> impl Iterator<Item = &'static str> {
    FLAGS
        .iter()
        .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
}

/// The names within `limit` edits of `body` could be: the edit distance is at least the
/// difference in length, so longer or shorter names are skipped before the O(n·m) distance.
/// A hostile 64 KiB "flag" then costs no distance at all (found by fuzzing: such words cost
/// ~1 ms each, over a second once instrumented).
fn typo_candidates(body: &str, limit: usize) -> impl Iterator<Item = &'static str> + '_ {
    let len = body.chars().count();
    all_names().filter(move |c| c.trim_start_matches('-').chars().count().abs_diff(len) <= limit)
}

pub fn suggest(name: &str) -> Option<String> {
    let body = name.trim_start_matches('-').replace('_', "-");
    if body.is_empty() {
        return None;
    }
    let limit = (body.chars().count() / 3).max(1);
    let typo = typo_candidates(&body, limit)
        .map(|c| (strsim::levenshtein(&body, c.trim_start_matches('-')), c))
        .filter(|(d, _)| *d <= limit)
        // Closest first; among equals, the one sharing the longer start.
        .min_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                let jw = |c: &str| strsim::jaro_winkler(&body, c.trim_start_matches('-'));
                jw(b.1).total_cmp(&jw(a.1))
            })
        });
    let abbreviation = || {
        (body.chars().count() >= 3)
            .then(|| {
                all_names()
                    .filter(|c| c.starts_with("--") && c[2..].starts_with(&body))
                    .min_by_key(|c| c.len())
            })
            .flatten()
    };
    typo.map(|(_, c)| c)
        .or_else(abbreviation)
        .map(str::to_string)
}

fn parse_bool(flag: &str, v: &str) -> Result<bool, ArgsError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ArgsError::BadValue {
            flag: flag.to_string(),
            value: v.to_string(),
            expected: "true or false",
        }),
    }
}

fn record(args: &mut VllmArgs, flag: &Flag, key: &str, value: &str) {
    args.given.insert(key.to_string(), value.to_string());
    if let Effect::NoHostRam(why) = flag.effect {
        args.ignored.push((flag.name.to_string(), why));
    }
    if let Some(v) = flag.removed_in {
        if !args.removed.iter().any(|(n, _)| n == flag.name) {
            args.removed.push((flag.name.to_string(), v));
        }
    }
}

fn apply(
    args: &mut VllmArgs,
    flag: &Flag,
    raw: &str,
    value: Option<String>,
) -> Result<(), ArgsError> {
    let value = value.unwrap_or_default();
    record(args, flag, flag.name, &value);
    let Effect::Models(field) = flag.effect else {
        return Ok(());
    };
    let bad = |expected: &'static str| ArgsError::BadValue {
        flag: raw.to_string(),
        value: value.clone(),
        expected,
    };
    let int = || -> Result<u64, ArgsError> {
        parse_int(&value).ok_or_else(|| bad("a non-negative integer"))
    };
    let float = || -> Result<f64, ArgsError> {
        value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| bad("a non-negative number"))
    };
    let boolean = || parse_bool(raw, &value);
    let text = || Some(value.clone());
    match field {
        F::Model => args.model = text(),
        F::MaxModelLen => {
            args.max_model_len =
                Some(parse_len(&value).ok_or_else(|| bad("a length such as 5120, 32k or 1M"))?)
        }
        F::MaxNumSeqs => args.max_num_seqs = Some(int()?),
        F::MaxNumBatchedTokens => {
            args.max_num_batched_tokens =
                Some(parse_len(&value).ok_or_else(|| bad("a token count"))?)
        }
        F::BlockSize => args.block_size = Some(int()?),
        F::Dtype => args.dtype = text(),
        F::KvCacheDtype => args.kv_cache_dtype = text(),
        F::GpuMemoryUtilization => args.gpu_memory_utilization = Some(float()?),
        F::KvCacheMemoryBytes => {
            args.kv_cache_memory_bytes = Some(
                crate::units::parse_bytes(&value)
                    // parse_bytes saturates at u64::MAX: that is 16 EiB or more, not a size.
                    .filter(|b| *b != u64::MAX)
                    .ok_or_else(|| bad("a byte size below 16 EiB"))?,
            )
        }
        F::NumGpuBlocksOverride => args.num_gpu_blocks_override = Some(int()?),
        F::SwapSpace => args.swap_space = Some(float()?),
        F::CpuOffloadGb => args.cpu_offload_gb = Some(float()?),
        F::KvOffloadingSize => args.kv_offloading_size = Some(float()?),
        F::KvOffloadingBackend => args.kv_offloading_backend = text(),
        F::KvTransferConfig => {
            // vLLM parses it as a JSON object; what the keys mean is checked with the release.
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&value)
                .map_err(|_| bad("a JSON object"))?;
            args.kv_transfer_config = text()
        }
        F::EnforceEager => args.enforce_eager = Some(boolean()?),
        F::EnableSleepMode => args.enable_sleep_mode = Some(boolean()?),
        F::SafetensorsLoadStrategy => args.safetensors_load_strategy = text(),
        F::SafetensorsPrefetchThreads => args.safetensors_prefetch_num_threads = Some(int()?),
        F::LoadFormat => args.load_format = text(),
        F::ModelLoaderExtraConfig => args.model_loader_extra_config = text(),
        F::MaxParallelLoadingWorkers => args.max_parallel_loading_workers = Some(int()?),
        F::MmProcessorCacheGb => {
            // `--disable-mm-preprocessor-cache` (0.10) is a switch meaning a 0 GiB cache.
            args.mm_processor_cache_gb = Some(if flag.kind == Switch {
                if boolean()? {
                    0.0
                } else {
                    4.0
                }
            } else {
                float()?
            })
        }
        F::MmProcessorCacheType => args.mm_processor_cache_type = text(),
        F::MmShmCacheMaxObjectSizeMb => args.mm_shm_cache_max_object_size_mb = Some(int()?),
        F::LimitMmPerPrompt => args.limit_mm_per_prompt = text(),
        F::LanguageModelOnly => args.language_model_only = Some(boolean()?),
        F::MmEncoderOnly => args.mm_encoder_only = Some(boolean()?),
        F::ApiServerCount => args.api_server_count = Some(int()?),
        F::TensorParallelSize => {
            args.tensor_parallel_size =
                Some(positive(int()?).ok_or_else(|| bad("a positive integer"))?)
        }
        F::PipelineParallelSize => {
            args.pipeline_parallel_size =
                Some(positive(int()?).ok_or_else(|| bad("a positive integer"))?)
        }
        F::DataParallelSize => {
            args.data_parallel_size =
                Some(positive(int()?).ok_or_else(|| bad("a positive integer"))?)
        }
        F::DataParallelSizeLocal => args.data_parallel_size_local = Some(int()?),
        F::DecodeContextParallelSize => {
            args.decode_context_parallel_size =
                Some(positive(int()?).ok_or_else(|| bad("a positive integer"))?)
        }
        F::Headless => args.headless = boolean()?,
        F::EnableLora => args.enable_lora = Some(boolean()?),
        F::MaxLoras => args.max_loras = Some(int()?),
        F::MaxCpuLoras => args.max_cpu_loras = Some(int()?),
        F::MaxLoraRank => args.max_lora_rank = Some(int()?),
        F::SpeculativeConfig => {
            serde_json::from_str::<serde_json::Value>(&value).map_err(|_| bad("a JSON object"))?;
            args.speculative_config = text()
        }
        F::SpecMethod => args.spec_method = text(),
        F::SpecModel => args.spec_model = text(),
        F::SpecTokens => args.spec_tokens = Some(int()?),
        F::EnablePrefixCaching => args.enable_prefix_caching = Some(boolean()?),
        F::PrefixCachingHashAlgo => args.prefix_caching_hash_algo = text(),
        F::MaxLogprobs => args.max_logprobs = Some(int()?),
        F::SkipTokenizerInit => args.skip_tokenizer_init = Some(boolean()?),
        F::EnablePromptEmbeds => args.enable_prompt_embeds = Some(boolean()?),
        F::CompilationConfig => {
            if let Ok(level) = value.parse::<u64>() {
                args.compilation_config
                    .insert("mode".into(), level.to_string());
            } else {
                let json: serde_json::Value =
                    serde_json::from_str(&value).map_err(|_| bad("a JSON object or a level"))?;
                let obj = json
                    .as_object()
                    .ok_or_else(|| bad("a JSON object or a level"))?;
                for (k, v) in obj {
                    let v = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    args.compilation_config.insert(k.clone(), v);
                }
            }
        }
        F::CudagraphCaptureSizes => {
            let sizes: Option<Vec<u64>> = value
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_matches(['[', ']']).parse().ok())
                .collect();
            args.cudagraph_capture_sizes = Some(sizes.ok_or_else(|| bad("a list of integers"))?);
        }
        F::MaxCudagraphCaptureSize => args.max_cudagraph_capture_size = Some(int()?),
        F::OptimizationLevel => args.optimization_level = Some(int()?),
        F::AttentionBackend => args.attention_backend = text(),
        F::DistributedExecutorBackend => args.distributed_executor_backend = text(),
        F::AsyncScheduling => args.async_scheduling = Some(boolean()?),
        F::EnableChunkedPrefill => args.enable_chunked_prefill = Some(boolean()?),
        F::EnableShmTensorArena => args.enable_shm_tensor_arena = Some(boolean()?),
        F::Quantization => args.quantization = text(),
        F::ConfigFile => args.config_file = text(),
        F::OffloadBackend => args.offload_backend = text(),
        F::OffloadGroupSize => args.offload_group_size = Some(int()?),
        F::OffloadNumInGroup => args.offload_num_in_group = Some(int()?),
        F::OffloadPrefetchStep => args.offload_prefetch_step = Some(int()?),
        F::OffloadParams => {
            args.offload_params = Some(value.split_whitespace().map(str::to_string).collect())
        }
        F::SleepModeOffloadCudagraph => args.sleep_mode_offload_cudagraph = Some(boolean()?),
    }
    Ok(())
}

fn positive(v: u64) -> Option<u64> {
    (v > 0).then_some(v)
}

fn parse_int(s: &str) -> Option<u64> {
    s.trim().replace('_', "").parse().ok()
}

/// vLLM's `human_readable_int`: `5120`, `32k`, `25.6k` (×1000 for k, m, g, t) and `32K`
/// (×1024 for K, M, G, T; whole numbers only). `None` for anything else, including a value
/// that does not fit in 64 bits.
pub fn parse_len(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(n) = parse_int(s) {
        return Some(n);
    }
    let suffix = s.chars().last()?;
    // Cut at a char boundary: the suffix may be any character of the user's text.
    let num = &s[..s.len() - suffix.len_utf8()];
    let (whole, frac) = match num.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (num, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    let decimal = |mult: f64| {
        // int(float(number) * mult): truncated.
        let v: f64 = num.parse().ok()?;
        crate::units::Checked::from_f64((v * mult).trunc()).get()
    };
    let binary = |shift: u32| {
        if frac.is_some() {
            return None; // "Decimals are not allowed with binary suffixes"
        }
        whole.parse::<u64>().ok()?.checked_mul(1 << shift)
    };
    match suffix {
        'k' => decimal(1e3),
        'm' => decimal(1e6),
        'g' => decimal(1e9),
        't' => decimal(1e12),
        'K' => binary(10),
        'M' => binary(20),
        'G' => binary(30),
        'T' => binary(40),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_command_line(s).unwrap()
    }

    #[test]
    fn parses_flags_in_every_spelling() {
        let a = parse(&words(
            "--max-model-len 5120 --max_num_seqs=256 -tp 2 --enforce-eager --no-enable-prefix-caching -O3 -cc.cudagraph_mode=NONE --max-model-len=32K",
        ))
        .unwrap();
        assert_eq!(a.max_model_len, Some(32_768));
        assert_eq!(a.max_num_seqs, Some(256));
        assert_eq!(a.tensor_parallel_size, Some(2));
        assert_eq!(a.enforce_eager, Some(true));
        assert_eq!(a.enable_prefix_caching, Some(false));
        assert_eq!(a.optimization_level, Some(3));
        assert_eq!(
            a.compilation_config
                .get("cudagraph_mode")
                .map(String::as_str),
            Some("NONE")
        );
    }

    #[test]
    fn parses_whole_command_lines() {
        let a = parse_str("VLLM_CPU_KVCACHE_SPACE=1 /opt/venv/bin/python3 -m vllm.entrypoints.openai.api_server --model /m --max-model-len 5120 --port 18001").unwrap();
        assert_eq!(a.model.as_deref(), Some("/m"));
        assert_eq!(
            a.env.get("VLLM_CPU_KVCACHE_SPACE").map(String::as_str),
            Some("1")
        );
        let b = parse_str("vllm serve Qwen/Qwen3-8B --max-model-len 5120").unwrap();
        assert_eq!(b.model.as_deref(), Some("Qwen/Qwen3-8B"));
        let c =
            parse_str("/usr/bin/python3 /usr/local/bin/vllm serve Qwen/Qwen3-8B -tp=4").unwrap();
        assert_eq!(c.model.as_deref(), Some("Qwen/Qwen3-8B"));
        assert_eq!(c.tensor_parallel_size, Some(4));
        let d = parse_str("Qwen/Qwen3-8B --cudagraph-capture-sizes 1 2 4 --dtype bf16").unwrap();
        assert_eq!(d.cudagraph_capture_sizes, Some(vec![1, 2, 4]));
        assert_eq!(d.dtype.as_deref(), Some("bf16"));
    }

    #[test]
    fn unknown_flags_name_the_closest() {
        let e = parse(&words("--max-model-length 5120")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown vLLM flag --max-model-length (did you mean --max-model-len?)"
        );
        assert!(matches!(
            parse(&words("--max-num-seqs")),
            Err(ArgsError::MissingValue { .. })
        ));
        assert!(matches!(
            parse(&words("--max-num-seqs lots")),
            Err(ArgsError::BadValue { .. })
        ));
        assert!(matches!(
            parse(&words("-tp 0")),
            Err(ArgsError::BadValue { .. })
        ));
        assert!(matches!(parse_str("--model 'x"), Err(ArgsError::Quotes)));
    }

    #[test]
    fn a_long_unknown_flag_costs_no_distance_computations() {
        let long = format!("max-{}model-len", "\u{92}".repeat(4000));
        assert_eq!(typo_candidates(&long, 1334).count(), 0);
        assert_eq!(suggest(&format!("--{long}")), None);
        assert!(typo_candidates("max-model-length", 5).any(|c| c == "--max-model-len"));
    }

    #[test]
    fn suggestions_are_only_close_matches() {
        let s = |n: &str| suggest(n);
        assert_eq!(s("--max-model-length").as_deref(), Some("--max-model-len"));
        assert_eq!(s("--max_num_seq").as_deref(), Some("--max-num-seqs"));
        assert_eq!(
            s("--enable-prefix-cache").as_deref(),
            Some("--enable-prefix-caching")
        );
        assert_eq!(s("--quant").as_deref(), Some("--quantization"));
        assert_eq!(s("-tpp").as_deref(), Some("-tp"));
        // Unrelated names get no suggestion (this one used to get --cpu-offload-gb).
        for unrelated in [
            "--bogus-flag",
            "--json",
            "--vllm-version",
            "--xyzzy",
            "--",
            "-",
        ] {
            assert_eq!(s(unrelated), None, "{unrelated}");
        }
        let e = parse(&words("--bogus-flag")).unwrap_err();
        assert_eq!(e.to_string(), "unknown vLLM flag --bogus-flag");
    }

    #[test]
    fn lengths_follow_human_readable_int() {
        assert_eq!(parse_len("32K"), Some(32 << 10));
        assert_eq!(parse_len("25.6k"), Some(25_600));
        assert_eq!(parse_len("1M"), Some(1 << 20));
        assert_eq!(parse_len("2T"), Some(2 << 40));
        assert_eq!(parse_len("1.5K"), None);
        // Would pass 2^64: refused, not wrapped or saturated.
        assert_eq!(parse_len("99999999999999999999k"), None);
        assert_eq!(parse_len("18014398509481984T"), None);
        // A multi-byte last character is not cut in half.
        assert_eq!(parse_len("5é"), None);
        assert_eq!(parse_len("é"), None);
        assert_eq!(parse_len("k"), None);
        assert_eq!(parse_len("1e3k"), None);
        assert!(matches!(
            parse(&words("--max-model-len 18446744073709551616")),
            Err(ArgsError::BadValue { .. })
        ));
    }

    #[test]
    fn removed_flags_are_remembered() {
        let a = parse(&words("--swap-space 4")).unwrap();
        assert_eq!(a.swap_space, Some(4.0));
        assert_eq!(
            a.removed,
            vec![("--swap-space".to_string(), Version::V0_18)]
        );
    }

    #[test]
    fn ignored_flags_say_why() {
        let a = parse(&words("--host 0.0.0.0 --port 8000")).unwrap();
        assert_eq!(a.ignored.len(), 2);
        assert!(a.ignored[0].1.contains("HTTP"));
    }

    #[test]
    fn flag_names_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for f in FLAGS {
            for n in std::iter::once(&f.name).chain(f.aliases.iter()) {
                assert!(seen.insert(*n), "{n} listed twice");
            }
        }
    }
}
