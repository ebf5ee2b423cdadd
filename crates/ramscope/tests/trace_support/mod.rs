//! The tracer's test programs (`tests/trace_programs`): built from source once per test run
//! into the cargo target folder, keyed by a hash of their sources, so a clean machine needs
//! only gcc and python3. `sites` lists what a correct tracer must find in each program;
//! `marker_line` turns a `SITE:name` marker into the line number a stack should resolve to.
#![allow(dead_code)]

pub mod sites;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[allow(unused_imports)]
pub use sites::{Process, Run, Site, COUNTS, EVENT_MARKERS, SITES};

/// The built programs.
pub struct Programs {
    /// The build folder (`<target>/tmp/trace-programs/<hash>`).
    pub dir: PathBuf,
    pub alloc: PathBuf,
    pub alloc_o2: PathBuf,
    pub storm: PathBuf,
    pub pinned: PathBuf,
    /// Holds the fake `libcuda.so.1` and `libcudart.so.12`: `pinned` needs it as
    /// `LD_LIBRARY_PATH`.
    pub fakecuda: PathBuf,
}

impl Programs {
    /// The command line of a run, program first (Python runs start with `python3`).
    pub fn argv(&self, run: Run) -> Vec<OsString> {
        let path = |p: &Path| p.as_os_str().to_owned();
        match run {
            Run::Alloc => vec![path(&self.alloc)],
            Run::AllocO2 => vec![path(&self.alloc_o2)],
            Run::Killme => vec![path(&self.alloc), "killme".into()],
            Run::Pinned => vec![path(&self.pinned)],
            Run::AllocPy => vec![path(python()), path(&source_dir().join("alloc.py"))],
            Run::Storm(rounds) => vec![path(&self.storm), rounds.to_string().into()],
        }
    }

    /// Environment the run needs besides the caller's.
    pub fn env(&self, run: Run) -> Vec<(&'static str, OsString)> {
        match run {
            Run::Pinned => vec![("LD_LIBRARY_PATH", self.fakecuda.as_os_str().to_owned())],
            _ => Vec::new(),
        }
    }

    /// A ready-to-run `Command` for `run`, untraced.
    pub fn command(&self, run: Run) -> Command {
        let argv = self.argv(run);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).envs(self.env(run));
        cmd
    }
}

/// The real interpreter behind `python3` (`sys.executable`), so the traced tree starts with
/// Python itself rather than with a wrapper script such as a pyenv shim.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 is needed by the trace tests");
        let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && !exe.is_empty(),
            "python3 has no sys.executable"
        );
        PathBuf::from(exe)
    })
}

/// Where the sources are: `crates/ramscope/tests/trace_programs`.
pub fn source_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/trace_programs")
}

/// The programs, built on first use (by any test binary; later runs reuse the build while the
/// sources are unchanged). Panics with the compiler's output when the build fails.
pub fn programs() -> &'static Programs {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let dir = build(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trace-programs"))
            .unwrap_or_else(|e| panic!("building tests/trace_programs: {e}"));
        Programs {
            alloc: dir.join("alloc"),
            alloc_o2: dir.join("alloc-O2"),
            storm: dir.join("storm"),
            pinned: dir.join("pinned"),
            fakecuda: dir.join("fakecuda"),
            dir,
        }
    })
}

/// Builds into `parent/<hash of the sources>` unless that folder exists. The build happens in
/// a temporary folder renamed into place at the end, so test binaries running at the same
/// time never see a half-built folder (the loser of a race keeps the winner's).
fn build(parent: &Path) -> Result<PathBuf, String> {
    let key = source_hash()?;
    let dir = parent.join(format!("{key:016x}"));
    if dir.is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(parent)
        .map_err(|e| format!("temporary folder in {}: {e}", parent.display()))?;
    let out = Command::new("bash")
        .arg(source_dir().join("build.sh"))
        .arg(tmp.path())
        .output()
        .map_err(|e| format!("running build.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "build.sh failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let built = tmp.keep();
    if std::fs::rename(&built, &dir).is_err() {
        // Another test binary finished first: use its folder, drop ours.
        let _ = std::fs::remove_dir_all(&built);
        if !dir.is_dir() {
            return Err(format!("could not move the build to {}", dir.display()));
        }
    }
    Ok(dir)
}

/// FNV-1a over the build inputs (C sources, headers, build.sh; names and contents) and `CC`.
fn source_hash() -> Result<u64, String> {
    let mut files = Vec::new();
    collect(&source_dir(), &mut files)?;
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes.iter().chain([0u8].iter()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for f in &files {
        let rel = f.strip_prefix(source_dir()).unwrap_or(f);
        feed(rel.to_string_lossy().as_bytes());
        feed(&std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    feed(std::env::var("CC").unwrap_or_default().as_bytes());
    Ok(h)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("c" | "h" | "sh")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// The 1-based line of `source` (a path under `trace_programs`, e.g. `alloc.c` or
/// `fakecuda/pinned.c`) that carries the marker `SITE:<marker>`. Panics unless exactly one
/// line does.
pub fn marker_line(source: &str, marker: &str) -> u32 {
    let path = source_dir().join(source);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let lines = marker_lines(&text, marker);
    match lines[..] {
        [line] => line,
        [] => panic!("no SITE:{marker} in {source}"),
        _ => panic!("SITE:{marker} is on several lines of {source}: {lines:?}"),
    }
}

/// Every line of `text` carrying `SITE:<marker>` (the whole name: `SITE:a` does not match
/// `SITE:ab`).
pub fn marker_lines(text: &str, marker: &str) -> Vec<u32> {
    let needle = format!("SITE:{marker}");
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            line.match_indices(&needle).any(|(at, _)| {
                let rest = &line[at + needle.len()..];
                !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            })
        })
        .map(|(i, _)| i as u32 + 1)
        .collect()
}

/// Every marker name in `text`, in order.
pub fn markers_in(text: &str) -> Vec<String> {
    text.match_indices("SITE:")
        .map(|(at, m)| {
            text[at + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}
