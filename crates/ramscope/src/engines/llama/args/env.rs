//! The environment llama-server reads: `LLAMA_ARG_*` variables (and the few named otherwise),
//! applied the way llama.cpp 0c1e570 applies them, before the command line
//! (docs/llama-server-command-line.md §1).

use std::collections::BTreeMap;

use super::super::flags::{lookup, Effect, Field, Kind, FLAGS};
use super::{is_truthy, parse_bool, ArgsError, LlamaArgs, Parser};

impl LlamaArgs {
    /// Adds what the server's environment sets, as llama.cpp does: a `LLAMA_ARG_*` variable
    /// fills a setting the command line left unset (the line wins), adds to lists (`-ot`,
    /// `--spec-type`: the environment's entries first), and turns switches on when truthy. A
    /// variable the line itself assigns (`NAME=VALUE` in front) is left to that assignment.
    pub fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ArgsError> {
        let own: Vec<&String> = self.env.iter().map(|(k, _)| k).collect();
        let inherited: BTreeMap<String, String> = env
            .iter()
            .filter(|(k, _)| !own.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.apply_vars(&inherited, "in the environment")
    }

    pub(super) fn apply_vars(
        &mut self,
        env: &BTreeMap<String, String>,
        place: &str,
    ) -> Result<(), ArgsError> {
        let mut parser = Parser::default();
        let mut used = Vec::new();
        for flag in FLAGS {
            let Some(var) = flag.env else { continue };
            let negative = flag.negative_env().filter(|n| env.contains_key(n));
            let (name, value) = match (negative, env.get(var)) {
                // llama.cpp reads LLAMA_ARG_NO_… as "off" whatever it holds.
                (Some(n), _) => (n, None),
                (None, Some(v)) => (var.to_string(), Some(v.as_str())),
                (None, None) => continue,
            };
            let negated = match (flag.kind, value) {
                (Kind::Pair, None) => true,
                (Kind::Pair, Some(v)) => !parse_bool(&name, v)?,
                _ => false,
            };
            let value = match flag.kind {
                Kind::Pair => None,
                // A switch's variable counts only when truthy.
                Kind::Switch if !value.is_some_and(is_truthy) => continue,
                Kind::Switch => None,
                _ => value,
            };
            if let Some(now) = flag.removed {
                parser.args.notes.push(format!(
                    "{name} {place}: llama.cpp 0c1e570 does not read it (now: {now})"
                ));
            }
            parser.apply(flag, negated, value, &name)?;
            if matches!(flag.effect, Effect::Models(_)) {
                used.push((flag, name));
            }
        }
        let from_env = parser.finish();
        for (flag, var) in used {
            let line_wins = matches!(flag.effect, Effect::Models(f) if !adds(f) && self.sets(f));
            self.notes.push(if line_wins {
                format!("{var} is set {place}, but the command line's own setting wins")
            } else {
                format!("{var} {place} sets {}", flag.name())
            });
        }
        self.fill_from(from_env);
        Ok(())
    }

    /// Whether a flag of the command line already set `field`'s setting.
    fn sets(&self, field: Field) -> bool {
        self.given.iter().any(|g| {
            matches!(lookup(g), Some((f, _)) if matches!(f.effect, Effect::Models(x) if setting(x) == setting(field)))
        })
    }

    /// Takes from `env` what the command line left unset; lists get the environment's
    /// entries first (llama.cpp applies the environment before the line).
    fn fill_from(&mut self, env: LlamaArgs) {
        macro_rules! unset {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = env.$f; } )* };
        }
        unset!(
            model,
            mmproj,
            model_draft,
            ctx_size,
            parallel,
            kv_unified,
            kv_unified_per_slot,
            gpu_layers,
            load_mode,
            cache_type_k,
            cache_type_v,
            batch,
            ubatch,
            flash_attn,
            kv_offload,
            cache_ram_mib,
            cache_prompt,
            ctx_checkpoints,
            repack,
            fit,
            mmproj_offload,
            n_cpu_moe,
            hf_repo,
            mmproj_auto,
            lazy_mode,
            devices,
            n_cpu_ffn,
            fit_target_mib,
            fit_ctx,
            draft_gpu_layers,
            draft_cache_type_k,
            draft_cache_type_v
        );
        self.no_host |= env.no_host;
        self.swa_full |= env.swa_full;
        self.embedding |= env.embedding;
        self.cpu_moe |= env.cpu_moe;
        for (mine, theirs) in [
            (&mut self.lora, env.lora),
            (&mut self.override_tensor, env.override_tensor),
            (&mut self.spec_types, env.spec_types),
        ] {
            let line = std::mem::replace(mine, theirs);
            mine.extend(line);
        }
        self.notes.extend(env.notes);
    }
}

/// Fields that accumulate (the environment adds to the line rather than yielding to it).
fn adds(field: Field) -> bool {
    matches!(
        field,
        Field::Lora
            | Field::LoraScaled
            | Field::OverrideTensor
            | Field::SpecType
            | Field::SpecDefault
            | Field::NoHost
            | Field::SwaFull
            | Field::Embedding
            | Field::CpuMoe
    )
}

/// The setting a field writes (several flags write one: the old load flags, `-mmdev`).
fn setting(field: Field) -> Field {
    match field {
        Field::LegacyMmap | Field::LegacyMlock | Field::LegacyDirectIo => Field::LoadMode,
        Field::MmprojDevice => Field::MmprojOffload,
        other => other,
    }
}
