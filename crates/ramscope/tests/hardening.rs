//! Bad surroundings, on the real binary: unwritable output, files that never end, probes that
//! never finish, arguments left out. Each must end in one line and a non-zero exit, never a
//! panic (exit 101), a hang or unbounded memory.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const FULL: &str = "ramscope: cannot write output: No space left on device (os error 28)";

/// Inputs for the commands that read files: a snapshot, a recording.
struct Inputs {
    _dir: tempfile::TempDir,
    snapshot: PathBuf,
    recording: PathBuf,
}

fn inputs() -> Inputs {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("snap.json");
    let out = ramscope()
        .args(["measure", "--json", "--no-tree"])
        .arg(std::process::id().to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&snapshot, &out.stdout).unwrap();
    let recording = dir.path().join("rec.jsonl");
    let out = ramscope()
        .args(["run", "--interval", "50ms", "--out"])
        .arg(&recording)
        .args(["--", "sleep", "0.2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Inputs {
        _dir: dir,
        snapshot,
        recording,
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn output_to_a_full_disk_is_one_line_and_exit_1() {
    let i = inputs();
    let me = std::process::id().to_string();
    let (snap, rec) = (s(&i.snapshot), s(&i.recording));
    let explain = |json: bool| {
        let mut a = vec!["explain".to_string(), "--no-calibration".into()];
        if json {
            a.push("--json".into());
        }
        a.extend(
            [
                "--from-snapshot",
                &snap,
                "--",
                "vllm",
                "serve",
                "qwen3-0.6b",
            ]
            .map(String::from),
        );
        a
    };
    let run_out = i._dir.path().join("r2.jsonl");
    let cases: Vec<Vec<String>> = vec![
        vec!["measure".into(), "--json".into(), me.clone()],
        vec!["measure".into(), me.clone()],
        vec!["estimate".into(), "--no-calibration".into()],
        vec![
            "estimate".into(),
            "--no-calibration".into(),
            "--json".into(),
        ],
        vec!["diff".into(), snap.clone(), snap.clone()],
        vec!["diff".into(), "--json".into(), snap.clone(), rec.clone()],
        vec!["report".into(), rec.clone()],
        vec!["report".into(), "--json".into(), rec.clone()],
        explain(false),
        explain(true),
        // `run --json` prints its summary on stdout.
        [
            "run",
            "--json",
            "--interval",
            "50ms",
            "--out",
            &s(&run_out),
            "--",
            "true",
        ]
        .map(String::from)
        .to_vec(),
        vec!["--help".into()],
    ];
    for args in cases {
        let out = ramscope().args(&args).stdout(dev_full()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim_end(), FULL, "{args:?}");
    }
}

#[test]
fn run_with_its_summary_unwritable_fails_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // The summary goes to stderr, like time(1): with stderr full there is nowhere to say
    // why, but the exit says it failed, and stdout stays the command's.
    let out = ramscope()
        .args(["run", "--interval", "50ms", "--out"])
        .arg(dir.path().join("r.jsonl"))
        .args(["--", "echo", "hello"])
        .stderr(dev_full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    // Other errors with stderr full: exit 1 all the same, no panic.
    let out = ramscope()
        .args(["measure", "4194303"])
        .stderr(dev_full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// Runs ramscope with `args`, bounded in time, and checks it failed with `line`.
fn fails_with(args: &[&str], line: &str) -> Finished {
    let mut cmd = ramscope();
    cmd.args(args).stdin(Stdio::null());
    let started = Instant::now();
    let f = run_measured(cmd, Duration::from_secs(20));
    assert!(!f.timed_out, "{args:?} ran for {:?}", started.elapsed());
    assert_eq!(f.code, Some(1), "{args:?}: {}", f.stderr);
    assert_eq!(f.stderr.trim_end(), line, "{args:?}");
    f
}

#[test]
fn devices_and_pipes_are_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let explain = |f: &str| {
        [
            "explain",
            "--from-snapshot",
            f,
            "--",
            "vllm",
            "serve",
            "qwen3-0.6b",
        ]
        .map(String::from)
        .to_vec()
    };
    for file in ["/dev/zero", &s(&fifo), "/tmp"] {
        let line = format!("ramscope: {file} is not a regular file");
        let f = fails_with(&["report", file], &line);
        assert!(f.max_rss_bytes < 256 << 20, "{file}: {f:?}");
        fails_with(&["diff", file, "/dev/null"], &line);
        let args = explain(file);
        fails_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), &line);
    }
}

/// `n` MiB as ramscope prints it (the tests check the sentence, not the number format).
fn mib(n: u64) -> String {
    ramscope::units::bytes(n << 20)
}

#[test]
fn run_refuses_a_recording_that_is_not_a_file_before_starting_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mark = dir.path().join("ran");
    let touch = format!("touch {}", s(&mark));
    let (f, file) = (s(&fifo), s(&dir.path().join("r.jsonl")));
    for (interval, out, line) in [
        ("50ms", &f, format!("ramscope: {f} is not a regular file")),
        // Bad options, too, fail before the command runs.
        (
            "5ms",
            &file,
            "ramscope: --interval must be at least 10ms".into(),
        ),
    ] {
        fails_with(
            &[
                "run",
                "--interval",
                interval,
                "--out",
                out,
                "--",
                "sh",
                "-c",
                &touch,
            ],
            &line,
        );
        assert!(!mark.exists(), "the command ran");
    }
}

#[test]
fn a_huge_file_without_newlines_is_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // 4 GiB with no newline: zeros, and an object that never closes (sparse: no disk used).
    let zeros = dir.path().join("zeros");
    let brace = dir.path().join("brace");
    for (path, first) in [(&zeros, b"\0"), (&brace, b"{")] {
        let f = std::fs::File::create(path).unwrap();
        std::io::Write::write_all(&mut &f, first).unwrap();
        f.set_len(4 << 30).unwrap();
    }
    let (z, b) = (s(&zeros), s(&brace));
    let bound = 128 << 20;
    for (args, line) in [
        (
            vec!["report", z.as_str()],
            format!("ramscope: {z} is not a ramscope recording (its first line has no \"schema\": \"ramscope.recording/1\")"),
        ),
        (
            vec!["report", b.as_str()],
            format!("ramscope: {b} is not a ramscope recording (its first line has no \"schema\": \"ramscope.recording/1\")"),
        ),
        (
            vec!["diff", z.as_str(), z.as_str()],
            format!("ramscope: {z} is neither a ramscope snapshot nor a recording"),
        ),
        (
            vec!["diff", b.as_str(), b.as_str()],
            format!("ramscope: {b} is larger than {} (the most ramscope reads of such a file)", mib(256)),
        ),
    ] {
        let f = fails_with(&args, &line);
        assert!(f.max_rss_bytes < bound, "{args:?} peaked at {} bytes", f.max_rss_bytes);
    }
}

