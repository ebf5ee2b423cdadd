//! Memory by what the kernel can do with it under a cgroup limit: anonymous memory and
//! pinned memory stay until freed, shared memory (tmpfs, memfd, `MAP_SHARED`) is charged
//! and stays too, and only file-backed page cache can be reclaimed (then read again:
//! thrashing, when the process reads it all the time). docs/fit.md says why each category
//! goes where it goes.

use serde::ser::SerializeStruct;
use serde::Serialize;

use crate::attribute::Category;
use crate::units::Checked;

/// What the kernel can do with a page when the cgroup reaches its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Heap, stacks, anything private and anonymous: swapped at best, never dropped.
    Anonymous,
    /// CUDA pinned (page-locked) or mlocked memory: never swapped or dropped.
    Pinned,
    /// tmpfs (`/dev/shm`), memfd and shared anonymous memory: shmem, charged like anonymous.
    Shared,
    /// Mapped or read files (weights, libraries): page cache, the only kind reclaimable.
    File,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Anonymous, Kind::Pinned, Kind::Shared, Kind::File];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Anonymous => "anonymous",
            Kind::Pinned => "pinned",
            Kind::Shared => "shared",
            Kind::File => "file",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Anonymous => "anonymous (heap, stacks)",
            Kind::Pinned => "pinned or locked",
            Kind::Shared => "shared memory (shm, memfd)",
            Kind::File => "file-backed (page cache)",
        }
    }

    pub fn reclaimable(self) -> bool {
        self == Kind::File
    }
}

/// The kind of a category's pages; pinned or mlocked pages are pinned whatever their
/// category (a pinned heap buffer, a locked weight mapping).
pub fn kind_of(category: Category, pinned: bool, locked: bool) -> Kind {
    if pinned || locked {
        return Kind::Pinned;
    }
    match category {
        Category::Heap
        | Category::Stack
        | Category::GpuDriver
        | Category::Kernel
        | Category::Other => Kind::Anonymous,
        Category::Pinned => Kind::Pinned,
        Category::Shm | Category::SharedAnon => Kind::Shared,
        Category::Weights
        | Category::FileOther
        | Category::CodeCuda
        | Category::CodeTorch
        | Category::CodePython
        | Category::CodeOther => Kind::File,
    }
}

/// A point value and the range around it; `u64::MAX` anywhere means too large (see
/// [`Checked`]), which [`super::assess`] refuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Range {
    pub bytes: u64,
    pub low_bytes: u64,
    pub high_bytes: u64,
}

impl Range {
    pub fn new(bytes: u64, low_bytes: u64, high_bytes: u64) -> Range {
        Range {
            bytes,
            low_bytes: low_bytes.min(bytes),
            high_bytes: high_bytes.max(bytes),
        }
    }

    pub fn exact(bytes: u64) -> Range {
        Range::new(bytes, bytes, bytes)
    }

    fn each(self, other: Range, f: impl Fn(Checked, Checked) -> Checked) -> Range {
        let f = |a: u64, b: u64| f(Checked::new(a), Checked::new(b)).raw();
        Range {
            bytes: f(self.bytes, other.bytes),
            low_bytes: f(self.low_bytes, other.low_bytes),
            high_bytes: f(self.high_bytes, other.high_bytes),
        }
    }

    pub fn plus(self, other: Range) -> Range {
        self.each(other, |a, b| a + b)
    }

    /// Each end the larger of the two.
    pub fn max(self, other: Range) -> Range {
        self.each(other, |a, b| a.max(b))
    }

    pub fn times(self, n: u64) -> Range {
        self.each(Range::exact(n), |a, b| a * b)
    }

    pub fn is_too_large(self) -> bool {
        [self.bytes, self.low_bytes, self.high_bytes].contains(&u64::MAX)
    }

    pub fn is_exact(self) -> bool {
        self.low_bytes == self.bytes && self.high_bytes == self.bytes
    }
}

/// Bytes by [`Kind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    pub anonymous: Range,
    pub pinned: Range,
    pub shared: Range,
    pub file: Range,
}

impl Split {
    pub fn get(&self, kind: Kind) -> Range {
        match kind {
            Kind::Anonymous => self.anonymous,
            Kind::Pinned => self.pinned,
            Kind::Shared => self.shared,
            Kind::File => self.file,
        }
    }

