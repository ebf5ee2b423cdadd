//! ramscope: where an LLM inference server's host RAM goes, and where it will go.
//!
//! Data flows one way: [`proc`] reads `/proc`, [`attribute`] puts every mapping in a
//! category, [`snapshot`] adds them up per process and per tree, and [`report`] shows them.

pub mod attribute;
pub mod calibrate;
pub mod catalog;
pub mod engines;
pub mod error;
pub mod estimate;
pub mod explain;
pub mod exporter;
pub mod fit;
pub mod footprint;
#[doc(hidden)]
pub mod fuzz;
pub mod gguf;
pub mod gpu;
pub mod hf;
pub mod host;
pub mod measure;
pub mod model;
pub mod proc;
pub mod record;
pub mod report;
pub mod scan;
pub mod server;
pub mod snapshot;
pub mod text;
pub mod trace;
pub mod units;
pub mod userfile;
