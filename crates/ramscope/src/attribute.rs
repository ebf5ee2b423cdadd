//! Mapping → category: the rules of `docs/categories.md`, as a table.
//!
//! Every mapping of a process lands in exactly one [`Category`]. The rules look at the
//! mapping's path, permissions and neighbours only; they were checked against real smaps of a
//! CUDA PyTorch process (H100) and a vLLM CPU server.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::proc::smaps::Mapping;

/// Where a mapping's memory belongs. The names are stable: JSON and metrics use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Category {
    /// NVIDIA/CUDA libraries: libcuda, libcudart, cuBLAS(Lt), cuDNN, NCCL, nvrtc…
    #[serde(rename = "code.cuda")]
    CodeCuda,
    /// torch/lib, triton, vLLM's and other ML engines' native extensions.
    #[serde(rename = "code.torch")]
    CodeTorch,
    /// The interpreter and other packages' extension modules.
    #[serde(rename = "code.python")]
    CodePython,
    /// Every other executable or shared library (libc, libstdc++…).
    #[serde(rename = "code.other")]
    CodeOther,
    /// Mapped model files: safetensors, gguf, bin, pt, pth, ckpt.
    #[serde(rename = "weights")]
    Weights,
    /// Other file mappings (locale archive, caches…).
    #[serde(rename = "file.other")]
    FileOther,
    /// `[heap]` and private anonymous memory (malloc arenas, Python objects, CPU tensors).
    #[serde(rename = "heap")]
    Heap,
    /// `[stack]` and thread stacks.
    #[serde(rename = "stack")]
    Stack,
    /// CUDA pinned host memory: shared anonymous memory in a process that maps the GPU driver.
    #[serde(rename = "pinned")]
    Pinned,
    /// POSIX `/dev/shm/*`, memfd, SysV segments.
    #[serde(rename = "shm")]
    Shm,
    /// Shared anonymous memory in a process without a GPU driver mapping.
    #[serde(rename = "shared-anon")]
    SharedAnon,
    /// `/dev/nvidia*` and other GPU driver mappings.
    #[serde(rename = "gpu-driver")]
    GpuDriver,
    /// `[vdso]`, `[vvar]`, `[vsyscall]`.
    #[serde(rename = "kernel")]
    Kernel,
    /// Anything no rule matched (kept ~0 by tests).
    #[serde(rename = "other")]
    Other,
}

impl Category {
    pub const ALL: [Category; 14] = [
        Category::CodeCuda,
        Category::CodeTorch,
        Category::CodePython,
        Category::CodeOther,
        Category::Weights,
        Category::FileOther,
        Category::Heap,
        Category::Stack,
        Category::Pinned,
        Category::Shm,
        Category::SharedAnon,
        Category::GpuDriver,
        Category::Kernel,
        Category::Other,
    ];

