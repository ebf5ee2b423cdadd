//! Whole command lines as users paste them: shell quoting (`'…'`, `"…"`, backslashes) split
//! into words, and the launcher in front of vLLM's flags (`NAME=VALUE` assignments,
//! `python -m vllm.entrypoints.openai.api_server`, `vllm serve`) recognised and dropped.

use std::collections::BTreeMap;

use super::args::ArgsError;

/// Splits a shell command line into words: single and double quotes, backslash escapes.
pub fn split_command_line(line: &str) -> Result<Vec<String>, ArgsError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(ArgsError::Quotes),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch) => cur.push(ch),
                            None => return Err(ArgsError::Quotes),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(ArgsError::Quotes),
                    }
                }
            }
            '\\' => {
                // A backslash-newline continues the line.
                match chars.next() {
                    Some('\n') | None => {}
                    Some(ch) => {
                        in_word = true;
                        cur.push(ch);
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Drops what comes before vLLM's own flags: `NAME=VALUE` words, a Python interpreter
/// with `-m module` (or a script path), and `vllm serve`.
pub(super) fn strip_launcher<'a>(
    argv: &'a [String],
    env: &mut BTreeMap<String, String>,
) -> &'a [String] {
    let mut i = 0;
    if argv.first().is_some_and(|w| w == "env") {
        i += 1;
    }
    while let Some(w) = argv.get(i) {
        match w.split_once('=') {
            Some((k, v))
                if !k.is_empty()
                    && !k.starts_with('-')
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                env.insert(k.to_string(), v.to_string());
                i += 1;
            }
            _ => break,
        }
    }
    let base = |w: &str| w.rsplit('/').next().unwrap_or(w).to_string();
    if let Some(w) = argv.get(i) {
        if base(w).starts_with("python") {
            i += 1;
            // Interpreter options before the module (`-u`, `-X dev`, `-B`).
            while let Some(opt) = argv.get(i) {
                match opt.as_str() {
                    "-m" => {
                        i += 2;
                        break;
                    }
                    "-X" | "-W" => i += 2,
                    o if o.starts_with('-') => i += 1,
                    // A script path (`.../bin/vllm`).
                    _ => {
                        i += 1;
                        break;
                    }
                }
            }
        } else if base(w) == "vllm" {
            i += 1;
        }
    }
    if argv.get(i).is_some_and(|w| w == "serve") {
        i += 1;
    }
    &argv[i.min(argv.len())..]
}
