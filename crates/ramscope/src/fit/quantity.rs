//! Memory sizes as Kubernetes writes them (`16Gi`, `512Mi`, `16G`, `1500000000`), the
//! headroom a limit gets on top of the estimate (`10%`, `512Mi`), and the `Mi`/`Gi` form
//! the YAML snippet prints.
//!
//! Kubernetes' binary suffixes (`Ki Mi Gi Ti Pi Ei`) are powers of 1024 and its decimal ones
//! (`k M G T P E`) powers of 1000; `GiB`-style spellings are taken as the binary ones. What
//! Kubernetes would read differently from what a user probably meant is refused with a hint
//! rather than guessed: `16GB` (decimal or binary?), `64m` (milli-bytes in Kubernetes), an
//! exponent (`1e9`).

/// Binary and decimal multipliers by suffix: a table, so the error can list them.
const SUFFIXES: [(&str, u128); 16] = [
    ("", 1),
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
];

/// Longer than any sensible size: refused before any arithmetic.
const MAX_LEN: usize = 40;

/// Why a size was refused, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a memory size: {1} (examples: 16Gi, 512Mi, 16G, 1073741824)")]
pub struct QuantityError(String, &'static str);

/// Bytes in a Kubernetes memory quantity, rounded up to a whole byte as Kubernetes does.
/// Zero, negative, fractional-milli, and anything over 16 EiB are refused.
pub fn parse_quantity(s: &str) -> Result<u64, QuantityError> {
    let fail = |why| Err(QuantityError(s.to_string(), why));
    let text = s.trim();
    if text.is_empty() {
        return fail("it is empty");
    }
    if text.len() > MAX_LEN {
        return fail("it is too long");
    }
    if text.starts_with('-') {
        return fail("it is negative");
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(end);
    if number.is_empty() {
        return fail("expected a number first");
    }
    let Some(&(_, multiplier)) = SUFFIXES.iter().find(|(name, _)| *name == suffix) else {
        return fail(match suffix {
            "m" => "m is milli (1/1000 byte) in Kubernetes; write Mi or M",
            "K" | "KB" => "write Ki (1024) or k (1000)",
            "GB" | "MB" | "TB" | "kB" => {
                "write Gi/Mi/Ti (powers of 1024) or G/M/T (powers of 1000)"
            }
            s if s.starts_with(['e', 'E']) => "exponents are not taken; write the suffix (G, Gi)",
            _ => "unknown suffix; known are Ki Mi Gi Ti Pi Ei and k M G T P",
        });
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return fail("expected a number before the suffix");
    }
    if !whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return fail("expected a number before the suffix");
    }
    // At most 40 digits in all: u128 holds 10^38, so cap each part before multiplying.
    let digits = |d: &str| -> Option<u128> {
        if d.len() > 30 {
            return None;
        }
        d.bytes().try_fold(0u128, |v, b| {
            v.checked_mul(10)?.checked_add(u128::from(b - b'0'))
        })
    };
    let too_large = "it is larger than 16 EiB";
    let (Some(whole), Some(numerator)) = (digits(whole), digits(fraction)) else {
        return fail(too_large);
    };
    let Some(bytes) = whole.checked_mul(multiplier) else {
        return fail(too_large);
    };
    // The fraction, rounded up to a whole byte.
    let scale = 10u128.pow(fraction.len() as u32);
    let Some(fraction_bytes) = numerator.checked_mul(multiplier).map(|n| n.div_ceil(scale)) else {
        return fail(too_large);
    };
    let total = bytes.saturating_add(fraction_bytes);
    // u64::MAX itself is the "too large" marker of crate::units::Checked.
    if total >= u128::from(u64::MAX) {
        return fail(too_large);
    }
    if total == 0 {
        return fail("it is zero");
    }
    Ok(total as u64)
}

/// What a limit gets on top of the estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Headroom {
    /// Hundredths of a percent of the estimate (`10%` is 1000).
    Percent {
        basis_points: u64,
    },
    Bytes {
        bytes: u64,
    },
}

impl Default for Headroom {
    fn default() -> Headroom {
        Headroom::Percent { basis_points: 1000 }
    }
}

impl Headroom {
    /// `10%`, `12.5%`, or a size (`512Mi`); percentages from 0 to 1000.
    pub fn parse(s: &str) -> Result<Headroom, String> {
        let text = s.trim();
        let Some(percent) = text.strip_suffix('%') else {
            return parse_quantity(text)
                .map(|bytes| Headroom::Bytes { bytes })
                .map_err(|e| format!("{e}; or a percentage such as 10%"));
        };
        let bad = || {
            format!("{s:?} is not a headroom: expected 0% to 1000% (two decimals at most) or a size such as 512Mi")
        };
        let (whole, fraction) = percent.split_once('.').unwrap_or((percent, ""));
        let all_digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 4 || fraction.len() > 2 {
            return Err(bad());
        }
        if !all_digits(whole) || !all_digits(fraction) {
            return Err(bad());
        }
        let whole: u64 = whole.parse().map_err(|_| bad())?;
        let fraction: u64 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
        let basis_points = whole * 100 + fraction;
        if basis_points > 100_000 {
            return Err(bad());
        }
        Ok(Headroom::Percent { basis_points })
    }

