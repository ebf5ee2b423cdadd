//! Which source sites each estimator component sums, release by release: one row per
//! component and range of releases whose source allocates it at the same sites. A component
//! that moved (renamed attribute, other file, other class) gets a row per layout; releases
//! with no row for a component do not allocate it, so an estimate that has it is stale there.
//! Read from the sources of 0.10.2, 0.11.0, 0.12.0, 0.13.0 … 0.33.0 (one per minor release)
//! with `ramscope scan`; `tests/scan_vllm_releases.rs` checks every release against this
//! table.

use super::{Modelled, Releases};
use crate::engines::vllm::Version;

const IB: &str = "vllm/v1/worker/gpu_input_batch.py";
const MR: &str = "vllm/v1/worker/gpu_model_runner.py";
const BT: &str = "vllm/v1/worker/block_table.py";
const MIN_P: &str = "vllm/v1/sample/logits_processor/builtin.py";
const FLASHINFER: &str = "vllm/v1/attention/backends/flashinfer.py";
const EAGLE: &str = "vllm/v1/spec_decode/eagle.py";
const PROPOSER: &str = "vllm/v1/spec_decode/llm_base_proposer.py";
const V2_STATES: &str = "vllm/v1/worker/gpu/states.py";
const V2_MROPE: &str = "vllm/v1/worker/gpu/mm/mrope_utils.py";
const V2_ROPE: &str = "vllm/v1/worker/gpu/mm/rope.py";
const OFFLOAD_CPU_GPU: &str = "vllm/v1/kv_offload/worker/cpu_gpu.py";
const OFFLOAD_WORKER: &str = "vllm/v1/kv_offload/cpu/gpu_worker.py";
const SIMPLE_OFFLOAD: &str = "vllm/v1/simple_kv_offload/worker.py";

const ALL: Releases = Releases::ALL;
const fn since(first: Version) -> Releases {
    Releases::since(first)
}
const fn until(last: Version) -> Releases {
    Releases::until(last)
}
const fn between(first: Version, last: Version) -> Releases {
    Releases::between(first, last)
}
const fn only(release: Version) -> Releases {
    Releases::between(release, release)
}

const fn row(
    component: &'static str,
    releases: Releases,
    file: &'static str,
    anchors: &'static [&'static str],
) -> Modelled {
    Modelled {
        component,
        releases,
        file,
        anchors,
        copies: 1,
    }
}

/// A row whose one site builds `copies` equal buffers (a pool's list comprehension).
const fn pool(
    component: &'static str,
    releases: Releases,
    file: &'static str,
    anchor: &'static [&'static str],
    copies: u64,
) -> Modelled {
    Modelled {
        component,
        releases,
        file,
        anchors: anchor,
        copies,
    }
}

const SAMPLING_PARAMS: &[&str] = &[
    "InputBatch.temperature_cpu_tensor",
    "InputBatch.top_p_cpu_tensor",
    "InputBatch.top_k_cpu_tensor",
    "InputBatch.frequency_penalties_cpu_tensor",
    "InputBatch.presence_penalties_cpu_tensor",
    "InputBatch.repetition_penalties_cpu_tensor",
];

