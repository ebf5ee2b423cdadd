//! From facts to sites: every allocating call is evaluated; when its size depends on the
//! arguments of the function it sits in, the scan follows that function's callers (a
//! constructor's callers, a helper's callers) until the size is in configuration names,
//! and reports the site where the size becomes one thing: at the allocation when every
//! caller agrees (`InputBatch.token_ids_cpu_tensor`), at the call when callers differ
//! (`GPUModelRunner.input_ids = self._make_buffer(...)` through `CpuGpuBuffer`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use super::index::{dotted, CallRef, FuncId, Index};
use super::rules::{alloc, Alloc};
use super::values::{At, Env, Eval, Frame};
use super::{Expr, FileFacts, Target};
use crate::scan::{Hop, Method, Pinned, Resolution, Site};

/// Callers are followed this many calls out: vLLM 0.11's block table is six (torch.zeros in
/// CpuGpuBuffer ← BlockTable._make_buffer ← BlockTable ← MultiGroupBlockTable ← InputBatch
/// ← GPUModelRunner).
const MAX_FRAMES: usize = 8;
/// A helper called from more places than this is followed for the first ones only.
const MAX_CALLERS: usize = 256;
/// Instances of one allocation, at most.
const MAX_INSTANCES: usize = 2048;

/// One way an allocation is reached: the allocating call, then the calls that bound the
/// parameters its size needed, innermost first.
struct Instance {
    alloc: Alloc,
    path: Vec<CallRef>,
}

/// What a resolution pass found, and what it would need to find more.
pub struct Resolved {
    pub sites: Vec<Site>,
    /// Modules of the tree a lookup needed but that were not parsed.
    pub modules: BTreeSet<String>,
    /// Functions and classes whose callers are needed (their arguments size a site).
    pub callees: BTreeSet<String>,
}

pub fn sites(files: &[FileFacts], known: &HashSet<String>) -> Resolved {
    let ix = Index::new(files, known);
    let ev = Eval::new(&ix);
    let mut out = Vec::new();
    for (fi, f) in files.iter().enumerate() {
        let in_device_context = crate::scan::select::in_device_context(&f.path);
        for (i, func) in f.functions.iter().enumerate() {
            let id = FuncId { file: fi, func: i };
            for (ci, cs) in func.calls.iter().enumerate() {
                if !is_candidate(&cs.call.func) {
                    continue;
                }
                let at = At {
                    func: id,
                    line: cs.line,
                    env: None,
                    depth: 0,
                };
                ev.reset();
                let Some(a) = alloc(&ev, &cs.call, &at) else {
                    continue;
                };
                // Model code is built under the accelerator's device context: a tensor there
                // is host memory only when the code says so.
                let device_dependent = a.method == Method::TorchDevice;
                if a.accel
                    || (in_device_context && (default_device(&a, &cs.call) || device_dependent))
                {
                    continue;
                }
                let here = CallRef {
                    in_func: id,
                    call: ci,
                };
                let mut instances = Vec::new();
                expand(&ev, here, a, &mut Vec::new(), &mut instances);
                out.extend(place(&ix, &ev, instances));
            }
        }
    }
    unique_anchors(&mut out);
    let callees = ev
        .uncalled
        .borrow()
        .iter()
        .filter_map(|g| {
            let f = ix.func(*g)?;
            // Names too common to search the tree for (`forward`, `__call__`), and torch
            // custom ops' shape-only fakes, would make every file a candidate.
            let file = &ix.files.get(g.file)?.path;
            if crate::scan::select::in_device_context(file) {
                return None;
            }
            match (&f.class, f.name.as_str()) {
                (Some(c), "__init__") => Some(c.clone()),
                (_, n) if n.starts_with("__") || n.ends_with("_fake") || n.ends_with("_impl") => {
                    None
                }
                (_, n) if n.len() >= 6 && !n.starts_with('<') && n != "forward" => {
                    Some(n.to_string())
                }
                _ => None,
            }
        })
        .collect();
    Resolved {
        sites: out,
        modules: ix.missing.take(),
        callees,
    }
}

fn is_candidate(func: &Expr) -> bool {
    let last = match func {
        Expr::Name(n) => n.as_str(),
        Expr::Attr(_, a) => a.as_str(),
        _ => return false,
    };
    crate::scan::select::PY_CALLS.contains(&last)
}

/// A tensor created without naming a device (or pinning).
fn default_device(a: &Alloc, call: &super::Call) -> bool {
    a.method == Method::TorchCpu
        && !call
            .kwargs
            .iter()
            .any(|(k, _)| k == "device" || k == "pin_memory")
}

fn env_of(frames: &[(FuncId, CallRef)]) -> Env {
    let mut env: Env = None;
    for (func, call) in frames.iter().rev() {
        env = Some(Rc::new(Frame {
            func: *func,
            call: *call,
            next: env,
        }));
    }
    env
}

