"""Derive ramscope's built-in runtime baselines from server measurements (docs/baselines.md).

    fit-baselines.py [--eager-warmup] RAMSCOPE_BIN MEASUREMENT.json...
        (files written by measure-server.py; --eager-warmup for releases whose CPU worker runs
        the warm-up profile run under --enforce-eager too, as 0.25 does)

Per stack (vLLM release, torch build, Python) it fits, over the model shapes measured, with
x = max_num_seqs × vocab × 4 B (the warm-up sampler's logits; 0 above 32 MiB, which glibc
maps and unmaps rather than keeping):
  API server / EngineCore:  PSS_anon = base + k × tokenizer.json bytes   (least squares)
  worker rest = PSS − (components ramscope computes from source), then
    without eager warm-up:  eager rest = base (mean, spread); compiled − eager = A + K·x
    with eager warm-up:     eager rest = base + K·x;          compiled − eager = A (mean, spread)
and prints each number with the shapes it came from and each shape's residual, so a fit that
does not hold across shapes shows.
"""
import json, os, subprocess, sys
from collections import defaultdict

MIB = 2**20
# glibc serves an allocation above its mmap threshold with mmap and unmaps it on free; the
# threshold rises with freed chunks but never past 32 MiB on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX).
# Logits above that leave nothing behind, so they count as x = 0.
MMAP_THRESHOLD_MAX = 32 * MIB
NOT_EXACT = ("runtime.", "tokenizer", "weights.load_residual", "requests.python_state")


def lsq(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    k = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - k * mx, k


def flag(argv, name, default=None):
    return argv[argv.index(name) + 1] if name in argv else default


def exact_rest(bin_, m, role):
    env = sum((["--env", f"{k}={v}"] for k, v in m["env"].items()), [])
    out = subprocess.run([bin_, "estimate", "--json", "--device", "cpu", "--vllm-version",
                          m["stack"]["vllm"], *env, "--", *m["argv"]],
                         capture_output=True, text=True, check=True)
    for p in json.loads(out.stdout)["processes"]:
        if p["role"] == role:
            return sum(c["bytes"] for c in p["components"] if c.get("phase") == "steady"
                       and not c["id"].startswith(NOT_EXACT))
    return 0


args = sys.argv[1:]
eager_warmup = "--eager-warmup" in args
args = [a for a in args if a != "--eager-warmup"]
bin_ = args[0]
runs = defaultdict(list)
for f in args[1:]:
    m = json.load(open(f))
    model = flag(m["argv"], "--model")
    cfg = json.load(open(os.path.join(model, "config.json")))
    m["shape"] = f'{cfg["num_hidden_layers"]}x{cfg["hidden_size"]}/v{cfg["vocab_size"]}'
    m["vocab"] = cfg["vocab_size"]
    m["tokfile"] = os.path.getsize(os.path.join(model, "tokenizer.json"))
    m["seqs"] = int(flag(m["argv"], "--max-num-seqs", 256))
    m["eager"] = "--enforce-eager" in m["argv"]
    m["roles"] = {p["role"]: p for p in m["snapshot"]["processes"]}
    m["file"] = os.path.basename(f)
    s = m["stack"]
    runs[(s["vllm"], s["torch"], s["python"])].append(m)

result = {}
for stack, ms in sorted(runs.items()):
    print(f"== vLLM {stack[0]}, torch {stack[1]}, Python {stack[2]}: "
          + ", ".join(sorted({m['shape'] for m in ms})))
    row = {}
    for role in ("api-server", "engine-core"):
        xs = [m["tokfile"] for m in ms]
        ys = [m["roles"][role]["pss_anon_bytes"] for m in ms]
        base, k = lsq(xs, ys)
        res = [y - (base + k * x) for x, y in zip(xs, ys)]
        files = [m["roles"][role]["pss_file_bytes"] for m in ms]
        print(f"  {role:12} anon = {base/MIB:.1f} MiB + {k:.2f} × tokenizer.json bytes "
              f"(residuals {', '.join(f'{r/MIB:+.1f}' for r in res)} MiB); "
              f"library PSS {min(files)/MIB:.1f}–{max(files)/MIB:.1f} MiB")
        row[role] = {"anon": round(base), "per_tokenizer_byte": round(k, 2),
                     "max_residual": round(max(abs(r) for r in res)),
                     "file": round(sum(files) / len(files))}
    eager = [m for m in ms if m["eager"]]
    rests = {m["shape"]: m["roles"]["worker"]["pss_bytes"] - exact_rest(bin_, m, "worker") for m in eager}
    x = {m["shape"]: m["seqs"] * m["vocab"] * 4 for m in ms}
    x = {k: (v if v <= MMAP_THRESHOLD_MAX else 0) for k, v in x.items()}
    files = [m["roles"]["worker"]["pss_file_bytes"] for m in eager]
    print("  worker       eager PSS beyond source-computed parts: "
          + ", ".join(f"{k} {r/MIB:.1f}" for k, r in rests.items()) + " MiB; "
          f"library PSS {min(files)/MIB:.1f}–{max(files)/MIB:.1f} MiB")
    deltas = {c["shape"]: c["roles"]["worker"]["pss_bytes"] - e["roles"]["worker"]["pss_bytes"]
              for c in ms if not c["eager"]
              for e in eager if e["shape"] == c["shape"] and e["seqs"] == c["seqs"]}
    if eager_warmup:
        base, k = lsq([x[s] for s in rests], list(rests.values()))
        res = {s: r - base - k * x[s] for s, r in rests.items()}
        a = sum(deltas.values()) / len(deltas)
        dres = {s: d - a for s, d in deltas.items()}
        print(f"  worker       eager rest = {base/MIB:.1f} MiB + {k:.3f} × x; compiled − eager = {a/MIB:.1f} MiB")
    else:
        base = sum(rests.values()) / len(rests)
        res = {s: r - base for s, r in rests.items()}
        a, k = lsq([x[s] for s in deltas], list(deltas.values()))
        dres = {s: d - a - k * x[s] for s, d in deltas.items()}
        print(f"  worker       eager rest = {base/MIB:.1f} MiB; compiled − eager = {a/MIB:.1f} MiB + {k:.3f} × x")
    print("               residuals: eager " + ", ".join(f"{s} {r/MIB:+.1f}" for s, r in res.items())
          + "; compiled " + ", ".join(f"{s} {r/MIB:+.1f}" for s, r in dres.items()) + " MiB")
    row["worker"] = {"rest": round(base), "rest_low": round(base + min(res.values())),
                     "rest_high": round(base + max(res.values())),
                     "file": round(sum(files) / len(files)), "warmup_per_logit_byte": round(k, 2),
                     "compile": round(a), "compile_low": round(a + min(dres.values())),
                     "compile_high": round(a + max(dres.values())), "eager_warmup": eager_warmup}
    helpers = [m["roles"]["helper"]["pss_bytes"] for m in ms if "helper" in m["roles"]]
    if helpers:
        row["tracker"] = round(sum(helpers) / len(helpers))
    result["/".join(stack)] = row
print(json.dumps(result, indent=1))
