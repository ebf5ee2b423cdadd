//! What the charts and the CSV draw: each process's category split held from one `smaps`
//! read to the next, as a step, and never above what the process holds now.
//!
//! A full `smaps` read is the only source of categories, and it is taken only every few
//! seconds (or when RSS moves). Between reads the split is *held*, not interpolated: memory
//! that appears between two reads appeared at some moment between them, not gradually. A held
//! split can be stale in one direction: after a large free RSS drops at once while the split
//! still says the memory is there. So a held split is scaled down to the process's current
//! RSS (read every tick) and to any PSS total read since (`smaps_rollup`), whichever is
//! lower; it is never scaled up, since a rise has no split until the next read.

use std::collections::BTreeMap;

use crate::attribute::Category;
use crate::proc::Pid;
use crate::snapshot::{ProcessSnapshot, ReadTier};

use super::format::Recording;

/// One band of a stacked chart: a category, or a process in the by-process view.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub name: String,
    /// Set for category bands, so each category keeps its colour across charts.
    pub category: Option<Category>,
    /// One value per entry of [`Timeline::times`], held until the next.
    pub values: Vec<u64>,
}

/// A stacked chart's data: bands of PSS over time plus an RSS line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    pub title: String,
    /// A line under the title (the command and start date on the standalone SVG).
    pub subtitle: String,
    /// Sample times; band values hold from one to the next, the last until `end_s`.
    pub times: Vec<f64>,
    /// Stacking order: the first band is at the bottom.
    pub bands: Vec<Band>,
    /// RSS at every sample (the process's, or the tree's sum).
    pub rss: Vec<(f64, u64)>,
    /// The x axis: the whole recording, so every chart of one report lines up.
    pub x_range: (f64, f64),
    /// How long the last value holds when a series has a single time (one sample interval).
    pub step_s: f64,
    /// What the stack is: `category` or `process`.
    pub stacked_by: &'static str,
}

impl Timeline {
    /// The time and height of the stack's highest point (the first time it was reached).
    pub fn peak(&self) -> Option<(f64, u64)> {
        (0..self.times.len())
            .map(|i| {
                let sum = self
                    .bands
                    .iter()
                    .map(|b| b.values.get(i).copied().unwrap_or(0))
                    .sum::<u64>();
                (self.times[i], sum)
            })
            .fold(None, |best: Option<(f64, u64)>, p| match best {
                Some(b) if b.1 >= p.1 => Some(b),
                _ => Some(p),
            })
    }

    /// The time until which the last value holds.
    pub fn end_s(&self) -> f64 {
        match (self.times.first(), self.times.last()) {
            (Some(&a), Some(&b)) if b > a => b,
            (Some(&a), _) => a + self.step_s.max(0.0),
            _ => self.x_range.1,
        }
    }
}

/// A process's split as charted at one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldSplit {
    /// When the split was read (`smaps`).
    pub read_t_s: f64,
    /// Category PSS, held and scaled down to the process's current size when needed.
    pub pss: BTreeMap<Category, u64>,
}

/// Holds one process's latest `smaps` split from sample to sample.
#[derive(Debug, Default)]
pub struct Holder {
    split: Option<(f64, BTreeMap<Category, u64>)>,
    /// A PSS total read after the split (`smaps_rollup`), which bounds it.
    newer_pss: Option<u64>,
    identity: Option<(String, String)>,
}

impl Holder {
    /// Takes the process's entry in the sample at `t_s`; returns the split to draw for it,
    /// or `None` before its first `smaps` read.
    pub fn update(&mut self, t_s: f64, p: &ProcessSnapshot) -> Option<HeldSplit> {
        let identity = (p.name.clone(), p.cmdline.clone());
        if self.identity.as_ref().is_some_and(|i| *i != identity) {
            // An exec: the old program's split says nothing about the new one.
            self.split = None;
            self.newer_pss = None;
        }
        self.identity = Some(identity);
        if !p.categories.is_empty() {
            let pss = p
                .categories
                .iter()
                .map(|(&c, u)| (c, u.pss_bytes))
                .collect();
            self.split = Some((t_s, pss));
            self.newer_pss = None;
        } else if p.read == Some(ReadTier::Rollup) {
            self.newer_pss = Some(p.pss_bytes);
        }
        let (read_t_s, split) = self.split.as_ref()?;
        let cap = self.newer_pss.map_or(p.rss_bytes, |n| n.min(p.rss_bytes));
        Some(HeldSplit {
            read_t_s: *read_t_s,
            pss: scale_to(split, cap),
        })
    }
}

