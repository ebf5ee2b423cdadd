//! The `ramscope` binary: parse the command line, run one command, turn errors into one line
//! and a non-zero exit.

mod cli;
mod commands;

use clap::Parser;

fn main() {
    // Printing into a closed pipe (`ramscope measure | head`) is not an error worth a panic.
    reset_sigpipe();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_on_usage_error(e),
    };
    if let Err(e) = commands::run(cli) {
        eprintln!("ramscope: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// Help and version go out as clap writes them; a usage error becomes its first line.
fn exit_on_usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("ramscope: {first} (see ramscope --help)");
            std::process::exit(2);
        }
    }
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
    parts.join(": ").replace('\n', " ")
}

fn reset_sigpipe() {
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
