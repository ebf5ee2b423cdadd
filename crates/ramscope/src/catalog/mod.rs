//! Bundled `config.json` files of popular models, so `estimate` works with no download.
//!
//! Parameter counts are the checkpoints' published totals; `weights_bytes` is the sum of the
//! tensors in the published safetensors files and `largest_shard_bytes` the biggest file (the
//! lazy loader's transient peak). Quantized checkpoints (DeepSeek-V3 FP8, gpt-oss MXFP4) list
//! their on-disk size, which is not parameters × 2.

/// One bundled model.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The Hugging Face repo id users type (`Qwen/Qwen3-8B`).
    pub repo: &'static str,
    /// Other names that pick this entry (the repo's name part always does).
    pub aliases: &'static [&'static str],
    /// The model's `config.json`.
    pub config: &'static str,
    pub parameters: u64,
    pub weights_bytes: u64,
    pub shards: u32,
    pub largest_shard_bytes: u64,
}

macro_rules! config {
    ($file:literal) => {
        include_str!(concat!("configs/", $file))
    };
}

/// Every bundled model. The first is the built-in default.
pub const ENTRIES: &[Entry] = &[
    Entry {
        repo: "Qwen/Qwen3-8B",
        aliases: &["qwen3-8b"],
        config: config!("qwen3-8b.json"),
        parameters: 8_190_735_360,
        weights_bytes: 16_381_470_720,
        shards: 5,
        largest_shard_bytes: 3_996_250_744,
    },
    Entry {
        repo: "Qwen/Qwen3-0.6B",
        aliases: &["qwen3-0.6b"],
        config: config!("qwen3-0.6b.json"),
        // The checkpoint stores lm_head although it is tied to the embedding.
        parameters: 751_632_384,
        weights_bytes: 1_503_264_768,
        shards: 1,
        largest_shard_bytes: 1_503_300_328,
    },
    Entry {
        repo: "Qwen/Qwen3-1.7B",
        aliases: &["qwen3-1.7b"],
        config: config!("qwen3-1.7b.json"),
        parameters: 2_031_739_904,
        weights_bytes: 4_063_479_808,
        shards: 2,
        largest_shard_bytes: 3_441_185_608,
    },
    Entry {
        repo: "Qwen/Qwen3-4B",
        aliases: &["qwen3-4b"],
        config: config!("qwen3-4b.json"),
        parameters: 4_022_468_096,
        weights_bytes: 8_044_936_192,
        shards: 3,
        largest_shard_bytes: 3_957_900_840,
    },
    Entry {
        repo: "Qwen/Qwen3-14B",
        aliases: &["qwen3-14b"],
        config: config!("qwen3-14b.json"),
        parameters: 14_768_307_200,
        weights_bytes: 29_536_614_400,
        shards: 8,
        largest_shard_bytes: 3_963_750_880,
    },
    Entry {
        repo: "Qwen/Qwen3-32B",
        aliases: &["qwen3-32b"],
        config: config!("qwen3-32b.json"),
        parameters: 32_762_123_264,
        weights_bytes: 65_524_246_528,
        shards: 17,
        largest_shard_bytes: 3_963_750_880,
    },
    Entry {
        repo: "Qwen/Qwen3-30B-A3B",
        aliases: &["qwen3-30b-a3b"],
        config: config!("qwen3-30b-a3b.json"),
        parameters: 30_532_122_624,
        weights_bytes: 61_064_245_248,
        shards: 16,
        largest_shard_bytes: 3_999_686_304,
    },
    Entry {
        repo: "meta-llama/Llama-3.1-8B-Instruct",
        aliases: &["llama-3.1-8b", "llama3.1-8b", "meta-llama-3.1-8b-instruct"],
        config: config!("llama-3.1-8b-instruct.json"),
        parameters: 8_030_261_248,
        weights_bytes: 16_060_522_496,
        shards: 4,
        largest_shard_bytes: 4_999_802_720,
    },
    Entry {
        repo: "meta-llama/Llama-3.1-70B-Instruct",
        aliases: &[
            "llama-3.1-70b",
            "llama3.1-70b",
            "meta-llama-3.1-70b-instruct",
        ],
        config: config!("llama-3.1-70b-instruct.json"),
        parameters: 70_553_706_496,
        weights_bytes: 141_107_412_992,
        shards: 30,
        largest_shard_bytes: 4_999_951_552,
    },
    Entry {
        repo: "mistralai/Mistral-7B-Instruct-v0.3",
        aliases: &["mistral-7b", "mistral-7b-instruct"],
        config: config!("mistral-7b-instruct-v0.3.json"),
        parameters: 7_248_023_552,
        weights_bytes: 14_496_047_104,
        shards: 3,
        largest_shard_bytes: 4_999_819_336,
    },
    Entry {
        repo: "google/gemma-3-4b-it",
        aliases: &["gemma-3-4b", "gemma3-4b"],
        config: config!("gemma-3-4b-it.json"),
        parameters: 4_300_079_472,
        weights_bytes: 8_600_158_944,
        shards: 2,
        largest_shard_bytes: 4_961_251_752,
    },
    Entry {
        repo: "google/gemma-3-27b-it",
        aliases: &["gemma-3-27b", "gemma3-27b"],
        config: config!("gemma-3-27b-it.json"),
        parameters: 27_432_406_640,
        weights_bytes: 54_864_813_280,
        shards: 12,
        largest_shard_bytes: 4_854_573_696,
    },
    Entry {
        repo: "deepseek-ai/DeepSeek-V3",
        aliases: &["deepseek-v3"],
        config: config!("deepseek-v3.json"),
        // 671 B main model + 14 B multi-token-prediction module, FP8 with BF16 scales.
        parameters: 684_531_386_000,
        weights_bytes: 688_586_727_753,
        shards: 163,
        largest_shard_bytes: 5_234_139_343,
    },
    Entry {
        repo: "openai/gpt-oss-20b",
        aliases: &["gpt-oss-20b"],
        config: config!("gpt-oss-20b.json"),
        // MXFP4 experts: 4.25 bits per expert weight on disk.
        parameters: 20_914_757_184,
        weights_bytes: 13_761_300_984,
        shards: 3,
        largest_shard_bytes: 4_798_283_184,
    },
    Entry {
        repo: "openai/gpt-oss-120b",
        aliases: &["gpt-oss-120b"],
        config: config!("gpt-oss-120b.json"),
        parameters: 116_829_156_672,
        weights_bytes: 65_248_815_744,
        shards: 15,
        largest_shard_bytes: 4_625_017_896,
    },
    Entry {
        repo: "Qwen/Qwen2.5-VL-7B-Instruct",
        aliases: &["qwen2.5-vl-7b", "qwen2.5-vl-7b-instruct"],
        config: config!("qwen2.5-vl-7b-instruct.json"),
        parameters: 8_292_166_656,
        weights_bytes: 16_584_333_312,
        shards: 5,
        largest_shard_bytes: 3_900_233_256,
    },
];

