//! One function per subcommand; each returns an error value for main to print.

// First: the printing macros the commands below use.
#[macro_use]
mod out;

mod calibrate;
mod diff;
mod estimate;
mod explain;
mod fit;
mod measure;
mod recording;
mod report;
mod run;
mod scan;
mod serve;
mod signals;
mod trace;
mod trace_launch;
mod watch;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Measure(args)) => measure::run(args),
        Some(Command::Run(args)) => run::run(args),
        Some(Command::Watch(args)) => watch::run(args),
        Some(Command::Report(args)) => report::run(args),
        Some(Command::Diff(args)) => diff::run(args),
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Scan(args)) => scan::run(args),
        Some(Command::Estimate(args)) => estimate::run(args),
        Some(Command::Calibrate(args)) => calibrate::run(args),
        Some(Command::Explain(args)) => explain::run(args, false),
        Some(Command::Fit(args)) => fit::run(args),
        Some(Command::Trace(args)) => trace::run(args),
        // Plain `ramscope`: explain whatever server runs here, or show the built-in example.
        None => explain::run(crate::cli::ExplainArgs::default(), true),
    }
}
