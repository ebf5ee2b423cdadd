//! Helpers shared by the end-to-end tests: the binary, and real processes with known memory.
#![allow(dead_code)]

pub mod cgroup;
pub mod llama;
pub mod sources;
pub mod vllm;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MIB: u64 = 1 << 20;

/// Runs the ramscope binary built for these tests.
pub fn ramscope<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ramscope"))
        .args(args)
        .output()
        .expect("run ramscope")
}

/// ramscope with a clean environment: no calibration profile, no vLLM variables.
pub fn clean_ramscope(args: &[&str], home: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ramscope"))
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("COLUMNS", "100")
        .output()
        .expect("run ramscope")
}

/// The JSON a finished run printed (panics with its output when it is not JSON).
pub fn json_out(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A JSON byte count.
pub fn u(v: &serde_json::Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not a byte count: {v}"))
}

/// Runs ramscope, which must succeed, and parses its JSON output.
pub fn json_of<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> serde_json::Value {
    let out = ramscope(args);
    assert!(
        out.status.success(),
        "ramscope failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// A Python process that runs a script in steps. The script calls `ready("name")` to say it
/// reached a state; it then waits until the test advances it (or closes its stdin).
pub struct Loaded {
    child: Child,
    stdin: Mutex<Option<ChildStdin>>,
    stdout: Mutex<BufReader<ChildStdout>>,
    last: Mutex<String>,
}

const PRELUDE: &str = r#"
import sys
def ready(name):
    print(name, flush=True)
    sys.stdin.readline()
"#;

impl Loaded {
    pub fn python(script: &str) -> Loaded {
        let mut child = Command::new("python3")
            .arg("-u")
            .arg("-c")
            .arg(format!("{PRELUDE}\n{script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("python3 is needed for the end-to-end tests");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let loaded = Loaded {
            child,
            stdin: Mutex::new(stdin),
            stdout: Mutex::new(stdout),
            last: Mutex::new(String::new()),
        };
        let first = loaded.read_line();
        *loaded.last.lock().unwrap() = first;
        loaded
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn read_line(&self) -> String {
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        self.stdout
            .lock()
            .unwrap()
            .read_line(&mut line)
            .expect("read the script's output");
        assert!(Instant::now() < deadline, "script too slow");
        assert!(!line.is_empty(), "the script exited early");
        line.trim().to_string()
    }

    /// Lets the script run on until it says `name`.
    pub fn advance(&self, name: &str) {
        if *self.last.lock().unwrap() == name {
            return;
        }
        if let Some(stdin) = self.stdin.lock().unwrap().as_mut() {
            stdin.write_all(b"\n").expect("advance the script");
        }
        let line = self.read_line();
        assert_eq!(line, name, "the script reached another state");
        *self.last.lock().unwrap() = line;
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // Closing stdin lets the script clean up (unlink its shared memory) and exit.
        self.stdin.lock().unwrap().take();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of its process group goes.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// A stand-in server: `python3 -m MODULE ARGS…` run from a temporary package whose module is
/// `script`, in its own process group (killed whole when dropped). Returns once the script
/// printed its first line (say "ready" after forking what it forks).
pub struct StandIn {
    child: Child,
    _dir: tempfile::TempDir,
}

impl StandIn {
    pub fn python(module: &str, script: &str, args: &[&str]) -> StandIn {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let parts: Vec<&str> = module.split('.').collect();
        let mut pkg = dir.path().to_path_buf();
        for part in &parts[..parts.len() - 1] {
            pkg.push(part);
            std::fs::create_dir_all(&pkg).expect("package folder");
            std::fs::write(pkg.join("__init__.py"), "").expect("__init__.py");
        }
        let file = pkg.join(format!("{}.py", parts[parts.len() - 1]));
        std::fs::write(file, script).expect("the module");
        let mut child = Command::new("python3")
            .arg("-m")
            .arg(module)
            .args(args)
            .env("PYTHONPATH", dir.path())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("python3 is needed for the end-to-end tests");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        StandIn { child, _dir: dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the stand-in's own process group.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// `ramscope measure --json` of this test process (no children), written into `dir`.
pub fn snapshot_of_self(dir: &std::path::Path) -> std::path::PathBuf {
    let me = std::process::id().to_string();
    let out = ramscope(&["measure", "--json", "--no-tree", &me]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("snapshot.json");
    std::fs::write(&path, &out.stdout).expect("write the snapshot");
    path
}
