//! Hugging Face model files: `config.json`, safetensors headers and the local hub cache.
//!
//! Only what host-RAM formulas need is read. Safetensors files are never read past their
//! header: the 8-byte little-endian length, then that many bytes of JSON. A length that is
//! implausible (over [`MAX_HEADER_BYTES`] or past the end of the file) is refused before
//! anything of that size is allocated. Only regular files are opened (a FIFO named
//! `config.json` would block forever), and every read of a user's file is bounded.

mod safetensors;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::units::Checked;

pub use safetensors::{
    fuzz_safetensors, parse as parse_safetensors, read_safetensors_header, safetensors_files,
    SafetensorsInfo,
};

/// The largest safetensors header accepted. The format's reference implementation refuses
/// headers over 100 MB; real ones are a few hundred KiB even for 100k-tensor checkpoints.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// `config.json` larger than this is not a model config (they are a few KiB).
const MAX_CONFIG_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HfError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: invalid JSON at line {line}, column {column}: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Safetensors { path: PathBuf, message: String },
    /// Not a regular file, or unreadable: the same rules as every file a user names.
    #[error(transparent)]
    File(#[from] crate::userfile::UserFileError),
}

/// Storage dtype of weights or KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    F32,
    F16,
    Bf16,
    Fp8,
    /// 4-bit formats (MXFP4, NVFP4, int4): half a byte per element.
    Fp4,
}

impl Dtype {
    /// Size in bytes, as a fraction for 4-bit types.
    pub fn bytes(self) -> f64 {
        match self {
            Dtype::F32 => 4.0,
            Dtype::F16 | Dtype::Bf16 => 2.0,
            Dtype::Fp8 => 1.0,
            Dtype::Fp4 => 0.5,
        }
    }

    /// Whole bytes per element for activation buffers (4-bit weights compute in bf16).
    pub fn activation_bytes(self) -> u64 {
        match self {
            Dtype::F32 => 4,
            _ => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F16 => "float16",
            Dtype::Bf16 => "bfloat16",
            Dtype::Fp8 => "fp8",
            Dtype::Fp4 => "fp4",
        }
    }

    /// vLLM's and Hugging Face's spellings: `bfloat16`, `bf16`, `half`, `float`, `fp8_e4m3`…
    pub fn parse(s: &str) -> Option<Dtype> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "float32" | "fp32" | "f32" | "float" => Dtype::F32,
            "float16" | "fp16" | "f16" | "half" => Dtype::F16,
            "bfloat16" | "bf16" => Dtype::Bf16,
            _ if s.starts_with("fp8") || s.starts_with("f8") || s == "float8" => Dtype::Fp8,
            "fp4" | "mxfp4" | "nvfp4" | "int4" => Dtype::Fp4,
            _ => return None,
        })
    }
}

/// Multi-head latent attention (DeepSeek V2/V3): one compressed KV vector per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mla {
    pub kv_lora_rank: u64,
    pub qk_rope_head_dim: u64,
}

/// The parts of a model's `config.json` that size host memory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelConfig {
    pub architecture: String,
    pub model_type: String,
    pub hidden_size: u64,
    pub intermediate_size: u64,
    pub num_layers: u64,
    pub num_attention_heads: u64,
    pub num_kv_heads: u64,
    pub head_dim: u64,
    pub vocab_size: u64,
    /// The longest context vLLM derives from the config (positions × rope scaling).
    pub max_model_len: u64,
    pub dtype: Dtype,
    pub tie_word_embeddings: bool,
    /// Has a vision (or audio) tower: vLLM's multimodal caches apply.
    pub multimodal: bool,
    /// Multimodal rotary positions (Qwen2-VL family): extra position tables.
    pub mrope: bool,
    pub mla: Option<Mla>,
    /// Routed experts per MoE layer (0 for dense models).
    pub num_experts: u64,
    pub moe_intermediate_size: u64,
    /// Layers with sliding-window attention (a second KV-cache group when > 0).
    pub sliding_window_layers: u64,
    /// Checkpoint quantization method (`fp8`, `mxfp4`…), if any.
    pub quantization: Option<String>,
}

