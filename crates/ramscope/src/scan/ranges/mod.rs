//! The top-level statements of a Python file, found without parsing it, so that tree-sitter
//! parses only the ones a scan needs (`Parser::set_included_ranges`) while every node keeps
//! its real byte, line and column.
//!
//! Why a hand-written scanner: tree-sitter-python parses ~13 MB/s on one core on vLLM 0.33
//! (`benches/scan_speed.rs`), a scan's first round is 18 MB of files, and a third of it is
//! functions the resolver never looks at ([`Plan`]). This scanner finds the
//! statements at ~600 MB/s because it only needs to know where a line at column 0 (or at a
//! class body's indentation) starts a statement: outside strings (triple-quoted ones span
//! lines, with column-0 text inside), outside brackets, not after a backslash continuation,
//! and not an `else:`/`except:` that continues the statement before it. On the ~5,000
//! Python files of vLLM 0.11, 0.12 and 0.33 it finds exactly tree-sitter's top-level
//! statements, and every other one of them parses alone without errors. A file it misreads
//! would parse with errors, and is then parsed again whole ([`crate::scan::files`]).

pub mod mentions;
pub mod plan;

use memchr::{memchr, memchr3};

pub use mentions::{mentions, Mentions};
pub use plan::Plan;

/// What a top-level statement is, as far as choosing it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `import x`, `from x import y`.
    Import,
    /// `def`, `async def`, possibly decorated.
    Def,
    /// `class`, possibly decorated.
    Class,
    /// Anything else: assignments, calls, `if TYPE_CHECKING:`, `try:` blocks.
    Other,
}

