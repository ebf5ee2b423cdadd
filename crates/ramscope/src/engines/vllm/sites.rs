//! The estimator joined with `ramscope scan`: which allocation sites each component models
//! (by file and anchor, so the join survives line moves), the values of the configuration
//! names scan formulas use, and the sites the estimator knowingly leaves out, with why.

use crate::model::Model;
use crate::scan::Bindings;

use super::defaults::Resolved;
use super::Version;

mod gaps;
mod modelled;

pub use gaps::{KNOWN_GAPS, NOT_MODELLED, RUNNERS};
pub use modelled::MODELLED;

/// The releases a row of these tables holds for, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Releases {
    pub first: Version,
    pub last: Version,
}

impl Releases {
    pub const ALL: Releases = Releases::between(Version::OLDEST, Version::NEWEST);

    pub const fn since(first: Version) -> Releases {
        Releases::between(first, Version::NEWEST)
    }

    pub const fn until(last: Version) -> Releases {
        Releases::between(Version::OLDEST, last)
    }

    pub const fn between(first: Version, last: Version) -> Releases {
        Releases { first, last }
    }

    pub fn contains(self, release: Version) -> bool {
        self.first <= release && release <= self.last
    }
}

/// One estimator component and the sites it sums in some releases (each site rounded as the
/// allocator rounds it: pinned blocks to a power of two).
pub struct Modelled {
    pub component: &'static str,
    pub releases: Releases,
    pub file: &'static str,
    /// Sites by anchor; one a release lacks is skipped (reported as missing).
    pub anchors: &'static [&'static str],
    /// Allocations each site makes (a pool builds several buffers at one call).
    pub copies: u64,
}

/// The rows that hold for `release`.
pub fn modelled_in(release: Version) -> impl Iterator<Item = &'static Modelled> {
    MODELLED
        .iter()
        .filter(move |m| m.releases.contains(release))
}

/// Whether the table knows where `component` is allocated in some release: one it knows
/// that has no row for a release is not allocated there.
pub fn is_tabled(component: &str) -> bool {
    MODELLED.iter().any(|m| m.component == component)
}

/// The release whose rows a scanned tree is checked with: its own, or the one an estimate
/// of it assumes (the nearest known; the newest when it says none).
pub fn release_of(tree_version: Option<&str>) -> Version {
    match tree_version {
        Some(v) => super::version::read(v).unwrap_or_else(|assumed| assumed.used),
        None => Version::NEWEST,
    }
}

/// Sites the estimator knowingly leaves out, by file and anchor prefix, and why.
pub struct KnownGap {
    /// A prefix of the file (`vllm/v1/worker/tpu_` for every TPU file).
    pub file: &'static str,
    /// A prefix of the anchor (`Class.` for every site of a class).
    pub anchor: &'static str,
    pub releases: Releases,
    pub why: &'static str,
}

impl KnownGap {
    pub fn covers(&self, file: &str, anchor: &str, release: Version) -> bool {
        file.starts_with(self.file)
            && anchor.starts_with(self.anchor)
            && self.releases.contains(release)
    }
}

/// A GPU model runner: its files, and the components that show an estimate runs it.
pub struct Runner {
    pub name: &'static str,
    /// File prefixes.
    pub files: &'static [&'static str],
    pub components: &'static [&'static str],
}

impl Runner {
    pub fn owns(&self, file: &str) -> bool {
        self.files.iter().any(|f| file.starts_with(f))
    }
}

/// On the CPU backend a tensor on the run-time device is host memory, but only the code the
/// CPU backend runs matters: its worker and runner (the GPU runner's subclass), the input
/// batch and block table, the sampler, and its attention backend. Attention backends and
/// runners of other platforms are not loaded.
pub const CPU_BACKEND_FILES: &[&str] = &[
    "vllm/v1/worker/cpu_",
    "vllm/v1/worker/gpu_model_runner.py",
    "vllm/v1/worker/gpu_input_batch.py",
    "vllm/v1/worker/block_table.py",
    "vllm/v1/worker/utils.py",
    "vllm/v1/sample/",
    "vllm/v1/attention/backends/cpu_attn.py",
];

