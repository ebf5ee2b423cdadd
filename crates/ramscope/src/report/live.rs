//! `watch`'s live view: one frame per sample, fitted to the terminal, whose columns keep their
//! width from frame to frame; and the escape sequences that draw a frame in place.
//!
//! A sample alone does not say enough: only samples that read `smaps` carry a process's
//! categories, and a trend needs the past. So the view remembers each process's last category
//! split and when it was read, its RSS over the last half minute, and the tree's peaks so far.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::IsTerminal;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::{num, table, Cell};
use crate::attribute::Category;
use crate::proc::Pid;
use crate::record::Sample;
use crate::snapshot::ProcessSnapshot;
use crate::text::clean;
use crate::units::{bytes, signed_bytes};

/// Enters the alternate screen (the user's scrollback stays as it was) and hides the cursor.
pub const ENTER: &str = "\x1b[?1049h\x1b[?25l";
/// Shows the cursor and leaves the alternate screen, which brings the user's screen back.
pub const LEAVE: &str = "\x1b[?25h\x1b[?1049l";

/// The trend is the change of RSS over this long.
const TREND_S: f64 = 30.0;
/// A change over less time than this says nothing yet.
const MIN_TREND_S: f64 = 5.0;
/// Categories kept per process: more never fit on one line.
const CATEGORIES_KEPT: usize = 4;
/// Narrower than this, the categories go on a line of their own under each process.
const MIN_CATEGORY_COLUMN: usize = 40;
/// Process titles are cut to this many columns.
const PROCESS_MAX: usize = 16;
/// The table's gap between columns, and the indent of its lines below a row.
const GAP: usize = 2;
const DETAIL_INDENT: usize = 4;

/// The table's columns, in the order shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Pid,
    Role,
    Process,
    Rss,
    Trend,
    Pss,
    Peak,
}

impl Col {
    const ALL: [Col; 7] = [
        Col::Pid,
        Col::Role,
        Col::Process,
        Col::Rss,
        Col::Trend,
        Col::Pss,
        Col::Peak,
    ];

    fn header(self) -> &'static str {
        match self {
            Col::Pid => "PID",
            Col::Role => "role",
            Col::Process => "process",
            Col::Rss => "RSS",
            Col::Trend => "in 30 s",
            Col::Pss => "PSS",
            Col::Peak => "RSS peak",
        }
    }

    /// The width a column starts with: its header, and for sizes the widest that
    /// [`bytes`] writes below a PiB (`1023 MiB`, `+1023 MiB`), so a value that grows does not
    /// move the columns after it.
    fn start_width(self) -> usize {
        match self {
            Col::Rss | Col::Pss | Col::Peak => 8,
            Col::Trend => 9,
            _ => self.header().width(),
        }
    }

    fn right_aligned(self) -> bool {
        !matches!(self, Col::Role | Col::Process)
    }
}

/// What is remembered of one process between samples.
#[derive(Debug, Default)]
struct Seen {
    /// (t_s, RSS) about once a second, oldest first: the newest point at least
    /// [`TREND_S`] old, then everything after it.
    rss: VecDeque<(f64, u64)>,
    split: Option<Split>,
}

/// A process's last category split: its largest categories by PSS, and when it was read.
#[derive(Debug)]
struct Split {
    t_s: f64,
    largest: Vec<(Category, u64)>,
}

/// Where the categories go in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A last column this wide.
    Column(usize),
    /// A line under each process, this wide.
    Below(usize),
}

/// The state of one `watch` session's live view.
#[derive(Debug)]
pub struct LiveView {
    seen: BTreeMap<Pid, Seen>,
    /// The tree's largest PSS and RSS sum so far, and when (t_s).
    peak_pss: (u64, f64),
    peak_rss: (u64, f64),
    /// Per column of [`Col::ALL`]: widths only grow, so columns stay put between frames.
    widths: [usize; Col::ALL.len()],
}

