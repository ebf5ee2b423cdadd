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
    assert!(
        text.contains("VLLM::Worker_TP0 … VLLM::Worker_TP1"),
        "{text}"
    );
    assert!(!text.contains("{j}"), "no title templates: {text}");
    assert!(
        text.contains("--swap-space was removed in vLLM 0.18"),
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

/// Runs ramscope with a deadline: a hang (a FIFO read, a runaway loop) fails the test
/// instead of stalling the suite.
fn ramscope_within(args: &[&str], home: &Path, secs: u64) -> Output {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ramscope"))
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ramscope");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("ramscope {args:?} still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn own_options_work_anywhere_before_the_double_dash() {
    let home = tempfile::tempdir().unwrap();
    // The README's example: --vllm-version after the vLLM flags.
    let v = json_of(&ramscope(
        &[
            "estimate",
            "Qwen/Qwen3-8B",
            "--max-model-len",
            "5120",
            "-tp",
            "2",
            "--vllm-version",
            "0.11",
            "--json",
        ],
        home.path(),
    ));
    assert_eq!(v["engine_version"], "0.11");
    assert_eq!(v["args"]["tensor_parallel_size"], 2);
    let v = json_of(&ramscope(&["estimate", "qwen3-8b", "--json"], home.path()));
    assert_eq!(v["model"]["name"], "Qwen/Qwen3-8B");
    // Every option, in both spellings, among vLLM flags.
    let v = json_of(&ramscope(
        &[
            "estimate",
            "qwen3-0.6b",
            "--device=cpu",
            "--max-model-len",
            "4096",
            "--env",
            "VLLM_CPU_KVCACHE_SPACE=1",
            "--gpu=l4",
            "--no-calibration",
            "--vllm-version=0.32",
            "--json",
        ],
        home.path(),
    ));
    assert_eq!(v["device"], "cpu");
    assert_eq!(v["engine_version"], "0.32");
    assert_eq!(v["args"]["max_model_len"], 4096);
    assert_eq!(v["args"]["cpu_kv_cache_bytes"], 1u64 << 30);
    // After `--` every word is the vLLM command line's.
    let line = stderr_line(&ramscope(
        &["estimate", "--", "vllm", "serve", "qwen3-8b", "--json"],
        home.path(),
    ));
    assert!(line.contains("unknown vLLM flag --json"), "{line}");
    let line = stderr_line(&ramscope(
        &["estimate", "qwen3-8b", "--", "--vllm-version", "0.11"],
        home.path(),
    ));
    assert!(line.contains("unknown vLLM flag --vllm-version"), "{line}");
    // Their values are checked as before.
    let line = stderr_line(&ramscope(
        &["estimate", "qwen3-8b", "--device", "tpu"],
        home.path(),
    ));
    assert!(
        line.contains("'tpu'") && line.contains("--device"),
        "{line}"
    );
    let line = stderr_line(&ramscope(&["estimate", "qwen3-8b", "--gpu"], home.path()));
    assert!(line.contains("--gpu needs a value"), "{line}");
}

#[test]
fn unrelated_flags_get_no_suggestion() {
    let home = tempfile::tempdir().unwrap();
    let line = stderr_line(&ramscope(&["estimate", "--bogus-flag"], home.path()));
    assert_eq!(line.trim_end(), "ramscope: unknown vLLM flag --bogus-flag");
}

#[test]
fn sizes_past_16_eib_are_one_line_errors() {
    let home = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            &["estimate", "--max-model-len", "4611686018427387904"][..],
            "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1",
        ),
        (
            &[
                "estimate",
                "--env",
                "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1",
                "--max-model-len",
                "4611686018427387904",
            ][..],
            "needs more than 16 EiB",
        ),
        (
            &["estimate", "--kv-offloading-size", "1e20"][..],
            "--kv-offloading-size",
        ),
        (
            &["estimate", "--api-server-count", "99999999999999"][..],
            "needs more than 16 EiB",
        ),
        (
            &[
                "estimate",
                "--device",
                "cpu",
                "--env",
                "VLLM_CPU_KVCACHE_SPACE=99999999999",
                "qwen3-0.6b",
            ][..],
            "VLLM_CPU_KVCACHE_SPACE=99999999999",
        ),
    ] {
        let line = stderr_line(&ramscope(args, home.path()));
        assert!(line.contains(says), "{args:?}: {line}");
    }
}

/// A model folder with this config.json.
fn model_dir(home: &Path, config: &str) -> std::path::PathBuf {
    let dir = home.join("model");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    dir
}

#[test]
fn absurd_configs_and_headers_are_refused_by_name() {
    let home = tempfile::tempdir().unwrap();
    let dir = model_dir(
        home.path(),
        r#"{"hidden_size":64,"num_hidden_layers":18446744073709551615,"num_attention_heads":4,"vocab_size":128}"#,
    );
    let line = stderr_line(&ramscope(&["estimate", dir.to_str().unwrap()], home.path()));
    assert!(
        line.contains("config.json") && line.contains("2^64"),
        "{line}"
    );

    let dir = model_dir(
        home.path(),
        r#"{"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":128}"#,
    );
    // [2^32, 2^32, 2^32] elements wrapped to 0 parameters.
    let header =
        r#"{"w":{"dtype":"U8","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}}"#;
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    std::fs::write(dir.join("model.safetensors"), &file).unwrap();
    let line = stderr_line(&ramscope(&["estimate", dir.to_str().unwrap()], home.path()));
    assert!(
        line.contains("model.safetensors") && line.contains("64 bits"),
        "{line}"
    );
}

