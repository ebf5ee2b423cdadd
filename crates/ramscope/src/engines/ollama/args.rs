//! An Ollama command line as given: `ollama serve` or `ollama run NAME[:TAG]`, with the
//! `NAME=VALUE` environment written in front. Nothing is defaulted here ([`super::config`]
//! applies the release's defaults).
//!
//! `ollama serve` loads models on demand and takes no arguments, so the model a serve line is
//! estimated with is named by ramscope's own variable [`MODEL_VARIABLE`]
//! (`RAMSCOPE_OLLAMA_MODEL=llama3.2:3b ollama serve`, or `--env RAMSCOPE_OLLAMA_MODEL=…`): a
//! word after `serve` would be a flag Ollama refuses, and a variable keeps the line one Ollama
//! itself would run. `ollama run NAME` names its model itself; it is estimated as the server
//! that run loads the model into.

/// ramscope's variable naming the model an `ollama serve` line is estimated with (a name in
/// Ollama's store, `NAME[:TAG]`, or a path to a `.gguf` file).
pub const MODEL_VARIABLE: &str = "RAMSCOPE_OLLAMA_MODEL";

/// The Ollama subcommands that start (or talk to) a server holding a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `ollama serve` (alias `start`).
    Serve,
    /// `ollama run NAME`: the server it talks to loads NAME.
    Run,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OllamaArgs {
    /// The program as written (`ollama`, `/usr/local/bin/ollama`).
    pub program: Option<String>,
    /// `None` for an empty line.
    pub command: Option<Command>,
    /// `run NAME`, or [`MODEL_VARIABLE`] among the line's assignments.
    pub model: Option<String>,
    /// `NAME=VALUE` words in front of the program, in order.
    pub env: Vec<(String, String)>,
    /// Words accepted but ignored, a sentence each.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ArgsError {
    #[error("not an Ollama command line: {0:?} is not `ollama` (expected `ollama serve` or `ollama run NAME`)")]
    NotOllama(String),
    #[error("`ollama {0}` starts no server: estimate `ollama serve` (naming the model with {MODEL_VARIABLE}=NAME) or `ollama run NAME`")]
    NotAServer(String),
    #[error("`ollama serve` takes no arguments (got {0:?}): name the model it will load with {MODEL_VARIABLE}=NAME in front of the line or with --env")]
    ServeTakesNoArguments(String),
    #[error("`ollama run` needs a model name (ollama run NAME[:TAG])")]
    RunWithoutModel,
    #[error("`ollama` with no subcommand starts no server: expected `ollama serve` or `ollama run NAME`")]
    NoSubcommand,
    #[error("unbalanced quotes in the command line")]
    Quotes,
}

/// `ollama run` flags that take a value in the next word (cmd/cmd.go:2351-2360@v0.32.15;
/// `--think` has a default and takes its value only as `--think=…`). The model is the first
/// word that is neither a flag nor such a value.
const RUN_FLAGS_WITH_VALUE: &[&str] = &["--format", "--keepalive", "--dimensions"];

fn is_assignment(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some((name, value))
}

