//! The line-level parser: indentation, `#` separators, control lines, blocks.
//!
//! Produces a stream of [`Event`]s; [`crate::ConfigStore::parse`] and
//! [`crate::ConfigItem::parse`] consume it.

use crate::error::ParseError;
use crate::item::Category;
use crate::item::{BodyLine, ConfigItem, Container};
use crate::limits::{MAX_LINE_BYTES, check_len, check_line};
use crate::syntax::{Bad, Control, check_body_line, classify, classify_child, control};

/// What the parser found.
pub(crate) enum Event<'a> {
    /// An item (its source line is set).
    Item(ConfigItem),
    /// A `security-policy` / `nat-policy` block opens (its items follow).
    Block { container: Container, line: u32 },
    /// `return` / `quit`: back to the root system.
    Return { line: u32 },
    /// `switch vsys NAME`.
    Switch {
        line: u32,
        column: u32,
        name: &'a str,
    },
}

/// One source line: `full` as read, `text` without indentation or
/// trailing blanks. Tokens are sub-slices of `full`, split on demand.
struct SrcLine<'a> {
    no: u32,
    full: &'a str,
    text: &'a str,
}

impl<'a> SrcLine<'a> {
    fn tokens(&self) -> Vec<&'a str> {
        // The same split for ASCII text (vertical tab, the one ASCII blank
        // the two differ on, is a forbidden character), without decoding
        // characters: nearly every line is ASCII.
        if self.text.is_ascii() {
            self.text.split_ascii_whitespace().collect()
        } else {
            self.text.split_whitespace().collect()
        }
    }

    fn error(&self, tokens: &[&str], b: Bad) -> ParseError {
        let (column, found) = locate(self.full, tokens, b.at);
        ParseError::Expected {
            line: self.no,
            column,
            expected: b.expected,
            found,
        }
    }

    /// The text with blanks normalized to single spaces.
    fn normalized(&self) -> String {
        let simple = self.text.is_ascii()
            && !self.text.contains("  ")
            && !self
                .text
                .bytes()
                .any(|b| b.is_ascii_whitespace() && b != b' ');
        if simple {
            self.text.to_owned()
        } else {
            self.text.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    }
}

/// Column (1-based, in characters) and a quoted excerpt of token `at` of
/// `line` (`None` or out of range: one past the end of the line).
pub(crate) fn locate(line: &str, tokens: &[&str], at: Option<usize>) -> (u32, String) {
    match at.and_then(|i| tokens.get(i)) {
        Some(tok) => {
            let offset = (tok.as_ptr() as usize).wrapping_sub(line.as_ptr() as usize);
            let column = line
                .get(..offset)
                .map_or(1, |prefix| prefix.chars().count() + 1);
            (to_u32(column), format!("`{}`", excerpt(tok)))
        }
        None => (
            to_u32(line.trim_end().chars().count() + 1),
            "end of line".to_owned(),
        ),
    }
}

fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.escape_debug().to_string()
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{}...", cut.escape_debug())
    }
}

pub(crate) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A top-level command and its indented lines (depth = indentation).
struct Node<'a> {
    head: SrcLine<'a>,
    body: Vec<(u32, SrcLine<'a>)>,
    last_indent: u32,
}

type Sink<'s> = dyn FnMut(Event<'_>) -> Result<(), ParseError> + 's;

/// What to do with an error: `Err` stops the parse (the first error is the
/// result), `Ok` records it and goes on with the next line (`check-config`
/// reports every error of a file).
type OnError<'s> = dyn FnMut(ParseError) -> Result<(), ParseError> + 's;

/// Parse `text`, feeding events to `sink` in order; stop at the first error.
pub(crate) fn parse_events(text: &str, sink: &mut Sink<'_>) -> Result<(), ParseError> {
    parse_events_with(text, sink, &mut |e| Err(e))
}

