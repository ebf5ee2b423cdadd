"""Derive ramscope's built-in runtime baselines from server measurements (docs/baselines.md).

    fit-baselines.py RAMSCOPE_BIN MEASUREMENT.json...   (files written by measure-server.py)

Per stack (vLLM release, torch build, Python) it fits, over the model shapes measured:
  API server / EngineCore:  PSS_anon = base + k × tokenizer.json bytes   (least squares)
  worker, --enforce-eager:  PSS − (components ramscope computes from source) = base (mean, spread)
  worker, compiled − eager: warm-up = A + K × max_num_seqs × vocab × 4 B   (least squares)
and prints each number with the shapes it came from and each shape's residual, so a fit that
does not hold across shapes shows.
"""
import json, os, subprocess, sys
from collections import defaultdict

MIB = 2**20
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


bin_ = sys.argv[1]
runs = defaultdict(list)
for f in sys.argv[2:]:
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
    if eager:
        rests = [(m, m["roles"]["worker"]["pss_bytes"] - exact_rest(bin_, m, "worker")) for m in eager]
        vals = [r for _, r in rests]
        files = [m["roles"]["worker"]["pss_file_bytes"] for m in eager]
        print("  worker       eager PSS beyond source-computed parts: "
              + ", ".join(f"{m['shape']} {r/MIB:.1f}" for m, r in rests) + " MiB; "
              f"library PSS {min(files)/MIB:.1f}–{max(files)/MIB:.1f} MiB")
        row["worker"] = {"base": round(sum(vals) / len(vals)), "min": min(vals), "max": max(vals),
                         "file": round(sum(files) / len(files))}
    pairs = []
    for c in (m for m in ms if not m["eager"]):
        e = next((m for m in eager if m["shape"] == c["shape"] and m["seqs"] == c["seqs"]), None)
        if e:
            pairs.append((c["seqs"] * c["vocab"] * 4,
                          c["roles"]["worker"]["pss_bytes"] - e["roles"]["worker"]["pss_bytes"], c["shape"]))
    if len(pairs) >= 2:
        a, k = lsq([p[0] for p in pairs], [p[1] for p in pairs])
        print(f"  warm-up      compiled − eager = {a/MIB:.1f} MiB + {k:.3f} × seqs × vocab × 4 B "
              f"(residuals {', '.join(f'{s} {(y - a - k*x)/MIB:+.1f}' for x, y, s in pairs)} MiB)")
        row["warmup"] = {"base": round(a), "per_logit_byte": round(k, 3),
                         "max_residual": round(max(abs(y - a - k * x) for x, y, _ in pairs))}
    helpers = [m["roles"]["helper"]["pss_bytes"] for m in ms if "helper" in m["roles"]]
    if helpers:
        row["tracker"] = round(sum(helpers) / len(helpers))
    result["/".join(stack)] = row
print(json.dumps(result, indent=1))
