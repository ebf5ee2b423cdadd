//! `report` on programs whose memory is known: what the charts, the CSV and the leak
//! findings say must be what happened, and the HTML must read at phone and desktop widths.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

const MIB: f64 = 1024.0 * 1024.0;

/// Six 40 MiB heap steps (1–6 s), all freed at 7.5 s; a child holding 100 MiB from 9.5 to
/// 12.2 s; an 80 MiB file mapped and read 13.3–16.4 s; 60 MiB of shared anonymous memory
/// 17.4–19.9 s; exit at 20.9 s. argv[1]: the file to map; argv[2]: where to write the
/// CLOCK_MONOTONIC time of its own t = 0.
const KNOWN: &str = r#"
import mmap, os, sys, time
t0 = time.monotonic()
open(sys.argv[2], "w").write(str(t0))
def at(t):
    d = t0 + t - time.monotonic()
    if d > 0:
        time.sleep(d)
MIB = 1 << 20
heap = []
for i in range(6):
    at(1.0 + i)
    heap.append(bytearray(b"\x01") * (40 * MIB))
at(7.5)
del heap[:]
at(9.5)
pid = os.fork()
if pid == 0:
    b = bytearray(b"\x02") * (100 * MIB)
    at(12.2)
    os._exit(0)
with open(sys.argv[1], "wb") as f:
    for _ in range(80):
        f.write(b"\x03" * MIB)
os.waitpid(pid, 0)
at(13.3)
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    s = 0
    for off in range(0, 80 * MIB, 4096):
        s += m[off]
    at(16.4)
    m.close()
at(17.4)
a = mmap.mmap(-1, 60 * MIB, flags=mmap.MAP_SHARED)
for off in range(0, 60 * MIB, 4096):
    a[off] = 1
at(19.9)
a.close()
at(20.9)
"#;

fn succeeded(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("run ramscope");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One CSV row of `report --csv`.
#[derive(Debug, Clone)]
struct Row {
    t: f64,
    pid: u64,
    read: String,
    category: String,
    rss: u64,
    pss: u64,
    split_t: Option<f64>,
}

fn csv_rows(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).expect("the CSV");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("t_s,pid,ppid,role,name,read,category,rss_bytes,pss_bytes,uss_bytes,swap_bytes,split_t_s")
    );
    lines
        .map(|l| {
            // No field here holds a comma: the names are all python3.
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 12, "{l}");
            Row {
                t: f[0].parse().unwrap(),
                pid: f[1].parse().unwrap(),
                read: f[5].to_string(),
                category: f[6].to_string(),
                rss: f[7].parse().unwrap(),
                pss: f[8].parse().unwrap(),
                split_t: f[11].parse().ok(),
            }
        })
        .collect()
}

/// The known program recorded once, and everything `report` makes of it.
struct Known {
    dir: tempfile::TempDir,
    report: Value,
    /// The program's own t = 0 on the recording's clock.
    offset_s: f64,
    html: PathBuf,
    svg: PathBuf,
    rows: Vec<Row>,
}

