//! `ramscope estimate` as a user runs it: output, JSON contract, and one-line errors.

use std::path::Path;
use std::process::{Command, Output};

fn ramscope(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ramscope"))
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("run ramscope")
}

fn stderr_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(text.trim_end().lines().count(), 1, "not one line: {text}");
    assert!(text.starts_with("ramscope: "), "{text}");
    text
}

#[test]
fn default_estimate_is_qwen3_8b_at_5120() {
    let home = tempfile::tempdir().unwrap();
    let out = ramscope(&["estimate", "--json"], home.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "ramscope.estimate/1");
    assert_eq!(v["model"]["name"], "Qwen/Qwen3-8B");
    assert_eq!(v["args"]["max_model_len"], 5120);
    assert_eq!(v["args"]["max_num_seqs"], 1024);
    let ec = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "engine-core")
        .unwrap();
    let ids = ec["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "v2.all_token_ids")
        .unwrap();
    assert_eq!(ids["bytes"], 32 << 20);
    assert_eq!(ids["pinned"], true);
    assert!(v["total"]["steady_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn seed_case_on_0_11() {
    let home = tempfile::tempdir().unwrap();
    let out = ramscope(
        &[
            "estimate",
            "--json",
            "--vllm-version",
            "0.11",
            "Qwen/Qwen3-8B",
            "--max-model-len",
            "5120",
            "--max-num-seqs=256",
        ],
        home.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ec = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "engine-core")
        .unwrap();
    let get = |id: &str| {
        ec["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(get("input_batch.token_ids")["bytes"], 5_242_880);
    assert_eq!(get("input_batch.is_token_ids")["bytes"], 1_310_720);
    assert_eq!(get("runner.inputs_embeds")["bytes"], 64 << 20);
    assert_eq!(
        get("input_batch.token_ids")["formula"],
        "max_num_seqs × max_model_len × 4 B = 256 × 5120 × 4"
    );
}

#[test]
fn whole_command_line_and_human_table() {
    let home = tempfile::tempdir().unwrap();
    let out = ramscope(
        &[
            "estimate",
            "--",
            "vllm",
            "serve",
            "qwen3-8b",
            "--max-model-len",
            "5120",
            "-tp",
            "2",
            "--swap-space",
            "4",
        ],
        home.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("VLLM::Worker_TP{j}"), "{text}");
    assert!(
        text.contains("--swap-space was removed in vLLM 0.32"),
        "{text}"
    );
}

#[test]
fn unknown_flag_names_the_closest() {
    let home = tempfile::tempdir().unwrap();
    let line = stderr_line(&ramscope(
        &["estimate", "--max-model-length", "5120"],
        home.path(),
    ));
    assert!(line.contains("did you mean --max-model-len?"), "{line}");
}

#[test]
fn malformed_config_names_file_and_position() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        "{\n  \"hidden_size\": 64,\n  \"vocab_size\": ,\n}\n",
    )
    .unwrap();
    let line = stderr_line(&ramscope(&["estimate", dir.to_str().unwrap()], home.path()));
    assert!(line.contains("config.json"), "{line}");
    assert!(line.contains("line 3, column"), "{line}");
}

#[test]
fn oversized_and_truncated_headers_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":128}"#,
    )
    .unwrap();
    // Claims an 8 EiB header: must fail without allocating it.
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    std::fs::write(dir.join("model.safetensors"), &huge).unwrap();
    let line = stderr_line(&ramscope(&["estimate", dir.to_str().unwrap()], home.path()));
    assert!(
        line.contains("model.safetensors") && line.contains("exceeds"),
        "{line}"
    );

    let mut cut = 4096u64.to_le_bytes().to_vec();
    cut.extend_from_slice(b"{\"w\":");
    std::fs::write(dir.join("model.safetensors"), &cut).unwrap();
    let line = stderr_line(&ramscope(&["estimate", dir.to_str().unwrap()], home.path()));
    assert!(line.contains("truncated"), "{line}");
}

#[test]
fn model_missing_from_the_cache_says_where_it_looked() {
    let home = tempfile::tempdir().unwrap();
    let line = stderr_line(&ramscope(&["estimate", "SomeOrg/NoSuchModel"], home.path()));
    let hub = home.path().join(".cache/huggingface/hub");
    assert!(line.contains(&hub.display().to_string()), "{line}");
}

#[test]
fn cpu_kv_space_zero_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let line = stderr_line(&ramscope(
        &[
            "estimate",
            "--device",
            "cpu",
            "--env",
            "VLLM_CPU_KVCACHE_SPACE=0",
            "qwen3-0.6b",
        ],
        home.path(),
    ));
    assert!(line.contains("VLLM_CPU_KVCACHE_SPACE=0"), "{line}");
}

#[test]
fn bad_calibration_profile_is_one_line() {
    let home = tempfile::tempdir().unwrap();
    let p = home.path().join("c.json");
    std::fs::write(&p, "not json").unwrap();
    let line = stderr_line(&ramscope(
        &["estimate", "--calibration", p.to_str().unwrap()],
        home.path(),
    ));
    assert!(line.contains("c.json"), "{line}");
}
