//! Every flag, defined once.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "ramscope",
    version,
    about = "Where an LLM inference server's host RAM goes, and where it will go",
    long_about = None,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Attribute a live process tree's host RAM, every byte, by category.
    Measure(MeasureArgs),
    /// Predict a vLLM server's host RAM per process from its model and flags.
    Estimate(EstimateArgs),
    /// Measure this machine's Python/torch/vLLM baselines for `estimate`.
    Calibrate(CalibrateArgs),
    /// Why a running server uses the RAM it does: measurement beside estimate, advice with bytes saved.
    Explain(ExplainArgs),
    /// Will a server fit in its container: OOM at load or later, page cache, /dev/shm, the engine's own check; Kubernetes values.
    Fit(FitArgs),
    /// Start a command, record its whole process tree until it exits, print the peaks.
    Run(RunArgs),
    /// Record a running process tree with a live view, print the peaks.
    Watch(WatchArgs),
    /// Summarize a recording: peaks, leaks; write HTML, SVG or CSV.
    Report(ReportArgs),
    /// Compare two snapshots or recordings per process role and category.
    Diff(DiffArgs),
    /// Serve Prometheus metrics of a process tree at /metrics.
    Serve(ServeArgs),
    /// Find every host-RAM allocation site in a source tree, with its size formula.
    Scan(ScanArgs),
    /// Trace every allocation of a command's process tree (`trace -- CMD`), or report a trace (`trace report DIR`).
    Trace(TraceArgs),
}

