//! Terminal tables that fit the terminal.
//!
//! A general table crate wraps any cell that does not fit, so at 80 columns it printed
//! `api-serve|r` and `256 | MiB`. Here a cell is wrapped only where its column is marked as
//! free text, and only at spaces; numbers, units and names are never split. When even that
//! does not fit, the free-text columns move below their row, indented, where they have the
//! whole width. Every cell is passed through [`crate::text::clean`], since process titles,
//! command lines and config values are written by others.

use std::fmt;
use std::io::IsTerminal;

use unicode_width::UnicodeWidthStr;

use crate::text::clean;

/// Between two columns.
const GAP: &str = "  ";
/// A free-text column narrower than this moves below the row instead.
const MIN_TEXT_WIDTH: usize = 16;
/// Detail lines below a row start here.
const DETAIL_INDENT: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One cell: its text and alignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    text: String,
    align: Align,
}

impl Cell {
    pub fn new(text: impl fmt::Display) -> Cell {
        Cell {
            text: clean(&text.to_string()).into_owned(),
            align: Align::Left,
        }
    }

    pub fn right(mut self) -> Cell {
        self.align = Align::Right;
        self
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::new(s)
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::new(s)
    }
}

#[derive(Debug, Clone)]
struct Row {
    cells: Vec<Cell>,
    /// Lines shown below the row, indented and wrapped to the width.
    detail: Vec<String>,
}

/// A table of rows under a header.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    /// Columns whose text may wrap (at spaces) or move below the row.
    text_columns: Vec<bool>,
    /// Columns left out, last first, when the table cannot fit otherwise.
    optional_columns: Vec<bool>,
    rows: Vec<Row>,
    width: usize,
}

/// The width to fit: the terminal's when stdout is one, else `$COLUMNS`, else 80.
pub fn terminal_width() -> usize {
    if std::io::stdout().is_terminal() {
        // SAFETY: TIOCGWINSZ fills a winsize struct; the fd is our stdout.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 && ws.ws_col >= 20 {
            return ws.ws_col as usize;
        }
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| (20..=1000).contains(&c))
        .unwrap_or(80)
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            text_columns: vec![false; header.len()],
            optional_columns: vec![false; header.len()],
            rows: Vec::new(),
            width: terminal_width(),
        }
    }

    pub fn set_width(&mut self, width: usize) -> &mut Table {
        self.width = width.max(20);
        self
    }

    pub fn width(&self) -> usize {
        self.width
    }

    /// Marks column `i` as free text: it wraps at spaces, or moves below the row.
    pub fn text_column(&mut self, i: usize) -> &mut Table {
        if let Some(c) = self.text_columns.get_mut(i) {
            *c = true;
        }
        self
    }

    /// Marks column `i` as one a narrow terminal can do without: it is left out (the last
    /// such column first) when moving text below the rows is not enough.
    pub fn optional_column(&mut self, i: usize) -> &mut Table {
        if let Some(c) = self.optional_columns.get_mut(i) {
            *c = true;
        }
        self
    }

    pub fn add_row(&mut self, cells: Vec<Cell>) -> &mut Table {
        self.add_row_with_detail(cells, Vec::new())
    }

    /// A row with lines below it (a formula, a source), wrapped to the table's width.
    pub fn add_row_with_detail(&mut self, mut cells: Vec<Cell>, detail: Vec<String>) -> &mut Table {
        cells.resize(self.header.len(), Cell::new(""));
        let detail = detail.iter().map(|d| clean(d).into_owned()).collect();
        self.rows.push(Row { cells, detail });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Column widths, which text columns go below their rows, and which optional columns
    /// are left out.
    fn layout(&self) -> (Vec<usize>, Vec<bool>, Vec<bool>) {
        let n = self.header.len();
        let mut natural: Vec<usize> = self.header.iter().map(|h| h.width()).collect();
        // A text column narrower than its longest word would have to cut a name in two.
        let mut least: Vec<usize> = self
            .header
            .iter()
            .map(|h| {
                h.split(' ')
                    .map(|w| w.width())
                    .max()
                    .unwrap_or(0)
                    .max(MIN_TEXT_WIDTH)
            })
            .collect();
        for row in &self.rows {
            for (i, c) in row.cells.iter().enumerate() {
                natural[i] = natural[i].max(c.text.width());
                let longest = words(&c.text).iter().map(|w| w.width()).max().unwrap_or(0);
                least[i] = least[i].max(longest);
            }
        }
        let mut below = vec![false; n];
        let mut hidden = vec![false; n];
        loop {
            let shown: Vec<usize> = (0..n).filter(|&i| !below[i] && !hidden[i]).collect();
            let gaps = GAP.len() * shown.len().saturating_sub(1);
            let fixed: usize = shown
                .iter()
                .filter(|&&i| !self.text_columns[i])
                .map(|&i| natural[i])
                .sum();
            let text: Vec<usize> = shown
                .iter()
                .copied()
                .filter(|&i| self.text_columns[i])
                .collect();
            let wanted: usize = text.iter().map(|&i| natural[i]).sum();
            if fixed + gaps + wanted <= self.width {
                return (natural, below, hidden);
            }
            if text.is_empty() {
                // Only optional columns can still go; without any, the table stays too wide.
                match shown.iter().rev().find(|&&i| self.optional_columns[i]) {
                    Some(&i) => {
                        hidden[i] = true;
                        continue;
                    }
                    None => return (natural, below, hidden),
                }
            }
            let room = self.width.saturating_sub(fixed + gaps);
            let needed: usize = text.iter().map(|&i| least[i].min(natural[i])).sum();
            if room >= needed {
                // Each text column gets its least width, then the rest of the room in
                // proportion to what it still wants.
                let mut widths = natural.clone();
                let spare = room - needed;
                let extra_wanted: usize = text
                    .iter()
                    .map(|&i| natural[i] - least[i].min(natural[i]))
                    .sum();
                for &i in &text {
                    let base = least[i].min(natural[i]);
                    let extra = (natural[i] - base) * spare / extra_wanted.max(1);
                    widths[i] = base + extra;
                }
                return (widths, below, hidden);
            }
            // Too narrow to read: the widest text column goes below its row.
            if let Some(&i) = text.iter().max_by_key(|&&i| natural[i]) {
                below[i] = true;
            }
        }
    }
}

