//! One function per subcommand; each returns an error value for main to print.

mod calibrate;
mod estimate;
mod measure;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Measure(args)) => measure::run(args),
        Some(Command::Estimate(args)) => estimate::run(args),
        Some(Command::Calibrate(args)) => calibrate::run(args),
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(())
        }
    }
}
