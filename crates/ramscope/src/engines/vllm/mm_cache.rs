//! The multimodal processor cache (`--mm-processor-cache-gb`, `--mm-processor-cache-type`):
//! which kind vLLM builds (`_get_cache_type`) and where its bytes live. With one API server
//! (and DP 1) the API server keeps only each item's size metadata and EngineCore the items
//! (`lru`), or the API server writes a `/dev/shm` ring (`shm`); otherwise every API server
//! keeps the items itself (`processor_only`).

use super::components::{gib, n, Ctx};
use super::releases::cite;
use crate::attribute::Category;
use crate::footprint::Component;
use crate::units::Checked;

/// The cache kind (`_get_cache_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Not multimodal, or a 0 GiB cache.
    None,
    /// Several API servers or data parallelism: each API server caches processed items.
    ProcessorOnly,
    /// The API server keeps size metadata, EngineCore the items.
    Lru,
    /// The API server writes the items to a `/dev/shm` ring the workers read.
    Shm,
}

pub(super) fn kind(cx: &Ctx) -> Kind {
    let r = cx.r;
    if !r.multimodal || r.mm_processor_cache_bytes == 0 {
        return Kind::None;
    }
    // IPC caching needs DP 1 (or external load balancing, not modelled) and, from 0.11, a
    // single API server.
    let one_api_server =
        r.api_server_count <= 1 || r.version.release().mm_ipc_cache_one_api_server.is_none();
    if !(one_api_server && r.data_parallel_size == 1) {
        Kind::ProcessorOnly
    } else if r.mm_processor_cache_type == "shm" {
        Kind::Shm
    } else {
        Kind::Lru
    }
}

/// `file:line@release` of a cache class: one file up to 0.30, the `cache/` package after.
fn source(cx: &Ctx, class: &str) -> &'static str {
    let v = cx.r.version;
    match class {
        "processor_only" => cite(
            v,
            &[
                (10, "vllm/multimodal/cache.py:297@0.10.2"),
                (12, "vllm/multimodal/cache.py:329@0.12.0"),
                (20, "vllm/multimodal/cache.py:326@0.20.2"),
                (30, "vllm/multimodal/cache.py:392@0.30.0"),
                (31, "vllm/multimodal/cache/base.py:383@0.31.0"),
                (33, "vllm/multimodal/cache/base.py:395-431@0.33.0"),
            ],
        ),
        "sender" => cite(
            v,
            &[
                (10, "vllm/multimodal/cache.py:342@0.10.2"),
                (12, "vllm/multimodal/cache.py:382@0.12.0"),
                (20, "vllm/multimodal/cache.py:379@0.20.2"),
                (30, "vllm/multimodal/cache.py:444@0.30.0"),
                (31, "vllm/multimodal/cache/lru.py:22-47@0.31.0"),
            ],
        ),
        "receiver" => cite(
            v,
            &[
                (10, "vllm/multimodal/cache.py:454@0.10.2"),
                (12, "vllm/multimodal/cache.py:672@0.12.0"),
                (20, "vllm/multimodal/cache.py:614@0.20.2"),
                (30, "vllm/multimodal/cache.py:712@0.30.0"),
                (31, "vllm/multimodal/cache/lru.py:86@0.31.0"),
            ],
        ),
        _ => cite(
            v,
            &[
                (11, "vllm/multimodal/cache.py:384@0.11.0"),
                (12, "vllm/multimodal/cache.py:440@0.12.0"),
                (20, "vllm/multimodal/cache.py:437@0.20.2"),
                (30, "vllm/multimodal/cache.py:509@0.30.0"),
                (31, "vllm/multimodal/cache/shm.py:41@0.31.0"),
                (33, "vllm/multimodal/cache/shm.py:64@0.33.0"),
            ],
        ),
    }
}

