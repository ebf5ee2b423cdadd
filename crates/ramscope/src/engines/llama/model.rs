//! What llama.cpp's formulas need from a GGUF header: the hyperparameters it reads
//! (`<arch>.block_count`, `<arch>.attention.head_count_kv`…) and every tensor with the layer
//! it belongs to, its rows and where it lies in the file (docs/llama-host-ram.md §1).

use std::path::PathBuf;

use crate::gguf::{GgufInfo, Value};

/// Where a tensor goes when layers are split between the CPU and a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `token_embd` and friends: the input layer, always on the CPU.
    Input,
    /// `blk.N.*`: repeating layer N.
    Layer(u64),
    /// `output`, `output_norm`: the output layer (counts as layer n_layer for `-ngl`).
    Output,
}

/// One tensor of the file, as the placement and repacking rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weight {
    pub name: String,
    pub place: Place,
    /// The ggml type's name (`Q4_0`) and id.
    pub kind: &'static str,
    pub type_id: u32,
    /// Number of dimensions and the second one (`ne[1]`, rows): repacking needs rows in
    /// multiples of 8.
    pub n_dims: usize,
    pub rows: u64,
    /// Offset from the start of the file, and size.
    pub file_offset: u64,
    pub bytes: u64,
}

impl Weight {
    /// Multiplied by activations (MUL_MAT / MUL_MAT_ID): every 2-D weight but the embedding
    /// tables, which are looked up by row (GET_ROWS), and the 3-D expert stacks.
    pub fn is_matmul(&self) -> bool {
        let lookup_table = self.name.starts_with("token_embd")
            || self.name.contains("position_embd")
            || self.name.contains("per_layer_token_embd");
        !lookup_table && (self.n_dims == 2 || (self.n_dims == 3 && self.name.contains("_exps")))
    }
}

/// The hyperparameters llama.cpp reads from the header, with the defaults it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Hparams {
    pub path: PathBuf,
    pub arch: String,
    pub name: Option<String>,
    pub n_layer: u64,
    pub n_embd: u64,
    pub n_head: u64,
    /// KV heads per layer (0 for a layer without attention, e.g. a recurrent one).
    pub n_head_kv: Vec<u64>,
    pub head_dim_k: u64,
    pub head_dim_v: u64,
    pub n_ctx_train: u64,
    pub n_vocab: u64,
    /// The largest feed-forward width of any layer.
    pub n_ff: u64,
    /// Sliding-window size (0: no sliding window) and which layers use it.
    pub n_swa: u64,
    pub swa_layers: Vec<bool>,
    /// Has recurrent (SSM) layers, whose state llama.cpp keeps apart from the KV cache.
    pub recurrent: bool,
    /// Which layers are recurrent (no KV cache; a fixed-size state per sequence instead).
    pub recurrent_layers: Vec<bool>,
    /// Floats of one sequence's state per recurrent layer: the convolution rows (`n_embd_r`)
    /// and the SSM state (`n_embd_s`), 0 when the header does not give the SSM sizes.
    pub n_embd_r: u64,
    pub n_embd_s: u64,
    pub n_expert: u64,
    pub file_bytes: u64,
    pub weights: Vec<Weight>,
    pub weight_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct HparamsError {
    pub path: String,
    pub what: String,
}

