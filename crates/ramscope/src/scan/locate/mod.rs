//! Finding the tree to scan: the `vllm` package directory a Python environment imports, or the
//! one a running server has loaded.
//!
//! Neither imports vLLM (seconds, and it may fail): an environment is asked where the package
//! *would* come from (`importlib.util.find_spec`, which for a top-level name imports nothing),
//! and a running process is read from `/proc`: the package its mapped extension modules
//! (`vllm/_C.abi3.so`, `vllm/cumem_allocator*.so`) live in, else its own interpreter is asked
//! the same question with its environment.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::ScanError;
use crate::error::ProcError;
use crate::proc::status::Status;
use crate::proc::tree::ProcessTable;
use crate::proc::{Pid, ProcFs};

/// The package looked for.
pub const PACKAGE: &str = "vllm";

/// How long the interpreter may take to answer (it only starts and looks a name up; a cold
/// start from network storage can still take seconds).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of the interpreter's stdout and stderr kept (the answer is one line).
const MAX_OUTPUT: usize = 64 * 1024;

/// How long to wait for the output pipes to close once the interpreter has exited (something
/// it started may hold them open).
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// The lookup, run as `python -B -c LOOKUP NAME [PATH0]`.
///
/// Which `sys.path`: the environment's own, as the server would see it. So no `-I` (it
/// implies `-E` and `-s`: PYTHONPATH and the user site-packages would be ignored, and a vLLM
/// installed through either would not be found), no `-E`, no `-s`. The one entry dropped is
/// the one `-c` itself puts first, the current directory, so that running ramscope inside a
/// vLLM checkout does not answer with the checkout; `-P` / PYTHONSAFEPATH do that only from
/// Python 3.11 on (and `-P` is an error before), so the script drops it itself, on every
/// version, unless safe-path is already on. When the caller knows what the server's own first
/// entry was (its script's directory, its working directory under `-m`), it passes it as
/// PATH0. `-B`: looking must not write byte code into the environment.
const LOOKUP: &str = r#"
import sys
if sys.path and sys.path[0] == "" and not getattr(sys.flags, "safe_path", False):
    del sys.path[0]
if len(sys.argv) > 2:
    sys.path.insert(0, sys.argv[2])
import os, importlib.util
out = sys.stdout.buffer
try:
    s = importlib.util.find_spec(sys.argv[1])
except BaseException as e:
    out.write(("ERROR %s: %s\n" % (type(e).__name__, str(e).replace("\n", " ")[:500])).encode("utf-8", "replace"))
    raise SystemExit(0)
if s is None:
    out.write(b"NONE\n")
elif s.submodule_search_locations is None:
    out.write(b"MODULE " + os.fsencode(s.origin or "") + b"\n")
else:
    loc = list(s.submodule_search_locations)
    kind = b"NS " if s.origin in (None, "namespace") else b"PKG "
    out.write(kind + (os.fsencode(loc[0]) if loc else b"") + b"\n")
out.flush()
"#;

/// The `vllm` package directory the Python environment `python` imports: an interpreter
/// (`/opt/venv/bin/python`, a name on PATH), or a virtual environment's directory (its
/// `bin/python`); `None` is `python3` on PATH. Imports nothing; runs the interpreter once.
pub fn installed(python: Option<&Path>) -> Result<PathBuf, ScanError> {
    let python = interpreter(python)?;
    let request = Lookup {
        python: &python,
        name: PACKAGE,
        env: ChildEnv::Inherit(Vec::new()),
        cwd: None,
        path0: None,
        timeout: LOOKUP_TIMEOUT,
    };
    request.run()
}

/// The interpreter to run for `python`: a virtual environment's `bin/python`, the path
/// itself, or `python3` from PATH.
fn interpreter(python: Option<&Path>) -> Result<PathBuf, ScanError> {
    let Some(python) = python else {
        return Ok(PathBuf::from("python3"));
    };
    if python.is_dir() {
        return ["bin/python", "bin/python3"]
            .iter()
            .map(|b| python.join(b))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                locate(format!(
                    "{} is a directory but not a virtual environment (it has no bin/python)",
                    python.display()
                ))
            });
    }
    Ok(python.to_path_buf())
}

