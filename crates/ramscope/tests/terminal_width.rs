//! Human output fits the terminal: 80 columns when there is none (a pipe), `$COLUMNS`
//! otherwise; a number is never split from its unit, and the text says what it means
//! (no title templates, no "pinned (pinned)").

mod common;

use std::process::Command;

/// Runs ramscope into a pipe with `columns` as `$COLUMNS` (unset when `None`).
fn piped(args: &[&str], columns: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ramscope"));
    cmd.args(args).env_remove("COLUMNS");
    if let Some(c) = columns {
        cmd.env("COLUMNS", c);
    }
    let out = cmd.output().expect("run ramscope");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn assert_fits(args: &[&str], text: &str, width: usize) {
    let mut previous_last = "";
    for line in text.lines() {
        let w = line.chars().count();
        assert!(
            w <= width,
            "{args:?}: {w} columns > {width}:\n{line}\n\n{text}"
        );
        // A line that starts with a unit right after one that ends with a number: split.
        let first = line.split_whitespace().next().unwrap_or("");
        let is_unit = matches!(first, "B" | "KiB" | "MiB" | "GiB" | "TiB" | "PiB");
        assert!(
            !(is_unit && previous_last.parse::<f64>().is_ok()),
            "{args:?}: a number split from its unit:\n{text}"
        );
        previous_last = line.split_whitespace().last().unwrap_or("");
    }
}

#[test]
fn every_report_fits_80_columns_in_a_pipe_and_columns_when_set() {
    let me = std::process::id().to_string();
    let dir = tempfile::tempdir().unwrap();
    let snap = common::snapshot_of_self(dir.path());
    let snap = snap.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["estimate"],
        vec![
            "estimate",
            "qwen3-30b-a3b",
            "-tp",
            "2",
            "--kv-offloading-size",
            "64",
        ],
        vec!["measure", &me],
        vec!["measure", &me, "--by", "category"],
        vec!["measure", &me, "--by", "mapping"],
        vec!["diff", snap, snap],
        vec![
            "explain",
            "--vllm-version",
            "0.32",
            "--from-snapshot",
            snap,
            "--",
            "vllm",
            "serve",
            "qwen3-0.6b",
        ],
    ];
    for args in &commands {
        assert_fits(args, &piped(args, None), 80);
        assert_fits(args, &piped(args, Some("100")), 100);
        assert_fits(args, &piped(args, Some("60")), 60);
    }
}

#[test]
fn estimate_text_names_real_processes_and_categories() {
    let text = piped(&["estimate", "qwen3-8b", "-tp", "2", "--gpu", "h100"], None);
    assert!(!text.contains("{j}") && !text.contains("{i}"), "{text}");
    assert!(
        text.contains("VLLM::Worker_TP0 … VLLM::Worker_TP1"),
        "{text}"
    );
    assert!(!text.contains("pinned (pinned)"), "{text}");
}

#[test]
fn the_readme_names_every_key_of_the_explain_document() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snap = common::snapshot_of_self(dir.path());
    let x = common::json_of(&[
        "explain",
        "--json",
        "--from-snapshot",
        snap.to_str().unwrap(),
        "--",
        "vllm",
        "serve",
        "qwen3-0.6b",
    ]);
    for key in x.as_object().unwrap().keys() {
        assert!(
            readme.contains(&format!("`{key}`")),
            "README does not name the explain key `{key}`"
        );
    }
}
