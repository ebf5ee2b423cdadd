//! When not to believe the explanation.
//!
//! An estimate is only as good as what it was told: a tree whose processes carry vLLM's
//! titles but import no vLLM, or a process measured at a tenth of its estimate, is a tree the
//! model does not describe. Saying "99.9% explained" there, or pricing advice on it, would be
//! confidently wrong; instead the doubt is named and the advice withheld.

use crate::footprint::ReleaseAssumed;
use crate::units::bytes;

use super::ProcessExplanation;

/// A process this far from its estimate (either way) means the model does not describe it.
pub const MAX_RATIO: f64 = 2.0;
/// Below this, on both sides, a process is too small for its ratio to mean much (the resource
/// tracker, a helper).
const MIN_JUDGED: u64 = 32 << 20;

/// Why the explanation may not hold; empty when nothing is doubted.
pub fn doubts(
    assumed: Option<&ReleaseAssumed>,
    engine_title: &str,
    processes: &[ProcessExplanation],
) -> Vec<String> {
    let mut out = Vec::new();
    // An estimate for a release ramscope has not read may not describe this server.
    if let Some(a) = assumed {
        out.push(a.describe(engine_title));
    }
    for p in processes.iter().filter(|p| p.estimated_bytes > 0) {
        let (est, meas) = (p.estimated_bytes, p.measured_pss_bytes);
        if est.max(meas) < MIN_JUDGED {
            continue;
        }
        let ratio = est.max(meas) as f64 / est.min(meas).max(1) as f64;
        if ratio > MAX_RATIO {
            out.push(format!(
                "PID {} ({}) measures {} against an estimate of {}: {} apart, more than the model can be off for a process it describes",
                p.pid,
                p.role.name(),
                bytes(meas),
                bytes(est),
                if ratio >= 100.0 {
                    "over 100×".to_string()
                } else {
                    format!("{ratio:.1}×")
                },
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::roles::Role;

    fn p(est: u64, meas: u64) -> ProcessExplanation {
        ProcessExplanation {
            pid: 7,
            role: Role::ApiServer,
            title: "API server".into(),
            measured_pss_bytes: meas,
            estimated_bytes: est,
            explained_fraction: 0.0,
            rows: Vec::new(),
        }
    }

    #[test]
    fn far_apart_either_way_is_doubted() {
        let mib = 1 << 20;
        assert_eq!(doubts(None, "vLLM", &[p(643 * mib, 70 * mib)]).len(), 1);
        assert_eq!(doubts(None, "vLLM", &[p(300 * mib, 700 * mib)]).len(), 1);
        assert!(doubts(None, "vLLM", &[p(666 * mib, 672 * mib)]).is_empty());
        // Small processes are not judged by their ratio.
        assert!(doubts(None, "vLLM", &[p(7 * mib, 20 * mib)]).is_empty());
    }

    #[test]
    fn an_unknown_version_is_doubted() {
        let newer = ReleaseAssumed {
            requested: Some("0.34.0".into()),
            used: "0.33".into(),
            reason: "newer than the newest release ramscope has read (0.33)".into(),
        };
        let d = doubts(Some(&newer), "vLLM", &[]);
        assert_eq!(
            d,
            ["vLLM 0.34.0 is newer than the newest release ramscope has read (0.33): estimated as vLLM 0.33"]
        );
    }
}
