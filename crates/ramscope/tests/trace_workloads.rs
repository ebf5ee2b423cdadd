//! The tracer's test programs themselves, untraced: they build at -O1 and -O2, run, print
//! what the site table says, and every `SITE:` marker in their sources is accounted for.

mod trace_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use trace_support::{marker_lines, markers_in, programs, source_dir, Run, EVENT_MARKERS, SITES};

#[test]
fn every_marker_is_on_one_line_and_in_the_table() {
    let runs = [Run::Alloc, Run::Pinned, Run::AllocPy];
    for run in runs {
        let text = std::fs::read_to_string(source_dir().join(run.source())).unwrap();
        let listed: Vec<&str> = SITES
            .iter()
            .filter(|s| s.run.source() == run.source())
            .flat_map(|s| [Some(s.marker), s.inner])
            .flatten()
            .chain(
                EVENT_MARKERS
                    .iter()
                    .filter(|(r, _)| r.source() == run.source())
                    .map(|(_, m)| *m),
            )
            .collect();
        let listed_set: BTreeSet<&str> = listed.iter().copied().collect();
        for marker in markers_in(&text) {
            assert!(
                listed_set.contains(marker.as_str()),
                "SITE:{marker} in {} is in no table",
                run.source()
            );
        }
        for marker in &listed_set {
            let lines = marker_lines(&text, marker);
            assert_eq!(
                lines.len(),
                1,
                "SITE:{marker} in {}: lines {lines:?}",
                run.source()
            );
        }
    }
    let mut seen = BTreeSet::new();
    for s in SITES {
        assert!(
            seen.insert((s.run.source(), s.marker, s.kind)),
            "{} listed twice",
            s.marker
        );
        assert!(s.line() > 0);
        assert!(s.frees <= s.calls, "{}", s.marker);
        assert!(s.at_peak <= s.requested && s.live_at_end.map_or(true, |l| l <= s.requested));
    }
}

#[test]
fn marker_lines_match_whole_names_only() {
    let text = "a\nx = 1  # SITE:buf\ny  # SITE:buffer\n/* SITE:buf */\n";
    assert_eq!(marker_lines(text, "buf"), [2, 4]);
    assert_eq!(marker_lines(text, "buffer"), [3]);
    assert!(marker_lines(text, "bu").is_empty());
    assert_eq!(markers_in(text), ["buf", "buffer", "buf"]);
}

fn run_ok(run: Run) -> String {
    let out = programs().command(run).output().unwrap();
    assert!(
        out.status.success(),
        "{run:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{run:?} wrote to stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_c_programs_run_and_print_their_fixed_lines() {
    for run in [Run::Alloc, Run::AllocO2, Run::Pinned] {
        assert_eq!(run_ok(run), run.stdout(), "{run:?}");
    }
}

#[test]
fn pinned_needs_the_fake_runtime_through_the_library_path() {
    let out = std::process::Command::new(&programs().pinned)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("libcudart.so.12"));
}

#[test]
fn alloc_py_runs_and_prints_its_fixed_line() {
    assert_eq!(run_ok(Run::AllocPy), Run::AllocPy.stdout());
}

#[test]
fn storm_prints_the_same_checksum_every_time() {
    let first = run_ok(Run::Storm(3000));
    assert!(first.starts_with(&Run::Storm(3000).stdout()), "{first}");
    assert_eq!(run_ok(Run::Storm(3000)), first);
    assert_ne!(run_ok(Run::Storm(3001)), first.replace("3000", "3001"));
}

#[test]
fn killme_holds_50_mib_resident_once_ready() {
    let mut child = programs()
        .command(Run::Killme)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(line, Run::Killme.stdout());
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(rss_kib >= 50 << 10, "VmRSS {rss_kib} KiB");
}
