//! `ramscope fit` against the kernel: real servers started in real memory cgroups at limits
//! taken from fit's own JSON, and what the kernel does with them.
//!
//! - llama-server (`--load-mode none`: the weights are allocated, not reclaimable): below its
//!   predicted non-reclaimable load peak fit says "OOM at load" and the kernel kills it before
//!   `/health` answers; at the `limits.memory` fit recommends it fits, starts and completes.
//! - llama-server's prompt cache (`--cache-ram`, 8 GiB by default): fit says "OOM later" and
//!   names the knob; at the limit that fits with `--cache-ram 0`, distinct prompts grow the
//!   default server until the kernel kills it, while the `--cache-ram 0` server takes the same
//!   traffic.
//! - vLLM's CPU backend (the test server's command line): the same two limits, its whole
//!   process tree in the cgroup.
//! - vLLM with `--tensor-parallel-size 2` in a private mount namespace whose `/dev/shm` is a
//!   64 MiB tmpfs: fit reads the 64 MiB from the mount and reports the segments that do not
//!   fit; vLLM started there refuses; started with the `/dev/shm` size fit recommends, it
//!   serves.
//!
//! Every threshold comes from fit's JSON; every outcome is the kernel's (an OOM kill counted
//! by the cgroup, a SIGKILL) or the server's (an HTTP answer, an exit). Needs root and a
//! writable cgroup hierarchy (`RAMSCOPE_SKIP_CGROUP=1` skips), the llama-server build
//! (`RAMSCOPE_SKIP_LLAMA=1`) and the vLLM CPU virtualenv (`RAMSCOPE_SKIP_VLLM=1`). The
//! measured peaks are printed (`--nocapture`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::cgroup::{killed_by_kernel, private_dev_shm, Cgroup, Launched, Start};
use common::llama::{self, Quant};
use common::vllm::http;
use common::MIB;

/// One server at a time: the machine may have two cores, and a peak measured while another
/// server loads says less.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not a byte count: {v}"))
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / MIB as f64)
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

/// `ramscope SUBCOMMAND --json FLAGS… -- LINE…`, run through `wrap` (a program and its
/// arguments that end by exec'ing the rest), with a clean environment (no calibration profile,
/// no inherited engine variables). Returns the exit status and the JSON.
fn ramscope_json(wrap: &[String], sub: &str, flags: &[String], line: &[String]) -> (i32, Value) {
    let home = tempfile::tempdir().expect("a temporary HOME");
    let bin = env!("CARGO_BIN_EXE_ramscope");
    let mut argv: Vec<String> = wrap.to_vec();
    argv.extend([bin.to_string(), sub.to_string(), "--json".to_string()]);
    argv.extend(flags.iter().cloned());
    argv.push("--".into());
    argv.extend(line.iter().cloned());
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", argv[0]));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{argv:?}: {e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let code = out.status.code().unwrap_or(-1);
    (code, json)
}

/// `ramscope fit --json FLAGS… -- LINE…`: its exit status (checked against the JSON's
/// `exit_code`) and JSON.
fn fit(flags: &[String], line: &[String]) -> Value {
    fit_through(&[], flags, line)
}

fn fit_through(wrap: &[String], flags: &[String], line: &[String]) -> Value {
    let (code, json) = ramscope_json(wrap, "fit", flags, line);
    assert_eq!(json["schema"], "ramscope.fit/1");
    assert_eq!(
        Some(i64::from(code)),
        json["exit_code"].as_i64(),
        "the exit status is the JSON's exit_code"
    );
    json
}

fn with_limit(flags: &[String], limit: u64) -> Vec<String> {
    let mut f = flags.to_vec();
    f.extend(["--memory-limit".to_string(), limit.to_string()]);
    f
}

/// The finding of `verdict` in a fit JSON.
fn finding<'a>(fit: &'a Value, verdict: &str) -> Option<&'a Value> {
    fit["findings"]
        .as_array()?
        .iter()
        .find(|f| f["verdict"] == verdict)
}

