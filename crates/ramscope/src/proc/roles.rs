//! What part a process plays in an inference server, from its title and command line.
//!
//! vLLM names its processes with setproctitle (`VLLM::EngineCore`, `VLLM::Worker_TP0`,
//! `VLLM::DPCoordinator`); SGLang does the same (`sglang::scheduler_TP0`); the API server
//! keeps its command line. The rules below read both the title (`comm`, 15 characters) and
//! the full command line, since `comm` is truncated.

use serde::{Deserialize, Serialize};

/// The serving engine a process belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    Vllm,
    Sglang,
    #[serde(rename = "llama.cpp")]
    LlamaCpp,
    Ollama,
    Unknown,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Vllm => "vllm",
            Engine::Sglang => "sglang",
            Engine::LlamaCpp => "llama.cpp",
            Engine::Ollama => "ollama",
            Engine::Unknown => "unknown",
        }
    }
}

/// The part a process plays. Names are stable: JSON and metrics use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    ApiServer,
    EngineCore,
    Worker,
    DpCoordinator,
    CompileWorker,
    Helper,
    Other,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::ApiServer => "api-server",
            Role::EngineCore => "engine-core",
            Role::Worker => "worker",
            Role::DpCoordinator => "dp-coordinator",
            Role::CompileWorker => "compile-worker",
            Role::Helper => "helper",
            Role::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        [
            Role::ApiServer,
            Role::EngineCore,
            Role::Worker,
            Role::DpCoordinator,
            Role::CompileWorker,
            Role::Helper,
            Role::Other,
        ]
        .into_iter()
        .find(|r| r.name() == name)
    }
}

/// A process's role and engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub role: Role,
    pub engine: Engine,
}

impl Identity {
    const fn new(role: Role, engine: Engine) -> Identity {
        Identity { role, engine }
    }

    /// Whether this process heads a serving tree (what `--auto` looks for).
    pub fn is_server_root(self) -> bool {
        self.role == Role::ApiServer && self.engine != Engine::Unknown
    }
}

/// Identifies a process from its `comm` and its argv.
pub fn identify(comm: &str, argv: &[String]) -> Identity {
    let joined = argv.join(" ");
    // A retitled process shows its title as argv[0] (or as the whole cmdline).
    let title = argv.first().map(String::as_str).unwrap_or("");
    for text in [title, comm] {
        if let Some(id) = identify_title(text) {
            return id;
        }
    }
    identify_command_line(argv, &joined)
}

fn identify_title(title: &str) -> Option<Identity> {
    use Engine::*;
    use Role::*;
    let t = title.trim();
    if let Some(rest) = t.strip_prefix("VLLM::") {
        let role = if rest.starts_with("EngineCore") {
            EngineCore
        } else if rest.starts_with("Worker") {
            Worker
        } else if rest.starts_with("DPCoordinator") {
            DpCoordinator
        } else if rest.starts_with("APIServer") || rest.starts_with("ApiServer") {
            ApiServer
        } else {
            Helper
        };
        return Some(Identity::new(role, Vllm));
    }
    if let Some(rest) = t.strip_prefix("sglang::") {
        let role = if rest.starts_with("scheduler") {
            EngineCore
        } else if rest.starts_with("data_parallel_controller") {
            DpCoordinator
        } else {
            // detokenizer, tokenizer manager and the like.
            Helper
        };
        return Some(Identity::new(role, Sglang));
    }
    None
}

