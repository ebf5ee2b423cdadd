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
    let roots = if args.auto || args.pids.is_empty() {
        let found = measurer.find_servers()?;
        if found.is_empty() {
            bail!("no inference server (vLLM, SGLang, llama.cpp, Ollama) found on this machine; give a PID");
        }
        let mut roots = found;
        roots.extend(&args.pids);
        roots
    } else {
        args.pids.clone()
    };
    let snapshot = measurer.tree(&roots)?;
    if args.json {
        let text = serde_json::to_string_pretty(&snapshot).context("encoding JSON")?;
        println!("{text}");
    } else {
        let by = match args.by {
            By::Process => Breakdown::Process,
            By::Category => Breakdown::Category,
            By::Mapping => Breakdown::Mapping,
        };
        print!("{}", render(&snapshot, by, args.top));
    }
    Ok(())
}
