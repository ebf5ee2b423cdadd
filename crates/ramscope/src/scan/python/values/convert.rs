//! From values to what a site needs (a byte count, a dtype's width, a device, a flag),
//! and the small judgements the evaluator makes on values: which branch of a conditional
//! a size takes, what is a placeholder, what names a configuration.

use super::{Dev, Truth, Val};
use crate::scan::python::Expr;
use crate::scan::Formula;

/// Whether `e` reads `self.<a>`.
pub(super) fn mentions_self_attr(e: &Expr, a: &str) -> bool {
    match e {
        Expr::Attr(base, x) => {
            (x == a && matches!(base.as_ref(), Expr::Name(s) if s == "self"))
                || mentions_self_attr(base, a)
        }
        Expr::Call(c) => {
            mentions_self_attr(&c.func, a)
                || c.args.iter().any(|x| mentions_self_attr(x, a))
                || c.kwargs.iter().any(|(_, x)| mentions_self_attr(x, a))
        }
        Expr::Bin(_, l, r) | Expr::Cond(l, _, r) => {
            mentions_self_attr(l, a) || mentions_self_attr(r, a)
        }
        Expr::Tuple(items) => items.iter().any(|x| mentions_self_attr(x, a)),
        Expr::Starred(x) | Expr::Subscript(x, _) => mentions_self_attr(x, a),
        Expr::Other(t) | Expr::Test(t) => t.contains(&format!("self.{a}")),
        Expr::Int(_) | Expr::Str(_) | Expr::Bool(_) | Expr::NoneLit | Expr::Name(_) => false,
    }
}

/// Whether a tuple's items are all there: not when it ends with what a `*x` of unknown
/// length stands for (a parameter, `*x`).
pub(super) fn known_length(items: &[Val]) -> bool {
    !items
        .iter()
        .any(|v| matches!(v, Val::Param(_)) || matches!(v, Val::Obj(t) if t.starts_with('*')))
}

/// A value an attribute is given before it is set for real (`= 0`, `= None`, `= ()`).
pub(super) fn is_placeholder(v: &Val) -> bool {
    match v {
        Val::NoneLit | Val::Num(Formula::Const(0)) => true,
        Val::Tuple(items) => items.is_empty(),
        _ => false,
    }
}

/// `vllm_config`, `self.model_config`, `hf_text_config`: a configuration object by its name.
pub(super) fn is_config_name(t: &str) -> bool {
    t.rsplit('.')
        .next()
        .is_some_and(|last| last.ends_with("config"))
}

