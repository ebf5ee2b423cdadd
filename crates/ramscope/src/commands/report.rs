use anyhow::Context;

use ramscope::record::analysis::{analyze, tree_timeline};
use ramscope::record::leak::LeakOptions;
use ramscope::record::Recording;
use ramscope::report::{chart, csv, html};

use crate::cli::ReportArgs;

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let rec = Recording::read(&args.file)?;
    if rec.samples.is_empty() {
        anyhow::bail!("{} holds no samples yet", args.file.display());
    }
    let leak = LeakOptions {
        window_s: args.leak_window.map(|w| w.as_secs_f64()),
        ..LeakOptions::default()
    };
    let analysis = analyze(&rec, &leak);
    let write = |path: &std::path::Path, text: &str| {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    if let Some(path) = &args.html {
        write(path, &html::render(&rec, &analysis)?)?;
    }
    if let Some(path) = &args.svg {
        write(path, &chart::stacked_svg(&tree_timeline(&rec), 1000, 420)?)?;
    }
    if let Some(path) = &args.csv {
        write(path, &csv::render(&rec))?;
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&analysis).context("encoding JSON")?
        )?;
    } else {
        out!("{}", ramscope::report::record::render(&analysis))?;
        for (what, path) in [("HTML", &args.html), ("SVG", &args.svg), ("CSV", &args.csv)] {
            if let Some(p) = path {
                outln!("{what}: {}", p.display())?;
            }
        }
    }
    Ok(())
}