/// One top-level statement: from the start of its first line to the start of the next
/// statement (so trailing comments and blank lines belong to it).
#[derive(Debug, Clone)]
pub struct Stmt {
    pub start: usize,
    pub end: usize,
    /// Rows of `start` and `end`; `end_col` is 0 except at the end of a file with no final
    /// newline.
    pub row: usize,
    pub end_row: usize,
    pub end_col: usize,
    pub kind: Kind,
    /// Def, Class: the name's bytes.
    pub name: Option<(usize, usize)>,
    /// Def: the parameter list; Class: the base list (inside the parentheses).
    pub paren: Option<(usize, usize)>,
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Whether `src[at..]` starts with the keyword `word` (not a longer identifier).
fn keyword(src: &[u8], at: usize, word: &[u8]) -> bool {
    src[at..].starts_with(word) && !src.get(at + word.len()).copied().is_some_and(is_ident)
}

fn skip_blanks(src: &[u8], mut i: usize) -> usize {
    while i < src.len() && matches!(src[i], b' ' | b'\t') {
        i += 1;
    }
    i
}

/// The end of the string literal whose opening quote is at `i`; counts the newlines it
/// spans into `row`. An unterminated one-line string ends at its line's end, as Python's
/// tokenizer gives up there.
fn skip_string(src: &[u8], i: usize, row: &mut usize) -> usize {
    let q = src[i];
    let n = src.len();
    let triple = src.get(i + 1) == Some(&q) && src.get(i + 2) == Some(&q);
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < n {
        let Some(k) = memchr3(q, b'\\', b'\n', &src[j..]) else {
            return n;
        };
        j += k;
        match src[j] {
            b'\\' => {
                if src.get(j + 1) == Some(&b'\n') {
                    *row += 1;
                }
                j += 2;
            }
            b'\n' if !triple => return j,
            b'\n' => {
                *row += 1;
                j += 1;
            }
            _ if !triple => return j + 1,
            _ if src.get(j + 1) == Some(&q) && src.get(j + 2) == Some(&q) => return j + 3,
            _ => j += 1,
        }
    }
    n
}

/// The matching close of the bracket at `open`, skipping strings and comments.
fn matching(src: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    let mut row = 0;
    while i < src.len() {
        match src[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            b'"' | b'\'' => {
                i = skip_string(src, i, &mut row);
                continue;
            }
            b'#' => {
                i = memchr(b'\n', &src[i..]).map_or(src.len(), |k| i + k);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// `def name(params)`, `async def name[T](params)`, `class Name(bases)` at `at`: the kind,
/// the name and what is inside the parentheses.
/// A definition's kind, name and parenthesised part.
type Header = (Kind, Option<(usize, usize)>, Option<(usize, usize)>);

fn header(src: &[u8], at: usize) -> Header {
    let (kind, mut i) = if keyword(src, at, b"class") {
        (Kind::Class, at + 5)
    } else if keyword(src, at, b"def") {
        (Kind::Def, at + 3)
    } else {
        let d = skip_blanks(src, at + 5);
        (Kind::Def, d + 3)
    };
    i = skip_blanks(src, i);
    let s = i;
    while i < src.len() && is_ident(src[i]) {
        i += 1;
    }
    if i == s {
        return (kind, None, None);
    }
    let name = Some((s, i));
    i = skip_blanks(src, i);
    // PEP 695 type parameters.
    if src.get(i) == Some(&b'[') {
        match matching(src, i) {
            Some(c) => i = skip_blanks(src, c + 1),
            None => return (kind, name, None),
        }
    }
    let paren = if src.get(i) == Some(&b'(') {
        matching(src, i).map(|c| (i + 1, c))
    } else {
        None
    };
    (kind, name, paren)
}

/// The top-level statements of `src`, in order.
pub fn statements(src: &[u8]) -> Vec<Stmt> {
    statements_at(src, 0, src.len(), b"", 0)
}

/// The statements of `src[from..to]` whose lines start with exactly `indent` (a class body:
/// its methods and class attributes), `from` being the start of a line on row `row`. Each
/// starts at its line's start, indentation included, so that a range of them parses as the
/// same block.
pub fn statements_at(src: &[u8], from: usize, to: usize, indent: &[u8], row: usize) -> Vec<Stmt> {
    let src = &src[..to];
    let n = to;
    let mut out: Vec<Stmt> = Vec::new();
    let mut i = from;
    let mut row = row;
    let mut line_start = from;
    let mut depth = 0usize;
    // The line at `i` is a fresh line (not a backslash continuation).
    let mut at_line = true;
    // The last statement so far is decorators only: its `def` or `class` line is to come.
    let mut decorated = false;
    while i < n {
        if at_line {
            at_line = false;
            let t = i + indent.len();
            if depth == 0
                && src[i..].starts_with(indent)
                && t < n
                && !matches!(src[t], b' ' | b'\t' | b'\r' | b'\n' | b'#' | b'\x0c')
            {
                let b = src[t];
                let def_line =
                    keyword(src, t, b"def") || keyword(src, t, b"class") || is_async_def(src, t);
                if decorated && def_line {
                    decorated = false;
                    if let Some(last) = out.last_mut() {
                        (last.kind, last.name, last.paren) = header(src, t);
                    }
                } else if decorated && b == b'@' {
                    // Another decorator of the same definition.
                } else if !(keyword(src, t, b"else")
                    || keyword(src, t, b"elif")
                    || keyword(src, t, b"except")
                    || keyword(src, t, b"finally"))
                {
                    if let Some(last) = out.last_mut() {
                        (last.end, last.end_row, last.end_col) = (i, row, 0);
                    }
                    let (kind, name, paren) = if def_line {
                        header(src, t)
                    } else if keyword(src, t, b"import") || keyword(src, t, b"from") {
                        (Kind::Import, None, None)
                    } else {
                        (Kind::Other, None, None)
                    };
                    decorated = b == b'@';
                    out.push(Stmt {
                        start: i,
                        end: n,
                        row,
                        end_row: row,
                        end_col: 0,
                        // Decorators without a definition (a file cut short) are kept.
                        kind: if decorated { Kind::Other } else { kind },
                        name,
                        paren,
                    });
                }
            }
        }
        match src[i] {
            b'\n' => {
                row += 1;
                i += 1;
                line_start = i;
                at_line = true;
            }
            b'#' => i = memchr(b'\n', &src[i..]).map_or(n, |k| i + k),
            b'"' | b'\'' => i = skip_string(src, i, &mut row),
            b'\\' => {
                // A continuation: the next line belongs to this one.
                if src.get(i + 1) == Some(&b'\n') {
                    row += 1;
                    i += 2;
                    line_start = i;
                } else if src.get(i + 1) == Some(&b'\r') && src.get(i + 2) == Some(&b'\n') {
                    row += 1;
                    i += 3;
                    line_start = i;
                } else {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    if let Some(last) = out.last_mut() {
        (last.end, last.end_row, last.end_col) = (n, row, n - line_start);
    }
    out
}

/// A class's body, split: its header (up to the start of the body's first line) and the
/// body's statements. `None` when the body is on the header's line (`class E(X): pass`)
/// or cannot be told apart; the class is then taken whole.
pub fn class_body(src: &[u8], class: &Stmt) -> Option<(Stmt, Vec<Stmt>)> {
    let (_, name_end) = class.name?;
    let mut i = class.paren.map_or(name_end, |(_, close)| close + 1);
    // The header's colon, then nothing but a comment on its line.
    i = skip_blanks(src, i);
    if src.get(i) != Some(&b':') {
        return None;
    }
    i = skip_blanks(src, i + 1);
    match src.get(i) {
        Some(b'#') => i = memchr(b'\n', &src[i..]).map(|k| i + k)?,
        Some(b'\r') if src.get(i + 1) == Some(&b'\n') => i += 1,
        Some(b'\n') => {}
        _ => return None,
    }
    let body = i + 1;
    let row = class.row
        + src[class.start..body]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
    // The indentation of the first line with code on it.
    let mut line = body;
    while line < class.end {
        let t = line
            + src[line..class.end]
                .iter()
                .take_while(|&&b| b == b' ' || b == b'\t')
                .count();
        match src.get(t) {
            Some(b'#' | b'\n' | b'\r') => {
                line = memchr(b'\n', &src[t..class.end]).map(|k| t + k + 1)?;
            }
            Some(_) if t > line => {
                let stmts = statements_at(src, body, class.end, &src[line..t], row);
                let first = stmts.first()?;
                // Only whole lines at the body's indentation; anything else, take it whole.
                let header = Stmt {
                    end: body,
                    end_row: row,
                    end_col: 0,
                    kind: Kind::Other,
                    name: None,
                    paren: None,
                    ..*class
                };
                return (first.start == line).then_some((header, stmts));
            }
            _ => return None,
        }
    }
    None
}

fn is_async_def(src: &[u8], at: usize) -> bool {
    keyword(src, at, b"async") && {
        let d = skip_blanks(src, at + 5);
        d > at + 5 && keyword(src, d, b"def")
    }
}

/// The top-level, comma-separated parts of `src[a..b]` (a parameter or base list).
fn parts(src: &[u8], (a, b): (usize, usize)) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut s = a;
    let mut i = a;
    let mut row = 0;
    while i < b {
        match src[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' | b'\'' => {
                i = skip_string(src, i, &mut row);
                continue;
            }
            b'#' => {
                i = memchr(b'\n', &src[i..b]).map_or(b, |k| i + k);
                continue;
            }
            b',' if depth == 0 => {
                out.push((s, i));
                s = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push((s, b));
    out
}

/// The leading identifier of `src[a..b]` after blanks, newlines and `*`/`**`.
fn lead_ident(src: &[u8], (a, b): (usize, usize)) -> &[u8] {
    let mut i = a;
    while i < b && matches!(src[i], b' ' | b'\t' | b'\r' | b'\n' | b'*' | b'\\') {
        i += 1;
    }
    let s = i;
    while i < b && is_ident(src[i]) {
        i += 1;
    }
    &src[s..i]
}

impl Stmt {
    pub fn name<'a>(&self, src: &'a [u8]) -> Option<&'a [u8]> {
        self.name.map(|(a, b)| &src[a..b])
    }

    /// A function that takes arguments other than `self`/`cls` (whose callers can size
    /// what it allocates).
    pub fn has_params(&self, src: &[u8]) -> bool {
        let Some(p) = self.paren else {
            return false;
        };
        parts(src, p).into_iter().any(|part| {
            let id = lead_ident(src, part);
            !id.is_empty() && id != b"self" && id != b"cls"
        })
    }

    /// A class's bases, each by its last name (`Base` for `pkg.mod.Base[T]`); keyword
    /// arguments (`metaclass=`) are not bases.
    pub fn bases<'a>(&self, src: &'a [u8]) -> Vec<&'a [u8]> {
        let Some(p) = self.paren else {
            return Vec::new();
        };
        parts(src, p)
            .into_iter()
            .filter(|&(a, b)| !src[a..b].contains(&b'='))
            .filter_map(|(a, b)| {
                let mut i = a;
                while i < b
                    && (is_ident(src[i]) || matches!(src[i], b'.' | b' ' | b'\t' | b'\r' | b'\n'))
                {
                    i += 1;
                }
                let dotted = src[a..i].trim_ascii();
                let last = dotted.rsplit(|&c| c == b'.').next()?.trim_ascii();
                (!last.is_empty()).then_some(last)
            })
            .collect()
    }
}

/// tree-sitter ranges covering `pieces` (in order), adjacent ones merged.
pub fn ranges<'a>(pieces: impl IntoIterator<Item = &'a Stmt>) -> Vec<tree_sitter::Range> {
    let mut out: Vec<tree_sitter::Range> = Vec::new();
    for s in pieces {
        let end_point = tree_sitter::Point::new(s.end_row, s.end_col);
        match out.last_mut() {
            Some(last) if last.end_byte == s.start => {
                last.end_byte = s.end;
                last.end_point = end_point;
            }
            _ => out.push(tree_sitter::Range {
                start_byte: s.start,
                end_byte: s.end,
                start_point: tree_sitter::Point::new(s.row, 0),
                end_point,
            }),
        }
    }
    out
}

/// One file, scanned (in parallel) before its units join the plan.
pub struct Scanned<'a> {
    pub top: Vec<Stmt>,
    /// Per top-level statement: its class body, split, when it is a class that splits.
    pub bodies: Vec<Option<(Stmt, Vec<Stmt>)>>,
    /// Per top-level statement (empty for a split class), and per statement of a body.
    pub mentions: Vec<Mentions<'a>>,
    pub body_mentions: Vec<Vec<Mentions<'a>>>,
}

/// A file's statements, class bodies and what each mentions.
pub fn scan_file(src: &[u8]) -> Scanned<'_> {
    let top = statements(src);
    let mut bodies = Vec::with_capacity(top.len());
    let mut body_mentions = Vec::with_capacity(top.len());
    let mut top_mentions = Vec::with_capacity(top.len());
    for s in &top {
        let body = if s.kind == Kind::Class {
            class_body(src, s)
        } else {
            None
        };
        match &body {
            Some((_, b)) => {
                body_mentions.push(b.iter().map(|b| mentions(src, b.start, b.end)).collect());
                top_mentions.push(Mentions::default());
            }
            None => {
                body_mentions.push(Vec::new());
                top_mentions.push(mentions(src, s.start, s.end));
            }
        }
        bodies.push(body);
    }
    Scanned {
        top,
        bodies,
        mentions: top_mentions,
        body_mentions,
    }
}

#[cfg(test)]
mod tests;