fn record_known() -> Known {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let t0 = dir.path().join("t0");
    succeeded(
        ramscope()
            .args(["run", "--interval", "100ms", "--out"])
            .arg(&rec)
            .args(["--", "python3", "-c", KNOWN])
            .arg(dir.path().join("weights.bin"))
            .arg(&t0),
    );
    let (html, svg, csv) = (
        dir.path().join("r.html"),
        dir.path().join("r.svg"),
        dir.path().join("r.csv"),
    );
    let out = succeeded(
        ramscope()
            .arg("report")
            .arg(&rec)
            .arg("--json")
            .arg("--html")
            .arg(&html)
            .arg("--svg")
            .arg(&svg)
            .arg("--csv")
            .arg(&csv),
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let header: Value = serde_json::from_str(
        std::fs::read_to_string(&rec)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let program_t0: f64 = std::fs::read_to_string(&t0).unwrap().parse().unwrap();
    let offset_s = program_t0 - header["monotonic_start_s"].as_f64().unwrap();
    Known {
        rows: csv_rows(&csv),
        dir,
        report,
        offset_s,
        html,
        svg,
    }
}

fn processes(report: &Value) -> (Value, Value) {
    let procs = report["processes"].as_array().unwrap();
    let parent = procs
        .iter()
        .find(|p| p["first_t_s"].as_f64() < Some(0.5))
        .expect("the command");
    let child = procs
        .iter()
        .find(|p| p["ppid"] == parent["pid"])
        .unwrap_or_else(|| panic!("the forked child in {procs:?}"));
    (parent.clone(), child.clone())
}

#[test]
fn a_known_timeline_is_charted_as_it_happened() {
    let k = record_known();
    let (parent, child) = processes(&k.report);
    let pid = |p: &Value| p["pid"].as_u64().unwrap();

    // The CSV's category rows hold each read until the next, at every sample, and never
    // stack above the process's RSS.
    let mut by_sample: BTreeMap<(u64, u64), (u64, u64)> = BTreeMap::new();
    let mut last_read: BTreeMap<(u64, String), u64> = BTreeMap::new();
    let (mut held, mut held_unchanged) = (0, 0);
    for r in &k.rows {
        let key = (r.pid, (r.t * 1000.0).round() as u64);
        let e = by_sample.entry(key).or_default();
        if r.category == "total" {
            e.0 = r.rss;
            continue;
        }
        e.1 += r.pss;
        let split_t = r
            .split_t
            .expect("category rows say when their split was read");
        assert!(split_t <= r.t + 1e-9, "{r:?}");
        let read_key = (r.pid, r.category.clone());
        if (split_t - r.t).abs() < 1e-6 {
            assert_eq!(r.read, "smaps", "{r:?}");
            last_read.insert(read_key, r.pss);
        } else {
            let was = last_read.get(&read_key).copied().unwrap_or(0);
            assert!(r.pss <= was, "held above its read: {r:?}, read {was}");
            held += 1;
            held_unchanged += usize::from(r.pss == was);
        }
    }
    for ((p, t), (rss, pss)) in &by_sample {
        assert!(
            pss <= rss,
            "PID {p} at {t} ms: PSS stack {pss} above RSS {rss}"
        );
    }
    assert!(held > 100, "{held} held rows");
    assert!(
        held_unchanged * 10 >= held * 6,
        "most held rows keep the read's value: {held_unchanged} of {held}"
    );
    // Every sample of the parent after its first split has categories (none is skipped),
    // and its last category row is at its last sample, not its last read.
    let parent_samples: Vec<f64> = k
        .rows
        .iter()
        .filter(|r| r.pid == pid(&parent) && r.category == "total")
        .map(|r| r.t)
        .collect();
    let parent_split_samples: Vec<f64> = k
        .rows
        .iter()
        .filter(|r| r.pid == pid(&parent) && r.category == "heap")
        .map(|r| r.t)
        .collect();
    assert_eq!(parent_split_samples.last(), parent_samples.last());
    // "weights" is nowhere before the file was mapped.
    let mapped = k.offset_s + 13.3;
    let early: Vec<&Row> = k
        .rows
        .iter()
        .filter(|r| r.category == "weights" && r.pss > 0 && r.t < mapped - 0.05)
        .collect();
    assert!(early.is_empty(), "weights before {mapped:.2} s: {early:?}");
    assert!(k
        .rows
        .iter()
        .any(|r| r.category == "weights" && r.pss as f64 > 75.0 * MIB));
    // The child, read once or more, is a series of its own in every sample it lived.
    let child_rows = k
        .rows
        .iter()
        .filter(|r| r.pid == pid(&child) && r.category == "heap")
        .count();
    assert!(child_rows >= 3, "{child_rows} heap rows for the child");

    // The peak table's start is the value at the start: zero for what came later.
    let cat = |p: &Value, c: &str| -> Value {
        p["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["category"] == c)
            .cloned()
            .unwrap_or_else(|| panic!("{c} in {p}"))
    };
    let weights = cat(&parent, "weights");
    assert_eq!(weights["start_pss_bytes"], 0, "{weights}");
    let w = weights["peak_pss_bytes"].as_f64().unwrap() / MIB;
    assert!((78.0..=82.0).contains(&w), "weights peak {w:.1} MiB");
    assert_eq!(child["start_rss_bytes"], 0, "{child}");
    let heap = cat(&parent, "heap")["peak_pss_bytes"].as_f64().unwrap() / MIB;
    assert!((235.0..=255.0).contains(&heap), "heap peak {heap:.1} MiB");
    assert!(k.report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["trend"] != "growing"));

    // The page: what peaked, when, where, first; the tree's PSS row; a chart per process,
    // the child's with a band; the cost last.
    let page = std::fs::read_to_string(&k.html).unwrap();
    let headline = page
        .split("id=\"headline\">")
        .nth(1)
        .and_then(|s| s.split("</p>").next())
        .expect("a headline");
    assert!(
        headline.starts_with("Peak ")
            && headline.contains(" RSS / ")
            && headline.contains("— heap "),
        "{headline}"
    );
    assert!(
        headline.contains(&format!("in PID {} python3", pid(&parent))),
        "{headline}"
    );
    assert!(page.contains("PSS (up to 2 processes)"));
    assert!(page.find("id=\"overhead\"") > page.find("id=\"findings\""));
    let meta = page.split("id=\"meta\">").nth(1).unwrap();
    let meta = &meta[..meta.find("</p>").unwrap()];
    // Started at a time to the second: `2026-11-30 00:51:03 UTC;`.
    let started = meta.split(", started ").nth(1).unwrap_or("");
    let stamp: String = started.chars().take(24).collect();
    assert!(
        stamp.len() == 24 && stamp.ends_with(" UTC;") && stamp.as_bytes()[10] == b' ',
        "{meta}"
    );
    assert!(meta.contains("the command exited with code 0"), "{meta}");
    let figure = |id: &str| -> String {
        let start = page
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id}"));
        page[start..start + page[start..].find("</figure>").unwrap()].to_string()
    };
    let child_chart = figure(&format!("chart-pid-{}", pid(&child)));
    assert!(
        child_chart.matches("<polygon").count() >= 1,
        "{child_chart}"
    );
    assert!(child_chart.contains("data-series=\"heap"), "{child_chart}");
    assert!(figure("chart-processes").contains(&format!("PID {} python3", pid(&child))));

    // The standalone SVG says what it shows.
    let svg = std::fs::read_to_string(&k.svg).unwrap();
    assert!(svg.contains("viewBox=") && svg.contains("width=\"100%\""));
    assert!(
        svg.contains("python3 -c") && svg.contains("— started 20"),
        "{svg}"
    );

    browser_checks(&k);
}

/// Appended to a copy of the page: measures what a reader would see and writes it into the
/// DOM, which `--dump-dom` prints.
const PROBE: &str = r#"<script>
(function () {
  const out = {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
               overlaps: [], wrapped: [], tickPx: [], labels: 0, charts: 0};
  const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  for (const svg of document.querySelectorAll('figure svg')) {
    out.charts++;
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    out.tickPx.push(13 * scale);
    if (svg.getBoundingClientRect().right > window.innerWidth + 0.5) out.overlaps.push('chart past the edge');
    for (const label of svg.querySelectorAll('text.peak-label')) {
      out.labels++;
      const b = label.getBoundingClientRect();
      const plot = svg.querySelector('rect.plot').getBoundingClientRect();
      if (hit(b, plot)) out.overlaps.push(label.textContent + ' / the plot');
      for (const e of svg.querySelectorAll('text, polygon, polyline, circle')) {
        if (e !== label && hit(b, e.getBoundingClientRect()))
          out.overlaps.push(label.textContent + ' / ' + (e.textContent || e.tagName));
      }
      if (!/PSS/.test(label.textContent)) out.overlaps.push('label without PSS: ' + label.textContent);
    }
  }
  for (const td of document.querySelectorAll('td.n')) {
    const r = document.createRange();
    r.selectNodeContents(td);
    const lines = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
    if (lines.size > 1) out.wrapped.push(td.textContent);
  }
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"#;

fn browser_checks(k: &Known) {
    let Some(chromium) = require_tool("chromium", "RAMSCOPE_SKIP_BROWSER") else {
        return;
    };
    let page = std::fs::read_to_string(&k.html).unwrap();
    let probed = k.dir.path().join("probed.html");
    std::fs::write(&probed, page.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    for width in [800, 1400] {
        let profile = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(&chromium);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--window-size={width},1200"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", probed.display()));
        let (ok, dom, err) = run_bounded(cmd, Duration::from_secs(120));
        assert!(ok, "chromium --dump-dom at {width} px failed: {err}");
        let json = dom
            .split("<pre id=\"probe\">")
            .nth(1)
            .and_then(|s| s.split("</pre>").next())
            .unwrap_or_else(|| panic!("no probe result at {width} px"));
        let r: Value = serde_json::from_str(&json.replace("&quot;", "\"").replace("&amp;", "&"))
            .unwrap_or_else(|e| panic!("{e}: {json}"));
        eprintln!("{width} px: {r}");
        let (scroll, inner) = (
            r["scrollWidth"].as_f64().unwrap(),
            r["innerWidth"].as_f64().unwrap(),
        );
        assert!(inner >= width as f64 * 0.9, "{width} px: {r}");
        assert!(
            scroll <= inner,
            "{width} px: the page scrolls sideways: {r}"
        );
        assert_eq!(r["overlaps"], serde_json::json!([]), "{width} px: {r}");
        assert_eq!(r["wrapped"], serde_json::json!([]), "{width} px: {r}");
        assert!(
            r["charts"].as_u64() >= Some(4) && r["labels"].as_u64() >= Some(4),
            "{r}"
        );
        for px in r["tickPx"].as_array().unwrap() {
            let px = px.as_f64().unwrap();
            assert!(
                (11.0..=19.0).contains(&px),
                "{width} px: chart text at {px:.1} px: {r}"
            );
        }
    }
}

/// 40 + 40·cos(2πt/8) MiB of touched private anonymous memory (highest at 0 s, every 8 s)
/// for argv[1] seconds.
const OSCILLATING: &str = r#"
import math, mmap, sys, time
MIB = 1 << 20
t0 = time.monotonic()
blocks = []
while True:
    t = time.monotonic() - t0
    if t >= float(sys.argv[1]):
        break
    want = int(round(40 + 40 * math.cos(2 * math.pi * t / 8)))
    while len(blocks) < want:
        m = mmap.mmap(-1, MIB, flags=mmap.MAP_PRIVATE)
        for off in range(0, MIB, 4096):
            m[off] = 1
        blocks.append(m)
    while len(blocks) > want:
        blocks.pop().close()
    time.sleep(0.05)
"#;

/// +1 MiB of heap a second, kept, for 120 s.
const GROWING: &str = r#"
import time
t0 = time.monotonic()
keep = []
for i in range(120):
    keep.append(bytearray(b"\x01") * (1 << 20))
    d = t0 + i + 1 - time.monotonic()
    if d > 0:
        time.sleep(d)
"#;

/// `run --json` of a Python program, in a thread: (report, terminal report).
fn record_in_background(
    dir: &Path,
    name: &str,
    code: &'static str,
    args: &[&str],
) -> std::thread::JoinHandle<(Value, String)> {
    let rec = dir.join(format!("{name}.jsonl"));
    let mut cmd = ramscope();
    cmd.args(["run", "--interval", "200ms", "--json", "--out"])
        .arg(&rec)
        .args(["--", "python3", "-c", code])
        .args(args);
    std::thread::spawn(move || {
        let (ok, stdout, stderr) = run_bounded(cmd, Duration::from_secs(240));
        assert!(ok, "{stderr}");
        let report: Value = serde_json::from_str(&stdout).expect("the JSON report");
        let text = ramscope().arg("report").arg(&rec).output().unwrap();
        (report, String::from_utf8_lossy(&text.stdout).into_owned())
    })
}

fn growing(report: &Value) -> Vec<Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["trend"] == "growing")
        .cloned()
        .collect()
}

