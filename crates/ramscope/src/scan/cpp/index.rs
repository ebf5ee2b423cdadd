//! What one C/C++ file defines that a size can refer to: object-like and function-like
//! macros, constants at file, namespace and class scope, enumerators, functions, and the
//! local definitions and parameters of one function.

use std::collections::HashMap;

use tree_sitter::Node;

/// The text of `node`, or nothing when its byte range is not a slice of `src`.
pub(super) fn text<'s>(node: Node<'_>, src: &'s str) -> &'s str {
    src.get(node.byte_range()).unwrap_or("")
}

/// `s` with runs of whitespace made one space, at most `limit` characters (the last one an
/// ellipsis when cut).
pub(super) fn collapse(s: &str, limit: usize) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= limit {
        return joined;
    }
    let mut out: String = joined.chars().take(limit.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The named children of `node` other than comments.
pub(super) fn kids<'t>(node: Node<'t>) -> Vec<Node<'t>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor)
        .filter(|n| n.kind() != "comment")
        .collect()
}

/// The last name of what a call calls (`malloc` for `std::malloc`, `f` for `a->f`,
/// `max` for `std::max<int>`), with the node that holds the callee.
pub(super) fn callee_name<'s>(call: Node<'_>, src: &'s str) -> Option<&'s str> {
    let mut f = call.child_by_field_name("function")?;
    for _ in 0..16 {
        match f.kind() {
            "identifier" | "field_identifier" => return Some(text(f, src)),
            "qualified_identifier" | "template_function" => f = f.child_by_field_name("name")?,
            "field_expression" => f = f.child_by_field_name("field")?,
            _ => return None,
        }
    }
    None
}

/// A `#define`: its parameters when function-like, and its body with line continuations
/// joined.
pub(super) struct Macro {
    pub params: Option<Vec<String>>,
    pub body: String,
}

/// The file-level definitions of one file, and its candidate calls.
pub(super) struct Index<'t> {
    pub macros: HashMap<String, Vec<Macro>>,
    /// `const`/`constexpr` variables at file or namespace scope, `static constexpr` class
    /// members and enumerators: the value expressions by name.
    pub consts: HashMap<String, Vec<Node<'t>>>,
    /// Function definitions by their last name.
    pub functions: HashMap<String, Vec<Node<'t>>>,
    /// Struct, class and union definitions (not templates) by name.
    pub records: HashMap<String, Vec<Node<'t>>>,
    /// Calls whose callee's last name `wanted` accepted, in source order.
    pub calls: Vec<Node<'t>>,
}

