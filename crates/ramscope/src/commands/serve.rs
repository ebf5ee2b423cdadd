use std::time::Instant;

use anyhow::bail;

use ramscope::exporter::http;
use ramscope::exporter::{Exporter, ExporterOptions, Targets};
use ramscope::proc::ProcFs;

use crate::cli::ServeArgs;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Checked before anything else, so a refused address is the first thing a user hears of.
    let addrs = http::resolve_listen(&args.listen, args.allow_remote)?;
    if args.request_timeout.is_zero() {
        bail!("--request-timeout must be longer than 0");
    }
    let targets = if args.auto {
        Targets::Auto
    } else if args.pids.is_empty() {
        bail!("nothing to export: give PIDs or --auto");
    } else {
        Targets::Pids(args.pids.clone())
    };
    let fs = ProcFs::new(&args.proc_root);
    if let Targets::Pids(pids) = &targets {
        if let Some(p) = pids.iter().find(|&&p| !fs.exists(p)) {
            bail!("no process with PID {p}");
        }
    }
    let mut exporter = Exporter::new(
        fs,
        ExporterOptions {
            targets,
            min_interval: args.min_interval,
            max_processes: args.max_processes,
        },
    );
    let listener = http::bind(&args.listen, &addrs)?;
    note!(
        "ramscope: serving metrics at http://{}/metrics",
        listener.local_addr()?
    );
    http::serve(&listener, args.request_timeout, || {
        exporter.scrape(Instant::now())
    })
}
