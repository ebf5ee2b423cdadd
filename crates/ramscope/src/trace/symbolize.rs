//! Native return addresses → `function (file:line)`, from the ELF files on disk.
//!
//! A trace records, per process, which file each executable mapping comes from (`module`
//! records). An address becomes a file offset, the file offset an ELF virtual address (through
//! the `PT_LOAD` segment that holds it), and that a function: from DWARF line tables when the
//! file has them, else from its symbol table. Return addresses point after the call, so the
//! address looked up is one byte before.
//!
//! Each file is read once per [`Symbolizer`] (memory-mapped, keyed by path, size and mtime),
//! for all the addresses asked of it at once. Big libraries without DWARF (libtorch_cpu.so,
//! ~450 MiB) are read for their symbol table only: DWARF is loaded from a file over 64 MiB
//! only when its `.debug_info` is itself small.

use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use addr2line::gimli;
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};
use serde::Serialize;

use super::format::Module;

/// Files up to this size get their DWARF read whatever its size.
const SMALL_FILE: u64 = 64 << 20;
/// A bigger file's DWARF is read only if its `.debug_info` is at most this big.
const SMALL_DEBUG_INFO: u64 = 32 << 20;

/// One native frame, named as well as the file allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NativeFrame {
    /// Demangled function name, when the file has a symbol for the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The mapped file's path (empty: the address is in no traced module).
    pub module: String,
    /// The return address's offset in the module's file (the address when there is none).
    pub offset: u64,
}

impl NativeFrame {
    /// `function (file:line)`, else `function`, else `module+0xoffset`.
    pub fn label(&self) -> String {
        match (&self.function, &self.file, self.line) {
            (Some(f), Some(file), Some(line)) => format!("{f} ({}:{line})", short_path(file)),
            (Some(f), _, _) => f.clone(),
            _ if self.module.is_empty() => format!("{:#x}", self.offset),
            _ => format!("{}+{:#x}", base_name(&self.module), self.offset),
        }
    }

    /// The module's file name: `libc.so.6`.
    pub fn module_name(&self) -> &str {
        base_name(&self.module)
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Source paths of build machines are long; the last three parts say enough.
fn short_path(path: &str) -> String {
    let parts: Vec<&str> = path.rsplitn(4, '/').collect();
    if parts.len() < 4 {
        return path.to_string();
    }
    format!("{}/{}/{}", parts[2], parts[1], parts[0])
}

/// The module of `address` among one process's modules (sorted by start), and the
/// address's offset in the module's file.
pub fn locate(modules: &[Module], address: u64) -> Option<(&Module, u64)> {
    let i = modules.partition_point(|m| m.start <= address);
    let m = modules.get(i.checked_sub(1)?)?;
    (address < m.end).then(|| (m, address - m.start + m.file_offset))
}

/// Names frames, reading each ELF file once.
#[derive(Default)]
pub struct Symbolizer {
    files: HashMap<FileKey, HashMap<u64, NativeFrame>>,
    /// Files that could not be read, with why (shown once in the report).
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileKey {
    path: String,
    size: u64,
    modified: Option<SystemTime>,
}

impl Symbolizer {
    pub fn new() -> Symbolizer {
        Symbolizer::default()
    }

    /// Names the frames at `offsets` (file offsets of return addresses) in the file `path`.
    pub fn resolve(&mut self, path: &str, offsets: &[u64]) -> Vec<NativeFrame> {
        let unnamed = |offset: u64| NativeFrame {
            function: None,
            file: None,
            line: None,
            module: path.to_string(),
            offset,
        };
        let key = match std::fs::metadata(path) {
            Ok(m) => FileKey {
                path: path.to_string(),
                size: m.len(),
                modified: m.modified().ok(),
            },
            Err(_) => return offsets.iter().map(|&o| unnamed(o)).collect(),
        };
        let known = self.files.entry(key.clone()).or_default();
        let missing: Vec<u64> = offsets
            .iter()
            .copied()
            .filter(|o| !known.contains_key(o))
            .collect();
        if !missing.is_empty() {
            match name_in_file(Path::new(path), key.size, &missing) {
                Ok(named) => {
                    for (offset, (function, file, line)) in missing.iter().zip(named) {
                        let frame = NativeFrame {
                            function,
                            file,
                            line,
                            ..unnamed(*offset)
                        };
                        known.insert(*offset, frame);
                    }
                }
                Err(e) => {
                    self.problems.push(format!("{path}: {e}"));
                    for &o in &missing {
                        known.insert(o, unnamed(o));
                    }
                }
            }
        }
        offsets
            .iter()
            .map(|o| known.get(o).cloned().unwrap_or_else(|| unnamed(*o)))
            .collect()
    }
}

type Named = (Option<String>, Option<String>, Option<u32>);

/// Function, file and line of each file offset in one ELF file.
fn name_in_file(path: &Path, size: u64, offsets: &[u64]) -> Result<Vec<Named>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    // SAFETY: the map is read-only and dropped before this returns. A library rewritten
    // while we read it can give wrong names, not memory unsafety beyond a SIGBUS, which a
    // package manager's atomic replace (a new inode) does not cause.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
    let elf = object::File::parse(&*map).map_err(|e| format!("not an ELF file ({e})"))?;
    let symbols = SymbolTable::of(&elf);
    let dwarf = if wants_dwarf(&elf, size) {
        load_dwarf(&elf)
    } else {
        None
    };
    Ok(offsets
        .iter()
        .map(|&offset| {
            let Some(vaddr) = virtual_address(&elf, offset) else {
                return (None, None, None);
            };
            // The call instruction ends where the return address points.
            let probe = vaddr.saturating_sub(1);
            let from_dwarf = dwarf.as_ref().and_then(|d| dwarf_frame(d, probe));
            let (mut function, file, line) = from_dwarf.unwrap_or((None, None, None));
            if function.is_none() {
                function = symbols.name(probe).map(demangle);
            }
            (function, file, line)
        })
        .collect())
}

/// DWARF is worth loading unless the file is big and its debug info is too.
fn wants_dwarf(elf: &object::File<'_>, size: u64) -> bool {
    match elf.section_by_name(".debug_info") {
        None => false,
        Some(s) => size <= SMALL_FILE || s.size() <= SMALL_DEBUG_INFO,
    }
}

/// The ELF virtual address a file offset is loaded at.
fn virtual_address(elf: &object::File<'_>, offset: u64) -> Option<u64> {
    elf.segments().find_map(|s| {
        let (start, len) = s.file_range();
        (start <= offset && offset < start + len).then(|| offset - start + s.address())
    })
}

/// Function symbols by address; the full table when the file has one, else the dynamic one.
struct SymbolTable<'data> {
    entries: Vec<(u64, u64, &'data str)>,
}

impl<'data> SymbolTable<'data> {
    fn of(elf: &object::File<'data>) -> SymbolTable<'data> {
        fn functions<'data>(
            symbols: object::SymbolIterator<'data, '_>,
        ) -> Vec<(u64, u64, &'data str)> {
            symbols
                .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
                .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?)))
                .collect()
        }
        let mut entries = functions(elf.symbols());
        if entries.is_empty() {
            entries = functions(elf.dynamic_symbols());
        }
        entries.sort_unstable_by_key(|e| (e.0, std::cmp::Reverse(e.1)));
        SymbolTable { entries }
    }

    /// The function that holds `address`: the nearest symbol below it, if its size reaches
    /// (a size of 0 is unknown and taken to reach).
    fn name(&self, address: u64) -> Option<&'data str> {
        let i = self.entries.partition_point(|e| e.0 <= address);
        let (start, size, name) = *self.entries.get(i.checked_sub(1)?)?;
        (size == 0 || address < start + size).then_some(name)
    }
}

