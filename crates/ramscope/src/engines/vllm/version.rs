//! Which vLLM release an estimate follows: every minor release 0.10 … 0.33 is known (its
//! facts are a row of [`super::releases`]); patch and build suffixes map to their minor
//! (`0.11.2.post2`, `0.25.1+cpu`, `v0.20.0`). Anything else, a newer or older release or a
//! version that cannot be read, is estimated with the nearest known release, and that
//! assumption is kept ([`ReleaseAssumed`]) so every report can say so.

use serde::{Serialize, Serializer};

use crate::footprint::ReleaseAssumed;

/// A vLLM minor release ramscope has read (0.10 … 0.33).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    minor: u16,
}

/// The oldest and newest minor release read.
const FIRST_MINOR: u16 = 10;
const LAST_MINOR: u16 = 33;
const COUNT: usize = (LAST_MINOR - FIRST_MINOR + 1) as usize;

/// `"0.10"` … `"0.33"`, indexed by `minor - FIRST_MINOR` (static, so `name` borrows nothing).
const NAMES: [&str; COUNT] = [
    "0.10", "0.11", "0.12", "0.13", "0.14", "0.15", "0.16", "0.17", "0.18", "0.19", "0.20", "0.21",
    "0.22", "0.23", "0.24", "0.25", "0.26", "0.27", "0.28", "0.29", "0.30", "0.31", "0.32", "0.33",
];

impl Version {
    pub const V0_10: Version = Version { minor: 10 };
    pub const V0_11: Version = Version { minor: 11 };
    pub const V0_12: Version = Version { minor: 12 };
    pub const V0_13: Version = Version { minor: 13 };
    pub const V0_14: Version = Version { minor: 14 };
    pub const V0_15: Version = Version { minor: 15 };
    pub const V0_16: Version = Version { minor: 16 };
    pub const V0_17: Version = Version { minor: 17 };
    pub const V0_18: Version = Version { minor: 18 };
    pub const V0_19: Version = Version { minor: 19 };
    pub const V0_20: Version = Version { minor: 20 };
    pub const V0_21: Version = Version { minor: 21 };
    pub const V0_22: Version = Version { minor: 22 };
    pub const V0_23: Version = Version { minor: 23 };
    pub const V0_24: Version = Version { minor: 24 };
    pub const V0_25: Version = Version { minor: 25 };
    pub const V0_26: Version = Version { minor: 26 };
    pub const V0_27: Version = Version { minor: 27 };
    pub const V0_28: Version = Version { minor: 28 };
    pub const V0_29: Version = Version { minor: 29 };
    pub const V0_30: Version = Version { minor: 30 };
    pub const V0_31: Version = Version { minor: 31 };
    pub const V0_32: Version = Version { minor: 32 };
    pub const V0_33: Version = Version { minor: 33 };

    /// Every release read, oldest first.
    pub const ALL: [Version; COUNT] = {
        let mut all = [Version { minor: 0 }; COUNT];
        let mut i = 0;
        while i < COUNT {
            all[i] = Version {
                minor: FIRST_MINOR + i as u16,
            };
            i += 1;
        }
        all
    };

    /// The oldest release read.
    pub const OLDEST: Version = Version { minor: FIRST_MINOR };
    /// The newest release read.
    pub const NEWEST: Version = Version { minor: LAST_MINOR };

    /// The minor number (`0.25` → 25).
    pub const fn minor(self) -> u16 {
        self.minor
    }

