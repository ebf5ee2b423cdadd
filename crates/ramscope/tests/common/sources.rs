//! vLLM source trees for the scan tests: one release per minor version ramscope models
//! (`scripts/vllm-releases.txt`), each fetched once by `scripts/vllm-sources.sh` into a cache
//! outside the repository (a clean machine downloads them on first use, later runs reuse them).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The releases the tests scan, oldest first (`0.10.2` … `0.33.0`).
pub fn releases() -> Vec<String> {
    let list = std::fs::read_to_string(repo_root().join("scripts/vllm-releases.txt"))
        .expect("scripts/vllm-releases.txt");
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The unpacked tree of a release, fetched (or found in the cache) by
/// `scripts/vllm-sources.sh`; the script's error when it could not be had.
pub fn tree(version: &str) -> Result<PathBuf, String> {
    static TREES: Mutex<BTreeMap<String, Result<PathBuf, String>>> = Mutex::new(BTreeMap::new());
    let mut trees = TREES.lock().unwrap_or_else(|e| e.into_inner());
    trees
        .entry(version.to_string())
        .or_insert_with(|| fetch(version))
        .clone()
}

fn fetch(version: &str) -> Result<PathBuf, String> {
    let out = Command::new(repo_root().join("scripts/vllm-sources.sh"))
        .arg(version)
        .output()
        .map_err(|e| format!("running scripts/vllm-sources.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/vllm-sources.sh {version} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{version} ")).map(PathBuf::from))
        .ok_or_else(|| format!("scripts/vllm-sources.sh printed no tree for {version}"))
}
