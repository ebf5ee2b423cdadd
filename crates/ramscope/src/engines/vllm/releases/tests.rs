use super::*;
use crate::engines::vllm::flags::FLAGS;

/// Every fact of a row as (name, value as text, citation); `None` facts are left out.
fn facts(r: &Release) -> Vec<(&'static str, String, &'static str)> {
    fn f<T: std::fmt::Debug>(
        name: &'static str,
        c: &Cited<T>,
    ) -> (&'static str, String, &'static str) {
        (name, format!("{:?}", c.value), c.at)
    }
    let mut out = vec![
        f("cuda_runner", &r.cuda_runner),
        f("executor_mp_counts_dp", &r.executor_mp_counts_dp),
        f("api_servers_default_dp", &r.api_servers_default_dp),
        f("headless_api_server_limit", &r.headless_api_server_limit),
        f("gpu_memory_utilization", &r.gpu_memory_utilization),
        f("batch_defaults", &r.batch_defaults),
        f("cuda_block_size", &r.cuda_block_size),
        f("cuda_mla_block_size", &r.cuda_mla_block_size),
        f("cpu_block_size", &r.cpu_block_size),
        f("cpu_mla_block_size", &r.cpu_mla_block_size),
        f("cudagraph_mode", &r.cudagraph_mode),
        f("capture_grid", &r.capture_grid),
        f(
            "capture_counts_draft_tokens",
            &r.capture_counts_draft_tokens,
        ),
        f("capture_cap_sm100", &r.capture_cap_sm100),
        f("capture_adds_max_tokens", &r.capture_adds_max_tokens),
        f("capture_adds_max_seqs", &r.capture_adds_max_seqs),
        f("capture_decode_grid", &r.capture_decode_grid),
        f("input_batch_is_token_ids", &r.input_batch_is_token_ids),
        f("input_batch_heap_counters", &r.input_batch_heap_counters),
        f(
            "input_batch_pinned_counters",
            &r.input_batch_pinned_counters,
        ),
        f("accepted_tokens_bytes", &r.accepted_tokens_bytes),
        f("lora_mapping_bytes", &r.lora_mapping_bytes),
        f("runner_token_flags", &r.runner_token_flags),
        f("sampled_per_seq", &r.sampled_per_seq),
        f("runner_step_buffers", &r.runner_step_buffers),
        f("block_table_padding", &r.block_table_padding),
        f("kv_block_object_bytes", &r.kv_block_object_bytes),
        f("mq_response_chunk_bytes", &r.mq_response_chunk_bytes),
        f("xgrammar_compilers", &r.xgrammar_compilers),
        f("load_strategies", &r.load_strategies),
        f("auto_prefetch", &r.auto_prefetch),
        f("weight_load_threads", &r.weight_load_threads),
        f("cpu_kv_auto", &r.cpu_kv_auto),
        f("flags_added", &r.flags_added),
    ];
    out.extend(r.v2_fallback.as_ref().map(|c| f("v2_fallback", c)));
    out.extend(r.kv_offload.as_ref().map(|c| f("kv_offload", c)));
    out.extend(
        r.valid_sampled_count_bytes
            .as_ref()
            .map(|c| f("valid_sampled_count_bytes", c)),
    );
    out.extend(
        r.v2_grammar_bitmask
            .as_ref()
            .map(|c| f("v2_grammar_bitmask", c)),
    );
    out.extend(
        r.kv_connector_sizing
            .as_ref()
            .map(|c| f("kv_connector_sizing", c)),
    );
    for (name, fact) in gained_facts(r) {
        out.extend(fact.as_ref().map(|c| f(name, c)));
    }
    out
}

