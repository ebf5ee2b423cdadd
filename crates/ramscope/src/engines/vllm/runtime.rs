//! What a vLLM process holds beyond vLLM's own allocations: Python, torch and vLLM's imports,
//! library pages, the tokenizer, the CPU worker's warm-up and compile leftovers, the CUDA
//! context and first forward. None of these can be computed from vLLM's source; each is a
//! measured baseline of a named stack ([`crate::calibrate::stacks`], docs/baselines.md),
//! scaled by the model where measurements on several shapes showed how (docs/baselines.md §4).

use crate::attribute::Category;
use crate::calibrate::stacks::TOKENIZER_FILE_BYTES_PER_ENTRY;
use crate::calibrate::FIRST_FORWARD_RANGE;
use crate::footprint::{Component, Device};
use crate::proc::roles::Role;
use crate::units::Checked;

use super::components::{n, Ctx, MIB};

/// glibc's largest dynamic mmap threshold on 64-bit (`DEFAULT_MMAP_THRESHOLD_MAX`): a larger
/// allocation is always served by mmap and returned to the kernel when freed.
const GLIBC_MMAP_THRESHOLD_MAX: u64 = 32 * MIB;

/// `bytes × factor`, checked: a too-large `bytes` stays too large, a product past 2^64
/// saturates (and is refused like any other too-large value).
fn scaled(bytes: Checked, factor: f64) -> Checked {
    match bytes.get() {
        Some(b) => n((b as f64 * factor) as u64),
        None => bytes,
    }
}

/// A measured baseline of the chosen stack, with the stack's spread (widened when the target
/// differs from it) as its range.
fn measured(cx: &Ctx, c: Component, low: u64, high: u64) -> Component {
    let (lo, _) = cx.b.spread(low);
    let (_, hi) = cx.b.spread(high);
    c.calibrated(&cx.b.provenance_imports, lo, hi)
}

/// Python, torch and vLLM imports plus this process's share of library pages.
pub(super) fn baseline(
    cx: &Ctx,
    role: Role,
    py_processes: Checked,
    fork_group: Checked,
) -> Vec<Component> {
    let b = cx.b;
    let (anon, low, high) = anon_baseline(cx, role);
    let mut out = Vec::new();
    let what = if role == Role::Worker {
        "anonymous memory of the model process after imports, start-up and loading, beyond what the source accounts for"
    } else {
        "anonymous memory after Python, torch and vLLM imports and start-up, without the tokenizer"
    };
    let imports = measured(
        cx,
        cx.exact(
            "runtime.python_imports",
            anon,
            Category::Heap,
            format!("{what} = {}", crate::units::bytes(anon)),
            "vllm/entrypoints/openai/api_server.py (imports)",
        ),
        low,
        high,
    );
    if fork_group.get() != Some(1) {
        // Forked processes split the parent's untouched pages by PSS; how many stay shared
        // depends on how much each process writes (refcounts dirty pages) [est: half].
        let share = n(anon / 2) + n(anon / 2) / fork_group;
        let formula = format!(
            "imports × (1/2 + 1/2 ÷ {fork_group} forked processes) = {} × {:.3}",
            crate::units::bytes(anon),
            share.raw() as f64 / anon.max(1) as f64
        );
        out.push(
            Component { formula, ..imports }
                .with_bytes(share)
                .range(n(anon) / fork_group, anon)
                .note(
                    "forked: copy-on-write pages shared with the parent count once across the tree",
                ),
        );
    } else {
        out.push(imports);
    }
    let procs = py_processes.max(1);
    let libs = n(b.libraries_bytes) / procs;
    let lib_share = libs.get().unwrap_or(u64::MAX);
    out.push(
        measured(
            cx,
            cx.exact(
                "runtime.libraries",
                libs,
                Category::CodeTorch,
                format!(
                    "library pages ÷ Python processes = {} ÷ {procs}",
                    crate::units::bytes(b.libraries_bytes)
                ),
                "torch/lib, nvidia/*/lib, triton, vllm/_C (mapped files)",
            ),
            lib_share,
            lib_share,
        )
        .note("file-backed and shared: PSS splits it among the processes mapping it"),
    );
    if role == Role::Worker && cx.r.device == Device::Cpu {
        out.push(measured(
            cx,
            cx.exact(
                "runtime.worker_libraries",
                b.worker_libraries_bytes,
                Category::CodeTorch,
                "vLLM CPU kernels (_C.abi3.so), oneDNN".into(),
                "vllm/_C.abi3.so",
            ),
            b.worker_libraries_bytes,
            b.worker_libraries_bytes,
        ));
    }
    out
}