impl Hparams {
    pub fn from_gguf(info: &GgufInfo) -> Result<Hparams, HparamsError> {
        let fail = |what: String| HparamsError {
            path: info.path.display().to_string(),
            what,
        };
        let arch = info
            .architecture()
            .ok_or_else(|| fail("no general.architecture in the header".into()))?
            .to_string();
        let need = |key: &str| {
            info.arch_u64(key)
                .ok_or_else(|| fail(format!("no {arch}.{key} in the header")))
        };
        let n_layer = need("block_count")?;
        let n_embd = need("embedding_length")?;
        if n_layer == 0 || n_layer > 4096 || n_embd == 0 || n_embd > 1 << 20 {
            return Err(fail(format!(
                "implausible block_count {n_layer} or embedding_length {n_embd}"
            )));
        }
        let layers = usize::try_from(n_layer).map_err(|_| fail("too many layers".into()))?;
        let per_layer = |key: &str| -> Option<Vec<u64>> {
            match info.get(&format!("{arch}.{key}"))? {
                Value::Array { values, len } if *len == n_layer => {
                    values.iter().map(Value::as_u64).collect()
                }
                v => v.as_u64().map(|n| vec![n; layers]),
            }
        };
        let n_head = per_layer("attention.head_count")
            .and_then(|v| v.into_iter().max())
            .unwrap_or(0);
        // llama.cpp defaults head_count_kv to head_count (llama-model.cpp reads it optionally).
        let n_head_kv =
            per_layer("attention.head_count_kv").unwrap_or_else(|| vec![n_head; layers]);
        let head_dim = n_embd.checked_div(n_head).unwrap_or(0);
        let head_dim_k = info.arch_u64("attention.key_length").unwrap_or(head_dim);
        let head_dim_v = info.arch_u64("attention.value_length").unwrap_or(head_dim);
        let n_ff = per_layer("feed_forward_length")
            .and_then(|v| v.into_iter().max())
            .unwrap_or(0);
        let n_ctx_train = info.arch_u64("context_length").unwrap_or(0);
        let n_swa = info.arch_u64("attention.sliding_window").unwrap_or(0);
        let swa_layers = swa_pattern(info, &arch, n_swa, layers);
        let recurrent = info
            .metadata
            .keys()
            .any(|k| k.starts_with(&format!("{arch}.ssm.")))
            || info
                .metadata
                .keys()
                .any(|k| k.starts_with(&format!("{arch}.wkv.")));
        let recurrent_layers = recurrent_pattern(info, &arch, recurrent, layers);
        let mut n_head_kv = n_head_kv;
        for (kv, r) in n_head_kv.iter_mut().zip(&recurrent_layers) {
            if *r {
                *kv = 0;
            }
        }
        // Mamba-style state sizes (src/llama-hparams.cpp:208-258@0c1e570).
        let ssm = |k: &str| info.arch_u64(&format!("ssm.{k}")).unwrap_or(0);
        let (d_conv, d_inner, d_state, n_group) = (
            ssm("conv_kernel"),
            ssm("inner_size"),
            ssm("state_size"),
            ssm("group_count"),
        );
        let n_embd_r = d_conv.saturating_sub(1).saturating_mul(
            d_inner.saturating_add(n_group.saturating_mul(d_state).saturating_mul(2)),
        );
        let n_embd_s = d_state.saturating_mul(d_inner);
        let n_expert = info.arch_u64("expert_count").unwrap_or(0);

        let mut weights = Vec::with_capacity(info.tensors.len());
        for t in &info.tensors {
            let file_offset = info
                .data_offset
                .checked_add(t.offset)
                .ok_or_else(|| fail(format!("tensor {} lies past 2^64 bytes", t.name)))?;
            weights.push(Weight {
                place: place_of(&t.name),
                name: t.name.clone(),
                kind: t.kind,
                type_id: t.type_id,
                n_dims: t.dims.len(),
                rows: t.dims.get(1).copied().unwrap_or(1),
                file_offset,
                bytes: t.bytes,
            });
        }
        // The vocabulary: the tokenizer's token list, else the embedding table's rows.
        let n_vocab = match info.get("tokenizer.ggml.tokens") {
            Some(Value::Array { len, .. }) => *len,
            _ => info
                .tensors
                .iter()
                .find(|t| t.name == "token_embd.weight")
                .and_then(|t| t.dims.get(1).copied())
                .unwrap_or(0),
        };
        Ok(Hparams {
            path: info.path.clone(),
            name: info
                .get("general.name")
                .and_then(Value::as_str)
                .map(str::to_string),
            arch,
            n_layer,
            n_embd,
            n_head,
            n_head_kv,
            head_dim_k,
            head_dim_v,
            n_ctx_train,
            n_vocab,
            n_ff,
            n_swa,
            swa_layers,
            recurrent,
            recurrent_layers,
            n_embd_r,
            n_embd_s,
            n_expert,
            file_bytes: info.file_bytes,
            weights,
            weight_bytes: info.tensor_bytes,
        })
    }

    /// K width of layer `il` (`n_embd_k_gqa`): head size × KV heads.
    pub fn n_embd_k_gqa(&self, il: usize) -> u64 {
        self.head_dim_k
            .saturating_mul(self.n_head_kv.get(il).copied().unwrap_or(0))
    }

