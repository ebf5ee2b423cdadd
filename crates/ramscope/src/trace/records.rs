//! The records of a `.rstrace` file, one line at a time, into a [`TraceFile`].

use super::fields::{
    exactly, flag, hex, kind_and_rest, list, maybe, number, one, py_frame, unescape, Field, Keyed,
};
use super::format::{
    FormatError, Kind, Module, Origin, Peak, PythonFrames, Region, Sample, Site, Stack, Status,
    Total, TraceFile,
};

pub(super) struct Parser<'a> {
    pub file: &'a str,
    pub out: TraceFile,
    /// Records that may appear once, seen so far.
    pub seen: Vec<&'static str>,
    pub ended: bool,
}

impl<'a> Parser<'a> {
    pub fn new(file: &'a str) -> Parser<'a> {
        Parser {
            file,
            out: TraceFile {
                file_name: file.to_string(),
                ..TraceFile::default()
            },
            seen: Vec::new(),
            ended: false,
        }
    }

    pub fn error(&self, line: usize, what: String) -> FormatError {
        FormatError::Invalid {
            file: self.file.into(),
            line,
            what,
        }
    }

    pub fn record(&mut self, n: usize, line: &str) -> Result<(), FormatError> {
        let mut fields = line.split_ascii_whitespace();
        let name = fields.next().unwrap_or("");
        let rest: Vec<&str> = fields.collect();
        self.fields(name, &rest)
            .map_err(|what| self.error(n, format!("`{name}`: {what}")))
    }

    /// Marks a once-only record as seen.
    fn once(&mut self, name: &'static str) -> Field<()> {
        if self.seen.contains(&name) {
            return Err("appears twice".into());
        }
        self.seen.push(name);
        Ok(())
    }

    fn fields(&mut self, name: &str, f: &[&str]) -> Field<()> {
        let o = &mut self.out;
        match name {
            "pid" => {
                self.once("pid")?;
                self.out.pid = number(one(f)?)?;
            }
            "ppid" => {
                self.once("ppid")?;
                self.out.ppid = number(one(f)?)?;
            }
            "start_ticks" => {
                self.once("start_ticks")?;
                self.out.start_ticks = number(one(f)?)?;
            }
            "image" => {
                self.once("image")?;
                self.out.image = number(one(f)?)?;
            }
            "origin" => {
                self.once("origin")?;
                self.out.origin = Some(match one(f)? {
                    "start" => Origin::Start,
                    "fork" => Origin::Fork,
                    "exec" => Origin::Exec,
                    other => return Err(format!("unknown origin {other:?}")),
                });
            }
            "parent" => {
                self.once("parent")?;
                self.out.parent = match one(f)? {
                    "-" => None,
                    s => Some(unescape(s)?),
                };
            }
            "init_ns" => {
                self.once("init_ns")?;
                self.out.init_ns = number(one(f)?)?;
            }
            "flush_ns" => {
                self.once("flush_ns")?;
                self.out.flush_ns = number(one(f)?)?;
            }
            "final" => {
                self.once("final")?;
                self.out.is_final = flag(one(f)?)?;
            }
            "exe" => {
                self.once("exe")?;
                self.out.exe = unescape(one(f)?)?;
            }
            "comm" => {
                self.once("comm")?;
                self.out.comm = unescape(one(f)?)?;
            }
            "cmdline" => {
                self.once("cmdline")?;
                self.out.cmdline = f.iter().map(|a| unescape(a)).collect::<Field<_>>()?;
            }
            "python" => {
                self.once("python")?;
                self.out.python = match one(f)? {
                    "-" => None,
                    v => Some(unescape(v)?),
                };
            }
            "python_frames" => {
                self.once("python_frames")?;
                self.out.python_frames = match one(f)? {
                    "ok" => PythonFrames::Ok,
                    "unsupported" => PythonFrames::Unsupported,
                    "off" => PythonFrames::Off,
                    other => return Err(format!("unknown value {other:?}")),
                };
            }
            "option" => self.option(f)?,
            "status" => {
                self.once("status")?;
                let [rss, anon, file, shmem, hwm] = exactly::<5>(f)?;
                self.out.status = Some(Status {
                    vm_rss: maybe(rss)?,
                    rss_anon: maybe(anon)?,
                    rss_file: maybe(file)?,
                    rss_shmem: maybe(shmem)?,
                    vm_hwm: maybe(hwm)?,
                });
            }
            "total" => {
                let (kind, rest) = kind_and_rest(f)?;
                let k = Keyed::new(rest)?;
                let total = Total {
                    calls: k.get("calls")?,
                    bytes: k.get("bytes")?,
                    frees: k.get("frees")?,
                    freed: k.get("freed")?,
                    live: k.get("live")?,
                    peak: k.get("peak")?,
                };
                match kind {
                    Some(kind) => {
                        if o.totals.insert(kind, total).is_some() {
                            return Err(format!("kind {kind} appears twice"));
                        }
                    }
                    None => o.skipped += 1,
                }
            }
            "count" | "lost" => {
                let [what, value] = exactly::<2>(f)?;
                let what = unescape(what)?;
                let value: u64 = number(value)?;
                let map = if name == "count" {
                    &mut o.counts
                } else {
                    &mut o.lost
                };
                let slot = map.entry(what).or_default();
                *slot = slot.saturating_add(value);
            }
            "peak" => {
                self.once("peak")?;
                let k = Keyed::new(f)?;
                self.out.peak = Some(Peak {
                    ns: k.get("ns")?,
                    live: k.get("live")?,
                });
            }
            "sample" => {
                let [t, heap, anon, shared, file, shm, pinned, rss] = exactly::<8>(f)?;
                o.samples.push(Sample {
                    t_ns: number(t)?,
                    live: [
                        number(heap)?,
                        number(anon)?,
                        number(shared)?,
                        number(file)?,
                        number(shm)?,
                        number(pinned)?,
                    ],
                    vm_rss: maybe(rss)?,
                });
            }
            "module" => {
                let [start, end, offset, path] = exactly::<4>(f)?;
                let (start, end) = (hex(start)?, hex(end)?);
                if end < start {
                    return Err(format!("end {end:x} below start {start:x}"));
                }
                o.modules.push(Module {
                    start,
                    end,
                    file_offset: hex(offset)?,
                    path: unescape(path)?,
                });
            }
            "str" => {
                let [id, text] = exactly::<2>(f)?;
                let id = number(id)?;
                if o.strings.insert(id, unescape(text)?).is_some() {
                    return Err(format!("string {id} defined twice"));
                }
            }
            "stack" => {
                let [id, native, python] = exactly::<3>(f)?;
                let id = number(id)?;
                let stack = Stack {
                    native: list(native, hex)?,
                    python: list(python, py_frame)?,
                };
                if o.stacks.insert(id, stack).is_some() {
                    return Err(format!("stack {id} defined twice"));
                }
            }
            "site" => {
                let [stack, kind, rest @ ..] = f else {
                    return Err("expected a stack id, a kind and fields".into());
                };
                let stack = number(stack)?;
                let k = Keyed::new(rest)?;
                let site = |kind| -> Field<Site> {
                    Ok(Site {
                        stack,
                        kind,
                        calls: k.get("calls")?,
                        bytes: k.get("bytes")?,
                        frees: k.get("frees")?,
                        live: k.get("live")?,
                        peak: k.get("peak")?,
                        at_peak: k.get("at_peak")?,
                        resident: maybe(k.raw("resident")?)?,
                        sampled: flag(k.raw("sampled")?)?,
                    })
                };
                match Kind::from_name(kind) {
                    Some(kind) => o.sites.push(site(kind)?),
                    None => o.skipped += 1,
                }
            }
            "region" => {
                let [kind, start, len, rest @ ..] = f else {
                    return Err("expected a kind, a start, a length and fields".into());
                };
                let k = Keyed::new(rest)?;
                let region = Region {
                    kind: Kind::Heap,
                    start: hex(start)?,
                    len: number(len)?,
                    stack: number(k.raw("stack")?)?,
                    rounded: k.get("rounded")?,
                    resident: maybe(k.raw("resident")?)?,
                    path: maybe(k.raw("path")?)?,
                };
                match Kind::from_name(kind) {
                    Some(kind) => o.regions.push(Region { kind, ..region }),
                    None => o.skipped += 1,
                }
            }
            "end" => {
                if !f.is_empty() {
                    return Err("takes no fields".into());
                }
                self.ended = true;
            }
            // A record type a newer writer added.
            _ => o.skipped += 1,
        }
        Ok(())
    }

    fn option(&mut self, f: &[&str]) -> Field<()> {
        let [name, value] = exactly::<2>(f)?;
        let o = &mut self.out.options;
        let (slot, tag) = match name {
            "sample_bytes" => (Some(&mut o.sample_bytes), "option sample_bytes"),
            "min_size" => (Some(&mut o.min_size), "option min_size"),
            "native_depth" => {
                let depth: u32 = number(value)?;
                if o.native_depth.replace(depth).is_some() {
                    return Err("native_depth appears twice".into());
                }
                return Ok(());
            }
            _ => (None, ""),
        };
        match slot {
            Some(slot) => {
                if slot.replace(number(value)?).is_some() {
                    return Err(format!("{tag} appears twice"));
                }
            }
            // An option a newer writer added.
            None => self.out.skipped += 1,
        }
        Ok(())
    }
}
