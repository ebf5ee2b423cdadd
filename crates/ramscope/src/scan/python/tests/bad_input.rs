//! Hostile and broken trees: syntax errors, binary and huge files, link loops, non-UTF-8
//! text, nothing to scan, a file instead of a tree, expressions nested past any stack.

use super::*;
use crate::scan::ScanError;

const GOOD: &str = "\
import numpy as np

BUF = np.zeros(1000, dtype=np.uint8)
";

#[test]
fn a_file_with_syntax_errors_is_scanned_and_listed() {
    let broken = "\
import numpy as np

def f(:
    pass

A = np.zeros(10, dtype=np.int8)
class (
";
    let s = scan_of(&[("pkg/good.py", GOOD), ("pkg/broken.py", broken)]);
    check(site(&s, "BUF"), "1000", Method::Numpy, Resolution::Full);
    let a = site(&s, "A");
    assert_eq!((a.file.as_str(), a.line), ("pkg/broken.py", 6));
    let sk: Vec<_> = s
        .skipped
        .iter()
        .filter(|k| k.file == "pkg/broken.py")
        .collect();
    assert_eq!(sk.len(), 1, "{:?}", s.skipped);
    assert!(sk[0].reason.contains("syntax error"), "{:?}", sk[0]);
}

#[test]
fn binary_huge_and_non_utf8_files() {
    let dir = tree(&[("pkg/good.py", GOOD)]);
    let root = dir.path();
    std::fs::write(
        root.join("pkg/blob.py"),
        b"import torch\0\x01\x02x = torch.zeros(10)\n",
    )
    .unwrap();
    // 50 MB of generated code.
    let line = "x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]  # np.zeros(\n";
    let big = line.repeat(50_000_000 / line.len() + 1);
    std::fs::write(root.join("pkg/generated.py"), big).unwrap();
    let mut latin1 =
        b"import numpy as np\n# caf\xe9\nL = np.zeros(3, dtype=np.int8)  # \xff\xfe\n".to_vec();
    latin1.extend_from_slice(b"M = bytearray(7)\n");
    std::fs::write(root.join("pkg/latin1.py"), latin1).unwrap();
    let s = scan(root, &Options::default()).unwrap();
    let reason = |f: &str| {
        s.skipped
            .iter()
            .find(|k| k.file == f)
            .map(|k| k.reason.clone())
            .unwrap_or_else(|| panic!("{f} not skipped: {:?}", s.skipped))
    };
    assert_eq!(reason("pkg/blob.py"), "binary");
    assert!(
        reason("pkg/generated.py").contains("larger than"),
        "{}",
        reason("pkg/generated.py")
    );
    // Text that is not UTF-8 is read as far as it is text.
    check(site(&s, "L"), "3", Method::Numpy, Resolution::Full);
    check(site(&s, "M"), "7", Method::Bytes, Resolution::Full);
    assert!(
        s.skipped.iter().all(|k| k.file != "pkg/latin1.py"),
        "{:?}",
        s.skipped
    );
    check(site(&s, "BUF"), "1000", Method::Numpy, Resolution::Full);
    assert_eq!(s.sites.len(), 3, "{}", listing(&s));
}

#[cfg(unix)]
#[test]
fn a_link_loop_ends() {
    let dir = tree(&[("pkg/good.py", GOOD)]);
    std::os::unix::fs::symlink(".", dir.path().join("pkg/loop")).unwrap();
    std::os::unix::fs::symlink("..", dir.path().join("pkg/up")).unwrap();
    std::os::unix::fs::symlink("good.py", dir.path().join("pkg/alias.py")).unwrap();
    let s = scan(dir.path(), &Options::default()).unwrap();
    assert_eq!(s.sites.len(), 1, "{}", listing(&s));
    assert_eq!(s.sites[0].file, "pkg/good.py");
}

#[test]
fn nothing_to_scan_and_not_a_directory() {
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("README.md"), "no code").unwrap();
    assert!(matches!(
        scan(empty.path(), &Options::default()),
        Err(ScanError::Empty(_))
    ));
    let file = empty.path().join("README.md");
    assert!(matches!(
        scan(&file, &Options::default()),
        Err(ScanError::NotADirectory(_))
    ));
    assert!(scan(&empty.path().join("absent"), &Options::default()).is_err());
}

#[test]
fn deep_nesting_does_not_exhaust_the_stack() {
    let deep = format!(
        "import numpy as np\nx = {}1{}\ny = {}2\nA = np.zeros({}4{}, dtype=np.int8)\nB = np.zeros(x)\n",
        "(".repeat(5000),
        ")".repeat(5000),
        "-".repeat(5000),
        "[".repeat(3000),
        "]".repeat(3000),
    );
    let chain = format!(
        "import numpy as np\nv = 1{}\nC = np.zeros(v + n, dtype=np.int8)\nn = 2\n",
        " + 1".repeat(20000),
    );
    let calls = format!(
        "import torch\nD = torch.zeros({}1{})\n",
        "f(".repeat(5000),
        ")".repeat(5000)
    );
    let s = scan_of(&[
        ("pkg/deep.py", &deep),
        ("pkg/chain.py", &chain),
        ("pkg/calls.py", &calls),
    ]);
    // What is too deep to follow is kept as text, never a crash.
    assert!(s.sites.iter().any(|x| x.anchor == "A"), "{}", listing(&s));
    assert!(s.sites.iter().any(|x| x.anchor == "B"), "{}", listing(&s));
    assert!(s.sites.iter().any(|x| x.anchor == "C"), "{}", listing(&s));
    assert!(s.sites.iter().any(|x| x.anchor == "D"), "{}", listing(&s));
}

/// Nesting that Python's own parser would refuse but tree-sitter accepts: every recursion
/// of the walker is bounded, whatever the construct.
#[test]
fn hostile_nesting_of_every_kind() {
    let levels = 2000;
    let mut classes = String::from("import numpy as np\n");
    let mut ifs = String::from("import numpy as np\ndef f(x):\n");
    let mut defs = String::from("import numpy as np\n");
    for i in 0..levels {
        classes.push_str(&format!("{}class C{i}:\n", " ".repeat(i)));
        ifs.push_str(&format!("{}if x:\n", " ".repeat(i + 1)));
        defs.push_str(&format!(
            "{}def g{i}(x):\n{}  if x:\n",
            " ".repeat(i * 3),
            " ".repeat(i * 3)
        ));
    }
    classes.push_str(&format!("{}A = np.zeros(1)\n", " ".repeat(levels)));
    ifs.push_str(&format!("{}B = np.zeros(2)\n", " ".repeat(levels + 1)));
    defs.push_str(&format!("{}C = np.zeros(3)\n", " ".repeat(levels * 3)));
    let chain = format!(
        "import numpy as np\n{}np.zeros(4)\n",
        "a = ".repeat(100_000)
    );
    let pattern = format!(
        "import numpy as np\n{}a{} = np.zeros(5)\n",
        "(".repeat(5000),
        ", b)".repeat(5000)
    );
    let augmented = format!(
        "import numpy as np\nn = 1\n{}n += 1\nD = np.zeros(n)\n",
        "n += 1\n".repeat(50_000)
    );
    let attrs = format!(
        "import numpy as np\nE = np.zeros(x{})\n",
        ".y".repeat(100_000)
    );
    let lambdas = format!(
        "import numpy as np\nF = np.zeros({}1)\n",
        "lambda: ".repeat(10_000)
    );
    let s = scan_of(&[
        ("pkg/classes.py", &classes),
        ("pkg/ifs.py", &ifs),
        ("pkg/defs.py", &defs),
        ("pkg/chain.py", &chain),
        ("pkg/pattern.py", &pattern),
        ("pkg/augmented.py", &augmented),
        ("pkg/attrs.py", &attrs),
        ("pkg/lambdas.py", &lambdas),
    ]);
    // What is too deep is not looked at; the rest of the tree is.
    for f in [
        "pkg/chain.py",
        "pkg/augmented.py",
        "pkg/attrs.py",
        "pkg/lambdas.py",
    ] {
        assert!(s.sites.iter().any(|x| x.file == f), "no site in {f}");
    }
    // Text kept from the source is short, however long the expression.
    for x in &s.sites {
        assert!(
            x.formula.to_string().chars().count() < 1000,
            "{}: {:.300}",
            x.anchor,
            x.formula
        );
        assert!(
            x.shape.chars().count() < 1000,
            "{}: {:.300}",
            x.anchor,
            x.shape
        );
    }
    let chain = s.sites.iter().find(|x| x.file == "pkg/chain.py").unwrap();
    assert_eq!(
        (chain.anchor.as_str(), chain.formula.to_string().as_str()),
        ("a", "32")
    );
}

/// A size through forty assignments, each a sum two hundred deep: the evaluator's recursion
/// stays within a thread's stack.
#[test]
fn a_long_chain_of_deep_expressions() {
    let mut src = String::from("import numpy as np\na0 = 1\n");
    for i in 1..=60 {
        src.push_str(&format!("a{i} = a{} {}\n", i - 1, "+ 1 ".repeat(190)));
    }
    src.push_str("A = np.zeros(a60, dtype=np.int8)\n");
    let s = scan_of(&[("pkg/long.py", &src)]);
    let a = site(&s, "A");
    assert_eq!(a.method, Method::Numpy);
}
