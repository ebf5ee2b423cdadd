//! The host RAM a server will use, per process, before it starts.
//!
//! [`estimate`] takes a [`Model`], a [`Launch`] (a command line its engine parsed, see
//! [`crate::engines`]) and [`Options`] (release, device, GPU, environment, calibration) and
//! returns an [`Estimate`]: the engine lists, per process role, the components with bytes,
//! formula, source and exactness; [`Estimate::assemble`] checks them and sums them into a
//! steady state and a load peak. To see what a flag would change, estimate the changed
//! launch again (`explain` does, with the engine's [`Candidate`](crate::engines::Candidate)s).

use crate::engines::{Engine, EngineError, Launch, Options};
use crate::footprint::{Device, Estimate, FootprintError};
use crate::model::{Model, ModelError};

#[derive(Debug, thiserror::Error)]
pub enum EstimateError {
    /// The engine refuses the command line or the configuration it asks for.
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A number too large for 64 bits, or a range that misses its value.
    #[error(transparent)]
    Footprint(#[from] FootprintError),
}

/// Predicts the host RAM of the server `launch` starts, for this model and options.
pub fn estimate(
    model: &Model,
    launch: &dyn Launch,
    options: &Options,
) -> Result<Estimate, EstimateError> {
    // The engine names the baselines it used in the listing's notes.
    let listing = launch.list(model, options)?;
    let mut estimate = Estimate::assemble(launch.engine().name(), model, listing)?;
    // A release standing in for one ramscope has not read is said in every report.
    estimate.version_assumed = options.release_assumed.clone();
    Ok(estimate)
}

/// Estimates a whole command line as a user would type it (`vllm serve M …` or
/// `python -m vllm.entrypoints.openai.api_server --model M …`, `NAME=VALUE` words first).
/// The model is resolved like `ramscope estimate` does; `env` reads the environment (for the
/// Hugging Face cache). With no model in the line, the built-in default is used.
pub fn from_command_line(
    engine: &dyn Engine,
    line: &str,
    options: &Options,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Estimate, EstimateError> {
    from_argv(engine, &engine.split_command_line(line)?, &[], options, env)
}

/// Like [`from_command_line`], for an argv as a process has it (`/proc/<pid>/cmdline`) and
/// the environment variables the server was started with (added to `options.env`).
pub fn from_argv(
    engine: &dyn Engine,
    argv: &[String],
    server_env: &[(String, String)],
    options: &Options,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Estimate, EstimateError> {
    let launch = engine.parse(argv)?;
    let model = match launch.resolve_model(env) {
        Some(model) => model?,
        None => Model::default_model(),
    };
    let mut options = options.clone();
    options.env.extend(server_env.iter().cloned());
    estimate(&model, &*launch, &options)
}

/// Fuzz entry point: any bytes as an argv of `engine`. The first byte picks the release, the
/// device and whether the host's memory is known; the rest is split into words at NUL bytes
/// and whitespace and parsed. What parses is estimated with a bundled model (the one named,
/// if the catalog has it, else the default), touching no file. Never panics on its own: the
/// assertions are the invariants every estimate promises.
pub fn fuzz_argv(engine: &dyn Engine, data: &[u8]) {
    let (selector, rest) = data.split_first().map_or((0, &[][..]), |(s, r)| (*s, r));
    let text = String::from_utf8_lossy(rest);
    let argv: Vec<String> = text
        .split(|c: char| c == '\0' || c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let Ok(launch) = engine.parse(&argv) else {
        return;
    };
    let model = launch
        .model()
        .and_then(Model::bundled)
        .unwrap_or_else(Model::default_model);
    let releases = engine.releases();
    let options = Options {
        release: releases
            .get(usize::from(selector) % releases.len().max(1))
            .cloned(),
        device: if selector & 0x80 != 0 {
            Device::Cpu
        } else {
            Device::Cuda
        },
        host_memory_bytes: (selector & 0x40 != 0).then_some(64 << 30),
        cpu_cores: Some(16),
        ..Options::default()
    };
    match estimate(&model, &*launch, &options) {
        Ok(e) => {
            for p in &e.processes {
                for c in &p.components {
                    assert!(
                        c.low_bytes <= c.bytes && c.bytes <= c.high_bytes,
                        "{}",
                        c.id
                    );
                }
                assert!(p.low_bytes <= p.steady_bytes && p.steady_bytes <= p.high_bytes);
                assert!(p.steady_bytes <= p.peak_bytes);
            }
            let t = &e.total;
            assert!(t.low_bytes <= t.steady_bytes && t.steady_bytes <= t.high_bytes);
            assert!(t.steady_bytes <= t.peak_bytes);
        }
        Err(EstimateError::Footprint(FootprintError::Inconsistent { .. })) => {
            panic!("an estimate broke low ≤ bytes ≤ high: {argv:?}")
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::Category;
    use crate::engines;
    use crate::footprint::{Exactness, Phase};
    use crate::proc::roles::Role;

    /// These tests estimate vLLM through the registry, as the commands do.
    fn vllm() -> &'static dyn Engine {
        engines::named("vllm").unwrap()
    }

    fn parse_str(flags: &str) -> Result<Box<dyn Launch>, EngineError> {
        vllm().parse(&vllm().split_command_line(flags)?)
    }

    fn qwen3_8b(flags: &str, version: &str) -> Estimate {
        let options = Options {
            release: Some(version.to_string()),
            ..Options::default()
        };
        estimate(
            &Model::default_model(),
            &*parse_str(flags).unwrap(),
            &options,
        )
        .unwrap()
    }

    #[test]
    fn seed_case_token_ids() {
        let e = qwen3_8b("--max-model-len 5120 --max-num-seqs 256", "0.11");
        let ec = e.process(Role::EngineCore).unwrap();
        let ids = ec.component("input_batch.token_ids").unwrap();
        assert_eq!(ids.bytes, 5_242_880);
        assert_eq!(
            ids.formula,
            "max_num_seqs × max_model_len × 4 B = 256 × 5120 × 4"
        );
        assert_eq!(ids.exactness, Exactness::Exact);
        assert_eq!(
            ec.component("input_batch.is_token_ids").unwrap().bytes,
            1_310_720
        );
        let embeds = ec.component("runner.inputs_embeds").unwrap();
        assert_eq!(embeds.bytes, 64 << 20);
        assert!(embeds.pinned);
        // Weights are on the GPU: host RAM only while loading.
        for p in &e.processes {
            for c in &p.components {
                if c.category == Category::Weights {
                    assert_eq!(c.phase, Phase::Load, "{}", c.id);
                }
            }
        }
    }

    #[test]
    fn h100_default_is_1024_sequences() {
        let e = qwen3_8b("--max-model-len 5120", "0.11");
        let ec = e.process(Role::EngineCore).unwrap();
        assert_eq!(
            ec.component("input_batch.token_ids").unwrap().bytes,
            20_971_520
        );
        assert_eq!(
            ec.component("block_table.block_table").unwrap().bytes,
            2_097_152
        );
    }

    #[test]
    fn structured_total_matches_the_worked_example() {
        // docs/vllm-host-ram.md §3: 71.06 MiB at R=256 and 91.38 MiB at R=1024 (0.11).
        for (flags, mib) in [
            ("--max-model-len 5120 --max-num-seqs 256", 71.06),
            ("--max-model-len 5120", 91.38),
        ] {
            let e = qwen3_8b(flags, "0.11");
            let ec = e.process(Role::EngineCore).unwrap();
            let sum: u64 = ec
                .components
                .iter()
                .filter(|c| {
                    c.id.starts_with("input_batch.")
                        || c.id.starts_with("block_table.")
                        || c.id.starts_with("runner.")
                        || c.id.starts_with("logits.")
                })
                .filter(|c| c.exactness == Exactness::Exact && c.phase == Phase::Steady)
                .map(|c| c.bytes)
                .sum();
            let got = sum as f64 / (1u64 << 20) as f64;
            assert!((got - mib).abs() < 0.05, "{flags}: {got} MiB");
        }
    }

    #[test]
    fn tensor_parallel_workers_each_read_the_weights() {
        let e = qwen3_8b("--max-model-len 5120 -tp 2", "0.11");
        let w = e.process(Role::Worker).unwrap();
        assert_eq!(w.count, 2);
        assert!(w.component("weights.load.lazy").is_some());
        assert!(w.component("shm.worker_response_mq").is_some());
        assert!(e
            .process(Role::EngineCore)
            .unwrap()
            .component("runner.inputs_embeds")
            .is_none());
    }

    #[test]
    fn from_argv_reads_the_server_environment() {
        let argv: Vec<String> = [
            "python",
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            "qwen3-0.6b",
            "--max-model-len",
            "5120",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let options = Options {
            device: Device::Cpu,
            release: Some("0.32".into()),
            ..Options::default()
        };
        let env = [("VLLM_CPU_KVCACHE_SPACE".to_string(), "2".to_string())];
        let e = from_argv(vllm(), &argv, &env, &options, &|_| None).unwrap();
        let w = e.process(Role::Worker).unwrap();
        let kv = w.component("kv_cache.cpu").unwrap();
        assert!(
            kv.bytes <= 2 << 30 && kv.bytes > (2 << 30) - (64 << 20),
            "{}",
            kv.bytes
        );
    }

    fn try_estimate(flags: &str, version: &str, device: Device) -> Result<Estimate, String> {
        let options = Options {
            release: Some(version.to_string()),
            device,
            host_memory_bytes: Some(64 << 30),
            ..Options::default()
        };
        let launch = parse_str(flags).map_err(|e| e.to_string())?;
        estimate(&Model::default_model(), &*launch, &options).map_err(|e| e.to_string())
    }

    #[test]
    fn absurd_sizes_are_errors_not_wrapped_numbers() {
        let cuda = |flags: &str| try_estimate(flags, "0.32", Device::Cuda);
        // Each of these printed a small or upside-down number before.
        for (flags, says) in [
            (
                "--max-model-len 4611686018427387904",
                "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1",
            ),
            (
                "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 vllm serve M --max-model-len 4611686018427387904",
                "needs more than 16 EiB",
            ),
            ("--kv-offloading-size 1e20", "needs more than 16 EiB"),
            (
                "--api-server-count 99999999999999",
                "needs more than 16 EiB",
            ),
            (
                "--max-num-seqs 18446744073709551615",
                "needs more than 16 EiB",
            ),
            (
                "--max-cudagraph-capture-size 1000000000000 --max-num-batched-tokens 1000000000000",
                "CUDA graphs",
            ),
            (
                "-tp 1 -pp 9223372036854775807 -dp 3",
                "needs more than 16 EiB",
            ),
        ] {
            let err = cuda(flags).expect_err(flags);
            assert!(err.contains(says), "{flags}: {err}");
        }
        let err = try_estimate(
            "VLLM_CPU_KVCACHE_SPACE=99999999999 vllm serve M",
            "0.32",
            Device::Cpu,
        )
        .unwrap_err();
        assert!(err.contains("needs more than 16 EiB"), "{err}");
    }

    #[test]
    fn every_estimate_keeps_low_le_bytes_le_high() {
        let flags = [
            "--max-model-len 5120",
            "--max-model-len 40960 --max-num-seqs 1 --max-num-batched-tokens 40960",
            "-tp 2 -pp 2 -dp 2 --api-server-count 3",
            "--enable-lora --max-loras 4 --max-cpu-loras 8 --max-lora-rank 64",
            "--cpu-offload-gb 4 --enable-sleep-mode --kv-offloading-size 8",
            "--kv-offloading-size 8 --kv-offloading-backend lmcache",
            "--enforce-eager --safetensors-load-strategy eager",
            "--model-loader-extra-config {\"enable_multithread_load\":true}",
            "--num-gpu-blocks-override 0 --block-size 1",
            "--max-num-seqs 1000000 --max-num-batched-tokens 1000000",
        ];
        let mut estimated = 0;
        for version in vllm().releases() {
            let version = version.as_str();
            for device in [Device::Cuda, Device::Cpu] {
                for f in flags {
                    let Ok(e) = try_estimate(f, version, device) else {
                        continue;
                    };
                    estimated += 1;
                    for p in &e.processes {
                        for c in &p.components {
                            assert!(
                                c.low_bytes <= c.bytes && c.bytes <= c.high_bytes,
                                "{version} {device:?} {f}: {}",
                                c.id
                            );
                        }
                    }
                    let t = &e.total;
                    assert!(t.low_bytes <= t.steady_bytes && t.steady_bytes <= t.high_bytes);
                }
            }
        }
        assert!(estimated > 60, "only {estimated} estimates ran");
    }

    #[test]
    fn fuzz_entry_survives_odd_argv() {
        for data in [
            &b""[..],
            b"\x00--max-model-len\x005120",
            b"\xc0qwen3-0.6b -tp 2 --max-num-seqs 0",
            b"\x41VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 vllm serve qwen3-8b --max-model-len 9999999999999",
            b"\xffgpt-oss-20b --cudagraph-capture-sizes 1 2 18446744073709551614",
            b"\x02--cpu-offload-gb 1e300",
        ] {
            fuzz_argv(vllm(), data);
        }
    }

    #[test]
    fn v2_runner_drops_inputs_embeds() {
        let e = qwen3_8b("--max-model-len 5120", "0.33");
        let ec = e.process(Role::EngineCore).unwrap();
        assert!(ec.component("runner.inputs_embeds").is_none());
        assert_eq!(ec.component("v2.all_token_ids").unwrap().bytes, 32 << 20);
    }
}
