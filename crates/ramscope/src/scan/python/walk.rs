//! The walk over one file's syntax tree (tree-sitter) that fills a [`FileFacts`]: every
//! recursion is bounded, so generated or hostile files cannot exhaust the stack, and text
//! kept from the source is short.

use tree_sitter::Node;

use super::{
    Assign, BinOp, Call, CallSite, Class, Expr, FileFacts, Function, Param, ParamKind, Target,
};

/// Python's default recursion limit keeps real code far below this; generated or hostile
/// files do not get to exhaust the stack.
const MAX_DEPTH: usize = 200;
/// Characters of source text kept for messages and for expressions kept as text.
const MAX_TEXT: usize = 200;

pub(super) struct Walker<'a> {
    pub(super) src: &'a [u8],
    pub(super) facts: &'a mut FileFacts,
    pub(super) is_package: bool,
}

/// Named children without the extras (comments, line continuations) tree-sitter attaches
/// anywhere: a comment inside a tuple is not an element, one between the parts of a
/// conditional expression is not a part.
fn kids(n: Node) -> Vec<Node> {
    let mut cursor = n.walk();
    n.named_children(&mut cursor)
        .filter(|k| !k.is_extra())
        .collect()
}

/// The first named child that is not an extra.
fn first_kid(n: Node) -> Option<Node> {
    kids(n).into_iter().next()
}

fn line(n: Node) -> u32 {
    u32::try_from(n.start_position().row + 1).unwrap_or(u32::MAX)
}

