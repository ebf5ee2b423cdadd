//! Names as code writes them: import aliases, `from` imports, relative imports, re-exports
//! through a package's `__init__`, module constants of other modules, the size helpers
//! (`cdiv`, `next_power_of_2`, `max`) and conditionals.

use super::*;

#[test]
fn import_aliases() {
    let src = "\
import torch as T
import numpy as np
import numpy
from torch import empty, zeros as z
from multiprocessing import shared_memory
import multiprocessing.shared_memory
from mmap import mmap


def f():
    a = T.empty(10, dtype=T.int16)
    b = empty(10, dtype=T.int8)
    c = z(10)
    d = np.ones(10, dtype=np.float32)
    e = numpy.zeros(10, numpy.uint8)
    g = shared_memory.SharedMemory(create=True, size=100)
    h = multiprocessing.shared_memory.SharedMemory(None, True, 200)
    i = mmap(-1, 300)
";
    let s = scan_of(&[("pkg/a.py", src)]);
    check(site(&s, "f.a"), "20", Method::TorchCpu, Resolution::Full);
    check(site(&s, "f.b"), "10", Method::TorchCpu, Resolution::Full);
    check(site(&s, "f.c"), "40", Method::TorchCpu, Resolution::Full);
    check(site(&s, "f.d"), "40", Method::Numpy, Resolution::Full);
    check(site(&s, "f.e"), "10", Method::Numpy, Resolution::Full);
    check(
        site(&s, "f.g"),
        "100",
        Method::SharedMemory,
        Resolution::Full,
    );
    check(
        site(&s, "f.h"),
        "200",
        Method::SharedMemory,
        Resolution::Full,
    );
    check(site(&s, "f.i"), "300", Method::Mmap, Resolution::Full);
    assert_eq!(site(&s, "f.a").dtype.as_deref(), Some("torch.int16"));
}

#[test]
fn relative_imports_re_exports_and_imported_constants() {
    let utils = "\
import torch

MiB = 1 << 20


def make_buffer(n, dtype):
    return torch.zeros(n, dtype=dtype, pin_memory=True)
";
    let init = "\
from .utils import make_buffer, MiB
from .consts import GiB as GIGA
";
    let consts = "\
GiB = 1 << 30
CHUNK = 2 * GiB
";
    let worker = "\
import torch
from . import consts
from .utils import make_buffer
from pkg.utils import MiB


class Worker:

    def __init__(self, vllm_config):
        self.staging = make_buffer(64 * MiB, torch.uint8)
        self.chunk = bytearray(consts.CHUNK)
";
    let other = "\
import torch
from pkg import make_buffer, MiB, GIGA
from ..utils import MiB as M


def g():
    x = make_buffer(MiB, torch.int32)
    y = bytearray(GIGA // 2)
    z = bytearray(M)
";
    let s = scan_of(&[
        ("pkg/__init__.py", init),
        ("pkg/utils.py", utils),
        ("pkg/consts.py", consts),
        ("pkg/worker.py", worker),
        ("pkg/sub/__init__.py", ""),
        ("pkg/sub/other.py", other),
    ]);
    let st = site(&s, "Worker.staging");
    check(st, "67108864", Method::TorchPinned, Resolution::Full);
    assert_eq!(st.file, "pkg/worker.py");
    assert_eq!(st.via.len(), 1);
    check(
        site(&s, "Worker.chunk"),
        "2147483648",
        Method::Bytes,
        Resolution::Full,
    );
    let x = site(&s, "g.x");
    check(x, "4194304", Method::TorchPinned, Resolution::Full);
    assert_eq!(x.file, "pkg/sub/other.py");
    check(
        site(&s, "g.y"),
        "536870912",
        Method::Bytes,
        Resolution::Full,
    );
    check(site(&s, "g.z"), "1048576", Method::Bytes, Resolution::Full);
}

#[test]
fn size_helpers_and_conditionals() {
    let math = "\
def cdiv(a, b):
    return -(a // -b)


def next_power_of_2(n):
    return 1 << (n - 1).bit_length()
";
    let src = "\
import numpy as np
import torch
from pkg.math_utils import cdiv, next_power_of_2


class Table:

    def __init__(self, vllm_config, use_big: bool):
        config = vllm_config.scheduler_config
        self.block_size = vllm_config.cache_config.block_size
        max_blocks = cdiv(config.max_model_len, self.block_size)
        self.table = np.zeros((config.max_num_seqs, max_blocks), dtype=np.int32)
        self.pow = torch.empty(next_power_of_2(config.max_num_seqs), dtype=torch.int64, device=\"cpu\")
        self.most = np.zeros(max(config.max_num_seqs, 1024), dtype=np.int8)
        n = config.max_num_seqs if use_big else 16
        self.cond = np.zeros(n, dtype=np.int8)
        self.dt = np.zeros(16, dtype=np.int64 if use_big else np.int32)
        self.ceil = np.zeros(config.max_model_len // self.block_size + 1, dtype=np.int8)
";
    let s = scan_of(&[("pkg/math_utils.py", math), ("pkg/table.py", src)]);
    check(
        site(&s, "Table.table"),
        "max_num_seqs × cdiv(max_model_len, block_size) × 4",
        Method::Numpy,
        Resolution::Full,
    );
    check(
        site(&s, "Table.pow"),
        "pow2(max_num_seqs) × 8",
        Method::TorchCpu,
        Resolution::Full,
    );
    check(
        site(&s, "Table.most"),
        "max(max_num_seqs, 1024)",
        Method::Numpy,
        Resolution::Full,
    );
    check(
        site(&s, "Table.cond"),
        "max(max_num_seqs, 16)",
        Method::Numpy,
        Resolution::Full,
    );
    check(site(&s, "Table.dt"), "128", Method::Numpy, Resolution::Full);
    check(
        site(&s, "Table.ceil"),
        "max_model_len ÷ block_size + 1",
        Method::Numpy,
        Resolution::Full,
    );
}