    /// The stable name used in JSON, tables and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Category::CodeCuda => "code.cuda",
            Category::CodeTorch => "code.torch",
            Category::CodePython => "code.python",
            Category::CodeOther => "code.other",
            Category::Weights => "weights",
            Category::FileOther => "file.other",
            Category::Heap => "heap",
            Category::Stack => "stack",
            Category::Pinned => "pinned",
            Category::Shm => "shm",
            Category::SharedAnon => "shared-anon",
            Category::GpuDriver => "gpu-driver",
            Category::Kernel => "kernel",
            Category::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// A short phrase for tables and explanations.
    pub fn describe(self) -> &'static str {
        match self {
            Category::CodeCuda => "CUDA/NVIDIA libraries",
            Category::CodeTorch => "torch, triton and ML engine native code",
            Category::CodePython => "Python interpreter and extension modules",
            Category::CodeOther => "other executables and shared libraries",
            Category::Weights => "mapped model weight files",
            Category::FileOther => "other mapped files",
            Category::Heap => "malloc heap, Python objects, CPU tensors",
            Category::Stack => "main and thread stacks",
            Category::Pinned => "CUDA pinned host memory",
            Category::Shm => "POSIX/SysV shared memory and memfd",
            Category::SharedAnon => "shared anonymous memory",
            Category::GpuDriver => "GPU driver mappings",
            Category::Kernel => "vdso/vvar/vsyscall",
            Category::Other => "unmatched",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the classifier needs to know about the whole process, gathered in a first pass.
#[derive(Debug, Clone, Default)]
pub struct ProcessTraits {
    /// The process maps a GPU driver device (`/dev/nvidia*`, `/dev/kfd`): its shared anonymous
    /// memory is pinned host memory (CUDA's `cudaHostAlloc` maps `/dev/zero` shared).
    pub has_gpu_driver: bool,
    /// Files (device, inode) with at least one executable mapping: their read-only and data
    /// segments are code too, whatever the file is called.
    executable_files: Vec<(u64, u64)>,
}

impl ProcessTraits {
    pub fn clear(&mut self) {
        self.has_gpu_driver = false;
        self.executable_files.clear();
    }

    pub fn observe(&mut self, mapping: &Mapping<'_>) {
        if is_gpu_driver_path(mapping.path) {
            self.has_gpu_driver = true;
        }
        if mapping.perms.execute && mapping.inode != 0 {
            self.executable_files.push((mapping.device, mapping.inode));
        }
    }

    /// Call once after observing every mapping.
    pub fn finish(&mut self) {
        self.executable_files.sort_unstable();
        self.executable_files.dedup();
    }

    fn is_executable_file(&self, mapping: &Mapping<'_>) -> bool {
        mapping.inode != 0
            && self
                .executable_files
                .binary_search(&(mapping.device, mapping.inode))
                .is_ok()
    }
}

/// Where the previous mapping sat, for the thread-stack guard-page rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct Neighbour {
    pub end: u64,
    pub anonymous_guard: bool,
}

impl Neighbour {
    pub fn of(mapping: &Mapping<'_>) -> Neighbour {
        Neighbour {
            end: mapping.end,
            anonymous_guard: mapping.path.is_empty() && mapping.perms.is_inaccessible(),
        }
    }
}

/// Classifies one mapping. `previous` is the mapping just below it in the address space.
pub fn classify(
    mapping: &Mapping<'_>,
    previous: Option<Neighbour>,
    traits: &ProcessTraits,
) -> Category {
    let path = strip_deleted(mapping.path);
    if path.is_empty() {
        return classify_anonymous(mapping, previous);
    }
    if path[0] == b'[' {
        return classify_pseudo(path, mapping);
    }
    if path == b"/dev/zero" || path.starts_with(b"/dev/zero ") {
        return shared_anon_kind(mapping, traits);
    }
    if is_gpu_driver_path(path) {
        return Category::GpuDriver;
    }
    if path.starts_with(b"/dev/shm/")
        || path.starts_with(b"/memfd:")
        || path.starts_with(b"/SYSV")
        || path.starts_with(b"/run/shm/")
    {
        return Category::Shm;
    }
    if path.starts_with(b"anon_inode:") {
        // dma-buf, io_uring rings, bpf maps: kernel-backed anonymous objects.
        return if mapping.perms.shared {
            shared_anon_kind(mapping, traits)
        } else {
            Category::Heap
        };
    }
    if is_weights_file(path) {
        return Category::Weights;
    }
    if is_code_file(path, mapping, traits) {
        return classify_code(path);
    }
    if path[0] == b'/' {
        return Category::FileOther;
    }
    Category::Other
}

fn shared_anon_kind(mapping: &Mapping<'_>, traits: &ProcessTraits) -> Category {
    if !mapping.perms.shared {
        // A private mapping of /dev/zero is ordinary anonymous memory.
        return Category::Heap;
    }
    if traits.has_gpu_driver {
        Category::Pinned
    } else {
        Category::SharedAnon
    }
}

fn classify_anonymous(mapping: &Mapping<'_>, previous: Option<Neighbour>) -> Category {
    if mapping.perms.shared {
        // Shared anonymous memory shows as /dev/zero (deleted); a nameless shared one is rare
        // (e.g. a SysV segment without a name on old kernels).
        return Category::SharedAnon;
    }
    if mapping.flags.grows_down {
        return Category::Stack;
    }
    // glibc puts a thread's guard page *below* its stack (an inaccessible anonymous page
    // ending where the stack begins); malloc arenas put their reserve *above* the used part.
    if !mapping.perms.is_inaccessible() {
        if let Some(prev) = previous {
            if prev.anonymous_guard && prev.end == mapping.start && looks_like_stack_size(mapping) {
                return Category::Stack;
            }
        }
    }
    Category::Heap
}

/// Thread stacks are one size for all threads of a process (8 MiB by default, set by
/// `ulimit -s` or `pthread_attr_setstacksize`): between 16 KiB and 1 GiB, page aligned.
fn looks_like_stack_size(mapping: &Mapping<'_>) -> bool {
    let size = mapping.end - mapping.start;
    (16 << 10..=1 << 30).contains(&size) && mapping.perms.read && mapping.perms.write
}

fn classify_pseudo(path: &[u8], mapping: &Mapping<'_>) -> Category {
    match path {
        b"[heap]" => Category::Heap,
        b"[vdso]" | b"[vvar]" | b"[vvar_vclock]" | b"[vsyscall]" | b"[uprobes]" => Category::Kernel,
        _ if path.starts_with(b"[stack") => Category::Stack,
        // Named anonymous memory (PR_SET_VMA_ANON_NAME): private is heap, shared is shm-like.
        _ if path.starts_with(b"[anon_shmem:") => Category::Shm,
        _ if path.starts_with(b"[anon:") => {
            if mapping.perms.shared {
                Category::SharedAnon
            } else {
                Category::Heap
            }
        }
        _ => Category::Other,
    }
}

/// `/dev/nvidiactl`, `/dev/nvidia0`, `/dev/nvidia-uvm`, and AMD's `/dev/kfd` and render nodes.
pub fn is_gpu_driver_path(path: &[u8]) -> bool {
    path.starts_with(b"/dev/nvidia")
        || path.starts_with(b"/dev/kfd")
        || path.starts_with(b"/dev/dri/")
}

fn strip_deleted(path: &[u8]) -> &[u8] {
    path.strip_suffix(b" (deleted)").unwrap_or(path)
}

fn file_name(path: &[u8]) -> &[u8] {
    match memchr::memrchr(b'/', path) {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

const WEIGHT_EXTENSIONS: [&[u8]; 6] = [
    b".safetensors",
    b".gguf",
    b".bin",
    b".pt",
    b".pth",
    b".ckpt",
];

/// Whether a mapped file is model weights, by its name (also used for traced mappings).
pub fn is_weights_file(path: &[u8]) -> bool {
    let name = file_name(path);
    WEIGHT_EXTENSIONS.iter().any(|ext| name.ends_with(ext))
        // ollama stores GGUF blobs by digest, without an extension.
        || (contains(path, b"/models/blobs/sha256-"))
}

/// Shared objects by name (`libfoo.so`, `libfoo.so.1.2`, `x.cpython-312-x86_64-linux-gnu.so`)
/// or any file mapped executable (the main program, plugins without `.so`).
fn is_code_file(path: &[u8], mapping: &Mapping<'_>, traits: &ProcessTraits) -> bool {
    let name = file_name(path);
    mapping.perms.execute
        || name.ends_with(b".so")
        || contains(name, b".so.")
        || traits.is_executable_file(mapping)
}

const CUDA_LIBRARY_PREFIXES: [&[u8]; 24] = [
    b"libcuda.",
    b"libcudart",
    b"libcublas",
    b"libcudnn",
    b"libnccl",
    b"libnvrtc",
    b"libcusparse",
    b"libcufft",
    b"libcurand",
    b"libcusolver",
    b"libnvJitLink",
    b"libnvjitlink",
    b"libnvidia-",
    b"libcupti",
    b"libcufile",
    b"libnvshmem",
    b"libnvToolsExt",
    b"libnvjpeg",
    b"libnvperf",
    b"libcuda-",
    b"libcudadebugger",
    b"libnvblas",
    b"libnvfatbin",
    b"libcheckpoint",
];

/// Python packages whose native code is an ML runtime rather than general Python support,
/// as they appear right after `site-packages/` (a virtualenv in `/opt/torch/` is not torch).
const ML_PACKAGES: [&[u8]; 18] = [
    b"torch/",
    b"triton/",
    b"vllm/",
    b"vllm_flash_attn/",
    b"torchvision/",
    b"torchvision.libs/",
    b"torchaudio/",
    b"xformers/",
    b"flash_attn",
    b"flashinfer",
    b"sgl_kernel/",
    b"sglang/",
    b"intel_extension_for_pytorch/",
    b"bitsandbytes/",
    b"deep_gemm/",
    b"deep_ep/",
    b"llama_cpp/",
    b"torch.libs/",
];

/// The part of a path after its `site-packages/` (or `dist-packages/`) folder.
fn in_python_packages(path: &[u8]) -> Option<&[u8]> {
    for marker in [&b"/site-packages/"[..], b"/dist-packages/"] {
        if let Some(i) = memchr::memmem::rfind(path, marker) {
            return Some(&path[i + marker.len()..]);
        }
    }
    None
}

const ML_LIBRARY_PREFIXES: [&[u8]; 10] = [
    b"libtorch",
    b"libc10",
    b"libtriton",
    b"libggml",
    b"libllama",
    b"libmkl",
    b"libdnnl",
    b"libiomp",
    b"libgomp-",
    b"libshm.so",
];

fn classify_code(path: &[u8]) -> Category {
    let name = file_name(path);
    let in_nvidia_wheel = contains(path, b"/site-packages/nvidia/")
        || contains(path, b"/dist-packages/nvidia/")
        || contains(path, b"/cuda/lib")
        || contains(path, b"/cuda-");
    if in_nvidia_wheel || CUDA_LIBRARY_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Category::CodeCuda;
    }
    let package = in_python_packages(path);
    if package.is_some_and(|p| ML_PACKAGES.iter().any(|m| p.starts_with(m)))
        || contains(path, b"/ollama/")
        || ML_LIBRARY_PREFIXES.iter().any(|p| name.starts_with(p))
        || name.starts_with(b"llama-server")
        || name == b"ollama"
    {
        return Category::CodeTorch;
    }
    if name.starts_with(b"libpython")
        || name.starts_with(b"python")
        || contains(path, b"/lib-dynload/")
        || contains(path, b"/site-packages/")
        || contains(path, b"/dist-packages/")
        || contains(name, b".cpython-")
        || name.ends_with(b".abi3.so")
    {
        return Category::CodePython;
    }
    Category::CodeOther
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::smaps::{Perms, VmFlags};

    fn mapping(path: &'static str, perms: &str) -> Mapping<'static> {
        Mapping {
            start: 0x1000,
            end: 0x2000,
            perms: Perms::parse(perms.as_bytes()),
            offset: 0,
            device: 0,
            inode: 0,
            path: path.as_bytes(),
            flags: VmFlags::default(),
            counters: Default::default(),
        }
    }

    fn cat(path: &'static str, perms: &str, gpu: bool) -> Category {
        classify(
            &mapping(path, perms),
            None,
            &ProcessTraits {
                has_gpu_driver: gpu,
                ..Default::default()
            },
        )
    }

    #[test]
    fn names_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::from_name(c.name()), Some(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.name())
            );
        }
    }

