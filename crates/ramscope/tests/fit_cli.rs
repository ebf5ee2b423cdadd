//! `ramscope fit` as a user runs it: verdicts derived by hand from `ramscope estimate --json`
//! of the same command line, the JSON contract against docs/fit.md, the YAML snippet, one-line
//! errors with exit status 2. Real processes in their cgroups: tests/fit_container.rs.

mod common;

use std::path::Path;

use common::{clean_ramscope as ramscope, json_out as json, u, MIB};

/// A low/point/high triple.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Triple {
    low: u64,
    point: u64,
    high: u64,
}

impl Triple {
    fn add(&mut self, c: &serde_json::Value, times: u64) {
        self.low += u(&c["low_bytes"]) * times;
        self.point += u(&c["bytes"]) * times;
        self.high += u(&c["high_bytes"]) * times;
    }

    fn plus(self, o: Triple) -> Triple {
        Triple {
            low: self.low + o.low,
            point: self.point + o.point,
            high: self.high + o.high,
        }
    }

    fn of(v: &serde_json::Value) -> Triple {
        Triple {
            low: u(&v["low_bytes"]),
            point: u(&v["bytes"]),
            high: u(&v["high_bytes"]),
        }
    }
}

/// The pod's sums by phase, from an estimate's JSON, by the rules of docs/fit.md: file-backed
/// categories are reclaimable, pinned or locked components are not, nothing else is.
#[derive(Debug, Default)]
struct ByHand {
    steady_nr: Triple,
    steady_file: Triple,
    load_nr: Triple,
    growth_nr: Triple,
    growth_file: Triple,
    grows: bool,
}

fn by_hand(estimate: &serde_json::Value) -> ByHand {
    const FILE_BACKED: [&str; 6] = [
        "weights",
        "file.other",
        "code.cuda",
        "code.torch",
        "code.python",
        "code.other",
    ];
    let mut h = ByHand::default();
    let (mut load_extra, mut growth_extra) = (Triple::default(), Triple::default());
    for p in estimate["processes"].as_array().unwrap() {
        let count = u(&p["count"]);
        for c in p["components"].as_array().unwrap() {
            let category = c["category"].as_str().unwrap();
            let held = c["pinned"] == true || c["locked"] == true;
            let file = FILE_BACKED.contains(&category) && !held;
            match (c["phase"].as_str().unwrap(), file) {
                ("steady", false) => h.steady_nr.add(c, count),
                ("steady", true) => h.steady_file.add(c, count),
                ("load", false) => load_extra.add(c, count),
                ("load", true) => {}
                ("growth", false) => {
                    h.grows = true;
                    growth_extra.add(c, count)
                }
                ("growth", true) => {
                    h.grows = true;
                    h.growth_file.add(c, count)
                }
                (phase, _) => panic!("unknown phase {phase}"),
            }
        }
    }
    h.load_nr = h.steady_nr.plus(load_extra);
    h.growth_nr = h.steady_nr.plus(growth_extra);
    h.growth_file = h.steady_file.plus(h.growth_file);
    h
}

/// The verdicts docs/fit.md says hold for these sums against `bound` (no engine refusal,
/// capped growth), as (verdict, certain), in the documented order.
fn expected(h: &ByHand, bound: u64, shm: Option<(u64, u64, u64)>) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let past = |t: Triple| {
        if t.point > bound {
            Some(true)
        } else if t.high > bound {
            Some(false)
        } else {
            None
        }
    };
    if let Some(c) = past(h.load_nr) {
        out.push(("oom-at-load", c));
    }
    if let Some((needed, largest, size)) = shm {
        if needed > size {
            out.push(("shm-too-small", largest == 0 || largest > size));
        }
    }
    let later = past(h.growth_nr).filter(|_| h.grows);
    if let Some(c) = later {
        out.push(("oom-later", c));
    }
    if later != Some(true) && h.growth_nr.point <= bound && h.growth_file.high > 0 {
        if let Some(c) = past(h.growth_nr.plus(h.growth_file)) {
            out.push(("page-cache-thrash", c));
        }
    }
    let rank = |v: &str| {
        [
            "engine-refuses",
            "oom-at-load",
            "shm-too-small",
            "oom-later",
            "page-cache-thrash",
        ]
        .iter()
        .position(|x| *x == v)
        .unwrap()
    };
    out.sort_by_key(|(v, c)| (!c, rank(v)));
    out.into_iter().map(|(v, c)| (v.to_string(), c)).collect()
}

