//! `ramscope measure` on real processes with known memory.

mod common;

use std::process::Command;

use common::{json_of, ramscope, Loaded, MIB};

fn category(process: &serde_json::Value, name: &str, field: &str) -> u64 {
    process["categories"][name][field].as_u64().unwrap_or(0)
}

fn process_of(snapshot: &serde_json::Value, pid: u32) -> serde_json::Value {
    snapshot["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("PID {pid} not in {snapshot}"))
        .clone()
}

fn measure(pid: u32, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["measure".to_string(), "--json".into(), pid.to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    json_of(&args)
}

#[test]
fn touched_private_memory_is_heap() {
    let p = Loaded::python(
        r#"
import mmap, sys
ready("baseline")
m = mmap.mmap(-1, 256 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(0, len(m), 4096):
    m[i] = 1
ready("loaded")
"#,
    );
    let before = process_of(&measure(p.pid(), &[]), p.pid());
    p.advance("loaded");
    let after = process_of(&measure(p.pid(), &[]), p.pid());
    let grew = category(&after, "heap", "rss_bytes") - category(&before, "heap", "rss_bytes");
    assert!(
        grew.abs_diff(256 * MIB) < 3 * MIB,
        "heap grew by {} MiB",
        grew / MIB
    );
    assert_eq!(category(&after, "other", "pss_bytes"), 0);
}

#[test]
fn posix_shared_memory_is_shm() {
    let p = Loaded::python(
        r#"
from multiprocessing import shared_memory
s = shared_memory.SharedMemory(create=True, size=64 << 20)
for i in range(0, s.size, 4096):
    s.buf[i] = 1
ready("loaded")
s.close(); s.unlink()
"#,
    );
    p.advance("loaded");
    let proc = process_of(&measure(p.pid(), &[]), p.pid());
    let shm = category(&proc, "shm", "rss_bytes");
    assert!(shm.abs_diff(64 * MIB) < MIB, "shm {} MiB", shm / MIB);
    assert_eq!(category(&proc, "pinned", "rss_bytes"), 0);
}

#[test]
fn mapped_safetensors_file_is_weights() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.safetensors");
    std::fs::write(&file, vec![7u8; 96 << 20]).unwrap();
    let p = Loaded::python(&format!(
        r#"
import mmap
f = open({file:?}, "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
total = 0
for i in range(0, len(m), 4096):
    total += m[i]
ready("loaded")
"#,
        file = file.display().to_string()
    ));
    p.advance("loaded");
    let snapshot = measure(p.pid(), &[]);
    let proc = process_of(&snapshot, p.pid());
    let weights = category(&proc, "weights", "rss_bytes");
    assert!(
        weights.abs_diff(96 * MIB) < MIB,
        "weights {} MiB",
        weights / MIB
    );
    assert_eq!(category(&proc, "weights", "size_bytes"), 96 * MIB);
}

#[test]
fn shared_pages_are_split_between_parent_and_child() {
    let p = Loaded::python(
        r#"
import os, sys, time
from multiprocessing import shared_memory
s = shared_memory.SharedMemory(create=True, size=64 << 20)
for i in range(0, s.size, 4096):
    s.buf[i] = 1
r, w = os.pipe()
child = os.fork()
if child == 0:
    total = 0
    for i in range(0, s.size, 4096):
        total += s.buf[i]
    os.write(w, b"x")
    time.sleep(600)
    os._exit(0)
os.read(r, 1)
ready("loaded")
os.kill(child, 9)
s.close(); s.unlink()
"#,
    );
    p.advance("loaded");
    let snapshot = measure(p.pid(), &[]);
    let all = snapshot["processes"].as_array().unwrap();
    // Python's multiprocessing also starts its resource tracker, which maps nothing shared.
    let procs: Vec<_> = all
        .iter()
        .filter(|p| category(p, "shm", "rss_bytes") > 0)
        .collect();
    assert_eq!(procs.len(), 2, "parent and child: {snapshot}");
    let tracker = all.iter().find(|p| p["role"] == "helper");
    assert!(tracker.is_some(), "the resource tracker is a helper");
    for proc in &procs {
        let pss = category(proc, "shm", "pss_bytes");
        assert!(pss.abs_diff(32 * MIB) < MIB, "shm PSS {} MiB", pss / MIB);
        assert!(category(proc, "shm", "rss_bytes").abs_diff(64 * MIB) < MIB);
    }
    let total = &snapshot["total"]["categories"]["shm"];
    let pss = total["pss_bytes"].as_u64().unwrap();
    let rss_sum = total["rss_sum_bytes"].as_u64().unwrap();
    assert!(
        pss.abs_diff(64 * MIB) < 2 * MIB,
        "tree shm PSS {}",
        pss / MIB
    );
    assert!(
        rss_sum.abs_diff(128 * MIB) < 2 * MIB,
        "RSS sum {}",
        rss_sum / MIB
    );
    // The tree's PSS total is the sum of its processes' PSS, and below the RSS sum.
    let sum: u64 = all.iter().map(|p| p["pss_bytes"].as_u64().unwrap()).sum();
    assert_eq!(snapshot["total"]["pss_bytes"].as_u64().unwrap(), sum);
    assert!(snapshot["total"]["rss_sum_bytes"].as_u64().unwrap() > sum);
}

#[test]
fn categories_add_up_to_each_process_total() {
    let p = Loaded::python("import json, decimal\nready('loaded')\n");
    p.advance("loaded");
    let snapshot = measure(p.pid(), &[]);
    let proc = process_of(&snapshot, p.pid());
    for field in ["rss_bytes", "pss_bytes", "uss_bytes", "swap_bytes"] {
        let sum: u64 = proc["categories"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c[field].as_u64().unwrap())
            .sum();
        assert_eq!(sum, proc[field].as_u64().unwrap(), "{field}");
    }
    assert_eq!(proc["reconciliation"]["totals_from"], "smaps_rollup");
    assert_eq!(category(&proc, "other", "pss_bytes"), 0);
}

#[test]
fn a_tree_churning_children_is_measured_without_error() {
    // A shell that starts and reaps short-lived children as fast as it can.
    let mut churn = Command::new("sh")
        .args(["-c", "while :; do /bin/true; /bin/true & wait; done"])
        .spawn()
        .unwrap();
    let pid = churn.id();
    let mut seen_children = 0;
    for _ in 0..30 {
        let out = ramscope(&["measure", "--json", &pid.to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        seen_children += v["processes"].as_array().unwrap().len() - 1;
    }
    churn.kill().ok();
    churn.wait().ok();
    // Hundreds of children came and went; some were caught alive.
    assert!(seen_children > 0);
}

#[test]
fn missing_pid_is_one_line_and_exit_1() {
    let out = ramscope(&["measure", "4194303"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim(), "ramscope: no process with PID 4194303");
}

#[test]
fn unknown_flag_is_one_line_and_nonzero() {
    let out = ramscope(&["measure", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--bogus"), "{err}");
}

#[test]
fn permission_denied_says_what_to_do() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to start a process another user cannot read");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        panic!("setpriv (util-linux) is needed for this test");
    }
    let mut target = Command::new("sleep").arg("60").spawn().unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_ramscope"))
        .args(["measure", &target.id().to_string()])
        .output()
        .unwrap();
    target.kill().ok();
    target.wait().ok();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(err.contains("CAP_SYS_PTRACE"), "{err}");
}

#[test]
fn a_kernel_without_smaps_rollup_gets_totals_from_smaps() {
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cuda-torch-h100"
    );
    let root = tempfile::tempdir().unwrap();
    let pid_dir = root.path().join("413");
    std::fs::create_dir(&pid_dir).unwrap();
    for (from, to) in [
        ("smaps", "smaps"),
        ("status", "status"),
        ("cmdline", "cmdline"),
    ] {
        std::fs::copy(
            format!("{fixtures}/04-pinned-300MiB.{from}"),
            pid_dir.join(to),
        )
        .unwrap();
    }
    std::fs::write(pid_dir.join("comm"), "python3\n").unwrap();
    std::fs::write(pid_dir.join("stat"), "413 (python3) S 412 0 0").unwrap();
    let v = json_of(&[
        "measure",
        "--json",
        "--no-tree",
        "--proc-root",
        root.path().to_str().unwrap(),
        "413",
    ]);
    let p = &v["processes"][0];
    assert_eq!(p["reconciliation"]["totals_from"], "smaps");
    assert_eq!(p["rss_bytes"].as_u64().unwrap(), 1165988 * 1024);
    assert!(p["categories"]["pinned"]["rss_bytes"].as_u64().unwrap() >= 512 * MIB);
}
