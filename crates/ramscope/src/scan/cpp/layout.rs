//! `sizeof` of a struct, class or union defined in the file: its fields laid out in order,
//! each at its alignment, the whole rounded up to the largest alignment (the x86-64 and
//! AArch64 ABIs). Records with base classes, virtual functions, bit fields, `alignas` or
//! attributes, and fields of a type not known, have no computed size. Fields under
//! `#if`/`#else` are laid out for each alternative and the larger result taken.

use tree_sitter::Node;

use super::index::{kids, text};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    pub size: u64,
    pub align: u64,
}

/// What the layout needs from the rest of the file.
pub(super) trait Sizes {
    /// The value of an array bound.
    fn count(&self, expr: Node<'_>, src: &str) -> Option<u64>;
    /// The layout of a type by name (a scalar, or another record of the file).
    fn of_type(&self, ty: &str) -> Option<Layout>;
}

#[derive(Clone, Copy)]
struct State {
    offset: u64,
    align: u64,
    /// The largest member (a union's size).
    largest: u64,
}

/// The layout of a `struct_specifier`, `class_specifier` or `union_specifier` with a body.
pub(super) fn of_record(rec: Node<'_>, src: &str, sizes: &dyn Sizes) -> Option<Layout> {
    let body = rec.child_by_field_name("body")?;
    let whole = text(rec, src);
    if ["virtual", "alignas", "__attribute__", "__declspec"]
        .iter()
        .any(|w| whole.contains(w))
        || kids(rec).iter().any(|k| k.kind() == "base_class_clause")
    {
        return None;
    }
    let union = rec.kind() == "union_specifier";
    let mut st = State {
        offset: 0,
        align: 1,
        largest: 0,
    };
    members(&kids(body), src, sizes, union, &mut st)?;
    let raw = if union { st.largest } else { st.offset };
    let size = round_up(raw, st.align)?.max(1);
    Some(Layout {
        size,
        align: st.align,
    })
}

fn round_up(x: u64, align: u64) -> Option<u64> {
    x.checked_add(align.checked_sub(1)?)
        .map(|v| v / align * align)
}

fn members(
    list: &[Node<'_>],
    src: &str,
    sizes: &dyn Sizes,
    union: bool,
    st: &mut State,
) -> Option<()> {
    for m in list {
        match m.kind() {
            "field_declaration" => field(*m, src, sizes, union, st)?,
            "preproc_if" | "preproc_ifdef" | "preproc_elif" | "preproc_elifdef" => {
                let mut a = *st;
                members(&branch(*m), src, sizes, union, &mut a)?;
                let mut b = *st;
                if let Some(alt) = m.child_by_field_name("alternative") {
                    members(&[alt], src, sizes, union, &mut b)?;
                }
                *st = State {
                    offset: a.offset.max(b.offset),
                    align: a.align.max(b.align),
                    largest: a.largest.max(b.largest),
                };
            }
            "preproc_else" => members(&kids(*m), src, sizes, union, st)?,
            "function_definition"
            | "declaration"
            | "access_specifier"
            | "type_definition"
            | "alias_declaration"
            | "using_declaration"
            | "static_assert_declaration"
            | "friend_declaration"
            | "template_declaration"
            | "preproc_call"
            | "preproc_def"
            | "preproc_function_def"
            | "preproc_include"
            | "enum_specifier" => {}
            _ => return None,
        }
    }
    Some(())
}

/// The members of one `#if` alternative.
fn branch<'t>(node: Node<'t>) -> Vec<Node<'t>> {
    let skip: Vec<Node<'t>> = ["condition", "name", "alternative"]
        .iter()
        .filter_map(|f| node.child_by_field_name(f))
        .collect();
    kids(node)
        .into_iter()
        .filter(|k| !skip.contains(k))
        .collect()
}

fn field(node: Node<'_>, src: &str, sizes: &dyn Sizes, union: bool, st: &mut State) -> Option<()> {
    let all = kids(node);
    if all.iter().any(|k| k.kind() == "bitfield_clause") {
        return None;
    }
    if all
        .iter()
        .any(|k| k.kind() == "storage_class_specifier" && text(*k, src) == "static")
    {
        return Some(());
    }
    let ty = node.child_by_field_name("type")?;
    let mut cursor = node.walk();
    let declarators: Vec<Node<'_>> = node
        .children_by_field_name("declarator", &mut cursor)
        .collect();
    for d in declarators {
        let Some(l) = declared(d, text(ty, src), src, sizes)? else {
            // A method declaration.
            continue;
        };
        st.align = st.align.max(l.align);
        st.largest = st.largest.max(l.size);
        if !union {
            st.offset = round_up(st.offset, l.align)?.checked_add(l.size)?;
        }
    }
    Some(())
}

/// The layout a declarator gives a field of type `ty`; `Some(None)` for a method.
fn declared(mut d: Node<'_>, ty: &str, src: &str, sizes: &dyn Sizes) -> Option<Option<Layout>> {
    let mut count: u64 = 1;
    let mut pointer = false;
    for _ in 0..16 {
        match d.kind() {
            "field_identifier" => {
                let l = if pointer {
                    Layout { size: 8, align: 8 }
                } else {
                    sizes.of_type(&ty.split_whitespace().collect::<Vec<_>>().join(" "))?
                };
                return Some(Some(Layout {
                    size: l.size.checked_mul(count)?,
                    align: l.align,
                }));
            }
            // `T* a[n]`: n pointers.
            "pointer_declarator" => {
                pointer = true;
                d = d.child_by_field_name("declarator")?;
            }
            "array_declarator" => {
                let n = sizes.count(d.child_by_field_name("size")?, src)?;
                count = count.checked_mul(n)?;
                d = d.child_by_field_name("declarator")?;
            }
            "function_declarator" => return Some(None),
            _ => return None,
        }
    }
    None
}
