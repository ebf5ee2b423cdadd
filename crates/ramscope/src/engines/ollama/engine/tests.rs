use super::*;
use crate::engines::ollama::test_util::{of_size, tiny_shape, write, FakeStore};
use crate::gguf::builder::LlamaShape;

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(String::from).collect()
}

#[test]
fn the_registry_finds_ollama_by_its_command_line() {
    let e = crate::engines::for_command(&words("OLLAMA_NUM_PARALLEL=2 /usr/bin/ollama serve"));
    assert_eq!(e.name(), "ollama");
    assert_eq!(
        crate::engines::named("ollama").map(|e| e.title()),
        Some("Ollama")
    );
}

#[test]
fn releases_are_every_version_read() {
    assert_eq!(Ollama.release("0.32.7").as_deref(), Some("0.32.7"));
    assert_eq!(Ollama.release("v0.9.6").as_deref(), Some("0.9.6"));
    assert_eq!(Ollama.release("0.40.0"), None);
    assert_eq!(Ollama.read_release("0.40.0").unwrap_err().used, "0.32.15");
    assert!(Ollama.releases().contains(&"0.30.0".to_string()));
}

#[test]
fn a_serve_line_without_a_model_says_how_to_name_one() {
    let launch = Ollama.parse(&words("ollama serve")).unwrap();
    assert!(launch.resolve_model(&|_| None).is_none());
    let err = launch
        .list(&Model::default_model(), &Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains(MODEL_VARIABLE), "{err}");
}

#[test]
fn resolve_model_reads_the_store_named_in_the_line() {
    let store = FakeStore::new();
    let path = store.root().join("m.gguf");
    write(&tiny_shape(), &path);
    store.pull_file("library/tiny", "1b", &path, &[]);
    let line = format!(
        "OLLAMA_MODELS={} RAMSCOPE_OLLAMA_MODEL=tiny:1b ollama serve",
        store.root().display()
    );
    let launch = Ollama.parse(&words(&line)).unwrap();
    let model = launch.resolve_model(&|_| None).unwrap().unwrap();
    assert_eq!(model.name, "tiny:1b");
    assert_eq!(model.config.num_layers, 2);
    // A name not in the store is one error naming where it looked.
    let missing = Ollama
        .parse(&words(&format!(
            "OLLAMA_MODELS={} ollama run nope",
            store.root().display()
        )))
        .unwrap();
    let err = missing
        .resolve_model(&|_| None)
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(err.contains("not in the Ollama store"), "{err}");
}

// ---- The user cases of docs/ollama-host-ram.md §8 that need the estimate. ----

use crate::attribute::Category;
use crate::footprint::Phase;
use crate::gpu::Gpu;

const GB: f64 = 1e9;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Pulls `shape` into a fake store as `library/NAME:TAG` (a sparse file of the full size),
/// with a params layer when given.
fn pull(store: &FakeStore, name: &str, tag: &str, shape: &LlamaShape, params: Option<&str>) {
    let path = store.root().join(format!("{name}.gguf"));
    write(shape, &path);
    let extra: Vec<(&str, &[u8])> = params
        .map(|p| vec![("application/vnd.ollama.image.params", p.as_bytes())])
        .unwrap_or_default();
    store.pull_file(&format!("library/{name}"), tag, &path, &extra);
}

/// Estimates an Ollama command line against `store`, as `ramscope estimate` does.
fn estimate(store: &FakeStore, line: &str, options: Options) -> Estimate {
    let line = format!("OLLAMA_MODELS={} {line}", store.root().display());
    let launch = Ollama
        .parse(&Ollama.split_command_line(&line).unwrap())
        .unwrap();
    let model = launch.resolve_model(&|_| None).unwrap().unwrap();
    crate::estimate::estimate(&model, &*launch, &options).unwrap()
}

fn on_gpu(gpu: &str, release: &str) -> Options {
    Options {
        release: Some(release.into()),
        device: Device::Cuda,
        gpu: Gpu::parse(gpu).unwrap(),
        ..Options::default()
    }
}

fn runner(e: &Estimate) -> &ProcessEstimate {
    e.process(Role::Worker).expect("a runner process")
}

