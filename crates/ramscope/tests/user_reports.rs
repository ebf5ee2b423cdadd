//! Real users' reports as test cases. Each test builds the model a user ran as a sparse GGUF
//! (the model's published architecture; tensor types by llama.cpp's quantization recipe,
//! `llama_tensor_get_type` in src/llama-quant.cpp), runs the real `ramscope fit --json` on the
//! user's command line against the user's limit or host, and checks the verdict against what
//! happened to them. docs/user-report-cases.md has one row per case (and the cases left out,
//! with why); shapes marked approximate there are the nearest published architecture.

use reports::{fit, gib, steady_total, Net, Quant, GIB};

/// Room to spare: a host that is not the bound. The limit is always given, so the cgroup the
/// tests run in does not become it.
const ROOMY: [&str; 4] = ["--node-memory", "1Ti", "--memory-limit", "1Ti"];

fn verdict(json: &serde_json::Value, code: i32) -> (Option<&str>, Option<bool>, i32) {
    (json["verdict"].as_str(), json["certain"].as_bool(), code)
}

// ---------------------------------------------------------------------------------------
// llama.cpp PR #24156 and issue #16761: with mmap, a repacked tensor's source pages stay
// resident beside the repacked copy. The PR dropped them after repacking and measured RSS
// before and after; `--no-repack` keeps one copy as well, so ramscope's estimate with and
// without `--no-repack` must differ by what the PR saved. The command lines are not given:
// the difference does not depend on the context or slots (only the repacked copy differs),
// so a small context is used.
// ---------------------------------------------------------------------------------------

/// ramscope's steady state (GiB) by default, and what `--no-repack` takes off it.
fn repack_saving(net: &Net, quant: Quant) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = net.write(quant, dir.path());
    let steady = |flags: &str| {
        let (json, code) = fit(&ROOMY, "cpu", &model.argv(flags));
        assert_eq!(
            verdict(&json, code),
            (Some("fits"), Some(true), 0),
            "{json:#}"
        );
        steady_total(&json)
    };
    let with = steady("-c 4096 -np 1");
    let without = steady("-c 4096 -np 1 --no-repack");
    (gib(with), gib(with - without))
}

/// Tolerance of the savings below: the PR prints GiB to two decimals (±0.005 each side), the
/// GGUF it measured may have been quantized with an importance matrix (for Q4_0 that moves
/// the first eighth of ffn_down to Q4_1, 0.04 GiB on Llama-3.2-3B), and pages at the edges
/// of each repacked range are kept (rounded inward). 5% covers these; a missing or extra
/// family of tensors (all attention, all down projections) is 10–30% and fails.
const SAVING_TOLERANCE: f64 = 0.05;

fn assert_saving(case: &str, estimated: f64, reported: f64) {
    let off = (estimated - reported).abs() / reported;
    eprintln!("{case}: repacked copy {estimated:.3} GiB, saved {reported:.3} GiB");
    assert!(
        off <= SAVING_TOLERANCE,
        "{case}: ramscope's repacked copy is {estimated:.2} GiB, the report saved {reported:.2} GiB ({:.1}% off)",
        off * 100.0
    );
}

#[test]
fn pr24156_llama_3_2_3b_q4_0_repack_costs_what_reclaiming_saved() {
    // Reported: 3.73 GiB → 2.30 GiB, −1.43 GiB.
    let (_, saving) = repack_saving(&Net::llama_3_2_3b(), Quant::Q4_0);
    assert_saving("Llama-3.2-3B Q4_0", saving, 1.43);
}

#[test]
fn pr24156_deepseek_v2_lite_q4_k_m_repack_costs_what_reclaiming_saved() {
    // Reported: 16.19 GiB → 10.75 GiB, −5.44 GiB.
    let (_, saving) = repack_saving(&Net::deepseek_v2_lite(), Quant::Q4_K_M);
    assert_saving("DeepSeek-V2-Lite Q4_K_M", saving, 5.44);
}

#[test]
fn pr24156_qwen3_30b_a3b_q4_k_m_repack_costs_what_reclaiming_saved() {
    // Reported: ~34 GiB → ~21 GiB, −13.0 GiB.
    let (_, saving) = repack_saving(&Net::qwen3_30b_a3b(), Quant::Q4_K_M);
    assert_saving("Qwen3-30B-A3B Q4_K_M", saving, 13.0);
}

#[test]
fn issue16761_magistral_small_iq4_nl_repack_doubles_and_no_mmap_does_not() {
    // `Maximum resident set size` (KiB): mmap + repack 25874408, mmap + --no-repack 13870792,
    // --no-mmap + repack 13870632.
    let kib = |k: f64| k / (1u64 << 20) as f64;
    let (mmap_repack, saving) = repack_saving(&Net::magistral_small(), Quant::IQ4_NL);
    assert_saving(
        "Magistral-Small-2506 IQ4_NL",
        saving,
        kib(25874408.0 - 13870792.0),
    );
    // Without mmap the source is read into the repacked buffer, not kept: one copy, like
    // --no-repack. (No command line in the report either; the same -c 4096 -np 1.)
    let dir = tempfile::tempdir().expect("temp dir");
    let model = Net::magistral_small().write(Quant::IQ4_NL, dir.path());
    let (no_mmap, code) = fit(&ROOMY, "cpu", &model.argv("-c 4096 -np 1 --load-mode none"));
    assert_eq!(verdict(&no_mmap, code), (Some("fits"), Some(true), 0));
    assert_saving(
        "Magistral-Small-2506 IQ4_NL, --no-mmap",
        mmap_repack - gib(steady_total(&no_mmap)),
        kib(25874408.0 - 13870632.0),
    );
}