    #[test]
    fn libraries() {
        let sp = "/opt/venv/lib/python3.12/site-packages";
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        assert_eq!(
            cat(
                leak(format!("{sp}/nvidia/cu13/lib/libcublasLt.so.13")),
                "r--p",
                true
            ),
            Category::CodeCuda
        );
        assert_eq!(
            cat(
                "/usr/local/nvidia/lib64/libcuda.so.580.159.04",
                "r-xp",
                true
            ),
            Category::CodeCuda
        );
        assert_eq!(
            cat(
                leak(format!("{sp}/torchvision.libs/libcudart.41118559.so.13")),
                "r--p",
                true
            ),
            Category::CodeCuda
        );
        assert_eq!(
            cat(
                leak(format!("{sp}/torch/lib/libtorch_cuda.so")),
                "r--p",
                true
            ),
            Category::CodeTorch
        );
        assert_eq!(
            cat(leak(format!("{sp}/triton/_C/libtriton.so")), "r-xp", false),
            Category::CodeTorch
        );
        assert_eq!(
            cat(leak(format!("{sp}/vllm/_C.abi3.so")), "r-xp", false),
            Category::CodeTorch
        );
        assert_eq!(
            cat(
                leak(format!(
                    "{sp}/numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so"
                )),
                "r--p",
                false
            ),
            Category::CodePython
        );
        assert_eq!(
            cat("/usr/bin/python3.12", "r-xp", false),
            Category::CodePython
        );
        assert_eq!(
            cat("/usr/lib/x86_64-linux-gnu/libc.so.6", "r--p", false),
            Category::CodeOther
        );
        assert_eq!(cat("/usr/bin/sleep", "r-xp", false), Category::CodeOther);
        // A virtualenv that lives under a folder named torch is not torch itself.
        assert_eq!(
            cat(
                "/opt/torch/.venv/lib/python3.12/site-packages/numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so",
                "r--p",
                true
            ),
            Category::CodePython
        );
        assert_eq!(
            cat(
                "/opt/torch/.venv/lib/python3.12/site-packages/torch/lib/libtorch_cpu.so",
                "r--p",
                true
            ),
            Category::CodeTorch
        );
    }

