//! Placeholder until written.
use super::FileFacts;
use crate::scan::Site;
pub fn sites(_files: &[FileFacts]) -> Vec<Site> {
    Vec::new()
}
