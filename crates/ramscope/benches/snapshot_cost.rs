//! What one snapshot costs, side by side with the floor and with smem, on the same process.
//!
//!   cargo bench --bench snapshot_cost                    # a 20,000-mapping process
//!   RAMSCOPE_BENCH_PIDS=1234 cargo bench --bench snapshot_cost   # also an existing tree
//!
//! The floor is the least any smaps-based tool can do: read every smaps file of the tree into
//! a buffer. Ratios are printed because absolute times move with the machine's load.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ramscope::measure::{MeasureOptions, Measurer};
use ramscope::proc::tree::ProcessTable;
use ramscope::proc::ProcFs;

const MAPPINGS: usize = 20_000;
const ROUNDS: usize = 15;

fn main() {
    let target = ManyMappings::start(MAPPINGS);
    println!(
        "one snapshot of a process with {} mappings (PID {}), median of {ROUNDS} rounds:",
        target.mappings(),
        target.pid()
    );
    compare(&[target.pid()], Some("ramscope-bench-many-mappings"));
    drop(target);

    if let Ok(pids) = std::env::var("RAMSCOPE_BENCH_PIDS") {
        let roots: Vec<u32> = pids
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        let table = ProcessTable::scan(&ProcFs::default()).expect("scan /proc");
        let tree: Vec<u32> = roots.iter().flat_map(|&r| table.descendants(r)).collect();
        let maps: usize = tree.iter().map(|&p| count_mappings(p)).sum();
        println!(
            "\none snapshot of the tree under {pids} ({} processes, {maps} mappings):",
            tree.len()
        );
        compare(&roots, None);
    }
}

fn compare(roots: &[u32], smem_filter: Option<&str>) {
    let fs = ProcFs::default();
    let table = ProcessTable::scan(&fs).expect("scan /proc");
    let tree: Vec<u32> = roots.iter().flat_map(|&r| table.descendants(r)).collect();
    let bin = env!("CARGO_BIN_EXE_ramscope");
    let root_args: Vec<String> = roots.iter().map(u32::to_string).collect();
    let smem = smem_filter.filter(|_| which("smem"));

    let mut buf = Vec::with_capacity(32 << 20);
    let mut fast = Measurer::new(
        fs.clone(),
        MeasureOptions {
            use_rollup: false,
            ..MeasureOptions::default()
        },
    );
    let mut auto = Measurer::new(fs.clone(), MeasureOptions::default());
    let mut exact = Measurer::new(fs.clone(), MeasureOptions::default());
    exact.set_rollup_rss_limit(None);

    // Every variant runs once per round, in turn, so that a change in the machine's load hits
    // them all alike; the median of the rounds is reported.
    let mut variants: Vec<Variant<'_>> = vec![
        (
            "floor: read every smaps into a buffer",
            Box::new(|| {
                for &pid in &tree {
                    let mut f =
                        std::fs::File::open(format!("/proc/{pid}/smaps")).expect("open smaps");
                    buf.clear();
                    f.read_to_end(&mut buf).expect("read smaps");
                }
            }),
        ),
        (
            "ramscope library, smaps only (--no-rollup)",
            Box::new(|| {
                fast.tree(roots).expect("measure");
            }),
        ),
        (
            "ramscope library, default (rollup under 256 MiB)",
            Box::new(|| {
                auto.tree(roots).expect("measure");
            }),
        ),
        (
            "ramscope library, smaps + rollup (--exact)",
            Box::new(|| {
                exact.tree(roots).expect("measure");
            }),
        ),
        (
            "ramscope measure --json (whole binary)",
            Box::new(|| {
                let ok = Command::new(bin)
                    .arg("measure")
                    .arg("--json")
                    .args(&root_args)
                    .stdout(Stdio::null())
                    .status()
                    .expect("run ramscope")
                    .success();
                assert!(ok);
            }),
        ),
    ];
    if let Some(filter) = smem {
        variants.push((
            "smem -P (the same process)",
            Box::new(move || {
                let ok = Command::new("smem")
                    .args(["-P", filter])
                    .stdout(Stdio::null())
                    .status()
                    .expect("run smem")
                    .success();
                assert!(ok);
            }),
        ));
    }
    let times = interleaved_medians(&mut variants);
    let names: Vec<&str> = variants.iter().map(|(n, _)| *n).collect();
    drop(variants);
    let floor = times[0];
    for (name, d) in names.iter().zip(&times) {
        println!(
            "  {name:<50} {:>9.2} ms   {:>5.2}× floor",
            d.as_secs_f64() * 1e3,
            d.as_secs_f64() / floor.as_secs_f64()
        );
    }

    // The parser and attribution alone, on text already in memory (the tree's last smaps).
    let text = tree
        .last()
        .and_then(|pid| std::fs::read(format!("/proc/{pid}/smaps")).ok())
        .unwrap_or_default();
    let mut attributor = ramscope::snapshot::Attributor::new(false);
    let mut parse: Vec<Variant<'_>> = vec![(
        "parse + attribute only (one smaps, text in memory)",
        Box::new(|| {
            let maps: Vec<_> = ramscope::proc::smaps::SmapsParser::new(&text)
                .collect::<Result<_, _>>()
                .expect("parse");
            std::hint::black_box(attributor.attribute(&maps));
        }),
    )];
    let parse_time = interleaved_medians(&mut parse)[0];
    drop(parse);
    println!(
        "  {:<50} {:>9.2} ms   ({:.0} MB/s of smaps text)",
        "parse + attribute only (one smaps, text in memory)",
        parse_time.as_secs_f64() * 1e3,
        text.len() as f64 / parse_time.as_secs_f64() / 1e6
    );
    match smem_filter {
        Some(_) if smem.is_some() => {
            let n = times.len();
            println!(
                "  smem / ramscope binary: {:.1}×",
                times[n - 1].as_secs_f64() / times[n - 2].as_secs_f64()
            );
        }
        Some(_) => println!("  smem not installed (apt-get install smem) — no peer row"),
        None => {}
    }
}

/// A named thing to time.
type Variant<'a> = (&'static str, Box<dyn FnMut() + 'a>);

fn interleaved_medians(variants: &mut [Variant<'_>]) -> Vec<Duration> {
    for (_, f) in variants.iter_mut() {
        f(); // warm caches
    }
    let mut times = vec![Vec::with_capacity(ROUNDS); variants.len()];
    for _ in 0..ROUNDS {
        for (i, (_, f)) in variants.iter_mut().enumerate() {
            let t = Instant::now();
            f();
            times[i].push(t.elapsed());
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[ROUNDS / 2]
        })
        .collect()
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn count_mappings(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// A Python process holding `n` small anonymous mappings that cannot merge (alternating
/// protections), each touched so that it has a resident page.
struct ManyMappings {
    child: std::process::Child,
}

impl ManyMappings {
    fn start(n: usize) -> ManyMappings {
        let script = format!(
            r#"# ramscope-bench-many-mappings
import mmap, sys
keep = []
for i in range({n}):
    prot = mmap.PROT_READ | mmap.PROT_WRITE if i % 2 == 0 else mmap.PROT_READ
    m = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, prot=prot)
    if i % 2 == 0:
        m[0] = 1
    else:
        m[0]
    keep.append(m)
print("ready", flush=True)
sys.stdin.read()
"#
        );
        let mut child = Command::new("python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        assert_eq!(line.trim(), "ready");
        ManyMappings { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn mappings(&self) -> usize {
        count_mappings(self.pid())
    }
}

impl Drop for ManyMappings {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
