//! The statement scanner against hand-written files, and the plan against small trees: what
//! is parsed of each file.

use super::*;

fn kinds(src: &str) -> Vec<(Kind, String, usize)> {
    statements(src.as_bytes())
        .iter()
        .map(|s| {
            let name = s
                .name(src.as_bytes())
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .unwrap_or_default();
            (s.kind, name, s.row)
        })
        .collect()
}

#[test]
fn splits_at_statements_only() {
    let src = r#"'''Docstring
def not_a_def():
'''
import os
from x import (
a,
)
X = [
1,
]
@dec(
  1)
@other
async def f(a, b):
    s = """
class NotAClass:
"""
    return a \
+ b
if TYPE_CHECKING:
    import y
else:
    y = None
# comment at column 0
class C(Base, metaclass=M):
    pass
try:
    pass
except E:
    pass
finally:
    pass
def g(self) -> None: pass
"#;
    let k = kinds(src);
    let want = [
        (Kind::Other, "", 0),
        (Kind::Import, "", 3),
        (Kind::Import, "", 4),
        (Kind::Other, "", 7),
        (Kind::Def, "f", 10),
        (Kind::Other, "", 19),
        (Kind::Class, "C", 24),
        (Kind::Other, "", 26),
        (Kind::Def, "g", 32),
    ];
    let got: Vec<(Kind, &str, usize)> = k.iter().map(|(a, b, c)| (*a, b.as_str(), *c)).collect();
    assert_eq!(got, want);
    let stmts = statements(src.as_bytes());
    let b = src.as_bytes();
    assert!(stmts[4].has_params(b));
    assert!(!stmts[8].has_params(b));
    assert_eq!(stmts[6].bases(b), vec![b"Base".as_slice()]);
    // Statements tile the file from the first one on.
    for w in stmts.windows(2) {
        assert_eq!(w[0].end, w[1].start);
    }
    assert_eq!(stmts.last().map(|s| s.end), Some(src.len()));
}

#[test]
fn strings_escapes_and_f_strings() {
    let src = "a = 'it\\'s'\nb = \"x\\\"\"\ndef f():\n    return f\"{d['k']}\"\nc = 1";
    let k = kinds(src);
    assert_eq!(k.len(), 4);
    assert_eq!(k[2].0, Kind::Def);
    assert_eq!(k[3].2, 4);
    let stmts = statements(src.as_bytes());
    assert_eq!((stmts[3].end_row, stmts[3].end_col), (4, 5));
}

#[test]
fn ranges_merge_neighbours() {
    let src = "import a\nX = 1\ndef f():\n    pass\ndef g():\n    pass\n";
    let stmts = statements(src.as_bytes());
    let r = ranges([&stmts[0], &stmts[1], &stmts[3]]);
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].start_byte, r[0].end_byte), (0, 15));
    assert_eq!(r[1].start_point.row, 4);
    assert_eq!(r[1].end_byte, src.len());
}

/// The plan for `tree` (all picked first) and, per file, the names of the functions,
/// classes and methods it parses (`Class`, `Class.method`, `function`).
fn planned(tree: &[(&str, &str)]) -> Vec<Vec<String>> {
    use crate::scan::files::{Lang, Loaded};
    let files: Vec<Loaded> = tree
        .iter()
        .map(|(rel, src)| Loaded {
            rel: rel.to_string(),
            lang: Lang::Python,
            text: Ok(src.to_string()),
        })
        .collect();
    let all: Vec<usize> = (0..files.len()).collect();
    let plan = Plan::new(&files, &all, 1);
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let src = f.text.as_deref().unwrap_or_default();
            let text: String = match plan.ranges(i) {
                None => src.to_string(),
                Some(r) => r.iter().map(|r| &src[r.start_byte..r.end_byte]).collect(),
            };
            // The definitions in what is parsed, by indentation.
            let mut class = String::new();
            let mut names = Vec::new();
            for line in text.lines() {
                let t = line.trim_start();
                let indented = t.len() < line.len();
                let name = |kw: &str| {
                    t.strip_prefix(kw)
                        .map(|r| r.split(['(', ':']).next().unwrap_or_default().to_string())
                };
                if let Some(c) = name("class ") {
                    names.push(c.clone());
                    class = c;
                } else if let Some(d) = name("def ") {
                    names.push(if indented { format!("{class}.{d}") } else { d });
                }
            }
            names
        })
        .collect()
}

#[test]
fn plan_takes_callers_through_aliases_and_constructors() {
    let a = "import torch\n\ndef make(n):\n    return torch.zeros(n, device='cpu')\n\n\
             def unrelated(x):\n    return x + 1\n";
    let b = "from a import make as mk\n\nclass Runner:\n    def __init__(self, size):\n        \
             self.size = size\n\n    def setup(self):\n        self.buf = mk(self.size)\n\n    \
             def other(self):\n        return 3\n\ndef build():\n    return Runner(4)\n\n\
             def idle():\n    pass\n";
    let got = planned(&[("a.py", a), ("b.py", b)]);
    assert_eq!(got[0], ["make"]);
    assert_eq!(
        got[1],
        ["Runner", "Runner.__init__", "Runner.setup", "build"]
    );
}

#[test]
fn plan_takes_bases_assignments_and_class_constants() {
    let src = "import torch\n\nclass Config:\n    SIZE = 4\n\n    def unused(self):\n        \
               pass\n\nclass Base:\n    def __init__(self, n):\n        self.n = n\n\n    \
               def noise(self):\n        pass\n\n    def resize(self, m):\n        self.n = m\n\n\
               class Child(Base):\n    def alloc(self):\n        return torch.empty(self.n * \
               Config.SIZE)\n\nclass Other:\n    def f(self):\n        self.n = 1\n";
    let got = planned(&[("c.py", src)]);
    // `self.n` is what `Base` assigns it (the resolver weighs every assignment),
    // `Config.SIZE` is read.
    assert_eq!(
        got[0],
        [
            "Config",
            "Base",
            "Base.__init__",
            "Base.resize",
            "Child",
            "Child.alloc"
        ]
    );
}
