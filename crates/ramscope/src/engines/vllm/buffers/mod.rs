//! The model runner's host buffers, one module per runner: the GPU runner V1 ([`v1`], its
//! input batch and step buffers in [`v1_core`]), V2 ([`v2`]), the CPU backend's runner, a
//! subclass of V1 ([`cpu`]), and buffers any of them allocates on first
//! use ([`lazy`]). Sizes follow the tensors each runner allocates in `__init__`
//! (docs/vllm-host-ram.md §3–§6), checked like every formula in [`super::components`].

use crate::engines::vllm::components::n;
use crate::footprint::Component;

mod cpu;
mod lazy;
mod v1;
mod v1_core;
mod v2;

pub(in crate::engines::vllm) use cpu::cpu_runner_buffers;
pub(in crate::engines::vllm) use lazy::lazy_buffers;
pub(in crate::engines::vllm) use v1::v1_runner_buffers;
pub(in crate::engines::vllm) use v2::v2_runner_buffers;

/// A component standing for `count` equal allocations.
pub(super) fn times(mut c: Component, count: u64, what: &str) -> Component {
    // Scaling all three keeps low ≤ bytes ≤ high (a too-large one stays too large).
    c.bytes = (n(c.bytes) * count).raw();
    c.low_bytes = (n(c.low_bytes) * count).raw();
    c.high_bytes = (n(c.high_bytes) * count).raw();
    c.formula = format!("{count} × {} ({what})", c.formula);
    c
}
