//! Axis ticks a reader can use: round steps (1, 2 or 5 times a power of ten), zero
//! included, and no decimals that say nothing ("250", not "250.0").

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// A scale for one axis: the unit its labels are in and the ticks, in the axis's own units
/// (bytes or seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    /// The top (or right) end of the axis, a whole number of steps.
    pub max: f64,
    pub ticks: Vec<(f64, String)>,
    /// `MiB`, `GiB`, `s`, `min`, `h`.
    pub unit: &'static str,
}

/// The round step that divides `span` into at most about `target` parts.
fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw * 0.999)
        .unwrap_or(10.0 * magnitude)
}

/// Ticks from 0 to at least `max` (in `per_unit`s), labelled with as many decimals as the
/// step needs and no more.
fn ticks(max: f64, per_unit: f64, target: usize, unit: &'static str, round_up: bool) -> Scale {
    let top = (max / per_unit).max(0.0);
    let top = if top > 0.0 { top } else { 1.0 };
    let step = nice_step(top, target);
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let steps = if round_up {
        (top / step - 1e-9).ceil().max(1.0)
    } else {
        (top / step + 1e-9).floor().max(1.0)
    };
    let ticks = (0..=steps as usize)
        .map(|k| {
            let v = k as f64 * step;
            let label = if k == 0 {
                "0".to_string()
            } else {
                format!("{v:.decimals$}")
            };
            (v * per_unit, label)
        })
        .collect();
    Scale {
        max: if round_up {
            steps * step * per_unit
        } else {
            max
        },
        ticks,
        unit,
    }
}

/// A byte axis from 0 to a round value at or above `max_bytes`, in MiB or GiB.
pub fn bytes_scale(max_bytes: f64) -> Scale {
    if max_bytes >= 2.0 * GIB {
        ticks(max_bytes, GIB, 5, "GiB", true)
    } else {
        ticks(max_bytes, MIB, 5, "MiB", true)
    }
}

/// A time axis from 0 to `max_s` exactly (the recording's end), in seconds, minutes or
/// hours.
pub fn time_scale(max_s: f64, target: usize) -> Scale {
    if max_s > 2.0 * 3600.0 {
        ticks(max_s, 3600.0, target, "h", false)
    } else if max_s > 600.0 {
        ticks(max_s, 60.0, target, "min", false)
    } else {
        ticks(max_s, 1.0, target, "s", false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(s: &Scale) -> Vec<&str> {
        s.ticks.iter().map(|t| t.1.as_str()).collect()
    }

    #[test]
    fn byte_ticks_are_round_and_start_at_zero() {
        let s = bytes_scale(254.0 * MIB);
        assert_eq!(s.unit, "MiB");
        assert_eq!(labels(&s), ["0", "100", "200", "300"]);
        assert_eq!(s.max, 300.0 * MIB);
        let g = bytes_scale(5.3 * GIB);
        assert_eq!(g.unit, "GiB");
        assert_eq!(labels(&g), ["0", "2", "4", "6"]);
        let small = bytes_scale(0.3 * MIB);
        assert_eq!(labels(&small), ["0", "0.1", "0.2", "0.3"]);
    }

    #[test]
    fn time_ticks_include_zero_and_stop_at_the_end() {
        let s = time_scale(20.9, 8);
        assert_eq!(s.unit, "s");
        assert_eq!(labels(&s), ["0", "5", "10", "15", "20"]);
        assert_eq!(s.max, 20.9);
        assert_eq!(time_scale(3000.0, 6).unit, "min");
        assert_eq!(time_scale(86400.0, 6).unit, "h");
        assert_eq!(labels(&time_scale(0.0, 5))[0], "0");
    }
}
