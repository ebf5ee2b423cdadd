"""Writes a tiny llama-architecture GGUF model with random weights, for end-to-end tests of
llama-server (no model hub). Run it with the Python of scripts/llama-server-env.sh (it has
PyPI's `gguf` and numpy):

    make_tiny_gguf.py OUT.gguf [--layers 4] [--hidden 256] [--vocab 1024] [--ctx 4096]
                      [--type f16|f32]

The tokenizer is a byte-level BPE ("gpt2" model): the 256 byte tokens, then merged pairs up
to the vocabulary size. Norm weights stay f32 (with f16 norms llama.cpp's CPU backend aborts).
Quantised variants are made from this file with llama-quantize.
"""
import argparse

import numpy as np
import gguf

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--hidden", type=int, default=256)
ap.add_argument("--heads", type=int, default=4)
ap.add_argument("--kv-heads", type=int, default=2)
ap.add_argument("--ffn", type=int, default=512)
ap.add_argument("--vocab", type=int, default=1024)
ap.add_argument("--ctx", type=int, default=4096)
ap.add_argument("--type", choices=["f16", "f32"], default="f16")
a = ap.parse_args()
if not 258 <= a.vocab <= 256 * 256 + 258:
    ap.error("--vocab must be between 258 and 65794 (256 bytes, merged pairs, two specials)")

rng = np.random.default_rng(0)
dtype = np.float16 if a.type == "f16" else np.float32
head_dim = a.hidden // a.heads

w = gguf.GGUFWriter(a.out, "llama")
w.add_name("ramscope-tiny")
w.add_context_length(a.ctx)
w.add_embedding_length(a.hidden)
w.add_block_count(a.layers)
w.add_feed_forward_length(a.ffn)
w.add_head_count(a.heads)
w.add_head_count_kv(a.kv_heads)
w.add_rope_dimension_count(head_dim)
w.add_layer_norm_rms_eps(1e-6)
w.add_file_type(1 if a.type == "f16" else 0)

# Byte-level BPE: GPT-2's printable mapping of the 256 bytes, then merges of the first ones.
bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
cs = bs[:]
n = 0
for b in range(256):
    if b not in bs:
        bs.append(b)
        cs.append(256 + n)
        n += 1
byte_tokens = [chr(c) for c in cs]
tokens = list(byte_tokens)
merges = []
seen = set(tokens)
pairs = ((x, y) for x in range(256) for y in range(256))
while len(tokens) < a.vocab - 2:
    x, y = next(pairs)
    merged = byte_tokens[x] + byte_tokens[y]
    if merged not in seen:
        seen.add(merged)
        tokens.append(merged)
        merges.append(f"{byte_tokens[x]} {byte_tokens[y]}")
tokens += ["<|bos|>", "<|eos|>"]
w.add_tokenizer_model("gpt2")
w.add_tokenizer_pre("default")
w.add_token_list(tokens)
w.add_token_types([1] * (len(tokens) - 2) + [3, 3])
w.add_token_merges(merges)
w.add_bos_token_id(len(tokens) - 2)
w.add_eos_token_id(len(tokens) - 1)


def t(name, *shape, norm=False):
    arr = (rng.standard_normal(shape) * 0.02).astype(np.float32 if norm else dtype)
    if norm:
        arr[:] = 1.0
    w.add_tensor(name, arr)


t("token_embd.weight", len(tokens), a.hidden)
for L in range(a.layers):
    p = f"blk.{L}."
    t(p + "attn_norm.weight", a.hidden, norm=True)
    t(p + "attn_q.weight", a.hidden, a.hidden)
    t(p + "attn_k.weight", a.kv_heads * head_dim, a.hidden)
    t(p + "attn_v.weight", a.kv_heads * head_dim, a.hidden)
    t(p + "attn_output.weight", a.hidden, a.hidden)
    t(p + "ffn_norm.weight", a.hidden, norm=True)
    t(p + "ffn_gate.weight", a.ffn, a.hidden)
    t(p + "ffn_up.weight", a.ffn, a.hidden)
    t(p + "ffn_down.weight", a.hidden, a.ffn)
t("output_norm.weight", a.hidden, norm=True)
t("output.weight", len(tokens), a.hidden)

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
