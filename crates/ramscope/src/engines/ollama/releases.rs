//! Ollama's releases as data: for each fact the estimate branches on, the releases where it
//! changed, each change cited `file:line@release` in Ollama's source (docs/ollama-host-ram.md
//! §2 tells how they were read). A fact's value for a release is that of the newest change at
//! or before it, so a release boundary lives in one row and formulas never compare versions.
//!
//! Every release from 0.5.0 to 0.32.15 is known: every change point below was found by reading
//! the fact at each tag in between. An older release is estimated as 0.5.0 and a newer one as
//! 0.32.15, and the estimate says so ([`ReleaseAssumed`]).

use std::fmt;

use crate::footprint::ReleaseAssumed;

/// An Ollama release (`0.32.15`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u16, pub u16, pub u16);

impl Version {
    /// The oldest release whose facts were read.
    pub const OLDEST: Version = Version(0, 5, 0);
    /// The newest release whose facts were read.
    pub const NEWEST: Version = Version(0, 32, 15);

    /// `0.32.15`, `v0.9.6`, `0.9.7-rc1`, `0.30.0 (build …)`: the leading `major.minor.patch`
    /// (a missing patch is 0). `None` when no version can be read.
    pub fn parse(written: &str) -> Option<Version> {
        let t = written.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let end = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let mut parts = t[..end].split('.');
        let mut next = |required: bool| -> Option<u16> {
            match parts.next() {
                Some(p) if !p.is_empty() => p.parse().ok(),
                None if !required => Some(0),
                _ => None,
            }
        };
        let v = Version(next(true)?, next(true)?, next(false)?);
        // `0.32.15.1` is no Ollama version.
        parts.next().is_none().then_some(v)
    }

    /// Whether the facts of this release were read (between [`Version::OLDEST`] and
    /// [`Version::NEWEST`]).
    pub fn is_known(self) -> bool {
        (Version::OLDEST..=Version::NEWEST).contains(&self)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The release to estimate for a version as written: itself when known, else the nearest
/// known one with why.
pub fn read(written: &str) -> Result<Version, ReleaseAssumed> {
    let assumed = |used: Version, reason: String| ReleaseAssumed {
        requested: Some(written.trim().to_string()),
        used: used.to_string(),
        reason,
    };
    match Version::parse(written) {
        Some(v) if v.is_known() => Ok(v),
        Some(v) if v > Version::NEWEST => Err(assumed(
            Version::NEWEST,
            format!(
                "newer than the newest release ramscope has read ({})",
                Version::NEWEST
            ),
        )),
        Some(_) => Err(assumed(
            Version::OLDEST,
            format!(
                "older than the oldest release ramscope has read ({})",
                Version::OLDEST
            ),
        )),
        None => Err(assumed(
            Version::NEWEST,
            "not an Ollama version ramscope can read".into(),
        )),
    }
}

/// How Ollama runs a GGUF model, which decides its runner process and its own memory check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// ≤ 0.12.10: `ollama runner` with llama.cpp linked in; Ollama's own estimator
    /// (`llm/memory.go`) sizes the load and its system-memory check.
    Estimator,
    /// 0.12.11 – 0.24.x: `ollama runner` loaded in fit/alloc passes; the check adds up the
    /// CPU-side layer sizes those passes measured ("memory layouts").
    Layouts,
    /// ≥ 0.30.0: the upstream `llama-server` binary, one process per loaded model; Ollama
    /// makes no system-memory check of its own.
    LlamaServer,
}

impl Generation {
    pub fn runner_title(self) -> &'static str {
        match self {
            Generation::Estimator | Generation::Layouts => "ollama runner",
            Generation::LlamaServer => "llama-server",
        }
    }
}

/// `num_ctx` when neither the model's params, OLLAMA_CONTEXT_LENGTH nor a request sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextDefault {
    Fixed(u64),
    /// By the total VRAM of the GPUs: 262144 from 47 GiB, 32768 from 23 GiB, else 4096 (a
    /// CPU-only host gets 4096).
    VramTiered,
}

/// Request slots (`num_parallel`) when OLLAMA_NUM_PARALLEL is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParallelDefault {
    /// Chosen per load: this many when the model fits the GPU with them (and always on the
    /// CPU), else 1.
    Auto(u64),
    Fixed(u64),
}

