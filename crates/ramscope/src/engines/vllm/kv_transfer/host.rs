//! The host buffers of each KV connector, in the process that runs the model.

use super::{Chunk, KvHost};
use crate::attribute::Category;
use crate::engines::vllm::components::{n, Ctx};
use crate::engines::vllm::releases::{cite, gained_in, KvOffload, Release};
use crate::engines::vllm::Version;
use crate::footprint::{Component, Device};
use crate::units::Checked;

/// One worker's KV cache geometry: the bytes of one block of one layer, and its layers.
pub(super) struct KvGeometry {
    pub page_layer: Checked,
    pub layers: Checked,
}

impl KvGeometry {
    pub fn of(cx: &Ctx) -> KvGeometry {
        let (c, r) = (&cx.m.config, cx.r);
        let per_token_elems = match c.mla {
            Some(m) => n(m.kv_lora_rank) + m.qk_rope_head_dim,
            None => n(2) * (c.num_kv_heads / r.tensor_parallel_size.max(1)).max(1) * c.head_dim,
        };
        // Half-bytes keep 4-bit caches exact.
        let halves = Checked::from_f64((r.kv_cache_dtype.bytes() * 2.0).round());
        KvGeometry {
            page_layer: (per_token_elems * r.block_size * halves).div_ceil(2u64),
            layers: n(c.num_layers) / r.pipeline_parallel_size.max(1),
        }
    }

    /// The bytes of one GPU block in one worker (`worker_kv_bytes_per_block`).
    pub fn per_block(&self) -> Checked {
        self.page_layer * self.layers
    }
}

/// Whether the offloading connector keeps its blocks in one `/dev/shm` region (else one
/// pinned tensor per layer).
fn shared_region_release(v: Version) -> bool {
    v.release().kv_offload.map(|k| k.value) == Some(KvOffload::SharedRegion)
}

/// Rounds up to a multiple of `to`.
fn round_up(x: Checked, to: u64) -> Checked {
    x.div_ceil(to) * to
}

/// The offloading connector's `/dev/shm` region from 0.27: whole chunks of every worker's
/// blocks, as many as fit in `cpu_bytes_to_use`. Returns (total bytes, chunk bytes, chunks).
fn shared_region(cx: &Ctx, cpu_bytes: u64, blocks_per_chunk: u64) -> (Checked, Checked, Checked) {
    let g = KvGeometry::of(cx);
    let chunk = round_up(
        g.per_block() * cx.r.world_size() * blocks_per_chunk,
        4096, // BLOCK_SIZE_ALIGNMENT = mmap.PAGESIZE
    );
    let chunks = n(cpu_bytes) / chunk.max(1);
    (chunks * chunk, chunk, chunks)
}

/// The `/dev/shm` bytes the connectors map, per engine.
pub(in crate::engines::vllm) fn shm_mapped(cx: &Ctx) -> Checked {
    let r = cx.r;
    r.kv_transfer
        .connectors
        .iter()
        .map(|h| match h {
            KvHost::OffloadBytes {
                cpu_bytes_to_use,
                chunk,
            } if r.device == Device::Cuda && shared_region_release(r.version) => {
                let bpc = chunk.blocks(r.block_size).unwrap_or(1);
                shared_region(cx, *cpu_bytes_to_use, bpc).0
            }
            _ => n(0),
        })
        .sum()
}