/// One server configuration, checked at two limits taken from fit's JSON.
struct LoadCase<'a> {
    name: &'a str,
    /// fit's flags (device, release, environment).
    flags: Vec<String>,
    /// The exact command line, listening on the given port.
    line: &'a dyn Fn(u16) -> Vec<String>,
    env: Vec<(String, String)>,
    /// The signal that stops it cleanly.
    stop: i32,
    ready: fn(u16) -> bool,
    /// A request it must answer once ready.
    request: &'a dyn Fn(u16) -> Result<(), String>,
    timeout: Duration,
}

/// (a) At 70 % of fit's non-reclaimable load peak fit says "OOM at load", and the kernel kills
/// the server (or a process of its tree) before it is ready; (b) at fit's `limits.memory` the
/// verdict is "fits", and the server starts and answers. Returns fit's JSON at (b).
fn killed_below_and_serving_at_the_recommended_limit(
    case: &LoadCase,
    cg_a: &Cgroup,
    cg_b: &Cgroup,
) -> Value {
    let logs = tempfile::tempdir().expect("a folder for logs");
    let name = case.name;
    let port_a = free_port();
    let line_a = (case.line)(port_a);
    let probe = fit(&case.flags, &line_a);
    let figure = &probe["figures"]["load_non_reclaimable"];
    let (load, low, high) = (
        u(&figure["bytes"]),
        u(&figure["low_bytes"]),
        u(&figure["high_bytes"]),
    );
    let recommended = u(&probe["kubernetes"]["limits_memory"]["bytes"]);

    // (a)
    let below = load * 7 / 10;
    let at = fit(&with_limit(&case.flags, below), &line_a);
    assert_eq!(at["verdict"], "oom-at-load", "{at}");
    assert_eq!(at["certain"], true, "{at}");
    assert_eq!(at["exit_code"], 3);
    let f = finding(&at, "oom-at-load").expect("the finding");
    assert_eq!(u(&f["needed_bytes"]), load);
    assert_eq!(u(&f["available_bytes"]), below);

    cg_a.set_limit(below).expect("set the limit");
    let log = logs.path().join("below.log");
    let mut server = Launched::start(cg_a, &[], &line_a, &case.env, log, port_a, case.stop);
    let outcome = server.wait(cg_a, case.timeout, case.ready);
    let Start::Exited(status, took) = outcome else {
        panic!(
            "{name} was ready within {} (70 % of fit's non-reclaimable load peak {}); \
             non-reclaimable peak seen {}",
            mib(below),
            mib(load),
            mib(server.peak)
        );
    };
    assert!(!status.success(), "{name} exits non-zero");
    assert!(
        killed_by_kernel(cg_a, &status),
        "{name} exited ({status}) without an OOM kill in its cgroup; log:\n{}",
        server.tail()
    );
    eprintln!(
        "{name} at {} (70 % of predicted load peak {}): exited after {:.1} s ({status}), \
         oom_kill {:?}; non-reclaimable seen {}",
        mib(below),
        mib(load),
        took.as_secs_f64(),
        cg_a.oom_kills(),
        mib(server.peak)
    );
    drop(server);

    // (b)
    let port_b = free_port();
    let line_b = (case.line)(port_b);
    let at = fit(&with_limit(&case.flags, recommended), &line_b);
    // The recommendation covers the estimate's range, so the check passes at it.
    assert_eq!(at["verdict"], "fits", "at fit's own limit: {at}");
    assert_eq!(u(&at["kubernetes"]["limits_memory"]["bytes"]), recommended);
    cg_b.set_limit(recommended).expect("set the limit");
    let log = logs.path().join("recommended.log");
    let mut server = Launched::start(cg_b, &[], &line_b, &case.env, log, port_b, case.stop);
    let outcome = server.wait(cg_b, case.timeout, case.ready);
    let Start::Ready(took) = outcome else {
        panic!(
            "{name} did not start within fit's recommended limit {}: {outcome:?}, oom_kill {:?}, \
             non-reclaimable peak seen {} (predicted load peak {}, range {}–{}); log:\n{}",
            mib(recommended),
            cg_b.oom_kills(),
            mib(server.peak),
            mib(load),
            mib(low),
            mib(high),
            server.tail()
        );
    };
    let answered = (case.request)(port_b);
    server.sample(cg_b);
    if let Err(e) = answered {
        panic!("{name}: {e}; log:\n{}", server.tail());
    }
    assert!(server.exited().is_none(), "{name} still runs");
    assert_eq!(cg_b.oom_kills().unwrap_or(0), 0);
    eprintln!(
        "{name} at the recommended {}: ready in {:.1} s, answered; non-reclaimable peak seen {} \
         (predicted load peak {}, range {}–{}); charged peak {:?}",
        mib(recommended),
        took.as_secs_f64(),
        mib(server.peak),
        mib(load),
        mib(low),
        mib(high),
        cg_b.peak_usage().map(mib)
    );
    at
}