/// How Ollama reads the host's free memory on Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeMemory {
    /// `MemAvailable` of `/proc/meminfo`.
    MemAvailable,
    /// `MemAvailable`, then, when the cgroup v2 files can be read, total = `memory.max` (when
    /// it is a number) and free = total − `memory.current`, page cache included (ollama#15704).
    CgroupMaxMinusCurrent,
}

/// The runner flag Ollama passes when the model is not to be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMmapFlag {
    NoMmap,
    /// `--load-mode none`, and `--load-mode dio` for integrated CUDA/ROCm GPUs.
    LoadMode,
}

/// A fact and where it was read: `path:line@vX.Y.Z` in Ollama's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cited<T> {
    pub value: T,
    pub at: &'static str,
}

/// One change of a fact: its value from `from` on.
type Changes<T> = &'static [(Version, Cited<T>)];

const fn c<T>(value: T, at: &'static str) -> Cited<T> {
    Cited { value, at }
}

const GENERATION: Changes<Generation> = &[
    (
        Version(0, 5, 0),
        c(Generation::Estimator, "llm/server.go:166-173@v0.9.6"),
    ),
    (
        Version(0, 12, 11),
        c(Generation::Layouts, "llm/server.go:1036-1081@v0.24.0"),
    ),
    (
        Version(0, 30, 0),
        c(
            Generation::LlamaServer,
            "llm/llama_server.go:348-377@v0.32.15",
        ),
    ),
];

const CONTEXT_DEFAULT: Changes<ContextDefault> = &[
    (
        Version(0, 5, 0),
        c(
            ContextDefault::Fixed(2048),
            "envconfig/config.go:172@v0.6.6",
        ),
    ),
    (
        Version(0, 6, 7),
        c(
            ContextDefault::Fixed(4096),
            "envconfig/config.go:172@v0.6.7",
        ),
    ),
    (
        Version(0, 15, 5),
        c(
            ContextDefault::VramTiered,
            "server/routes.go:1732-1737@v0.15.5",
        ),
    ),
];

const PARALLEL_DEFAULT: Changes<ParallelDefault> = &[
    (
        Version(0, 5, 0),
        c(ParallelDefault::Auto(4), "server/sched.go:61@v0.6.6"),
    ),
    (
        Version(0, 6, 7),
        c(ParallelDefault::Auto(2), "server/sched.go:61@v0.6.7"),
    ),
    (
        Version(0, 9, 7),
        c(ParallelDefault::Fixed(1), "envconfig/config.go:222@v0.10.0"),
    ),
];

const FREE_MEMORY: Changes<FreeMemory> = &[
    (
        Version(0, 5, 0),
        c(
            FreeMemory::MemAvailable,
            "discover/gpu_linux.go:57-95@v0.9.6",
        ),
    ),
    (
        Version(0, 13, 0),
        c(
            FreeMemory::CgroupMaxMinusCurrent,
            "discover/cpu_linux.go:64-74@v0.32.15",
        ),
    ),
];

const NO_MMAP_FLAG: Changes<NoMmapFlag> = &[
    (
        Version(0, 5, 0),
        c(NoMmapFlag::NoMmap, "llm/server.go:245-249@v0.9.6"),
    ),
    (
        Version(0, 32, 6),
        c(NoMmapFlag::LoadMode, "llm/llama_server.go:627-639@v0.32.6"),
    ),
];

