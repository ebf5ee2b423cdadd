//! `measure --auto` finds llama.cpp and Ollama trees by their programs' names and arguments,
//! on real processes (a small C program built under those names).

mod common;

use std::path::Path;
use std::process::{Child, Command};

use common::json_of;

/// A program that, run as `NAME serve`, starts itself as `NAME runner …` and waits; run any
/// other way, it just waits.
const STAND_IN: &str = r#"
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "serve") == 0 && fork() == 0) {
        execl(argv[0], argv[0], "runner", "--model", "/models/blobs/sha256-0", (char *)0);
    }
    for (;;) pause();
}
"#;

fn build(dir: &Path, name: &str) -> std::path::PathBuf {
    let src = dir.join("stand_in.c");
    std::fs::write(&src, STAND_IN).unwrap();
    let bin = dir.join(name);
    let status = Command::new("cc")
        .arg("-O0")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("a C compiler (cc) is needed for this test");
    assert!(status.success());
    bin
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

fn start(bin: &Path, args: &[&str]) -> Killed {
    use std::os::unix::process::CommandExt;
    Killed(
        Command::new(bin)
            .args(args)
            .process_group(0)
            .spawn()
            .unwrap(),
    )
}

#[test]
fn llama_server_and_ollama_trees_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let llama = start(
        &build(dir.path(), "llama-server"),
        &["-m", "/models/x.gguf"],
    );
    let ollama = start(&build(dir.path(), "ollama"), &["serve"]);
    // Wait for Ollama's runner child.
    let mut tries = 0;
    while tries < 100 {
        let s = json_of(&["measure", "--json", &ollama.0.id().to_string()]);
        if s["processes"].as_array().unwrap().len() == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        tries += 1;
    }
    let snapshot = json_of(&["measure", "--auto", "--json"]);
    let procs = snapshot["processes"].as_array().unwrap();
    let find = |pid: u32| {
        procs
            .iter()
            .find(|p| p["pid"] == pid)
            .unwrap_or_else(|| panic!("PID {pid} not found by --auto: {snapshot}"))
    };
    let l = find(llama.0.id());
    assert_eq!(l["engine"], "llama.cpp");
    assert_eq!(l["role"], "api-server");
    let o = find(ollama.0.id());
    assert_eq!(o["engine"], "ollama");
    assert_eq!(o["role"], "api-server");
    let runner = procs
        .iter()
        .find(|p| p["ppid"] == ollama.0.id())
        .expect("the runner child is part of the tree");
    assert_eq!(runner["role"], "worker");
    assert_eq!(runner["engine"], "ollama");
}

#[test]
fn an_sglang_tree_is_found_with_its_scheduler() {
    // A stand-in `sglang.launch_server` module whose child takes SGLang's scheduler title.
    let server = common::StandIn::python(
        "sglang.launch_server",
        "import os, sys, time\nif os.fork() == 0:\n    os.execv('/bin/sleep', ['sglang::scheduler_TP0', '120'])\nprint('ready', flush=True)\ntime.sleep(120)\n",
        &["--model-path", "m"],
    );
    let pid = server.pid();
    let mut found = serde_json::Value::Null;
    for _ in 0..100 {
        found = json_of(&["measure", "--auto", "--json"]);
        let n = found["processes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["pid"] == pid || p["ppid"] == pid)
            .count();
        if n == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let procs = found["processes"].as_array().unwrap();
    let api = procs
        .iter()
        .find(|p| p["pid"] == pid)
        .expect("the launcher");
    assert_eq!(api["engine"], "sglang");
    assert_eq!(api["role"], "api-server");
    let scheduler = procs
        .iter()
        .find(|p| p["ppid"] == pid)
        .expect("the scheduler child");
    assert_eq!(scheduler["role"], "engine-core");
    assert_eq!(scheduler["engine"], "sglang");
}