/// `ramscope trace`: the launcher's options, or the `report` subcommand.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  ramscope trace -- vllm serve Qwen/Qwen3-0.6B --max-model-len 2048\n  ramscope trace --out /tmp/t --min-size 1MiB -- python3 train.py\n  ramscope trace report /tmp/t --top 30 --flame flame.svg\n  ramscope explain --trace /tmp/t --from-snapshot snap.json -- vllm serve …"
)]
pub struct TraceArgs {
    #[command(subcommand)]
    pub action: Option<TraceAction>,
    /// The trace directory to write (default: a new ramscope-trace-<date>-<time> here).
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Heap allocations of at least this size each get a stack (smaller ones are sampled).
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub min_size: Option<u64>,
    /// Mean bytes between sampled small heap allocations.
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub sample_bytes: Option<u64>,
    /// Rewrite each process's trace file at most this often while it allocates (milliseconds).
    #[arg(long, value_name = "MS")]
    pub flush_ms: Option<u64>,
    /// Native return addresses kept per stack.
    #[arg(long, value_name = "N")]
    pub native_depth: Option<u32>,
    /// The command to trace, after `--`.
    #[arg(last = true, allow_hyphen_values = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TraceAction {
    /// Summarize a trace directory: processes, the tree's peak, top allocation sites.
    Report(TraceReportArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceBy {
    /// Top allocation sites (at each process's peak and at the end).
    Site,
    /// Live bytes per process and category.
    Process,
    /// Live bytes per process role and category.
    Role,
    /// Live bytes per category over the tree.
    Category,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceAt {
    /// Live bytes at each process's last write.
    End,
    /// Live bytes when each process reached its own peak.
    Peak,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  ramscope trace report ramscope-trace-20261130-101500\n  ramscope trace report DIR --by role\n  ramscope trace report DIR --pid 4242 --stacks --top 5\n  ramscope trace report DIR --flame live.svg --at peak\n  ramscope trace report DIR --json > trace.json"
)]
pub struct TraceReportArgs {
    /// The trace directory `ramscope trace` wrote.
    pub dir: std::path::PathBuf,
    /// Show the N largest sites.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    /// The breakdown to show.
    #[arg(long, value_enum, default_value_t = TraceBy::Site)]
    pub by: TraceBy,
    /// Only the process(es) with this PID (every image of it).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Hide sites holding less than this at the end and at their process's peak (e.g. 1MiB).
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub min_bytes: Option<u64>,
    /// Print the full stack of each top site.
    #[arg(long)]
    pub stacks: bool,
    /// Write a flame graph of live bytes as SVG.
    #[arg(long, value_name = "OUT.svg")]
    pub flame: Option<std::path::PathBuf>,
    /// Which live bytes the flame graph shows.
    #[arg(long, value_enum, default_value_t = TraceAt::End)]
    pub at: TraceAt,
    /// Print the ramscope.trace/1 JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  ramscope scan ~/src/vllm                       # a checkout, a source archive or site-packages/vllm\n  ramscope scan --installed --python .venv/bin/python\n  ramscope scan --pid 4242                         # the vLLM a running server uses\n  ramscope scan vllm-0.11.0 --config -- vllm serve Qwen/Qwen3-8B --max-model-len 5120\n  ramscope scan vllm-0.33.0 --check              # sites the estimator misses or models differently\n  ramscope scan --diff vllm-0.12.0 vllm-0.33.0   # the host-RAM changelog of a release"
)]
pub struct ScanArgs {
    /// The source tree: a vLLM checkout, an unpacked source archive, or an installed package.
    #[arg(value_name = "PATH")]
    pub path: Option<std::path::PathBuf>,
    /// Scan the vLLM that a Python environment imports (see --python).
    #[arg(long, conflicts_with_all = ["path", "pid"])]
    pub installed: bool,
    /// The Python (or virtualenv) for --installed (default: python3 on PATH).
    #[arg(long, value_name = "PY", requires = "installed")]
    pub python: Option<std::path::PathBuf>,
    /// Scan the vLLM a running server (this PID, or a process of its tree) uses.
    #[arg(long, value_name = "PID", conflicts_with = "path")]
    pub pid: Option<u32>,
    /// Compare two trees: sites added, removed, moved and changed from OLD to NEW.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with_all = ["path", "installed", "pid"])]
    pub diff: Option<Vec<std::path::PathBuf>>,
    /// Join with ramscope's estimator: components whose site is gone, sites ≥ 1 MiB no component models, formulas that differ.
    #[arg(long)]
    pub check: bool,
    /// With --check: print the estimator's source-lines table rows for this release.
    #[arg(long, requires = "check", hide = true)]
    pub source_lines: bool,
    /// Evaluate every formula for the vLLM command line after `--` and sort by bytes.
    #[arg(long)]
    pub config: bool,
    /// With --config or --check: hide sites smaller than this (e.g. 1MiB).
    #[arg(long, value_name = "SIZE")]
    pub min_bytes: Option<String>,
    /// Also list sites whose size depends on data, and tensors on a run-time device.
    #[arg(long)]
    pub all: bool,
    /// Print the ramscope.scan/1 JSON document.
    #[arg(long)]
    pub json: bool,
    /// Parser threads (default: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The vLLM command line for --config/--check, after `--`.
    #[arg(
        last = true,
        allow_hyphen_values = true,
        value_name = "VLLM_COMMAND_LINE"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    Cuda,
    Cpu,
}

#[derive(Debug, Args, Default)]
#[command(
    after_help = "ramscope's own options (--json, --vllm-version, --device, --gpu, --env, --calibration, --no-calibration) may also come among the vLLM flags, anywhere before `--`; after `--` every word is the vLLM command line's.\n\nExamples:\n  ramscope estimate Qwen/Qwen3-8B --max-model-len 5120 -tp 2 --vllm-version 0.11\n  ramscope estimate --device cpu -- vllm serve ./my-model --max-num-seqs 64\n  ramscope estimate --json -- python -m vllm.entrypoints.openai.api_server --model M"
)]
pub struct EstimateArgs {
    /// Print the ramscope.estimate/1 JSON document.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The server's own log (llama.cpp's, at -lv 4 or higher): every buffer it printed beside
    /// the component that predicts it.
    #[arg(long, value_name = "FILE")]
    pub log: Option<std::path::PathBuf>,
    /// MODEL and vLLM flags (ramscope's own options among them are taken out first).
    #[arg(allow_hyphen_values = true, value_name = "MODEL_AND_VLLM_FLAGS")]
    pub vllm: Vec<String>,
    /// A whole vLLM command line, after `--`: every word is vLLM's.
    #[arg(
        last = true,
        allow_hyphen_values = true,
        value_name = "VLLM_COMMAND_LINE"
    )]
    pub command: Vec<String>,
}

/// How the estimator sees the engine: release, device, GPU, environment, baselines.
#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// Engine release whose defaults and buffers to use — vLLM: any 0.10 … 0.33, patch suffixes allowed; llama.cpp: a commit (0c1e570); Ollama: 0.5.0 … 0.32.15 (default: newest, or the installed one for a running server); another version is estimated as the nearest known release, with a warning.
    #[arg(long, value_name = "VERSION", alias = "engine-version")]
    pub vllm_version: Option<String>,
    /// Where the model runs: cuda, or cpu for vLLM's CPU backend (default: cuda, or what a running server uses).
    #[arg(long, value_enum)]
    pub device: Option<DeviceArg>,
    /// The GPU (sets vLLM's batch defaults and the KV block count): h100, h200, a100-40gb, l4… or a size such as 48GiB.
    #[arg(long, value_name = "GPU", default_value = "h100")]
    pub gpu: String,
    /// An environment variable vLLM will see (repeatable); the current environment is read too.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Calibration profile to use (default: the one `ramscope calibrate` stored, if any).
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<std::path::PathBuf>,
    /// Use the built-in baselines even if a calibration profile exists.
    #[arg(long)]
    pub no_calibration: bool,
}

