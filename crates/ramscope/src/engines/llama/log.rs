//! What a llama.cpp log says about memory: the buffer-size lines llama.cpp prints as it
//! allocates (`load_tensors: CPU_Mapped model buffer size = 171.59 MiB`, `llama_kv_cache: CPU KV
//! buffer size = 8.00 MiB`, `sched_reserve: CPU compute buffer size = 32.51 MiB`, …) and the
//! rows of its memory breakdown table, so a prediction can be set beside a user's log.
//!
//! llama-server prints the buffer lines from `-lv 4` on (Ollama runs it so). Older releases
//! wrote the same lines under other function names (`llm_load_tensors: CPU buffer size`,
//! `llama_kv_cache_init`, `llama_new_context_with_model`); newer ones put a timestamp and a
//! level letter in front. Lines that are not buffer lines are skipped, so a whole log, an
//! Ollama server log, or a pasted excerpt can be given. Where each line is printed:
//! docs/llama-server-command-line.md §4.

use serde::Serialize;

/// What a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BufferKind {
    /// Weights (`model buffer size`; `llm_load_tensors: … buffer size` before the word).
    Model,
    /// The KV cache (`KV buffer size`).
    Kv,
    /// Recurrent state of Mamba-like layers (`RS buffer size`, and a model's own `… state
    /// buffer size`).
    RecurrentState,
    /// Logits and embeddings (`output buffer size`).
    Output,
    /// Scratch for the graph (`compute buffer size`), also the multimodal encoder's.
    Compute,
    /// A LoRA adapter's weights (`LoRA buffer size`).
    Lora,
}

/// One `… buffer size = N MiB` line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogBuffer {
    pub kind: BufferKind,
    /// The buffer type: `CPU`, `CPU_Mapped`, `CPU_REPACK`, `CUDA_Host`, `CUDA0`, …
    pub buffer: String,
    pub mib: f64,
    /// The function that printed it (`load_tensors`, `llama_kv_cache`, `sched_reserve`).
    pub source: String,
    /// 1-based line number in the log.
    pub line: usize,
}

impl LogBuffer {
    /// Whether the buffer is in host memory: CPU and its variants, and the `*_Host` pinned
    /// types of GPU backends (the names llama.cpp gives host buffer types).
    pub fn on_host(&self) -> bool {
        self.buffer == "CPU" || self.buffer.starts_with("CPU_") || self.buffer.ends_with("_Host")
    }
}

/// Every buffer line of `log`, in order. A log may hold several loads (llama-server's `--fit`
/// dry run prints none, but a draft model or a multimodal projector adds its own lines).
pub fn buffers(log: &str) -> Vec<LogBuffer> {
    log.lines()
        .enumerate()
        .filter_map(|(i, line)| buffer_line(line, i + 1))
        .collect()
}

fn buffer_line(line: &str, number: usize) -> Option<LogBuffer> {
    let at = line.find(" buffer size")?;
    let (left, right) = (&line[..at], &line[at + " buffer size".len()..]);
    let mib = mib_of(right.trim_start().strip_prefix('=')?)?;
    // `… source: BUFFER [what…] buffer size`: the printing function ends with ':'.
    let words: Vec<&str> = left.split_whitespace().collect();
    let colon = words.iter().rposition(|w| w.ends_with(':'))?;
    let source = words[colon].strip_suffix(':')?;
    let buffer = *words.get(colon + 1)?;
    let kind = match &words[colon + 2..] {
        ["model"] => BufferKind::Model,
        // `llm_load_tensors: CPU buffer size` (releases before `model` was written).
        [] if source.ends_with("load_tensors") => BufferKind::Model,
        ["KV"] => BufferKind::Kv,
        ["RS"] => BufferKind::RecurrentState,
        // `DSV4 <name> state`: a model's own recurrent-like state.
        [.., "state"] => BufferKind::RecurrentState,
        ["output"] => BufferKind::Output,
        ["compute"] => BufferKind::Compute,
        ["LoRA"] => BufferKind::Lora,
        _ => return None,
    };
    Some(LogBuffer {
        kind,
        buffer: buffer.to_string(),
        mib,
        source: source.to_string(),
        line: number,
    })
}

