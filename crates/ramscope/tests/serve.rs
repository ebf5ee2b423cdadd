//! `serve` scraped by a real Prometheus server, by a storm of scrapes, and by hostile clients.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
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

/// Sends `request` on a fresh connection (closing the sending side after it when
/// `then_close`), and returns what the server answered: (status, head, body). `None` when the
/// server closed without answering.
fn raw(port: u16, request: &[u8], then_close: bool) -> Option<(u16, String, Vec<u8>)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut reader = s.try_clone().unwrap();
    // Read while writing: an answer that comes before the request is all sent is not lost.
    let read = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = reader.read_to_end(&mut out);
        out
    });
    // The server may answer and close before it has everything: a failed write is expected.
    let _ = s.write_all(request);
    if then_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let out = read.join().unwrap();
    if out.is_empty() {
        return None;
    }
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&out)))
        + 4;
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 "), "{head}");
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length in {head}"));
    let body = out[end..].to_vec();
    if !request.starts_with(b"HEAD ") {
        assert_eq!(body.len(), length, "{head}");
    }
    Some((status, head, body))
}

/// xorshift64*: seeded, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<'a, T: ?Sized>(&mut self, from: &[&'a T]) -> &'a T {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// A request built from valid and broken pieces, then perhaps corrupted or cut short.
fn random_request(rng: &mut Rng) -> Vec<u8> {
    if rng.next() % 5 == 0 {
        return (0..rng.next() % 700).map(|_| rng.next() as u8).collect();
    }
    let method = rng.pick(&[
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "get", "G\0T", "",
    ]);
    let target = rng.pick(&[
        "/metrics",
        "/metrics?x=1",
        "/",
        "/nope",
        "*",
        "http://h:1/metrics",
        "metrics",
        "/%00",
        "/\x7f",
    ]);
    let version = rng.pick(&[
        "HTTP/1.1",
        "HTTP/1.0",
        "HTTP/2.0",
        "HTTP/1.1x",
        "",
        "http/1.1",
    ]);
    let mut r = format!("{method} {target} {version}\r\n").into_bytes();
    for _ in 0..rng.next() % 6 {
        let header = rng.pick(&[
            "Host: 127.0.0.1",
            "Content-Length: 99999999999999",
            "Content-Length: 18446744073709551616",
            "Content-Length: -5",
            "Content-Length: 3",
            "Content-Length: 0",
            "Transfer-Encoding: chunked",
            " folded",
            "NoColon",
            "X: \x01",
            "Expect: 100-continue",
        ]);
        r.extend_from_slice(header.as_bytes());
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(rng.pick::<[u8]>(&[b"\r\n", b"\n", b"", b"\r\nabc"]));
    for _ in 0..rng.next() % 3 {
        if r.is_empty() {
            break;
        }
        let at = (rng.next() % r.len() as u64) as usize;
        if rng.next() % 2 == 0 {
            r[at] = rng.next() as u8;
        } else {
            r.truncate(at);
        }
    }
    r
}

#[test]
fn hostile_requests_are_refused_and_the_server_keeps_serving() {
    let target = python("import time; time.sleep(300)");
    let (mut server, port) = serve(&["--request-timeout", "1s", &target.pid().to_string()]);
    let huge = "Content-Length: 99999999999999\r\n\r\nabc";
    for request in [
        format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{huge}"),
        format!("POST /metrics HTTP/1.1\r\nHost: x\r\n{huge}"),
        format!("PUT /elsewhere HTTP/1.1\r\nHost: x\r\n{huge}"),
        format!("DELETE / HTTP/1.0\r\n{huge}"),
    ] {
        let (status, head, _) = raw(port, request.as_bytes(), false).expect("an answer");
        assert!(status == 413 || status == 400, "{request:?}: {head}");
    }

    // A head over the cap (8 KiB), by its headers and by its request line.
    let padded = format!(
        "GET /metrics HTTP/1.1\r\n{}\r\n",
        "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(200)
    );
    assert_eq!(raw(port, padded.as_bytes(), false).unwrap().0, 431);
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000));
    assert_eq!(raw(port, long.as_bytes(), false).unwrap().0, 414);

    let mut rng = Rng(0x5eed_0000_0000_0008);
    let mut answered = 0;
    for i in 0..240 {
        let request = random_request(&mut rng);
        if let Some((status, head, _)) = raw(port, &request, true) {
            answered += 1;
            let ok = [200, 400, 404, 405, 408, 413, 414, 431, 505];
            assert!(ok.contains(&status), "{request:?}: {head}");
        }
        if i % 60 == 0 {
            assert_eq!(http_get(port, "/metrics").map(|r| r.0), Some(200));
        }
    }
    assert!(answered > 200, "only {answered} of 240 answered");

    // Prometheus and load balancers: a query string, and HEAD.
    let (status, _, body) =
        raw(port, b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", false).unwrap();
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("ramscope_memory_bytes{"));
    let (status, head, body) =
        raw(port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", false).unwrap();
    assert_eq!(status, 200, "{head}");
    assert!(body.is_empty(), "HEAD answered with a body");
    assert!(!head.contains("Content-Length: 0\r\n"), "{head}");

    // A client that connects and sends nothing, and one that trickles its head: each holds
    // the others up only until its deadline (1 s).
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let silent = TcpStream::connect(addr).unwrap();
    let mut trickle = TcpStream::connect(addr).unwrap();
    let trickling = std::thread::spawn(move || {
        for b in b"GET /metrics HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if trickle.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    assert_eq!(http_get(port, "/metrics").map(|r| r.0), Some(200));
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(6),
        "a scrape waited {waited:?}"
    );
    drop(silent);
    trickling.join().unwrap();

    assert_eq!(http_get(port, "/metrics").map(|r| r.0), Some(200));
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "ramscope serve exited"
    );
}

#[test]
fn listen_accepts_a_host_name() {
    let target = python("import time; time.sleep(60)");
    let port = free_port();
    let mut child = ramscope()
        .args(["serve", "--listen", &format!("localhost:{port}")])
        .arg(target.pid().to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let _server = Guard(child);
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    // localhost is 127.0.0.1 first: the address Prometheus targets usually name.
    assert_eq!(
        line.trim(),
        format!("ramscope: serving metrics at http://127.0.0.1:{port}/metrics")
    );
    let (status, body) = http_get(port, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("ramscope_targets 1"), "{body}");

    let out = ramscope()
        .args(["serve", "--listen", "localhost", &target.pid().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HOST:PORT"), "{err}");
}
