//! The sources of a tree, listed and parsed in parallel.
//!
//! Listing never follows a symbolic link to a directory (a link loop cannot trap it) and
//! skips what is not source: binary files, files over [`MAX_FILE_BYTES`] (generated code),
//! unreadable files — each with a note, never an error.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::python::{self, FileFacts};
use super::{cpp, ScanError, Site, Skipped};

/// Larger files are generated (vLLM's biggest hand-written Python file is ~300 KB); parsing a
/// 50 MB one would cost seconds for nothing.
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// Directories that hold no code of the package (tests and docs allocate, but not in a server).
const SKIP_DIRS: &[&str] = &[
    ".git",
    "__pycache__",
    "node_modules",
    ".venv",
    "venv",
    "build",
    "dist",
    "tests",
    "test",
    "docs",
    "examples",
    "benchmarks",
    "third_party",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    Cpp,
}

pub struct Source {
    pub path: PathBuf,
    /// Relative to the root, with `/`.
    pub rel: String,
    pub lang: Lang,
}

pub struct Listing {
    pub sources: Vec<Source>,
    pub skipped: Vec<Skipped>,
}

fn lang_of(name: &str) -> Option<Lang> {
    let ext = name.rsplit_once('.')?.1;
    match ext {
        "py" => Some(Lang::Python),
        "c" | "cc" | "cpp" | "cxx" | "h" | "hh" | "hpp" | "cu" | "cuh" => Some(Lang::Cpp),
        _ => None,
    }
}

/// Lists the Python and C/C++/CUDA sources under `root`.
pub fn list(root: &Path) -> Result<Listing, ScanError> {
    let meta = fs::metadata(root).map_err(|source| ScanError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ScanError::NotADirectory(root.to_path_buf()));
    }
    let mut listing = Listing {
        sources: Vec::new(),
        skipped: Vec::new(),
    };
    let mut todo = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = todo.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                listing.skipped.push(Skipped {
                    file: rel.clone(),
                    reason: format!("cannot list: {e}"),
                });
                continue;
            }
        };
        let mut names: Vec<(String, fs::FileType, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                Some((
                    e.file_name().into_string().ok()?,
                    e.file_type().ok()?,
                    e.path(),
                ))
            })
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, ft, path) in names {
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if ft.is_dir() {
                // Only the top of a tree may be a test folder of the package itself.
                if !SKIP_DIRS.contains(&name.as_str()) && !name.starts_with('.') {
                    todo.push((path, child));
                }
                continue;
            }
            let Some(lang) = lang_of(&name) else {
                continue;
            };
            if ft.is_symlink() {
                // A link to a source file is scanned once, where it really is.
                continue;
            }
            if !ft.is_file() {
                continue;
            }
            listing.sources.push(Source {
                path,
                rel: child,
                lang,
            });
        }
    }
    listing.sources.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(listing)
}

/// Reads a source file: `None` with a reason when it is not one to parse.
fn read(src: &Source) -> Result<String, String> {
    let file = fs::File::open(&src.path).map_err(|e| format!("cannot read: {e}"))?;
    let mut buf = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "larger than {} MiB (generated code?)",
            MAX_FILE_BYTES >> 20
        ));
    }
    if memchr::memchr(0, &buf[..buf.len().min(8192)]).is_some() {
        return Err("binary".into());
    }
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// A source file's text, or why it was skipped.
pub struct Loaded {
    pub rel: String,
    pub lang: Lang,
    pub text: Result<String, String>,
}

/// Runs `f` over `0..n` on `threads` threads (0: one per core), results in index order.
pub fn parallel<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    }
    .clamp(1, 64)
    .min(n.max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, T)>> = Mutex::new(Vec::with_capacity(n));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    local.push((i, f(i)));
                }
                if let Ok(mut r) = results.lock() {
                    r.extend(local);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, t)| t).collect()
}

/// Reads every source.
pub fn load_all(sources: &[Source], threads: usize) -> Vec<Loaded> {
    parallel(sources.len(), threads, |i| Loaded {
        rel: sources[i].rel.clone(),
        lang: sources[i].lang,
        text: read(&sources[i]),
    })
}

thread_local! {
    static PYTHON: std::cell::RefCell<Option<tree_sitter::Parser>> = const { std::cell::RefCell::new(None) };
}

/// Parses the Python files `which` (indices into `files`).
pub fn parse_python(files: &[Loaded], which: &[usize], threads: usize) -> Vec<FileFacts> {
    parallel(which.len(), threads, |k| {
        let f = &files[which[k]];
        let text = f.text.as_deref().unwrap_or_default();
        PYTHON.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                let mut p = tree_sitter::Parser::new();
                if p.set_language(&tree_sitter_python::LANGUAGE.into()).is_ok() {
                    *slot = Some(p);
                }
            }
            match slot.as_mut() {
                Some(p) => python::parse(&f.rel, text, p),
                None => FileFacts {
                    path: f.rel.clone(),
                    module: python::module_name(&f.rel),
                    had_errors: true,
                    ..FileFacts::default()
                },
            }
        })
    })
}

/// Finds the sites of the C/C++/CUDA files `which`.
pub fn parse_cpp(files: &[Loaded], which: &[usize], threads: usize) -> Vec<(Vec<Site>, bool)> {
    parallel(which.len(), threads, |k| {
        let f = &files[which[k]];
        cpp::sites(&f.rel, f.text.as_deref().unwrap_or_default())
    })
}