#[test]
fn a_recording_line_over_the_limit_names_its_line() {
    let i = inputs();
    let mut text = std::fs::read(&i.recording).unwrap();
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    text.extend(std::iter::repeat_n(b'x', (64 << 20) + 1));
    let long = i._dir.path().join("long.jsonl");
    std::fs::write(&long, text).unwrap();
    let l = s(&long);
    fails_with(
        &["report", &l],
        &format!(
            "ramscope: {l} line {} is longer than {}, more than any recording line",
            lines + 1,
            mib(64)
        ),
    );
}

/// A stand-in for Python that `calibrate` runs as `PYTHON -c PROBE`: a shell script.
fn fake_python(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("python");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Whether `pid` still runs (a zombie does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn calibrate_stops_a_probe_that_never_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    for body in [
        // Silent forever, with a child of its own.
        format!(
            "sleep 1000 & echo $! > {0}; echo $$ >> {0}; exec sleep 1000",
            s(&pids)
        ),
        // Chatty forever: output that is not progress does not keep it alive.
        format!("echo $$ > {}; exec yes", s(&pids)),
    ] {
        let python = fake_python(dir.path(), &body);
        let mut cmd = ramscope();
        cmd.args(["calibrate", "--out"])
            .arg(dir.path().join("c.json"))
            .arg("--python")
            .arg(&python)
            .env("RAMSCOPE_PROBE_TIMEOUT", "1s");
        let started = Instant::now();
        let f = run_measured(cmd, Duration::from_secs(30));
        assert!(!f.timed_out, "{body}");
        assert!(started.elapsed() < Duration::from_secs(15), "{body}");
        assert_eq!(f.code, Some(1), "{body}: {}", f.stderr);
        let last = f.stderr.trim_end().lines().last().unwrap_or_default();
        assert_eq!(
            last,
            format!(
                "ramscope: probe under {} failed at stage \"start\": no progress for 1.00 s (stopped it; set RAMSCOPE_PROBE_TIMEOUT to wait longer)",
                s(&python)
            ),
            "{body}"
        );
        assert!(f.max_rss_bytes < 128 << 20, "{body}: {f:?}");
        let text = std::fs::read_to_string(&pids).unwrap();
        for pid in text.split_whitespace() {
            let pid: u32 = pid.parse().unwrap();
            wait_for("the probe to be killed", Duration::from_secs(5), || {
                (!running(pid)).then_some(())
            });
        }
        assert!(!dir.path().join("c.json").exists());
    }
    let out = ramscope()
        .args(["calibrate", "--python", "/nonexistent"])
        .env("RAMSCOPE_PROBE_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "ramscope: RAMSCOPE_PROBE_TIMEOUT=\"soon\" is not a duration such as 90s or 10m"
    );
}

#[test]
fn usage_errors_name_what_is_missing() {
    for (args, missing) in [
        (vec!["report"], "<FILE>"),
        (vec!["diff", "a.json"], "<B>"),
        (vec!["diff"], "<A> <B>"),
    ] {
        let out = ramscope().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.trim_end(),
            format!("ramscope: the following required arguments were not provided: {missing} (see ramscope --help)"),
            "{args:?}"
        );
    }
}

#[test]
fn a_kernel_thread_is_called_one() {
    let comm = std::fs::read_to_string("/proc/2/comm").unwrap_or_default();
    if comm.trim() != "kthreadd" {
        eprintln!("skipped: PID 2 is not kthreadd here (a PID namespace)");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ramscope"))
        .args(["measure", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "ramscope: PID 2 is a kernel thread: it has no user memory to measure"
    );
}

#[test]
fn root_is_not_told_to_run_as_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    // Whatever PID 1 is, reading it as root either works or fails for a reason that is not
    // "not root".
    let out = ramscope()
        .args(["measure", "--no-tree", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        eprintln!("skipped: root can read PID 1 here");
        return;
    }
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(!err.contains("as root,"), "{err}");
    assert!(err.contains("CAP_SYS_PTRACE"), "{err}");
}
