//! The exact components against what a real llama-server (0c1e570, CPU build) printed for
//! the same shapes and flags: `CPU_Mapped model buffer size = 297.07 MiB`, `CPU KV buffer
//! size = 32.00 MiB`, `CPU output buffer size = 0.24 MiB`, `CPU compute buffer size =
//! 26.51 MiB` for the f16 model at `-c 4096 -np 2`; `CPU_REPACK model buffer size = 48.38
//! MiB` for its Q4_0 quantization at `-c 4096 -np 4` (where the compute buffer was 25.51 MiB).
//! The shape is scripts/make_tiny_gguf.py's `--layers 8 --hidden 1024 --heads 16
//! --kv-heads 4 --ffn 2816 --vocab 32000 --ctx 8192`.

use std::collections::BTreeMap;

use super::args::{self, LlamaArgs};
use super::engine::listing;
use crate::engines::Options;
use crate::footprint::{Component, Device, Listing, Phase};
use crate::gguf::builder::{Builder, LlamaShape};
use crate::gguf::{self, GgufInfo};

fn shape(type_id: u32, embd_type: u32) -> LlamaShape {
    LlamaShape {
        name: "tiny".into(),
        layers: 8,
        hidden: 1024,
        heads: 16,
        kv_heads: 4,
        ffn: 2816,
        vocab: 32000,
        ctx: 8192,
        type_id,
        embd_type,
    }
}

fn info(b: &Builder) -> GgufInfo {
    gguf::parse(&b.build(), std::path::Path::new("m.gguf")).expect("a valid header")
}

fn list(info: &GgufInfo, line: &str, device: Device) -> Listing {
    let words: Vec<String> = line.split_whitespace().map(String::from).collect();
    let args: LlamaArgs = args::parse(&words).expect("flags parse");
    let options = Options {
        device,
        ..Options::default()
    };
    listing(info, &args, &options).expect("an estimate")
}

fn component<'a>(l: &'a Listing, id: &str) -> &'a Component {
    l.processes[0]
        .components
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no {id}"))
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

#[test]
fn f16_model_matches_the_buffers_llama_server_printed() {
    let f16 = info(&Builder::llama(&shape(1, 1)));
    let l = list(&f16, "-c 4096 -np 2", Device::Cpu);
    assert!((mib(component(&l, "weights.mapped").bytes) - 297.07).abs() < 0.01);
    assert_eq!(mib(component(&l, "kv_cache").bytes), 32.0);
    assert!((mib(component(&l, "output_buffer").bytes) - 0.24).abs() < 0.005);
    let compute = component(&l, "compute_buffer");
    let printed = 26.51 * (1u64 << 20) as f64;
    assert!((compute.bytes as f64 - printed).abs() / printed < 0.01);
    assert!(compute.low_bytes as f64 <= printed && printed <= compute.high_bytes as f64);
    // Nothing repacks in f16; with mmap the weights are file-backed.
    assert!(l.processes[0].component("weights.repacked").is_none());
    assert!(l.processes[0].component("weights.allocated").is_none());
}

#[test]
fn q4_0_weights_repack_as_llama_server_printed() {
    let q4 = info(&Builder::llama(&shape(2, 14)));
    let l = list(&q4, "-c 4096 -np 4", Device::Cpu);
    assert!((mib(component(&l, "weights.repacked").bytes) - 48.38).abs() < 0.01);
    assert!((mib(component(&l, "compute_buffer").bytes) - 25.51).abs() < 0.1);
    assert!((mib(component(&l, "output_buffer").bytes) - 0.49).abs() < 0.005);
    // --no-repack keeps one copy; so does a GPU's pinned host buffer type.
    let l = list(&q4, "-c 4096 -np 4 --no-repack", Device::Cpu);
    assert!(l.processes[0].component("weights.repacked").is_none());
    let l = list(&q4, "-c 4096 -np 4 -ngl 0", Device::Cuda);
    assert!(l.processes[0].component("weights.repacked").is_none());
}

