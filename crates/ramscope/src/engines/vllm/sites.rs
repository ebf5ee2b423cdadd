//! The estimator joined with `ramscope scan`: which allocation sites each component models
//! (by file and anchor, so the join survives line moves), the values of the configuration
//! names scan formulas use, and the sites the estimator knowingly leaves out, with why.

use crate::model::Model;
use crate::scan::Bindings;

use super::defaults::Resolved;

/// One estimator component and the sites it sums (each site rounded as the allocator
/// rounds it: pinned blocks to a power of two).
pub struct Modelled {
    pub component: &'static str,
    pub file: &'static str,
    pub anchors: &'static [&'static str],
}

const IB: &str = "vllm/v1/worker/gpu_input_batch.py";
const MR: &str = "vllm/v1/worker/gpu_model_runner.py";
const V2: &str = "vllm/v1/worker/gpu/model_runner.py";
const V2S: &str = "vllm/v1/worker/gpu/states.py";

/// Components and their sites; a component's anchors are summed (those a release lacks are
/// skipped, so renamed sites are listed side by side). A component absent from an estimate (another runner, a
/// feature that is off) is not checked; one present whose sites are all missing from the
/// scanned release is reported as stale.
pub const MODELLED: &[Modelled] = &[
    Modelled {
        component: "input_batch.token_ids",
        file: IB,
        anchors: &["InputBatch.token_ids_cpu_tensor"],
    },
    Modelled {
        component: "input_batch.is_token_ids",
        file: IB,
        // Renamed in 0.33.
        anchors: &["InputBatch.is_token_ids", "InputBatch.is_token_ids_tensor"],
    },
    Modelled {
        component: "input_batch.num_tokens",
        file: IB,
        anchors: &[
            "InputBatch.num_tokens",
            "InputBatch.num_tokens_no_spec",
            "InputBatch.num_prompt_tokens",
        ],
    },
    Modelled {
        component: "input_batch.num_computed_tokens",
        file: IB,
        anchors: &["InputBatch.num_computed_tokens_cpu_tensor"],
    },
    Modelled {
        component: "input_batch.sampling_params",
        file: IB,
        anchors: &[
            "InputBatch.temperature_cpu_tensor",
            "InputBatch.top_p_cpu_tensor",
            "InputBatch.top_k_cpu_tensor",
            "InputBatch.frequency_penalties_cpu_tensor",
            "InputBatch.presence_penalties_cpu_tensor",
            "InputBatch.repetition_penalties_cpu_tensor",
        ],
    },
    Modelled {
        component: "input_batch.num_accepted_tokens",
        file: IB,
        anchors: &["InputBatch.num_accepted_tokens_cpu_tensor"],
    },
    Modelled {
        component: "input_batch.lora_and_logits_flags",
        file: IB,
        anchors: &[
            "InputBatch.request_lora_mapping",
            "InputBatch.logits_processing_needs_token_ids",
        ],
    },
    Modelled {
        component: "input_batch.allowed_token_ids_mask",
        file: IB,
        anchors: &["InputBatch.allowed_token_ids_mask_cpu_tensor"],
    },
    Modelled {
        component: "block_table.block_table",
        file: MR,
        anchors: &[
            "GPUModelRunner.input_batch/InputBatch.block_table",
            // 0.10: BlockTable allocates a device table and a host copy at one call.
            "GPUModelRunner.input_batch/InputBatch.block_table/BlockTable.block_table_cpu",
        ],
    },
    Modelled {
        component: "block_table.slot_mapping",
        file: IB,
        anchors: &[
            "InputBatch.block_table/BlockTable.slot_mapping",
            "InputBatch.block_table/BlockTable.slot_mapping_cpu",
        ],
    },
    Modelled {
        component: "block_table.num_blocks_per_row",
        file: IB,
        anchors: &["InputBatch.block_table/BlockTable.num_blocks_per_row"],
    },
    Modelled {
        component: "runner.input_ids",
        file: MR,
        anchors: &["GPUModelRunner.input_ids/CpuGpuBuffer.cpu"],
    },
    Modelled {
        component: "runner.positions",
        file: MR,
        anchors: &["GPUModelRunner.positions/CpuGpuBuffer.cpu"],
    },
    Modelled {
        component: "runner.query_start_loc",
        file: MR,
        anchors: &["GPUModelRunner.query_start_loc/CpuGpuBuffer.cpu"],
    },
    Modelled {
        component: "runner.seq_lens",
        file: MR,
        anchors: &["GPUModelRunner.seq_lens/CpuGpuBuffer.cpu"],
    },
    Modelled {
        component: "runner.inputs_embeds",
        file: MR,
        anchors: &["GPUModelRunner.inputs_embeds/CpuGpuBuffer.cpu"],
    },
    Modelled {
        component: "runner.is_token_ids",
        file: MR,
        anchors: &["GPUModelRunner.is_token_ids/CpuGpuBuffer.cpu"],
    },
    Modelled {
        component: "runner.discard_request_indices",
        file: MR,
        anchors: &["GPUModelRunner.discard_request_indices/CpuGpuBuffer.cpu"],
    },
    Modelled {
        component: "runner.num_decode_draft_tokens",
        file: MR,
        anchors: &["GPUModelRunner.num_decode_draft_tokens/CpuGpuBuffer.cpu"],
    },
    Modelled {
        component: "runner.num_accepted_tokens",
        file: MR,
        anchors: &["GPUModelRunner.num_accepted_tokens/CpuGpuBuffer.cpu"],
    },
    Modelled {
        component: "runner.arange_np",
        file: MR,
        anchors: &["GPUModelRunner.arange_np"],
    },
    Modelled {
        component: "v2.all_token_ids",
        file: V2S,
        // StagedWriteTensor also makes a device copy at this call; the host one is the UVA
        // buffer.
        anchors: &["RequestState.all_token_ids/StagedWriteTensor._uva_buf"],
    },
    Modelled {
        component: "v2.runner",
        file: V2,
        anchors: &[],
    },
];

