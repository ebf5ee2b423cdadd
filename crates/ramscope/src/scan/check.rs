//! `ramscope scan --check`'s verdict: an engine's estimator against one release's source,
//! component by component ([`Joined`]), with the sites nothing models. The engine decides
//! which sites its components model (`Engine::check_source`); these are the results, and
//! [`site_bytes`], the size of one site at a configuration.

use serde::Serialize;

use crate::scan::{Bindings, Pinned, Site};
use crate::units::Checked;

pub const SCHEMA: &str = "ramscope.scan-check/1";

#[derive(Debug, Clone, Serialize)]
pub struct SiteRef {
    pub file: String,
    pub line: u32,
    pub anchor: String,
    pub formula: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Joined {
    pub component: String,
    pub estimated_bytes: u64,
    pub low_bytes: u64,
    pub high_bytes: u64,
    /// Sum of the sites' evaluated formulas (None when one has names without values).
    pub scanned_bytes: Option<u64>,
    pub sites: Vec<SiteRef>,
    /// Anchors the table names that this release does not have (some may be optional).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    pub agrees: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Known {
    pub site: SiteRef,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub schema: &'static str,
    pub version: Option<String>,
    /// The release whose estimator tables were used, when the tree's is not one ramscope
    /// knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_assumed: Option<String>,
    pub threshold_bytes: u64,
    pub joined: Vec<Joined>,
    /// Components whose sites this release no longer has.
    pub stale: Vec<Joined>,
    /// Components whose bytes differ from their sites'.
    pub mismatched: Vec<Joined>,
    /// Sites at or over the threshold that nothing models or explains.
    pub unmodelled: Vec<SiteRef>,
    /// Sites at or over the threshold that the estimator knowingly leaves out.
    pub known: Vec<Known>,
    /// Allocations sized by run-time settings that the estimator does not model yet.
    pub not_modelled: Vec<Known>,
    /// Sites whose size could not be evaluated for this configuration.
    pub unevaluated: u64,
    /// `release<TAB>component<TAB>file:line` for every component the engine's sites table
    /// places in this release (its first host site, whatever the configuration): the rows of
    /// the engine's source-lines table for this release.
    pub source_lines: Vec<String>,
}

impl Check {
    /// Differences nobody explained.
    pub fn failures(&self) -> usize {
        self.stale.len() + self.mismatched.len() + self.unmodelled.len()
    }
}

/// A site's bytes for the configuration, rounded as PyTorch's pinned allocator rounds it
/// (power of two) when the site is pinned and pinning is on.
pub fn site_bytes(s: &Site, b: &Bindings, pin_memory: bool) -> Option<u64> {
    let raw = s.formula.eval(b).ok()?;
    let pinned = match &s.pinned {
        Pinned::Yes => true,
        Pinned::When(_) => pin_memory,
        Pinned::No => false,
    };
    let v: Checked = if pinned { raw.pow2() } else { raw };
    v.get()
}

pub fn site_ref(s: &Site, bytes: Option<u64>) -> SiteRef {
    SiteRef {
        file: s.file.clone(),
        line: s.line,
        anchor: s.anchor.clone(),
        formula: s.formula.to_string(),
        bytes,
    }
}