fn locate(message: String) -> ScanError {
    ScanError::Locate(message)
}

/// The environment the interpreter runs with.
#[derive(Debug, Clone)]
enum ChildEnv {
    /// Ramscope's own, with these set on top.
    Inherit(Vec<(OsString, OsString)>),
    /// Exactly these (another process's).
    Exact(Vec<(OsString, OsString)>),
}

/// One `find_spec` lookup in one interpreter.
struct Lookup<'a> {
    python: &'a Path,
    name: &'a str,
    env: ChildEnv,
    /// The working directory (ramscope's when `None`).
    cwd: Option<&'a Path>,
    /// The first `sys.path` entry the server had, when known.
    path0: Option<&'a Path>,
    timeout: Duration,
}

/// What a lookup's interpreter said, and how it ended.
struct Answer {
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Lookup<'_> {
    fn run(&self) -> Result<PathBuf, ScanError> {
        let py = self.python.display();
        let answer = self.spawn_and_wait()?;
        let first = answer
            .stdout
            .split(|&b| b == b'\n')
            .next()
            .unwrap_or_default();
        if !answer.status.success() {
            let why = last_line(&answer.stderr)
                .map(|l| format!(": {l}"))
                .unwrap_or_default();
            return Err(locate(format!(
                "{py} failed to look up {} ({}){why}",
                self.name, answer.status
            )));
        }
        let (tag, rest) = match first.iter().position(|&b| b == b' ') {
            Some(i) => (&first[..i], &first[i + 1..]),
            None => (first, &[][..]),
        };
        let path = PathBuf::from(OsString::from_vec(rest.to_vec()));
        match tag {
            b"PKG" if !rest.is_empty() => {
                let path = match (path.is_absolute(), self.cwd) {
                    (true, _) => path,
                    (false, Some(cwd)) => cwd.join(path),
                    (false, None) => std::env::current_dir()
                        .map(|d| d.join(&path))
                        .unwrap_or(path),
                };
                if path.is_dir() {
                    Ok(path)
                } else {
                    Err(locate(format!(
                        "{py} would import {} from {}, which is not a directory here",
                        self.name,
                        path.display()
                    )))
                }
            }
            b"NONE" => Err(locate(format!(
                "{py} cannot import {}: it is not installed in that environment",
                self.name
            ))),
            b"NS" => Err(locate(format!(
                "{py} cannot import {}: it is not installed in that environment (only a directory {} without __init__.py is on its path)",
                self.name,
                path.display()
            ))),
            b"MODULE" => Err(locate(format!(
                "{py} imports {} from {}, a single module, not a package directory",
                self.name,
                path.display()
            ))),
            b"ERROR" => Err(locate(format!(
                "{py} could not look up {}: {}",
                self.name,
                String::from_utf8_lossy(rest)
            ))),
            _ => Err(locate(format!(
                "{py} did not answer where it imports {} from (is it a Python interpreter?)",
                self.name
            ))),
        }
    }

    /// Runs the interpreter, waits at most the timeout (then kills it), and collects its
    /// output, capped.
    fn spawn_and_wait(&self) -> Result<Answer, ScanError> {
        let py = self.python.display();
        let mut cmd = Command::new(self.python);
        cmd.arg("-B").arg("-c").arg(LOOKUP).arg(self.name);
        if let Some(p0) = self.path0 {
            cmd.arg(p0);
        }
        match &self.env {
            ChildEnv::Inherit(vars) => {
                cmd.envs(vars.iter().map(|(k, v)| (k, v)));
            }
            ChildEnv::Exact(vars) => {
                cmd.env_clear().envs(vars.iter().map(|(k, v)| (k, v)));
            }
        }
        if let Some(cwd) = self.cwd {
            cmd.current_dir(cwd);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound if self.python.components().count() == 1 => {
                    format!("{py} is not on PATH (name the Python interpreter or virtual environment to look in)")
                }
                std::io::ErrorKind::NotFound => format!("{py} does not exist"),
                std::io::ErrorKind::PermissionDenied => {
                    format!("cannot run {py}: permission denied")
                }
                _ => format!("cannot run {py}: {e}"),
            };
            locate(why)
        })?;
        let stdout = child.stdout.take().map(capture);
        let stderr = child.stderr.take().map(capture);
        let deadline = Instant::now() + self.timeout;
        let mut nap = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(locate(format!("cannot wait for {py}: {e}")));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(locate(format!(
                    "{py} did not answer within {} s (stopped it)",
                    self.timeout.as_secs_f64()
                )));
            }
            std::thread::sleep(nap.min(deadline - now));
            nap = (nap * 2).min(Duration::from_millis(20));
        };
        let grace = Instant::now() + PIPE_GRACE;
        Ok(Answer {
            status,
            stdout: stdout.map(|c| c.collect(grace)).unwrap_or_default(),
            stderr: stderr.map(|c| c.collect(grace)).unwrap_or_default(),
        })
    }
}

