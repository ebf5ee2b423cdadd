//! The whole tree's names: which file defines a module, class, function or global, what an
//! imported name really names (following re-exports), and who calls each function.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::{Assign, Call, Expr, FileFacts, Function, Target};

/// A function of the tree: `files[file].functions[func]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId {
    pub file: usize,
    pub func: usize,
}

/// One call: `functions[in_func].calls[call]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef {
    pub in_func: FuncId,
    pub call: usize,
}

pub struct Index<'a> {
    pub files: &'a [FileFacts],
    modules: HashMap<&'a str, usize>,
    /// `module.Class` → (file, the class's `<class>` body function).
    classes: HashMap<String, FuncId>,
    /// `module.function`, `module.Class.method`.
    funcs: HashMap<String, FuncId>,
    /// `module.NAME` → (file, assignment index in the module body).
    globals: HashMap<String, (usize, usize)>,
    /// Who calls each function; constructor calls count as calls of `__init__`.
    callers: HashMap<FuncId, Vec<CallRef>>,
    /// Every module of the tree, parsed or not.
    known: &'a HashSet<String>,
    /// Modules not parsed that a lookup needed (recorded once the index is built: only
    /// lookups made while sizing sites count).
    pub missing: RefCell<BTreeSet<String>>,
    recording: std::cell::Cell<bool>,
}

/// Re-exports are followed at most this far (`a/__init__.py` importing from `a.b`…).
const MAX_HOPS: usize = 6;

