//! llama.cpp's quantization recipe (`llama_tensor_get_type`, src/llama-quant.cpp): which
//! ggml type `llama-quantize` gives each tensor of a file type. Only the file types and
//! exceptions the user reports need are here.

// ggml type ids (ggml.h).
pub const F32: u32 = 0;
pub const F16: u32 = 1;
pub const Q4_0: u32 = 2;
pub const Q5_0: u32 = 6;
pub const Q5_1: u32 = 7;
pub const Q8_0: u32 = 8;
pub const Q4_K: u32 = 12;
pub const Q5_K: u32 = 13;
pub const Q6_K: u32 = 14;
pub const IQ4_NL: u32 = 20;

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
pub fn layer_of(name: &str) -> i64 {
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
pub struct Recipe {
    pub quant: Quant,
    pub imatrix: bool,
    pub has_output: bool,
    pub n_layer: i64,
    pub n_expert: u64,
    pub n_gqa: u64,
    pub n_attention_wv: i64,
    pub i_attention_wv: i64,
    pub i_ffn_down: i64,
}

fn use_more_bits(i: i64, n: i64) -> bool {
    // C's % truncates like Rust's: a negative left side never gives 2.
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

impl Recipe {
    pub fn type_for(&mut self, name: &str, dims: &[u64]) -> u32 {
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
            } else if q == Quant::Q4_K_M && use_more_bits(self.i_attention_wv, self.n_attention_wv)
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
