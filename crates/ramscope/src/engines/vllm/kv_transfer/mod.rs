//! KV-cache transfer and offload connectors and the host RAM they hold: from
//! `--kv-transfer-config` (JSON, parsed the way vLLM's `KVTransferConfig` reads it) and from
//! `--kv-offloading-size` / `--kv-offloading-backend`, which vLLM turns into a connector
//! (`VllmConfig._post_init_kv_transfer_config`). Which connector and which keys count
//! depends on the release (the KV facts of [`super::releases`]).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::components::GIB;
use super::defaults::ResolveError;
use super::releases::{ConnectorSizing, KvOffload};
use super::Version;
use crate::units::Checked;

mod host;
#[cfg(test)]
mod tests;

pub(in crate::engines::vllm) use host::{host_buffers, shm_mapped};

/// What one connector keeps in each worker's host RAM.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KvHost {
    /// `OffloadingConnector` 0.11–0.13: `num_cpu_blocks` offloaded blocks per worker.
    OffloadBlocks { num_cpu_blocks: u64, chunk: Chunk },
    /// `OffloadingConnector` from 0.14: `cpu_bytes_to_use`, shared by all workers.
    OffloadBytes { cpu_bytes_to_use: u64, chunk: Chunk },
    /// `SimpleCPUOffloadConnector`: a private pinned pool in each worker.
    Simple { bytes_per_rank: u64, disk: bool },
    /// `NixlConnector` with `kv_buffer_device = "cpu"`: a host copy of the KV cache.
    NixlHostBuffer,
    /// `LMCacheConnectorV1` with its local CPU backend in every worker.
    LmcacheLocal { bytes_per_rank: u64 },
    /// `LMCacheMPConnector`: the storage is in a separate LMCache server.
    LmcacheServer,
    /// A connector whose host memory is not modelled.
    Unmodelled { connector: String },
}

/// How many GPU blocks one offloaded block (a chunk) holds: `blocks_per_chunk`, or
/// `block_size` tokens of `--block-size` tokens each; 1 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Chunk {
    Blocks(u64),
    Tokens(u64),
}

impl Chunk {
    /// GPU blocks per offloaded block; an error when the token count does not divide.
    pub(super) fn blocks(self, block_size: u64) -> Result<u64, String> {
        match self {
            Chunk::Blocks(b) => Ok(b.max(1)),
            Chunk::Tokens(t) if block_size > 0 && t % block_size == 0 && t > 0 => {
                Ok(t / block_size)
            }
            Chunk::Tokens(t) => Err(format!(
                "kv_connector_extra_config block_size {t} is not a multiple of --block-size {block_size}"
            )),
        }
    }
}

/// The connectors vLLM will run (several under `MultiConnector`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KvTransfer {
    pub connectors: Vec<KvHost>,
}

fn invalid(message: String) -> ResolveError {
    ResolveError::Invalid(message)
}

/// What the command line asks for, besides the release.
pub struct Request<'a> {
    /// `--kv-transfer-config`.
    pub transfer_config: Option<&'a str>,
    /// `--kv-offloading-size` in bytes (0 when not given).
    pub offloading_bytes: u64,
    pub offloading_backend: Option<&'a str>,
    /// TP × PP: vLLM splits server-wide sizes by it.
    pub ranks: u64,
    pub env: &'a BTreeMap<String, String>,
}

/// The connectors of a command line.
pub fn resolve(
    version: Version,
    req: &Request,
    notes: &mut Vec<String>,
) -> Result<KvTransfer, ResolveError> {
    let (transfer_config, offloading_bytes, offloading_backend, env) = (
        req.transfer_config,
        req.offloading_bytes,
        req.offloading_backend,
        req.env,
    );
    let mut config = match transfer_config {
        Some(text) => {
            let json: Value = serde_json::from_str(text)
                .map_err(|e| invalid(format!("--kv-transfer-config is not valid JSON: {e}")))?;
            match json {
                Value::Object(o) => Some(o),
                _ => {
                    return Err(invalid(
                        "--kv-transfer-config must be a JSON object such as {\"kv_connector\":\"OffloadingConnector\",…}".into(),
                    ))
                }
            }
        }
        None => None,
    };
    apply_offloading_flags(
        version,
        &mut config,
        offloading_bytes,
        offloading_backend,
        req.ranks,
        env,
        notes,
    )?;
    let mut out = KvTransfer::default();
    if let Some(config) = config {
        connectors_of(
            version,
            &config,
            req.ranks.max(1),
            0,
            &mut out.connectors,
            notes,
        )?;
    }
    Ok(out)
}

