//! `max_num_seqs` and `max_num_batched_tokens` when the user leaves them out
//! (`get_batch_defaults` / `_set_default_args` in `vllm/engine/arg_utils.py`): per GPU class
//! on CUDA and per rank on the CPU backend, from the release's row. Nearly every runner
//! buffer scales with one of the two.

use super::ResolveError;
use crate::engines::vllm::args::VllmArgs;
use crate::engines::vllm::Version;
use crate::footprint::Device;
use crate::gpu::Gpu;
use crate::units::Checked;

/// The batch limits vLLM will use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Batch {
    pub max_num_seqs: u64,
    pub max_num_batched_tokens: u64,
}

/// The given limits, or the release's defaults for this device, GPU and world size.
pub(super) fn batch(
    version: Version,
    device: Device,
    gpu: &Gpu,
    world: u64,
    max_model_len: u64,
    args: &VllmArgs,
) -> Result<Batch, ResolveError> {
    let rel = version.release();
    let (default_r, default_t) = match device {
        // Too large stays too large (u64::MAX), refused with the buffers it sizes.
        Device::Cpu => {
            let (r, t) = rel.batch_defaults.value.cpu_per_rank;
            (
                (Checked::new(r) * world).raw(),
                (Checked::new(t) * world).raw(),
            )
        }
        Device::Cuda => rel.batch_defaults.value.cuda(gpu),
    };
    let chunked = args.enable_chunked_prefill.unwrap_or(true);
    let max_num_batched_tokens = match args.max_num_batched_tokens {
        Some(t) => t,
        None if !chunked => default_t.max(max_model_len),
        None => default_t,
    };
    let max_num_seqs = args
        .max_num_seqs
        .unwrap_or(default_r.min(max_num_batched_tokens));
    if max_num_seqs == 0 || max_num_batched_tokens == 0 {
        return Err(ResolveError::Invalid(
            "--max-num-seqs and --max-num-batched-tokens must be > 0".into(),
        ));
    }
    Ok(Batch {
        max_num_seqs,
        max_num_batched_tokens,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::{resolve, test_context};
    use super::*;
    use crate::engines::vllm::args::parse_str;
    use crate::model::Model;

    #[test]
    fn h100_defaults_are_1024_and_8192() {
        let gpu = Gpu::default_gpu();
        let env = BTreeMap::new();
        let r = resolve(
            &Model::default_model(),
            &parse_str("--max-model-len 5120").unwrap(),
            &test_context(Version::V0_11, Device::Cuda, &gpu, &env),
        )
        .unwrap();
        assert_eq!(
            (r.max_num_seqs, r.max_num_batched_tokens, r.block_size),
            (1024, 8192, 16)
        );
        assert_eq!(r.blocks_per_request(), 320);
        assert_eq!(r.world_size(), 1);
        assert_eq!(r.cudagraph_capture_sizes.len(), 67);
        assert!(r.runner_in_engine_core);
        let l4 = Gpu::parse("l4").unwrap();
        let r = resolve(
            &Model::default_model(),
            &VllmArgs::default(),
            &test_context(Version::V0_11, Device::Cuda, &l4, &env),
        )
        .unwrap();
        assert_eq!((r.max_num_seqs, r.max_num_batched_tokens), (256, 2048));
        assert_eq!(r.max_model_len, 40960);
    }

    #[test]
    fn cpu_defaults_scale_with_the_ranks_and_zero_is_refused() {
        let gpu = Gpu::default_gpu();
        let none = VllmArgs::default();
        let b = |world| batch(Version::V0_32, Device::Cpu, &gpu, world, 4096, &none);
        assert_eq!(
            b(2),
            Ok(Batch {
                max_num_seqs: 256,
                max_num_batched_tokens: 4096
            })
        );
        // Without chunked prefill a whole max_model_len prompt must fit in one batch.
        let unchunked = parse_str("--no-enable-chunked-prefill").unwrap();
        let t = batch(Version::V0_32, Device::Cuda, &gpu, 1, 40960, &unchunked)
            .map(|b| b.max_num_batched_tokens);
        assert_eq!(t, Ok(40960));
        let zero = parse_str("--max-num-seqs 0").unwrap();
        assert!(batch(Version::V0_32, Device::Cuda, &gpu, 1, 4096, &zero).is_err());
    }
}
