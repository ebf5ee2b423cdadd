//! The findings: each way a server fails to fit, checked against the figures, worst first;
//! and the exit status a deploy script gates on.

use serde::Serialize;

use crate::host::Refusal;
use crate::units::{bytes, bytes_range};

use super::split::Range;
use super::{Bound, Figures};

/// The exit status when everything fits.
pub const EXIT_FITS: i32 = 0;
/// Bad input: a flag, a size, a PID that is not there.
pub const EXIT_BAD_INPUT: i32 = 2;
/// It does not fit: the engine refuses, or an OOM or a full `/dev/shm` is predicted at the
/// estimate's point value.
pub const EXIT_DOES_NOT_FIT: i32 = 3;
/// It may not fit: the limit lies inside an estimate's range, growth is uncapped, or the
/// page cache of files read all the time does not fit beside the rest.
pub const EXIT_AT_RISK: i32 = 4;

/// What happens, from worst to best: the order findings are listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The engine's own start-up check says no (before the kernel has a say).
    EngineRefuses,
    /// The non-reclaimable load peak passes the limit: killed while loading.
    OomAtLoad,
    /// The `/dev/shm` segments need more room than the tmpfs has: SIGBUS or an error at
    /// start-up.
    ShmTooSmall,
    /// The steady state plus what grows with traffic, at its caps, passes the limit: killed
    /// after hours or days of serving.
    OomLater,
    /// Non-reclaimable memory fits, but not with the files it reads all the time (mmapped
    /// weights): they are dropped and read again, over and over.
    PageCacheThrash,
    Fits,
}

impl Verdict {
    /// The phrase reports use; `certain: false` when only the range reaches the limit.
    pub fn phrase(self, certain: bool) -> &'static str {
        match (self, certain) {
            (Verdict::EngineRefuses, _) => "the engine refuses",
            (Verdict::OomAtLoad, true) => "OOM at load",
            (Verdict::OomAtLoad, false) => "may OOM at load",
            (Verdict::ShmTooSmall, _) => "/dev/shm too small",
            (Verdict::OomLater, true) => "OOM later",
            (Verdict::OomLater, false) => "may OOM later",
            (Verdict::PageCacheThrash, true) => "fits, but page cache will thrash",
            (Verdict::PageCacheThrash, false) => "fits, but page cache may thrash",
            (Verdict::Fits, _) => "fits",
        }
    }

    /// Whether a certain finding of this kind means the server does not run.
    fn fails(self) -> bool {
        matches!(
            self,
            Verdict::EngineRefuses | Verdict::OomAtLoad | Verdict::ShmTooSmall | Verdict::OomLater
        )
    }
}

/// One way it does not fit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub verdict: Verdict,
    /// `false`: only the high end of a range (or an uncapped growth) reaches the bound.
    pub certain: bool,
    /// [`Verdict::phrase`].
    pub summary: String,
    /// The arithmetic, in one sentence.
    pub detail: String,
    /// What is needed and what there is, where the finding compares two sizes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needed_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
}

impl Finding {
    fn new(verdict: Verdict, certain: bool, detail: String) -> Finding {
        Finding {
            verdict,
            certain,
            summary: verdict.phrase(certain).to_string(),
            detail,
            needed_bytes: None,
            available_bytes: None,
        }
    }

    fn sizes(mut self, needed: u64, available: u64) -> Finding {
        self.needed_bytes = Some(needed);
        self.available_bytes = Some(available);
        self
    }
}

/// What the checks look at besides the figures.
#[derive(Clone)]
pub struct Checks<'a> {
    pub figures: &'a Figures,
    pub bound: Option<&'a Bound>,
    pub refusal: Option<&'a Refusal>,
    /// `/dev/shm` room the segments need, and what the tmpfs has.
    pub shm_needed_bytes: u64,
    /// The largest single segment (group) among them.
    pub shm_largest_bytes: u64,
    pub shm_size_bytes: Option<u64>,
    /// Whether anything grows with traffic, and the growth terms without a cap (in words).
    pub grows: bool,
    pub uncapped: Vec<String>,
}

/// A range for a sentence: `2.99 GiB` or `2.99 GiB (range 2.1–3.5 GiB)`.
fn amount(r: Range) -> String {
    if r.is_exact() {
        bytes(r.bytes)
    } else {
        format!(
            "{} (range {})",
            bytes(r.bytes),
            bytes_range(r.low_bytes, r.high_bytes)
        )
    }
}

