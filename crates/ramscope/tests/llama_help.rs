//! Every flag a real llama-server lists (`--help` of llama.cpp 0c1e570, captured in
//! tests/fixtures/llama-server-0c1e570-help.txt) is known to the parser's table, with the value
//! it takes and the variable llama.cpp reads for it; and the binary the tests build still
//! prints that help, so a drift between the fixture and the release is caught.

mod common;

use ramscope::engines::llama::args;
use ramscope::engines::llama::flags::{lookup, Effect, Field, Kind, FLAGS};

const HELP: &str = include_str!("fixtures/llama-server-0c1e570-help.txt");

/// One option of the help: its spellings, whether it takes a value, its variable, its text.
#[derive(Debug)]
struct Listed {
    spellings: Vec<String>,
    values: usize,
    env: Option<String>,
    text: String,
}

/// llama.cpp prints an option as `-c,    --ctx-size N` padded to column 40, then the help
/// (or, when the spellings are longer, the help on the next lines), each continuation line
/// indented by 40 spaces; `(env: NAME)` ends the help of options that have a variable.
fn listed() -> Vec<Listed> {
    let mut out: Vec<Listed> = Vec::new();
    for line in HELP.lines() {
        if line.starts_with(' ') {
            if let Some(last) = out.last_mut() {
                last.text.push_str(line.trim());
                last.text.push('\n');
            }
            continue;
        }
        if line.is_empty() || line.starts_with("-----") {
            continue;
        }
        let short = line.len() > 40 && line.get(37..40) == Some("   ");
        let head = if short { &line[..40] } else { line }.trim_end();
        let text = if short { line[40..].trim() } else { "" };
        let mut spellings = Vec::new();
        let mut values = 0;
        for part in head.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, hint) = part.split_once(' ').unwrap_or((part, ""));
            if name.starts_with('-') {
                spellings.push(name.to_string());
                values = hint_values(hint);
            } else if let Some(last) = spellings.last() {
                // A comma inside a value hint (`<dev1,dev2,..>`): part of the last option's.
                assert!(values > 0, "{last}: {part}");
            }
        }
        out.push(Listed {
            spellings,
            values,
            env: None,
            text: format!("{text}\n"),
        });
    }
    for l in &mut out {
        l.env = l
            .text
            .split("(env: ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .map(str::to_string);
    }
    out
}

