//! Recordings: a process tree sampled over time, written as it is taken, and what can be
//! learned from one afterwards (peaks, leaks).
//!
//! Data flows one way: [`sampler`] reads `/proc` at three depths and yields samples,
//! [`format`] streams them to a file and reads them back, [`analysis`] folds a recording
//! into peaks, [`timeline`] into what the charts draw, [`leak`] judges whether a series grows.

pub mod analysis;
pub mod format;
pub mod leak;
pub mod sampler;
pub mod timeline;

pub use format::{
    Header, Recording, RecordingEnd, RecordingError, RecordingWriter, Sample, SampleCost,
    END_SCHEMA, RECORDING_SCHEMA,
};
