//! Tests of [`super`]: fake trees and real child processes.
use super::*;
use std::io::{BufRead, BufReader};

/// `python3` on PATH, when there is one (these tests need an interpreter).
fn python3() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("python3"))
        .find(|p| p.is_file())
}

fn lookup<'a>(python: &'a Path, name: &'a str, env: ChildEnv, cwd: Option<&'a Path>) -> Lookup<'a> {
    Lookup {
        python,
        name,
        env,
        cwd,
        path0: None,
        timeout: LOOKUP_TIMEOUT,
    }
}

fn pythonpath(dir: &Path) -> ChildEnv {
    ChildEnv::Inherit(vec![("PYTHONPATH".into(), dir.as_os_str().to_os_string())])
}

fn message(r: Result<PathBuf, ScanError>) -> String {
    match r {
        Ok(p) => panic!("expected an error, got {}", p.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn installed_finds_a_package_on_pythonpath() {
    let Some(py) = python3() else {
        eprintln!("no python3 on PATH: skipped");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    // A unique name: the interpreter running the tests may have a real vllm.
    let name = "ramscope_fake_vllm";
    let pkg = tmp.path().join(name);
    std::fs::create_dir_all(&pkg).expect("mkdir");
    std::fs::write(pkg.join("__init__.py"), "raise SystemExit('imported!')\n").expect("write");
    let found = lookup(&py, name, pythonpath(tmp.path()), None)
        .run()
        .expect("found");
    assert_eq!(found, pkg);
    // Found without importing it (its __init__ would have stopped the lookup).
    // A relative PYTHONPATH entry resolves against the working directory.
    let rel = lookup(&py, name, pythonpath(Path::new(".")), Some(tmp.path()))
        .run()
        .expect("found");
    assert_eq!(rel.canonicalize().ok(), pkg.canonicalize().ok());
    // The real vllm of the real environment, the same way: the default name.
    let default = lookup(&py, PACKAGE, pythonpath(tmp.path()), None).run();
    if let Ok(p) = default {
        assert!(p.ends_with(PACKAGE), "{}", p.display());
    }
}

#[test]
fn installed_reports_a_missing_package() {
    let Some(py) = python3() else {
        eprintln!("no python3 on PATH: skipped");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let name = "ramscope_no_such_package";
    let err = message(lookup(&py, name, pythonpath(tmp.path()), None).run());
    assert!(
        err.contains("cannot import ramscope_no_such_package: it is not installed"),
        "{err}"
    );
    // A package in the working directory is not what the environment imports.
    let pkg = tmp.path().join(name);
    std::fs::create_dir_all(&pkg).expect("mkdir");
    std::fs::write(pkg.join("__init__.py"), "").expect("write");
    let err = message(lookup(&py, name, ChildEnv::Inherit(Vec::new()), Some(tmp.path())).run());
    assert!(err.contains("not installed"), "{err}");
    // ... unless the caller says it was the server's first sys.path entry.
    let mut with_path0 = lookup(&py, name, ChildEnv::Inherit(Vec::new()), Some(tmp.path()));
    with_path0.path0 = Some(tmp.path());
    assert_eq!(with_path0.run().expect("found"), pkg);
    // A directory without __init__.py is only a namespace.
    let ns = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(ns.path().join(name)).expect("mkdir");
    let err = message(lookup(&py, name, pythonpath(ns.path()), None).run());
    assert!(err.contains("without __init__.py"), "{err}");
    // A module, not a package.
    let m = tempfile::tempdir().expect("tempdir");
    std::fs::write(m.path().join(format!("{name}.py")), "").expect("write");
    let err = message(lookup(&py, name, pythonpath(m.path()), None).run());
    assert!(err.contains("a single module"), "{err}");
}

#[test]
fn interpreters_that_are_not_there_or_not_python() {
    let err = message(installed(Some(Path::new("/nonexistent/bin/python"))));
    assert_eq!(err, "/nonexistent/bin/python does not exist");
    let err = message(
        lookup(
            Path::new("ramscope-no-such-python"),
            PACKAGE,
            ChildEnv::Inherit(Vec::new()),
            None,
        )
        .run(),
    );
    assert!(
        err.starts_with("ramscope-no-such-python is not on PATH"),
        "{err}"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = message(installed(Some(tmp.path())));
    assert!(err.contains("not a virtual environment"), "{err}");
    // A "python" that fails, one that says nothing useful, one that hangs.
    let script = |name: &str, body: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write");
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        p
    };
    let failing = script(
        "failing",
        "echo 'Traceback' >&2; echo 'boom: no' >&2; exit 3",
    );
    let err = message(lookup(&failing, PACKAGE, ChildEnv::Inherit(Vec::new()), None).run());
    assert!(
        err.contains("failed to look up vllm (exit status: 3): boom: no"),
        "{err}"
    );
    let chatty = script("chatty", "yes | head -c 1000000; exit 0");
    let err = message(lookup(&chatty, PACKAGE, ChildEnv::Inherit(Vec::new()), None).run());
    assert!(err.contains("is it a Python interpreter?"), "{err}");
    let hung = script("hung", "exec sleep 30");
    let mut slow = lookup(&hung, PACKAGE, ChildEnv::Inherit(Vec::new()), None);
    slow.timeout = Duration::from_millis(300);
    let t = Instant::now();
    let err = message(slow.run());
    assert!(err.contains("did not answer within 0.3 s"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10));
    // A virtual environment directory: its bin/python.
    let venv = tmp.path().join("venv");
    std::fs::create_dir_all(venv.join("bin")).expect("mkdir");
    std::fs::copy(&failing, venv.join("bin/python")).expect("copy");
    let err = message(installed(Some(&venv)));
    assert!(err.contains("venv/bin/python failed"), "{err}");
}

/// Held by tests that start processes with a fake vllm mapped, and by the test that looks
/// at the test process's own children.
static FAKE_SERVERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FAKE_SERVERS.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn of_pid_errors() {
    let _serial = serial();
    let me = std::process::id();
    // Other tests of this binary may have Python children at this moment, which of_pid
    // looks through: either answer is a clear one-line refusal.
    let err = message(of_pid(me));
    assert!(
        (err.contains("is not a Python process") || err.contains("vllm")) && !err.contains('\n'),
        "{err}"
    );
    // PIDs above pid_max do not exist.
    let err = message(of_pid(u32::MAX - 1));
    assert_eq!(err, format!("no process with PID {}", u32::MAX - 1));
}

/// A child that dies with the test.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Python process that imports a fake vllm from `site` and maps its `_C.abi3.so` (when
/// `map`), under `sh` (when `wrapped`).
fn fake_server(py: &Path, site: &Path, map: bool, wrapped: bool) -> Child {
    let script = "import sys, mmap, vllm\n\
        if sys.argv[1] == 'map':\n\
        \x20   f = open(vllm.__path__[0] + '/_C.abi3.so', 'rb')\n\
        \x20   m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n\
        print('ready', flush=True)\n\
        sys.stdin.read()\n";
    let mode = if map { "map" } else { "nomap" };
    let mut cmd = if wrapped {
        let mut sh = Command::new("/bin/sh");
        // Not the last command, so the shell stays as the parent.
        sh.arg("-c")
            .arg("\"$0\" -c \"$1\" \"$2\"; true")
            .arg(py)
            .arg(script)
            .arg(mode);
        sh
    } else {
        let mut py = Command::new(py);
        py.arg("-c").arg(script).arg(mode);
        py
    };
    let mut child = Child(
        cmd.env("PYTHONPATH", site)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "ready");
    child
}

#[test]
fn of_pid_finds_the_package_of_a_running_python() {
    let Some(py) = python3() else {
        eprintln!("no python3 on PATH: skipped");
        return;
    };
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let site = tmp.path().join("site-packages");
    let pkg = site.join("vllm");
    std::fs::create_dir_all(&pkg).expect("mkdir");
    std::fs::write(pkg.join("__init__.py"), "").expect("write");
    std::fs::write(pkg.join("_C.abi3.so"), vec![0x7fu8; 4096]).expect("write");
    let want = pkg.canonicalize().ok();
    for (map, wrapped) in [(true, false), (false, false), (true, true), (false, true)] {
        // Mapped: read from its maps (or its child's); not mapped: its own interpreter
        // (or its Python child's) is asked, with its PYTHONPATH.
        let child = fake_server(&py, &site, map, wrapped);
        let found = of_pid(child.0.id()).expect("found");
        assert_eq!(
            found.canonicalize().ok(),
            want,
            "map {map} wrapped {wrapped}"
        );
        let mut maps = Vec::new();
        let read = ProcFs::default().read_into(child.0.id(), "maps", &mut maps);
        assert!(read.is_ok());
        assert_eq!(mapped_package(&maps, PACKAGE).is_some(), map && !wrapped);
    }
}

#[test]
fn maps_lines() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    // A checkout holding the package; vLLM's kernel cache; an installed copy.
    for d in [
        "src/vllm/vllm/sub",
        "home/.cache/vllm/torch_compile_cache",
        "sp/site-packages/vllm",
    ] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::write(root.join("src/vllm/vllm/__init__.py"), "").expect("write");
    let r = root.display();
    let maps = format!(
        "7f00-7f01 r--p 00000000 08:01 1 {r}/home/.cache/vllm/torch_compile_cache/k.so\n\
         7f01-7f02 r-xp 00000000 08:01 2 {r}/src/vllm/vllm/_C.abi3.so\n\
         7f02-7f03 r-xp 00001000 08:01 2 {r}/src/vllm/vllm/_C.abi3.so\n\
         7f03-7f04 rw-p 00000000 00:00 0 \n\
         7f04-7f05 r--p 00000000 08:01 3 {r}/sp/site-packages/vllm/cumem allocator.so (deleted)\n\
         7f05-7f06 rw-p 00000000 00:00 0                          [heap]\n"
    );
    assert_eq!(
        mapped_package(maps.as_bytes(), "vllm"),
        Some(root.join("src/vllm/vllm"))
    );
    assert_eq!(
        mapped_path(format!("1-2 r--p 0 08:01 3   {r}/a b.so (deleted)").as_bytes()),
        Some(root.join("a b.so"))
    );
    let only_cache = maps.lines().next().expect("line").to_string();
    assert_eq!(mapped_package(only_cache.as_bytes(), "vllm"), None);
    let only_site = maps.lines().nth(4).expect("line").to_string();
    assert_eq!(
        mapped_package(only_site.as_bytes(), "vllm"),
        Some(root.join("sp/site-packages/vllm"))
    );
    // Beside site-packages: a torch library tells where the environment's packages are.
    std::fs::write(root.join("sp/site-packages/vllm/__init__.py"), "").expect("write");
    let torch = format!("1-2 r--p 0 08:01 3 {r}/sp/site-packages/torch/lib/libtorch.so\n");
    assert_eq!(
        beside_site_packages(torch.as_bytes(), "vllm"),
        Some(root.join("sp/site-packages/vllm"))
    );
}

#[test]
fn first_sys_path_of_command_lines() {
    let cwd = Path::new("/work");
    let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let f = |a: &[&str]| first_sys_path(&argv(a), Some(cwd));
    assert_eq!(
        f(&["python3", "-m", "vllm.entrypoints.openai.api_server"]),
        Some(cwd.into())
    );
    assert_eq!(
        f(&["python3", "-u", "-W", "ignore", "-c", "x"]),
        Some(cwd.into())
    );
    assert_eq!(f(&["python3", "-Wignore", "-m", "x"]), Some(cwd.into()));
    assert_eq!(f(&["python3", "-Im", "x"]), None);
    assert_eq!(
        f(&["python3", "-X", "dev", "/nonexistent/bin/vllm", "serve"]),
        Some("/nonexistent/bin".into())
    );
    assert_eq!(f(&["python3", "serve.py"]), Some("/work".into()));
    assert_eq!(f(&["python3"]), None);
    assert_eq!(
        parse_environ(b"A=1\0PATH=/bin:/usr/bin\0=x\0B=\0"),
        vec![
            ("A".into(), "1".into()),
            ("PATH".into(), "/bin:/usr/bin".into()),
            ("B".into(), "".into())
        ]
    );
}
