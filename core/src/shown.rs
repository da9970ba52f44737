//! Text from input made safe to show: control characters (ESC, BEL, ...) that would drive a
//! terminal, and bidirectional and zero-width characters that make text read differently from
//! what it is, are shown as visible escapes; overlong lines are cut.
//!
//! Everything etcdrill prints that came from a runbook, an inventory, a drill, a parameter or a
//! node goes through here: error messages, diagnostics and plans in every format.

use std::borrow::Cow;

/// How many characters of a quoted input line an error shows (a window around the caret).
pub const MAX_LINE_CHARS: usize = 240;

/// How many characters of one line of an error's own text (message, expectation, hint) are
/// shown: room for a long list of choices, not for a 64 KiB value quoted back.
pub const MAX_MESSAGE_LINE_CHARS: usize = 1000;

/// Whether `c` must not reach a terminal or a reviewer as it is. Newlines and tabs are layout
/// and pass; [`escape_line`] escapes them too.
fn is_hidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || is_invisible_format(c)
}

/// Whether `c` is a control character (newlines and tabs included) or an invisible one
/// (bidirectional controls, zero-width characters): what no reader should get raw.
pub fn is_control_or_invisible(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

/// Bidirectional controls and zero-width characters: they reorder or hide text on screen.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{00AD}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{206A}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// `text` with every control, bidirectional and zero-width character shown as `\u{..}` (`\n`
/// and `\t` are kept).
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_where(text, is_hidden)
}

/// Like [`escape`], with newlines and tabs escaped too, so the text stays on one line.
pub fn escape_line(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| is_hidden(c) || c == '\n' || c == '\t')
}

fn escape_where(text: &str, hidden: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' if hidden(c) => out.push_str("\\n"),
            '\t' if hidden(c) => out.push_str("\\t"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A JSON document with bidirectional and zero-width characters written as `\uXXXX` escapes: the
/// same JSON value, but nothing invisible on a reviewer's screen. (serde_json already escapes
/// control characters.)
pub fn escape_json(json: &str) -> Cow<'_, str> {
    if !json
        .chars()
        .any(|c| is_invisible_format(c) || c == '\u{7f}')
    {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_invisible_format(c) || c == '\u{7f}' {
            // All of these are in the Basic Multilingual Plane: one \u escape each.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The first `max` characters of `line` and a note of how much was left out, or `line` whole.
pub fn cut_line(line: &str, max: usize) -> Cow<'_, str> {
    match line.char_indices().nth(max) {
        None => Cow::Borrowed(line),
        Some((end, _)) => Cow::Owned(format!(
            "{}... ({} more characters)",
            &line[..end],
            line[end..].chars().count()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_and_invisible_characters_become_visible() {
        let cases = [
            ("plain text", "plain text"),
            ("a\u{1b}[2Jb", "a\\u{1b}[2Jb"),
            ("bell\u{7}", "bell\\u{7}"),
            ("rm\u{202e}fdp.sh", "rm\\u{202e}fdp.sh"),
            ("zero\u{200b}width", "zero\\u{200b}width"),
            ("isolate\u{2066}x\u{2069}", "isolate\\u{2066}x\\u{2069}"),
            ("c1\u{9b}31m", "c1\\u{9b}31m"),
            ("two\nlines\tkept", "two\nlines\tkept"),
            ("bom\u{feff}", "bom\\u{feff}"),
        ];
        for (given, shown) in cases {
            assert_eq!(escape(given), shown, "{given:?}");
        }
        assert_eq!(escape_line("a\nb\tc\u{1b}"), "a\\nb\\tc\\u{1b}");
        assert!(matches!(escape("clean"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_keeps_its_value_and_loses_its_invisible_characters() {
        let value = serde_json::json!({"title": "ok\u{202e}txt.exe\u{200b}"});
        let text = serde_json::to_string(&value).unwrap();
        let escaped = escape_json(&text);
        assert!(escaped.is_ascii(), "{escaped}");
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn long_lines_are_cut_with_a_count() {
        assert_eq!(cut_line("short", 10), "short");
        assert_eq!(cut_line("abcdefghij", 4), "abcd... (6 more characters)");
        assert_eq!(cut_line("ééééé", 2), "éé... (3 more characters)");
    }
}
