//! The container's memory settings for Kubernetes, each number with the arithmetic that
//! gives it (the YAML snippet prints it as a comment beside the number):
//!
//! - `requests.memory` ≥ the steady state's non-reclaimable memory + the file-backed pages
//!   read all the time (the kubelet's working set: usage − inactive file pages);
//! - `limits.memory` ≥ max(load peak non-reclaimable, steady + growth at its caps) +
//!   headroom, rounded up to a MiB;
//! - a `/dev/shm` emptyDir (`medium: Memory`) sized to the segments' mapped size: its tmpfs
//!   pages are charged to the pod, so the limit counts the resident ones;
//! - the memlock ulimit mlocked components need (Kubernetes has no field for it).

use serde::Serialize;

use crate::footprint::{Component, Estimate, Phase};
use crate::units::{bytes, Checked};

use super::quantity::{kubernetes as quantity, round_up_mib, Headroom};
use super::split::kind_of;
use super::{largest, largest_by, Figures, FitError, PodFit};

/// What the values are computed from.
pub struct Sizing<'a> {
    pub estimate: Option<&'a Estimate>,
    pub figures: &'a Figures,
    pub pod: &'a PodFit,
    pub headroom: Headroom,
    /// Growth terms nothing caps, described.
    pub uncapped: &'a [String],
}

/// One number of the snippet: bytes, the quantity as written, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Value {
    pub bytes: u64,
    /// As the YAML writes it (`3300Mi`, `16Gi`).
    pub quantity: String,
    /// The arithmetic, traced to components.
    pub trace: String,
}

