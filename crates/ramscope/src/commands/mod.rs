//! One function per subcommand; each returns an error value for main to print.

mod calibrate;
mod estimate;
mod explain;
mod measure;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Measure(args)) => measure::run(args),
        Some(Command::Estimate(args)) => estimate::run(args),
        Some(Command::Calibrate(args)) => calibrate::run(args),
        Some(Command::Explain(args)) => explain::run(args, false),
        // Plain `ramscope`: explain whatever server runs here, or show the built-in example.
        None => explain::run(crate::cli::ExplainArgs::default(), true),
    }
}
