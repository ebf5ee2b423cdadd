//! Runtime baselines: what Python, torch, vLLM's imports and a CUDA context cost before any
//! model-specific buffer. Built-in numbers come from measurements (docs/baselines.md §2,
//! docs/categories.md §9); `ramscope calibrate` measures the user's own stack
//! with short probes and stores a [`Profile`] that replaces them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ProcError;
use crate::userfile::{read_capped, UserFileError};

mod probe;
pub mod stacks;

pub use probe::{probe_timeout, run_probes, PROBE_TIMEOUT, PROBE_TIMEOUT_ENV};

const MIB: u64 = 1 << 20;

pub const PROFILE_SCHEMA: &str = "ramscope.calibration/1";

/// The largest calibration profile read.
const MAX_PROFILE_BYTES: u64 = 16 << 20;

/// One probe stage, measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub pss_bytes: u64,
    pub pss_anon_bytes: u64,
    pub pss_file_bytes: u64,
    pub pss_shmem_bytes: u64,
    pub rss_bytes: u64,
}

/// A stored calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub schema: String,
    pub measured_at: String,
    pub python: String,
    pub python_version: String,
    pub torch_version: Option<String>,
    pub vllm_version: Option<String>,
    pub cuda: bool,
    pub stages: Vec<Stage>,
}

