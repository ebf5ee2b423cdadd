//! Which calls allocate host memory, and their sizes: torch factories, numpy, bytes, mmap,
//! shared memory, pinning, run-time devices, copies to the CPU.

use super::*;

/// One module of allocations whose sizes are module constants or literals.
const ALLOCS: &str = "\
import mmap
import os
from multiprocessing import shared_memory

import numpy as np
import torch

N = 1024
SIZE = 4 << 20


class Store:

    def __init__(self, name):
        self.raw = bytearray(1 << 20)
        self.copy = bytearray(b\"abc\")
        self.mapped = mmap.mmap(-1, SIZE)
        self.shm = shared_memory.SharedMemory(create=True, size=SIZE)
        self.attached = shared_memory.SharedMemory(name=name, create=False)
        self.attached2 = shared_memory.SharedMemory(name)
        self.ints = np.zeros(N, dtype=np.int32)
        self.floats = np.empty((N, 2))
        self.filled = np.full(N, 7, np.int16)
        self.on_cuda = torch.zeros(N, device=\"cuda\")
        self.on_cuda0 = torch.zeros(N, device=\"cuda:0\")
        self.default = torch.empty(N, N, dtype=torch.bfloat16)
        self.sized = torch.ones(size=(N, 3), dtype=torch.int64)
        self.steps = torch.arange(N)
        self.from_data = torch.tensor([1, 2, 3])
        self.fd = os.memfd_create(name)
";

#[test]
fn literal_sizes_and_which_calls_allocate() {
    let s = scan_of(&[("pkg/store.py", ALLOCS)]);
    let at = |needle: &str| line_of(ALLOCS, needle);
    let raw = site(&s, "Store.raw");
    check(raw, "1048576", Method::Bytes, Resolution::Full);
    assert_eq!(raw.line, at("self.raw"));
    assert_eq!(raw.shape, "1 << 20");
    // A copy of data is not an allocation the rules size.
    no_site(&s, "Store.copy");
    check(
        site(&s, "Store.mapped"),
        "4194304",
        Method::Mmap,
        Resolution::Full,
    );
    let shm = site(&s, "Store.shm");
    check(shm, "4194304", Method::SharedMemory, Resolution::Full);
    assert_eq!(shm.line, at("self.shm"));
    // Attaching to a segment someone else created is not this process's allocation.
    no_site(&s, "Store.attached");
    no_site(&s, "Store.attached2");
    check(
        site(&s, "Store.ints"),
        "4096",
        Method::Numpy,
        Resolution::Full,
    );
    check(
        site(&s, "Store.floats"),
        "16384",
        Method::Numpy,
        Resolution::Full,
    );
    let filled = site(&s, "Store.filled");
    check(filled, "2048", Method::Numpy, Resolution::Full);
    assert_eq!(filled.dtype.as_deref(), Some("numpy.int16"));
    no_site(&s, "Store.on_cuda");
    no_site(&s, "Store.on_cuda0");
    let d = site(&s, "Store.default");
    check(d, "2097152", Method::TorchCpu, Resolution::Full);
    assert_eq!(d.dtype.as_deref(), Some("torch.bfloat16"));
    check(
        site(&s, "Store.sized"),
        "24576",
        Method::TorchCpu,
        Resolution::Full,
    );
    let steps = site(&s, "Store.steps");
    check(steps, "8192", Method::TorchCpu, Resolution::Full);
    assert_eq!(steps.dtype.as_deref(), Some("torch.int64"));
    let data = site(&s, "Store.from_data");
    assert_eq!(data.method, Method::TorchCpu);
    assert_eq!(data.resolution, Resolution::None);
    let fd = site(&s, "Store.fd");
    assert_eq!(fd.method, Method::SharedMemory);
    assert_eq!(fd.resolution, Resolution::None);
}

#[test]
fn pinning_flags() {
    let src = "\
import torch
from pkg.platform import is_pin_memory_available


class Bufs:

    def __init__(self, n):
        self.n = 4096
        self.pinned = torch.zeros(self.n, dtype=torch.int32, pin_memory=True)
        self.maybe = torch.zeros(self.n, dtype=torch.int32, pin_memory=is_pin_memory_available())
        self.never = torch.zeros(self.n, dtype=torch.int32, pin_memory=False)
        self.copied = self.never.pin_memory()
";
    let platform = "\
def is_pin_memory_available():
    return True
";
    let s = scan_of(&[("pkg/bufs.py", src), ("pkg/platform.py", platform)]);
    let p = site(&s, "Bufs.pinned");
    check(p, "16384", Method::TorchPinned, Resolution::Full);
    assert_eq!(p.pinned, Pinned::Yes);
    let m = site(&s, "Bufs.maybe");
    assert_eq!(m.pinned, Pinned::When("is_pin_memory_available()".into()));
    assert_eq!(m.formula.to_string(), "16384");
    let n = site(&s, "Bufs.never");
    check(n, "16384", Method::TorchCpu, Resolution::Full);
    assert_eq!(n.pinned, Pinned::No);
    let c = site(&s, "Bufs.copied");
    assert_eq!(c.method, Method::TorchPinned);
    assert_eq!(c.pinned, Pinned::Yes);
    assert_eq!(c.resolution, Resolution::None);
}

#[test]
fn a_run_time_device_is_host_memory_on_the_cpu_backend_only() {
    let src = "\
import torch


def make(n, device):
    return torch.empty(n, dtype=torch.float16, device=device)


def on_gpu():
    a = make(1000, \"cuda\")


def on_cpu():
    b = make(1000, \"cpu\")


def anywhere(device):
    c = torch.empty(10, device=device)
";
    let s = scan_of(&[("pkg/dev.py", src)]);
    // Under one caller the tensor is on the accelerator, under the other in host memory: one
    // site, on a device known at run time.
    let m = site(&s, "make.return");
    check(m, "2000", Method::TorchDevice, Resolution::Full);
    assert_eq!(m.line, line_of(src, "return torch.empty"));
    no_site(&s, "on_gpu.a");
    // A parameter nobody passes: the device is a run-time value.
    let c = site(&s, "anywhere.c");
    check(c, "40", Method::TorchDevice, Resolution::Full);
    assert!(!c.method.always_host());
}

#[test]
fn copies_to_the_cpu_depend_on_data() {
    let src = "\
import torch


class Sampler:

    def step(self, logits, device):
        self.a = logits.cpu()
        self.b = logits.to(\"cpu\")
        self.c = logits.to(device=\"cpu\", non_blocking=True)
        self.d = logits.pin_memory()
        self.e = logits.to(\"cuda\")
        self.f = logits.to(torch.float32)
        self.g = torch.tensor(self.items)
        self.h = logits.cpu(memory_format=torch.contiguous_format)
";
    let s = scan_of(&[("pkg/sampler.py", src)]);
    for (anchor, method) in [
        ("Sampler.a", Method::TorchToCpu),
        ("Sampler.b", Method::TorchToCpu),
        ("Sampler.c", Method::TorchToCpu),
        ("Sampler.d", Method::TorchPinned),
        ("Sampler.g", Method::TorchCpu),
    ] {
        let x = site(&s, anchor);
        assert_eq!(x.method, method, "{anchor}");
        assert_eq!(x.resolution, Resolution::None, "{anchor}");
        assert_eq!(x.line, line_of(src, &format!("self.{} =", &anchor[8..])));
    }
    no_site(&s, "Sampler.e");
    no_site(&s, "Sampler.f");
}

#[test]
fn env_settings_and_config_getters_are_names() {
    let src = "\
import torch
import vllm.envs as envs


class Worker:

    def __init__(self, vllm_config):
        self.model_config = vllm_config.model_config
        hidden = self.model_config.get_hidden_size()
        self.h = torch.zeros(envs.VLLM_CPU_BATCH, hidden, dtype=torch.float16, device=\"cpu\")
        self.v = torch.zeros(vllm_config.model_config.get_vocab_size(), dtype=torch.bool, device=\"cpu\")
";
    let s = scan_of(&[("pkg/worker.py", src)]);
    check(
        site(&s, "Worker.h"),
        "VLLM_CPU_BATCH × hidden_size × 2",
        Method::TorchCpu,
        Resolution::Full,
    );
    check(
        site(&s, "Worker.v"),
        "vocab_size",
        Method::TorchCpu,
        Resolution::Full,
    );
}

#[test]
fn where_allocations_are_stored_and_more_factories() {
    let src = "\
import numpy as np


class Pool:

    BLOCK = np.zeros(64, dtype=np.uint8)

    def __init__(self, n):
        import torch
        import torch.nn.functional as F
        from torch import empty as torch_empty
        self.bufs = {}
        self.bufs[0] = torch.zeros(16, dtype=torch.int8, device=torch.device(\"cpu\"))
        self.filled = torch.full((32,), -1, dtype=torch.int64)
        self.raw = torch_empty(8, dtype=torch.int16)
        self.padded = F.pad(self.raw, (0, 1))
        self.arr = np.array([1, 2, 3])
        self.like = torch.empty_like(self.filled)
        self.on_gpu = torch.zeros(16, device=torch.device(\"cuda\", 0))

        def make():
            return torch.zeros(4, dtype=torch.int8)

        self.made = make()
";
    let s = scan_of(&[("pkg/pool.py", src)]);
    // A class attribute: the class body's.
    let b = site(&s, "Pool.BLOCK");
    check(b, "64", Method::Numpy, Resolution::Full);
    assert_eq!(b.scope, "Pool");
    // An item of a container attribute.
    check(
        site(&s, "Pool.bufs[]"),
        "16",
        Method::TorchCpu,
        Resolution::Full,
    );
    check(
        site(&s, "Pool.filled"),
        "256",
        Method::TorchCpu,
        Resolution::Full,
    );
    // Imports inside a function, aliases of factories.
    let raw = site(&s, "Pool.raw");
    check(raw, "16", Method::TorchCpu, Resolution::Full);
    assert_eq!(raw.dtype.as_deref(), Some("torch.int16"));
    no_site(&s, "Pool.padded");
    assert_eq!(site(&s, "Pool.arr").resolution, Resolution::None);
    assert_eq!(site(&s, "Pool.like").resolution, Resolution::None);
    no_site(&s, "Pool.on_gpu");
    // A nested function's allocation is the enclosing method's.
    let m = site(&s, "Pool.__init__.return");
    check(m, "4", Method::TorchCpu, Resolution::Full);
    assert_eq!(m.line, line_of(src, "return torch.zeros(4"));
}
