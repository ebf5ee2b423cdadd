//! `--enable-prompt-embeds`: requests may carry their prompt as a `P × hidden` tensor
//! instead of token ids. The tensor is kept per request in the API server's output
//! processor, in EngineCore's `Request`, and (V1 runner) in the worker's input batch, each
//! process holding its own deserialized copy: `P · H · dtype` per request, 0 at idle.

use super::components::{n, Ctx};
use super::releases::cite;
use crate::attribute::Category;
use crate::footprint::{Component, Device};

/// Where a copy of each request's prompt embeddings is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holder {
    ApiServer,
    EngineCore,
    /// The model runner, in its own process (a worker).
    Worker,
}

/// The copies a process keeps, up to max_num_seqs requests of max_model_len tokens.
pub(super) fn prompt_embeds(cx: &Ctx, holder: Holder) -> Option<Component> {
    let r = cx.r;
    if !r.enable_prompt_embeds || r.version.release().prompt_embeds_in_engine.is_none() {
        return None;
    }
    // The V2 runner copies them to the GPU as requests arrive (a transient pinned staging
    // copy); the V1 and CPU runners keep each running request's tensor in the input batch.
    if holder == Holder::Worker && r.device == Device::Cuda && r.model_runner_v2 {
        return None;
    }
    let (rr, l, h) = (
        n(r.max_num_seqs),
        n(r.max_model_len),
        n(cx.m.config.hidden_size),
    );
    let dt = r.dtype.activation_bytes();
    let high = rr * l * h * dt;
    let v = r.version;
    let (id, source, why) = match holder {
        Holder::ApiServer => (
            "requests.prompt_embeds",
            cite(v, &[
                (11, "vllm/v1/engine/output_processor.py:91,109@0.11.0"),
                (33, "vllm/v1/engine/output_processor.py:194,217@0.33.0"),
            ]),
            "the output processor keeps each request's tensor until it finishes; waiting requests add more",
        ),
        Holder::EngineCore => (
            "requests.prompt_embeds",
            cite(v, &[
                (11, "vllm/v1/request.py:86@0.11.0"),
                (33, "vllm/v1/request.py:135@0.33.0"),
            ]),
            "Request.prompt_embeds of every request the scheduler holds; waiting requests add more",
        ),
        Holder::Worker => (
            "input_batch.prompt_embeds",
            cite(v, &[
                (11, "vllm/v1/worker/gpu_input_batch.py:339@0.11.0"),
                (33, "vllm/v1/worker/gpu_input_batch.py:381@0.33.0"),
            ]),
            "the input batch's copy of each running request's tensor (req_prompt_embeds)",
        ),
    };
    Some(
        cx.exact(
            id,
            0,
            Category::Heap,
            format!("≤ max_num_seqs × max_model_len × hidden × dtype = {rr} × {l} × {h} × {dt}"),
            source,
        )
        .range(0, high)
        .note(format!("0 at idle; {why}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::vllm::test_util::{built, component};
    use crate::engines::vllm::Version;
    use crate::proc::roles::Role;

    #[test]
    fn every_process_holding_requests_keeps_a_copy() {
        // R = 256, L = 5120, hidden 4096, bf16: 256 × 5120 × 4096 × 2 = 10,737,418,240 B.
        let flags = "--enable-prompt-embeds --max-num-seqs 256 --max-model-len 5120 -tp 2";
        let b = built(flags, Version::V0_12, Device::Cuda);
        for (role, id) in [
            (Role::ApiServer, "requests.prompt_embeds"),
            (Role::EngineCore, "requests.prompt_embeds"),
            (Role::Worker, "input_batch.prompt_embeds"),
        ] {
            let c = component(&b, role, id).unwrap_or_else(|| panic!("{role:?} {id}"));
            assert_eq!((c.bytes, c.high_bytes), (0, 10_737_418_240), "{role:?}");
        }
        // Without the flag, or before the V1 engine took prompt embeddings (0.10), none.
        let b = built("--max-num-seqs 256 -tp 2", Version::V0_12, Device::Cuda);
        assert!(component(&b, Role::EngineCore, "requests.prompt_embeds").is_none());
        let b = built(flags, Version::V0_10, Device::Cuda);
        assert!(component(&b, Role::EngineCore, "requests.prompt_embeds").is_none());
    }
}
