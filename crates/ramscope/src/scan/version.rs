//! The release a tree says it is (placeholder until written).
use std::path::Path;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub package: String,
    pub version: String,
}
pub fn detect(_root: &Path) -> Option<Release> {
    None
}