#[test]
fn slots_and_context_follow_llama_server_defaults() {
    let f16 = info(&Builder::llama(&shape(1, 1)));
    // No -np: 4 slots on one unified cache of the whole context; no -c: the training context.
    let l = list(&f16, "", Device::Cpu);
    assert_eq!(l.args["parallel"], 4);
    assert_eq!(l.args["kv_unified"], true);
    assert_eq!(l.args["ctx_size"], 8192);
    assert_eq!(mib(component(&l, "kv_cache").bytes), 64.0);
    // -c 1000 -np 3: 1000/3 = 333 → 512 cells per stream, 1536 in all.
    let l = list(&f16, "-c 1000 -np 3", Device::Cpu);
    assert_eq!(l.args["n_ctx_seq"], 512);
    assert_eq!(l.args["ctx_size"], 1536);
    assert_eq!(component(&l, "kv_cache").bytes, 8 * 3 * 512 * 2 * 256 * 2);
    // q8_0 K and V: 34 bytes per 32 values.
    let l = list(&f16, "-c 4096 -np 1 -ctk q8_0 -ctv q8_0", Device::Cpu);
    assert_eq!(
        component(&l, "kv_cache").bytes,
        8 * 4096 * 2 * 256 / 32 * 34
    );
}

#[test]
fn load_modes_move_weights_between_page_cache_and_anonymous_memory() {
    let f16 = info(&Builder::llama(&shape(1, 1)));
    let mapped = list(&f16, "-c 4096", Device::Cpu);
    let read = list(&f16, "-c 4096 --load-mode none", Device::Cpu);
    let dio = list(&f16, "-c 4096 --load-mode dio", Device::Cpu);
    let w = component(&read, "weights.allocated");
    assert_eq!(w.category, crate::attribute::Category::Heap);
    assert!(w.bytes >= component(&mapped, "weights.mapped").bytes);
    // Buffered reads leave the whole file in the page cache; O_DIRECT leaves none; a
    // mapping keeps it in the process instead.
    assert_eq!(read.page_cache_bytes, f16.file_bytes);
    assert_eq!(dio.page_cache_bytes, 0);
    assert!(mapped.page_cache_bytes < 1 << 20);
    let locked = list(&f16, "-c 4096 --load-mode mmap+mlock", Device::Cpu);
    assert!(component(&locked, "weights.mapped").locked);
}

#[test]
fn a_gpu_keeps_only_the_input_layer_and_pinned_buffers_on_the_host() {
    let f16 = info(&Builder::llama(&shape(1, 1)));
    let l = list(&f16, "-c 4096 -np 1 -ngl all", Device::Cuda);
    // token_embd alone stays mapped: 1024 × 32000 × 2 bytes.
    assert_eq!(component(&l, "weights.mapped").bytes, 1024 * 32000 * 2);
    assert!(l.processes[0].component("kv_cache").is_none());
    assert!(component(&l, "output_buffer").pinned);
    // The rest of the file went through the page cache while copied to the GPU.
    assert!(l.page_cache_bytes > 200 << 20);
    // --no-kv-offload keeps every layer's cache on the host.
    let l = list(&f16, "-c 4096 -np 1 -ngl all -nkvo", Device::Cuda);
    assert_eq!(mib(component(&l, "kv_cache").bytes), 32.0);
    // Half the layers: the CPU ones are pinned CUDA_Host copies without mmap.
    let l = list(&f16, "-c 4096 -np 1 -ngl 5 --load-mode none", Device::Cuda);
    let w = component(&l, "weights.allocated");
    assert!(w.pinned);
    assert_eq!(component(&l, "load.staging").phase, Phase::Load);
}

#[test]
fn the_prompt_cache_grows_to_its_cap() {
    let f16 = info(&Builder::llama(&shape(1, 1)));
    let l = list(&f16, "-c 4096", Device::Cpu);
    let c = component(&l, "prompt_cache");
    assert_eq!(c.phase, Phase::Growth);
    assert_eq!(c.bytes, 8192 << 20);
    assert_eq!(l.processes[0].growth_bytes, 8192 << 20);
    let l = list(&f16, "-c 4096 --cache-ram 512", Device::Cpu);
    assert_eq!(component(&l, "prompt_cache").bytes, 512 << 20);
    let l = list(&f16, "-c 4096 --cache-ram 0", Device::Cpu);
    assert!(l.processes[0].component("prompt_cache").is_none());
    // No byte limit: the token limit (the context) of 8 KiB-per-token states.
    let l = list(&f16, "-c 4096 --cache-ram -1", Device::Cpu);
    assert_eq!(component(&l, "prompt_cache").bytes, 4096 * 8 * 1024);
}

