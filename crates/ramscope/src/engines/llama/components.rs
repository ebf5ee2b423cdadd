//! What one llama-server process holds in host RAM, component by component, each with its
//! formula and where llama.cpp allocates it (`file:line@commit`, docs/llama-host-ram.md).
//!
//! Exact components are computed from the GGUF header and the resolved configuration the
//! way llama.cpp computes them; the compute buffer (sized by ggml's graph allocator) is an
//! estimate fitted to the sizes llama.cpp prints, and the process baseline was measured
//! (`calibrated`, with the stack it was measured on).

use crate::attribute::Category;
use crate::footprint::Component;
use crate::gguf::GgufInfo;
use crate::units::{bytes, Checked};

use super::config::{pad, CacheCap, Resolved};
use super::model::{Hparams, Place, Weight};

/// Where the baseline was measured: the stack, and the models and settings used (kept apart
/// from the ones the validation tests run, docs/llama-host-ram.md §4).
pub const BASELINE_STACK: &str = "llama-server 0c1e570 (llama-cpp-python 0.3.36 sources), CPU build, GCC 12.2, x86_64 Linux; tiny byte-BPE llama models with 1k, 32k and 64k tokens at -c 256 -ub 32";
/// Resident private memory of an idle llama-server before its buffers: the binary's heap,
/// thread stacks and tokenizer tables, which grow with the vocabulary.
const BASE_ANON_BYTES: u64 = 7_550_000;
const BASE_ANON_PER_TOKEN: u64 = 275;
/// Resident code of the CPU build (libllama, libggml-*, libllama-server-impl, libstdc++…).
const BASE_CODE_BYTES: u64 = 16 << 20;

/// Weight types the CPU backend repacks into `CPU_REPACK` on x86-64 with AVX2, when the
/// tensor's rows are a multiple of 8 (ggml/src/ggml-cpu/repack.cpp:4974-5103@0c1e570).
/// Q2_K needs AVX-512; Q5_K, Q6_K and Q8_0 repack on Arm only.
const REPACKED_ON_AVX2: &[&str] = &["Q4_0", "Q4_K", "IQ4_NL", "MXFP4"];

/// The components, and the model file bytes that pass through the page cache without
/// staying mapped in the process (charged to the cgroup, reclaimable).
pub struct Built {
    pub components: Vec<Component>,
    pub page_cache_bytes: u64,
    pub notes: Vec<String>,
}

