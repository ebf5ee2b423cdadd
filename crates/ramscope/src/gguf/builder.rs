//! Writes GGUF files: the header laid out as the format says, then the tensor data as zeros.
//! Tests use it to make models of any shape, and [`Builder::write_sparse`] makes stand-ins
//! for models of many GiB that take no disk (the data is a hole), since ramscope reads only
//! headers. Not a general GGUF writer: values are u32, f32, strings and string arrays.

use std::io::Write;
use std::path::Path;

use super::types;

#[derive(Debug, Clone, Default)]
pub struct Builder {
    pub(super) kv: Vec<u8>,
    pub(super) n_kv: u64,
    pub(super) tensors: Vec<u8>,
    pub(super) n_tensors: u64,
    pub(super) data: u64,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    pub(super) fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    pub fn kv_u32(mut self, key: &str, v: u32) -> Builder {
        Self::string(&mut self.kv, key);
        self.kv.extend(4u32.to_le_bytes());
        self.kv.extend(v.to_le_bytes());
        self.n_kv += 1;
        self
    }

    pub fn kv_f32(mut self, key: &str, v: f32) -> Builder {
        Self::string(&mut self.kv, key);
        self.kv.extend(6u32.to_le_bytes());
        self.kv.extend(v.to_le_bytes());
        self.n_kv += 1;
        self
    }

    pub fn kv_str(mut self, key: &str, v: &str) -> Builder {
        Self::string(&mut self.kv, key);
        self.kv.extend(8u32.to_le_bytes());
        Self::string(&mut self.kv, v);
        self.n_kv += 1;
        self
    }

    /// A string array of `n` made-up tokens (a vocabulary's length is what matters).
    pub fn kv_str_array(mut self, key: &str, n: usize) -> Builder {
        Self::string(&mut self.kv, key);
        self.kv.extend(9u32.to_le_bytes());
        self.kv.extend(8u32.to_le_bytes());
        self.kv.extend((n as u64).to_le_bytes());
        for i in 0..n {
            Self::string(&mut self.kv, &format!("tok{i}"));
        }
        self.n_kv += 1;
        self
    }

    /// A tensor placed after the previous ones (32-byte aligned). `type_id` is a ggml type
    /// ([`types::TYPES`]); the element count must be whole blocks of it.
    pub fn tensor(mut self, name: &str, dims: &[u64], type_id: u32) -> Builder {
        let elements: u64 = dims.iter().product();
        let bytes = types::tensor_bytes(type_id, elements).unwrap_or(0);
        Self::string(&mut self.tensors, name);
        self.tensors.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.tensors.extend(d.to_le_bytes());
        }
        self.tensors.extend(type_id.to_le_bytes());
        self.tensors.extend(self.data.to_le_bytes());
        self.data = (self.data + bytes).div_ceil(32) * 32;
        self.n_tensors += 1;
        self
    }

    fn header(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(self.n_tensors.to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kv);
        out.extend(&self.tensors);
        let start = (out.len() as u64).div_ceil(32) * 32;
        out.resize(start as usize, 0);
        out
    }

    /// The whole file in memory (header and zeroed data).
    pub fn build(&self) -> Vec<u8> {
        let mut out = self.header();
        out.resize(out.len() + self.data as usize, 0);
        out
    }

    /// Writes the header and extends the file to its full size without writing the data:
    /// a sparse file, so a 40 GiB model costs a few KiB of disk.
    pub fn write_sparse(&self, path: &Path) -> std::io::Result<u64> {
        let header = self.header();
        let mut f = std::fs::File::create(path)?;
        f.write_all(&header)?;
        let len = header.len() as u64 + self.data;
        f.set_len(len)?;
        Ok(len)
    }

    /// A llama-architecture model: `layers` blocks of attention (`heads`, `kv_heads`) and a
    /// SwiGLU feed-forward of width `ffn`, weights in `type_id`, norms in F32, embeddings and
    /// output in `embd_type`.
    pub fn llama(shape: &LlamaShape) -> Builder {
        let s = shape;
        let head_dim = s.hidden / s.heads;
        let kv = head_dim * s.kv_heads;
        let mut b = Builder::new()
            .kv_str("general.architecture", "llama")
            .kv_str("general.name", &s.name)
            .kv_u32("llama.block_count", s.layers as u32)
            .kv_u32("llama.context_length", s.ctx as u32)
            .kv_u32("llama.embedding_length", s.hidden as u32)
            .kv_u32("llama.feed_forward_length", s.ffn as u32)
            .kv_u32("llama.attention.head_count", s.heads as u32)
            .kv_u32("llama.attention.head_count_kv", s.kv_heads as u32)
            .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-6)
            .kv_str("tokenizer.ggml.model", "gpt2")
            .kv_str_array("tokenizer.ggml.tokens", s.vocab as usize)
            .tensor("token_embd.weight", &[s.hidden, s.vocab], s.embd_type);
        for il in 0..s.layers {
            let t = |n: &str| format!("blk.{il}.{n}.weight");
            b = b
                .tensor(&t("attn_norm"), &[s.hidden], 0)
                .tensor(&t("attn_q"), &[s.hidden, s.hidden], s.type_id)
                .tensor(&t("attn_k"), &[s.hidden, kv], s.type_id)
                .tensor(&t("attn_v"), &[s.hidden, kv], s.type_id)
                .tensor(&t("attn_output"), &[s.hidden, s.hidden], s.type_id)
                .tensor(&t("ffn_norm"), &[s.hidden], 0)
                .tensor(&t("ffn_gate"), &[s.hidden, s.ffn], s.type_id)
                .tensor(&t("ffn_up"), &[s.hidden, s.ffn], s.type_id)
                .tensor(&t("ffn_down"), &[s.ffn, s.hidden], s.type_id);
        }
        b.tensor("output_norm.weight", &[s.hidden], 0).tensor(
            "output.weight",
            &[s.hidden, s.vocab],
            s.embd_type,
        )
    }
}

/// The shape of a llama-architecture test model ([`Builder::llama`]).
#[derive(Debug, Clone)]
pub struct LlamaShape {
    pub name: String,
    pub layers: u64,
    pub hidden: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub ffn: u64,
    pub vocab: u64,
    pub ctx: u64,
    /// ggml type ids: 0 F32, 1 F16, 2 Q4_0, 8 Q8_0, 12 Q4_K, 14 Q6_K.
    pub type_id: u32,
    pub embd_type: u32,
}

impl LlamaShape {
    /// A Llama-3-8B-like shape (32 layers, 4096 wide, 8 KV heads, 128k vocabulary).
    pub fn llama3_8b(type_id: u32) -> LlamaShape {
        LlamaShape {
            name: "llama3-8b-shape".into(),
            layers: 32,
            hidden: 4096,
            heads: 32,
            kv_heads: 8,
            ffn: 14336,
            vocab: 128256,
            ctx: 8192,
            type_id,
            embd_type: if type_id == 1 { 1 } else { 14 },
        }
    }
}
