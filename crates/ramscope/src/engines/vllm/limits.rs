//! vLLM's own checks on values that size memory, and the conversions that could overflow:
//! what `vllm serve` refuses, ramscope refuses with the same reason, and a size that does not
//! fit in 64 bits is an error instead of a wrapped or saturated number.

use std::collections::BTreeMap;

use super::args::VllmArgs;
use super::defaults::ResolveError;
use super::Version;
use crate::units::Checked;

/// The most CUDA graph sizes modelled. vLLM's defaults capture at most 67 (0.11, 512
/// tokens every 8); this bound only stops an absurd `--max-cudagraph-capture-size` from
/// building a list of billions.
pub const MAX_CAPTURE_SIZES: u64 = 65_536;

const GIB: f64 = (1u64 << 30) as f64;

fn invalid(message: String) -> ResolveError {
    ResolveError::Invalid(message)
}

/// TP × PP, checked; `data_parallel_size_local` ≤ `data_parallel_size` (`ParallelConfig`).
/// Sizes are already ≥ 1 (the parser refuses 0).
pub fn check_parallel(
    tp: u64,
    pp: u64,
    dp: u64,
    dp_local: Option<u64>,
) -> Result<u64, ResolveError> {
    if let Some(local) = dp_local.filter(|l| *l > dp) {
        return Err(invalid(format!(
            "--data-parallel-size-local {local} must be ≤ --data-parallel-size {dp} (vLLM's ParallelConfig)"
        )));
    }
    (Checked::new(tp) * pp).get().ok_or_else(|| {
        invalid(format!(
            "--tensor-parallel-size {tp} × --pipeline-parallel-size {pp} does not fit in 64 bits"
        ))
    })
}

/// `--headless` starts no API server: vLLM refuses a count above the release's limit
/// (`vllm/entrypoints/cli/serve.py`: more than 1 up to 0.14, any from 0.15).
pub fn check_headless(version: Version, args: &VllmArgs) -> Result<(), ResolveError> {
    let limit = version.release().headless_api_server_limit.value;
    match args.api_server_count {
        Some(n) if args.headless && n > limit => Err(invalid(format!(
            "--api-server-count={n} cannot be used with --headless in vLLM {version} (no API servers are started in headless mode)"
        ))),
        _ => Ok(()),
    }
}

/// `_get_and_verify_max_len`: the model's length unless given; a given one longer than the
/// model's is refused unless `VLLM_ALLOW_LONG_MAX_MODEL_LEN` is `1` or `true`.
pub fn max_model_len(
    given: Option<u64>,
    derived: u64,
    env: &BTreeMap<String, String>,
) -> Result<u64, ResolveError> {
    let Some(len) = given else {
        if derived == 0 {
            return Err(invalid(
                "the model's config gives a maximum length of 0; pass --max-model-len".into(),
            ));
        }
        return Ok(derived);
    };
    if len == 0 {
        return Err(invalid("--max-model-len must be > 0".into()));
    }
    let allow_long = lookup(env, "VLLM_ALLOW_LONG_MAX_MODEL_LEN")
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true"));
    if len > derived && !allow_long {
        return Err(invalid(format!(
            "--max-model-len {len} is greater than the model's maximum length {derived} (from its config.json); vLLM refuses it unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1"
        )));
    }
    Ok(len)
}

/// A flag in GiB (a float) as bytes: refused when ≥ 16 EiB instead of saturating.
pub fn gib_bytes(flag: &str, gib: Option<f64>) -> Result<u64, ResolveError> {
    let Some(gib) = gib else { return Ok(0) };
    Checked::from_f64(gib * GIB).get().ok_or_else(|| {
        invalid(format!(
            "{flag} {gib} GiB needs more than 16 EiB, more than a 64-bit machine can address"
        ))
    })
}