/// `mmproj`: the multimodal projector's header, and whether it stays on the CPU (no GPU, or
/// `--no-mmproj-offload`).
pub fn build(m: &Hparams, r: &Resolved, mmproj: Option<(&GgufInfo, bool)>) -> Built {
    let at = r.release.commit;
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let first_gpu = r.first_gpu_layer(m.n_layer);
    // --cpu-moe / --n-cpu-moe keep expert tensors on the CPU (common/arg.cpp turns them into
    // tensor overrides to the CPU buffer type).
    let on_cpu = |w: &Weight| match w.place {
        Place::Input => true,
        Place::Layer(il) => il < first_gpu || (il < r.cpu_moe_layers && w.name.contains("_exps")),
        Place::Output => m.n_layer < first_gpu,
    };
    // A GPU's host buffer type comes before the CPU's extra types in the list a CPU weight
    // picks from (src/llama-model.cpp:1078-1125), so repacking needs no GPU or --no-host.
    let repacks = |w: &Weight| {
        r.repack
            && (!r.gpu || r.no_host)
            && w.is_matmul()
            && w.rows % 8 == 0
            && REPACKED_ON_AVX2.contains(&w.kind)
    };
    let cpu: Vec<&Weight> = m.weights.iter().filter(|w| on_cpu(w)).collect();
    let repacked: Vec<&Weight> = cpu.iter().copied().filter(|w| repacks(w)).collect();
    let plain: Vec<&Weight> = cpu.iter().copied().filter(|w| !repacks(w)).collect();
    // ggml-alloc places each tensor at a 32-byte boundary (TENSOR_ALIGNMENT).
    let sum_aligned =
        |ws: &[&Weight]| -> Checked { ws.iter().map(|w| Checked::new(pad(w.bytes, 32))).sum() };
    // The CPU_Mapped buffer spans the file from the first to the last CPU tensor that is
    // used in place; pages outside it are unmapped after load (repacked tensors past its
    // end go with them).
    let span = span_of(&plain);
    // Pinned host memory when a GPU is there and --no-host is not given.
    let host_category = if r.gpu && !r.no_host {
        Category::Pinned
    } else {
        Category::Heap
    };
    let layers_note = if r.gpu {
        format!(
            "CPU tensors: the input layer and layers below {first_gpu} of {} (-ngl {})",
            m.n_layer, r.gpu_layers
        )
    } else {
        "every tensor is on the CPU".to_string()
    };

    let page_cache_bytes;
    if r.loading.mmap {
        // CPU tensors are views into the file mapping, populated at load; ranges only GPU
        // tensors used are unmapped after load (src/llama-model.cpp:1854-1870,
        // src/llama-model-loader.cpp:1269-1277: no host buffer under mmap).
        let mut c = Component::exact(
            "weights.mapped",
            span,
            Category::Weights,
            format!(
                "file span of the {} CPU tensors used in place = {} ({layers_note})",
                plain.len(),
                bytes(span)
            ),
            &format!("src/llama-model.cpp:1854-1870@{at}"),
            at,
        )
        .mapped(span);
        if r.loading.mlock {
            c = c.locked();
        }
        out.push(c);
        // The rest of the file was read once to copy GPU tensors out of the mapping.
        page_cache_bytes = Checked::new(m.file_bytes).saturating_sub(span).raw();
    } else {
        let b = sum_aligned(&plain);
        let mut c = Component::exact(
            "weights.allocated",
            b,
            host_category,
            format!(
                "Σ pad(bytes, 32) of the {} CPU tensors not repacked = {} ({layers_note})",
                plain.len(),
                bytes(b.raw())
            ),
            &format!("src/llama-model.cpp:1871-1930@{at}"),
            at,
        );
        if r.loading.mlock {
            c = c.locked();
        }
        out.push(c);
        // Buffered reads fill the page cache with the whole file; O_DIRECT does not.
        page_cache_bytes = if r.loading.direct_io { 0 } else { m.file_bytes };
        if r.gpu {
            // Four 1 MiB pinned staging buffers upload GPU tensors
            // (src/llama-model-loader.cpp:1505-1516).
            out.push(
                Component::exact(
                    "load.staging",
                    4u64 << 20,
                    Category::Pinned,
                    "4 × 1 MiB pinned upload buffers".into(),
                    &format!("src/llama-model-loader.cpp:1505-1516@{at}"),
                    at,
                )
                .load_only(),
            );
        }
    }
    if !repacked.is_empty() {
        let b = sum_aligned(&repacked);
        let kinds: std::collections::BTreeSet<&str> = repacked.iter().map(|w| w.kind).collect();
        out.push(
            Component::exact(
                "weights.repacked",
                b,
                Category::Heap,
                format!(
                    "Σ bytes of the {} matmul tensors in {} with rows % 8 = 0 = {} (an interleaved copy)",
                    repacked.len(),
                    kinds.into_iter().collect::<Vec<_>>().join(", "),
                    bytes(b.raw())
                ),
                &format!("ggml/src/ggml-cpu/repack.cpp:4974-5103@{at}"),
                at,
            )
            .note(if r.loading.mmap {
                "with mmap the source pages stay resident as well: these tensors cost twice; --no-repack keeps one copy"
            } else {
                "--no-repack would keep these tensors in their file layout (slower matmuls)"
            }),
        );
        if !r.loading.mmap {
            // Without a mapping, each repacked tensor is read into a temporary vector first
            // (src/llama-model-loader.cpp:1739-1742).
            let largest = repacked.iter().map(|w| w.bytes).max().unwrap_or(0);
            out.push(
                Component::exact(
                    "load.read_buffer",
                    largest,
                    Category::Heap,
                    format!("largest repacked tensor = {}", bytes(largest)),
                    &format!("src/llama-model-loader.cpp:1739-1742@{at}"),
                    at,
                )
                .load_only(),
            );
        }
        notes.push(
            "repacking assumed for x86-64 with AVX2 (Arm repacks more types; AVX-512 adds Q2_K)"
                .into(),
        );
    }

    out.extend(kv_cache(m, r, first_gpu));
    out.extend(recurrent_state(m, r, first_gpu));
    out.push(output_buffer(m, r));
    out.push(compute_buffer(m, r, first_gpu));
    out.extend(growth(m, r));
    if let Some((p, on_cpu)) = mmproj {
        if on_cpu {
            // A projector (architecture `clip`) is read whole into a CPU buffer.
            let b = Checked::new(p.tensor_bytes);
            out.push(Component::exact(
                "mmproj.weights",
                b,
                Category::Heap,
                format!(
                    "Σ tensor bytes of {} = {}",
                    p.path.display(),
                    bytes(b.raw())
                ),
                &format!("tools/mtmd/clip.cpp:3643-3665@{at}"),
                at,
            ));
        }
    }
    out.extend(baseline(m, r));
    Built {
        components: out,
        page_cache_bytes,
        notes,
    }
}

