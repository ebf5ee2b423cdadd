//! The sites `--check` knowingly leaves out, with why: allocations the estimator does not
//! model, sites of code the configuration does not run (another runner, another platform),
//! and sites the scan lists that are not host memory in practice.

use super::{KnownGap, Releases, Runner};
use crate::engines::vllm::Version;

const fn gap(file: &'static str, anchor: &'static str, why: &'static str) -> KnownGap {
    KnownGap {
        file,
        anchor,
        releases: Releases::ALL,
        why,
    }
}

/// Allocations the estimator does not model yet whose size comes from run-time settings
/// (so `--check` cannot size them for a command line): from the source audit's "not modelled
/// at all" list. `--check` lists each one the release has, so none is forgotten.
pub const NOT_MODELLED: &[KnownGap] = &[
    gap(
        "vllm/v1/kv_offload/cpu/spec.py",
        "CPUOffloadingSpec.create_worker",
        "OffloadingConnector (--kv-transfer-config): exactly cpu_bytes_to_use bytes of \
         /dev/shm for the offloaded KV blocks",
    ),
    gap(
        "vllm/v1/kv_offload/cpu/gpu_worker.py",
        "CPUOffloadingWorker.",
        "OffloadingConnector worker: the host tensors over the offload region",
    ),
    gap(
        "vllm/v1/simple_kv_offload/worker.py",
        "SimpleCPUOffloadWorker.",
        "VLLM_USE_SIMPLE_KV_OFFLOAD=1: private host memory per worker instead of /dev/shm",
    ),
    gap(
        "vllm/distributed/kv_transfer/kv_connector/v1/nixl/base_worker.py",
        "NixlBaseConnectorWorker.xfer_buffers",
        "NixlConnector with kv_buffer_device=cpu: one host tensor per layer shaped like \
         the GPU KV cache (host bytes = GPU KV bytes per worker)",
    ),
    gap(
        "vllm/model_executor/offloader/prefetch.py",
        "_CpuParamOffloader.",
        "prefetch weight offload (--offload-group-size, --offload-num-in-group): a pinned \
         copy of every parameter of each offloaded layer",
    ),
    gap(
        "vllm/v1/worker/gpu/sample/trace_replay.py",
        "TraceReplayState.",
        "V2 runner with trace replay enabled (enable_trace_replay): a pinned \
         max_num_seqs × max_model_len int32 table of the traced tokens",
    ),
];

/// The GPU model runners whose sites `--check` tells apart: an estimate runs the one whose
/// components it has; the other's sites are listed as known, not as unmodelled.
pub const RUNNERS: &[Runner] = &[
    Runner {
        name: "V1",
        files: &[
            "vllm/v1/worker/gpu_model_runner.py",
            "vllm/v1/worker/gpu_input_batch.py",
            "vllm/v1/worker/block_table.py",
        ],
        components: &["input_batch.token_ids"],
    },
    Runner {
        name: "V2",
        files: &["vllm/v1/worker/gpu/"],
        components: &["v2.all_token_ids", "v2.uva_pools", "v2.numpy_state"],
    },
];

/// Sites of ≥ 1 MiB (at a realistic configuration) the estimator does not model, and why.
/// `--check` lists them as known; any other large site is a difference that fails it.
pub const KNOWN_GAPS: &[KnownGap] = &[
    gap(
        "vllm/v1/worker/tpu_",
        "",
        "the TPU backend's runner: ramscope models CUDA and the CPU backend",
    ),
    gap(
        "vllm/v1/spec_decode/ngram_proposer.py",
        "NgramProposer.",
        "n-gram speculative decoding only (--speculative-config method=ngram): a \
         warm-up array for its JIT, freed after start-up; not modelled yet",
    ),
    gap(
        "vllm/v1/spec_decode/vocab_mapping.py",
        "VocabMapping.",
        "speculative decoding with a draft model of another vocabulary only; not \
         modelled yet",
    ),
    gap(
        "vllm/entrypoints/generate/beam_search/offline.py",
        "",
        "offline beam search (the LLM class), not a server path",
    ),
    gap(
        "vllm/v1/executor/multiproc_executor.py",
        "WorkerProc.worker_response_mq",
        "multiprocessing executor only (more than one worker): a /dev/shm ring buffer \
         whose mapped size this is; only the pages messages touch become resident",
    ),
    gap(
        "vllm/distributed/device_communicators/shm_broadcast.py",
        "MessageQueue.",
        "message queues between processes of a parallel group only: sparse /dev/shm \
         ring buffers, mapped at this size, resident as messages touch them",
    ),
    KnownGap {
        file: "vllm/v1/worker/gpu_model_runner.py",
        anchor: "GPUModelRunner.token_ids_gpu_tensor",
        releases: Releases::since(Version::V0_18),
        why: "GPU n-gram speculative decoding only (method ngram_gpu): a device token \
              table, host memory only on the CPU backend, which does not run it",
    },
    KnownGap {
        file: "vllm/v1/worker/gpu/sample/logit_bias.py",
        anchor: "LogitBiasState.",
        releases: Releases::between(Version::V0_15, Version::V0_29),
        why: "not host memory: these StagedWriteTensors are built without \
              uva_instead_of_gpu, so they live on the GPU; the scan lists both branches",
    },
];
