//! Ollama behind the [`crate::engines::Engine`] trait, modelled as what it starts: the
//! `ollama serve` Go server, plus one runner per loaded model, which from 0.30.0 is the
//! upstream `llama-server` and before it the `ollama runner` with llama.cpp linked in. A
//! runner's host memory is the llama engine's estimate of the command line Ollama builds for
//! it (docs/ollama-host-ram.md).
//!
//! - [`releases`]: the facts that change between Ollama releases, cited in its source;
//! - [`args`]: `ollama serve` / `ollama run NAME` and the environment in front; a serve line
//!   names the model to estimate with ramscope's `RAMSCOPE_OLLAMA_MODEL` (see [`args`] for
//!   why);
//! - [`store`]: a model name to the GGUF blob, projector and params in Ollama's store;
//! - [`config`]: environment + params + release defaults → Ollama's settings and the
//!   llama-server flags they make;
//! - [`refusal`]: Ollama's own free-memory reading and start-up refusal per generation;
//! - [`engine`]: the trait, and the listing (runner × loaded models, plus the Go server).

pub mod args;
pub mod config;
pub mod engine;
pub mod refusal;
pub mod releases;
pub mod store;
#[cfg(test)]
mod test_util;