impl Profile {
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    pub fn load(path: &Path) -> Result<Profile, CalibrateError> {
        // A profile is a few kB; the cap only keeps a wrong path from being read whole.
        let text = read_capped(path, MAX_PROFILE_BYTES)?;
        let profile: Profile =
            serde_json::from_slice(&text).map_err(|e| CalibrateError::Format {
                path: path.to_path_buf(),
                message: format!("line {}, column {}: {e}", e.line(), e.column()),
            })?;
        if profile.schema != PROFILE_SCHEMA {
            return Err(CalibrateError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "schema \"{}\", expected \"{PROFILE_SCHEMA}\"",
                    profile.schema
                ),
            });
        }
        Ok(profile)
    }

    pub fn save(&self, path: &Path) -> Result<(), CalibrateError> {
        let io = |source| CalibrateError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| CalibrateError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        std::fs::write(path, text + "\n").map_err(io)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("cannot use {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    #[error("cannot run {}: {source}", python.display())]
    Spawn {
        python: PathBuf,
        source: std::io::Error,
    },
    #[error("probe under {} failed at stage \"{stage}\": {message}", python.display())]
    Probe {
        python: PathBuf,
        stage: String,
        message: String,
    },
    #[error("measuring the probe: {0}")]
    Measure(#[from] ProcError),
    #[error(transparent)]
    File(#[from] UserFileError),
    #[error("{PROBE_TIMEOUT_ENV}={value:?} is not a duration such as 90s or 10m")]
    BadTimeout { value: String },
}

/// Where the profile lives: `$RAMSCOPE_CALIBRATION`, else
/// `$XDG_CONFIG_HOME/ramscope/calibration.json`, else `~/.config/ramscope/calibration.json`.
pub fn default_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let get = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(p) = get("RAMSCOPE_CALIBRATION") {
        return Some(PathBuf::from(p));
    }
    let dir = get("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| get("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(dir.join("ramscope").join("calibration.json"))
}

/// Where baselines came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BaselineSource {
    BuiltIn,
    Profile {
        path: String,
        measured_at: String,
        stack: String,
    },
}

/// Per-process runtime costs the estimator adds to vLLM's own allocations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baselines {
    pub source: BaselineSource,
    /// The measured stack the model-dependent costs (tokenizer, warm-up, compile) come from,
    /// and how far the target is from it.
    pub stack: stacks::Choice,
    /// Anonymous memory of the API server after imports and start-up, with no tokenizer.
    pub api_anon_bytes: u64,
    pub engine_anon_bytes: u64,
    pub worker_anon_bytes: u64,
    /// The worker's fitted rest spans this (low, high) over the measured shapes.
    pub worker_anon_range: (u64, u64),
    /// Library pages every vLLM Python process maps (PSS splits them among the processes).
    pub libraries_bytes: u64,
    /// Libraries only a model worker maps (vLLM's kernels, oneDNN).
    pub worker_libraries_bytes: u64,
    pub tracker_bytes: u64,
    /// Heap per byte of the model's `tokenizer.json`, in the API server and in EngineCore.
    pub api_tokenizer_per_file_byte: f64,
    pub engine_tokenizer_per_file_byte: f64,
    /// The warm-up's leftover per byte of `max_num_seqs × vocab` float32 logits.
    pub warmup_per_logit_byte: f64,
    /// What compiling adds beyond the warm-up: (fitted, low, high).
    pub compile_bytes: (u64, u64, u64),
    /// Extra vocab × hidden tensors of the CPU worker (oneDNN packing of embedding and head).
    pub vocab_copies: u64,
    /// CUDA context creation in the runner process.
    pub cuda_context_bytes: u64,
    /// First forward pass on a GPU: lazy CUDA module loading, cuBLAS/cuDNN workspaces.
    pub first_forward_bytes: u64,
    /// Provenance of each number.
    pub provenance_imports: String,
    pub provenance_cuda: String,
    pub provenance_first_forward: String,
}

/// What vLLM's imports add over `import torch`, for profiles taken where vLLM is not
/// installed: the 0.32.0 stack's API server less its start-up (525 MiB anonymous; 114 MiB of library pages per
/// process, 342 MiB over three) less `import torch` alone on the H100 stack (277 MiB and
/// 213 MiB, docs/baselines.md §2).
const VLLM_OVER_TORCH_ANON: u64 = (525 - 277) * MIB;
const VLLM_OVER_TORCH_FILE: u64 = (342 - 213) * MIB;

/// Where the built-in first-forward cost was measured: `ramscope calibrate`'s own probe (a
/// random 8-layer × 1024 Qwen3 built on the GPU, `generate` with sampling), 871 MiB of PSS
/// over the CUDA context. The same forward with the model built on the CPU and moved measured
/// 547 MiB (docs/baselines.md §2); the range spans both.
pub const BUILT_IN_FIRST_FORWARD: &str =
    "calibrate's first-forward probe on an H100, PyTorch 2.11 + CUDA 13, no vLLM (docs/baselines.md §2)";
pub const FIRST_FORWARD_RANGE: (u64, u64) = (547 * MIB, 900 * MIB);
pub const BUILT_IN_GPU_STACK: &str =
    "PyTorch 2.11 + CUDA 13, driver 580, H100: measured PSS stages (docs/categories.md §9)";

impl Baselines {
    /// The built-in baselines of the measured stack nearest to `target`.
    pub fn built_in_for(target: &stacks::Target) -> Baselines {
        let choice = stacks::choose(target);
        let s = choice.stack;
        let provenance = s.describe();
        Baselines {
            source: BaselineSource::BuiltIn,
            api_anon_bytes: s.api_anon,
            engine_anon_bytes: s.engine_anon,
            // The worker's rest is PSS: take its library pages out, as for the other roles.
            worker_anon_bytes: s
                .worker_rest
                .saturating_sub(s.library_share + s.worker_libraries),
            worker_anon_range: (
                s.worker_rest_low
                    .saturating_sub(s.library_share + s.worker_libraries),
                s.worker_rest_high
                    .saturating_sub(s.library_share + s.worker_libraries),
            ),
            libraries_bytes: 3 * s.library_share,
            worker_libraries_bytes: s.worker_libraries,
            tracker_bytes: s.tracker,
            api_tokenizer_per_file_byte: s.api_tokenizer_per_file_byte,
            engine_tokenizer_per_file_byte: s.engine_tokenizer_per_file_byte,
            warmup_per_logit_byte: s.warmup_per_logit_byte,
            compile_bytes: (s.compile, s.compile_low, s.compile_high),
            vocab_copies: s.vocab_copies,
            cuda_context_bytes: 123 * MIB,
            first_forward_bytes: 871 * MIB,
            provenance_imports: provenance,
            provenance_cuda: BUILT_IN_GPU_STACK.into(),
            provenance_first_forward: BUILT_IN_FIRST_FORWARD.into(),
            stack: choice,
        }
    }

    /// The newest measured stack, as a default before the target is known.
    pub fn built_in() -> Baselines {
        Baselines::built_in_for(&stacks::Target {
            vllm_minor: Some(stacks::MEASURED[0].vllm_minor),
            cpu: true,
            ..stacks::Target::default()
        })
    }

    /// The baselines for an estimate of this target (release, device, torch, Python): built-in ones are
    /// chosen again from the measured stack nearest to it; a calibration profile stays (it
    /// measured the user's own stack).
    pub fn for_target(&self, target: &stacks::Target) -> Baselines {
        match self.source {
            BaselineSource::BuiltIn => Baselines::built_in_for(target),
            BaselineSource::Profile { .. } => self.clone(),
        }
    }

    /// A calibrated range around `bytes`: the measured spread across shapes, widened by how
    /// far the target is from the measured stack.
    pub fn spread(&self, bytes: u64) -> (u64, u64) {
        let pct = self.stack.stack.fit_spread_percent + self.stack.widen_percent;
        let d = (bytes as u128 * pct as u128 / 100) as u64;
        (bytes.saturating_sub(d), bytes.saturating_add(d))
    }

    /// Baselines from a profile; stages the profile lacks keep the built-in numbers of the
    /// measured stack nearest to the profile's.
    pub fn from_profile(profile: &Profile, path: &Path) -> Baselines {
        let minor = |v: &str| v.split(['.', '+']).nth(1).and_then(|m| m.parse().ok());
        let mut b = Baselines::built_in_for(&stacks::Target {
            vllm_minor: profile.vllm_version.as_deref().and_then(minor),
            cpu: !profile.cuda,
            torch: profile.torch_version.clone(),
            python: Some(profile.python_version.clone()),
        });
        let stack = format!(
            "Python {}, torch {}, vLLM {}{}",
            profile.python_version,
            profile.torch_version.as_deref().unwrap_or("?"),
            profile.vllm_version.as_deref().unwrap_or("not installed"),
            if profile.cuda { ", CUDA" } else { "" }
        );
        let provenance = format!(
            "calibration {} ({stack}, {})",
            path.display(),
            profile.measured_at
        );
        // Start-up beyond the imports (FastAPI app, scheduler, threads) is not in the probe:
        // keep the measured server's extra over its imports (25 / 8 / 13 MiB).
        // Without vLLM installed the probe stops before vLLM's own imports: transformers (which
        // vLLM imports, with a similar module set) stands in for them, else they are added
        // from the built-in measurements.
        let (imports, vllm_extra_anon, vllm_extra_file) =
            match (profile.stage("vllm_server"), profile.stage("transformers")) {
                (Some(s), _) => (Some(s), 0, 0),
                (None, Some(t)) => (Some(t), 0, 0),
                (None, None) => (
                    profile.stage("torch"),
                    VLLM_OVER_TORCH_ANON,
                    VLLM_OVER_TORCH_FILE,
                ),
            };
        if let Some(s) = imports {
            let anon = s.pss_anon_bytes + vllm_extra_anon;
            b.api_anon_bytes = anon + 25 * MIB;
            b.engine_anon_bytes = anon + 8 * MIB;
            b.worker_anon_bytes = anon + 13 * MIB + 29 * MIB;
            b.worker_anon_range = (b.worker_anon_bytes, b.worker_anon_bytes);
            b.libraries_bytes = s.pss_file_bytes + vllm_extra_file;
        }
        if let (Some(server), Some(worker)) =
            (profile.stage("vllm_server"), profile.stage("vllm_worker"))
        {
            b.worker_anon_bytes = worker.pss_anon_bytes + 13 * MIB;
            b.worker_anon_range = (b.worker_anon_bytes, b.worker_anon_bytes);
            b.worker_libraries_bytes = worker.pss_file_bytes.saturating_sub(server.pss_file_bytes);
        }
        if let Some(py) = profile.stage("python") {
            // The tracker is a bare Python plus the multiprocessing imports (≈1 MiB).
            b.tracker_bytes = py.pss_bytes + MIB;
        }
        // The CUDA context costs what it adds to the stage measured just before it.
        let before_cuda = profile
            .stages
            .iter()
            .position(|s| s.name == "cuda_context")
            .and_then(|i| i.checked_sub(1))
            .map(|i| &profile.stages[i]);
        if let (Some(before), Some(cuda)) = (before_cuda, profile.stage("cuda_context")) {
            b.cuda_context_bytes = cuda.pss_bytes.saturating_sub(before.pss_bytes);
            b.provenance_cuda = provenance.clone();
            if let Some(forward) = profile.stage("first_forward") {
                b.first_forward_bytes = forward.pss_bytes.saturating_sub(cuda.pss_bytes);
                b.provenance_first_forward = provenance.clone();
            }
        }
        b.provenance_imports = provenance;
        b.source = BaselineSource::Profile {
            path: path.display().to_string(),
            measured_at: profile.measured_at.clone(),
            stack,
        };
        b
    }

    pub fn describe(&self) -> String {
        let nearest = if self.stack.within {
            format!("measured on this stack: {}", self.stack.stack.describe())
        } else {
            format!(
                "nearest measured stack {}; this one differs ({}): calibrated ranges widened by {} %",
                self.stack.stack.describe(),
                self.stack.differences.join("; "),
                self.stack.widen_percent
            )
        };
        match &self.source {
            BaselineSource::BuiltIn => format!(
                "runtime baselines: built in, {nearest}; run `ramscope calibrate` to measure your own stack"
            ),
            BaselineSource::Profile { path, measured_at, stack } => format!(
                "runtime baselines: calibration {path} ({stack}, measured {measured_at}); tokenizer, warm-up and compile from the {nearest}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str, anon: u64, file: u64) -> Stage {
        Stage {
            name: name.into(),
            pss_bytes: (anon + file) * MIB,
            pss_anon_bytes: anon * MIB,
            pss_file_bytes: file * MIB,
            pss_shmem_bytes: 0,
            rss_bytes: (anon + file) * MIB,
        }
    }

    /// A profile as `ramscope calibrate` wrote it on an H100 with torch 2.11 and no vLLM.
    fn h100_profile(stages: Vec<Stage>) -> Profile {
        Profile {
            schema: PROFILE_SCHEMA.into(),
            measured_at: "2026-11-26T19:05:00Z".into(),
            python: "/opt/torch/.venv/bin/python3".into(),
            python_version: "3.12.3".into(),
            torch_version: Some("2.11.0+cu130".into()),
            vllm_version: None,
            cuda: true,
            stages,
        }
    }

    #[test]
    fn transformers_stands_in_for_vllms_imports_and_the_forward_is_measured() {
        // Measured on an H100 (PyTorch 2.11 + CUDA 13, transformers, no vLLM), MiB of PSS
        // anon / file / shmem per stage.
        let shm = |mut s: Stage, mib: u64| {
            s.pss_bytes += mib * MIB;
            s.pss_shmem_bytes = mib * MIB;
            s
        };
        let profile = h100_profile(vec![
            stage("python", 8, 5),
            stage("torch", 277, 212),
            stage("transformers", 466, 327),
            shm(stage("cuda_context", 499, 410), 10),
            shm(stage("first_forward", 1234, 536), 20),
        ]);
        let b = Baselines::from_profile(&profile, Path::new("/tmp/cal.json"));
        assert_eq!(b.api_anon_bytes, (466 + 25) * MIB);
        assert_eq!(b.libraries_bytes, 327 * MIB);
        // Against the stage just before it (transformers), not against torch.
        assert_eq!(b.cuda_context_bytes, (919 - 793) * MIB);
        assert_eq!(b.first_forward_bytes, (1790 - 919) * MIB);
    }

    #[test]
    fn a_machine_without_vllm_keeps_vllms_imports() {
        // Measured on an H100 with torch 2.11 and no vLLM (scripts/gpu-check.sh).
        let profile = h100_profile(vec![
            stage("python", 8, 3),
            stage("torch", 277, 108),
            stage("cuda_context", 307, 186),
        ]);
        let b = Baselines::from_profile(&profile, Path::new("/tmp/cal.json"));
        assert_eq!(b.api_anon_bytes, (277 + 248 + 25) * MIB);
        assert_eq!(b.libraries_bytes, (108 + 129) * MIB);
        assert_eq!(b.cuda_context_bytes, (307 + 186 - 277 - 108) * MIB);
    }

    #[test]
    fn profile_round_trips_and_drives_baselines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/calibration.json");
        let profile = Profile {
            schema: PROFILE_SCHEMA.into(),
            measured_at: "2026-01-01T00:00:00Z".into(),
            python: "/usr/bin/python3".into(),
            python_version: "3.11.9".into(),
            torch_version: Some("2.13.0".into()),
            vllm_version: Some("0.32.0".into()),
            cuda: true,
            stages: vec![
                stage("python", 9, 6),
                stage("torch", 277, 213),
                stage("vllm_server", 520, 340),
                stage("vllm_worker", 550, 360),
                stage("cuda_context", 580, 453),
            ],
        };
        profile.save(&path).unwrap();
        let loaded = Profile::load(&path).unwrap();
        assert_eq!(loaded, profile);
        let b = Baselines::from_profile(&loaded, &path);
        assert_eq!(b.api_anon_bytes, 545 * MIB);
        assert_eq!(b.worker_libraries_bytes, 20 * MIB);
        assert_eq!(b.cuda_context_bytes, 123 * MIB);
        assert!(matches!(b.source, BaselineSource::Profile { .. }));
    }

    #[test]
    fn default_path_order() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        assert_eq!(
            default_path(&env),
            Some(PathBuf::from("/home/u/.config/ramscope/calibration.json"))
        );
        let env = |k: &str| (k == "RAMSCOPE_CALIBRATION").then(|| "/x.json".to_string());
        assert_eq!(default_path(&env), Some(PathBuf::from("/x.json")));
    }

    #[test]
    fn bad_profile_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, "{ nope").unwrap();
        assert!(Profile::load(&path)
            .unwrap_err()
            .to_string()
            .contains("line 1"));
    }

    #[test]
    fn a_profile_that_is_not_a_regular_file_is_not_read() {
        let e = Profile::load(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.to_string(), "/dev/zero is not a regular file");
    }
}
