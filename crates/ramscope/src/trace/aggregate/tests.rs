use super::*;
use crate::trace::dir::tree;
use crate::trace::format::parse;

/// A trace file of `pid` with the given body records.
fn file(pid: u32, image: u32, parent: &str, init: u64, flush: u64, body: &str) -> TraceFile {
    let text = format!(
        "ramscope-trace 1\npid {pid}\nppid 1\nstart_ticks 5\nimage {image}\norigin start\nparent {parent}\ninit_ns {init}\nflush_ns {flush}\nfinal 1\ncomm python3\ncmdline python3 -m vllm.entrypoints.openai.api_server\noption sample_bytes 524288\n{body}end\n"
    );
    parse(&format!("{pid}.5.{image}.rstrace"), text.as_bytes()).unwrap()
}

fn dir(files: Vec<TraceFile>) -> TraceDir {
    TraceDir {
        path: "/t".into(),
        run: None,
        processes: tree(files),
        notes: Vec::new(),
    }
}

fn report(d: &TraceDir, filter: &Filter) -> Report {
    aggregate(d, filter, &mut Symbolizer::new())
}

#[test]
fn kinds_land_in_measure_s_categories() {
    assert_eq!(category_of(Kind::Heap, None), Some(Category::Heap));
    assert_eq!(category_of(Kind::MmapAnon, None), Some(Category::Heap));
    assert_eq!(
        category_of(Kind::MmapShared, None),
        Some(Category::SharedAnon)
    );
    assert_eq!(category_of(Kind::Shm, None), Some(Category::Shm));
    assert_eq!(category_of(Kind::Pinned, None), Some(Category::Pinned));
    assert_eq!(
        category_of(Kind::MmapFile, Some("/m/model-00001-of-00002.safetensors")),
        Some(Category::Weights)
    );
    assert_eq!(
        category_of(Kind::MmapFile, Some("/usr/lib/locale/locale-archive")),
        Some(Category::FileOther)
    );
    assert_eq!(category_of(Kind::PinnedRegistered, None), None);
}

#[test]
fn file_mappings_split_into_weights_and_other_files() {
    let body = "total mmap.file calls=2 bytes=3000 frees=0 freed=0 live=3000 peak=3000
total heap calls=1 bytes=100 frees=0 freed=0 live=100 peak=100
total pinned.registered calls=1 bytes=50 frees=0 freed=0 live=50 peak=50
str 1 /m/model.safetensors
str 2 /etc/x.cache
stack 1 - -
region mmap.file 1000 2000 stack=1 rounded=4096 resident=0 path=1
region mmap.file 9000 1000 stack=1 rounded=4096 resident=- path=2
site 1 mmap.file calls=2 bytes=3000 frees=0 live=3000 peak=3000 at_peak=3000 resident=- sampled=0
";
    let r = report(&dir(vec![file(7, 0, "-", 1, 2, body)]), &Filter::default());
    let p = &r.processes[0];
    assert_eq!(p.categories[&Category::Weights], 2000);
    assert_eq!(p.categories[&Category::FileOther], 1000);
    assert_eq!(p.categories[&Category::Heap], 100);
    // Registered bytes are already counted in their own kind.
    assert_eq!(p.live_bytes(), 3100);
    assert_eq!(r.pinned_registered_bytes, 50);
    assert_eq!(r.sites[0].category, Some(Category::Weights));
    assert_eq!(r.sites[0].regions.len(), 2);
    assert_eq!(r.sites[0].regions[0].resident, Some(0));
}