impl<'t> Index<'t> {
    pub fn build(root: Node<'t>, src: &str, wanted: &dyn Fn(&str) -> bool) -> Index<'t> {
        let mut idx = Index {
            macros: HashMap::new(),
            consts: HashMap::new(),
            functions: HashMap::new(),
            records: HashMap::new(),
            calls: Vec::new(),
        };
        let mut cursor = root.walk();
        loop {
            let node = cursor.node();
            idx.visit(node, src, wanted);
            if cursor.goto_first_child() {
                continue;
            }
            loop {
                if cursor.goto_next_sibling() {
                    break;
                }
                if !cursor.goto_parent() {
                    return idx;
                }
            }
        }
    }

    fn visit(&mut self, node: Node<'t>, src: &str, wanted: &dyn Fn(&str) -> bool) {
        match node.kind() {
            "call_expression" if callee_name(node, src).is_some_and(wanted) => {
                self.calls.push(node);
            }
            "preproc_def" | "preproc_function_def" => {
                let (Some(name), Some(value)) = (
                    node.child_by_field_name("name"),
                    node.child_by_field_name("value"),
                ) else {
                    return;
                };
                let params = match node.child_by_field_name("parameters") {
                    None => None,
                    Some(p) => {
                        let names: Vec<String> =
                            kids(p).iter().map(|k| text(*k, src).to_string()).collect();
                        // Variadic macros (`...`) are not expanded.
                        if text(p, src).contains("...") {
                            return;
                        }
                        Some(names)
                    }
                };
                let body = text(value, src).replace("\\\r\n", " ").replace("\\\n", " ");
                self.macros
                    .entry(text(name, src).to_string())
                    .or_default()
                    .push(Macro { params, body });
            }
            "declaration" if is_const(node, src) && at_file_scope(node) => {
                for d in kids(node) {
                    if d.kind() != "init_declarator" {
                        continue;
                    }
                    if let (Some(name), Some(value)) = (
                        d.child_by_field_name("declarator").and_then(plain_name),
                        d.child_by_field_name("value").and_then(single_value),
                    ) {
                        self.push_const(text(name, src), value);
                    }
                }
            }
            "field_declaration" if is_const(node, src) => {
                if let (Some(name), Some(value)) = (
                    node.child_by_field_name("declarator").and_then(plain_name),
                    node.child_by_field_name("default_value")
                        .and_then(single_value),
                ) {
                    self.push_const(text(name, src), value);
                }
            }
            "enumerator" => {
                if let (Some(name), Some(value)) = (
                    node.child_by_field_name("name"),
                    node.child_by_field_name("value"),
                ) {
                    self.push_const(text(name, src), value);
                }
            }
            "struct_specifier" | "class_specifier" | "union_specifier" => {
                let name = node.child_by_field_name("name");
                if let (Some(name), Some(_)) = (name, node.child_by_field_name("body")) {
                    let template = node
                        .parent()
                        .is_some_and(|p| p.kind() == "template_declaration");
                    if name.kind() == "type_identifier" && !template {
                        self.records
                            .entry(text(name, src).to_string())
                            .or_default()
                            .push(node);
                    }
                }
            }
            "function_definition" => {
                if let Some(name) = function_declarator(node)
                    .and_then(|d| d.child_by_field_name("declarator"))
                    .and_then(|n| last_name(n, src))
                {
                    self.functions
                        .entry(name.to_string())
                        .or_default()
                        .push(node);
                }
            }
            _ => {}
        }
    }

    fn push_const(&mut self, name: &str, value: Node<'t>) {
        self.consts.entry(name.to_string()).or_default().push(value);
    }
}

/// Whether a declaration says `const` or `constexpr`.
fn is_const(node: Node<'_>, src: &str) -> bool {
    kids(node)
        .iter()
        .any(|k| k.kind() == "type_qualifier" && matches!(text(*k, src), "const" | "constexpr"))
}

/// Whether a declaration is at file or namespace scope (possibly under `#if`, `extern "C"`
/// or `template<>`).
fn at_file_scope(node: Node<'_>) -> bool {
    let mut cur = node.parent();
    for _ in 0..256 {
        let Some(p) = cur else { return false };
        match p.kind() {
            "translation_unit" => return true,
            "declaration_list"
            | "namespace_definition"
            | "linkage_specification"
            | "template_declaration" => {}
            k if k.starts_with("preproc_") => {}
            _ => return false,
        }
        cur = p.parent();
    }
    false
}

/// The identifier a declarator declares when it is a plain name (`n`, `&n`, `n[4]` is not).
fn plain_name(node: Node<'_>) -> Option<Node<'_>> {
    match node.kind() {
        "identifier" | "field_identifier" => Some(node),
        "reference_declarator" => kids(node).into_iter().find_map(plain_name),
        _ => None,
    }
}

/// The one expression of an initializer: `= e`, `{e}`, `(e)`.
pub(super) fn single_value(node: Node<'_>) -> Option<Node<'_>> {
    match node.kind() {
        "initializer_list" | "argument_list" => match kids(node).as_slice() {
            [one] => Some(*one),
            _ => None,
        },
        _ => Some(node),
    }
}

/// The last component of a (qualified, templated) name.
fn last_name<'s>(mut node: Node<'_>, src: &'s str) -> Option<&'s str> {
    for _ in 0..16 {
        match node.kind() {
            "qualified_identifier" | "template_function" => {
                node = node.child_by_field_name("name")?
            }
            _ => return Some(text(node, src)),
        }
    }
    None
}

/// The `function_declarator` of a function definition, under pointer and reference
/// declarators.
pub(super) fn function_declarator(func: Node<'_>) -> Option<Node<'_>> {
    let mut d = func.child_by_field_name("declarator")?;
    for _ in 0..16 {
        if d.kind() == "function_declarator" {
            return Some(d);
        }
        d = match d.child_by_field_name("declarator") {
            Some(inner) => inner,
            None => *kids(d).last()?,
        };
    }
    None
}

/// The parameter names of a function definition.
pub(super) fn params(func: Node<'_>, src: &str) -> Vec<String> {
    let Some(list) = function_declarator(func).and_then(|d| d.child_by_field_name("parameters"))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in kids(list) {
        let mut d = p.child_by_field_name("declarator");
        for _ in 0..16 {
            match d {
                Some(n) if n.kind() == "identifier" => {
                    out.push(text(n, src).to_string());
                    break;
                }
                Some(n) => {
                    d = n
                        .child_by_field_name("declarator")
                        .or_else(|| kids(n).last().copied())
                }
                None => {
                    // An unnamed parameter still takes its place.
                    out.push(String::new());
                    break;
                }
            }
        }
    }
    out
}

/// The expression of a function's only `return`, when the body returns in one place at its
/// top level.
pub(super) fn single_return(func: Node<'_>) -> Option<Node<'_>> {
    let body = func.child_by_field_name("body")?;
    let mut found = None;
    let mut count = 0;
    let mut cursor = body.walk();
    loop {
        let node = cursor.node();
        let descend = match node.kind() {
            "return_statement" => {
                count += 1;
                found = Some(node);
                false
            }
            "lambda_expression" => false,
            _ => true,
        };
        if descend && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.node() == body {
                let ret = found.filter(|r| count == 1 && r.parent() == Some(body))?;
                return kids(ret).into_iter().next();
            }
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return None;
            }
        }
    }
}

/// A definition of a local name: a declaration or an assignment (`=`, `+=`, `*=`, ...).
pub(super) struct Def<'t> {
    pub name: String,
    pub start: usize,
    /// Where the definition is complete: uses from here on see it.
    pub end: usize,
    pub value: Option<Node<'t>>,
    /// `=` for a declaration.
    pub op: String,
    /// For a declaration, the byte range of the block it is visible in.
    pub visible: Option<(usize, usize)>,
}

/// The declarations and assignments of plain names in a function, in source order.
pub(super) fn locals<'t>(func: Node<'t>, src: &str) -> Vec<Def<'t>> {
    let mut out = Vec::new();
    let Some(body) = func.child_by_field_name("body") else {
        return out;
    };
    let mut cursor = body.walk();
    loop {
        let node = cursor.node();
        match node.kind() {
            "declaration" => declaration_defs(node, src, &mut out),
            "assignment_expression" => {
                if let (Some(left), Some(op), Some(right)) = (
                    node.child_by_field_name("left"),
                    node.child_by_field_name("operator"),
                    node.child_by_field_name("right"),
                ) {
                    if left.kind() == "identifier" {
                        out.push(Def {
                            name: text(left, src).to_string(),
                            start: node.start_byte(),
                            end: node.end_byte(),
                            value: Some(right),
                            op: text(op, src).to_string(),
                            visible: None,
                        });
                    }
                }
            }
            _ => {}
        }
        if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.node() == body {
                out.sort_by_key(|d| d.end);
                return out;
            }
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                out.sort_by_key(|d| d.end);
                return out;
            }
        }
    }
}

fn declaration_defs<'t>(node: Node<'t>, src: &str, out: &mut Vec<Def<'t>>) {
    let visible = node.parent().map(|p| (p.start_byte(), p.end_byte()));
    for d in kids(node) {
        let (name, value) = match d.kind() {
            "init_declarator" => (
                d.child_by_field_name("declarator").and_then(plain_name),
                d.child_by_field_name("value").and_then(single_value),
            ),
            "identifier" => (Some(d), None),
            _ => continue,
        };
        if let Some(name) = name {
            out.push(Def {
                name: text(name, src).to_string(),
                start: d.start_byte(),
                end: d.end_byte(),
                value,
                op: "=".to_string(),
                visible,
            });
        }
    }
}

/// The definition of `name` that a use at byte `pos` sees: the last one complete before it
/// (declarations only inside their block).
pub(super) fn lookup<'a, 't>(defs: &'a [Def<'t>], name: &str, pos: usize) -> Option<&'a Def<'t>> {
    defs.iter().rev().find(|d| {
        d.end <= pos
            && d.name == name
            && match d.visible {
                Some((start, end)) => start <= pos && pos < end,
                None => true,
            }
    })
}
