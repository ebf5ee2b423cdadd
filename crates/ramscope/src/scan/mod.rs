//! `ramscope scan`: every place a source tree puts memory in host RAM, with its size as a
//! formula over configuration names.
//!
//! Data flows one way: [`files`] lists the tree's sources, [`python`] and [`cpp`] parse each
//! one (tree-sitter, in parallel) into plain facts, [`python::resolve`] follows assignments,
//! constructor arguments and wrapper helpers across the tree into [`Site`]s with a
//! [`Formula`], and [`diff`] compares two scans. Evaluating a formula for one configuration
//! is [`Formula::eval`] with [`Bindings`].

pub mod check;
pub mod cpp;
pub mod diff;
pub mod files;
pub mod formula;
pub mod locate;
pub mod python;
pub mod ranges;
pub mod select;
pub mod version;

use std::collections::HashSet;
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
    /// What the first call in `via` stores the allocation as (`BlockTable.slot_mapping`),
    /// when the site reaches it through a class; it tells apart two sites at one call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inner: Option<String>,
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
    /// Source files read.
    pub files_scanned: u64,
    /// Of those, files parsed (the others cannot contain an allocation the rules know).
    pub files_parsed: u64,
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

/// Rounds of "parse what the resolver asked for": a helper's caller that itself only calls
/// helpers is found in the second round, its caller in the third.
const MAX_ROUNDS: usize = 4;

/// Scans the tree at `root`.
pub fn scan(root: &Path, options: &Options) -> Result<Scan, ScanError> {
    let mut listing = files::list(root)?;
    // An installed package (`site-packages/vllm`) is its own root: name files as the
    // package does (`vllm/v1/...`), so sites join across trees of every layout.
    if root.join("__init__.py").is_file() {
        if let Some(name) = root
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        {
            for s in &mut listing.sources {
                s.rel = format!("{name}/{}", s.rel);
            }
        }
    }
    if listing.sources.is_empty() {
        return Err(ScanError::Empty(root.to_path_buf()));
    }
    let trace = std::env::var_os("RAMSCOPE_SCAN_TRACE").is_some();
    let t0 = std::time::Instant::now();
    let phase = |what: &str| {
        if trace {
            eprintln!("[scan] {:>8.3} s  {what}", t0.elapsed().as_secs_f64());
        }
    };
    let release = version::detect(root);
    let loaded = files::load_all(&listing.sources, options.threads);
    let mut skipped = listing.skipped;
    let mut bytes = 0u64;
    for f in &loaded {
        match &f.text {
            Ok(t) => bytes += t.len() as u64,
            Err(reason) => skipped.push(Skipped {
                file: f.rel.clone(),
                reason: reason.clone(),
            }),
        }
    }
    let known: HashSet<String> = loaded
        .iter()
        .filter(|f| f.lang == files::Lang::Python)
        .map(|f| python::module_name(&f.rel))
        .collect();
    phase("read");
    let (py_first, cpp) = select::first(&loaded);
    phase(&format!(
        "selected {} Python, {} C++ files",
        py_first.len(),
        cpp.len()
    ));
    let mut sites = Vec::new();
    for ((found, errors), &i) in files::parse_cpp(&loaded, &cpp, options.threads)
        .into_iter()
        .zip(&cpp)
    {
        if errors && !found.is_empty() {
            skipped.push(Skipped {
                file: loaded[i].rel.clone(),
                reason: "syntax errors: parsed what could be recovered".into(),
            });
        }
        sites.extend(found);
    }
    phase("parsed C++");
    let mut plan = select::Plan::new(&loaded, &py_first, options.threads);
    let first = plan.take_changed();
    let mut facts = files::parse_python(&loaded, &first, &mut plan, options.threads);
    phase("parsed Python");
    let mut resolved = python::resolve::sites(&facts, &known);
    phase("resolved");
    for _ in 1..MAX_ROUNDS {
        let more = plan.more(&resolved.modules, &resolved.callees, options.threads);
        if trace {
            eprintln!(
                "[scan] wanted modules {:?}\n[scan] wanted callers of {:?}",
                resolved.modules, resolved.callees
            );
        }
        if more.is_empty() {
            break;
        }
        files::parse_more(&mut facts, &loaded, &more, &mut plan, options.threads);
        phase(&format!("parsed {} more Python files", more.len()));
        resolved = python::resolve::sites(&facts, &known);
        phase("resolved");
    }
    for f in facts.iter().filter(|f| f.had_errors) {
        skipped.push(Skipped {
            file: f.path.clone(),
            reason: "syntax errors: parsed what could be recovered".into(),
        });
    }
    sites.extend(resolved.sites);
    sites.sort_by(|a, b| (&a.file, a.line, &a.anchor).cmp(&(&b.file, b.line, &b.anchor)));
    skipped.sort_by(|a, b| a.file.cmp(&b.file));
    let files_parsed = (plan.files() + cpp.len()) as u64;
    Ok(Scan {
        schema: SCHEMA,
        root: root.to_path_buf(),
        package: release.as_ref().map(|r| r.package.clone()),
        version: release.map(|r| r.version),
        files_scanned: loaded.len() as u64,
        files_parsed,
        bytes_scanned: bytes,
        sites,
        skipped,
        notes: Vec::new(),
    })
}
