//! The models of the user reports as GGUF headers: each architecture as its published
//! configuration gives it, every tensor typed by [`super::recipe`], written sparse (the data
//! is a hole, so a 20 GB model costs a few MiB of disk).

use std::path::Path;

use ramscope::gguf::builder::Builder;

use super::recipe::{layer_of, Quant, Recipe, F16};

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