/// Every [`Gained`] fact of a row, by name.
fn gained_facts(r: &Release) -> [(&'static str, Gained); 16] {
    [
        ("mm_ipc_cache_one_api_server", r.mm_ipc_cache_one_api_server),
        (
            "flashinfer_trtllm_decode_sm100",
            r.flashinfer_trtllm_decode_sm100,
        ),
        ("flashinfer_xqa_decode_sm90", r.flashinfer_xqa_decode_sm90),
        (
            "flashinfer_indices_on_device",
            r.flashinfer_indices_on_device,
        ),
        ("v2_staged_contents_pool", r.v2_staged_contents_pool),
        ("v2_ngram_token_ids_on_gpu", r.v2_ngram_token_ids_on_gpu),
        ("cpu_eager_skips_warmup", r.cpu_eager_skips_warmup),
        (
            "valid_sampled_count_spec_only",
            r.valid_sampled_count_spec_only,
        ),
        ("runner_is_padding", r.runner_is_padding),
        ("prefetch_weight_offload", r.prefetch_weight_offload),
        (
            "kv_offloading_backend_default",
            r.kv_offloading_backend_default,
        ),
        ("simple_kv_offload", r.simple_kv_offload),
        ("kv_offload_aligned_blocks", r.kv_offload_aligned_blocks),
        ("lmcache_separate_server", r.lmcache_separate_server),
        ("prompt_embeds_in_engine", r.prompt_embeds_in_engine),
        ("sleep_backs_up_runtime", r.sleep_backs_up_runtime),
    ]
}

/// `vllm/…/x.py:12`, `:12-20`, `:69,493-532`, then `@0.25.1`: the path, the release's minor.
fn parse_citation(at: &str) -> Option<(&str, u16)> {
    let (place, release) = at.split_once('@')?;
    let (path, lines) = place.rsplit_once(':')?;
    let ok_path = path.starts_with("vllm/")
        && path.ends_with(".py")
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_.".contains(c));
    let ok_lines = lines.split(',').all(|part| {
        let mut ends = part.splitn(2, '-');
        let first = ends.next().and_then(|a| a.parse::<u32>().ok());
        let last = ends.next().map(|b| b.parse::<u32>().ok());
        match (first, last) {
            (Some(a), None) => a > 0,
            (Some(a), Some(Some(b))) => a > 0 && a < b,
            _ => false,
        }
    });
    let mut parts = release.split('.');
    let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
    let ok_release = major == "0"
        && patch.parse::<u32>().is_ok()
        && parts.next().is_none()
        && minor.parse::<u16>().is_ok();
    (ok_path && ok_lines && ok_release).then(|| (path, minor.parse().unwrap_or(0)))
}

#[test]
fn one_row_per_release_in_order() {
    assert_eq!(RELEASES.len(), Version::ALL.len());
    for (row, v) in RELEASES.iter().zip(Version::ALL) {
        assert_eq!(row.version, v);
        assert_eq!(v.release().version, v);
    }
}

#[test]
fn every_citation_is_well_formed_and_read_at_or_before_its_row() {
    for r in &RELEASES {
        for (name, _, at) in facts(r) {
            let (_, minor) = parse_citation(at)
                .unwrap_or_else(|| panic!("{} {name}: bad citation {at:?}", r.version));
            assert!(
                (Version::OLDEST.minor()..=r.version.minor()).contains(&minor),
                "{} {name}: cites a later or unknown release: {at}",
                r.version
            );
        }
    }
    // The format itself: these must be refused.
    for bad in [
        "vllm/x.py@0.10.2",
        "vllm/x.py:0@0.10.2",
        "vllm/x.py:9-3@0.10.2",
        "x.py:3@0.10.2",
        "vllm/x.py:3@0.10",
        "vllm/x.py:3",
        "vllm/x y.py:3@0.10.2",
    ] {
        assert!(parse_citation(bad).is_none(), "{bad}");
    }
    assert_eq!(
        parse_citation("vllm/config/vllm.py:69,493-532@0.22.1"),
        Some(("vllm/config/vllm.py", 22))
    );
}

#[test]
fn a_changed_fact_cites_the_release_that_changed_it() {
    for pair in RELEASES.windows(2) {
        let (before, after) = (facts(&pair[0]), facts(&pair[1]));
        for (name, value, at) in &after {
            let old = before.iter().find(|(n, _, _)| n == name);
            if old.map(|(_, v, _)| v) != Some(value) {
                let minor = parse_citation(at).map(|(_, m)| m);
                assert_eq!(
                    minor,
                    Some(pair[1].version.minor()),
                    "{} {name} changed to {value} but cites {at}",
                    pair[1].version
                );
            }
        }
    }
}

#[test]
fn monotone_facts_never_go_back() {
    let flag_rank = |r: &Release| match r.cuda_runner.value {
        RunnerDefault::V1Only => 0,
        RunnerDefault::V1 => 1,
        RunnerDefault::V2For { .. } => 2,
        RunnerDefault::V2 => 3,
    };
    let offload_rank = |r: &Release| match r.kv_offload.map(|c| c.value) {
        None => 0,
        Some(KvOffload::ZeroCpuBlocks) => 1,
        Some(KvOffload::PinnedTensors) => 2,
        Some(KvOffload::SharedRegion) => 3,
    };
    for w in RELEASES.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let v = b.version;
        let once_true = [
            (
                "input_batch_is_token_ids",
                a.input_batch_is_token_ids.value,
                b.input_batch_is_token_ids.value,
            ),
            (
                "sampled_per_seq",
                a.sampled_per_seq.value,
                b.sampled_per_seq.value,
            ),
            (
                "runner_step_buffers",
                a.runner_step_buffers.value,
                b.runner_step_buffers.value,
            ),
            (
                "capture_counts_draft_tokens",
                a.capture_counts_draft_tokens.value,
                b.capture_counts_draft_tokens.value,
            ),
            (
                "capture_adds_max_tokens",
                a.capture_adds_max_tokens.value,
                b.capture_adds_max_tokens.value,
            ),
            (
                "capture_adds_max_seqs",
                a.capture_adds_max_seqs.value,
                b.capture_adds_max_seqs.value,
            ),
            (
                "capture_decode_grid",
                a.capture_decode_grid.value,
                b.capture_decode_grid.value,
            ),
            (
                "executor_mp_counts_dp",
                a.executor_mp_counts_dp.value,
                b.executor_mp_counts_dp.value,
            ),
            (
                "api_servers_default_dp",
                a.api_servers_default_dp.value,
                b.api_servers_default_dp.value,
            ),
            (
                "auto_prefetch",
                a.auto_prefetch.value,
                b.auto_prefetch.value,
            ),
            (
                "v2_fallback exists",
                a.v2_fallback.is_some(),
                b.v2_fallback.is_some(),
            ),
        ];
        for (name, was, is) in once_true {
            assert!(!was || is, "{v}: {name} went back to false");
        }
        // A gained behaviour stays, with the citation of the release that gained it.
        for ((name, was), (_, is)) in gained_facts(a).into_iter().zip(gained_facts(b)) {
            if let Some(was) = was {
                assert_eq!(is, Some(was), "{v}: {name} was lost or re-cited");
            }
        }
        let never_down = [
            (
                "input_batch_pinned_counters",
                a.input_batch_pinned_counters.value,
                b.input_batch_pinned_counters.value,
            ),
            (
                "lora_mapping_bytes",
                a.lora_mapping_bytes.value,
                b.lora_mapping_bytes.value,
            ),
            (
                "mq_response_chunk_bytes",
                a.mq_response_chunk_bytes.value,
                b.mq_response_chunk_bytes.value,
            ),
            (
                "capture_cap_sm100",
                a.capture_cap_sm100.value,
                b.capture_cap_sm100.value,
            ),
            (
                "xgrammar_compilers",
                a.xgrammar_compilers.value,
                b.xgrammar_compilers.value,
            ),
            ("runner default", flag_rank(a), flag_rank(b)),
            ("kv offload", offload_rank(a), offload_rank(b)),
        ];
        for (name, was, is) in never_down {
            assert!(was <= is, "{v}: {name} went down from {was} to {is}");
        }
        assert!(
            b.input_batch_heap_counters.value <= a.input_batch_heap_counters.value,
            "{v}: heap counters came back"
        );
        assert!(b.gpu_memory_utilization.value >= a.gpu_memory_utilization.value);
        // Strategies are only ever added.
        for s in a.load_strategies.value {
            assert!(b.load_strategies.value.contains(s), "{v} lost {s}");
        }
        // Slots came once; after that only fields were added (8 B each).
        if a.kv_block_object_bytes.value < 168 {
            assert!(b.kv_block_object_bytes.value >= a.kv_block_object_bytes.value);
        }
    }
}

