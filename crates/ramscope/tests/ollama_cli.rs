//! Ollama through the real binary: a model pulled into a store of its own (a manifest and a
//! sparse GGUF blob, as `ollama pull` lays them out), then `ramscope estimate` and `ramscope
//! fit` on the `ollama serve` / `ollama run` lines a user runs. Ollama itself is not installed
//! here: what is checked is that ramscope finds the model Ollama would load and prices the
//! llama-server runners Ollama would start.
//!
//! The fit case is rwlove/home-ops#13936: a 3B vision-language model behind Ollama with
//! OLLAMA_MAX_LOADED_MODELS=3 in a pod limited to 6G was OOM-killed every ~1.5 days as the
//! runners' prompt caches grew (8 GiB default each); LLAMA_ARG_CACHE_RAM=512 and a 10G limit
//! fixed it.

mod common;

use std::path::Path;

use ramscope::gguf::builder::{Builder, LlamaShape};

/// A Qwen2.5-3B-shaped language model in Q4_K (36 layers, 2048 wide, 2 KV heads, 151,936
/// tokens): about 1.9 GiB, written sparse.
fn pull(store: &Path, name: &str, tag: &str) {
    let shape = LlamaShape {
        name: "qwen2.5-3b-shape".into(),
        layers: 36,
        hidden: 2048,
        heads: 16,
        kv_heads: 2,
        ffn: 11008,
        vocab: 151_936,
        ctx: 32768,
        type_id: 12,
        embd_type: 14,
    };
    let digest = "5ee4f07cdb9beadbbb293e85803c569b01bd37ed059d2715faa7bb405f31caa6";
    let blobs = store.join("blobs");
    std::fs::create_dir_all(&blobs).expect("blobs");
    let size = Builder::llama(&shape)
        .write_sparse(&blobs.join(format!("sha256-{digest}")))
        .expect("blob");
    let manifests = store.join(format!("manifests/registry.ollama.ai/library/{name}"));
    std::fs::create_dir_all(&manifests).expect("manifests");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": format!("sha256:{}", "0".repeat(64)), "size": 2},
        "layers": [{"mediaType": "application/vnd.ollama.image.model",
                    "digest": format!("sha256:{digest}"), "size": size}],
    });
    std::fs::write(manifests.join(tag), manifest.to_string()).expect("manifest");
}

fn run(args: &[String]) -> (i32, serde_json::Value, String) {
    let out = common::ramscope(args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn estimates_the_runners_ollama_would_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    pull(dir.path(), "qwen2.5vl", "3b");
    let store = dir.path().display();
    let (code, e, err) = run(&words(&format!(
        "estimate --json --device cuda -- OLLAMA_MODELS={store} OLLAMA_MAX_LOADED_MODELS=3 ollama run qwen2.5vl:3b"
    )));
    assert_eq!(code, 0, "{err}");
    assert_eq!(e["engine"], "ollama");
    let runners = e["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["role"] == "worker")
        .expect("a runner process");
    assert_eq!(runners["count"], 3, "{runners}");
    // Each runner's prompt cache may grow to llama-server's default 8 GiB.
    assert_eq!(runners["growth_bytes"], 8u64 << 30);
}

#[test]
fn the_prompt_cache_growth_of_three_runners_overflows_a_6g_pod() {
    let dir = tempfile::tempdir().expect("tempdir");
    pull(dir.path(), "qwen2.5vl", "3b");
    let store = dir.path().display();
    let line = |env: &str, limit: &str| {
        words(&format!(
            "fit --json --device cuda --memory-limit {limit} -- OLLAMA_MODELS={store} OLLAMA_MAX_LOADED_MODELS=3 {env} RAMSCOPE_OLLAMA_MODEL=qwen2.5vl:3b ollama serve"
        ))
    };
    // As deployed: it starts (steady state fits 6G) and dies later.
    let (code, f, err) = run(&line("", "6G"));
    assert_eq!(f["verdict"], "oom-later", "{err}\n{f:#}");
    assert_ne!(code, 0);
    let findings = f["findings"].as_array().expect("findings");
    assert!(
        !findings.iter().any(|x| x["verdict"] == "oom-at-load"),
        "{findings:?}"
    );
    let knobs: Vec<&str> = f["growth"]
        .as_array()
        .expect("growth")
        .iter()
        .filter_map(|g| g["knob"].as_str())
        .collect();
    assert!(knobs.iter().any(|k| k.contains("CACHE_RAM")), "{knobs:?}");
    // The fix: each cache capped at 512 MiB, and a 10G limit.
    let (code, f, err) = run(&line("LLAMA_ARG_CACHE_RAM=512", "10G"));
    assert_eq!(f["verdict"], "fits", "{err}\n{f:#}");
    assert_eq!(code, 0);
}
