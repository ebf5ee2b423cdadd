//! Ollama's refusals as users reported them (docs/ollama-host-ram.md §8): the numbers in
//! each issue, fed to the release's arithmetic, must give the verdict the user got.

use super::*;
use crate::engines::ollama::releases::Version;

fn gib(x: f64) -> u64 {
    (x * GIB as f64) as u64
}

fn release(v: (u16, u16, u16)) -> Release {
    Release::of(Version(v.0, v.1, v.2))
}

fn refused(v: Verdict) -> Refusal {
    match v {
        Verdict::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn bytes_are_written_as_ollama_writes_them() {
    assert_eq!(human_bytes2(0), "0 B");
    assert_eq!(human_bytes2(1023), "1023 B");
    assert_eq!(human_bytes2(1536), "1.5 KiB");
    assert_eq!(human_bytes2(512 * MIB), "512.0 MiB");
    assert_eq!(human_bytes2(gib(10.2)), "10.2 GiB");
    assert_eq!(human_bytes2(u64::MAX), "17179869184.0 GiB");
}

/// Case 6, ollama/ollama#11497: Ollama 0.9.6 in Docker with no memory limit on a 32 GB host,
/// deepseek-r1:14b on the CPU: "model requires more system memory (10.2 GiB) than is
/// available (2.9 GiB)". Before 0.13.0 free memory is MemAvailable alone (no swap reported).
#[test]
fn case_6_docker_without_a_limit_reads_mem_available() {
    let host = HostMemory {
        mem_total_bytes: Some(32_000_000_000),
        mem_available_bytes: Some(gib(2.9)),
        swap_free_bytes: Some(0),
        ..HostMemory::default()
    };
    let r = refused(check(&release((0, 9, 6)), gib(10.2), &host));
    assert_eq!(
        r.message,
        "model requires more system memory (10.2 GiB) than is available (2.9 GiB)"
    );
    assert!(
        r.arithmetic.contains("MemAvailable 2.9 GiB"),
        "{}",
        r.arithmetic
    );
    assert!(
        r.source.contains("llm/server.go:166-173@v0.9.6"),
        "{}",
        r.source
    );
    // With the same host, a model needing less than MemAvailable starts.
    assert!(matches!(
        check(&release((0, 9, 6)), gib(2.8), &host),
        Verdict::Starts(_)
    ));
}

/// Case 8, morphik-org/morphik-core#120 (April 2025, so Ollama 0.6.x): Docker with
/// mem_limit 12g on a 24 GB host, "requires 11.3 GiB > available 11.2 GiB". Before 0.13.0
/// Ollama reads the host's MemAvailable, not the container's limit, and it is the host's
/// 11.2 GiB that refuses a model the 12 GiB limit would hold.
#[test]
fn case_8_the_container_limit_is_not_read_before_0_13() {
    let host = HostMemory {
        mem_total_bytes: Some(24_000_000_000),
        mem_available_bytes: Some(gib(11.2)),
        swap_free_bytes: Some(0),
        limit_bytes: Some(12 << 30),
        usage_bytes: Some(gib(0.2)),
        ..HostMemory::default()
    };
    let r = refused(check(&release((0, 6, 6)), gib(11.3), &host));
    assert_eq!(
        r.message,
        "model requires more system memory (11.3 GiB) than is available (11.2 GiB)"
    );
    // From 0.13.0 the same container is read as memory.max − memory.current = 11.8 GiB.
    let later = check(&release((0, 13, 0)), gib(11.3), &host);
    assert!(
        matches!(&later, Verdict::Starts(a) if a.contains("memory.max 12.0 GiB")),
        "{later:?}"
    );
}

/// Case 7, ollama/ollama#13556 (December 2025, so 0.13.5): llama3.3 loads once, then
/// "model requires more system memory (39.4 GiB) than is available (30.0 GiB)".
#[test]
fn case_7_the_second_load_is_refused() {
    let host = HostMemory {
        mem_available_bytes: Some(gib(30.0)),
        swap_free_bytes: Some(0),
        ..HostMemory::default()
    };
    let r = refused(check(&release((0, 13, 5)), gib(39.4), &host));
    assert_eq!(
        r.message,
        "model requires more system memory (39.4 GiB) than is available (30.0 GiB)"
    );
    assert!(
        r.source.contains("llm/server.go:1075-1081@v0.24.0"),
        "{}",
        r.source
    );
}

/// Case 5, ollama/ollama#15704 (April 2026, so 0.21.0): a Proxmox LXC container of 32 GiB
/// with 512 MiB of swap, CPU only; memory.stat anon ~35 MiB and file ~21.2 GiB, MemAvailable
/// 31.9 GiB; gemma4:26b "requires 18.3 GiB". Ollama's free = memory.max − memory.current
/// counts the 21.2 GiB of page cache as used and refuses; the kernel would have reclaimed it.
#[test]
fn case_5_page_cache_counts_as_used_in_a_cgroup() {
    let file = gib(21.2);
    let host = HostMemory {
        mem_total_bytes: Some(32 << 30),
        mem_available_bytes: Some(gib(31.9)),
        swap_free_bytes: Some(512 * MIB),
        limit_bytes: Some(32 << 30),
        usage_bytes: Some(35 * MIB + file),
        usage_file_bytes: Some(file),
        ..HostMemory::default()
    };
    let r = refused(check(&release((0, 21, 0)), gib(18.3), &host));
    assert!(
        r.message
            .starts_with("model requires more system memory (18.3 GiB) than is available"),
        "{}",
        r.message
    );
    // 32 GiB − (35 MiB + 21.2 GiB) + 512 MiB of swap.
    assert!(r.message.ends_with("(11.3 GiB)"), "{}", r.message);
    assert!(r.arithmetic.contains("page cache"), "{}", r.arithmetic);
    // The reclaimable cache out of the sum, the model fits: 32 GiB − 35 MiB.
    assert!(r.arithmetic.contains("leaves 32.0 GiB"), "{}", r.arithmetic);
    // The same host read as MemAvailable (before 0.13.0) starts it.
    assert!(matches!(
        check(&release((0, 12, 11)), gib(18.3), &host),
        Verdict::Starts(_)
    ));
}

/// Case 5 as engines-host-ram.md reports a later comment: 0.32.9 in Docker on a 32 GiB host,
/// memory.max = max, memory.current 25.69 GiB of which 25.03 GiB file, MemAvailable ≈ 30 GiB.
/// Ollama still overwrites free with MemTotal − memory.current, but from 0.30.0 no check
/// refuses on it; with that reading a GPU load is made without mmap instead.
#[test]
fn case_5_in_the_llama_server_era_turns_mmap_off_instead() {
    let host = HostMemory {
        mem_total_bytes: Some(32 << 30),
        mem_available_bytes: Some(gib(30.0)),
        swap_free_bytes: Some(0),
        limit_bytes: None,
        usage_bytes: Some(gib(25.69)),
        usage_file_bytes: Some(gib(25.03)),
        ..HostMemory::default()
    };
    let r = release((0, 32, 9));
    let reading = free_memory(r.free_memory.value, &host).unwrap();
    assert_eq!(reading.free, (32 << 30) - gib(25.69));
    assert!(reading.how.contains("memory.max is max"), "{}", reading.how);
    assert!(matches!(check(&r, gib(18.3), &host), Verdict::NoCheck(_)));
    // A 13 GiB model: 6.3 GiB read as free is under 13 GiB + max(8 GB, 3.4 GB).
    assert!(mmap_off_for_host_pressure(
        gib(13.0),
        0,
        reading.free,
        32 << 30
    ));
    // Read as MemAvailable, it would have kept mmap.
    assert!(!mmap_off_for_host_pressure(
        gib(13.0),
        0,
        gib(30.0),
        32 << 30
    ));
}

#[test]
fn a_usage_above_the_limit_wraps_in_ollama() {
    let host = HostMemory {
        limit_bytes: Some(4 << 30),
        usage_bytes: Some(5 << 30),
        ..HostMemory::default()
    };
    let reading = free_memory(FreeMemory::CgroupMaxMinusCurrent, &host).unwrap();
    assert!(reading.wrapped);
    assert_eq!(reading.free, u64::MAX - (1 << 30) + 1);
    let v = check(&release((0, 20, 0)), 100 << 30, &host);
    assert!(
        matches!(&v, Verdict::Starts(a) if a.contains("wrapped")),
        "{v:?}"
    );
}

#[test]
fn unknown_free_memory_is_said() {
    let v = check(&release((0, 20, 0)), 1 << 30, &HostMemory::default());
    assert!(matches!(v, Verdict::Unknown(_)), "{v:?}");
    // memory.current without a limit or a MemTotal cannot be read either.
    let only_usage = HostMemory {
        usage_bytes: Some(1 << 30),
        ..HostMemory::default()
    };
    assert_eq!(
        free_memory(FreeMemory::CgroupMaxMinusCurrent, &only_usage),
        None
    );
}
