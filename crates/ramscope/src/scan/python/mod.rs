//! Python sources (placeholder until written).
pub mod resolve;
pub struct FileFacts;
