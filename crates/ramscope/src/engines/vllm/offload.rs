//! Weight offload to host RAM: which offloader vLLM builds (`create_offloader`: UVA for
//! `--cpu-offload-gb`, prefetch for `--offload-group-size`, chosen by `--offload-backend`)
//! and the pinned copies the prefetch offloader keeps of every parameter of each offloaded
//! layer (`_CpuParamOffloader`). The UVA formula is in `weights` (`LayerTensors::offload`).

use serde::Serialize;

use super::args::VllmArgs;
use super::components::{n, Ctx};
use super::defaults::ResolveError;
use super::releases::cite;
use super::weights::LayerTensors;
use super::Version;
use crate::attribute::Category;
use crate::footprint::Component;
use crate::units::Checked;

/// The prefetch offloader's settings (`PrefetchOffloadConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prefetch {
    /// `--offload-group-size`: layers are grouped by this many.
    pub group_size: u64,
    /// `--offload-num-in-group`: the last this many layers of each group are offloaded.
    pub num_in_group: u64,
    /// `--offload-params`: only parameters whose dotted name has one of these segments.
    pub params: Vec<String>,
}

/// Which weight offloader runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightOffload {
    None,
    /// `--cpu-offload-gb`: parameters in load order until this many bytes.
    Uva {
        bytes: u64,
    },
    Prefetch(Prefetch),
}

/// `create_offloader` and `OffloadConfig.validate_offload_config`: the backend, its
/// settings, and vLLM's refusals. `uva_bytes` is `--cpu-offload-gb` in bytes.
pub fn resolve(
    version: Version,
    args: &VllmArgs,
    uva_bytes: u64,
    notes: &mut Vec<String>,
) -> Result<WeightOffload, ResolveError> {
    let uva = || {
        if uva_bytes > 0 {
            WeightOffload::Uva { bytes: uva_bytes }
        } else {
            WeightOffload::None
        }
    };
    let group_size = args.offload_group_size.unwrap_or(0);
    if version.release().prefetch_weight_offload.is_none() {
        if group_size > 0 || args.offload_backend.is_some() {
            notes.push(format!(
                "prefetch weight offload (--offload-group-size, --offload-backend) appeared in vLLM 0.17; vLLM {version} refuses the flags: ignored here"
            ));
        }
        return Ok(uva());
    }
    let backend = args.offload_backend.as_deref().unwrap_or("auto");
    let prefetch = match backend {
        "auto" => group_size > 0,
        "prefetch" => true,
        "uva" => {
            if group_size > 0 {
                notes.push("Prefetch offload fields are set but offload_backend='uva'. Prefetch settings will be ignored. (vLLM's warning)".into());
            }
            false
        }
        other => {
            return Err(ResolveError::Invalid(format!(
                "--offload-backend {other}: vLLM accepts auto, uva or prefetch"
            )))
        }
    };
    if !prefetch {
        return Ok(uva());
    }
    let num_in_group = args.offload_num_in_group.unwrap_or(1);
    if num_in_group > group_size {
        return Err(ResolveError::Invalid(format!(
            "offload_num_in_group ({num_in_group}) must be <= offload_group_size ({group_size}) (vLLM's OffloadConfig)"
        )));
    }
    if args.offload_prefetch_step == Some(0) {
        return Err(ResolveError::Invalid(
            "offload_prefetch_step (0) must be >= 1 when prefetch offloading is enabled (offload_group_size > 0) (vLLM's OffloadConfig)".into(),
        ));
    }
    if uva_bytes > 0 {
        notes.push("--cpu-offload-gb is ignored: with --offload-group-size vLLM builds the prefetch offloader instead of the UVA one".into());
    }
    Ok(WeightOffload::Prefetch(Prefetch {
        group_size,
        num_in_group,
        params: args.offload_params.clone().unwrap_or_default(),
    }))
}