/// Compares `need` with `bound`: certain past it at the point value, possible when only the
/// range's high end passes it.
fn against(verdict: Verdict, need: Range, bound: &Bound, what: &str) -> Option<Finding> {
    let (certain, relation) = if need.bytes > bound.bytes {
        (true, ">")
    } else if need.high_bytes > bound.bytes {
        (false, "≤")
    } else {
        return None;
    };
    let mut detail = format!(
        "{what} {} {relation} {} {}",
        amount(need),
        bound.what,
        bytes(bound.bytes)
    );
    if !certain || need.low_bytes <= bound.bytes {
        detail.push_str(&format!(
            "; the {} lies inside the estimate's range",
            bound.noun()
        ));
    }
    Some(Finding::new(verdict, certain, detail).sizes(need.bytes, bound.bytes))
}

/// Every finding that holds, worst first.
pub fn findings(c: &Checks) -> Vec<Finding> {
    let f = c.figures;
    let mut out = Vec::new();
    if let Some(r) = c.refusal {
        out.push(Finding::new(
            Verdict::EngineRefuses,
            true,
            format!("{} ({}; {})", r.message, r.arithmetic, r.source),
        ));
    }
    if let (Some(size), true) = (c.shm_size_bytes, c.shm_needed_bytes > 0) {
        if c.shm_needed_bytes > size {
            // Segments are created one by one and are sparse: creating one fails only when it
            // alone is larger than the room left; together they fail only as they fill.
            // Without components to say how the room splits, the total is all there is.
            let certain = c.shm_largest_bytes == 0 || c.shm_largest_bytes > size;
            let detail = if certain {
                format!(
                    "the /dev/shm segments map {}, the largest {} alone > /dev/shm {}: the engine cannot create it",
                    bytes(c.shm_needed_bytes),
                    bytes(c.shm_largest_bytes),
                    bytes(size)
                )
            } else {
                format!(
                    "the /dev/shm segments map {} in all > /dev/shm {}, each one fits: they are sparse and will be created, but writes fail (SIGBUS) if they fill",
                    bytes(c.shm_needed_bytes),
                    bytes(size)
                )
            };
            out.push(
                Finding::new(Verdict::ShmTooSmall, certain, detail).sizes(c.shm_needed_bytes, size),
            );
        }
    }
    if let Some(bound) = c.bound {
        out.extend(against(
            Verdict::OomAtLoad,
            f.load_non_reclaimable,
            bound,
            "load peak, non-reclaimable:",
        ));
        let later = against(
            Verdict::OomLater,
            f.growth_non_reclaimable,
            bound,
            "steady state + growth at its caps, non-reclaimable:",
        );
        // Without growth, the steady state is part of the load peak, checked above.
        let later = later.filter(|_| c.grows);
        let oom_later = later.as_ref().is_some_and(|l| l.certain);
        let uncapped = (!c.uncapped.is_empty()).then(|| {
            format!(
                "{} grows without a cap: no limit is safe from it",
                c.uncapped.join(", ")
            )
        });
        match (later, uncapped) {
            (Some(mut l), Some(why)) => {
                l.detail = format!("{}; {why}", l.detail);
                out.push(l);
            }
            (Some(l), None) => out.push(l),
            (None, Some(why)) => out.push(Finding::new(Verdict::OomLater, false, why)),
            (None, None) => {}
        }
        let hot = f.growth_non_reclaimable.plus(f.growth_hot_file);
        // Thrashing is when the non-reclaimable memory alone fits.
        let fits_alone = f.growth_non_reclaimable.bytes <= bound.bytes;
        if !oom_later && fits_alone && f.growth_hot_file.high_bytes > 0 {
            if let Some(mut t) = against(
                Verdict::PageCacheThrash,
                hot,
                bound,
                "non-reclaimable + file-backed pages read all the time:",
            ) {
                t.detail.push_str(&format!(
                    " (of which file-backed {}: reclaimed, then read again)",
                    bytes(f.growth_hot_file.bytes)
                ));
                out.push(t);
            }
        }
    }
    // Certain before possible; among each, worst first.
    out.sort_by_key(|f| (!f.certain, f.verdict));
    out
}