/// Steady anonymous and pinned bytes of one runner (what RSS shows as anonymous).
fn anon(p: &ProcessEstimate) -> u64 {
    p.components
        .iter()
        .filter(|c| c.phase == Phase::Steady)
        .filter(|c| matches!(c.category, Category::Heap | Category::Pinned))
        .map(|c| c.bytes)
        .sum()
}

/// gemma4:12b as ollama/ollama#18264 describes it: 48 layers (49 with the output) and a
/// 262144 × 3840 Q6_K embedding table, the 787 MiB `CPU_Mapped` llama.cpp reported.
fn gemma4_12b() -> LlamaShape {
    LlamaShape {
        name: "gemma4-12b-shape".into(),
        layers: 48,
        hidden: 3840,
        heads: 16,
        kv_heads: 8,
        ffn: 15360,
        vocab: 262_144,
        ctx: 131_072,
        type_id: 12,
        embd_type: 14,
    }
}

/// Case 1, ollama/ollama#18264: gemma4:12b fully on a 16 GB GPU, NUM_PARALLEL=1, on the
/// llama-server runners. The runner held 787 MiB of mapped embeddings, its prompt cache
/// reached 7377 MiB of the 8192 MiB default ("27 prompts"), RSS 9.4 GB of which 8.3 GB
/// anonymous after 25 h; `ollama ps` showed none of it. Capped with LLAMA_ARG_CACHE_RAM=1024
/// the runner stayed at 1.6 GB.
#[test]
fn case_1_the_prompt_cache_grows_outside_ollamas_accounting() {
    let store = FakeStore::new();
    pull(&store, "gemma4", "12b", &gemma4_12b(), None);
    let line = "OLLAMA_NUM_PARALLEL=1 OLLAMA_MAX_LOADED_MODELS=1 ollama run gemma4:12b";
    let e = estimate(&store, line, on_gpu("16GiB", "0.32.15"));
    let r = runner(&e);
    assert_eq!((r.title.as_str(), r.count), ("llama-server", 1));
    // Only the embedding table stays on the host, mapped: llama.cpp's 787 MiB CPU_Mapped.
    let mapped = r.component("weights.mapped").unwrap();
    assert_eq!(mapped.bytes / MIB, 787);
    // The prompt cache: Ollama passes no --cache-ram, so llama.cpp's 8192 MiB default caps
    // it, and what the user saw (7377 MiB) is under that cap.
    let cache = r.component("prompt_cache").unwrap();
    assert_eq!(cache.phase, Phase::Growth);
    assert_eq!(cache.bytes, 8192 * MIB);
    assert!(7377 * MIB <= cache.bytes);
    assert!(cache
        .knob
        .as_deref()
        .unwrap_or("")
        .contains("LLAMA_ARG_CACHE_RAM"));
    // Anonymous memory with the cache at the user's 7377 MiB: within 15% of the 8.3 GB seen.
    let at_report = (anon(r) + 7377 * MIB) as f64;
    assert!(
        (at_report - 8.3 * GB).abs() <= 0.15 * 8.3 * GB,
        "steady anonymous {} + 7377 MiB vs 8.3 GB",
        anon(r)
    );
    // Ollama's own view of the host side (its check's sum) leaves the cache out.
    assert!(required_bytes(&e) < 2 * GIB, "{}", required_bytes(&e));
    // The file went through the page cache at load: the ~4 GB the user saw fits in it.
    assert!(e.total.page_cache_bytes as f64 >= 4.0 * GB);
    // The advice names the variable that bounds it, and pricing it gives 1 GiB.
    let launch = Ollama
        .parse(
            &Ollama
                .split_command_line(&format!("OLLAMA_MODELS={} {line}", store.root().display()))
                .unwrap(),
        )
        .unwrap();
    let advice = launch.candidates(&e, &BTreeMap::new());
    assert!(advice
        .iter()
        .any(|c| c.action.starts_with("LLAMA_ARG_CACHE_RAM=1024")));
    let capped = estimate(
        &store,
        &format!("LLAMA_ARG_CACHE_RAM=1024 {line}"),
        on_gpu("16GiB", "0.32.15"),
    );
    assert_eq!(
        runner(&capped).component("prompt_cache").unwrap().bytes,
        1024 * MIB
    );
    // The capped runner's bound holds the 1.6 GB the user then saw.
    let bound = runner(&capped).steady_bytes + runner(&capped).growth_bytes;
    assert!(bound as f64 >= 1.6 * GB, "{bound}");
}