/// The values of the names scan formulas use, for one resolved configuration.
pub fn bindings(model: &Model, r: &Resolved) -> Bindings {
    let c = &model.config;
    let mut b = Bindings::new();
    let mut set = |k: &str, v: u64| {
        b.insert(k.to_string(), v);
    };
    set("max_num_seqs", r.max_num_seqs);
    set("max_model_len", r.max_model_len);
    set("max_num_batched_tokens", r.max_num_batched_tokens);
    // vLLM's encoder budget defaults to the token budget.
    set("max_num_encoder_input_tokens", r.max_num_batched_tokens);
    set("encoder_cache_size", r.max_num_batched_tokens);
    set("block_size", r.block_size);
    // The attention kernel's block size: the runner builds its first input batch with the
    // KV block size (`kernel_block_sizes=[cache_config.block_size]`).
    set("kernel_block_size", r.block_size);
    set("hidden_size", c.hidden_size);
    set("vocab_size", c.vocab_size);
    set("num_hidden_layers", c.num_layers);
    set("num_attention_heads", c.num_attention_heads);
    set("num_kv_heads", c.num_kv_heads);
    set("num_key_value_heads", c.num_kv_heads);
    set("head_size", c.head_dim);
    set("head_dim", c.head_dim);
    set("intermediate_size", c.intermediate_size);
    set("dtype", r.dtype.activation_bytes());
    set("kv_cache_dtype", r.kv_cache_dtype.activation_bytes());
    set("tensor_parallel_size", r.tensor_parallel_size);
    set("pipeline_parallel_size", r.pipeline_parallel_size);
    set("data_parallel_size", r.data_parallel_size);
    set("world_size", r.world_size());
    set("num_speculative_tokens", r.num_speculative_tokens);
    set("max_loras", r.max_loras);
    set("max_cpu_loras", r.max_cpu_loras);
    set("max_lora_rank", r.max_lora_rank);
    set("max_logprobs", r.max_logprobs);
    set("num_gpu_blocks", r.num_kv_blocks);
    set(
        "VLLM_MQ_MAX_CHUNK_BYTES_MB",
        r.mq_broadcast_chunk_bytes >> 20,
    );
    set("VLLM_XGRAMMAR_CACHE_MB", r.xgrammar_cache_bytes >> 20);
    set("cpu_offload_gb", r.cpu_offload_bytes >> 30);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_ranges_hold_their_ends_and_nothing_outside() {
        let r = Releases::between(Version::V0_15, Version::V0_29);
        assert!(r.contains(Version::V0_15) && r.contains(Version::V0_29));
        assert!(!r.contains(Version::V0_14) && !r.contains(Version::V0_30));
        assert!(Releases::ALL.contains(Version::OLDEST) && Releases::ALL.contains(Version::NEWEST));
        assert!(!Releases::until(Version::V0_18).contains(Version::V0_19));
    }

    #[test]
    fn a_components_rows_never_overlap_and_each_names_sites() {
        for (i, a) in MODELLED.iter().enumerate() {
            assert!(
                !a.anchors.is_empty(),
                "{}: a row without sites",
                a.component
            );
            assert!(a.releases.first <= a.releases.last, "{}", a.component);
            for b in &MODELLED[i + 1..] {
                let overlap = Version::ALL
                    .into_iter()
                    .any(|v| a.releases.contains(v) && b.releases.contains(v));
                assert!(
                    a.component != b.component || !overlap,
                    "{}: two rows for one release",
                    a.component
                );
            }
        }
    }

    #[test]
    fn a_moved_allocation_is_found_where_each_release_has_it() {
        let at = |component: &str, release: Version| -> Vec<(&str, &str)> {
            modelled_in(release)
                .filter(|m| m.component == component)
                .flat_map(|m| m.anchors.iter().map(move |a| (m.file, *a)))
                .collect()
        };
        // The V1 block table: through the runner, then InputBatch, then a CpuGpuBuffer.
        assert_eq!(
            at("block_table.block_table", Version::V0_14)[0].1,
            "GPUModelRunner.input_batch/InputBatch.block_table"
        );
        assert_eq!(
            at("block_table.block_table", Version::V0_25)[0].0,
            "vllm/v1/worker/gpu_input_batch.py"
        );
        assert_eq!(
            at("block_table.block_table", Version::V0_30)[0],
            (
                "vllm/v1/worker/block_table.py",
                "BlockTable.block_table/CpuGpuBuffer.cpu"
            )
        );
        let mr = "vllm/v1/worker/gpu_model_runner.py";
        // Host positions are gone from 0.19: the row names the device tensor, host memory
        // only on the CPU backend, so a CUDA estimate with them is stale.
        assert_eq!(
            at("runner.positions", Version::V0_18),
            [(mr, "GPUModelRunner.positions/CpuGpuBuffer.cpu")]
        );
        assert_eq!(
            at("runner.positions", Version::V0_19),
            [(mr, "GPUModelRunner.positions")]
        );
        assert!(is_tabled("runner.positions"));
        assert!(!is_tabled("runtime.cuda_context"));
    }

    #[test]
    fn the_connectors_and_prefetch_offload_are_tabled_where_they_exist() {
        let files = |component: &str, release: Version| -> Vec<&str> {
            modelled_in(release)
                .filter(|m| m.component == component)
                .map(|m| m.file)
                .collect()
        };
        // Nixl's host buffer: one module, a package, then a base class's file.
        let nixl = "kv_transfer.nixl_host_buffer";
        assert!(files(nixl, Version::V0_19)[0].ends_with("v1/nixl_connector.py"));
        assert!(files(nixl, Version::V0_20)[0].ends_with("nixl/worker.py"));
        assert!(files(nixl, Version::V0_24)[0].ends_with("nixl/base_worker.py"));
        // The shared region exists from 0.27; prefetch offload from 0.17; SimpleCPU from 0.19.
        assert!(files("kv_offload.shared_region", Version::V0_26).is_empty());
        assert!(!files("kv_offload.shared_region", Version::V0_27).is_empty());
        assert!(files("prefetch_offload.weights", Version::V0_16).is_empty());
        assert!(!files("prefetch_offload.weights", Version::V0_17).is_empty());
        assert!(files("kv_offload.simple_cpu", Version::V0_18).is_empty());
        assert!(!files("kv_offload.simple_cpu", Version::V0_33).is_empty());
        // Not listed as unmodelled any more.
        let prefetch = "vllm/model_executor/offloader/prefetch.py";
        let anchor = "_CpuParamOffloader._cpu_storage";
        assert!(!NOT_MODELLED
            .iter()
            .any(|g| g.covers(prefetch, anchor, Version::V0_33)));
    }

    #[test]
    fn known_gaps_hold_only_for_their_releases() {
        let logit_bias = KNOWN_GAPS
            .iter()
            .find(|g| g.file.ends_with("logit_bias.py"))
            .expect("the logit-bias gap");
        let anchor = "LogitBiasState.allowed_token_ids/StagedWriteTensor._uva_buf";
        let file = "vllm/v1/worker/gpu/sample/logit_bias.py";
        assert!(logit_bias.covers(file, anchor, Version::V0_29));
        assert!(!logit_bias.covers(file, anchor, Version::V0_30));
        assert!(!logit_bias.covers("vllm/v1/worker/gpu/states.py", anchor, Version::V0_20));
    }

    #[test]
    fn a_trees_release_is_its_own_or_the_one_assumed() {
        assert_eq!(release_of(Some("0.25.1")), Version::V0_25);
        assert_eq!(release_of(Some("0.32.0+cpu")), Version::V0_32);
        assert_eq!(release_of(Some("0.40.0")), Version::NEWEST);
        assert_eq!(release_of(None), Version::NEWEST);
    }

    #[test]
    fn runners_own_their_files() {
        let v2 = RUNNERS.iter().find(|r| r.name == "V2").expect("V2");
        assert!(v2.owns("vllm/v1/worker/gpu/states.py"));
        assert!(!v2.owns("vllm/v1/worker/gpu_model_runner.py"));
        let v1 = RUNNERS.iter().find(|r| r.name == "V1").expect("V1");
        assert!(v1.owns("vllm/v1/worker/gpu_model_runner.py"));
        assert!(!v1.owns("vllm/v1/worker/gpu/model_runner.py"));
    }
}
