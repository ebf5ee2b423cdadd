//! One `.rstrace` file (docs/trace-format.md, version 1) as plain data.
//!
//! Strict about structure: the `ramscope-trace 1` header, the `end` line, every number and
//! every escape must be well formed, or the file is refused with its name and line. Tolerant
//! of what newer writers may add: unknown record types, unknown `key=value` fields and
//! records of unknown kinds are skipped (and counted).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::records::Parser;

/// The version of the format this reader understands.
pub const VERSION: &str = "1";

/// A line longer than this is not something the tracer writes (a command line of the
/// kernel's largest size, escaped, stays below it).
const MAX_LINE: usize = 16 << 20;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: {what}")]
    Invalid {
        file: String,
        line: usize,
        what: String,
    },
    #[error("{file}: {what}")]
    Incomplete { file: String, what: String },
}

/// What a live byte was allocated with (the `kind` field of `total`, `site`, `region`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Kind {
    #[serde(rename = "heap")]
    Heap,
    #[serde(rename = "mmap.anon")]
    MmapAnon,
    #[serde(rename = "mmap.shared")]
    MmapShared,
    #[serde(rename = "mmap.file")]
    MmapFile,
    #[serde(rename = "shm")]
    Shm,
    #[serde(rename = "pinned")]
    Pinned,
    #[serde(rename = "pinned.registered")]
    PinnedRegistered,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Heap,
        Kind::MmapAnon,
        Kind::MmapShared,
        Kind::MmapFile,
        Kind::Shm,
        Kind::Pinned,
        Kind::PinnedRegistered,
    ];

    /// The kinds of a `sample` line, in its order.
    pub const SAMPLED: [Kind; 6] = [
        Kind::Heap,
        Kind::MmapAnon,
        Kind::MmapShared,
        Kind::MmapFile,
        Kind::Shm,
        Kind::Pinned,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Heap => "heap",
            Kind::MmapAnon => "mmap.anon",
            Kind::MmapShared => "mmap.shared",
            Kind::MmapFile => "mmap.file",
            Kind::Shm => "shm",
            Kind::Pinned => "pinned",
            Kind::PinnedRegistered => "pinned.registered",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How this process image came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Start,
    Fork,
    Exec,
}

/// Whether Python frames are in the stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PythonFrames {
    Ok,
    Unsupported,
    #[default]
    Off,
}

/// The tracer's settings in this process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Options {
    pub sample_bytes: Option<u64>,
    pub min_size: Option<u64>,
    pub native_depth: Option<u32>,
}

/// `/proc/self/status` at the write, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    pub vm_rss: Option<u64>,
    pub rss_anon: Option<u64>,
    pub rss_file: Option<u64>,
    pub rss_shmem: Option<u64>,
    pub vm_hwm: Option<u64>,
}

/// Exact counts of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Total {
    pub calls: u64,
    pub bytes: u64,
    pub frees: u64,
    pub freed: u64,
    pub live: u64,
    pub peak: u64,
}

/// The process's peak of all live bytes and when it was reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Peak {
    pub ns: u64,
    pub live: u64,
}

/// Live bytes per kind at one write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub t_ns: u64,
    /// In the order of [`Kind::SAMPLED`].
    pub live: [u64; 6],
    pub vm_rss: Option<u64>,
}

impl Sample {
    /// Every sampled kind together (pinned.registered is never in a sample).
    pub fn total(&self) -> u64 {
        self.live.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }
}

/// An executable file mapping, for symbolising.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Module {
    pub start: u64,
    pub end: u64,
    pub file_offset: u64,
    pub path: String,
}

/// One Python frame: ids into the string table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PyFrame {
    pub file: u64,
    pub function: u64,
    /// `None` when the writer did not know the line (`-`).
    pub line: Option<u32>,
}

/// A call stack, innermost first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stack {
    pub native: Vec<u64>,
    pub python: Vec<PyFrame>,
}

