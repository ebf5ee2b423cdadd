//! The evaluator on the forms sizes take in real code: augmented assignments, keyword-only
//! parameters, `*args` of unknown length, `x or default`, float literals, environment
//! settings read through `os`, Python types as dtypes, class constants, configuration
//! objects the scan cannot follow, differences that cancel.

use super::*;

#[test]
fn assignments_that_change_a_value() {
    let src = "\
import numpy as np


def f(vllm_config):
    n = vllm_config.scheduler_config.max_num_seqs
    n *= 2
    n += 1
    a = np.zeros(n, dtype=np.int8)
    m = int(1e6)
    b = np.zeros(m, dtype=np.int8)
    k = 1024
    k <<= 2
    k //= 8
    c = np.zeros(k, dtype=np.int8)
";
    let s = scan_of(&[("pkg/f.py", src)]);
    check(
        site(&s, "f.a"),
        "max_num_seqs × 2 + 1",
        Method::Numpy,
        Resolution::Full,
    );
    check(site(&s, "f.b"), "1000000", Method::Numpy, Resolution::Full);
    check(site(&s, "f.c"), "512", Method::Numpy, Resolution::Full);
}

#[test]
fn keyword_only_parameters_and_star_arguments() {
    let src = "\
import torch


def buf(*size, dtype=torch.int8, pin_memory=False):
    return torch.empty(*size, dtype=dtype, pin_memory=pin_memory)


def kw(n, *, dtype=torch.int16):
    return torch.empty(n, dtype=dtype)


def user(vllm_config, shape):
    cfg = vllm_config.scheduler_config
    a = buf(cfg.max_num_seqs, 4)
    b = kw(cfg.max_num_seqs, torch.int64)
    c = buf(*shape)
    d = buf(cfg.max_num_seqs, *shape)
";
    let s = scan_of(&[("pkg/k.py", src)]);
    // The defaults of parameters after `*size` hold: they are never positional.
    let a = site(&s, "user.a");
    check(a, "max_num_seqs × 4", Method::TorchCpu, Resolution::Full);
    assert_eq!(a.pinned, Pinned::No);
    // After a bare `*` too (the call's extra positional argument is a mistake Python would
    // reject; the scan keeps the default). One caller: the site is the allocation.
    check(
        site(&s, "kw.return"),
        "max_num_seqs × 2",
        Method::TorchCpu,
        Resolution::Full,
    );
    // A shape of unknown length is named by the argument.
    check(
        site(&s, "user.c"),
        "shape?",
        Method::TorchCpu,
        Resolution::Partial,
    );
    check(
        site(&s, "user.d"),
        "max_num_seqs × shape?",
        Method::TorchCpu,
        Resolution::Partial,
    );
}

#[test]
fn positional_arguments_after_a_star_of_unknown_length() {
    let src = "\
from multiprocessing import shared_memory


class Ring:

    def __init__(self, n_reader, max_chunk_bytes, max_chunks):
        self.total = (max_chunk_bytes + 1 + n_reader) * max_chunks
        self.shm = shared_memory.SharedMemory(create=True, size=self.total)


def attach(handle):
    ring = Ring(*handle.buffer_handle)


def create():
    ring = Ring(2, 1024, 8)
";
    let s = scan_of(&[("pkg/ring.py", src)]);
    let shm: Vec<_> = s
        .sites
        .iter()
        .filter(|x| x.method == Method::SharedMemory)
        .collect();
    let mut formulas: Vec<String> = shm.iter().map(|x| x.formula.to_string()).collect();
    formulas.sort();
    assert_eq!(
        formulas,
        [
            "(handle.buffer_handle[1] + handle.buffer_handle[0] + 1) × handle.buffer_handle[2]",
            "8216"
        ],
        "{}",
        listing(&s)
    );
}