impl Default for LiveView {
    fn default() -> Self {
        LiveView::new()
    }
}

impl LiveView {
    pub fn new() -> LiveView {
        LiveView {
            seen: BTreeMap::new(),
            peak_pss: (0, 0.0),
            peak_rss: (0, 0.0),
            widths: Col::ALL.map(Col::start_width),
        }
    }

    /// Takes in `s` and returns the frame to show: at most `height` lines of at most `width`
    /// columns, every process title cleaned.
    pub fn frame(&mut self, s: &Sample, width: usize, height: usize) -> Vec<String> {
        self.remember(s);
        let (width, height) = (width.max(20), height.max(1));
        let rows: Vec<[String; Col::ALL.len()]> = s
            .snapshot
            .processes
            .iter()
            .map(|p| self.cells(p, s.t_s))
            .collect();
        for row in &rows {
            for (w, (cell, col)) in self.widths.iter_mut().zip(row.iter().zip(Col::ALL)) {
                let cap = if col == Col::Process {
                    PROCESS_MAX
                } else {
                    usize::MAX
                };
                *w = (*w).max(cell.width().min(cap));
            }
        }
        let (cols, place) = self.plan(width);

        let mut lines = vec![self.status_line(s, width), self.peak_line(width)];
        if height >= 10 {
            lines.push(String::new());
        }
        // The table's header and rule take two lines; each process one, or two when its
        // categories go below it.
        let per_process = if matches!(place, Place::Below(_)) {
            2
        } else {
            1
        };
        let room = height.saturating_sub(lines.len() + 2);
        let n = rows.len();
        let shown = if n * per_process <= room {
            n
        } else {
            room.saturating_sub(1) / per_process
        };

        let mut headers: Vec<&str> = cols.iter().map(|c| c.header()).collect();
        if matches!(place, Place::Column(_)) {
            headers.push("largest categories (PSS)");
        }
        let mut t = table(&headers);
        t.set_width(width);
        for (p, row) in s.snapshot.processes.iter().zip(&rows).take(shown) {
            let mut cells: Vec<Cell> = cols
                .iter()
                .map(|&c| {
                    let w = self.widths[c as usize];
                    let text = pad(&fit(&row[c as usize], w), w, c.right_aligned());
                    if c.right_aligned() {
                        num(text)
                    } else {
                        Cell::new(text)
                    }
                })
                .collect();
            let split = self.seen.get(&p.pid).and_then(|seen| seen.split.as_ref());
            match place {
                Place::Column(w) => {
                    cells.push(Cell::new(categories(split, s.t_s, w, false)));
                    t.add_row(cells);
                }
                Place::Below(w) => {
                    t.add_row_with_detail(cells, vec![categories(split, s.t_s, w, true)]);
                }
            }
        }
        lines.extend(t.to_string().lines().map(str::to_string));
        match n - shown {
            0 => {}
            1 => lines.push("… 1 more process".into()),
            more => lines.push(format!("… {more} more processes")),
        }
        // The layout above fits; cutting here keeps the promise whatever it missed.
        lines
            .into_iter()
            .take(height)
            .map(|l| fit(&l, width))
            .collect()
    }

    fn remember(&mut self, s: &Sample) {
        let t = s.t_s;
        let total = &s.snapshot.total;
        if total.pss_bytes > self.peak_pss.0 {
            self.peak_pss = (total.pss_bytes, t);
        }
        if total.rss_sum_bytes > self.peak_rss.0 {
            self.peak_rss = (total.rss_sum_bytes, t);
        }
        let alive: BTreeSet<Pid> = s.snapshot.processes.iter().map(|p| p.pid).collect();
        self.seen.retain(|pid, _| alive.contains(pid));
        for p in &s.snapshot.processes {
            let seen = self.seen.entry(p.pid).or_default();
            // Only samples that read smaps carry categories; the others keep the last split.
            if !p.categories.is_empty() {
                let mut largest: Vec<(Category, u64)> = p
                    .categories
                    .iter()
                    .filter(|(_, u)| u.pss_bytes > 0)
                    .map(|(&c, u)| (c, u.pss_bytes))
                    .collect();
                largest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                largest.truncate(CATEGORIES_KEPT);
                seen.split = Some(Split { t_s: t, largest });
            }
            // A point a second is enough for a 30-s trend, and bounds what is kept whatever
            // the interval.
            if seen.rss.back().map_or(true, |&(last, _)| t - last >= 1.0) {
                seen.rss.push_back((t, p.rss_bytes));
            }
            while seen.rss.len() >= 2 && seen.rss[1].0 <= t - TREND_S {
                seen.rss.pop_front();
            }
        }
    }