/// A pipe read to its end on a thread: the first [`MAX_OUTPUT`] bytes kept, the rest drained
/// so the writer never blocks.
struct Captured {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

fn capture(mut pipe: impl Read + Send + 'static) -> Captured {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let (tx, done) = mpsc::channel();
    let keep = Arc::clone(&buf);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    if let Ok(mut b) = keep.lock() {
                        let room = MAX_OUTPUT.saturating_sub(b.len()).min(n);
                        b.extend_from_slice(&chunk[..room]);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    Captured { buf, done }
}

impl Captured {
    /// What was read, once the pipe closed or `until` passed.
    fn collect(self, until: Instant) -> Vec<u8> {
        let _ = self
            .done
            .recv_timeout(until.saturating_duration_since(Instant::now()));
        self.buf.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

/// The last non-empty line of some output, trimmed and cut short.
fn last_line(out: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(out);
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(300).collect())
}

/// The `vllm` package directory the running process `pid` uses: the one its mapped files
/// (vLLM's compiled extensions) are in, or its children's that run the same interpreter (the
/// API server's engine and workers), else the one its own interpreter would import with its
/// environment, working directory and first `sys.path` entry.
pub fn of_pid(pid: u32) -> Result<PathBuf, ScanError> {
    of_pid_in(&ProcFs::default(), pid)
}

fn of_pid_in(fs: &ProcFs, pid: Pid) -> Result<PathBuf, ScanError> {
    let maps = read_maps(fs, pid, false)?;
    if let Some(pkg) = mapped_package(&maps, PACKAGE) {
        return Ok(pkg);
    }
    let exe = Exe::of(fs, pid)?;
    let comm = fs.comm(pid).unwrap_or_default();
    let is_python = exe.is_python(&maps);
    // Its children: the server's engine and workers (the same interpreter), or, when `pid`
    // is a wrapper (`timeout`, a shell, a container's init), the server itself.
    let children: Vec<Pid> = ProcessTable::scan(fs)
        .map(|t| t.descendants(pid))
        .unwrap_or_default()
        .into_iter()
        .filter(|&c| c != pid)
        .collect();
    let mut child_maps = Vec::new();
    let mut python_child = None;
    for &child in &children {
        let Ok(child_exe) = Exe::of(fs, child) else {
            continue;
        };
        if (is_python && !child_exe.same_as(&exe))
            || fs.read_into(child, "maps", &mut child_maps).is_err()
        {
            continue;
        }
        if let Some(pkg) = mapped_package(&child_maps, PACKAGE) {
            return Ok(pkg);
        }
        if python_child.is_none() && child_exe.is_python(&child_maps) {
            python_child = Some((child, child_exe, std::mem::take(&mut child_maps)));
        }
    }
    if is_python {
        return ask_python(fs, pid, &comm, &exe, &maps);
    }
    match python_child {
        Some((child, child_exe, child_maps)) => {
            let child_comm = fs.comm(child).unwrap_or_default();
            ask_python(fs, child, &child_comm, &child_exe, &child_maps)
        }
        None => Err(locate(format!(
            "process {pid} ({comm}) is not a Python process, and no {PACKAGE} package is mapped in it or its children"
        ))),
    }
}

/// `/proc/PID/maps`, not empty. `seen`: the process was there a moment ago.
fn read_maps(fs: &ProcFs, pid: Pid, seen: bool) -> Result<Vec<u8>, ScanError> {
    let mut maps = Vec::new();
    fs.read_into(pid, "maps", &mut maps)
        .map_err(|e| proc_error(pid, e, seen))?;
    if maps.is_empty() {
        return Err(locate(if fs.exists(pid) {
            format!("process {pid} has no memory mappings (a kernel thread, or it is exiting)")
        } else {
            format!("process {pid} exited while it was being read")
        }));
    }
    Ok(maps)
}

/// The binary a process runs.
struct Exe {
    /// Where `/proc/PID/exe` points (` (deleted)` when replaced since).
    link: PathBuf,
    /// Its identity, when it can still be opened.
    meta: Option<std::fs::Metadata>,
}

impl Exe {
    fn of(fs: &ProcFs, pid: Pid) -> Result<Exe, ScanError> {
        let path = fs.pid_path(pid, "exe");
        let link = std::fs::read_link(&path)
            .map_err(|e| proc_error(pid, ProcError::from_io(pid, &path, e), true))?;
        Ok(Exe {
            link,
            meta: std::fs::metadata(&path).ok(),
        })
    }

    fn same_as(&self, other: &Exe) -> bool {
        match (&self.meta, &other.meta) {
            (Some(a), Some(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => self.link == other.link,
        }
    }

    /// A Python interpreter: named so, or with libpython mapped.
    fn is_python(&self, maps: &[u8]) -> bool {
        self.link
            .file_name()
            .and_then(OsStr::to_str)
            .is_some_and(|n| n.starts_with("python") || n.starts_with("pypy"))
            || memchr::memmem::find(maps, b"/libpython").is_some()
    }
}

/// Asks the interpreter of Python process `pid` where it would import the package from, with
/// its environment, working directory and first `sys.path` entry.
fn ask_python(
    fs: &ProcFs,
    pid: Pid,
    comm: &str,
    exe: &Exe,
    maps: &[u8],
) -> Result<PathBuf, ScanError> {
    let status = fs
        .read_string(pid, "status")
        .map_err(|e| proc_error(pid, e, true))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let same_user = status.contains("Uid:") && Status::parse(&status).uid == me;
    if !same_user {
        // Running another user's interpreter, with that user's environment (PYTHONPATH,
        // LD_PRELOAD, .pth files), would run their code as us: look beside what is mapped.
        return beside_site_packages(maps, PACKAGE).ok_or_else(|| {
            locate(format!(
                "process {pid} ({comm}) maps no {PACKAGE} extension and runs as another user, whose Python ramscope will not run to ask: run ramscope as that user, or give the {PACKAGE} directory to scan"
            ))
        });
    }
    let mut raw = Vec::new();
    fs.read_into(pid, "environ", &mut raw)
        .map_err(|e| proc_error(pid, e, true))?;
    let environ = parse_environ(&raw);
    let cwd = std::fs::read_link(fs.pid_path(pid, "cwd"))
        .ok()
        .filter(|d| d.is_dir());
    let argv = fs.cmdline(pid).unwrap_or_default();
    let python = process_python(
        &argv,
        &environ,
        cwd.as_deref(),
        exe.meta.as_ref(),
        &exe.link,
    );
    let safe_path = environ
        .iter()
        .any(|(k, v)| k == "PYTHONSAFEPATH" && !v.is_empty());
    // A rewritten command line (setproctitle) is no guide to the first sys.path entry.
    let argv_is_python = argv.first().is_some_and(|a0| {
        same_file(
            &resolve_program(a0, &environ, cwd.as_deref()),
            exe.meta.as_ref(),
        )
    });
    let path0 = if safe_path || !argv_is_python {
        None
    } else {
        first_sys_path(&argv, cwd.as_deref())
    };
    let request = Lookup {
        python: &python,
        name: PACKAGE,
        env: ChildEnv::Exact(environ),
        cwd: cwd.as_deref(),
        path0: path0.as_deref(),
        timeout: LOOKUP_TIMEOUT,
    };
    request.run().map_err(|e| {
        locate(format!(
            "no {PACKAGE} extension is mapped in process {pid} ({comm}) or its children, and its Python says: {e}"
        ))
    })
}

/// One clear line for a `/proc` read that failed. `seen`: the process was there a moment ago.
fn proc_error(pid: Pid, e: ProcError, seen: bool) -> ScanError {
    locate(match e {
        ProcError::NoSuchProcess { .. } if !seen => format!("no process with PID {pid}"),
        ProcError::NoSuchProcess { .. } | ProcError::Vanished { .. } => {
            format!("process {pid} exited while it was being read")
        }
        other => other.to_string(),
    })
}

/// The `vllm` package directory holding the most mapped files, from a `maps` listing.
fn mapped_package(maps: &[u8], name: &str) -> Option<PathBuf> {
    let needle = format!("/{name}/");
    let mut checked: BTreeMap<PathBuf, Option<PathBuf>> = BTreeMap::new();
    let mut counts: Vec<(PathBuf, usize)> = Vec::new();
    for line in maps.split(|&b| b == b'\n') {
        if memchr::memmem::find(line, needle.as_bytes()).is_none() {
            continue;
        }
        let Some(file) = mapped_path(line) else {
            continue;
        };
        let Some(dir) = file.parent() else {
            continue;
        };
        let pkg = checked
            .entry(dir.to_path_buf())
            .or_insert_with(|| package_dir_of(&file, name))
            .clone();
        if let Some(pkg) = pkg {
            match counts.iter_mut().find(|(p, _)| *p == pkg) {
                Some((_, n)) => *n += 1,
                None => counts.push((pkg, 1)),
            }
        }
    }
    // The most mapped; of equals, the first.
    let mut best: Option<(PathBuf, usize)> = None;
    for (pkg, n) in counts {
        if best.as_ref().map_or(true, |(_, b)| n > *b) {
            best = Some((pkg, n));
        }
    }
    best.map(|(p, _)| p)
}

/// The file a `maps` line maps (absolute paths only: not `[heap]`, not anonymous), without a
/// ` (deleted)` mark.
fn mapped_path(line: &[u8]) -> Option<PathBuf> {
    // address perms offset dev inode, then the path (which may hold spaces).
    let mut rest = line;
    for _ in 0..5 {
        let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
        rest = &rest[start..];
        let end = rest.iter().position(|b| b.is_ascii_whitespace())?;
        rest = &rest[end..];
    }
    let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    let path = &rest[start..];
    let path = path.strip_suffix(b" (deleted)").unwrap_or(path);
    (path.first() == Some(&b'/')).then(|| PathBuf::from(OsStr::from_bytes(path)))
}

/// The outermost directory named `name` above `file` that is a package: it has an
/// `__init__.py`, or it sits in `site-packages` / `dist-packages`. (Not `~/.cache/vllm`,
/// where vLLM keeps compiled kernels; not a checkout directory that holds the package.)
fn package_dir_of(file: &Path, name: &str) -> Option<PathBuf> {
    let ancestors: Vec<&Path> = file.ancestors().skip(1).collect();
    ancestors.into_iter().rev().find_map(|dir| {
        if dir.file_name() != Some(OsStr::new(name)) || !dir.is_dir() {
            return None;
        }
        let in_site = dir
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "site-packages" || n == "dist-packages");
        (in_site || dir.join("__init__.py").is_file()).then(|| dir.to_path_buf())
    })
}

/// A `name` package in a `site-packages` / `dist-packages` directory the process maps files
/// from (torch's libraries, say): where the environment keeps its packages.
fn beside_site_packages(maps: &[u8], name: &str) -> Option<PathBuf> {
    let mut seen = Vec::new();
    for line in maps.split(|&b| b == b'\n') {
        if memchr::memmem::find(line, b"-packages/").is_none() {
            continue;
        }
        let Some(file) = mapped_path(line) else {
            continue;
        };
        let site = file.ancestors().find(|d| {
            d.file_name()
                .is_some_and(|n| n == "site-packages" || n == "dist-packages")
        });
        let Some(site) = site else {
            continue;
        };
        if seen.iter().any(|s: &PathBuf| s == site) {
            continue;
        }
        seen.push(site.to_path_buf());
        let pkg = site.join(name);
        if pkg.join("__init__.py").is_file() {
            return Some(pkg);
        }
    }
    None
}

/// `KEY=VALUE` pairs from a NUL-separated `environ`.
fn parse_environ(raw: &[u8]) -> Vec<(OsString, OsString)> {
    raw.split(|&b| b == 0)
        .filter_map(|kv| {
            let eq = kv.iter().position(|&b| b == b'=')?;
            (eq > 0).then(|| {
                (
                    OsStr::from_bytes(&kv[..eq]).to_os_string(),
                    OsStr::from_bytes(&kv[eq + 1..]).to_os_string(),
                )
            })
        })
        .collect()
}

/// The interpreter path the process was started as, so a virtual environment's `bin/python`
/// (which finds its `pyvenv.cfg` by that path) stays one: `argv[0]` (through the process's
/// PATH and working directory), or `$VIRTUAL_ENV/bin/python`, when it is the binary the
/// process runs; else the binary itself.
fn process_python(
    argv: &[String],
    environ: &[(OsString, OsString)],
    cwd: Option<&Path>,
    exe: Option<&std::fs::Metadata>,
    exe_link: &Path,
) -> PathBuf {
    let venv = environ
        .iter()
        .find(|(k, _)| k == "VIRTUAL_ENV")
        .map(|(_, v)| Path::new(v).to_path_buf());
    let mut candidates = Vec::new();
    if let Some(a0) = argv.first() {
        candidates.push(resolve_program(a0, environ, cwd));
    }
    if let Some(venv) = venv {
        candidates.push(venv.join("bin/python"));
        candidates.push(venv.join("bin/python3"));
    }
    candidates
        .into_iter()
        .find(|c| same_file(c, exe))
        .unwrap_or_else(|| {
            let link = exe_link.as_os_str().as_bytes();
            PathBuf::from(OsStr::from_bytes(
                link.strip_suffix(b" (deleted)").unwrap_or(link),
            ))
        })
}

/// A program name as `execvp` would find it: a path (against `cwd` when relative), or a name
/// looked up in the process's PATH.
fn resolve_program(program: &str, environ: &[(OsString, OsString)], cwd: Option<&Path>) -> PathBuf {
    let p = Path::new(program);
    if program.contains('/') {
        return match (p.is_absolute(), cwd) {
            (false, Some(cwd)) => cwd.join(p),
            _ => p.to_path_buf(),
        };
    }
    let path = environ
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| match (dir.is_absolute(), cwd) {
            (false, Some(cwd)) => cwd.join(dir).join(p),
            _ => dir.join(p),
        })
        .find(|c| c.is_file())
        .unwrap_or_else(|| p.to_path_buf())
}

fn same_file(path: &Path, exe: Option<&std::fs::Metadata>) -> bool {
    let Some(exe) = exe else {
        return false;
    };
    std::fs::metadata(path).is_ok_and(|m| m.dev() == exe.dev() && m.ino() == exe.ino())
}

/// The first `sys.path` entry of `python ARGS…`: the working directory under `-m` or `-c`,
/// the script's directory for a script, none under `-I`/`-P` or for an interactive session.
fn first_sys_path(argv: &[String], cwd: Option<&Path>) -> Option<PathBuf> {
    let mut args = argv.iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-" {
            return None;
        }
        if !arg.starts_with('-') {
            let script = Path::new(arg);
            let script = match (script.is_absolute(), cwd) {
                (false, Some(cwd)) => cwd.join(script),
                _ => script.to_path_buf(),
            };
            // Python takes the directory of the script's real path.
            let real = std::fs::canonicalize(&script).unwrap_or(script);
            return real.parent().map(Path::to_path_buf);
        }
        if arg == "--" {
            return args
                .next()
                .and_then(|s| first_sys_path(&["python".into(), s.clone()], cwd));
        }
        if arg.starts_with("--") {
            continue;
        }
        // A cluster of one-letter options, the last of which may take a value.
        let flags = &arg[1..];
        for (i, c) in flags.char_indices() {
            match c {
                'I' | 'P' => return None,
                'm' | 'c' => return cwd.map(Path::to_path_buf),
                'W' | 'X' | 'Q' => {
                    if i + c.len_utf8() == flags.len() {
                        args.next();
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