#[test]
fn defaults_environment_settings_and_python_types() {
    let src = "\
import os

import numpy as np
import torch


class Pool:

    BLOCK = 4096

    def __init__(self, size=None, cache_config=None):
        size = size or 1024
        self.a = np.zeros(size, dtype=np.int8)
        self.b = np.zeros(int(os.getenv(\"VLLM_POOL_BLOCKS\", \"16\")), dtype=np.int8)
        self.c = np.zeros(os.environ[\"VLLM_POOL_EXTRA\"], dtype=np.int8)
        self.d = torch.zeros(8, dtype=float)
        self.e = torch.zeros(8, dtype=None)
        self.f = np.zeros(8, dtype=None)
        self.g = np.zeros(Pool.BLOCK, dtype=bool)
        self.h = bytearray(self.BLOCK * 2)

    @classmethod
    def make(cls):
        x = bytearray(cls.BLOCK)
";
    let s = scan_of(&[("pkg/pool.py", src)]);
    // Nobody constructs `Pool`: `size` is a parameter, `or` gives the larger of the two.
    check(
        site(&s, "Pool.a"),
        "max(size?, 1024)",
        Method::Numpy,
        Resolution::Partial,
    );
    check(
        site(&s, "Pool.b"),
        "VLLM_POOL_BLOCKS",
        Method::Numpy,
        Resolution::Full,
    );
    check(
        site(&s, "Pool.c"),
        "VLLM_POOL_EXTRA",
        Method::Numpy,
        Resolution::Full,
    );
    let d = site(&s, "Pool.d");
    check(d, "64", Method::TorchCpu, Resolution::Full);
    assert_eq!(d.dtype.as_deref(), Some("float"));
    check(site(&s, "Pool.e"), "32", Method::TorchCpu, Resolution::Full);
    check(site(&s, "Pool.f"), "64", Method::Numpy, Resolution::Full);
    check(site(&s, "Pool.g"), "4096", Method::Numpy, Resolution::Full);
    check(site(&s, "Pool.h"), "8192", Method::Bytes, Resolution::Full);
    check(
        site(&s, "Pool.make.x"),
        "4096",
        Method::Bytes,
        Resolution::Full,
    );
}

#[test]
fn configuration_objects_the_scan_cannot_follow() {
    let src = "\
import torch


class Runner:

    def __init__(self, vllm_config, use_spec):
        self.max_num_reqs = vllm_config.scheduler_config.max_num_seqs
        n = self.spec_config.num_speculative_tokens if use_spec else self.default_tokens
        self.a = torch.zeros(self.max_num_reqs, n, dtype=torch.int32, device=\"cpu\")


class Worker:

    def __init__(self):
        self.runner = Runner(self.vllm_config, True)
";
    let s = scan_of(&[("pkg/runner.py", src)]);
    // `self.vllm_config` is never assigned in `Worker`: its name says it is a
    // configuration, and its attributes are configuration names.
    check(
        site(&s, "Runner.a"),
        "max_num_seqs × max(num_speculative_tokens, self.default_tokens) × 4",
        Method::TorchCpu,
        Resolution::Partial,
    );
}

#[test]
fn differences_that_cancel_and_files_mapped_whole() {
    let src = "\
import mmap

import numpy as np
import torch


def f(vllm_config, start, f):
    n = vllm_config.scheduler_config.max_num_seqs
    a = np.arange(start, start + n)
    b = torch.arange(2 * start + 2, 2 * start + n + 10)
    c = mmap.mmap(f.fileno(), 0)
    d = torch.from_file(\"x.bin\", True, n, dtype=torch.float16)
    e = torch.UntypedStorage.from_file(\"x.bin\", True, n)
    g = np.zeros(n % 7 | 1, dtype=np.int8)
";
    let s = scan_of(&[("pkg/f.py", src)]);
    check(
        site(&s, "f.a"),
        "max_num_seqs × 8",
        Method::Numpy,
        Resolution::Full,
    );
    check(
        site(&s, "f.b"),
        "(max_num_seqs + 8) × 8",
        Method::TorchCpu,
        Resolution::Full,
    );
    let c = site(&s, "f.c");
    assert_eq!((c.method, c.resolution), (Method::Mmap, Resolution::None));
    check(
        site(&s, "f.d"),
        "max_num_seqs × 2",
        Method::FileStorage,
        Resolution::Full,
    );
    check(
        site(&s, "f.e"),
        "max_num_seqs",
        Method::FileStorage,
        Resolution::Full,
    );
    // An operator with no size meaning is kept as written.
    let g = site(&s, "f.g");
    assert_eq!(g.formula.to_string(), "n % 7 | 1");
    assert_eq!(g.resolution, Resolution::Partial);
}

#[test]
fn comments_and_line_continuations_are_not_part_of_expressions() {
    let src = "\
import torch


def f(vllm_config, fp64, return_lse):
    cfg = vllm_config.scheduler_config
    a = torch.zeros(
        (cfg.max_num_seqs,  # one row per request
         # and one column per token
         cfg.max_model_len),
        dtype=torch.int32,
    )
    dt = vllm_config.model_config.dtype if vllm_config.model_config \\
        else None
    b = torch.empty(cfg.max_num_seqs, dtype=dt)
    c = torch.empty(cfg.max_num_seqs, dtype=torch.float64 if fp64 else torch.float16)
    d = torch.empty(cfg.max_num_seqs, dtype=torch.float64 if fp64 else vllm_config.model_config.dtype)
    shape = (cfg.max_num_seqs, 8) if return_lse else (1, 1)
    e = torch.empty(shape, dtype=torch.int8)
    g = h = torch.empty(3, dtype=torch.int8)
";
    let s = scan_of(&[("pkg/f.py", src)]);
    let a = site(&s, "f.a");
    check(
        a,
        "max_num_seqs × max_model_len × 4",
        Method::TorchCpu,
        Resolution::Full,
    );
    assert_eq!(a.shape, "(cfg.max_num_seqs, cfg.max_model_len)");
    check(
        site(&s, "f.b"),
        "max_num_seqs × dtype",
        Method::TorchCpu,
        Resolution::Full,
    );
    let c = site(&s, "f.c");
    check(c, "max_num_seqs × 8", Method::TorchCpu, Resolution::Full);
    assert_eq!(c.dtype.as_deref(), Some("torch.float64 | torch.float16"));
    check(
        site(&s, "f.d"),
        "max_num_seqs × max(dtype, 8)",
        Method::TorchCpu,
        Resolution::Full,
    );
    check(
        site(&s, "f.e"),
        "max(max_num_seqs, 1) × 8",
        Method::TorchCpu,
        Resolution::Full,
    );
    // `g = h = ...` is one allocation, named by its first target.
    check(site(&s, "f.g"), "3", Method::TorchCpu, Resolution::Full);
    no_site(&s, "f.h");
}

#[test]
fn attributes_set_in_several_methods() {
    let src = "\
import numpy as np


class Worker:

    def __init__(self, vllm_config):
        self.num_regions = 0
        self.block_size = vllm_config.cache_config.block_size
        self.scratch = None

    def register_kv_caches(self, kv_caches):
        self.num_regions = len(kv_caches) * 2
        self.block_size = 16
        a = np.zeros(self.block_size, dtype=np.int8)

    def read(self):
        ids = np.arange(self.num_regions)
        b = np.zeros(self.block_size, dtype=np.int8)
        c = np.zeros(self.scratch, dtype=np.int8)
";
    let s = scan_of(&[("pkg/worker.py", src)]);
    // The placeholder `0` of `__init__` is not the attribute's value once it is set.
    check(
        site(&s, "Worker.read.ids"),
        "len(kv_caches) × 16",
        Method::Numpy,
        Resolution::Partial,
    );
    // A method's own earlier assignment is the value at that line.
    check(
        site(&s, "Worker.register_kv_caches.a"),
        "16",
        Method::Numpy,
        Resolution::Full,
    );
    // Elsewhere `__init__` gives the value.
    check(
        site(&s, "Worker.read.b"),
        "block_size",
        Method::Numpy,
        Resolution::Full,
    );
    // A placeholder nobody replaces stays what it is.
    check(
        site(&s, "Worker.read.c"),
        "0",
        Method::Numpy,
        Resolution::Full,
    );
}

#[test]
fn sizes_through_helpers_that_return_them() {
    let utils = "\
def get_pack_factor(num_bits):
    assert 32 % num_bits == 0
    return 32 // num_bits


def padded(n, pad=64):
    if n is None:
        return None
    return (n + pad - 1) // pad * pad


def use_pinned():
    return is_pin_memory_available() and not in_wsl()
";
    let src = "\
import numpy as np
import torch
from pkg.utils import get_pack_factor, padded, use_pinned


class Packer:

    def __init__(self, vllm_config, num_bits):
        self.hidden = vllm_config.model_config.get_hidden_size()
        self.a = np.zeros(self.hidden // get_pack_factor(4), dtype=np.int32)
        self.b = torch.zeros(padded(self.hidden), dtype=torch.int8, pin_memory=use_pinned())
        self.c = np.zeros(self._rows(), dtype=np.int8)

    def _rows(self):
        return self.hidden * 2
";
    let s = scan_of(&[("pkg/utils.py", utils), ("pkg/packer.py", src)]);
    check(
        site(&s, "Packer.a"),
        "hidden_size ÷ 8 × 4",
        Method::Numpy,
        Resolution::Full,
    );
    let b = site(&s, "Packer.b");
    check(
        b,
        "(hidden_size + 63) ÷ 64 × 64",
        Method::TorchCpu,
        Resolution::Full,
    );
    assert_eq!(b.pinned, Pinned::When("use_pinned()".into()));
    check(
        site(&s, "Packer.c"),
        "hidden_size × 2",
        Method::Numpy,
        Resolution::Full,
    );
}

#[test]
fn a_counter_is_not_a_size() {
    let src = "\
import numpy as np


class Buffer:

    def __init__(self, rate):
        self.size = 120 * rate
        self.filled = 0

    def write(self, audio):
        end = self.filled + len(audio)
        buf = np.empty(max(self.size * 2, end), dtype=np.float32)
        self.filled += len(audio)

    def consume(self, n):
        self.filled -= n
";
    let s = scan_of(&[("pkg/buffer.py", src)]);
    check(
        site(&s, "Buffer.write.buf"),
        "max(rate? × 240, len(audio)) × 4",
        Method::Numpy,
        Resolution::Partial,
    );
}

#[test]
fn items_of_known_shapes() {
    let src = "\
import numpy as np


class Tables:

    def __init__(self, vllm_config, block_sizes):
        cfg = vllm_config.scheduler_config
        self.block_sizes = block_sizes
        shape = (cfg.max_num_seqs, 4, cfg.max_model_len)
        self.a = np.zeros((len(self.block_sizes), cfg.max_num_seqs), dtype=np.int32)
        self.b = np.zeros(shape[-1], dtype=np.int8)
        self.c = np.zeros(shape[1], dtype=np.int8)


def build(vllm_config):
    t = Tables(vllm_config, [vllm_config.cache_config.block_size, 16])
";
    let s = scan_of(&[("pkg/tables.py", src)]);
    // A list's length is not counted (lists grow by appends the scan does not follow).
    check(
        site(&s, "Tables.a"),
        "len(self.block_sizes) × max_num_seqs × 4",
        Method::Numpy,
        Resolution::Partial,
    );
    check(
        site(&s, "Tables.b"),
        "max_model_len",
        Method::Numpy,
        Resolution::Full,
    );
    check(site(&s, "Tables.c"), "4", Method::Numpy, Resolution::Full);
}

#[test]
fn an_empty_list_has_no_known_length() {
    let src = "\
import numpy as np


def f(items):
    rows = []
    for x in items:
        rows.append(x)
    a = np.zeros(len(rows) + 1, dtype=np.int32)
";
    let s = scan_of(&[("pkg/f.py", src)]);
    check(
        site(&s, "f.a"),
        "(len(rows) + 1) × 4",
        Method::Numpy,
        Resolution::Partial,
    );
}

#[test]
fn an_attribute_set_then_scaled_in_one_method() {
    let src = "\
import numpy as np


class W:

    def __init__(self):
        self.num_regions = 0

    def register(self, kv_caches, split):
        self.num_regions = len(kv_caches)
        if split:
            self.num_regions *= 2

    def read(self):
        region_ids = np.arange(self.num_regions)
";
    let s = scan_of(&[("pkg/w.py", src)]);
    check(
        site(&s, "W.read.region_ids"),
        "len(kv_caches) × 16",
        Method::Numpy,
        Resolution::Partial,
    );
}

#[test]
fn a_counter_through_a_local_is_not_a_size() {
    let src = "\
import numpy as np


class Buffer:

    def __init__(self, rate):
        self.size = 120 * rate
        self.filled = 0

    def write(self, audio):
        end = self.filled + len(audio)
        buf = np.empty(max(self.size * 2, end), dtype=np.float32)
        self.filled = end
";
    let s = scan_of(&[("pkg/buffer.py", src)]);
    check(
        site(&s, "Buffer.write.buf"),
        "max(rate? × 240, len(audio)) × 4",
        Method::Numpy,
        Resolution::Partial,
    );
}