/// The exit status for these findings.
pub fn exit_code(findings: &[Finding]) -> i32 {
    if findings.iter().any(|f| f.certain && f.verdict.fails()) {
        EXIT_DOES_NOT_FIT
    } else if findings.is_empty() {
        EXIT_FITS
    } else {
        EXIT_AT_RISK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(bytes: u64) -> Bound {
        Bound {
            bytes,
            what: "the memory limit".into(),
            is_limit: true,
        }
    }

    fn figures(load: Range, steady: Range, growth: Range, hot: Range) -> Figures {
        Figures {
            load_non_reclaimable: load,
            steady_non_reclaimable: steady,
            hot_file: hot,
            growth_non_reclaimable: growth,
            growth_hot_file: hot,
            from_measurement: false,
        }
    }

    fn run(f: &Figures, limit: u64, grows: bool, uncapped: &[&str]) -> Vec<(Verdict, bool)> {
        let b = bound(limit);
        let checks = Checks {
            figures: f,
            bound: Some(&b),
            refusal: None,
            shm_needed_bytes: 0,
            shm_largest_bytes: 0,
            shm_size_bytes: None,
            grows,
            uncapped: uncapped.iter().map(|s| s.to_string()).collect(),
        };
        findings(&checks)
            .into_iter()
            .map(|f| (f.verdict, f.certain))
            .collect()
    }

    #[test]
    fn each_verdict_from_its_own_figures() {
        let e = Range::exact;
        let f = figures(e(100), e(80), e(80), e(0));
        assert_eq!(run(&f, 100, false, &[]), vec![]);
        assert_eq!(run(&f, 99, false, &[]), vec![(Verdict::OomAtLoad, true)]);
        // The limit inside the load peak's range: may OOM.
        let f = figures(Range::new(100, 90, 130), e(80), e(80), e(0));
        assert_eq!(run(&f, 120, false, &[]), vec![(Verdict::OomAtLoad, false)]);
        assert_eq!(run(&f, 130, false, &[]), vec![]);
        // Growth past the limit, load fine.
        let f = figures(e(100), e(80), e(150), e(0));
        assert_eq!(run(&f, 120, true, &[]), vec![(Verdict::OomLater, true)]);
        // Uncapped growth that fits at whatever the engine put: still may OOM later.
        let f = figures(e(100), e(80), e(90), e(0));
        assert_eq!(
            run(&f, 120, true, &["prompt cache"]),
            vec![(Verdict::OomLater, false)]
        );
        // Hot files do not fit beside the rest: thrash, not OOM.
        let f = figures(e(100), e(80), e(80), e(60));
        assert_eq!(
            run(&f, 120, false, &[]),
            vec![(Verdict::PageCacheThrash, true)]
        );
        assert_eq!(run(&f, 140, false, &[]), vec![]);
        // Several hold: listed worst first, certain before possible.
        let f = figures(Range::new(100, 100, 200), e(80), e(160), e(0));
        assert_eq!(
            run(&f, 150, true, &[]),
            vec![(Verdict::OomLater, true), (Verdict::OomAtLoad, false)]
        );
    }

    #[test]
    fn refusal_and_shm_come_first_and_exit_codes_differ() {
        let f = figures(
            Range::exact(200),
            Range::exact(50),
            Range::exact(50),
            Range::exact(0),
        );
        let b = bound(100);
        let refusal = Refusal {
            message: "model requires more system memory".into(),
            arithmetic: "10 GiB > 2 GiB".into(),
            source: "x.go:1@v1".into(),
        };
        let checks = Checks {
            figures: &f,
            bound: Some(&b),
            refusal: Some(&refusal),
            shm_needed_bytes: 64,
            shm_largest_bytes: 64,
            shm_size_bytes: Some(63),
            grows: false,
            uncapped: Vec::new(),
        };
        let all = findings(&checks);
        // Every segment fits alone: they are created, and may fail only as they fill.
        let each_fits = Checks {
            shm_largest_bytes: 40,
            ..checks.clone()
        };
        let shm = findings(&each_fits)
            .into_iter()
            .find(|f| f.verdict == Verdict::ShmTooSmall)
            .expect("a /dev/shm finding");
        assert!(!shm.certain);
        let kinds: Vec<Verdict> = all.iter().map(|f| f.verdict).collect();
        assert_eq!(
            kinds,
            [
                Verdict::EngineRefuses,
                Verdict::OomAtLoad,
                Verdict::ShmTooSmall
            ]
        );
        assert!(all[0].detail.contains("10 GiB > 2 GiB"));
        assert_eq!(all[2].needed_bytes, Some(64));
        assert_eq!(exit_code(&all), EXIT_DOES_NOT_FIT);
        assert_eq!(exit_code(&[]), EXIT_FITS);
        let possible = run(
            &figures(
                Range::new(10, 5, 20),
                Range::exact(5),
                Range::exact(5),
                Range::exact(0),
            ),
            15,
            false,
            &[],
        );
        assert_eq!(possible, vec![(Verdict::OomAtLoad, false)]);
        let f = Finding::new(Verdict::OomAtLoad, false, String::new());
        assert_eq!(exit_code(&[f]), EXIT_AT_RISK);
        let distinct = [
            EXIT_FITS,
            EXIT_BAD_INPUT,
            EXIT_DOES_NOT_FIT,
            EXIT_AT_RISK,
            1,
        ];
        for (i, a) in distinct.iter().enumerate() {
            assert!(!distinct[i + 1..].contains(a));
        }
    }
}