    /// One process's cells, in the order of [`Col::ALL`], uncut.
    fn cells(&self, p: &ProcessSnapshot, now: f64) -> [String; Col::ALL.len()] {
        let trend = self
            .seen
            .get(&p.pid)
            .map_or_else(String::new, |seen| trend(seen, now, p.rss_bytes));
        [
            p.pid.to_string(),
            p.role.name().to_string(),
            clean(&p.name).into_owned(),
            bytes(p.rss_bytes),
            trend,
            bytes(p.pss_bytes),
            bytes(p.peak_rss_bytes),
        ]
    }

    /// Which columns fit `width`, and where the categories go.
    fn plan(&self, width: usize) -> (Vec<Col>, Place) {
        let used = |cols: &[Col]| {
            cols.iter().map(|&c| self.widths[c as usize]).sum::<usize>()
                + GAP * cols.len().saturating_sub(1)
        };
        let without = |gone: &[Col]| -> Vec<Col> {
            Col::ALL.into_iter().filter(|c| !gone.contains(c)).collect()
        };
        // Wide enough: the categories in a column of their own, the kernel's peak if it fits.
        for gone in [&[][..], &[Col::Peak]] {
            let cols = without(gone);
            let rest = width.saturating_sub(used(&cols) + GAP);
            if rest >= MIN_CATEGORY_COLUMN {
                return (cols, Place::Column(rest));
            }
        }
        // Narrower: the categories go under each process, and columns go, the least needed
        // first, until the rest fits.
        let mut cols = without(&[Col::Peak]);
        for gone in [Col::Role, Col::Pss, Col::Trend] {
            if used(&cols) <= width {
                break;
            }
            cols.retain(|&c| c != gone);
        }
        (cols, Place::Below(width.saturating_sub(DETAIL_INDENT)))
    }

    fn status_line(&self, s: &Sample, width: usize) -> String {
        let n = s.snapshot.processes.len();
        let base = format!(
            "ramscope watch  {}  {n} {}  PSS {}  RSS sum {}",
            clock(s.t_s),
            if n == 1 { "process" } else { "processes" },
            bytes(s.snapshot.total.pss_bytes),
            bytes(s.snapshot.total.rss_sum_bytes),
        );
        let cost = format!("  sampler {:.2} ms CPU", s.overhead.cpu_s * 1e3);
        // What matters least goes first when the line is too long.
        [
            format!("{base}{cost}  Ctrl-C stops"),
            format!("{base}  Ctrl-C stops"),
        ]
        .into_iter()
        .find(|l| l.width() <= width)
        .unwrap_or_else(|| fit(&base, width))
    }

    fn peak_line(&self, width: usize) -> String {
        let ((pss, pss_t), (rss, rss_t)) = (self.peak_pss, self.peak_rss);
        let long = format!(
            "tree peak so far: PSS {} at {}, RSS sum {} at {}",
            bytes(pss),
            clock(pss_t),
            bytes(rss),
            clock(rss_t)
        );
        if long.width() <= width {
            return long;
        }
        let short = format!(
            "peak: PSS {} at {}, RSS {} at {}",
            bytes(pss),
            clock(pss_t),
            bytes(rss),
            clock(rss_t)
        );
        fit(&short, width)
    }
}

