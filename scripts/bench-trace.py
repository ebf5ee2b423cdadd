"""Times workloads untraced and under allocation tracers, side by side; prints one table.

Run through scripts/bench-trace.sh, which builds and finds everything this needs:

    bench-trace.py --programs DIR --python PY --ramscope BIN --lib SO [--memray-site DIR]
                   [--vllm VENV MODEL] [--repeat 3] [--tools a,b] [--workloads a,b]

Each (workload, tool) runs --repeat times, tools interleaved within each round so that load
from other processes spreads over all of them; the table shows the median wall time and its
ratio to the untraced median of the same invocation. Timing is never asserted: this only
prints.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

GOAL_ALL = 1.3
GOAL_VLLM = 1.1

ap = argparse.ArgumentParser()
ap.add_argument("--programs", required=True, help="build.sh's output folder")
ap.add_argument("--sources", required=True, help="tests/trace_programs")
ap.add_argument("--python", required=True, help="interpreter for the Python workloads")
ap.add_argument("--ramscope", required=True)
ap.add_argument("--lib", required=True, help="libramscope_trace.so")
ap.add_argument("--memray-site", help="site-packages holding memray")
ap.add_argument("--vllm", nargs=2, metavar=("VENV", "MODEL"))
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--tools", default="untraced,ramscope,memray,memray-native,heaptrack")
ap.add_argument("--workloads", default="py-malloc,py-calls,c-storm,vllm")
ap.add_argument("--storm-rounds", type=int, default=600000)
ap.add_argument("--json", help="also write the raw times here")
a = ap.parse_args()


# ---- workloads: (name, kind, argv, env); kind "python" argv starts with a script or -m ----

def workloads():
    out = [
        ("py-malloc", "python", [os.path.join(a.sources, "churn.py")], {}),
        ("py-calls", "python", [os.path.join(a.sources, "calls.py")], {}),
        ("c-storm", "native", [os.path.join(a.programs, "storm"), str(a.storm_rounds)], {}),
    ]
    if a.vllm:
        venv, model = a.vllm
        argv = ["-m", "vllm.entrypoints.openai.api_server", "--model", model,
                "--max-model-len", "5120", "--max-num-seqs", "256", "--dtype", "bfloat16"]
        env = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1"}
        out.append(("vllm", "server", argv, env))
    wanted = a.workloads.split(",")
    return [w for w in out if w[0] in wanted]


def python_of(kind):
    return os.path.join(a.vllm[0], "bin", "python") if kind == "server" else a.python


# ---- tools: each turns (kind, argv) into a command line, or None when it cannot run it ----

def launcher_works():
    try:
        r = subprocess.run([a.ramscope, "trace", "--help"], capture_output=True, timeout=30)
        return r.returncode == 0
    except OSError:
        return False


LAUNCHER = launcher_works()

# memray's command line, run by the workload's own interpreter with memray's folder appended
# to sys.path (the workload's packages stay first), so one memray install serves every venv.
MEMRAY = ("import sys; sys.path.append(sys.argv.pop(1)); "
          "from memray.commands import main; sys.exit(main())")


def command(tool, kind, argv, out):
    py = python_of(kind)
    full = ([py] + argv) if kind in ("python", "server") else argv
    if tool == "untraced":
        return full, {}
    if tool == "ramscope":
        if LAUNCHER:
            return [a.ramscope, "trace", "--out", out, "--"] + full, {}
        return full, {"LD_PRELOAD": a.lib, "RAMSCOPE_TRACE_DIR": out}
    if tool in ("memray", "memray-native"):
        if kind == "native" or not a.memray_site:
            return None
        flags = ["--native"] if tool == "memray-native" else []
        return ([py, "-c", MEMRAY, a.memray_site, "run", "--follow-fork", "-q", "-f",
                 *flags, "-o", os.path.join(out, "memray.bin")] + argv, {})
    if tool == "heaptrack":
        return ["heaptrack", "-o", os.path.join(out, "heaptrack.%p")] + full, {}
    raise SystemExit(f"unknown tool {tool}")


# ---- one timed run ----

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return r.status, r.read()


def run_batch(cmd, env, log):
    start = time.monotonic()
    r = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL)
    took = time.monotonic() - start
    return took if r.returncode == 0 else None


def run_server(cmd, env, log, model):
    """Start to the 16th response, then SIGINT to the group (Ctrl-C) and wait for exit."""
    port = free_port()
    cmd = cmd + ["--host", "127.0.0.1", "--port", str(port)]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                return None
            try:
                if http(port, "/v1/models")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() - start > 1800:
                return None
            time.sleep(0.25)
        for i in range(16):
            body = json.dumps({"model": model, "prompt": f"the quick brown fox {i}",
                               "max_tokens": 16}).encode()
            if http(port, "/v1/completions", body)[0] != 200:
                return None
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(300)
        return time.monotonic() - start
    except (OSError, subprocess.TimeoutExpired):
        return None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def other_vllm_processes():
    """PIDs whose command line mentions vllm (as `pgrep -f vllm`), this process's ancestors
    (the shell that started the benchmark) left out."""
    mine, pid = set(), os.getpid()
    while pid > 1:
        mine.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in mine:
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if b"vllm" in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def wait_for_no_other_vllm():
    while True:
        others = other_vllm_processes()
        if not others:
            return
        print(f"waiting: other vLLM processes run ({others[:8]})", file=sys.stderr)
        time.sleep(30)


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def main():
    tools = a.tools.split(",")
    loads = workloads()
    scratch = tempfile.mkdtemp(prefix="ramscope-bench-")
    times = {}   # (workload, tool) -> [seconds or None]
    sizes = {}   # (workload, tool) -> output bytes of the last run
    print(f"ramscope trace column: {'ramscope trace --out DIR --' if LAUNCHER else 'LD_PRELOAD=' + a.lib}",
          file=sys.stderr)
    try:
        # One untraced run of each workload first, not counted: caches warm for everyone.
        for name, kind, argv, wenv in loads:
            cmd, _ = command("untraced", kind, argv, scratch)
            env = dict(os.environ, **wenv)
            with open(os.devnull, "w") as log:
                if kind == "server":
                    wait_for_no_other_vllm()
                    took = run_server(cmd, env, log, argv[argv.index("--model") + 1])
                else:
                    took = run_batch(cmd, env, log)
            print(f"warm-up    {name:10} untraced       "
                  f"{'failed' if took is None else f'{took:.2f} s'}", file=sys.stderr)
        for rnd in range(a.repeat):
            for name, kind, argv, wenv in loads:
                for tool in tools:
                    out = os.path.join(scratch, f"{name}.{tool}")
                    shutil.rmtree(out, ignore_errors=True)
                    os.makedirs(out)
                    made = command(tool, kind, argv, out)
                    if made is None:
                        continue
                    cmd, tenv = made
                    env = dict(os.environ, **wenv, **tenv)
                    log_path = os.path.join(scratch, f"{name}.{tool}.{rnd}.log")
                    if kind == "server":
                        wait_for_no_other_vllm()
                    with open(log_path, "w") as log:
                        if kind == "server":
                            took = run_server(cmd, env, log, argv[argv.index("--model") + 1])
                        else:
                            took = run_batch(cmd, env, log)
                    times.setdefault((name, tool), []).append(took)
                    sizes[(name, tool)] = du(out)
                    shown = "failed, see " + log_path if took is None else f"{took:.2f} s"
                    print(f"round {rnd + 1}/{a.repeat} {name:10} {tool:14} {shown}",
                          file=sys.stderr)
                    if took is not None:
                        os.remove(log_path)
                    shutil.rmtree(out, ignore_errors=True)
    finally:
        if not any(f.endswith(".log") for f in os.listdir(scratch)):
            shutil.rmtree(scratch, ignore_errors=True)
    table(loads, tools, times, sizes)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({f"{w}/{t}": v for (w, t), v in times.items()}, f, indent=1)


def human(n):
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def table(loads, tools, times, sizes):
    def median(key):
        ok = [t for t in times.get(key, []) if t is not None]
        return statistics.median(ok) if ok and len(ok) == len(times[key]) else None

    header = ["workload"] + tools
    rows = []
    verdicts = []
    for name, kind, _, _ in loads:
        base = median((name, "untraced"))
        row = [name]
        for tool in tools:
            m = median((name, tool))
            if (name, tool) not in times:
                row.append("n/a")
            elif m is None:
                row.append("failed")
            elif tool == "untraced" or base is None:
                row.append(f"{m:.2f}s")
            else:
                row.append(f"{m:.2f}s {m / base:.2f}x")
        rows.append(row)
        r = median((name, "ramscope"))
        if base and r:
            goal = GOAL_VLLM if kind == "server" else GOAL_ALL
            ratio = r / base
            marks = [f"{ratio:.2f}x {'<=' if ratio <= goal else '>'} {goal}x goal "
                     f"{'met' if ratio <= goal else 'MISSED'}"]
            for other in ("memray", "memray-native"):
                o = median((name, other))
                if o:
                    marks.append(f"{'below' if r < o else 'NOT below'} {other}")
            verdicts.append(f"{name}: ramscope {', '.join(marks)}")
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths))
    print(f"median of {a.repeat} runs (wall seconds, ratio to untraced):")
    print(line(header))
    for r in rows:
        print(line(r))
    print("\noutput written per run (last run):")
    for name, _, _, _ in loads:
        parts = [f"{t} {human(sizes[(name, t)])}" for t in tools
                 if t != "untraced" and (name, t) in sizes]
        print(f"  {name}: {', '.join(parts)}")
    print("\ngoals (ramscope <= 1.3x everywhere, <= 1.1x on vllm, below memray):")
    for v in verdicts:
        print("  " + v)


main()
