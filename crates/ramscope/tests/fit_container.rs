//! `ramscope fit` on real processes in their real memory cgroups: a running process read
//! with its container, a limit found up the cgroup hierarchy, and the cgroup test harness's
//! own parsing (tests/common/cgroup.rs). Servers killed and serving under limits:
//! tests/fit_cgroup.rs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cgroup;
use common::{clean_ramscope as ramscope, json_out as json, u, Loaded, MIB};

/// The memory-cgroup path of a process, as /proc/PID/cgroup prints it.
fn cgroup_path_of(pid: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let v1 = text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    });
    v1.or_else(|| {
        text.lines()
            .find_map(|l| l.strip_prefix("0::").map(String::from))
    })
}

const ALLOCATE_200_MIB: &str = r#"
buf = bytearray(200 * 1024 * 1024)
for i in range(0, len(buf), 4096):
    buf[i] = 1
ready("allocated")
"#;

#[test]
fn a_running_process_in_its_real_cgroup() {
    let home = tempfile::tempdir().unwrap();
    let child = Loaded::python(ALLOCATE_200_MIB);
    let pid = child.pid().to_string();
    let out = ramscope(&["fit", "--json", &pid], home.path());
    let fit = json(&out);
    // Its measured heap holds the 200 MiB, and no engine models python3.
    let anon = u(&fit["measured"]["split"]["anonymous"]["bytes"]);
    assert!(anon >= 200 * MIB, "{anon}");
    assert!(fit["estimate"].is_null());
    assert!(u(&fit["figures"]["steady_non_reclaimable"]["bytes"]) >= anon);
    // The cgroup is the child's (the test's own): its path as /proc says, and its limit as
    // the file fit names says.
    let cgroup = &fit["cgroup"];
    if let Some(path) = cgroup_path_of(&pid) {
        assert_eq!(cgroup["path"], path.as_str());
        assert_eq!(Some(path), cgroup_path_of("self"));
    }
    match cgroup["limit_file"].as_str() {
        Some(file) => {
            let text = std::fs::read_to_string(file).unwrap();
            let limit = if file.ends_with("memory.stat") {
                text.lines()
                    .find_map(|l| l.strip_prefix("hierarchical_memory_limit "))
                    .unwrap()
                    .trim()
                    .parse::<u64>()
                    .unwrap()
            } else {
                text.trim().parse::<u64>().unwrap()
            };
            assert_eq!(u(&cgroup["limit_bytes"]), limit);
        }
        None => assert!(cgroup["limit_bytes"].is_null()),
    }
    assert_eq!(
        out.status.code(),
        fit["exit_code"].as_i64().map(|c| c as i32)
    );
    // The same process in a limit below what it holds: it would not start.
    let out = ramscope(
        &["fit", "--json", "--memory-limit", "100Mi", &pid],
        home.path(),
    );
    let fit = json(&out);
    assert_eq!(fit["verdict"], "oom-at-load");
    assert_eq!(out.status.code(), Some(3));
    assert!(u(&fit["findings"][0]["needed_bytes"]) >= 200 * MIB);
    drop(child);
}

/// A command line checked from inside a cgroup with a limit reads that limit, up the
/// hierarchy: a child cgroup without one under a parent with 768 MiB. Needs a writable cgroup
/// v1 memory hierarchy (root); elsewhere it says so and checks nothing.
#[test]
fn a_limit_set_on_the_parent_cgroup_is_found() {
    let Some(own) = cgroup_path_of("self") else {
        eprintln!("skipped: no memory cgroup");
        return;
    };
    let base = PathBuf::from("/sys/fs/cgroup/memory").join(own.trim_start_matches('/'));
    let parent = base.join(format!("ramscope-fit-test-{}", std::process::id()));
    if std::fs::create_dir(&parent).is_err() {
        eprintln!(
            "skipped: {} is not writable (cgroup v1 as root needed)",
            base.display()
        );
        return;
    }
    let child = parent.join("server");
    let cleanup = Cleanup(vec![child.clone(), parent.clone()]);
    std::fs::create_dir(&child).unwrap();
    std::fs::write(
        parent.join("memory.limit_in_bytes"),
        (768 * MIB).to_string(),
    )
    .unwrap();

    // The process to check: ramscope itself, started inside the child cgroup.
    let home = tempfile::tempdir().unwrap();
    let procs = std::ffi::CString::new(
        child
            .join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ramscope"));
    cmd.args([
        "fit",
        "--json",
        "--node-memory",
        "1Ti",
        "--",
        "vllm",
        "serve",
        "Qwen/Qwen3-8B",
        "--max-model-len",
        "5120",
    ])
    .env_clear()
    .env("HOME", home.path());
    // Between fork and exec only async-signal-safe calls: "0" moves the writing process.
    let join = move || -> std::io::Result<()> {
        // SAFETY: a valid NUL-terminated path and a one-byte buffer; nothing allocates.
        unsafe {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
        }
        Ok(())
    };
    // SAFETY: `join` only makes system calls.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(join);
    }
    let out = cmd.output().unwrap();
    let fit = json(&out);
    assert_eq!(u(&fit["host"]["limit_bytes"]), 768 * MIB);
    let file = fit["cgroup"]["limit_file"].as_str().unwrap();
    assert!(
        Path::new(file) == parent.join("memory.limit_in_bytes") || file.ends_with("memory.stat"),
        "{file}"
    );
    assert!(fit["cgroup"]["path"].as_str().unwrap().ends_with("/server"));
    assert!(fit["sources"]["limit"]
        .as_str()
        .unwrap()
        .contains("ramscope's own memory cgroup"));
    // Qwen3-8B's ~2.8 GiB load peak does not fit in 768 MiB.
    assert_eq!(fit["verdict"], "oom-at-load");
    drop(cleanup);
}

/// Removes test cgroups, children first (they are empty once their processes exited).
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The harness's parsing of /proc/self/mountinfo and cgroup files, for both versions.
#[test]
fn cgroup_paths_and_counters_are_read() {
    let info = "30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n\
                31 25 0:27 /kubepods /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    let (root, mount) = cgroup::mount_of(info, |t, o| {
        t == "cgroup" && o.split(',').any(|x| x == "memory")
    })
    .expect("the v1 memory mount");
    assert_eq!(
        cgroup::join(&mount, &root, "/a/b"),
        Path::new("/sys/fs/cgroup/memory/a/b")
    );
    let (root, mount) = cgroup::mount_of(info, |t, _| t == "cgroup2").expect("the v2 mount");
    assert_eq!(
        cgroup::join(&mount, &root, "/kubepods/pod1"),
        Path::new("/sys/fs/cgroup/pod1")
    );
    assert_eq!(
        cgroup::field("under_oom 0\noom_kill 3\n", "oom_kill"),
        Some(3)
    );
    assert_eq!(cgroup::field("oom_kill_disable 0\n", "oom_kill"), None);
}