#[test]
fn each_added_flag_is_known_and_added_once() {
    let mut seen = std::collections::BTreeSet::new();
    for r in &RELEASES {
        for flag in r.flags_added.value {
            assert!(
                seen.insert(*flag),
                "{flag} added twice (a row kept the list before it?)"
            );
            let known = FLAGS
                .iter()
                .find(|f| f.name == *flag)
                .unwrap_or_else(|| panic!("{flag} is not in the flag table"));
            if let Some(gone) = known.removed_in {
                assert!(
                    gone > r.version,
                    "{flag} removed in {gone} before it was added"
                );
            }
        }
    }
    assert_eq!(flag_added_in("--kv-offloading-size"), Some(Version::V0_12));
    assert_eq!(
        flag_added_in("--enable-shm-tensor-arena"),
        Some(Version::V0_32)
    );
    assert_eq!(flag_added_in("--max-model-len"), None);
}

/// A dense Qwen3, a MoE, a quantized Llama.
const QWEN3: (&str, bool, bool) = ("Qwen3ForCausalLM", false, false);
const MIXTRAL: (&str, bool, bool) = ("MixtralForCausalLM", true, false);
const QWEN2_MOE: (&str, bool, bool) = ("Qwen2MoeForCausalLM", true, false);
const LLAMA_FP8: (&str, bool, bool) = ("LlamaForCausalLM", false, true);