type Reader<'data> = gimli::EndianSlice<'data, gimli::RunTimeEndian>;

fn load_dwarf<'data>(elf: &object::File<'data>) -> Option<addr2line::Context<Reader<'data>>> {
    let endian = if elf.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let section = |id: gimli::SectionId| -> Result<Reader<'data>, gimli::Error> {
        // Compressed debug sections are skipped (read as empty): this build reads plain ones.
        let data = elf
            .section_by_name(id.name())
            .filter(|s| {
                s.compressed_file_range()
                    .is_ok_and(|r| r.format == object::CompressionFormat::None)
            })
            .and_then(|s| s.data().ok())
            .unwrap_or(&[]);
        Ok(gimli::EndianSlice::new(data, endian))
    };
    let dwarf = gimli::Dwarf::load(section).ok()?;
    addr2line::Context::from_dwarf(dwarf).ok()
}

/// The innermost (inlined) function at `probe` and its source line, from DWARF.
fn dwarf_frame(ctx: &addr2line::Context<Reader<'_>>, probe: u64) -> Option<Named> {
    let mut frames = ctx.find_frames(probe).skip_all_loads().ok()?;
    let frame = frames.next().ok()??;
    let function = frame
        .function
        .as_ref()
        .and_then(|f| f.raw_name().ok())
        .map(|n| demangle(n.as_ref()));
    let (file, line) = match frame.location {
        Some(l) => (l.file.map(str::to_string), l.line),
        None => (None, None),
    };
    Some((function, file, line))
}