fn identify_command_line(argv: &[String], joined: &str) -> Identity {
    use Engine::*;
    use Role::*;
    let program = argv
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .unwrap_or("");
    let is_python = program.starts_with("python") || program.starts_with("pypy");

    let mentions = |needles: &[&str]| is_python && needles.iter().any(|n| joined.contains(n));
    if mentions(&[
        "torch/_inductor/compile_worker",
        "torch._inductor.compile_worker",
    ]) {
        return Identity::new(CompileWorker, Unknown);
    }
    if mentions(&[
        "multiprocessing.resource_tracker",
        "multiprocessing.forkserver",
        "multiprocessing.semaphore_tracker",
    ]) {
        return Identity::new(Helper, Unknown);
    }
    // `vllm serve …`, `python -m vllm.entrypoints.openai.api_server …`, `python …/vllm serve`.
    // Only what the program itself runs counts: a tool whose arguments merely quote such a
    // command line (`ramscope estimate -- python -m vllm…`) is not a server.
    let entry = if is_python { python_entry(argv) } else { None };
    let vllm_cli = program == "vllm" || entry.is_some_and(|e| e.rsplit('/').next() == Some("vllm"));
    let module = |prefix: &str| {
        entry.is_some_and(|e| e.starts_with(prefix) || e.contains(&prefix.replace('.', "/")))
    };
    if (vllm_cli && argv.iter().any(|a| a == "serve")) || module("vllm.entrypoints") {
        return Identity::new(ApiServer, Vllm);
    }
    if module("sglang.launch_server") {
        return Identity::new(ApiServer, Sglang);
    }
    if program == "llama-server" || program.starts_with("llama-server") {
        return Identity::new(ApiServer, LlamaCpp);
    }
    if program == "ollama" || program == "ollama_llama_server" {
        let role = match argv.get(1).map(String::as_str) {
            Some("serve") => ApiServer,
            Some("runner") => Worker,
            _ if program == "ollama_llama_server" => Worker,
            _ => Other,
        };
        return Identity::new(role, Ollama);
    }
    Identity::new(Other, Unknown)
}

/// What a Python command line runs: the module after `-m`, or the script path.
fn python_entry(argv: &[String]) -> Option<&str> {
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-m" => return args.next().map(String::as_str),
            "-c" => return None,
            // Options that take a value.
            "-W" | "-X" | "--check-hash-based-pycs" => {
                args.next();
            }
            _ if a.starts_with("-m") && a.len() > 2 => return Some(&a[2..]),
            _ if a.starts_with('-') => {}
            _ => return Some(a.as_str()),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn vllm_processes() {
        let api = identify(
            "python",
            &argv("/venv/bin/python -m vllm.entrypoints.openai.api_server --model m"),
        );
        assert_eq!(api, Identity::new(Role::ApiServer, Engine::Vllm));
        assert!(api.is_server_root());
        assert_eq!(
            identify("vllm", &argv("/venv/bin/vllm serve Qwen/Qwen3-8B")).role,
            Role::ApiServer
        );
        assert_eq!(
            identify("python3", &argv("/usr/bin/python3 /venv/bin/vllm serve m")).role,
            Role::ApiServer
        );
        assert_eq!(
            identify("VLLM::EngineCor", &argv("VLLM::EngineCore")).role,
            Role::EngineCore
        );
        assert_eq!(
            identify("VLLM::Worker_TP", &argv("VLLM::Worker_TP1")).role,
            Role::Worker
        );
        assert_eq!(
            identify("VLLM::DPCoordin", &argv("VLLM::DPCoordinator")).role,
            Role::DpCoordinator
        );
        // A title written over argv with spaces comes back as one argument.
        assert_eq!(
            identify("VLLM::Worker", &[String::from("VLLM::Worker_PP0_TP1   ")]).role,
            Role::Worker
        );
    }

    #[test]
    fn helpers_and_others() {
        let tracker = identify(
            "python",
            &argv(
                "/venv/bin/python -B -c from multiprocessing.resource_tracker import main;main(7)",
            ),
        );
        assert_eq!(tracker.role, Role::Helper);
        let compile = identify("python", &argv("/venv/bin/python /venv/lib/python3.12/site-packages/torch/_inductor/compile_worker/__main__.py --pickler=x"));
        assert_eq!(compile.role, Role::CompileWorker);
        assert_eq!(identify("bash", &argv("bash -c sleep")).role, Role::Other);
        assert_eq!(
            identify("llama-server", &argv("/usr/bin/llama-server -m x.gguf")).engine,
            Engine::LlamaCpp
        );
        assert_eq!(
            identify("ollama", &argv("/usr/bin/ollama runner --model x")).role,
            Role::Worker
        );
        assert_eq!(
            identify("sglang::schedu", &argv("sglang::scheduler_TP0")).role,
            Role::EngineCore
        );
        // A script that merely mentions vllm is not a server.
        assert_eq!(
            identify("python", &argv("python bench.py --name vllm")).role,
            Role::Other
        );
    }
}
