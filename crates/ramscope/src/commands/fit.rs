//! `ramscope fit`: gathers the [`Input`] of a fit check (a command line's estimate, or a
//! running server's measured tree and estimate; the limit, node memory and `/dev/shm` from
//! the flags or the container), assesses it, prints it, and exits with the verdict's status.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Context};

use ramscope::engines::{self, Engine, Launch};
use ramscope::estimate::estimate;
use ramscope::fit::container::{dev_shm_size, read_cgroup, CgroupFacts};
use ramscope::fit::measured::Measured;
use ramscope::fit::verdict::EXIT_BAD_INPUT;
use ramscope::fit::{assess, Assessment, Input, Sources};
use ramscope::footprint::Estimate;
use ramscope::host::HostMemory;
use ramscope::measure::{MeasureOptions, Measurer};
use ramscope::model::Model;
use ramscope::proc::cgroup::{CgroupReader, CgroupVersion};
use ramscope::proc::host::HostMemory as MemInfo;
use ramscope::proc::roles::identify;
use ramscope::proc::{Pid, ProcFs};
use ramscope::report::fit::render;
use ramscope::server::ServerLaunch;

use crate::cli::FitArgs;

/// Why there is no assessment: the user's input (exit 2) or anything else (exit 1).
enum Failure {
    BadInput(anyhow::Error),
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Other(e.into())
    }
}

/// Marks an error as the user's input.
fn bad<T, E: Into<anyhow::Error>>(r: Result<T, E>) -> Result<T, Failure> {
    r.map_err(|e| Failure::BadInput(e.into()))
}

pub fn run(a: FitArgs) -> anyhow::Result<()> {
    let as_json = a.json;
    let assessment = match gather(a).and_then(|input| bad(assess(input))) {
        Ok(x) => x,
        Err(Failure::Other(e)) => return Err(e),
        Err(Failure::BadInput(e)) => {
            note!("ramscope: {}", one_line(&e));
            std::process::exit(EXIT_BAD_INPUT);
        }
    };
    if as_json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&assessment).context("encoding JSON")?
        )?;
    } else {
        out!("{}", render(&assessment))?;
    }
    exit_with(&assessment)
}

/// Exits with the verdict's status when it is not 0 (the output is written and flushed).
fn exit_with(a: &Assessment) -> anyhow::Result<()> {
    if a.exit_code != 0 {
        std::process::exit(a.exit_code);
    }
    Ok(())
}

/// An error and its causes on one line, escaped (they quote what users wrote).
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    ramscope::text::clean(&parts.join(": ")).into_owned()
}

/// The server whose fit is checked: a running one, or a command line.
fn gather(a: FitArgs) -> Result<Input, Failure> {
    let fs = ProcFs::default();
    let pid = if a.auto {
        let measurer = Measurer::new(fs.clone(), MeasureOptions::default());
        match super::explain::find_server(&measurer)? {
            Some((pid, _)) => Some(pid),
            None => {
                return Err(Failure::BadInput(anyhow!(
                "no running inference server found; give its PID, or its command line after `--`"
            )))
            }
        }
    } else {
        a.pid
    };
    if let Some(pid) = pid {
        if pid == 0 || !fs.root().join(pid.to_string()).is_dir() {
            return Err(Failure::BadInput(anyhow!("no process with PID {pid}")));
        }
    } else if a.command.is_empty() {
        return Err(Failure::BadInput(anyhow!(
            "give the server's command line after `--` (ramscope fit --memory-limit 16Gi -- vllm serve MODEL …), or a running server's PID"
        )));
    }

    let mut notes = Vec::new();
    let meminfo = MemInfo::read(fs.root(), Path::new("/sys")).ok();
    let cgroup = match CgroupReader::default().locate(pid.unwrap_or_else(std::process::id)) {
        Ok(Some(at)) => Some(read_cgroup(&at)),
        Ok(None) => None,
        Err(e) => {
            notes.push(format!("the memory cgroup could not be read: {e}"));
            None
        }
    };
    let (host, sources) = host(&a, pid, meminfo.as_ref(), cgroup.as_ref(), fs.root());

    let server = match pid {
        None => {
            let (e, l) = from_command_line(&a)?;
            Server {
                estimate: Some((e, l)),
                measured: None,
            }
        }
        Some(pid) => running(&a, &fs, pid, &mut notes)?,
    };
    let refusal = server
        .estimate
        .as_ref()
        .and_then(|(e, launch)| launch.refusal(e, &host));
    Ok(Input {
        estimate: server.estimate.map(|(e, _)| e),
        host,
        sources,
        cgroup,
        measured: server.measured,
        refusal,
        headroom: a.headroom,
        notes,
    })
}