/// Live and past bytes allocated from one stack with one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Site {
    pub stack: u64,
    pub kind: Kind,
    pub calls: u64,
    pub bytes: u64,
    pub frees: u64,
    pub live: u64,
    pub peak: u64,
    pub at_peak: u64,
    pub resident: Option<u64>,
    /// Poisson estimates of allocations below `min_size`.
    pub sampled: bool,
}

/// A live mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Region {
    pub kind: Kind,
    pub start: u64,
    pub len: u64,
    pub stack: u64,
    pub rounded: u64,
    pub resident: Option<u64>,
    pub path: Option<u64>,
}

/// One process image's trace file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TraceFile {
    /// The file's name in its directory (what `parent` fields refer to).
    pub file_name: String,
    pub pid: u32,
    pub ppid: u32,
    pub start_ticks: u64,
    pub image: u32,
    pub origin: Option<Origin>,
    pub parent: Option<String>,
    pub init_ns: u64,
    pub flush_ns: u64,
    /// Written at exit or before exec: nothing follows this write.
    pub is_final: bool,
    pub exe: String,
    pub comm: String,
    pub cmdline: Vec<String>,
    pub python: Option<String>,
    pub python_frames: PythonFrames,
    pub options: Options,
    pub status: Option<Status>,
    pub totals: BTreeMap<Kind, Total>,
    pub counts: BTreeMap<String, u64>,
    pub lost: BTreeMap<String, u64>,
    pub peak: Option<Peak>,
    pub samples: Vec<Sample>,
    pub modules: Vec<Module>,
    pub strings: HashMap<u64, String>,
    pub stacks: HashMap<u64, Stack>,
    pub sites: Vec<Site>,
    pub regions: Vec<Region>,
    /// Records this reader does not know (a newer writer's), skipped.
    pub skipped: u64,
}

impl TraceFile {
    /// An interned string, or `?` for an id the file does not define.
    pub fn string(&self, id: u64) -> &str {
        self.strings.get(&id).map_or("?", String::as_str)
    }

    pub fn total(&self, kind: Kind) -> Total {
        self.totals.get(&kind).cloned().unwrap_or_default()
    }
}

/// Reads and parses one file.
pub fn read(path: &Path) -> Result<TraceFile, FormatError> {
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let bytes = std::fs::read(path).map_err(|source| FormatError::Io {
        file: path.display().to_string(),
        source,
    })?;
    parse(&file, &bytes)
}