    #[test]
    fn memory_kinds() {
        assert_eq!(cat("/dev/zero (deleted)", "rw-s", true), Category::Pinned);
        assert_eq!(
            cat("/dev/zero (deleted)", "rw-s", false),
            Category::SharedAnon
        );
        assert_eq!(cat("/dev/nvidiactl", "rw-s", true), Category::GpuDriver);
        assert_eq!(cat("/dev/nvidia-uvm", "rw-s", true), Category::GpuDriver);
        assert_eq!(cat("/dev/shm/psm_5d1b2a", "rw-s", false), Category::Shm);
        assert_eq!(cat("/memfd:buf (deleted)", "rw-s", false), Category::Shm);
        assert_eq!(cat("/SYSV00000000 (deleted)", "rw-s", false), Category::Shm);
        assert_eq!(cat("[heap]", "rw-p", false), Category::Heap);
        assert_eq!(cat("[stack]", "rw-p", false), Category::Stack);
        assert_eq!(cat("[vdso]", "r-xp", false), Category::Kernel);
        assert_eq!(cat("", "rw-p", false), Category::Heap);
        assert_eq!(
            cat("/models/m/model-00001-of-00002.safetensors", "r--p", false),
            Category::Weights
        );
        assert_eq!(
            cat("/root/.ollama/models/blobs/sha256-1a2b", "r--p", false),
            Category::Weights
        );
        assert_eq!(
            cat("/usr/lib/locale/locale-archive", "r--p", false),
            Category::FileOther
        );
    }

    #[test]
    fn thread_stack_needs_a_guard_page_below() {
        let mut stack = mapping("", "rw-p");
        stack.start = 0x10_0000;
        stack.end = 0x10_0000 + (8 << 20) - 4096;
        let guard = Neighbour {
            end: 0x10_0000,
            anonymous_guard: true,
        };
        let traits = &ProcessTraits::default();
        assert_eq!(classify(&stack, Some(guard), traits), Category::Stack);
        let elsewhere = Neighbour {
            end: 0x0f_0000,
            anonymous_guard: true,
        };
        assert_eq!(classify(&stack, Some(elsewhere), traits), Category::Heap);
        assert_eq!(classify(&stack, None, traits), Category::Heap);
    }
}