/// A whole report made to fit `width`: lines that are longer (prose: headers, notes) wrap at
/// spaces, their continuation indented under the line's own indent plus two; table rows,
/// whose columns are two spaces apart, were laid out to fit already and pass unchanged.
pub fn fit_lines(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        // Table rows (columns two spaces apart) were laid out already; re-wrapping them
        // would scramble their columns.
        if line.width() <= width || line.trim_start().contains("  ") || line.starts_with('─') {
            out.push_str(line);
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        let first = wrap(line.trim_start_matches(' '), width.saturating_sub(indent));
        let head = first.first().cloned().unwrap_or_default();
        out.push_str(&" ".repeat(indent));
        out.push_str(&head);
        let rest = first[1..].join(" ");
        let cont = indent + 2;
        for l in wrap(&rest, width.saturating_sub(cont))
            .iter()
            .filter(|_| !rest.is_empty())
        {
            out.push('\n');
            out.push_str(&" ".repeat(cont));
            out.push_str(l);
        }
    }
    out
}

/// Splits `text` into lines of at most `width` columns at spaces; a word wider than the
/// line is cut only when nothing else fits.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in words(text) {
        let word = word.as_str();
        let need = if line.is_empty() { 0 } else { 1 } + word.width();
        if line.width() + need <= width {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        let mut rest = word;
        while rest.width() > width {
            let cut = cut_at_width(rest, width);
            lines.push(rest[..cut].to_string());
            rest = &rest[cut..];
        }
        line.push_str(rest);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// The words of `text`, a number kept together with the unit after it (`1.40 GiB`), so that
/// no wrap separates them.
fn words(text: &str) -> Vec<String> {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut out: Vec<String> = Vec::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let unit = word.trim_end_matches([',', '.', ';', ':', ')']);
        let after_number = out
            .last()
            .is_some_and(|prev| prev.ends_with(|c: char| c.is_ascii_digit()));
        match out.last_mut() {
            Some(prev) if after_number && UNITS.contains(&unit) => {
                prev.push(' ');
                prev.push_str(word);
            }
            _ => out.push(word.to_string()),
        }
    }
    out
}

/// The byte index where `s` reaches `width` columns (at least one character).
fn cut_at_width(s: &str, width: usize) -> usize {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > width && i > 0 {
            return i;
        }
        used += w;
    }
    s.len()
}

