//! `serve` scraped by a real Prometheus server, and by a storm of scrapes.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

fn serve(args: &[&str]) -> (Guard, u16) {
    let port = free_port();
    let child = ramscope()
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = Guard(child);
    wait_for("ramscope serve to answer", Duration::from_secs(20), || {
        http_get(port, "/metrics").filter(|(s, _)| *s == 200)
    });
    (guard, port)
}

#[test]
fn prometheus_scrapes_category_series_of_a_live_process() {
    let target = python("import time; b = b'1' * (48 << 20); time.sleep(120)");
    let pid = target.pid().to_string();
    let (_server, port) = serve(&["--min-interval", "1s", &pid]);
    let (_, text) = http_get(port, "/metrics").unwrap();
    let heap = text
        .lines()
        .find(|l| {
            l.starts_with("ramscope_memory_bytes{")
                && l.contains("role=\"other\",category=\"heap\",kind=\"pss\"}")
        })
        .unwrap_or_else(|| panic!("no heap series in {text}"));
    // Series carry the tree they belong to: the cgroup holding it, or its root PID.
    assert!(heap.contains("tree=\""), "{heap}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("ramscope_process_info{")
                && l.contains(&format!(",pid=\"{pid}\","))),
        "{text}"
    );

    let Some(prometheus) = require_tool("prometheus", "RAMSCOPE_SKIP_PROMETHEUS") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ramscope\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let _prom = Guard(
        std::process::Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // ramscope_memory_bytes{kind="pss"}
    let query = "/api/v1/query?query=ramscope_memory_bytes%7Bkind%3D%22pss%22%7D";
    let result = wait_for(
        "Prometheus to have scraped ramscope",
        Duration::from_secs(90),
        || {
            let (status, body) = http_get(prom_port, query)?;
            let v: Value = serde_json::from_str(&body).ok()?;
            let series = v["data"]["result"].as_array()?.clone();
            (status == 200 && v["status"] == "success" && series.len() >= 3).then_some(series)
        },
    );
    let categories: Vec<&str> = result
        .iter()
        .filter_map(|s| s["metric"]["category"].as_str())
        .collect();
    assert!(
        categories.contains(&"heap") && categories.contains(&"code.python"),
        "{categories:?}"
    );
    let heap = result
        .iter()
        .find(|s| s["metric"]["category"] == "heap")
        .and_then(|s| s["value"][1].as_str())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap();
    assert!(heap >= (48 << 20) as f64, "heap PSS {heap}");
    assert!(result.iter().all(|s| s["metric"]["job"] == "ramscope"));
}

#[test]
fn a_scrape_storm_reads_proc_once_per_interval_and_stays_small() {
    let target = python("import time; time.sleep(120)");
    let min_interval = 2.0;
    let (server, port) = serve(&["--min-interval", "2s", &target.pid().to_string()]);
    let start = Instant::now();
    let mut rss_after_100 = 0;
    let mut last = String::new();
    for i in 0..1000 {
        let (status, body) = http_get(port, "/metrics").expect("every scrape answered");
        assert_eq!(status, 200);
        last = body;
        if i == 99 {
            rss_after_100 = rss_of(server.pid());
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "1000 scrapes took too long"
        );
    }
    let elapsed = start.elapsed().as_secs_f64();
    let refreshes = metric_value(&last, "ramscope_snapshot_refreshes_total").unwrap();
    let scrapes = metric_value(&last, "ramscope_scrapes_total").unwrap();
    assert!(scrapes >= 1000.0, "{scrapes}");
    // One refresh when the server came up (the readiness probe), then one per interval.
    let allowed = (elapsed / min_interval).floor() + 2.0;
    assert!(
        refreshes <= allowed,
        "{refreshes} refreshes in {elapsed:.1} s (allowed {allowed})"
    );
    let rss_after_1000 = rss_of(server.pid());
    let growth = rss_after_1000 as f64 - rss_after_100 as f64;
    assert!(
        growth < (2 << 20) as f64,
        "exporter RSS grew from {rss_after_100} to {rss_after_1000} bytes"
    );
}

#[test]
fn non_loopback_addresses_are_refused_without_allow_remote() {
    let out = ramscope()
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            &std::process::id().to_string(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--allow-remote") && err.lines().count() == 1,
        "{err}"
    );
    let out = ramscope()
        .args(["serve", "--listen", "127.0.0.1:0", "4194304000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn unknown_paths_are_404() {
    let target = python("import time; time.sleep(60)");
    let (_server, port) = serve(&[&target.pid().to_string()]);
    assert_eq!(http_get(port, "/nope").unwrap().0, 404);
    assert_eq!(http_get(port, "/").unwrap().0, 200);
}
