//! Bounds on configuration text and the characters it may hold.
//!
//! Configuration arrives from files, from operators and from the peer; the
//! peer is untrusted input. Every line and every name is bounded, and no
//! line may carry a character that a terminal or a log viewer would act on
//! (ANSI escapes, carriage returns, line separators, bidirectional
//! overrides). The limits are documented in `docs/CONFIG.md`.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::error::ParseError;

/// Longest name (virtual system, rule, address or service set, zone,
/// interface, user, host name), in characters. VRP's own name limits are
/// at most this, so a configuration a firewall printed always loads.
pub const MAX_NAME_CHARS: usize = 255;

/// Longest line of a configuration text (a file, or an item from the peer),
/// in bytes, without its indentation.
pub const MAX_LINE_BYTES: usize = 4096;

/// Longest command typed in `system-view`, in bytes. A flattened block
/// command carries a whole rule or set on one line; each line it becomes
/// is still bounded by [`MAX_LINE_BYTES`].
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// Whether `c` may not appear in configuration text: control characters
/// (C0 but the tab, DEL, C1 with NEL), line and paragraph separators,
/// zero-width and bidirectional formatting characters, and a byte-order
/// mark inside the text.
pub fn is_forbidden_char(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// The first forbidden character of `s`: its 1-based column (in
/// characters) and the character.
pub(crate) fn first_forbidden(s: &str) -> Option<(u32, char)> {
    // Fast path: printable ASCII and tabs (nearly every line).
    if s.bytes().all(|b| (b' '..=b'~').contains(&b) || b == b'\t') {
        return None;
    }
    s.chars()
        .enumerate()
        .find(|&(_, c)| is_forbidden_char(c))
        .map(|(i, c)| (crate::parse::to_u32(i + 1), c))
}

/// `s` safe to print on a terminal or in a log: each forbidden character
/// is replaced by its escape (`\u{1b}`, `\r`, ...). Borrowed when there is
/// nothing to escape.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_forbidden_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_forbidden_char(c) {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Check one line of text: at most `max` bytes, no forbidden character.
/// `line` is its line number, `indent` the characters before `text` on it
/// (for the columns), `what` names it in the error (`a line`).
pub(crate) fn check_line(
    line: u32,
    indent: usize,
    text: &str,
    max: usize,
    what: &'static str,
) -> Result<(), ParseError> {
    check_len(line, indent, text, max, what)?;
    if let Some((at, c)) = first_forbidden(text) {
        return Err(ParseError::ForbiddenChar {
            line,
            column: crate::parse::to_u32(indent + at as usize),
            found: format!("`{}`", c.escape_default()),
        });
    }
    Ok(())
}

/// [`check_line`]'s length check alone, for text whose characters were
/// already checked (a line's text, once the whole line passed).
pub(crate) fn check_len(
    line: u32,
    indent: usize,
    text: &str,
    max: usize,
    what: &'static str,
) -> Result<(), ParseError> {
    if text.len() <= max {
        return Ok(());
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Err(ParseError::TooLong {
        line,
        column: crate::parse::to_u32(indent + text[..cut].chars().count() + 1),
        what,
        limit: max,
        unit: "bytes",
    })
}

/// Whether `name` is short enough to be a name.
pub(crate) fn name_fits(name: &str) -> bool {
    // Cheap first: a name of at most N characters has at most 4N bytes.
    name.len() <= MAX_NAME_CHARS || name.chars().count() <= MAX_NAME_CHARS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        assert_eq!(printable("rule a"), Cow::Borrowed("rule a"));
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("a\rb\u{85}c\u{2028}"), "a\\rb\\u{85}c\\u{2028}");
        assert_eq!(printable("tab\tok"), "tab\tok");
        assert!(!is_forbidden_char('é'));
        assert!(is_forbidden_char('\0'));
        assert!(is_forbidden_char('\u{202E}'));
    }

    #[test]
    fn names_count_characters() {
        assert!(name_fits(&"é".repeat(MAX_NAME_CHARS)));
        assert!(!name_fits(&"a".repeat(MAX_NAME_CHARS + 1)));
    }
}
