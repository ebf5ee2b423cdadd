//! The process tree: who is whose child, from one scan of `/proc/*/stat`.

use std::collections::{BTreeMap, BTreeSet};

use super::status::ppid_from_stat;
use super::{Pid, ProcFs};

/// A parent map of every process visible at one moment.
#[derive(Debug, Clone, Default)]
pub struct ProcessTable {
    children: BTreeMap<Pid, Vec<Pid>>,
    parent: BTreeMap<Pid, Pid>,
}

impl ProcessTable {
    /// Scans every process. Processes that exit during the scan are simply not in the table.
    pub fn scan(fs: &ProcFs) -> std::io::Result<ProcessTable> {
        let mut table = ProcessTable::default();
        let mut buf = Vec::with_capacity(512);
        for pid in fs.pids()? {
            if fs.read_into(pid, "stat", &mut buf).is_err() {
                continue;
            }
            if let Some(ppid) = ppid_from_stat(&String::from_utf8_lossy(&buf)) {
                table.insert(pid, ppid);
            }
        }
        Ok(table)
    }

    pub fn insert(&mut self, pid: Pid, ppid: Pid) {
        self.parent.insert(pid, ppid);
        self.children.entry(ppid).or_default().push(pid);
    }

    pub fn contains(&self, pid: Pid) -> bool {
        self.parent.contains_key(&pid)
    }

    pub fn parent(&self, pid: Pid) -> Option<Pid> {
        self.parent.get(&pid).copied()
    }

    pub fn pids(&self) -> impl Iterator<Item = Pid> + '_ {
        self.parent.keys().copied()
    }

    pub fn children(&self, pid: Pid) -> &[Pid] {
        self.children.get(&pid).map_or(&[], Vec::as_slice)
    }

    /// `root` and all its descendants, parents before children.
    pub fn descendants(&self, root: Pid) -> Vec<Pid> {
        let mut out = vec![root];
        let mut seen = BTreeSet::from([root]);
        let mut i = 0;
        while i < out.len() {
            for &child in self.children(out[i]) {
                if seen.insert(child) {
                    out.push(child);
                }
            }
            i += 1;
        }
        out
    }

    /// Whether `ancestor` is `pid` or one of its ancestors.
    pub fn is_within(&self, pid: Pid, ancestor: Pid) -> bool {
        let mut cur = pid;
        for _ in 0..4096 {
            if cur == ancestor {
                return true;
            }
            match self.parent(cur) {
                Some(p) if p != cur && p != 0 => cur = p,
                _ => return false,
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_in_order() {
        let mut t = ProcessTable::default();
        t.insert(10, 1);
        t.insert(11, 10);
        t.insert(12, 10);
        t.insert(13, 11);
        t.insert(20, 1);
        assert_eq!(t.descendants(10), vec![10, 11, 12, 13]);
        assert!(t.is_within(13, 10));
        assert!(!t.is_within(20, 10));
    }

    #[test]
    fn scans_this_machine() {
        let t = ProcessTable::scan(&ProcFs::default()).unwrap();
        let me = std::process::id();
        assert!(t.contains(me));
        assert!(t.is_within(me, 1) || t.parent(me) == Some(0));
    }
}
