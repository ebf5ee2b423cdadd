//! Builds the tracer library (crates/ramscope-trace) and embeds it in the `ramscope` binary, so
//! `cargo install` gives a `ramscope trace` that works without a second file to find.
//!
//! The library is built by a nested `cargo build --release` into this build's OUT_DIR: always
//! optimised (it runs inside traced programs), and with none of the outer build's wrappers
//! (clippy, coverage) or flags, which are for this crate, not for a library preloaded into
//! other programs.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let tracer = manifest.join("../ramscope-trace");
    for path in ["src", "Cargo.toml", "build.rs"] {
        println!("cargo:rerun-if-changed={}", tracer.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=RAMSCOPE_TRACE_PREBUILT");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let embedded = out.join("libramscope_trace.so");

    // A packager may build the library separately and point here.
    if let Ok(prebuilt) = env::var("RAMSCOPE_TRACE_PREBUILT") {
        std::fs::copy(&prebuilt, &embedded)
            .unwrap_or_else(|e| panic!("copying RAMSCOPE_TRACE_PREBUILT={prebuilt}: {e}"));
        println!(
            "cargo:rustc-env=RAMSCOPE_TRACE_EMBED={}",
            embedded.display()
        );
        return;
    }

    let target_dir = out.join("tracer-target");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("-p")
        .arg("ramscope-trace")
        .arg("--manifest-path")
        .arg(manifest.join("../../Cargo.toml"))
        .arg("--target")
        .arg(&target)
        .arg("--target-dir")
        .arg(&target_dir);
    // Its dependencies (libc, cc) are also this crate's, so the outer build has fetched them;
    // CARGO_NET_OFFLINE passes through when the outer build is offline.
    // Only what a plain build needs: the outer build's CARGO_*/RUSTC_* settings (wrappers,
    // target dir, encoded flags) would leak into the nested one.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let outer = key.starts_with("CARGO_")
            && !matches!(
                key.as_str(),
                "CARGO_HOME" | "CARGO_NET_OFFLINE" | "CARGO_MAKEFLAGS"
            );
        let wrapper = matches!(
            key.as_str(),
            "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "RUSTFLAGS"
                | "RUSTDOCFLAGS"
                | "CARGO_ENCODED_RUSTFLAGS"
        );
        if outer || wrapper {
            cmd.env_remove(&key);
        }
    }
    let status = cmd
        .status()
        .expect("running cargo to build the tracer library");
    assert!(
        status.success(),
        "building crates/ramscope-trace failed (see above)"
    );
    let built = target_dir
        .join(&target)
        .join("release/libramscope_trace.so");
    std::fs::copy(&built, &embedded).unwrap_or_else(|e| panic!("copying {}: {e}", built.display()));
    println!(
        "cargo:rustc-env=RAMSCOPE_TRACE_EMBED={}",
        embedded.display()
    );
}
