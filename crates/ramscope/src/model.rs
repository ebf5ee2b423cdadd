//! Which model an estimate is about: a folder, a `config.json`, a Hugging Face cache entry or
//! a bundled catalog entry, in that order. No network, ever.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog;
use crate::hf::{self, HfError, ModelConfig};
use crate::units::Checked;

/// Where the model's description came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "kebab-case")]
pub enum ModelSource {
    Folder(PathBuf),
    ConfigFile(PathBuf),
    HfCache(PathBuf),
    Catalog(String),
    /// A GGUF file (llama.cpp, Ollama): header and tensor table in one file.
    Gguf(PathBuf),
}

impl ModelSource {
    pub fn describe(&self) -> String {
        match self {
            ModelSource::Folder(p) => format!("folder {}", p.display()),
            ModelSource::ConfigFile(p) => format!("config {}", p.display()),
            ModelSource::HfCache(p) => format!("Hugging Face cache {}", p.display()),
            ModelSource::Catalog(r) => format!("bundled catalog ({r})"),
            ModelSource::Gguf(p) => format!("GGUF {}", p.display()),
        }
    }
}

/// The checkpoint's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Weights {
    pub total_bytes: u64,
    pub files: u32,
    pub largest_file_bytes: u64,
    pub parameters: u64,
    /// True when read from safetensors headers; false when from the catalog or the config.
    pub exact: bool,
}

/// A model, described well enough for the estimator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    pub name: String,
    pub source: ModelSource,
    pub config: ModelConfig,
    pub weights: Weights,
    /// Size of the model's `tokenizer.json`, when the model is a folder that has one: what a
    /// loaded tokenizer costs scales with it (docs/baselines.md §4).
    pub tokenizer_json_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Hf(#[from] HfError),
    #[error(
        "model \"{spec}\" not found: not a local folder or config.json, not in the Hugging Face cache (looked in {}), and not in the bundled catalog ({})",
        looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        catalog::names().join(", ")
    )]
    NotFound { spec: String, looked: Vec<PathBuf> },
    #[error("{}: no config.json in this folder", path.display())]
    NoConfig { path: PathBuf },
    #[error("{}: not a folder or a regular file (a FIFO, device or socket is not read)", path.display())]
    NotRegular { path: PathBuf },
    /// A GGUF file that cannot be read or has no model in it.
    #[error("{0}")]
    Gguf(String),
    #[error("{what}: more than 16 EiB of weights, more than a 64-bit machine can address")]
    TooLarge { what: String },
}

impl Model {
    /// The built-in default (Qwen3-8B).
    pub fn default_model() -> Model {
        from_catalog(catalog::default_entry())
            .unwrap_or_else(|e| unreachable!("bundled catalog entry does not parse: {e}"))
    }

    /// A bundled catalog model by any of its names, touching no file.
    pub fn bundled(name: &str) -> Option<Model> {
        catalog::find(name).and_then(|e| from_catalog(e).ok())
    }

    /// Resolves what a user typed. `env` reads environment variables (for the HF cache).
    pub fn resolve(spec: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Model, ModelError> {
        let path = Path::new(spec);
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.is_dir() {
                return from_folder(path, ModelSource::Folder(path.to_path_buf()), spec);
            }
            if !meta.is_file() {
                // A FIFO would block the read; a device has no model in it.
                return Err(ModelError::NotRegular {
                    path: path.to_path_buf(),
                });
            }
            let config = ModelConfig::from_file(path)?;
            return Model::from_config(
                config,
                name_of_config_path(path),
                ModelSource::ConfigFile(path.to_path_buf()),
            );
        }
        let roots = hf::cache_roots(env);
        if looks_like_repo_id(spec) {
            for root in &roots {
                if let Some(dir) = hf::find_in_cache(root, spec) {
                    return from_folder(&dir, ModelSource::HfCache(dir.clone()), spec);
                }
            }
        }
        if let Some(entry) = catalog::find(spec) {
            return Ok(from_catalog(entry)?);
        }
        Err(ModelError::NotFound {
            spec: spec.to_string(),
            looked: roots,
        })
    }
}

fn looks_like_repo_id(spec: &str) -> bool {
    let mut parts = spec.split('/');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty())
}

fn name_of_config_path(path: &Path) -> String {
    path.parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn from_folder(dir: &Path, source: ModelSource, spec: &str) -> Result<Model, ModelError> {
    let config_path = dir.join("config.json");
    // Anything there named config.json is read (and refused if not a regular file), so a
    // FIFO is named as such rather than reported missing.
    if std::fs::metadata(&config_path).is_err() {
        return Err(ModelError::NoConfig {
            path: dir.to_path_buf(),
        });
    }
    let config = ModelConfig::from_file(&config_path)?;
    let files = hf::safetensors_files(dir)?;
    let weights = if files.is_empty() {
        weights_from_config(&config)?
    } else {
        let mut w = Weights {
            total_bytes: 0,
            files: 0,
            largest_file_bytes: 0,
            parameters: 0,
            exact: true,
        };
        // Sparse files can claim exabytes each: sums are checked, not wrapped.
        let too_large = || ModelError::TooLarge {
            what: dir.display().to_string(),
        };
        for file in &files {
            let info = hf::read_safetensors_header(file)?;
            w.total_bytes = w
                .total_bytes
                .checked_add(info.tensor_bytes)
                .ok_or_else(too_large)?;
            w.files = w.files.saturating_add(1);
            w.largest_file_bytes = w.largest_file_bytes.max(info.file_bytes);
            w.parameters = w
                .parameters
                .checked_add(info.parameters)
                .ok_or_else(too_large)?;
        }
        w
    };
    let name = match &source {
        ModelSource::HfCache(_) => spec.to_string(),
        _ => dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| spec.to_string()),
    };
    Ok(Model {
        name,
        source,
        config,
        weights,
        tokenizer_json_bytes: tokenizer_json_bytes(dir),
    })
}

