"""Measure what loading a model's tokenizer as vLLM does costs a process, in anonymous memory.

    measure-tokenizer.py MODEL_DIR   -> one JSON line

vLLM's frontend loads the tokenizer (transformers' AutoTokenizer) and caches its vocabulary as
a Python dict with the special ids (vllm/tokenizers/hf.py). This probe imports what that needs,
then loads the tokenizer and reads the same things, and reports the growth of the process's
anonymous memory (smaps_rollup), so the Rust tokenizer's heap is counted, not only Python's.
"""
import gc, json, os, sys


def anon_kib():
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1])
    raise SystemExit("no Anonymous line in smaps_rollup")


model = sys.argv[1]
from transformers import AutoTokenizer  # noqa: E402  (imports are part of the baseline)

gc.collect()
before = anon_kib()
tok = AutoTokenizer.from_pretrained(model)
vocab = tok.get_vocab()
special = (tok.all_special_ids, tok.all_special_tokens, len(tok), max(vocab.values()),
           max(len(t) for t in vocab))
gc.collect()
after = anon_kib()
files = {f: os.path.getsize(os.path.join(model, f)) for f in
         ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer.model")
         if os.path.exists(os.path.join(model, f))}
print(json.dumps({"entries": len(vocab), "anon_bytes": (after - before) * 1024,
                  "files": files}))
