//! What a function, method or class mentions, read as tokens (no parse): the names it
//! calls, the methods it calls on `self`, the `self` attributes it reads and assigns.
//! [`super::Plan`] follows these to decide what else must be parsed.

use memchr::memchr;

use super::{is_ident, keyword, skip_blanks, skip_string};

/// What a stretch of code names, as far as choosing code goes. Strings and comments are
/// skipped; names are the file's bytes.
#[derive(Debug, Default)]
pub struct Mentions<'a> {
    /// Names called (`f(`, `mod.f(`, `obj.f(`) and names imported (a function's own imports
    /// join its file's one table of imports).
    pub calls: Vec<&'a [u8]>,
    /// `P.m(`: a method called through a name (a class, an alias).
    pub quals: Vec<(&'a [u8], &'a [u8])>,
    /// Of the calls, those whose value is used (all but the outermost of a statement that
    /// is only a call, `self.reset()`): `calls`, `quals`, `self_calls` of them.
    pub used: Vec<Call<'a>>,
    /// Names whose attributes are read (`Class.CONSTANT`, `mod.Class.X`: the resolver reads
    /// a class's own assignments), but for `self` and `cls`.
    pub dotted: Vec<&'a [u8]>,
    /// Methods called on `self` or `super()`: `self.m(`, `super().m(`.
    pub self_calls: Vec<&'a [u8]>,
    /// Attributes read on `self` (or `cls`, which the resolver reads alike).
    pub self_refs: Vec<&'a [u8]>,
    /// Attributes assigned on `self` (`self.x = …`, `self.x: T = …`, `self.a, self.b = …`).
    pub self_assigns: Vec<&'a [u8]>,
    /// Functions and classes defined inside.
    pub defines: Vec<&'a [u8]>,
    /// `name as alias` (imports).
    pub aliases: Vec<(&'a [u8], &'a [u8])>,
}

/// A call whose value is used: `f(`, `P.m(`, `self.m(` / `super().m(`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    Name(&'a [u8]),
    Qual(&'a [u8], &'a [u8]),
    OnSelf(&'a [u8]),
}

/// Statements whose every call's value may be used (or that bind names from calls).
const VALUE_STATEMENTS: &[&[u8]] = &[
    b"return", b"yield", b"if", b"elif", b"while", b"for", b"with", b"assert", b"raise", b"async",
    b"match", b"case", b"lambda", b"del", b"else",
];

fn ident_end(src: &[u8], i: usize, end: usize) -> usize {
    let mut j = i;
    while j < end && is_ident(src[j]) {
        j += 1;
    }
    j
}

/// The identifier that ends at `end` (exclusive), if any.
fn ident_before(src: &[u8], start: usize, end: usize) -> Option<&[u8]> {
    let mut s = end;
    while s > start && is_ident(src[s - 1]) {
        s -= 1;
    }
    (s < end && !src[s].is_ascii_digit()).then(|| &src[s..end])
}

/// Whether `rest` starts with an augmented assignment (`+=`, `//=`, `<<=`…).
fn augmented(rest: &[u8]) -> bool {
    const OPS: &[&[u8]] = &[
        b"+=", b"-=", b"*=", b"/=", b"//=", b"%=", b"**=", b">>=", b"<<=", b"&=", b"|=", b"^=",
        b"@=",
    ];
    OPS.iter().any(|op| rest.starts_with(op))
}

/// Whether `src[..dot]` ends with `super()` or `super(Class, self)`.
fn on_super(src: &[u8], start: usize, dot: usize) -> bool {
    if dot <= start || src[dot - 1] != b')' {
        return false;
    }
    let mut depth = 0usize;
    let mut p = dot;
    while p > start {
        p -= 1;
        match src[p] {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    return ident_before(src, start, p) == Some(b"super".as_slice());
                }
            }
            b'\n' => return false,
            _ => {}
        }
    }
    false
}

/// The names `src[a..b]` mentions (see [`Mentions`]).
pub fn mentions(src: &[u8], a: usize, b: usize) -> Mentions<'_> {
    let mut m = Mentions::default();
    scan(src, a, b, &mut m);
    m
}