/// qwen2.5vl:3b's language model (36 layers, 2048 wide, 151936 tokens, Q4_K); the vision
/// projector is left out.
fn qwen25vl_3b() -> LlamaShape {
    LlamaShape {
        name: "qwen2.5vl-3b-shape".into(),
        layers: 36,
        hidden: 2048,
        heads: 16,
        kv_heads: 2,
        ffn: 11008,
        vocab: 151_936,
        ctx: 128_000,
        type_id: 12,
        embd_type: 12,
    }
}

/// Case 2, rwlove/home-ops#13936: Ollama in Kubernetes with OLLAMA_MAX_LOADED_MODELS=3 and
/// qwen2.5vl:3b under limits.memory 6G was OOM-killed every ~1.5 days: each runner's prompt
/// cache may reach 8 GiB. Fixed with LLAMA_ARG_CACHE_RAM=512 and a 10G limit.
#[test]
fn case_2_three_runners_each_with_a_prompt_cache_outgrow_6g() {
    let store = FakeStore::new();
    pull(&store, "qwen2.5vl", "3b", &qwen25vl_3b(), None);
    let line = "OLLAMA_MAX_LOADED_MODELS=3 ollama run qwen2.5vl:3b";
    let e = estimate(&store, line, on_gpu("16GiB", "0.32.15"));
    assert_eq!(runner(&e).count, 3);
    // 3 × 8 GiB of prompt cache at the caps.
    assert_eq!(e.total.growth_bytes, 3 * 8192 * MIB);
    let limit = 6e9;
    // It starts under the limit, and outgrows it with traffic: an OOM kill later, not at load.
    assert!(
        (e.total.steady_bytes as f64) < limit,
        "{}",
        e.total.steady_bytes
    );
    assert!(((e.total.steady_bytes + e.total.growth_bytes) as f64) > limit);
    let fixed = estimate(
        &store,
        &format!("LLAMA_ARG_CACHE_RAM=512 {line}"),
        on_gpu("16GiB", "0.32.15"),
    );
    assert_eq!(fixed.total.growth_bytes, 3 * 512 * MIB);
    assert!(((fixed.total.steady_bytes + fixed.total.growth_bytes) as f64) < 10e9);
}

