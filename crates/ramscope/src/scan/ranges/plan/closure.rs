//! The rules that turn units on: what the resolver would look up, from the units already
//! on (see [`super`]).

use super::{dunder, Call, Name, Plan, UnitKind};

impl<'a> Plan<'a> {
    /// Turns a unit on: parsed, with what it reads (the assignments, helpers, classes it
    /// uses).
    pub(super) fn turn_on(&mut self, id: u32) {
        let u = &mut self.units[id as usize];
        if !u.on {
            u.on = true;
            self.changed.insert(u.file);
            self.queue.push((id, false));
        }
    }

    /// Turns a unit on as one whose arguments may size a site (it allocates, or calls what
    /// does, or assigns what a size reads): its callers are wanted too. A helper evaluated
    /// for what it returns is not one: the call being evaluated binds its arguments.
    pub(super) fn sizing(&mut self, id: u32) {
        self.turn_on(id);
        let u = &mut self.units[id as usize];
        if !u.sizing {
            u.sizing = true;
            self.queue.push((id, true));
        }
    }

    /// Turns on what the units turned on want, until nothing changes.
    pub(super) fn settle(&mut self) {
        while let Some((id, sizing)) = self.queue.pop() {
            if sizing {
                self.callers_of(id);
                continue;
            }
            for d in self.units[id as usize].dotted.clone() {
                self.add_base(d);
            }
            // The helpers whose value it uses: the resolver evaluates what they return.
            let class = self.units[id as usize].class;
            for c in self.units[id as usize].used.clone() {
                match c {
                    Call::Name(f) => self.want_func(f),
                    Call::Qual(p, m) => self.want_qual(p, m),
                    Call::OnSelf(m) => {
                        if let Some(class) = class {
                            self.want_method(class, m);
                        }
                    }
                }
            }
            let u = &self.units[id as usize];
            match u.kind {
                UnitKind::Func => {}
                UnitKind::Method => {
                    let Some(class) = class else { continue };
                    self.turn_on(class);
                    for r in self.units[id as usize].self_refs.clone() {
                        self.need_attr(class, r);
                    }
                }
                UnitKind::Class => {
                    let (bases, init) = (u.bases.clone(), u.init);
                    for r in u.self_refs.clone() {
                        self.need_attr(id, r);
                    }
                    for b in bases {
                        self.add_base(b);
                    }
                    if let Some(init) = init {
                        self.turn_on(init);
                    }
                }
            }
        }
    }

    /// The callers of a unit whose arguments may size a site.
    pub(super) fn callers_of(&mut self, id: u32) {
        let u = &self.units[id as usize];
        let (kind, name, params, class) = (u.kind, u.name, u.params, u.class);
        if !params {
            return;
        }
        match (kind, class) {
            (UnitKind::Func, _) => self.add_called(name),
            (UnitKind::Method, Some(class)) => {
                let cname = self.units[class as usize].name;
                if name == b"__init__" {
                    self.add_init_class(cname);
                } else if !dunder(name) {
                    self.need_call(class, name);
                    self.add_qual(cname, name);
                }
            }
            _ => {}
        }
    }

    /// Imports under another name: every function of the file can call the alias (the
    /// resolver reads a file's imports as one table, wherever they are).
    pub(super) fn alias(&mut self, pairs: &[(Name<'a>, Name<'a>)]) {
        for &(x, y) in pairs {
            self.aliases.entry(x).or_default().push(y);
            self.imported_as.entry(y).or_default().push(x);
            if self.bases.contains(y) {
                self.add_base(x);
            }
            if self.funcs_wanted.contains(y) {
                self.want_func(x);
            }
            for m in self.quals_wanted.get(y).cloned().unwrap_or_default() {
                self.want_qual(x, m);
            }
            if self.called.contains(x) {
                self.add_called(y);
            }
            let ms: Vec<Name<'a>> = self
                .quals
                .iter()
                .filter(|(p, _)| *p == x)
                .map(|(_, m)| *m)
                .collect();
            for m in ms {
                self.add_qual(y, m);
            }
        }
    }

    /// Class `name` (or a class imported as `name`) is wanted whole but for its methods.
    pub(super) fn add_base(&mut self, name: Name<'a>) {
        if !self.bases.insert(name) {
            return;
        }
        for c in self.by_name.get(name).cloned().unwrap_or_default() {
            self.turn_on(c);
        }
        for x in self.imported_as.get(name).cloned().unwrap_or_default() {
            self.add_base(x);
        }
    }

    pub(super) fn add_called(&mut self, name: Name<'a>) {
        // `__init__` and friends are not called by their names (constructors are wanted
        // through their classes).
        if name.is_empty() || dunder(name) || !self.called.insert(name) {
            return;
        }
        for id in self.by_call.get(name).cloned().unwrap_or_default() {
            self.sizing(id);
        }
        for alias in self.aliases.get(name).cloned().unwrap_or_default() {
            self.add_called(alias);
        }
    }

