//! Safetensors headers: the 8-byte little-endian length, then that many bytes of JSON naming
//! every tensor's dtype, shape and byte range. Only the header is ever read; [`parse`] checks
//! it against the file's size, and every count is checked so no header can wrap one.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::{open_regular, strip_position, HfError, MAX_HEADER_BYTES};

/// One safetensors file, from its header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SafetensorsInfo {
    pub path: PathBuf,
    pub file_bytes: u64,
    /// Bytes of tensor data the header describes.
    pub tensor_bytes: u64,
    pub tensors: u64,
    pub parameters: u64,
    /// Tensor bytes per safetensors dtype (`BF16`, `F8_E4M3`, `U8`…).
    pub bytes_by_dtype: BTreeMap<String, u64>,
}

/// Reads a safetensors header without touching the tensor data. Only a regular file is
/// opened (a FIFO would block), and only the header's bytes are read.
pub fn read_safetensors_header(path: &Path) -> Result<SafetensorsInfo, HfError> {
    let io_err = |source| HfError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (mut file, file_bytes) = open_regular(path)?;
    let mut prefix = vec![0u8; 8];
    if file_bytes < 8 || file.read_exact(&mut prefix).is_err() {
        return Err(bad(
            path,
            format!("truncated: {file_bytes} bytes, shorter than the 8-byte header length"),
        ));
    }
    let claimed = u64::from_le_bytes([
        prefix[0], prefix[1], prefix[2], prefix[3], prefix[4], prefix[5], prefix[6], prefix[7],
    ]);
    // Never more than the limit or the file: an absurd length is refused by parse_prefix
    // from what was read, before anything of its size is allocated.
    let want = claimed.min(MAX_HEADER_BYTES).min(file_bytes - 8);
    (&mut file)
        .take(want)
        .read_to_end(&mut prefix)
        .map_err(io_err)?;
    parse_prefix(&prefix, file_bytes, path)
}

/// Parses a whole safetensors file held in memory (`path` names it in errors).
pub fn parse(bytes: &[u8], path: &Path) -> Result<SafetensorsInfo, HfError> {
    parse_prefix(bytes, bytes.len() as u64, path)
}

/// Parses the first bytes of a file of `file_bytes` bytes: the length, then the header.
fn parse_prefix(prefix: &[u8], file_bytes: u64, path: &Path) -> Result<SafetensorsInfo, HfError> {
    let Some(len_bytes) = prefix.get(..8) else {
        return Err(bad(
            path,
            format!("truncated: {file_bytes} bytes, shorter than the 8-byte header length"),
        ));
    };
    let mut len_buf = [0u8; 8];
    len_buf.copy_from_slice(len_bytes);
    let header_len = u64::from_le_bytes(len_buf);
    if header_len > MAX_HEADER_BYTES {
        return Err(bad(path, format!(
            "header length {header_len} bytes exceeds the {MAX_HEADER_BYTES}-byte limit; not reading it"
        )));
    }
    let after_len = file_bytes.saturating_sub(8);
    let available = (prefix.len() - 8) as u64;
    if header_len > after_len || header_len > available {
        return Err(bad(
            path,
            format!(
                "truncated: header claims {header_len} bytes but the file has only {} after the length",
                after_len.min(available)
            ),
        ));
    }
    let header = &prefix[8..8 + header_len as usize];
    let json: Value = serde_json::from_slice(header).map_err(|e| {
        bad(
            path,
            format!(
                "header is not valid JSON at byte offset {} (line {}, column {}): {}",
                8 + e.column().saturating_sub(1),
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ),
        )
    })?;
    let map = json
        .as_object()
        .ok_or_else(|| bad(path, "header is not a JSON object".into()))?;
    let data_len = after_len - header_len;
    let mut info = SafetensorsInfo {
        path: path.to_path_buf(),
        file_bytes,
        tensor_bytes: 0,
        tensors: 0,
        parameters: 0,
        bytes_by_dtype: BTreeMap::new(),
    };
    let overflow = |what: &str| bad(path, format!("{what} does not fit in 64 bits"));
    for (name, entry) in map {
        if name == "__metadata__" {
            continue;
        }
        let offsets = entry
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| Some((a.first()?.as_u64()?, a.get(1)?.as_u64()?)))
            .ok_or_else(|| bad(path, format!("tensor \"{name}\" has no valid data_offsets")))?;
        if offsets.1 < offsets.0 || offsets.1 > data_len {
            return Err(bad(
                path,
                format!(
                    "tensor \"{name}\" spans bytes {}..{} but the data section has {data_len}",
                    offsets.0, offsets.1
                ),
            ));
        }
        let dtype = entry
            .get("dtype")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        // A shape's product can pass 2^64 ([2^32, 2^32, 2^32]); wrapping would read as 0.
        let elements = match entry.get("shape").and_then(Value::as_array) {
            Some(dims) => dims.iter().try_fold(1u64, |acc, d| {
                let d = d.as_u64().ok_or_else(|| {
                    bad(
                        path,
                        format!("tensor \"{name}\" has a non-integer dimension"),
                    )
                })?;
                acc.checked_mul(d)
                    .ok_or_else(|| overflow(&format!("the element count of tensor \"{name}\"")))
            })?,
            None => 0,
        };
        let bytes = offsets.1 - offsets.0;
        if let Some(size) = element_bits(&dtype) {
            let expected = u128::from(elements) * u128::from(size);
            if expected.div_ceil(8) != u128::from(bytes) {
                return Err(bad(
                    path,
                    format!(
                        "tensor \"{name}\": {elements} {dtype} elements do not fill its {bytes} bytes"
                    ),
                ));
            }
        }
        info.tensor_bytes = info
            .tensor_bytes
            .checked_add(bytes)
            .ok_or_else(|| overflow("the sum of tensor sizes"))?;
        info.tensors += 1;
        info.parameters = info
            .parameters
            .checked_add(elements)
            .ok_or_else(|| overflow("the parameter count"))?;
        let by_dtype = info.bytes_by_dtype.entry(dtype).or_default();
        // ≤ tensor_bytes, which was checked above.
        *by_dtype += bytes;
    }
    Ok(info)
}