/// Parse `text`, feeding events to `sink` in order and errors to
/// `on_error`. A line in error (or an item the sink refused) is skipped.
pub(crate) fn parse_events_with(
    text: &str,
    sink: &mut Sink<'_>,
    on_error: &mut OnError<'_>,
) -> Result<(), ParseError> {
    let mut current: Option<Node<'_>> = None;
    // VRP prints global one-line commands indented by one space after a
    // `#` (` sysname FW`, ` ftp server enable`), and blocks at column 0.
    // The first line after a `#` (or a control line) sets the segment's
    // base indentation (0 or 1); a line left of the base is top level and
    // resets it.
    let mut base: Option<u32> = None;
    for (i, full) in text.split('\n').enumerate() {
        let no = to_u32(i + 1);
        // A CRLF line end is a line end; any other CR is refused below.
        let full = full.strip_suffix('\r').unwrap_or(full);
        // The whole line, indentation included, for characters; its text
        // (below) for length.
        if let Err(e) = check_line(no, 0, full, usize::MAX, "a line") {
            on_error(e)?;
            continue;
        }
        let spaces = full.bytes().take_while(|&b| b == b' ').count();
        let rest = &full[spaces..];
        let text = rest.trim_end();
        if text.is_empty() {
            continue;
        }
        // Its characters passed with the whole line above.
        if let Err(e) = check_len(no, spaces, text, MAX_LINE_BYTES, "a line") {
            on_error(e)?;
            continue;
        }
        if let Some(c) = rest.chars().next().filter(|c| c.is_whitespace()) {
            on_error(ParseError::BadIndentation {
                line: no,
                column: to_u32(spaces + 1),
                found: format!("`{}`", c.escape_debug()),
            })?;
            continue;
        }
        if rest.starts_with('!') {
            // A comment (`!Software Version ...`): not configuration.
            continue;
        }
        let line = SrcLine { no, full, text };
        if text == "#" {
            if let Some(node) = current.take() {
                emit(node, sink, on_error)?;
            }
            base = None;
            continue;
        }
        let spaces = to_u32(spaces);
        let b = match base {
            Some(b) if spaces >= b => b,
            Some(_) => spaces,
            None if spaces <= 1 => spaces,
            None => {
                on_error(ParseError::Orphan {
                    line: no,
                    column: spaces.saturating_add(1),
                })?;
                continue;
            }
        };
        base = Some(b);
        let indent = spaces - b;
        if indent == 0 {
            if let Some(node) = current.take() {
                emit(node, sink, on_error)?;
            }
            let tokens = line.tokens();
            match control(&tokens) {
                Some(Ok(Control::Return)) => {
                    base = None;
                    sink(Event::Return { line: no }).or_else(&mut *on_error)?;
                }
                Some(Ok(Control::Switch(name))) => {
                    base = None;
                    sink(Event::Switch {
                        line: no,
                        column: locate(full, &tokens, Some(2)).0,
                        name,
                    })
                    .or_else(&mut *on_error)?;
                }
                Some(Err(b)) => on_error(line.error(&tokens, b))?,
                None => {
                    current = Some(Node {
                        head: line,
                        body: Vec::new(),
                        last_indent: 0,
                    })
                }
            }
        } else {
            let Some(node) = current.as_mut() else {
                on_error(ParseError::Orphan {
                    line: no,
                    column: spaces.saturating_add(1),
                })?;
                continue;
            };
            if indent > node.last_indent + 1 {
                on_error(ParseError::TooDeep {
                    line: no,
                    column: spaces.saturating_add(1),
                    found: spaces,
                    max: node.last_indent + 1 + b,
                })?;
                continue;
            }
            node.last_indent = indent;
            node.body.push((indent, line));
        }
    }
    if let Some(node) = current.take() {
        emit(node, sink, on_error)?;
    }
    Ok(())
}

/// The body lines of an item, each checked against the grammar of its
/// category's sub-commands (addresses and masks must be valid).
fn body_lines(
    category: Category,
    lines: &[(u32, SrcLine<'_>)],
    shift: u32,
) -> Result<Vec<BodyLine>, ParseError> {
    lines
        .iter()
        .map(|(depth, l)| {
            let tokens = l.tokens();
            check_body_line(category, &tokens).map_err(|b| l.error(&tokens, b))?;
            Ok(BodyLine {
                depth: depth - shift,
                text: l.normalized(),
            })
        })
        .collect()
}

fn emit(node: Node<'_>, sink: &mut Sink<'_>, on_error: &mut OnError<'_>) -> Result<(), ParseError> {
    let t = &node.head.tokens();
    if let (1, Some(container)) = (t.len(), Container::from_keyword(t[0])) {
        sink(Event::Block {
            container,
            line: node.head.no,
        })
        .or_else(&mut *on_error)?;
        // Children: a depth-1 line and the deeper lines after it.
        let mut i = 0;
        while i < node.body.len() {
            let start = i;
            i += 1;
            while i < node.body.len() && node.body[i].0 >= 2 {
                i += 1;
            }
            let head = &node.body[start].1;
            let tokens = head.tokens();
            let item = classify_child(container, &tokens)
                .map_err(|b| head.error(&tokens, b))
                .and_then(|h| {
                    Ok(ConfigItem {
                        category: h.category,
                        container: Some(container),
                        key: h.key,
                        body: body_lines(h.category, &node.body[start + 1..i], 1)?,
                        header: h.header,
                        line: Some(head.no),
                    })
                });
            item.and_then(|item| sink(Event::Item(item)))
                .or_else(&mut *on_error)?;
        }
        return Ok(());
    }
    let item = classify(t, false)
        .map_err(|b| node.head.error(t, b))
        .and_then(|h| {
            Ok(ConfigItem {
                category: h.category,
                container: None,
                key: h.key,
                body: body_lines(h.category, &node.body, 0)?,
                header: h.header,
                line: Some(node.head.no),
            })
        });
    item.and_then(|item| sink(Event::Item(item)))
        .or_else(on_error)
}
