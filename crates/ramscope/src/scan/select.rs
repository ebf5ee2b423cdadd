//! Which files to parse. Parsing is the scan's cost (tree-sitter: ~90% of the time on vLLM,
//! `benches/scan_speed.rs`), and most files of a server never allocate host memory: a file is
//! parsed when its text can contain an allocation, or when the resolver asks for it (a
//! module whose constant a size uses, a file that calls a helper that allocates); and of
//! such a file, only the functions and classes the resolver can use ([`Plan`],
//! `scan::ranges`).

use aho_corasick::AhoCorasick;

use super::files::{Lang, Loaded};
pub use super::ranges::Plan;

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

/// The calls the resolver evaluates as allocations, by their last name (`torch.zeros(`,
/// `np.empty(`, `x.to(`); `python::resolve` evaluates only these. A function or method that
/// calls none of them allocates only through what it calls.
pub const PY_CALLS: &[&str] = &[
    "empty",
    "zeros",
    "ones",
    "full",
    "rand",
    "randn",
    "empty_strided",
    "arange",
    "tensor",
    "as_tensor",
    "empty_like",
    "zeros_like",
    "ones_like",
    "full_like",
    "rand_like",
    "randn_like",
    "array",
    "from_file",
    "bytearray",
    "bytes",
    "mmap",
    "SharedMemory",
    "memfd_create",
    "cpu",
    "to",
    "pin_memory",
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