#[test]
fn deep_configs_cost_time_and_memory_per_layer_kind_not_per_layer() {
    let home = tempfile::tempdir().unwrap();
    // 2^28 layers took 13.9 s and 8.4 GB (a list per layer); 10^12 aborted.
    for layers in ["268435456", "1000000000000"] {
        let dir = model_dir(
            home.path(),
            &format!(
                r#"{{"model_type":"qwen3","hidden_size":8,"intermediate_size":16,"num_hidden_layers":{layers},"num_attention_heads":1,"num_key_value_heads":1,"vocab_size":16,"max_position_embeddings":4096}}"#
            ),
        );
        for flags in [
            &["--device", "cpu", "--env", "VLLM_CPU_KVCACHE_SPACE=1"][..],
            &["--cpu-offload-gb", "1", "--enable-sleep-mode"][..],
        ] {
            let mut args = vec!["estimate", "--json", dir.to_str().unwrap()];
            args.extend_from_slice(flags);
            let started = std::time::Instant::now();
            let out = ramscope_within(&args, home.path(), 20);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{layers} layers {flags:?}: {:?}",
                started.elapsed()
            );
            // Either an estimate or one clear line; never a crash.
            if !out.status.success() {
                stderr_line(&out);
            }
        }
    }
}

#[test]
fn fifos_are_refused_not_read() {
    let home = tempfile::tempdir().unwrap();
    let mkfifo = |p: &Path| {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    };
    let dir = model_dir(
        home.path(),
        r#"{"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":128}"#,
    );
    mkfifo(&dir.join("model.safetensors"));
    let out = ramscope_within(&["estimate", dir.to_str().unwrap()], home.path(), 10);
    let line = stderr_line(&out);
    assert!(
        line.contains("model.safetensors") && line.contains("not a regular file"),
        "{line}"
    );

    let fifo_dir = home.path().join("fifo-config");
    std::fs::create_dir(&fifo_dir).unwrap();
    mkfifo(&fifo_dir.join("config.json"));
    let out = ramscope_within(&["estimate", fifo_dir.to_str().unwrap()], home.path(), 10);
    let line = stderr_line(&out);
    assert!(line.contains("not a regular file"), "{line}");
    let config = fifo_dir.join("config.json");
    let out = ramscope_within(&["estimate", config.to_str().unwrap()], home.path(), 10);
    let line = stderr_line(&out);
    assert!(
        line.contains("config.json") && line.contains("regular file"),
        "{line}"
    );
}

/// The warnings of the text report, each joined from its wrapped lines.
fn warnings(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut found: Vec<String> = Vec::new();
    let mut inside = false;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.starts_with("warning:") {
            found.push(line.to_string());
            inside = true;
        } else if let (true, Some(rest), Some(last)) =
            (inside, line.strip_prefix("  "), found.last_mut())
        {
            last.push(' ');
            last.push_str(rest.trim_start());
        } else {
            inside = false;
        }
    }
    found
}

#[test]
fn a_known_release_with_a_patch_suffix_is_used_as_is() {
    let home = tempfile::tempdir().unwrap();
    let args = ["estimate", "qwen3-8b", "--max-model-len", "5120"];
    let with = |extra: &[&'static str]| [&args[..], extra].concat();
    let v = json_of(&ramscope(
        &with(&["--vllm-version", "0.25.1", "--json"]),
        home.path(),
    ));
    assert_eq!(v["engine_version"], "0.25");
    assert!(v["version_assumed"].is_null(), "{}", v["version_assumed"]);
    let text = ramscope(&with(&["--vllm-version", "0.25.1"]), home.path());
    assert_eq!(warnings(&text), Vec::<String>::new());
    assert!(String::from_utf8_lossy(&text.stdout).starts_with("vLLM 0.25 "));
}

#[test]
fn releases_ramscope_has_not_read_are_assumed_and_said_so() {
    let home = tempfile::tempdir().unwrap();
    for (given, used, why) in [
        ("0.34.0", "0.33", "newer"),
        ("1.0", "0.33", "newer"),
        ("0.9.2", "0.10", "older"),
    ] {
        let args = [
            "estimate",
            "qwen3-8b",
            "--max-model-len",
            "5120",
            "--vllm-version",
            given,
        ];
        let v = json_of(&ramscope(&[&args[..], &["--json"]].concat(), home.path()));
        assert_eq!(v["engine_version"], used, "{given}");
        let a = &v["version_assumed"];
        assert_eq!(a["requested"], given);
        assert_eq!(a["used"], used);
        assert!(
            a["reason"].as_str().is_some_and(|r| r.contains(why)),
            "{given}: {a}"
        );
        let lines = warnings(&ramscope(&args, home.path()));
        assert_eq!(lines.len(), 1, "{given}: {lines:?}");
        assert!(
            lines[0].contains(given) && lines[0].contains(&format!("estimated as vLLM {used}")),
            "{}",
            lines[0]
        );
    }
}
