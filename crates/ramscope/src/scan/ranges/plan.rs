//! Which parts of which Python files are parsed, round after round.
//!
//! A file is in the plan when [`crate::scan::select::first`] picks it or the resolver asks
//! for it — the same files, in the same rounds, as when every file was parsed whole — but
//! of its functions, classes and methods (units) only those the resolver can use are handed
//! to tree-sitter. Always: imports and every other top-level statement that is not a
//! definition (constants, re-exports, `if TYPE_CHECKING:` blocks). A unit when it calls what
//! the resolver evaluates as an allocation ([`PY_CALLS`]) or, in a file added for a callee,
//! calls that. Then, until nothing changes ([`closure`]), what the resolver would find for
//! those on a whole-file parse:
//!
//! - what they read: the helpers whose value they use (the resolver evaluates what a
//!   function or method returns), the methods of their class and its bases that assign a
//!   `self` attribute they read, the classes whose attributes they read (`Class.X`), the
//!   bases of their classes, with each class its class-level statements and `__init__`;
//! - for a unit whose arguments may size a site (it allocates, calls one that does, or
//!   assigns what a size reads), its callers: `f(`, `mod.f(`, an import of `f` under any
//!   name; `self.m(` and `super().m(` in the class and its subclasses, `Class.m(`; for a
//!   class whose `__init__` (its own or inherited) takes arguments, `Class(` and the
//!   subclasses' `__init__` that call it.
//!
//! Names are matched as text, so two definitions of one name are both taken: more than
//! needed, never less. On vLLM 0.33 (`benches/scan_speed.rs`) this hands tree-sitter 18 of
//! the 26.5 MB a whole-file parse of the same files reads, for the same sites. The rules
//! follow what `python::resolve` and `python::values` look up; a lookup they learn needs a
//! rule here, or the bench's comparison with `RAMSCOPE_SCAN_WHOLE_FILES` (files parsed
//! whole, as before the plan) reports the sites that differ.

mod closure;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use aho_corasick::AhoCorasick;

use super::mentions::Call;
use super::{scan_file, Kind, Mentions, Scanned, Stmt};
use crate::scan::files::{parallel, Lang, Loaded};
use crate::scan::select::PY_CALLS;

type Name<'a> = &'a [u8];
/// A statement of a file or class body: always parsed (`None`), or a unit.
type Slot = (Stmt, Option<u32>);

pub struct Plan<'a> {
    files: &'a [Loaded],
    /// The files in the plan: their top-level statements, each fixed (always parsed) or a
    /// unit.
    parts: BTreeMap<usize, Vec<Slot>>,
    units: Vec<Unit<'a>>,
    /// Units by the names they call, methods by what they call on `self` and assign on
    /// `self`, units by the `P.m(` they call (by `m`), classes by name and by base name.
    by_call: HashMap<Name<'a>, Vec<u32>>,
    by_self_call: HashMap<Name<'a>, Vec<u32>>,
    by_assign: HashMap<Name<'a>, Vec<u32>>,
    by_qual: HashMap<Name<'a>, Vec<(Name<'a>, u32)>>,
    by_name: HashMap<Name<'a>, Vec<u32>>,
    by_base: HashMap<Name<'a>, Vec<u32>>,
    /// `name as alias`, anywhere in the plan's files, both ways.
    aliases: HashMap<Name<'a>, Vec<Name<'a>>>,
    imported_as: HashMap<Name<'a>, Vec<Name<'a>>>,
    /// Callers wanted: of these names, of these `P.m`.
    called: HashSet<Name<'a>>,
    quals: HashSet<(Name<'a>, Name<'a>)>,
    /// Classes wanted (bases of parsed classes, classes whose attributes parsed code
    /// reads), and those whose `__init__` takes arguments.
    bases: HashSet<Name<'a>>,
    init_classes: HashSet<Name<'a>>,
    /// Functions whose definitions are wanted (parsed code calls them), functions by name,
    /// methods wanted through a name (`P.m(`), by `P`.
    funcs_wanted: HashSet<Name<'a>>,
    by_func: HashMap<Name<'a>, Vec<u32>>,
    quals_wanted: HashMap<Name<'a>, Vec<Name<'a>>>,
    /// Units turned on, to read (`false`) or whose callers to want (`true`).
    queue: Vec<(u32, bool)>,
    /// Files whose parsed parts changed since [`Plan::take_changed`].
    changed: BTreeSet<usize>,
    /// `RAMSCOPE_SCAN_WHOLE_FILES`: parse the plan's files whole, as before the plan existed
    /// (to check that both give the same sites: `benches/scan_speed.rs`).
    whole_files: bool,
    whole_done: BTreeSet<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnitKind {
    Func,
    Class,
    Method,
}