#[test]
fn the_tree_peak_sums_processes_on_one_time_axis() {
    // A: 100 from t=10, 300 from t=20, ends at 40. B: 250 at t=25, exits at 30.
    // C (exec'd image of B's PID): starts at t=35 with 50.
    let a = file(
        1,
        0,
        "-",
        10,
        40,
        "sample 10 100 0 0 0 0 0 1000\nsample 20 300 0 0 0 0 0 2000\n",
    );
    let b = file(
        2,
        0,
        "1.5.0.rstrace",
        24,
        30,
        "sample 25 200 0 0 0 50 0 500\n",
    );
    let c = file(2, 1, "2.5.0.rstrace", 35, 36, "sample 35 50 0 0 0 0 0 -\n");
    let r = report(&dir(vec![a, b, c]), &Filter::default());
    let peak = r.tree_peak.unwrap();
    assert_eq!((peak.t_ns, peak.live_bytes), (25, 550));
    assert_eq!(peak.after_ns, 15);
    assert_eq!(peak.vm_rss_bytes, Some(2500));
    assert_eq!(peak.processes["1"], 300);
    assert_eq!(peak.processes["2"], 250);
    assert!(!peak.processes.contains_key("2#1"));
}

#[test]
fn a_process_is_gone_after_its_last_write() {
    // B's 1000 ended at 30; A's later 600 is the peak, not 1600.
    let a = file(
        1,
        0,
        "-",
        10,
        50,
        "sample 10 100 0 0 0 0 0 -\nsample 40 600 0 0 0 0 0 -\n",
    );
    let b = file(2, 0, "-", 20, 30, "sample 20 1000 0 0 0 0 0 -\n");
    let peak = report(&dir(vec![a, b]), &Filter::default())
        .tree_peak
        .unwrap();
    assert_eq!((peak.t_ns, peak.live_bytes), (20, 1100));
}

const SITES: &str = "str 1 /x/site-packages/vllm/v1/worker/gpu_input_batch.py
str 2 __init__
stack 1 - 1:2:131
stack 2 - -
site 1 heap calls=3 bytes=2097152 frees=0 live=2097152 peak=2097152 at_peak=1048576 resident=- sampled=1
site 2 pinned calls=1 bytes=4096 frees=0 live=4096 peak=4096 at_peak=0 resident=4096 sampled=0
lost stack_table_full 3
";

#[test]
fn sites_are_named_and_sampled_ones_carry_their_error() {
    let r = report(&dir(vec![file(9, 0, "-", 1, 2, SITES)]), &Filter::default());
    assert_eq!(r.sites.len(), 2);
    let s = &r.sites[0];
    assert_eq!(s.label, "vllm/v1/worker/gpu_input_batch.py:131 in __init__");
    assert_eq!(s.role, Role::ApiServer);
    // sqrt(512 KiB / 2 MiB) = 0.5; sqrt(512 KiB / 1 MiB) ≈ 0.707.
    assert_eq!(s.live_rel_error, Some(0.5));
    assert!((s.at_peak_rel_error.unwrap() - 0.5f64.sqrt()).abs() < 1e-12);
    let exact = &r.sites[1];
    assert_eq!(exact.label, "(no stack)");
    assert_eq!(
        (exact.live_rel_error, exact.resident_bytes),
        (None, Some(4096))
    );
    assert_eq!(r.lost["stack_table_full"], 3);
}

#[test]
fn filters_by_pid_and_size() {
    let d = dir(vec![
        file(9, 0, "-", 1, 2, SITES),
        file(10, 0, "-", 1, 2, SITES),
    ]);
    let by_pid = report(
        &d,
        &Filter {
            pid: Some(10),
            min_bytes: 0,
        },
    );
    assert_eq!(by_pid.processes.len(), 1);
    assert!(by_pid.sites.iter().all(|s| s.pid == 10));
    let big = report(
        &d,
        &Filter {
            pid: None,
            min_bytes: 1 << 20,
        },
    );
    assert_eq!(big.sites.len(), 2);
    assert!(big.sites.iter().all(|s| s.kind == Kind::Heap));
    let none = report(
        &d,
        &Filter {
            pid: Some(3),
            min_bytes: 0,
        },
    );
    assert!(none
        .notes
        .iter()
        .any(|n| n == "no traced process has PID 3"));
}
