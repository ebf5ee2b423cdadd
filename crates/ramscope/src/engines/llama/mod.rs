//! llama.cpp's `llama-server` behind the [`crate::engines::Engine`] trait.
//!
//! The model is a GGUF file whose header ([`crate::gguf`]) gives the layers, heads, context
//! and every tensor's type and size; the command line ([`args`], against the table of
//! [`flags`]) gives the load mode, context, slots, cache types and caps. [`config`] applies
//! the release's defaults and [`components`] lists what the process holds, each with
//! `file:line` in llama.cpp (docs/llama-host-ram.md).

pub mod args;
pub mod components;
pub mod config;
pub mod engine;
pub mod evidence;
pub mod flags;
pub mod log;
pub mod model;

pub use engine::listing;
#[cfg(test)]
mod tests;
