//! C++ size expressions as [`Formula`]s: literals, `sizeof`, casts, arithmetic, and the
//! names they use followed to their definitions in the same file (local declarations and
//! assignments, parameters, macros, constants, one-`return` functions), at most
//! [`MAX_DEPTH`] definitions deep.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use tree_sitter::{Node, Parser, Tree};

use super::index::{self, collapse, kids, text, Def, Index};
use super::layout::{self, Layout, Sizes};
use crate::scan::Formula;

/// How many definitions a name is followed through.
const MAX_DEPTH: u32 = 8;
/// How deeply expressions may nest (a guard for the stack).
const MAX_NEST: u32 = 160;
/// How many expression nodes one size may visit.
const BUDGET: u32 = 20_000;
/// How long the text of an `Unknown` or `Name` may be.
const TEXT_LIMIT: usize = 120;

/// Where names are looked up while translating one expression.
#[derive(Clone)]
struct Env<'t, 'e> {
    /// The text the expression's nodes come from (the file, or a macro body).
    src: &'e str,
    /// The function whose locals and parameters are visible.
    func: Option<Node<'t>>,
    /// Where in the file the expression is evaluated.
    pos: usize,
    /// The values of `func`'s parameters when it is being inlined.
    fbound: Option<Rc<HashMap<String, Formula>>>,
    /// The values of a function-like macro's parameters (for nodes of its body).
    mbound: Option<Rc<HashMap<String, Formula>>>,
    depth: u32,
}

struct MacroTree {
    text: String,
    tree: Option<Tree>,
}

/// Translates size expressions of one file.
pub(super) struct Resolver<'t, 's> {
    src: &'s str,
    index: &'s Index<'t>,
    locals: RefCell<HashMap<usize, Rc<Vec<Def<'t>>>>>,
    macro_trees: RefCell<HashMap<(String, usize), Rc<MacroTree>>>,
    parser: RefCell<Option<Parser>>,
    budget: Cell<u32>,
}

impl<'t, 's> Resolver<'t, 's> {
    pub fn new(src: &'s str, index: &'s Index<'t>) -> Self {
        Resolver {
            src,
            index,
            locals: RefCell::new(HashMap::new()),
            macro_trees: RefCell::new(HashMap::new()),
            parser: RefCell::new(None),
            budget: Cell::new(BUDGET),
        }
    }

    /// The formula of the expression `node` of the file, evaluated at byte `pos` inside
    /// `func` (or at file scope).
    pub fn size(&self, node: Node<'t>, func: Option<Node<'t>>, pos: usize) -> Formula {
        self.budget.set(BUDGET);
        let env = Env {
            src: self.src,
            func,
            pos,
            fbound: None,
            mbound: None,
            depth: 0,
        };
        self.tr(node, &env, 0)
    }

    fn tr(&self, node: Node<'_>, env: &Env<'t, '_>, nest: u32) -> Formula {
        let t = text(node, env.src);
        let left = self.budget.get();
        if left == 0 || nest > MAX_NEST {
            return unknown(t);
        }
        self.budget.set(left - 1);
        let nest = nest + 1;
        let field = |name: &str| node.child_by_field_name(name);
        match node.kind() {
            "number_literal" => number(t).map_or_else(|| unknown(t), Formula::Const),
            "true" => Formula::Const(1),
            "false" | "nullptr" => Formula::Const(0),
            "identifier" => self.ident(t, env, nest),
            "qualified_identifier" => {
                let last = t.rsplit("::").next().unwrap_or(t).trim();
                match self.global(last, env, nest) {
                    Some(f) => f,
                    None => name(t),
                }
            }
            "parenthesized_expression" | "initializer_list" | "argument_list" => {
                match kids(node).as_slice() {
                    [one] => self.tr(*one, env, nest),
                    _ => unknown(t),
                }
            }
            "cast_expression" => match field("value") {
                Some(v) => self.tr(v, env, nest),
                None => unknown(t),
            },
            "sizeof_expression" => self.sizeof(node, env),
            "binary_expression" => self.binary(node, env, nest),
            "unary_expression" => match (
                field("operator").map(|o| text(o, env.src)),
                field("argument"),
            ) {
                (Some("+"), Some(a)) => self.tr(a, env, nest),
                _ => unknown(t),
            },
            "conditional_expression" => match (field("consequence"), field("alternative")) {
                (Some(a), Some(b)) => {
                    Formula::max(vec![self.tr(a, env, nest), self.tr(b, env, nest)])
                }
                _ => unknown(t),
            },
            "call_expression" => self.call(node, env, nest),
            "field_expression" | "subscript_expression" | "pointer_expression" | "this" => name(t),
            _ => unknown(t),
        }
    }

