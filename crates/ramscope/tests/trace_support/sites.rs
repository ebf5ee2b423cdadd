//! What a correct tracer finds in each test program: one row per allocation site (a
//! `SITE:<marker>` line in the program's source), with the kind of docs/trace-format.md, the
//! process it happens in, and its bytes.
//!
//! Byte counts are what the program asks for. A tracer reports heap blocks by
//! `malloc_usable_size`, which for a block glibc maps itself is the request rounded up to a
//! page (plus up to 16 B); mappings are page-rounded. `slack_percent` is the relative
//! tolerance a check should allow on top of that (0: exact up to that rounding).
//! `resident` is the bytes the program touches; each block may add a page of its own
//! (malloc's header lives in the block's first page). `None` where no number is predictable
//! (sampled sites have no resident figure; Python frees everything while it finalises).
//!
//! Semantics this table assumes where the format leaves a choice: `realloc` frees the old
//! block (charged to the site that allocated it) and allocates the new one at the `realloc`'s
//! own stack; `mremap` does the same for mappings.

use super::marker_line;

/// A program invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    /// `alloc` (built -O1): every kind, a fork child, an exec'd child, a spawned child, a thread.
    Alloc,
    /// `alloc-O2`: the same program and sites built -O2.
    AllocO2,
    /// `alloc killme`: 50 MiB, prints "ready", sleeps until killed.
    Killme,
    /// `pinned` with the fake CUDA libraries.
    Pinned,
    /// `python3 alloc.py`.
    AllocPy,
    /// `storm ROUNDS`: 16 threads of malloc/realloc/free; no sites, a checksum.
    Storm(u32),
}

impl Run {
    /// The source file (under `trace_programs`) whose markers this run's sites use.
    pub fn source(self) -> &'static str {
        match self {
            Run::Alloc | Run::AllocO2 | Run::Killme => "alloc.c",
            Run::Pinned => "fakecuda/pinned.c",
            Run::AllocPy => "alloc.py",
            Run::Storm(_) => "storm.c",
        }
    }

    /// What the run prints on stdout, traced or not.
    pub fn stdout(self) -> String {
        match self {
            Run::Alloc | Run::AllocO2 => "alloc: done\n".into(),
            Run::Killme => "ready\n".into(),
            Run::Pinned => "pinned: done\n".into(),
            Run::AllocPy => "alloc.py: done\n".into(),
            Run::Storm(rounds) => format!("storm: 16 threads x {rounds} rounds, checksum "),
        }
    }
}

/// The process of a run's tree a site happens in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    /// The process the run starts (origin `start`).
    Parent,
    /// A thread of the parent (same process, same file).
    Thread,
    /// A `fork()` child that does not exec (origin `fork`, parent = the parent's file).
    ForkChild,
    /// `fork()` then `execl` of the program itself (`alloc child-exec`): image 1 of the forked
    /// PID, origin `exec`.
    ExecChild,
    /// A new program started without a fork handler running in between: `posix_spawn` in
    /// alloc.c (`alloc child-spawn`), multiprocessing's spawn context in alloc.py (its
    /// cmdline holds `multiprocessing.spawn`).
    SpawnChild,
    /// `subprocess.run([sys.executable, "-c", SUBPROCESS_CODE])` in alloc.py.
    SubprocessChild,
}

/// One allocation site.
#[derive(Clone, Copy, Debug)]
pub struct Site {
    pub run: Run,
    /// `SITE:<marker>` on the allocating line.
    pub marker: &'static str,
    /// For an allocation inside a helper function: the marker of the innermost frame's line;
    /// `marker` is then the caller's line (the next frame out).
    pub inner: Option<&'static str>,
    pub process: Process,
    /// A kind of docs/trace-format.md.
    pub kind: &'static str,
    pub calls: u64,
    /// Bytes asked for by all calls at the site.
    pub requested: u64,
    /// Calls whose block was freed (or unmapped, unregistered) before the end.
    pub frees: u64,
    /// Requested bytes still live at the process's final write.
    pub live_at_end: Option<u64>,
    /// Requested bytes live when the process reached its peak.
    pub at_peak: u64,
    /// Bytes of the live blocks that were touched (page granular).
    pub resident: Option<u64>,
    /// `region … rounded=`: for pinned memory, the driver's mapping (2 MiB granules).
    pub rounded: Option<u64>,
    /// Relative tolerance on bytes, beyond allocator rounding.
    pub slack_percent: u32,
    /// A Python module the site needs (skipped when it is not importable).
    pub needs: Option<&'static str>,
    pub note: &'static str,
}

