//! `hotsync check-config`: every error of a node file, with its position.
//!
//! `hotsync node` runs the same check and refuses to start on any of these,
//! with the same messages: a file that starts must be a file that works.

use std::collections::HashMap;
use std::fmt;

use crate::error::ParseError;
use crate::hrp::{HrpEndpoint, HrpSettings};
use crate::item::Category;
use crate::store::{ConfigStore, ROOT};
use crate::syntax::vsys_id;

/// One error of a node file: where it is (1-based line and column) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Line.
    pub line: u32,
    /// Column, in characters.
    pub column: u32,
    /// What is wrong, and what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl From<ParseError> for Diagnostic {
    fn from(e: ParseError) -> Self {
        let text = e.to_string();
        // Every ParseError reads `line L, column C: message`.
        let message = text
            .split_once(": ")
            .map_or(text.as_str(), |(_, m)| m)
            .to_owned();
        Diagnostic {
            line: e.line(),
            column: e.column(),
            message,
        }
    }
}

/// A node file that passed [`check_node_file`].
#[derive(Debug, Clone)]
pub struct NodeFile {
    /// The configuration.
    pub store: ConfigStore,
    /// Its `hrp` settings.
    pub settings: HrpSettings,
}

/// Checks a node file: syntax, values, and what a node needs to run
/// (`hrp enable`, both addresses, a peer that is not this node, distinct
/// virtual system ids). Returns every error found, in line order.
pub fn check_node_file(text: &str) -> Result<NodeFile, Vec<Diagnostic>> {
    let end = end_of_file(text);
    if is_empty(text) {
        return Err(vec![Diagnostic {
            line: 1,
            column: 1,
            message: "the file is empty: a node file needs at least `hrp enable`, \
                      `hrp local-address IP port P` and `hrp remote-address IP port P`"
                .to_owned(),
        }]);
    }
    let (store, errors) = ConfigStore::parse_all(text);
    let mut out: Vec<Diagnostic> = errors.into_iter().map(Diagnostic::from).collect();
    let settings = match HrpSettings::from_store(&store) {
        Ok(s) => s,
        Err(e) => {
            let msg = e.to_string();
            out.push(Diagnostic {
                line: e.line(),
                column: e.column(),
                message: msg
                    .split_once(": ")
                    .map_or(msg.clone(), |(_, m)| m.to_owned()),
            });
            HrpSettings::default()
        }
    };
    duplicate_vsys_ids(text, &store, &mut out);
    // What is missing is only worth reporting when every line parsed: a
    // line in error may be the one that would have supplied it.
    if out.is_empty() {
        let missing = |what: &str| Diagnostic {
            line: end.0,
            column: end.1,
            message: format!("missing {what}"),
        };
        if !settings.enabled {
            out.push(missing(
                "`hrp enable`: without it this node would not run HRP",
            ));
        }
        if settings.local.is_none() {
            out.push(missing("`hrp local-address IP port P`"));
        }
        if settings.remote.is_none() {
            out.push(missing("`hrp remote-address IP port P`"));
        }
        if let (Some(local), Some(remote)) = (settings.local, settings.remote) {
            if collide(local, remote) {
                let line = hrp_line(&store, "remote-address");
                out.push(Diagnostic {
                    line,
                    column: column_of_token(text, line, 2),
                    message: format!(
                        "`hrp remote-address {} port {}` is this node's own address \
                         (`hrp local-address` on line {}, config channel on port + 1): \
                         the peer must be the other node",
                        remote.address,
                        remote.port,
                        hrp_line(&store, "local-address")
                    ),
                });
            }
        }
    }
    out.sort_by_key(|d| (d.line, d.column));
    if out.is_empty() {
        Ok(NodeFile { store, settings })
    } else {
        Err(out)
    }
}

/// Nothing but blank lines, `#` separators and `!` comments.
fn is_empty(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l == "#" || l.starts_with('!'))
}

/// The position reported for what is missing: the last line, column 1.
fn end_of_file(text: &str) -> (u32, u32) {
    (
        u32::try_from(text.lines().count().max(1)).unwrap_or(u32::MAX),
        1,
    )
}

/// The same address with ports that overlap (each node uses `port` and
/// `port + 1`).
fn collide(a: HrpEndpoint, b: HrpEndpoint) -> bool {
    a.address == b.address && a.port.abs_diff(b.port) <= 1
}

fn hrp_line(store: &ConfigStore, key: &str) -> u32 {
    store
        .items(ROOT)
        .and_then(|mut items| {
            items.find(|i| i.category() == Category::Hrp && i.identity().key == key)
        })
        .and_then(|i| i.line())
        .unwrap_or(0)
}

/// Two `vsys name` declarations with the same id: sessions are tagged with
/// the id, so the two would share one table partition.
fn duplicate_vsys_ids(text: &str, store: &ConfigStore, out: &mut Vec<Diagnostic>) {
    let Some(items) = store.items(ROOT) else {
        return;
    };
    let mut seen: HashMap<u32, (String, u32)> = HashMap::new();
    for item in items.filter(|i| i.category() == Category::Vsys) {
        let Some((id, at)) = vsys_id(item.header()) else {
            continue;
        };
        let name = item.identity().key;
        let line = item.line().unwrap_or(0);
        if let Some((first, first_line)) = seen.get(&id) {
            out.push(Diagnostic {
                line,
                column: column_of_token(text, line, at),
                message: format!(
                    "virtual system `{name}` has id {id}, already the id of `{first}` on line {first_line}"
                ),
            });
        } else {
            seen.insert(id, (name, line));
        }
    }
}

/// 1-based column (in characters) of token `at` of line `line` of `text`.
fn column_of_token(text: &str, line: u32, at: usize) -> u32 {
    let Some(src) = text.split('\n').nth((line as usize).saturating_sub(1)) else {
        return 1;
    };
    let t: Vec<&str> = src.split_whitespace().collect();
    crate::parse::locate(src, &t, Some(at)).0
}