    fn ident(&self, id: &str, env: &Env<'t, '_>, nest: u32) -> Formula {
        if let Some(f) = env.mbound.as_ref().and_then(|m| m.get(id)) {
            return f.clone();
        }
        if env.depth >= MAX_DEPTH {
            return name(id);
        }
        if let Some(func) = env.func {
            let defs = self.locals_of(func);
            if let Some(def) = index::lookup(&defs, id, env.pos) {
                let inner = Env {
                    src: self.src,
                    func: Some(func),
                    pos: def.start,
                    fbound: env.fbound.clone(),
                    mbound: None,
                    depth: env.depth + 1,
                };
                let Some(value) = def.value else {
                    return name(id);
                };
                let rhs = self.tr(value, &inner, nest);
                let before = || self.ident(id, &inner, nest);
                return match def.op.as_str() {
                    "=" => rhs,
                    "+=" => Formula::sum(vec![before(), rhs]),
                    "-=" => Formula::sub(before(), rhs),
                    "*=" => Formula::product(vec![before(), rhs]),
                    "/=" => Formula::div(before(), rhs),
                    _ => unknown(id),
                };
            }
            match &env.fbound {
                Some(bound) => {
                    if let Some(f) = bound.get(id) {
                        return f.clone();
                    }
                }
                None => {
                    if index::params(func, self.src).iter().any(|p| p == id) {
                        return Formula::Param(id.to_string());
                    }
                }
            }
        }
        self.global(id, env, nest).unwrap_or_else(|| name(id))
    }

    /// An object-like macro or a constant of the file.
    fn global(&self, id: &str, env: &Env<'t, '_>, nest: u32) -> Option<Formula> {
        if env.depth >= MAX_DEPTH {
            return None;
        }
        if let Some(defs) = self.index.macros.get(id) {
            let values: Vec<Formula> = (0..defs.len().min(4))
                .filter(|&i| defs[i].params.is_none())
                .map(|i| {
                    self.expand(id, i, None, env, nest)
                        .unwrap_or_else(|| name(id))
                })
                .collect();
            if !values.is_empty() {
                // Alternatives under `#if`: the largest.
                return Some(Formula::max(values));
            }
        }
        let values = self.index.consts.get(id)?;
        let inner = Env {
            src: self.src,
            func: None,
            pos: 0,
            fbound: None,
            mbound: None,
            depth: env.depth + 1,
        };
        let values: Vec<Formula> = values
            .iter()
            .take(4)
            .map(|v| self.tr(*v, &inner, nest))
            .collect();
        Some(Formula::max(values))
    }

    /// The value of macro `id`'s `i`th definition, with its parameters bound to `args`.
    fn expand(
        &self,
        id: &str,
        i: usize,
        args: Option<Rc<HashMap<String, Formula>>>,
        env: &Env<'t, '_>,
        nest: u32,
    ) -> Option<Formula> {
        let tree = self.macro_tree(id, i)?;
        let root = tree.tree.as_ref()?.root_node();
        if root.has_error() {
            return None;
        }
        // `auto __ramscope_value = (<body>);`
        let value = kids(root)
            .first()
            .and_then(|d| d.child_by_field_name("declarator"))
            .and_then(|d| d.child_by_field_name("value"))?;
        let inner = Env {
            src: &tree.text,
            func: env.func,
            pos: env.pos,
            fbound: env.fbound.clone(),
            mbound: args,
            depth: env.depth + 1,
        };
        Some(self.tr(value, &inner, nest))
    }