/// `VLLM_…` environment settings are configuration, whatever module reads them.
pub(super) fn is_env_var(n: &str) -> bool {
    n.len() > 5
        && n.starts_with("VLLM_")
        && n.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// `a if c else b`: the same value when both branches agree; a conditional size counts its
/// larger branch (the scan reports what the code can hold).
pub(super) fn choose(x: Val, y: Val, cond: &str) -> Val {
    if x == y {
        return x;
    }
    match (&x, &y) {
        (Val::NoneLit, _) => y,
        (_, Val::NoneLit) => x,
        (Val::Num(a), Val::Num(b)) => Val::Num(Formula::max(vec![a.clone(), b.clone()])),
        // A size on one side and something the scan does not follow on the other
        // (`cfg.max_len if cfg else self.default_len`): still the larger of the two.
        (Val::Num(_) | Val::Param(_), Val::Num(_) | Val::Param(_) | Val::Obj(_))
        | (Val::Obj(_), Val::Num(_) | Val::Param(_)) => {
            Val::Num(Formula::max(vec![as_num(&x), as_num(&y)]))
        }
        (Val::Dtype { bytes: a, text: ta }, Val::Dtype { bytes: b, text: tb }) => Val::Dtype {
            bytes: Formula::max(vec![a.clone(), b.clone()]),
            text: format!("{ta} | {tb}"),
        },
        // `torch.float64 if fp64 else probs.dtype`: the known width or the other one.
        (Val::Dtype { .. }, Val::Param(_) | Val::Obj(_) | Val::Num(_))
        | (Val::Param(_) | Val::Obj(_) | Val::Num(_), Val::Dtype { .. }) => {
            let (a, ta) = as_dtype(&x, Lib::Torch);
            let (b, tb) = as_dtype(&y, Lib::Torch);
            Val::Dtype {
                bytes: Formula::max(vec![a, b]),
                text: format!("{ta} | {tb}"),
            }
        }
        (Val::Truth(_), _) | (_, Val::Truth(_)) => Val::Truth(Truth::Runtime(cond.to_string())),
        // Shapes: dimension by dimension when they have as many, else the larger count.
        (Val::Tuple(a), Val::Tuple(b)) if a.len() == b.len() => Val::Tuple(
            a.iter()
                .zip(b)
                .map(|(p, q)| choose(p.clone(), q.clone(), cond))
                .collect(),
        ),
        (Val::Tuple(_), Val::Tuple(_) | Val::Num(_)) | (Val::Num(_), Val::Tuple(_)) => {
            Val::Num(Formula::max(vec![as_num(&x), as_num(&y)]))
        }
        _ => Val::Obj(format!("{} if {cond} else {}", describe(&x), describe(&y))),
    }
}

/// A value as text, for names of things the scan does not follow: what the code says,
/// never the evaluator's structures.
fn describe(v: &Val) -> String {
    match v {
        Val::Num(f) => f.to_string(),
        Val::Str(s) => format!("{s:?}"),
        Val::Obj(t) | Val::Param(t) => t.clone(),
        Val::Dtype { text, .. } => text.clone(),
        Val::Device(Dev::Cpu) => "\"cpu\"".into(),
        Val::Device(Dev::Accel) => "the accelerator".into(),
        Val::Device(Dev::Runtime(t)) | Val::Truth(Truth::Runtime(t)) => t.clone(),
        Val::Truth(Truth::Yes) => "True".into(),
        Val::Truth(Truth::No) => "False".into(),
        Val::NoneLit => "None".into(),
        Val::Config => "a configuration".into(),
        Val::Tuple(items) if items.len() == 1 => format!("({},)", describe(&items[0])),
        Val::Tuple(items) => {
            format!(
                "({})",
                items.iter().map(describe).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

/// The expression's text, short, for names of things the scan does not follow and for a
/// site's shape: Python as written (`(max_num_reqs, max_model_len)`, `1 << 20`), never
/// the parser's structures. Parenthesised where an operand is itself an operation.
pub fn short(e: &Expr) -> String {
    match e {
        Expr::Name(n) => n.clone(),
        Expr::Attr(b, a) => format!("{}.{a}", operand(b)),
        Expr::Call(c) => c.text.clone(),
        Expr::Other(t) | Expr::Test(t) => t.clone(),
        Expr::Int(v) => v.to_string(),
        Expr::Str(s) => format!("{s:?}"),
        Expr::Bool(true) => "True".into(),
        Expr::Bool(false) => "False".into(),
        Expr::NoneLit => "None".into(),
        Expr::Bin(op, l, r) => format!("{} {} {}", operand(l), op.symbol(), operand(r)),
        Expr::Tuple(items) if items.len() == 1 => format!("({},)", short(&items[0])),
        Expr::Tuple(items) => {
            format!(
                "({})",
                items.iter().map(short).collect::<Vec<_>>().join(", ")
            )
        }
        Expr::Starred(inner) => format!("*{}", operand(inner)),
        Expr::Subscript(v, idx) => format!("{}[{idx}]", operand(v)),
        Expr::Cond(a, c, b) => format!("{} if {c} else {}", operand(a), operand(b)),
    }
}

fn operand(e: &Expr) -> String {
    match e {
        Expr::Bin(..) | Expr::Cond(..) => format!("({})", short(e)),
        _ => short(e),
    }
}

/// `a − b` with the terms both sides share cancelled: `np.arange(start, start + n)` is `n`
/// long, not `start + n − start`.
pub fn minus(a: Formula, b: Formula) -> Formula {
    fn split(f: Formula) -> (Vec<Formula>, u64) {
        let terms = match f {
            Formula::Add(v) => v,
            other => vec![other],
        };
        let mut rest = Vec::new();
        let mut constant = 0u64;
        for t in terms {
            match t {
                Formula::Const(c) => constant = constant.saturating_add(c),
                other => rest.push(other),
            }
        }
        (rest, constant)
    }
    let (mut at, ac) = split(a);
    let (bt, bc) = split(b);
    let mut left = Vec::new();
    for t in bt {
        match at.iter().position(|x| *x == t) {
            Some(i) => {
                at.remove(i);
            }
            None => left.push(t),
        }
    }
    let common = ac.min(bc);
    let mut a_terms = at;
    a_terms.push(Formula::Const(ac - common));
    left.push(Formula::Const(bc - common));
    Formula::sub(Formula::sum(a_terms), Formula::sum(left))
}

/// A number (or a shape's element count).
pub fn as_num(v: &Val) -> Formula {
    match v {
        Val::Num(f) => f.clone(),
        Val::Tuple(items) => Formula::product(items.iter().map(as_num).collect()),
        Val::Param(p) => Formula::Param(p.clone()),
        Val::Obj(t) => Formula::Name(t.clone()),
        Val::Truth(Truth::Yes) => Formula::Const(1),
        Val::Truth(Truth::No) | Val::NoneLit => Formula::Const(0),
        other => Formula::Unknown(describe(other)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lib {
    Torch,
    Numpy,
}

/// Element bytes and the dtype as written.
pub fn as_dtype(v: &Val, lib: Lib) -> (Formula, String) {
    match v {
        Val::Dtype { bytes, text } => (bytes.clone(), text.clone()),
        Val::Str(s) => match dtype_bytes(s) {
            Some(b) => (Formula::Const(b), s.clone()),
            None => (Formula::unknown(s), s.clone()),
        },
        Val::Obj(t) if t == "bool" => (Formula::Const(1), "bool".into()),
        Val::Obj(t) if t == "int" => (Formula::Const(8), "int".into()),
        // Python's `float` is a double in numpy and in torch alike (`torch.zeros(n,
        // dtype=float).dtype` is `torch.float64`).
        Val::Obj(t) if t == "float" => (Formula::Const(8), "float".into()),
        // `dtype=None`: the library's default.
        Val::NoneLit if lib == Lib::Torch => (Formula::Const(4), "torch.float32".into()),
        Val::NoneLit => (Formula::Const(8), "float64".into()),
        Val::Num(Formula::Name(n)) => (Formula::Name(n.clone()), n.clone()),
        Val::Param(p) => (Formula::Param(p.clone()), p.clone()),
        Val::Obj(t) => (Formula::Name(format!("sizeof({t})")), t.clone()),
        other => (Formula::unknown(&describe(other)), describe(other)),
    }
}

pub fn as_device(v: &Val) -> Dev {
    match v {
        Val::Device(d) => d.clone(),
        Val::Str(s) if s == "cpu" || s.starts_with("cpu:") => Dev::Cpu,
        Val::Str(_) => Dev::Accel,
        Val::NoneLit => Dev::Cpu,
        Val::Obj(t) if t.ends_with("device_type") || t.contains("cuda") => Dev::Accel,
        Val::Obj(t) | Val::Param(t) => Dev::Runtime(t.clone()),
        other => Dev::Runtime(describe(other)),
    }
}

pub fn as_truth(v: &Val) -> Truth {
    match v {
        Val::Truth(t) => t.clone(),
        Val::NoneLit | Val::Num(Formula::Const(0)) => Truth::No,
        Val::Num(Formula::Const(_)) => Truth::Yes,
        Val::Obj(t) | Val::Param(t) => Truth::Runtime(t.clone()),
        other => Truth::Runtime(describe(other)),
    }
}

/// A dtype by its qualified name (`torch.int32`, `numpy.float64`).
pub(super) fn dtype(q: &str) -> Option<Val> {
    let (lib, name) = q.split_once('.')?;
    if lib != "torch" && lib != "numpy" {
        return None;
    }
    let bytes = match (lib, name) {
        ("torch", "float") => 4,
        ("torch", "int") => 4,
        ("numpy", "bool_" | "byte" | "ubyte") => 1,
        ("numpy", "intc" | "uintc") => 4,
        ("numpy", "intp" | "uintp" | "longlong" | "int_" | "float_") => 8,
        _ => dtype_bytes(name)?,
    };
    Some(Val::Dtype {
        bytes: Formula::Const(bytes),
        text: q.to_string(),
    })
}

fn dtype_bytes(name: &str) -> Option<u64> {
    Some(match name {
        "bool" | "int8" | "uint8" | "qint8" | "quint8" => 1,
        n if n.starts_with("float8") || n.starts_with("float4") => 1,
        "float16" | "half" | "bfloat16" | "int16" | "short" | "uint16" => 2,
        "float32" | "int32" | "uint32" | "single" => 4,
        "float64" | "double" | "int64" | "long" | "uint64" | "complex64" => 8,
        "complex128" | "cdouble" => 16,
        _ => return None,
    })
}
