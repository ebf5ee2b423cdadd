//! Real llama-server processes for the tests: the binary built once by
//! `scripts/llama-server-env.sh` (llama.cpp 0c1e570 from llama-cpp-python 0.3.36's sources),
//! small random-weight GGUF models made once by `scripts/make_tiny_gguf.py` and llama-quantize,
//! and one server per distinct configuration per test binary, stopped when the test binary
//! exits. Everything is cached outside the repository ($RAMSCOPE_E2E_CACHE, else
//! ~/.cache/ramscope-e2e). `RAMSCOPE_SKIP_LLAMA=1` skips the tests that need them.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::vllm::http;

/// The models: one f16 GGUF and two quantized from it. With 16 layers of width 1024, FFN 4096
/// and 32000 tokens (309 M parameters) the weights are 590 MiB (f16), 314 MiB (Q8_0) and
/// 175 MiB (Q4_0), well above the 30-60 MiB a llama-server holds besides them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quant {
    F16,
    /// Used in place from the mapping (no repacking: llama.cpp's CPU repack does not take it).
    Q8_0,
    /// Repacked on x86 with AVX2: a `CPU_REPACK` copy beside the mapping.
    Q4_0,
}

impl Quant {
    pub fn name(self) -> &'static str {
        match self {
            Quant::F16 => "f16",
            Quant::Q8_0 => "q8_0",
            Quant::Q4_0 => "q4_0",
        }
    }
}

/// The shape every model has (arguments of scripts/make_tiny_gguf.py). Changing it changes
/// the cache folder, so stale models are not reused.
const SHAPE: &[&str] = &[
    "--layers",
    "16",
    "--hidden",
    "1024",
    "--heads",
    "16",
    "--kv-heads",
    "4",
    "--ffn",
    "4096",
    "--vocab",
    "32000",
    "--ctx",
    "4096",
    "--type",
    "f16",
];

pub struct LlamaServer {
    pub pid: u32,
    pub port: u16,
    /// Its stdout and stderr (run with `-lv 4`, so the buffer-size lines are there).
    pub log: PathBuf,
    /// The command line it was started with, as a user would paste it.
    pub argv: Vec<String>,
    pub model: PathBuf,
}

impl LlamaServer {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn skipped() -> bool {
    let skip = std::env::var("RAMSCOPE_SKIP_LLAMA").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("skipped: RAMSCOPE_SKIP_LLAMA=1");
    }
    skip
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cache_dir() -> PathBuf {
    match std::env::var_os("RAMSCOPE_E2E_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/ramscope-e2e")
        }
    }
}

/// (bin dir, virtualenv), from `scripts/llama-server-env.sh`, once per test binary. Panics
/// (failing the test) when the script fails; `None` when `RAMSCOPE_SKIP_LLAMA=1`.
pub fn env() -> Option<&'static (PathBuf, PathBuf)> {
    static ENV: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    if skipped() {
        return None;
    }
    Some(ENV.get_or_init(|| {
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/llama-server-env.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/llama-server-env.sh");
        assert!(
            out.status.success(),
            "scripts/llama-server-env.sh failed (see above)"
        );
        let paths = String::from_utf8_lossy(&out.stdout);
        let mut it = paths.split_whitespace();
        let bin = PathBuf::from(it.next().expect("the script prints BIN_DIR VENV"));
        let venv = PathBuf::from(it.next().expect("the script prints BIN_DIR VENV"));
        eprintln!(
            "llama-server ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        (bin, venv)
    }))
}

/// The llama-server binary; `None` when skipped.
pub fn binary() -> Option<PathBuf> {
    env().map(|(bin, _)| bin.join("llama-server"))
}

