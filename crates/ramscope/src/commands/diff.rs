use anyhow::Context;

use ramscope::record::format::Input;
use ramscope::report::diff::{diff, render, Moment, Side};

use crate::cli::{DiffArgs, DiffAt};

pub fn run(args: DiffArgs) -> anyhow::Result<()> {
    let at = match args.at {
        DiffAt::Last => Moment::Last,
        DiffAt::Peak => Moment::Peak,
    };
    let a = Side::of(&Input::read(&args.a)?, at);
    let b = Side::of(&Input::read(&args.b)?, at);
    let d = diff(
        &args.a.display().to_string(),
        &a,
        &args.b.display().to_string(),
        &b,
        at,
    );
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&d).context("encoding JSON")?
        )?;
    } else {
        out!("{}", render(&d))?;
    }
    Ok(())
}
