//! Is a series growing, or did it level off? A robust slope (Theil–Sen: the median of the
//! slopes between every pair of points) shrugs off the odd spike that an ordinary
//! least-squares fit would follow, and a growth claim must also hold in the series' last
//! stretch, so a load-time ramp that has since levelled off reads as a plateau, not a leak.
//!
//! A rise is only a leak when the recording can tell it from an oscillation: the rise must
//! last a minimum time, and a series that falls back now and then must have done so for
//! several of its own cycles with its lows climbing too. A short look at a cycle's rising
//! half is neither.

use serde::{Deserialize, Serialize};

/// Thresholds for calling a series a leak.
#[derive(Debug, Clone)]
pub struct LeakOptions {
    /// Fewer points than this say nothing.
    pub min_points: usize,
    /// Growth over the window must reach this many bytes…
    pub min_growth_bytes: f64,
    /// …and this fraction of the series' level.
    pub min_growth_fraction: f64,
    /// Share of point pairs (later vs earlier) that must go up (ties count half).
    pub min_rising_pairs: f64,
    /// Longer series are thinned to this many points (the slope is O(n²)).
    pub max_points: usize,
    /// Judge only the last this many seconds of each series (`None`: all of it).
    pub window_s: Option<f64>,
    /// A growth claim needs a rise at least this long: a shorter one may be half a cycle.
    pub min_span_s: f64,
    /// A series that falls back (by more than noise) must show at least this many falls,
    /// with its lows rising, before its growth counts: several of its own periods.
    pub min_cycles: usize,
}

impl Default for LeakOptions {
    fn default() -> Self {
        LeakOptions {
            min_points: 8,
            min_growth_bytes: 4.0 * 1024.0 * 1024.0,
            min_growth_fraction: 0.02,
            min_rising_pairs: 0.75,
            max_points: 300,
            window_s: None,
            min_span_s: 60.0,
            min_cycles: 3,
        }
    }
}

/// What a series did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "trend", rename_all = "snake_case")]
pub enum Trend {
    /// Still growing at the end of the recording.
    Growing {
        bytes_per_hour: f64,
        since_t_s: f64,
        grown_bytes: f64,
        /// The series' own values at `since_t_s` and at its end, as the tables show them.
        #[serde(default)]
        from_bytes: f64,
        #[serde(default)]
        to_bytes: f64,
        /// The series' highest point (the peak table's), which may lie before the rise.
        #[serde(default)]
        peak_bytes: f64,
        #[serde(default)]
        peak_t_s: f64,
    },
    /// Grew, then stopped: flat within noise since `since_t_s`.
    Plateau {
        since_t_s: f64,
        level_bytes: f64,
        grown_bytes: f64,
        /// The series' first value (the peak table's "start") and its highest point.
        #[serde(default)]
        start_bytes: f64,
        #[serde(default)]
        peak_bytes: f64,
        #[serde(default)]
        peak_t_s: f64,
    },
}

/// The median of pairwise slopes (bytes per second). `None` with fewer than two distinct
/// times.
pub fn theil_sen(points: &[(f64, f64)]) -> Option<f64> {
    let mut slopes = Vec::with_capacity(points.len() * points.len().saturating_sub(1) / 2);
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            let dt = b.0 - a.0;
            if dt > 0.0 {
                slopes.push((b.1 - a.1) / dt);
            }
        }
    }
    median(&mut slopes)
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if v.len() % 2 == 1 {
        Some(m)
    } else {
        let below = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((below + m) / 2.0)
    }
}

/// Share of pairs (i < j) with y_j > y_i, a tie counting half: a long flat stretch (a
/// plateau) pulls the share towards one half however the ends compare.
fn rising_pairs(points: &[(f64, f64)]) -> f64 {
    let (mut up, mut pairs) = (0.0f64, 0u64);
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            pairs += 1;
            if b.1 > a.1 {
                up += 1.0;
            } else if b.1 == a.1 {
                up += 0.5;
            }
        }
    }
    if pairs == 0 {
        0.0
    } else {
        up / pairs as f64
    }
}

fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 2 {
        return points.to_vec();
    }
    let step = (points.len() - 1) as f64 / (max - 1) as f64;
    (0..max)
        .map(|i| points[((i as f64 * step).round() as usize).min(points.len() - 1)])
        .collect()
}