/// The measured anonymous memory after imports of a process of `role`: (bytes, low, high).
fn anon_baseline(cx: &Ctx, role: Role) -> (u64, u64, u64) {
    let b = cx.b;
    match role {
        Role::ApiServer => (b.api_anon_bytes, b.api_anon_bytes, b.api_anon_bytes),
        Role::Worker => (
            b.worker_anon_bytes,
            b.worker_anon_range.0,
            b.worker_anon_range.1,
        ),
        _ => (
            b.engine_anon_bytes,
            b.engine_anon_bytes,
            b.engine_anon_bytes,
        ),
    }
}

/// The baseline as the process's own RSS counts it (what vLLM's CPU worker reads with
/// psutil): shared pages whole, where [`baseline`] gives this process's PSS share of them —
/// every library page it maps, and all the import pages a forked process shares with its
/// parent.
pub(super) fn baseline_rss(cx: &Ctx, role: Role) -> Checked {
    let b = cx.b;
    let worker_libraries = if role == Role::Worker && cx.r.device == Device::Cpu {
        b.worker_libraries_bytes
    } else {
        0
    };
    n(anon_baseline(cx, role).0) + b.libraries_bytes + worker_libraries
}

/// The tokenizer as vLLM loads it (transformers' fast tokenizer and the vocabulary cached as a
/// Python dict, `vllm/tokenizers/hf.py`). Its heap scales with the size of `tokenizer.json`
/// (fitted over three tokenizers, docs/baselines.md §4); the API server holds about twice
/// what EngineCore's structured-output manager holds.
pub(super) fn tokenizer(cx: &Ctx, role: &str) -> Option<Component> {
    if cx.r.skip_tokenizer_init {
        return None;
    }
    let api = role == "api-server";
    let per_byte = if api {
        cx.b.api_tokenizer_per_file_byte
    } else {
        cx.b.engine_tokenizer_per_file_byte
    };
    let (source, why) = if api {
        ("vllm/tokenizers/hf.py", "the frontend's tokenizer")
    } else {
        (
            "vllm/v1/structured_output/__init__.py",
            "EngineCore's copy for structured outputs, loaded at start-up",
        )
    };
    let c = match cx.m.tokenizer_json_bytes {
        Some(file) => {
            let bytes = scaled(n(file), per_byte);
            let b = bytes.get().unwrap_or(u64::MAX);
            measured(
                cx,
                cx.exact(
                    "tokenizer",
                    bytes,
                    Category::Heap,
                    format!("{per_byte:.2} × tokenizer.json bytes = {per_byte:.2} × {file}"),
                    source,
                ),
                b,
                b,
            )
        }
        None => {
            // No tokenizer file at hand: the vocabulary size at the measured tokenizers' file
            // bytes per entry. Real tokenizer.json files hold 55–130 B per entry (SentencePiece
            // vocabularies are denser, Gemma's larger), hence the range.
            let vocab = n(cx.m.config.vocab_size);
            let per_entry = per_byte * TOKENIZER_FILE_BYTES_PER_ENTRY;
            let bytes = scaled(vocab, per_entry);
            cx.exact(
                "tokenizer",
                bytes,
                Category::Heap,
                format!("≈ {per_entry:.0} B × vocab = {per_entry:.0} × {vocab} (no tokenizer.json read)"),
                source,
            )
            .range(scaled(bytes, 0.6), scaled(bytes, 1.7))
        }
    };
    Some(c.note(why))
}

