//! The connectors' resolution and host buffers, from command lines.

use super::*;
use crate::engines::vllm::test_util::{built, component, resolved};
use crate::footprint::Device;
use crate::proc::roles::Role;

// Qwen3-8B on CUDA, block 16, bf16 KV: one block of one layer is 2 (K, V) × 8 KV heads
// × 128 × 16 tokens × 2 B = 65,536 B at TP 1; 36 layers: 2,359,296 B per block.
const PER_BLOCK: u64 = 2_359_296;

fn offloading(bytes: u64) -> String {
    format!(
        r#"--kv-transfer-config '{{"kv_connector":"OffloadingConnector","kv_role":"kv_both","kv_connector_extra_config":{{"cpu_bytes_to_use":{bytes}}}}}'"#
    )
}

#[test]
fn offloading_connector_maps_whole_chunks_of_cpu_bytes_to_use() {
    // 10 GiB ÷ 2,359,296 (already 4 KiB-aligned) = 4551 chunks → 10,737,156,096 B.
    let b = built(&offloading(10 << 30), Version::V0_33, Device::Cuda);
    let c = component(&b, Role::EngineCore, "kv_offload.shared_region").expect("region");
    assert_eq!(c.bytes, 4551 * PER_BLOCK);
    assert_eq!(c.mapped_bytes, Some(4551 * PER_BLOCK));
    // The server's /dev/shm total counts the region once.
    let without = built("", Version::V0_33, Device::Cuda).shm_mapped_bytes;
    assert_eq!(b.shm_mapped_bytes, without + 4551 * PER_BLOCK);
    // TP 2: half the KV heads per worker, a chunk holds both workers' halves: the same
    // 4551 chunks, each worker resident for its half.
    let b = built(
        &format!("{} -tp 2", offloading(10 << 30)),
        Version::V0_33,
        Device::Cuda,
    );
    let c = component(&b, Role::Worker, "kv_offload.shared_region").unwrap();
    assert_eq!(c.bytes, 4551 * PER_BLOCK / 2);
}

#[test]
fn before_0_14_the_connector_pins_one_tensor_per_layer() {
    // 0.11: 1000 blocks of 64 tokens = 4 GPU blocks each: 1000 × 4 × 65,536 =
    // 262,144,000 B per layer → pow2 268,435,456; × 36 layers.
    let cfg = r#"--kv-transfer-config '{"kv_connector":"OffloadingConnector","kv_role":"kv_both","kv_connector_extra_config":{"num_cpu_blocks":1000,"block_size":64}}'"#;
    let b = built(cfg, Version::V0_11, Device::Cuda);
    let c = component(&b, Role::EngineCore, "kv_offload.cpu_tensors").expect("tensors");
    assert_eq!(c.bytes, 36 * 268_435_456);
    assert!(c.pinned);
    // 0.33 wants cpu_bytes_to_use instead, and says so.
    let e = resolved(cfg, Version::V0_33, Device::Cuda).unwrap_err();
    assert!(e.contains("cpu_bytes_to_use must be specified"), "{e}");
}

#[test]
fn kv_offloading_size_per_release() {
    // 0.12: the backend has no default, so the size alone does nothing …
    let r = resolved("--kv-offloading-size 8", Version::V0_12, Device::Cuda).unwrap();
    assert!(r.kv_transfer.connectors.is_empty());
    assert!(
        r.notes.iter().any(|n| n.contains("does nothing")),
        "{:?}",
        r.notes
    );
    // … and the native backend cannot start.
    let e = resolved(
        "--kv-offloading-size 8 --kv-offloading-backend native",
        Version::V0_12,
        Device::Cuda,
    )
    .unwrap_err();
    assert!(e.contains("fails to start"), "{e}");
    // 0.12 LMCache runs in each worker: 8 GiB over TP 2 = 4 GiB each.
    let b = built(
        "--kv-offloading-size 8 --kv-offloading-backend lmcache -tp 2",
        Version::V0_12,
        Device::Cuda,
    );
    let c = component(&b, Role::Worker, "kv_offload.lmcache").unwrap();
    assert_eq!(c.bytes, 4 << 30);
    // 0.33 LMCache is a separate server: nothing in vLLM's processes.
    let b = built(
        "--kv-offloading-size 8 --kv-offloading-backend lmcache",
        Version::V0_33,
        Device::Cuda,
    );
    assert_eq!(
        component(&b, Role::EngineCore, "kv_offload.lmcache")
            .unwrap()
            .bytes,
        0
    );
    // 0.33 native: 8 GiB ÷ 2,359,296 = 3640 chunks.
    let b = built("--kv-offloading-size 8", Version::V0_33, Device::Cuda);
    let c = component(&b, Role::EngineCore, "kv_offload.shared_region").unwrap();
    assert_eq!(c.bytes, 3640 * PER_BLOCK);
}

