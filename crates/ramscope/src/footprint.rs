//! The estimate model: what a server will hold in host RAM, per process, as components.
//!
//! Engines ([`crate::engines`]) produce it: a [`Listing`] of [`ProcessEstimate`]s, each a
//! list of [`Component`]s with bytes, formula, source and [`Exactness`]. The estimate driver
//! ([`crate::estimate`]) turns a listing into an [`Estimate`] with [`Estimate::assemble`],
//! which refuses a too-large or inconsistent number and sums the [`Total`]; `explain`, the
//! reports and the commands read it. Nothing here knows any engine.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::attribute::Category;
use crate::gpu::Gpu;
use crate::model::Model;
use crate::proc::roles::Role;
use crate::units::Checked;

pub const SCHEMA: &str = "ramscope.estimate/1";

/// How a number was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exactness {
    /// From a formula over known sizes.
    Exact,
    /// A measured baseline.
    Calibrated,
    /// A range; `bytes` is the point estimate.
    Estimated,
}

/// When a component holds memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// From start-up on.
    Steady,
    /// Only while the model loads (counted in the peak, not the steady state).
    Load,
    /// Grows with traffic after start-up, up to a cap a knob sets (a prompt cache): counted
    /// in neither the steady state nor the load peak, but in the growth bound a fit check
    /// adds to the steady state.
    Growth,
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// NVIDIA GPUs: KV cache on the device, pinned staging buffers on the host.
    Cuda,
    /// The CPU: weights and KV cache in host RAM.
    Cpu,
}

impl Device {
    pub fn name(self) -> &'static str {
        match self {
            Device::Cuda => "cuda",
            Device::Cpu => "cpu",
        }
    }
}

/// One host allocation (or group of allocations) in one process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    pub id: String,
    /// Resident bytes (PSS share for shared memory).
    pub bytes: u64,
    pub category: Category,
    pub pinned: bool,
    pub exactness: Exactness,
    pub low_bytes: u64,
    pub high_bytes: u64,
    /// The formula with the numbers substituted.
    pub formula: String,
    pub source: String,
    /// Engine versions the source reading is from.
    pub version: String,
    pub phase: Phase,
    /// Mapped (virtual) size, where it differs from the resident size (sparse shm files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapped_bytes: Option<u64>,
    /// Where a calibrated number was measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The flag or variable that caps a [`Phase::Growth`] component (`--cache-ram`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knob: Option<String>,
    /// Locked with mlock: counted against `RLIMIT_MEMLOCK` (a container's memlock ulimit).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub locked: bool,
}

impl Component {
    /// An exact component: bytes from a formula. A [`Checked`] value that is too large is kept
    /// as `u64::MAX`, which [`Estimate::assemble`] turns into an error.
    pub fn exact(
        id: &str,
        bytes: impl Into<Checked>,
        category: Category,
        formula: String,
        source: &str,
        version: &str,
    ) -> Component {
        let bytes = bytes.into().raw();
        Component {
            id: id.to_string(),
            bytes,
            category,
            pinned: category == Category::Pinned,
            exactness: Exactness::Exact,
            low_bytes: bytes,
            high_bytes: bytes,
            formula,
            source: source.to_string(),
            version: version.to_string(),
            phase: Phase::Steady,
            mapped_bytes: None,
            provenance: None,
            note: None,
            knob: None,
            locked: false,
        }
    }

    /// Turns this into an estimate between `low` and `high` (widened to include `bytes`, so
    /// low ≤ bytes ≤ high holds whatever the formulas give).
    pub fn range(mut self, low: impl Into<Checked>, high: impl Into<Checked>) -> Component {
        self.exactness = Exactness::Estimated;
        self.set_range(low.into(), high.into());
        self
    }

    /// Marks this as a measured baseline, with where it was measured.
    pub fn calibrated(
        mut self,
        provenance: &str,
        low: impl Into<Checked>,
        high: impl Into<Checked>,
    ) -> Component {
        self.exactness = Exactness::Calibrated;
        self.provenance = Some(provenance.to_string());
        self.set_range(low.into(), high.into());
        self
    }

    /// Replaces the point value, keeping the range around it.
    pub fn with_bytes(mut self, bytes: impl Into<Checked>) -> Component {
        self.bytes = bytes.into().raw();
        let (low, high) = (Checked::new(self.low_bytes), Checked::new(self.high_bytes));
        self.set_range(low, high);
        self
    }