impl Default for EngineArgs {
    fn default() -> Self {
        EngineArgs {
            vllm_version: None,
            device: None,
            gpu: "h100".into(),
            env: Vec::new(),
            calibration: None,
            no_calibration: false,
        }
    }
}

#[derive(Debug, Args, Default)]
#[command(
    after_help = "Examples:\n  ramscope explain --auto\n  ramscope explain 12345 --json > explain.json\n  ramscope explain --from-snapshot snapshot.json -- vllm serve Qwen/Qwen3-8B --max-model-len 5120"
)]
pub struct ExplainArgs {
    /// The server's API process (its whole tree is measured).
    pub pid: Option<u32>,
    /// Find the running inference server (the default when no PID is given).
    #[arg(long)]
    pub auto: bool,
    /// Print the ramscope.explain/1 JSON document.
    #[arg(long)]
    pub json: bool,
    /// Explain a saved `ramscope measure --json` snapshot (or a `ramscope run` recording, as
    /// last seen) instead of a live server; give the server's command line after `--`.
    #[arg(long, value_name = "FILE")]
    pub from_snapshot: Option<std::path::PathBuf>,
    /// Join the estimate's components with a `ramscope trace` directory of this server, by source line.
    #[arg(long, value_name = "DIR")]
    pub trace: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The server's command line (with --from-snapshot, or to override what was read).
    #[arg(
        last = true,
        allow_hyphen_values = true,
        value_name = "VLLM_COMMAND_LINE"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 fits; 3 does not fit (OOM at load or later, /dev/shm too small, the engine refuses); 4 at risk (the limit lies inside an estimate's range, growth is uncapped, or page cache will thrash); 2 bad input; 1 another error.\n\nExamples:\n  ramscope fit --memory-limit 16Gi -- vllm serve Qwen/Qwen3-8B --max-model-len 5120\n  ramscope fit --memory-limit 32Gi --shm-size 64Mi --device cpu -- vllm serve Qwen/Qwen3-0.6B\n  ramscope fit 4242 --json          # a running server, in its own cgroup\n  ramscope fit --auto --memory-limit 24Gi"
)]
pub struct FitArgs {
    /// A running server's API process: its cgroup, /dev/shm and measured tree are read, and its command line estimated.
    #[arg(conflicts_with = "auto")]
    pub pid: Option<u32>,
    /// Find the running inference server.
    #[arg(long)]
    pub auto: bool,
    /// The container's memory limit, as Kubernetes writes it (16Gi, 16G, 17179869184); default: the cgroup's.
    #[arg(long, value_name = "QUANTITY", value_parser = quantity, allow_hyphen_values = true)]
    pub memory_limit: Option<u64>,
    /// The size of /dev/shm (an emptyDir's sizeLimit; Kubernetes' default is 64Mi); default: what statvfs says.
    #[arg(long, value_name = "QUANTITY", value_parser = quantity, allow_hyphen_values = true)]
    pub shm_size: Option<u64>,
    /// The node's memory; default: MemTotal of this machine.
    #[arg(long, value_name = "QUANTITY", value_parser = quantity, allow_hyphen_values = true)]
    pub node_memory: Option<u64>,
    /// Added to the limit on top of the estimate: a percentage (10%) or a size (512Mi).
    #[arg(long, value_name = "PERCENT|QUANTITY", default_value = "10%", value_parser = headroom, allow_hyphen_values = true)]
    pub headroom: ramscope::fit::quantity::Headroom,
    /// Print the ramscope.fit/1 JSON document.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The server's command line, after `--` (for a PID: instead of the one it runs with).
    #[arg(last = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// The Python that runs vLLM (default: python3 on PATH).
    #[arg(long, value_name = "PATH", default_value = "python3")]
    pub python: std::path::PathBuf,
    /// Where to store the profile (default: $RAMSCOPE_CALIBRATION, else ~/.config/ramscope/calibration.json).
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Print the profile as JSON too.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum By {
    Process,
    Category,
    Mapping,
}

#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// Processes to measure (with their children unless --no-tree).
    pub pids: Vec<u32>,
    /// Follow each PID's children, including ones started while measuring (the default).
    #[arg(long, overrides_with = "no_tree")]
    pub tree: bool,
    /// Measure only the PIDs given.
    #[arg(long)]
    pub no_tree: bool,
    /// Find every inference-server tree on the machine (vLLM, SGLang, llama.cpp, Ollama).
    #[arg(long)]
    pub auto: bool,
    /// Print the ramscope.snapshot/1 JSON document.
    #[arg(long)]
    pub json: bool,
    /// The breakdown to show.
    #[arg(long, value_enum, default_value_t = By::Process)]
    pub by: By,
    /// Show only the N largest rows.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Skip smaps_rollup everywhere (PSS then rounds down per mapping, < 1 kB each).
    #[arg(long, conflicts_with = "exact")]
    pub no_rollup: bool,
    /// Read smaps_rollup for every process, also those over 256 MiB of RSS (a second page walk).
    #[arg(long)]
    pub exact: bool,
    /// Read another proc root (a captured or mounted /proc).
    #[arg(long, value_name = "DIR", default_value = "/proc", hide = true)]
    pub proc_root: std::path::PathBuf,
}