/// A function, class or method: parsed whole, or not at all.
struct Unit<'a> {
    file: usize,
    kind: UnitKind,
    name: Name<'a>,
    /// Takes arguments other than `self`/`cls`: its callers can size what it allocates.
    params: bool,
    on: bool,
    /// On as one whose arguments may size a site ([`Plan::sizing`]).
    sizing: bool,
    /// On when its file was last parsed.
    parsed: bool,
    /// Method: its class.
    class: Option<u32>,
    /// Names whose attributes it reads (`Class.CONSTANT`); calls whose value it uses.
    dotted: Vec<Name<'a>>,
    used: Vec<Call<'a>>,
    self_refs: Vec<Name<'a>>,
    self_calls: Vec<Name<'a>>,
    self_assigns: Vec<Name<'a>>,
    /// Method: calls `__init__(` (`super().__init__(...)`).
    calls_init: bool,
    /// Class: its header, and its body's statements (fixed, or a method) when it splits.
    body: Option<(Stmt, Vec<Slot>)>,
    bases: Vec<Name<'a>>,
    init: Option<u32>,
    methods: Vec<u32>,
    /// Class: attributes read on `self` by its (or a subclass's) parsed methods, and
    /// methods called on `self` whose callers are wanted.
    need_attrs: HashSet<Name<'a>>,
    need_calls: HashSet<Name<'a>>,
    /// Class: methods called on `self` in it or a subclass (what they return is wanted).
    want_methods: HashSet<Name<'a>>,
}

