//! Sizes that come through helpers and wrapper classes: a site at each call when callers
//! differ, at the allocation when they agree, with the calls in between.

use super::*;

const UTILS: &str = "\
import torch


def make_buffer(*size, dtype):
    return torch.zeros(*size, dtype=dtype, pin_memory=True)


class Buf:

    def __init__(self, *size, dtype, pin_memory=True):
        self.cpu = torch.zeros(*size, dtype=dtype, pin_memory=pin_memory)
";

#[test]
fn a_helper_called_with_different_sizes_is_two_sites_at_the_calls() {
    let runner = "\
import torch
from pkg.utils import make_buffer


class Runner:

    def __init__(self, vllm_config):
        self.max_num_tokens = vllm_config.scheduler_config.max_num_batched_tokens
        self.a = make_buffer(self.max_num_tokens, dtype=torch.int32)
        self.b = make_buffer(self.max_num_tokens, 3, dtype=torch.int64)
";
    let s = scan_of(&[("pkg/utils.py", UTILS), ("pkg/runner.py", runner)]);
    let a = site(&s, "Runner.a");
    check(
        a,
        "max_num_batched_tokens × 4",
        Method::TorchPinned,
        Resolution::Full,
    );
    assert_eq!(
        (a.file.as_str(), a.line),
        ("pkg/runner.py", line_of(runner, "self.a ="))
    );
    assert_eq!(a.via.len(), 1, "{:?}", a.via);
    assert_eq!(a.via[0].file, "pkg/utils.py");
    assert_eq!(a.via[0].line, line_of(UTILS, "return torch.zeros"));
    assert_eq!(a.via[0].callee, "torch.zeros");
    let b = site(&s, "Runner.b");
    check(
        b,
        "max_num_batched_tokens × 24",
        Method::TorchPinned,
        Resolution::Full,
    );
    assert_eq!(b.line, line_of(runner, "self.b ="));
    assert_eq!(b.via, a.via);
    // Nothing is left at the helper itself; the wrapper class nobody constructs here keeps
    // its parameters.
    assert_eq!(s.sites.len(), 3, "{}", listing(&s));
    let lonely = site(&s, "Buf.cpu");
    check(
        lonely,
        "size? × dtype?",
        Method::TorchCpu,
        Resolution::Partial,
    );
    assert_eq!(lonely.pinned, Pinned::When("pin_memory".into()));
}

#[test]
fn a_wrapper_class_and_a_two_level_chain() {
    let runner = "\
import torch
from pkg.utils import Buf


class Runner:

    def __init__(self, vllm_config):
        self.max_num_reqs = vllm_config.scheduler_config.max_num_seqs
        self.max_num_tokens = vllm_config.scheduler_config.max_num_batched_tokens
        self.positions = Buf(self.max_num_tokens, dtype=torch.int64)
        self.input_ids = self._make_buffer(self.max_num_tokens, dtype=torch.int32)
        self.seq_lens = self._make_buffer(self.max_num_reqs, dtype=torch.int32)

    def _make_buffer(self, *size, dtype):
        return Buf(*size, dtype=dtype, pin_memory=False)
";
    let s = scan_of(&[("pkg/utils.py", UTILS), ("pkg/runner.py", runner)]);
    let alloc_line = line_of(UTILS, "self.cpu =");
    let p = site(&s, "Runner.positions/Buf.cpu");
    check(
        p,
        "max_num_batched_tokens × 8",
        Method::TorchPinned,
        Resolution::Full,
    );
    assert_eq!(p.pinned, Pinned::Yes);
    assert_eq!(p.line, line_of(runner, "self.positions ="));
    assert_eq!(p.via.len(), 1, "{:?}", p.via);
    assert_eq!(
        (p.via[0].line, p.via[0].callee.as_str()),
        (alloc_line, "torch.zeros")
    );
    let i = site(&s, "Runner.input_ids/Buf.cpu");
    check(
        i,
        "max_num_batched_tokens × 4",
        Method::TorchCpu,
        Resolution::Full,
    );
    assert_eq!(i.pinned, Pinned::No);
    assert_eq!(i.line, line_of(runner, "self.input_ids ="));
    let hops: Vec<(&str, u32, &str)> = i
        .via
        .iter()
        .map(|h| (h.file.as_str(), h.line, h.callee.as_str()))
        .collect();
    assert_eq!(
        hops,
        [
            ("pkg/runner.py", line_of(runner, "return Buf("), "Buf"),
            ("pkg/utils.py", alloc_line, "torch.zeros"),
        ]
    );
    check(
        site(&s, "Runner.seq_lens/Buf.cpu"),
        "max_num_seqs × 4",
        Method::TorchCpu,
        Resolution::Full,
    );
    let lonely = site(&s, "make_buffer.return");
    check(
        lonely,
        "size? × dtype?",
        Method::TorchPinned,
        Resolution::Partial,
    );
    assert_eq!(s.sites.len(), 4, "{}", listing(&s));
}

