//! Where each estimator component's allocation is, per vLLM release: `file:line@release`,
//! taken from `ramscope scan` of that release's source (not typed by hand): for every
//! component the sites table ([`super::sites`]) places in the release, the line of its first
//! host site. The table is `source_lines.tsv`, written by `scripts/vllm-source-lines.sh`
//! (`ramscope scan TREE --check --source-lines`, one release per minor) and compared with
//! fresh scans of every release by `tests/scan_vllm_releases.rs`, so a release that moves a
//! buffer fails a test until the table is regenerated.

use std::collections::BTreeSet;

use super::{sites, Version};
use crate::scan::Scan;

/// `release<TAB>component<TAB>file:line`, one line per component and release.
const TABLE: &str = include_str!("source_lines.tsv");

/// `file:line@release` of a component's first site in the release this version names.
pub fn lookup(version: Version, component: &str) -> Option<String> {
    TABLE.lines().find_map(|line| {
        let mut f = line.split('\t');
        let (release, id, at) = (f.next()?, f.next()?, f.next()?);
        (id == component && Version::parse(release) == Some(version))
            .then(|| format!("{at}@{release}"))
    })
}

/// The rows of `source_lines.tsv` for a scanned release (`release<TAB>component<TAB>
/// file:line`, sorted): every component with a row of the sites table for this release whose
/// sites the scan found, at its first host site (a device tensor is host memory only on the
/// CPU backend, so it is cited only for a component that has no other site: one the CPU
/// backend alone holds, such as its KV cache). Independent of any configuration.
pub fn rows(scan: &Scan) -> Vec<String> {
    let Some(written) = scan.version.as_deref() else {
        return Vec::new();
    };
    let release = sites::release_of(Some(written));
    let mut out = BTreeSet::new();
    let mut done = BTreeSet::new();
    for m in sites::modelled_in(release) {
        if done.contains(m.component) {
            continue;
        }
        let first = |host_only: bool| {
            m.anchors.iter().find_map(|a| {
                scan.sites
                    .iter()
                    .filter(|s| s.file == m.file && s.anchor == *a)
                    .filter(|s| !host_only || s.method.always_host())
                    .map(|s| s.line)
                    .min()
            })
        };
        if let Some(line) = first(true).or_else(|| first(false)) {
            done.insert(m.component);
            out.insert(format!("{written}\t{}\t{}:{line}", m.component, m.file));
        }
    }
    out.into_iter().collect()
}

/// The releases the table covers.
pub fn releases() -> Vec<&'static str> {
    let mut out: Vec<&str> = TABLE.lines().filter_map(|l| l.split('\t').next()).collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_release_has_lines_and_they_name_a_file_and_line() {
        for line in TABLE.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 3, "{line}");
            let (file, n) = f[2].rsplit_once(':').expect("file:line");
            assert!(file.ends_with(".py"), "{line}");
            assert!(n.parse::<u32>().is_ok(), "{line}");
        }
        let token = lookup(Version::V0_11, "input_batch.token_ids").expect("0.11 token_ids");
        assert!(
            token.starts_with("vllm/v1/worker/gpu_input_batch.py:"),
            "{token}"
        );
        assert!(token.ends_with("@0.11.0"), "{token}");
        assert!(releases().len() >= 4, "{:?}", releases());
    }

    #[test]
    fn components_only_the_cpu_backend_holds_cite_their_device_site() {
        // Their only sites are tensors on the run-time device (host memory on the CPU
        // backend), so no host site can be cited for them.
        let kv = lookup(Version::V0_33, "kv_cache.cpu").expect("0.33 CPU KV cache");
        assert!(kv.starts_with("vllm/v1/worker/utils.py:"), "{kv}");
        let kv = lookup(Version::V0_11, "kv_cache.cpu").expect("0.11 CPU KV cache");
        assert!(
            kv.starts_with("vllm/v1/worker/gpu_model_runner.py:"),
            "{kv}"
        );
        for id in [
            "runner.positions",
            "runner.seq_lens",
            "runner.num_computed_tokens",
        ] {
            let at = lookup(Version::V0_25, id).unwrap_or_else(|| panic!("0.25 {id}"));
            assert!(at.ends_with("@0.25.1"), "{at}");
        }
        assert!(lookup(Version::V0_32, "runner.is_padding").is_some());
        // Not before it existed.
        assert!(lookup(Version::V0_30, "runner.is_padding").is_none());
    }
}
