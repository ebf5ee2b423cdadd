//! Every sample as CSV, ready to plot: one `total` row per process at every sample (RSS
//! from `status`, PSS/USS/swap as last read), and one row per process and category at every
//! sample from the process's first `smaps` read on. Category rows hold the latest split
//! until the next read, as the charts do, and their PSS is scaled down to the process's RSS
//! when that fell below it (`record::timeline`), RSS and USS in the same ratio; `split_t_s` says when the split was read,
//! so rows where it equals `t_s` are the reads themselves.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::attribute::Category;
use crate::proc::Pid;
use crate::record::timeline::Holder;
use crate::record::Recording;

pub const HEADER: &str =
    "t_s,pid,ppid,role,name,read,category,rss_bytes,pss_bytes,uss_bytes,swap_bytes,split_t_s";

/// A category's numbers at its latest `smaps` read.
#[derive(Debug, Clone, Copy, Default)]
struct Read {
    rss: u64,
    pss: u64,
    uss: u64,
    swap: u64,
}

/// Quotes a field when it holds a comma, quote or newline.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn render(rec: &Recording) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    out.push('\n');
    let mut holders: BTreeMap<Pid, Holder> = BTreeMap::new();
    // The other columns of each category as last read, held with its PSS.
    let mut last_read: BTreeMap<Pid, BTreeMap<Category, Read>> = BTreeMap::new();
    for s in &rec.samples {
        for p in &s.snapshot.processes {
            let read = p.read.map_or("", |r| r.name());
            let name = field(&p.name);
            let _ = writeln!(
                out,
                "{:.3},{},{},{},{},{},total,{},{},{},{},",
                s.t_s,
                p.pid,
                p.ppid,
                p.role.name(),
                name,
                read,
                p.rss_bytes,
                p.pss_bytes,
                p.uss_bytes,
                p.swap_bytes
            );
            let held = holders.entry(p.pid).or_default().update(s.t_s, p);
            let others = last_read.entry(p.pid).or_default();
            if !p.categories.is_empty() {
                *others = p
                    .categories
                    .iter()
                    .map(|(&c, u)| {
                        let read = Read {
                            rss: u.rss_bytes,
                            pss: u.pss_bytes,
                            uss: u.uss_bytes,
                            swap: u.swap_bytes,
                        };
                        (c, read)
                    })
                    .collect();
            }
            let Some(held) = held else { continue };
            for (c, pss) in &held.pss {
                let r = others.get(c).copied().unwrap_or_default();
                // RSS and USS shrink in the ratio PSS was scaled down by.
                let scaled = |v: u64| {
                    if r.pss == 0 || *pss >= r.pss {
                        v
                    } else {
                        (v as u128 * *pss as u128 / r.pss as u128) as u64
                    }
                };
                let _ = writeln!(
                    out,
                    "{:.3},{},{},{},{},{},{},{},{},{},{},{:.3}",
                    s.t_s,
                    p.pid,
                    p.ppid,
                    p.role.name(),
                    name,
                    read,
                    c.name(),
                    scaled(r.rss),
                    pss,
                    scaled(r.uss),
                    r.swap,
                    held.read_t_s
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_awkward_names() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("python3"), "python3");
    }
}
