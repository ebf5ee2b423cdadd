//! Which frame names an allocation site, and which frames a flame graph shows.
//!
//! The frame that says where memory went is the innermost one that is the program's own:
//! in a Python process the innermost Python line; else the innermost native frame outside
//! the allocator (libc's malloc, operator new, CPython's PyMem/_PyObject allocators, CUDA's
//! pinned allocation entry points) and outside the tracer itself.

use serde::Serialize;

use super::symbolize::NativeFrame;

/// One Python frame, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PythonFrame {
    pub file: String,
    pub function: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

impl PythonFrame {
    /// `vllm/v1/worker/gpu_input_batch.py:131 in __init__`.
    pub fn label(&self) -> String {
        match self.line {
            Some(line) => format!(
                "{}:{line} in {}",
                short_python_path(&self.file),
                self.function
            ),
            None => format!("{} in {}", short_python_path(&self.file), self.function),
        }
    }
}

/// A module's path from its package down: everything up to `site-packages/` (or
/// `dist-packages/`) says only where the environment is.
pub fn short_python_path(path: &str) -> &str {
    for marker in ["/site-packages/", "/dist-packages/"] {
        if let Some(i) = path.rfind(marker) {
            return &path[i + marker.len()..];
        }
    }
    path
}

/// Modules whose frames are the allocator or the tracer, never the allocation's reason.
const SKIPPED_MODULES: [&str; 8] = [
    "libc.so",
    "libc-",
    "libstdc++",
    "libramscope_trace",
    "ld-linux",
    "libpthread",
    "libgcc_s",
    "libcuda.so",
];

/// Functions that allocate on behalf of their caller.
const SKIPPED_FUNCTIONS: [&str; 17] = [
    "malloc",
    "calloc",
    "realloc",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "mmap",
    "mmap64",
    "mremap",
    "cudaHostAlloc",
    "cudaMallocHost",
    "cudaHostRegister",
    "cuMemHostAlloc",
    "cuMemAllocHost",
    "cuMemHostRegister",
];

/// Prefixes of allocator functions (C++ `operator new[]`, CPython's allocators).
const SKIPPED_PREFIXES: [&str; 6] = [
    "operator new",
    "PyMem_",
    "_PyMem_",
    "PyObject_Malloc",
    "PyObject_Calloc",
    "_PyObject_",
];

/// Whether a native frame is the allocator's or the tracer's.
pub fn is_allocator_frame(f: &NativeFrame) -> bool {
    let module = f.module_name();
    if SKIPPED_MODULES.iter().any(|m| module.starts_with(m)) {
        return true;
    }
    match f.function.as_deref() {
        Some(name) => {
            let bare = name.split('@').next().unwrap_or(name);
            SKIPPED_FUNCTIONS
                .iter()
                .any(|s| bare == *s || bare.strip_prefix(s).is_some_and(|r| r.starts_with("_v")))
                || SKIPPED_PREFIXES.iter().any(|p| bare.starts_with(p))
        }
        None => false,
    }
}

/// The site's name: its innermost Python frame, else its innermost native frame that is
/// not the allocator's, else its innermost frame at all.
pub fn site_label(python: &[PythonFrame], native: &[NativeFrame]) -> String {
    if let Some(p) = python.first() {
        return p.label();
    }
    native
        .iter()
        .find(|f| !is_allocator_frame(f))
        .or(native.first())
        .map_or_else(|| "(no stack)".to_string(), NativeFrame::label)
}

/// The native frames a flame graph shows above the Python ones, outermost first: those
/// between the allocator and the interpreter's evaluation loop (the C code the innermost
/// Python line called). Without Python frames: every frame outside the allocator.
pub fn flame_native(python: &[PythonFrame], native: &[NativeFrame]) -> Vec<String> {
    let own = native.iter().skip_while(|f| is_allocator_frame(f));
    let kept: Vec<&NativeFrame> = if python.is_empty() {
        own.collect()
    } else {
        own.take_while(|f| {
            !f.function
                .as_deref()
                .is_some_and(|n| n.starts_with("_PyEval_EvalFrame") || n.starts_with("PyEval_"))
        })
        .collect()
    };
    kept.iter().rev().map(|f| f.label()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native(function: &str, module: &str) -> NativeFrame {
        NativeFrame {
            function: (!function.is_empty()).then(|| function.to_string()),
            file: None,
            line: None,
            module: module.into(),
            offset: 0x40,
        }
    }

    fn py(file: &str, function: &str, line: u32) -> PythonFrame {
        PythonFrame {
            file: file.into(),
            function: function.into(),
            line: Some(line),
        }
    }

    #[test]
    fn python_frames_name_the_site() {
        let p = [
            py(
                "/x/site-packages/vllm/v1/worker/gpu_input_batch.py",
                "__init__",
                131,
            ),
            py("/x/site-packages/vllm/v1/engine/core.py", "run", 9),
        ];
        let n = [native("malloc", "/lib/libc.so.6")];
        assert_eq!(
            site_label(&p, &n),
            "vllm/v1/worker/gpu_input_batch.py:131 in __init__"
        );
    }

    #[test]
    fn the_allocator_is_skipped() {
        let n = [
            native("malloc", "/usr/lib/libramscope_trace.so"),
            native("operator new", "/usr/lib/libstdc++.so.6"),
            native("_PyObject_Malloc", "/usr/bin/python3.11"),
            native("PyMem_RawMalloc", "/usr/bin/python3.11"),
            native("at::native::empty_cpu", "/t/libtorch_cpu.so"),
            native("main", "/usr/bin/python3.11"),
        ];
        assert_eq!(site_label(&[], &n), "at::native::empty_cpu");
        let only_alloc = [native("malloc", "/lib/libc.so.6")];
        assert_eq!(site_label(&[], &only_alloc), "malloc");
        assert_eq!(site_label(&[], &[]), "(no stack)");
        let unnamed = [native("", "/t/libfoo.so")];
        assert_eq!(site_label(&[], &unnamed), "libfoo.so+0x40");
        assert!(is_allocator_frame(&native(
            "cuMemHostAlloc_v2",
            "/x/libcudart.so"
        )));
        assert!(!is_allocator_frame(&native("mallocator", "/x/libx.so")));
    }

    #[test]
    fn flame_frames_stop_at_the_interpreter() {
        let n = [
            native("malloc", "/lib/libc.so.6"),
            native("at::empty_cpu", "/t/libtorch_cpu.so"),
            native("THPVariable_zeros", "/t/libtorch_python.so"),
            native("_PyEval_EvalFrameDefault", "/usr/bin/python3.11"),
            native("main", "/usr/bin/python3.11"),
        ];
        let p = [py("/a.py", "f", 1)];
        assert_eq!(flame_native(&p, &n), ["THPVariable_zeros", "at::empty_cpu"]);
        assert_eq!(
            flame_native(&[], &n),
            [
                "main",
                "_PyEval_EvalFrameDefault",
                "THPVariable_zeros",
                "at::empty_cpu"
            ]
        );
    }
}
