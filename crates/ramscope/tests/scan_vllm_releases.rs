//! `ramscope scan --check` on every vLLM release ramscope models, one per minor version
//! (`scripts/vllm-releases.txt`, fetched once by `scripts/vllm-sources.sh`): the estimator's
//! components against each release's own source, on CUDA (with the runner the release runs
//! by default) and on the CPU backend. Every difference the check finds must be one listed in
//! [`REPORTED`] (an estimator error, reported with why); a listed one that no longer happens
//! fails too, so the list stays true. The estimator's `file:line@release` table
//! (`source_lines.tsv`) is compared with the same scans.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use common::sources::{releases, repo_root, tree};
use common::{json_of, ramscope};
use ramscope::engines::vllm::Version;
use serde_json::Value;

const CONFIG: &[&str] = &[
    "--",
    "vllm",
    "serve",
    "Qwen/Qwen3-8B",
    "--max-model-len",
    "5120",
    "--max-num-seqs",
    "256",
];

/// A difference `--check` reports that is a known error of the estimator for those releases
/// (the formula or fact is wrong there; the sites table is right), with why.
struct Reported {
    first: Version,
    last: Version,
    device: &'static str,
    /// `stale COMPONENT`, `mismatched COMPONENT` or `unmodelled FILE ANCHOR`.
    difference: &'static str,
    why: &'static str,
}

/// None at present: the CPU runner's buffers now follow each release (0.10–0.18 had been
/// listed here), and no other difference is known. A new one goes here until it is fixed.
const REPORTED: &[Reported] = &[];

const DEVICES: [&str; 2] = ["cuda", "cpu"];

/// One `scan TREE --check --json` run.
struct Run {
    release: String,
    device: &'static str,
    /// The check's document and whether it passed; the error when the tree could not be had.
    result: Result<(bool, Value), String>,
}

/// Every release on every device, run once for all the tests of this file (a few at a time:
/// each scan takes a core for about two seconds).
fn runs() -> &'static [Run] {
    static RUNS: OnceLock<Vec<Run>> = OnceLock::new();
    RUNS.get_or_init(|| {
        // Fetch first (the script holds a lock on its cache), then scan in parallel.
        let jobs: Vec<(String, &'static str, Result<PathBuf, String>)> = releases()
            .into_iter()
            .flat_map(|r| {
                let t = tree(&r);
                DEVICES.map(|d| (r.clone(), d, t.clone()))
            })
            .collect();
        let next = AtomicUsize::new(0);
        let done = Mutex::new(Vec::new());
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    while let Some((release, device, t)) =
                        jobs.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        let result = t.clone().map(|t| check(release, device, &t));
                        let run = Run {
                            release: release.clone(),
                            device,
                            result,
                        };
                        done.lock().unwrap_or_else(|e| e.into_inner()).push(run);
                    }
                });
            }
        });
        let mut out = done.into_inner().unwrap_or_else(|e| e.into_inner());
        out.sort_by_key(|r| (Version::parse(&r.release), r.device));
        out
    })
}

/// `scan TREE --check --json --device DEVICE` at the seed configuration.
fn check(release: &str, device: &str, tree: &Path) -> (bool, Value) {
    let mut args: Vec<String> = vec![
        "scan".into(),
        tree.display().to_string(),
        "--check".into(),
        "--json".into(),
        "--device".into(),
        device.into(),
    ];
    args.extend(CONFIG.iter().map(|s| s.to_string()));
    let run = ramscope(&args);
    let doc: Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{release} {device}: no check JSON ({e}): {}",
            String::from_utf8_lossy(&run.stderr)
        )
    });
    (run.status.success(), doc)
}

/// The differences a check document reports.
fn differences(doc: &Value) -> Vec<String> {
    let list = |k: &str| doc[k].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for kind in ["stale", "mismatched"] {
        for j in list(kind) {
            out.push(format!("{kind} {}", j["component"].as_str().unwrap_or("?")));
        }
    }
    for s in list("unmodelled") {
        out.push(format!(
            "unmodelled {} {}",
            s["file"].as_str().unwrap_or("?"),
            s["anchor"].as_str().unwrap_or("?")
        ));
    }
    out
}

/// The index in [`REPORTED`] of the entry that explains a difference.
fn reported(release: Version, device: &str, difference: &str) -> Option<usize> {
    REPORTED.iter().position(|r| {
        r.first <= release && release <= r.last && r.device == device && r.difference == difference
    })
}

#[test]
fn every_minor_release_is_in_the_list_once() {
    let minors: Vec<Version> = releases()
        .iter()
        .map(|r| Version::parse(r).unwrap_or_else(|| panic!("{r}: not a release ramscope knows")))
        .collect();
    assert_eq!(minors, Version::ALL.to_vec(), "{:?}", releases());
}

