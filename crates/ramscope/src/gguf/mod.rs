//! GGUF files: the metadata and the tensor table, read without touching the tensor data.
//!
//! Layout (GGUF v2 and v3; v1 used 32-bit counts and is refused as too old): the magic
//! `GGUF`, a u32 version, u64 tensor and key-value counts, the key-value pairs (string key,
//! u32 type, value), the tensor infos (name, u32 dimension count, u64 dimensions, u32 ggml type,
//! u64 offset into the data), then the data at the next multiple of `general.alignment`
//! (default 32). Everything is little-endian.
//!
//! Every length and count in a header is checked against what is left to read and against
//! fixed bounds before anything of its size is allocated, so a hostile header is one error,
//! never a huge allocation, a wrapped number or a panic.

pub mod builder;
pub mod types;

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

/// Headers larger than this are refused (the largest real ones, vocabularies of a few hundred
/// thousand tokens with scores and merges, are tens of MiB).
pub const MAX_HEADER_BYTES: u64 = 512 << 20;
/// Tensors and key-value pairs a header may declare.
const MAX_COUNT: u64 = 1 << 24;
/// ggml tensors have at most 4 dimensions (GGML_MAX_DIMS).
const MAX_DIMS: u32 = 4;
/// Array elements kept as values (longer arrays, such as vocabularies, keep their length only).
const MAX_KEPT_ARRAY: u64 = 4096;

#[derive(Debug, Error)]
pub enum GgufError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a GGUF model file: {reason}")]
    Bad { path: PathBuf, reason: String },
}

/// A metadata value. Arrays keep their element type and length, and their values when short.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
    Text(String),
    Array { len: u64, values: Vec<Value> },
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint(v) => Some(v),
            Value::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tensor {
    pub name: String,
    pub dims: Vec<u64>,
    /// The ggml type's name (`Q4_K`, `F16`…).
    pub kind: &'static str,
    pub type_id: u32,
    /// Offset from the start of the data section.
    pub offset: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GgufInfo {
    pub path: PathBuf,
    pub version: u32,
    pub file_bytes: u64,
    /// Where the tensor data starts (the header's size, aligned).
    pub data_offset: u64,
    pub alignment: u64,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<Tensor>,
    pub tensor_bytes: u64,
    pub bytes_by_type: BTreeMap<&'static str, u64>,
}

impl GgufInfo {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// `general.architecture` (`llama`, `qwen3`…).
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(Value::as_str)
    }

    /// An architecture-scoped number: `<arch>.<key>` (e.g. `block_count`, `context_length`).
    pub fn arch_u64(&self, key: &str) -> Option<u64> {
        let arch = self.architecture()?;
        self.get(&format!("{arch}.{key}")).and_then(Value::as_u64)
    }
}

/// Reads a GGUF file's header. Only a regular file is opened (a FIFO would block); the tensor
/// data is never read.
pub fn read_header(path: &Path) -> Result<GgufInfo, GgufError> {
    let io = |source| GgufError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(bad(path, "not a regular file".into()));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let limit = meta.len().min(MAX_HEADER_BYTES);
    parse_from(BufReader::new(file.take(limit)), meta.len(), path)
}

/// Parses a GGUF file held in memory (`path` names it in errors).
pub fn parse(bytes: &[u8], path: &Path) -> Result<GgufInfo, GgufError> {
    let limit = (bytes.len() as u64).min(MAX_HEADER_BYTES) as usize;
    parse_from(&bytes[..limit], bytes.len() as u64, path)
}

fn bad(path: &Path, reason: String) -> GgufError {
    GgufError::Bad {
        path: path.to_path_buf(),
        reason,
    }
}

/// A reader that knows how many header bytes may remain, so every length can be checked
/// before it is used.
struct Cursor<R> {
    inner: R,
    at: u64,
    /// Bytes the header may still take (the file's size and MAX_HEADER_BYTES both bound it).
    left: u64,
}

impl<R: Read> Cursor<R> {
    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, String> {
        if n > self.left {
            return Err(format!(
                "{what} at byte {} claims {n} bytes, more than the {} left",
                self.at, self.left
            ));
        }
        let mut buf = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| format!("truncated in {what} at byte {}", self.at))?;
        self.at += n;
        self.left -= n;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let v = self.bytes(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&v);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let len = self.u64(what)?;
        let raw = self.bytes(len, what)?;
        String::from_utf8(raw).map_err(|_| format!("{what} at byte {} is not UTF-8", self.at))
    }

    /// Skips `n` bytes without keeping them (long arrays).
    fn skip(&mut self, n: u64, what: &str) -> Result<(), String> {
        if n > self.left {
            return Err(format!(
                "{what} at byte {} claims {n} bytes, more than the {} left",
                self.at, self.left
            ));
        }
        let copied = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())
            .map_err(|_| format!("truncated in {what}"))?;
        if copied != n {
            return Err(format!("truncated in {what} at byte {}", self.at));
        }
        self.at += n;
        self.left -= n;
        Ok(())
    }
}