/// `--kv-offloading-size` and `--kv-offloading-backend` as vLLM folds them into the
/// transfer config: the connector is replaced, the extra config updated.
fn apply_offloading_flags(
    version: Version,
    config: &mut Option<Map<String, Value>>,
    bytes: u64,
    backend: Option<&str>,
    ranks: u64,
    env: &BTreeMap<String, String>,
    notes: &mut Vec<String>,
) -> Result<(), ResolveError> {
    let Some(native) = version.release().kv_offload.map(|k| k.value) else {
        if bytes > 0 || backend.is_some() {
            notes.push(format!(
                "--kv-offloading-size appeared in vLLM 0.12; vLLM {version} refuses it (use --kv-transfer-config)"
            ));
        }
        return Ok(());
    };
    let rel = version.release();
    let defaulted = rel.kv_offloading_backend_default.is_some();
    // 0.12/0.13 act on the backend (no default); later releases on the size.
    let backend = match (backend, defaulted) {
        (Some(b), _) => b,
        (None, true) => "native",
        (None, false) => {
            if bytes > 0 {
                notes.push(format!(
                    "--kv-offloading-size without --kv-offloading-backend does nothing in vLLM {version} (the backend has no default before 0.14)"
                ));
            }
            return Ok(());
        }
    };
    if bytes == 0 {
        if !defaulted {
            return Err(invalid(
                "You must set kv_offloading_size when kv_offloading_backend is set. (vLLM's VllmConfig)".into(),
            ));
        }
        return Ok(());
    }
    let gib = bytes as f64 / GIB as f64;
    let c = config.get_or_insert_with(Map::new);
    let extra = |c: &mut Map<String, Value>| -> Map<String, Value> {
        match c.remove("kv_connector_extra_config") {
            Some(Value::Object(o)) => o,
            _ => Map::new(),
        }
    };
    match backend {
        "native" if native == KvOffload::ZeroCpuBlocks => {
            return Err(invalid(format!(
                "--kv-offloading-backend native fails to start in vLLM {version}: VllmConfig passes num_cpu_blocks = 0 (vllm/config/vllm.py:481-489@0.12.0) and CPUOffloadingSpec raises \"num_cpu_blocks must be specified in kv_connector_extra_config\" (vllm/v1/kv_offload/cpu.py:24-28@0.12.0)"
            )))
        }
        "native" => {
            let simple = rel.simple_kv_offload.is_some()
                && env
                    .get("VLLM_USE_SIMPLE_KV_OFFLOAD")
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .is_some_and(|v| v != 0);
            let name = if simple {
                "SimpleCPUOffloadConnector"
            } else {
                "OffloadingConnector"
            };
            let mut e = extra(c);
            e.insert("cpu_bytes_to_use".into(), Value::from(bytes));
            c.insert("kv_connector".into(), Value::from(name));
            c.insert("kv_connector_extra_config".into(), Value::Object(e));
        }
        "lmcache" if rel.lmcache_separate_server.is_some() => {
            c.insert("kv_connector".into(), Value::from("LMCacheMPConnector"));
        }
        "lmcache" => {
            // 0.12–0.22: the extra config is replaced; each TP × PP rank gets its share.
            let mut e = Map::new();
            e.insert("lmcache.local_cpu".into(), Value::from(true));
            e.insert(
                "lmcache.max_local_cpu_size".into(),
                Value::from(gib / ranks.max(1) as f64),
            );
            c.insert("kv_connector".into(), Value::from("LMCacheConnectorV1"));
            c.insert("kv_connector_extra_config".into(), Value::Object(e));
        }
        other => {
            return Err(invalid(format!(
                "--kv-offloading-backend {other}: vLLM accepts native or lmcache"
            )))
        }
    }
    c.insert("kv_role".into(), Value::from("kv_both"));
    Ok(())
}

/// A positive whole number as vLLM's `int(…)` reads it (a number or a numeric string).
fn int_value(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().map(|f| Checked::from_f64(f.trunc()).raw())),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .filter(|v| *v != u64::MAX)
}

