//! Printing that reports a failed write instead of panicking.
//!
//! `println!` and `eprintln!` panic when their stream cannot be written (`> /dev/full`, a
//! full disk, a pipe closed while SIGPIPE is ignored): exit 101 and a backtrace. Commands
//! print through these macros instead, which return the error for `main` to report as one
//! line:
//!
//! - `out!`/`outln!`: the command's output on stdout;
//! - `errout!`: output that goes to stderr (`run`'s summary, like time(1));
//! - `note!`: a diagnostic on stderr, best effort (nothing useful can be done when even
//!   stderr fails).

use std::fmt;
use std::io::{self, Write};

/// stdout or stderr could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write output: {0}")]
pub struct WriteError(#[from] io::Error);

/// Writes to stdout and flushes, so a failure shows up here rather than at exit.
pub fn stdout(args: fmt::Arguments) -> Result<(), WriteError> {
    write_to(&mut io::stdout().lock(), args)
}

/// Writes to stderr.
pub fn stderr(args: fmt::Arguments) -> Result<(), WriteError> {
    write_to(&mut io::stderr().lock(), args)
}

/// Writes to stderr, ignoring failure.
pub fn note(args: fmt::Arguments) {
    let _ = stderr(args);
}

fn write_to(w: &mut impl Write, args: fmt::Arguments) -> Result<(), WriteError> {
    w.write_fmt(args)?;
    w.flush()?;
    Ok(())
}

/// `print!` that returns `Result<(), WriteError>`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::commands::out::stdout(format_args!($($arg)*))
    };
}

/// `println!` that returns `Result<(), WriteError>`.
macro_rules! outln {
    () => {
        $crate::commands::out::stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::commands::out::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that returns `Result<(), WriteError>`, for output that belongs on stderr.
macro_rules! errout {
    ($($arg:tt)*) => {
        $crate::commands::out::stderr(format_args!($($arg)*))
    };
}

/// `eprintln!` for diagnostics that never fails.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::commands::out::note(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that is always full.
    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_stream_is_an_error_not_a_panic() {
        let e = write_to(&mut Full, format_args!("{}", 42)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot write output: No space left on device (os error 28)"
        );
        let mut v = Vec::new();
        write_to(&mut v, format_args!("a{}", 1)).unwrap();
        assert_eq!(v, b"a1");
    }
}
