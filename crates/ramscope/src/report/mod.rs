//! Showing results: terminal tables and JSON.

pub mod chart;
pub mod csv;
pub mod diff;
pub mod estimate;
pub mod explain;
pub mod html;
pub mod measure;
pub mod record;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, CellAlignment, ContentArrangement, Table};

/// A table in the house style: light borders, wrapped to the terminal.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied().map(Cell::new));
    // Piped output has no terminal width to wrap to; keep rows readable anyway.
    if t.width().is_none() {
        t.set_width(150);
    }
    t
}

/// A right-aligned cell, for numbers.
pub fn num(text: impl ToString) -> Cell {
    Cell::new(text.to_string()).set_alignment(CellAlignment::Right)
}

/// `part` as a percentage of `whole`, one decimal.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// Shortens long command lines for a table cell.
pub fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{head}…")
}
