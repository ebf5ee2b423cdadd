//! `ramscope explain` without a vLLM server: offline snapshots, the /dev/shm check, errors.

mod common;

use std::process::Command;

use common::{json_of, ramscope};

#[test]
fn a_small_dev_shm_is_flagged() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a 64 MiB /dev/shm needs root");
        return;
    }
    // A process in its own mount namespace with Docker's default 64 MiB /dev/shm.
    let mut boxed = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs -o size=64m tmpfs /dev/shm && exec sleep 120",
        ])
        .spawn()
        .expect("unshare (util-linux)");
    let pid = boxed.id();
    // Wait until the mount is in place (the shell has exec'd sleep).
    for _ in 0..100 {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "sleep" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let x = json_of(&[
        "explain",
        "--json",
        &pid.to_string(),
        "--",
        "vllm",
        "serve",
        "Qwen/Qwen3-8B",
        "--max-model-len",
        "5120",
        "--tensor-parallel-size",
        "2",
    ]);
    boxed.kill().ok();
    boxed.wait().ok();
    assert_eq!(x["dev_shm"]["size_bytes"].as_u64().unwrap(), 64 << 20);
    let check = x["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["what"] == "/dev/shm")
        .expect("a /dev/shm check");
    assert_eq!(check["level"], "critical", "{check}");
    assert!(check["detail"].as_str().unwrap().contains("--shm-size"));
}

#[test]
fn explains_a_saved_snapshot_offline() {
    let dir = tempfile::tempdir().unwrap();
    let snap = common::snapshot_of_self(dir.path());
    let x = json_of(&[
        "explain",
        "--json",
        "--from-snapshot",
        snap.to_str().unwrap(),
        "--",
        "vllm",
        "serve",
        "qwen3-0.6b",
        "--max-num-seqs",
        "64",
    ]);
    assert_eq!(x["schema"], "ramscope.explain/1");
    assert_eq!(x["estimate"]["args"]["max_num_seqs"], 64);
    // A test binary is no vLLM process: it is shown, unexplained, and said so.
    assert_eq!(x["processes"].as_array().unwrap().len(), 1);
    assert!(x["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("no counterpart")));
}

#[test]
fn bad_snapshot_and_missing_command_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let out = ramscope(&[
        "explain",
        "--from-snapshot",
        bad.to_str().unwrap(),
        "--",
        "vllm",
        "serve",
        "qwen3-8b",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("bad.json"), "{err}");

    let good = dir.path().join("good.json");
    let me = std::process::id().to_string();
    std::fs::write(
        &good,
        ramscope(&["measure", "--json", "--no-tree", &me]).stdout,
    )
    .unwrap();
    let out = ramscope(&["explain", "--from-snapshot", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("command line"));

    let out = ramscope(&["explain", "4194303"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "ramscope: no process with PID 4194303"
    );
}

#[test]
fn plain_ramscope_without_a_server_shows_the_labelled_default() {
    // Only meaningful where no vLLM server runs; the shared test server lives in another
    // test binary, so a server here means someone else's.
    let out = ramscope::<&str>(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    if text.starts_with("No inference server") {
        assert!(text.contains("built-in example"), "{text}");
        assert!(text.contains("Qwen3-8B"), "{text}");
    } else {
        assert!(
            text.contains("explain") || text.contains("measured"),
            "{text}"
        );
    }
}

#[test]
fn a_gpu_snapshot_is_explained_as_a_cuda_server() {
    let snap = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/h100-pinned-snapshot.json"
    );
    let x = json_of(&[
        "explain",
        "--json",
        "--no-calibration",
        "--vllm-version",
        "0.33",
        "--from-snapshot",
        snap,
        "--",
        "vllm",
        "serve",
        "Qwen/Qwen3-8B",
        "--max-model-len",
        "5120",
    ]);
    assert_eq!(x["estimate"]["device"], "cuda");
    let parent = &x["snapshot"]["processes"][0];
    assert!(
        parent["categories"]["pinned"]["rss_bytes"]
            .as_u64()
            .unwrap()
            >= 520 << 20
    );
    assert!(x["advice"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["action"] == "--enforce-eager"));
}

#[test]
fn explains_a_recording_as_last_seen() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let out = ramscope(&[
        "run",
        "--interval",
        "100ms",
        "--out",
        rec.to_str().unwrap(),
        "--",
        "python3",
        "-c",
        "import time; x = bytearray(64 << 20); time.sleep(1.5)",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let x = json_of(&[
        "explain",
        "--json",
        "--from-snapshot",
        rec.to_str().unwrap(),
        "--",
        "vllm",
        "serve",
        "qwen3-0.6b",
    ]);
    let procs = x["snapshot"]["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1, "{procs:#?}");
    // The bytearray is zero-filled by calloc: untouched pages, so only the Python baseline is
    // resident, but the categories were read (a full smaps read happened).
    assert!(!procs[0]["categories"].as_object().unwrap().is_empty());
    assert_eq!(x["estimate"]["device"], "cpu");
}

#[test]
fn a_tree_that_only_looks_like_vllm_is_doubted_and_gets_no_advice() {
    // Python sleepers with vLLM's module name and titles, and no vLLM installed.
    let server = common::StandIn::python(
        "vllm.entrypoints.openai.api_server",
        "import os, time\nif os.fork() == 0:\n    os.execv('/bin/sleep', ['VLLM::EngineCore', '120'])\nprint('ready', flush=True)\ntime.sleep(120)\n",
        &["--model", "qwen3-0.6b"],
    );
    let pid = server.pid().to_string();
    let x = json_of(&["explain", "--json", "--no-calibration", &pid]);
    let doubts: Vec<&str> = x["doubts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        doubts
            .iter()
            .any(|d| d.contains("vLLM release of this server could not be read")),
        "{doubts:?}"
    );
    assert!(doubts.iter().any(|d| d.contains("apart")), "{doubts:?}");
    // `version_known` and the estimate's `version_assumed` say the same thing.
    let assumed = &x["estimate"]["version_assumed"];
    assert_eq!(x["version_known"], false);
    assert!(assumed["requested"].is_null(), "{assumed}");
    assert_eq!(assumed["used"], "0.33");
    let with = |v: &str| {
        json_of(&[
            "explain",
            "--json",
            "--no-calibration",
            "--vllm-version",
            v,
            &pid,
        ])
    };
    let newer = with("1.0");
    assert_eq!(newer["version_known"], false);
    assert_eq!(newer["estimate"]["version_assumed"]["requested"], "1.0");
    assert!(
        newer["doubts"][0]
            .as_str()
            .is_some_and(|d| d.starts_with("vLLM 1.0 is newer")),
        "{}",
        newer["doubts"]
    );
    let known = with("0.25.1");
    assert_eq!(known["version_known"], true);
    assert!(known["estimate"]["version_assumed"].is_null());
    assert_eq!(known["estimate"]["engine_version"], "0.25");
    assert!(x["advice"].as_array().unwrap().is_empty());
    assert!(x["advice_withheld"].as_u64().unwrap() > 0);
    let explained = x["explained_fraction"].as_f64().unwrap();
    assert!(explained < 0.5, "explained {explained}");
    let out = ramscope(&["explain", "--no-calibration", &pid]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("version unknown"), "{text}");
    assert!(
        text.contains("doubtful") && text.contains("Advice withheld"),
        "{text}"
    );
}