// ---------------------------------------------------------------------------------------
// guelfoweb/orbit (llama.cpp b9551 through its own binding: one sequence, ctx 8192, batch
// 256, ubatch 128, flash attention auto; its README's "Peak RAM" table and --low-memory
// section): the same load as this llama-server command line. The binding has no
// server-side prompt cache, so llama-server's is off.
// ---------------------------------------------------------------------------------------

const ORBIT: &str = "-c 8192 -np 1 -b 256 -ub 128 --cache-ram 0";

/// Tolerance of an absolute peak-RSS comparison: the compute buffer is an estimate (−25%…+30%
/// of a few hundred MiB), the baseline is calibrated on another build, and the shape and
/// recipe are the published ones, not the files' own headers: 5% of the peak.
const PEAK_TOLERANCE: f64 = 0.05;

fn assert_peak(case: &str, estimated: f64, reported: f64) {
    let off = (estimated - reported).abs() / reported;
    eprintln!("{case}: steady state {estimated:.3} GiB, peak {reported:.3} GiB");
    assert!(
        off <= PEAK_TOLERANCE,
        "{case}: ramscope's steady state is {estimated:.2} GiB, the report's peak RSS {reported:.2} GiB ({:.1}% off)",
        off * 100.0
    );
}

#[test]
fn orbit_qwen3_coder_30b_a3b_on_64_gib_repack_and_low_memory_peaks() {
    // NUC10, 64 GB: peak RSS ~31.3 GiB by default, ~18.3 GiB with --low-memory (repacking
    // off); 20 GiB was qualified as a process-memory limit for --low-memory.
    let dir = tempfile::tempdir().expect("temp dir");
    let model = Net::qwen3_30b_a3b().write(Quant::Q4_K_M, dir.path());
    let nuc = ["--node-memory", "64Gi", "--memory-limit", "64Gi"];
    let (default, code) = fit(&nuc, "cpu", &model.argv(ORBIT));
    assert_eq!(
        verdict(&default, code),
        (Some("fits"), Some(true), 0),
        "{default:#}"
    );
    assert_peak(
        "Qwen3-Coder-30B-A3B default",
        gib(steady_total(&default)),
        31.3,
    );

    let low_memory = format!("{ORBIT} --no-repack");
    let qualified = ["--memory-limit", "20Gi", "--node-memory", "64Gi"];
    let (low, code) = fit(&qualified, "cpu", &model.argv(&low_memory));
    assert_eq!(
        verdict(&low, code),
        (Some("fits"), Some(true), 0),
        "{low:#}"
    );
    assert_peak(
        "Qwen3-Coder-30B-A3B --low-memory",
        gib(steady_total(&low)),
        18.3,
    );
}

#[test]
fn orbit_qwen3_6_35b_a3b_peak_on_64_gib() {
    // NUC10, 64 GB: "Peak RAM ~36.4 GiB" for Qwen3.6-35B-A3B Q4_K_M (repacking on).
    let dir = tempfile::tempdir().expect("temp dir");
    let model = Net::qwen3_6_35b_a3b("Qwen3.6-35B-A3B").write(Quant::Q4_K_M, dir.path());
    let nuc = ["--node-memory", "64Gi", "--memory-limit", "64Gi"];
    let (json, code) = fit(&nuc, "cpu", &model.argv(ORBIT));
    assert_eq!(
        verdict(&json, code),
        (Some("fits"), Some(true), 0),
        "{json:#}"
    );
    assert_peak("Qwen3.6-35B-A3B", gib(steady_total(&json)), 36.4);
}

#[test]
fn orbit_353_ornith_35b_a3b_swaps_on_a_30_gib_laptop_until_repacking_is_off() {
    // guelfoweb/orbit#353: Ornith-1.5-35B-A3B Q4_K_M (a post-tune of Qwen3.6-35B-A3B, same
    // architecture) on a 30 GiB laptop: peak RSS 30.9 GB with 7.6 GB swapped; with
    // repacking off 22.1 GB and no swap.
    let dir = tempfile::tempdir().expect("temp dir");
    let model = Net::qwen3_6_35b_a3b("Ornith-1.5-35B").write(Quant::Q4_K_M, dir.path());
    let laptop = ["--node-memory", "30Gi", "--memory-limit", "30Gi"];
    let gb = |g: f64| g * 1e9 / GIB as f64;

    let (default, code) = fit(&laptop, "cpu", &model.argv(ORBIT));
    assert_eq!(
        verdict(&default, code),
        (Some("page-cache-thrash"), Some(true), 4),
        "{default:#}"
    );
    // What the process needed: resident + swapped.
    assert_peak(
        "Ornith default, RSS + swap",
        gib(steady_total(&default)),
        gb(30.9 + 7.6),
    );

    let (off, code) = fit(&laptop, "cpu", &model.argv(&format!("{ORBIT} --no-repack")));
    assert_eq!(
        verdict(&off, code),
        (Some("fits"), Some(true), 0),
        "{off:#}"
    );
    assert_peak("Ornith --no-repack", gib(steady_total(&off)), gb(22.1));
}

