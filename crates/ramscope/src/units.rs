//! Byte sizes for people: binary units, three significant digits.

/// `1536` → `1.5 KiB`; `0` → `0 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else if value >= 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// A range of sizes, short: `2.98–4.47 GiB` when both ends share a unit, else
/// `512 MiB–1.20 GiB`.
pub fn bytes_range(low: u64, high: u64) -> String {
    let (lo, hi) = (bytes(low), bytes(high));
    match (lo.rsplit_once(' '), hi.rsplit_once(' ')) {
        (Some((lv, lu)), Some((hv, hu))) if lu == hu => format!("{lv}–{hv} {hu}"),
        _ => format!("{lo}–{hi}"),
    }
}

/// Signed sizes for differences: `+12.0 MiB`, `-3.00 GiB`.
pub fn signed_bytes(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "+" };
    format!("{sign}{}", bytes(n.unsigned_abs()))
}

/// Parses `512`, `512B`, `64K`, `64KiB`, `1.5G`, `2GB` (binary multiples, as vLLM and
/// Kubernetes users write them) into bytes.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" | "ki" => 1024.0,
        "m" | "mb" | "mib" | "mi" => 1024f64.powi(2),
        "g" | "gb" | "gib" | "gi" => 1024f64.powi(3),
        "t" | "tb" | "tib" | "ti" => 1024f64.powi(4),
        _ => return None,
    };
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Some((value * mult).round() as u64)
}

/// Parses `250ms`, `1s`, `1.5s`, `5m`, `2h` (a bare number is seconds) into a duration.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" | "sec" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    if !seconds.is_finite() || !(0.0..=1e9).contains(&seconds) {
        return None;
    }
    Some(std::time::Duration::from_secs_f64(seconds))
}

