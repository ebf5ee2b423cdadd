//! The `ramscope.recording/1` format: one JSON object per line, so a recording streams and
//! whatever was written before the recorder died stays readable.
//!
//! Line 1 is a [`Header`]. Every later line is a [`Sample`]: a `ramscope.snapshot/1` document
//! with `t_s` (seconds since the start) and the sampler's own cost added. A recording that
//! ended normally closes with a [`RecordingEnd`] line. Readers skip lines with a schema they
//! do not know, and a last line cut short by a kill.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::proc::Pid;
use crate::snapshot::{ProcessSnapshot, TreeSnapshot, SNAPSHOT_SCHEMA};

pub const RECORDING_SCHEMA: &str = "ramscope.recording/1";
pub const END_SCHEMA: &str = "ramscope.recording-end/1";

/// The first line: what was recorded and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub schema: String,
    pub started_at: String,
    /// CLOCK_MONOTONIC (seconds since boot, not counting suspend) at `t_s` = 0: lines samples
    /// up with other tools' monotonic timestamps.
    #[serde(default)]
    pub monotonic_start_s: f64,
    /// `run`: the command started; `watch`: the command lines of the roots.
    pub command: Vec<String>,
    /// `run` or `watch`.
    pub mode: String,
    pub interval_s: f64,
    /// Every this many seconds (at most) a process's `smaps_rollup` is read.
    pub rollup_every_s: f64,
    /// Every this many seconds (at most) a process's full `smaps` is read for categories.
    pub smaps_every_s: f64,
    /// A full `smaps` read also happens when RSS moved by more than this fraction.
    pub smaps_on_move: f64,
    /// Every this many seconds (at most) the whole process table is scanned for new
    /// members of the tree.
    #[serde(default)]
    pub scan_every_s: f64,
    pub roots: Vec<Pid>,
    pub ramscope_version: String,
}

/// What taking one sample cost the machine (the recorder's own thread).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleCost {
    /// CPU time of the sampling thread for this sample (user + system).
    pub cpu_s: f64,
    pub wall_s: f64,
    pub status_reads: u64,
    pub rollup_reads: u64,
    pub smaps_reads: u64,
    /// Wall time spent in `smaps_rollup` and `smaps` reads: the kernel holds each target's
    /// mmap lock for reading meanwhile.
    pub rollup_s: f64,
    pub smaps_s: f64,
    /// Wall time of the `/proc/*/stat` scan that finds new children (0 when none was due).
    pub scan_s: f64,
}

impl SampleCost {
    pub fn add(&mut self, o: &SampleCost) {
        self.cpu_s += o.cpu_s;
        self.wall_s += o.wall_s;
        self.status_reads += o.status_reads;
        self.rollup_reads += o.rollup_reads;
        self.smaps_reads += o.smaps_reads;
        self.rollup_s += o.rollup_s;
        self.smaps_s += o.smaps_s;
        self.scan_s += o.scan_s;
    }
}

/// One sample: a snapshot of the tree at `t_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t_s: f64,
    #[serde(flatten)]
    pub snapshot: TreeSnapshot,
    pub overhead: SampleCost,
}

/// The last line of a recording that ended normally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingEnd {
    pub schema: String,
    pub t_s: f64,
    /// Why recording stopped: `exited`, `interrupted`, `duration`, `tree-gone`.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<i32>,
    pub samples: u64,
    /// The sampler's cost over the whole recording.
    pub overhead: SampleCost,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("cannot write recording {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is not a ramscope recording (its first line has no \"schema\": \"{RECORDING_SCHEMA}\")", path.display())]
    NotRecording { path: PathBuf },
    #[error("{} line {line}: {source}", path.display())]
    BadLine {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("{} is neither a ramscope snapshot nor a recording", path.display())]
    Unknown { path: PathBuf },
}

/// Writes a recording line by line, each flushed to the kernel as soon as it is written.
pub struct RecordingWriter {
    path: PathBuf,
    out: BufWriter<File>,
    samples: u64,
}