/// The model `estimate` uses when none is given.
pub fn default_entry() -> &'static Entry {
    &ENTRIES[0]
}

/// Finds a model by repo id (`Qwen/Qwen3-8B`), its name part (`Qwen3-8B`) or an alias
/// (`qwen3-8b`), ignoring case.
pub fn find(name: &str) -> Option<&'static Entry> {
    let want = name.trim().trim_end_matches('/').to_ascii_lowercase();
    ENTRIES.iter().find(|e| {
        let repo = e.repo.to_ascii_lowercase();
        let short = repo.rsplit('/').next().unwrap_or(&repo).to_string();
        repo == want || short == want || e.aliases.iter().any(|a| *a == want)
    })
}

/// Short names, for error messages.
pub fn names() -> Vec<&'static str> {
    ENTRIES.iter().map(|e| e.repo).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hf::ModelConfig;
    use std::path::Path;

    #[test]
    fn every_config_parses() {
        for e in ENTRIES {
            let c = ModelConfig::from_json(e.config, Path::new(e.repo))
                .unwrap_or_else(|err| panic!("{}: {err}", e.repo));
            assert!(c.num_layers > 0, "{}", e.repo);
            assert!(
                e.largest_shard_bytes <= e.weights_bytes + 1_000_000,
                "{}",
                e.repo
            );
        }
    }

    #[test]
    fn dense_bf16_parameter_counts_match_the_configs() {
        // For plain dense decoders the config formula reproduces the published totals.
        for repo in [
            "Qwen/Qwen3-8B",
            "Qwen/Qwen3-4B",
            "Qwen/Qwen3-14B",
            "Qwen/Qwen3-32B",
            "meta-llama/Llama-3.1-8B-Instruct",
            "meta-llama/Llama-3.1-70B-Instruct",
            "mistralai/Mistral-7B-Instruct-v0.3",
            "Qwen/Qwen3-30B-A3B",
        ] {
            let e = find(repo).unwrap();
            let c = ModelConfig::from_json(e.config, Path::new(repo)).unwrap();
            assert_eq!(c.estimated_parameters(), Some(e.parameters), "{repo}");
        }
    }

    #[test]
    fn finds_by_any_name() {
        assert_eq!(find("Qwen/Qwen3-8B").unwrap().repo, "Qwen/Qwen3-8B");
        assert_eq!(find("qwen3-8b").unwrap().repo, "Qwen/Qwen3-8B");
        assert_eq!(find("QWEN3-30B-A3B").unwrap().repo, "Qwen/Qwen3-30B-A3B");
        assert_eq!(
            find("llama-3.1-8b").unwrap().repo,
            "meta-llama/Llama-3.1-8B-Instruct"
        );
        assert!(find("nope/nothing").is_none());
    }
}
