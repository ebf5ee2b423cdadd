//! The tracer library: where `ramscope trace` finds `libramscope_trace.so`.
//!
//! The library is built with ramscope and embedded in the binary (build.rs). On first use it is
//! written to a cache file named by its content hash (so two ramscope versions never share one)
//! and preloaded from there. `RAMSCOPE_TRACE_LIB` points at another build instead.

use std::io::Write;
use std::path::PathBuf;

use thiserror::Error;

static EMBEDDED: &[u8] = include_bytes!(env!("RAMSCOPE_TRACE_EMBED"));

#[derive(Debug, Error)]
pub enum LibraryError {
    #[error("RAMSCOPE_TRACE_LIB={0} is not a readable file")]
    Override(String),
    #[error("cannot write the tracer library to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// FNV-1a of the embedded bytes: a name for this build of the library.
fn content_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("ramscope");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join(".cache/ramscope");
    }
    std::env::temp_dir().join("ramscope")
}

/// An absolute path to the tracer library, written out if needed.
pub fn path() -> Result<PathBuf, LibraryError> {
    if let Some(p) = std::env::var_os("RAMSCOPE_TRACE_LIB") {
        let p = PathBuf::from(p);
        return match std::fs::canonicalize(&p) {
            Ok(abs) if abs.is_file() => Ok(abs),
            _ => Err(LibraryError::Override(p.display().to_string())),
        };
    }
    let dir = cache_dir();
    let path = dir.join(format!(
        "libramscope_trace-{:016x}.so",
        content_hash(EMBEDDED)
    ));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == EMBEDDED.len() as u64) {
        return Ok(path);
    }
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        // A temporary name, then rename: a concurrent ramscope never preloads half a file.
        let tmp = dir.join(format!(".libramscope_trace-{}.tmp", std::process::id()));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(EMBEDDED)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|source| LibraryError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The embedded library's size (for `ramscope trace --help`-style diagnostics and tests).
pub fn embedded_len() -> usize {
    EMBEDDED.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_library_is_a_shared_object_that_exports_the_hooks() {
        assert_eq!(&EMBEDDED[..4], b"\x7fELF", "not an ELF file");
        for symbol in [
            &b"malloc\0"[..],
            b"cudaHostAlloc\0",
            b"cuGetProcAddress_v2\0",
            b"mremap\0",
        ] {
            assert!(
                EMBEDDED.windows(symbol.len()).any(|w| w == symbol),
                "{} not in the library",
                String::from_utf8_lossy(symbol)
            );
        }
    }

    #[test]
    fn hash_names_change_with_content() {
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
        assert_eq!(content_hash(b"abc"), content_hash(b"abc"));
    }
}
