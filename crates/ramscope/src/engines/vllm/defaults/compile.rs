//! Eager or compiled, and which CUDA graphs: `--enforce-eager`, the optimization level, the
//! release's default `cudagraph_mode`, the speculative decoding that widens captured
//! batches, and the capture sizes ([`crate::engines::vllm::cuda_graphs`]). Each captured
//! size keeps host-side graph state.

use std::collections::BTreeMap;

use super::{env_var, ResolveError};
use crate::engines::vllm::args::VllmArgs;
use crate::engines::vllm::{cuda_graphs, Version};
use crate::footprint::Device;
use crate::gpu::Gpu;

/// What compilation and CUDA graphs vLLM will use.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Compilation {
    pub enforce_eager: bool,
    pub torch_compile: bool,
    pub cudagraph_mode: String,
    pub cudagraph_capture_sizes: Vec<u64>,
    pub num_speculative_tokens: u64,
    pub speculative_method: Option<String>,
}

/// `max_num_seqs` and `max_num_batched_tokens` bound the capture sizes.
pub(super) fn compilation(
    version: Version,
    device: Device,
    gpu: &Gpu,
    env: &BTreeMap<String, String>,
    args: &VllmArgs,
    max_num_seqs: u64,
    max_num_batched_tokens: u64,
) -> Result<Compilation, ResolveError> {
    let rel = version.release();
    let level_zero = args.optimization_level == Some(0)
        || args
            .compilation_config
            .get("mode")
            .or_else(|| args.compilation_config.get("level"))
            .is_some_and(|m| m == "0" || m.eq_ignore_ascii_case("none"));
    let enforce_eager = args.enforce_eager.unwrap_or(false);
    let torch_compile =
        !enforce_eager && !level_zero && env_var(env, "VLLM_CPU_CI_ENV") != Some("1");
    let mut cudagraph_mode = args
        .compilation_config
        .get("cudagraph_mode")
        .map(|m| m.to_ascii_uppercase())
        .unwrap_or_else(|| rel.cudagraph_mode.value.into());
    if device == Device::Cpu || enforce_eager || level_zero {
        cudagraph_mode = "NONE".into();
    }
    let spec_json = args
        .speculative_config
        .as_deref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
    let num_speculative_tokens = args.spec_tokens.unwrap_or_else(|| {
        spec_json
            .as_ref()
            .and_then(|j| j.get("num_speculative_tokens"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    });
    let speculative_method = args.spec_method.clone().or_else(|| {
        spec_json
            .as_ref()
            .and_then(|j| j.get("method"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    });
    let cudagraph_capture_sizes = if cudagraph_mode == "NONE" {
        Vec::new()
    } else {
        cuda_graphs::capture_sizes(
            version,
            args,
            max_num_seqs,
            max_num_batched_tokens,
            num_speculative_tokens,
            cuda_graphs::compute_family(&gpu.name) == Some(100),
        )?
    };
    Ok(Compilation {
        enforce_eager,
        torch_compile,
        cudagraph_mode,
        cudagraph_capture_sizes,
        num_speculative_tokens,
        speculative_method,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{resolve, test_context};
    use super::*;
    use crate::engines::vllm::args::parse_str;
    use crate::model::Model;

    #[test]
    fn v012_captures_51_sizes() {
        let gpu = Gpu::default_gpu();
        let env = BTreeMap::new();
        let r = resolve(
            &Model::default_model(),
            &VllmArgs::default(),
            &test_context(Version::V0_12, Device::Cuda, &gpu, &env),
        )
        .unwrap();
        assert_eq!(r.cudagraph_capture_sizes.len(), 51);
    }

    #[test]
    fn eager_level_zero_and_the_cpu_backend_capture_nothing() {
        let gpu = Gpu::default_gpu();
        let env = BTreeMap::new();
        let c = |flags: &str, device| {
            compilation(
                Version::V0_33,
                device,
                &gpu,
                &env,
                &parse_str(flags).unwrap(),
                256,
                8192,
            )
            .unwrap()
        };
        let default = c("", Device::Cuda);
        assert_eq!(default.cudagraph_mode, "FULL_AND_PIECEWISE");
        assert!(default.torch_compile && !default.cudagraph_capture_sizes.is_empty());
        for (flags, device) in [
            ("--enforce-eager", Device::Cuda),
            ("-O0", Device::Cuda),
            ("", Device::Cpu),
        ] {
            let x = c(flags, device);
            assert_eq!(x.cudagraph_mode, "NONE", "{flags} {device:?}");
            assert!(x.cudagraph_capture_sizes.is_empty(), "{flags} {device:?}");
        }
        assert!(!c("-O0", Device::Cuda).torch_compile);
        // The CPU backend compiles without graphs.
        assert!(c("", Device::Cpu).torch_compile);
        let spec = c(
            r#"--speculative-config '{"method":"ngram","num_speculative_tokens":3}'"#,
            Device::Cuda,
        );
        assert_eq!(
            (
                spec.num_speculative_tokens,
                spec.speculative_method.as_deref()
            ),
            (3, Some("ngram"))
        );
    }
}
