//! The sources of a tree, listed and parsed in parallel.
//!
//! Listing never follows a symbolic link to a directory (a link loop cannot trap it) and
//! skips what is not source: binary files, files over [`MAX_FILE_BYTES`] (generated code),
//! unreadable files — each with a note, never an error.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::python::{self, FileFacts};
use super::select::Plan;
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

/// Runs `f` with this thread's Python parser (parsers are reused, one per thread).
fn with_parser(rel: &str, f: impl FnOnce(&mut tree_sitter::Parser) -> FileFacts) -> FileFacts {
    PYTHON.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut p = tree_sitter::Parser::new();
            if p.set_language(&tree_sitter_python::LANGUAGE.into()).is_ok() {
                *slot = Some(p);
            }
        }
        match slot.as_mut() {
            Some(p) => f(p),
            None => FileFacts {
                path: rel.to_string(),
                module: python::module_name(rel),
                had_errors: true,
                ..FileFacts::default()
            },
        }
    })
}

/// Parses the Python files `which` (indices into `files`), each as far as `plan` says.
pub fn parse_python(
    files: &[Loaded],
    which: &[usize],
    plan: &mut Plan<'_>,
    threads: usize,
) -> Vec<FileFacts> {
    let jobs: Vec<Option<Vec<tree_sitter::Range>>> =
        which.iter().map(|&i| plan.ranges(i)).collect();
    let out = parallel(which.len(), threads, |k| {
        let f = &files[which[k]];
        let text = f.text.as_deref().unwrap_or_default();
        with_parser(&f.rel, |p| parse_parts(p, &f.rel, text, jobs[k].as_deref()))
    });
    for &i in which {
        plan.mark_parsed(i);
    }
    out
}

/// Parses `ranges` of a file (all of it for `None`). Parts that do not parse cleanly (the
/// statement scanner misread the file, or the file has errors) are parsed again whole, so
/// that a file's facts and errors are never worse than a whole parse's.
fn parse_parts(
    p: &mut tree_sitter::Parser,
    rel: &str,
    text: &str,
    ranges: Option<&[tree_sitter::Range]>,
) -> FileFacts {
    if let Some(r) = ranges {
        let facts = parse_ranges(p, rel, text, r);
        if !facts.had_errors {
            return facts;
        }
    }
    python::parse(rel, text, p)
}

/// Parses only `ranges` of a file (none: nothing).
fn parse_ranges(
    p: &mut tree_sitter::Parser,
    rel: &str,
    text: &str,
    ranges: &[tree_sitter::Range],
) -> FileFacts {
    if ranges.is_empty() || p.set_included_ranges(ranges).is_err() {
        let _ = p.set_included_ranges(&[]);
        return python::parse(rel, "", p);
    }
    let facts = python::parse(rel, text, p);
    // The parser is reused for the next file, which may want all of its text.
    let _ = p.set_included_ranges(&[]);
    facts
}

/// Parses the Python files `which` as far as `plan` now says: a file parsed before gets the
/// facts of its parts turned on since (parsing again what was parsed is most of a later
/// round's time otherwise), the others are added in `which`'s order.
pub fn parse_more(
    facts: &mut Vec<FileFacts>,
    files: &[Loaded],
    which: &[usize],
    plan: &mut Plan<'_>,
    threads: usize,
) {
    let slots: Vec<Option<usize>> = {
        let at: HashMap<&str, usize> = facts
            .iter()
            .enumerate()
            .map(|(k, f)| (f.path.as_str(), k))
            .collect();
        which
            .iter()
            .map(|&i| at.get(files[i].rel.as_str()).copied())
            .collect()
    };
    // Added parts only to facts that parsed cleanly: a file with errors was parsed whole.
    let added: Vec<Option<Vec<tree_sitter::Range>>> = which
        .iter()
        .zip(&slots)
        .map(|(&i, slot)| slot.filter(|&k| !facts[k].had_errors).and(plan.added(i)))
        .collect();
    let full: Vec<Option<Vec<tree_sitter::Range>>> =
        which.iter().map(|&i| plan.ranges(i)).collect();
    let parsed = parallel(which.len(), threads, |k| {
        let f = &files[which[k]];
        let text = f.text.as_deref().unwrap_or_default();
        with_parser(&f.rel, |p| match &added[k] {
            Some(r) => parse_ranges(p, &f.rel, text, r),
            None => parse_parts(p, &f.rel, text, full[k].as_deref()),
        })
    });
    let mut again = Vec::new();
    for (k, new) in parsed.into_iter().enumerate() {
        match (slots[k], added[k].is_some()) {
            (Some(at), true) => {
                if !add_facts(&mut facts[at], new) {
                    again.push(k);
                }
            }
            (Some(at), false) => facts[at] = new,
            (None, _) => facts.push(new),
        }
    }
    // What did not add up cleanly is parsed as far as the plan says, from scratch.
    let redo = parallel(again.len(), threads, |n| {
        let k = again[n];
        let f = &files[which[k]];
        let text = f.text.as_deref().unwrap_or_default();
        with_parser(&f.rel, |p| parse_parts(p, &f.rel, text, full[k].as_deref()))
    });
    for (k, new) in again.into_iter().zip(redo) {
        if let Some(at) = slots[k] {
            facts[at] = new;
        }
    }
    for &i in which {
        plan.mark_parsed(i);
    }
}

