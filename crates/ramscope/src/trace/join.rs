//! The estimator's components beside traced allocation sites, joined by source line.
//!
//! A component cites where vLLM allocates it: `vllm/v1/worker/gpu_input_batch.py:131@0.33.0`,
//! a range `…/backend_xgrammar.py:105-112@0.33.0`, or several `…:88-96,179@0.33.0`. A traced
//! site matches when any of its Python frames is in that file (its path ends with
//! `/vllm/…`) at a cited line. The heap the estimate does not explain is shown as the
//! largest traced heap sites no component matches.

use serde::Serialize;

use crate::attribute::Category;
use crate::footprint::Estimate;
use crate::proc::roles::Role;

use super::aggregate::{Report, SiteReport};
use super::label::PythonFrame;

/// Unmatched heap sites listed for the residual.
const RESIDUAL_SITES: usize = 10;

/// A component's cited lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// The file's path from the package root: `vllm/v1/worker/gpu_input_batch.py`.
    pub path: String,
    /// Inclusive line ranges a site may be at.
    pub lines: Vec<(u32, u32)>,
}

/// How far below a cited single line a frame may be. A call spread over several lines
/// (`torch.zeros(\n  (n, m),\n  dtype=…)`) reports the line of the instruction executing
/// when the allocation happens, which CPython 3.11+ places on the argument or closing line
/// of the call, a few lines below the one the estimator cites (the call's first line).
const CALL_SPAN: u32 = 3;

/// Reads `path:LINE@release`, `path:A-B@release` or `path:A-B,C@release`; `None` for a
/// source that is not a file and line (a measured baseline, a formula's note).
pub fn parse_source(source: &str) -> Option<SourceRef> {
    let located = source.split_once('@').map_or(source, |(l, _)| l);
    let (path, lines) = located.rsplit_once(':')?;
    if !path.ends_with(".py") {
        return None;
    }
    let mut ranges = Vec::new();
    for part in lines.split(',') {
        let range = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let l: u32 = part.trim().parse().ok()?;
                (l, l.saturating_add(CALL_SPAN))
            }
        };
        if range.0 > range.1 {
            return None;
        }
        ranges.push(range);
    }
    Some(SourceRef {
        path: path.to_string(),
        lines: ranges,
    })
}

impl SourceRef {
    /// Whether a Python frame is at one of these lines of this file.
    pub fn matches(&self, f: &PythonFrame) -> bool {
        let in_file = f.file == self.path
            || f.file
                .strip_suffix(self.path.as_str())
                .is_some_and(|head| head.ends_with('/'));
        in_file
            && f.line
                .is_some_and(|l| self.lines.iter().any(|(a, b)| (*a..=*b).contains(&l)))
    }
}

/// The whole join, for `explain --trace`.
#[derive(Debug, Clone, Serialize)]
pub struct TraceJoin {
    pub dir: String,
    pub components: Vec<ComponentJoin>,
    /// Measured minus estimated heap over the tree (from the explanation).
    pub heap_residual_bytes: i64,
    /// The largest traced heap sites that no component cites, live bytes at the end.
    pub unmatched_heap_sites: Vec<TracedSite>,
    pub notes: Vec<String>,
}

/// One component and the traced bytes at its cited lines.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentJoin {
    pub role: Role,
    pub id: String,
    pub source: String,
    pub category: Category,
    pub estimated_bytes: u64,
    /// `None`: no traced site is at the cited lines (see `why_not`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traced: Option<Traced>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

/// Traced bytes of the sites that matched a component.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Traced {
    pub sites: usize,
    /// Live bytes at each process's own peak, summed.
    pub at_peak_bytes: u64,
    pub live_bytes: u64,
    /// `role pid` of each process the bytes were in.
    pub processes: Vec<String>,
}

/// A traced site, for the residual list.
#[derive(Debug, Clone, Serialize)]
pub struct TracedSite {
    pub process: String,
    pub role: Role,
    pub label: String,
    pub live_bytes: u64,
    pub at_peak_bytes: u64,
}