/// How many of `layers` layers (indexed from 0) have `index % g ≥ g − k`.
pub(super) fn offloaded_layers(layers: u64, group_size: u64, num_in_group: u64) -> u64 {
    if group_size == 0 {
        return 0;
    }
    let k = num_in_group.min(group_size);
    (layers / group_size) * k + (layers % group_size).saturating_sub(group_size - k)
}

/// The parameters of one decoder layer the prefetch offloader may copy: their dotted names
/// (as `named_parameters` gives them under `model.layers.N.`) and bytes per rank.
fn layer_parameters(cx: &Ctx) -> Vec<(&'static str, Checked)> {
    let t = LayerTensors::of(cx);
    let c = &cx.m.config;
    let moe = c.num_experts > 0;
    let dt = c.dtype.bytes().max(1.0) as u64;
    let norm = n(c.hidden_size) * dt;
    vec![
        ("self_attn.qkv_proj.weight", t.sizes[0]),
        ("self_attn.o_proj.weight", t.sizes[1]),
        (
            if moe {
                "mlp.experts.w13_weight"
            } else {
                "mlp.gate_up_proj.weight"
            },
            t.sizes[2],
        ),
        (
            if moe {
                "mlp.experts.w2_weight"
            } else {
                "mlp.down_proj.weight"
            },
            t.sizes[3],
        ),
        ("input_layernorm.weight", norm),
        ("post_attention_layernorm.weight", norm),
    ]
}

/// `--offload-params`: a parameter matches when `.{p}.` occurs in `.model.layers.N.{name}.`.
fn whitelisted(name: &str, params: &[String]) -> bool {
    let dotted = format!(".model.layers.0.{name}.");
    params.is_empty() || params.iter().any(|p| dotted.contains(&format!(".{p}.")))
}

