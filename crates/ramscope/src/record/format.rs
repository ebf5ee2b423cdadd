//! The `ramscope.recording/1` format: one JSON object per line, so a recording streams and
//! whatever was written before the recorder died stays readable.
//!
//! Line 1 is a [`Header`]. Every later line is a [`Sample`]: a `ramscope.snapshot/1` document
//! with `t_s` (seconds since the start) and the sampler's own cost added. A recording that
//! ended normally closes with a [`RecordingEnd`] line. Readers skip lines with a schema they
//! do not know, and a last line cut short by a kill.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::proc::Pid;
use crate::snapshot::{ProcessSnapshot, TreeSnapshot, SNAPSHOT_SCHEMA};
use crate::userfile::{open_regular, read_all_capped, refuse_larger, UserFileError};

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
    /// The machine's host name, so a chart says where it was recorded. Absent in recordings
    /// made before it was kept, and when the name cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// This machine's host name (`gethostname`), or `None` when it cannot be read or is empty.
pub fn host_name() -> Option<String> {
    // HOST_NAME_MAX is 64 on Linux; a larger buffer leaves room for a terminating NUL.
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`, which we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
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
    #[error(transparent)]
    File(#[from] UserFileError),
    #[error("{} is not a ramscope recording (its first line has no \"schema\": \"{RECORDING_SCHEMA}\")", path.display())]
    NotRecording { path: PathBuf },
    #[error("{} line {line}: {source}", path.display())]
    BadLine {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("{} line {line} is longer than {}, more than any recording line", path.display(), crate::units::bytes(*limit as u64))]
    LineTooLong {
        path: PathBuf,
        line: usize,
        limit: usize,
    },
    #[error("{} is neither a ramscope snapshot nor a recording", path.display())]
    Unknown { path: PathBuf },
}

/// The longest line a recording may hold: a sample of a tree of thousands of processes with
/// every category is a few MiB. Longer is not a recording, and reading stops there.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// The longest header line: the command lines of the roots and a few numbers.
const MAX_HEADER_BYTES: usize = 16 << 20;

/// The largest snapshot read whole (`diff`, `explain --from-snapshot`): `measure --json` of a
/// large tree with `--by mapping` is tens of MiB.
pub const MAX_SNAPSHOT_BYTES: u64 = 256 << 20;

/// Writes a recording line by line, each flushed to the kernel as soon as it is written.
pub struct RecordingWriter {
    path: PathBuf,
    out: BufWriter<File>,
    samples: u64,
}

impl RecordingWriter {
    pub fn create(path: &Path, header: &Header) -> Result<RecordingWriter, RecordingError> {
        // The recording is read back for the summary, so it must be a file; and opening a
        // FIFO for writing would wait for a reader.
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            return Err(UserFileError::NotRegular {
                path: path.to_path_buf(),
            }
            .into());
        }
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

/// One line of a recording read back, without its newline.
enum Line {
    /// Ended by a newline.
    Complete,
    /// The last line of the file, without a newline: possibly cut short by a kill.
    Unterminated,
    TooLong,
    End,
}

/// Reads the next line into `buf` (cleared first), holding at most `limit` bytes of it.
fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> io::Result<Line> {
    buf.clear();
    let n = reader
        .by_ref()
        .take(limit as u64 + 1)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Line::Complete);
    }
    Ok(if buf.len() > limit {
        Line::TooLong
    } else {
        Line::Unterminated
    })
}

/// Skips leading whitespace and says whether what follows could be a JSON object, so a file
/// of something else is refused after one buffer instead of after its first (maybe
/// gigabytes long) line. Returns the number of newlines skipped.
fn starts_with_object(reader: &mut impl BufRead) -> io::Result<Option<usize>> {
    let mut newlines = 0;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(None);
        }
        let ws = chunk.iter().take_while(|b| b.is_ascii_whitespace()).count();
        newlines += chunk[..ws].iter().filter(|&&b| b == b'\n').count();
        let next = chunk.get(ws).copied();
        reader.consume(ws);
        match next {
            Some(b'{') => return Ok(Some(newlines)),
            Some(_) => return Ok(None),
            None => continue,
        }
    }
}

/// Folds a recording's lines, one at a time.
struct Parser<'a> {
    path: &'a Path,
    header: Option<Header>,
    samples: Vec<Sample>,
    end: Option<RecordingEnd>,
    notes: Vec<String>,
}

impl Parser<'_> {
    fn line(&mut self, number: usize, line: &[u8], cut_short: bool) -> Result<(), RecordingError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let path = self.path;
        let bad = |source| RecordingError::BadLine {
            path: path.to_path_buf(),
            line: number,
            source,
        };
        let not_recording = || RecordingError::NotRecording {
            path: path.to_path_buf(),
        };
        let schema = match serde_json::from_slice::<SchemaOnly>(line) {
            Ok(s) => s.schema,
            Err(_) if cut_short && self.header.is_some() => {
                self.notes.push(format!(
                    "line {number} is cut short (the recorder was stopped while writing it) and was skipped"
                ));
                return Ok(());
            }
            Err(_) if self.header.is_none() => return Err(not_recording()),
            Err(e) => return Err(bad(e)),
        };
        if self.header.is_none() {
            if schema != RECORDING_SCHEMA {
                return Err(not_recording());
            }
            self.header = Some(serde_json::from_slice(line).map_err(bad)?);
            return Ok(());
        }
        match schema.as_str() {
            SNAPSHOT_SCHEMA => self
                .samples
                .push(serde_json::from_slice(line).map_err(bad)?),
            END_SCHEMA => self.end = Some(serde_json::from_slice(line).map_err(bad)?),
            other => self.notes.push(format!(
                "line {number} has schema {other:?}, which this version does not know; skipped"
            )),
        }
        Ok(())
    }
}

impl Recording {
    /// Reads the recording at `path`: a regular file, streamed line by line.
    pub fn read(path: &Path) -> Result<Recording, RecordingError> {
        let file = open_regular(path)?;
        Recording::from_reader(path, BufReader::with_capacity(256 * 1024, file))
    }

    /// Parses a recording's text. `path` only names it in errors.
    pub fn parse(path: &Path, text: &[u8]) -> Result<Recording, RecordingError> {
        Recording::from_reader(path, text)
    }

    /// Reads a recording from `reader`, holding one line at a time besides what it keeps.
    /// `path` only names it in errors.
    pub fn from_reader(path: &Path, mut reader: impl BufRead) -> Result<Recording, RecordingError> {
        let skipped = starts_with_object(&mut reader).map_err(|source| RecordingError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let Some(skipped) = skipped else {
            return Err(RecordingError::NotRecording {
                path: path.to_path_buf(),
            });
        };
        Recording::read_lines(path, reader, skipped)
    }

    /// The lines of a recording, the first numbered `skipped + 1`.
    fn read_lines(
        path: &Path,
        mut reader: impl BufRead,
        skipped: usize,
    ) -> Result<Recording, RecordingError> {
        let read_err = |source| RecordingError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut parser = Parser {
            path,
            header: None,
            samples: Vec::new(),
            end: None,
            notes: Vec::new(),
        };
        let mut buf = Vec::new();
        let mut number = skipped;
        loop {
            let limit = if parser.header.is_none() {
                MAX_HEADER_BYTES
            } else {
                MAX_LINE_BYTES
            };
            number += 1;
            let cut_short = match next_line(&mut reader, &mut buf, limit).map_err(read_err)? {
                Line::End => break,
                Line::Complete => false,
                Line::Unterminated => true,
                Line::TooLong if parser.header.is_none() => {
                    return Err(RecordingError::NotRecording {
                        path: path.to_path_buf(),
                    })
                }
                Line::TooLong => {
                    return Err(RecordingError::LineTooLong {
                        path: path.to_path_buf(),
                        line: number,
                        limit,
                    })
                }
            };
            parser.line(number, &buf, cut_short)?;
        }
        let header = parser.header.ok_or_else(|| RecordingError::NotRecording {
            path: path.to_path_buf(),
        })?;
        Ok(Recording {
            header,
            samples: parser.samples,
            end: parser.end,
            notes: parser.notes,
        })
    }

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

    /// Seconds from the first sample to the last (or to the end line).
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
    /// Reads a snapshot (at most [`MAX_SNAPSHOT_BYTES`]) or a recording (streamed).
    pub fn read(path: &Path) -> Result<Input, RecordingError> {
        let file = open_regular(path)?;
        let read_err = |source| RecordingError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        // A recording says so on its first line; a snapshot (pretty-printed or not) does not.
        let mut first = Vec::new();
        let Some(skipped) = starts_with_object(&mut reader).map_err(read_err)? else {
            return Err(RecordingError::Unknown {
                path: path.to_path_buf(),
            });
        };
        let first_line = next_line(&mut reader, &mut first, MAX_HEADER_BYTES).map_err(read_err)?;
        let is_recording = matches!(first_line, Line::Complete | Line::Unterminated)
            && serde_json::from_slice::<SchemaOnly>(&first)
                .is_ok_and(|s| s.schema == RECORDING_SCHEMA);
        if is_recording {
            first.push(b'\n');
            let rest = io::Cursor::new(first).chain(reader);
            return Recording::read_lines(path, rest, skipped)
                .map(|r| Input::Recording(Box::new(r)));
        }
        let mut file = reader.into_inner();
        refuse_larger(path, &file, MAX_SNAPSHOT_BYTES)?;
        file.seek(io::SeekFrom::Start(0)).map_err(read_err)?;
        let text = read_all_capped(path, file, MAX_SNAPSHOT_BYTES)?;
        match serde_json::from_slice::<TreeSnapshot>(&text) {
            Ok(snapshot) if snapshot.schema == SNAPSHOT_SCHEMA => {
                Ok(Input::Snapshot(Box::new(snapshot)))
            }
            _ => Err(RecordingError::Unknown {
                path: path.to_path_buf(),
            }),
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
            host: Some("gpu-node-7".into()),
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

    #[test]
    fn a_line_over_the_cap_is_an_error_that_names_it() {
        let mut text = serde_json::to_vec(&header()).unwrap();
        text.push(b'\n');
        text.extend_from_slice(&serde_json::to_vec(&sample(1.0)).unwrap());
        text.push(b'\n');
        text.extend(std::iter::repeat_n(b' ', MAX_LINE_BYTES + 1));
        text.extend_from_slice(b"\n");
        let e = Recording::parse(Path::new("r"), &text).unwrap_err();
        assert!(
            matches!(e, RecordingError::LineTooLong { line: 3, .. }),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "r line 3 is longer than {}, more than any recording line",
                crate::units::bytes(MAX_LINE_BYTES as u64)
            )
        );
    }

    #[test]
    fn endless_input_is_refused_after_a_bounded_read() {
        // Not JSON: refused at the first byte.
        let e =
            Recording::from_reader(Path::new("z"), io::BufReader::new(io::repeat(0))).unwrap_err();
        assert!(matches!(e, RecordingError::NotRecording { .. }), "{e}");
        // An object that never ends: refused once it outgrows any header.
        let mut endless = io::BufReader::new(io::repeat(b'{'));
        let e = Recording::from_reader(Path::new("z"), &mut endless).unwrap_err();
        assert!(matches!(e, RecordingError::NotRecording { .. }), "{e}");
    }

    #[test]
    fn leading_blank_lines_keep_line_numbers() {
        let mut text = b"\n\n".to_vec();
        text.extend_from_slice(&serde_json::to_vec(&header()).unwrap());
        text.extend_from_slice(b"\n{oops\n{}\n");
        let e = Recording::parse(Path::new("r"), &text).unwrap_err();
        assert!(matches!(e, RecordingError::BadLine { line: 4, .. }), "{e}");
    }

    #[test]
    fn input_tells_snapshots_from_recordings() {
        let dir = tempfile::tempdir().unwrap();
        let snap = TreeSnapshot::new("2026-01-01T00:00:01Z".into(), vec![], vec![]);
        for (name, text) in [
            ("pretty.json", serde_json::to_vec_pretty(&snap).unwrap()),
            ("compact.json", serde_json::to_vec(&snap).unwrap()),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            assert!(matches!(Input::read(&p), Ok(Input::Snapshot(_))), "{name}");
        }
        let rec = dir.path().join("r.jsonl");
        let mut w = RecordingWriter::create(&rec, &header()).unwrap();
        w.sample(&sample(0.0)).unwrap();
        drop(w);
        let Ok(Input::Recording(r)) = Input::read(&rec) else {
            panic!("not read as a recording");
        };
        assert_eq!((r.header, r.samples.len()), (header(), 1));
        // A recording whose later line is bad keeps the line number.
        let mut text = std::fs::read(&rec).unwrap();
        text.extend_from_slice(b"{oops\n{}\n");
        std::fs::write(&rec, text).unwrap();
        assert!(matches!(
            Input::read(&rec),
            Err(RecordingError::BadLine { line: 3, .. })
        ));
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "{\"schema\": \"other\"}\n").unwrap();
        assert!(matches!(
            Input::read(&junk),
            Err(RecordingError::Unknown { .. })
        ));
    }

    #[test]
    fn a_recording_is_written_only_to_a_file() {
        for p in ["/dev/null", "/tmp"] {
            let e = RecordingWriter::create(Path::new(p), &header())
                .err()
                .unwrap();
            assert_eq!(e.to_string(), format!("{p} is not a regular file"));
        }
    }

    #[test]
    fn devices_are_refused_before_reading() {
        for p in ["/dev/zero", "/dev/urandom"] {
            let e = Input::read(Path::new(p)).unwrap_err();
            assert_eq!(e.to_string(), format!("{p} is not a regular file"));
            let e = Recording::read(Path::new(p)).unwrap_err();
            assert_eq!(e.to_string(), format!("{p} is not a regular file"));
        }
    }

    #[test]
    fn the_rollup_tier_is_written_as_its_file_and_read_either_way() {
        use crate::snapshot::ReadTier;
        assert_eq!(
            serde_json::to_string(&ReadTier::Rollup).unwrap(),
            "\"smaps_rollup\""
        );
        for old_or_new in ["\"rollup\"", "\"smaps_rollup\""] {
            let tier: ReadTier = serde_json::from_str(old_or_new).unwrap();
            assert_eq!(tier, ReadTier::Rollup);
        }
    }

    #[test]
    fn headers_without_a_host_still_read_and_this_host_has_a_name() {
        let mut old = serde_json::to_value(header()).unwrap();
        old.as_object_mut().unwrap().remove("host");
        let h: Header = serde_json::from_value(old).unwrap();
        assert_eq!(h.host, None);
        assert_eq!(
            h,
            Header {
                host: None,
                ..header()
            }
        );
        let text = serde_json::to_string(&Header {
            host: None,
            ..header()
        })
        .unwrap();
        assert!(!text.contains("host"), "{text}");
        assert!(host_name().is_some_and(|n| !n.is_empty() && !n.contains('\0')));
    }
}
