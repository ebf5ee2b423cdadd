//! Advice: the engine's candidate changes to the command line or environment, each priced
//! by estimating again with the change. Advice that saves nothing is not shown.

use crate::footprint::Estimate;

use super::{Advice, Reestimate};

/// The engine's candidate changes, each priced by a second estimate, largest saving first.
/// Advice that saves less than 1 MiB (or cannot be priced) is dropped.
pub(super) fn advise(base: &Estimate, reestimate: &dyn Reestimate) -> Vec<Advice> {
    let mut out = Vec::new();
    for change in reestimate.candidates(base) {
        let Some(e) = reestimate.with(&change) else {
            continue;
        };
        let (saves, applies_to) = if change.peak_only {
            (
                base.total.peak_bytes.saturating_sub(e.total.peak_bytes),
                "peak",
            )
        } else {
            (
                base.total.steady_bytes.saturating_sub(e.total.steady_bytes),
                "steady",
            )
        };
        if saves >= 1 << 20 {
            out.push(Advice {
                action: change.action,
                saves_bytes: saves,
                applies_to,
                why: change.why,
            });
        }
    }
    out.sort_by_key(|a| std::cmp::Reverse(a.saves_bytes));
    out
}
