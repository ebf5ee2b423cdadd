//! Compiles the C part of the tracer: thread-local state in the initial-exec TLS model and the
//! `dlsym` trampoline (see src/shim.c for why these two cannot be Rust).

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    cc::Build::new()
        .file("src/shim.c")
        .flag_if_supported("-fvisibility=hidden")
        .opt_level(2)
        .compile("ramscope_trace_shim");
}
