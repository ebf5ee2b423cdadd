//! A llama.cpp log as evidence: every buffer it printed (`… model buffer size = N MiB`, KV,
//! output, compute) beside the component that predicts it, so a user's log checks the estimate
//! term by term (docs/llama-host-ram.md §6). A second load in the same log (a draft model)
//! is matched to the `draft.` components.

use crate::footprint::{Estimate, LogMatch};

use super::log::{buffers, BufferKind};

/// The component a host buffer of `kind` in llama.cpp's buffer type `buffer` is predicted by.
fn component_for(kind: BufferKind, buffer: &str) -> Option<&'static str> {
    match kind {
        BufferKind::Model if buffer == "CPU_Mapped" => Some("weights.mapped"),
        BufferKind::Model if buffer == "CPU_REPACK" => Some("weights.repacked"),
        BufferKind::Model => Some("weights.allocated"),
        BufferKind::Kv => Some("kv_cache"),
        BufferKind::Output => Some("output_buffer"),
        BufferKind::Compute => Some("compute_buffer"),
        _ => None,
    }
}

pub fn reconcile(estimate: &Estimate, log: &str) -> Vec<LogMatch> {
    let bytes_of = |id: &str| {
        estimate
            .processes
            .iter()
            .flat_map(|p| &p.components)
            .find(|c| c.id == id)
            .map(|c| c.bytes)
    };
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for b in buffers(log) {
        let on_host = b.on_host();
        let printed_bytes = (b.mib * (1u64 << 20) as f64).round() as u64;
        let kind = format!("{:?}", b.kind).to_ascii_lowercase();
        let mut component = on_host
            .then(|| component_for(b.kind, &b.buffer))
            .flatten()
            .map(str::to_string);
        if let Some(id) = component.clone() {
            // The same buffer printed again belongs to the second model of the log.
            if seen.contains(&id) {
                component = Some(format!("draft.{id}"));
            } else {
                seen.push(id);
            }
        }
        let estimated_bytes = component.as_deref().and_then(bytes_of);
        out.push(LogMatch {
            line: b.line,
            printed: format!("{} {kind}", b.buffer),
            printed_bytes,
            on_host,
            component: component.filter(|_| estimated_bytes.is_some()),
            estimated_bytes,
        });
    }
    out
}