fn connectors_of(
    version: Version,
    config: &Map<String, Value>,
    ranks: u64,
    depth: usize,
    out: &mut Vec<KvHost>,
    notes: &mut Vec<String>,
) -> Result<(), ResolveError> {
    let name = match config.get("kv_connector") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(invalid(format!(
                "--kv-transfer-config: kv_connector must be a string, not {other}"
            )))
        }
    };
    let empty = Map::new();
    let extra = match config.get("kv_connector_extra_config") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(invalid(
                "--kv-transfer-config: kv_connector_extra_config must be a JSON object".into(),
            ))
        }
    };
    let get = |k: &str| extra.get(k).filter(|v| !v.is_null());
    let required = |k: &str| -> Result<u64, ResolveError> {
        // vLLM checks `if not value`: absent and 0 are refused alike.
        match get(k).map(|v| (v, int_value(v))) {
            None | Some((_, Some(0))) => Err(invalid(format!(
                "{name}: {k} must be specified in kv_connector_extra_config (vLLM {version} raises at start-up)"
            ))),
            Some((_, Some(bytes))) => Ok(bytes),
            Some((v, None)) => Err(invalid(format!(
                "{name}: {k} = {v} in kv_connector_extra_config is not a whole number below 2^64"
            ))),
        }
    };
    let sizing = version.release().kv_connector_sizing.map(|s| s.value);
    let host = match name {
        "OffloadingConnector" if sizing.is_none() => KvHost::Unmodelled {
            connector: format!("{name} (not in vLLM {version})"),
        },
        "OffloadingConnector" => {
            let spec = get("spec_name")
                .and_then(Value::as_str)
                .unwrap_or("CPUOffloadingSpec");
            if spec != "CPUOffloadingSpec" {
                KvHost::Unmodelled {
                    connector: format!("{name} with spec_name {spec}"),
                }
            } else {
                let chunk = match (get("blocks_per_chunk"), get("block_size")) {
                    (Some(_), Some(_)) => {
                        return Err(invalid(
                            "Specify only one of 'block_size' or 'blocks_per_chunk' in kv_connector_extra_config.".into(),
                        ))
                    }
                    (Some(b), None) => Chunk::Blocks(int_value(b).unwrap_or(1)),
                    (None, Some(t)) => Chunk::Tokens(int_value(t).unwrap_or(0)),
                    (None, None) => Chunk::Blocks(1),
                };
                if sizing == Some(ConnectorSizing::CpuBytesToUse) {
                    KvHost::OffloadBytes {
                        cpu_bytes_to_use: required("cpu_bytes_to_use")?,
                        chunk,
                    }
                } else {
                    KvHost::OffloadBlocks {
                        num_cpu_blocks: required("num_cpu_blocks")?,
                        chunk,
                    }
                }
            }
        }
        "SimpleCPUOffloadConnector" if version.release().simple_kv_offload.is_some() => {
            // cpu_bytes_to_use (default 8 GiB) is server-wide: each of the TP × PP ranks
            // gets its share, unless cpu_bytes_to_use_per_rank says otherwise.
            let disk = get("kv_offload_backend").and_then(Value::as_str) == Some("disk");
            let total = get("cpu_bytes_to_use")
                .and_then(int_value)
                .unwrap_or(8 * GIB);
            let per_rank = get("cpu_bytes_to_use_per_rank")
                .and_then(int_value)
                .unwrap_or(total / ranks);
            KvHost::Simple {
                bytes_per_rank: per_rank,
                disk,
            }
        }
        "NixlConnector" => {
            let device = config.get("kv_buffer_device").and_then(Value::as_str);
            if device == Some("cpu") {
                KvHost::NixlHostBuffer
            } else {
                return Ok(());
            }
        }
        "LMCacheConnectorV1" => match get("lmcache.max_local_cpu_size").and_then(Value::as_f64) {
            Some(gib) => KvHost::LmcacheLocal {
                bytes_per_rank: Checked::from_f64(gib * GIB as f64).raw(),
            },
            None => KvHost::Unmodelled {
                connector: format!("{name} (sized by LMCache's own configuration)"),
            },
        },
        "LMCacheMPConnector" => KvHost::LmcacheServer,
        "MultiConnector" if depth < 4 => {
            let Some(Value::Array(list)) = get("connectors") else {
                return Err(invalid(
                    "MultiConnector: kv_connector_extra_config.connectors must be a list of connector configs".into(),
                ));
            };
            for c in list {
                let Value::Object(c) = c else {
                    return Err(invalid(
                        "MultiConnector: each entry of connectors must be a JSON object".into(),
                    ));
                };
                connectors_of(version, c, ranks, depth + 1, out, notes)?;
            }
            return Ok(());
        }
        other => KvHost::Unmodelled {
            connector: other.to_string(),
        },
    };
    if let KvHost::Unmodelled { connector } = &host {
        notes.push(format!(
            "KV connector {connector}: its host memory is not modelled"
        ));
    }
    out.push(host);
    Ok(())
}
