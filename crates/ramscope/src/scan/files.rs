//! Placeholder until written.
use std::path::{Path, PathBuf};
use super::{python::FileFacts, ScanError, Site, Skipped};
pub struct Listing { pub sources: Vec<(PathBuf, String)>, pub skipped: Vec<Skipped> }
pub struct Parsed { pub python: Vec<FileFacts>, pub cpp_sites: Vec<Site>, pub skipped: Vec<Skipped>, pub files: u64, pub bytes: u64 }
pub fn list(_root: &Path) -> Result<Listing, ScanError> { Ok(Listing { sources: Vec::new(), skipped: Vec::new() }) }
pub fn parse_all(_s: &[(PathBuf, String)], _t: usize) -> Parsed { Parsed { python: Vec::new(), cpp_sites: Vec::new(), skipped: Vec::new(), files: 0, bytes: 0 } }
