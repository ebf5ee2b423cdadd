//! Replays every input the fuzzer kept (`fuzz/corpus/<target>/`) and every crash it once
//! found (`fuzz/regressions/<target>/`) through the same entry points the fuzz targets call.
//! The fuzzer itself runs in `scripts/fuzz.sh`, not here.

use std::path::{Path, PathBuf};

/// A fuzz target's name and the library function it calls.
type Target = (&'static str, fn(&[u8]));

/// Every fuzz target; a corpus folder without an entry fails.
const TARGETS: &[Target] = &[
    ("smaps", ramscope::fuzz::smaps),
    ("smaps_rollup", ramscope::fuzz::smaps_rollup),
    ("status", ramscope::fuzz::status),
    ("meminfo", ramscope::fuzz::meminfo),
    ("cgroup", ramscope::fuzz::cgroup),
    ("http", ramscope::fuzz::http),
    ("snapshot_json", ramscope::fuzz::snapshot_json),
    ("recording", ramscope::fuzz::recording),
    ("shell_command_line", ramscope::fuzz::shell_command_line),
    ("vllm_argv", ramscope::fuzz::vllm_argv),
    ("llama_argv", ramscope::fuzz::llama_argv),
    ("vllm_estimate", ramscope::fuzz::vllm_estimate),
    ("safetensors", ramscope::fuzz::safetensors),
    ("gguf", ramscope::fuzz::gguf),
    ("config_json", ramscope::fuzz::config_json),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn replay(kind: &str) -> usize {
    let root = fuzz_dir().join(kind);
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return 0;
    };
    let mut inputs = 0;
    for dir in dirs {
        let dir = dir.expect("corpus folder").path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some((_, target)) = TARGETS.iter().find(|(t, _)| *t == name) else {
            panic!("{}: no fuzz target named {name} in TARGETS", dir.display());
        };
        for file in std::fs::read_dir(&dir).expect("corpus") {
            let path = file.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus input");
            let result = std::panic::catch_unwind(|| target(&data));
            assert!(result.is_ok(), "{} panics", path.display());
            inputs += 1;
        }
    }
    inputs
}

#[test]
fn corpora_replay_without_a_panic() {
    let n = replay("corpus");
    assert!(n > 0, "no corpus under {}", fuzz_dir().display());
}

#[test]
fn every_crash_the_fuzzer_found_stays_fixed() {
    replay("regressions");
}

#[test]
fn every_target_has_a_binary() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] for {name}"
        );
    }
}
