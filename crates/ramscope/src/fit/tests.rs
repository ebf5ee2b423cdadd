//! [`assess`] on synthetic estimates built from the footprint types.

use std::collections::BTreeMap;

use super::*;
use crate::footprint::{Device, Listing};
use crate::model::Model;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn c(id: &str, bytes: u64, category: Category) -> Component {
    Component::exact(id, bytes, category, "x".into(), "here", "1")
}

fn estimate(processes: Vec<ProcessEstimate>, page_cache: u64, shm_mapped: u64) -> Estimate {
    let listing = Listing {
        engine_version: "1".into(),
        device: Device::Cpu,
        gpu: None,
        args: BTreeMap::new(),
        processes,
        page_cache_bytes: page_cache,
        shm_mapped_bytes: shm_mapped,
        notes: Vec::new(),
    };
    Estimate::assemble("test", &Model::default_model(), listing).unwrap()
}

/// Two servers, each: heap 1 GiB (0.75–1.5 GiB), pinned 256 MiB, shm 64 MiB resident of a
/// 512 MiB segment, libraries 300 MiB; loading adds 4 GiB of mapped weights (file) and a
/// 2 GiB heap copy; a prompt cache grows to `cache` (capped by `cache_knob`). A helper
/// with 100 MiB of heap.
fn servers(cache_knob: &str, cache: u64) -> Estimate {
    let server = vec![
        c("heap", GIB, Category::Heap).range(768 * MIB, 1536 * MIB),
        c("pinned", 256 * MIB, Category::Pinned),
        c("shm", 64 * MIB, Category::Shm).mapped(512 * MIB),
        c("libraries", 300 * MIB, Category::CodeTorch),
        c("weights.mmap", 4 * GIB, Category::Weights).load_only(),
        c("weights.copy", 2 * GIB, Category::Heap).load_only(),
        c("prompt_cache", cache, Category::Heap).growth(cache_knob),
    ];
    let helper = vec![c("helper", 100 * MIB, Category::Heap)];
    estimate(
        vec![
            ProcessEstimate::new(Role::Worker, "server", 2, server),
            ProcessEstimate::new(Role::Helper, "helper", 1, helper),
        ],
        8 * GIB,
        0,
    )
}

fn input(e: Option<Estimate>, limit: Option<u64>) -> Input {
    Input {
        estimate: e,
        host: HostMemory {
            mem_total_bytes: Some(256 * GIB),
            limit_bytes: limit,
            shm_size_bytes: Some(64 * GIB),
            ..HostMemory::default()
        },
        sources: Sources::default(),
        cgroup: None,
        measured: None,
        refusal: None,
        headroom: Headroom::default(),
        notes: Vec::new(),
    }
}

fn verdicts(a: &Assessment) -> Vec<(Verdict, bool)> {
    a.findings.iter().map(|f| (f.verdict, f.certain)).collect()
}

#[test]
fn phases_split_by_kind_per_process_and_pod() {
    let a = assess(input(
        Some(servers("--cache-ram 1024", GIB)),
        Some(64 * GIB),
    ))
    .unwrap();
    let server = &a.processes[0];
    assert_eq!(server.count, 2);
    let each = &server.each;
    assert_eq!(
        each.steady.anonymous,
        Range::new(GIB, 768 * MIB, 1536 * MIB)
    );
    assert_eq!(each.steady.pinned.bytes, 256 * MIB);
    assert_eq!(each.steady.shared.bytes, 64 * MIB);
    assert_eq!(each.steady.file.bytes, 300 * MIB);
    assert_eq!(each.load_peak.file.bytes, 300 * MIB + 4 * GIB);
    assert_eq!(each.load_peak.anonymous.bytes, 3 * GIB);
    assert_eq!(each.growth_bound.anonymous.bytes, 2 * GIB);
    assert_eq!(server.all, each.times(2));
    // The pod: both servers and the helper.
    let pod = &a.pod.phases;
    assert_eq!(
        pod.steady.non_reclaimable().bytes,
        2 * (GIB + 320 * MIB) + 100 * MIB
    );
    assert_eq!(a.pod.page_cache_read_through_bytes, 8 * GIB);
    // No engine total: the shm component's mapped size, per process.
    assert_eq!(a.pod.shm_needed_bytes, 2 * 512 * MIB);
    assert_eq!(a.pod.shm_needed_from, "components");
    assert_eq!(a.growth.len(), 1);
    assert!(a.growth[0].capped);
    assert_eq!(a.growth[0].count, 2);
}