    pub fn n_embd_v_gqa(&self, il: usize) -> u64 {
        self.head_dim_v
            .saturating_mul(self.n_head_kv.get(il).copied().unwrap_or(0))
    }

    /// The widest V of any layer: a transposed V cache (no flash attention) sizes every
    /// layer by it when the widths differ.
    pub fn n_embd_v_gqa_max(&self) -> u64 {
        (0..self.n_head_kv.len())
            .map(|il| self.n_embd_v_gqa(il))
            .max()
            .unwrap_or(0)
    }
}

/// Which layers are recurrent: the header's `attention.recurrent_layers` array, else every
/// `full_attention_interval`-th layer has attention and the rest are recurrent (4 by default
/// for the Qwen3-Next family: src/models/qwen3next.cpp:17-23@0c1e570), else every layer of a
/// purely recurrent model (Mamba, RWKV), else none.
fn recurrent_pattern(info: &GgufInfo, arch: &str, recurrent: bool, layers: usize) -> Vec<bool> {
    if let Some(Value::Array { values, len }) =
        info.get(&format!("{arch}.attention.recurrent_layers"))
    {
        if *len as usize == layers {
            return values
                .iter()
                .map(|v| matches!(v, Value::Bool(true)) || v.as_u64().is_some_and(|n| n != 0))
                .collect();
        }
    }
    let interval = info.arch_u64("full_attention_interval").or_else(|| {
        ["qwen3next", "qwen35", "qwen35moe"]
            .contains(&arch)
            .then_some(4)
    });
    match interval {
        Some(n) if n > 0 => (0..layers as u64).map(|i| (i + 1) % n != 0).collect(),
        _ => vec![recurrent && (arch.starts_with("mamba") || arch.starts_with("rwkv")); layers],
    }
}

fn place_of(name: &str) -> Place {
    if let Some(rest) = name.strip_prefix("blk.") {
        if let Some(n) = rest.split('.').next().and_then(|n| n.parse().ok()) {
            return Place::Layer(n);
        }
    }
    if name.starts_with("output") {
        Place::Output
    } else {
        Place::Input
    }
}

/// Which layers use the sliding window: a per-layer array of booleans in the header, or a
/// period `n` (every n-th layer is global, the others slide), or — when the header names a
/// window but no pattern — every layer, the simplest reading (noted by the caller).
fn swa_pattern(info: &GgufInfo, arch: &str, n_swa: u64, layers: usize) -> Vec<bool> {
    if n_swa == 0 {
        return vec![false; layers];
    }
    match info.get(&format!("{arch}.attention.sliding_window_pattern")) {
        Some(Value::Array { values, len }) if *len as usize == layers => values
            .iter()
            .map(|v| matches!(v, Value::Bool(true)) || v.as_u64().is_some_and(|n| n != 0))
            .collect(),
        Some(v) => match v.as_u64() {
            Some(period) if period > 1 => (0..layers as u64)
                .map(|il| il % period < period - 1)
                .collect(),
            _ => vec![true; layers],
        },
        None => vec![true; layers],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_are_placed_by_name() {
        assert_eq!(place_of("token_embd.weight"), Place::Input);
        assert_eq!(place_of("blk.12.attn_q.weight"), Place::Layer(12));
        assert_eq!(place_of("output.weight"), Place::Output);
        assert_eq!(place_of("output_norm.weight"), Place::Output);
        assert_eq!(place_of("blk.x.attn_q.weight"), Place::Input);
    }

    #[test]
    fn embedding_tables_are_not_multiplied() {
        let w = |name: &str, n_dims| Weight {
            name: name.into(),
            place: place_of(name),
            kind: "Q4_0",
            type_id: 2,
            n_dims,
            rows: 64,
            file_offset: 0,
            bytes: 1,
        };
        assert!(!w("token_embd.weight", 2).is_matmul());
        assert!(w("blk.0.ffn_up.weight", 2).is_matmul());
        assert!(w("blk.0.ffn_up_exps.weight", 3).is_matmul());
        assert!(!w("blk.0.attn_norm.weight", 1).is_matmul());
    }
}
