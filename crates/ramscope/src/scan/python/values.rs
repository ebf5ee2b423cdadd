//! Symbolic evaluation of Python expressions into sizes, shapes, dtypes, devices and flags,
//! following local assignments, `self` attributes (through base classes), module constants
//! (through imports), and the arguments a caller passed (an [`Env`] of call frames).

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

use super::index::{dotted, CallRef, FuncId, Index};
use super::{BinOp, Expr, ParamKind, Target};
use crate::scan::Formula;

mod convert;

pub use convert::{as_device, as_dtype, as_num, as_truth, minus, short, Lib};
use convert::{
    choose, dtype, is_config_name, is_env_var, is_placeholder, known_length, mentions_self_attr,
};

/// What an expression is worth, as far as sizes go.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Num(Formula),
    Tuple(Vec<Val>),
    Dtype {
        bytes: Formula,
        text: String,
    },
    Device(Dev),
    Truth(Truth),
    Str(String),
    NoneLit,
    /// A configuration object (`vllm_config.scheduler_config`): its attributes are names.
    Config,
    /// A parameter of a function with no frame: its value comes from callers.
    Param(String),
    /// Something the scan does not follow (an object, a local of unknown origin).
    Obj(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dev {
    Cpu,
    Accel,
    Runtime(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Truth {
    Yes,
    No,
    Runtime(String),
}

/// Call frames: `func`'s parameters are the arguments of `call`, evaluated in `next`.
#[derive(Debug)]
pub struct Frame {
    pub func: FuncId,
    pub call: CallRef,
    pub next: Env,
}

pub type Env = Option<Rc<Frame>>;

/// Deep enough for real code (a size through a dozen assignments), bounded for cycles.
const MAX_DEPTH: u32 = 40;
/// Steps per evaluation, so a pathological tree costs milliseconds, not minutes.
const MAX_STEPS: u32 = 20_000;
/// Evaluations in progress at once (the recursion's depth, whatever it goes through:
/// operands, assignments, arguments). A parsed expression is at most 200 deep, but
/// [`MAX_DEPTH`] hops of such expressions would be thousands of frames, past a thread's
/// stack; real sizes nest a few dozen deep.
const MAX_NESTING: u32 = 400;
/// Helpers' return values evaluated per evaluation, and the steps each may take: a size
/// helper is a line or two; one that is not is left as its call.
const MAX_HELPERS: u32 = 64;
const HELPER_STEPS: u32 = 1_000;

pub struct Eval<'a> {
    pub ix: &'a Index<'a>,
    /// Functions whose parameters were needed but had no frame.
    pub unbound: RefCell<Vec<FuncId>>,
    /// Functions whose parameters were needed and that no parsed code calls.
    pub uncalled: RefCell<BTreeSet<FuncId>>,
    /// Names that came from configuration objects (`max_num_seqs`), as opposed to values
    /// left symbolic.
    pub config_names: RefCell<BTreeSet<String>>,
    steps: Cell<u32>,
    nesting: Cell<u32>,
    /// The step count at which evaluation gives up: [`MAX_STEPS`], lower while a helper's
    /// return value is evaluated.
    limit: Cell<u32>,
    /// Helpers' return values evaluated since the last [`Eval::reset`].
    helpers: Cell<u32>,
    /// Attributes whose placeholder is being looked past (class, attribute).
    resolving: RefCell<Vec<(FuncId, String)>>,
}

/// Where an expression is evaluated.
#[derive(Clone)]
pub struct At {
    pub func: FuncId,
    pub line: u32,
    pub env: Env,
    pub depth: u32,
}

impl At {
    fn deeper(&self, func: FuncId, line: u32, env: Env) -> At {
        At {
            func,
            line,
            env,
            depth: self.depth + 1,
        }
    }
}

impl<'a> Eval<'a> {
    pub fn new(ix: &'a Index<'a>) -> Eval<'a> {
        Eval {
            ix,
            unbound: RefCell::new(Vec::new()),
            uncalled: RefCell::new(BTreeSet::new()),
            config_names: RefCell::new(BTreeSet::new()),
            steps: Cell::new(0),
            nesting: Cell::new(0),
            limit: Cell::new(MAX_STEPS),
            helpers: Cell::new(0),
            resolving: RefCell::new(Vec::new()),
        }
    }

    pub fn reset(&self) {
        self.unbound.borrow_mut().clear();
        self.steps.set(0);
        self.helpers.set(0);
    }

    pub fn eval(&self, e: &Expr, at: &At) -> Val {
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        let nesting = self.nesting.get();
        if at.depth > MAX_DEPTH || steps > self.limit.get() || nesting >= MAX_NESTING {
            return Val::Obj(short(e));
        }
        self.nesting.set(nesting + 1);
        let v = self.eval_inner(e, at);
        self.nesting.set(nesting);
        v
    }

    fn eval_inner(&self, e: &Expr, at: &At) -> Val {
        match e {
            Expr::Int(v) => Val::Num(Formula::Const(*v)),
            Expr::Str(s) => Val::Str(s.clone()),
            Expr::Bool(true) => Val::Truth(Truth::Yes),
            Expr::Bool(false) => Val::Truth(Truth::No),
            Expr::NoneLit => Val::NoneLit,
            Expr::Name(n) => self.name(n, at),
            Expr::Attr(base, a) => self.attr(e, base, a, at),
            Expr::Call(c) => self.call(e, c, at),
            Expr::Bin(op, l, r) => self.binary(*op, l, r, at),
            Expr::Tuple(items) => Val::Tuple(self.items(items, at)),
            Expr::Starred(inner) => self.eval(inner, at),
            Expr::Subscript(v, idx)
                if dotted(v)
                    .and_then(|d| self.ix.qualify(at.func.file, &d))
                    .as_deref()
                    == Some("os.environ")
                    && is_env_var(idx.trim().trim_matches(|c| c == '"' || c == '\'')) =>
            {
                self.config(idx.trim().trim_matches(|c| c == '"' || c == '\''))
            }
            Expr::Subscript(v, idx) => match (self.eval(v, at), idx.trim().parse::<i64>()) {
                // `shape[0]`, `shape[-1]` of a known shape.
                (Val::Tuple(items), Ok(i)) if known_length(&items) => {
                    let n = items.len() as i64;
                    let k = if i < 0 { n + i } else { i };
                    match usize::try_from(k).ok().and_then(|k| items.get(k)) {
                        Some(x) => x.clone(),
                        None => Val::Obj(short(e)),
                    }
                }
                _ => Val::Obj(short(e)),
            },
            Expr::Cond(a, cond, b) => {
                let (x, y) = (self.eval(a, at), self.eval(b, at));
                choose(x, y, cond)
            }
            Expr::Test(t) => Val::Truth(Truth::Runtime(t.clone())),
            Expr::Other(t) => Val::Obj(t.clone()),
        }
    }

    /// Positional items with `*x` expanded when `x` is a known tuple.
    pub fn items(&self, items: &[Expr], at: &At) -> Vec<Val> {
        let mut out = Vec::new();
        for it in items {
            match it {
                Expr::Starred(inner) => match self.eval(inner, at) {
                    Val::Tuple(v) => out.extend(v),
                    other => out.push(other),
                },
                _ => out.push(self.eval(it, at)),
            }
        }
        out
    }

    fn name(&self, n: &str, at: &At) -> Val {
        if n == "self" || n == "cls" {
            return Val::Obj(n.to_string());
        }
        if is_env_var(n) {
            return self.config(n);
        }
        let Some(func) = self.ix.func(at.func) else {
            return Val::Obj(n.to_string());
        };
        // The last assignment before this line, in this function.
        let local = func
            .assigns
            .iter()
            .rev()
            .find(|a| a.line < at.line && a.target == Target::Name(n.to_string()));
        if let Some(a) = local {
            return self.eval(&a.value, &at.deeper(at.func, a.line, at.env.clone()));
        }
        if func.params.iter().any(|p| p.name == n) {
            return self.param(n, at);
        }
        if let Some(v) = self.global(at.func.file, n, at) {
            return v;
        }
        if n.ends_with("config") {
            return Val::Config;
        }
        Val::Obj(n.to_string())
    }

    /// A module constant, here or imported.
    fn global(&self, file: usize, n: &str, at: &At) -> Option<Val> {
        let q = self.ix.qualify(file, n)?;
        let (gfile, assign) = self.ix.global(&q)?;
        let body = FuncId {
            file: gfile,
            func: 0,
        };
        Some(self.eval(&assign.value, &at.deeper(body, u32::MAX, None)))
    }

    fn param(&self, n: &str, at: &At) -> Val {
        let mut frame = at.env.as_ref();
        while let Some(f) = frame {
            if f.func == at.func {
                return self.bound(n, f, at);
            }
            frame = f.next.as_ref();
        }
        if n.ends_with("config") {
            return Val::Config;
        }
        let mut unbound = self.unbound.borrow_mut();
        if !unbound.contains(&at.func) {
            unbound.push(at.func);
        }
        Val::Param(n.to_string())
    }

    /// The value a caller passed for parameter `n` (or its default).
    fn bound(&self, n: &str, frame: &Frame, at: &At) -> Val {
        let (Some(func), Some(site)) = (self.ix.func(frame.func), self.ix.call(frame.call)) else {
            return Val::Obj(n.to_string());
        };
        // Every frame stays visible: frames are added in the order parameters were found
        // missing, not in call order, so a caller's frame may come before its callee's.
        let caller = at.deeper(frame.call.in_func, site.line + 1, at.env.clone());
        if let Some((_, e)) = site.call.kwargs.iter().find(|(k, _)| k == n) {
            return self.eval(e, &caller);
        }
        // Methods called through `self.`/a class/`super()` do not pass `self` positionally.
        let skip = usize::from(
            func.class.is_some()
                && func
                    .params
                    .first()
                    .is_some_and(|p| p.name == "self" || p.name == "cls"),
        );
        // The positional arguments, up to a `*x` whose length the scan does not know: what
        // comes from it is named by its position in `x`.
        let mut positional = Vec::new();
        let mut rest: Option<(String, Val)> = None;
        for a in &site.call.args {
            match a {
                Expr::Starred(inner) => match self.eval(inner, &caller) {
                    Val::Tuple(v) => positional.extend(v),
                    other => {
                        rest = Some((short(inner), other));
                        break;
                    }
                },
                _ => positional.push(self.eval(a, &caller)),
            }
        }
        let from_rest = |i: usize| {
            let (r, _) = rest.as_ref()?;
            Some(Val::Obj(format!("{r}[{}]", i - positional.len())))
        };
        let mut i = 0;
        // After `*args` (or a bare `*`) parameters are keyword-only: no positional argument
        // fills them.
        let mut keyword_only = false;
        for p in func.params.iter().skip(skip) {
            match p.kind {
                ParamKind::Star if p.name == n => {
                    let mut v = positional.get(i..).unwrap_or_default().to_vec();
                    if let Some((r, whole)) = &rest {
                        let from = i.saturating_sub(positional.len());
                        v.push(match whole {
                            // A caller's parameter stays one: its own callers may bind it.
                            Val::Param(_) if from == 0 => whole.clone(),
                            _ if from == 0 => Val::Obj(format!("*{r}")),
                            _ => Val::Obj(format!("*{r}[{from}:]")),
                        });
                    }
                    return Val::Tuple(v);
                }
                ParamKind::Star => keyword_only = true,
                ParamKind::DoubleStar => {}
                ParamKind::Plain if p.name == n => {
                    if !keyword_only {
                        if let Some(v) = positional.get(i).cloned().or_else(|| from_rest(i)) {
                            return v;
                        }
                    }
                    return match &p.default {
                        Some(d) => {
                            let body = FuncId {
                                file: frame.func.file,
                                func: 0,
                            };
                            self.eval(d, &at.deeper(body, u32::MAX, None))
                        }
                        None => Val::Obj(n.to_string()),
                    };
                }
                ParamKind::Plain => i += 1,
            }
        }
        Val::Obj(n.to_string())
    }

    fn attr(&self, whole: &Expr, base: &Expr, a: &str, at: &At) -> Val {
        // `cls.X` in a class method is the class's, as `self.X` is.
        if matches!(base, Expr::Name(s) if s == "self" || s == "cls") {
            return self.self_attr(a, at);
        }
        if is_env_var(a) {
            return self.config(a);
        }
        if let Some(d) = dotted(whole) {
            if let Some(q) = self.ix.qualify(at.func.file, &d) {
                if let Some(t) = dtype(&q) {
                    return t;
                }
                if let Some((gfile, assign)) = self.ix.global(&q) {
                    let body = FuncId {
                        file: gfile,
                        func: 0,
                    };
                    return self.eval(&assign.value, &at.deeper(body, u32::MAX, None));
                }
                // `Class.CONSTANT`: an assignment in the class body.
                if let Some(v) = q.rsplit_once('.').and_then(|(c, name)| {
                    let body = self.ix.class(c)?;
                    let x = self
                        .ix
                        .func(body)?
                        .assigns
                        .iter()
                        .rev()
                        .find(|x| matches!(&x.target, Target::Name(t) if t == name))?;
                    Some(self.eval(&x.value, &at.deeper(body, u32::MAX, None)))
                }) {
                    return v;
                }
            }
        }
        match self.object(base, at) {
            Val::Config if a.ends_with("config") => Val::Config,
            Val::Config => self.config(a),
            Val::Tuple(_) if a == "shape" => self.eval(base, at),
            _ => Val::Obj(short(whole)),
        }
    }

    /// The object of an attribute access or a method call. A value the scan does not follow
    /// but whose name says it is a configuration (`self.vllm_config` of a class that never
    /// assigns it, an argument bound to something opaque) is one: its attributes are
    /// configuration names, as for a configuration parameter nobody passes.
    fn object(&self, base: &Expr, at: &At) -> Val {
        match self.eval(base, at) {
            Val::Obj(t) | Val::Param(t)
                if is_config_name(&t) || dotted(base).is_some_and(|d| is_config_name(&d)) =>
            {
                Val::Config
            }
            v => v,
        }
    }

    /// `self.name`: its assignment in this class (`__init__` first) or a base class.
    fn self_attr(&self, a: &str, at: &At) -> Val {
        let Some(mut class) = self.ix.class_of(at.func) else {
            return Val::Obj(format!("self.{a}"));
        };
        for _ in 0..8 {
            let file = &self.ix.files[class.file];
            let Some(cname) = self.ix.func(class).and_then(|c| c.class.clone()) else {
                break;
            };
            let target = Target::SelfAttr(a.to_string());
            // Every assignment that may give the attribute its value, best first: the
            // asking method's own earlier one (the value at that line), `__init__`'s,
            // another method's, the class body's.
            let mut found = Vec::new();
            for (i, f) in file.functions.iter().enumerate() {
                if f.class.as_deref() != Some(cname.as_str()) {
                    continue;
                }
                let same = i == at.func.func && class.file == at.func.file;
                let x = if f.name == "<class>" {
                    f.assigns
                        .iter()
                        .find(|x| x.target == Target::Name(a.to_string()))
                } else {
                    // Within a method, the last assignment before the line asked about,
                    // when asked from that method; else the last (what the attribute holds
                    // once the method has run).
                    f.assigns
                        .iter()
                        .rfind(|x| x.target == target && (!same || x.line < at.line))
                };
                if let Some(x) = x {
                    let rank: u8 = match f.name.as_str() {
                        _ if same => 0,
                        "__init__" => 1,
                        "<class>" => 3,
                        _ => 2,
                    };
                    found.push((rank, i, x));
                }
            }
            found.sort_by_key(|(rank, _, _)| *rank);
            let value_of = |&(_, i, x): &(u8, usize, &super::Assign)| {
                let func = FuncId {
                    file: class.file,
                    func: i,
                };
                self.eval(&x.value, &at.deeper(func, x.line, at.env.clone()))
            };
            if let Some(first) = found.first() {
                let v = value_of(first);
                if first.0 == 0 || !is_placeholder(&v) {
                    return v;
                }
                // Asked again while looking past this placeholder: the value being looked
                // for depends on itself (`end = self.filled + n; self.filled = end`).
                let key = (class, a.to_string());
                if self.resolving.borrow().contains(&key) {
                    return Val::Obj(format!("self.{a}"));
                }
                // `self.num_regions = 0` in `__init__`, set for real when the caches are
                // registered: what the other methods set (the larger, when several do).
                // An update of the attribute from itself (`self.filled -= n`) in a method
                // that never sets it is a counter moving, not the attribute being set; one
                // after the method set it (`= len(caches); ... *= 2`) scales that.
                let mut set: Option<Val> = None;
                for other in &found[1..] {
                    let (_, i, x) = other;
                    if mentions_self_attr(&x.value, a)
                        && !file.functions[*i].assigns.iter().any(|y| {
                            y.line < x.line
                                && y.target == target
                                && !mentions_self_attr(&y.value, a)
                        })
                    {
                        continue;
                    }
                    self.resolving.borrow_mut().push(key.clone());
                    let w = value_of(other);
                    self.resolving.borrow_mut().pop();
                    let marker = format!("self.{a}");
                    let circular = match &w {
                        Val::Num(f) => f.names().contains(&marker),
                        Val::Obj(t) => t.contains(&marker),
                        _ => false,
                    };
                    if is_placeholder(&w) || circular {
                        continue;
                    }
                    set = Some(match set {
                        None => w,
                        Some(p) => choose(p, w, &format!("where self.{a} was set")),
                    });
                }
                return set.unwrap_or(v);
            }
            match self.ix.bases(class).first() {
                Some(b) => class = *b,
                None => break,
            }
        }
        Val::Obj(format!("self.{a}"))
    }

    fn config(&self, name: &str) -> Val {
        self.config_names.borrow_mut().insert(name.to_string());
        Val::Num(Formula::name(name))
    }

    fn call(&self, whole: &Expr, c: &super::Call, at: &At) -> Val {
        let name = dotted(&c.func)
            .and_then(|d| self.ix.qualify(at.func.file, &d))
            .unwrap_or_default();
        let last = name.rsplit('.').next().unwrap_or_default();
        let arg = |i: usize| c.args.get(i).map(|e| self.eval(e, at));
        let num = |v: Option<Val>| v.map(|v| as_num(&v));
        // `os.getenv("VLLM_X")`, `os.environ.get("VLLM_X", default)`: the setting, as
        // `envs.VLLM_X` is.
        if name == "os.getenv" || name == "os.environ.get" {
            if let Some(Expr::Str(var)) = c.args.first() {
                if is_env_var(var) {
                    return self.config(var);
                }
            }
        }
        match last {
            "int" | "ceil" | "floor" | "round" | "index" | "tuple" | "list" | "Size"
                if c.args.len() == 1 =>
            {
                if let Some(v) = arg(0) {
                    return v;
                }
            }
            "max" | "min" if c.args.len() >= 2 => {
                let terms = self.items(&c.args, at).iter().map(as_num).collect();
                return Val::Num(if last == "max" {
                    Formula::max(terms)
                } else {
                    Formula::min(terms)
                });
            }
            "cdiv" | "div_ceil" => {
                if let (Some(a), Some(b)) = (num(arg(0)), num(arg(1))) {
                    return Val::Num(Formula::ceil_div(a, b));
                }
            }
            "round_up" => {
                if let (Some(a), Some(b)) = (num(arg(0)), num(arg(1))) {
                    return Val::Num(Formula::mul(Formula::ceil_div(a, b.clone()), b));
                }
            }
            "next_power_of_2" | "next_pow2" | "next_power_of_two" => {
                if let Some(a) = num(arg(0)) {
                    return Val::Num(Formula::pow2(a));
                }
            }
            "prod" => {
                if let Some(a) = num(arg(0)) {
                    return Val::Num(a);
                }
            }
            "device" if name.starts_with("torch.") => {
                return match arg(0) {
                    Some(v) => Val::Device(as_device(&v)),
                    None => Val::Obj(short(whole)),
                };
            }
            "get_dtype_size" => {
                if let Some(v) = arg(0) {
                    return Val::Num(as_dtype(&v, Lib::Torch).0);
                }
            }
            "is_pin_memory_available" => {
                return Val::Truth(Truth::Runtime("is_pin_memory_available()".into()))
            }
            _ => {}
        }
        if let Some(v) = self.returned(whole, c, at) {
            return v;
        }
        if let Expr::Attr(obj, method) = &c.func {
            if let Some(x) = method.strip_prefix("get_") {
                if matches!(self.object(obj, at), Val::Config) {
                    let x = match x {
                        "num_layers" => "num_hidden_layers",
                        "inputs_embeds_size" => "hidden_size",
                        other => other,
                    };
                    return self.config(x);
                }
            }
        }
        Val::Obj(short(whole))
    }

    /// What a function of the tree returns for this call's arguments
    /// (`get_pack_factor(num_bits)` is `32 // num_bits`), when it is a size, a shape, a
    /// dtype or a constant; `None` for anything else (the call's text names it then).
    fn returned(&self, whole: &Expr, c: &super::Call, at: &At) -> Option<Val> {
        let callee = self.ix.callee(at.func, c)?;
        let f = self.ix.func(callee)?;
        // A constructor returns an object.
        if f.name == "__init__" || self.helpers.get() >= MAX_HELPERS {
            return None;
        }
        // A recursive helper is not unrolled.
        let mut frame = at.env.as_ref();
        while let Some(fr) = frame {
            if fr.func == callee {
                return None;
            }
            frame = fr.next.as_ref();
        }
        let returns: Vec<&super::Assign> = f
            .assigns
            .iter()
            .filter(|a| a.target == Target::Name("return".into()))
            .collect();
        if returns.is_empty() {
            return None;
        }
        // The frame needs the call as recorded in the calling function.
        let caller = self.ix.func(at.func)?;
        let ci = caller
            .calls
            .iter()
            .position(|cs| cs.call.text == c.text && cs.call == *c)?;
        let env = Some(Rc::new(Frame {
            func: callee,
            call: CallRef {
                in_func: at.func,
                call: ci,
            },
            next: at.env.clone(),
        }));
        self.helpers.set(self.helpers.get() + 1);
        let (before, limit) = (self.steps.get(), self.limit.get());
        self.limit
            .set(limit.min(before.saturating_add(HELPER_STEPS)));
        let mut out: Option<Val> = None;
        for r in returns {
            let v = self.eval(&r.value, &at.deeper(callee, r.line, env.clone()));
            out = Some(match out {
                None => v,
                Some(p) => choose(p, v, &format!("the return of {}", short(whole))),
            });
        }
        let gave_up = self.steps.get() > self.limit.get();
        self.limit.set(limit);
        if gave_up {
            // What the helper's evaluation used is not the caller's to lose.
            self.steps.set(before);
            return None;
        }
        let v = out?;
        // Only a value in the caller's terms (configuration names, the caller's own
        // parameters, constants) replaces the call: `cdiv(max_model_len, block_size)`
        // does, `len(kv_caches) * 2` — a name of the helper's — does not.
        if !self.in_callers_terms(&v) {
            return None;
        }
        Some(match v {
            // A run-time condition is named by the call (`use_pinned()`), not by what the
            // helper tests.
            Val::Truth(Truth::Runtime(_)) => Val::Truth(Truth::Runtime(short(whole))),
            v => v,
        })
    }

    fn in_callers_terms(&self, v: &Val) -> bool {
        let formula_ok = |f: &Formula| {
            let config = self.config_names.borrow();
            let ok = Cell::new(!f.has_unknown());
            f.substitute(&|x| {
                if let Formula::Name(n) = x {
                    if !config.contains(n) {
                        ok.set(false);
                    }
                }
                None
            });
            ok.get()
        };
        match v {
            Val::Num(f) => formula_ok(f),
            Val::Dtype { bytes, .. } => formula_ok(bytes),
            Val::Tuple(items) => items.iter().all(|x| self.in_callers_terms(x)),
            Val::Str(_) | Val::Config | Val::Truth(_) | Val::Param(_) => true,
            Val::Device(d) => !matches!(d, Dev::Runtime(_)),
            Val::NoneLit | Val::Obj(_) => false,
        }
    }

    fn binary(&self, op: BinOp, l: &Expr, r: &Expr, at: &At) -> Val {
        let (a, b) = (self.eval(l, at), self.eval(r, at));
        if let (BinOp::Add, Val::Tuple(x), Val::Tuple(y)) = (op, &a, &b) {
            return Val::Tuple(x.iter().chain(y).cloned().collect());
        }
        let (x, y) = (as_num(&a), as_num(&b));
        // What the scan cannot fold is named by the whole expression (`a ** n`), not by
        // one operand.
        let whole = || Formula::unknown(&format!("{} {} {}", short(l), op.symbol(), short(r)));
        Val::Num(match op {
            BinOp::Add => Formula::sum(vec![x, y]),
            BinOp::Sub => minus(x, y),
            BinOp::Mul => Formula::mul(x, y),
            BinOp::FloorDiv | BinOp::Div => Formula::div(x, y),
            BinOp::Shl => match y {
                Formula::Const(s) if s < 64 => Formula::mul(x, Formula::Const(1u64 << s)),
                _ => whole(),
            },
            BinOp::Shr => match y {
                Formula::Const(s) if s < 64 => Formula::div(x, Formula::Const(1u64 << s)),
                _ => whole(),
            },
            BinOp::Pow => match (x, y) {
                (Formula::Const(base), Formula::Const(e)) if e < 64 => {
                    Formula::Const(base.checked_pow(e as u32).unwrap_or(u64::MAX))
                }
                _ => whole(),
            },
            BinOp::Mod => match (x, y) {
                (Formula::Const(p), Formula::Const(q)) if q > 0 => Formula::Const(p % q),
                _ => whole(),
            },
        })
    }
}