/// `split` scaled down so it sums to at most `cap`; each value rounds down, so the sum
/// never passes the cap.
fn scale_to(split: &BTreeMap<Category, u64>, cap: u64) -> BTreeMap<Category, u64> {
    let total: u128 = split.values().map(|&v| v as u128).sum();
    if total <= cap as u128 {
        return split.clone();
    }
    split
        .iter()
        .map(|(&c, &v)| (c, (v as u128 * cap as u128 / total) as u64))
        .collect()
}

fn x_range(rec: &Recording) -> (f64, f64) {
    let end = rec.samples.last().map_or(0.0, |s| s.t_s);
    (0.0, if end > 0.0 { end } else { 1.0 })
}

/// "`command` — started 2026-01-02 03:04:05 UTC on gpu-node-7" (the host when recorded).
pub fn describe(rec: &Recording) -> String {
    use crate::report::ellipsize;
    let Some(host) = rec.header.host.as_deref() else {
        return format!(
            "{} — started {}",
            ellipsize(&rec.header.command.join(" "), 90),
            wall_time(&rec.header.started_at)
        );
    };
    // The chart cuts its caption at 110 characters: the command gives up room for the host.
    let rest = format!(
        " — started {} on {}",
        wall_time(&rec.header.started_at),
        ellipsize(host, 40)
    );
    let room = 110usize.saturating_sub(rest.chars().count()).max(24);
    format!("{}{rest}", ellipsize(&rec.header.command.join(" "), room))
}

/// An RFC 3339 time to the second: `2026-11-30T00:51:03.801469396Z` reads
/// `2026-11-30 00:51:03 UTC`. Anything else is shown as it is.
pub fn wall_time(rfc3339: &str) -> String {
    let Some((date, time)) = rfc3339.split_once('T') else {
        return rfc3339.to_string();
    };
    let whole = time.split(['.', 'Z', '+', '-']).next().unwrap_or(time);
    let zone = if time.ends_with('Z') {
        "UTC".to_string()
    } else {
        time.rfind(['+', '-'])
            .map(|i| time[i..].to_string())
            .unwrap_or_default()
    };
    format!("{date} {whole} {zone}").trim_end().to_string()
}

fn category_bands(per_sample: &[BTreeMap<Category, u64>]) -> Vec<Band> {
    Category::ALL
        .iter()
        .filter(|c| per_sample.iter().any(|m| m.get(c).is_some_and(|&v| v > 0)))
        .map(|&c| Band {
            name: c.name().to_string(),
            category: Some(c),
            values: per_sample
                .iter()
                .map(|m| m.get(&c).copied().unwrap_or(0))
                .collect(),
        })
        .collect()
}

/// The tree's category PSS at every sample: each process's held split, summed over the
/// processes alive in that sample.
pub fn tree_timeline(rec: &Recording) -> Timeline {
    let mut holders: BTreeMap<Pid, Holder> = BTreeMap::new();
    let mut per_sample = Vec::with_capacity(rec.samples.len());
    let mut times = Vec::with_capacity(rec.samples.len());
    let mut rss = Vec::with_capacity(rec.samples.len());
    for s in &rec.samples {
        let mut sums: BTreeMap<Category, u64> = BTreeMap::new();
        for p in &s.snapshot.processes {
            if let Some(h) = holders.entry(p.pid).or_default().update(s.t_s, p) {
                for (c, v) in h.pss {
                    let e = sums.entry(c).or_default();
                    *e = e.saturating_add(v);
                }
            }
        }
        times.push(s.t_s);
        rss.push((s.t_s, s.snapshot.total.rss_sum_bytes));
        per_sample.push(sums);
    }
    Timeline {
        title: "Whole tree: PSS by category".into(),
        subtitle: describe(rec),
        bands: category_bands(&per_sample),
        times,
        rss,
        x_range: x_range(rec),
        step_s: rec.header.interval_s,
        stacked_by: "category",
    }
}