/// The file-offset span from the first to the end of the last of `ws`: what the CPU
/// mapping keeps (gaps between CPU tensors included).
fn span_of(ws: &[&Weight]) -> u64 {
    let first = ws.iter().map(|w| w.file_offset).min();
    let last = ws
        .iter()
        .map(|w| w.file_offset.saturating_add(w.bytes))
        .max();
    match (first, last) {
        (Some(f), Some(l)) => l.saturating_sub(f),
        _ => 0,
    }
}

/// K and V for every layer whose cache is in host memory: on the CPU, or every layer under
/// `--no-kv-offload` (src/llama-kv-cache.cpp:209-224). Cleared with zeros right after
/// allocation (:293), so resident at once.
fn kv_cache(m: &Hparams, r: &Resolved, first_gpu: u64) -> Option<Component> {
    let at = r.release.commit;
    // SWA layers keep a window plus a ubatch per stream (src/llama-kv-cache-iswa.cpp:69-80).
    let swa_window = if m.n_swa > 0 && !r.swa_full {
        let per = if r.unified { r.n_seq } else { 1 };
        pad(
            r.n_ctx_seq
                .min(m.n_swa.saturating_mul(per).saturating_add(r.n_ubatch)),
            256,
        )
    } else {
        r.n_ctx_seq
    };
    let mut total = Checked::new(0);
    let mut layers = 0u64;
    let mut swa = 0u64;
    for il in 0..m.n_layer {
        let host = il < first_gpu || !r.kv_offload;
        let i = il as usize;
        if !host || m.n_head_kv.get(i).copied().unwrap_or(0) == 0 {
            continue;
        }
        let is_swa = m.swa_layers.get(i).copied().unwrap_or(false);
        let cells = if is_swa { swa_window } else { r.n_ctx_seq };
        let n_v = if r.flash_attn {
            m.n_embd_v_gqa(i)
        } else {
            m.n_embd_v_gqa_max()
        };
        let k = Checked::new(r.type_k.row_bytes(m.n_embd_k_gqa(i).saturating_mul(cells)));
        let v = Checked::new(r.type_v.row_bytes(n_v.saturating_mul(cells)));
        total = total + (k + v) * r.n_stream;
        layers += 1;
        swa += u64::from(is_swa);
    }
    if layers == 0 {
        return None;
    }
    let widths = format!(
        "n_embd_k_gqa {} / n_embd_v_gqa {}",
        m.n_embd_k_gqa(0),
        if r.flash_attn {
            m.n_embd_v_gqa(0)
        } else {
            m.n_embd_v_gqa_max()
        }
    );
    let swa_text = if swa > 0 {
        format!(", {swa} sliding-window layers with {swa_window} cells")
    } else {
        String::new()
    };
    Some(Component::exact(
        "kv_cache",
        total,
        Category::Heap,
        format!(
            "{layers} layers × {} streams × {} cells × ({widths}) in {}/{}{swa_text} = {}",
            r.n_stream,
            r.n_ctx_seq,
            r.type_k.name,
            r.type_v.name,
            bytes(total.raw())
        ),
        &format!("src/llama-kv-cache.cpp:209-224,291-293@{at}"),
        at,
    ))
}

/// The state of recurrent layers: per host layer, one row of convolution state and one of
/// SSM state per sequence, in f32 (src/llama-memory-recurrent.cpp:85-110@0c1e570), zeroed at
/// allocation like the KV cache. Sizes for Mamba-style layers; other recurrent kinds (RWKV,
/// KDA) are not sized and noted.
fn recurrent_state(m: &Hparams, r: &Resolved, first_gpu: u64) -> Option<Component> {
    let at = r.release.commit;
    let layers = (0..m.n_layer)
        .filter(|&il| {
            m.recurrent_layers
                .get(il as usize)
                .copied()
                .unwrap_or(false)
        })
        .filter(|&il| il < first_gpu || !r.kv_offload)
        .count() as u64;
    if layers == 0 {
        return None;
    }
    let rows = r.n_seq.max(1);
    let b = (Checked::new(m.n_embd_r) + m.n_embd_s) * 4u64 * rows * layers;
    let c = Component::exact(
        "recurrent_state",
        b,
        Category::Heap,
        format!(
            "{layers} recurrent layers × {rows} sequences × (n_embd_r {} + n_embd_s {}) × 4 B = {}",
            m.n_embd_r,
            m.n_embd_s,
            bytes(b.raw())
        ),
        &format!("src/llama-memory-recurrent.cpp:85-110@{at}"),
        at,
    );
    Some(if m.n_embd_r == 0 && m.n_embd_s == 0 {
        c.note("the header gives no Mamba-style state sizes: this layer kind's state is not sized")
    } else {
        c
    })
}