#[test]
fn verdicts_follow_the_limit() {
    let e = servers("--cache-ram 1024", GIB);
    let steady = 2 * (GIB + 320 * MIB) + 100 * MIB;
    let load = steady + 2 * 2 * GIB;
    let later = steady + 2 * GIB;
    let hot = 2 * 300 * MIB;
    let at = |limit: u64| assess(input(Some(e.clone()), Some(limit))).unwrap();

    let roomy = at(64 * GIB);
    assert_eq!(roomy.verdict, Verdict::Fits);
    assert_eq!(roomy.exit_code, verdict::EXIT_FITS);
    assert_eq!(roomy.figures.load_non_reclaimable.bytes, load);
    assert_eq!(roomy.figures.growth_non_reclaimable.bytes, later);
    assert_eq!(roomy.figures.hot_file.bytes, hot);

    // Below the load peak: OOM at load (certain), the summary says so.
    let tight = at(load - 1);
    assert_eq!(verdicts(&tight)[0], (Verdict::OomAtLoad, true));
    assert_eq!(tight.summary, "OOM at load");
    assert_eq!(tight.exit_code, verdict::EXIT_DOES_NOT_FIT);

    // Above the point value, inside the range (the heap may reach 1.5 GiB): may OOM.
    let inside = at(load + MIB);
    assert_eq!(verdicts(&inside), [(Verdict::OomAtLoad, false)]);
    assert_eq!(inside.summary, "may OOM at load");
    assert_eq!(inside.exit_code, verdict::EXIT_AT_RISK);
    let high = roomy.figures.load_non_reclaimable.high_bytes;
    assert_eq!(high, load + 2 * 512 * MIB);
    assert_eq!(verdicts(&at(high)), []);
}

#[test]
fn growth_past_the_limit_is_oom_later_and_uncapped_growth_is_named() {
    // A prompt cache larger than the load's heap copy; a limit above the load peak's high
    // end, below the growth bound.
    let e = servers("--cache-ram 4096", 4 * GIB);
    let roomy = assess(input(Some(e.clone()), Some(64 * GIB))).unwrap();
    let f = roomy.figures;
    let limit = f.load_non_reclaimable.high_bytes + 1;
    assert!(f.growth_non_reclaimable.bytes > limit);
    let a = assess(input(Some(e), Some(limit))).unwrap();
    assert_eq!(verdicts(&a), [(Verdict::OomLater, true)]);
    assert_eq!(a.summary, "OOM later");
    assert_eq!(a.exit_code, verdict::EXIT_DOES_NOT_FIT);
    assert!(a.kubernetes.request_equals_limit_safe);

    let open = servers("--cache-ram -1 (no limit)", GIB);
    let a = assess(input(Some(open), Some(64 * GIB))).unwrap();
    assert!(!a.growth[0].capped);
    assert_eq!(verdicts(&a), [(Verdict::OomLater, false)]);
    assert!(a.findings[0]
        .detail
        .contains("prompt_cache (--cache-ram -1 (no limit))"));
    assert!(!a.kubernetes.request_equals_limit_safe);
    assert!(a.kubernetes.notes[0].contains("request = limit cannot be made safe"));
}

