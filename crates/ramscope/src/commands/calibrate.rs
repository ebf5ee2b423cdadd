use anyhow::{anyhow, Context};

use ramscope::calibrate::{self, run_probes};
use ramscope::measure::now_rfc3339;
use ramscope::units::bytes;

use crate::cli::CalibrateArgs;

pub fn run(a: CalibrateArgs) -> anyhow::Result<()> {
    let getenv = |k: &str| std::env::var(k).ok();
    let out = a
        .out
        .clone()
        .or_else(|| calibrate::default_path(&getenv))
        .ok_or_else(|| {
            anyhow!("no place for the profile: set --out, RAMSCOPE_CALIBRATION or HOME")
        })?;
    let timeout = calibrate::probe_timeout(&getenv)?;
    note!(
        "probing {} (import torch, vLLM, CUDA context)…",
        a.python.display()
    );
    let profile = run_probes(&a.python, now_rfc3339(), timeout, &mut |line| {
        note!("  {line}")
    })?;
    profile.save(&out)?;
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&profile).context("encoding JSON")?
        )?;
    }
    let last = profile
        .stages
        .last()
        .map(|s| bytes(s.pss_bytes))
        .unwrap_or_default();
    let stages = profile.stages.len();
    note!(
        "stored {} ({stages} stage{}, last PSS {last}); `ramscope estimate` now uses it",
        out.display(),
        if stages == 1 { "" } else { "s" }
    );
    Ok(())
}
