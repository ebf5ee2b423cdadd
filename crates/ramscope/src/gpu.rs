//! The GPUs `--gpu` names, by the memory CUDA reports for them (an engine's batch defaults
//! and its KV block count depend on it).

use serde::Serialize;

const GIB: f64 = (1u64 << 30) as f64;

/// A GPU model, by what `torch.cuda.get_device_properties().total_memory` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gpu {
    pub name: String,
    pub memory_bytes: u64,
}

/// Known GPUs: (names accepted, display name, GiB reported by CUDA).
const GPUS: &[(&[&str], &str, f64)] = &[
    (
        &["h100", "h100-80gb", "h100-sxm", "h100-pcie", "h800"],
        "H100-80GB",
        79.19,
    ),
    (&["h100-nvl", "h100-94gb"], "H100-NVL-94GB", 93.1),
    (&["gh200", "gh200-96gb"], "GH200-96GB", 94.5),
    (&["h200", "h200-141gb"], "H200-141GB", 139.8),
    (&["b200", "b200-180gb"], "B200-180GB", 178.4),
    (&["a100", "a100-80gb"], "A100-80GB", 79.15),
    (&["a100-40gb"], "A100-40GB", 39.39),
    (
        &["l40s", "l40s-48gb", "l40", "a6000", "rtx-a6000"],
        "L40S-48GB",
        44.39,
    ),
    (&["l4", "l4-24gb"], "L4-24GB", 22.05),
    (&["a10g", "a10", "a10g-24gb"], "A10G-24GB", 22.06),
    (&["rtx-4090", "4090", "rtx4090"], "RTX-4090-24GB", 23.64),
    (&["t4", "t4-16gb"], "T4-16GB", 14.58),
];

impl Gpu {
    /// The default: an H100 80 GB.
    pub fn default_gpu() -> Gpu {
        Gpu {
            name: GPUS[0].1.to_string(),
            memory_bytes: (GPUS[0].2 * GIB) as u64,
        }
    }

    /// A known name (`h100`, `A100-40GB`, `l4`…) or a memory size (`48GiB`).
    pub fn parse(s: &str) -> Option<Gpu> {
        let want = s.trim().to_ascii_lowercase();
        if let Some((_, name, gib)) = GPUS.iter().find(|(names, name, _)| {
            names.contains(&want.as_str()) || name.to_ascii_lowercase() == want
        }) {
            return Some(Gpu {
                name: name.to_string(),
                memory_bytes: (gib * GIB) as u64,
            });
        }
        let bytes = crate::units::parse_bytes(s).filter(|b| *b >= 1 << 30)?;
        Some(Gpu {
            name: format!("GPU-{}", crate::units::bytes(bytes).replace(' ', "")),
            memory_bytes: bytes,
        })
    }

    pub fn names() -> Vec<&'static str> {
        GPUS.iter().map(|g| g.0[0]).collect()
    }

    /// The memory in GiB.
    pub fn gib(&self) -> f64 {
        self.memory_bytes as f64 / GIB
    }
}