/// `   171.59 MiB` (llama.cpp always prints MiB; KiB and GiB are read too).
fn mib_of(text: &str) -> Option<f64> {
    let mut words = text.split_whitespace();
    let number: f64 = words
        .next()?
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let scale = match words.next()? {
        "KiB" => 1.0 / 1024.0,
        "MiB" => 1.0,
        "GiB" => 1024.0,
        _ => return None,
    };
    Some(number * scale)
}

/// One row of llama.cpp's memory breakdown table (`common_memory_breakdown_print`, printed
/// when `--fit` measures and again at exit): a device or a host buffer type, in MiB.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakdownRow {
    /// `Host`, `CPU_REPACK`, `CUDA0 (NVIDIA H100 80GB HBM3)`, …
    pub name: String,
    /// model + context + compute.
    pub self_mib: u64,
    pub model_mib: u64,
    pub context_mib: u64,
    pub compute_mib: u64,
    /// A device row's total and free memory (`None` for host rows).
    pub total_mib: Option<u64>,
    pub free_mib: Option<u64>,
    pub line: usize,
}

/// Every row of every memory breakdown table in `log`, in order.
pub fn breakdown(log: &str) -> Vec<BreakdownRow> {
    log.lines()
        .enumerate()
        .filter_map(|(i, line)| breakdown_row(line, i + 1))
        .collect()
}