/// RSS now against RSS about [`TREND_S`] ago: `+12.0 MiB`, `steady`, or nothing yet.
fn trend(seen: &Seen, now: f64, rss: u64) -> String {
    let Some(&(then, old)) = seen.rss.front() else {
        return String::new();
    };
    if now - then < MIN_TREND_S {
        return String::new();
    }
    let delta = (i128::from(rss) - i128::from(old)).clamp(i64::MIN.into(), i64::MAX.into());
    // Allocators and the page cache move RSS by a little all the time.
    let noise = (1u64 << 20).max(rss / 1000);
    if delta.unsigned_abs() < u128::from(noise) {
        "steady".into()
    } else {
        signed_bytes(delta as i64)
    }
}

/// A process's largest categories that fit `room` columns, and how old the split is:
/// `heap 1.20 GiB, code.torch 300 MiB (3 s ago)`. `long` names the measure too, for the
/// line under a row that has no header.
fn categories(split: Option<&Split>, now: f64, room: usize, long: bool) -> String {
    let Some(split) = split else {
        return fit("categories not read yet", room);
    };
    let age = ago(now - split.t_s);
    let suffix = if long {
        format!(" (PSS, {age})")
    } else {
        format!(" ({age})")
    };
    let items: Vec<String> = split
        .largest
        .iter()
        .map(|(c, v)| format!("{} {}", c.name(), bytes(*v)))
        .collect();
    let Some(first) = items.first() else {
        return fit(&format!("nothing resident{suffix}"), room);
    };
    let mut text = first.clone();
    for item in &items[1..] {
        let longer = format!("{text}, {item}");
        if longer.width() + suffix.width() > room {
            break;
        }
        text = longer;
    }
    fit(&format!("{text}{suffix}"), room)
}

