//! Which model an estimate is about: a folder, a `config.json`, a Hugging Face cache entry or
//! a bundled catalog entry, in that order. No network, ever.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog;
use crate::hf::{self, HfError, ModelConfig};

/// Where the model's description came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "kebab-case")]
pub enum ModelSource {
    Folder(PathBuf),
    ConfigFile(PathBuf),
    HfCache(PathBuf),
    Catalog(String),
}

impl ModelSource {
    pub fn describe(&self) -> String {
        match self {
            ModelSource::Folder(p) => format!("folder {}", p.display()),
            ModelSource::ConfigFile(p) => format!("config {}", p.display()),
            ModelSource::HfCache(p) => format!("Hugging Face cache {}", p.display()),
            ModelSource::Catalog(r) => format!("bundled catalog ({r})"),
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
}

impl Model {
    /// The built-in default (Qwen3-8B).
    pub fn default_model() -> Model {
        from_catalog(catalog::default_entry())
            .unwrap_or_else(|e| unreachable!("bundled catalog entry does not parse: {e}"))
    }

    /// Resolves what a user typed. `env` reads environment variables (for the HF cache).
    pub fn resolve(spec: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Model, ModelError> {
        let path = Path::new(spec);
        if path.is_dir() {
            return from_folder(path, ModelSource::Folder(path.to_path_buf()), spec);
        }
        if path.is_file() {
            let config = ModelConfig::from_file(path)?;
            let weights = weights_from_config(&config);
            return Ok(Model {
                name: name_of_config_path(path),
                source: ModelSource::ConfigFile(path.to_path_buf()),
                config,
                weights,
            });
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
    if !config_path.is_file() {
        return Err(ModelError::NoConfig {
            path: dir.to_path_buf(),
        });
    }
    let config = ModelConfig::from_file(&config_path)?;
    let files = hf::safetensors_files(dir)?;
    let weights = if files.is_empty() {
        weights_from_config(&config)
    } else {
        let mut w = Weights {
            total_bytes: 0,
            files: 0,
            largest_file_bytes: 0,
            parameters: 0,
            exact: true,
        };
        for file in &files {
            let info = hf::read_safetensors_header(file)?;
            w.total_bytes += info.tensor_bytes;
            w.files += 1;
            w.largest_file_bytes = w.largest_file_bytes.max(info.file_bytes);
            w.parameters += info.parameters;
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
    })
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
    })
}

/// Without weight files: parameters from the config, one file assumed per 5 GB (the
/// `transformers` default shard size).
fn weights_from_config(config: &ModelConfig) -> Weights {
    let parameters = config.estimated_parameters();
    let total_bytes = (parameters as f64 * config.dtype.bytes()) as u64;
    const SHARD: u64 = 5_000_000_000;
    let files = total_bytes.div_ceil(SHARD).max(1) as u32;
    Weights {
        total_bytes,
        files,
        largest_file_bytes: total_bytes.min(SHARD),
        parameters,
        exact: false,
    }
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