#[test]
fn the_environment_fills_what_the_line_left_unset() {
    let f16 = info(&Builder::llama(&shape(1, 1)));
    let words: Vec<String> = "-c 4096".split(' ').map(String::from).collect();
    let mut a = args::parse(&words).expect("parse");
    a.apply_env(&BTreeMap::from([
        ("LLAMA_ARG_CACHE_RAM".to_string(), "256".to_string()),
        ("LLAMA_ARG_CTX_SIZE".to_string(), "8192".to_string()),
    ]))
    .expect("env");
    let options = Options {
        device: Device::Cpu,
        ..Options::default()
    };
    let l = listing(&f16, &a, &options).expect("estimate");
    // The flag wins over the variable; the variable fills what the flag left.
    assert_eq!(l.args["ctx_size"], 4096);
    assert_eq!(component(&l, "prompt_cache").bytes, 256 << 20);
}

#[test]
fn hostile_shapes_are_errors_not_panics() {
    let b = Builder::new()
        .kv_str("general.architecture", "llama")
        .kv_u32("llama.block_count", 4)
        .kv_u32("llama.embedding_length", u32::MAX)
        .tensor("token_embd.weight", &[32, 32], 0);
    let words: Vec<String> = Vec::new();
    let a = args::parse(&words).expect("parse");
    assert!(listing(&info(&b), &a, &Options::default()).is_err());
    let b = Builder::new()
        .kv_str("general.architecture", "llama")
        .kv_u32("llama.block_count", 2)
        .kv_u32("llama.embedding_length", 64)
        .kv_u32("llama.attention.head_count", 1)
        .kv_u32("llama.attention.key_length", u32::MAX)
        .kv_u32("llama.feed_forward_length", u32::MAX)
        .kv_u32("llama.context_length", u32::MAX);
    // Huge widths give a too-large number, which the estimate refuses, never a wrap.
    let cpu = Options {
        device: Device::Cpu,
        ..Options::default()
    };
    let l = listing(&info(&b), &a, &cpu);
    if let Ok(l) = l {
        let e = crate::footprint::Estimate::assemble(
            "llama.cpp",
            &crate::model::Model::default_model(),
            l,
        );
        assert!(e.is_err(), "{e:?}");
    }
}

#[test]
fn cpu_moe_keeps_expert_tensors_on_the_host() {
    let mut b = Builder::new()
        .kv_str("general.architecture", "qwen3moe")
        .kv_u32("qwen3moe.block_count", 2)
        .kv_u32("qwen3moe.context_length", 4096)
        .kv_u32("qwen3moe.embedding_length", 256)
        .kv_u32("qwen3moe.feed_forward_length", 512)
        .kv_u32("qwen3moe.attention.head_count", 4)
        .kv_u32("qwen3moe.attention.head_count_kv", 2)
        .kv_u32("qwen3moe.expert_count", 8)
        .tensor("token_embd.weight", &[256, 1000], 1);
    for il in 0..2 {
        b = b
            .tensor(&format!("blk.{il}.attn_q.weight"), &[256, 256], 1)
            .tensor(&format!("blk.{il}.ffn_up_exps.weight"), &[256, 512, 8], 1);
    }
    let moe = info(&b.tensor("output.weight", &[256, 1000], 1));
    let experts = 2 * 256 * 512 * 8 * 2;
    let embd = 256 * 1000 * 2;
    let gpu = list(&moe, "-c 1024 -np 1 -ngl all", Device::Cuda);
    assert_eq!(component(&gpu, "weights.mapped").bytes, embd);
    let l = list(&moe, "-c 1024 -np 1 -ngl all --cpu-moe", Device::Cuda);
    // The mapping spans from token_embd to the last expert tensor (q weights in between).
    let mapped = component(&l, "weights.mapped");
    assert!(mapped.bytes >= embd + experts, "{}", mapped.bytes);
    let l = list(
        &moe,
        "-c 1024 -np 1 -ngl all --n-cpu-moe 1 --load-mode none",
        Device::Cuda,
    );
    assert_eq!(component(&l, "weights.allocated").bytes, embd + experts / 2);
}