/// Case 17, ollama/ollama#16637 (June 2026, so 0.30.5): a 13.26 GiB GGUF on a 16 GB GPU with
/// num_ctx 8192; `ollama ps` showed 26.7 GiB with use_mmap=true, the mapped file counted on
/// top of the weights (fixed by PR #16709), and 14.2 GiB with use_mmap=false. Fully offloaded,
/// the host keeps only the CPU tensors (the embedding table): mapped, the CPU span and the
/// page cache of the rest are the file once; copied, the whole file passes through the
/// (reclaimable) page cache and the CPU tensors are a private copy.
#[test]
fn case_17_mapped_weights_are_counted_once() {
    let store = FakeStore::new();
    let shape = of_size((13.26 * GIB as f64) as u64);
    pull(
        &store,
        "gemma4",
        "mmap",
        &shape,
        Some(r#"{"num_ctx": 8192, "use_mmap": true}"#),
    );
    pull(
        &store,
        "gemma4",
        "nommap",
        &shape,
        Some(r#"{"num_ctx": 8192, "use_mmap": false}"#),
    );
    let gguf = crate::engines::ollama::store::resolve("gemma4:mmap", store.root())
        .unwrap()
        .gguf;
    let file = std::fs::metadata(gguf).unwrap().len();
    let line = |tag: &str| format!("OLLAMA_MAX_LOADED_MODELS=1 ollama run gemma4:{tag}");
    let mapped = estimate(&store, &line("mmap"), on_gpu("16GiB", "0.30.5"));
    let copied = estimate(&store, &line("nommap"), on_gpu("16GiB", "0.30.5"));
    for e in [&mapped, &copied] {
        assert_eq!(e.args["num_ctx"], 8192);
        // Far from the 13+ GiB of host memory `ollama ps` added up.
        assert!(e.total.steady_bytes < 2 * GIB, "{}", e.total.steady_bytes);
    }
    let on_host = |e: &Estimate, id: &str| runner(e).component(id).unwrap().bytes;
    let cpu_tensors = on_host(&mapped, "weights.mapped");
    assert!(cpu_tensors < file / 20, "{cpu_tensors} of {file}");
    // Mapped: the CPU span plus the page cache of the rest is the file, once.
    let once = cpu_tensors + mapped.total.page_cache_bytes;
    assert!(once.abs_diff(file) <= file / 100, "{once} vs {file}");
    // Copied: the same CPU tensors, allocated, and the whole file read through the cache.
    assert!(on_host(&copied, "weights.allocated").abs_diff(cpu_tensors) <= cpu_tensors / 100);
    assert_eq!(copied.total.page_cache_bytes, file);
}

/// Ollama's own check, on an estimate: a CPU-only 0.20 load in a cgroup whose page cache
/// fills memory.current is refused; the same host at 0.32 is not (no such check).
#[test]
fn the_launch_reports_ollamas_refusal() {
    let store = FakeStore::new();
    pull(&store, "qwen2.5vl", "3b", &qwen25vl_3b(), None);
    let host = HostMemory {
        mem_total_bytes: Some(32 * GIB),
        mem_available_bytes: Some(30 * GIB),
        limit_bytes: Some(8 * GIB),
        usage_bytes: Some(7 * GIB),
        usage_file_bytes: Some(6 * GIB),
        ..HostMemory::default()
    };
    let cpu = |release: &str| Options {
        release: Some(release.into()),
        device: Device::Cpu,
        ..Options::default()
    };
    let line = "OLLAMA_MAX_LOADED_MODELS=1 ollama run qwen2.5vl:3b";
    let line_in_store = format!("OLLAMA_MODELS={} {line}", store.root().display());
    let launch = Ollama
        .parse(&Ollama.split_command_line(&line_in_store).unwrap())
        .unwrap();
    let old = estimate(&store, line, cpu("0.20.0"));
    let refusal = launch
        .refusal(&old, &host)
        .expect("refused by 0.20's check");
    assert!(refusal
        .message
        .starts_with("model requires more system memory ("));
    assert!(
        refusal.arithmetic.contains("page cache"),
        "{}",
        refusal.arithmetic
    );
    // What Ollama counted is the model's weights, KV cache and compute graph on the CPU.
    assert!(required_bytes(&old) > GIB, "{}", required_bytes(&old));
    let new = estimate(&store, line, cpu("0.32.15"));
    assert_eq!(launch.refusal(&new, &host), None);
}

#[test]
fn the_listing_counts_the_go_server_and_each_loaded_model() {
    let store = FakeStore::new();
    pull(&store, "tiny", "latest", &tiny_shape(), None);
    let cpu = Options {
        device: Device::Cpu,
        ..Options::default()
    };
    let e = estimate(&store, "ollama run tiny", cpu.clone());
    let serve = e.process(Role::ApiServer).unwrap();
    assert_eq!((serve.title.as_str(), serve.count), ("ollama serve", 1));
    let go = serve.component("ollama.server").unwrap();
    assert!(go.low_bytes < go.bytes && go.bytes < go.high_bytes);
    // Three runners by default (3 per device), each the runner of this model.
    assert_eq!(runner(&e).count, 3);
    assert!(
        e.notes.iter().any(|n| n.contains("worst case")),
        "{:?}",
        e.notes
    );
    assert_eq!(e.engine, "ollama");
    assert_eq!(e.engine_version, "0.32.15");
    // CPU-only: mmap off, so the weights are allocated, not mapped.
    assert!(runner(&e).component("weights.allocated").is_some());
    assert_eq!(e.args["use_mmap"], false);
    let one = estimate(&store, "OLLAMA_MAX_LOADED_MODELS=1 ollama run tiny", cpu);
    assert_eq!(
        e.total.steady_bytes - one.total.steady_bytes,
        2 * runner(&one).steady_bytes
    );
}