#[test]
fn check_on_every_release_finds_only_the_reported_estimator_errors() {
    let mut unexplained = Vec::new();
    let mut seen = BTreeSet::new();
    for run in runs() {
        let (ok, doc) = match &run.result {
            Ok(r) => r,
            Err(e) => panic!("{}: {e}", run.release),
        };
        let release = Version::parse(&run.release).expect("a known release");
        assert_eq!(
            doc["version"].as_str(),
            Some(run.release.as_str()),
            "the tree of {} says it is another release",
            run.release
        );
        assert!(
            doc["version_assumed"].is_null(),
            "{}: the estimator does not know this release ({})",
            run.release,
            doc["version_assumed"]
        );
        assert!(
            !doc["joined"].as_array().is_some_and(Vec::is_empty),
            "{} {}: nothing joined",
            run.release,
            run.device
        );
        let found = differences(doc);
        assert_eq!(
            *ok,
            found.is_empty(),
            "{} {}: exit status",
            run.release,
            run.device
        );
        for d in found {
            match reported(release, run.device, &d) {
                Some(i) => {
                    seen.insert(i);
                }
                None => unexplained.push(format!("{} {}: {d}", run.release, run.device)),
            }
        }
    }
    let fixed: Vec<String> = REPORTED
        .iter()
        .enumerate()
        .filter(|(i, _)| !seen.contains(i))
        .map(|(_, r)| {
            format!(
                "{}–{} {}: {} ({})",
                r.first, r.last, r.device, r.difference, r.why
            )
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "differences between the estimator and the sources that nothing explains (fix the \
         sites table, list a known gap with why, or report the estimator error):\n{}",
        unexplained.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "reported estimator errors that no release shows any more (remove them):\n{}",
        fixed.join("\n")
    );
}

/// The TSV's rows for a release (`release<TAB>component<TAB>file:line`).
fn table_rows(release: &str) -> Vec<String> {
    let table = std::fs::read_to_string(
        repo_root().join("crates/ramscope/src/engines/vllm/source_lines.tsv"),
    )
    .expect("source_lines.tsv");
    table
        .lines()
        .filter(|l| l.starts_with(&format!("{release}\t")))
        .map(str::to_string)
        .collect()
}

/// The estimator's `file:line@release` sources come from `source_lines.tsv`; this compares
/// the table with fresh scans, so a release that moves a buffer fails here until
/// `scripts/vllm-source-lines.sh` regenerates it. A release whose source cannot be had here
/// is skipped, and said so.
#[test]
fn the_estimators_source_lines_match_every_release() {
    let mut compared = 0;
    for run in runs().iter().filter(|r| r.device == "cuda") {
        let doc = match &run.result {
            Ok((_, doc)) => doc,
            Err(e) => {
                eprintln!("skipped {}: its source is not cached ({e})", run.release);
                continue;
            }
        };
        let got: Vec<String> = doc["source_lines"]
            .as_array()
            .expect("source_lines in the check JSON")
            .iter()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect();
        assert!(!got.is_empty(), "{}: no source lines", run.release);
        assert_eq!(
            got,
            table_rows(&run.release),
            "{}: the sources moved; run scripts/vllm-source-lines.sh",
            run.release
        );
        compared += 1;
    }
    assert!(compared > 0, "no release's source could be had");
}

/// The estimate of every release cites its components' sites in that release.
#[test]
fn every_release_estimate_cites_file_line_at_release() {
    for (release, written) in Version::ALL.iter().zip(releases()) {
        let rows = table_rows(&written);
        for device in DEVICES {
            let doc = json_of(&[
                "estimate",
                "--json",
                "--vllm-version",
                release.name(),
                "--device",
                device,
                "Qwen/Qwen3-8B",
                "--max-model-len",
                "5120",
            ]);
            let mut cited = 0;
            for c in doc["processes"]
                .as_array()
                .expect("processes")
                .iter()
                .flat_map(|p| p["components"].as_array().cloned().unwrap_or_default())
            {
                let id = c["id"].as_str().unwrap_or_default();
                let Some(row) = rows.iter().find(|r| r.split('\t').nth(1) == Some(id)) else {
                    continue;
                };
                let at = row.split('\t').nth(2).unwrap_or_default();
                assert_eq!(
                    c["source"].as_str(),
                    Some(format!("{at}@{written}").as_str()),
                    "{written} {device}: {id}"
                );
                cited += 1;
            }
            assert!(
                cited > 0,
                "{written} {device}: no component cites a source line"
            );
        }
    }
}
