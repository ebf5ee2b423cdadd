//! The shipped Grafana dashboard and DaemonSet stay in step with the exporter: every metric a
//! panel queries is one `serve` exposes, every flag the DaemonSet passes is one `serve` takes.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::*;

fn deploy(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("ramscope_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn dashboard_queries_only_exported_metrics() {
    let dash: Value = serde_json::from_str(&deploy("grafana-dashboard.json")).unwrap();
    let mut queried = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            queried.extend(metric_names(t["expr"].as_str().unwrap()));
        }
    }
    assert!(queried.contains("ramscope_memory_bytes"));

    let target = python("import time; time.sleep(60)");
    let port = free_port();
    let _server = Guard(
        ramscope()
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                &target.pid().to_string(),
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let text = wait_for("/metrics", Duration::from_secs(20), || {
        http_get(port, "/metrics")
            .filter(|(s, _)| *s == 200)
            .map(|r| r.1)
    });
    let exported: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(String::from)
        .collect();
    for m in &queried {
        // cgroup series exist only where the tree's cgroup can be read.
        if m.starts_with("ramscope_cgroup_") {
            continue;
        }
        assert!(
            exported.contains(m),
            "the dashboard queries {m}, which serve does not export"
        );
    }
}

#[test]
fn daemonset_flags_are_serve_flags() {
    let yaml = deploy("daemonset.yaml");
    let help = ramscope().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let flags: Vec<&str> = yaml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- --"))
        .map(|f| f.split('=').next().unwrap())
        .collect();
    assert!(flags.contains(&"allow-remote") && flags.contains(&"auto"));
    for f in flags {
        assert!(help.contains(&format!("--{f}")), "serve has no --{f}");
    }
}
