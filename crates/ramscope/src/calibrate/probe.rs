//! The calibration probe: a Python script that imports torch, vLLM and so on in stages,
//! pausing at each so ramscope can measure it. A probe that stops making progress is killed
//! after a timeout, with anything it started.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::{CalibrateError, Profile, Stage, PROFILE_SCHEMA};
use crate::measure::{MeasureOptions, Measurer};
use crate::proc::ProcFs;

/// The probe: each stage prints `STAGE <name>` and waits for a line on stdin, so the parent
/// measures a quiet process. Stages that cannot run (no GPU, no vLLM) print `SKIP <name>`.
const PROBE: &str = r#"
import sys, platform
def stage(name):
    print("STAGE " + name, flush=True)
    sys.stdin.readline()
def info(key, value):
    print("INFO %s %s" % (key, value), flush=True)
info("python_version", platform.python_version())
stage("python")
import torch
info("torch_version", torch.__version__)
stage("torch")
try:
    import vllm
    info("vllm_version", vllm.__version__)
    import vllm.entrypoints.openai.api_server
    stage("vllm_server")
    try:
        if torch.cuda.is_available():
            import vllm.v1.worker.gpu_worker
        else:
            import vllm.v1.worker.cpu_worker
        stage("vllm_worker")
    except Exception as e:
        print("SKIP vllm_worker %s" % e, flush=True)
except Exception as e:
    print("SKIP vllm_server %s" % e, flush=True)
# vLLM's imports pull in transformers; without vLLM, transformers stands in for them and lets
# the first forward below run a real (tiny, random) model.
try:
    # transformers imports lazily: name what vLLM's processes end up importing.
    from transformers import AutoTokenizer, PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM
    stage("transformers")
except Exception as e:
    print("SKIP transformers %s" % e, flush=True)
