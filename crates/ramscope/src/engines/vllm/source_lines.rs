//! Where each estimator component's allocation is, per vLLM release: `file:line@release`,
//! taken from `ramscope scan --check` of that release's source (not typed by hand). The
//! table is `source_lines.tsv`, written by `ramscope scan TREE --check --source-lines` and
//! compared with fresh scans of every release by `tests/scan_vllm.rs`, so a release that
//! moves a buffer fails a test until the table is regenerated.

use super::Version;

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
}
