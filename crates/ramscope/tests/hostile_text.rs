//! Strings written by others (process titles, command lines, config values) reach the
//! terminal escaped: no escape sequence, control character or bidirectional override of
//! theirs is passed through.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use common::ramscope;

const EVIL: &str = "\x1b[31mEVIL\x1b]0;title\x07\u{202e}gnp.exe\0x";

/// Bytes a terminal would act on: ESC, BEL, other C0 controls but newline, C1, bidi marks.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sleep` with an argv[0] (its title in ps) full of escape sequences.
fn evil_process() -> Killed {
    let title = EVIL.replace('\0', "");
    let child = Command::new("sleep")
        .arg0(&title)
        .arg("60")
        .spawn()
        .unwrap();
    // Wait until it has exec'd (its cmdline shows the title).
    let pid = child.id();
    for _ in 0..200 {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline.starts_with(b"\x1b[31mEVIL") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Killed(child)
}

#[test]
fn a_process_title_with_escape_sequences_is_shown_escaped() {
    let p = evil_process();
    let pid = p.0.id().to_string();
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("r.jsonl");
    let rec = rec.to_str().unwrap();
    for args in [
        vec!["measure", pid.as_str()],
        vec!["measure", pid.as_str(), "--by", "mapping"],
        vec![
            "watch",
            "--no-live",
            "--duration",
            "600ms",
            "--out",
            rec,
            pid.as_str(),
        ],
        vec!["report", rec],
    ] {
        let out = ramscope(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for stream in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(raw_controls(&text).is_empty(), "{args:?}: {text:?}");
        }
        let text = String::from_utf8_lossy(&out.stdout);
        if args[0] == "measure" && args.len() == 2 {
            assert!(
                text.contains("\\x1b[31mEVIL"),
                "the title is shown, escaped: {text}"
            );
        }
    }
}

#[test]
fn control_characters_in_a_config_are_shown_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "architectures": [format!("Qwen3ForCausalLM{EVIL}")],
        "model_type": "qwen3",
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 64,
        "vocab_size": 1000,
        "max_position_embeddings": 8192,
        "torch_dtype": "bfloat16"
    });
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let model = dir.path().to_str().unwrap();
    let out = ramscope(&["estimate", "--device", "cpu", "--", "vllm", "serve", model]);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(raw_controls(&text).is_empty(), "{text:?}");
    assert!(raw_controls(&err).is_empty(), "{err:?}");
    assert!(text.contains("\\x1b[31mEVIL"), "{text}");
}

#[test]
fn a_multi_line_command_is_one_escaped_line_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("r.jsonl");
    let rec = rec.to_str().unwrap();
    let script = "import time\nif True:\n    time.sleep(0.3)  # \x1b[2J";
    let out = ramscope(&[
        "run",
        "--interval",
        "50ms",
        "--out",
        rec,
        "--",
        "python3",
        "-c",
        script,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ramscope"))
        .args(["report", rec])
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(raw_controls(&text).is_empty(), "{text:?}");
    assert!(
        text.contains("import time\\nif True:\\n time.sleep"),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
}
