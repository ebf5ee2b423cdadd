//! How long `ramscope scan` takes on a real source tree, beside the floor for touching every
//! file of it: `rg -c 'pin_memory|torch\.(empty|zeros)' TREE`.
//!
//!   cargo bench --bench scan_speed                                # vLLM 0.33.0 (fetched once)
//!   RAMSCOPE_SCAN_TREE=/path/to/vllm cargo bench --bench scan_speed
//!
//! The goal is the whole tree (Python and csrc/) in under a second. Each row is the best of
//! [`ROUNDS`] runs, taken in turn so that a change in the machine's load hits every row alike
//! (the machine is shared: the best run is the least disturbed one); CPU time is printed
//! beside wall time because it moves less with the load. No time is asserted.
//!
//! Rows: the scan as it runs (of each file only the functions and classes the resolver can
//! use, `scan::ranges`), the same scan parsing its files whole (`RAMSCOPE_SCAN_WHOLE_FILES`:
//! the scan as it was before the ranges; the sites must be the same, and any difference is
//! listed), rg; then one traced run's phases, and tree-sitter alone on one thread, which
//! bounds what any choice of files and ranges can reach.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ramscope::scan::{self, files, python, select, Options, Scan};

const ROUNDS: usize = 5;
const PATTERN: &str = r"pin_memory|torch\.(empty|zeros)";
const GOAL: Duration = Duration::from_secs(1);
const WHOLE: &str = "RAMSCOPE_SCAN_WHOLE_FILES";

fn main() {
    let Some(tree) = tree() else {
        println!(
            "scan_speed: no tree to scan — set RAMSCOPE_SCAN_TREE to a source tree, or let \
             scripts/vllm-sources.sh fetch vLLM 0.33.0 (needs the network once); nothing \
             measured"
        );
        return;
    };
    let has_rg = Command::new("rg")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    println!("scan of {} (best of {ROUNDS}, in turn):", tree.display());

    let options = Options::default();
    let mut scans: [Option<Scan>; 2] = [None, None];
    let mut best = [Time::MAX; 3];
    for _ in 0..ROUNDS {
        for (k, whole) in [false, true].into_iter().enumerate() {
            if whole {
                std::env::set_var(WHOLE, "1");
            }
            let (t, s) = timed(|| scan::scan(&tree, &options).expect("scan"));
            std::env::remove_var(WHOLE);
            best[k] = best[k].min(t);
            scans[k] = Some(s);
        }
        if has_rg {
            let (t, _) = timed(|| rg(&tree));
            best[2] = best[2].min(t);
        }
    }
    let [Some(ours), Some(whole)] = scans else {
        return;
    };
    for (name, s, t) in [
        ("ramscope scan::scan", &ours, best[0]),
        ("the same, files parsed whole", &whole, best[1]),
    ] {
        println!(
            "  {name:<40} {}   {} files read ({:.1} MB), {} parsed, {} sites",
            t.show(),
            s.files_scanned,
            s.bytes_scanned as f64 / 1e6,
            s.files_parsed,
            s.sites.len()
        );
    }
    if has_rg {
        println!(
            "  {:<40} {}   {} files match",
            format!("rg -c '{PATTERN}'"),
            best[2].show(),
            rg(&tree)
        );
        println!(
            "  ramscope / rg: {:.1}× (files parsed whole: {:.1}×)",
            best[0].ratio(best[2]),
            best[1].ratio(best[2])
        );
    } else {
        println!("  rg not installed (apt-get install ripgrep): no floor row");
    }
    println!(
        "  speed-up of the ranges: {:.2}× wall, {:.2}× CPU",
        best[1].ratio(best[0]),
        best[1].cpu.as_secs_f64() / best[0].cpu.as_secs_f64().max(1e-9)
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "  goal (< {:.0} s for the whole tree, on this {cores}-core machine): {}",
        GOAL.as_secs_f64(),
        if best[0].wall < GOAL {
            "met"
        } else {
            "NOT met"
        }
    );
    same_sites(&ours, &whole);

    println!("\nphases of one more run (stderr):");
    std::env::set_var("RAMSCOPE_SCAN_TRACE", "1");
    let _ = scan::scan(&tree, &options);
    std::env::remove_var("RAMSCOPE_SCAN_TRACE");

    raw_parsers(&tree);
}

