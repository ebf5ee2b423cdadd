//! `ramscope scan`: host allocation sites of a source tree; evaluated for a configuration
//! (`--config`), joined with the estimator (`--check`), or compared (`--diff`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context};

use ramscope::engines::{self, Engine, SourceConfig};
use ramscope::estimate::estimate;
use ramscope::footprint::Estimate;
use ramscope::model::Model;
use ramscope::report::scan as render;
use ramscope::scan::{self, diff, locate, Options, Scan};
use ramscope::units;

use crate::cli::{EngineArgs, ScanArgs};

/// `--check` looks at sites this large at the evaluated configuration.
const CHECK_THRESHOLD: u64 = 1 << 20;

pub fn run(a: ScanArgs) -> anyhow::Result<()> {
    let options = Options { threads: a.threads };
    let min_bytes = match &a.min_bytes {
        Some(s) => Some(units::parse_bytes(s).ok_or_else(|| {
            anyhow!("--min-bytes {s}: expected a size such as 1MiB, 512K or 1048576")
        })?),
        None => None,
    };
    let wants_config = a.config || a.check || a.diff.is_some();
    if !a.command.is_empty() && !wants_config {
        bail!("a vLLM command line after `--` needs --config, --check or --diff");
    }
    if let Some(pair) = &a.diff {
        let [old, new] = pair.as_slice() else {
            bail!("--diff needs two trees: OLD NEW");
        };
        let old_scan = scan_tree(old, &options)?;
        let new_scan = scan_tree(new, &options)?;
        let config = if a.config {
            Some(config_for(
                &a.engine,
                &a.command,
                new_scan.version.as_deref(),
                None,
            )?)
        } else {
            None
        };
        let mut d = diff::diff_with(
            &old_scan,
            &new_scan,
            config.as_ref().map(|c| &c.source.bindings),
        );
        if config.is_some() {
            d.sort_by_impact();
        }
        if a.json {
            outln!(
                "{}",
                serde_json::to_string_pretty(&d).context("encoding JSON")?
            )?;
        } else {
            out!(
                "{}",
                diff::render(&d, ramscope::report::layout::terminal_width())
            )?;
        }
        return Ok(());
    }
    let root = match (&a.path, a.installed, a.pid) {
        (Some(p), false, None) => p.clone(),
        (None, true, None) => locate::installed(a.python.as_deref())?,
        (None, false, Some(pid)) => locate::of_pid(pid)?,
        _ => bail!("give a source tree PATH, --installed or --pid PID"),
    };
    let result = scan_tree(&root, &options)?;
    let server = match a.pid {
        Some(pid) if a.config || a.check => Some(running(pid)?),
        _ => None,
    };
    if a.check {
        let config = config_for(
            &a.engine,
            &a.command,
            result.version.as_deref(),
            server.as_ref(),
        )?;
        let threshold = min_bytes.unwrap_or(CHECK_THRESHOLD);
        let report = config
            .engine
            .check_source(
                &result,
                &config.estimate,
                &config.source,
                threshold,
                config.version_assumed.clone(),
            )
            .ok_or_else(|| {
                anyhow!(
                    "ramscope has no table of {}'s source sites to check against",
                    config.engine.title()
                )
            })?;
        if a.source_lines {
            for row in &report.source_lines {
                outln!("{row}")?;
            }
        } else if a.json {
            outln!(
                "{}",
                serde_json::to_string_pretty(&report).context("encoding JSON")?
            )?;
        } else {
            out!("{}", render::check(&result, &report, &config.describe))?;
        }
        let failures = report.failures();
        if failures > 0 {
            bail!("{failures} unexplained difference(s) between the estimator and this source");
        }
        return Ok(());
    }
    let config = if a.config {
        Some(config_for(
            &a.engine,
            &a.command,
            result.version.as_deref(),
            server.as_ref(),
        )?)
    } else {
        None
    };
    if a.json {
        let doc = render::json(
            &result,
            config
                .as_ref()
                .map(|c| (&c.source.bindings, c.source.pin_memory)),
        );
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).context("encoding JSON")?
        )?;
        return Ok(());
    }
    let view = render::View {
        all: a.all,
        min_bytes,
        bindings: config
            .as_ref()
            .map(|c| (&c.source.bindings, c.source.pin_memory)),
        describe: config.as_ref().map(|c| c.describe.clone()),
        width: ramscope::report::layout::terminal_width(),
    };
    out!("{}", render::sites(&result, &view))?;
    Ok(())
}

fn scan_tree(root: &Path, options: &Options) -> anyhow::Result<Scan> {
    scan::scan(root, options).with_context(|| format!("scanning {}", root.display()))
}

/// One configuration, resolved as `estimate` resolves it.
struct Config {
    engine: &'static dyn Engine,
    source: SourceConfig,
    estimate: Estimate,
    version_assumed: Option<String>,
    describe: String,
}

/// What a running server (`--pid`) says about its configuration: its command line, its
/// environment, and whether it is the CPU build.
struct Running {
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    cpu: bool,
}

fn running(pid: u32) -> anyhow::Result<Running> {
    let fs = ramscope::proc::ProcFs::new("/proc");
    let launch = ramscope::server::ServerLaunch::read(&fs, pid)
        .with_context(|| format!("reading the command line of PID {pid}"))?;
    Ok(Running {
        cpu: launch.is_cpu_build(),
        argv: launch.argv,
        env: launch.env,
    })
}

fn config_for(
    engine: &EngineArgs,
    command: &[String],
    tree_version: Option<&str>,
    server: Option<&Running>,
) -> anyhow::Result<Config> {
    let mut engine = engine.clone();
    // A running server's own command line and environment, unless the user gave one.
    let (command, server_env) = match server {
        Some(r) if command.is_empty() => (r.argv.as_slice(), r.env.clone()),
        Some(r) => (command, r.env.clone()),
        None => (command, BTreeMap::new()),
    };
    if engine.device.is_none() && server.is_some_and(|r| r.cpu) {
        engine.device = Some(crate::cli::DeviceArg::Cpu);
    }
    let server = engines::for_command(command);
    let mut version_assumed = None;
    if engine.vllm_version.is_none() {
        match tree_version.and_then(|v| server.release(v)) {
            Some(v) => engine.vllm_version = Some(v),
            None => {
                let newest = server.newest_release();
                version_assumed = Some(newest.clone());
                engine.vllm_version = Some(newest);
            }
        }
    }
    let options = super::estimate::options(server, &engine, None, &server_env)?;
    let getenv = |k: &str| std::env::var(k).ok();
    let mut launch = server.parse(command)?;
    let model = match launch.resolve_model(&getenv) {
        Some(model) => model?,
        None => Model::default_model(),
    };
    // The built-in example, as `estimate` uses it.
    launch.use_example_if_empty();
    let source = launch.source_config(&model, &options)?;
    let est = estimate(&model, &*launch, &options)?;
    let describe = format!(
        "{} · {} {}{} · {} · {}",
        model.name,
        server.title(),
        source.release,
        if version_assumed.is_some() {
            " (assumed: the tree's release is not one ramscope knows)"
        } else {
            ""
        },
        source.device.name(),
        source.settings,
    );
    Ok(Config {
        engine: server,
        source,
        estimate: est,
        version_assumed,
        describe,
    })
}