#[test]
fn simple_offload_is_private_memory_per_worker() {
    // VLLM_USE_SIMPLE_KV_OFFLOAD=1: 8 GiB ÷ TP 2 = 4 GiB per worker; a block per worker
    // is 1,179,648 B (4 KV heads): 3640 blocks → 4,293,918,720 B each.
    let b = built(
        "VLLM_USE_SIMPLE_KV_OFFLOAD=1 vllm serve M --kv-offloading-size 8 -tp 2",
        Version::V0_33,
        Device::Cuda,
    );
    let c = component(&b, Role::Worker, "kv_offload.simple_cpu").expect("simple");
    assert_eq!(c.bytes, 3640 * 1_179_648);
    assert!(component(&b, Role::Worker, "kv_offload.shared_region").is_none());
}

#[test]
fn nixl_with_a_cpu_buffer_copies_the_kv_cache() {
    // 1000 GPU blocks × 2,359,296 B.
    let cfg = r#"--num-gpu-blocks-override 1000 --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both","kv_buffer_device":"cpu"}'"#;
    let b = built(cfg, Version::V0_33, Device::Cuda);
    let c = component(&b, Role::EngineCore, "kv_transfer.nixl_host_buffer").unwrap();
    assert_eq!(c.bytes, 1000 * PER_BLOCK);
    // On the GPU buffer (the default) nothing is on the host.
    let cfg = r#"--kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'"#;
    let b = built(cfg, Version::V0_33, Device::Cuda);
    assert!(component(&b, Role::EngineCore, "kv_transfer.nixl_host_buffer").is_none());
}

#[test]
fn multi_connector_sums_its_connectors() {
    let cfg = r#"--num-gpu-blocks-override 1000 --kv-transfer-config '{"kv_connector":"MultiConnector","kv_role":"kv_both","kv_connector_extra_config":{"connectors":[{"kv_connector":"NixlConnector","kv_role":"kv_both","kv_buffer_device":"cpu"},{"kv_connector":"OffloadingConnector","kv_role":"kv_both","kv_connector_extra_config":{"cpu_bytes_to_use":2359296}}]}}'"#;
    let b = built(cfg, Version::V0_33, Device::Cuda);
    assert!(component(&b, Role::EngineCore, "kv_transfer.nixl_host_buffer").is_some());
    let c = component(&b, Role::EngineCore, "kv_offload.shared_region").unwrap();
    assert_eq!(c.bytes, PER_BLOCK);
}

#[test]
fn bad_json_is_one_clear_error() {
    for bad in [
        r#"--kv-transfer-config '{"kv_connector": '"#,
        r#"--kv-transfer-config '[1, 2]'"#,
        r#"--kv-transfer-config '"OffloadingConnector"'"#,
    ] {
        let e = resolved(bad, Version::V0_33, Device::Cuda).unwrap_err();
        assert!(e.contains("--kv-transfer-config"), "{bad}: {e}");
    }
    // Sizes vLLM would refuse, in its words or plainly.
    for (size, says) in [
        ("0", "must be specified"),
        ("\"lots\"", "not a whole number"),
    ] {
        let cfg = format!(
            r#"--kv-transfer-config '{{"kv_connector":"OffloadingConnector","kv_connector_extra_config":{{"cpu_bytes_to_use":{size}}}}}'"#
        );
        let e = resolved(&cfg, Version::V0_33, Device::Cuda).unwrap_err();
        assert!(e.contains(says), "{size}: {e}");
    }
    let env = BTreeMap::new();
    let mut notes = Vec::new();
    for bad in [
        "{",
        "[]",
        "{\"kv_connector\": 7}",
        "{\"kv_connector\":\"OffloadingConnector\",\"kv_connector_extra_config\":[]}",
    ] {
        let req = Request {
            transfer_config: Some(bad),
            offloading_bytes: 0,
            offloading_backend: None,
            ranks: 1,
            env: &env,
        };
        let e = resolve(Version::V0_33, &req, &mut notes)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--kv-transfer-config"), "{bad}: {e}");
    }
}