if torch.cuda.is_available():
    torch.ones(1, device="cuda")
    torch.cuda.synchronize()
    info("cuda", "1")
    stage("cuda_context")
    # The first forward pass loads each kernel's CUDA module into host memory and sets up
    # cuBLAS/cuDNN handles and workspaces: run a tiny random Qwen3 (as vLLM's first forward
    # does with the real one), or one transformer block's worth of kernels without
    # transformers.
    try:
        F = torch.nn.functional
        try:
            from transformers import Qwen3Config, Qwen3ForCausalLM
            cfg = Qwen3Config(vocab_size=32000, hidden_size=1024, intermediate_size=3072,
                              num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4,
                              head_dim=128, max_position_embeddings=4096)
            # Built on the GPU, so no CPU copy of the weights is measured.
            with torch.device("cuda"):
                model = Qwen3ForCausalLM(cfg).to(torch.bfloat16).eval()
            ids = torch.randint(0, 32000, (4, 128), device="cuda")
            with torch.no_grad():
                model.generate(ids, max_new_tokens=8, do_sample=True, top_k=50)
            info("first_forward_probe", "tiny-qwen3")
        except ImportError:
            d, heads = 1024, 8
            x = torch.randn(4, 256, d, device="cuda", dtype=torch.bfloat16)
            up = torch.nn.Linear(d, 4 * d, device="cuda", dtype=torch.bfloat16)
            down = torch.nn.Linear(4 * d, d, device="cuda", dtype=torch.bfloat16)
            h = down(F.silu(up(F.layer_norm(x, (d,)))))
            q = h.view(4, 256, heads, d // heads).transpose(1, 2)
            a = F.scaled_dot_product_attention(q, q, q, is_causal=True)
            emb = torch.nn.Embedding(32000, d, device="cuda", dtype=torch.bfloat16)
            ids = torch.randint(0, 32000, (4, 256), device="cuda")
            logits = (emb(ids) + a.transpose(1, 2).reshape(4, 256, d)) @ emb.weight.t()
            torch.softmax(logits.float(), dim=-1).topk(50)
            info("first_forward_probe", "one-block")
        torch.cuda.synchronize()
        stage("first_forward")
    except Exception as e:
        print("SKIP first_forward %s" % e, flush=True)
else:
    print("SKIP cuda_context no GPU", flush=True)
print("DONE", flush=True)
"#;

/// How long the probe may go without reaching its next stage before it is stopped, unless
/// [`PROBE_TIMEOUT_ENV`] says otherwise. Importing vLLM from a cold disk takes a minute or
/// two; a probe silent for this long is stuck (a `--python` that never exits, a hung driver).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(300);

/// The environment variable that sets the probe timeout (`90s`, `10m`).
pub const PROBE_TIMEOUT_ENV: &str = "RAMSCOPE_PROBE_TIMEOUT";

/// The longest line the probe prints that is read (its own lines are short).
const MAX_PROBE_LINE: usize = 64 * 1024;

/// How many of the probe's last stderr lines are kept to explain a failure.
const STDERR_TAIL_LINES: usize = 20;

/// The probe timeout from the environment, [`PROBE_TIMEOUT`] when unset.
pub fn probe_timeout(env: &dyn Fn(&str) -> Option<String>) -> Result<Duration, CalibrateError> {
    match env(PROBE_TIMEOUT_ENV).filter(|v| !v.trim().is_empty()) {
        None => Ok(PROBE_TIMEOUT),
        Some(v) => crate::units::parse_duration(&v)
            .filter(|d| !d.is_zero())
            .ok_or(CalibrateError::BadTimeout { value: v }),
    }
}

/// Runs the probes under `python` and measures each stage with ramscope's own measurer. A
/// probe that does not reach its next stage within `timeout` is killed, with its children.
pub fn run_probes(
    python: &Path,
    now: String,
    timeout: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<Profile, CalibrateError> {
    let mut child = Command::new(python)
        .arg("-c")
        .arg(PROBE)
        // The probe measures imports, not warnings.
        .env("PYTHONWARNINGS", "ignore")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| CalibrateError::Spawn {
            python: python.to_path_buf(),
            source,
        })?;
    let pid = child.id();
    let result = drive(&mut child, pid, python, now, timeout, progress);
    // Whatever happened, do not leave the probe (or anything it started) behind.
    kill_tree(pid);
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// SIGKILLs `pid` and its descendants. The probe stays in ramscope's process group, so a
/// Ctrl-C at the terminal reaches it too; its children are found by a scan instead.
fn kill_tree(pid: u32) {
    let fs = ProcFs::default();
    let pids = match crate::proc::tree::ProcessTable::scan(&fs) {
        Ok(table) => table.descendants(pid),
        Err(_) => vec![pid],
    };
    for p in pids {
        if let Ok(p) = i32::try_from(p) {
            // SAFETY: kill with a PID and a signal number, no memory involved. `pid` is our
            // child, not yet reaped, so its PID (and its children's parent link) is not reused.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
    }
}

/// What the probe's stdout reader thread passes on.
enum ProbeLine {
    Line(String),
    TooLong,
    Failed(std::io::Error),
}

/// Reads the probe's stdout on a thread, one bounded line at a time, so the wait for the next
/// line can time out. The channel is bounded too: a probe that floods its stdout waits for
/// the lines to be taken.
fn read_lines(stdout: impl Read + Send + 'static) -> mpsc::Receiver<ProbeLine> {
    let (tx, rx) = mpsc::sync_channel(64);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let read = reader
                .by_ref()
                .take(MAX_PROBE_LINE as u64 + 1)
                .read_until(b'\n', &mut buf);
            let msg = match read {
                Ok(0) => return,
                Ok(_) if buf.len() > MAX_PROBE_LINE => ProbeLine::TooLong,
                Ok(_) => ProbeLine::Line(String::from_utf8_lossy(&buf).trim_end().to_string()),
                Err(e) => ProbeLine::Failed(e),
            };
            let stop = !matches!(msg, ProbeLine::Line(_));
            if tx.send(msg).is_err() || stop {
                return;
            }
        }
    });
    rx
}

/// Keeps the last lines the probe writes to stderr (read all along, so a chatty probe never
/// blocks on a full pipe). The receiver says when stderr closed.
fn read_stderr_tail(
    stderr: impl Read + Send + 'static,
) -> (Arc<Mutex<VecDeque<String>>>, mpsc::Receiver<()>) {
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let (done_tx, done_rx) = mpsc::channel();
    let keep = Arc::clone(&tail);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader
                .by_ref()
                .take(MAX_PROBE_LINE as u64)
                .read_until(b'\n', &mut buf)
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                    if line.is_empty() {
                        continue;
                    }
                    if let Ok(mut t) = keep.lock() {
                        if t.len() == STDERR_TAIL_LINES {
                            t.pop_front();
                        }
                        t.push_back(line);
                    }
                }
            }
        }
        let _ = done_tx.send(());
    });
    (tail, done_rx)
}

