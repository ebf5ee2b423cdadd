//! `ramscope scan --diff OLD NEW`: the host-RAM changelog between two releases.
//!
//! A site's identity is its anchor (`InputBatch.token_ids_cpu_tensor`) and its method, not
//! its line. Sites are paired in three rounds, each on what the earlier rounds left:
//! 1. by (file, anchor, method): the same site, perhaps at another line (a *line shift*) or
//!    with another formula, pinnedness or dtype (*changed*);
//! 2. by (anchor, method) across files, when that pair names exactly one leftover site on
//!    each side: the site *moved* (a module renamed, a class moved to another file);
//! 3. by (file, anchor) with another method: *changed* (a CPU buffer that became pinned).
//!
//! Several sites sharing a key (one attribute assigned in two branches) pair in line order;
//! the extra ones are added or removed. What is left is *added* (NEW only) or *removed* (OLD
//! only). With [`Bindings`], every side carries its bytes so the changelog can be ranked by
//! byte impact ([`ScanDiff::sort_by_impact`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::{Bindings, Formula, Method, Pinned, Resolution, Scan, Site};
use crate::text::clean;
use crate::units;

pub const SCHEMA: &str = "ramscope.scan-diff/1";

/// One side (OLD or NEW) of an entry: where the site is and what it allocates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub file: String,
    pub line: u32,
    pub method: Method,
    #[serde(flatten)]
    pub pinned: Pinned,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    pub formula: Formula,
    pub resolution: Resolution,
    /// The formula's value for the bindings given; absent without bindings, or when the
    /// formula has a name without a value (or overflows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl Side {
    fn of(s: &Site, bindings: Option<&Bindings>) -> Side {
        Side {
            file: s.file.clone(),
            line: s.line,
            method: s.method,
            pinned: s.pinned.clone(),
            dtype: s.dtype.clone(),
            formula: s.formula.clone(),
            resolution: s.resolution,
            bytes: bindings
                .and_then(|b| s.formula.eval(b).ok())
                .and_then(|c| c.get()),
        }
    }
}

/// What differs between the two sides of a changed (or moved) site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Formula,
    Method,
    Pinned,
    Dtype,
}

/// One line of the changelog. `old` is absent for added sites, `new` for removed ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub anchor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Side>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Side>,
    /// For changed sites (and moved ones that also changed): what changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Field>,
    /// NEW bytes − OLD bytes (an absent side counts 0), when every present side has bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<i64>,
}

impl Entry {
    fn new(anchor: &str, old: Option<Side>, new: Option<Side>) -> Entry {
        let changes = match (&old, &new) {
            (Some(o), Some(n)) => changes(o, n),
            _ => Vec::new(),
        };
        let bytes = |s: &Option<Side>| match s {
            None => Some(0i128),
            Some(s) => s.bytes.map(i128::from),
        };
        let delta = match (bytes(&old), bytes(&new)) {
            (Some(o), Some(n)) => Some(saturate(n - o)),
            _ => None,
        };
        Entry {
            anchor: anchor.to_string(),
            old,
            new,
            changes,
            delta,
        }
    }

    /// The side that says where the entry is now: NEW, or OLD for a removed site.
    fn here(&self) -> Option<&Side> {
        self.new.as_ref().or(self.old.as_ref())
    }

    fn order_key(&self) -> (Loc<'_>, &str, Loc<'_>) {
        fn loc(s: Option<&Side>) -> Loc<'_> {
            s.map(|s| (s.file.as_str(), s.line))
        }
        (
            loc(self.here()),
            self.anchor.as_str(),
            loc(self.old.as_ref()),
        )
    }
}

type Loc<'a> = Option<(&'a str, u32)>;

fn changes(o: &Side, n: &Side) -> Vec<Field> {
    [
        (o.formula != n.formula, Field::Formula),
        (o.method != n.method, Field::Method),
        (o.pinned != n.pinned, Field::Pinned),
        (o.dtype != n.dtype, Field::Dtype),
    ]
    .into_iter()
    .filter_map(|(differs, f)| differs.then_some(f))
    .collect()
}