/// Logits (or embeddings) for `n_seq` outputs, reserved at start and only ever grown
/// (src/llama-context.cpp:376-383, 2141-2176); in the output GPU's pinned host buffer when
/// the output layer is offloaded (:2193-2201).
fn output_buffer(m: &Hparams, r: &Resolved) -> Component {
    let at = r.release.commit;
    let width = if r.embedding { m.n_embd } else { m.n_vocab };
    let b = Checked::new(width) * r.n_seq * 4u64;
    let category = if r.gpu_layers > 0 && !r.no_host {
        Category::Pinned
    } else {
        Category::Heap
    };
    Component::exact(
        "output_buffer",
        b,
        category,
        format!(
            "{} {width} × {} slots × 4 B = {}",
            if r.embedding { "n_embd" } else { "n_vocab" },
            r.n_seq,
            bytes(b.raw())
        ),
        &format!("src/llama-context.cpp:2141-2201@{at}"),
        at,
    )
}

/// The CPU backend's compute buffer: ggml's graph allocator sizes it for a worst-case
/// ubatch (src/llama-context.cpp:893-898), so there is no closed form. Fitted to the sizes
/// llama-server prints for llama-architecture models (docs/llama-host-ram.md §3): the FFN
/// activations of a ubatch, or a wide residual stream, plus the attention mask over the
/// cells of one stream (f16 with flash attention; without it the f32 scores of every head).
/// Touched as batches run: resident in full after a prompt of a ubatch or more.
fn compute_buffer(m: &Hparams, r: &Resolved, first_gpu: u64) -> Component {
    let at = r.release.commit;
    let ub = Checked::new(r.n_ubatch);
    let full_offload = r.gpu && first_gpu == 0;
    let (b, formula) = if full_offload {
        // Only the input embeddings are computed on the CPU.
        let b = ub * m.n_embd * 4u64 * 2u64;
        (
            b,
            format!(
                "ubatch {} × n_embd {} × 4 B × 2 = {}",
                r.n_ubatch,
                m.n_embd,
                bytes(b.raw())
            ),
        )
    } else {
        let per_token = (Checked::new(m.n_ff) * 12u64 + Checked::new(m.n_embd) * 16u64)
            .max(Checked::new(m.n_embd) * 20u64);
        let mask = if r.flash_attn {
            ub * r.n_ctx_seq * 2u64
        } else {
            ub * r.n_ctx_seq * m.n_head * 4u64
        };
        let b = ub * per_token + mask;
        (
            b,
            format!(
                "ubatch {} × max(12·n_ff {} + 16·n_embd {}, 20·n_embd) + mask {} × {} cells × {} = {}",
                r.n_ubatch,
                m.n_ff,
                m.n_embd,
                r.n_ubatch,
                r.n_ctx_seq,
                if r.flash_attn {
                    "2 B".to_string()
                } else {
                    format!("{} heads × 4 B", m.n_head)
                },
                bytes(b.raw())
            ),
        )
    };
    let category = if r.gpu && !r.no_host {
        Category::Pinned
    } else {
        Category::Heap
    };
    // Fitted on dense attention models; recurrent and expert layers build other graphs.
    let unusual = m.recurrent || m.n_expert > 0;
    let (lo, hi) = if unusual { (0.5, 2.0) } else { (0.75, 1.3) };
    let low = Checked::from_f64(b.raw() as f64 * lo);
    let high = Checked::from_f64(b.raw() as f64 * hi);
    Component::exact(
        "compute_buffer",
        b,
        category,
        formula,
        &format!("src/llama-context.cpp:405-420,893-898@{at}"),
        at,
    )
    .range(low, high)
    .note("resident in full once a prompt of a ubatch or more has run")
}

