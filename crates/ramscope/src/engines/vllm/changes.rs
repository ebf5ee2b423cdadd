//! Where vLLM's source changed something the host-RAM formulas depend on, for the facts
//! the per-release table ([`super::releases`]) does not carry: one row per change, with the
//! first release that has it and the `file:line@release` that shows it, read from the PyPI
//! source archives of every release 0.10.2–0.33.0. A formula asks [`has`] instead of
//! comparing versions itself, so a release boundary lives in one place.

use super::Version;

/// A behaviour of vLLM's source that appeared in some release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// FlashInfer decodes through TRTLLM on SM100, so no per-size decode wrapper there.
    FlashinferTrtllmDecodeSm100,
    /// FlashInfer decodes through XQA on SM90 as well.
    FlashinferXqaDecodeSm90,
    /// FlashInfer's `paged_kv_indices` is a device tensor only (no pinned host copy).
    FlashinferIndicesOnDevice,
    /// Runner V2: staged writes of `all_token_ids` go through a growing pinned pool.
    V2StagedContentsPool,
    /// Runner V2: with n-gram speculation `all_token_ids` lives on the GPU.
    V2DenseTokenIdsWithNgram,
    /// The multimodal IPC cache needs exactly one API server (before: only DP = 1).
    MmIpcNeedsOneApiServer,
    /// Prompt embeddings reach the V1 engine (`Request.prompt_embeds`).
    PromptEmbedsV1,
    /// `--kv-offloading-backend` defaults to `native` (before: unset, so the size alone did nothing).
    KvOffloadingBackendDefault,
    /// `VLLM_USE_SIMPLE_KV_OFFLOAD=1` and `SimpleCPUOffloadConnector` exist.
    SimpleKvOffload,
    /// The CPU offloading connector rounds the bytes of one offloaded block up to 4 KiB.
    KvOffloadAlignedBlocks,
    /// `--kv-offloading-backend lmcache` means `LMCacheMPConnector`: storage in a separate server.
    LmcacheSeparateServer,
    /// Prefetch weight offload (`--offload-group-size`).
    PrefetchWeightOffload,
    /// Sleep mode also backs up the `runtime` (and `cudagraph`) allocations.
    SleepBacksUpRuntime,
    /// The CPU worker skips its warm-up profile run under `--enforce-eager` (before: it ran
    /// it, sampler over a full batch of logits included, whatever the compilation mode).
    CpuEagerSkipsWarmup,
}

/// One change: first release (minor of 0.x) and where its source shows it.
struct Fact {
    change: Change,
    since: u16,
    at: &'static str,
}

const fn fact(change: Change, since: u16, at: &'static str) -> Fact {
    Fact { change, since, at }
}

use Change::*;

/// Each change, by the first release whose source has it (every release between two rows
/// was read: 0.10.2, 0.11.0, 0.12.0, 0.13.0, 0.14.1, 0.15.1, 0.16.0 … 0.33.0).
const FACTS: &[Fact] = &[
    fact(
        FlashinferTrtllmDecodeSm100,
        12,
        "vllm/v1/attention/backends/flashinfer.py:513-515@0.12.0",
    ),
    fact(
        FlashinferXqaDecodeSm90,
        25,
        "vllm/v1/attention/backends/flashinfer.py:719-731@0.25.1",
    ),
    fact(
        FlashinferIndicesOnDevice,
        29,
        "vllm/v1/attention/backends/flashinfer.py:923@0.29.0",
    ),
    fact(
        V2StagedContentsPool,
        30,
        "vllm/v1/worker/gpu/buffer_utils.py:91,175@0.30.0",
    ),
    fact(
        V2DenseTokenIdsWithNgram,
        32,
        "vllm/v1/worker/gpu/model_runner.py:275-276@0.32.0",
    ),
    fact(
        MmIpcNeedsOneApiServer,
        11,
        "vllm/multimodal/cache.py:497-498@0.11.0",
    ),
    fact(
        CpuEagerSkipsWarmup,
        27,
        "vllm/v1/worker/cpu_model_runner.py:148@0.27.1",
    ),
    fact(PromptEmbedsV1, 11, "vllm/v1/request.py:86@0.11.0"),
    fact(
        KvOffloadingBackendDefault,
        14,
        "vllm/config/cache.py:158@0.14.1",
    ),
    fact(SimpleKvOffload, 19, "vllm/config/vllm.py:660-661@0.19.1"),
    fact(
        KvOffloadAlignedBlocks,
        23,
        "vllm/v1/kv_offload/cpu/spec.py:51-57@0.23.0",
    ),
    fact(
        LmcacheSeparateServer,
        23,
        "vllm/config/vllm.py:793-799@0.23.0",
    ),
    fact(
        PrefetchWeightOffload,
        17,
        "vllm/model_executor/offloader/prefetch.py:578@0.17.1",
    ),
    fact(
        SleepBacksUpRuntime,
        32,
        "vllm/device_allocator/sleep_mode_backend.py:134-136@0.32.0",
    ),
];