/// The model of quantization `q`, made on first use (the f16 one by the script, the others by
/// llama-quantize) under a lock, so test binaries running at once make it once.
pub fn model(q: Quant) -> Option<PathBuf> {
    let (bin, venv) = env()?;
    let dir = cache_dir().join(format!("llama-models-{}", shape_tag()));
    std::fs::create_dir_all(&dir).expect("create the model cache");
    let _lock = Lock::take(&dir.join(".lock"));
    let path = dir.join(format!("tiny-{}.gguf", q.name()));
    if path.exists() {
        return Some(path);
    }
    let started = Instant::now();
    let tmp = dir.join(format!("tiny-{}.gguf.part", q.name()));
    let out = match q {
        Quant::F16 => Command::new(venv.join("bin/python"))
            .arg(repo_root().join("scripts/make_tiny_gguf.py"))
            .arg(&tmp)
            .args(SHAPE)
            .output(),
        _ => {
            let f16 = dir.join("tiny-f16.gguf");
            if !f16.exists() {
                drop(_lock);
                model(Quant::F16)?;
                return model(q);
            }
            Command::new(bin.join("llama-quantize"))
                .arg(&f16)
                .arg(&tmp)
                .arg(q.name().to_uppercase())
                .output()
        }
    }
    .expect("run the model maker");
    assert!(
        out.status.success(),
        "making the {} model failed:\n{}",
        q.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &path).expect("move the model into place");
    eprintln!(
        "made {} ({} MiB) in {:.1} s",
        path.display(),
        std::fs::metadata(&path).map(|m| m.len() >> 20).unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
    Some(path)
}

fn shape_tag() -> String {
    let joined = SHAPE.join(" ");
    // FNV-1a: a stable name for the shape, so a new shape gets a new folder.
    let hash = joined.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{:08x}", hash as u32)
}

/// An exclusive `flock` on a file, released when dropped.
struct Lock(std::fs::File);

impl Lock {
    fn take(path: &Path) -> Lock {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::create(path).expect("create the lock file");
        // SAFETY: flock on a descriptor this File owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        Lock(file)
    }
}

type Servers = Mutex<HashMap<Vec<String>, &'static LlamaServer>>;

/// The server started with `config` (llama-server flags; without `-m` the Q8_0 model is
/// used), started on first use and shared by every test of this binary that asks for the same
/// configuration. `None` when skipped; a server that does not start fails the test.
pub fn server(config: &[&str]) -> Option<&'static LlamaServer> {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    let bin = binary()?;
    let key: Vec<String> = config.iter().map(|s| s.to_string()).collect();
    let servers = SERVERS.get_or_init(Default::default);
    // Held while starting: servers start one at a time (the machine may have few cores).
    let mut map = servers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = map.get(&key) {
        return Some(*s);
    }
    let started = Instant::now();
    let s = start(&bin, &key).unwrap_or_else(|e| panic!("llama-server {key:?} did not start: {e}"));
    eprintln!(
        "llama-server {key:?} ready on port {} in {:.1} s",
        s.port,
        started.elapsed().as_secs_f64()
    );
    let s: &'static LlamaServer = Box::leak(Box::new(s));
    map.insert(key, s);
    Some(s)
}

fn start(bin: &Path, config: &[String]) -> Result<LlamaServer, String> {
    let has_model = config.iter().any(|w| w == "-m" || w == "--model");
    let mut argv = vec![bin.display().to_string()];
    let model = if has_model {
        let at = config
            .iter()
            .position(|w| w == "-m" || w == "--model")
            .unwrap_or(0);
        PathBuf::from(config.get(at + 1).ok_or("-m without a path")?)
    } else {
        let m = model(Quant::Q8_0).ok_or("skipped")?;
        argv.extend(["-m".to_string(), m.display().to_string()]);
        m
    };
    argv.extend(config.iter().cloned());
    let port = free_port();
    for w in [
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "-lv",
        "4",
    ] {
        argv.push(w.to_string());
    }
    let log =
        std::env::temp_dir().join(format!("ramscope-llama-{}-{port}.log", std::process::id()));
    let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;

    // Started from a thread that lives as long as the test binary, with the kernel asked to
    // kill the server when that thread dies: the server goes away however the tests end.
    let (tx, rx) = mpsc::channel();
    let spawn_argv = argv.clone();
    std::thread::spawn(move || {
        let mut cmd = Command::new(&spawn_argv[0]);
        cmd.args(&spawn_argv[1..])
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file);
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let _ = tx.send(cmd.spawn().map(|c| c.id()).map_err(|e| e.to_string()));
        loop {
            std::thread::park();
        }
    });
    let pid = rx.recv().map_err(|e| e.to_string())??;

    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if !alive(pid) {
            return Err(format!("it exited; log:\n{}", tail(&log)));
        }
        if http(port, "GET", "/health", "").is_ok_and(|(code, _)| code == 200) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("not ready after 300 s; log:\n{}", tail(&log)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(LlamaServer {
        pid,
        port,
        log,
        argv,
        model,
    })
}

/// Whether `pid` runs (a zombie, never waited for here, does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Sends a `/completion` request of `n` tokens; the reply's body, or why it failed.
pub fn complete(port: u16, prompt: &str, n: u32) -> Result<String, String> {
    let body = serde_json::json!({ "prompt": prompt, "n_predict": n }).to_string();
    match http(port, "POST", "/completion", &body) {
        Ok((200, reply)) => Ok(reply),
        Ok((code, reply)) => Err(format!("/completion answered {code}: {reply}")),
        Err(e) => Err(format!("/completion: {e}")),
    }
}