/// The llama.cpp build (`LLAMA_CPP_VERSION`) a llama-server-era release ships; `None` before.
const LLAMA_CPP_BUILD: Changes<Option<&'static str>> = &[
    (Version(0, 5, 0), c(None, "llm/server.go:166-173@v0.9.6")),
    (
        Version(0, 30, 0),
        c(Some("b9452"), "LLAMA_CPP_VERSION@v0.30.0"),
    ),
    (
        Version(0, 30, 1),
        c(Some("b9479"), "LLAMA_CPP_VERSION@v0.30.1"),
    ),
    (
        Version(0, 30, 4),
        c(Some("b9493"), "LLAMA_CPP_VERSION@v0.30.4"),
    ),
    (
        Version(0, 30, 5),
        c(Some("b9509"), "LLAMA_CPP_VERSION@v0.30.5"),
    ),
    (
        Version(0, 30, 9),
        c(Some("b9626"), "LLAMA_CPP_VERSION@v0.30.9"),
    ),
    (
        Version(0, 30, 10),
        c(Some("b9672"), "LLAMA_CPP_VERSION@v0.30.10"),
    ),
    (
        Version(0, 30, 11),
        c(Some("b9781"), "LLAMA_CPP_VERSION@v0.30.11"),
    ),
    (
        Version(0, 31, 0),
        c(Some("b9840"), "LLAMA_CPP_VERSION@v0.31.0"),
    ),
    (
        Version(0, 31, 2),
        c(Some("b9888"), "LLAMA_CPP_VERSION@v0.31.2"),
    ),
    (
        Version(0, 32, 2),
        c(Some("b10069"), "LLAMA_CPP_VERSION@v0.32.2"),
    ),
    (
        Version(0, 32, 3),
        c(Some("b10091"), "LLAMA_CPP_VERSION@v0.32.3"),
    ),
    (
        Version(0, 32, 6),
        c(Some("b10242"), "LLAMA_CPP_VERSION@v0.32.6"),
    ),
    (
        Version(0, 32, 8),
        c(Some("b10353"), "LLAMA_CPP_VERSION@v0.32.8"),
    ),
    (
        Version(0, 32, 10),
        c(Some("b10380"), "LLAMA_CPP_VERSION@v0.32.10"),
    ),
    (
        Version(0, 32, 14),
        c(Some("b10434"), "LLAMA_CPP_VERSION@v0.32.14"),
    ),
    (
        Version(0, 32, 15),
        c(Some("b10488"), "LLAMA_CPP_VERSION@v0.32.15"),
    ),
];

/// The value of a fact for `v`: the newest change at or before it (the first one for a
/// release older than every change).
fn at<T: Copy>(changes: Changes<T>, v: Version) -> Cited<T> {
    changes
        .iter()
        .rev()
        .find(|(from, _)| *from <= v)
        .or(changes.first())
        .map(|(_, cited)| *cited)
        .unwrap_or_else(|| unreachable!("every fact table has a row"))
}

/// Every fact of one release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    pub version: Version,
    pub generation: Cited<Generation>,
    pub context_default: Cited<ContextDefault>,
    pub parallel_default: Cited<ParallelDefault>,
    pub free_memory: Cited<FreeMemory>,
    pub no_mmap_flag: Cited<NoMmapFlag>,
    pub llama_cpp_build: Cited<Option<&'static str>>,
}

impl Release {
    pub fn of(version: Version) -> Release {
        Release {
            version,
            generation: at(GENERATION, version),
            context_default: at(CONTEXT_DEFAULT, version),
            parallel_default: at(PARALLEL_DEFAULT, version),
            free_memory: at(FREE_MEMORY, version),
            no_mmap_flag: at(NO_MMAP_FLAG, version),
            llama_cpp_build: at(LLAMA_CPP_BUILD, version),
        }
    }
}