#[test]
fn oscillation_is_no_leak_and_steady_growth_is() {
    let dir = tempfile::tempdir().unwrap();
    // The three recordings run side by side: two minutes in all.
    let short = record_in_background(dir.path(), "osc10", OSCILLATING, &["10"]);
    // 124 s ends in a trough, so the end value shows the swing.
    let long = record_in_background(dir.path(), "osc124", OSCILLATING, &["124"]);
    let grow = record_in_background(dir.path(), "grow", GROWING, &[]);

    for (what, run) in [("10 s", short), ("2 minutes", long)] {
        let (report, text) = run.join().unwrap();
        // It did oscillate: the peak is 80 MiB above the low.
        let procs = report["processes"].as_array().unwrap();
        let py = procs
            .iter()
            .max_by_key(|p| p["peak_rss_bytes"].as_u64())
            .unwrap();
        let swing =
            (py["peak_rss_bytes"].as_f64().unwrap() - py["end_rss_bytes"].as_f64().unwrap()) / MIB;
        assert!(swing > 30.0, "{what}: RSS swing {swing:.1} MiB: {report}");
        assert_eq!(growing(&report), Vec::<Value>::new(), "{what}: {text}");
        assert!(!text.contains("growing"), "{what}: {text}");
    }

    let (report, text) = grow.join().unwrap();
    let found = growing(&report);
    let procs = report["processes"].as_array().unwrap();
    let py = procs
        .iter()
        .max_by_key(|p| p["peak_rss_bytes"].as_u64())
        .unwrap();
    let rss = found
        .iter()
        .find(|f| f["series"] == "rss" && f["pid"] == py["pid"])
        .unwrap_or_else(|| panic!("no growing RSS finding: {text}"));
    let per_hour = rss["bytes_per_hour"].as_f64().unwrap() / MIB;
    assert!(
        (2800.0..=4400.0).contains(&per_hour),
        "{per_hour:.0} MiB/h: {text}"
    );
    assert!(rss["since_t_s"].as_f64().unwrap() < 30.0, "{rss}");
    assert!(
        found
            .iter()
            .any(|f| f["series"] == "heap" && f["pid"] == py["pid"]),
        "{text}"
    );
    // The claim agrees with the peak table: the series ends at its peak, at the end.
    let duration = report["duration_s"].as_f64().unwrap();
    assert!(
        py["peak_rss_t_s"].as_f64().unwrap() > duration - 5.0,
        "{py}"
    );
    let to = rss["to_bytes"].as_f64().unwrap();
    let peak = py["peak_rss_bytes"].as_f64().unwrap();
    assert!(to <= peak && to > peak - 4.0 * MIB, "{rss} vs peak {peak}");
    assert!(
        text.contains("rss: growing") && text.contains("/h since t="),
        "{text}"
    );
}