/// How a recording samples (shared by `run` and `watch`).
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Time between samples (RSS from /proc/PID/status every sample).
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = duration)]
    pub interval: std::time::Duration,
    /// The recording file (JSON lines); default ramscope-<date>-<time>.jsonl here.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Read each process's smaps_rollup (exact PSS) at most this often.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
    pub rollup_every: std::time::Duration,
    /// Read each process's full smaps (categories) at most this often, unless RSS moves.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub smaps_every: std::time::Duration,
    /// Read smaps early when a process's RSS moved by more than this fraction.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.05)]
    pub smaps_on_move: f64,
    /// Look for new processes in the tree at most this often (a scan of all of /proc).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
    pub scan_every: std::time::Duration,
    /// Print the summary as the ramscope.report/1 JSON document on stdout (`run` otherwise
    /// prints its summary on stderr, like time(1), and leaves stdout to the command).
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_name = "DIR", default_value = "/proc", hide = true)]
    pub proc_root: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub record: RecordArgs,
    /// The command to start (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub record: RecordArgs,
    /// Processes to watch, with their children.
    pub pids: Vec<u32>,
    /// Watch every inference-server tree on the machine.
    #[arg(long)]
    pub auto: bool,
    /// Stop after this long (default: until Ctrl-C or the tree exits).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub duration: Option<std::time::Duration>,
    /// No live view: print a progress line at most once a second instead (the recording
    /// still has every sample).
    #[arg(long)]
    pub no_live: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A recording made by `run` or `watch`.
    pub file: std::path::PathBuf,
    /// Write a self-contained HTML report (charts, peaks, leak findings, tables).
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<std::path::PathBuf>,
    /// Write the whole tree's stacked category chart as SVG.
    #[arg(long, value_name = "OUT.svg")]
    pub svg: Option<std::path::PathBuf>,
    /// Write every sample as CSV rows (one per process and category).
    #[arg(long, value_name = "OUT.csv")]
    pub csv: Option<std::path::PathBuf>,
    /// Judge growth over only the last DURATION of the recording (default: all of it).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub leak_window: Option<std::time::Duration>,
    /// Print the ramscope.report/1 JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffAt {
    /// Each process's last measured split.
    Last,
    /// Each process's peak per category.
    Peak,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The "before" snapshot (`measure --json`) or recording.
    pub a: std::path::PathBuf,
    /// The "after" snapshot or recording.
    pub b: std::path::PathBuf,
    /// Which moment of a recording to compare.
    #[arg(long, value_enum, default_value_t = DiffAt::Last)]
    pub at: DiffAt,
    /// Print the ramscope.diff/1 JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Processes to export, with their children.
    pub pids: Vec<u32>,
    /// Export every inference-server tree on the machine (found again at each refresh).
    #[arg(long)]
    pub auto: bool,
    /// Address to listen on: an IP address or a host name (resolved; a name listens on its first address, IPv4 first), and a port.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9464", value_parser = ramscope::exporter::http::listen_spec)]
    pub listen: String,
    /// Allow listening on an address other than loopback.
    #[arg(long)]
    pub allow_remote: bool,
    /// Scrapes closer together than this are served the cached snapshot.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub min_interval: std::time::Duration,
    /// Per-process series for at most this many processes (largest PSS first).
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub max_processes: usize,
    /// A client must send its whole request head within this time of being accepted, or is answered 408 and dropped (requests are answered one at a time).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub request_timeout: std::time::Duration,
    #[arg(long, value_name = "DIR", default_value = "/proc", hide = true)]
    pub proc_root: std::path::PathBuf,
}

fn size(s: &str) -> Result<u64, String> {
    ramscope::units::parse_bytes(s)
        .ok_or_else(|| format!("{s:?} is not a size (examples: 4096, 64KiB, 1MiB, 2GB)"))
}

fn quantity(s: &str) -> Result<u64, String> {
    ramscope::fit::quantity::parse_quantity(s).map_err(|e| e.to_string())
}

fn headroom(s: &str) -> Result<ramscope::fit::quantity::Headroom, String> {
    ramscope::fit::quantity::Headroom::parse(s)
}

fn duration(s: &str) -> Result<std::time::Duration, String> {
    ramscope::units::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration (examples: 250ms, 2s, 5m, 1h)"))
}