fn drive(
    child: &mut std::process::Child,
    pid: u32,
    python: &Path,
    now: String,
    timeout: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<Profile, CalibrateError> {
    let probe_err = |stage: &str, message: String| CalibrateError::Probe {
        python: python.to_path_buf(),
        stage: stage.to_string(),
        message,
    };
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| probe_err("start", "no stdin".into()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| probe_err("start", "no stdout".into()))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| probe_err("start", "no stderr".into()))?;
    let lines = read_lines(stdout);
    let (stderr_tail, stderr_done) = read_stderr_tail(stderr);
    let mut profile = Profile {
        schema: PROFILE_SCHEMA.into(),
        measured_at: now,
        python: python.display().to_string(),
        python_version: String::new(),
        torch_version: None,
        vllm_version: None,
        cuda: false,
        stages: Vec::new(),
    };
    let mut measurer = Measurer::new(
        ProcFs::default(),
        MeasureOptions {
            tree: false,
            ..MeasureOptions::default()
        },
    );
    // Baselines are small differences between stages: read the exact rollup at every size.
    measurer.set_rollup_rss_limit(None);
    let mut last = "start".to_string();
    let mut done = false;
    // Each stage (or skip, or note) the probe reaches buys it another `timeout`; other output
    // does not, so a probe that only chatters is stopped too.
    let mut deadline = Instant::now() + timeout;
    loop {
        // Checked before every line, not only while waiting: a flood never waits.
        let wait = deadline.saturating_duration_since(Instant::now());
        let next = if wait.is_zero() {
            Err(mpsc::RecvTimeoutError::Timeout)
        } else {
            lines.recv_timeout(wait)
        };
        let line = match next {
            Ok(ProbeLine::Line(line)) => line,
            Ok(ProbeLine::TooLong) => {
                return Err(probe_err(
                    &last,
                    format!("it printed a line longer than {MAX_PROBE_LINE} bytes"),
                ))
            }
            Ok(ProbeLine::Failed(e)) => return Err(probe_err(&last, e.to_string())),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(probe_err(
                    &last,
                    format!(
                        "no progress for {} (stopped it; set {PROBE_TIMEOUT_ENV} to wait longer)",
                        crate::units::seconds(timeout.as_secs_f64())
                    ),
                ))
            }
        };
        let mut words = line.splitn(3, ' ');
        let known = matches!(
            (words.clone().next(), words.clone().nth(1)),
            (Some("INFO" | "STAGE" | "SKIP"), Some(_)) | (Some("DONE"), _)
        );
        if known {
            deadline = Instant::now() + timeout;
        }
        match (words.next(), words.next(), words.next()) {
            (Some("INFO"), Some(key), value) => {
                let value = value.unwrap_or("").to_string();
                match key {
                    "python_version" => profile.python_version = value,
                    "torch_version" => profile.torch_version = Some(value),
                    "vllm_version" => profile.vllm_version = Some(value),
                    "cuda" => profile.cuda = true,
                    _ => {}
                }
            }
            (Some("STAGE"), Some(name), _) => {
                last = name.to_string();
                let snap = measurer.tree(&[pid])?;
                let p = snap
                    .processes
                    .iter()
                    .find(|p| p.pid == pid)
                    .ok_or_else(|| probe_err(name, "the probe process vanished".into()))?;
                profile.stages.push(Stage {
                    name: name.to_string(),
                    pss_bytes: p.pss_bytes,
                    pss_anon_bytes: p.pss_anon_bytes,
                    pss_file_bytes: p.pss_file_bytes,
                    pss_shmem_bytes: p.pss_shmem_bytes,
                    rss_bytes: p.rss_bytes,
                });
                progress(&format!("{name}: PSS {}", crate::units::bytes(p.pss_bytes)));
                writeln!(stdin).map_err(|e| probe_err(name, e.to_string()))?;
                // Measuring took time that was not the probe's.
                deadline = Instant::now() + timeout;
            }
            (Some("SKIP"), Some(name), why) => {
                progress(&format!("{name}: skipped ({})", why.unwrap_or("")));
            }
            (Some("DONE"), _, _) => {
                done = true;
                break;
            }
            _ => {}
        }
    }
    if !done {
        // stdout closed: the probe exited (or closed it). Give its stderr a moment to drain.
        let _ = stderr_done.recv_timeout(Duration::from_secs(2));
        let tail = stderr_tail
            .lock()
            .ok()
            .and_then(|t| t.back().cloned())
            .unwrap_or_else(|| "exited early".to_string());
        return Err(probe_err(&last, tail));
    }
    if profile.stage("torch").is_none() {
        return Err(probe_err("torch", "torch could not be imported".into()));
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_timeout_comes_from_the_environment() {
        let unset = |_: &str| None;
        assert_eq!(probe_timeout(&unset).unwrap(), PROBE_TIMEOUT);
        let set = |_: &str| Some("90s".to_string());
        assert_eq!(probe_timeout(&set).unwrap(), Duration::from_secs(90));
        for bad in ["0", "soon", "-1s"] {
            let env = |_: &str| Some(bad.to_string());
            assert!(
                matches!(probe_timeout(&env), Err(CalibrateError::BadTimeout { .. })),
                "{bad}"
            );
        }
    }
}