/// Whether lines come in order (strictly: two functions never start on one line).
fn in_order(mut lines: impl Iterator<Item = u32>) -> bool {
    let mut last = 0;
    lines.all(|l| std::mem::replace(&mut last, l) < l)
}

/// Adds the facts of parts of a file parsed alone (`Plan::added`) to those of its parts
/// parsed before, as one parse of them all would have given them: functions and classes in
/// the file's order (the walker gives them in order, so by line), imports together. False,
/// with `old` unchanged, when that cannot be told (errors, one import name bound to two
/// things, facts out of order).
fn add_facts(old: &mut FileFacts, new: FileFacts) -> bool {
    // Every field, so that a new one is not forgotten here.
    let FileFacts {
        path: _,
        module: _,
        imports,
        classes,
        functions,
        had_errors,
    } = new;
    let module_empty = functions
        .first()
        .is_some_and(|m| m.assigns.is_empty() && m.calls.is_empty());
    if had_errors
        || old.had_errors
        || !module_empty
        || imports
            .iter()
            .any(|(k, v)| old.imports.get(k).is_some_and(|w| w != v))
        || !in_order(old.functions.iter().skip(1).map(|f| f.line))
        || !in_order(functions.iter().skip(1).map(|f| f.line))
    {
        return false;
    }
    // A class parsed before comes again with its header only, for its new methods.
    let known = |c: &Option<String>, line: u32, old: &FileFacts| {
        old.functions
            .iter()
            .any(|f| f.name == "<class>" && &f.class == c && f.line == line)
    };
    let mut add = Vec::new();
    for f in functions.into_iter().skip(1) {
        if f.name == "<class>" && known(&f.class, f.line, old) {
            if !(f.assigns.is_empty() && f.calls.is_empty()) {
                return false;
            }
            continue;
        }
        add.push(f);
    }
    old.imports.extend(imports);
    for c in classes {
        if !old
            .classes
            .iter()
            .any(|o| o.name == c.name && o.line == c.line)
        {
            old.classes.push(c);
        }
    }
    old.classes.sort_by_key(|c| c.line);
    old.functions.extend(add);
    old.functions[1..].sort_by_key(|f| f.line);
    true
}

/// Finds the sites of the C/C++/CUDA files `which`.
pub fn parse_cpp(files: &[Loaded], which: &[usize], threads: usize) -> Vec<(Vec<Site>, bool)> {
    parallel(which.len(), threads, |k| {
        let f = &files[which[k]];
        cpp::sites(&f.rel, f.text.as_deref().unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::ranges::{class_body, ranges, statements, Stmt};

    /// Functions (name, class, line, assignments, calls), classes and imports, in order.
    fn summary(f: &FileFacts) -> String {
        let funcs: Vec<String> = f
            .functions
            .iter()
            .map(|x| {
                format!(
                    "{:?}.{}@{} {}/{}",
                    x.class,
                    x.name,
                    x.line,
                    x.assigns.len(),
                    x.calls.len()
                )
            })
            .collect();
        let classes: Vec<String> = f
            .classes
            .iter()
            .map(|c| format!("{}@{}", c.name, c.line))
            .collect();
        let imports: std::collections::BTreeMap<_, _> = f.imports.iter().collect();
        format!("{funcs:#?}\n{classes:?}\n{imports:?}")
    }

    #[test]
    fn added_parts_give_the_facts_of_one_parse() {
        let src = "import torch\n\nclass A:\n    X = f(1)\n\n    def a(self):\n        \
                   self.x = torch.zeros(3)\n\n    def b(self, n):\n        from m import g\n        \
                   return g(n)\n\ndef f(x):\n    return x\n\nclass B:\n    def c(self):\n        \
                   pass\n\ndef h():\n    return torch.empty(2)\n";
        let top = statements(src.as_bytes());
        let (header, body) = class_body(src.as_bytes(), &top[1]).expect("A splits");
        let (b_header, b_body) = class_body(src.as_bytes(), &top[3]).expect("B splits");
        // First A with `a`, and `f`; then `b` (A's header again), B and `h` added.
        let first: Vec<&Stmt> = vec![&top[0], &header, &body[0], &body[1], &top[2]];
        let added: Vec<&Stmt> = vec![&header, &body[2], &b_header, &b_body[0], &top[4]];
        let all: Vec<&Stmt> = vec![
            &top[0], &header, &body[0], &body[1], &body[2], &top[2], &b_header, &b_body[0], &top[4],
        ];
        let mut p = tree_sitter::Parser::new();
        p.set_language(&tree_sitter_python::LANGUAGE.into())
            .expect("python");
        let mut facts = parse_ranges(&mut p, "m.py", src, &ranges(first));
        let more = parse_ranges(&mut p, "m.py", src, &ranges(added));
        assert!(add_facts(&mut facts, more));
        let whole = parse_ranges(&mut p, "m.py", src, &ranges(all));
        assert_eq!(summary(&facts), summary(&whole));
        assert!(summary(&whole).contains("\"g\""));
        // The parser was left reading whole files.
        assert_eq!(
            summary(&python::parse("m.py", src, &mut p)),
            summary(&whole)
        );
    }
}
