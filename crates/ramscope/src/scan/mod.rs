//! `ramscope scan`: every place a source tree puts memory in host RAM, with its size as a
//! formula over configuration names.
//!
//! Data flows one way: [`files`] lists the tree's sources, [`python`] and [`cpp`] parse each
//! one (tree-sitter, in parallel) into plain facts, [`python::resolve`] follows assignments,
//! constructor arguments and wrapper helpers across the tree into [`Site`]s with a
//! [`Formula`], and [`diff`] compares two scans. Evaluating a formula for one configuration
//! is [`Formula::eval`] with [`Bindings`].

pub mod cpp;
pub mod diff;
pub mod files;
pub mod formula;
pub mod locate;
pub mod python;
pub mod version;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use formula::{Bindings, Formula};

pub const SCHEMA: &str = "ramscope.scan/1";

/// How a site obtains its memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// A torch tensor created on the CPU (`torch.zeros(..., device="cpu")`, no device given).
    TorchCpu,
    /// A torch tensor in page-locked memory (`pin_memory=True`, `.pin_memory()`).
    TorchPinned,
    /// A copy to the CPU: `.cpu()`, `.to("cpu")`.
    TorchToCpu,
    /// A torch tensor whose device is a run-time value: host memory on the CPU backend.
    TorchDevice,
    /// A numpy array.
    Numpy,
    /// `bytearray(n)`, `bytes(n)`.
    Bytes,
    /// `mmap.mmap`, C `mmap`.
    Mmap,
    /// POSIX / Python shared memory, memfd.
    SharedMemory,
    /// `torch.UntypedStorage.from_file` and friends: file-backed storage.
    FileStorage,
    /// `cudaHostAlloc`, `cudaMallocHost`, `cuMemHostAlloc`: pinned memory from the CUDA driver.
    CudaHostAlloc,
    /// `cudaHostRegister`: existing host memory pinned in place.
    CudaHostRegister,
    /// C `malloc`/`calloc`/`new[]`-style heap allocation.
    CHeap,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::TorchCpu => "torch-cpu",
            Method::TorchPinned => "torch-pinned",
            Method::TorchToCpu => "torch-to-cpu",
            Method::TorchDevice => "torch-device",
            Method::Numpy => "numpy",
            Method::Bytes => "bytes",
            Method::Mmap => "mmap",
            Method::SharedMemory => "shared-memory",
            Method::FileStorage => "file-storage",
            Method::CudaHostAlloc => "cuda-host-alloc",
            Method::CudaHostRegister => "cuda-host-register",
            Method::CHeap => "c-heap",
        }
    }

    /// Whether the memory is host RAM whatever device the server runs on.
    pub fn always_host(self) -> bool {
        self != Method::TorchDevice
    }
}

/// Whether a site's memory is page-locked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "pinned", content = "when")]
pub enum Pinned {
    No,
    Yes,
    /// Pinned when a run-time condition holds (the text of the condition, e.g.
    /// `is_pin_memory_available()`: on CUDA, not on the CPU backend).
    When(String),
}

/// How far a size formula could be followed back to configuration names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// Only configuration names, model dimensions and constants.
    Full,
    /// Some names left symbolic (a run-time value, an argument with no known caller).
    Partial,
    /// The size depends on data (`torch.tensor(list)`, `.cpu()` of a tensor of unknown shape).
    None,
}

/// A call that leads to the allocation: a wrapper helper, a constructor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Hop {
    pub file: String,
    pub line: u32,
    /// What is called there (`CpuGpuBuffer`, `torch.zeros`).
    pub callee: String,
}

/// One host allocation site.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Site {
    /// Path relative to the tree's root (`vllm/v1/worker/gpu_input_batch.py`).
    pub file: String,
    pub line: u32,
    /// A name that survives line moves: `Class.attribute`, `Class.method`, `function.variable`.
    pub anchor: String,
    /// Enclosing `Class.function` (or `function`, or `<module>`).
    pub scope: String,
    pub method: Method,
    #[serde(flatten)]
    pub pinned: Pinned,
    /// The dtype as written (`torch.int32`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// The shape or size argument as written.
    pub shape: String,
    /// Bytes, over configuration names.
    pub formula: Formula,
    pub resolution: Resolution,
    /// The calls from this site down to the allocating call, outermost first (empty when
    /// the allocation is on this line).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<Hop>,
    /// How many call paths reach this site with this formula (a constructor called twice).
    pub paths: u32,
}

/// A file that was not scanned, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub file: String,
    pub reason: String,
}

/// The result of scanning one tree.
#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    pub schema: &'static str,
    pub root: PathBuf,
    /// What the tree says it is (`vllm`), when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The release, from the tree's own version metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub files_scanned: u64,
    pub bytes_scanned: u64,
    pub sites: Vec<Site>,
    /// Files skipped (binary, too large, unreadable) and files parsed with syntax errors.
    pub skipped: Vec<Skipped>,
    pub notes: Vec<String>,
}

/// What can stop a scan (a single unreadable file does not: it is skipped with a note).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a directory")]
    NotADirectory(PathBuf),
    #[error("{0}: no Python or C++ sources found")]
    Empty(PathBuf),
    #[error("{0}")]
    Locate(String),
}

/// Options of one scan.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Parser threads (0: one per core).
    pub threads: usize,
}

/// Scans the tree at `root`.
pub fn scan(root: &Path, options: &Options) -> Result<Scan, ScanError> {
    let listing = files::list(root)?;
    if listing.sources.is_empty() {
        return Err(ScanError::Empty(root.to_path_buf()));
    }
    let release = version::detect(root);
    let parsed = files::parse_all(&listing.sources, options.threads);
    let mut skipped = listing.skipped;
    skipped.extend(parsed.skipped);
    let mut sites = python::resolve::sites(&parsed.python);
    sites.extend(parsed.cpp_sites);
    sites.sort_by(|a, b| (&a.file, a.line, &a.anchor).cmp(&(&b.file, b.line, &b.anchor)));
    skipped.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(Scan {
        schema: SCHEMA,
        root: root.to_path_buf(),
        package: release.as_ref().map(|r| r.package.clone()),
        version: release.map(|r| r.version),
        files_scanned: parsed.files,
        bytes_scanned: parsed.bytes,
        sites,
        skipped,
        notes: Vec::new(),
    })
}
