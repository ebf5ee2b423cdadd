//! Which files to parse. Parsing is the scan's cost (tree-sitter: ~90% of the time on vLLM,
//! `benches/scan_speed.rs`), and most files of a server never allocate host memory: a file is
//! parsed when its text can contain an allocation, or when the resolver asks for it (a
//! module whose constant a size uses, a file that calls a helper that allocates).

use std::collections::BTreeSet;

use aho_corasick::AhoCorasick;

use super::files::{Lang, Loaded};

/// Text without which a Python file has no allocation call the rules recognise.
const PY_ALLOC: &[&str] = &[
    "zeros(",
    "empty(",
    "ones(",
    "full(",
    "empty_strided(",
    "arange(",
    "tensor(",
    "_like(",
    "array(",
    "from_file(",
    "bytearray(",
    "bytes(",
    "mmap(",
    "SharedMemory(",
    "memfd_create(",
    ".cpu()",
    "pin_memory",
    "rand(",
    "randn(",
    "\"cpu\"",
    "'cpu'",
];

/// In model and layer code tensors land on the accelerator unless the code says otherwise.
const PY_HOST_HINTS: &[&str] = &[
    "pin_memory",
    "\"cpu\"",
    "'cpu'",
    ".cpu()",
    "np.",
    "numpy",
    "bytearray(",
    "mmap(",
    "SharedMemory(",
    "shared_memory",
    "memfd_create(",
    "from_file(",
];

const CPP_ALLOC: &[&str] = &[
    "cudaHostAlloc",
    "cudaMallocHost",
    "cuMemHostAlloc",
    "cuMemAllocHost",
    "hipHostMalloc",
    "hipHostAlloc",
    "HostRegister",
    "mmap",
    "shm_open",
    "memfd_create",
    "malloc",
    "calloc",
    "aligned_alloc",
    "posix_memalign",
    "realloc",
];

/// In vLLM, models and layers are built under the loader's device context: a tensor created
/// there without naming a device lands on the accelerator, and one created on a run-time
/// device is a weight or activation (the estimator's weights), not a host buffer.
pub const DEVICE_CONTEXT_DIRS: &[&str] = &[
    "/model_executor/models/",
    "/model_executor/layers/",
    "/vllm/models/",
];

pub fn in_device_context(rel: &str) -> bool {
    let p = format!("/{rel}");
    DEVICE_CONTEXT_DIRS.iter().any(|d| p.contains(d))
}

fn matcher(words: &[&str]) -> Option<AhoCorasick> {
    AhoCorasick::new(words).ok()
}

/// The files to parse first: Python files that may allocate, every package `__init__`
/// (re-exports), and C/C++ files that call an allocator.
pub fn first(files: &[Loaded]) -> (Vec<usize>, Vec<usize>) {
    let (Some(alloc), Some(hints), Some(cpp)) = (
        matcher(PY_ALLOC),
        matcher(PY_HOST_HINTS),
        matcher(CPP_ALLOC),
    ) else {
        // Matchers over fixed words cannot fail to build; parse everything if they do.
        let all = |l: Lang| (0..files.len()).filter(|&i| files[i].lang == l).collect();
        return (all(Lang::Python), all(Lang::Cpp));
    };
    let mut py = Vec::new();
    let mut cc = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let Ok(text) = &f.text else {
            continue;
        };
        match f.lang {
            Lang::Python => {
                let wanted = if f.rel.ends_with("__init__.py") {
                    true
                } else if in_device_context(&f.rel) {
                    hints.is_match(text)
                } else {
                    alloc.is_match(text)
                };
                if wanted {
                    py.push(i);
                }
            }
            Lang::Cpp => {
                if cpp.is_match(text) {
                    cc.push(i);
                }
            }
        }
    }
    (py, cc)
}

/// Python files not parsed yet that the resolver asked for: those of `modules`, and those
/// that call one of `callees` (`Name(`).
pub fn more(
    files: &[Loaded],
    parsed: &BTreeSet<usize>,
    modules: &BTreeSet<String>,
    callees: &BTreeSet<String>,
) -> Vec<usize> {
    let words: Vec<String> = callees.iter().map(|c| format!("{c}(")).collect();
    let calls = if words.is_empty() {
        None
    } else {
        AhoCorasick::new(&words).ok()
    };
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if f.lang != Lang::Python || parsed.contains(&i) {
            continue;
        }
        let Ok(text) = &f.text else {
            continue;
        };
        let module = super::python::module_name(&f.rel);
        let by_module = modules.contains(&module);
        let by_call = calls.as_ref().is_some_and(|m| m.is_match(text));
        if by_module || by_call {
            out.push(i);
        }
    }
    out
}