/// Behind the Ornith and Qwen3.6 figures: in a qwen35moe model only every
/// `full_attention_interval`-th layer has a KV cache (llama.cpp marks the others recurrent),
/// so 8192 more tokens cost 10 layers × 8192 × (K 512 + V 512) × 2 B = 160 MiB, plus the
/// attention mask's 128 × 8192 × 2 B.
#[test]
#[ignore = "modelling gap: qwen35/qwen35moe (and qwen3next) layers are recurrent except every full_attention_interval-th; the header's head_count_kv is one number, so the KV cache is sized for all 40 layers, 4x too large (640 MiB instead of 160 MiB per 8192 tokens here), and the recurrent state (about 2 MiB per Gated DeltaNet layer and sequence) is not sized"]
fn qwen35moe_kv_cache_grows_with_its_attention_layers_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = Net::qwen3_6_35b_a3b("Qwen3.6-35B-A3B").write(Quant::Q4_K_M, dir.path());
    let steady = |ctx: u64| {
        let flags = format!("-c {ctx} -np 1 -b 256 -ub 128 --cache-ram 0 --no-repack");
        steady_total(&fit(&ROOMY, "cpu", &model.argv(&flags)).0)
    };
    let per_8192 = steady(16384) - steady(8192);
    let expected = 10 * 8192 * 1024 * 2 + 128 * 8192 * 2;
    assert!(
        per_8192.abs_diff(expected) <= expected / 20,
        "8192 tokens cost {} MiB, llama.cpp allocates {} MiB",
        per_8192 >> 20,
        expected >> 20
    );
}

// ---------------------------------------------------------------------------------------
// Prompt cache: joryirving/home-ops#9818. LLMKube 0.9.25 made the 16Gi memory request the
// limit too; llama-nvidia (Qwen3.8-27B UD-Q4_K_XL on a 24 GB RTX 3090, every layer on the
// GPU, `--cache-ram 40960`) OOM-looped 11 times, and was set to 48Gi.
// ---------------------------------------------------------------------------------------

#[test]
fn home_ops_9818_a_40_gib_prompt_cache_ooms_a_16_gib_pod_later_not_at_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = Net::qwen3_8_27b().write(Quant::Q4_K_M, dir.path());
    // The InferenceService's settings and extra flags
    // (kubernetes/apps/base/llm/litellm/llama-nvidia.yaml) as LLMKube passes them, but the
    // projector file (`--mmproj mmproj-F16.gguf`: ramscope reads only language models'
    // headers) and the reasoning-budget message (words with spaces, no memory).
    let line = model.argv(concat!(
        "-ngl 99 -c 140000 -np 1 -fa on -b 4096 -ub 512 -ctk q8_0 -ctv q8_0 --jinja ",
        "--reasoning-budget 32768 --alias llama-nvidia --no-mmproj-offload ",
        "--image-min-tokens 1024 --cont-batching --spec-type draft-mtp --spec-draft-p-min 0.75 ",
        "--spec-draft-n-max 3 --spec-draft-type-k q8_0 --spec-draft-type-v q8_0 -sps 0.75 ",
        "--cache-prompt --cache-ram 40960 --kv-unified --temp 1 --top-p 0.95 --top-k 20 ",
        "--min-p 0 --presence-penalty 0 --repeat-penalty 1 --threads 6 --threads-batch 12 ",
        "--mmap --chat-template-kwargs {\"reasoning_effort\":\"medium\"} --n-predict 40960"
    ));
    let node = "123Gi"; // the node's allocatable memory, from the PR
    let (small, code) = fit(
        &["--memory-limit", "16Gi", "--node-memory", node],
        "cuda",
        &line,
    );
    assert_eq!(
        verdict(&small, code),
        (Some("oom-later"), Some(true), 3),
        "{small:#}"
    );
    let load = small["figures"]["load_non_reclaimable"]["bytes"]
        .as_u64()
        .unwrap();
    assert!(load < 16 * GIB, "it loads: {} GiB", gib(load));
    let cache = small["growth"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["component"] == "prompt_cache")
        .expect("a prompt cache");
    assert_eq!(cache["each"]["bytes"].as_u64(), Some(40960 << 20));

    let (big, code) = fit(
        &["--memory-limit", "48Gi", "--node-memory", node],
        "cuda",
        &line,
    );
    assert_ne!(code, 3, "48Gi runs: {big:#}");
}

#[test]
#[ignore = "modelling gap: a projector's GGUF (general.architecture clip, keys clip.vision.*) is read as a language model and refused (no clip.block_count), so the F16 projector --no-mmproj-offload keeps in host RAM cannot be counted"]
fn home_ops_9818_with_its_projector_on_the_cpu() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = Net::qwen3_8_27b().write(Quant::Q4_K_M, dir.path());
    let (projector, bytes) = reports::projector_f16(dir.path());
    let flags = "-ngl 99 -c 140000 -np 1 -fa on -ctk q8_0 -ctv q8_0 --cache-ram 40960";
    let without = model.argv(flags);
    let with = model.argv(&format!("{flags} --no-mmproj-offload --mmproj {projector}"));
    let node = "123Gi";
    let (small, code) = fit(
        &["--memory-limit", "16Gi", "--node-memory", node],
        "cuda",
        &with,
    );
    assert_eq!(verdict(&small, code), (Some("oom-later"), Some(true), 3));
    let (bare, _) = fit(
        &["--memory-limit", "16Gi", "--node-memory", node],
        "cuda",
        &without,
    );
    let added = steady_total(&small) - steady_total(&bare);
    assert!(
        added >= bytes * 9 / 10,
        "the projector adds {} GiB",
        gib(added)
    );
    let (big, code) = fit(
        &["--memory-limit", "48Gi", "--node-memory", node],
        "cuda",
        &with,
    );
    assert_ne!(code, 3, "48Gi runs: {big:#}");
}

