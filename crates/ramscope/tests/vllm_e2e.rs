//! End to end on a real vLLM server (CPU backend): every test here shares one server.

mod common;

use common::json_of;
use common::vllm::server;

fn subtree(snapshot: &serde_json::Value, root: u32) -> Vec<serde_json::Value> {
    let procs = snapshot["processes"].as_array().expect("processes");
    let mut members = vec![root as u64];
    let mut out = Vec::new();
    // Processes come parents first.
    for p in procs {
        let pid = p["pid"].as_u64().unwrap();
        let ppid = p["ppid"].as_u64().unwrap();
        if pid == root as u64 || members.contains(&ppid) {
            members.push(pid);
            out.push(p.clone());
        }
    }
    out
}

#[test]
fn measure_auto_finds_the_vllm_tree_with_roles() {
    let Some(server) = server() else { return };
    let snapshot = json_of(&["measure", "--auto", "--json"]);
    let tree = subtree(&snapshot, server.api_pid);
    let mut roles: Vec<&str> = tree.iter().map(|p| p["role"].as_str().unwrap()).collect();
    roles.sort_unstable();
    assert_eq!(
        roles,
        ["api-server", "engine-core", "helper", "worker"],
        "{tree:#?}"
    );
    let pss: u64 = tree.iter().map(|p| p["pss_bytes"].as_u64().unwrap()).sum();
    let other: u64 = tree
        .iter()
        .map(|p| p["categories"]["other"]["pss_bytes"].as_u64().unwrap_or(0))
        .sum();
    assert!(other * 100 < pss, "other {other} of {pss}");
    // The worker holds the 1 GiB KV cache (VLLM_CPU_KVCACHE_SPACE=1) as heap.
    let worker = tree.iter().find(|p| p["role"] == "worker").unwrap();
    let heap = worker["categories"]["heap"]["rss_bytes"].as_u64().unwrap();
    assert!(heap > 1 << 30, "worker heap {heap}");
    // The engine and worker share the message queues in /dev/shm (mapped, mostly not resident).
    let engine = tree.iter().find(|p| p["role"] == "engine-core").unwrap();
    let shm_size = engine["categories"]["shm"]["size_bytes"].as_u64().unwrap();
    assert!(shm_size > 300 << 20, "engine shm mapped {shm_size}");
    for p in &tree {
        assert_eq!(
            p["engine"],
            if p["role"] == "helper" {
                "unknown"
            } else {
                "vllm"
            }
        );
        let sum: u64 = p["categories"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["pss_bytes"].as_u64().unwrap())
            .sum();
        assert_eq!(sum, p["pss_bytes"].as_u64().unwrap());
    }
}