/// One process's held split at every sample from its first `smaps` read on, and its RSS at
/// every sample.
pub fn process_timeline(rec: &Recording, pid: Pid) -> Timeline {
    let mut holder = Holder::default();
    let mut per_sample = Vec::new();
    let mut times = Vec::new();
    let mut rss = Vec::new();
    let mut title = format!("PID {pid}");
    for s in &rec.samples {
        let Some(p) = s.snapshot.processes.iter().find(|p| p.pid == pid) else {
            continue;
        };
        title = format!("PID {pid} {} ({})", p.name, p.role.name());
        rss.push((s.t_s, p.rss_bytes));
        if let Some(h) = holder.update(s.t_s, p) {
            times.push(s.t_s);
            per_sample.push(h.pss);
        }
    }
    Timeline {
        title,
        subtitle: String::new(),
        bands: category_bands(&per_sample),
        times,
        rss,
        x_range: x_range(rec),
        step_s: rec.header.interval_s,
        stacked_by: "category",
    }
}

/// PSS by process at every sample (each process's latest PSS read, never above its RSS
/// now): the `max_bands - 1` largest by peak as their own bands, the rest as one.
pub fn process_view_timeline(rec: &Recording, max_bands: usize) -> Timeline {
    let pss_now = |p: &ProcessSnapshot| p.pss_bytes.min(p.rss_bytes);
    let mut peak: BTreeMap<Pid, (u64, String)> = BTreeMap::new();
    for s in &rec.samples {
        for p in &s.snapshot.processes {
            let e = peak.entry(p.pid).or_default();
            e.0 = e.0.max(pss_now(p));
            e.1 = format!("PID {} {}", p.pid, p.name);
        }
    }
    let mut order: Vec<(Pid, u64, String)> =
        peak.into_iter().map(|(pid, (v, n))| (pid, v, n)).collect();
    order.sort_by_key(|&(pid, v, _)| (std::cmp::Reverse(v), pid));
    let own = if order.len() <= max_bands.max(1) {
        order.len()
    } else {
        max_bands.max(1) - 1
    };
    let rest = order.len() - own;
    let index: BTreeMap<Pid, usize> = order
        .iter()
        .enumerate()
        .map(|(i, (pid, _, _))| (*pid, i.min(own)))
        .collect();
    let mut bands: Vec<Band> = order[..own]
        .iter()
        .map(|(_, _, name)| Band {
            name: name.clone(),
            category: None,
            values: Vec::with_capacity(rec.samples.len()),
        })
        .collect();
    if rest > 0 {
        bands.push(Band {
            name: format!("{rest} other processes"),
            category: None,
            values: Vec::with_capacity(rec.samples.len()),
        });
    }
    let mut times = Vec::with_capacity(rec.samples.len());
    let mut rss = Vec::with_capacity(rec.samples.len());
    for s in &rec.samples {
        for b in &mut bands {
            b.values.push(0);
        }
        for p in &s.snapshot.processes {
            if let Some(v) = index
                .get(&p.pid)
                .and_then(|&i| bands.get_mut(i))
                .and_then(|b| b.values.last_mut())
            {
                *v = v.saturating_add(pss_now(p));
            }
        }
        times.push(s.t_s);
        rss.push((s.t_s, s.snapshot.total.rss_sum_bytes));
    }
    // The largest process at the bottom, where its outline is easiest to read.
    Timeline {
        title: "Whole tree: PSS by process".into(),
        subtitle: String::new(),
        bands,
        times,
        rss,
        x_range: x_range(rec),
        step_s: rec.header.interval_s,
        stacked_by: "process",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn scaling_never_passes_the_cap_and_never_scales_up() {
        let split: BTreeMap<Category, u64> = [
            (Category::Heap, 240 * MIB),
            (Category::CodePython, 5 * MIB + 7),
        ]
        .into();
        let down = scale_to(&split, 13 * MIB);
        assert!(down.values().sum::<u64>() <= 13 * MIB, "{down:?}");
        assert!(down[&Category::Heap] > down[&Category::CodePython]);
        assert_eq!(scale_to(&split, 1 << 40), split);
        assert!(scale_to(&split, 0).values().all(|&v| v == 0));
    }

    #[test]
    fn wall_time_drops_the_fraction() {
        assert_eq!(
            wall_time("2026-11-30T00:51:03.801469396Z"),
            "2026-11-30 00:51:03 UTC"
        );
        assert_eq!(
            wall_time("2026-11-30T00:51:03+02:00"),
            "2026-11-30 00:51:03 +02:00"
        );
        assert_eq!(wall_time("yesterday"), "yesterday");
    }

    #[test]
    fn one_time_holds_for_one_interval() {
        let tl = Timeline {
            times: vec![3.0],
            step_s: 0.5,
            ..Default::default()
        };
        assert_eq!(tl.end_s(), 3.5);
    }
}