impl<'a> Index<'a> {
    pub fn new(files: &'a [FileFacts], known: &'a HashSet<String>) -> Index<'a> {
        let mut ix = Index {
            files,
            known,
            missing: RefCell::new(BTreeSet::new()),
            recording: std::cell::Cell::new(false),
            modules: HashMap::new(),
            classes: HashMap::new(),
            funcs: HashMap::new(),
            globals: HashMap::new(),
            callers: HashMap::new(),
        };
        for (fi, f) in files.iter().enumerate() {
            ix.modules.insert(f.module.as_str(), fi);
            for (i, func) in f.functions.iter().enumerate() {
                let id = FuncId { file: fi, func: i };
                match (&func.class, func.name.as_str()) {
                    (_, "<module>") => {}
                    (Some(c), "<class>") => {
                        ix.classes.insert(format!("{}.{c}", f.module), id);
                    }
                    (Some(c), name) => {
                        ix.funcs
                            .entry(format!("{}.{c}.{name}", f.module))
                            .or_insert(id);
                    }
                    (None, name) => {
                        ix.funcs.entry(format!("{}.{name}", f.module)).or_insert(id);
                    }
                }
            }
            if let Some(body) = f.functions.first() {
                for (ai, a) in body.assigns.iter().enumerate() {
                    if let Target::Name(n) = &a.target {
                        // The last assignment at module level wins, as at run time.
                        ix.globals.insert(format!("{}.{n}", f.module), (fi, ai));
                    }
                }
            }
        }
        let mut callers: HashMap<FuncId, Vec<CallRef>> = HashMap::new();
        for (fi, f) in files.iter().enumerate() {
            for (i, func) in f.functions.iter().enumerate() {
                let id = FuncId { file: fi, func: i };
                for (ci, c) in func.calls.iter().enumerate() {
                    if let Some(target) = ix.callee(id, &c.call) {
                        callers.entry(target).or_default().push(CallRef {
                            in_func: id,
                            call: ci,
                        });
                    }
                }
            }
        }
        ix.callers = callers;
        ix.recording.set(true);
        ix
    }

    pub fn func(&self, id: FuncId) -> Option<&'a Function> {
        self.files.get(id.file)?.functions.get(id.func)
    }

    pub fn call(&self, r: CallRef) -> Option<&'a super::CallSite> {
        self.func(r.in_func)?.calls.get(r.call)
    }

    pub fn callers(&self, id: FuncId) -> &[CallRef] {
        self.callers.get(&id).map_or(&[], Vec::as_slice)
    }

    /// What `name` means in `file`: `torch.empty` for `empty` after `from torch import
    /// empty`, `vllm.v1.utils.CpuGpuBuffer`, `this.module.NAME` for its own definitions.
    pub fn qualify(&self, file: usize, name: &str) -> Option<String> {
        let f = self.files.get(file)?;
        let (head, rest) = match name.split_once('.') {
            Some((h, r)) => (h, Some(r)),
            None => (name, None),
        };
        let base = if let Some(target) = f.imports.get(head) {
            target.clone()
        } else {
            let own = format!("{}.{head}", f.module);
            if self.classes.contains_key(&own)
                || self.funcs.contains_key(&own)
                || self.globals.contains_key(&own)
            {
                own
            } else {
                head.to_string()
            }
        };
        let full = match rest {
            Some(r) => format!("{base}.{r}"),
            None => base,
        };
        Some(self.canonical(full))
    }

    /// Follows re-exports: `vllm.utils.cdiv` → `vllm.utils.math_utils.cdiv` when
    /// `vllm/utils/__init__.py` imports it from there.
    pub fn canonical(&self, mut q: String) -> String {
        for _ in 0..MAX_HOPS {
            if self.classes.contains_key(&q)
                || self.funcs.contains_key(&q)
                || self.globals.contains_key(&q)
                || self.modules.contains_key(q.as_str())
            {
                return q;
            }
            // The longest prefix that is a module of the tree, and the name after it.
            let mut found = None;
            let mut cut = q.len();
            while let Some(dot) = q[..cut].rfind('.') {
                if let Some(&fi) = self.modules.get(&q[..dot]) {
                    found = Some((fi, dot));
                    break;
                }
                cut = dot;
            }
            let Some((fi, dot)) = found else {
                self.note_missing(&q);
                return q;
            };
            let tail = &q[dot + 1..];
            let (head, rest) = tail.split_once('.').unwrap_or((tail, ""));
            let Some(target) = self.files[fi].imports.get(head) else {
                self.note_missing(&q);
                return q;
            };
            let next = if rest.is_empty() {
                target.clone()
            } else {
                format!("{target}.{rest}")
            };
            if next == q {
                return q;
            }
            q = next;
        }
        q
    }

    /// Records the longest prefix of `q` that is a module of the tree nobody parsed.
    fn note_missing(&self, q: &str) {
        if !self.recording.get() {
            return;
        }
        let mut cut = q.len();
        loop {
            let prefix = &q[..cut];
            if self.known.contains(prefix) && !self.modules.contains_key(prefix) {
                self.missing.borrow_mut().insert(prefix.to_string());
                return;
            }
            match prefix.rfind('.') {
                Some(dot) => cut = dot,
                None => return,
            }
        }
    }

    pub fn class(&self, qualified: &str) -> Option<FuncId> {
        self.classes.get(qualified).copied()
    }

    pub fn function(&self, qualified: &str) -> Option<FuncId> {
        self.funcs.get(qualified).copied()
    }

    pub fn global(&self, qualified: &str) -> Option<(usize, &'a Assign)> {
        let (fi, ai) = *self.globals.get(qualified)?;
        Some((fi, self.files.get(fi)?.functions.first()?.assigns.get(ai)?))
    }

    /// The qualified name of a class's `<class>` body function.
    pub fn class_name(&self, body: FuncId) -> Option<String> {
        let f = self.files.get(body.file)?;
        let c = self.func(body)?.class.as_ref()?;
        Some(format!("{}.{c}", f.module))
    }

    /// The class a method belongs to, as its `<class>` body.
    pub fn class_of(&self, id: FuncId) -> Option<FuncId> {
        let f = self.files.get(id.file)?;
        let c = self.func(id)?.class.as_ref()?;
        self.class(&format!("{}.{c}", f.module))
    }

    /// The base classes of a class (those defined in the tree).
    pub fn bases(&self, class: FuncId) -> Vec<FuncId> {
        let Some(f) = self.files.get(class.file) else {
            return Vec::new();
        };
        let Some(name) = self.func(class).and_then(|c| c.class.as_ref()) else {
            return Vec::new();
        };
        let Some(c) = f.classes.iter().find(|c| &c.name == name) else {
            return Vec::new();
        };
        c.bases
            .iter()
            .filter_map(dotted)
            .filter_map(|d| self.qualify(class.file, &d))
            .filter_map(|q| self.class(&q))
            .filter(|b| *b != class)
            .collect()
    }

    /// A method of a class or of its bases (nearest first).
    pub fn method(&self, class: FuncId, name: &str) -> Option<FuncId> {
        let mut todo = vec![(class, 0)];
        while let Some((c, depth)) = todo.pop() {
            let q = self.class_name(c)?;
            if let Some(m) = self.function(&format!("{q}.{name}")) {
                return Some(m);
            }
            if depth < MAX_HOPS {
                todo.extend(self.bases(c).into_iter().rev().map(|b| (b, depth + 1)));
            }
        }
        None
    }

    /// The function a call runs, when it is one of the tree's: a function, a method of
    /// `self`, a class (its `__init__`), or `super().__init__`.
    pub fn callee(&self, in_func: FuncId, call: &Call) -> Option<FuncId> {
        match &call.func {
            Expr::Attr(obj, m) if matches!(obj.as_ref(), Expr::Name(s) if s == "self") => {
                self.method(self.class_of(in_func)?, m)
            }
            Expr::Attr(obj, m) if is_super(obj) => {
                let class = self.class_of(in_func)?;
                self.bases(class)
                    .into_iter()
                    .find_map(|b| self.method(b, m))
            }
            other => {
                let q = self.qualify(in_func.file, &dotted(other)?)?;
                if let Some(f) = self.function(&q) {
                    return Some(f);
                }
                let class = self.class(&q)?;
                self.method(class, "__init__")
            }
        }
    }
}

fn is_super(e: &Expr) -> bool {
    matches!(e, Expr::Call(c) if matches!(&c.func, Expr::Name(s) if s == "super"))
}

/// `a.b.c` for a chain of names and attributes.
pub fn dotted(e: &Expr) -> Option<String> {
    match e {
        Expr::Name(n) => Some(n.clone()),
        Expr::Attr(base, a) => Some(format!("{}.{a}", dotted(base)?)),
        _ => None,
    }
}
