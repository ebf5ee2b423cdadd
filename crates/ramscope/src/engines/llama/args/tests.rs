use super::*;

fn p(line: &str) -> LlamaArgs {
    parse_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn err(line: &str) -> String {
    match parse_str(line) {
        Ok(a) => panic!("{line} parsed: {a:?}"),
        Err(e) => e.to_string(),
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn whole_command_lines_and_flags_alone() {
    for line in [
        "llama-server -m /m.gguf -c 4096",
        "/opt/llama/bin/llama-server -m /m.gguf -c 4096",
        "./build/bin/llama-server -m /m.gguf -c 4096",
        "env LLAMA_ARG_PORT=1 llama-server -m /m.gguf -c 4096",
        "-m /m.gguf -c 4096",
        "-m /m.gguf \\\n  --ctx_size 4096",
    ] {
        let a = p(line);
        assert_eq!(a.model.as_deref(), Some("/m.gguf"), "{line}");
        assert_eq!(a.ctx_size, Some(4096), "{line}");
    }
    let a = p("CUDA_VISIBLE_DEVICES=0 LLAMA_ARG_PORT=9 /x/llama-server -m m");
    assert_eq!(a.program.as_deref(), Some("/x/llama-server"));
    assert_eq!(a.env[0], ("CUDA_VISIBLE_DEVICES".into(), "0".into()));
    assert_eq!(a.given, vec!["--model"]);
}

#[test]
fn every_spelling_of_a_pair() {
    assert_eq!(p("-kvo").kv_offload, Some(true));
    assert_eq!(p("--kv-offload").kv_offload, Some(true));
    assert_eq!(p("-nkvo").kv_offload, Some(false));
    assert_eq!(p("--no-kv-offload").kv_offload, Some(false));
    assert_eq!(p("-nr").repack, Some(false));
    assert_eq!(p("-no-kvu").kv_unified, Some(false));
    assert_eq!(p("--no-mmproj").mmproj_auto, Some(false));
    // The last of a repeated flag wins.
    assert_eq!(p("-nkvo -kvo").kv_offload, Some(true));
    assert_eq!(p("-c 1 -c 2").ctx_size, Some(2));
    assert_eq!(p("-nkvo").given, vec!["--no-kv-offload"]);
}

#[test]
fn values_are_validated() {
    let a = p("-ngl auto");
    assert_eq!(a.gpu_layers, Some(GpuLayers::Auto));
    assert_eq!(p("-ngl all").gpu_layers, Some(GpuLayers::All));
    assert_eq!(p("-ngl 99").gpu_layers, Some(GpuLayers::Count(99)));
    assert_eq!(p("-ngl -1").gpu_layers, Some(GpuLayers::Auto));
    assert_eq!(p("-ngl -2").gpu_layers, Some(GpuLayers::All));
    assert_eq!(
        p("-ctk q8_0 -ctv iq4_nl").cache_type_v.as_deref(),
        Some("iq4_nl")
    );
    assert!(err("-ctk q8").contains("one of f32, f16"));
    assert!(err("-ctk Q8_0").contains("\"Q8_0\""));
    assert_eq!(p("-cram -1").cache_ram_mib, Some(-1));
    assert_eq!(p("-cram 0").cache_ram_mib, Some(0));
    assert_eq!(p("--cache-ram 4096").cache_ram_mib, Some(4096));
    assert_eq!(p("-np -1").parallel, Some(-1));
    assert!(err("-np 0").contains("other than 0"));
    assert!(err("-b 0").contains("from 1"));
    assert!(err("-c -5").contains("from 0"));
    assert!(err("-c 4k").contains("\"4k\""));
    assert_eq!(
        p("--load-mode mmap+mlock").load_mode,
        Some(LoadMode::MmapMlock)
    );
    assert_eq!(p("-lm dio").load_mode, Some(LoadMode::DirectIo));
    assert!(err("-lm mapped").contains("mmap+mlock"));
    assert_eq!(p("-lzm off").lazy_mode, Some(LazyMode::Off));
    assert_eq!(p("-fit off").fit, Some(false));
    assert!(err("-fit maybe").contains("on or off"));
    assert_eq!(p("-fitt 512,1024").fit_target_mib, Some(vec![512, 1024]));
    assert_eq!(p("-mmdev none").mmproj_offload, Some(false));
}

#[test]
fn huge_numbers_are_refused_not_wrapped() {
    for line in [
        "-c 2147483648",
        "-c 99999999999999999999",
        "-ngl 4294967297",
        "-cram 9223372036854775808",
        "-np 2147483648",
        "-fitt 18446744073709551615",
    ] {
        assert!(err(line).contains("is not"), "{line}");
    }
    assert_eq!(p("-c 2147483647").ctx_size, Some(2_147_483_647));
}

#[test]
fn flash_attention_with_and_without_a_value() {
    assert_eq!(p("-fa on").flash_attn, Some(FlashAttn::On));
    assert_eq!(p("-fa off").flash_attn, Some(FlashAttn::Off));
    assert_eq!(p("--flash-attn auto").flash_attn, Some(FlashAttn::Auto));
    assert_eq!(p("-fa -1").flash_attn, Some(FlashAttn::Auto));
    // Older releases: a bare switch, followed by another flag or by nothing.
    let a = p("-fa -c 4096");
    assert_eq!(a.flash_attn, Some(FlashAttn::On));
    assert_eq!(a.ctx_size, Some(4096));
    assert!(a.notes.iter().any(|n| n.contains("older releases")));
    assert_eq!(p("-c 1 -fa").flash_attn, Some(FlashAttn::On));
}

#[test]
fn old_load_flags_combine_as_they_did_before_load_mode() {
    let mode = |line: &str| p(line).load_mode;
    assert_eq!(mode("--no-mmap"), Some(LoadMode::None));
    assert_eq!(mode("--mmap"), Some(LoadMode::Mmap));
    // mmap was on by default, so --mlock locked the mapping.
    assert_eq!(mode("--mlock"), Some(LoadMode::MmapMlock));
    assert_eq!(mode("--mlock --no-mmap"), Some(LoadMode::Mlock));
    assert_eq!(mode("--no-mmap --mlock"), Some(LoadMode::Mlock));
    assert_eq!(mode("-dio"), Some(LoadMode::DirectIo));
    assert_eq!(mode("--direct-io --mmap"), Some(LoadMode::DirectIo));
    assert_eq!(mode("-ndio --no-mmap"), Some(LoadMode::None));
    let a = p("--mlock");
    assert!(a
        .notes
        .iter()
        .any(|n| n.contains("refuses") && n.contains("mmap+mlock")));
    assert_eq!(a.given, vec!["--mlock"]);
}

#[test]
fn old_load_flags_beside_load_mode_assign_the_whole_mode() {
    // Only releases with --load-mode accepted both: there the last flag set the mode.
    assert_eq!(
        p("--load-mode mmap --mlock").load_mode,
        Some(LoadMode::Mlock)
    );
    assert_eq!(
        p("--mlock --load-mode mmap").load_mode,
        Some(LoadMode::Mmap)
    );
    assert_eq!(p("-lm mlock --no-mmap").load_mode, Some(LoadMode::None));
}

#[test]
fn unknown_flags_and_stray_words_are_one_line() {
    assert_eq!(
        err("--ctx-sise 4096"),
        "unknown llama-server flag --ctx-sise (did you mean --ctx-size?)"
    );
    assert_eq!(
        err("--bogus-flag"),
        "unknown llama-server flag --bogus-flag"
    );
    assert_eq!(
        err("--ctx-size=4096"),
        "llama-server does not read \"--ctx-size=4096\": write --ctx-size 4096 (a space, not '=')"
    );
    assert_eq!(err("-c"), "llama-server flag -c needs a value");
    assert!(err("-m a b").contains("unexpected argument \"b\""));
    assert!(err("python -m x").contains("unexpected argument \"python\""));
    assert!(err("-m 'x").contains("quotes"));
    assert_eq!(suggest("--n-gpu-layer").as_deref(), Some("--n-gpu-layers"));
    assert_eq!(suggest("--ubatch").as_deref(), Some("--ubatch-size"));
    // A hostile word gets no suggestion, quickly.
    let long = format!("--{}", "\u{92}".repeat(40_000));
    assert_eq!(suggest(&long), None);
}

#[test]
fn a_value_is_the_next_word_whatever_it_looks_like() {
    // llama.cpp takes the next word: a model named like a flag is still the model.
    assert_eq!(p("-m -c").model.as_deref(), Some("-c"));
    // And a number flag given a flag fails on the value, as llama-server does.
    assert!(err("-c -m x").contains("\"-m\""));
}

#[test]
fn lists_add_up() {
    let a = p(
        "--lora 'a.gguf,\"b,c.gguf\"' --lora-scaled d.gguf:0.5 -ot 'exps=CPU,attn=CPU' -ot x=CUDA0",
    );
    assert_eq!(a.lora, vec!["a.gguf", "b,c.gguf", "d.gguf"]);
    assert_eq!(a.override_tensor, vec!["exps=CPU", "attn=CPU", "x=CUDA0"]);
    assert!(err("--lora-scaled d.gguf").contains("FNAME:SCALE"));
    assert!(err("-ot exps").contains("pattern=buffer type"));
    let s = p("--spec-type ngram-mod,draft-mtp --spec-default");
    assert_eq!(s.spec_types, vec!["ngram-mod", "draft-mtp", "ngram-mod"]);
    assert!(err("--spec-type ngram").contains("speculative types"));
}

#[test]
fn removed_and_unmodelled_flags_say_so() {
    let a = p("--draft-max 16 --rpc host:1 --port 8080");
    assert!(a.notes.iter().any(|n| n.contains("--spec-draft-n-max")));
    assert!(a.notes.iter().any(|n| n.contains("--rpc: not modelled")));
    assert_eq!(a.notes.len(), 2, "{:?}", a.notes);
    assert_eq!(a.given, vec!["--draft", "--rpc", "--port"]);
}

#[test]
fn the_environment_fills_what_the_line_left_unset() {
    let mut a = p("-m m -c 4096");
    a.apply_env(&env(&[
        ("LLAMA_ARG_CTX_SIZE", "8192"),
        ("LLAMA_ARG_N_PARALLEL", "2"),
        ("LLAMA_ARG_NO_KV_OFFLOAD", "0"),
        ("LLAMA_ARG_NO_HOST", "1"),
        ("LLAMA_ARG_SWA_FULL", "0"),
        ("LLAMA_ARG_UNRELATED", "x"),
    ]))
    .unwrap();
    assert_eq!(a.ctx_size, Some(4096), "the command line wins");
    assert_eq!(a.parallel, Some(2));
    // LLAMA_ARG_NO_… means off whatever it holds.
    assert_eq!(a.kv_offload, Some(false));
    assert!(a.no_host);
    // A switch's variable counts only when truthy.
    assert!(!a.swa_full);
    assert!(a
        .notes
        .iter()
        .any(|n| n.contains("LLAMA_ARG_CTX_SIZE") && n.contains("wins")));
    assert!(a
        .notes
        .iter()
        .any(|n| n.contains("LLAMA_ARG_N_PARALLEL") && n.contains("sets --parallel")));
}

#[test]
fn assignments_on_the_line_are_the_environment_too() {
    let a = p("LLAMA_ARG_CTX_SIZE=8192 LLAMA_ARG_N_GPU_LAYERS=all llama-server -m m");
    assert_eq!(a.ctx_size, Some(8192));
    assert_eq!(a.gpu_layers, Some(GpuLayers::All));
    // The line's own assignment beats the inherited environment.
    let mut b = a.clone();
    b.apply_env(&env(&[("LLAMA_ARG_CTX_SIZE", "1")])).unwrap();
    assert_eq!(b.ctx_size, Some(8192));
    // A flag beats both.
    assert_eq!(
        p("LLAMA_ARG_CTX_SIZE=8192 llama-server -c 2").ctx_size,
        Some(2)
    );
}

#[test]
fn environment_lists_come_first_and_bad_values_are_errors() {
    let mut a = p("-ot b=CPU");
    a.apply_env(&env(&[("LLAMA_ARG_OVERRIDE_TENSOR", "a=CPU")]))
        .unwrap();
    assert_eq!(a.override_tensor, vec!["a=CPU", "b=CPU"]);
    let mut b = p("-m m");
    let e = b
        .apply_env(&env(&[("LLAMA_ARG_CTX_SIZE", "lots")]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "llama-server LLAMA_ARG_CTX_SIZE: \"lots\" is not a whole number from 0 to 2147483647"
    );
    let mut c = p("-m m");
    assert!(c
        .apply_env(&env(&[("LLAMA_ARG_KV_OFFLOAD", "sometimes")]))
        .is_err());
}

#[test]
fn old_load_variables() {
    let mode = |vars: &[(&str, &str)]| {
        let mut a = p("-m m");
        a.apply_env(&env(vars)).unwrap();
        a.load_mode
    };
    assert_eq!(mode(&[("LLAMA_ARG_MLOCK", "1")]), Some(LoadMode::MmapMlock));
    assert_eq!(
        mode(&[("LLAMA_ARG_MLOCK", "1"), ("LLAMA_ARG_NO_MMAP", "1")]),
        Some(LoadMode::Mlock)
    );
    assert_eq!(mode(&[("LLAMA_ARG_MLOCK", "0")]), None);
    assert_eq!(mode(&[("LLAMA_ARG_MMAP", "off")]), Some(LoadMode::None));
    // This release's variable wins over the old ones.
    assert_eq!(
        mode(&[("LLAMA_ARG_LOAD_MODE", "mmap"), ("LLAMA_ARG_MLOCK", "1")]),
        Some(LoadMode::Mmap)
    );
    // A load flag on the line beats any of them.
    let mut a = p("--no-mmap");
    a.apply_env(&env(&[("LLAMA_ARG_LOAD_MODE", "dio")]))
        .unwrap();
    assert_eq!(a.load_mode, Some(LoadMode::None));
}

#[test]
fn csv_follows_llama_cpp() {
    assert_eq!(csv("a,b"), vec!["a", "b"]);
    assert_eq!(csv("\"a,b\",c"), vec!["a,b", "c"]);
    assert_eq!(csv("\"x\"\"y\""), vec!["x\"y"]);
    assert_eq!(csv("a\"b"), vec!["a\"b"]);
    assert_eq!(csv(""), vec![""]);
}

#[test]
fn hostile_values_are_errors_not_panics() {
    let values = [
        "",
        "-",
        "\0",
        "é",
        "\u{202e}",
        "99999999999999999999",
        "-99999999999999999999",
        "1e400",
        ",,,",
        "\"",
        "=",
        ":",
        "a:b:c",
        "18446744073709551615",
        "-2147483649",
    ];
    let long = "x".repeat(65536);
    for flag in FLAGS {
        for spelling in flag.names().chain(flag.negatives()) {
            for v in values.iter().copied().chain([long.as_str()]) {
                let argv = vec![spelling.to_string(), v.to_string(), v.to_string()];
                let _ = parse(&argv);
                if let Some(var) = flag.env {
                    let mut a = LlamaArgs::default();
                    let _ = a.apply_env(&env(&[(var, v)]));
                }
            }
        }
    }
    let words: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    let _ = parse(&words);
}