/// Rust and C++ symbol names, readable; parameters left out (they make C++ names of
/// hundreds of characters). Anything else as it is.
pub fn demangle(name: &str) -> String {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return format!("{d:#}");
    }
    if name.starts_with("_Z") {
        let options = cpp_demangle::DemangleOptions::new()
            .no_params()
            .no_return_type();
        if let Ok(sym) = cpp_demangle::Symbol::new(name) {
            if let Ok(d) = sym.demangle_with_options(&options) {
                return d;
            }
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_cpp_and_rust() {
        assert_eq!(
            demangle("_ZN2at6native9empty_cpuEN3c108ArrayRefIlEE"),
            "at::native::empty_cpu"
        );
        assert_eq!(demangle("_Znwm"), "operator new");
        assert_eq!(
            demangle("_ZN4core3fmt5write17h0123456789abcdefE"),
            "core::fmt::write"
        );
        assert_eq!(demangle("malloc"), "malloc");
        assert_eq!(demangle("_Zgarbage"), "_Zgarbage");
    }

    fn module(start: u64, end: u64, path: &str) -> Module {
        Module {
            start,
            end,
            file_offset: 0x1000,
            path: path.into(),
        }
    }

    #[test]
    fn locates_addresses_in_modules() {
        let modules = [
            module(0x1000, 0x2000, "/a.so"),
            module(0x5000, 0x6000, "/b.so"),
        ];
        let (m, off) = locate(&modules, 0x5010).unwrap();
        assert_eq!((m.path.as_str(), off), ("/b.so", 0x1010));
        assert!(locate(&modules, 0x2000).is_none());
        assert!(locate(&modules, 0x10).is_none());
        assert!(locate(&[], 0x10).is_none());
    }

    #[test]
    fn a_missing_file_gives_module_and_offset() {
        let mut s = Symbolizer::new();
        let f = s.resolve("/nonexistent/libgone.so", &[0x1234]);
        assert_eq!(f[0].label(), "libgone.so+0x1234");
        let text = std::env::temp_dir().join(format!("ramscope-not-elf-{}", std::process::id()));
        std::fs::write(&text, "hello").unwrap();
        let f = s.resolve(text.to_str().unwrap(), &[0x10]);
        assert!(f[0].function.is_none());
        assert!(s.problems[0].contains("not an ELF file"));
        let _ = std::fs::remove_file(text);
    }

    /// A function whose first instruction is its own (not code inlined into it, which DWARF
    /// would name first in a release build).
    #[inline(never)]
    fn symbolize_marker(x: u64) -> u64 {
        (x << 3) ^ (x >> 2)
    }

    /// This test binary names its own function: its executable mapping is in
    /// /proc/self/maps, and it was built with DWARF (debug builds and this workspace's release
    /// profile both keep it).
    #[test]
    fn names_a_function_of_this_binary() {
        assert_eq!(symbolize_marker(std::hint::black_box(8)), 66);
        let address = symbolize_marker as *const () as usize as u64 + 1;
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let mut modules: Vec<Module> = maps
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (range, perms, offset, path) = (f[0], f[1], f[2], *f.get(5)?);
                let (s, e) = range.split_once('-')?;
                perms.contains('x').then(|| Module {
                    start: u64::from_str_radix(s, 16).unwrap(),
                    end: u64::from_str_radix(e, 16).unwrap(),
                    file_offset: u64::from_str_radix(offset, 16).unwrap(),
                    path: path.into(),
                })
            })
            .collect();
        modules.sort_by_key(|m| m.start);
        let (m, offset) = locate(&modules, address).unwrap();
        let path = m.path.clone();
        let mut s = Symbolizer::new();
        let frame = &s.resolve(&path, &[offset])[0];
        let name = frame.function.as_deref().unwrap_or("");
        assert!(name.ends_with("symbolize_marker"), "{frame:?}");
        assert!(
            frame
                .file
                .as_deref()
                .unwrap_or("")
                .ends_with("symbolize.rs"),
            "{frame:?}"
        );
        assert!(
            frame.label().contains("trace/symbolize.rs:"),
            "{}",
            frame.label()
        );
    }

    /// A big library without DWARF (torch's CPU library, when the end-to-end environment
    /// is installed): named from its symbol table, in well under a second in release.
    /// `RAMSCOPE_BIG_LIBRARY=path cargo test --release -- --ignored big_library --nocapture`
    #[test]
    #[ignore]
    fn big_library() {
        let path = std::env::var("RAMSCOPE_BIG_LIBRARY").unwrap_or_else(|_| {
            let home = std::env::var("HOME").unwrap_or_default();
            format!("{home}/.cache/ramscope-e2e/venv/lib/python3.11/site-packages/torch/lib/libtorch_cpu.so")
        });
        let data = std::fs::read(&path).unwrap();
        let elf = object::File::parse(&*data).unwrap();
        // Return addresses 16 bytes into a few exported functions.
        let mut wanted = Vec::new();
        for s in elf
            .dynamic_symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.size() > 32)
            .step_by(5000)
            .take(20)
        {
            let section_offset = elf
                .segments()
                .find_map(|seg| {
                    let (off, len) = seg.file_range();
                    let a = seg.address();
                    (a <= s.address() && s.address() < a + len).then(|| s.address() - a + off)
                })
                .unwrap();
            wanted.push((section_offset + 16, demangle(s.name().unwrap())));
        }
        drop(elf);
        drop(data);
        let started = std::time::Instant::now();
        let mut sym = Symbolizer::new();
        let offsets: Vec<u64> = wanted.iter().map(|w| w.0).collect();
        let frames = sym.resolve(&path, &offsets);
        let took = started.elapsed();
        eprintln!("{} frames of {path} in {took:?}", frames.len());
        for (f, (_, name)) in frames.iter().zip(&wanted) {
            assert!(f.function.is_some(), "{f:?}");
            // An alias at the same address may name it; most are the symbol itself.
            eprintln!("  {} (exported as {name})", f.label());
        }
        assert!(wanted.len() >= 10);
    }
}