/// The tree to scan: `RAMSCOPE_SCAN_TREE`, else vLLM 0.33.0 from `scripts/vllm-sources.sh`.
fn tree() -> Option<PathBuf> {
    if let Some(t) = std::env::var_os("RAMSCOPE_SCAN_TREE") {
        return Some(PathBuf::from(t)).filter(|p| p.is_dir());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/vllm-sources.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("0.33.0")
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = text.lines().last()?.split_once(' ')?.1;
    Some(PathBuf::from(dir))
}

/// Wall and CPU (user + system, all threads) time of one run.
#[derive(Clone, Copy)]
struct Time {
    wall: Duration,
    cpu: Duration,
}

impl Time {
    const MAX: Time = Time {
        wall: Duration::MAX,
        cpu: Duration::MAX,
    };

    fn min(self, o: Time) -> Time {
        if o.wall < self.wall {
            o
        } else {
            self
        }
    }

    fn show(&self) -> String {
        format!(
            "{:>7.3} s ({:>6.3} s CPU)",
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64()
        )
    }

    fn ratio(&self, o: Time) -> f64 {
        self.wall.as_secs_f64() / o.wall.as_secs_f64().max(1e-9)
    }
}

/// CPU time of this process and its waited-for children.
fn cpu() -> Duration {
    let mut total = Duration::ZERO;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage writes one plain struct that we own.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut u) } == 0 {
            for t in [u.ru_utime, u.ru_stime] {
                total += Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
            }
        }
    }
    total
}

fn timed<T>(f: impl FnOnce() -> T) -> (Time, T) {
    let (c, t) = (cpu(), Instant::now());
    let out = f();
    (
        Time {
            wall: t.elapsed(),
            cpu: cpu().saturating_sub(c),
        },
        out,
    )
}

/// `rg -c` over the tree: how many files match.
fn rg(tree: &Path) -> usize {
    Command::new("rg")
        .arg("-c")
        .arg(PATTERN)
        .arg(tree)
        .stderr(Stdio::null())
        .output()
        .map_or(0, |o| {
            o.stdout
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
        })
}

/// Whether parsing only what the plan picks lost or changed a site (file, line, anchor,
/// formula) against parsing whole files.
fn same_sites(ours: &Scan, whole: &Scan) {
    let key = |s: &Scan| -> BTreeSet<(String, u32, String, String)> {
        s.sites
            .iter()
            .map(|x| {
                (
                    x.file.clone(),
                    x.line,
                    x.anchor.clone(),
                    x.formula.to_string(),
                )
            })
            .collect()
    };
    let (a, b) = (key(ours), key(whole));
    if a == b {
        println!("  sites: the same {} as with files parsed whole", a.len());
        return;
    }
    println!(
        "  SITES DIFFER from files parsed whole: {} only there, {} only here",
        b.difference(&a).count(),
        a.difference(&b).count()
    );
    for s in b.difference(&a).take(10) {
        println!("    only whole: {s:?}");
    }
    for s in a.difference(&b).take(10) {
        println!("    only here:  {s:?}");
    }
}

/// tree-sitter alone, one thread, over the files the scan parses first: whole, and only the
/// parts the plan picks; then with the facts the scan draws from the tree.
fn raw_parsers(tree: &Path) {
    let listing = files::list(tree).expect("list");
    let loaded = files::load_all(&listing.sources, 0);
    let (py, cc) = select::first(&loaded);
    let plan = select::Plan::new(&loaded, &py, 0);
    println!("\ntree-sitter alone, one thread, the files the scan parses first:");
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .expect("python");
    let texts: Vec<(usize, &str)> = py
        .iter()
        .filter_map(|&i| Some((i, loaded[i].text.as_deref().ok()?)))
        .collect();
    let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();
    let (t, _) = timed(|| {
        for (_, text) in &texts {
            std::hint::black_box(parser.parse(text, None));
        }
    });
    row("tree-sitter-python, whole", texts.len(), bytes, t.wall);
    let mut picked = 0;
    let (t, _) = timed(|| {
        for &(i, text) in &texts {
            let r = plan.ranges(i).unwrap_or_default();
            picked += r.iter().map(|r| r.end_byte - r.start_byte).sum::<usize>();
            if r.is_empty() {
                picked += text.len();
            }
            parser.set_included_ranges(&r).expect("ranges");
            std::hint::black_box(parser.parse(text, None));
        }
        parser.set_included_ranges(&[]).expect("ranges");
    });
    row("tree-sitter-python, ranges", texts.len(), picked, t.wall);
    let (t, _) = timed(|| {
        for &(i, text) in &texts {
            std::hint::black_box(python::parse(&loaded[i].rel, text, &mut parser));
        }
    });
    row("python::parse (+facts), whole", texts.len(), bytes, t.wall);

    parser
        .set_language(&tree_sitter_cpp::LANGUAGE.into())
        .expect("cpp");
    let texts: Vec<&str> = cc
        .iter()
        .filter_map(|&i| loaded[i].text.as_deref().ok())
        .collect();
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let (t, _) = timed(|| {
        for text in &texts {
            std::hint::black_box(parser.parse(text, None));
        }
    });
    row("tree-sitter-cpp, whole", texts.len(), bytes, t.wall);
}

fn row(name: &str, files: usize, bytes: usize, d: Duration) {
    println!(
        "  {name:<32} {files:>5} files {:>6.1} MB {:>7.3} s  {:>5.1} MB/s",
        bytes as f64 / 1e6,
        d.as_secs_f64(),
        bytes as f64 / 1e6 / d.as_secs_f64()
    );
}