// ---------------------------------------------------------------------------------------------
// llama-server

fn llama_health(port: u16) -> bool {
    http(port, "GET", "/health", "").is_ok_and(|(code, _)| code == 200)
}

/// The exact command line: the model, weights allocated (`--load-mode none`), `extra`, and
/// where it listens.
fn llama_line(bin: &Path, model: &Path, extra: &[&str], port: u16) -> Vec<String> {
    let (bin, model) = (bin.display().to_string(), model.display().to_string());
    let mut line = strings(&[&bin, "-m", &model, "--load-mode", "none"]);
    line.extend(strings(extra));
    line.extend(strings(&[
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
    ]));
    line
}

/// The llama-server build is CPU-only: fit is told so.
fn llama_flags() -> Vec<String> {
    strings(&["--device", "cpu"])
}

#[test]
fn llama_server_is_killed_below_its_load_peak_and_serves_at_the_recommended_limit() {
    let _one = serial();
    let (Some(cg_a), Some(cg_b)) = (
        Cgroup::create("llama-below"),
        Cgroup::create("llama-recommended"),
    ) else {
        return;
    };
    let (Some(bin), Some(model)) = (llama::binary(), llama::model(Quant::F16)) else {
        return;
    };
    let line = |port| llama_line(&bin, &model, &["--cache-ram", "0"], port);
    let probe = fit(&llama_flags(), &line(0));
    assert!(
        u(&probe["figures"]["load_non_reclaimable"]["bytes"])
            > u(&probe["estimate"]["weights_bytes"]),
        "allocated weights are non-reclaimable: {probe}"
    );
    // A prompt longer than a micro-batch (512 tokens), so the compute buffer is used whole.
    let request = |port| {
        let long = (0..4).map(prompt).collect::<Vec<_>>().join(" ");
        let reply: Value =
            serde_json::from_str(&llama::complete(port, &long, 8)?).map_err(|e| e.to_string())?;
        match u(&reply["tokens_evaluated"]) {
            n if n > 512 => Ok(()),
            n => Err(format!("the prompt was only {n} tokens")),
        }
    };
    let case = LoadCase {
        name: "llama-server",
        flags: llama_flags(),
        line: &line,
        env: vec![],
        stop: libc::SIGKILL,
        ready: llama_health,
        request: &request,
        timeout: Duration::from_secs(300),
    };
    let at = killed_below_and_serving_at_the_recommended_limit(&case, &cg_a, &cg_b);
    assert_eq!(at["verdict"], "fits", "{at}");
}