    fn macro_tree(&self, id: &str, i: usize) -> Option<Rc<MacroTree>> {
        let key = (id.to_string(), i);
        if let Some(t) = self.macro_trees.borrow().get(&key) {
            return Some(t.clone());
        }
        let body = &self.index.macros.get(id)?.get(i)?.body;
        let text = format!("auto __ramscope_value = (\n{body}\n);\n");
        let tree = {
            let mut parser = self.parser.borrow_mut();
            if parser.is_none() {
                let mut p = Parser::new();
                p.set_language(&tree_sitter_cpp::LANGUAGE.into()).ok()?;
                *parser = Some(p);
            }
            parser.as_mut().and_then(|p| p.parse(&text, None))
        };
        let t = Rc::new(MacroTree { text, tree });
        self.macro_trees.borrow_mut().insert(key, t.clone());
        Some(t)
    }

    fn locals_of(&self, func: Node<'t>) -> Rc<Vec<Def<'t>>> {
        if let Some(d) = self.locals.borrow().get(&func.id()) {
            return d.clone();
        }
        let defs = Rc::new(index::locals(func, self.src));
        self.locals.borrow_mut().insert(func.id(), defs.clone());
        defs
    }

    /// `sizeof(T)`: scalar types, pointers and the records of the file; other types stay
    /// symbolic.
    fn sizeof(&self, node: Node<'_>, env: &Env<'t, '_>) -> Formula {
        let inner = match (
            node.child_by_field_name("type"),
            node.child_by_field_name("value"),
        ) {
            (Some(ty), _) => text(ty, env.src),
            (None, Some(v)) if v.kind() == "parenthesized_expression" => {
                kids(v).first().map_or("", |k| text(*k, env.src))
            }
            (None, Some(v)) => text(v, env.src),
            (None, None) => return unknown(text(node, env.src)),
        };
        let ty = collapse(inner, TEXT_LIMIT);
        let sizes = RecordSizes {
            r: self,
            depth: env.depth,
        };
        match sizes.of_type(&ty) {
            Some(l) => Formula::Const(l.size),
            None => Formula::Name(format!("sizeof({ty})")),
        }
    }

    fn binary(&self, node: Node<'_>, env: &Env<'t, '_>, nest: u32) -> Formula {
        let t = text(node, env.src);
        let (Some(l), Some(op), Some(r)) = (
            node.child_by_field_name("left"),
            node.child_by_field_name("operator"),
            node.child_by_field_name("right"),
        ) else {
            return unknown(t);
        };
        let op = text(op, env.src);
        if op == "&" {
            // `(x + 63) & ~63`, `(x + 15) & 0xFFFFFFF0`: x rounded up to 64, to 16.
            let neg = r.child_by_field_name("operator").map(|o| text(o, env.src));
            let mask = match (r.kind(), neg, r.child_by_field_name("argument")) {
                ("unary_expression", Some("~"), Some(arg)) => match self.tr(arg, env, nest) {
                    Formula::Const(m) => Some(!m),
                    _ => None,
                },
                ("unary_expression", ..) => None,
                _ => match self.tr(r, env, nest) {
                    Formula::Const(m) => Some(m),
                    _ => None,
                },
            };
            if let Some(mask) = mask {
                let x = self.tr(l, env, nest);
                return match (x, alignment(mask)) {
                    (Formula::Const(a), _) => Formula::Const(a & mask),
                    (x, Some(align)) => match remove_term(&x, &Formula::Const(align - 1)) {
                        Some(rest) => Formula::product(vec![
                            cdiv(rest, Formula::Const(align)),
                            Formula::Const(align),
                        ]),
                        None => unknown(t),
                    },
                    _ => unknown(t),
                };
            }
        }
        let (a, b) = (self.tr(l, env, nest), self.tr(r, env, nest));
        match (op, a, b) {
            ("+", a, b) => Formula::sum(vec![a, b]),
            ("-", a, b) => Formula::sub(a, b),
            ("*", a, b) => Formula::product(vec![a, b]),
            ("/", a, b) => ceil_pattern(&a, &b).unwrap_or_else(|| Formula::div(a, b)),
            ("<<", a, Formula::Const(k)) if k < 64 => {
                Formula::product(vec![a, Formula::Const(1 << k)])
            }
            (">>", a, Formula::Const(k)) if k < 64 => Formula::div(a, Formula::Const(1 << k)),
            ("&", Formula::Const(x), Formula::Const(y)) => Formula::Const(x & y),
            ("|", Formula::Const(x), Formula::Const(y)) => Formula::Const(x | y),
            ("^", Formula::Const(x), Formula::Const(y)) => Formula::Const(x ^ y),
            ("%", Formula::Const(x), Formula::Const(y)) if y != 0 => Formula::Const(x % y),
            _ => unknown(t),
        }
    }

    fn call(&self, node: Node<'_>, env: &Env<'t, '_>, nest: u32) -> Formula {
        let t = text(node, env.src);
        let (Some(f), Some(arg_list)) = (
            node.child_by_field_name("function"),
            node.child_by_field_name("arguments"),
        ) else {
            return unknown(t);
        };
        let args = kids(arg_list);
        let Some(callee) = index::callee_name(node, env.src) else {
            // `size_t(x)`, `int64_t(x)`: a functional cast.
            return match (f.kind(), args.as_slice()) {
                ("primitive_type" | "sized_type_specifier", [one]) => self.tr(*one, env, nest),
                _ => unknown(t),
            };
        };
        if f.kind() == "field_expression" {
            // A method (`x.size()`): the value of run-time data.
            return unknown(t);
        }
        let formulas = || {
            args.iter()
                .map(|a| self.tr(*a, env, nest))
                .collect::<Vec<_>>()
        };
        match (callee, args.len()) {
            ("static_cast" | "reinterpret_cast" | "const_cast" | "dynamic_cast", 1) => {
                return self.tr(args[0], env, nest)
            }
            ("max" | "fmax", 1..) => return Formula::max(formulas()),
            ("min" | "fmin", 1..) => return Formula::min(formulas()),
            (
                "cdiv" | "ceil_div" | "ceildiv" | "div_ceil" | "ceilDiv" | "CEILDIV" | "CEIL_DIV"
                | "DIVIDE_ROUND_UP" | "DIV_ROUND_UP" | "div_round_up",
                2,
            ) => {
                let v = formulas();
                return cdiv(v[0].clone(), v[1].clone());
            }
            ("round_up" | "ROUND_UP" | "align_up" | "roundUp" | "round_up_to", 2) => {
                let v = formulas();
                return Formula::product(vec![cdiv(v[0].clone(), v[1].clone()), v[1].clone()]);
            }
            ("next_power_of_2" | "next_pow2" | "nextPowerOf2" | "next_power_of_two", 1) => {
                return Formula::pow2(formulas().remove(0))
            }
            _ => {}
        }
        if env.depth >= MAX_DEPTH {
            return unknown(t);
        }
        // A function-like macro of the file.
        if let Some(defs) = self.index.macros.get(callee) {
            let found = defs
                .iter()
                .position(|m| m.params.as_ref().is_some_and(|p| p.len() == args.len()));
            if let Some(i) = found {
                let params = defs[i].params.clone().unwrap_or_default();
                let bound: HashMap<String, Formula> = params.into_iter().zip(formulas()).collect();
                if let Some(f) = self.expand(callee, i, Some(Rc::new(bound)), env, nest) {
                    return f;
                }
            }
        }
        // A function of the file that computes its result in one `return`.
        let Some(defs) = self.index.functions.get(callee) else {
            return unknown(t);
        };
        for def in defs.iter().take(8) {
            let params = index::params(*def, self.src);
            if params.len() != args.len() {
                continue;
            }
            let Some(ret) = index::single_return(*def) else {
                continue;
            };
            let bound: HashMap<String, Formula> = params.into_iter().zip(formulas()).collect();
            let inner = Env {
                src: self.src,
                func: Some(*def),
                pos: ret.start_byte(),
                fbound: Some(Rc::new(bound)),
                mbound: None,
                depth: env.depth + 1,
            };
            return self.tr(ret, &inner, nest);
        }
        unknown(t)
    }
}

/// Type sizes for `sizeof` and record layouts, records followed [`MAX_DEPTH`] deep.
struct RecordSizes<'r, 't, 's> {
    r: &'r Resolver<'t, 's>,
    depth: u32,
}