fn pad(out: &mut String, text: &str, width: usize, align: Align) {
    let fill = width.saturating_sub(text.width());
    if align == Align::Right {
        out.extend(std::iter::repeat(' ').take(fill));
        out.push_str(text);
    } else {
        out.push_str(text);
        out.extend(std::iter::repeat(' ').take(fill));
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (widths, below, hidden) = self.layout();
        let shown: Vec<usize> = (0..self.header.len())
            .filter(|&i| !below[i] && !hidden[i])
            .collect();
        let write_line = |f: &mut fmt::Formatter<'_>, cells: Vec<(String, usize, Align)>| {
            let mut line = String::new();
            for (k, (text, width, align)) in cells.iter().enumerate() {
                if k > 0 {
                    line.push_str(GAP);
                }
                pad(&mut line, text, *width, *align);
            }
            writeln!(f, "{}", line.trim_end())
        };
        // Headers of text columns wrap like their cells; the others fit by construction.
        let header: Vec<Vec<String>> = shown
            .iter()
            .map(|&i| wrap(&self.header[i], widths[i].max(1)))
            .collect();
        for l in 0..header.iter().map(Vec::len).max().unwrap_or(1) {
            write_line(
                f,
                shown
                    .iter()
                    .zip(&header)
                    .map(|(&i, lines)| {
                        (
                            lines.get(l).cloned().unwrap_or_default(),
                            widths[i],
                            Align::Left,
                        )
                    })
                    .collect(),
            )?;
        }
        write_line(
            f,
            shown
                .iter()
                .map(|&i| ("─".repeat(widths[i]), widths[i], Align::Left))
                .collect(),
        )?;
        for row in &self.rows {
            // Each shown cell as lines: text columns wrap, the rest are one line.
            let cells: Vec<Vec<String>> = shown
                .iter()
                .map(|&i| {
                    let text = &row.cells[i].text;
                    if self.text_columns[i] && text.width() > widths[i] {
                        wrap(text, widths[i])
                    } else {
                        vec![text.clone()]
                    }
                })
                .collect();
            let height = cells.iter().map(Vec::len).max().unwrap_or(1);
            for l in 0..height {
                write_line(
                    f,
                    shown
                        .iter()
                        .zip(&cells)
                        .map(|(&i, lines)| {
                            let text = lines.get(l).cloned().unwrap_or_default();
                            (text, widths[i], row.cells[i].align)
                        })
                        .collect(),
                )?;
            }
            let moved = (0..self.header.len())
                .filter(|&i| below[i] && !row.cells[i].text.is_empty())
                .map(|i| row.cells[i].text.clone());
            for text in moved.chain(row.detail.iter().cloned()) {
                for line in wrap(&text, self.width.saturating_sub(DETAIL_INDENT)) {
                    writeln!(f, "{}{line}", " ".repeat(DETAIL_INDENT))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(width: usize) -> String {
        let mut t = Table::new(&["PID", "role", "process", "PSS"]);
        t.set_width(width).text_column(2);
        t.add_row(vec![
            Cell::new(4242).right(),
            Cell::new("api-server"),
            Cell::new("python -m vllm.entrypoints.openai.api_server --model /models/qwen3-8b --max-model-len 5120"),
            Cell::new("672.7 MiB").right(),
        ]);
        t.add_row_with_detail(
            vec![
                Cell::new(7).right(),
                Cell::new("engine-core"),
                Cell::new("VLLM::EngineCore"),
                Cell::new("1.77 GiB").right(),
            ],
            vec!["2 × 4 layers × 8 KV heads × 128 × 5120 tokens × 2 B".into()],
        );
        t.to_string()
    }

    fn assert_fits(text: &str, width: usize) {
        for line in text.lines() {
            assert!(line.width() <= width, "{line:?} is wider than {width}");
        }
    }

    #[test]
    fn fits_80_columns_and_never_splits_numbers_or_names() {
        let text = sample(80);
        assert_fits(&text, 80);
        assert!(
            text.contains("672.7 MiB") && text.contains("api-server"),
            "{text}"
        );
        assert!(text.contains("engine-core"), "{text}");
    }

    #[test]
    fn narrow_terminals_move_text_below_the_row() {
        let text = sample(40);
        assert_fits(&text, 40);
        assert!(!text.lines().next().unwrap().contains("process"), "{text}");
        assert!(text.contains("    python -m"), "{text}");
        assert!(
            text.contains("672.7 MiB") && text.contains("engine-core"),
            "{text}"
        );
    }

    #[test]
    fn wide_terminals_keep_one_line_per_row() {
        let text = sample(200);
        assert_eq!(text.lines().count(), 5, "{text}");
    }

    #[test]
    fn optional_columns_go_last_first_when_nothing_else_fits() {
        let mut t = Table::new(&["name", "a", "b", "c"]);
        t.set_width(21).optional_column(1).optional_column(3);
        t.add_row(vec![
            Cell::new("engine-core"),
            Cell::new("1.00 GiB"),
            Cell::new("2.00 GiB"),
            Cell::new("3.00 GiB"),
        ]);
        let text = t.to_string();
        assert_fits(&text, 21);
        assert!(text.contains("engine-core  2.00 GiB"), "{text}");
    }

    #[test]
    fn hostile_cells_are_escaped() {
        let mut t = Table::new(&["name"]);
        t.add_row(vec![Cell::new("\x1b[31mEVIL\x1b]0;title\x07")]);
        let text = t.to_string();
        assert!(
            !text.contains('\x1b') && text.contains("\\x1b[31mEVIL"),
            "{text}"
        );
    }

    #[test]
    fn long_prose_lines_wrap_under_their_indent() {
        let text = "short\n  note: a b c d e f g h\n";
        assert_eq!(
            fit_lines(text, 12),
            "short\n  note: a b\n    c d e f\n    g h\n"
        );
        let table = sample(30);
        assert_eq!(fit_lines(&table, 30), table);
    }

    #[test]
    fn wrap_breaks_at_spaces_and_cuts_only_long_words() {
        assert_eq!(wrap("a bb ccc", 4), vec!["a bb", "ccc"]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
        assert_eq!(wrap("", 5), vec![""]);
        assert_eq!(
            wrap("peak 4.01 GiB, at", 9),
            vec!["peak", "4.01 GiB,", "at"]
        );
    }
}