fn v2(v: Version, (arch, moe, quantized): (&str, bool, bool)) -> bool {
    v.release()
        .cuda_runner
        .value
        .prefers_v2(arch, moe, quantized)
}

#[test]
fn release_0_25_has_what_its_source_shows() {
    let r = Version::V0_25.release();
    // vllm/config/vllm.py:571-574@0.25.1: listed architectures, or any model that is not MoE.
    assert_eq!(r.cuda_runner.at, "vllm/config/vllm.py:68-74,571-574@0.25.1");
    assert!(v2(Version::V0_25, QWEN3) && v2(Version::V0_25, QWEN2_MOE));
    assert!(
        v2(Version::V0_25, LLAMA_FP8),
        "quantized dense models default to V2 from 0.24"
    );
    assert!(!v2(Version::V0_25, MIXTRAL));
    // vllm/config/vllm.py:2072-2078,2117@0.25.1: dspark joins, ngram and prompt embeds fall back.
    let fb = r.v2_fallback.map(|c| c.value).unwrap_or(V2Fallback {
        spec: SpecFallback::Only(&[]),
        prompt_embeds: false,
    });
    assert!(!fb.falls_back(Some("dspark"), false));
    assert!(fb.falls_back(Some("ngram"), false));
    assert!(fb.falls_back(None, true));
    assert!(!fb.falls_back(None, false));
    // Read in earlier releases and unchanged through 0.25.1.
    assert_eq!(r.gpu_memory_utilization.value, 0.92);
    assert_eq!(r.kv_block_object_bytes.value, 128);
    assert_eq!(r.block_table_padding.value, BlockTablePadding::FloorOf128);
    assert_eq!(
        (
            r.input_batch_heap_counters.value,
            r.input_batch_pinned_counters.value
        ),
        (0, 3)
    );
    assert_eq!(r.accepted_tokens_bytes.value, 4);
    assert_eq!(
        r.kv_offload.map(|c| c.value),
        Some(KvOffload::PinnedTensors)
    );
    assert!(r.api_servers_default_dp.value && r.executor_mp_counts_dp.value);
}

#[test]
fn the_v2_default_moved_release_by_release() {
    for v in [Version::V0_10, Version::V0_12, Version::V0_21] {
        assert!(!v2(v, QWEN3), "{v}");
    }
    assert!(!Version::V0_11.release().cuda_runner.value.has_v2());
    assert!(Version::V0_12.release().cuda_runner.value.has_v2());
    assert!(v2(Version::V0_22, QWEN3));
    assert!(!v2(Version::V0_22, ("LlamaForCausalLM", false, false)));
    assert!(v2(Version::V0_23, ("LlamaForCausalLM", false, false)));
    assert!(
        !v2(Version::V0_23, LLAMA_FP8),
        "0.22/0.23 leave quantized models on V1"
    );
    assert!(!v2(Version::V0_23, QWEN2_MOE));
    assert!(v2(Version::V0_24, QWEN2_MOE));
    assert!(!v2(Version::V0_24, ("GemmaForCausalLM", false, false)));
    assert!(v2(Version::V0_28, ("DeepseekV4ForCausalLM", true, false)));
    assert!(!v2(Version::V0_27, ("DeepseekV4ForCausalLM", true, false)));
    for v in [Version::V0_29, Version::V0_33] {
        assert!(v2(v, MIXTRAL), "{v}");
    }
    let falls = |v: Version, m: &str| {
        v.release()
            .v2_fallback
            .is_some_and(|c| c.value.falls_back(Some(m), false))
    };
    assert!(falls(Version::V0_29, "ngram") && !falls(Version::V0_32, "ngram"));
    assert!(falls(Version::V0_32, "medusa") && !falls(Version::V0_33, "medusa"));
    assert!(falls(Version::V0_33, "suffix"));
}