impl Sizes for RecordSizes<'_, '_, '_> {
    fn count(&self, expr: Node<'_>, src: &str) -> Option<u64> {
        let env = Env {
            src,
            func: None,
            pos: 0,
            fbound: None,
            mbound: None,
            depth: self.depth + 1,
        };
        match self.r.tr(expr, &env, 0) {
            Formula::Const(n) => Some(n),
            _ => None,
        }
    }

    fn of_type(&self, ty: &str) -> Option<Layout> {
        if let Some(n) = type_size(ty) {
            return Some(Layout {
                size: n,
                align: n.min(16),
            });
        }
        let ty = ty.strip_prefix("volatile ").unwrap_or(ty);
        let ty = ty.strip_prefix("const ").unwrap_or(ty);
        if let Some(inner) = ty
            .strip_prefix("std::atomic<")
            .and_then(|t| t.strip_suffix('>'))
        {
            return self.of_type(inner.trim());
        }
        let name = ty.strip_prefix("struct ").unwrap_or(ty).trim();
        let name = name.rsplit("::").next().unwrap_or(name);
        match self.r.index.records.get(name).map(Vec::as_slice) {
            Some([rec]) if self.depth < MAX_DEPTH => {
                let deeper = RecordSizes {
                    r: self.r,
                    depth: self.depth + 1,
                };
                layout::of_record(*rec, self.r.src, &deeper)
            }
            _ => None,
        }
    }
}