/// The CPU worker: its warm-up profile run, and what compiling adds.
pub(super) fn cpu(cx: &Ctx) -> Vec<Component> {
    let (r, b) = (cx.r, cx.b);
    let mut out = Vec::new();
    let skips_eager = r.version.release().cpu_eager_skips_warmup.is_some();
    if r.torch_compile || !skips_eager {
        let logits = n(r.max_num_seqs) * cx.m.config.vocab_size * 4;
        let k = b.warmup_per_logit_byte;
        // Buffers above glibc's largest mmap threshold are mapped and unmapped: nothing of
        // them stays (measured: a 148 MiB batch of logits left no more than a 1 MiB one,
        // docs/baselines.md §4).
        let kept = logits.get().is_some_and(|x| x <= GLIBC_MMAP_THRESHOLD_MAX);
        let bytes = if kept { scaled(logits, k) } else { n(0) };
        let v = bytes.get().unwrap_or(u64::MAX);
        let when = if skips_eager {
            "0 with --enforce-eager"
        } else {
            "runs with --enforce-eager too on this release"
        };
        let formula = if kept {
            format!(
                "{k:.2} × max_num_seqs × vocab × 4 B = {k:.2} × {} × {} × 4",
                r.max_num_seqs, cx.m.config.vocab_size
            )
        } else {
            format!(
                "0: max_num_seqs × vocab × 4 B = {} × {} × 4 is above glibc's 32 MiB mmap threshold (mapped and unmapped, not kept)",
                r.max_num_seqs, cx.m.config.vocab_size
            )
        };
        out.push(
            measured(
                cx,
                cx.exact(
                    "runtime.warmup",
                    bytes,
                    Category::Heap,
                    formula,
                    "vllm/v1/worker/cpu_model_runner.py (warming_up_model → profile_run)",
                ),
                v,
                v,
            )
            .note(format!(
                "the warm-up sampler's float32 logits over a full batch, partly kept by glibc; {when}"
            )),
        );
    }
    if r.torch_compile {
        let (fit, low, high) = b.compile_bytes;
        out.push(
            measured(
                cx,
                cx.exact(
                    "runtime.torch_compile",
                    fit,
                    Category::Heap,
                    format!(
                        "Dynamo/Inductor state and generated kernels = {}",
                        crate::units::bytes(fit)
                    ),
                    "vllm/platforms/cpu.py (inductor backend)",
                ),
                low,
                high,
            )
            .note("0 with --enforce-eager"),
        );
    }
    out
}

/// The CUDA process that runs the model: context, first forward, compile.
pub(super) fn cuda(cx: &Ctx) -> Vec<Component> {
    let (r, b) = (cx.r, cx.b);
    let mut out = vec![
        cx.exact(
            "runtime.cuda_context",
            b.cuda_context_bytes,
            Category::CodeCuda,
            "CUDA context creation (driver state, libcuda pages)".into(),
            "torch.cuda._lazy_init",
        )
        .calibrated(
            &b.provenance_cuda,
            n(b.cuda_context_bytes) * 8 / 10,
            n(b.cuda_context_bytes) * 13 / 10,
        ),
        cx.exact(
            "runtime.first_forward",
            b.first_forward_bytes,
            Category::Heap,
            "lazy CUDA module loading, cuBLAS/cuDNN handles and workspaces".into(),
            "torch (first kernels)",
        )
        .calibrated(
            &b.provenance_first_forward,
            FIRST_FORWARD_RANGE.0.min(b.first_forward_bytes),
            FIRST_FORWARD_RANGE.1.max(b.first_forward_bytes),
        ),
    ];
    if r.torch_compile {
        out.push(
            cx.exact("runtime.torch_compile", 133 * MIB, Category::Heap, "Dynamo/Inductor state, Triton launchers (one process; vLLM forces TORCHINDUCTOR_COMPILE_THREADS=1)".into(), "vllm/env_override.py")
                .range(100 * MIB, 500 * MIB)
                .note("0 with --enforce-eager"),
        );
    }
    out
}