/// Elapsed time as a clock: `0:07`, `12:34`, `1:02:03`; its width changes rarely.
fn clock(t_s: f64) -> String {
    let s = if t_s.is_finite() {
        t_s.max(0.0) as u64
    } else {
        0
    };
    if s < 3600 {
        format!("{}:{:02}", s / 60, s % 60)
    } else {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
}

/// `3 s ago`, `2 min ago`, `1 h ago`.
fn ago(d_s: f64) -> String {
    let s = if d_s.is_finite() {
        d_s.max(0.0).round() as u64
    } else {
        0
    };
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// `s` in at most `width` columns, with `…` where it was cut.
pub fn fit(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// `s` padded with spaces to `width` columns, on the left when `right`.
fn pad(s: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(s.width()));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

/// What replaces the screen's content with `lines` in place: the cursor home, each line then
/// erase-to-end-of-line, then erase below. Clearing the whole screen first would flicker.
pub fn paint(lines: &[String], width: usize, height: usize) -> String {
    let n = lines.len().min(height);
    let mut out = String::from("\x1b[H");
    for (i, line) in lines.iter().take(n).enumerate() {
        out.push_str(line);
        // A line that fills its row leaves the cursor on the last column, which
        // erase-to-end-of-line would erase; and such a row has nothing left to erase.
        if line.width() < width {
            out.push_str("\x1b[K");
        }
        if i + 1 < n {
            out.push_str("\r\n");
        }
    }
    // Below the frame, what a longer frame left. A frame as high as the screen has nothing
    // below it, and a line feed after its last row would scroll its first away.
    if n < height {
        if n > 0 {
            out.push_str("\r\n");
        }
        out.push_str("\x1b[J");
    }
    out
}

/// The terminal's height: stdout's when it is one, else `$LINES`, else 24.
pub fn terminal_height() -> usize {
    if std::io::stdout().is_terminal() {
        // SAFETY: TIOCGWINSZ fills a winsize struct; the fd is our stdout.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 && ws.ws_row >= 2 {
            return usize::from(ws.ws_row);
        }
    }
    std::env::var("LINES")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| (2..=1000).contains(&c))
        .unwrap_or(24)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::roles::{Engine, Role};
    use crate::record::SampleCost;
    use crate::snapshot::{CategoryUsage, TreeSnapshot};

    const MIB: u64 = 1 << 20;

    fn process(
        pid: Pid,
        role: Role,
        name: &str,
        rss: u64,
        split: &[(Category, u64)],
    ) -> ProcessSnapshot {
        ProcessSnapshot {
            pid,
            ppid: 1,
            role,
            engine: Engine::Vllm,
            name: name.into(),
            cmdline: name.into(),
            rss_bytes: rss,
            pss_bytes: rss / 2,
            uss_bytes: 0,
            swap_bytes: 0,
            swap_pss_bytes: 0,
            pss_anon_bytes: 0,
            pss_file_bytes: 0,
            pss_shmem_bytes: 0,
            peak_rss_bytes: rss,
            threads: 1,
            uses_gpu: false,
            rss_anon_bytes: 0,
            rss_file_bytes: 0,
            rss_shmem_bytes: 0,
            categories: split
                .iter()
                .map(|&(c, v)| {
                    let u = CategoryUsage {
                        rss_bytes: v,
                        pss_bytes: v,
                        ..Default::default()
                    };
                    (c, u)
                })
                .collect(),
            mappings: vec![],
            reconciliation: Default::default(),
            read: None,
        }
    }

    fn sample(t_s: f64, processes: Vec<ProcessSnapshot>) -> Sample {
        Sample {
            t_s,
            snapshot: TreeSnapshot::new("t".into(), processes, vec![]),
            overhead: SampleCost {
                cpu_s: 0.000_21,
                ..Default::default()
            },
        }
    }

    /// A vLLM-like tree at `t_s` whose sizes swing over four orders of magnitude, split
    /// every tenth second.
    fn tree(t_s: f64) -> Sample {
        let step = t_s as u64;
        let size = [700 * 1024, 5 * MIB, 900 * MIB, 12 << 30][(step % 4) as usize];
        let split: &[(Category, u64)] = if step % 10 == 0 {
            &[
                (Category::Heap, size / 2),
                (Category::CodeTorch, 300 * MIB),
                (Category::Pinned, 2 << 30),
            ]
        } else {
            &[]
        };
        sample(
            t_s,
            vec![
                process(4_194_000, Role::ApiServer, "python3", size, split),
                process(77, Role::EngineCore, "VLLM::EngineCore", size * 2, split),
                process(
                    78,
                    Role::Worker,
                    "VllmWorker TP0 with a long title",
                    size,
                    &[],
                ),
            ],
        )
    }

    fn rule_and_header(frame: &[String]) -> (String, String) {
        let i = frame
            .iter()
            .position(|l| l.starts_with('─'))
            .expect("a rule under the header");
        (frame[i - 1].clone(), frame[i].clone())
    }

    #[test]
    fn columns_keep_their_width_while_values_change() {
        for width in [80, 100, 160] {
            let mut view = LiveView::new();
            let frames: Vec<Vec<String>> = (0..40)
                .map(|t| view.frame(&tree(t as f64), width, 30))
                .collect();
            let first = rule_and_header(&frames[0]);
            for f in &frames {
                assert!(f.len() <= 30, "{f:#?}");
                for l in f {
                    assert!(l.width() <= width, "{} > {width}: {l}", l.width());
                }
                assert_eq!(rule_and_header(f), first, "at {width}: {f:#?}");
            }
            let last = frames.last().unwrap().join("\n");
            assert!(last.contains("heap 450 MiB"), "{last}");
            assert!(last.contains("VLLM::EngineCore"), "{last}");
            assert!(last.contains("VllmWorker TP0 …"), "{last}");
            assert!(last.contains("tree peak so far: PSS"), "{last}");
        }
    }

    #[test]
    fn narrow_terminals_put_categories_under_each_process() {
        let mut view = LiveView::new();
        let f = view.frame(&tree(0.0), 80, 30).join("\n");
        assert!(
            f.contains("\n    pinned 2.00 GiB, code.torch 300 MiB, heap 350 KiB (PSS, 0 s ago)"),
            "{f}"
        );
        let f = view.frame(&tree(3.0), 160, 30).join("\n");
        assert!(f.contains("largest categories (PSS)"), "{f}");
        assert!(
            f.contains("pinned 2.00 GiB, code.torch 300 MiB, heap 350 KiB (3 s ago)"),
            "{f}"
        );
    }

    #[test]
    fn rows_stop_at_the_terminal_height() {
        let many: Vec<ProcessSnapshot> = (0..50)
            .map(|i| process(100 + i, Role::CompileWorker, "inductor", 64 * MIB, &[]))
            .collect();
        let mut view = LiveView::new();
        for (height, width) in [(30, 100), (30, 200), (5, 80)] {
            let f = view.frame(&sample(1.0, many.clone()), width, height);
            assert_eq!(f.len(), height, "{f:#?}");
            let last = f.last().unwrap();
            assert!(
                last.starts_with("… ") && last.ends_with(" more processes"),
                "{f:#?}"
            );
        }
    }

    #[test]
    fn the_trend_is_the_change_over_half_a_minute() {
        let mut view = LiveView::new();
        let mut last = Vec::new();
        for i in 0..=120u32 {
            let t = f64::from(i) * 0.5;
            // 1 MiB a second for the first 45 s, then flat.
            let rss = (100 + (t.min(45.0) as u64)) * MIB;
            let grow = process(10, Role::Worker, "grows", rss, &[]);
            let flat = process(
                11,
                Role::Worker,
                "flat",
                64 * MIB + u64::from(i % 2) * 4096,
                &[],
            );
            last = view.frame(&sample(t, vec![grow, flat]), 120, 30);
            if t == 2.0 {
                assert!(!last.join("\n").contains("steady"), "too early: {last:#?}");
            }
            if t == 40.0 {
                assert!(last.join("\n").contains("+30.0 MiB"), "{last:#?}");
            }
        }
        let text = last.join("\n");
        assert!(
            text.contains("+15.0 MiB") && text.contains("steady"),
            "{text}"
        );
        assert_eq!(view.seen[&10].rss.len(), 31);
    }

    #[test]
    fn hostile_titles_are_escaped_and_peaks_say_when() {
        let mut view = LiveView::new();
        view.frame(
            &sample(5.0, vec![process(9, Role::Other, "x", 900 * MIB, &[])]),
            100,
            30,
        );
        let f = view.frame(
            &sample(
                70.0,
                vec![process(9, Role::Other, "\x1b]0;pwned\x07", MIB, &[])],
            ),
            100,
            30,
        );
        let text = f.join("\n");
        assert!(
            !text.contains('\x1b') && text.contains("\\x1b]0;pwned"),
            "{text}"
        );
        assert!(
            text.contains("tree peak so far: PSS 450 MiB at 0:05, RSS sum 900 MiB at 0:05"),
            "{text}"
        );
        assert!(
            text.starts_with("ramscope watch  1:10  1 process  PSS"),
            "{text}"
        );
    }

    #[test]
    fn paint_overwrites_in_place() {
        let lines = vec!["abc".to_string(), "x".repeat(10)];
        assert_eq!(
            paint(&lines, 10, 5),
            "\x1b[Habc\x1b[K\r\nxxxxxxxxxx\r\n\x1b[J"
        );
        // As high as the screen: nothing below to clear, no line feed to scroll it.
        assert_eq!(paint(&lines, 10, 2), "\x1b[Habc\x1b[K\r\nxxxxxxxxxx");
        assert_eq!(paint(&[], 10, 2), "\x1b[H\x1b[J");
    }

    #[test]
    fn fit_cuts_at_display_width() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("日本語テキスト", 5), "日本…");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(ago(61.0), "1 min ago");
    }
}