impl Site {
    /// The source line a stack of this site resolves to (`marker`'s line).
    pub fn line(&self) -> u32 {
        marker_line(self.run.source(), self.marker)
    }

    /// The innermost frame's line when it differs from `line()`.
    pub fn inner_line(&self) -> Option<u32> {
        self.inner.map(|m| marker_line(self.run.source(), m))
    }
}

const MIB: u64 = 1 << 20;

/// A row with the common defaults: one call, nothing freed, live at end and at the peak,
/// fully touched.
const fn site(
    run: Run,
    marker: &'static str,
    process: Process,
    kind: &'static str,
    bytes: u64,
) -> Site {
    Site {
        run,
        marker,
        inner: None,
        process,
        kind,
        calls: 1,
        requested: bytes,
        frees: 0,
        live_at_end: Some(bytes),
        at_peak: bytes,
        resident: Some(bytes),
        rounded: None,
        slack_percent: 0,
        needs: None,
        note: "",
    }
}

/// A row freed before the process's peak.
const fn freed(s: Site) -> Site {
    Site {
        frees: s.calls,
        live_at_end: Some(0),
        at_peak: 0,
        resident: None,
        ..s
    }
}

/// A Python row: the interpreter frees it while finalising, before the final write.
const fn py(s: Site) -> Site {
    Site {
        live_at_end: None,
        ..s
    }
}

use Process::*;
use Run::*;