// ---------------------------------------------------------------------------------------
// tscibilia/home-ops#3735: Qwen3-Embedding-0.6B Q8_0 on an Intel iGPU through Vulkan, the
// iGPU a virtio-gpu render node of a VM, so what the GPU holds is the VM's RAM and charged
// to the container. LLMKube 0.9.25 made the 2Gi request a limit: OOMKilled while loading
// ("intel: execbuf ENOMEM" last); 4Gi works.
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "modelling gap: no integrated-GPU (Vulkan, UMA) device. As a CPU host the load peak is 1.75 GiB (1.67-1.84), under the 2Gi that killed it: missing the Vulkan build's runtime (Mesa driver and shader compiler; the calibrated baseline is a CPU build's), the backend's host staging buffers, and whether flash attention runs on the device (without it the scores are ub x cells x heads x 4 B = 1 GiB)"]
fn home_ops_3735_embedding_model_on_a_virtualized_igpu_ooms_2_gib_at_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = Net::qwen3_embedding_0_6b().write(Quant::Q8_0, dir.path());
    // kubernetes/apps/ai/memini/app/resources/memini-embed.yaml, as LLMKube passes it.
    let line = model.argv(concat!(
        "-ngl 99 -c 8192 -np 2 -b 8192 -ub 4096 --embedding --pooling last ",
        "--cache-ram 0 --no-mmap"
    ));
    // The integrated GPU's memory is host memory: modelled as a host without a GPU, where
    // every buffer is in RAM.
    let (small, code) = fit(
        &["--memory-limit", "2Gi", "--node-memory", "1Ti"],
        "cpu",
        &line,
    );
    assert_eq!(
        verdict(&small, code),
        (Some("oom-at-load"), Some(true), 3),
        "{small:#}"
    );
    let (big, code) = fit(
        &["--memory-limit", "4Gi", "--node-memory", "1Ti"],
        "cpu",
        &line,
    );
    assert_ne!(code, 3, "4Gi works: {big:#}");
}

/// The binary, the GGUF stand-ins and llama.cpp's quantization recipe.
mod reports {
    use std::path::Path;
    use std::process::Command;

    use ramscope::gguf::builder::Builder;
    use serde_json::Value;

    pub const GIB: u64 = 1 << 30;

    pub fn gib(bytes: u64) -> f64 {
        bytes as f64 / GIB as f64
    }

