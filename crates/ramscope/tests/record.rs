//! `run`, `watch`, `report` and `diff` on real processes.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

const MIB: f64 = 1024.0 * 1024.0;

/// Allocates 200 MiB (touched) at ~1 s, frees it ~1 s later, exits ~1 s after that, and
/// writes the CLOCK_MONOTONIC times of "allocating", "allocated" and "freed" to argv[1].
const TIMELINE: &str = r#"
import sys, time
time.sleep(1.0)
allocating = time.monotonic()
b = b"\x01" * (200 << 20)
allocated = time.monotonic()
time.sleep(1.0)
freed = time.monotonic()
del b
time.sleep(1.0)
open(sys.argv[1], "w").write(f"{allocating} {allocated} {freed}")
"#;

/// The trimmed contents of every `<text>` element.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// Runs a command that must succeed, showing its stderr when it does not.
fn succeeded(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("run ramscope");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Output with every run of whitespace made one space: prose wraps to the terminal.
fn words(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("reading the recording")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is a JSON object"))
        .collect()
}

#[test]
fn run_records_a_known_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let marks = dir.path().join("marks");
    let out = succeeded(
        ramscope()
            .args(["run", "--interval", "100ms", "--json", "--out"])
            .arg(&rec)
            .args(["--", "python3", "-c", TIMELINE])
            .arg(&marks),
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("report JSON on stdout");
    assert_eq!(report["schema"], "ramscope.report/1");
    assert_eq!(report["ended"], "exited");
    assert_eq!(report["exit_code"], 0);

    // The stream: a header, samples that are snapshots with t_s, an end line.
    let all = lines(&rec);
    assert_eq!(all[0]["schema"], "ramscope.recording/1");
    assert_eq!(all[0]["interval_s"], 0.1);
    assert_eq!(all[0]["command"][0], "python3");
    let samples: Vec<&Value> = all[1..]
        .iter()
        .filter(|v| v["schema"] == "ramscope.snapshot/1")
        .collect();
    assert!(samples.len() >= 15, "{} samples", samples.len());
    assert!(samples
        .iter()
        .all(|s| s["t_s"].is_number() && s["overhead"]["cpu_s"].is_number()));
    assert!(samples
        .iter()
        .any(|s| s["processes"][0]["categories"]["heap"].is_object()));
    assert_eq!(all.last().unwrap()["schema"], "ramscope.recording-end/1");

    // The peak: 200 MiB above the process's level after it freed it, within 5 %.
    let procs = report["processes"].as_array().unwrap();
    let py = procs
        .iter()
        .max_by_key(|p| p["peak_rss_bytes"].as_u64().unwrap_or(0))
        .unwrap();
    let peak = py["peak_rss_bytes"].as_f64().unwrap();
    let baseline = py["end_rss_bytes"].as_f64().unwrap();
    let above = (peak - baseline) / MIB;
    assert!(
        (190.0..=210.0).contains(&above),
        "RSS peak {above:.1} MiB above baseline"
    );
    let heap = py["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "heap")
        .expect("a heap category peak");
    let heap_above =
        (heap["peak_pss_bytes"].as_f64().unwrap() - heap["end_pss_bytes"].as_f64().unwrap()) / MIB;
    assert!(
        (190.0..=210.0).contains(&heap_above),
        "heap peak {heap_above:.1} MiB above baseline"
    );

    // …when it happened: after the allocation finished and no later than the free.
    let text = std::fs::read_to_string(&marks).unwrap();
    let marks: Vec<f64> = text.split(' ').map(|m| m.parse().unwrap()).collect();
    let (allocating, freed) = (marks[0], marks[2]);
    let start = all[0]["monotonic_start_s"].as_f64().unwrap();
    for (what, t) in [
        ("RSS", py["peak_rss_t_s"].as_f64().unwrap()),
        ("heap", heap["peak_t_s"].as_f64().unwrap()),
    ] {
        let at = start + t;
        assert!(
            at >= allocating - 0.01 && at <= freed + 0.01,
            "{what} peak at {at:.3}, allocation from {allocating:.3} to {:.3}, freed at {freed:.3}",
            marks[1]
        );
    }
    // The overhead is measured and stated.
    assert!(report["overhead"]["cpu_s_per_sample"].as_f64().unwrap() > 0.0);
    assert!(report["overhead"]["smaps_reads"].as_u64().unwrap() >= 2);
}

#[test]
fn a_killed_recorder_leaves_a_readable_recording() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let mut child = Guard(
        ramscope()
            .args(["run", "--interval", "50ms", "--out"])
            .arg(&rec)
            .args([
                "--",
                "python3",
                "-c",
                "import time; x = b'1' * (32 << 20); time.sleep(4)",
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(
        "a sample of the 32 MiB process",
        Duration::from_secs(30),
        || {
            let text = std::fs::read_to_string(&rec).unwrap_or_default();
            let big = text.lines().skip(1).any(|l| {
                serde_json::from_str::<Value>(l).is_ok_and(|s| {
                    s["processes"].as_array().is_some_and(|ps| {
                        ps.iter()
                            .any(|p| p["rss_bytes"].as_u64().unwrap_or(0) > 32 << 20)
                    })
                })
            });
            (big && text.lines().count() >= 8).then_some(())
        },
    );
    child.0.kill().unwrap(); // SIGKILL: no chance to close the file
    child.0.wait().unwrap();

    let text = std::fs::read_to_string(&rec).unwrap();
    assert!(text.ends_with('\n'), "every written line is complete");
    let all = lines(&rec);
    assert!(all
        .iter()
        .all(|l| l["schema"] != "ramscope.recording-end/1"));
    let pids: Vec<u64> = all[1..]
        .iter()
        .flat_map(|s| s["processes"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["pid"].as_u64())
        .collect();

    let out = succeeded(ramscope().args(["report", "--json"]).arg(&rec));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["samples"].as_u64().unwrap() >= 7);
    assert!(report["ended"].is_null());
    let largest = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["peak_rss_bytes"].as_u64())
        .max()
        .unwrap();
    assert!(largest > 32 << 20, "{largest}");

    // The command outlived its recorder; end it.
    for pid in pids {
        // SAFETY: kill with a PID this test's command started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

#[test]
fn html_report_renders_in_a_headless_browser() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let code = "import time; time.sleep(0.5); b = b'1' * (64 << 20); time.sleep(1)";
    succeeded(
        ramscope()
            .args(["run", "--interval", "100ms", "--out"])
            .arg(&rec)
            .args(["--", "python3", "-c", code]),
    );
    let (html, svg, csv) = (
        dir.path().join("r.html"),
        dir.path().join("r.svg"),
        dir.path().join("r.csv"),
    );
    succeeded(
        ramscope()
            .arg("report")
            .arg(&rec)
            .arg("--html")
            .arg(&html)
            .arg("--svg")
            .arg(&svg)
            .arg("--csv")
            .arg(&csv),
    );

    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing to fetch, nothing to run.
    for banned in ["<script", "<link", " src=", "url("] {
        assert!(!page.contains(banned), "the report contains {banned}");
    }
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    let table = std::fs::read_to_string(&csv).unwrap();
    assert!(table.starts_with("t_s,pid,ppid,role,name,read,category,"));
    assert!(table.lines().any(|l| l.contains(",heap,")));

    let Some(chromium) = require_tool("chromium", "RAMSCOPE_SKIP_BROWSER") else {
        return;
    };
    let browser = |extra: &[&str]| {
        let profile = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(&chromium);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", html.display()));
        let result = run_bounded(cmd, Duration::from_secs(120));
        drop(profile);
        result
    };
    let shot = dir.path().join("report.png");
    let (ok, _, err) = browser(&[&format!("--screenshot={}", shot.display())]);
    assert!(ok, "chromium --screenshot failed: {err}");
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.len() > 10_000 && png.starts_with(b"\x89PNG"),
        "{} bytes",
        png.len()
    );

    let (ok, dom, err) = browser(&["--dump-dom"]);
    assert!(ok, "chromium --dump-dom failed: {err}");
    let start = dom
        .find("id=\"chart-tree\"")
        .expect("the tree chart in the rendered page");
    let figure = &dom[start..start + dom[start..].find("</figure>").unwrap()];
    let series: Vec<&str> = figure
        .split("data-series=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .split(',')
        .collect();
    assert!(
        series.contains(&"heap") && series.contains(&"code.python"),
        "{series:?}"
    );
    assert!(figure.contains("<svg"), "the chart is an inline SVG");
    // One filled band per category, and each category named in the legend.
    assert_eq!(
        figure.matches("<polygon").count(),
        series.len(),
        "{series:?}"
    );
    let texts = svg_texts(figure);
    for s in &series {
        assert!(
            texts.iter().any(|t| t == s),
            "legend entry {s} in {texts:?}"
        );
    }
    assert!(figure.contains("peak "), "a peak marker");
    assert!(dom.contains("id=\"peaks\"") && dom.contains("id=\"findings\""));
}

#[test]
fn watch_records_a_running_tree_for_a_duration() {
    let target = python("import time; b = b'1' * (16 << 20); time.sleep(30)");
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("w.jsonl");
    let out = succeeded(
        ramscope()
            .args([
                "watch",
                "--duration",
                "1500ms",
                "--interval",
                "100ms",
                "--no-live",
                "--out",
            ])
            .arg(&rec)
            .arg(target.pid().to_string()),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("processes=1"), "{text}");
    assert!(text.contains("Peaks"), "{text}");
    let all = lines(&rec);
    assert_eq!(all[0]["mode"], "watch");
    assert_eq!(all[0]["roots"][0], target.pid());
    assert!(all.len() >= 10);
    assert_eq!(all.last().unwrap()["reason"], "duration");
}

#[test]
fn diff_compares_roles_and_categories() {
    let small = python("import time; time.sleep(30)");
    let big = python("import time; b = b'1' * (100 << 20); time.sleep(30)");
    let dir = tempfile::tempdir().unwrap();
    let snap = |pid: u32, name: &str| {
        let path = dir.path().join(name);
        wait_for("the process to settle", Duration::from_secs(20), || {
            let out = ramscope()
                .args(["measure", "--json"])
                .arg(pid.to_string())
                .output()
                .ok()?;
            let v: Value = serde_json::from_slice(&out.stdout).ok()?;
            let heap = v["processes"][0]["categories"]["heap"]["pss_bytes"].as_u64()?;
            (name == "a.json" || heap > 100 << 20)
                .then(|| std::fs::write(&path, &out.stdout).unwrap())
        });
        path
    };
    std::thread::sleep(Duration::from_millis(500));
    let a = snap(small.pid(), "a.json");
    let b = snap(big.pid(), "b.json");
    let out = succeeded(ramscope().arg("diff").arg(&a).arg(&b).arg("--json"));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["schema"], "ramscope.diff/1");
    let heap = d["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "heap")
        .unwrap();
    let delta = heap["pss_delta_bytes"].as_f64().unwrap() / MIB;
    assert!((95.0..=105.0).contains(&delta), "heap grew by {delta} MiB");
    let out = ramscope().arg("diff").arg(&a).arg(&b).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("heap"));
}

#[test]
fn bad_input_is_one_line_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, "not a recording\n").unwrap();
    for args in [
        vec!["report".to_string(), junk.display().to_string()],
        vec!["report".to_string(), "/nonexistent/rec.jsonl".to_string()],
        vec![
            "diff".to_string(),
            junk.display().to_string(),
            junk.display().to_string(),
        ],
        vec![
            "run".into(),
            "--out".into(),
            dir.path().join("x").display().to_string(),
            "--".into(),
            "/nonexistent/cmd".into(),
        ],
        vec!["watch".into(), "4194304000".into()],
        vec![
            "run".into(),
            "--interval".into(),
            "soon".into(),
            "--".into(),
            "true".into(),
        ],
    ] {
        let out = ramscope().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn run_passes_the_exit_code_through() {
    let dir = tempfile::tempdir().unwrap();
    let out = ramscope()
        .args(["run", "--interval", "50ms", "--out"])
        .arg(dir.path().join("r.jsonl"))
        .args(["--", "sh", "-c", "sleep 0.3; exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    // The summary's prose wraps to the terminal (80 columns when there is none).
    let summary = words(&out.stderr);
    assert!(summary.contains("exited with code 7"), "{summary}");
}

#[test]
fn interrupting_the_recorder_passes_the_signal_to_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let marker = dir.path().join("marker");
    let code = "import sys, time\nopen(sys.argv[1], 'w').write('ready')\ntry:\n    time.sleep(30)\nexcept KeyboardInterrupt:\n    open(sys.argv[1], 'w').write('interrupted')\n";
    let mut child = Guard(
        ramscope()
            .args(["run", "--interval", "50ms", "--out"])
            .arg(&rec)
            .args(["--", "python3", "-c", code])
            .arg(&marker)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the command to be ready", Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&marker).unwrap_or_default();
        (text == "ready").then_some(())
    });
    // SAFETY: signalling the ramscope this test started.
    unsafe { libc::kill(child.pid() as i32, libc::SIGINT) };
    let status = wait_for("ramscope to finish", Duration::from_secs(20), || {
        child.0.try_wait().ok().flatten()
    });
    assert!(status.success(), "{status:?}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "interrupted");
    let all = lines(&rec);
    assert_eq!(all.last().unwrap()["reason"], "exited");
}

#[test]
fn children_join_and_orphans_and_exited_processes_stay_in_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    // A child that starts late, and an orphan (its parent subshell exits at once) that
    // outlives nothing but is still part of the command's tree.
    let script = "sleep 0.4; (exec sleep 0.6 &); sleep 0.5 & wait; sleep 0.8";
    let out = succeeded(
        ramscope()
            .args([
                "run",
                "--interval",
                "50ms",
                "--scan-every",
                "50ms",
                "--json",
                "--out",
            ])
            .arg(&rec)
            .args(["--", "sh", "-c", script]),
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let procs = report["processes"].as_array().unwrap();
    let sleeps: Vec<&Value> = procs.iter().filter(|p| p["name"] == "sleep").collect();
    assert!(sleeps.len() >= 3, "{procs:?}");
    let duration = report["duration_s"].as_f64().unwrap();
    let late = sleeps
        .iter()
        .filter(|p| p["first_t_s"].as_f64().unwrap() > 0.3)
        .count();
    assert!(late >= 2, "children started later joined: {sleeps:?}");
    assert!(
        sleeps
            .iter()
            .any(|p| p["last_t_s"].as_f64().unwrap() < duration - 0.3),
        "exited children stay in the record: {sleeps:?}"
    );
    // The orphan was re-parented to ramscope (the subreaper), so it stayed in the tree.
    let ramscope_pid = lines(&rec)[0]["roots"][0].as_u64().unwrap();
    assert!(
        sleeps
            .iter()
            .any(|p| p["ppid"].as_u64() == Some(ramscope_pid)),
        "{sleeps:?}"
    );
}

#[test]
fn run_samples_its_command_from_the_first_tick() {
    // The command is ramscope's own child, so every sample while it runs must hold it, even
    // one taken while it is in the middle of an execve (a `python3` shim exec'ing the real
    // interpreter: a read that straddles the exec finds the old address space gone). Such a
    // read used to drop the command until the next scan of the process table, a second on.
    const RUNS: usize = 40;
    const AT_ONCE: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    for batch in 0..RUNS / AT_ONCE {
        let runs: Vec<_> = (0..AT_ONCE)
            .map(|i| {
                let rec = dir.path().join(format!("r{batch}-{i}.jsonl"));
                let mut cmd = ramscope();
                cmd.args(["run", "--json", "--interval", "50ms", "--out"])
                    .arg(&rec)
                    .args(["--", "python3", "-c", "import time; time.sleep(1.2)"]);
                std::thread::spawn(move || (rec, run_bounded(cmd, Duration::from_secs(60))))
            })
            .collect();
        for run in runs {
            let (rec, (ok, stdout, stderr)) = run.join().unwrap();
            assert!(ok, "{stderr}");
            let report: Value = serde_json::from_str(&stdout).expect("the JSON summary");
            let samples: Vec<Value> = lines(&rec)
                .into_iter()
                .filter(|l| l["schema"] == "ramscope.snapshot/1")
                .collect();
            let empty: Vec<f64> = samples
                .iter()
                .filter(|s| s["processes"].as_array().is_none_or(|p| p.is_empty()))
                .map(|s| s["t_s"].as_f64().unwrap_or(-1.0))
                .collect();
            let start_rss = report["tree"]["start_rss_sum_bytes"].as_u64().unwrap_or(0);
            if !empty.is_empty() || start_rss == 0 || samples.len() < 10 {
                failures.push(format!(
                    "{}: {} samples, empty at t = {empty:?}, start RSS {start_rss}",
                    rec.display(),
                    samples.len()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[test]
fn one_sample_and_one_process_are_singular() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("one.jsonl");
    // One sample at the start; the command exits long before the next.
    let out = succeeded(
        ramscope()
            .args(["run", "--interval", "10s", "--out"])
            .arg(&rec)
            .args(["--", "sleep", "0.3"]),
    );
    let summary = words(&out.stderr);
    assert!(summary.contains(": 1 sample over"), "{summary}");
    let html = dir.path().join("one.html");
    let out = succeeded(ramscope().arg("report").arg(&rec).arg("--html").arg(&html));
    let text = words(&out.stdout);
    assert!(text.contains(": 1 sample over"), "{text}");
    assert!(text.contains("(up to 1 process)"), "{text}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("; 1 sample over"), "{page}");
}

#[test]
fn watch_on_a_terminal_redraws_in_place() {
    let target = python("import time; time.sleep(30)");
    let dir = tempfile::tempdir().unwrap();
    // `script` gives ramscope a pseudo-terminal, as an operator's shell would.
    let inner = format!(
        "{} watch {} --duration 1s --interval 200ms --out {}",
        env!("CARGO_BIN_EXE_ramscope"),
        target.pid(),
        dir.path().join("w.jsonl").display()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qc", &inner, "/dev/null"]);
    let (ok, out, err) = run_bounded(cmd, Duration::from_secs(30));
    assert!(ok, "{err}");
    let redraws = out.matches("\x1b[Hramscope watch  ").count();
    assert!(redraws >= 3, "{redraws} redraws in {out:?}");
    assert!(out.contains("python3") && out.contains("Peaks"), "{out}");
}