#[test]
fn a_draft_model_adds_its_own_weights_and_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let draft = dir.path().join("draft.gguf");
    let mut small = shape(1, 1);
    small.layers = 2;
    Builder::llama(&small).write_sparse(&draft).expect("write");
    let f16 = info(&Builder::llama(&shape(1, 1)));
    let line = format!(
        "-c 4096 -np 1 -md {} -ctkd q8_0 -ctvd q8_0",
        draft.display()
    );
    let l = list(&f16, &line, Device::Cpu);
    // 2 layers × 4096 cells × 2 × 256 values in q8_0.
    assert_eq!(
        component(&l, "draft.kv_cache").bytes,
        2 * 4096 * 2 * 256 / 32 * 34
    );
    assert!(component(&l, "draft.weights.mapped").bytes > 2 * 32000 * 1024 * 2);
    assert!(l.processes[0].component("draft.runtime.heap").is_none());
    assert!(l.processes[0].component("draft.prompt_cache").is_none());
}

#[test]
fn a_log_is_matched_buffer_by_buffer() {
    let f16 = info(&Builder::llama(&shape(1, 1)));
    let l = list(&f16, "-c 4096 -np 2", Device::Cpu);
    let e =
        crate::footprint::Estimate::assemble("llama.cpp", &crate::model::Model::default_model(), l)
            .expect("an estimate");
    let log = "\
0.00.066.087 I load_tensors:   CPU_Mapped model buffer size =   297.07 MiB
0.00.066.090 I load_tensors:        CUDA0 model buffer size =   100.00 MiB
0.00.066.634 I llama_context:        CPU  output buffer size =     0.24 MiB
0.00.066.685 I llama_kv_cache:        CPU KV buffer size =    32.00 MiB
0.00.081.580 I sched_reserve:        CPU compute buffer size =    26.51 MiB
0.00.090.000 I llama_kv_cache:        CPU KV buffer size =     4.00 MiB
";
    let m = super::evidence::reconcile(&e, log);
    assert_eq!(m.len(), 6);
    let by_line = |n: usize| m.iter().find(|x| x.line == n).expect("a line");
    assert_eq!(by_line(1).component.as_deref(), Some("weights.mapped"));
    assert!(
        by_line(1)
            .estimated_bytes
            .unwrap()
            .abs_diff(by_line(1).printed_bytes)
            < 10 << 10
    );
    // Device memory is shown but predicts nothing on the host.
    assert!(!by_line(2).on_host);
    assert_eq!(by_line(2).component, None);
    assert_eq!(by_line(4).component.as_deref(), Some("kv_cache"));
    assert_eq!(by_line(4).estimated_bytes, Some(32 << 20));
    assert_eq!(by_line(5).component.as_deref(), Some("compute_buffer"));
    // A second KV line belongs to a second model, which this estimate does not have.
    assert_eq!(by_line(6).component, None);
}

#[test]
fn hybrid_layers_keep_a_state_instead_of_a_kv_cache() {
    let mut b = Builder::new()
        .kv_str("general.architecture", "qwen3next")
        .kv_u32("qwen3next.block_count", 8)
        .kv_u32("qwen3next.context_length", 4096)
        .kv_u32("qwen3next.embedding_length", 256)
        .kv_u32("qwen3next.feed_forward_length", 512)
        .kv_u32("qwen3next.attention.head_count", 4)
        .kv_u32("qwen3next.attention.head_count_kv", 2)
        .kv_u32("qwen3next.ssm.conv_kernel", 4)
        .kv_u32("qwen3next.ssm.inner_size", 512)
        .kv_u32("qwen3next.ssm.state_size", 128)
        .kv_u32("qwen3next.ssm.group_count", 2)
        .tensor("token_embd.weight", &[256, 1000], 1);
    for il in 0..8 {
        b = b.tensor(&format!("blk.{il}.attn_norm.weight"), &[256], 0);
    }
    let hybrid = info(&b);
    let l = list(&hybrid, "-c 4096 -np 2", Device::Cpu);
    // No full_attention_interval key: every 4th layer (3 and 7) has attention.
    let head_dim = 256 / 4;
    assert_eq!(
        component(&l, "kv_cache").bytes,
        2 * 2 * 2048 * 2 * (head_dim * 2) * 2
    );
    // 6 recurrent layers × 2 slots × ((4-1)·(512 + 2·2·128) + 128·512) floats.
    let per = 3 * (512 + 2 * 2 * 128) + 128 * 512;
    assert_eq!(component(&l, "recurrent_state").bytes, 6 * 2 * per * 4);
}
