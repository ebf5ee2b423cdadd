//! C, C++ and CUDA sources: the calls that put memory in host RAM, found with tree-sitter's
//! C++ grammar (CUDA's `<<<...>>>` launches parse with errors around them; the rest of the
//! file is still read).
//!
//! Recognised: pinned memory from the CUDA/HIP runtime and driver (`cudaHostAlloc`,
//! `cudaMallocHost`, `cuMemHostAlloc`, `cuMemAllocHost`, `hipHostMalloc`, ...), host memory
//! pinned in place (`cudaHostRegister`, `cuMemHostRegister`, `hipHostRegister`), `mmap`,
//! POSIX shared memory and memfd (sized by the `ftruncate` of the same function), and the C
//! heap (`malloc`, `calloc`, `aligned_alloc`, `posix_memalign`, `realloc`, `memalign`,
//! `valloc`). Each size argument becomes a [`Formula`] (module `expr`): the names it uses
//! are followed within the file; a parameter of the enclosing function stays a
//! [`Formula::Param`], any other unresolved name a [`Formula::Name`], a call that cannot be
//! followed a [`Formula::Unknown`]. Resolution is Full for a constant, None with an
//! unknown part, else Partial.

mod expr;
mod index;
mod layout;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use tree_sitter::{Node, Parser};

use super::{Formula, Method, Pinned, Resolution, Site};
use index::{collapse, kids, text, Index};

/// Where a call's size is.
#[derive(Clone, Copy)]
enum Size {
    Arg(usize),
    /// `calloc(n, m)`: n × m.
    Product(usize, usize),
    /// A shared-memory object: the size of the `ftruncate` that goes with it.
    Ftruncate,
}

struct Spec {
    method: Method,
    /// Fewest and most arguments (a call with other counts is some other function).
    args: (usize, usize),
    size: Size,
    /// Whether the name belongs to the CUDA/HIP APIs (which may be reached through a
    /// namespace, a function table or a wrapper object); C library names are only taken
    /// unqualified or as `std::`/`::`.
    cuda: bool,
}

fn spec(name: &str) -> Option<Spec> {
    use Method::*;
    let s = |method, args, size, cuda| {
        Some(Spec {
            method,
            args,
            size,
            cuda,
        })
    };
    match name {
        "cudaHostAlloc" | "cuMemHostAlloc" => s(CudaHostAlloc, (3, 3), Size::Arg(1), true),
        "cudaMallocHost" | "hipHostMalloc" | "hipHostAlloc" | "hipMallocHost" => {
            s(CudaHostAlloc, (2, 3), Size::Arg(1), true)
        }
        "cuMemAllocHost" | "cuMemAllocHost_v2" => s(CudaHostAlloc, (2, 2), Size::Arg(1), true),
        "cudaHostRegister" | "cuMemHostRegister" | "cuMemHostRegister_v2" | "hipHostRegister" => {
            s(CudaHostRegister, (3, 3), Size::Arg(1), true)
        }
        "mmap" | "mmap64" => s(Mmap, (6, 6), Size::Arg(1), false),
        "shm_open" => s(SharedMemory, (3, 3), Size::Ftruncate, false),
        "memfd_create" => s(SharedMemory, (2, 2), Size::Ftruncate, false),
        "malloc" | "valloc" => s(CHeap, (1, 1), Size::Arg(0), false),
        "calloc" => s(CHeap, (2, 2), Size::Product(0, 1), false),
        "aligned_alloc" | "memalign" | "realloc" => s(CHeap, (2, 2), Size::Arg(1), false),
        "posix_memalign" => s(CHeap, (3, 3), Size::Arg(2), false),
        _ => None,
    }
}

/// Text every recognised name contains: a file with none of them is not parsed.
const HINTS: [&str; 14] = [
    "malloc",
    "calloc",
    "realloc",
    "valloc",
    "aligned_alloc",
    "memalign",
    "HostAlloc",
    "AllocHost",
    "MallocHost",
    "HostMalloc",
    "HostRegister",
    "mmap",
    "shm_open",
    "memfd_create",
];

/// The host allocation sites of one C/C++/CUDA file, and whether it had syntax errors.
///
/// A file that does not mention any recognised name cannot hold a site and is not parsed
/// (parsing is nearly all the cost): it reports no syntax errors, so the flag means "parsed
/// with errors that may hide sites".
pub fn sites(file: &str, source: &str) -> (Vec<Site>, bool) {
    let bytes = source.as_bytes();
    if !HINTS
        .iter()
        .any(|h| memchr::memmem::find(bytes, h.as_bytes()).is_some())
    {
        return (Vec::new(), false);
    }
    let mut parser = Parser::new();
    if parser
        .set_language(&tree_sitter_cpp::LANGUAGE.into())
        .is_err()
    {
        return (Vec::new(), true);
    }
    let Some(tree) = parser.parse(source, None) else {
        return (Vec::new(), true);
    };
    let root = tree.root_node();
    let index = Index::build(root, source, &|name| spec(name).is_some());
    let resolver = expr::Resolver::new(source, &index);
    let mut out: Vec<Site> = Vec::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    for call in &index.calls {
        let Some((callee, spec)) = matching(*call, source) else {
            continue;
        };
        let (scope, func) = scope_of(*call, source);
        let args = call
            .child_by_field_name("arguments")
            .map(kids)
            .unwrap_or_default();
        let pos = call.start_byte();
        let arg = |i: usize| args.get(i).copied();
        let (shape, formula) = match spec.size {
            Size::Arg(i) => match arg(i) {
                Some(a) => (shape(a, source), resolver.size(a, func, pos)),
                None => continue,
            },
            Size::Product(i, j) => match (arg(i), arg(j)) {
                (Some(a), Some(b)) => (
                    collapse(&format!("{}, {}", text(a, source), text(b, source)), 120),
                    Formula::product(vec![
                        resolver.size(a, func, pos),
                        resolver.size(b, func, pos),
                    ]),
                ),
                _ => continue,
            },
            Size::Ftruncate => match ftruncate_for(*call, func.unwrap_or(root), source) {
                Some((size, at)) => (shape(size, source), resolver.size(size, func, at)),
                None => (String::new(), Formula::unknown("ftruncate size")),
            },
        };
        let n = seen.entry(format!("{scope}.{callee}")).or_insert(0);
        *n += 1;
        let anchor = match *n {
            1 => format!("{scope}.{callee}"),
            k => format!("{scope}.{callee}#{k}"),
        };
        out.push(Site {
            file: file.to_string(),
            line: u32::try_from(call.start_position().row.saturating_add(1)).unwrap_or(u32::MAX),
            anchor,
            scope,
            method: spec.method,
            pinned: if spec.cuda { Pinned::Yes } else { Pinned::No },
            dtype: None,
            shape,
            resolution: resolution(&formula),
            formula,
            via: Vec::new(),
            paths: 1,
            inner: None,
        });
    }
    (out, root.has_error())
}