    /// `ramscope fit --json LIMITS --device DEVICE -- llama-server LINE`, with a clean
    /// environment (no LLAMA_ARG_* of the machine running the tests); the JSON and the exit
    /// status, which must be a verdict's (0, 3 or 4).
    pub fn fit(limits: &[&str], device: &str, line: &[String]) -> (Value, i32) {
        let home = tempfile::tempdir().expect("temp dir");
        let out = Command::new(env!("CARGO_BIN_EXE_ramscope"))
            .args(["fit", "--json"])
            .args(limits)
            .args(["--device", device, "--", "llama-server"])
            .args(line)
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .expect("run ramscope");
        let code = out.status.code().unwrap_or(-1);
        assert!(
            [0, 3, 4].contains(&code),
            "ramscope fit {line:?} exited {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
        });
        (json, code)
    }

    /// The pod's steady state, every kind of memory (what RSS counts: mapped weights too).
    pub fn steady_total(json: &Value) -> u64 {
        json["pod"]["phases"]["steady"]["total"]["bytes"]
            .as_u64()
            .unwrap_or_else(|| panic!("no steady total: {json:#}"))
    }

    /// A vision projector in F16 as llama.cpp's converter writes one (`general.architecture`
    /// clip, `clip.vision.*` keys, `v.blk.N.*` tensors): a SigLIP-so400m-sized tower (27
    /// blocks, 1152 wide, FFN 4304), the nearest published shape to Qwen3.5's. Its path and
    /// tensor bytes.
    pub fn projector_f16(dir: &Path) -> (String, u64) {
        let (blocks, width, ffn) = (27u64, 1152u64, 4304u64);
        let mut b = Builder::new()
            .kv_str("general.architecture", "clip")
            .kv_u32("clip.vision.block_count", blocks as u32)
            .kv_u32("clip.vision.embedding_length", width as u32)
            .kv_u32("clip.vision.feed_forward_length", ffn as u32);
        let mut elements = 0;
        for il in 0..blocks {
            for (name, dims) in [
                ("attn_qkv", [width, 3 * width]),
                ("attn_out", [width, width]),
                ("ffn_up", [width, ffn]),
                ("ffn_down", [ffn, width]),
            ] {
                b = b.tensor(&format!("v.blk.{il}.{name}.weight"), &dims, F16);
                elements += dims[0] * dims[1];
            }
        }
        let path = dir.join("mmproj-F16.gguf");
        b.write_sparse(&path).expect("write the projector");
        (path.to_string_lossy().into_owned(), elements * 2)
    }

    // ggml type ids (ggml.h).
    const F32: u32 = 0;
    const F16: u32 = 1;
    const Q4_0: u32 = 2;
    const Q5_0: u32 = 6;
    const Q5_1: u32 = 7;
    const Q8_0: u32 = 8;
    const Q4_K: u32 = 12;
    const Q5_K: u32 = 13;
    const Q6_K: u32 = 14;
    const IQ4_NL: u32 = 20;

    /// Elements per block of the types used here.
    fn block(type_id: u32) -> u64 {
        match type_id {
            F32 | F16 => 1,
            Q4_K | Q5_K | Q6_K => 256,
            _ => 32,
        }
    }

    /// A `llama-quantize` file type.
    #[allow(non_camel_case_types)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Quant {
        Q4_0,
        Q4_K_M,
        IQ4_NL,
        Q8_0,
    }

    impl Quant {
        fn default_type(self) -> u32 {
            match self {
                Quant::Q4_0 => Q4_0,
                Quant::Q4_K_M => Q4_K,
                Quant::IQ4_NL => IQ4_NL,
                Quant::Q8_0 => Q8_0,
            }
        }
    }

    /// The layer a tensor name belongs to (`blk.N.`), -1 for the others.
    fn layer_of(name: &str) -> i64 {
        name.strip_prefix("blk.")
            .and_then(|r| r.split('.').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(-1)
    }

    /// `llama_tensor_get_type` of llama.cpp's src/llama-quant.cpp for the file types above:
    /// which tensors are quantized at all, the per-tensor exceptions (output and tied
    /// embeddings in Q6_K, more bits for some attn_v and ffn_down layers, attn_qkv in Q5_K
    /// for Q4_K_M), and the fallback when a row is not whole blocks (Q4_K → Q5_0, Q5_K →
    /// Q5_1, Q6_K → Q8_0). Counters run over the tensors in the loader's order (by layer,
    /// then by name), as llama-quantize walks them.
    struct Recipe {
        quant: Quant,
        imatrix: bool,
        has_output: bool,
        n_layer: i64,
        n_expert: u64,
        n_gqa: u64,
        n_attention_wv: i64,
        i_attention_wv: i64,
        i_ffn_down: i64,
    }

    fn use_more_bits(i: i64, n: i64) -> bool {
        // C's % truncates like Rust's: a negative left side never gives 2.
        i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
    }

    impl Recipe {
        fn type_for(&mut self, name: &str, dims: &[u64]) -> u32 {
            let quantized = name.ends_with("weight")
                && dims.len() >= 2
                && !name.contains("_norm.weight")
                && !name.contains("ffn_gate_inp.weight")
                && !name.contains("ssm_conv1d.weight");
            if !quantized {
                return F32;
            }
            let q = self.quant;
            let default = q.default_type();
            let mut t = default;
            let ne0 = dims[0];
            if name == "output.weight" || (!self.has_output && name == "token_embd.weight") {
                t = if ne0 % block(default) != 0 {
                    Q8_0
                } else if default != Q8_0 {
                    Q6_K
                } else {
                    default
                };
            } else if name == "token_embd.weight" {
                // The file type's own.
            } else if name.contains("attn_v.weight") {
                if q == Quant::IQ4_NL && self.n_gqa >= 4 {
                    t = Q5_K;
                } else if q == Quant::Q4_K_M
                    && use_more_bits(self.i_attention_wv, self.n_attention_wv)
                {
                    t = Q6_K;
                }
                if self.n_expert == 8 {
                    t = Q8_0;
                }
                self.i_attention_wv += 1;
            } else if name.contains("attn_k.weight") {
                if self.n_expert == 8 {
                    t = Q8_0;
                }
            } else if name.contains("attn_q.weight") {
                // No exception for these file types.
            } else if name.contains("ffn_down") {
                // With experts the layer is read from the name, else counted.
                let i = if self.n_expert > 1 {
                    layer_of(name)
                } else {
                    self.i_ffn_down
                };
                let n = self.n_layer;
                if q == Quant::Q4_K_M && use_more_bits(i, n) {
                    t = Q6_K;
                } else if q == Quant::IQ4_NL && i < n / 8 && !self.imatrix {
                    t = Q5_K;
                }
                self.i_ffn_down += 1;
            } else if name.contains("attn_output.weight") {
                if self.n_expert == 8 && matches!(q, Quant::Q4_K_M | Quant::IQ4_NL) {
                    t = Q5_K;
                }
            } else if name.contains("attn_qkv.weight") && q == Quant::Q4_K_M {
                t = Q5_K;
            }
            if ne0 % block(t) != 0 {
                t = match t {
                    Q4_K => Q5_0,
                    Q5_K => Q5_1,
                    Q6_K => Q8_0,
                    other => other,
                };
                if ne0 % block(t) != 0 {
                    t = F16;
                }
            }
            t
        }
    }

    /// A model's architecture as its GGUF header says it: keys under `<arch>.`, the
    /// vocabulary, and every tensor's name and dimensions (ne0 first: the row length).
    pub struct Net {
        arch: &'static str,
        name: String,
        kv: Vec<(&'static str, u32)>,
        vocab: u64,
        n_layer: u64,
        n_expert: u64,
        n_gqa: u64,
        imatrix: bool,
        tensors: Vec<(String, Vec<u64>)>,
    }

    /// A written stand-in (removed with its directory).
    pub struct Written {
        path: String,
    }

    impl Written {
        /// `-m FILE` and the flags, as llama-server's argument words.
        pub fn argv(&self, flags: &str) -> Vec<String> {
            let mut words = vec!["-m".to_string(), self.path.clone()];
            words.extend(flags.split_whitespace().map(String::from));
            words
        }
    }

    impl Net {
        fn new(arch: &'static str, name: &str, n_layer: u64, vocab: u64) -> Net {
            Net {
                arch,
                name: name.to_string(),
                kv: vec![("block_count", n_layer as u32)],
                vocab,
                n_layer,
                n_expert: 0,
                n_gqa: 1,
                imatrix: false,
                tensors: Vec::new(),
            }
        }

        fn kv(mut self, key: &'static str, value: u64) -> Net {
            self.kv.push((key, value as u32));
            self
        }

        fn t(&mut self, name: &str, dims: &[u64]) {
            self.tensors.push((name.to_string(), dims.to_vec()));
        }

        fn lt(&mut self, il: u64, name: &str, dims: &[u64]) {
            self.t(&format!("blk.{il}.{name}.weight"), dims);
        }

        /// Quantized with an importance matrix (changes a few exceptions).
        fn with_imatrix(mut self) -> Net {
            self.imatrix = true;
            self
        }

        /// Writes the header and a sparse file of the model's full size into `dir`.
        pub fn write(&self, quant: Quant, dir: &Path) -> Written {
            // llama-quantize walks (and writes) the tensors by layer, then by name; the
            // ones outside a layer first.
            let mut order: Vec<&(String, Vec<u64>)> = self.tensors.iter().collect();
            order.sort_by(|a, b| (layer_of(&a.0), &a.0).cmp(&(layer_of(&b.0), &b.0)));
            let count = |pat: &[&str]| {
                order
                    .iter()
                    .filter(|(n, _)| pat.iter().any(|p| n.contains(p)))
                    .count() as i64
            };
            let mut recipe = Recipe {
                quant,
                imatrix: self.imatrix,
                has_output: self.tensors.iter().any(|(n, _)| n == "output.weight"),
                n_layer: self.n_layer as i64,
                n_expert: self.n_expert,
                n_gqa: self.n_gqa,
                n_attention_wv: count(&["attn_v.weight", "attn_qkv.weight", "attn_kv_b.weight"]),
                i_attention_wv: 0,
                i_ffn_down: 0,
            };
            let mut b = Builder::new()
                .kv_str("general.architecture", self.arch)
                .kv_str("general.name", &self.name);
            for (key, value) in &self.kv {
                b = b.kv_u32(&format!("{}.{key}", self.arch), *value);
            }
            b = b
                .kv_str("tokenizer.ggml.model", "gpt2")
                .kv_str_array("tokenizer.ggml.tokens", self.vocab as usize);
            for (name, dims) in order {
                let type_id = recipe.type_for(name, dims);
                b = b.tensor(name, dims, type_id);
            }
            let path = dir.join(format!("{}.gguf", self.name));
            b.write_sparse(&path).expect("write the stand-in");
            Written {
                path: path.to_string_lossy().into_owned(),
            }
        }

        /// Norms and the input/output layers of a decoder.
        fn ends(&mut self, hidden: u64, tied: bool) {
            self.t("token_embd.weight", &[hidden, self.vocab]);
            self.t("output_norm.weight", &[hidden]);
            if !tied {
                self.t("output.weight", &[hidden, self.vocab]);
            }
        }

        /// Grouped-query attention of layer `il`: `q` and `kv` output widths, `o` the
        /// output projection's input width.
        fn gqa(&mut self, il: u64, hidden: u64, q: u64, kv: u64, o: u64) {
            self.lt(il, "attn_norm", &[hidden]);
            self.lt(il, "attn_q", &[hidden, q]);
            self.lt(il, "attn_k", &[hidden, kv]);
            self.lt(il, "attn_v", &[hidden, kv]);
            self.lt(il, "attn_output", &[o, hidden]);
        }

        fn swiglu(&mut self, il: u64, hidden: u64, ffn: u64, suffix: &str) {
            self.lt(il, &format!("ffn_gate{suffix}"), &[hidden, ffn]);
            self.lt(il, &format!("ffn_up{suffix}"), &[hidden, ffn]);
            self.lt(il, &format!("ffn_down{suffix}"), &[ffn, hidden]);
        }

        fn experts(&mut self, il: u64, hidden: u64, ffn: u64, n: u64) {
            self.lt(il, "ffn_gate_inp", &[hidden, n]);
            self.lt(il, "ffn_gate_exps", &[hidden, ffn, n]);
            self.lt(il, "ffn_up_exps", &[hidden, ffn, n]);
            self.lt(il, "ffn_down_exps", &[ffn, hidden, n]);
        }

        /// Llama-3.2-3B (meta-llama config.json): 28 layers, 3072 wide, 24 heads of 128,
        /// 8 KV heads, FFN 8192, 128,256 tokens, tied embeddings.
        pub fn llama_3_2_3b() -> Net {
            let (layers, hidden, ffn) = (28, 3072, 8192);
            let mut n = Net::new("llama", "Llama-3.2-3B", layers, 128_256)
                .kv("context_length", 131_072)
                .kv("embedding_length", hidden)
                .kv("feed_forward_length", ffn)
                .kv("attention.head_count", 24)
                .kv("attention.head_count_kv", 8);
            n.n_gqa = 3;
            n.ends(hidden, true);
            n.t("rope_freqs.weight", &[64]);
            for il in 0..layers {
                n.gqa(il, hidden, hidden, 1024, hidden);
                n.lt(il, "ffn_norm", &[hidden]);
                n.swiglu(il, hidden, ffn, "");
            }
            n
        }

        /// Magistral-Small-2506 (Mistral-Small-3.1 text model): 40 layers, 5120 wide,
        /// 32 heads of 128, 8 KV heads, FFN 32768, 131,072 tokens. The reporter's file name
        /// (`mistralai_…`) is bartowski's, quantized with an importance matrix.
        pub fn magistral_small() -> Net {
            let (layers, hidden, ffn) = (40, 5120, 32768);
            let mut n = Net::new("llama", "Magistral-Small-2506", layers, 131_072)
                .kv("context_length", 40_960)
                .kv("embedding_length", hidden)
                .kv("feed_forward_length", ffn)
                .kv("attention.head_count", 32)
                .kv("attention.head_count_kv", 8)
                .kv("attention.key_length", 128)
                .kv("attention.value_length", 128)
                .with_imatrix();
            n.n_gqa = 4;
            n.ends(hidden, false);
            for il in 0..layers {
                n.gqa(il, hidden, 4096, 1024, 4096);
                n.lt(il, "ffn_norm", &[hidden]);
                n.swiglu(il, hidden, ffn, "");
            }
            n
        }

        /// Qwen3-30B-A3B (also Qwen3-Coder-30B-A3B): 48 layers, 2048 wide, 32 heads of 128,
        /// 4 KV heads, 128 experts of FFN 768 (8 used), 151,936 tokens.
        pub fn qwen3_30b_a3b() -> Net {
            let (layers, hidden) = (48, 2048);
            let mut n = Net::new("qwen3moe", "Qwen3-30B-A3B", layers, 151_936)
                .kv("context_length", 262_144)
                .kv("embedding_length", hidden)
                .kv("feed_forward_length", 6144)
                .kv("expert_feed_forward_length", 768)
                .kv("attention.head_count", 32)
                .kv("attention.head_count_kv", 4)
                .kv("attention.key_length", 128)
                .kv("attention.value_length", 128)
                .kv("expert_count", 128)
                .kv("expert_used_count", 8);
            n.n_expert = 128;
            n.n_gqa = 8;
            n.ends(hidden, false);
            for il in 0..layers {
                n.gqa(il, hidden, 4096, 512, 4096);
                n.lt(il, "attn_q_norm", &[128]);
                n.lt(il, "attn_k_norm", &[128]);
                n.lt(il, "ffn_norm", &[hidden]);
                n.experts(il, hidden, 768, 128);
            }
            n
        }

        /// DeepSeek-V2-Lite: 27 layers, 2048 wide, 16 heads, MLA (no q LoRA, kv LoRA 512,
        /// q/k head 128 + 64 rope, v head 128), layer 0 dense (FFN 10944), then 64 routed
        /// experts of FFN 1408 and 2 shared (one FFN of 2816), 102,400 tokens. The GGUF
        /// layout with one attn_kv_b per layer.
        pub fn deepseek_v2_lite() -> Net {
            let (layers, hidden) = (27, 2048);
            let mut n = Net::new("deepseek2", "DeepSeek-V2-Lite", layers, 102_400)
                .kv("context_length", 163_840)
                .kv("embedding_length", hidden)
                .kv("feed_forward_length", 10944)
                .kv("expert_feed_forward_length", 1408)
                .kv("attention.head_count", 16)
                .kv("attention.head_count_kv", 16)
                .kv("attention.key_length", 192)
                .kv("attention.value_length", 128)
                .kv("attention.kv_lora_rank", 512)
                .kv("leading_dense_block_count", 1)
                .kv("expert_count", 64)
                .kv("expert_shared_count", 2)
                .kv("expert_used_count", 6);
            n.n_expert = 64;
            n.ends(hidden, false);
            for il in 0..layers {
                n.lt(il, "attn_norm", &[hidden]);
                n.lt(il, "attn_q", &[hidden, 16 * 192]);
                n.lt(il, "attn_kv_a_mqa", &[hidden, 512 + 64]);
                n.lt(il, "attn_kv_a_norm", &[512]);
                n.lt(il, "attn_kv_b", &[512, 16 * (128 + 128)]);
                n.lt(il, "attn_output", &[16 * 128, hidden]);
                n.lt(il, "ffn_norm", &[hidden]);
                if il == 0 {
                    n.swiglu(il, hidden, 10944, "");
                } else {
                    n.experts(il, hidden, 1408, 64);
                    n.swiglu(il, hidden, 2 * 1408, "_shexp");
                }
            }
            n
        }

        /// Qwen3.6-35B-A3B (qwen35moe; Ornith-1.5-35B is a post-tune of it): 40 layers,
        /// 2048 wide; every 4th layer gated attention (16 heads of 256, 2 KV heads), the
        /// others Gated DeltaNet (16 QK heads and 32 V heads of 128); 256 experts of FFN 512
        /// (8 used) and one shared; 248,320 tokens. Approximate: from the Qwen3.5 family's
        /// published configuration.
        pub fn qwen3_6_35b_a3b(name: &str) -> Net {
            let (layers, hidden) = (40, 2048);
            let mut n = Net::new("qwen35moe", name, layers, 248_320)
                .kv("context_length", 262_144)
                .kv("embedding_length", hidden)
                .kv("expert_feed_forward_length", 512)
                .kv("expert_shared_feed_forward_length", 512)
                .kv("attention.head_count", 16)
                .kv("attention.head_count_kv", 2)
                .kv("attention.key_length", 256)
                .kv("attention.value_length", 256)
                .kv("full_attention_interval", 4)
                .kv("ssm.conv_kernel", 4)
                .kv("ssm.state_size", 128)
                .kv("ssm.group_count", 16)
                .kv("ssm.time_step_rank", 32)
                .kv("ssm.inner_size", 4096)
                .kv("expert_count", 256)
                .kv("expert_used_count", 8);
            n.n_expert = 256;
            n.n_gqa = 8;
            n.ends(hidden, false);
            for il in 0..layers {
                if (il + 1) % 4 == 0 {
                    // Q and its output gate in one projection.
                    n.gqa(il, hidden, 2 * 16 * 256, 2 * 256, 16 * 256);
                    n.lt(il, "attn_q_norm", &[256]);
                    n.lt(il, "attn_k_norm", &[256]);
                } else {
                    n.delta_net(il, hidden, 16, 32);
                }
                n.lt(il, "post_attention_norm", &[hidden]);
                n.experts(il, hidden, 512, 256);
                n.lt(il, "ffn_gate_inp_shexp", &[hidden]);
                n.swiglu(il, hidden, 512, "_shexp");
            }
            n
        }

        /// A Gated DeltaNet layer: QK heads and V heads of 128.
        fn delta_net(&mut self, il: u64, hidden: u64, qk_heads: u64, v_heads: u64) {
            let (qk, v) = (qk_heads * 128, v_heads * 128);
            self.lt(il, "attn_norm", &[hidden]);
            self.lt(il, "attn_qkv", &[hidden, 2 * qk + v]);
            self.lt(il, "attn_gate", &[hidden, v]);
            self.lt(il, "ssm_conv1d", &[4, 2 * qk + v]);
            self.lt(il, "ssm_ba", &[hidden, 2 * v_heads]);
            self.t(&format!("blk.{il}.ssm_a"), &[v_heads]);
            self.t(&format!("blk.{il}.ssm_dt.bias"), &[v_heads]);
            self.lt(il, "ssm_norm", &[128]);
            self.lt(il, "ssm_out", &[v, hidden]);
        }

        /// Qwen3.8-27B (qwen35, the dense member of the same family): 64 layers, 5120
        /// wide, every 4th layer gated attention (24 heads of 256, 4 KV heads), the others
        /// Gated DeltaNet (16 QK heads, 48 V heads of 128), FFN 17408, 248,320 tokens.
        /// Approximate: Qwen3.5-27B's published configuration.
        pub fn qwen3_8_27b() -> Net {
            let (layers, hidden, ffn) = (64, 5120, 17408);
            let mut n = Net::new("qwen35", "Qwen3.8-27B", layers, 248_320)
                .kv("context_length", 262_144)
                .kv("embedding_length", hidden)
                .kv("feed_forward_length", ffn)
                .kv("attention.head_count", 24)
                .kv("attention.head_count_kv", 4)
                .kv("attention.key_length", 256)
                .kv("attention.value_length", 256)
                .kv("full_attention_interval", 4)
                .kv("ssm.conv_kernel", 4)
                .kv("ssm.state_size", 128)
                .kv("ssm.group_count", 16)
                .kv("ssm.time_step_rank", 48)
                .kv("ssm.inner_size", 6144);
            n.n_gqa = 6;
            n.ends(hidden, false);
            for il in 0..layers {
                if (il + 1) % 4 == 0 {
                    n.gqa(il, hidden, 2 * 24 * 256, 4 * 256, 24 * 256);
                    n.lt(il, "attn_q_norm", &[256]);
                    n.lt(il, "attn_k_norm", &[256]);
                } else {
                    n.delta_net(il, hidden, 16, 48);
                }
                n.lt(il, "post_attention_norm", &[hidden]);
                n.swiglu(il, hidden, ffn, "");
            }
            n
        }

        /// Qwen3-Embedding-0.6B (Qwen3-0.6B's shape): 28 layers, 1024 wide, 16 heads of
        /// 128, 8 KV heads, FFN 3072, 151,669 tokens, tied embeddings.
        pub fn qwen3_embedding_0_6b() -> Net {
            let (layers, hidden, ffn) = (28, 1024, 3072);
            let mut n = Net::new("qwen3", "Qwen3-Embedding-0.6B", layers, 151_669)
                .kv("context_length", 32_768)
                .kv("embedding_length", hidden)
                .kv("feed_forward_length", ffn)
                .kv("attention.head_count", 16)
                .kv("attention.head_count_kv", 8)
                .kv("attention.key_length", 128)
                .kv("attention.value_length", 128);
            n.n_gqa = 2;
            n.ends(hidden, true);
            for il in 0..layers {
                n.gqa(il, hidden, 2048, 1024, 2048);
                n.lt(il, "attn_q_norm", &[128]);
                n.lt(il, "attn_k_norm", &[128]);
                n.lt(il, "ffn_norm", &[hidden]);
                n.swiglu(il, hidden, ffn, "");
            }
            n
        }
    }
}