/// Parses a whole command line (`OLLAMA_NUM_PARALLEL=4 ollama serve`), or the subcommand
/// alone (`run llama3.2`).
pub fn parse(argv: &[String]) -> Result<OllamaArgs, ArgsError> {
    let mut args = OllamaArgs::default();
    let mut words = argv.iter().map(String::as_str).peekable();
    while let Some(&w) = words.peek() {
        if w == "--" || w == "env" {
            words.next();
        } else if let Some((name, value)) = is_assignment(w) {
            args.env.push((name.to_string(), value.to_string()));
            words.next();
        } else {
            break;
        }
    }
    if let Some((_, model)) = args.env.iter().rev().find(|(k, _)| k == MODEL_VARIABLE) {
        args.model = Some(model.clone());
    }
    let Some(first) = words.next() else {
        return Ok(args);
    };
    let sub = if first == "serve" || first == "start" || first == "run" {
        first
    } else {
        let base = first.rsplit('/').next().unwrap_or(first);
        if base != "ollama" && base != "ollama.exe" {
            return Err(ArgsError::NotOllama(first.to_string()));
        }
        args.program = Some(first.to_string());
        words.next().ok_or(ArgsError::NoSubcommand)?
    };
    match sub {
        "serve" | "start" => {
            args.command = Some(Command::Serve);
            if let Some(extra) = words.next() {
                return Err(ArgsError::ServeTakesNoArguments(extra.to_string()));
            }
        }
        "run" => {
            args.command = Some(Command::Run);
            let mut model = None;
            let mut ignored = Vec::new();
            while let Some(w) = words.next() {
                if model.is_some() {
                    ignored.push(w);
                } else if RUN_FLAGS_WITH_VALUE.contains(&w) {
                    ignored.push(w);
                    ignored.extend(words.next());
                } else if w.starts_with('-') {
                    ignored.push(w);
                } else {
                    model = Some(w.to_string());
                }
            }
            args.model = Some(model.ok_or(ArgsError::RunWithoutModel)?);
            if !ignored.is_empty() {
                args.notes.push(format!(
                    "ignored {} word(s) of `ollama run` (flags and prompt change no server memory)",
                    ignored.len()
                ));
            }
        }
        other => return Err(ArgsError::NotAServer(other.to_string())),
    }
    Ok(args)
}

/// Splits a command line as a user pastes it into words (quotes, backslashes).
pub fn split_command_line(line: &str) -> Result<Vec<String>, ArgsError> {
    crate::engines::vllm::command_line::split_command_line(line).map_err(|_| ArgsError::Quotes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<OllamaArgs, ArgsError> {
        parse(&split_command_line(line).unwrap())
    }

    #[test]
    fn serve_with_its_environment() {
        let a =
            p("env OLLAMA_NUM_PARALLEL=4 OLLAMA_KV_CACHE_TYPE=q8_0 /usr/bin/ollama serve").unwrap();
        assert_eq!(a.command, Some(Command::Serve));
        assert_eq!(a.program.as_deref(), Some("/usr/bin/ollama"));
        assert_eq!(
            a.env,
            [
                ("OLLAMA_NUM_PARALLEL".to_string(), "4".to_string()),
                ("OLLAMA_KV_CACHE_TYPE".to_string(), "q8_0".to_string())
            ]
        );
        assert_eq!(a.model, None);
        let named = p("RAMSCOPE_OLLAMA_MODEL=qwen2.5vl:3b ollama start").unwrap();
        assert_eq!(named.model.as_deref(), Some("qwen2.5vl:3b"));
        assert_eq!(named.command, Some(Command::Serve));
    }

    #[test]
    fn run_names_its_model() {
        let a = p("ollama run --verbose --keepalive 5m gemma3:12b 'why is the sky blue'").unwrap();
        assert_eq!(a.command, Some(Command::Run));
        assert_eq!(a.model.as_deref(), Some("gemma3:12b"));
        assert_eq!(a.notes.len(), 1, "{:?}", a.notes);
        assert_eq!(
            p("run llama3.2").unwrap().model.as_deref(),
            Some("llama3.2")
        );
    }

    #[test]
    fn what_is_not_a_server_is_one_error() {
        assert_eq!(
            p("ollama serve --model x"),
            Err(ArgsError::ServeTakesNoArguments("--model".into()))
        );
        assert_eq!(p("ollama run"), Err(ArgsError::RunWithoutModel));
        assert_eq!(
            p("ollama run --format json"),
            Err(ArgsError::RunWithoutModel)
        );
        assert_eq!(
            p("ollama pull x"),
            Err(ArgsError::NotAServer("pull".into()))
        );
        assert_eq!(p("ollama"), Err(ArgsError::NoSubcommand));
        assert_eq!(p("vllm serve m"), Err(ArgsError::NotOllama("vllm".into())));
        assert!(split_command_line("ollama run 'x").is_err());
        // An assignment needs a name.
        assert_eq!(p("=1 ollama serve"), Err(ArgsError::NotOllama("=1".into())));
        let msg = p("ollama serve x").unwrap_err().to_string();
        assert!(msg.contains(MODEL_VARIABLE), "{msg}");
    }

    #[test]
    fn an_empty_line_is_nothing_given() {
        let a = parse(&[]).unwrap();
        assert_eq!(a, OllamaArgs::default());
    }
}