/// Sites of ≥ 1 MiB (at a realistic configuration) the estimator does not model, and why.
/// `--check` lists them as known; any other large site is a difference that fails it.
pub struct KnownGap {
    /// A prefix of the file (`vllm/v1/worker/tpu_` for every TPU file).
    pub file: &'static str,
    /// A prefix of the anchor (`Class.` for every site of a class).
    pub anchor: &'static str,
    pub why: &'static str,
}

/// Allocations the estimator does not model yet whose size comes from run-time settings
/// (so `--check` cannot size them for a command line): from the source audit's "not modelled
/// at all" list. `--check` lists each one the release has, so none is forgotten.
pub const NOT_MODELLED: &[KnownGap] = &[
    KnownGap {
        file: "vllm/v1/kv_offload/cpu/spec.py",
        anchor: "CPUOffloadingSpec.create_worker",
        why: "OffloadingConnector (--kv-transfer-config): exactly cpu_bytes_to_use bytes of \
              /dev/shm for the offloaded KV blocks",
    },
    KnownGap {
        file: "vllm/v1/kv_offload/cpu/gpu_worker.py",
        anchor: "CPUOffloadingWorker.",
        why: "OffloadingConnector worker: the host tensors over the offload region",
    },
    KnownGap {
        file: "vllm/v1/simple_kv_offload/worker.py",
        anchor: "SimpleCPUOffloadWorker.",
        why: "VLLM_USE_SIMPLE_KV_OFFLOAD=1: private host memory per worker instead of /dev/shm",
    },
    KnownGap {
        file: "vllm/distributed/kv_transfer/kv_connector/v1/nixl/base_worker.py",
        anchor: "NixlBaseConnectorWorker.xfer_buffers",
        why: "NixlConnector with kv_buffer_device=cpu: one host tensor per layer shaped like \
              the GPU KV cache (host bytes = GPU KV bytes per worker)",
    },
    KnownGap {
        file: "vllm/model_executor/offloader/prefetch.py",
        anchor: "_CpuParamOffloader.",
        why: "prefetch weight offload (--offload-group-size, --offload-num-in-group): a pinned \
              copy of every parameter of each offloaded layer",
    },
];

pub const KNOWN_GAPS: &[KnownGap] = &[
    KnownGap {
        file: "vllm/v1/worker/tpu_",
        anchor: "",
        why: "the TPU backend's runner: ramscope models CUDA and the CPU backend",
    },
    KnownGap {
        file: "vllm/v1/spec_decode/ngram_proposer.py",
        anchor: "NgramProposer.",
        why: "n-gram speculative decoding only (--speculative-config method=ngram): a \
              warm-up array for its JIT, freed after start-up; not modelled yet",
    },
    KnownGap {
        file: "vllm/v1/spec_decode/vocab_mapping.py",
        anchor: "VocabMapping.",
        why: "speculative decoding with a draft model of another vocabulary only; not \
              modelled yet",
    },
    KnownGap {
        file: "vllm/entrypoints/generate/beam_search/offline.py",
        anchor: "",
        why: "offline beam search (the LLM class), not a server path",
    },
    KnownGap {
        file: "vllm/v1/executor/multiproc_executor.py",
        anchor: "WorkerProc.worker_response_mq",
        why: "multiprocessing executor only (more than one worker): a /dev/shm ring buffer \
              whose mapped size this is; only the pages messages touch become resident",
    },
    KnownGap {
        file: "vllm/distributed/device_communicators/shm_broadcast.py",
        anchor: "MessageQueue.",
        why: "message queues between processes of a parallel group only: sparse /dev/shm \
              ring buffers, mapped at this size, resident as messages touch them",
    },
];

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