#[test]
fn block_table_rows_pad_as_each_release_does() {
    let pad = |v: Version, blocks, b| v.release().block_table_padding.value.pad(blocks, b);
    assert_eq!(pad(Version::V0_20, 321, 16), 321);
    assert_eq!(pad(Version::V0_21, 321, 16), 328);
    assert_eq!(pad(Version::V0_27, 321, 16), 328);
    // 96-token blocks: 128 // 96 = 1 in 0.21–0.26, 128 / gcd(128, 96) = 4 from 0.27.
    assert_eq!(pad(Version::V0_26, 5, 96), 5);
    assert_eq!(pad(Version::V0_27, 5, 96), 8);
    assert_eq!(pad(Version::V0_33, 5, 256), 5);
}

#[test]
fn batch_defaults_follow_the_gpu_class_of_each_release() {
    let gpu = |s: &str| Gpu::parse(s).unwrap_or_else(Gpu::default_gpu);
    let d = |v: Version, g: &str| v.release().batch_defaults.value.cuda(&gpu(g));
    assert_eq!(d(Version::V0_27, "b200"), (1024, 8192));
    assert_eq!(d(Version::V0_28, "b200"), (1024, 16384));
    assert_eq!(d(Version::V0_28, "h200"), (1024, 8192));
    assert_eq!(d(Version::V0_33, "a100"), (256, 2048));
    assert_eq!(d(Version::V0_10, "l4"), (256, 2048));
    let gb10 = Gpu {
        name: "GB10".into(),
        memory_bytes: 119 << 30,
    };
    let on = |v: Version| v.release().batch_defaults.value.cuda(&gb10);
    assert_eq!(
        (on(Version::V0_32), on(Version::V0_33)),
        ((1024, 8192), (256, 2048))
    );
}

#[test]
fn boundaries_read_from_the_sources() {
    let r = |v: Version| v.release();
    assert_eq!(r(Version::V0_19).gpu_memory_utilization.value, 0.9);
    assert_eq!(r(Version::V0_20).gpu_memory_utilization.value, 0.92);
    assert_eq!(r(Version::V0_17).kv_block_object_bytes.value, 168);
    assert_eq!(r(Version::V0_18).kv_block_object_bytes.value, 120);
    assert_eq!(r(Version::V0_30).kv_block_object_bytes.value, 136);
    assert_eq!(r(Version::V0_11).mq_response_chunk_bytes.value, 10 << 20);
    assert_eq!(r(Version::V0_12).mq_response_chunk_bytes.value, 24 << 20);
    assert_eq!(r(Version::V0_32).xgrammar_compilers.value, 1);
    assert_eq!(r(Version::V0_33).xgrammar_compilers.value, 2);
    assert!(!r(Version::V0_16).executor_mp_counts_dp.value);
    assert!(r(Version::V0_17).executor_mp_counts_dp.value);
    assert_eq!(r(Version::V0_14).headless_api_server_limit.value, 1);
    assert_eq!(r(Version::V0_15).headless_api_server_limit.value, 0);
    assert!(!r(Version::V0_17)
        .load_strategies
        .value
        .contains(&"prefetch"));
    assert!(r(Version::V0_18)
        .load_strategies
        .value
        .contains(&"prefetch"));
    assert!(!r(Version::V0_18).auto_prefetch.value && r(Version::V0_19).auto_prefetch.value);
    assert_eq!(r(Version::V0_11).kv_offload, None);
    assert_eq!(
        r(Version::V0_13).kv_offload.map(|c| c.value),
        Some(KvOffload::ZeroCpuBlocks)
    );
    assert_eq!(
        r(Version::V0_27).kv_offload.map(|c| c.value),
        Some(KvOffload::SharedRegion)
    );
    assert_eq!(r(Version::V0_27).cpu_mla_block_size.value, None);
    assert_eq!(r(Version::V0_28).cpu_mla_block_size.value, Some(16));
    assert_eq!(r(Version::V0_10).cudagraph_mode.value, "PIECEWISE");
    assert!(Version::ALL
        .iter()
        .all(|v| r(*v).weight_load_threads.value == 8));
}

