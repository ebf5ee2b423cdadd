//! A real llama-server (llama.cpp 0c1e570, built by scripts/llama-server-env.sh) in two
//! configurations, each serving a request; its log's buffer lines read by
//! `engines::llama::log` and set against llama.cpp's own formulas for the KV cache and the
//! output buffer, and its command line read back by `engines::llama::args`.

mod common;

use common::llama::{complete, model, server, Quant};
use ramscope::engines::llama::args;
use ramscope::engines::llama::log::{buffers, BufferKind, LogBuffer};

/// The models' shape (tests/common/llama.rs): 16 layers, 4 KV heads of 64, 32000 tokens.
const LAYERS: f64 = 16.0;
const KV_WIDTH: f64 = 4.0 * 64.0;
const VOCAB: f64 = 32000.0;
const MIB: f64 = 1048576.0;

fn one(found: &[LogBuffer], kind: BufferKind, buffer: &str) -> f64 {
    let hits: Vec<&LogBuffer> = found
        .iter()
        .filter(|b| b.kind == kind && b.buffer == buffer)
        .collect();
    assert_eq!(hits.len(), 1, "{kind:?} {buffer}: {found:?}");
    hits[0].mib
}

fn close(found: f64, want: f64, what: &str) {
    // The log prints MiB with two decimals.
    assert!(
        (found - want).abs() <= 0.006,
        "{what}: log {found} MiB, formula {want:.4} MiB"
    );
}

fn avx2() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" avx2"))
}

#[test]
fn two_configurations_serve_and_log_their_buffers() {
    let (Some(q8), Some(q4)) = (model(Quant::Q8_0), model(Quant::Q4_0)) else {
        return;
    };
    let (q8, q4) = (q8.display().to_string(), q4.display().to_string());
    let plain = server(&["-m", &q8, "-c", "512"]).unwrap();
    let quantized_kv = server(&[
        "-m", &q4, "-c", "1024", "-np", "2", "-ctk", "q8_0", "-ctv", "q8_0",
    ])
    .unwrap();
    for s in [plain, quantized_kv] {
        let reply = complete(s.port, "the quick brown fox", 8).unwrap();
        assert!(reply.contains("\"tokens_predicted\":8"), "{reply}");
    }

    // -c 512 with 4 automatic slots sharing one stream of 512 cells; K and V f16 (2 B).
    let a = buffers(&plain.log_text());
    close(
        one(&a, BufferKind::Kv, "CPU"),
        LAYERS * 512.0 * 2.0 * KV_WIDTH * 2.0 / MIB,
        "KV f16",
    );
    // Logits of 4 slots: n_vocab × 4 × 4 B.
    close(
        one(&a, BufferKind::Output, "CPU"),
        VOCAB * 4.0 * 4.0 / MIB,
        "output",
    );
    let mapped = one(&a, BufferKind::Model, "CPU_Mapped");
    let file = std::fs::metadata(&plain.model).unwrap().len() as f64 / MIB;
    assert!(
        mapped > 0.95 * file && mapped <= file,
        "mapped {mapped} of a {file} MiB file"
    );
    assert!(
        !a.iter().any(|b| b.buffer == "CPU_REPACK"),
        "Q8_0 is not repacked: {a:?}"
    );
    assert!(one(&a, BufferKind::Compute, "CPU") > 0.0);

    // -c 1024 over 2 slots of their own streams (512 cells each); q8_0 is 34 B per 32 values.
    let b = buffers(&quantized_kv.log_text());
    close(
        one(&b, BufferKind::Kv, "CPU"),
        LAYERS * 1024.0 * 2.0 * KV_WIDTH / 32.0 * 34.0 / MIB,
        "KV q8_0",
    );
    close(
        one(&b, BufferKind::Output, "CPU"),
        VOCAB * 2.0 * 4.0 / MIB,
        "output",
    );
    let repacked = b.iter().any(|x| x.buffer == "CPU_REPACK");
    assert_eq!(
        repacked,
        avx2(),
        "Q4_0 repacks where the CPU has AVX2: {b:?}"
    );

    // The command lines the servers run read back as given.
    let p = args::parse(&quantized_kv.argv).unwrap();
    assert_eq!(p.ctx_size, Some(1024));
    assert_eq!(p.parallel, Some(2));
    assert_eq!(p.cache_type_v.as_deref(), Some("q8_0"));
    assert_eq!(p.model.as_deref(), Some(q4.as_str()));
    assert!(p.program.is_some());
}
