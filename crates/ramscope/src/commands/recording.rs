//! The sampling loop `run` and `watch` share: sample on a fixed schedule, stream each sample
//! to the recording, stop when told, close the recording, print the summary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use ramscope::measure::now_rfc3339;
use ramscope::proc::ProcFs;
use ramscope::record::analysis::analyze;
use ramscope::record::leak::LeakOptions;
use ramscope::record::sampler::{monotonic_seconds, Follow, Sampler, SamplerOptions};
use ramscope::record::{
    Header, Recording, RecordingEnd, RecordingWriter, Sample, SampleCost, END_SCHEMA,
    RECORDING_SCHEMA,
};

use crate::cli::RecordArgs;

/// Why the loop stopped, as the end line records it.
pub struct Stop {
    pub reason: &'static str,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
}

/// What the loop asks of the command after each sample and while waiting.
pub trait Control {
    /// `Some` when recording should end now.
    fn poll(&mut self, t_s: f64) -> Option<Stop>;
    /// Called with every sample (live views).
    fn on_sample(&mut self, _sample: &Sample) {}
}

pub fn default_out_path() -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    let stamp = now.format(&fmt).unwrap_or_else(|_| "recording".into());
    PathBuf::from(format!("ramscope-{stamp}.jsonl"))
}

pub fn sampler_options(args: &RecordArgs) -> anyhow::Result<SamplerOptions> {
    if !(args.smaps_on_move > 0.0 && args.smaps_on_move.is_finite()) {
        anyhow::bail!("--smaps-on-move must be a positive fraction, such as 0.05");
    }
    if args.interval < Duration::from_millis(10) {
        anyhow::bail!("--interval must be at least 10ms");
    }
    Ok(SamplerOptions {
        rollup_every: args.rollup_every,
        smaps_every: args.smaps_every,
        smaps_on_move: args.smaps_on_move,
        scan_every: args.scan_every,
        ..SamplerOptions::default()
    })
}

/// Checks the recording options and where the recording goes, before anything is started.
pub fn check(args: &RecordArgs) -> anyhow::Result<()> {
    sampler_options(args)?;
    if let Some(out) = &args.out {
        // Read back for the summary, so a file; and a FIFO would block the open.
        if std::fs::metadata(out).is_ok_and(|m| !m.is_file()) {
            anyhow::bail!("{} is not a regular file", out.display());
        }
    }
    Ok(())
}

/// Runs the loop until `control` says stop; returns the recording's path.
pub fn record(
    args: &RecordArgs,
    mode: &str,
    command: Vec<String>,
    follow: Follow,
    control: &mut dyn Control,
) -> anyhow::Result<PathBuf> {
    let options = sampler_options(args)?;
    let out = args.out.clone().unwrap_or_else(default_out_path);
    let start = Instant::now();
    let header = Header {
        schema: RECORDING_SCHEMA.into(),
        started_at: now_rfc3339(),
        monotonic_start_s: monotonic_seconds(),
        command,
        mode: mode.into(),
        interval_s: args.interval.as_secs_f64(),
        rollup_every_s: options.rollup_every.as_secs_f64(),
        smaps_every_s: options.smaps_every.as_secs_f64(),
        smaps_on_move: options.smaps_on_move,
        scan_every_s: options.scan_every.as_secs_f64(),
        roots: follow.roots.clone(),
        ramscope_version: env!("CARGO_PKG_VERSION").into(),
        host: ramscope::record::format::host_name(),
    };
    let mut writer = RecordingWriter::create(&out, &header)?;
    let mut sampler = Sampler::new(ProcFs::new(&args.proc_root), options);
    let mut total = SampleCost::default();
    let mut next = start;
    // A sample of an empty tree, held back until the recording goes on: the tree may have
    // been ending (the command exiting, its memory already released but its exit not yet
    // seen), and then the sample says nothing the end line does not.
    let mut held: Option<Sample> = None;
    let stop = loop {
        let t_s = start.elapsed().as_secs_f64();
        if let Some(stop) = control.poll(t_s) {
            break stop;
        }
        if let Some(sample) = held.take() {
            keep(&sample, &mut writer, &mut total, control)?;
        }
        match sampler.sample(&follow, t_s) {
            Ok(sample) if sample.snapshot.processes.is_empty() => held = Some(sample),
            Ok(sample) => keep(&sample, &mut writer, &mut total, control)?,
            // The tree's head exited between the check and the scan: the next poll says so.
            Err(e) if e.is_gone() => {}
            Err(e) => return Err(e).context("sampling"),
        }
        next += args.interval;
        let now = Instant::now();
        if next < now {
            // Sampling took longer than the interval: skip the missed ticks, keep the phase.
            let behind = now - next;
            let missed = (behind.as_nanos() / args.interval.as_nanos().max(1)) as u32 + 1;
            next += args.interval * missed;
        }
        if let Some(stop) = wait_until(next, start, control) {
            break stop;
        }
    };
    let end = RecordingEnd {
        schema: END_SCHEMA.into(),
        t_s: start.elapsed().as_secs_f64(),
        reason: stop.reason.into(),
        exit_code: stop.exit_code,
        exit_signal: stop.exit_signal,
        samples: writer.samples(),
        overhead: total,
    };
    writer.end(&end)?;
    Ok(out)
}

/// Writes a sample to the recording and shows it.
fn keep(
    sample: &Sample,
    writer: &mut RecordingWriter,
    total: &mut SampleCost,
    control: &mut dyn Control,
) -> anyhow::Result<()> {
    total.add(&sample.overhead);
    writer.sample(sample)?;
    control.on_sample(sample);
    Ok(())
}

/// Sleeps until `deadline` in short steps, so a command's exit or a signal is seen within
/// ~20 ms.
fn wait_until(deadline: Instant, start: Instant, control: &mut dyn Control) -> Option<Stop> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
        if let Some(stop) = control.poll(start.elapsed().as_secs_f64()) {
            return Some(stop);
        }
    }
}

/// Reads the recording back and returns the summary (or its JSON) to print.
pub fn summarize(path: &Path, json: bool) -> anyhow::Result<String> {
    let rec = Recording::read(path)?;
    let analysis = analyze(&rec, &LeakOptions::default());
    if json {
        let text = serde_json::to_string_pretty(&analysis).context("encoding JSON")?;
        Ok(format!("{text}\n"))
    } else {
        Ok(format!(
            "{}recording: {}\n",
            ramscope::report::record::render(&analysis),
            path.display()
        ))
    }
}
