//! vLLM: its command line ([`args`], against the flag table in `flags` and with the
//! launcher handling of `command_line`), its defaults per version and device ([`defaults`],
//! with vLLM's own checks in [`limits`]) and the host allocations they imply
//! ([`components`], with the runner's buffers in `buffers` and the weights, KV cache and
//! offload features in `weights`). Every byte count is computed with
//! [`crate::units::Checked`], so no flag or config can wrap one.

mod advice;
pub mod args;
mod buffers;
pub(crate) mod command_line;
pub mod components;
pub mod defaults;
pub mod engine;
mod flags;
pub mod limits;
pub mod scan_check;
pub mod sites;
pub mod source_lines;
mod weights;

use serde::Serialize;

/// vLLM releases whose host allocations ramscope knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Version {
    #[serde(rename = "0.10")]
    V0_10,
    #[serde(rename = "0.11")]
    V0_11,
    #[serde(rename = "0.12")]
    V0_12,
    #[serde(rename = "0.32")]
    V0_32,
    #[serde(rename = "0.33")]
    V0_33,
}

impl Version {
    pub const ALL: [Version; 5] = [
        Version::V0_10,
        Version::V0_11,
        Version::V0_12,
        Version::V0_32,
        Version::V0_33,
    ];

    /// The newest release read.
    pub const NEWEST: Version = Version::V0_33;

    pub fn name(self) -> &'static str {
        match self {
            Version::V0_10 => "0.10",
            Version::V0_11 => "0.11",
            Version::V0_12 => "0.12",
            Version::V0_32 => "0.32",
            Version::V0_33 => "0.33",
        }
    }

    /// Accepts `0.11`, `0.11.0`, `v0.10.2`, `0.32.0+cpu`.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim().trim_start_matches('v');
        let mut parts = s.split(['.', '+']);
        let (major, minor) = (parts.next()?, parts.next()?);
        if major != "0" {
            return None;
        }
        Version::ALL
            .into_iter()
            .find(|v| v.name() == format!("0.{minor}"))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(Version::parse("0.11.0"), Some(Version::V0_11));
        assert_eq!(Version::parse("v0.10.2"), Some(Version::V0_10));
        assert_eq!(Version::parse("0.32.0+cpu"), Some(Version::V0_32));
        assert_eq!(Version::parse("0.9"), None);
        assert_eq!(Version::parse("1.0"), None);
    }
}