/// The releases where some fact changes, oldest first, and the newest: what
/// `Engine::releases` lists.
pub fn boundaries() -> Vec<Version> {
    let tables: [&[Version]; 6] = [
        &GENERATION.iter().map(|r| r.0).collect::<Vec<_>>(),
        &CONTEXT_DEFAULT.iter().map(|r| r.0).collect::<Vec<_>>(),
        &PARALLEL_DEFAULT.iter().map(|r| r.0).collect::<Vec<_>>(),
        &FREE_MEMORY.iter().map(|r| r.0).collect::<Vec<_>>(),
        &NO_MMAP_FLAG.iter().map(|r| r.0).collect::<Vec<_>>(),
        &LLAMA_CPP_BUILD.iter().map(|r| r.0).collect::<Vec<_>>(),
    ];
    let mut all: Vec<Version> = tables.iter().flat_map(|t| t.iter().copied()).collect();
    all.push(Version::NEWEST);
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_written() {
        assert_eq!(Version::parse("0.32.15"), Some(Version(0, 32, 15)));
        assert_eq!(Version::parse("v0.9.6"), Some(Version(0, 9, 6)));
        assert_eq!(Version::parse("0.9.7-rc1"), Some(Version(0, 9, 7)));
        assert_eq!(Version::parse("0.30"), Some(Version(0, 30, 0)));
        // A word in front is not a version.
        assert_eq!(Version::parse("ollama 0.6.8"), None);
        for bad in ["", "x", "0", "0.", "1.2.3.4", "99999999.1.1", "0..1"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        assert_eq!(Version(0, 32, 15).to_string(), "0.32.15");
    }

    #[test]
    fn unknown_releases_are_assumed_with_a_reason() {
        assert_eq!(read("0.30.2"), Ok(Version(0, 30, 2)));
        let newer = read("0.40.1").unwrap_err();
        assert_eq!(newer.used, "0.32.15");
        assert!(newer.reason.contains("newer"), "{}", newer.reason);
        let older = read("0.3.14").unwrap_err();
        assert_eq!(older.used, "0.5.0");
        assert!(older.reason.contains("older"), "{}", older.reason);
        assert_eq!(
            read("latest").unwrap_err().requested.as_deref(),
            Some("latest")
        );
    }

    /// The facts at the releases the user reports name (docs/ollama-host-ram.md §2).
    #[test]
    fn facts_change_where_the_source_changed() {
        let r = |v: Version| Release::of(v);
        let v096 = r(Version(0, 9, 6));
        assert_eq!(v096.generation.value, Generation::Estimator);
        assert_eq!(v096.parallel_default.value, ParallelDefault::Auto(2));
        assert_eq!(v096.context_default.value, ContextDefault::Fixed(4096));
        assert_eq!(v096.free_memory.value, FreeMemory::MemAvailable);
        assert_eq!(
            r(Version(0, 6, 6)).context_default.value,
            ContextDefault::Fixed(2048)
        );
        assert_eq!(
            r(Version(0, 6, 6)).parallel_default.value,
            ParallelDefault::Auto(4)
        );
        assert_eq!(
            r(Version(0, 9, 7)).parallel_default.value,
            ParallelDefault::Fixed(1)
        );
        assert_eq!(
            r(Version(0, 12, 10)).generation.value,
            Generation::Estimator
        );
        assert_eq!(r(Version(0, 12, 11)).generation.value, Generation::Layouts);
        assert_eq!(
            r(Version(0, 12, 11)).free_memory.value,
            FreeMemory::MemAvailable
        );
        assert_eq!(
            r(Version(0, 13, 0)).free_memory.value,
            FreeMemory::CgroupMaxMinusCurrent
        );
        assert_eq!(
            r(Version(0, 15, 4)).context_default.value,
            ContextDefault::Fixed(4096)
        );
        assert_eq!(
            r(Version(0, 15, 5)).context_default.value,
            ContextDefault::VramTiered
        );
        assert_eq!(r(Version(0, 24, 9)).generation.value, Generation::Layouts);
        let v030 = r(Version(0, 30, 0));
        assert_eq!(v030.generation.value, Generation::LlamaServer);
        assert_eq!(v030.llama_cpp_build.value, Some("b9452"));
        assert_eq!(v030.no_mmap_flag.value, NoMmapFlag::NoMmap);
        assert_eq!(r(Version(0, 32, 5)).no_mmap_flag.value, NoMmapFlag::NoMmap);
        assert_eq!(
            r(Version(0, 32, 6)).no_mmap_flag.value,
            NoMmapFlag::LoadMode
        );
        assert_eq!(r(Version(0, 32, 9)).llama_cpp_build.value, Some("b10353"));
        assert_eq!(r(Version::NEWEST).llama_cpp_build.value, Some("b10488"));
        assert_eq!(r(Version(0, 24, 0)).llama_cpp_build.value, None);
    }

    #[test]
    fn tables_are_in_release_order_and_cite_a_release() {
        fn check<T>(name: &str, t: Changes<T>) {
            assert_eq!(t.first().map(|r| r.0), Some(Version::OLDEST), "{name}");
            for w in t.windows(2) {
                assert!(w[0].0 < w[1].0, "{name}: {} then {}", w[0].0, w[1].0);
            }
            for (v, cited) in t {
                assert!(v.is_known(), "{name} {v}");
                assert!(cited.at.contains("@v0."), "{name} {v}: {}", cited.at);
            }
        }
        check("generation", GENERATION);
        check("context", CONTEXT_DEFAULT);
        check("parallel", PARALLEL_DEFAULT);
        check("free memory", FREE_MEMORY);
        check("no-mmap flag", NO_MMAP_FLAG);
        check("llama.cpp build", LLAMA_CPP_BUILD);
        let b = boundaries();
        assert_eq!(b.first(), Some(&Version::OLDEST));
        assert_eq!(b.last(), Some(&Version::NEWEST));
        assert!(b.windows(2).all(|w| w[0] < w[1]));
    }
}
