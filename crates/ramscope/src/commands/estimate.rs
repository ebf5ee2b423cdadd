use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};
use clap::ValueEnum;

use ramscope::calibrate::{self, Baselines, Profile};
use ramscope::engines::{self, Engine, Options};
use ramscope::estimate::estimate;
use ramscope::footprint::{Device, ReleaseAssumed};
use ramscope::gpu::Gpu;
use ramscope::model::Model;
use ramscope::report::estimate::{render, render_log};

use crate::cli::{DeviceArg, EngineArgs, EstimateArgs};

/// Server logs are text of a few MiB at most; a larger file is not one.
const MAX_LOG_BYTES: u64 = 256 << 20;

pub fn run(mut a: EstimateArgs) -> anyhow::Result<()> {
    let given = std::mem::take(&mut a.vllm);
    let mut words = take_own_options(&given, &mut a)?;
    words.extend(a.command.iter().cloned());
    let engine = engines::for_command(&words);
    let options = options(engine, &a.engine, None, &BTreeMap::new())?;
    let getenv = |k: &str| std::env::var(k).ok();
    let mut launch = engine.parse(&words)?;
    let model = match launch.resolve_model(&getenv) {
        Some(model) => model?,
        None => Model::default_model(),
    };
    launch.use_example_if_empty();
    let est = estimate(&model, &*launch, &options)?;
    // The server's own log, read before anything is printed so a bad file is one error.
    let log = match &a.log {
        Some(path) => {
            let bytes = ramscope::userfile::read_capped(path, MAX_LOG_BYTES)
                .with_context(|| format!("reading the log {}", path.display()))?;
            let text = String::from_utf8_lossy(&bytes);
            Some(launch.reconcile_log(&est, &text)?)
        }
        None => None,
    };
    if a.json {
        let mut doc = serde_json::to_value(&est).context("encoding JSON")?;
        if let (Some(log), Some(obj)) = (&log, doc.as_object_mut()) {
            obj.insert(
                "log".into(),
                serde_json::to_value(log).context("encoding JSON")?,
            );
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).context("encoding JSON")?
        )?;
    } else {
        out!("{}", render(&est))?;
        if let (Some(log), Some(path)) = (&log, &a.log) {
            out!("{}", render_log(log, &path.display().to_string()))?;
        }
    }
    if est.processes.is_empty() {
        bail!("no processes estimated");
    }
    Ok(())
}

/// Takes ramscope's own options out of the words clap left for vLLM (`estimate M
/// --max-model-len 5120 --vllm-version 0.11`), up to the first `--`; what follows `--` is
/// the vLLM command line's, word for word. No vLLM 0.32 flag shares these names (checked
/// against its `--help=all`); 0.10's `--device` meant the same choice as ramscope's, so a
/// `--device` before `--` is ramscope's.
fn take_own_options(words: &[String], a: &mut EstimateArgs) -> anyhow::Result<Vec<String>> {
    let mut rest = Vec::with_capacity(words.len());
    let mut i = 0;
    while let Some(word) = words.get(i) {
        i += 1;
        if word == "--" {
            rest.extend(words[i - 1..].iter().cloned());
            break;
        }
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (word.as_str(), None),
        };
        let takes_value = match name {
            "--json" | "--no-calibration" => false,
            "--vllm-version" | "--engine-version" | "--device" | "--gpu" | "--env"
            | "--calibration" | "--log" => true,
            _ => {
                rest.push(word.clone());
                continue;
            }
        };
        let value = match (takes_value, inline) {
            (false, Some(_)) => bail!("{name} takes no value"),
            (false, None) => String::new(),
            (true, Some(v)) => v,
            (true, None) => match words.get(i) {
                Some(v) if !v.starts_with('-') => {
                    i += 1;
                    v.clone()
                }
                _ => bail!("{name} needs a value"),
            },
        };
        let engine = &mut a.engine;
        match name {
            "--json" => a.json = true,
            "--no-calibration" => engine.no_calibration = true,
            "--vllm-version" | "--engine-version" => engine.vllm_version = Some(value),
            "--log" => a.log = Some(value.into()),
            "--device" => {
                engine.device = Some(DeviceArg::from_str(&value, false).map_err(|_| {
                    anyhow!("invalid value '{value}' for --device: expected cuda or cpu")
                })?)
            }
            "--gpu" => engine.gpu = value,
            "--env" => engine.env.push(value),
            _ => engine.calibration = Some(value.into()),
        }
    }
    Ok(rest)
}