#[test]
fn kubernetes_values_trace_their_arithmetic() {
    let e = servers("--cache-ram 1024", GIB);
    let a = assess(input(Some(e), Some(64 * GIB))).unwrap();
    let f = a.figures;
    let k = &a.kubernetes;
    let mib_up = |b: u64| b.div_ceil(MIB) * MIB;
    assert_eq!(
        k.requests_memory.bytes,
        mib_up(f.steady_non_reclaimable.bytes + f.hot_file.bytes)
    );
    let basis = f
        .load_non_reclaimable
        .bytes
        .max(f.growth_non_reclaimable.bytes + f.growth_hot_file.bytes);
    // Raised to the range's high end when that is higher, so the check passes at it.
    let high = f
        .load_non_reclaimable
        .high_bytes
        .max(f.growth_non_reclaimable.high_bytes + f.growth_hot_file.high_bytes);
    assert_eq!(
        k.limits_memory.bytes,
        mib_up(basis + basis.div_ceil(10)).max(mib_up(high))
    );
    let again = assess(input(
        Some(servers("--cache-ram 1024", GIB)),
        Some(k.limits_memory.bytes),
    ))
    .unwrap();
    assert!(again.findings.is_empty(), "{:?}", again.findings);
    assert!(k.limits_memory.bytes >= k.requests_memory.bytes);
    assert_eq!(
        quantity::parse_quantity(&k.limits_memory.quantity),
        Ok(k.limits_memory.bytes)
    );
    assert!(
        k.requests_memory.trace.contains("heap 2.00 GiB"),
        "{}",
        k.requests_memory.trace
    );
    assert!(k.requests_memory.trace.contains("libraries 600 MiB"));
    assert!(
        k.limits_memory.trace.contains("prompt_cache 2.00 GiB"),
        "{}",
        k.limits_memory.trace
    );
    assert!(k.limits_memory.trace.contains("headroom 10%"));
    let shm = k.shm_size_limit.as_ref().unwrap();
    assert_eq!(shm.bytes, 1024 * MIB);
    assert!(shm.trace.contains("resident 128 MiB"), "{}", shm.trace);
    assert!(k.memlock.is_none());
    assert!(k.notes[0].contains("set both to the limit"));
}

#[test]
fn locked_memory_is_pinned_and_needs_memlock() {
    let p = ProcessEstimate::new(
        Role::ApiServer,
        "llama-server",
        1,
        vec![
            c("weights", 3 * GIB, Category::Weights).locked(),
            c("kv", GIB, Category::Heap),
        ],
    );
    let a = assess(input(Some(estimate(vec![p], 0, 0)), Some(16 * GIB))).unwrap();
    assert_eq!(
        a.pod.phases.steady.pinned.bytes,
        3 * GIB,
        "locked weights are not reclaimable"
    );
    assert_eq!(a.pod.phases.steady.file.bytes, 0);
    let memlock = a.kubernetes.memlock.as_ref().unwrap();
    assert_eq!(memlock.bytes, 3 * GIB);
    assert!(memlock.trace.contains("weights 3.00 GiB"));
    // Three locked GiB in a 3.5 GiB pod: the mlock alone fits, the heap does not.
    let a = assess(input(
        Some(estimate(
            vec![ProcessEstimate::new(
                Role::ApiServer,
                "llama-server",
                1,
                vec![
                    c("weights", 3 * GIB, Category::Weights).locked(),
                    c("kv", GIB, Category::Heap),
                ],
            )],
            0,
            0,
        )),
        Some(3 * GIB + 512 * MIB),
    ))
    .unwrap();
    assert_eq!(verdicts(&a), [(Verdict::OomAtLoad, true)]);
}

#[test]
fn mapped_weights_read_every_token_thrash_rather_than_oom() {
    // A CPU server with 12 GiB of mmapped weights and 2 GiB of heap in an 8 GiB pod.
    let p = ProcessEstimate::new(
        Role::ApiServer,
        "llama-server",
        1,
        vec![
            c("weights.mmap", 12 * GIB, Category::Weights),
            c("kv", 2 * GIB, Category::Heap),
        ],
    );
    let a = assess(input(Some(estimate(vec![p], 12 * GIB, 0)), Some(8 * GIB))).unwrap();
    assert_eq!(verdicts(&a), [(Verdict::PageCacheThrash, true)]);
    assert_eq!(a.summary, "fits, but page cache will thrash");
    assert_eq!(a.exit_code, verdict::EXIT_AT_RISK);
    assert_eq!(a.kubernetes.requests_memory.bytes, 14 * GIB);
}

