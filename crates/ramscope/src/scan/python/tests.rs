//! Python facts and the resolver on small trees written for the test: each test writes a
//! few files into a temporary directory, scans it with [`crate::scan::scan`] and checks the
//! sites (file, line, anchor, method, pinning, formula as printed, resolution, the calls in
//! between).

mod aliases;
mod bad_input;
mod evaluation;
mod rules;
mod wrappers;

use std::path::Path;

use crate::scan::{scan, Method, Options, Pinned, Resolution, Scan, Site};

/// Writes `files` (path relative to the root, contents) under a new temporary directory.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    dir
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (rel, text) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// Scans a tree made of `files`.
fn scan_of(files: &[(&str, &str)]) -> Scan {
    let dir = tree(files);
    scan(dir.path(), &Options::default()).unwrap()
}

/// The one site with this anchor (the test fails listing every site when there is none, or
/// more than one).
fn site<'a>(s: &'a Scan, anchor: &str) -> &'a Site {
    let found: Vec<&Site> = s.sites.iter().filter(|x| x.anchor == anchor).collect();
    assert_eq!(found.len(), 1, "anchor {anchor} in:\n{}", listing(s));
    found[0]
}

fn no_site(s: &Scan, anchor: &str) {
    assert!(
        s.sites.iter().all(|x| x.anchor != anchor),
        "unexpected {anchor} in:\n{}",
        listing(s)
    );
}

/// The sites of a scan, one a line, for failure messages.
fn listing(s: &Scan) -> String {
    s.sites
        .iter()
        .map(|x| {
            let via: Vec<String> = x
                .via
                .iter()
                .map(|h| format!("{}:{} {}", h.file, h.line, h.callee))
                .collect();
            format!(
                "  {}:{} {} [{} {:?}] {} ({:?}) paths={} via [{}]\n",
                x.file,
                x.line,
                x.anchor,
                x.method.name(),
                x.pinned,
                x.formula,
                x.resolution,
                x.paths,
                via.join(" > ")
            )
        })
        .collect()
}

/// The line (1-based) of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> u32 {
    let i = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the test's source"));
    u32::try_from(i + 1).unwrap()
}

/// Checks the things most tests check: formula as printed, method, resolution.
#[track_caller]
fn check(s: &Site, formula: &str, method: Method, resolution: Resolution) {
    assert_eq!(s.formula.to_string(), formula, "formula of {}", s.anchor);
    assert_eq!(s.method, method, "method of {}", s.anchor);
    assert_eq!(s.resolution, resolution, "resolution of {}", s.anchor);
}

#[test]
fn module_names_and_relative_imports() {
    use super::module_name;
    assert_eq!(module_name("vllm/utils/__init__.py"), "vllm.utils");
    assert_eq!(
        module_name("vllm/v1/worker/gpu_input_batch.py"),
        "vllm.v1.worker.gpu_input_batch"
    );
    assert_eq!(module_name("setup.py"), "setup");
    assert_eq!(module_name("__init__.py"), "__init__");
}

#[test]
fn a_size_through_a_constructor_and_the_owner_s_config() {
    let batch = "\
import numpy as np
import torch


class InputBatch:

    def __init__(self, max_num_reqs: int, max_model_len: int):
        self.max_num_reqs = max_num_reqs
        self.token_ids = torch.zeros(
            (max_num_reqs, max_model_len),
            dtype=torch.int32,
            device=\"cpu\",
        )
        self.num_tokens = np.zeros(max_num_reqs, dtype=np.int32)
        self.scratch = np.zeros(max_num_reqs)
";
    let runner = "\
from pkg.worker.input_batch import InputBatch


class Runner:

    def __init__(self, vllm_config):
        scheduler_config = vllm_config.scheduler_config
        self.model_config = vllm_config.model_config
        self.max_num_reqs = scheduler_config.max_num_seqs
        self.input_batch = InputBatch(
            max_num_reqs=self.max_num_reqs,
            max_model_len=self.model_config.max_model_len,
        )
";
    let s = scan_of(&[
        ("pkg/__init__.py", ""),
        ("pkg/worker/__init__.py", ""),
        ("pkg/worker/input_batch.py", batch),
        ("pkg/worker/runner.py", runner),
    ]);
    let t = site(&s, "InputBatch.token_ids");
    check(
        t,
        "max_num_seqs × max_model_len × 4",
        Method::TorchCpu,
        Resolution::Full,
    );
    assert_eq!(t.file, "pkg/worker/input_batch.py");
    assert_eq!(t.line, line_of(batch, "self.token_ids ="));
    assert_eq!(t.scope, "InputBatch.__init__");
    assert_eq!(t.pinned, Pinned::No);
    assert_eq!(t.dtype.as_deref(), Some("torch.int32"));
    assert_eq!(t.shape, "(max_num_reqs, max_model_len)");
    assert!(t.via.is_empty(), "{:?}", t.via);
    assert_eq!(t.paths, 1);
    let n = site(&s, "InputBatch.num_tokens");
    check(n, "max_num_seqs × 4", Method::Numpy, Resolution::Full);
    assert_eq!(n.dtype.as_deref(), Some("numpy.int32"));
    // numpy's default dtype is float64.
    let f = site(&s, "InputBatch.scratch");
    check(f, "max_num_seqs × 8", Method::Numpy, Resolution::Full);
    assert_eq!(s.sites.len(), 3, "{}", listing(&s));
    assert!(s.skipped.is_empty(), "{:?}", s.skipped);
}