impl ModelConfig {
    /// Reads and checks a `config.json`.
    pub fn from_file(path: &Path) -> Result<ModelConfig, HfError> {
        let text = read_small(path, MAX_CONFIG_BYTES)?;
        ModelConfig::from_json(&text, path)
    }

    /// Parses `config.json` text; `path` names it in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<ModelConfig, HfError> {
        let root: Value = serde_json::from_str(text).map_err(|e| HfError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        let bad = |message: String| HfError::Config {
            path: path.to_path_buf(),
            message,
        };
        if !root.is_object() {
            return Err(bad("not a JSON object".into()));
        }
        // Multimodal configs (Gemma 3, Llama 4, Mistral 3…) keep the language model in
        // `text_config`; Qwen2.5-VL keeps it at the top level. Look in both.
        let text_cfg = root.get("text_config").filter(|v| v.is_object());
        let get = |key: &str| -> Option<&Value> {
            text_cfg
                .and_then(|t| t.get(key))
                .filter(|v| !v.is_null())
                .or_else(|| root.get(key).filter(|v| !v.is_null()))
        };
        let get_u64 = |key: &str| get(key).and_then(Value::as_u64);
        let need = |key: &str| {
            get_u64(key).ok_or_else(|| bad(format!("missing or non-integer \"{key}\"")))
        };

        let architecture = root
            .get("architectures")
            .and_then(|a| a.get(0))
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        let model_type = get("model_type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        let hidden_size = need("hidden_size")?;
        let num_layers = need("num_hidden_layers")?;
        let num_attention_heads = need("num_attention_heads")?;
        let vocab_size = need("vocab_size")?;
        if hidden_size == 0 || num_layers == 0 || num_attention_heads == 0 || vocab_size == 0 {
            return Err(bad(
                "hidden_size, num_hidden_layers, num_attention_heads and vocab_size must be > 0"
                    .into(),
            ));
        }
        let num_kv_heads = get_u64("num_key_value_heads").unwrap_or(num_attention_heads);
        let head_dim = get_u64("head_dim").unwrap_or(hidden_size / num_attention_heads);
        let intermediate_size = match get_u64("intermediate_size") {
            Some(v) => v,
            None => hidden_size
                .checked_mul(4)
                .ok_or_else(|| bad(format!("hidden_size {hidden_size} is too large")))?,
        };

        let dtype_name = get("torch_dtype")
            .or_else(|| get("dtype"))
            .and_then(Value::as_str)
            .unwrap_or("bfloat16");
        let dtype = Dtype::parse(dtype_name)
            .ok_or_else(|| bad(format!("unknown dtype \"{dtype_name}\"")))?;

        let tie_word_embeddings = root
            .get("tie_word_embeddings")
            .or_else(|| get("tie_word_embeddings"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let multimodal = ["vision_config", "audio_config", "vision_tower"]
            .iter()
            .any(|k| root.get(*k).is_some_and(|v| !v.is_null()));
        let rope = get("rope_scaling").or_else(|| get("rope_parameters"));
        let mrope = rope.is_some_and(|r| {
            r.get("mrope_section").is_some()
                || r.get("type").and_then(Value::as_str) == Some("mrope")
                || r.get("rope_type").and_then(Value::as_str) == Some("mrope")
        });
        let mla = match (get_u64("kv_lora_rank"), get_u64("qk_rope_head_dim")) {
            (Some(kv_lora_rank), Some(qk_rope_head_dim)) => Some(Mla {
                kv_lora_rank,
                qk_rope_head_dim,
            }),
            _ => None,
        };
        let num_experts = get_u64("num_experts")
            .or_else(|| get_u64("n_routed_experts"))
            .or_else(|| get_u64("num_local_experts"))
            .unwrap_or(0);
        let moe_intermediate_size =
            get_u64("moe_intermediate_size").unwrap_or(if num_experts > 0 {
                intermediate_size
            } else {
                0
            });
        let sliding_window_layers = sliding_layers(get("layer_types"), num_layers, &get);
        let quantization = root
            .get("quantization_config")
            .and_then(|q| q.get("quant_method"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let max_model_len = derive_max_len(&get, rope).ok_or_else(|| {
            bad("the maximum length times the rope scaling factor does not fit in 64 bits".into())
        })?;

        let config = ModelConfig {
            architecture,
            model_type,
            hidden_size,
            intermediate_size,
            num_layers,
            num_attention_heads,
            num_kv_heads,
            head_dim,
            vocab_size,
            max_model_len,
            dtype,
            tie_word_embeddings,
            multimodal,
            mrope,
            mla,
            num_experts,
            moe_intermediate_size,
            sliding_window_layers,
            quantization,
        };
        // Counts that pass 2^64 would wrap in every formula built on them: refuse the config
        // here, by name, rather than estimate from a wrapped number.
        if config.estimated_parameters().is_none() {
            return Err(bad(format!(
                "num_hidden_layers {num_layers}, hidden_size {hidden_size}, vocab_size {vocab_size} and the layer sizes describe more than 2^64 parameters"
            )));
        }
        if config.kv_bytes_per_token(4.0).is_none() {
            return Err(bad(format!(
                "num_hidden_layers {num_layers} × the KV heads and head_dim describe more than 2^64 bytes of KV cache per token"
            )));
        }
        Ok(config)
    }

    /// Parameters implied by the config, for checkpoints whose headers cannot be read.
    /// Counts embeddings, attention, MLP or experts, and norms of a standard decoder: one
    /// layer's count times the layer count, never a list per layer. `None` when the count
    /// does not fit in 64 bits.
    pub fn estimated_parameters(&self) -> Option<u64> {
        let c = Checked::new;
        let h = c(self.hidden_size);
        let q = c(self.num_attention_heads) * self.head_dim;
        let kv = c(self.num_kv_heads) * self.head_dim;
        let attn = match self.mla {
            // Down- and up-projections of the compressed KV plus q and o (approximate).
            Some(m) => {
                h * q
                    + h * (c(m.kv_lora_rank) + m.qk_rope_head_dim)
                    + c(m.kv_lora_rank) * 2 * q
                    + q * h
            }
            None => h * q + c(2) * h * kv + q * h,
        };
        let mlp = if self.num_experts > 0 {
            c(self.num_experts) * 3 * h * self.moe_intermediate_size + h * self.num_experts
        } else {
            c(3) * h * self.intermediate_size
        };
        // Qwen3 and Gemma 3 normalise q and k per head.
        let qk_norm = if matches!(
            self.model_type.as_str(),
            "qwen3" | "qwen3_moe" | "gemma3" | "gemma3_text"
        ) {
            c(2) * self.head_dim
        } else {
            c(0)
        };
        let per_layer = attn + mlp + h * 2 + qk_norm;
        let embeddings = c(self.vocab_size) * h * if self.tie_word_embeddings { 1 } else { 2 };
        (embeddings + per_layer * self.num_layers + h).get()
    }

    /// Bytes of one KV-cache token over all layers, for a KV element size in bytes (a
    /// multiple of ½); `None` when it does not fit in 64 bits.
    pub fn kv_bytes_per_token(&self, kv_elem_bytes: f64) -> Option<u64> {
        let per_layer = match self.mla {
            Some(m) => Checked::new(m.kv_lora_rank) + m.qk_rope_head_dim,
            None => Checked::new(2) * self.num_kv_heads * self.head_dim,
        };
        // Half-bytes keep 4-bit types exact; a product ending in half a byte rounds up.
        let halves = Checked::from_f64((kv_elem_bytes * 2.0).round());
        (per_layer * self.num_layers * halves).div_ceil(2u64).get()
    }
}

fn sliding_layers<'a>(
    layer_types: Option<&'a Value>,
    num_layers: u64,
    get: &dyn Fn(&str) -> Option<&'a Value>,
) -> u64 {
    if let Some(types) = layer_types.and_then(Value::as_array) {
        return types
            .iter()
            .filter(|t| t.as_str() == Some("sliding_attention"))
            .count() as u64;
    }
    // Gemma 3 without `layer_types`: every `sliding_window_pattern`-th layer is global.
    let window = get("sliding_window").and_then(Value::as_u64);
    let pattern = get("sliding_window_pattern").and_then(Value::as_u64);
    match (window, pattern) {
        (Some(_), Some(p)) if p > 1 => num_layers - num_layers / p,
        _ => 0,
    }
}

/// vLLM's `_get_and_verify_max_len`: the smallest of the position keys, times the rope
/// scaling factor (yarn scales its original length; llama3/longrope do not scale). `None`
/// when the product does not fit in 64 bits.
fn derive_max_len<'a>(
    get: &dyn Fn(&str) -> Option<&'a Value>,
    rope: Option<&'a Value>,
) -> Option<u64> {
    const KEYS: [&str; 8] = [
        "max_position_embeddings",
        "n_positions",
        "max_seq_len",
        "seq_length",
        "model_max_length",
        "max_sequence_length",
        "max_seq_length",
        "seq_len",
    ];
    let mut len = KEYS
        .iter()
        .filter_map(|k| get(k).and_then(Value::as_u64))
        .min()
        .unwrap_or(2048);
    if let Some(r) = rope.filter(|r| r.is_object()) {
        let kind = r
            .get("rope_type")
            .or_else(|| r.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let factor = r.get("factor").and_then(Value::as_f64).unwrap_or(1.0);
        if !matches!(kind, "su" | "longrope" | "llama3" | "default" | "mrope") && factor > 1.0 {
            if kind == "yarn" {
                if let Some(orig) = r
                    .get("original_max_position_embeddings")
                    .and_then(Value::as_u64)
                {
                    len = orig;
                }
            }
            len = Checked::from_f64(len as f64 * factor).get()?;
        }
    }
    Some(len)
}

pub(crate) fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Opens `path` for reading only if it is a regular file (see [`crate::userfile`]), and
/// returns its size.
pub(crate) fn open_regular(path: &Path) -> Result<(File, u64), HfError> {
    let file = crate::userfile::open_regular(path)?;
    let len = file
        .metadata()
        .map_err(|source| HfError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    Ok((file, len))
}

/// A regular file of at most `limit` bytes, as text.
fn read_small(path: &Path, limit: u64) -> Result<String, HfError> {
    let io_err = |source| HfError::Io {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |len: u64| HfError::Config {
        path: path.to_path_buf(),
        message: format!("{len} bytes is too large for a model config"),
    };
    let (file, len) = open_regular(path)?;
    if len > limit {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // One byte past the limit tells a file that grew since it was measured.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| HfError::Config {
        path: path.to_path_buf(),
        message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })
}

/// Where the Hugging Face hub cache may be, in the order the `huggingface_hub` library
/// resolves it.
pub fn cache_roots(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(v) = nonempty("HF_HUB_CACHE") {
        roots.push(PathBuf::from(v));
    }
    if let Some(v) = nonempty("HUGGINGFACE_HUB_CACHE") {
        roots.push(PathBuf::from(v));
    }
    if let Some(v) = nonempty("HF_HOME") {
        roots.push(PathBuf::from(v).join("hub"));
    }
    if let Some(v) = nonempty("XDG_CACHE_HOME") {
        roots.push(PathBuf::from(v).join("huggingface").join("hub"));
    }
    if let Some(home) = nonempty("HOME") {
        roots.push(
            PathBuf::from(home)
                .join(".cache")
                .join("huggingface")
                .join("hub"),
        );
    }
    roots.dedup();
    roots
}

/// The snapshot folder of `repo_id` (`Org/Name`) in one cache root: the revision
/// `refs/main` points at, else the most recently modified snapshot.
pub fn find_in_cache(root: &Path, repo_id: &str) -> Option<PathBuf> {
    let folder = format!("models--{}", repo_id.replace('/', "--"));
    let repo = root.join(folder);
    let snapshots = repo.join("snapshots");
    // A revision hash is 40 bytes; the cap keeps a huge or endless refs/main from being read.
    if let Ok(rev) = read_small(&repo.join("refs").join("main"), 4096) {
        let rev = rev.trim();
        // A revision is one folder name, never a path that leaves the snapshots folder.
        if !rev.is_empty() && !rev.contains('/') && rev != ".." {
            let dir = snapshots.join(rev);
            if dir.join("config.json").is_file() {
                return Some(dir);
            }
        }
    }
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(&snapshots).ok()?.filter_map(Result::ok) {
        let dir = entry.path();
        if !dir.join("config.json").is_file() {
            continue;
        }
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        if best.as_ref().map_or(true, |(t, _)| modified > *t) {
            best = Some((modified, dir));
        }
    }
    best.map(|(_, dir)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QWEN3_TINY: &str = r#"{"architectures":["Qwen3ForCausalLM"],"model_type":"qwen3",
      "hidden_size":256,"intermediate_size":768,"num_hidden_layers":4,"num_attention_heads":4,
      "num_key_value_heads":2,"head_dim":64,"vocab_size":1024,"max_position_embeddings":8192,
      "dtype":"bfloat16","tie_word_embeddings":true}"#;

    #[test]
    fn parses_a_config() {
        let c = ModelConfig::from_json(QWEN3_TINY, Path::new("config.json")).unwrap();
        assert_eq!(c.hidden_size, 256);
        assert_eq!(c.num_kv_heads, 2);
        assert_eq!(c.dtype, Dtype::Bf16);
        assert_eq!(c.max_model_len, 8192);
        assert!(c.tie_word_embeddings);
        // The tiny test model's real parameter count (docs/baselines.md §2).
        assert_eq!(c.estimated_parameters(), Some(3_410_688));
        assert_eq!(c.kv_bytes_per_token(2.0), Some(2048));
        assert_eq!(c.kv_bytes_per_token(0.5), Some(512));
    }

    #[test]
    fn malformed_config_names_file_and_position() {
        let err = ModelConfig::from_json(
            "{\n  \"hidden_size\": 12,\n  oops\n}",
            Path::new("/m/config.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/m/config.json"), "{err}");
        assert!(err.contains("line 3, column 3"), "{err}");
    }

    #[test]
    fn missing_field_is_named() {
        let err = ModelConfig::from_json(r#"{"hidden_size": 8}"#, Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("num_hidden_layers"), "{err}");
    }

    #[test]
    fn yarn_scales_the_original_length() {
        let text = r#"{"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":1,"vocab_size":8,
          "max_position_embeddings":163840,
          "rope_scaling":{"type":"yarn","factor":40,"original_max_position_embeddings":4096}}"#;
        let c = ModelConfig::from_json(text, Path::new("c")).unwrap();
        assert_eq!(c.max_model_len, 163_840);
    }

    #[test]
    fn counts_past_2_pow_64_are_refused_by_name() {
        // 2^64 − 1 layers wrapped every formula built on them.
        let text = r#"{"hidden_size":8,"num_hidden_layers":18446744073709551615,
          "num_attention_heads":1,"vocab_size":8}"#;
        let err = ModelConfig::from_json(text, Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.json") && err.contains("2^64"), "{err}");
        let text = r#"{"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":1,
          "vocab_size":8,"max_position_embeddings":4096,
          "rope_scaling":{"type":"dynamic","factor":1e300}}"#;
        let err = ModelConfig::from_json(text, Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rope scaling"), "{err}");
        // Many layers of a small model are fine, and cost nothing to count.
        let text = r#"{"hidden_size":8,"num_hidden_layers":1000000000000,
          "num_attention_heads":1,"vocab_size":8}"#;
        let c = ModelConfig::from_json(text, Path::new("c.json")).unwrap();
        assert!(c.estimated_parameters().unwrap() > 1_000_000_000_000);
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("config.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // A FIFO without a writer: opening it for reading would block forever.
        let err = ModelConfig::from_file(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = read_safetensors_header(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = ModelConfig::from_file(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn finds_a_cached_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("models--Org--Name/snapshots/abc123");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(dir.path().join("models--Org--Name/refs")).unwrap();
        std::fs::write(dir.path().join("models--Org--Name/refs/main"), "abc123\n").unwrap();
        std::fs::write(snap.join("config.json"), QWEN3_TINY).unwrap();
        assert_eq!(find_in_cache(dir.path(), "Org/Name"), Some(snap));
        assert_eq!(find_in_cache(dir.path(), "Org/Other"), None);
    }
}