/// Whether the string literal opening at `q` is an f-string (`f"`, `rf'`, `F"""`).
fn f_string(src: &[u8], start: usize, q: usize) -> bool {
    let mut p = q;
    while p > start && q - p < 2 && src[p - 1].is_ascii_alphabetic() {
        p -= 1;
    }
    (p == start || !is_ident(src[p - 1])) && src[p..q].iter().any(|c| matches!(c, b'f' | b'F'))
}

fn scan<'a>(src: &'a [u8], a: usize, b: usize, m: &mut Mentions<'a>) {
    let mut i = a;
    let mut row = 0;
    // Where the current line's code starts (after indentation).
    let mut line_code = skip_blanks(src, a);
    let mut depth = 0usize;
    // Inside an import statement (until its line ends outside parentheses).
    let mut importing = false;
    // The outermost calls of the current statement, and whether its value is used (an
    // assignment, a `return`…): known at its end.
    let mut outer: Vec<Call<'a>> = Vec::new();
    let mut valued = false;
    let end_statement = |outer: &mut Vec<Call<'a>>, valued: &mut bool, m: &mut Mentions<'a>| {
        if *valued {
            m.used.append(outer);
        }
        outer.clear();
        *valued = false;
    };
    while i < b {
        let c = src[i];
        if c == b'"' || c == b'\'' {
            let end = skip_string(src, i, &mut row).min(b);
            if f_string(src, a, i) {
                // Its `{…}` parts are code (`f"{x.cpu()}"` calls `cpu`).
                let q = if src.get(i + 1) == Some(&c) && src.get(i + 2) == Some(&c) {
                    3
                } else {
                    1
                };
                let (s, e) = ((i + q).min(end), end.saturating_sub(q).max(i + q).min(end));
                scan(src, s, e, m);
            }
            i = end;
            continue;
        }
        if c == b'#' {
            i = memchr(b'\n', &src[i..b]).map_or(b, |k| i + k);
            continue;
        }
        if c == b'\n' {
            let continued = depth > 0 || (i > a && src[i - 1] == b'\\');
            importing &= continued;
            if !continued {
                end_statement(&mut outer, &mut valued, m);
            }
            i = skip_blanks(src, i + 1).min(b);
            line_code = i;
            continue;
        }
        if !is_ident(c) || c.is_ascii_digit() {
            match c {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                b';' => {
                    importing = false;
                    end_statement(&mut outer, &mut valued, m);
                    line_code = skip_blanks(src, i + 1);
                }
                // An assignment (`=`, `+=`, `:=`), not a comparison.
                b'=' if depth == 0
                    && src.get(i + 1) != Some(&b'=')
                    && !(i > a
                        && matches!(src[i - 1], b'=' | b'!' | b'<' | b'>')
                        && !(i > a + 1 && src[i - 2] == src[i - 1])) =>
                {
                    valued = true;
                }
                _ => {}
            }
            i += 1;
            // A number's letters (`1e5`, `0x1f`) are not names.
            if c.is_ascii_digit() {
                i = ident_end(src, i, b);
            }
            continue;
        }
        let s = i;
        let e = ident_end(src, i, b);
        i = e;
        let word = &src[s..e];
        let next = skip_blanks(src, e);
        let after = src.get(next).copied().filter(|_| next < b);
        let dotted = s > a && src[s - 1] == b'.';
        let receiver = if dotted {
            ident_before(src, a, s - 1)
        } else {
            None
        };
        let on_self = receiver == Some(b"self".as_slice());
        let on_cls = receiver == Some(b"cls".as_slice());
        if src.get(e) == Some(&b'.') && e < b && word != b"self" && word != b"cls" {
            m.dotted.push(word);
        }
        let called = after == Some(b'(');
        if s == line_code && VALUE_STATEMENTS.contains(&word) {
            valued = true;
        }
        if word == b"import" && !dotted {
            importing = true;
        } else if importing || called {
            m.calls.push(word);
        }
        if called {
            let call = if on_self || (dotted && on_super(src, a, s - 1)) {
                m.self_calls.push(word);
                Call::OnSelf(word)
            } else if let Some(p) = receiver {
                m.quals.push((p, word));
                Call::Qual(p, word)
            } else {
                Call::Name(word)
            };
            if depth == 0 {
                outer.push(call);
            } else {
                m.used.push(call);
            }
        }
        // `self.x = …`, `self.x += …` assign (the walker's targets); any other `self.x`,
        // `cls.x` reads.
        let assigned = on_self
            && match after {
                Some(b'=') => src.get(next + 1) != Some(&b'='),
                // An annotated assignment, or the first of several targets, on a line of
                // its own.
                Some(b':' | b',') => depth == 0 && s == line_code + 5,
                _ => augmented(&src[next..b]),
            };
        if assigned {
            m.self_assigns.push(word);
        } else if on_self || on_cls {
            m.self_refs.push(word);
        }
        if (word == b"def" || word == b"class") && after.is_some_and(is_ident) {
            let ne = ident_end(src, next, b);
            m.defines.push(&src[next..ne]);
            i = ne;
        } else if after == Some(b'a') && keyword(src, next, b"as") {
            let t = skip_blanks(src, next + 2);
            let te = ident_end(src, t, b);
            if te > t {
                if !importing {
                    m.calls.push(word);
                }
                m.aliases.push((word, &src[t..te]));
            }
        }
    }
    end_statement(&mut outer, &mut valued, m);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&[u8]]) -> Vec<String> {
        v.iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    #[test]
    fn calls_self_and_imports() {
        let src = br#"    def f(self, n):
        from .ops import make as mk, other
        # helper(ignored) in a comment
        s = "helper(ignored) in a string"
        self.buf = mk(n) + ops.alloc(n, 1e5)
        self.a, self.b = 1, 2
        self.c: int = 3
        if self.d == 1:
            super().grow(n)
            self.grow(n)
        Buffer.create(n)
        raise E(f"mask {mask.cpu().tolist()}")
"#;
        let m = mentions(src, 0, src.len());
        assert_eq!(
            strs(&m.calls),
            [
                "make", "as", "mk", "other", "mk", "alloc", "super", "grow", "grow", "create", "E",
                "cpu", "tolist"
            ]
        );
        assert_eq!(strs(&m.self_calls), ["grow", "grow"]);
        assert_eq!(
            m.quals,
            vec![
                (b"ops".as_slice(), b"alloc".as_slice()),
                (b"Buffer", b"create"),
                (b"mask", b"cpu")
            ]
        );
        assert_eq!(strs(&m.self_assigns), ["buf", "a", "b", "c"]);
        assert_eq!(strs(&m.self_refs), ["d", "grow"]);
        assert_eq!(m.aliases, vec![(b"make".as_slice(), b"mk".as_slice())]);
        assert_eq!(strs(&m.defines), ["f"]);
        assert_eq!(strs(&m.dotted), ["ops", "Buffer", "mask"]);
    }

    #[test]
    fn calls_whose_value_is_used() {
        let src = b"def f(self):\n    self.reset(g(1))\n    x = h(2)\n    if k():\n        \
                    log.info(v(3)); return w()\n    y += 1 if z() <= 2 else 3\n    q() == r()\n";
        let m = mentions(src, 0, src.len());
        let used: Vec<String> = m
            .used
            .iter()
            .map(|c| match c {
                Call::Name(n) => String::from_utf8_lossy(n).into_owned(),
                Call::Qual(p, n) => format!(
                    "{}.{}",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(n)
                ),
                Call::OnSelf(n) => format!("self.{}", String::from_utf8_lossy(n)),
            })
            .collect();
        assert_eq!(used, ["g", "h", "k", "v", "w", "z"]);
    }

    #[test]
    fn targets_assign_and_arguments_read() {
        let src = b"def f(self):\n    g(self.x,\n      self.y, z)\n    self.x = self.x + 1\n    self.n -= 2\n    if self.n <= 0:\n        pass\n";
        let m = mentions(src, 0, src.len());
        // `self.y, z)` starts a line but is an argument list, not a tuple target.
        assert_eq!(strs(&m.self_assigns), ["x", "n"]);
        assert_eq!(strs(&m.self_refs), ["x", "y", "x", "n"]);
    }
}
