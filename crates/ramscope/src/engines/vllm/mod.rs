//! vLLM: its command line ([`args`], against the flag table in `flags` and with the
//! launcher handling of `command_line`), what each release does ([`releases`], one row of
//! cited facts per release), its defaults per version and device ([`defaults`], with vLLM's
//! own checks in [`limits`]) and the host allocations they imply ([`components`]: which
//! process holds what; the runner's buffers in `buffers`, the scheduler in `scheduler`, the
//! message queues in `shm`, and the weights, KV cache and offload features in `weights`).
//! Every byte count is computed with [`crate::units::Checked`], so no flag or config can
//! wrap one.

mod advice;
pub mod args;
mod buffers;
pub mod cited_lines;
mod collectives;
pub(crate) mod command_line;
pub mod components;
mod cuda_graphs;
pub mod defaults;
pub mod engine;
mod flags;
mod kv_transfer;
pub mod limits;
mod mm_cache;
mod offload;
mod prompt_embeds;
pub mod releases;
mod runtime;
pub mod scan_check;
mod scheduler;
mod shm;
pub mod sites;
mod sleep_lora;
pub mod source_lines;
#[cfg(test)]
mod test_util;
pub mod version;
mod weights;

pub use version::Version;