/// The estimator's options for `engine` from the engine flags. `running` is what a live
/// server showed (its installed version as written, and its device), used where the flags
/// say nothing; `server_env` is the server's own environment, which wins over ramscope's.
///
/// A version ramscope has not read (`--vllm-version 0.34`, an installed 1.0, a server whose
/// version cannot be read) is estimated with the nearest known release, and the options say
/// so ([`Options::release_assumed`]). Without a server or a version the newest release is
/// the documented default, not an assumption.
pub fn options(
    engine: &dyn Engine,
    a: &EngineArgs,
    running: Option<(Option<String>, Option<Device>)>,
    server_env: &BTreeMap<String, String>,
) -> anyhow::Result<Options> {
    let (running_release, running_device) = running.clone().unwrap_or((None, None));
    let read = match (&a.vllm_version, &running) {
        (Some(v), _) => engine.read_release(v),
        (None, Some(_)) => match &running_release {
            Some(installed) => engine.read_release(installed),
            None => Err(ReleaseAssumed {
                requested: None,
                used: engine.newest_release(),
                reason: format!(
                    "the {} release of this server could not be read (no installation in the site-packages it maps, no known build in the binaries it maps, none in a saved snapshot) and no --vllm-version was given",
                    engine.title()
                ),
            }),
        },
        (None, None) => Ok(engine.newest_release()),
    };
    let (release, release_assumed) = match read {
        Ok(release) => (release, None),
        Err(assumed) => (assumed.used.clone(), Some(assumed)),
    };
    let device = match a.device {
        Some(DeviceArg::Cuda) => Device::Cuda,
        Some(DeviceArg::Cpu) => Device::Cpu,
        None => running_device.unwrap_or_else(|| engine.default_device()),
    };
    let gpu = Gpu::parse(&a.gpu).ok_or_else(|| {
        anyhow!(
            "unknown --gpu {}: known are {} or a size such as 48GiB",
            a.gpu,
            Gpu::names().join(", ")
        )
    })?;
    let mut env = BTreeMap::new();
    if running.is_none() {
        for name in engine.environment() {
            if let Ok(v) = std::env::var(name) {
                env.insert(name.to_string(), v);
            }
        }
    }
    env.extend(server_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    for kv in &a.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("--env {kv}: expected NAME=VALUE"))?;
        env.insert(k.to_string(), v.to_string());
    }
    let getenv = |k: &str| std::env::var(k).ok();
    let baselines = if a.no_calibration {
        Baselines::built_in()
    } else {
        match a
            .calibration
            .clone()
            .or_else(|| calibrate::default_path(&getenv).filter(|p| p.is_file()))
        {
            Some(path) => {
                // Reading a FIFO would block until something writes to it.
                let meta = std::fs::metadata(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if !meta.is_file() {
                    bail!(
                        "{}: not a regular file (a FIFO, device or socket is not read)",
                        path.display()
                    );
                }
                let profile = Profile::load(&path)?;
                Baselines::from_profile(&profile, &path)
            }
            None => Baselines::built_in(),
        }
    };
    Ok(Options {
        release: Some(release),
        release_assumed,
        device,
        gpu,
        env,
        baselines,
        host_memory_bytes: host_memory(),
        cpu_cores: std::thread::available_parallelism()
            .ok()
            .map(|n| n.get() as u64),
        // A running server's are filled in by `explain`; a command line does not say.
        torch_version: None,
        python_version: None,
    })
}

/// `MemTotal` of NUMA node 0 if the kernel exposes it (what vLLM's CPU worker reads), else
/// of the machine.
fn host_memory() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let parse = |text: String| {
        text.lines()
            .find(|l| l.contains("MemTotal:"))
            .and_then(|l| {
                let kb: u64 = l.split_whitespace().rev().nth(1)?.parse().ok()?;
                Some(kb * 1024)
            })
    };
    read("/sys/devices/system/node/node0/meminfo")
        .and_then(parse)
        .or_else(|| read("/proc/meminfo").and_then(parse))
}