impl RecordingWriter {
    pub fn create(path: &Path, header: &Header) -> Result<RecordingWriter, RecordingError> {
        let file = File::create(path).map_err(|source| RecordingError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        let mut w = RecordingWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 * 1024, file),
            samples: 0,
        };
        w.line(header)?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    pub fn sample(&mut self, s: &Sample) -> Result<(), RecordingError> {
        self.line(s)?;
        self.samples += 1;
        Ok(())
    }

    pub fn end(mut self, end: &RecordingEnd) -> Result<(), RecordingError> {
        self.line(end)
    }

    fn line<T: Serialize>(&mut self, value: &T) -> Result<(), RecordingError> {
        let err = |source| RecordingError::Write {
            path: self.path.clone(),
            source,
        };
        // One complete line per write, so a kill leaves whole lines behind.
        let mut text = serde_json::to_vec(value).map_err(|e| err(io::Error::other(e)))?;
        text.push(b'\n');
        self.out.write_all(&text).map_err(err)?;
        self.out.flush().map_err(err)
    }
}

/// A recording read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub header: Header,
    pub samples: Vec<Sample>,
    /// `None` when the recorder was killed (or is still running).
    pub end: Option<RecordingEnd>,
    /// Lines skipped, and why.
    pub notes: Vec<String>,
}

#[derive(Deserialize)]
struct SchemaOnly {
    #[serde(default)]
    schema: String,
}

impl Recording {
    pub fn read(path: &Path) -> Result<Recording, RecordingError> {
        let text = std::fs::read(path).map_err(|source| RecordingError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Recording::parse(path, &text)
    }

    /// Parses a recording's text. `path` only names it in errors.
    pub fn parse(path: &Path, text: &[u8]) -> Result<Recording, RecordingError> {
        let complete_last_line = text.ends_with(b"\n");
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        let mut header: Option<Header> = None;
        let mut samples = Vec::new();
        let mut end = None;
        let mut notes = Vec::new();
        let last_index = lines.iter().rposition(|l| !l.is_empty()).unwrap_or(0);
        for (i, line) in lines.iter().enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let number = i + 1;
            let bad = |source| RecordingError::BadLine {
                path: path.to_path_buf(),
                line: number,
                source,
            };
            let truncated = i == last_index && !complete_last_line;
            let schema = match serde_json::from_slice::<SchemaOnly>(line) {
                Ok(s) => s.schema,
                Err(_) if truncated && header.is_some() => {
                    notes.push(format!(
                        "line {number} is cut short (the recorder was stopped while writing it) and was skipped"
                    ));
                    continue;
                }
                Err(_) if header.is_none() => {
                    return Err(RecordingError::NotRecording {
                        path: path.to_path_buf(),
                    })
                }
                Err(e) => return Err(bad(e)),
            };
            if header.is_none() {
                if schema != RECORDING_SCHEMA {
                    return Err(RecordingError::NotRecording {
                        path: path.to_path_buf(),
                    });
                }
                header = Some(serde_json::from_slice(line).map_err(bad)?);
                continue;
            }
            match schema.as_str() {
                SNAPSHOT_SCHEMA => samples.push(serde_json::from_slice(line).map_err(bad)?),
                END_SCHEMA => end = Some(serde_json::from_slice(line).map_err(bad)?),
                other => notes.push(format!(
                    "line {number} has schema {other:?}, which this version does not know; skipped"
                )),
            }
        }
        let header = header.ok_or_else(|| RecordingError::NotRecording {
            path: path.to_path_buf(),
        })?;
        Ok(Recording {
            header,
            samples,
            end,
            notes,
        })
    }

    /// Seconds from the first sample to the last (or to the end line).
    /// The tree as last seen with categories: for each process alive in the last sample that
    /// saw any, its latest fully read entry (samples between full reads carry only totals).
    pub fn last_snapshot(&self) -> Option<TreeSnapshot> {
        let last = self
            .samples
            .iter()
            .rev()
            .find(|s| !s.snapshot.processes.is_empty())?;
        let processes: Vec<ProcessSnapshot> = last
            .snapshot
            .processes
            .iter()
            .filter_map(|alive| {
                self.samples.iter().rev().find_map(|s| {
                    s.snapshot
                        .processes
                        .iter()
                        .find(|p| p.pid == alive.pid && !p.categories.is_empty())
                        .cloned()
                })
            })
            .collect();
        Some(TreeSnapshot::new(
            last.snapshot.taken_at.clone(),
            processes,
            vec![format!(
                "from the recording's last full read of each process (t = {:.1} s)",
                last.t_s
            )],
        ))
    }