fn breakdown_row(line: &str, number: usize) -> Option<BreakdownRow> {
    let row = line.split_once("memory_breakdown_print:")?.1;
    let mut cells = row.split('|').map(str::trim).filter(|c| !c.is_empty());
    let name = cells.next()?.strip_prefix("- ")?.trim();
    let figures = cells.next()?;
    let numbers: Option<Vec<u64>> = figures
        .split(|c: char| "=+()".contains(c))
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().ok())
        .collect();
    let n = numbers?;
    // Host rows: self = model + context + compute. Device rows:
    // total = free + (self = model + context + compute) + unaccounted.
    let (total, free, rest) = match n.len() {
        4 => (None, None, &n[..]),
        7 => (Some(n[0]), Some(n[1]), &n[2..6]),
        _ => return None,
    };
    Some(BreakdownRow {
        name: name.to_string(),
        self_mib: rest[0],
        model_mib: rest[1],
        context_mib: rest[2],
        compute_mib: rest[3],
        total_mib: total,
        free_mib: free,
        line: number,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `llama-server -m Q4_0.gguf -c 512 -lv 4` of llama.cpp 0c1e570 on an AVX2 CPU, with one
    /// completion (the tiny model of tests/common/llama.rs).
    const Q4_0_LOG: &str = include_str!("../../../tests/fixtures/llama-server-0c1e570-q4_0.log");

    #[test]
    fn reads_the_buffer_lines_of_a_real_log() {
        let b = buffers(Q4_0_LOG);
        let seen: Vec<(BufferKind, &str, f64)> = b
            .iter()
            .map(|x| (x.kind, x.buffer.as_str(), x.mib))
            .collect();
        assert_eq!(
            seen,
            vec![
                (BufferKind::Model, "CPU_Mapped", 171.59),
                (BufferKind::Model, "CPU_REPACK", 130.50),
                (BufferKind::Output, "CPU", 0.49),
                (BufferKind::Kv, "CPU", 8.00),
                (BufferKind::Compute, "CPU", 32.51),
            ]
        );
        assert_eq!(b[0].source, "load_tensors");
        assert_eq!(b[3].source, "llama_kv_cache");
        assert_eq!(b[4].source, "sched_reserve");
        assert!(b.iter().all(LogBuffer::on_host));
        assert!(Q4_0_LOG
            .lines()
            .nth(b[1].line - 1)
            .unwrap()
            .contains("CPU_REPACK"));
    }

    #[test]
    fn reads_older_and_gpu_spellings() {
        // The function names and spacing of earlier releases, and a CUDA build's lines.
        let log = "\
llm_load_tensors:        CPU buffer size =  3891.24 MiB
llm_load_tensors:      CUDA0 buffer size =  2048.00 MiB
llama_kv_cache_init:      CUDA0 KV buffer size =   256.00 MiB
llama_new_context_with_model:  CUDA_Host  output buffer size =     0.98 MiB
llama_new_context_with_model:  CUDA_Host compute buffer size =    12.01 MiB
llama_memory_recurrent:        CPU RS buffer size =     1.50 MiB
llama_adapter_lora_init_impl:        CPU LoRA buffer size =    20.00 MiB
llama_kv_cache_dsv4:        CPU DSV4 compressor state buffer size =     2.00 MiB
llama_model_loader: - kv   0: general.architecture str = llama
load: token to piece cache size = 0.0017 MB
print_info: file size   = 3.25 MiB (16.01 BPW)";
        let b = buffers(log);
        let seen: Vec<(BufferKind, &str, f64, bool)> = b
            .iter()
            .map(|x| (x.kind, x.buffer.as_str(), x.mib, x.on_host()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (BufferKind::Model, "CPU", 3891.24, true),
                (BufferKind::Model, "CUDA0", 2048.0, false),
                (BufferKind::Kv, "CUDA0", 256.0, false),
                (BufferKind::Output, "CUDA_Host", 0.98, true),
                (BufferKind::Compute, "CUDA_Host", 12.01, true),
                (BufferKind::RecurrentState, "CPU", 1.5, true),
                (BufferKind::Lora, "CPU", 20.0, true),
                (BufferKind::RecurrentState, "CPU", 2.0, true),
            ]
        );
    }

    #[test]
    fn hostile_lines_are_skipped() {
        for line in [
            "buffer size = 3 MiB",
            "x: CPU model buffer size = NaN MiB",
            "x: CPU model buffer size = -1 MiB",
            "x: CPU model buffer size = 1e999 MiB",
            "x: CPU model buffer size = 3 parsecs",
            "x: CPU model buffer size 3 MiB",
            "CPU model buffer size = 3 MiB",
            "some: text buffer size = 3 MiB",
            "some: CPU odd kind buffer size = 3 MiB",
            "x: CPU model buffer size =",
            "é buffer size = é",
            "common_memory_breakdown_print: | - Host | 1 = 2 + x + 3 |",
            "common_memory_breakdown_print: | - Host | 99999999999999999999 = 1 + 1 + 1 |",
        ] {
            assert!(buffers(line).is_empty(), "{line}");
            assert!(breakdown(line).is_empty(), "{line}");
        }
    }

    #[test]
    fn reads_the_memory_breakdown_rows() {
        let rows = breakdown(Q4_0_LOG);
        // At the --fit measurement and again at exit.
        let seen: Vec<(&str, u64, u64)> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.self_mib, r.model_mib))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("Host", 83, 43),
                ("CPU_REPACK", 130, 130),
                ("Host", 212, 171),
                ("CPU_REPACK", 130, 130),
            ]
        );
        let gpu = "common_memory_breakdown_print: |   - CUDA0 (NVIDIA H100) | 81079 = 60000 + (20000 = 18000 +  1500 +   500) +  1079 |";
        let r = &breakdown(gpu)[0];
        assert_eq!(r.name, "CUDA0 (NVIDIA H100)");
        assert_eq!(
            (r.total_mib, r.free_mib, r.self_mib, r.compute_mib),
            (Some(81079), Some(60000), 20000, 500)
        );
    }
}
