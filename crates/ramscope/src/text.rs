//! Untrusted text made safe to print.
//!
//! Process titles, command lines, file names and config values are written by whoever runs
//! the process or wrote the file. Printed raw they can recolour the terminal, retitle it,
//! move the cursor, hide text (NUL) or reverse it (Unicode bidirectional overrides). Every
//! such string goes through [`clean`] before it reaches a terminal table or line; JSON output
//! needs nothing, since serde escapes control characters itself.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` with every control character, DEL, C1 control and bidirectional-formatting character
/// replaced by a visible escape (`\x1b`, `\u{202e}`); everything else unchanged.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            // The common whitespace controls as a reader knows them; the rest in hex.
            if let Some(short) = match c {
                '\n' => Some("\\n"),
                '\t' => Some("\\t"),
                '\r' => Some("\\r"),
                _ => None,
            } {
                out.push_str(short);
            } else if (c as u32) < 0x100 {
                let _ = write!(out, "\\x{:02x}", c as u32);
            } else {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A report for the terminal: every untrusted string escaped, every line fitted to the
/// terminal's width (80 columns when there is none).
pub fn for_terminal(s: String) -> String {
    let width = crate::report::layout::terminal_width();
    crate::report::layout::fit_lines(&clean_lines(s), width)
}

/// A command line for one line of prose: escaped, and runs of spaces (a script's indent)
/// made one, so it wraps like prose instead of passing for a table row.
pub fn one_line_command(s: &str) -> String {
    clean(s)
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A whole report: every line [`clean`]ed, the line breaks kept.
pub fn clean_lines(s: String) -> String {
    if !s.chars().any(|c| c != '\n' && needs_escape(c)) {
        return s;
    }
    s.split('\n').map(clean).collect::<Vec<_>>().join("\n")
}

/// What a terminal would act on instead of print.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // Bidirectional embeddings, overrides and isolates, and the marks.
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            // Line and paragraph separators break a table row like a newline.
            | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(clean("VLLM::Worker_TP0 café"), Cow::Borrowed(_)));
    }

    #[test]
    fn escape_sequences_and_controls_become_visible() {
        assert_eq!(
            clean("\x1b[31mEVIL\x1b]0;title\x07"),
            "\\x1b[31mEVIL\\x1b]0;title\\x07"
        );
        assert_eq!(clean("a\0b\tc\nd\x7f\r"), "a\\x00b\\tc\\nd\\x7f\\r");
        assert_eq!(clean("\u{9b}2J"), "\\x9b2J");
    }

    #[test]
    fn reports_keep_their_line_breaks() {
        assert_eq!(clean_lines("a\x1bb\nc\n".into()), "a\\x1bb\nc\n");
        assert_eq!(clean_lines("plain\n".into()), "plain\n");
    }

    #[test]
    fn bidi_overrides_become_visible() {
        assert_eq!(clean("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        assert_eq!(clean("x\u{2066}y"), "x\\u{2066}y");
    }
}