/// The host-RAM changelog between two scans.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanDiff {
    pub schema: &'static str,
    pub old_root: PathBuf,
    pub new_root: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    pub old_version: Option<String>,
    pub new_version: Option<String>,
    /// Whether bindings were given (then sides carry `bytes` where the formula has values).
    pub evaluated: bool,
    pub added: Vec<Entry>,
    pub removed: Vec<Entry>,
    pub moved: Vec<Entry>,
    pub changed: Vec<Entry>,
    /// Sites identical on both sides but for their line.
    pub unchanged: u64,
    /// How many of the unchanged sites are at another line.
    pub line_shifts: u64,
}

impl ScanDiff {
    /// Orders every list by byte impact, largest |delta| first; entries without a delta
    /// last; ties keep their file and line order.
    pub fn sort_by_impact(&mut self) {
        for list in [
            &mut self.added,
            &mut self.removed,
            &mut self.moved,
            &mut self.changed,
        ] {
            list.sort_by_key(|e| std::cmp::Reverse(e.delta.map(i64::unsigned_abs)));
        }
    }
}

/// [`diff_with`] without evaluation.
pub fn diff(old: &Scan, new: &Scan) -> ScanDiff {
    diff_with(old, new, None)
}

/// The changelog from `old` to `new`; with `bindings`, every side carries its bytes.
/// Lists are sorted by file and line (of NEW; of OLD for removed sites).
pub fn diff_with(old: &Scan, new: &Scan, bindings: Option<&Bindings>) -> ScanDiff {
    let (os, ns) = (&old.sites, &new.sites);
    let mut left = Left {
        old: line_order(os),
        new: line_order(ns),
    };
    let mut d = ScanDiff {
        schema: SCHEMA,
        old_root: old.root.clone(),
        new_root: new.root.clone(),
        package: new.package.clone().or_else(|| old.package.clone()),
        old_version: old.version.clone(),
        new_version: new.version.clone(),
        evaluated: bindings.is_some(),
        ..ScanDiff::default()
    };
    let entry = |o: Option<usize>, n: Option<usize>| {
        let anchor = n.map_or_else(|| o.map_or("", |o| &os[o].anchor), |n| &ns[n].anchor);
        let side = |sites: &[Site], i: Option<usize>| i.map(|i| Side::of(&sites[i], bindings));
        Entry::new(anchor, side(os, o), side(ns, n))
    };
    for (o, n) in left.pair(os, ns, false, |s| (&s.file, &s.anchor, s.method)) {
        let e = entry(Some(o), Some(n));
        if !e.changes.is_empty() {
            d.changed.push(e);
        } else {
            d.unchanged += 1;
            d.line_shifts += u64::from(os[o].line != ns[n].line);
        }
    }
    for (o, n) in left.pair(os, ns, true, |s| (&s.anchor, s.method)) {
        d.moved.push(entry(Some(o), Some(n)));
    }
    for (o, n) in left.pair(os, ns, false, |s| (&s.file, &s.anchor)) {
        d.changed.push(entry(Some(o), Some(n)));
    }
    d.removed = left.old.iter().map(|&o| entry(Some(o), None)).collect();
    d.added = left.new.iter().map(|&n| entry(None, Some(n))).collect();
    for list in [&mut d.added, &mut d.removed, &mut d.moved, &mut d.changed] {
        list.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    }
    d
}

/// Indices of `sites` by line (then file, anchor), so that groups pair in line order.
fn line_order(sites: &[Site]) -> Vec<usize> {
    let mut v: Vec<usize> = (0..sites.len()).collect();
    v.sort_by_key(|&i| (sites[i].line, &sites[i].file, &sites[i].anchor));
    v
}

/// The sites not paired yet, in line order.
struct Left {
    old: Vec<usize>,
    new: Vec<usize>,
}