/// Evaluates the allocation under `frames`; while its size still needs a function's
/// arguments, follows each caller of that function.
fn expand(
    ev: &Eval,
    here: CallRef,
    first: Alloc,
    frames: &mut Vec<(FuncId, CallRef)>,
    out: &mut Vec<Instance>,
) {
    let unbound: Vec<FuncId> = ev.unbound.borrow().clone();
    let chain = in_call_order(here, frames);
    // The size's missing arguments are those of the outermost function reached so far;
    // others (a device, a pinning flag) are only followed when that one is bound.
    let outermost = chain.last().map_or(here.in_func, |c| c.in_func);
    let next = if unbound.contains(&outermost) && !frames.iter().any(|(f, _)| *f == outermost) {
        Some(outermost)
    } else {
        unbound
            .iter()
            .copied()
            .find(|g| !frames.iter().any(|(f, _)| f == g))
    };
    let callers = next.map(|g| ev.ix.callers(g)).unwrap_or_default();
    let path = || chain.clone();
    if let (Some(g), true, true) = (next, callers.is_empty(), first.bytes.has_params()) {
        ev.uncalled.borrow_mut().insert(g);
    }
    // Only a size that needs arguments is worth following callers for; a device or a
    // pinning flag that does is summarised where the site is.
    let needs = first.bytes.has_params();
    let (Some(g), false, true, true) = (next, callers.is_empty(), frames.len() < MAX_FRAMES, needs)
    else {
        out.push(Instance {
            alloc: first,
            path: path(),
        });
        return;
    };
    let Some(cs) = ev.ix.call(here) else {
        return;
    };
    for cr in callers.iter().take(MAX_CALLERS) {
        if out.len() >= MAX_INSTANCES {
            return;
        }
        frames.push((g, *cr));
        ev.reset();
        let at = At {
            func: here.in_func,
            line: cs.line,
            env: env_of(frames),
            depth: 0,
        };
        if let Some(a) = alloc(ev, &cs.call, &at) {
            expand(ev, here, a, frames, out);
        }
        frames.pop();
    }
}

/// The allocating call, then the calls that reach its function from outside, innermost
/// first: frames are found in the order their parameters were missed, not in call order.
fn in_call_order(here: CallRef, frames: &[(FuncId, CallRef)]) -> Vec<CallRef> {
    let mut out = vec![here];
    let mut used = vec![false; frames.len()];
    let mut func = here.in_func;
    while let Some(i) = (0..frames.len()).find(|&i| !used[i] && frames[i].0 == func) {
        used[i] = true;
        out.push(frames[i].1);
        func = frames[i].1.in_func;
    }
    out.extend(
        frames
            .iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|((_, c), _)| *c),
    );
    out
}

/// Reports each instance at the innermost call from which every instance through it has
/// the same size, method and pinning.
fn place(ix: &Index, ev: &Eval, instances: Vec<Instance>) -> Vec<Site> {
    let key = |i: &Instance| i.alloc.bytes.clone();
    let mut groups: BTreeMap<Vec<CallRef>, Vec<usize>> = BTreeMap::new();
    let mut order = Vec::new();
    for (n, inst) in instances.iter().enumerate() {
        let mut k = 0;
        while k + 1 < inst.path.len() {
            let prefix = &inst.path[..=k];
            let agree = instances
                .iter()
                .filter(|o| o.path.len() > k && &o.path[..=k] == prefix)
                .all(|o| key(o) == key(inst));
            if agree {
                break;
            }
            k += 1;
        }
        let gid = inst.path[..=k].to_vec();
        let members = groups.entry(gid.clone()).or_default();
        if members.is_empty() {
            order.push((gid, k));
        }
        members.push(n);
    }
    let mut out = Vec::new();
    for (gid, k) in order {
        let members = groups.remove(&gid).unwrap_or_default();
        let host: Vec<&Instance> = members
            .iter()
            .map(|&n| &instances[n])
            .filter(|i| !i.alloc.accel)
            .collect();
        let Some(first) = host.first() else {
            continue; // on the accelerator under every caller
        };
        let Some(mut s) = site(ix, ev, first, k) else {
            continue;
        };
        if host.len() < members.len() {
            // Host memory under some callers (the CPU backend), device memory under others.
            s.method = Method::TorchDevice;
            s.pinned = Pinned::No;
        } else if host.iter().any(|i| i.alloc.pinned != first.alloc.pinned) {
            s.pinned = Pinned::When("the caller's pin_memory".into());
        }
        s.paths = u32::try_from(host.len()).unwrap_or(u32::MAX);
        out.push(s);
    }
    out
}

