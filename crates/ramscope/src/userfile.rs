//! Files a user names on the command line (recordings, snapshots, calibration profiles):
//! opened without blocking, refused unless regular, and read with a bound.
//!
//! `ramscope report /dev/zero` would otherwise read forever and grow without limit, a FIFO
//! would block the open until a writer came, and a multi-gigabyte file would be held whole
//! before its first byte was judged.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why a user's file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UserFileError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} is not a regular file", path.display())]
    NotRegular { path: PathBuf },
    #[error("{} is larger than {} (the most ramscope reads of such a file)", path.display(), crate::units::bytes(*limit))]
    TooLarge { path: PathBuf, limit: u64 },
}

/// Opens `path` for reading if it is a regular file (after following symlinks).
///
/// The type is checked before opening, so a device is never opened (opening some, such as a
/// watchdog or a tape, acts), and again on the opened file, so nothing can swap it in between.
/// The open itself does not block: `O_NONBLOCK` keeps a FIFO from waiting for a writer; reads
/// of a regular file ignore the flag.
pub fn open_regular(path: &Path) -> Result<File, UserFileError> {
    let io = |source| UserFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(UserFileError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(UserFileError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    Ok(file)
}

/// The whole of a regular file of at most `limit` bytes.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, UserFileError> {
    let file = open_regular(path)?;
    refuse_larger(path, &file, limit)?;
    read_all_capped(path, file, limit)
}

/// Refuses a file already larger than `limit`, before reading any of it.
pub fn refuse_larger(path: &Path, file: &File, limit: u64) -> Result<(), UserFileError> {
    let len = file
        .metadata()
        .map_err(|source| UserFileError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if len > limit {
        return Err(UserFileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(())
}

/// Everything `reader` yields, refusing more than `limit` bytes. The size is checked while
/// reading, not from metadata, since a file can grow after it was looked at.
pub fn read_all_capped(
    path: &Path,
    reader: impl Read,
    limit: u64,
) -> Result<Vec<u8>, UserFileError> {
    let mut buf = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| UserFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(UserFileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_directories_are_refused_without_reading() {
        for p in ["/dev/zero", "/dev/null", "/tmp"] {
            let e = open_regular(Path::new(p)).unwrap_err();
            assert_eq!(e.to_string(), format!("{p} is not a regular file"));
        }
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            open_regular(&fifo),
            Err(UserFileError::NotRegular { .. })
        ));
    }

    #[test]
    fn reads_stop_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"0123456789").unwrap();
        assert_eq!(read_capped(&f, 10).unwrap(), b"0123456789");
        let e = read_capped(&f, 9).unwrap_err();
        assert!(matches!(e, UserFileError::TooLarge { limit: 9, .. }), "{e}");
        assert!(matches!(
            read_capped(&dir.path().join("missing"), 9),
            Err(UserFileError::Io { .. })
        ));
    }
}
