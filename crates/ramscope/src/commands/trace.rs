//! `ramscope trace`: the launcher (`trace -- CMD`, in trace_launch.rs) and `trace report DIR`.

use anyhow::Context;

use ramscope::report::trace::{flame, render, At, By, Show};
use ramscope::trace::aggregate::{aggregate, Filter};
use ramscope::trace::symbolize::Symbolizer;

use crate::cli::{TraceAction, TraceArgs, TraceAt, TraceBy, TraceReportArgs};

pub fn run(a: TraceArgs) -> anyhow::Result<()> {
    match a.action {
        Some(TraceAction::Report(r)) => report(r),
        None => super::trace_launch::launch(a),
    }
}

/// `ramscope trace report DIR`.
fn report(a: TraceReportArgs) -> anyhow::Result<()> {
    let dir = ramscope::trace::dir::read(&a.dir)?;
    let filter = Filter {
        pid: a.pid,
        min_bytes: a.min_bytes.unwrap_or(0),
    };
    let report = aggregate(&dir, &filter, &mut Symbolizer::new());
    if let Some(path) = &a.flame {
        let at = match a.at {
            TraceAt::End => At::End,
            TraceAt::Peak => At::Peak,
        };
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let mut w = std::io::BufWriter::new(file);
        flame(&report, at, &mut w)
            .and_then(|()| std::io::Write::flush(&mut w))
            .with_context(|| format!("writing the flame graph {}", path.display()))?;
        note!("flame graph: {}", path.display());
    }
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding JSON")?
        )?;
    } else {
        let by = match a.by {
            TraceBy::Site => By::Site,
            TraceBy::Process => By::Process,
            TraceBy::Role => By::Role,
            TraceBy::Category => By::Category,
        };
        let show = Show {
            by,
            top: a.top,
            stacks: a.stacks,
        };
        out!("{}", render(&report, show))?;
    }
    Ok(())
}
