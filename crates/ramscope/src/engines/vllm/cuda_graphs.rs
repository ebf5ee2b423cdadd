//! The CUDA graph batch sizes vLLM captures at start-up (`_set_cudagraph_sizes`), per
//! release (the `capture_*` facts of [`super::releases`]): each size is a graph whose
//! host-side nodes stay in the process, and FlashInfer keeps a decode wrapper per size where
//! it cannot decode through TRTLLM/XQA.

use super::args::VllmArgs;
use super::components::{n, Ctx, KIB};
use super::defaults::ResolveError;
use super::limits::MAX_CAPTURE_SIZES;
use super::releases::CaptureGrid;
use super::Version;
use crate::attribute::Category;
use crate::footprint::Component;
use crate::units::Checked;

/// The compute capability family (`90` for Hopper, `100` for data-centre Blackwell) of a GPU
/// `--gpu` names; `None` for a GPU given only by its memory size.
pub(super) fn compute_family(gpu_name: &str) -> Option<u32> {
    let n = gpu_name.to_ascii_uppercase();
    let starts = |p: &[&str]| p.iter().any(|p| n.starts_with(p));
    if starts(&["B200", "GB200", "B300", "GB300"]) {
        Some(100)
    } else if starts(&["H100", "H800", "H200", "GH200", "H20"]) {
        Some(90)
    } else if starts(&["L40", "L4-", "L4", "RTX-4090"]) {
        Some(89)
    } else if starts(&["A10G", "A10-", "A6000", "RTX-A6000"]) {
        Some(86)
    } else if starts(&["A100"]) {
        Some(80)
    } else if starts(&["T4"]) {
        Some(75)
    } else {
        None
    }
}

/// The batch sizes vLLM captures. At most [`MAX_CAPTURE_SIZES`]: the list is counted before
/// it is built, so `--max-cudagraph-capture-size 1e12` is refused rather than allocated.
///
/// `r`, `t`, `spec`: max_num_seqs, max_num_batched_tokens, speculative tokens per step;
/// `sm100`: a data-centre Blackwell GPU (`is_device_capability_family(100)`).
pub(super) fn capture_sizes(
    version: Version,
    args: &VllmArgs,
    r: u64,
    t: u64,
    spec: u64,
    sm100: bool,
) -> Result<Vec<u64>, ResolveError> {
    if let Some(given) = &args.cudagraph_capture_sizes {
        // De-duplicated, sorted and cut at max_num_batched_tokens in every release.
        let mut sizes: Vec<u64> = given.iter().copied().filter(|s| *s <= t).collect();
        sizes.sort_unstable();
        sizes.dedup();
        return Ok(sizes);
    }
    let rel = version.release();
    let query_len = if rel.capture_counts_draft_tokens.value {
        Checked::new(1) + spec
    } else {
        Checked::new(1)
    };
    let platform_max = if sm100 {
        rel.capture_cap_sm100.value
    } else {
        512
    };
    let mut decode_sizes: Vec<u64> = Vec::new();
    let max = match args.max_cudagraph_capture_size {
        Some(m) => m,
        None => {
            let max = (Checked::new(2) * r * query_len).min(platform_max).raw();
            let q = query_len.raw();
            if q > 1 && rel.capture_decode_grid.value {
                // Whole decode batches: q tokens for each of a grid of request counts.
                decode_sizes = request_counts(r.min(platform_max))
                    .into_iter()
                    .filter_map(|n| n.checked_mul(q))
                    .filter(|s| *s <= max)
                    .collect();
            } else if q == 1 && r <= max && rel.capture_adds_max_seqs.value {
                decode_sizes = vec![r];
            }
            max
        }
    }
    .min(t);
    let stepped_by_16 = rel.capture_grid.value == CaptureGrid::Every8Then16;
    let count = if stepped_by_16 {
        max.min(255) / 8 + max.saturating_sub(240) / 16
    } else {
        max / 8
    };
    if count > MAX_CAPTURE_SIZES {
        return Err(ResolveError::Invalid(format!(
            "--max-cudagraph-capture-size {max} would capture about {count} CUDA graphs at start-up (every 8 or 16 tokens); ramscope models at most {MAX_CAPTURE_SIZES}: give --cudagraph-capture-sizes or a smaller maximum"
        )));
    }
    let mut sizes: Vec<u64> = vec![1, 2, 4];
    if stepped_by_16 {
        sizes.extend((8..256.min(max.saturating_add(1))).step_by(8));
        if max >= 256 {
            sizes.extend((256..=max).step_by(16));
        }
    } else {
        sizes.extend((8..=max).step_by(8));
    }
    sizes.retain(|s| *s <= max);
    if rel.capture_adds_max_tokens.value && t <= max {
        sizes.push(t);
    }
    sizes.extend(decode_sizes.into_iter().filter(|s| *s <= t));
    sizes.sort_unstable();
    sizes.dedup();
    Ok(sizes)
}