fn find(change: Change) -> &'static Fact {
    // Every variant has a row (tested), so the fallback is never reached.
    FACTS
        .iter()
        .find(|f| f.change == change)
        .unwrap_or(&FACTS[0])
}

/// Whether `version` has `change`.
pub(super) fn has(version: Version, change: Change) -> bool {
    version.minor() >= find(change).since
}

/// `file:line@release` of the source that shows `change`.
pub(super) fn at(change: Change) -> &'static str {
    find(change).at
}

/// Picks the citation for `version` from `(first minor, file:line@release)` rows in release
/// order: the newest row at or before it (the first row when none is).
pub(super) fn cite(version: Version, rows: &[(u16, &'static str)]) -> &'static str {
    let v = version.minor();
    rows.iter()
        .rev()
        .find(|(since, _)| *since <= v)
        .or(rows.first())
        .map_or("", |(_, at)| at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Change; 14] = [
        FlashinferTrtllmDecodeSm100,
        FlashinferXqaDecodeSm90,
        FlashinferIndicesOnDevice,
        V2StagedContentsPool,
        V2DenseTokenIdsWithNgram,
        MmIpcNeedsOneApiServer,
        PromptEmbedsV1,
        KvOffloadingBackendDefault,
        SimpleKvOffload,
        KvOffloadAlignedBlocks,
        LmcacheSeparateServer,
        PrefetchWeightOffload,
        SleepBacksUpRuntime,
        CpuEagerSkipsWarmup,
    ];

    #[test]
    fn every_change_has_one_row_citing_its_first_release() {
        assert_eq!(FACTS.len(), ALL.len());
        for c in ALL {
            let rows: Vec<&Fact> = FACTS.iter().filter(|f| f.change == c).collect();
            assert_eq!(rows.len(), 1, "{c:?}");
            let f = rows[0];
            // The citation is from the first release with the change.
            let (file, release) = f.at.split_once('@').expect("file:line@release");
            assert!(
                file.starts_with("vllm/") && file.contains(".py:"),
                "{}",
                f.at
            );
            assert!(
                release.starts_with(&format!("0.{}.", f.since)),
                "{c:?}: {}",
                f.at
            );
        }
    }

    #[test]
    fn a_change_holds_from_its_first_release_on() {
        assert!(!has(Version::V0_31, SleepBacksUpRuntime));
        assert!(has(Version::V0_32, SleepBacksUpRuntime));
        assert!(has(Version::V0_33, SleepBacksUpRuntime));
        assert!(!has(Version::V0_10, PromptEmbedsV1));
        let rows = [(10, "a@0.10.2"), (20, "b@0.20.2"), (33, "c@0.33.0")];
        assert_eq!(cite(Version::V0_12, &rows), "a@0.10.2");
        assert_eq!(cite(Version::V0_32, &rows), "b@0.20.2");
        assert_eq!(cite(Version::V0_33, &rows), "c@0.33.0");
    }
}