/// Joins every estimated component with a source line to the traced sites. A component
/// is matched with sites of processes of its own role when the trace has such processes
/// (the same line can be cited for the API server and the EngineCore), else with any.
pub fn join(report: &Report, estimate: &Estimate, heap_residual_bytes: i64) -> TraceJoin {
    let mut components = Vec::new();
    let mut matched = vec![false; report.sites.len()];
    let mut unparsed = 0;
    for p in &estimate.processes {
        let role_traced = report.processes.iter().any(|t| t.role == p.role);
        for c in &p.components {
            let Some(source) = parse_source(&c.source) else {
                unparsed += 1;
                continue;
            };
            let mut traced = Traced::default();
            for (i, s) in report.sites.iter().enumerate() {
                if role_traced && s.role != p.role {
                    continue;
                }
                if !s.python.iter().any(|f| source.matches(f)) {
                    continue;
                }
                matched[i] = true;
                traced.sites += 1;
                traced.at_peak_bytes = traced.at_peak_bytes.saturating_add(s.at_peak_bytes);
                traced.live_bytes = traced.live_bytes.saturating_add(s.live_bytes);
                let name = format!("{} {}", s.role.name(), s.process);
                if !traced.processes.contains(&name) {
                    traced.processes.push(name);
                }
            }
            let found = traced.sites > 0;
            components.push(ComponentJoin {
                role: p.role,
                id: c.id.clone(),
                source: c.source.clone(),
                category: c.category,
                estimated_bytes: c.bytes,
                traced: found.then_some(traced),
                why_not: (!found).then(|| why_not(c.category)),
            });
        }
    }
    let mut unmatched: Vec<&SiteReport> = report
        .sites
        .iter()
        .zip(&matched)
        .filter(|(s, m)| !**m && s.category == Some(Category::Heap) && s.live_bytes > 0)
        .map(|(s, _)| s)
        .collect();
    unmatched.sort_by_key(|s| std::cmp::Reverse(s.live_bytes));
    let mut notes = Vec::new();
    if unparsed > 0 {
        notes.push(format!(
            "{unparsed} component(s) cite no Python source line (runtime baselines measured as a whole, C++ code): not joined"
        ));
    }
    if report
        .processes
        .iter()
        .all(|p| p.python_frames != super::format::PythonFrames::Ok)
    {
        notes.push(
            "no traced process recorded Python frames: nothing can match a source line".into(),
        );
    }
    TraceJoin {
        dir: report.dir.clone(),
        components,
        heap_residual_bytes,
        unmatched_heap_sites: unmatched
            .into_iter()
            .take(RESIDUAL_SITES)
            .map(|s| TracedSite {
                process: s.process.clone(),
                role: s.role,
                label: s.label.clone(),
                live_bytes: s.live_bytes,
                at_peak_bytes: s.at_peak_bytes,
            })
            .collect(),
        notes,
    }
}

/// Why a component has no traced site (the report says once why that can be right).
fn why_not(category: Category) -> String {
    match category {
        Category::CodeCuda | Category::CodeTorch | Category::CodePython | Category::CodeOther => {
            "library pages: mapped by the dynamic loader, which the tracer does not see".into()
        }
        _ => "no allocation at these lines in the trace".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(file: &str, line: u32) -> PythonFrame {
        PythonFrame {
            file: file.into(),
            function: "f".into(),
            line: Some(line),
        }
    }

    #[test]
    fn reads_cited_lines() {
        let s = parse_source("vllm/v1/worker/gpu_input_batch.py:131@0.33.0").unwrap();
        assert_eq!(s.path, "vllm/v1/worker/gpu_input_batch.py");
        assert_eq!(s.lines, [(131, 134)]);
        let r =
            parse_source("vllm/v1/structured_output/backend_xgrammar.py:105-112@0.33.0").unwrap();
        assert_eq!(r.lines, [(105, 112)]);
        let m = parse_source("vllm/v1/worker/gpu/buffer_utils.py:88-96,179@0.33.0").unwrap();
        assert_eq!(m.lines, [(88, 96), (179, 182)]);
        assert!(parse_source("measured on torch 2.8").is_none());
        assert!(parse_source("csrc/cache.cpp:10@0.33.0").is_none());
        assert!(parse_source("vllm/x.py:20-10@0.33.0").is_none());
        assert!(parse_source("vllm/x.py:99999999999@0.33.0").is_none());
    }

    #[test]
    fn a_frame_matches_in_the_file_at_the_lines() {
        let s = parse_source("vllm/v1/worker/gpu_input_batch.py:131@0.33.0").unwrap();
        let file = "/x/site-packages/vllm/v1/worker/gpu_input_batch.py";
        assert!(s.matches(&frame(file, 131)));
        assert!(s.matches(&frame(file, 134)));
        assert!(!s.matches(&frame(file, 135)));
        assert!(!s.matches(&frame(file, 130)));
        assert!(!s.matches(&frame(
            "/x/site-packages/myvllm/v1/worker/gpu_input_batch.py",
            131
        )));
        assert!(!s.matches(&PythonFrame {
            line: None,
            ..frame(file, 131)
        }));
    }
}