/// Parses the text of a file called `file_name`.
pub fn parse(file_name: &str, text: &[u8]) -> Result<TraceFile, FormatError> {
    let mut p = Parser::new(file_name);
    let mut lines = text.split(|&b| b == b'\n').enumerate();
    match lines.next() {
        Some((_, first)) if trim_cr(first) == b"ramscope-trace 1" => {}
        Some((_, first)) if first.starts_with(b"ramscope-trace ") => {
            return Err(p.error(
                1,
                format!(
                    "format version {:?} is not one this ramscope reads (it reads {VERSION}); use a ramscope as new as the tracer",
                    String::from_utf8_lossy(&first[15..]).trim()
                ),
            ))
        }
        _ => {
            return Err(p.error(
                1,
                "not a ramscope trace (the first line is not `ramscope-trace 1`)".into(),
            ))
        }
    }
    for (i, raw) in lines {
        let n = i + 1;
        if raw.len() > MAX_LINE {
            return Err(p.error(n, format!("line longer than {} bytes", MAX_LINE)));
        }
        // The writer escapes every byte outside printable ASCII.
        let line = std::str::from_utf8(trim_cr(raw))
            .ok()
            .filter(|l| l.is_ascii())
            .ok_or_else(|| p.error(n, "not ASCII text (strings must be %-escaped)".into()))?;
        if line.trim().is_empty() {
            continue;
        }
        if p.ended {
            return Err(p.error(n, "data after `end`".into()));
        }
        p.record(n, line)?;
    }
    if !p.ended {
        return Err(FormatError::Incomplete {
            file: file_name.into(),
            what: "no `end` line: the file is cut short".into(),
        });
    }
    for required in [
        "pid",
        "ppid",
        "start_ticks",
        "image",
        "origin",
        "init_ns",
        "flush_ns",
        "final",
    ] {
        if !p.seen.contains(&required) {
            return Err(FormatError::Incomplete {
                file: file_name.into(),
                what: format!("no `{required}` record"),
            });
        }
    }
    Ok(p.out)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "ramscope-trace 1
pid 42
ppid 1
start_ticks 9000
image 0
origin start
parent -
init_ns 1000
flush_ns 5000
final 1
exe /usr/bin/python3.11
comm VLLM::EngineCor
cmdline VLLM::EngineCore % --model%20x
python 3.11.9
python_frames ok
option sample_bytes 524288
option min_size 65536
option native_depth 32
status 1048576 524288 - 0 2097152
total heap calls=10 bytes=1000 frees=4 freed=400 live=600 peak=700
total pinned calls=1 bytes=4096 frees=0 freed=0 live=4096 peak=4096
count munmap 3
lost stack_table_full 2
peak ns=3000 live=4696
sample 2000 100 0 0 0 0 0 -
sample 5000 600 0 0 0 0 4096 1048576
module 7f0000000000 7f0000100000 0 /usr/lib/libc.so.6
str 1 /x/site-packages/vllm/v1/worker/gpu_input_batch.py
str 2 __init__
stack 7 7f0000000123,7f0000000456 1:2:131
stack 8 - -
site 7 heap calls=10 bytes=1000 frees=4 live=600 peak=700 at_peak=650 resident=- sampled=1
site 8 pinned calls=1 bytes=4096 frees=0 live=4096 peak=4096 at_peak=4096 resident=4096 sampled=0
region pinned 7f1000000000 4096 stack=8 rounded=8192 resident=4096 path=-
end
";

    fn parsed(text: &str) -> Result<TraceFile, FormatError> {
        parse("42.9000.0.rstrace", text.as_bytes())
    }

    #[test]
    fn reads_every_record() {
        let t = parsed(GOOD).unwrap();
        assert_eq!((t.pid, t.ppid, t.start_ticks, t.image), (42, 1, 9000, 0));
        assert_eq!(t.origin, Some(Origin::Start));
        assert!(t.is_final && t.parent.is_none());
        assert_eq!(t.cmdline, ["VLLM::EngineCore", "", "--model x"]);
        assert_eq!(t.python.as_deref(), Some("3.11.9"));
        assert_eq!(t.python_frames, PythonFrames::Ok);
        assert_eq!(t.options.sample_bytes, Some(524288));
        assert_eq!(t.options.native_depth, Some(32));
        let s = t.status.as_ref().unwrap();
        assert_eq!((s.vm_rss, s.rss_file), (Some(1 << 20), None));
        assert_eq!(t.total(Kind::Heap).live, 600);
        assert_eq!(t.total(Kind::Pinned).bytes, 4096);
        assert_eq!(t.total(Kind::Shm), Total::default());
        assert_eq!(t.counts["munmap"], 3);
        assert_eq!(t.lost["stack_table_full"], 2);
        assert_eq!(
            t.peak,
            Some(Peak {
                ns: 3000,
                live: 4696
            })
        );
        assert_eq!(t.samples.len(), 2);
        assert_eq!(t.samples[1].total(), 4696);
        assert_eq!(t.samples[0].vm_rss, None);
        assert_eq!(t.modules[0].end, 0x7f0000100000);
        assert_eq!(t.stacks[&7].native, [0x7f0000000123, 0x7f0000000456]);
        assert_eq!(
            t.stacks[&7].python,
            [PyFrame {
                file: 1,
                function: 2,
                line: Some(131)
            }]
        );
        assert!(t.stacks[&8].native.is_empty() && t.stacks[&8].python.is_empty());
        assert_eq!(t.string(2), "__init__");
        assert_eq!(t.string(99), "?");
        assert!(t.sites[0].sampled && t.sites[0].resident.is_none());
        assert_eq!(t.sites[1].kind, Kind::Pinned);
        assert_eq!(t.regions[0].rounded, 8192);
        assert_eq!(t.skipped, 0);
    }

    #[test]
    fn skips_what_a_newer_writer_adds() {
        let text = GOOD
            .replace("end\n", "flavour mint 3\nsite 8 gpu.unified calls=1 bytes=1 frees=0 live=1 peak=1 at_peak=1 resident=- sampled=0\nend\n")
            .replace("peak=700\n", "peak=700 colour=blue\n")
            .replace("option native_depth 32", "option native_depth 32\noption future 9");
        let t = parsed(&text).unwrap();
        assert_eq!(t.skipped, 3);
        assert_eq!(t.sites.len(), 2);
        assert_eq!(t.total(Kind::Heap).peak, 700);
    }

    fn error_of(text: &str) -> String {
        parsed(text).unwrap_err().to_string()
    }

    #[test]
    fn a_file_cut_short_is_refused() {
        let cut = &GOOD[..GOOD.len() - 4];
        assert_eq!(
            error_of(cut),
            "42.9000.0.rstrace: no `end` line: the file is cut short"
        );
        // Cut in the middle of a line: the broken line is named.
        let mid = &GOOD[..GOOD.find("frees=4 live").unwrap()];
        assert!(error_of(mid).starts_with("42.9000.0.rstrace:"));
        assert!(error_of("").contains("not a ramscope trace"));
    }

    #[test]
    fn garbage_is_refused_with_its_line() {
        assert!(error_of("\u{0}\u{1}garbage").contains("not a ramscope trace"));
        assert!(error_of("ramscope-trace 2\nend\n").contains("format version \"2\""));
        let bad = GOOD.replace("pid 42", "pid forty-two");
        assert_eq!(
            error_of(&bad),
            "42.9000.0.rstrace:2: `pid`: \"forty-two\" is not a decimal number"
        );
        let twice = GOOD.replace("ppid 1\n", "ppid 1\nppid 2\n");
        assert_eq!(
            error_of(&twice),
            "42.9000.0.rstrace:4: `ppid`: appears twice"
        );
        let missing = GOOD.replace("flush_ns 5000\n", "");
        assert!(error_of(&missing).ends_with("no `flush_ns` record"));
        let after = format!("{GOOD}pid 3\n");
        assert!(error_of(&after).contains("data after `end`"));
        let no_field = GOOD.replace(" at_peak=650", "");
        assert!(error_of(&no_field).contains("no at_peak= field"));
        let frame = GOOD.replace("1:2:131", "1:2");
        assert!(error_of(&frame).contains("is not a Python frame"));
        let binary = GOOD.replace("comm VLLM::EngineCor", "comm \u{e9}");
        assert!(error_of(&binary).contains("not ASCII text"));
    }

    #[test]
    fn huge_numbers_are_errors_not_wraps() {
        let big = GOOD.replace("bytes=1000 ", "bytes=18446744073709551616 ");
        assert_eq!(
            error_of(&big),
            "42.9000.0.rstrace:20: `total`: bytes: 18446744073709551616 is too large"
        );
        let pid = GOOD.replace("pid 42", "pid 4294967296");
        assert!(error_of(&pid).contains("too large"));
        let addr = GOOD.replace("7f0000000123", "1ffffffffffffffff");
        assert!(error_of(&addr).contains("too large"));
        let max = GOOD.replace("bytes=1000 ", "bytes=18446744073709551615 ");
        assert_eq!(parsed(&max).unwrap().total(Kind::Heap).bytes, u64::MAX);
        let negative = GOOD.replace("live=600", "live=-600");
        assert!(error_of(&negative).contains("not a decimal number"));
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let t = parsed(&GOOD.replace("comm VLLM::EngineCor", "comm a%0Ab")).unwrap();
        assert_eq!(t.comm, "a\nb");
    }
}