/// Memory that grows with traffic: the prompt cache and, for sliding-window and recurrent
/// models, context checkpoints.
fn growth(m: &Hparams, r: &Resolved) -> Vec<Component> {
    let at = r.release.commit;
    let mut out = Vec::new();
    // One sequence's state per token: K and V of every layer.
    let per_token: Checked = (0..m.n_layer as usize)
        .filter(|&i| m.n_head_kv.get(i).copied().unwrap_or(0) > 0)
        .map(|i| {
            Checked::new(r.type_k.row_bytes(m.n_embd_k_gqa(i)))
                + r.type_v.row_bytes(m.n_embd_v_gqa(i))
        })
        .sum();
    match r.cache {
        CacheCap::Off => {}
        CacheCap::Mib(mib) => out.push(
            Component::exact(
                "prompt_cache",
                Checked::new(mib) * (1u64 << 20),
                Category::Heap,
                format!(
                    "--cache-ram {mib} MiB: saved prompt states ({} per token) until the cap",
                    bytes(per_token.raw())
                ),
                &format!("tools/server/server-task.cpp:1722-1757@{at}"),
                at,
            )
            .growth("--cache-ram / LLAMA_ARG_CACHE_RAM")
            .note(
                "checked before each new entry: the cap holds, plus at most the entry being saved",
            ),
        ),
        CacheCap::NoLimit => {
            // Without a byte limit only the token limit, the context size, holds
            // (tools/server/server-task.cpp:1883-1890).
            let b = per_token * r.n_ctx;
            out.push(
                Component::exact(
                    "prompt_cache",
                    b,
                    Category::Heap,
                    format!(
                        "--cache-ram -1: up to the context's {} tokens × {} = {}",
                        r.n_ctx,
                        bytes(per_token.raw()),
                        bytes(b.raw())
                    ),
                    &format!("tools/server/server-task.cpp:1883-1890@{at}"),
                    at,
                )
                .range(b, b * 2u64)
                .growth("--cache-ram / LLAMA_ARG_CACHE_RAM (now no limit)"),
            );
        }
    }
    let swa_layers = m.swa_layers.iter().filter(|s| **s).count() as u64;
    if (swa_layers > 0 && !r.swa_full) || m.recurrent {
        // A checkpoint saves the part of a slot's state that cannot be rolled back: the
        // sliding-window cells (or the recurrent state).
        let per_slot = per_token * m.n_swa.max(r.n_ubatch) * swa_layers.max(1) / m.n_layer.max(1);
        let b = per_slot * r.ctx_checkpoints * r.n_seq;
        out.push(
            Component::exact(
                "context_checkpoints",
                b,
                Category::Heap,
                format!(
                    "{} slots × {} checkpoints × ~{} each",
                    r.n_seq,
                    r.ctx_checkpoints,
                    bytes(per_slot.raw())
                ),
                &format!("tools/server/server-context.cpp@{at}"),
                at,
            )
            .range(Checked::new(0), b * 2u64)
            .growth("--ctx-checkpoints"),
        );
    }
    out
}

/// The process without its buffers: measured on [`BASELINE_STACK`].
fn baseline(m: &Hparams, r: &Resolved) -> Vec<Component> {
    let at = r.release.commit;
    let anon = Checked::new(BASE_ANON_BYTES) + Checked::new(BASE_ANON_PER_TOKEN) * m.n_vocab;
    let mut out = vec![
        Component::exact(
            "runtime.heap",
            anon,
            Category::Heap,
            format!(
                "{} + {} B × n_vocab {} (tokenizer tables)",
                bytes(BASE_ANON_BYTES),
                BASE_ANON_PER_TOKEN,
                m.n_vocab
            ),
            "docs/llama-host-ram.md §4",
            at,
        )
        .calibrated(
            BASELINE_STACK,
            Checked::from_f64(anon.raw() as f64 * 0.7),
            Checked::from_f64(anon.raw() as f64 * 1.6),
        ),
        Component::exact(
            "runtime.code",
            BASE_CODE_BYTES,
            Category::CodeOther,
            format!(
                "resident code of the CPU build = {}",
                bytes(BASE_CODE_BYTES)
            ),
            "docs/llama-host-ram.md §4",
            at,
        )
        .calibrated(BASELINE_STACK, 12u64 << 20, 24u64 << 20),
    ];
    if r.gpu {
        out.push(
            Component::exact(
                "runtime.cuda",
                300u64 << 20,
                Category::CodeCuda,
                "CUDA runtime, driver and cuBLAS: code and host allocations".into(),
                "docs/llama-host-ram.md §4",
                at,
            )
            .range(150u64 << 20, 800u64 << 20)
            .note("not measured for llama-server; the range spans CUDA 12 builds"),
        );
    }
    out
}