/// The cache in each API server; the `/dev/shm` bytes it maps come with it.
pub(super) fn api_server(cx: &Ctx) -> Option<Component> {
    let bytes = cx.r.mm_processor_cache_bytes;
    let limit = format!("mm_processor_cache_gb = {}", gib(bytes));
    match kind(cx) {
        Kind::None => None,
        Kind::ProcessorOnly => Some(
            cx.exact("mm.processor_cache", bytes, Category::Heap, limit, source(cx, "processor_only"))
                .range(0, bytes)
                .note("processor-only mode (several API servers or DP > 1): every API server caches processed items, filling to the limit as distinct items arrive"),
        ),
        // Each item's size and prompt updates only, so both sides evict alike [est: ~1% of
        // the items' data].
        Kind::Lru => Some(
            cx.exact("mm.processor_cache", 0, Category::Heap, format!("size metadata of the items EngineCore caches ({limit})"), source(cx, "sender"))
                .range(0, n(bytes) / 100)
                .note("the sender cache keeps no item data, only sizes and prompt updates; the items are in EngineCore"),
        ),
        Kind::Shm => Some(
            cx.exact("mm.processor_cache_shm", bytes, Category::Shm, limit, source(cx, "shm"))
                .range(0, bytes)
                .mapped(bytes)
                .note("a /dev/shm ring written by the API server and read by the workers; sparse until items arrive"),
        ),
    }
}

/// The receiver cache in EngineCore (`lru` only).
pub(super) fn engine_core(cx: &Ctx) -> Option<Component> {
    let bytes = cx.r.mm_processor_cache_bytes;
    (kind(cx) == Kind::Lru).then(|| {
        cx.exact(
            "mm.receiver_cache",
            bytes,
            Category::Heap,
            format!("mm_processor_cache_gb = {}", gib(bytes)),
            source(cx, "receiver"),
        )
        .range(0, bytes)
        .note("the processed items, mirroring the API server's sender cache; fills as distinct items arrive")
    })
}

/// `/dev/shm` the cache maps (the `shm` ring), for the whole server.
pub(super) fn shm_mapped(cx: &Ctx) -> Checked {
    match kind(cx) {
        Kind::Shm => n(cx.r.mm_processor_cache_bytes),
        _ => n(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::vllm::test_util::with_ctx;
    use crate::engines::vllm::Version;
    use crate::footprint::Device;

    /// A multimodal context: the default model with its config marked multimodal.
    fn mm<T>(flags: &str, version: Version, f: impl FnOnce(&Ctx) -> T) -> T {
        with_ctx(flags, version, Device::Cuda, |cx| {
            let mut r = cx.r.clone();
            r.multimodal = true;
            let cx = Ctx { r: &r, ..*cx };
            f(&cx)
        })
    }

    #[test]
    fn one_api_server_keeps_metadata_and_engine_core_the_items() {
        let four_gib = 4u64 << 30;
        let (api, engine) = mm("--mm-processor-cache-gb 4", Version::V0_33, |cx| {
            (api_server(cx).unwrap(), engine_core(cx).unwrap())
        });
        assert_eq!((api.id.as_str(), api.bytes), ("mm.processor_cache", 0));
        assert!(api.high_bytes < four_gib);
        assert_eq!((engine.bytes, engine.high_bytes), (four_gib, four_gib));
    }

    #[test]
    fn several_api_servers_each_cache_the_items() {
        // Two API servers (vLLM ≥ 0.11): processor-only, the full cache in each, none in
        // EngineCore.
        let four_gib = 4u64 << 30;
        let (api, engine) = mm(
            "--mm-processor-cache-gb 4 --api-server-count 2",
            Version::V0_33,
            |cx| (api_server(cx).unwrap(), engine_core(cx)),
        );
        assert_eq!((api.bytes, api.high_bytes), (four_gib, four_gib));
        assert!(engine.is_none());
        // 0.10 looked only at DP: still the sender/receiver pair.
        let engine = mm(
            "--mm-processor-cache-gb 4 --api-server-count 2",
            Version::V0_10,
            engine_core,
        );
        assert!(engine.is_some());
    }

    #[test]
    fn shm_type_maps_the_ring_and_a_zero_cache_is_none() {
        let (api, mapped) = mm(
            "--mm-processor-cache-gb 2 --mm-processor-cache-type shm",
            Version::V0_33,
            |cx| (api_server(cx).unwrap(), shm_mapped(cx).raw()),
        );
        assert_eq!(api.mapped_bytes, Some(2 << 30));
        assert_eq!(mapped, 2 << 30);
        assert!(mm("--mm-processor-cache-gb 0", Version::V0_33, api_server).is_none());
    }
}