impl<'a> Unit<'a> {
    fn new(file: usize, kind: UnitKind, name: Name<'a>) -> Unit<'a> {
        Unit {
            file,
            kind,
            name,
            params: false,
            on: false,
            sizing: false,
            parsed: false,
            class: None,
            dotted: Vec::new(),
            used: Vec::new(),
            self_refs: Vec::new(),
            self_calls: Vec::new(),
            self_assigns: Vec::new(),
            calls_init: false,
            body: None,
            bases: Vec::new(),
            init: None,
            methods: Vec::new(),
            need_attrs: HashSet::new(),
            need_calls: HashSet::new(),
            want_methods: HashSet::new(),
        }
    }
}

fn dunder(name: &[u8]) -> bool {
    name.len() > 4 && name.starts_with(b"__") && name.ends_with(b"__")
}

fn trace() -> bool {
    std::env::var_os("RAMSCOPE_SCAN_TRACE").is_some()
}

impl<'a> Plan<'a> {
    /// The plan for the files `first` (indices into `files`), picked by
    /// [`crate::scan::select::first`].
    pub fn new(files: &'a [Loaded], first: &[usize], threads: usize) -> Plan<'a> {
        let mut plan = Plan {
            files,
            parts: BTreeMap::new(),
            units: Vec::new(),
            by_call: HashMap::new(),
            by_self_call: HashMap::new(),
            by_assign: HashMap::new(),
            by_qual: HashMap::new(),
            by_name: HashMap::new(),
            by_base: HashMap::new(),
            aliases: HashMap::new(),
            imported_as: HashMap::new(),
            called: HashSet::new(),
            quals: HashSet::new(),
            bases: HashSet::new(),
            init_classes: HashSet::new(),
            funcs_wanted: HashSet::new(),
            by_func: HashMap::new(),
            quals_wanted: HashMap::new(),
            queue: Vec::new(),
            changed: BTreeSet::new(),
            whole_files: std::env::var_os("RAMSCOPE_SCAN_WHOLE_FILES").is_some(),
            whole_done: BTreeSet::new(),
        };
        plan.add(first, &BTreeSet::new(), threads);
        plan
    }

    /// Files in the plan.
    pub fn files(&self) -> usize {
        self.parts.len()
    }

    /// Python files not in the plan yet that the resolver asked for — those of `modules`
    /// (whole: a lookup there may need any of it), and those that call one of `callees`
    /// (`Name(`, as when files were parsed whole) — added; then every file whose parsed
    /// parts changed, in order.
    pub fn more(
        &mut self,
        modules: &BTreeSet<String>,
        callees: &BTreeSet<String>,
        threads: usize,
    ) -> Vec<usize> {
        let words: Vec<String> = callees.iter().map(|c| format!("{c}(")).collect();
        let calls = if words.is_empty() {
            None
        } else {
            AhoCorasick::new(&words).ok()
        };
        let mut picked = Vec::new();
        for (i, f) in self.files.iter().enumerate() {
            if f.lang != Lang::Python || self.parts.contains_key(&i) {
                continue;
            }
            let Ok(text) = &f.text else {
                continue;
            };
            if modules.contains(&crate::scan::python::module_name(&f.rel))
                || calls.as_ref().is_some_and(|m| m.is_match(text))
            {
                picked.push(i);
            }
        }
        self.add(&picked, callees, threads);
        self.take_changed()
    }

    /// Files whose parsed parts changed since the last call, in order.
    pub fn take_changed(&mut self) -> Vec<usize> {
        let mut changed: Vec<usize> = std::mem::take(&mut self.changed).into_iter().collect();
        if self.whole_files {
            // A file parsed whole has nothing more to give.
            changed.retain(|&i| self.whole_done.insert(i));
        }
        changed
    }

    /// The ranges of file `i` to parse: `None` for the whole file (all of it is needed).
    pub fn ranges(&self, i: usize) -> Option<Vec<tree_sitter::Range>> {
        if self.whole_files {
            return None;
        }
        let (pieces, all) = self.pieces(i, false);
        (!all).then(|| super::ranges(pieces))
    }

    /// What to parse of file `i` now that some of it was parsed before: its units turned on
    /// since (with the header of a class parsed before, for its new methods). Parsed alone,
    /// their facts add to the file's (`files::parse_more`). `None`: nothing was parsed
    /// before, or all of it was.
    pub fn added(&self, i: usize) -> Option<Vec<tree_sitter::Range>> {
        let slots = self.parts.get(&i)?;
        let before = slots
            .iter()
            .any(|(_, u)| u.is_some_and(|u| self.units[u as usize].parsed));
        if self.whole_files || !before {
            return None;
        }
        let (pieces, _) = self.pieces(i, true);
        Some(super::ranges(pieces))
    }

    /// The pieces of file `i` to parse, and whether they are all of it. `added`: only what
    /// was not parsed before (no fixed statements; a class parsed before gives its header).
    fn pieces(&self, i: usize, added: bool) -> (Vec<&Stmt>, bool) {
        let Some(slots) = self.parts.get(&i) else {
            return (Vec::new(), true);
        };
        let new = |u: &Unit<'_>| u.on && !(added && u.parsed);
        let mut pieces: Vec<&Stmt> = Vec::with_capacity(slots.len());
        let mut all = true;
        for (s, u) in slots {
            let Some(u) = u else {
                if !added {
                    pieces.push(s);
                }
                continue;
            };
            let u = &self.units[*u as usize];
            all &= u.on;
            match &u.body {
                None if new(u) => pieces.push(s),
                None => {}
                Some((header, body)) => {
                    let methods: Vec<&Stmt> = body
                        .iter()
                        .filter(|(_, m)| m.is_some_and(|m| new(&self.units[m as usize])))
                        .map(|(b, _)| b)
                        .collect();
                    all &= body
                        .iter()
                        .all(|(_, m)| m.map_or(true, |m| self.units[m as usize].on));
                    if new(u) {
                        // The whole class as far as it is on: header, class-level
                        // statements, methods.
                        pieces.push(header);
                        for (b, m) in body {
                            if m.map_or(true, |m| self.units[m as usize].on) {
                                pieces.push(b);
                            }
                        }
                    } else if !methods.is_empty() {
                        pieces.push(header);
                        pieces.extend(methods);
                    }
                }
            }
        }
        (pieces, all)
    }

    /// Records that file `i` was parsed as the plan now says.
    pub fn mark_parsed(&mut self, i: usize) {
        let Some(slots) = self.parts.get(&i) else {
            return;
        };
        for u in slots.iter().filter_map(|(_, u)| *u) {
            let unit = &mut self.units[u as usize];
            unit.parsed = unit.on;
            for m in unit.methods.clone() {
                let m = &mut self.units[m as usize];
                m.parsed = m.on;
            }
        }
    }

    /// Bytes handed to tree-sitter, and bytes of the plan's files.
    pub fn bytes(&self) -> (usize, usize) {
        let mut parsed = 0;
        let mut total = 0;
        for &i in self.parts.keys() {
            let len = self.files[i].text.as_ref().map_or(0, String::len);
            total += len;
            parsed += match self.ranges(i) {
                None => len,
                Some(r) => r.iter().map(|r| r.end_byte - r.start_byte).sum(),
            };
        }
        (parsed, total)
    }

    /// Adds files, turns on their units that call an allocator the rules know or one of
    /// `callees`, and settles.
    fn add(&mut self, picked: &[usize], callees: &BTreeSet<String>, threads: usize) {
        if self.whole_files {
            // Whole files need no reading: the scan runs as it did before the plan.
            for &i in picked {
                self.parts.insert(i, Vec::new());
                self.changed.insert(i);
            }
            return;
        }
        let t0 = std::time::Instant::now();
        let files = self.files;
        let scanned = parallel(picked.len(), threads, |k| {
            let text = files[picked[k]].text.as_deref().unwrap_or_default();
            scan_file(text.as_bytes())
        });
        let wanted: HashSet<&[u8]> = PY_CALLS
            .iter()
            .map(|c| c.as_bytes())
            .chain(callees.iter().map(String::as_bytes))
            .collect();
        let scan = t0.elapsed();
        for (&i, sc) in picked.iter().zip(scanned) {
            self.insert(i, sc, &wanted);
        }
        self.settle();
        if trace() {
            let all = t0.elapsed();
            let (parsed, total) = self.bytes();
            eprintln!(
                "[scan] plan: +{} files in {:.3} s ({:.3} s reading them); {:.1} of the plan's \
                 {:.1} MB to parse",
                picked.len(),
                all.as_secs_f64(),
                scan.as_secs_f64(),
                parsed as f64 / 1e6,
                total as f64 / 1e6
            );
        }
    }

    fn push(&mut self, u: Unit<'a>) -> u32 {
        let id = u32::try_from(self.units.len()).unwrap_or(u32::MAX);
        self.units.push(u);
        id
    }

    /// Indexes what unit `id` mentions, and turns it on when the plan already wants it.
    fn index(&mut self, id: u32, m: &Mentions<'a>) {
        let method = self.units[id as usize].kind == UnitKind::Method;
        // A caller of what is wanted sizes it; a helper wanted is evaluated.
        let mut caller = false;
        for &c in &m.calls {
            self.by_call.entry(c).or_default().push(id);
            caller |= self.called.contains(c);
        }
        for &(p, c) in &m.quals {
            self.by_qual.entry(c).or_default().push((p, id));
            caller |= self.quals.contains(&(p, c));
        }
        if method {
            for &c in &m.self_calls {
                self.by_self_call.entry(c).or_default().push(id);
            }
            for &a in &m.self_assigns {
                self.by_assign.entry(a).or_default().push(id);
            }
        }
        let u = &mut self.units[id as usize];
        u.dotted.extend(m.dotted.iter().copied());
        u.used.extend(m.used.iter().copied());
        let helper = u.kind == UnitKind::Func && self.funcs_wanted.contains(u.name);
        self.alias(&m.aliases);
        if caller {
            self.sizing(id);
        } else if helper {
            self.turn_on(id);
        }
    }

    fn insert(&mut self, i: usize, sc: Scanned<'a>, wanted: &HashSet<&[u8]>) {
        let src = self.files[i].text.as_deref().unwrap_or_default().as_bytes();
        let Scanned {
            top,
            bodies,
            mentions,
            body_mentions,
        } = sc;
        // A wanted function imported under another name is called by that name.
        let mut wanted = wanted.clone();
        for m in mentions.iter().chain(body_mentions.iter().flatten()) {
            for &(x, y) in &m.aliases {
                if wanted.contains(x) {
                    wanted.insert(y);
                }
            }
        }
        let picks = |m: &Mentions<'_>| m.calls.iter().any(|c| wanted.contains(c));
        let mut seeds = Vec::new();
        let mut slots = Vec::with_capacity(top.len());
        let mut defines = Vec::new();
        let mut dotted = Vec::new();
        let mut classes = Vec::new();
        for (((s, body), m), bm) in top.into_iter().zip(bodies).zip(mentions).zip(body_mentions) {
            let name = s.name(src).unwrap_or_default();
            match s.kind {
                Kind::Import | Kind::Other => {
                    // Always parsed: what they define is wanted as a function would be,
                    // the classes whose attributes they read too.
                    defines.extend(m.defines.iter().copied());
                    dotted.extend(m.dotted.iter().copied());
                    self.alias(&m.aliases);
                    slots.push((s, None));
                }
                Kind::Def => {
                    let mut u = Unit::new(i, UnitKind::Func, name);
                    u.params = s.has_params(src);
                    let id = self.push(u);
                    self.by_func.entry(name).or_default().push(id);
                    self.index(id, &m);
                    if picks(&m) {
                        seeds.push(id);
                    }
                    slots.push((s, Some(id)));
                }
                Kind::Class => {
                    let mut u = Unit::new(i, UnitKind::Class, name);
                    u.bases = s.bases(src);
                    let id = self.push(u);
                    self.by_name.entry(name).or_default().push(id);
                    for b in self.units[id as usize].bases.clone() {
                        self.by_base.entry(b).or_default().push(id);
                    }
                    match body {
                        Some((header, stmts)) => {
                            let pieces = self.class_body(i, src, id, stmts, &bm);
                            for ((_, u), m) in pieces.iter().zip(&bm) {
                                if picks(m) {
                                    seeds.push(u.unwrap_or(id));
                                }
                            }
                            self.units[id as usize].body = Some((header, pieces));
                        }
                        None => {
                            // Taken whole: what it mentions is its own.
                            self.units[id as usize].self_refs = m.self_refs.clone();
                            self.index(id, &m);
                            if picks(&m) {
                                seeds.push(id);
                            }
                        }
                    }
                    classes.push(id);
                    slots.push((s, Some(id)));
                }
            }
        }
        for d in defines {
            self.add_called(d);
        }
        for d in dotted {
            self.add_base(d);
        }
        for c in classes {
            self.joined(c);
        }
        for u in seeds {
            self.sizing(u);
        }
        self.parts.insert(i, slots);
        self.changed.insert(i);
    }

    /// A class's body statements: methods become units, the rest is the class's own.
    fn class_body(
        &mut self,
        file: usize,
        src: &'a [u8],
        class: u32,
        stmts: Vec<Stmt>,
        mentions: &[Mentions<'a>],
    ) -> Vec<Slot> {
        let mut pieces = Vec::with_capacity(stmts.len());
        for (b, m) in stmts.into_iter().zip(mentions) {
            if b.kind != Kind::Def {
                self.index(class, m);
                pieces.push((b, None));
                continue;
            }
            let name = b.name(src).unwrap_or_default();
            let mut u = Unit::new(file, UnitKind::Method, name);
            u.params = b.has_params(src);
            u.class = Some(class);
            u.self_refs = m.self_refs.clone();
            u.self_calls = m.self_calls.clone();
            u.self_assigns = m.self_assigns.clone();
            u.calls_init = m.calls.contains(&b"__init__".as_slice());
            let id = self.push(u);
            let c = &mut self.units[class as usize];
            if name == b"__init__" {
                c.init = Some(id);
            }
            c.methods.push(id);
            self.index(id, m);
            pieces.push((b, Some(id)));
        }
        pieces
    }

    /// A class that joins the plan, with what the classes already in it want of it: to
    /// be a base, a base's subclass, or a subclass's base.
    fn joined(&mut self, class: u32) {
        let u = &self.units[class as usize];
        let (name, bases) = (u.name, u.bases.clone());
        if self.bases.contains(name) {
            self.turn_on(class);
        }
        let mut calls = Vec::new();
        for b in &bases {
            for &base in self.by_name.get(b).map_or(&[][..], Vec::as_slice) {
                calls.extend(self.units[base as usize].need_calls.iter().copied());
            }
        }
        for c in calls {
            self.need_call(class, c);
        }
        // What its subclasses read and do not assign themselves, and call on `self`.
        let mut attrs = Vec::new();
        let mut wanted = Vec::new();
        for &sub in self.by_base.get(name).map_or(&[][..], Vec::as_slice) {
            let sub = &self.units[sub as usize];
            let assigned = |a: &Name<'a>| {
                sub.methods
                    .iter()
                    .any(|&m| self.units[m as usize].self_assigns.contains(a))
            };
            attrs.extend(sub.need_attrs.iter().copied().filter(|a| !assigned(a)));
            wanted.extend(sub.want_methods.iter().copied());
        }
        for a in attrs {
            self.need_attr(class, a);
        }
        for m in wanted {
            self.want_method(class, m);
        }
        for m in self.quals_wanted.get(name).cloned().unwrap_or_default() {
            self.want_method(class, m);
        }
        if bases.iter().any(|b| self.init_classes.contains(b)) {
            self.derived(class);
        }
    }
}