    fn set_range(&mut self, low: Checked, high: Checked) {
        let bytes = Checked::new(self.bytes);
        self.low_bytes = low.min(bytes).raw();
        self.high_bytes = high.max(bytes).raw();
    }

    pub fn load_only(mut self) -> Component {
        self.phase = Phase::Load;
        self
    }

    /// Marks this as memory that grows with traffic up to `bytes`, capped by `knob`.
    pub fn growth(mut self, knob: &str) -> Component {
        self.phase = Phase::Growth;
        self.knob = Some(knob.to_string());
        self
    }

    /// Marks this as locked in RAM with mlock (resident, never reclaimed or swapped).
    pub fn locked(mut self) -> Component {
        self.locked = true;
        self
    }

    pub fn mapped(mut self, bytes: impl Into<Checked>) -> Component {
        self.mapped_bytes = Some(bytes.into().raw());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Component {
        self.note = Some(note.into());
        self
    }
}

/// One kind of process and how many of it run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessEstimate {
    pub role: Role,
    /// The process title or command line it will show (`VLLM::EngineCore`).
    pub title: String,
    pub count: u64,
    /// Per process.
    pub steady_bytes: u64,
    pub peak_bytes: u64,
    pub low_bytes: u64,
    pub high_bytes: u64,
    /// What [`Phase::Growth`] components may add to the steady state, at their caps.
    pub growth_bytes: u64,
    pub components: Vec<Component>,
}

impl ProcessEstimate {
    /// Sums the components (checked: a sum too large is `u64::MAX`, refused by
    /// [`Estimate::assemble`]).
    pub fn new(role: Role, title: &str, count: u64, components: Vec<Component>) -> ProcessEstimate {
        let sum = |phase: Phase, field: fn(&Component) -> u64| -> Checked {
            components
                .iter()
                .filter(|c| c.phase == phase)
                .map(|c| Checked::new(field(c)))
                .sum()
        };
        let steady_bytes = sum(Phase::Steady, |c| c.bytes);
        let load = sum(Phase::Load, |c| c.bytes);
        let growth = sum(Phase::Growth, |c| c.bytes);
        ProcessEstimate {
            role,
            title: title.to_string(),
            count,
            steady_bytes: steady_bytes.raw(),
            peak_bytes: (steady_bytes + load).raw(),
            low_bytes: sum(Phase::Steady, |c| c.low_bytes).raw(),
            high_bytes: sum(Phase::Steady, |c| c.high_bytes).raw(),
            growth_bytes: growth.raw(),
            components,
        }
    }

    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.id == id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    pub name: String,
    pub architecture: String,
    pub source: String,
    pub weights_bytes: u64,
    pub weights_exact: bool,
    pub parameters: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Total {
    pub steady_bytes: u64,
    pub peak_bytes: u64,
    pub low_bytes: u64,
    pub high_bytes: u64,
    /// What memory that grows with traffic may add at its caps (every process × its count).
    pub growth_bytes: u64,
    /// Model files in the page cache: not in any process, but charged to the cgroup.
    pub page_cache_bytes: u64,
    /// Mapped size of every `/dev/shm` segment (needs that much tmpfs room).
    pub shm_mapped_bytes: u64,
}

/// An engine release ramscope has not read (newer, older, or none could be read), and the
/// known release estimated in its place; every report says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseAssumed {
    /// The version as given or as the installation wrote it (`"0.34.0"`, `"1.0"`); `None`
    /// when none could be read.
    pub requested: Option<String>,
    /// The release whose defaults and buffers the estimate uses (`"0.33"`).
    pub used: String,
    /// Why, in a sentence ("newer than the newest release ramscope has read (0.33)").
    pub reason: String,
}

impl ReleaseAssumed {
    /// One sentence for reports: "vLLM 0.34.0 is newer than …: estimated as vLLM 0.33".
    pub fn describe(&self, engine_title: &str) -> String {
        match &self.requested {
            Some(r) => format!(
                "{engine_title} {r} is {}: estimated as {engine_title} {}",
                self.reason, self.used
            ),
            None => format!("{}: estimated as {engine_title} {}", self.reason, self.used),
        }
    }
}

/// What an engine lists for one command line: the configuration it resolved and the
/// processes with their components, before they are checked and summed.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// The engine's release whose defaults and buffers were used (`0.33`).
    pub engine_version: String,
    pub device: Device,
    pub gpu: Option<Gpu>,
    /// The resolved settings, by the engine's own names.
    pub args: BTreeMap<String, serde_json::Value>,
    pub processes: Vec<ProcessEstimate>,
    pub page_cache_bytes: u64,
    pub shm_mapped_bytes: u64,
    /// Removed flags, surprising defaults.
    pub notes: Vec<String>,
}