fn unknown(t: &str) -> Formula {
    Formula::Unknown(collapse(t, TEXT_LIMIT))
}

fn name(t: &str) -> Formula {
    Formula::Name(collapse(t, TEXT_LIMIT))
}

/// The alignment a mask rounds down to: `!(k − 1)` or its low 32 bits, for a power of two
/// `k` > 1.
fn alignment(mask: u64) -> Option<u64> {
    let tz = mask.trailing_zeros();
    if tz == 0 || tz >= 32 {
        return None;
    }
    let high = mask >> tz;
    let all_ones = high == u64::MAX >> tz || high == (u64::from(u32::MAX)) >> tz;
    all_ones.then_some(1 << tz)
}

/// `a / b` rounded up; exact when a constant factor of `a` is a multiple of `b`
/// (`cdiv(n × 256, 64)` is `n × 4`).
fn cdiv(a: Formula, b: Formula) -> Formula {
    if let (Formula::Mul(terms), Formula::Const(k)) = (&a, &b) {
        if let Some(Formula::Const(c)) = terms.last() {
            if *k > 0 && c % k == 0 {
                let mut t = terms.clone();
                t.pop();
                t.push(Formula::Const(c / k));
                return Formula::product(t);
            }
        }
    }
    Formula::ceil_div(a, b)
}

/// `(x + (k − 1)) / k` and `(x + d − 1) / d`: x divided by d, rounded up.
fn ceil_pattern(n: &Formula, d: &Formula) -> Option<Formula> {
    if let (Formula::Add(terms), Formula::Const(k)) = (n, d) {
        let i = terms
            .iter()
            .position(|t| *k > 1 && *t == Formula::Const(k - 1))?;
        let mut rest = terms.clone();
        rest.remove(i);
        return Some(cdiv(Formula::sum(rest), d.clone()));
    }
    if let Formula::Sub(a, one) = n {
        if **one == Formula::Const(1) {
            return remove_term(a, d).map(|rest| cdiv(rest, d.clone()));
        }
    }
    None
}