/// Full when the formula is a constant, None when part of it is unknown, else Partial.
fn resolution(f: &Formula) -> Resolution {
    if f.has_unknown() {
        Resolution::None
    } else if f.names().is_empty() {
        Resolution::Full
    } else {
        Resolution::Partial
    }
}

fn shape(node: Node<'_>, src: &str) -> String {
    collapse(text(node, src), 120)
}

/// The callee's name and what it allocates, when `call` is one of the recognised functions
/// with the right number of arguments, named the way that function is named.
fn matching(call: Node<'_>, src: &str) -> Option<(String, Spec)> {
    let f = call.child_by_field_name("function")?;
    let name = index::callee_name(call, src)?;
    let spec = spec(name)?;
    let n = call.child_by_field_name("arguments").map(kids)?.len();
    if n < spec.args.0 || n > spec.args.1 {
        return None;
    }
    let allowed = match f.kind() {
        "identifier" => true,
        "qualified_identifier" => {
            let scope = f.child_by_field_name("scope").map_or("", |s| text(s, src));
            spec.cuda || matches!(scope, "" | "std")
        }
        _ => spec.cuda,
    };
    allowed.then(|| (name.to_string(), spec))
}

/// The qualified name of the function around `node` (`ns::Class::method`) and that
/// function, or `<file>`.
fn scope_of<'t>(node: Node<'t>, src: &str) -> (String, Option<Node<'t>>) {
    let mut parts: Vec<String> = Vec::new();
    let mut func = None;
    let mut cur = node.parent();
    while let Some(n) = cur {
        match n.kind() {
            "function_definition" if func.is_none() => {
                func = Some(n);
                let name = index::function_declarator(n)
                    .and_then(|d| d.child_by_field_name("declarator"))
                    .map_or("?", |d| text(d, src));
                parts.push(collapse(name, 120));
            }
            "class_specifier" | "struct_specifier" | "union_specifier" | "namespace_definition"
                if func.is_some() =>
            {
                if let Some(name) = n.child_by_field_name("name") {
                    parts.push(collapse(text(name, src), 120));
                }
            }
            _ => {}
        }
        cur = n.parent();
    }
    if func.is_none() {
        return ("<file>".to_string(), None);
    }
    parts.reverse();
    (parts.join("::"), func)
}

/// The size argument of the `ftruncate` that sizes the object a `shm_open`/`memfd_create`
/// call opens: in the same function, on the same descriptor variable when that can be
/// told, the first one after the call (else the last before it); and where it is.
fn ftruncate_for<'t>(call: Node<'t>, within: Node<'t>, src: &str) -> Option<(Node<'t>, usize)> {
    let fd = descriptor_name(call, src);
    let mut found: Vec<(Node<'t>, Node<'t>)> = Vec::new();
    let mut cursor = within.walk();
    'walk: loop {
        let node = cursor.node();
        if node.kind() == "call_expression"
            && matches!(
                index::callee_name(node, src),
                Some("ftruncate" | "ftruncate64")
            )
        {
            if let Some(args) = node.child_by_field_name("arguments").map(kids) {
                if let [first, size] = args.as_slice() {
                    found.push((*first, *size));
                }
            }
        }
        if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.node() == within {
                break 'walk;
            }
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
    let same_fd: Vec<_> = found
        .iter()
        .filter(|(first, _)| fd.as_deref() == Some(text(*first, src)))
        .copied()
        .collect();
    let pool = if same_fd.is_empty() { found } else { same_fd };
    let at = call.start_byte();
    let pick = pool
        .iter()
        .find(|(first, _)| first.start_byte() > at)
        .or_else(|| pool.last())?;
    Some((pick.1, pick.1.start_byte()))
}

/// The variable a call's result is stored in (`fd = shm_open(...)`, `int fd = ...`).
fn descriptor_name(call: Node<'_>, src: &str) -> Option<String> {
    let mut cur = call.parent()?;
    for _ in 0..8 {
        match cur.kind() {
            "parenthesized_expression" | "cast_expression" => cur = cur.parent()?,
            "init_declarator" => {
                let d = cur.child_by_field_name("declarator")?;
                return Some(text(d, src).to_string());
            }
            "assignment_expression" => {
                let l = cur.child_by_field_name("left")?;
                return Some(text(l, src).to_string());
            }
            _ => return None,
        }
    }
    None
}