/// The host buffers of every connector, in the process that runs the model.
pub(in crate::engines::vllm) fn host_buffers(cx: &Ctx, notes: &mut Vec<String>) -> Vec<Component> {
    let r = cx.r;
    if r.kv_transfer.connectors.is_empty() {
        return Vec::new();
    }
    if r.device == Device::Cpu {
        notes.push("KV connectors on the CPU backend: their host memory is not modelled".into());
        return Vec::new();
    }
    let g = KvGeometry::of(cx);
    let (page, layers) = (g.page_layer, g.layers);
    let w = r.world_size();
    let v = r.version;
    let mut out = Vec::new();
    for host in &r.kv_transfer.connectors {
        match host {
            KvHost::OffloadBlocks {
                num_cpu_blocks,
                chunk,
            } => {
                let Some(bpc) = chunk_blocks(*chunk, r.block_size, notes) else {
                    continue;
                };
                // One pinned tensor per layer, the GPU shape with num_cpu_blocks × bpc blocks.
                let raw = n(*num_cpu_blocks) * bpc * page;
                let bytes = layers * raw.pow2();
                out.push(cx.exact(
                    "kv_offload.cpu_tensors",
                    bytes,
                    Category::Pinned,
                    format!("layers × pow2(num_cpu_blocks × blocks per chunk × block bytes per layer) = {layers} × pow2({num_cpu_blocks} × {bpc} × {page})"),
                    cite(v, &[
                        (11, "vllm/v1/kv_offload/worker/cpu_gpu.py:73-100@0.11.0"),
                        (12, "vllm/v1/kv_offload/worker/cpu_gpu.py:110-120@0.12.0"),
                        (13, "vllm/v1/kv_offload/worker/cpu_gpu.py:245-254@0.13.0"),
                    ]),
                ));
            }
            KvHost::OffloadBytes {
                cpu_bytes_to_use,
                chunk,
            } => {
                let Some(bpc) = chunk_blocks(*chunk, r.block_size, notes) else {
                    continue;
                };
                if shared_region_release(v) {
                    let (total, chunk_bytes, chunks) = shared_region(cx, *cpu_bytes_to_use, bpc);
                    // Each worker pre-faults its own slot of every chunk: total ÷ workers.
                    let per = total / w;
                    out.push(
                        cx.exact(
                            "kv_offload.shared_region",
                            per,
                            Category::Shm,
                            format!("floor(cpu_bytes_to_use ÷ chunk) × chunk ÷ workers = {chunks} × {chunk_bytes} ÷ {w} (chunk = round_up(block bytes per worker {} × {w} workers × {bpc}, 4 KiB))", g.per_block()),
                            cite(v, &[
                                (27, "vllm/v1/kv_offload/cpu/spec.py:100-103,161@0.27.1"),
                                (32, "vllm/v1/kv_offload/cpu/spec.py:103-119,176@0.32.0"),
                                (33, "vllm/v1/kv_offload/cpu/spec.py:100-124,186-200@0.33.0"),
                            ]),
                        )
                        .mapped(total)
                        .note("/dev/shm/vllm_offload_*.mmap, pre-faulted, then unlinked: shows as (deleted); no pow2 rounding"),
                    );
                } else {
                    // 0.14–0.26: pinned tensors per layer, as many blocks as the bytes allow
                    // once every worker's share of a block is counted.
                    let per_offloaded = g.per_block() * w * bpc;
                    let per_offloaded = if v.release().kv_offload_aligned_blocks.is_some() {
                        round_up(per_offloaded, 4096)
                    } else {
                        per_offloaded
                    };
                    let blocks = n(*cpu_bytes_to_use) / per_offloaded.max(1);
                    let raw = blocks * bpc * page;
                    out.push(cx.exact(
                        "kv_offload.cpu_tensors",
                        layers * raw.pow2(),
                        Category::Pinned,
                        format!("layers × pow2(floor(cpu_bytes_to_use ÷ offloaded block bytes) × {bpc} × block bytes per layer) = {layers} × pow2({blocks} × {bpc} × {page})"),
                        cite(v, &[
                            (14, "vllm/v1/kv_offload/cpu.py:31-52@0.14.1"),
                            (23, "vllm/v1/kv_offload/cpu/spec.py:40-57@0.23.0"),
                        ]),
                    ));
                }
            }
            KvHost::Simple {
                bytes_per_rank,
                disk,
            } => {
                if *disk {
                    notes.push("SimpleCPUOffloadConnector with kv_offload_backend disk: blocks go to files (page cache), not modelled".into());
                    continue;
                }
                // At least one block; cudaHostRegister pins it in place (no pow2 rounding).
                let per_block = g.per_block();
                let blocks = (n(*bytes_per_rank) / per_block.max(1)).max(1);
                out.push(
                    cx.exact(
                        "kv_offload.simple_cpu",
                        blocks * per_block,
                        Category::Pinned,
                        format!("floor(bytes per rank ÷ block bytes per worker) × block bytes = {blocks} × {per_block}"),
                        cite(v, &[
                            (19, "vllm/v1/simple_kv_offload/worker.py:160-167@0.19.1"),
                            (33, "vllm/v1/simple_kv_offload/worker.py:182-186,235-250@0.33.0"),
                        ]),
                    )
                    .note("private memory of each worker, registered with cudaHostRegister (VLLM_USE_SIMPLE_KV_OFFLOAD=1 or SimpleCPUOffloadConnector)"),
                );
            }
            KvHost::NixlHostBuffer => {
                // One host tensor per layer shaped like the GPU KV cache.
                let blocks = n(r.num_kv_blocks);
                let bytes = blocks * g.per_block();
                let c = cx.exact(
                    "kv_transfer.nixl_host_buffer",
                    bytes,
                    Category::Heap,
                    format!("GPU KV blocks × block bytes per worker = {blocks} × {}", g.per_block()),
                    cite(v, &[
                        (10, "vllm/distributed/kv_transfer/kv_connector/v1/nixl_connector.py:645-650@0.10.2"),
                        (33, "vllm/distributed/kv_transfer/kv_connector/v1/nixl/base_worker.py:1311-1322@0.33.0"),
                    ]),
                )
                .note("NixlConnector with kv_buffer_device=cpu: every KV block is staged in host RAM");
                out.push(if r.num_kv_blocks_exact {
                    c
                } else {
                    c.range(bytes / 2, bytes * 2)
                        .note("num_kv_blocks estimated from GPU memory; pass --num-gpu-blocks-override for the logged value")
                });
            }
            KvHost::LmcacheLocal { bytes_per_rank } => {
                let per = n(*bytes_per_rank);
                out.push(
                    cx.exact(
                        "kv_offload.lmcache",
                        per,
                        Category::Pinned,
                        format!("lmcache.max_local_cpu_size per rank = {per}"),
                        cite(v, &[(12, "vllm/config/vllm.py:490-497@0.12.0")]),
                    )
                    .range(per, per * 11 / 10)
                    .note("LMCache's local CPU backend inside each worker"),
                );
            }
            KvHost::LmcacheServer => {
                out.push(
                    cx.exact(
                        "kv_offload.lmcache",
                        0,
                        Category::Pinned,
                        "storage in a separate LMCache server process; kv_offloading_size is not passed to vLLM's processes".into(),
                        // Where the first release with a separate server shows it, even
                        // for an LMCacheMPConnector given by hand to an older release.
                        gained_in(|r: &Release| r.lmcache_separate_server).map_or("", |(_, at)| at),
                    )
                    .note("LMCacheMPConnector: start and size the LMCache server yourself; it is not counted here"),
                );
            }
            KvHost::Unmodelled { .. } => {}
        }
    }
    out
}

fn chunk_blocks(chunk: Chunk, block_size: u64, notes: &mut Vec<String>) -> Option<u64> {
    match chunk.blocks(block_size) {
        Ok(b) => Some(b),
        Err(e) => {
            notes.push(format!(
                "{e}: vLLM refuses it; the offload buffer is left out"
            ));
            None
        }
    }
}
