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
    /// Skip smaps_rollup (faster on very large processes; PSS then rounds down per mapping).
    #[arg(long)]
    pub no_rollup: bool,
    /// Read another proc root (a captured or mounted /proc).
    #[arg(long, value_name = "DIR", default_value = "/proc", hide = true)]
    pub proc_root: std::path::PathBuf,
}
