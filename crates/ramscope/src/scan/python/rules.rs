//! Which Python calls put memory in host RAM, and how big it is: torch tensors on the CPU or
//! pinned, copies to the CPU, numpy arrays, byte buffers, mmap, shared memory, file-backed
//! storage. The size is evaluated with [`Eval`], so it follows the code's own names.

use super::index::dotted;
use super::values::{as_device, as_dtype, as_num, as_truth, minus, At, Dev, Eval, Lib, Truth, Val};
use super::{Call, Expr};
use crate::scan::{Formula, Method, Pinned};

/// One allocation as the call makes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alloc {
    pub method: Method,
    pub pinned: Pinned,
    pub dtype: Option<String>,
    pub shape: String,
    pub bytes: Formula,
    /// Under this caller the tensor is on the accelerator, not in host RAM.
    pub accel: bool,
}

/// torch factories that take a shape (positionally or as `size=`).
const TORCH_SHAPED: &[&str] = &["empty", "zeros", "ones", "rand", "randn", "empty_strided"];
/// torch factories whose size comes from data or another tensor.
const TORCH_DATA: &[&str] = &[
    "tensor",
    "as_tensor",
    "empty_like",
    "zeros_like",
    "ones_like",
    "full_like",
    "rand_like",
    "randn_like",
];
const NUMPY_SHAPED: &[&str] = &["zeros", "empty", "ones", "full"];
const NUMPY_DATA: &[&str] = &[
    "array",
    "zeros_like",
    "empty_like",
    "ones_like",
    "full_like",
];

