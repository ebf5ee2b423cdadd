//! `ramscope trace`: reading what the preloaded tracer library wrote.
//!
//! Data flows one way: [`format`] parses one `.rstrace` file, [`dir`] reads a trace
//! directory into a process tree, [`symbolize`] names native frames from the ELF files on
//! disk, [`aggregate`] builds the report's model, and [`join`] matches traced sites with the
//! estimator's components by source line. The format is docs/trace-format.md.

pub mod aggregate;
pub mod dir;
mod fields;
pub mod format;
pub mod join;
pub mod label;
pub mod library;
mod records;
pub mod symbolize;