/// Components and their sites, by release. The GPU runner V1 (and the CPU backend, which
/// runs its subclass), then the V2 runner's, then the KV connectors' host buffers and
/// prefetch weight offload (sized by run-time settings the scan cannot evaluate: joined to
/// find them in each release, not compared in bytes).
pub const MODELLED: &[Modelled] = &[
    // --- The V1 input batch (gpu_input_batch.py).
    row(
        "input_batch.token_ids",
        ALL,
        IB,
        &["InputBatch.token_ids_cpu_tensor"],
    ),
    row(
        "input_batch.is_token_ids",
        only(Version::V0_11),
        IB,
        &["InputBatch.is_token_ids"],
    ),
    row(
        "input_batch.is_token_ids",
        since(Version::V0_12),
        IB,
        &["InputBatch.is_token_ids_tensor"],
    ),
    // Per-request counters kept in numpy, until each became a pinned tensor (below).
    row(
        "input_batch.num_tokens",
        until(Version::V0_13),
        IB,
        &[
            "InputBatch.num_tokens",
            "InputBatch.num_tokens_no_spec",
            "InputBatch.num_prompt_tokens",
        ],
    ),
    row(
        "input_batch.num_tokens",
        between(Version::V0_14, Version::V0_17),
        IB,
        &[
            "InputBatch.num_tokens_no_spec",
            "InputBatch.num_prompt_tokens",
        ],
    ),
    row(
        "input_batch.num_tokens",
        only(Version::V0_18),
        IB,
        &["InputBatch.num_prompt_tokens"],
    ),
    row(
        "input_batch.num_computed_tokens",
        ALL,
        IB,
        &["InputBatch.num_computed_tokens_cpu_tensor"],
    ),
    // The pinned per-request counters, as they were added.
    row(
        "input_batch.counters",
        until(Version::V0_17),
        IB,
        &["InputBatch.num_computed_tokens_cpu_tensor"],
    ),
    row(
        "input_batch.counters",
        only(Version::V0_18),
        IB,
        &[
            "InputBatch.num_computed_tokens_cpu_tensor",
            "InputBatch.num_tokens_no_spec_cpu_tensor",
        ],
    ),
    row(
        "input_batch.counters",
        between(Version::V0_19, Version::V0_26),
        IB,
        &[
            "InputBatch.num_computed_tokens_cpu_tensor",
            "InputBatch.num_tokens_no_spec_cpu_tensor",
            "InputBatch.num_prompt_tokens_cpu_tensor",
        ],
    ),
    row(
        "input_batch.counters",
        since(Version::V0_27),
        IB,
        &[
            "InputBatch.num_computed_tokens_cpu_tensor",
            "InputBatch.num_tokens_no_spec_cpu_tensor",
            "InputBatch.num_prompt_tokens_cpu_tensor",
            "InputBatch.replayssm_decode_base_cpu_tensor",
        ],
    ),
    row("input_batch.sampling_params", ALL, IB, SAMPLING_PARAMS),
    row(
        "input_batch.num_accepted_tokens",
        ALL,
        IB,
        &["InputBatch.num_accepted_tokens_cpu_tensor"],
    ),
    row(
        "input_batch.lora_and_logits_flags",
        ALL,
        IB,
        &[
            "InputBatch.request_lora_mapping",
            "InputBatch.logits_processing_needs_token_ids",
        ],
    ),
    // Made on the first request with allowed_token_ids, after the CPU runner swapped its
    // device copies for host ones, so on the CPU backend the "device" copy is host memory too
    // (a device tensor counts only there).
    row(
        "input_batch.allowed_token_ids_mask",
        ALL,
        IB,
        &[
            "InputBatch.allowed_token_ids_mask_cpu_tensor",
            "InputBatch.allowed_token_ids_mask",
        ],
    ),
    row(
        "sampler.prompt_token_ids",
        until(Version::V0_18),
        IB,
        &["InputBatch._make_prompt_token_ids_tensor.prompt_token_ids_cpu_tensor"],
    ),
    row(
        "sampler.prompt_token_ids",
        since(Version::V0_19),
        IB,
        &["InputBatch._make_prompt_token_ids_cpu_tensor.prompt_token_ids_cpu_tensor"],
    ),
    row(
        "logits.min_p",
        ALL,
        MIN_P,
        &["MinPLogitsProcessor.min_p_cpu_tensor"],
    ),
    // --- The block table: sized through the runner until 0.14; from 0.15 the runner passes
    // no size and the scan finds it where InputBatch builds it; from 0.30 a CpuGpuBuffer.
    row(
        "block_table.block_table",
        only(Version::V0_10),
        MR,
        // 0.10: BlockTable allocates a device table and a host copy at one call.
        &["GPUModelRunner.input_batch/InputBatch.block_table/BlockTable.block_table_cpu"],
    ),
    row(
        "block_table.block_table",
        between(Version::V0_11, Version::V0_14),
        MR,
        &["GPUModelRunner.input_batch/InputBatch.block_table"],
    ),
    row(
        "block_table.block_table",
        between(Version::V0_15, Version::V0_29),
        IB,
        &["InputBatch.block_table/BlockTable.block_table"],
    ),
    row(
        "block_table.block_table",
        since(Version::V0_30),
        BT,
        &["BlockTable.block_table/CpuGpuBuffer.cpu"],
    ),
    row(
        "block_table.num_blocks_per_row",
        until(Version::V0_29),
        IB,
        &["InputBatch.block_table/BlockTable.num_blocks_per_row"],
    ),
    row(
        "block_table.num_blocks_per_row",
        since(Version::V0_30),
        BT,
        &["BlockTable.num_blocks_per_row"],
    ),
    // 0.10: a device tensor and its `_cpu` host copy (the CPU runner drops the device one).
    row(
        "block_table.slot_mapping",
        only(Version::V0_10),
        IB,
        &["InputBatch.block_table/BlockTable.slot_mapping_cpu"],
    ),
    row(
        "block_table.slot_mapping",
        between(Version::V0_11, Version::V0_29),
        IB,
        &["InputBatch.block_table/BlockTable.slot_mapping"],
    ),
    row(
        "block_table.slot_mapping",
        since(Version::V0_30),
        BT,
        &["BlockTable.slot_mapping/CpuGpuBuffer.cpu"],
    ),
    // --- The V1 runner's own buffers (gpu_model_runner.py).
    row(
        "runner.input_ids",
        ALL,
        MR,
        &["GPUModelRunner.input_ids/CpuGpuBuffer.cpu"],
    ),
    // From 0.19 positions and seq_lens live on the device only: the V1 runner on CUDA no
    // longer has them; the CPU backend's device tensors are host memory (device sites
    // count only there).
    row(
        "runner.positions",
        until(Version::V0_18),
        MR,
        &["GPUModelRunner.positions/CpuGpuBuffer.cpu"],
    ),
    row(
        "runner.positions",
        since(Version::V0_19),
        MR,
        &["GPUModelRunner.positions"],
    ),
    row(
        "runner.num_computed_tokens",
        since(Version::V0_19),
        MR,
        &["GPUModelRunner.num_computed_tokens"],
    ),
    row(
        "runner.is_padding",
        since(Version::V0_31),
        MR,
        &["GPUModelRunner.is_padding"],
    ),
    row(
        "runner.query_start_loc",
        ALL,
        MR,
        &["GPUModelRunner.query_start_loc/CpuGpuBuffer.cpu"],
    ),
    row(
        "runner.seq_lens",
        until(Version::V0_18),
        MR,
        &["GPUModelRunner.seq_lens/CpuGpuBuffer.cpu"],
    ),
    row(
        "runner.seq_lens",
        since(Version::V0_19),
        MR,
        &["GPUModelRunner.seq_lens"],
    ),
    row(
        "runner.inputs_embeds",
        ALL,
        MR,
        &["GPUModelRunner.inputs_embeds/CpuGpuBuffer.cpu"],
    ),
    row(
        "runner.is_token_ids",
        since(Version::V0_11),
        MR,
        &["GPUModelRunner.is_token_ids/CpuGpuBuffer.cpu"],
    ),
    // int64 indices in 0.11, a bool mask from 0.12.
    row(
        "runner.discard_request_indices",
        only(Version::V0_11),
        MR,
        &["GPUModelRunner.discard_request_indices/CpuGpuBuffer.cpu"],
    ),
    row(
        "runner.discard_request_indices",
        since(Version::V0_12),
        MR,
        &["GPUModelRunner.discard_request_mask/CpuGpuBuffer.cpu"],
    ),
    // 0.10 calls it num_draft_tokens.
    row(
        "runner.num_decode_draft_tokens",
        only(Version::V0_10),
        MR,
        &["GPUModelRunner.num_draft_tokens/CpuGpuBuffer.cpu"],
    ),
    row(
        "runner.num_decode_draft_tokens",
        since(Version::V0_11),
        MR,
        &["GPUModelRunner.num_decode_draft_tokens/CpuGpuBuffer.cpu"],
    ),
    row(
        "runner.num_accepted_tokens",
        ALL,
        MR,
        &["GPUModelRunner.num_accepted_tokens/CpuGpuBuffer.cpu"],
    ),
    row(
        "runner.mrope_positions",
        ALL,
        MR,
        &["GPUModelRunner.mrope_positions/CpuGpuBuffer.cpu"],
    ),
    row("runner.arange_np", ALL, MR, &["GPUModelRunner.arange_np"]),
    row(
        "runner.arange_scratch",
        since(Version::V0_19),
        MR,
        &["GPUModelRunner._arange_scratch"],
    ),
    row(
        "runner.sampled_token_ids",
        ALL,
        MR,
        &["GPUModelRunner.sampled_token_ids_pinned_cpu"],
    ),
    row(
        "runner.valid_sampled_token_count",
        since(Version::V0_12),
        MR,
        &["GPUModelRunner.valid_sampled_token_count_cpu"],
    ),
    row(
        "runner.encoder_seq_lens",
        since(Version::V0_12),
        MR,
        &["GPUModelRunner.encoder_seq_lens/CpuGpuBuffer.cpu"],
    ),
    row(
        "runner.optimistic_seq_lens",
        since(Version::V0_19),
        MR,
        &["GPUModelRunner.optimistic_seq_lens_cpu"],
    ),
    row(
        "runner.prev_num_draft_tokens",
        since(Version::V0_19),
        MR,
        &["GPUModelRunner.prev_num_draft_tokens/CpuGpuBuffer.cpu"],
    ),
    row(
        "runner.req_indices",
        since(Version::V0_19),
        MR,
        &["GPUModelRunner.req_indices/CpuGpuBuffer.cpu"],
    ),
    row(
        "runner.prev_positions",
        since(Version::V0_19),
        MR,
        &["GPUModelRunner.prev_positions/CpuGpuBuffer.cpu"],
    ),
    row(
        "runner.num_scheduled_tokens",
        since(Version::V0_19),
        MR,
        &["GPUModelRunner.num_scheduled_tokens/CpuGpuBuffer.cpu"],
    ),
    row(
        "runner.query_pos",
        since(Version::V0_19),
        MR,
        &["GPUModelRunner.query_pos/CpuGpuBuffer.cpu"],
    ),
    // --- Attention backend and speculative decoding buffers the V1 runner owns.
    row(
        "flashinfer.paged_kv_indices",
        until(Version::V0_13),
        FLASHINFER,
        &["FlashInferMetadataBuilder.paged_kv_indices_cpu"],
    ),
    row(
        "flashinfer.paged_kv_indices",
        between(Version::V0_14, Version::V0_28),
        FLASHINFER,
        &["FlashInferMetadataBuilder.paged_kv_indices/CpuGpuBuffer.cpu"],
    ),
    row(
        "spec_decode.backup_next_token_ids",
        between(Version::V0_11, Version::V0_14),
        EAGLE,
        &["EagleProposer.backup_next_token_ids/CpuGpuBuffer.cpu"],
    ),
    row(
        "spec_decode.backup_next_token_ids",
        between(Version::V0_15, Version::V0_19),
        EAGLE,
        &["SpecDecodeBaseProposer.backup_next_token_ids/CpuGpuBuffer.cpu"],
    ),
    row(
        "spec_decode.backup_next_token_ids",
        since(Version::V0_20),
        PROPOSER,
        &["SpecDecodeBaseProposer.backup_next_token_ids/CpuGpuBuffer.cpu"],
    ),
    // --- The V2 runner (vllm/v1/worker/gpu/): its pinned R×L token table, named
    // prefill_token_ids until 0.16, and the M-RoPE prefill positions. StagedWriteTensor also
    // makes a device copy at the same call; the host one is its UVA buffer.
    row(
        "v2.all_token_ids",
        between(Version::V0_12, Version::V0_13),
        V2_STATES,
        &["UvaBuffer.cpu"],
    ),
    row(
        "v2.all_token_ids",
        between(Version::V0_14, Version::V0_16),
        V2_STATES,
        &["RequestState.prefill_token_ids/StagedWriteTensor._uva_buf"],
    ),
    row(
        "v2.all_token_ids",
        since(Version::V0_17),
        V2_STATES,
        &["RequestState.all_token_ids/StagedWriteTensor._uva_buf"],
    ),
    row(
        "v2.mrope_prefill_positions",
        between(Version::V0_14, Version::V0_17),
        V2_MROPE,
        &["MRopeState.prefill_mrope_positions/StagedWriteTensor._uva_buf"],
    ),
    row(
        "v2.mrope_prefill_positions",
        between(Version::V0_18, Version::V0_29),
        V2_ROPE,
        &["get_rope_state.return/RopeState.prefill_positions/StagedWriteTensor._uva_buf"],
    ),
    row(
        "v2.mrope_prefill_positions",
        since(Version::V0_30),
        V2_ROPE,
        &["RopeState.prefill_positions/StagedWriteTensor._uva_buf"],
    ),
    // The grammar bitmask: pinned until 0.15 (a GPU tensor from 0.16), a UvaBufferPool of
    // max_concurrency = 2 buffers from 0.14.
    row(
        "v2.grammar_bitmask",
        between(Version::V0_12, Version::V0_13),
        "vllm/v1/worker/gpu/input_batch.py",
        &["InputBuffers.grammar_bitmask/CpuGpuBuffer.cpu"],
    ),
    pool(
        "v2.grammar_bitmask",
        between(Version::V0_14, Version::V0_15),
        "vllm/v1/worker/gpu/structured_outputs.py",
        &["StructuredOutputsWorker.grammar_bitmask/UvaBuffer.cpu"],
        2,
    ),
    // The V2 runner's numpy counters per request (RequestState), as fields came and went.
    // They sum to 4–17 B per request (12 B from 0.23) where the estimator says 20 B: at 256
    // requests the check's 4 KiB slack absorbs the difference, at many more it would not.
    row(
        "v2.numpy_state",
        between(Version::V0_12, Version::V0_14),
        V2_STATES,
        &[
            "RequestState.prompt_len",
            "RequestState.num_computed_prefill_tokens",
            "RequestState.lora_ids",
            "RequestState.num_logprobs",
            "RequestState.needs_prompt_logprobs",
        ],
    ),
    row(
        "v2.numpy_state",
        between(Version::V0_15, Version::V0_16),
        V2_STATES,
        &[
            "RequestState.prompt_len",
            "RequestState.num_computed_prefill_tokens",
        ],
    ),
    row(
        "v2.numpy_state",
        between(Version::V0_17, Version::V0_19),
        V2_STATES,
        &["RequestState.num_computed_prefill_tokens"],
    ),
    row(
        "v2.numpy_state",
        between(Version::V0_20, Version::V0_22),
        V2_STATES,
        &[
            "RequestState.num_computed_prefill_tokens",
            "RequestState.num_computed_tokens_np",
        ],
    ),
    row(
        "v2.numpy_state",
        since(Version::V0_23),
        V2_STATES,
        &[
            "RequestState.num_computed_prefill_tokens",
            "RequestState.num_computed_tokens_np",
            "RequestState.max_seq_len",
        ],
    ),
    // --- The CPU backend's KV cache: a tensor on the run-time device (host memory there),
    // made by the GPU runner the CPU runner subclasses, then by a shared helper from 0.29.
    row(
        "kv_cache.cpu",
        until(Version::V0_28),
        MR,
        &["GPUModelRunner._allocate_kv_cache_tensors.tensor"],
    ),
    row(
        "kv_cache.cpu",
        since(Version::V0_29),
        "vllm/v1/worker/utils.py",
        &["allocate_kv_cache.buf"],
    ),
    // --- KV connectors (kv_transfer/host.rs). The offloading connector's pinned tensors,
    // one per layer: made by the handler until 0.24, by CPUOffloadingWorker from 0.25 (from
    // 0.27 only where the shared region is not used: not on CUDA).
    row(
        "kv_offload.cpu_tensors",
        between(Version::V0_11, Version::V0_12),
        OFFLOAD_CPU_GPU,
        &["CpuGpuOffloadingHandler.__init__:torch.zeros"],
    ),
    row(
        "kv_offload.cpu_tensors",
        between(Version::V0_13, Version::V0_14),
        OFFLOAD_CPU_GPU,
        &["CpuGpuOffloadingHandlers.__init__:torch.zeros"],
    ),
    row(
        "kv_offload.cpu_tensors",
        between(Version::V0_15, Version::V0_20),
        OFFLOAD_CPU_GPU,
        &["CpuGpuOffloadingHandlers.__init__.cpu_tensor"],
    ),
    row(
        "kv_offload.cpu_tensors",
        between(Version::V0_21, Version::V0_24),
        OFFLOAD_WORKER,
        &["CpuGpuOffloadingHandlers.__init__.cpu_tensor"],
    ),
    row(
        "kv_offload.cpu_tensors",
        since(Version::V0_25),
        OFFLOAD_WORKER,
        &["CPUOffloadingWorker.__init__.cpu_tensor"],
    ),
    // The /dev/shm region every rank maps (0.27+): found at the class until the scan could
    // follow CPUOffloadingSpec's call to it (0.30).
    row(
        "kv_offload.shared_region",
        between(Version::V0_27, Version::V0_29),
        "vllm/v1/kv_offload/cpu/shared_offload_region.py",
        &["SharedOffloadRegion.mmap_obj"],
    ),
    row(
        "kv_offload.shared_region",
        since(Version::V0_30),
        "vllm/v1/kv_offload/cpu/spec.py",
        &["CPUOffloadingSpec.create_worker.mmap_region/SharedOffloadRegion.mmap_obj"],
    ),
    row(
        "kv_offload.simple_cpu",
        between(Version::V0_19, Version::V0_27),
        SIMPLE_OFFLOAD,
        &["SimpleCPUOffloadWorker.register_kv_caches.tensor"],
    ),
    row(
        "kv_offload.simple_cpu",
        since(Version::V0_28),
        SIMPLE_OFFLOAD,
        &["SimpleCPUOffloadWorker._init_cpu_mode.tensor"],
    ),
    // NixlConnector's host buffer (kv_buffer_device=cpu): one module, then a package.
    row(
        "kv_transfer.nixl_host_buffer",
        until(Version::V0_19),
        "vllm/distributed/kv_transfer/kv_connector/v1/nixl_connector.py",
        &["NixlConnectorWorker.xfer_buffers[]"],
    ),
    row(
        "kv_transfer.nixl_host_buffer",
        between(Version::V0_20, Version::V0_23),
        "vllm/distributed/kv_transfer/kv_connector/v1/nixl/worker.py",
        &["NixlConnectorWorker.xfer_buffers[]"],
    ),
    row(
        "kv_transfer.nixl_host_buffer",
        since(Version::V0_24),
        "vllm/distributed/kv_transfer/kv_connector/v1/nixl/base_worker.py",
        &["NixlBaseConnectorWorker.xfer_buffers[]"],
    ),
    // Prefetch weight offload: the CPU copy of each offloaded parameter (re-pinned after
    // loading at a second site that replaces it, so one site is the whole copy).
    row(
        "prefetch_offload.weights",
        since(Version::V0_17),
        "vllm/model_executor/offloader/prefetch.py",
        &["_CpuParamOffloader._cpu_storage"],
    ),
];
