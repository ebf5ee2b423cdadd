//! Showing results: terminal tables and JSON.

pub mod axis;
pub mod chart;
pub mod csv;
pub mod diff;
pub mod estimate;
pub mod explain;
pub mod fit;
pub mod html;
pub mod layout;
pub mod live;
pub mod measure;
pub mod record;
pub mod scan;
pub mod trace;

pub use layout::{Cell, Table};

/// A table in the house style, fitted to the terminal (80 columns when there is none).
pub fn table(header: &[&str]) -> Table {
    Table::new(header)
}

/// A right-aligned cell, for numbers.
pub fn num(text: impl std::fmt::Display) -> Cell {
    Cell::new(text).right()
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