impl Value {
    fn new(bytes: u64, trace: String) -> Value {
        Value {
            bytes,
            quantity: quantity(bytes),
            trace,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kubernetes {
    /// `resources.requests.memory`.
    pub requests_memory: Value,
    /// `resources.limits.memory`.
    pub limits_memory: Value,
    /// `emptyDir.sizeLimit` of the `/dev/shm` volume; `None` when no segment needs it.
    pub shm_size_limit: Option<Value>,
    /// What the memlock ulimit must allow; `None` when nothing is mlocked.
    pub memlock: Option<Value>,
    /// `false` when some growth has no cap: then no limit is safe, and request = limit
    /// cannot be made safe either.
    pub request_equals_limit_safe: bool,
    pub notes: Vec<String>,
    /// The values as a fragment of a pod spec ([`yaml`]).
    pub yaml: String,
}

fn too_large(what: &str) -> FitError {
    FitError {
        what: what.to_string(),
    }
}

fn non_reclaimable(c: &Component) -> bool {
    !kind_of(c.category, c.pinned, c.locked).reclaimable()
}

/// ` (a 1 MiB, b 2 MiB)`, or nothing when no component is picked.
fn named(e: Option<&Estimate>, pick: impl Fn(&Component) -> bool) -> String {
    let list = largest(e, pick);
    if list.is_empty() {
        list
    } else {
        format!(" ({list})")
    }
}

pub fn values(s: &Sizing) -> Result<Kubernetes, FitError> {
    let (f, e) = (s.figures, s.estimate);
    let mut notes = Vec::new();
    let measured = if f.from_measurement { ", measured" } else { "" };

    let request_basis = Checked::new(f.steady_non_reclaimable.bytes) + f.hot_file.bytes;
    let request = request_basis
        .get()
        .and_then(round_up_mib)
        .ok_or_else(|| too_large("requests.memory"))?;
    let request_trace = format!(
        "steady non-reclaimable {}{measured}{} + file-backed read all the time {}{}",
        bytes(f.steady_non_reclaimable.bytes),
        named(e, |c| c.phase == Phase::Steady && non_reclaimable(c)),
        bytes(f.hot_file.bytes),
        named(e, |c| c.phase == Phase::Steady && !non_reclaimable(c)),
    );

    let load = f.load_non_reclaimable.bytes;
    let steady_and_growth = Checked::new(f.growth_non_reclaimable.bytes) + f.growth_hot_file.bytes;
    let basis = steady_and_growth.max(load);
    let with_headroom = basis + s.headroom.on(basis.raw());
    let mut limit = with_headroom
        .get()
        .and_then(round_up_mib)
        .ok_or_else(|| too_large("limits.memory"))?;
    let growth_bytes = f
        .growth_non_reclaimable
        .bytes
        .saturating_sub(f.steady_non_reclaimable.bytes)
        .saturating_add(f.growth_hot_file.bytes.saturating_sub(f.hot_file.bytes));
    let loading = load.saturating_sub(f.steady_non_reclaimable.bytes);
    let mut limit_trace = format!(
        "max(load peak non-reclaimable {} = steady {} + while loading {}{}, steady with file-backed {} + growth at its caps {}{}) = {}, + headroom {} = {}, rounded up to Mi",
        bytes(load),
        bytes(f.steady_non_reclaimable.bytes),
        bytes(loading),
        named(e, |c| c.phase == Phase::Load && non_reclaimable(c)),
        bytes(request_basis.raw()),
        bytes(growth_bytes),
        named(e, |c| c.phase == Phase::Growth),
        bytes(basis.raw()),
        s.headroom.describe(),
        bytes(with_headroom.raw()),
    );
    if limit < request {
        limit = request;
        limit_trace.push_str("; raised to the request");
    }
    let high = f.load_non_reclaimable.high_bytes.max(
        f.growth_non_reclaimable
            .high_bytes
            .saturating_add(f.growth_hot_file.high_bytes),
    );
    if high > limit {
        // A limit inside the estimate's range would be reported "may OOM" by this same
        // check: recommend one that covers the range.
        limit = round_up_mib(high).ok_or_else(|| too_large("limits.memory"))?;
        limit_trace.push_str(&format!(
            "; raised to the estimate's range high end {} so the check passes at this limit",
            bytes(high)
        ));
    }

    let request_equals_limit_safe = s.uncapped.is_empty();
    if !request_equals_limit_safe {
        notes.push(format!(
            "{} grows without a cap: no limit is safe, and request = limit cannot be made safe; cap it and run ramscope fit again",
            s.uncapped.join(", ")
        ));
    } else if growth_bytes > 0 {
        notes.push(format!(
            "the request covers the steady state; what grows with traffic (up to {}) lies between request and limit: for request = limit, set both to the limit",
            bytes(growth_bytes)
        ));
    }

    let shm_size_limit = match s.pod.shm_needed_bytes {
        0 => None,
        needed => {
            let size = round_up_mib(needed).ok_or_else(|| too_large("the /dev/shm size"))?;
            let resident = s.pod.phases.growth_bound.shared.bytes;
            Some(Value::new(
                size,
                format!(
                    "the /dev/shm segments map {} ({}), rounded up to Mi; tmpfs pages are charged to the pod: their resident {} is in limits.memory",
                    bytes(needed),
                    // Processes that map one segment each list it: only the components'
                    // own sum is theirs to name.
                    if s.pod.shm_needed_from == "engine" {
                        "the engine's total of its segments".to_string()
                    } else {
                        format!(
                            "the shm components' mapped sizes: {}",
                            largest_by(
                                e,
                                |c| c.category == crate::attribute::Category::Shm,
                                |c| c.mapped_bytes.unwrap_or(c.bytes)
                            )
                        )
                    },
                    bytes(resident)
                ),
            ))
        }
    };
    let memlock = match s.pod.locked_bytes {
        0 => None,
        locked => Some(Value::new(
            round_up_mib(locked).ok_or_else(|| too_large("the locked memory"))?,
            format!(
                "{} is mlocked{}: the container's memlock ulimit (RLIMIT_MEMLOCK) must allow it; Kubernetes has no field for it: raise the container runtime's default memlock ulimit, or grant CAP_IPC_LOCK",
                bytes(locked),
                named(e, |c| c.locked)
            ),
        )),
    };
    Ok(Kubernetes {
        requests_memory: Value::new(request, request_trace),
        limits_memory: Value::new(limit, limit_trace),
        shm_size_limit,
        memlock,
        request_equals_limit_safe,
        notes,
        yaml: String::new(),
    })
}

/// A comment's text on one line: control characters escaped, no line break.
fn comment(text: &str) -> String {
    crate::text::clean(text).replace('\n', " ")
}

/// The values as a fragment of a pod spec, each number followed by a comment with its
/// arithmetic; `heading` is the first comment line.
pub fn yaml(k: &Kubernetes, heading: &str) -> String {
    let mut y = vec![
        format!("# {}", comment(heading)),
        "containers:".into(),
        "  - name: server".into(),
        "    resources:".into(),
        "      requests:".into(),
        format!(
            "        memory: {}  # {}",
            k.requests_memory.quantity,
            comment(&k.requests_memory.trace)
        ),
        "      limits:".into(),
        format!(
            "        memory: {}  # {}",
            k.limits_memory.quantity,
            comment(&k.limits_memory.trace)
        ),
    ];
    if let Some(m) = &k.memlock {
        y.push(format!(
            "    # memlock {}: {}",
            m.quantity,
            comment(&m.trace)
        ));
    }
    if let Some(shm) = &k.shm_size_limit {
        y.extend([
            "    volumeMounts:".into(),
            "      - name: dshm".into(),
            "        mountPath: /dev/shm".into(),
            "volumes:".into(),
            "  - name: dshm".into(),
            "    emptyDir:".into(),
            "      medium: Memory".into(),
            format!(
                "      sizeLimit: {}  # {}",
                shm.quantity,
                comment(&shm.trace)
            ),
        ]);
    }
    if !k.request_equals_limit_safe {
        y.push(
            "# growth without a cap: request = limit cannot be made safe (see the notes)".into(),
        );
    }
    y.push(String::new());
    y.join("\n")
}