impl Walker<'_> {
    /// The node's text, whitespace collapsed, at most [`MAX_TEXT`] characters (then `…`).
    /// Only the start of the node is read: a node can be most of a 4 MiB file, and the
    /// walker asks for the text of every call and of every expression it keeps as text.
    fn text(&self, n: Node) -> String {
        let range = n.byte_range();
        let end = range.end.min(range.start.saturating_add(4 * MAX_TEXT + 4));
        let raw = self.src.get(range.start..end).unwrap_or_default();
        let s = String::from_utf8_lossy(raw);
        let mut out = String::with_capacity(s.len().min(MAX_TEXT + 4));
        let mut truncated = end < range.end;
        let words = s.split_whitespace();
        let chars = words
            .flat_map(|w| std::iter::once(' ').chain(w.chars()))
            .skip(1);
        for (count, c) in chars.enumerate() {
            if count == MAX_TEXT {
                truncated = true;
                break;
            }
            out.push(c);
        }
        if truncated {
            out.push('…');
        }
        out
    }

    /// The statements of a block (module, class or function body, or a nested block),
    /// attributed to function `func`.
    pub(super) fn block(&mut self, node: Node, func: usize, class: Option<&str>, depth: usize) {
        let children: Vec<Node> = kids(node);
        for child in children {
            self.statement(child, func, class, depth);
        }
    }

    fn statement(&mut self, n: Node, func: usize, class: Option<&str>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        match n.kind() {
            // Imports inside functions are common (to break cycles); they bind the same names.
            "import_statement" | "import_from_statement" => self.import(n),
            // The depth goes on into definitions: classes nested in classes (or functions in
            // `if`s in functions) thousands deep are hostile input, not Python.
            "function_definition" => self.function(n, class, depth + 1),
            "class_definition" => self.class(n, depth + 1),
            "decorated_definition" => {
                if let Some(d) = n.child_by_field_name("definition") {
                    self.statement(d, func, class, depth + 1);
                }
            }
            "expression_statement" => {
                let kids: Vec<Node> = kids(n);
                for k in kids {
                    if k.kind() == "assignment" {
                        self.assignment(k, func, depth);
                    } else if k.kind() == "augmented_assignment" {
                        self.augmented(k, func, depth);
                    } else {
                        self.calls_in(k, func, &Target::None, depth);
                    }
                }
            }
            "return_statement" => {
                // The returned call is what the function's callers store (`x = helper()`);
                // the statement node itself is not a call, so its children carry the target.
                let kids: Vec<Node> = kids(n);
                // The returned value, as an assignment to `return` (not a name Python code
                // can use): a size helper's callers evaluate it with their arguments.
                if let (Some(k), Some(f)) = (kids.first(), self.facts.functions.get(func)) {
                    if f.name != "<module>" && f.name != "<class>" {
                        let value = self.expr(*k, 0);
                        if let Some(f) = self.facts.functions.get_mut(func) {
                            f.assigns.push(Assign {
                                target: Target::Name("return".into()),
                                value,
                                line: line(n),
                            });
                        }
                    }
                }
                for k in kids {
                    self.calls_in(k, func, &Target::Name("return".into()), depth + 1);
                }
            }
            _ => {
                // Compound statements: their conditions and bodies belong to this function.
                let kids: Vec<Node> = kids(n);
                for k in kids {
                    if k.kind() == "block" || k.kind().ends_with("_clause") {
                        self.statement_list(k, func, class, depth + 1);
                    } else if k.kind().ends_with("statement") || k.kind().ends_with("definition") {
                        self.statement(k, func, class, depth + 1);
                    } else {
                        self.calls_in(k, func, &Target::None, depth + 1);
                    }
                }
            }
        }
    }

    fn statement_list(&mut self, n: Node, func: usize, class: Option<&str>, depth: usize) {
        let kids: Vec<Node> = kids(n);
        for k in kids {
            self.statement(k, func, class, depth + 1);
        }
    }

    fn import(&mut self, n: Node) {
        let base = if n.kind() == "import_from_statement" {
            match n.child_by_field_name("module_name") {
                Some(m) => Some(self.absolute_module(m)),
                None => return,
            }
        } else {
            None
        };
        let mut cursor = n.walk();
        let names: Vec<Node> = n.children_by_field_name("name", &mut cursor).collect();
        for name in names {
            let (full, local) = match name.kind() {
                "aliased_import" => {
                    let Some(inner) = name.child_by_field_name("name") else {
                        continue;
                    };
                    let alias = name
                        .child_by_field_name("alias")
                        .map(|a| self.text(a))
                        .unwrap_or_default();
                    (self.text(inner), alias)
                }
                _ => {
                    let full = self.text(name);
                    // `import a.b` binds `a`.
                    let local = if base.is_none() {
                        full.split('.').next().unwrap_or_default().to_string()
                    } else {
                        full.clone()
                    };
                    (full, local)
                }
            };
            let target = match &base {
                Some(m) => format!("{m}.{full}"),
                None if local == full || !full.starts_with(&format!("{local}.")) => full,
                None => local.clone(),
            };
            if !local.is_empty() {
                self.facts.imports.insert(local, target);
            }
        }
    }

    /// `from .x import y` relative to this file's package.
    fn absolute_module(&self, m: Node) -> String {
        let text = self.text(m);
        let dots = text.chars().take_while(|c| *c == '.').count();
        if dots == 0 {
            return text;
        }
        let mut parts: Vec<&str> = self.facts.module.split('.').collect();
        // A module's package is its parent; a package's own `__init__` is the package.
        let up = if self.is_package { dots - 1 } else { dots };
        for _ in 0..up {
            parts.pop();
        }
        let rest = &text[dots..];
        let mut out = parts.join(".");
        if !rest.is_empty() {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(rest);
        }
        out
    }

    fn class(&mut self, n: Node, depth: usize) {
        let Some(name) = n.child_by_field_name("name").map(|x| self.text(x)) else {
            return;
        };
        let mut bases = Vec::new();
        if let Some(sup) = n.child_by_field_name("superclasses") {
            let kids: Vec<Node> = kids(sup);
            for k in kids {
                if k.kind() != "keyword_argument" {
                    bases.push(self.expr(k, 0));
                }
            }
        }
        self.facts.classes.push(Class {
            name: name.clone(),
            bases,
            line: line(n),
        });
        let body_func = self.facts.functions.len();
        self.facts.functions.push(Function {
            name: "<class>".into(),
            class: Some(name.clone()),
            params: Vec::new(),
            line: line(n),
            assigns: Vec::new(),
            calls: Vec::new(),
        });
        if let Some(body) = n.child_by_field_name("body") {
            self.block(body, body_func, Some(&name), depth + 1);
        }
    }

    fn function(&mut self, n: Node, class: Option<&str>, depth: usize) {
        let Some(name) = n.child_by_field_name("name").map(|x| self.text(x)) else {
            return;
        };
        let mut params = Vec::new();
        if let Some(ps) = n.child_by_field_name("parameters") {
            let kids: Vec<Node> = kids(ps);
            for p in kids {
                if let Some(param) = self.param(p) {
                    params.push(param);
                }
            }
        }
        let idx = self.facts.functions.len();
        self.facts.functions.push(Function {
            name,
            class: class.map(str::to_string),
            params,
            line: line(n),
            assigns: Vec::new(),
            calls: Vec::new(),
        });
        if let Some(body) = n.child_by_field_name("body") {
            // Nested functions and classes are folded into this one: their allocations are
            // this function's.
            let kids: Vec<Node> = kids(body);
            for k in kids {
                match k.kind() {
                    "function_definition" | "class_definition" | "decorated_definition" => {
                        self.nested(k, idx, depth + 1)
                    }
                    _ => self.statement(k, idx, class, depth + 1),
                }
            }
        }
    }

    fn nested(&mut self, n: Node, func: usize, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let body = match n.kind() {
            "decorated_definition" => {
                if let Some(d) = n.child_by_field_name("definition") {
                    self.nested(d, func, depth + 1);
                }
                return;
            }
            _ => n.child_by_field_name("body"),
        };
        if let Some(b) = body {
            let class = self.facts.functions.get(func).and_then(|f| f.class.clone());
            let kids: Vec<Node> = kids(b);
            for k in kids {
                match k.kind() {
                    "function_definition" | "class_definition" | "decorated_definition" => {
                        self.nested(k, func, depth + 1)
                    }
                    _ => self.statement(k, func, class.as_deref(), depth + 1),
                }
            }
        }
    }

    fn param(&self, p: Node) -> Option<Param> {
        let (kind, name_node, default) = match p.kind() {
            "identifier" => (ParamKind::Plain, Some(p), None),
            // A bare `*`: the parameters after it are keyword-only, as after `*args`.
            "keyword_separator" => {
                return Some(Param {
                    name: String::new(),
                    kind: ParamKind::Star,
                    default: None,
                })
            }
            "typed_parameter" => {
                let inner = first_kid(p)?;
                return match inner.kind() {
                    "list_splat_pattern" => Some(Param {
                        name: self.text(first_kid(inner)?),
                        kind: ParamKind::Star,
                        default: None,
                    }),
                    "dictionary_splat_pattern" => Some(Param {
                        name: self.text(first_kid(inner)?),
                        kind: ParamKind::DoubleStar,
                        default: None,
                    }),
                    _ => Some(Param {
                        name: self.text(inner),
                        kind: ParamKind::Plain,
                        default: None,
                    }),
                };
            }
            "default_parameter" | "typed_default_parameter" => (
                ParamKind::Plain,
                p.child_by_field_name("name"),
                p.child_by_field_name("value"),
            ),
            "list_splat_pattern" => (ParamKind::Star, first_kid(p), None),
            "dictionary_splat_pattern" => (ParamKind::DoubleStar, first_kid(p), None),
            _ => return None,
        };
        Some(Param {
            name: self.text(name_node?),
            kind,
            default: default.map(|d| self.expr(d, 0)),
        })
    }

    fn assignment(&mut self, n: Node, func: usize, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let ln = line(n);
        // `a = b = x` is an assignment whose right is an assignment: every left gets `x`,
        // and the calls in `x` are recorded once. A loop, not a recursion: a generated chain
        // can be as long as the file.
        let mut lefts_chain = Vec::new();
        let mut node = n;
        let right = loop {
            let Some(left) = node.child_by_field_name("left") else {
                return;
            };
            lefts_chain.push(left);
            match node.child_by_field_name("right") {
                Some(r) if r.kind() == "assignment" => node = r,
                Some(r) => break r,
                None => return, // an annotation without a value
            }
        };
        let mut first: Option<Target> = None;
        for left in lefts_chain {
            let lefts = self.targets(left, depth);
            // `a, b = x, y` pairs up.
            let rights: Vec<Node> = if matches!(left.kind(), "pattern_list" | "tuple_pattern")
                && matches!(right.kind(), "expression_list" | "tuple")
            {
                kids(right)
            } else {
                vec![right]
            };
            for (i, target) in lefts.iter().enumerate() {
                let value = if lefts.len() == rights.len() {
                    rights.get(i).map(|r| self.expr(*r, 0))
                } else if lefts.len() == 1 {
                    Some(self.expr(right, 0))
                } else {
                    None
                };
                if let (Some(value), Some(f)) = (value, self.facts.functions.get_mut(func)) {
                    f.assigns.push(Assign {
                        target: target.clone(),
                        value,
                        line: ln,
                    });
                }
            }
            if first.is_none() {
                first = Some(if lefts.len() == 1 {
                    lefts[0].clone()
                } else {
                    Target::None
                });
            }
        }
        self.calls_in(right, func, &first.unwrap_or(Target::None), depth + 1);
    }

    /// `n *= 2`: an assignment of `n * 2`, so a later use sees the new value.
    fn augmented(&mut self, n: Node, func: usize, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let (Some(left), Some(right)) = (
            n.child_by_field_name("left"),
            n.child_by_field_name("right"),
        ) else {
            return;
        };
        let op = n
            .child_by_field_name("operator")
            .map(|o| self.text(o))
            .unwrap_or_default();
        let value = match binop(op.trim_end_matches('=')) {
            Some(op) => Expr::Bin(
                op,
                Box::new(self.expr(left, 0)),
                Box::new(self.expr(right, 0)),
            ),
            None => Expr::Other(self.text(n)),
        };
        if let (Some(target), Some(f)) = (
            self.targets(left, depth).into_iter().next(),
            self.facts.functions.get_mut(func),
        ) {
            f.assigns.push(Assign {
                target,
                value,
                line: line(n),
            });
        }
        self.calls_in(right, func, &Target::None, depth + 1);
    }

    fn targets(&self, left: Node, depth: usize) -> Vec<Target> {
        if depth > MAX_DEPTH {
            return vec![Target::None];
        }
        match left.kind() {
            "identifier" => vec![Target::Name(self.text(left))],
            "attribute" => {
                let obj = left.child_by_field_name("object").map(|o| self.text(o));
                let attr = left.child_by_field_name("attribute").map(|a| self.text(a));
                match (obj.as_deref(), attr) {
                    (Some("self"), Some(a)) => vec![Target::SelfAttr(a)],
                    _ => vec![Target::None],
                }
            }
            "subscript" => {
                let v = left
                    .child_by_field_name("value")
                    .map(|v| self.text(v))
                    .unwrap_or_default();
                let v = v.strip_prefix("self.").unwrap_or(&v).to_string();
                vec![Target::Item(v)]
            }
            "pattern_list" | "tuple_pattern" => {
                let kids: Vec<Node> = kids(left);
                kids.into_iter()
                    .flat_map(|k| self.targets(k, depth + 1).into_iter().take(1))
                    .collect()
            }
            _ => vec![Target::None],
        }
    }

    /// Records every call inside `n` (outermost first), storing results in `target`.
    fn calls_in(&mut self, n: Node, func: usize, target: &Target, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        if n.kind() == "call" {
            if let Expr::Call(call) = self.expr(n, 0) {
                if let Some(f) = self.facts.functions.get_mut(func) {
                    f.calls.push(CallSite {
                        call: *call,
                        line: line(n),
                        target: target.clone(),
                    });
                }
            }
        }
        if matches!(
            n.kind(),
            "lambda" | "function_definition" | "class_definition"
        ) {
            return;
        }
        let kids: Vec<Node> = kids(n);
        for k in kids {
            // Inner calls (arguments, receivers) are not what the target stores.
            self.calls_in(k, func, &Target::None, depth + 1);
        }
    }

    fn expr(&self, n: Node, depth: usize) -> Expr {
        if depth > MAX_DEPTH {
            return Expr::Other(self.text(n));
        }
        let sub = |field: &str| {
            n.child_by_field_name(field)
                .map(|c| self.expr(c, depth + 1))
        };
        match n.kind() {
            "integer" => {
                parse_int(&self.text(n)).map_or_else(|| Expr::Other(self.text(n)), Expr::Int)
            }
            "string" | "concatenated_string" => Expr::Str(string_value(&self.text(n))),
            "true" => Expr::Bool(true),
            "false" => Expr::Bool(false),
            "none" => Expr::NoneLit,
            "identifier" => Expr::Name(self.text(n)),
            "attribute" => match (sub("object"), n.child_by_field_name("attribute")) {
                (Some(o), Some(a)) => Expr::Attr(Box::new(o), self.text(a)),
                _ => Expr::Other(self.text(n)),
            },
            "parenthesized_expression" => {
                first_kid(n).map_or_else(|| Expr::Other(self.text(n)), |c| self.expr(c, depth + 1))
            }
            "tuple" | "list" | "expression_list" => {
                let kids: Vec<Node> = kids(n);
                Expr::Tuple(kids.into_iter().map(|k| self.expr(k, depth + 1)).collect())
            }
            "list_splat" => first_kid(n).map_or_else(
                || Expr::Other(self.text(n)),
                |c| Expr::Starred(Box::new(self.expr(c, depth + 1))),
            ),
            "binary_operator" => {
                let op = n
                    .child_by_field_name("operator")
                    .map(|o| self.text(o))
                    .unwrap_or_default();
                // `|`, `&`, `^`, `@`: no size, kept as written.
                let Some(op) = binop(&op) else {
                    return Expr::Other(self.text(n));
                };
                match (sub("left"), sub("right")) {
                    (Some(l), Some(r)) => Expr::Bin(op, Box::new(l), Box::new(r)),
                    _ => Expr::Other(self.text(n)),
                }
            }
            "conditional_expression" => {
                let kids: Vec<Node> = kids(n);
                match kids.as_slice() {
                    [a, c, b] => Expr::Cond(
                        Box::new(self.expr(*a, depth + 1)),
                        self.text(*c),
                        Box::new(self.expr(*b, depth + 1)),
                    ),
                    _ => Expr::Other(self.text(n)),
                }
            }
            "subscript" => match sub("value") {
                Some(v) => Expr::Subscript(
                    Box::new(v),
                    n.child_by_field_name("subscript")
                        .map(|s| self.text(s))
                        .unwrap_or_default(),
                ),
                None => Expr::Other(self.text(n)),
            },
            // `size or default`: one of the two, as `size if size else default` is.
            "boolean_operator"
                if n.child_by_field_name("operator")
                    .map(|o| self.text(o))
                    .as_deref()
                    == Some("or") =>
            {
                match (sub("left"), sub("right")) {
                    (Some(l), Some(r)) => Expr::Cond(Box::new(l), self.text(n), Box::new(r)),
                    _ => Expr::Other(self.text(n)),
                }
            }
            "not_operator" | "comparison_operator" | "boolean_operator" => Expr::Test(self.text(n)),
            // `int(1e9)`: a float literal that is a whole number is that number.
            "float" => {
                let t: String = self.text(n).chars().filter(|c| *c != '_').collect();
                match t.parse::<f64>() {
                    Ok(v) if v.fract() == 0.0 && (0.0..1.8e19).contains(&v) => Expr::Int(v as u64),
                    _ => Expr::Other(t),
                }
            }
            "call" => self.call(n, depth),
            _ => Expr::Other(self.text(n)),
        }
    }

    fn call(&self, n: Node, depth: usize) -> Expr {
        let Some(func) = n.child_by_field_name("function") else {
            return Expr::Other(self.text(n));
        };
        let mut call = Call {
            func: self.expr(func, depth + 1),
            args: Vec::new(),
            kwargs: Vec::new(),
            text: self.text(n),
        };
        if let Some(args) = n.child_by_field_name("arguments") {
            let kids: Vec<Node> = kids(args);
            for a in kids {
                match a.kind() {
                    "keyword_argument" => {
                        if let (Some(k), Some(v)) = (
                            a.child_by_field_name("name"),
                            a.child_by_field_name("value"),
                        ) {
                            call.kwargs.push((self.text(k), self.expr(v, depth + 1)));
                        }
                    }
                    "comment" | "dictionary_splat" => {}
                    _ => call.args.push(self.expr(a, depth + 1)),
                }
            }
        }
        Expr::Call(Box::new(call))
    }
}

fn binop(op: &str) -> Option<BinOp> {
    Some(match op {
        "+" => BinOp::Add,
        "-" => BinOp::Sub,
        "*" => BinOp::Mul,
        "//" => BinOp::FloorDiv,
        "/" => BinOp::Div,
        "<<" => BinOp::Shl,
        ">>" => BinOp::Shr,
        "**" => BinOp::Pow,
        "%" => BinOp::Mod,
        _ => return None,
    })
}

/// `1_024`, `0x10`, `0o7`, `0b1` → the number.
fn parse_int(s: &str) -> Option<u64> {
    let s: String = s.chars().filter(|c| *c != '_').collect();
    let lower = s.to_ascii_lowercase();
    let (digits, radix) = match lower.get(..2) {
        Some("0x") => (&lower[2..], 16),
        Some("0o") => (&lower[2..], 8),
        Some("0b") => (&lower[2..], 2),
        _ => (lower.as_str(), 10),
    };
    u64::from_str_radix(digits, radix).ok()
}

/// The contents of a simple string literal (`"cpu"`, `'cpu'`, `f"..."` as written).
fn string_value(s: &str) -> String {
    let t = s.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let t = t.trim_matches(|c| c == '"' || c == '\'');
    t.to_string()
}