#[test]
fn every_gained_behaviour_is_in_the_newest_release_and_cites_its_first() {
    let newest = &RELEASES[RELEASES.len() - 1];
    for (name, fact) in gained_facts(newest) {
        let (minor, at) = gained_in_by_name(name).unwrap_or_else(|| panic!("{name}: never gained"));
        assert_eq!(fact.map(|c| c.at), Some(at), "{name}");
        assert_eq!(
            parse_citation(at).map(|(_, m)| m),
            Some(minor),
            "{name}: {at}"
        );
        // Every row before the first one with it lacks it.
        for r in RELEASES.iter().filter(|r| r.version.minor() < minor) {
            let lacks = gained_facts(r)
                .iter()
                .any(|(n, f)| *n == name && f.is_none());
            assert!(lacks, "{} {name}", r.version);
        }
    }
}

/// [`gained_in`] for a fact named as in [`gained_facts`].
fn gained_in_by_name(name: &str) -> Option<(u16, &'static str)> {
    RELEASES.iter().find_map(|r| {
        gained_facts(r)
            .into_iter()
            .find(|(n, f)| *n == name && f.is_some())
            .and_then(|(_, f)| f.map(|c| (r.version.minor(), c.at)))
    })
}

#[test]
fn a_gained_behaviour_holds_from_its_first_release_on() {
    let sleep = |v: Version| v.release().sleep_backs_up_runtime.is_some();
    assert!(!sleep(Version::V0_31) && sleep(Version::V0_32) && sleep(Version::V0_33));
    assert!(Version::V0_10.release().prompt_embeds_in_engine.is_none());
    assert_eq!(
        gained_in(|r: &Release| r.sleep_backs_up_runtime),
        Some((
            32,
            "vllm/device_allocator/sleep_mode_backend.py:134-136@0.32.0"
        ))
    );
    assert_eq!(
        gained_in(|r: &Release| r.flashinfer_xqa_decode_sm90).map(|(m, _)| m),
        Some(25)
    );
}

#[test]
fn cite_picks_the_newest_row_at_or_before_the_release() {
    let rows = [(10, "a@0.10.2"), (20, "b@0.20.2"), (33, "c@0.33.0")];
    assert_eq!(cite(Version::V0_12, &rows), "a@0.10.2");
    assert_eq!(cite(Version::V0_32, &rows), "b@0.20.2");
    assert_eq!(cite(Version::V0_33, &rows), "c@0.33.0");
    // Before the first row: the first row.
    assert_eq!(cite(Version::V0_10, &rows[1..]), "b@0.20.2");
    assert_eq!(cite(Version::V0_10, &[]), "");
}

#[test]
fn small_runner_buffers_the_v2_bitmask_and_the_cpu_kv_default_move_with_their_sources() {
    // valid_sampled_token_count_cpu: int64 and always made from 0.12, only with draft tokens
    // from 0.14, int32 from 0.19.
    let bytes = |v: Version| v.release().valid_sampled_count_bytes.map(|c| c.value);
    assert_eq!(bytes(Version::V0_11), None);
    assert_eq!(
        (bytes(Version::V0_12), bytes(Version::V0_18)),
        (Some(8), Some(8))
    );
    assert_eq!(bytes(Version::V0_19), Some(4));
    assert!(Version::V0_13
        .release()
        .valid_sampled_count_spec_only
        .is_none());
    assert!(Version::V0_14
        .release()
        .valid_sampled_count_spec_only
        .is_some());
    // V2's grammar bitmask: one pinned buffer, a pool of two, then on the GPU.
    let bitmask = |v: Version| v.release().v2_grammar_bitmask.map(|c| c.value);
    assert_eq!(bitmask(Version::V0_11), None);
    assert_eq!(bitmask(Version::V0_13), Some(GrammarBitmask::PinnedBuffer));
    assert_eq!(bitmask(Version::V0_15), Some(GrammarBitmask::PinnedPool));
    assert_eq!(bitmask(Version::V0_16), Some(GrammarBitmask::Device));
    // The CPU KV cache without a size: 4 GiB, half a node's share, then what the worker's
    // RSS leaves of u × the node.
    let kv = |v: Version| v.release().cpu_kv_auto.value;
    assert_eq!(kv(Version::V0_12), CpuKvAuto::Fixed(4 << 30));
    assert_eq!(kv(Version::V0_19), CpuKvAuto::NodeShare(0.5));
    assert_eq!(kv(Version::V0_20), CpuKvAuto::FillsReservation);
    assert_eq!(kv(Version::V0_33), CpuKvAuto::FillsReservation);
    assert!(Version::V0_30.release().runner_is_padding.is_none());
    assert!(Version::V0_31.release().runner_is_padding.is_some());
}