/// A small model whose KV cache is large for its compute (32 layers of width 256, f32): each
/// prompt token the prompt cache keeps costs 32 KiB, and a 700-token prompt takes about a
/// second on two cores.
fn kv_heavy_model(dir: &Path) -> Option<PathBuf> {
    let (_, venv) = llama::env()?;
    let path = dir.join("kv-heavy.gguf");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make_tiny_gguf.py");
    let out = Command::new(venv.join("bin/python"))
        .arg(script)
        .arg(&path)
        .args(
            "--layers 32 --hidden 256 --heads 4 --kv-heads 4 --ffn 512 --vocab 1024 --ctx 8192 \
             --type f32"
                .split_whitespace(),
        )
        .output()
        .expect("run make_tiny_gguf.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(path)
}

/// Prompt `i`: 120 pseudo-random words, different for every `i` (so none is a prefix of
/// another and each is cached as its own entry).
fn prompt(i: u64) -> String {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..120)
        .map(|_| {
            let len = 2 + next() % 7;
            (0..len)
                .map(|_| char::from(b'a' + (next() % 26) as u8))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sends distinct prompts to the server on `port` until it stops answering or the prompt
/// cache would hold `enough` bytes (tokens the server says it holds × `per_token`). Returns
/// the prompts answered and the bytes the cache was given.
fn fill_prompt_cache(
    server: &mut Launched,
    cg: &Cgroup,
    per_token: u64,
    enough: u64,
    at_most: u64,
) -> (u64, u64) {
    let mut answered = 0;
    let mut cached = 0u64;
    for i in 0..at_most {
        if server.exited().is_some() || cached >= enough {
            break;
        }
        let Ok(reply) = llama::complete(server.port, &prompt(i), 4) else {
            break;
        };
        server.sample(cg);
        answered += 1;
        // The slot's tokens are saved into the cache when the next prompt takes the slot.
        let reply: Value = serde_json::from_str(&reply).expect("a JSON reply");
        cached += u(&reply["tokens_cached"]) * per_token;
    }
    (answered, cached)
}

#[test]
fn llama_server_prompt_cache_is_killed_later_unless_capped() {
    let _one = serial();
    let Some(cg_grows) = Cgroup::create("llama-grows") else {
        return;
    };
    let Some(cg_capped) = Cgroup::create("llama-capped") else {
        return;
    };
    let Some(bin) = llama::binary() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a folder for the model and logs");
    let Some(model) = kv_heavy_model(dir.path()) else {
        return;
    };
    let flags = llama_flags();

    // The limit that fits with the prompt cache off.
    let port_capped = free_port();
    let capped = llama_line(&bin, &model, &["-np", "1", "--cache-ram", "0"], port_capped);
    let probe = fit(&flags, &capped);
    assert!(probe["growth"].as_array().is_some_and(|g| g.is_empty()));
    let limit = u(&probe["kubernetes"]["limits_memory"]["bytes"]);
    let at = fit(&with_limit(&flags, limit), &capped);
    assert_eq!(at["verdict"], "fits", "{at}");

    // Without --cache-ram the same line grows: OOM later, the knob named.
    let port_grows = free_port();
    let grows = llama_line(&bin, &model, &["-np", "1"], port_grows);
    let at = fit(&with_limit(&flags, limit), &grows);
    assert_eq!(at["verdict"], "oom-later", "{at}");
    assert_eq!(at["certain"], true);
    assert_eq!(at["exit_code"], 3);
    assert!(finding(&at, "oom-at-load").is_none(), "it loads: {at}");
    let growth = &at["growth"][0];
    assert_eq!(growth["component"], "prompt_cache");
    assert!(
        growth["knob"]
            .as_str()
            .is_some_and(|k| k.contains("--cache-ram")),
        "{growth}"
    );
    let later = finding(&at, "oom-later").expect("the finding");
    assert!(u(&later["needed_bytes"]) >= u(&growth["each"]["bytes"]));
    assert_eq!(u(&later["available_bytes"]), limit);

    // What one cached token costs: the KV cache's bytes per cell, from the estimate.
    let (_, est) = ramscope_json(&[], "estimate", &flags, &grows);
    let kv = est["processes"][0]["components"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == "kv_cache"))
        .expect("a kv_cache component");
    let per_token = u(&kv["bytes"]) / u(&est["args"]["ctx_size"]);
    assert!(per_token > 0);

    // For real: the default server at that limit, fed distinct prompts.
    cg_grows.set_limit(limit).expect("set the limit");
    let mut server = Launched::start(
        &cg_grows,
        &[],
        &grows,
        &[],
        dir.path().join("grows.log"),
        port_grows,
        libc::SIGKILL,
    );
    // It loads within the limit.
    server.ready(&cg_grows, Duration::from_secs(300), llama_health);
    let started = Instant::now();
    // Twice the limit in cached states is far past it: by then the kernel must have acted.
    let (answered, cached) = fill_prompt_cache(&mut server, &cg_grows, per_token, 2 * limit, 400);
    let status = server.wait_exit(Duration::from_secs(10));
    let Some(status) = status else {
        panic!(
            "the prompt cache was given {} (answered {answered} prompts) in a limit of {} and \
             the server still runs; non-reclaimable peak seen {}",
            mib(cached),
            mib(limit),
            mib(server.peak)
        );
    };
    assert!(
        killed_by_kernel(&cg_grows, &status),
        "exited ({status}) without an OOM kill; log:\n{}",
        server.tail()
    );
    assert!(answered >= 1, "it served before it grew");
    eprintln!(
        "llama-server without --cache-ram at {}: OOM-killed after {answered} prompts \
         ({:.1} s; the cache was given {}); non-reclaimable peak seen {}",
        mib(limit),
        started.elapsed().as_secs_f64(),
        mib(cached),
        mib(server.peak)
    );
    drop(server);

    // The same traffic, and one prompt more, with the cache off: it keeps serving.
    cg_capped.set_limit(limit).expect("set the limit");
    let mut server = Launched::start(
        &cg_capped,
        &[],
        &capped,
        &[],
        dir.path().join("capped.log"),
        port_capped,
        libc::SIGKILL,
    );
    server.ready(&cg_capped, Duration::from_secs(300), llama_health);
    let (served, _) = fill_prompt_cache(&mut server, &cg_capped, per_token, u64::MAX, answered + 1);
    assert_eq!(
        served,
        answered + 1,
        "--cache-ram 0 at {}: log:\n{}",
        mib(limit),
        server.tail()
    );
    assert!(server.exited().is_none());
    assert_eq!(cg_capped.oom_kills().unwrap_or(0), 0);
    eprintln!(
        "llama-server --cache-ram 0 at {}: served {served} prompts; non-reclaimable peak seen {}",
        mib(limit),
        mib(server.peak)
    );
}

// ---------------------------------------------------------------------------------------------
// vLLM (CPU backend)

struct Vllm {
    venv: PathBuf,
    model: PathBuf,
    /// The installed release (the wheel's dist-info), given to fit as `--vllm-version`.
    version: String,
}

/// The vLLM CPU virtualenv and tiny model of `scripts/vllm-cpu-env.sh` (the test server's).
fn vllm() -> Option<Vllm> {
    if std::env::var("RAMSCOPE_SKIP_VLLM").is_ok_and(|v| v == "1") {
        eprintln!("skipped: RAMSCOPE_SKIP_VLLM=1");
        return None;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/vllm-cpu-env.sh");
    let out = Command::new("bash")
        .arg(script)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/vllm-cpu-env.sh");
    assert!(out.status.success(), "scripts/vllm-cpu-env.sh failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace();
    let venv = PathBuf::from(it.next().expect("the script prints VENV MODEL"));
    let model = PathBuf::from(it.next().expect("the script prints VENV MODEL"));
    let version = installed_vllm(&venv).expect("a vllm dist-info in the virtualenv");
    Some(Vllm {
        venv,
        model,
        version,
    })
}

fn installed_vllm(venv: &Path) -> Option<String> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    for python in lib.flatten() {
        let site = python.path().join("site-packages");
        for entry in std::fs::read_dir(site).ok()?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version = ["vllm_cpu-", "vllm-"].iter().find_map(|p| {
                name.strip_prefix(p)
                    .and_then(|rest| rest.strip_suffix(".dist-info"))
            });
            if let Some(v) = version {
                return Some(v.split('+').next().unwrap_or(v).to_string());
            }
        }
    }
    None
}

impl Vllm {
    /// The test server's command line (as tests/common/vllm.rs starts it), on `port`.
    fn line(&self, port: u16, extra: &[&str]) -> Vec<String> {
        let mut line = vec![self.venv.join("bin/python").display().to_string()];
        let words = |w: &str| w.split(' ').map(String::from).collect::<Vec<_>>();
        line.extend(words("-m vllm.entrypoints.openai.api_server --model"));
        line.push(self.model.display().to_string());
        line.extend(words(
            "--max-model-len 5120 --max-num-seqs 256 --host 127.0.0.1",
        ));
        line.extend(words("--dtype bfloat16"));
        line.extend(["--port".to_string(), port.to_string()]);
        line.extend(strings(extra));
        line
    }

    /// fit's flags for that line: the CPU backend, the installed release, the environment.
    fn flags(&self, env: &[(String, String)]) -> Vec<String> {
        let mut flags = strings(&["--device", "cpu", "--vllm-version", &self.version]);
        for (k, v) in env {
            flags.extend(["--env".to_string(), format!("{k}={v}")]);
        }
        flags
    }

    fn complete(&self, port: u16) -> Result<(u16, String), std::io::Error> {
        let body = serde_json::json!({
            "model": self.model.display().to_string(),
            "prompt": "The capital of France is",
            "max_tokens": 8,
        })
        .to_string();
        http(port, "POST", "/v1/completions", &body)
    }
}

fn vllm_ready(port: u16) -> bool {
    http(port, "GET", "/v1/models", "").is_ok_and(|(code, _)| code == 200)
}

/// The test server's environment: a 1 GiB CPU KV cache.
fn vllm_env() -> Vec<(String, String)> {
    vec![("VLLM_CPU_KVCACHE_SPACE".into(), "1".into())]
}

#[test]
fn vllm_cpu_is_killed_below_its_load_peak_and_serves_at_the_recommended_limit() {
    let _one = serial();
    let (Some(cg_a), Some(cg_b)) = (
        Cgroup::create("vllm-below"),
        Cgroup::create("vllm-recommended"),
    ) else {
        return;
    };
    let Some(v) = vllm() else {
        return;
    };
    let line = |port| v.line(port, &[]);
    let request = |port| match v.complete(port) {
        Ok((200, _)) => Ok(()),
        other => Err(format!("/v1/completions: {other:?}")),
    };
    let case = LoadCase {
        name: "vLLM CPU",
        flags: v.flags(&vllm_env()),
        line: &line,
        env: vllm_env(),
        stop: libc::SIGTERM,
        ready: vllm_ready,
        request: &request,
        timeout: Duration::from_secs(600),
    };
    killed_below_and_serving_at_the_recommended_limit(&case, &cg_a, &cg_b);
}

/// The first two CPUs this process may run on (vLLM's CPU backend binds each TP rank's
/// threads to CPUs of its own).
fn two_cpus() -> Option<(usize, usize)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim()
        .to_string();
    let mut cpus = list.split(',').flat_map(|part| {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.parse().unwrap_or(1), b.parse().unwrap_or(0));
        a..=b
    });
    Some((cpus.next()?, cpus.next()?))
}

