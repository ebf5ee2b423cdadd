use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};

use ramscope::engines::{self, Candidate, Engine, Launch, Options};
use ramscope::estimate::estimate;
use ramscope::explain::{explain, Environment, Explanation, Reestimate};
use ramscope::footprint::{Device, Estimate};
use ramscope::measure::{MeasureOptions, Measurer};
use ramscope::model::Model;
use ramscope::proc::cgroup::CgroupReader;
use ramscope::proc::host::{dev_shm_of, HostMemory};
use ramscope::proc::roles::identify;
use ramscope::proc::{Pid, ProcFs};
use ramscope::record::format::Input;
use ramscope::report::explain::render;
use ramscope::server::ServerLaunch;
use ramscope::trace::aggregate::{aggregate, Filter};
use ramscope::trace::join::{join, TraceJoin};
use ramscope::trace::symbolize::Symbolizer;

use crate::cli::{EstimateArgs, ExplainArgs};

/// Prices the engine's changes by estimating again with each.
struct Rerun<'a> {
    model: &'a Model,
    launch: &'a dyn Launch,
    options: &'a Options,
}

impl Reestimate for Rerun<'_> {
    fn candidates(&self, base: &Estimate) -> Vec<Candidate> {
        self.launch.candidates(base, &self.options.env)
    }

    fn with(&self, change: &Candidate) -> Option<Estimate> {
        let mut options = self.options.clone();
        options.env = change.env.clone();
        estimate(self.model, &*change.launch, &options).ok()
    }
}

/// `ramscope explain`. With `fallback` (plain `ramscope`), a machine without a server gets
/// the built-in default estimate instead of an error.
pub fn run(a: ExplainArgs, fallback: bool) -> anyhow::Result<()> {
    let fs = ProcFs::default();
    let (snapshot, launch, argv, server_env, engine, running) = match &a.from_snapshot {
        Some(path) => {
            let snapshot = match Input::read(path)? {
                Input::Snapshot(s) => *s,
                Input::Recording(r) => r
                    .last_snapshot()
                    .ok_or_else(|| anyhow!("{} is a recording without samples", path.display()))?,
            };
            if a.command.is_empty() {
                bail!("--from-snapshot needs the server's command line after `--` (e.g. -- vllm serve MODEL …)");
            }
            let uses_gpu = snapshot.processes.iter().any(|p| p.uses_gpu);
            let device = Some(if uses_gpu { Device::Cuda } else { Device::Cpu });
            (
                snapshot,
                None,
                a.command.clone(),
                BTreeMap::new(),
                engines::for_command(&a.command),
                (None, device),
            )
        }
        None => {
            let mut measurer = Measurer::new(fs.clone(), MeasureOptions::default());
            let (pid, engine) = match a.pid {
                Some(pid) => (pid, engine_of(&fs, pid, &a.command)),
                None => match find_server(&measurer)? {
                    Some(found) => found,
                    None if fallback => return default_estimate(),
                    None => bail!("no running vLLM server found; give its API server's PID, or explain a saved snapshot with --from-snapshot FILE -- COMMAND"),
                },
            };
            let launch = ServerLaunch::read(&fs, pid)?;
            let snapshot = measurer.tree(&[pid])?;
            let argv = if a.command.is_empty() {
                launch.argv.clone()
            } else {
                a.command.clone()
            };
            let uses_gpu = snapshot.processes.iter().any(|p| p.uses_gpu);
            let (release, device) = engine.running(&launch, uses_gpu);
            let env = launch.env.clone();
            (
                snapshot,
                Some(launch),
                argv,
                env,
                engine,
                (release, Some(device)),
            )
        }
    };

    let mut options = super::estimate::options(engine, &a.engine, Some(running), &server_env)?;
    // The server's own torch and Python, so the baselines can say how far they are from the
    // stacks they were measured on.
    if let Some(site) = launch.as_ref().and_then(|l| l.site_packages.as_deref()) {
        (options.torch_version, options.python_version) = ramscope::server::runtime_versions(site);
    }
    let parsed = engine
        .parse(&argv)
        .with_context(|| format!("parsing the server's command line `{}`", argv.join(" ")))?;
    let lookup = |k: &str| server_env.get(k).cloned().or_else(|| std::env::var(k).ok());
    let model = match parsed.resolve_model(&lookup) {
        Some(model) => model?,
        None => bail!("the command line names no model: `{}`", argv.join(" ")),
    };
    let est = estimate(&model, &*parsed, &options)?;

    let root = snapshot.processes.first().map(|p| p.pid);
    let environment = match (&a.from_snapshot, root) {
        (None, Some(pid)) => Environment {
            cgroup: CgroupReader::default().memory_of(pid).ok().flatten(),
            host: HostMemory::read(fs.root(), std::path::Path::new("/sys")).ok(),
            dev_shm: dev_shm_of(fs.root(), pid),
        },
        _ => Environment::default(),
    };
    let rerun = Rerun {
        model: &model,
        launch: &*parsed,
        options: &options,
    };
    // Whether the release is known (the installation or the user named one ramscope has
    // read) travels in the estimate: `version_known` follows its `version_assumed`.
    let mut explanation = explain(snapshot, est, launch, environment, &rerun);
    if let Some(dir) = &a.trace {
        explanation.trace = Some(trace_join(dir, &explanation)?);
    }
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&explanation).context("encoding JSON")?
        )?;
    } else {
        out!("{}", render(&explanation))?;
    }
    Ok(())
}

/// The estimate's components beside the traced sites of a `ramscope trace` directory.
fn trace_join(dir: &std::path::Path, x: &Explanation) -> anyhow::Result<TraceJoin> {
    let traced = ramscope::trace::dir::read(dir)?;
    let report = aggregate(&traced, &Filter::default(), &mut Symbolizer::new());
    Ok(join(&report, &x.estimate, x.heap_residual_bytes()))
}

/// The API server of the first tree on the machine whose engine ramscope can estimate.
pub(super) fn find_server(
    measurer: &Measurer,
) -> anyhow::Result<Option<(Pid, &'static dyn Engine)>> {
    let fs = measurer.fs();
    for pid in measurer.find_servers()? {
        let (Ok(argv), Ok(comm)) = (fs.cmdline(pid), fs.comm(pid)) else {
            continue;
        };
        if let Some(engine) = engines::for_processes(identify(&comm, &argv).engine) {
            return Ok(Some((pid, engine)));
        }
    }
    Ok(None)
}

/// The engine of the process `pid` names, or that `command` (the user's command line for it)
/// starts when the process does not say.
fn engine_of(fs: &ProcFs, pid: Pid, command: &[String]) -> &'static dyn Engine {
    let process = match (fs.cmdline(pid), fs.comm(pid)) {
        (Ok(argv), Ok(comm)) => engines::for_processes(identify(&comm, &argv).engine),
        _ => None,
    };
    process.unwrap_or_else(|| engines::for_command(command))
}

fn default_estimate() -> anyhow::Result<()> {
    outln!(
        "No inference server is running here, so this is the built-in example, not a measurement:"
    )?;
    outln!("the host RAM vLLM would use for Qwen3-8B with --max-model-len 5120 on one H100.")?;
    outln!(
        "Run `ramscope explain PID` (or plain `ramscope`) while a server runs to explain it.\n"
    )?;
    super::estimate::run(EstimateArgs::default()).map_err(|e| anyhow!(e))
}
