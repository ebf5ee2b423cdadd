//! One real vLLM server (the CPU backend, a tiny locally made Qwen3) for every test in a test
//! binary that needs it. The virtualenv is built once by `scripts/vllm-cpu-env.sh` into a
//! cache outside the repository; the server starts on first use (about 80 s) and stops when
//! the test binary exits.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

pub struct VllmServer {
    pub api_pid: u32,
    pub port: u16,
    pub venv: PathBuf,
    pub model: PathBuf,
    /// The command line the server was started with, as a user would paste it.
    pub argv: Vec<String>,
    /// Environment variables set for the server.
    pub env: Vec<(String, String)>,
}

static SERVER: OnceLock<Result<VllmServer, String>> = OnceLock::new();

/// The shared server, started on first call. Panics (failing the test) when it cannot start,
/// unless `RAMSCOPE_SKIP_VLLM=1`, in which case it returns `None` and the test says so.
pub fn server() -> Option<&'static VllmServer> {
    if std::env::var("RAMSCOPE_SKIP_VLLM").is_ok_and(|v| v == "1") {
        eprintln!("skipped: RAMSCOPE_SKIP_VLLM=1");
        return None;
    }
    match SERVER.get_or_init(start) {
        Ok(s) => Some(s),
        Err(e) => panic!("the vLLM test server did not start: {e}"),
    }
}

/// The vLLM CPU virtualenv (built once by `scripts/vllm-cpu-env.sh`), without starting a
/// server. Panics when it cannot be built, unless `RAMSCOPE_SKIP_VLLM=1`.
pub fn venv() -> Option<PathBuf> {
    if std::env::var("RAMSCOPE_SKIP_VLLM").is_ok_and(|v| v == "1") {
        eprintln!("skipped: RAMSCOPE_SKIP_VLLM=1");
        return None;
    }
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/vllm-cpu-env.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/vllm-cpu-env.sh");
    assert!(out.status.success(), "scripts/vllm-cpu-env.sh failed");
    let paths = String::from_utf8_lossy(&out.stdout);
    paths.split_whitespace().next().map(PathBuf::from)
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn start() -> Result<VllmServer, String> {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/vllm-cpu-env.sh"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running scripts/vllm-cpu-env.sh: {e}"))?;
    if !out.status.success() {
        return Err("scripts/vllm-cpu-env.sh failed (see its output above)".into());
    }
    let paths = String::from_utf8_lossy(&out.stdout);
    let mut it = paths.split_whitespace();
    let venv = PathBuf::from(it.next().ok_or("no venv path")?);
    let model = PathBuf::from(it.next().ok_or("no model path")?);
    let port = free_port();
    let python = venv.join("bin/python");
    let argv: Vec<String> = vec![
        python.display().to_string(),
        "-m".into(),
        "vllm.entrypoints.openai.api_server".into(),
        "--model".into(),
        model.display().to_string(),
        "--max-model-len".into(),
        "5120".into(),
        "--max-num-seqs".into(),
        "256".into(),
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port.to_string(),
        "--dtype".into(),
        "bfloat16".into(),
    ];
    let env = vec![("VLLM_CPU_KVCACHE_SPACE".to_string(), "1".to_string())];
    let log_path = std::env::temp_dir().join(format!("ramscope-vllm-{port}.log"));
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;

    // The server is started from a thread that lives as long as the test binary, and asks the
    // kernel to send it SIGINT when that thread dies: the server then shuts its whole tree
    // down (and removes its shared memory) however the tests end.
    let (tx, rx) = mpsc::channel();
    let spawn_argv = argv.clone();
    let spawn_env = env.clone();
    std::thread::spawn(move || {
        let mut cmd = Command::new(&spawn_argv[0]);
        cmd.args(&spawn_argv[1..])
            .envs(spawn_env)
            .env("VLLM_NO_USAGE_STATS", "1")
            .env("HF_HUB_OFFLINE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT);
                Ok(())
            });
        }
        let child = cmd.spawn();
        let _ = tx.send(child.map(|c| c.id()).map_err(|e| e.to_string()));
        loop {
            std::thread::park();
        }
    });
    let api_pid = rx.recv().map_err(|e| e.to_string())??;

    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if !PathBuf::from(format!("/proc/{api_pid}")).exists() {
            return Err(format!("the server exited; log:\n{}", tail(&log_path)));
        }
        if http(port, "GET", "/v1/models", "").is_ok_and(|(code, _)| code == 200) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("not ready after 600 s; log:\n{}", tail(&log_path)));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // A little traffic, so the measurement shows a server that has served.
    let model_name = model.display().to_string();
    for i in 0..16 {
        let body = format!(
            r#"{{"model":"{model_name}","prompt":"the quick brown fox {i}","max_tokens":16}}"#
        );
        let (code, reply) = http(port, "POST", "/v1/completions", &body)
            .map_err(|e| format!("completion request: {e}"))?;
        if code != 200 {
            return Err(format!("completion answered {code}: {reply}"));
        }
    }
    Ok(VllmServer {
        api_pid,
        port,
        venv,
        model,
        argv,
        env,
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18000)
}

fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A minimal HTTP/1.1 exchange on loopback: (status code, body).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut rest = String::new();
    reader.read_to_string(&mut rest)?;
    let body = rest
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((code, body))
}