    /// The bytes added to `base`.
    pub fn on(self, base: u64) -> crate::units::Checked {
        use crate::units::Checked;
        match self {
            Headroom::Percent { basis_points } => {
                (Checked::new(base) * basis_points).div_ceil(10_000u64)
            }
            Headroom::Bytes { bytes } => Checked::new(bytes),
        }
    }

    /// `10%`, `512 MiB`.
    pub fn describe(self) -> String {
        match self {
            Headroom::Percent { basis_points } if basis_points % 100 == 0 => {
                format!("{}%", basis_points / 100)
            }
            Headroom::Percent { basis_points } => {
                format!("{}.{:02}%", basis_points / 100, basis_points % 100)
            }
            Headroom::Bytes { bytes } => crate::units::bytes(bytes),
        }
    }
}

const MIB: u64 = 1 << 20;

/// `bytes` rounded up to a whole MiB; `None` when that passes 16 EiB.
pub fn round_up_mib(bytes: u64) -> Option<u64> {
    bytes.checked_next_multiple_of(MIB)
}

/// A quantity Kubernetes reads back as exactly `bytes` (a whole number of MiB): `16Gi` when
/// it is a whole number of GiB, else `3277Mi`.
pub fn kubernetes(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    if bytes > 0 && bytes % GIB == 0 {
        format!("{}Gi", bytes / GIB)
    } else if bytes % MIB == 0 {
        format!("{}Mi", bytes / MIB)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_spellings() {
        for (text, bytes) in [
            ("16Gi", 16u64 << 30),
            ("512Mi", 512 << 20),
            ("16G", 16_000_000_000),
            ("64k", 64_000),
            ("1073741824", 1 << 30),
            ("1.5Gi", 3 << 29),
            (" 2GiB ", 2 << 30),
            ("+1Ki", 1024),
            // Rounded up to a byte, as Kubernetes does.
            ("0.001k", 1),
            ("1.0001k", 1001),
            ("7Ei", 7 << 60),
        ] {
            assert_eq!(parse_quantity(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn hostile_or_ambiguous_sizes_are_one_line_errors() {
        for (text, says) in [
            ("5Zi", "unknown suffix"),
            ("-1", "negative"),
            ("99999999999999999999Gi", "larger than 16 EiB"),
            ("16Ei", "larger than 16 EiB"),
            ("18446744073709551615", "larger than 16 EiB"),
            ("abc", "expected a number"),
            ("", "empty"),
            ("0", "zero"),
            ("0Mi", "zero"),
            ("64m", "milli"),
            ("16GB", "powers of 1024"),
            ("1e9", "exponents"),
            ("1.2.3Gi", "expected a number"),
            ("Gi", "expected a number"),
            ("5 Gi", "unknown suffix"),
            (".Gi", "expected a number"),
            ("1_000", "unknown suffix"),
            (&"9".repeat(41), "too long"),
        ] {
            let err = parse_quantity(text).expect_err(text).to_string();
            assert!(err.contains(says), "{text}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn headroom() {
        assert_eq!(
            Headroom::parse("10%"),
            Ok(Headroom::Percent { basis_points: 1000 })
        );
        assert_eq!(
            Headroom::parse("12.5%"),
            Ok(Headroom::Percent { basis_points: 1250 })
        );
        assert_eq!(
            Headroom::parse("512Mi"),
            Ok(Headroom::Bytes { bytes: 512 << 20 })
        );
        for bad in ["-5%", "1001%", "1.234%", "%", "x%", "99999999999%"] {
            assert!(Headroom::parse(bad).is_err(), "{bad}");
        }
        let ten = Headroom::default();
        assert_eq!(ten.on(1000).get(), Some(100));
        assert_eq!(ten.on(1001).get(), Some(101), "rounded up");
        assert!(ten.on(u64::MAX - 1).is_too_large());
        assert_eq!(ten.describe(), "10%");
        assert_eq!(Headroom::parse("12.5%").unwrap().describe(), "12.50%");
    }

    #[test]
    fn yaml_quantities() {
        assert_eq!(kubernetes(16 << 30), "16Gi");
        assert_eq!(kubernetes(3277 << 20), "3277Mi");
        assert_eq!(round_up_mib(1), Some(1 << 20));
        assert_eq!(round_up_mib(1 << 20), Some(1 << 20));
        assert_eq!(round_up_mib(u64::MAX - 1), None);
        // What the snippet prints reads back as the same bytes.
        for b in [1u64 << 20, 5 << 30, 3277 << 20] {
            assert_eq!(parse_quantity(&kubernetes(b)), Ok(b));
        }
    }
}
