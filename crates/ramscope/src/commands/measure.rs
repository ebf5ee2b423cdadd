use anyhow::{bail, Context};

use ramscope::measure::{MeasureOptions, Measurer};
use ramscope::proc::ProcFs;
use ramscope::report::measure::{render, Breakdown};

use crate::cli::{By, MeasureArgs};

pub fn run(args: MeasureArgs) -> anyhow::Result<()> {
    let options = MeasureOptions {
        tree: !args.no_tree,
        keep_mappings: args.by == By::Mapping,
        use_rollup: !args.no_rollup,
    };
    let mut measurer = Measurer::new(ProcFs::new(&args.proc_root), options);
    if args.exact {
        measurer.set_rollup_rss_limit(None);
    }
    let snapshot = if args.auto || args.pids.is_empty() {
        let found = measurer.find_servers()?;
        if found.is_empty() && args.pids.is_empty() {
            bail!("no inference server (vLLM, SGLang, llama.cpp, Ollama) found on this machine; give a PID");
        }
        for &pid in &args.pids {
            if !measurer.fs().exists(pid) {
                bail!(ramscope::error::ProcError::NoSuchProcess { pid });
            }
        }
        let mut roots = found;
        roots.extend(&args.pids);
        measurer.found_trees(&roots)?
    } else {
        measurer.tree(&args.pids)?
    };
    if args.json {
        let text = serde_json::to_string_pretty(&snapshot).context("encoding JSON")?;
        outln!("{text}")?;
    } else {
        let by = match args.by {
            By::Process => Breakdown::Process,
            By::Category => Breakdown::Category,
            By::Mapping => Breakdown::Mapping,
        };
        out!("{}", render(&snapshot, by, args.top))?;
    }
    Ok(())
}