fn site(ix: &Index, ev: &Eval, inst: &Instance, k: usize) -> Option<Site> {
    let at = inst.path.get(k)?;
    let file = ix.files.get(at.in_func.file)?;
    let cs = ix.call(*at)?;
    let (anchor, scope) = anchor_of(ix, *at)?;
    // The attributes the allocation is stored in on its way here, outermost first
    // (`BlockTable.block_table/CpuGpuBuffer.cpu`): what names two sites at one call apart.
    let stores: Vec<String> = inst.path[..k]
        .iter()
        .rev()
        .filter(|c| {
            ix.call(**c)
                .is_some_and(|cs| matches!(cs.target, Target::SelfAttr(_)))
        })
        .filter_map(|c| anchor_of(ix, *c).map(|(a, _)| a))
        .collect();
    let inner = (!stores.is_empty()).then(|| stores.join("/"));
    let via = inst.path[..k]
        .iter()
        .rev()
        .filter_map(|c| {
            let f = ix.files.get(c.in_func.file)?;
            let cs = ix.call(*c)?;
            Some(Hop {
                file: f.path.clone(),
                line: cs.line,
                callee: dotted(&cs.call.func).unwrap_or_else(|| cs.call.text.clone()),
            })
        })
        .collect::<Vec<_>>();
    // The first hop is the call made at this site; list what it leads to.
    let a = &inst.alloc;
    Some(Site {
        file: file.path.clone(),
        line: cs.line,
        anchor,
        scope,
        method: a.method,
        pinned: a.pinned.clone(),
        dtype: a.dtype.clone(),
        shape: a.shape.clone(),
        resolution: resolution(ev, &a.bytes),
        formula: a.bytes.clone(),
        via,
        paths: 1,
        inner,
    })
}

/// The name a call's result is stored under (`Class.attribute`, `function.variable`,
/// `Class.method:callee`), and the enclosing scope.
fn anchor_of(ix: &Index, at: CallRef) -> Option<(String, String)> {
    let func = ix.func(at.in_func)?;
    let cs = ix.call(at)?;
    let scope = match (&func.class, func.name.as_str()) {
        (_, "<module>") => "<module>".to_string(),
        (Some(c), "<class>") => c.clone(),
        (Some(c), n) => format!("{c}.{n}"),
        (None, n) => n.to_string(),
    };
    let owner = func.class.clone().unwrap_or_else(|| scope.clone());
    let callee = dotted(&cs.call.func).unwrap_or_default();
    let anchor = match &cs.target {
        Target::SelfAttr(a) => format!("{owner}.{a}"),
        Target::Name(n) if scope == "<module>" => n.clone(),
        Target::Name(n) => format!("{scope}.{n}"),
        Target::Item(v) => format!("{owner}.{v}[]"),
        Target::None => format!("{scope}:{callee}"),
    };
    Some((anchor, scope))
}

fn resolution(ev: &Eval, f: &crate::scan::Formula) -> Resolution {
    if matches!(f, crate::scan::Formula::Unknown(_)) {
        return Resolution::None;
    }
    let config = ev.config_names.borrow();
    let all_config = f.names().iter().all(|n| config.contains(n));
    if f.has_unknown() || f.has_params() || !all_config {
        Resolution::Partial
    } else {
        Resolution::Full
    }
}

/// Anchors name sites across releases, so they must be unique within a file: repeats get
/// `#2`, `#3` in line order.
fn unique_anchors(sites: &mut [Site]) {
    // Sites reached through a class are named by what it stores, and two sites at one call
    // (a constructor that allocates twice) told apart the same way:
    // `InputBatch.block_table/BlockTable.slot_mapping`.
    let mut groups: HashMap<(String, u32, String), Vec<usize>> = HashMap::new();
    for (i, s) in sites.iter().enumerate() {
        groups
            .entry((s.file.clone(), s.line, s.anchor.clone()))
            .or_default()
            .push(i);
    }
    for members in groups.values() {
        // A site reached through a class is named by what the class stores, too (one store
        // at least, more when needed to tell sites at one call apart).
        let depth = |i: usize| {
            sites[i]
                .inner
                .as_deref()
                .map_or(0, |x| x.split('/').count())
        };
        let max = members.iter().map(|&i| depth(i)).max().unwrap_or(0);
        let named = |i: usize, d: usize| -> String {
            match &sites[i].inner {
                Some(inner) if d > 0 => {
                    let part: Vec<&str> = inner.split('/').take(d).collect();
                    format!("{}/{}", sites[i].anchor, part.join("/"))
                }
                _ => sites[i].anchor.clone(),
            }
        };
        let best = (1..=max).find(|&d| {
            let mut names: Vec<String> = members.iter().map(|&i| named(i, d)).collect();
            names.sort();
            names.dedup();
            names.len() == members.len()
        });
        let d = best.unwrap_or(max).max(1);
        let renamed: Vec<(usize, String)> = members.iter().map(|&i| (i, named(i, d))).collect();
        for (i, name) in renamed {
            sites[i].anchor = name;
        }
    }
    let mut seen: HashMap<(String, String), u32> = HashMap::new();
    let mut idx: Vec<usize> = (0..sites.len()).collect();
    idx.sort_by(|&a, &b| (&sites[a].file, sites[a].line).cmp(&(&sites[b].file, sites[b].line)));
    for i in idx {
        let key = (sites[i].file.clone(), sites[i].anchor.clone());
        let n = seen.entry(key).or_insert(0);
        *n += 1;
        if *n > 1 {
            sites[i].anchor = format!("{}#{n}", sites[i].anchor);
        }
    }
}
