//! A running server's measured tree, split by kind like the estimate: the PSS of each
//! category (so memory shared between processes is counted once over the tree) put in the
//! kind its pages are.

use serde::Serialize;

use crate::proc::roles::Role;
use crate::snapshot::TreeSnapshot;

use super::split::{kind_of, Range, Split};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasuredProcess {
    pub pid: u32,
    pub role: Role,
    pub name: String,
    pub split: Split,
}

/// The tree as measured now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    /// When the tree was read (RFC 3339).
    pub taken_at: String,
    pub processes: Vec<MeasuredProcess>,
    /// The sum over the processes.
    pub split: Split,
}

impl Measured {
    pub fn of(snapshot: &TreeSnapshot) -> Measured {
        let mut total = Split::default();
        let processes = snapshot
            .processes
            .iter()
            .map(|p| {
                let mut split = Split::default();
                for (&category, usage) in &p.categories {
                    split.add(
                        kind_of(category, false, false),
                        Range::exact(usage.pss_bytes),
                    );
                }
                total = total.plus(&split);
                MeasuredProcess {
                    pid: p.pid,
                    role: p.role,
                    name: p.name.clone(),
                    split,
                }
            })
            .collect();
        Measured {
            taken_at: snapshot.taken_at.clone(),
            processes,
            split: total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::Category;
    use crate::snapshot::TreeSnapshot;

    #[test]
    fn categories_land_in_their_kinds() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/h100-pinned-snapshot.json"),
        )
        .unwrap();
        let snapshot: TreeSnapshot = serde_json::from_str(&text).unwrap();
        let m = Measured::of(&snapshot);
        assert_eq!(m.processes.len(), snapshot.processes.len());
        let pss = |c: Category| snapshot.total.categories.get(&c).map_or(0, |u| u.pss_bytes);
        // The fixture holds a 300 MiB pinned tensor.
        assert!(m.split.pinned.bytes >= 300 << 20, "{:?}", m.split);
        assert_eq!(m.split.pinned.bytes, pss(Category::Pinned));
        assert_eq!(
            m.split.anonymous.bytes,
            pss(Category::Heap)
                + pss(Category::Stack)
                + pss(Category::GpuDriver)
                + pss(Category::Kernel)
                + pss(Category::Other)
        );
        let all: u64 = Category::ALL.iter().map(|&c| pss(c)).sum();
        assert_eq!(m.split.total().bytes, all);
    }
}