/// The `frees: 0` and 5 MiB-style numbers are the program's; see the module comment for how a
/// tracer's figures relate to them.
pub const SITES: &[Site] = &[
    // alloc.c, the parent. Its peak is its end: the thread's 9 MiB comes last and outweighs
    // the 14 MiB mapping unmapped before (the live total then is 8 MiB below the end's).
    site(Alloc, "malloc_3m", Parent, "heap", 3 * MIB),
    Site {
        resident: Some(0),
        note: "calloc of fresh pages: glibc does not clear them, nothing may touch them",
        ..site(Alloc, "calloc_256m", Parent, "heap", 256 * MIB)
    },
    site(Alloc, "posix_memalign_1m", Parent, "heap", MIB),
    freed(site(Alloc, "aligned_alloc_2m", Parent, "heap", 2 * MIB)),
    Site {
        note: "freed by the realloc at SITE:realloc_to_8m",
        ..freed(site(Alloc, "realloc_from_1m", Parent, "heap", MIB))
    },
    site(Alloc, "realloc_to_8m", Parent, "heap", 8 * MIB),
    site(Alloc, "small_table", Parent, "heap", 80_000),
    Site {
        calls: 10_000,
        resident: None,
        slack_percent: 100,
        note: "100 B blocks, below min_size: sampled. usable size 104 B each, so about \
               1 040 000 B live; the estimate's relative standard error is \
               sqrt(sample_bytes / bytes): about 70% at the default 512 KiB, so checks \
               should lower sample_bytes (4 KiB gives about 6%)",
        ..site(Alloc, "small_100b", Parent, "heap", 1_000_000)
    },
    Site {
        note: "moved and grown by the mremap at SITE:mremap_32m",
        ..freed(site(Alloc, "mmap_16m", Parent, "mmap.anon", 16 * MIB))
    },
    Site {
        resident: Some(8 * MIB),
        note: "the 16 MiB mapping grown with MREMAP_MAYMOVE; its first half was touched",
        ..site(Alloc, "mremap_32m", Parent, "mmap.anon", 32 * MIB)
    },
    site(Alloc, "mmap_keep_13m", Parent, "mmap.anon", 13 * MIB),
    Site {
        note: "unmapped at SITE:munmap_14m",
        ..freed(site(Alloc, "mmap_drop_14m", Parent, "mmap.anon", 14 * MIB))
    },
    Site {
        resident: Some(2 * MIB),
        note: "shm_open, ftruncate, mmap MAP_SHARED; unlinked after mapping (still live)",
        ..site(Alloc, "shm_8m", Parent, "shm", 8 * MIB)
    },
    Site {
        resident: Some(MIB),
        note: "memfd_create, ftruncate, mmap MAP_SHARED",
        ..site(Alloc, "memfd_4m", Parent, "shm", 4 * MIB)
    },
    site(Alloc, "shared_anon_1m", Parent, "mmap.shared", MIB),
    site(Alloc, "thread_malloc_9m", Thread, "heap", 9 * MIB),
    Site {
        note: "ends with exit(0), so its final write has final 1",
        ..site(Alloc, "fork_child_malloc_5m", ForkChild, "heap", 5 * MIB)
    },
    site(Alloc, "exec_child_malloc_7m", ExecChild, "heap", 7 * MIB),
    Site {
        note: "posix_spawn: glibc's clone+exec runs no fork handler and calls no interposable \
               execve",
        ..site(
            Alloc,
            "spawn_child_malloc_11m",
            SpawnChild,
            "heap",
            11 * MIB,
        )
    },
    Site {
        resident: None,
        note: "never exits: SIGKILLed; the figures are those of its last write. Resident is \
               what mincore saw then: a tracer that rewrites only while the process allocates \
               last wrote at the malloc, before the pages were touched",
        ..site(Killme, "killme_malloc_50m", Parent, "heap", 50 * MIB)
    },
    // fakecuda/pinned.c. Its peak is the NCCL-style 6 MiB (before the 3 MiB is freed).
    Site {
        rounded: Some(512 * MIB),
        note: "the program asks 300 MiB and rounds to a power of two itself, as PyTorch's \
               caching host allocator does: CUDA is asked for 512 MiB",
        ..site(
            Pinned,
            "pinned_host_alloc_512m",
            Parent,
            "pinned",
            512 * MIB,
        )
    },
    Site {
        rounded: Some(4 * MIB),
        at_peak: 3 * MIB,
        note: "cudaMallocHost; the driver maps 4 MiB; freed by cudaFreeHost after the peak",
        ..freed(site(
            Pinned,
            "pinned_malloc_host_3m",
            Parent,
            "pinned",
            3 * MIB,
        ))
    },
    Site {
        note: "the memory then registered at SITE:registered_64m and SITE:registered_32m",
        ..site(Pinned, "registered_malloc_64m", Parent, "heap", 64 * MIB)
    },
    Site {
        note: "cudaHostRegister, unregistered at SITE:unregister_64m before the peak",
        ..freed(site(
            Pinned,
            "registered_64m",
            Parent,
            "pinned.registered",
            64 * MIB,
        ))
    },
    site(
        Pinned,
        "registered_32m",
        Parent,
        "pinned.registered",
        32 * MIB,
    ),
    Site {
        rounded: Some(6 * MIB),
        note: "the program's own dlopen(libcuda.so.1) + cuGetProcAddress_v2(cuMemHostAlloc), \
               as NCCL does: pinned, counted once",
        ..site(Pinned, "nccl_mem_host_alloc_6m", Parent, "pinned", 6 * MIB)
    },
    // alloc.py. bytearray(n) asks realloc(NULL, n + 1) and writes zeros to it (resident).
    // The parent's peak is the thread's 10 MiB, after everything else it holds.
    py(site(AllocPy, "py_bytearray_64m", Parent, "heap", 64 * MIB)),
    Site {
        needs: Some("numpy"),
        resident: Some(0),
        note: "numpy.zeros: calloc, never written",
        ..py(site(
            AllocPy,
            "py_numpy_zeros_64m",
            Parent,
            "heap",
            64 * MIB,
        ))
    },
    Site {
        calls: 16,
        resident: None,
        slack_percent: 40,
        note: "100 000 (int, str) tuples: pymalloc arenas of 1 MiB, mmapped by the \
               interpreter (about 160 B per item); some may come from arenas it already had. \
               The arenas come through several native paths, so several site records share \
               these Python frames: sum them",
        ..py(site(
            AllocPy,
            "py_small_objects",
            Parent,
            "mmap.anon",
            16 * MIB,
        ))
    },
    Site {
        resident: Some(2 * MIB),
        note: "multiprocessing.shared_memory: shm_open, ftruncate, mmap; first 2 MiB written",
        ..py(site(AllocPy, "py_shared_memory_8m", Parent, "shm", 8 * MIB))
    },
    Site {
        resident: Some(MIB),
        note: "mmap.mmap(-1, n) is MAP_SHARED|MAP_ANONYMOUS; first 1 MiB written",
        ..py(site(
            AllocPy,
            "py_mmap_16m",
            Parent,
            "mmap.shared",
            16 * MIB,
        ))
    },
    Site {
        inner: Some("py_make_buffer"),
        ..py(site(
            AllocPy,
            "py_make_buffer_32m",
            Parent,
            "heap",
            32 * MIB,
        ))
    },
    Site {
        inner: Some("py_make_buffer"),
        ..py(site(
            AllocPy,
            "py_make_buffer_48m",
            Parent,
            "heap",
            48 * MIB,
        ))
    },
    Site {
        note: "multiprocessing spawn context: a fresh interpreter that imports alloc.py as \
               __mp_main__; ends with sys.exit",
        ..py(site(
            AllocPy,
            "py_spawn_child_24m",
            SpawnChild,
            "heap",
            24 * MIB,
        ))
    },
    Site {
        live_at_end: Some(12 * MIB),
        note: "ends with os._exit (as multiprocessing's fork children do): no exit handlers \
               run, so its file is its last write before that (final 0)",
        ..site(AllocPy, "py_fork_child_12m", ForkChild, "heap", 12 * MIB)
    },
    Site {
        note: "the marker is the parent's subprocess.run line; the allocation is at \
               SUBPROCESS_FRAME in the child",
        ..py(site(
            AllocPy,
            "py_subprocess",
            SubprocessChild,
            "heap",
            20 * MIB,
        ))
    },
    py(site(AllocPy, "py_thread_10m", Thread, "heap", 10 * MIB)),
];