    fn get_mut(&mut self, kind: Kind) -> &mut Range {
        match kind {
            Kind::Anonymous => &mut self.anonymous,
            Kind::Pinned => &mut self.pinned,
            Kind::Shared => &mut self.shared,
            Kind::File => &mut self.file,
        }
    }

    pub fn add(&mut self, kind: Kind, bytes: Range) {
        let r = self.get_mut(kind);
        *r = r.plus(bytes);
    }

    pub fn plus(&self, other: &Split) -> Split {
        let mut out = *self;
        for k in Kind::ALL {
            out.add(k, other.get(k));
        }
        out
    }

    pub fn times(&self, n: u64) -> Split {
        let mut out = Split::default();
        for k in Kind::ALL {
            out.add(k, self.get(k).times(n));
        }
        out
    }

    /// What the kernel cannot reclaim: anonymous + pinned + shared.
    pub fn non_reclaimable(&self) -> Range {
        Kind::ALL
            .into_iter()
            .filter(|k| !k.reclaimable())
            .fold(Range::default(), |sum, k| sum.plus(self.get(k)))
    }

    pub fn total(&self) -> Range {
        self.non_reclaimable().plus(self.file)
    }

    pub fn is_too_large(&self) -> bool {
        Kind::ALL.iter().any(|&k| self.get(k).is_too_large())
    }
}

/// The kinds, and their non-reclaimable sum and total, as JSON fields.
impl Serialize for Split {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Split", 6)?;
        st.serialize_field("anonymous", &self.anonymous)?;
        st.serialize_field("pinned", &self.pinned)?;
        st.serialize_field("shared", &self.shared)?;
        st.serialize_field("file", &self.file)?;
        st.serialize_field("non_reclaimable", &self.non_reclaimable())?;
        st.serialize_field("total", &self.total())?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_has_a_kind_and_only_files_are_reclaimable() {
        for c in Category::ALL {
            let kind = kind_of(c, false, false);
            let file_backed = matches!(
                c,
                Category::Weights
                    | Category::FileOther
                    | Category::CodeCuda
                    | Category::CodeTorch
                    | Category::CodePython
                    | Category::CodeOther
            );
            assert_eq!(kind.reclaimable(), file_backed, "{}", c.name());
            assert_eq!(kind_of(c, true, false), Kind::Pinned);
            assert_eq!(kind_of(c, false, true), Kind::Pinned, "mlock pins");
        }
        assert_eq!(kind_of(Category::Shm, false, false), Kind::Shared);
        assert_eq!(kind_of(Category::SharedAnon, false, false), Kind::Shared);
        assert_eq!(kind_of(Category::Pinned, false, false), Kind::Pinned);
    }

    #[test]
    fn sums_keep_ranges_and_refuse_overflow() {
        let mut s = Split::default();
        s.add(Kind::Anonymous, Range::new(100, 80, 150));
        s.add(Kind::File, Range::exact(40));
        s.add(Kind::Shared, Range::new(10, 0, 20));
        assert_eq!(s.non_reclaimable(), Range::new(110, 80, 170));
        assert_eq!(s.total(), Range::new(150, 120, 210));
        let three = s.times(3);
        assert_eq!(three.non_reclaimable(), Range::new(330, 240, 510));
        assert_eq!(s.plus(&s), s.times(2));
        assert!(!three.is_too_large());
        assert!(s.times(u64::MAX / 50).is_too_large());
        // Too large stays too large through later sums.
        let big = s.times(u64::MAX / 50);
        assert!(big.plus(&s).is_too_large());
        // A range is widened to hold its value.
        assert_eq!(Range::new(5, 9, 1), Range::exact(5));
    }

    #[test]
    fn json_carries_the_sums() {
        let mut s = Split::default();
        s.add(Kind::Pinned, Range::exact(7));
        s.add(Kind::File, Range::exact(5));
        let v = serde_json::to_value(s).unwrap();
        assert_eq!(v["non_reclaimable"]["bytes"], 7);
        assert_eq!(v["total"]["bytes"], 12);
        assert_eq!(v["file"]["high_bytes"], 5);
    }
}