fn findings(fit: &serde_json::Value) -> Vec<(String, bool)> {
    fit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["verdict"].as_str().unwrap().to_string(),
                f["certain"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn mib_up(b: u64) -> u64 {
    b.div_ceil(MIB) * MIB
}

/// Runs `fit` and `estimate` on one command line and checks the verdict, the figures and the
/// Kubernetes values against what the estimate gives by hand.
fn check_against_estimate(
    fit_flags: &[&str],
    estimate_flags: &[&str],
    line: &[&str],
) -> serde_json::Value {
    let home = tempfile::tempdir().unwrap();
    let mut args = vec!["estimate", "--json"];
    args.extend(estimate_flags);
    args.push("--");
    args.extend(line);
    let out = ramscope(&args, home.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let estimate = json(&out);

    let mut args = vec!["fit", "--json"];
    args.extend(fit_flags);
    args.extend(estimate_flags);
    args.push("--");
    args.extend(line);
    let out = ramscope(&args, home.path());
    let fit = json(&out);
    assert_eq!(
        out.status.code(),
        fit["exit_code"].as_i64().map(|c| c as i32)
    );

    let h = by_hand(&estimate);
    let f = &fit["figures"];
    assert_eq!(Triple::of(&f["load_non_reclaimable"]), h.load_nr);
    assert_eq!(Triple::of(&f["steady_non_reclaimable"]), h.steady_nr);
    assert_eq!(Triple::of(&f["hot_file"]), h.steady_file);
    assert_eq!(Triple::of(&f["growth_non_reclaimable"]), h.growth_nr);

    // The bound: the limit given, or the node's memory where that is smaller.
    let limit = u(&fit["host"]["limit_bytes"]);
    let bound = match fit["host"]["mem_total_bytes"].as_u64() {
        Some(node) => limit.min(node),
        None => limit,
    };
    assert_eq!(u(&fit["bound"]["bytes"]), bound);
    // The largest single shm component: segments are created one at a time.
    let largest = estimate["processes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["components"].as_array().unwrap())
        .filter(|c| c["category"] == "shm")
        .map(|c| c["mapped_bytes"].as_u64().unwrap_or_else(|| u(&c["bytes"])))
        .max()
        .unwrap_or(0);
    let shm = fit["host"]["shm_size_bytes"]
        .as_u64()
        .map(|size| (u(&estimate["total"]["shm_mapped_bytes"]), largest, size));
    let want = expected(&h, bound, shm);
    assert_eq!(findings(&fit), want, "{:#}", fit["findings"]);
    let exit = match want.first() {
        None => 0,
        Some(_) if want.iter().any(|(v, c)| *c && v != "page-cache-thrash") => 3,
        Some(_) => 4,
    };
    assert_eq!(out.status.code(), Some(exit));
    let verdict = want.first().map_or("fits", |(v, _)| v.as_str());
    assert_eq!(fit["verdict"], verdict);

    // requests ≥ steady non-reclaimable + hot files; limits = max(load, growth) + 10%,
    let k = &fit["kubernetes"];
    let request = mib_up(h.steady_nr.point + h.steady_file.point);
    assert_eq!(u(&k["requests_memory"]["bytes"]), request);
    let basis = h.load_nr.point.max(h.growth_nr.point + h.growth_file.point);
    // … raised to the range's high end, where the check would otherwise say "may".
    let high = h.load_nr.high.max(h.growth_nr.high + h.growth_file.high);
    let limit = mib_up(basis + basis.div_ceil(10))
        .max(request)
        .max(mib_up(high));
    assert_eq!(u(&k["limits_memory"]["bytes"]), limit);
    fit
}

#[test]
fn a_cuda_server_in_2_gib_is_checked_by_the_estimates_own_numbers() {
    let fit = check_against_estimate(
        &["--memory-limit", "2Gi", "--node-memory", "1Ti"],
        &[],
        &["vllm", "serve", "Qwen/Qwen3-8B", "--max-model-len", "5120"],
    );
    // By hand from the estimate: ~2.8 GiB of heap and pinned buffers do not fit in 2 GiB.
    assert_eq!(fit["verdict"], "oom-at-load");
    assert_eq!(fit["estimate"]["engine"], "vllm");
    assert_eq!(fit["sources"]["limit"], "--memory-limit");
    assert_eq!(fit["sources"]["node_memory"], "--node-memory");
}

#[test]
fn a_cpu_server_with_a_small_dev_shm() {
    let fit = check_against_estimate(
        &["--memory-limit", "8Gi", "--shm-size", "64Mi"],
        &["--device", "cpu", "--env", "VLLM_CPU_KVCACHE_SPACE=4"],
        &[
            "vllm",
            "serve",
            "Qwen/Qwen3-0.6B",
            "--max-model-len",
            "5120",
        ],
    );
    assert_eq!(fit["estimate"]["device"], "cpu");
    // The estimate maps /dev/shm message queues far larger than 64 MiB.
    assert!(findings(&fit).contains(&("shm-too-small".into(), true)));
    let shm = &fit["kubernetes"]["shm_size_limit"];
    assert!(u(&shm["bytes"]) >= u(&fit["pod"]["shm_needed_bytes"]));
    // The same line with room everywhere fits.
    let fit = check_against_estimate(
        &[
            "--memory-limit",
            "64Gi",
            "--node-memory",
            "1Ti",
            "--shm-size",
            "1Gi",
        ],
        &["--device", "cpu", "--env", "VLLM_CPU_KVCACHE_SPACE=4"],
        &[
            "vllm",
            "serve",
            "Qwen/Qwen3-0.6B",
            "--max-model-len",
            "5120",
        ],
    );
    assert_eq!(fit["verdict"], "fits");
    assert_eq!(fit["exit_code"], 0);
}

#[test]
fn the_limit_inside_the_range_may_oom() {
    // A limit between the load peak's point value and its high end.
    let home = tempfile::tempdir().unwrap();
    let line = [
        "--",
        "vllm",
        "serve",
        "Qwen/Qwen3-8B",
        "--max-model-len",
        "5120",
    ];
    let mut args = vec!["estimate", "--json"];
    args.extend(line);
    let h = by_hand(&json(&ramscope(&args, home.path())));
    assert!(h.load_nr.high > h.load_nr.point + 2 * MIB);
    let limit = (h.load_nr.point + h.load_nr.high) / 2;
    let limit = limit.to_string();
    let mut args = vec![
        "fit",
        "--json",
        "--node-memory",
        "1Ti",
        "--memory-limit",
        &limit,
    ];
    args.extend(line);
    let out = ramscope(&args, home.path());
    let fit = json(&out);
    assert_eq!(findings(&fit)[0], ("oom-at-load".to_string(), false));
    assert_eq!(fit["summary"], "may OOM at load");
    assert_eq!(out.status.code(), Some(4));
}

/// Every top-level field, and every field of the nested objects docs/fit.md names, is there
/// with its type, and documented.
#[test]
fn json_fields_are_documented_and_typed() {
    let home = tempfile::tempdir().unwrap();
    let out = ramscope(
        &[
            "fit",
            "--json",
            "--memory-limit",
            "16Gi",
            "--shm-size",
            "64Mi",
            "--",
            "vllm",
            "serve",
            "Qwen/Qwen3-8B",
            "--max-model-len",
            "5120",
            "-tp",
            "2",
        ],
        home.path(),
    );
    let fit = json(&out);
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/fit.md"))
            .unwrap();
    assert_eq!(fit["schema"], "ramscope.fit/1");
    for (key, _) in fit.as_object().unwrap() {
        assert!(
            doc.contains(&format!("| `{key}")),
            "docs/fit.md does not document `{key}`"
        );
    }
    for (object, fields) in [
        (
            "host",
            &[
                "mem_total_bytes",
                "limit_bytes",
                "usage_bytes",
                "usage_file_bytes",
                "shm_size_bytes",
            ][..],
        ),
        (
            "pod",
            &[
                "phases",
                "page_cache_read_through_bytes",
                "shm_needed_bytes",
                "shm_needed_from",
                "locked_bytes",
            ],
        ),
        (
            "figures",
            &[
                "load_non_reclaimable",
                "steady_non_reclaimable",
                "hot_file",
                "growth_non_reclaimable",
                "growth_hot_file",
                "from_measurement",
            ],
        ),
        (
            "kubernetes",
            &[
                "requests_memory",
                "limits_memory",
                "shm_size_limit",
                "memlock",
                "request_equals_limit_safe",
                "notes",
                "yaml",
            ],
        ),
        ("bound", &["bytes", "what", "is_limit"]),
        (
            "estimate",
            &[
                "engine",
                "engine_version",
                "version_assumed",
                "device",
                "model",
                "weights_bytes",
            ],
        ),
    ] {
        let o = fit[object]
            .as_object()
            .unwrap_or_else(|| panic!("{object}"));
        for f in fields {
            assert!(o.contains_key(*f), "{object}.{f}");
            assert!(doc.contains(&format!("`{f}`")), "docs/fit.md: {object}.{f}");
        }
        for key in o.keys() {
            assert!(
                doc.contains(&format!("`{key}`")),
                "docs/fit.md does not name {object}.{key}"
            );
        }
    }
    for phase in ["load_peak", "steady", "growth_bound"] {
        for kind in [
            "anonymous",
            "pinned",
            "shared",
            "file",
            "non_reclaimable",
            "total",
        ] {
            let r = &fit["pod"]["phases"][phase][kind];
            let t = Triple::of(r);
            assert!(t.low <= t.point && t.point <= t.high, "{phase}.{kind}: {r}");
        }
        let s = &fit["pod"]["phases"][phase];
        let sum: u64 = ["anonymous", "pinned", "shared"]
            .iter()
            .map(|k| u(&s[k]["bytes"]))
            .sum();
        assert_eq!(u(&s["non_reclaimable"]["bytes"]), sum);
    }
    // Two workers: each process's figures times its count.
    for p in fit["processes"].as_array().unwrap() {
        let count = u(&p["count"]);
        let each = u(&p["each"]["steady"]["total"]["bytes"]);
        assert_eq!(u(&p["all"]["steady"]["total"]["bytes"]), each * count);
    }
    assert!(fit["processes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["count"] == 2));
    for f in fit["findings"].as_array().unwrap() {
        for key in ["verdict", "certain", "summary", "detail"] {
            assert!(!f[key].is_null(), "finding.{key}");
        }
    }
    for v in ["requests_memory", "limits_memory"] {
        let q = &fit["kubernetes"][v];
        assert!(q["quantity"].as_str().unwrap().ends_with("i"), "{q}");
        assert!(!q["trace"].as_str().unwrap().is_empty());
    }
}

#[test]
fn the_yaml_snippet_parses_and_says_the_same() {
    let home = tempfile::tempdir().unwrap();
    let out = ramscope(
        &[
            "fit",
            "--json",
            "--memory-limit",
            "32Gi",
            "--shm-size",
            "64Mi",
            "--device",
            "cpu",
            "--env",
            "VLLM_CPU_KVCACHE_SPACE=4",
            "--",
            "vllm",
            "serve",
            "Qwen/Qwen3-0.6B",
        ],
        home.path(),
    );
    let fit = json(&out);
    let text = fit["kubernetes"]["yaml"].as_str().unwrap();
    let y: serde_json::Value =
        serde_norway::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let resources = &y["containers"][0]["resources"];
    let k = &fit["kubernetes"];
    assert_eq!(
        resources["requests"]["memory"],
        k["requests_memory"]["quantity"]
    );
    assert_eq!(
        resources["limits"]["memory"],
        k["limits_memory"]["quantity"]
    );
    let dshm = &y["volumes"][0];
    assert_eq!(dshm["emptyDir"]["medium"], "Memory");
    assert_eq!(
        dshm["emptyDir"]["sizeLimit"],
        k["shm_size_limit"]["quantity"]
    );
    assert_eq!(
        y["containers"][0]["volumeMounts"][0]["mountPath"],
        "/dev/shm"
    );
    // Every number is followed by its arithmetic.
    for line in text
        .lines()
        .filter(|l| l.contains("memory:") || l.contains("sizeLimit:"))
    {
        assert!(line.contains("  # "), "{line}");
    }
    // The text report prints the same snippet, unwrapped.
    let mut args = vec![
        "fit",
        "--memory-limit",
        "32Gi",
        "--shm-size",
        "64Mi",
        "--device",
        "cpu",
    ];
    args.extend([
        "--env",
        "VLLM_CPU_KVCACHE_SPACE=4",
        "--",
        "vllm",
        "serve",
        "Qwen/Qwen3-0.6B",
    ]);
    let out = ramscope(&args, home.path());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.ends_with(text), "{report}");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let line = ["--", "vllm", "serve", "Qwen/Qwen3-8B"];
    for (flags, says) in [
        (&["--memory-limit", "5Zi"][..], "unknown suffix"),
        (&["--memory-limit", "-1"], "negative"),
        (
            &["--memory-limit", "99999999999999999999Gi"],
            "larger than 16 EiB",
        ),
        (&["--memory-limit", "0"], "zero"),
        (&["--shm-size", "abc"], "not a memory size"),
        (&["--node-memory", "64m"], "milli"),
        (&["--headroom", "5000%"], "headroom"),
        (&["--no-such-flag"], "unexpected argument"),
        (&["4294967295"], "no process with PID 4294967295"),
        (
            &[
                "--memory-limit",
                "2Gi",
                "--",
                "vllm",
                "serve",
                "Qwen/Qwen3-8B",
                "--no-such-vllm-flag",
            ],
            "--no-such-vllm-flag",
        ),
    ] {
        let mut args = vec!["fit"];
        args.extend(flags);
        if !flags.contains(&"--") {
            args.extend(line);
        }
        let out = ramscope(&args, home.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("ramscope: ") && err.contains(says),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // Neither a PID nor a command line.
    let out = ramscope(&["fit", "--memory-limit", "1Gi"], home.path());
    assert_eq!(out.status.code(), Some(2));
}
