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
/// (so `--check` cannot size them for a command line): what is left of the source audit's
/// "not modelled at all" list (the KV connectors' host buffers and prefetch offload are
/// modelled now, joined in [`super::MODELLED`]). `--check` lists each one the release has,
/// so none is forgotten.
pub const NOT_MODELLED: &[KnownGap] = &[gap(
    "vllm/v1/worker/gpu/sample/trace_replay.py",
    "TraceReplayState.",
    "V2 runner with trace replay enabled (enable_trace_replay): a pinned \
         max_num_seqs × max_model_len int32 table of the traced tokens",
)];

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

const REBUILT_INPUT_BATCH: &str =
    "a second InputBatch, built by may_reinitialize_input_batch only when the \
     KV cache groups' block sizes (hybrid models) or the attention kernel's differ from \
     --block-size; it replaces the first one, whose block table is modelled";

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
    // `may_reinitialize_input_batch` rebuilds the input batch when the KV cache groups'
    // block sizes (or the attention kernel's) differ from --block-size; the scan sees its
    // block table at the second InputBatch call, sized with the configured block size.
    KnownGap {
        file: "vllm/v1/worker/gpu_model_runner.py",
        anchor: "GPUModelRunner.input_batch/InputBatch.block_table/BlockTable.block_table_cpu#2",
        releases: Releases::between(Version::V0_10, Version::V0_10),
        why: REBUILT_INPUT_BATCH,
    },
    KnownGap {
        file: "vllm/v1/worker/gpu_model_runner.py",
        anchor: "GPUModelRunner.input_batch/InputBatch.block_table#2",
        releases: Releases::between(Version::V0_11, Version::V0_14),
        why: REBUILT_INPUT_BATCH,
    },
    KnownGap {
        file: "vllm/v1/worker/gpu/sample/logit_bias.py",
        anchor: "LogitBiasState.",
        releases: Releases::between(Version::V0_15, Version::V0_29),
        why: "not host memory: these StagedWriteTensors are built without \
              uva_instead_of_gpu, so they live on the GPU; the scan lists both branches",
    },
];