/// `tokenizer.json` in the folder, if it is a regular file (a FIFO or device is not a tokenizer).
fn tokenizer_json_bytes(dir: &Path) -> Option<u64> {
    std::fs::metadata(dir.join("tokenizer.json"))
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

fn from_catalog(entry: &catalog::Entry) -> Result<Model, HfError> {
    let config = ModelConfig::from_json(entry.config, Path::new(entry.repo))?;
    Ok(Model {
        name: entry.repo.to_string(),
        source: ModelSource::Catalog(entry.repo.to_string()),
        config,
        weights: Weights {
            total_bytes: entry.weights_bytes,
            files: entry.shards,
            largest_file_bytes: entry.largest_shard_bytes,
            parameters: entry.parameters,
            exact: false,
        },
        tokenizer_json_bytes: None,
    })
}

impl Model {
    /// A model described by its `config.json` alone (weights estimated from the config).
    pub fn from_config(
        config: ModelConfig,
        name: String,
        source: ModelSource,
    ) -> Result<Model, ModelError> {
        let weights = weights_from_config(&config)?;
        // A config.json file: its folder may hold the tokenizer too.
        let tokenizer_json_bytes = match &source {
            ModelSource::ConfigFile(p) => p.parent().and_then(tokenizer_json_bytes),
            _ => None,
        };
        Ok(Model {
            name,
            source,
            config,
            weights,
            tokenizer_json_bytes,
        })
    }

    /// Parses `config.json` bytes into a model, touching no file (`name` names it in errors).
    pub fn from_config_bytes(bytes: &[u8], name: &str) -> Result<Model, ModelError> {
        let path = Path::new(name);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            ModelError::Hf(HfError::Config {
                path: path.to_path_buf(),
                message: format!("not UTF-8 text (byte {})", e.valid_up_to()),
            })
        })?;
        let config = ModelConfig::from_json(text, path)?;
        Model::from_config(
            config,
            name.to_string(),
            ModelSource::ConfigFile(path.to_path_buf()),
        )
    }
}

/// Fuzz entry point: any bytes as a `config.json`, parsed into a model. Never panics, touches
/// no file; a model it accepts has consistent weights.
pub fn fuzz_config_json(data: &[u8]) {
    if let Ok(m) = Model::from_config_bytes(data, "config.json") {
        let w = &m.weights;
        assert!(w.largest_file_bytes <= w.total_bytes.max(1) && w.files >= 1);
        assert!(m.config.num_layers > 0 && m.config.hidden_size > 0);
    }
}

/// Without weight files: parameters from the config, one file assumed per 5 GB (the
/// `transformers` default shard size).
fn weights_from_config(config: &ModelConfig) -> Result<Weights, ModelError> {
    let too_large = || ModelError::TooLarge {
        what: format!(
            "the {} parameters of this {} config",
            config
                .estimated_parameters()
                .map_or("> 2^64".into(), |p| p.to_string()),
            config.model_type
        ),
    };
    let parameters = config.estimated_parameters().ok_or_else(too_large)?;
    let total_bytes = Checked::from_f64(parameters as f64 * config.dtype.bytes())
        .get()
        .ok_or_else(too_large)?;
    const SHARD: u64 = 5_000_000_000;
    // More shards than a u32 counts is ~21 EB: beyond the u64 check above already.
    let files = u32::try_from(total_bytes.div_ceil(SHARD).max(1)).map_err(|_| too_large())?;
    Ok(Weights {
        total_bytes,
        files,
        largest_file_bytes: total_bytes.min(SHARD),
        parameters,
        exact: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn default_is_qwen3_8b() {
        let m = Model::default_model();
        assert_eq!(m.name, "Qwen/Qwen3-8B");
        assert_eq!(m.config.hidden_size, 4096);
        assert_eq!(m.config.max_model_len, 40960);
    }

    #[test]
    fn catalog_by_short_name() {
        let m = Model::resolve("qwen3-8b", &no_env).unwrap();
        assert_eq!(m.source, ModelSource::Catalog("Qwen/Qwen3-8B".into()));
    }

    #[test]
    fn cache_wins_over_catalog_and_missing_says_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("hub/models--Qwen--Qwen3-8B/snapshots/r1");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("config.json"), catalog::default_entry().config).unwrap();
        let home = dir.path().to_string_lossy().into_owned();
        let env = move |k: &str| (k == "HF_HOME").then(|| home.clone());
        let m = Model::resolve("Qwen/Qwen3-8B", &env).unwrap();
        assert!(matches!(m.source, ModelSource::HfCache(_)));
        let err = Model::resolve("Org/Missing", &env).unwrap_err().to_string();
        assert!(
            err.contains(&dir.path().join("hub").display().to_string()),
            "{err}"
        );
    }
}