    pub fn duration_s(&self) -> f64 {
        let last = self.samples.last().map_or(0.0, |s| s.t_s);
        self.end.as_ref().map_or(last, |e| e.t_s.max(last))
    }

    /// The sampler's total cost, from the end line or added up from the samples.
    pub fn overhead(&self) -> SampleCost {
        if let Some(end) = &self.end {
            return end.overhead;
        }
        let mut total = SampleCost::default();
        for s in &self.samples {
            total.add(&s.overhead);
        }
        total
    }
}

/// A file given to `diff`: a snapshot or a recording.
#[derive(Debug, Clone)]
pub enum Input {
    Snapshot(Box<TreeSnapshot>),
    Recording(Box<Recording>),
}

impl Input {
    pub fn read(path: &Path) -> Result<Input, RecordingError> {
        let text = std::fs::read(path).map_err(|source| RecordingError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if let Ok(snapshot) = serde_json::from_slice::<TreeSnapshot>(&text) {
            if snapshot.schema == SNAPSHOT_SCHEMA {
                return Ok(Input::Snapshot(Box::new(snapshot)));
            }
        }
        match Recording::parse(path, &text) {
            Ok(r) => Ok(Input::Recording(Box::new(r))),
            Err(RecordingError::NotRecording { .. }) => Err(RecordingError::Unknown {
                path: path.to_path_buf(),
            }),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            schema: RECORDING_SCHEMA.into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            monotonic_start_s: 1.0,
            command: vec!["sleep".into(), "1".into()],
            mode: "run".into(),
            interval_s: 0.25,
            rollup_every_s: 1.0,
            smaps_every_s: 10.0,
            smaps_on_move: 0.05,
            scan_every_s: 1.0,
            roots: vec![42],
            ramscope_version: "0".into(),
        }
    }

    fn sample(t: f64) -> Sample {
        Sample {
            t_s: t,
            snapshot: TreeSnapshot::new("2026-01-01T00:00:01Z".into(), vec![], vec![]),
            overhead: SampleCost::default(),
        }
    }

    #[test]
    fn round_trip_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let mut w = RecordingWriter::create(&path, &header()).unwrap();
        w.sample(&sample(0.0)).unwrap();
        w.sample(&sample(0.25)).unwrap();
        drop(w);
        let r = Recording::read(&path).unwrap();
        assert_eq!(r.header, header());
        assert_eq!(r.samples.len(), 2);
        assert!(r.end.is_none());

        // A kill in the middle of a line leaves a partial last line: skipped with a note.
        let mut text = std::fs::read(&path).unwrap();
        let line = serde_json::to_vec(&sample(0.5)).unwrap();
        text.extend_from_slice(&line[..line.len() / 2]);
        let r = Recording::parse(&path, &text).unwrap();
        assert_eq!(r.samples.len(), 2);
        assert_eq!(r.notes.len(), 1);
    }

    #[test]
    fn rejects_other_files() {
        let p = Path::new("x");
        assert!(matches!(
            Recording::parse(p, b"hello\n"),
            Err(RecordingError::NotRecording { .. })
        ));
        assert!(matches!(
            Recording::parse(p, b"{\"schema\":\"other\"}\n"),
            Err(RecordingError::NotRecording { .. })
        ));
        assert!(matches!(
            Recording::parse(p, b""),
            Err(RecordingError::NotRecording { .. })
        ));
        // A corrupt line in the middle is an error, not silently skipped.
        let mut text = serde_json::to_vec(&header()).unwrap();
        text.extend_from_slice(b"\n{oops\n");
        text.extend_from_slice(&serde_json::to_vec(&sample(1.0)).unwrap());
        text.push(b'\n');
        assert!(matches!(
            Recording::parse(p, &text),
            Err(RecordingError::BadLine { line: 2, .. })
        ));
    }
}
