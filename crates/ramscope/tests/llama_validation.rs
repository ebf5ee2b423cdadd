//! Held-out validation of the llama-server estimate: real servers (llama.cpp 0c1e570, CPU
//! build) on shapes and settings that set no constant — the baseline was calibrated on 2-layer
//! models at `-c 256 -ub 32` (docs/llama-host-ram.md §4); these are 16-layer models at other
//! contexts, slot counts, load modes and types. Each server runs one prompt longer than a
//! ubatch (so the compute buffer has been used in full), then `ramscope explain PID --json`
//! measures it and estimates it from its own command line. A process more than 10 % off
//! fails; so does an exact component that differs from the size llama-server printed (read
//! from its log by `ramscope estimate --log`).

mod common;

use common::llama::{self, Quant};

/// About 600 tokens with the test models' byte-level vocabulary: more than a ubatch (512).
fn long_prompt(seed: usize) -> String {
    (0..30)
        .map(|i| format!("the quick brown fox {seed} {i} jumps"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = common::ramscope(args);
    assert!(
        out.status.success(),
        "ramscope {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

struct Outcome {
    name: &'static str,
    measured: f64,
    estimated: f64,
}

impl Outcome {
    fn error(&self) -> f64 {
        self.estimated / self.measured - 1.0
    }
}

/// Resident bytes of a process (VmRSS), 0 when it cannot be read.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mib(b: f64) -> f64 {
    b / (1u64 << 20) as f64
}

/// Starts (or reuses) the server, runs `prompts` long prompts, and compares.
fn validate(name: &'static str, quant: Quant, flags: &[&str], prompts: usize) -> Option<Outcome> {
    let model = llama::model(quant)?;
    let model = model.display().to_string();
    let mut config = vec!["-m", model.as_str()];
    config.extend_from_slice(flags);
    let server = llama::server(&config)?;
    let pid = server.pid.to_string();
    // The estimate before traffic, with its growth bound, and the server's own log read
    // beside it (`estimate --log`): every exact component must equal the size it printed.
    let argv: Vec<&str> = server.argv.iter().map(String::as_str).collect();
    let log_path = server.log.display().to_string();
    let mut est_args = vec!["estimate", "--json", "--log", log_path.as_str(), "--"];
    est_args.extend(&argv);
    let estimate = json(&est_args);
    let process = &estimate["processes"][0];
    let component = |id: &str| {
        process["components"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["id"] == id))
            .cloned()
    };
    let lines = estimate["log"].as_array().expect("the log's buffers");
    let host: Vec<&serde_json::Value> = lines.iter().filter(|l| l["on_host"] == true).collect();
    assert!(
        host.len() >= 4,
        "{name}: only {} host buffers read",
        host.len()
    );
    for line in host {
        let id = line["component"].as_str().unwrap_or_else(|| {
            panic!("{name}: no component predicts {line}");
        });
        let printed = mib(line["printed_bytes"].as_f64().unwrap_or(0.0));
        let c = component(id).expect("the component");
        if id == "compute_buffer" {
            // Sized by ggml's allocator: an estimate with a range.
            let (low, high) = (
                mib(c["low_bytes"].as_f64().unwrap_or(0.0)),
                mib(c["high_bytes"].as_f64().unwrap_or(0.0)),
            );
            assert!(
                low <= printed && printed <= high,
                "{name}: compute buffer printed {printed:.2} MiB outside {low:.1}–{high:.1} MiB"
            );
        } else {
            let ours = mib(line["estimated_bytes"].as_f64().unwrap_or(0.0));
            assert!(
                (ours - printed).abs() <= 0.006,
                "{name}: {id} {ours:.3} MiB, llama-server printed {} {printed:.2} MiB",
                line["printed"]
            );
        }
    }

    let before = rss(server.pid);
    for i in 0..prompts {
        llama::complete(server.port, &long_prompt(i), 4).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let explained = json(&["explain", &pid, "--json"]);
    let p = &explained["processes"][0];
    let measured = p["measured_pss_bytes"].as_f64().expect("measured");
    let mut estimated = p["estimated_bytes"].as_f64().expect("estimated");
    if prompts > 1 {
        // Later prompts saved earlier ones in the prompt cache: compare with the steady state
        // plus the cache at its cap, and check it really grew to near the cap.
        let cap = component("prompt_cache")
            .and_then(|c| c["bytes"].as_f64())
            .expect("a prompt cache");
        estimated += cap;
        let grew = rss(server.pid).saturating_sub(before) as f64;
        assert!(
            grew >= 0.5 * cap,
            "{name}: the prompt cache grew {:.1} MiB, less than half its {:.1} MiB cap",
            mib(grew),
            mib(cap)
        );
    }
    Some(Outcome {
        name,
        measured,
        estimated,
    })
}

#[test]
fn estimates_match_real_llama_servers() {
    let cases: [(&str, Quant, &[&str], usize); 4] = [
        (
            "A f16, mmap, -c 4096 -np 2",
            Quant::F16,
            &["-c", "4096", "-np", "2", "--cache-ram", "0"],
            1,
        ),
        (
            "B f16, --load-mode none, -c 8192 -np 1",
            Quant::F16,
            &[
                "--load-mode",
                "none",
                "-c",
                "8192",
                "-np",
                "1",
                "--cache-ram",
                "0",
            ],
            1,
        ),
        (
            "C Q4_0 (repacked), mmap, -c 6144 -np 3",
            Quant::Q4_0,
            &["-c", "6144", "-np", "3", "--cache-ram", "0"],
            1,
        ),
        (
            "D Q8_0, 4 unified slots, --cache-ram 24 filled",
            Quant::Q8_0,
            &["-c", "4096", "--cache-ram", "24"],
            4,
        ),
    ];
    let mut outcomes = Vec::new();
    for (name, quant, flags, prompts) in cases {
        match validate(name, quant, flags, prompts) {
            Some(o) => outcomes.push(o),
            None => return,
        }
    }
    eprintln!("| configuration | measured PSS | estimated | error |");
    for o in &outcomes {
        eprintln!(
            "| {} | {:.1} MiB | {:.1} MiB | {:+.1} % |",
            o.name,
            mib(o.measured),
            mib(o.estimated),
            100.0 * o.error()
        );
    }
    let off: Vec<String> = outcomes
        .iter()
        .filter(|o| o.error().abs() > 0.10)
        .map(|o| format!("{}: {:+.1} %", o.name, 100.0 * o.error()))
        .collect();
    assert!(off.is_empty(), "more than 10 % off: {off:?}");
}