/// The whole prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub schema: &'static str,
    pub engine: &'static str,
    pub engine_version: String,
    /// Set when `engine_version` stands in for a release ramscope has not read; `null` when
    /// the release was known.
    pub version_assumed: Option<ReleaseAssumed>,
    pub device: Device,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Gpu>,
    pub model: ModelSummary,
    pub args: BTreeMap<String, serde_json::Value>,
    pub processes: Vec<ProcessEstimate>,
    pub total: Total,
    /// Removed flags, surprising defaults, where the baseline came from.
    pub notes: Vec<String>,
}

impl Estimate {
    /// Checks every number of `listing` (none too large, low ≤ bytes ≤ high, peak ≥ steady)
    /// and sums the processes, each times its count, into the total.
    pub fn assemble(
        engine: &'static str,
        model: &Model,
        listing: Listing,
    ) -> Result<Estimate, FootprintError> {
        check_processes(&listing.processes)?;
        let total = total_of(
            &listing.processes,
            listing.page_cache_bytes,
            listing.shm_mapped_bytes,
        )?;
        Ok(Estimate {
            schema: SCHEMA,
            engine,
            engine_version: listing.engine_version,
            version_assumed: None,
            device: listing.device,
            gpu: listing.gpu,
            model: ModelSummary {
                name: model.name.clone(),
                architecture: model.config.architecture.clone(),
                source: model.source.describe(),
                weights_bytes: model.weights.total_bytes,
                weights_exact: model.weights.exact,
                parameters: model.weights.parameters,
            },
            args: listing.args,
            processes: listing.processes,
            total,
            notes: listing.notes,
        })
    }

    pub fn process(&self, role: Role) -> Option<&ProcessEstimate> {
        self.processes.iter().find(|p| p.role == role)
    }
}

/// One buffer an engine's own log printed, beside the component that predicts it
/// (`ramscope estimate --log FILE`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogMatch {
    /// 1-based line number in the log.
    pub line: usize,
    /// The buffer as the log names it (`CPU_Mapped model`, `CUDA0 KV`).
    pub printed: String,
    pub printed_bytes: u64,
    /// Whether the buffer is in host memory.
    pub on_host: bool,
    /// The component that predicts it, and its bytes; `None` for device buffers and lines
    /// no component models.
    pub component: Option<String>,
    pub estimated_bytes: Option<u64>,
}

/// A listing whose numbers cannot be an estimate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FootprintError {
    /// A byte count does not fit in 64 bits: the flags or the model ask for the impossible.
    #[error("{what} needs more than 16 EiB of host RAM, more than a 64-bit machine can address: check the flags and the model's config")]
    TooLarge { what: String },
    /// A component or sum whose range does not hold its point value (a bug in ramscope).
    #[error("internal error: {what}: low {low} ≤ bytes {bytes} ≤ high {high} does not hold")]
    Inconsistent {
        what: String,
        low: u64,
        bytes: u64,
        high: u64,
    },
}

/// Refuses a `u64::MAX` (too large) value and a range that does not hold its point value.
fn check_range(
    what: &dyn Fn() -> String,
    low: u64,
    bytes: u64,
    high: u64,
) -> Result<(), FootprintError> {
    if [low, bytes, high].contains(&u64::MAX) {
        return Err(FootprintError::TooLarge { what: what() });
    }
    let ordered = low <= bytes && bytes <= high;
    debug_assert!(ordered, "{}: {low} ≤ {bytes} ≤ {high}", what());
    if !ordered {
        return Err(FootprintError::Inconsistent {
            what: what(),
            low,
            bytes,
            high,
        });
    }
    Ok(())
}

/// Every component and process: no too-large value, low ≤ bytes ≤ high, peak ≥ steady.
fn check_processes(processes: &[ProcessEstimate]) -> Result<(), FootprintError> {
    for p in processes {
        if p.count == u64::MAX {
            return Err(FootprintError::TooLarge {
                what: format!("{} with 2^64 or more processes", p.title),
            });
        }
        for c in &p.components {
            let what = || format!("{} in {}", c.id, p.title);
            check_range(&what, c.low_bytes, c.bytes, c.high_bytes)?;
            if c.mapped_bytes == Some(u64::MAX) {
                return Err(FootprintError::TooLarge { what: what() });
            }
        }
        let what = || p.title.clone();
        check_range(&what, p.low_bytes, p.steady_bytes, p.high_bytes)?;
        check_range(&what, p.steady_bytes, p.peak_bytes, u64::MAX - 1)?;
    }
    Ok(())
}