    /// `0.25` as text.
    pub fn name(self) -> &'static str {
        NAMES[usize::from(self.minor - FIRST_MINOR)]
    }

    /// A release ramscope knows, from `0.11`, `0.11.0`, `v0.10.2`, `0.32.0+cpu`,
    /// `0.11.2.post2`; `None` for anything else (see [`read`] for what to assume then).
    pub fn parse(s: &str) -> Option<Version> {
        match number(s)? {
            (0, minor) if (FIRST_MINOR..=LAST_MINOR).contains(&minor) => Some(Version { minor }),
            _ => None,
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// `(major, minor)` of a version string; patch, pre-release and build parts are ignored.
fn number(s: &str) -> Option<(u64, u16)> {
    let s = s.trim();
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    let mut parts = s.split(['.', '+', '-']);
    let major = digits(parts.next()?)?;
    // `1` alone is 1.0; `0` alone says nothing about the minor.
    let minor = match parts.next() {
        Some(m) => digits(m)?,
        None if major > 0 => 0,
        None => return None,
    };
    Some((major, u16::try_from(minor).unwrap_or(u16::MAX)))
}

/// The leading decimal digits of `s` (`"0rc1"` → 0); `None` when it starts with none.
fn digits(s: &str) -> Option<u64> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

/// A version ramscope does not know, and the release estimated in its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionAssumed {
    /// The version as given or read (`"0.34.0"`, `"1.0"`); `None` when none could be read.
    pub requested: Option<String>,
    /// The release whose facts the estimate uses.
    pub used: Version,
    /// Why, in a sentence.
    pub reason: String,
}

impl From<VersionAssumed> for ReleaseAssumed {
    fn from(a: VersionAssumed) -> ReleaseAssumed {
        ReleaseAssumed {
            requested: a.requested,
            used: a.used.to_string(),
            reason: a.reason,
        }
    }
}

/// The release to estimate for a version string: a known one, or the nearest one assumed.
pub fn read(text: &str) -> Result<Version, VersionAssumed> {
    if let Some(v) = Version::parse(text) {
        return Ok(v);
    }
    let shown = text.trim();
    let assumed = |used: Version, reason: String| VersionAssumed {
        requested: Some(shown.to_string()),
        used,
        reason,
    };
    Err(match number(shown) {
        Some((0, minor)) if minor < FIRST_MINOR => assumed(
            Version::OLDEST,
            format!(
                "older than the oldest release ramscope has read ({})",
                Version::OLDEST
            ),
        ),
        Some(_) => assumed(
            Version::NEWEST,
            format!(
                "newer than the newest release ramscope has read ({})",
                Version::NEWEST
            ),
        ),
        None => assumed(
            Version::NEWEST,
            "not a version number ramscope can read".to_string(),
        ),
    })
}

/// No version could be read (`why` says where it was looked for): the newest release.
pub fn unreadable(why: &str) -> VersionAssumed {
    VersionAssumed {
        requested: None,
        used: Version::NEWEST,
        reason: why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_minor_release_parses_with_its_suffixes() {
        assert_eq!(Version::parse("0.11.0"), Some(Version::V0_11));
        assert_eq!(Version::parse("v0.10.2"), Some(Version::V0_10));
        assert_eq!(Version::parse("0.32.0+cpu"), Some(Version::V0_32));
        assert_eq!(Version::parse("0.11.2.post2"), Some(Version::V0_11));
        assert_eq!(Version::parse("0.25.1+cpu"), Some(Version::V0_25));
        assert_eq!(Version::parse("v0.20.0"), Some(Version::V0_20));
        assert_eq!(Version::parse(" 0.13 "), Some(Version::V0_13));
        assert_eq!(Version::parse("0.15.0rc1"), Some(Version::V0_15));
        for (i, v) in Version::ALL.iter().enumerate() {
            assert_eq!(usize::from(v.minor()), 10 + i);
            assert_eq!(Version::parse(v.name()), Some(*v));
            assert_eq!(Version::parse(&format!("{v}.7.post1+cu129")), Some(*v));
        }
        for unknown in [
            "0.9", "0.9.2", "0.34.0", "1.0", "1", "0", "", "x.y", "0.x", "0.-1",
        ] {
            assert_eq!(Version::parse(unknown), None, "{unknown:?}");
        }
        assert_eq!(Version::ALL.first(), Some(&Version::OLDEST));
        assert_eq!(Version::ALL.last(), Some(&Version::NEWEST));
        assert!(Version::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn unknown_versions_are_assumed_nearest_and_say_why() {
        assert_eq!(read("0.25.1"), Ok(Version::V0_25));
        for newer in ["0.34.0", "1.0", "1.2", "2", "0.100.1", "0.99999999999.0"] {
            let a = read(newer).unwrap_err();
            assert_eq!(a.used, Version::NEWEST, "{newer}");
            assert_eq!(a.requested.as_deref(), Some(newer));
            assert!(a.reason.contains("newer"), "{a:?}");
        }
        let a = read("0.9.2").unwrap_err();
        assert_eq!(
            (a.used, a.reason.contains("older")),
            (Version::OLDEST, true)
        );
        let a = read("banana").unwrap_err();
        assert_eq!(a.used, Version::NEWEST);
        assert!(a.reason.contains("not a version"), "{a:?}");
        assert_eq!(
            ReleaseAssumed::from(read("1.0").unwrap_err()).describe("vLLM"),
            "vLLM 1.0 is newer than the newest release ramscope has read (0.33): estimated as vLLM 0.33"
        );
        let u = unreadable("no vLLM installation was found");
        assert_eq!((u.requested, u.used), (None, Version::NEWEST));
    }

    #[test]
    fn serializes_as_its_name() {
        assert_eq!(
            serde_json::to_value(Version::V0_25).unwrap(),
            serde_json::json!("0.25")
        );
        let a = ReleaseAssumed::from(read("0.34.0").unwrap_err());
        let j = serde_json::to_value(&a).unwrap();
        assert_eq!(j["requested"], "0.34.0");
        assert_eq!(j["used"], "0.33");
        assert!(j["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }
}
