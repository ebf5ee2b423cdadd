//! The `ramscope` binary: parse the command line, run one command, turn errors into one line
//! and a non-zero exit.

mod cli;
mod commands;

use clap::Parser;

fn main() {
    // Printing into a closed pipe (`ramscope measure | head`) is not an error worth a panic.
    reset_sigpipe();
    let cli = cli::Cli::parse();
    if let Err(e) = commands::run(cli) {
        eprintln!("ramscope: {}", one_line(&e));
        std::process::exit(1);
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
