//! Entry points for coverage-guided fuzzing: one function per parser of outside input.
//!
//! Each takes arbitrary bytes, runs them through the same code the commands use, and checks
//! the invariants that code promises (categories add up, low ≤ bytes ≤ high, …). A panic here
//! is a bug: the fuzz targets in `fuzz/` call these, and `tests/fuzz_corpora.rs` replays every
//! input the fuzzer kept (and every crash it once found) through them in the normal test suite.
//! None of them touches the file system, the network or `/proc`.

use crate::engines::{self, Engine};
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

/// A model's `config.json`.
pub fn config_json(data: &[u8]) {
    crate::model::fuzz_config_json(data);
}

/// A whole `*.safetensors` file (its header is what is read).
pub fn safetensors(data: &[u8]) {
    crate::hf::fuzz_safetensors(data);
}

/// A whole GGUF file: its header is parsed and every total must agree with the tensor table.
pub fn gguf(data: &[u8]) {
    let Ok(g) = crate::gguf::parse(data, std::path::Path::new("fuzz.gguf")) else {
        return;
    };
    let sum: u64 = g.tensors.iter().map(|t| t.bytes).sum();
    assert_eq!(sum, g.tensor_bytes);
    assert_eq!(g.bytes_by_type.values().sum::<u64>(), sum);
    assert_eq!(g.data_offset % g.alignment, 0);
    for t in &g.tensors {
        assert!(
            g.data_offset + t.offset + t.bytes <= g.file_bytes,
            "{} past the end",
            t.name
        );
    }
}

/// vLLM, the engine the `vllm_*` and `shell_command_line` corpora are written for.
fn vllm() -> &'static dyn Engine {
    engines::named("vllm").expect("vLLM is in the engine registry")
}

/// A vLLM argv (words split at NUL and whitespace), parsed as vLLM would: flags, values,
/// sizes and their checks, without an estimate (that is [`vllm_estimate`], ~50× dearer).
pub fn vllm_argv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let argv: Vec<String> = text
        .split(|c: char| c == '\0' || c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let _ = vllm().parse(&argv);
}

/// A llama-server argv (words split at NUL and whitespace), parsed as llama-server would:
/// every flag of the table, its values and their limits, the `NAME=VALUE` words in front.
pub fn llama_argv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let argv: Vec<String> = text
        .split(|c: char| c == '\0' || c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let engine = engines::named("llama.cpp").expect("llama.cpp is in the engine registry");
    let _ = engine.parse(&argv);
}

/// A vLLM argv parsed and then estimated with a bundled model, checking the invariants of
/// every estimate (low ≤ bytes ≤ high, no wrapped count).
pub fn vllm_estimate(data: &[u8]) {
    crate::estimate::fuzz_argv(vllm(), data);
}

/// A shell command line (`VLLM_X=1 vllm serve M --flag 'a b'`), split into words and parsed
/// as vLLM would. Words the splitter returns split back to themselves once quoted.
pub fn shell_command_line(data: &[u8]) {
    let engine = vllm();
    let line = String::from_utf8_lossy(data);
    let Ok(words) = engine.split_command_line(&line) else {
        return;
    };
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect();
    assert_eq!(
        engine.split_command_line(&quoted.join(" ")).ok().as_ref(),
        Some(&words),
        "quoting and splitting again must give the same words"
    );
    let _ = engine.parse(&words);
}

/// A `ramscope run` recording (JSON lines): parsed, analysed (peaks, leaks) and shown as the
/// terminal summary, the CSV and a diff against itself, as `report` and `diff` do.
pub fn recording(data: &[u8]) {
    use crate::record::format::{Input, Recording};
    use crate::report::diff::{diff, Moment, Side};
    let Ok(rec) = Recording::parse(std::path::Path::new("fuzz.jsonl"), data) else {
        return;
    };
    let analysis = crate::record::analysis::analyze(&rec, &Default::default());
    let _ = crate::report::record::render(&analysis);
    let _ = crate::report::csv::render(&rec);
    let _ = rec.last_snapshot();
    let input = Input::Recording(Box::new(rec));
    for at in [Moment::Last, Moment::Peak] {
        let side = Side::of(&input, at);
        let _ = crate::report::diff::render(&diff("a", &side, "b", &side, at));
    }
}

/// A `ramscope measure --json` snapshot, as `diff` and `explain --from-snapshot` read it:
/// totals recomputed, shown as `measure` would and diffed against itself.
pub fn snapshot_json(data: &[u8]) {
    use crate::record::format::Input;
    use crate::report::diff::{diff, Moment, Side};
    use crate::report::measure::{render, Breakdown};
    use crate::snapshot::{TreeSnapshot, TreeTotal};
    let Ok(snapshot) = serde_json::from_slice::<TreeSnapshot>(data) else {
        return;
    };
    let _ = TreeTotal::of(&snapshot.processes);
    for by in [Breakdown::Process, Breakdown::Category, Breakdown::Mapping] {
        let _ = render(&snapshot, by, Some(5));
    }
    let input = Input::Snapshot(Box::new(snapshot));
    let side = Side::of(&input, Moment::Last);
    let _ = crate::report::diff::render(&diff("a", &side, "b", &side, Moment::Last));
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_command_lines_survive_odd_input() {
        for line in [
            &b"vllm serve M --max-model-len \xc3\xa9"[..],
            b"'it''s' \"a\\\"b\" c\\\\ d\\",
            b"--model 'unterminated",
            b"A=1 B= python -m x -- --max-model-len 5k --kv-cache-memory-bytes 1e30",
            b"\0\0 -O -O3 -cc. --no-enforce-eager=1 \xff\xfe",
        ] {
            super::shell_command_line(line);
        }
    }
}
