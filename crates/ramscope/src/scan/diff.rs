//! Two scans compared (placeholder until written).