/// Seconds for people: `0.25 s`, `12.3 s`, `4m05s`, `2h03m`.
pub fn seconds(s: f64) -> String {
    if !s.is_finite() {
        return "-".into();
    }
    if s < 10.0 {
        format!("{s:.2} s")
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

/// A count of bytes (or elements) computed without wrapping.
///
/// Release builds wrap `u64` arithmetic silently, so a formula fed an absurd flag could print a
/// small, plausible number. Here every step is checked: once a step would pass `u64::MAX` the
/// value is *too large* and stays so (it behaves like +∞: `min` with a finite value gives the
/// finite value, a finite value divided by it gives 0, times 0 gives 0). Division by zero is
/// also too large, so no input can panic. `u64::MAX` is the too-large value's plain form:
/// [`Checked::raw`] returns it and [`Checked::new`] reads it back as too large, so a `u64`
/// field can carry the condition to the check that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked(Option<u64>);

impl Checked {
    /// The too-large value.
    pub const TOO_LARGE: Checked = Checked(None);

    pub const fn new(v: u64) -> Checked {
        if v == u64::MAX {
            Checked(None)
        } else {
            Checked(Some(v))
        }
    }

    /// A float (bytes from GiB × 2^30, say): too large when not finite or ≥ 2^64; negative is 0.
    pub fn from_f64(v: f64) -> Checked {
        // 2^64 is exactly representable; anything at or above it does not fit.
        if !v.is_finite() || v >= 18_446_744_073_709_551_616.0 {
            Checked::TOO_LARGE
        } else {
            Checked::new(v.max(0.0) as u64)
        }
    }

    /// The value, `None` when too large.
    pub fn get(self) -> Option<u64> {
        self.0
    }

    /// The value, `u64::MAX` when too large.
    pub fn raw(self) -> u64 {
        self.0.unwrap_or(u64::MAX)
    }

    pub fn is_too_large(self) -> bool {
        self.0.is_none()
    }

    fn map2(self, other: Checked, f: impl Fn(u64, u64) -> Option<u64>) -> Checked {
        match (self.0, other.0) {
            (Some(a), Some(b)) => f(a, b).map_or(Checked::TOO_LARGE, Checked::new),
            _ => Checked::TOO_LARGE,
        }
    }

    pub fn min(self, other: impl Into<Checked>) -> Checked {
        match (self.0, other.into().0) {
            (Some(a), Some(b)) => Checked(Some(a.min(b))),
            (Some(a), None) | (None, Some(a)) => Checked(Some(a)),
            (None, None) => Checked::TOO_LARGE,
        }
    }

    pub fn max(self, other: impl Into<Checked>) -> Checked {
        self.map2(other.into(), |a, b| Some(a.max(b)))
    }

    /// `self − other`, 0 when `other` is larger (too large stays too large).
    pub fn saturating_sub(self, other: impl Into<Checked>) -> Checked {
        match (self.0, other.into().0) {
            (Some(a), Some(b)) => Checked(Some(a.saturating_sub(b))),
            (Some(_), None) => Checked(Some(0)),
            (None, _) => Checked::TOO_LARGE,
        }
    }

    pub fn div_ceil(self, d: impl Into<Checked>) -> Checked {
        match (self.0, d.into().0) {
            (_, Some(0)) => Checked::TOO_LARGE,
            (Some(a), Some(d)) => Checked::new(a.div_ceil(d)),
            (Some(0), None) => Checked(Some(0)),
            (Some(_), None) => Checked(Some(1)),
            (None, _) => Checked::TOO_LARGE,
        }
    }

    /// The next power of two at or above `max(self, 1)` (PyTorch's pinned block sizes).
    pub fn pow2(self) -> Checked {
        match self.0 {
            Some(v) => v
                .max(1)
                .checked_next_power_of_two()
                .map_or(Checked::TOO_LARGE, Checked::new),
            None => Checked::TOO_LARGE,
        }
    }
}

impl From<u64> for Checked {
    fn from(v: u64) -> Checked {
        Checked::new(v)
    }
}

/// `None` (a computation that did not fit) is too large.
impl From<Option<u64>> for Checked {
    fn from(v: Option<u64>) -> Checked {
        v.map_or(Checked::TOO_LARGE, Checked::new)
    }
}

impl<T: Into<Checked>> std::ops::Add<T> for Checked {
    type Output = Checked;
    fn add(self, rhs: T) -> Checked {
        self.map2(rhs.into(), u64::checked_add)
    }
}

impl<T: Into<Checked>> std::ops::Mul<T> for Checked {
    type Output = Checked;
    fn mul(self, rhs: T) -> Checked {
        match (self.0, rhs.into()) {
            // Zero times anything, however large, is nothing.
            (Some(0), _) | (_, Checked(Some(0))) => Checked(Some(0)),
            (a, b) => Checked(a).map2(b, u64::checked_mul),
        }
    }
}

impl<T: Into<Checked>> std::ops::Div<T> for Checked {
    type Output = Checked;
    fn div(self, rhs: T) -> Checked {
        match (self.0, rhs.into().0) {
            (_, Some(0)) | (None, _) => Checked::TOO_LARGE,
            (Some(a), Some(d)) => Checked(Some(a / d)),
            (Some(_), None) => Checked(Some(0)),
        }
    }
}

impl std::ops::Add<Checked> for u64 {
    type Output = Checked;
    fn add(self, rhs: Checked) -> Checked {
        Checked::new(self) + rhs
    }
}

impl std::ops::Mul<Checked> for u64 {
    type Output = Checked;
    fn mul(self, rhs: Checked) -> Checked {
        Checked::new(self) * rhs
    }
}

impl std::iter::Sum for Checked {
    fn sum<I: Iterator<Item = Checked>>(iter: I) -> Checked {
        iter.fold(Checked::new(0), |a, b| a + b)
    }
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("≥ 16 EiB"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_share_a_unit_when_they_can() {
        assert_eq!(bytes_range(3 << 30, 9 << 29), "3.00–4.50 GiB");
        assert_eq!(bytes_range(512 << 20, 3 << 29), "512 MiB–1.50 GiB");
        assert_eq!(bytes_range(0, 0), "0–0 B");
    }

    #[test]
    fn formats() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(512 << 20), "512 MiB");
        assert_eq!(bytes(2_469_606_195), "2.30 GiB");
        assert_eq!(signed_bytes(-(64 << 20)), "-64.0 MiB");
    }

    #[test]
    fn parses() {
        assert_eq!(parse_bytes("64K"), Some(65536));
        assert_eq!(parse_bytes("1.5GiB"), Some(1610612736));
        assert_eq!(parse_bytes("12"), Some(12));
        assert_eq!(parse_bytes("12 parsecs"), None);
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5m"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(seconds(245.0), "4m05s");
    }
    #[test]
    fn checked_arithmetic_never_wraps() {
        let big = Checked::new(1 << 62);
        assert!((big * 4u64).is_too_large());
        assert!((big + big + big + big).is_too_large());
        assert_eq!((big * 2u64).get(), Some(1 << 63));
        // Too large behaves like +∞ where the answer is still finite.
        let inf = big * 8u64;
        assert_eq!(inf.min(5u64).get(), Some(5));
        assert!(inf.max(5u64).is_too_large());
        assert_eq!((Checked::new(7) / inf).get(), Some(0));
        assert_eq!((inf * Checked::new(0)).get(), Some(0));
        assert!((inf / 2u64).is_too_large());
        assert_eq!(Checked::new(3).saturating_sub(inf).get(), Some(0));
        // No input panics: division by zero is too large, not a crash.
        assert!((Checked::new(3) / 0u64).is_too_large());
        assert!(Checked::new(3).div_ceil(0u64).is_too_large());
        assert!(Checked::new((1 << 63) + 1).pow2().is_too_large());
        assert_eq!(Checked::new(0).pow2().get(), Some(1));
        // u64::MAX round-trips as too large.
        assert!(Checked::new(u64::MAX).is_too_large());
        assert_eq!(Checked::TOO_LARGE.raw(), u64::MAX);
        assert!(Checked::from_f64(1e20 * (1u64 << 30) as f64).is_too_large());
        assert!(Checked::from_f64(f64::NAN).is_too_large());
        assert_eq!(Checked::from_f64(1.5 * 1024.0).get(), Some(1536));
        let s: Checked = [1u64, 2, 3].into_iter().map(Checked::new).sum();
        assert_eq!(s.get(), Some(6));
        assert_eq!(inf.to_string(), "≥ 16 EiB");
    }
}
