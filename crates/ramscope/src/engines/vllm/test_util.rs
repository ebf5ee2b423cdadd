//! Tests' shortcuts: a command line resolved and built for a release and device, with the
//! bundled default model (Qwen3-8B: hidden 4096, 36 layers, 32 heads, 8 KV heads, head dim
//! 128, vocabulary 151936, intermediate 12288, bf16), touching no file.

use crate::engines::Options;
use crate::footprint::{Component, Device, ProcessEstimate};
use crate::model::Model;
use crate::proc::roles::Role;

use super::args::parse_str;
use super::components::{build, Built, Ctx};
use super::defaults::Resolved;
use super::engine::configuration;
use super::Version;

pub(super) fn options(version: Version, device: Device) -> Options {
    Options {
        release: Some(version.name().to_string()),
        device,
        cpu_cores: Some(16),
        host_memory_bytes: Some(64 << 30),
        ..Options::default()
    }
}

/// The configuration of `flags` (a vLLM command line without the model).
pub(super) fn resolved(flags: &str, version: Version, device: Device) -> Result<Resolved, String> {
    let args = parse_str(flags).map_err(|e| e.to_string())?;
    configuration(&Model::default_model(), &args, &options(version, device))
        .map_err(|e| e.to_string())
}

/// Every process of `flags`; panics with the error when it does not resolve.
pub(super) fn built(flags: &str, version: Version, device: Device) -> Built {
    let o = options(version, device);
    let r = resolved(flags, version, device).unwrap_or_else(|e| panic!("{flags}: {e}"));
    build(&Model::default_model(), &r, &o.baselines, &o)
}

/// Runs `f` on the context formulas see for `flags`.
pub(super) fn with_ctx<T>(
    flags: &str,
    version: Version,
    device: Device,
    f: impl FnOnce(&Ctx) -> T,
) -> T {
    let o = options(version, device);
    let m = Model::default_model();
    let r = resolved(flags, version, device).unwrap_or_else(|e| panic!("{flags}: {e}"));
    let cx = Ctx {
        m: &m,
        r: &r,
        b: &o.baselines,
        ver: r.version.name(),
    };
    f(&cx)
}

pub(super) fn process(b: &Built, role: Role) -> Option<&ProcessEstimate> {
    b.processes.iter().find(|p| p.role == role)
}

/// A component of the first process of `role`.
pub(super) fn component<'a>(b: &'a Built, role: Role, id: &str) -> Option<&'a Component> {
    process(b, role).and_then(|p| p.components.iter().find(|c| c.id == id))
}