/// The total size of the files in a process's `/dev/shm` (its mount namespace's).
fn dev_shm_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/root/dev/shm"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn vllm_tp2_is_flagged_and_refused_with_a_64_mib_dev_shm() {
    const SHM: u64 = 64 * MIB;
    let _one = serial();
    let Some(cg_small) = Cgroup::create("vllm-shm-64mi") else {
        return;
    };
    let Some(cg_sized) = Cgroup::create("vllm-shm-sized") else {
        return;
    };
    let Some(v) = vllm() else {
        return;
    };
    let logs = tempfile::tempdir().expect("a folder for logs");
    let (a, b) = two_cpus().expect("two CPUs to bind vLLM's two TP ranks to");
    let mut env = vllm_env();
    env.push(("VLLM_CPU_OMP_THREADS_BIND".into(), format!("{a}|{b}")));
    let flags = v.flags(&env);
    let port_small = free_port();
    let line = v.line(port_small, &["--tensor-parallel-size", "2"]);

    // The estimate maps more than 64 MiB of /dev/shm segments for this line.
    let (code, est) = ramscope_json(&[], "estimate", &flags, &line);
    assert_eq!(code, 0, "{est}");
    let mapped = u(&est["total"]["shm_mapped_bytes"]);
    assert!(
        mapped > SHM,
        "the estimate maps {} of /dev/shm for TP=2 on the CPU, not more than 64 MiB",
        mib(mapped)
    );

    // fit inside a mount namespace with a 64 MiB /dev/shm, without --shm-size: it reads the
    // mount, and flags it before anything starts.
    let at = fit_through(&private_dev_shm(SHM), &flags, &line);
    assert_eq!(u(&at["host"]["shm_size_bytes"]), SHM, "{at}");
    assert_eq!(at["sources"]["shm_size"], "statvfs of /dev/shm");
    let small = finding(&at, "shm-too-small").expect("the /dev/shm finding");
    assert_eq!(small["certain"], true);
    assert_eq!(u(&small["needed_bytes"]), mapped);
    assert_eq!(u(&small["available_bytes"]), SHM);
    assert_eq!(at["exit_code"], 3);
    let shm_limit = u(&at["kubernetes"]["shm_size_limit"]["bytes"]);
    assert!(shm_limit >= mapped);
    let limit = u(&at["kubernetes"]["limits_memory"]["bytes"]);

    // For real, in the same 64 MiB: vLLM refuses to start, for lack of /dev/shm, not memory.
    cg_small.set_limit(limit).expect("set the limit");
    let mut server = Launched::start(
        &cg_small,
        &private_dev_shm(SHM),
        &line,
        &env,
        logs.path().join("shm-64mi.log"),
        port_small,
        libc::SIGTERM,
    );
    let outcome = server.wait(&cg_small, Duration::from_secs(600), vllm_ready);
    let Start::Exited(status, took) = outcome else {
        panic!("vLLM TP=2 served with a 64 MiB /dev/shm that fit said is too small");
    };
    assert!(!status.success());
    assert_eq!(
        cg_small.oom_kills().unwrap_or(0),
        0,
        "not killed for memory"
    );
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    assert!(
        log.contains("/dev/shm"),
        "vLLM exited ({status}) for another reason; log:\n{}",
        server.tail()
    );
    eprintln!(
        "vLLM CPU TP=2 with a 64 MiB /dev/shm: fit flagged {} of segments; vLLM exited after \
         {:.1} s ({status}): {}",
        mib(mapped),
        took.as_secs_f64(),
        log.lines()
            .rev()
            .find(|l| l.contains("/dev/shm"))
            .unwrap_or_default()
            .trim()
    );
    drop(server);

    // With the /dev/shm size fit recommends (and its memory limit), the same line serves.
    let port_sized = free_port();
    let line = v.line(port_sized, &["--tensor-parallel-size", "2"]);
    cg_sized.set_limit(limit).expect("set the limit");
    let mut server = Launched::start(
        &cg_sized,
        &private_dev_shm(shm_limit),
        &line,
        &env,
        logs.path().join("shm-sized.log"),
        port_sized,
        libc::SIGTERM,
    );
    let took = server.ready(&cg_sized, Duration::from_secs(600), vllm_ready);
    let reply = v.complete(port_sized);
    server.sample(&cg_sized);
    assert!(reply.as_ref().is_ok_and(|(c, _)| *c == 200), "{reply:?}");
    let segments = dev_shm_files(server.child.id());
    assert!(segments <= shm_limit, "{} of segments", mib(segments));
    eprintln!(
        "vLLM CPU TP=2 with fit's /dev/shm {} and limit {}: ready in {:.1} s, \
         /v1/completions 200; segments in /dev/shm {} (estimated {}); non-reclaimable peak \
         seen {} (predicted load peak {})",
        mib(shm_limit),
        mib(limit),
        took.as_secs_f64(),
        mib(segments),
        mib(mapped),
        mib(server.peak),
        mib(u(&at["figures"]["load_non_reclaimable"]["bytes"]))
    );
}