/// The prefetch offloader's pinned copies in one rank: one `empty_strided(pin_memory=True)`
/// per whitelisted parameter of every offloaded layer.
pub(super) fn prefetch_buffers(cx: &Ctx, p: &Prefetch) -> Option<Component> {
    let layers_rank = n(cx.m.config.num_layers) / cx.r.pipeline_parallel_size.max(1);
    let offloaded = offloaded_layers(layers_rank.raw(), p.group_size, p.num_in_group);
    let chosen: Vec<(&str, Checked)> = layer_parameters(cx)
        .into_iter()
        .filter(|(name, _)| whitelisted(name, &p.params))
        .collect();
    if offloaded == 0 || chosen.is_empty() {
        return None;
    }
    let raw: Checked = chosen.iter().map(|(_, b)| *b).sum();
    let pinned: Checked = chosen.iter().map(|(_, b)| b.pow2()).sum();
    let names: Vec<&str> = chosen.iter().map(|(n, _)| *n).collect();
    Some(
        cx.exact(
            "prefetch_offload.weights",
            n(offloaded) * pinned,
            Category::Pinned,
            format!(
                "offloaded layers × Σ pow2(parameter) = {offloaded} × {pinned} (layers i with i mod {g} ≥ {g} − {k} of {layers_rank}; {names})",
                g = p.group_size,
                k = p.num_in_group,
                names = names.join(", ")
            ),
            cite(
                cx.r.version,
                &[
                    (
                        17,
                        "vllm/model_executor/offloader/prefetch.py:180,597-615@0.17.1",
                    ),
                    (
                        33,
                        "vllm/model_executor/offloader/prefetch.py:200,650-677@0.33.0",
                    ),
                ],
            ),
        )
        // Norms and biases beyond the two RMSNorms are left out: a few KiB per layer.
        .range(n(offloaded) * raw, n(offloaded) * pinned + n(offloaded) * 64 * 1024)
        .note("per rank; pinned and rounded per parameter; the GPU keeps small static buffers instead"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::vllm::test_util::{built, component, resolved, with_ctx};
    use crate::footprint::Device;
    use crate::proc::roles::Role;

    #[test]
    fn offloaded_layer_counts_follow_the_group_pattern() {
        // 36 layers, groups of 4, last 1 of each: indexes 3, 7, …, 35 → 9.
        assert_eq!(offloaded_layers(36, 4, 1), 9);
        // 10 layers, groups of 4, last 2: 2, 3, 6, 7 and (10 % 4 = 2) − (4 − 2) = 0 → 4.
        assert_eq!(offloaded_layers(10, 4, 2), 4);
        // 11 layers: index 10 has 10 % 4 = 2 ≥ 2 → 5.
        assert_eq!(offloaded_layers(11, 4, 2), 5);
        assert_eq!(offloaded_layers(36, 0, 1), 0);
    }

    #[test]
    fn prefetch_pins_every_parameter_of_the_offloaded_layers() {
        // Qwen3-8B, TP 1, bf16: qkv (32 + 2 × 8) × 128 × 4096 × 2 = 50,331,648 B → pow2
        // 67,108,864; o 4096 × 4096 × 2 = 33,554,432 (a power of two); gate_up 2 × 12288 ×
        // 4096 × 2 = 201,326,592 → 268,435,456; down 100,663,296 → 134,217,728; two norms
        // 4096 × 2 = 8192 each. Σ pow2 = 503,332,864 per layer; 9 of 36 layers.
        let b = built(
            "--offload-group-size 4 --offload-num-in-group 1",
            Version::V0_33,
            Device::Cuda,
        );
        let c = component(&b, Role::EngineCore, "prefetch_offload.weights").expect("component");
        assert_eq!(c.bytes, 9 * 503_332_864);
        assert!(c.pinned);
        // Only the MLP weights: gate_up and down, pow2 268,435,456 + 134,217,728.
        let b = built(
            "--offload-group-size 4 --offload-params gate_up_proj down_proj",
            Version::V0_33,
            Device::Cuda,
        );
        let c = component(&b, Role::EngineCore, "prefetch_offload.weights").unwrap();
        assert_eq!(c.bytes, 9 * (268_435_456 + 134_217_728));
    }

    #[test]
    fn prefetch_replaces_uva_and_vllm_refuses_bad_groups() {
        let r = resolved(
            "--cpu-offload-gb 4 --offload-group-size 4",
            Version::V0_33,
            Device::Cuda,
        )
        .unwrap();
        assert!(matches!(r.weight_offload, WeightOffload::Prefetch(_)));
        assert!(r
            .notes
            .iter()
            .any(|n| n.contains("--cpu-offload-gb is ignored")));
        let r = resolved(
            "--cpu-offload-gb 4 --offload-group-size 4 --offload-backend uva",
            Version::V0_33,
            Device::Cuda,
        )
        .unwrap();
        assert_eq!(r.weight_offload, WeightOffload::Uva { bytes: 4 << 30 });
        let e = resolved(
            "--offload-group-size 2 --offload-num-in-group 3",
            Version::V0_33,
            Device::Cuda,
        )
        .unwrap_err();
        assert!(
            e.contains("offload_num_in_group (3) must be <= offload_group_size (2)"),
            "{e}"
        );
        // Before 0.17 there is no prefetch offloader: --cpu-offload-gb stays UVA.
        let r = resolved(
            "--cpu-offload-gb 4 --offload-group-size 4",
            Version::V0_12,
            Device::Cuda,
        )
        .unwrap();
        assert_eq!(r.weight_offload, WeightOffload::Uva { bytes: 4 << 30 });
    }

    #[test]
    fn pipeline_stages_offload_their_own_layers() {
        // PP 2: 18 layers per stage, groups of 3, last 1: 6 layers per stage.
        let n = with_ctx(
            "-pp 2 --offload-group-size 3",
            Version::V0_33,
            Device::Cuda,
            |cx| match &cx.r.weight_offload {
                WeightOffload::Prefetch(p) => prefetch_buffers(cx, p).map(|c| c.bytes),
                _ => None,
            },
        );
        assert_eq!(n, Some(6 * 503_332_864));
    }
}