/// `a` less its term `d` (or, for a constant `d`, less `d` taken from its constant term).
fn remove_term(a: &Formula, d: &Formula) -> Option<Formula> {
    let Formula::Add(terms) = a else {
        return None;
    };
    let mut rest = terms.clone();
    if let Some(i) = rest.iter().position(|t| t == d) {
        rest.remove(i);
        return Some(Formula::sum(rest));
    }
    let Formula::Const(k) = d else {
        return None;
    };
    let i = rest
        .iter()
        .position(|t| matches!(t, Formula::Const(c) if c >= k))?;
    if let Formula::Const(c) = rest[i] {
        rest[i] = Formula::Const(c - k);
    }
    Some(Formula::sum(rest))
}

/// An integer literal: decimal, hex, octal, binary, digit separators, suffixes; a floating
/// literal with an integral value.
pub(super) fn number(t: &str) -> Option<u64> {
    let s: String = t
        .chars()
        .filter(|c| *c != '\'')
        .collect::<String>()
        .to_ascii_lowercase();
    let int_suffix: &[char] = &['u', 'l', 'z'];
    if let Some(h) = s.strip_prefix("0x") {
        let h = h.trim_end_matches(int_suffix);
        return u64::from_str_radix(h, 16).ok();
    }
    if let Some(b) = s.strip_prefix("0b") {
        return u64::from_str_radix(b.trim_end_matches(int_suffix), 2).ok();
    }
    if s.contains(['.', 'e']) || s.ends_with('f') {
        let f: f64 = s.trim_end_matches(['f', 'l']).parse().ok()?;
        return (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1.8e19).then_some(f as u64);
    }
    let d = s.trim_end_matches(int_suffix);
    if d.len() > 1 && d.starts_with('0') {
        return u64::from_str_radix(d.get(1..)?, 8).ok();
    }
    d.parse().ok()
}

/// The size in bytes of a scalar type as written.
pub(super) fn type_size(ty: &str) -> Option<u64> {
    let mut t = ty.trim();
    for q in ["const ", "volatile ", "struct ", "::"] {
        t = t.strip_prefix(q).unwrap_or(t).trim_start();
    }
    if t.ends_with('*') {
        return Some(8);
    }
    let t = t.strip_prefix("std::").unwrap_or(t);
    Some(match t {
        "char" | "signed char" | "unsigned char" | "int8_t" | "uint8_t" | "bool" | "byte"
        | "c10::Float8_e4m3fn" | "c10::Float8_e5m2" | "__nv_fp8_e4m3" | "__nv_fp8_e5m2"
        | "at::Float8_e4m3fn" => 1,
        "short" | "unsigned short" | "short int" | "int16_t" | "uint16_t" | "half" | "__half"
        | "c10::Half" | "at::Half" | "at::BFloat16" | "c10::BFloat16" | "__nv_bfloat16"
        | "nv_bfloat16" | "__hip_bfloat16" => 2,
        "int" | "unsigned" | "unsigned int" | "int32_t" | "uint32_t" | "float" | "half2"
        | "__half2" | "__nv_bfloat162" | "nv_bfloat162" => 4,
        "long"
        | "unsigned long"
        | "long int"
        | "long long"
        | "unsigned long long"
        | "long long int"
        | "unsigned long long int"
        | "int64_t"
        | "uint64_t"
        | "size_t"
        | "ssize_t"
        | "ptrdiff_t"
        | "intptr_t"
        | "uintptr_t"
        | "double"
        | "float2"
        | "CUdeviceptr"
        | "CUmemGenericAllocationHandle" => 8,
        "long double" | "float4" | "int4" | "uint4" => 16,
        _ => return None,
    })
}