/// Bytes of one element of a fixed-size value type; None for strings and arrays.
fn fixed_size(kind: u32) -> Option<u64> {
    match kind {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

fn scalar<R: Read>(c: &mut Cursor<R>, kind: u32, key: &str) -> Result<Value, String> {
    Ok(match kind {
        0 => Value::Uint(c.array::<1>(key)?[0] as u64),
        1 => Value::Int(c.array::<1>(key)?[0] as i8 as i64),
        2 => Value::Uint(u16::from_le_bytes(c.array(key)?) as u64),
        3 => Value::Int(i16::from_le_bytes(c.array(key)?) as i64),
        4 => Value::Uint(c.u32(key)? as u64),
        5 => Value::Int(i32::from_le_bytes(c.array(key)?) as i64),
        6 => Value::Float(f32::from_le_bytes(c.array(key)?) as f64),
        7 => Value::Bool(c.array::<1>(key)?[0] != 0),
        8 => Value::Text(c.string(key)?),
        10 => Value::Uint(c.u64(key)?),
        11 => Value::Int(i64::from_le_bytes(c.array(key)?)),
        12 => Value::Float(f64::from_le_bytes(c.array(key)?)),
        other => return Err(format!("{key}: unknown value type {other}")),
    })
}

fn value<R: Read>(c: &mut Cursor<R>, kind: u32, key: &str) -> Result<Value, String> {
    if kind != 9 {
        return scalar(c, kind, key);
    }
    let elem = c.u32(key)?;
    let len = c.u64(key)?;
    if elem == 9 {
        return Err(format!("{key}: arrays of arrays are not GGUF"));
    }
    // Each element takes at least a byte (strings at least their 8-byte length).
    let least = fixed_size(elem).unwrap_or(8);
    if len.checked_mul(least).map_or(true, |b| b > c.left) {
        return Err(format!(
            "{key}: an array of {len} elements cannot fit in what is left"
        ));
    }
    if len > MAX_KEPT_ARRAY {
        match fixed_size(elem) {
            Some(size) => c.skip(len * size, key)?,
            None => {
                for _ in 0..len {
                    if elem != 8 {
                        return Err(format!("{key}: unknown array element type {elem}"));
                    }
                    let n = c.u64(key)?;
                    c.skip(n, key)?;
                }
            }
        }
        return Ok(Value::Array {
            len,
            values: Vec::new(),
        });
    }
    let mut values = Vec::with_capacity(len as usize);
    for _ in 0..len {
        values.push(scalar(c, elem, key)?);
    }
    Ok(Value::Array { len, values })
}

fn parse_from<R: Read>(inner: R, file_bytes: u64, path: &Path) -> Result<GgufInfo, GgufError> {
    let mut c = Cursor {
        inner,
        at: 0,
        left: file_bytes.min(MAX_HEADER_BYTES),
    };
    header(&mut c, file_bytes, path).map_err(|reason| bad(path, reason))
}

fn header<R: Read>(c: &mut Cursor<R>, file_bytes: u64, path: &Path) -> Result<GgufInfo, String> {
    let magic = c
        .array::<4>("the magic")
        .map_err(|_| "shorter than its magic".to_string())?;
    if &magic != b"GGUF" {
        return Err("no GGUF magic".into());
    }
    let version = c.u32("the version")?;
    if !(2..=3).contains(&version) {
        return Err(format!("version {version} (2 and 3 are read)"));
    }
    let n_tensors = c.u64("the tensor count")?;
    let n_kv = c.u64("the metadata count")?;
    if n_tensors > MAX_COUNT || n_kv > MAX_COUNT {
        return Err(format!(
            "{n_tensors} tensors and {n_kv} metadata keys: too many"
        ));
    }
    let mut metadata = BTreeMap::new();
    for _ in 0..n_kv {
        let key = c.string("a metadata key")?;
        let kind = c.u32(&key)?;
        let v = value(c, kind, &key)?;
        if metadata.insert(key.clone(), v).is_some() {
            return Err(format!("metadata key {key} appears twice"));
        }
    }
    let alignment = match metadata.get("general.alignment") {
        None => 32,
        Some(v) => match v.as_u64() {
            Some(a) if a.is_power_of_two() && a <= 1 << 20 => a,
            _ => return Err(format!("general.alignment {v:?} is not a power of two")),
        },
    };
    let mut tensors = Vec::with_capacity(n_tensors.min(1 << 16) as usize);
    for _ in 0..n_tensors {
        tensors.push(tensor_info(c)?);
    }
    let data_offset =
        c.at.div_ceil(alignment)
            .checked_mul(alignment)
            .ok_or("data offset overflows")?;
    let mut bytes_by_type: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut tensor_bytes: u64 = 0;
    for t in &tensors {
        if t.offset % alignment != 0 {
            return Err(format!("tensor {} is not aligned to {alignment}", t.name));
        }
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|o| o.checked_add(t.bytes))
            .ok_or_else(|| format!("tensor {} ends beyond any file", t.name))?;
        if end > file_bytes {
            return Err(format!(
                "tensor {} ends at byte {end}, past the file's {file_bytes} bytes",
                t.name
            ));
        }
        tensor_bytes = tensor_bytes
            .checked_add(t.bytes)
            .ok_or("tensor bytes overflow")?;
        *bytes_by_type.entry(t.kind).or_default() += t.bytes;
    }
    Ok(GgufInfo {
        path: path.to_path_buf(),
        version,
        file_bytes,
        data_offset,
        alignment,
        metadata,
        tensors,
        tensor_bytes,
        bytes_by_type,
    })
}

fn tensor_info<R: Read>(c: &mut Cursor<R>) -> Result<Tensor, String> {
    let name = c.string("a tensor name")?;
    let n_dims = c.u32(&name)?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(format!("tensor {name} has {n_dims} dimensions"));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(c.u64(&name)?);
    }
    let type_id = c.u32(&name)?;
    let offset = c.u64(&name)?;
    let (kind, _, _) = types::lookup(type_id)
        .ok_or_else(|| format!("tensor {name} has unknown type {type_id}"))?;
    let elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("tensor {name}: element count overflows"))?;
    let bytes = types::tensor_bytes(type_id, elements).ok_or_else(|| {
        format!("tensor {name}: {elements} elements do not fill whole {kind} blocks")
    })?;
    Ok(Tensor {
        name,
        dims,
        kind,
        type_id,
        offset,
        bytes,
    })
}

#[cfg(test)]
mod tests;