/// An environment variable in MiB (vLLM reads it with `int()`), as bytes.
pub fn env_mib(
    env: &BTreeMap<String, String>,
    name: &str,
    default_mib: u64,
) -> Result<u64, ResolveError> {
    let mib = match lookup(env, name) {
        Some(v) => v.trim().parse::<u64>().map_err(|_| {
            invalid(format!(
                "{name}={v}: vLLM parses it with int(), so it must be a whole number of MiB"
            ))
        })?,
        None => default_mib,
    };
    mib.checked_mul(1 << 20).ok_or_else(|| {
        invalid(format!(
            "{name}={mib} MiB needs more than 16 EiB, more than a 64-bit machine can address"
        ))
    })
}

/// `LoRAConfig`: at least one LoRA per batch, a CPU cache at least that large, and a rank
/// vLLM has kernels for.
pub fn check_lora(
    max_loras: u64,
    max_cpu_loras: Option<u64>,
    rank: u64,
) -> Result<(), ResolveError> {
    const RANKS: [u64; 9] = [1, 8, 16, 32, 64, 128, 256, 320, 512];
    if max_loras == 0 {
        return Err(invalid("--max-loras must be ≥ 1".into()));
    }
    if let Some(cpu) = max_cpu_loras.filter(|c| *c < max_loras) {
        return Err(invalid(format!(
            "max_cpu_loras ({cpu}) must be >= max_loras ({max_loras}). (vLLM's LoRAConfig, vllm/config/lora.py:121-127@0.33.0: --max-cpu-loras is raised to --max-loras only when not given)"
        )));
    }
    if !RANKS.contains(&rank) {
        return Err(invalid(format!(
            "--max-lora-rank {rank}: vLLM accepts {}",
            RANKS.map(|r| r.to_string()).join(", ")
        )));
    }
    Ok(())
}

/// An environment variable as `resolve` sees it (empty is unset).
fn lookup<'a>(env: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    env.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_max_model_len_needs_the_env_var() {
        let none = BTreeMap::new();
        let err = max_model_len(Some(1 << 62), 40960, &none)
            .unwrap_err()
            .to_string();
        assert!(err.contains("VLLM_ALLOW_LONG_MAX_MODEL_LEN=1"), "{err}");
        let allow = BTreeMap::from([(
            "VLLM_ALLOW_LONG_MAX_MODEL_LEN".to_string(),
            " True ".to_string(),
        )]);
        assert_eq!(
            max_model_len(Some(1 << 20), 40960, &allow).unwrap(),
            1 << 20
        );
        assert_eq!(max_model_len(None, 40960, &none).unwrap(), 40960);
        assert!(max_model_len(Some(0), 40960, &allow).is_err());
    }

    #[test]
    fn sizes_past_16_eib_are_errors() {
        let err = gib_bytes("--kv-offloading-size", Some(1e20))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--kv-offloading-size 100000000000000000000 GiB needs more than 16 EiB"),
            "{err}"
        );
        assert_eq!(gib_bytes("--x", Some(1.5)).unwrap(), 3 << 29);
        let env = BTreeMap::from([(
            "VLLM_XGRAMMAR_CACHE_MB".to_string(),
            "99999999999999999".to_string(),
        )]);
        assert!(env_mib(&env, "VLLM_XGRAMMAR_CACHE_MB", 512).is_err());
        assert!(check_parallel(1 << 40, 1 << 40, 1, None).is_err());
        assert!(check_parallel(2, 1, 2, Some(4)).is_err());
        assert_eq!(check_parallel(2, 4, 2, Some(1)).unwrap(), 8);
    }

    #[test]
    fn lora_rules() {
        assert!(check_lora(0, None, 16).is_err());
        // vLLM's own words (config/lora.py `_validate_lora_config`).
        let e = check_lora(4, Some(2), 16).unwrap_err().to_string();
        assert!(
            e.starts_with("max_cpu_loras (2) must be >= max_loras (4)."),
            "{e}"
        );
        assert!(check_lora(1, None, 7).is_err());
        assert!(check_lora(2, Some(2), 64).is_ok());
    }
}