/// `request_counts` of `_set_cudagraph_sizes`: 1, 2, 4, every 8 below 256, every 16 from 256,
/// and the largest itself.
fn request_counts(max_reqs: u64) -> Vec<u64> {
    let mut counts: Vec<u64> = [1, 2, 4].into_iter().filter(|n| *n <= max_reqs).collect();
    counts.extend((8..max_reqs.saturating_add(1).min(256)).step_by(8));
    if max_reqs >= 256 {
        counts.extend((256..=max_reqs).step_by(16));
    }
    counts.push(max_reqs);
    counts.sort_unstable();
    counts.dedup();
    counts
}

/// The host-side nodes of the captured graphs: one piecewise graph per layer and size, and
/// a full graph per layer for each size a decode batch can reach; nothing without sizes
/// (`--enforce-eager`, the CPU backend).
pub(super) fn host_graphs(cx: &Ctx) -> Option<Component> {
    let (r, cfg) = (cx.r, &cx.m.config);
    let sizes = r.cudagraph_capture_sizes.len() as u64;
    if sizes == 0 {
        return None;
    }
    let layers = n(cfg.num_layers) / r.pipeline_parallel_size;
    let piecewise = if r.cudagraph_mode.contains("PIECEWISE") {
        sizes
    } else {
        0
    };
    let full_limit = n(r.max_num_seqs) * (n(1) + r.num_speculative_tokens);
    let full = if r.cudagraph_mode.starts_with("FULL") {
        r.cudagraph_capture_sizes
            .iter()
            .filter(|s| full_limit.get().map_or(true, |limit| **s <= limit))
            .count() as u64
    } else {
        0
    };
    let units = (n(piecewise) + full) * layers;
    // Measured 3.9 MiB per whole-model eager graph of 8 layers (≈0.49 MiB per layer);
    // Inductor-fused pieces launch fewer kernels [est: a quarter of that].
    let per = 125 * KIB;
    let bytes = units * per;
    Some(
        cx.exact(
            "runtime.cuda_graphs",
            bytes,
            Category::Heap,
            format!("(piecewise {piecewise} + full {full} graphs) × {layers} layers × ≈125 KiB = {units} × 125 KiB"),
            "vllm/compilation/cuda_graph.py",
        )
        .range(bytes * 4 / 10, units * (500 * KIB))
        .note("host-side graph nodes; 0 with --enforce-eager"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(version: Version, r: u64, t: u64, spec: u64, sm100: bool) -> Vec<u64> {
        capture_sizes(version, &VllmArgs::default(), r, t, spec, sm100).unwrap()
    }

    #[test]
    fn up_to_0_11_every_8_tokens_to_twice_the_sequences() {
        // R = 256: min(2 × 256, 512) = 512 → 1, 2, 4 and 8, 16, …, 512 (64 sizes).
        let s = sizes(Version::V0_11, 256, 8192, 0, false);
        assert_eq!(s.len(), 3 + 64);
        assert_eq!(s.last(), Some(&512));
        // Draft tokens do not widen it before 0.13: still min(2 × 8, 512) = 16.
        assert_eq!(
            sizes(Version::V0_12, 8, 8192, 3, false),
            vec![1, 2, 4, 8, 16]
        );
    }

    #[test]
    fn v0_33_on_blackwell_captures_to_1024_and_appends_max_num_seqs() {
        // R = 1024, T = 16384 on a B200: min(2 × 1024, 1024) = 1024 → 1, 2, 4 (3), 8…248 by
        // 8 (31), 256…1024 by 16 (49) = 83 sizes; R = 1024 is already one of them.
        let s = sizes(Version::V0_33, 1024, 16384, 0, true);
        assert_eq!(s.len(), 83);
        assert_eq!(s.last(), Some(&1024));
        // Elsewhere the ceiling stays 512: 3 + 31 + 17 (256…512) = 51 sizes.
        assert_eq!(sizes(Version::V0_33, 1024, 16384, 0, false).len(), 51);
        // R = 100: min(200, 512) = 200 → 3 + 25 sizes (8…200), and R = 100 appended.
        let s = sizes(Version::V0_33, 100, 8192, 0, false);
        assert_eq!(s.len(), 3 + 25 + 1);
        assert!(s.contains(&100));
        assert!(!sizes(Version::V0_12, 100, 8192, 0, false).contains(&100));
    }

    #[test]
    fn max_num_batched_tokens_below_the_ceiling_is_captured_from_0_20() {
        // T = 300 < 512: 3 + 31 (8…248) + 256, 272, 288 = 37 sizes, then 300 appended.
        let s = sizes(Version::V0_32, 1024, 300, 0, false);
        assert_eq!(s.len(), 38);
        assert_eq!(s.last(), Some(&300));
        assert_eq!(sizes(Version::V0_12, 1024, 300, 0, false).len(), 37);
    }

    #[test]
    fn speculative_decoding_adds_a_request_count_grid() {
        // R = 16, 3 draft tokens: q = 4, max = min(2 × 16 × 4, 512) = 128 → 3 + 16 token
        // sizes (8…128); request counts 1, 2, 4, 8, 16 × 4 = 4, 8, 16, 32, 64 are all there
        // already: 19 sizes.
        let s = sizes(Version::V0_33, 16, 8192, 3, false);
        assert_eq!(s.len(), 19);
        // q = 3: max = 96, grid 3, 6, 12, 24, 48; 3 + 12 token sizes (8…96), and 3, 6, 12
        // are new (24 and 48 are multiples of 8): 18.
        let s = sizes(Version::V0_33, 16, 8192, 2, false);
        assert!(s.contains(&3) && s.contains(&6) && s.contains(&12), "{s:?}");
        assert_eq!(s.len(), 18);
        // Before 0.29 no grid: 3 + 12 = 15.
        assert_eq!(sizes(Version::V0_12, 48, 8192, 0, false).len(), 15);
    }

    #[test]
    fn given_sizes_are_deduplicated_and_cut_at_the_token_budget() {
        let args = VllmArgs {
            cudagraph_capture_sizes: Some(vec![64, 8, 8, 9000]),
            ..VllmArgs::default()
        };
        let s = capture_sizes(Version::V0_33, &args, 256, 8192, 0, false).unwrap();
        assert_eq!(s, vec![8, 64]);
    }

    #[test]
    fn gpus_by_family() {
        assert_eq!(compute_family("B200-180GB"), Some(100));
        assert_eq!(compute_family("H100-80GB"), Some(90));
        assert_eq!(compute_family("GH200-96GB"), Some(90));
        assert_eq!(compute_family("A100-80GB"), Some(80));
        assert_eq!(compute_family("L40S-48GB"), Some(89));
        assert_eq!(compute_family("GPU-48GiB"), None);
    }
}