/// Whether `call` allocates host memory, and how much.
pub fn alloc(ev: &Eval, call: &Call, at: &At) -> Option<Alloc> {
    let q = dotted(&call.func)
        .and_then(|d| ev.ix.qualify(at.func.file, &d))
        .unwrap_or_default();
    let kw = |k: &str| call.kwargs.iter().find(|(n, _)| n == k).map(|(_, e)| e);
    let kwv = |k: &str| kw(k).map(|e| ev.eval(e, at));
    if let Some(f) = q.strip_prefix("torch.") {
        if TORCH_SHAPED.contains(&f) || f == "full" || f == "arange" || TORCH_DATA.contains(&f) {
            return torch_factory(ev, call, at, f);
        }
        if f.ends_with("Storage.from_file") {
            // `(filename, shared, nbytes)`: a byte count.
            let n = kwv("nbytes")
                .or_else(|| kwv("size"))
                .or_else(|| call.args.get(2).map(|e| ev.eval(e, at)));
            return Some(simple(Method::FileStorage, n, call, 2));
        }
        if f == "from_file" {
            // `torch.from_file(filename, shared, size, *, dtype)`: `size` counts elements.
            let n = kwv("size").or_else(|| call.args.get(2).map(|e| ev.eval(e, at)));
            let (elem, text) = kwv("dtype").map_or_else(
                || (Formula::Const(4), "torch.float32".to_string()),
                |v| as_dtype(&v, Lib::Torch),
            );
            let mut a = simple(Method::FileStorage, n, call, 2);
            if !matches!(a.bytes, Formula::Unknown(_)) {
                a.bytes = Formula::mul(a.bytes, elem);
            }
            a.dtype = Some(text);
            return Some(a);
        }
        return None;
    }
    if let Some(f) = q.strip_prefix("numpy.") {
        let (bytes, dtype, shape) = if NUMPY_SHAPED.contains(&f) {
            let shape = call.args.first().or(kw("shape"));
            let dt = kwv("dtype").or_else(|| {
                let pos = if f == "full" { 2 } else { 1 };
                call.args.get(pos).map(|e| ev.eval(e, at))
            });
            let (elem, text) = match dt {
                Some(v) => as_dtype(&v, Lib::Numpy),
                None => (Formula::Const(8), "float64".to_string()),
            };
            let n = shape.map_or(Formula::Const(1), |s| as_num(&ev.eval(s, at)));
            (
                Formula::mul(n, elem),
                Some(text),
                shape.map(text_of).unwrap_or_default(),
            )
        } else if f == "arange" {
            // `np.arange(n)` or `np.arange(start, stop)`: int64 unless told.
            let vals = ev.items(&call.args, at);
            let n = match vals.as_slice() {
                [end] => as_num(end),
                [start, end, ..] => minus(as_num(end), as_num(start)),
                [] => Formula::Unknown(call.text.clone()),
            };
            let (elem, text) = match kwv("dtype") {
                Some(v) => as_dtype(&v, Lib::Numpy),
                None => (Formula::Const(8), "int64".to_string()),
            };
            let shape = call.args.iter().map(text_of).collect::<Vec<_>>().join(", ");
            (Formula::mul(n, elem), Some(text), shape)
        } else if NUMPY_DATA.contains(&f) {
            let t = call.text.clone();
            (Formula::Unknown(t.clone()), None, t)
        } else {
            return None;
        };
        return Some(Alloc {
            method: Method::Numpy,
            pinned: Pinned::No,
            dtype,
            shape,
            bytes,
            accel: false,
        });
    }
    match q.as_str() {
        "bytearray" | "bytes" => {
            let v = call.args.first().map(|e| ev.eval(e, at))?;
            // `bytes(b"...")`, `bytearray(data)`: copies of data, sized by it.
            if !matches!(v, Val::Num(_)) {
                return None;
            }
            Some(simple(Method::Bytes, Some(v), call, 0))
        }
        "mmap.mmap" => {
            let n = kwv("length").or_else(|| call.args.get(1).map(|e| ev.eval(e, at)));
            let mut a = simple(Method::Mmap, n, call, 1);
            // Length 0 maps the whole file: its size is the file's.
            if a.bytes == Formula::Const(0) {
                a.bytes = Formula::Unknown(format!("the file of {}", call.text));
            }
            Some(a)
        }
        "multiprocessing.shared_memory.SharedMemory" | "posix_ipc.SharedMemory" => {
            // Attaching to an existing segment maps memory someone else created.
            // `SharedMemory(name=None, create=False, size=0)`: `create` may be positional.
            let multi = q.starts_with("multi");
            let create = kwv("create")
                .or_else(|| call.args.get(1).filter(|_| multi).map(|e| ev.eval(e, at)))
                .map(|v| as_truth(&v));
            if create == Some(Truth::No) || (create.is_none() && multi) {
                return None;
            }
            let n = kwv("size").or_else(|| call.args.get(2).map(|e| ev.eval(e, at)));
            Some(simple(Method::SharedMemory, n, call, 2))
        }
        "os.memfd_create" => Some(Alloc {
            method: Method::SharedMemory,
            pinned: Pinned::No,
            dtype: None,
            shape: call.text.clone(),
            bytes: Formula::unknown("ftruncate size"),
            accel: false,
        }),
        _ => tensor_method(ev, call, at),
    }
}

fn simple(method: Method, n: Option<Val>, call: &Call, pos: usize) -> Alloc {
    let shape = call.args.get(pos).map(text_of).unwrap_or_default();
    Alloc {
        method,
        pinned: Pinned::No,
        dtype: None,
        shape,
        bytes: n.map_or_else(|| Formula::Unknown(call.text.clone()), |v| as_num(&v)),
        accel: false,
    }
}