/// The Python frame of the subprocess.run child's allocation: (file, function, line).
pub const SUBPROCESS_FRAME: (&str, &str, u32) = ("<string>", "<module>", 2);

/// Markers of calls that allocate nothing (frees, names, helper lines).
pub const EVENT_MARKERS: &[(Run, &str)] = &[
    (Alloc, "free_aligned_2m"),
    (Alloc, "munmap_14m"),
    (Alloc, "shm_open"),
    (Alloc, "shm_unlink"),
    (Alloc, "memfd_create"),
    (Pinned, "pinned_free_3m"),
    (Pinned, "unregister_64m"),
    (AllocPy, "py_make_buffer"),
];

/// Exact per-process figures: (run, process, record, name, value). `total` rows give a kind's
/// `calls=`; `count` rows a `count` record. They pin down double counting: the fake driver's
/// mmaps happen inside pinned calls, so `pinned` has no `mmap.shared` call of its own.
pub const COUNTS: &[(Run, Process, &str, &str, u64)] = &[
    (Alloc, Parent, "count", "munmap", 1),
    (Alloc, Parent, "count", "mremap", 1),
    (Alloc, Parent, "count", "shm_open", 1),
    (Alloc, Parent, "count", "shm_unlink", 1),
    (Alloc, Parent, "count", "memfd_create", 1),
    (Alloc, Parent, "total", "shm", 2),
    (Alloc, Parent, "total", "mmap.shared", 1),
    (Pinned, Parent, "total", "pinned", 3),
    (Pinned, Parent, "total", "pinned.registered", 2),
    (Pinned, Parent, "total", "mmap.shared", 0),
];