#[test]
fn callers_that_agree_make_one_site_at_the_allocation() {
    let src = "\
import torch


class Cache:

    def __init__(self, vllm_config):
        self.blocks = torch.zeros(vllm_config.cache_config.num_cpu_blocks, 16, dtype=torch.uint8)


def start(vllm_config):
    first = Cache(vllm_config)


def restart(vllm_config):
    again = Cache(vllm_config=vllm_config)
";
    let helper = "\
import torch


def staging(n):
    return torch.empty(n, dtype=torch.float32, device=\"cpu\")


def one(config):
    x = staging(config.max_num_seqs)


def two(config):
    y = staging(config.max_num_seqs)
";
    let s = scan_of(&[("pkg/cache.py", src), ("pkg/helper.py", helper)]);
    let c = site(&s, "Cache.blocks");
    check(c, "num_cpu_blocks × 16", Method::TorchCpu, Resolution::Full);
    let h = site(&s, "staging.return");
    check(h, "max_num_seqs × 4", Method::TorchCpu, Resolution::Full);
    assert_eq!(
        (h.file.as_str(), h.line),
        ("pkg/helper.py", line_of(helper, "return torch.empty"))
    );
    assert_eq!(h.paths, 2, "{}", listing(&s));
    assert!(h.via.is_empty());
    assert_eq!(s.sites.len(), 2, "{}", listing(&s));
}

#[test]
fn a_helper_nobody_calls_keeps_its_parameters() {
    let src = "\
import torch


def alloc(n, m):
    return torch.empty(n, m, dtype=torch.int8, device=\"cpu\")
";
    let s = scan_of(&[("pkg/lonely.py", src)]);
    let x = site(&s, "alloc.return");
    check(x, "n? × m?", Method::TorchCpu, Resolution::Partial);
}

/// vLLM's block table: a buffer class, a `_make_buffer` method, a table per KV cache group
/// built in a list comprehension, the batch, the runner: five calls between the
/// configuration and the allocation, with parameters of the same name at several levels.
#[test]
fn a_chain_as_deep_as_vllm_s_block_table() {
    let utils = "\
import torch


def cdiv(a, b):
    return -(a // -b)


class CpuGpuBuffer:

    def __init__(self, *size, dtype, device, pin_memory, with_numpy=True):
        self.cpu = torch.zeros(*size, dtype=dtype, device=\"cpu\", pin_memory=pin_memory)
        self.gpu = self.cpu.to(device)
";
    let table = "\
import numpy as np
import torch
from pkg.utils import CpuGpuBuffer, cdiv


class BlockTable:

    def __init__(self, block_size, max_num_reqs, max_num_blocks_per_req, max_num_batched_tokens,
                 pin_memory, device):
        self.max_num_batched_tokens = max_num_batched_tokens
        self.pin_memory = pin_memory
        self.device = device
        self.block_table = self._make_buffer(max_num_reqs, max_num_blocks_per_req, dtype=torch.int32)
        self.num_blocks_per_row = np.zeros(max_num_reqs, dtype=np.int32)
        self.slot_mapping = self._make_buffer(self.max_num_batched_tokens, dtype=torch.int64)

    def _make_buffer(self, *size, dtype):
        return CpuGpuBuffer(*size, dtype=dtype, device=self.device, pin_memory=self.pin_memory)


class MultiGroupBlockTable:

    def __init__(self, max_num_reqs, max_model_len, max_num_batched_tokens, pin_memory, device,
                 block_sizes, num_speculative_tokens=0):
        dcp_world_size = 1
        self.block_tables = [
            BlockTable(block_size, max_num_reqs,
                       max(cdiv(max_model_len, block_size * dcp_world_size),
                           1 + num_speculative_tokens), max_num_batched_tokens,
                       pin_memory, device) for block_size in block_sizes
        ]
";
    let batch = "\
from pkg.table import MultiGroupBlockTable


class InputBatch:

    def __init__(self, max_num_reqs, max_model_len, max_num_batched_tokens, device, pin_memory,
                 block_sizes):
        self.block_table = MultiGroupBlockTable(
            max_num_reqs=max_num_reqs,
            max_model_len=max_model_len,
            max_num_batched_tokens=max_num_batched_tokens,
            pin_memory=pin_memory,
            device=device,
            block_sizes=block_sizes,
        )
";
    let runner = "\
from pkg.batch import InputBatch
from pkg.platform import is_pin_memory_available


class Runner:

    def __init__(self, vllm_config, device):
        self.scheduler_config = vllm_config.scheduler_config
        self.cache_config = vllm_config.cache_config
        self.max_num_reqs = self.scheduler_config.max_num_seqs
        self.max_model_len = vllm_config.model_config.max_model_len
        self.max_num_tokens = self.scheduler_config.max_num_batched_tokens
        self.pin_memory = is_pin_memory_available()
        self.device = device
        self.input_batch = InputBatch(
            max_num_reqs=self.max_num_reqs,
            max_model_len=self.max_model_len,
            max_num_batched_tokens=self.max_num_tokens,
            device=self.device,
            pin_memory=self.pin_memory,
            block_sizes=[self.cache_config.block_size],
        )


class Worker:

    def init_device(self):
        self.model_runner = Runner(self.vllm_config, self.device)
";
    let platform = "def is_pin_memory_available():\n    return True\n";
    let s = scan_of(&[
        ("pkg/utils.py", utils),
        ("pkg/table.py", table),
        ("pkg/batch.py", batch),
        ("pkg/runner.py", runner),
        ("pkg/platform.py", platform),
    ]);
    let b = site(&s, "BlockTable.block_table/CpuGpuBuffer.cpu");
    check(
        b,
        "max_num_seqs × max(cdiv(max_model_len, block_size), 1) × 4",
        Method::TorchCpu,
        Resolution::Partial,
    );
    assert_eq!(b.pinned, Pinned::When("is_pin_memory_available()".into()));
    let m = site(&s, "BlockTable.slot_mapping/CpuGpuBuffer.cpu");
    check(
        m,
        "max_num_batched_tokens × 8",
        Method::TorchCpu,
        Resolution::Full,
    );
    let n = site(&s, "BlockTable.num_blocks_per_row");
    check(n, "max_num_seqs × 4", Method::Numpy, Resolution::Full);
}