/// Bits per element of the dtypes the safetensors format defines (`None`: unknown, not
/// checked).
fn element_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" | "F8_E8M0" => 8,
        "U16" | "I16" | "F16" | "BF16" => 16,
        "U32" | "I32" | "F32" => 32,
        "U64" | "I64" | "F64" => 64,
        "F4" => 4,
        _ => return None,
    })
}

fn bad(path: &Path, message: String) -> HfError {
    HfError::Safetensors {
        path: path.to_path_buf(),
        message,
    }
}

/// Every `*.safetensors` file in a model folder, sorted by name.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>, HfError> {
    let entries = std::fs::read_dir(dir).map_err(|source| HfError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    Ok(files)
}

/// Fuzz entry point: any bytes as a whole safetensors file. Never panics, touches no file;
/// a header it accepts has counts that add up.
pub fn fuzz_safetensors(data: &[u8]) {
    if let Ok(info) = parse(data, Path::new("fuzz.safetensors")) {
        assert!(info.tensor_bytes <= info.file_bytes.saturating_mul(info.tensors.max(1)));
        assert!(info
            .bytes_by_dtype
            .values()
            .all(|b| *b <= info.tensor_bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Write;

    fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        let mut f = File::create(&p).unwrap();
        f.write_all(bytes).unwrap();
        p
    }

    fn safetensors(header: &str, data: usize) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend(vec![0u8; data]);
        v
    }

    #[test]
    fn reads_a_header() {
        let dir = tempfile::tempdir().unwrap();
        let h = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#;
        let p = write_file(dir.path(), "m.safetensors", &safetensors(h, 16));
        let info = read_safetensors_header(&p).unwrap();
        assert_eq!(info.tensor_bytes, 16);
        assert_eq!(info.parameters, 7);
        assert_eq!(info.bytes_by_dtype["BF16"], 12);
        assert_eq!(parse(&safetensors(h, 16), &p).unwrap(), info);
    }

    #[test]
    fn refuses_oversized_and_truncated_headers() {
        let dir = tempfile::tempdir().unwrap();
        // Claims 2^62 bytes of header: must be refused without allocating it.
        let mut huge = (1u64 << 62).to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        let p = write_file(dir.path(), "huge.safetensors", &huge);
        let err = read_safetensors_header(&p).unwrap_err().to_string();
        assert!(err.contains("exceeds"), "{err}");

        let mut short = 1000u64.to_le_bytes().to_vec();
        short.extend_from_slice(b"{\"a\":");
        let p = write_file(dir.path(), "short.safetensors", &short);
        let err = read_safetensors_header(&p).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");

        let p = write_file(dir.path(), "tiny.safetensors", b"abc");
        assert!(read_safetensors_header(&p).is_err());

        let h = r#"{"a":{"dtype":"BF16","shape":[8],"data_offsets":[0,16]}}"#;
        let p = write_file(dir.path(), "cut.safetensors", &safetensors(h, 4));
        let err = read_safetensors_header(&p).unwrap_err().to_string();
        assert!(err.contains("data section"), "{err}");
    }

    #[test]
    fn a_shape_past_2_pow_64_is_refused_not_wrapped() {
        // 2^32 × 2^32 × 2^32 wraps to 0 in u64: it read as 0 parameters before.
        let h = r#"{"w":{"dtype":"U8","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}}"#;
        let err = parse(&safetensors(h, 0), Path::new("m.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not fit in 64 bits"), "{err}");
        // A shape that disagrees with its byte range is malformed.
        let h = r#"{"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}}"#;
        let err = parse(&safetensors(h, 4), Path::new("m.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("do not fill"), "{err}");
    }

    #[test]
    fn fuzz_entry_survives_odd_bytes() {
        for data in [
            &b""[..],
            b"\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x02\0\0\0\0\0\0\0{}",
            b"\x02\0\0\0\0\0\0\0[]",
            b"\x10\0\0\0\0\0\0\0{\"a\":{\"shape\":[-1]}}",
        ] {
            fuzz_safetensors(data);
        }
    }
}
