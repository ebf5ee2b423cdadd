//! Python sources: one file parsed (tree-sitter) into plain facts — imports, classes,
//! functions with their parameters, assignments and calls — that [`resolve`] follows across
//! the tree. Nothing here knows what allocates; this is the syntax, reduced.

mod index;
pub mod resolve;
mod rules;
mod values;
mod walk;

use std::collections::HashMap;

use tree_sitter::Parser;

use walk::Walker;

/// The subset of Python expressions the resolver follows. Anything else is kept as text.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Int(u64),
    Str(String),
    Bool(bool),
    NoneLit,
    Name(String),
    Attr(Box<Expr>, String),
    Call(Box<Call>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Tuple(Vec<Expr>),
    Starred(Box<Expr>),
    Subscript(Box<Expr>, String),
    /// `a if cond else b`: (a, cond text, b).
    Cond(Box<Expr>, String, Box<Expr>),
    /// `not x`, comparisons, `a and b`…: a run-time condition, as text.
    Test(String),
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    FloorDiv,
    Div,
    Shl,
    Shr,
    Pow,
    Mod,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::FloorDiv => "//",
            BinOp::Div => "/",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::Pow => "**",
            BinOp::Mod => "%",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub func: Expr,
    pub args: Vec<Expr>,
    pub kwargs: Vec<(String, Expr)>,
    /// Text of the call, whitespace collapsed (for messages).
    pub text: String,
}

/// Where a value is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A local or module variable.
    Name(String),
    /// `self.name`.
    SelfAttr(String),
    /// `self.name[...]` or `name[...]`.
    Item(String),
    None,
}

#[derive(Debug, Clone)]
pub struct Assign {
    pub target: Target,
    pub value: Expr,
    pub line: u32,
}

/// A call somewhere in a function, with the variable its result is stored in.
#[derive(Debug, Clone)]
pub struct CallSite {
    pub call: Call,
    pub line: u32,
    pub target: Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Plain,
    /// `*args`
    Star,
    /// `**kwargs`
    DoubleStar,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub default: Option<Expr>,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    /// The class whose method this is.
    pub class: Option<String>,
    pub params: Vec<Param>,
    pub line: u32,
    pub assigns: Vec<Assign>,
    pub calls: Vec<CallSite>,
}

#[derive(Debug, Clone)]
pub struct Class {
    pub name: String,
    pub bases: Vec<Expr>,
    pub line: u32,
}

/// One Python file, reduced.
#[derive(Debug, Clone, Default)]
pub struct FileFacts {
    /// Relative to the tree's root.
    pub path: String,
    /// Dotted module name (`vllm.v1.worker.gpu_input_batch`).
    pub module: String,
    /// Local name → what it names (`np` → `numpy`, `empty` → `torch.empty`).
    pub imports: HashMap<String, String>,
    pub classes: Vec<Class>,
    /// Functions and methods; index 0 is the module body (`<module>`), and each class body
    /// is a function named `<class>` of that class.
    pub functions: Vec<Function>,
    pub had_errors: bool,
}

/// The dotted module name of a file relative to the root (`vllm/utils/__init__.py` →
/// `vllm.utils`).
pub fn module_name(path: &str) -> String {
    let stem = path.strip_suffix(".py").unwrap_or(path);
    let stem = stem.strip_suffix("/__init__").unwrap_or(stem);
    stem.replace('/', ".")
}

/// Parses one file. Never fails: a file with syntax errors gives what tree-sitter recovered.
pub fn parse(path: &str, source: &str, parser: &mut Parser) -> FileFacts {
    let mut facts = FileFacts {
        path: path.to_string(),
        module: module_name(path),
        ..FileFacts::default()
    };
    let Some(tree) = parser.parse(source, None) else {
        facts.had_errors = true;
        return facts;
    };
    let root = tree.root_node();
    facts.had_errors = root.has_error();
    facts.functions.push(Function {
        name: "<module>".into(),
        class: None,
        params: Vec::new(),
        line: 1,
        assigns: Vec::new(),
        calls: Vec::new(),
    });
    let mut w = Walker {
        src: source.as_bytes(),
        facts: &mut facts,
        is_package: path.ends_with("__init__.py"),
    };
    w.block(root, 0, None, 0);
    unalias_callees(&mut facts);
    facts
}

/// `from torch import zeros as z; z(n)`: the call is recorded as `torch.zeros(n)`. The
/// resolver picks the calls worth evaluating by the callee's last name (`zeros`), and
/// messages name what is called; an alias would hide both. Qualifying the rewritten name
/// gives what qualifying the alias gave.
fn unalias_callees(facts: &mut FileFacts) {
    let imports = &facts.imports;
    for f in &mut facts.functions {
        for cs in &mut f.calls {
            let Expr::Name(n) = &cs.call.func else {
                continue;
            };
            let Some(target) = imports.get(n) else {
                continue;
            };
            if target.rsplit('.').next() == Some(n.as_str()) || !target.contains('.') {
                continue;
            }
            let mut parts = target.split('.');
            let head = Expr::Name(parts.next().unwrap_or_default().to_string());
            cs.call.func = parts.fold(head, |e, p| Expr::Attr(Box::new(e), p.to_string()));
        }
    }
}

#[cfg(test)]
mod tests;