/// How many values a hint names: `N` 1, `START END` 2, `<tensor name pattern>=<buffer
/// type>,...` 1 (spaces inside `<…>` or `[…]` belong to one value).
fn hint_values(hint: &str) -> usize {
    let mut depth = 0i32;
    let mut values = 0;
    let mut in_value = false;
    for c in hint.chars() {
        match c {
            '<' | '[' | '{' => depth += 1,
            '>' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if c == ' ' && depth == 0 {
            in_value = false;
        } else if !in_value {
            in_value = true;
            values += 1;
        }
    }
    values
}

#[test]
fn the_help_is_read_whole() {
    let all = listed();
    assert!(all.len() > 250, "only {} options read", all.len());
    let spellings: usize = all.iter().map(|l| l.spellings.len()).sum();
    assert!(spellings > 400, "only {spellings} spellings read");
    let ctx = all
        .iter()
        .find(|l| l.spellings.contains(&"--ctx-size".to_string()))
        .unwrap();
    assert_eq!(ctx.spellings, ["-c", "--ctx-size"]);
    assert_eq!(ctx.values, 1);
    assert_eq!(ctx.env.as_deref(), Some("LLAMA_ARG_CTX_SIZE"));
    let kvo = all
        .iter()
        .find(|l| l.spellings.contains(&"-nkvo".to_string()))
        .unwrap();
    assert_eq!(
        kvo.spellings,
        ["-kvo", "--kv-offload", "-nkvo", "--no-kv-offload"]
    );
    assert_eq!(kvo.values, 0);
    assert_eq!(hint_values("<tensor name pattern>=<buffer type>,..."), 1);
    assert_eq!(hint_values("START END"), 2);
    assert_eq!(hint_values(""), 0);
}

#[test]
fn every_listed_flag_is_known_with_its_value_and_variable() {
    let mut problems = Vec::new();
    for l in listed() {
        let first = &l.spellings[0];
        let Some((flag, _)) = lookup(first) else {
            problems.push(format!("{first}: neither modelled nor marked"));
            continue;
        };
        // All spellings of one option are one entry of the table.
        for s in &l.spellings {
            match lookup(s) {
                Some((f, _)) if std::ptr::eq(f, flag) => {}
                _ => problems.push(format!("{s}: not a spelling of {}'s entry", flag.name())),
            }
        }
        let table: Vec<&str> = flag.names().chain(flag.negatives()).collect();
        if table != l.spellings {
            problems.push(format!(
                "{first}: the table spells it {table:?}, the help {:?}",
                l.spellings
            ));
        }
        let values = match flag.kind {
            Kind::Switch | Kind::Pair => 0,
            Kind::Value | Kind::OptValue => 1,
            Kind::TwoValues => 2,
        };
        if values != l.values {
            problems.push(format!(
                "{first}: {values} values in the table, {} in the help",
                l.values
            ));
        }
        if flag.env != l.env.as_deref() {
            problems.push(format!(
                "{first}: variable {:?} in the table, {:?} in the help",
                flag.env, l.env
            ));
        }
        let refused = l.text.contains("the argument has been removed");
        if refused != flag.removed.is_some() {
            problems.push(format!(
                "{first}: removed in the table is {}",
                flag.removed.is_some()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_table_lists_nothing_the_help_does_not_except_older_flags() {
    let listed: Vec<String> = listed().into_iter().flat_map(|l| l.spellings).collect();
    for f in FLAGS {
        let in_help = f.names().any(|n| listed.iter().any(|l| l == n));
        assert!(
            in_help || f.removed.is_some(),
            "{} is in the table but not in 0c1e570's help (mark it removed, with its new spelling)",
            f.name()
        );
    }
}

#[test]
fn the_flags_the_estimate_needs_are_modelled() {
    for (spelling, field) in [
        ("-c", Field::CtxSize),
        ("-np", Field::Parallel),
        ("-ngl", Field::GpuLayers),
        ("--load-mode", Field::LoadMode),
        ("-ctk", Field::CacheTypeK),
        ("-ctv", Field::CacheTypeV),
        ("-nkvo", Field::KvOffload),
        ("--no-repack", Field::Repack),
        ("-cram", Field::CacheRam),
        ("-kvu", Field::KvUnified),
        ("-ub", Field::Ubatch),
        ("-fa", Field::FlashAttn),
        ("--no-mmap", Field::LegacyMmap),
        ("--mlock", Field::LegacyMlock),
        ("-dio", Field::LegacyDirectIo),
        ("-ot", Field::OverrideTensor),
        ("-dev", Field::Device),
    ] {
        let (flag, _) = lookup(spelling).unwrap_or_else(|| panic!("{spelling} unknown"));
        assert_eq!(flag.effect, Effect::Models(field), "{spelling}");
    }
}

#[test]
fn every_listed_flag_parses() {
    // Each option with a plausible value: the parser takes every spelling the help lists.
    for l in listed() {
        for s in &l.spellings {
            let (flag, _) = lookup(s).unwrap();
            let value = match flag.effect {
                _ if flag.kind == Kind::OptValue => "on",
                Effect::Models(Field::GpuLayers | Field::DraftGpuLayers) => "auto",
                Effect::Models(Field::CacheTypeK | Field::CacheTypeV) => "q8_0",
                Effect::Models(Field::DraftCacheTypeK | Field::DraftCacheTypeV) => "q8_0",
                Effect::Models(Field::LoadMode) => "mmap",
                Effect::Models(Field::LazyMode | Field::Fit | Field::FlashAttn) => "on",
                Effect::Models(Field::OverrideTensor) => "exps=CPU",
                Effect::Models(Field::LoraScaled) => "a.gguf:0.5",
                Effect::Models(Field::SpecType) => "ngram-mod",
                _ => "2",
            };
            let mut argv = vec![s.clone()];
            argv.extend(std::iter::repeat(value.to_string()).take(l.values));
            if let Err(e) = args::parse(&argv) {
                panic!("{argv:?}: {e}");
            }
        }
    }
}

#[test]
fn the_built_binary_prints_the_captured_help() {
    let Some(bin) = common::llama::binary() else {
        return;
    };
    let version = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stderr).to_string()
        + &String::from_utf8_lossy(&version.stdout);
    let out = std::process::Command::new(&bin)
        .arg("--help")
        .env_clear()
        .output()
        .expect("run llama-server --help");
    assert!(out.status.success(), "llama-server --help failed");
    let live = String::from_utf8_lossy(&out.stdout);
    if live != HELP {
        let first = live
            .lines()
            .zip(HELP.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(live.lines().count().min(HELP.lines().count()));
        panic!(
            "the help of {} ({}) differs from tests/fixtures/llama-server-0c1e570-help.txt from line {}:\n  live:    {:?}\n  fixture: {:?}\nA new release: capture its help, check the flags table (src/engines/llama/flags.rs) against it.",
            bin.display(),
            version.lines().find(|l| l.contains("version")).unwrap_or("?").trim(),
            first + 1,
            live.lines().nth(first),
            HELP.lines().nth(first),
        );
    }
}