/// Whether `seg` grows steadily to its end: the slope is material, most pairs rise, and the
/// last quarter still climbs at a good share of the overall rate.
fn grows(seg: &[(f64, f64)], o: &LeakOptions) -> Option<(f64, f64)> {
    if seg.len() < o.min_points {
        return None;
    }
    let slope = theil_sen(seg)?;
    let span = seg.last()?.0 - seg.first()?.0;
    let growth = slope * span;
    let mut levels: Vec<f64> = seg.iter().map(|p| p.1).collect();
    let level = median(&mut levels)?;
    if slope <= 0.0
        || growth < o.min_growth_bytes
        || growth < o.min_growth_fraction * level.abs()
        || rising_pairs(seg) < o.min_rising_pairs
    {
        return None;
    }
    // Steady: the later half climbs too, and so does the last quarter (else it levelled off).
    let late_slope = theil_sen(&seg[seg.len() / 2..])?;
    let tail_start = seg.len() - (seg.len() / 4).max(4).min(seg.len());
    let tail_slope = theil_sen(&seg[tail_start..])?;
    if late_slope < 0.3 * slope || tail_slope < 0.3 * slope {
        return None;
    }
    // Linear: a ramp that bent into a plateau is far from its own line for most points.
    let mut offsets: Vec<f64> = seg.iter().map(|p| p.1 - slope * p.0).collect();
    let intercept = median(&mut offsets)?;
    let mut residuals: Vec<f64> = seg
        .iter()
        .map(|p| (p.1 - intercept - slope * p.0).abs())
        .collect();
    if median(&mut residuals)? > 0.2 * growth {
        return None;
    }
    Some((slope, growth))
}

/// Falls of more than `threshold` below the running high, and the low after each: one
/// entry per cycle of a series that goes up and down.
fn cycles(seg: &[(f64, f64)], threshold: f64) -> Vec<f64> {
    let mut lows = Vec::new();
    let Some(first) = seg.first() else {
        return lows;
    };
    let (mut high, mut low, mut falling) = (first.1, first.1, false);
    for p in seg {
        if falling {
            if p.1 < low {
                low = p.1;
            } else if p.1 > low + threshold {
                lows.push(low);
                (falling, high) = (false, p.1);
            }
        } else if p.1 > high {
            high = p.1;
        } else if p.1 < high - threshold {
            (falling, low) = (true, p.1);
        }
    }
    if falling {
        lows.push(low);
    }
    lows
}

/// Whether a rising stretch can be told from part of a cycle: long enough, its highest
/// point near its end (else the peak table would contradict "growing"), and, when it falls
/// back now and then, several falls with the lows climbing by a material amount.
fn distinguishable(seg: &[(f64, f64)], growth: f64, o: &LeakOptions) -> bool {
    let (Some(first), Some(last)) = (seg.first(), seg.last()) else {
        return false;
    };
    if last.0 - first.0 < o.min_span_s {
        return false;
    }
    let noise = (o.min_growth_bytes / 2.0).max(0.1 * growth);
    let high = seg.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let tail = &seg[seg.len() - (seg.len() / 4).max(1)..];
    let tail_high = tail.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if tail_high < high - noise {
        return false;
    }
    let lows = cycles(seg, noise);
    if lows.is_empty() {
        return true;
    }
    let climbed = lows.last().copied().unwrap_or(0.0) - lows.first().copied().unwrap_or(0.0);
    lows.len() >= o.min_cycles && climbed >= o.min_growth_bytes.max(0.25 * growth)
}

/// The series' highest point, the first time it was reached.
fn highest(pts: &[(f64, f64)]) -> (f64, f64) {
    pts.iter().copied().fold(
        (0.0, f64::NEG_INFINITY),
        |b, p| if p.1 > b.1 { p } else { b },
    )
}

/// The first point of `seg` that lies on its growth line (within a quarter of the growth):
/// a step before a steady climb (a load, then a leak) is not part of the leak.
fn on_the_line(seg: &[(f64, f64)], slope: f64, growth: f64, o: &LeakOptions) -> usize {
    let mut offsets: Vec<f64> = seg.iter().map(|p| p.1 - slope * p.0).collect();
    let Some(intercept) = median(&mut offsets) else {
        return 0;
    };
    let tolerance = (0.25 * growth).max(o.min_growth_bytes / 2.0);
    seg.iter()
        .position(|p| (p.1 - (intercept + slope * p.0)).abs() <= tolerance)
        .unwrap_or(0)
}

