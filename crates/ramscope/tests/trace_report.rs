//! `ramscope trace report` on hand-written trace files of a two-process vLLM tree (an API
//! server and its forked EngineCore), through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trace")
}

fn ramscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ramscope"))
        .args(args)
        .env("COLUMNS", "200")
        .output()
        .expect("run ramscope")
}

fn stdout_of(args: &[&str]) -> String {
    let out = ramscope(args);
    assert!(
        out.status.success(),
        "ramscope {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const MIB: u64 = 1 << 20;

#[test]
fn text_report_names_processes_peak_and_sites() {
    let dir = fixtures();
    let text = stdout_of(&["trace", "report", dir.to_str().unwrap()]);
    assert!(text.contains("2 processes"), "{text}");
    // 200 MiB (API server, held since +10 s) + 1.47 GiB (EngineCore at its peak, +12 s).
    assert!(
        text.contains("Tree peak: 1.66 GiB traced live at +12.0 s"),
        "{text}"
    );
    let engine = text
        .lines()
        .find(|l| l.starts_with("1042 "))
        .expect("the EngineCore's row");
    assert!(
        engine.contains("engine-core") && engine.contains("VLLM::EngineCor"),
        "{engine}"
    );
    assert!(
        text.contains("vllm/v1/worker/gpu_input_batch.py:131 in __init__"),
        "{text}"
    );
    // The native-only site is named by module and offset (the library is not on disk).
    assert!(text.contains("libtorch_cpu.so+0x1234567"), "{text}");
    // A sampled site prints its relative error: sqrt(512 KiB / 44 MiB) = 11%.
    assert!(text.contains("44.0 MiB ±11%"), "{text}");
    assert!(text.contains("Lost events: stack_table_full 7"), "{text}");
    // Pinned: requested, rounded by the driver, resident.
    let pinned = text.split("Pinned memory").nth(1).expect("pinned section");
    assert!(pinned.contains("64.0 MiB  66.0 MiB  64.0 MiB"), "{pinned}");
}

#[test]
fn json_report_has_exact_numbers() {
    let dir = fixtures();
    let text = stdout_of(&["trace", "report", dir.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema"], "ramscope.trace/1");
    assert_eq!(v["command"][0], "python3");
    let peak = &v["tree_peak"];
    assert_eq!(peak["live_bytes"], 200 * MIB + 1_577_058_304);
    assert_eq!(peak["after_ns"], 12_000_000_000u64);
    assert_eq!(v["categories"]["weights"], 1024 * MIB);
    assert_eq!(v["categories"]["heap"], 480 * MIB);
    let processes = v["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 2);
    assert_eq!(processes[1]["role"], "engine-core");
    assert_eq!(processes[1]["parent"], "1000");
    assert_eq!(processes[1]["totals"]["heap"]["live"], 300 * MIB);
    let sites = v["sites"].as_array().unwrap();
    let batch = sites
        .iter()
        .find(|s| s["label"] == "vllm/v1/worker/gpu_input_batch.py:131 in __init__")
        .unwrap();
    assert_eq!(batch["live_bytes"], 256 * MIB);
    assert_eq!(batch["resident_bytes"], 128 * MIB);
    assert_eq!(batch["python"][1]["function"], "__init__");
    // The shm segment was never touched: resident 0 from its region.
    let shm = sites.iter().find(|s| s["kind"] == "shm").unwrap();
    assert_eq!(shm["resident_bytes"], 0);
    // --pid and --min-bytes filter sites.
    let only = stdout_of(&[
        "trace",
        "report",
        dir.to_str().unwrap(),
        "--json",
        "--pid",
        "1000",
        "--min-bytes",
        "20MiB",
    ]);
    let v: serde_json::Value = serde_json::from_str(&only).unwrap();
    let sites = v["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 2);
    assert!(sites.iter().all(|s| s["pid"] == 1000));
}

#[test]
fn flame_graph_is_written() {
    let dir = fixtures();
    let out = tempfile::tempdir().unwrap();
    let svg = out.path().join("flame.svg");
    stdout_of(&[
        "trace",
        "report",
        dir.to_str().unwrap(),
        "--flame",
        svg.to_str().unwrap(),
        "--at",
        "peak",
    ]);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.starts_with("<?xml"),
        "{}",
        &text[..100.min(text.len())]
    );
    assert!(text.contains("gpu_input_batch.py:131 in __init__"));
    // At its peak the EngineCore still held the profiling run's buffers (freed at the end).
    assert!(text.contains("_dummy_run"));
    let end = out.path().join("end.svg");
    stdout_of(&[
        "trace",
        "report",
        dir.to_str().unwrap(),
        "--flame",
        end.to_str().unwrap(),
    ]);
    assert!(!std::fs::read_to_string(&end)
        .unwrap()
        .contains("_dummy_run"));
}

#[test]
fn bad_directories_are_one_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    for (dir, says) in [
        (empty.path().join("nope"), "no such trace directory"),
        (empty.path().to_path_buf(), "holds no .rstrace files"),
    ] {
        let out = ramscope(&["trace", "report", dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says) && err.lines().count() == 1, "{err}");
    }
    std::fs::write(
        empty.path().join("1.2.0.rstrace"),
        "ramscope-trace 1\npid 99999999999\n",
    )
    .unwrap();
    let out = ramscope(&["trace", "report", empty.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("1.2.0.rstrace:2: `pid`") && err.contains("too large"),
        "{err}"
    );
}

#[test]
fn explain_joins_components_with_traced_sites() {
    let snapshot = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/h100-pinned-snapshot.json"
    );
    let dir = fixtures();
    let args = [
        "explain",
        "--no-calibration",
        "--vllm-version",
        "0.11",
        "--from-snapshot",
        snapshot,
        "--trace",
        dir.to_str().unwrap(),
        "--json",
        "--",
        "vllm",
        "serve",
        "Qwen/Qwen3-8B",
        "--max-model-len",
        "5120",
    ];
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&args)).unwrap();
    let join = &v["trace"];
    let components = join["components"].as_array().unwrap();
    // 0.11 cites gpu_input_batch.py:129 for num_computed_tokens; the traced frame is at 131,
    // within the lines a multi-line call reports.
    let computed = components
        .iter()
        .find(|c| c["id"] == "input_batch.num_computed_tokens")
        .unwrap();
    assert_eq!(computed["traced"]["live_bytes"], 256 * MIB);
    assert_eq!(computed["traced"]["processes"][0], "engine-core 1042");
    let tokenizer = components
        .iter()
        .find(|c| c["id"] == "tokenizer" && c["role"] == "api-server")
        .unwrap();
    assert!(tokenizer.get("traced").is_none());
    assert_eq!(
        tokenizer["why_not"],
        "no allocation at these lines in the trace"
    );
    // Heap no component cites: the tokenizer's traced site is the largest left.
    let unmatched = join["unmatched_heap_sites"].as_array().unwrap();
    assert_eq!(
        unmatched[0]["label"],
        "transformers/tokenization_utils_fast.py:115 in __init__"
    );
    // The matched site is not in the residual list.
    assert!(unmatched.iter().all(|s| !s["label"]
        .as_str()
        .unwrap()
        .contains("gpu_input_batch.py:131")));
    // The text shows the same join; without --trace the JSON has no `trace`.
    let text_args: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
    let text = stdout_of(&text_args);
    assert!(text.contains("Estimate beside the trace"), "{text}");
    assert!(
        text.contains("engine-core input_batch.num_computed_tokens"),
        "{text}"
    );
    let plain: serde_json::Value = serde_json::from_str(&stdout_of(&[
        "explain",
        "--no-calibration",
        "--vllm-version",
        "0.11",
        "--from-snapshot",
        snapshot,
        "--json",
        "--",
        "vllm",
        "serve",
        "Qwen/Qwen3-8B",
    ]))
    .unwrap();
    assert!(plain.get("trace").is_none());
}
