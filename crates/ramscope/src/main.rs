//! The `ramscope` binary: parse the command line, run one command, turn errors into one line
//! and a non-zero exit.

mod cli;
mod commands;

use std::io::Write;

use clap::Parser;

fn main() {
    // Printing into a closed pipe (`ramscope measure | head`) is not an error worth a panic.
    reset_sigpipe();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_on_usage_error(e),
    };
    if let Err(e) = commands::run(cli) {
        // Not eprintln!: with stderr unwritable too, that would panic (exit 101).
        let _ = writeln!(std::io::stderr(), "ramscope: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// Help and version go out as clap writes them; a usage error becomes one line.
fn exit_on_usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // clap's own `exit` ignores a failed write and exits 0.
            if let Err(err) = e.print() {
                let _ = writeln!(std::io::stderr(), "ramscope: cannot write output: {err}");
                std::process::exit(1);
            }
            std::process::exit(e.exit_code());
        }
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "ramscope: {} (see ramscope --help)",
                usage_line(&e.to_string())
            );
            std::process::exit(2);
        }
    }
}

/// A clap error as one line: its first line, and the indented lines right after it (the
/// missing arguments' names: "the following required arguments were not provided:\n  <FILE>").
fn usage_line(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("invalid arguments");
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_string();
    for more in lines.take_while(|l| l.starts_with(char::is_whitespace) && !l.trim().is_empty()) {
        line.push(' ');
        line.push_str(more.trim());
    }
    line
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    // Errors quote what users and other processes wrote (paths, command lines, config
    // values): escaped like every other untrusted string, so the error stays one line.
    ramscope::text::clean(&parts.join(": ")).into_owned()
}

fn reset_sigpipe() {
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_keep_the_missing_arguments() {
        let text = "error: the following required arguments were not provided:\n  <FILE>\n  <B>\n\nUsage: ramscope report <FILE>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_line(text),
            "the following required arguments were not provided: <FILE> <B>"
        );
        assert_eq!(
            usage_line("error: unexpected argument '--bogus' found\n\n  tip: x\n"),
            "unexpected argument '--bogus' found"
        );
    }
}
