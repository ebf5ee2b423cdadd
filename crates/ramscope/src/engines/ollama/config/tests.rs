use std::path::PathBuf;

use super::*;
use crate::engines::ollama::releases::Version;
use crate::engines::ollama::store::Params;
use crate::engines::ollama::test_util::{tiny_shape, write};
use crate::gguf::builder::LlamaShape;
use crate::gguf::Value;

fn info_of(shape: &LlamaShape) -> GgufInfo {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    write(shape, &path);
    crate::gguf::read_header(&path).unwrap()
}

fn long_context() -> GgufInfo {
    info_of(&LlamaShape {
        ctx: 131_072,
        ..tiny_shape()
    })
}

fn stored(params: Params) -> StoredModel {
    StoredModel {
        name: "m".into(),
        gguf: PathBuf::from("/store/blobs/sha256-abc"),
        projector: None,
        adapters: Vec::new(),
        draft: None,
        params,
        manifest: None,
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const CPU: Host = Host {
    device: Device::Cpu,
    vram_bytes: None,
    integrated_gpu: false,
};

fn gpu(gib: f64) -> Host {
    Host {
        device: Device::Cuda,
        vram_bytes: Some((gib * GIB as f64) as u64),
        integrated_gpu: false,
    }
}

fn at(v: (u16, u16, u16)) -> Release {
    Release::of(Version(v.0, v.1, v.2))
}

fn resolve_with(
    v: (u16, u16, u16),
    host: Host,
    vars: &[(&str, &str)],
    params: Params,
    info: &GgufInfo,
) -> Resolved {
    resolve(at(v), host, &env(vars), &stored(params), info).unwrap()
}

#[test]
fn llama_server_era_defaults_on_the_cpu() {
    let info = long_context();
    let r = resolve_with((0, 32, 15), CPU, &[], Params::default(), &info);
    let l = &r.llama;
    assert_eq!(l.program.as_deref(), Some("llama-server"));
    // VRAM-tiered default, CPU-only: 4096 × 1 slot.
    assert_eq!((r.num_ctx.value, r.num_parallel.value), (4096, 1));
    assert_eq!((l.ctx_size, l.parallel), (Some(4096), Some(1)));
    assert_eq!(r.max_loaded.value, 3);
    // mmap is off for a CPU load, written as --load-mode none since 0.32.6.
    assert!(!r.use_mmap.value);
    assert_eq!(l.load_mode, Some(LoadMode::None));
    assert!(
        l.given.contains(&"--load-mode".to_string()),
        "{:?}",
        l.given
    );
    assert_eq!((l.batch, l.ubatch), (Some(512), Some(512)));
    assert_eq!(l.flash_attn, Some(FlashAttn::Auto));
    // No --cache-ram: llama-server's own default applies.
    assert_eq!(l.cache_ram_mib, None);
    assert_eq!(l.kv_unified, None);
    assert_eq!(l.model.as_deref(), Some("/store/blobs/sha256-abc"));
    let older = resolve_with((0, 32, 5), CPU, &[], Params::default(), &info);
    assert!(older.llama.given.contains(&"--no-mmap".to_string()));
    assert_eq!(older.llama.load_mode, Some(LoadMode::None));
}

#[test]
fn the_context_default_follows_the_vram_tier() {
    let info = long_context();
    let ctx = |host: Host, vars: &[(&str, &str)]| {
        resolve_with((0, 32, 15), host, vars, Params::default(), &info)
            .num_ctx
            .value
    };
    // 262144 for an 80 GB GPU, cut to the model's 131072.
    assert_eq!(ctx(gpu(79.19), &[]), 131_072);
    assert_eq!(ctx(gpu(24.0), &[]), 32_768);
    assert_eq!(ctx(gpu(22.05), &[]), 4096);
    // OLLAMA_GPU_OVERHEAD comes off the VRAM first.
    assert_eq!(
        ctx(gpu(24.0), &[("OLLAMA_GPU_OVERHEAD", "2147483648")]),
        4096
    );
    assert_eq!(
        ctx(gpu(24.0), &[("OLLAMA_CONTEXT_LENGTH", "16384")]),
        16_384
    );
    // Before 0.15.5 the default was fixed whatever the GPU.
    let fixed = resolve_with((0, 15, 4), gpu(79.19), &[], Params::default(), &info);
    assert_eq!(fixed.num_ctx.value, 4096);
    // A GPU load keeps mmap; the batch grows with the context.
    let big = resolve_with((0, 32, 15), gpu(79.19), &[], Params::default(), &info);
    assert!(big.use_mmap.value);
    assert_eq!(big.llama.load_mode, None);
    assert_eq!(big.batch.value, 2048);
}

#[test]
fn environment_maps_onto_the_llama_server_flags() {
    let info = long_context();
    let r = resolve_with(
        (0, 32, 15),
        gpu(16.0),
        &[
            ("OLLAMA_NUM_PARALLEL", "4"),
            ("OLLAMA_CONTEXT_LENGTH", " 8192 "),
            ("OLLAMA_KV_CACHE_TYPE", "Q8_0"),
            ("OLLAMA_MAX_LOADED_MODELS", "3"),
            ("LLAMA_ARG_CACHE_RAM", "512"),
            ("OLLAMA_FLASH_ATTENTION", "0"),
            ("HOME", "/root"),
        ],
        Params::default(),
        &info,
    );
    let l = &r.llama;
    // -c num_ctx × num_parallel, -np num_parallel.
    assert_eq!((l.ctx_size, l.parallel), (Some(32_768), Some(4)));
    assert_eq!(l.cache_type_k.as_deref(), Some("q8_0"));
    assert_eq!(l.cache_type_v.as_deref(), Some("q8_0"));
    // The runner inherits LLAMA_ARG_CACHE_RAM; Ollama's own flags win over LLAMA_ARG_*.
    assert_eq!(l.cache_ram_mib, Some(512));
    let ctx = resolve_with(
        (0, 32, 15),
        CPU,
        &[("LLAMA_ARG_CTX_SIZE", "999"), ("LLAMA_ARG_N_PARALLEL", "8")],
        Params::default(),
        &info,
    );
    assert_eq!(
        (ctx.llama.ctx_size, ctx.llama.parallel),
        (Some(4096), Some(1))
    );
    // Before 0.30 the runner is no llama-server: LLAMA_ARG_* reach nothing.
    let old = resolve_with(
        (0, 24, 0),
        CPU,
        &[("LLAMA_ARG_CACHE_RAM", "512")],
        Params::default(),
        &info,
    );
    assert_eq!(old.llama.cache_ram_mib, Some(0));
    assert_eq!(l.flash_attn, Some(FlashAttn::Off));
    // CUDA without flash attention keeps the small batch.
    assert_eq!(l.batch, Some(512));
    assert_eq!(r.max_loaded.value, 3);
}

#[test]
fn older_runners_are_the_go_runner_with_its_own_defaults() {
    let info = long_context();
    let r = resolve_with(
        (0, 9, 6),
        CPU,
        &[("OLLAMA_KV_CACHE_TYPE", "q8_0")],
        Params::default(),
        &info,
    );
    let l = &r.llama;
    assert_eq!(l.program.as_deref(), Some("ollama runner"));
    // Auto parallel on the CPU: 2 slots of 4096.
    assert_eq!((r.num_parallel.value, l.ctx_size), (2, Some(8192)));
    // No prompt cache in the Go runner; one KV buffer for every slot.
    assert_eq!((l.cache_ram_mib, l.kv_unified), (Some(0), Some(true)));
    // A quantized KV cache needs flash attention before 0.30, which is off by default.
    assert_eq!(l.cache_type_k, None);
    assert!(
        r.notes.iter().any(|n| n.contains("dropped")),
        "{:?}",
        r.notes
    );
    assert_eq!(l.gpu_layers, Some(GpuLayers::Count(0)));
    let fa = resolve_with(
        (0, 9, 6),
        CPU,
        &[
            ("OLLAMA_KV_CACHE_TYPE", "q8_0"),
            ("OLLAMA_FLASH_ATTENTION", "1"),
        ],
        Params::default(),
        &info,
    );
    assert_eq!(fa.llama.cache_type_k.as_deref(), Some("q8_0"));
    let r066 = resolve_with((0, 6, 6), CPU, &[], Params::default(), &info);
    assert_eq!((r066.num_ctx.value, r066.num_parallel.value), (2048, 4));
    let r0100 = resolve_with((0, 10, 0), CPU, &[], Params::default(), &info);
    assert_eq!(r0100.num_parallel.value, 1);
    assert_eq!(
        resolve_with((0, 20, 0), CPU, &[], Params::default(), &info)
            .llama
            .program
            .as_deref(),
        Some("ollama runner")
    );
}

#[test]
fn the_models_params_win_over_the_environment() {
    let info = long_context();
    let r = resolve_with(
        (0, 32, 15),
        gpu(16.0),
        &[("OLLAMA_CONTEXT_LENGTH", "4096")],
        Params {
            num_ctx: Some(16_384),
            use_mmap: Some(false),
            num_batch: Some(256),
            num_gpu: Some(20),
        },
        &info,
    );
    assert_eq!(r.num_ctx.value, 16_384);
    assert_eq!(r.llama.load_mode, Some(LoadMode::None));
    assert_eq!(r.llama.batch, Some(256));
    assert_eq!(r.llama.gpu_layers, Some(GpuLayers::Count(20)));
    // A context beyond the training context is cut to it.
    let cut = resolve_with(
        (0, 32, 15),
        CPU,
        &[],
        Params {
            num_ctx: Some(1 << 20),
            ..Params::default()
        },
        &info,
    );
    assert_eq!(cut.num_ctx.value, 131_072);
}

#[test]
fn some_models_get_one_slot() {
    let mut vl = long_context();
    vl.metadata
        .insert("general.architecture".into(), Value::Text("qwen3vl".into()));
    let r = resolve_with(
        (0, 32, 15),
        CPU,
        &[("OLLAMA_NUM_PARALLEL", "4")],
        Params::default(),
        &vl,
    );
    assert_eq!(r.num_parallel.value, 1);
    let mut embed = long_context();
    embed
        .metadata
        .insert("llama.pooling_type".into(), Value::Uint(1));
    let r = resolve_with(
        (0, 32, 15),
        CPU,
        &[("OLLAMA_NUM_PARALLEL", "4")],
        Params::default(),
        &embed,
    );
    assert_eq!(r.num_parallel.value, 1);
    assert!(r.llama.embedding);
}

#[test]
fn environment_values_are_read_as_ollama_reads_them() {
    let info = long_context();
    let r = resolve_with(
        (0, 32, 15),
        gpu(16.0),
        &[
            ("OLLAMA_NUM_PARALLEL", "abc"),
            ("OLLAMA_MAX_LOADED_MODELS", "99999999999999999999"),
            ("OLLAMA_FLASH_ATTENTION", "yes"),
        ],
        Params::default(),
        &info,
    );
    // Unreadable numbers fall back to the defaults, each with a note.
    assert_eq!((r.num_parallel.value, r.max_loaded.value), (1, 3));
    assert_eq!(
        r.notes
            .iter()
            .filter(|n| n.contains("not a number"))
            .count(),
        2
    );
    // ParseBool cannot read "yes", and Ollama takes that as true.
    assert_eq!(r.flash_attention.value, FlashAttn::On);
    // A context too large for Ollama's integers is one error, not a wrapped number.
    let err = resolve(
        at((0, 32, 15)),
        CPU,
        &env(&[("OLLAMA_NUM_PARALLEL", "4611686018427387904")]),
        &stored(Params::default()),
        &info,
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::ContextTooLarge { .. }), "{err}");
    let err = resolve(
        at((0, 32, 15)),
        CPU,
        &env(&[("LLAMA_ARG_CACHE_RAM", "lots")]),
        &stored(Params::default()),
        &info,
    )
    .unwrap_err();
    assert!(
        matches!(&err, ConfigError::LlamaEnv(m) if m.contains("LLAMA_ARG_CACHE_RAM")),
        "{err}"
    );
}

#[test]
fn integrated_gpus_load_with_direct_io_since_load_mode() {
    let info = long_context();
    let igpu = Host {
        integrated_gpu: true,
        ..gpu(16.0)
    };
    let r = resolve_with((0, 32, 15), igpu, &[], Params::default(), &info);
    assert_eq!(r.llama.load_mode, Some(LoadMode::DirectIo));
    let before = resolve_with((0, 32, 5), igpu, &[], Params::default(), &info);
    assert_eq!(before.llama.load_mode, None);
}

#[test]
fn the_projector_adapters_and_draft_reach_the_runner() {
    let info = info_of(&tiny_shape());
    let mut m = stored(Params::default());
    m.projector = Some(PathBuf::from("/b/proj"));
    m.adapters = vec![PathBuf::from("/b/lora")];
    m.draft = Some(PathBuf::from("/b/draft"));
    let r = resolve(at((0, 32, 15)), CPU, &BTreeMap::new(), &m, &info).unwrap();
    assert_eq!(r.llama.mmproj.as_deref(), Some("/b/proj"));
    assert_eq!(r.llama.lora, ["/b/lora"]);
    assert_eq!(r.llama.model_draft.as_deref(), Some("/b/draft"));
}