#[test]
fn shm_refusal_and_node_memory() {
    let e = estimate(
        vec![ProcessEstimate::new(
            Role::Worker,
            "w",
            1,
            vec![c("heap", GIB, Category::Heap)],
        )],
        0,
        300 * MIB,
    );
    let mut i = input(Some(e.clone()), None);
    i.host.shm_size_bytes = Some(64 * MIB);
    i.host.mem_total_bytes = Some(GIB / 2);
    i.refusal = Some(Refusal {
        message: "model requires more system memory (1.0 GiB) than is available (0.5 GiB)".into(),
        arithmetic: "1.0 GiB > 0.5 GiB".into(),
        source: "llm/server.go:1@v0.1".into(),
    });
    let a = assess(i).unwrap();
    assert_eq!(
        verdicts(&a),
        [
            (Verdict::EngineRefuses, true),
            (Verdict::OomAtLoad, true),
            (Verdict::ShmTooSmall, true)
        ]
    );
    assert_eq!(a.pod.shm_needed_from, "engine");
    let b = a.bound.as_ref().unwrap();
    assert!(!b.is_limit && b.bytes == GIB / 2);
    assert!(a.findings[1].detail.contains("the node's memory"));
    assert!(a.notes.iter().any(|n| n.contains("no memory limit")));
    // A limit above the node's memory: the node bounds it.
    let mut i = input(Some(e), Some(64 * GIB));
    i.host.mem_total_bytes = Some(GIB / 2);
    let a = assess(i).unwrap();
    assert!(!a.bound.unwrap().is_limit);
}

#[test]
fn a_measurement_above_the_estimate_wins_and_stands_alone() {
    let e = estimate(
        vec![ProcessEstimate::new(
            Role::Worker,
            "w",
            1,
            vec![c("heap", GIB, Category::Heap)],
        )],
        0,
        0,
    );
    let mut split = Split::default();
    split.add(Kind::Anonymous, Range::exact(3 * GIB));
    split.add(Kind::File, Range::exact(100 * MIB));
    let measured = Measured {
        taken_at: "now".into(),
        processes: Vec::new(),
        split,
    };
    let mut i = input(Some(e), Some(2 * GIB));
    i.measured = Some(measured.clone());
    let a = assess(i).unwrap();
    assert!(a.figures.from_measurement);
    assert_eq!(a.figures.steady_non_reclaimable.bytes, 3 * GIB);
    assert_eq!(a.figures.hot_file.bytes, 100 * MIB);
    assert_eq!(verdicts(&a), [(Verdict::OomAtLoad, true)]);
    assert!(a
        .notes
        .iter()
        .any(|n| n.contains("above the estimated steady state")));

    // No estimate at all: the measurement is checked as it is.
    let mut i = input(None, Some(4 * GIB));
    i.measured = Some(measured);
    let a = assess(i).unwrap();
    assert!(a.estimate.is_none() && a.processes.is_empty());
    assert_eq!(a.verdict, Verdict::Fits);
    assert_eq!(a.kubernetes.requests_memory.bytes, 3 * GIB + 100 * MIB);
}

#[test]
fn too_large_sums_are_errors() {
    // Each process fits in 64 bits; the growth bound over the pod does not.
    let p = ProcessEstimate::new(
        Role::Worker,
        "w",
        1,
        vec![
            c("a", u64::MAX / 2, Category::Heap),
            c("b", u64::MAX / 2, Category::Heap).growth("--x 1"),
        ],
    );
    let e = estimate(vec![p], 0, 0);
    let err = assess(input(Some(e), Some(GIB))).unwrap_err();
    assert!(err.to_string().contains("larger than 16 EiB"), "{err}");
}

#[test]
fn json_has_the_schema_and_stable_names() {
    let a = assess(input(Some(servers("--cache-ram 1024", GIB)), Some(GIB))).unwrap();
    let v = serde_json::to_value(&a).unwrap();
    assert_eq!(v["schema"], SCHEMA);
    assert_eq!(v["verdict"], "oom-at-load");
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["findings"][0]["verdict"], "oom-at-load");
    assert!(v["pod"]["phases"]["load_peak"]["non_reclaimable"]["bytes"].is_u64());
    assert!(v["kubernetes"]["limits_memory"]["quantity"].is_string());
    assert_eq!(v["growth"][0]["kind"], "anonymous");
}
