//! What vLLM does with flags a release does not have: removed flags it refuses, flags that
//! appeared later, and flags it accepts but ignores in host RAM (`--swap-space`, `--config`).
//! ramscope notes each one and goes on.

use crate::engines::vllm::args::VllmArgs;
use crate::engines::vllm::releases::flag_added_in;
use crate::engines::vllm::Version;

/// The notes on the command line's flags for `version`, in the order reports show them.
pub(super) fn flag_notes(version: Version, args: &VllmArgs) -> Vec<String> {
    let mut notes = Vec::new();
    for (flag, removed_in) in &args.removed {
        if version >= *removed_in {
            notes.push(format!(
                "{flag} was removed in vLLM {removed_in}: vLLM {version} refuses it; ignored here"
            ));
        }
    }
    for flag in flags_newer_than(version, args) {
        notes.push(flag);
    }
    if let Some(gb) = args.swap_space {
        let refused = args
            .removed
            .iter()
            .any(|(flag, gone)| flag == "--swap-space" && version >= *gone);
        if !refused {
            notes.push(format!(
                "--swap-space {gb}: V1 engines allocate no CPU swap (num_cpu_blocks = 0); it only checks the size against total RAM"
            ));
        }
    }
    if args.config_file.is_some() {
        notes
            .push("--config: the YAML file is not read; pass its flags on the command line".into());
    }
    notes
}

/// Notes for flags the command line gives that `version` does not have yet: vLLM refuses
/// them ("unrecognized arguments"), ramscope still applies them.
fn flags_newer_than(version: Version, args: &VllmArgs) -> Vec<String> {
    let names: std::collections::BTreeSet<&str> = args
        .given
        .keys()
        .map(|k| k.split('.').next().unwrap_or(k))
        .collect();
    names
        .into_iter()
        .filter_map(|flag| {
            let added = flag_added_in(flag).filter(|a| version < *a)?;
            Some(format!(
                "{flag} first appeared in vLLM {added}: vLLM {version} refuses it"
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::{resolve, test_context};
    use crate::engines::vllm::args::parse_str;
    use crate::engines::vllm::Version;
    use crate::footprint::Device;
    use crate::gpu::Gpu;
    use crate::model::Model;

    #[test]
    fn removed_flags_become_notes() {
        let gpu = Gpu::default_gpu();
        let env = BTreeMap::new();
        let a = parse_str("--swap-space 4").unwrap();
        let r = resolve(
            &Model::default_model(),
            &a,
            &test_context(Version::V0_33, Device::Cuda, &gpu, &env),
        )
        .unwrap();
        assert!(
            r.notes.iter().any(|n| n.contains("removed in vLLM 0.18")),
            "{:?}",
            r.notes
        );
        // 0.17 is the last release that still accepts it (and ignores it under V1).
        for (v, removed) in [(Version::V0_17, false), (Version::V0_18, true)] {
            let r = resolve(
                &Model::default_model(),
                &a,
                &test_context(v, Device::Cuda, &gpu, &env),
            )
            .unwrap();
            let said = |s: &str| r.notes.iter().any(|n| n.contains(s));
            assert_eq!(said("removed in vLLM 0.18"), removed, "{v}: {:?}", r.notes);
            assert_eq!(said("num_cpu_blocks = 0"), !removed, "{v}: {:?}", r.notes);
        }
    }

    #[test]
    fn flags_newer_than_the_release_are_noted() {
        let gpu = Gpu::default_gpu();
        let env = BTreeMap::new();
        let a = parse_str("--language-model-only --max-model-len 4096").unwrap();
        let notes = |v| {
            resolve(
                &Model::default_model(),
                &a,
                &test_context(v, Device::Cuda, &gpu, &env),
            )
            .unwrap()
            .notes
        };
        let old = notes(Version::V0_16);
        assert!(
            old.iter()
                .any(|n| n
                    == "--language-model-only first appeared in vLLM 0.17: vLLM 0.16 refuses it"),
            "{old:?}"
        );
        assert!(!notes(Version::V0_17)
            .iter()
            .any(|n| n.contains("first appeared")));
    }
}
