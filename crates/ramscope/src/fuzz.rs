//! Entry points for coverage-guided fuzzing: one function per parser of outside input.
//!
//! Each takes arbitrary bytes, runs them through the same code the commands use, and checks
//! the invariants that code promises (categories add up, low ≤ bytes ≤ high, …). A panic here
//! is a bug: the fuzz targets in `fuzz/` call these, and `tests/fuzz_corpora.rs` replays every
//! input the fuzzer kept (and every crash it once found) through them in the normal test suite.
//! None of them touches the file system, the network or `/proc`.

use crate::proc::smaps::{parse_rollup, SmapsParser, MAX_KB};
use crate::snapshot::Attributor;

/// `/proc/<pid>/smaps`, attributed and reconciled as `measure` does. The text after a line
/// `=== rollup` (if any) is read as the process's `smaps_rollup`.
pub fn smaps(data: &[u8]) {
    let (smaps, rollup) = match memchr::memmem::find(data, b"\n=== rollup\n") {
        Some(i) => (&data[..i], Some(&data[i + 12..])),
        None => (data, None),
    };
    let Ok(maps) = SmapsParser::new(smaps).collect::<Result<Vec<_>, _>>() else {
        return;
    };
    let rollup = rollup.and_then(|r| parse_rollup(r).ok());
    let mut attribution = Attributor::new(true).attribute(&maps);
    let before: u64 = attribution.categories.values().map(|u| u.rss_bytes).sum();
    attribution.reconcile(rollup.as_ref());
    let rss: u64 = attribution.categories.values().map(|u| u.rss_bytes).sum();
    assert_eq!(rss, before, "reconciling must not change RSS");
    if attribution.sum.rss < MAX_KB {
        let sum_rss = attribution.sum.rss * 1024;
        assert_eq!(rss, sum_rss, "categories must add up to the process's RSS");
    }
}

/// `/proc/<pid>/smaps_rollup`.
pub fn smaps_rollup(data: &[u8]) {
    if let Ok(c) = parse_rollup(data) {
        let _ = c.uss();
    }
}

/// `/proc/<pid>/status` and `/proc/<pid>/stat`.
pub fn status(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let s = crate::proc::status::Status::parse(&text);
    let _ = (s.vm_rss, s.name.len());
    let _ = crate::proc::status::ppid_from_stat(&text);
    let _ = crate::proc::status::start_time_from_stat(&text);
    let _ = crate::proc::split_cmdline(data);
}

/// `/proc/meminfo`.
pub fn meminfo(data: &[u8]) {
    let h = crate::proc::host::HostMemory::parse_meminfo(&String::from_utf8_lossy(data));
    let _ = h.total_bytes;
}

/// `/proc/<pid>/cgroup`, `mountinfo` and `memory.stat` (v1 and v2), split at NUL bytes.
pub fn cgroup(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == 0);
    let memberships = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let mountinfo = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let stat = String::from_utf8_lossy(parts.next().unwrap_or_default());
    crate::proc::cgroup::fuzz_parsers(&memberships, &mountinfo, &stat);
}

/// An HTTP request as `serve` receives it, through the same head parser and router.
pub fn http(data: &[u8]) {
    crate::exporter::http::fuzz_http_request(data);
}
