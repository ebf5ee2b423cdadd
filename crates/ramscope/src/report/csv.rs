//! Every sample as CSV: one row per process and category at samples that read `smaps`, and
//! one `total` row per process at every sample (RSS from `status`, PSS as last read).

use std::fmt::Write;

use crate::record::Recording;

pub const HEADER: &str =
    "t_s,pid,ppid,role,name,read,category,rss_bytes,pss_bytes,uss_bytes,swap_bytes";

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
    for s in &rec.samples {
        for p in &s.snapshot.processes {
            let read = p.read.map_or("", |r| r.name());
            let name = field(&p.name);
            let _ = writeln!(
                out,
                "{:.3},{},{},{},{},{},total,{},{},{},{}",
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
            for (c, u) in &p.categories {
                let _ = writeln!(
                    out,
                    "{:.3},{},{},{},{},{},{},{},{},{},{}",
                    s.t_s,
                    p.pid,
                    p.ppid,
                    p.role.name(),
                    name,
                    read,
                    c.name(),
                    u.rss_bytes,
                    u.pss_bytes,
                    u.uss_bytes,
                    u.swap_bytes
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