/// What the server is checked against, and where each figure came from. A limit from the
/// flags describes another container: the cgroup's usage is then not the server's.
fn host(
    a: &FitArgs,
    pid: Option<Pid>,
    meminfo: Option<&MemInfo>,
    cgroup: Option<&CgroupFacts>,
    proc_root: &Path,
) -> (HostMemory, Sources) {
    let mut sources = Sources::default();
    let (limit, usage, usage_file) = match (a.memory_limit, cgroup) {
        (Some(limit), _) => {
            sources.limit = Some("--memory-limit".into());
            let own = pid.and(cgroup);
            (
                Some(limit),
                own.and_then(|c| c.usage_bytes),
                own.and_then(file_pages),
            )
        }
        (None, Some(c)) => {
            let version = match c.version {
                CgroupVersion::V1 => "v1",
                CgroupVersion::V2 => "v2",
            };
            let whose = match pid {
                Some(pid) => format!("PID {pid}'s"),
                None => "ramscope's own".to_string(),
            };
            sources.limit = Some(match &c.limit_file {
                Some(file) => format!("{whose} memory cgroup {} ({version}), {file}", c.path),
                None => format!("{whose} memory cgroup {} ({version}) has none", c.path),
            });
            (c.limit_bytes, c.usage_bytes, file_pages(c))
        }
        (None, None) => {
            sources.limit = Some("no memory cgroup found".into());
            (None, None, None)
        }
    };
    let node = match a.node_memory {
        Some(n) => {
            sources.node_memory = Some("--node-memory".into());
            Some(n)
        }
        None => {
            sources.node_memory = Some("MemTotal of /proc/meminfo".into());
            meminfo.map(|m| m.total_bytes).filter(|&b| b > 0)
        }
    };
    let shm = match a.shm_size {
        Some(s) => {
            sources.shm_size = Some("--shm-size".into());
            Some(s)
        }
        None => {
            sources.shm_size = Some(match pid {
                Some(pid) => format!("statvfs of /proc/{pid}/root/dev/shm"),
                None => "statvfs of /dev/shm".into(),
            });
            dev_shm_size(proc_root, pid)
        }
    };
    let host = HostMemory {
        mem_total_bytes: node,
        // This machine's: the node's when ramscope runs on it.
        mem_available_bytes: meminfo.map(|m| m.available_bytes),
        swap_free_bytes: meminfo.map(|m| m.swap_free_bytes),
        limit_bytes: limit,
        usage_bytes: usage,
        usage_file_bytes: usage_file,
        shm_size_bytes: shm,
    };
    (host, sources)
}

fn file_pages(c: &CgroupFacts) -> Option<u64> {
    c.active_file_bytes
        .zip(c.inactive_file_bytes)
        .map(|(a, i)| a.saturating_add(i))
}

/// The estimate of the command line after `--`; every failure is the line's (exit 2).
fn from_command_line(a: &FitArgs) -> Result<(Estimate, Box<dyn Launch>), Failure> {
    let engine = engines::for_command(&a.command);
    let mut options = bad(super::estimate::options(
        engine,
        &a.engine,
        None,
        &BTreeMap::new(),
    ))?;
    if let Some(node) = a.node_memory {
        // The node the pod runs on, not this machine, sizes what scales with host memory.
        options.host_memory_bytes = Some(node);
    }
    let mut launch = bad(engine.parse(&a.command))?;
    let getenv = |k: &str| std::env::var(k).ok();
    let model = match launch.resolve_model(&getenv) {
        Some(model) => bad(model)?,
        None => Model::default_model(),
    };
    launch.use_example_if_empty();
    let e = bad(estimate(&model, &*launch, &options))?;
    Ok((e, launch))
}

/// What is known of the server: its estimate (with the launch that asks the engine's own
/// check), its measured tree.
struct Server {
    estimate: Option<(Estimate, Box<dyn Launch>)>,
    measured: Option<Measured>,
}

/// A running server: its tree measured, and its command line (or the one after `--`)
/// estimated when an engine models it. A process no engine models is checked as measured.
fn running(a: &FitArgs, fs: &ProcFs, pid: Pid, notes: &mut Vec<String>) -> Result<Server, Failure> {
    let mut measurer = Measurer::new(fs.clone(), MeasureOptions::default());
    let snapshot = measurer
        .tree(&[pid])
        .with_context(|| format!("measuring PID {pid}"))?;
    let measured = Measured::of(&snapshot);
    let identified = match (fs.cmdline(pid), fs.comm(pid)) {
        (Ok(argv), Ok(comm)) => engines::for_processes(identify(&comm, &argv).engine),
        _ => None,
    };
    let engine: &dyn Engine = match (identified, a.command.is_empty()) {
        (Some(e), _) => e,
        (None, false) => engines::for_command(&a.command),
        (None, true) => {
            notes.push(format!(
                "PID {pid} is not a server ramscope models: its measurement is checked as it is (load peak and growth unknown); give its command line after `--` to estimate it"
            ));
            return Ok(Server {
                estimate: None,
                measured: Some(measured),
            });
        }
    };
    let launch = ServerLaunch::read(fs, pid).with_context(|| format!("reading PID {pid}"))?;
    let argv = if a.command.is_empty() {
        launch.argv.clone()
    } else {
        a.command.clone()
    };
    let uses_gpu = snapshot.processes.iter().any(|p| p.uses_gpu);
    let (release, device) = engine.running(&launch, uses_gpu);
    let estimated = (|| -> anyhow::Result<(Estimate, Box<dyn Launch>)> {
        let mut options = super::estimate::options(
            engine,
            &a.engine,
            Some((release, Some(device))),
            &launch.env,
        )?;
        if let Some(site) = launch.site_packages.as_deref() {
            (options.torch_version, options.python_version) =
                ramscope::server::runtime_versions(site);
        }
        if let Some(node) = a.node_memory {
            options.host_memory_bytes = Some(node);
        }
        let parsed = engine
            .parse(&argv)
            .with_context(|| format!("parsing `{}`", argv.join(" ")))?;
        let lookup = |k: &str| launch.env.get(k).cloned().or_else(|| std::env::var(k).ok());
        let model = parsed
            .resolve_model(&lookup)
            .ok_or_else(|| anyhow!("the command line names no model"))??;
        Ok((estimate(&model, &*parsed, &options)?, parsed))
    })();
    let estimate = match estimated {
        Ok(estimated) => Some(estimated),
        Err(e) => {
            notes.push(format!(
                "PID {pid} could not be estimated ({}): its measurement is checked as it is",
                one_line(&e)
            ));
            None
        }
    };
    Ok(Server {
        estimate,
        measured: Some(measured),
    })
}