fn torch_factory(ev: &Eval, call: &Call, at: &At, f: &str) -> Option<Alloc> {
    let kw = |k: &str| call.kwargs.iter().find(|(n, _)| n == k).map(|(_, e)| e);
    let device = kw("device").map_or(Dev::Cpu, |e| as_device(&ev.eval(e, at)));
    let pin = kw("pin_memory").map_or(Truth::No, |e| as_truth(&ev.eval(e, at)));
    let dtype = kw("dtype").map(|e| as_dtype(&ev.eval(e, at), Lib::Torch));
    let (count, shape) = if TORCH_DATA.contains(&f) {
        (Formula::Unknown(call.text.clone()), call.text.clone())
    } else if f == "arange" {
        let vals = ev.items(&call.args, at);
        let n = match vals.as_slice() {
            [end] => as_num(end),
            [start, end, ..] => minus(as_num(end), as_num(start)),
            [] => Formula::Unknown(call.text.clone()),
        };
        (
            n,
            call.args.iter().map(text_of).collect::<Vec<_>>().join(", "),
        )
    } else {
        // The shape: `size=`, else every positional argument (`zeros(a, b)`, `zeros((a, b))`,
        // `zeros(*size)`); `full(size, value)` and `empty_strided(size, stride)` take one.
        let shape_args: Vec<Expr> = match kw("size") {
            Some(s) => vec![s.clone()],
            None if f == "full" || f == "empty_strided" => {
                call.args.first().cloned().into_iter().collect()
            }
            None => call.args.clone(),
        };
        let vals = ev.items(&shape_args, at);
        let n = Formula::product(vals.iter().map(as_num).collect());
        (
            n,
            shape_args
                .iter()
                .map(text_of)
                .collect::<Vec<_>>()
                .join(", "),
        )
    };
    let (elem, dtype_text) = match dtype {
        Some((b, t)) => (b, Some(t)),
        // torch's default dtype is float32; arange of integers gives int64.
        None if f == "arange" => (Formula::Const(8), Some("torch.int64".into())),
        None if TORCH_DATA.contains(&f) => (Formula::Const(1), None),
        None => (Formula::Const(4), Some("torch.float32".into())),
    };
    let bytes = if TORCH_DATA.contains(&f) {
        count
    } else {
        Formula::mul(count, elem)
    };
    let (method, pinned) = match (&device, pin) {
        (_, Truth::Yes) => (Method::TorchPinned, Pinned::Yes),
        (Dev::Runtime(_), _) => (Method::TorchDevice, Pinned::No),
        (_, Truth::No) => (Method::TorchCpu, Pinned::No),
        (_, Truth::Runtime(c)) => (Method::TorchCpu, Pinned::When(c)),
    };
    Some(Alloc {
        method,
        pinned,
        dtype: dtype_text,
        shape,
        bytes,
        accel: device == Dev::Accel,
    })
}

/// `x.cpu()`, `x.to("cpu")`, `x.pin_memory()`: a host copy the size of `x`.
fn tensor_method(ev: &Eval, call: &Call, at: &At) -> Option<Alloc> {
    let Expr::Attr(recv, m) = &call.func else {
        return None;
    };
    let method = match m.as_str() {
        "cpu" if call.args.is_empty() && call.kwargs.is_empty() => Method::TorchToCpu,
        "pin_memory" if call.args.is_empty() => Method::TorchPinned,
        "to" => {
            let dev = call
                .kwargs
                .iter()
                .find(|(k, _)| k == "device")
                .map(|(_, e)| e)
                .or(call.args.first())?;
            if as_device(&ev.eval(dev, at)) != Dev::Cpu {
                return None;
            }
            Method::TorchToCpu
        }
        _ => return None,
    };
    let pinned = if method == Method::TorchPinned {
        Pinned::Yes
    } else {
        Pinned::No
    };
    Some(Alloc {
        method,
        pinned,
        dtype: None,
        shape: text_of(recv),
        bytes: Formula::Unknown(format!("{}.{m}()", text_of(recv))),
        accel: false,
    })
}

fn text_of(e: &Expr) -> String {
    super::values::short(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resolver evaluates only calls named in `select::PY_CALLS`, and the parse plan keeps
    /// only code that makes them: a factory added here but not there would never be seen.
    #[test]
    fn every_factory_the_rules_know_is_a_call_the_scan_evaluates() {
        let calls = crate::scan::select::PY_CALLS;
        for name in TORCH_SHAPED
            .iter()
            .chain(TORCH_DATA)
            .chain(NUMPY_SHAPED)
            .chain(NUMPY_DATA)
            .chain(&["full", "arange", "from_file", "bytearray", "bytes", "mmap"])
            .chain(&["SharedMemory", "memfd_create", "cpu", "to", "pin_memory"])
        {
            assert!(
                calls.contains(name),
                "{name} is missing from select::PY_CALLS"
            );
        }
    }
}