    /// Callers of method `m` through `p.m(` (`p` a class, or an alias of one).
    pub(super) fn add_qual(&mut self, p: Name<'a>, m: Name<'a>) {
        if !self.quals.insert((p, m)) {
            return;
        }
        for (q, id) in self.by_qual.get(m).cloned().unwrap_or_default() {
            if q == p {
                self.sizing(id);
            }
        }
        for alias in self.aliases.get(p).cloned().unwrap_or_default() {
            self.add_qual(alias, m);
        }
    }

    /// Attribute `a` read on `self` in `class`: the methods that assign it (the resolver
    /// weighs them all); when none does, the bases'.
    pub(super) fn need_attr(&mut self, class: u32, a: Name<'a>) {
        let mut todo = vec![class];
        while let Some(c) = todo.pop() {
            let u = &mut self.units[c as usize];
            if !u.need_attrs.insert(a) {
                continue;
            }
            let (methods, bases) = (u.methods.clone(), u.bases.clone());
            let mut found = false;
            for m in methods {
                if self.units[m as usize].self_assigns.contains(&a) {
                    self.sizing(m);
                    found = true;
                }
            }
            if !found {
                for b in bases {
                    todo.extend(self.by_name.get(b).map_or(&[][..], Vec::as_slice));
                }
            }
        }
    }

    /// A function the resolver may evaluate (called from parsed code): its definitions,
    /// under its name or the name it was imported as.
    pub(super) fn want_func(&mut self, name: Name<'a>) {
        if !self.funcs_wanted.insert(name) {
            return;
        }
        for f in self.by_func.get(name).cloned().unwrap_or_default() {
            self.turn_on(f);
        }
        for x in self.imported_as.get(name).cloned().unwrap_or_default() {
            self.want_func(x);
        }
    }

    /// `p.m(` in parsed code: method `m` of the classes named `p` (or imported as `p`).
    pub(super) fn want_qual(&mut self, p: Name<'a>, m: Name<'a>) {
        let known = self.quals_wanted.entry(p).or_default();
        if known.contains(&m) {
            return;
        }
        known.push(m);
        for c in self.by_name.get(p).cloned().unwrap_or_default() {
            self.want_method(c, m);
        }
        for x in self.imported_as.get(p).cloned().unwrap_or_default() {
            self.want_qual(x, m);
        }
    }

    /// `self.m(` in `class` (or a subclass): its method `m`, or its bases'.
    pub(super) fn want_method(&mut self, class: u32, m: Name<'a>) {
        let mut todo = vec![class];
        while let Some(c) = todo.pop() {
            let u = &mut self.units[c as usize];
            if !u.want_methods.insert(m) {
                continue;
            }
            let (methods, bases) = (u.methods.clone(), u.bases.clone());
            for mm in methods {
                if self.units[mm as usize].name == m {
                    self.turn_on(mm);
                }
            }
            for b in bases {
                todo.extend(self.by_name.get(b).map_or(&[][..], Vec::as_slice));
            }
        }
    }

    /// Method `m` of `class` wants its callers: `self.m(` and `super().m(` in it and its
    /// subclasses.
    pub(super) fn need_call(&mut self, class: u32, m: Name<'a>) {
        let mut todo = vec![class];
        while let Some(c) = todo.pop() {
            if !self.units[c as usize].need_calls.insert(m) {
                continue;
            }
            for mm in self.units[c as usize].methods.clone() {
                if self.units[mm as usize].self_calls.contains(&m) {
                    self.sizing(mm);
                }
            }
            let name = self.units[c as usize].name;
            todo.extend(self.by_base.get(name).map_or(&[][..], Vec::as_slice));
        }
    }

    /// A class whose `__init__` takes arguments: its constructor's callers, and its
    /// subclasses' constructors.
    pub(super) fn add_init_class(&mut self, name: Name<'a>) {
        if !self.init_classes.insert(name) {
            return;
        }
        self.add_called(name);
        for id in self.by_base.get(name).cloned().unwrap_or_default() {
            self.derived(id);
        }
    }

    /// A class derived from one whose `__init__` takes arguments: its own `__init__` calls
    /// that one (`super().__init__(...)`); without one of its own, constructing it calls
    /// that one, so it is such a class too.
    pub(super) fn derived(&mut self, class: u32) {
        match self.units[class as usize].init {
            Some(init) if self.units[init as usize].calls_init => self.sizing(init),
            Some(_) => {}
            None => {
                self.turn_on(class);
                let name = self.units[class as usize].name;
                self.add_init_class(name);
            }
        }
    }
}
