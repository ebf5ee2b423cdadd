//! Where vLLM creates the estimator components that are not one allocation site (a runtime
//! baseline measured on a stack, Python objects, shared-memory queues, oneDNN's packed
//! weights), per release: `file:line@release` of the code that does it, cited by symbol.
//! Unlike `source_lines.tsv` (scanned sites joined with the sites table) these lines are
//! cited, not scanned: `cited_lines.spec` names each component's file and symbol, and
//! `scripts/vllm-cited-lines.sh` finds the symbol's line in every release into
//! `cited_lines.tsv`. The tests check each line still holds its symbol in the cached source
//! tree of its release. Only where the line is changes; the numbers stay what the estimator
//! computes or calibrates.

use super::Version;

/// `release<TAB>component<TAB>described source<TAB>file:line<TAB>symbol`.
const TABLE: &str = include_str!("cited_lines.tsv");

/// One row of the table.
struct Cited<'a> {
    release: &'a str,
    component: &'a str,
    /// The source the estimator gives the component: one component can be made in two
    /// processes by different code (the API server's tokenizer, the engine core's).
    described: &'a str,
    at: &'a str,
    /// What the cited line holds (checked against the sources by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    symbol: &'a str,
}

fn rows() -> impl Iterator<Item = Cited<'static>> {
    TABLE.lines().filter_map(|line| {
        let mut f = line.split('\t');
        Some(Cited {
            release: f.next()?,
            component: f.next()?,
            described: f.next()?,
            at: f.next()?,
            symbol: f.next()?,
        })
    })
}

/// `file:line@release` of the code that creates `component`, described by the estimator as
/// `described`, in the release this version names.
pub fn lookup(version: Version, component: &str, described: &str) -> Option<String> {
    rows()
        .find(|r| {
            r.component == component
                && r.described == described
                && Version::parse(r.release) == Some(version)
        })
        .map(|r| format!("{}@{}", r.at, r.release))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::engines::vllm::sites;

    fn source_trees() -> PathBuf {
        match std::env::var_os("RAMSCOPE_E2E_CACHE") {
            Some(dir) => PathBuf::from(dir).join("vllm-src"),
            None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/ramscope-e2e/vllm-src"),
        }
    }

    #[test]
    fn every_row_names_a_release_a_python_line_and_a_symbol() {
        let mut n = 0;
        for line in TABLE.lines() {
            assert_eq!(line.split('\t').count(), 5, "{line}");
            n += 1;
        }
        assert_eq!(rows().count(), n);
        for r in rows() {
            assert!(Version::parse(r.release).is_some(), "{}", r.release);
            let (file, line) = r.at.rsplit_once(':').expect("file:line");
            assert!(
                file.starts_with("vllm/") && file.ends_with(".py"),
                "{}",
                r.at
            );
            assert!(line.parse::<usize>().is_ok_and(|n| n > 0), "{}", r.at);
            assert!(!r.symbol.trim().is_empty(), "{}", r.at);
        }
    }

    #[test]
    fn each_cited_line_holds_its_symbol_in_its_releases_source() {
        let root = source_trees();
        let (mut checked, mut missing) = (0, std::collections::BTreeSet::new());
        for r in rows() {
            let tree = root.join(format!("vllm-{}", r.release));
            if !tree.join(".ready").exists() {
                missing.insert(r.release);
                continue;
            }
            let (file, line) = r.at.rsplit_once(':').expect("file:line");
            let n: usize = line.parse().expect("a line number");
            let text = std::fs::read_to_string(tree.join(file))
                .unwrap_or_else(|e| panic!("{}@{}: {e}", r.at, r.release));
            let cited = text.lines().nth(n - 1).unwrap_or_default();
            assert!(
                cited.contains(r.symbol),
                "{} {}@{}: line {n} is {cited:?}, not {:?} (run scripts/vllm-cited-lines.sh)",
                r.component,
                r.at,
                r.release,
                r.symbol
            );
            checked += 1;
        }
        if !missing.is_empty() {
            eprintln!(
                "cited lines: {checked} checked; skipped releases without a source tree under {} (scripts/vllm-sources.sh): {missing:?}",
                root.display()
            );
        }
    }

    #[test]
    fn a_component_is_cited_per_process_and_release() {
        let api = lookup(Version::V0_11, "tokenizer", "vllm/tokenizers/hf.py").expect("0.11");
        // 0.11 loads the tokenizer in transformers_utils; from 0.20 in vllm/tokenizers.
        assert!(
            api.starts_with("vllm/transformers_utils/tokenizer.py:"),
            "{api}"
        );
        assert!(api.ends_with("@0.11.0"), "{api}");
        let core = lookup(
            Version::V0_33,
            "tokenizer",
            "vllm/v1/structured_output/__init__.py",
        )
        .expect("0.33 engine core");
        assert!(
            core.starts_with("vllm/v1/structured_output/__init__.py:"),
            "{core}"
        );
        assert!(lookup(Version::V0_33, "tokenizer", "elsewhere").is_none());
        // The V2 runner's UVA pools only exist from 0.12.
        assert!(lookup(
            Version::V0_11,
            "v2.uva_pools",
            "vllm/v1/worker/gpu/buffer_utils.py"
        )
        .is_none());
    }

    #[test]
    fn a_cited_component_has_no_scanned_site() {
        // A component the sites table places is cited from the scan, never by hand.
        for r in rows() {
            assert!(!sites::is_tabled(r.component), "{}", r.component);
        }
    }
}
