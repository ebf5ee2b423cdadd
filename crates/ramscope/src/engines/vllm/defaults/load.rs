//! How the weights are read: the load format, the safetensors strategies each release
//! accepts (no strategy means auto-prefetch from the release that added it), and the
//! multithreaded loader of `--model-loader-extra-config`.

use serde::Serialize;

use super::ResolveError;
use crate::engines::vllm::args::VllmArgs;
use crate::engines::vllm::Version;

/// How the model weights are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadStrategy {
    Lazy,
    /// No strategy given (from 0.19, the release row's `auto_prefetch`): lazy, but on NFS/Lustre a checkpoint that fits in 90% of
    /// the available RAM is first prefetched into the page cache.
    Auto,
    Eager,
    Prefetch,
    Torchao,
    /// `enable_multithread_load` in `--model-loader-extra-config`.
    Multithread,
    /// Not safetensors (`--load-format` pt, gguf, runai_streamer…): not analysed.
    Other,
}

/// The strategy and the loader's thread count; a load format ramscope does not analyse
/// adds a note.
pub(super) fn load(
    version: Version,
    args: &VllmArgs,
    notes: &mut Vec<String>,
) -> Result<(LoadStrategy, u64), ResolveError> {
    let rel = version.release();
    let load_format = args.load_format.as_deref().unwrap_or("auto");
    let extra = args
        .model_loader_extra_config
        .as_deref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
    let multithread = extra
        .as_ref()
        .and_then(|e| e.get("enable_multithread_load"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let load_threads = extra
        .as_ref()
        .and_then(|e| e.get("num_threads"))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(rel.weight_load_threads.value);
    let load_strategy = if !matches!(load_format, "auto" | "safetensors") {
        notes.push(format!(
            "--load-format {load_format}: host RAM while loading is not analysed"
        ));
        LoadStrategy::Other
    } else if multithread {
        LoadStrategy::Multithread
    } else {
        let known = rel.load_strategies.value;
        match args.safetensors_load_strategy.as_deref() {
            None if rel.auto_prefetch.value => LoadStrategy::Auto,
            None | Some("lazy") => LoadStrategy::Lazy,
            Some("eager") => LoadStrategy::Eager,
            Some("prefetch") if known.contains(&"prefetch") => LoadStrategy::Prefetch,
            Some("torchao") if known.contains(&"torchao") => LoadStrategy::Torchao,
            Some(other) => {
                return Err(ResolveError::Invalid(format!(
                    "--safetensors-load-strategy {other} is not known to vLLM {version}"
                )))
            }
        }
    };
    Ok((load_strategy, load_threads))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::vllm::args::parse_str;

    fn strategy(version: Version, flags: &str) -> Result<(LoadStrategy, u64), ResolveError> {
        load(version, &parse_str(flags).unwrap(), &mut Vec::new())
    }

    #[test]
    fn each_release_accepts_its_own_strategies() {
        let prefetch = "--safetensors-load-strategy prefetch";
        assert!(strategy(Version::V0_17, prefetch).is_err());
        assert_eq!(
            strategy(Version::V0_18, prefetch),
            Ok((LoadStrategy::Prefetch, 8))
        );
        // No strategy: lazy, then auto-prefetch once the release has it.
        assert_eq!(strategy(Version::V0_18, ""), Ok((LoadStrategy::Lazy, 8)));
        assert_eq!(strategy(Version::V0_19, ""), Ok((LoadStrategy::Auto, 8)));
    }

    #[test]
    fn other_formats_and_the_multithread_loader() {
        let mut notes = Vec::new();
        let args = parse_str("--load-format gguf").unwrap();
        assert_eq!(
            load(Version::V0_33, &args, &mut notes),
            Ok((LoadStrategy::Other, 8))
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        let threads =
            r#"--model-loader-extra-config '{"enable_multithread_load":true,"num_threads":3}'"#;
        assert_eq!(
            strategy(Version::V0_33, threads),
            Ok((LoadStrategy::Multithread, 3))
        );
    }
}
