//! Serving engines whose host memory ramscope can predict from a command line.

pub mod vllm;
