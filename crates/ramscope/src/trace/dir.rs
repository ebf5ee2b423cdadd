//! A trace directory: every process image's `.rstrace` file and `run.json`, as a process
//! tree with each process's role.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::proc::roles::{identify, Identity};

use super::format::{self, FormatError, TraceFile};

/// Why a directory could not be read as a trace.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("{0}: no such trace directory")]
    Missing(String),
    #[error("{0}: {1}")]
    Unreadable(String, #[source] std::io::Error),
    #[error("{0} holds no .rstrace files: was the command run under `ramscope trace`, and did it allocate?")]
    Empty(String),
    /// Every trace file was unreadable; the first error says why.
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// What `ramscope trace` wrote about the run. Only the command line is read; the rest is
/// kept as written, for the JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub command: Vec<String>,
    pub raw: serde_json::Value,
}

/// One process image.
#[derive(Debug, Clone)]
pub struct TracedProcess {
    pub trace: TraceFile,
    pub identity: Identity,
    /// The image this one was forked from or exec'd over (an index into the tree).
    pub parent: Option<usize>,
    /// No later image of the same process replaced this one by exec.
    pub last_image: bool,
}

impl TracedProcess {
    /// `pid` and, for an exec'd process, which image.
    pub fn name(&self) -> String {
        if self.trace.image == 0 {
            self.trace.pid.to_string()
        } else {
            format!("{}#{}", self.trace.pid, self.trace.image)
        }
    }
}

/// The whole directory.
#[derive(Debug, Clone)]
pub struct TraceDir {
    pub path: PathBuf,
    pub run: Option<RunInfo>,
    /// Every readable image, oldest first (by the time tracing began).
    pub processes: Vec<TracedProcess>,
    /// Files that could not be read, and anything else the reader should know.
    pub notes: Vec<String>,
}

/// Reads a trace directory. Files that cannot be parsed are left out with a note; a
/// directory with none that can is an error.
pub fn read(path: &Path) -> Result<TraceDir, DirError> {
    let shown = path.display().to_string();
    let entries = std::fs::read_dir(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DirError::Missing(shown.clone()),
        _ => DirError::Unreadable(shown.clone(), e),
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DirError::Unreadable(shown.clone(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // The writer renames a finished temporary file into place: only whole files end so.
        if name.ends_with(".rstrace") && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(DirError::Empty(shown));
    }
    let mut notes = Vec::new();
    let mut traces = Vec::new();
    let mut first_error = None;
    for name in &names {
        match format::read(&path.join(name)) {
            Ok(t) => traces.push(t),
            Err(e) => {
                notes.push(format!("skipped {e}"));
                first_error.get_or_insert(e);
            }
        }
    }
    if traces.is_empty() {
        if let Some(e) = first_error {
            return Err(e.into());
        }
    }
    let run = match read_run(&path.join("run.json")) {
        Ok(run) => run,
        Err(e) => {
            notes.push(format!("run.json: {e}"));
            None
        }
    };
    Ok(TraceDir {
        path: path.to_path_buf(),
        run,
        processes: tree(traces),
        notes,
    })
}

fn read_run(path: &Path) -> Result<Option<RunInfo>, String> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let raw: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("not JSON ({e})"))?;
    let command = raw
        .get("command")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|w| w.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(RunInfo { command, raw }))
}