/// The sums over processes, each times its count, checked.
fn total_of(
    processes: &[ProcessEstimate],
    page_cache_bytes: u64,
    shm_mapped_bytes: u64,
) -> Result<Total, FootprintError> {
    let mut steady = Checked::new(0);
    let mut peak = Checked::new(0);
    let mut low = Checked::new(0);
    let mut high = Checked::new(0);
    let mut growth = Checked::new(0);
    for p in processes {
        let n = Checked::new(p.count);
        let each = [
            p.steady_bytes,
            p.peak_bytes,
            p.low_bytes,
            p.high_bytes,
            p.growth_bytes,
        ];
        if each.iter().any(|b| (n * *b).is_too_large()) {
            return Err(FootprintError::TooLarge {
                what: format!("{} × {}", p.count, p.title),
            });
        }
        steady = steady + n * p.steady_bytes;
        peak = peak + n * p.peak_bytes;
        low = low + n * p.low_bytes;
        high = high + n * p.high_bytes;
        growth = growth + n * p.growth_bytes;
    }
    let total = Total {
        steady_bytes: steady.raw(),
        peak_bytes: peak.raw(),
        low_bytes: low.raw(),
        high_bytes: high.raw(),
        growth_bytes: growth.raw(),
        page_cache_bytes,
        shm_mapped_bytes,
    };
    let what = || "the total of all processes".to_string();
    check_range(&what, total.low_bytes, total.steady_bytes, total.high_bytes)?;
    check_range(&what, total.steady_bytes, total.peak_bytes, u64::MAX - 1)?;
    if growth.is_too_large() {
        return Err(FootprintError::TooLarge {
            what: "the growth of all processes at their caps".into(),
        });
    }
    if shm_mapped_bytes == u64::MAX {
        return Err(FootprintError::TooLarge {
            what: "the /dev/shm segments".into(),
        });
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(bytes: u64) -> Component {
        Component::exact("c", bytes, Category::Heap, "x".into(), "here", "1")
    }

    fn listing(processes: Vec<ProcessEstimate>) -> Listing {
        Listing {
            engine_version: "1".into(),
            device: Device::Cpu,
            gpu: None,
            args: BTreeMap::new(),
            processes,
            page_cache_bytes: 0,
            shm_mapped_bytes: 0,
            notes: Vec::new(),
        }
    }

    #[test]
    fn totals_count_every_process_and_the_load_peak() {
        let steady = component(100).range(80, 150);
        let load = component(40).load_only();
        let p = ProcessEstimate::new(Role::Worker, "w", 3, vec![steady, load]);
        assert_eq!((p.steady_bytes, p.peak_bytes), (100, 140));
        let e = Estimate::assemble("e", &Model::default_model(), listing(vec![p])).unwrap();
        let t = &e.total;
        assert_eq!((t.steady_bytes, t.peak_bytes), (300, 420));
        assert_eq!((t.low_bytes, t.high_bytes), (240, 450));
        assert_eq!(e.engine_version, "1");
    }

    #[test]
    fn a_too_large_count_or_component_is_refused() {
        let p = ProcessEstimate::new(Role::Worker, "w", u64::MAX / 2, vec![component(4)]);
        let err = Estimate::assemble("e", &Model::default_model(), listing(vec![p]));
        assert!(
            matches!(err, Err(FootprintError::TooLarge { .. })),
            "{err:?}"
        );
        let p = ProcessEstimate::new(Role::Worker, "w", 1, vec![component(u64::MAX)]);
        let err = Estimate::assemble("e", &Model::default_model(), listing(vec![p]));
        assert!(
            matches!(err, Err(FootprintError::TooLarge { .. })),
            "{err:?}"
        );
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn a_range_that_misses_its_value_is_an_error() {
        let what = || "x".to_string();
        assert!(matches!(
            check_range(&what, 5, 4, 6),
            Err(FootprintError::Inconsistent { .. })
        ));
        assert!(matches!(
            check_range(&what, 0, u64::MAX, u64::MAX),
            Err(FootprintError::TooLarge { .. })
        ));
    }
}