/// The index where `y = c + s·max(0, t − t_b)` fits best (least squares): where a flat
/// series started to climb.
fn hinge(pts: &[(f64, f64)]) -> usize {
    let n = pts.len();
    let mut best = (f64::INFINITY, 0);
    for b in 0..n.saturating_sub(2) {
        let tb = pts[b].0;
        let xs = pts.iter().map(|p| (p.0 - tb).max(0.0));
        let (mut sx, mut sy, mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (x, p) in xs.zip(pts) {
            let y = p.1;
            sx += x;
            sy += y;
            sxx += x * x;
            sxy += x * y;
            syy += y * y;
        }
        let nf = n as f64;
        let var_x = sxx - sx * sx / nf;
        if var_x <= 0.0 {
            continue;
        }
        let cov = sxy - sx * sy / nf;
        let sse = (syy - sy * sy / nf) - cov * cov / var_x;
        if cov > 0.0 && sse < best.0 {
            best = (sse, b);
        }
    }
    best.1
}

/// Judges one series of `(seconds, bytes)` points in time order. `None`: neither a leak
/// nor a plateau worth a word (flat, noisy, or too short).
pub fn assess(points: &[(f64, f64)], o: &LeakOptions) -> Option<Trend> {
    let from = match (o.window_s, points.last()) {
        (Some(w), Some(last)) => points.partition_point(|p| p.0 < last.0 - w),
        _ => 0,
    };
    let pts = thin(&points[from..], o.max_points);
    if pts.len() < o.min_points {
        return None;
    }
    // "Since" is where a flat-then-linear fit bends; if growth from there does not hold,
    // fall back to the earliest start from which it does.
    let bend = hinge(&pts);
    let steps = 16.min(pts.len());
    let starts = std::iter::once(bend).chain((0..steps).map(|k| k * pts.len() / steps));
    for start in starts {
        if pts.len() - start < o.min_points {
            continue;
        }
        let Some((slope, growth)) = grows(&pts[start..], o) else {
            continue;
        };
        let since = on_the_line(&pts[start..], slope, growth, o) + start;
        if !distinguishable(&pts[since..], growth, o) {
            continue;
        }
        let end = pts[pts.len() - 1];
        // The peak of the whole series, as the peak table reports it (not the thinned one).
        let (peak_t_s, peak_bytes) = highest(&points[from..]);
        return Some(Trend::Growing {
            bytes_per_hour: slope * 3600.0,
            since_t_s: pts[since].0,
            grown_bytes: growth.min(slope * (end.0 - pts[since].0)).max(0.0),
            from_bytes: pts[since].1,
            to_bytes: end.1,
            peak_bytes,
            peak_t_s,
        });
    }
    // A plateau: the series rose by a material amount, then stayed within a band around its
    // final level for at least the last quarter of the recording.
    let quarter = (pts.len() / 4).max(2);
    let mut head: Vec<f64> = pts[..quarter].iter().map(|p| p.1).collect();
    let mut tail: Vec<f64> = pts[pts.len() - quarter..].iter().map(|p| p.1).collect();
    let (start_level, end_level) = (median(&mut head)?, median(&mut tail)?);
    let grown = end_level - start_level;
    if grown < o.min_growth_bytes || grown < o.min_growth_fraction * end_level.abs() {
        return None;
    }
    let band = (0.02 * end_level.abs()).max(o.min_growth_bytes / 4.0);
    let mut since = pts.len() - 1;
    while since > 0 && (pts[since - 1].1 - end_level).abs() <= band {
        since -= 1;
    }
    let (t0, t_end) = (pts[0].0, pts[pts.len() - 1].0);
    if t_end - pts[since].0 < 0.25 * (t_end - t0) {
        return None;
    }
    let (peak_t_s, peak_bytes) = highest(&points[from..]);
    Some(Trend::Plateau {
        since_t_s: pts[since].0,
        level_bytes: end_level,
        grown_bytes: grown,
        start_bytes: pts[0].1,
        peak_bytes,
        peak_t_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

    fn noisy(i: usize) -> f64 {
        // Deterministic jitter of ±1.5 MiB.
        ((i * 7919 % 31) as f64 - 15.0) / 10.0 * MIB
    }

    #[test]
    fn slope_ignores_outliers() {
        let mut pts: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, 2.0 * i as f64)).collect();
        pts[10].1 = 1e9;
        pts[40].1 = -1e9;
        let s = theil_sen(&pts).unwrap();
        assert!((s - 2.0).abs() < 1e-9, "{s}");
    }

    #[test]
    fn steady_leak_is_growing_since_its_start() {
        // Flat at 1 GiB for 10 minutes, then +100 MiB/h for 50 minutes, sampled every 10 s.
        let pts: Vec<(f64, f64)> = (0..360)
            .map(|i| {
                let t = i as f64 * 10.0;
                let grow = if t > 600.0 {
                    (t - 600.0) / 3600.0 * 100.0 * MIB
                } else {
                    0.0
                };
                (t, 1024.0 * MIB + grow + noisy(i))
            })
            .collect();
        match assess(&pts, &LeakOptions::default()) {
            Some(Trend::Growing {
                bytes_per_hour,
                since_t_s,
                ..
            }) => {
                assert!(
                    (bytes_per_hour / MIB - 100.0).abs() < 10.0,
                    "{}",
                    bytes_per_hour / MIB
                );
                assert!((400.0..=900.0).contains(&since_t_s), "{since_t_s}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_window_looks_only_at_the_recent_past() {
        // A leak that stopped an hour ago: a leak over the whole recording, a plateau in the
        // last 30 minutes.
        let pts: Vec<(f64, f64)> = (0..720)
            .map(|i| {
                let t = i as f64 * 10.0;
                let y = 1000.0 + t.min(3600.0) / 3600.0 * 200.0;
                (t, y * MIB + noisy(i))
            })
            .collect();
        let all = assess(&pts, &LeakOptions::default());
        assert!(!matches!(all, Some(Trend::Growing { .. })), "{all:?}");
        let recent = LeakOptions {
            window_s: Some(1800.0),
            ..Default::default()
        };
        assert_eq!(assess(&pts, &recent), None);
        let early: Vec<(f64, f64)> = pts[..360].to_vec();
        assert!(matches!(
            assess(&early, &recent),
            Some(Trend::Growing { .. })
        ));
    }

    #[test]
    fn a_load_step_before_a_leak_is_not_part_of_it() {
        // 5 MiB, a jump to 900 MiB at 10 s, then +60 MiB over the next 170 s.
        let pts: Vec<(f64, f64)> = (0..180)
            .map(|i| {
                let t = i as f64;
                let y = if t < 10.0 {
                    5.0
                } else {
                    900.0 + (t - 10.0) * 60.0 / 170.0
                };
                (t, y * MIB + noisy(i) / 4.0)
            })
            .collect();
        match assess(&pts, &LeakOptions::default()) {
            Some(Trend::Growing {
                since_t_s,
                bytes_per_hour,
                ..
            }) => {
                assert!((10.0..=20.0).contains(&since_t_s), "{since_t_s}");
                let per_hour = bytes_per_hour / MIB;
                assert!((1000.0..=1500.0).contains(&per_hour), "{per_hour}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_plateau_with_a_late_bump_is_not_a_leak() {
        // Imports to 881 MiB in a minute, flat for 100 s, then +18 MiB when serving starts.
        let pts: Vec<(f64, f64)> = (0..180)
            .map(|i| {
                let t = i as f64;
                let y = if t < 60.0 {
                    5.0 + t / 60.0 * 876.0
                } else if t < 160.0 {
                    881.0
                } else {
                    899.0
                };
                (t, y * MIB)
            })
            .collect();
        assert!(!matches!(
            assess(&pts, &LeakOptions::default()),
            Some(Trend::Growing { .. })
        ));
    }

    #[test]
    fn load_ramp_then_flat_is_a_plateau() {
        let pts: Vec<(f64, f64)> = (0..200)
            .map(|i| {
                let t = i as f64;
                let level = if t < 50.0 { t / 50.0 * 2048.0 } else { 2048.0 };
                (t, level * MIB + noisy(i))
            })
            .collect();
        match assess(&pts, &LeakOptions::default()) {
            Some(Trend::Plateau { since_t_s, .. }) => {
                assert!((45.0..=60.0).contains(&since_t_s), "{since_t_s}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// A heap that rises and falls every 8 s (highest at 0 s), sampled every 100 ms.
    fn oscillating(seconds: f64) -> Vec<(f64, f64)> {
        (0..(seconds * 10.0) as usize)
            .map(|i| {
                let t = i as f64 / 10.0;
                let phase = (t / 8.0 * std::f64::consts::TAU).cos();
                (t, (100.0 + 40.0 * phase) * MIB + noisy(i) / 8.0)
            })
            .collect()
    }

    #[test]
    fn an_oscillation_is_not_a_leak_however_long_it_is_watched() {
        let o = LeakOptions::default();
        for seconds in [10.0, 30.0, 120.0, 600.0] {
            let trend = assess(&oscillating(seconds), &o);
            assert!(
                !matches!(trend, Some(Trend::Growing { .. })),
                "{seconds} s: {trend:?}"
            );
        }
        // Without the minimum span, the rising half of the 10-s look would pass for one.
        let eager = LeakOptions {
            min_span_s: 0.0,
            ..Default::default()
        };
        let short = oscillating(10.0);
        assert!(
            !matches!(assess(&short, &eager), Some(Trend::Growing { .. })),
            "a rise that ends below the series' own earlier high is not growth"
        );
    }

    #[test]
    fn steady_growth_for_two_minutes_is_a_leak_five_seconds_is_not() {
        // +1 MiB a second, in steps, on 50 MiB, sampled every 100 ms.
        let pts: Vec<(f64, f64)> = (0..1200)
            .map(|i| {
                let t = i as f64 / 10.0;
                (t, (50.0 + t.floor()) * MIB + noisy(i) / 8.0)
            })
            .collect();
        match assess(&pts, &LeakOptions::default()) {
            Some(Trend::Growing {
                bytes_per_hour,
                from_bytes,
                to_bytes,
                peak_bytes,
                ..
            }) => {
                let per_hour = bytes_per_hour / MIB;
                assert!((3300.0..=3900.0).contains(&per_hour), "{per_hour}");
                assert!(from_bytes < to_bytes && to_bytes <= peak_bytes);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(assess(&pts[..50], &LeakOptions::default()), None);
    }

    #[test]
    fn a_sawtooth_whose_lows_climb_is_a_leak() {
        // Up 40 MiB over 6 s, down 30 MiB, every 8 s for 4 minutes: +10 MiB a cycle.
        let pts: Vec<(f64, f64)> = (0..2400)
            .map(|i| {
                let t = i as f64 / 10.0;
                let cycle = (t / 8.0).floor();
                let within = t - 8.0 * cycle;
                let saw = if within < 6.0 {
                    within / 6.0 * 40.0
                } else {
                    0.0
                };
                (t, (200.0 + 10.0 * cycle + saw) * MIB)
            })
            .collect();
        assert!(matches!(
            assess(&pts, &LeakOptions::default()),
            Some(Trend::Growing { .. })
        ));
        let cycles_seen = cycles(&pts, 4.0 * MIB).len();
        assert!((29..=31).contains(&cycles_seen), "{cycles_seen}");
    }

    #[test]
    fn a_plateau_names_the_series_own_start_and_peak() {
        let pts: Vec<(f64, f64)> = (0..200)
            .map(|i| {
                let t = i as f64;
                (t, if t < 50.0 { 10.0 + t } else { 60.0 } * MIB)
            })
            .collect();
        match assess(&pts, &LeakOptions::default()) {
            Some(Trend::Plateau {
                start_bytes,
                peak_bytes,
                peak_t_s,
                ..
            }) => {
                assert_eq!(start_bytes, 10.0 * MIB);
                assert_eq!(peak_bytes, 60.0 * MIB);
                assert_eq!(peak_t_s, 50.0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flat_noise_and_spikes_say_nothing() {
        let flat: Vec<(f64, f64)> = (0..100)
            .map(|i| (i as f64, 500.0 * MIB + noisy(i)))
            .collect();
        assert_eq!(assess(&flat, &LeakOptions::default()), None);
        // Allocate 200 MiB, free it: a peak, not a leak.
        let spike: Vec<(f64, f64)> = (0..12)
            .map(|i| {
                (
                    i as f64 * 0.25,
                    if (4..8).contains(&i) { 210.0 } else { 10.0 } * MIB,
                )
            })
            .collect();
        assert_eq!(assess(&spike, &LeakOptions::default()), None);
        assert_eq!(assess(&flat[..3], &LeakOptions::default()), None);
    }
}
