//! What `ramscope scan` costs on a whole vLLM release, beside the floor for touching every
//! file: `rg -c 'pin_memory|torch\.(empty|zeros)'` over the same tree.
//!
//!   cargo bench --bench scan_speed                        # vLLM 0.33.0 (fetched once)
//!   RAMSCOPE_SCAN_TREE=~/src/vllm cargo bench --bench scan_speed
//!
//! Ratios are printed because absolute times move with the machine's load; the issue's goal
//! (the whole 0.33 tree in under 1 s on 2 cores) is reported, not asserted.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ramscope::scan::{self, Options};

const ROUNDS: usize = 5;

fn tree() -> Option<PathBuf> {
    if let Some(t) = std::env::var_os("RAMSCOPE_SCAN_TREE") {
        return Some(PathBuf::from(t));
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/vllm-sources.sh");
    let out = Command::new(script).arg("0.33.0").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let dir = text.split_whitespace().nth(1)?;
    Some(PathBuf::from(dir))
}

fn best(mut f: impl FnMut()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let Some(root) = tree() else {
        println!(
            "no tree: set RAMSCOPE_SCAN_TREE or let scripts/vllm-sources.sh fetch vLLM 0.33.0"
        );
        return;
    };
    let options = Options::default();
    let mut last = None;
    let ours = best(|| last = scan::scan(&root, &options).ok());
    let Some(result) = last else {
        println!("{}: the scan failed", root.display());
        return;
    };
    println!(
        "ramscope scan {}: {} files read ({:.1} MB), {} parsed, {} sites: best of {ROUNDS} {:.3} s",
        root.display(),
        result.files_scanned,
        result.bytes_scanned as f64 / 1e6,
        result.files_parsed,
        result.sites.len(),
        ours.as_secs_f64()
    );
    let rg = Command::new("rg").arg("--version").output().is_ok();
    if rg {
        let floor = best(|| {
            let _ = Command::new("rg")
                .args(["-c", r"pin_memory|torch\.(empty|zeros)"])
                .arg(&root)
                .output();
        });
        println!(
            "rg -c 'pin_memory|torch\\.(empty|zeros)' (the floor: every file touched): best of {ROUNDS} {:.3} s",
            floor.as_secs_f64()
        );
        println!(
            "ratio ramscope / rg: {:.1}×",
            ours.as_secs_f64() / floor.as_secs_f64().max(1e-6)
        );
    } else {
        println!("rg is not installed: no floor to compare with");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "goal (< 1 s for the whole tree on this {cores}-core machine): {}",
        if ours < Duration::from_secs(1) {
            "met"
        } else {
            "not met"
        }
    );
}