/// Links each image to its parent and names its role.
pub fn tree(mut traces: Vec<TraceFile>) -> Vec<TracedProcess> {
    traces.sort_by(|a, b| {
        (a.init_ns, a.pid, a.image, &a.file_name).cmp(&(b.init_ns, b.pid, b.image, &b.file_name))
    });
    let by_name: HashMap<&str, usize> = traces
        .iter()
        .enumerate()
        .map(|(i, t)| (t.file_name.as_str(), i))
        .collect();
    let mut links = Vec::with_capacity(traces.len());
    for (i, t) in traces.iter().enumerate() {
        let named = t
            .parent
            .as_deref()
            .and_then(|p| by_name.get(p).copied())
            .filter(|&p| p != i);
        // The parent's file may be missing (a process killed before its first write):
        // then the newest earlier image of the parent PID, if it was traced.
        let parent = named.or_else(|| {
            traces[..i]
                .iter()
                .rposition(|p| p.pid == t.ppid && p.init_ns <= t.init_ns)
        });
        let same_process = |o: &TraceFile| o.pid == t.pid && o.start_ticks == t.start_ticks;
        let last_image = !traces.iter().any(|o| same_process(o) && o.image > t.image);
        links.push((parent, last_image));
    }
    traces
        .into_iter()
        .zip(links)
        .map(|(trace, (parent, last_image))| TracedProcess {
            identity: identify(&trace.comm, &trace.cmdline),
            trace,
            parent,
            last_image,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::roles::Role;

    fn image(pid: u32, ppid: u32, image: u32, parent: Option<&str>, init: u64) -> TraceFile {
        TraceFile {
            file_name: format!("{pid}.77.{image}.rstrace"),
            pid,
            ppid,
            start_ticks: 77,
            image,
            parent: parent.map(str::to_string),
            init_ns: init,
            comm: "python3".into(),
            cmdline: vec![
                "python3".into(),
                "-m".into(),
                "vllm.entrypoints.openai.api_server".into(),
            ],
            ..TraceFile::default()
        }
    }

    #[test]
    fn links_forks_and_execs() {
        let mut core = image(20, 10, 0, Some("10.77.0.rstrace"), 5);
        core.comm = "VLLM::EngineCor".into();
        core.cmdline = vec!["VLLM::EngineCore".into()];
        let exec0 = image(30, 10, 0, Some("10.77.0.rstrace"), 6);
        let exec1 = image(30, 10, 1, Some("30.77.0.rstrace"), 7);
        // Its parent's file is missing: linked by PID.
        let orphan = image(40, 30, 0, Some("gone.rstrace"), 8);
        let t = tree(vec![orphan, exec1, core, exec0, image(10, 1, 0, None, 1)]);
        let names: Vec<String> = t.iter().map(TracedProcess::name).collect();
        assert_eq!(names, ["10", "20", "30", "30#1", "40"]);
        let parents: Vec<Option<usize>> = t.iter().map(|p| p.parent).collect();
        assert_eq!(parents, [None, Some(0), Some(0), Some(2), Some(3)]);
        let last: Vec<bool> = t.iter().map(|p| p.last_image).collect();
        assert_eq!(last, [true, true, false, true, true]);
        assert_eq!(t[0].identity.role, Role::ApiServer);
        assert_eq!(t[1].identity.role, Role::EngineCore);
    }

    #[test]
    fn a_missing_or_empty_directory_is_one_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert_eq!(
            read(&missing).unwrap_err().to_string(),
            format!("{}: no such trace directory", missing.display())
        );
        std::fs::write(dir.path().join("run.json"), "{}").unwrap();
        std::fs::write(dir.path().join(".1.2.0.rstrace.tmp"), "x").unwrap();
        assert!(read(dir.path())
            .unwrap_err()
            .to_string()
            .contains("holds no .rstrace files"));
        // Only broken files: the first one's error.
        std::fs::write(
            dir.path().join("1.2.0.rstrace"),
            "ramscope-trace 1\npid 1\n",
        )
        .unwrap();
        assert_eq!(
            read(dir.path()).unwrap_err().to_string(),
            "1.2.0.rstrace: no `end` line: the file is cut short"
        );
    }

    #[test]
    fn reads_good_files_and_notes_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let good = "ramscope-trace 1\npid 5\nppid 1\nstart_ticks 3\nimage 0\norigin start\nparent -\ninit_ns 1\nflush_ns 2\nfinal 1\nend\n";
        std::fs::write(dir.path().join("5.3.0.rstrace"), good).unwrap();
        std::fs::write(dir.path().join("6.3.0.rstrace"), "garbage").unwrap();
        std::fs::write(
            dir.path().join("run.json"),
            r#"{"command":["python3","x.py"]}"#,
        )
        .unwrap();
        let d = read(dir.path()).unwrap();
        assert_eq!(d.processes.len(), 1);
        assert_eq!(d.run.unwrap().command, ["python3", "x.py"]);
        assert_eq!(d.notes.len(), 1);
        assert!(d.notes[0].starts_with("skipped 6.3.0.rstrace:1: not a ramscope trace"));
    }
}