impl Left {
    /// Pairs leftovers sharing a key, in line order (with `unique`, only keys naming one
    /// leftover on each side), and removes the pairs from the leftovers.
    fn pair<'a, K: Ord>(
        &mut self,
        old: &'a [Site],
        new: &'a [Site],
        unique: bool,
        key: impl Fn(&'a Site) -> K,
    ) -> Vec<(usize, usize)> {
        let group = |sites: &'a [Site], idx: &[usize]| {
            let mut g: BTreeMap<K, Vec<usize>> = BTreeMap::new();
            for &i in idx {
                g.entry(key(&sites[i])).or_default().push(i);
            }
            g
        };
        let (go, gn) = (group(old, &self.old), group(new, &self.new));
        let mut pairs = Vec::new();
        for (k, os) in &go {
            let Some(ns) = gn.get(k) else { continue };
            if unique && (os.len() != 1 || ns.len() != 1) {
                continue;
            }
            pairs.extend(os.iter().copied().zip(ns.iter().copied()));
        }
        let (po, pn): (BTreeSet<usize>, BTreeSet<usize>) = pairs.iter().copied().unzip();
        self.old.retain(|i| !po.contains(i));
        self.new.retain(|i| !pn.contains(i));
        pairs
    }
}

/// The changelog as text, lines fitted to `width` columns by shortening formulas with `…`.
pub fn render(d: &ScanDiff, width: usize) -> String {
    let mut out = String::new();
    let label = |v: &Option<String>, root: &PathBuf| match v {
        Some(v) => clean(v).into_owned(),
        None => clean(&root.display().to_string()).into_owned(),
    };
    let package = match (
        &d.package,
        d.old_version.is_some() || d.new_version.is_some(),
    ) {
        (Some(p), true) => format!("{} ", clean(p)),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "host-RAM sites, {package}{} → {}",
        label(&d.old_version, &d.old_root),
        label(&d.new_version, &d.new_root)
    );
    let sections = [
        ("added", &d.added),
        ("removed", &d.removed),
        ("moved", &d.moved),
        ("changed", &d.changed),
    ];
    for (title, list) in sections {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title} ({})", list.len());
        let rows: Vec<Row> = list
            .iter()
            .map(|e| Row::of(e, title, d.evaluated))
            .collect();
        // Columns aligned within a section; a cell wider than its cap is left to stick out.
        let cap = [width / 2, width / 3, width / 4];
        let mut cols = [0usize; 3];
        for (c, text) in rows.iter().flat_map(|r| r.cols.iter().enumerate()) {
            if text.width() <= cap[c] {
                cols[c] = cols[c].max(text.width());
            }
        }
        for r in &rows {
            let mut line = String::from("  ");
            for (c, text) in r.cols.iter().enumerate() {
                let fill = cols[c].saturating_sub(text.width()) + 2;
                line.push_str(text);
                line.push_str(&" ".repeat(fill));
            }
            let room = width.saturating_sub(line.width() + r.extra.width()).max(16);
            line.push_str(&r.formula(room));
            line.push_str(&r.extra);
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    let entries = || sections.iter().flat_map(|(_, l)| l.iter());
    let _ = write!(
        out,
        "\n{} unchanged ({} at a different line)",
        d.unchanged, d.line_shifts
    );
    if d.evaluated {
        let net: i128 = entries().filter_map(|e| e.delta).map(i128::from).sum();
        let _ = write!(out, "; net {}", units::signed_bytes(saturate(net)));
        let unknown = entries().filter(|e| e.delta.is_none()).count();
        if unknown > 0 {
            let _ = write!(out, " ({unknown} without a value)");
        }
    }
    out.push('\n');
    out
}

/// The printable parts of one entry, every string from the scanned source cleaned.
struct Row {
    /// Location (`file:line`, or `old → new` for a move), anchor, method.
    cols: [String; 3],
    /// The old formula, when it changed.
    old_formula: Option<String>,
    new_formula: String,
    /// Pinnedness and dtype changes, then bytes when evaluated.
    extra: String,
}

impl Row {
    fn of(e: &Entry, section: &str, evaluated: bool) -> Row {
        let loc = |s: &Side| format!("{}:{}", clean(&s.file), s.line);
        let (old, here) = (e.old.as_ref(), e.here());
        let location = match (old, &e.new) {
            (Some(o), Some(n)) if section == "moved" => format!("{} → {}", loc(o), loc(n)),
            _ => here.map(loc).unwrap_or_default(),
        };
        let method = match (old, &e.new) {
            (Some(o), Some(n)) if o.method != n.method => {
                format!("{} → {}", o.method.name(), n.method.name())
            }
            _ => here.map_or("", |s| s.method.name()).to_string(),
        };
        let text = |s: &Side| clean(&s.formula.to_string()).into_owned();
        let changed = old.filter(|_| e.changes.contains(&Field::Formula));
        Row {
            cols: [location, clean(&e.anchor).into_owned(), method],
            old_formula: changed.map(text),
            new_formula: here.map(text).unwrap_or_default(),
            extra: extra(e, evaluated),
        }
    }

    /// The formula (or `old → new`) in at most `room` columns.
    fn formula(&self, room: usize) -> String {
        let Some(old) = &self.old_formula else {
            return fit(&self.new_formula, room);
        };
        let (a, b) = (old.width(), self.new_formula.width());
        let room = room.saturating_sub(3);
        let half = room / 2;
        let (wa, wb) = if a + b <= room {
            (a, b)
        } else if a <= half {
            (a, room - a)
        } else if b <= half {
            (room - b, b)
        } else {
            (half, room - half)
        };
        format!("{} → {}", fit(old, wa), fit(&self.new_formula, wb))
    }
}

/// Pinnedness and dtype changes, then bytes when evaluated.
fn extra(e: &Entry, evaluated: bool) -> String {
    let mut out = String::new();
    let pinned = |p: &Pinned| match p {
        Pinned::No => "no".to_string(),
        Pinned::Yes => "yes".to_string(),
        Pinned::When(c) => format!("if {}", clean(c)),
    };
    let dtype = |d: &Option<String>| d.as_deref().map_or("-".into(), |d| clean(d).into_owned());
    if let (Some(o), Some(n)) = (&e.old, &e.new) {
        if e.changes.contains(&Field::Pinned) {
            let _ = write!(
                out,
                "  pinned: {} → {}",
                pinned(&o.pinned),
                pinned(&n.pinned)
            );
        }
        if e.changes.contains(&Field::Dtype) {
            let _ = write!(out, "  dtype: {} → {}", dtype(&o.dtype), dtype(&n.dtype));
        }
    }
    if evaluated {
        let b = |s: &Side| s.bytes.map_or("?".into(), units::bytes);
        let _ = match (&e.old, &e.new, e.delta) {
            (Some(_), Some(n), Some(0)) => write!(out, "  = {}", b(n)),
            (Some(o), Some(n), None) if o.bytes.is_none() && n.bytes.is_none() => {
                write!(out, "  = ?")
            }
            (Some(o), Some(n), d) => write!(
                out,
                "  = {} → {} ({})",
                b(o),
                b(n),
                d.map_or("?".into(), units::signed_bytes)
            ),
            (Some(s), None, _) | (None, Some(s), _) => write!(out, "  = {}", b(s)),
            (None, None, _) => Ok(()),
        };
    }
    out
}

fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// `s` in at most `w` columns, ending in `…` when shortened.
fn fit(s: &str, w: usize) -> String {
    if s.width() <= w {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if used + cw + 1 > w {
            break;
        }
        used += cw;
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sites written `file:line anchor formula`, comma-separated, the formula a product
    /// `a*b*4`; every site a CPU tensor of `torch.int32`.
    fn scan(version: Option<&str>, sites: &str) -> Scan {
        let term = |t: &str| t.parse().map_or_else(|_| Formula::name(t), Formula::Const);
        let site = |s: &str| {
            let w: Vec<&str> = s.split_whitespace().collect();
            let (file, line) = w[0].split_once(':').unwrap_or_default();
            Site {
                file: file.into(),
                line: line.parse().unwrap_or_default(),
                anchor: w[1].into(),
                scope: w[1].into(),
                method: Method::TorchCpu,
                pinned: Pinned::No,
                dtype: Some("torch.int32".into()),
                shape: String::new(),
                formula: Formula::product(w[2].split('*').map(term).collect()),
                resolution: Resolution::Full,
                via: Vec::new(),
                paths: 1,
                inner: None,
            }
        };
        let sites = sites.split(',').filter(|s| !s.trim().is_empty());
        Scan {
            schema: super::super::SCHEMA,
            root: PathBuf::from(format!("/src/vllm-{}", version.unwrap_or("x"))),
            package: Some("vllm".into()),
            version: version.map(String::from),
            files_scanned: 1,
            files_parsed: 1,
            bytes_scanned: 1,
            sites: sites.map(site).collect(),
            skipped: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn anchors(list: &[Entry]) -> Vec<&str> {
        list.iter().map(|e| e.anchor.as_str()).collect()
    }

    #[test]
    fn added_removed_line_shifts_and_the_json_shape() {
        let old = scan(Some("0.12.0"), "a.py:10 A.x r*4, a.py:20 A.gone 8");
        let new = scan(Some("0.33.0"), "a.py:14 A.x r*4, a.py:30 A.new 16");
        let d = diff(&old, &new);
        assert_eq!(anchors(&d.added), ["A.new"]);
        assert_eq!(anchors(&d.removed), ["A.gone"]);
        assert!(d.moved.is_empty() && d.changed.is_empty());
        assert_eq!((d.unchanged, d.line_shifts), (1, 1));
        let v = serde_json::to_value(&d).unwrap_or_default();
        assert_eq!(v["schema"], "ramscope.scan-diff/1");
        assert_eq!(v["old_version"], "0.12.0");
        assert_eq!(v["new_version"], "0.33.0");
        assert_eq!(v["unchanged"], 1);
        assert_eq!(v["line_shifts"], 1);
        assert_eq!(v["evaluated"], false);
        assert_eq!(v["added"][0]["new"]["formula"], "16");
        let removed = serde_json::to_string(&d.removed).unwrap_or_default();
        let want = r#"[{"anchor":"A.gone","old":{"file":"a.py","line":20,"method":"torch-cpu","#;
        let want = want.to_string()
            + r#""pinned":"no","dtype":"torch.int32","formula":"8","resolution":"full"}}]"#;
        assert_eq!(removed, want);
    }

    #[test]
    fn a_site_in_another_file_moved_only_when_its_anchor_is_unique() {
        let old = scan(None, "w/old.py:5 M.buf n, a.py:5 D.x n, b.py:5 D.x n");
        let new = scan(None, "v1/new.py:50 M.buf n*2, c.py:5 D.x n");
        let d = diff(&old, &new);
        assert_eq!(anchors(&d.moved), ["M.buf"]);
        assert_eq!(d.moved[0].changes, [Field::Formula]);
        assert_eq!(anchors(&d.removed), ["D.x", "D.x"]);
        assert_eq!(anchors(&d.added), ["D.x"]);
        assert_eq!(d.unchanged, 0);
        let text = render(&d, 100);
        let want = "\
host-RAM sites, /src/vllm-x → /src/vllm-x

added (1)
  c.py:5  D.x  torch-cpu  n

removed (2)
  a.py:5  D.x  torch-cpu  n
  b.py:5  D.x  torch-cpu  n

moved (1)
  w/old.py:5 → v1/new.py:50  M.buf  torch-cpu  n → n × 2

0 unchanged (0 at a different line)
";
        assert_eq!(text, want);
    }

    #[test]
    fn changes_of_formula_pinnedness_dtype_and_method() {
        let old = scan(None, "a.py:10 A.f r*4, a.py:11 A.p r, a.py:12 A.m r");
        let mut new = scan(None, "a.py:10 A.f r*l*4, a.py:11 A.p r, a.py:40 A.m r");
        new.sites[1].pinned = Pinned::When("is_pin_memory_available()".into());
        new.sites[1].dtype = Some("torch.int64".into());
        new.sites[2].method = Method::TorchPinned;
        let d = diff(&old, &new);
        assert_eq!(anchors(&d.changed), ["A.f", "A.p", "A.m"]);
        assert_eq!(d.changed[0].changes, [Field::Formula]);
        assert_eq!(d.changed[1].changes, [Field::Pinned, Field::Dtype]);
        assert_eq!(d.changed[2].changes, [Field::Method]);
        assert!(d.added.is_empty() && d.removed.is_empty() && d.moved.is_empty());
        let text = render(&d, 200);
        let want = "
changed (3)
  a.py:10  A.f  torch-cpu                 r × 4 → r × l × 4
  a.py:11  A.p  torch-cpu                 r  pinned: no → if is_pin_memory_available()  \
dtype: torch.int32 → torch.int64
  a.py:40  A.m  torch-cpu → torch-pinned  r
";
        assert!(text.contains(want), "{text}");
    }

    #[test]
    fn duplicate_anchors_pair_in_line_order_and_extras_are_added() {
        let old = scan(None, "a.py:20 A.x b, a.py:10 A.x a");
        let new = scan(None, "a.py:11 A.x a, a.py:21 A.x b, a.py:40 A.x c");
        let d = diff(&old, &new);
        assert_eq!((d.unchanged, d.line_shifts), (2, 2));
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.added[0].new.as_ref().map(|s| s.line), Some(40));
        assert!(d.changed.is_empty() && d.removed.is_empty() && d.moved.is_empty());
    }

    #[test]
    fn bindings_give_bytes_deltas_and_an_impact_order() {
        let old = scan(None, "a.py:1 A.a r*4, a.py:2 A.q q, a.py:5 A.b r");
        let new = "a.py:1 A.a r*l*4, a.py:2 A.q q*2, a.py:3 A.big l*1024, a.py:4 A.small 8";
        let b: Bindings = [("r".to_string(), 256), ("l".to_string(), 5120)].into();
        let mut d = diff_with(&old, &scan(None, new), Some(&b));
        assert!(d.evaluated);
        let a = &d.changed[0];
        assert_eq!(a.old.as_ref().and_then(|s| s.bytes), Some(1024));
        assert_eq!(a.new.as_ref().and_then(|s| s.bytes), Some(5_242_880));
        assert_eq!(a.delta, Some(5_242_880 - 1024));
        assert_eq!(d.changed[1].delta, None, "q has no value");
        assert_eq!(d.removed[0].delta, Some(-256));
        d.added.reverse();
        assert_eq!(anchors(&d.added), ["A.small", "A.big"]);
        d.sort_by_impact();
        assert_eq!(anchors(&d.added), ["A.big", "A.small"]);
        let want = "\
host-RAM sites, /src/vllm-x → /src/vllm-x

added (2)
  a.py:3  A.big    torch-cpu  l × 1024  = 5.00 MiB
  a.py:4  A.small  torch-cpu  8  = 8 B

removed (1)
  a.py:5  A.b  torch-cpu  r  = 256 B

changed (2)
  a.py:1  A.a  torch-cpu  r × 4 → r × l × 4  = 1.00 KiB → 5.00 MiB (+5.00 MiB)
  a.py:2  A.q  torch-cpu  q → q × 2  = ?

0 unchanged (0 at a different line); net +10.00 MiB (1 without a value)
";
        assert_eq!(render(&d, 200), want);
    }

    #[test]
    fn long_formulas_are_shortened_and_source_text_is_cleaned() {
        let long: Vec<String> = (0..30).map(|i| format!("name{i}")).collect();
        let old = scan(Some("0.12.0"), "a.py:3 A.gone 8");
        let new = format!("a.py:5 A.\u{1b}[31mred {}", long.join("*"));
        let text = render(&diff(&old, &scan(Some("0.33.0"), &new)), 60);
        let want = "\
host-RAM sites, vllm 0.12.0 → 0.33.0

added (1)
  a.py:5  A.\\x1b[31mred  torch-cpu  name0 × name1 × name2 ×…

removed (1)
  a.py:3  A.gone  torch-cpu  8

0 unchanged (0 at a different line)
";
        assert_eq!(text, want);
        assert!(text.lines().all(|l| l.width() <= 60));
        let changed = Row {
            cols: Default::default(),
            old_formula: Some("a".repeat(40)),
            new_formula: "b".repeat(10),
            extra: String::new(),
        };
        assert_eq!(
            changed.formula(30),
            format!("{}… → {}", "a".repeat(16), "b".repeat(10))
        );
        assert_eq!(fit("ab×cdé", 4), "ab×…");
    }
}
