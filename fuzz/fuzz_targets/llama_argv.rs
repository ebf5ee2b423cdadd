#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ramscope::fuzz::llama_argv(data));
